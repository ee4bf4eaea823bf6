//! A Redis Cluster into another Redis Cluster: one replication link per source shard, each
//! writing by slot to every target master, compared key by key (`Cluster::snapshot`)
//! across versions (Redis 7.0 → Valkey 9.1 continuous under a cluster writer; Valkey 9.1 →
//! Redis 6.2 `once`, rewriting what 6.2 cannot load), into a target with a different number
//! of masters, a killed migration resumed exactly once from the per-shard, per-slot
//! checkpoints, `--on-conflict skip` with keys written as commands, and a Valkey 9 atomic
//! slot migration on the source.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{runtime, TTL_TOLERANCE_MS};
use migrate_core::migrate::{Migration, MigrationBuilder, MigrationHandle, Report, Source};
use testkit::{Cluster, ClusterConn, Flavor};

/// A migration from `source` (through its first master) into `target` (through its last
/// master: any node of either leads to all of it).
fn between(source: &Cluster, target: &Cluster) -> MigrationBuilder {
    let seed = source.masters()[0].addr();
    let to = target.masters().last().unwrap().url();
    let config = replication_client::Config::new(&format!("redis://{seed}")).unwrap();
    Migration::builder()
        .source(Source::Live(config))
        .target(migrate_core::migrate::TargetConfig::parse(&to).unwrap())
}

/// `n` keys of each common type, over every slot range, some with a TTL.
fn fill(conn: &mut ClusterConn, n: usize) {
    for i in 0..n {
        conn.ok(["SET", &format!("str:{i}"), &format!("value-{i}")]);
        conn.int(["HSET", &format!("hash:{i}"), "a", "1", "b", &i.to_string()]);
        conn.int(["RPUSH", &format!("list:{i}"), "x", "y", &i.to_string()]);
        conn.int(["SADD", &format!("set:{i}"), "m1", "m2", &i.to_string()]);
        conn.int(["ZADD", &format!("zset:{i}"), "1", "a", "2", &i.to_string()]);
        if i % 10 == 0 {
            conn.int(["PEXPIRE", &format!("str:{i}"), "600000"]);
        }
    }
}

/// Non-idempotent writes on every shard: a double apply shows in the counters.
fn writer(cluster: &Cluster, stop: Arc<AtomicBool>) -> thread::JoinHandle<u64> {
    let mut conn = cluster.connect();
    thread::spawn(move || {
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let i = n % 150;
            conn.int(["INCR", &format!("counter:{i}")]);
            conn.int(["RPUSH", &format!("log:{}", i % 15), &n.to_string()]);
            if n % 9 == 0 {
                conn.int(["DEL", &format!("str:{i}")]);
            }
            n += 1;
        }
        n
    })
}

fn wait_synced(handle: &MigrationHandle, shards: usize) {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let p = handle.progress();
        if p.shards.len() == shards && p.shards.iter().all(|s| s.synced()) {
            return;
        }
        assert!(!handle.is_finished(), "ended early: {p:?}");
        assert!(Instant::now() < deadline, "{p:?}");
        thread::sleep(Duration::from_millis(20));
    }
}

fn wait_equal(source: &Cluster, target: &Cluster) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let diff = source.snapshot().diff(&target.snapshot(), TTL_TOLERANCE_MS);
        if diff.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "target differs: {:?}",
            &diff[..diff.len().min(10)]
        );
        thread::sleep(Duration::from_millis(100));
    }
}

fn check(report: &Report, target_masters: usize) {
    assert_eq!(report.shards.len(), 3, "{}", report.to_json());
    assert_eq!(report.target_cluster_masters, Some(target_masters));
    for s in &report.shards {
        assert!(s.error.is_none(), "{}", report.to_json());
    }
    assert_eq!(report.failures_total, 0, "{}", report.to_json());
}

#[test]
fn redis_7_0_cluster_into_a_valkey_9_1_cluster_of_four_under_a_writer() {
    let source = Cluster::start(Flavor::Redis7_0, 3, 1);
    fill(&mut source.connect(), 60);
    let target = Cluster::start(Flavor::Valkey9_1, 4, 0);
    let rt = runtime();
    let _guard = rt.enter();
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(&source, stop.clone());
    let handle = between(&source, &target).start();
    wait_synced(&handle, 3);
    thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    assert!(w.join().unwrap() > 0);
    wait_equal(&source, &target);
    handle.stop();
    let report = rt.block_on(handle.wait()).unwrap();
    check(&report, 4);
    assert!(report.commands_applied > 0, "{}", report.to_json());
}

