//! What lives beside the keys: function libraries already on the target (under each
//! conflict policy), modules the target lacks (refused before anything is written, or
//! counted key by key), module auxiliary data (reported), and RediSearch indexes
//! (recreated from a live source with `FT.CREATE`).

mod common;

use common::*;
use migrate_core::migrate::{
    Conflict, ErrorPolicy, Migration, MigrationError, Source, TargetConfig,
};
use testkit::{Conn, Flavor, Reply, Server};

fn library(name: &str, answer: i64) -> String {
    format!(
        "#!lua name={name}\nredis.register_function('{name}_f', function() return {answer} end)"
    )
}

/// Keys in the selected db, the migration's checkpoint left out.
fn dbsize(c: &mut Conn) -> i64 {
    let checkpoint = c.int(["EXISTS", migrate_core::migrate::CHECKPOINT_KEY]);
    c.int(["DBSIZE"]) - checkpoint
}

fn strings(r: Reply) -> Vec<String> {
    match r {
        Reply::Array(items) => items.into_iter().map(|i| i.text()).collect(),
        other => panic!("not an array: {other:?}"),
    }
}

#[test]
fn function_libraries_on_the_target_follow_the_conflict_policy() {
    let source = source_server(Flavor::Redis7_0);
    let mut s = source.connect();
    s.must(["FUNCTION", "LOAD", &library("shared", 1)]);
    s.must(["FUNCTION", "LOAD", &library("only_source", 3)]);
    s.ok(["SET", "k", "v"]);

    // Refuse (the default): named before anything is written.
    let target = Server::start(Flavor::Redis7_0);
    let mut t = target.connect();
    t.must(["FUNCTION", "LOAD", &library("shared", 2)]);
    let (_, result) = run_once(live(&source, &target));
    let err = result.unwrap_err();
    assert!(
        matches!(&err, MigrationError::TargetHasDefinitions { names, .. } if names == &["shared"]),
        "{err}"
    );
    assert!(
        err.to_string().contains("function libraries shared"),
        "{err}"
    );
    assert_eq!(dbsize(&mut t), 0, "nothing written");

    // Skip: the target's library is kept and reported; the others load. (No checkpoint:
    // the next run must be a new migration, not a resumed one.)
    let (report, result) = run_once(
        live(&source, &target)
            .on_conflict(Conflict::Skip)
            .checkpoint(false),
    );
    result.unwrap();
    assert_eq!(report.functions_skipped, ["shared"]);
    assert_eq!(t.int(["FCALL", "shared_f", "0"]), 2);
    assert_eq!(t.int(["FCALL", "only_source_f", "0"]), 3);
    assert!(report
        .to_json()
        .contains("\"functions_skipped\": [\"shared\"]"));

    // Replace: the source's library replaces it.
    let (report, result) = run_once(
        live(&source, &target)
            .on_conflict(Conflict::Replace)
            .checkpoint(false),
    );
    result.unwrap();
    assert!(report.functions_skipped.is_empty());
    assert_eq!(t.int(["FCALL", "shared_f", "0"]), 1);
    assert_eq!(t.bulk(["GET", "k"]).as_deref(), Some(&b"v"[..]));
}

