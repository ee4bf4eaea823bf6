//! The full sync: RDB bytes in (a file, or the source's full-sync payload), keys written
//! to the target, each by `RESTORE` or by commands.
//!
//! Every per-key decision and command comes from the sans-IO [`KeyPlanner`] (see
//! [`crate::plan`]); this module is its plumbing. The decoder runs the zero-copy
//! [`Visitor`] path with raw pass-through: a key bound for `RESTORE` that lies whole in the
//! buffer is not decoded at all ([`Visitor::wants_items`] answers `false`), its raw bytes go
//! straight into the payload (the file's CRC is still checked); only keys that must be
//! rewritten (or that the one-pass path leaves to the state machine) have their items
//! turned into events for the planner. The visitor does everything that needs no I/O
//! (counts, reports, tags) and queues the commands; the async side sends them through the
//! [`Applier`] (the last command of each key carrying its mark) and answers the planner's
//! two questions that need the target: `EXISTS` under [`Conflict::Skip`], and the trial
//! `RESTORE` of a probed type byte. The common key, one `RESTORE` to a standalone target,
//! skips the queue and the per-key calls: the decoder offers it whole
//! ([`Visitor::whole_key`]), the planner decides it in one call
//! ([`KeyPlanner::whole_key`]) and lends its `RESTORE`, which is encoded straight into the
//! writer's output ([`Applier::try_send_restore`]: the value copied once, from the
//! decoder's buffer, the payload's CRC computed over that copy) while the writer needs no
//! I/O. A key the planner declines (a big key, a key to rewrite, a type to probe, ...)
//! goes the usual way, and one bound for `RESTORE` is still lent at its end
//! ([`KeyPlanner::key_end_restore`]). When the writer needs I/O, the key goes through the
//! queue and the decoder stops so that the queue is sent (the writer waits). For both, and
//! when the queue is full, the visitor
//! stops the decoder ([`ControlFlow::Break`]), which resumes where it stopped.

use std::collections::{BTreeSet, HashSet};
use std::ops::ControlFlow;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use rdb_parser::{
    Event, HashEntry, Item, KeyRef, Options, RdbDecoder, StreamEntry, StreamId, ValueKind, Visitor,
    ZSetEntry,
};

use super::apply::{Applier, KeyMark, Method};
use super::side::{SideConfig, SideConn};
use super::sweep::KeySet;
use super::{Conflict, MigrationError, WriteMode};
use crate::plan::{FunctionPlan, KeyPlanner, PlanOptions, SkipReason, Verdict, WholeKey};
use crate::rewrite::{Cmd, RewriteOptions, Scope};
use crate::{Filter, ServerVersion, Tag};

/// The visitor stops the decoder once this many bytes of commands are queued at a key's
/// end, or ...
const QUEUE_AT_KEY_END: usize = 1 << 20;
/// ... this many inside a key (a stop inside a key decoded in one pass decodes it again).
const QUEUE_IN_KEY: usize = 16 << 20;

/// What the full sync needs to know.
#[derive(Clone)]
pub(crate) struct FullSyncConfig {
    pub(crate) origin: String,
    pub(crate) version: ServerVersion,
    pub(crate) filter: Filter,
    pub(crate) mode: WriteMode,
    pub(crate) conflict: Conflict,
    pub(crate) big_key_bytes: usize,
    pub(crate) max_bulk_len: u64,
    pub(crate) rewrite: RewriteOptions,
    /// The target's modules (`MODULE LIST`), when it answered.
    pub(crate) target_modules: Option<Arc<[String]>>,
    /// Function libraries already on the target, kept ([`Conflict::Skip`] only).
    pub(crate) existing_functions: Option<Arc<HashSet<Bytes>>>,
    /// Learn which type bytes the target restores by trying the first key of each
    /// (a scratch `RESTORE` on its own connection, through the scratch key's master on a
    /// cluster) instead of trusting the version tables.
    pub(crate) probe: Option<SideConfig>,
}

/// A command to send, in order: its tag, and the key's mark on a key's last command.
struct Send {
    tag: Tag,
    args: Vec<Bytes>,
    mark: Option<KeyMark>,
}

/// What the visitor stopped for.
enum Need {
    /// The planner waits for `EXISTS` of the current key.
    Exists,
    /// The current key ended and is the first of its type byte: probe, then end it.
    Probe(u8),
}

