//! A Redis Cluster as the source: 3-master testkit clusters (one replica each) into a
//! standalone target, compared key by key with the cluster's snapshot. `sync --once`
//! (Redis 7.0: `CLUSTER SHARDS`; Redis 6.2: `CLUSTER SLOTS`), continuous under a
//! cluster-aware writer, a failover followed mid-sync with a partial resync, two migrations
//! splitting the shards, and a killed migration resumed from its per-shard checkpoints.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{runtime, TTL_TOLERANCE_MS};
use migrate_core::migrate::{
    Conflict, Migration, MigrationBuilder, MigrationHandle, Phase, Report, ShardSpec, Source,
    TargetConfig, CHECKPOINT_KEY,
};
use testkit::{Cluster, ClusterConn, Flavor, Server, Snapshot};

/// A migration from the cluster (through `seed`, any node) into `target`.
fn from_cluster(seed: &str, target: &Server) -> MigrationBuilder {
    let config = replication_client::Config::new(&format!("redis://{seed}")).unwrap();
    Migration::builder()
        .source(Source::Live(config))
        .target(TargetConfig::parse(&target.url()).unwrap())
}

/// `n` keys of each common type, spread over every slot range, some with a TTL.
fn fill(conn: &mut ClusterConn, n: usize) {
    for i in 0..n {
        conn.ok(["SET", &format!("str:{i}"), &format!("value-{i}")]);
        conn.int(["HSET", &format!("hash:{i}"), "a", "1", "b", &i.to_string()]);
        conn.int(["RPUSH", &format!("list:{i}"), "x", "y", &i.to_string()]);
        conn.int(["SADD", &format!("set:{i}"), "m1", "m2"]);
        conn.int(["ZADD", &format!("zset:{i}"), "1", "a", "2", &i.to_string()]);
        if i % 10 == 0 {
            conn.int(["PEXPIRE", &format!("str:{i}"), "600000"]);
        }
    }
}

/// Target (db 0) and cluster equal, within 30 s.
fn wait_equal(cluster: &Cluster, target: &Server) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let want = cluster.snapshot();
        let diff = want.diff(&Snapshot::take(target, 1), TTL_TOLERANCE_MS);
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

/// Waits (30 s at most) until every shard forwards writes.
fn wait_synced(handle: &MigrationHandle, shards: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let p = handle.progress();
        if p.shards.len() == shards && p.shards.iter().all(|s| s.synced()) {
            assert_eq!(p.phase, Phase::Incremental);
            return;
        }
        assert!(!handle.is_finished(), "ended early: {p:?}");
        assert!(Instant::now() < deadline, "{p:?}");
        thread::sleep(Duration::from_millis(20));
    }
}

fn check_shards(report: &Report, full_syncs: u64) {
    assert_eq!(report.shards.len(), 3, "{}", report.to_json());
    let ids: Vec<&str> = report.shards.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["s0", "s5461", "s10922"]);
    for s in &report.shards {
        assert_eq!(s.full_syncs, full_syncs, "{}", report.to_json());
        assert!(s.error.is_none());
    }
    let sum: u64 = report.shards.iter().map(|s| s.keys).sum();
    assert_eq!(sum, report.keys_written());
}

fn once_from(flavor: Flavor) {
    let cluster = Cluster::start(flavor, 3, 1);
    let mut conn = cluster.connect();
    fill(&mut conn, 100);
    let functions = flavor != Flavor::Redis6_2;
    if functions {
        // Function libraries are loaded on every master of a cluster.
        for m in cluster.masters() {
            m.connect().must([
                "FUNCTION",
                "LOAD",
                "#!lua name=mylib\nredis.register_function('f', function() return 1 end)",
            ]);
        }
    }
    let target = Server::start(flavor);
    // Through a replica: any node leads to every shard.
    let seed = cluster.replicas_of(cluster.masters()[1])[0].addr();
    let (report, result) = runtime().block_on(async {
        from_cluster(&seed, &target)
            .once(true)
            .start()
            .finish()
            .await
    });
    result.unwrap_or_else(|e| panic!("{e}: {}", report.to_json()));
    cluster
        .snapshot()
        .assert_same(&Snapshot::take(&target, 1), TTL_TOLERANCE_MS);
    check_shards(&report, 1);
    assert_eq!(report.keys_written(), 500);
    assert_eq!(report.stop_reason.as_str(), "caught-up");
    let mut t = target.connect();
    for s in &report.shards {
        let key = format!("{CHECKPOINT_KEY}:{}", s.id);
        assert!(t.bulk(["GET", key.as_str()]).is_some(), "{key}");
        assert_eq!(s.state, "caught-up");
    }
    assert!(report.to_json().contains("\"shards\": [\n"));
    if functions {
        // Loaded once (by the first shard), none reported as kept or failed.
        assert_eq!(report.functions, 1, "{}", report.to_json());
        assert!(report.functions_skipped.is_empty(), "{}", report.to_json());
        assert_eq!(t.int(["FCALL", "f", "0"]), 1);
    }
}

