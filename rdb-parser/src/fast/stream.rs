//! Streams v1-v3 on the fast path: entries visited borrowed from their node listpacks, the
//! metadata, groups and consumers handed out as the same events the state machine produces
//! (see `types/stream.rs` for the layout).

use std::ops::ControlFlow;

use bytes::Bytes;

use crate::cursor::Cursor;
use crate::encoding::length::StrRef;
use crate::encoding::listpack::Listpack;
use crate::error::Error;
use crate::event::{Event, Item, PendingEntry, StreamConsumer, StreamGroup, StreamId, StreamMeta};
use crate::fast::{reread, resolve, Entries, LpCursor, Scratch};
use crate::input::{chunk_full, Io};
use crate::opcode::RdbType;
use crate::types::stream::{as_int, raw_id, version, FLAG_DELETED, FLAG_SAMEFIELDS};
use crate::visit::{flow, Visitor};

fn id(p: &mut Cursor<'_>) -> Option<StreamId> {
    let ms = p.quick_len()?;
    let seq = p.quick_len()?;
    Some(StreamId { ms, seq })
}

/// Walks a stream value's headers (see `fast::measure`).
pub(super) fn measure(t: RdbType, p: &mut Cursor<'_>) -> Option<()> {
    let v = version(t);
    for _ in 0..p.quick_len()? {
        // Unusual node keys and integer-encoded nodes are left to the state machine.
        match p.quick_string()? {
            StrRef::Plain(r) if r.len() == 16 => {}
            _ => return None,
        }
        if let StrRef::Int(_) = p.quick_string()? {
            return None;
        }
    }
    p.quick_len()?;
    id(p)?;
    if v >= 2 {
        id(p)?;
        id(p)?;
        p.quick_len()?;
    }
    for _ in 0..p.quick_len()? {
        p.quick_string()?;
        id(p)?;
        if v >= 2 {
            p.quick_len()?;
        }
        for _ in 0..p.quick_len()? {
            p.next_bytes(16)?;
            p.next_u64_le()?;
            p.quick_len()?;
        }
        for _ in 0..p.quick_len()? {
            p.quick_string()?;
            p.next_u64_le()?;
            if v >= 3 {
                p.next_u64_le()?;
            }
            for _ in 0..p.quick_len()? {
                p.next_bytes(16)?;
            }
        }
    }
    Some(())
}

