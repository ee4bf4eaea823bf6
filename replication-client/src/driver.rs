//! The tokio driver: connects (TCP or TLS), runs a [`Session`] per connection, reconnects
//! with backoff and `PSYNC <replid> <offset+1>`, and hands events to the consumer through a
//! bounded channel.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

use crate::config::{Config, RdbMode, RdbSpool};
use crate::diagnose::{diagnose, SourceFacts};
use crate::error::{Error, Phase};
use crate::event::{Event, FullResyncReason, Lag, ResumePoint, SessionEvent};
use crate::session::Session;

/// How long reading the source's `INFO` after failed full syncs may take.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Settings read from the source to explain failed full syncs.
const PROBED_SETTINGS: [&str; 3] = [
    "client-output-buffer-limit",
    "repl-diskless-sync",
    "repl-diskless-sync-delay",
];

/// Most replicated commands per channel item: consecutive commands travel in batches
/// ([`Item::Commands`]), so the channel's cost is paid once per batch, not per command.
const BATCH_COMMANDS: usize = 256;
/// Most wire bytes of the commands in one batch (big values travel alone).
const BATCH_BYTES: u64 = 1 << 20;

/// What travels through the channel.
enum Item {
    Event(Event),
    /// Consecutive replicated commands, in stream order (each one an [`Event::Command`]).
    Commands(Vec<crate::event::Command>),
    /// The stream advanced without a user-visible event.
    Progress {
        offset: u64,
        db: u32,
    },
    Fatal(Error),
}

#[derive(Debug, Default)]
struct Shared {
    source_offset: AtomicU64,
}

/// A running replica: a background task connected to the server, and the receiving end of
/// its events.
///
/// Created with [`Replica::connect`]; events come from [`Replica::recv`] in stream order.
/// The channel is bounded ([`Config::channel_capacity`]; consecutive commands travel as one
/// batch and are handed out one by one): when the consumer falls behind,
/// the task stops reading and TCP backpressure reaches the server (which keeps the stream
/// in its output buffer, up to its `client-output-buffer-limit replica`). Dropping the
/// `Replica` stops the task and closes the connection.
#[derive(Debug)]
pub struct Replica {
    rx: mpsc::Receiver<Item>,
    /// Commands of a received batch not yet handed out (kept here: `recv` stays
    /// cancel-safe).
    batch: VecDeque<crate::event::Command>,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
    position: Option<ResumePoint>,
    /// `(replid, offset)` of a full sync whose RDB has not ended yet.
    pending_full: Option<(crate::event::ReplId, u64)>,
}

impl std::fmt::Debug for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Item::Event(e) => e.fmt(f),
            Item::Commands(c) => write!(f, "Commands({})", c.len()),
            Item::Progress { offset, db } => write!(f, "Progress({offset}, db {db})"),
            Item::Fatal(e) => write!(f, "Fatal({e})"),
        }
    }
}

