//! Named configuration with the defaults of a real replica.

use std::path::PathBuf;
use std::time::Duration;

use crate::backoff::Backoff;
use crate::error::Error;
use crate::event::ResumePoint;
use crate::tls::TlsOptions;
use crate::url::{RedisUrl, Secret};

/// The version announced with `REPLCONF version` by default: Valkey 9.1, whose native RDB
/// format (`VALKEY080`) is the newest Valkey format `rdb-parser` decodes. A Valkey server
/// sends the newest format it has that such a replica reads; Redis ignores the option.
pub const ANNOUNCED_VERSION: &str = "9.1.2";

/// Full syncs that may fail in a row (the link lost before the RDB ended) before the
/// replica gives up with [`Error::FullSyncFailing`]; see [`Config::max_full_sync_attempts`].
pub const DEFAULT_MAX_FULL_SYNC_ATTEMPTS: u32 = 5;

/// Limits on what the server may make us buffer. Lengths announced by the server are checked
/// against them before anything is allocated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Longest reply line (`+FULLRESYNC ...`, the RDB header, a simple string where a command
    /// element was expected). Default 64 KiB, Redis's `PROTO_INLINE_MAX_SIZE`. (`*3`/`$5`
    /// headers in the command stream are bounded more tightly by `resp-codec`: 32 bytes.)
    pub max_line_len: usize,
    /// Longest bulk string in a replicated command. Default 512 MiB, Redis's default
    /// `proto-max-bulk-len`; raise it when the source's is higher.
    pub max_bulk_len: u64,
    /// Most arguments in one replicated command. Default 16 Mi.
    pub max_args: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_line_len: 64 * 1024,
            max_bulk_len: 512 * 1024 * 1024,
            max_args: 16 * 1024 * 1024,
        }
    }
}

/// Configuration of the sans-IO [`Session`](crate::Session): what the handshake says,
/// timers, limits.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionConfig {
    /// ACL user for `AUTH user pass` (`None`: `AUTH pass`, the `default` user).
    pub username: Option<String>,
    /// Password; `None` sends no `AUTH`.
    pub password: Option<Secret>,
    /// Port announced with `REPLCONF listening-port` (shown in the server's `INFO replication`).
    /// Default 0: we accept no connections. `None` skips the command.
    pub listening_port: Option<u16>,
    /// Address announced with `REPLCONF ip-address` (default: none sent).
    pub announce_ip: Option<String>,
    /// Version sent with `REPLCONF version x.y.z`. Valkey 9 picks the RDB format it sends
    /// from it: without it, RDB 11, and its snapshot then fails on values RDB 11 cannot hold
    /// (hash field TTLs), so the replica never syncs. Servers that do not know the option
    /// answer an error, which is ignored. Default [`ANNOUNCED_VERSION`], the newest server
    /// version whose RDB format `rdb-parser` decodes; `None` sends nothing.
    pub replconf_version: Option<String>,
    /// Interval of the `REPLCONF ACK` a replica sends. Default 1 s, like Redis (every 50 ms
    /// at most between the start of the stream phase and its first byte, for 5 s).
    pub ack_interval: Duration,
    /// The link is considered dead when nothing arrives for this long. Default 60 s, Redis's
    /// `repl-timeout`; the server sends a PING (stream) or a newline (waiting for the RDB)
    /// at least every 10 s.
    pub read_timeout: Duration,
    /// Size limits on server input.
    pub limits: Limits,
}

impl Default for SessionConfig {
    fn default() -> SessionConfig {
        SessionConfig {
            username: None,
            password: None,
            listening_port: Some(0),
            announce_ip: None,
            replconf_version: Some(ANNOUNCED_VERSION.to_string()),
            ack_interval: Duration::from_secs(1),
            read_timeout: Duration::from_secs(60),
            limits: Limits::default(),
        }
    }
}

/// Where the RDB of a full sync goes before the consumer sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RdbSpool {
    /// Stream the RDB to the consumer as it arrives (backpressure reaches the server: a
    /// consumer slower than the server's `client-output-buffer-limit replica` allows gets the
    /// link cut by the server). Default.
    #[default]
    Never,
    /// Write the RDB to an unnamed temporary file in this directory at network speed, then
    /// hand it to the consumer from the file while the server buffers the command stream
    /// (like a real disk-loading replica).
    ToDir(PathBuf),
}

/// What the consumer receives for the RDB of a full sync.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum RdbMode {
    /// Decoded as it arrives by [`rdb_parser::RdbDecoder`]: [`Event::Rdb`](crate::Event::Rdb)
    /// batches of its events. Default.
    #[default]
    Decode,
    /// Decoded with these decoder options (e.g. `raw_values` for RESTORE payloads).
    DecodeWith(rdb_parser::Options),
    /// Raw payload bytes: [`Event::RdbChunk`](crate::Event::RdbChunk).
    Raw,
}

/// Configuration of a [`Replica`](crate::Replica): the URL, TLS, the session settings,
/// reconnects and buffering.
///
/// ```
/// use std::time::Duration;
/// use replication_client::Config;
///
/// let config = Config::new("redis://repl:secret@127.0.0.1:6379")?
///     .channel_capacity(1024)
///     .read_timeout(Duration::from_secs(30));
/// assert_eq!(config.url().to_string(), "redis://repl:***@127.0.0.1:6379");
/// # Ok::<(), replication_client::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) url: RedisUrl,
    pub(crate) tls: TlsOptions,
    pub(crate) session: SessionConfig,
    pub(crate) backoff: Backoff,
    pub(crate) channel_capacity: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) spool: RdbSpool,
    pub(crate) resume: Option<ResumePoint>,
    pub(crate) read_chunk: usize,
    pub(crate) rdb_mode: RdbMode,
    pub(crate) max_full_sync_attempts: u32,
}

