//! The fast path behind [`crate::Visitor`]: keys that lie whole in the buffer are decoded in
//! one pass over a contiguous slice, their items handed out borrowed.
//!
//! Each key is first *measured*: a walk over its length and string headers (no element is
//! decoded) finds where the value ends. A key that is not complete in the buffer, that has
//! an encoding the fast path leaves to the state machine (field TTLs, zipmaps, modules,
//! stream v4, compressed or integer keys, raw strings longer than
//! [`crate::Options::string_piece`]), or whose headers are invalid is left untouched, and
//! the resumable decoder takes it from there, with its exact errors. A measured key is then
//! decoded and visited; errors inside it (a corrupt listpack, LZF data, a score) carry the
//! same text and offset as the state machine's. The bytes of the keys decoded here are fed
//! to the CRC in one call per run, not per unit.

mod stream;

use std::ops::ControlFlow;

use bytes::{Buf, BytesMut};

use crate::cursor::Cursor;
use crate::encoding::double::parse_f64;
use crate::encoding::intset;
use crate::encoding::length::StrRef;
use crate::encoding::listpack::Listpack;
use crate::encoding::lzf;
use crate::encoding::ziplist::Ziplist;
use crate::error::Error;
use crate::event::Item;
use crate::input::Io;
use crate::opcode::{op, RdbType};
use crate::visit::{flow, Gate, KeyRef, Visitor, Want};

/// Per-key attributes read before the type byte (shared with the state machine).
pub(crate) use crate::input::Pending;

/// Reusable buffers for decompressed strings (two: a hash field and its value).
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    a: Vec<u8>,
    b: Vec<u8>,
}

/// Decodes the keys (and the per-key opcodes before them) that lie whole at the front of
/// `buf`, calling `v`; consumes exactly what it decoded and stops at the first unit it
/// leaves to the state machine, or when `v` stops (`resume`: see [`key`]).
pub(crate) fn run<V: Visitor + ?Sized>(
    io: &mut Io,
    db: u32,
    pending: &mut Pending,
    scratch: &mut Scratch,
    resume: &mut u64,
    buf: &mut BytesMut,
    v: &mut V,
) -> Result<ControlFlow<()>, Error> {
    let data: &[u8] = buf;
    let mut p = Cursor::quick(data, io.offset, 0, io.opts.max_buffered);
    let mut done = 0;
    let result = loop {
        match key(io, db, pending, scratch, resume, &mut p, data, v) {
            Ok(Unit::Done) => done = p.pos(),
            Ok(Unit::DoneStop) => {
                done = p.pos();
                break Ok(ControlFlow::Break(()));
            }
            Ok(Unit::Left) => break Ok(ControlFlow::Continue(())),
            Ok(Unit::Stopped) => break Ok(ControlFlow::Break(())),
            Err(e) => break Err(e),
        }
    };
    io.account(&buf[..done]);
    buf.advance(done);
    result
}

/// What [`key`] did with the unit at the cursor.
enum Unit {
    /// Decoded and visited (consume it).
    Done,
    /// Decoded and visited, and the visitor stopped at its last call (consume it).
    DoneStop,
    /// Left to the state machine (nothing of it visited).
    Left,
    /// The visitor stopped inside the key: not consumed, `resume` calls made.
    Stopped,
}

