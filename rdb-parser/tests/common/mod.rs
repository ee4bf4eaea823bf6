//! Shared test helpers.
#![allow(dead_code, unreachable_pub, clippy::type_complexity)]

use std::path::PathBuf;

use bytes::BytesMut;
use rdb_parser::{Error, Event, Options, RdbDecoder};

/// `<workspace root>/../shared/rdb-corpus`, when present.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/rdb-corpus"
    ));
    if dir.join("MANIFEST.tsv").is_file() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: RDB corpus not found at {}", dir.display());
        None
    }
}

/// One row of MANIFEST.tsv.
#[derive(Debug, Clone)]
pub struct Row {
    pub file: String,
    pub magic: String,
    pub note: String,
    pub crc: String,
    pub scan: String,
}

pub fn manifest(dir: &std::path::Path) -> Vec<Row> {
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            let get = |i: usize| c.get(i).copied().unwrap_or("").to_string();
            Row {
                file: get(0),
                magic: get(5),
                note: get(6),
                crc: get(9),
                scan: get(11),
            }
        })
        .collect()
}

/// Decodes feeding `step` bytes at a time; returns the events and the final result.
pub fn decode_stepwise(data: &[u8], step: usize, opts: Options) -> (Vec<Event>, Result<(), Error>) {
    let (events, r) = decode_stepwise_at(data, step, opts);
    (events.into_iter().map(|(e, _)| e).collect(), r)
}

/// [`decode_stepwise`], with the decoder's offset after each event.
pub fn decode_stepwise_at(
    data: &[u8],
    step: usize,
    opts: Options,
) -> (Vec<(Event, u64)>, Result<(), Error>) {
    let mut dec = RdbDecoder::new(opts);
    let mut buf = BytesMut::new();
    let mut events = Vec::new();
    let mut fed = 0;
    loop {
        match dec.decode(&mut buf) {
            Ok(Some(ev)) => events.push((ev, dec.offset())),
            Ok(None) => {
                if dec.is_done() {
                    return (events, Ok(()));
                }
                if fed >= data.len() {
                    return (events, dec.finish());
                }
                let n = step.min(data.len() - fed);
                buf.extend_from_slice(&data[fed..fed + n]);
                fed += n;
            }
            Err(e) => return (events, Err(e)),
        }
    }
}

use std::collections::{BTreeMap, BTreeSet};

use rdb_parser::{HashEntry, KeyStart, StreamEntry, ValueKind};

/// A decoded value, in a form easy to compare with what a server answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(Vec<u8>),
    List(Vec<Vec<u8>>),
    Set(BTreeSet<Vec<u8>>),
    ZSet(Vec<(Vec<u8>, f64)>),
    Hash(BTreeMap<Vec<u8>, (Vec<u8>, Option<u64>)>),
    Stream {
        entries: Vec<(String, Vec<(Vec<u8>, Vec<u8>)>)>,
        length: u64,
        groups: Vec<(Vec<u8>, String, usize, Vec<Vec<u8>>)>,
    },
    Module(Vec<u8>),
}

#[derive(Debug, Clone)]
pub struct Key {
    pub start: KeyStart,
    pub value: Value,
    pub raw: Vec<u8>,
}

