//! `redis-migrate forget --to URL`: remove the target's checkpoint (every
//! `__redis-migrate:checkpoint*` key: the per-shard ones of a cluster source too), so the
//! next `sync` or `import` into it starts over instead of resuming. The target's keys stay.

use std::time::Duration;

use clap::Args;

use super::migrate_args::ToArgs;
use crate::error::CliError;

/// Arguments of `forget`.
#[derive(Debug, Args)]
pub(crate) struct ForgetArgs {
    #[command(flatten)]
    to: ToArgs,
}

impl ForgetArgs {
    pub(crate) fn run(self) -> Result<(), CliError> {
        let target = self.to.target()?;
        let shown = target.url.to_string();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::new(format!("cannot start the runtime: {e}")))?;
        let removed = rt
            .block_on(migrate_core::migrate::forget_checkpoint(
                &target,
                Duration::from_secs(10),
            ))
            .map_err(|e| CliError::new(e.to_string()))?;
        if removed {
            eprintln!("redis-migrate: checkpoint removed from {shown}");
        } else {
            eprintln!("redis-migrate: {shown} holds no checkpoint");
        }
        Ok(())
    }
}
