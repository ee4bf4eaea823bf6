//! The zero-copy `Visitor` path (`decode_into`, with its whole-key fast path) against the
//! event path: the same calls for every corpus file, fed whole and in steps, with and
//! without raw values; the same errors for corrupt and truncated input.

mod common;

use common::{
    check_visit_matches_events, corpus_dir, manifest, visit_stepwise, visit_stepwise_into, Rec,
    Recorder, Stopper,
};
use std::ops::ControlFlow;

use bytes::BytesMut;
use rdb_parser::{
    visit_all, Item, KeyRef, Options, RdbDecoder, RdbReader, StreamId, Visitor, Want,
};

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
    fn key_start(&mut self, _key: &KeyRef<'_>) -> ControlFlow<()> {
        self.keys += 1;
        ControlFlow::Continue(())
    }
    fn string(&mut self, piece: Item<'_>) -> ControlFlow<()> {
        self.strings.push(piece.to_vec());
        ControlFlow::Continue(())
    }
    fn list_item(&mut self, _item: Item<'_>) -> ControlFlow<()> {
        self.items += 1;
        ControlFlow::Continue(())
    }
    fn stream_entry(&mut self, _id: StreamId, _f: &[(Item<'_>, Item<'_>)]) -> ControlFlow<()> {
        self.items += 1;
        ControlFlow::Continue(())
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
    assert!(visit_all(&file, opts.clone(), &mut a)
        .unwrap()
        .is_continue());
    let mut b = Count::default();
    assert!(RdbReader::new(&file[..], opts.clone())
        .visit(&mut b)
        .unwrap()
        .is_continue());
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

/// Stops at the `n`-th key start (1-based), recording every call.
struct StopAtKey {
    rec: Recorder,
    n: usize,
    keys: usize,
}

impl Visitor for StopAtKey {
    fn key_start(&mut self, key: &KeyRef<'_>) -> ControlFlow<()> {
        let _ = self.rec.key_start(key);
        self.keys += 1;
        if self.keys == self.n {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
    fn list_item(&mut self, item: Item<'_>) -> ControlFlow<()> {
        self.rec.list_item(item)
    }
    fn string(&mut self, piece: Item<'_>) -> ControlFlow<()> {
        self.rec.string(piece)
    }
    fn key_end(&mut self, record_len: u64) -> ControlFlow<()> {
        self.rec.key_end(record_len)
    }
    fn event(&mut self, event: rdb_parser::Event) -> ControlFlow<()> {
        self.rec.event(event)
    }
}

/// Three keys: "a" = "1" with an expiry, list "b" = [x, y, z] (linked list), "c" = "3".
fn three_keys() -> Vec<u8> {
    let mut body = vec![0xfe, 0x00];
    body.push(0xfc);
    body.extend_from_slice(&4_102_444_800_000i64.to_le_bytes());
    body.extend_from_slice(&[0x00, 0x01, b'a', 0x01, b'1']);
    body.extend_from_slice(&[0x01, 0x01, b'b', 0x03, 0x01, b'x', 0x01, b'y', 0x01, b'z']);
    body.extend_from_slice(&[0x00, 0x01, b'c', 0x01, b'3']);
    rdb10(&body)
}

#[test]
fn a_visitor_stops_at_the_nth_key_fed_whole_and_byte_by_byte() {
    let file = three_keys();
    let (all, r) = visit_stepwise(&file, usize::MAX, Options::default());
    r.unwrap();
    let key_at: Vec<usize> = all
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r, Rec::Key(_)))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(key_at.len(), 3);
    for n in 1..=3 {
        for step in [usize::MAX, 1] {
            let mut dec = RdbDecoder::new(Options::default());
            let mut buf = BytesMut::new();
            let mut v = StopAtKey {
                rec: Recorder::default(),
                n,
                keys: 0,
            };
            let mut fed = 0;
            let stopped = loop {
                if dec.decode_into(&mut buf, &mut v).unwrap().is_break() {
                    break true;
                }
                if fed >= file.len() {
                    break false;
                }
                let k = step.min(file.len() - fed);
                buf.extend_from_slice(&file[fed..fed + k]);
                fed += k;
            };
            assert!(stopped, "key {n}, step {step}: stopped");
            // Everything up to and including the n-th key_start, nothing after it.
            assert_eq!(v.rec.recs, all[..=key_at[n - 1]], "key {n}, step {step}");
            let Rec::Key(k) = &all[key_at[n - 1]] else {
                unreachable!()
            };
            // Not poisoned, not past the stopped key: resuming gives the rest.
            let len = all[key_at[n - 1]..]
                .iter()
                .find_map(|r| match r {
                    Rec::End(len) => Some(*len),
                    _ => None,
                })
                .unwrap();
            assert!(dec.offset() < k.record_offset + len, "key {n}, step {step}");
            if step == usize::MAX {
                // Decoded in one pass: stopped before its type byte.
                assert!(dec.offset() <= k.record_offset + 9, "key {n}");
            }
            v.n = usize::MAX;
            loop {
                assert!(dec.decode_into(&mut buf, &mut v).unwrap().is_continue());
                if dec.is_done() || fed >= file.len() {
                    break;
                }
                let k = step.min(file.len() - fed);
                buf.extend_from_slice(&file[fed..fed + k]);
                fed += k;
            }
            dec.finish().unwrap();
            assert_eq!(v.rec.recs, all, "key {n}, step {step}: resumed");
        }
    }
    // visit_all and RdbReader::visit return the stop; the reader resumes.
    let mut v = StopAtKey {
        rec: Recorder::default(),
        n: 2,
        keys: 0,
    };
    assert!(visit_all(&file, Options::default(), &mut v)
        .unwrap()
        .is_break());
    assert_eq!(v.keys, 2);
    let mut v = StopAtKey {
        rec: Recorder::default(),
        n: 2,
        keys: 0,
    };
    let mut reader = RdbReader::new(&file[..], Options::default());
    assert!(reader.visit(&mut v).unwrap().is_break());
    assert!(reader.visit(&mut v).unwrap().is_continue());
    assert_eq!(v.rec.recs, all);
}

#[test]
fn stopping_at_every_call_and_resuming_gives_every_call_once() {
    let file = three_keys();
    let (all, _) = visit_stepwise(&file, usize::MAX, Options::default().raw_values(true));
    for every in [1, 2, 3, 5] {
        for step in [usize::MAX, 1, 4] {
            let mut s = Stopper::new(every);
            visit_stepwise_into(&file, step, Options::default().raw_values(true), &mut s).unwrap();
            assert_eq!(s.rec.recs, all, "every {every}, step {step}");
            assert_eq!(s.stops, s.calls / every);
        }
    }
}

#[test]
fn key_records_have_their_offset_and_length() {
    let file = three_keys();
    for step in [usize::MAX, 1, 3] {
        let (recs, r) = visit_stepwise(&file, step, Options::default());
        r.unwrap();
        let spans: Vec<(u64, u64)> = recs
            .iter()
            .filter_map(|r| match r {
                Rec::Key(k) => Some((k.record_offset, 0)),
                Rec::End(len) => Some((0, *len)),
                _ => None,
            })
            .collect::<Vec<_>>()
            .chunks(2)
            .map(|c| (c[0].0, c[1].1))
            .collect();
        // Magic (9) + SELECTDB (2); "a" with its 9-byte expiry prefix; "b"; "c".
        assert_eq!(spans, vec![(11, 9 + 5), (25, 10), (35, 5)], "step {step}");
    }
}

/// Raw pass-through: skips the values of the keys of at most `max` raw bytes (those it
/// would `RESTORE`).
#[derive(Default)]
struct RawOnly {
    max: u64,
    asked: Vec<u64>,
    raw: Vec<u8>,
    items: usize,
    ends: usize,
}

impl Visitor for RawOnly {
    fn wants_items(&mut self, value_len: u64) -> bool {
        self.asked.push(value_len);
        value_len > self.max
    }
    fn raw_value(&mut self, piece: &[u8]) -> ControlFlow<()> {
        self.raw.extend_from_slice(piece);
        ControlFlow::Continue(())
    }
    fn string(&mut self, _piece: Item<'_>) -> ControlFlow<()> {
        self.items += 1;
        ControlFlow::Continue(())
    }
    fn list_item(&mut self, _item: Item<'_>) -> ControlFlow<()> {
        self.items += 1;
        ControlFlow::Continue(())
    }
    fn key_end(&mut self, _record_len: u64) -> ControlFlow<()> {
        self.ends += 1;
        ControlFlow::Continue(())
    }
}

#[test]
fn wants_items_false_skips_the_value_but_not_its_raw_bytes() {
    let file = three_keys();
    let opts = Options::default().raw_values(true);
    // Every value is skipped: raw bytes and key ends only.
    let mut all = RawOnly {
        max: u64::MAX,
        ..Default::default()
    };
    assert!(visit_all(&file, opts.clone(), &mut all)
        .unwrap()
        .is_continue());
    assert_eq!(all.asked, [3, 8, 3]);
    assert_eq!((all.items, all.ends), (0, 3));
    assert_eq!(all.raw, b"\x00\x011\x01\x03\x01x\x01y\x01z\x00\x013");
    // Only the list (8 raw bytes) is decoded.
    let mut list = RawOnly {
        max: 3,
        ..Default::default()
    };
    assert!(visit_all(&file, opts.clone(), &mut list)
        .unwrap()
        .is_continue());
    assert_eq!((list.items, list.ends), (3, 3));
    assert_eq!(list.raw, all.raw);
    // Fed byte by byte, no key lies whole in the buffer: none is asked, all are decoded.
    let mut dec = RdbDecoder::new(opts);
    let mut buf = BytesMut::new();
    let mut cut = RawOnly {
        max: u64::MAX,
        ..Default::default()
    };
    for b in &file {
        buf.extend_from_slice(&[*b]);
        assert!(dec.decode_into(&mut buf, &mut cut).unwrap().is_continue());
    }
    dec.finish().unwrap();
    assert!(cut.asked.is_empty());
    assert_eq!((cut.items, cut.ends), (5, 3));
    assert_eq!(cut.raw, all.raw);
}

/// Per key: its name and the elements it got (items, string bytes, or one `element_count`).
struct PerKey {
    want: Want,
    keys: Vec<(Vec<u8>, u64)>,
}

impl PerKey {
    fn new(want: Want) -> PerKey {
        PerKey {
            want,
            keys: Vec::new(),
        }
    }
    fn add(&mut self, n: u64) -> ControlFlow<()> {
        if let Some(k) = self.keys.last_mut() {
            k.1 += n;
        }
        ControlFlow::Continue(())
    }
}

impl Visitor for PerKey {
    fn key_start(&mut self, key: &KeyRef<'_>) -> ControlFlow<()> {
        self.keys.push((key.key.to_vec(), 0));
        ControlFlow::Continue(())
    }
    fn wants(&mut self, _value_len: u64) -> Want {
        self.want
    }
    fn element_count(&mut self, elements: u64) -> ControlFlow<()> {
        self.add(elements)
    }
    fn string(&mut self, piece: Item<'_>) -> ControlFlow<()> {
        self.add(piece.len() as u64)
    }
    fn list_item(&mut self, _: Item<'_>) -> ControlFlow<()> {
        self.add(1)
    }
    fn set_member(&mut self, _: Item<'_>) -> ControlFlow<()> {
        self.add(1)
    }
    fn zset_entry(&mut self, _: Item<'_>, _: f64) -> ControlFlow<()> {
        self.add(1)
    }
    fn hash_entry(&mut self, _: Item<'_>, _: Item<'_>, _: Option<u64>) -> ControlFlow<()> {
        self.add(1)
    }
    fn stream_entry(&mut self, _: StreamId, _: &[(Item<'_>, Item<'_>)]) -> ControlFlow<()> {
        self.add(1)
    }
}

#[test]
fn element_counts_equal_the_items_on_every_corpus_file() {
    let Some(dir) = corpus_dir() else { return };
    let mut checked = 0;
    for row in manifest(&dir) {
        let data = std::fs::read(dir.join(&row.file)).expect("corpus file");
        let mut items = PerKey::new(Want::Items);
        let Ok(_) = visit_all(&data, Options::default(), &mut items) else {
            continue;
        };
        let mut counts = PerKey::new(Want::Count);
        assert!(visit_all(&data, Options::default(), &mut counts)
            .unwrap()
            .is_continue());
        assert_eq!(counts.keys, items.keys, "{}", row.file);
        checked += 1;
    }
    assert!(checked >= 170, "{checked} corpus files checked");
}

/// A listpack blob of `entries` small integers, declaring `declared` entries.
fn listpack(entries: usize, declared: u16) -> Vec<u8> {
    let mut lp = vec![0u8; 6];
    for i in 0..entries {
        lp.extend_from_slice(&[(i % 128) as u8, 1]);
    }
    lp.push(0xff);
    let total = lp.len() as u32;
    lp[..4].copy_from_slice(&total.to_le_bytes());
    lp[4..6].copy_from_slice(&declared.to_le_bytes());
    lp
}

fn rdb11_blob_key(type_byte: u8, blob: &[u8]) -> Vec<u8> {
    let mut f = b"REDIS0011\x00\x01k".to_vec();
    f[9] = type_byte;
    f.push(0x80);
    f.extend_from_slice(&(blob.len() as u32).to_be_bytes());
    f.extend_from_slice(blob);
    f.push(0xff);
    f.extend_from_slice(&[0; 8]);
    f
}

#[test]
fn element_counts_walk_where_the_header_does_not_tell() {
    // A set listpack of 70000 entries: its header says 65535 ("count it yourself").
    let big = rdb11_blob_key(20, &listpack(70_000, u16::MAX));
    for want in [Want::Items, Want::Count] {
        let mut v = PerKey::new(want);
        assert!(visit_all(&big, Options::default(), &mut v)
            .unwrap()
            .is_continue());
        assert_eq!(v.keys, [(b"k".to_vec(), 70_000)], "{want:?}");
    }
    // A hash listpack with an odd number of entries: the same error either way.
    let odd = rdb11_blob_key(16, &listpack(3, 3));
    let e1 = visit_all(&odd, Options::default(), &mut PerKey::new(Want::Items)).unwrap_err();
    let e2 = visit_all(&odd, Options::default(), &mut PerKey::new(Want::Count)).unwrap_err();
    assert_eq!(e1.to_string(), e2.to_string());
    // A header that does not match its blob: walked, and the walk's error reported.
    let mut bad = listpack(4, 4);
    bad[0] ^= 1;
    let bad = rdb11_blob_key(20, &bad);
    let e1 = visit_all(&bad, Options::default(), &mut PerKey::new(Want::Items)).unwrap_err();
    let e2 = visit_all(&bad, Options::default(), &mut PerKey::new(Want::Count)).unwrap_err();
    assert_eq!(e1.to_string(), e2.to_string());
}

/// Per key: its name, its raw serialized value (type byte first) and its record length,
/// whether it came whole ([`Visitor::whole_key`]) or in calls. Takes the keys whole that
/// `take` answers for.
struct Whole {
    take: fn(&[u8]) -> Option<ControlFlow<()>>,
    /// The key to stop at (inside it, at `key_start`) once.
    stop_in: Option<Vec<u8>>,
    keys: Vec<(Vec<u8>, Vec<u8>, u64, bool)>,
    calls_in_taken: usize,
    offered: Vec<Vec<u8>>,
}

impl Whole {
    fn new(take: fn(&[u8]) -> Option<ControlFlow<()>>) -> Whole {
        Whole {
            take,
            stop_in: None,
            keys: Vec::new(),
            calls_in_taken: 0,
            offered: Vec::new(),
        }
    }
}

impl Visitor for Whole {
    fn whole_key(
        &mut self,
        key: &KeyRef<'_>,
        value: &[u8],
        record_len: u64,
    ) -> Option<ControlFlow<()>> {
        self.offered.push(key.key.to_vec());
        let flow = (self.take)(key.key)?;
        let mut raw = vec![key.type_byte];
        raw.extend_from_slice(value);
        self.keys.push((key.key.to_vec(), raw, record_len, true));
        Some(flow)
    }
    fn key_start(&mut self, key: &KeyRef<'_>) -> ControlFlow<()> {
        self.keys.push((key.key.to_vec(), Vec::new(), 0, false));
        if self.stop_in.as_deref() == Some(key.key) {
            self.stop_in = None;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
    fn raw_value(&mut self, piece: &[u8]) -> ControlFlow<()> {
        match self.keys.last_mut() {
            Some(k) if !k.3 => k.1.extend_from_slice(piece),
            _ => self.calls_in_taken += 1,
        }
        ControlFlow::Continue(())
    }
    fn wants_items(&mut self, _value_len: u64) -> bool {
        false
    }
    fn key_end(&mut self, record_len: u64) -> ControlFlow<()> {
        match self.keys.last_mut() {
            Some(k) if !k.3 => k.2 = record_len,
            _ => self.calls_in_taken += 1,
        }
        ControlFlow::Continue(())
    }
}

#[test]
fn whole_key_takes_a_key_in_one_call() {
    let file = three_keys();
    let opts = Options::default().raw_values(true);
    let mut calls = Whole::new(|_| None);
    assert!(visit_all(&file, opts.clone(), &mut calls)
        .unwrap()
        .is_continue());
    assert_eq!(calls.offered.len(), 3);
    let mut whole = Whole::new(|_| Some(ControlFlow::Continue(())));
    assert!(visit_all(&file, opts.clone(), &mut whole)
        .unwrap()
        .is_continue());
    assert_eq!(whole.calls_in_taken, 0);
    let strip = |w: &Whole| -> Vec<(Vec<u8>, Vec<u8>, u64)> {
        w.keys
            .iter()
            .map(|(k, r, l, _)| (k.clone(), r.clone(), *l))
            .collect()
    };
    // The same raw bytes and record lengths (the first key's includes its EXPIRETIME_MS).
    assert_eq!(strip(&whole), strip(&calls));
    assert_eq!(whole.keys[0].2, 1 + 8 + 5);
    assert!(whole.keys.iter().all(|k| k.3));
    // Not offered without raw values, nor to a decoder fed byte by byte.
    let mut plain = Whole::new(|_| Some(ControlFlow::Continue(())));
    assert!(visit_all(&file, Options::default(), &mut plain)
        .unwrap()
        .is_continue());
    assert!(plain.offered.is_empty());
    let mut dec = RdbDecoder::new(opts.clone());
    let mut buf = BytesMut::new();
    let mut cut = Whole::new(|_| Some(ControlFlow::Continue(())));
    for b in &file {
        buf.extend_from_slice(&[*b]);
        assert!(dec.decode_into(&mut buf, &mut cut).unwrap().is_continue());
    }
    dec.finish().unwrap();
    assert!(cut.offered.is_empty());
    assert_eq!(strip(&cut), strip(&calls));
}

#[test]
fn whole_key_stops_after_the_key_and_is_not_offered_again_after_a_stop_inside() {
    let file = three_keys();
    let opts = Options::default().raw_values(true);
    // A break from a taken key stops after it: the next call resumes with the next key.
    let mut dec = RdbDecoder::new(opts.clone());
    let mut buf = BytesMut::from(&file[..]);
    let mut v = Whole::new(|k| {
        Some(if k == b"b" {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        })
    });
    assert!(dec.decode_into(&mut buf, &mut v).unwrap().is_break());
    assert_eq!(v.offered, [b"a".to_vec(), b"b".to_vec()]);
    let at = dec.offset() as usize;
    assert_eq!(file[at], 0x00, "after key b, at the type byte of c");
    assert_eq!(&file[at + 1..at + 3], b"\x01c");
    assert!(dec.decode_into(&mut buf, &mut v).unwrap().is_continue());
    assert_eq!(v.offered.len(), 3);
    assert_eq!(v.keys.len(), 3);
    // A key declined, then stopped inside: decoded again from the buffer without being
    // offered again, and without its calls repeated.
    let mut dec = RdbDecoder::new(opts);
    let mut buf = BytesMut::from(&file[..]);
    let mut v = Whole::new(|k| (k != b"b").then_some(ControlFlow::Continue(())));
    v.stop_in = Some(b"b".to_vec());
    assert!(dec.decode_into(&mut buf, &mut v).unwrap().is_break());
    assert!(dec.decode_into(&mut buf, &mut v).unwrap().is_continue());
    assert_eq!(v.offered, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    let names: Vec<&[u8]> = v.keys.iter().map(|k| &k.0[..]).collect();
    assert_eq!(names, [&b"a"[..], b"b", b"c"]);
    assert_eq!(v.keys[1].1, b"\x01\x03\x01x\x01y\x01z");
}

#[test]
fn whole_keys_total_the_raw_values_on_every_corpus_file() {
    let Some(dir) = corpus_dir() else { return };
    let mut taken = 0;
    for row in manifest(&dir) {
        let data = std::fs::read(dir.join(&row.file)).expect("corpus file");
        let opts = Options::default().raw_values(true);
        let mut calls = Whole::new(|_| None);
        let Ok(_) = visit_all(&data, opts.clone(), &mut calls) else {
            continue;
        };
        let mut whole = Whole::new(|_| Some(ControlFlow::Continue(())));
        assert!(visit_all(&data, opts, &mut whole).unwrap().is_continue());
        let key = |w: &Whole| -> Vec<(Vec<u8>, Vec<u8>, u64)> {
            w.keys
                .iter()
                .map(|(k, r, l, _)| (k.clone(), r.clone(), *l))
                .collect()
        };
        assert_eq!(key(&whole), key(&calls), "{}", row.file);
        assert_eq!(whole.calls_in_taken, 0, "{}", row.file);
        taken += whole.keys.iter().filter(|k| k.3).count();
    }
    assert!(taken > 1000, "{taken} keys taken whole");
}
