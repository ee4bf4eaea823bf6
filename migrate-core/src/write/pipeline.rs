//! The sans-IO writer core: commands in, bytes out; replies in, outcomes out.

use std::collections::VecDeque;
use std::mem;

use bytes::{Buf, Bytes, BytesMut};
use resp_codec::Frame;

use crate::error::Error;
use crate::write::output::Output;
use crate::write::{Outcome, Resolved, ServerError, Tag, WriterOptions};

/// Reply text given to the commands of a transaction whose `EXEC` answered null.
const NULL_EXEC: &str = "EXECABORT transaction aborted: EXEC answered null";

/// Commands that would change the connection's state behind the pipeline's back, or whose
/// replies do not come one per command.
const RESERVED: &[&str] = &[
    "MULTI",
    "EXEC",
    "DISCARD",
    "SELECT",
    "WATCH",
    "UNWATCH",
    "RESET",
    "QUIT",
    "HELLO",
    "MONITOR",
    "SUBSCRIBE",
    "PSUBSCRIBE",
    "SSUBSCRIBE",
    "SYNC",
    "PSYNC",
];

/// Longest command name kept for a compact command's report.
const MAX_REPORTED_NAME: usize = 64;

/// A caller's command in flight: a small fixed-size record. What a report needs about it
/// (its [`Tag`]) is kept apart and read only when the command did not apply: the tags of
/// commands given with one in `Pipeline::tags`, the name and key bytes of compact commands
/// ([`Pipeline::push_compact`]) in `Pipeline::details`, both in acceptance order (commands
/// are resolved in that order).
#[derive(Debug, Clone, Copy)]
struct Rec {
    seq: u64,
    db: Option<u32>,
    kind: RecKind,
}

#[derive(Debug, Clone, Copy)]
enum RecKind {
    /// Its tag is the next in `tags`.
    Tagged,
    /// Its name, then its key (when it has one), are the next bytes of `details`.
    Compact { name_len: u8, key_len: Option<u32> },
}

/// One item of a transaction, in queueing order.
#[derive(Debug)]
enum TxItem {
    /// A `SELECT` the pipeline queued inside the transaction.
    Select(u32),
    /// A caller's command.
    Command(Rec),
}

/// The transaction being built on the send side.
#[derive(Debug, Default)]
struct SendTx {
    /// `MULTI` is emitted with the first command, after any `SELECT` that command needs.
    multi_sent: bool,
    items: Vec<TxItem>,
    /// A `SELECT` was queued inside: the db after `EXEC`/`DISCARD` depends on its outcome.
    changed_db: bool,
}

/// The reply expected next, in sending order.
#[derive(Debug)]
enum Expect {
    /// `+OK` to an inserted `SELECT`.
    Select { db: u32 },
    /// Any reply to a caller's command outside a transaction.
    Command { rec: Rec, bytes: usize, end: u64 },
    /// `+OK` to `MULTI`.
    Multi,
    /// `+QUEUED` (or a queueing error) to a command inside a transaction. `bytes` is 0 for
    /// an inserted `SELECT`, which does not count in the window.
    Queued { user: bool, bytes: usize },
    /// `EXEC`'s array (or `-EXECABORT`, or null); `end` is the stream offset after `EXEC`.
    Exec { items: Vec<TxItem>, end: u64 },
    /// `+OK` to `DISCARD`.
    Discard { items: Vec<TxItem> },
}

