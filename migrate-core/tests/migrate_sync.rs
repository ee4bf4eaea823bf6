//! `Source::Live` (PSYNC) into real servers: full sync + `once` per flavour, incremental
//! sync under a concurrent writer, the replication link killed mid-stream, bad sources.

mod common;

use common::*;
use std::time::Duration;

use migrate_core::migrate::{Migration, Phase, Source, StopReason, TargetConfig};
use migrate_core::Filter;
use testkit::{Conn, Dataset, Flavor, Server, Snapshot};

#[test]
fn sync_once_same_flavour() {
    for flavor in Flavor::ALL {
        let source = source_server(flavor);
        Dataset::small().fill(&source);
        let target = Server::start(flavor);
        let (report, result) = run_once(live(&source, &target));
        result.unwrap_or_else(|e| panic!("{flavor}: {e}"));
        assert_eq!(report.stop_reason, StopReason::CaughtUp);
        assert_eq!(report.failures_total, 0, "{flavor}: {:?}", report.failures);
        let expected = Snapshot::take(&source, 3);
        expected.assert_same(&Snapshot::take(&target, 3), TTL_TOLERANCE_MS);
        assert_eq!(report.keys_written(), expected.len() as u64);
        assert!(report.replid.is_some() && report.applied_offset.is_some());
        assert!(report.full_sync_duration.is_some());
    }
}

#[test]
fn sync_once_across_versions() {
    for (from, to) in [
        (Flavor::Valkey9_1, Flavor::Redis6_2),
        (Flavor::Redis7_0, Flavor::Redis6_2),
        (Flavor::Redis6_2, Flavor::Valkey9_1),
        (Flavor::Redis7_4, Flavor::Redis6_2),
        (Flavor::Redis7_4, Flavor::Valkey9_1),
        (Flavor::Valkey9_1, Flavor::Redis7_4),
    ] {
        // Into a target without the source's modules the migration refuses to start (see
        // tests/definitions.rs): these pairs test the data types, so the source loads none.
        let source = Server::builder(from)
            .config("repl-diskless-sync-delay", "0")
            .no_modules()
            .start();
        Dataset::small().fill(&source);
        let target = Server::start(to);
        let (report, result) = run_once(live(&source, &target));
        result.unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
        Snapshot::take(&source, 3).assert_same(&Snapshot::take(&target, 3), TTL_TOLERANCE_MS);
        if to == Flavor::Redis6_2 && from != Flavor::Redis6_2 {
            // Listpack encodings (RDB 10+) are unknown to 6.2: rewritten.
            assert!(report.keys_rewritten > 0, "{from} -> {to}: {report:?}");
        }
    }
}

/// `once` with a source written to without pause: it ends as soon as what the source had
/// written when the target got in sync is applied (a rule of "200 ms without writes" alone
/// would never end here: the writer leaves no such gap).
#[test]
fn once_ends_under_a_steady_writer() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let source = source_server(Flavor::Redis7_0);
    Dataset::small().fill(&source);
    let target = Server::start(Flavor::Redis7_0);
    let stop = Arc::new(AtomicBool::new(false));
    let mut src = source.connect();
    src.must(["SELECT", "5"]);
    src.must(["SET", "steady", "0"]);
    let writer = {
        let stop = stop.clone();
        let port = source.port();
        std::thread::spawn(move || {
            let mut c = Conn::connect(port).unwrap();
            c.must(["SELECT", "5"]);
            let mut n = 0i64;
            while !stop.load(Ordering::Relaxed) {
                n = c.int(["INCR", "steady"]);
                std::thread::sleep(Duration::from_millis(2));
            }
            n
        })
    };
    while src.bulk(["GET", "steady"]).as_deref() == Some(&b"0"[..]) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let before: i64 = String::from_utf8(src.bulk(["GET", "steady"]).unwrap())
        .unwrap()
        .parse()
        .unwrap();
    let ended = runtime().block_on(async {
        let run = live(&source, &target).once(true).start().finish();
        tokio::time::timeout(Duration::from_secs(60), run).await
    });
    stop.store(true, Ordering::Relaxed);
    let last = writer.join().unwrap();
    let (report, result) = ended.expect("`once` did not end under a steady writer");
    result.unwrap();
    assert_eq!(report.stop_reason, StopReason::CaughtUp);
    clean(&report, "steady writer");
    assert!(report.commands_applied > 0, "{report:?}");
    Snapshot::take(&source, 3).assert_same(&Snapshot::take(&target, 3), TTL_TOLERANCE_MS);
    let mut t = target.connect();
    t.must(["SELECT", "5"]);
    let got: i64 = String::from_utf8(t.bulk(["GET", "steady"]).unwrap())
        .unwrap()
        .parse()
        .unwrap();
    assert!(before <= got && got <= last, "{before} <= {got} <= {last}");
}

