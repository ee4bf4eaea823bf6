//! Streams (types 15, 19, 21, 26; see `src/t_stream.c` and `rdbLoadObject`).
//!
//! Layout: `listpacks-count`, per node `nodekey (16-byte string: master id, big-endian)` and a
//! listpack; then `length`, `last-id` (two lengths); v2+: `first-id`, `max-deleted-id`,
//! `entries-added`; then `groups-count`, per group `name`, `last-id`, v2+ `entries-read`, the
//! PEL (`count`, per entry a raw 16-byte id, an 8-byte LE delivery time and a delivery count),
//! and `consumers-count`, per consumer `name`, `seen-time` (8 bytes LE), v3+ `active-time`,
//! and its PEL (`count`, raw ids). v4 (Redis 8.6) then adds the idempotent-producer state,
//! handed out raw: `duration`, `maxsize`, `producers-count` (only 0 is decoded: the producer
//! entry layout is not handled yet), `iids-added`, `iids-duplicates`.
//!
//! Inside a node listpack: the master entry `count deleted n-fields field... 0`, then per entry
//! `flags ms-diff seq-diff` and either the values of the master fields (flag SAMEFIELDS) or
//! `n-fields (field value)...`, then `lp-count`. Deleted entries (flag DELETED) are skipped.

use bytes::{Bytes, BytesMut};

use crate::cursor::{need, Cursor};
use crate::encoding::listpack::ListpackIter;
use crate::error::Error;
use crate::event::{
    Event, Item, PendingEntry, Str, StreamConsumer, StreamEntry, StreamGroup, StreamId, StreamMeta,
};
use crate::input::{Chunker, Io, Step};
use crate::opcode::RdbType;

pub(crate) const FLAG_DELETED: i64 = 1;
pub(crate) const FLAG_SAMEFIELDS: i64 = 2;

/// The stream format version of a stream type (1-4).
pub(crate) fn version(t: RdbType) -> u8 {
    match t {
        RdbType::StreamListpacks => 1,
        RdbType::StreamListpacks2 => 2,
        RdbType::StreamListpacks3 => 3,
        _ => 4,
    }
}

#[derive(Debug)]
enum Phase {
    Nodes(Option<u64>),
    Meta,
    Groups(Option<u64>),
    GroupPel(Option<u64>),
    Consumers(Option<u64>),
    ConsumerPel(Option<u64>),
    Idmp,
}

#[derive(Debug)]
pub(crate) struct StreamState {
    version: u8,
    phase: Phase,
    node: Option<Node>,
    groups_left: u64,
    consumers_left: u64,
    entries: Chunker<StreamEntry>,
    pel: Chunker<PendingEntry>,
    cpel: Chunker<StreamId>,
}

impl StreamState {
    pub(crate) fn new(t: RdbType) -> StreamState {
        StreamState {
            version: version(t),
            phase: Phase::Nodes(None),
            node: None,
            groups_left: 0,
            consumers_left: 0,
            entries: Chunker::new(Event::StreamEntries),
            pel: Chunker::new(Event::StreamPending),
            cpel: Chunker::new(Event::StreamConsumerPending),
        }
    }

