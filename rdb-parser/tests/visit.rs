//! The zero-copy `Visitor` path (`decode_into`, with its whole-key fast path) against the
//! event path: the same calls for every corpus file, fed whole and in steps, with and
//! without raw values; the same errors for corrupt and truncated input.

mod common;

use common::{check_visit_matches_events, corpus_dir, manifest, visit_stepwise};
use rdb_parser::{visit_all, Item, KeyRef, Options, RdbReader, StreamId, Visitor};

#[test]
fn every_corpus_file_visits_as_its_events() {
    let Some(dir) = corpus_dir() else { return };
    let rows = manifest(&dir);
    let mut failed = 0;
    for row in &rows {
        let data = std::fs::read(dir.join(&row.file)).expect("corpus file");
        // Byte steps on small files; on big ones, steps that still cut most keys.
        let step = if data.len() < 64 * 1024 { 1 } else { 997 };
        if check_visit_matches_events(&row.file, &data, step).is_err() {
            failed += 1;
        }
    }
    // The deliberately corrupt files fail the same way on both paths.
    assert_eq!(failed, 4, "files failing on both paths");
}

#[test]
fn truncated_and_corrupted_corpus_files_fail_alike() {
    let Some(dir) = corpus_dir() else { return };
    let rows = manifest(&dir);
    for row in rows.iter().take(60) {
        let data = std::fs::read(dir.join(&row.file)).expect("corpus file");
        if data.len() > 256 * 1024 {
            continue;
        }
        // Cut and flipped bytes at a few places in the keyspace.
        for k in 1..6 {
            let at = data.len() * k / 6;
            let _ = check_visit_matches_events(&row.file, &data[..at], 61);
            let mut bad = data.clone();
            bad[at] ^= 0x5a;
            let _ = check_visit_matches_events(&row.file, &bad, 61);
        }
    }
}

/// RDB 10 header, keys, EOF without checksum (zero: disabled).
fn rdb10(body: &[u8]) -> Vec<u8> {
    let mut f = b"REDIS0010".to_vec();
    f.extend_from_slice(body);
    f.push(0xff);
    f.extend_from_slice(&[0; 8]);
    f
}

#[derive(Default)]
struct Count {
    keys: usize,
    items: usize,
    strings: Vec<Vec<u8>>,
}

impl Visitor for Count {
    fn key_start(&mut self, _key: &KeyRef<'_>) {
        self.keys += 1;
    }
    fn string(&mut self, piece: Item<'_>) {
        self.strings.push(piece.to_vec());
    }
    fn list_item(&mut self, _item: Item<'_>) {
        self.items += 1;
    }
    fn stream_entry(&mut self, _id: StreamId, _f: &[(Item<'_>, Item<'_>)]) {
        self.items += 1;
    }
}

#[test]
fn reader_visit_and_visit_all_agree() {
    // "k" = "v" (raw), "n" = 123 (int), "big" = 100 KB raw (pieces of string_piece).
    let mut body = vec![0x00, 0x01, b'k', 0x01, b'v', 0x00, 0x01, b'n', 0xc0, 123];
    body.extend_from_slice(&[0x00, 0x03, b'b', b'i', b'g', 0x80, 0, 1, 0x86, 0xa0]);
    body.extend(std::iter::repeat_n(b'x', 100_000));
    let file = rdb10(&body);
    let opts = Options::default().string_piece(4096);
    let mut a = Count::default();
    visit_all(&file, opts.clone(), &mut a).unwrap();
    let mut b = Count::default();
    RdbReader::new(&file[..], opts.clone())
        .visit(&mut b)
        .unwrap();
    assert_eq!(a.keys, 3);
    assert_eq!(a.strings, b.strings);
    assert_eq!(a.strings[0], b"v");
    assert_eq!(a.strings[1], b"123");
    assert_eq!(a.strings.len(), 2 + 100_000usize.div_ceil(4096));
    common::check_visit_matches_events("big string", &file, 333).unwrap();
}

#[test]
fn errors_inside_a_fast_key_match_the_state_machine() {
    // A listpack set whose blob is cut short inside an entry; a listpack with a bad
    // encoding byte; a quicklist with an unknown container type.
    let lp = |entries: &[u8], count: u16| {
        let mut b = Vec::new();
        let total = (6 + entries.len() + 1) as u32;
        b.extend_from_slice(&total.to_le_bytes());
        b.extend_from_slice(&count.to_le_bytes());
        b.extend_from_slice(entries);
        b.push(0xff);
        b
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("bad entry encoding", {
            let blob = lp(&[0x01, 0x01, 0xf9, 0x01], 2);
            let mut body = vec![20, 0x01, b's', blob.len() as u8];
            body.extend_from_slice(&blob);
            body
        }),
        ("wrong count", {
            let blob = lp(&[0x01, 0x01, 0x02, 0x01], 5);
            let mut body = vec![20, 0x01, b's', blob.len() as u8];
            body.extend_from_slice(&blob);
            body
        }),
        ("container", {
            let blob = lp(&[0x01, 0x01], 1);
            let mut body = vec![18, 0x01, b'l', 0x01, 0x07, blob.len() as u8];
            body.extend_from_slice(&blob);
            body
        }),
        ("score", {
            let blob = lp(&[0x81, b'm', 0x02, 0x81, b'x', 0x02], 2);
            let mut body = vec![17, 0x01, b'z', blob.len() as u8];
            body.extend_from_slice(&blob);
            body
        }),
    ];
    for (name, body) in cases {
        let file = rdb10(&body);
        let e = check_visit_matches_events(name, &file, 1).unwrap_err();
        let (_, r) = visit_stepwise(&file, usize::MAX, Options::default());
        let err = r.unwrap_err();
        assert!(err.key().is_some(), "{name}: {err}");
        assert!(err.offset().is_some(), "{name}: {err}");
        eprintln!("{name}: {e}");
    }
}