/// One per-key opcode or one whole key. A key the visitor stops in is not consumed (nor
/// its prefixes forgotten): `resume` is set to the number of calls made, which the next run
/// skips when it decodes the key again.
#[inline]
#[allow(clippy::too_many_arguments)]
fn key<V: Visitor + ?Sized>(
    io: &Io,
    db: u32,
    pending: &mut Pending,
    scratch: &mut Scratch,
    resume: &mut u64,
    p: &mut Cursor<'_>,
    data: &[u8],
    v: &mut V,
) -> Result<Unit, Error> {
    let at = io.offset + p.pos() as u64;
    let Some(b) = p.next_u8() else {
        return Ok(Unit::Left);
    };
    let prefix = match b {
        op::EXPIRETIME_MS => {
            let Some(ms) = p.next_array::<8>() else {
                return Ok(Unit::Left);
            };
            pending.expire_at_ms = Some(i64::from_le_bytes(ms));
            true
        }
        op::EXPIRETIME => {
            let Some(s) = p.next_array::<4>() else {
                return Ok(Unit::Left);
            };
            pending.expire_at_ms = Some(i64::from(i32::from_le_bytes(s)) * 1000);
            true
        }
        op::IDLE => {
            let Some(idle) = p.quick_len() else {
                return Ok(Unit::Left);
            };
            pending.lru_idle = Some(idle);
            true
        }
        op::FREQ => {
            let Some(f) = p.next_u8() else {
                return Ok(Unit::Left);
            };
            pending.lfu_freq = Some(f);
            true
        }
        _ => false,
    };
    if prefix {
        pending.record_start.get_or_insert(at);
        return Ok(Unit::Done);
    }
    let Some(t) = RdbType::from_byte(io.family, io.version, b) else {
        return Ok(Unit::Left);
    };
    if !handled(t) {
        return Ok(Unit::Left);
    }
    let Some(StrRef::Plain(key)) = p.quick_string() else {
        return Ok(Unit::Left);
    };
    let start = p.pos();
    if measure(t, io, p).is_none() {
        return Ok(Unit::Left);
    }
    let key = &data[key];
    let record_offset = pending.record_start.unwrap_or(at);
    let record_len = io.offset + p.pos() as u64 - record_offset;
    // Offered whole only from the key's start (not again after a stop inside it).
    let whole = io.opts.raw_values && *resume == 0;
    let mut gate = Gate::new(v, std::mem::take(resume));
    let k = KeyRef {
        db,
        key,
        type_byte: b,
        rdb_type: t,
        expire_at_ms: pending.expire_at_ms,
        lru_idle: pending.lru_idle,
        lfu_freq: pending.lfu_freq,
        meta: &pending.meta,
        module: None,
        min_field_expire_ms: None,
        record_offset,
    };
    if whole {
        if let Some(flow) = gate.v.whole_key(&k, &data[start..p.pos()], record_len) {
            pending.reset();
            return Ok(match flow {
                ControlFlow::Continue(()) => Unit::Done,
                ControlFlow::Break(()) => Unit::DoneStop,
            });
        }
    }
    let value = Cursor::quick(data, io.offset, start, io.opts.max_buffered);
    match key_value(t, io, &k, &data[start..p.pos()], value, scratch, &mut gate) {
        Ok(ControlFlow::Continue(())) => {}
        Ok(ControlFlow::Break(())) => {
            *resume = gate.seen;
            return Ok(Unit::Stopped);
        }
        Err(e) => return Err(e.with_key(key, b)),
    }
    pending.reset();
    Ok(match gate.key_end(record_len) {
        ControlFlow::Continue(()) => Unit::Done,
        ControlFlow::Break(()) => Unit::DoneStop,
    })
}

/// The calls of a measured key up to its value's last item.
#[inline(always)]
fn key_value<V: Visitor + ?Sized>(
    t: RdbType,
    io: &Io,
    k: &KeyRef<'_>,
    raw: &[u8],
    value: Cursor<'_>,
    scratch: &mut Scratch,
    v: &mut V,
) -> Result<ControlFlow<()>, Error> {
    flow!(v.key_start(k));
    let want = v.wants(raw.len() as u64 + 1);
    if io.opts.raw_values {
        flow!(v.raw_value(&[k.type_byte]));
        flow!(v.raw_value(raw));
    }
    match want {
        Want::Nothing => Ok(ControlFlow::Continue(())),
        Want::Count if !is_stream(t) => {
            let n = count(t, io, value, scratch)?;
            Ok(v.element_count(n))
        }
        _ => visit(t, io, value, scratch, v),
    }
}

fn is_stream(t: RdbType) -> bool {
    use RdbType::*;
    matches!(t, StreamListpacks | StreamListpacks2 | StreamListpacks3)
}