impl Config {
    /// A configuration for `url` (`redis://` or `rediss://`, credentials taken from it) with
    /// every other setting at its default.
    pub fn new(url: &str) -> Result<Config, Error> {
        Ok(Config::from_url(RedisUrl::parse(url)?))
    }

    /// Same as [`Config::new`] with a parsed URL.
    pub fn from_url(url: RedisUrl) -> Config {
        let session = SessionConfig {
            username: url.username().map(str::to_string),
            password: url.password().cloned(),
            ..SessionConfig::default()
        };
        Config {
            url,
            tls: TlsOptions::default(),
            session,
            backoff: Backoff::default(),
            channel_capacity: 256,
            connect_timeout: Duration::from_secs(10),
            spool: RdbSpool::Never,
            resume: None,
            read_chunk: 64 * 1024,
            rdb_mode: RdbMode::Decode,
            max_full_sync_attempts: DEFAULT_MAX_FULL_SYNC_ATTEMPTS,
        }
    }

    /// The server URL.
    pub fn url(&self) -> &RedisUrl {
        &self.url
    }

    /// The same configuration for another server at `host:port` (credentials, TLS and every
    /// other setting kept): a cluster's other nodes, the node that took over after a
    /// failover. A resume point set with [`Config::resume_from`] is cleared.
    pub fn node(mut self, host: &str, port: u16) -> Config {
        self.url = self.url.with_host_port(host, port);
        self.resume = None;
        self
    }

    /// The TLS options (for a tool that opens ordinary connections to the same server).
    pub fn tls_options(&self) -> &TlsOptions {
        &self.tls
    }

    /// TLS options (used for `rediss://` URLs only).
    pub fn tls(mut self, tls: TlsOptions) -> Config {
        self.tls = tls;
        self
    }

    /// Replaces the session settings. Credentials from the URL are kept unless this
    /// configuration sets its own.
    pub fn session(mut self, mut session: SessionConfig) -> Config {
        if session.password.is_none() {
            session.username = self.session.username.take();
            session.password = self.session.password.take();
        }
        self.session = session;
        self
    }

    /// The session settings.
    pub fn session_config(&self) -> &SessionConfig {
        &self.session
    }

    /// `REPLCONF version x.y.z` to send (Valkey 9 chooses the RDB format from it). Default
    /// [`ANNOUNCED_VERSION`]; see [`SessionConfig::replconf_version`].
    pub fn replconf_version(mut self, version: impl Into<String>) -> Config {
        self.session.replconf_version = Some(version.into());
        self
    }

    /// Sends no `REPLCONF version` (a Valkey 9 source then sends RDB 11).
    pub fn no_replconf_version(mut self) -> Config {
        self.session.replconf_version = None;
        self
    }

    /// How many full syncs may fail in a row (the server answered `+FULLRESYNC`, then the
    /// link was lost before the RDB ended) before the replica stops with
    /// [`Error::FullSyncFailing`], which names the likely cause read from the source's
    /// `INFO` and `CONFIG`. Failed attempts back off like reconnects ([`Config::backoff`]).
    /// Default [`DEFAULT_MAX_FULL_SYNC_ATTEMPTS`]; at least 1.
    pub fn max_full_sync_attempts(mut self, attempts: u32) -> Config {
        self.max_full_sync_attempts = attempts.max(1);
        self
    }

    /// See [`SessionConfig::read_timeout`].
    pub fn read_timeout(mut self, timeout: Duration) -> Config {
        self.session.read_timeout = timeout;
        self
    }

    /// See [`SessionConfig::ack_interval`].
    pub fn ack_interval(mut self, interval: Duration) -> Config {
        self.session.ack_interval = interval;
        self
    }

    /// Input size limits.
    pub fn limits(mut self, limits: Limits) -> Config {
        self.session.limits = limits;
        self
    }

    /// Reconnect policy. Default: 100 ms doubling to 30 s, never giving up.
    pub fn backoff(mut self, backoff: Backoff) -> Config {
        self.backoff = backoff;
        self
    }

    /// Events buffered between the connection task and the consumer (default 256; a run of
    /// consecutive commands counts as one, up to 256 commands or 1 MB of them). When full,
    /// the task stops reading from the server: backpressure.
    pub fn channel_capacity(mut self, capacity: usize) -> Config {
        self.channel_capacity = capacity.max(1);
        self
    }

    /// TCP connect + TLS handshake timeout. Default 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Config {
        self.connect_timeout = timeout;
        self
    }

    /// Where the RDB goes before the consumer sees it. Default [`RdbSpool::Never`].
    pub fn spool(mut self, spool: RdbSpool) -> Config {
        self.spool = spool;
        self
    }

    /// Start with `PSYNC <replid> <offset+1>` from a position saved earlier (see
    /// [`Replica::position`](crate::Replica::position)) instead of a full sync.
    pub fn resume_from(mut self, point: ResumePoint) -> Config {
        self.resume = Some(point);
        self
    }

    /// Decoded RDB events (default) or raw RDB bytes.
    pub fn rdb_mode(mut self, mode: RdbMode) -> Config {
        self.rdb_mode = mode;
        self
    }

    /// Bytes read from the socket at a time. Default 64 KiB.
    pub fn read_chunk(mut self, bytes: usize) -> Config {
        self.read_chunk = bytes.max(1024);
        self
    }
}
