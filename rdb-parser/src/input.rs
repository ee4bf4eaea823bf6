//! The decoder's shared state: its options, the input (the consumed-bytes offset, the CRC
//! over every consumed byte, the output queue of events, raw-value capture) and the
//! chunking of collections into events. The resumable state machine (`decoder`),
//! the value decoders (`types`) and the one-pass path (`fast`) all build on this module, and
//! it on none of them.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};
use crc_fast::{CrcAlgorithm, Digest};

use crate::cursor::{Cursor, PResult};
use crate::encoding::length::check_limit;
use crate::encoding::length::StrRef;
use crate::error::Error;
use crate::event::{Event, KeyMeta, Str};
use crate::opcode::Family;

/// Decoder limits and switches.
///
/// Memory bound: the decoder buffers at most one *unit* beyond what the caller fed: a length,
/// a key, a collection element, an AUX value, a compact blob (ziplist/listpack/intset/zipmap,
/// which are at most a few KiB each with default server configs), or an LZF string. Each is
/// bounded by [`Options::max_buffered`]; raw (uncompressed) string values of any size stream
/// through in pieces of [`Options::string_piece`] bytes. Events hold at most
/// [`Options::max_chunk_items`] items / about [`Options::max_chunk_bytes`] bytes.
#[derive(Debug, Clone)]
pub struct Options {
    /// Most items per collection chunk event (default 1024).
    pub max_chunk_items: usize,
    /// A chunk is emitted once its items reach this many bytes (default 256 KiB).
    pub max_chunk_bytes: usize,
    /// Raw string values longer than this come in pieces of this size (default 256 KiB).
    pub string_piece: usize,
    /// Largest unit buffered whole: a key, an element, a blob, an LZF string (compressed and
    /// decompressed), an AUX value, a function library (default 512 MiB, Redis's
    /// `proto-max-bulk-len`).
    pub max_buffered: usize,
    /// Emit [`Event::RawValue`] chunks with the exact serialized value (default off).
    pub raw_values: bool,
    /// Verify the CRC-64 trailer (default on).
    pub verify_checksum: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_chunk_items: 1024,
            max_chunk_bytes: 256 * 1024,
            string_piece: 256 * 1024,
            max_buffered: 512 * 1024 * 1024,
            raw_values: false,
            verify_checksum: true,
        }
    }
}

impl Options {
    /// Sets [`Options::raw_values`].
    pub fn raw_values(mut self, on: bool) -> Options {
        self.raw_values = on;
        self
    }

    /// Sets [`Options::verify_checksum`].
    pub fn verify_checksum(mut self, on: bool) -> Options {
        self.verify_checksum = on;
        self
    }

    /// Sets [`Options::max_chunk_items`] (at least 1).
    pub fn max_chunk_items(mut self, n: usize) -> Options {
        self.max_chunk_items = n.max(1);
        self
    }

    /// Sets [`Options::max_chunk_bytes`].
    pub fn max_chunk_bytes(mut self, n: usize) -> Options {
        self.max_chunk_bytes = n;
        self
    }

    /// Sets [`Options::string_piece`] (at least 1).
    pub fn string_piece(mut self, n: usize) -> Options {
        self.string_piece = n.max(1);
        self
    }

    /// Sets [`Options::max_buffered`].
    pub fn max_buffered(mut self, n: usize) -> Options {
        self.max_buffered = n;
        self
    }
}

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The next unit is incomplete.
    NeedMore,
    /// Progress; step again.
    Continue,
    /// The value is complete.
    Done,
}

/// The input side shared by all steps: offset, CRC, raw capture, output queue.
pub(crate) struct Io {
    pub(crate) offset: u64,
    crc: Option<Crc>,
    raw: Option<BytesMut>,
    pub(crate) opts: Options,
    pub(crate) out: VecDeque<Event>,
    /// Family and version of the stream (for type tables).
    pub(crate) family: Family,
    pub(crate) version: u32,
}

impl std::fmt::Debug for Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Io")
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

impl Io {
    pub(crate) fn new(opts: Options) -> Io {
        Io {
            offset: 0,
            crc: opts.verify_checksum.then(Crc::new),
            raw: None,
            opts,
            out: VecDeque::new(),
            family: Family::Redis,
            version: 0,
        }
    }

