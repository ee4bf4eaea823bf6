//! `redis-migrate verify --from URL --to URL [filters, db map] [--report FILE]`: compare the
//! target with the source key by key (online-aware: differences are re-checked over a few
//! rounds). Exit 0 when equal, 1 when there are differences, 2 on errors.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use migrate_core::verify::{Verifier, VerifyOptions};

use super::filter_args::FilterArgs;
use super::migrate_args::ToArgs;
use super::sync::FromArgs;
use crate::error::CliError;

/// Arguments of `verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The source (its user needs the read commands: SCAN, TYPE, PTTL, the types' reads,
    /// DUMP for module values).
    #[command(flatten)]
    from: FromArgs,
    #[command(flatten)]
    to: ToArgs,
    #[command(flatten)]
    filter: FilterArgs,
    /// How far key and field expiries may differ, in milliseconds.
    #[arg(long = "ttl-tolerance", value_name = "MS", default_value_t = 1000)]
    ttl_tolerance: u64,
    /// Re-check rounds of the keys that differed in the first pass.
    #[arg(long = "rounds", value_name = "N", default_value_t = 3)]
    rounds: u32,
    /// Seconds to wait before each re-check round.
    #[arg(long = "delay", value_name = "SECS", default_value = "1", value_parser = parse_secs)]
    delay: Duration,
    /// At most this many commands per second to each server.
    #[arg(long = "max-ops", value_name = "N")]
    max_ops: Option<u64>,
    /// Check only this fraction of the keys (a deterministic subset, by key hash), in (0, 1].
    #[arg(long = "sample", value_name = "F", value_parser = parse_fraction)]
    sample: Option<f64>,
    /// Keys per pipelined batch (SCAN COUNT).
    #[arg(long = "batch", value_name = "N", default_value_t = 200)]
    batch: usize,
    /// Write the JSON report to this file (`-` for stdout; the differences and the summary
    /// then go to stderr).
    #[arg(long = "report", value_name = "FILE")]
    report: Option<PathBuf>,
    /// At most this many differences printed and listed in the report (all are counted).
    #[arg(long = "max-listed", value_name = "N", default_value_t = 1000)]
    max_listed: usize,
    /// Print only the summary line.
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("expected seconds, got {s:?}"))?;
    if !(0.0..=3600.0).contains(&secs) {
        return Err(format!("{s} is outside 0..=3600 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    let f: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("expected a fraction, got {s:?}"))?;
    if !(f > 0.0 && f <= 1.0) {
        return Err(format!("{s} is outside (0, 1]"));
    }
    Ok(f)
}

impl VerifyArgs {
    pub(crate) fn run(self) -> Result<(), CliError> {
        let source = self.from.server()?;
        let target = self.to.target()?;
        let mut o = VerifyOptions::default()
            .filter(self.filter.filter())
            .ttl_tolerance(Duration::from_millis(self.ttl_tolerance))
            .rounds(self.rounds)
            .delay(self.delay)
            .batch(self.batch.max(1))
            .max_listed(self.max_listed);
        if let Some(n) = self.max_ops {
            o = o.max_ops(n);
        }
        if let Some(f) = self.sample {
            o = o.sample(f);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::usage(format!("cannot start the runtime: {e}")))?;
        // Errors exit 2, differences 1.
        let report = rt
            .block_on(Verifier::new(source, target).options(o).run())
            .map_err(|e| CliError::usage(e.to_string()))?;
        let to_stdout = self.report.as_ref().is_some_and(|p| p.as_os_str() == "-");
        let mut lines = String::new();
        if !self.quiet {
            for d in &report.differences {
                lines.push_str(&format!("{d}\n"));
            }
            let unlisted = report.differences_total() - report.differences.len() as u64;
            if unlisted > 0 {
                lines.push_str(&format!("... and {unlisted} more\n"));
            }
        }
        lines.push_str(&format!("redis-migrate: verify: {}\n", report.summary()));
        if to_stdout {
            eprint!("{lines}");
        } else {
            std::io::stdout()
                .write_all(lines.as_bytes())
                .map_err(|e| CliError::output("stdout", e))?;
        }
        if let Some(path) = &self.report {
            let json = report.to_json() + "\n";
            let written = if to_stdout {
                std::io::stdout().write_all(json.as_bytes())
            } else {
                std::fs::write(path, json)
            };
            written.map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?;
        }
        if report.is_equal() {
            Ok(())
        } else {
            Err(CliError::new(format!(
                "the target differs from the source: {} differences",
                report.differences_total()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        assert_eq!(parse_secs("0.5"), Ok(Duration::from_millis(500)));
        assert!(parse_secs("-1").is_err());
        assert_eq!(parse_fraction("0.25"), Ok(0.25));
        assert!(parse_fraction("0").is_err());
        assert!(parse_fraction("1.5").is_err());
    }
}
