//! `redis-migrate check --from URL --to URL`: the precheck alone. Each finding is printed
//! as pass / WARN / FAIL with what was found and the fix; exit 0 when nothing fails.

use std::io::Write;
use std::time::Duration;

use clap::Args;
use migrate_core::migrate::{precheck, Source};

use super::migrate_args::{print_findings, MigrateArgs};
use super::sync::{FromArgs, SourceModeArg};
use crate::error::CliError;

/// Arguments of `check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    from: FromArgs,
    /// Print the findings as JSON on stdout instead of lines on stderr.
    #[arg(long = "json")]
    json: bool,
    /// How `sync` will read the source (as `sync --source-mode`): with `auto`, a source
    /// that refuses replication is a warning (scan mode will be used) and scan mode's
    /// needs are checked; `psync` makes it a failure; `scan` checks scan mode only.
    #[arg(long = "source-mode", value_enum, default_value = "auto")]
    source_mode: SourceModeArg,
    #[command(flatten)]
    common: MigrateArgs,
}

impl CheckArgs {
    pub(crate) fn run(mut self) -> Result<(), CliError> {
        let source = Source::Live(self.from.config()?);
        self.common.source_mode = self.source_mode.into();
        let target = self.common.target()?;
        let opts = self
            .common
            .check_options()
            .rate_sample(Duration::from_secs(1));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::new(format!("cannot start the runtime: {e}")))?;
        let report = rt.block_on(precheck(&source, &target, &opts));
        if self.json {
            let mut out = std::io::stdout();
            writeln!(out, "{}", report.to_json())
                .map_err(|e| CliError::new(format!("stdout: {e}")))?;
        } else {
            print_findings(&report, true, false);
        }
        match report.failures().len() {
            0 => {
                if !self.json {
                    eprintln!(
                        "redis-migrate: check passed ({} checks)",
                        report.checks.len()
                    );
                }
                Ok(())
            }
            n => Err(CliError::new(format!("{n} check(s) failed"))),
        }
    }
}
