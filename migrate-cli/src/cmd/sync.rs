//! `redis-migrate sync --from URL --to URL [--once]`: copy a live server over PSYNC and keep
//! the target in sync until stopped (SIGINT/SIGTERM: drain, report, exit 0).

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use migrate_core::migrate::{Limits, Migration, ScanOptions, ShardSpec, Source, SourceMode};
use replication_client::{Config, TlsOptions};

use super::migrate_args::MigrateArgs;
use crate::error::CliError;

/// Arguments of `sync`.
#[derive(Debug, Args)]
pub(crate) struct SyncArgs {
    #[command(flatten)]
    from: FromArgs,
    /// Stop by itself once the full sync is done and the target has caught up: everything
    /// up to the source's replication offset of that moment is applied (also under a
    /// steady writer). The precheck then skips its write-rate sample.
    #[arg(long = "once")]
    once: bool,
    /// How the source is read: auto (PSYNC, or scan mode when the source refuses
    /// replication), psync, or scan (SCAN + DUMP, then keyspace notifications).
    #[arg(long = "source-mode", value_enum, default_value = "auto")]
    source_mode: SourceModeArg,
    /// Scan mode: SCAN COUNT, and keys read per pipelined batch.
    #[arg(long = "scan-count", value_name = "N", default_value_t = 1000)]
    scan_count: u32,
    /// Scan mode: set notify-keyspace-events on the source (adds KEA) when change tracking
    /// needs it; without this flag the sync stops and names the setting.
    #[arg(long = "set-notify-keyspace-events")]
    set_notify_keyspace_events: bool,
    /// Scan mode: notify-keyspace-events was set outside the tool (a managed service's
    /// parameter group) on a source that refuses CONFIG GET.
    #[arg(long = "notify-keyspace-events-configured")]
    notify_keyspace_events_configured: bool,
    /// Scan mode: seconds between DBSIZE comparisons of source and target (a lasting
    /// difference starts a reconcile pass).
    #[arg(
        long = "reconcile-interval",
        value_name = "SECS",
        default_value_t = 5.0
    )]
    reconcile_interval: f64,
    /// At most N commands per second to the source (scan mode).
    #[arg(long = "source-max-ops", value_name = "N")]
    source_max_ops: Option<u64>,
    /// At most BYTES per second read from the source (both modes).
    #[arg(long = "max-bandwidth", value_name = "BYTES")]
    max_bandwidth: Option<u64>,
    /// At most N commands per second written to the target (both modes).
    #[arg(long = "target-max-ops", value_name = "N")]
    target_max_ops: Option<u64>,
    /// Cluster source: how many shards may run their first full sync at the same time
    /// (each forks its master).
    #[arg(long = "max-full-syncs", value_name = "N", default_value_t = 2)]
    max_full_syncs: usize,
    /// Cluster source: read each shard from one of its replicas (a healthy one, else the
    /// master) to spare the masters.
    #[arg(long = "prefer-replica")]
    prefer_replica: bool,
    /// Cluster source: migrate only these shards: indexes in the list sorted by first slot
    /// (`0-2,5`) and/or node ids (of the shard's master or a replica). Run one process per
    /// subset to split a cluster across machines.
    #[arg(long = "shards", value_name = "LIST")]
    shards: Option<String>,
    /// Cluster source: seconds between topology checks (new shards, a moved shard); 0
    /// turns them off (a failed link always checks).
    #[arg(
        long = "rediscover-interval",
        value_name = "SECS",
        default_value_t = 10.0
    )]
    rediscover_interval: f64,
    /// Cluster source resharded while it runs: seconds a key moved in from another shard
    /// waits for the old owner's stream (this process's or another's, seen in its
    /// checkpoint on the target) to be applied first, and a Valkey 9 atomic slot
    /// migration's import for the old owner's link to confirm; then it goes on anyway and
    /// is counted in the report's warnings.
    #[arg(long = "move-wait", value_name = "SECS", default_value_t = 60.0)]
    move_wait: f64,
    #[command(flatten)]
    common: MigrateArgs,
}

/// `--source-mode`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum SourceModeArg {
    /// PSYNC, or scan mode when the source refuses replication.
    Auto,
    /// PSYNC only.
    Psync,
    /// SCAN + DUMP with keyspace notifications.
    Scan,
}

impl From<SourceModeArg> for SourceMode {
    fn from(a: SourceModeArg) -> SourceMode {
        match a {
            SourceModeArg::Auto => SourceMode::Auto,
            SourceModeArg::Psync => SourceMode::Psync,
            SourceModeArg::Scan => SourceMode::Scan,
        }
    }
}

