//! The crate's error type.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::write::{ServerError, Tag};

/// Everything that can go wrong in `migrate-core`.
///
/// Messages are one line, name the server by `host:port` and the command by its
/// [`Tag`] (command, key, db); they never contain values or passwords. The enum is `Clone`
/// (I/O sources are shared behind an [`Arc`]) so that a writer that stopped on an error can
/// return it again from every later call.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The TCP connection could not be established (refused, unreachable, unknown host).
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The I/O error.
        #[source]
        source: Arc<io::Error>,
    },
    /// Connecting, or the handshake after it, took longer than the configured timeout.
    #[error("{addr}: no answer within {timeout:?} during {during}")]
    Timeout {
        /// `host:port`.
        addr: String,
        /// The timeout.
        timeout: Duration,
        /// What was being done (`"connect"`, `"handshake"`).
        during: &'static str,
    },
    /// `AUTH` was refused (`-WRONGPASS`, or `-ERR` from a server without that user).
    #[error("{addr} refused authentication{}: {reply}", user.as_deref().map(|u| format!(" as user '{u}'")).unwrap_or_default())]
    AuthRefused {
        /// `host:port`.
        addr: String,
        /// The ACL user name, if one was given (never the password).
        user: Option<String>,
        /// The server's reply.
        reply: ServerError,
    },
    /// The server requires a password and none was given (`-NOAUTH`).
    #[error("{addr} requires authentication (NOAUTH): give a password")]
    AuthRequired {
        /// `host:port`.
        addr: String,
    },
    /// A command the connection needs was refused (`INFO server`, `MULTI`).
    #[error("{}{command} refused: {reply}", if addr.is_empty() { String::new() } else { format!("{addr}: ") })]
    CommandRefused {
        /// `host:port` (empty when not known, as inside a [`Pipeline`](crate::Pipeline)).
        addr: String,
        /// The command, without arguments that could be secret.
        command: &'static str,
        /// The server's reply.
        reply: ServerError,
    },
    /// `INFO server` did not report a version.
    #[error("{addr}: INFO server reports no redis_version or valkey_version")]
    UnknownVersion {
        /// `host:port`.
        addr: String,
    },
    /// The target refused a write with `-OOM`: it is at `maxmemory` with `noeviction`.
    /// The writer stops accepting commands; those in flight still get their outcomes.
    #[error("target out of memory: {reply} (on {tag})")]
    OutOfMemory {
        /// The first command refused.
        tag: Tag,
        /// The server's reply.
        reply: ServerError,
    },
    /// The target refused a write in a way that will refuse every write (`-READONLY`,
    /// `-MISCONF`, `-NOAUTH`, `-LOADING`). The writer stops as for
    /// [`OutOfMemory`](Error::OutOfMemory).
    #[error("target refuses writes: {reply} (on {tag})")]
    TargetRefusesWrites {
        /// The first command refused.
        tag: Tag,
        /// The server's reply.
        reply: ServerError,
    },
    /// `SELECT` failed (db out of range, or a cluster target): commands sent after it ran
    /// in another db, so the writer stops. Check every db to be written up front with
    /// [`Target::db_size`](crate::Target::db_size), which fails the same way.
    #[error("SELECT {db} refused by the target: {reply}")]
    SelectRefused {
        /// The db.
        db: u32,
        /// The server's reply.
        reply: ServerError,
    },
    /// A reply did not have the shape its command calls for: the connection is out of step
    /// and is dropped.
    #[error("unexpected reply to {command}: expected {expected}, got {found}")]
    UnexpectedReply {
        /// The command (its tag, or the internal command such as `SELECT 3`, `EXEC`).
        command: String,
        /// What was expected.
        expected: &'static str,
        /// The shape of what arrived (never its bulk contents).
        found: String,
    },
    /// The target sent bytes that are not valid RESP.
    #[error("invalid RESP from the target: {0}")]
    Resp(#[source] Arc<resp_codec::Error>),
    /// The connection failed (reset, broken pipe).
    #[error("connection to the target lost with {in_flight} commands unanswered: {source}")]
    ConnectionLost {
        /// Commands whose replies had not arrived (they are reported as
        /// [`Outcome::Lost`](crate::Outcome::Lost)).
        in_flight: usize,
        /// The I/O error.
        #[source]
        source: Arc<io::Error>,
    },
    /// The target closed the connection (e.g. `CLIENT KILL`, a restart, `timeout`).
    #[error("the target closed the connection with {in_flight} commands unanswered")]
    ConnectionClosed {
        /// Commands whose replies had not arrived (they are reported as
        /// [`Outcome::Lost`](crate::Outcome::Lost)).
        in_flight: usize,
    },
    /// An argument is longer than the target's `proto-max-bulk-len`; nothing was sent.
    #[error(
        "{tag}: an argument of {len} bytes exceeds the target's proto-max-bulk-len ({max} bytes)"
    )]
    ArgumentTooLarge {
        /// The command.
        tag: Tag,
        /// The argument's length.
        len: usize,
        /// The limit.
        max: u64,
    },
    /// The writer's API was used in a way it does not allow (e.g. `EXEC` without `MULTI`,
    /// a `SELECT` given as a command).
    #[error("invalid use of the writer: {0}")]
    InvalidUse(&'static str),
}

impl From<resp_codec::Error> for Error {
    fn from(e: resp_codec::Error) -> Self {
        Error::Resp(Arc::new(e))
    }
}

impl Error {
    /// `true` for [`OutOfMemory`](Error::OutOfMemory).
    pub fn is_out_of_memory(&self) -> bool {
        matches!(self, Error::OutOfMemory { .. })
    }

    /// `true` when the connection is gone or unusable (lost, closed, desynchronised,
    /// invalid RESP): reconnecting may help.
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self,
            Error::ConnectionLost { .. }
                | Error::ConnectionClosed { .. }
                | Error::UnexpectedReply { .. }
                | Error::Resp(_)
                | Error::Connect { .. }
                | Error::Timeout { .. }
        )
    }
}
