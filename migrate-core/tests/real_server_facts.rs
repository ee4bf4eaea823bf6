//! The pure-logic building blocks agree with what real servers answer.

use migrate_core::{key_slot, ServerVersion};
use testkit::{Flavor, Reply, Server};

#[test]
fn key_slot_matches_cluster_keyslot() {
    let server = Server::builder(Flavor::Redis7_0)
        .config("cluster-enabled", "yes")
        .start();
    let mut conn = server.connect();
    let keys: &[&[u8]] = &[
        b"",
        b"foo",
        b"{user1000}.following",
        b"foo{}{bar}",
        b"foo{{bar}}zap",
        b"{a}{b}",
        b"\x00\xff binary {tag}",
        b"}{",
    ];
    for key in keys {
        let want = conn.int([b"CLUSTER".as_slice(), b"KEYSLOT", key]);
        assert_eq!(i64::from(key_slot(key)), want, "{key:?}");
    }
}

#[test]
fn versions_from_real_info() {
    for flavor in Flavor::ALL {
        let server = Server::start(flavor);
        let info = match server.connect().cmd(["INFO", "server"]) {
            Reply::Bulk(b) => String::from_utf8(b).unwrap(),
            r => panic!("{r:?}"),
        };
        let v = ServerVersion::from_info(&info).expect("a version");
        assert_eq!(v.is_valkey(), flavor.is_valkey(), "{flavor}");
        assert_eq!(
            format!("{}.{}.{}", v.major, v.minor, v.patch),
            flavor.version()
        );
        let magic = flavor.rdb_magic();
        let rdb: u16 = std::str::from_utf8(&magic[magic.len() - 3..])
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(v.rdb_version(), rdb, "{flavor}");
    }
}

#[test]
fn glob_matches_like_keys() {
    use migrate_core::Glob;
    let server = Server::start(Flavor::Valkey9_1);
    let mut conn = server.connect();
    let keys: &[&[u8]] = &[
        b"user:1",
        b"user:22",
        b"users",
        b"hello",
        b"hallo",
        b"hxllo",
        b"h*llo",
        b"a[b",
        b"x\\y",
        b"",
        b"\xff\x00",
        b"-",
        b"]",
        b"abcabc",
    ];
    for key in keys {
        conn.ok([b"SET".as_slice(), key, b"v"]);
    }
    let patterns: &[&[u8]] = &[
        b"*",
        b"user:*",
        b"user:?",
        b"h[ae]llo",
        b"h[^e]llo",
        b"h[a-x]llo",
        b"h\\*llo",
        b"a\\[b",
        b"x\\\\y",
        b"[",
        b"*[",
        b"a[",
        b"[\\]]",
        b"*c",
        b"?",
        b"*b*c",
        b"[a-]*",
        b"[^",
    ];
    for pattern in patterns {
        let mut want: Vec<Vec<u8>> = match conn.must([b"KEYS".as_slice(), pattern]) {
            Reply::Array(items) => items
                .into_iter()
                .map(|r| r.as_bytes().unwrap().to_vec())
                .collect(),
            r => panic!("{r:?}"),
        };
        want.sort();
        let glob = Glob::new(*pattern);
        let mut got: Vec<Vec<u8>> = keys
            .iter()
            .filter(|k| glob.matches(k))
            .map(|k| k.to_vec())
            .collect();
        got.sort();
        assert_eq!(got, want, "pattern {:?}", String::from_utf8_lossy(pattern));
    }
}

