//! Real servers: fill every type in compact and large encodings, SAVE, decode, compare with
//! what the server holds; DUMP payloads parse; built payloads RESTORE.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{decode_stepwise, model, Key, Value};
use rdb_parser::{dump, Checksum, Event, Options, RdbType};
use testkit::{Conn, Flavor, Reply, Server};

/// An absolute expiry far in the future (2100-01-01).
const EXPIRE_AT: i64 = 4_102_444_800_000;
/// A field expiry (Redis 7.4 and Valkey 9 hash field TTLs).
const FIELD_EXPIRE_AT: u64 = 4_102_444_800_123;

fn ints() -> Vec<String> {
    // Every ziplist/listpack integer width, both signs, and the edges.
    [
        0i64,
        1,
        12,
        13,
        127,
        128,
        -1,
        -128,
        -129,
        4095,
        -4096,
        4096,
        -4097,
        32767,
        -32768,
        65535,
        8388607,
        -8388608,
        8388608,
        2147483647,
        -2147483648,
        2147483648,
        i64::MAX,
        i64::MIN,
    ]
    .iter()
    .map(|i| i.to_string())
    .collect()
}

/// Deterministic incompressible bytes.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn fill(c: &mut Conn, flavor: Flavor, p: &str) {
    let k = |s: &str| format!("{p}{s}");
    c.ok(["SET", &k("str"), "hello"]);
    c.ok(["SET", &k("int"), "12345"]);
    c.ok(["SET", &k("neg"), "-42"]);
    c.ok(["SET", &k("empty"), ""]);
    c.ok(["SET", &k("lzf"), &"a".repeat(1000)]);
    c.ok([b"SET".to_vec(), k("big").into_bytes(), noise(600_000, 7)]);
    c.ok(["SET", &k("ttl"), "x"]);
    assert_eq!(c.int(["PEXPIREAT", &k("ttl"), &EXPIRE_AT.to_string()]), 1);

    let mut list = vec!["RPUSH".to_string(), k("list"), "a".into(), "".into()];
    list.extend(ints());
    list.push("x".repeat(100));
    c.must(&list);
    let mut big = vec!["RPUSH".to_string(), k("biglist")];
    big.extend((0..3000).map(|i| {
        if i % 3 == 0 {
            format!("e{i}")
        } else {
            i.to_string()
        }
    }));
    c.must(&big);
    c.must([
        "RPUSH".to_string(),
        k("hugeelem"),
        "small".into(),
        "z".repeat(20_000),
    ]);

    c.must([
        "SADD",
        &k("intset"),
        "1",
        "2",
        "3",
        "-5",
        "70000",
        "5000000000",
    ]);
    c.must(["SADD", &k("strset"), "a", "b", "c", "1"]);
    let mut bigset = vec!["SADD".to_string(), k("bigset")];
    bigset.extend((0..700).map(|i| i.to_string()));
    c.must(&bigset);

    c.must([
        "ZADD",
        &k("zset"),
        "1",
        "a",
        "2.5",
        "b",
        "-inf",
        "c",
        "inf",
        "d",
        "1e300",
        "e",
    ]);
    c.must(["ZADD", &k("zset"), "-0.125", "f", "3", "7"]);
    let mut bigz = vec!["ZADD".to_string(), k("bigzset")];
    for i in 0..200 {
        bigz.push(format!("{}.5", i));
        bigz.push(format!("m{i}"));
    }
    c.must(&bigz);

    c.must([
        "HSET",
        &k("hash"),
        "f1",
        "v1",
        "f2",
        "2",
        "f3",
        "",
        "-7",
        "neg",
    ]);
    let mut bigh = vec!["HSET".to_string(), k("bighash")];
    for i in 0..600 {
        bigh.push(format!("field{i}"));
        bigh.push(format!("value{i}"));
    }
    c.must(&bigh);

    c.must(["XADD", &k("stream"), "1-1", "f", "v"]);
    c.must(["XADD", &k("stream"), "2-1", "f", "v", "g", "w"]);
    c.must(["XADD", &k("stream"), "3-1", "f", "v2"]);
    c.must(["XADD", &k("stream"), "4-5", "other", "x"]);
    assert_eq!(c.int(["XDEL", &k("stream"), "2-1"]), 1);
    c.ok(["XGROUP", "CREATE", &k("stream"), "grp", "0"]);
    c.must([
        "XREADGROUP",
        "GROUP",
        "grp",
        "alice",
        "COUNT",
        "2",
        "STREAMS",
        &k("stream"),
        ">",
    ]);
    c.ok(["XGROUP", "CREATE", &k("stream"), "grp2", "$"]);
    c.must(["XADD", &k("emptystream"), "5-5", "a", "b"]);
    c.must(["XDEL", &k("emptystream"), "5-5"]);

    if flavor.has_field_ttl() {
        c.must(["HSET", &k("hfe"), "a", "1", "b", "2", "c", "3"]);
        c.must([
            "HPEXPIREAT",
            &k("hfe"),
            &FIELD_EXPIRE_AT.to_string(),
            "FIELDS",
            "1",
            "a",
        ]);
    }
}

