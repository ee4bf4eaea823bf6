//! Scan mode: a live source that refuses replication (managed services: `NOPERM` on
//! `PSYNC`/`SYNC`, the command renamed, `-ERR` from a proxy) copied key by key, then kept in
//! sync through keyspace notifications.
//!
//! ```no_run
//! use migrate_core::migrate::{Migration, ScanOptions, Source, SourceMode, TargetConfig, Limits};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let handle = Migration::builder()
//!     .source(Source::Live(replication_client::Config::new("redis://app:pw@src:6379")?))
//!     .source_mode(SourceMode::Auto) // PSYNC, or scan mode when the source refuses it
//!     .scan_options(ScanOptions::default().count(500).set_notify_keyspace_events(true))
//!     .limits(Limits::new().source_max_ops(5_000).max_bandwidth(20 << 20))
//!     .target(TargetConfig::parse("redis://dst:6379")?)
//!     .start();
//! // ... later, once the application writes to the target:
//! handle.stop();
//! let report = handle.wait().await?;
//! println!("{:?} {:?}", report.source_mode, report.scan);
//! # Ok(()) }
//! ```
//!
//! # What it does
//! 1. `notify-keyspace-events` is read (`CONFIG GET`). Without `K` and every event class
//!    (`A`), it is set to `KEA` (added to what is there) with
//!    [`ScanOptions::set_notify_keyspace_events`]; otherwise the migration stops with the
//!    setting to make ([`MigrationError::NotificationsOff`]),
//!    unless it is a snapshot only ([`once`](super::MigrationBuilder::once)), which then
//!    carries no change tracking and says so in the report's warnings. Where `CONFIG` is
//!    refused, [`ScanOptions::notifications_configured`] says it was set another way
//!    (a parameter group).
//! 2. `PSUBSCRIBE __keyspace@*__:*` on its own connection, before the scan starts.
//! 3. Snapshot: `SCAN` of each db the filter reads, `COUNT` [`ScanOptions::count`]; per
//!    batch `MEMORY USAGE` in one round trip, then `DUMP` + `PTTL` in one more. Each payload
//!    goes through the same per-key planner as a full sync (`RESTORE ... ABSTTL` with the
//!    footer set to the target's RDB version, or the rewrite module's commands when the
//!    target cannot load the type): filters, db map, conflict policy. Keys gone or expired
//!    meanwhile are skipped. Keys above the big-key threshold
//!    ([`big_key_bytes`](super::MigrationBuilder::big_key_bytes), by `MEMORY USAGE`) are
//!    read in pieces and written as the rewrite module's chunked commands: `GETRANGE`,
//!    `LRANGE`, `SSCAN`, `ZSCAN`, `HSCAN` (with one `HPEXPIRETIME` per chunk on a source
//!    with hash field TTLs: kept as `HPEXPIREAT` where the target has field TTLs, else the
//!    key is named lossy in the report, as in a full sync), and for a stream `XRANGE`
//!    chunks (exclusive start) written as `XADD` with the ids, then `XINFO STREAM` /
//!    `XINFO GROUPS` / `XINFO CONSUMERS` and `XPENDING` pages per consumer, written as
//!    `XSETID` (with entries-added and max-deleted-id on 7.0+ targets), `XGROUP CREATE ...
//!    ENTRIESREAD`, `XGROUP CREATECONSUMER` and `XCLAIM ... TIME RETRYCOUNT FORCE JUSTID`
//!    (the rewrite module's stream rules: pending entries of deleted entries are exact while
//!    the stream fits its stream buffer, else named lossy). Module values are always read
//!    by `DUMP`.
//! 4. Changes: every key named by a notification is queued once (deduplicated while
//!    queued) and copied again with its latest value; a key gone from the source is removed
//!    from the target. Changes are also copied between snapshot batches.
//! 5. Reconcile, for what notifications do not carry (`FLUSHDB`/`FLUSHALL`, events lost
//!    while the subscription was down, evictions missed): every
//!    [`ScanOptions::reconcile_interval`], while the change queue is empty, `DBSIZE` of every
//!    db is compared on both sides; a difference seen twice in a row, or any re-subscription,
//!    starts a reconcile pass: target keys absent on the source are removed (`SCAN` of the
//!    target + `EXISTS` on the source), then every source key is copied again.
//!
//! # A cluster source
//! When the source answers `INFO cluster` with `cluster_enabled:1`, its topology is read
//! ([`discover`](crate::cluster::discover)) and each step above runs on every master:
//! `notify-keyspace-events` checked (and set) on each, one subscription per master (a node
//! publishes only its own keys' events), `SCAN` of db 0 (and the `cluster-databases` of a
//! Valkey 9 cluster) on each, up to 4 masters at once (each step `SCAN`s and reads a
//! batch on each of them concurrently, then writes the batches one after another). A
//! scanned key is read from the master that listed it, a notified one from the master of
//! its slot, pipelined per node; a key answered with `MOVED` is read again from
//! its owner after the topology is read again (new masters are subscribed to and scanned),
//! one answered with `ASK` from the importing node with `ASKING`, `TRYAGAIN`/`CLUSTERDOWN`
//! after a backoff, for at most 30 s, then the migration stops naming the last reply. The
//! `DBSIZE` comparison adds the masters up; a lost subscription of one master reconciles
//! that master's keys only (target keys of its slots absent on the source removed, its
//! keys copied again). A master that goes down (a failover) is noticed by the first
//! request to it that fails, at latest at the next [`ScanOptions::reconcile_interval`]
//! check (its `DBSIZE`, or a `PING` when a key filter makes counts meaningless), and
//! waited for: the topology
//! is read again through any node that answers (the other masters, the replicas, the
//! seed), with a backoff, until every slot is served by a reachable master, for at most
//! 60 s (then the migration stops naming the masters lost and the last error). The new
//! masters are subscribed to (`notify-keyspace-events` checked and set on them too) and
//! their slots reconciled as after a lost subscription; the batch being read is read
//! again from the new owners ([`ScanStats::source_failovers`], and a warning in the
//! report). More than 5 such recoveries within 5 minutes stop the migration.
//!
//! # The guarantee
//! Per key, the target eventually holds the source's latest state (value and TTL): after
//! the writes stop and the queue drains, and at latest one reconcile pass after a
//! `FLUSHDB`, a lost subscription or a cluster source's failover (writes a dead master
//! acknowledged but never passed to its replica are gone from the source too: the
//! reconcile removes them from the target). It is **not transactional**: a `MULTI` or a script on
//! the source arrives key by key, and keys are not copied in the order they were written. A
//! big key copied in pieces while it changes is copied again once its notification arrives.
//! With a key filter or a key transform the `DBSIZE` comparison is meaningless and only a
//! re-subscription triggers a reconcile (a transform also disables the removal of target
//! keys). `once` in this mode: the snapshot, then the changes queued during it, then one
//! `DBSIZE` comparison (and a reconcile pass when it differs): the target matches the
//! source as of the end, not a point-in-time snapshot. No checkpoint is kept: a restarted
//! scan-mode sync copies everything again (use `--on-conflict replace`).

mod bigkey;
mod nodes;
mod notify;
mod records;
mod source;
mod stream;

/// For the `scan_replies` fuzz target: `r` read as each reply of a big key or big stream
/// read in pieces (`n` fields asked for their TTLs).
#[cfg(feature = "fuzzing")]
pub(crate) fn check_replies(r: &resp_codec::Frame, n: usize, now_ms: u64) {
    bigkey::check_replies(r, n);
    stream::check_replies(r, now_ms);
}

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use resp_codec::Frame;
use tokio::sync::watch;

