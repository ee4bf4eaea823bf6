//! `redis-migrate sync --from URL --to URL [--once]`: copy a live server over PSYNC and keep
//! the target in sync until stopped (SIGINT/SIGTERM: drain, report, exit 0).

use std::path::PathBuf;

use clap::Args;
use migrate_core::migrate::{Migration, Source};
use replication_client::{Config, TlsOptions};

use super::migrate_args::MigrateArgs;
use crate::error::CliError;

/// Arguments of `sync`.
#[derive(Debug, Args)]
pub(crate) struct SyncArgs {
    #[command(flatten)]
    from: FromArgs,
    /// Stop by itself once the full sync is done and the target has caught up.
    #[arg(long = "once")]
    once: bool,
    #[command(flatten)]
    common: MigrateArgs,
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
    pub(crate) fn run(self) -> Result<(), CliError> {
        let source = Source::Live(self.from.config()?);
        let builder = self
            .common
            .builder(Migration::builder().source(source.clone()).once(self.once))?;
        self.common.run(builder, &source)
    }
}
