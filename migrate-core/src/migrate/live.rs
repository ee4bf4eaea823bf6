//! One replication link driven into one [`Applier`]: the full sync, then the replicated
//! commands in checkpointed `MULTI`/`EXEC` batches. A standalone source has one; a cluster
//! source one per shard (see [`super::shards`]).

use std::sync::Arc;
use std::time::Duration;

use replication_client::{Event as ReplEvent, FullResyncReason, RdbTransfer, Replica};
use tokio::sync::watch;

use super::apply::Applier;
use super::checkpoint::CheckpointPhase;
use super::conn;
use super::fullsync::{FullSync, FullSyncConfig};
use super::incremental::Incremental;
use super::progress::{Phase, Tracker};
use super::report::StopReason;
use super::run::{publish_counts, publish_full, CheckpointWriter, PROGRESS_EVERY};
use super::{Conflict, MigrationError, TargetConfig};

/// Replicated commands per checkpointed `MULTI`/`EXEC` batch at most.
const MAX_BATCH_COMMANDS: usize = 1000;
/// A batch of at least this many commands is applied as soon as the stream pauses; a
/// smaller one waits up to [`BATCH_LINGER`] for more, so that the `MULTI`/`SET`/`EXEC` of
/// the checkpoint stays a small share of the commands under a steady load, and a quiet
/// source is still applied within milliseconds.
const MIN_BATCH_COMMANDS: usize = 200;
/// How long a small batch waits for more commands.
const BATCH_LINGER: Duration = Duration::from_millis(2);
/// Under a steady stream the progress is published every this many replicated commands
/// (and whenever the stream pauses), not after each one.
const PUBLISH_EVERY: u32 = 64;
/// When the stream pauses with writes still unconfirmed, their replies are collected after
/// this long (instead of the idle check's 200 ms), so that the applied offset, the progress
/// and `--once` see the target's confirmation within milliseconds of the last write.
const SETTLE_AFTER: Duration = Duration::from_millis(5);
/// `once`: how long the stream may stay silent short of the offset the source reported
/// (its stream starts on an ACK after the RDB, within a cron tick or two) before the
/// migration ends with a warning instead.
const ONCE_OFFSET_WAIT: Duration = Duration::from_secs(10);

/// One replication link into one applier (see the module docs).
pub(crate) struct Live {
    /// [`super::Limits::max_bandwidth`]: the RDB and the stream are read no faster.
    pub(crate) source_bytes: Option<Arc<super::limit::Bucket>>,
    pub(crate) origin: String,
    pub(crate) fs_config: FullSyncConfig,
    pub(crate) exists: Option<super::side::SideConn>,
    pub(crate) once: bool,
    /// A standalone source as a plain connection, for `once` to read its replication
    /// offset (a cluster shard reads its current node's, from [`Live::shard`]).
    pub(crate) source: Option<TargetConfig>,
    pub(crate) idle_check: Duration,
    pub(crate) version: crate::ServerVersion,
    pub(crate) filter: crate::Filter,
    /// `None`: no checkpoint (`checkpoint(false)`).
    pub(crate) ckpt: Option<CheckpointWriter>,
    /// The next full sync heals (a checkpoint was found, or a full sync ran before).
    pub(crate) heal_next: bool,
    pub(crate) target: TargetConfig,
    pub(crate) connect_timeout: Duration,
    /// A shard of a cluster source: its slots (the sweep of a healing full sync stays
    /// inside them) and how to find its node again after a failover.
    pub(crate) shard: Option<super::shards::Follow>,
    /// The permit of a bounded full sync
    /// ([`max_concurrent_full_syncs`](super::MigrationBuilder::max_concurrent_full_syncs)),
    /// released when the RDB has been loaded.
    pub(crate) permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// The open checkpointed batch.
pub(crate) struct Batch {
    commands: usize,
    opened: std::time::Instant,
}

impl Live {
    fn source_err(&self, e: replication_client::Error) -> MigrationError {
        MigrationError::Source {
            url: self.origin.clone(),
            source: Arc::new(e),
        }
    }