use super::apply::Applier;
use super::checkpoint::RESERVED_PREFIX;
use super::conn::{self, Stream};
use super::fullsync::{now_ms, FullSyncConfig};
use super::limit::Buckets;
use super::progress::{Phase, Tracker};
use super::report::StopReason;
use super::side::{SideConfig, SideConn};
use super::{Conflict, MigrationError, TargetConfig};
use crate::Target;
use bigkey::Big;
use nodes::{redirect_text, Sources};
use notify::Changes;
use records::{Fed, Sink};
use source::{b, SourceConn};

/// How a live source is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SourceMode {
    /// As a replica (`PSYNC`); a source that refuses replication is an error. The
    /// library's default (a migration never changes its method by itself unless asked).
    #[default]
    Psync,
    /// `PSYNC`, or scan mode when the source refuses replication (`NOPERM`, an unknown or
    /// renamed `PSYNC`/`SYNC`, any `-ERR` to the handshake, as proxies answer): a warning
    /// is logged once and the report says why. The CLI's default.
    Auto,
    /// Scan mode from the start ([`ScanOptions`]).
    Scan,
}

impl SourceMode {
    /// `psync`, `auto`, `scan`.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceMode::Psync => "psync",
            SourceMode::Auto => "auto",
            SourceMode::Scan => "scan",
        }
    }
}

/// The settings of scan mode (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScanOptions {
    /// `SCAN ... COUNT n`, and the keys read per pipelined batch (default 1000).
    pub count: u32,
    /// Elements per piece of a big key (`HSCAN ... COUNT`, `LRANGE` span; default 1000).
    pub chunk_elements: usize,
    /// Set `notify-keyspace-events` on the source when it lacks what change tracking needs
    /// (default off: the migration stops and names the setting).
    pub set_notify_keyspace_events: bool,
    /// The source's `notify-keyspace-events` was set outside the tool (a managed
    /// service's parameter group) where `CONFIG GET` is refused (default off).
    pub notifications_configured: bool,
    /// Time between `DBSIZE` comparisons (default 5 s).
    pub reconcile_interval: Duration,
}

impl Default for ScanOptions {
    fn default() -> ScanOptions {
        ScanOptions {
            count: 1000,
            chunk_elements: 1000,
            set_notify_keyspace_events: false,
            notifications_configured: false,
            reconcile_interval: Duration::from_secs(5),
        }
    }
}

impl ScanOptions {
    /// Sets [`ScanOptions::count`] (at least 1).
    pub fn count(mut self, n: u32) -> Self {
        self.count = n.max(1);
        self
    }
    /// Sets [`ScanOptions::chunk_elements`] (at least 1).
    pub fn chunk_elements(mut self, n: usize) -> Self {
        self.chunk_elements = n.max(1);
        self
    }
    /// Sets [`ScanOptions::set_notify_keyspace_events`].
    pub fn set_notify_keyspace_events(mut self, on: bool) -> Self {
        self.set_notify_keyspace_events = on;
        self
    }
    /// Sets [`ScanOptions::notifications_configured`].
    pub fn notifications_configured(mut self, on: bool) -> Self {
        self.notifications_configured = on;
        self
    }
    /// Sets [`ScanOptions::reconcile_interval`].
    pub fn reconcile_interval(mut self, d: Duration) -> Self {
        self.reconcile_interval = d.max(Duration::from_millis(10));
        self
    }
}

/// Scan-mode counts ([`Report::scan`](super::Report::scan), [`Progress::scan`](super::Progress::scan)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScanStats {
    /// Keys returned by `SCAN` (snapshot and reconcile passes).
    pub keys_scanned: u64,
    /// Keys sent to the target by the snapshot.
    pub keys_copied: u64,
    /// Keys copied again after a notification.
    pub keys_recopied: u64,
    /// Keys removed from the target because a notified key was gone from the source.
    pub keys_deleted: u64,
    /// Keys written or removed by reconcile passes.
    pub keys_reconciled: u64,
    /// Reconcile passes.
    pub reconcile_passes: u64,
    /// Times the subscription was lost and made again.
    pub resubscriptions: u64,
    /// Times a master of a cluster source went down and the migration went on with the
    /// master that took over its slots.
    pub source_failovers: u64,
    /// Notifications received.
    pub notifications: u64,
    /// Keys waiting in the change queue.
    pub queue_len: u64,
    /// Age of the oldest key in the change queue.
    pub queue_age: Duration,
    /// Whether changes are tracked (false: a snapshot without notifications).
    pub tracking: bool,
}

/// Why a `Replica::connect` error means the source refuses replication (scan mode in
/// `Auto`); `None` for other errors (unreachable, wrong password).
pub(crate) fn refusal(e: &replication_client::Error) -> Option<String> {
    use replication_client::Error as E;
    match e {
        E::NoPermission { command, message } => Some(format!("{command} refused: {message}")),
        E::ServerError { command, message } => Some(format!("{command} refused: {message}")),
        _ => None,
    }
}

/// Everything scan mode needs from the run.
pub(crate) struct ScanJob {
    pub(crate) source: TargetConfig,
    pub(crate) target: TargetConfig,
    /// Where the target's keys are counted and scanned: every master of a cluster target,
    /// else the target.
    pub(crate) target_nodes: Vec<TargetConfig>,
    /// The target is a cluster.
    pub(crate) cluster: bool,
    pub(crate) fs_config: FullSyncConfig,
    pub(crate) timeout: Duration,
    pub(crate) once: bool,
    pub(crate) opts: ScanOptions,
    pub(crate) buckets: Buckets,
}

/// Which pass reads a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    Snapshot,
    Change,
    Reconcile,
}

/// Aborts the subscription task when dropped.
struct Abort(tokio::task::JoinHandle<()>);

