//! Scan mode (issue 14): big streams and big hashes with field TTLs read in pieces
//! (`XRANGE` chunks and the stream's groups; `HSCAN` chunks with `HPEXPIRETIME`) instead of
//! one `DUMP`, against real servers.

use std::time::Duration;

use migrate_core::migrate::TargetConfig;
use migrate_core::migrate::{Migration, Report, ScanOptions, Source, SourceMode, StopReason};
use testkit::{Conn, Flavor, Server, Snapshot};

const TTL_TOLERANCE_MS: i64 = 1000;

/// A source whose user may do everything but replicate (as on managed services).
fn refusing_source(flavor: Flavor) -> Server {
    Server::builder(flavor)
        .config("user", "app on >pw ~* &* +@all -sync -psync")
        .login("app", "pw")
        .start()
}

/// A snapshot copy in scan mode with a 64 KiB big-key threshold.
fn copy_once(source: &Server, target: &Server) -> Report {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let report = rt
        .block_on(async {
            Migration::builder()
                .source(Source::Live(
                    replication_client::Config::new(&source.url()).unwrap(),
                ))
                .target(TargetConfig::parse(&target.url()).unwrap())
                .source_mode(SourceMode::Scan)
                .big_key_bytes(64 << 10)
                .scan_options(
                    ScanOptions::default()
                        .count(50)
                        .chunk_elements(1000)
                        .set_notify_keyspace_events(true)
                        .reconcile_interval(Duration::from_millis(300)),
                )
                .once(true)
                .start()
                .wait()
                .await
        })
        .unwrap();
    assert_eq!(report.stop_reason, StopReason::CaughtUp);
    report
}

