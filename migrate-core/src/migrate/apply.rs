//! [`Applier`]: the writer to the target, with every outcome checked and counted.
//!
//! Commands go out pipelined; outcomes come back in order. A key of the full sync is
//! counted as written when the outcome of its last command arrives and none of its commands
//! failed (a [`KeyMark`] rides along with that last command). The incremental phase sends
//! each replicated command with the source offset it ends at as its sequence number, without
//! a [`Tag`] on a standalone target ([`Writer::send_compact`]): the writer counts applied
//! commands in runs ("n applied, up to offset X", [`Resolved::Applied`]) and builds a tag
//! (db, command, key, offset) only for a command that failed, so the highest offset of a
//! run is how far the target has caught up and every failure is still reported with its key.

use std::collections::VecDeque;

use bytes::Bytes;

use super::cluster_sink::ClusterSink;
use super::conn::Stream;
use super::report::{Failure, Lossy, Report, Unsupported};
use super::{Conflict, ErrorPolicy, MigrationError};
use crate::command::first_key;
use crate::{Outcome, Resolved, ServerErrorKind, Tag, Writer};

/// How a full-sync key was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Restore,
    Rewrite,
    Function,
}

/// Rides along with the last command of a key: counted when its outcome arrives.
#[derive(Debug)]
pub(crate) struct KeyMark {
    pub(crate) seq: u64,
    pub(crate) db: u32,
    pub(crate) kind: &'static str,
    pub(crate) method: Method,
    /// The key and what it lost on the way (written as commands to an older target).
    pub(crate) lossy: Option<Box<(Bytes, String)>>,
}

/// Where the applier writes: one pipelined writer (a standalone target), or one per master
/// of a cluster target.
// One per migration: the standalone writer stays inline (its hot path), the cluster boxed.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Sink {
    Single(Writer<Stream>),
    Cluster(Box<ClusterSink>),
}

pub(crate) struct Applier {
    sink: Sink,
    url: String,
    conflict: Conflict,
    policy: ErrorPolicy,
    max_listed: usize,
    seq: u64,
    /// Keys awaiting their last command's outcome, each with where that command is: on a
    /// standalone target its acceptance number in the writer (compared with `resolved`), on
    /// a cluster its tag's `seq`.
    marks: VecDeque<(u64, KeyMark)>,
    /// Commands the standalone writer resolved so far (applied runs and single outcomes).
    resolved: u64,
    /// A command of the key being confirmed failed (or was skipped by conflict).
    key_failed: bool,
    key_busy: bool,
    pub(crate) report: Report,
    /// Highest source offset of an applied replicated command.
    pub(crate) applied_offset: u64,
    /// Commands are replicated ones, tagged with their source offset.
    pub(crate) incremental: bool,
    /// The target's write cap ([`super::Limits::target_max_ops`]).
    pub(crate) target_ops: Option<std::sync::Arc<super::limit::Bucket>>,
    /// What to do with source transactions spanning slots of a cluster target.
    pub(crate) cross_slot: super::CrossSlot,
}

fn target_error(url: &str, source: crate::Error) -> MigrationError {
    MigrationError::Target {
        url: url.to_string(),
        source: Box::new(source),
    }
}

impl Applier {
    pub(crate) fn new(
        sink: Sink,
        url: String,
        conflict: Conflict,
        policy: ErrorPolicy,
        max_listed: usize,
        report: Report,
    ) -> Applier {
        Applier {
            sink,
            url,
            conflict,
            policy,
            max_listed,
            seq: 0,
            marks: VecDeque::new(),
            resolved: 0,
            key_failed: false,
            key_busy: false,
            report,
            applied_offset: 0,
            incremental: false,
            target_ops: None,
            cross_slot: super::CrossSlot::default(),
        }
    }

    /// The next sequence number for a full-sync command.
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// The sequence number [`Applier::next_seq`] returns next.
    pub(crate) fn peek_seq(&self) -> u64 {
        self.seq + 1
    }

    /// Queues a full-sync `RESTORE` the planner lent ([`crate::plan::RestoreCmd`]: written
    /// straight into the writer's output) on a standalone target without a write cap, when
    /// the writer needs no I/O for it ([`Writer::try_push_compact_restore`]): no tag, no
    /// wait. `Ok(false)`: nothing queued (send it with [`Applier::send`] /
    /// [`Applier::send_last`]). A queued key then gets its mark with
    /// [`Applier::mark_last`].
    pub(crate) fn try_send_restore(
        &mut self,
        seq: u64,
        cmd: &crate::plan::RestoreCmd<'_>,
    ) -> Result<bool, MigrationError> {
        if !self.sends_direct() {
            return Ok(false);
        }
        let Sink::Single(w) = &mut self.sink else {
            return Ok(false);
        };
        w.try_push_compact_restore(seq, cmd)
            .map_err(|e| target_error(&self.url, e))
    }