/// Folds events into keys by (db, key).
pub fn model(events: &[Event]) -> BTreeMap<(u32, Vec<u8>), Key> {
    let mut out = BTreeMap::new();
    let mut cur: Option<Key> = None;
    for ev in events {
        match ev {
            Event::KeyStart(k) => {
                assert!(cur.is_none(), "KeyStart inside a key");
                let value = match k.kind() {
                    ValueKind::String => Value::String(Vec::new()),
                    ValueKind::List => Value::List(Vec::new()),
                    ValueKind::Set => Value::Set(BTreeSet::new()),
                    ValueKind::ZSet => Value::ZSet(Vec::new()),
                    ValueKind::Hash => Value::Hash(BTreeMap::new()),
                    ValueKind::Stream => Value::Stream {
                        entries: Vec::new(),
                        length: 0,
                        groups: Vec::new(),
                    },
                    _ => Value::Module(Vec::new()),
                };
                cur = Some(Key {
                    start: k.clone(),
                    value,
                    raw: Vec::new(),
                });
            }
            Event::KeyEnd => {
                let k = cur.take().expect("KeyEnd outside a key");
                out.insert((k.start.db, k.start.key.to_vec()), k);
            }
            Event::RawValue(b) => cur.as_mut().unwrap().raw.extend_from_slice(b),
            ev => {
                let Some(k) = cur.as_mut() else { continue };
                match (&mut k.value, ev) {
                    (Value::String(s), Event::String(p)) => s.extend_from_slice(&p.to_vec()),
                    (Value::List(l), Event::ListItems(items)) => {
                        l.extend(items.iter().map(|s| s.to_vec()))
                    }
                    (Value::Set(l), Event::SetMembers(items)) => {
                        for s in items {
                            assert!(l.insert(s.to_vec()), "duplicate set member");
                        }
                    }
                    (Value::ZSet(l), Event::ZSetEntries(items)) => {
                        l.extend(items.iter().map(|e| (e.member.to_vec(), e.score)))
                    }
                    (Value::Hash(h), Event::HashEntries(items)) => {
                        for HashEntry {
                            field,
                            value,
                            expire_at_ms,
                        } in items
                        {
                            h.insert(field.to_vec(), (value.to_vec(), *expire_at_ms));
                        }
                    }
                    (Value::Stream { entries, .. }, Event::StreamEntries(items)) => {
                        for StreamEntry { id, fields } in items {
                            entries.push((
                                id.to_string(),
                                fields
                                    .iter()
                                    .map(|(f, v)| (f.to_vec(), v.to_vec()))
                                    .collect(),
                            ));
                        }
                    }
                    (Value::Stream { length, .. }, Event::StreamMeta(m)) => *length = m.length,
                    (Value::Stream { groups, .. }, Event::StreamGroup(g)) => {
                        groups.push((g.name.to_vec(), g.last_id.to_string(), 0, Vec::new()))
                    }
                    (Value::Stream { groups, .. }, Event::StreamPending(p)) => {
                        groups.last_mut().unwrap().2 += p.len()
                    }
                    (Value::Stream { groups, .. }, Event::StreamConsumer(c)) => {
                        groups.last_mut().unwrap().3.push(c.name.to_vec())
                    }
                    (Value::Stream { .. }, _) => {}
                    (Value::Module(m), Event::ModuleData(d)) => m.extend_from_slice(d),
                    (v, ev) => panic!("unexpected {ev:?} for {v:?}"),
                }
            }
        }
    }
    assert!(cur.is_none(), "unterminated key");
    out
}

use std::ops::ControlFlow;

use rdb_parser::{Item, KeyRef, Str, StreamId, Visitor};

/// One visitor call, owned, for comparing the zero-copy path with the event path. Raw value
/// pieces are gathered per key and recorded once, before `End` (their cut is not fixed).
#[derive(Debug, Clone, PartialEq)]
pub enum Rec {
    Key(KeyStart),
    Str(Str),
    List(Str),
    Set(Str),
    /// Member and score bits (so that NaN compares equal).
    ZSet(Str, u64),
    Hash(Str, Str, Option<u64>),
    Stream(StreamId, Vec<(Str, Str)>),
    Raw(Vec<u8>),
    /// The record length.
    End(u64),
    Event(Event),
}

/// A visitor recording every call.
#[derive(Debug, Default)]
pub struct Recorder {
    pub recs: Vec<Rec>,
    raw: Vec<u8>,
}

