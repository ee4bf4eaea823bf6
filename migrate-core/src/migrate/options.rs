//! What a migration reads, where it writes, and its policies.

use std::path::PathBuf;
use std::time::Duration;

use replication_client::{RedisUrl, TlsOptions};

use crate::rewrite::RewriteOptions;
use crate::{Filter, WriterOptions};

/// Where the data comes from.
// Built once per migration: the size of the `Live` variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Source {
    /// An RDB file (a one-shot import: no incremental phase).
    RdbFile(PathBuf),
    /// A live server, read as one of its replicas (`PSYNC`): the full sync, then every
    /// write until the migration is stopped (or caught up, with
    /// [`once`](crate::migrate::MigrationBuilder::once)). Every setting of the
    /// configuration is used except its RDB mode: the migration receives the RDB raw
    /// ([`RdbMode::Raw`](replication_client::RdbMode::Raw)) and decodes it itself, with raw
    /// values for `RESTORE` and exact byte progress.
    Live(replication_client::Config),
}

/// The target server: its URL (`redis://` or `rediss://`, credentials taken from it) and the
/// TLS settings used for `rediss://`.
#[derive(Debug, Clone)]
pub struct TargetConfig {
    /// The URL; shown redacted everywhere.
    pub url: RedisUrl,
    /// TLS settings (only used for `rediss://`): the same options type as the source side,
    /// verification on by default.
    pub tls: TlsOptions,
}

impl TargetConfig {
    /// A target at `url` with default TLS settings (verification on).
    pub fn new(url: RedisUrl) -> TargetConfig {
        TargetConfig {
            url,
            tls: TlsOptions::default(),
        }
    }

    /// A plain connection to the server of a replication link (`INFO`, `SCAN`, probes),
    /// with its URL, credentials and TLS settings.
    pub(crate) fn of_source(source: &replication_client::Config) -> TargetConfig {
        TargetConfig {
            url: source.url().clone(),
            tls: source.tls_options().clone(),
        }
    }

    /// Parses `url`.
    ///
    /// # Errors
    /// The URL does not parse (the error shows it redacted).
    pub fn parse(url: &str) -> Result<TargetConfig, replication_client::Error> {
        Ok(TargetConfig::new(RedisUrl::parse(url)?))
    }

    /// Sets the TLS settings.
    pub fn tls(mut self, tls: TlsOptions) -> TargetConfig {
        self.tls = tls;
        self
    }
}

/// How keys of the full sync are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WriteMode {
    /// Per key: `RESTORE` of the raw value when the target knows its type and it is below
    /// the big-key threshold, commands otherwise. Default.
    #[default]
    Auto,
    /// Always `RESTORE` (a key the target cannot restore is a failure).
    Restore,
    /// Always commands (module values, which have none, are failures).
    Rewrite,
}

/// What to do with keys that already exist on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Conflict {
    /// Refuse to start when a target db that will be written holds keys. Default.
    #[default]
    Refuse,
    /// Overwrite: `RESTORE ... REPLACE`, or the key removed before its commands.
    Replace,
    /// Keep the target's key: `RESTORE` without `REPLACE` (its `BUSYKEY` counts as skipped);
    /// a key written as commands is first checked with `EXISTS` on a second connection.
    /// Applies to the full sync only: the incremental stream always applies.
    Skip,
}

/// What a failed write does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ErrorPolicy {
    /// Stop the migration on the first failure (with its key and command). Default.
    #[default]
    Stop,
    /// Report and count each failure (and each unsupported command), and go on.
    SkipAndCount,
}

/// What a source transaction or script whose keys span several slots of a cluster target
/// does (a cluster runs a transaction only when all its keys share one slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CrossSlot {
    /// Apply its commands one by one, in order (not atomically), count it in
    /// [`Report::cross_slot_transactions`](super::Report::cross_slot_transactions) and warn
    /// once. Default.
    #[default]
    Apply,
    /// Stop the migration at the first one ([`MigrationError::CrossSlotRefused`](super::MigrationError::CrossSlotRefused)).
    Refuse,
}

/// Everything the builder collects besides the source and target.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) filter: Filter,
    pub(crate) write_mode: WriteMode,
    pub(crate) conflict: Conflict,
    pub(crate) on_error: ErrorPolicy,
    pub(crate) once: bool,
    pub(crate) big_key_bytes: usize,
    pub(crate) writer: Option<WriterOptions>,
    pub(crate) rewrite: RewriteOptions,
    pub(crate) connect_timeout: Duration,
    pub(crate) idle_check: Duration,
    pub(crate) max_listed: usize,
    pub(crate) checkpoint: bool,
    pub(crate) reset_checkpoint: bool,
    pub(crate) probe_restore: Option<bool>,
    pub(crate) source_mode: super::SourceMode,
    pub(crate) scan: super::ScanOptions,
    pub(crate) limits: super::Limits,
    /// Cluster sources: which shards (empty: all).
    pub(crate) shards: Vec<super::ShardSpec>,
    /// Cluster sources: first full syncs running at a time.
    pub(crate) max_full_syncs: usize,
    /// Cluster sources: read each shard from a replica.
    pub(crate) prefer_replica: bool,
    /// Cluster sources: how often the topology is read again (zero: never).
    pub(crate) rediscover_every: Duration,
    /// Cluster targets: what a cross-slot source transaction or script does.
    pub(crate) cross_slot: CrossSlot,
    /// Test-only fault (cluster targets): stop after this many cross-slot copy-backs or
    /// keyless per-master transactions.
    pub(crate) crash_after_copy_backs: Option<u32>,
    /// Cluster sources: how long a key moved in from another shard waits for the old
    /// owner's stream to be applied first (see `shards::moves`).
    pub(crate) move_wait: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            filter: Filter::new(),
            write_mode: WriteMode::Auto,
            conflict: Conflict::Refuse,
            on_error: ErrorPolicy::Stop,
            once: false,
            big_key_bytes: crate::migrate::DEFAULT_BIG_KEY_BYTES,
            writer: None,
            rewrite: RewriteOptions::default(),
            connect_timeout: Duration::from_secs(10),
            idle_check: Duration::from_millis(200),
            max_listed: 1000,
            checkpoint: true,
            reset_checkpoint: false,
            probe_restore: None,
            source_mode: super::SourceMode::default(),
            scan: super::ScanOptions::default(),
            limits: super::Limits::default(),
            shards: Vec::new(),
            max_full_syncs: 2,
            prefer_replica: false,
            rediscover_every: Duration::from_secs(10),
            cross_slot: CrossSlot::Apply,
            crash_after_copy_backs: None,
            move_wait: Duration::from_secs(60),
        }
    }
}
