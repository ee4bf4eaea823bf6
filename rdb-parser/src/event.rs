//! The events the decoder produces.

use std::fmt;

use bytes::Bytes;

use crate::opcode::{Family, RdbType, ValueKind};

/// A string as stored: raw bytes (zero-copy, split off the input) or an integer that the
/// server stored in its compact integer form.
///
/// Redis treats both as strings: an integer element is the decimal text of the number.
/// Keeping the integer avoids an allocation per element; [`Str::to_bytes`] gives the text.
#[derive(Clone, PartialEq)]
pub enum Str {
    /// Raw bytes.
    Bytes(Bytes),
    /// An integer-encoded string (its value is the decimal text).
    Int(i64),
}

impl Str {
    /// The string's bytes (allocates for integers).
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Str::Bytes(b) => b.clone(),
            Str::Int(i) => Bytes::from(i.to_string()),
        }
    }

    /// The string's bytes as a `Vec`.
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            Str::Bytes(b) => b.to_vec(),
            Str::Int(i) => i.to_string().into_bytes(),
        }
    }

    /// Calls `f` with the bytes, without allocating (integers are formatted on the stack).
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Str::Bytes(b) => f(b),
            Str::Int(i) => {
                let mut buf = [0u8; 20];
                let n = fmt_i64(*i, &mut buf);
                f(&buf[20 - n..])
            }
        }
    }

    /// The length in bytes of the string's text.
    pub fn len(&self) -> usize {
        match self {
            Str::Bytes(b) => b.len(),
            Str::Int(i) => {
                let mut buf = [0u8; 20];
                fmt_i64(*i, &mut buf)
            }
        }
    }

    /// `true` for the empty string.
    pub fn is_empty(&self) -> bool {
        matches!(self, Str::Bytes(b) if b.is_empty())
    }
}

impl Str {
    /// A borrowed view of the string.
    pub fn as_item(&self) -> Item<'_> {
        match self {
            Str::Bytes(b) => Item::Bytes(b),
            Str::Int(i) => Item::Int(*i),
        }
    }
}

/// A string as stored, borrowed from the decoder's input: the zero-copy form of [`Str`] that
/// [`crate::Visitor`] methods receive. It is valid only during the call; [`Item::to_str`]
/// copies it out.
#[derive(Clone, Copy, PartialEq)]
pub enum Item<'a> {
    /// Raw bytes.
    Bytes(&'a [u8]),
    /// An integer-encoded string (its value is the decimal text).
    Int(i64),
}

impl Item<'_> {
    /// An owned copy.
    pub fn to_str(&self) -> Str {
        match *self {
            Item::Bytes(b) => Str::Bytes(Bytes::copy_from_slice(b)),
            Item::Int(i) => Str::Int(i),
        }
    }

    /// The string's bytes as a `Vec` (integers as decimal text).
    pub fn to_vec(&self) -> Vec<u8> {
        self.with_bytes(<[u8]>::to_vec)
    }

    /// Calls `f` with the bytes, without allocating (integers are formatted on the stack).
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match *self {
            Item::Bytes(b) => f(b),
            Item::Int(i) => {
                let mut buf = [0u8; 20];
                let n = fmt_i64(i, &mut buf);
                f(&buf[20 - n..])
            }
        }
    }

    /// The length in bytes of the string's text.
    pub fn len(&self) -> usize {
        match *self {
            Item::Bytes(b) => b.len(),
            Item::Int(i) => {
                let mut buf = [0u8; 20];
                fmt_i64(i, &mut buf)
            }
        }
    }

    /// `true` for the empty string.
    pub fn is_empty(&self) -> bool {
        matches!(self, Item::Bytes(b) if b.is_empty())
    }

    /// The same string as a handle into `blob`, which must contain it (no copy).
    pub(crate) fn to_str_in(self, blob: &Bytes) -> Str {
        match self {
            Item::Bytes(b) => Str::Bytes(blob.slice_ref(b)),
            Item::Int(i) => Str::Int(i),
        }
    }
}

