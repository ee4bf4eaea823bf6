//! What happened to each key and function, and the counts.

use std::fmt;

use bytes::Bytes;
use rdb_parser::ValueKind;

/// What [`super::Rewriter::push`] returns when a key or a function library is done (named
/// `Done` so that it is not confused with the writer's [`crate::Outcome`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Done {
    /// A key ended (at its `KeyEnd`).
    Key(KeyReport),
    /// A function library was handled.
    Function(FunctionReport),
}

/// One key's result.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyReport {
    /// The source database.
    pub db: u32,
    /// The key.
    pub key: Bytes,
    /// Its type.
    pub kind: ValueKind,
    /// Whether it was written.
    pub status: KeyStatus,
    /// Commands emitted for it.
    pub commands: u64,
    /// What the target cannot hold exactly (empty when the key was recreated exactly).
    pub losses: Vec<Loss>,
    /// Hash fields skipped because their own TTL had passed.
    pub expired_fields: u64,
}

impl KeyReport {
    /// `true` when the key was written and nothing was lost.
    pub fn is_exact(&self) -> bool {
        self.status == KeyStatus::Written && self.losses.is_empty()
    }
}

/// Whether a key was written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyStatus {
    /// Its commands were emitted.
    Written,
    /// Skipped: its TTL passed before "now".
    Expired {
        /// The key's expiry (Unix ms).
        expire_at_ms: i64,
    },
    /// Nothing to write: an empty collection, or a hash whose fields all expired.
    Empty,
    /// Not expressible as commands (a module value): write it with `RESTORE` of the raw
    /// payload (decode with `rdb_parser::Options::raw_values`).
    NeedsRestore {
        /// The module type name, when known.
        module: Option<String>,
    },
    /// The target cannot hold this value at all.
    Unsupported {
        /// Why.
        reason: &'static str,
    },
}

impl fmt::Display for KeyStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyStatus::Written => f.write_str("written"),
            KeyStatus::Expired { expire_at_ms } => write!(f, "expired at {expire_at_ms} ms"),
            KeyStatus::Empty => f.write_str("empty, nothing to write"),
            KeyStatus::NeedsRestore { module: Some(m) } => {
                write!(f, "module value ({m}) needs RESTORE")
            }
            KeyStatus::NeedsRestore { module: None } => f.write_str("needs RESTORE"),
            KeyStatus::Unsupported { reason } => write!(f, "unsupported by the target: {reason}"),
        }
    }
}

/// Something of a written key that the target could not be given exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Loss {
    /// Hash fields written without their TTL: the target has no `HPEXPIREAT` (Redis < 7.4,
    /// Valkey < 9).
    FieldTtls {
        /// How many fields.
        fields: u64,
    },
    /// Sorted set members dropped because their score is NaN (corrupt input).
    NanScores {
        /// How many members.
        members: u64,
    },
    /// Consumers without pending entries that could not be created (target < 6.2).
    IdleConsumers {
        /// How many consumers.
        consumers: u64,
    },
    /// The stream was too large to buffer (see
    /// [`super::RewriteOptions::stream_buffer_bytes`]): pending entries whose stream entry
    /// was deleted are dropped by the server; this many pending entries were written unchecked.
    PendingUnverified {
        /// Pending entries that may be affected.
        entries: u64,
    },
    /// A pending entry whose id is beyond the stream's last id (inconsistent input), dropped.
    PendingOutOfRange {
        /// How many.
        entries: u64,
    },
    /// Redis 8.6 stream idempotent-producer state, which no command recreates.
    StreamIdmp,
}

impl Loss {
    /// Merges a loss of the same kind into `self` (adding counts).
    pub(crate) fn merge(&mut self, other: &Loss) -> bool {
        match (self, other) {
            (Loss::FieldTtls { fields: a }, Loss::FieldTtls { fields: b }) => *a += b,
            (Loss::NanScores { members: a }, Loss::NanScores { members: b }) => *a += b,
            (Loss::IdleConsumers { consumers: a }, Loss::IdleConsumers { consumers: b }) => *a += b,
            (Loss::PendingUnverified { entries: a }, Loss::PendingUnverified { entries: b })
            | (Loss::PendingOutOfRange { entries: a }, Loss::PendingOutOfRange { entries: b }) => {
                *a += b
            }
            (Loss::StreamIdmp, Loss::StreamIdmp) => {}
            _ => return false,
        }
        true
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loss::FieldTtls { fields } => write!(
                f,
                "{fields} hash field TTL(s) dropped (target has no HPEXPIREAT)"
            ),
            Loss::NanScores { members } => {
                write!(f, "{members} member(s) with a NaN score dropped")
            }
            Loss::IdleConsumers { consumers } => write!(
                f,
                "{consumers} consumer(s) without pending entries not created (target < 6.2)"
            ),
            Loss::PendingUnverified { entries } => write!(
                f,
                "stream too large to buffer: {entries} pending entr(y/ies) written unchecked \
                 (those of deleted entries are dropped)"
            ),
            Loss::PendingOutOfRange { entries } => {
                write!(
                    f,
                    "{entries} pending entr(y/ies) beyond the last id dropped"
                )
            }
            Loss::StreamIdmp => f.write_str("stream idempotent-producer state not recreated"),
        }
    }
}

/// A function library's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionReport {
    /// The library name (from the `#!engine name=...` line, or the RC format's name).
    pub name: Option<Bytes>,
    /// Whether it was loaded.
    pub status: FunctionStatus,
}

/// Whether a function library was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FunctionStatus {
    /// `FUNCTION LOAD` emitted.
    Loaded,
    /// The target has no functions (before 7.0).
    Unsupported,
}

/// Counts over everything pushed so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RewriteStats {
    /// Keys written.
    pub keys_written: u64,
    /// Written keys with at least one [`Loss`].
    pub keys_lossy: u64,
    /// Keys skipped because their TTL passed.
    pub keys_expired: u64,
    /// Keys with nothing to write.
    pub keys_empty: u64,
    /// Keys that need `RESTORE` (module values).
    pub keys_need_restore: u64,
    /// Keys the target cannot hold.
    pub keys_unsupported: u64,
    /// Hash fields skipped because their TTL passed.
    pub fields_expired: u64,
    /// Commands emitted.
    pub commands: u64,
    /// Function libraries loaded.
    pub functions_loaded: u64,
    /// Function libraries the target cannot hold.
    pub functions_unsupported: u64,
}

impl RewriteStats {
    pub(crate) fn count_key(&mut self, r: &KeyReport) {
        self.commands += r.commands;
        self.fields_expired += r.expired_fields;
        match r.status {
            KeyStatus::Written => {
                self.keys_written += 1;
                self.keys_lossy += u64::from(!r.losses.is_empty());
            }
            KeyStatus::Expired { .. } => self.keys_expired += 1,
            KeyStatus::Empty => self.keys_empty += 1,
            KeyStatus::NeedsRestore { .. } => self.keys_need_restore += 1,
            KeyStatus::Unsupported { .. } => self.keys_unsupported += 1,
        }
    }

    pub(crate) fn count_function(&mut self, r: &FunctionReport) {
        match r.status {
            FunctionStatus::Loaded => {
                self.functions_loaded += 1;
                self.commands += 1;
            }
            FunctionStatus::Unsupported => self.functions_unsupported += 1,
        }
    }
}