    /// Whether [`Applier::try_send_restore`] can queue at all: a standalone target, no
    /// write cap, no open transaction.
    pub(crate) fn sends_direct(&self) -> bool {
        match &self.sink {
            Sink::Single(w) => self.target_ops.is_none() && !w.pipeline().in_transaction(),
            Sink::Cluster(_) => false,
        }
    }

    /// The mark of a key whose last command was just queued by [`Applier::try_send_restore`].
    pub(crate) fn mark_last(&mut self, mark: KeyMark) {
        if let Sink::Single(w) = &self.sink {
            self.marks.push_back((w.pipeline().accepted(), mark));
        }
    }

    /// Waits for the target's write cap, if one is set.
    async fn throttle(&mut self) -> Result<(), MigrationError> {
        if let Some(b) = self.target_ops.clone() {
            if b.would_wait() {
                // Waiting: what is queued goes out first.
                self.write_queued().await?;
            }
            b.take(1).await;
        }
        Ok(())
    }

    /// Sends one replicated command, in target db `db`, ending at source offset `offset`
    /// (and processes every outcome already known). On a standalone target it goes without
    /// a tag (see the module docs); a cluster target's writer gets one.
    pub(crate) async fn send_command(
        &mut self,
        db: u32,
        offset: u64,
        args: &[Bytes],
    ) -> Result<(), MigrationError> {
        let Sink::Single(_) = &self.sink else {
            let name = args.first().map(report_name).unwrap_or_default();
            let mut tag = Tag::new(Some(db), name, offset);
            if let Some(k) = first_key(args) {
                tag = tag.with_key(k.clone());
            }
            return self.send(tag, args).await;
        };
        if self.try_send_command(db, offset, args)? {
            return Ok(());
        }
        let key = first_key(args).map(|k| &k[..]);
        self.throttle().await?;
        let sent = match &mut self.sink {
            Sink::Single(w) => w
                .send_compact(Some(db), offset, key, args)
                .await
                .map_err(|e| target_error(&self.url, e)),
            Sink::Cluster(_) => Ok(()),
        };
        self.drain_ready()?;
        sent
    }

    /// [`Applier::send_command`] without a future, when nothing needs waiting for: a
    /// standalone target without a write cap whose writer needs no I/O. `Ok(false)`:
    /// nothing was sent (call `send_command`).
    pub(crate) fn try_send_command(
        &mut self,
        db: u32,
        offset: u64,
        args: &[Bytes],
    ) -> Result<bool, MigrationError> {
        let (None, Sink::Single(w)) = (&self.target_ops, &mut self.sink) else {
            return Ok(false);
        };
        let key = first_key(args).map(|k| &k[..]);
        match w.try_push_compact(Some(db), offset, key, args) {
            Ok(false) => Ok(false),
            r => {
                let sent = r.map_err(|e| target_error(&self.url, e));
                self.drain_ready()?;
                sent
            }
        }
    }

    /// Sends one command (and processes every outcome already known).
    pub(crate) async fn send(&mut self, tag: Tag, args: &[Bytes]) -> Result<(), MigrationError> {
        self.throttle().await?;
        let sent = match &mut self.sink {
            // Without the tag: only a command that is not applied gets it back (rebuilt).
            Sink::Single(w) => w
                .send_compact(tag.db, tag.seq, tag.key.as_deref(), args)
                .await
                .map_err(|e| target_error(&self.url, e)),
            Sink::Cluster(c) => {
                if let Some(db) = tag.db.filter(|&d| d >= c.dbs) {
                    return Err(MigrationError::ClusterDbs {
                        url: self.url.clone(),
                        dbs: vec![db],
                        allowed: c.dbs,
                    });
                }
                c.send(tag, args, self.incremental).await
            }
        };
        self.drain_ready()?;
        sent
    }

    /// The cluster target's writer, if the target is a cluster.
    pub(crate) fn cluster(&self) -> Option<&ClusterSink> {
        match &self.sink {
            Sink::Cluster(c) => Some(c),
            Sink::Single(_) => None,
        }
    }

