//! TLS against Redis 7.0's `--tls-port`, with certificates made by the test (rcgen).

mod common;

use std::path::{Path, PathBuf};

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use replication_client::{Error, Replica, TlsOptions};
use testkit::{free_port, Flavor, Server};

struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// A CA, a server certificate for localhost/127.0.0.1 and a client certificate.
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "replication-client test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let write = |name: &str, pem: String| std::fs::write(dir.path().join(name), pem).unwrap();
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
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(sans).unwrap();
            p.extended_key_usages = vec![eku];
            // Distinct from the CA's, or OpenSSL takes the certificate for self-signed.
            p.distinguished_name.push(DnType::CommonName, name);
            let cert = p.signed_by(&key, &issuer).unwrap();
            write(&format!("{name}.crt"), cert.pem());
            write(&format!("{name}.key"), key.serialize_pem());
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn tls_server(pki: &Pki, auth_clients: &str) -> (Server, u16) {
    let port = free_port();
    let p = |n: &str| pki.path(n).display().to_string();
    let server = Server::builder(Flavor::Redis7_0)
        .config("tls-port", port.to_string())
        .config("tls-cert-file", p("server.crt"))
        .config("tls-key-file", p("server.key"))
        .config("tls-ca-cert-file", p("ca.crt"))
        .config("tls-auth-clients", auth_clients)
        .config("repl-diskless-sync-delay", "0")
        .start();
    (server, port)
}

fn ca(pki: &Pki) -> TlsOptions {
    TlsOptions::new().ca_file(pki.path("ca.crt"))
}

async fn sync_and_stream(replica: &mut Replica, conn: &mut testkit::Conn) {
    let mut log = Log::default();
    recv_until(replica, &mut log, 30, |l| l.rdb_ends == 1).await;
    assert_eq!(log.rdb_header.map(|h| h.version), Some(10));
    conn.ok(["SET", "over", "tls"]);
    recv_until(replica, &mut log, 30, |l| !l.named("SET").is_empty()).await;
    assert_caught_up(replica, &mut log, conn).await;
}

#[test]
fn tls_verified_by_ca_file() {
    let pki = Pki::new();
    let (server, port) = tls_server(&pki, "no");
    let mut conn = server.connect();
    conn.ok(["SET", "k", "v"]);
    runtime().block_on(async {
        // By IP (the certificate has an IP SAN) and by name via SNI.
        for (url, opts) in [
            (format!("rediss://127.0.0.1:{port}"), ca(&pki)),
            (
                format!("rediss://127.0.0.1:{port}"),
                ca(&pki).server_name("localhost"),
            ),
        ] {
            let cfg = config(&url).tls(opts);
            let mut replica = Replica::connect(cfg).await.unwrap();
            sync_and_stream(&mut replica, &mut conn).await;
        }
    });
}

#[test]
fn tls_verification_is_on_by_default() {
    let pki = Pki::new();
    let (server, port) = tls_server(&pki, "no");
    let mut conn = server.connect();
    runtime().block_on(async {
        let url = format!("rediss://127.0.0.1:{port}");
        // Mozilla roots do not know our CA.
        let e = Replica::connect(config(&url)).await.unwrap_err();
        assert!(matches!(e, Error::TlsHandshake { .. }), "{e:?}");
        // The wrong name fails too.
        let cfg = config(&url).tls(ca(&pki).server_name("other.example"));
        let e = Replica::connect(cfg).await.unwrap_err();
        assert!(matches!(e, Error::TlsHandshake { .. }), "{e:?}");
        // Only the explicit switch turns verification off.
        let cfg = config(&url).tls(TlsOptions::new().insecure_skip_verify(true));
        let mut replica = Replica::connect(cfg).await.unwrap();
        sync_and_stream(&mut replica, &mut conn).await;
    });
}

#[test]
fn tls_client_certificate() {
    let pki = Pki::new();
    let (server, port) = tls_server(&pki, "yes");
    let mut conn = server.connect();
    runtime().block_on(async {
        let url = format!("rediss://127.0.0.1:{port}");
        let cfg =
            config(&url).tls(ca(&pki).client_cert(pki.path("client.crt"), pki.path("client.key")));
        let mut replica = Replica::connect(cfg).await.unwrap();
        sync_and_stream(&mut replica, &mut conn).await;
        // Without a client certificate the server refuses.
        assert!(Replica::connect(config(&url).tls(ca(&pki))).await.is_err());
    });
}

#[test]
fn tls_config_errors_name_the_file() {
    let missing = Path::new("/nonexistent/ca.pem");
    runtime().block_on(async {
        let cfg = config("rediss://127.0.0.1:1").tls(TlsOptions::new().ca_file(missing));
        let e = Replica::connect(cfg).await.unwrap_err();
        assert!(
            matches!(&e, Error::File { what: "CA", path, .. } if path == missing),
            "{e:?}"
        );
    });
}
