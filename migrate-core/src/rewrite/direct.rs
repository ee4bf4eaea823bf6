//! The [`Rewriter`](super::Rewriter)'s commands for simple values, written as RESP straight
//! from borrowed items ([`rdb_parser::Item`], as a [`rdb_parser::Visitor`] receives them):
//! no `Bytes` handle, argument vector or [`Cmd`] per item.
//!
//! [`DirectKey`] covers strings, lists, sets, sorted sets and hashes without field TTLs, and
//! writes byte for byte what [`Rewriter`](super::Rewriter) + [`RespWriter`] write for them
//! (same commands, same cuts by [`RewriteOptions::max_command_args`] /
//! [`RewriteOptions::max_command_bytes`], `UNLINK` first under
//! [`RewriteOptions::replace`], `SET ... PXAT` or a final `PEXPIREAT`). It is handed out by
//! [`crate::plan::KeyPlanner::direct`] for a key the planner writes as commands; other
//! values go through the rewriter.
//!
//! [`DirectStream`] does the same for streams: `XADD`s from the borrowed entries (held back
//! as RESP while the stream fits [`RewriteOptions::stream_buffer_bytes`], for the
//! placeholders of deleted pending entries), then the rewriter's own code for what follows
//! them (`XSETID`, groups, consumers, `XCLAIM`s, `XDEL`s, each as the target's version
//! allows) and the TTL. A [`DirectKey`] of a stream key wraps one: feed it
//! [`DirectKey::stream_entry`] and [`DirectKey::stream_event`]. The planner hands stream
//! keys out as it hands out the others (on a target with streams, 5.0 and later).

use bytes::{BufMut, Bytes, BytesMut};
use rdb_parser::{Event, Item, KeyStart, RdbType, StreamId, ValueKind};

use super::stream::{StreamWriter, PLACEHOLDER};
use super::zset::format_score_into;
use super::{Cmd, Env, KeyCtx, Loss, RespWriter, RewriteOptions};
use crate::ServerVersion;

/// The value kinds (and encodings) [`DirectKey`] writes: no module, or hash with field
/// TTLs (streams only on a target with streams, which [`DirectKey::new`] checks).
pub(crate) fn handles(start: &KeyStart) -> bool {
    use RdbType::*;
    match start.kind() {
        ValueKind::String
        | ValueKind::List
        | ValueKind::Set
        | ValueKind::ZSet
        | ValueKind::Stream => true,
        ValueKind::Hash => !matches!(
            start.rdb_type,
            HashMetadataPreGa | HashListpackExPreGa | HashMetadata | HashListpackEx | Hash2
        ),
        _ => false,
    }
}

/// One key being written as RESP from borrowed items; see the [module docs](self).
#[derive(Debug)]
pub struct DirectKey {
    db: u32,
    key: Bytes,
    kind: ValueKind,
    expire_at_ms: Option<i64>,
    target: ServerVersion,
    max_args: usize,
    max_bytes: usize,
    /// An `UNLINK` is still owed before the first command that does not overwrite.
    need_clear: bool,
    /// The pending command's items, as RESP bulk strings.
    items: BytesMut,
    /// Arguments in `items`, and their bytes (without framing).
    args: usize,
    bytes: usize,
    /// Strings: pending bytes of the value (cut into `SET` + `APPEND`s).
    string: Vec<u8>,
    /// Strings: the first command (`SET`) was written.
    sent: bool,
    ttl_written: bool,
    commands: u64,
    losses: Vec<Loss>,
    /// A formatted score.
    score: String,
    /// A stream key: its writer (which then writes everything).
    stream: Option<Box<DirectStream>>,
    /// The stream buffers, kept for the next stream while this key is not one.
    stream_bufs: StreamBuffers,
}

/// Buffers kept from one [`DirectKey`] to the next (no allocation per key).
#[derive(Debug, Default)]
pub(crate) struct Spare {
    items: BytesMut,
    string: Vec<u8>,
    score: String,
    stream: StreamBuffers,
}

