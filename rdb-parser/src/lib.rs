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
//! # Events
//! See [`Event`] for the order. In short: `Header`, global events (`Aux`, `SelectDb`,
//! `ResizeDb`, `SlotInfo`, `ModuleAux`, `Function`, `SlotImport`), keys as `KeyStart` /
//! value chunks / `KeyEnd`, then `Eof` with the checksum status. [`KeyStart`] carries the db,
//! the key, the type byte and [`RdbType`], the absolute expiry in ms, LRU idle / LFU freq and
//! per-key metadata (Redis 8.6 `KEY_META`); KeyDB's per-key `AUX` fields (`mvcc-tstamp`, ...)
//! come as [`Event::Aux`] where they are written, just before their key.
//!
//! # Memory bounds
//! The decoder keeps at most one *unit* beyond the caller's buffer: a length, a key, one
//! collection element, one compact blob (ziplist, listpack, intset, zipmap: a few KiB with
//! default server settings, one quicklist node at a time), one LZF string, one AUX value or
//! function library, one tagged module field, one stream node. Each is bounded by
//! [`Options::max_buffered`] (default 512 MiB, Redis's `proto-max-bulk-len`); a larger one is
//! [`Error::LimitExceeded`], never an allocation. Raw strings of any size stream through in
//! pieces of [`Options::string_piece`]; collection events hold at most
//! [`Options::max_chunk_items`] items (and stop growing at [`Options::max_chunk_bytes`]).
//! No capacity is ever taken from a length in the input: vectors grow with the bytes actually
//! present, and an LZF raw length is checked against what the compressed bytes can produce.
//! A 1 GiB list of small elements decodes in a few MiB.
//!
//! # Streaming and resumption
//! Each step peeks one complete unit and consumes it only when complete; an incomplete unit
//! costs a re-check of its header, never a rescan of data already decoded, so feeding one byte
//! at a time stays linear and produces exactly the same events as feeding everything at once
//! (tested on every corpus file and on real servers' dumps).
//!
//! # Raw values and DUMP payloads
//! With [`Options::raw_values`], each key's value is also delivered as [`Event::RawValue`]
//! chunks (interleaved with its value events, at most `max_chunk_bytes` each): concatenated,
//! they are the exact bytes of the value in the file, type byte first, without the key or the
//! per-key opcodes. [`dump::build_payload_chunks`] turns them into a `RESTORE` payload with the
//! footer version you choose; [`dump::decode`] parses `DUMP` output into the same events.
//! For raw pass-through, a [`Visitor`] answers [`Visitor::wants_items`] `false` (or
//! [`Visitor::wants`] [`Want::Nothing`]) for a key whose raw bytes are all it needs (a
//! `RESTORE`): the value is then only measured (its lengths walked, compact blobs skipped as
//! one string), not decoded. [`Want::Count`] asks for the element count alone, read from the
//! headers where they tell ([`stats::Stats`] does).
//!
//! # Structure
//! One cursor type reads the input for every path (the resumable state machine, the one-pass
//! fast path, DUMP payloads); the shared input state (options, offset, CRC, raw capture,
//! chunking) lives in its own module, which both the value decoders and the fast path use
//! without depending on the decoder; the low-level encodings (lengths, LZF, listpack,
//! ziplist, intset, zipmap, doubles) are private.
//!
//! # Versions and types
//! Type tables are chosen by magic *and* version: type 22 is Redis's `HASH_METADATA_PRE_GA`
//! but Valkey's `HASH_2`; opcode 243 is Redis's `KEY_META` but Valkey's `SLOT_IMPORT`. Future
//! versions are decoded as far as their types are known ([`Header::is_known_version`]); an
//! unknown type (Dragonfly's 30-37, a future type, or Redis 4.0 RC module values of type 6,
//! which cannot be skipped) is an [`Error::UnknownType`] naming the type byte, the key and the
//! offset. Supported: RDB 1-13 and `VALKEY080`, types 0-5, 7 and 9-26 (Valkey 22), every opcode
//! including Redis Enterprise's 107 (`RAM_LRU`). Not decoded: stream v4 producer entries
//! (a non-zero producer count is an error), RDB 14+ types 27+ (no files exist yet).
//!
//! # Zero-copy reading: [`Visitor`]
//! The fastest way to read a file: implement [`Visitor`] and call [`RdbReader::visit`],
//! [`RdbDecoder::decode_into`] or [`visit_all`]. Each key, element, score, hash field and
//! stream entry is one call with its strings borrowed from the input ([`Item`]): nothing is
//! allocated or reference-counted per item. A key that lies whole in the buffer is decoded in
//! one pass over a contiguous slice (its headers are walked to find its end, then its value is
//! decoded and visited); a key cut by the end of the buffer, or in an encoding the fast path
//! leaves to the state machine (hash field TTLs, zipmaps, modules, stream v4, compressed or
//! integer keys), is decoded by the resumable decoder and its events handed to the visitor.
//! Both paths give the same calls and the same errors, whatever the input split (tested on
//! every corpus file and the servers' dumps, and fuzzed).
//!
//! Every visitor method returns [`std::ops::ControlFlow`]: a visitor that fails, or that must
//! wait (an async consumer flushing its output), breaks, and the decoder returns the stop to
//! its caller and resumes where it stopped on the next call (see [Stopping](Visitor#stopping)).
//! [`KeyRef::record_offset`] and [`Visitor::key_end`]'s `record_len` locate each key's record
//! (prefixes, type byte, key and value) in the stream.
//!
//! # Performance
//! The [`Visitor`] path is the fastest, about 3× the `rdb` crate on a mixed 300 MB file
//! (streams and modules decoded, CRC verified); the owned [`Event`] iterator is about 4×
//! slower than the visitor (a `Bytes` handle and a vector slot per item, an event through a
//! queue per chunk). Measurements, with the machine and method, are in the crate's README.
//!
//! # Dependencies
//! - CRC-64/Jones is computed over every consumed byte with `crc-fast`
//!   (`CrcAlgorithm::Crc64Redis`, SIMD); `crc64fast` computes CRC-64/XZ, a different CRC.
//!   The check value `0xe9c6d914c4b8d9ca` is verified in the tests.
//! - LZF: a small safe decompressor of our own instead of the `lzf` crate, which allocates the
//!   caller-given output length up front (an untrusted length from the file) and uses
//!   `unsafe`; ours refuses a raw length the input cannot produce before allocating, has no
//!   `unsafe`, and measured no slower (README).
//! - `bytes` for zero-copy slices, `thiserror` for the error enum, `tokio-util` (only its
//!   `codec` feature, behind our default `codec` feature) for [`RdbCodec`].

#[cfg(feature = "codec")]
mod codec;
mod cursor;
mod decoder;
pub mod dump;
mod encoding;
mod error;
mod event;
mod fast;
mod input;
mod opcode;
mod read;
pub mod stats;
mod types;
mod visit;

#[cfg(feature = "codec")]
pub use codec::RdbCodec;
pub use decoder::RdbDecoder;
pub use error::{Error, KeyName, ERROR_KEY_MAX};
pub use event::{
    Aux, Checksum, Eof, Event, Function, HashEntry, Header, Item, KeyMeta, KeyStart, ModuleAux,
    ModuleType, PendingEntry, Str, StreamConsumer, StreamEntry, StreamGroup, StreamId, StreamMeta,
    ZSetEntry,
};
pub use input::Options;
pub use opcode::{Family, RdbType, ValueKind};
pub use read::{decode_all, visit_all, RdbReader};
pub use types::module::module_type;
pub use visit::{KeyRef, Visitor, Want};
