//! rdb-parser: arbitrary bytes (seed with real RDB files under fuzz/corpus/rdb_decode) must
//! never panic, hang or over-allocate; feeding in small steps gives the same events and the
//! same error as feeding everything at once; the zero-copy `Visitor` path (its whole-key
//! fast path included) receives what the events carry (record lengths included), or fails
//! with the same error; and a visitor that stops every few calls and is resumed at once
//! receives every call exactly once; a visitor that declines the items of some keys
//! (`wants_items` false: raw pass-through), or takes some keys whole (`whole_key`), gets the
//! same calls minus those keys' items and value events (the same raw bytes, record lengths
//! and end), and never fails where the full decode succeeds; a visitor asking for element
//! counts only (`Want::Count`) gets, per key, the totals of the items and never fails where
//! the full decode succeeds.
#![no_main]

use std::ops::ControlFlow;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rdb_parser::{Event, Item, KeyRef, Options, RdbDecoder, StreamId, Visitor, Want};

/// The events (as Debug text: NaN scores compare equal) and the error, if any.
fn run(data: &[u8], step: usize, opts: &Options) -> (String, Option<String>) {
    let mut dec = RdbDecoder::new(opts.clone());
    let mut buf = BytesMut::new();
    let mut events: Vec<Event> = Vec::new();
    let mut fed = 0;
    loop {
        match dec.decode(&mut buf) {
            Ok(Some(ev)) => events.push(ev),
            Ok(None) => {
                if dec.is_done() {
                    return (format!("{events:?}"), None);
                }
                if fed >= data.len() {
                    return (
                        format!("{events:?}"),
                        dec.finish().err().map(|e| e.to_string()),
                    );
                }
                let n = step.min(data.len() - fed);
                buf.extend_from_slice(&data[fed..fed + n]);
                fed += n;
            }
            Err(e) => {
                assert!(e.offset().unwrap_or(0) <= data.len() as u64);
                return (format!("{events:?}"), Some(e.to_string()));
            }
        }
    }
}

/// Every visitor call as Debug text; raw value pieces gathered per key (their cut may differ).
/// With `stop_every`, every `stop_every`-th call stops the decoder (which is resumed at once).
#[derive(Default)]
struct Rec {
    out: Vec<String>,
    raw: Vec<u8>,
    stop_every: u64,
    calls: u64,
    /// Per output line: whether it is an item or value event of a key (not its start,
    /// raw bytes or end), and the index of the key it belongs to.
    item: Vec<Option<u64>>,
    /// Keys seen so far (`key_start` calls), and whether the current one is open.
    keys: u64,
    in_key: bool,
    /// With `decline` > 0, `wants_items` is false for keys whose index % `decline` == 0.
    decline: u64,
    /// Keys whose items were declined.
    declined: Vec<u64>,
    /// With `whole` > 0, keys whose index % `whole` == 0 are taken whole where offered
    /// (`whole_key`): recorded as the calls of a declined key (start, raw bytes, end).
    whole: u64,
}

impl Rec {
    fn push(&mut self, s: String) -> ControlFlow<()> {
        self.out.push(s);
        self.item.push(None);
        self.tick()
    }

    /// An item or value event of the current key.
    fn push_item(&mut self, s: String) -> ControlFlow<()> {
        self.out.push(s);
        self.item.push(self.in_key.then_some(self.keys));
        self.tick()
    }