/// `DUMP` payload with its version footer rewritten (and the CRC-64/Jones recomputed).
fn with_footer(payload: &[u8], version: u16) -> Vec<u8> {
    let body = &payload[..payload.len() - 10];
    let mut out = body.to_vec();
    out.extend_from_slice(&version.to_le_bytes());
    let crc = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Redis, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// For every type byte real servers write, RESTORE into every flavour (footer rewritten
/// to the target's own version) succeeds exactly when `knows_type` says so. Type bytes
/// from 22 up mean different things in Redis and Valkey (Valkey 9's HASH_2 is 22, Redis
/// 7.4's field-TTL hashes are 22-25), so across families only the shared table (below 22)
/// is expected to load: that is the rule the full sync applies before `knows_type`.
#[test]
fn restore_acceptance_matches_knows_type() {
    let mut payloads: Vec<(String, bool, u8, Vec<u8>)> = Vec::new();
    for flavor in Flavor::ALL {
        let server = Server::builder(flavor)
            .config("list-max-ziplist-size", "4")
            .start();
        let mut c = server.connect();
        c.ok(["SET", "string", "hello world"]);
        c.must(["RPUSH", "list", "a", "b", "c"]);
        c.must(["SADD", "intset", "1", "2", "3"]);
        c.must(["SADD", "set", "a", "b", "c"]);
        c.must(
            ["SADD", "bigset"]
                .into_iter()
                .map(String::from)
                .chain((0..600).map(|i| format!("m{i}"))),
        );
        c.must(["ZADD", "zset", "1", "a", "2", "b"]);
        c.must(
            ["ZADD", "bigzset"]
                .into_iter()
                .map(String::from)
                .chain((0..300).flat_map(|i| [i.to_string(), format!("m{i}")])),
        );
        c.must(["HSET", "hash", "f", "v"]);
        c.must(
            ["HSET", "bighash"]
                .into_iter()
                .map(String::from)
                .chain((0..300).flat_map(|i| [format!("f{i}"), format!("v{i}")])),
        );
        c.must(["XADD", "stream", "1-1", "f", "v"]);
        if flavor.has_field_ttl() {
            c.must(["HSET", "ttlhash", "f", "v", "g", "w"]);
            c.must(["HEXPIRE", "ttlhash", "10000", "FIELDS", "1", "f"]);
            c.must(
                ["HSET", "bigttlhash"]
                    .into_iter()
                    .map(String::from)
                    .chain((0..300).flat_map(|i| [format!("f{i}"), format!("v{i}")])),
            );
            c.must(["HEXPIRE", "bigttlhash", "10000", "FIELDS", "1", "f1"]);
        }
        for key in [
            "string",
            "list",
            "intset",
            "set",
            "bigset",
            "zset",
            "bigzset",
            "hash",
            "bighash",
            "stream",
            "ttlhash",
            "bigttlhash",
        ] {
            if let Some(p) = c.bulk(["DUMP", key]) {
                payloads.push((format!("{flavor} {key}"), flavor.is_valkey(), p[0], p));
            }
        }
    }
    let mut seen_types: Vec<u8> = payloads.iter().map(|p| p.2).collect();
    seen_types.sort();
    seen_types.dedup();
    assert!(seen_types.len() >= 12, "types seen: {seen_types:?}");
    for flavor in Flavor::ALL {
        let server = Server::start(flavor);
        let mut c = server.connect();
        let info = c.bulk(["INFO", "server"]).unwrap();
        let target = ServerVersion::from_info(&String::from_utf8_lossy(&info)).unwrap();
        for (what, from_valkey, type_byte, payload) in &payloads {
            let payload = with_footer(payload, target.rdb_version());
            let reply = c.cmd([b"RESTORE".as_slice(), b"k", b"0", &payload, b"REPLACE"]);
            let accepted = reply == Reply::Status("OK".into());
            let same_table = *type_byte < 22 || *from_valkey == target.is_valkey();
            assert_eq!(
                accepted,
                same_table && target.knows_type(*type_byte),
                "{what} (type {type_byte}) into {flavor}: {reply:?}"
            );
        }
    }
}

/// Our key positions agree with `COMMAND GETKEYS` on every flavour, for the write
/// commands a replication stream carries.
#[test]
fn key_indexes_match_command_getkeys() {
    use migrate_core::command::key_indexes;
    let corpus = [
        "SET k v PX 100",
        "MSET a 1 b 2 c 3",
        "DEL a b c",
        "UNLINK a b",
        "BITOP AND d a b",
        "RENAME a b",
        "COPY a b DB 1 REPLACE",
        "ZUNIONSTORE d 2 a b WEIGHTS 1 2",
        "ZINTERSTORE d 1 a",
        "EVAL return 2 a b x",
        "EVALSHA 0123 1 a",
        "LMPOP 2 a b LEFT",
        "BLMPOP 0 2 a b LEFT",
        "ZMPOP 1 z MIN",
        "XREADGROUP GROUP g c COUNT 1 STREAMS s1 s2 > >",
        "XGROUP CREATE s g $ MKSTREAM",
        "SORT k BY w STORE d",
        "SORT k",
        "LMOVE a b LEFT RIGHT",
        "RPOPLPUSH a b",
        "SMOVE a b m",
        "SINTERSTORE d a b",
        "ZRANGESTORE d s 0 -1",
        "GEOSEARCHSTORE d s FROMLONLAT 0 0 BYRADIUS 1 km",
        "PFMERGE d a b",
        "XADD s * f v",
        "XCLAIM s g c 0 1-1",
        "HSET h f v f2 v2",
        "BLPOP a b 0",
        "PEXPIREAT k 1",
        "MOVE k 1",
        "RESTORE k 0 payload",
        "GEORADIUS k 0 0 1 km STORE d",
        "MIGRATE h 1 k 0 10",
        "SETRANGE k 0 v",
        "GETEX k PERSIST",
        "LPUSH l a b",
    ];
    for flavor in Flavor::ALL {
        let server = Server::start(flavor);
        let mut conn = server.connect();
        for line in corpus {
            let args: Vec<&str> = line.split(' ').collect();
            let mut getkeys = vec!["COMMAND", "GETKEYS"];
            getkeys.extend(&args);
            let mut want: Vec<String> = match conn.cmd(&getkeys) {
                Reply::Array(keys) => keys.iter().map(Reply::text).collect(),
                Reply::Error(e) if e.contains("Invalid command") || e.contains("unknown") => {
                    continue
                }
                other => panic!("{flavor} {line}: {other:?}"),
            };
            let mut ours: Vec<String> = key_indexes(&args)
                .unwrap_or_else(|| panic!("{line}: no keys found"))
                .into_iter()
                .map(|i| args[i].to_string())
                .collect();
            // The order differs for some commands (ZUNIONSTORE lists the destination last).
            ours.sort();
            want.sort();
            assert_eq!(ours, want, "{flavor}: {line}");
        }
    }
}

/// Redis 7 stream options, translated for Redis 6.2, are accepted there (and refused
/// untranslated).
#[test]
fn translated_stream_options_apply_on_redis_6_2() {
    use bytes::Bytes;
    use migrate_core::command::{TranslateOptions, Translated, Translator};
    use migrate_core::Filter;
    let server = Server::start(Flavor::Redis6_2);
    let mut conn = server.connect();
    let untranslated = Server::start(Flavor::Redis6_2);
    let mut raw_conn = untranslated.connect();
    let target = ServerVersion::new(migrate_core::ServerFamily::Redis, 6, 2, 5);
    let mut t = Translator::new(target, Filter::new(), TranslateOptions::default());
    let source = [
        "XADD s 5-1 f v",
        "XSETID s 9-0 ENTRIESADDED 12 MAXDELETEDID 3-0",
        "XGROUP CREATE s g 0 ENTRIESREAD 1",
        "XGROUP SETID s g 5-1 ENTRIESREAD 1",
    ];
    for line in source {
        let args: Vec<&str> = line.split(' ').collect();
        let raw = raw_conn.cmd(&args);
        let bytes = args
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        let translated = t.translate(0, bytes);
        if !matches!(translated, Translated::Forward(_) | Translated::Apply(_)) {
            panic!("{line}: not applied")
        }
        if line.contains("ENTRIES") {
            assert!(
                matches!(raw, Reply::Error(_)),
                "{line} untranslated: {raw:?}"
            );
        }
        for c in translated.commands() {
            let reply = conn.cmd(&c.args);
            assert!(
                !matches!(reply, Reply::Error(_)),
                "{line} -> {:?}: {reply:?}",
                c.args
            );
        }
    }
    let Reply::Array(info) = conn.must(["XINFO", "STREAM", "s"]) else {
        panic!("XINFO STREAM")
    };
    let last = info
        .iter()
        .position(|r| r.text() == "last-generated-id")
        .map(|i| info[i + 1].text());
    assert_eq!(last.as_deref(), Some("9-0"));
}
