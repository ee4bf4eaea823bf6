//! What `sync` and `import` share: target and TLS flags, filters, policies, the report,
//! and running a migration with progress, signals and the final report.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use migrate_core::migrate::{
    precheck, CheckOptions, CheckReport, CheckStatus, Conflict, CrossSlot, ErrorPolicy,
    MigrationBuilder, MigrationHandle, Phase, Progress, Report, Source, SourceMode, StopReason,
    TargetConfig, TlsOptions, WriteMode,
};

use super::filter_args::FilterArgs;
use crate::error::CliError;

/// `--write-mode`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum WriteModeArg {
    /// RESTORE where the target knows the type and the key is not big, commands otherwise.
    Auto,
    /// Always RESTORE.
    Restore,
    /// Always commands.
    Rewrite,
}

/// `--on-conflict`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum ConflictArg {
    /// Refuse to start when a target db that will be written holds keys.
    Refuse,
    /// Overwrite existing keys.
    Replace,
    /// Keep existing keys (counted as skipped).
    Skip,
}

/// `--cross-slot`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum CrossSlotArg {
    /// Apply the transaction's commands one by one, in order (counted in the report).
    Apply,
    /// Stop the migration at the first such transaction.
    Refuse,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (timestamp, level, target, fields).
    Json,
}

/// TLS of the target (`--to-*`, redis-cli's names).
#[derive(Debug, Args)]
pub(crate) struct ToTlsArgs {
    /// CA certificate file (PEM) to verify the target (rediss://).
    #[arg(long = "to-cacert", value_name = "FILE")]
    to_cacert: Option<PathBuf>,
    /// Client certificate (PEM) for the target.
    #[arg(long = "to-cert", value_name = "FILE", requires = "to_key")]
    to_cert: Option<PathBuf>,
    /// Client private key (PEM) for the target.
    #[arg(long = "to-key", value_name = "FILE", requires = "to_cert")]
    to_key: Option<PathBuf>,
    /// Server name for SNI and verification (default: the URL's host).
    #[arg(long = "to-sni", value_name = "NAME")]
    to_sni: Option<String>,
    /// Do not verify the target's certificate (dangerous).
    #[arg(long = "to-insecure")]
    to_insecure: bool,
}

/// The target: `--to URL` and its TLS flags (`sync`, `import`, `check`, `verify`, `forget`).
#[derive(Debug, Args)]
pub(crate) struct ToArgs {
    /// The target: redis://[user:password@]host:port or rediss:// for TLS.
    #[arg(
        long = "to",
        value_name = "URL",
        env = "REDIS_MIGRATE_TO",
        hide_env_values = true
    )]
    to: String,
    #[command(flatten)]
    to_tls: ToTlsArgs,
}

impl ToArgs {
    /// The target configuration.
    pub(crate) fn target(&self) -> Result<TargetConfig, CliError> {
        self.to_tls.target(&self.to)
    }
}

