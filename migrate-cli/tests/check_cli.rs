//! `redis-migrate check`, and the same precheck before `sync`: real servers set up the way
//! users' servers go wrong (a small maxmemory with eviction, a user without replication
//! rights, small output-buffer and backlog limits), each finding named with its fix.

use std::process::{Command, Output};

use serde_json::Value as Json;
use testkit::{Dataset, Flavor, Server};

const BIN: &str = env!("CARGO_BIN_EXE_redis-migrate");

fn cli(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("running redis-migrate")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The JSON findings of `check --json`, and the exit code.
fn check_json(from: &str, to: &str, extra: &[&str]) -> (Option<i32>, Json) {
    let mut args = vec!["check", "--from", from, "--to", to, "--json"];
    args.extend(extra);
    let out = cli(&args);
    let j: Json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            stderr(&out)
        )
    });
    (out.status.code(), j)
}

fn finding<'a>(j: &'a Json, name: &str) -> &'a Json {
    j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {j}"))
}

#[test]
fn a_ready_pair_passes() {
    let source = Server::start(Flavor::Redis7_0);
    Dataset::small().fill(&source);
    let target = Server::start(Flavor::Valkey9_1);
    let out = cli(&["check", "--from", &source.url(), "--to", &target.url()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("redis-migrate: check passed"), "{err}");
    assert!(!err.contains("FAIL"), "{err}");
    let (code, j) = check_json(&source.url(), &target.url(), &[]);
    assert_eq!(code, Some(0));
    assert_eq!(j["passed"], true);
    for name in [
        "target connection",
        "source connection",
        "source replication rights",
        "target write rights",
        "target memory",
        "target keyspace",
        "checkpoint",
    ] {
        assert_eq!(finding(&j, name)["status"], "pass", "{name}: {j}");
    }
}

#[test]
fn small_maxmemory_with_eviction_fails_naming_both() {
    let source = Server::start(Flavor::Redis7_0);
    let mut s = source.connect();
    let value = "x".repeat(10_000);
    for i in 0..400 {
        s.ok(["SET", &format!("big:{i}"), &value]);
    }
    let target = Server::builder(Flavor::Redis7_0)
        .config("maxmemory", "2mb")
        .config("maxmemory-policy", "allkeys-lru")
        .start();
    let (code, j) = check_json(&source.url(), &target.url(), &[]);
    assert_eq!(code, Some(1), "{j}");
    let mem = finding(&j, "target memory");
    assert_eq!(mem["status"], "fail", "{j}");
    assert!(
        mem["fix"]
            .as_str()
            .unwrap()
            .contains("CONFIG SET maxmemory"),
        "{j}"
    );
    let policy = finding(&j, "target eviction policy");
    assert_eq!(policy["status"], "warn", "{j}");
    assert!(
        policy["found"].as_str().unwrap().contains("allkeys-lru"),
        "{j}"
    );
    assert!(
        policy["fix"].as_str().unwrap().contains("noeviction"),
        "{j}"
    );
    // --strict makes the eviction policy a failure too.
    let (_, j) = check_json(&source.url(), &target.url(), &["--strict"]);
    assert_eq!(finding(&j, "target eviction policy")["status"], "fail");

    // sync runs the same checks first and writes nothing.
    let out = cli(&[
        "sync",
        "--once",
        "--from",
        &source.url(),
        "--to",
        &target.url(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("FAIL target memory"), "{err}");
    assert!(err.contains("--no-check"), "{err}");
    assert_eq!(target.connect().int(["DBSIZE"]), 0);
}

#[test]
fn a_source_user_without_replication_rights_is_reported() {
    let source = Server::builder(Flavor::Redis7_0)
        .config("user", "reader on >pw ~* &* +@all -psync -sync")
        .login("reader", "pw")
        .start();
    let target = Server::start(Flavor::Redis7_0);
    let (code, j) = check_json(&source.url(), &target.url(), &["--source-mode", "psync"]);
    assert_eq!(code, Some(1), "{j}");
    let rights = finding(&j, "source replication rights");
    assert_eq!(rights["status"], "fail", "{j}");
    assert!(
        rights["found"].as_str().unwrap().contains("may not PSYNC"),
        "{j}"
    );
    let fix = rights["fix"].as_str().unwrap();
    assert!(fix.contains("+psync") && fix.contains("import"), "{j}");
    // As `sync` reads it by default (auto): scan mode, whose needs are checked.
    let (code, j) = check_json(&source.url(), &target.url(), &[]);
    assert_eq!(code, Some(0), "{j}");
    let rights = finding(&j, "source replication rights");
    assert_eq!(rights["status"], "warn", "{j}");
    assert!(
        rights["found"].as_str().unwrap().contains("scan mode"),
        "{j}"
    );
    // notify-keyspace-events is empty by default: the exact setting to make.
    let notify = finding(&j, "scan mode notifications");
    assert_eq!(notify["status"], "warn", "{j}");
    assert!(
        notify["fix"]
            .as_str()
            .unwrap()
            .contains("notify-keyspace-events KEA"),
        "{j}"
    );
    assert_eq!(finding(&j, "scan mode rights")["status"], "pass", "{j}");
}

#[test]
fn scan_mode_needs_are_checked() {
    // A user who may neither replicate nor DUMP, on a source that tracks changes.
    let source = Server::builder(Flavor::Redis7_0)
        .config("user", "reader on >pw ~* &* +@all -psync -sync -dump")
        .config("notify-keyspace-events", "KEA")
        .login("reader", "pw")
        .start();
    let target = Server::start(Flavor::Redis7_0);
    let (code, j) = check_json(&source.url(), &target.url(), &["--source-mode", "scan"]);
    assert_eq!(code, Some(1), "{j}");
    assert_eq!(
        finding(&j, "scan mode notifications")["status"],
        "pass",
        "{j}"
    );
    let rights = finding(&j, "scan mode rights");
    assert_eq!(rights["status"], "fail", "{j}");
    assert!(rights["found"].as_str().unwrap().contains("DUMP"), "{j}");
    assert!(
        rights["fix"]
            .as_str()
            .unwrap()
            .contains("ACL SETUSER reader"),
        "{j}"
    );
}

#[test]
fn small_output_buffer_and_backlog_are_warned_about() {
    let source = Server::builder(Flavor::Redis7_0)
        .config("client-output-buffer-limit", "replica 1mb 512kb 10")
        .config("repl-backlog-size", "16kb")
        .start();
    let mut s = source.connect();
    let value = "y".repeat(20_000);
    for i in 0..300 {
        s.ok(["SET", &format!("k{i}"), &value]);
    }
    let target = Server::start(Flavor::Redis7_0);
    // Writes while the check samples the write rate.
    let writer = std::thread::spawn(move || {
        for i in 0..300 {
            s.ok(["SET", &format!("w{}", i % 10), &"z".repeat(5_000)]);
            std::thread::sleep(std::time::Duration::from_millis(3));
        }
    });
    let (_, j) = check_json(&source.url(), &target.url(), &[]);
    writer.join().unwrap();
    let buffer = finding(&j, "source replica output buffer");
    assert_eq!(buffer["status"], "warn", "{j}");
    assert!(
        buffer["fix"]
            .as_str()
            .unwrap()
            .contains("CONFIG SET client-output-buffer-limit"),
        "{j}"
    );
    let backlog = finding(&j, "source backlog");
    assert_eq!(backlog["status"], "warn", "{j}");
    assert!(
        backlog["fix"]
            .as_str()
            .unwrap()
            .contains("repl-backlog-size"),
        "{j}"
    );
}

/// A cluster target holds db 0 only: a source with keys in dbs 0, 2 and 5 fails `check`,
/// naming dbs 2 and 5 with the fix; mapped into db 0 (or left out) it passes that check.
#[test]
fn a_cluster_target_fails_naming_the_source_dbs_it_cannot_hold() {
    let source = Server::start(Flavor::Redis7_0);
    let mut s = source.connect();
    for db in ["0", "2", "5"] {
        s.ok(["SELECT", db]);
        s.ok(["SET", &format!("k{db}"), "v"]);
    }
    let cluster = testkit::Cluster::start(Flavor::Redis7_0, 3, 0);
    let to = cluster.masters()[0].url();
    let out = cli(&["check", "--from", &source.url(), "--to", &to]);
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(0), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("cluster target dbs"))
        .unwrap_or_else(|| panic!("no cluster target dbs finding: {err}"));
    assert!(line.contains("FAIL"), "{line}");
    assert!(
        line.contains("db 2 (1 keys)") && line.contains("db 5 (1 keys)"),
        "{line}"
    );
    assert!(!line.contains("db 0 ("), "{line}");
    assert!(
        line.contains("--map-db 2=0") && line.contains("--exclude-db 5"),
        "{line}"
    );

    let (code, j) = check_json(&source.url(), &to, &[]);
    assert_ne!(code, Some(0));
    assert_eq!(j["passed"], false);
    let f = finding(&j, "cluster target dbs");
    assert_eq!(f["status"], "fail", "{f}");
    assert_eq!(finding(&j, "target layout")["status"], "pass", "{j}");

    let (_, j) = check_json(
        &source.url(),
        &to,
        &["--map-db", "2=0", "--exclude-db", "5"],
    );
    assert_eq!(finding(&j, "cluster target dbs")["status"], "pass", "{j}");
}
