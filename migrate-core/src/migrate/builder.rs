//! [`Migration::builder`], [`MigrationBuilder`] and the running [`MigrationHandle`].

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::options::Settings;
use super::progress::Tracker;
use super::run::{run, Job};
use super::{
    Conflict, ErrorPolicy, MigrationError, Progress, Report, Source, TargetConfig, WriteMode,
};
use crate::rewrite::RewriteOptions;
use crate::{Filter, WriterOptions};

/// Entry point: [`Migration::builder`].
#[derive(Debug)]
pub struct Migration(());

impl Migration {
    /// A builder with the defaults: [`WriteMode::Auto`], [`Conflict::Refuse`],
    /// [`ErrorPolicy::Stop`], no filter, not `once`.
    pub fn builder() -> MigrationBuilder {
        MigrationBuilder {
            source: None,
            target: None,
            settings: Settings::default(),
        }
    }
}

/// Configures a migration; [`start`](MigrationBuilder::start) runs it.
#[derive(Debug)]
#[must_use]
pub struct MigrationBuilder {
    source: Option<Source>,
    target: Option<TargetConfig>,
    settings: Settings,
}

impl MigrationBuilder {
    /// Where the data comes from.
    pub fn source(mut self, source: Source) -> Self {
        self.source = Some(source);
        self
    }

    /// Where it goes.
    pub fn target(mut self, target: TargetConfig) -> Self {
        self.target = Some(target);
        self
    }

    /// Which dbs and keys are copied, and db mapping (default: everything, same db).
    /// Multi-key commands of the incremental phase are treated as the
    /// [`Translator`](crate::command::Translator) documents: forwarded when all their keys
    /// pass, dropped when none do, narrowed for `DEL`/`UNLINK`/`MSET`..., reported as
    /// unsupported otherwise.
    pub fn filter(mut self, filter: Filter) -> Self {
        self.settings.filter = filter;
        self
    }

    /// How full-sync keys are written (default [`WriteMode::Auto`]).
    pub fn write_mode(mut self, mode: WriteMode) -> Self {
        self.settings.write_mode = mode;
        self
    }

    /// Keys that exist on the target (default [`Conflict::Refuse`]).
    pub fn on_conflict(mut self, conflict: Conflict) -> Self {
        self.settings.conflict = conflict;
        self
    }

    /// Failed writes and unsupported commands (default [`ErrorPolicy::Stop`]).
    pub fn on_error(mut self, policy: ErrorPolicy) -> Self {
        self.settings.on_error = policy;
        self
    }

    /// For a live source: stop by itself once the full sync is done and the target has
    /// caught up: everything up to the source's replication offset of that moment (its
    /// `master_repl_offset`, read then on a side connection) is applied, also while the
    /// source keeps being written. A source whose `INFO replication` does not tell: every
    /// byte of the stream received so far is applied, nothing is in flight, and the source
    /// sent nothing for 200 ms.
    pub fn once(mut self, once: bool) -> Self {
        self.settings.once = once;
        self
    }

    /// Keys whose serialized value is larger than this are written as commands in chunks
    /// instead of one `RESTORE` (default [`DEFAULT_BIG_KEY_BYTES`](super::DEFAULT_BIG_KEY_BYTES),
    /// always kept below the target's `proto-max-bulk-len`).
    pub fn big_key_bytes(mut self, bytes: usize) -> Self {
        self.settings.big_key_bytes = bytes.max(1);
        self
    }

    /// The writer's window and limits (default: [`Target::writer_options`](crate::Target::writer_options)).
    pub fn writer_options(mut self, options: WriterOptions) -> Self {
        self.settings.writer = Some(options);
        self
    }

    /// Chunking of keys written as commands (default [`RewriteOptions::default`]; its
    /// `replace` is set from the conflict policy).
    pub fn rewrite_options(mut self, options: RewriteOptions) -> Self {
        self.settings.rewrite = options;
        self
    }

