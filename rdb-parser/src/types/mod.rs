//! Value decoders, one file per type: each is a resumable state machine stepped by the
//! decoder, consuming one unit per step and pushing value events.

use bytes::{Bytes, BytesMut};

use crate::cursor::need;
use crate::encoding::double::str_to_f64;
use crate::encoding::intset::IntsetIter;
use crate::encoding::listpack::ListpackIter;
use crate::encoding::ziplist::ZiplistIter;
use crate::encoding::zipmap::ZipmapIter;
use crate::error::Error;
use crate::event::{Event, HashEntry, Str, ZSetEntry};
use crate::input::{Chunker, Io, Step};
use crate::opcode::RdbType;

pub(crate) mod hash;
pub(crate) mod list;
pub(crate) mod module;
pub(crate) mod set;
pub(crate) mod stream;
pub(crate) mod string;
pub(crate) mod zset;

/// The state of the value being decoded.
#[derive(Debug)]
pub(crate) enum ValueState {
    String(string::StringState),
    /// Counted collections of plain strings (list, set, zset, hash and the hash-TTL tables).
    Counted(Counted),
    /// A value held in one compact blob.
    Blob(BlobValue),
    Quicklist(list::Quicklist),
    Stream(Box<stream::StreamState>),
    Module(module::ModuleValue),
}

impl ValueState {
    pub(crate) fn new(t: RdbType, min_expire: Option<u64>) -> ValueState {
        use RdbType::*;
        match t {
            String => ValueState::String(string::StringState::default()),
            List => ValueState::Counted(Counted::new(CountedKind::List)),
            Set => ValueState::Counted(Counted::new(CountedKind::Set)),
            ZSet => ValueState::Counted(Counted::new(CountedKind::ZSetAscii)),
            ZSet2 => ValueState::Counted(Counted::new(CountedKind::ZSetBinary)),
            Hash => ValueState::Counted(Counted::new(CountedKind::Hash)),
            HashMetadataPreGa => ValueState::Counted(Counted::new(CountedKind::HashTtlAbs)),
            HashMetadata => ValueState::Counted(Counted::new(CountedKind::HashTtlRel(
                min_expire.unwrap_or(0),
            ))),
            Hash2 => ValueState::Counted(Counted::new(CountedKind::Hash2)),
            HashZipmap => ValueState::Blob(BlobValue::new(BlobKind::Zipmap, Shape::Hash)),
            ListZiplist => ValueState::Blob(BlobValue::new(BlobKind::Ziplist, Shape::List)),
            SetIntset => ValueState::Blob(BlobValue::new(BlobKind::Intset, Shape::Set)),
            ZSetZiplist => ValueState::Blob(BlobValue::new(BlobKind::Ziplist, Shape::ZSet)),
            HashZiplist => ValueState::Blob(BlobValue::new(BlobKind::Ziplist, Shape::Hash)),
            HashListpack => ValueState::Blob(BlobValue::new(BlobKind::Listpack, Shape::Hash)),
            ZSetListpack => ValueState::Blob(BlobValue::new(BlobKind::Listpack, Shape::ZSet)),
            SetListpack => ValueState::Blob(BlobValue::new(BlobKind::Listpack, Shape::Set)),
            HashListpackExPreGa | HashListpackEx => {
                ValueState::Blob(BlobValue::new(BlobKind::Listpack, Shape::HashTtl))
            }
            ListQuicklist => ValueState::Quicklist(list::Quicklist::new(false)),
            ListQuicklist2 => ValueState::Quicklist(list::Quicklist::new(true)),
            StreamListpacks | StreamListpacks2 | StreamListpacks3 | StreamListpacks4 => {
                ValueState::Stream(Box::new(stream::StreamState::new(t)))
            }
            // Rejected before the value starts (see the decoder).
            ModulePreGa | Module2 => ValueState::Module(module::ModuleValue::new()),
        }
    }

    pub(crate) fn step(&mut self, io: &mut Io, buf: &mut BytesMut) -> Result<Step, Error> {
        match self {
            ValueState::String(s) => s.step(io, buf),
            ValueState::Counted(c) => c.step(io, buf),
            ValueState::Blob(b) => b.step(io, buf),
            ValueState::Quicklist(q) => q.step(io, buf),
            ValueState::Stream(s) => s.step(io, buf),
            ValueState::Module(m) => m.step(io, buf),
        }
    }
}

/// The element layout of a counted collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CountedKind {
    List,
    Set,
    ZSetAscii,
    ZSetBinary,
    Hash,
    /// Redis 22 (7.4 RC): `ttl field value`, absolute ttl (0 = none).
    HashTtlAbs,
    /// Redis 24: `ttl field value`, ttl relative to the minimum (+1; 0 = none).
    HashTtlRel(u64),
    /// Valkey 22: `field value expiry-ms (i64 LE, -1 = none)`.
    Hash2,
}

/// The event sink of a collection value.
#[derive(Debug)]
pub(crate) enum Sink {
    List(Chunker<Str>),
    Set(Chunker<Str>),
    ZSet(Chunker<ZSetEntry>),
    Hash(Chunker<HashEntry>),
}

