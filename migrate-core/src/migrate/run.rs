//! The migration task: connect, check, then drive the source into the target.

use std::sync::Arc;
use std::time::Duration;

use replication_client::{Event as ReplEvent, FullResyncReason, RdbMode, RdbTransfer, Replica};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

use super::apply::Applier;
use super::checkpoint::{self, Checkpoint, CheckpointPhase, CHECKPOINT_KEY};
use super::conn;
use super::fullsync::{FullSync, FullSyncConfig};
use super::incremental::Incremental;
use super::options::Settings;
use super::preflight;
use super::progress::{Phase, Tracker};
use super::report::{Report, StopReason};
use super::{scan, Conflict, MigrationError, Source, SourceMode, TargetConfig};
use crate::ServerFamily;

fn config_url(job: &Job) -> replication_client::RedisUrl {
    match &job.source {
        Source::Live(c) => c.url().clone(),
        Source::RdbFile(_) => unreachable!("scan mode reads live sources only"),
    }
}

/// Reads of the RDB file.
const FILE_CHUNK: usize = 256 << 10;
/// Progress updates during the full sync: every this many RDB bytes.
const PROGRESS_EVERY: u64 = 256 << 10;

pub(crate) struct Job {
    pub(crate) source: Source,
    pub(crate) target: TargetConfig,
    pub(crate) settings: Settings,
}

/// Runs the job; the report is returned in both cases.
pub(crate) async fn run(
    job: Job,
    tracker: Arc<Tracker>,
    mut stop: watch::Receiver<bool>,
) -> (Report, Result<(), MigrationError>) {
    let mut report = Report {
        source: match &job.source {
            Source::RdbFile(p) => p.display().to_string(),
            Source::Live(c) => c.url().to_string(),
        },
        target: job.target.url.to_string(),
        ..Report::default()
    };
    let mut applier = None;
    let result = run_inner(&job, &tracker, &mut stop, &mut report, &mut applier).await;
    if let Some(ap) = applier {
        report = ap.report;
    }
    report.duration = tracker.elapsed();
    report.full_sync_duration = tracker.full_sync_took();
    match &result {
        Ok(reason) => report.stop_reason = *reason,
        Err(e) => {
            report.stop_reason = StopReason::Failed;
            report.error = Some(e.to_string());
        }
    }
    tracker.update(|p| p.phase = Phase::Done);
    (report, result.map(|_| ()))
}