#[test]
fn valkey_9_1_cluster_into_a_redis_6_2_cluster_once() {
    let source = Cluster::start(Flavor::Valkey9_1, 3, 0);
    fill(&mut source.connect(), 60);
    let target = Cluster::start(Flavor::Redis6_2, 3, 0);
    let (report, result) =
        runtime().block_on(async { between(&source, &target).once(true).start().finish().await });
    result.unwrap_or_else(|e| panic!("{e}: {}", report.to_json()));
    source
        .snapshot()
        .assert_same(&target.snapshot(), TTL_TOLERANCE_MS);
    check(&report, 3);
    assert_eq!(report.keys_written(), 300);
    // Valkey 9.1's RDB types that 6.2 does not know are rewritten as commands.
    assert!(report.keys_rewritten > 0, "{}", report.to_json());
}

#[test]
fn killed_and_resumed_exactly_once_between_clusters() {
    let source = Cluster::start(Flavor::Redis7_0, 3, 0);
    fill(&mut source.connect(), 30);
    let target = Cluster::start(Flavor::Redis7_0, 3, 0);
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(&source, stop.clone());
    {
        // The tool "killed": its runtime dropped while it applies the writer's INCRs.
        let rt = runtime();
        let handle = {
            let _guard = rt.enter();
            between(&source, &target).start()
        };
        wait_synced(&handle, 3);
        thread::sleep(Duration::from_millis(700));
        drop(handle);
        drop(rt);
    }
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    w.join().unwrap();
    let (report, result) =
        runtime().block_on(async { between(&source, &target).once(true).start().finish().await });
    result.unwrap_or_else(|e| panic!("{e}: {}", report.to_json()));
    // Every INCR and RPUSH applied exactly once: counters and lists equal.
    source
        .snapshot()
        .assert_same(&target.snapshot(), TTL_TOLERANCE_MS);
    check(&report, 3);
    assert!(report.resumed_from.is_some(), "{}", report.to_json());
    for s in &report.shards {
        assert_eq!(s.full_syncs, 0, "{}", report.to_json());
    }
}

#[test]
fn target_resharded_while_a_source_replica_takes_over() {
    // The scenario: a 3-master source with replicas into a 4-master target, a
    // cluster-aware writer on every shard, slots resharded on the target and a source
    // replica promoted (CLUSTER FAILOVER) while it runs.
    let source = Cluster::start(Flavor::Redis7_0, 3, 1);
    fill(&mut source.connect(), 40);
    let target = Cluster::start(Flavor::Redis7_0, 4, 0);
    let rt = runtime();
    let _guard = rt.enter();
    let handle = between(&source, &target)
        .rediscover_every(Duration::from_millis(500))
        .start();
    wait_synced(&handle, 3);
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(&source, stop.clone());
    thread::sleep(Duration::from_millis(300));
    // Target: 300 slots of its first master move to its third.
    let masters = target.masters();
    let first = *target.slots_of(masters[0])[0].start();
    let to = masters[2].id().to_string();
    target.move_slots(first..=first + 299, &to);
    // Source: shard 1's replica takes over its master.
    let replica = source.replicas_of(source.masters()[1])[0].id().to_string();
    source.failover(&replica);
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    assert!(w.join().unwrap() > 0);
    wait_equal(&source, &target);
    // The shard's link follows the promoted replica.
    let new = source.node(&replica).addr();
    let deadline = Instant::now() + Duration::from_secs(30);
    while handle.progress().shards[1].node != new {
        assert!(Instant::now() < deadline, "{:?}", handle.progress().shards);
        thread::sleep(Duration::from_millis(50));
    }
    source.connect().ok(["SET", "after-both", "1"]);
    wait_equal(&source, &target);
    handle.stop();
    let report = rt.block_on(handle.wait()).unwrap();
    check(&report, 4);
    assert!(report.cluster_redirects > 0, "{}", report.to_json());
    assert!(
        report.shards[1].failovers_followed >= 1,
        "{}",
        report.to_json()
    );
    // psync2: the promoted replica continues the stream, no new full sync.
    assert_eq!(report.shards[1].full_syncs, 1, "{}", report.to_json());
}