    /// Keep a checkpoint on the target, written atomically with the data (default on): a
    /// migration started again after any stop resumes exactly where the target's data
    /// stands, with each replicated write applied once. See the module docs, "Resume".
    pub fn checkpoint(mut self, on: bool) -> Self {
        self.settings.checkpoint = on;
        self
    }

    /// Removes the target's checkpoint before starting, so the migration starts over (the
    /// target's keys stay: choose a conflict policy for them). For a checkpoint that
    /// belongs to another source or other settings.
    pub fn reset_checkpoint(mut self, reset: bool) -> Self {
        self.settings.reset_checkpoint = reset;
        self
    }

    /// Learn which RDB type bytes the target `RESTORE`s by trying the first key of each
    /// (into a scratch key under the reserved prefix, removed at once) instead of trusting
    /// the version tables; a type it refuses is written as commands from then on. The
    /// result is in [`Report::restore_probe`](super::Report::restore_probe). Default: on for
    /// servers the tables do not know (KeyDB, Dragonfly, a hidden or unknown version), off
    /// for Redis and Valkey.
    pub fn probe_restore(mut self, on: bool) -> Self {
        self.settings.probe_restore = Some(on);
        self
    }

    /// Bound on connecting to the target and on its handshake (default 10 s). The source's
    /// is set in its [`replication_client::Config`].
    pub fn connect_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.settings.connect_timeout = timeout;
        self
    }

    /// How a live source is read (default [`SourceMode::Psync`](super::SourceMode::Psync);
    /// [`SourceMode::Auto`](super::SourceMode::Auto) falls back to scan mode when the source
    /// refuses replication). See [`scan`](super::scan).
    pub fn source_mode(mut self, mode: super::SourceMode) -> Self {
        self.settings.source_mode = mode;
        self
    }

    /// Scan mode's settings (default [`ScanOptions::default`](super::ScanOptions::default)).
    pub fn scan_options(mut self, options: super::ScanOptions) -> Self {
        self.settings.scan = options;
        self
    }

    /// Caps on the load put on the source and the target (default none); see [`Limits`](super::Limits).
    pub fn limits(mut self, limits: super::Limits) -> Self {
        self.settings.limits = limits;
        self
    }

    /// A cluster source: at most this many shards run their first full sync at the same
    /// time (each forks its master and holds an RDB in flight; default 2, at least 1). A
    /// shard without a checkpoint waits for a slot before its `PSYNC`.
    pub fn max_concurrent_full_syncs(mut self, n: usize) -> Self {
        self.settings.max_full_syncs = n.max(1);
        self
    }

    /// A cluster source: read each shard from one of its replicas (a healthy one, else its
    /// master) to spare the masters the fork and the stream (default off).
    pub fn prefer_replica(mut self, on: bool) -> Self {
        self.settings.prefer_replica = on;
        self
    }

    /// A cluster source: migrate only these shards (default: all). Several processes or
    /// machines can split one cluster this way, each with its own checkpoints on the shared
    /// target; see [`ShardSpec`](super::ShardSpec).
    pub fn shards(mut self, shards: Vec<super::ShardSpec>) -> Self {
        self.settings.shards = shards;
        self
    }

    /// A cluster source: how often the topology is read again to start links for new
    /// shards, and how often a quiet link checks that its node still serves its shard
    /// (default 10 s; zero turns both off; a failed link always asks).
    pub fn rediscover_every(mut self, every: std::time::Duration) -> Self {
        self.settings.rediscover_every = every;
        self
    }

    /// A cluster source whose slots are resharded while it runs: how long a key moved in
    /// by `MIGRATE` (`RESTORE-ASKING` in the new owner's stream) waits, before it is
    /// restored on the target, for the old owner's stream (its `DEL` of the key and every
    /// earlier write to it) to be applied there: by this process, or by another one (or
    /// an earlier run), seen in its checkpoint on the target (default 60 s). After that the
    /// key is restored anyway, counted and warned about (`redis-migrate verify` checks it).
    /// The same bound holds for a Valkey 9 atomic slot migration's import waiting for the
    /// old owner's link to confirm it leaves the slots out (then counted in
    /// [`Report::asm_unconfirmed`](super::Report::asm_unconfirmed)).
    pub fn move_wait(mut self, limit: std::time::Duration) -> Self {
        self.settings.move_wait = limit;
        self
    }

    /// What a source transaction or script writing keys in several slots of a cluster
    /// target does (default [`CrossSlot::Apply`](super::CrossSlot::Apply): command by
    /// command, counted). Standalone targets are not concerned.
    pub fn cross_slot(mut self, mode: super::CrossSlot) -> Self {
        self.settings.cross_slot = mode;
        self
    }

    /// Test-only fault: with a cluster target and checkpoints, the migration stops with an
    /// error right after `n` copy-back transactions of cross-slot commands or per-master
    /// transactions of keyless commands (as if it crashed between two of them).
    #[doc(hidden)]
    pub fn crash_after_copy_backs(mut self, n: u32) -> Self {
        self.settings.crash_after_copy_backs = Some(n);
        self
    }

    /// Starts the migration on the current tokio runtime.
    ///
    /// Configuration errors (no source or target) are returned by
    /// [`MigrationHandle::wait`].
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn start(self) -> MigrationHandle {
        let tracker = Arc::new(Tracker::new());
        let (stop_tx, stop_rx) = watch::channel(false);
        let job = match (self.source, self.target) {
            (Some(source), Some(target)) => Ok(Job {
                source,
                target,
                settings: self.settings,
            }),
            (None, _) => Err(MigrationError::Config("no source given".into())),
            (_, None) => Err(MigrationError::Config("no target given".into())),
        };
        let t = tracker.clone();
        let task = tokio::spawn(async move {
            match job {
                Ok(job) => run(job, t, stop_rx).await,
                Err(e) => (Report::default(), Err(e)),
            }
        });
        MigrationHandle {
            tracker,
            stop: stop_tx,
            task,
        }
    }
}

