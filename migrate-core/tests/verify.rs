//! `migrate_core::verify` against real servers: exact copies made by the migration compare
//! equal (across versions, field TTLs included), planted differences are each reported
//! by key with their kind, a live sync with a writer on the source settles to no
//! differences over the re-check rounds, filters and a db map apply as in `sync`.

mod common;

use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use migrate_core::migrate::{Conflict, Phase, TargetConfig};
use migrate_core::verify::{DiffKind, Verifier, VerifyOptions, VerifyReport};
use migrate_core::Filter;
use testkit::{Dataset, Flavor, Server};

fn source_server(flavor: Flavor) -> Server {
    Server::builder(flavor)
        .config("repl-diskless-sync-delay", "0")
        .no_modules()
        .start()
}

/// `sync --once` with `filter`; every key written.
fn copy(source: &Server, target: &Server, filter: Filter) {
    let (report, result) = runtime().block_on(async {
        live(source, target)
            .filter(filter)
            .once(true)
            .start()
            .finish()
            .await
    });
    result.unwrap();
    assert_eq!(report.failures_total, 0, "{:?}", report.failures);
}

fn cfg(s: &Server) -> TargetConfig {
    TargetConfig::parse(&s.url()).unwrap()
}

fn verify(source: &Server, target: &Server, o: VerifyOptions) -> VerifyReport {
    runtime()
        .block_on(Verifier::new(cfg(source), cfg(target)).options(o).run())
        .unwrap()
}

fn quick() -> VerifyOptions {
    VerifyOptions::default().delay(Duration::from_millis(100))
}