impl Replica {
    /// Connects, handshakes and waits until the server answered `PSYNC` (`+FULLRESYNC` or
    /// `+CONTINUE`); from then on the task reconnects by itself. Errors of this first
    /// attempt are returned (a server that is still loading is retried with the backoff).
    ///
    /// Must be called from within a tokio runtime.
    pub async fn connect(config: Config) -> Result<Replica, Error> {
        let tls = if config.url.tls() {
            let client = config.tls.client_config()?;
            let name = config.tls.server_name_for(config.url.host())?;
            Some((TlsConnector::from(client), name))
        } else {
            None
        };
        if let RdbSpool::ToDir(dir) = &config.spool {
            if !dir.is_dir() {
                return Err(Error::InvalidConfig {
                    reason: format!("spool directory {} does not exist", dir.display()),
                });
            }
        }
        let (tx, rx) = mpsc::channel(config.channel_capacity);
        let (ready_tx, ready_rx) = oneshot::channel();
        let shared = Arc::new(Shared::default());
        let position = config.resume;
        if let Some(p) = position {
            shared.source_offset.store(p.offset, Ordering::Relaxed);
        }
        let driver = Driver {
            resume: config.resume,
            cfg: config,
            tls,
            tx,
            shared: shared.clone(),
            ready: Some(ready_tx),
            rdb_incomplete: false,
            attempt: 0,
            full_attempts: 0,
            rdb: None,
            pending: VecDeque::new(),
        };
        let task = tokio::spawn(driver.run());
        match ready_rx.await {
            Ok(Ok(())) => Ok(Replica {
                rx,
                batch: VecDeque::new(),
                shared,
                task,
                position,
                pending_full: None,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Io {
                phase: Phase::Connect,
                source: io::Error::other("the replication task ended unexpectedly"),
            }),
        }
    }

    /// The next event; `Some(Err(_))` once when the replica gives up (a fatal error or the
    /// reconnect policy exhausted), then `None`.
    ///
    /// Cancel-safe: dropping the future (in `tokio::select!`, or on a timeout) loses no
    /// event; the next call returns it.
    pub async fn recv(&mut self) -> Option<Result<Event, Error>> {
        loop {
            if let Some(ev) = self.next_batched() {
                return Some(Ok(ev));
            }
            match self.rx.recv().await? {
                Item::Commands(c) => self.batch = c.into(),
                Item::Progress { offset, db } => self.advance(offset, db),
                Item::Fatal(e) => return Some(Err(e)),
                Item::Event(ev) => {
                    self.track(&ev);
                    return Some(Ok(ev));
                }
            }
        }
    }

    /// The next event if one is ready now, without waiting: `None` when nothing is
    /// buffered (or the replica has ended; [`Replica::recv`] then says which). A consumer
    /// that batches its writes uses it to close a batch when the stream pauses.
    pub fn try_recv(&mut self) -> Option<Result<Event, Error>> {
        loop {
            if let Some(ev) = self.next_batched() {
                return Some(Ok(ev));
            }
            match self.rx.try_recv().ok()? {
                Item::Commands(c) => self.batch = c.into(),
                Item::Progress { offset, db } => self.advance(offset, db),
                Item::Fatal(e) => return Some(Err(e)),
                Item::Event(ev) => {
                    self.track(&ev);
                    return Some(Ok(ev));
                }
            }
        }
    }

    /// The next command of the batch being handed out.
    fn next_batched(&mut self) -> Option<Event> {
        let c = self.batch.pop_front()?;
        self.advance(c.end_offset, c.db);
        Some(Event::Command(c))
    }

    fn advance(&mut self, offset: u64, db: u32) {
        if let Some(p) = &mut self.position {
            p.offset = offset;
            p.db = db;
        }
    }

    fn track(&mut self, ev: &Event) {
        match ev {
            Event::FullResync { replid, offset, .. } => {
                self.position = None;
                self.pending_full = Some((*replid, *offset));
            }
            Event::RdbEnd { .. } => {
                if let Some((replid, offset)) = self.pending_full.take() {
                    self.position = Some(ResumePoint {
                        replid,
                        offset,
                        db: 0,
                    });
                }
            }
            Event::PartialResync { replid, offset, .. } => {
                let db = self.position.map_or(0, |p| p.db);
                self.position = Some(ResumePoint {
                    replid: *replid,
                    offset: *offset,
                    db,
                });
            }
            Event::Command(c) => self.advance(c.end_offset, c.db),
            _ => {}
        }
    }

    /// The position after the last event received by the consumer: save it together with
    /// the applied data and pass it to [`Config::resume_from`] to continue later with a
    /// partial resync. `None` during a full sync (before [`Event::RdbEnd`]).
    pub fn position(&self) -> Option<ResumePoint> {
        self.position
    }

    /// Source offset (decoded by the task) against processed offset (received by the
    /// consumer).
    ///
    /// During a full sync (no position yet) both are the offset the stream will resume from
    /// after the RDB: RDB bytes are not part of the replication offset.
    pub fn lag(&self) -> Lag {
        let processed = match (self.position, self.pending_full) {
            (Some(p), _) => p.offset,
            (None, Some((_, offset))) => offset,
            (None, None) => 0,
        };
        Lag {
            source_offset: self
                .shared
                .source_offset
                .load(Ordering::Relaxed)
                .max(processed),
            processed_offset: processed,
        }
    }

    /// Stops the task and closes the connection.
    pub fn close(self) {
        // Drop does it.
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.task.abort();
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

type Writer = WriteHalf<Box<dyn Io>>;

/// Why a link ended without an error.
enum Stop {
    /// The consumer dropped the [`Replica`].
    ConsumerGone,
}

struct Driver {
    cfg: Config,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    tx: mpsc::Sender<Item>,
    shared: Arc<Shared>,
    /// Not yet synced once: where [`Replica::connect`] waits.
    ready: Option<oneshot::Sender<Result<(), Error>>>,
    resume: Option<ResumePoint>,
    /// A full sync started whose RDB did not end.
    rdb_incomplete: bool,
    /// Consecutive failed attempts (a full sync counts as failed until its RDB ended).
    attempt: u32,
    /// Full syncs started (`+FULLRESYNC`) since the last one whose RDB ended.
    full_attempts: u32,
    /// The RDB decoder of the current full sync and its unconsumed input.
    rdb: Option<(rdb_parser::RdbDecoder, BytesMut)>,
    /// Disconnect notices not yet delivered (the channel was full): they go out before
    /// anything else.
    pending: VecDeque<Item>,
}

impl Driver {
    async fn run(mut self) {
        loop {
            let err = match self.run_link().await {
                Ok(Stop::ConsumerGone) => return,
                Err(e) => e,
            };
            let connecting = self.ready.is_some();
            if connecting && !matches!(err, Error::NotReady { .. }) {
                self.fail_connect(err);
                return;
            }
            if !err.is_retryable() {
                self.send_final(Item::Fatal(err)).await;
                return;
            }
            if self.rdb_incomplete && self.full_attempts >= self.cfg.max_full_sync_attempts {
                let e = self.full_sync_failing(err).await;
                self.send_final(Item::Fatal(e)).await;
                return;
            }
            self.attempt += 1;
            if !self.cfg.backoff.allows(self.attempt) {
                let e = Error::ReconnectExhausted {
                    attempts: self.attempt - 1,
                    last: Box::new(err),
                };
                if connecting {
                    self.fail_connect(e);
                } else {
                    self.send_final(Item::Fatal(e)).await;
                }
                return;
            }
            let retry_in = self.cfg.backoff.delay(self.attempt);
            if !connecting {
                let ev = Event::Disconnected {
                    error: err,
                    attempt: self.attempt,
                    retry_in,
                };
                // Reconnect at once even when the consumer is behind: once PSYNC succeeds the
                // server keeps the stream in our output buffer (256 MB by default) instead of
                // the backlog (1 MB). The notice goes out before the new link's events.
                match self.tx.try_send(Item::Event(ev)) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                    Err(mpsc::error::TrySendError::Full(item)) => {
                        // Consecutive notices: the latest (highest attempt) is enough.
                        if matches!(
                            self.pending.back(),
                            Some(Item::Event(Event::Disconnected { .. }))
                        ) {
                            self.pending.pop_back();
                        }
                        self.pending.push_back(item);
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(retry_in) => {}
                _ = self.tx.closed() => return,
            }
        }
    }

    /// The last item of the task, after any pending notices.
    async fn send_final(&mut self, item: Item) {
        for older in std::mem::take(&mut self.pending) {
            if self.tx.send(older).await.is_err() {
                return;
            }
        }
        let _ = self.tx.send(item).await;
    }

    fn fail_connect(&mut self, e: Error) {
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(Err(e));
        }
    }

    async fn open(&self) -> Result<Box<dyn Io>, Error> {
        let url = &self.cfg.url;
        let addr = url.addr();
        let timeout = self.cfg.connect_timeout;
        let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "timed out");
        let tcp = tokio::time::timeout(timeout, TcpStream::connect((url.host(), url.port())))
            .await
            .map_err(|_| Error::Connect {
                addr: addr.clone(),
                source: timed_out(),
            })?
            .map_err(|source| Error::Connect {
                addr: addr.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => Ok(Box::new(tcp)),
            Some((connector, name)) => {
                let tls = tokio::time::timeout(timeout, connector.connect(name.clone(), tcp))
                    .await
                    .map_err(|_| Error::TlsHandshake {
                        addr: addr.clone(),
                        source: timed_out(),
                    })?
                    .map_err(|source| Error::TlsHandshake { addr, source })?;
                Ok(Box::new(tls))
            }
        }
    }

    async fn run_link(&mut self) -> Result<Stop, Error> {
        let io = self.open().await?;
        let (mut rd, mut wr) = tokio::io::split(io);
        let mut session = Session::new(self.cfg.session.clone(), self.resume, Instant::now());
        let mut spool: Option<Spool> = None;
        loop {
            flush(&mut session, &mut wr).await?;
            // Deliver everything decoded, even when decoding then failed.
            if let Some(stop) = self
                .deliver_decoded(&mut session, &mut wr, &mut spool, false)
                .await?
            {
                return Ok(stop);
            }
            if let Some(p) = session.resume_point() {
                self.resume = Some(p);
                self.shared.source_offset.store(p.offset, Ordering::Relaxed);
            }
            flush(&mut session, &mut wr).await?;
            let deadline = session.poll_timeout();
            let wake = {
                let buf = session.input_buffer(self.cfg.read_chunk);
                tokio::select! {
                    r = rd.read_buf(buf) => Wake::Read(r),
                    _ = sleep_until(deadline) => Wake::Timer,
                    _ = self.tx.closed() => Wake::Closed,
                }
            };
            let now = Instant::now();
            let result = match wake {
                Wake::Closed => return Ok(Stop::ConsumerGone),
                Wake::Timer => session.handle_timeout(now),
                Wake::Read(Ok(0)) => Err(Error::Closed {
                    phase: session.phase(),
                }),
                Wake::Read(Ok(_)) => session.process(now),
                Wake::Read(Err(source)) => Err(Error::Io {
                    phase: session.phase(),
                    source,
                }),
            };
            if let Err(e) = result {
                // Events decoded before the failure still go out (their offsets are in the
                // resume point).
                if let Some(stop) = self
                    .deliver_decoded(&mut session, &mut wr, &mut spool, true)
                    .await
                    .unwrap_or(None)
                {
                    return Ok(stop);
                }
                if let Some(p) = session.resume_point() {
                    self.resume = Some(p);
                }
                return Err(e);
            }
        }
    }

    /// Hands every event the session decoded to the consumer, in order; consecutive
    /// commands go as batches of at most [`BATCH_COMMANDS`] commands / [`BATCH_BYTES`].
    /// `keep_going`: the link already failed; an error delivering one item does not keep
    /// the next ones from the consumer.
    async fn deliver_decoded(
        &mut self,
        session: &mut Session,
        wr: &mut Writer,
        spool: &mut Option<Spool>,
        keep_going: bool,
    ) -> Result<Option<Stop>, Error> {
        let step = |r: Result<Option<Stop>, Error>| match r {
            Err(_) if keep_going => Ok(None),
            r => r,
        };
        let mut batch = Vec::new();
        let mut bytes = 0u64;
        while let Some(ev) = session.poll_event() {
            match ev {
                SessionEvent::Command(c) => {
                    bytes += c.wire_len;
                    batch.push(c);
                    if batch.len() >= BATCH_COMMANDS || bytes >= BATCH_BYTES {
                        bytes = 0;
                        // A full batch: the next one is likely full too, so it is sized
                        // once instead of growing (and reallocating) from empty.
                        let next = Vec::with_capacity(batch.len());
                        let item = Item::Commands(std::mem::replace(&mut batch, next));
                        if let Some(stop) = step(self.deliver(item, session, wr).await)? {
                            return Ok(Some(stop));
                        }
                    }
                }
                other => {
                    if !batch.is_empty() {
                        bytes = 0;
                        let item = Item::Commands(std::mem::take(&mut batch));
                        if let Some(stop) = step(self.deliver(item, session, wr).await)? {
                            return Ok(Some(stop));
                        }
                    }
                    if let Some(stop) = step(self.on_event(other, session, wr, spool).await)? {
                        return Ok(Some(stop));
                    }
                }
            }
        }
        if batch.is_empty() {
            return Ok(None);
        }
        step(self.deliver(Item::Commands(batch), session, wr).await)
    }

    async fn on_event(
        &mut self,
        ev: SessionEvent,
        session: &mut Session,
        wr: &mut Writer,
        spool: &mut Option<Spool>,
    ) -> Result<Option<Stop>, Error> {
        let item = match ev {
            SessionEvent::FullResync {
                replid,
                offset,
                reason,
            } => {
                let reason = match reason {
                    FullResyncReason::Initial if self.rdb_incomplete => {
                        FullResyncReason::Interrupted
                    }
                    r => r,
                };
                self.synced();
                self.full_attempts += 1;
                self.resume = None;
                self.rdb_incomplete = true;
                self.shared.source_offset.store(offset, Ordering::Relaxed);
                Item::Event(Event::FullResync {
                    replid,
                    offset,
                    reason,
                })
            }
            SessionEvent::PartialResync {
                replid,
                offset,
                replid_changed,
            } => {
                self.synced();
                self.attempt = 0;
                Item::Event(Event::PartialResync {
                    replid,
                    offset,
                    replid_changed,
                })
            }
            SessionEvent::RdbStart(t) => {
                if let RdbSpool::ToDir(dir) = &self.cfg.spool {
                    *spool = Some(Spool::create(dir)?);
                }
                let opts = match &self.cfg.rdb_mode {
                    RdbMode::Raw => None,
                    RdbMode::Decode => Some(rdb_parser::Options::default()),
                    RdbMode::DecodeWith(o) => Some(o.clone()),
                };
                self.rdb = opts.map(|o| (rdb_parser::RdbDecoder::new(o), BytesMut::new()));
                Item::Event(Event::RdbStart(t))
            }
            SessionEvent::RdbChunk(chunk) => match spool {
                Some(s) => {
                    s.file
                        .write_all(&chunk)
                        .await
                        .map_err(|source| Error::Spool { source })?;
                    return Ok(None);
                }
                None => match self.rdb_item(chunk)? {
                    Some(item) => item,
                    None => return Ok(None),
                },
            },
            SessionEvent::RdbEnd { len } => {
                if let Some(s) = spool.take() {
                    if let Some(stop) = self.replay(s, session, wr).await? {
                        return Ok(Some(stop));
                    }
                }
                if let Some((decoder, rest)) = self.rdb.take() {
                    decoder.finish().map_err(|source| Error::Rdb {
                        offset: decoder.offset(),
                        source,
                    })?;
                    if !rest.is_empty() {
                        return Err(Error::Rdb {
                            offset: decoder.offset(),
                            source: rdb_parser::Error::Io(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!("{} bytes after the RDB EOF opcode", rest.len()),
                            )),
                        });
                    }
                }
                self.rdb_incomplete = false;
                self.full_attempts = 0;
                self.attempt = 0;
                Item::Event(Event::RdbEnd { len })
            }
            SessionEvent::Command(c) => Item::Event(Event::Command(c)),
            SessionEvent::Progress { offset, db } => Item::Progress { offset, db },
        };
        self.deliver(item, session, wr).await
    }

    /// What the consumer gets for a piece of RDB: the raw bytes, or the events the decoder
    /// could complete with it (`None`: none yet).
    fn rdb_item(&mut self, chunk: bytes::Bytes) -> Result<Option<Item>, Error> {
        let Some((decoder, buf)) = &mut self.rdb else {
            return Ok(Some(Item::Event(Event::RdbChunk(chunk))));
        };
        if buf.is_empty() {
            // Usually the decoder consumed everything: reuse the chunk's allocation.
            *buf = BytesMut::from(chunk);
        } else {
            buf.extend_from_slice(&chunk);
        }
        let mut batch = Vec::new();
        loop {
            match decoder.decode(buf) {
                Ok(Some(ev)) => batch.push(ev),
                Ok(None) => break,
                Err(source) => {
                    return Err(Error::Rdb {
                        offset: decoder.offset(),
                        source,
                    })
                }
            }
        }
        Ok((!batch.is_empty()).then_some(Item::Event(Event::Rdb(batch))))
    }

    /// The server answered `PSYNC`: [`Replica::connect`] returns. Failed attempts are
    /// counted on until the stream is reached (a partial resync, or the end of the RDB).
    fn synced(&mut self) {
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(Ok(()));
        }
    }

    /// The error that ends a run of failed full syncs, with what the source says about it.
    async fn full_sync_failing(&self, last: Error) -> Error {
        let facts = match tokio::time::timeout(PROBE_TIMEOUT, self.probe()).await {
            Ok(Ok(facts)) => facts,
            Ok(Err(e)) => SourceFacts {
                probe_error: Some(e.to_string()),
                ..SourceFacts::default()
            },
            Err(_) => SourceFacts {
                probe_error: Some(format!("no answer within {PROBE_TIMEOUT:?}")),
                ..SourceFacts::default()
            },
        };
        let diagnosis = diagnose(&facts, self.cfg.session.replconf_version.as_deref(), &last);
        Error::FullSyncFailing {
            addr: self.cfg.url.addr(),
            attempts: self.full_attempts,
            last: Box::new(last),
            diagnosis,
        }
    }

    /// Reads `INFO` and the settings behind failing full syncs on an ordinary connection.
    async fn probe(&self) -> Result<SourceFacts, Error> {
        let io = self.open().await?;
        let (mut rd, mut wr) = tokio::io::split(io);
        let cfg = &self.cfg.session;
        let mut out = BytesMut::new();
        let mut replies = 0;
        if let Some(pass) = &cfg.password {
            let auth = resp_codec::Command::new("AUTH");
            match &cfg.username {
                Some(user) => auth.arg(user).arg(pass.expose()),
                None => auth.arg(pass.expose()),
            }
            .encode(&mut out);
            replies += 1;
        }
        let skip = replies;
        resp_codec::Command::new("INFO").encode(&mut out);
        // One name per CONFIG GET: older servers take a single pattern.
        for name in PROBED_SETTINGS {
            resp_codec::Command::new("CONFIG")
                .arg("GET")
                .arg(name)
                .encode(&mut out);
        }
        replies += 1 + PROBED_SETTINGS.len();
        let phase = Phase::Handshake;
        wr.write_all(&out)
            .await
            .map_err(|source| Error::Io { phase, source })?;
        let mut decoder = resp_codec::FrameDecoder::default();
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        while frames.len() < replies {
            match decoder.decode(&mut buf) {
                Ok(Some((frame, _))) => frames.push(frame),
                Ok(None) => {
                    if rd
                        .read_buf(&mut buf)
                        .await
                        .map_err(|source| Error::Io { phase, source })?
                        == 0
                    {
                        return Err(Error::Closed { phase });
                    }
                }
                Err(e) => {
                    return Err(Error::Protocol {
                        phase,
                        offset: decoder.position(),
                        reason: e.to_string(),
                    })
                }
            }
        }
        let text = |f: &resp_codec::Frame| {
            f.as_bytes()
                .map(|b| String::from_utf8_lossy(b).into_owned())
        };
        let mut facts = SourceFacts::default();
        let info = &frames[skip];
        if info.is_error() {
            facts.probe_error = Some(format!("INFO: {}", text(info).unwrap_or_default()));
        } else {
            facts.info = text(info);
        }
        for frame in &frames[skip + 1..] {
            if let Some(pairs) = frame.as_slice() {
                for pair in pairs.chunks_exact(2) {
                    if let (Some(k), Some(v)) = (text(&pair[0]), text(&pair[1])) {
                        facts.config.push((k, v));
                    }
                }
            }
        }
        Ok(facts)
    }

    /// Sends one item to the consumer; while the channel is full, keeps the session's timers
    /// (ACKs) running and tells it that reading is paused.
    async fn deliver(
        &mut self,
        item: Item,
        session: &mut Session,
        wr: &mut Writer,
    ) -> Result<Option<Stop>, Error> {
        while let Some(older) = self.pending.pop_front() {
            if let Some(stop) = self.deliver_one(older, session, wr).await? {
                return Ok(Some(stop));
            }
        }
        self.deliver_one(item, session, wr).await
    }

    async fn deliver_one(
        &mut self,
        item: Item,
        session: &mut Session,
        wr: &mut Writer,
    ) -> Result<Option<Stop>, Error> {
        let item = match self.tx.try_send(item) {
            Ok(()) => return Ok(None),
            Err(mpsc::error::TrySendError::Closed(_)) => return Ok(Some(Stop::ConsumerGone)),
            Err(mpsc::error::TrySendError::Full(item)) => item,
        };
        let was_paused = session.reading_paused();
        session.set_reading_paused(true, Instant::now());
        let result = loop {
            let deadline = session.poll_timeout();
            tokio::select! {
                permit = self.tx.reserve() => match permit {
                    Ok(p) => { p.send(item); break Ok(None); }
                    Err(_) => break Ok(Some(Stop::ConsumerGone)),
                },
                _ = sleep_until(deadline) => {
                    // A failed session keeps its queued events; it just stops acking.
                    if session.handle_timeout(Instant::now()).is_ok() {
                        flush(session, wr).await?;
                    }
                }
            }
        };
        if !was_paused {
            session.set_reading_paused(false, Instant::now());
        }
        result
    }

    /// Hands a spooled RDB to the consumer, the server link paused meanwhile (the server
    /// buffers the stream; ACKs keep going).
    async fn replay(
        &mut self,
        mut s: Spool,
        session: &mut Session,
        wr: &mut Writer,
    ) -> Result<Option<Stop>, Error> {
        let spool_err = |source| Error::Spool { source };
        s.file.flush().await.map_err(spool_err)?;
        s.file
            .seek(io::SeekFrom::Start(0))
            .await
            .map_err(spool_err)?;
        session.set_reading_paused(true, Instant::now());
        let chunk = self.cfg.read_chunk.max(1 << 20);
        loop {
            let mut buf = BytesMut::with_capacity(chunk);
            let n = s.file.read_buf(&mut buf).await.map_err(spool_err)?;
            if n == 0 {
                break;
            }
            if session.poll_timeout().is_some_and(|t| t <= Instant::now())
                && session.handle_timeout(Instant::now()).is_ok()
            {
                flush(session, wr).await?;
            }
            if let Some(item) = self.rdb_item(buf.freeze())? {
                if let Some(stop) = self.deliver(item, session, wr).await? {
                    return Ok(Some(stop));
                }
            }
        }
        session.set_reading_paused(false, Instant::now());
        Ok(None)
    }
}

enum Wake {
    Read(io::Result<usize>),
    Timer,
    Closed,
}

struct Spool {
    file: tokio::fs::File,
}

impl Spool {
    fn create(dir: &std::path::Path) -> Result<Spool, Error> {
        let file = tempfile::tempfile_in(dir).map_err(|source| Error::Spool { source })?;
        Ok(Spool {
            file: tokio::fs::File::from_std(file),
        })
    }
}

async fn flush(session: &mut Session, wr: &mut Writer) -> Result<(), Error> {
    while let Some(b) = session.poll_transmit() {
        let phase = session.phase();
        wr.write_all(&b)
            .await
            .map_err(|source| Error::Io { phase, source })?;
    }
    Ok(())
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