    pub(crate) fn step(&mut self, io: &mut Io, buf: &mut BytesMut) -> Result<Step, Error> {
        if let Some(node) = &mut self.node {
            let before = io.out.len();
            while io.out.len() == before {
                match node.next_entry()? {
                    Some(e) => {
                        let size = e.fields.iter().map(|(f, v)| f.len() + v.len()).sum();
                        self.entries.push(io, e, size);
                    }
                    None => {
                        self.node = None;
                        break;
                    }
                }
            }
            return Ok(Step::Continue);
        }
        let at = io.offset;
        let mut p = io.peek(buf);
        match &mut self.phase {
            Phase::Nodes(left) => {
                let n = match *left {
                    Some(n) => n,
                    None => {
                        let n = need!(p.len("stream node count"));
                        io.skip(buf, p.pos());
                        *left = Some(n);
                        return Ok(Step::Continue);
                    }
                };
                if n == 0 {
                    self.entries.flush(io);
                    self.phase = Phase::Meta;
                    return Ok(Step::Continue);
                }
                let key = need!(p.string(io.opts.max_buffered));
                let lp = need!(p.string(io.opts.max_buffered));
                let chunk = io.consume(buf, p.pos());
                let key = key.resolve_bytes(&chunk)?;
                let lp = lp.resolve_bytes(&chunk)?;
                if key.len() != 16 {
                    return Err(Error::corrupt(
                        format!("stream node key of {} bytes, expected 16", key.len()),
                        at,
                    ));
                }
                let master = raw_id(&key);
                self.node = Some(Node::open(master, lp, at)?);
                *left = Some(n - 1);
                Ok(Step::Continue)
            }
            Phase::Meta => {
                let length = need!(p.len("stream length"));
                let last_id = need!(id(&mut p));
                let (first_id, max_deleted_id, entries_added) = if self.version >= 2 {
                    let f = need!(id(&mut p));
                    let m = need!(id(&mut p));
                    let a = need!(p.len("stream entries added"));
                    (Some(f), Some(m), Some(a))
                } else {
                    (None, None, None)
                };
                io.skip(buf, p.pos());
                io.emit(Event::StreamMeta(StreamMeta {
                    length,
                    last_id,
                    first_id,
                    max_deleted_id,
                    entries_added,
                }));
                self.phase = Phase::Groups(None);
                Ok(Step::Continue)
            }
            Phase::Groups(left) => {
                let n = match *left {
                    Some(n) => n,
                    None => {
                        let n = need!(p.len("stream group count"));
                        io.skip(buf, p.pos());
                        *left = Some(n);
                        self.groups_left = n;
                        return Ok(Step::Continue);
                    }
                };
                if n == 0 {
                    if self.version >= 4 {
                        self.phase = Phase::Idmp;
                        return Ok(Step::Continue);
                    }
                    return Ok(Step::Done);
                }
                let name = need!(p.string(io.opts.max_buffered));
                let last_id = need!(id(&mut p));
                let entries_read = if self.version >= 2 {
                    Some(need!(p.len("stream group entries read")))
                } else {
                    None
                };
                let chunk = io.consume(buf, p.pos());
                let name = name.resolve_bytes(&chunk)?;
                // Redis writes the "unknown" value as SCG_INVALID_ENTRIES_READ (-1 as u64).
                let entries_read = entries_read.filter(|&e| e != u64::MAX);
                io.emit(Event::StreamGroup(StreamGroup {
                    name,
                    last_id,
                    entries_read,
                }));
                self.groups_left = n - 1;
                self.phase = Phase::GroupPel(None);
                Ok(Step::Continue)
            }
            Phase::GroupPel(left) => {
                let n = match *left {
                    Some(n) => n,
                    None => {
                        let n = need!(p.len("stream PEL size"));
                        io.skip(buf, p.pos());
                        *left = Some(n);
                        return Ok(Step::Continue);
                    }
                };
                if n == 0 {
                    self.pel.flush(io);
                    self.phase = Phase::Consumers(None);
                    return Ok(Step::Continue);
                }
                let raw: [u8; 16] = need!(p.array());
                let delivery_time_ms = need!(p.u64_le());
                let delivery_count = need!(p.len("stream PEL delivery count"));
                io.skip(buf, p.pos());
                let e = PendingEntry {
                    id: raw_id(&raw),
                    delivery_time_ms,
                    delivery_count,
                };
                self.pel.push(io, e, 32);
                *left = Some(n - 1);
                Ok(Step::Continue)
            }
            Phase::Consumers(left) => {
                let n = match *left {
                    Some(n) => n,
                    None => {
                        let n = need!(p.len("stream consumer count"));
                        io.skip(buf, p.pos());
                        *left = Some(n);
                        self.consumers_left = n;
                        return Ok(Step::Continue);
                    }
                };
                if n == 0 {
                    self.phase = Phase::Groups(Some(self.groups_left));
                    return Ok(Step::Continue);
                }
                let name = need!(p.string(io.opts.max_buffered));
                let seen_time_ms = need!(p.u64_le());
                let active_time_ms = if self.version >= 3 {
                    Some(need!(p.u64_le()))
                } else {
                    None
                };
                let chunk = io.consume(buf, p.pos());
                let name = name.resolve_bytes(&chunk)?;
                io.emit(Event::StreamConsumer(StreamConsumer {
                    name,
                    seen_time_ms,
                    active_time_ms,
                }));
                self.consumers_left = n - 1;
                self.phase = Phase::ConsumerPel(None);
                Ok(Step::Continue)
            }
            Phase::ConsumerPel(left) => {
                let n = match *left {
                    Some(n) => n,
                    None => {
                        let n = need!(p.len("stream consumer PEL size"));
                        io.skip(buf, p.pos());
                        *left = Some(n);
                        return Ok(Step::Continue);
                    }
                };
                if n == 0 {
                    self.cpel.flush(io);
                    self.phase = Phase::Consumers(Some(self.consumers_left));
                    return Ok(Step::Continue);
                }
                let raw: [u8; 16] = need!(p.array());
                io.skip(buf, p.pos());
                self.cpel.push(io, raw_id(&raw), 16);
                *left = Some(n - 1);
                Ok(Step::Continue)
            }
            Phase::Idmp => {
                let _duration = need!(p.len("stream IDMP duration"));
                let _maxsize = need!(p.len("stream IDMP maxsize"));
                let producers = need!(p.len("stream IDMP producer count"));
                if producers != 0 {
                    return Err(Error::corrupt(
                        format!(
                            "stream v4 with {producers} idempotent producers (producer entries \
                             are not supported yet)"
                        ),
                        at,
                    ));
                }
                let _added = need!(p.len("stream IDMP iids added"));
                let _dups = need!(p.len("stream IDMP iids duplicates"));
                let raw: Bytes = io.consume(buf, p.pos());
                io.emit(Event::StreamIdmp(raw));
                Ok(Step::Done)
            }
        }
    }
}