impl Drop for Abort {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Keys (index into a batch) a node redirected, each with the error text.
type Redirected = Vec<(usize, String)>;

struct Runner {
    job: ScanJob,
    src: Sources,
    /// Subscriptions by node (`host:port`; the seed's for a standalone source).
    subs: Vec<(String, Abort)>,
    /// One connection per entry of [`ScanJob::target_nodes`].
    tgts: Vec<Target<Stream>>,
    snap: Sink,
    again: Sink,
    /// A cluster target under Skip: `EXISTS` of big keys on their master.
    has: Option<SideConn>,
    changes: Arc<Changes>,
    stats: ScanStats,
    memory_usage: bool,
    dbs: Vec<u32>,
    big: usize,
    /// Whether the source has hash field TTLs (`HPEXPIRETIME`; `None` until learnt).
    field_ttls: Option<bool>,
    /// When the source cluster recovered from a master going down (the recent ones).
    recoveries: Vec<Instant>,
}

/// At most this many recoveries from a master going down within [`RECOVERY_WINDOW`]
/// (a cluster that keeps losing masters stops the migration).
const MAX_RECOVERIES: usize = 5;
const RECOVERY_WINDOW: Duration = Duration::from_secs(300);

const DEL_WAIT: Duration = Duration::from_millis(200);

pub(crate) async fn run(
    job: ScanJob,
    ap: &mut Applier,
    tracker: &Tracker,
    stop: &mut watch::Receiver<bool>,
) -> Result<StopReason, MigrationError> {
    let url = job.source.url.to_string();
    tracing::info!(target: "migrate", "connecting to the source {url} (scan mode)");
    let mut src = Sources::open(&job.source, job.timeout, job.buckets.clone()).await?;
    if let Some(t) = &src.topology {
        tracing::info!(target: "migrate", "the source is a cluster of {} masters: scanning each", t.masters().len());
    }
    // Every master publishes only its own keys' events: each must have them on.
    let mut tracking = true;
    for i in 0..src.conns.len() {
        let node_url = src.url(i);
        tracking &= notifications(&mut src.conns[i], &job, &node_url, ap).await?;
    }
    let changes = Arc::new(Changes::default());
    let mut subs = Vec::new();
    if tracking {
        for (i, cfg) in src.cfgs.iter().enumerate() {
            let node = src.is_cluster().then(|| src.addr(i).to_string());
            let h = notify::subscribe(cfg.clone(), job.timeout, changes.clone(), node).await?;
            subs.push((src.addr(i).to_string(), Abort(h)));
        }
    }
    let databases = if src.is_cluster() {
        // A cluster has db 0; Valkey 9 clusters may have `cluster-databases` more.
        config_number(&mut src.conns[0], "cluster-databases")
            .await?
            .unwrap_or(1)
    } else {
        config_number(&mut src.conns[0], "databases")
            .await?
            .unwrap_or(16)
    };
    let dbs: Vec<u32> = (0..databases)
        .filter(|d| job.fs_config.filter.target_db(*d).is_some())
        .collect();
    let mut tgts = Vec::with_capacity(job.target_nodes.len());
    for node in &job.target_nodes {
        tgts.push(conn::connect(node, job.timeout).await?);
    }
    // `EXISTS` of the snapshot's keys under Skip: on the key's master of a cluster.
    let side = SideConfig {
        target: job.target.clone(),
        timeout: job.timeout,
        cluster: job.cluster,
    };
    let exists = if job.fs_config.conflict == Conflict::Skip {
        Some(SideConn::connect(&side).await?)
    } else {
        None
    };
    // The big keys' `EXISTS` on a cluster target (a standalone one: the first connection).
    let has = if job.fs_config.conflict == Conflict::Skip && job.cluster {
        Some(SideConn::connect(&side).await?)
    } else {
        None
    };
    // Keys the snapshot finds on the target already were written by a change (the target
    // was checked empty under Refuse): replace them.
    let mut snap_cfg = job.fs_config.clone();
    if snap_cfg.conflict == Conflict::Refuse {
        snap_cfg.conflict = Conflict::Replace;
    }
    let mut again_cfg = job.fs_config.clone();
    again_cfg.conflict = Conflict::Replace;
    let big = job.fs_config.big_key_bytes;
    let mut r = Runner {
        snap: Sink::new(snap_cfg, exists),
        again: Sink::new(again_cfg, None),
        has,
        job,
        src,
        subs,
        tgts,
        changes,
        stats: ScanStats {
            tracking,
            ..ScanStats::default()
        },
        memory_usage: true,
        dbs,
        big,
        field_ttls: None,
        recoveries: Vec::new(),
    };
    tracker.update(|p| {
        p.phase = Phase::FullSync;
        p.rdb_total = None;
    });
    let reason = r.main(ap, tracker, stop).await;
    if reason.as_ref().is_ok_and(|r| *r == StopReason::Stopped) {
        tracker.update(|p| p.phase = Phase::Stopping);
    }
    let flushed = ap.flush().await;
    r.publish(ap, tracker);
    ap.report.scan = Some(r.stats.clone());
    let reason = reason?;
    flushed?;
    Ok(reason)
}

/// A number from `CONFIG GET name`; `None` when refused or unknown.
async fn config_number(
    src: &mut SourceConn,
    name: &'static str,
) -> Result<Option<u32>, MigrationError> {
    Ok(
        match src.call(vec![b("CONFIG"), b("GET"), b(name)]).await? {
            Frame::Array(v) if v.len() == 2 => v[1]
                .as_bytes()
                .and_then(|b| std::str::from_utf8(b).ok()?.parse().ok()),
            Frame::Map(kv) if kv.len() == 1 => kv[0]
                .1
                .as_bytes()
                .and_then(|b| std::str::from_utf8(b).ok()?.parse().ok()),
            _ => None,
        },
    )
}

/// Whether a `notify-keyspace-events` value tracks every change: keyspace events (`K`) of
/// every class (`A`, or each of `g$lshzxet`).
pub(crate) fn notify_flags_enough(flags: &str) -> bool {
    flags.contains('K') && (flags.contains('A') || "g$lshzxet".chars().all(|c| flags.contains(c)))
}

/// How to give scan mode the notifications it needs.
pub(crate) const NOTIFY_FIX: &str = "set notify-keyspace-events to KEA on the source (CONFIG SET notify-keyspace-events KEA, \
               or on a managed service its parameter group / advanced settings: notify-keyspace-events = KEA), \
               or let the tool set it with --set-notify-keyspace-events";

/// Checks (and with leave, sets) `notify-keyspace-events`; whether changes are tracked.
async fn notifications(
    src: &mut SourceConn,
    job: &ScanJob,
    url: &str,
    ap: &mut Applier,
) -> Result<bool, MigrationError> {
    let o = &job.opts;
    let reply = src
        .call(vec![b("CONFIG"), b("GET"), b("notify-keyspace-events")])
        .await?;
    let current = match &reply {
        Frame::Array(v) if v.len() == 2 => v[1]
            .as_bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned()),
        Frame::Map(kv) if kv.len() == 1 => kv[0]
            .1
            .as_bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned()),
        _ => None,
    };
    let enough = notify_flags_enough;
    let fix = NOTIFY_FIX;
    let found = match current {
        Some(flags) if enough(&flags) => return Ok(true),
        Some(flags) => flags,
        None if o.notifications_configured => return Ok(true),
        None => String::from("unknown: CONFIG GET refused"),
    };
    if o.set_notify_keyspace_events {
        let mut want: String = found
            .chars()
            .filter(|c| c.is_ascii_alphabetic() || *c == '$')
            .collect();
        if found.starts_with("unknown") {
            want.clear();
        }
        for c in "KEA".chars() {
            if !want.contains(c) {
                want.push(c);
            }
        }
        let r = src
            .call(vec![
                b("CONFIG"),
                b("SET"),
                b("notify-keyspace-events"),
                Bytes::from(want.clone()),
            ])
            .await?;
        if !r.is_error() {
            tracing::warn!(target: "migrate", "set notify-keyspace-events to {want} on {url} (was {found:?}) for change tracking");
            ap.report.warnings.push(format!(
                "notify-keyspace-events on the source was set to {want} (was {found:?}); restore it after the migration"
            ));
            return Ok(true);
        }
        let why = crate::ServerError::from_frame(&r)
            .map(|e| e.to_string())
            .unwrap_or_default();
        return Err(MigrationError::NotificationsOff {
            url: url.to_string(),
            found: format!("{found}; CONFIG SET refused: {why}"),
            fix,
        });
    }
    if job.once {
        let w = format!(
            "scan mode without change tracking (notify-keyspace-events is {found:?}): a snapshot; writes made during the copy may be missing"
        );
        tracing::warn!(target: "migrate", "{w}");
        ap.report.warnings.push(w);
        return Ok(false);
    }
    Err(MigrationError::NotificationsOff {
        url: url.to_string(),
        found,
        fix,
    })
}