async fn run_inner(
    job: &Job,
    tracker: &Tracker,
    stop: &mut watch::Receiver<bool>,
    report: &mut Report,
    slot: &mut Option<Applier>,
) -> Result<StopReason, MigrationError> {
    let s = &job.settings;
    let url = job.target.url.to_string();
    tracing::info!(target: "migrate", "connecting to the target {url}");
    let mut target = conn::connect(&job.target, s.connect_timeout).await?;
    let version = target.version();
    report.target_version = version.to_string();
    tracing::info!(target: "migrate", "target {url} is {version}");
    let terr = |source| MigrationError::Target {
        url: url.clone(),
        source: Box::new(source),
    };
    let source_addr = match &job.source {
        Source::RdbFile(p) => file_identity(p),
        Source::Live(c) => c.url().addr(),
    };
    let fingerprint = checkpoint::fingerprint(&source_addr, s);
    let resume = if s.reset_checkpoint {
        target.call(&["DEL", CHECKPOINT_KEY]).await.map_err(terr)?;
        tracing::info!(target: "migrate", "checkpoint removed: starting over");
        None
    } else if s.checkpoint {
        read_checkpoint(&mut target, &url, &fingerprint).await?
    } else {
        None
    };
    if let Some(c) = &resume {
        tracing::info!(target: "migrate", "resuming from the target's checkpoint: {c}");
        report.resumed_from = Some(c.to_string());
    }
    if s.conflict == Conflict::Refuse && resume.is_none() {
        // Every db the filter can write to (source dbs 0..=255 covers any mapping).
        let dbs = s.filter.target_dbs(0..256);
        let busy = target.keyspace().await.map_err(terr)?.non_empty(dbs);
        if !busy.is_empty() {
            return Err(MigrationError::TargetNotEmpty { url, dbs: busy });
        }
    }
    // A migration that resumes loads over its own earlier data.
    let conflict = if resume.is_some() {
        Conflict::Replace
    } else {
        s.conflict
    };
    let pre = preflight::run(
        &job.source,
        &mut target,
        &url,
        conflict,
        s.on_error,
        s.connect_timeout,
        report,
    )
    .await?;
    let exists = if conflict == Conflict::Skip && s.write_mode != super::WriteMode::Restore {
        Some(conn::connect(&job.target, s.connect_timeout).await?)
    } else {
        None
    };
    // The version tables know Redis and Valkey; any other server is asked.
    let probe = s.probe_restore.unwrap_or(
        !matches!(version.family, ServerFamily::Redis | ServerFamily::Valkey) || version.major == 0,
    );
    if probe {
        tracing::info!(target: "migrate", "probing which RDB types the target ({version}) restores");
    }
    let mut wopts = s.writer.clone().unwrap_or_else(|| target.writer_options());
    let max_bulk = wopts.max_bulk_len.min(target.proto_max_bulk_len());
    wopts = wopts.with_max_bulk_len(max_bulk);
    let writer = target.into_writer(wopts);
    let ap = slot.insert(Applier::new(
        writer,
        url.clone(),
        s.conflict,
        s.on_error,
        s.max_listed,
        std::mem::take(report),
    ));
    let buckets = super::limit::Buckets::new(&s.limits);
    ap.target_ops = buckets.target_ops.clone();
    let _ = tracker.buckets.set(buckets.clone());
    let fs_config = |origin: String| FullSyncConfig {
        origin,
        version,
        filter: s.filter.clone(),
        mode: s.write_mode,
        conflict,
        // Always below proto-max-bulk-len (with room for RESTORE's other arguments).
        big_key_bytes: s.big_key_bytes.min(max_bulk.saturating_sub(64) as usize),
        max_bulk_len: max_bulk,
        rewrite: s.rewrite.clone(),
        target_modules: pre.target_modules.clone(),
        existing_functions: pre.existing_functions.clone(),
        probe: probe.then(|| (job.target.clone(), s.connect_timeout)),
    };
    match &job.source {
        Source::RdbFile(path) => {
            ap.report.source_mode = "file".into();
            let fs = FullSync::new(fs_config(path.display().to_string()), exists);
            let ckpt = s.checkpoint.then(|| CheckpointWriter {
                fingerprint: fingerprint.clone(),
                source: path.display().to_string(),
            });
            import_file(path, fs, ap, tracker, stop, ckpt.as_ref()).await
        }
        Source::Live(config) => {
            let origin = config.url().to_string();
            let mut config = config.clone().rdb_mode(RdbMode::Raw);
            if let Some(c) = resume
                .as_ref()
                .filter(|c| c.phase == CheckpointPhase::Incremental)
            {
                config = config.resume_from(c.point);
            }
            let mut replica = None;
            let mut refused = None;
            if s.source_mode != SourceMode::Scan {
                tracing::info!(target: "migrate", "connecting to the source {origin} (PSYNC)");
                match Replica::connect(config).await {
                    Ok(r) => replica = Some(r),
                    Err(e) => match (s.source_mode, scan::refusal(&e)) {
                        (SourceMode::Auto, Some(reason)) => {
                            tracing::warn!(target: "migrate", "the source {origin} refuses replication ({reason}): continuing in scan mode (SCAN + DUMP, keyspace notifications)");
                            refused = Some(reason);
                        }
                        _ => {
                            return Err(MigrationError::Source {
                                url: origin,
                                source: Arc::new(e),
                            })
                        }
                    },
                }
            }
            let Some(replica) = replica else {
                ap.report.source_mode = "scan".into();
                ap.report.source_mode_reason = refused;
                let job = scan::ScanJob {
                    source: TargetConfig {
                        url: config_url(job),
                        tls: match &job.source {
                            Source::Live(c) => c.tls_options().clone(),
                            _ => Default::default(),
                        },
                    },
                    target: job.target.clone(),
                    fs_config: fs_config(origin),
                    timeout: s.connect_timeout,
                    once: s.once,
                    opts: s.scan.clone(),
                    buckets,
                };
                return scan::run(job, ap, tracker, stop).await;
            };
            ap.report.source_mode = "psync".into();
            let live = Live {
                source_bytes: buckets.source_bytes.clone(),
                ckpt: s.checkpoint.then(|| CheckpointWriter {
                    fingerprint: fingerprint.clone(),
                    source: origin.clone(),
                }),
                heal_next: resume.is_some(),
                target: job.target.clone(),
                connect_timeout: s.connect_timeout,
                origin: origin.clone(),
                fs_config: fs_config(origin),
                exists,
                once: s.once,
                idle_check: s.idle_check,
                version,
                filter: s.filter.clone(),
            };
            live.run(replica, ap, tracker, stop).await
        }
    }
}

