//! `Source::RdbFile` into real servers: every flavour, filters, conflict policies, bad
//! targets.

use std::path::PathBuf;

use migrate_core::migrate::{
    Conflict, ErrorPolicy, Migration, MigrationError, Report, Source, StopReason, TargetConfig,
    WriteMode,
};
use migrate_core::Filter;
use testkit::{Dataset, Flavor, Server, Snapshot};

/// Snapshots read expiries as `now + PTTL` at the moment each key is read, so two snapshots
/// of the same absolute expiry differ by the time between the reads (the migration itself
/// writes absolute TTLs).
const TTL_TOLERANCE_MS: i64 = 1000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A source server filled with the small dataset, saved: (server, rdb path).
fn saved_source(flavor: Flavor) -> (Server, PathBuf) {
    let source = Server::start(flavor);
    Dataset::small().fill(&source);
    source.save();
    let path = source.rdb_path();
    (source, path)
}

fn import(
    path: PathBuf,
    target: &Server,
    tune: impl FnOnce(
        migrate_core::migrate::MigrationBuilder,
    ) -> migrate_core::migrate::MigrationBuilder,
) -> (Report, Result<(), MigrationError>) {
    runtime().block_on(async {
        let b = Migration::builder()
            .source(Source::RdbFile(path))
            .target(TargetConfig::parse(&target.url()).unwrap());
        tune(b).start().finish().await
    })
}

#[test]
fn import_small_dataset_into_each_flavour() {
    for flavor in Flavor::ALL {
        let (source, path) = saved_source(flavor);
        let target = Server::start(flavor);
        let (report, result) = import(path, &target, |b| b);
        result.unwrap_or_else(|e| panic!("{flavor}: {e}"));
        assert_eq!(report.stop_reason, StopReason::Completed);
        assert_eq!(report.failures_total, 0, "{flavor}: {:?}", report.failures);
        let expected = Snapshot::take(&source, 3);
        expected.assert_same(&Snapshot::take(&target, 3), TTL_TOLERANCE_MS);
        assert_eq!(report.keys_written(), expected.len() as u64, "{flavor}");
        // Same version: everything restorable goes by RESTORE (big keys aside).
        assert!(
            report.keys_restored > report.keys_rewritten,
            "{flavor}: {report:?}"
        );
        assert_eq!(report.keys_by_db.len(), 3);
        let json = report.to_json();
        assert!(json.contains("\"result\": \"completed\""), "{json}");
    }
}

#[test]
fn downgrade_and_upgrade_pairs_pick_rewrite_where_restore_is_impossible() {
    for (from, to) in [
        (Flavor::Valkey9_1, Flavor::Redis6_2),
        (Flavor::Redis7_0, Flavor::Redis6_2),
        (Flavor::Redis6_2, Flavor::Valkey9_1),
        (Flavor::Redis7_4, Flavor::Redis6_2),
        (Flavor::Redis7_4, Flavor::Valkey9_1),
        (Flavor::Valkey9_1, Flavor::Redis7_4),
    ] {
        let (source, path) = saved_source(from);
        let target = Server::start(to);
        let (report, result) = import(path, &target, |b| b);
        result.unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
        Snapshot::take(&source, 3).assert_same(&Snapshot::take(&target, 3), TTL_TOLERANCE_MS);
        if to == Flavor::Redis6_2 && from != Flavor::Redis6_2 {
            // Listpack encodings (RDB 10+) are unknown to 6.2: rewritten.
            assert!(report.keys_rewritten > 0, "{from} -> {to}: {report:?}");
        }
    }
}

#[test]
fn write_modes_forced() {
    let (source, path) = saved_source(Flavor::Valkey8_1);
    let expected = Snapshot::take(&source, 3);
    for mode in [WriteMode::Restore, WriteMode::Rewrite] {
        let target = Server::start(Flavor::Valkey8_1);
        let (report, result) = import(path.clone(), &target, |b| b.write_mode(mode));
        result.unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        expected.assert_same(&Snapshot::take(&target, 3), TTL_TOLERANCE_MS);
        match mode {
            WriteMode::Restore => assert_eq!(report.keys_rewritten, 0),
            _ => assert_eq!(report.keys_restored, 0),
        }
    }
    // Restore into an older server that does not know listpack types: reported per key.
    let old = Server::start(Flavor::Redis6_2);
    let (report, result) = import(path.clone(), &old, |b| {
        b.write_mode(WriteMode::Restore)
            .on_error(ErrorPolicy::SkipAndCount)
    });
    result.unwrap();
    assert!(report.unsupported_total > 0);
    let (_, result) = import(path, &Server::start(Flavor::Redis6_2), |b| {
        b.write_mode(WriteMode::Restore)
    });
    let err = result.unwrap_err().to_string();
    assert!(err.contains("cannot RESTORE RDB type"), "{err}");
}

