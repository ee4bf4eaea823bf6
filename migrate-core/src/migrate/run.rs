//! The migration task: connect, check, then drive the source into the target.

use std::sync::Arc;
use std::time::Duration;

use replication_client::{RdbMode, Replica};
use tokio::sync::watch;

use super::apply::{Applier, Sink};
use super::checkpoint::{self, Checkpoint, CheckpointPhase, CHECKPOINT_KEY};
use super::conn;
use super::fullsync::{FullSync, FullSyncConfig};
use super::live::Live;
use super::options::Settings;
use super::preflight;
use super::progress::{Phase, Tracker};
use super::report::{Report, StopReason};
use super::side::{SideConfig, SideConn};
use super::{scan, Conflict, MigrationError, Source, SourceMode, TargetConfig};
use crate::ServerFamily;

/// The live source as a plain connection (`None` for an RDB file).
fn source_conn(job: &Job) -> Option<TargetConfig> {
    match &job.source {
        Source::Live(c) => Some(TargetConfig::of_source(c)),
        Source::RdbFile(_) => None,
    }
}

/// Reads of the RDB file (straight into the decoder's buffer).
const FILE_CHUNK: usize = 1 << 20;
/// Progress updates during the full sync: every this many RDB bytes.
pub(crate) const PROGRESS_EVERY: u64 = 256 << 10;

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
    if let Source::Live(config) = &job.source {
        if s.source_mode != SourceMode::Scan {
            if let Some(topo) = super::shards::detect(config, s.connect_timeout).await {
                return super::shards::run(job, target, topo, tracker, stop, report).await;
            }
        }
    }
    let source_addr = match &job.source {
        Source::RdbFile(p) => file_identity(p),
        Source::Live(c) => c.url().addr(),
    };
    let fingerprint = checkpoint::fingerprint(&source_addr, s);
    let mut cluster = super::cluster_sink::detect(&mut target, &url).await;
    let checkpoint_on = s.checkpoint;
    let resume = if let Some(c) = cluster.as_mut() {
        // Its checkpoint keys: reset, or read (see cluster_sink).
        c.start(&job.target, s, CHECKPOINT_KEY, &fingerprint, report)
            .await?
    } else if s.reset_checkpoint {
        target.call(&["DEL", CHECKPOINT_KEY]).await.map_err(terr)?;
        tracing::info!(target: "migrate", "checkpoint removed: starting over");
        None
    } else if s.checkpoint {
        read_checkpoint(&mut target, &url, CHECKPOINT_KEY, &fingerprint).await?
    } else {
        None
    };
    if let Some(c) = &resume {
        tracing::info!(target: "migrate", "resuming from the target's checkpoint: {c}");
        report.resumed_from = Some(c.to_string());
    }
    if let (Some(c), Source::Live(config)) = (&cluster, &job.source) {
        super::cluster_sink::check_source_dbs(config, s, c.dbs, &url).await?;
    }
    let Prepared {
        conflict,
        wopts,
        fs: fs_base,
        side,
    } = prepare(
        job,
        &mut target,
        &url,
        cluster.as_ref(),
        resume.is_some(),
        report,
    )
    .await?;
    let exists = if conflict == Conflict::Skip && s.write_mode != super::WriteMode::Restore {
        Some(SideConn::connect(&side).await?)
    } else {
        None
    };
    let sink = match cluster {
        None => Sink::Single(target.into_writer(wopts)),
        Some(c) => Sink::Cluster(Box::new(
            c.open(&job.target, s.connect_timeout, wopts).await?,
        )),
    };
    let ap = slot.insert(Applier::new(
        sink,
        url.clone(),
        s.conflict,
        s.on_error,
        s.max_listed,
        std::mem::take(report),
    ));
    ap.cross_slot = s.cross_slot;
    let buckets = super::limit::Buckets::new(&s.limits);
    ap.target_ops = buckets.target_ops.clone();
    let _ = tracker.buckets.set(buckets.clone());
    let fs_config = |origin: String| FullSyncConfig {
        origin,
        ..fs_base.clone()
    };
    match &job.source {
        Source::RdbFile(path) => {
            ap.report.source_mode = "file".into();
            let fs = FullSync::new(fs_config(path.display().to_string()), exists);
            let ckpt = checkpoint_on.then(|| CheckpointWriter {
                key: bytes::Bytes::from_static(CHECKPOINT_KEY.as_bytes()),
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
                let target_nodes = super::cluster_sink::scan_targets(ap, &job.target);
                let cluster = ap.cluster().is_some();
                let job = scan::ScanJob {
                    target_nodes,
                    cluster,
                    source: source_conn(job).expect("scan mode reads live sources only"),
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
                ckpt: checkpoint_on.then(|| CheckpointWriter {
                    key: bytes::Bytes::from_static(CHECKPOINT_KEY.as_bytes()),
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
                source: source_conn(job),
                idle_check: s.idle_check,
                version,
                filter: s.filter.clone(),
                shard: None,
                permit: None,
            };
            live.run(replica, ap, tracker, stop).await
        }
    }
}

/// What every migration sets up on the target before its first write (one standalone
/// source, or a cluster source's shards): the not-empty check, the preflight (modules,
/// function libraries, search indexes; on every master of a cluster), the writer options
/// and the full sync's settings (`origin` left for the caller).
pub(crate) struct Prepared {
    /// The conflict policy of the full sync (`Replace` when resuming).
    pub(crate) conflict: Conflict,
    pub(crate) wopts: crate::WriterOptions,
    pub(crate) fs: FullSyncConfig,
    /// Where `EXISTS` and probes go (the key's master on a cluster).
    pub(crate) side: SideConfig,
}

/// See [`Prepared`]; `resumed`: a checkpoint was found (the target holds our own data).
pub(crate) async fn prepare(
    job: &Job,
    target: &mut crate::Target<conn::Stream>,
    url: &str,
    cluster: Option<&super::cluster_sink::Detected>,
    resumed: bool,
    report: &mut Report,
) -> Result<Prepared, MigrationError> {
    let s = &job.settings;
    if s.conflict == Conflict::Refuse && !resumed {
        // Every db the filter can write to (source dbs 0..=255 covers any mapping).
        let dbs = s.filter.target_dbs(0..256);
        let busy = match cluster {
            None => target
                .keyspace()
                .await
                .map_err(|source| MigrationError::Target {
                    url: url.to_string(),
                    source: Box::new(source),
                })?
                .non_empty(dbs),
            Some(c) => c.non_empty(&job.target, s.connect_timeout, dbs).await?,
        };
        if !busy.is_empty() {
            return Err(MigrationError::TargetNotEmpty {
                url: url.to_string(),
                dbs: busy,
            });
        }
    }
    // A migration that resumes loads over its own earlier data.
    let conflict = if resumed {
        Conflict::Replace
    } else {
        s.conflict
    };
    // Search indexes go to every master of a cluster.
    let masters: Vec<TargetConfig> = cluster
        .iter()
        .flat_map(|c| c.topology.masters())
        .map(|m| super::cluster_sink::node_config(&job.target, m))
        .collect();
    let pre = preflight::run(
        &job.source,
        target,
        url,
        &masters,
        conflict,
        s.on_error,
        s.connect_timeout,
        report,
    )
    .await?;
    if let Some(c) = cluster {
        // The preflight asked the URL's node; the other masters must agree.
        c.check_masters(&job.target, s, &pre, conflict).await?;
    }
    // `EXISTS` and probes go to the key's master on a cluster.
    let side = SideConfig {
        target: job.target.clone(),
        timeout: s.connect_timeout,
        cluster: cluster.is_some(),
    };
    let version = target.version();
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
    let fs = FullSyncConfig {
        origin: String::new(),
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
        probe: probe.then(|| side.clone()),
    };
    Ok(Prepared {
        conflict,
        wopts,
        fs,
        side,
    })
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
    let mut file = std::fs::File::open(path).map_err(file_err)?;
    let total = file.metadata().map_err(file_err)?.len();
    tracing::info!(target: "migrate", "importing {} ({total} bytes)", path.display());
    tracker.update(|p| {
        p.phase = Phase::FullSync;
        p.rdb_total = Some(total);
    });
    if let Some(c) = ckpt {
        // A restarted import of this file replaces what the first attempt wrote.
        c.write_import(ap, CheckpointPhase::FullSync).await?;
    }
    let mut last = 0;
    loop {
        if *stop.borrow() {
            tracker.update(|p| p.phase = Phase::Stopping);
            ap.flush().await?;
            publish_full(tracker, &fs, ap);
            return Ok(StopReason::Stopped);
        }
        // Read straight into the decoder's buffer, after what it has not decoded yet (on
        // the blocking pool, as a file read may block): no second buffer, no copy.
        let buf = fs.take_buf();
        let (back, buf, read) = tokio::task::spawn_blocking(move || {
            let mut buf = buf;
            let read = read_append(&mut file, &mut buf, FILE_CHUNK);
            (file, buf, read)
        })
        .await
        .map_err(|e| MigrationError::Internal(e.to_string()))?;
        file = back;
        let n = read.map_err(file_err)?;
        fs.decode_buf(buf, ap).await?;
        if n == 0 {
            break;
        }
        if fs.offset() - last >= PROGRESS_EVERY {
            last = fs.offset();
            publish_full(tracker, &fs, ap);
        }
    }
    fs.finish()?;
    // The modules the file's values need that the target lacks (when the preflight did not
    // read them before writing: not under ErrorPolicy::Stop).
    if let Some(loaded) = &fs.config().target_modules {
        let missing = preflight::modules_missing(fs.module_types(), loaded);
        if !missing.is_empty() && ap.report.modules_missing.is_empty() {
            tracing::warn!(target: "migrate", "the target lacks the modules {} of the file's values: their keys are counted as unsupported", missing.join(", "));
            ap.report.modules_missing = missing;
        }
    }
    if ckpt.is_some() {
        // Complete, once every write before it is applied: a write that failed stops the
        // import here and leaves the checkpoint, so that a restart replaces what was
        // written (with a window larger than a small file, the removal used to reach the
        // target before the failure was read). A later import is then a new one.
        ap.flush().await?;
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

pub(crate) fn publish_full(tracker: &Tracker, fs: &FullSync, ap: &Applier) {
    let written = ap.report.keys_written();
    tracker.update(|p| {
        p.rdb_bytes = fs.offset();
        p.keys_written = written;
        p.keys_skipped = fs.keys_skipped();
        publish_counts(p, &ap.report);
    });
}

/// The report's running totals that the progress shows.
pub(crate) fn publish_counts(p: &mut super::Progress, r: &Report) {
    p.failures = r.failures_total;
    p.unsupported = r.unsupported_total;
    p.full_syncs = r.full_syncs;
    p.partial_resyncs = r.partial_resyncs;
    p.disconnects = r.disconnects;
}

/// Removes the target's checkpoints (see the module docs, "Resume"): every key named
/// `__redis-migrate:checkpoint*` in db 0 ([`CHECKPOINT_KEY`], and the per-shard keys of a
/// cluster source), and the fences of atomic slot migrations (`__redis-migrate:asm`), so
/// the next migration into it starts over. Returns whether there was a checkpoint. The
/// target's keys are not touched.
///
/// # Errors
/// Connecting to or authenticating with the target failed.
pub async fn forget_checkpoint(
    target: &TargetConfig,
    timeout: Duration,
) -> Result<bool, MigrationError> {
    let mut t = conn::connect(target, timeout).await?;
    if let Some(c) = super::cluster_sink::detect(&mut t, &target.url.to_string()).await {
        // Every checkpoint key (of every source shard), on every master.
        return super::cluster_sink::forget_all(target, timeout, &c.topology, CHECKPOINT_KEY, true)
            .await;
    }
    let terr = |source| MigrationError::Target {
        url: target.url.to_string(),
        source: Box::new(source),
    };
    let keys = checkpoint_keys(&mut t).await.map_err(terr)?;
    let mut removed = false;
    for key in keys {
        let reply = t.call(&[&b"DEL"[..], &key[..]]).await.map_err(terr)?;
        removed |= reply == resp_codec::Frame::Integer(1);
    }
    let fences = super::shards::FENCE_KEY.as_bytes();
    t.call(&[&b"DEL"[..], fences]).await.map_err(terr)?;
    Ok(removed)
}

/// The checkpoint keys in db 0 of the target (`SCAN MATCH __redis-migrate:checkpoint*`).
pub(crate) async fn checkpoint_keys(
    t: &mut crate::Target<conn::Stream>,
) -> Result<Vec<bytes::Bytes>, crate::Error> {
    let pattern = format!("{CHECKPOINT_KEY}*");
    let mut keys = vec![bytes::Bytes::from_static(CHECKPOINT_KEY.as_bytes())];
    let mut cursor = bytes::Bytes::from_static(b"0");
    // At most this many SCAN calls: a target with billions of keys is still walked in
    // bounded time (1000 per call), and the standalone key is always included.
    for _ in 0..1_000_000 {
        let reply = t
            .call(&[
                &b"SCAN"[..],
                &cursor[..],
                b"MATCH",
                pattern.as_bytes(),
                b"COUNT",
                b"1000",
            ])
            .await?;
        let Some([next, resp_codec::Frame::Array(batch)]) = reply.as_slice() else {
            break;
        };
        for k in batch.iter().filter_map(resp_codec::Frame::as_bytes) {
            if !keys.iter().any(|x| &x[..] == k) {
                keys.push(bytes::Bytes::copy_from_slice(k));
            }
        }
        match next.as_bytes() {
            Some(b"0") | None => break,
            Some(c) => cursor = bytes::Bytes::copy_from_slice(c),
        }
    }
    Ok(keys)
}

/// Reads the target's checkpoint: `None` when there is none; an error when it belongs to
/// another migration or cannot be read.
pub(crate) async fn read_checkpoint(
    target: &mut crate::Target<conn::Stream>,
    url: &str,
    key: &str,
    fingerprint: &str,
) -> Result<Option<Checkpoint>, MigrationError> {
    let terr = |source| MigrationError::Target {
        url: url.to_string(),
        source: Box::new(source),
    };
    let reply = target.call(&["GET", key]).await.map_err(terr)?;
    let value = match &reply {
        f if f.is_null() => return Ok(None),
        f if f.is_error() => {
            return Err(MigrationError::CheckpointUnreadable {
                url: url.to_string(),
                key: key.to_string(),
                reason: format!("{f:?}"),
            })
        }
        f => f.as_bytes().unwrap_or_default(),
    };
    let c = Checkpoint::parse(value).map_err(|reason| MigrationError::CheckpointUnreadable {
        url: url.to_string(),
        key: key.to_string(),
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

/// How much to read after `rest` undecoded bytes into a buffer of `chunk` bytes: when the
/// rest fits in the half the decoder consumed, the rest plus the read fill `chunk`, so that
/// `BytesMut::reserve` moves the rest to the front of the same allocation instead of
/// allocating (and faulting in) a new one for every read; a longer rest (a value bigger
/// than half a chunk) grows the buffer by a chunk.
pub(crate) fn refill_len(rest: usize, chunk: usize) -> usize {
    if rest <= chunk / 2 {
        chunk - rest
    } else {
        chunk
    }
}

/// Appends up to `refill_len(buf.len(), chunk)` bytes of `file` to `buf` (reading until
/// that many or the end of the file); 0 at the end of the file.
///
/// The buffer goes through a `Vec` and back (the same allocation; the undecoded rest moved to its
/// front, as `BytesMut::reserve` would): `read_to_end` reads into the spare capacity
/// without zeroing it first (the reads used to zero each 1 MiB before filling it).
pub(crate) fn read_append(
    file: &mut impl std::io::Read,
    buf: &mut bytes::BytesMut,
    chunk: usize,
) -> std::io::Result<usize> {
    use std::io::Read;
    let n = refill_len(buf.len(), chunk);
    let mut vec: Vec<u8> = std::mem::take(buf).into();
    vec.reserve(n);
    let start = vec.len();
    // `read_to_end` retries interrupted reads itself; on an error, what it read is kept.
    let read = file.by_ref().take(n as u64).read_to_end(&mut vec);
    let got = vec.len() - start;
    // Back without a copy (a unique `Bytes` becomes a `BytesMut` of the same allocation).
    *buf = bytes::BytesMut::from(bytes::Bytes::from(vec));
    read.map(|_| got)
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
pub(crate) struct CheckpointWriter {
    /// The checkpoint key ([`CHECKPOINT_KEY`], or its per-shard variant).
    pub(crate) key: bytes::Bytes,
    pub(crate) fingerprint: String,
    pub(crate) source: String,
}

/// A replication id for checkpoints of RDB file imports, which have none.
const NO_REPLID: &[u8; 40] = b"0000000000000000000000000000000000000000";

impl CheckpointWriter {
    pub(crate) async fn write(
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
        let key = self.key.clone();
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

#[cfg(test)]
mod tests {
    use super::refill_len;

    /// A short rest plus the read fill one chunk (the allocation is reused); a rest of more
    /// than half a chunk grows the buffer by a chunk.
    #[test]
    fn refill_keeps_one_chunk() {
        assert_eq!(refill_len(0, 1024), 1024);
        assert_eq!(refill_len(100, 1024), 924);
        assert_eq!(refill_len(512, 1024), 512);
        assert_eq!(refill_len(513, 1024), 1024);
        assert_eq!(refill_len(5000, 1024), 1024);
    }
}
