//! The crate's one error type.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Where in the replication protocol a session was when something happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Connecting (TCP, TLS).
    Connect,
    /// `PING`, `AUTH`, `REPLCONF` exchange.
    Handshake,
    /// Waiting for the answer to `PSYNC`.
    Psync,
    /// `+FULLRESYNC` received, waiting for the RDB header (`$<len>` or `$EOF:<mark>`).
    RdbWait,
    /// Receiving the RDB payload.
    Rdb,
    /// Receiving the command stream.
    Stream,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Connect => "connect",
            Phase::Handshake => "handshake",
            Phase::Psync => "PSYNC",
            Phase::RdbWait => "RDB wait",
            Phase::Rdb => "RDB transfer",
            Phase::Stream => "command stream",
        })
    }
}

/// Everything that can go wrong, with structured fields.
///
/// No variant ever contains a password: URLs are shown redacted (see [`crate::RedisUrl`]).
/// Byte offsets in protocol errors count from the first byte the server sent on that
/// connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection URL could not be parsed.
    #[error("invalid URL {url}: {reason}")]
    InvalidUrl {
        /// The URL with its credentials redacted.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A configuration value is not usable.
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },
    /// The TLS configuration could not be built (bad certificate, key, CA file contents).
    #[error("TLS configuration: {reason}")]
    TlsConfig {
        /// What is wrong.
        reason: String,
    },
    /// A file named in the configuration (CA, certificate, key) could not be read.
    #[error("cannot read {what} file {path}: {source}")]
    File {
        /// Which file ("CA", "client certificate", "client key").
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The TCP connection could not be established (or timed out).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The I/O error.
        source: io::Error,
    },
    /// The TLS handshake failed (certificate verification included).
    #[error("TLS handshake with {addr} failed: {source}")]
    TlsHandshake {
        /// `host:port`.
        addr: String,
        /// The error rustls reported.
        source: io::Error,
    },
    /// Reading from or writing to the link failed.
    #[error("I/O error on the replication link during {phase}: {source}")]
    Io {
        /// Protocol phase at the time.
        phase: Phase,
        /// The I/O error.
        source: io::Error,
    },
    /// The server closed the connection.
    #[error("the server closed the connection during {phase}")]
    Closed {
        /// Protocol phase at the time.
        phase: Phase,
    },
    /// Nothing arrived from the server for longer than the read timeout.
    #[error("no data from the server for {idle:?} during {phase}")]
    Timeout {
        /// Protocol phase at the time.
        phase: Phase,
        /// The configured read timeout that elapsed.
        idle: Duration,
    },
    /// `AUTH` was refused, or the server wants credentials we did not give.
    #[error("authentication failed: {message}")]
    Auth {
        /// The server's error reply (never contains the password).
        message: String,
    },
    /// The user lacks a permission (`-NOPERM`): replication needs `+psync +replconf +ping`.
    #[error("permission denied for {command}: {message}")]
    NoPermission {
        /// The command refused.
        command: &'static str,
        /// The server's error reply.
        message: String,
    },
    /// The server cannot serve a replica right now (`-LOADING`, `-NOMASTERLINK`); retried.
    #[error("server not ready for {command}: {message}")]
    NotReady {
        /// The command refused.
        command: &'static str,
        /// The server's error reply.
        message: String,
    },
    /// Any other error reply to a handshake command.
    #[error("{command} failed: {message}")]
    ServerError {
        /// The command refused.
        command: &'static str,
        /// The server's error reply.
        message: String,
    },
    /// The server sent bytes that do not follow the replication protocol.
    #[error("protocol error at byte {offset} during {phase}: {reason}")]
    Protocol {
        /// Protocol phase at the time.
        phase: Phase,
        /// Byte offset on this connection where the bad input starts.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// A length sent by the server exceeds a configured limit (see [`crate::Limits`]).
    #[error("{what} of {len} bytes at byte {offset} exceeds the limit of {limit} bytes")]
    LimitExceeded {
        /// Which limit ("line", "bulk string", "argument count").
        what: &'static str,
        /// Byte offset on this connection where the item starts.
        offset: u64,
        /// The length the server announced (or reached).
        len: u64,
        /// The configured limit.
        limit: u64,
    },
    /// Writing or reading the RDB spool file failed.
    #[error("RDB spool file: {source}")]
    Spool {
        /// The I/O error.
        source: io::Error,
    },
    /// The RDB could not be decoded (see [`rdb_parser::Error`]): the same RDB would fail
    /// again, so this is not retried. Use [`crate::RdbMode::Raw`] to receive it undecoded.
    #[error("RDB decoding failed at RDB byte {offset}: {source}")]
    Rdb {
        /// Offset in the RDB payload where decoding stopped.
        offset: u64,
        /// The decoder's error (names the key and type byte where known).
        source: rdb_parser::Error,
    },
    /// A sans-IO session was used after it failed (sessions return their first error again;
    /// this is left for a session that failed without one).
    #[error("the session already failed; start a new one")]
    SessionFailed,
    /// Full syncs failed again and again: the server answered `+FULLRESYNC` each time,
    /// then the link was lost before the RDB ended (its snapshot failed, or it cut us for
    /// its output-buffer limit). Not retried further; `diagnosis` names the likely cause
    /// from the source's `INFO` and `CONFIG` and where to look.
    #[error("full sync from {addr} failed {attempts} times in a row (last: {last}); {diagnosis}")]
    FullSyncFailing {
        /// `host:port` of the source.
        addr: String,
        /// Full syncs attempted since the last one that completed.
        attempts: u32,
        /// The error that ended the last attempt.
        last: Box<Error>,
        /// The likely cause and where to look (the source's log, `INFO`, settings).
        diagnosis: String,
    },
    /// The reconnect policy gave up.
    #[error("gave up after {attempts} reconnect attempts; last error: {last}")]
    ReconnectExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last link error.
        last: Box<Error>,
    },
}