/// The writer's protocol state machine, without I/O.
///
/// Give it commands ([`push`](Self::push), [`push_bytes`](Self::push_bytes), with
/// [`multi`](Self::multi) / [`exec`](Self::exec) / [`discard`](Self::discard) around
/// transactions); send the bytes [`transmit`](Self::transmit) returns and report how many went
/// out with [`advance_transmit`](Self::advance_transmit); feed every reply frame to
/// [`handle_reply`](Self::handle_reply); collect [`Outcome`]s with
/// [`poll_outcome`](Self::poll_outcome). [`Writer`](crate::Writer) is the tokio driver doing
/// exactly this.
///
/// - **db tracking**: each command runs in its [`Tag::db`]; a `SELECT` is inserted when the
///   connection is elsewhere (its reply is checked, never reported as an outcome). A refused
///   `SELECT` stops the pipeline ([`Error::SelectRefused`]).
/// - **transactions**: `MULTI` is sent lazily with the first command (an empty transaction
///   sends nothing); each queued command's `+QUEUED` is checked; `EXEC`'s array is matched
///   element by element, so an error inside it fails only its own command; `-EXECABORT` and a
///   null `EXEC` fail every command of the transaction.
/// - **window**: [`has_room`](Self::has_room) turns false at
///   [`WriterOptions::max_in_flight`] commands or [`WriterOptions::max_in_flight_bytes`] bytes
///   awaiting replies; the pipeline itself never refuses a command for lack of room.
/// - **stopping**: a reply showing the target refuses all writes (`-OOM`, `-READONLY`,
///   `-MISCONF`, `-NOAUTH`, `-LOADING`) is reported as that command's
///   [`Failed`](Outcome::Failed) outcome, then new commands are refused with
///   [`Error::OutOfMemory`] / [`Error::TargetRefusesWrites`] while replies to those in flight
///   are still processed (an open transaction is discarded). A reply out of step with the
///   commands ([`Error::UnexpectedReply`]) or a refused `SELECT`/`MULTI` breaks the pipeline
///   like a lost connection ([`abort`](Self::abort)).
///
/// Every accepted command gets exactly one outcome, in acceptance order.
///
/// ```
/// use migrate_core::{Outcome, Pipeline, Tag, WriterOptions};
/// use resp_codec::Frame;
///
/// let mut p = Pipeline::new(WriterOptions::default());
/// p.push(Tag::new(Some(1), "SET", 10).with_key("a"), &["SET", "a", "1"])?;
/// p.push(Tag::new(Some(1), "INCR", 11).with_key("a"), &["INCR", "a"])?;
///
/// let mut wire = Vec::new();
/// while let Some(bytes) = p.transmit() {
///     wire.extend_from_slice(bytes);
///     let n = bytes.len();
///     p.advance_transmit(n);
/// }
/// assert!(wire.starts_with(b"*2\r\n$6\r\nSELECT\r\n$1\r\n1\r\n*3\r\n$3\r\nSET"));
///
/// p.handle_reply(Frame::simple("OK"))?; // SELECT 1
/// p.handle_reply(Frame::simple("OK"))?; // SET
/// p.handle_reply(Frame::SimpleError("ERR value is not an integer".into()))?; // INCR
/// assert!(matches!(p.poll_outcome(), Some(Outcome::Applied(t)) if t.seq == 10));
/// assert!(matches!(p.poll_outcome(), Some(Outcome::Failed { tag, .. }) if tag.seq == 11));
/// assert!(p.is_idle());
/// # Ok::<(), migrate_core::Error>(())
/// ```
#[derive(Debug)]
pub struct Pipeline {
    options: WriterOptions,
    output: Output,
    expect: VecDeque<Expect>,
    /// The db the connection is in once everything queued so far has run (`None`: unknown).
    db: Option<u32>,
    tx: Option<SendTx>,
    /// Queueing results of the transaction whose replies are being read (`None` = QUEUED).
    rx_queued: Vec<Option<ServerError>>,
    /// The item list of the last transaction resolved, empty, kept for the next one (a batch
    /// of a thousand commands would otherwise grow a new one, reallocating ten times).
    spare_items: Vec<TxItem>,
    /// Tags of the tagged commands in flight, in acceptance order.
    tags: VecDeque<Tag>,
    /// Name and key bytes of the compact commands in flight, in acceptance order.
    details: BytesMut,
    outcomes: VecDeque<Resolved>,
    in_flight: usize,
    in_flight_bytes: usize,
    unresolved: usize,
    accepted: u64,
    error: Option<Error>,
    broken: bool,
}

impl Pipeline {
    /// A pipeline for a fresh connection, whose db is not assumed (the first command with a
    /// db gets a `SELECT`; see [`assume_db`](Self::assume_db)).
    pub fn new(options: WriterOptions) -> Pipeline {
        Pipeline {
            options,
            output: Output::default(),
            expect: VecDeque::new(),
            db: None,
            tx: None,
            rx_queued: Vec::new(),
            spare_items: Vec::new(),
            tags: VecDeque::new(),
            details: BytesMut::new(),
            outcomes: VecDeque::new(),
            in_flight: 0,
            in_flight_bytes: 0,
            unresolved: 0,
            accepted: 0,
            error: None,
            broken: false,
        }
    }

    /// The options in force.
    pub fn options(&self) -> &WriterOptions {
        &self.options
    }

    /// Tells the pipeline which db the connection is in (`Some(0)` for a connection that never
    /// selected one), sparing a `SELECT`.
    pub fn assume_db(&mut self, db: Option<u32>) {
        self.db = db;
    }

    /// The db the connection will be in once everything queued has run (`None`: unknown).
    pub fn db(&self) -> Option<u32> {
        self.db
    }

    /// Whether the window has room for another command. Check before each
    /// [`push`](Self::push): the pipeline accepts commands regardless.
    pub fn has_room(&self) -> bool {
        self.in_flight < self.options.max_in_flight
            && self.in_flight_bytes < self.options.max_in_flight_bytes
    }

    /// Commands awaiting a reply (or, in a transaction, their `+QUEUED`).
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Encoded bytes of the commands awaiting a reply.
    pub fn in_flight_bytes(&self) -> usize {
        self.in_flight_bytes
    }

    /// Accepted commands without an outcome yet (the open transaction's included).
    pub fn unresolved(&self) -> usize {
        self.unresolved
    }