    /// Closes the open batch: the checkpoint at `point` (a transaction boundary of the
    /// source whose commands are all in the batch), then `EXEC`.
    async fn close_batch(
        &self,
        batch: &mut Option<Batch>,
        point: Option<replication_client::ResumePoint>,
        ap: &mut Applier,
    ) -> Result<(), MigrationError> {
        if batch.take().is_none() {
            return Ok(());
        }
        if let (Some(ckpt), Some(point)) = (&self.ckpt, point) {
            ckpt.write(ap, CheckpointPhase::Incremental, point, point.offset)
                .await?;
            ap.report.checkpoint_offset = Some(point.offset);
        }
        ap.exec()
    }

    /// `once`: the offset the source's replication stream has reached now, read on a side
    /// connection; the target is caught up once everything up to it is applied. `None`
    /// when the source does not say (then a quiet stream decides alone, see
    /// [`MigrationBuilder::once`](super::MigrationBuilder::once)).
    async fn once_offset(&self) -> Option<u64> {
        if !self.once {
            return None;
        }
        let cfg = match &self.shard {
            Some(follow) => follow.node_conn(),
            None => self.source.clone()?,
        };
        let at = conn::repl_offset(&cfg, self.connect_timeout).await;
        match at {
            Some(at) => {
                tracing::debug!(target: "migrate", "{}: caught up once offset {at} is applied", self.origin)
            }
            None => tracing::debug!(
                target: "migrate",
                "{}: no replication offset from INFO: caught up after {:?} without writes",
                self.origin, self.idle_check
            ),
        }
        at
    }

