//! [`VerifyError`]: why a verification could not run to its end.

use std::fmt;

/// Which server of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The server migrated from.
    Source,
    /// The server migrated to.
    Target,
}

impl Side {
    /// `"source"` or `"target"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Target => "target",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a verification failed (differences are not errors: they are in the
/// [`VerifyReport`](super::VerifyReport)). One line each, naming the side and its redacted
/// URL; never values or passwords.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The options are not usable (a sample fraction outside `(0, 1]`, ...).
    #[error("invalid verification: {0}")]
    Config(String),
    /// Connecting or logging in failed.
    #[error("{side} {url}: {source}")]
    Connect {
        /// Which server.
        side: Side,
        /// Its URL, redacted.
        url: String,
        /// What failed.
        #[source]
        source: Box<crate::Error>,
    },
    /// The TLS configuration or handshake failed.
    #[error("{side} {url}: TLS: {reason}")]
    Tls {
        /// Which server.
        side: Side,
        /// Its URL, redacted.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The connection failed after the login (lost, timed out, invalid RESP).
    #[error("{side} {url}: {source}")]
    Connection {
        /// Which server.
        side: Side,
        /// Its URL, redacted.
        url: String,
        /// What failed.
        #[source]
        source: Box<crate::Error>,
    },
    /// A command that every comparison needs was refused (ACL `NOPERM`, a missing `SCAN`
    /// right, a db that does not exist ...).
    #[error("{side} {url}: {command} refused: {reply}")]
    Server {
        /// Which server.
        side: Side,
        /// Its URL, redacted.
        url: String,
        /// The command (its name and, for `SELECT`, the db; never a value).
        command: String,
        /// The error reply.
        reply: String,
    },
}