    /// Commands accepted since the pipeline was made: the `n`-th accepted command is the
    /// `n`-th to be resolved (outcomes come in acceptance order).
    pub fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Replies still expected, internal commands (`SELECT`, `MULTI`, `EXEC`) included.
    pub fn awaiting_replies(&self) -> usize {
        self.expect.len()
    }

    /// `true` when nothing is left to send and no reply is expected.
    pub fn is_idle(&self) -> bool {
        self.expect.is_empty() && self.output.pending() == 0
    }

    /// `true` between [`multi`](Self::multi) and [`exec`](Self::exec) / [`discard`](Self::discard).
    pub fn in_transaction(&self) -> bool {
        self.tx.is_some()
    }

    /// Why the pipeline stopped accepting commands, if it did.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// `true` once the pipeline was [`abort`](Self::abort)ed (or broke on an out-of-step
    /// reply): the connection must be dropped.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Queues a command, copying its arguments into the output buffer.
    ///
    /// # Errors
    /// [`Error::InvalidUse`] for an empty command or one the pipeline manages itself
    /// (`SELECT`, `MULTI`, `EXEC`, `DISCARD`, `WATCH`, `RESET`, `HELLO`, `QUIT`, `CLIENT
    /// REPLY`, subscriptions); [`Error::ArgumentTooLarge`] for an argument above
    /// [`WriterOptions::max_bulk_len`]; the stored error once the pipeline stopped. Nothing is
    /// queued on error.
    pub fn push<A: AsRef<[u8]>>(&mut self, tag: Tag, args: &[A]) -> Result<(), Error> {
        self.check(args, || tag.clone())?;
        self.before_command(tag.db);
        let bytes = self.output.put_command(args);
        let rec = Rec {
            seq: tag.seq,
            db: tag.db,
            kind: RecKind::Tagged,
        };
        self.tags.push_back(tag);
        self.after_command(rec, bytes);
        Ok(())
    }

    /// Queues a command given as [`Bytes`]; arguments of at least
    /// [`WriterOptions::zero_copy_min`] bytes are sent from the caller's buffers without a
    /// copy (a 500 MB value is not held twice). Errors as for [`push`](Self::push).
    pub fn push_bytes(&mut self, tag: Tag, args: &[Bytes]) -> Result<(), Error> {
        self.check(args, || tag.clone())?;
        self.before_command(tag.db);
        let bytes = self
            .output
            .put_command_shared(args, self.options.zero_copy_min);
        let rec = Rec {
            seq: tag.seq,
            db: tag.db,
            kind: RecKind::Tagged,
        };
        self.tags.push_back(tag);
        self.after_command(rec, bytes);
        Ok(())
    }

    /// Queues a command without a [`Tag`]: the hot path of a caller that sends many small
    /// commands (a replication stream). The pipeline keeps a small fixed-size record per
    /// command and a copy of its name and `key`; when it applies, it is only counted (a run
    /// of such commands comes out of [`poll_resolved`](Self::poll_resolved) as one
    /// [`Resolved::Applied`]); when it does not, its [`Outcome`] carries a tag rebuilt from
    /// the record: `db`, the command name (upper case), `key` and `seq`, as
    /// [`push_bytes`](Self::push_bytes) with `Tag::new(db, name, seq).with_key(key)` would.
    /// Arguments are sent as [`push_bytes`](Self::push_bytes) sends them; errors as for
    /// [`push`](Self::push).
    pub fn push_compact(
        &mut self,
        db: Option<u32>,
        seq: u64,
        key: Option<&[u8]>,
        args: &[Bytes],
    ) -> Result<(), Error> {
        let tag = || compact_tag(db, seq, args.first().map_or(&[][..], |a| &a[..]), key);
        self.check(args, tag)?;
        self.before_command(db);
        let bytes = self
            .output
            .put_command_shared(args, self.options.zero_copy_min);
        self.compact_record(
            db,
            seq,
            key,
            args.first().map_or(&[][..], |a| &a[..]),
            bytes,
        );
        Ok(())
    }

