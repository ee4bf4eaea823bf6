//! Redis 7.4 with its modules (RedisJSON, RedisBloom, RedisTimeSeries, RediSearch) and
//! hash field TTLs: live sync and import between real servers, compared key by key
//! (module values by their own read commands or DUMP, field TTLs by `HPEXPIRETIME`).

mod common;

use common::*;
use std::time::Duration;

use migrate_core::migrate::{
    Migration, MigrationError, Phase, Report, Source, StopReason, TargetConfig,
};
use testkit::{Dataset, Flavor, Server, Snapshot};

const DBS: u32 = 3;

/// A source for a target of flavour `to`: without modules when `to` has none, since a
/// live migration refuses to start into a target that lacks the source's modules (see
/// tests/definitions.rs).
fn source_for(from: Flavor, to: Flavor) -> Server {
    let b = Server::builder(from).config("repl-diskless-sync-delay", "0");
    if to.has_modules() {
        b.start()
    } else {
        b.no_modules().start()
    }
}

fn import(source: &Server, target: &Server) -> (Report, Result<(), MigrationError>) {
    source.save();
    let b = Migration::builder()
        .source(Source::RdbFile(source.rdb_path()))
        .target(TargetConfig::parse(&target.url()).unwrap());
    runtime().block_on(async { b.start().finish().await })
}

/// Module values and field TTLs (both encodings), 3 dbs: `sync --once` and `import` from
/// Redis 7.4 into Redis 7.4 keep every key exactly.
#[test]
fn modules_and_field_ttls_sync_once_and_import() {
    let dataset = Dataset::small().with_field_ttls().with_modules();
    let source = source_server(Flavor::Redis7_4);
    let stats = dataset.fill(&source);
    assert!(
        stats.module_keys > 0 && stats.with_field_ttl > 0,
        "{stats:?}"
    );
    let expected = Snapshot::take(&source, DBS);
    assert_eq!(expected.len() as u64, stats.keys);

    let target = Server::start(Flavor::Redis7_4);
    let (report, result) = run_once(live(&source, &target));
    result.unwrap_or_else(|e| panic!("sync: {e}"));
    assert_eq!(report.stop_reason, StopReason::CaughtUp);
    clean(&report, "sync");
    expected.assert_same(&Snapshot::take(&target, DBS), TTL_TOLERANCE_MS);
    assert_eq!(report.keys_written(), stats.keys, "{report:?}");

    let target = Server::start(Flavor::Redis7_4);
    let (report, result) = import(&source, &target);
    result.unwrap_or_else(|e| panic!("import: {e}"));
    assert_eq!(report.stop_reason, StopReason::Completed);
    clean(&report, "import");
    expected.assert_same(&Snapshot::take(&target, DBS), TTL_TOLERANCE_MS);
}

/// Field TTLs cross between the two families that have them, in both directions, by
/// live sync and by import.
#[test]
fn field_ttls_between_redis_7_4_and_valkey_9_1() {
    let dataset = Dataset::small().with_field_ttls();
    for (from, to) in [
        (Flavor::Redis7_4, Flavor::Valkey9_1),
        (Flavor::Valkey9_1, Flavor::Redis7_4),
    ] {
        let source = source_for(from, to);
        dataset.fill(&source);
        let expected = Snapshot::take(&source, DBS);
        let target = Server::start(to);
        let (report, result) = run_once(live(&source, &target));
        result.unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
        clean(&report, &format!("sync {from} -> {to}"));
        expected.assert_same(&Snapshot::take(&target, DBS), TTL_TOLERANCE_MS);

        let target = Server::start(to);
        let (report, result) = import(&source, &target);
        result.unwrap_or_else(|e| panic!("import {from} -> {to}: {e}"));
        clean(&report, &format!("import {from} -> {to}"));
        expected.assert_same(&Snapshot::take(&target, DBS), TTL_TOLERANCE_MS);
    }
}

