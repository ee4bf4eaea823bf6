//! Handshake: `PING`, `AUTH`, `REPLCONF`s, then `PSYNC` and its answer.

use std::collections::VecDeque;

use bytes::BytesMut;
use resp_codec::Command;

use super::proto::{parse_i64, text};
use super::{Session, State};
use crate::config::SessionConfig;
use crate::error::{Error, Phase};
use crate::event::{FullResyncReason, ReplId, SessionEvent};

/// A command whose reply is awaited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Ping,
    Auth,
    ListeningPort,
    IpAddress,
    Capa,
    Version,
}

impl Step {
    fn command(self) -> &'static str {
        match self {
            Step::Ping => "PING",
            Step::Auth => "AUTH",
            _ => "REPLCONF",
        }
    }
}

/// Replies still expected, in order.
#[derive(Debug)]
pub(super) struct Handshake {
    expect: VecDeque<Step>,
}

impl Handshake {
    /// Queues the `PING` (sent alone: a server that is not ready answers it first).
    pub(super) fn start(_cfg: &SessionConfig, out: &mut BytesMut) -> Handshake {
        Command::new("PING").encode(out);
        Handshake {
            expect: VecDeque::from([Step::Ping]),
        }
    }
}

/// A status (`+`) or error (`-`) reply line.
enum Reply {
    Status(BytesMut),
    Error(String),
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

impl Session {
    /// The next reply line and the connection offset where it starts, skipping the bare
    /// newlines servers send as keepalives.
    fn next_reply(&mut self, phase: Phase) -> Result<Option<(u64, Reply)>, Error> {
        loop {
            let start = self.consumed;
            let Some((mut line, _)) = self.next_line()? else {
                return Ok(None);
            };
            match line.first() {
                None => continue,
                Some(b'+') => {
                    let _ = line.split_to(1);
                    return Ok(Some((start, Reply::Status(line))));
                }
                Some(b'-') => return Ok(Some((start, Reply::Error(text(&line[1..]))))),
                Some(_) => {
                    return Err(Session::protocol(
                        phase,
                        start,
                        format!("expected a status or error reply, got {:?}", text(&line)),
                    ))
                }
            }
        }
    }

    pub(super) fn step_handshake(&mut self, mut h: Handshake) -> Result<(State, bool), Error> {
        let Some(step) = h.expect.front().copied() else {
            return Ok((self.send_psync(), true));
        };
        let Some((_, reply)) = self.next_reply(Phase::Handshake)? else {
            return Ok((State::Handshake(h), false));
        };
        h.expect.pop_front();
        let command = step.command();
        match (step, reply) {
            (_, Reply::Status(_)) => {}
            (Step::Ping, Reply::Error(e)) => {
                // Like Redis: these mean "authenticate first", which comes next.
                if !(starts_with_ci(&e, "NOAUTH")
                    || starts_with_ci(&e, "NOPERM")
                    || starts_with_ci(&e, "ERR operation not permitted"))
                {
                    return Err(Error::ServerError {
                        command,
                        message: e,
                    });
                }
            }
            (Step::Auth, Reply::Error(e)) => return Err(Error::Auth { message: e }),
            (_, Reply::Error(e)) if starts_with_ci(&e, "NOAUTH") => {
                return Err(Error::Auth {
                    message: format!("{e} (no password configured)"),
                })
            }
            (_, Reply::Error(e)) if starts_with_ci(&e, "NOPERM") => {
                return Err(Error::NoPermission {
                    command,
                    message: e,
                })
            }
            // Older servers do not know every REPLCONF option (ip-address, version): like
            // Redis, carry on without it.
            (_, Reply::Error(_)) => {}
        }
        if step == Step::Ping {
            self.send_handshake(&mut h);
        }
        Ok((State::Handshake(h), true))
    }

