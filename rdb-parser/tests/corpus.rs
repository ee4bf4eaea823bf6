//! Every file of the shared RDB corpus decodes, or fails as its MANIFEST says it should; key and
//! type counts match the MANIFEST's structure scan; ground truth stated by the source projects
//! is checked for a sample of files; truncation never panics; byte-at-a-time feeding gives the
//! same events.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{corpus_dir, decode_stepwise, manifest, model, Key, Row, Value};
use rdb_parser::{decode_all, Checksum, Error, Event, Options, RdbDecoder, RdbType};

/// Files that must fail, and how.
fn expected_failure(file: &str, e: &Error) -> bool {
    match file {
        // A deliberately corrupt ziplist (redis corrupt-dump.tcl #3505).
        "redis/corrupt_ziplist.rdb" => matches!(e, Error::Corrupt { key: Some(_), .. }),
        // Wrong CRC on purpose; and a version-patched file whose CRC no longer matches.
        "librdb/invalid_chksum_v8.rdb" | "librdb/future_v19.rdb" => {
            matches!(e, Error::ChecksumMismatch { .. })
        }
        // Type 6 (Redis 4.0 RC module values) has no tags: nobody can skip it.
        "redis-replicator/module.rdb" => {
            matches!(
                e,
                Error::UnknownType {
                    type_byte: 6,
                    key: Some(_),
                    ..
                }
            )
        }
        _ => false,
    }
}

fn load(dir: &Path, row: &Row) -> Vec<u8> {
    std::fs::read(dir.join(&row.file)).unwrap()
}

/// `keys=N types=AxB,... ` from the MANIFEST's structure scan.
fn scan_counts(scan: &str) -> Option<(usize, BTreeMap<u8, usize>)> {
    if scan.contains("SCAN-STOPPED") {
        return None;
    }
    let mut keys = None;
    let mut types = BTreeMap::new();
    for part in scan.split_whitespace() {
        if let Some(n) = part.strip_prefix("keys=") {
            keys = n.parse().ok();
        } else if let Some(t) = part.strip_prefix("types=") {
            for tc in t.split(',').filter(|s| !s.is_empty()) {
                let (t, c) = tc.split_once('x')?;
                types.insert(t.parse().ok()?, c.parse().ok()?);
            }
        }
    }
    Some((keys?, types))
}

#[test]
fn every_corpus_file_decodes_or_fails_as_expected() {
    let Some(dir) = corpus_dir() else { return };
    let rows = manifest(&dir);
    let (mut ok, mut failed_as_expected, mut unexpected) = (0, 0, Vec::new());
    for row in &rows {
        let data = load(&dir, row);
        match decode_all(&data, Options::default()) {
            Ok(events) => {
                ok += 1;
                let Some(Event::Eof(eof)) = events.last() else {
                    panic!("{}: no EOF", row.file)
                };
                match row.crc.as_str() {
                    c if c.starts_with("ok") => {
                        assert!(
                            matches!(eof.checksum, Checksum::Verified(_)),
                            "{}",
                            row.file
                        )
                    }
                    c if c.starts_with("zero") => {
                        assert_eq!(eof.checksum, Checksum::Disabled, "{}", row.file)
                    }
                    c if c.starts_with("none") => {
                        assert_eq!(eof.checksum, Checksum::Absent, "{}", row.file)
                    }
                    _ => {}
                }
                if let Some((keys, types)) = scan_counts(&row.scan) {
                    let mut seen = BTreeMap::<u8, usize>::new();
                    for e in &events {
                        if let Event::KeyStart(k) = e {
                            *seen.entry(k.type_byte).or_default() += 1;
                        }
                    }
                    assert_eq!(
                        seen.values().sum::<usize>(),
                        keys,
                        "{}: key count",
                        row.file
                    );
                    assert_eq!(seen, types, "{}: type counts", row.file);
                }
                // The model builder checks the event grammar (KeyStart..KeyEnd nesting).
                let _ = model(&events);
            }
            Err(e) if expected_failure(&row.file, &e) => {
                eprintln!("fails as expected: {}: {e}", row.file);
                failed_as_expected += 1;
            }
            Err(e) => unexpected.push(format!("{}: {e}", row.file)),
        }
    }
    eprintln!(
        "corpus: {} files, {ok} decode, {failed_as_expected} fail as expected, {} unexpected",
        rows.len(),
        unexpected.len()
    );
    assert!(
        unexpected.is_empty(),
        "unexpected failures:\n{}",
        unexpected.join("\n")
    );
    assert_eq!(failed_as_expected, 4);
}