    /// [`push_compact`](Self::push_compact) of a `RESTORE` the planner lent
    /// ([`crate::plan::RestoreCmd`]): written straight into the output, its value copied
    /// once (the full sync's hot path). Errors as [`push`](Self::push): the writer failed
    /// earlier, or the payload is longer than the target's `proto-max-bulk-len`.
    pub fn push_compact_restore(
        &mut self,
        seq: u64,
        cmd: &crate::plan::RestoreCmd<'_>,
    ) -> Result<(), Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let (db, key) = (Some(cmd.db()), cmd.key());
        let len = cmd.payload_len().max(key.len());
        if len as u64 > self.options.max_bulk_len {
            return Err(Error::ArgumentTooLarge {
                tag: compact_tag(db, seq, b"RESTORE", Some(key)),
                len,
                max: self.options.max_bulk_len,
            });
        }
        self.before_command(db);
        let bytes = self.output.put_restore(cmd);
        self.compact_record(db, seq, Some(key), b"RESTORE", bytes);
        Ok(())
    }

    /// The record of a command queued without a tag (its name and key copied).
    fn compact_record(
        &mut self,
        db: Option<u32>,
        seq: u64,
        key: Option<&[u8]>,
        name: &[u8],
        bytes: usize,
    ) {
        let name = &name[..name.len().min(MAX_REPORTED_NAME)];
        self.details.extend_from_slice(name);
        let key_len = key.map(|k| {
            // What is copied and what the record says always agree (a key longer than
            // 4 GiB, which no server accepts, would be cut).
            let n = u32::try_from(k.len()).unwrap_or(u32::MAX);
            self.details.extend_from_slice(&k[..n as usize]);
            n
        });
        let rec = Rec {
            seq,
            db,
            kind: RecKind::Compact {
                name_len: name.len() as u8,
                key_len,
            },
        };
        self.after_command(rec, bytes);
    }

    /// Opens a transaction: the following commands are queued between `MULTI` and `EXEC`
    /// and applied atomically. `MULTI` itself is sent with the first command.
    pub fn multi(&mut self) -> Result<(), Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.tx.is_some() {
            return Err(Error::InvalidUse("MULTI inside a transaction"));
        }
        self.tx = Some(SendTx {
            items: mem::take(&mut self.spare_items),
            ..SendTx::default()
        });
        Ok(())
    }

    /// Closes the open transaction with `EXEC`. Its commands' outcomes come from `EXEC`'s
    /// reply. A transaction without commands sends nothing.
    pub fn exec(&mut self) -> Result<(), Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let Some(tx) = self.tx.take() else {
            return Err(Error::InvalidUse("EXEC without MULTI"));
        };
        if tx.multi_sent {
            self.output.put_command(&["EXEC"]);
            let end = self.output.produced();
            self.expect.push_back(Expect::Exec {
                items: tx.items,
                end,
            });
            if tx.changed_db {
                self.db = None;
            }
        }
        Ok(())
    }

    /// Abandons the open transaction with `DISCARD`: its commands are reported
    /// [`Discarded`](Outcome::Discarded).
    pub fn discard(&mut self) -> Result<(), Error> {
        if self.broken {
            return Err(self.stored_error());
        }
        let Some(tx) = self.tx.take() else {
            return Err(Error::InvalidUse("DISCARD without MULTI"));
        };
        if tx.multi_sent {
            self.output.put_command(&["DISCARD"]);
            self.expect.push_back(Expect::Discard { items: tx.items });
            if tx.changed_db {
                self.db = None;
            }
        }
        Ok(())
    }

    /// The next bytes to send, if any.
    pub fn transmit(&self) -> Option<&[u8]> {
        self.output.front()
    }

    /// Reports that the first `n` bytes returned by [`transmit`](Self::transmit) were sent.
    pub fn advance_transmit(&mut self, n: usize) {
        self.output.advance(n);
    }

    /// Bytes queued and not yet sent.
    pub fn pending_output(&self) -> usize {
        self.output.pending()
    }

    /// The next outcome, in acceptance order.
    ///
    /// A command queued with [`push_compact`](Self::push_compact) that applied comes out as
    /// [`Outcome::Applied`] with a tag holding only the `seq` of the last command of its run
    /// (no db, name or key): callers of `push_compact` take outcomes with
    /// [`poll_resolved`](Self::poll_resolved) instead.
    pub fn poll_outcome(&mut self) -> Option<Outcome> {
        match self.outcomes.front_mut()? {
            Resolved::Applied { commands, up_to } if *commands > 1 => {
                *commands -= 1;
                Some(Outcome::Applied(Tag::new(None, Bytes::new(), *up_to)))
            }
            _ => match self.outcomes.pop_front()? {
                Resolved::One(outcome) => Some(outcome),
                Resolved::Applied { up_to, .. } => {
                    Some(Outcome::Applied(Tag::new(None, Bytes::new(), up_to)))
                }
            },
        }
    }

    /// What was resolved next, in acceptance order: a run of applied compact commands as one
    /// [`Resolved::Applied`], anything else as one [`Outcome`].
    pub fn poll_resolved(&mut self) -> Option<Resolved> {
        self.outcomes.pop_front()
    }

    /// Outcomes (or runs of applied compact commands) ready to be taken.
    pub fn ready_outcomes(&self) -> usize {
        self.outcomes.len()
    }

    /// The connection failed (or was closed): every command without a reply becomes
    /// [`Lost`](Outcome::Lost) (with `maybe_applied` telling whether it had been completely
    /// written, or for a transaction, whether its `EXEC` had), a pending `DISCARD`'s commands
    /// [`Discarded`](Outcome::Discarded); unsent output is dropped and the pipeline refuses
    /// everything from now on with `error` (or the error that stopped it earlier).
    pub fn abort(&mut self, error: Error) {
        if self.broken {
            return;
        }
        self.broken = true;
        let written = self.output.written();
        for exp in mem::take(&mut self.expect) {
            match exp {
                Expect::Command { rec, end, .. } => self.lost(rec, end <= written),
                Expect::Exec { items, end } => {
                    for item in items {
                        if let TxItem::Command(rec) = item {
                            self.lost(rec, end <= written);
                        }
                    }
                }
                Expect::Discard { items } => {
                    for item in items {
                        if let TxItem::Command(rec) = item {
                            self.discarded(rec);
                        }
                    }
                }
                Expect::Select { .. } | Expect::Multi | Expect::Queued { .. } => {}
            }
        }
        if let Some(tx) = self.tx.take() {
            for item in tx.items {
                if let TxItem::Command(rec) = item {
                    self.lost(rec, false);
                }
            }
        }
        self.rx_queued.clear();
        // Every command is resolved: nothing is left of their report details.
        self.tags.clear();
        self.details.clear();
        self.output.clear();
        self.in_flight = 0;
        self.in_flight_bytes = 0;
        self.error.get_or_insert(error);
    }

    /// Processes the next reply frame. RESP3 push frames are ignored, attributes unwrapped.
    ///
    /// # Errors
    /// When the reply breaks the pipeline ([`Error::UnexpectedReply`],
    /// [`Error::SelectRefused`], [`Error::CommandRefused`] for `MULTI`): the pipeline is then
    /// [`abort`](Self::abort)ed with that error. Server errors to the caller's commands are
    /// outcomes, not errors.
    pub fn handle_reply(&mut self, frame: Frame) -> Result<(), Error> {
        if self.broken {
            return Err(self.stored_error());
        }
        let frame = match frame {
            Frame::Push(_) => return Ok(()),
            Frame::Attribute { data, .. } => *data,
            f => f,
        };
        let Some(exp) = self.expect.pop_front() else {
            return Err(self.desync(None, "nothing (no command in flight)", &frame));
        };
        match exp {
            Expect::Select { db } => {
                if is_ok(&frame) {
                    Ok(())
                } else if let Some(reply) = ServerError::from_frame(&frame) {
                    Err(self.broken_by(Error::SelectRefused { db, reply }))
                } else {
                    let cmd = format!("SELECT {db}");
                    self.expect.push_front(Expect::Select { db });
                    Err(self.desync(Some(cmd), "+OK", &frame))
                }
            }
            Expect::Command { rec, bytes, .. } => {
                self.release(bytes);
                match ServerError::from_frame(&frame) {
                    Some(reply) => self.failed(rec, reply),
                    None => self.applied(rec),
                }
                Ok(())
            }
            Expect::Multi => {
                self.rx_queued.clear();
                if is_ok(&frame) {
                    Ok(())
                } else if let Some(reply) = ServerError::from_frame(&frame) {
                    Err(self.broken_by(Error::CommandRefused {
                        addr: String::new(),
                        command: "MULTI",
                        reply,
                    }))
                } else {
                    self.expect.push_front(Expect::Multi);
                    Err(self.desync(Some("MULTI".into()), "+OK", &frame))
                }
            }
            Expect::Queued { user, bytes } => {
                if matches!(&frame, Frame::SimpleString(s) if &s[..] == b"QUEUED") {
                    self.rx_queued.push(None);
                } else if let Some(reply) = ServerError::from_frame(&frame) {
                    self.rx_queued.push(Some(reply));
                } else {
                    self.expect.push_front(Expect::Queued { user, bytes });
                    return Err(self.desync(
                        Some("a command inside MULTI".into()),
                        "+QUEUED or an error",
                        &frame,
                    ));
                }
                if user {
                    self.release(bytes);
                }
                Ok(())
            }
            Expect::Exec { items, end } => self.exec_reply(items, end, frame),
            Expect::Discard { items } => {
                self.rx_queued.clear();
                if !is_ok(&frame) {
                    self.expect.push_front(Expect::Discard { items });
                    return Err(self.desync(Some("DISCARD".into()), "+OK", &frame));
                }
                for item in items {
                    if let TxItem::Command(rec) = item {
                        self.discarded(rec);
                    }
                }
                Ok(())
            }
        }
    }

    /// Whether the next reply may go to [`handle_plain_array`](Self::handle_plain_array)
    /// without losing a check: it answers a caller's command, or the `EXEC` of a
    /// transaction without an inserted `SELECT`.
    pub fn takes_plain_array(&self) -> bool {
        match self.expect.front() {
            Some(Expect::Command { .. }) => true,
            Some(Expect::Exec { items, .. }) => {
                items.iter().all(|i| matches!(i, TxItem::Command(_)))
            }
            _ => false,
        }
    }

    /// Processes the next reply when it is an array of `len` plain results, none of them an
    /// error or an aggregate, consumed by the decoder without building its frames
    /// ([`resp_codec::FrameDecoder::skip_plain_array`]): the same as
    /// [`handle_reply`](Self::handle_reply) with that array (a `SELECT`'s result inside it
    /// taken as `+OK`; check [`takes_plain_array`](Self::takes_plain_array) first). This is
    /// how `EXEC`'s reply to a transaction of writes is read without a frame per command.
    ///
    /// # Errors
    /// As [`handle_reply`](Self::handle_reply).
    pub fn handle_plain_array(&mut self, len: usize) -> Result<(), Error> {
        if self.broken {
            return Err(self.stored_error());
        }
        match self.expect.pop_front() {
            Some(Expect::Command { rec, bytes, .. }) => {
                self.release(bytes);
                self.applied(rec);
                Ok(())
            }
            Some(Expect::Exec { items, end }) => self.exec_plain(items, end, len),
            other => {
                if let Some(exp) = other {
                    self.expect.push_front(exp);
                }
                // Out of step whatever the elements: the general path says so.
                self.handle_reply(Frame::Array(Vec::new()))
            }
        }
    }

    /// `EXEC`'s reply as an array of `len` non-error results.
    fn exec_plain(&mut self, items: Vec<TxItem>, end: u64, len: usize) -> Result<(), Error> {
        let queued = mem::take(&mut self.rx_queued);
        if queued.len() != items.len() || len != queued.iter().filter(|q| q.is_none()).count() {
            let expected = if queued.len() == items.len() {
                "an array with one result per queued command, an error or null"
            } else {
                "EXEC after every queued command was answered"
            };
            self.expect.push_front(Expect::Exec { items, end });
            return Err(self.broken_by(Error::UnexpectedReply {
                command: "EXEC".into(),
                expected,
                found: format!("an array of {len} elements"),
            }));
        }
        let (mut items, mut queued) = (items, queued);
        let mut select_refused = None;
        for (item, q) in items.drain(..).zip(queued.drain(..)) {
            match (item, q) {
                (TxItem::Command(rec), None) => self.applied(rec),
                (TxItem::Command(rec), Some(reply)) => self.failed(rec, reply),
                (TxItem::Select(_), None) => {}
                (TxItem::Select(db), Some(reply)) => {
                    select_refused.get_or_insert(Error::SelectRefused { db, reply });
                }
            }
        }
        self.recycle(items, queued);
        match select_refused {
            Some(e) => Err(self.broken_by(e)),
            None => Ok(()),
        }
    }

    fn exec_reply(&mut self, items: Vec<TxItem>, end: u64, frame: Frame) -> Result<(), Error> {
        let queued = mem::take(&mut self.rx_queued);
        let results = match frame {
            Frame::Array(results)
                if queued.len() == items.len()
                    && results.len() == queued.iter().filter(|q| q.is_none()).count() =>
            {
                results
            }
            Frame::SimpleError(_) | Frame::BlobError(_) | Frame::NullArray | Frame::Null
                if queued.len() == items.len() =>
            {
                let abort =
                    ServerError::from_frame(&frame).unwrap_or_else(|| ServerError::new(NULL_EXEC));
                let mut select_refused = None;
                for (item, q) in items.into_iter().zip(queued) {
                    match item {
                        TxItem::Command(rec) => self.failed(rec, q.unwrap_or(abort.clone())),
                        TxItem::Select(db) => {
                            if let Some(reply) = q {
                                select_refused.get_or_insert(Error::SelectRefused { db, reply });
                            }
                        }
                    }
                }
                return match select_refused {
                    Some(e) => Err(self.broken_by(e)),
                    None => Ok(()),
                };
            }
            other => {
                let expected = if queued.len() == items.len() {
                    "an array with one result per queued command, an error or null"
                } else {
                    "EXEC after every queued command was answered"
                };
                self.expect.push_front(Expect::Exec { items, end });
                return Err(self.desync(Some("EXEC".into()), expected, &other));
            }
        };
        let mut results = results.into_iter();
        let (mut items, mut queued) = (items, queued);
        let mut select_refused = None;
        for (item, q) in items.drain(..).zip(queued.drain(..)) {
            // Queued commands answered in order; a queueing error has no result (such a
            // transaction is normally aborted, but older servers ran the rest).
            let result = match q {
                Some(err) => Err(err),
                None => {
                    let r = results.next().unwrap_or(Frame::Null);
                    match ServerError::from_frame(&r) {
                        Some(err) => Err(err),
                        None => Ok(r),
                    }
                }
            };
            match (item, result) {
                (TxItem::Command(rec), Ok(_)) => self.applied(rec),
                (TxItem::Command(rec), Err(reply)) => self.failed(rec, reply),
                (TxItem::Select(_), Ok(r)) if is_ok(&r) => {}
                (TxItem::Select(db), Ok(r)) => {
                    select_refused.get_or_insert(Error::UnexpectedReply {
                        command: format!("SELECT {db} inside EXEC"),
                        expected: "+OK",
                        found: describe(&r),
                    });
                }
                (TxItem::Select(db), Err(reply)) => {
                    select_refused.get_or_insert(Error::SelectRefused { db, reply });
                }
            }
        }
        self.recycle(items, queued);
        match select_refused {
            Some(e) => Err(self.broken_by(e)),
            None => Ok(()),
        }
    }

    /// Keeps the emptied lists of a resolved transaction for the next one.
    fn recycle(&mut self, items: Vec<TxItem>, queued: Vec<Option<ServerError>>) {
        if items.capacity() > self.spare_items.capacity() {
            self.spare_items = items;
        }
        if self.rx_queued.is_empty() && queued.capacity() > self.rx_queued.capacity() {
            self.rx_queued = queued;
        }
    }

    fn check<A: AsRef<[u8]>>(&self, args: &[A], tag: impl FnOnce() -> Tag) -> Result<(), Error> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let Some(name) = args.first().map(AsRef::as_ref) else {
            return Err(Error::InvalidUse("empty command"));
        };
        if RESERVED
            .iter()
            .any(|r| name.eq_ignore_ascii_case(r.as_bytes()))
            || (name.eq_ignore_ascii_case(b"CLIENT")
                && args
                    .get(1)
                    .is_some_and(|a| a.as_ref().eq_ignore_ascii_case(b"REPLY")))
        {
            return Err(Error::InvalidUse(
                "SELECT, MULTI/EXEC/DISCARD, WATCH, RESET, HELLO, QUIT, CLIENT REPLY and \
                 subscriptions are managed by the writer (use Tag::db and multi/exec)",
            ));
        }
        if let Some(big) = args
            .iter()
            .map(|a| a.as_ref().len())
            .find(|&len| len as u64 > self.options.max_bulk_len)
        {
            return Err(Error::ArgumentTooLarge {
                tag: tag(),
                len: big,
                max: self.options.max_bulk_len,
            });
        }
        Ok(())
    }

    /// Emits the `SELECT` and `MULTI` the next command needs.
    fn before_command(&mut self, db: Option<u32>) {
        if let Some(db) = db.filter(|&db| self.db != Some(db)) {
            let db_text = db.to_string();
            match &mut self.tx {
                Some(tx) if tx.multi_sent => {
                    self.output.put_command(&["SELECT", &db_text]);
                    self.expect.push_back(Expect::Queued {
                        user: false,
                        bytes: 0,
                    });
                    tx.items.push(TxItem::Select(db));
                    tx.changed_db = true;
                }
                _ => {
                    self.output.put_command(&["SELECT", &db_text]);
                    self.expect.push_back(Expect::Select { db });
                }
            }
            self.db = Some(db);
        }
        if let Some(tx) = &mut self.tx {
            if !tx.multi_sent {
                tx.multi_sent = true;
                self.output.put_command(&["MULTI"]);
                self.expect.push_back(Expect::Multi);
            }
        }
    }

    fn after_command(&mut self, rec: Rec, bytes: usize) {
        self.accepted += 1;
        self.in_flight += 1;
        self.in_flight_bytes += bytes;
        self.unresolved += 1;
        match &mut self.tx {
            Some(tx) => {
                tx.items.push(TxItem::Command(rec));
                self.expect.push_back(Expect::Queued { user: true, bytes });
            }
            None => {
                let end = self.output.produced();
                self.expect.push_back(Expect::Command { rec, bytes, end });
            }
        }
    }

    /// The command's tag: taken from `tags`, or rebuilt from `details` (consumed either way:
    /// call once per command, in acceptance order).
    fn take_tag(&mut self, rec: Rec) -> Tag {
        match rec.kind {
            RecKind::Tagged => self
                .tags
                .pop_front()
                .unwrap_or_else(|| Tag::new(rec.db, Bytes::new(), rec.seq)),
            RecKind::Compact { name_len, key_len } => {
                let name_len = usize::from(name_len).min(self.details.len());
                let name = self.details.split_to(name_len);
                let key = key_len.map(|n| {
                    let n = (n as usize).min(self.details.len());
                    self.details.split_to(n)
                });
                compact_tag(rec.db, rec.seq, &name, key.as_deref())
            }
        }
    }

    /// Drops the command's report detail without building its tag.
    fn skip_detail(&mut self, rec: Rec) {
        match rec.kind {
            RecKind::Tagged => {
                self.tags.pop_front();
            }
            RecKind::Compact { name_len, key_len } => {
                let n = usize::from(name_len) + key_len.map_or(0, |k| k as usize);
                self.details.advance(n.min(self.details.len()));
            }
        }
    }

    fn applied(&mut self, rec: Rec) {
        if let RecKind::Tagged = rec.kind {
            let tag = self.take_tag(rec);
            return self.resolve(Outcome::Applied(tag));
        }
        self.skip_detail(rec);
        self.unresolved = self.unresolved.saturating_sub(1);
        if let Some(Resolved::Applied { commands, up_to }) = self.outcomes.back_mut() {
            *commands += 1;
            *up_to = rec.seq;
        } else {
            self.outcomes.push_back(Resolved::Applied {
                commands: 1,
                up_to: rec.seq,
            });
        }
    }

    fn discarded(&mut self, rec: Rec) {
        let tag = self.take_tag(rec);
        self.resolve(Outcome::Discarded(tag));
    }

    fn release(&mut self, bytes: usize) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.in_flight_bytes = self.in_flight_bytes.saturating_sub(bytes);
    }

    fn resolve(&mut self, outcome: Outcome) {
        self.unresolved = self.unresolved.saturating_sub(1);
        self.outcomes.push_back(Resolved::One(outcome));
    }

    fn lost(&mut self, rec: Rec, maybe_applied: bool) {
        let tag = self.take_tag(rec);
        self.resolve(Outcome::Lost { tag, maybe_applied });
    }

    /// A failed command; stops the pipeline when the target refuses all writes.
    fn failed(&mut self, rec: Rec, reply: ServerError) {
        let tag = self.take_tag(rec);
        if self.error.is_none() && reply.refuses_all_writes() {
            let stop = if reply.is_oom() {
                Error::OutOfMemory {
                    tag: tag.clone(),
                    reply: reply.clone(),
                }
            } else {
                Error::TargetRefusesWrites {
                    tag: tag.clone(),
                    reply: reply.clone(),
                }
            };
            self.error = Some(stop);
            // Nothing more will be accepted: close an open transaction so that every
            // accepted command still gets an outcome.
            if self.tx.is_some() {
                let _ = self.discard();
            }
        }
        self.resolve(Outcome::Failed { tag, reply });
    }

    fn broken_by(&mut self, error: Error) -> Error {
        self.abort(error.clone());
        error
    }

    fn desync(&mut self, command: Option<String>, expected: &'static str, found: &Frame) -> Error {
        let command = command.unwrap_or_else(|| "(nothing)".into());
        self.broken_by(Error::UnexpectedReply {
            command,
            expected,
            found: describe(found),
        })
    }

    fn stored_error(&self) -> Error {
        self.error
            .clone()
            .unwrap_or(Error::InvalidUse("the pipeline was aborted"))
    }
}

