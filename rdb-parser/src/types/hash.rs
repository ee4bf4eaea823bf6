//! Hashes: type 4 (hash table) and the hash-table forms with field TTLs (Redis 22 and 24,
//! Valkey 22) here; zipmap (9), ziplist (13), listpack (16) and listpack with TTLs (23, 25)
//! are compact blobs.
//!
//! Field TTLs are always reported absolute (ms since the epoch):
//! - Redis 22 (7.4 RC): `ttl field value` per field, `ttl` absolute, 0 = none;
//! - Redis 24: `minExpire` (u64 LE, read with the key) then `ttl field value`, where a
//!   non-zero `ttl` is `expireAt - minExpire + 1`;
//! - Valkey 22 (`HASH_2`): `field value expiry`, expiry an i64 LE millisecond time, -1 = none;
//! - listpacks 23/25: triplets `field value ttl`, `ttl` absolute, 0 = none.

use bytes::BytesMut;

use crate::cursor::opt;
use crate::error::Error;
use crate::input::Io;
use crate::types::{CountedKind, Sink};

/// Reads one field (with its TTL where the type has one) into `sink`; `false` when incomplete.
pub(crate) fn step_entry(
    io: &mut Io,
    buf: &mut BytesMut,
    sink: &mut Sink,
    kind: CountedKind,
) -> Result<bool, Error> {
    let limit = io.opts.max_buffered;
    let at = io.offset;
    let mut p = io.peek(buf);
    let ttl_prefix = match kind {
        CountedKind::HashTtlAbs | CountedKind::HashTtlRel(_) => {
            let Some(t) = opt(p.len("hash field TTL"))? else {
                return Ok(false);
            };
            Some(t)
        }
        _ => None,
    };
    let Some(field) = opt(p.string(limit))? else {
        return Ok(false);
    };
    let field_end = p.pos();
    let Some(value) = opt(p.string(limit))? else {
        return Ok(false);
    };
    let ttl = match kind {
        CountedKind::HashTtlAbs => ttl_prefix.filter(|&t| t != 0),
        CountedKind::HashTtlRel(min) => match ttl_prefix {
            Some(0) | None => None,
            Some(t) => Some(
                t.checked_add(min)
                    .and_then(|v| v.checked_sub(1))
                    .ok_or_else(|| Error::corrupt(format!("hash field TTL {t}"), at))?,
            ),
        },
        CountedKind::Hash2 => {
            let Some(e) = opt(p.array::<8>())? else {
                return Ok(false);
            };
            let e = i64::from_le_bytes(e);
            (e >= 0).then_some(e as u64)
        }
        _ => None,
    };
    // Each string split off on its own: one handle per string, no shared chunk handle.
    let total = p.pos();
    let field = io.consume_str(buf, field_end, field)?;
    let value = io.consume_str(buf, total - field_end, value.shifted(field_end))?;
    sink.push_hash(io, field, value, ttl);
    Ok(true)
}
