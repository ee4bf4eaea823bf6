//! Migrations into a Redis Cluster target (testkit clusters of 3 masters): a standalone
//! source copied `once` and kept in sync under a writer using cross-slot commands,
//! transactions and scripts; an RDB file import; the target resharded and failed over
//! mid-sync; a source with data in db 1 refused without a db map; `--on-conflict skip`
//! with keys written as commands (replication and scan mode, db 1 of a Valkey 9 cluster),
//! RDB type probing, and search indexes on a two-master Redis 7.4 cluster with its modules.

mod common;

use common::*;
use std::time::{Duration, Instant};

use migrate_core::migrate::{
    Migration, MigrationBuilder, MigrationError, MigrationHandle, Phase, Report, Source,
    TargetConfig,
};
use migrate_core::Filter;
use testkit::cluster::key_in_slot;
use testkit::{Cluster, Conn, Dataset, Flavor, Server, Snapshot};

const LIBRARY: &str = "#!lua name=cmlib\nredis.register_function('cmget', function(keys) return redis.call('GET', keys[1]) end)";

fn source(flavor: Flavor) -> Server {
    Server::builder(flavor)
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

fn small() -> Dataset {
    Dataset {
        keys: 400,
        dbs: 1,
        ..Dataset::small()
    }
}

/// The library is on every master.
fn library_everywhere(cluster: &Cluster) {
    for m in cluster.masters() {
        let list = m
            .connect()
            .must(["FUNCTION", "LIST", "LIBRARYNAME", "cmlib"]);
        assert!(
            // `cmlib` as the bytes the Debug output shows.
            format!("{list:?}").contains("[99, 109, 108, 105, 98]"),
            "{}: {list:?}",
            m.addr()
        );
    }
}

/// The keys under the reserved prefix on every master.
fn reserved_keys(cluster: &Cluster) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for m in cluster.masters() {
        let mut c = m.connect();
        if let testkit::Reply::Array(keys) = c.must(["KEYS", "__redis-migrate:*"]) {
            for k in keys {
                if let testkit::Reply::Bulk(k) = k {
                    out.push(k);
                }
            }
        }
    }
    out
}

fn same(source: &Server, cluster: &Cluster) {
    let expected = Snapshot::take(source, 1);
    assert!(!expected.is_empty());
    expected.assert_same(&cluster.snapshot(), TTL_TOLERANCE_MS);
}

#[test]
fn once_into_a_cluster() {
    let source = source(Flavor::Redis7_0);
    small().fill(&source);
    source.connect().must(["FUNCTION", "LOAD", LIBRARY]);
    let cluster = Cluster::start(Flavor::Valkey9_1, 3, 0);
    let (report, result) = run_once(into_cluster(&source, &cluster));
    result.unwrap();
    clean(&report, "once");
    same(&source, &cluster);
    library_everywhere(&cluster);
    assert_eq!(report.target_cluster_masters, Some(3));
    assert_eq!(report.functions, 1, "counted once");
    assert!(report.to_json().contains("\"target_cluster_masters\": 3"));
}

/// Cross-slot writes of every kind, a transaction spanning slots, a script touching two
/// slots and counters (a lost or doubled command shows in their values).
fn cross_slot_load(conn: &mut Conn, rounds: std::ops::Range<u32>) {
    for r in rounds {
        let s = r.to_string();
        let a = format!("a:{s}");
        let b = format!("b:{s}");
        conn.must(["INCR", "counter"]);
        conn.must(["INCR", &format!("counter:{}", r % 7)]);
        conn.must(["MSET", &a, &s, &b, &s, "c", &s]);
        conn.must(["RENAME", &a, &format!("renamed:{s}")]);
        conn.must(["SADD", "set:1", &s, "x"]);
        conn.must(["SMOVE", "set:1", "set:2", &s]);
        conn.must(["SUNIONSTORE", "union", "set:1", "set:2"]);
        conn.must(["RPUSH", "list:1", &s, "y"]);
        conn.must(["LMOVE", "list:1", "list:2", "LEFT", "RIGHT"]);
        conn.must(["DEL", &b, "c", "nothing"]);
        conn.must(["MULTI"]);
        conn.must(["INCR", "tx:1"]);
        conn.must(["INCR", "tx:2"]);
        conn.must(["SET", &format!("txs:{s}"), &s]);
        conn.must(["EXEC"]);
        conn.must([
            "EVAL",
            "redis.call('INCR', KEYS[1]); redis.call('RPUSH', KEYS[2], ARGV[1]); return 1",
            "2",
            "script:1",
            "script:2",
            &s,
        ]);
        if r % 10 == 0 {
            // Absolute: Redis 6.2 replicates a relative PEXPIRE as it is, so the target's
            // expiry would be later by the time the command took to be applied (up to a
            // second here, with every cross-slot command split into steps).
            let at = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 3_600_000;
            conn.must(["PEXPIREAT", &format!("renamed:{s}"), &at.to_string()]);
        }
    }
}

