//! The sans-IO replication session: bytes and time in; events, bytes to send and a timer
//! deadline out. No I/O, no clock reads, no sleeping: deterministic and fuzzable.
//!
//! One [`Session`] lives for one connection. After a link failure the driver starts a new one
//! with the [`ResumePoint`] of the old one ([`Session::resume_point`]).

mod handshake;
mod proto;
mod stream;
mod transfer;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use resp_codec::FrameDecoder;

use crate::config::SessionConfig;
use crate::error::{Error, Phase};
use crate::event::{ReplId, ResumePoint, SessionEvent};

use handshake::Handshake;
use transfer::Transfer;

/// The per-phase state.
#[derive(Debug)]
enum State {
    Handshake(Handshake),
    Psync,
    RdbWait,
    Rdb(Transfer),
    Stream(FrameDecoder),
    /// After an error (or while a step runs).
    Failed,
}

/// How often ACKs go out between the start of the stream phase and the stream's first
/// byte (a server's cron tick is 100 ms at its default `hz`).
const START_ACK_EVERY: Duration = Duration::from_millis(50);
/// For how long after the start of the stream phase ACKs go out that often (after that, a
/// quiet source is just quiet).
const START_ACK_WINDOW: Duration = Duration::from_secs(5);

/// A replica-side replication session over one connection, without I/O.
///
/// Feed it what the server sends ([`Session::handle_input`]) and the time
/// ([`Session::handle_timeout`] at [`Session::poll_timeout`]); send what
/// [`Session::poll_transmit`] returns; consume [`Session::poll_event`]. An error ends the
/// session: every later call returns that first error again.
///
/// ```
/// use std::time::Instant;
/// use replication_client::{Session, SessionConfig, SessionEvent};
///
/// let now = Instant::now();
/// let mut s = Session::new(SessionConfig::default(), None, now);
/// assert_eq!(&s.poll_transmit().unwrap()[..], b"*1\r\n$4\r\nPING\r\n");
/// // PONG, then OK to REPLCONF listening-port, capa and version.
/// s.handle_input(b"+PONG\r\n+OK\r\n+OK\r\n+OK\r\n", now).unwrap();
/// let psync = s.poll_transmit().unwrap();
/// assert!(psync.ends_with(b"$5\r\nPSYNC\r\n$1\r\n?\r\n$2\r\n-1\r\n"));
/// s.handle_input(b"+FULLRESYNC 0123456789012345678901234567890123456789 100\r\n$3\r\nabc", now)
///     .unwrap();
/// assert!(matches!(s.poll_event(), Some(SessionEvent::FullResync { offset: 100, .. })));
/// ```
#[derive(Debug)]
pub struct Session {
    cfg: SessionConfig,
    state: State,
    inbuf: BytesMut,
    /// Bytes of `inbuf` already searched for a line end (resume point, reset on consume).
    scan: usize,
    /// Bytes consumed from the connection so far (for error offsets).
    consumed: u64,
    out: BytesMut,
    events: VecDeque<SessionEvent>,
    now: Instant,
    last_recv: Instant,
    reading_paused: bool,
    next_ack: Option<Instant>,
    /// The position asked for with PSYNC.
    requested: Option<ResumePoint>,
    replid: Option<ReplId>,
    /// Replication offset of the last byte consumed (stream phase).
    offset: u64,
    /// Offset at the last transaction boundary: what `REPLCONF ACK` reports.
    ack_offset: u64,
    db: u32,
    in_multi: bool,
    streaming: bool,
    /// Where and when the stream phase began: until a byte of the stream arrives, ACKs go
    /// out every [`START_ACK_EVERY`] (see [`Session::next_ack_after`]).
    stream_start: Option<(u64, Instant)>,
    /// The error that failed the session, returned again by every later call.
    first_error: Option<Error>,
}

impl Session {
    /// A session that starts the handshake at once (the `PING` is ready in
    /// [`Session::poll_transmit`]). With `resume`, it asks `PSYNC <replid> <offset+1>`;
    /// without, `PSYNC ? -1` (a full sync).
    pub fn new(config: SessionConfig, resume: Option<ResumePoint>, now: Instant) -> Session {
        let mut s = Session {
            cfg: config,
            state: State::Failed,
            first_error: None,
            inbuf: BytesMut::new(),
            scan: 0,
            consumed: 0,
            out: BytesMut::new(),
            events: VecDeque::new(),
            now,
            last_recv: now,
            reading_paused: false,
            next_ack: None,
            requested: resume,
            replid: None,
            offset: 0,
            ack_offset: 0,
            db: 0,
            in_multi: false,
            streaming: false,
            stream_start: None,
        };
        s.state = State::Handshake(Handshake::start(&s.cfg, &mut s.out));
        s
    }