/// Forces the large encodings for every new key.
fn force_large(c: &mut Conn) {
    for (name, v) in [
        ("hash-max-ziplist-entries", "0"),
        ("zset-max-ziplist-entries", "0"),
        ("set-max-intset-entries", "0"),
        ("list-max-ziplist-size", "1"),
    ] {
        c.ok(["CONFIG", "SET", name, v]);
    }
    // Redis 7.2+ and Valkey only.
    let _ = c.cmd(["CONFIG", "SET", "set-max-listpack-entries", "0"]);
}

fn bytes_of(r: &Reply) -> Vec<u8> {
    r.as_bytes()
        .map(|b| b.to_vec())
        .unwrap_or_else(|| panic!("not bytes: {r:?}"))
}

fn array(r: Reply) -> Vec<Reply> {
    match r {
        Reply::Array(a) => a,
        other => panic!("not an array: {other:?}"),
    }
}

fn server_value(c: &mut Conn, key: &[u8]) -> Value {
    let t = c.must([&b"TYPE"[..], key]).text();
    match t.as_str() {
        "string" => Value::String(c.bulk([&b"GET"[..], key]).unwrap()),
        "list" => Value::List(
            array(c.must([&b"LRANGE"[..], key, b"0", b"-1"]))
                .iter()
                .map(bytes_of)
                .collect(),
        ),
        "set" => Value::Set(
            array(c.must([&b"SMEMBERS"[..], key]))
                .iter()
                .map(bytes_of)
                .collect(),
        ),
        "zset" => {
            let a = array(c.must([&b"ZRANGE"[..], key, b"0", b"-1", b"WITHSCORES"]));
            Value::ZSet(
                a.chunks(2)
                    .map(|p| {
                        let s = p[1].text();
                        let score = match s.as_str() {
                            "inf" => f64::INFINITY,
                            "-inf" => f64::NEG_INFINITY,
                            s => s.parse().unwrap(),
                        };
                        (bytes_of(&p[0]), score)
                    })
                    .collect(),
            )
        }
        "hash" => {
            let a = array(c.must([&b"HGETALL"[..], key]));
            Value::Hash(
                a.chunks(2)
                    .map(|p| (bytes_of(&p[0]), (bytes_of(&p[1]), None)))
                    .collect(),
            )
        }
        "stream" => {
            let entries = array(c.must([&b"XRANGE"[..], key, b"-", b"+"]))
                .into_iter()
                .map(|e| {
                    let e = array(e);
                    let fields = array(e[1].clone());
                    (
                        e[0].text(),
                        fields
                            .chunks(2)
                            .map(|p| (bytes_of(&p[0]), bytes_of(&p[1])))
                            .collect(),
                    )
                })
                .collect();
            let length = c.int([&b"XLEN"[..], key]) as u64;
            let groups = array(c.must([&b"XINFO"[..], b"GROUPS", key]))
                .into_iter()
                .map(|g| {
                    let g = array(g);
                    let field = |name: &str| {
                        let i = g.iter().position(|r| r.text() == name).unwrap();
                        g[i + 1].clone()
                    };
                    let name = bytes_of(&field("name"));
                    let pending = match field("pending") {
                        Reply::Int(i) => i as usize,
                        r => panic!("{r:?}"),
                    };
                    let last = field("last-delivered-id").text();
                    let consumers = array(c.must([&b"XINFO"[..], b"CONSUMERS", key, &name]))
                        .into_iter()
                        .map(|c| {
                            let c = array(c);
                            let i = c.iter().position(|r| r.text() == "name").unwrap();
                            bytes_of(&c[i + 1])
                        })
                        .collect();
                    (name, last, pending, consumers)
                })
                .collect();
            Value::Stream {
                entries,
                length,
                groups,
            }
        }
        t => panic!("unexpected type {t}"),
    }
}

