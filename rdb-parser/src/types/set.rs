//! Sets: type 2 (hash table of strings) here; intset (11) and listpack (20) are compact
//! blobs (see `types::BlobValue`).

use bytes::BytesMut;

use crate::cursor::opt;
use crate::error::Error;
use crate::input::Io;
use crate::types::Sink;

/// Reads one plain string element (list element or set member) into `sink`.
///
/// Returns `false` when the element is not complete yet.
pub(crate) fn step_member(io: &mut Io, buf: &mut BytesMut, sink: &mut Sink) -> Result<bool, Error> {
    let mut p = io.peek(buf);
    let Some(s) = opt(p.string(io.opts.max_buffered))? else {
        return Ok(false);
    };
    let s = io.consume_str(buf, p.pos(), s)?;
    sink.push_str(io, s);
    Ok(true)
}