/// Everything of the full sync that needs no I/O: the planner and the queue.
struct Keys {
    planner: KeyPlanner,
    /// The current key's kind, while inside a key.
    kind: Option<ValueKind>,
    /// Whether the current key's items are wanted (as events for the planner).
    items: bool,
    /// The current key was counted (or reported) as not written already.
    settled: bool,
    /// The last command of the current key, held back to carry the key's mark.
    held: Option<Cmd>,
    /// Commands the planner emitted, not yet tagged.
    cmds: Vec<Cmd>,
    /// Commands tagged, not yet sent.
    queue: Vec<Send>,
    queued_bytes: usize,
    /// The writer needed I/O for a command the visitor had: stop to send the queue.
    flush_now: bool,
    need: Option<Need>,
    /// The first error, which stopped the decoder.
    error: Option<MigrationError>,
    /// Keys sent to the target.
    keys_sent: u64,
    /// Keys skipped (expired, filtered, existing, unsupported).
    keys_skipped: u64,
    /// Every key of the snapshot inside the filter, for the sweep of a healing full sync.
    keys: Option<KeySet>,
    /// The module types of the values seen (for the report's missing modules).
    module_types: BTreeSet<String>,
}

pub(crate) struct FullSync {
    cfg: FullSyncConfig,
    decoder: RdbDecoder,
    buf: BytesMut,
    k: Keys,
    /// Second connection for `EXISTS` ([`Conflict::Skip`] with keys written as commands;
    /// routed by key slot on a cluster target).
    exists: Option<SideConn>,
    /// The probe connection (opened on first use).
    probe_conn: Option<SideConn>,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl FullSync {
    pub(crate) fn new(cfg: FullSyncConfig, exists: Option<SideConn>) -> FullSync {
        let opts = PlanOptions::new(cfg.version)
            .mode(cfg.mode)
            .conflict(cfg.conflict)
            .big_key_bytes(cfg.big_key_bytes)
            .max_bulk_len(cfg.max_bulk_len)
            .rewrite(cfg.rewrite.clone())
            .filter(cfg.filter.clone())
            .target_modules(cfg.target_modules.clone())
            .existing_functions(cfg.existing_functions.clone())
            .probe(cfg.probe.is_some());
        FullSync {
            k: Keys {
                planner: KeyPlanner::new(opts, now_ms()),
                kind: None,
                items: true,
                settled: false,
                held: None,
                cmds: Vec::new(),
                queue: Vec::new(),
                queued_bytes: 0,
                flush_now: false,
                need: None,
                error: None,
                keys_sent: 0,
                keys_skipped: 0,
                keys: None,
                module_types: BTreeSet::new(),
            },
            decoder: RdbDecoder::new(Options::default().raw_values(true)),
            buf: BytesMut::new(),
            exists,
            probe_conn: None,
            cfg,
        }
    }

    /// Keys sent to the target.
    pub(crate) fn keys_sent(&self) -> u64 {
        self.k.keys_sent
    }

    /// Keys skipped (expired, filtered, existing, unsupported).
    pub(crate) fn keys_skipped(&self) -> u64 {
        self.k.keys_skipped
    }

    /// Records every key of the snapshot that the filter accepts (for [`super::sweep`]).
    pub(crate) fn collect_keys(mut self) -> FullSync {
        self.k.keys = Some(KeySet::default());
        self
    }

    /// The keys recorded by [`FullSync::collect_keys`].
    pub(crate) fn take_keys(&mut self) -> Option<KeySet> {
        self.k.keys.take()
    }

    /// What it was started with.
    pub(crate) fn config(&self) -> &FullSyncConfig {
        &self.cfg
    }

    /// The module types of the values decoded so far (by name).
    pub(crate) fn module_types(&self) -> &BTreeSet<String> {
        &self.k.module_types
    }

    /// Gives back the `EXISTS` connection (for the next full sync after an interrupted one).
    pub(crate) fn into_exists(self) -> Option<SideConn> {
        self.exists
    }

    /// RDB bytes decoded so far.
    pub(crate) fn offset(&self) -> u64 {
        self.decoder.offset()
    }

    fn rdb_error(&self, e: rdb_parser::Error) -> MigrationError {
        MigrationError::Rdb {
            origin: self.cfg.origin.clone(),
            source: std::sync::Arc::new(e),
        }
    }

    /// Takes the next RDB bytes and writes every key they complete.
    pub(crate) async fn feed(
        &mut self,
        chunk: &[u8],
        ap: &mut Applier,
    ) -> Result<(), MigrationError> {
        self.buf.extend_from_slice(chunk);
        self.decode(ap).await
    }

    /// The decoder's input buffer (what is not decoded yet), taken out to be filled
    /// straight from a file (no copy); give it back with [`FullSync::decode_buf`].
    pub(crate) fn take_buf(&mut self) -> BytesMut {
        std::mem::take(&mut self.buf)
    }

    /// Takes back the buffer of [`FullSync::take_buf`], new bytes appended, and writes
    /// every key they complete.
    pub(crate) async fn decode_buf(
        &mut self,
        buf: BytesMut,
        ap: &mut Applier,
    ) -> Result<(), MigrationError> {
        self.buf = buf;
        self.decode(ap).await
    }

    /// Decodes what the buffer holds and writes every key it completes.
    async fn decode(&mut self, ap: &mut Applier) -> Result<(), MigrationError> {
        // "Now", for the keys that expired: once per piece of input.
        self.k.planner.set_now_ms(now_ms());
        loop {
            let flow = {
                let mut v = Feed { k: &mut self.k, ap };
                self.decoder.decode_into(&mut self.buf, &mut v)
            };
            let flow = match flow {
                Ok(flow) => flow,
                Err(e) => return Err(self.rdb_error(e)),
            };
            if let Some(e) = self.k.error.take() {
                return Err(e);
            }
            self.flush(ap).await?;
            match self.k.need.take() {
                Some(Need::Exists) => self.answer_exists(ap).await?,
                Some(Need::Probe(type_byte)) => {
                    self.probe_current(type_byte, ap).await?;
                    self.k.key_end(ap)?;
                }
                None => {}
            }
            self.flush(ap).await?;
            if flow.is_continue() {
                return Ok(());
            }
        }
    }

    /// The input ended: an incomplete RDB is an error.
    pub(crate) fn finish(&self) -> Result<(), MigrationError> {
        self.decoder.finish().map_err(|e| self.rdb_error(e))
    }

    /// Sends the queued commands.
    async fn flush(&mut self, ap: &mut Applier) -> Result<(), MigrationError> {
        self.k.queued_bytes = 0;
        self.k.flush_now = false;
        // The queue's vector is kept, and each command's arguments go back to the planner.
        let mut queue = std::mem::take(&mut self.k.queue);
        for s in queue.drain(..) {
            match s.mark {
                Some(mark) => ap.send_last(s.tag, &s.args, mark).await?,
                None => ap.send(s.tag, &s.args).await?,
            }
            self.k.planner.recycle(s.args);
        }
        self.k.queue = queue;
        Ok(())
    }

    /// Answers the planner's `EXISTS` question (a key to be written as commands under
    /// [`Conflict::Skip`]) on the second connection.
    async fn answer_exists(&mut self, ap: &mut Applier) -> Result<(), MigrationError> {
        let Some((db, key)) = self.k.planner.awaiting_exists() else {
            return Ok(());
        };
        let key = key.clone();
        let exists = match &mut self.exists {
            Some(side) => side.exists(db, &key, &ap.report.target).await?,
            None => false,
        };
        self.k.resolve_exists(exists, ap);
        Ok(())
    }

    /// `RESTORE`s the current key's payload into a scratch key of the target (then removes
    /// it) and tells the planner whether its type byte is accepted.
    async fn probe_current(
        &mut self,
        type_byte: u8,
        ap: &mut Applier,
    ) -> Result<(), MigrationError> {
        let (Some(payload), Some(side)) = (self.k.planner.probe_payload(), self.cfg.probe.as_ref())
        else {
            return Ok(());
        };
        let conn = match &mut self.probe_conn {
            Some(c) => c,
            None => self.probe_conn.insert(SideConn::connect(side).await?),
        };
        let url = &ap.report.target;
        let key = [super::checkpoint::RESERVED_PREFIX, b"probe"].concat();
        let reply = conn
            .call(&[&b"RESTORE"[..], &key, b"0", &payload, b"REPLACE"], url)
            .await?;
        conn.call(&[&b"DEL"[..], &key], url).await?;
        let accepted = !reply.is_error();
        if accepted {
            tracing::info!(target: "migrate", "the target restores RDB type {type_byte}");
        } else {
            let why = crate::ServerError::from_frame(&reply)
                .map(|e| e.to_string())
                .unwrap_or_default();
            tracing::info!(target: "migrate", "the target refuses RDB type {type_byte} ({why}): such keys are written as commands");
        }
        ap.report.restore_probe.insert(type_byte, accepted);
        self.k.planner.set_now_ms(now_ms());
        let mut cmds = std::mem::take(&mut self.k.cmds);
        self.k
            .planner
            .set_accepted(type_byte, accepted, &mut |c| cmds.push(c));
        self.k.cmds = cmds;
        if !accepted {
            // The first key of a type the target refuses: written as commands.
            self.answer_exists(ap).await?;
        }
        self.k.send_cmds(ap);
        Ok(())
    }
}

/// The visitor: [`Keys`] with the applier (for sequence numbers, counts and reports).
struct Feed<'a> {
    k: &'a mut Keys,
    ap: &'a mut Applier,
}