impl Sink {
    pub(crate) fn list() -> Sink {
        Sink::List(Chunker::new(Event::ListItems))
    }
    pub(crate) fn set() -> Sink {
        Sink::Set(Chunker::new(Event::SetMembers))
    }
    pub(crate) fn zset() -> Sink {
        Sink::ZSet(Chunker::new(Event::ZSetEntries))
    }
    pub(crate) fn hash() -> Sink {
        Sink::Hash(Chunker::new(Event::HashEntries))
    }

    /// Sets the expected item count (see [`Chunker::set_hint`]).
    pub(crate) fn set_hint(&mut self, n: usize) {
        match self {
            Sink::List(c) | Sink::Set(c) => c.set_hint(n),
            Sink::ZSet(c) => c.set_hint(n),
            Sink::Hash(c) => c.set_hint(n),
        }
    }

    pub(crate) fn flush(&mut self, io: &mut Io) {
        match self {
            Sink::List(c) | Sink::Set(c) => c.flush(io),
            Sink::ZSet(c) => c.flush(io),
            Sink::Hash(c) => c.flush(io),
        }
    }

    /// Pushes a single-string item (list element, set member).
    pub(crate) fn push_str(&mut self, io: &mut Io, s: Str) {
        let n = s.len();
        match self {
            Sink::List(c) | Sink::Set(c) => c.push(io, s, n),
            _ => unreachable!("push_str on a pair sink"),
        }
    }

    pub(crate) fn push_zset(&mut self, io: &mut Io, member: Str, score: f64) {
        let n = member.len() + 8;
        if let Sink::ZSet(c) = self {
            c.push(io, ZSetEntry { member, score }, n);
        }
    }

    pub(crate) fn push_hash(&mut self, io: &mut Io, field: Str, value: Str, ttl: Option<u64>) {
        let n = field.len() + value.len();
        if let Sink::Hash(c) = self {
            c.push(
                io,
                HashEntry {
                    field,
                    value,
                    expire_at_ms: ttl,
                },
                n,
            );
        }
    }
}

/// A collection stored as a count followed by plain elements.
#[derive(Debug)]
pub(crate) struct Counted {
    kind: CountedKind,
    remaining: Option<u64>,
    sink: Sink,
}

impl Counted {
    fn new(kind: CountedKind) -> Counted {
        let sink = match kind {
            CountedKind::List => Sink::list(),
            CountedKind::Set => Sink::set(),
            CountedKind::ZSetAscii | CountedKind::ZSetBinary => Sink::zset(),
            _ => Sink::hash(),
        };
        Counted {
            kind,
            remaining: None,
            sink,
        }
    }

    fn step(&mut self, io: &mut Io, buf: &mut BytesMut) -> Result<Step, Error> {
        let remaining = match self.remaining {
            Some(r) => r,
            None => {
                let mut p = io.peek(buf);
                let n = need!(p.len("element count"));
                io.skip(buf, p.pos());
                self.remaining = Some(n);
                // Each element takes at least one byte: expect no more than are buffered.
                self.sink
                    .set_hint(usize::try_from(n).unwrap_or(usize::MAX).min(buf.len()));
                n
            }
        };
        let mut remaining = remaining;
        // Elements are read in a loop while they are complete in the buffer and no chunk
        // event is waiting: one step per chunk rather than per element.
        let before = io.out.len();
        loop {
            if remaining == 0 {
                self.sink.flush(io);
                return Ok(Step::Done);
            }
            let complete = match self.kind {
                CountedKind::List | CountedKind::Set => set::step_member(io, buf, &mut self.sink)?,
                CountedKind::ZSetAscii => zset::step_entry(io, buf, &mut self.sink, false)?,
                CountedKind::ZSetBinary => zset::step_entry(io, buf, &mut self.sink, true)?,
                kind => hash::step_entry(io, buf, &mut self.sink, kind)?,
            };
            if !complete {
                return Ok(Step::NeedMore);
            }
            remaining -= 1;
            self.remaining = Some(remaining);
            // A raw-value chunk is due after the element that filled it, exactly as when
            // elements are stepped one by one (the order must not depend on input splits).
            io.flush_raw(false);
            if io.out.len() != before {
                return Ok(Step::Continue);
            }
        }
    }
}

/// Which compact blob encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlobKind {
    Ziplist,
    Listpack,
    Intset,
    Zipmap,
}

/// How the entries of a blob group into items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    List,
    Set,
    ZSet,
    Hash,
    /// Listpack hash with field TTLs: `field value ttl` (ttl 0 = none; absolute).
    HashTtl,
}

impl Shape {
    /// Blob entries per item.
    pub(crate) fn width(self) -> usize {
        match self {
            Shape::List | Shape::Set => 1,
            Shape::ZSet | Shape::Hash => 2,
            Shape::HashTtl => 3,
        }
    }
}

/// The entries of one blob.
#[derive(Debug)]
pub(crate) enum Entries {
    Ziplist(ZiplistIter),
    Listpack(ListpackIter),
    Intset(IntsetIter),
    Zipmap(ZipmapIter),
}