/// A write load touching every type, transactions, a script, expiries, deletes, a FLUSHDB,
/// three dbs, streams read by a consumer group, and counters (a duplicated or lost
/// command would show in their values).
fn workload(
    conn: &mut Conn,
    rounds: std::ops::Range<u32>,
    mut between: impl FnMut(u32, &mut Conn),
) {
    let half = (rounds.start + rounds.end) / 2;
    if rounds.start == 0 {
        conn.must(["SELECT", "0"]);
        conn.must(["XGROUP", "CREATE", "events", "g", "$", "MKSTREAM"]);
    }
    for r in rounds {
        let db = (r % 3).to_string();
        let s = r.to_string();
        conn.must(["SELECT", db.as_str()]);
        conn.must(["INCR", "counter"]);
        conn.must(["SET", &format!("str:{s}"), &s]);
        conn.must(["SET", &format!("ttl:{s}"), &s, "PX", "3600000"]);
        conn.must(["RPUSH", "list", &s, "x"]);
        conn.must(["LPOP", "list"]);
        conn.must(["HSET", "hash", &format!("f{}", r % 7), &s]);
        conn.must(["SADD", "set", &format!("m{}", r % 11)]);
        conn.must(["SREM", "set", &format!("m{}", (r + 5) % 11)]);
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
            conn.must(["DEL", &format!("str:{}", r - 1)]);
        }
        if r == half {
            conn.must(["SELECT", "2"]);
            conn.must(["FLUSHDB"]);
        }
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
        between(r, conn);
    }
}

