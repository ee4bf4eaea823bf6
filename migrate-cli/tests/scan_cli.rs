//! `redis-migrate sync` against sources that refuse replication (issue 14): the plain
//! command falls back to scan mode and says so; a big hash is copied in bounded memory
//! (the tool's peak RSS measured from /proc).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use testkit::{Dataset, Flavor, Server, Snapshot};

const BIN: &str = env!("CARGO_BIN_EXE_redis-migrate");
const TTL_TOLERANCE_MS: i64 = 1000;

fn refusing_source(flavor: Flavor) -> Server {
    Server::builder(flavor)
        .config("user", "app on >pw ~* &* +@all -sync -psync")
        .login("app", "pw")
        .start()
}

#[test]
fn plain_sync_falls_back_to_scan_mode_and_says_so() {
    let source = refusing_source(Flavor::Redis7_0);
    let target = Server::start(Flavor::Valkey8_1);
    Dataset::small().fill(&source);
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let out = Command::new(BIN)
        .args([
            "sync",
            "--once",
            "--set-notify-keyspace-events",
            "--from",
            &source.url(),
            "--to",
            &target.url(),
            "--report",
            report.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // The precheck warns (not fails), the fallback is said once.
    assert!(err.contains("WARN source replication rights"), "{err}");
    assert_eq!(err.matches("continuing in scan mode").count(), 1, "{err}");
    let j: Json = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(j["source_mode"], "scan", "{j}");
    assert!(
        j["source_mode_reason"].as_str().unwrap().contains("NOPERM"),
        "{j}"
    );
    assert!(j["scan"]["keys_copied"].as_u64().unwrap() > 0, "{j}");
    Snapshot::take(&source, 3).assert_same(&Snapshot::take(&target, 3), TTL_TOLERANCE_MS);

    // --source-mode psync keeps the refusal an error.
    let target2 = Server::start(Flavor::Valkey8_1);
    let out = Command::new(BIN)
        .args([
            "sync",
            "--once",
            "--no-check",
            "--source-mode",
            "psync",
            "--from",
            &source.url(),
            "--to",
            &target2.url(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("import"));
}

/// Peak resident set of a process, from /proc (kB).
fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Elements of the big hash (1M in the README's release run).
const BIG_FIELDS: usize = 200_000;

#[test]
fn a_big_hash_is_copied_in_bounded_memory() {
    let source = refusing_source(Flavor::Valkey8_1);
    let target = Server::start(Flavor::Valkey8_1);
    let fields = std::env::var("SCAN_BIG_FIELDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(BIG_FIELDS);
    let mut c = source.connect();
    let value = "x".repeat(300);
    for start in (0..fields).step_by(2000) {
        let mut args = vec!["HSET".to_string(), "big".into()];
        for i in start..(start + 2000).min(fields) {
            // Distinct values: LZF would shrink a repeated one.
            args.push(format!("field:{i}"));
            args.push(format!("{i:08}{value}"));
        }
        c.must(args);
    }
    let usage = c.int(["MEMORY", "USAGE", "big", "SAMPLES", "1000"]) as u64;
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args([
            "sync",
            "--once",
            "--quiet",
            "--set-notify-keyspace-events",
            "--from",
            &source.url(),
            "--to",
            &target.url(),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak = 0;
    let status = loop {
        if let Some(kb) = vm_hwm_kb(pid) {
            peak = peak.max(kb);
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let secs = started.elapsed().as_secs_f64();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{err}");
    let mut t = target.connect();
    assert_eq!(t.int(["HLEN", "big"]) as usize, fields);
    assert_eq!(
        t.bulk(["HGET", "big", &format!("field:{}", fields - 1)]),
        Some(format!("{:08}{value}", fields - 1).into_bytes())
    );
    eprintln!(
        "{fields}-field hash ({:.1} MB on the source): copied in {secs:.1} s, tool peak RSS {:.1} MB",
        usage as f64 / 1e6,
        peak as f64 / 1e3
    );
    // A DUMP of it alone would take `usage`-ish bytes; the tool stays well below.
    assert!(peak > 0, "no RSS read");
    assert!(
        peak * 1000 < usage / 2 && peak < 64_000,
        "peak RSS {peak} kB for a {usage}-byte hash"
    );
}