/// Waits until the migration is in the incremental phase.
fn incremental(handle: &MigrationHandle) {
    wait_for_phase(handle, Phase::Incremental);
}

fn stop(handle: MigrationHandle) -> (Report, Result<(), MigrationError>) {
    handle.stop();
    runtime().block_on(handle.finish())
}

fn continuous(from: Flavor, to: Flavor, checkpoint: bool) {
    let source = source(from);
    small().fill(&source);
    let cluster = Cluster::start(to, 3, 0);
    let rt = runtime();
    let handle = rt.block_on(async {
        into_cluster(&source, &cluster)
            .checkpoint(checkpoint)
            .start()
    });
    incremental(&handle);
    let mut conn = source.connect();
    cross_slot_load(&mut conn, 0..60);
    wait_caught_up(&handle, &mut conn);
    let (report, result) = stop(handle);
    result.unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
    clean(&report, &format!("{from} -> {to}"));
    same(&source, &cluster);
    assert!(report.cross_slot_commands >= 60 * 4, "{report:?}");
    assert!(report.cross_slot_split >= 60 * 2, "{report:?}");
    assert!(report.cross_slot_transactions >= 60, "{report:?}");
    assert!(report.warnings.iter().any(|w| w.contains("not atomically")));
    let mut c = cluster.connect();
    assert_eq!(c.bulk(["GET", "counter"]), Some(b"60".to_vec()));
    assert_eq!(c.bulk(["GET", "tx:1"]), Some(b"60".to_vec()));
    assert_eq!(c.bulk(["GET", "script:1"]), Some(b"60".to_vec()));
    // No temporary key left behind; the migration's own keys are its checkpoints.
    let own = reserved_keys(&cluster);
    assert!(
        own.iter()
            .all(|k| k.starts_with(b"__redis-migrate:checkpoint")),
        "{own:?}"
    );
    assert_eq!(
        cluster.dbsize() - own.len() as i64,
        Snapshot::take(&source, 1).len() as i64
    );
}

#[test]
fn continuous_redis_7_0_into_valkey_9_1_cluster() {
    continuous(Flavor::Redis7_0, Flavor::Valkey9_1, true);
}

#[test]
fn continuous_valkey_8_1_into_redis_7_0_cluster() {
    continuous(Flavor::Valkey8_1, Flavor::Redis7_0, true);
}

/// Redis 6.2: the topology from `CLUSTER SLOTS`.
#[test]
fn continuous_redis_6_2_into_redis_6_2_cluster() {
    continuous(Flavor::Redis6_2, Flavor::Redis6_2, true);
}

/// Without checkpoints: no slot transactions, every command on its own.
#[test]
fn continuous_without_checkpoints() {
    continuous(Flavor::Redis7_0, Flavor::Redis7_0, false);
}

#[test]
fn cross_slot_transactions_can_be_refused() {
    let source = source(Flavor::Redis7_0);
    let cluster = Cluster::start(Flavor::Redis7_0, 3, 0);
    let rt = runtime();
    let handle = rt.block_on(async {
        into_cluster(&source, &cluster)
            .cross_slot(migrate_core::migrate::CrossSlot::Refuse)
            .start()
    });
    incremental(&handle);
    let mut conn = source.connect();
    conn.must(["MULTI"]);
    conn.must(["SET", "{x}1", "1"]);
    conn.must(["SET", "{x}2", "2"]);
    conn.must(["EXEC"]);
    conn.must(["MULTI"]);
    conn.must(["SET", "foo", "1"]);
    conn.must(["SET", "bar", "2"]);
    conn.must(["EXEC"]);
    let (_, result) = rt.block_on(handle.finish());
    let e = result.unwrap_err().to_string();
    assert!(e.contains("2 slots") && e.contains("--cross-slot"), "{e}");
    assert_eq!(cluster.connect().bulk(["GET", "foo"]), None, "not applied");
}

#[test]
fn rdb_import_into_a_cluster() {
    let source = Server::start(Flavor::Redis7_0);
    small().fill(&source);
    source.connect().must(["FUNCTION", "LOAD", LIBRARY]);
    source.save();
    let cluster = Cluster::start(Flavor::Redis7_0, 3, 0);
    let (report, result) = runtime().block_on(async {
        Migration::builder()
            .source(Source::RdbFile(source.rdb_path()))
            .target(TargetConfig::parse(&cluster.masters()[1].url()).unwrap())
            .start()
            .finish()
            .await
    });
    result.unwrap();
    clean(&report, "import");
    same(&source, &cluster);
    library_everywhere(&cluster);
    assert_eq!(report.target_cluster_masters, Some(3));
}

