//! The [`Rewriter`](super::Rewriter)'s commands for simple values, written as RESP straight
//! from borrowed items ([`rdb_parser::Item`], as a [`rdb_parser::Visitor`] receives them):
//! no `Bytes` handle, argument vector or [`Cmd`](super::Cmd) per item.
//!
//! [`DirectKey`] covers strings, lists, sets, sorted sets and hashes without field TTLs, and
//! writes byte for byte what [`Rewriter`](super::Rewriter) + [`RespWriter`] write for them
//! (same commands, same cuts by [`RewriteOptions::max_command_args`] /
//! [`RewriteOptions::max_command_bytes`], `UNLINK` first under
//! [`RewriteOptions::replace`], `SET ... PXAT` or a final `PEXPIREAT`). It is handed out by
//! [`crate::plan::KeyPlanner::direct`] for a key the planner writes as commands; other
//! values go through the rewriter.

use bytes::{BufMut, Bytes, BytesMut};
use rdb_parser::{Item, KeyStart, RdbType, ValueKind};

use super::zset::format_score_into;
use super::{Loss, RespWriter, RewriteOptions};
use crate::ServerVersion;

/// The value kinds (and encodings) [`DirectKey`] writes: no stream, module, or hash with
/// field TTLs.
pub(crate) fn handles(start: &KeyStart) -> bool {
    use RdbType::*;
    match start.kind() {
        ValueKind::String | ValueKind::List | ValueKind::Set | ValueKind::ZSet => true,
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
}

/// Buffers kept from one [`DirectKey`] to the next (no allocation per key).
#[derive(Debug, Default)]
pub(crate) struct Spare {
    items: BytesMut,
    string: Vec<u8>,
    score: String,
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

/// `$len\r\ndata\r\n`; a short one assembled on the stack and appended in one copy.
fn put_bulk(dst: &mut BytesMut, data: &[u8]) {
    const SHORT: usize = 64;
    let mut buf = [0u8; 24 + SHORT + 2];
    // The header at the front: `$`, the length's digits, CRLF.
    let mut len_digits = [0u8; 20];
    let d = digits(&mut len_digits, 20, data.len() as u64);
    let n = 20 - d;
    buf[0] = b'$';
    buf[1..1 + n].copy_from_slice(&len_digits[d..]);
    buf[1 + n] = b'\r';
    buf[2 + n] = b'\n';
    let head = 3 + n;
    if data.len() <= SHORT {
        buf[head..head + data.len()].copy_from_slice(data);
        let end = head + data.len();
        buf[end] = b'\r';
        buf[end + 1] = b'\n';
        dst.put_slice(&buf[..end + 2]);
    } else {
        dst.put_slice(&buf[..head]);
        dst.put_slice(data);
        dst.put_slice(b"\r\n");
    }
}

fn put_array(dst: &mut BytesMut, n: usize) {
    dst.put_u8(b'*');
    put_u64(dst, n as u64);
    dst.put_slice(b"\r\n");
}

impl DirectKey {
    /// A writer for the key `start` (already mapped to its target db and name) on `target`.
    pub(crate) fn new(
        start: &KeyStart,
        target: ServerVersion,
        opts: &RewriteOptions,
        spare: Spare,
    ) -> DirectKey {
        DirectKey {
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
            },
        }
    }
}