fn assert_equal(r: &VerifyReport, what: &str) {
    assert!(
        r.is_equal(),
        "{what}: {}\n{}",
        r.summary(),
        r.differences
            .iter()
            .take(20)
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Exact copies across versions compare equal, with small chunks too (every big key read
/// in pieces and compared by digest).
#[test]
fn exact_copies_are_equal() {
    for (from, to) in [
        (Flavor::Redis6_2, Flavor::Valkey8_1),
        (Flavor::Valkey9_1, Flavor::Redis7_0),
    ] {
        let source = source_server(from);
        Dataset::small().fill(&source);
        let target = Server::start(to);
        copy(&source, &target, Filter::new());
        let r = verify(&source, &target, quick());
        assert_equal(&r, &format!("{from} -> {to}"));
        assert_eq!(r.keys_compared, 600, "{}", r.summary());
        assert_eq!(r.target_keys_scanned, 600, "{}", r.summary());
        assert_eq!(r.rounds, 1);
        let r = verify(&source, &target, quick().chunk(7).key_budget(200).batch(50));
        assert_equal(&r, &format!("{from} -> {to}, small chunks"));
    }
}

/// Redis 5.0 has no `XINFO STREAM ... FULL`: streams are read with `XRANGE`, `XINFO
/// GROUPS` / `CONSUMERS` and `XPENDING` there; a changed group is still found.
#[test]
fn streams_without_xinfo_full_redis_5_0() {
    let source = source_server(Flavor::Redis5_0);
    Dataset::small_for(Flavor::Redis5_0).fill(&source);
    let target = Server::start(Flavor::Redis7_0);
    copy(&source, &target, Filter::new());
    assert_equal(&verify(&source, &target, quick()), "5.0 -> 7.0");
    assert_equal(
        &verify(&target, &source, quick().chunk(3)),
        "7.0 vs 5.0, small chunks",
    );
    let mut s = source.connect();
    s.ok(["SELECT", "1"]);
    s.ok(["XGROUP", "CREATE", "stream:00000019", "planted", "0"]);
    let r = verify(&source, &target, quick().rounds(0));
    let d = find(&r, "stream:00000019");
    assert_eq!(d.kind, DiffKind::Value, "{d}");
    assert!(
        d.detail.contains("group \"planted\" not on the target"),
        "{d}"
    );
}

/// Redis 7.4 ↔ Valkey 9.1 with hash field TTLs (both encodings): equal both ways, field
/// TTLs compared.
#[test]
fn field_ttls_redis_7_4_and_valkey_9_1() {
    let source = source_server(Flavor::Redis7_4);
    let stats = Dataset::small().with_field_ttls().fill(&source);
    assert!(stats.with_field_ttl > 0);
    let target = Server::start(Flavor::Valkey9_1);
    copy(&source, &target, Filter::new());
    let r = verify(&source, &target, quick());
    assert!(r.field_ttls_compared);
    assert_equal(&r, "7.4 -> 9.1");
    let r = verify(&target, &source, quick().chunk(5).key_budget(100));
    assert_equal(&r, "9.1 vs 7.4, small chunks");
}

fn find<'a>(r: &'a VerifyReport, key: &str) -> &'a migrate_core::verify::Difference {
    r.differences
        .iter()
        .find(|d| d.key.as_ref() == key.as_bytes())
        .unwrap_or_else(|| panic!("{key} not reported: {}\n{:?}", r.summary(), r.differences))
}

/// Each planted difference is reported by key with its kind, and nothing else.
#[test]
fn planted_differences_are_reported() {
    let source = source_server(Flavor::Valkey9_1);
    Dataset::small().with_field_ttls().fill(&source);
    let mut s = source.connect();
    s.ok(["SET", "plant:string", "hello"]);
    s.ok(["SET", "plant:gone", "1"]);
    s.ok(["SET", "plant:ttl", "1", "EX", "1000"]);
    s.must(["XADD", "plant:stream", "1-1", "f", "v"]);
    s.must(["XADD", "plant:stream", "2-1", "f", "w"]);
    s.ok(["XGROUP", "CREATE", "plant:stream", "g", "0"]);
    s.must([
        "XREADGROUP",
        "GROUP",
        "g",
        "alice",
        "COUNT",
        "1",
        "STREAMS",
        "plant:stream",
        ">",
    ]);
    s.must(["HSET", "plant:fttl", "f", "v", "g", "w"]);
    s.must(["HPEXPIRE", "plant:fttl", "100000", "FIELDS", "1", "f"]);
    s.must(["HSET", "plant:fttl-small", "f", "v"]);
    s.must(["HPEXPIRE", "plant:fttl-small", "100000", "FIELDS", "1", "f"]);
    s.must([
        "FUNCTION",
        "LOAD",
        "#!lua name=plantlib\nredis.register_function('plantf', function() return 1 end)",
    ]);
    let target = Server::start(Flavor::Valkey9_1);
    copy(&source, &target, Filter::new());
    assert_equal(&verify(&source, &target, quick()), "before planting");

    let mut t = target.connect();
    t.ok(["SET", "plant:string", "hellO"]);
    assert_eq!(t.int(["DEL", "plant:gone"]), 1);
    t.ok(["SET", "plant:extra", "1"]);
    assert_eq!(t.int(["PEXPIRE", "plant:ttl", "500000"]), 1);
    t.ok(["XGROUP", "SETID", "plant:stream", "g", "2-1"]);
    t.must(["HPEXPIRE", "plant:fttl", "900000", "FIELDS", "1", "f"]);
    t.must(["HPERSIST", "plant:fttl-small", "FIELDS", "1", "f"]);
    // A big hash (300 fields) and a big list, compared by digest with small chunks.
    t.must(["HSET", "hash:00000012", "field:5", "changed"]);
    t.ok(["LSET", "list:00000009", "100", "changed"]);
    t.ok(["SELECT", "1"]);
    t.must(["ZADD", "zset:00000016", "12345", "planted"]);
    t.ok(["SELECT", "0"]);
    t.must(["FUNCTION", "DELETE", "plantlib"]);

    for o in [
        quick().rounds(1),
        quick().rounds(1).chunk(20).key_budget(300),
    ] {
        let r = verify(&source, &target, o);
        let expect = [
            ("plant:string", DiffKind::Value),
            ("plant:gone", DiffKind::Missing),
            ("plant:extra", DiffKind::Extra),
            ("plant:ttl", DiffKind::Ttl),
            ("plant:stream", DiffKind::Value),
            ("plant:fttl", DiffKind::Ttl),
            ("plant:fttl-small", DiffKind::Ttl),
            ("hash:00000012", DiffKind::Value),
            ("list:00000009", DiffKind::Value),
            ("zset:00000016", DiffKind::Value),
            ("plantlib", DiffKind::Missing),
        ];
        for (key, kind) in expect {
            let d = find(&r, key);
            assert_eq!(d.kind, kind, "{d}");
            assert!(d.detail.len() < 200, "{d}");
        }
        assert_eq!(
            r.differences_total(),
            expect.len() as u64,
            "{:?}",
            r.differences
        );
        assert_eq!(r.rounds, 2);
        assert!(find(&r, "plant:stream")
            .detail
            .contains("last-delivered-id"));
        assert_eq!(find(&r, "zset:00000016").db, Some(1));
        assert!(find(&r, "plantlib").is_function());
        let json = r.to_json();
        assert!(json.contains("\"result\": \"different\""), "{json}");
        assert!(
            json.contains("\"key\": \"plant:gone\", \"kind\": \"missing\""),
            "{json}"
        );
    }
}

/// A live sync and a writer on the source while verify runs: what the sync was still
/// carrying drops out over the rounds.
#[test]
fn online_with_live_sync_and_writer() {
    let source = source_server(Flavor::Valkey9_1);
    Dataset::small().fill(&source);
    let target = Server::start(Flavor::Valkey8_1);
    let rt = runtime();
    let handle =
        rt.block_on(async { live(&source, &target).on_conflict(Conflict::Refuse).start() });
    let mut s = source.connect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let want = master_offset(&mut s);
        let p = handle.progress();
        if p.phase == Phase::Incremental && p.applied_offset >= want {
            break;
        }
        assert!(!handle.is_finished() && Instant::now() < deadline, "{p:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut w = source.connect();
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // Each key is written about every 4 s: less often than the rounds last, so a
                // key the sync has not carried yet matches on some re-check.
                let k = format!("live:{}", i % 2000);
                match i % 4 {
                    0 => w.ok(["SET", &k, &i.to_string()]),
                    1 => {
                        w.must(["HSET", &format!("{k}:h"), "f", &i.to_string()]);
                    }
                    2 => {
                        w.must(["RPUSH", &format!("{k}:l"), &i.to_string()]);
                    }
                    _ => {
                        w.must(["DEL", &format!("live:{}", (i + 1000) % 2000)]);
                    }
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            i
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    let o = VerifyOptions::default()
        .rounds(3)
        .delay(Duration::from_millis(500));
    let r = rt
        .block_on(Verifier::new(cfg(&source), cfg(&target)).options(o).run())
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert!(writes > 50, "{writes}");
    assert_equal(&r, "live sync with a writer");
    assert!(r.keys_compared >= 600, "{}", r.summary());
    handle.stop();
    let (_, result) = rt.block_on(handle.finish());
    result.unwrap();
}

/// Filters and a db map apply as in `sync`; without the map, the moved db shows as
/// missing on one side and extra on the other. Sampling and the rate cap.
#[test]
fn filters_db_map_sampling_and_rate_cap() {
    let source = source_server(Flavor::Redis7_0);
    Dataset::small().fill(&source);
    let target = Server::start(Flavor::Valkey9_1);
    let filter = || {
        Filter::new()
            .exclude_db(2)
            .map_db(1, 4)
            .exclude_keys("set:*")
    };
    copy(&source, &target, filter());
    let r = verify(&source, &target, quick().filter(filter()));
    assert_equal(&r, "same filter");
    let per_db = 200 - 20; // set:* are 2 in 20
    assert_eq!(r.keys_compared, 2 * per_db, "{}", r.summary());

    // Without the db map: db 1 is missing, db 4 extra; db 2 missing too.
    let r = verify(
        &source,
        &target,
        quick()
            .rounds(0)
            .filter(Filter::new().exclude_keys("set:*")),
    );
    assert_eq!(r.missing, 2 * per_db, "{}", r.summary());
    assert_eq!(r.extra, per_db, "{}", r.summary());
    assert_eq!(r.differences_total(), 3 * per_db, "{}", r.summary());
    let d = r
        .differences
        .iter()
        .find(|d| d.kind == DiffKind::Extra)
        .unwrap();
    assert_eq!((d.db, d.target_db), (Some(4), Some(4)));

    // Only some keys: a deterministic half, rate-capped.
    let o = || quick().filter(filter()).sample(0.5).max_ops(4000);
    let a = verify(&source, &target, o());
    let b = verify(&source, &target, o());
    assert_equal(&a, "sampled");
    assert_eq!(a.keys_compared, b.keys_compared);
    assert!(
        a.keys_compared > per_db / 2 && a.keys_compared < 3 * per_db / 2,
        "{}",
        a.summary()
    );
    assert!(a.sample < 1.0 && a.summary().contains("sample 0.5"));

    let bad = runtime().block_on(
        Verifier::new(cfg(&source), cfg(&target))
            .options(VerifyOptions::default().sample(0.0))
            .run(),
    );
    assert!(bad.is_err());
}

/// Module values (JSON, Bloom, cuckoo, count-min, Top-K, t-digest, time series) of
/// Redis 7.4 copied into Redis 7.4 compare equal; a changed JSON document and Top-K are
/// reported.
#[test]
fn module_values_redis_7_4() {
    let source = Server::builder(Flavor::Redis7_4)
        .config("repl-diskless-sync-delay", "0")
        .start();
    let stats = Dataset::small().with_modules().fill(&source);
    assert!(stats.module_keys > 0);
    let target = Server::start(Flavor::Redis7_4);
    copy(&source, &target, Filter::new());
    assert_equal(&verify(&source, &target, quick()), "modules");
    let mut t = target.connect();
    let keys: Vec<Vec<u8>> = match t.must(["KEYS", "mod:0:*"]) {
        testkit::Reply::Array(k) => k
            .into_iter()
            .filter_map(|r| r.as_bytes().map(<[u8]>::to_vec))
            .collect(),
        other => panic!("{other:?}"),
    };
    let mut planted = Vec::new();
    for k in &keys {
        match t.must([b"TYPE".as_slice(), k]).text().as_str() {
            "ReJSON-RL" => t.ok([b"JSON.SET".as_slice(), k, b"$", b"{\"planted\":1}"]),
            "TopK-TYPE" => {
                t.must([
                    b"TOPK.ADD".as_slice(),
                    k,
                    b"planted",
                    b"planted",
                    b"planted",
                ]);
            }
            "MBbloom--" => {
                t.must([b"BF.ADD".as_slice(), k, b"planted-item"]);
            }
            _ => continue,
        }
        planted.push(String::from_utf8(k.clone()).unwrap());
    }
    assert!(planted.len() >= 3, "{planted:?}");
    let r = verify(&source, &target, quick().rounds(0));
    for k in &planted {
        assert_eq!(find(&r, k).kind, DiffKind::Value, "{k}");
    }
    assert_eq!(
        r.differences_total(),
        planted.len() as u64,
        "{:?}",
        r.differences
    );
}