impl Feed<'_> {
    /// Continues, or stops the decoder when the key's course needs the target, the queue
    /// is full (`limit`), or something failed.
    fn flow(&mut self, limit: usize) -> ControlFlow<()> {
        if self.k.error.is_some()
            || self.k.need.is_some()
            || self.k.flush_now
            || self.k.queued_bytes >= limit
        {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn check(&mut self, r: Result<(), MigrationError>) {
        if let Err(e) = r {
            self.k.error.get_or_insert(e);
        }
    }

    /// A value event of the current key, for the planner (when it wants the items).
    fn value(&mut self, ev: Event) -> ControlFlow<()> {
        if !self.k.items {
            return ControlFlow::Continue(());
        }
        let mut cmds = std::mem::take(&mut self.k.cmds);
        self.k.planner.value(ev, &mut |c| cmds.push(c));
        self.k.cmds = cmds;
        self.k.send_cmds(self.ap);
        self.flow(QUEUE_IN_KEY)
    }
}

impl Visitor for Feed<'_> {
    /// The common key in one call: its `RESTORE` written straight into the writer's output
    /// (or the key skipped), when nothing is waiting before it.
    fn whole_key(
        &mut self,
        key: &KeyRef<'_>,
        value: &[u8],
        _record_len: u64,
    ) -> Option<ControlFlow<()>> {
        let k = &mut *self.k;
        if !(k.lends_now(self.ap) && k.keys.is_none() && k.error.is_none() && k.need.is_none()) {
            return None;
        }
        let ap = &mut *self.ap;
        let seq = ap.peek_seq();
        let mut sent = None;
        let plan = k.planner.whole_key(key, value, |cmd| {
            let r = ap.try_send_restore(seq, cmd);
            let taken = matches!(r, Ok(true));
            sent = Some(r);
            taken
        });
        match plan {
            WholeKey::Restored { db, kind } => k.restored(ap, seq, db, kind),
            WholeKey::Skipped { reason, .. } => {
                match reason {
                    SkipReason::Expired { .. } => ap.report.skipped_expired += 1,
                    _ => ap.report.skipped_filtered += 1,
                }
                k.keys_skipped += 1;
            }
            _ => match sent {
                Some(Err(e)) => {
                    // The writer failed: nothing more is sent.
                    k.error.get_or_insert(e);
                    return Some(ControlFlow::Break(()));
                }
                // Declined, or the writer needs I/O first: the key goes the usual way
                // (which sends it through the queue and stops the decoder after it).
                _ => return None,
            },
        }
        Some(self.flow(QUEUE_AT_KEY_END))
    }

    fn key_start(&mut self, key: &KeyRef<'_>) -> ControlFlow<()> {
        let r = self.k.key_start(key, self.ap);
        self.check(r);
        self.flow(QUEUE_IN_KEY)
    }

    fn wants_items(&mut self, value_len: u64) -> bool {
        self.k.wants_items(value_len)
    }

    fn raw_value(&mut self, piece: &[u8]) -> ControlFlow<()> {
        let mut cmds = std::mem::take(&mut self.k.cmds);
        let changed = self.k.planner.raw(piece, &mut |c| cmds.push(c));
        self.k.cmds = cmds;
        if let Some(v) = changed {
            self.k.items = true;
            let r = self.k.course(v, self.ap);
            self.check(r);
        }
        self.k.send_cmds(self.ap);
        self.flow(QUEUE_IN_KEY)
    }

    fn string(&mut self, piece: Item<'_>) -> ControlFlow<()> {
        self.value(Event::String(piece.to_str()))
    }

    fn list_item(&mut self, item: Item<'_>) -> ControlFlow<()> {
        self.value(Event::ListItems(vec![item.to_str()]))
    }

    fn set_member(&mut self, member: Item<'_>) -> ControlFlow<()> {
        self.value(Event::SetMembers(vec![member.to_str()]))
    }

    fn zset_entry(&mut self, member: Item<'_>, score: f64) -> ControlFlow<()> {
        self.value(Event::ZSetEntries(vec![ZSetEntry {
            member: member.to_str(),
            score,
        }]))
    }

    fn hash_entry(
        &mut self,
        field: Item<'_>,
        value: Item<'_>,
        expire_at_ms: Option<u64>,
    ) -> ControlFlow<()> {
        self.value(Event::HashEntries(vec![HashEntry {
            field: field.to_str(),
            value: value.to_str(),
            expire_at_ms,
        }]))
    }

    fn stream_entry(&mut self, id: StreamId, fields: &[(Item<'_>, Item<'_>)]) -> ControlFlow<()> {
        if !self.k.items {
            return ControlFlow::Continue(());
        }
        let fields = fields
            .iter()
            .map(|(f, v)| (f.to_str(), v.to_str()))
            .collect();
        self.value(Event::StreamEntries(vec![StreamEntry { id, fields }]))
    }

    fn key_end(&mut self, _record_len: u64) -> ControlFlow<()> {
        if let Some(type_byte) = self.k.planner.needs_probe() {
            // Probed, then ended, by the async side.
            self.k.need = Some(Need::Probe(type_byte));
            return ControlFlow::Break(());
        }
        let r = self.k.key_end(self.ap);
        self.check(r);
        self.flow(QUEUE_AT_KEY_END)
    }

    fn event(&mut self, ev: Event) -> ControlFlow<()> {
        let r = match ev {
            Event::Header(h) => {
                self.k.planner.set_source(h.family, h.version);
                Ok(())
            }
            Event::ModuleAux(aux) => {
                // No command loads module auxiliary data: counted and named.
                let t = &aux.module.name;
                let module = crate::module_for_type(t).unwrap_or("unknown module");
                tracing::debug!(target: "migrate", "module aux data of {module} ({t}) not carried over");
                *self
                    .ap
                    .report
                    .module_aux_dropped
                    .entry(format!("{module} ({t})"))
                    .or_default() += 1;
                Ok(())
            }
            Event::Function(_) => self.k.function(&ev, self.ap),
            // Stream metadata and groups, module data: the current key's value.
            other if self.k.kind.is_some() => return self.value(other),
            _ => Ok(()),
        };
        self.check(r);
        self.flow(QUEUE_AT_KEY_END)
    }
}

