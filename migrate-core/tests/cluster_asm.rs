//! Valkey 9 atomic slot migration (`CLUSTER MIGRATESLOTS`) on a cluster source during a
//! continuous migration into a standalone target: the new owner's stream carries the
//! import framed by `CLUSTER SYNCSLOTS` markers; they are left out (no failed write on the
//! target), the import is counted in the report and ordered (see the shards module
//! docs): the whole target equals the source.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{runtime, TTL_TOLERANCE_MS};
use migrate_core::migrate::{Migration, MigrationHandle, ShardSpec, Source, TargetConfig};
use testkit::{Cluster, ClusterConn, Flavor, Server, Snapshot};

/// The moved slots (shard 0's lowest).
const MOVED: u16 = 20;

fn moved_key(slot: u16, kind: &str) -> String {
    String::from_utf8(testkit::cluster::key_in_slot(slot, &format!("asm-{kind}"))).unwrap()
}

/// Counters and lists in the slots to move, and keys elsewhere.
fn prepare(conn: &mut ClusterConn) {
    for slot in 0..MOVED {
        conn.ok(["SET", &moved_key(slot, "n"), "0"]);
        conn.int(["RPUSH", &moved_key(slot, "l"), "a", "b"]);
    }
    for i in 0..40 {
        conn.ok(["SET", &format!("other:{i}"), "x"]);
    }
}

/// A round of writes: the moved keys and the others.
fn write(conn: &mut ClusterConn, round: usize) {
    for slot in 0..MOVED {
        conn.int(["INCR", &moved_key(slot, "n")]);
        conn.int(["RPUSH", &moved_key(slot, "l"), &round.to_string()]);
    }
    for i in 0..40 {
        conn.ok(["SET", &format!("other:{i}"), &format!("r{round}")]);
    }
}