fn file_keys(name: &str) -> Option<BTreeMap<(u32, Vec<u8>), Key>> {
    let dir = corpus_dir()?;
    let data = std::fs::read(dir.join(name)).unwrap();
    Some(model(&decode_all(&data, Options::default()).unwrap()))
}

fn get<'a>(keys: &'a BTreeMap<(u32, Vec<u8>), Key>, db: u32, k: &str) -> &'a Key {
    keys.get(&(db, k.as_bytes().to_vec()))
        .unwrap_or_else(|| panic!("no key {k}"))
}

fn strs(v: &[&str]) -> Vec<Vec<u8>> {
    v.iter().map(|s| s.as_bytes().to_vec()).collect()
}

fn hash(pairs: &[(&str, &str)]) -> Value {
    Value::Hash(
        pairs
            .iter()
            .map(|(f, v)| (f.as_bytes().to_vec(), (v.as_bytes().to_vec(), None)))
            .collect(),
    )
}

#[test]
fn ground_truth_encodings_rdb_v4() {
    // tests/integration/rdb.tcl "RDB encoding loading test".
    let Some(keys) = file_keys("redis/encodings.rdb") else {
        return;
    };
    // The MANIFEST note says 141; the LZF header of the file says 137 (c3 09 40 89), and the
    // decompressor checks that it produces exactly the raw length.
    assert_eq!(
        get(&keys, 0, "compressible").value,
        Value::String(vec![b'a'; 137])
    );
    assert_eq!(
        get(&keys, 0, "string").value,
        Value::String(b"Hello World".to_vec())
    );
    assert_eq!(get(&keys, 0, "number").value, Value::String(b"10".to_vec()));
    let list = strs(&["1", "2", "3", "a", "b", "c", "100000", "6000000000"]);
    assert_eq!(
        get(&keys, 0, "list_zipped").value,
        Value::List(list.clone())
    );
    assert_eq!(
        get(&keys, 0, "list").value,
        Value::List([list.clone(), list.clone(), list.clone()].concat())
    );
    assert_eq!(
        get(&keys, 0, "hash_zipped").value,
        hash(&[("a", "1"), ("b", "2"), ("c", "3")])
    );
    assert_eq!(
        get(&keys, 0, "hash").value,
        hash(&[
            ("a", "1"),
            ("aa", "10"),
            ("aaa", "100"),
            ("b", "2"),
            ("bb", "20"),
            ("bbb", "200"),
            ("c", "3"),
            ("cc", "30"),
            ("ccc", "300"),
            ("ddd", "400"),
            ("eee", "5000000000"),
        ])
    );
    let set = |v: &[&str]| Value::Set(strs(v).into_iter().collect());
    assert_eq!(
        get(&keys, 0, "set_zipped_1").value,
        set(&["1", "2", "3", "4"])
    );
    assert_eq!(
        get(&keys, 0, "set_zipped_2").value,
        set(&["100000", "200000", "300000", "400000"])
    );
    assert_eq!(
        get(&keys, 0, "set_zipped_3").value,
        set(&[
            "1000000000",
            "2000000000",
            "3000000000",
            "4000000000",
            "5000000000",
            "6000000000"
        ])
    );
    assert_eq!(
        get(&keys, 0, "set").value,
        set(&["1", "100000", "2", "3", "6000000000", "a", "b", "c"])
    );
    let Value::ZSet(z) = &get(&keys, 0, "zset").value else {
        panic!()
    };
    let z: BTreeMap<_, _> = z.iter().cloned().collect();
    assert_eq!(z[&b"cccc".to_vec()], 123456789.0);
    assert_eq!(z[&b"bbbb".to_vec()], 5000000000.0);
    assert_eq!(z.len(), 12);
    assert_eq!(
        get(&keys, 0, "zset_zipped").value,
        Value::ZSet(vec![
            (b"a".to_vec(), 1.0),
            (b"b".to_vec(), 2.0),
            (b"c".to_vec(), 3.0)
        ])
    );
}