impl Error {
    /// The same error again, for a failed session that returns its first error on every
    /// later call. The session's errors carry only data; an I/O or RDB error (which only the
    /// driver produces) is replayed as its message.
    pub(crate) fn replay(&self) -> Error {
        match self {
            Error::Closed { phase } => Error::Closed { phase: *phase },
            Error::Timeout { phase, idle } => Error::Timeout {
                phase: *phase,
                idle: *idle,
            },
            Error::Auth { message } => Error::Auth {
                message: message.clone(),
            },
            Error::NoPermission { command, message } => Error::NoPermission {
                command,
                message: message.clone(),
            },
            Error::NotReady { command, message } => Error::NotReady {
                command,
                message: message.clone(),
            },
            Error::ServerError { command, message } => Error::ServerError {
                command,
                message: message.clone(),
            },
            Error::Protocol {
                phase,
                offset,
                reason,
            } => Error::Protocol {
                phase: *phase,
                offset: *offset,
                reason: reason.clone(),
            },
            Error::LimitExceeded {
                what,
                offset,
                len,
                limit,
            } => Error::LimitExceeded {
                what,
                offset: *offset,
                len: *len,
                limit: *limit,
            },
            Error::Io { phase, source } => Error::Io {
                phase: *phase,
                source: io::Error::new(source.kind(), source.to_string()),
            },
            other => Error::InvalidConfig {
                reason: other.to_string(),
            },
        }
    }

    /// Whether reconnecting may help: link failures, timeouts, protocol garbage and servers
    /// that are not ready are retried; credentials, permissions and configuration are not.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. }
                | Error::TlsHandshake { .. }
                | Error::Io { .. }
                | Error::Closed { .. }
                | Error::Timeout { .. }
                | Error::NotReady { .. }
                | Error::Protocol { .. }
                | Error::LimitExceeded { .. }
        )
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
