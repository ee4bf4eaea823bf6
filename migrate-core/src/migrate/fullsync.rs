//! The full sync: RDB bytes in (a file, or the source's full-sync payload), keys written
//! to the target, each by `RESTORE` or by commands.
//!
//! Every per-key decision and command comes from the sans-IO [`KeyPlanner`] (see
//! [`crate::plan`]); this module is its async plumbing: it feeds the decoder's events to
//! the planner, answers the planner's two questions that need the target (`EXISTS` under
//! [`Conflict::Skip`], the trial `RESTORE` of a probed type byte) and sends the commands
//! through the [`Applier`], the last command of each key carrying its mark.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use rdb_parser::{Event, KeyStart, Options, RdbDecoder, ValueKind};

use super::apply::{Applier, KeyMark, Method};
use super::conn::Stream;
use super::sweep::KeySet;
use super::{Conflict, MigrationError, WriteMode};
use crate::plan::{FunctionPlan, KeyPlanner, PlanOptions, SkipReason, Verdict};
use crate::rewrite::{Cmd, RewriteOptions};
use crate::{Filter, ServerVersion, Tag, Target};

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
    /// (a scratch `RESTORE` on its own connection) instead of trusting the version tables.
    pub(crate) probe: Option<(super::TargetConfig, std::time::Duration)>,
}

pub(crate) struct FullSync {
    cfg: FullSyncConfig,
    decoder: RdbDecoder,
    buf: BytesMut,
    /// Every per-key decision and command.
    planner: KeyPlanner,
    /// The current key's kind, while inside a key.
    kind: Option<ValueKind>,
    /// The current key was counted (or reported) as not written already.
    settled: bool,
    /// The last command of the current key, held back to carry the key's mark.
    held: Option<Cmd>,
    /// Commands the planner emitted, not yet sent.
    cmds: Vec<Cmd>,
    /// Second connection for `EXISTS` ([`Conflict::Skip`] with keys written as commands).
    exists: Option<(Target<Stream>, Option<u32>)>,
    /// Keys sent to the target.
    pub(crate) keys_sent: u64,
    /// Keys skipped (expired, filtered, existing, unsupported).
    pub(crate) keys_skipped: u64,
    /// Every key of the snapshot inside the filter, for the sweep of a healing full sync.
    keys: Option<KeySet>,
    /// The probe connection (opened on first use).
    probe_conn: Option<Target<Stream>>,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl FullSync {
    pub(crate) fn new(cfg: FullSyncConfig, exists: Option<Target<Stream>>) -> FullSync {
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
            planner: KeyPlanner::new(opts, now_ms()),
            decoder: RdbDecoder::new(Options::default().raw_values(true)),
            buf: BytesMut::new(),
            kind: None,
            settled: false,
            held: None,
            cmds: Vec::new(),
            exists: exists.map(|t| (t, None)),
            keys_sent: 0,
            keys_skipped: 0,
            keys: None,
            probe_conn: None,
            cfg,
        }
    }

    /// Records every key of the snapshot that the filter accepts (for [`super::sweep`]).
    pub(crate) fn collect_keys(mut self) -> FullSync {
        self.keys = Some(KeySet::default());
        self
    }

    /// The keys recorded by [`FullSync::collect_keys`].
    pub(crate) fn take_keys(&mut self) -> Option<KeySet> {
        self.keys.take()
    }

