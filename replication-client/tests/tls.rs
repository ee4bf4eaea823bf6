//! TLS against Redis 7.0's `--tls-port`, with certificates made by the test (testkit::TestPki).

mod common;

use std::path::Path;

use common::*;
use replication_client::{Error, Replica, TlsOptions};
use testkit::{Flavor, Server, TestPki};

fn tls_server(pki: &TestPki, auth_clients: bool) -> (Server, u16) {
    let (builder, port) = Server::builder(Flavor::Redis7_0).tls(pki, auth_clients);
    let server = builder.config("repl-diskless-sync-delay", "0").start();
    (server, port)
}

fn ca(pki: &TestPki) -> TlsOptions {
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
    let pki = TestPki::generate();
    let (server, port) = tls_server(&pki, false);
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
    let pki = TestPki::generate();
    let (server, port) = tls_server(&pki, false);
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
    let pki = TestPki::generate();
    let (server, port) = tls_server(&pki, true);
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