#[test]
fn ground_truth_integer_encodings() {
    let Some(keys) = file_keys("redis-rdb-tools/ziplist_with_integers.rdb") else {
        return;
    };
    let mut want: Vec<i64> = (0..=12).collect();
    want.extend([
        -2,
        13,
        25,
        -61,
        63,
        16380,
        -16000,
        65535,
        -65523,
        4194304,
        i64::MAX,
    ]);
    let want = want.iter().map(|i| i.to_string().into_bytes()).collect();
    assert_eq!(
        get(&keys, 0, "ziplist_with_integers").value,
        Value::List(want)
    );

    let keys = file_keys("redis-rdb-tools/integer_keys.rdb").unwrap();
    for k in [125i64, 0xABAB, 0x0AEDD325, -123, -0x7325, -0x0AEDD325] {
        assert!(
            keys.contains_key(&(0, k.to_string().into_bytes())),
            "key {k}"
        );
    }
    for (file, key, vals) in [
        (
            "redis-rdb-tools/intset_16.rdb",
            "intset_16",
            [0x7ffe_i64, 0x7ffd, 0x7ffc],
        ),
        (
            "redis-rdb-tools/intset_32.rdb",
            "intset_32",
            [0x7ffefffe, 0x7ffefffd, 0x7ffefffc],
        ),
        (
            "redis-rdb-tools/intset_64.rdb",
            "intset_64",
            [0x7ffefffefffefffe, 0x7ffefffefffefffd, 0x7ffefffefffefffc],
        ),
    ] {
        let keys = file_keys(file).unwrap();
        let want = Value::Set(vals.iter().map(|i| i.to_string().into_bytes()).collect());
        assert_eq!(get(&keys, 0, key).value, want, "{file}");
    }
}

#[test]
fn ground_truth_expiry_ttl_and_versions() {
    let Some(keys) = file_keys("redis-rdb-tools/keys_with_expiry.rdb") else {
        return;
    };
    // 2022-12-25 10:11:12.573 UTC
    assert_eq!(
        get(&keys, 0, "expires_ms_precision").start.expire_at_ms,
        Some(1671963072573)
    );

    let keys = file_keys("hdt3213-rdb/valkey_hash2_with_hfe.rdb").unwrap();
    let k = get(&keys, 0, "hash2-hfe");
    assert_eq!(k.start.rdb_type, RdbType::Hash2);
    let Value::Hash(h) = &k.value else { panic!() };
    assert_eq!(h[&b"F1".to_vec()], (b"V1".to_vec(), Some(2715785640000)));
    assert_eq!(h[&b"F2".to_vec()], (b"V2".to_vec(), Some(2400425640000)));
    assert_eq!(h[&b"F3".to_vec()], (b"V3".to_vec(), None));

    let keys = file_keys("hdt3213-rdb/hash_with_hfe.rdb").unwrap();
    let k = get(&keys, 0, "hash-hfe");
    assert_eq!(k.start.rdb_type, RdbType::HashMetadata);
    let Value::Hash(h) = &k.value else { panic!() };
    assert_eq!(h.len(), 8);
    assert_eq!(h[&b"F1".to_vec()].1, Some(2755482424661));
    assert_eq!(h[&b"F2".to_vec()].1, Some(2755483429282));
    assert_eq!(h[&b"F3".to_vec()].1, Some(2755484433842));
    assert_eq!(h[&b"F4".to_vec()].1, None);

    let keys = file_keys("redis-rdb-tools/rdb_version_8_with_64b_length_and_scores.rdb").unwrap();
    let Value::ZSet(z) = &get(&keys, 0, "bigset").value.clone() else {
        // The key name is not stated; find the 1000-member zset.
        let z = keys
            .values()
            .find_map(|k| match &k.value {
                Value::ZSet(z) if z.len() == 1000 => Some(z.clone()),
                _ => None,
            })
            .unwrap();
        assert!(z
            .iter()
            .any(|(m, s)| m == b"finalfield" && *s == "2.718".parse::<f64>().unwrap()));
        return;
    };
    assert_eq!(z.len(), 1000);
}