    /// A source transaction or script about to be applied as one unit: on a cluster target
    /// whose slots it spans, counted (and warned about once), or refused under
    /// [`CrossSlot::Refuse`](super::CrossSlot::Refuse).
    pub(crate) async fn atomic_unit(
        &mut self,
        commands: &[crate::command::TargetCommand],
        offset: u64,
    ) -> Result<(), MigrationError> {
        if self.cluster().is_none() {
            return Ok(());
        }
        let slots = super::cluster_sink::slots_of(commands.iter().map(|c| &c.args[..])).len();
        if slots < 2 {
            return Ok(());
        }
        if self.cross_slot == super::CrossSlot::Refuse {
            // What came before it is applied.
            self.flush().await?;
            return Err(MigrationError::CrossSlotRefused { offset, slots });
        }
        if self.report.cross_slot_transactions == 0 {
            let why = "the source has transactions or scripts writing keys in several slots: on the cluster target they are applied command by command, in order, not atomically (counted in cross_slot_transactions; --cross-slot refuse stops instead)";
            tracing::warn!(target: "migrate", "{why}");
            self.report.warnings.push(why.to_string());
        }
        self.report.cross_slot_transactions += 1;
        Ok(())
    }

    /// Copies the cluster writer's counters into the report.
    fn cluster_counts(&mut self) {
        if let Sink::Cluster(c) = &self.sink {
            let s = c.stats;
            let r = &mut self.report;
            r.cross_slot_commands = s.cross_slot;
            r.cross_slot_split = s.split;
            r.cluster_redirects = s.moved + s.ask;
            r.cluster_retries = s.retries;
            r.cluster_resent = s.resent;
            r.cluster_resume_skipped = s.skipped;
        }
    }

    /// Sends the last command of a full-sync key, with its mark.
    pub(crate) async fn send_last(
        &mut self,
        tag: Tag,
        args: &[Bytes],
        mark: KeyMark,
    ) -> Result<(), MigrationError> {
        let at = match &self.sink {
            // The command about to be accepted.
            Sink::Single(w) => w.pipeline().accepted() + 1,
            Sink::Cluster(_) => mark.seq,
        };
        self.marks.push_back((at, mark));
        self.send(tag, args).await
    }

    pub(crate) fn multi(&mut self) -> Result<(), MigrationError> {
        match &mut self.sink {
            Sink::Single(w) => w.multi().map_err(|e| target_error(&self.url, e)),
            Sink::Cluster(c) => {
                c.multi();
                Ok(())
            }
        }
    }

    pub(crate) fn exec(&mut self) -> Result<(), MigrationError> {
        match &mut self.sink {
            Sink::Single(w) => w.exec().map_err(|e| target_error(&self.url, e))?,
            Sink::Cluster(c) => c.exec(),
        }
        self.drain_ready()
    }

    /// Writes what is queued without waiting for replies (the input paused).
    pub(crate) async fn write_queued(&mut self) -> Result<(), MigrationError> {
        let written = match &mut self.sink {
            Sink::Single(w) => w
                .write_queued()
                .await
                .map_err(|e| target_error(&self.url, e)),
            Sink::Cluster(c) => c.write_queued().await,
        };
        self.drain_ready()?;
        written
    }

    /// Waits for every reply and processes the outcomes.
    pub(crate) async fn flush(&mut self) -> Result<(), MigrationError> {
        let flushed = match &mut self.sink {
            Sink::Single(w) => w.flush().await.map_err(|e| target_error(&self.url, e)),
            Sink::Cluster(c) => c.flush().await,
        };
        self.drain_ready()?;
        self.cluster_counts();
        flushed
    }

    /// Whether every command sent has its outcome (and no transaction is open).
    pub(crate) fn is_idle(&self) -> bool {
        match &self.sink {
            Sink::Single(w) => {
                let p = w.pipeline();
                p.is_idle() && !p.in_transaction()
            }
            Sink::Cluster(c) => c.is_idle(),
        }
    }

    /// Whether a transaction (a checkpointed batch) is open.
    pub(crate) fn in_transaction(&self) -> bool {
        match &self.sink {
            Sink::Single(w) => w.pipeline().in_transaction(),
            Sink::Cluster(c) => c.in_transaction(),
        }
    }

    fn next_ready(&mut self) -> Option<Resolved> {
        match &mut self.sink {
            Sink::Single(w) => w.try_next_resolved(),
            Sink::Cluster(c) => c.try_next_outcome().map(Resolved::One),
        }
    }