impl Keys {
    /// Tags a command and queues it.
    fn queue(&mut self, c: Cmd, mark: Option<KeyMark>, seq: u64) {
        self.queued_bytes += c.args.iter().map(|a| a.len() + 16).sum::<usize>();
        self.queue.push(Send {
            tag: cmd_tag(c.scope, &c.args, seq),
            args: c.args,
            mark,
        });
    }

    /// Queues the planner's commands, holding the last one back.
    fn send_cmds(&mut self, ap: &mut Applier) {
        if self.cmds.is_empty() {
            // The common key's calls: nothing emitted.
            return;
        }
        // The vector is kept (its capacity reused for every key).
        let mut cmds = std::mem::take(&mut self.cmds);
        for c in cmds.drain(..) {
            if let Some(prev) = self.held.replace(c) {
                self.queue(prev, None, ap.next_seq());
            }
        }
        self.cmds = cmds;
    }

    fn key_start(&mut self, key: &KeyRef<'_>, ap: &mut Applier) -> Result<(), MigrationError> {
        let kind = key.kind();
        if let Some(m) = key.module {
            if !self.module_types.contains(&m.name) {
                self.module_types.insert(m.name.clone());
            }
        }
        self.kind = Some(kind);
        self.items = true;
        self.settled = false;
        self.held = None;
        let mut cmds = std::mem::take(&mut self.cmds);
        let verdict = self.planner.key_start_ref(key, &mut |c| cmds.push(c));
        self.cmds = cmds;
        if let (Some(keys), Some((db, key))) = (&mut self.keys, self.planner.current_key()) {
            keys.insert(db, key);
        }
        match &verdict {
            Verdict::Skip(_) | Verdict::Unsupported(_) => {
                self.items = false;
                // An UNLINK of an expired key: not the key's write.
                let mut cmds = std::mem::take(&mut self.cmds);
                for c in cmds.drain(..) {
                    self.queue(c, None, ap.next_seq());
                }
                self.cmds = cmds;
                let key = self
                    .planner
                    .current_key()
                    .map(|(_, k)| k.clone())
                    .unwrap_or_else(|| Bytes::copy_from_slice(key.key));
                self.skipped(&verdict, kind, key, ap)
            }
            _ => {
                self.course(verdict, ap)?;
                self.send_cmds(ap);
                Ok(())
            }
        }
    }