/// `--on-conflict skip` between clusters with every key written as commands
/// (`WriteMode::Rewrite`): each shard asks `EXISTS` on the key's target master; the keys
/// already on the target keep their values, the others are copied.
#[test]
fn skip_between_clusters_with_keys_written_as_commands() {
    use migrate_core::migrate::{Conflict, WriteMode};

    let source = Cluster::start(Flavor::Redis7_0, 3, 0);
    fill(&mut source.connect(), 20);
    let target = Cluster::start(Flavor::Redis7_0, 3, 0);
    let mut t = target.connect();
    // One on each target master (slots 4533, 8787 and 14235 of 3 even ranges).
    let taken = ["str:0", "str:11", "hash:12"];
    let owners: std::collections::HashSet<String> = taken
        .iter()
        .map(|k| {
            let slot = testkit::cluster::key_slot(k.as_bytes());
            target.master_for_slot(slot).addr()
        })
        .collect();
    assert_eq!(owners.len(), 3);
    for k in taken {
        t.int(["DEL", k]);
        t.ok(["SET", k, "target's own"]);
    }
    let (report, result) = runtime().block_on(async {
        between(&source, &target)
            .write_mode(WriteMode::Rewrite)
            .on_conflict(Conflict::Skip)
            .once(true)
            .start()
            .finish()
            .await
    });
    result.unwrap_or_else(|e| panic!("{e}: {}", report.to_json()));
    check(&report, 3);
    assert_eq!(report.skipped_conflict, 3, "{}", report.to_json());
    for k in taken {
        assert_eq!(t.bulk(["GET", k]), Some(b"target's own".to_vec()), "{k}");
    }
    let mut expected = source.snapshot();
    let mut got = target.snapshot();
    for k in taken {
        expected.keys.remove(&(0, k.as_bytes().to_vec()));
        got.keys.remove(&(0, k.as_bytes().to_vec()));
    }
    expected.assert_same(&got, TTL_TOLERANCE_MS);
}

/// A Valkey 9 atomic slot migration (`CLUSTER MIGRATESLOTS`) on the source while it is
/// migrated into a cluster target under a writer on every slot: ordered (see the shards
/// module docs), so the counters and lists of the moved slots end exact on the target.
/// (The fence's reserved hash and the slots' sweep go through the cluster sink; the cases
/// that fail without the fence are in `cluster_asm.rs`: here the cluster sink's slower
/// import often lets the old owner's trim land first.)
#[test]
fn atomic_slot_migration_on_the_source_into_a_cluster_target() {
    let source = Cluster::start(Flavor::Valkey9_1, 2, 0);
    fill(&mut source.connect(), 40);
    let target = Cluster::start(Flavor::Valkey9_1, 3, 0);
    let rt = runtime();
    let _guard = rt.enter();
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(&source, stop.clone());
    let handle = between(&source, &target).start();
    wait_synced(&handle, 2);
    let from = source.master_for_slot(0).id().to_string();
    let to = source.other_master(&from).id().to_string();
    // The old owner's snapshot of the slots slowed (microseconds per key; its links are
    // synced already): the writer's commands on them meanwhile are in both streams.
    let mut old = source.node(&from).connect();
    old.ok(["CONFIG", "SET", "rdb-key-save-delay", "20000"]);
    let reply = old.cmd([
        "CLUSTER",
        "MIGRATESLOTS",
        "SLOTSRANGE",
        "0",
        "3000",
        "NODE",
        &to,
    ]);
    assert_eq!(reply.text(), "OK", "{reply:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while source.master_for_slot(0).id() != to {
        assert!(Instant::now() < deadline, "the slots did not move");
        thread::sleep(Duration::from_millis(50));
    }
    old.ok(["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    assert!(w.join().unwrap() > 0);
    wait_equal(&source, &target);
    handle.stop();
    let report = rt.block_on(handle.wait()).unwrap();
    let json = report.to_json();
    assert_eq!(report.shards.len(), 2, "{json}");
    assert_eq!(report.failures_total, 0, "{json}");
    assert_eq!(report.atomic_slot_migrations, 1, "{json}");
    assert_eq!(report.asm_unconfirmed, 0, "{json}");
}
