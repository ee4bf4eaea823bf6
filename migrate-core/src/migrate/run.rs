//! The migration task: connect, check, then drive the source into the target.

use std::sync::Arc;
use std::time::Duration;

use replication_client::{Event as ReplEvent, FullResyncReason, RdbMode, RdbTransfer, Replica};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

use super::apply::Applier;
use super::conn;
use super::fullsync::{FullSync, FullSyncConfig};
use super::incremental::Incremental;
use super::options::Settings;
use super::preflight;
use super::progress::{Phase, Tracker};
use super::report::{Report, StopReason};
use super::{Conflict, MigrationError, Source, TargetConfig};

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
    if s.conflict == Conflict::Refuse {
        // Every db the filter can write to (source dbs 0..=255 covers any mapping).
        let dbs = s.filter.target_dbs(0..256);
        let busy = target
            .keyspace()
            .await
            .map_err(|source| MigrationError::Target {
                url: url.clone(),
                source: Box::new(source),
            })?
            .non_empty(dbs);
        if !busy.is_empty() {
            return Err(MigrationError::TargetNotEmpty { url, dbs: busy });
        }
    }
    let pre = preflight::run(
        &job.source,
        &mut target,
        &url,
        s.conflict,
        s.on_error,
        s.connect_timeout,
        report,
    )
    .await?;
    let exists = if s.conflict == Conflict::Skip && s.write_mode != super::WriteMode::Restore {
        Some(conn::connect(&job.target, s.connect_timeout).await?)
    } else {
        None
    };
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
    let fs_config = |origin: String| FullSyncConfig {
        origin,
        version,
        filter: s.filter.clone(),
        mode: s.write_mode,
        conflict: s.conflict,
        // Always below proto-max-bulk-len (with room for RESTORE's other arguments).
        big_key_bytes: s.big_key_bytes.min(max_bulk.saturating_sub(64) as usize),
        max_bulk_len: max_bulk,
        rewrite: s.rewrite.clone(),
        target_modules: pre.target_modules.clone(),
        existing_functions: pre.existing_functions.clone(),
    };
    match &job.source {
        Source::RdbFile(path) => {
            let fs = FullSync::new(fs_config(path.display().to_string()), exists);
            import_file(path, fs, ap, tracker, stop).await
        }
        Source::Live(config) => {
            let origin = config.url().to_string();
            let config = config.clone().rdb_mode(RdbMode::Raw);
            let live = Live {
                origin: origin.clone(),
                fs_config: fs_config(origin),
                exists,
                once: s.once,
                idle_check: s.idle_check,
                version,
                filter: s.filter.clone(),
            };
            live.run(config, ap, tracker, stop).await
        }
    }
}

async fn import_file(
    path: &std::path::Path,
    mut fs: FullSync,
    ap: &mut Applier,
    tracker: &Tracker,
    stop: &mut watch::Receiver<bool>,
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
    ap.flush().await?;
    ap.report.rdb_bytes = fs.offset();
    publish_full(tracker, &fs, ap);
    Ok(StopReason::Completed)
}

fn publish_full(tracker: &Tracker, fs: &FullSync, ap: &Applier) {
    let written = ap.report.keys_written();
    let failures = ap.report.failures_total;
    tracker.update(|p| {
        p.rdb_bytes = fs.offset();
        p.keys_written = written;
        p.keys_skipped = fs.keys_skipped;
        p.failures = failures;
    });
}

struct Live {
    origin: String,
    fs_config: FullSyncConfig,
    exists: Option<crate::Target<conn::Stream>>,
    once: bool,
    idle_check: Duration,
    version: crate::ServerVersion,
    filter: crate::Filter,
}

impl Live {
    fn source_err(&self, e: replication_client::Error) -> MigrationError {
        MigrationError::Source {
            url: self.origin.clone(),
            source: Arc::new(e),
        }
    }

    async fn run(
        mut self,
        config: replication_client::Config,
        ap: &mut Applier,
        tracker: &Tracker,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<StopReason, MigrationError> {
        tracing::info!(target: "migrate", "connecting to the source {} (PSYNC)", self.origin);
        let mut replica = Replica::connect(config)
            .await
            .map_err(|e| self.source_err(e))?;
        let mut full: Option<FullSync> = None;
        let mut synced = false;
        let modules = self
            .fs_config
            .target_modules
            .as_deref()
            .map(<[String]>::to_vec);
        let mut incr = Incremental::new(self.version, self.filter.clone(), modules);
        let mut last_progress = 0u64;
        let reason = loop {
            let idle = self.idle_check;
            let ev = tokio::select! {
                biased;
                _ = stop.changed() => break StopReason::Stopped,
                ev = tokio::time::timeout(idle, replica.recv()) => ev,
            };
            let ev = match ev {
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
                    ap.report.replid = Some(replid.as_str().to_string());
                    match reason {
                        FullResyncReason::PartialRefused { requested } => {
                            return Err(MigrationError::ResyncRefused {
                                url: self.origin.clone(),
                                offset: requested.offset,
                            });
                        }
                        FullResyncReason::Interrupted => {
                            let keys = full.as_ref().map_or(0, |f| f.keys_sent);
                            if keys > 0 {
                                return Err(MigrationError::FullSyncInterrupted {
                                    url: self.origin.clone(),
                                    keys,
                                });
                            }
                        }
                        _ => {}
                    }
                    tracing::info!(target: "migrate", "full sync from {} (offset {offset})", self.origin);
                    let exists = match full.take() {
                        Some(previous) => previous.into_exists(),
                        None => self.exists.take(),
                    };
                    full = Some(FullSync::new(self.fs_config.clone(), exists));
                    ap.applied_offset = offset;
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
                    if let Some(fs) = full.as_mut() {
                        fs.feed(&chunk, ap).await?;
                        if fs.offset() - last_progress >= PROGRESS_EVERY {
                            last_progress = fs.offset();
                            publish_full(tracker, fs, ap);
                        }
                    }
                }
                ReplEvent::RdbEnd { len } => {
                    if let Some(fs) = full.as_ref() {
                        fs.finish()?;
                        ap.flush().await?;
                        ap.report.rdb_bytes = len;
                        publish_full(tracker, fs, ap);
                    }
                    synced = true;
                    ap.incremental = true;
                    tracing::info!(target: "migrate", "full sync done ({} keys); forwarding writes", ap.report.keys_written());
                    tracker.update(|p| p.phase = Phase::Incremental);
                }
                ReplEvent::Command(cmd) => {
                    incr.command(cmd, ap).await?;
                }
                ReplEvent::PartialResync { offset, .. } => {
                    ap.report.partial_resyncs += 1;
                    tracing::info!(target: "migrate", "replication resumed at offset {offset}");
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
            if synced {
                self.publish_incr(&replica, &incr, ap, tracker);
            }
        };
        if reason == StopReason::Stopped {
            tracker.update(|p| p.phase = Phase::Stopping);
        }
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
        let failures = ap.report.failures_total;
        tracker.update(|p| {
            p.source_offset = lag.source_offset;
            p.applied_offset = applied;
            p.lag_bytes = lag.source_offset.saturating_sub(applied);
            p.commands_applied = commands;
            p.failures = failures;
        });
    }
}
