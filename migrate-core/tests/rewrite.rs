//! The rewrite module against real servers: fill a server with every type in compact and
//! large encodings (TTLs, 3 dbs, streams with groups and pending entries), SAVE, decode,
//! rewrite as commands for a target version, load the RESP into a fresh server over a raw
//! TCP connection (every reply checked), and compare key by key.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use migrate_core::rewrite::{Done, KeyStatus, RespWriter, RewriteOptions, RewriteStats, Rewriter};
use migrate_core::ServerVersion;
use rdb_parser::{Options, RdbReader};
use resp_codec::{FrameDecoder, Limits};
use testkit::{Conn, Dataset, Flavor, Reply, Server, Snapshot};

const DBS: u32 = 3;
/// Expiries are compared through PTTL read at slightly different times.
const TTL_TOLERANCE_MS: i64 = 3000;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn version(server: &Server) -> ServerVersion {
    let info = server.connect().must(["INFO", "server"]).text();
    ServerVersion::from_info(&info).expect("INFO server without a version")
}

/// A server whose compact encodings stop at 64 entries / 64-byte values, so that the small
/// dataset keys (≤ 12 elements) are compact and the big ones (300 elements, 70+ byte values)
/// are not.
fn start(flavor: Flavor) -> Server {
    let server = Server::start(flavor);
    let mut c = server.connect();
    for (name, value) in [
        ("hash-max-ziplist-entries", "64"),
        ("hash-max-ziplist-value", "64"),
        ("zset-max-ziplist-entries", "64"),
        ("zset-max-ziplist-value", "64"),
        ("list-max-ziplist-size", "64"),
        ("set-max-intset-entries", "64"),
    ] {
        c.ok(["CONFIG", "SET", name, value]);
    }
    // Listpack sets exist from 7.2 (Valkey 8+) on.
    if flavor.has_listpack_sets() {
        c.ok(["CONFIG", "SET", "set-max-listpack-entries", "64"]);
        c.ok(["CONFIG", "SET", "set-max-listpack-value", "64"]);
    }
    server
}

/// Every key's `OBJECT ENCODING`, by type prefix.
fn encodings(server: &Server) -> BTreeSet<String> {
    let mut c = server.connect();
    let mut out = BTreeSet::new();
    for db in 0..DBS {
        c.ok(["SELECT".to_string(), db.to_string()]);
        let Reply::Array(keys) = c.must(["KEYS", "*"]) else {
            panic!("KEYS")
        };
        for k in keys {
            let k = k.as_bytes().unwrap().to_vec();
            let ty = c.must([b"TYPE".as_slice(), &k]).text();
            let enc = c.must([b"OBJECT".as_slice(), b"ENCODING", &k]).text();
            out.insert(format!("{ty}:{enc}"));
        }
    }
    out
}

/// Extra keys the dataset lacks: an empty string, a binary key, tricky scores, an empty
/// stream with a consumer group and a deleted-entry history, a stream emptied by XDEL.
fn fill_extras(server: &Server) {
    let mut c = server.connect();
    c.ok(["SELECT", "1"]);
    c.ok(["SET", "extra:empty", ""]);
    c.ok([b"SET".as_slice(), b"extra:\xff\x00bin", b"\x00\xff"]);
    c.int([
        "ZADD",
        "extra:scores",
        "0.30000000000000004",
        "a",
        "1e300",
        "b",
        "-2.5e-300",
        "c",
        "inf",
        "d",
        "0",
        "e",
        "3.141592653589793",
        "f",
    ]);
    c.must([
        "XGROUP",
        "CREATE",
        "extra:empty-stream",
        "g",
        "$",
        "MKSTREAM",
    ]);
    c.must(["XADD", "extra:emptied", "5-1", "f", "v"]);
    c.must(["XADD", "extra:emptied", "6-1", "f", "v"]);
    c.int(["XDEL", "extra:emptied", "5-1", "6-1"]);
    c.ok(["SET", "extra:ttl", "v", "PX", "7200000"]);
}