/// Waits (30 s at most) until `n` shards forward writes.
fn wait_synced(handle: &MigrationHandle, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let p = handle.progress();
        if p.shards.len() == n && p.shards.iter().all(|s| s.synced()) {
            return;
        }
        assert!(!handle.is_finished(), "ended early: {p:?}");
        assert!(Instant::now() < deadline, "{p:?}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// A reply's strings, space-separated.
fn flat(reply: &testkit::Reply) -> String {
    match reply {
        testkit::Reply::Array(items) => items.iter().map(flat).collect::<Vec<_>>().join(" "),
        other => other.text(),
    }
}

/// Waits (30 s at most) until `node`'s `CLUSTER GETSLOTMIGRATIONS` shows a migration that
/// succeeded.
fn wait_migrated(cluster: &Cluster, node: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = cluster
            .node(node)
            .connect()
            .must(["CLUSTER", "GETSLOTMIGRATIONS"]);
        let text = flat(&reply);
        if text.contains("state success") {
            return;
        }
        assert!(Instant::now() < deadline, "{text}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (30 s at most) until every shard is applied up to its master's offset now.
fn wait_applied(handle: &MigrationHandle, cluster: &Cluster) {
    let ends: Vec<(String, u64)> = cluster
        .masters()
        .iter()
        .map(|m| {
            let v = m
                .connect()
                .info_field("replication", "master_repl_offset")
                .unwrap();
            (m.addr(), v.parse().unwrap())
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let p = handle.progress();
        let done = ends.iter().all(|(addr, end)| {
            p.shards
                .iter()
                .all(|s| s.node != *addr || s.progress.applied_offset >= *end)
        });
        if done {
            return;
        }
        assert!(!handle.is_finished(), "ended early: {p:?}");
        assert!(Instant::now() < deadline, "{ends:?} {p:?}");
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn atomic_slot_migration_is_ordered() {
    let cluster = Cluster::start(Flavor::Valkey9_1, 2, 0);
    let target = Server::start(Flavor::Valkey9_1);
    let mut conn = cluster.connect();
    prepare(&mut conn);
    let from = cluster.master_for_slot(0).id().to_string();
    let to = cluster
        .masters()
        .iter()
        .find(|m| m.id() != from)
        .unwrap()
        .id()
        .to_string();
    let seed = cluster.masters()[0].addr();
    let rt = runtime();
    let handle = {
        let _guard = rt.enter();
        let config = replication_client::Config::new(&format!("redis://{seed}")).unwrap();
        Migration::builder()
            .source(Source::Live(config))
            .target(TargetConfig::parse(&target.url()).unwrap())
            .start()
    };
    wait_synced(&handle, 2);
    for round in 0..5 {
        write(&mut conn, round);
    }
    let last = format!("{}", MOVED - 1);
    let reply = cluster.node(&from).connect().cmd([
        "CLUSTER",
        "MIGRATESLOTS",
        "SLOTSRANGE",
        "0",
        &last,
        "NODE",
        &to,
    ]);
    assert_eq!(reply.text(), "OK", "{reply:?}");
    // Writes during the migration (some may wait for its pause), then after it.
    for round in 5..10 {
        write(&mut conn, round);
    }
    wait_migrated(&cluster, &from);
    let mut conn = cluster.connect();
    for round in 10..15 {
        write(&mut conn, round);
    }
    assert_eq!(
        cluster.master_for_slot(0).id(),
        to,
        "the slots moved to the other shard"
    );
    wait_applied(&handle, &cluster);
    handle.stop();
    let report = rt.block_on(handle.wait()).unwrap();
    let json = report.to_json();
    assert_eq!(report.atomic_slot_migrations, 1, "{json}");
    assert_eq!(report.asm_unconfirmed, 0, "{json}");
    assert!(json.contains("\"atomic_slot_migrations\": 1"), "{json}");
    // The SYNCSLOTS markers never reached the target.
    assert_eq!(report.failures_total, 0, "{json}");
    // The whole target is the source, the moved slots' counters and lists too.
    let diff = cluster
        .snapshot()
        .diff(&Snapshot::take(&target, 1), TTL_TOLERANCE_MS);
    assert!(diff.is_empty(), "{diff:?}");
}

/// A process migrating only the old owner's shard (`--shards`): its stream shows only
/// the trim's `UNLINK`s; `CLUSTER GETSLOTMIGRATIONS` at the topology checks (and once at
/// the end) finds the export, counted and named the same way.
#[test]
fn old_owner_only_finds_the_export() {
    let cluster = Cluster::start(Flavor::Valkey9_1, 2, 0);
    let target = Server::start(Flavor::Valkey9_1);
    let mut conn = cluster.connect();
    prepare(&mut conn);
    let from = cluster.master_for_slot(0).id().to_string();
    let to = cluster
        .masters()
        .iter()
        .find(|m| m.id() != from)
        .unwrap()
        .id()
        .to_string();
    let seed = cluster.node(&from).addr();
    let rt = runtime();
    let handle = {
        let _guard = rt.enter();
        let config = replication_client::Config::new(&format!("redis://{seed}")).unwrap();
        Migration::builder()
            .source(Source::Live(config))
            .target(TargetConfig::parse(&target.url()).unwrap())
            .shards(ShardSpec::parse_list(&from).unwrap())
            .rediscover_every(Duration::from_millis(200))
            .start()
    };
    wait_synced(&handle, 1);
    write(&mut conn, 0);
    let last = format!("{}", MOVED - 1);
    let reply = cluster.node(&from).connect().cmd([
        "CLUSTER",
        "MIGRATESLOTS",
        "SLOTSRANGE",
        "0",
        &last,
        "NODE",
        &to,
    ]);
    assert_eq!(reply.text(), "OK", "{reply:?}");
    wait_migrated(&cluster, &from);
    let mut conn = cluster.connect();
    write(&mut conn, 1);
    wait_applied(&handle, &cluster);
    handle.stop();
    let report = rt.block_on(handle.wait()).unwrap();
    let json = report.to_json();
    assert_eq!(report.atomic_slot_migrations, 1, "{json}");
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("atomic slot migration")
                && w.contains(&format!("slots 0-{last}"))
                && w.contains("finished: success")
                && w.contains("redis-migrate verify")),
        "{json}"
    );
    assert_eq!(report.failures_total, 0, "{json}");
}