async fn import_file(
    path: &std::path::Path,
    mut fs: FullSync,
    ap: &mut Applier,
    tracker: &Tracker,
    stop: &mut watch::Receiver<bool>,
    ckpt: Option<&CheckpointWriter>,
) -> Result<StopReason, MigrationError> {
    let file_err = |e: std::io::Error| MigrationError::File {
        path: path.to_path_buf(),
        source: Arc::new(e),
    };
    let mut file = tokio::fs::File::open(path).await.map_err(file_err)?;
    let total = file.metadata().await.map_err(file_err)?.len();
    tracing::info!(target: "migrate", "importing {} ({total} bytes)", path.display());
    tracker.update(|p| {
        p.phase = Phase::FullSync;
        p.rdb_total = Some(total);
    });
    if let Some(c) = ckpt {
        // A restarted import of this file replaces what the first attempt wrote.
        c.write_import(ap, CheckpointPhase::FullSync).await?;
    }
    let mut buf = vec![0u8; FILE_CHUNK];
    let mut last = 0;
    loop {
        if *stop.borrow() {
            tracker.update(|p| p.phase = Phase::Stopping);
            ap.flush().await?;
            publish_full(tracker, &fs, ap);
            return Ok(StopReason::Stopped);
        }
        let n = file.read(&mut buf).await.map_err(file_err)?;
        if n == 0 {
            break;
        }
        fs.feed(&buf[..n], ap).await?;
        if fs.offset() - last >= PROGRESS_EVERY {
            last = fs.offset();
            publish_full(tracker, &fs, ap);
        }
    }
    fs.finish()?;
    if ckpt.is_some() {
        // Complete: a later import (of this file or another) is a new one.
        let key = bytes::Bytes::from_static(CHECKPOINT_KEY.as_bytes());
        let tag = crate::Tag::new(Some(0), "DEL", ap.next_seq()).with_key(key.clone());
        ap.send(tag, &[bytes::Bytes::from_static(b"DEL"), key])
            .await?;
    }
    ap.flush().await?;
    ap.report.rdb_bytes = fs.offset();
    publish_full(tracker, &fs, ap);
    Ok(StopReason::Completed)
}

fn publish_full(tracker: &Tracker, fs: &FullSync, ap: &Applier) {
    let written = ap.report.keys_written();
    tracker.update(|p| {
        p.rdb_bytes = fs.offset();
        p.keys_written = written;
        p.keys_skipped = fs.keys_skipped();
        publish_counts(p, &ap.report);
    });
}