    fn drain_ready(&mut self) -> Result<(), MigrationError> {
        let mut first_error = None;
        while let Some(resolved) = self.next_ready() {
            let seq = match resolved {
                Resolved::Applied { commands, up_to } => {
                    self.resolved += commands;
                    if self.incremental {
                        self.report.commands_applied += commands;
                        self.applied_offset = self.applied_offset.max(up_to);
                    }
                    up_to
                }
                Resolved::One(outcome) => {
                    self.resolved += 1;
                    let seq = outcome.tag().seq;
                    if let Err(e) = self.outcome(outcome) {
                        first_error.get_or_insert(e);
                    }
                    seq
                }
            };
            self.finish_marks(seq);
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn outcome(&mut self, outcome: Outcome) -> Result<(), MigrationError> {
        let mut result = Ok(());
        match outcome {
            Outcome::Applied(tag) => {
                if self.incremental {
                    self.report.commands_applied += 1;
                    self.applied_offset = self.applied_offset.max(tag.seq);
                }
            }
            Outcome::Failed { tag, reply } => {
                let restore = &tag.command[..] == b"RESTORE";
                if restore
                    && self.conflict == Conflict::Skip
                    && reply.kind() == ServerErrorKind::BusyKey
                {
                    self.key_busy = true;
                } else {
                    self.key_failed = true;
                    self.report.fail(
                        self.max_listed,
                        Failure {
                            db: tag.db,
                            key: tag.key.clone(),
                            command: String::from_utf8_lossy(&tag.command).into_owned(),
                            error: reply.to_string(),
                        },
                    );
                    tracing::warn!(target: "migrate", "write failed: {tag}: {reply}");
                    if self.policy == ErrorPolicy::Stop || reply.refuses_all_writes() {
                        result = Err(MigrationError::WriteFailed {
                            tag: Box::new(tag.clone()),
                            reply: Box::new(reply),
                        });
                    }
                }
                if self.incremental {
                    // Incremental: a skipped failure still moves the position on.
                    self.applied_offset = self.applied_offset.max(tag.seq);
                }
            }
            Outcome::Discarded(tag) | Outcome::Lost { tag, .. } => {
                self.key_failed = true;
                self.report.fail(
                    self.max_listed,
                    Failure {
                        db: tag.db,
                        key: tag.key.clone(),
                        command: String::from_utf8_lossy(&tag.command).into_owned(),
                        error: "not applied: the connection to the target failed".into(),
                    },
                );
            }
        }
        result
    }

    /// Counts the keys whose last command has its outcome now (`seq`: the last resolved).
    fn finish_marks(&mut self, seq: u64) {
        let single = matches!(self.sink, Sink::Single(_));
        while let Some(&(at, _)) = self.marks.front() {
            let done = if single {
                at <= self.resolved
            } else {
                at == seq
            };
            if !done {
                break;
            }
            if let Some((_, mark)) = self.marks.pop_front() {
                self.finish_key(mark);
            }
            if !single {
                break;
            }
        }
    }

    fn finish_key(&mut self, mark: KeyMark) {
        if self.key_busy {
            self.report.skipped_conflict += 1;
        } else if !self.key_failed {
            match mark.method {
                Method::Function => self.report.functions += 1,
                Method::Restore | Method::Rewrite => {
                    // Found by `&str` first: no `String` built for every key.
                    match self.report.keys_by_type.get_mut(mark.kind) {
                        Some(n) => *n += 1,
                        None => {
                            self.report.keys_by_type.insert(mark.kind.to_owned(), 1);
                        }
                    }
                    *self.report.keys_by_db.entry(mark.db).or_default() += 1;
                    if mark.method == Method::Restore {
                        self.report.keys_restored += 1;
                    } else {
                        self.report.keys_rewritten += 1;
                    }
                    if let Some(lossy) = mark.lossy {
                        let (key, what) = *lossy;
                        self.report.lossy(
                            self.max_listed,
                            Lossy {
                                db: mark.db,
                                key,
                                what,
                            },
                        );
                    }
                }
            }
        }
        self.key_failed = false;
        self.key_busy = false;
    }

    /// Records a key or command that cannot be copied; an error under the Stop policy.
    pub(crate) fn unsupported(
        &mut self,
        command: String,
        key: Option<Bytes>,
        reason: String,
    ) -> Result<(), MigrationError> {
        let shown = key
            .as_deref()
            .map(super::report::key_text)
            .unwrap_or_default();
        tracing::warn!(target: "migrate", "cannot copy {command} {shown}: {reason}");
        self.report.unsupported(
            self.max_listed,
            Unsupported {
                key: key.clone(),
                command: command.clone(),
                reason: reason.clone(),
            },
        );
        match self.policy {
            ErrorPolicy::Stop => Err(MigrationError::Unsupported {
                command,
                key,
                reason,
            }),
            ErrorPolicy::SkipAndCount => Ok(()),
        }
    }
}

/// The command name for a tag: the argument itself (shared, no copy) when it is already
/// upper case, as servers and clients nearly always send it; an upper-cased copy otherwise.
fn report_name(name: &Bytes) -> Bytes {
    if name.iter().any(u8::is_ascii_lowercase) {
        Bytes::from(name.to_ascii_uppercase())
    } else {
        name.clone()
    }
}