/// What a [`DirectKey`] wrote, for [`crate::plan::KeyPlanner::direct_done`].
#[derive(Debug)]
#[non_exhaustive]
pub struct DirectDone {
    /// Commands written, counted as the rewriter counts them (an `UNLINK` included, a
    /// `SELECT` not).
    pub commands: u64,
    /// Nothing was written for the value (an empty collection).
    pub empty: bool,
    /// What the target could not be given exactly (NaN scores).
    pub losses: Vec<Loss>,
    /// The buffers, for the next key.
    pub(crate) spare: Spare,
}

/// Writes `n` in decimal at the end of `buf[..end]`, returning where its digits start.
fn digits(buf: &mut [u8], end: usize, n: u64) -> usize {
    let mut i = end;
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return i;
        }
    }
}

fn put_u64(dst: &mut BytesMut, n: u64) {
    let mut buf = [0u8; 20];
    let i = digits(&mut buf, 20, n);
    dst.put_slice(&buf[i..]);
}

/// An integer's decimal text, as a bulk string; returns the text's length.
fn put_bulk_int(dst: &mut BytesMut, n: i64) -> usize {
    let mut buf = [0u8; 21];
    let mut i = digits(&mut buf, 21, n.unsigned_abs());
    if n < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    put_bulk(dst, &buf[i..]);
    buf.len() - i
}

/// The longest bulk string [`put_bulk`] assembles on the stack.
const SHORT: usize = 64;
/// The stack buffer of a short bulk string: `$`, two digits, CRLF, the data, CRLF.
const SHORT_BUF: usize = 5 + SHORT + 2;

/// Copies `src` (at most [`SHORT`] bytes) to the front of `dst` with copies of fixed sizes
/// (overlapping ones: the first and last 32, 16, 8 or 4 bytes), which compile to a few
/// moves instead of a call.
#[inline(always)]
fn copy_short(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if n >= 32 {
        dst[..32].copy_from_slice(&src[..32]);
        dst[n - 32..n].copy_from_slice(&src[n - 32..]);
    } else if n >= 16 {
        dst[..16].copy_from_slice(&src[..16]);
        dst[n - 16..n].copy_from_slice(&src[n - 16..]);
    } else if n >= 8 {
        dst[..8].copy_from_slice(&src[..8]);
        dst[n - 8..n].copy_from_slice(&src[n - 8..]);
    } else if n >= 4 {
        dst[..4].copy_from_slice(&src[..4]);
        dst[n - 4..n].copy_from_slice(&src[n - 4..]);
    } else if n > 0 {
        dst[0] = src[0];
        dst[n / 2] = src[n / 2];
        dst[n - 1] = src[n - 1];
    }
}

/// `$len\r\ndata\r\n`; a short one assembled on the stack and appended as one copy of a
/// fixed size (then cut to its length).
#[inline]
fn put_bulk(dst: &mut BytesMut, data: &[u8]) {
    let len = data.len();
    if len > SHORT {
        let mut head = [0u8; 24];
        head[0] = b'$';
        let mut len_digits = [0u8; 20];
        let d = digits(&mut len_digits, 20, len as u64);
        let n = 20 - d;
        head[1..1 + n].copy_from_slice(&len_digits[d..]);
        head[1 + n] = b'\r';
        head[2 + n] = b'\n';
        dst.put_slice(&head[..3 + n]);
        dst.put_slice(data);
        dst.put_slice(b"\r\n");
        return;
    }
    let mut buf = [0u8; SHORT_BUF];
    buf[0] = b'$';
    let head = if len < 10 {
        buf[1] = b'0' + len as u8;
        2
    } else {
        buf[1] = b'0' + (len / 10) as u8;
        buf[2] = b'0' + (len % 10) as u8;
        3
    };
    buf[head] = b'\r';
    buf[head + 1] = b'\n';
    let start = head + 2;
    copy_short(&mut buf[start..start + SHORT], data);
    let end = start + len;
    buf[end] = b'\r';
    buf[end + 1] = b'\n';
    let at = dst.len();
    dst.put_slice(&buf);
    dst.truncate(at + end + 2);
}

