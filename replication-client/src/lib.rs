//! A replica-side client of the Redis/Valkey replication protocol (`PSYNC`): it looks to
//! the server like one of its replicas and hands its user a typed stream of what the server
//! replicates: the RDB of a full sync, then every write command with its database and exact
//! replication offset. It survives disconnects: after any link failure it reconnects with
//! backoff and asks `PSYNC <replid> <offset+1>`, so the stream resumes with no gap and no
//! duplicate, or reports a new full sync as such ([`Event::FullResync`]).
//!
//! Two layers:
//! - [`Session`]: the sans-IO protocol core (handshake, `PSYNC`, disk-based and diskless
//!   RDB transfer, command stream, offsets, `REPLCONF ACK`, timeouts). Bytes and time in,
//!   events and bytes to send out; no I/O, deterministic, fuzzed.
//! - [`Replica`]: the tokio driver: TCP or TLS ([`TlsOptions`], rustls), reconnects
//!   ([`Backoff`]), a bounded channel to the consumer (backpressure reaches the server),
//!   [`Lag`], optional RDB spooling ([`RdbSpool`]).
//!
//! ```no_run
//! use replication_client::{Config, Event, Replica};
//!
//! # async fn run() -> Result<(), replication_client::Error> {
//! let config = Config::new("redis://repl:secret@127.0.0.1:6379")?;
//! let mut replica = Replica::connect(config).await?;
//! while let Some(event) = replica.recv().await {
//!     match event? {
//!         Event::FullResync { reason, .. } => println!("full sync ({reason:?})"),
//!         Event::Rdb(batch) => { /* rdb_parser events: keys, values, ... */ let _ = batch; }
//!         Event::Command(cmd) => println!("db {} @{}: {:?}", cmd.db, cmd.end_offset, cmd.args),
//!         Event::Disconnected { error, retry_in, .. } => eprintln!("{error}; retry in {retry_in:?}"),
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Offsets follow Redis's own accounting: every byte of the stream counts, `PING`,
//! `SELECT`, `REPLCONF GETACK` and `MULTI`/`EXEC` included; `REPLCONF ACK` reports the
//! offset at the last transaction boundary and the answer to `GETACK` excludes the
//! `GETACK` itself. When the server is idle, [`Replica::position`] equals its
//! `master_repl_offset`.
//!
//! Dependencies: `tokio` + `tokio-rustls`/`rustls` with the `ring` provider (it builds with
//! a C compiler alone; `aws-lc-rs` needs cmake), `webpki-roots` for the default trust
//! store, `resp-codec` (the workspace's RESP framing: the command stream is decoded and our
//! commands encoded with it), `bytes` (zero-copy arguments and RDB chunks), `memchr`
//! (handshake-line and EOF-mark search), `thiserror`, `tempfile` (spooling).

mod backoff;
mod config;
mod diagnose;
mod driver;
mod error;
mod event;
mod session;
mod tls;
mod url;

pub use backoff::Backoff;
pub use config::{
    Config, Limits, RdbMode, RdbSpool, SessionConfig, ANNOUNCED_VERSION,
    DEFAULT_MAX_FULL_SYNC_ATTEMPTS,
};
pub use driver::Replica;
pub use error::{Error, Phase, Result};
pub use event::{
    Command, Event, FullResyncReason, Lag, RdbTransfer, ReplId, ResumePoint, SessionEvent,
};
pub use session::Session;
pub use tls::TlsOptions;
pub use url::{RedisUrl, Secret};
