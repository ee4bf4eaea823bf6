//! TLS on both sides against Redis 7.0's `--tls-port`, with certificates made by the test
//! (rcgen): verified by a CA file, with client certificates; an unverifiable target fails
//! with a one-line error.

use std::path::PathBuf;

use migrate_core::migrate::{Migration, Source, StopReason, TargetConfig};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use replication_client::TlsOptions;
use testkit::{free_port, Dataset, Flavor, Server, Snapshot};

/// A CA, a server certificate for 127.0.0.1 and a client certificate, in a temp dir.
fn pki() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "migrate-core test CA");
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
        p.distinguished_name.push(DnType::CommonName, name);
        let cert = p.signed_by(&key, &issuer).unwrap();
        write(&format!("{name}.crt"), cert.pem());
        write(&format!("{name}.key"), key.serialize_pem());
    }
    dir
}

fn tls_server(dir: &tempfile::TempDir) -> (Server, u16) {
    let port = free_port();
    let p = |n: &str| dir.path().join(n).display().to_string();
    let server = Server::builder(Flavor::Redis7_0)
        .config("tls-port", port.to_string())
        .config("tls-cert-file", p("server.crt"))
        .config("tls-key-file", p("server.key"))
        .config("tls-ca-cert-file", p("ca.crt"))
        .config("tls-auth-clients", "yes")
        .config("repl-diskless-sync-delay", "0")
        .start();
    (server, port)
}

#[test]
fn sync_once_over_tls_on_both_sides() {
    let dir = pki();
    let f = |n: &str| -> PathBuf { dir.path().join(n) };
    let (source, source_tls) = tls_server(&dir);
    let (target, target_tls) = tls_server(&dir);
    Dataset::small().fill(&source);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let from = replication_client::Config::new(&format!("rediss://127.0.0.1:{source_tls}"))
        .unwrap()
        .tls(
            TlsOptions::new()
                .ca_file(f("ca.crt"))
                .client_cert(f("client.crt"), f("client.key")),
        );
    let to = TargetConfig::parse(&format!("rediss://127.0.0.1:{target_tls}"))
        .unwrap()
        .tls(
            TlsOptions::new()
                .ca_file(f("ca.crt"))
                .client_cert(f("client.crt"), f("client.key")),
        );
    let report = rt
        .block_on(async {
            Migration::builder()
                .source(Source::Live(from))
                .target(to.clone())
                .once(true)
                .start()
                .wait()
                .await
        })
        .unwrap();
    assert_eq!(report.stop_reason, StopReason::CaughtUp);
    Snapshot::take(&source, 3).assert_same(&Snapshot::take(&target, 3), 1000);

    // Without the CA (Mozilla roots): verification fails, in one line.
    let bad = TargetConfig::parse(&format!("rediss://127.0.0.1:{target_tls}"))
        .unwrap()
        .tls(TlsOptions::new().client_cert(f("client.crt"), f("client.key")));
    let err = rt
        .block_on(async {
            Migration::builder()
                .source(Source::RdbFile(source.rdb_path()))
                .target(bad)
                .start()
                .wait()
                .await
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("TLS") && err.contains("handshake"), "{err}");
    assert!(!err.contains('\n'));
}