/// The flags of `sync` and `import` besides the source.
#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    #[command(flatten)]
    to: ToArgs,
    /// How keys of the full sync are written.
    #[arg(long = "write-mode", value_enum, default_value = "auto")]
    write_mode: WriteModeArg,
    /// What to do when the target already holds keys.
    #[arg(long = "on-conflict", value_enum, default_value = "refuse")]
    on_conflict: ConflictArg,
    /// Report and count failed writes and unsupported commands instead of stopping.
    #[arg(long = "skip-errors")]
    skip_errors: bool,
    #[command(flatten)]
    filter: FilterArgs,
    /// Values larger than this many bytes are written as commands in chunks, not RESTORE.
    #[arg(long = "big-key-bytes", value_name = "BYTES")]
    big_key_bytes: Option<usize>,
    /// Write the final report as JSON to this file (`-` for stdout).
    #[arg(long = "report", value_name = "FILE")]
    report: Option<PathBuf>,
    /// No progress output.
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    /// Serve Prometheus metrics on http://ADDR/metrics and a JSON status on /status while
    /// the migration runs (e.g. 127.0.0.1:9121).
    #[arg(long = "metrics-addr", value_name = "HOST:PORT")]
    metrics_addr: Option<String>,
    /// Log lines as text (default) or as JSON objects, one per line, for log shippers.
    #[arg(long = "log-format", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Skip the precheck (see `redis-migrate check`) that runs before anything is written.
    #[arg(long = "no-check")]
    no_check: bool,
    /// A target eviction policy other than noeviction fails the precheck (not only warns).
    #[arg(long = "strict")]
    strict: bool,
    /// Keep no checkpoint on the target (a restart then starts over instead of resuming).
    #[arg(long = "no-checkpoint")]
    no_checkpoint: bool,
    /// Remove the target's checkpoint first and start over (the target's keys stay:
    /// choose --on-conflict for them). For a checkpoint of another source or other settings.
    #[arg(long = "reset-checkpoint", conflicts_with = "no_checkpoint")]
    reset_checkpoint: bool,
    /// Cluster targets: what a source transaction or script writing keys in several slots
    /// does (a cluster runs a transaction only within one slot): apply its commands one by
    /// one, in order (not atomically; counted as cross_slot_transactions), or refuse (stop).
    #[arg(long = "cross-slot", value_enum, default_value = "apply")]
    cross_slot: CrossSlotArg,
    /// Seconds between progress lines (default: 0.25 on a terminal, 2 otherwise).
    #[arg(long = "progress-interval", value_name = "SECS", value_parser = parse_interval)]
    progress_interval: Option<Duration>,
    /// Set by `sync` (`--source-mode`), for the precheck.
    #[arg(skip)]
    pub(crate) source_mode: SourceMode,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("expected seconds, got {s:?}"))?;
    if !(0.01..=86_400.0).contains(&secs) {
        return Err(format!("{s} is outside 0.01..=86400 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

impl ToTlsArgs {
    /// The target configuration for `url` with these TLS settings.
    pub(crate) fn target(&self, url: &str) -> Result<TargetConfig, CliError> {
        let t = self;
        let mut tls = TlsOptions::new().insecure_skip_verify(t.to_insecure);
        if let Some(ca) = &t.to_cacert {
            tls = tls.ca_file(ca);
        }
        if let (Some(cert), Some(key)) = (&t.to_cert, &t.to_key) {
            tls = tls.client_cert(cert, key);
        }
        if let Some(sni) = &t.to_sni {
            tls = tls.server_name(sni);
        }
        let target = TargetConfig::parse(url).map_err(|e| CliError::usage(format!("--to: {e}")))?;
        Ok(target.tls(tls))
    }
}

impl MigrateArgs {
    pub(crate) fn target(&self) -> Result<TargetConfig, CliError> {
        self.to.target()
    }

    /// The builder with the target and every option set (the caller sets the source).
    pub(crate) fn builder(&self, b: MigrationBuilder) -> Result<MigrationBuilder, CliError> {
        let mut b = b
            .target(self.target()?)
            .filter(self.filter.filter())
            .write_mode(self.mode())
            .on_conflict(self.conflict())
            .on_error(self.error_policy())
            .checkpoint(!self.no_checkpoint)
            .reset_checkpoint(self.reset_checkpoint)
            .cross_slot(match self.cross_slot {
                CrossSlotArg::Apply => CrossSlot::Apply,
                CrossSlotArg::Refuse => CrossSlot::Refuse,
            });
        if let Some(n) = self.big_key_bytes {
            b = b.big_key_bytes(n);
        }
        Ok(b)
    }

    /// The settings shown on `/status` (URLs redacted).
    fn settings(&self, source: &Source) -> Vec<(String, String)> {
        let source = match source {
            Source::Live(c) => c.url().to_string(),
            Source::RdbFile(p) => p.display().to_string(),
            _ => String::new(),
        };
        let target = self.target().map(|t| t.url.to_string()).unwrap_or_default();
        vec![
            ("source".into(), source),
            ("target".into(), target),
            ("filter".into(), format!("{:?}", self.filter.filter())),
            ("write_mode".into(), format!("{:?}", self.mode())),
            ("on_conflict".into(), format!("{:?}", self.conflict())),
            ("on_error".into(), format!("{:?}", self.error_policy())),
            ("checkpoint".into(), (!self.no_checkpoint).to_string()),
        ]
    }

    /// The precheck options matching these flags.
    pub(crate) fn check_options(&self) -> CheckOptions {
        CheckOptions::default()
            .filter(self.filter.filter())
            .conflict(self.conflict())
            .on_error(self.error_policy())
            .write_mode(self.mode())
            .strict(self.strict)
            .source_mode(self.source_mode)
    }

    fn conflict(&self) -> Conflict {
        match self.on_conflict {
            ConflictArg::Refuse => Conflict::Refuse,
            ConflictArg::Replace => Conflict::Replace,
            ConflictArg::Skip => Conflict::Skip,
        }
    }

    fn error_policy(&self) -> ErrorPolicy {
        if self.skip_errors {
            ErrorPolicy::SkipAndCount
        } else {
            ErrorPolicy::Stop
        }
    }

    fn mode(&self) -> WriteMode {
        match self.write_mode {
            WriteModeArg::Auto => WriteMode::Auto,
            WriteModeArg::Restore => WriteMode::Restore,
            WriteModeArg::Rewrite => WriteMode::Rewrite,
        }
    }

    /// Starts the migration (after the precheck of `source`, unless `--no-check`), shows
    /// progress, stops on SIGINT/SIGTERM, writes the report. `sample_writes`: the precheck
    /// samples the source's write rate for its backlog finding (a sync that keeps
    /// running; `--once` and `import` skip the quarter second it takes).
    pub(crate) fn run(
        &self,
        builder: MigrationBuilder,
        source: &Source,
        sample_writes: bool,
    ) -> Result<(), CliError> {
        init_logging(self.log_format);
        // One thread: measured on 2 cores, the replication task and the writer on one
        // thread take 20% less CPU than on two (no cross-thread wake-ups per event), and the
        // full sync is as fast (benches/README.md).
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::new(format!("cannot start the runtime: {e}")))?;
        if !self.no_check && !self.reset_checkpoint {
            // A short write-rate sample: the full `check` samples for a second.
            let sample = if sample_writes {
                Duration::from_millis(250)
            } else {
                Duration::ZERO
            };
            let opts = self.check_options().rate_sample(sample);
            let target = self.target()?;
            let report = rt.block_on(precheck(source, &target, &opts));
            // A server out of reach is the migration's own one-line error.
            let unreachable = report
                .failures()
                .iter()
                .any(|c| c.name.ends_with("connection"));
            if !unreachable {
                print_findings(&report, false, self.quiet);
            }
            let failed = report.failures().len();
            if failed > 0 && !unreachable {
                return Err(CliError::new(format!(
                    "{failed} check(s) failed before anything was written: fix them, or run with --no-check"
                )));
            }
        }
        let settings = self.settings(source);
        let (report, result) = rt.block_on(async {
            let handle = builder.start();
            if let Some(addr) = &self.metrics_addr {
                match crate::metrics::serve(addr, handle.watcher(), settings).await {
                    Ok(local) => {
                        tracing::info!(target: "migrate", "metrics on http://{local}/metrics")
                    }
                    Err(e) => {
                        handle.stop();
                        let _ = handle.finish().await;
                        return Err(CliError::usage(format!("--metrics-addr {addr}: {e}")));
                    }
                }
            }
            Ok(drive(handle, self.quiet, self.progress_interval).await)
        })?;
        if let Some(path) = &self.report {
            let json = report.to_json() + "\n";
            let written = if path.as_os_str() == "-" {
                std::io::stdout().write_all(json.as_bytes())
            } else {
                std::fs::write(path, json)
            };
            written.map_err(|e| CliError::file(path, e))?;
        }
        if !self.quiet {
            eprintln!("{}", summary(&report));
        }
        result.map_err(|e| CliError::new(e.to_string()))
    }
}

/// Prints the findings of a precheck: every one (`all`, for `check`), or only the warnings
/// and failures (before `sync` and `import`; only the failures when `quiet`).
pub(crate) fn print_findings(report: &CheckReport, all: bool, quiet: bool) {
    for c in &report.checks {
        let shown = match c.status {
            CheckStatus::Pass => all,
            CheckStatus::Warn => !quiet,
            _ => true,
        };
        if !shown {
            continue;
        }
        let status = match c.status {
            CheckStatus::Pass => "pass",
            CheckStatus::Warn => "WARN",
            _ => "FAIL",
        };
        let fix = c
            .fix
            .as_deref()
            .map(|f| format!(" (fix: {f})"))
            .unwrap_or_default();
        eprintln!(
            "redis-migrate: check: {status} {}: {}{fix}",
            c.name, c.found
        );
    }
}

/// `RUST_LOG`-style logging to stderr (default: warnings), as text or JSON lines.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => b.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => b.json().try_init(),
    };
}