/// The report's running totals that the progress shows.
fn publish_counts(p: &mut super::Progress, r: &Report) {
    p.failures = r.failures_total;
    p.unsupported = r.unsupported_total;
    p.full_syncs = r.full_syncs;
    p.partial_resyncs = r.partial_resyncs;
    p.disconnects = r.disconnects;
}

/// Removes the target's checkpoint (see the module docs, "Resume"): the next migration
/// into it starts over. Returns whether there was one. The target's keys are not touched.
///
/// # Errors
/// Connecting to or authenticating with the target failed.
pub async fn forget_checkpoint(
    target: &TargetConfig,
    timeout: Duration,
) -> Result<bool, MigrationError> {
    let mut t = conn::connect(target, timeout).await?;
    let reply =
        t.call(&["DEL", CHECKPOINT_KEY])
            .await
            .map_err(|source| MigrationError::Target {
                url: target.url.to_string(),
                source: Box::new(source),
            })?;
    Ok(reply == resp_codec::Frame::Integer(1))
}

/// Reads the target's checkpoint: `None` when there is none; an error when it belongs to
/// another migration or cannot be read.
async fn read_checkpoint(
    target: &mut crate::Target<conn::Stream>,
    url: &str,
    fingerprint: &str,
) -> Result<Option<Checkpoint>, MigrationError> {
    let terr = |source| MigrationError::Target {
        url: url.to_string(),
        source: Box::new(source),
    };
    let reply = target.call(&["GET", CHECKPOINT_KEY]).await.map_err(terr)?;
    let value = match &reply {
        f if f.is_null() => return Ok(None),
        f if f.is_error() => {
            return Err(MigrationError::CheckpointUnreadable {
                url: url.to_string(),
                key: CHECKPOINT_KEY,
                reason: format!("{f:?}"),
            })
        }
        f => f.as_bytes().unwrap_or_default(),
    };
    let c = Checkpoint::parse(value).map_err(|reason| MigrationError::CheckpointUnreadable {
        url: url.to_string(),
        key: CHECKPOINT_KEY,
        reason,
    })?;
    if c.fingerprint != fingerprint {
        return Err(MigrationError::CheckpointMismatch {
            url: url.to_string(),
            found: c.to_string(),
        });
    }
    Ok(Some(c))
}

/// What names an RDB file for its import checkpoint: path, size and modification time.
pub(crate) fn file_identity(path: &std::path::Path) -> String {
    let meta = std::fs::metadata(path).ok();
    let size = meta.as_ref().map_or(0, |m| m.len());
    let mtime = meta
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis());
    format!("file:{}:{size}:{mtime}", path.display())
}

/// Writes the checkpoint through the applier, in order with the data.
struct CheckpointWriter {
    fingerprint: String,
    source: String,
}

/// A replication id for checkpoints of RDB file imports, which have none.
const NO_REPLID: &[u8; 40] = b"0000000000000000000000000000000000000000";

impl CheckpointWriter {
    async fn write(
        &self,
        ap: &mut Applier,
        phase: CheckpointPhase,
        point: replication_client::ResumePoint,
        seq: u64,
    ) -> Result<(), MigrationError> {
        let value = Checkpoint {
            phase,
            point,
            fingerprint: self.fingerprint.clone(),
            source: self.source.clone(),
        }
        .encode();
        let key = bytes::Bytes::from_static(CHECKPOINT_KEY.as_bytes());
        let tag = crate::Tag::new(Some(0), "SET", seq).with_key(key.clone());
        ap.send(
            tag,
            &[
                bytes::Bytes::from_static(b"SET"),
                key,
                bytes::Bytes::from(value),
            ],
        )
        .await
    }

