//! The migration orchestrator: a source (an RDB file, or a live server over `PSYNC`) copied
//! into a target server, then (live sources) kept in sync until stopped.
//!
//! ```no_run
//! use migrate_core::migrate::{Conflict, Migration, Source, TargetConfig};
//! use migrate_core::Filter;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let source = replication_client::Config::new("redis://127.0.0.1:6379")?;
//! let handle = Migration::builder()
//!     .source(Source::Live(source))
//!     .target(TargetConfig::parse("redis://:secret@127.0.0.1:6380")?)
//!     .filter(Filter::new().exclude_db(15))
//!     .on_conflict(Conflict::Refuse)
//!     .once(true)
//!     .start();
//! println!("{:?}", handle.progress().phase);
//! let report = handle.wait().await?;
//! println!("{}", report.to_json());
//! # Ok(()) }
//! ```
//!
//! # What happens
//! 1. The target is connected (TCP, or TLS for `rediss://` with [`TlsOptions`], the source side's options type), its
//!    version and `proto-max-bulk-len` read. With [`Conflict::Refuse`] (the default) the
//!    migration refuses to start when a db it may write to holds keys.
//! 2. Full sync: the RDB is decoded as it arrives. Each key passes the [`Filter`](crate::Filter)
//!    (db include/exclude/mapping, key globs); keys whose TTL has passed are skipped and
//!    counted. [`WriteMode::Auto`] writes a key with `RESTORE key ttl payload ABSTTL
//!    [REPLACE] [IDLETIME s | FREQ f]` (the payload's footer set to the target's RDB version;
//!    `ABSTTL`, `IDLETIME`/`FREQ` where the target has them) when the target knows the value's
//!    type byte and the value is below the big-key threshold, and as commands from the
//!    [`rewrite`](crate::rewrite) module otherwise (chunked; TTL as `PEXPIREAT`). Module
//!    values can only be restored; a key that cannot be written is reported.
//! 3. Incremental (live sources): every replicated command goes through the
//!    [`Translator`](crate::command::Translator) (filters, `FLUSHALL` narrowing, older-target
//!    rewrites) and is written in order, transactions as `MULTI`/`EXEC`. Link failures are
//!    survived by `replication-client`'s partial resync (no gap, no duplicate).
//!
//! A live source that refuses replication (managed services) is read in [`scan`] mode
//! instead when [`MigrationBuilder::source_mode`] allows it ([`SourceMode::Auto`],
//! [`SourceMode::Scan`]): `SCAN` + `DUMP`, then keyspace notifications and a background
//! reconcile. [`MigrationBuilder::limits`] caps the load on both servers ([`Limits`]).
//!
//! Every write's reply is checked: a failure is reported with its key and command and, with
//! [`ErrorPolicy::Stop`] (the default), ends the migration; [`ErrorPolicy::SkipAndCount`]
//! lists and counts it. `-OOM` and other errors that refuse every write always stop it.
//!
//! # Conflicts
//! - [`Conflict::Refuse`]: checked once, before anything is written (`INFO keyspace`).
//! - [`Conflict::Replace`]: `RESTORE ... REPLACE`; keys written as commands are removed
//!   first (`UNLINK`); source keys that expired are removed from the target.
//! - [`Conflict::Skip`]: existing keys are kept: `RESTORE` without `REPLACE`, its
//!   `BUSYKEY` counted as skipped; keys written as commands are checked with `EXISTS` on a
//!   second connection first. Only the full sync skips: replicated commands always apply.
//!
//! # Function libraries, modules, module data
//! - Function libraries follow the conflict policy: [`Conflict::Refuse`] names the
//!   target's libraries before anything is written
//!   ([`MigrationError::TargetHasDefinitions`]), [`Conflict::Replace`] loads with
//!   `FUNCTION LOAD REPLACE`, [`Conflict::Skip`] keeps the target's and lists them
//!   ([`Report::functions_skipped`]).
//! - The target's `MODULE LIST` (and a live source's, or the module types an RDB file holds,
//!   found by a visitor pass over it) is read first. A migration into a
//!   target that lacks one of the source's modules refuses to start under
//!   [`ErrorPolicy::Stop`] ([`MigrationError::ModulesMissing`]); under
//!   [`ErrorPolicy::SkipAndCount`] each module key and each replicated module command is
//!   unsupported, with the module's name ([`crate::module_for_type`]).
//! - Module auxiliary data cannot be loaded by any command: it is counted per module in
//!   [`Report::module_aux_dropped`]. RediSearch indexes of a live source are recreated on a
//!   target that has RediSearch (`FT.INFO` → `FT.CREATE`, synonyms too) before the keys
//!   arrive ([`Report::search_indexes_created`], [`Report::search_index_problems`]).
//!
//! # Resume and healing
//! The target keeps a checkpoint ([`CHECKPOINT_KEY`], a string in db 0 under the reserved
//! prefix [`RESERVED_PREFIX`]): the source's replication id and offset, and a fingerprint of
//! the migration (source address, filter, db map, write mode). Replicated commands are
//! applied in `MULTI`/`EXEC` batches (up to 1000 commands, or whatever arrived before the
//! stream paused) whose last command updates the checkpoint, so data and checkpoint change
//! together. Starting the same migration again after any stop (a crash, SIGKILL, power loss,
//! Ctrl-C, the target restarted from its own AOF) resumes with `PSYNC <replid> <offset+1>`:
//! no full sync, no write lost, none applied twice, `INCR`, `RPUSH`, transactions and
//! scripts included. A checkpoint of another migration is refused
//! ([`MigrationError::CheckpointMismatch`]); [`MigrationBuilder::reset_checkpoint`] starts
//! over, [`MigrationBuilder::checkpoint`]`(false)` turns it off.
//!
//! When the source cannot continue (its backlog no longer holds the offset, its history
//! changed) or a full sync was interrupted (the checkpoint says `fullsync`, or the link
//! broke mid-RDB), the migration heals itself: a new full sync loads the snapshot over the
//! old data (`RESTORE ... REPLACE`, rewritten keys removed first) and then sweeps the target
//! (`SCAN`): keys inside the filter and db map that the snapshot does not hold are removed,
//! so the target ends equal to the source ([`Report::healing_full_syncs`],
//! [`Report::keys_swept`]). Keys outside the migration's scope are never touched.
//!
//! An RDB file import keeps a checkpoint while it runs (removed when it completes): an
//! interrupted import of the same file (same path, size and modification time) started
//! again replaces what the first attempt wrote, so a list or stream written as commands is
//! never doubled.
//!
//! # Cluster sources
//! A live source that is a Redis Cluster node (`INFO cluster`; any node, master or
//! replica) is read shard by shard: the masters are discovered
//! ([`cluster::discover`](crate::cluster::discover)), and each shard gets its own
//! replication link, target connection and checkpoint, run in parallel on the runtime.
//! A shard's id is `s` and the lowest slot it served at discovery (`s0`, `s5461`); its
//! checkpoint key is [`CHECKPOINT_KEY`]`:<id>` and its fingerprint names the id (not a node
//! address, which a failover changes). A shard whose lowest slot was resharded since keeps
//! the id of its checkpoint, found at the start by its replication id.
//! - With [`SourceMode::Auto`], a cluster that refuses `PSYNC` before any shard
//!   replicated is read in [`scan`] mode instead (every master scanned).
//! - [`MigrationBuilder::max_concurrent_full_syncs`] bounds the first full syncs running
//!   at once (default 2); [`MigrationBuilder::prefer_replica`] reads each shard from a
//!   replica; [`MigrationBuilder::shards`] ([`ShardSpec`]) takes a subset, so several
//!   processes can split a cluster into one target.
//! - A failed link asks the cluster again (any known node), finds its shard's new node by
//!   the shard's node ids (else its first slot) and continues there with `PSYNC` from the
//!   position reached (psync2: no full sync when the promoted replica has the history);
//!   bounded, then [`MigrationError::ShardLost`]; a shard whose node is out of reach at
//!   the start asks the same way (a refusal of `PSYNC` is not retried). Every
//!   [`MigrationBuilder::rediscover_every`] a quiet link checks its node and new shards get
//!   a link.
//! - Slots resharded on the source: a key moved by `MIGRATE` is a `RESTORE-ASKING` on the
//!   new owner's stream and a `DEL` on the old owner's, in either order at the target. The
//!   restore waits until the old owner's stream is applied on the target past the offset
//!   the old owner reports once the key moved: in memory for a shard of this process, else
//!   in its checkpoint on the target, so processes splitting the shards and restarts keep
//!   the key exactly once; bounded by [`MigrationBuilder::move_wait`] (60 s), then applied
//!   anyway and counted in [`Report::warnings`]. It is applied with `REPLACE`; the old
//!   owner's later commands on the key, all from before the move, are left out (counted).
//! - Function libraries (on every master) are carried by the first shard only;
//!   `FLUSHALL`/`FLUSHDB` of a shard removes only the keys of its slots from the target.
//! - [`Report::shards`] and [`Progress::shards`] break the summed counters down by shard;
//!   `once` ends when every shard has caught up; one shard failing stops the others
//!   (checkpoints written) and ends with [`MigrationError::Shard`].
//!
//! # Cluster targets
//! A target URL naming any node of a Redis Cluster (`INFO cluster`: `cluster_enabled:1`)
//! is written through one pipelined connection per master (same TLS and ACL login), each
//! command to the master of its keys' slot; [`Report::target_cluster_masters`] says so.
//! - `MOVED` updates the slot map and resends; `ASK` sends `ASKING` + the command to that
//!   node; `TRYAGAIN`, `CLUSTERDOWN` and unreachable masters are retried with backoff for
//!   30 s per command, then [`MigrationError::ClusterUnavailable`] names the slot, the node
//!   and the last reply. A master that dies (killed, failed over) is replaced by the new
//!   owner after reading the topology again; writes keep their order per key.
//! - `FLUSHALL`, `FLUSHDB`, `FUNCTION ...` and `SCRIPT ...` go to every master (a library
//!   is counted once). Commands with keys in several slots are split per slot when that
//!   has the same effect (`DEL`, `UNLINK`, `TOUCH`, `MSET`: [`Report::cross_slot_split`]);
//!   the others (`RENAME`, `COPY`, `SMOVE`, `LMOVE`, `*STORE`, `BITOP`, `PFMERGE`,
//!   `MSETNX`, ...) run on temporary copies of their keys sharing one slot (`DUMP`/`PTTL`/
//!   `RESTORE` under the reserved prefix), and the results are copied back
//!   ([`Report::cross_slot_commands`]).
//! - Source transactions and scripts whose keys span slots cannot stay atomic: they are
//!   applied command by command, in order, counted ([`Report::cross_slot_transactions`])
//!   with one warning, or refused with [`CrossSlot::Refuse`]
//!   ([`MigrationBuilder::cross_slot`]).
//! - Checkpoints and resume work as above, per slot: each batch becomes one `MULTI`/`EXEC`
//!   per slot with that slot's checkpoint key; resuming skips, per slot, the commands it
//!   already holds. Exactly once per slot; cross-slot commands (staged under a marker,
//!   copied back one slot transaction at a time) and keyless ones (one transaction per
//!   master with its marker) too, across crashes (see `cluster_sink`). Without checkpoints, and in the full sync, a command in flight on a master
//!   that died is sent again only when running it twice does no harm (`SET`, `DEL`,
//!   `RESTORE`, `HSET`, ...); the others are reported as failures, with their key.
//! - A cluster has db 0 only (Valkey 9: `cluster-databases`): a source with keys in other
//!   dbs needs a db map to 0 or an exclusion, else [`MigrationError::ClusterDbs`] names
//!   them before anything is written. The not-empty check, the preflight's module and
//!   library checks and the healing sweep ask every master.
//! - [`Conflict::Skip`] with keys written as commands asks `EXISTS` on the key's master
//!   (in scan mode too), and RDB type probing (`probe_restore`) sends its scratch
//!   `RESTORE` to the probe key's master, both through a [`ClusterClient`](crate::cluster::ClusterClient)
//!   (`MOVED`/`ASK` followed, `TRYAGAIN`/`CLUSTERDOWN` retried, then
//!   [`MigrationError::ClusterUnavailable`]).
//! - RediSearch indexes: `FT.CREATE` and the "already exists" checks on every master.
//!   Without the RediSearch coordinator (Redis Stack 7.4) the index name is routed by its
//!   slot: the index lives on that slot's master and indexes its keys only, named in
//!   [`Report::search_index_problems`].
//!
//! # Logging
//! Through `tracing` (target `migrate`): connections, phases, link failures, each failed
//! write. URLs are always shown redacted; values never appear.

