//! Cross-slot and keyless commands into a Redis Cluster target, applied exactly once
//! across crashes: a standalone source runs `RENAME`, `SMOVE`, `SUNIONSTORE`, `LMOVE`,
//! `FUNCTION LOAD` and `FLUSHALL` over keys of every master; the migration is made to stop
//! after each single copy-back (or per-master) transaction (the hidden
//! `crash_after_copy_backs` fault), resumed from the checkpoints again and again until it
//! ends, and the target must then equal the source.

mod common;

use common::*;

use migrate_core::migrate::{Migration, MigrationBuilder, MigrationError, Source, TargetConfig};
use testkit::cluster::key_in_slot;
use testkit::{Cluster, Conn, Flavor, Server, Snapshot};

const LIBRARY: &str = "#!lua name=xlib\nredis.register_function('xget', function(keys) return redis.call('GET', keys[1]) end)";

fn source() -> Server {
    Server::builder(Flavor::Redis7_0)
        .config("repl-diskless-sync-delay", "0")
        .no_modules()
        .start()
}

fn into_cluster(source: &Server, cluster: &Cluster) -> MigrationBuilder {
    let config = replication_client::Config::new(&source.url()).unwrap();
    Migration::builder()
        .source(Source::Live(config))
        .target(TargetConfig::parse(&cluster.masters()[0].url()).unwrap())
}

/// A key of `slot` (3 masters: slots 0-5460, 5461-10922, 10923-16383).
fn key(slot: u16, name: &str) -> String {
    String::from_utf8(key_in_slot(slot, name)).unwrap()
}

/// Runs the migration stopping after one copy-back transaction each time, resumed until it
/// ends; returns how many runs stopped on the fault.
fn resume_until_done(source: &Server, cluster: &Cluster) -> u32 {
    let mut crashes = 0;
    loop {
        let (report, result) = run_once(into_cluster(source, cluster).crash_after_copy_backs(1));
        assert!(report.resumed_from.is_some(), "{report:?}");
        assert_eq!(report.full_syncs, 0, "resumed without a full sync");
        match result {
            Ok(()) => {
                clean(&report, "resumed");
                return crashes;
            }
            Err(MigrationError::Internal(e)) if e.contains("fault injected") => crashes += 1,
            Err(e) => panic!("run {crashes}: {e}"),
        }
        assert!(crashes < 60, "no progress");
    }
}

fn same(source: &Server, cluster: &Cluster) {
    let expected = Snapshot::take(source, 1);
    assert!(!expected.is_empty());
    expected.assert_same(&cluster.snapshot(), TTL_TOLERANCE_MS);
}

/// The keys under the reserved prefix on every master.
fn reserved_keys(cluster: &Cluster) -> Vec<String> {
    let mut out = Vec::new();
    for m in cluster.masters() {
        if let testkit::Reply::Array(keys) = m.connect().must(["KEYS", "__redis-migrate:*"]) {
            for k in keys {
                if let testkit::Reply::Bulk(k) = k {
                    out.push(String::from_utf8_lossy(&k).into_owned());
                }
            }
        }
    }
    out
}

fn cross_slot_writes(conn: &mut Conn, r: u32) {
    let s = r.to_string();
    let (a, b) = (key(100, &format!("a{s}")), key(6000, &format!("b{s}")));
    let (s1, s2) = (key(200, "set1"), key(12000, "set2"));
    let (l1, l2) = (key(300, "list1"), key(7000, "list2"));
    let union = key(11000, "union");
    conn.must(["SET", &a, &s, "PX", "3600000"]);
    conn.must(["RENAME", &a, &b]);
    conn.must(["SADD", &s1, &format!("m{s}"), &format!("n{s}")]);
    conn.must(["SMOVE", &s1, &s2, &format!("m{s}")]);
    conn.must(["SUNIONSTORE", &union, &s1, &s2]);
    conn.must(["RPUSH", &l1, &format!("x{s}"), &format!("y{s}")]);
    conn.must(["LMOVE", &l1, &l2, "LEFT", "RIGHT"]);
    // A script writing two slots: its effects come as one transaction at one offset.
    conn.must([
        "EVAL",
        "redis.call('RENAME', KEYS[1], KEYS[2]); redis.call('LMOVE', KEYS[3], KEYS[4], 'LEFT', 'LEFT'); return 1",
        "4",
        &b,
        &key(13000, &format!("c{s}")),
        &l2,
        &l1,
    ]);
}

#[test]
fn cross_slot_commands_resume_exactly_once() {
    let source = source();
    let cluster = Cluster::start(Flavor::Valkey9_1, 3, 0);
    let mut conn = source.connect();
    conn.must(["SET", "seed", "1"]);
    let (report, result) = run_once(into_cluster(&source, &cluster));
    result.unwrap();
    clean(&report, "first");
    for r in 0..2 {
        cross_slot_writes(&mut conn, r);
    }
    let crashes = resume_until_done(&source, &cluster);
    eprintln!("{crashes} runs stopped by the fault");
    // Each command has 2-3 slots to copy back: every window between two was hit.
    assert!(crashes >= 20, "{crashes} crashes");
    same(&source, &cluster);
    // The temporary keys are gone; the records stay under the reserved prefix.
    let own = reserved_keys(&cluster);
    assert!(
        !own.iter()
            .any(|k| k.contains(":xslot:{") && !k.ends_with(":stage")),
        "{own:?}"
    );
    // A moved element, counted once: a doubled LMOVE or SMOVE would show.
    let l2 = key(7000, "list2");
    assert_eq!(
        cluster.connect().int(["LLEN", l2.as_str()]),
        source.connect().int(["LLEN", l2.as_str()])
    );
    // `forget` removes every record.
    let target = TargetConfig::parse(&cluster.masters()[1].url()).unwrap();
    runtime()
        .block_on(migrate_core::migrate::forget_checkpoint(
            &target,
            std::time::Duration::from_secs(5),
        ))
        .unwrap();
    assert!(reserved_keys(&cluster).is_empty());
}

