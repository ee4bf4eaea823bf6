//! Verification: the target compared with the source key by key, before cutover, while a
//! live sync may still be carrying writes.
//!
//! ```no_run
//! use std::time::Duration;
//! use migrate_core::migrate::TargetConfig;
//! use migrate_core::verify::{DiffKind, Verifier, VerifyOptions};
//! use migrate_core::Filter;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let report = Verifier::new(
//!     TargetConfig::parse("redis://127.0.0.1:6379")?,
//!     TargetConfig::parse("rediss://admin:secret@target.example:6380")?,
//! )
//! .options(
//!     VerifyOptions::default()
//!         .filter(Filter::new().exclude_db(15).map_db(3, 0))
//!         .ttl_tolerance(Duration::from_millis(1000))
//!         .rounds(3)
//!         .delay(Duration::from_secs(1))
//!         .max_ops(20_000)
//!         .sample(0.1),
//! )
//! .run()
//! .await?;
//! for d in &report.differences {
//!     println!("{d}"); // db 0 "user:1": value: field "name": "Ann" vs "Anne"
//! }
//! println!("{}", report.summary());
//! if !report.is_equal() {
//!     eprintln!("{} keys missing on the target", report.count(DiffKind::Missing));
//! }
//! std::fs::write("verify.json", report.to_json())?;
//! # Ok(()) }
//! ```
//!
//! # What is compared
//! - Every key of the source dbs inside the [`Filter`] (db include/exclude,
//!   key globs) against the same key in the target db the filter maps it to: its type, its
//!   value and its expiry (within [`VerifyOptions::ttl_tolerance`]). Strings, lists,
//!   sets, sorted sets (members and scores, compared as numbers), hashes; streams with
//!   their entries, last id, consumer groups (last-delivered id), consumers (names and
//!   pending counts) and pending entries (ids, owners, delivery counts), read with
//!   `XINFO STREAM key FULL` where the server has it (Redis 6.0+, Valkey) and with
//!   `XRANGE` + `XINFO GROUPS` / `CONSUMERS` + `XPENDING` elsewhere.
//! - Hash field TTLs (`HPEXPIRETIME`) when both servers have them (Redis 7.4+, Valkey 9+).
//! - Module values: RedisJSON by `JSON.GET key $`, Top-K by `TOPK.LIST key WITHCOUNT`
//!   (Redis 7.4's Top-K `DUMP` holds a pointer), any other type by its `DUMP` payload
//!   without the 10-byte trailer (RDB version and CRC).
//! - Function libraries (`FUNCTION LIST WITHCODE`: names, engines, code).
//! - Keys only on the target: each target db that a compared source db maps to is
//!   scanned too, and its keys that no source db mapped to it holds are extra.
//! - Keys under [`RESERVED_PREFIX`](crate::migrate::RESERVED_PREFIX) (the migration's
//!   checkpoint) are ignored on both sides.
//!
//! # Online
//! Like RedisFullCheck, a first pass finds the differences; then only those keys are
//! read again, [`VerifyOptions::rounds`] times after [`VerifyOptions::delay`] each, and a
//! key drops out as soon as it matches. What a live sync was still carrying disappears;
//! only what persists through every round is reported. A key written without pause on
//! the source can still show up: re-run, or verify after the writes stop.
//!
//! # Cost
//! Reads are pipelined: per batch of [`VerifyOptions::batch`] keys (one `SCAN` step),
//! one round trip for `TYPE` + `PTTL`, one for the first chunk of every value, one for the
//! field TTLs of hashes, on both servers at once. Values bigger than a chunk
//! ([`VerifyOptions::chunk`] elements, 64 KiB of a string) are read in pieces
//! (`GETRANGE`, `LRANGE`, `ZRANGE`, `SSCAN`, `HSCAN`, `XRANGE`) and compared by a 128-bit
//! digest once they pass [`VerifyOptions::key_budget`] bytes, so memory stays bounded;
//! smaller values are compared element by element, which names what differs.
//! [`VerifyOptions::max_ops`] caps the commands per second sent to each server and
//! [`VerifyOptions::sample`] checks a deterministic fraction of the keys (by a hash of
//! the key: the same keys on every run and on both sides). Memory grows with the number
//! of differences found by the first pass (their keys are kept for the re-checks).
//!
//! # Connections
//! Both servers are reached like a migration's target ([`connect`]): `redis://` or
//! `rediss://` URLs with credentials (`AUTH` user and password), TLS settings from
//! [`TargetConfig::tls`](crate::migrate::TargetConfig). The replies read are RESP2.
//!
//! # Redis Cluster
//! Either side, or both, may be a cluster: its mode is read with `INFO cluster` from the
//! node of the URL (any node: a master or a replica), then one connection is opened to
//! every master of its topology ([`discover`](crate::cluster::discover)). Keys are listed
//! by `SCAN` on every master of the source (and, for the keys only on the target, every
//! master of the target); each key is read from the master of its slot, the batch split
//! per node and pipelined on each. A key answered with `MOVED` is read again from its new
//! owner after the topology is read again (`CLUSTER SHARDS`, `CLUSTER SLOTS` before 7.0),
//! one answered with `ASK` (its slot is being moved) from the importing node with
//! `ASKING`, `TRYAGAIN`/`CLUSTERDOWN` after a backoff; for at most 15 s, then the
//! verification stops with the last reply ([`VerifyError::Server`]). A cluster holds db 0
//! (Valkey 9 clusters may hold more: their dbs are compared too): source dbs with keys
//! that go (as they are, or by the db map) to a db a cluster target does not hold stop
//! the verification before anything is compared ([`VerifyError::ClusterDbs`], naming the
//! dbs and the `--map-db`/`--exclude-db` to use). Function libraries are per node: they
//! are read from every master of a cluster side; a library that a target master lacks,
//! or holds with other code, is a difference naming those masters (a source cluster's
//! masters together are the reference). [`VerifyReport::source_masters`] and
//! [`VerifyReport::target_masters`] count the masters (`None`: a standalone server).
//!
//! # Not yet
//! Key transforms (a transform cannot be traced back from the target's keys). Time series
//! (RedisTimeSeries) are compared by their `DUMP` payload like any other module type.

