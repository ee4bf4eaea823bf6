//! Valkey 9 atomic slot migration (`CLUSTER MIGRATESLOTS`) on a cluster source during a
//! continuous migration into a standalone target: the import is ordered across the old
//! and new owners' streams, so the WHOLE target ends equal to the source key by key
//! (counters, lists, strings, deleted keys and expiries on the moved slots, written
//! before, during and after the import):
//!
//! - `atomic_slot_migration_is_ordered`: one process migrating both shards;
//! - `slots_moved_back_are_ordered_too`: the slots moved out and back again;
//! - `cancelled_migration_heals`, `cancelled_after_snapshot_heals`: the import cancelled
//!   (`CLUSTER CANCELSLOTMIGRATIONS` on the old owner) mid-snapshot, or after it while the
//!   old owner's writes are forwarded; the old owner's link heals with a full sync;
//!   `cancelled_across_processes_heals`: the same with one process per shard;
//! - `two_processes_order_the_import`: one process per shard (`--shards`), the old owner's
//!   learning of the import through the target;
//! - `restart_mid_import`, `old_owner_process_restarted_mid_import`,
//!   `new_owner_process_restarted_mid_import`: the process (or, one process per shard,
//!   the old or the new owner's) stopped mid-import and started again from its
//!   checkpoints;
//! - `old_owner_only_finds_the_export`: a process migrating only the old owner's shard
//!   finds the export through `CLUSTER GETSLOTMIGRATIONS`;
//! - `new_owner_only_waits_boundedly`: a process migrating only the new owner's shard
//!   waits `move_wait` at most for a confirmation nobody gives, counted.
//!
//! Catching an import mid-way with a small dataset: the old owner's `rdb-key-save-delay`
//! (a debug config that `CONFIG SET` changes; microseconds per key) also slows the forked
//! child that writes a migration's snapshot. It is set once the migration's links are
//! synced (their own full syncs are not slowed) and reset as soon as the old owner shows
//! the migration `snapshotting` (the child keeps the delay it was forked with), which
//! holds the import in its snapshot for a few seconds: 120 keys at 20 ms. Valkey 9.1 has
//! no other throttle (`CONFIG GET *slot*`: only `cluster-slot-migration-log-max-len` and
//! `slot-migration-max-failover-repl-bytes`). The values are big enough (16 KiB to
//! 320 KiB per slot) that the child's output reaches the new owner, and so its stream,
//! while the snapshot goes on. After the snapshot, `DEBUG SLOTMIGRATION PREVENT-PAUSE 1`
//! (testkit's Valkey 9 nodes take `DEBUG` from loopback) holds the export
//! `waiting-to-pause`, forwarding the old owner's writes.

mod common;

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};

use common::{runtime, TTL_TOLERANCE_MS};
use migrate_core::migrate::{
    Conflict, Migration, MigrationBuilder, MigrationHandle, Report, ShardSpec, Source, TargetConfig,
};
use testkit::{Cluster, ClusterConn, Flavor, Server, Snapshot};

/// The moved slots (shard 0's lowest): `0..MOVED`.
const MOVED: u16 = 20;
/// The snapshot child's delay per key on the old owner (µs): 6 keys x 20 slots x 20 ms,
/// about 2.4 s of snapshot.
const SNAPSHOT_DELAY_US: &str = "20000";
/// A big value's pattern (each moved slot has one key of 16 KiB x (slot + 1) of it).
const BIG: &str =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
/// How long an import waits for the old owner's link: short, so a broken ordering fails
/// fast instead of hanging.
const MOVE_WAIT: Duration = Duration::from_secs(10);

fn moved_key(slot: u16, kind: &str) -> String {
    String::from_utf8(testkit::cluster::key_in_slot(slot, &format!("asm-{kind}"))).unwrap()
}