/// The element count of a measured value (not a stream), `p` at its start: from the
/// lengths and the compact blobs' declared counts, decoding the elements only where no
/// header tells (a count of 65535 or more, an odd count of a paired encoding, a header that
/// does not match its blob: the walk then reports the error as [`visit`] does).
fn count(t: RdbType, io: &Io, mut p: Cursor<'_>, scratch: &mut Scratch) -> Result<u64, Error> {
    use RdbType::*;
    let base = io.offset;
    let re = |p: &Cursor<'_>| reread(base, p.pos());
    let start = p.clone();
    let data = p.data();
    Ok(match t {
        String => match p.quick_string().ok_or_else(|| re(&p))? {
            StrRef::Plain(r) => r.len() as u64,
            StrRef::Int(i) => Item::Int(i).len() as u64,
            StrRef::Lzf { rlen, .. } => rlen as u64,
        },
        List | Set | ZSet | ZSet2 | Hash => p.quick_len().ok_or_else(|| re(&p))?,
        ListQuicklist | ListQuicklist2 => {
            let n = p.quick_len().ok_or_else(|| re(&p))?;
            let mut total = 0u64;
            for _ in 0..n {
                let plain = t == ListQuicklist2 && p.quick_len().ok_or_else(|| re(&p))? == 1;
                let s = p.quick_string().ok_or_else(|| re(&p))?;
                let blob = if t == ListQuicklist2 {
                    Blob::Listpack
                } else {
                    Blob::Ziplist
                };
                match (plain, declared(&s, data, blob)) {
                    (true, _) => total += 1,
                    (false, Some(c)) => total += c,
                    (false, None) => return walk_from(t, io, start, scratch),
                }
            }
            total
        }
        _ => {
            let s = p.quick_string().ok_or_else(|| re(&p))?;
            let (blob, pairs) = match t {
                ListZiplist => (Blob::Ziplist, false),
                ZSetZiplist | HashZiplist => (Blob::Ziplist, true),
                SetListpack => (Blob::Listpack, false),
                ZSetListpack | HashListpack => (Blob::Listpack, true),
                _ => (Blob::Intset, false),
            };
            match declared(&s, data, blob) {
                Some(c) if !pairs => c,
                Some(c) if c % 2 == 0 => c / 2,
                _ => walk_from(t, io, start, scratch)?,
            }
        }
    })
}

/// [`count`] by decoding every element of the value at `p`.
fn walk_from(t: RdbType, io: &Io, p: Cursor<'_>, scratch: &mut Scratch) -> Result<u64, Error> {
    let mut c = ElementCounter(0);
    let _ = visit(t, io, p, scratch, &mut c)?;
    Ok(c.0)
}

/// Counts the element calls of a walk.
struct ElementCounter(u64);

impl Visitor for ElementCounter {
    fn list_item(&mut self, _: Item<'_>) -> ControlFlow<()> {
        self.0 += 1;
        ControlFlow::Continue(())
    }
    fn set_member(&mut self, _: Item<'_>) -> ControlFlow<()> {
        self.0 += 1;
        ControlFlow::Continue(())
    }
    fn zset_entry(&mut self, _: Item<'_>, _: f64) -> ControlFlow<()> {
        self.0 += 1;
        ControlFlow::Continue(())
    }
    fn hash_entry(&mut self, _: Item<'_>, _: Item<'_>, _: Option<u64>) -> ControlFlow<()> {
        self.0 += 1;
        ControlFlow::Continue(())
    }
}

/// A compact blob encoding, for [`declared`].
#[derive(Clone, Copy)]
enum Blob {
    Ziplist,
    Listpack,
    Intset,
}