mod compare;
mod conn;
mod digest;
mod error;
mod read;
mod report;
mod run;
mod side;

/// For the `verify_replies` fuzz target (see `read::check_replies`, `side::ask_target`).
#[cfg(feature = "fuzzing")]
pub(crate) use {read::check_replies, side::ask_target};

use std::time::Duration;

pub use conn::{connect, Io, Stream};
pub use error::{Side, VerifyError};
pub use report::{DiffKind, Difference, VerifyReport};

use crate::migrate::TargetConfig;
use crate::Filter;

/// How to verify. The defaults: everything, TTL tolerance 1 s, 3 re-check rounds 1 s
/// apart, no rate cap, no sampling.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// Which dbs and keys, and which target db each source db is compared with.
    pub filter: Filter,
    /// How far expiries (key and field) may differ. Default 1000 ms.
    pub ttl_tolerance: Duration,
    /// Re-check rounds after the first pass. Default 3.
    pub rounds: u32,
    /// Pause before each re-check round. Default 1 s.
    pub delay: Duration,
    /// At most this many commands per second to each server. Default: no cap.
    pub max_ops: Option<u64>,
    /// The fraction of keys checked, in `(0, 1]`. Default 1.0 (all).
    pub sample: f64,
    /// Keys per batch (`SCAN ... COUNT`, one pipelined round trip per step). Default 200.
    pub batch: usize,
    /// Elements per chunk of a big value. Default 500.
    pub chunk: usize,
    /// Bytes of one value kept for an element-wise comparison; bigger values are compared
    /// by digest. Default 256 KiB.
    pub key_budget: usize,
    /// Compare function libraries. Default true.
    pub functions: bool,
    /// Bound on connecting and on each round trip. Default 10 s.
    pub timeout: Duration,
    /// At most this many differences listed in the report (all are counted). Default 1000.
    pub max_listed: usize,
}

impl Default for VerifyOptions {
    fn default() -> VerifyOptions {
        VerifyOptions {
            filter: Filter::new(),
            ttl_tolerance: Duration::from_millis(1000),
            rounds: 3,
            delay: Duration::from_secs(1),
            max_ops: None,
            sample: 1.0,
            batch: 200,
            chunk: 500,
            key_budget: 256 << 10,
            functions: true,
            timeout: Duration::from_secs(10),
            max_listed: 1000,
        }
    }
}

impl VerifyOptions {
    /// Sets [`filter`](Self::filter).
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }

    /// Sets [`ttl_tolerance`](Self::ttl_tolerance).
    pub fn ttl_tolerance(mut self, d: Duration) -> Self {
        self.ttl_tolerance = d;
        self
    }

    /// Sets [`rounds`](Self::rounds).
    pub fn rounds(mut self, n: u32) -> Self {
        self.rounds = n;
        self
    }

    /// Sets [`delay`](Self::delay).
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }

    /// Sets [`max_ops`](Self::max_ops).
    pub fn max_ops(mut self, per_second: u64) -> Self {
        self.max_ops = Some(per_second);
        self
    }

    /// Sets [`sample`](Self::sample).
    pub fn sample(mut self, fraction: f64) -> Self {
        self.sample = fraction;
        self
    }

    /// Sets [`batch`](Self::batch).
    pub fn batch(mut self, keys: usize) -> Self {
        self.batch = keys;
        self
    }

    /// Sets [`chunk`](Self::chunk).
    pub fn chunk(mut self, elements: usize) -> Self {
        self.chunk = elements;
        self
    }

    /// Sets [`key_budget`](Self::key_budget).
    pub fn key_budget(mut self, bytes: usize) -> Self {
        self.key_budget = bytes;
        self
    }

    /// Sets [`functions`](Self::functions).
    pub fn functions(mut self, yes: bool) -> Self {
        self.functions = yes;
        self
    }

    /// Sets [`timeout`](Self::timeout).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Sets [`max_listed`](Self::max_listed).
    pub fn max_listed(mut self, n: usize) -> Self {
        self.max_listed = n;
        self
    }
}

/// A verification of a target against its source; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Verifier {
    source: TargetConfig,
    target: TargetConfig,
    options: VerifyOptions,
}

impl Verifier {
    /// Compares `target` with `source`, with the default options.
    pub fn new(source: TargetConfig, target: TargetConfig) -> Verifier {
        Verifier {
            source,
            target,
            options: VerifyOptions::default(),
        }
    }

    /// Sets the options.
    pub fn options(mut self, options: VerifyOptions) -> Verifier {
        self.options = options;
        self
    }

    /// The options.
    pub fn get_options(&self) -> &VerifyOptions {
        &self.options
    }

    /// Runs the first pass and the re-check rounds.
    ///
    /// # Errors
    /// [`VerifyError`]: a connection failed, a command every comparison needs was refused,
    /// the options are invalid. Differences are not errors: see
    /// [`VerifyReport::is_equal`].
    pub async fn run(&self) -> Result<VerifyReport, VerifyError> {
        run::run(self).await
    }
}
