//! Every flavour of the matrix starts, reports its version, and writes the RDB version
//! we expect from it.

use testkit::{Flavor, Server};

fn check(flavor: Flavor) {
    let server = Server::start(flavor);
    let mut conn = server.connect();
    let field = if flavor.is_valkey() {
        "valkey_version"
    } else {
        "redis_version"
    };
    assert_eq!(
        conn.info_field("server", field).as_deref(),
        Some(flavor.version()),
        "{flavor}: INFO server"
    );
    conn.ok(["SET", "k", "v"]);
    let rdb = server.save();
    assert_eq!(
        &rdb[..9],
        flavor.rdb_magic(),
        "{flavor}: magic {:?}",
        String::from_utf8_lossy(&rdb[..9])
    );
}

#[test]
fn redis_6_2() {
    check(Flavor::Redis6_2);
}

#[test]
fn redis_7_0() {
    check(Flavor::Redis7_0);
}

#[test]
fn valkey_8_1() {
    check(Flavor::Valkey8_1);
}

#[test]
fn valkey_9_1() {
    check(Flavor::Valkey9_1);
}

#[test]
fn password_and_builder_args() {
    let server = Server::builder(Flavor::Redis7_0)
        .password("s3cret")
        .config("hash-max-listpack-entries", "1")
        .start();
    let mut conn = server.connect();
    let reply = conn.must(["CONFIG", "GET", "hash-max-listpack-entries"]);
    assert_eq!(
        reply,
        testkit::Reply::Array(vec![
            testkit::Reply::Bulk(b"hash-max-listpack-entries".to_vec()),
            testkit::Reply::Bulk(b"1".to_vec()),
        ])
    );
    assert!(server.url().contains(":s3cret@"));
}

#[test]
fn small_dataset_snapshot_is_stable() {
    // The dataset writes every type; a snapshot reads it all back; two snapshots agree.
    let server = Server::start(Flavor::Valkey9_1);
    let stats = testkit::Dataset::small().fill(&server);
    assert_eq!(stats.keys, 600);
    let a = testkit::Snapshot::take(&server, 3);
    assert_eq!(a.len(), 600);
    let b = testkit::Snapshot::take(&server, 3);
    a.assert_same(&b, 2_000);
    let kinds: std::collections::BTreeSet<_> = a
        .keys
        .values()
        .map(|e| {
            format!("{:?}", e.value)
                .split('(')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(kinds.len(), 6, "{kinds:?}");
}