#[test]
fn ground_truth_counts_and_misc() {
    let Some(keys) = file_keys("redis-replicator/dumpV8.rdb") else {
        return;
    };
    assert_eq!(keys.len(), 92499);
    assert_eq!(file_keys("redis-replicator/dumpV6.rdb").unwrap().len(), 132);
    // 270 keys in 40 SELECTDB sections; some names repeat within a db, so count KeyStarts.
    let dir = corpus_dir().unwrap();
    let all = decode_all(
        &std::fs::read(dir.join("redis-rdb-cli/all.rdb")).unwrap(),
        Options::default(),
    );
    let n = all
        .unwrap()
        .iter()
        .filter(|e| matches!(e, Event::KeyStart(_)))
        .count();
    assert_eq!(n, 270);
    let keys = file_keys("redis-rdb-tools/zipmap_with_big_values.rdb").unwrap();
    let Value::Hash(h) = &get(&keys, 0, "zipmap_with_big_values").value else {
        panic!()
    };
    let mut lens: Vec<usize> = h.values().map(|(v, _)| v.len()).collect();
    lens.sort();
    assert_eq!(lens, vec![253, 254, 255, 300, 20000]);
    let keys = file_keys("dragonfly/redis6_small.rdb").unwrap();
    let want = ["111", "222", "1234", "3333", "4444", "67899", "76554"];
    assert_eq!(
        get(&keys, 0, "intset").value,
        Value::Set(strs(&want).into_iter().collect())
    );
    let keys = file_keys("redis/hash-zipmap.rdb").unwrap();
    assert_eq!(
        get(&keys, 0, "hash").value,
        hash(&[("f1", "v1"), ("f2", "v2")])
    );
    let keys = file_keys("redis-replicator/dump-module-2.rdb").unwrap();
    let k = get(&keys, 0, "modulekey");
    let m = k.start.module.as_ref().unwrap();
    assert_eq!((m.name.as_str(), m.encver), ("hellotype", 0));
    // Stream metadata of a v2 stream (dragonfly/RDB_TYPE_STREAM_LISTPACKS_2).
    let data = std::fs::read(dir.join("dragonfly/RDB_TYPE_STREAM_LISTPACKS_2.rdb")).unwrap();
    let ev = decode_all(&data, Options::default()).unwrap();
    let meta = ev
        .iter()
        .find_map(|e| match e {
            Event::StreamMeta(m) => Some(m.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(meta.length, 2);
    assert_eq!(meta.last_id.to_string(), "1732613360686-0");
    assert_eq!(meta.first_id.unwrap().to_string(), "1732613352350-0");
    assert_eq!(meta.entries_added, Some(2));
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, Event::StreamGroup(_)))
            .count(),
        1
    );
}

/// Decodes `data[..n]` as if the input ended there.
fn decode_prefix(data: &[u8], n: usize) -> Result<(), Error> {
    let mut buf = bytes::BytesMut::from(&data[..n]);
    let mut dec = RdbDecoder::new(Options::default());
    while dec.decode(&mut buf)?.is_some() {}
    dec.finish()
}

#[test]
fn truncated_files_fail_cleanly() {
    let Some(dir) = corpus_dir() else { return };
    let mut checked = 0usize;
    for row in manifest(&dir) {
        let data = load(&dir, &row);
        let Ok(events) = decode_all(&data, Options::default()) else {
            continue;
        };
        let Some(Event::Eof(eof)) = events.last() else {
            unreachable!()
        };
        let len = eof.len as usize;
        let offsets: Vec<usize> = if len <= 4096 {
            (0..len).collect()
        } else {
            let n = if len > 1 << 20 {
                12
            } else if len > 64 << 10 {
                40
            } else {
                200
            };
            (0..n)
                .map(|i| i * len / n)
                .chain([len - 1, len - 8, len - 9])
                .collect()
        };
        for n in offsets {
            match decode_prefix(&data, n) {
                Ok(()) => panic!("{}: prefix of {n} bytes decoded without error", row.file),
                Err(Error::Truncated { offset, .. }) => assert!(offset <= n as u64),
                Err(_) => {}
            }
            checked += 1;
        }
    }
    eprintln!("{checked} truncated prefixes failed cleanly");
}

