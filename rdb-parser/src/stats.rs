//! What an RDB file holds, in one pass over the zero-copy [`Visitor`] path: keys per db and
//! type, TTLs, the bytes of each key's record, elements, the biggest keys, function
//! libraries and module aux records. `redis-migrate rdb stats` prints this.
//!
//! ```
//! use rdb_parser::stats::Stats;
//! use rdb_parser::{Options, ValueKind};
//!
//! // RDB 3: SELECTDB 0, "k" = "v", list "l" = [a, b], EOF.
//! let file: &[u8] = b"REDIS0003\xfe\x00\x00\x01k\x01v\x01\x01l\x02\x01a\x01b\xff";
//! let stats = Stats::from_reader(file, Options::default(), 10)?;
//! assert_eq!(stats.total().keys, 2);
//! let lists = stats.per_type()[&ValueKind::List];
//! assert_eq!((lists.keys, lists.elements, lists.bytes), (1, 2, 8));
//! assert_eq!(stats.biggest()[0].key, b"l");
//! # Ok::<(), rdb_parser::Error>(())
//! ```
//!
//! A key's size is its *record* in the file ([`crate::KeyRef::record_offset`],
//! [`Visitor::key_end`]'s `record_len`): the per-key prefixes (`EXPIRETIME`, `IDLE`, `FREQ`,
//! `KEY_META`), the type byte, the key and the serialized value, so compressed strings and
//! compact encodings count as stored. Elements are list items, set members, sorted set
//! entries, hash fields and live stream entries; for a string, its length in bytes.
//!
//! The element counts are read from the values' headers where they tell ([`Want::Count`]:
//! lengths, the declared counts of compact blobs, a compressed string's raw length), so the
//! elements themselves are not decoded and a corrupt element inside valid headers goes
//! unnoticed; [`Stats::decode_items`] decodes every element instead (same figures, slower).

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};
use std::io::Read;
use std::ops::ControlFlow;

use crate::error::Error;
use crate::event::{Aux, Eof, Event, Header, Item, StreamId};
use crate::input::Options;
use crate::opcode::ValueKind;
use crate::read::RdbReader;
use crate::visit::{KeyRef, Visitor, Want};

/// Counts of the keys of one db and type, one type, or the whole file.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counts {
    /// Keys.
    pub keys: u64,
    /// Keys with an expiry.
    pub with_ttl: u64,
    /// Bytes of their records in the file.
    pub bytes: u64,
    /// Their elements (for strings: bytes of the value).
    pub elements: u64,
}

impl Counts {
    fn add(&mut self, c: &Counts) {
        self.keys += c.keys;
        self.with_ttl += c.with_ttl;
        self.bytes += c.bytes;
        self.elements += c.elements;
    }
}

/// One key's footprint, as [`Stats::biggest`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeySize {
    /// Bytes of the key's record in the file.
    pub record_len: u64,
    /// Where the record starts in the file.
    pub record_offset: u64,
    /// The database.
    pub db: u32,
    /// The key.
    pub key: Vec<u8>,
    /// The value's type.
    pub kind: ValueKind,
    /// Elements (for a string: bytes of the value).
    pub elements: u64,
    /// Absolute expiry in ms, if any.
    pub expire_at_ms: Option<i64>,
}

impl KeySize {
    /// The order of [`Stats::biggest`]: size, then db, key, type name.
    fn rank(&self) -> Rank<'_> {
        (
            self.record_len,
            self.db,
            &self.key,
            self.kind.as_str(),
            self.elements,
            self.expire_at_ms.is_some(),
        )
    }
}

type Rank<'a> = (u64, u32, &'a [u8], &'static str, u64, bool);

impl Ord for KeySize {
    fn cmp(&self, other: &KeySize) -> Ordering {
        self.rank().cmp(&other.rank())
    }
}

