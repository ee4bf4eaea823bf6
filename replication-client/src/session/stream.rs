//! The command stream: RESP arrays of bulk strings, framed by `resp-codec`'s [`FrameDecoder`],
//! each counted to the byte.
//!
//! The decoder does the framing (resumable at any byte, limits checked before anything is
//! allocated, exact wire length per frame, stream-absolute error offsets). The session adds
//! what is specific to a replica reading its master:
//!
//! - Between commands a master may send empty lines (`\n`, `\r\n`): Redis skips them and
//!   counts them in the offset, and so do we (each is a [`SessionEvent::Progress`]). Any other
//!   line that does not start with `*` is inline protocol, which Redis refuses from a master
//!   ("Master using the inline protocol. Desync?"): an error here too. The decoder's inline
//!   mode would also accept such lines (and blank lines made of spaces) as commands, so it is
//!   off and the newlines are skipped here, where they are counted.
//! - Empty and null arrays (`*0`, `*-1`) are skipped and counted, like Redis does.
//! - Every element of a command must be a bulk string (Redis: "expected '$'"); nested
//!   aggregates are refused by the decoder at once (depth limit 1), other element types once
//!   the command is complete.

use bytes::Bytes;
use resp_codec::{Frame, FrameDecoder, Limit};

use super::proto::{encode_ack, parse_i64};
use super::{Session, State};
use crate::config::Limits;
use crate::error::{Error, Phase};
use crate::event::{Command, SessionEvent};

/// The decoder for the command stream, positioned at connection offset `position`.
pub(super) fn decoder(limits: &Limits, position: u64) -> FrameDecoder {
    let saturate = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    let limits = resp_codec::Limits::new()
        .with_max_bulk_len(saturate(limits.max_bulk_len))
        .with_max_aggregate_len(saturate(limits.max_args))
        .with_max_line_len(limits.max_line_len)
        // A command is a flat array.
        .with_max_depth(1);
    let mut d = FrameDecoder::new(limits);
    d.set_position(position);
    d
}

/// An empty line at the front of `buf`: its length on the wire, `None` if `buf` starts with
/// something else, `Some(None)` if it may be one but more input is needed.
fn empty_line(buf: &[u8]) -> Option<Option<usize>> {
    match buf {
        [b'\n', ..] => Some(Some(1)),
        [b'\r', b'\n', ..] => Some(Some(2)),
        [b'\r'] => Some(None),
        _ => None,
    }
}

impl Session {
    pub(super) fn step_stream(&mut self, mut d: FrameDecoder) -> Result<(State, bool), Error> {
        loop {
            if d.is_idle() {
                // Between commands: skip and count empty lines; anything else must be `*`.
                match empty_line(&self.inbuf) {
                    Some(Some(n)) => {
                        self.consume(n);
                        d.set_position(self.consumed);
                        self.complete(Vec::new(), n as u64)?;
                        continue;
                    }
                    Some(None) => return Ok((State::Stream(d), false)),
                    None => {}
                }
                match self.inbuf[..] {
                    [] => return Ok((State::Stream(d), false)),
                    [b'*', b'?', ..] => {
                        return Err(Session::protocol(
                            Phase::Stream,
                            self.consumed,
                            "a streamed (`*?`) array is not a command",
                        ))
                    }
                    [b'*', ..] => {}
                    [b, ..] => {
                        return Err(Session::protocol(
                            Phase::Stream,
                            self.consumed,
                            format!(
                            "expected a command array, got '{}' (inline protocol from a master)",
                            std::ascii::escape_default(b)
                        ),
                        ))
                    }
                }
            }
            // The common case, a whole command buffered: straight into its arguments.
            if let Some((args, len)) = d.decode_command(&mut self.inbuf) {
                self.consumed = d.position();
                self.complete(args, len as u64)?;
                continue;
            }
            let decoded = d.decode(&mut self.inbuf);
            self.consumed = d.position();
            let Some((frame, len)) = decoded.map_err(|e| self.stream_error(e))? else {
                return Ok((State::Stream(d), false));
            };
            let start = self.consumed - len as u64;
            let items = match frame {
                Frame::Array(items) => items,
                // `*-1`: skipped and counted like `*0`.
                Frame::NullArray => Vec::new(),
                // Not reached: the frame starts with `*`.
                f => return Err(Session::protocol(Phase::Stream, start, kind(&f))),
            };
            // Moved into a new vector rather than with `Frame::into_command`, whose in-place
            // collect shrinks the allocation with a `realloc`: 3% fewer instructions.
            let mut args = Vec::with_capacity(items.len());
            for (i, f) in items.into_iter().enumerate() {
                match f {
                    Frame::BulkString(b) => args.push(b),
                    f => {
                        return Err(Session::protocol(
                            Phase::Stream,
                            start,
                            format!(
                                "element {i} of a command array is {}, not a bulk string",
                                kind(&f)
                            ),
                        ))
                    }
                }
            }
            self.complete(args, len as u64)?;
        }
    }