/// A running migration: watch it, stop it, wait for its report.
#[derive(Debug)]
pub struct MigrationHandle {
    tracker: Arc<Tracker>,
    stop: watch::Sender<bool>,
    task: JoinHandle<(Report, Result<(), MigrationError>)>,
}

/// Reads a migration's progress from anywhere (a metrics endpoint, a UI task) while the
/// [`MigrationHandle`] is waited on elsewhere. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ProgressWatcher {
    tracker: Arc<Tracker>,
}

impl ProgressWatcher {
    /// A snapshot of the progress.
    pub fn progress(&self) -> Progress {
        self.tracker.snapshot()
    }
}

impl MigrationHandle {
    /// A snapshot of the progress.
    pub fn progress(&self) -> Progress {
        self.tracker.snapshot()
    }

    /// A [`ProgressWatcher`] for this migration.
    pub fn watcher(&self) -> ProgressWatcher {
        ProgressWatcher {
            tracker: self.tracker.clone(),
        }
    }

    /// Asks for a graceful stop: no more reading from the source, writes in flight are
    /// drained and checked, then the task ends with its report
    /// ([`StopReason::Stopped`](super::StopReason::Stopped)).
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Whether the task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for the end: the report, or the error that ended the migration.
    ///
    /// # Errors
    /// Whatever stopped it; use [`finish`](Self::finish) to get the report as well.
    pub async fn wait(self) -> Result<Report, MigrationError> {
        let (report, result) = self.finish().await;
        result.map(|()| report)
    }

    /// Waits for the end and returns the report (also on failure: it then holds the
    /// error in [`Report::error`]) with the result.
    pub async fn finish(self) -> (Report, Result<(), MigrationError>) {
        match self.task.await {
            Ok(r) => r,
            Err(e) => {
                let err = MigrationError::Internal(e.to_string());
                let report = Report {
                    error: Some(err.to_string()),
                    stop_reason: super::StopReason::Failed,
                    ..Report::default()
                };
                (report, Err(err))
            }
        }
    }
}
