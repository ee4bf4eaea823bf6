//! The subcommands. New ones (`sync`, `import`) are a variant here and a file next to this one.

mod rdb;
mod rdb_dump;
mod rdb_stats;

use clap::Subcommand;

use crate::error::CliError;

/// The top-level subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Work with RDB files offline: convert to commands or JSON, print statistics.
    #[command(subcommand)]
    Rdb(rdb::RdbCommand),
}

impl Command {
    pub(crate) fn run(self) -> Result<(), CliError> {
        match self {
            Command::Rdb(c) => c.run(),
        }
    }
}
