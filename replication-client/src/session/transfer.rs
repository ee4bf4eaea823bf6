//! RDB transfer: disk-based `$<len>\r\n<len bytes>` (no trailing CRLF) and diskless
//! `$EOF:<40-byte mark>\r\n ... <mark>`.

use super::proto::{parse_i64, text};
use super::{Session, State};
use crate::error::{Error, Phase};
use crate::event::{RdbTransfer, SessionEvent};

/// Length of the diskless end mark (`RDB_EOF_MARK_SIZE`).
const MARK_LEN: usize = 40;

#[derive(Debug)]
pub(super) enum Transfer {
    Sized { remaining: u64, total: u64 },
    Diskless { mark: [u8; MARK_LEN], total: u64 },
}

impl Session {
    pub(super) fn step_rdb_wait(&mut self) -> Result<(State, bool), Error> {
        loop {
            let start = self.consumed;
            let Some((line, _)) = self.next_line()? else {
                return Ok((State::RdbWait, false));
            };
            match line.first() {
                // Keepalive newlines while the server prepares the RDB.
                None => continue,
                Some(b'$') => {
                    let body = &line[1..];
                    let (transfer, event) = if let Some(mark) = body.strip_prefix(b"EOF:") {
                        let mark: [u8; MARK_LEN] = mark.try_into().map_err(|_| {
                            Session::protocol(
                                Phase::RdbWait,
                                start,
                                format!("EOF mark of {} bytes, expected {MARK_LEN}", mark.len()),
                            )
                        })?;
                        (Transfer::Diskless { mark, total: 0 }, RdbTransfer::Diskless)
                    } else {
                        let len = parse_i64(body)
                            .and_then(|l| u64::try_from(l).ok())
                            .ok_or_else(|| {
                                Session::protocol(
                                    Phase::RdbWait,
                                    start,
                                    format!("bad RDB length {:?}", text(body)),
                                )
                            })?;
                        (
                            Transfer::Sized {
                                remaining: len,
                                total: len,
                            },
                            RdbTransfer::Sized { len },
                        )
                    };
                    self.events.push_back(SessionEvent::RdbStart(event));
                    return Ok((State::Rdb(transfer), true));
                }
                Some(b'-') => {
                    return Err(Error::ServerError {
                        command: "PSYNC",
                        message: text(&line[1..]),
                    })
                }
                Some(_) => {
                    return Err(Session::protocol(
                        Phase::RdbWait,
                        start,
                        format!("expected the RDB header, got {:?}", text(&line)),
                    ))
                }
            }
        }
    }

    pub(super) fn step_rdb(&mut self, t: Transfer) -> Result<(State, bool), Error> {
        match t {
            Transfer::Sized { remaining, total } => {
                let n = remaining.min(self.inbuf.len() as u64) as usize;
                if n > 0 {
                    let chunk = self.consume(n).freeze();
                    self.events.push_back(SessionEvent::RdbChunk(chunk));
                }
                let remaining = remaining - n as u64;
                if remaining == 0 {
                    Ok((self.end_rdb(total), true))
                } else {
                    Ok((State::Rdb(Transfer::Sized { remaining, total }), false))
                }
            }
            Transfer::Diskless { mark, total } => {
                // The buffer holds at most MARK_LEN - 1 bytes already searched, so the search
                // stays linear however the input is split.
                if let Some(pos) = memchr::memmem::find(&self.inbuf, &mark) {
                    let total = total + pos as u64;
                    if pos > 0 {
                        let chunk = self.consume(pos).freeze();
                        self.events.push_back(SessionEvent::RdbChunk(chunk));
                    }
                    self.consume(MARK_LEN);
                    return Ok((self.end_rdb(total), true));
                }
                // Hold back what could be the start of the mark.
                let keep = MARK_LEN - 1;
                let n = self.inbuf.len().saturating_sub(keep);
                if n > 0 {
                    let chunk = self.consume(n).freeze();
                    self.events.push_back(SessionEvent::RdbChunk(chunk));
                }
                Ok((
                    State::Rdb(Transfer::Diskless {
                        mark,
                        total: total + n as u64,
                    }),
                    false,
                ))
            }
        }
    }

    fn end_rdb(&mut self, len: u64) -> State {
        self.events.push_back(SessionEvent::RdbEnd { len });
        self.start_stream()
    }
}