    fn tick(&mut self) -> ControlFlow<()> {
        self.calls += 1;
        if self.stop_every > 0 && self.calls % self.stop_every == 0 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

impl Visitor for Rec {
    fn whole_key(
        &mut self,
        key: &KeyRef<'_>,
        value: &[u8],
        record_len: u64,
    ) -> Option<ControlFlow<()>> {
        if self.whole == 0 || (self.keys + 1) % self.whole != 0 {
            return None;
        }
        self.keys += 1;
        self.declined.push(self.keys);
        let mut raw = vec![key.type_byte];
        raw.extend_from_slice(value);
        for line in [
            format!("key {:?}", key.to_key_start()),
            format!("raw {raw:?}"),
            format!("end {record_len}"),
        ] {
            self.out.push(line);
            self.item.push(None);
        }
        Some(self.tick())
    }
    fn key_start(&mut self, key: &KeyRef<'_>) -> ControlFlow<()> {
        self.keys += 1;
        self.in_key = true;
        self.push(format!("key {:?}", key.to_key_start()))
    }
    fn string(&mut self, piece: Item<'_>) -> ControlFlow<()> {
        self.push_item(format!("str {piece:?}"))
    }
    fn list_item(&mut self, item: Item<'_>) -> ControlFlow<()> {
        self.push_item(format!("list {item:?}"))
    }
    fn set_member(&mut self, member: Item<'_>) -> ControlFlow<()> {
        self.push_item(format!("set {member:?}"))
    }
    fn zset_entry(&mut self, member: Item<'_>, score: f64) -> ControlFlow<()> {
        self.push_item(format!("zset {member:?} {}", score.to_bits()))
    }
    fn hash_entry(
        &mut self,
        field: Item<'_>,
        value: Item<'_>,
        ttl: Option<u64>,
    ) -> ControlFlow<()> {
        self.push_item(format!("hash {field:?} {value:?} {ttl:?}"))
    }
    fn stream_entry(&mut self, id: StreamId, fields: &[(Item<'_>, Item<'_>)]) -> ControlFlow<()> {
        self.push_item(format!("entry {id} {fields:?}"))
    }
    fn raw_value(&mut self, piece: &[u8]) -> ControlFlow<()> {
        self.raw.extend_from_slice(piece);
        self.tick()
    }
    fn key_end(&mut self, record_len: u64) -> ControlFlow<()> {
        if !self.raw.is_empty() {
            self.out
                .push(format!("raw {:?}", std::mem::take(&mut self.raw)));
            self.item.push(None);
        }
        self.in_key = false;
        self.push(format!("end {record_len}"))
    }
    fn wants_items(&mut self, _value_len: u64) -> bool {
        if self.decline > 0 && self.keys % self.decline == 0 {
            if self.declined.last() != Some(&self.keys) {
                self.declined.push(self.keys);
            }
            false
        } else {
            true
        }
    }
    fn event(&mut self, event: Event) -> ControlFlow<()> {
        self.push_item(format!("event {event:?}"))
    }
}

/// The visitor calls of the zero-copy path fed in steps of `step`, and the error, if any;
/// with `stop_every`, the visitor stops every so many calls and is resumed at once.
fn visit(
    data: &[u8],
    step: usize,
    opts: &Options,
    stop_every: u64,
) -> (Vec<String>, Option<String>) {
    let rec = Rec {
        stop_every,
        ..Rec::default()
    };
    let (rec, err) = visit_with(data, step, opts, rec);
    (rec.out, err)
}

/// [`visit`] with a given recorder; returns it.
fn visit_with(data: &[u8], step: usize, opts: &Options, mut rec: Rec) -> (Rec, Option<String>) {
    let mut dec = RdbDecoder::new(opts.clone());
    let mut buf = BytesMut::new();
    let mut fed = 0;
    loop {
        match dec.decode_into(&mut buf, &mut rec) {
            Err(e) => {
                assert!(e.offset().unwrap_or(0) <= data.len() as u64);
                return (rec, Some(e.to_string()));
            }
            Ok(ControlFlow::Break(())) => continue,
            Ok(ControlFlow::Continue(())) => {}
        }
        if dec.is_done() {
            return (rec, None);
        }
        if fed >= data.len() {
            return (rec, dec.finish().err().map(|e| e.to_string()));
        }
        let n = step.min(data.len() - fed);
        buf.extend_from_slice(&data[fed..fed + n]);
        fed += n;
    }
}

/// What a visitor receives from the events of the event path (record lengths from
/// `KeyStart::record_offset` and the decoder's offset at `KeyEnd`).
fn visit_events(data: &[u8], opts: &Options) -> (Vec<String>, Option<String>) {
    let mut dec = RdbDecoder::new(opts.clone());
    let mut buf = BytesMut::from(data);
    let mut rec = Rec::default();
    let mut record_offset = 0;
    loop {
        match dec.decode(&mut buf) {
            Ok(Some(ev)) => {
                if let Event::KeyStart(k) = &ev {
                    record_offset = k.record_offset;
                }
                let _ = ev.visit(&mut rec, dec.offset() - record_offset);
            }
            Ok(None) => return (rec.out, dec.finish().err().map(|e| e.to_string())),
            Err(e) => return (rec.out, Some(e.to_string())),
        }
    }
}

/// Per key: its name and its element total (items, string bytes or `element_count`).
struct Totals {
    want: Want,
    keys: Vec<(Vec<u8>, u64)>,
}

impl Totals {
    fn add(&mut self, n: u64) -> ControlFlow<()> {
        if let Some(k) = self.keys.last_mut() {
            k.1 += n;
        }
        ControlFlow::Continue(())
    }
}

impl Visitor for Totals {
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

/// The per-key totals of a whole-input decode asking `want`, and whether it succeeded.
fn totals(data: &[u8], opts: &Options, want: Want) -> (Vec<(Vec<u8>, u64)>, bool) {
    let mut dec = RdbDecoder::new(opts.clone());
    let mut buf = BytesMut::from(data);
    let mut t = Totals {
        want,
        keys: Vec::new(),
    };
    let ok = dec.decode_into(&mut buf, &mut t).is_ok() && dec.finish().is_ok();
    (t.keys, ok)
}

fuzz_target!(|data: &[u8]| {
    // Small chunks exercise the chunking paths; raw values exercise the capture.
    let opts = Options::default()
        .max_chunk_items(3)
        .max_chunk_bytes(256)
        .string_piece(17)
        .raw_values(data.len() % 2 == 0);
    let whole = run(data, usize::MAX, &opts);
    // Tiny steps on small inputs; on big ones, steps that still split most units.
    let step = if data.len() < 4096 {
        1 + data.len() % 7
    } else {
        1 + data.len() % 251
    };
    let stepped = run(data, step, &opts);
    assert_eq!(
        whole, stepped,
        "feeding in steps of {step} changed the result"
    );

    // The zero-copy path: whole (fast path) and in steps (mostly the state machine). On
    // success every call matches the events'; on failure the error is the same (calls made
    // for the failing key before the error may differ).
    let want = visit_events(data, &opts);
    for s in [usize::MAX, step] {
        let got = visit(data, s, &opts, 0);
        assert_eq!(
            got.1, want.1,
            "visitor (step {s}) error differs from the events'"
        );
        if want.1.is_none() {
            assert_eq!(
                got.0, want.0,
                "visitor (step {s}) calls differ from the events'"
            );
        }
    }
    // A visitor that stops every few calls, resumed at once, gets every call once (the
    // number of calls between stops from the input, so that all splits get exercised).
    if want.1.is_none() && data.len() < 256 * 1024 {
        let every = 1 + (data.len() % 13) as u64;
        for s in [usize::MAX, step] {
            let got = visit(data, s, &opts, every);
            assert_eq!(
                got, want,
                "visitor stopping every {every} calls (step {s}) differs"
            );
        }
    }
    // Raw pass-through: declining the items of every few keys (those decoded in one pass,
    // whole input or in steps), and taking every few keys whole (`whole_key`, with raw
    // values), leaves the other calls as they were.
    if want.1.is_none() {
        let decline = 1 + (data.len() % 3) as u64;
        let whole = (data.len() / 3 % 4) as u64;
        let full = visit_with(data, usize::MAX, &opts, Rec::default()).0;
        for s in [usize::MAX, step] {
            let rec = Rec {
                decline,
                whole,
                ..Rec::default()
            };
            let (got, err) = visit_with(data, s, &opts, rec);
            assert_eq!(err, None, "declining items (step {s}) made the decode fail");
            let expect: Vec<&String> = full
                .out
                .iter()
                .zip(&full.item)
                .filter(|(_, k)| !k.is_some_and(|k| got.declined.contains(&k)))
                .map(|(l, _)| l)
                .collect();
            let got: Vec<&String> = got.out.iter().collect();
            assert_eq!(
                got, expect,
                "declining the items of keys (step {s}) changed other calls"
            );
        }
    }
    // Element counts from the headers: the items' totals per key wherever the full decode
    // succeeds; on other inputs, no panic (a corrupt element may go unnoticed).
    let counted = totals(data, &opts, Want::Count);
    if want.1.is_none() {
        let items = totals(data, &opts, Want::Items);
        assert!(items.1 && counted.1, "counting made the decode fail");
        assert_eq!(counted.0, items.0, "element counts differ from the items");
    }
});
