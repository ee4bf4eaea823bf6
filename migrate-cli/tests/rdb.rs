//! `redis-migrate rdb dump|stats` as a user runs them: the real binary, real server files,
//! `redis-cli --pipe`, corrupt and truncated files.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value as Json;
use testkit::snapshot::{Group, Stream, Value};
use testkit::{Dataset, Flavor, Server, Snapshot};

const BIN: &str = env!("CARGO_BIN_EXE_redis-migrate");
const DBS: u32 = 3;

fn cli(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("running redis-migrate")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A server filled with the small dataset (every type and encoding, TTLs, 3 dbs, streams
/// with groups), saved; returns the server and its RDB file.
fn saved(flavor: Flavor) -> (Server, PathBuf) {
    let server = Server::start(flavor);
    Dataset::small().fill(&server);
    let mut c = server.connect();
    c.ok([b"SET".as_slice(), b"bin:\xff\xfe", b"\x00\x01\xff"]);
    server.save();
    let path = server.rdb_path();
    (server, path)
}

fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/rdb-corpus");
    p.is_dir().then_some(p)
}

#[test]
fn resp_dump_piped_into_redis_cli() {
    let (src, file) = saved(Flavor::Redis7_0);
    let dst = Server::start(Flavor::Redis7_0);
    // redis-migrate rdb dump FILE | redis-cli -p PORT --pipe
    let mut dump = Command::new(BIN)
        .args([
            "rdb",
            "dump",
            "--format",
            "resp",
            "--max-command-args",
            "50",
        ])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pipe = Command::new("redis-cli")
        .args(["-p", &dst.port().to_string(), "--pipe"])
        .stdin(dump.stdout.take().unwrap())
        .output()
        .expect("redis-cli");
    let dumped = dump.wait_with_output().unwrap();
    assert!(dumped.status.success(), "{}", stderr(&dumped));
    // The target version defaults to the writer's (redis-ver AUX field).
    assert!(
        stderr(&dumped).contains("for Redis 7.0.15"),
        "{}",
        stderr(&dumped)
    );
    let out = String::from_utf8_lossy(&pipe.stdout);
    assert!(pipe.status.success(), "{out}{}", stderr(&pipe));
    assert!(out.contains("errors: 0"), "{out}");
    Snapshot::take(&src, DBS).assert_same(&Snapshot::take(&dst, DBS), 3000);
}

#[test]
fn resp_dump_write_mode_auto_restores_as_a_migration_does() {
    // LFU counters are saved (FREQ opcode): `--write-mode auto` carries them over in
    // `RESTORE ... FREQ n`, and TTLs as `ABSTTL`, as the engine's full sync does.
    let src = Server::builder(Flavor::Redis7_0)
        .config("maxmemory-policy", "allkeys-lfu")
        .start();
    Dataset::small().fill(&src);
    src.save();
    let file = src.rdb_path();
    let dst = Server::builder(Flavor::Redis7_0)
        .config("maxmemory-policy", "allkeys-lfu")
        .start();
    let o = cli(&[
        "rdb",
        "dump",
        file.to_str().unwrap(),
        "--write-mode",
        "auto",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let has = |needle: &[u8]| o.stdout.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"RESTORE") && has(b"ABSTTL") && has(b"FREQ"));
    assert!(
        !has(b"RPUSH") && !has(b"HSET"),
        "no key needs commands here"
    );
    let mut child = Command::new("redis-cli")
        .args(["-p", &dst.port().to_string(), "--pipe"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&o.stdout).unwrap();
    let pipe = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&pipe.stdout);
    assert!(text.contains("errors: 0"), "{text}");
    Snapshot::take(&src, DBS).assert_same(&Snapshot::take(&dst, DBS), 3000);
}

#[test]
fn resp_dump_to_a_file_for_an_older_target() {
    let (src, file) = saved(Flavor::Valkey9_1);
    let dst = Server::start(Flavor::Redis6_2);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.resp");
    let o = cli(&[
        "rdb",
        "dump",
        file.to_str().unwrap(),
        "--target-version",
        "6.2",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let resp = std::fs::read(&out).unwrap();
    assert!(!resp.windows(12).any(|w| w == b"ENTRIESADDED"));
    let mut child = Command::new("redis-cli")
        .args(["-p", &dst.port().to_string(), "--pipe"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&resp).unwrap();
    let pipe = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&pipe.stdout);
    assert!(text.contains("errors: 0"), "{text}");
    Snapshot::take(&src, DBS).assert_same(&Snapshot::take(&dst, DBS), 3000);
}

/// A JSON Redis string: text or `{"base64": ...}`.
fn bytes(j: &Json) -> Vec<u8> {
    match j {
        Json::String(s) => s.as_bytes().to_vec(),
        Json::Object(o) => base64(o["base64"].as_str().expect("base64 field")),
        other => panic!("not a string: {other}"),
    }
}

fn base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("bad base64 {c}"),
    };
    let mut out = Vec::new();
    for chunk in s.as_bytes().chunks(4) {
        let pad = chunk.iter().filter(|&&c| c == b'=').count();
        let mut n = 0u32;
        for &c in chunk {
            n = (n << 6) | if c == b'=' { 0 } else { u32::from(val(c)) };
        }
        let b = n.to_be_bytes();
        out.extend_from_slice(&b[1..4 - pad]);
    }
    out
}

fn score(j: &Json) -> f64 {
    match j {
        Json::Number(n) => n.as_f64().unwrap(),
        Json::String(s) => s.parse().unwrap(),
        other => panic!("bad score {other}"),
    }
}

/// The JSON line's value as a snapshot value.
fn to_value(ty: &str, v: &Json) -> Value {
    let arr = || v.as_array().expect("array");
    match ty {
        "string" => Value::String(bytes(v)),
        "list" => Value::List(arr().iter().map(bytes).collect()),
        "set" => Value::Set(arr().iter().map(bytes).collect()),
        "zset" => {
            let mut z: Vec<(Vec<u8>, f64)> =
                arr().iter().map(|p| (bytes(&p[0]), score(&p[1]))).collect();
            // Rank order: by score, then member.
            z.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            Value::ZSet(z)
        }
        "hash" => Value::Hash(arr().iter().map(|p| (bytes(&p[0]), bytes(&p[1]))).collect()),
        "stream" => {
            let text = |j: &Json| String::from_utf8(bytes(j)).unwrap();
            let mut s = Stream {
                last_id: v["last_id"].as_str().unwrap().to_string(),
                ..Stream::default()
            };
            for e in v["entries"].as_array().unwrap() {
                let mut fv = Vec::new();
                for p in e["fields"].as_array().unwrap() {
                    fv.push(bytes(&p[0]));
                    fv.push(bytes(&p[1]));
                }
                s.entries.push((e["id"].as_str().unwrap().to_string(), fv));
            }
            for g in v["groups"].as_array().unwrap() {
                let counts: BTreeMap<&str, i64> = g["pending"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| {
                        (
                            p["id"].as_str().unwrap(),
                            p["delivery_count"].as_i64().unwrap(),
                        )
                    })
                    .collect();
                let mut group = Group {
                    last_delivered: g["last_id"].as_str().unwrap().to_string(),
                    ..Group::default()
                };
                for c in g["consumers"].as_array().unwrap() {
                    let name = text(&c["name"]);
                    for id in c["pending"].as_array().unwrap() {
                        let id = id.as_str().unwrap();
                        group
                            .pending
                            .insert(id.to_string(), (name.clone(), counts[id]));
                    }
                    group.consumers.insert(name);
                }
                s.groups.insert(text(&g["name"]), group);
            }
            Value::Stream(s)
        }
        other => Value::Other(other.to_string()),
    }
}

#[test]
fn json_dump_matches_the_server() {
    let (src, file) = saved(Flavor::Valkey9_1);
    let o = cli(&["rdb", "dump", "--format", "json", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let expected = Snapshot::take(&src, DBS);
    let mut seen = BTreeSet::new();
    let mut types = BTreeSet::new();
    for line in String::from_utf8(o.stdout).unwrap().lines() {
        let j: Json = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let db = j["db"].as_u64().unwrap() as u32;
        let key = bytes(&j["key"]);
        let ty = j["type"].as_str().unwrap();
        types.insert(ty.to_string());
        let entry = &expected.keys[&(db, key.clone())];
        assert_eq!(
            to_value(ty, &j["value"]),
            entry.value,
            "db{db} {:?}",
            String::from_utf8_lossy(&key)
        );
        match (j["expire_at_ms"].as_i64(), entry.expire_at_ms) {
            (None, None) => {}
            (Some(a), Some(b)) => assert!((a - b).abs() < 3000),
            (a, b) => panic!("expiry {a:?} vs {b:?}"),
        }
        seen.insert((db, key));
    }
    assert_eq!(seen.len(), expected.len());
    assert_eq!(
        types,
        ["hash", "list", "set", "stream", "string", "zset"]
            .map(String::from)
            .into()
    );
    // Filters: one db, one key pattern, mapped to db 5.
    let o = cli(&[
        "rdb",
        "dump",
        "--format",
        "json",
        "--db",
        "1",
        "--key",
        "list:*",
        "--map-db",
        "1=5",
        file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<Json> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let want = expected
        .keys
        .keys()
        .filter(|(db, k)| *db == 1 && k.starts_with(b"list:"))
        .count();
    assert!(want > 0);
    assert_eq!(lines.len(), want);
    for l in &lines {
        assert_eq!(l["db"], 5);
        assert!(l["key"].as_str().unwrap().starts_with("list:"));
    }
}

#[test]
fn stats_counts_keys_per_db_and_type() {
    let (src, file) = saved(Flavor::Redis6_2);
    let o = cli(&["rdb", "stats", "--top", "5", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let snap = Snapshot::take(&src, DBS);
    let with_ttl = snap
        .keys
        .values()
        .filter(|e| e.expire_at_ms.is_some())
        .count();
    assert!(
        text.contains(&format!("keys: {} ({with_ttl} with TTL)", snap.len())),
        "{text}"
    );
    assert!(text.contains("checksum verified"), "{text}");
    // Per db and type: the counts match the server's.
    for db in 0..DBS {
        for ty in ["string", "list", "hash", "set", "zset", "stream"] {
            let n = snap
                .keys
                .iter()
                .filter(|((d, _), e)| {
                    *d == db
                        && matches!(
                            (&e.value, ty),
                            (Value::String(_), "string")
                                | (Value::List(_), "list")
                                | (Value::Hash(_), "hash")
                                | (Value::Set(_), "set")
                                | (Value::ZSet(_), "zset")
                                | (Value::Stream(_), "stream")
                        )
                })
                .count();
            let row = text
                .lines()
                .find(|l| {
                    let w: Vec<&str> = l.split_whitespace().collect();
                    w.len() == 6 && w[0] == db.to_string() && w[1] == ty
                })
                .unwrap_or_else(|| panic!("no row db{db} {ty}: {text}"));
            assert_eq!(row.split_whitespace().nth(2), Some(n.to_string().as_str()));
        }
    }
    let top = text.split("biggest keys:").nth(1).expect("biggest keys");
    assert_eq!(top.lines().filter(|l| !l.trim().is_empty()).count(), 6);
    // The 100 KiB strings are LZF-compressed in the file; the biggest key records are the
    // 300-element collections and streams.
    let file_len = std::fs::metadata(&file).unwrap().len();
    let total: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("keys: "))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(total > 0 && total < file_len, "{total} vs {file_len}");
}

/// A bad file: exit status 1 and one line `redis-migrate: <file>: <error with offset>`.
fn assert_one_line_error(o: &Output, file: &Path, needle: &str) {
    assert_eq!(o.status.code(), Some(1), "{}", stderr(o));
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    let prefix = format!("redis-migrate: {}: ", file.display());
    assert!(lines[0].starts_with(&prefix), "{err}");
    assert!(lines[0].contains(needle), "{err}");
}

#[test]
fn bad_files_fail_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    // Truncated: a real file cut in the middle of its keys.
    let (_src, file) = saved(Flavor::Redis7_0);
    let data = std::fs::read(&file).unwrap();
    let cut = dir.path().join("truncated.rdb");
    std::fs::write(&cut, &data[..data.len() / 2]).unwrap();
    for cmd in [
        &["rdb", "stats"][..],
        &["rdb", "dump"],
        &["rdb", "dump", "--format", "json"],
    ] {
        let mut args = cmd.to_vec();
        args.push(cut.to_str().unwrap());
        let o = cli(&args);
        assert_one_line_error(&o, &cut, "truncated");
        assert!(stderr(&o).contains(" offset "), "{}", stderr(&o));
    }
    // A flipped byte: checksum mismatch (or a corrupt value).
    let mut flipped = data.clone();
    let at = data.len() - 20;
    flipped[at] ^= 0x55;
    let bad = dir.path().join("flipped.rdb");
    std::fs::write(&bad, &flipped).unwrap();
    assert_one_line_error(
        &cli(&["rdb", "stats", bad.to_str().unwrap()]),
        &bad,
        "offset",
    );
    // Not an RDB file.
    let junk = dir.path().join("junk.rdb");
    std::fs::write(&junk, b"hello world, not an rdb").unwrap();
    assert_one_line_error(
        &cli(&["rdb", "dump", junk.to_str().unwrap()]),
        &junk,
        "magic",
    );
    // Missing file.
    let missing = dir.path().join("missing.rdb");
    assert_one_line_error(
        &cli(&["rdb", "stats", missing.to_str().unwrap()]),
        &missing,
        "No such file",
    );
    // Bad arguments: usage error.
    let o = cli(&[
        "rdb",
        "dump",
        "--target-version",
        "seven",
        cut.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // The deliberately corrupt files of the corpus.
    if let Some(root) = corpus() {
        for name in ["redis/corrupt_ziplist.rdb", "redis/corrupt_empty_keys.rdb"] {
            let f = root.join(name);
            let o = cli(&["rdb", "dump", f.to_str().unwrap()]);
            if name.contains("ziplist") {
                assert_one_line_error(&o, &f, "offset");
            } else {
                // Empty collections decode; nothing is written for them.
                assert!(o.status.success(), "{}", stderr(&o));
                assert!(stderr(&o).contains("empty"), "{}", stderr(&o));
            }
        }
    } else {
        eprintln!("no rdb-corpus: skipping the corpus files");
    }
}

#[test]
fn module_values_are_reported() {
    let Some(root) = corpus() else {
        eprintln!("no rdb-corpus: skipping");
        return;
    };
    let f = root.join("redis-rdb-tools/redis_40_with_module.rdb");
    let o = cli(&[
        "rdb",
        "dump",
        f.to_str().unwrap(),
        "--target-version",
        "7.0",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("ReJSON-RL") && err.contains("needs RESTORE"),
        "{err}"
    );
    let o = cli(&["rdb", "dump", "--format", "json", f.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let module = text
        .lines()
        .map(|l| serde_json::from_str::<Json>(l).unwrap())
        .find(|j| j["type"] == "module")
        .expect("a module line");
    assert_eq!(module["value"]["module"], "ReJSON-RL");
    assert!(!bytes(&module["value"]["raw"]).is_empty());
    // --restore-modules: RESTORE of the raw value, footer set to the target's RDB version.
    let o = cli(&[
        "rdb",
        "dump",
        f.to_str().unwrap(),
        "--target-version",
        "7.0",
        "--restore-modules",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("1 module values written as RESTORE"),
        "{}",
        stderr(&o)
    );
    let head = b"*4\r\n$7\r\nRESTORE\r\n$3\r\nfoo\r\n$1\r\n0\r\n$";
    let at = o
        .stdout
        .windows(head.len())
        .position(|w| w == head)
        .expect("a RESTORE command")
        + head.len();
    let rest = &o.stdout[at..];
    let crlf = rest.windows(2).position(|w| w == b"\r\n").unwrap();
    let len: usize = std::str::from_utf8(&rest[..crlf]).unwrap().parse().unwrap();
    let payload = &rest[crlf + 2..crlf + 2 + len];
    let p = rdb_parser::dump::split(payload, true).expect("a valid DUMP payload");
    assert_eq!(p.type_byte(), 7);
    assert_eq!(&payload[len - 10..len - 8], &10u16.to_le_bytes());
}

#[test]
fn a_closed_pipe_stops_quietly() {
    use std::io::Read;
    let (_src, file) = saved(Flavor::Redis6_2);
    // `redis-migrate rdb dump FILE | head -c 100`: several MB of output, the reader leaves.
    let mut child = Command::new(BIN)
        .args(["rdb", "dump", "--format", "json"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 100];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("Broken pipe"), "{}", stderr(&o));
    assert!(first.starts_with(b"{\"db\":0,"));
}
