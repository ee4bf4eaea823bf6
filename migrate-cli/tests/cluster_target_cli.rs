//! `redis-migrate` into a Redis Cluster target, as a user runs it: `--to` names one node;
//! `sync` killed with SIGKILL three times under a writer of non-idempotent commands and
//! started again resumes exactly once per slot (the precheck reads the checkpoint through
//! the slot routing); `forget` removes the checkpoint keys from every master.

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use testkit::{Cluster, Conn, Dataset, Flavor, Server, Snapshot};

const BIN: &str = env!("CARGO_BIN_EXE_redis-migrate");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("running redis-migrate")
}

fn round(c: &mut Conn, r: u64) {
    let s = r.to_string();
    c.int(["INCR", "counter"]);
    c.int(["RPUSH", &format!("list:{}", r % 10), &s]);
    c.int(["APPEND", "log", &format!("{s},")]);
    c.int(["HINCRBY", "hash", &format!("f{}", r % 5), "3"]);
    c.ok(["MULTI"]);
    c.cmd(["INCRBY", "tx:counter", "2"]);
    c.cmd(["RPUSH", "tx:list", &s]);
    c.must(["EXEC"]);
    c.ok([
        "MSET",
        &format!("a:{}", r % 30),
        &s,
        &format!("b:{}", r % 30),
        &s,
    ]);
}

#[test]
fn sigkill_and_resume_into_a_cluster() {
    let source = Server::builder(Flavor::Redis7_0)
        .config("repl-diskless-sync-delay", "0")
        .no_modules()
        .start();
    Dataset {
        keys: 300,
        dbs: 1,
        ..Dataset::small()
    }
    .fill(&source);
    let cluster = Cluster::start(Flavor::Valkey9_1, 3, 0);
    let to = cluster.masters()[1].url();
    let from = source.url();
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = thread::spawn({
        let (done, stop) = (done.clone(), stop.clone());
        let mut c = source.connect();
        move || {
            let mut r = 0;
            while !stop.load(Ordering::Relaxed) {
                round(&mut c, r);
                r += 1;
                done.store(r, Ordering::Relaxed);
                if r % 50 == 0 {
                    thread::sleep(Duration::from_millis(5));
                }
            }
        }
    });
    for kill in 0..3 {
        let mut child = Command::new(BIN)
            .args(["sync", "--from", &from, "--to", &to, "-q"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running redis-migrate");
        // Past the full sync (or the resume): the floor checkpoint moved.
        let started = Instant::now();
        let mut c = cluster.connect();
        let before = c.bulk(["GET", migrate_core::migrate::CHECKPOINT_KEY]);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = c.bulk(["GET", migrate_core::migrate::CHECKPOINT_KEY]);
            let moved = v != before;
            if v.is_some_and(|v| moved && String::from_utf8_lossy(&v).contains(" incremental ")) {
                eprintln!("kill {kill}: incremental after {:?}", started.elapsed());
                break;
            }
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                panic!("kill {kill}: it exited ({status}): {err}");
            }
            assert!(
                Instant::now() < deadline,
                "kill {kill}: no incremental checkpoint"
            );
            thread::sleep(Duration::from_millis(10));
        }
        let at = done.load(Ordering::Relaxed);
        while done.load(Ordering::Relaxed) < at + 300 {
            assert!(
                Instant::now() < deadline,
                "kill {kill}: the writer is stuck"
            );
            thread::sleep(Duration::from_millis(10));
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "kill {kill}: it exited"
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let out = run(&[
        "sync", "--from", &from, "--to", &to, "--once", "-q", "--report", "-",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["target_cluster_masters"], 3, "{report}");
    assert!(report["resumed_from"].is_string(), "{report}");
    assert_eq!(report["failures_total"], 0, "{report}");
    Snapshot::take(&source, 1).assert_same(&cluster.snapshot(), 1000);
    let n = done.load(Ordering::Relaxed).to_string().into_bytes();
    assert_eq!(cluster.connect().bulk(["GET", "counter"]), Some(n));

    let out = run(&["forget", "--to", &to]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for m in cluster.masters() {
        let left = m.connect().must(["KEYS", "__redis-migrate:*"]);
        assert_eq!(left, testkit::Reply::Array(vec![]), "{}", m.addr());
    }
}
