//! The examples in `migrate-core/examples/`, built and run against real servers: the
//! 15-line renaming tool and the SCAN + DUMP copier on the public client.

#[path = "../examples/rename_keys.rs"]
#[allow(dead_code, unreachable_pub)]
mod rename_keys;

#[path = "../examples/dump_restore_copy.rs"]
#[allow(dead_code, unreachable_pub)]
mod dump_restore_copy;

use testkit::{Dataset, Flavor, Server, Snapshot};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn rename_keys_copies_sessions_as_s2() {
    let source = Server::builder(Flavor::Redis7_0)
        .config("repl-diskless-sync-delay", "0")
        .start();
    let mut s = source.connect();
    for i in 0..50 {
        s.ok(["SET", &format!("session:{i}"), &i.to_string()]);
        s.ok(["SET", &format!("other:{i}"), "x"]);
    }
    let target = Server::start(Flavor::Valkey9_1);
    let report = runtime()
        .block_on(rename_keys::rename_sessions(
            &source.url(),
            &target.url(),
            true,
        ))
        .unwrap();
    assert_eq!(report.keys_written(), 50);
    let mut t = target.connect();
    for i in 0..50 {
        assert_eq!(
            t.bulk(["GET", &format!("s2:{i}")]).as_deref(),
            Some(i.to_string().as_bytes())
        );
        assert_eq!(
            t.int(["EXISTS", &format!("session:{i}"), &format!("other:{i}")]),
            0
        );
    }
}

#[test]
fn dump_restore_copy_copies_every_db() {
    let source = Server::start(Flavor::Redis7_0);
    Dataset::small().fill(&source);
    let target = Server::start(Flavor::Redis7_0);
    let copied = runtime()
        .block_on(dump_restore_copy::copy(&source.url(), &target.url(), 3))
        .unwrap();
    assert_eq!(copied, 600);
    Snapshot::take(&source, 3).assert_same(&Snapshot::take(&target, 3), 1000);
}