mod apply;
mod builder;
mod check;
mod checkpoint;
mod cluster_sink;
/// For the `cluster_plan` fuzz target.
#[cfg(feature = "fuzzing")]
pub(crate) use cluster_sink::{plan as cluster_plan, slots_of, Plan as ClusterPlan};
mod conn;
mod error;
mod fullsync;
mod incremental;
mod limit;
mod live;
mod options;
mod preflight;
mod progress;
mod report;
mod run;
pub mod scan;
mod search;
mod shards;
#[cfg(feature = "fuzzing")]
pub(crate) use shards::fuzz_asm;
mod side;
mod sweep;

#[cfg(feature = "fuzzing")]
pub(crate) use search::check_plan_input;

pub use builder::{Migration, MigrationBuilder, MigrationHandle, ProgressWatcher};
pub use check::{precheck, Check, CheckOptions, CheckReport, CheckStatus};
pub use checkpoint::{CHECKPOINT_KEY, RESERVED_PREFIX};
pub use conn::{connect, Io, Stream};
pub(crate) use conn::{open, OpenError};
pub use error::MigrationError;
pub use limit::Limits;
pub use options::{Conflict, CrossSlot, ErrorPolicy, Source, TargetConfig, WriteMode};
pub use progress::{Phase, Progress, ShardProgress};
pub use replication_client::TlsOptions;
pub(crate) use report::{json_str, key_text};
pub use report::{Failure, Lossy, Report, ShardReport, StopReason, Unsupported};
pub use run::forget_checkpoint;
pub use scan::{ScanOptions, ScanStats, SourceMode};
pub use shards::ShardSpec;

/// Default big-key threshold: serialized values above 8 MiB are written as commands in
/// chunks rather than one `RESTORE`.
pub const DEFAULT_BIG_KEY_BYTES: usize = 8 << 20;
