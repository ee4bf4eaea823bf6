//! Every flavour of the matrix starts, reports its version, and writes the RDB version
//! we expect from it.

use testkit::{Flavor, Reply, Server};

fn check(flavor: Flavor) {
    let server = Server::start(flavor);
    let mut conn = server.connect();
    let field = if flavor.is_valkey() {
        "valkey_version"
    } else {
        "redis_version"
    };
    assert_eq!(
        conn.info_field("server", field).as_deref(),
        Some(flavor.version()),
        "{flavor}: INFO server"
    );
    conn.ok(["SET", "k", "v"]);
    let rdb = server.save();
    assert_eq!(
        &rdb[..9],
        flavor.rdb_magic(),
        "{flavor}: magic {:?}",
        String::from_utf8_lossy(&rdb[..9])
    );
}

#[test]
fn redis_6_2() {
    check(Flavor::Redis6_2);
}

#[test]
fn redis_7_0() {
    check(Flavor::Redis7_0);
}

#[test]
fn redis_7_4() {
    check(Flavor::Redis7_4);
}

#[test]
fn redis_7_4_loads_its_modules_unless_told_not_to() {
    let flavor = Flavor::Redis7_4;
    let names = |server: &Server| -> Vec<String> {
        let Reply::Array(mods) = server.connect().must(["MODULE", "LIST"]) else {
            panic!("MODULE LIST")
        };
        let mut names: Vec<String> = mods
            .into_iter()
            .filter_map(|m| match m {
                Reply::Array(f) => f
                    .chunks(2)
                    .find(|p| p[0].text() == "name")
                    .map(|p| p[1].text()),
                _ => None,
            })
            .collect();
        names.sort();
        names
    };
    let server = Server::start(flavor);
    assert!(server.has_modules());
    let mut want: Vec<String> = flavor
        .modules()
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    want.sort();
    assert_eq!(names(&server), want);
    let bare = Server::builder(flavor).no_modules().start();
    assert!(!bare.has_modules());
    assert!(names(&bare).is_empty());
    for other in Flavor::ALL {
        assert_eq!(other.has_modules(), other == flavor, "{other}");
    }
}

#[test]
fn valkey_8_1() {
    check(Flavor::Valkey8_1);
}

#[test]
fn valkey_9_1() {
    check(Flavor::Valkey9_1);
}

#[test]
fn password_and_builder_args() {
    let server = Server::builder(Flavor::Redis7_0)
        .password("s3cret")
        .config("hash-max-listpack-entries", "1")
        .start();
    let mut conn = server.connect();
    let reply = conn.must(["CONFIG", "GET", "hash-max-listpack-entries"]);
    assert_eq!(
        reply,
        testkit::Reply::Array(vec![
            testkit::Reply::Bulk(b"hash-max-listpack-entries".to_vec()),
            testkit::Reply::Bulk(b"1".to_vec()),
        ])
    );
    assert!(server.url().contains(":s3cret@"));
}