/// `*n\r\n`; up to 999 elements as one copy of a fixed size (then cut to its length).
#[inline]
fn put_array(dst: &mut BytesMut, n: usize) {
    if n >= 1000 {
        dst.put_u8(b'*');
        put_u64(dst, n as u64);
        dst.put_slice(b"\r\n");
        return;
    }
    let mut buf = *b"*000\r\n";
    let len = if n < 10 {
        buf[1] = b'0' + n as u8;
        2
    } else if n < 100 {
        buf[1] = b'0' + (n / 10) as u8;
        buf[2] = b'0' + (n % 10) as u8;
        3
    } else {
        buf[1] = b'0' + (n / 100) as u8;
        buf[2] = b'0' + (n / 10 % 10) as u8;
        buf[3] = b'0' + (n % 10) as u8;
        4
    };
    buf[len] = b'\r';
    buf[len + 1] = b'\n';
    let at = dst.len();
    dst.put_slice(&buf);
    dst.truncate(at + len + 2);
}

impl DirectKey {
    /// A writer for the key `start` (already mapped to its target db and name) on `target`;
    /// `now_ms` as given to the rewriter; the buffers are taken from `spare`. `None` (and
    /// `spare` left as it was) for a stream key on a target without streams (before 5.0:
    /// the rewriter reports it as unsupported).
    pub(crate) fn new(
        start: &KeyStart,
        target: ServerVersion,
        opts: &RewriteOptions,
        now_ms: i64,
        spare: &mut Spare,
    ) -> Option<DirectKey> {
        let (stream, stream_bufs) = if start.kind() == ValueKind::Stream {
            if (target.major, target.minor) < (5, 0) {
                return None;
            }
            let s = DirectStream::new(
                start.db,
                start.key.clone(),
                start.expire_at_ms,
                target,
                opts,
                now_ms,
                std::mem::take(&mut spare.stream),
            )?;
            (Some(Box::new(s)), StreamBuffers::default())
        } else {
            (None, std::mem::take(&mut spare.stream))
        };
        let spare = std::mem::take(spare);
        Some(DirectKey {
            db: start.db,
            key: start.key.clone(),
            kind: start.kind(),
            expire_at_ms: start.expire_at_ms,
            target,
            max_args: opts.max_command_args,
            max_bytes: opts.max_command_bytes,
            need_clear: opts.replace,
            items: spare.items,
            args: 0,
            bytes: 0,
            string: spare.string,
            sent: false,
            ttl_written: false,
            commands: 0,
            losses: Vec::new(),
            score: spare.score,
            stream,
            stream_bufs,
        })
    }

    /// Whether the key is a stream (fed [`DirectKey::stream_entry`] and
    /// [`DirectKey::stream_event`]; the other item methods do not apply to it).
    pub fn is_stream(&self) -> bool {
        self.stream.is_some()
    }

    /// A stream key's live entry, in order (ignored for other keys).
    #[inline]
    pub fn stream_entry(
        &mut self,
        id: StreamId,
        fields: &[(Item<'_>, Item<'_>)],
        resp: &mut RespWriter,
        dst: &mut BytesMut,
    ) {
        if let Some(s) = self.stream.as_mut() {
            s.entry(id, fields, resp, dst);
        }
    }

    /// A stream key's event after its entries (metadata, group, consumer, pending entries;
    /// ignored for other keys): see [`DirectStream::event`].
    pub fn stream_event(&mut self, ev: &Event) {
        if let Some(s) = self.stream.as_mut() {
            s.event(ev);
        }
    }

    fn at_least(&self, major: u16, minor: u16) -> bool {
        (self.target.major, self.target.minor) >= (major, minor)
    }