    /// The import checkpoint: `FullSync` while it runs, `Incremental` (complete) after.
    async fn write_import(
        &self,
        ap: &mut Applier,
        phase: CheckpointPhase,
    ) -> Result<(), MigrationError> {
        let point = replication_client::ResumePoint {
            replid: replication_client::ReplId::from_bytes(NO_REPLID).expect("40 hex digits"),
            offset: 0,
            db: 0,
        };
        let seq = ap.next_seq();
        self.write(ap, phase, point, seq).await
    }
}

/// Replicated commands per checkpointed `MULTI`/`EXEC` batch at most.
const MAX_BATCH_COMMANDS: usize = 1000;
/// A batch of at least this many commands is applied as soon as the stream pauses; a
/// smaller one waits up to [`BATCH_LINGER`] for more, so that the `MULTI`/`SET`/`EXEC` of
/// the checkpoint stays a small share of the commands under a steady load, and a quiet
/// source is still applied within milliseconds.
const MIN_BATCH_COMMANDS: usize = 200;
/// How long a small batch waits for more commands.
const BATCH_LINGER: Duration = Duration::from_millis(2);

struct Live {
    /// [`super::Limits::max_bandwidth`]: the RDB and the stream are read no faster.
    source_bytes: Option<Arc<super::limit::Bucket>>,
    origin: String,
    fs_config: FullSyncConfig,
    exists: Option<crate::Target<conn::Stream>>,
    once: bool,
    idle_check: Duration,
    version: crate::ServerVersion,
    filter: crate::Filter,
    /// `None`: no checkpoint (`checkpoint(false)`).
    ckpt: Option<CheckpointWriter>,
    /// The next full sync heals (a checkpoint was found, or a full sync ran before).
    heal_next: bool,
    target: TargetConfig,
    connect_timeout: Duration,
}

/// The open checkpointed batch.
struct Batch {
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

    async fn run(
        mut self,
        mut replica: Replica,
        ap: &mut Applier,
        tracker: &Tracker,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<StopReason, MigrationError> {
        let mut full: Option<FullSync> = None;
        let mut pending_full: Option<(replication_client::ReplId, u64)> = None;
        let mut synced = false;
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
        let reason = loop {
            if *stop.borrow() {
                break StopReason::Stopped;
            }
            let ev = match replica.try_recv() {
                Some(ev) => Ok(Some(ev)),
                None => {
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
                        self.publish_incr(&replica, &incr, ap, tracker);
                        let lag = replica.lag();
                        if self.once && lag.bytes() == 0 && ap.applied_offset >= lag.source_offset {
                            break StopReason::CaughtUp;
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
                Ok(Some(Ok(ev))) => ev,
            };
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
                    ap.incremental = false;
                    ap.applied_offset = offset;
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
                            let mut scan =
                                conn::connect(&self.target, self.connect_timeout).await?;
                            let unlink = self.version.has_unlink();
                            let removed =
                                super::sweep::sweep(&mut scan, &keys, &self.filter, unlink, ap)
                                    .await?;
                            ap.report.keys_swept += removed;
                            tracing::info!(target: "migrate", "healing full sync: {removed} stale keys removed ({} keys in the snapshot)", keys.len());
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
                    incr.command(cmd, ap).await?;
                    if let Some(b) = batch.as_mut() {
                        b.commands += 1;
                    }
                }
                ReplEvent::PartialResync { offset, .. } => {
                    ap.report.partial_resyncs += 1;
                    if !synced && full.is_none() {
                        // Resumed from the target's checkpoint: the stream continues.
                        synced = true;
                        ap.incremental = true;
                        ap.applied_offset = offset;
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
                    tracing::warn!(target: "migrate", "source link failed ({error}); attempt {attempt}, retry in {retry_in:?}");
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
                self.publish_incr(&replica, &incr, ap, tracker);
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
        let lag = replica.lag();
        ap.report.source_offset = Some(lag.source_offset);
        ap.report.applied_offset = synced.then_some(ap.applied_offset);
        if !synced {
            ap.report.source_offset = None;
        }
        Ok(reason)
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
