//! TLS with rustls (ring provider): CA file, client certificate, SNI, explicit insecure mode.
//!
//! The `ring` provider is used because it builds with a C compiler alone; `aws-lc-rs` needs
//! cmake (absent on our build machines) and takes minutes to compile on two cores. The
//! replication link is bulk transfer with one handshake per connection, where the two
//! providers' throughput (AES-GCM/ChaCha20 in assembly in both) does not differ enough to
//! matter.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::Error;

/// TLS options for `rediss://` URLs. Verification is on by default, against the CA file
/// when one is given, else the Mozilla root set (`webpki-roots`).
#[derive(Clone, Default)]
pub struct TlsOptions {
    ca_file: Option<PathBuf>,
    client_auth: Option<(PathBuf, PathBuf)>,
    server_name: Option<String>,
    insecure: bool,
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("ca_file", &self.ca_file)
            .field("client_cert", &self.client_auth.as_ref().map(|c| &c.0))
            .field("server_name", &self.server_name)
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl TlsOptions {
    /// Defaults: verify against the Mozilla roots, SNI from the URL host, no client cert.
    pub fn new() -> TlsOptions {
        TlsOptions::default()
    }

    /// Trust the CA certificates in this PEM file (instead of the Mozilla roots).
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> TlsOptions {
        self.ca_file = Some(path.into());
        self
    }

    /// Present this client certificate chain (PEM) and private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub fn client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> TlsOptions {
        self.client_auth = Some((cert.into(), key.into()));
        self
    }

    /// The name to send as SNI and to verify the certificate against (default: the URL host).
    pub fn server_name(mut self, name: impl Into<String>) -> TlsOptions {
        self.server_name = Some(name.into());
        self
    }

    /// DANGEROUS: accept any server certificate. Only for tests and closed networks.
    pub fn insecure_skip_verify(mut self, yes: bool) -> TlsOptions {
        self.insecure = yes;
        self
    }

    /// The SNI/verification name for `host` ([`server_name`](Self::server_name) when set).
    ///
    /// # Errors
    /// The name is not a valid DNS name or IP address.
    pub fn server_name_for(&self, host: &str) -> Result<ServerName<'static>, Error> {
        let name = self.server_name.as_deref().unwrap_or(host);
        ServerName::try_from(name.to_string()).map_err(|_| Error::TlsConfig {
            reason: format!("{name:?} is not a valid TLS server name"),
        })
    }

    /// Builds the rustls client configuration (reads the files), for any connection that
    /// should use the same settings (the migration's target side uses it).
    ///
    /// # Errors
    /// A file cannot be read or holds no usable certificate or key.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::TlsConfig {
                reason: e.to_string(),
            })?;
        let builder = if self.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
        } else {
            let mut roots = RootCertStore::empty();
            match &self.ca_file {
                Some(path) => {
                    for cert in read_certs(path, "CA")? {
                        roots.add(cert).map_err(|e| Error::TlsConfig {
                            reason: format!("CA file {}: {e}", path.display()),
                        })?;
                    }
                }
                None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            builder.with_root_certificates(roots)
        };
        let config = match &self.client_auth {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = read_certs(cert, "client certificate")?;
                let data = read_file(key, "client key")?;
                let key = PrivateKeyDer::from_pem_slice(&data).map_err(|e| Error::TlsConfig {
                    reason: format!("client key {}: {e}", key.display()),
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| Error::TlsConfig {
                        reason: format!("client certificate: {e}"),
                    })?
            }
        };
        Ok(Arc::new(config))
    }
}

fn read_file(path: &Path, what: &'static str) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::File {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn read_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let data = read_file(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::TlsConfig {
            reason: format!("{what} file {}: {e}", path.display()),
        })?;
    if certs.is_empty() {
        return Err(Error::TlsConfig {
            reason: format!("{what} file {} holds no certificate", path.display()),
        });
    }
    Ok(certs)
}

/// Accepts any certificate, still checking the handshake signatures.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