impl Entries {
    pub(crate) fn open(kind: BlobKind, blob: Bytes) -> Result<Entries, String> {
        Ok(match kind {
            BlobKind::Ziplist => Entries::Ziplist(ZiplistIter::new(blob)?),
            BlobKind::Listpack => Entries::Listpack(ListpackIter::new(blob)?),
            BlobKind::Intset => Entries::Intset(IntsetIter::new(blob)?),
            BlobKind::Zipmap => Entries::Zipmap(ZipmapIter::new(blob)?),
        })
    }

    /// Entries the blob can hold at most (each takes at least 2 bytes of it; intset members
    /// at least 2): a chunk-size hint bounded by the bytes in memory.
    pub(crate) fn max_entries(&self) -> usize {
        match self {
            Entries::Ziplist(z) => z.blob_len() / 2,
            Entries::Listpack(l) => l.blob_len() / 2,
            Entries::Intset(i) => i.blob_len() / 2,
            Entries::Zipmap(z) => z.blob_len() / 2,
        }
    }

    pub(crate) fn next_entry(&mut self) -> Result<Option<Str>, String> {
        match self {
            Entries::Ziplist(z) => z.next_entry(),
            Entries::Listpack(l) => l.next_entry(),
            Entries::Intset(i) => Ok(i.next_int().map(Str::Int)),
            Entries::Zipmap(z) => Ok(z.next_entry()?.map(Str::Bytes)),
        }
    }

    /// Moves up to one chunk of items into `sink`; returns `false` once exhausted.
    pub(crate) fn drain(
        &mut self,
        io: &mut Io,
        sink: &mut Sink,
        shape: Shape,
        at: u64,
    ) -> Result<bool, Error> {
        let bad = |what: String| Error::corrupt(format!("{what} (in the blob)"), at);
        let before = io.out.len();
        while io.out.len() == before {
            let Some(first) = self.next_entry().map_err(bad)? else {
                return Ok(false);
            };
            match shape {
                Shape::List | Shape::Set => sink.push_str(io, first),
                Shape::ZSet => {
                    let score = self
                        .next_entry()
                        .map_err(bad)?
                        .ok_or_else(|| bad("sorted set member without a score".into()))?;
                    let s = str_to_f64(&score)
                        .ok_or_else(|| bad(format!("score {score:?} is not a number")))?;
                    sink.push_zset(io, first, s);
                }
                Shape::Hash => {
                    let value = self
                        .next_entry()
                        .map_err(bad)?
                        .ok_or_else(|| bad("hash field without a value".into()))?;
                    sink.push_hash(io, first, value, None);
                }
                Shape::HashTtl => {
                    let value = self
                        .next_entry()
                        .map_err(bad)?
                        .ok_or_else(|| bad("hash field without a value".into()))?;
                    let ttl = self
                        .next_entry()
                        .map_err(bad)?
                        .ok_or_else(|| bad("hash field without a TTL".into()))?;
                    let ttl = match ttl {
                        Str::Int(0) => None,
                        Str::Int(t) if t > 0 => Some(t as u64),
                        other => return Err(bad(format!("hash field TTL {other:?}"))),
                    };
                    sink.push_hash(io, first, value, ttl);
                }
            }
        }
        Ok(true)
    }
}

/// A value held in one compact blob string.
#[derive(Debug)]
pub(crate) struct BlobValue {
    kind: BlobKind,
    shape: Shape,
    entries: Option<(Entries, u64)>,
    sink: Sink,
}

impl BlobValue {
    fn new(kind: BlobKind, shape: Shape) -> BlobValue {
        let sink = match shape {
            Shape::List => Sink::list(),
            Shape::Set => Sink::set(),
            Shape::ZSet => Sink::zset(),
            Shape::Hash | Shape::HashTtl => Sink::hash(),
        };
        BlobValue {
            kind,
            shape,
            entries: None,
            sink,
        }
    }

    fn step(&mut self, io: &mut Io, buf: &mut BytesMut) -> Result<Step, Error> {
        match &mut self.entries {
            None => {
                let (blob, at) = need!(read_blob(io, buf));
                let e = Entries::open(self.kind, blob)
                    .map_err(|w| Error::corrupt(format!("{w} (in the blob)"), at))?;
                self.sink.set_hint(e.max_entries() / self.shape.width());
                self.entries = Some((e, at));
                Ok(Step::Continue)
            }
            Some((e, at)) => {
                if e.drain(io, &mut self.sink, self.shape, *at)? {
                    Ok(Step::Continue)
                } else {
                    self.sink.flush(io);
                    Ok(Step::Done)
                }
            }
        }
    }
}

/// Reads one whole string unit (a blob), bounded by `max_buffered`; returns it with its offset.
pub(crate) fn read_blob(io: &mut Io, buf: &mut BytesMut) -> crate::cursor::PResult<(Bytes, u64)> {
    let at = io.offset;
    let mut p = io.peek(buf);
    let s = p.string(io.opts.max_buffered)?;
    let total = p.pos();
    Ok((io.consume_str(buf, total, s)?.to_bytes(), at))
}