/// The entry count a compact blob's header declares, when it is exact and the header
/// matches the blob's size; for a compressed blob only its first bytes are decompressed.
fn declared(s: &StrRef, data: &[u8], blob: Blob) -> Option<u64> {
    let mut head = [0u8; 10];
    let (head, len): (&[u8], usize) = match s {
        StrRef::Plain(r) => (&data[r.clone()], r.len()),
        StrRef::Lzf { range: r, rlen, .. } => {
            let n = lzf::decompress_prefix(&data[r.clone()], *rlen, &mut head).ok()?;
            (&head[..n], *rlen)
        }
        StrRef::Int(_) => return None,
    };
    let u32_at = |i: usize| -> Option<u64> {
        Some(u64::from(u32::from_le_bytes(
            head.get(i..i + 4)?.try_into().ok()?,
        )))
    };
    let u16_at = |i: usize| -> Option<u64> {
        Some(u64::from(u16::from_le_bytes(
            head.get(i..i + 2)?.try_into().ok()?,
        )))
    };
    match blob {
        // total u32 | count u16 | entries | 0xff
        Blob::Listpack => {
            let c = u16_at(4)?;
            (len >= 7 && u32_at(0)? == len as u64 && c != u64::from(u16::MAX)).then_some(c)
        }
        // zlbytes u32 | zltail u32 | zllen u16 | entries | 0xff
        Blob::Ziplist => {
            let c = u16_at(8)?;
            (len >= 11
                && u32_at(0)? == len as u64
                && u32_at(4)? < len as u64
                && c != u64::from(u16::MAX))
            .then_some(c)
        }
        // encoding u32 | length u32 | members
        Blob::Intset => {
            let (width, c) = (u32_at(0)?, u32_at(4)?);
            (matches!(width, 2 | 4 | 8) && (len as u64).checked_sub(8)? == c * width).then_some(c)
        }
    }
}

/// The value types the fast path decodes.
fn handled(t: RdbType) -> bool {
    use RdbType::*;
    matches!(
        t,
        String
            | List
            | Set
            | ZSet
            | ZSet2
            | Hash
            | ListZiplist
            | SetIntset
            | ZSetZiplist
            | HashZiplist
            | ListQuicklist
            | ListQuicklist2
            | HashListpack
            | ZSetListpack
            | SetListpack
            | StreamListpacks
            | StreamListpacks2
            | StreamListpacks3
    )
}

/// Walks the value's headers to its end (`None` when incomplete or invalid).
fn measure(t: RdbType, io: &Io, p: &mut Cursor<'_>) -> Option<()> {
    use RdbType::*;
    match t {
        String => {
            if let StrRef::Plain(r) = p.quick_string()? {
                if r.len() > io.opts.string_piece.max(1) {
                    return None;
                }
            }
        }
        List | Set => {
            for _ in 0..p.quick_len()? {
                p.quick_skip_string()?;
            }
        }
        ZSet2 => {
            for _ in 0..p.quick_len()? {
                p.quick_skip_string()?;
                p.next_bytes(8)?;
            }
        }
        ZSet => {
            for _ in 0..p.quick_len()? {
                p.quick_skip_string()?;
                p.quick_ascii_double()?;
            }
        }
        Hash => {
            for _ in 0..p.quick_len()? {
                p.quick_skip_string()?;
                p.quick_skip_string()?;
            }
        }
        ListQuicklist | ListQuicklist2 => {
            for _ in 0..p.quick_len()? {
                if t == ListQuicklist2 {
                    p.quick_len()?;
                }
                // An integer-encoded node is left to the state machine.
                if let StrRef::Int(_) = p.quick_string()? {
                    return None;
                }
            }
        }
        StreamListpacks | StreamListpacks2 | StreamListpacks3 => stream::measure(t, p)?,
        _ => {
            // One compact blob; an integer-encoded one is left to the state machine.
            if let StrRef::Int(_) = p.quick_string()? {
                return None;
            }
        }
    }
    Some(())
}

/// A string found by a cursor over `data`; LZF strings are decompressed into `out`.
#[inline]
pub(crate) fn resolve<'a>(
    s: StrRef,
    data: &'a [u8],
    out: &'a mut Vec<u8>,
) -> Result<Item<'a>, Error> {
    Ok(match s {
        StrRef::Plain(r) => Item::Bytes(&data[r]),
        StrRef::Int(i) => Item::Int(i),
        StrRef::Lzf {
            range,
            rlen,
            offset,
        } => Item::Bytes(
            lzf::decompress_scratch(&data[range], rlen, out)
                .map_err(|what| Error::corrupt(format!("LZF data: {what}"), offset))?,
        ),
    })
}

