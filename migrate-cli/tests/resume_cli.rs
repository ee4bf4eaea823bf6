//! Crash-safe resume, as a user meets it: `redis-migrate sync` killed with SIGKILL (or the
//! target killed and restarted from its AOF), then the same command again. The target's
//! checkpoint, written in the same `MULTI`/`EXEC` as the commands it covers, makes every
//! replicated write land exactly once; non-idempotent writes (counters, lists, appends,
//! streams, hash counters, pops, transactions, scripts) across three dbs show any write
//! lost or applied twice. Everything is compared key by key with the source.

use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use testkit::{Conn, Dataset, Flavor, Server, Snapshot};

const BIN: &str = env!("CARGO_BIN_EXE_redis-migrate");
const TTL_TOLERANCE_MS: i64 = 1000;
const DBS: u32 = 3;

fn source_server(flavor: Flavor) -> Server {
    Server::builder(flavor)
        .config("repl-diskless-sync-delay", "0")
        .no_modules()
        .start()
}

fn sync_args(source: &Server, target: &Server, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["sync", "--from", &source.url(), "--to", &target.url(), "-q"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn spawn(args: &[String]) -> Child {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running redis-migrate")
}

fn run(args: &[String]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("running redis-migrate")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn info_u64(c: &mut Conn, section: &str, field: &str) -> u64 {
    c.info_field(section, field)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("INFO {section} has no {field}"))
}

/// Waits until the target holds the checkpoint, in phase `phase` (`incremental`, `fullsync`).
fn wait_checkpoint(target: &Server, phase: &str) {
    let mut t = target.connect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = t.bulk(["GET", migrate_core::migrate::CHECKPOINT_KEY]);
        if v.as_deref()
            .is_some_and(|v| String::from_utf8_lossy(v).contains(&format!(" {phase} ")))
        {
            return;
        }
        assert!(Instant::now() < deadline, "no {phase} checkpoint: {v:?}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// One round of non-idempotent writes in db `r % 3`.
fn write_round(c: &mut Conn, r: u64) {
    let s = r.to_string();
    c.ok(["SELECT", &(r % u64::from(DBS)).to_string()]);
    c.int(["INCR", "counter"]);
    c.int(["RPUSH", "list", &s]);
    if r % 3 == 0 {
        c.must(["LPOP", "list"]);
    }
    c.int(["APPEND", "log", &format!("{s},")]);
    c.must(["XADD", "stream", "*", "r", &s]);
    c.int(["HINCRBY", "hash", &format!("f{}", r % 5), "3"]);
    c.ok(["MULTI"]);
    c.cmd(["INCRBY", "tx:counter", "2"]);
    c.cmd(["RPUSH", "tx:list", &s]);
    c.must(["EXEC"]);
    c.must([
        "EVAL",
        "redis.call('INCR', KEYS[1]); return redis.call('RPUSH', KEYS[2], ARGV[1])",
        "2",
        "lua:counter",
        "lua:list",
        &s,
    ]);
    c.ok(["SET", &format!("ttl:{}", r % 7), &s, "EX", "3600"]);
}

/// A writer thread: `rounds` rounds, as fast as it goes; `done` counts them.
fn writer(
    source: &Server,
    rounds: u64,
    done: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<()> {
    let mut c = source.connect();
    thread::spawn(move || {
        for r in 0..rounds {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            write_round(&mut c, r);
            done.store(r + 1, Ordering::Relaxed);
            if r % 50 == 0 {
                thread::sleep(Duration::from_millis(5));
            }
        }
    })
}

fn wait_rounds(done: &AtomicU64, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while done.load(Ordering::Relaxed) < n {
        assert!(Instant::now() < deadline, "the writer is stuck");
        thread::sleep(Duration::from_millis(5));
    }
}

/// The final `sync --once` after the writer stopped: resumes and ends when caught up.
fn finish_once(source: &Server, target: &Server, report: &std::path::Path) -> Json {
    let out = run(&sync_args(
        source,
        target,
        &["--once", "--report", report.to_str().unwrap()],
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap()
}

/// SIGKILL three times during the incremental phase under a writer of non-idempotent
/// commands, each time the same command again: one full sync on the source in all, and
/// the target equal to the source. Every matrix flavour as the target.
#[test]
fn sigkill_three_times_during_incremental_applies_each_write_once() {
    for to in Flavor::ALL {
        let source = source_server(Flavor::Redis7_0);
        Dataset::small().fill(&source);
        let target = Server::builder(to).no_modules().start();
        let dir = tempfile::tempdir().unwrap();
        let args = sync_args(&source, &target, &[]);
        let done = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut child = spawn(&args);
        wait_checkpoint(&target, "incremental");
        let w = writer(&source, 900, done.clone(), stop.clone());
        for kill_at in [150, 400, 650] {
            wait_rounds(&done, kill_at);
            child.kill().unwrap();
            child.wait().unwrap();
            child = spawn(&args);
        }
        w.join().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        let j = finish_once(&source, &target, &dir.path().join("report.json"));
        assert!(j["resumed_from"].is_string(), "{to}: {j}");
        assert_eq!(j["full_syncs"], 0, "{to}: the last run resumed: {j}");
        let mut s = source.connect();
        assert_eq!(
            info_u64(&mut s, "stats", "sync_full"),
            1,
            "{to}: one full sync in all"
        );
        Snapshot::take(&source, DBS).assert_same(&Snapshot::take(&target, DBS), TTL_TOLERANCE_MS);
    }
}

/// SIGKILL in the middle of a full sync (the source sends its RDB slowly) while the source
/// takes writes and deletes keys already copied: the same command again heals with a new
/// full sync and a sweep of the stale keys, and ends equal.
#[test]
fn sigkill_mid_full_sync_heals() {
    let source = source_server(Flavor::Redis7_0);
    Dataset::small().fill(&source);
    let mut s = source.connect();
    // About 1 ms per key: the 600-key RDB takes most of a second.
    s.ok(["CONFIG", "SET", "rdb-key-save-delay", "1500"]);
    let target = Server::start(Flavor::Valkey9_1);
    let dir = tempfile::tempdir().unwrap();
    let args = sync_args(&source, &target, &[]);
    let mut child = spawn(&args);
    wait_checkpoint(&target, "fullsync");
    let mut t = target.connect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while t.int(["DBSIZE"]) < 50 {
        assert!(Instant::now() < deadline, "no key arrived");
        thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    s.ok(["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    // Every key of db 0 that already arrived is deleted on the source.
    t.ok(["SELECT", "0"]);
    let copied = Snapshot::take(&target, 1);
    let mut deleted = 0;
    for key in copied.keys.keys() {
        deleted += s.int([b"DEL".as_slice(), &key.1]);
    }
    assert!(deleted > 0);
    for r in 0..60 {
        write_round(&mut s, r);
    }
    let j = finish_once(&source, &target, &dir.path().join("report.json"));
    assert_eq!(j["healing_full_syncs"], 1, "{j}");
    assert!(j["keys_swept"].as_u64().unwrap() >= deleted as u64, "{j}");
    Snapshot::take(&source, DBS).assert_same(&Snapshot::take(&target, DBS), TTL_TOLERANCE_MS);
}

/// The target killed and restarted from its own AOF in the middle of the incremental
/// phase: data and checkpoint come back together, so the same command resumes from there.
#[test]
fn target_restarted_from_its_aof_resumes() {
    let source = source_server(Flavor::Redis7_0);
    Dataset::small().fill(&source);
    let mut target = Server::builder(Flavor::Redis7_0)
        .config("appendonly", "yes")
        .config("appendfsync", "always")
        .start();
    let dir = tempfile::tempdir().unwrap();
    let args = sync_args(&source, &target, &[]);
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut child = spawn(&args);
    wait_checkpoint(&target, "incremental");
    let w = writer(&source, 500, done.clone(), stop.clone());
    wait_rounds(&done, 200);
    target.crash_and_restart();
    // The tool lost its target: it stops with an error.
    let status = child.wait().unwrap();
    assert!(!status.success());
    w.join().unwrap();
    let j = finish_once(&source, &target, &dir.path().join("report.json"));
    assert!(j["resumed_from"].is_string(), "{j}");
    assert_eq!(j["full_syncs"], 0, "{j}");
    Snapshot::take(&source, DBS).assert_same(&Snapshot::take(&target, DBS), TTL_TOLERANCE_MS);
}

/// The backlog overflows while the tool is stopped (and keys are deleted on the source):
/// the restart's partial resync is refused, a healing full sync and its sweep follow, and
/// the target ends equal, deleted keys gone.
#[test]
fn backlog_overflow_while_stopped_heals() {
    let source = Server::builder(Flavor::Redis7_0)
        .config("repl-diskless-sync-delay", "0")
        .config("repl-backlog-size", "16384")
        .start();
    Dataset::small().fill(&source);
    let target = Server::start(Flavor::Redis6_2);
    let dir = tempfile::tempdir().unwrap();
    let args = sync_args(&source, &target, &[]);
    let mut child = spawn(&args);
    wait_checkpoint(&target, "incremental");
    child.kill().unwrap();
    child.wait().unwrap();
    let mut s = source.connect();
    s.ok(["SELECT", "1"]);
    let gone = s.int(["DBSIZE"]);
    s.ok(["FLUSHDB"]);
    let value = "v".repeat(1024);
    for i in 0..100 {
        s.ok(["SET", &format!("big{i}"), &value]);
    }
    let j = finish_once(&source, &target, &dir.path().join("report.json"));
    assert_eq!(j["healing_full_syncs"], 1, "{j}");
    assert!(j["keys_swept"].as_i64().unwrap() >= gone, "{j}");
    assert_eq!(info_u64(&mut s, "stats", "sync_full"), 2);
    Snapshot::take(&source, DBS).assert_same(&Snapshot::take(&target, DBS), TTL_TOLERANCE_MS);
}

/// A checkpoint of another migration (same target, other source) is refused with the way
/// out; `--reset-checkpoint` starts over, `forget` removes it.
#[test]
fn another_migrations_checkpoint_is_refused() {
    let first = source_server(Flavor::Redis7_0);
    let other = source_server(Flavor::Redis7_0);
    let target = Server::start(Flavor::Redis7_0);
    first.connect().ok(["SET", "a", "1"]);
    other.connect().ok(["SET", "b", "2"]);
    let out = run(&sync_args(&first, &target, &["--once"]));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&sync_args(&other, &target, &["--once"]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("checkpoint of another migration") && err.contains("--reset-checkpoint"),
        "{err}"
    );
    assert!(
        target.connect().bulk(["GET", "b"]).is_none(),
        "nothing written"
    );
    let out = run(&sync_args(
        &other,
        &target,
        &["--once", "--reset-checkpoint", "--on-conflict", "replace"],
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        target.connect().bulk(["GET", "b"]).as_deref(),
        Some(&b"2"[..])
    );
    let out = run(&["forget".into(), "--to".into(), target.url()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("checkpoint removed"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        target
            .connect()
            .int(["EXISTS", migrate_core::migrate::CHECKPOINT_KEY]),
        0
    );
}

/// An import stopped part-way (the target ran out of memory) and run again after the
/// memory was raised completes, the list written as commands not doubled.
#[test]
fn restarted_import_completes_without_duplicates() {
    let source = Server::start(Flavor::Redis7_0);
    let mut s = source.connect();
    for chunk in 0..40 {
        let items: Vec<String> = (0..500)
            .map(|i| format!("item-{chunk}-{i}-{}", "x".repeat(40)))
            .collect();
        let mut cmd = vec!["RPUSH".to_string(), "biglist".into()];
        cmd.extend(items);
        s.int(cmd.iter().map(String::as_str));
    }
    Dataset::small().fill(&source);
    source.save();
    let target = Server::builder(Flavor::Redis7_0)
        .config("maxmemory", "3mb")
        .start();
    let file = source.rdb_path();
    let args: Vec<String> = [
        "import",
        file.to_str().unwrap(),
        "--to",
        &target.url(),
        "--big-key-bytes",
        "4096",
        "-q",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = run(&args);
    assert!(
        !out.status.success(),
        "the first attempt must run out of memory"
    );
    assert!(stderr(&out).contains("OOM"), "{}", stderr(&out));
    let mut t = target.connect();
    t.ok(["CONFIG", "SET", "maxmemory", "0"]);
    let out = run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    Snapshot::take(&source, DBS).assert_same(&Snapshot::take(&target, DBS), TTL_TOLERANCE_MS);
    assert_eq!(t.int(["LLEN", "biglist"]), 20_000);
}

/// The writes an old server (no streams, no variadic HSET) takes, non-idempotent.
fn old_round(c: &mut Conn, r: u64) {
    let s = r.to_string();
    c.ok(["SELECT", &(r % u64::from(DBS)).to_string()]);
    c.int(["INCR", "counter"]);
    c.int(["RPUSH", "list", &s]);
    c.int(["APPEND", "log", &format!("{s},")]);
    c.int(["HINCRBY", "hash", &format!("f{}", r % 5), "3"]);
    c.ok(["MULTI"]);
    c.cmd(["INCRBY", "tx:counter", "2"]);
    c.cmd(["RPUSH", "tx:list", &s]);
    c.must(["EXEC"]);
}

/// A PSYNC v1 source (Redis 2.8: a run id instead of a replication id, `+CONTINUE` without
/// one): SIGKILL and the same command again resume with a partial resync, exactly once.
#[test]
fn sigkill_and_resume_against_a_psync_v1_source() {
    let source = Server::start(Flavor::Redis2_8);
    let target = Server::start(Flavor::Redis7_0);
    let mut s = source.connect();
    for r in 0..30 {
        old_round(&mut s, r);
    }
    let dir = tempfile::tempdir().unwrap();
    let args = sync_args(&source, &target, &[]);
    let mut child = spawn(&args);
    wait_checkpoint(&target, "incremental");
    for r in 30..130 {
        old_round(&mut s, r);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    for r in 130..200 {
        old_round(&mut s, r);
    }
    let j = finish_once(&source, &target, &dir.path().join("report.json"));
    assert!(j["resumed_from"].is_string(), "{j}");
    assert_eq!(j["full_syncs"], 0, "{j}");
    assert_eq!(info_u64(&mut s, "stats", "sync_full"), 1);
    assert!(info_u64(&mut s, "stats", "sync_partial_ok") >= 1);
    Snapshot::take(&source, DBS).assert_same(&Snapshot::take(&target, DBS), TTL_TOLERANCE_MS);
}