/// Masters of a cluster source read at once by a scan pass.
const PARALLEL: usize = 4;

/// What one pipelined read of keys on one node found.
#[derive(Default)]
struct KeysRead {
    /// `MEMORY USAGE` was refused: big keys are then found by their `DUMP` size.
    no_memory_usage: bool,
    /// The keys (by index) above the big-key threshold, to read in pieces.
    big: Vec<usize>,
    /// The other keys (by index) with their `DUMP` and `PTTL` replies.
    small: Vec<(usize, Frame, Frame)>,
    /// When the `PTTL`s were read (Unix ms).
    now: i64,
}

/// `MEMORY USAGE` of `keys` in one round trip, then `DUMP` + `PTTL` of those at most
/// `big` bytes in another (`asking`: each command after `ASKING`).
async fn read_keys(
    conn: &mut SourceConn,
    asking: bool,
    keys: &[Bytes],
    memory_usage: bool,
    big: usize,
) -> Result<KeysRead, MigrationError> {
    let mut read = KeysRead::default();
    let mut sizes = vec![None; keys.len()];
    if memory_usage && !keys.is_empty() {
        let cmds: Vec<Vec<Bytes>> = keys
            .iter()
            .map(|k| vec![b("MEMORY"), b("USAGE"), k.clone()])
            .collect();
        let replies = call_as(conn, asking, &cmds).await?;
        if replies
            .iter()
            .any(|r| r.is_error() && redirect_text(r).is_none())
        {
            read.no_memory_usage = true;
        } else {
            sizes = replies.iter().map(Frame::as_integer).collect();
        }
    }
    let mut small = Vec::new();
    for (i, s) in sizes.into_iter().enumerate() {
        if s.is_some_and(|n| n as usize > big) {
            read.big.push(i);
        } else {
            small.push(i);
        }
    }
    let cmds: Vec<Vec<Bytes>> = small
        .iter()
        .flat_map(|&i| {
            [
                vec![b("DUMP"), keys[i].clone()],
                vec![b("PTTL"), keys[i].clone()],
            ]
        })
        .collect();
    let replies = if cmds.is_empty() {
        Vec::new()
    } else {
        call_as(conn, asking, &cmds).await?
    };
    read.now = now_ms();
    let mut it = replies.into_iter();
    for i in small {
        let (Some(dump), Some(pttl)) = (it.next(), it.next()) else {
            break;
        };
        read.small.push((i, dump, pttl));
    }
    Ok(read)
}

/// `cmds` in one round trip, each after `ASKING` when `asking`.
async fn call_as(
    conn: &mut SourceConn,
    asking: bool,
    cmds: &[Vec<Bytes>],
) -> Result<Vec<Frame>, MigrationError> {
    if asking {
        conn.call_many_asking(cmds).await
    } else {
        conn.call_many(cmds).await
    }
}

/// One `SCAN` step of a master, and the reads of its keys.
struct Stepped {
    /// The next cursor (`0`: done).
    next: Bytes,
    /// Keys `SCAN` returned.
    scanned: u64,
    /// Keys the filter left out.
    filtered: u64,
    /// The keys read.
    keys: Vec<Bytes>,
    read: KeysRead,
}

/// `SCAN` from `cursor` in db `db` of `conn`, then [`read_keys`] of the keys the filter
/// takes (the reserved checkpoint keys never); `None` when the node has no such db.
async fn scan_step(
    conn: &mut SourceConn,
    db: u32,
    cursor: Bytes,
    count: Bytes,
    filter: &crate::Filter,
    memory_usage: bool,
    big: usize,
) -> Result<Option<Stepped>, MigrationError> {
    if !conn.select(db).await? {
        return Ok(None);
    }
    let reply = conn
        .call(vec![b("SCAN"), cursor, b("COUNT"), count])
        .await?;
    let Some([next, Frame::Array(found)]) = reply.as_slice() else {
        return Err(MigrationError::Internal(format!(
            "unexpected SCAN reply from the source: {reply:?}"
        )));
    };
    let next = Bytes::copy_from_slice(next.as_bytes().unwrap_or(b"0"));
    let mut filtered = 0;
    let keys: Vec<Bytes> = found
        .iter()
        .filter_map(|k| k.as_bytes().map(Bytes::copy_from_slice))
        .filter(|k| {
            if k.starts_with(RESERVED_PREFIX) {
                return false;
            }
            let ok = filter.map_key(db, k).is_some();
            filtered += u64::from(!ok);
            ok
        })
        .collect();
    let read = read_keys(conn, false, &keys, memory_usage, big).await?;
    Ok(Some(Stepped {
        next,
        scanned: found.len() as u64,
        filtered,
        keys,
        read,
    }))
}

/// Awaits `f` when there is one.
async fn maybe<F: std::future::Future>(f: Option<F>) -> Option<F::Output> {
    match f {
        Some(f) => Some(f.await),
        None => None,
    }
}

impl Runner {
    fn publish(&mut self, ap: &Applier, tracker: &Tracker) {
        let (len, age) = self.changes.lag();
        self.stats.queue_len = len as u64;
        self.stats.queue_age = age;
        self.stats.resubscriptions = self.changes.reconnects.load(Ordering::Relaxed);
        self.stats.notifications = self.changes.received.load(Ordering::Relaxed);
        let s = self.stats.clone();
        let written = ap.report.keys_written();
        let r = &ap.report;
        tracker.update(|p| {
            p.keys_written = written;
            p.keys_skipped = r.skipped_expired + r.skipped_filtered + r.skipped_conflict;
            p.failures = r.failures_total;
            p.unsupported = r.unsupported_total;
            p.scan = Some(s);
        });
    }