/// A stream id as two lengths.
fn id(p: &mut Cursor<'_>) -> crate::cursor::PResult<StreamId> {
    let ms = p.len("stream id")?;
    let seq = p.len("stream id")?;
    Ok(StreamId { ms, seq })
}

/// A stream id from 16 raw big-endian bytes.
pub(crate) fn raw_id(b: &[u8]) -> StreamId {
    let mut ms = [0u8; 8];
    let mut seq = [0u8; 8];
    ms.copy_from_slice(&b[..8]);
    seq.copy_from_slice(&b[8..16]);
    StreamId {
        ms: u64::from_be_bytes(ms),
        seq: u64::from_be_bytes(seq),
    }
}

/// The entries of one stream node (listpack).
#[derive(Debug)]
struct Node {
    lp: ListpackIter,
    master: StreamId,
    master_fields: Vec<Str>,
    left: u64,
    at: u64,
}

impl Node {
    fn open(master: StreamId, blob: Bytes, at: u64) -> Result<Node, Error> {
        let bad = |w: String| Error::corrupt(format!("{w} (in a stream node)"), at);
        let mut lp = ListpackIter::new(blob).map_err(bad)?;
        let mut int = |what: &str| -> Result<i64, Error> {
            let e = lp.next_entry().map_err(bad)?;
            e.as_ref()
                .and_then(|s| as_int(s.as_item()))
                .ok_or_else(|| bad(format!("stream node {what}: {e:?}")))
        };
        let count = int("entry count")?;
        let deleted = int("deleted count")?;
        let nfields = int("master field count")?;
        if count < 0 || deleted < 0 || nfields < 0 {
            return Err(bad("negative stream node header value".into()));
        }
        let mut master_fields = Vec::with_capacity((nfields as usize).min(64));
        for _ in 0..nfields {
            let f = lp
                .next_entry()
                .map_err(bad)?
                .ok_or_else(|| bad("stream node master fields cut short".into()))?;
            master_fields.push(f);
        }
        let term = lp.next_entry().map_err(bad)?;
        if term != Some(Str::Int(0)) {
            return Err(bad(format!("stream master entry terminator {term:?}")));
        }
        Ok(Node {
            lp,
            master,
            master_fields,
            left: (count as u64).saturating_add(deleted as u64),
            at,
        })
    }

    /// The next live entry, or `None` at the end of the node.
    fn next_entry(&mut self) -> Result<Option<StreamEntry>, Error> {
        let at = self.at;
        let bad = |w: String| Error::corrupt(format!("{w} (in a stream node)"), at);
        loop {
            if self.left == 0 {
                return match self.lp.next_entry().map_err(bad)? {
                    None => Ok(None),
                    Some(e) => Err(bad(format!(
                        "extra listpack entry {e:?} after the last stream entry"
                    ))),
                };
            }
            self.left -= 1;
            let mut next = |what: &str| -> Result<Str, Error> {
                self.lp
                    .next_entry()
                    .map_err(bad)?
                    .ok_or_else(|| bad(format!("stream entry cut short at its {what}")))
            };
            let int_of = |s: Str, what: &str| -> Result<i64, Error> {
                as_int(s.as_item()).ok_or_else(|| bad(format!("stream entry {what} {s:?}")))
            };
            let flags = int_of(next("flags")?, "flags")?;
            let ms_diff = int_of(next("id")?, "id")?;
            let seq_diff = int_of(next("id")?, "id")?;
            let mut fields = Vec::new();
            if flags & FLAG_SAMEFIELDS != 0 {
                fields.reserve(self.master_fields.len());
                for i in 0..self.master_fields.len() {
                    let v = next("value")?;
                    fields.push((self.master_fields[i].clone(), v));
                }
            } else {
                let n = int_of(next("field count")?, "field count")?;
                if n < 0 {
                    return Err(bad(format!("stream entry field count {n}")));
                }
                for _ in 0..n {
                    let f = next("field")?;
                    let v = next("value")?;
                    fields.push((f, v));
                }
            }
            let _lp_count = next("lp-count")?;
            if flags & FLAG_DELETED != 0 {
                continue;
            }
            let id = StreamId {
                ms: self.master.ms.wrapping_add(ms_diff as u64),
                seq: self.master.seq.wrapping_add(seq_diff as u64),
            };
            return Ok(Some(StreamEntry { id, fields }));
        }
    }
}

/// A listpack element holding an integer (stored as an integer or as decimal text).
pub(crate) fn as_int(s: Item<'_>) -> Option<i64> {
    match s {
        Item::Int(i) => Some(i),
        Item::Bytes(b) => std::str::from_utf8(b).ok()?.parse().ok(),
    }
}