fn decode(rdb: &[u8]) -> impl Iterator<Item = rdb_parser::Event> + '_ {
    RdbReader::new(rdb, Options::default()).map(|e| e.expect("decoding the SAVEd file"))
}

/// Rewrites the file into RESP for `target`; small command budgets so that big keys are
/// split (300-element collections, 100 KiB strings).
fn rewrite(rdb: &[u8], target: ServerVersion) -> (BytesMut, RewriteStats) {
    let opts = RewriteOptions::default()
        .max_command_args(100)
        .max_command_bytes(16 * 1024);
    rewrite_with(rdb, target, opts)
}

fn rewrite_with(
    rdb: &[u8],
    target: ServerVersion,
    opts: RewriteOptions,
) -> (BytesMut, RewriteStats) {
    let mut rw = Rewriter::new(target, opts, now_ms());
    let mut resp = RespWriter::new();
    let mut out = BytesMut::new();
    for ev in decode(rdb) {
        let outcome = rw.push(&ev, &mut |cmd| resp.encode(&cmd, &mut out));
        if let Some(Done::Key(r)) = outcome {
            assert!(
                r.status == KeyStatus::Written,
                "{:?}: {}",
                String::from_utf8_lossy(&r.key),
                r.status
            );
            assert!(
                r.losses.is_empty(),
                "{:?}: {:?}",
                String::from_utf8_lossy(&r.key),
                r.losses
            );
        }
    }
    (out, rw.stats().clone())
}