    /// The command name of the collection's chunks.
    fn name(&self) -> &'static [u8] {
        match self.kind {
            ValueKind::List => b"RPUSH",
            ValueKind::Set => b"SADD",
            ValueKind::ZSet => b"ZADD",
            _ if self.at_least(4, 0) => b"HSET",
            _ => b"HMSET",
        }
    }

    /// Writes a whole command `name key args...` (args already framed in `items`).
    fn command(&mut self, resp: &mut RespWriter, dst: &mut BytesMut, name: &[u8], tail: &[&[u8]]) {
        resp.select(self.db, dst);
        put_array(dst, 2 + tail.len());
        put_bulk(dst, name);
        put_bulk(dst, &self.key);
        for a in tail {
            put_bulk(dst, a);
        }
        self.commands += 1;
    }

    /// The `UNLINK` owed before the first command that adds to the key.
    fn clear(&mut self, resp: &mut RespWriter, dst: &mut BytesMut) {
        if self.need_clear {
            self.need_clear = false;
            let name: &[u8] = if self.at_least(4, 0) {
                b"UNLINK"
            } else {
                b"DEL"
            };
            self.command(resp, dst, name, &[]);
        }
    }

    /// Writes the pending chunk.
    fn flush(&mut self, resp: &mut RespWriter, dst: &mut BytesMut) {
        if self.args == 0 {
            return;
        }
        self.clear(resp, dst);
        resp.select(self.db, dst);
        put_array(dst, 2 + self.args);
        put_bulk(dst, self.name());
        put_bulk(dst, &self.key);
        dst.put_slice(&self.items);
        self.items.clear();
        self.args = 0;
        self.bytes = 0;
        self.commands += 1;
    }

    /// Cuts the pending chunk before an item of `n` arguments and `size` bytes when it would
    /// go over the budget.
    fn room(&mut self, n: usize, size: usize, resp: &mut RespWriter, dst: &mut BytesMut) {
        if self.args != 0 && (self.args + n > self.max_args || self.bytes + size > self.max_bytes) {
            self.flush(resp, dst);
        }
    }

    fn push_item(&mut self, item: Item<'_>) {
        match item {
            Item::Bytes(b) => {
                self.bytes += b.len();
                put_bulk(&mut self.items, b);
            }
            Item::Int(i) => self.bytes += put_bulk_int(&mut self.items, i),
        }
        self.args += 1;
    }

    /// A piece of a string value.
    pub fn string(&mut self, piece: Item<'_>, resp: &mut RespWriter, dst: &mut BytesMut) {
        match piece {
            Item::Bytes(b) => self.string.extend_from_slice(b),
            Item::Int(i) => {
                use std::io::Write;
                // Writing to a vector cannot fail.
                let _ = write!(self.string, "{i}");
            }
        }
        let max = self.max_bytes.max(1);
        while self.string.len() > max {
            let rest = self.string.split_off(max);
            let part = std::mem::replace(&mut self.string, rest);
            self.string_command(&part, None, resp, dst);
        }
    }

    fn string_command(
        &mut self,
        part: &[u8],
        pxat: Option<i64>,
        resp: &mut RespWriter,
        dst: &mut BytesMut,
    ) {
        if self.sent {
            self.command(resp, dst, b"APPEND", &[part]);
            return;
        }
        self.sent = true;
        self.need_clear = false;
        match pxat {
            Some(at) => {
                let at = at.to_string();
                self.command(resp, dst, b"SET", &[part, b"PXAT", at.as_bytes()]);
            }
            None => self.command(resp, dst, b"SET", &[part]),
        }
    }

    /// A list element or set member.
    pub fn element(&mut self, item: Item<'_>, resp: &mut RespWriter, dst: &mut BytesMut) {
        self.room(1, item.len(), resp, dst);
        self.push_item(item);
    }

    /// A sorted set member.
    pub fn zset_entry(
        &mut self,
        member: Item<'_>,
        score: f64,
        resp: &mut RespWriter,
        dst: &mut BytesMut,
    ) {
        if score.is_nan() {
            self.losses.push(Loss::NanScores { members: 1 });
            return;
        }
        let mut text = std::mem::take(&mut self.score);
        text.clear();
        format_score_into(score, &mut text);
        self.room(2, text.len() + member.len(), resp, dst);
        self.bytes += text.len();
        put_bulk(&mut self.items, text.as_bytes());
        self.score = text;
        self.args += 1;
        self.push_item(member);
    }

    /// A hash field and its value.
    pub fn hash_entry(
        &mut self,
        field: Item<'_>,
        value: Item<'_>,
        resp: &mut RespWriter,
        dst: &mut BytesMut,
    ) {
        self.room(2, field.len() + value.len(), resp, dst);
        self.push_item(field);
        self.push_item(value);
    }

    /// The value is complete: writes what is pending and the TTL.
    pub fn finish(mut self, resp: &mut RespWriter, dst: &mut BytesMut) -> DirectDone {
        if let Some(s) = self.stream.take() {
            let (mut done, bufs) = s.finish(resp, dst);
            done.spare = Spare {
                items: self.items,
                string: self.string,
                score: self.score,
                stream: bufs,
            };
            return done;
        }
        if self.kind == ValueKind::String {
            if !(self.string.is_empty() && self.sent) {
                let mut part = std::mem::take(&mut self.string);
                let pxat = match self.expire_at_ms {
                    Some(at) if !self.sent && self.at_least(6, 2) => Some(at),
                    _ => None,
                };
                self.string_command(&part, pxat, resp, dst);
                part.clear();
                self.string = part;
                if pxat.is_some() {
                    self.ttl_written = true;
                }
            }
        } else {
            self.flush(resp, dst);
        }
        let empty = self.commands == 0;
        if empty {
            // Nothing left of the key: it must not survive on the target either.
            self.clear(resp, dst);
        } else if let (Some(at), false) = (self.expire_at_ms, self.ttl_written) {
            let at = at.to_string();
            self.command(resp, dst, b"PEXPIREAT", &[at.as_bytes()]);
        }
        let mut losses: Vec<Loss> = Vec::new();
        for l in self.losses {
            if !losses.iter_mut().any(|x| x.merge(&l)) {
                losses.push(l);
            }
        }
        self.items.clear();
        self.string.clear();
        DirectDone {
            commands: self.commands,
            empty,
            losses,
            spare: Spare {
                items: self.items,
                string: self.string,
                score: self.score,
                stream: self.stream_bufs,
            },
        }
    }
}