    /// A cursor over the unconsumed input.
    pub(crate) fn peek<'a>(&self, buf: &'a [u8]) -> Cursor<'a> {
        Cursor::new(buf, self.offset)
    }

    /// Consumes `n` bytes (checksum, offset, raw capture) and returns them.
    pub(crate) fn consume(&mut self, buf: &mut BytesMut, n: usize) -> Bytes {
        self.account(&buf[..n]);
        buf.split_to(n).freeze()
    }

    /// Consumes a `total`-byte unit holding one string `s` and returns the string. A raw string
    /// at the end of the unit is split off directly (no intermediate handle).
    pub(crate) fn consume_str(
        &mut self,
        buf: &mut BytesMut,
        total: usize,
        s: StrRef,
    ) -> Result<Str, Error> {
        match s {
            StrRef::Plain(r) if r.end == total => {
                self.skip(buf, r.start);
                Ok(Str::Bytes(self.consume(buf, r.end - r.start)))
            }
            StrRef::Int(i) => {
                self.skip(buf, total);
                Ok(Str::Int(i))
            }
            s @ StrRef::Lzf { .. } => {
                // Decompressed from the buffer: the compressed bytes need no handle.
                let out = s.resolve_slice(&buf[..total])?;
                self.skip(buf, total);
                Ok(out)
            }
            s => {
                let chunk = self.consume(buf, total);
                s.resolve(&chunk)
            }
        }
    }

    /// Consumes `n` bytes that are not needed afterwards.
    pub(crate) fn skip(&mut self, buf: &mut BytesMut, n: usize) {
        self.account(&buf[..n]);
        buf.advance(n);
    }

    pub(crate) fn account(&mut self, b: &[u8]) {
        if let Some(c) = &mut self.crc {
            c.update(b);
        }
        self.offset += b.len() as u64;
        if let Some(raw) = &mut self.raw {
            raw.extend_from_slice(b);
        }
    }

    pub(crate) fn emit(&mut self, ev: Event) {
        self.out.push_back(ev);
    }

    /// Starts capturing raw value bytes (with the type byte) when the options ask for it.
    pub(crate) fn start_raw(&mut self, type_byte: u8) {
        if self.opts.raw_values {
            let mut b = BytesMut::with_capacity(64);
            b.extend_from_slice(&[type_byte]);
            self.raw = Some(b);
        }
    }

    /// Emits the captured raw bytes when there are enough of them (or all, with `all`).
    pub(crate) fn flush_raw(&mut self, all: bool) {
        let limit = self.opts.max_chunk_bytes.max(1);
        if let Some(raw) = &mut self.raw {
            if (all && !raw.is_empty()) || raw.len() >= limit {
                let chunk = raw.split().freeze();
                self.out.push_back(Event::RawValue(chunk));
            }
        }
        if all {
            self.raw = None;
        }
    }

    pub(crate) fn crc(&mut self) -> Option<u64> {
        self.crc.as_mut().map(|c| c.finalize())
    }
}

/// CRC-64 over the consumed bytes. Small consumed units are gathered in a buffer and fed to
/// the SIMD digest in blocks: its per-call setup dominates on units of a few bytes.
struct Crc {
    digest: Digest,
    pending: Vec<u8>,
}

/// Block size fed to the digest.
const CRC_BLOCK: usize = 16 * 1024;

/// Units at least this long are fed to the digest directly.
const CRC_DIRECT: usize = 4096;

impl Crc {
    fn new() -> Crc {
        Crc {
            digest: Digest::new(CrcAlgorithm::Crc64Redis),
            pending: Vec::with_capacity(CRC_BLOCK),
        }
    }

    fn update(&mut self, b: &[u8]) {
        // Units of a few hundred bytes or more go straight to the digest (after what is
        // pending): copying them into the block would cost more than the call.
        if b.len() >= CRC_DIRECT {
            if !self.pending.is_empty() {
                self.digest.update(&self.pending);
                self.pending.clear();
            }
            self.digest.update(b);
            return;
        }
        if self.pending.len() + b.len() > CRC_BLOCK {
            self.digest.update(&self.pending);
            self.pending.clear();
        }
        self.pending.extend_from_slice(b);
    }

    fn finalize(&mut self) -> u64 {
        self.digest.update(&self.pending);
        self.pending.clear();
        self.digest.finalize()
    }
}

/// Whether a chunk of `items` holding `bytes` is due (the one rule of both paths).
#[inline]
pub(crate) fn chunk_full(items: usize, bytes: usize, max_items: usize, max_bytes: usize) -> bool {
    items >= max_items || bytes >= max_bytes
}

/// Accumulates items into bounded chunk events.
#[derive(Debug)]
pub(crate) struct Chunker<T> {
    items: Vec<T>,
    bytes: usize,
    /// Items expected (from a count whose items are already in memory), to size chunks.
    hint: usize,
    wrap: fn(Vec<T>) -> Event,
}

impl<T> Chunker<T> {
    pub(crate) fn new(wrap: fn(Vec<T>) -> Event) -> Chunker<T> {
        Chunker {
            items: Vec::new(),
            bytes: 0,
            hint: 8,
            wrap,
        }
    }

    /// Sets how many items are expected; the caller bounds it by the bytes actually present
    /// (never a bare count from the input), and chunks never reserve past `max_chunk_items`.
    pub(crate) fn set_hint(&mut self, n: usize) {
        self.hint = n.max(1);
    }

    pub(crate) fn push(&mut self, io: &mut Io, item: T, size: usize) {
        if self.items.is_empty() {
            // One allocation per chunk instead of a doubling series.
            self.items.reserve(io.opts.max_chunk_items.min(self.hint));
        }
        self.items.push(item);
        self.bytes += size + 8;
        if chunk_full(
            self.items.len(),
            self.bytes,
            io.opts.max_chunk_items,
            io.opts.max_chunk_bytes,
        ) {
            self.flush(io);
        }
    }

    pub(crate) fn flush(&mut self, io: &mut Io) {
        if !self.items.is_empty() {
            let items = std::mem::take(&mut self.items);
            self.bytes = 0;
            io.emit((self.wrap)(items));
        }
    }
}

/// Per-key attributes read before the type byte.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    pub(crate) expire_at_ms: Option<i64>,
    pub(crate) lru_idle: Option<u64>,
    pub(crate) lfu_freq: Option<u8>,
    pub(crate) meta: Vec<KeyMeta>,
    /// Offset of the first per-key prefix, where the key's record starts.
    pub(crate) record_start: Option<u64>,
}

impl Pending {
    /// Back to no prefix, keeping the metadata vector's allocation (done after every key).
    pub(crate) fn reset(&mut self) {
        self.expire_at_ms = None;
        self.lru_idle = None;
        self.lfu_freq = None;
        self.meta.clear();
        self.record_start = None;
    }
}

/// Checks a unit length against [`Options::max_buffered`] (shared by the value decoders).
pub(crate) fn check_buffered(io: &Io, what: &'static str, n: u64, at: u64) -> PResult<()> {
    check_limit(what, n, io.opts.max_buffered, at)
}
