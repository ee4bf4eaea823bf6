//! `redis-migrate verify` as a user runs it: a password-protected source and a TLS target
//! with an ACL user, an exact copy (exit 0, summary line, JSON report), a planted
//! difference (exit 1, the key printed and in the report), errors (exit 2, one line).

use std::process::{Command, Output};

use serde_json::Value as Json;
use testkit::{free_port, Dataset, Flavor, Server, TestPki};

const BIN: &str = env!("CARGO_BIN_EXE_redis-migrate");

fn cli(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("running redis-migrate")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn verify_exit_codes_summary_and_report() {
    let source = Server::builder(Flavor::Valkey9_1)
        .config("repl-diskless-sync-delay", "0")
        .password("src-pass")
        .start();
    Dataset::small().fill(&source);
    let pki = TestPki::generate();
    let (builder, tls_port) = Server::builder(Flavor::Redis7_0).tls(&pki, true);
    let target = builder
        .config("user", "admin on >secret ~* &* +@all")
        .login("admin", "secret")
        .start();
    let to = format!("rediss://admin:secret@127.0.0.1:{tls_port}");
    let f = |n: &str| pki.path(n).display().to_string();
    let (ca, cert, key) = (f("ca.crt"), f("client.crt"), f("client.key"));
    let tls = [
        "--to-cacert",
        ca.as_str(),
        "--to-cert",
        cert.as_str(),
        "--to-key",
        key.as_str(),
    ];
    let from = source.url();
    let mut sync = vec!["sync", "--from", &from, "--to", &to, "--once", "-q"];
    sync.extend(tls);
    let out = cli(&sync);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("verify.json");
    let report_arg = report.display().to_string();
    let mut args = vec!["verify", "--from", &from, "--to", &to, "--delay", "0.1"];
    args.extend(tls);
    let mut equal = args.clone();
    equal.extend(["--report", &report_arg]);
    let out = cli(&equal);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("redis-migrate: verify: equal: 600 keys compared"),
        "{stdout}"
    );
    assert!(stdout.contains("0 differences"), "{stdout}");
    let j: Json = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(j["result"], "equal", "{j}");
    assert_eq!(j["keys_compared"], 600, "{j}");
    assert_eq!(j["differences_total"], 0, "{j}");
    assert!(j["target_version"].as_str().unwrap().contains("7.0"), "{j}");

    // A planted difference: exit 1, the key on stderr (the report is on stdout).
    let mut t = target.connect();
    t.ok(["SET", "str:00000000", "changed"]);
    let mut differ = args.clone();
    differ.extend(["--rounds", "1", "--report", "-"]);
    let out = cli(&differ);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("db 0 \"str:00000000\": value: "),
        "{stderr}"
    );
    assert!(stderr.contains("verify: different: "), "{stderr}");
    assert!(stderr.contains("1 value"), "{stderr}");
    // str:00000000 holds 100 KiB: only a short prefix is shown.
    let line = stderr.lines().find(|l| l.contains("str:00000000")).unwrap();
    assert!(line.len() < 200, "{line}");
    let j: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["result"], "different", "{j}");
    assert_eq!(j["by_kind"]["value"], 1, "{j}");
    assert_eq!(j["rounds"], 2, "{j}");
    assert_eq!(j["differences"][0]["key"], "str:00000000", "{j}");
    assert_eq!(j["differences"][0]["kind"], "value", "{j}");
    // Outside the filter, nothing differs.
    let mut filtered = args.clone();
    filtered.extend(["--exclude-key", "str:00000000", "--sample", "0.5"]);
    let out = cli(&filtered);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    // Errors: exit 2 and one line.
    let closed = format!("redis://127.0.0.1:{}", free_port());
    let out = cli(&["verify", "--from", &from, "--to", &closed]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.starts_with("redis-migrate: target "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let wrong = format!("redis://:nope@127.0.0.1:{}", source.port());
    let out = cli(&["verify", "--from", &wrong, "--to", &closed]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("nope"), "{}", text(&out.stderr));
    let out = cli(&["verify", "--from", &from, "--to", &to, "--sample", "2"]);
    assert_eq!(out.status.code(), Some(2));
}

/// `verify` with a cluster URL on either side, unchanged: any node of the cluster; every
/// master is scanned.
#[test]
fn verify_with_a_cluster_url() {
    use testkit::{Cluster, Reply};
    let cluster = Cluster::start(Flavor::Valkey8_1, 3, 0);
    let target = Server::start(Flavor::Valkey8_1);
    let mut c = cluster.connect();
    let mut t = target.connect();
    for i in 0..40 {
        let (k, v) = (format!("k:{i}"), format!("v{i}"));
        c.ok(["SET", &k, &v]);
        t.ok(["SET", &k, &v]);
    }
    // Any node, not only the first: the seed need not hold the keys compared.
    let from = cluster.masters()[1].url();
    let to = target.url();
    let out = cli(&[
        "verify", "--from", &from, "--to", &to, "--delay", "0.1", "--report", "-",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let j: Json = serde_json::from_str(&stdout).unwrap();
    assert_eq!(j["keys_compared"], 40, "{j}");
    assert_eq!(j["source_masters"], 3, "{j}");
    assert_eq!(j["target_masters"], Json::Null, "{j}");

    // The other way round, with a key missing on the cluster.
    assert_eq!(c.cmd(["DEL", "k:7"]), Reply::Int(1));
    let out = cli(&[
        "verify", "--from", &to, "--to", &from, "--rounds", "1", "--delay", "0.1",
    ]);
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("db 0 \"k:7\": missing"), "{all}");
}
