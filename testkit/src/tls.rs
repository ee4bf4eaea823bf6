//! Certificates for TLS tests, made at test time (rcgen): a CA, a server certificate for
//! `localhost`/`127.0.0.1` and a client certificate, as PEM files in a temp dir.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::{free_port, ServerBuilder};

/// `ca.crt`, `server.crt`/`server.key` and `client.crt`/`client.key` in a temp dir that is
/// removed on drop.
#[derive(Debug)]
pub struct TestPki {
    dir: tempfile::TempDir,
}

impl TestPki {
    /// Generates the CA and the two certificates it signs.
    pub fn generate() -> TestPki {
        let dir = tempfile::tempdir().expect("temp dir for certificates");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "testkit test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca, ca_key);
        let write = |name: &str, pem: String| {
            std::fs::write(dir.path().join(name), pem).expect("writing a certificate")
        };
        write("ca.crt", ca_cert.pem());
        for (name, sans, eku) in [
            (
                "server",
                vec!["localhost".to_string(), "127.0.0.1".to_string()],
                ExtendedKeyUsagePurpose::ServerAuth,
            ),
            (
                "client",
                vec!["client".to_string()],
                ExtendedKeyUsagePurpose::ClientAuth,
            ),
        ] {
            let key = KeyPair::generate().expect("key");
            let mut p = CertificateParams::new(sans).expect("params");
            p.extended_key_usages = vec![eku];
            // Distinct from the CA's, or OpenSSL takes the certificate for self-signed.
            p.distinguished_name.push(DnType::CommonName, name);
            let cert = p.signed_by(&key, &issuer).expect("certificate");
            write(&format!("{name}.crt"), cert.pem());
            write(&format!("{name}.key"), key.serialize_pem());
        }
        TestPki { dir }
    }

    /// The folder holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// One of the files: `ca.crt`, `server.crt`, `server.key`, `client.crt`, `client.key`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl ServerBuilder {
    /// Adds a TLS port (returned) served with `pki`'s server certificate; clients must
    /// present a certificate signed by its CA when `auth_clients` is true. The plain port
    /// stays open for the harness. Needs a TLS build ([`crate::Flavor::has_tls`]).
    pub fn tls(self, pki: &TestPki, auth_clients: bool) -> (ServerBuilder, u16) {
        let port = free_port();
        let p = |n: &str| pki.path(n).display().to_string();
        let builder = self
            .config("tls-port", port.to_string())
            .config("tls-cert-file", p("server.crt"))
            .config("tls-key-file", p("server.key"))
            .config("tls-ca-cert-file", p("ca.crt"))
            .config("tls-auth-clients", if auth_clients { "yes" } else { "no" });
        (builder, port)
    }
}
