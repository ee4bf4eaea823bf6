//! `--metrics-addr`: `/metrics` scraped while `sync` runs parses as Prometheus (OpenMetrics)
//! text and its counters move; `/status` is JSON with the settings, credentials redacted.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::{Dataset, Flavor, Server};

const BIN: &str = env!("CARGO_BIN_EXE_redis-migrate");

fn get(port: u16, path: &str) -> Option<(String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    Some((head.to_string(), body.to_string()))
}

/// Parses the exposition text: every sample line is `name[{labels}] value`, families are
/// announced by `# TYPE` before their samples, and the text ends with `# EOF`.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    let mut typed = Vec::new();
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.push(rest.split(' ').next().unwrap().to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (name, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let family = name.split('{').next().unwrap();
        assert!(
            typed.iter().any(|t| family.starts_with(t.as_str())),
            "{line:?} has no # TYPE before it"
        );
        samples.insert(name.to_string(), value);
    }
    samples
}

#[test]
fn metrics_are_served_while_sync_runs() {
    let source = Server::builder(Flavor::Redis7_0)
        .config("repl-diskless-sync-delay", "0")
        .password("pw")
        .start();
    Dataset::small().fill(&source);
    let target = Server::start(Flavor::Redis7_0);
    let port = testkit::free_port();
    let mut child = Command::new(BIN)
        .args([
            "sync",
            "--from",
            &source.url(),
            "--to",
            &target.url(),
            "-q",
            "--metrics-addr",
            &format!("127.0.0.1:{port}"),
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let scrape = || get(port, "/metrics").map(|(_, body)| parse(&body));
    let m = loop {
        if let Some(m) = scrape() {
            if m.get("redis_migrate_phase{phase=\"incremental\"}") == Some(&1.0) {
                break m;
            }
        }
        assert!(
            Instant::now() < deadline,
            "never reached the incremental phase"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(m["redis_migrate_keys_written_total"], 600.0);
    assert!(m.contains_key("redis_migrate_lag_bytes"));
    assert!(m.contains_key("redis_migrate_lag_seconds"));
    assert_eq!(m["redis_migrate_full_syncs_total"], 1.0);
    assert!(m["redis_migrate_checkpoint_offset"] >= 0.0);
    let mut s = source.connect();
    for i in 0..100 {
        s.int(["INCR", &format!("c{}", i % 3)]);
    }
    loop {
        let m = scrape().unwrap();
        if m["redis_migrate_commands_applied_total"] >= 100.0 {
            assert!(m["redis_migrate_applied_offset"] > 0.0);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "commands_applied did not move: {m:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (head, body) = get(port, "/status").unwrap();
    assert!(head.contains("application/json"), "{head}");
    let j: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(j["phase"], "incremental");
    let from = j["settings"]["source"].as_str().unwrap();
    assert!(from.contains("***") && !body.contains("pw@"), "{body}");
    let (head, _) = get(port, "/nothing").unwrap();
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    child.kill().unwrap();
    child.wait().unwrap();
}
