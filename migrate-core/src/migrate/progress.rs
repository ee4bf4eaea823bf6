//! [`Progress`]: a snapshot of a running migration.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Where a migration is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Phase {
    /// Connecting to the target and the source, checking the target.
    #[default]
    Connecting,
    /// Copying the RDB (the file, or the source's full sync).
    FullSync,
    /// Forwarding the source's writes.
    Incremental,
    /// Stopping: writes in flight are being drained.
    Stopping,
    /// Finished (successfully or not).
    Done,
}

impl Phase {
    /// A short lower-case name (`full-sync`, `incremental`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Connecting => "connecting",
            Phase::FullSync => "full-sync",
            Phase::Incremental => "incremental",
            Phase::Stopping => "stopping",
            Phase::Done => "done",
        }
    }
}

/// A snapshot of a migration's progress ([`MigrationHandle::progress`](crate::migrate::MigrationHandle::progress)).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Progress {
    /// The phase.
    pub phase: Phase,
    /// Time since the start.
    pub elapsed: Duration,
    /// RDB bytes decoded.
    pub rdb_bytes: u64,
    /// RDB size when known (a file, a disk-based full sync; `None` for diskless).
    pub rdb_total: Option<u64>,
    /// Keys of the full sync written (sent and confirmed).
    pub keys_written: u64,
    /// Keys of the full sync skipped (expired, filtered, existing on the target).
    pub keys_skipped: u64,
    /// Failed writes so far.
    pub failures: u64,
    /// Full-sync RDB bytes per second (over the full sync so far).
    pub rdb_bytes_per_sec: f64,
    /// Full-sync keys per second.
    pub keys_per_sec: f64,
    /// Replicated commands applied by the incremental phase.
    pub commands_applied: u64,
    /// Bytes of the replication stream the source has sent that are not applied yet.
    pub lag_bytes: u64,
    /// How long the target has been behind the source (zero when caught up).
    pub lag_time: Duration,
    /// Source replication offset received.
    pub source_offset: u64,
    /// Source replication offset applied to the target.
    pub applied_offset: u64,
    /// Keys and commands that cannot be reproduced on the target, so far.
    pub unsupported: u64,
    /// Full syncs so far (healing ones included).
    pub full_syncs: u64,
    /// Partial resyncs so far (after link failures, or resuming from the checkpoint).
    pub partial_resyncs: u64,
    /// Replication link failures so far.
    pub disconnects: u64,
    /// The source offset of the last checkpoint written to the target.
    pub checkpoint_offset: Option<u64>,
    /// Scan mode: its counts, and the change queue (length and age of the oldest key: the
    /// lag of this mode).
    pub scan: Option<super::ScanStats>,
    /// The load caps ([`Limits`](super::Limits)) that made the migration wait in the last
    /// second (`source-max-ops`, `max-bandwidth`, `target-max-ops`).
    pub throttled: Vec<&'static str>,
    /// A cluster source: one entry per shard (sorted by first slot); the fields above are
    /// then the sums (phase: the least advanced shard's). Empty for other sources.
    pub shards: Vec<ShardProgress>,
}

/// The progress of one shard of a cluster source ([`Progress::shards`]).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ShardProgress {
    /// The shard's id: `s` and the lowest slot it served at discovery (`s0`, `s5461`).
    pub id: String,
    /// The node it is read from (`host:port`; changes when a failover is followed).
    pub node: String,
    /// The slots it served at discovery (`0-5460`).
    pub slots: String,
    /// Its own counters (its `shards` is empty).
    pub progress: Progress,
}

impl ShardProgress {
    /// Whether its full sync is done: it is forwarding writes (or ended after catching up).
    pub fn synced(&self) -> bool {
        self.progress.phase == Phase::Incremental
    }
}

impl Progress {
    /// The full sync's completion in percent, when the RDB size is known.
    pub fn rdb_percent(&self) -> Option<f64> {
        self.rdb_total
            .filter(|&t| t > 0)
            .map(|t| (self.rdb_bytes as f64 * 100.0 / t as f64).min(100.0))
    }
}

/// Shared between the task (writer) and the handle (reader).
#[derive(Debug)]
pub(crate) struct Tracker {
    started: Instant,
    pub(crate) buckets: std::sync::OnceLock<super::limit::Buckets>,
    state: Mutex<State>,
    /// A cluster source: the shards' own trackers.
    shards: Mutex<Vec<ShardEntry>>,
}

/// One shard's tracker, with where it is read from.
#[derive(Debug)]
pub(crate) struct ShardEntry {
    pub(crate) id: String,
    pub(crate) node: std::sync::Arc<Mutex<String>>,
    pub(crate) slots: String,
    pub(crate) tracker: std::sync::Arc<Tracker>,
}

#[derive(Debug, Default)]
struct State {
    progress: Progress,
    full_sync_started: Option<Instant>,
    full_sync_took: Option<Duration>,
    behind_since: Option<Instant>,
}