/// Redis Stack into Valkey 9.1: refused at start, naming the modules; with
/// `SkipAndCount` every module key is unsupported with the module's name, and the module
/// auxiliary data (RediSearch's index definitions) is reported.
#[test]
fn missing_modules_are_named_before_writing() {
    let source = source_server(Flavor::Redis7_4);
    let mut s = source.connect();
    s.ok(["JSON.SET", "j", "$", "{\"a\":1}"]);
    s.int(["BF.ADD", "bf", "x"]);
    s.ok([
        "FT.CREATE",
        "idx",
        "ON",
        "HASH",
        "PREFIX",
        "1",
        "doc:",
        "SCHEMA",
        "t",
        "TEXT",
    ]);
    s.int(["HSET", "doc:1", "t", "hello"]);
    let target = Server::start(Flavor::Valkey9_1);
    let mut t = target.connect();

    let (_, result) = run_once(live(&source, &target));
    let err = result.unwrap_err();
    let MigrationError::ModulesMissing { modules, .. } = &err else {
        panic!("{err}");
    };
    let mut modules = modules.clone();
    modules.sort();
    assert_eq!(modules, ["ReJSON", "bf", "search", "timeseries"], "{err}");
    assert_eq!(dbsize(&mut t), 0, "nothing written");

    let (report, result) = run_once(live(&source, &target).on_error(ErrorPolicy::SkipAndCount));
    result.unwrap();
    assert_eq!(report.unsupported_total, 2, "{:?}", report.unsupported);
    assert_eq!(report.failures_total, 0, "{:?}", report.failures);
    let mut reasons: Vec<&str> = report
        .unsupported
        .iter()
        .map(|u| u.reason.as_str())
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "module ReJSON is not loaded on the target (module type ReJSON-RL)",
            "module bf is not loaded on the target (module type MBbloom--)",
        ]
    );
    assert_eq!(report.modules_missing.len(), 4);
    assert_eq!(
        report.module_aux_dropped.get("search (ft_index0)"),
        Some(&1)
    );
    assert_eq!(dbsize(&mut t), 1, "the hash arrives");
}

