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
    /// The target is a cluster and source dbs with keys go (as they are, or by the db
    /// map) to dbs it does not hold: checked before anything is compared.
    #[error("target {url} is a cluster that holds {holds}; the source has keys in {dbs}: {fix}")]
    ClusterDbs {
        /// The target's URL, redacted.
        url: String,
        /// What the cluster holds (`db 0 only`, `dbs 0 to 3 (cluster-databases 4)`).
        holds: String,
        /// The source dbs (and the db each maps to), with their key counts.
        dbs: String,
        /// The options that would make the verification possible.
        fix: String,
    },
}