/// Visits a measured stream value, `p` at its start.
pub(super) fn visit<V: Visitor + ?Sized>(
    t: RdbType,
    io: &Io,
    mut p: Cursor<'_>,
    scratch: &mut Scratch,
    v: &mut V,
) -> Result<ControlFlow<()>, Error> {
    let version = version(t);
    let data = p.data();
    let base = io.offset;
    let re = |p: &Cursor<'_>| reread(base, p.pos());
    let nodes = p.quick_len().ok_or_else(|| re(&p))?;
    for _ in 0..nodes {
        let at = base + p.pos() as u64;
        let Some(StrRef::Plain(key)) = p.quick_string() else {
            return Err(re(&p));
        };
        let master = raw_id(&data[key]);
        let s = p.quick_string().ok_or_else(|| re(&p))?;
        let Item::Bytes(blob) = resolve(s, data, &mut scratch.a)? else {
            return Err(Error::corrupt("integer-encoded stream node", at));
        };
        flow!(node(master, blob, at, v)?);
    }
    let length = p.quick_len().ok_or_else(|| re(&p))?;
    let last_id = id(&mut p).ok_or_else(|| re(&p))?;
    let (first_id, max_deleted_id, entries_added) = if version >= 2 {
        let f = id(&mut p).ok_or_else(|| re(&p))?;
        let m = id(&mut p).ok_or_else(|| re(&p))?;
        let a = p.quick_len().ok_or_else(|| re(&p))?;
        (Some(f), Some(m), Some(a))
    } else {
        (None, None, None)
    };
    flow!(v.event(Event::StreamMeta(StreamMeta {
        length,
        last_id,
        first_id,
        max_deleted_id,
        entries_added,
    })));
    let groups = p.quick_len().ok_or_else(|| re(&p))?;
    for _ in 0..groups {
        let s = p.quick_string().ok_or_else(|| re(&p))?;
        let name = Bytes::from(resolve(s, data, &mut scratch.a)?.to_vec());
        let last_id = id(&mut p).ok_or_else(|| re(&p))?;
        let entries_read = if version >= 2 {
            Some(p.quick_len().ok_or_else(|| re(&p))?)
        } else {
            None
        };
        // Redis writes the "unknown" value as SCG_INVALID_ENTRIES_READ (-1 as u64).
        let entries_read = entries_read.filter(|&e| e != u64::MAX);
        flow!(v.event(Event::StreamGroup(StreamGroup {
            name,
            last_id,
            entries_read,
        })));
        let n = p.quick_len().ok_or_else(|| re(&p))?;
        let mut chunk = Chunk::new(io, Event::StreamPending);
        for _ in 0..n {
            let raw = p.next_bytes(16).ok_or_else(|| re(&p))?;
            let delivery_time_ms = p.next_u64_le().ok_or_else(|| re(&p))?;
            let delivery_count = p.quick_len().ok_or_else(|| re(&p))?;
            let e = PendingEntry {
                id: raw_id(raw),
                delivery_time_ms,
                delivery_count,
            };
            flow!(chunk.push(e, 32, v));
        }
        flow!(chunk.flush(v));
        let consumers = p.quick_len().ok_or_else(|| re(&p))?;
        for _ in 0..consumers {
            let s = p.quick_string().ok_or_else(|| re(&p))?;
            let name = Bytes::from(resolve(s, data, &mut scratch.a)?.to_vec());
            let seen_time_ms = p.next_u64_le().ok_or_else(|| re(&p))?;
            let active_time_ms = if version >= 3 {
                Some(p.next_u64_le().ok_or_else(|| re(&p))?)
            } else {
                None
            };
            flow!(v.event(Event::StreamConsumer(StreamConsumer {
                name,
                seen_time_ms,
                active_time_ms,
            })));
            let n = p.quick_len().ok_or_else(|| re(&p))?;
            let mut chunk = Chunk::new(io, Event::StreamConsumerPending);
            for _ in 0..n {
                flow!(chunk.push(raw_id(p.next_bytes(16).ok_or_else(|| re(&p))?), 16, v));
            }
            flow!(chunk.flush(v));
        }
    }
    Ok(ControlFlow::Continue(()))
}

/// Chunks of owned items, cut where the state machine's `Chunker` cuts them ([`chunk_full`]).
struct Chunk<T> {
    items: Vec<T>,
    bytes: usize,
    max_items: usize,
    max_bytes: usize,
    wrap: fn(Vec<T>) -> Event,
}

impl<T> Chunk<T> {
    fn new(io: &Io, wrap: fn(Vec<T>) -> Event) -> Chunk<T> {
        Chunk {
            items: Vec::new(),
            bytes: 0,
            max_items: io.opts.max_chunk_items,
            max_bytes: io.opts.max_chunk_bytes,
            wrap,
        }
    }

    fn push<V: Visitor + ?Sized>(&mut self, item: T, size: usize, v: &mut V) -> ControlFlow<()> {
        self.items.push(item);
        self.bytes += size + 8;
        if chunk_full(self.items.len(), self.bytes, self.max_items, self.max_bytes) {
            return self.flush(v);
        }
        ControlFlow::Continue(())
    }

    fn flush<V: Visitor + ?Sized>(&mut self, v: &mut V) -> ControlFlow<()> {
        if !self.items.is_empty() {
            self.bytes = 0;
            return v.event((self.wrap)(std::mem::take(&mut self.items)));
        }
        ControlFlow::Continue(())
    }
}

