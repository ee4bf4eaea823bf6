//! Streaming decoder for RDB files and DUMP payloads written by Redis (RDB 1-13) and Valkey
//! (including `VALKEY080`).
//!
//! The core is a sans-IO state machine, [`RdbDecoder`]: feed it bytes, take [`Event`]s. It
//! never needs the whole file: large collections come out in bounded chunks, large strings in
//! pieces, and it buffers at most one bounded unit (see [`Options`]). Two thin adapters drive
//! it: [`RdbReader`] pulls from any [`std::io::Read`], and [`RdbCodec`] (feature `codec`, on by
//! default) is a [`tokio_util::codec::Decoder`] for the replication stream.
//!
//! ```
//! use rdb_parser::{Event, RdbReader, Options, Str};
//!
//! // RDB 3: magic, SELECTDB 0, a string key "k" = "v", EOF (no checksum before RDB 5).
//! let file: &[u8] = b"REDIS0003\xfe\x00\x00\x01k\x01v\xff";
//! let mut strings = Vec::new();
//! for event in RdbReader::new(file, Options::default()) {
//!     match event? {
//!         Event::KeyStart(k) => assert_eq!(&k.key[..], b"k"),
//!         Event::String(s) => strings.push(s),
//!         _ => {}
//!     }
//! }
//! assert_eq!(strings, vec![Str::from("v")]);
//! # Ok::<(), rdb_parser::Error>(())
//! ```
//!
//! # Design
//! - Type tables are chosen by magic *and* version: type 22 is Redis's `HASH_METADATA_PRE_GA`
//!   but Valkey's `HASH_2`; opcode 243 is Redis's `KEY_META` but Valkey's `SLOT_IMPORT`.
//!   Future versions are decoded as far as their types are known; an unknown type is an
//!   [`Error::UnknownType`] naming the type byte, key and offset.
//! - Zero-copy: strings are [`bytes::Bytes`] slices of the input; integer-encoded elements
//!   stay integers ([`Str::Int`]).
//! - CRC-64/Jones is computed over every consumed byte with `crc-fast` (SIMD; `crc64fast`
//!   computes a different CRC) and checked at the end; a stored 0 means disabled.
//! - LZF: a small safe decompressor ([`encoding::lzf`]) rather than the `lzf` crate (a C
//!   binding): see its docs for the measurement.
//! - [`dump`] parses DUMP payloads into the same events and builds RESTORE payloads from the
//!   raw value bytes ([`Options::raw_values`]).

#[cfg(feature = "codec")]
mod codec;
mod decoder;
pub mod dump;
pub mod encoding;
mod error;
mod event;
mod opcode;
mod peek;
mod read;
mod types;

#[cfg(feature = "codec")]
pub use codec::RdbCodec;
pub use decoder::{Options, RdbDecoder};
pub use error::{Error, KeyName, ERROR_KEY_MAX};
pub use event::{
    Aux, Checksum, Eof, Event, Function, HashEntry, Header, KeyMeta, KeyStart, ModuleAux,
    ModuleType, PendingEntry, Str, StreamConsumer, StreamEntry, StreamGroup, StreamId, StreamMeta,
    ZSetEntry,
};
pub use opcode::{Family, RdbType, ValueKind};
pub use read::{decode_all, RdbReader};
pub use types::module::module_type;