/// Calls of `command` on the server since its start (`INFO commandstats`).
fn calls(conn: &mut Conn, command: &str) -> u64 {
    conn.info_field("commandstats", &format!("cmdstat_{command}"))
        .and_then(|v| {
            v.split(',')
                .find_map(|p| p.strip_prefix("calls=").and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

#[test]
fn a_big_stream_with_groups_is_copied_in_pieces() {
    let source = refusing_source(Flavor::Redis7_0);
    let target = Server::start(Flavor::Valkey8_1);
    let mut c = source.connect();
    c.must([
        "EVAL",
        "for i=1,50000 do redis.call('XADD', KEYS[1], '*', 'n', i, 'pad', 'xxxxxxxxxxxxxxxx') end return 1",
        "1",
        "big",
    ]);
    c.must(["XADD", "small", "*", "a", "1"]);
    // Group g1: two consumers with pending entries, some acknowledged.
    c.ok(["XGROUP", "CREATE", "big", "g1", "0"]);
    c.must([
        "XREADGROUP",
        "GROUP",
        "g1",
        "alice",
        "COUNT",
        "3000",
        "STREAMS",
        "big",
        ">",
    ]);
    c.must([
        "XREADGROUP",
        "GROUP",
        "g1",
        "bob",
        "COUNT",
        "1500",
        "STREAMS",
        "big",
        ">",
    ]);
    let Some(ids) = first_ids(&mut c, 10) else {
        panic!("no entries")
    };
    let mut ack = vec!["XACK".to_string(), "big".into(), "g1".into()];
    ack.extend(ids[..5].iter().cloned());
    c.must(ack);
    // Delivered again: a delivery count of 2, owned by bob now.
    c.must([
        "XCLAIM",
        "big",
        "g1",
        "bob",
        "0",
        ids[6].as_str(),
        ids[7].as_str(),
    ]);
    // A pending entry deleted from the stream.
    c.must(["XDEL", "big", ids[8].as_str()]);
    // Group g2: from the middle, one consumer with pending entries, one idle consumer.
    c.ok(["XGROUP", "CREATE", "big", "g2", ids[9].as_str()]);
    c.must([
        "XREADGROUP",
        "GROUP",
        "g2",
        "carol",
        "COUNT",
        "200",
        "STREAMS",
        "big",
        ">",
    ]);
    c.must(["XGROUP", "CREATECONSUMER", "big", "g2", "dave"]);
    c.must(["PEXPIRE", "big", "600000"]);
    let xrange_before = calls(&mut c, "xrange");

    let report = copy_once(&source, &target);
    let want = Snapshot::take(&source, 1);
    want.assert_same(&Snapshot::take(&target, 1), TTL_TOLERANCE_MS);
    assert_eq!(report.keys_lossy, 0, "{:?}", report.lossy);
    // Read by XRANGE chunks of 1000, not DUMP.
    let xrange = calls(&mut c, "xrange") - xrange_before;
    assert!(xrange >= 50, "{xrange} XRANGE calls");
    let mut t = target.connect();
    assert_eq!(t.int(["XLEN", "big"]), 49_999);
    assert!(t.int(["PTTL", "big"]) > 500_000);
    // What the Snapshot does not compare: the 7.0 counters of the stream and its groups.
    let info = |c: &mut Conn, args: &[&str], field: &str| -> Vec<String> {
        let r = c.must(args);
        let rows = match r {
            testkit::Reply::Array(v) if args[1] == "GROUPS" => v,
            other => vec![other],
        };
        rows.into_iter()
            .map(|row| match row {
                testkit::Reply::Array(kv) => kv
                    .chunks(2)
                    .find(|p| p[0].text() == field)
                    .map(|p| format!("{:?}", p[1]))
                    .unwrap_or_default(),
                other => format!("{other:?}"),
            })
            .collect()
    };
    for (args, field) in [
        (&["XINFO", "STREAM", "big"][..], "entries-added"),
        (&["XINFO", "STREAM", "big"][..], "max-deleted-entry-id"),
        (&["XINFO", "GROUPS", "big"][..], "entries-read"),
    ] {
        let want = info(&mut c, args, field);
        assert!(want.iter().all(|v| !v.is_empty()), "{field}: {want:?}");
        assert_eq!(want, info(&mut t, args, field), "{field}");
    }
}

/// The first `n` entry ids of stream `big`.
fn first_ids(c: &mut Conn, n: usize) -> Option<Vec<String>> {
    let r = c.must(["XRANGE", "big", "-", "+", "COUNT", &n.to_string()]);
    let testkit::Reply::Array(entries) = r else {
        return None;
    };
    Some(
        entries
            .into_iter()
            .filter_map(|e| match e {
                testkit::Reply::Array(mut p) if p.len() == 2 => {
                    p.truncate(1);
                    p.pop().map(|id| id.text())
                }
                _ => None,
            })
            .collect(),
    )
}

/// A 5000-field hash, every third field with a TTL.
fn fill_hash_with_field_ttls(c: &mut Conn) {
    for i in 0..10 {
        let mut args = vec!["HSET".to_string(), "bighash".into()];
        for j in 0..500 {
            args.push(format!("f{}", i * 500 + j));
            args.push("v".repeat(40));
        }
        c.must(args);
    }
    let mut exp = vec![
        "HPEXPIRE".to_string(),
        "bighash".into(),
        "900000".into(),
        "FIELDS".into(),
    ];
    let fields: Vec<String> = (0..5000).step_by(3).map(|i| format!("f{i}")).collect();
    exp.push(fields.len().to_string());
    exp.extend(fields);
    c.must(exp);
    c.must(["HSET", "smallhash", "a", "1", "b", "2"]);
    c.must(["HPEXPIRE", "smallhash", "800000", "FIELDS", "1", "a"]);
}

#[test]
fn field_ttls_of_a_big_hash_are_kept_where_the_target_has_them() {
    let source = refusing_source(Flavor::Valkey9_1);
    let target = Server::start(Flavor::Valkey9_1);
    let mut c = source.connect();
    fill_hash_with_field_ttls(&mut c);
    let report = copy_once(&source, &target);
    Snapshot::take(&source, 1).assert_same(&Snapshot::take(&target, 1), TTL_TOLERANCE_MS);
    assert_eq!(report.keys_lossy, 0, "{:?}", report.lossy);
    assert!(calls(&mut c, "hscan") >= 5);
    let ttl = target
        .connect()
        .must(["HPTTL", "bighash", "FIELDS", "2", "f3", "f4"]);
    let testkit::Reply::Array(t) = ttl else {
        panic!("{ttl:?}")
    };
    assert!(
        matches!(t[0], testkit::Reply::Int(n) if n > 800_000),
        "{t:?}"
    );
    assert_eq!(t[1], testkit::Reply::Int(-1));
}

#[test]
fn field_ttls_of_a_big_hash_into_an_older_target_are_named_lossy() {
    let source = refusing_source(Flavor::Valkey9_1);
    let target = Server::start(Flavor::Redis7_0);
    let mut c = source.connect();
    fill_hash_with_field_ttls(&mut c);
    let report = copy_once(&source, &target);
    let mut t = target.connect();
    assert_eq!(t.int(["HLEN", "bighash"]), 5000);
    assert!(calls(&mut c, "hscan") >= 5);
    let lossy: Vec<&[u8]> = report.lossy.iter().map(|l| &l.key[..]).collect();
    assert!(lossy.contains(&&b"bighash"[..]), "{:?}", report.lossy);
    assert!(lossy.contains(&&b"smallhash"[..]), "{:?}", report.lossy);
    assert_eq!(report.keys_lossy, 2, "{:?}", report.lossy);
}

/// A source user refused `HPEXPIRETIME` and `XINFO CONSUMERS`: the big hash and the big
/// stream are still copied, each named lossy with what could not be read.
#[test]
fn what_the_source_refuses_to_tell_is_named_lossy() {
    let source = Server::builder(Flavor::Valkey9_1)
        .config(
            "user",
            "app on >pw ~* &* +@all -sync -psync -hpexpiretime -xinfo|consumers",
        )
        .login("app", "pw")
        .start();
    let target = Server::start(Flavor::Valkey9_1);
    let mut c = source.connect();
    fill_hash_with_field_ttls(&mut c);
    c.must([
        "EVAL",
        "for i=1,5000 do redis.call('XADD', KEYS[1], '*', 'n', i, 'pad', 'xxxxxxxxxxxxxxxxxxxxxxxx') end return 1",
        "1",
        "bigstream",
    ]);
    c.ok(["XGROUP", "CREATE", "bigstream", "g", "0"]);
    c.must([
        "XREADGROUP",
        "GROUP",
        "g",
        "c1",
        "COUNT",
        "10",
        "STREAMS",
        "bigstream",
        ">",
    ]);
    let report = copy_once(&source, &target);
    let mut t = target.connect();
    assert_eq!(t.int(["HLEN", "bighash"]), 5000);
    assert_eq!(t.int(["XLEN", "bigstream"]), 5000);
    let what = |key: &[u8]| {
        report
            .lossy
            .iter()
            .find(|l| &l.key[..] == key)
            .map(|l| l.what.clone())
            .unwrap_or_else(|| panic!("{key:?} not lossy: {:?}", report.lossy))
    };
    assert!(
        what(b"bighash").contains("field TTLs not read"),
        "{}",
        what(b"bighash")
    );
    let s = what(b"bigstream");
    assert!(s.contains("XINFO CONSUMERS") && s.contains("NOPERM"), "{s}");
}