/// Writes `n` keys spread over every slot, idempotently (SET/HSET/DEL), and counts the
/// keys written so far.
fn spread_load(conn: &mut Conn, rounds: std::ops::Range<u32>) {
    for r in rounds {
        let slot = ((r * 331) % 16384) as u16;
        let key = String::from_utf8(key_in_slot(slot, "load")).unwrap();
        conn.must(["SET", &key, &r.to_string()]);
        conn.must(["HSET", &format!("h:{r}"), "f", &r.to_string()]);
        if r % 5 == 0 {
            conn.must(["DEL", &format!("h:{}", r / 2)]);
        }
    }
}

#[test]
fn target_resharded_mid_sync() {
    let source = source(Flavor::Redis7_0);
    small().fill(&source);
    let cluster = Cluster::start(Flavor::Redis7_0, 3, 0);
    let rt = runtime();
    let handle = rt.block_on(async { into_cluster(&source, &cluster).start() });
    incremental(&handle);
    let mut conn = source.connect();
    spread_load(&mut conn, 0..300);
    // Slots of the first master move to the second while writes keep coming.
    let masters = cluster.masters();
    let from = cluster.slots_of(masters[0])[0].clone();
    let to = masters[1].id().to_string();
    let first = *from.start();
    let moving = first..=first + 200;
    let writer = std::thread::spawn({
        let mut conn = source.connect();
        move || {
            spread_load(&mut conn, 300..900);
            cross_slot_load(&mut conn, 0..20);
        }
    });
    cluster.move_slots(moving.clone(), &to);
    writer.join().unwrap();
    assert_eq!(
        cluster.master_for_slot(*moving.start()).id(),
        to,
        "the slots moved"
    );
    wait_caught_up(&handle, &mut conn);
    let (report, result) = stop(handle);
    result.unwrap();
    clean(&report, "reshard");
    eprintln!(
        "reshard: {} redirections, {} retries",
        report.cluster_redirects, report.cluster_retries
    );
    same(&source, &cluster);
    assert_eq!(
        cluster.connect().bulk(["GET", "counter"]),
        Some(b"20".to_vec())
    );
}

#[test]
fn target_master_killed_mid_sync() {
    let source = source(Flavor::Valkey9_1);
    small().fill(&source);
    let mut cluster = Cluster::start(Flavor::Valkey9_1, 3, 1);
    let rt = runtime();
    let handle = rt.block_on(async { into_cluster(&source, &cluster).start() });
    incremental(&handle);
    let mut conn = source.connect();
    spread_load(&mut conn, 0..300);
    wait_caught_up(&handle, &mut conn);
    // Master 2 dies; its replica takes over (node timeout 2 s) while writes keep coming.
    cluster.kill_master(2);
    let started = Instant::now();
    spread_load(&mut conn, 300..700);
    cluster.wait_ok();
    spread_load(&mut conn, 700..800);
    assert!(started.elapsed() < Duration::from_secs(60));
    wait_caught_up(&handle, &mut conn);
    let (report, result) = stop(handle);
    result.unwrap();
    clean(&report, "failover");
    same(&source, &cluster);
    assert!(report.cluster_retries + report.cluster_resent + report.cluster_redirects > 0);
}

#[test]
fn a_source_db_the_cluster_lacks_is_refused_without_a_map() {
    let source = source(Flavor::Redis7_0);
    let mut conn = source.connect();
    conn.must(["SET", "zero", "0"]);
    conn.must(["SELECT", "1"]);
    conn.must(["SET", "one", "1"]);
    conn.must(["SADD", "{one}set", "a", "b"]);
    let cluster = Cluster::start(Flavor::Redis7_0, 3, 0);
    let (_, result) = run_once(into_cluster(&source, &cluster));
    let e = result.unwrap_err();
    assert!(matches!(e, MigrationError::ClusterDbs { .. }), "{e}");
    let shown = e.to_string();
    assert!(
        shown.contains("db 1") && shown.contains("--map-db"),
        "{shown}"
    );
    assert_eq!(cluster.dbsize(), 0, "nothing written");

    let (report, result) =
        run_once(into_cluster(&source, &cluster).filter(Filter::new().map_db(1, 0)));
    result.unwrap();
    clean(&report, "mapped");
    let mut c = cluster.connect();
    assert_eq!(c.bulk(["GET", "one"]), Some(b"1".to_vec()));
    assert_eq!(c.bulk(["GET", "zero"]), Some(b"0".to_vec()));
    assert_eq!(c.int(["SCARD", "{one}set"]), 2);

    // An RDB file with a key in db 1 is refused at that key.
    source.save();
    let other = Cluster::start(Flavor::Redis7_0, 3, 0);
    let (_, result) = runtime().block_on(async {
        Migration::builder()
            .source(Source::RdbFile(source.rdb_path()))
            .target(TargetConfig::parse(&other.masters()[0].url()).unwrap())
            .start()
            .finish()
            .await
    });
    let e = result.unwrap_err();
    assert!(matches!(e, MigrationError::ClusterDbs { .. }), "{e}");
}