    /// Raw pass-through: a key bound for `RESTORE` whose whole value is at hand (and fits
    /// the big-key threshold) is not decoded.
    fn wants_items(&mut self, value_len: u64) -> bool {
        if !self.items {
            return false;
        }
        let opts = self.planner.options();
        let forced = opts.mode != WriteMode::Auto || self.kind == Some(ValueKind::Module);
        let fits = forced || value_len <= opts.big_key_bytes as u64;
        if self.planner.verdict() == Some(&Verdict::Restore) && fits {
            self.planner.raw_only();
            self.planner.reserve_raw(value_len as usize);
            self.items = false;
        }
        self.items
    }

    /// Counts and reports a key that is not written.
    fn skipped(
        &mut self,
        verdict: &Verdict,
        kind: ValueKind,
        key: Bytes,
        ap: &mut Applier,
    ) -> Result<(), MigrationError> {
        self.settled = true;
        match verdict {
            Verdict::Skip(SkipReason::Filtered | SkipReason::Reserved) => {
                ap.report.skipped_filtered += 1
            }
            Verdict::Skip(SkipReason::Expired { .. }) => ap.report.skipped_expired += 1,
            Verdict::Skip(SkipReason::Exists) => ap.report.skipped_conflict += 1,
            Verdict::Skip(_) => {}
            Verdict::Unsupported(reason) => {
                self.keys_skipped += 1;
                return ap.unsupported(kind.as_str().into(), Some(key), reason.to_string());
            }
            _ => return Ok(()),
        }
        self.keys_skipped += 1;
        Ok(())
    }