#[test]
fn keyless_commands_resume_exactly_once() {
    let source = source();
    let cluster = Cluster::start(Flavor::Valkey9_1, 3, 0);
    let mut conn = source.connect();
    conn.must(["SET", "seed", "1"]);
    let (report, result) = run_once(into_cluster(&source, &cluster));
    result.unwrap();
    clean(&report, "first");
    for slot in [10, 6000, 12000] {
        conn.must(["SET", &key(slot, "before"), "1"]);
    }
    // Loaded twice, the library would fail ("already exists").
    conn.must(["FUNCTION", "LOAD", LIBRARY]);
    conn.must(["SET", &key(20, "between"), "1"]);
    // Its records are erased by the flush: set again with it, else replayed it would run
    // again on the flushed keys.
    conn.must(["RENAME", &key(20, "between"), &key(6020, "between")]);
    conn.must(["FLUSHALL"]);
    for slot in [30, 6100, 12100] {
        conn.must(["SET", &key(slot, "after"), "2"]);
    }
    conn.must(["RENAME", &key(30, "after"), &key(12200, "renamed")]);
    let crashes = resume_until_done(&source, &cluster);
    eprintln!("{crashes} runs stopped by the fault");
    // Two commands on three masters, and the copy-backs of the RENAMEs.
    assert!(crashes >= 8, "{crashes} crashes");
    same(&source, &cluster);
    for m in cluster.masters() {
        let list = m
            .connect()
            .must(["FUNCTION", "LIST", "LIBRARYNAME", "xlib"]);
        assert!(
            format!("{list:?}").contains("[120, 108, 105, 98]"),
            "{}: {list:?}",
            m.addr()
        );
    }
    // Nothing from before the flush came back.
    assert_eq!(cluster.dbsize() - reserved_keys(&cluster).len() as i64, 3);
}

/// The master holding the temporary keys and the stage marker (the floor's slot) killed
/// while cross-slot commands stream in: each command is retried as a whole from its records
/// on the promoted replica, and the migration ends without error or failure; no write is
/// applied twice (the members and elements are never more than the source's).
/// Writes the killed master acknowledged but had not replicated are lost by the cluster
/// itself, so the target may hold less.
#[test]
fn temp_slot_master_killed_under_cross_slot_load() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let source = source();
    let mut cluster = Cluster::start(Flavor::Redis7_0, 3, 1);
    source.connect().must(["SET", "seed", "1"]);
    let rt = runtime();
    let handle = rt.block_on(async { into_cluster(&source, &cluster).start() });
    wait_for_phase(&handle, migrate_core::migrate::Phase::Incremental);
    let stop_writer = Arc::new(AtomicBool::new(false));
    let writer = std::thread::spawn({
        let stop = stop_writer.clone();
        let mut conn = source.connect();
        move || {
            let mut r = 0;
            while !stop.load(Ordering::Relaxed) {
                let s = r.to_string();
                let (s1, s2) = (key(200, "set1"), key(12000, "set2"));
                let (l1, l2) = (key(300, "list1"), key(7000, "list2"));
                conn.must(["SADD", &s1, &s]);
                conn.must(["SMOVE", &s1, &s2, &s]);
                conn.must(["RPUSH", &l1, &s]);
                conn.must(["LMOVE", &l1, &l2, "LEFT", "RIGHT"]);
                r += 1;
                if r % 5 == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
            r
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    let floor = migrate_core::key_slot(b"__redis-migrate:checkpoint");
    let owner = cluster.master_for_slot(floor).id().to_string();
    let i = cluster
        .masters()
        .iter()
        .position(|m| m.id() == owner)
        .unwrap();
    cluster.kill_master(i);
    cluster.wait_ok();
    std::thread::sleep(std::time::Duration::from_millis(500));
    stop_writer.store(true, Ordering::Relaxed);
    let rounds = writer.join().unwrap() as i64;
    wait_caught_up(&handle, &mut source.connect());
    handle.stop();
    let (report, result) = rt.block_on(handle.finish());
    result.unwrap();
    clean(&report, "after the failover");
    eprintln!(
        "{rounds} rounds; retries {}, redirects {}, resent {}",
        report.cluster_retries, report.cluster_redirects, report.cluster_resent
    );
    let mut c = cluster.connect();
    let n = |c: &mut testkit::ClusterConn, cmd: &str, k: String| c.int([cmd, k.as_str()]);
    let sets = n(&mut c, "SCARD", key(200, "set1")) + n(&mut c, "SCARD", key(12000, "set2"));
    let lists = n(&mut c, "LLEN", key(300, "list1")) + n(&mut c, "LLEN", key(7000, "list2"));
    assert!(
        sets <= rounds && lists <= rounds,
        "{sets} {lists} of {rounds}"
    );
    assert!(
        sets > rounds / 2 && lists > rounds / 2,
        "{sets} {lists} of {rounds}"
    );
}