/// Writes RESP commands to `server` over a raw TCP connection and checks every reply.
fn load(server: &Server, resp: &[u8]) -> usize {
    // The commands, to count the replies and to name a failing one.
    let mut all = BytesMut::from(resp);
    let mut dec = FrameDecoder::new(Limits::default());
    let mut commands = Vec::new();
    while let Some((frame, _)) = dec.decode(&mut all).expect("our RESP output decodes") {
        let args = frame.into_command().expect("a command");
        commands.push(
            args.iter()
                .take(4)
                .map(|a| String::from_utf8_lossy(&a[..a.len().min(40)]).into_owned())
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    assert!(all.is_empty(), "trailing bytes in the RESP output");
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let payload = resp.to_vec();
    let sender = std::thread::spawn(move || writer.write_all(&payload));
    let mut buf = BytesMut::new();
    let mut dec = FrameDecoder::new(Limits::default());
    let mut replies = 0;
    let mut chunk = vec![0u8; 64 * 1024];
    while replies < commands.len() {
        while let Some((frame, _)) = dec.decode(&mut buf).unwrap() {
            assert!(
                !frame.is_error(),
                "{}: reply to `{}`: {frame:?}",
                server.flavor(),
                commands[replies]
            );
            replies += 1;
        }
        if replies == commands.len() {
            break;
        }
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
    sender.join().unwrap().unwrap();
    replies
}

fn roundtrip(from: Flavor, to: Flavor) {
    let src = start(from);
    // Field TTLs where both sides have them (the snapshots compare them too).
    let mut dataset = Dataset::small();
    dataset.field_ttls = from.has_field_ttl() && to.has_field_ttl();
    let stats = dataset.fill(&src);
    fill_extras(&src);
    if from == to {
        // The dataset must have put every type in both its compact and its large encoding.
        let enc = encodings(&src);
        for want in [
            "hash:hashtable",
            "zset:skiplist",
            "set:hashtable",
            "set:intset",
            "list:quicklist",
        ] {
            assert!(enc.contains(want), "{from}: no {want} in {enc:?}");
        }
        let compact = if from == Flavor::Redis6_2 {
            "ziplist"
        } else {
            "listpack"
        };
        for ty in ["hash", "zset"] {
            assert!(enc.contains(&format!("{ty}:{compact}")), "{from}: {enc:?}");
        }
    }
    let rdb = src.save();
    let dst = start(to);
    let target = version(&dst);
    let (resp, rstats) = rewrite(&rdb, target);
    assert!(rstats.keys_written >= stats.keys);
    let replies = load(&dst, &resp);
    assert!(replies as u64 >= rstats.commands);
    let expected = Snapshot::take(&src, DBS);
    let actual = Snapshot::take(&dst, DBS);
    assert_eq!(expected.len() as u64, stats.keys + 6);
    expected.assert_same(&actual, TTL_TOLERANCE_MS);
}

#[test]
fn same_version_redis_6_2() {
    roundtrip(Flavor::Redis6_2, Flavor::Redis6_2);
}

#[test]
fn same_version_redis_7_0() {
    roundtrip(Flavor::Redis7_0, Flavor::Redis7_0);
}

#[test]
fn same_version_redis_7_4() {
    roundtrip(Flavor::Redis7_4, Flavor::Redis7_4);
}

#[test]
fn same_version_valkey_8_1() {
    roundtrip(Flavor::Valkey8_1, Flavor::Valkey8_1);
}

#[test]
fn same_version_valkey_9_1() {
    roundtrip(Flavor::Valkey9_1, Flavor::Valkey9_1);
}

#[test]
fn downgrade_valkey_9_1_to_redis_6_2() {
    roundtrip(Flavor::Valkey9_1, Flavor::Redis6_2);
}

#[test]
fn downgrade_redis_7_0_to_redis_6_2() {
    roundtrip(Flavor::Redis7_0, Flavor::Redis6_2);
}

#[test]
fn upgrade_redis_6_2_to_valkey_9_1() {
    roundtrip(Flavor::Redis6_2, Flavor::Valkey9_1);
}

#[test]
fn downgrade_redis_7_4_to_redis_6_2() {
    roundtrip(Flavor::Redis7_4, Flavor::Redis6_2);
}

#[test]
fn redis_7_4_to_valkey_9_1_and_back() {
    roundtrip(Flavor::Redis7_4, Flavor::Valkey9_1);
    roundtrip(Flavor::Valkey9_1, Flavor::Redis7_4);
}

/// With `replace`, keys of another type or value already on the target are replaced, and
/// function libraries too.
#[test]
fn replace_overwrites_existing_keys() {
    let src = start(Flavor::Redis7_0);
    Dataset::small().fill(&src);
    fill_extras(&src);
    let lib = "#!lua name=lib\nredis.register_function('f', function() return 'new' end)";
    src.connect().must(["FUNCTION", "LOAD", lib]);
    let rdb = src.save();
    let expected = Snapshot::take(&src, DBS);

    let dst = start(Flavor::Redis7_0);
    let mut c = dst.connect();
    c.must([
        "FUNCTION",
        "LOAD",
        "#!lua name=lib\nredis.register_function('f', function() return 'old' end)",
    ]);
    // Every other key exists on the target already: as a list, or (lists) as a string,
    // with a TTL that must disappear.
    for (i, (db, key)) in expected.keys.keys().enumerate().filter(|(i, _)| i % 2 == 0) {
        c.ok(["SELECT".to_string(), db.to_string()]);
        if key.starts_with(b"list:") {
            c.ok([b"SET".as_slice(), key, b"stale"]);
        } else {
            c.int([b"RPUSH".as_slice(), key, b"stale", i.to_string().as_bytes()]);
        }
        c.int([b"PEXPIRE".as_slice(), key, b"99999999"]);
    }
    let opts = RewriteOptions::default()
        .max_command_args(100)
        .max_command_bytes(16 * 1024)
        .replace(true);
    let (resp, _) = rewrite_with(&rdb, version(&dst), opts);
    load(&dst, &resp);
    expected.assert_same(&Snapshot::take(&dst, DBS), TTL_TOLERANCE_MS);
    assert_eq!(
        dst.connect().must(["FCALL", "f", "0"]),
        Reply::Bulk(b"new".to_vec())
    );
}

/// Streams too large to buffer are written as they are decoded: everything but the pending
/// entries of deleted stream entries is recreated, and those are reported.
#[test]
fn streams_written_without_buffering() {
    let src = start(Flavor::Valkey8_1);
    Dataset::small().fill(&src);
    let rdb = src.save();
    let dst = start(Flavor::Valkey8_1);
    let opts = RewriteOptions::default().stream_buffer_bytes(0);
    let mut rw = Rewriter::new(version(&dst), opts, now_ms());
    let mut resp = RespWriter::new();
    let mut out = BytesMut::new();
    let mut unverified = BTreeSet::new();
    for ev in decode(&rdb) {
        if let Some(Done::Key(r)) = rw.push(&ev, &mut |cmd| resp.encode(&cmd, &mut out)) {
            for l in &r.losses {
                assert!(
                    matches!(l, migrate_core::rewrite::Loss::PendingUnverified { .. }),
                    "{l}"
                );
                unverified.insert((r.db, r.key.to_vec()));
            }
        }
    }
    assert!(!unverified.is_empty());
    load(&dst, &out);
    let diff = Snapshot::take(&src, DBS).diff(&Snapshot::take(&dst, DBS), TTL_TOLERANCE_MS);
    assert!(
        !diff.is_empty(),
        "the dataset has pending entries of deleted entries"
    );
    for d in &diff {
        assert!(
            d.contains("\"stream:") && d.contains("value differs"),
            "{d}"
        );
    }
}

/// `HPEXPIRETIME key FIELDS n f...` of every field.
fn field_expiries(c: &mut Conn, key: &str, fields: &[&str]) -> Reply {
    let mut args = vec!["HPEXPIRETIME".to_string(), key.to_string(), "FIELDS".into()];
    args.push(fields.len().to_string());
    args.extend(fields.iter().map(|f| f.to_string()));
    c.must(args)
}

#[test]
fn hash_field_ttls_valkey_9() {
    let src = start(Flavor::Valkey9_1);
    let mut c = src.connect();
    let at = now_ms() + 3_600_000;
    // Compact and large hashes, fields with and without TTL, a key TTL too.
    c.int(["HSET", "small", "a", "1", "b", "2", "c", "3"]);
    c.must(["HSETEX", "small", "PX", "5000000", "FIELDS", "1", "d", "4"]);
    c.must([
        "HPEXPIREAT".to_string(),
        "small".into(),
        at.to_string(),
        "FIELDS".into(),
        "2".into(),
        "a".into(),
        "b".into(),
    ]);
    let mut big = vec!["HSET".to_string(), "big".into()];
    for i in 0..200 {
        big.push(format!("f{i}"));
        big.push(format!("v{i}"));
    }
    c.int(big);
    for i in (0..200).step_by(3) {
        c.must([
            "HEXPIRE".to_string(),
            "big".into(),
            (3600 + i).to_string(),
            "FIELDS".into(),
            "1".into(),
            format!("f{i}"),
        ]);
    }
    c.int(["PEXPIRE", "big", "9000000"]);
    let rdb = src.save();
    let dst = start(Flavor::Valkey9_1);
    let (resp, stats) = rewrite(&rdb, version(&dst));
    assert_eq!(stats.keys_written, 2);
    load(&dst, &resp);
    Snapshot::take(&src, 1).assert_same(&Snapshot::take(&dst, 1), TTL_TOLERANCE_MS);
    let mut d = dst.connect();
    let fields: Vec<String> = (0..200).map(|i| format!("f{i}")).collect();
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    for (key, fields) in [("small", &["a", "b", "c", "d"][..]), ("big", &fields[..])] {
        let want = field_expiries(&mut c, key, fields);
        assert_eq!(want, field_expiries(&mut d, key, fields), "{key}");
        assert!(matches!(&want, Reply::Array(v) if v.contains(&Reply::Int(-1))));
    }
    // Into a target without field TTLs: written without them, and reported.
    let older = Server::start(Flavor::Valkey8_1);
    let mut rw = Rewriter::new(version(&older), RewriteOptions::default(), now_ms());
    let mut resp = RespWriter::new();
    let mut out = BytesMut::new();
    let mut lost = 0;
    for ev in decode(&rdb) {
        if let Some(Done::Key(r)) = rw.push(&ev, &mut |cmd| resp.encode(&cmd, &mut out)) {
            lost += r.losses.len();
        }
    }
    assert_eq!(lost, 2);
    load(&older, &out);
    assert_eq!(older.connect().int(["HLEN", "big"]), 200);
}

#[test]
fn functions_redis_7_0() {
    let src = Server::start(Flavor::Redis7_0);
    let mut c = src.connect();
    let code = "#!lua name=mylib\n\
                redis.register_function('myfunc', function(keys, args) return args[1] end)\n\
                redis.register_function{function_name='ro', callback=function() return 1 end, flags={'no-writes'}}";
    c.must(["FUNCTION", "LOAD", code]);
    c.ok(["SET", "k", "v"]);
    let rdb = src.save();
    let dst = Server::start(Flavor::Redis7_0);
    let (resp, stats) = rewrite(&rdb, version(&dst));
    assert_eq!(stats.functions_loaded, 1);
    load(&dst, &resp);
    // FUNCTION LIST orders a library's functions by hash: compare them sorted.
    let list = |s: &Server| {
        let Reply::Array(mut libs) = s.connect().must(["FUNCTION", "LIST", "WITHCODE"]) else {
            panic!("FUNCTION LIST")
        };
        for lib in &mut libs {
            if let Reply::Array(kv) = lib {
                for pair in kv.chunks_mut(2) {
                    if let [Reply::Bulk(k), Reply::Array(fs)] = pair {
                        if k == b"functions" {
                            fs.sort_by_key(|f| format!("{f:?}"));
                        }
                    }
                }
            }
        }
        libs
    };
    assert_eq!(list(&src).len(), 1);
    assert_eq!(list(&src), list(&dst));
    assert_eq!(
        dst.connect().must(["FCALL", "myfunc", "0", "hello"]),
        Reply::Bulk(b"hello".to_vec())
    );
    Snapshot::take(&src, 1).assert_same(&Snapshot::take(&dst, 1), TTL_TOLERANCE_MS);
}

/// Every decodable corpus file rewrites without a panic, for an old and a new target.
#[test]
fn corpus_files_rewrite() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/rdb-corpus");
    if !root.is_dir() {
        eprintln!("skipping: no {}", root.display());
        return;
    }
    let mut files = Vec::new();
    let mut dirs = vec![root];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rdb") {
                files.push(p);
            }
        }
    }
    assert!(!files.is_empty());
    let mut rewritten = 0;
    for f in &files {
        let data = std::fs::read(f).unwrap();
        for target in [
            ServerVersion::new(migrate_core::ServerFamily::Redis, 3, 2, 0),
            ServerVersion::new(migrate_core::ServerFamily::Valkey, 9, 1, 0),
        ] {
            let mut rw = Rewriter::new(target, RewriteOptions::default().max_command_args(7), 0);
            let mut resp = RespWriter::new();
            let mut out = BytesMut::new();
            let mut ok = true;
            for ev in RdbReader::new(&data[..], Options::default()) {
                match ev {
                    Ok(ev) => {
                        rw.push(&ev, &mut |cmd| resp.encode(&cmd, &mut out));
                    }
                    Err(_) => {
                        ok = false;
                        break;
                    }
                }
            }
            rewritten += usize::from(ok);
        }
    }
    assert!(
        rewritten > files.len(),
        "{rewritten} of {} files",
        files.len()
    );
}