fn normalize(v: &Value) -> Value {
    match v {
        // Field TTLs are compared separately.
        Value::Hash(h) => Value::Hash(
            h.iter()
                .map(|(k, (v, _))| (k.clone(), (v.clone(), None)))
                .collect(),
        ),
        Value::ZSet(z) => {
            let mut z = z.clone();
            z.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            Value::ZSet(z)
        }
        Value::Stream {
            entries,
            length,
            groups,
        } => {
            let mut g = groups.clone();
            g.sort();
            for x in &mut g {
                x.3.sort();
            }
            Value::Stream {
                entries: entries.clone(),
                length: *length,
                groups: g,
            }
        }
        v => v.clone(),
    }
}

fn check_flavor(flavor: Flavor) {
    let server = match flavor {
        Flavor::Redis6_2 => Server::start(flavor),
        // DEBUG QUICKLIST-PACKED-THRESHOLD makes large list elements PLAIN quicklist nodes.
        _ => Server::builder(flavor)
            .config("enable-debug-command", "yes")
            .start(),
    };
    let mut c = server.connect();
    if flavor != Flavor::Redis6_2 {
        c.ok(["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "1000"]);
    }
    // LRU idle times are saved with an LRU policy (IDLE opcode), LFU counters with LFU (FREQ).
    let policy = if flavor.is_valkey() {
        "allkeys-lfu"
    } else {
        "allkeys-lru"
    };
    c.ok(["CONFIG", "SET", "maxmemory-policy", policy]);
    for db in 0..3 {
        c.ok(["SELECT", &db.to_string()]);
        fill(&mut c, flavor, "c:");
    }
    force_large(&mut c);
    c.ok(["SELECT", "0"]);
    fill(&mut c, flavor, "h:");
    if flavor != Flavor::Redis6_2 {
        c.must([
            "FUNCTION",
            "LOAD",
            "#!lua name=mylib\nredis.register_function('f', function() return 1 end)",
        ]);
    }
    let rdb = server.save();
    assert_eq!(&rdb[..9], flavor.rdb_magic());
    // Seeds for the fuzz targets: RDB_FUZZ_SEEDS=<dir> writes this file and DUMP payloads.
    let seeds = std::env::var_os("RDB_FUZZ_SEEDS").map(std::path::PathBuf::from);
    if let Some(dir) = &seeds {
        std::fs::create_dir_all(dir.join("rdb_decode")).unwrap();
        std::fs::write(dir.join("rdb_decode").join(format!("{flavor}.rdb")), &rdb).unwrap();
    }

    let opts = Options::default()
        .raw_values(true)
        .max_chunk_items(7)
        .string_piece(100_000);
    let events = rdb_parser::decode_all(&rdb, opts.clone()).unwrap();
    match events.last() {
        Some(Event::Eof(e)) => assert!(matches!(e.checksum, Checksum::Verified(_)), "{e:?}"),
        other => panic!("last event {other:?}"),
    }
    if flavor != Flavor::Redis6_2 {
        assert!(events.iter().any(|e| matches!(e, Event::Function(f)
            if f.code.starts_with(b"#!lua name=mylib"))));
    }
    let keys = model(&events);
    for k in keys.values() {
        if flavor.is_valkey() {
            assert!(
                k.start.lfu_freq.is_some() && k.start.lru_idle.is_none(),
                "{flavor}"
            );
        } else {
            assert!(
                k.start.lru_idle.is_some() && k.start.lfu_freq.is_none(),
                "{flavor}"
            );
        }
    }
    if flavor != Flavor::Redis6_2 {
        // The 20000-byte element is a PLAIN node (container 1) in its quicklist.
        let k = &keys[&(0, b"c:hugeelem".to_vec())];
        assert_eq!(k.start.rdb_type, RdbType::ListQuicklist2);
        assert_eq!(
            &k.raw[..3],
            b"\x12\x02\x02",
            "{flavor}: two nodes, first PACKED"
        );
        // After the first node (a short listpack string): container 1, PLAIN.
        let n = usize::from(k.raw[3]);
        assert!(n < 64);
        assert_eq!(k.raw[4 + n], 1, "{flavor}: PLAIN node");
    }

    // Everything the server holds is in the file, equal.
    let mut seen = BTreeSet::new();
    let mut types = BTreeMap::<RdbType, usize>::new();
    for db in 0..3u32 {
        c.ok(["SELECT", &db.to_string()]);
        for name in array(c.must(["KEYS", "*"])) {
            let name = bytes_of(&name);
            let Key { start, value, .. } = keys
                .get(&(db, name.clone()))
                .unwrap_or_else(|| panic!("{flavor}: key {name:?} of db {db} missing"));
            *types.entry(start.rdb_type).or_default() += 1;
            let sv = server_value(&mut c, &name);
            assert_eq!(
                normalize(value),
                normalize(&sv),
                "{flavor}: key {:?} ({:?})",
                String::from_utf8_lossy(&name),
                start.rdb_type
            );
            let pttl = c.int([&b"PTTL"[..], &name]);
            if name.ends_with(b"ttl") {
                assert_eq!(start.expire_at_ms, Some(EXPIRE_AT));
                assert!(pttl > 0);
            } else {
                assert_eq!(start.expire_at_ms, None);
                assert_eq!(pttl, -1);
            }
            seen.insert((db, name));
        }
    }
    assert_eq!(seen.len(), keys.len(), "{flavor}: extra keys in the file");
    eprintln!("{flavor}: {} keys, types {types:?}", keys.len());
    // Both encodings of every basic type appeared.
    let want: &[RdbType] = match flavor {
        Flavor::Redis6_2 => &[
            RdbType::String,
            RdbType::ListQuicklist,
            RdbType::SetIntset,
            RdbType::Set,
            RdbType::ZSetZiplist,
            RdbType::ZSet2,
            RdbType::HashZiplist,
            RdbType::Hash,
            RdbType::StreamListpacks,
        ],
        Flavor::Redis7_0 => &[
            RdbType::String,
            RdbType::ListQuicklist2,
            RdbType::SetIntset,
            RdbType::Set,
            RdbType::ZSetListpack,
            RdbType::ZSet2,
            RdbType::HashListpack,
            RdbType::Hash,
            RdbType::StreamListpacks2,
        ],
        Flavor::Redis7_4 => &[
            RdbType::String,
            RdbType::ListQuicklist2,
            RdbType::SetIntset,
            RdbType::SetListpack,
            RdbType::Set,
            RdbType::ZSetListpack,
            RdbType::ZSet2,
            RdbType::HashListpack,
            RdbType::Hash,
            RdbType::HashListpackEx,
            RdbType::HashMetadata,
            RdbType::StreamListpacks3,
        ],
        Flavor::Valkey8_1 | Flavor::Valkey9_1 => &[
            RdbType::String,
            RdbType::ListQuicklist2,
            RdbType::SetIntset,
            RdbType::SetListpack,
            RdbType::Set,
            RdbType::ZSetListpack,
            RdbType::ZSet2,
            RdbType::HashListpack,
            RdbType::Hash,
            RdbType::StreamListpacks3,
        ],
        old => panic!("{old} is not in Flavor::ALL"),
    };
    for t in want {
        assert!(types.contains_key(t), "{flavor}: no key of type {t:?}");
    }
    if flavor.has_field_ttl() {
        // Valkey 9 has one encoding with field TTLs; Redis 7.4 a listpack one (small
        // hashes) and a hash table one (forced for the `h:` keys).
        let (small, large) = if flavor.is_valkey() {
            (RdbType::Hash2, RdbType::Hash2)
        } else {
            (RdbType::HashListpackEx, RdbType::HashMetadata)
        };
        for (name, ty) in [(&b"c:hfe"[..], small), (b"h:hfe", large)] {
            let hfe = &keys[&(0, name.to_vec())];
            assert_eq!(hfe.start.rdb_type, ty, "{flavor}: {name:?}");
            let Value::Hash(h) = &hfe.value else { panic!() };
            assert_eq!(h[&b"a".to_vec()], (b"1".to_vec(), Some(FIELD_EXPIRE_AT)));
            assert_eq!(h[&b"b".to_vec()], (b"2".to_vec(), None));
        }
    }

    // Byte-at-a-time feeding gives the same events as the whole buffer (on a prefix-sized
    // sample of the file to keep the test quick: the first keys and the end).
    let (stepped, r) = decode_stepwise(&rdb, 1, opts.clone());
    r.unwrap();
    assert_eq!(stepped, events, "{flavor}: byte-at-a-time events differ");

    // The zero-copy visitor path (whole keys on its fast path, cut keys on the state
    // machine) receives exactly what the events carry, with and without raw values.
    common::check_visit_matches_events(&flavor.to_string(), &rdb, 3).unwrap();

    check_dump(&server, &mut c, flavor, &keys);
}

/// DUMP payloads parse into the same values; payloads built from the file's raw values with
/// a chosen footer RESTORE.
fn check_dump(server: &Server, c: &mut Conn, flavor: Flavor, keys: &BTreeMap<(u32, Vec<u8>), Key>) {
    let _ = server;
    let version: u16 = match flavor {
        Flavor::Redis6_2 => 9,
        Flavor::Redis7_0 => 10,
        Flavor::Redis7_4 => 12,
        Flavor::Valkey8_1 => 11,
        Flavor::Valkey9_1 => 80,
        old => panic!("{old} is not in Flavor::ALL"),
    };
    c.ok(["SELECT", "0"]);
    let mut n = 0;
    for ((db, name), key) in keys {
        if *db != 0 {
            continue;
        }
        let payload = c.bulk([&b"DUMP"[..], name]).unwrap();
        if let Some(dir) = std::env::var_os("RDB_FUZZ_SEEDS").map(std::path::PathBuf::from) {
            let dir = dir.join("dump_payload");
            std::fs::create_dir_all(&dir).unwrap();
            let file = format!(
                "{flavor}-{}",
                String::from_utf8_lossy(name).replace(':', "_")
            );
            std::fs::write(dir.join(file), &payload).unwrap();
        }
        let p = dump::split(&payload, true).unwrap();
        assert_eq!(p.version, version, "{flavor}");
        // The raw value from the file is byte-identical to the DUMP body.
        assert_eq!(
            &p.value[..],
            &key.raw[..],
            "{flavor}: raw value of {name:?}"
        );
        let events = dump::decode(&payload, Options::default()).unwrap();
        let m = model(&events);
        let (_, dk) = m.iter().next().unwrap();
        assert_eq!(
            normalize(&dk.value),
            normalize(&key.value),
            "{flavor}: DUMP of {name:?}"
        );

        // Rebuild with the lowest footer version that knows the type, RESTORE, compare.
        let min = key.start.rdb_type.min_rdb_version() as u16;
        let footer = if flavor.is_valkey() && (12..80).contains(&min) {
            version
        } else {
            min
        };
        let built = dump::build_payload(&key.raw, footer);
        let mut target = b"restored:".to_vec();
        target.extend_from_slice(name);
        c.ok([&b"RESTORE"[..], &target, b"0", &built]);
        assert_eq!(
            normalize(&server_value(c, &target)),
            normalize(&server_value(c, name)),
            "{flavor}: RESTORE of {name:?} with version {footer}"
        );
        n += 1;
    }
    // A wrong CRC is refused by the parser.
    let mut bad = c.bulk(["DUMP", "c:str"]).unwrap();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(dump::decode(&bad, Options::default()).is_err());
    eprintln!("{flavor}: {n} DUMP payloads parsed and restored");
}

#[test]
fn redis_6_2() {
    check_flavor(Flavor::Redis6_2);
}

#[test]
fn redis_7_0() {
    check_flavor(Flavor::Redis7_0);
}

#[test]
fn redis_7_4() {
    check_flavor(Flavor::Redis7_4);
}

#[test]
fn valkey_8_1() {
    check_flavor(Flavor::Valkey8_1);
}

#[test]
fn valkey_9_1() {
    check_flavor(Flavor::Valkey9_1);
}