#[test]
fn cluster_to_standalone_once_redis_7_0() {
    once_from(Flavor::Redis7_0);
}

#[test]
fn cluster_to_standalone_once_redis_6_2_cluster_slots() {
    once_from(Flavor::Redis6_2);
}

/// A writer thread on the cluster until the returned flag is set.
fn writer(cluster: &Cluster, stop: Arc<AtomicBool>) -> thread::JoinHandle<u64> {
    let mut conn = cluster.connect();
    thread::spawn(move || {
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let i = n % 200;
            conn.int(["INCR", &format!("counter:{i}")]);
            conn.int(["RPUSH", &format!("log:{}", i % 20), &n.to_string()]);
            if n % 7 == 0 {
                conn.int(["DEL", &format!("str:{i}")]);
            }
            n += 1;
        }
        n
    })
}

#[test]
fn continuous_under_a_cluster_writer_then_equal() {
    let cluster = Cluster::start(Flavor::Valkey9_1, 3, 1);
    let mut conn = cluster.connect();
    fill(&mut conn, 50);
    let target = Server::start(Flavor::Valkey9_1);
    let rt = runtime();
    let _guard = rt.enter();
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(&cluster, stop.clone());
    let handle = from_cluster(&cluster.masters()[0].addr(), &target)
        .max_concurrent_full_syncs(1)
        .start();
    wait_synced(&handle, 3);
    thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let writes = w.join().unwrap();
    assert!(writes > 0);
    wait_equal(&cluster, &target);
    let p = handle.progress();
    assert_eq!(p.shards.len(), 3);
    assert!(p.commands_applied > 0);
    handle.stop();
    let report = rt.block_on(handle.wait()).unwrap();
    check_shards(&report, 1);
    assert!(report.commands_applied > 0);
    assert_eq!(report.stop_reason.as_str(), "stopped");
}

#[test]
fn failover_mid_sync_is_followed_with_a_partial_resync() {
    let cluster = Cluster::start(Flavor::Redis7_0, 3, 1);
    let mut conn = cluster.connect();
    fill(&mut conn, 50);
    let target = Server::start(Flavor::Redis7_0);
    let rt = runtime();
    let _guard = rt.enter();
    let handle = from_cluster(&cluster.masters()[0].addr(), &target)
        .rediscover_every(Duration::from_millis(500))
        .start();
    wait_synced(&handle, 3);
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(&cluster, stop.clone());
    thread::sleep(Duration::from_millis(300));
    let old = cluster.masters()[0].addr();
    let replica = cluster.replicas_of(cluster.masters()[0])[0]
        .id()
        .to_string();
    cluster.failover(&replica);
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    w.join().unwrap();
    wait_equal(&cluster, &target);
    // The link moves to the new master (by the failed link, or the periodic check).
    let new = cluster.node(&replica).addr();
    let deadline = Instant::now() + Duration::from_secs(30);
    while handle.progress().shards[0].node != new {
        assert!(Instant::now() < deadline, "{:?}", handle.progress().shards);
        thread::sleep(Duration::from_millis(50));
    }
    conn.ok(["SET", "after-failover", "1"]);
    wait_equal(&cluster, &target);
    handle.stop();
    let report = rt.block_on(handle.wait()).unwrap();
    let s0 = &report.shards[0];
    assert_ne!(old, new);
    assert_eq!(s0.master, new, "{}", report.to_json());
    assert!(s0.failovers_followed >= 1, "{}", report.to_json());
    // psync2: the promoted replica continues the old master's history.
    assert!(s0.partial_resyncs >= 1, "{}", report.to_json());
    check_shards(&report, 1);
}

