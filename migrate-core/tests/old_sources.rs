//! Old Redis versions as sources (issue 16): Redis 2.8.17, 3.0.5, 3.2.6 and 5.0.6, built
//! from source by `scripts/install-test-servers.sh` (`Flavor::OLD_SOURCES`). For each:
//! `sync --once` into Redis 7.0 and Valkey 9.1; a continuous sync under a writer with the
//! replica link killed mid-stream (a partial resync, counted by the source); `import` of
//! its `SAVE` output into Redis 6.2 and Valkey 9.1. Every run is compared key by key.

mod common;

use common::*;
use std::time::Duration;

use migrate_core::migrate::{
    Migration, MigrationBuilder, MigrationError, Phase, Report, Source, StopReason, TargetConfig,
};
use testkit::{Conn, Dataset, Flavor, Server, Snapshot};

/// Snapshots read expiries as `now + PTTL`; old sources also replicate `EXPIRE` as a
/// relative TTL, applied a little later on the target.
const TTL_TOLERANCE_MS: i64 = 1500;
const DBS: u32 = 3;

/// An old source with its dataset.
fn filled_source(flavor: Flavor) -> Server {
    let mut b = Server::builder(flavor);
    if flavor.has_diskless_sync() {
        b = b.config("repl-diskless-sync-delay", "0");
    }
    let source = b.start();
    let stats = Dataset::small_for(flavor).fill(&source);
    assert!(stats.keys > 0 && stats.with_ttl > 0);
    source
}

fn run(b: MigrationBuilder) -> (Report, Result<(), MigrationError>) {
    runtime().block_on(async { b.start().finish().await })
}

fn stat(conn: &mut Conn, section: &str, field: &str) -> u64 {
    conn.info_field(section, field)
        .unwrap_or_else(|| panic!("INFO {section} has no {field}"))
        .parse()
        .unwrap()
}

/// `sync --once` into Redis 7.0 and into Valkey 9.1.
fn sync_once(flavor: Flavor) {
    let source = filled_source(flavor);
    let expected = Snapshot::take(&source, DBS);
    for to in [Flavor::Redis7_0, Flavor::Valkey9_1] {
        let target = Server::start(to);
        let (report, result) = run(live(&source, &target).once(true));
        result.unwrap_or_else(|e| panic!("{flavor} -> {to}: {e}"));
        assert_eq!(report.stop_reason, StopReason::CaughtUp, "{flavor} -> {to}");
        clean(&report, &format!("{flavor} -> {to}"));
        expected.assert_same(&Snapshot::take(&target, DBS), TTL_TOLERANCE_MS);
        assert_eq!(report.keys_written(), expected.len() as u64, "{report:?}");
    }
}

/// Writes of every type the version has (transactions, a script, TTLs, deletes, a FLUSHDB,
/// counters whose values show a lost or repeated command); streams from 5.0.
fn workload(
    conn: &mut Conn,
    flavor: Flavor,
    rounds: std::ops::Range<u32>,
    mut between: impl FnMut(u32),
) {
    for r in rounds {
        let s = r.to_string();
        conn.must(["SELECT", &(r % DBS).to_string()]);
        conn.must(["INCR", "counter"]);
        conn.must(["SET", &format!("str:{s}"), &s]);
        conn.must(["SET", &format!("ttl:{s}"), &s, "PX", "3600000"]);
        conn.must(["SETEX", &format!("setex:{}", r % 10), "7200", &s]);
        conn.must(["APPEND", "appended", &s]);
        conn.must(["INCRBYFLOAT", "float", "0.25"]);
        conn.must(["RPUSH", "list", &s, "x"]);
        conn.must(["LPOP", "list"]);
        conn.must(["LTRIM", "list", "0", "50"]);
        conn.must(["HSET", "hash", &format!("f{}", r % 7), &s]);
        conn.must(["HINCRBY", "hash", "n", "1"]);
        conn.must(["HMSET", "hm", "a", &s, "b", &s]);
        conn.must(["SADD", "set", &format!("m{}", r % 11)]);
        conn.must(["SREM", "set", &format!("m{}", (r + 5) % 11)]);
        conn.must(["SADD", "intset", &(r % 13).to_string()]);
        conn.must([
            "ZADD",
            "zset",
            &format!("{}.5", r % 13),
            &format!("z{}", r % 5),
        ]);
        conn.must(["ZINCRBY", "zset", "1", "z0"]);
        conn.must(["EXPIRE", "hash", "3600"]);
        if r % 4 == 0 {
            conn.must(["PERSIST", "hash"]);
        }
        conn.must(["MULTI"]);
        conn.must(["INCRBY", "tx:counter", "2"]);
        conn.must(["LPUSH", "tx:list", &s]);
        conn.must(["EXEC"]);
        conn.must([
            "EVAL",
            "redis.call('INCR', KEYS[1]); redis.call('HINCRBY', KEYS[2], 'n', 1); return 1",
            "2",
            "lua:counter",
            "lua:hash",
        ]);
        if r % 5 == 4 {
            // Same db: r - 3 and r are congruent mod 3.
            conn.must(["DEL", &format!("str:{}", r - 3)]);
            conn.must(["RENAME", &format!("str:{r}"), &format!("renamed:{r}")]);
        }
        if r == 150 {
            conn.must(["SELECT", "2"]);
            conn.must(["FLUSHDB"]);
        }
        if flavor.has_streams() {
            conn.must(["SELECT", "0"]);
            let id = format!("{}-1", r + 1);
            conn.must(["XADD", "events", &id, "round", &s]);
            conn.must([
                "XREADGROUP",
                "GROUP",
                "g",
                "consumer",
                "COUNT",
                "1",
                "STREAMS",
                "events",
                ">",
            ]);
            if r % 2 == 0 {
                conn.must(["XACK", "events", "g", &id]);
            }
        }
        between(r);
    }
}