impl Visitor for Recorder {
    fn key_start(&mut self, key: &KeyRef<'_>) -> ControlFlow<()> {
        self.recs.push(Rec::Key(key.to_key_start()));
        ControlFlow::Continue(())
    }
    fn string(&mut self, piece: Item<'_>) -> ControlFlow<()> {
        self.recs.push(Rec::Str(piece.to_str()));
        ControlFlow::Continue(())
    }
    fn list_item(&mut self, item: Item<'_>) -> ControlFlow<()> {
        self.recs.push(Rec::List(item.to_str()));
        ControlFlow::Continue(())
    }
    fn set_member(&mut self, member: Item<'_>) -> ControlFlow<()> {
        self.recs.push(Rec::Set(member.to_str()));
        ControlFlow::Continue(())
    }
    fn zset_entry(&mut self, member: Item<'_>, score: f64) -> ControlFlow<()> {
        self.recs.push(Rec::ZSet(member.to_str(), score.to_bits()));
        ControlFlow::Continue(())
    }
    fn hash_entry(
        &mut self,
        field: Item<'_>,
        value: Item<'_>,
        ttl: Option<u64>,
    ) -> ControlFlow<()> {
        self.recs
            .push(Rec::Hash(field.to_str(), value.to_str(), ttl));
        ControlFlow::Continue(())
    }
    fn stream_entry(&mut self, id: StreamId, fields: &[(Item<'_>, Item<'_>)]) -> ControlFlow<()> {
        let f = fields
            .iter()
            .map(|(a, b)| (a.to_str(), b.to_str()))
            .collect();
        self.recs.push(Rec::Stream(id, f));
        ControlFlow::Continue(())
    }
    fn raw_value(&mut self, piece: &[u8]) -> ControlFlow<()> {
        self.raw.extend_from_slice(piece);
        ControlFlow::Continue(())
    }
    fn key_end(&mut self, record_len: u64) -> ControlFlow<()> {
        if !self.raw.is_empty() {
            self.recs.push(Rec::Raw(std::mem::take(&mut self.raw)));
        }
        self.recs.push(Rec::End(record_len));
        ControlFlow::Continue(())
    }
    fn event(&mut self, event: Event) -> ControlFlow<()> {
        self.recs.push(Rec::Event(event));
        ControlFlow::Continue(())
    }
}

/// What a visitor receives from the event path (`decode`, every event through `Event::visit`),
/// given each event with the decoder's offset after it (the record length of a `KeyEnd` is
/// that offset minus its `KeyStart::record_offset`).
pub fn recs_of_events(events: &[(Event, u64)]) -> Vec<Rec> {
    let mut r = Recorder::default();
    let mut record_offset = 0;
    for (e, offset) in events {
        if let Event::KeyStart(k) = e {
            record_offset = k.record_offset;
        }
        let _ = e.clone().visit(&mut r, offset - record_offset);
    }
    r.recs
}

/// The zero-copy path (`decode_into`), feeding `step` bytes at a time.
pub fn visit_stepwise(data: &[u8], step: usize, opts: Options) -> (Vec<Rec>, Result<(), Error>) {
    let mut r = Recorder::default();
    let res = visit_stepwise_into(data, step, opts, &mut r);
    (r.recs, res)
}

/// The zero-copy path into `v`, feeding `step` bytes at a time; a stop is resumed at once
/// (without feeding more). Returns how many stops there were.
pub fn visit_stepwise_into<V: Visitor>(
    data: &[u8],
    step: usize,
    opts: Options,
    v: &mut V,
) -> Result<(), Error> {
    let mut dec = RdbDecoder::new(opts);
    let mut buf = BytesMut::new();
    let mut fed = 0;
    loop {
        if dec.decode_into(&mut buf, v)?.is_break() {
            continue;
        }
        if dec.is_done() {
            return Ok(());
        }
        if fed >= data.len() {
            return dec.finish();
        }
        let n = step.min(data.len() - fed);
        buf.extend_from_slice(&data[fed..fed + n]);
        fed += n;
    }
}

/// Records every call (as [`Recorder`]) and stops after every `every`-th call.
#[derive(Debug)]
pub struct Stopper {
    pub rec: Recorder,
    pub every: u64,
    pub calls: u64,
    pub stops: u64,
}

impl Stopper {
    pub fn new(every: u64) -> Stopper {
        Stopper {
            rec: Recorder::default(),
            every: every.max(1),
            calls: 0,
            stops: 0,
        }
    }