/// A measured value could not be read again: cannot happen, reported rather than panicking.
pub(crate) fn reread(base: u64, pos: usize) -> Error {
    Error::corrupt("value ends early", base + pos as u64)
}

/// Decodes a measured value, `p` at its start, into `v`.
fn visit<V: Visitor + ?Sized>(
    t: RdbType,
    io: &Io,
    mut p: Cursor<'_>,
    scratch: &mut Scratch,
    v: &mut V,
) -> Result<ControlFlow<()>, Error> {
    use RdbType::*;
    let data = p.data();
    let base = io.offset;
    let start = p.pos();
    let at = base + start as u64;
    let re = |p: &Cursor<'_>| reread(base, p.pos());
    match t {
        String => {
            let s = p.quick_string().ok_or_else(|| re(&p))?;
            flow!(v.string(resolve(s, data, &mut scratch.a)?));
        }
        List | Set => {
            let n = p.quick_len().ok_or_else(|| re(&p))?;
            for _ in 0..n {
                let s = p.quick_string().ok_or_else(|| re(&p))?;
                let item = resolve(s, data, &mut scratch.a)?;
                if t == List {
                    flow!(v.list_item(item));
                } else {
                    flow!(v.set_member(item));
                }
            }
        }
        ZSet | ZSet2 => {
            let n = p.quick_len().ok_or_else(|| re(&p))?;
            for _ in 0..n {
                let s = p.quick_string().ok_or_else(|| re(&p))?;
                let score = if t == ZSet2 {
                    p.next_u64_le().map(f64::from_bits)
                } else {
                    p.quick_ascii_double()
                }
                .ok_or_else(|| re(&p))?;
                flow!(v.zset_entry(resolve(s, data, &mut scratch.a)?, score));
            }
        }
        Hash => {
            let n = p.quick_len().ok_or_else(|| re(&p))?;
            for _ in 0..n {
                let f = p.quick_string().ok_or_else(|| re(&p))?;
                let x = p.quick_string().ok_or_else(|| re(&p))?;
                let f = resolve(f, data, &mut scratch.a)?;
                let x = resolve(x, data, &mut scratch.b)?;
                flow!(v.hash_entry(f, x, None));
            }
        }
        ListQuicklist | ListQuicklist2 => {
            let n = p.quick_len().ok_or_else(|| re(&p))?;
            for _ in 0..n {
                let node_at = base + p.pos() as u64;
                let plain = if t == ListQuicklist2 {
                    match p.quick_len().ok_or_else(|| re(&p))? {
                        1 => true,
                        2 => false,
                        c => {
                            return Err(Error::corrupt(
                                format!("quicklist container type {c}"),
                                node_at,
                            ))
                        }
                    }
                } else {
                    false
                };
                let blob_at = base + p.pos() as u64;
                let s = p.quick_string().ok_or_else(|| re(&p))?;
                let Item::Bytes(blob) = resolve(s, data, &mut scratch.a)? else {
                    return Err(Error::corrupt("integer-encoded node", blob_at));
                };
                if plain {
                    flow!(v.list_item(Item::Bytes(blob)));
                } else if t == ListQuicklist2 {
                    let cur = Listpack::open(blob)
                        .map_err(|w| blob_error(w, " (in a quicklist node)", blob_at))?;
                    flow!(shape(LpCursor { blob, cur }, Shape::List, blob_at, v)?);
                } else {
                    let cur = Ziplist::open(blob)
                        .map_err(|w| blob_error(w, " (in a quicklist node)", blob_at))?;
                    flow!(shape(ZlCursor { blob, cur }, Shape::List, blob_at, v)?);
                }
            }
        }
        StreamListpacks | StreamListpacks2 | StreamListpacks3 => {
            flow!(stream::visit(t, io, p, scratch, v)?)
        }
        _ => {
            let s = p.quick_string().ok_or_else(|| re(&p))?;
            let Item::Bytes(blob) = resolve(s, data, &mut scratch.a)? else {
                return Err(Error::corrupt("integer-encoded blob", at));
            };
            let bad = |w| blob_error(w, " (in the blob)", at);
            match t {
                ListZiplist => flow!(shape(zl(blob).map_err(bad)?, Shape::List, at, v)?),
                ZSetZiplist => flow!(shape(zl(blob).map_err(bad)?, Shape::ZSet, at, v)?),
                HashZiplist => flow!(shape(zl(blob).map_err(bad)?, Shape::Hash, at, v)?),
                HashListpack => flow!(shape(lp(blob).map_err(bad)?, Shape::Hash, at, v)?),
                ZSetListpack => flow!(shape(lp(blob).map_err(bad)?, Shape::ZSet, at, v)?),
                SetListpack => flow!(shape(lp(blob).map_err(bad)?, Shape::Set, at, v)?),
                SetIntset => {
                    let (width, len) = intset::open(blob).map_err(bad)?;
                    for i in 0..len {
                        flow!(v.set_member(Item::Int(intset::member(blob, width, i))));
                    }
                }
                _ => unreachable!("fast path type {t:?}"),
            }
        }
    }
    Ok(ControlFlow::Continue(()))
}