/// Per moved slot a counter, a list, a string, a key deleted now and then and a key with
/// an expiry; and keys elsewhere.
fn prepare(conn: &mut ClusterConn) {
    for slot in 0..MOVED {
        conn.ok(["SET", &moved_key(slot, "n"), "0"]);
        conn.int(["RPUSH", &moved_key(slot, "l"), "a", "b"]);
        conn.ok(["SET", &moved_key(slot, "s"), "x"]);
        conn.ok(["SET", &moved_key(slot, "d"), "x"]);
        conn.ok(["SET", &moved_key(slot, "e"), "x"]);
        conn.ok([
            "SET",
            &moved_key(slot, "b"),
            &BIG.repeat(200 * (usize::from(slot) + 1)),
        ]);
    }
    for i in 0..40 {
        conn.ok(["SET", &format!("other:{i}"), "x"]);
    }
}

/// A round of writes: `INCR`, `RPUSH`, `SET`, some `DEL`s and `EXPIRE`s on the moved keys,
/// `SET` on the others.
fn write(conn: &mut ClusterConn, round: usize) {
    let r = round.to_string();
    for slot in 0..MOVED {
        let i = usize::from(slot) + round;
        conn.int(["INCR", &moved_key(slot, "n")]);
        conn.int(["RPUSH", &moved_key(slot, "l"), &r]);
        conn.ok(["SET", &moved_key(slot, "s"), &format!("r{r}")]);
        if i % 4 == 0 {
            conn.int(["DEL", &moved_key(slot, "d")]);
        } else {
            conn.ok(["SET", &moved_key(slot, "d"), &format!("r{r}")]);
        }
        if i % 5 == 0 {
            conn.int(["EXPIRE", &moved_key(slot, "e"), &(300 + round).to_string()]);
        }
    }
    for i in 0..40 {
        conn.ok(["SET", &format!("other:{i}"), &format!("r{r}")]);
    }
}

/// `n` rounds of [`write`], counting on from `round`.
fn write_rounds(conn: &mut ClusterConn, round: &mut usize, n: usize) {
    for _ in 0..n {
        write(conn, *round);
        *round += 1;
    }
}

/// A live migration from the cluster (seed `seed`) into `target`, of the shards `shards`
/// (node ids, comma-separated) or of all.
fn builder(seed: &str, target: &Server, shards: Option<&str>) -> MigrationBuilder {
    let config = replication_client::Config::new(&format!("redis://{seed}")).unwrap();
    let mut b = Migration::builder()
        .source(Source::Live(config))
        .target(TargetConfig::parse(&target.url()).unwrap())
        .move_wait(MOVE_WAIT)
        .rediscover_every(Duration::from_millis(200));
    if let Some(shards) = shards {
        b = b
            .shards(ShardSpec::parse_list(shards).unwrap())
            // Two migrations start together: each may find the other's first keys.
            .on_conflict(Conflict::Replace);
    }
    b
}

/// A source cluster of two Valkey 9.1 masters with [`prepare`]'s keys, an empty target,
/// a connection to the cluster, and the old and new owners of the slots to move.
fn setup() -> (Cluster, Server, ClusterConn, String, String) {
    let cluster = Cluster::start(Flavor::Valkey9_1, 2, 0);
    let target = Server::start(Flavor::Valkey9_1);
    let mut conn = cluster.connect();
    prepare(&mut conn);
    let (from, to) = owners(&cluster);
    (cluster, target, conn, from, to)
}

/// The old owner (shard 0's master) and the other master, by id.
fn owners(cluster: &Cluster) -> (String, String) {
    let from = cluster.master_for_slot(0).id().to_string();
    let to = cluster.other_master(&from).id().to_string();
    (from, to)
}