impl fmt::Debug for Item<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The same text as the owned form's.
        match *self {
            Item::Bytes(b) => write!(f, "{:?}", bytes::Bytes::copy_from_slice(b)),
            Item::Int(i) => write!(f, "{i}"),
        }
    }
}

/// Writes `i` right-aligned into `buf`, returns the number of bytes written.
fn fmt_i64(i: i64, buf: &mut [u8; 20]) -> usize {
    let mut n = i.unsigned_abs();
    let mut pos = 20;
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        // 20 digits max for u64; i64::MIN has 19 digits + sign = 20.
        pos -= 1;
        buf[pos] = b'-';
    }
    20 - pos
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Str::Bytes(b) => write!(f, "{:?}", b),
            Str::Int(i) => write!(f, "{i}"),
        }
    }
}

impl From<&'static str> for Str {
    fn from(s: &'static str) -> Str {
        Str::Bytes(Bytes::from_static(s.as_bytes()))
    }
}

impl From<Bytes> for Str {
    fn from(b: Bytes) -> Str {
        Str::Bytes(b)
    }
}

impl From<i64> for Str {
    fn from(i: i64) -> Str {
        Str::Int(i)
    }
}

/// The stream header (its magic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// `REDIS` or `VALKEY` magic.
    pub family: Family,
    /// The RDB version number of the magic.
    pub version: u32,
}

impl Header {
    /// Whether this decoder knows every type this version defines (newer versions are
    /// decoded too, failing only on an unknown type byte).
    pub fn is_known_version(&self) -> bool {
        match self.family {
            Family::Redis => (1..=13).contains(&self.version),
            Family::Valkey => self.version == 80,
        }
    }
}

/// An `AUX` field (opcode 250): `redis-ver`, `ctime`, `used-mem`, `repl-id`, `lua` scripts,
/// KeyDB's per-key `mvcc-tstamp`, ... Integer-encoded values are given as decimal text.
#[derive(Debug, Clone, PartialEq)]
pub struct Aux {
    /// The field name.
    pub key: Bytes,
    /// The field value.
    pub value: Bytes,
}

/// A module type name with its encoding version, decoded from a 64-bit module id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleType {
    /// The raw 64-bit id.
    pub id: u64,
    /// The 9-character type name (e.g. `ReJSON-RL`).
    pub name: String,
    /// The module's encoding version (10 bits).
    pub encver: u16,
}

/// Module auxiliary data (opcode 247), handed out raw.
#[derive(Debug, Clone, PartialEq)]
pub struct ModuleAux {
    /// The module type.
    pub module: ModuleType,
    /// When the module asked for it (before or after the keyspace).
    pub when: u64,
    /// The tagged values, raw, through the EOF tag included.
    pub raw: Bytes,
}

/// A function library (opcodes 245 and 246).
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    /// `true` for the Redis 7.0 RC format (246), which carried name, engine and description
    /// separately; `false` for `FUNCTION2` (245), which carries only the code.
    pub pre_ga: bool,
    /// The library name (RC format only).
    pub name: Option<Bytes>,
    /// The engine (RC format only).
    pub engine: Option<Bytes>,
    /// The description (RC format only).
    pub description: Option<Bytes>,
    /// The library code, as `FUNCTION LOAD` takes it (with the `#!lua name=...` shebang for
    /// `FUNCTION2`).
    pub code: Bytes,
}

/// Per-key metadata written before the type byte.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum KeyMeta {
    /// Redis 8.6 `KEY_META` (243): one module metadata class.
    Class {
        /// The 32-bit encoded class spec (name, version, flags).
        spec: u32,
        /// The class value's tagged module fields, raw, with the EOF tag.
        raw: Bytes,
    },
    /// Redis Enterprise opcode 107 (`RAM_LRU`): a length, kept as is.
    RamLru(u64),
}