#[test]
fn big_keys_are_chunked_below_the_threshold() {
    let (source, path) = saved_source(Flavor::Redis7_0);
    let target = Server::start(Flavor::Redis7_0);
    let (report, result) = import(path, &target, |b| b.big_key_bytes(1024));
    result.unwrap();
    Snapshot::take(&source, 3).assert_same(&Snapshot::take(&target, 3), TTL_TOLERANCE_MS);
    assert!(
        report.keys_rewritten > 0 && report.keys_restored > 0,
        "{report:?}"
    );
}

#[test]
fn filters_and_db_mapping() {
    let (source, path) = saved_source(Flavor::Redis7_0);
    let target = Server::start(Flavor::Redis7_0);
    let filter = Filter::new()
        .exclude_db(1)
        .map_db(2, 5)
        .include_keys("str*")
        .include_keys("hash*");
    let (report, result) = import(path, &target, |b| b.filter(filter.clone()));
    result.unwrap();
    let src = Snapshot::take(&source, 3);
    let dst = Snapshot::take(&target, 16);
    let mut expected = 0;
    for (db, key) in src.keys.keys() {
        let Some(to) = filter.target_db(*db) else {
            continue;
        };
        if !filter.accepts_key(key) {
            continue;
        }
        expected += 1;
        let (a, b) = (
            &src.keys[&(*db, key.clone())],
            &dst.keys[&(to, key.clone())],
        );
        assert_eq!(a.value, b.value);
        assert!(a
            .expire_at_ms
            .zip(b.expire_at_ms)
            .is_none_or(|(x, y)| (x - y).abs() <= TTL_TOLERANCE_MS));
    }
    assert_eq!(dst.len(), expected);
    assert!(report.skipped_filtered > 0);
    assert_eq!(report.keys_written(), expected as u64);
    assert!(!report.keys_by_db.contains_key(&2) && report.keys_by_db.contains_key(&5));
}