/// Buffers kept from one [`DirectStream`] to the next (no allocation per stream for its
/// held entries).
#[derive(Debug, Default)]
pub struct StreamBuffers {
    held: BytesMut,
    held_ids: Vec<(StreamId, usize)>,
}

/// One stream key being written as RESP: its entries' `XADD`s straight from the borrowed
/// items ([`rdb_parser::Visitor::stream_entry`]), then what [`Rewriter`](super::Rewriter)
/// writes after them (`XSETID`, groups, consumers, pending entries, placeholders, TTL), byte
/// for byte the same output, in the same order.
///
/// Entries are held back as RESP (not as owned entries) while the stream fits
/// [`RewriteOptions::stream_buffer_bytes`], so that pending entries of deleted entries get
/// their placeholders, as the rewriter does.
#[derive(Debug)]
pub struct DirectStream {
    ctx: KeyCtx,
    env: Env,
    /// The metadata, groups and consumers, and the last id written.
    tail: StreamWriter,
    /// `$len\r\nkey\r\n`.
    key_bulk: Vec<u8>,
    /// The held-back entries' `XADD`s, and each one's id and end in `held`.
    held: BytesMut,
    held_ids: Vec<(StreamId, usize)>,
    /// The held-back entries' size, counted as the rewriter counts it.
    held_bytes: usize,
    /// Set once the entries did not fit: they are written as they come.
    streaming: bool,
}