    /// A decoder error as the crate's error: limits keep their names, the rest is a protocol
    /// error at the decoder's (connection-absolute) offset.
    fn stream_error(&self, e: resp_codec::Error) -> Error {
        let limits = &self.cfg.limits;
        if let resp_codec::Error::LimitExceeded {
            limit,
            offset,
            found,
            ..
        } = e
        {
            let (what, limit) = match limit {
                Limit::BulkLen => ("bulk string", limits.max_bulk_len),
                Limit::AggregateLen => ("argument count", limits.max_args),
                Limit::LineLen => ("line", limits.max_line_len as u64),
                _ => {
                    return Session::protocol(
                        Phase::Stream,
                        offset,
                        "a nested aggregate in a command array (expected a bulk string)",
                    )
                }
            };
            return Error::LimitExceeded {
                what,
                offset,
                len: found,
                limit,
            };
        }
        Session::protocol(
            Phase::Stream,
            e.offset().unwrap_or(self.consumed),
            e.to_string(),
        )
    }

    /// A command (or a skipped empty line/array: no `args`) of `wire_len` bytes ending at the
    /// current connection offset is complete: account for it.
    fn complete(&mut self, args: Vec<Bytes>, wire_len: u64) -> Result<(), Error> {
        let start = self.consumed - wire_len;
        let name: &[u8] = args.first().map_or(&[], |a| a);
        let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
        // Validate before counting, so that a failed session's position stays before it.
        let select = if is("SELECT") {
            let db = args
                .get(1)
                .and_then(|a| parse_i64(a))
                .and_then(|d| u32::try_from(d).ok())
                .ok_or_else(|| {
                    Session::protocol(Phase::Stream, start, "SELECT with a bad database number")
                })?;
            Some(db)
        } else {
            None
        };
        self.offset += wire_len;
        let end_offset = self.offset;
        if let Some(db) = select {
            self.db = db;
            self.progress();
        } else if args.is_empty() || is("PING") {
            self.progress();
        } else if is("REPLCONF") {
            if args
                .get(1)
                .is_some_and(|a| a.eq_ignore_ascii_case(b"GETACK"))
            {
                // Like Redis: the answer excludes the GETACK itself (and an open MULTI).
                encode_ack(&mut self.out, self.ack_offset);
            }
            self.progress();
        } else {
            if is("MULTI") {
                self.in_multi = true;
            } else if is("EXEC") || is("DISCARD") {
                self.in_multi = false;
            }
            self.events.push_back(SessionEvent::Command(Command {
                db: self.db,
                args,
                end_offset,
                wire_len,
            }));
        }
        if !self.in_multi {
            self.ack_offset = self.offset;
        }
        Ok(())
    }

    fn progress(&mut self) {
        self.events.push_back(SessionEvent::Progress {
            offset: self.offset,
            db: self.db,
        });
    }
}

/// What a frame is, for messages ("an integer").
fn kind(f: &Frame) -> &'static str {
    match f {
        Frame::SimpleString(_) => "a simple string",
        Frame::SimpleError(_) => "an error",
        Frame::Integer(_) => "an integer",
        Frame::BulkString(_) => "a bulk string",
        Frame::Null | Frame::NullBulkString | Frame::NullArray => "a null",
        Frame::Array(_) | Frame::Set(_) | Frame::Push(_) => "an array",
        Frame::Double(_) => "a double",
        Frame::Boolean(_) => "a boolean",
        Frame::BlobError(_) => "a blob error",
        Frame::VerbatimString { .. } => "a verbatim string",
        Frame::BigNumber(_) => "a big number",
        Frame::Map(_) | Frame::Attribute { .. } => "a map",
    }
}