/// Module and field-TTL commands in the replication stream: Redis 7.4 into Redis 7.4
/// (with modules) and into Valkey 9.1 (field TTLs only).
#[test]
fn incremental_module_and_field_ttl_commands() {
    for (to, modules) in [(Flavor::Redis7_4, true), (Flavor::Valkey9_1, false)] {
        let source = source_for(Flavor::Redis7_4, to);
        let target = Server::start(to);
        let rt = runtime();
        let handle = {
            let _guard = rt.enter();
            live(&source, &target).start()
        };
        wait_for_phase(&handle, Phase::Incremental);
        let mut c = source.connect();
        for r in 0..40u32 {
            let s = r.to_string();
            c.must(["SELECT", &(r % DBS).to_string()]);
            c.must(["HSET", "h", &format!("f{}", r % 9), &s, "keep", "x"]);
            c.must([
                "HEXPIRE",
                "h",
                &(3600 + r).to_string(),
                "FIELDS",
                "1",
                &format!("f{}", r % 9),
            ]);
            if r % 5 == 0 {
                c.must(["HPERSIST", "h", "FIELDS", "1", &format!("f{}", (r + 3) % 9)]);
            }
            c.must(["HPEXPIREAT", "h", "4102444800000", "FIELDS", "1", "keep"]);
            if modules {
                c.must(["JSON.SET", "doc", "$", &format!(r#"{{"r":{r},"a":[]}}"#)]);
                c.must(["JSON.ARRAPPEND", "doc", "$.a", &s]);
                c.must(["JSON.NUMINCRBY", "doc", "$.r", "0.5"]);
                c.must(["BF.ADD", "bloom", &s]);
                c.must(["CF.ADD", "cuckoo", &s]);
                c.must([
                    "TS.ADD",
                    "ts",
                    &(1_600_000_000_000u64 + u64::from(r)).to_string(),
                    &s,
                ]);
                c.must(["TOPK.RESERVE", &format!("topk{r}"), "3"]);
                c.must(["TOPK.ADD", &format!("topk{r}"), "a", "b", "a"]);
            }
        }
        // A hash field that expires during the run (the source propagates HDEL).
        c.must(["SELECT", "0"]);
        c.must(["HSET", "short", "gone", "1", "stays", "2"]);
        c.must(["HPEXPIRE", "short", "50", "FIELDS", "1", "gone"]);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(c.int(["HLEN", "short"]), 1);
        wait_caught_up(&handle, &mut c);
        handle.stop();
        let report = rt.block_on(handle.wait()).unwrap();
        clean(&report, &format!("{} -> {to}", Flavor::Redis7_4));
        Snapshot::take(&source, DBS).assert_same(&Snapshot::take(&target, DBS), TTL_TOLERANCE_MS);
    }
}

/// Module values into targets that cannot hold them (Redis 7.4 without its modules,
/// Valkey 9.1): every other key arrives, the module keys are reported, not lost silently.
#[test]
fn module_values_into_a_target_without_the_modules() {
    use migrate_core::migrate::ErrorPolicy;
    let source = source_server(Flavor::Redis7_4);
    let stats = Dataset::small().with_modules().fill(&source);
    let expected = Snapshot::take(&source, DBS);
    for target in [
        Server::builder(Flavor::Redis7_4).no_modules().start(),
        Server::start(Flavor::Valkey9_1),
    ] {
        let flavor = target.flavor();
        let (report, result) = run_once(live(&source, &target).on_error(ErrorPolicy::SkipAndCount));
        result.unwrap_or_else(|e| panic!("{flavor}: {e}"));
        let reported = report.unsupported_total + report.failures_total;
        assert_eq!(reported, stats.module_keys, "{flavor}: {report:?}");
        let actual = Snapshot::take(&target, DBS);
        let diff = expected.diff(&actual, TTL_TOLERANCE_MS);
        assert_eq!(diff.len() as u64, stats.module_keys, "{flavor}: {diff:?}");
        assert!(
            diff.iter()
                .all(|d| d.contains("\"mod:") && d.ends_with("missing")),
            "{diff:?}"
        );
    }
}

/// Field TTLs into targets without them (Redis 7.0 and 6.2): the hashes arrive without
/// the field TTLs, and each lossy key is named in the report.
#[test]
fn field_ttls_into_redis_7_0_and_6_2_are_reported() {
    for to in [Flavor::Redis7_0, Flavor::Redis6_2] {
        let source = source_for(Flavor::Redis7_4, to);
        let stats = Dataset::small().with_field_ttls().fill(&source);
        let target = Server::start(to);
        let (report, result) = run_once(live(&source, &target));
        result.unwrap_or_else(|e| panic!("{to}: {e}"));
        let mut expected = Snapshot::take(&source, DBS);
        for e in expected.keys.values_mut() {
            e.field_expire_at_ms.clear();
        }
        expected.assert_same(&Snapshot::take(&target, DBS), TTL_TOLERANCE_MS);
        assert_eq!(report.keys_lossy, stats.with_field_ttl, "{to}: {report:?}");
        assert_eq!(report.lossy.len() as u64, stats.with_field_ttl, "{to}");
    }
}
