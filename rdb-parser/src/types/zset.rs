//! Sorted sets: type 3 (ASCII scores) and 5 (binary scores) here; ziplist (12) and listpack
//! (17) are compact blobs of alternating member and score.

use bytes::BytesMut;

use crate::cursor::opt;
use crate::error::Error;
use crate::input::Io;
use crate::types::Sink;

/// Reads one `member score` pair into `sink`; `false` when incomplete.
pub(crate) fn step_entry(
    io: &mut Io,
    buf: &mut BytesMut,
    sink: &mut Sink,
    binary: bool,
) -> Result<bool, Error> {
    let mut p = io.peek(buf);
    let Some(member) = opt(p.string(io.opts.max_buffered))? else {
        return Ok(false);
    };
    let member_end = p.pos();
    let score = if binary {
        opt(p.f64_le())?
    } else {
        opt(p.ascii_double())?
    };
    let Some(score) = score else {
        return Ok(false);
    };
    let total = p.pos();
    let member = io.consume_str(buf, member_end, member)?;
    io.skip(buf, total - member_end);
    sink.push_zset(io, member, score);
    Ok(true)
}