impl DirectStream {
    /// A writer for the stream key `key` of db `db` (both already mapped to the target's)
    /// with the TTL `expire_at_ms`, on `target`; `now_ms` as given to the rewriter; `bufs`
    /// from the previous stream's [`DirectStream::finish`] (or new). `None` when the target
    /// has no streams (before 5.0: the rewriter reports the key as unsupported).
    pub fn new(
        db: u32,
        key: Bytes,
        expire_at_ms: Option<i64>,
        target: ServerVersion,
        opts: &RewriteOptions,
        now_ms: i64,
        bufs: StreamBuffers,
    ) -> Option<DirectStream> {
        let env = Env {
            target,
            opts: opts.clone(),
            now_ms,
        };
        if !env.at_least(5, 0) {
            return None;
        }
        let mut kb = BytesMut::new();
        put_bulk(&mut kb, &key);
        Some(DirectStream {
            ctx: KeyCtx {
                db,
                key,
                expire_at_ms,
                commands: 0,
                need_clear: opts.replace,
                ttl_written: false,
                losses: Vec::new(),
                expired_fields: 0,
            },
            env,
            tail: StreamWriter::default(),
            key_bulk: kb.to_vec(),
            held: bufs.held,
            held_ids: bufs.held_ids,
            held_bytes: 0,
            streaming: false,
        })
    }

    /// Before a command written straight to `dst`: the `SELECT`, and the `UNLINK` owed.
    fn prefix(&mut self, resp: &mut RespWriter, dst: &mut BytesMut) {
        resp.select(self.ctx.db, dst);
        if self.ctx.need_clear {
            self.ctx.need_clear = false;
            let name: &[u8] = if self.env.at_least(4, 0) {
                b"UNLINK"
            } else {
                b"DEL"
            };
            put_array(dst, 2);
            put_bulk(dst, name);
            dst.put_slice(&self.key_bulk);
            self.ctx.commands += 1;
        }
    }

    /// `XADD key id f v ...` into `dst`; returns the entry's size as the rewriter counts it.
    fn put_xadd(
        key_bulk: &[u8],
        dst: &mut BytesMut,
        id: StreamId,
        fields: &[(Item<'_>, Item<'_>)],
    ) -> usize {
        put_array(dst, 3 + 2 * fields.len());
        dst.put_slice(b"$4\r\nXADD\r\n");
        dst.put_slice(key_bulk);
        put_bulk_id(dst, id);
        let mut size = 16;
        for &(f, v) in fields {
            size += put_item(dst, f) + put_item(dst, v) + 16;
        }
        size
    }

    /// A live entry, in order.
    pub fn entry(
        &mut self,
        id: StreamId,
        fields: &[(Item<'_>, Item<'_>)],
        resp: &mut RespWriter,
        dst: &mut BytesMut,
    ) {
        if self.streaming {
            self.prefix(resp, dst);
            Self::put_xadd(&self.key_bulk, dst, id, fields);
            self.ctx.commands += 1;
            self.tail.written(id);
            return;
        }
        self.held_bytes += Self::put_xadd(&self.key_bulk, &mut self.held, id, fields);
        self.held_ids.push((id, self.held.len()));
        if self.held_bytes > self.env.opts.stream_buffer_bytes {
            // Too big to hold: what is held goes out, the rest as it comes.
            self.streaming = true;
            if let Some(&(last, _)) = self.held_ids.last() {
                self.prefix(resp, dst);
                dst.put_slice(&self.held);
                self.ctx.commands += self.held_ids.len() as u64;
                self.tail.written(last);
            }
            self.held.clear();
            self.held_ids.clear();
        }
    }

    /// A stream event after the entries (metadata, group, consumer, pending entries): the
    /// rest is ignored.
    pub fn event(&mut self, ev: &Event) {
        self.tail.push(&self.env, &mut self.ctx, &mut |_| {}, ev);
    }