    /// Feeds bytes received from the server.
    pub fn handle_input(&mut self, data: &[u8], now: Instant) -> Result<(), Error> {
        self.check_alive()?;
        self.inbuf.extend_from_slice(data);
        self.process(now)
    }

    /// The input buffer, with at least `reserve` bytes of spare capacity, for reading from a
    /// socket without a copy; call [`Session::process`] after appending to it.
    pub fn input_buffer(&mut self, reserve: usize) -> &mut BytesMut {
        self.inbuf.reserve(reserve);
        &mut self.inbuf
    }

    /// Processes what was appended to [`Session::input_buffer`], received at `now`.
    pub fn process(&mut self, now: Instant) -> Result<(), Error> {
        self.check_alive()?;
        self.now = now;
        self.last_recv = now;
        let r = self.run();
        if let Err(e) = &r {
            self.fail(e);
        }
        r
    }

    /// Runs the timers due at `now`: sends `REPLCONF ACK`, fails with [`Error::Timeout`] when
    /// nothing arrived for [`SessionConfig::read_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), Error> {
        self.check_alive()?;
        self.now = now;
        if let Some(idle) = self.idle_deadline() {
            if now >= idle {
                let e = Error::Timeout {
                    phase: self.phase(),
                    idle: self.cfg.read_timeout,
                };
                self.fail(&e);
                return Err(e);
            }
        }
        if let Some(ack) = self.next_ack {
            if now >= ack {
                proto::encode_ack(&mut self.out, self.ack_offset);
                self.next_ack = Some(self.next_ack_after(now));
            }
        }
        Ok(())
    }

    /// When [`Session::handle_timeout`] must be called next (`None`: no timer).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if matches!(self.state, State::Failed) {
            return None;
        }
        match (self.idle_deadline(), self.next_ack) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Tells the session that the driver stopped reading (its consumer is slow) or resumed:
    /// while paused, silence from the server is not a timeout.
    pub fn set_reading_paused(&mut self, paused: bool, now: Instant) {
        if self.reading_paused && !paused {
            self.last_recv = now;
        }
        self.reading_paused = paused;
    }

    /// Bytes to send to the server, if any.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        (!self.out.is_empty()).then(|| self.out.split().freeze())
    }

    /// The next event, in stream order.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// The protocol phase (for messages).
    pub fn phase(&self) -> Phase {
        match self.state {
            State::Handshake(_) => Phase::Handshake,
            State::Psync => Phase::Psync,
            State::RdbWait => Phase::RdbWait,
            State::Rdb(_) => Phase::Rdb,
            State::Stream(_) => Phase::Stream,
            State::Failed if self.streaming => Phase::Stream,
            State::Failed => Phase::Handshake,
        }
    }

    /// Where a new session can resume with `PSYNC`: `None` until the RDB was received (or
    /// `+CONTINUE`), then the position after the last complete command. Still valid after
    /// the session failed.
    pub fn resume_point(&self) -> Option<ResumePoint> {
        match (self.streaming, self.replid) {
            (true, Some(replid)) => Some(ResumePoint {
                replid,
                offset: self.offset,
                db: self.db,
            }),
            _ => None,
        }
    }

    /// Replication offset of the last byte consumed (after the sync reply).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The replication id, once the server told it.
    pub fn replid(&self) -> Option<ReplId> {
        self.replid
    }

    /// Bytes received on this connection so far and consumed.
    pub fn bytes_consumed(&self) -> u64 {
        self.consumed
    }

    /// After a failure, the first error again (as rustls does): every later call says what
    /// went wrong, not merely that something did.
    fn check_alive(&self) -> Result<(), Error> {
        match (&self.state, &self.first_error) {
            (State::Failed, Some(e)) => Err(e.replay()),
            (State::Failed, None) => Err(Error::SessionFailed),
            _ => Ok(()),
        }
    }

    /// Ends the session. Events already decoded stay queued: their offsets are part of
    /// [`Session::resume_point`], so the driver delivers them before reconnecting. Bytes
    /// queued for sending stay too, so that what a session did before the bad input does
    /// not depend on how the input was split (a driver simply drops the connection).
    fn fail(&mut self, error: &Error) {
        self.state = State::Failed;
        self.next_ack = None;
        if self.first_error.is_none() {
            self.first_error = Some(error.replay());
        }
    }

    /// Whether [`Session::set_reading_paused`] paused reading.
    pub fn reading_paused(&self) -> bool {
        self.reading_paused
    }

    fn idle_deadline(&self) -> Option<Instant> {
        (!self.reading_paused).then(|| self.last_recv + self.cfg.read_timeout)
    }

    fn ack_interval(&self) -> Duration {
        self.cfg.ack_interval.max(Duration::from_millis(1))
    }

    /// When the ACK after one sent at `now` is due: the interval, or sooner while the
    /// stream has not started. After a diskless RDB the server starts the stream on the
    /// first ACK it receives once it has seen its RDB child exit (up to a cron tick after
    /// the RDB's last byte); an ACK sent as the RDB ended may come before that and be only
    /// recorded, and the stream would then wait a whole interval for the next one. A real
    /// replica sends its first ACK after loading the RDB, long after the child exited.
    fn next_ack_after(&self, now: Instant) -> Instant {
        let interval = self.ack_interval();
        match self.stream_start {
            Some((offset, at))
                if self.offset == offset
                    && now.saturating_duration_since(at) < START_ACK_WINDOW =>
            {
                now + interval.min(START_ACK_EVERY)
            }
            _ => now + interval,
        }
    }

    fn run(&mut self) -> Result<(), Error> {
        loop {
            let state = std::mem::replace(&mut self.state, State::Failed);
            let (next, progressed) = match state {
                State::Handshake(h) => self.step_handshake(h)?,
                State::Psync => self.step_psync()?,
                State::RdbWait => self.step_rdb_wait()?,
                State::Rdb(t) => self.step_rdb(t)?,
                State::Stream(p) => self.step_stream(p)?,
                State::Failed => return Err(Error::SessionFailed),
            };
            self.state = next;
            if !progressed {
                return Ok(());
            }
        }
    }

    /// Removes `n` bytes from the front of the input.
    fn consume(&mut self, n: usize) -> BytesMut {
        self.scan = 0;
        self.consumed += n as u64;
        self.inbuf.split_to(n)
    }

    /// The next complete line without its `\r\n` (or `\n`), and its length on the wire.
    /// Resumes its search where the previous call stopped; fails once a line exceeds
    /// [`crate::Limits::max_line_len`].
    fn next_line(&mut self) -> Result<Option<(BytesMut, usize)>, Error> {
        let limit = self.cfg.limits.max_line_len;
        let window = self.inbuf.len().min(limit.saturating_add(2));
        let start = self.scan.min(window);
        match memchr::memchr(b'\n', &self.inbuf[start..window]) {
            Some(i) => {
                let nl = start + i;
                let content = if nl > 0 && self.inbuf[nl - 1] == b'\r' {
                    nl - 1
                } else {
                    nl
                };
                if content > limit {
                    return Err(self.line_too_long(content as u64));
                }
                let mut line = self.consume(nl + 1);
                line.truncate(content);
                Ok(Some((line, nl + 1)))
            }
            // Reported as the window searched, the same however the input was split.
            None if window >= limit.saturating_add(2) => Err(self.line_too_long(window as u64)),
            None => {
                self.scan = window;
                Ok(None)
            }
        }
    }

    fn line_too_long(&self, len: u64) -> Error {
        Error::LimitExceeded {
            what: "line",
            offset: self.consumed,
            len,
            limit: self.cfg.limits.max_line_len as u64,
        }
    }

    fn protocol(phase: Phase, offset: u64, reason: impl Into<String>) -> Error {
        Error::Protocol {
            phase,
            offset,
            reason: reason.into(),
        }
    }

    /// Enters the stream phase at the current position and acknowledges it at once (after a
    /// diskless RDB the server starts streaming only after the first ACK).
    fn start_stream(&mut self) -> State {
        self.streaming = true;
        self.in_multi = false;
        self.ack_offset = self.offset;
        proto::encode_ack(&mut self.out, self.ack_offset);
        self.stream_start = Some((self.offset, self.now));
        self.next_ack = Some(self.next_ack_after(self.now));
        State::Stream(stream::decoder(&self.cfg.limits, self.consumed))
    }
}

#[cfg(test)]
mod tests;