#[test]
fn conflict_policies() {
    let (source, path) = saved_source(Flavor::Valkey9_1);
    let target = Server::start(Flavor::Redis7_0);
    let mut conn = target.connect();
    // One key that RESTOREs (a small string) and one that is rewritten for 7.0
    // (a Valkey 9 set listpack is known to 7.0? no: type 20 needs RDB 11).
    let a_string = Snapshot::take(&source, 1)
        .keys
        .keys()
        .find(|(_, k)| k.starts_with(b"str"))
        .unwrap()
        .1
        .clone();
    conn.ok([&b"SET"[..], &a_string[..], b"target-value"]);

    // Refuse (default): nothing written.
    let (_, result) = import(path.clone(), &target, |b| b);
    let err = result.unwrap_err();
    assert!(
        matches!(err, MigrationError::TargetNotEmpty { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("db 0: 1 keys"), "{err}");
    assert_eq!(conn.int(["DBSIZE"]), 1);

    // Skip: the target's key is kept, the others written.
    let (report, result) = import(path.clone(), &target, |b| b.on_conflict(Conflict::Skip));
    result.unwrap();
    assert_eq!(report.skipped_conflict, 1, "{report:?}");
    assert_eq!(
        conn.bulk([&b"GET"[..], &a_string[..]]).as_deref(),
        Some(&b"target-value"[..])
    );
    // Skip again: every key exists now (both the RESTORE and the EXISTS paths).
    let (report, result) = import(path.clone(), &target, |b| b.on_conflict(Conflict::Skip));
    result.unwrap();
    assert_eq!(report.keys_written(), 0, "{report:?}");
    assert!(report.keys_rewritten == 0 && report.skipped_conflict > 100);

    // Replace: the source's value wins everywhere.
    let (_, result) = import(path, &target, |b| b.on_conflict(Conflict::Replace));
    result.unwrap();
    Snapshot::take(&source, 3).assert_same(&Snapshot::take(&target, 3), TTL_TOLERANCE_MS);
}

#[test]
fn bad_targets_give_one_line_errors() {
    let (_source, path) = saved_source(Flavor::Redis6_2);
    // Refused connection.
    let port = testkit::free_port();
    let (report, result) = runtime().block_on(async {
        Migration::builder()
            .source(Source::RdbFile(path.clone()))
            .target(TargetConfig::parse(&format!("redis://127.0.0.1:{port}")).unwrap())
            .start()
            .finish()
            .await
    });
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("cannot connect") && err.contains("host and port"),
        "{err}"
    );
    assert_eq!(report.stop_reason, StopReason::Failed);
    assert!(!err.contains('\n'));

    // Wrong password: never printed.
    let locked = Server::builder(Flavor::Redis7_0).password("right").start();
    let url = format!("redis://:wrong-pass@127.0.0.1:{}", locked.port());
    let (report, result) = runtime().block_on(async {
        Migration::builder()
            .source(Source::RdbFile(path.clone()))
            .target(TargetConfig::parse(&url).unwrap())
            .start()
            .finish()
            .await
    });
    let err = result.unwrap_err().to_string();
    assert!(err.contains("authentication"), "{err}");
    assert!(!err.contains("wrong-pass") && !report.to_json().contains("wrong-pass"));

    // Missing file.
    let target = Server::start(Flavor::Redis6_2);
    let (_, result) = import(PathBuf::from("/nonexistent/dump.rdb"), &target, |b| b);
    let err = result.unwrap_err().to_string();
    assert!(err.starts_with("/nonexistent/dump.rdb: "), "{err}");

    // Truncated file: the decoder's error, with the offset.
    let bytes = std::fs::read(&path).unwrap();
    let cut = path.with_file_name("cut.rdb");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let (_, result) = import(cut, &Server::start(Flavor::Redis6_2), |b| b);
    let err = result.unwrap_err().to_string();
    assert!(err.contains("cut.rdb"), "{err}");
}

#[test]
fn target_out_of_memory_stops_with_a_clear_error() {
    let (_source, path) = saved_source(Flavor::Redis7_0);
    let target = Server::builder(Flavor::Redis7_0)
        .config("maxmemory", "2mb")
        .config("maxmemory-policy", "noeviction")
        .start();
    let (report, result) = import(path, &target, |b| b.on_error(ErrorPolicy::SkipAndCount));
    let err = result.unwrap_err().to_string();
    assert!(err.contains("OOM"), "{err}");
    assert!(report.failures_total > 0);
}

/// Probing instead of the version tables (what the migration does for servers the tables
/// do not know): the first key of each type byte is tried on the target; what it learns
/// equals the tables on a real server, and the copy is exact either way.
#[test]
fn restore_probe_learns_what_the_tables_say() {
    use migrate_core::{ServerFamily, ServerVersion};
    for (from, to) in [
        (Flavor::Valkey9_1, Flavor::Redis6_2),
        (Flavor::Redis7_0, Flavor::Redis7_0),
    ] {
        let (source, path) = saved_source(from);
        let target = Server::start(to);
        let (report, result) = import(path, &target, |b| b.probe_restore(true));
        result.unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
        assert_eq!(report.failures_total, 0, "{:?}", report.failures);
        Snapshot::take(&source, 3).assert_same(&Snapshot::take(&target, 3), TTL_TOLERANCE_MS);
        assert!(
            report.restore_probe.len() >= 5,
            "{:?}",
            report.restore_probe
        );
        let (major, minor) = match to {
            Flavor::Redis6_2 => (6, 2),
            _ => (7, 0),
        };
        let tables = ServerVersion::new(ServerFamily::Redis, major, minor, 0);
        for (&type_byte, &accepted) in &report.restore_probe {
            let same_table = type_byte < 22 || from.is_valkey() == to.is_valkey();
            assert_eq!(
                accepted,
                same_table && tables.knows_type(type_byte),
                "{from} -> {to}: type {type_byte}"
            );
        }
        assert!(
            report.to_json().contains("\"restore_probe\": {"),
            "{}",
            report.to_json()
        );
    }
}

#[test]
fn big_keys_under_conflict_skip_ask_exists_mid_key() {
    // Big keys switch to commands mid-key; under Skip each then waits for EXISTS (the
    // decoder stops inside the key and resumes): written when absent, kept when present.
    let (source, path) = saved_source(Flavor::Redis7_0);
    let target = Server::start(Flavor::Redis7_0);
    let tune = |b: migrate_core::migrate::MigrationBuilder| {
        b.big_key_bytes(1024).on_conflict(Conflict::Skip)
    };
    let (report, result) = import(path.clone(), &target, tune);
    result.unwrap();
    let expected = Snapshot::take(&source, 3);
    expected.assert_same(&Snapshot::take(&target, 3), TTL_TOLERANCE_MS);
    assert!(report.keys_rewritten > 0, "{report:?}");
    assert_eq!(report.keys_written(), expected.len() as u64);
    let (report, result) = import(path, &target, tune);
    result.unwrap();
    assert_eq!(report.keys_written(), 0, "{report:?}");
    assert_eq!(report.skipped_conflict, expected.len() as u64, "{report:?}");
    expected.assert_same(&Snapshot::take(&target, 3), TTL_TOLERANCE_MS);
}