impl Tracker {
    pub(crate) fn new() -> Tracker {
        Tracker {
            started: Instant::now(),
            buckets: std::sync::OnceLock::new(),
            state: Mutex::new(State::default()),
            shards: Mutex::new(Vec::new()),
        }
    }

    /// Whether any shard's link got as far as a full or partial resync.
    pub(crate) fn shards_replicated(&self) -> bool {
        let v = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        v.iter().any(|e| {
            let p = e.tracker.snapshot();
            p.full_syncs + p.partial_resyncs > 0 || p.phase == Phase::FullSync
        })
    }

    /// Forgets the shards (a cluster source read in scan mode after all).
    pub(crate) fn clear_shards(&self) {
        self.shards
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Adds a shard's tracker: the snapshot then sums the shards.
    pub(crate) fn add_shard(&self, entry: ShardEntry) {
        let mut v = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        v.push(entry);
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut Progress)) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let before = s.progress.phase;
        f(&mut s.progress);
        // The clock only where something starts or ends: updates come once per replicated
        // command, and reading the clock was 2% of the tool's CPU under load.
        if s.progress.phase == Phase::FullSync && before != Phase::FullSync {
            s.full_sync_started = Some(Instant::now());
        }
        if before == Phase::FullSync && s.progress.phase != Phase::FullSync {
            let now = Instant::now();
            s.full_sync_took = s.full_sync_started.map(|t| now - t);
        }
        let lag = s.progress.lag_bytes;
        if lag == 0 {
            s.behind_since = None;
        } else if s.behind_since.is_none() {
            s.behind_since = Some(Instant::now());
        }
    }

    pub(crate) fn snapshot(&self) -> Progress {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let mut p = s.progress.clone();
        p.elapsed = now - self.started;
        let secs = match (s.full_sync_started, s.full_sync_took) {
            (_, Some(d)) => d.as_secs_f64(),
            (Some(t), None) => (now - t).as_secs_f64(),
            _ => 0.0,
        };
        if secs > 0.0 {
            p.rdb_bytes_per_sec = p.rdb_bytes as f64 / secs;
            p.keys_per_sec = p.keys_written as f64 / secs;
        }
        p.lag_time = s.behind_since.map(|t| now - t).unwrap_or_default();
        if let Some(b) = self.buckets.get() {
            p.throttled = b.throttling();
        }
        drop(s);
        let shards = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        if !shards.is_empty() {
            aggregate(&mut p, &shards);
        }
        p
    }

    /// The full sync's duration; for a cluster source, the longest shard's.
    pub(crate) fn full_sync_took(&self) -> Option<Duration> {
        let shards = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        if !shards.is_empty() {
            return shards
                .iter()
                .filter_map(|e| e.tracker.full_sync_took())
                .max();
        }
        drop(shards);
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .full_sync_took
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// Sums the shards' progress into `p` (a cluster source).
fn aggregate(p: &mut Progress, shards: &[ShardEntry]) {
    let mut list: Vec<ShardProgress> = shards
        .iter()
        .map(|e| ShardProgress {
            id: e.id.clone(),
            node: e.node.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            slots: e.slots.clone(),
            progress: e.tracker.snapshot(),
        })
        .collect();
    list.sort_by_key(|s| {
        s.id.trim_start_matches('s')
            .parse::<u32>()
            .unwrap_or(u32::MAX)
    });
    let sum = |f: fn(&Progress) -> u64| list.iter().map(|s| f(&s.progress)).sum::<u64>();
    p.rdb_bytes = sum(|x| x.rdb_bytes);
    p.rdb_total = list
        .iter()
        .map(|s| s.progress.rdb_total)
        .sum::<Option<u64>>();
    p.keys_written = sum(|x| x.keys_written);
    p.keys_skipped = sum(|x| x.keys_skipped);
    p.failures = sum(|x| x.failures);
    p.commands_applied = sum(|x| x.commands_applied);
    p.lag_bytes = sum(|x| x.lag_bytes);
    p.source_offset = sum(|x| x.source_offset);
    p.applied_offset = sum(|x| x.applied_offset);
    p.unsupported = sum(|x| x.unsupported);
    p.full_syncs = sum(|x| x.full_syncs);
    p.partial_resyncs = sum(|x| x.partial_resyncs);
    p.disconnects = sum(|x| x.disconnects);
    p.checkpoint_offset = None;
    p.rdb_bytes_per_sec = list.iter().map(|s| s.progress.rdb_bytes_per_sec).sum();
    p.keys_per_sec = list.iter().map(|s| s.progress.keys_per_sec).sum();
    p.lag_time = list
        .iter()
        .map(|s| s.progress.lag_time)
        .max()
        .unwrap_or_default();
    if !matches!(p.phase, Phase::Stopping | Phase::Done) {
        let rank = |ph: Phase| match ph {
            Phase::Connecting => 0,
            Phase::FullSync => 1,
            _ => 2,
        };
        p.phase = match list.iter().map(|s| rank(s.progress.phase)).min() {
            Some(0) => Phase::Connecting,
            Some(1) => Phase::FullSync,
            _ => Phase::Incremental,
        };
    }
    p.shards = list;
}
