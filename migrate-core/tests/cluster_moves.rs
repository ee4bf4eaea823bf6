//! Keys moved between the shards of a cluster source (slots resharded by `MIGRATE`) while
//! two migrations split the shards: the new owner's `RESTORE-ASKING` waits until the old
//! owner's stream (its writes to the key, then its `DEL`) is applied on the target, seen
//! in the other migration's checkpoint, so the key is neither lost nor rolled back; the
//! same when the migration of the old owner is killed mid-reshard and restarted, and into
//! a cluster target (the floor and per-slot checkpoint keys); an old owner nobody
//! migrates is waited for at most `move_wait`, then counted.
//!
//! The old owner's migration is slowed down (a cap on its target writes) so that its
//! `DEL`s would reach the target long after the new owner's `RESTORE`s and later writes.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{runtime, TTL_TOLERANCE_MS};
use migrate_core::migrate::{
    Conflict, Limits, Migration, MigrationBuilder, MigrationHandle, Report, ShardSpec, Source,
    TargetConfig,
};
use testkit::{Cluster, ClusterConn, Flavor, Server, Snapshot};

/// The moved slots: shard 0's lowest, as `redis-cli --cluster reshard` takes them (its
/// name `s0` and its checkpoint's then follow its replication id, not its first slot).
const FIRST: u16 = 0;
const MOVED: u16 = 20;
/// `INCR`s on each moved key before the move, and after.
const BEFORE: usize = 20;
const AFTER: usize = 5;

fn from_cluster(seed: &str, target: &str, shards: &str) -> MigrationBuilder {
    let config = replication_client::Config::new(&format!("redis://{seed}")).unwrap();
    Migration::builder()
        .source(Source::Live(config))
        .target(TargetConfig::parse(target).unwrap())
        .shards(ShardSpec::parse_list(shards).unwrap())
        // Two migrations start together: each may find the other's first keys.
        .on_conflict(Conflict::Replace)
}

/// `--shards` of the two migrations, by node id (indexes follow the first slots, which
/// the reshard changes): shard 0; shards 1 and 2.
fn split(cluster: &Cluster) -> (String, String) {
    let m = cluster.masters();
    (
        m[0].id().to_string(),
        format!("{},{}", m[1].id(), m[2].id()),
    )
}

fn moved_key(slot: u16) -> String {
    String::from_utf8(testkit::cluster::key_in_slot(slot, "moved")).unwrap()
}