    /// The value is complete: writes the held entries, their placeholders, what follows
    /// them and the TTL; gives back the buffers for the next stream.
    pub fn finish(
        mut self,
        resp: &mut RespWriter,
        dst: &mut BytesMut,
    ) -> (DirectDone, StreamBuffers) {
        let last_id = self.tail.last_id(self.held_ids.last().map(|e| e.0));
        let mut held_ids = std::mem::take(&mut self.held_ids);
        let placeholders = self.tail.placeholders(&mut self.ctx, last_id, |id| {
            held_ids.binary_search_by_key(&id, |e| e.0).is_ok()
        });
        let ph_fields = [(
            Item::Bytes(PLACEHOLDER.0.as_bytes()),
            Item::Bytes(PLACEHOLDER.1.as_bytes()),
        )];
        let mut ph = placeholders.iter().peekable();
        let mut start = 0;
        for &(id, end) in &held_ids {
            while let Some(&&p) = ph.peek().filter(|&&&p| p < id) {
                self.prefix(resp, dst);
                Self::put_xadd(&self.key_bulk, dst, p, &ph_fields);
                self.ctx.commands += 1;
                ph.next();
            }
            self.prefix(resp, dst);
            dst.put_slice(&self.held[start..end]);
            self.ctx.commands += 1;
            start = end;
            self.tail.written(id);
        }
        for &p in ph {
            self.prefix(resp, dst);
            Self::put_xadd(&self.key_bulk, dst, p, &ph_fields);
            self.ctx.commands += 1;
            self.tail.written(p);
        }
        held_ids.clear();
        let DirectStream {
            mut ctx,
            env,
            tail,
            mut held,
            ..
        } = self;
        held.clear();
        let mut out = |cmd: Cmd| resp.encode(&cmd, dst);
        tail.finish_tail(&env, &mut ctx, &mut out, last_id, placeholders);
        let empty = ctx.commands == 0;
        if empty {
            super::clear_absent(&env, &mut ctx, &mut out);
        } else if let (Some(at), false) = (ctx.expire_at_ms, ctx.ttl_written) {
            let args = vec![
                Bytes::from_static(b"PEXPIREAT"),
                ctx.key.clone(),
                Bytes::from(at.to_string()),
            ];
            ctx.emit(&env, &mut out, args);
        }
        let done = DirectDone {
            commands: ctx.commands,
            empty,
            losses: ctx.losses,
            spare: Spare::default(),
        };
        (done, StreamBuffers { held, held_ids })
    }
}

/// A stream id's text (`ms-seq`) as a bulk string.
fn put_bulk_id(dst: &mut BytesMut, id: StreamId) {
    let mut buf = [0u8; 41];
    let i = digits(&mut buf, 41, id.seq);
    buf[i - 1] = b'-';
    let j = digits(&mut buf, i - 1, id.ms);
    put_bulk(dst, &buf[j..]);
}

/// An item as a bulk string; returns its text's length.
fn put_item(dst: &mut BytesMut, item: Item<'_>) -> usize {
    match item {
        Item::Bytes(b) => {
            put_bulk(dst, b);
            b.len()
        }
        Item::Int(i) => put_bulk_int(dst, i),
    }
}

#[cfg(test)]
mod bulk_tests {
    use super::*;

    #[test]
    fn bulk_strings_are_framed_as_resp_codec_frames_them() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 1) as u8).collect();
        for len in 0..data.len() {
            let mut got = BytesMut::from(&b"prefix"[..]);
            put_bulk(&mut got, &data[..len]);
            let mut want = BytesMut::from(&b"prefix"[..]);
            resp_codec::encode_command(&mut want, &[&data[..len]]);
            // `encode_command` frames an array of one: drop its `*1\r\n`.
            assert_eq!(&got[..], [&want[..6], &want[10..]].concat(), "len {len}");
        }
        for n in [0, 1, 9, 10, 99, 100, 999, 1000, 12345] {
            let mut got = BytesMut::new();
            put_array(&mut got, n);
            assert_eq!(&got[..], format!("*{n}\r\n").as_bytes());
        }
        for n in [0, 9, -9, 10, i64::MIN, i64::MAX, 1234567] {
            let mut got = BytesMut::new();
            let len = put_bulk_int(&mut got, n);
            let text = n.to_string();
            assert_eq!(len, text.len());
            assert_eq!(
                &got[..],
                format!("${}\r\n{text}\r\n", text.len()).as_bytes()
            );
        }
    }
}