/// The tag of a compact command, as [`Pipeline::push_compact`] documents it.
fn compact_tag(db: Option<u32>, seq: u64, name: &[u8], key: Option<&[u8]>) -> Tag {
    let tag = Tag::new(db, Bytes::from(name.to_ascii_uppercase()), seq);
    match key {
        Some(k) => tag.with_key(Bytes::copy_from_slice(k)),
        None => tag,
    }
}

fn is_ok(frame: &Frame) -> bool {
    matches!(frame, Frame::SimpleString(s) if &s[..] == b"OK")
}

/// The shape of a frame for error messages: status and error texts (short, from the server),
/// never bulk contents.
fn describe(frame: &Frame) -> String {
    let short = |b: &[u8]| {
        let s = String::from_utf8_lossy(b);
        match s.char_indices().nth(64) {
            Some((cut, _)) => format!("{}...", &s[..cut]),
            None => s.into_owned(),
        }
    };
    match frame {
        Frame::SimpleString(s) => format!("+{}", short(s)),
        Frame::SimpleError(_) | Frame::BlobError(_) => {
            format!(
                "-{}",
                ServerError::from_frame(frame).unwrap_or(ServerError::new(""))
            )
        }
        Frame::Integer(i) => format!("integer {i}"),
        Frame::BulkString(b) => format!("a bulk string of {} bytes", b.len()),
        Frame::Null | Frame::NullBulkString | Frame::NullArray => "null".into(),
        Frame::Array(v) => format!("an array of {} elements", v.len()),
        Frame::Double(_) => "a double".into(),
        Frame::Boolean(_) => "a boolean".into(),
        Frame::VerbatimString { data, .. } => format!("a verbatim string of {} bytes", data.len()),
        Frame::BigNumber(_) => "a big number".into(),
        Frame::Map(v) => format!("a map of {} pairs", v.len()),
        Frame::Set(v) => format!("a set of {} elements", v.len()),
        Frame::Attribute { .. } => "an attribute".into(),
        Frame::Push(v) => format!("a push of {} elements", v.len()),
    }
}

#[cfg(test)]
mod size_tests {
    /// The in-flight record stays small: no `Tag`, no `Bytes` per command.
    #[test]
    fn in_flight_records_are_compact() {
        assert!(std::mem::size_of::<super::Rec>() <= 32);
        assert!(std::mem::size_of::<super::Expect>() <= 48);
    }
}
