//! [`MigrationError`]: why a migration stopped.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use crate::{ServerError, Tag};

/// Why a migration failed. One line each, naming the server (redacted URL or `host:port`),
/// the key and the command where there is one; never values or passwords.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum MigrationError {
    /// The builder was not given a source or a target.
    #[error("invalid migration: {0}")]
    Config(String),
    /// Connecting to, or writing to, the target failed (refused connection, authentication,
    /// out of memory, lost connection ...).
    #[error("target {url}: {source}{}", target_hint(source))]
    Target {
        /// The target's URL, redacted.
        url: String,
        /// What failed.
        #[source]
        source: Box<crate::Error>,
    },
    /// The TLS configuration or handshake of the target failed.
    #[error("target {url}: TLS: {reason}")]
    TargetTls {
        /// The target's URL, redacted.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The source server failed (connection, authentication, `PSYNC` refused ...).
    #[error("source {url}: {source}{}", source_hint(source))]
    Source {
        /// The source's URL, redacted.
        url: String,
        /// What failed.
        #[source]
        source: Arc<replication_client::Error>,
    },
    /// Scan mode: a request to the source failed (connection, refused command).
    #[error("source {url}: {reason}")]
    ScanSource {
        /// The source's URL, redacted.
        url: String,
        /// What failed.
        reason: String,
    },
    /// Scan mode cannot track changes: the source's `notify-keyspace-events` lacks `K`
    /// and the event classes (`A`), and the migration may not set it.
    #[error("source {url}: keyspace notifications are off (notify-keyspace-events: {found}): {fix}; or copy a snapshot only with --once")]
    NotificationsOff {
        /// The source's URL, redacted.
        url: String,
        /// The setting found.
        found: String,
        /// What to set.
        fix: &'static str,
    },
    /// The source closed its event stream without an error.
    #[error("source {url}: the replication link ended")]
    SourceEnded {
        /// The source's URL, redacted.
        url: String,
    },
    /// Reading the RDB file failed.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: Arc<io::Error>,
    },
    /// The RDB (file or full sync) could not be decoded; the error names the byte offset.
    #[error("{origin}: {source}")]
    Rdb {
        /// The file path or the source URL, redacted.
        origin: String,
        /// The decoder's error.
        #[source]
        source: Arc<rdb_parser::Error>,
    },
    /// [`Conflict::Refuse`](crate::migrate::Conflict::Refuse) and target dbs that will be
    /// written hold keys.
    #[error(
        "target {url} is not empty ({}): use --on-conflict replace|skip, or empty it first",
        dbs.iter().map(|(db, n)| format!("db {db}: {n} keys")).collect::<Vec<_>>().join(", ")
    )]
    TargetNotEmpty {
        /// The target's URL, redacted.
        url: String,
        /// `(db, keys)` of each non-empty db.
        dbs: Vec<(u32, u64)>,
    },
    /// [`Conflict::Refuse`](crate::migrate::Conflict::Refuse) and the target already holds
    /// function libraries (or RediSearch indexes) that the migration may load.
    #[error(
        "target {url} already has {what} {}: use --on-conflict replace|skip, or remove them first",
        names.join(", ")
    )]
    TargetHasDefinitions {
        /// The target's URL, redacted.
        url: String,
        /// `function libraries` or `search indexes`.
        what: &'static str,
        /// Their names.
        names: Vec<String>,
    },
    /// Modules loaded on the source are missing on the target, under
    /// [`ErrorPolicy::Stop`](crate::migrate::ErrorPolicy::Stop): refused before anything is
    /// written.
    #[error(
        "target {url} lacks the source's modules {}: load them on the target, or copy the rest with --skip-errors (their keys are then counted as unsupported)",
        modules.join(", ")
    )]
    ModulesMissing {
        /// The target's URL, redacted.
        url: String,
        /// Module names as the source's `MODULE LIST` shows them.
        modules: Vec<String>,
    },
    /// A write failed under [`ErrorPolicy::Stop`](crate::migrate::ErrorPolicy::Stop).
    #[error("write failed: {tag}: {reply}")]
    WriteFailed {
        /// The command (name, key, db).
        tag: Box<Tag>,
        /// The target's error reply.
        reply: Box<ServerError>,
    },
    /// A key or command cannot be reproduced on the target, under
    /// [`ErrorPolicy::Stop`](crate::migrate::ErrorPolicy::Stop).
    #[error("cannot copy {command}{}: {reason}", key.as_ref().map(|k| format!(" {}", show_key(k))).unwrap_or_default())]
    Unsupported {
        /// The command name (or the key's type for full-sync keys).
        command: String,
        /// The key.
        key: Option<Bytes>,
        /// Why.
        reason: String,
    },
    /// The target holds the checkpoint of another migration (another source, or other
    /// filters, db map or write mode).
    #[error("target {url} holds the checkpoint of another migration ({found}); start that migration again, or start over with --reset-checkpoint (the target's keys are kept)")]
    CheckpointMismatch {
        /// The target's URL, redacted.
        url: String,
        /// What the checkpoint describes.
        found: String,
    },
    /// The checkpoint key holds something this tool cannot read.
    #[error("target {url}: the checkpoint key {key} cannot be read ({reason}); remove it with --reset-checkpoint")]
    CheckpointUnreadable {
        /// The target's URL, redacted.
        url: String,
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// One shard of a cluster source failed (the others were stopped, their checkpoints
    /// written).
    #[error("shard {shard} ({node}) of the source cluster: {source}")]
    Shard {
        /// The shard's id (`s0`, `s5461`: its lowest slot at discovery).
        shard: String,
        /// The node it was read from.
        node: String,
        /// What failed.
        source: Box<MigrationError>,
    },
    /// A shard's node stays unreachable and no other node of the cluster serves its slots.
    #[error("shard {shard} of the source cluster: {node} unreachable after {attempts} attempts and no other node took over its slots (asked {tried}); check the cluster with CLUSTER NODES on any node")]
    ShardLost {
        /// The shard's id.
        shard: String,
        /// Its last node.
        node: String,
        /// Consecutive failed attempts.
        attempts: u32,
        /// The nodes asked for the topology.
        tried: String,
    },
    /// The source cluster cannot be migrated as asked (no slots served, a `--shards`
    /// selection that matches nothing).
    #[error("source cluster {url}: {reason}")]
    ClusterSource {
        /// The seed node's URL, redacted.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A cluster target did not serve a command for
    /// the retry budget (redirections, `TRYAGAIN`, `CLUSTERDOWN`, a master failing over).
    #[error("target cluster {url}: {command}{} on {node}: not served after {attempts} attempts over {waited:?}; last: {last} (check CLUSTER INFO and CLUSTER NODES on the target)", slot.map(|s| format!(" (slot {s})")).unwrap_or_default())]
    ClusterUnavailable {
        /// The target's URL, redacted.
        url: String,
        /// The command name.
        command: String,
        /// The slot, when routed by slot.
        slot: Option<u16>,
        /// The node it was sent to last.
        node: String,
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        waited: std::time::Duration,
        /// The last reply or connection error.
        last: String,
    },
    /// The source has keys in dbs that the cluster target does not have (a cluster has db 0
    /// only, Valkey 9 clusters `cluster-databases`): refused before they are written.
    #[error("target {url} is a cluster with {} (the source has keys in {}): map them with --map-db N=0, or leave them out with --exclude-db N", if *allowed == 1 { "db 0 only".to_string() } else { format!("dbs 0 to {}", allowed - 1) }, dbs.iter().map(|d| format!("db {d}")).collect::<Vec<_>>().join(", "))]
    ClusterDbs {
        /// The target's URL, redacted.
        url: String,
        /// The target dbs the source would write that the cluster lacks.
        dbs: Vec<u32>,
        /// How many dbs the cluster has.
        allowed: u32,
    },
    /// A source transaction or script touches keys of several slots, and the migration was
    /// told to stop rather than apply it command by command
    /// ([`CrossSlot::Refuse`](crate::migrate::CrossSlot::Refuse)).
    #[error("a source transaction (source offset {offset}) writes keys in {slots} slots of the cluster target: it cannot stay atomic there; stopped as --cross-slot refuse asks (use --cross-slot apply to apply it command by command)")]
    CrossSlotRefused {
        /// The source offset the transaction ends at.
        offset: u64,
        /// How many distinct slots it writes.
        slots: usize,
    },
    /// The migration task ended abnormally (a panic).
    #[error("internal error: {0}")]
    Internal(String),
}

fn show_key(key: &[u8]) -> String {
    super::report::key_text(key)
}

fn target_hint(e: &crate::Error) -> &'static str {
    match e {
        crate::Error::Connect { .. } => {
            " (is the target's host and port right, and is it running?)"
        }
        crate::Error::AuthRefused { .. } | crate::Error::AuthRequired { .. } => {
            " (check the user and password in the --to URL)"
        }
        crate::Error::OutOfMemory { .. } => {
            " (raise the target's maxmemory, or free memory, then start again)"
        }
        _ => "",
    }
}

fn source_hint(e: &replication_client::Error) -> &'static str {
    use replication_client::Error as E;
    match e {
        E::Connect { .. } => " (is the source's host and port right, and is it running?)",
        E::Auth { .. } => " (check the user and password in the --from URL)",
        E::NoPermission { .. } => {
            " (the source user needs +psync +replconf +ping; managed services that forbid replication need an RDB export and `redis-migrate import`)"
        }
        E::ServerError { message, .. }
            if message.contains("unknown command") || message.contains("PSYNC") =>
        {
            " (this source does not allow replication: export an RDB and use `redis-migrate import`)"
        }
        _ => "",
    }
}