impl PartialOrd for KeySize {
    fn partial_cmp(&self, other: &KeySize) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The value kinds, in a fixed order, for per-db arrays.
const KINDS: [ValueKind; 7] = [
    ValueKind::String,
    ValueKind::List,
    ValueKind::Set,
    ValueKind::ZSet,
    ValueKind::Hash,
    ValueKind::Stream,
    ValueKind::Module,
];

fn kind_index(k: ValueKind) -> usize {
    KINDS
        .iter()
        .position(|&x| x == k)
        .unwrap_or(KINDS.len() - 1)
}

/// The key being counted.
#[derive(Debug, Default)]
struct Current {
    db_slot: usize,
    kind: usize,
    key: Vec<u8>,
    record_offset: u64,
    expire_at_ms: Option<i64>,
    elements: u64,
}

/// Statistics of an RDB stream: a [`Visitor`] (feed it with [`crate::RdbReader::visit`],
/// [`crate::RdbDecoder::decode_into`] or [`crate::visit_all`]), or [`Stats::from_reader`].
///
/// See the [module documentation](self) for what is counted.
#[derive(Debug)]
pub struct Stats {
    top: usize,
    header: Option<Header>,
    aux: Vec<Aux>,
    functions: u64,
    module_aux: u64,
    eof: Option<Eof>,
    /// Per db (in order of appearance): counts per kind (index in `KINDS`).
    dbs: Vec<(u32, [Counts; 7])>,
    biggest: BinaryHeap<Reverse<KeySize>>,
    cur: Current,
    in_key: bool,
    decode_items: bool,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats::new(10)
    }
}

impl Stats {
    /// Empty statistics that will keep the `top` biggest keys.
    pub fn new(top: usize) -> Stats {
        Stats {
            top,
            header: None,
            aux: Vec::new(),
            functions: 0,
            module_aux: 0,
            eof: None,
            dbs: Vec::new(),
            biggest: BinaryHeap::new(),
            cur: Current::default(),
            in_key: false,
            decode_items: false,
        }
    }

    /// Decode every element (`true`) instead of reading the counts from the values'
    /// headers (`false`, the default: see [`Want::Count`]). The figures are the same;
    /// decoding every element is slower, and notices a corrupt element inside a value whose
    /// lengths and headers are valid.
    pub fn decode_items(mut self, yes: bool) -> Stats {
        self.decode_items = yes;
        self
    }

    /// Reads a whole RDB stream (keeping the `top` biggest keys).
    pub fn from_reader<R: Read>(reader: R, opts: Options, top: usize) -> Result<Stats, Error> {
        let mut stats = Stats::new(top);
        // Stats never stops the decoder.
        let _ = RdbReader::new(reader, opts).visit(&mut stats)?;
        Ok(stats)
    }

    /// The header (magic and version).
    pub fn header(&self) -> Option<Header> {
        self.header
    }

    /// The `AUX` fields, in file order.
    pub fn aux(&self) -> &[Aux] {
        &self.aux
    }

    /// Function libraries.
    pub fn functions(&self) -> u64 {
        self.functions
    }

    /// Module aux records.
    pub fn module_aux(&self) -> u64 {
        self.module_aux
    }

    /// The end of the stream (length, checksum status), once read.
    pub fn eof(&self) -> Option<Eof> {
        self.eof
    }

    /// Counts per db and type.
    pub fn per_db(&self) -> BTreeMap<(u32, ValueKind), Counts> {
        let mut m = BTreeMap::new();
        for (db, counts) in &self.dbs {
            for (i, c) in counts.iter().enumerate() {
                if c.keys > 0 {
                    m.entry((*db, KINDS[i]))
                        .or_insert_with(Counts::default)
                        .add(c);
                }
            }
        }
        m
    }

    /// Counts per type.
    pub fn per_type(&self) -> BTreeMap<ValueKind, Counts> {
        let mut m = BTreeMap::new();
        for (_, counts) in &self.dbs {
            for (i, c) in counts.iter().enumerate() {
                if c.keys > 0 {
                    m.entry(KINDS[i]).or_insert_with(Counts::default).add(c);
                }
            }
        }
        m
    }

    /// Counts of the whole file.
    pub fn total(&self) -> Counts {
        let mut t = Counts::default();
        for (_, counts) in &self.dbs {
            counts.iter().for_each(|c| t.add(c));
        }
        t
    }