    async fn main(
        &mut self,
        ap: &mut Applier,
        tracker: &Tracker,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<StopReason, MigrationError> {
        // Snapshot.
        if !self
            .scan_all(Pass::Snapshot, None, ap, tracker, stop)
            .await?
        {
            return Ok(StopReason::Stopped);
        }
        ap.flush().await?;
        tracker.update(|p| p.phase = Phase::Incremental);
        tracing::info!(target: "migrate", "scan snapshot done ({} keys); copying changes", self.stats.keys_copied);
        let every = self.job.opts.reconcile_interval;
        let mut next_check = Instant::now() + every;
        let mut baseline: Vec<(u32, i64)> = Vec::new();
        let mut suspect: Option<Vec<(u32, i64)>> = None;
        let mut once_checked = false;
        loop {
            if *stop.borrow() {
                return Ok(StopReason::Stopped);
            }
            let lost = self.changes.take_lost();
            if !lost.is_empty() {
                let units = self.units_of(&lost);
                match &units {
                    Some(u) => {
                        tracing::warn!(target: "migrate", "change notifications of {} source master(s) may have been lost: reconciling their keys", u.len())
                    }
                    None => {
                        tracing::warn!(target: "migrate", "change notifications may have been lost: reconciling")
                    }
                }
                if !self.reconcile(units, ap, tracker, stop).await? {
                    return Ok(StopReason::Stopped);
                }
                baseline = self.size_diff(ap).await?;
                continue;
            }
            if self.drain(ap, tracker).await? {
                continue;
            }
            ap.flush().await?;
            self.publish(ap, tracker);
            let now = Instant::now();
            if self.job.once || now >= next_check {
                next_check = now + every;
                let diff = self.size_diff(ap).await?;
                let differs = diff != baseline;
                if self.job.once {
                    if differs && !once_checked {
                        once_checked = true;
                        if !self.reconcile(None, ap, tracker, stop).await? {
                            return Ok(StopReason::Stopped);
                        }
                        continue;
                    }
                    // Quiet for a moment: caught up.
                    tokio::time::sleep(DEL_WAIT).await;
                    if self.changes.is_empty() && !self.changes.any_lost() {
                        ap.flush().await?;
                        return Ok(StopReason::CaughtUp);
                    }
                    continue;
                }
                if differs && self.changes.is_empty() {
                    if suspect.as_ref() == Some(&diff) {
                        tracing::info!(target: "migrate", "key counts differ between source and target ({diff:?}): reconciling");
                        if !self.reconcile(None, ap, tracker, stop).await? {
                            return Ok(StopReason::Stopped);
                        }
                        baseline = self.size_diff(ap).await?;
                        suspect = None;
                    } else {
                        suspect = Some(diff);
                        next_check = Instant::now() + (every / 2).max(Duration::from_millis(50));
                    }
                } else {
                    suspect = None;
                }
                continue;
            }
            tokio::select! {
                biased;
                _ = stop.changed() => return Ok(StopReason::Stopped),
                _ = self.changes.wake.notified() => {}
                _ = tokio::time::sleep_until(next_check.into()) => {}
            }
        }
    }

    /// Copies one batch of queued changes; whether there was any.
    async fn drain(&mut self, ap: &mut Applier, tracker: &Tracker) -> Result<bool, MigrationError> {
        let mut batch = self.changes.pop(self.job.opts.count as usize);
        if batch.is_empty() {
            return Ok(false);
        }
        batch.sort_by_key(|(db, _)| *db);
        let mut i = 0;
        while i < batch.len() {
            let db = batch[i].0;
            let j = batch[i..]
                .iter()
                .position(|(d, _)| *d != db)
                .map_or(batch.len(), |p| i + p);
            let keys: Vec<Bytes> = batch[i..j].iter().map(|(_, k)| k.clone()).collect();
            if self.job.fs_config.filter.target_db(db).is_some() {
                self.copy(db, keys, Pass::Change, ap).await?;
            }
            i = j;
        }
        self.publish(ap, tracker);
        Ok(true)
    }

    /// After a request to the source failed with `e`: when a master of a cluster source
    /// went down, waits (bounded, [`nodes::RECOVER_FOR`]) until the cluster serves its
    /// slots from another master (its replica promoted), read through any node that
    /// answers; then subscribes to the new masters and marks them, and the masters that
    /// came back, as having lost notifications, so that their slots are reconciled.
    /// Otherwise (a standalone source, a refused command) `e` itself.
    async fn recover(&mut self, e: MigrationError, ap: &mut Applier) -> Result<(), MigrationError> {
        if !self.src.is_cluster() || !self.src.any_broken() {
            return Err(e);
        }
        let now = Instant::now();
        self.recoveries
            .retain(|t| now.duration_since(*t) < RECOVERY_WINDOW);
        if self.recoveries.len() >= MAX_RECOVERIES {
            return Err(MigrationError::ScanSource {
                url: self.job.source.url.to_string(),
                reason: format!(
                    "source masters went down {} times within {:?}; the last: {e}",
                    self.recoveries.len() + 1,
                    RECOVERY_WINDOW
                ),
            });
        }
        let before: Vec<(String, bool)> = (0..self.src.conns.len())
            .map(|i| (self.src.addr(i).to_string(), self.src.conns[i].is_broken()))
            .collect();
        let down: Vec<&str> = before
            .iter()
            .filter(|(_, b)| *b)
            .map(|(a, _)| a.as_str())
            .collect();
        tracing::warn!(target: "migrate", "source master(s) {} unreachable ({e}): waiting for the cluster to fail over", down.join(", "));
        self.src.recover(&e).await?;
        self.recoveries.push(Instant::now());
        self.stats.source_failovers += 1;
        let after: Vec<String> = (0..self.src.conns.len())
            .map(|i| self.src.addr(i).to_string())
            .collect();
        let w = format!(
            "source master(s) {} went down; the cluster's masters are now {}: their slots were reconciled",
            down.join(", "),
            after.join(", ")
        );
        tracing::warn!(target: "migrate", "{w}");
        ap.report.warnings.push(w);
        // Masters that came back at the same address missed events too.
        for (a, broken) in &before {
            if *broken && after.contains(a) {
                self.subs.retain(|(s, _)| s != a);
            }
        }
        self.ensure_subscriptions(ap).await?;
        for a in &after {
            let new = !before.iter().any(|(b, _)| b == a);
            let back = before.iter().any(|(b, broken)| b == a && *broken);
            if new || back {
                self.changes.mark_lost(Some(a));
            }
        }
        Ok(())
    }

    /// The connections to rescan for `lost`: `None` for all of them.
    fn units_of(&self, lost: &notify::Lost) -> Option<Vec<usize>> {
        if lost.all || !self.src.is_cluster() {
            return None;
        }
        let mut out = Vec::new();
        for n in &lost.nodes {
            out.push(self.src.index_of(n)?);
        }
        Some(out)
    }

    /// Subscribes to masters that have no subscription yet (a topology change brought
    /// them), marking them lost so their keys are rescanned; drops the subscriptions of
    /// nodes that are no longer masters.
    async fn ensure_subscriptions(&mut self, ap: &mut Applier) -> Result<(), MigrationError> {
        if !self.stats.tracking || !self.src.is_cluster() {
            return Ok(());
        }
        let addrs: Vec<String> = (0..self.src.conns.len())
            .map(|i| self.src.addr(i).to_string())
            .collect();
        self.subs.retain(|(a, _)| addrs.contains(a));
        for (i, addr) in addrs.iter().enumerate() {
            if self.subs.iter().any(|(a, _)| a == addr) {
                continue;
            }
            let url = self.src.url(i);
            let enough = notifications(&mut self.src.conns[i], &self.job, &url, ap).await?;
            if !enough {
                return Err(MigrationError::ScanSource {
                    url,
                    reason: "a new master lacks notify-keyspace-events".into(),
                });
            }
            let h = notify::subscribe(
                self.src.cfgs[i].clone(),
                self.job.timeout,
                self.changes.clone(),
                Some(addr.clone()),
            )
            .await?;
            tracing::info!(target: "migrate", "subscribed to the keyspace notifications of the new source master {url}");
            self.subs.push((addr.clone(), Abort(h)));
            self.changes.mark_lost(Some(addr));
        }
        Ok(())
    }

    /// `SCAN`s every db of every connection in `units` (`None`: all: the server, or each
    /// master of a cluster) and copies its keys; `false` when stopped. Up to [`PARALLEL`]
    /// masters are read at once: each step `SCAN`s and reads (`MEMORY USAGE`, `DUMP` +
    /// `PTTL`) a batch on each of them concurrently, then writes the batches one after
    /// another (big keys are read in pieces while they are written).
    async fn scan_all(
        &mut self,
        pass: Pass,
        units: Option<Vec<usize>>,
        ap: &mut Applier,
        tracker: &Tracker,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<bool, MigrationError> {
        let count = Bytes::from(self.job.opts.count.to_string());
        // By address: a topology change during the pass renumbers the connections.
        let addrs: Vec<String> = match units {
            Some(u) => u.iter().map(|&i| self.src.addr(i).to_string()).collect(),
            None => (0..self.src.conns.len())
                .map(|i| self.src.addr(i).to_string())
                .collect(),
        };
        for db in self.dbs.clone() {
            let mut waiting: std::collections::VecDeque<String> = addrs.iter().cloned().collect();
            let mut active: Vec<(String, Bytes)> = Vec::new();
            loop {
                while active.len() < PARALLEL {
                    match waiting.pop_front() {
                        Some(a) => active.push((a, Bytes::from_static(b"0"))),
                        None => break,
                    }
                }
                // No longer a master: its keys were rescanned where they went.
                active.retain(|(a, _)| self.src.index_of(a).is_some());
                if active.is_empty() {
                    if waiting.is_empty() {
                        break;
                    }
                    continue;
                }
                if *stop.borrow() {
                    return Ok(false);
                }
                let steps = self.scan_steps(db, &active, &count).await;
                let mut next_active = Vec::new();
                let mut failure = None;
                for ((addr, cursor), step) in active.into_iter().zip(steps) {
                    let st = match step {
                        Ok(Some(st)) => st,
                        // The node has no such db.
                        Ok(None) => continue,
                        Err(e) => {
                            // Again on the same master if it comes back; else its slots
                            // are reconciled on the master that took them over.
                            failure.get_or_insert(e);
                            next_active.push((addr, cursor));
                            continue;
                        }
                    };
                    self.stats.keys_scanned += st.scanned;
                    if pass == Pass::Snapshot {
                        ap.report.skipped_filtered += st.filtered;
                    }
                    let next = st.next.clone();
                    let keys = st.keys.clone();
                    if let Err(e) = self.write_step(&addr, db, st, pass, ap).await {
                        // The master went down while its big keys were read: the batch
                        // again, each key from its master now.
                        self.recover(e, ap).await?;
                        self.copy(db, keys, pass, ap).await?;
                    }
                    if &next[..] != b"0" {
                        next_active.push((addr, next));
                    }
                }
                if let Some(e) = failure {
                    self.recover(e, ap).await?;
                }
                active = next_active;
                // Changes go on during a long scan.
                self.drain(ap, tracker).await?;
                self.publish(ap, tracker);
            }
        }
        Ok(true)
    }

    /// One `SCAN` step and the reads of its keys on each master of `active` (address,
    /// cursor), concurrently; the results in `active` order.
    async fn scan_steps(
        &mut self,
        db: u32,
        active: &[(String, Bytes)],
        count: &Bytes,
    ) -> Vec<Result<Option<Stepped>, MigrationError>> {
        let filter = &self.job.fs_config.filter;
        let (memory_usage, big) = (self.memory_usage, self.big);
        let idx: Vec<Option<usize>> = active.iter().map(|(a, _)| self.src.index_of(a)).collect();
        let mut conns: Vec<Option<&mut SourceConn>> = self.src.conns.iter_mut().map(Some).collect();
        let mut futs = Vec::with_capacity(active.len());
        for ((addr, cursor), i) in active.iter().zip(idx) {
            let conn = i.and_then(|i| conns.get_mut(i)?.take());
            let (cursor, count) = (cursor.clone(), count.clone());
            futs.push(async move {
                match conn {
                    Some(c) => scan_step(c, db, cursor, count, filter, memory_usage, big).await,
                    None => Err(MigrationError::Internal(format!(
                        "source master {addr} scanned twice at once"
                    ))),
                }
            });
        }
        let mut out = Vec::with_capacity(futs.len());
        let mut it = futs.into_iter();
        loop {
            let (a, b, c, d) = tokio::join!(
                maybe(it.next()),
                maybe(it.next()),
                maybe(it.next()),
                maybe(it.next())
            );
            let got: Vec<_> = [a, b, c, d].into_iter().flatten().collect();
            if got.is_empty() {
                break;
            }
            out.extend(got);
        }
        out
    }

    /// Writes what [`scan_step`] read on master `addr`; keys the node redirected are read
    /// again through [`copy`](Self::copy).
    async fn write_step(
        &mut self,
        addr: &str,
        db: u32,
        st: Stepped,
        pass: Pass,
        ap: &mut Applier,
    ) -> Result<(), MigrationError> {
        let Some(unit) = self.src.index_of(addr) else {
            return self.copy(db, st.keys, pass, ap).await;
        };
        let redirected = self
            .write_read(unit, db, &st.keys, st.read, pass, ap)
            .await?;
        if !redirected.is_empty() {
            let keys = redirected
                .into_iter()
                .map(|(i, _)| st.keys[i].clone())
                .collect();
            self.copy(db, keys, pass, ap).await?;
        }
        Ok(())
    }

    /// Reads keys of source db `db`, each from its master, and writes them (or removes
    /// those gone). Keys a cluster node redirects are read again from the node named
    /// (`ASK`: with `ASKING`) or, after `MOVED`, from the owner in the topology read
    /// again; for at most [`nodes::RETRY_FOR`].
    async fn copy(
        &mut self,
        db: u32,
        keys: Vec<Bytes>,
        pass: Pass,
        ap: &mut Applier,
    ) -> Result<(), MigrationError> {
        let filter = self.job.fs_config.filter.clone();
        let keys: Vec<Bytes> = keys
            .into_iter()
            .filter(|k| {
                if k.starts_with(RESERVED_PREFIX) {
                    return false;
                }
                let ok = filter.map_key(db, k).is_some();
                if !ok && pass == Pass::Snapshot {
                    ap.report.skipped_filtered += 1;
                }
                ok
            })
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        // (node, asking) → keys.
        let mut todo: Vec<((usize, bool), Bytes)> = keys
            .into_iter()
            .map(|k| ((self.src.owner(&k), false), k))
            .collect();
        let mut started = Instant::now();
        let mut backoff = Duration::from_millis(20);
        let mut recovered = false;
        loop {
            todo.sort_by_key(|(r, _)| *r);
            let mut again: Vec<(Bytes, String)> = Vec::new();
            let mut i = 0;
            while i < todo.len() {
                let route = todo[i].0;
                let j = todo[i..]
                    .iter()
                    .position(|(r, _)| *r != route)
                    .map_or(todo.len(), |p| i + p);
                let group: Vec<Bytes> = todo[i..j].iter().map(|(_, k)| k.clone()).collect();
                match self.copy_on(route.0, route.1, db, &group, pass, ap).await {
                    Ok(redirected) => {
                        for (at, e) in redirected {
                            again.push((group[at].clone(), e));
                        }
                    }
                    Err(e) => {
                        self.recover(e, ap).await?;
                        recovered = true;
                        break;
                    }
                }
                i = j;
            }
            if recovered {
                // The batch again, each key from its master now (keys already written
                // are written again: the latest value either way).
                recovered = false;
                todo = todo
                    .into_iter()
                    .map(|(_, k)| ((self.src.owner(&k), false), k))
                    .collect();
                started = Instant::now();
                continue;
            }
            if again.is_empty() {
                return Ok(());
            }
            let last = again[0].1.clone();
            if started.elapsed() + backoff > nodes::RETRY_FOR {
                return Err(MigrationError::ScanSource {
                    url: self.job.source.url.to_string(),
                    reason: format!(
                        "{} keys still redirected after {:?} (the last: {last}): a resharding or failover that does not end",
                        again.len(),
                        started.elapsed()
                    ),
                });
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
            if again.iter().any(|(_, e)| self.src.ask_target(e).is_none()) {
                if let Err(e) = self.src.refresh().await {
                    self.recover(e, ap).await?;
                }
                self.ensure_subscriptions(ap).await?;
            }
            todo = again
                .into_iter()
                .map(|(k, e)| match self.src.ask_target(&e) {
                    Some(n) => ((n, true), k),
                    None => ((self.src.owner(&k), false), k),
                })
                .collect();
        }
    }

    /// [`copy`](Self::copy) of keys on connection `unit` (`asking`: send `ASKING` first);
    /// returns the keys (by index) the node redirected.
    async fn copy_on(
        &mut self,
        unit: usize,
        asking: bool,
        db: u32,
        keys: &[Bytes],
        pass: Pass,
        ap: &mut Applier,
    ) -> Result<Redirected, MigrationError> {
        if !self.src.conns[unit].select(db).await? {
            return Ok(Vec::new());
        }
        let (memory_usage, big) = (self.memory_usage, self.big);
        let read = read_keys(&mut self.src.conns[unit], asking, keys, memory_usage, big).await?;
        self.write_read(unit, db, keys, read, pass, ap).await
    }

    /// Writes the keys [`read_keys`] read on connection `unit` (big ones read in pieces
    /// there now); returns the keys (by index) the node redirected.
    async fn write_read(
        &mut self,
        unit: usize,
        db: u32,
        keys: &[Bytes],
        read: KeysRead,
        pass: Pass,
        ap: &mut Applier,
    ) -> Result<Redirected, MigrationError> {
        let mut redirected = Vec::new();
        if read.no_memory_usage && self.memory_usage {
            tracing::info!(target: "migrate", "MEMORY USAGE refused by the source: big keys are found by their DUMP size");
            self.memory_usage = false;
        }
        for (at, dump, pttl) in &read.small {
            let key = &keys[*at];
            if let Some(e) = redirect_text(dump).or_else(|| redirect_text(pttl)) {
                redirected.push((*at, e));
                continue;
            }
            let pttl = pttl.as_integer().unwrap_or(-2);
            match dump.as_bytes() {
                Some(payload) if pttl != -2 => {
                    let t = (pttl > 0).then(|| read.now + pttl);
                    self.write(db, key, payload, t, pass, ap).await?;
                }
                _ => self.gone(db, key, pass, ap).await?,
            }
        }
        for &at in &read.big {
            if let Some(e) = self.copy_big(unit, db, &keys[at], pass, ap).await? {
                redirected.push((at, e));
            }
        }
        Ok(redirected)
    }

    async fn write(
        &mut self,
        db: u32,
        key: &Bytes,
        payload: &[u8],
        at: Option<i64>,
        pass: Pass,
        ap: &mut Applier,
    ) -> Result<(), MigrationError> {
        let sink = if pass == Pass::Snapshot {
            &mut self.snap
        } else {
            &mut self.again
        };
        if sink.key(db, key, payload, at, ap).await? == Fed::Sent {
            self.count(pass);
        }
        Ok(())
    }

    fn count(&mut self, pass: Pass) {
        match pass {
            Pass::Snapshot => self.stats.keys_copied += 1,
            Pass::Change => self.stats.keys_recopied += 1,
            Pass::Reconcile => self.stats.keys_reconciled += 1,
        }
    }

    /// A big key in pieces from connection `unit`; the redirection when the node sent
    /// the key elsewhere.
    async fn copy_big(
        &mut self,
        unit: usize,
        db: u32,
        key: &Bytes,
        pass: Pass,
        ap: &mut Applier,
    ) -> Result<Option<String>, MigrationError> {
        let skip = pass == Pass::Snapshot && self.job.fs_config.conflict == Conflict::Skip;
        if skip && self.target_has(db, key).await? {
            ap.report.skipped_conflict += 1;
            return Ok(None);
        }
        let replace = pass != Pass::Snapshot || self.job.fs_config.conflict != Conflict::Skip;
        let chunk = self.job.opts.chunk_elements;
        let cfg = self.job.fs_config.clone();
        let src = &mut self.src.conns[unit];
        let ttls = &mut self.field_ttls;
        match bigkey::copy(src, db, key, &cfg, replace, chunk, ttls, ap).await? {
            Big::Sent => self.count(pass),
            Big::Skipped => {}
            Big::Redirected(e) => return Ok(Some(e)),
            Big::Gone => self.gone(db, key, pass, ap).await?,
            Big::Dump => {
                let r = self.src.conns[unit]
                    .call_many(&[vec![b("DUMP"), key.clone()], vec![b("PTTL"), key.clone()]])
                    .await?;
                if let Some(e) = r.iter().find_map(redirect_text) {
                    return Ok(Some(e));
                }
                let now = now_ms();
                let pttl = r[1].as_integer().unwrap_or(-2);
                match r[0].as_bytes() {
                    Some(p) if pttl != -2 => {
                        let p = p.to_vec();
                        self.write(db, key, &p, (pttl > 0).then(|| now + pttl), pass, ap)
                            .await?
                    }
                    _ => self.gone(db, key, pass, ap).await?,
                }
            }
        }
        Ok(None)
    }

    async fn target_has(&mut self, db: u32, key: &Bytes) -> Result<bool, MigrationError> {
        let Some((tdb, tkey)) = self.job.fs_config.filter.map_key(db, key) else {
            return Ok(false);
        };
        let url = self.job.target.url.to_string();
        if let Some(side) = &mut self.has {
            return side.exists(tdb, &Bytes::copy_from_slice(&tkey), &url).await;
        }
        let r = self.tgts[0]
            .call_many(&[
                vec![&b"SELECT"[..], tdb.to_string().as_bytes()],
                vec![&b"EXISTS"[..], &tkey[..]],
            ])
            .await
            .map_err(|e| MigrationError::Target {
                url,
                source: Box::new(e),
            })?;
        Ok(r[1] == Frame::Integer(1))
    }

    /// A key gone from the source: removed from the target (not in the snapshot).
    async fn gone(
        &mut self,
        db: u32,
        key: &Bytes,
        pass: Pass,
        ap: &mut Applier,
    ) -> Result<(), MigrationError> {
        if pass == Pass::Snapshot {
            return Ok(());
        }
        let Some((tdb, tkey)) = self.job.fs_config.filter.map_key(db, key) else {
            return Ok(());
        };
        let del = if self.job.fs_config.version.has_unlink() {
            "UNLINK"
        } else {
            "DEL"
        };
        let tkey = Bytes::copy_from_slice(&tkey);
        let tag = crate::Tag::new(Some(tdb), del, ap.next_seq()).with_key(tkey.clone());
        ap.send(tag, &[Bytes::from_static(del.as_bytes()), tkey])
            .await?;
        match pass {
            Pass::Reconcile => self.stats.keys_reconciled += 1,
            _ => self.stats.keys_deleted += 1,
        }
        Ok(())
    }

    /// Source minus target key counts of every compared db (a cluster's masters added
    /// up); empty when the comparison means nothing (key filters, transforms).
    async fn size_diff(&mut self, ap: &mut Applier) -> Result<Vec<(u32, i64)>, MigrationError> {
        loop {
            match self.size_diff_once().await {
                Err(e) => self.recover(e, ap).await?,
                ok => return ok,
            }
        }
    }

    async fn size_diff_once(&mut self) -> Result<Vec<(u32, i64)>, MigrationError> {
        let f = &self.job.fs_config.filter;
        if f.filters_keys() || f.has_transform() {
            if self.src.is_cluster() {
                // No counts to compare; still find a master that went down (its
                // subscription cannot say so: it only goes quiet).
                for conn in &mut self.src.conns {
                    conn.call(vec![b("PING")]).await?;
                }
            }
            return Ok(Vec::new());
        }
        let dbs = self.dbs.clone();
        let mut src_cmds = Vec::new();
        for db in &dbs {
            src_cmds.push(vec![b("SELECT"), Bytes::from(db.to_string())]);
            src_cmds.push(vec![b("DBSIZE")]);
        }
        let mut s = vec![0i64; dbs.len()];
        for conn in &mut self.src.conns {
            let r = conn.call_many(&src_cmds).await?;
            if let Some(last) = dbs.last() {
                conn.assume_db(*last);
            }
            for (i, n) in s.iter_mut().enumerate() {
                *n += r[2 * i + 1].as_integer().unwrap_or(0);
            }
        }
        let mut tgt_cmds: Vec<Vec<Bytes>> = Vec::new();
        for db in &dbs {
            let t = f.target_db(*db).unwrap_or(*db);
            tgt_cmds.push(vec![b("SELECT"), Bytes::from(t.to_string())]);
            tgt_cmds.push(vec![b("DBSIZE")]);
        }
        // Summed over the masters of a cluster target.
        let mut t: Vec<i64> = vec![0; tgt_cmds.len()];
        for (i, tgt) in self.tgts.iter_mut().enumerate() {
            let url = self.job.target_nodes[i].url.to_string();
            let r = tgt
                .call_many(&tgt_cmds)
                .await
                .map_err(|e| MigrationError::Target {
                    url,
                    source: Box::new(e),
                })?;
            // A db the target lacks (a cluster refuses `SELECT`; its `DBSIZE` would be db
            // 0's) holds nothing.
            for (i, pair) in r.chunks(2).enumerate() {
                if let [select, size] = pair {
                    if !select.is_error() {
                        t[2 * i + 1] += size.as_integer().unwrap_or(0);
                    }
                }
            }
        }
        // Source dbs that share a target db are compared as their sum.
        let mut by_target: std::collections::BTreeMap<u32, (i64, i64)> = Default::default();
        for (i, db) in dbs.iter().enumerate() {
            let tdb = f.target_db(*db).unwrap_or(*db);
            let e = by_target.entry(tdb).or_default();
            e.0 += s[i];
            e.1 = t[2 * i + 1];
        }
        Ok(by_target
            .into_iter()
            .filter(|(_, (a, b))| a != b)
            .map(|(db, (a, b))| (db, a - b))
            .collect())
    }

    /// Removes target keys absent on the source, then copies every source key again;
    /// `units`: only the keys of these cluster masters (their subscription was lost);
    /// `None`: all. `false` when stopped.
    async fn reconcile(
        &mut self,
        units: Option<Vec<usize>>,
        ap: &mut Applier,
        tracker: &Tracker,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<bool, MigrationError> {
        self.stats.reconcile_passes += 1;
        ap.flush().await?;
        // By address: a master going down during the pass renumbers the connections (the
        // one that took over its slots is marked and reconciled next).
        let addrs: Option<Vec<String>> = units
            .as_ref()
            .map(|u| u.iter().map(|&i| self.src.addr(i).to_string()).collect());
        let units_now = |src: &Sources| -> Option<Vec<usize>> {
            addrs
                .as_ref()
                .map(|a| a.iter().filter_map(|a| src.index_of(a)).collect())
        };
        if !self.job.fs_config.filter.has_transform() {
            loop {
                let units = units_now(&self.src);
                match self.sweep(units.as_deref(), ap).await {
                    Ok(()) => break,
                    Err(e) => self.recover(e, ap).await?,
                }
            }
        }
        let units = units_now(&self.src);
        let done = self
            .scan_all(Pass::Reconcile, units, ap, tracker, stop)
            .await?;
        ap.flush().await?;
        self.publish(ap, tracker);
        Ok(done)
    }

    /// Target keys (inside the scope) that no source db mapped to their db holds; with
    /// `units`, only keys whose slot those cluster masters own. A key the source answers
    /// about with a redirection is kept (it exists somewhere).
    async fn sweep(
        &mut self,
        units: Option<&[usize]>,
        ap: &mut Applier,
    ) -> Result<(), MigrationError> {
        let f = self.job.fs_config.filter.clone();
        let url = self.job.target.url.to_string();
        let terr = |e| MigrationError::Target {
            url: url.clone(),
            source: Box::new(e),
        };
        let mut targets: std::collections::BTreeMap<u32, Vec<u32>> = Default::default();
        for db in &self.dbs {
            targets
                .entry(f.target_db(*db).unwrap_or(*db))
                .or_default()
                .push(*db);
        }
        let del = if self.job.fs_config.version.has_unlink() {
            "UNLINK"
        } else {
            "DEL"
        };
        // Every master of a cluster target.
        for n in 0..self.tgts.len() {
            for (&tdb, sources) in &targets {
                let r = self.tgts[n]
                    .call(&["SELECT".as_bytes(), tdb.to_string().as_bytes()])
                    .await
                    .map_err(terr)?;
                if r.is_error() {
                    continue;
                }
                let mut cursor = Bytes::from_static(b"0");
                loop {
                    let reply = self.tgts[n]
                        .call(&[
                            &b"SCAN"[..],
                            &cursor,
                            b"COUNT",
                            self.job.opts.count.to_string().as_bytes(),
                        ])
                        .await
                        .map_err(terr)?;
                    let Some([next, Frame::Array(keys)]) = reply.as_slice() else {
                        break;
                    };
                    let next = Bytes::copy_from_slice(next.as_bytes().unwrap_or(b"0"));
                    let keys: Vec<Bytes> = keys
                        .iter()
                        .filter_map(Frame::as_bytes)
                        .filter(|k| !k.starts_with(RESERVED_PREFIX) && f.accepts_key(k))
                        .filter(|k| units.is_none_or(|u| u.contains(&self.src.owner(k))))
                        .map(Bytes::copy_from_slice)
                        .collect();
                    let mut present = vec![false; keys.len()];
                    // Each key asked of its master.
                    let mut by_owner: std::collections::BTreeMap<usize, Vec<usize>> =
                        Default::default();
                    for (i, k) in keys.iter().enumerate() {
                        by_owner.entry(self.src.owner(k)).or_default().push(i);
                    }
                    for (owner, idx) in by_owner {
                        for sdb in sources {
                            let mut cmds = vec![vec![b("SELECT"), Bytes::from(sdb.to_string())]];
                            cmds.extend(idx.iter().map(|&i| vec![b("EXISTS"), keys[i].clone()]));
                            let conn = &mut self.src.conns[owner];
                            let r = conn.call_many(&cmds).await?;
                            if r[0].is_error() {
                                continue;
                            }
                            conn.assume_db(*sdb);
                            for (&i, x) in idx.iter().zip(&r[1..]) {
                                present[i] |= *x == Frame::Integer(1) || x.is_error();
                            }
                        }
                    }
                    for (k, p) in keys.into_iter().zip(present) {
                        if !p {
                            let tag =
                                crate::Tag::new(Some(tdb), del, ap.next_seq()).with_key(k.clone());
                            ap.send(tag, &[Bytes::from_static(del.as_bytes()), k])
                                .await?;
                            self.stats.keys_reconciled += 1;
                        }
                    }
                    if &next[..] == b"0" {
                        break;
                    }
                    cursor = next;
                }
            }
        }
        ap.flush().await?;
        Ok(())
    }
}
