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