    pub(crate) async fn run(
        mut self,
        mut replica: Replica,
        ap: &mut Applier,
        tracker: &Tracker,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<StopReason, MigrationError> {
        let mut full: Option<FullSync> = None;
        let mut pending_full: Option<(replication_client::ReplId, u64)> = None;
        let mut synced = false;
        // `once`: the source offset to reach (read when the target is in sync).
        let mut once_at: Option<u64> = None;
        // `once`: since when the stream has delivered nothing (its quiet rule).
        let mut paused_at: Option<std::time::Instant> = None;
        let modules = self
            .fs_config
            .target_modules
            .as_deref()
            .map(<[String]>::to_vec);
        let mut incr = Incremental::new(self.version, self.filter.clone(), modules);
        let mut last_progress = 0u64;
        let mut batch: Option<Batch> = None;
        // The source position after the last complete transaction received.
        let mut boundary = replica.position();
        // Events since the progress was last published.
        let mut unpublished = 0u32;
        if let Some(follow) = self.shard.as_mut() {
            // Fences of atomic slot migrations recorded on the target (a restart).
            follow.asm_tick().await;
        }
        // Whether to stop, read once here and then only when it changed (an atomic load per
        // event; reading the value takes the channel's lock).
        let stopping = *stop.borrow_and_update();
        let reason = loop {
            if stopping || (stop.has_changed().unwrap_or(true) && *stop.borrow_and_update()) {
                break StopReason::Stopped;
            }
            let ev = match replica.try_recv() {
                Some(ev) => Ok(Some(ev)),
                None => {
                    if self.once {
                        paused_at.get_or_insert_with(std::time::Instant::now);
                    }
                    // The stream paused: apply the batch now if it is big enough or has
                    // waited long enough; otherwise wait a little for more to join it.
                    let mut wait = self.idle_check;
                    if let Some(b) = &batch {
                        let waited = b.opened.elapsed();
                        if incr.in_transaction() {
                            // Only whole source transactions go into a batch.
                        } else if b.commands >= MIN_BATCH_COMMANDS || waited >= BATCH_LINGER {
                            self.close_batch(&mut batch, boundary, ap).await?;
                        } else {
                            wait = BATCH_LINGER - waited;
                        }
                    }
                    if synced && batch.is_none() {
                        // Nothing more to add now: what is queued goes to the target now.
                        ap.write_queued().await?;
                        if (!ap.is_idle() || once_at.is_some()) && !incr.in_transaction() {
                            wait = wait.min(SETTLE_AFTER);
                        }
                    }
                    if synced && unpublished > 0 {
                        unpublished = 0;
                        self.publish_incr(&replica, &incr, ap, tracker);
                    }
                    tokio::select! {
                        biased;
                        _ = stop.changed() => break StopReason::Stopped,
                        ev = tokio::time::timeout(wait, replica.recv()) => ev,
                    }
                }
            };
            let ev = match ev {
                Err(_elapsed) if batch.is_some() && !incr.in_transaction() => continue,
                Err(_elapsed) => {
                    // Quiet: settle what is in flight and check whether we caught up.
                    if synced && !incr.in_transaction() {
                        ap.flush().await?;
                        // A cluster shard's checkpoint also covers the PINGs after its last
                        // command: the new owner of keys moved from it waits for it
                        // (see shards::moves).
                        if let (Some(_), Some(ckpt), Some(p)) =
                            (&self.shard, &self.ckpt, replica.position())
                        {
                            if ap.report.checkpoint_offset.is_some_and(|c| c < p.offset) {
                                ckpt.write(ap, CheckpointPhase::Incremental, p, p.offset)
                                    .await?;
                                ap.report.checkpoint_offset = Some(p.offset);
                                ap.flush().await?;
                            }
                        }
                        if let Some(follow) = self.shard.as_mut() {
                            follow.landed(ap.applied_offset);
                            follow.asm_tick().await;
                        }
                        // A failed import learned of while quiet (another process's fence).
                        if self.asm_resync_due() {
                            if let Some(next) = self.asm_resync(&mut batch, boundary, ap).await? {
                                replica = next;
                                continue;
                            }
                        }
                        if let Some(follow) = self.shard.as_mut().filter(|f| f.check_due()) {
                            // A quiet cluster shard: is its node still the one to read?
                            if let Some(next) = follow.relink(replica.position(), 0).await? {
                                replica = next;
                                self.origin = follow.origin();
                                ap.report.failovers_followed += 1;
                            }
                        }
                        self.publish_incr(&replica, &incr, ap, tracker);
                        let lag = replica.lag();
                        if self.once {
                            let quiet = lag.bytes() == 0 && ap.applied_offset >= lag.source_offset;
                            let quiet_for = paused_at.map_or(Duration::ZERO, |t| t.elapsed());
                            match once_at {
                                Some(at) if ap.applied_offset >= at => break StopReason::CaughtUp,
                                // The source's offset not reached while its stream is
                                // silent: bounded, and said in the report.
                                Some(at) if quiet && quiet_for >= ONCE_OFFSET_WAIT => {
                                    ap.report.warnings.push(format!("{}: the source reported replication offset {at} when the target got in sync, but its stream stopped at {} and stayed silent for {ONCE_OFFSET_WAIT:?}: ended as caught up with what it sent", self.origin, ap.applied_offset));
                                    break StopReason::CaughtUp;
                                }
                                None if quiet => break StopReason::CaughtUp,
                                _ => {}
                            }
                        }
                    }
                    continue;
                }
                Ok(None) => {
                    return Err(MigrationError::SourceEnded {
                        url: self.origin.clone(),
                    })
                }
                Ok(Some(Err(e))) => return Err(self.source_err(e)),
                Ok(Some(Ok(ev))) => {
                    paused_at = None;
                    ev
                }
            };
            let command = matches!(ev, ReplEvent::Command(_));
            match ev {
                ReplEvent::FullResync {
                    replid,
                    offset,
                    reason,
                } => {
                    // Commands before the new full sync were applied on the source: keep
                    // them, then load the new snapshot over them.
                    self.close_batch(&mut batch, boundary, ap).await?;
                    ap.flush().await?;
                    ap.report.replid = Some(replid.as_str().to_string());
                    ap.report.full_syncs += 1;
                    let heal = self.heal_next || full.is_some() || synced;
                    match reason {
                        FullResyncReason::PartialRefused { requested } => tracing::warn!(
                            target: "migrate",
                            "{} refused to resume at offset {} (its backlog no longer holds it): a new full sync heals the target",
                            self.origin, requested.offset
                        ),
                        FullResyncReason::Interrupted => tracing::warn!(
                            target: "migrate",
                            "the full sync from {} was interrupted: a new one heals the target",
                            self.origin
                        ),
                        _ => {}
                    }
                    tracing::info!(target: "migrate", "full sync from {} (offset {offset}){}", self.origin, if heal { ", healing: keys not in the new snapshot will be removed" } else { "" });
                    let exists = match full.take() {
                        Some(previous) => previous.into_exists(),
                        None => self.exists.take(),
                    };
                    let mut cfg = self.fs_config.clone();
                    if heal {
                        ap.report.healing_full_syncs += 1;
                        cfg.conflict = Conflict::Replace;
                    }
                    let mut fs = FullSync::new(cfg, exists);
                    if heal {
                        fs = fs.collect_keys();
                    }
                    full = Some(fs);
                    self.heal_next = true;
                    synced = false;
                    if let Some(follow) = self.shard.as_mut() {
                        follow.asm_full_sync().await;
                    }
                    ap.incremental = false;
                    ap.applied_offset = offset;
                    once_at = None;
                    pending_full = Some((replid, offset));
                    if let Some(ckpt) = &self.ckpt {
                        let point = replication_client::ResumePoint {
                            replid,
                            offset,
                            db: 0,
                        };
                        let seq = ap.next_seq();
                        ckpt.write(ap, CheckpointPhase::FullSync, point, seq)
                            .await?;
                    }
                    tracker.update(|p| {
                        p.phase = Phase::FullSync;
                        p.rdb_bytes = 0;
                        p.rdb_total = None;
                    });
                }
                ReplEvent::RdbStart(RdbTransfer::Sized { len }) => {
                    tracker.update(|p| p.rdb_total = Some(len));
                }
                ReplEvent::RdbChunk(chunk) => {
                    super::limit::take(&self.source_bytes, chunk.len() as u64).await;
                    if let Some(fs) = full.as_mut() {
                        fs.feed(&chunk, ap).await?;
                        if fs.offset() - last_progress >= PROGRESS_EVERY {
                            last_progress = fs.offset();
                            publish_full(tracker, fs, ap);
                        }
                    }
                }
                ReplEvent::RdbEnd { len } => {
                    if let Some(fs) = full.as_mut() {
                        fs.finish()?;
                        ap.flush().await?;
                        ap.report.rdb_bytes = len;
                        publish_full(tracker, fs, ap);
                        if let Some(keys) = fs.take_keys() {
                            let unlink = self.version.has_unlink();
                            if let Some(follow) = self.shard.as_mut() {
                                follow.refresh_slots().await;
                            }
                            let slots = self.shard.as_ref().map(|f| &f.slots[..]);
                            let mut removed = 0;
                            // Every master of a cluster target, else the target.
                            for cfg in &super::cluster_sink::scan_targets(ap, &self.target) {
                                let mut scan = conn::connect(cfg, self.connect_timeout).await?;
                                removed += super::sweep::sweep(
                                    &mut scan,
                                    &keys,
                                    &self.filter,
                                    slots,
                                    unlink,
                                    ap,
                                )
                                .await?;
                            }
                            ap.report.keys_swept += removed;
                            tracing::info!(target: "migrate", "healing full sync: {removed} stale keys removed ({} keys in the snapshot)", keys.len());
                        }
                        if let Some(follow) = self.shard.as_mut() {
                            follow.asm_healed();
                        }
                    }
                    if let (Some(ckpt), Some((replid, offset))) = (&self.ckpt, pending_full.take())
                    {
                        let point = replication_client::ResumePoint {
                            replid,
                            offset,
                            db: 0,
                        };
                        ckpt.write(ap, CheckpointPhase::Incremental, point, offset)
                            .await?;
                        ap.report.checkpoint_offset = Some(offset);
                        ap.flush().await?;
                    }
                    synced = true;
                    ap.incremental = true;
                    once_at = self.once_offset().await;
                    if let Some(follow) = self.shard.as_mut() {
                        follow.asm_synced(true);
                    }
                    // The next bounded full sync may start.
                    self.permit = None;
                    tracing::info!(target: "migrate", "full sync done ({} keys); forwarding writes", ap.report.keys_written());
                    tracker.update(|p| p.phase = Phase::Incremental);
                }
                ReplEvent::Command(cmd) => {
                    if self.source_bytes.is_some() {
                        let n: usize = cmd.args.iter().map(|a| a.len() + 16).sum();
                        super::limit::take(&self.source_bytes, n as u64).await;
                    }
                    if self.ckpt.is_some() && batch.is_none() {
                        ap.multi()?;
                        batch = Some(Batch {
                            commands: 0,
                            opened: std::time::Instant::now(),
                        });
                    }
                    // A cluster shard leaves some commands out (keys moved to another
                    // shard; function libraries, which the first shard carries); the
                    // position still moves past them below.
                    let cmd = match self.shard.as_mut() {
                        Some(follow) => follow.screen(cmd).await.filter(|c| {
                            follow.functions || !c.name().eq_ignore_ascii_case(b"FUNCTION")
                        }),
                        None => Some(cmd),
                    };
                    if cmd.is_none() {
                        if let Some(step) = self.shard.as_mut().and_then(|f| f.take_asm_step()) {
                            self.asm_step(step, &incr, &mut batch, boundary, ap).await?;
                        }
                    }
                    let cmd = match cmd {
                        Some(c) if self.shard.is_some() && is_flush(c.name()) => {
                            self.flush_shard(&c, &incr, &mut batch, boundary, ap)
                                .await?;
                            None
                        }
                        other => other,
                    };
                    if let Some(cmd) = cmd {
                        // The common command is queued without a future.
                        if let Some(left) = incr.command_now(cmd, ap)? {
                            incr.send(left, ap).await?;
                        }
                        if let Some(b) = batch.as_mut() {
                            b.commands += 1;
                        }
                    }
                }
                ReplEvent::PartialResync { offset, .. } => {
                    ap.report.partial_resyncs += 1;
                    if !synced && full.is_none() {
                        // Resumed from the target's checkpoint: the stream continues.
                        synced = true;
                        if let Some(follow) = self.shard.as_mut() {
                            follow.asm_synced(true);
                        }
                        ap.incremental = true;
                        ap.applied_offset = offset;
                        once_at = self.once_offset().await;
                        tracker.update(|p| p.phase = Phase::Incremental);
                        tracing::info!(target: "migrate", "resumed replication at offset {offset}: no full sync");
                    } else {
                        tracing::info!(target: "migrate", "replication resumed at offset {offset}");
                    }
                }
                ReplEvent::Disconnected {
                    error,
                    attempt,
                    retry_in,
                } => {
                    ap.report.disconnects += 1;
                    tracing::warn!(target: "migrate", "source link {} failed ({error}); attempt {attempt}, retry in {retry_in:?}", self.origin);
                    if let Some(follow) = self.shard.as_mut() {
                        // A cluster shard: its node may have been replaced (a failover).
                        if let Some(next) = follow.relink(replica.position(), attempt).await? {
                            replica = next;
                            self.origin = follow.origin();
                            ap.report.failovers_followed += 1;
                        }
                    }
                }
                _ => {}
            }
            if synced && !incr.in_transaction() {
                boundary = replica.position();
                if batch
                    .as_ref()
                    .is_some_and(|b| b.commands >= MAX_BATCH_COMMANDS)
                {
                    self.close_batch(&mut batch, boundary, ap).await?;
                }
            }
            if synced {
                unpublished += 1;
                if !command || unpublished >= PUBLISH_EVERY {
                    unpublished = 0;
                    self.publish_incr(&replica, &incr, ap, tracker);
                }
            }
            if let Some(follow) = self.shard.as_mut() {
                // What the target confirmed (outcomes of whole batches).
                follow.landed(ap.applied_offset);
            }
            if synced && !incr.in_transaction() && self.asm_resync_due() {
                if let Some(next) = self.asm_resync(&mut batch, boundary, ap).await? {
                    replica = next;
                }
            }
            // `once` under a steady stream (never quiet): caught up when what the source
            // had written when the target got in sync is applied (the open batch, with
            // what came after, is applied and checkpointed below).
            if synced && !incr.in_transaction() && once_at.is_some_and(|at| ap.applied_offset >= at)
            {
                break StopReason::CaughtUp;
            }
        };
        if reason == StopReason::Stopped {
            tracker.update(|p| p.phase = Phase::Stopping);
        }
        // A source transaction still open is not in the batch: the checkpoint stays before
        // it, so a restart replays it whole.
        self.close_batch(&mut batch, boundary, ap).await?;
        ap.flush().await?;
        self.publish_incr(&replica, &incr, ap, tracker);
        if let Some(f) = &self.shard {
            if f.superseded > 0 {
                ap.report.warnings.push(format!("shard {}: {} replicated command(s) on keys that moved to another shard (slots resharded on the source) were left out: the move's RESTORE carries their effect", f.id, f.superseded));
            }
            ap.report.asm_commands_left_out = f.asm.left_out;
            ap.report.asm_unconfirmed = f.asm.unconfirmed;
            if f.asm.left_out > 0 {
                tracing::info!(target: "migrate", "shard {}: {} replicated command(s) on slots moved by atomic slot migrations were left out (the imports carry them)", f.id, f.asm.left_out);
            }
            if f.unconfirmed_moves > 0 {
                ap.report.warnings.push(format!("shard {}: {} key(s) moved in from another shard were restored before that shard's DEL of them was confirmed on the target; check them with `redis-migrate verify`", f.id, f.unconfirmed_moves));
            }
        }
        let lag = replica.lag();
        ap.report.source_offset = Some(lag.source_offset);
        ap.report.applied_offset = synced.then_some(ap.applied_offset);
        if !synced {
            ap.report.source_offset = None;
        }
        Ok(reason)
    }

    /// `FLUSHALL`/`FLUSHDB` on a cluster shard: the target holds every shard's keys, so
    /// only the keys of this shard's slots are removed (a sweep through the applier, after
    /// everything before the command is applied and checkpointed; replayed whole after a
    /// crash). Inside a source transaction it cannot be split off: reported as unsupported.
    async fn flush_shard(
        &mut self,
        cmd: &replication_client::Command,
        incr: &Incremental,
        batch: &mut Option<Batch>,
        boundary: Option<replication_client::ResumePoint>,
        ap: &mut Applier,
    ) -> Result<(), MigrationError> {
        let name = String::from_utf8_lossy(cmd.name()).to_ascii_uppercase();
        if incr.in_transaction() {
            return ap.unsupported(
                name,
                None,
                "inside a transaction of a cluster source's shard: only that shard's keys may be removed from the shared target, which cannot be done inside the transaction".into(),
            );
        }
        self.close_batch(batch, boundary, ap).await?;
        ap.flush().await?;
        let Some(follow) = self.shard.as_mut() else {
            return Ok(());
        };
        follow.refresh_slots().await;
        let slots = follow.slots.clone();
        let removed = self.clear_slots(&slots, ap).await?;
        let Some(follow) = self.shard.as_ref() else {
            return Ok(());
        };
        ap.report.commands_applied += 1;
        tracing::info!(target: "migrate", "shard {}: {name} on the source: the {removed} keys of its slots removed from the target", follow.id);
        Ok(())
    }

    /// A step of an atomic slot migration into this shard (see `shards::fence`): at
    /// `ESTABLISH` everything before it is applied and checkpointed, the fence recorded and
    /// confirmed, and the slots' keys removed from the target (the import rebuilds them);
    /// at `FINISH` the outcome is recorded after everything before it.
    async fn asm_step(
        &mut self,
        step: super::shards::AsmStep,
        incr: &Incremental,
        batch: &mut Option<Batch>,
        boundary: Option<replication_client::ResumePoint>,
        ap: &mut Applier,
    ) -> Result<(), MigrationError> {
        if incr.in_transaction() {
            // Markers never come inside a source transaction; nothing to split off.
            return Ok(());
        }
        self.close_batch(batch, boundary, ap).await?;
        ap.flush().await?;
        let Some(follow) = self.shard.as_mut() else {
            return Ok(());
        };
        match step {
            super::shards::AsmStep::Establish {
                name,
                source,
                slots,
                offset,
            } => {
                if !follow
                    .asm_establish(&name, &source, slots.clone(), offset, ap)
                    .await?
                {
                    return Ok(());
                }
                let id = follow.id.clone();
                let removed = self.clear_slots(&slots, ap).await?;
                tracing::info!(target: "migrate", "shard {id}: atomic slot migration {name}: the {removed} keys of slots {} removed from the target; the import rebuilds them", super::shards::slots_text(&slots));
            }
            super::shards::AsmStep::Finish {
                name,
                state,
                offset,
            } => {
                follow.asm_finish(&name, state, offset, ap).await?;
            }
        }
        Ok(())
    }

    /// Removes every key of `slots` (in the migration's scope) from the target, through
    /// the applier (in order with the stream); how many.
    async fn clear_slots(
        &self,
        slots: &[std::ops::RangeInclusive<u16>],
        ap: &mut Applier,
    ) -> Result<u64, MigrationError> {
        let keys = super::sweep::KeySet::default();
        let unlink = self.version.has_unlink();
        let mut removed = 0;
        for cfg in &super::cluster_sink::scan_targets(ap, &self.target) {
            let mut scan = conn::connect(cfg, self.connect_timeout).await?;
            removed += super::sweep::sweep(&mut scan, &keys, &self.filter, Some(slots), unlink, ap)
                .await?;
        }
        Ok(removed)
    }

    /// Whether a failed import out of this shard asks for [`Live::asm_resync`] now (it is
    /// asked after every command, so the future is only built when it has work; the heal
    /// counts as started once this answered `true`).
    fn asm_resync_due(&mut self) -> bool {
        self.shard.as_mut().is_some_and(|f| f.asm_heal_due())
    }

    /// A failed atomic slot migration out of this shard asks for a re-sync (after
    /// [`Live::asm_resync_due`]): everything before is applied, then a new link without a
    /// resume point (a healing full sync).
    async fn asm_resync(
        &mut self,
        batch: &mut Option<Batch>,
        boundary: Option<replication_client::ResumePoint>,
        ap: &mut Applier,
    ) -> Result<Option<Replica>, MigrationError> {
        self.close_batch(batch, boundary, ap).await?;
        ap.flush().await?;
        let Some(follow) = self.shard.as_mut() else {
            return Ok(None);
        };
        match follow.fresh_link().await {
            Some(r) => Ok(Some(r)),
            None => {
                follow.asm_heal_retry();
                Ok(None)
            }
        }
    }

    fn publish_incr(
        &self,
        replica: &Replica,
        incr: &Incremental,
        ap: &mut Applier,
        tracker: &Tracker,
    ) {
        let lag = replica.lag();
        if ap.is_idle() && !incr.in_transaction() {
            // Nothing in flight: everything received is applied (including offsets
            // advanced by PING/REPLCONF, which carry no command).
            ap.applied_offset = ap.applied_offset.max(lag.processed_offset);
        }
        let applied = ap.applied_offset;
        let commands = ap.report.commands_applied;
        let report = &ap.report;
        tracker.update(|p| {
            p.source_offset = lag.source_offset;
            p.applied_offset = applied;
            p.lag_bytes = lag.source_offset.saturating_sub(applied);
            p.commands_applied = commands;
            p.checkpoint_offset = report.checkpoint_offset;
            publish_counts(p, report);
        });
    }
}

/// `FLUSHALL` or `FLUSHDB`.
fn is_flush(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"FLUSHALL") || name.eq_ignore_ascii_case(b"FLUSHDB")
}
