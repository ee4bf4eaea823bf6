//! TLS on both sides against Redis 7.0's `--tls-port`, with certificates made by the test
//! (testkit::TestPki): verified by a CA file, with client certificates; an unverifiable target fails
//! with a one-line error.

use std::path::PathBuf;

use migrate_core::migrate::{Migration, Source, StopReason, TargetConfig};
use replication_client::TlsOptions;
use testkit::{Dataset, Flavor, Server, Snapshot, TestPki};

fn tls_server(pki: &TestPki) -> (Server, u16) {
    let (builder, port) = Server::builder(Flavor::Redis7_0).tls(pki, true);
    let server = builder.config("repl-diskless-sync-delay", "0").start();
    (server, port)
}

#[test]
fn sync_once_over_tls_on_both_sides() {
    let pki = TestPki::generate();
    let f = |n: &str| -> PathBuf { pki.path(n) };
    let (source, source_tls) = tls_server(&pki);
    let (target, target_tls) = tls_server(&pki);
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
