//! `redis-migrate import` and `redis-migrate sync` as a user runs them: the real binary
//! against real servers, the `--report` JSON checked, SIGTERM as a graceful stop, one-line
//! errors.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use testkit::{Dataset, Flavor, Server, Snapshot};

const BIN: &str = env!("CARGO_BIN_EXE_redis-migrate");
/// Snapshots read expiries as `now + PTTL` when each key is read.
const TTL_TOLERANCE_MS: i64 = 1000;

fn cli(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("running redis-migrate")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn source_server(flavor: Flavor) -> Server {
    Server::builder(flavor)
        .config("repl-diskless-sync-delay", "0")
        .start()
}

fn read_report(path: &std::path::Path) -> Json {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn import_with_report() {
    let source = Server::start(Flavor::Redis7_0);
    Dataset::small().fill(&source);
    source.save();
    let target = Server::start(Flavor::Redis6_2);
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let file = source.rdb_path();
    let out = cli(&[
        "import",
        file.to_str().unwrap(),
        "--to",
        &target.url(),
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("redis-migrate: done: 600 keys written"),
        "{}",
        stderr(&out)
    );
    Snapshot::take(&source, 3).assert_same(&Snapshot::take(&target, 3), TTL_TOLERANCE_MS);
    let j = read_report(&report);
    assert_eq!(j["result"], "completed");
    assert_eq!(j["keys_written"], 600);
    assert_eq!(j["keys_by_db"]["0"], 200);
    assert_eq!(j["failures_total"], 0);
    assert!(j["keys_rewritten"].as_u64().unwrap() > 0, "{j}");
    assert!(j["target_version"].as_str().unwrap().contains("6.2"));

    // Again: the target is not empty now.
    let out = cli(&["import", file.to_str().unwrap(), "--to", &target.url()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("is not empty") && err.contains("--on-conflict"),
        "{err}"
    );
    assert_eq!(
        err.lines()
            .filter(|l| l.starts_with("redis-migrate: "))
            .count(),
        2,
        "{err}"
    );

    // Skip: everything exists, nothing written, report says so.
    let out = cli(&[
        "import",
        file.to_str().unwrap(),
        "--to",
        &target.url(),
        "--on-conflict",
        "skip",
        "--db",
        "1",
        "--report",
        "-",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let j: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["skipped"]["conflict"], 200, "{j}");
    assert_eq!(j["skipped"]["filtered"], 400, "{j}");
}

#[test]
fn sync_once_with_report_and_filters() {
    let source = source_server(Flavor::Valkey9_1);
    Dataset::small().fill(&source);
    let target = Server::start(Flavor::Valkey9_1);
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let out = cli(&[
        "sync",
        "--from",
        &source.url(),
        "--to",
        &target.url(),
        "--once",
        "--exclude-db",
        "2",
        "--map-db",
        "1=4",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let j = read_report(&report);
    assert_eq!(j["result"], "caught-up", "{j}");
    assert_eq!(j["keys_written"], 400);
    assert_eq!(j["keys_by_db"]["4"], 200);
    assert!(
        j["replid"].is_string() && j["applied_offset"].is_u64(),
        "{j}"
    );
    let mut t = target.connect();
    t.ok(["SELECT", "4"]);
    assert_eq!(t.int(["DBSIZE"]), 200);
    t.ok(["SELECT", "2"]);
    assert_eq!(t.int(["DBSIZE"]), 0);
}

#[test]
fn sync_stops_gracefully_on_sigterm() {
    let source = source_server(Flavor::Redis7_0);
    Dataset::small().fill(&source);
    let target = Server::start(Flavor::Redis7_0);
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let child = Command::new(BIN)
        .args([
            "sync",
            "--from",
            &source.url(),
            "--to",
            &target.url(),
            "--report",
            report.to_str().unwrap(),
            "--progress-interval",
            "0.1",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the full sync landed, then write more and stop.
    let mut t = target.connect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while t.int(["DBSIZE"]) < 200 {
        assert!(Instant::now() < deadline, "full sync did not land");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut s = source.connect();
    s.ok(["SET", "late", "1"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while t.bulk(["GET", "late"]).is_none() {
        assert!(
            Instant::now() < deadline,
            "incremental write did not arrive"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Leave time for a few progress lines of the incremental phase.
    std::thread::sleep(Duration::from_millis(300));
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // Plain progress lines every 0.1 s on a pipe, with the applied offset once incremental.
    assert!(
        stderr(&out).contains("incremental: ") && stderr(&out).contains("applied offset "),
        "{}",
        stderr(&out)
    );
    let j = read_report(&report);
    assert_eq!(j["result"], "stopped", "{j}");
    assert!(j["commands_applied"].as_u64().unwrap() >= 1, "{j}");
    Snapshot::take(&source, 3).assert_same(&Snapshot::take(&target, 3), TTL_TOLERANCE_MS);
}

#[test]
fn one_line_errors_without_credentials() {
    let target = Server::start(Flavor::Redis7_0);
    let port = testkit::free_port();
    // Unreachable source.
    let out = cli(&[
        "sync",
        "--from",
        &format!("redis://:hunter2@127.0.0.1:{port}"),
        "--to",
        &target.url(),
        "--once",
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("redis-migrate: source redis://:***@127.0.0.1:"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // Wrong target password.
    let locked = Server::builder(Flavor::Redis6_2).password("right").start();
    let source = Server::start(Flavor::Redis6_2);
    let out = cli(&[
        "sync",
        "--from",
        &source.url(),
        "--to",
        &format!("redis://:hunter2@127.0.0.1:{}", locked.port()),
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("authentication") && !err.contains("hunter2"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    // Bad URL: usage error.
    let out = cli(&["import", "x.rdb", "--to", "http://nope"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// The field-test report: a Valkey 9.1 source with hash field TTLs used to loop through
/// failing full syncs forever. Now `sync --once` completes into Redis 7.0, and the field
/// TTLs it cannot hold are named on the terminal and in the report.
#[test]
fn sync_once_from_valkey_9_with_field_ttls() {
    let source = source_server(Flavor::Valkey9_1);
    let mut c = source.connect();
    c.int(["HSET", "h", "a", "1", "b", "2"]);
    c.must(["HPEXPIRE", "h", "86400000", "FIELDS", "1", "a"]);
    let target = Server::start(Flavor::Redis7_0);
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let out = cli(&[
        "sync",
        "--once",
        "--from",
        &source.url(),
        "--to",
        &target.url(),
        "--report",
        report.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("1 keys lost something"), "{err}");
    assert!(!err.contains("attempt"), "no retried full sync: {err}");
    let j = read_report(&report);
    assert_eq!(j["keys_written"], 1);
    assert_eq!(j["keys_lossy"], 1);
    assert_eq!(j["lossy"][0]["key"], "h");
    assert_eq!(j["disconnects"], 0);
    assert_eq!(target.connect().int(["HLEN", "h"]), 2);
}