fn incremental_under_load(from: Flavor, to: Flavor, kill_link_at: Option<u32>) {
    let source = source_server(from);
    Dataset::small().fill(&source);
    let target = Server::start(to);
    let rt = runtime();
    let handle = {
        let _guard = rt.enter();
        live(&source, &target).start()
    };
    let mut conn = source.connect();
    // Some writes while the full sync starts, then the rest during the incremental phase.
    workload(&mut conn, 0..30, |_, _| {});
    wait_for_phase(&handle, Phase::Incremental);
    workload(&mut conn, 30..300, |r, conn| {
        if Some(r) == kill_link_at {
            let mut admin = source.connect();
            let killed = admin.int(["CLIENT", "KILL", "TYPE", "replica"]);
            assert!(killed >= 1, "no replica link to kill");
        }
        if r % 50 == 0 {
            // Let the full sync and the stream interleave with the load.
            let _ = conn;
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    wait_caught_up(&handle, &mut conn);
    handle.stop();
    let report = rt.block_on(handle.wait()).unwrap();
    assert_eq!(report.stop_reason, StopReason::Stopped);
    assert_eq!(report.failures_total, 0, "{:?}", report.failures);
    assert_eq!(report.unsupported_total, 0, "{:?}", report.unsupported);
    assert!(report.commands_applied > 270 * 10, "{report:?}");
    Snapshot::take(&source, 3).assert_same(&Snapshot::take(&target, 3), TTL_TOLERANCE_MS);
    if kill_link_at.is_some() {
        assert!(
            report.disconnects >= 1 && report.partial_resyncs >= 1,
            "{report:?}"
        );
    }
}

#[test]
fn incremental_sync_under_a_concurrent_writer() {
    incremental_under_load(Flavor::Redis7_0, Flavor::Redis7_0, None);
}

#[test]
fn incremental_sync_to_an_older_target() {
    incremental_under_load(Flavor::Valkey9_1, Flavor::Redis6_2, None);
}

#[test]
fn replication_link_killed_mid_stream() {
    incremental_under_load(Flavor::Valkey8_1, Flavor::Valkey8_1, Some(150));
}

#[test]
fn incremental_with_filter_and_db_mapping() {
    let source = source_server(Flavor::Redis7_0);
    let target = Server::start(Flavor::Redis7_0);
    let rt = runtime();
    let filter = Filter::new()
        .exclude_db(1)
        .map_db(2, 7)
        .exclude_keys("ttl:*");
    let handle = {
        let _guard = rt.enter();
        live(&source, &target).filter(filter.clone()).start()
    };
    let mut conn = source.connect();
    workload(&mut conn, 0..60, |_, _| {});
    conn.must(["SELECT", "0"]);
    conn.must(["FLUSHALL"]);
    conn.must(["SELECT", "2"]);
    conn.must(["SET", "after-flushall", "1"]);
    wait_caught_up(&handle, &mut conn);
    handle.stop();
    rt.block_on(handle.wait()).unwrap();
    let mut t = target.connect();
    t.must(["SELECT", "7"]);
    assert_eq!(
        t.bulk(["GET", "after-flushall"]).as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(t.int(["DBSIZE"]), 1);
}

#[test]
fn bad_sources_give_one_line_errors() {
    let target = Server::start(Flavor::Redis7_0);
    let rt = runtime();
    let run = |url: String| {
        rt.block_on(async {
            Migration::builder()
                .source(Source::Live(replication_client::Config::new(&url).unwrap()))
                .target(TargetConfig::parse(&target.url()).unwrap())
                .once(true)
                .start()
                .wait()
                .await
                .unwrap_err()
                .to_string()
        })
    };
    let err = run(format!("redis://127.0.0.1:{}", testkit::free_port()));
    assert!(
        err.contains("source") && err.contains("host and port"),
        "{err}"
    );

    let locked = Server::builder(Flavor::Redis7_0).password("right").start();
    let err = run(format!("redis://:not-it@127.0.0.1:{}", locked.port()));
    assert!(
        err.contains("authentication") && !err.contains("not-it"),
        "{err}"
    );

    // A user without replication rights (as on managed services).
    let acl = Server::start(Flavor::Valkey9_1);
    acl.connect().ok([
        "ACL", "SETUSER", "reader", "on", ">pw", "~*", "+@read", "+ping", "+auth",
    ]);
    let err = run(format!("redis://reader:pw@127.0.0.1:{}", acl.port()));
    assert!(err.contains("import"), "{err}");
    assert!(!err.contains('\n'));
}

#[test]
fn unsupported_commands_follow_the_error_policy() {
    use migrate_core::migrate::ErrorPolicy;
    for policy in [ErrorPolicy::SkipAndCount, ErrorPolicy::Stop] {
        let source = source_server(Flavor::Valkey9_1);
        let target = Server::start(Flavor::Redis6_2);
        let rt = runtime();
        let handle = {
            let _guard = rt.enter();
            live(&source, &target).on_error(policy).start()
        };
        wait_for_phase(&handle, Phase::Incremental);
        let mut conn = source.connect();
        conn.must(["HSET", "fields", "a", "1", "b", "2"]);
        // Hash field TTLs do not exist on 6.2.
        conn.must(["HPEXPIRE", "fields", "100000", "FIELDS", "1", "a"]);
        conn.must(["SET", "after", "1"]);
        if policy == ErrorPolicy::Stop {
            let err = rt.block_on(handle.wait()).unwrap_err().to_string();
            assert!(
                err.contains("fields") && err.contains("hash field TTLs"),
                "{err}"
            );
            continue;
        }
        wait_caught_up(&handle, &mut conn);
        handle.stop();
        let report = rt.block_on(handle.wait()).unwrap();
        assert_eq!(report.unsupported_total, 1, "{report:?}");
        assert_eq!(report.unsupported[0].key.as_deref(), Some(&b"fields"[..]));
        let mut t = target.connect();
        assert_eq!(t.bulk(["GET", "after"]).as_deref(), Some(&b"1"[..]));
        assert_eq!(t.int(["HLEN", "fields"]), 2);
    }
}

#[test]
fn failed_replicated_writes_follow_the_error_policy() {
    use migrate_core::migrate::{Conflict, ErrorPolicy};
    for policy in [ErrorPolicy::SkipAndCount, ErrorPolicy::Stop] {
        let source = source_server(Flavor::Redis7_0);
        let target = Server::start(Flavor::Redis7_0);
        // A key of another type on the target, kept by Conflict::Skip.
        target.connect().must(["RPUSH", "x", "a"]);
        let rt = runtime();
        let handle = {
            let _guard = rt.enter();
            live(&source, &target)
                .on_conflict(Conflict::Skip)
                .on_error(policy)
                .start()
        };
        wait_for_phase(&handle, Phase::Incremental);
        let mut conn = source.connect();
        conn.must(["INCR", "x"]);
        conn.must(["SET", "after", "1"]);
        if policy == ErrorPolicy::Stop {
            let (report, result) = rt.block_on(handle.finish());
            let err = result.unwrap_err().to_string();
            assert!(
                err.starts_with("write failed: INCR \"x\" (db 0") && err.contains("WRONGTYPE"),
                "{err}"
            );
            assert_eq!(report.failures_total, 1);
            continue;
        }
        wait_caught_up(&handle, &mut conn);
        handle.stop();
        let report = rt.block_on(handle.wait()).unwrap();
        assert_eq!(report.failures_total, 1, "{report:?}");
        let f = &report.failures[0];
        assert_eq!(
            (f.command.as_str(), f.key.as_deref()),
            ("INCR", Some(&b"x"[..]))
        );
        assert!(f.error.contains("WRONGTYPE"));
        assert_eq!(
            target.connect().bulk(["GET", "after"]).as_deref(),
            Some(&b"1"[..])
        );
    }
}

/// The source refuses the partial resync (its backlog overflowed while the link was down,
/// and keys were deleted meanwhile): a new full sync heals the target, the keys the new
/// snapshot does not hold are swept, and the migration goes on.
#[test]
fn refused_partial_resync_heals_with_a_new_full_sync() {
    let source = Server::builder(Flavor::Redis7_0)
        .config("repl-diskless-sync-delay", "0")
        .config("repl-backlog-size", "16384")
        .start();
    let target = Server::start(Flavor::Redis7_0);
    let mut conn = source.connect();
    for i in 0..50 {
        conn.must(["SET", &format!("old{i}"), "x"]);
    }
    let rt = runtime();
    // Reconnect late enough for the backlog to overflow meanwhile.
    let backoff = replication_client::Backoff {
        initial: Duration::from_millis(1500),
        jitter: 0.0,
        ..Default::default()
    };
    let config = replication_client::Config::new(&source.url())
        .unwrap()
        .backoff(backoff);
    let handle = {
        let _guard = rt.enter();
        Migration::builder()
            .source(Source::Live(config))
            .target(TargetConfig::parse(&target.url()).unwrap())
            .start()
    };
    wait_caught_up(&handle, &mut conn);
    assert!(conn.int(["CLIENT", "KILL", "TYPE", "replica"]) >= 1);
    // Deleted while the link is down: only a sweep removes them from the target.
    for i in 0..50 {
        conn.int(["DEL", &format!("old{i}")]);
    }
    let value = "v".repeat(1024);
    for i in 0..200 {
        conn.must(["SET", &format!("k{i}"), &value]);
    }
    std::thread::sleep(Duration::from_millis(2000));
    wait_caught_up(&handle, &mut conn);
    conn.must(["SET", "after", "1"]);
    wait_caught_up(&handle, &mut conn);
    handle.stop();
    let report = rt.block_on(handle.wait()).unwrap();
    assert_eq!(report.full_syncs, 2, "{report:?}");
    assert_eq!(report.healing_full_syncs, 1);
    assert_eq!(report.keys_swept, 50);
    assert!(report.disconnects >= 1);
    Snapshot::take(&source, 1).assert_same(&Snapshot::take(&target, 1), TTL_TOLERANCE_MS);
}

#[test]
fn progress_reports_the_full_sync_then_the_lag() {
    // Redis 6.2 syncs from disk: the RDB size is known up front.
    let source = source_server(Flavor::Redis6_2);
    Dataset::small().fill(&source);
    let target = Server::start(Flavor::Redis6_2);
    let rt = runtime();
    let handle = {
        let _guard = rt.enter();
        live(&source, &target).start()
    };
    wait_for_phase(&handle, Phase::Incremental);
    let p = handle.progress();
    assert_eq!(p.keys_written, 600, "{p:?}");
    assert!(
        p.rdb_total.is_some_and(|t| t > 0 && p.rdb_bytes == t),
        "{p:?}"
    );
    assert_eq!(p.rdb_percent(), Some(100.0));
    assert!(p.rdb_bytes_per_sec > 0.0 && p.keys_per_sec > 0.0, "{p:?}");
    let mut conn = source.connect();
    for i in 0..100 {
        conn.must(["SET", &format!("late:{i}"), "x"]);
    }
    wait_caught_up(&handle, &mut conn);
    let p = handle.progress();
    assert_eq!(p.lag_bytes, 0, "{p:?}");
    assert!(p.commands_applied >= 100, "{p:?}");
    assert_eq!(p.applied_offset, p.source_offset);
    handle.stop();
    let report = rt.block_on(handle.wait()).unwrap();
    assert_eq!(report.applied_offset, report.source_offset);
}

#[test]
fn functions_in_the_rdb_and_in_the_stream() {
    let lib = |name: &str| {
        format!(
            "#!lua name={name}\nredis.register_function('{name}_incr', function(keys) return redis.call('INCR', keys[1]) end)"
        )
    };
    let source = source_server(Flavor::Redis7_0);
    let target = Server::start(Flavor::Valkey9_1);
    let mut conn = source.connect();
    conn.must(["FUNCTION", "LOAD", &lib("first")]);
    let rt = runtime();
    let handle = {
        let _guard = rt.enter();
        live(&source, &target).start()
    };
    wait_for_phase(&handle, Phase::Incremental);
    conn.must(["FUNCTION", "LOAD", &lib("second")]);
    conn.must(["FCALL", "first_incr", "1", "calls"]);
    conn.must(["FCALL", "second_incr", "1", "calls"]);
    wait_caught_up(&handle, &mut conn);
    handle.stop();
    let report = rt.block_on(handle.wait()).unwrap();
    assert_eq!(report.functions, 1, "{report:?}");
    let mut t = target.connect();
    assert_eq!(t.bulk(["GET", "calls"]).as_deref(), Some(&b"2"[..]));
    // Both libraries exist on the target: the next call works there.
    assert_eq!(t.int(["FCALL", "second_incr", "1", "calls"]), 3);
    assert_eq!(t.int(["FCALL", "first_incr", "1", "calls"]), 4);
}

/// The field test that found the endless full-sync loop: a Valkey 9.1 source holding hash
/// field TTLs. With the default configuration (a version announced, so Valkey sends its
/// own RDB format) it syncs at once: exactly into Valkey 9.1, and completely into Redis
/// 7.0 and 6.2, where every hash that lost its field TTLs is named in the report.
#[test]
fn valkey_9_field_ttls_sync_exactly_or_are_reported_lossy() {
    let source = source_server(Flavor::Valkey9_1);
    let stats = Dataset::small().with_field_ttls().fill(&source);
    assert!(stats.with_field_ttl > 0);
    let expected = Snapshot::take(&source, 3);
    for to in [Flavor::Valkey9_1, Flavor::Redis7_0, Flavor::Redis6_2] {
        let target = Server::start(to);
        let (report, result) = run_once(live(&source, &target));
        result.unwrap_or_else(|e| panic!("-> {to}: {e}"));
        assert_eq!(report.failures_total, 0, "{to}: {:?}", report.failures);
        assert_eq!(
            report.unsupported_total, 0,
            "{to}: {:?}",
            report.unsupported
        );
        assert_eq!(report.disconnects, 0, "{to}: one full sync, no retry");
        let actual = Snapshot::take(&target, 3);
        if to == Flavor::Valkey9_1 {
            expected.assert_same(&actual, TTL_TOLERANCE_MS);
            assert_eq!(report.keys_lossy, 0);
            continue;
        }
        let mut without = expected.clone();
        for e in without.keys.values_mut() {
            e.field_expire_at_ms.clear();
        }
        without.assert_same(&actual, TTL_TOLERANCE_MS);
        assert_eq!(report.keys_lossy, stats.with_field_ttl, "{to}: {report:?}");
        assert_eq!(report.lossy.len() as u64, stats.with_field_ttl);
        assert!(
            report
                .lossy
                .iter()
                .all(|l| l.what.contains("hash field TTL")),
            "{:?}",
            report.lossy
        );
        assert!(
            report.to_json().contains("\"lost\": "),
            "{}",
            report.to_json()
        );
    }
}

/// A key transform renames full-sync keys and every key of replicated commands the same
/// way; a multi-key command is narrowed or refused, never applied half-way.
#[test]
fn key_transform_applies_to_full_sync_and_stream() {
    use migrate_core::migrate::ErrorPolicy;
    use migrate_core::KeyAction;
    let source = source_server(Flavor::Redis7_0);
    let target = Server::start(Flavor::Redis7_0);
    let mut s = source.connect();
    s.ok(["SET", "session:a", "1"]);
    s.ok(["SET", "keep", "k"]);
    let filter = Filter::new()
        .include_keys("session:*")
        .transform("s2", |db, key| {
            KeyAction::rename(db, [&b"s2:"[..], &key[8..]].concat())
        });
    let rt = runtime();
    let handle = {
        let _guard = rt.enter();
        live(&source, &target)
            .filter(filter)
            .on_error(ErrorPolicy::SkipAndCount)
            .start()
    };
    wait_for_phase(&handle, Phase::Incremental);
    s.int(["INCR", "session:n"]);
    s.int(["RPUSH", "session:l", "x", "y"]);
    s.ok(["MSET", "session:m", "1", "other", "2"]);
    s.ok(["RENAME", "session:a", "session:b"]);
    s.int(["DEL", "session:l", "other"]);
    // One key in the filter, one outside: refused, not applied half-way.
    s.int(["SADD", "outside:set", "a"]);
    s.int(["SUNIONSTORE", "session:u", "outside:set"]);
    wait_caught_up(&handle, &mut s);
    handle.stop();
    let report = rt.block_on(handle.wait()).unwrap();
    let mut t = target.connect();
    assert_eq!(t.bulk(["GET", "s2:n"]).as_deref(), Some(&b"1"[..]));
    assert_eq!(t.bulk(["GET", "s2:m"]).as_deref(), Some(&b"1"[..]));
    assert_eq!(t.bulk(["GET", "s2:b"]).as_deref(), Some(&b"1"[..]));
    assert_eq!(
        t.int([
            "EXISTS",
            "s2:a",
            "s2:l",
            "session:n",
            "other",
            "keep",
            "outside"
        ]),
        0
    );
    assert_eq!(report.unsupported_total, 1, "{:?}", report.unsupported);
    assert_eq!(report.unsupported[0].command, "SUNIONSTORE");
}

/// Regression: a steady trickle of writes (one every 50 ms, so the stream never goes quiet
/// long enough for the idle check) reaches the target as it comes, not once 64 KB of output
/// have piled up. The writes are counted on the target right after the last one: nearly all
/// must be there (the margin is hundreds of milliseconds; before the fix, none were).
#[test]
fn a_trickle_of_writes_is_applied_as_it_comes() {
    let source = source_server(Flavor::Redis7_0);
    let target = Server::start(Flavor::Redis7_0);
    let rt = runtime();
    let handle = {
        let _guard = rt.enter();
        live(&source, &target).start()
    };
    wait_for_phase(&handle, Phase::Incremental);
    let mut s = source.connect();
    let mut t = target.connect();
    for i in 0..40 {
        s.int(["RPUSH", "trickle", &i.to_string()]);
        std::thread::sleep(Duration::from_millis(50));
    }
    let arrived = t.int(["LLEN", "trickle"]);
    assert!(arrived >= 30, "only {arrived} of 40 writes on the target");
    handle.stop();
    rt.block_on(handle.wait()).unwrap();
}