#[test]
fn two_migrations_split_the_shards_into_one_target() {
    let cluster = Cluster::start(Flavor::Redis7_0, 3, 1);
    let mut conn = cluster.connect();
    fill(&mut conn, 60);
    let target = Server::start(Flavor::Redis7_0);
    let seed = cluster.masters()[2].addr();
    let first_master = cluster.masters()[0].id().to_string();
    let (a, b) = runtime().block_on(async {
        let a = from_cluster(&seed, &target)
            .shards(ShardSpec::parse_list(&first_master).unwrap())
            .on_conflict(Conflict::Replace)
            .once(true)
            .start();
        let b = from_cluster(&seed, &target)
            .shards(ShardSpec::parse_list("1-2").unwrap())
            .on_conflict(Conflict::Replace)
            .once(true)
            .start();
        (a.wait().await.unwrap(), b.wait().await.unwrap())
    });
    cluster
        .snapshot()
        .assert_same(&Snapshot::take(&target, 1), TTL_TOLERANCE_MS);
    assert_eq!(
        a.shards.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["s0"]
    );
    assert_eq!(
        b.shards.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["s5461", "s10922"]
    );
    assert_eq!(a.keys_written() + b.keys_written(), 300);
}

#[test]
fn killed_mid_way_resumes_from_per_shard_checkpoints_exactly_once() {
    let cluster = Cluster::start(Flavor::Redis7_0, 3, 1);
    let mut conn = cluster.connect();
    fill(&mut conn, 30);
    let target = Server::start(Flavor::Redis7_0);
    let seed = cluster.masters()[1].addr();
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(&cluster, stop.clone());
    {
        // The tool "killed": its runtime dropped while it applies the writer's INCRs.
        let rt = runtime();
        let handle = {
            let _guard = rt.enter();
            from_cluster(&seed, &target).start()
        };
        wait_synced(&handle, 3);
        thread::sleep(Duration::from_millis(700));
        drop(handle);
        drop(rt);
    }
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    w.join().unwrap();
    let (report, result) = runtime().block_on(async {
        from_cluster(&seed, &target)
            .once(true)
            .start()
            .finish()
            .await
    });
    result.unwrap_or_else(|e| panic!("{e}: {}", report.to_json()));
    // Every INCR applied exactly once: the counters are equal.
    cluster
        .snapshot()
        .assert_same(&Snapshot::take(&target, 1), TTL_TOLERANCE_MS);
    check_shards(&report, 0);
    for s in &report.shards {
        assert!(s.partial_resyncs >= 1, "{}", report.to_json());
    }
    assert!(report.resumed_from.is_some());
}

#[test]
fn a_shard_selection_that_matches_nothing_is_refused() {
    let cluster = Cluster::start(Flavor::Valkey8_1, 3, 0);
    let target = Server::start(Flavor::Valkey8_1);
    let b = from_cluster(&cluster.masters()[0].addr(), &target)
        .shards(vec![ShardSpec::Indexes(3..=3)])
        .once(true);
    let (_, result) = runtime().block_on(async { b.start().finish().await });
    let e = result.unwrap_err().to_string();
    assert!(e.contains("out of range") && e.contains("3 shards"), "{e}");
}

#[test]
fn killed_master_is_replaced_and_followed() {
    let mut cluster = Cluster::start(Flavor::Valkey9_1, 3, 1);
    let mut conn = cluster.connect();
    fill(&mut conn, 40);
    let target = Server::start(Flavor::Valkey9_1);
    let rt = runtime();
    let _guard = rt.enter();
    let handle = from_cluster(&cluster.masters()[2].addr(), &target).start();
    wait_synced(&handle, 3);
    for i in 0..100 {
        conn.int(["INCR", &format!("counter:{i}")]);
    }
    wait_equal(&cluster, &target);
    // Shard 1's master dies (SIGKILL): its replica takes over after the node timeout and
    // the failing link moves to it.
    let replica = cluster.replicas_of(cluster.masters()[1])[0].addr();
    cluster.kill_master(1);
    cluster.wait_ok();
    assert_eq!(cluster.masters()[1].addr(), replica);
    let mut conn = cluster.connect();
    for i in 0..100 {
        conn.int(["INCR", &format!("counter:{i}")]);
    }
    wait_equal(&cluster, &target);
    handle.stop();
    let report = rt.block_on(handle.wait()).unwrap();
    let s1 = &report.shards[1];
    assert_eq!(s1.master, replica, "{}", report.to_json());
    assert!(s1.failovers_followed >= 1, "{}", report.to_json());
    // Everything was replicated before the kill: psync2 continues on the promoted replica.
    assert_eq!(s1.full_syncs, 1, "{}", report.to_json());
    for s in &report.shards {
        assert!(s.error.is_none(), "{}", report.to_json());
    }
}

