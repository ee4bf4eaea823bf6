//! The subcommands. New ones (`sync`, `import`) are a variant here and a file next to this one.

mod check;
mod filter_args;
mod forget;
mod import;
mod migrate_args;
mod rdb;
mod rdb_dump;
mod rdb_events;
mod rdb_stats;
mod sync;
mod verify;

use clap::Subcommand;

use crate::error::CliError;

/// The top-level subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Work with RDB files offline: convert to commands or JSON, print statistics.
    #[command(subcommand)]
    Rdb(rdb::RdbCommand),
    /// Copy a live server into another over replication (PSYNC), then keep it in sync until
    /// stopped (Ctrl-C / SIGTERM), or until caught up with --once.
    Sync(sync::SyncArgs),
    /// Load an RDB file into a server.
    Import(import::ImportArgs),
    /// Check a source and a target before a migration: connectivity, rights, versions,
    /// modules, memory, replication limits, the target's keys, functions and checkpoint;
    /// each finding with its fix. Exit 0 when nothing fails.
    Check(check::CheckArgs),
    /// Remove the target's checkpoint: the next sync or import into it starts over instead
    /// of resuming (the target's keys stay).
    Forget(forget::ForgetArgs),
    /// Compare the target with the source key by key (values, TTLs, streams, functions;
    /// differences re-checked over a few rounds while a sync may still run). Exit 0 when
    /// equal, 1 when they differ, 2 on errors.
    Verify(verify::VerifyArgs),
}

impl Command {
    pub(crate) fn run(self) -> Result<(), CliError> {
        match self {
            Command::Rdb(c) => c.run(),
            Command::Sync(c) => c.run(),
            Command::Import(c) => c.run(),
            Command::Forget(c) => c.run(),
            Command::Check(c) => c.run(),
            Command::Verify(c) => c.run(),
        }
    }
}
