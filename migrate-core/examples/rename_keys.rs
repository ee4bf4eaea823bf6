//! Copy the `session:*` keys of one server into another as `s2:*`, then keep them in sync
//! (every later write to a `session:*` key lands on its `s2:*` twin), until killed, or
//! until caught up with `--once`. Killing it is safe: started again, it resumes from the
//! checkpoint it keeps on the target.
//!
//! ```text
//! cargo run -p migrate-core --example rename_keys -- redis://src:6379 redis://dst:6380 [--once]
//! ```

use migrate_core::migrate::{Migration, MigrationError, Report, Source, TargetConfig};
use migrate_core::{Filter, KeyAction};

/// The whole tool: a filter with a key transform, and a migration.
pub async fn rename_sessions(from: &str, to: &str, once: bool) -> Result<Report, MigrationError> {
    let source =
        replication_client::Config::new(from).map_err(|e| MigrationError::Config(e.to_string()))?;
    let target = TargetConfig::parse(to).map_err(|e| MigrationError::Config(e.to_string()))?;
    let filter = Filter::new()
        .include_keys("session:*")
        .transform("session:* -> s2:*", |db, key| {
            KeyAction::rename(db, [&b"s2:"[..], &key[b"session:".len()..]].concat())
        });
    Migration::builder()
        .source(Source::Live(source))
        .target(target)
        .filter(filter)
        .once(once)
        .start()
        .wait()
        .await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(from), Some(to)) = (args.first(), args.get(1)) else {
        return Err("usage: rename_keys FROM_URL TO_URL [--once]".into());
    };
    let report = rename_sessions(from, to, args.iter().any(|a| a == "--once")).await?;
    println!(
        "{} keys copied as s2:*, {} replicated commands applied",
        report.keys_written(),
        report.commands_applied
    );
    Ok(())
}
