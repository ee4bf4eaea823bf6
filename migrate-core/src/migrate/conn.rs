//! Connecting to the target: TCP, or TLS for `rediss://` (rustls with the ring provider,
//! like the source side in `replication-client`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{MigrationError, TargetConfig, TargetTls};
use crate::{Target, TargetOptions};

/// The target stream: TCP or TLS behind one type.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Io for T {}
pub(crate) type Stream = Box<dyn Io>;

/// Connects and runs the target handshake (AUTH, INFO, CONFIG GET).
pub(crate) async fn connect(
    cfg: &TargetConfig,
    timeout: Duration,
) -> Result<Target<Stream>, MigrationError> {
    let url = &cfg.url;
    let shown = url.to_string();
    let addr = url.addr();
    let mut opts = TargetOptions::default().with_timeout(timeout);
    if let Some(p) = url.password() {
        opts = match url.username() {
            Some(u) => opts.with_user(u, p.expose()),
            None => opts.with_password(p.expose()),
        };
    }
    let target_err = |source| MigrationError::Target {
        url: shown.clone(),
        source: Box::new(source),
    };
    let tcp =
        match tokio::time::timeout(timeout, TcpStream::connect((url.host(), url.port()))).await {
            Err(_) => {
                return Err(target_err(crate::Error::Timeout {
                    addr,
                    timeout,
                    during: "connect",
                }))
            }
            Ok(Err(e)) => {
                return Err(target_err(crate::Error::Connect {
                    addr,
                    source: Arc::new(e),
                }))
            }
            Ok(Ok(s)) => s,
        };
    let _ = tcp.set_nodelay(true);
    let stream: Stream = if url.tls() {
        let tls_err = |reason: String| MigrationError::TargetTls {
            url: shown.clone(),
            reason,
        };
        let config = client_config(&cfg.tls).map_err(tls_err)?;
        let name = cfg.tls.server_name.as_deref().unwrap_or(url.host());
        let name = ServerName::try_from(name.to_string())
            .map_err(|_| tls_err(format!("{name:?} is not a valid TLS server name")))?;
        let connector = TlsConnector::from(config);
        match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
            Err(_) => return Err(tls_err("no answer to the TLS handshake".into())),
            Ok(Err(e)) => return Err(tls_err(format!("handshake failed: {e}"))),
            Ok(Ok(s)) => Box::new(s),
        }
    } else {
        Box::new(tcp)
    };
    Target::handshake(stream, addr, &opts)
        .await
        .map_err(target_err)
}

fn client_config(tls: &TargetTls) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if tls.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
    } else {
        let mut roots = RootCertStore::empty();
        match &tls.ca_file {
            Some(path) => {
                for cert in read_certs(path, "CA")? {
                    roots
                        .add(cert)
                        .map_err(|e| format!("CA file {}: {e}", path.display()))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        builder.with_root_certificates(roots)
    };
    let config = match (&tls.client_cert, &tls.client_key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert, "client certificate")?;
            let data = read(key, "client key")?;
            let key = PrivateKeyDer::from_pem_slice(&data)
                .map_err(|e| format!("client key file {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate: {e}"))?
        }
        _ => return Err("a client certificate needs both --to-cert and --to-key".into()),
    };
    Ok(Arc::new(config))
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {what} file {}: {e}", path.display()))
}

fn read_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let data = read(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what} file {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{what} file {} holds no certificate",
            path.display()
        ));
    }
    Ok(certs)
}

/// `insecure`: accepts any certificate, still checking the handshake signatures.
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