/// Starts `b` on `rt` and waits until both shards forward writes.
fn start_synced(rt: &tokio::runtime::Runtime, b: MigrationBuilder) -> MigrationHandle {
    let handle = {
        let _guard = rt.enter();
        b.start()
    };
    wait_synced(&handle, 2);
    handle
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

/// `node`'s `CLUSTER GETSLOTMIGRATIONS` entries, as field → value.
fn migrations(cluster: &Cluster, node: &str) -> Vec<BTreeMap<String, String>> {
    let reply = cluster
        .node(node)
        .connect()
        .must(["CLUSTER", "GETSLOTMIGRATIONS"]);
    let testkit::Reply::Array(entries) = reply else {
        panic!("CLUSTER GETSLOTMIGRATIONS: {reply:?}");
    };
    entries
        .iter()
        .map(|e| match e {
            testkit::Reply::Array(pairs) => pairs
                .chunks_exact(2)
                .map(|p| (p[0].text(), flat(&p[1])))
                .collect(),
            other => panic!("CLUSTER GETSLOTMIGRATIONS entry: {other:?}"),
        })
        .collect()
}

/// The state of the last migration `node` lists (each test runs one).
fn state(cluster: &Cluster, node: &str) -> Option<String> {
    migrations(cluster, node)
        .last()
        .and_then(|m| m.get("state").cloned())
}

fn terminal(state: &str) -> bool {
    matches!(state, "success" | "failed" | "cancelled" | "canceled")
}

/// Waits (30 s at most) until the state of `node`'s migration satisfies `done`.
fn wait_state(cluster: &Cluster, node: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = state(cluster, node).unwrap_or_default();
        if done(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{node}: {:?}",
            migrations(cluster, node)
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// Sets the old owner's per-key snapshot delay (µs).
fn snapshot_delay(cluster: &Cluster, node: &str, us: &str) {
    cluster
        .node(node)
        .connect()
        .ok(["CONFIG", "SET", "rdb-key-save-delay", us]);
}

/// Starts `CLUSTER MIGRATESLOTS` of the moved slots from `from` to `to`.
fn begin_import(cluster: &Cluster, from: &str, to: &str) {
    let last = (MOVED - 1).to_string();
    let reply = cluster.node(from).connect().cmd([
        "CLUSTER",
        "MIGRATESLOTS",
        "SLOTSRANGE",
        "0",
        &last,
        "NODE",
        to,
    ]);
    assert_eq!(reply.text(), "OK", "{reply:?}");
}

/// Starts the import slowed down and returns once `from` shows it `snapshotting` (the
/// delay then reset: the child keeps it).
fn begin_slow_import(cluster: &Cluster, from: &str, to: &str) {
    snapshot_delay(cluster, from, SNAPSHOT_DELAY_US);
    begin_import(cluster, from, to);
    let s = wait_state(cluster, from, |s| s == "snapshotting" || terminal(s));
    snapshot_delay(cluster, from, "0");
    assert_eq!(
        s,
        "snapshotting",
        "set-up: the import was not caught in its snapshot: {:?}",
        migrations(cluster, from)
    );
}

/// `DEBUG SLOTMIGRATION PREVENT-PAUSE` on every master: on, an export stays
/// `waiting-to-pause` after its snapshot, forwarding the old owner's writes.
fn prevent_pause(cluster: &Cluster, on: bool) {
    for m in cluster.masters() {
        m.connect().ok([
            "DEBUG",
            "SLOTMIGRATION",
            "PREVENT-PAUSE",
            if on { "1" } else { "0" },
        ]);
    }
}

/// Writes rounds from `*round` on while `from`'s migration is `snapshotting` (at least
/// one, at most 40); returns how many were written during the snapshot.
fn write_while_snapshotting(
    cluster: &Cluster,
    conn: &mut ClusterConn,
    from: &str,
    round: &mut usize,
) -> usize {
    let mut during = 0;
    for _ in 0..40 {
        write(conn, *round);
        *round += 1;
        if state(cluster, from).as_deref() != Some("snapshotting") {
            break;
        }
        during += 1;
        thread::sleep(Duration::from_millis(100));
    }
    during
}

/// Moves the slots from `from` to `to` (slowed down) with write rounds during the
/// snapshot and through the rest of the import, until it succeeded; `conn` then knows
/// the new owner.
fn move_under_writes(
    cluster: &Cluster,
    conn: &mut ClusterConn,
    from: &str,
    to: &str,
    round: &mut usize,
) {
    begin_slow_import(cluster, from, to);
    let during = write_while_snapshotting(cluster, conn, from, round);
    eprintln!("rounds written during the snapshot: {during}");
    // On through the rest of the import (some writes wait for its pause).
    for _ in 0..3 {
        write(conn, *round);
        *round += 1;
    }
    assert_eq!(wait_state(cluster, from, terminal), "success");
    *conn = cluster.connect();
    assert_eq!(
        cluster.master_for_slot(0).id(),
        to,
        "the slots moved to the other shard"
    );
}

/// Empties the migration logs (`CLUSTER GETSLOTMIGRATIONS`) of every master, so that
/// [`state`] sees the next migration.
fn clear_migration_logs(cluster: &Cluster) {
    for m in cluster.masters() {
        let id = m.id().to_string();
        m.connect()
            .ok(["CONFIG", "SET", "cluster-slot-migration-log-max-len", "0"]);
        // Trimmed by the server's cron.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !migrations(cluster, &id).is_empty() {
            assert!(Instant::now() < deadline, "{:?}", migrations(cluster, &id));
            thread::sleep(Duration::from_millis(50));
        }
        m.connect().ok([
            "CONFIG",
            "SET",
            "cluster-slot-migration-log-max-len",
            "1000",
        ]);
    }
}

/// Waits (30 s at most) until every shard of `handle` is applied up to its master's
/// offset now (shards of other processes are not in its progress).
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

/// Gives the target 20 s at most to equal the source, stops the migrations and returns
/// their reports with the target's differences from the source then.
fn finish(
    rt: &tokio::runtime::Runtime,
    handles: Vec<MigrationHandle>,
    cluster: &Cluster,
    target: &Server,
) -> (Vec<Report>, Vec<String>) {
    let diff = || {
        cluster
            .snapshot()
            .diff(&Snapshot::take(target, 1), TTL_TOLERANCE_MS)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !diff().is_empty()
        && Instant::now() < deadline
        && !handles.iter().any(MigrationHandle::is_finished)
    {
        thread::sleep(Duration::from_millis(100));
    }
    for h in &handles {
        h.stop();
    }
    let reports: Vec<Report> = handles
        .into_iter()
        .map(|h| {
            let (report, result) = rt.block_on(h.finish());
            if let Err(e) = result {
                panic!("the migration failed: {e}: {}", report.to_json());
            }
            report
        })
        .collect();
    (reports, diff())
}

/// The target equals the source; the differences, the fences on the target and the
/// reports otherwise.
fn assert_equal(target: &Server, diff: &[String], reports: &[Report]) {
    if diff.is_empty() {
        return;
    }
    let fences = flat(&target.connect().cmd(["HGETALL", "__redis-migrate:asm"]));
    panic!(
        "{} key(s) differ on the target (source vs target), first ones:\n{}\nfences: {fences}\nreports:\n{}",
        diff.len(),
        diff[..diff.len().min(20)].join("\n"),
        reports
            .iter()
            .map(Report::to_json)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Each report counts `imports` atomic slot migrations, all ordered ([`assert_ordered`]).
fn assert_each_ordered(reports: &[Report], imports: u64) {
    for report in reports {
        let json = report.to_json();
        assert_eq!(report.atomic_slot_migrations, imports, "{json}");
        assert_ordered(report);
        eprintln!("{json}");
    }
}

/// What an ordered import leaves in the report: no failed write, every import confirmed
/// by its old owner's link, no "may differ" warning.
fn assert_ordered(report: &Report) {
    let json = report.to_json();
    assert_eq!(report.failures_total, 0, "{json}");
    assert_eq!(report.asm_unconfirmed, 0, "{json}");
    assert!(
        !report.warnings.iter().any(|w| w.contains("may differ")),
        "{json}"
    );
}

/// Writes before, during (while the snapshot is slowed, then through the pause) and after
/// the import: the whole target ends equal to the source.
#[test]
fn atomic_slot_migration_is_ordered() {
    ordered_in_one_process(true);
}

/// The same without checkpoints: the fence lives in the process only (nothing is written
/// to the target's fence hash).
#[test]
fn ordered_without_checkpoints() {
    ordered_in_one_process(false);
}

fn ordered_in_one_process(checkpoint: bool) {
    let (cluster, target, mut conn, from, to) = setup();
    let seed = cluster.masters()[0].addr();
    let rt = runtime();
    let handle = start_synced(&rt, builder(&seed, &target, None).checkpoint(checkpoint));
    let mut round = 0;
    write_rounds(&mut conn, &mut round, 3);
    move_under_writes(&cluster, &mut conn, &from, &to, &mut round);
    write_rounds(&mut conn, &mut round, 3);
    wait_applied(&handle, &cluster);
    let (reports, diff) = finish(&rt, vec![handle], &cluster, &target);
    assert_equal(&target, &diff, &reports);
    let report = &reports[0];
    let json = report.to_json();
    assert_eq!(report.atomic_slot_migrations, 1, "{json}");
    assert!(json.contains("\"atomic_slot_migrations\": 1"), "{json}");
    // The old owner's writes after the import began, and its trim.
    assert!(report.asm_commands_left_out > 0, "{json}");
    assert_ordered(report);
    let fences = target
        .connect()
        .cmd(["EXISTS", "__redis-migrate:asm"])
        .text();
    assert_eq!(fences, if checkpoint { "1" } else { "0" }, "{json}");
    eprintln!("{json}");
    // `forget` removes the fences with the checkpoints.
    let cfg = TargetConfig::parse(&target.url()).unwrap();
    rt.block_on(migrate_core::migrate::forget_checkpoint(
        &cfg,
        Duration::from_secs(5),
    ))
    .unwrap();
    let left = target
        .connect()
        .cmd(["EXISTS", "__redis-migrate:asm"])
        .text();
    assert_eq!(left, "0");
}

/// The slots moved out and back again (`B` to `A` after `A` to `B`), under writes: the old
/// owner applies them again from its own import on, the other leaves them out from there.
#[test]
fn slots_moved_back_are_ordered_too() {
    let (cluster, target, mut conn, from, to) = setup();
    let seed = cluster.masters()[0].addr();
    let rt = runtime();
    let handle = start_synced(&rt, builder(&seed, &target, None));
    let mut round = 0;
    write_rounds(&mut conn, &mut round, 3);
    move_under_writes(&cluster, &mut conn, &from, &to, &mut round);
    write_rounds(&mut conn, &mut round, 3);
    clear_migration_logs(&cluster);
    move_under_writes(&cluster, &mut conn, &to, &from, &mut round);
    write_rounds(&mut conn, &mut round, 3);
    wait_applied(&handle, &cluster);
    let (reports, diff) = finish(&rt, vec![handle], &cluster, &target);
    assert_equal(&target, &diff, &reports);
    assert_each_ordered(&reports, 2);
}

/// A fence left on the target by an earlier run does not hold a new one: the slots moved
/// to the other shard in a first run, back again while nothing ran, then a second run from
/// scratch (`reset_checkpoint`): the old owner's writes to them reach the target.
#[test]
fn an_earlier_runs_fence_does_not_hold_a_new_one() {
    let (cluster, target, mut conn, from, to) = setup();
    let seed = cluster.masters()[0].addr();
    let rt = runtime();
    let first = start_synced(&rt, builder(&seed, &target, None));
    let mut round = 0;
    write_rounds(&mut conn, &mut round, 2);
    move_under_writes(&cluster, &mut conn, &from, &to, &mut round);
    wait_applied(&first, &cluster);
    let (reports, diff) = finish(&rt, vec![first], &cluster, &target);
    assert_equal(&target, &diff, &reports);
    // Back to the first owner while no migration runs.
    clear_migration_logs(&cluster);
    begin_import(&cluster, &to, &from);
    assert_eq!(wait_state(&cluster, &to, terminal), "success");
    let mut conn = cluster.connect();
    assert_eq!(cluster.master_for_slot(0).id(), from);
    let second = start_synced(
        &rt,
        builder(&seed, &target, None)
            .reset_checkpoint(true)
            .on_conflict(Conflict::Replace),
    );
    write_rounds(&mut conn, &mut round, 3);
    wait_applied(&second, &cluster);
    let (reports, diff) = finish(&rt, vec![second], &cluster, &target);
    assert_equal(&target, &diff, &reports);
    let json = reports[0].to_json();
    assert_eq!(reports[0].asm_commands_left_out, 0, "{json}");
}

/// One migration: its seed and its `--shards` (none: every shard).
#[derive(Debug, Clone)]
struct Proc {
    seed: String,
    shards: Option<String>,
}

impl Proc {
    fn start(&self, rt: &tokio::runtime::Runtime, target: &Server) -> MigrationHandle {
        let _guard = rt.enter();
        builder(&self.seed, target, self.shards.as_deref()).start()
    }

    /// How many shards it migrates (of the 2).
    fn shards(&self) -> usize {
        if self.shards.is_some() {
            1
        } else {
            2
        }
    }
}

/// One process for the whole cluster, or one per shard (the old owner's first).
fn procs(cluster: &Cluster, per_shard: bool) -> Vec<Proc> {
    let (from, to) = owners(cluster);
    if per_shard {
        [from, to]
            .into_iter()
            .map(|id| Proc {
                seed: cluster.node(&id).addr(),
                shards: Some(id),
            })
            .collect()
    } else {
        vec![Proc {
            seed: cluster.masters()[0].addr(),
            shards: None,
        }]
    }
}

/// Where a cancelled import is caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caught {
    /// Part of its snapshot sent (and in the new owner's stream).
    InSnapshot,
    /// Its snapshot sent, the old owner's later writes forwarded.
    AfterSnapshot,
}

/// `CLUSTER CANCELSLOTMIGRATIONS` on the old owner mid-import, with writes before, during
/// and after: the slots stay with the old owner, whose link re-syncs them (a healing full
/// sync); the new owner's leftover import is dropped; the whole target ends equal to the
/// source. With `per_shard`, one process per shard: the old owner's learns of the failure
/// from the target.
fn cancelled_import_heals(caught: Caught, per_shard: bool) {
    let (cluster, target, mut conn, from, to) = setup();
    let rt = runtime();
    let procs = procs(&cluster, per_shard);
    let handles: Vec<MigrationHandle> = procs.iter().map(|p| p.start(&rt, &target)).collect();
    for (p, h) in procs.iter().zip(&handles) {
        wait_synced(h, p.shards());
    }
    let mut round = 0;
    write_rounds(&mut conn, &mut round, 3);
    match caught {
        Caught::InSnapshot => {
            begin_slow_import(&cluster, &from, &to);
            // Writes during the snapshot (about half of it), then the cancel while it is
            // still being sent.
            let half = Instant::now() + Duration::from_millis(1000);
            while Instant::now() < half {
                write(&mut conn, round);
                round += 1;
                thread::sleep(Duration::from_millis(100));
            }
        }
        Caught::AfterSnapshot => {
            prevent_pause(&cluster, true);
            begin_import(&cluster, &from, &to);
            let s = wait_state(&cluster, &from, |s| s == "waiting-to-pause" || terminal(s));
            assert_eq!(s, "waiting-to-pause", "{:?}", migrations(&cluster, &from));
            // Forwarded to the new owner, in its stream after the snapshot.
            write_rounds(&mut conn, &mut round, 3);
            for h in &handles {
                wait_applied(h, &cluster);
            }
        }
    }
    let imported: i64 = (0..MOVED)
        .map(|slot| {
            cluster
                .node(&to)
                .connect()
                .int(["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()])
        })
        .sum();
    // Part of the snapshot is on the new owner (so in its stream) when it is cancelled.
    assert!(
        imported > 0,
        "set-up: nothing imported yet: {:?}",
        migrations(&cluster, &to)
    );
    eprintln!("keys on the new owner at the cancel: {imported}");
    let reply = cluster
        .node(&from)
        .connect()
        .cmd(["CLUSTER", "CANCELSLOTMIGRATIONS"]);
    assert_eq!(reply.text(), "OK", "{reply:?}");
    let ended = wait_state(&cluster, &from, terminal);
    assert_ne!(ended, "success", "{:?}", migrations(&cluster, &from));
    let ended_to = wait_state(&cluster, &to, terminal);
    assert_ne!(ended_to, "success", "{:?}", migrations(&cluster, &to));
    eprintln!("cancelled: old owner {ended}, new owner {ended_to}");
    if caught == Caught::AfterSnapshot {
        prevent_pause(&cluster, false);
    }
    write_rounds(&mut conn, &mut round, 3);
    assert_eq!(
        cluster.master_for_slot(0).id(),
        from,
        "the slots stayed with the old owner"
    );
    for h in &handles {
        wait_applied(h, &cluster);
    }
    let (reports, diff) = finish(&rt, handles, &cluster, &target);
    assert_equal(&target, &diff, &reports);
    let all: String = reports.iter().map(Report::to_json).collect();
    // The old owner's link (the first process's) re-synced.
    assert!(reports[0].healing_full_syncs >= 1, "{all}");
    assert_each_ordered(&reports, 1);
}

/// Cancelled while its snapshot is being sent (held there by the snapshot delay).
#[test]
fn cancelled_migration_heals() {
    cancelled_import_heals(Caught::InSnapshot, false);
}

/// Cancelled after its snapshot, while the old owner's writes are forwarded (held there
/// by `DEBUG SLOTMIGRATION PREVENT-PAUSE`).
#[test]
fn cancelled_after_snapshot_heals() {
    cancelled_import_heals(Caught::AfterSnapshot, false);
}

/// Cancelled mid-snapshot with one process per shard.
#[test]
fn cancelled_across_processes_heals() {
    cancelled_import_heals(Caught::InSnapshot, true);
}

/// Two processes, one per shard (`--shards`), into one target: the slots move from the
/// first one's shard to the second one's under writes; the first learns of the import
/// from the fence the second leaves on the target.
#[test]
fn two_processes_order_the_import() {
    let (cluster, target, mut conn, from, to) = setup();
    let seed_a = cluster.node(&from).addr();
    let seed_b = cluster.node(&to).addr();
    let rt = runtime();
    let (a, b) = {
        let _guard = rt.enter();
        (
            builder(&seed_a, &target, Some(&from)).start(),
            builder(&seed_b, &target, Some(&to)).start(),
        )
    };
    wait_synced(&a, 1);
    wait_synced(&b, 1);
    let mut round = 0;
    write_rounds(&mut conn, &mut round, 3);
    move_under_writes(&cluster, &mut conn, &from, &to, &mut round);
    write_rounds(&mut conn, &mut round, 3);
    wait_applied(&a, &cluster);
    wait_applied(&b, &cluster);
    let (reports, diff) = finish(&rt, vec![a, b], &cluster, &target);
    assert_equal(&target, &diff, &reports);
    // The old owner's process finds it in `CLUSTER GETSLOTMIGRATIONS`, the new owner's in
    // its stream.
    assert_each_ordered(&reports, 1);
    // The old owner's process left its commands on the slots out (its writes during the
    // import and its trim), knowing the fence only from the target.
    assert!(
        reports[0].asm_commands_left_out > 0,
        "{}",
        reports[0].to_json()
    );
}

/// Process `which` of `procs(per_shard)` stopped while the snapshot is being sent and
/// started again from its checkpoints (the same settings): it reads the import's fence
/// back from the target and the whole target ends equal to the source.
fn restarted_mid_import(per_shard: bool, which: usize) {
    let (cluster, target, mut conn, from, to) = setup();
    let rt = runtime();
    let procs = procs(&cluster, per_shard);
    let mut handles: Vec<MigrationHandle> = procs.iter().map(|p| p.start(&rt, &target)).collect();
    for (p, h) in procs.iter().zip(&handles) {
        wait_synced(h, p.shards());
    }
    let mut round = 0;
    write_rounds(&mut conn, &mut round, 3);
    // Its checkpoints past the first writes.
    for h in &handles {
        wait_applied(h, &cluster);
    }
    begin_slow_import(&cluster, &from, &to);
    write(&mut conn, round);
    round += 1;
    // Time for the new owner's link to see the import begin (and fence it).
    thread::sleep(Duration::from_millis(500));
    let first = handles.remove(which);
    first.stop();
    let (r1, result) = rt.block_on(first.finish());
    if let Err(e) = result {
        panic!("the first run failed: {e}: {}", r1.to_json());
    }
    let at_restart = state(&cluster, &from).unwrap_or_default();
    eprintln!(
        "first run: {}\nrestarting with the import {at_restart}",
        r1.to_json()
    );
    handles.insert(which, procs[which].start(&rt, &target));
    write_rounds(&mut conn, &mut round, 3);
    assert_eq!(wait_state(&cluster, &from, terminal), "success");
    let mut conn = cluster.connect();
    write_rounds(&mut conn, &mut round, 3);
    assert_eq!(cluster.master_for_slot(0).id(), to);
    for (p, h) in procs.iter().zip(&handles) {
        wait_synced(h, p.shards());
        wait_applied(h, &cluster);
    }
    let (reports, diff) = finish(&rt, handles, &cluster, &target);
    assert_equal(&target, &diff, &reports);
    let json = reports[which].to_json();
    assert!(reports[which].resumed_from.is_some(), "{json}");
    // The same import, known from its fence on the target.
    assert_each_ordered(&reports, 1);
}

/// The one process, restarted mid-import.
#[test]
fn restart_mid_import() {
    restarted_mid_import(false, 0);
}

/// One process per shard; the old owner's restarted mid-import.
#[test]
fn old_owner_process_restarted_mid_import() {
    restarted_mid_import(true, 0);
}

/// One process per shard; the new owner's restarted mid-import.
#[test]
fn new_owner_process_restarted_mid_import() {
    restarted_mid_import(true, 1);
}

/// A process migrating only the old owner's shard (`--shards`): its stream shows only
/// the trim's `UNLINK`s; `CLUSTER GETSLOTMIGRATIONS` at the topology checks (and once at
/// the end) finds the export, counted and named the same way.
#[test]
fn old_owner_only_finds_the_export() {
    let (cluster, target, mut conn, from, to) = setup();
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
    assert_eq!(wait_state(&cluster, &from, terminal), "success");
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

/// A process migrating only the new owner's shard, the old owner's migrated by nobody:
/// the import waits at most `move_wait` for a confirmation, then goes on, counted in
/// `asm_unconfirmed` and warned about; the moved keys on the target are the import's.
#[test]
fn new_owner_only_waits_boundedly() {
    let (cluster, target, mut conn, from, to) = setup();
    let seed = cluster.node(&to).addr();
    let rt = runtime();
    let handle = {
        let _guard = rt.enter();
        builder(&seed, &target, Some(&to))
            .move_wait(Duration::from_millis(500))
            .start()
    };
    wait_synced(&handle, 1);
    let mut round = 0;
    write(&mut conn, round);
    round += 1;
    move_under_writes(&cluster, &mut conn, &from, &to, &mut round);
    write(&mut conn, round);
    wait_applied(&handle, &cluster);
    handle.stop();
    let (report, result) = rt.block_on(handle.finish());
    let json = report.to_json();
    result.unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(report.atomic_slot_migrations, 1, "{json}");
    assert_eq!(report.asm_unconfirmed, 1, "{json}");
    assert!(
        report.warnings.iter().any(|w| w.contains("not ordered")
            && w.contains(&format!("slots 0-{}", MOVED - 1))
            && w.contains("redis-migrate verify")),
        "{json}"
    );
    assert_eq!(report.failures_total, 0, "{json}");
    // The moved keys are the import's and the new owner's writes after it.
    let diff = cluster
        .snapshot()
        .diff(&Snapshot::take(&target, 1), TTL_TOLERANCE_MS);
    let moved: Vec<&String> = diff.iter().filter(|d| d.contains("asm-")).collect();
    assert!(moved.is_empty(), "{moved:?}\n{json}");
}
