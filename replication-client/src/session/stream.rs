//! The command stream: RESP arrays of bulk strings, each counted to the byte.

use bytes::Bytes;

use super::proto::{encode_ack, parse_i64, text};
use super::{Session, State};
use crate::error::{Error, Phase};
use crate::event::{Command, SessionEvent};

/// A command being decoded (resumable at any byte).
#[derive(Debug, Default)]
pub(super) struct StreamParser {
    /// Arguments announced by `*N` (0: between commands).
    expected: u64,
    args: Vec<Bytes>,
    /// Length of the bulk string whose header was read.
    bulk: Option<usize>,
    /// Wire bytes of the current command consumed so far.
    wire: u64,
}

/// Arguments pre-allocated at most, whatever `*N` says.
const MAX_PREALLOC: u64 = 64;

impl Session {
    pub(super) fn step_stream(&mut self, mut p: StreamParser) -> Result<(State, bool), Error> {
        loop {
            if let Some(len) = p.bulk {
                let need = len + 2;
                if self.inbuf.len() < need {
                    return Ok((State::Stream(p), false));
                }
                if &self.inbuf[len..need] != b"\r\n" {
                    return Err(Session::protocol(
                        Phase::Stream,
                        self.consumed + len as u64,
                        "bulk string not followed by CRLF",
                    ));
                }
                let mut arg = self.consume(need);
                arg.truncate(len);
                p.args.push(arg.freeze());
                p.wire += need as u64;
                p.bulk = None;
                if p.args.len() as u64 == p.expected {
                    self.complete(&mut p)?;
                }
                continue;
            }
            let start = self.consumed;
            let Some((line, wire)) = self.next_line()? else {
                return Ok((State::Stream(p), false));
            };
            p.wire += wire as u64;
            if p.expected == 0 {
                match line.first() {
                    // Redis accepts (and counts) empty lines from its master.
                    None => self.complete(&mut p)?,
                    Some(b'*') => {
                        let n = parse_i64(&line[1..]).ok_or_else(|| {
                            Session::protocol(
                                Phase::Stream,
                                start,
                                format!("bad array length {:?}", text(&line)),
                            )
                        })?;
                        if n <= 0 {
                            // Redis skips empty and null arrays (counted all the same).
                            self.complete(&mut p)?;
                        } else if n as u64 > self.cfg.limits.max_args {
                            return Err(Error::LimitExceeded {
                                what: "argument count",
                                offset: start,
                                len: n as u64,
                                limit: self.cfg.limits.max_args,
                            });
                        } else {
                            p.expected = n as u64;
                            p.args = Vec::with_capacity(n.min(MAX_PREALLOC as i64) as usize);
                        }
                    }
                    Some(_) => {
                        return Err(Session::protocol(
                            Phase::Stream,
                            start,
                            format!("expected a command array, got {:?}", text(&line)),
                        ))
                    }
                }
            } else {
                let len = match line.split_first() {
                    Some((b'$', n)) => parse_i64(n),
                    _ => None,
                }
                .and_then(|l| u64::try_from(l).ok())
                .ok_or_else(|| {
                    Session::protocol(
                        Phase::Stream,
                        start,
                        format!("expected a bulk string header, got {:?}", text(&line)),
                    )
                })?;
                if len > self.cfg.limits.max_bulk_len || usize::try_from(len).is_err() {
                    return Err(Error::LimitExceeded {
                        what: "bulk string",
                        offset: start,
                        len,
                        limit: self.cfg.limits.max_bulk_len,
                    });
                }
                p.bulk = Some(len as usize);
            }
        }
    }

    /// A command (or a skipped empty line/array) is complete: account for it.
    fn complete(&mut self, p: &mut StreamParser) -> Result<(), Error> {
        let args = std::mem::take(&mut p.args);
        let wire_len = std::mem::take(&mut p.wire);
        p.expected = 0;
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