/// Waits (30 s at most) until every shard of `handle` forwards writes.
fn wait_synced(handle: &MigrationHandle, shards: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
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

/// Waits (60 s at most) until the shards of `handle` (the masters with ids `masters`, in
/// order) are applied up to their masters' offsets now.
fn wait_applied(handle: &MigrationHandle, cluster: &Cluster, masters: &[String]) {
    let ends: Vec<u64> = masters
        .iter()
        .map(|id| {
            let v = cluster
                .node(id)
                .connect()
                .info_field("replication", "master_repl_offset");
            v.unwrap().parse().unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let p = handle.progress();
        let done = ends
            .iter()
            .enumerate()
            .all(|(i, &end)| p.shards[i].progress.applied_offset >= end);
        if done {
            return;
        }
        assert!(!handle.is_finished(), "ended early: {p:?}");
        assert!(Instant::now() < deadline, "{ends:?} {p:?}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// Target (db 0) and cluster equal, within 60 s.
fn wait_equal(cluster: &Cluster, target: &Server) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let diff = cluster
            .snapshot()
            .diff(&Snapshot::take(target, 1), TTL_TOLERANCE_MS);
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

/// Counters in the slots to move, and a few keys elsewhere.
fn prepare(conn: &mut ClusterConn) {
    for slot in FIRST..FIRST + MOVED {
        conn.ok(["SET", &moved_key(slot), "0"]);
    }
    for i in 0..30 {
        conn.ok(["SET", &format!("other:{i}"), "x"]);
    }
}

/// `n` rounds of `INCR` on every moved key.
fn incr_moved(conn: &mut ClusterConn, n: usize) {
    for _ in 0..n {
        for slot in FIRST..FIRST + MOVED {
            conn.int(["INCR", &moved_key(slot)]);
        }
    }
}

/// The old owner's migration: slowed to 40 target commands a second.
fn slow(b: MigrationBuilder) -> MigrationBuilder {
    b.limits(Limits::new().target_max_ops(40))
}

fn assert_no_unconfirmed(report: &Report) {
    assert!(
        !report
            .warnings
            .iter()
            .any(|w| w.contains("moved in from another shard")),
        "{}",
        report.to_json()
    );
    assert_eq!(report.failures_total, 0, "{}", report.to_json());
}

/// Two migrations (shard 0; shards 1-2) into the target at `target_url`; slots move from
/// shard 0 to shard 1 with `INCR`s before and after; `target` snapshots the target.
fn two_migrations_into(target_url: &str, target: impl Fn() -> Snapshot) {
    let cluster = Cluster::start(Flavor::Redis7_0, 3, 0);
    let mut conn = cluster.connect();
    prepare(&mut conn);
    let seed = cluster.masters()[1].addr();
    let to = cluster.masters()[1].id().to_string();
    let (old, new) = split(&cluster);
    let ids: Vec<String> = cluster
        .masters()
        .iter()
        .map(|m| m.id().to_string())
        .collect();
    let rt = runtime();
    let (a, b) = {
        let _guard = rt.enter();
        (
            slow(from_cluster(&seed, target_url, &old)).start(),
            from_cluster(&seed, target_url, &new).start(),
        )
    };
    wait_synced(&a, 1);
    wait_synced(&b, 2);
    incr_moved(&mut conn, BEFORE);
    cluster.move_slots(FIRST..=FIRST + MOVED - 1, &to);
    let mut conn = cluster.connect();
    incr_moved(&mut conn, AFTER);
    assert_eq!(
        conn.bulk(["GET", &moved_key(FIRST)]).as_deref(),
        Some(format!("{}", BEFORE + AFTER).as_bytes())
    );
    // Both caught up with their masters: the old owner's late DELs are applied.
    wait_applied(&a, &cluster, &ids[..1]);
    wait_applied(&b, &cluster, &ids[1..]);
    cluster.snapshot().assert_same(&target(), TTL_TOLERANCE_MS);
    a.stop();
    b.stop();
    let (ra, rb) = rt.block_on(async { (a.wait().await.unwrap(), b.wait().await.unwrap()) });
    assert_no_unconfirmed(&ra);
    assert_no_unconfirmed(&rb);
    cluster.snapshot().assert_same(&target(), TTL_TOLERANCE_MS);
}

#[test]
fn two_migrations_keep_moved_keys_exactly_once() {
    let target = Server::start(Flavor::Redis7_0);
    two_migrations_into(&target.url(), || Snapshot::take(&target, 1));
}

/// The same into a cluster target: the old owner's position for the moved key's slot is
/// the larger of its floor checkpoint and that slot's checkpoint key.
#[test]
fn two_migrations_into_a_cluster_target() {
    let target = Cluster::start(Flavor::Valkey8_1, 3, 0);
    let url = target.masters()[0].url();
    two_migrations_into(&url, || target.snapshot());
}

#[test]
fn old_owner_killed_mid_reshard_and_restarted() {
    let cluster = Cluster::start(Flavor::Redis7_0, 3, 0);
    let mut conn = cluster.connect();
    prepare(&mut conn);
    let target = Server::start(Flavor::Redis7_0);
    let seed = cluster.masters()[2].addr();
    let to = cluster.masters()[1].id().to_string();
    let (old, new) = split(&cluster);
    let rt = runtime();
    let b = {
        let _guard = rt.enter();
        from_cluster(&seed, &target.url(), &new).start()
    };
    {
        // The old owner's migration, on its own runtime: "killed" by dropping it while
        // it is still behind (its DELs not applied).
        let rt_a = runtime();
        let a = {
            let _guard = rt_a.enter();
            slow(from_cluster(&seed, &target.url(), &old)).start()
        };
        wait_synced(&a, 1);
        wait_synced(&b, 2);
        incr_moved(&mut conn, BEFORE);
        cluster.move_slots(FIRST..=FIRST + MOVED - 1, &to);
        let mut conn = cluster.connect();
        incr_moved(&mut conn, AFTER);
        // Time for the new owner to restore the keys (it must not, before the old
        // owner's DELs are on the target).
        thread::sleep(Duration::from_secs(1));
        drop(a);
        drop(rt_a);
    }
    // Restarted (not slowed): it resumes from its checkpoint and replays the rest of
    // its stream, the DELs included, before the new owner restores the keys.
    let (ra, result) = rt.block_on(async {
        from_cluster(&seed, &target.url(), &old)
            .once(true)
            .start()
            .finish()
            .await
    });
    result.unwrap_or_else(|e| panic!("{e}: {}", ra.to_json()));
    assert!(ra.resumed_from.is_some(), "{}", ra.to_json());
    // Named after its checkpoint, though its lowest slot is now 20.
    assert_eq!(ra.shards[0].id, "s0", "{}", ra.to_json());
    assert_eq!(ra.shards[0].full_syncs, 0, "{}", ra.to_json());
    // It was behind when killed: the rest of its stream was applied by the restart.
    assert!(ra.commands_applied > 0, "{}", ra.to_json());
    wait_equal(&cluster, &target);
    b.stop();
    let rb = rt.block_on(b.wait()).unwrap();
    assert_no_unconfirmed(&rb);
    cluster
        .snapshot()
        .assert_same(&Snapshot::take(&target, 1), TTL_TOLERANCE_MS);
}

/// An old owner no process migrates: the new owner waits at most `move_wait`, then
/// restores the moved keys anyway, counted in a report warning.
#[test]
fn an_old_owner_nobody_migrates_is_waited_for_boundedly() {
    let cluster = Cluster::start(Flavor::Valkey8_1, 3, 0);
    let mut conn = cluster.connect();
    prepare(&mut conn);
    let target = Server::start(Flavor::Valkey8_1);
    let seed = cluster.masters()[1].addr();
    let to = cluster.masters()[1].id().to_string();
    let (_, new) = split(&cluster);
    let rt = runtime();
    let b = {
        let _guard = rt.enter();
        from_cluster(&seed, &target.url(), &new)
            .move_wait(Duration::from_millis(300))
            .start()
    };
    wait_synced(&b, 2);
    cluster.move_slots(FIRST..=FIRST + MOVED - 1, &to);
    let mut conn = cluster.connect();
    incr_moved(&mut conn, AFTER);
    let key = moved_key(FIRST);
    let deadline = Instant::now() + Duration::from_secs(30);
    let want = AFTER.to_string().into_bytes();
    while target.connect().bulk(["GET", &key]) != Some(want.clone()) {
        assert!(Instant::now() < deadline, "{:?}", b.progress());
        thread::sleep(Duration::from_millis(50));
    }
    b.stop();
    let report = rt.block_on(b.wait()).unwrap();
    let warned = report
        .warnings
        .iter()
        .any(|w| w.contains(&format!("{MOVED} key(s) moved in from another shard")));
    assert!(warned, "{}", report.to_json());
    for slot in FIRST..FIRST + MOVED {
        let k = moved_key(slot);
        assert_eq!(
            target.connect().bulk(["GET", &k]),
            conn.bulk(["GET", &k]),
            "{k}"
        );
    }
}
