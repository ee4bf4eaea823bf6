//! `redis-migrate import FILE --to URL`: load an RDB file into a server.

use std::path::PathBuf;

use clap::Args;
use migrate_core::migrate::{Migration, Source};

use super::migrate_args::MigrateArgs;
use crate::error::CliError;

/// Arguments of `import`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The RDB file.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    #[command(flatten)]
    common: MigrateArgs,
}

impl ImportArgs {
    pub(crate) fn run(self) -> Result<(), CliError> {
        let source = Source::RdbFile(self.file.clone());
        let builder = self
            .common
            .builder(Migration::builder().source(source.clone()))?;
        self.common.run(builder, &source, false)
    }
}
