//! The migration engine behind `redis-migrate`.
//!
//! [`migrate::Migration`] is the entry point: a builder for a source (an RDB file, or a live
//! server read over `PSYNC`), a target and options, a handle to watch progress and stop
//! gracefully, and a final [`migrate::Report`]. The building blocks it composes are public
//! too: the target connection and pipelined writer below, the [`rewrite`] module (RDB values
//! as commands for a given target version), the [`command`] module (replicated commands
//! translated for the target), the [`plan`] module (the sans-IO per-key planner: `RESTORE`
//! of the raw value, commands, or a skip/unsupported verdict with its reason, for each key
//! of an RDB stream), [`migrate::precheck`] (what a migration would meet, each
//! finding with its fix) and the [`verify`] module (the target compared with the source
//! key by key).
//!
//! # For custom migration tools
//! - [`Filter::transform`] renames, moves or drops keys by any rule; the engine applies it
//!   to full-sync keys and to every key of replicated commands.
//! - [`migrate::connect`] opens a logged-in connection to any server from its URL (TLS,
//!   ACL users), the same code the engine uses; [`Target::call`] and [`Target::call_many`]
//!   (one round trip per batch) return the replies.
//! - [`migrate::MigrationHandle::watcher`] reads progress from another task.
//! - The repository's `migrate-core/examples/` hold `rename_keys` (copy `session:*` as
//!   `s2:*` and keep it in sync, in about 15 lines) and `dump_restore_copy` (a SCAN + DUMP
//!   copier on the public client); `rdb-parser/examples/rdb_report.rs` prints sizes per type
//!   and the biggest keys. The tests build and run them.
//!
//! ```
//! use migrate_core::{key_slot, Glob, ServerVersion};
//!
//! let info = "# Server\r\nredis_version:7.0.15\r\n";
//! let target = ServerVersion::from_info(info).unwrap();
//! assert!(target.knows_type(16)); // listpack hashes: RESTORE works
//! assert!(!target.knows_type(20)); // set listpack (RDB 11): rewrite as SADD
//! assert!(Glob::new("user:*").matches(b"user:42"));
//! assert_eq!(key_slot(b"{user}:1"), key_slot(b"user"));
//! ```
//!
//! # Writing to the target
//!
//! [`Target`] connects and authenticates (TCP here; any `AsyncRead + AsyncWrite` stream through
//! [`Target::handshake`], e.g. TLS) and learns the target's version and `proto-max-bulk-len`.
//! [`Writer`] then pipelines commands over it in a bounded window ([`WriterOptions`]), inserting
//! `SELECT` and framing `MULTI`/`EXEC`, and checks every reply: each command, labelled with a
//! [`Tag`] (db, key, command name, source offset), comes back as one [`Outcome`], in order,
//! including when the connection dies ([`Outcome::Lost`]). A stream of small commands can go
//! without tags ([`Writer::send_compact`]): applied ones are counted in runs ([`Resolved`]),
//! and only a command that fails gets its tag built; [`Writer::try_push_compact`] queues one
//! without a future when no I/O is needed. Over plain TCP the writer reads replies in
//! batches ([`LowWater`]). Its protocol logic is the sans-IO [`Pipeline`]. [`chunk_items`] and [`chunk_string`] cut big values into commands under a byte
//! budget.
//!
//! # Redis Cluster
//!
//! The [`cluster`] module reads a cluster's topology without I/O ([`cluster::SlotMap`] from
//! `CLUSTER SHARDS`, `SLOTS` or `NODES`), finds it over a connection
//! ([`cluster::discover`]) and routes requests to the right master
//! ([`cluster::ClusterClient`]). A migration from a cluster source runs one replication
//! link per shard (see [`migrate`], "Cluster sources"); one whose target URL names any
//! node of a cluster writes to every master, by slot ("Cluster targets").

pub mod cluster;
pub mod command;
mod error;
mod filter;
mod glob;
pub mod migrate;
pub mod plan;
pub mod rewrite;
mod slot;
mod target;
pub mod verify;
mod write;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use write::check_pipeline_script;

/// For the `server_replies` fuzz target: arbitrary RESP read as `FT.INFO`/`FT.SYNDUMP`
/// replies and turned into `FT.CREATE` (see `migrate::search`).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub fn check_search_plan(input: &[u8]) {
    migrate::check_plan_input(input)
}

#[cfg(feature = "fuzzing")]
mod fuzz_hooks;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub use fuzz_hooks::{
    check_asm_replies, check_cluster_plan, check_scan_replies, check_verify_replies,
};

pub use error::Error;
pub use filter::{Filter, KeyAction};
pub use glob::Glob;
pub use slot::{key_slot, SLOTS};
pub use target::{
    command_module, module_for_type, module_loaded, provides_type, DbKeys, Keyspace, ServerFamily,
    ServerVersion, Target, TargetOptions,
};
pub use write::{
    chunk_items, chunk_string, ChunkItems, ChunkString, LowWater, Outcome, Pipeline, Redirect,
    Resolved, ServerError, ServerErrorKind, Tag, Writer, WriterOptions,
};