fn blob_error(what: String, suffix: &str, at: u64) -> Error {
    Error::corrupt(format!("{what}{suffix}"), at)
}

fn lp(blob: &[u8]) -> Result<LpCursor<'_>, String> {
    Ok(LpCursor {
        blob,
        cur: Listpack::open(blob)?,
    })
}

fn zl(blob: &[u8]) -> Result<ZlCursor<'_>, String> {
    Ok(ZlCursor {
        blob,
        cur: Ziplist::open(blob)?,
    })
}

/// The entries of a compact blob, borrowed.
pub(crate) trait Entries<'a> {
    fn next_item(&mut self) -> Result<Option<Item<'a>>, String>;
}

pub(crate) struct LpCursor<'a> {
    pub(crate) blob: &'a [u8],
    pub(crate) cur: Listpack,
}

impl<'a> Entries<'a> for LpCursor<'a> {
    #[inline(always)]
    fn next_item(&mut self) -> Result<Option<Item<'a>>, String> {
        self.cur.next(self.blob)
    }
}

struct ZlCursor<'a> {
    blob: &'a [u8],
    cur: Ziplist,
}

impl<'a> Entries<'a> for ZlCursor<'a> {
    #[inline]
    fn next_item(&mut self) -> Result<Option<Item<'a>>, String> {
        self.cur.next(self.blob)
    }
}

/// How the entries of a blob group into items (the fast path's subset).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    List,
    Set,
    ZSet,
    Hash,
}

/// Visits the entries of a blob grouped by `shape`; errors as the state machine words them.
fn shape<'a, C: Entries<'a>, V: Visitor + ?Sized>(
    c: C,
    shape: Shape,
    at: u64,
    v: &mut V,
) -> Result<ControlFlow<()>, Error> {
    // Failures are carried as their message (small) and wrapped once, here.
    shape_entries(c, shape, v).map_err(|what| Error::corrupt(format!("{what} (in the blob)"), at))
}

fn shape_entries<'a, C: Entries<'a>, V: Visitor + ?Sized>(
    mut c: C,
    shape: Shape,
    v: &mut V,
) -> Result<ControlFlow<()>, String> {
    while let Some(first) = c.next_item()? {
        match shape {
            Shape::List => flow!(v.list_item(first)),
            Shape::Set => flow!(v.set_member(first)),
            Shape::ZSet => {
                let score = c
                    .next_item()?
                    .ok_or_else(|| "sorted set member without a score".to_string())?;
                let s = match score {
                    Item::Int(i) => i as f64,
                    Item::Bytes(b) => {
                        parse_f64(b).ok_or_else(|| format!("score {score:?} is not a number"))?
                    }
                };
                flow!(v.zset_entry(first, s));
            }
            Shape::Hash => {
                let value = c
                    .next_item()?
                    .ok_or_else(|| "hash field without a value".to_string())?;
                flow!(v.hash_entry(first, value, None));
            }
        }
    }
    Ok(ControlFlow::Continue(()))
}
