//! Opcodes and value type bytes, and the tables that map them by magic family and version.

/// Which server family wrote the stream, from its magic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// `REDIS%04d`: Redis, Valkey up to 8.x (which writes `REDIS0011`), KeyDB, Dragonfly.
    Redis,
    /// `VALKEY%03d`: Valkey 9 and later.
    Valkey,
}

/// Opcodes (bytes 243-255 in the position of a type byte, plus Redis Enterprise's 107).
pub(crate) mod op {
    pub(crate) const KEY_META_OR_SLOT_IMPORT: u8 = 243;
    pub(crate) const SLOT_INFO: u8 = 244;
    pub(crate) const FUNCTION2: u8 = 245;
    pub(crate) const FUNCTION_PRE_GA: u8 = 246;
    pub(crate) const MODULE_AUX: u8 = 247;
    pub(crate) const IDLE: u8 = 248;
    pub(crate) const FREQ: u8 = 249;
    pub(crate) const AUX: u8 = 250;
    pub(crate) const RESIZEDB: u8 = 251;
    pub(crate) const EXPIRETIME_MS: u8 = 252;
    pub(crate) const EXPIRETIME: u8 = 253;
    pub(crate) const SELECTDB: u8 = 254;
    pub(crate) const EOF: u8 = 255;
    /// Redis Enterprise's `RAM_LRU` (one length, before the key).
    pub(crate) const RAM_LRU: u8 = 107;
}

/// The serialized form of a value, from its type byte (chosen by magic family and version).
///
/// The name says both the logical type and the on-disk encoding; [`RdbType::kind`] gives the
/// logical type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum RdbType {
    /// 0: a string (raw, integer or LZF).
    String,
    /// 1: a linked list of strings.
    List,
    /// 2: a hash-table set of strings.
    Set,
    /// 3: a skiplist sorted set with ASCII scores.
    ZSet,
    /// 4: a hash table of field/value strings.
    Hash,
    /// 5: a skiplist sorted set with binary scores.
    ZSet2,
    /// 6: a module value of Redis 4.0 RC (cannot be skipped: an error).
    ModulePreGa,
    /// 7: a module value with tagged fields.
    Module2,
    /// 9: a zipmap hash (Redis < 2.6).
    HashZipmap,
    /// 10: a ziplist list.
    ListZiplist,
    /// 11: an intset set.
    SetIntset,
    /// 12: a ziplist sorted set.
    ZSetZiplist,
    /// 13: a ziplist hash.
    HashZiplist,
    /// 14: a quicklist of ziplists.
    ListQuicklist,
    /// 15: a stream (v1).
    StreamListpacks,
    /// 16: a listpack hash.
    HashListpack,
    /// 17: a listpack sorted set.
    ZSetListpack,
    /// 18: a quicklist of listpacks and plain nodes.
    ListQuicklist2,
    /// 19: a stream (v2: first id, max deleted id, entries added, entries read).
    StreamListpacks2,
    /// 20: a listpack set.
    SetListpack,
    /// 21: a stream (v3: consumer active time).
    StreamListpacks3,
    /// Redis 22: a hash table hash with absolute field TTLs (7.4 RC).
    HashMetadataPreGa,
    /// Redis 23: a listpack hash with field TTLs (7.4 RC).
    HashListpackExPreGa,
    /// Redis 24: a hash table hash with field TTLs relative to a minimum.
    HashMetadata,
    /// Redis 25: a listpack hash with field TTLs.
    HashListpackEx,
    /// Redis 26: a stream (v4: idempotent producer state).
    StreamListpacks4,
    /// Valkey 22: a hash table hash with per-field expiry (Valkey 9).
    Hash2,
}

/// The logical type of a value, as `TYPE key` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ValueKind {
    /// `string`.
    String,
    /// `list`.
    List,
    /// `set`.
    Set,
    /// `zset`.
    ZSet,
    /// `hash`.
    Hash,
    /// `stream`.
    Stream,
    /// A module type.
    Module,
}

impl ValueKind {
    /// The name `TYPE` answers (`"none"`-free; modules answer their type name on a server).
    pub fn as_str(self) -> &'static str {
        match self {
            ValueKind::String => "string",
            ValueKind::List => "list",
            ValueKind::Set => "set",
            ValueKind::ZSet => "zset",
            ValueKind::Hash => "hash",
            ValueKind::Stream => "stream",
            ValueKind::Module => "module",
        }
    }
}