#[test]
fn byte_at_a_time_equals_whole() {
    let Some(dir) = corpus_dir() else { return };
    let opts = Options::default()
        .raw_values(true)
        .max_chunk_items(3)
        .string_piece(64);
    for row in manifest(&dir) {
        let data = load(&dir, &row);
        let whole = decode_all(&data, opts.clone());
        let step = if data.len() > 1 << 20 { 997 } else { 1 };
        let (events, r) = decode_stepwise(&data, step, opts.clone());
        match whole {
            Ok(w) => {
                r.unwrap_or_else(|e| panic!("{}: {e}", row.file));
                assert_eq!(events, w, "{}", row.file);
            }
            Err(e) => {
                let e2 = r.unwrap_err();
                assert_eq!(e.to_string(), e2.to_string(), "{}", row.file);
            }
        }
    }
}

#[test]
fn ground_truth_hash_field_ttls_and_streams() {
    let Some(keys) = file_keys("librdb/hash_lp_with_hexpire_v12.rdb") else {
        return;
    };
    let h = &get(&keys, 0, "myhash");
    assert_eq!(h.start.rdb_type, RdbType::HashListpackExPreGa);
    let three = [
        ("field1", "value1"),
        ("field2", "value2"),
        ("field3", "value3"),
    ];
    let Value::Hash(v) = &h.value else { panic!() };
    assert_eq!(
        v.iter()
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect::<Vec<_>>(),
        three
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect::<Vec<_>>()
    );
    let keys = file_keys("librdb/hash_with_expire_v12.rdb").unwrap();
    let h = &get(&keys, 0, "myhash");
    assert_eq!(h.start.rdb_type, RdbType::HashMetadataPreGa);
    let Value::Hash(v) = &h.value else { panic!() };
    assert_eq!(v.len(), 3);
    // Redis 7.4 GA: HSET mykey f1 v1 f2 v2; HEXPIRE mykey 3000 FIELDS 1 f1.
    for (file, t) in [
        (
            "rdb-tools-csharp/redis74_hash_ttl_listpack_ex.rdb",
            RdbType::HashListpackEx,
        ),
        (
            "rdb-tools-csharp/redis74_hash_ttl_hash_metadata.rdb",
            RdbType::HashMetadata,
        ),
    ] {
        let keys = file_keys(file).unwrap();
        let k = get(&keys, 0, "mykey");
        assert_eq!(k.start.rdb_type, t, "{file}");
        let Value::Hash(v) = &k.value else { panic!() };
        let (v1, ttl1) = &v[&b"f1".to_vec()];
        assert_eq!(v1, b"v1");
        // An absolute time in ms (2020..2100), not a relative delta.
        let ttl1 = ttl1.unwrap();
        assert!(
            (1_577_836_800_000..4_102_444_800_000).contains(&ttl1),
            "{file}: {ttl1}"
        );
        assert_eq!(v[&b"f2".to_vec()], (b"v2".to_vec(), None), "{file}");
        if t == RdbType::HashMetadata {
            assert_eq!(k.start.min_field_expire_ms, Some(ttl1));
        }
    }
    // librdb stream_v11 (expected/stream_data.json).
    let keys = file_keys("librdb/stream_v11.rdb").unwrap();
    let Value::Stream { entries, .. } = &get(&keys, 0, "mystream").value else {
        panic!()
    };
    let ids: Vec<&str> = entries.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "1695649068107-0",
            "1695649068110-0",
            "1695649069139-0",
            "1695649446276-0",
            "1695649456516-0",
            "1695893015933-0"
        ]
    );
    assert_eq!(entries[5].1.len(), 3);
    assert_eq!(
        entries[0].1,
        vec![(b"message".to_vec(), b"Message1".to_vec())]
    );
    // AUX integers come as text.
    let dir = corpus_dir().unwrap();
    let ev = decode_all(
        &std::fs::read(dir.join("librdb/stream_v11.rdb")).unwrap(),
        Options::default(),
    )
    .unwrap();
    assert!(ev.iter().any(
        |e| matches!(e, Event::Aux(a) if &a.key[..] == b"redis-bits" && &a.value[..] == b"64")
    ));
}