    /// The biggest keys by record size, biggest first (at most `top`; ties by db, key).
    pub fn biggest(&self) -> Vec<KeySize> {
        let mut v: Vec<KeySize> = self.biggest.iter().map(|Reverse(k)| k.clone()).collect();
        v.sort_by(|a, b| b.cmp(a));
        v
    }

    fn db_slot(&mut self, db: u32) -> usize {
        let last = self.cur.db_slot;
        if self.dbs.get(last).is_some_and(|(d, _)| *d == db) {
            return last;
        }
        match self.dbs.iter().position(|(d, _)| *d == db) {
            Some(i) => i,
            None => {
                self.dbs.push((db, [Counts::default(); 7]));
                self.dbs.len() - 1
            }
        }
    }

    #[inline(always)]
    fn element(&mut self, n: u64) -> ControlFlow<()> {
        self.cur.elements += n;
        ControlFlow::Continue(())
    }

    fn end_key(&mut self, record_len: u64) {
        self.in_key = false;
        let cur = &self.cur;
        let c = &mut self.dbs[cur.db_slot].1[cur.kind];
        c.keys += 1;
        c.with_ttl += u64::from(cur.expire_at_ms.is_some());
        c.bytes += record_len;
        c.elements += cur.elements;
        if self.top == 0 {
            return;
        }
        let kind = KINDS[cur.kind];
        let rank: Rank<'_> = (
            record_len,
            self.dbs[cur.db_slot].0,
            &cur.key,
            kind.as_str(),
            cur.elements,
            cur.expire_at_ms.is_some(),
        );
        if self.biggest.len() >= self.top {
            match self.biggest.peek() {
                Some(Reverse(min)) if rank > min.rank() => {}
                _ => return,
            }
            self.biggest.pop();
        }
        self.biggest.push(Reverse(KeySize {
            record_len,
            record_offset: cur.record_offset,
            db: self.dbs[cur.db_slot].0,
            key: cur.key.clone(),
            kind,
            elements: cur.elements,
            expire_at_ms: cur.expire_at_ms,
        }));
    }
}

impl Visitor for Stats {
    fn key_start(&mut self, key: &KeyRef<'_>) -> ControlFlow<()> {
        let slot = self.db_slot(key.db);
        let cur = &mut self.cur;
        cur.db_slot = slot;
        cur.kind = kind_index(key.kind());
        cur.key.clear();
        cur.key.extend_from_slice(key.key);
        cur.record_offset = key.record_offset;
        cur.expire_at_ms = key.expire_at_ms;
        cur.elements = 0;
        self.in_key = true;
        ControlFlow::Continue(())
    }
    fn string(&mut self, piece: Item<'_>) -> ControlFlow<()> {
        self.element(piece.len() as u64)
    }
    fn list_item(&mut self, _item: Item<'_>) -> ControlFlow<()> {
        self.element(1)
    }
    fn set_member(&mut self, _member: Item<'_>) -> ControlFlow<()> {
        self.element(1)
    }
    fn zset_entry(&mut self, _member: Item<'_>, _score: f64) -> ControlFlow<()> {
        self.element(1)
    }
    fn hash_entry(&mut self, _f: Item<'_>, _v: Item<'_>, _ttl: Option<u64>) -> ControlFlow<()> {
        self.element(1)
    }
    fn stream_entry(&mut self, _id: StreamId, _f: &[(Item<'_>, Item<'_>)]) -> ControlFlow<()> {
        self.element(1)
    }
    fn wants(&mut self, _value_len: u64) -> Want {
        if self.decode_items {
            Want::Items
        } else {
            Want::Count
        }
    }
    fn element_count(&mut self, elements: u64) -> ControlFlow<()> {
        self.element(elements)
    }
    fn key_end(&mut self, record_len: u64) -> ControlFlow<()> {
        if self.in_key {
            self.end_key(record_len);
        }
        ControlFlow::Continue(())
    }
    fn event(&mut self, event: Event) -> ControlFlow<()> {
        match event {
            Event::Header(h) => self.header = Some(h),
            Event::Aux(a) => self.aux.push(a),
            Event::Function(_) => self.functions += 1,
            Event::ModuleAux(_) => self.module_aux += 1,
            Event::Eof(e) => self.eof = Some(e),
            _ => {}
        }
        ControlFlow::Continue(())
    }
}