/// Visits the live entries of one node listpack; errors as `types::stream::Node` words them.
fn node<V: Visitor + ?Sized>(
    master: StreamId,
    blob: &[u8],
    at: u64,
    v: &mut V,
) -> Result<ControlFlow<()>, Error> {
    // Failures are carried as their message (small) and wrapped once, here.
    node_entries(master, blob, v).map_err(|w| Error::corrupt(format!("{w} (in a stream node)"), at))
}

/// The next entry of a stream node, which must be there.
#[inline(always)]
fn next_item<'a>(lp: &mut LpCursor<'a>, what: &str) -> Result<Item<'a>, String> {
    lp.next_item()?
        .ok_or_else(|| format!("stream entry cut short at its {what}"))
}

#[inline(always)]
fn int_of(s: Item<'_>, what: &str) -> Result<i64, String> {
    match s {
        Item::Int(i) => Ok(i),
        _ => as_int(s).ok_or_else(|| format!("stream entry {what} {s:?}")),
    }
}

fn node_entries<'a, V: Visitor + ?Sized>(
    master: StreamId,
    blob: &'a [u8],
    v: &mut V,
) -> Result<ControlFlow<()>, String> {
    let mut lp = LpCursor {
        blob,
        cur: Listpack::open(blob)?,
    };
    let int = |lp: &mut LpCursor<'_>, what: &str| -> Result<i64, String> {
        let e = lp.next_item()?;
        e.and_then(as_int)
            .ok_or_else(|| format!("stream node {what}: {e:?}"))
    };
    let count = int(&mut lp, "entry count")?;
    let deleted = int(&mut lp, "deleted count")?;
    let nfields = int(&mut lp, "master field count")?;
    if count < 0 || deleted < 0 || nfields < 0 {
        return Err("negative stream node header value".into());
    }
    let mut master_fields = Vec::with_capacity((nfields as usize).min(64));
    for _ in 0..nfields {
        let f = lp
            .next_item()?
            .ok_or_else(|| "stream node master fields cut short".to_string())?;
        master_fields.push(f);
    }
    let term = lp.next_item()?;
    if term != Some(Item::Int(0)) {
        return Err(format!("stream master entry terminator {term:?}"));
    }
    let mut left = (count as u64).saturating_add(deleted as u64);
    let mut fields: Vec<(Item<'a>, Item<'a>)> = Vec::with_capacity(master_fields.len());
    loop {
        if left == 0 {
            return match lp.next_item()? {
                None => Ok(ControlFlow::Continue(())),
                Some(e) => Err(format!(
                    "extra listpack entry {e:?} after the last stream entry"
                )),
            };
        }
        left -= 1;
        let flags = int_of(next_item(&mut lp, "flags")?, "flags")?;
        let ms_diff = int_of(next_item(&mut lp, "id")?, "id")?;
        let seq_diff = int_of(next_item(&mut lp, "id")?, "id")?;
        fields.clear();
        if flags & FLAG_SAMEFIELDS != 0 {
            for f in &master_fields {
                let x = next_item(&mut lp, "value")?;
                fields.push((*f, x));
            }
        } else {
            let n = int_of(next_item(&mut lp, "field count")?, "field count")?;
            if n < 0 {
                return Err(format!("stream entry field count {n}"));
            }
            for _ in 0..n {
                let f = next_item(&mut lp, "field")?;
                let x = next_item(&mut lp, "value")?;
                fields.push((f, x));
            }
        }
        next_item(&mut lp, "lp-count")?;
        if flags & FLAG_DELETED != 0 {
            continue;
        }
        let id = StreamId {
            ms: master.ms.wrapping_add(ms_diff as u64),
            seq: master.seq.wrapping_add(seq_diff as u64),
        };
        flow!(v.stream_entry(id, &fields));
    }
}