/// Slots resharded between source shards: `MIGRATE` shows up as a `RESTORE` on the new
/// owner's stream and a `DEL` on the old owner's, which reach the target in either order.
/// The new owner's `RESTORE-ASKING` makes it the key's owner: the old owner's `DEL` is left
/// out when it comes later, applied first when it comes first.
#[test]
fn slots_resharded_between_source_shards() {
    let cluster = Cluster::start(Flavor::Redis7_0, 3, 1);
    let mut conn = cluster.connect();
    for slot in 0..50u16 {
        let key = testkit::cluster::key_in_slot(slot, "moved");
        conn.cmd_key(&key, [b"SET".to_vec(), key.clone(), b"v".to_vec()]);
    }
    fill(&mut conn, 20);
    let target = Server::start(Flavor::Redis7_0);
    let rt = runtime();
    let _guard = rt.enter();
    let handle = from_cluster(&cluster.masters()[0].addr(), &target).start();
    wait_synced(&handle, 3);
    let to = cluster.masters()[1].id().to_string();
    cluster.move_slots(0..=49, &to);
    // The new owner's stream carried the 50 RESTOREs.
    let deadline = Instant::now() + Duration::from_secs(30);
    while handle.progress().shards[1].progress.commands_applied < 50 {
        assert!(Instant::now() < deadline, "{:?}", handle.progress());
        thread::sleep(Duration::from_millis(50));
    }
    wait_equal(&cluster, &target);
    // The old owner's stream is processed to its end (its DELs applied or left out).
    let old_owner = cluster.masters()[0]
        .connect()
        .info_field("replication", "master_repl_offset");
    let end: u64 = old_owner.unwrap().parse().unwrap();
    while handle.progress().shards[0].progress.applied_offset < end {
        assert!(Instant::now() < deadline, "{:?}", handle.progress());
        thread::sleep(Duration::from_millis(20));
    }
    handle.stop();
    let report = rt.block_on(handle.wait()).unwrap();
    assert_eq!(report.failures_total, 0, "{}", report.to_json());
    // Each key's DEL on the old owner was either applied before its RESTORE or left out.
    let s0 = &report.shards[0];
    let left_out = report
        .warnings
        .iter()
        .any(|w| w.starts_with("shard s0:") && w.contains("left out"));
    assert!(
        s0.commands_applied >= 50 || left_out,
        "{}",
        report.to_json()
    );
}

#[test]
fn a_failing_shard_stops_the_others_cleanly_and_is_named() {
    let cluster = Cluster::start(Flavor::Valkey9_1, 3, 0);
    let mut conn = cluster.connect();
    fill(&mut conn, 10);
    let target = Server::start(Flavor::Redis6_2);
    let rt = runtime();
    let _guard = rt.enter();
    let handle = from_cluster(&cluster.masters()[0].addr(), &target).start();
    wait_synced(&handle, 3);
    for i in 0..30 {
        conn.int(["INCR", &format!("counter:{i}")]);
    }
    // Hash field TTLs do not exist on 6.2: shard s5461 stops (the default error policy).
    let key = testkit::cluster::key_in_slot(6000, "fields");
    conn.cmd_key(&key, [&b"HSET"[..], &key, b"a", b"1"]);
    conn.cmd_key(
        &key,
        [&b"HPEXPIRE"[..], &key, b"100000", b"FIELDS", b"1", b"a"],
    );
    let (report, result) = rt.block_on(handle.finish());
    let err = result.unwrap_err().to_string();
    assert!(
        err.starts_with("shard s5461 (") && err.contains("hash field TTLs"),
        "{err}"
    );
    let states: Vec<&str> = report.shards.iter().map(|s| s.state.as_str()).collect();
    assert_eq!(
        states,
        ["stopped", "failed", "stopped"],
        "{}",
        report.to_json()
    );
    assert!(report.shards[1].error.is_some());
    // The others stopped cleanly: their checkpoints hold where they stopped.
    let mut t = target.connect();
    for s in [&report.shards[0], &report.shards[2]] {
        let key = format!("{CHECKPOINT_KEY}:{}", s.id);
        let value = String::from_utf8(t.bulk(["GET", key.as_str()]).unwrap()).unwrap();
        let offset = s.checkpoint_offset.unwrap().to_string();
        assert!(
            value.contains(&format!(" {offset} ")),
            "{value} vs {offset}"
        );
    }
}