/// The start of a key: everything known before its value.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyStart {
    /// The database (from the last `SELECTDB`, 0 before any).
    pub db: u32,
    /// The key.
    pub key: Bytes,
    /// The type byte as written.
    pub type_byte: u8,
    /// The serialized form.
    pub rdb_type: RdbType,
    /// Absolute expiry time in milliseconds since the epoch, if any (second-precision
    /// `EXPIRETIME` is converted).
    pub expire_at_ms: Option<i64>,
    /// LRU idle time in seconds (`IDLE` opcode), if any.
    pub lru_idle: Option<u64>,
    /// LFU frequency (`FREQ` opcode), if any.
    pub lfu_freq: Option<u8>,
    /// Per-key metadata written before the type (Redis 8.6 `KEY_META`).
    pub meta: Vec<KeyMeta>,
    /// For module values: the module type.
    pub module: Option<ModuleType>,
    /// For Redis 7.4+ hash types 24 and 25: the minimum field expiry stored before the value
    /// (informational; the per-field TTLs are given absolute).
    pub min_field_expire_ms: Option<u64>,
    /// Offset in the stream where the key's record starts: its first per-key prefix
    /// (`EXPIRETIME(_MS)`, `IDLE`, `FREQ`, `KEY_META`, `RAM_LRU`) written right before the
    /// type byte, or the type byte (0 in a DUMP payload). The record ends where the decoder
    /// stands ([`crate::RdbDecoder::offset`]) when it returns the key's [`Event::KeyEnd`].
    pub record_offset: u64,
}

impl KeyStart {
    /// The logical type.
    pub fn kind(&self) -> ValueKind {
        self.rdb_type.kind()
    }
}

/// A sorted set member and its score.
#[derive(Debug, Clone, PartialEq)]
pub struct ZSetEntry {
    /// The member.
    pub member: Str,
    /// The score (may be ±inf; NaN only from corrupt input).
    pub score: f64,
}

/// A hash field, its value, and its own TTL when the hash type carries field TTLs.
#[derive(Debug, Clone, PartialEq)]
pub struct HashEntry {
    /// The field.
    pub field: Str,
    /// The value.
    pub value: Str,
    /// Absolute expiry of this field in milliseconds since the epoch.
    pub expire_at_ms: Option<u64>,
}

/// A stream entry id `ms-seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// One stream entry (deleted entries are not reported).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEntry {
    /// The id.
    pub id: StreamId,
    /// Field/value pairs in order.
    pub fields: Vec<(Str, Str)>,
}

/// Stream metadata, written after the entries.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamMeta {
    /// Number of live entries (`XLEN`).
    pub length: u64,
    /// The last generated id.
    pub last_id: StreamId,
    /// The first live id (v2+).
    pub first_id: Option<StreamId>,
    /// The largest deleted id (v2+).
    pub max_deleted_id: Option<StreamId>,
    /// Count of all entries ever added (v2+).
    pub entries_added: Option<u64>,
}

/// A consumer group header; its pending entries and consumers follow.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamGroup {
    /// Group name.
    pub name: Bytes,
    /// Last delivered id.
    pub last_id: StreamId,
    /// `ENTRIESREAD` (v2+; `None` when unknown).
    pub entries_read: Option<u64>,
}

/// One entry of a group's pending entries list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingEntry {
    /// The entry id.
    pub id: StreamId,
    /// Last delivery time, ms since the epoch.
    pub delivery_time_ms: u64,
    /// Number of deliveries.
    pub delivery_count: u64,
}

/// A consumer of the current group; its pending ids follow.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamConsumer {
    /// Consumer name.
    pub name: Bytes,
    /// Last time the consumer was seen (ms).
    pub seen_time_ms: u64,
    /// Last successful interaction (v3+).
    pub active_time_ms: Option<u64>,
}

/// How the checksum at the end of the stream was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// Stored and equal to the computed CRC-64.
    Verified(u64),
    /// Stored as 0: the writer had `rdbchecksum no`.
    Disabled,
    /// RDB version < 5 has no checksum.
    Absent,
    /// Read but not verified (see [`crate::Options::verify_checksum`]).
    Unverified(u64),
}

/// The end of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eof {
    /// The checksum status.
    pub checksum: Checksum,
    /// Total bytes of the stream, checksum included.
    pub len: u64,
}