    /// Follows a key's new course: asks for `EXISTS` when the planner waits for it, reports
    /// a key that cannot be written.
    fn course(&mut self, verdict: Verdict, ap: &mut Applier) -> Result<(), MigrationError> {
        if let Verdict::Unsupported(_) = &verdict {
            self.items = false;
            let key = self
                .planner
                .current_key()
                .map(|(_, k)| k.clone())
                .unwrap_or_default();
            let kind = self.kind.unwrap_or(ValueKind::String);
            return self.skipped(&verdict, kind, key, ap);
        }
        if self.planner.awaiting_exists().is_some() {
            self.need = Some(Need::Exists);
        }
        Ok(())
    }

    /// The answer to the planner's `EXISTS` question.
    fn resolve_exists(&mut self, exists: bool, ap: &mut Applier) {
        self.planner.set_now_ms(now_ms());
        let mut cmds = std::mem::take(&mut self.cmds);
        self.planner.resolve_exists(exists, &mut |c| cmds.push(c));
        self.cmds = cmds;
        if exists {
            self.items = false;
            ap.report.skipped_conflict += 1;
            self.keys_skipped += 1;
            self.settled = true;
        }
        self.send_cmds(ap);
    }

    fn key_end(&mut self, ap: &mut Applier) -> Result<(), MigrationError> {
        if self.lends_now(ap) {
            if let Some(done) = self.restore_now(ap) {
                return done;
            }
        }
        let mut cmds = std::mem::take(&mut self.cmds);
        let plan = self.planner.key_end(&mut |c| cmds.push(c));
        self.cmds = cmds;
        self.send_cmds(ap);
        self.kind = None;
        self.items = true;
        let held = self.held.take();
        let Some(plan) = plan else {
            return Ok(());
        };
        let method = match &plan.verdict {
            Verdict::Restore => Method::Restore,
            Verdict::Rewrite(_) | Verdict::Skip(SkipReason::Empty) => Method::Rewrite,
            _ if self.settled => return Ok(()),
            Verdict::Skip(SkipReason::Expired { .. }) => {
                // Expired while written as commands: its UNLINK (under REPLACE) goes out
                // unmarked.
                ap.report.skipped_expired += 1;
                self.keys_skipped += 1;
                if let Some(c) = held {
                    self.queue(c, None, ap.next_seq());
                }
                return Ok(());
            }
            _ => {
                // The rewriter's own refusals (a stream for a target before 5.0).
                let kind = plan.kind;
                return self.skipped(&plan.verdict, kind, plan.key.clone(), ap);
            }
        };
        for loss in &plan.losses {
            tracing::warn!(target: "migrate", "key {}: {loss}", super::report::key_text(&plan.key));
        }
        if let Some(last) = held {
            let seq = ap.next_seq();
            let mark = KeyMark {
                seq,
                db: plan.db,
                kind: plan.kind.as_str(),
                method,
                lossy: (!plan.losses.is_empty()).then(|| {
                    let what: Vec<String> = plan.losses.iter().map(|l| l.to_string()).collect();
                    Box::new((plan.key.clone(), what.join("; ")))
                }),
            };
            self.keys_sent += 1;
            self.queue(last, Some(mark), seq);
        }
        Ok(())
    }