/// Waits for the end, printing progress and turning SIGINT/SIGTERM into a graceful stop.
async fn drive(
    handle: MigrationHandle,
    quiet: bool,
    interval: Option<Duration>,
) -> (Report, Result<(), migrate_core::migrate::MigrationError>) {
    let tty = std::io::stderr().is_terminal();
    let every = interval.unwrap_or(if tty {
        Duration::from_millis(250)
    } else {
        Duration::from_secs(2)
    });
    // Poll often (to notice the end at once), print every `every`.
    let mut tick = tokio::time::interval(every.min(Duration::from_millis(50)));
    let mut next_line = tokio::time::Instant::now() + every;
    let signal = stop_signal();
    tokio::pin!(signal);
    let mut signalled = false;
    let mut drawn = false;
    while !handle.is_finished() {
        tokio::select! {
            _ = &mut signal, if !signalled => {
                signalled = true;
                if !quiet {
                    if drawn {
                        eprintln!();
                        drawn = false;
                    }
                    eprintln!("redis-migrate: stopping: draining writes in flight...");
                }
                handle.stop();
            }
            now = tick.tick() => {
                if !quiet && now >= next_line {
                    next_line = now + every;
                    let line = progress_line(&handle.progress());
                    if tty {
                        eprint!("\r\x1b[2K{line}");
                        drawn = true;
                    } else {
                        eprintln!("{line}");
                    }
                }
            }
        }
    }
    if drawn {
        eprintln!();
    }
    handle.finish().await
}