    fn tick(&mut self, _: ControlFlow<()>) -> ControlFlow<()> {
        self.calls += 1;
        if self.calls % self.every == 0 {
            self.stops += 1;
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

impl Visitor for Stopper {
    fn key_start(&mut self, key: &KeyRef<'_>) -> ControlFlow<()> {
        let f = self.rec.key_start(key);
        self.tick(f)
    }
    fn string(&mut self, piece: Item<'_>) -> ControlFlow<()> {
        let f = self.rec.string(piece);
        self.tick(f)
    }
    fn list_item(&mut self, item: Item<'_>) -> ControlFlow<()> {
        let f = self.rec.list_item(item);
        self.tick(f)
    }
    fn set_member(&mut self, member: Item<'_>) -> ControlFlow<()> {
        let f = self.rec.set_member(member);
        self.tick(f)
    }
    fn zset_entry(&mut self, member: Item<'_>, score: f64) -> ControlFlow<()> {
        let f = self.rec.zset_entry(member, score);
        self.tick(f)
    }
    fn hash_entry(
        &mut self,
        field: Item<'_>,
        value: Item<'_>,
        ttl: Option<u64>,
    ) -> ControlFlow<()> {
        let f = self.rec.hash_entry(field, value, ttl);
        self.tick(f)
    }
    fn stream_entry(&mut self, id: StreamId, fields: &[(Item<'_>, Item<'_>)]) -> ControlFlow<()> {
        let f = self.rec.stream_entry(id, fields);
        self.tick(f)
    }
    fn raw_value(&mut self, piece: &[u8]) -> ControlFlow<()> {
        let f = self.rec.raw_value(piece);
        self.tick(f)
    }
    fn key_end(&mut self, record_len: u64) -> ControlFlow<()> {
        let f = self.rec.key_end(record_len);
        self.tick(f)
    }
    fn event(&mut self, event: Event) -> ControlFlow<()> {
        let f = self.rec.event(event);
        self.tick(f)
    }
}

/// Checks that the zero-copy path gives what the event path gives, fed whole and in steps of
/// `step`, with and without raw values; returns how the events path ended.
pub fn check_visit_matches_events(name: &str, data: &[u8], step: usize) -> Result<(), String> {
    let mut end = Ok(());
    for raw in [false, true] {
        let opts = Options::default().raw_values(raw);
        let (events, r) = decode_stepwise_at(data, usize::MAX, opts.clone());
        let want = recs_of_events(&events);
        for s in [usize::MAX, step] {
            let (got, r2) = visit_stepwise(data, s, opts.clone());
            match (&r, &r2) {
                (Ok(()), Ok(())) => {
                    if got != want {
                        let i = got.iter().zip(&want).position(|(a, b)| a != b);
                        let i = i.unwrap_or(got.len().min(want.len()));
                        panic!(
                            "{name} (raw {raw}, step {s}): visitor differs from events at call {i}: {:?} vs {:?}",
                            got.get(i),
                            want.get(i)
                        );
                    }
                    // Stopping and resuming at once gives the same calls.
                    let every = if data.len() < 64 * 1024 { 7 } else { 997 };
                    let mut stopper = Stopper::new(every);
                    visit_stepwise_into(data, s, opts.clone(), &mut stopper)
                        .unwrap_or_else(|e| panic!("{name} (raw {raw}, step {s}): stopped: {e}"));
                    assert_eq!(
                        stopper.stops,
                        stopper.calls / every,
                        "{name}: every {every}-th call stops"
                    );
                    if stopper.rec.recs != want {
                        let got = &stopper.rec.recs;
                        let i = got.iter().zip(&want).position(|(a, b)| a != b);
                        let i = i.unwrap_or(got.len().min(want.len()));
                        panic!(
                            "{name} (raw {raw}, step {s}): stopping every {every} calls differs at call {i}: {:?} vs {:?}",
                            got.get(i),
                            want.get(i)
                        );
                    }
                }
                (Err(a), Err(b)) => assert_eq!(
                    a.to_string(),
                    b.to_string(),
                    "{name} (raw {raw}, step {s}): different errors"
                ),
                (a, b) => panic!("{name} (raw {raw}, step {s}): events {a:?}, visitor {b:?}"),
            }
        }
        end = r.map_err(|e| e.to_string());
    }
    end
}