impl RdbType {
    /// Maps a type byte, for streams written by `family` at `version`.
    ///
    /// Type 22 is Redis's `HASH_METADATA_PRE_GA` (RDB 12+) but Valkey's `HASH_2`; 23-25 exist
    /// only in Redis RDB 12+, 26 in Redis RDB 13+. Types 0-21 are shared and accepted at any
    /// version (some writers, e.g. Dragonfly, put newer encodings under an older magic).
    pub fn from_byte(family: Family, version: u32, b: u8) -> Option<RdbType> {
        let redis = |min: u32| family == Family::Redis && version >= min;
        Some(match b {
            0 => RdbType::String,
            1 => RdbType::List,
            2 => RdbType::Set,
            3 => RdbType::ZSet,
            4 => RdbType::Hash,
            5 => RdbType::ZSet2,
            6 => RdbType::ModulePreGa,
            7 => RdbType::Module2,
            9 => RdbType::HashZipmap,
            10 => RdbType::ListZiplist,
            11 => RdbType::SetIntset,
            12 => RdbType::ZSetZiplist,
            13 => RdbType::HashZiplist,
            14 => RdbType::ListQuicklist,
            15 => RdbType::StreamListpacks,
            16 => RdbType::HashListpack,
            17 => RdbType::ZSetListpack,
            18 => RdbType::ListQuicklist2,
            19 => RdbType::StreamListpacks2,
            20 => RdbType::SetListpack,
            21 => RdbType::StreamListpacks3,
            22 if family == Family::Valkey => RdbType::Hash2,
            22 if redis(12) => RdbType::HashMetadataPreGa,
            23 if redis(12) => RdbType::HashListpackExPreGa,
            24 if redis(12) => RdbType::HashMetadata,
            25 if redis(12) => RdbType::HashListpackEx,
            26 if redis(13) => RdbType::StreamListpacks4,
            _ => return None,
        })
    }

    /// The type byte.
    pub fn byte(self, family: Family) -> u8 {
        let _ = family;
        match self {
            RdbType::String => 0,
            RdbType::List => 1,
            RdbType::Set => 2,
            RdbType::ZSet => 3,
            RdbType::Hash => 4,
            RdbType::ZSet2 => 5,
            RdbType::ModulePreGa => 6,
            RdbType::Module2 => 7,
            RdbType::HashZipmap => 9,
            RdbType::ListZiplist => 10,
            RdbType::SetIntset => 11,
            RdbType::ZSetZiplist => 12,
            RdbType::HashZiplist => 13,
            RdbType::ListQuicklist => 14,
            RdbType::StreamListpacks => 15,
            RdbType::HashListpack => 16,
            RdbType::ZSetListpack => 17,
            RdbType::ListQuicklist2 => 18,
            RdbType::StreamListpacks2 => 19,
            RdbType::SetListpack => 20,
            RdbType::StreamListpacks3 => 21,
            RdbType::HashMetadataPreGa | RdbType::Hash2 => 22,
            RdbType::HashListpackExPreGa => 23,
            RdbType::HashMetadata => 24,
            RdbType::HashListpackEx => 25,
            RdbType::StreamListpacks4 => 26,
        }
    }

    /// The logical type.
    pub fn kind(self) -> ValueKind {
        use RdbType::*;
        match self {
            String => ValueKind::String,
            List | ListZiplist | ListQuicklist | ListQuicklist2 => ValueKind::List,
            Set | SetIntset | SetListpack => ValueKind::Set,
            ZSet | ZSet2 | ZSetZiplist | ZSetListpack => ValueKind::ZSet,
            Hash | HashZipmap | HashZiplist | HashListpack | HashMetadataPreGa
            | HashListpackExPreGa | HashMetadata | HashListpackEx | Hash2 => ValueKind::Hash,
            StreamListpacks | StreamListpacks2 | StreamListpacks3 | StreamListpacks4 => {
                ValueKind::Stream
            }
            ModulePreGa | Module2 => ValueKind::Module,
        }
    }

    /// The oldest RDB version that can hold this type (for choosing a DUMP footer version).
    pub fn min_rdb_version(self) -> u32 {
        use RdbType::*;
        match self {
            String | List | Set | ZSet | Hash => 1,
            HashZipmap | ListZiplist | SetIntset | ZSetZiplist => 2,
            HashZiplist => 4,
            ListQuicklist => 7,
            ZSet2 | ModulePreGa | Module2 => 8,
            StreamListpacks => 9,
            HashListpack | ZSetListpack | ListQuicklist2 | StreamListpacks2 => 10,
            SetListpack | StreamListpacks3 => 11,
            HashMetadataPreGa | HashListpackExPreGa | HashMetadata | HashListpackEx => 12,
            StreamListpacks4 => 13,
            Hash2 => 80,
        }
    }
}