/// One step of a decoded RDB stream.
///
/// Order: [`Event::Header`], then any of the global events ([`Event::Aux`],
/// [`Event::SelectDb`], [`Event::ResizeDb`], [`Event::SlotInfo`], [`Event::ModuleAux`],
/// [`Event::Function`]) and keys, then [`Event::Eof`].
///
/// A key is [`Event::KeyStart`], its value events, then [`Event::KeyEnd`]. The value events
/// depend on [`KeyStart::kind`]:
/// - string: one or more [`Event::String`] (a large raw string comes in pieces of
///   [`crate::Options::string_piece`] bytes; concatenate them);
/// - list: [`Event::ListItems`] chunks, set: [`Event::SetMembers`], sorted set:
///   [`Event::ZSetEntries`], hash: [`Event::HashEntries`] (with field TTLs where the type has
///   them). Each chunk holds at most [`crate::Options::max_chunk_items`] items and stops
///   growing once it holds [`crate::Options::max_chunk_bytes`] bytes; an empty collection has
///   no chunk;
/// - stream: [`Event::StreamEntries`] chunks, [`Event::StreamMeta`], then per group
///   [`Event::StreamGroup`], its [`Event::StreamPending`] chunks, and per consumer
///   [`Event::StreamConsumer`] with its [`Event::StreamConsumerPending`] chunks, then (v4)
///   [`Event::StreamIdmp`];
/// - module: [`Event::ModuleData`] chunks of raw tagged values ([`KeyStart::module`] names the
///   type).
///
/// With [`crate::Options::raw_values`], [`Event::RawValue`] chunks are interleaved with the value
/// events of each key; concatenated they are the exact serialized value (type byte + value),
/// ready for [`crate::dump::build_payload`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The magic.
    Header(Header),
    /// An `AUX` field.
    Aux(Aux),
    /// `SELECTDB`: the following keys belong to this database.
    SelectDb {
        /// The database number.
        db: u32,
    },
    /// `RESIZEDB`: size hints for the current database.
    ResizeDb {
        /// Number of keys.
        db_size: u64,
        /// Number of keys with an expiry.
        expires_size: u64,
    },
    /// `SLOT_INFO` (Redis 7.4+ cluster): size hints for a slot.
    SlotInfo {
        /// The slot.
        slot: u64,
        /// Keys in it.
        slot_size: u64,
        /// Keys with an expiry in it.
        expires_slot_size: u64,
    },
    /// Module auxiliary data.
    ModuleAux(ModuleAux),
    /// A function library.
    Function(Function),
    /// Valkey 9 `SLOT_IMPORT` (243 in `VALKEY` streams): an atomic slot migration in progress.
    SlotImport {
        /// The import job's name.
        job_name: Bytes,
        /// The slot ranges being imported, inclusive.
        ranges: Vec<(u64, u64)>,
    },
    /// A key begins.
    KeyStart(KeyStart),
    /// (A piece of) a string value.
    String(Str),
    /// List elements, in order.
    ListItems(Vec<Str>),
    /// Set members.
    SetMembers(Vec<Str>),
    /// Sorted set members with scores, in the order stored.
    ZSetEntries(Vec<ZSetEntry>),
    /// Hash fields.
    HashEntries(Vec<HashEntry>),
    /// Stream entries, in id order.
    StreamEntries(Vec<StreamEntry>),
    /// Stream metadata.
    StreamMeta(StreamMeta),
    /// A consumer group begins.
    StreamGroup(StreamGroup),
    /// Pending entries of the current group.
    StreamPending(Vec<PendingEntry>),
    /// A consumer of the current group.
    StreamConsumer(StreamConsumer),
    /// Pending ids of the current consumer.
    StreamConsumerPending(Vec<StreamId>),
    /// Stream v4 idempotent-producer state, raw (bytes after the groups).
    StreamIdmp(Bytes),
    /// Raw tagged module value data (after the module id, through the EOF tag).
    ModuleData(Bytes),
    /// A chunk of the raw serialized value (only with [`crate::Options::raw_values`]).
    RawValue(Bytes),
    /// The current key's value is complete.
    KeyEnd,
    /// The end of the stream, after the checksum was checked.
    Eof(Eof),
}
