//! Strings (type 0): integer-encoded, LZF-compressed (buffered whole, bounded by
//! `max_buffered`), or raw (small ones in one event, large ones streamed in pieces of
//! `string_piece` bytes without buffering the whole value).

use bytes::BytesMut;

use crate::cursor::need;
use crate::encoding::length::StrHeader;
use crate::error::Error;
use crate::event::{Event, Str};
use crate::input::{check_buffered, Io, Step};

#[derive(Debug, Default)]
pub(crate) struct StringState {
    /// Bytes left of a raw string being streamed in pieces.
    remaining: Option<u64>,
}

impl StringState {
    pub(crate) fn step(&mut self, io: &mut Io, buf: &mut BytesMut) -> Result<Step, Error> {
        let piece = io.opts.string_piece.max(1) as u64;
        if let Some(rem) = self.remaining {
            let n = rem.min(piece) as usize;
            if buf.len() < n {
                return Ok(Step::NeedMore);
            }
            let b = io.consume(buf, n);
            io.emit(Event::String(Str::Bytes(b)));
            let rem = rem - n as u64;
            if rem == 0 {
                return Ok(Step::Done);
            }
            self.remaining = Some(rem);
            return Ok(Step::Continue);
        }
        let at = io.offset;
        let mut p = io.peek(buf);
        let h = need!(p.string_header());
        match h {
            StrHeader::Plain(n) if n > piece => {
                io.skip(buf, p.pos());
                self.remaining = Some(n);
                Ok(Step::Continue)
            }
            StrHeader::Lzf { clen, rlen, .. } => {
                need!(check_buffered(io, "LZF string", clen.max(rlen), at));
                let mut p = io.peek(buf);
                let s = need!(p.string(io.opts.max_buffered));
                let s = io.consume_str(buf, p.pos(), s)?;
                io.emit(Event::String(s));
                Ok(Step::Done)
            }
            _ => {
                let mut p = io.peek(buf);
                let s = need!(p.string(io.opts.max_buffered));
                let s = io.consume_str(buf, p.pos(), s)?;
                io.emit(Event::String(s));
                Ok(Step::Done)
            }
        }
    }
}