async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => ctrl_c().await,
        }
    }
    #[cfg(not(unix))]
    ctrl_c().await;
}

/// SIGINT; never completes when the handler cannot be installed (no stop without a signal).
async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

fn mb(n: f64) -> String {
    format!("{:.1} MB", n / 1e6)
}

fn progress_line(p: &Progress) -> String {
    let t = p.elapsed.as_secs();
    let clock = format!("{:02}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60);
    let throttled = if p.throttled.is_empty() {
        String::new()
    } else {
        format!(", throttled by --{}", p.throttled.join(", --"))
    };
    if let Some(s) = &p.scan {
        return format!(
            "[{clock}] scan {}: {} keys scanned, {} copied, {} re-copied, {} deleted, {} reconciled, queue {} keys ({:.1} s), {} failed{throttled}",
            p.phase.as_str(),
            s.keys_scanned,
            s.keys_copied,
            s.keys_recopied,
            s.keys_deleted,
            s.keys_reconciled,
            s.queue_len,
            s.queue_age.as_secs_f64(),
            p.failures
        );
    }
    let line = progress_body(p, &clock);
    let shards = if p.shards.is_empty() {
        String::new()
    } else {
        let synced = p.shards.iter().filter(|s| s.synced()).count();
        format!(", {synced}/{} shards synced", p.shards.len())
    };
    format!("{line}{shards}{throttled}")
}

fn progress_body(p: &Progress, clock: &str) -> String {
    match p.phase {
        Phase::Connecting => format!("[{clock}] connecting"),
        Phase::FullSync | Phase::Stopping if p.commands_applied == 0 => {
            let pct = p
                .rdb_percent()
                .map(|x| format!("{x:5.1}% "))
                .unwrap_or_default();
            let total = p
                .rdb_total
                .map(|t| format!("/{}", mb(t as f64)))
                .unwrap_or_default();
            format!(
                "[{clock}] {} {pct}{}{total} ({}/s), {} keys ({:.0} keys/s), {} skipped, {} failed",
                p.phase.as_str(),
                mb(p.rdb_bytes as f64),
                mb(p.rdb_bytes_per_sec),
                p.keys_written,
                p.keys_per_sec,
                p.keys_skipped,
                p.failures
            )
        }
        _ => format!(
            "[{clock}] {}: {} keys copied, {} commands applied, lag {} bytes ({:.1} s), {} failed, applied offset {}",
            p.phase.as_str(),
            p.keys_written,
            p.commands_applied,
            p.lag_bytes,
            p.lag_time.as_secs_f64(),
            p.failures,
            p.applied_offset
        ),
    }
}

fn summary(r: &Report) -> String {
    let result = match r.stop_reason {
        StopReason::Completed => "done",
        StopReason::CaughtUp => "done (caught up with the source)",
        StopReason::Stopped => "stopped",
        _ => "failed",
    };
    let mut notes = Vec::new();
    if r.keys_lossy > 0 {
        notes.push(format!(
            "{} keys lost something the target cannot hold (hash field TTLs, ...; see the report)",
            r.keys_lossy
        ));
    }
    if !r.modules_missing.is_empty() {
        notes.push(format!(
            "modules missing on the target: {}",
            r.modules_missing.join(", ")
        ));
    }
    if !r.module_aux_dropped.is_empty() {
        let aux: Vec<String> = r
            .module_aux_dropped
            .iter()
            .map(|(m, n)| format!("{m} x{n}"))
            .collect();
        notes.push(format!(
            "module aux data not carried over: {}",
            aux.join(", ")
        ));
    }
    if !r.search_indexes_created.is_empty() {
        notes.push(format!(
            "search indexes recreated with FT.CREATE: {}",
            r.search_indexes_created.join(", ")
        ));
    }
    for p in &r.search_index_problems {
        notes.push(format!("search index {p}"));
    }
    for w in &r.warnings {
        notes.push(w.clone());
    }
    if r.source_mode == "scan" {
        let why = r
            .source_mode_reason
            .as_deref()
            .map(|w| format!(" (the source refused replication: {w})"))
            .unwrap_or_default();
        let counts = r
            .scan
            .as_ref()
            .map(|s| {
                format!(
                    ": {} keys scanned, {} copied, {} re-copied after changes, {} deleted, {} reconciled in {} pass(es)",
                    s.keys_scanned, s.keys_copied, s.keys_recopied, s.keys_deleted, s.keys_reconciled, s.reconcile_passes
                )
            })
            .unwrap_or_default();
        notes.push(format!("scan mode{why}{counts}"));
    }
    if let Some(n) = r.target_cluster_masters {
        notes.push(format!(
            "the target is a cluster of {n} masters: {} cross-slot commands run on temporary keys, {} split per slot, {} cross-slot transactions applied command by command, {} redirections, {} retries, {} resent after a node failed",
            r.cross_slot_commands,
            r.cross_slot_split,
            r.cross_slot_transactions,
            r.cluster_redirects,
            r.cluster_retries,
            r.cluster_resent
        ));
    }
    if let Some(c) = &r.resumed_from {
        notes.push(format!("resumed from the target's checkpoint ({c})"));
    }
    if !r.shards.is_empty() {
        let each: Vec<String> = r
            .shards
            .iter()
            .map(|s| {
                format!(
                    "{} ({}, slots {}) {}: {} keys, {} commands, {} full sync(s), {} partial resync(s){}",
                    s.id,
                    s.master,
                    s.slots,
                    s.state,
                    s.keys,
                    s.commands_applied,
                    s.full_syncs,
                    s.partial_resyncs,
                    if s.failovers_followed > 0 {
                        format!(", {} failover(s) followed", s.failovers_followed)
                    } else {
                        String::new()
                    }
                )
            })
            .collect();
        notes.push(format!(
            "cluster source, {} shard(s): {}",
            r.shards.len(),
            each.join("; ")
        ));
    }
    if r.healing_full_syncs > 0 {
        notes.push(format!(
            "{} healing full sync(s): {} stale keys removed from the target",
            r.healing_full_syncs, r.keys_swept
        ));
    }
    if !r.functions_skipped.is_empty() {
        notes.push(format!(
            "function libraries kept as they were on the target: {}",
            r.functions_skipped.join(", ")
        ));
    }
    let notes: String = notes
        .iter()
        .map(|n| format!("\nredis-migrate: note: {n}"))
        .collect();
    format!(
        "redis-migrate: {result}: {} keys written ({} by RESTORE, {} as commands), {} commands applied, skipped {} expired / {} filtered / {} existing, {} failures, {} unsupported, in {:.2} s{notes}",
        r.keys_written(),
        r.keys_restored,
        r.keys_rewritten,
        r.commands_applied,
        r.skipped_expired,
        r.skipped_filtered,
        r.skipped_conflict,
        r.failures_total,
        r.unsupported_total,
        r.duration.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_interval_in_seconds() {
        assert_eq!(parse_interval("0.1"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_interval("2"), Ok(Duration::from_secs(2)));
        assert!(parse_interval("0").is_err());
        assert!(parse_interval("-1").is_err());
        assert!(parse_interval("soon").is_err());
    }

    #[test]
    fn progress_line_counts_synced_shards() {
        let mut p = Progress::default();
        p.phase = Phase::Incremental;
        for (id, phase) in [
            ("s0", Phase::Incremental),
            ("s5461", Phase::FullSync),
            ("s10922", Phase::Incremental),
        ] {
            let mut s = migrate_core::migrate::ShardProgress::default();
            s.id = id.into();
            s.progress.phase = phase;
            p.shards.push(s);
        }
        let line = progress_line(&p);
        assert!(line.ends_with(", 2/3 shards synced"), "{line}");
        assert!(!progress_line(&Progress::default()).contains("shards"));
    }
}