    /// The common key's end: its one `RESTORE` straight into the writer's output, its
    /// arguments borrowed from the planner (no command, tag or queue entry). `None`: not
    /// such a key, or the writer needs I/O first (then the key goes through the queue, and
    /// the decoder stops so that the queue is sent).
    fn restore_now(&mut self, ap: &mut Applier) -> Option<Result<(), MigrationError>> {
        let seq = ap.peek_seq();
        let mut sent = None;
        let plan = self.planner.key_end_restore(|cmd| {
            let r = ap.try_send_restore(seq, cmd);
            let taken = matches!(r, Ok(true));
            sent = Some(r);
            taken
        });
        match sent? {
            Err(e) => return Some(Err(e)),
            Ok(false) => {
                self.flush_now = true;
                return None;
            }
            Ok(true) => {}
        }
        let plan = plan?;
        self.kind = None;
        self.items = true;
        self.restored(ap, seq, plan.db, plan.kind);
        Some(Ok(()))
    }

    /// Whether a lent `RESTORE` can go straight to the writer now: nothing of this or an
    /// earlier key waits to be queued, and the target is a standalone one without a write
    /// cap or an open transaction.
    fn lends_now(&self, ap: &Applier) -> bool {
        self.queue.is_empty() && self.held.is_none() && self.cmds.is_empty() && ap.sends_direct()
    }

    /// A key's one `RESTORE`, queued by the writer without a tag as `seq`: its mark.
    fn restored(&mut self, ap: &mut Applier, seq: u64, db: u32, kind: ValueKind) {
        ap.next_seq();
        ap.mark_last(KeyMark {
            seq,
            db,
            kind: kind.as_str(),
            method: Method::Restore,
            lossy: None,
        });
        self.keys_sent += 1;
    }

    fn function(&mut self, ev: &Event, ap: &mut Applier) -> Result<(), MigrationError> {
        let mut cmds = Vec::new();
        let plan = self.planner.function(ev, &mut |c| cmds.push(c));
        match plan {
            Some(FunctionPlan::Kept { name }) => {
                let name = String::from_utf8_lossy(&name).into_owned();
                tracing::info!(target: "migrate", "function library {name} is on the target already: kept");
                ap.report.functions_skipped.push(name);
                return Ok(());
            }
            Some(FunctionPlan::Unsupported { name }) => {
                let name = name
                    .as_ref()
                    .map(|n| String::from_utf8_lossy(n).into_owned())
                    .unwrap_or_default();
                return ap.unsupported(
                    "FUNCTION LOAD".into(),
                    None,
                    format!("function library {name} needs Redis 7.0+ on the target"),
                );
            }
            _ => {}
        }
        let n = cmds.len();
        for (i, c) in cmds.into_iter().enumerate() {
            let seq = ap.next_seq();
            let mark = (i + 1 == n).then_some(KeyMark {
                seq,
                db: 0,
                kind: "function",
                method: Method::Function,
                lossy: None,
            });
            self.queue(c, mark, seq);
        }
        Ok(())
    }
}

/// The tag of a command: its name, and its key moved out of its scope (the scope is not
/// needed once the command is queued).
fn cmd_tag(scope: Scope, args: &[Bytes], seq: u64) -> Tag {
    let name = args.first().cloned().unwrap_or_default();
    match scope {
        Scope::Key { db, key } => Tag::new(Some(db), name, seq).with_key(key),
        Scope::Server => Tag::new(None, name, seq),
    }
}