    /// Gives back the `EXISTS` connection (for the next full sync after an interrupted one).
    pub(crate) fn into_exists(self) -> Option<Target<Stream>> {
        self.exists.map(|(t, _)| t)
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
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(ev)) => self.event(ev, ap).await?,
                Ok(None) => return Ok(()),
                Err(e) => return Err(self.rdb_error(e)),
            }
        }
    }

    /// The input ended: an incomplete RDB is an error.
    pub(crate) fn finish(&self) -> Result<(), MigrationError> {
        self.decoder.finish().map_err(|e| self.rdb_error(e))
    }

    async fn event(&mut self, ev: Event, ap: &mut Applier) -> Result<(), MigrationError> {
        match ev {
            Event::Header(h) => {
                self.planner.set_source(h.family, h.version);
                Ok(())
            }
            Event::KeyStart(k) => self.key_start(k, ap).await,
            Event::KeyEnd => self.key_end(ap).await,
            Event::RawValue(chunk) => {
                let mut cmds = std::mem::take(&mut self.cmds);
                let changed = self.planner.raw(&chunk, &mut |c| cmds.push(c));
                self.cmds = cmds;
                if let Some(v) = changed {
                    self.course(v, ap).await?;
                }
                self.send_cmds(ap).await
            }
            Event::ModuleAux(aux) => {
                // No command loads module auxiliary data: counted and named.
                let t = &aux.module.name;
                let module = crate::module_for_type(t).unwrap_or("unknown module");
                tracing::debug!(target: "migrate", "module aux data of {module} ({t}) not carried over");
                *ap.report
                    .module_aux_dropped
                    .entry(format!("{module} ({t})"))
                    .or_default() += 1;
                Ok(())
            }
            Event::Function(_) => {
                let mut cmds = Vec::new();
                let plan = self.planner.function(&ev, &mut |c| cmds.push(c));
                let name = |n: &Option<Bytes>| {
                    n.as_ref()
                        .map(|n| String::from_utf8_lossy(n).into_owned())
                        .unwrap_or_default()
                };
                match plan {
                    Some(FunctionPlan::Kept { name }) => {
                        let name = String::from_utf8_lossy(&name).into_owned();
                        tracing::info!(target: "migrate", "function library {name} is on the target already: kept");
                        ap.report.functions_skipped.push(name);
                        return Ok(());
                    }
                    Some(FunctionPlan::Unsupported { name: n }) => {
                        return ap.unsupported(
                            "FUNCTION LOAD".into(),
                            None,
                            format!(
                                "function library {} needs Redis 7.0+ on the target",
                                name(&n)
                            ),
                        );
                    }
                    _ => {}
                }
                let n = cmds.len();
                for (i, c) in cmds.into_iter().enumerate() {
                    let seq = ap.next_seq();
                    let tag = cmd_tag(&c, seq);
                    if i + 1 == n {
                        let mark = KeyMark {
                            seq,
                            db: 0,
                            kind: "function",
                            method: Method::Function,
                            lossy: None,
                        };
                        ap.send_last(tag, &c.args, mark).await?;
                    } else {
                        ap.send(tag, &c.args).await?;
                    }
                }
                Ok(())
            }
            other => {
                let mut cmds = std::mem::take(&mut self.cmds);
                self.planner.value(other, &mut |c| cmds.push(c));
                self.cmds = cmds;
                self.send_cmds(ap).await
            }
        }
    }

    async fn key_start(&mut self, k: KeyStart, ap: &mut Applier) -> Result<(), MigrationError> {
        self.planner.set_now_ms(now_ms());
        let kind = k.kind();
        let key = k.key.clone();
        self.kind = Some(kind);
        self.settled = false;
        self.held = None;
        let mut cmds = std::mem::take(&mut self.cmds);
        let verdict = self.planner.key_start(k, &mut |c| cmds.push(c));
        self.cmds = cmds;
        if let (Some(keys), Some((db, key))) = (&mut self.keys, self.planner.current_key()) {
            keys.insert(db, key);
        }
        match &verdict {
            Verdict::Skip(_) | Verdict::Unsupported(_) => {
                // An UNLINK of an expired key: not the key's write.
                for c in std::mem::take(&mut self.cmds) {
                    let tag = cmd_tag(&c, ap.next_seq());
                    ap.send(tag, &c.args).await?;
                }
                let key = self
                    .planner
                    .current_key()
                    .map(|(_, k)| k.clone())
                    .unwrap_or(key);
                self.skipped(&verdict, kind, key, ap)
            }
            _ => {
                self.course(verdict, ap).await?;
                self.send_cmds(ap).await
            }
        }
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

    /// Follows a key's new course: answers the planner's `EXISTS` question (a key to be
    /// written as commands under [`Conflict::Skip`]), reports a key that cannot be written.
    async fn course(&mut self, verdict: Verdict, ap: &mut Applier) -> Result<(), MigrationError> {
        if let Verdict::Unsupported(_) = &verdict {
            let key = self
                .planner
                .current_key()
                .map(|(_, k)| k.clone())
                .unwrap_or_default();
            let kind = self.kind.unwrap_or(ValueKind::String);
            return self.skipped(&verdict, kind, key, ap);
        }
        let Some((db, key)) = self.planner.awaiting_exists() else {
            return Ok(());
        };
        let key = key.clone();
        let mut exists = false;
        if let Some((target, selected)) = &mut self.exists {
            let url = ap.report.target.clone();
            let err = |source| MigrationError::Target {
                url: url.clone(),
                source: Box::new(source),
            };
            if *selected != Some(db) {
                target
                    .call(&["SELECT".as_bytes(), db.to_string().as_bytes()])
                    .await
                    .map_err(err)?;
                *selected = Some(db);
            }
            let reply = target
                .call(&[&b"EXISTS"[..], &key[..]])
                .await
                .map_err(err)?;
            exists = reply == resp_codec::Frame::Integer(1);
        }
        self.planner.set_now_ms(now_ms());
        let mut cmds = std::mem::take(&mut self.cmds);
        self.planner.resolve_exists(exists, &mut |c| cmds.push(c));
        self.cmds = cmds;
        if exists {
            ap.report.skipped_conflict += 1;
            self.keys_skipped += 1;
            self.settled = true;
        }
        Ok(())
    }

    /// Sends the planner's commands, holding the last one back.
    async fn send_cmds(&mut self, ap: &mut Applier) -> Result<(), MigrationError> {
        for c in std::mem::take(&mut self.cmds) {
            if let Some(prev) = self.held.replace(c) {
                let tag = cmd_tag(&prev, ap.next_seq());
                ap.send(tag, &prev.args).await?;
            }
        }
        Ok(())
    }

    /// `RESTORE`s the current key's payload into a scratch key of the target (then removes
    /// it) and tells the planner whether its type byte is accepted.
    async fn probe_current(
        &mut self,
        type_byte: u8,
        ap: &mut Applier,
    ) -> Result<(), MigrationError> {
        let (Some(payload), Some((target, timeout))) =
            (self.planner.probe_payload(), self.cfg.probe.as_ref())
        else {
            return Ok(());
        };
        if self.probe_conn.is_none() {
            self.probe_conn = Some(super::conn::connect(target, *timeout).await?);
        }
        let conn = self.probe_conn.as_mut().expect("just connected");
        let url = ap.report.target.clone();
        let err = |source| MigrationError::Target {
            url: url.clone(),
            source: Box::new(source),
        };
        let key = [super::checkpoint::RESERVED_PREFIX, b"probe"].concat();
        let reply = conn
            .call(&[&b"RESTORE"[..], &key, b"0", &payload, b"REPLACE"])
            .await
            .map_err(err)?;
        conn.call(&[&b"DEL"[..], &key]).await.map_err(err)?;
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
        self.planner.set_now_ms(now_ms());
        let mut cmds = std::mem::take(&mut self.cmds);
        self.planner
            .set_accepted(type_byte, accepted, &mut |c| cmds.push(c));
        self.cmds = cmds;
        if !accepted {
            // The first key of a type the target refuses: written as commands.
            if let Some(v) = self.planner.verdict().cloned() {
                self.course(v, ap).await?;
            }
        }
        Ok(())
    }

    async fn key_end(&mut self, ap: &mut Applier) -> Result<(), MigrationError> {
        if let Some(type_byte) = self.planner.needs_probe() {
            self.probe_current(type_byte, ap).await?;
        }
        let mut cmds = std::mem::take(&mut self.cmds);
        let plan = self.planner.key_end(&mut |c| cmds.push(c));
        self.cmds = cmds;
        self.send_cmds(ap).await?;
        self.kind = None;
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
                    let tag = cmd_tag(&c, ap.next_seq());
                    ap.send(tag, &c.args).await?;
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
            ap.send_last(cmd_tag(&last, seq), &last.args, mark).await?;
        }
        Ok(())
    }
}

fn cmd_tag(c: &Cmd, seq: u64) -> Tag {
    let tag = Tag::new(c.db(), c.args[0].clone(), seq);
    match c.key() {
        Some(k) => tag.with_key(k.clone()),
        None => tag,
    }
}