    /// `AUTH` and the `REPLCONF`s, pipelined.
    fn send_handshake(&mut self, h: &mut Handshake) {
        let cfg = &self.cfg;
        let out = &mut self.out;
        if let Some(pass) = &cfg.password {
            let auth = Command::new("AUTH");
            match &cfg.username {
                Some(user) => auth.arg(user).arg(pass.expose()),
                None => auth.arg(pass.expose()),
            }
            .encode(out);
            h.expect.push_back(Step::Auth);
        }
        let replconf = |option: &str| Command::new("REPLCONF").arg(option);
        if let Some(port) = cfg.listening_port {
            replconf("listening-port").arg_int(port.into()).encode(out);
            h.expect.push_back(Step::ListeningPort);
        }
        if let Some(ip) = &cfg.announce_ip {
            replconf("ip-address").arg(ip).encode(out);
            h.expect.push_back(Step::IpAddress);
        }
        replconf("capa")
            .arg("eof")
            .arg("capa")
            .arg("psync2")
            .encode(out);
        h.expect.push_back(Step::Capa);
        if let Some(v) = &cfg.replconf_version {
            replconf("version").arg(v).encode(out);
            h.expect.push_back(Step::Version);
        }
    }

    fn send_psync(&mut self) -> State {
        let psync = Command::new("PSYNC");
        match self
            .requested
            .and_then(|r| r.offset.checked_add(1).map(|o| (r, o)))
        {
            Some((r, next)) => psync.arg(r.replid.as_bytes()).arg(next.to_string()),
            None => psync.arg("?").arg("-1"),
        }
        .encode(&mut self.out);
        State::Psync
    }

    pub(super) fn step_psync(&mut self) -> Result<(State, bool), Error> {
        let Some((start, reply)) = self.next_reply(Phase::Psync)? else {
            return Ok((State::Psync, false));
        };
        let line = match reply {
            Reply::Error(e) => {
                let command = "PSYNC";
                return Err(
                    if starts_with_ci(&e, "NOMASTERLINK") || starts_with_ci(&e, "LOADING") {
                        Error::NotReady {
                            command,
                            message: e,
                        }
                    } else if starts_with_ci(&e, "NOPERM") {
                        Error::NoPermission {
                            command,
                            message: e,
                        }
                    } else if starts_with_ci(&e, "NOAUTH") || starts_with_ci(&e, "WRONGPASS") {
                        Error::Auth { message: e }
                    } else {
                        Error::ServerError {
                            command,
                            message: e,
                        }
                    },
                );
            }
            Reply::Status(line) => line,
        };
        let bad = |reason: &str| {
            Session::protocol(
                Phase::Psync,
                start,
                format!("{reason} in PSYNC reply {:?}", text(&line)),
            )
        };
        let mut parts = line[..].split(|&b| b == b' ');
        let word: &[u8] = parts.next().unwrap_or_default();
        if word.eq_ignore_ascii_case(b"FULLRESYNC") {
            let replid = parts
                .next()
                .and_then(ReplId::from_bytes)
                .ok_or_else(|| bad("bad replication id"))?;
            let offset = parts
                .next()
                .and_then(parse_i64)
                .and_then(|o| u64::try_from(o).ok())
                .ok_or_else(|| bad("bad offset"))?;
            if parts.next().is_some() {
                return Err(bad("unexpected words"));
            }
            let reason = match self.requested {
                Some(requested) => FullResyncReason::PartialRefused { requested },
                None => FullResyncReason::Initial,
            };
            self.replid = Some(replid);
            self.offset = offset;
            self.db = 0;
            self.events.push_back(SessionEvent::FullResync {
                replid,
                offset,
                reason,
            });
            Ok((State::RdbWait, true))
        } else if word.eq_ignore_ascii_case(b"CONTINUE") {
            let Some(requested) = self.requested else {
                return Err(bad("+CONTINUE without a requested position"));
            };
            let new_id = match parts.next() {
                None => None,
                Some(id) => Some(ReplId::from_bytes(id).ok_or_else(|| bad("bad replication id"))?),
            };
            if parts.next().is_some() {
                return Err(bad("unexpected words"));
            }
            let replid = new_id.unwrap_or(requested.replid);
            self.replid = Some(replid);
            self.offset = requested.offset;
            self.db = requested.db;
            self.events.push_back(SessionEvent::PartialResync {
                replid,
                offset: requested.offset,
                replid_changed: replid != requested.replid,
            });
            Ok((self.start_stream(), true))
        } else {
            Err(bad("unknown answer"))
        }
    }
}