#[test]
fn a_shard_that_starts_serving_slots_gets_a_link() {
    let cluster = Cluster::start(Flavor::Redis7_0, 4, 0);
    // The fourth master gives its slots away before the migration starts.
    let (third, fourth) = (
        cluster.masters()[2].id().to_string(),
        cluster.masters()[3].id().to_string(),
    );
    // (An empty master would otherwise turn into a replica of the node taking its slots.)
    for n in cluster.nodes() {
        n.connect()
            .ok(["CONFIG", "SET", "cluster-allow-replica-migration", "no"]);
    }
    cluster.move_slots(12288..=16383, &third);
    let mut conn = cluster.connect();
    fill(&mut conn, 30);
    let target = Server::start(Flavor::Redis7_0);
    let rt = runtime();
    let _guard = rt.enter();
    let handle = from_cluster(&cluster.masters()[0].addr(), &target)
        .rediscover_every(Duration::from_millis(300))
        .start();
    wait_synced(&handle, 3);
    // It takes slots back (keys included): the periodic rediscovery starts its link.
    cluster.move_slots(16000..=16383, &fourth);
    wait_synced(&handle, 4);
    let ids: Vec<String> = handle
        .progress()
        .shards
        .iter()
        .map(|s| s.id.clone())
        .collect();
    assert_eq!(ids, ["s0", "s4096", "s8192", "s16000"]);
    let mut conn = cluster.connect();
    for slot in 16000..16010u16 {
        let key = testkit::cluster::key_in_slot(slot, "new");
        conn.cmd_key(&key, [b"SET".to_vec(), key.clone(), b"v".to_vec()]);
    }
    wait_equal(&cluster, &target);
    handle.stop();
    let report = rt.block_on(handle.wait()).unwrap();
    assert_eq!(report.shards.len(), 4, "{}", report.to_json());
    assert_eq!(report.failures_total, 0, "{}", report.to_json());
}

#[test]
fn flushall_on_one_master_removes_only_its_shard_keys() {
    let cluster = Cluster::start(Flavor::Redis7_0, 3, 0);
    let mut conn = cluster.connect();
    fill(&mut conn, 20);
    let target = Server::start(Flavor::Redis7_0);
    let rt = runtime();
    let _guard = rt.enter();
    let handle = from_cluster(&cluster.masters()[0].addr(), &target).start();
    wait_synced(&handle, 3);
    cluster.masters()[1].connect().ok(["FLUSHALL"]);
    for i in 0..20 {
        conn.int(["INCR", &format!("after:{i}")]);
    }
    wait_equal(&cluster, &target);
    assert!(Snapshot::take(&target, 1).len() > 50);
    handle.stop();
    let report = rt.block_on(handle.wait()).unwrap();
    assert_eq!(report.failures_total, 0, "{}", report.to_json());
}

#[test]
fn a_shard_whose_master_is_down_at_start_waits_for_its_replica() {
    let mut cluster = Cluster::start(Flavor::Redis7_0, 3, 1);
    let mut conn = cluster.connect();
    fill(&mut conn, 40);
    let target = Server::start(Flavor::Redis7_0);
    // Let the replicas have every write, then kill shard 0's master just before the start:
    // the topology read at start still names it, its link cannot connect, and the cluster
    // is asked again until the replica took over.
    thread::sleep(Duration::from_millis(300));
    let seed = cluster.masters()[1].addr();
    let replica = cluster.replicas_of(cluster.masters()[0])[0].addr();
    cluster.kill_master(0);
    let (report, result) = runtime().block_on(async {
        from_cluster(&seed, &target)
            .once(true)
            .start()
            .finish()
            .await
    });
    result.unwrap_or_else(|e| panic!("{e}: {}", report.to_json()));
    cluster.wait_ok();
    cluster
        .snapshot()
        .assert_same(&Snapshot::take(&target, 1), TTL_TOLERANCE_MS);
    assert_eq!(report.shards[0].master, replica, "{}", report.to_json());
}