/// The source of `sync` and `check`: its URL and TLS flags.
#[derive(Debug, Args)]
pub(crate) struct FromArgs {
    /// The source: redis://[user:password@]host:port or rediss:// for TLS. The user needs
    /// the replication commands (PSYNC, REPLCONF).
    #[arg(
        long = "from",
        value_name = "URL",
        env = "REDIS_MIGRATE_FROM",
        hide_env_values = true
    )]
    from: String,
    /// CA certificate file (PEM) to verify the source (rediss://).
    #[arg(long = "from-cacert", value_name = "FILE")]
    from_cacert: Option<PathBuf>,
    /// Client certificate (PEM) for the source.
    #[arg(long = "from-cert", value_name = "FILE", requires = "from_key")]
    from_cert: Option<PathBuf>,
    /// Client private key (PEM) for the source.
    #[arg(long = "from-key", value_name = "FILE", requires = "from_cert")]
    from_key: Option<PathBuf>,
    /// Server name for SNI and verification (default: the URL's host).
    #[arg(long = "from-sni", value_name = "NAME")]
    from_sni: Option<String>,
    /// Do not verify the source's certificate (dangerous).
    #[arg(long = "from-insecure")]
    from_insecure: bool,
}

impl FromArgs {
    fn tls(&self) -> TlsOptions {
        let mut tls = TlsOptions::new().insecure_skip_verify(self.from_insecure);
        if let Some(ca) = &self.from_cacert {
            tls = tls.ca_file(ca);
        }
        if let (Some(cert), Some(key)) = (&self.from_cert, &self.from_key) {
            tls = tls.client_cert(cert, key);
        }
        if let Some(sni) = &self.from_sni {
            tls = tls.server_name(sni);
        }
        tls
    }

    /// The replication configuration of the source.
    pub(crate) fn config(&self) -> Result<Config, CliError> {
        Ok(Config::new(&self.from)
            .map_err(|e| CliError::usage(format!("--from: {e}")))?
            .tls(self.tls()))
    }

    /// The source as an ordinary server (for `verify`).
    pub(crate) fn server(&self) -> Result<migrate_core::migrate::TargetConfig, CliError> {
        Ok(migrate_core::migrate::TargetConfig::parse(&self.from)
            .map_err(|e| CliError::usage(format!("--from: {e}")))?
            .tls(self.tls()))
    }
}

impl SyncArgs {
    pub(crate) fn run(mut self) -> Result<(), CliError> {
        let source = Source::Live(self.from.config()?);
        let mode = SourceMode::from(self.source_mode);
        if !(0.01..=86_400.0).contains(&self.reconcile_interval) {
            return Err(CliError::usage(
                "--reconcile-interval: expected 0.01..=86400 seconds".to_string(),
            ));
        }
        let scan = ScanOptions::default()
            .count(self.scan_count)
            .set_notify_keyspace_events(self.set_notify_keyspace_events)
            .notifications_configured(self.notify_keyspace_events_configured)
            .reconcile_interval(std::time::Duration::from_secs_f64(self.reconcile_interval));
        let limits = Limits::new()
            .source_max_ops(self.source_max_ops.unwrap_or(0))
            .max_bandwidth(self.max_bandwidth.unwrap_or(0))
            .target_max_ops(self.target_max_ops.unwrap_or(0));
        if !(0.0..=86_400.0).contains(&self.rediscover_interval) {
            return Err(CliError::usage(
                "--rediscover-interval: expected 0..=86400 seconds".to_string(),
            ));
        }
        if !(0.0..=86_400.0).contains(&self.move_wait) {
            return Err(CliError::usage(
                "--move-wait: expected 0..=86400 seconds".to_string(),
            ));
        }
        if self.max_full_syncs == 0 {
            return Err(CliError::usage(
                "--max-full-syncs: expected at least 1".to_string(),
            ));
        }
        let shards = match &self.shards {
            Some(list) => ShardSpec::parse_list(list)
                .map_err(|e| CliError::usage(format!("--shards: {e}")))?,
            None => Vec::new(),
        };
        self.common.source_mode = mode;
        let builder = self.common.builder(
            Migration::builder()
                .source(source.clone())
                .once(self.once)
                .source_mode(mode)
                .scan_options(scan)
                .limits(limits)
                .max_concurrent_full_syncs(self.max_full_syncs)
                .prefer_replica(self.prefer_replica)
                .shards(shards)
                .rediscover_every(std::time::Duration::from_secs_f64(self.rediscover_interval))
                .move_wait(std::time::Duration::from_secs_f64(self.move_wait)),
        )?;
        self.common.run(builder, &source, !self.once)
    }
}