#[test]
fn small_dataset_snapshot_is_stable() {
    // The dataset writes every type; a snapshot reads it all back; two snapshots agree.
    let server = Server::start(Flavor::Valkey9_1);
    let stats = testkit::Dataset::small().fill(&server);
    assert_eq!(stats.keys, 600);
    let a = testkit::Snapshot::take(&server, 3);
    assert_eq!(a.len(), 600);
    let b = testkit::Snapshot::take(&server, 3);
    a.assert_same(&b, 2_000);
    let kinds: std::collections::BTreeSet<_> = a
        .keys
        .values()
        .map(|e| {
            format!("{:?}", e.value)
                .split('(')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(kinds.len(), 6, "{kinds:?}");
}

#[test]
fn field_ttls_and_module_values_are_written_and_read_back() {
    use testkit::snapshot::Value;
    for flavor in Flavor::ALL {
        if !flavor.has_field_ttl() {
            continue;
        }
        let server = Server::start(flavor);
        let mut dataset = testkit::Dataset::small().with_field_ttls();
        dataset.modules = flavor.has_modules();
        let stats = dataset.fill(&server);
        assert!(stats.with_field_ttl > 10, "{flavor}: {stats:?}");
        let a = testkit::Snapshot::take(&server, 3);
        assert_eq!(a.len() as u64, stats.keys, "{flavor}");
        a.assert_same(&testkit::Snapshot::take(&server, 3), 2_000);
        // Field TTLs in both encodings (Valkey 9 has only the hash table one).
        let mut conn = server.connect();
        let mut encodings = std::collections::BTreeSet::new();
        let mut with_field_ttl = 0;
        for ((db, key), entry) in &a.keys {
            if entry.field_expire_at_ms.is_empty() {
                continue;
            }
            with_field_ttl += 1;
            conn.ok(["SELECT".to_string(), db.to_string()]);
            encodings.insert(conn.must([b"OBJECT".as_slice(), b"ENCODING", key]).text());
        }
        assert_eq!(with_field_ttl, stats.with_field_ttl, "{flavor}");
        let want: &[&str] = if flavor.is_valkey() {
            &["hashtable"]
        } else {
            &["hashtable", "listpackex"]
        };
        assert_eq!(encodings, want.iter().map(|s| s.to_string()).collect());
        // A changed field TTL is a difference.
        let (db, key) = a
            .keys
            .iter()
            .find(|(_, e)| !e.field_expire_at_ms.is_empty())
            .map(|(k, _)| k.clone())
            .unwrap();
        let field = a.keys[&(db, key.clone())]
            .field_expire_at_ms
            .keys()
            .next()
            .unwrap()
            .clone();
        conn.ok(["SELECT".to_string(), db.to_string()]);
        conn.must([b"HPERSIST".as_slice(), &key, b"FIELDS", b"1", &field]);
        let diff = a.diff(&testkit::Snapshot::take(&server, 3), 2_000);
        assert_eq!(diff.len(), 1, "{flavor}: {diff:?}");
        assert!(diff[0].contains("field"), "{diff:?}");
        if flavor.has_modules() {
            assert_eq!(stats.module_keys, 27);
            let mut kinds = std::collections::BTreeSet::new();
            for e in a.keys.values() {
                match &e.value {
                    Value::Json(j) => {
                        assert!(j.starts_with(b"[{"), "{j:?}");
                        kinds.insert("json".to_string());
                    }
                    Value::TopK { items, .. } => {
                        assert!(!items.is_empty());
                        kinds.insert("topk".to_string());
                    }
                    Value::TimeSeries(ts) => {
                        assert!(!ts.samples.is_empty());
                        assert!(ts.rules.len() == 1 || !ts.source_key.is_empty(), "{ts:?}");
                        kinds.insert("timeseries".to_string());
                    }
                    Value::Module { type_name, dump } => {
                        assert!(!dump.is_empty());
                        kinds.insert(type_name.clone());
                    }
                    Value::Other(t) => panic!("{flavor}: unread type {t}"),
                    _ => {}
                }
            }
            let want = [
                "CMSk-TYPE",
                "MBbloom--",
                "MBbloomCF",
                "TDIS-TYPE",
                "json",
                "timeseries",
                "topk",
            ];
            assert_eq!(kinds, want.iter().map(|s| s.to_string()).collect());
        }
    }
}

#[test]
fn snapshot_of_a_server_without_field_ttls_or_modules() {
    let server = Server::builder(Flavor::Redis7_4).no_modules().start();
    let stats = testkit::Dataset::small().fill(&server);
    let a = testkit::Snapshot::take(&server, 3);
    assert_eq!(a.len() as u64, stats.keys);
    assert!(a.keys.values().all(|e| e.field_expire_at_ms.is_empty()));
    let old = Server::start(Flavor::Redis6_2);
    testkit::Dataset::small().fill(&old);
    let b = testkit::Snapshot::take(&old, 3);
    assert!(b.keys.values().all(|e| e.field_expire_at_ms.is_empty()));
}

#[test]
fn old_sources_start_and_hold_their_dataset() {
    for flavor in Flavor::OLD_SOURCES {
        assert!(flavor.is_old_source() && !Flavor::ALL.contains(&flavor));
        check(flavor);
        let server = Server::start(flavor);
        let dataset = testkit::Dataset::small_for(flavor);
        let stats = dataset.fill(&server);
        assert_eq!(stats.keys, 300, "{flavor}");
        assert!(stats.with_ttl > 0, "{flavor}");
        let a = testkit::Snapshot::take(&server, 3);
        assert_eq!(a.len(), 300, "{flavor}");
        a.assert_same(&testkit::Snapshot::take(&server, 3), 2_000);
        let streams = a
            .keys
            .values()
            .filter(|e| matches!(e.value, testkit::snapshot::Value::Stream(_)))
            .count();
        assert_eq!(streams > 0, flavor.has_streams(), "{flavor}");
        assert!(a.keys.keys().any(|(db, _)| *db == 2), "{flavor}");
    }
}