/// A continuous sync: writes during the full sync and the incremental phase, the replica
/// link killed half way (`CLIENT KILL TYPE slave|replica`), compared key by key; the
/// source counts the partial resync (`sync_partial_ok`).
fn incremental_with_killed_link(flavor: Flavor, to: Flavor) {
    let source = filled_source(flavor);
    let mut conn = source.connect();
    if flavor.has_streams() {
        conn.must(["XGROUP", "CREATE", "events", "g", "$", "MKSTREAM"]);
    }
    let partial_before = stat(&mut conn, "stats", "sync_partial_ok");
    let target = Server::start(to);
    let rt = runtime();
    let handle = {
        let _guard = rt.enter();
        live(&source, &target).start()
    };
    workload(&mut conn, flavor, 0..20, |_| {});
    wait_for_phase(&handle, Phase::Incremental);
    let mut admin = source.connect();
    workload(&mut conn, flavor, 20..200, |r| {
        if r == 100 {
            let killed = admin.int(["CLIENT", "KILL", "TYPE", flavor.replica_client_type()]);
            assert!(killed >= 1, "{flavor}: no replica link to kill");
        }
        if r % 50 == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    wait_caught_up(&handle, &mut conn);
    handle.stop();
    let report = rt.block_on(handle.wait()).unwrap();
    let what = format!("{flavor} -> {to}");
    assert_eq!(report.stop_reason, StopReason::Stopped, "{what}");
    clean(&report, &what);
    Snapshot::take(&source, DBS).assert_same(&Snapshot::take(&target, DBS), TTL_TOLERANCE_MS);
    assert!(
        report.disconnects >= 1 && report.partial_resyncs >= 1,
        "{what}: {report:?}"
    );
    let partial = stat(&mut admin, "stats", "sync_partial_ok") - partial_before;
    assert!(partial >= 1, "{what}: the source counted no partial resync");
    assert_eq!(
        stat(&mut admin, "stats", "sync_full"),
        1,
        "{what}: a second full sync"
    );
}

/// `import` of the source's `SAVE` output into Redis 6.2 and Valkey 9.1.
fn import(flavor: Flavor) {
    let source = filled_source(flavor);
    let rdb = source.save();
    assert_eq!(&rdb[..9], flavor.rdb_magic(), "{flavor}");
    let expected = Snapshot::take(&source, DBS);
    for to in [Flavor::Redis6_2, Flavor::Valkey9_1] {
        let target = Server::start(to);
        let b = Migration::builder()
            .source(Source::RdbFile(source.rdb_path()))
            .target(TargetConfig::parse(&target.url()).unwrap());
        let (report, result) = run(b);
        result.unwrap_or_else(|e| panic!("import {flavor} -> {to}: {e}"));
        assert_eq!(report.stop_reason, StopReason::Completed);
        clean(&report, &format!("import {flavor} -> {to}"));
        expected.assert_same(&Snapshot::take(&target, DBS), TTL_TOLERANCE_MS);
        assert_eq!(report.keys_written(), expected.len() as u64, "{report:?}");
    }
}

#[test]
fn redis_2_8_sync_once() {
    sync_once(Flavor::Redis2_8);
}

#[test]
fn redis_3_0_sync_once() {
    sync_once(Flavor::Redis3_0);
}

#[test]
fn redis_3_2_sync_once() {
    sync_once(Flavor::Redis3_2);
}

#[test]
fn redis_5_0_sync_once() {
    sync_once(Flavor::Redis5_0);
}

#[test]
fn redis_2_8_incremental_with_killed_link() {
    incremental_with_killed_link(Flavor::Redis2_8, Flavor::Redis7_0);
}

#[test]
fn redis_3_0_incremental_with_killed_link() {
    incremental_with_killed_link(Flavor::Redis3_0, Flavor::Valkey9_1);
}

#[test]
fn redis_3_2_incremental_with_killed_link() {
    incremental_with_killed_link(Flavor::Redis3_2, Flavor::Redis7_0);
}

#[test]
fn redis_5_0_incremental_with_killed_link() {
    incremental_with_killed_link(Flavor::Redis5_0, Flavor::Valkey9_1);
}

#[test]
fn redis_2_8_import() {
    import(Flavor::Redis2_8);
}

#[test]
fn redis_3_0_import() {
    import(Flavor::Redis3_0);
}

#[test]
fn redis_3_2_import() {
    import(Flavor::Redis3_2);
}

#[test]
fn redis_5_0_import() {
    import(Flavor::Redis5_0);
}
