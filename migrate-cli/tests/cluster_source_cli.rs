//! `redis-migrate sync` from a Redis Cluster: two processes split the shards with
//! `--shards` into one target (one with `--once`, one continuous, watched through
//! `/metrics` and `/status`), and the target ends equal to the cluster.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use testkit::{Cluster, Flavor, Server, Snapshot};

const BIN: &str = env!("CARGO_BIN_EXE_redis-migrate");
/// Snapshots read expiries as `now + PTTL` when each key is read.
const TTL_TOLERANCE_MS: i64 = 1000;

fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out.split_once("\r\n\r\n")?.1.to_string())
}

#[test]
fn two_processes_split_a_cluster_by_shards() {
    let cluster = Cluster::start(Flavor::Redis7_0, 3, 1);
    let mut conn = cluster.connect();
    for i in 0..300 {
        conn.ok(["SET", &format!("k:{i}"), &i.to_string()]);
        conn.int(["RPUSH", &format!("l:{i}"), "a", "b"]);
    }
    let target = Server::start(Flavor::Redis7_0);
    let seed = cluster.masters()[0].url();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("a.json");
    let port = testkit::free_port();
    // Process B: shards 1 and 2 (by node id of the second master, and by index), kept in sync.
    let second = cluster.masters()[1].id().to_string();
    let mut b = Command::new(BIN)
        .args([
            "sync",
            "--from",
            &seed,
            "--to",
            &target.url(),
            "--shards",
            &format!("{second},2"),
            "--on-conflict",
            "replace",
            "--max-full-syncs",
            "1",
            "-q",
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Process A: shard 0, once.
    let a = Command::new(BIN)
        .args([
            "sync",
            "--from",
            &seed,
            "--to",
            &target.url(),
            "--shards",
            "0",
            "--on-conflict",
            "replace",
            "--move-wait",
            "30",
            "--once",
            "--report",
            report.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&a.stderr);
    assert!(a.status.success(), "{err}");
    assert!(err.contains("cluster source, 1 shard(s): s0"), "{err}");
    let j: Json = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(j["shards"].as_array().unwrap().len(), 1);
    assert_eq!(j["shards"][0]["id"], "s0");
    assert_eq!(j["shards"][0]["state"], "caught-up");
    // B: both shards synced, then writes on them arrive.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(body) = get(port, "/status") {
            let s: Json = serde_json::from_str(&body).unwrap();
            let shards = s["shards"].as_array().unwrap();
            if shards.len() == 2 && shards.iter().all(|x| x["synced"] == true) {
                assert_eq!(shards[0]["id"], "s5461");
                assert_eq!(shards[1]["id"], "s10922");
                break;
            }
        }
        assert!(Instant::now() < deadline, "B never synced");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Writes on B's shards only (A has ended).
    for i in 0..50u16 {
        let key = testkit::cluster::key_in_slot(6000 + i * 200, "c");
        conn.cmd_key(&key, [b"INCR".to_vec(), key.clone()]);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let diff = cluster
            .snapshot()
            .diff(&Snapshot::take(&target, 1), TTL_TOLERANCE_MS);
        if diff.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{diff:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let metrics = get(port, "/metrics").unwrap();
    assert!(
        metrics.contains("redis_migrate_shard_lag_bytes{shard=\"s5461\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("redis_migrate_shard_commands_applied_total{shard=\"s10922\"}"),
        "{metrics}"
    );
    b.kill().unwrap();
    b.wait().unwrap();
    // One process for the whole cluster, default policy (refuse a non-empty target):
    // every shard resumes from its checkpoint, no full sync.
    let report = dir.path().join("all.json");
    let all = Command::new(BIN)
        .args([
            "sync",
            "--from",
            &seed,
            "--to",
            &target.url(),
            "--once",
            "--report",
            report.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&all.stderr);
    assert!(all.status.success(), "{err}");
    let j: Json = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(j["full_syncs"], 0, "{j}");
    assert_eq!(j["shards"].as_array().unwrap().len(), 3);
    assert!(cluster
        .snapshot()
        .diff(&Snapshot::take(&target, 1), TTL_TOLERANCE_MS)
        .is_empty());
    // `forget` removes every shard's checkpoint.
    let mut t = target.connect();
    let checkpoints = |t: &mut testkit::Conn| match t.cmd(["KEYS", "__redis-migrate:checkpoint*"]) {
        testkit::Reply::Array(keys) => keys.len(),
        other => panic!("{other:?}"),
    };
    assert_eq!(checkpoints(&mut t), 3);
    let out = Command::new(BIN)
        .args(["forget", "--to", &target.url()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(checkpoints(&mut t), 0);
}
