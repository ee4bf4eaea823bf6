//! What a replica hands its user: replication ids, positions, commands, events.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

use crate::error::Error;

/// A 40-character replication id, as in `+FULLRESYNC <replid> <offset>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplId([u8; 40]);

impl ReplId {
    /// Parses a replication id: exactly 40 ASCII alphanumeric characters.
    pub fn from_bytes(b: &[u8]) -> Option<ReplId> {
        let arr: [u8; 40] = b.try_into().ok()?;
        arr.iter()
            .all(u8::is_ascii_alphanumeric)
            .then_some(ReplId(arr))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII alphanumerics are accepted at construction.
        std::str::from_utf8(&self.0).unwrap_or("?")
    }

    /// The id as bytes.
    pub fn as_bytes(&self) -> &[u8; 40] {
        &self.0
    }
}

impl std::str::FromStr for ReplId {
    type Err = Error;
    fn from_str(s: &str) -> Result<ReplId, Error> {
        ReplId::from_bytes(s.as_bytes()).ok_or_else(|| Error::InvalidConfig {
            reason: format!("{s:?} is not a replication id (40 alphanumeric characters)"),
        })
    }
}

impl fmt::Display for ReplId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ReplId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReplId({})", self.as_str())
    }
}

/// A position in a server's replication stream from which `PSYNC` can resume: the id, the
/// offset of the last byte processed, and the database selected at that point (`+CONTINUE`
/// does not re-send `SELECT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResumePoint {
    /// Replication id.
    pub replid: ReplId,
    /// Offset of the last byte processed (`PSYNC` asks for `offset + 1`).
    pub offset: u64,
    /// Database selected after that byte.
    pub db: u32,
}

/// One replicated command (never `PING`, `REPLCONF` or `SELECT`: those are consumed by the
/// session, their bytes counted in the offsets).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Command {
    /// The database it applies to.
    pub db: u32,
    /// Name and arguments, as sent.
    pub args: Vec<Bytes>,
    /// Replication offset of its last byte: resuming with `PSYNC <replid> <end_offset+1>`
    /// continues right after it.
    pub end_offset: u64,
    /// Number of bytes it took in the stream (so it started at `end_offset - wire_len + 1`).
    pub wire_len: u64,
}

impl Command {
    /// The command name (first argument), as sent.
    pub fn name(&self) -> &[u8] {
        self.args.first().map_or(&[], |a| a)
    }

    /// Whether the name equals `name`, ignoring ASCII case.
    pub fn is(&self, name: &str) -> bool {
        self.name().eq_ignore_ascii_case(name.as_bytes())
    }
}

/// Why a full resynchronisation is happening.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FullResyncReason {
    /// There was no position to resume from: the first sync.
    Initial,
    /// We asked for a partial resync from `requested` and the server refused (another
    /// replication history, or the offset left its backlog). Everything received before is
    /// superseded by the new RDB: the consumer must start over (e.g. flush its target).
    PartialRefused {
        /// The position we asked to resume from.
        requested: ResumePoint,
    },
    /// The link dropped during a full sync, before the RDB was complete: a new one restarts
    /// from scratch and the partial RDB received so far must be discarded.
    Interrupted,
}

/// How the RDB is transferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RdbTransfer {
    /// Disk-based: `$<len>`, the size known up front.
    Sized {
        /// Bytes to come.
        len: u64,
    },
    /// Diskless: `$EOF:<mark>`, the size known at the end.
    Diskless,
}

/// What the sans-IO [`Session`](crate::Session) reports, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// `+FULLRESYNC <replid> <offset>`: an RDB follows; the stream resumes after `offset`.
    FullResync {
        /// The server's replication id.
        replid: ReplId,
        /// Offset the stream continues from after the RDB.
        offset: u64,
        /// Why (as far as this session knows: [`FullResyncReason::Initial`] or
        /// [`FullResyncReason::PartialRefused`]).
        reason: FullResyncReason,
    },
    /// `+CONTINUE [<replid>]`: the stream resumes right after the requested offset.
    PartialResync {
        /// The replication id from now on.
        replid: ReplId,
        /// Offset of the last byte before the resumed stream.
        offset: u64,
        /// Whether the server announced a new replication id (failover, PSYNC2).
        replid_changed: bool,
    },
    /// The RDB payload starts.
    RdbStart(RdbTransfer),
    /// A piece of the RDB payload, in order.
    RdbChunk(Bytes),
    /// The RDB is complete (`len` bytes); the command stream follows.
    RdbEnd {
        /// Total payload size.
        len: u64,
    },
    /// A replicated command.
    Command(Command),
    /// The stream advanced without a user-visible command (`PING`, `REPLCONF`, `SELECT`, a
    /// bare newline): the new offset and database.
    Progress {
        /// Offset of the last byte consumed.
        offset: u64,
        /// Database selected now.
        db: u32,
    },
}

/// What a [`Replica`](crate::Replica) hands its consumer, in stream order.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A full sync starts: the RDB follows, then the stream. After a reason other than
    /// [`FullResyncReason::Initial`] everything received before is superseded.
    FullResync {
        /// The server's replication id.
        replid: ReplId,
        /// Offset the stream continues from after the RDB.
        offset: u64,
        /// Why.
        reason: FullResyncReason,
    },
    /// After a reconnect the server accepted `PSYNC`: the stream continues with no gap and
    /// no duplicate.
    PartialResync {
        /// The replication id from now on.
        replid: ReplId,
        /// Offset of the last byte before the resumed stream.
        offset: u64,
        /// Whether the server announced a new replication id.
        replid_changed: bool,
    },
    /// The RDB payload starts.
    RdbStart(RdbTransfer),
    /// A piece of the RDB payload, in order ([`RdbMode::Raw`](crate::RdbMode::Raw)).
    RdbChunk(Bytes),
    /// RDB events decoded from the payload received so far, in order (the default
    /// [`RdbMode::Decode`](crate::RdbMode::Decode)): keys come as `KeyStart`, value
    /// events, `KeyEnd`; the last batch ends with `Eof`.
    Rdb(Vec<rdb_parser::Event>),
    /// The RDB is complete.
    RdbEnd {
        /// Total payload size.
        len: u64,
    },
    /// A replicated command.
    Command(Command),
    /// The link failed; the replica reconnects after `retry_in` and resumes with `PSYNC`.
    Disconnected {
        /// What failed.
        error: Error,
        /// Consecutive failed attempts so far (1 for the first failure).
        attempt: u32,
        /// Delay before the next attempt.
        retry_in: Duration,
    },
}

/// How far behind the consumer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lag {
    /// Offset of the last byte the connection task has received and decoded.
    pub source_offset: u64,
    /// Offset of the last byte whose events the consumer has received.
    pub processed_offset: u64,
}

impl Lag {
    /// `source_offset - processed_offset`: bytes decoded but not yet consumed.
    pub fn bytes(&self) -> u64 {
        self.source_offset.saturating_sub(self.processed_offset)
    }
}