/// Counters, lists, a transaction spanning slots and per-slot splits: a write lost or
/// applied twice shows in their values.
fn counting_load(conn: &mut Conn, r: u32) {
    let s = r.to_string();
    conn.must(["INCR", "counter"]);
    conn.must(["INCR", &format!("c:{}", r % 50)]);
    conn.must(["RPUSH", &format!("list:{}", r % 20), &s]);
    conn.must(["HINCRBY", "hash", &format!("f{}", r % 30), "1"]);
    conn.must(["MULTI"]);
    conn.must(["INCR", "tx:a"]);
    conn.must(["INCR", "tx:b"]);
    conn.must(["EXEC"]);
    conn.must([
        "MSET",
        &format!("m:{}", r % 40),
        &s,
        &format!("n:{}", r % 40),
        &s,
    ]);
    if r % 3 == 0 {
        conn.must([
            "DEL",
            &format!("m:{}", (r + 1) % 40),
            &format!("n:{}", (r + 2) % 40),
        ]);
    }
}

#[test]
fn crash_and_resume_into_a_cluster() {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::sync::Arc;

    let source = source(Flavor::Redis7_0);
    small().fill(&source);
    let cluster = Cluster::start(Flavor::Valkey9_1, 3, 0);
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicU32::new(0));
    let writer = std::thread::spawn({
        let (stop, rounds) = (stop.clone(), rounds.clone());
        let mut conn = source.connect();
        move || {
            let mut r = 0;
            while !stop.load(Ordering::Relaxed) {
                counting_load(&mut conn, r);
                r += 1;
                rounds.store(r, Ordering::Relaxed);
                if r % 20 == 0 {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    });
    for crash in 0..3 {
        let rt = runtime();
        let handle = rt.block_on(async { into_cluster(&source, &cluster).start() });
        incremental(&handle);
        let at = rounds.load(Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(20);
        while rounds.load(Ordering::Relaxed) < at + 150 {
            assert!(
                Instant::now() < deadline,
                "crash {crash}: the writer stalled"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            !handle.is_finished(),
            "crash {crash}: {:?}",
            handle.progress()
        );
        // The tool dies: its task and connections are dropped mid-stream.
        drop(rt);
        drop(handle);
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let (report, result) = run_once(into_cluster(&source, &cluster));
    result.unwrap();
    clean(&report, "resumed");
    assert!(report.resumed_from.is_some(), "{report:?}");
    eprintln!(
        "resumed from {:?}, {} commands skipped as applied",
        report.resumed_from, report.cluster_resume_skipped
    );
    assert_eq!(report.full_syncs, 0, "resumed without a full sync");
    same(&source, &cluster);
    let n = rounds.load(Ordering::Relaxed).to_string().into_bytes();
    assert_eq!(cluster.connect().bulk(["GET", "counter"]), Some(n.clone()));
    assert_eq!(cluster.connect().bulk(["GET", "tx:b"]), Some(n));
    // `forget` removes the checkpoint keys from every master, and only them.
    let keys = cluster.dbsize();
    let own = reserved_keys(&cluster).len() as i64;
    assert!(own > 1, "the floor and the slots' keys");
    let target = TargetConfig::parse(&cluster.masters()[1].url()).unwrap();
    let forgot = runtime()
        .block_on(migrate_core::migrate::forget_checkpoint(
            &target,
            Duration::from_secs(5),
        ))
        .unwrap();
    assert!(forgot);
    assert!(reserved_keys(&cluster).is_empty());
    assert_eq!(cluster.dbsize(), keys - own);
}

#[test]
fn every_master_is_checked_before_writing() {
    let source = source(Flavor::Redis7_0);
    source.connect().must(["SET", "k", "v"]);
    let cluster = Cluster::start(Flavor::Redis7_0, 3, 0);
    // Not the URL's node: only asking every master finds it.
    cluster.masters()[2]
        .connect()
        .must(["FUNCTION", "LOAD", LIBRARY]);
    cluster.masters()[1]
        .connect()
        .must(["SET", "{k}other", "x"]);
    let (_, result) = run_once(into_cluster(&source, &cluster));
    let e = result.unwrap_err();
    assert!(matches!(e, MigrationError::TargetNotEmpty { .. }), "{e}");
    cluster.masters()[1].connect().must(["FLUSHALL"]);
    let (_, result) = run_once(into_cluster(&source, &cluster));
    let e = result.unwrap_err();
    assert!(
        matches!(e, MigrationError::TargetHasDefinitions { .. }),
        "{e}"
    );
    assert!(e.to_string().contains(&cluster.masters()[2].addr()), "{e}");
    assert_eq!(cluster.dbsize(), 0, "nothing written");
}

/// A master killed with writes in flight: the migration follows the failover and ends
/// without error; no write is applied twice (counters never above the source's). Writes
/// the killed master acknowledged but had not replicated are lost by the cluster itself,
/// so the counters may be below.
#[test]
fn target_master_killed_under_load() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let source = source(Flavor::Redis7_0);
    let mut cluster = Cluster::start(Flavor::Redis7_0, 3, 1);
    let rt = runtime();
    let handle = rt.block_on(async { into_cluster(&source, &cluster).start() });
    incremental(&handle);
    let stop_writer = Arc::new(AtomicBool::new(false));
    let writer = std::thread::spawn({
        let stop = stop_writer.clone();
        let mut conn = source.connect();
        move || {
            let mut r = 0;
            while !stop.load(Ordering::Relaxed) {
                counting_load(&mut conn, r);
                r += 1;
                if r % 20 == 0 {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            r
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    cluster.kill_master(0);
    cluster.wait_ok();
    std::thread::sleep(Duration::from_millis(500));
    stop_writer.store(true, Ordering::Relaxed);
    let rounds = writer.join().unwrap() as i64;
    let mut conn = source.connect();
    wait_caught_up(&handle, &mut conn);
    let (report, result) = stop(handle);
    result.unwrap();
    let mut c = cluster.connect();
    let counter = |c: &mut testkit::ClusterConn, k: &str| -> i64 {
        c.bulk(["GET", k])
            .map(|v| String::from_utf8(v).unwrap().parse().unwrap())
            .unwrap_or(0)
    };
    for k in ["counter", "tx:a", "tx:b"] {
        let n = counter(&mut c, k);
        assert!(n <= rounds, "{k}: {n} > {rounds}: a write applied twice");
        assert!(n > rounds / 2, "{k}: {n} of {rounds}");
    }
    eprintln!(
        "{rounds} rounds; counter {}; redirects {}, retries {}, resent {}, failures {}",
        counter(&mut c, "counter"),
        report.cluster_redirects,
        report.cluster_retries,
        report.cluster_resent,
        report.failures_total
    );
    assert!(
        report.cluster_retries + report.cluster_resent > 0,
        "{report:?}"
    );
}

/// A source that refuses replication, copied in scan mode into a cluster: the `DBSIZE`
/// comparison sums every master, and the reconcile after a `FLUSHDB` (which keyspace
/// notifications do not carry) sweeps every master.
#[test]
fn scan_mode_into_a_cluster() {
    use migrate_core::migrate::{ScanOptions, SourceMode};

    let source = Server::builder(Flavor::Redis7_0)
        .config("user", "app on >pw ~* &* +@all -sync -psync")
        .login("app", "pw")
        .no_modules()
        .start();
    small().fill(&source);
    let cluster = Cluster::start(Flavor::Redis7_0, 3, 0);
    let rt = runtime();
    let handle = rt.block_on(async {
        into_cluster(&source, &cluster)
            .source_mode(SourceMode::Auto)
            .scan_options(
                ScanOptions::default()
                    .count(100)
                    .set_notify_keyspace_events(true)
                    .reconcile_interval(Duration::from_millis(300)),
            )
            .start()
    });
    incremental(&handle);
    let wait_equal = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(25);
        loop {
            // The sweep may remove a key between the snapshot's SCAN and its read of the
            // key (testkit then panics): read again.
            let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cluster.snapshot()));
            let Ok(got) = got else {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            };
            let diff = Snapshot::take(&source, 1).diff(&got, TTL_TOLERANCE_MS);
            if diff.is_empty() {
                return;
            }
            assert!(!handle.is_finished(), "{what}: ended early");
            assert!(
                Instant::now() < deadline,
                "{what}: {} differences, first {:?}",
                diff.len(),
                &diff[..diff.len().min(3)]
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    wait_equal("snapshot");
    let mut conn = source.connect();
    for i in 0..50 {
        conn.must(["SET", &format!("new:{i}"), "v"]);
        conn.must(["INCR", "count"]);
    }
    wait_equal("changes");
    conn.must(["FLUSHDB"]);
    conn.must(["SET", "after", "flush"]);
    wait_equal("after FLUSHDB");
    let (report, result) = stop(handle);
    result.unwrap();
    assert_eq!(report.source_mode, "scan");
    assert_eq!(report.target_cluster_masters, Some(3));
    assert_eq!(cluster.dbsize() - reserved_keys(&cluster).len() as i64, 1);
}

/// A Valkey 9 cluster with `cluster-databases 4` holds dbs 0 to 3: a source using dbs 0, 1
/// and 3 is copied as it is (full sync and replicated writes, checkpointed); db 5 is refused.
#[test]
fn valkey_9_cluster_databases() {
    let node = valkey_cluster_of_one(4);
    let source = source(Flavor::Valkey9_1);
    let mut s = source.connect();
    for db in ["0", "1", "3"] {
        s.ok(["SELECT", db]);
        s.ok(["SET", "k", db]);
        s.must(["RPUSH", "l", db, db]);
    }
    let target = TargetConfig::parse(&node.url()).unwrap();
    let config = replication_client::Config::new(&source.url()).unwrap();
    let rt = runtime();
    let handle = rt.block_on(async {
        Migration::builder()
            .source(Source::Live(config.clone()))
            .target(target.clone())
            .start()
    });
    incremental(&handle);
    for db in ["1", "3"] {
        s.ok(["SELECT", db]);
        for _ in 0..10 {
            s.must(["INCR", "n"]);
        }
    }
    wait_caught_up(&handle, &mut s);
    let (report, result) = stop(handle);
    result.unwrap();
    clean(&report, "cluster-databases");
    Snapshot::take(&source, 4).assert_same(&Snapshot::take(&node, 4), TTL_TOLERANCE_MS);

    s.ok(["SELECT", "5"]);
    s.ok(["SET", "k", "5"]);
    let (_, result) = rt.block_on(async {
        Migration::builder()
            .source(Source::Live(config))
            .target(target)
            .reset_checkpoint(true)
            .on_conflict(migrate_core::migrate::Conflict::Replace)
            .once(true)
            .start()
            .finish()
            .await
    });
    let e = result.unwrap_err();
    assert!(
        matches!(e, MigrationError::ClusterDbs { ref dbs, allowed: 4, .. } if dbs == &[5]),
        "{e}"
    );
    assert!(e.to_string().contains("dbs 0 to 3"), "{e}");
}

/// Keys already on the cluster (on two different masters), with values of their own.
fn conflicting_keys(cluster: &Cluster) -> Vec<(Vec<u8>, String)> {
    let mut out = Vec::new();
    for (i, m) in cluster.masters().iter().take(2).enumerate() {
        let slot = *cluster.slots_of(m)[0].start();
        let key = key_in_slot(slot, &format!("taken{i}:"));
        out.push((key, format!("target's own {i}")));
    }
    let mut c = cluster.connect();
    for (k, v) in &out {
        c.cmd_key(k, [&b"DEL"[..], k]);
        for n in 0..40 {
            c.cmd_key(k, [&b"RPUSH"[..], k, format!("{v} {n}").as_bytes()]);
        }
    }
    out
}

/// The same keys on the source, as lists longer than the lowered big-key threshold:
/// written as commands, so their existence on the target is asked with `EXISTS`.
fn conflicting_on_source(source: &Server, keys: &[(Vec<u8>, String)]) {
    let mut s = source.connect();
    for (k, _) in keys {
        for n in 0..40 {
            s.must([&b"RPUSH"[..], k, format!("source's {n}").as_bytes()]);
        }
    }
}

/// The cluster still holds its own values of `keys`; every other key is the source's.
fn kept(source: &Server, cluster: &Cluster, keys: &[(Vec<u8>, String)], report: &Report) {
    let mut c = cluster.connect();
    for (k, v) in keys {
        let first = c.cmd_key(k, [&b"LINDEX"[..], k, b"0"]);
        assert_eq!(first, testkit::Reply::Bulk(format!("{v} 0").into_bytes()));
        assert_eq!(c.cmd_key(k, [&b"LLEN"[..], k]), testkit::Reply::Int(40));
    }
    assert_eq!(
        report.skipped_conflict,
        keys.len() as u64,
        "{}",
        report.to_json()
    );
    let mut expected = Snapshot::take(source, 1);
    let mut got = cluster.snapshot();
    for (k, _) in keys {
        expected.keys.remove(&(0, k.clone()));
        got.keys.remove(&(0, k.clone()));
    }
    expected.assert_same(&got, TTL_TOLERANCE_MS);
}

/// `--on-conflict skip` into a cluster with keys written as commands (`WriteMode::Auto`:
/// a Valkey 9.1 source's newer types rewritten for Redis 6.2, and big keys over a lowered
/// threshold): `EXISTS` goes to each key's master; the keys present are kept and counted,
/// the others written.
#[test]
fn skip_existing_keys_written_as_commands() {
    use migrate_core::migrate::{Conflict, WriteMode};

    let source = source(Flavor::Valkey9_1);
    small().fill(&source);
    let cluster = Cluster::start(Flavor::Redis6_2, 3, 0);
    let keys = conflicting_keys(&cluster);
    conflicting_on_source(&source, &keys);
    let (report, result) = run_once(
        into_cluster(&source, &cluster)
            .write_mode(WriteMode::Auto)
            .big_key_bytes(64)
            .on_conflict(Conflict::Skip),
    );
    result.unwrap_or_else(|e| panic!("{e}: {}", report.to_json()));
    clean(&report, "skip");
    assert!(report.keys_rewritten > 0, "{}", report.to_json());
    kept(&source, &cluster, &keys, &report);
}

/// The same in scan mode (a source refusing replication): the snapshot's keys and its
/// big keys (copied in pieces) are checked on their master.
#[test]
fn skip_existing_keys_in_scan_mode_into_a_cluster() {
    use migrate_core::migrate::{Conflict, ScanOptions, SourceMode, WriteMode};

    let source = Server::builder(Flavor::Redis7_0)
        .config("user", "app on >pw ~* &* +@all -sync -psync")
        .login("app", "pw")
        .no_modules()
        .start();
    small().fill(&source);
    let cluster = Cluster::start(Flavor::Redis7_0, 3, 0);
    let keys = conflicting_keys(&cluster);
    conflicting_on_source(&source, &keys);
    let (report, result) = run_once(
        into_cluster(&source, &cluster)
            .source_mode(SourceMode::Auto)
            .scan_options(ScanOptions::default().count(100))
            .write_mode(WriteMode::Auto)
            .big_key_bytes(64)
            .on_conflict(Conflict::Skip),
    );
    result.unwrap_or_else(|e| panic!("{e}: {}", report.to_json()));
    clean(&report, "skip, scan");
    assert_eq!(report.source_mode, "scan");
    kept(&source, &cluster, &keys, &report);
}

/// `probe_restore(true)` into a cluster: the scratch `RESTORE` goes to the probe key's
/// master, the report names each type byte tried, and the copy is complete.
#[test]
fn probe_restore_into_a_cluster() {
    let source = source(Flavor::Valkey9_1);
    small().fill(&source);
    let cluster = Cluster::start(Flavor::Redis6_2, 3, 0);
    let (report, result) = run_once(into_cluster(&source, &cluster).probe_restore(true));
    result.unwrap_or_else(|e| panic!("{e}: {}", report.to_json()));
    clean(&report, "probe");
    assert!(!report.restore_probe.is_empty(), "{}", report.to_json());
    // Valkey 9.1's payloads carry an RDB version Redis 6.2 refuses.
    assert!(
        report.restore_probe.values().any(|ok| !ok),
        "{:?}",
        report.restore_probe
    );
    same(&source, &cluster);
    assert!(
        !reserved_keys(&cluster).contains(&b"__redis-migrate:probe".to_vec()),
        "the probe key is removed"
    );
}

/// A Redis Cluster of two Redis 7.4 masters with their modules (testkit's clusters start
/// 7.4 without them), slots split in halves.
fn module_cluster() -> Vec<Server> {
    let buses = [testkit::free_port(), testkit::free_port()];
    let nodes: Vec<Server> = buses
        .iter()
        .map(|bus| {
            Server::builder(Flavor::Redis7_4)
                .config("cluster-enabled", "yes")
                .config("cluster-config-file", "nodes.conf")
                .config("cluster-port", bus.to_string())
                .start()
        })
        .collect();
    nodes[0]
        .connect()
        .ok(["CLUSTER", "ADDSLOTSRANGE", "0", "8191"]);
    nodes[1]
        .connect()
        .ok(["CLUSTER", "ADDSLOTSRANGE", "8192", "16383"]);
    let bus = buses[1].to_string();
    nodes[0].connect().ok([
        "CLUSTER",
        "MEET",
        "127.0.0.1",
        &nodes[1].port().to_string(),
        &bus,
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    for n in &nodes {
        let mut c = n.connect();
        loop {
            let info = c.must(["CLUSTER", "INFO"]).text();
            if info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:2") {
                break;
            }
            assert!(Instant::now() < deadline, "cluster not ok: {info}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    nodes
}

/// Search indexes into a cluster: `FT.CREATE` is sent to every master. Redis Stack 7.4's
/// RediSearch has no cluster coordinator and routes the index name by its slot (`MOVED`
/// from the other masters): the index is created on that slot's master, indexes that
/// master's keys, and the report says the other masters' keys are not indexed. An index
/// already on a master is refused under `Refuse`, naming that master.
#[test]
fn search_indexes_on_every_master() {
    let source = Server::builder(Flavor::Redis7_4)
        .config("repl-diskless-sync-delay", "0")
        .start();
    let mut s = source.connect();
    s.ok([
        "FT.CREATE",
        "books",
        "ON",
        "HASH",
        "PREFIX",
        "1",
        "book:",
        "SCHEMA",
        "title",
        "TEXT",
        "year",
        "NUMERIC",
    ]);
    for i in 0..40 {
        s.int([
            "HSET",
            &format!("book:{i}"),
            "title",
            &format!("story {i}"),
            "year",
            &(1990 + i).to_string(),
        ]);
    }
    let nodes = module_cluster();
    let owner = usize::from(key_in_slot_owner(b"books"));
    let run = |node: usize, conflict| {
        let config = replication_client::Config::new(&source.url()).unwrap();
        run_once(
            Migration::builder()
                .source(Source::Live(config))
                .target(TargetConfig::parse(&nodes[node].url()).unwrap())
                .on_conflict(conflict),
        )
    };
    let (report, result) = run(0, migrate_core::migrate::Conflict::Refuse);
    result.unwrap_or_else(|e| panic!("{e}: {}", report.to_json()));
    clean(&report, "search");
    assert_eq!(report.search_indexes_created, ["books"]);
    let problems = report.search_index_problems.join("\n");
    assert!(
        report.search_index_problems.len() == 1
            && problems.contains("no cluster coordinator")
            && problems.contains(&nodes[owner].addr())
            && problems.contains("1 other master"),
        "{problems}"
    );
    let mut total = 0;
    for (i, n) in nodes.iter().enumerate() {
        let mut c = n.connect();
        let own = match c.must(["KEYS", "book:*"]) {
            testkit::Reply::Array(keys) => keys.len() as i64,
            other => panic!("{other:?}"),
        };
        assert!(own > 0, "{}: no keys", n.addr());
        total += own;
        let list = format!("{:?}", c.must(["FT._LIST"]));
        // `books`, a status reply (or a bulk string: its bytes in the Debug output).
        let has = list.contains("\"books\"") || list.contains("[98, 111, 111, 107, 115]");
        assert_eq!(has, i == owner, "{list}");
        if i != owner {
            continue;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let hits = match c.must(["FT.SEARCH", "books", "@year:[0 3000]", "LIMIT", "0", "0"]) {
                testkit::Reply::Array(items) => items[0].clone(),
                other => panic!("{other:?}"),
            };
            if hits == testkit::Reply::Int(own) {
                break;
            }
            assert!(Instant::now() < deadline, "{}: {hits:?} of {own}", n.addr());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert_eq!(total, 40);
    // Again under Replace (through the other node): dropped and created again.
    let (report, result) = run(1, migrate_core::migrate::Conflict::Replace);
    result.unwrap_or_else(|e| panic!("{e}: {}", report.to_json()));
    assert_eq!(report.search_indexes_created, ["books"]);
    // Under Refuse with the keys gone (`FLUSHALL` would drop the index too): the index
    // on its master is named.
    for n in &nodes {
        let mut c = n.connect();
        if let testkit::Reply::Array(keys) = c.must(["KEYS", "*"]) {
            for k in keys {
                if let testkit::Reply::Bulk(k) = k {
                    c.int([&b"DEL"[..], &k]);
                }
            }
        }
    }
    let (_, result) = run(1, migrate_core::migrate::Conflict::Refuse);
    let e = result.unwrap_err();
    assert!(
        matches!(e, MigrationError::TargetHasDefinitions { .. })
            && e.to_string().contains(&nodes[owner].addr()),
        "{e}"
    );
}

/// Which of [`module_cluster`]'s two masters owns `key`'s slot.
fn key_in_slot_owner(key: &[u8]) -> u8 {
    u8::from(testkit::cluster::key_slot(key) >= 8192)
}

/// A Valkey 9.1 cluster of one master serving every slot, with `cluster-databases dbs`.
fn valkey_cluster_of_one(dbs: u32) -> Server {
    let node = Server::builder(Flavor::Valkey9_1)
        .config("cluster-enabled", "yes")
        .config("cluster-config-file", "nodes.conf")
        .config("cluster-port", testkit::free_port().to_string())
        .config("cluster-databases", dbs.to_string())
        .start();
    let mut n = node.connect();
    n.ok(["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !n
        .must(["CLUSTER", "INFO"])
        .text()
        .contains("cluster_state:ok")
    {
        assert!(Instant::now() < deadline, "cluster not ok");
        std::thread::sleep(Duration::from_millis(50));
    }
    node
}

/// `--on-conflict skip` with keys written as commands in db 1 of a Valkey 9 cluster
/// (`cluster-databases`): asked with a one-key script that selects the key's db.
#[test]
fn skip_in_another_db_of_a_valkey_9_cluster() {
    use migrate_core::migrate::{Conflict, WriteMode};

    let node = valkey_cluster_of_one(2);
    let source = source(Flavor::Valkey9_1);
    let mut s = source.connect();
    s.ok(["SELECT", "1"]);
    for k in ["kept", "copied"] {
        s.int(["RPUSH", k, "from", "the", "source"]);
    }
    let mut n = node.connect();
    n.ok(["SELECT", "1"]);
    n.ok(["SET", "kept", "target's own"]);
    let config = replication_client::Config::new(&source.url()).unwrap();
    let (report, result) = run_once(
        Migration::builder()
            .source(Source::Live(config))
            .target(TargetConfig::parse(&node.url()).unwrap())
            .write_mode(WriteMode::Rewrite)
            .on_conflict(Conflict::Skip),
    );
    result.unwrap_or_else(|e| panic!("{e}: {}", report.to_json()));
    clean(&report, "skip in db 1");
    assert_eq!(report.skipped_conflict, 1, "{}", report.to_json());
    assert_eq!(n.bulk(["GET", "kept"]), Some(b"target's own".to_vec()));
    assert_eq!(n.int(["LLEN", "copied"]), 3);
}