/// RediSearch indexes of a live source are recreated on the target before the keys
/// arrive, so the keys are indexed; synonyms come along.
#[test]
fn search_indexes_are_recreated_from_a_live_source() {
    let source = source_server(Flavor::Redis7_4);
    let mut s = source.connect();
    s.ok([
        "FT.CREATE",
        "books",
        "ON",
        "HASH",
        "PREFIX",
        "1",
        "book:",
        "STOPWORDS",
        "1",
        "the",
        "SCHEMA",
        "title",
        "TEXT",
        "WEIGHT",
        "2",
        "NOSTEM",
        "year",
        "NUMERIC",
        "SORTABLE",
        "tags",
        "TAG",
        "SEPARATOR",
        ";",
    ]);
    s.ok([
        "FT.CREATE",
        "docs",
        "ON",
        "JSON",
        "PREFIX",
        "1",
        "doc:",
        "SCHEMA",
        "$.body",
        "AS",
        "body",
        "TEXT",
        "$.n",
        "AS",
        "n",
        "NUMERIC",
    ]);
    s.ok(["FT.SYNUPDATE", "books", "g1", "tale", "story"]);
    for i in 0..20 {
        s.int([
            "HSET",
            &format!("book:{i}"),
            "title",
            &format!("story number {i}"),
            "year",
            &(1990 + i).to_string(),
            "tags",
            "a;b",
        ]);
        s.ok([
            "JSON.SET",
            &format!("doc:{i}"),
            "$",
            &format!("{{\"body\":\"text {i}\",\"n\":{i}}}"),
        ]);
    }
    let target = Server::start(Flavor::Redis7_4);
    let mut t = target.connect();
    let (report, result) = run_once(live(&source, &target));
    result.unwrap();
    let mut created = report.search_indexes_created.clone();
    created.sort();
    assert_eq!(created, ["books", "docs"]);
    assert!(
        report.search_index_problems.is_empty(),
        "{:?}",
        report.search_index_problems
    );
    let mut list = strings(t.must(["FT._LIST"]));
    list.sort();
    assert_eq!(list, ["books", "docs"]);
    for (index, query) in [
        ("books", "@year:[2000 2010]"),
        ("docs", "text"),
        ("books", "tale"),
    ] {
        let count = |c: &mut Conn| match c.must(["FT.SEARCH", index, query, "LIMIT", "0", "0"]) {
            Reply::Array(items) => items[0].clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(count(&mut t), count(&mut s), "{index} {query}");
    }
    assert_eq!(
        format!("{:?}", t.must(["FT.SYNDUMP", "books"])),
        format!("{:?}", s.must(["FT.SYNDUMP", "books"]))
    );
}

/// Module commands in the replication stream into a target without the module are
/// unsupported (named, with their key), never failed writes; the rest keeps flowing.
#[test]
fn replicated_module_commands_into_a_target_without_the_module() {
    use migrate_core::migrate::{MigrationHandle, Phase};
    use std::time::{Duration, Instant};
    let source = source_server(Flavor::Redis7_4);
    let target = Server::start(Flavor::Valkey9_1);
    let rt = runtime();
    let handle: MigrationHandle = {
        let _guard = rt.enter();
        live(&source, &target)
            .on_error(ErrorPolicy::SkipAndCount)
            .start()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while handle.progress().phase != Phase::Incremental {
        assert!(
            Instant::now() < deadline && !handle.is_finished(),
            "{:?}",
            handle.progress()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut s = source.connect();
    s.ok(["JSON.SET", "j2", "$", "{\"a\":1}"]);
    s.int(["BF.ADD", "bf2", "x"]);
    s.ok(["SET", "after", "1"]);
    let mut t = target.connect();
    while t.bulk(["GET", "after"]).is_none() {
        assert!(
            Instant::now() < deadline,
            "the SET after the module commands never arrived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    handle.stop();
    let report = rt.block_on(handle.wait()).unwrap();
    assert_eq!(report.failures_total, 0, "{:?}", report.failures);
    let got: Vec<(String, Option<&[u8]>, &str)> = report
        .unsupported
        .iter()
        .map(|u| (u.command.clone(), u.key.as_deref(), u.reason.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "JSON.SET".to_string(),
                Some(&b"j2"[..]),
                "module ReJSON is not loaded on the target"
            ),
            (
                "BF.ADD".to_string(),
                Some(&b"bf2"[..]),
                "module bf is not loaded on the target"
            ),
        ]
    );
}

/// An RDB file's module values are found before anything is written (a visitor pass
/// over the file): refused under `Stop`, counted key by key with `SkipAndCount`, with
/// RediSearch's index definitions reported as module aux data not carried over.
#[test]
fn file_import_names_missing_modules_before_writing() {
    let source = Server::start(Flavor::Redis7_4);
    let mut s = source.connect();
    s.ok(["JSON.SET", "j", "$", "{\"a\":1}"]);
    s.ok(["TS.CREATE", "ts"]);
    s.ok(["FT.CREATE", "idx", "ON", "HASH", "SCHEMA", "t", "TEXT"]);
    s.ok(["SET", "plain", "1"]);
    source.save();
    let target = Server::start(Flavor::Valkey9_1);
    let mut t = target.connect();
    let import = |policy| {
        let b = Migration::builder()
            .source(Source::RdbFile(source.rdb_path()))
            .target(TargetConfig::parse(&target.url()).unwrap())
            .on_error(policy);
        runtime().block_on(async { b.start().finish().await })
    };
    let (_, result) = import(ErrorPolicy::Stop);
    let err = result.unwrap_err();
    let MigrationError::ModulesMissing { modules, .. } = &err else {
        panic!("{err}");
    };
    let mut modules = modules.clone();
    modules.sort();
    assert_eq!(modules, ["ReJSON", "timeseries"], "{err}");
    assert_eq!(dbsize(&mut t), 0, "nothing written");

    let (report, result) = import(ErrorPolicy::SkipAndCount);
    result.unwrap();
    assert_eq!(report.unsupported_total, 2, "{:?}", report.unsupported);
    assert_eq!(report.failures_total, 0);
    // Not read ahead under SkipAndCount: noted during the import's one pass.
    let mut missing = report.modules_missing.clone();
    missing.sort();
    assert_eq!(missing, ["ReJSON", "timeseries"]);
    assert_eq!(
        report.module_aux_dropped.get("search (ft_index0)"),
        Some(&1)
    );
    assert!(report.to_json().contains("\"search (ft_index0)\": 1"));
    assert_eq!(dbsize(&mut t), 1);
}
