//! The resumable decoding state machine ([`FrameDecoder`]).
//!
//! Input is consumed from the front of the caller's `BytesMut` as soon as a token (a header line,
//! a whole bulk payload, a whole simple line) is complete; bulk payloads are split off and frozen
//! (no copy). Partially built aggregates live on an explicit stack, so nothing is ever re-parsed
//! when more bytes arrive, and hostile nesting cannot overflow the call stack.

use bytes::{Buf, Bytes, BytesMut};

use crate::error::Error;
use crate::frame::Frame;
use crate::limits::{Limit, Limits};

/// Longest integer or length line accepted (type byte, sign, digits, CRLF): `i64::MIN` needs 22
/// bytes; leading zeros beyond this are rejected so a header is never rescanned for long.
const MAX_NUMBER_LINE: usize = 32;
/// Upper bound of the capacity reserved up front for an aggregate, whatever its declared length.
const PREALLOC_CAP: usize = 4096;
/// Smallest encoding of one element (`_\r\n`), used to bound preallocation by buffered bytes.
const MIN_ELEMENT_LEN: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Array,
    Set,
    Push,
    Map,
    Attribute,
    /// An attribute is complete and waits for the value it annotates.
    Annotated,
    StreamedString,
}

#[derive(Debug)]
enum Store {
    List(Vec<Frame>),
    Pairs {
        pairs: Vec<(Frame, Frame)>,
        key: Option<Frame>,
    },
    Annotated {
        attributes: Vec<(Frame, Frame)>,
        data: Option<Frame>,
    },
    Chunks(BytesMut),
}

/// One partially built aggregate.
#[derive(Debug)]
struct Level {
    kind: Kind,
    /// Elements still expected (a map pair counts as two); unused when `streamed`.
    remaining: usize,
    streamed: bool,
    store: Store,
}

impl Level {
    /// Adds a finished element; returns true when the level is complete.
    fn push(&mut self, value: Frame) -> bool {
        match &mut self.store {
            Store::List(items) => items.push(value),
            Store::Pairs { pairs, key } => match key.take() {
                None => *key = Some(value),
                Some(k) => pairs.push((k, value)),
            },
            Store::Annotated { data, .. } => *data = Some(value),
            // Values are never pushed into a streamed string: chunks are appended directly.
            Store::Chunks(_) => {}
        }
        if self.streamed {
            false
        } else {
            self.remaining -= 1;
            self.remaining == 0
        }
    }

    fn finish(self) -> Finished {
        match (self.kind, self.store) {
            (Kind::Array, Store::List(v)) => Finished::Value(Frame::Array(v)),
            (Kind::Set, Store::List(v)) => Finished::Value(Frame::Set(v)),
            (Kind::Push, Store::List(v)) => Finished::Value(Frame::Push(v)),
            (Kind::Map, Store::Pairs { pairs, .. }) => Finished::Value(Frame::Map(pairs)),
            (Kind::Attribute, Store::Pairs { pairs, .. }) => Finished::Attributes(pairs),
            (
                Kind::Annotated,
                Store::Annotated {
                    attributes,
                    data: Some(data),
                },
            ) => Finished::Value(Frame::Attribute {
                attributes,
                data: Box::new(data),
            }),
            (_, Store::Chunks(buf)) => Finished::Value(Frame::BulkString(buf.freeze())),
            // Unreachable by construction; an empty array is the harmless answer.
            _ => Finished::Value(Frame::Array(Vec::new())),
        }
    }

    fn annotated(attributes: Vec<(Frame, Frame)>) -> Level {
        Level {
            kind: Kind::Annotated,
            remaining: 1,
            streamed: false,
            store: Store::Annotated {
                attributes,
                data: None,
            },
        }
    }
}

enum Finished {
    Value(Frame),
    Attributes(Vec<(Frame, Frame)>),
}

#[derive(Clone, Copy, Debug)]
enum BulkKind {
    String,
    Error,
    Verbatim,
    Chunk,
}

/// A bulk header has been consumed; its payload (`len` bytes + CRLF) has not arrived yet.
#[derive(Clone, Copy, Debug)]
struct PendingBulk {
    kind: BulkKind,
    len: usize,
}

/// What one step of the machine produced.
enum Step {
    /// More input is needed.
    Partial,
    /// State advanced (an aggregate opened, a chunk was appended), no value yet.
    Continue,
    /// A complete value, to be added to the enclosing aggregate (or returned).
    Value(Frame),
}

/// Parsed length header.
enum Header {
    Len(usize),
    Null,
    Streamed,
}

/// The sans-IO RESP2/RESP3 decoder: feed it a `BytesMut`, get frames and their wire lengths.
///
/// [`decode`](FrameDecoder::decode) consumes bytes from the front of `src` as tokens complete
/// and keeps partially built aggregates in an explicit stack, so a frame arriving in many reads
/// is parsed exactly once (linear cost even byte by byte). It returns `Ok(None)` when more input
/// is needed; call it again with the same buffer once more bytes were appended. Because bytes of
/// an unfinished frame may already have been taken from `src`, a stream that ends while
/// [`is_idle`](FrameDecoder::is_idle) is false was truncated (see [`finish`](FrameDecoder::finish)).
///
/// ```
/// use bytes::BytesMut;
/// use resp_codec::{Frame, FrameDecoder};
///
/// let mut dec = FrameDecoder::default();
/// let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$1"[..]);
/// assert!(dec.decode(&mut buf).unwrap().is_none()); // partial: state kept
/// buf.extend_from_slice(b"\r\nk\r\n+OK\r\n");
/// let (frame, len) = dec.decode(&mut buf).unwrap().unwrap();
/// assert_eq!(frame, Frame::command(&["GET", "k"]));
/// assert_eq!(len, 20); // bytes on the wire, e.g. for replication offsets
/// let (frame, len) = dec.decode(&mut buf).unwrap().unwrap();
/// assert_eq!((frame, len), (Frame::simple("OK"), 5));
/// assert_eq!(dec.position(), 25);
/// ```
#[derive(Debug)]
pub struct FrameDecoder {
    limits: Limits,
    inline: bool,
    stack: Vec<Level>,
    pending: Option<PendingBulk>,
    /// Bytes of the current line already scanned without finding its terminator.
    line_scan: usize,
    /// Stream offset of `src[0]`: total bytes consumed so far.
    position: u64,
    /// Stream offset where the frame being decoded starts.
    frame_start: u64,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl FrameDecoder {
    /// A decoder enforcing `limits`.
    pub fn new(limits: Limits) -> Self {
        FrameDecoder {
            limits,
            inline: false,
            stack: Vec::new(),
            pending: None,
            line_scan: 0,
            position: 0,
            frame_start: 0,
        }
    }

    /// Accept inline commands (`PING\r\n`, `SET k v\n`) as a server does: at the top level, any
    /// frame not starting with `*` is a line (CRLF or bare LF, at most
    /// [`max_line_len`](Limits::max_line_len)) split on spaces and tabs into an
    /// [`Array`](Frame::Array) of [`BulkString`](Frame::BulkString)s. Blank lines are skipped
    /// (consumed, counted by [`position`](Self::position), not part of any frame). Quoting is not
    /// interpreted. Off by default: clients and replicas never receive inline frames.
    pub fn with_inline_commands(mut self, enabled: bool) -> Self {
        self.inline = enabled;
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Total bytes consumed from the stream so far: the stream offset of the next byte to decode.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Sets the stream offset of the next byte (used in error offsets), e.g. after the caller read
    /// a raw payload (a replication RDB transfer) directly from the buffer. Only meaningful while
    /// [`is_idle`](Self::is_idle).
    pub fn set_position(&mut self, position: u64) {
        self.position = position;
        self.frame_start = position;
    }

    /// True when no partially decoded frame is held: the stream is at a frame boundary
    /// (bytes of a frame's first line may still be waiting unconsumed in the buffer).
    pub fn is_idle(&self) -> bool {
        self.stack.is_empty() && self.pending.is_none()
    }

    /// Drops any partially decoded frame (the position is kept).
    pub fn reset(&mut self) {
        self.stack.clear();
        self.pending = None;
        self.line_scan = 0;
        self.frame_start = self.position;
    }

    /// End-of-stream check: `Ok(())` when the stream ended cleanly at a frame boundary with
    /// `remaining` (the bytes left in the buffer) empty, [`Error::Truncated`] otherwise.
    pub fn finish(&self, remaining: &[u8]) -> Result<(), Error> {
        if self.is_idle() && remaining.is_empty() {
            Ok(())
        } else {
            Err(Error::Truncated {
                offset: self.frame_start,
                end: self.position + remaining.len() as u64,
            })
        }
    }

    /// Decodes the next frame from the front of `src`.
    ///
    /// Returns `Ok(Some((frame, wire_len)))` where `wire_len` is the exact number of bytes the
    /// frame occupied on the wire, `Ok(None)` when more input is needed (bytes may have been
    /// consumed into the decoder's state), or an error naming the problem and its stream offset.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<(Frame, usize)>, Error> {
        if self.stack.is_empty() && self.pending.is_none() {
            match src.first() {
                Some(b'*') => {
                    if let Some(done) = self.whole_command(src) {
                        return Ok(Some(done));
                    }
                }
                Some(b'+') if !self.inline && self.line_scan == 0 => {
                    if let Some(done) = self.common_status(src) {
                        return Ok(Some(done));
                    }
                }
                _ => {}
            }
        }
        loop {
            if self.pending.is_none() {
                self.fill_bulks(src);
            }
            let step = match self.pending {
                Some(p) => self.bulk_payload(src, p)?,
                None => self.token(src)?,
            };
            let mut value = match step {
                Step::Partial => return Ok(None),
                Step::Continue => continue,
                Step::Value(v) => v,
            };
            // Fold the value into the enclosing aggregates.
            loop {
                let Some(top) = self.stack.last_mut() else {
                    let len = (self.position - self.frame_start) as usize;
                    self.frame_start = self.position;
                    return Ok(Some((value, len)));
                };
                if !top.push(value) {
                    break;
                }
                let Some(level) = self.stack.pop() else { break };
                match level.finish() {
                    Finished::Value(v) => value = v,
                    Finished::Attributes(attributes) => {
                        self.stack.push(Level::annotated(attributes));
                        break;
                    }
                }
            }
        }
    }

    /// Fast path for the most common frame: a whole array of bulk strings already buffered
    /// (commands, `MGET`/`LRANGE`-style replies). Validates in a first pass without touching
    /// `src`; anything unusual (other element types, partial input, a limit reached) returns
    /// `None` with nothing consumed and the general machine takes over (and reports errors).
    /// Each byte is thus scanned at most twice per top-level frame.
    fn whole_command(&mut self, src: &mut BytesMut) -> Option<(Frame, usize)> {
        let (n, first, total) = self.whole_command_len(src)?;
        src.advance(first);
        let items: Vec<Frame> = (0..n).map(|_| Frame::BulkString(take_bulk(src))).collect();
        self.position += total as u64;
        self.frame_start = self.position;
        Some((Frame::Array(items), total))
    }

    /// The validation pass of [`whole_command`](Self::whole_command): `(elements, header
    /// length, total length)` of a whole non-empty array of bulk strings at the front of `buf`.
    fn whole_command_len(&self, buf: &[u8]) -> Option<(usize, usize, usize)> {
        if buf.first() != Some(&b'*') {
            return None;
        }
        let (n, first) = fast_len(buf, 1)?;
        if n == 0 || n > self.limits.max_aggregate_len || self.limits.max_depth == 0 {
            return None;
        }
        let mut p = first;
        for _ in 0..n {
            if *buf.get(p)? != b'$' {
                return None;
            }
            let (len, data) = fast_len(buf, p + 1)?;
            if len > self.limits.max_bulk_len {
                return None;
            }
            let end = data.checked_add(len)?;
            if buf.get(end..end + 2)? != b"\r\n" {
                return None;
            }
            p = end + 2;
        }
        // Validated: `n` elements are buffered, so a capacity of `n` is backed by input.
        Some((n, first, p))
    }

    /// Decodes a whole command (a non-empty array of bulk strings, all of it buffered) at the
    /// front of `src` straight into its arguments, without building the [`Frame`]s: the
    /// replication stream's hot path. Returns the arguments and the frame's length, or `None`
    /// with nothing consumed (the decoder in the middle of a frame, partial input, anything
    /// else at the front, a limit reached): then [`decode`](Self::decode) takes over and
    /// reports errors.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use resp_codec::FrameDecoder;
    ///
    /// let mut dec = FrameDecoder::default();
    /// let mut buf = BytesMut::from(&b"*2$3\r\nGET\r\n"[..]);
    /// assert!(dec.decode_command(&mut buf).is_none());
    /// let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n+OK\r\n"[..]);
    /// let (args, len) = dec.decode_command(&mut buf).unwrap();
    /// assert_eq!((&args[0][..], &args[1][..], len), (&b"GET"[..], &b"k"[..], 20));
    /// assert_eq!((dec.position(), &buf[..]), (20, &b"+OK\r\n"[..]));
    /// ```
    pub fn decode_command(&mut self, src: &mut BytesMut) -> Option<(Vec<Bytes>, usize)> {
        if !self.stack.is_empty() || self.pending.is_some() || self.line_scan != 0 {
            return None;
        }
        let (n, first, total) = self.whole_command_len(src)?;
        src.advance(first);
        let args = (0..n).map(|_| take_bulk(src)).collect();
        self.position += total as u64;
        self.frame_start = self.position;
        Some((args, total))
    }

    /// Consumes, without building its [`Frame`]s, a whole array (all of it buffered) whose
    /// elements are all plain results: simple strings, integers, bulk strings and RESP3 nulls,
    /// none of them an error, a null bulk string or an aggregate. This is the reply of `EXEC`
    /// to a pipelined transaction of writes (`+OK`, `:1`, ...), which a writer only needs to
    /// count. Returns the number of elements and the frame's length, or `None` with nothing
    /// consumed (the decoder in the middle of a frame, partial input, any other element, a
    /// limit reached): then [`decode`](Self::decode) takes over and reports errors.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use resp_codec::FrameDecoder;
    ///
    /// let mut dec = FrameDecoder::default();
    /// let mut buf = BytesMut::from(&b"*3\r\n+OK\r\n:12\r\n$1\r\nv\r\n+QUEUED\r\n"[..]);
    /// assert_eq!(dec.skip_plain_array(&mut buf), Some((3, 21)));
    /// assert_eq!((dec.position(), &buf[..]), (21, &b"+QUEUED\r\n"[..]));
    /// let mut buf = BytesMut::from(&b"*2\r\n+OK\r\n-ERR no\r\n"[..]);
    /// assert_eq!(dec.skip_plain_array(&mut buf), None); // an error inside: decode() it
    /// assert_eq!(buf.len(), 18);
    /// ```
    pub fn skip_plain_array(&mut self, src: &mut BytesMut) -> Option<(usize, usize)> {
        if !self.stack.is_empty() || self.pending.is_some() || self.line_scan != 0 {
            return None;
        }
        let total = self.plain_array_len(src)?;
        let n = fast_len(src, 1)?.0;
        src.advance(total);
        self.position += total as u64;
        self.frame_start = self.position;
        Some((n, total))
    }

    /// The validation pass of [`skip_plain_array`](Self::skip_plain_array): the length of
    /// the whole plain array at the front of `buf`.
    fn plain_array_len(&self, buf: &[u8]) -> Option<usize> {
        if buf.first() != Some(&b'*') {
            return None;
        }
        let (n, mut p) = fast_len(buf, 1)?;
        if n > self.limits.max_aggregate_len || self.limits.max_depth == 0 {
            return None;
        }
        for _ in 0..n {
            match *buf.get(p)? {
                b'+' => {
                    let cap = buf.len().min(p + 1 + self.limits.max_line_len + 2);
                    let i = memchr::memchr2(b'\r', b'\n', buf.get(p + 1..cap)?)? + p + 1;
                    if buf[i] != b'\r' || *buf.get(i + 1)? != b'\n' {
                        return None;
                    }
                    p = i + 2;
                }
                b':' => match self.integer(&buf[p..]) {
                    Ok(Some((_, used))) => p += used,
                    _ => return None,
                },
                b'$' => {
                    let (len, data) = fast_len(buf, p + 1)?;
                    if len > self.limits.max_bulk_len {
                        return None;
                    }
                    let end = data.checked_add(len)?;
                    if buf.get(end..end + 2)? != b"\r\n" {
                        return None;
                    }
                    p = end + 2;
                }
                b'_' if buf.get(p + 1..p + 3)? == b"\r\n" => p += 3,
                _ => return None,
            }
        }
        Some(p)
    }

    /// Fast path for the status replies a pipelined writer reads once per command (`+OK`,
    /// `+QUEUED`): the frame shares a static text instead of splitting the buffer.
    fn common_status(&mut self, src: &mut BytesMut) -> Option<(Frame, usize)> {
        const COMMON: [&[u8]; 2] = [b"OK", b"QUEUED"];
        let text = COMMON.into_iter().find(|t| {
            src.len() >= t.len() + 3
                && src[1..=t.len()] == **t
                && src[t.len() + 1..t.len() + 3] == *b"\r\n"
        })?;
        let total = text.len() + 3;
        src.advance(total);
        self.position += total as u64;
        self.frame_start = self.position;
        Some((Frame::SimpleString(Bytes::from_static(text)), total))
    }

    /// Fast path inside a counted array, set or push: appends the whole bulk strings already
    /// buffered directly to the open level, all but its last element (whose completion the
    /// general machine handles). Stops at anything else, leaving it to the general machine
    /// (which reports errors); nothing is consumed that the general machine would not consume.
    fn fill_bulks(&mut self, src: &mut BytesMut) {
        let Some(Level {
            remaining,
            streamed: false,
            store: Store::List(items),
            ..
        }) = self.stack.last_mut()
        else {
            return;
        };
        let max_bulk = self.limits.max_bulk_len;
        let mut consumed = 0usize;
        while *remaining > 1 && src.first() == Some(&b'$') {
            let Some((len, data)) = fast_len(src, 1) else {
                break;
            };
            if len > max_bulk
                || src.len() < data + len + 2
                || src[data + len..data + len + 2] != *b"\r\n"
            {
                break;
            }
            src.advance(data);
            let bulk = src.split_to(len).freeze();
            src.advance(2);
            consumed += data + len + 2;
            items.push(Frame::BulkString(bulk));
            *remaining -= 1;
        }
        self.position += consumed as u64;
    }

    #[inline]
    fn consume(&mut self, src: &mut BytesMut, n: usize) {
        src.advance(n);
        self.position += n as u64;
    }

    /// Parses the token at the front of `src`.
    fn token(&mut self, src: &mut BytesMut) -> Result<Step, Error> {
        let Some(&tb) = src.first() else {
            return Ok(Step::Partial);
        };
        if let Some(top) = self.stack.last() {
            if top.kind == Kind::StreamedString && tb != b';' {
                return Err(Error::ExpectedChunk {
                    offset: self.position,
                    found: tb,
                });
            }
        } else if self.inline && tb != b'*' {
            return self.inline_command(src);
        }
        match tb {
            b'$' => self.bulk_header(src, BulkKind::String),
            b'*' => self.aggregate_header(src, Kind::Array),
            b':' => {
                let Some((n, used)) = self.integer(src)? else {
                    return Ok(Step::Partial);
                };
                self.consume(src, used);
                Ok(Step::Value(Frame::Integer(n)))
            }
            b'+' | b'-' | b'(' => {
                let Some(end) = self.line(src)? else {
                    return Ok(Step::Partial);
                };
                if tb == b'(' {
                    self.check_big_number(&src[1..end])?;
                }
                self.consume(src, 1);
                let text = src.split_to(end - 1).freeze();
                self.consume_after_split(src, end - 1, 2);
                Ok(Step::Value(match tb {
                    b'+' => Frame::SimpleString(text),
                    b'-' => Frame::SimpleError(text),
                    _ => Frame::BigNumber(text),
                }))
            }
            b'%' => self.aggregate_header(src, Kind::Map),
            b'~' => self.aggregate_header(src, Kind::Set),
            b'>' => self.aggregate_header(src, Kind::Push),
            b'|' => self.aggregate_header(src, Kind::Attribute),
            b'!' => self.bulk_header(src, BulkKind::Error),
            b'=' => self.bulk_header(src, BulkKind::Verbatim),
            b';' => {
                if !matches!(self.stack.last(), Some(l) if l.kind == Kind::StreamedString) {
                    return Err(Error::UnexpectedChunk {
                        offset: self.position,
                    });
                }
                self.bulk_header(src, BulkKind::Chunk)
            }
            b',' => {
                let Some(end) = self.line(src)? else {
                    return Ok(Step::Partial);
                };
                let d = parse_double(&src[1..end]).ok_or(Error::InvalidDouble {
                    offset: self.position,
                })?;
                self.consume(src, end + 2);
                Ok(Step::Value(Frame::Double(d)))
            }
            b'#' => {
                if src.len() < 4 {
                    return Ok(Step::Partial);
                }
                let b = match src[1] {
                    b't' => true,
                    b'f' => false,
                    found => {
                        return Err(Error::InvalidBoolean {
                            offset: self.position + 1,
                            found,
                        })
                    }
                };
                self.expect_crlf(src, 2)?;
                self.consume(src, 4);
                Ok(Step::Value(Frame::Boolean(b)))
            }
            b'_' => {
                if src.len() < 3 {
                    return Ok(Step::Partial);
                }
                self.expect_crlf(src, 1)?;
                self.consume(src, 3);
                Ok(Step::Value(Frame::Null))
            }
            b'.' => {
                if src.len() < 3 {
                    return Ok(Step::Partial);
                }
                let ok = matches!(
                    self.stack.last(),
                    Some(Level { streamed: true, kind, store, .. })
                        if *kind != Kind::StreamedString
                            && !matches!(store, Store::Pairs { key: Some(_), .. })
                );
                if !ok {
                    return Err(Error::UnexpectedEndMarker {
                        offset: self.position,
                    });
                }
                self.expect_crlf(src, 1)?;
                self.consume(src, 3);
                match self.stack.pop().map(Level::finish) {
                    Some(Finished::Value(v)) => Ok(Step::Value(v)),
                    _ => Ok(Step::Continue),
                }
            }
            found => Err(Error::InvalidTypeByte {
                offset: self.position,
                found,
            }),
        }
    }

    /// Accounts for `split` bytes already split off `src`, then consumes `more`.
    #[inline]
    fn consume_after_split(&mut self, src: &mut BytesMut, split: usize, more: usize) {
        self.position += split as u64;
        self.consume(src, more);
    }

    fn expect_crlf(&self, src: &[u8], at: usize) -> Result<(), Error> {
        if src[at] != b'\r' {
            return Err(Error::ExpectedCrlf {
                offset: self.position + at as u64,
                found: src[at],
            });
        }
        if src[at + 1] != b'\n' {
            return Err(Error::ExpectedCrlf {
                offset: self.position + at as u64 + 1,
                found: src[at + 1],
            });
        }
        Ok(())
    }

    /// Finds the CRLF ending the line that starts at `src[0]` (the type byte), resuming the scan
    /// where the previous call stopped. Returns the index of the `\r`.
    ///
    /// Only the first `max_line_len + 2` bytes are ever searched, so the outcome (and the error)
    /// does not depend on how the input was split.
    fn line(&mut self, src: &[u8]) -> Result<Option<usize>, Error> {
        let from = self.line_scan.max(1);
        // Content is src[1..i]: the CR may sit at index max + 1 at the latest.
        let cap = self.limits.max_line_len.saturating_add(2);
        let window = src.len().min(cap);
        let found = memchr::memchr2(b'\r', b'\n', &src[from.min(window)..window]).map(|i| i + from);
        let Some(i) = found else {
            if window == cap {
                return Err(self.line_too_long());
            }
            self.line_scan = src.len();
            return Ok(None);
        };
        if src[i] == b'\n' {
            return Err(Error::ExpectedCrlf {
                offset: self.position + i as u64,
                found: b'\n',
            });
        }
        if i + 1 == src.len() {
            self.line_scan = i;
            return Ok(None);
        }
        if src[i + 1] != b'\n' {
            return Err(Error::ExpectedCrlf {
                offset: self.position + i as u64 + 1,
                found: src[i + 1],
            });
        }
        self.line_scan = 0;
        Ok(Some(i))
    }

    /// The line is longer than `max_line_len`; `found` is reported as `max + 1` so the error
    /// is the same however the input was split.
    fn line_too_long(&self) -> Error {
        let max = self.limits.max_line_len as u64;
        Error::LimitExceeded {
            limit: Limit::LineLen,
            offset: self.position,
            max,
            found: max.saturating_add(1),
        }
    }

    fn check_big_number(&self, text: &[u8]) -> Result<(), Error> {
        let digits = match text.first() {
            Some(b'-' | b'+') => 1,
            _ => 0,
        };
        if text.len() == digits {
            return Err(Error::InvalidBigNumber {
                offset: self.position + 1 + digits as u64,
                found: b'\r',
            });
        }
        for (i, &b) in text.iter().enumerate().skip(digits) {
            if !b.is_ascii_digit() {
                return Err(Error::InvalidBigNumber {
                    offset: self.position + 1 + i as u64,
                    found: b,
                });
            }
        }
        Ok(())
    }

    /// Parses `:<i64>\r\n` at the front of `src`: the value and the bytes used.
    fn integer(&self, src: &[u8]) -> Result<Option<(i64, usize)>, Error> {
        let err = |i: usize, found: u8| Error::InvalidInteger {
            offset: self.position + i as u64,
            found,
        };
        let mut i = 1;
        let neg = match src.get(1) {
            None => return Ok(None),
            Some(b'-') => {
                i = 2;
                true
            }
            Some(b'+') => {
                i = 2;
                false
            }
            Some(_) => false,
        };
        let first_digit = i;
        let mut n: i64 = 0;
        loop {
            let Some(&b) = src.get(i) else {
                return if i >= MAX_NUMBER_LINE {
                    Err(err(i, 0))
                } else {
                    Ok(None)
                };
            };
            match b {
                b'0'..=b'9' => {
                    let d = i64::from(b - b'0');
                    n = n
                        .checked_mul(10)
                        .and_then(|n| {
                            if neg {
                                n.checked_sub(d)
                            } else {
                                n.checked_add(d)
                            }
                        })
                        .ok_or_else(|| err(i, b))?;
                    i += 1;
                    if i >= MAX_NUMBER_LINE {
                        return Err(err(i - 1, b));
                    }
                }
                b'\r' if i > first_digit => {
                    return match src.get(i + 1) {
                        None => Ok(None),
                        Some(b'\n') => Ok(Some((n, i + 2))),
                        Some(&found) => Err(Error::ExpectedCrlf {
                            offset: self.position + i as u64 + 1,
                            found,
                        }),
                    };
                }
                _ => return Err(err(i, b)),
            }
        }
    }

    /// Parses a length header (`$`, `*`, `%`, ...) at the front of `src`: the header and the bytes
    /// used. `-1` (RESP2 null) and `?` (RESP3 streamed) are reported as such; callers reject them
    /// where they are not allowed.
    fn header(&self, src: &[u8]) -> Result<Option<(Header, usize)>, Error> {
        let err = |i: usize, found: u8| Error::InvalidLength {
            offset: self.position + i as u64,
            found,
        };
        let special = match src.get(1) {
            None => return Ok(None),
            Some(b'-') => Some((b'1', Header::Null)),
            Some(b'?') => Some((b'\r', Header::Streamed)),
            Some(_) => None,
        };
        if let Some((next, header)) = special {
            let tail: &[u8] = if next == b'1' { b"1\r\n" } else { b"\r\n" };
            for (k, &want) in tail.iter().enumerate() {
                match src.get(2 + k) {
                    None => return Ok(None),
                    Some(&b) if b == want => {}
                    Some(&b) if want == b'\n' => {
                        return Err(Error::ExpectedCrlf {
                            offset: self.position + 2 + k as u64,
                            found: b,
                        })
                    }
                    Some(&b) => return Err(err(2 + k, b)),
                }
            }
            return Ok(Some((header, 2 + tail.len())));
        }
        let mut n: usize = 0;
        let mut i = 1;
        loop {
            let Some(&b) = src.get(i) else {
                return Ok(None);
            };
            match b {
                b'0'..=b'9' => {
                    n = n
                        .checked_mul(10)
                        .and_then(|n| n.checked_add(usize::from(b - b'0')))
                        .ok_or_else(|| err(i, b))?;
                    i += 1;
                    if i >= MAX_NUMBER_LINE {
                        return Err(err(i - 1, b));
                    }
                }
                b'\r' if i > 1 => {
                    return match src.get(i + 1) {
                        None => Ok(None),
                        Some(b'\n') => Ok(Some((Header::Len(n), i + 2))),
                        Some(&found) => Err(Error::ExpectedCrlf {
                            offset: self.position + i as u64 + 1,
                            found,
                        }),
                    };
                }
                _ => return Err(err(i, b)),
            }
        }
    }

    fn bulk_header(&mut self, src: &mut BytesMut, kind: BulkKind) -> Result<Step, Error> {
        let Some((header, used)) = self.header(src)? else {
            return Ok(Step::Partial);
        };
        let len = match header {
            Header::Len(len) => len,
            Header::Null if matches!(kind, BulkKind::String) => {
                self.consume(src, used);
                return Ok(Step::Value(Frame::NullBulkString));
            }
            Header::Streamed if matches!(kind, BulkKind::String) => {
                self.open(src.len() - used, Kind::StreamedString, 0, true)?;
                self.consume(src, used);
                return Ok(Step::Continue);
            }
            Header::Null | Header::Streamed => {
                return Err(Error::InvalidLength {
                    offset: self.position + 1,
                    found: src[1],
                })
            }
        };
        if len > self.limits.max_bulk_len {
            return Err(self.limit(Limit::BulkLen, self.limits.max_bulk_len, len));
        }
        if let BulkKind::Chunk = kind {
            if len == 0 {
                // `;0\r\n` ends a streamed string.
                self.consume(src, used);
                return Ok(match self.stack.pop().map(Level::finish) {
                    Some(Finished::Value(v)) => Step::Value(v),
                    _ => Step::Continue,
                });
            }
            let total = match self.stack.last() {
                Some(Level {
                    store: Store::Chunks(buf),
                    ..
                }) => buf.len().saturating_add(len),
                _ => len,
            };
            if total > self.limits.max_bulk_len {
                return Err(self.limit(Limit::BulkLen, self.limits.max_bulk_len, total));
            }
        }
        self.consume(src, used);
        let pending = PendingBulk { kind, len };
        self.pending = Some(pending);
        self.bulk_payload(src, pending)
    }

    fn limit(&self, limit: Limit, max: usize, found: usize) -> Error {
        Error::LimitExceeded {
            limit,
            offset: self.position,
            max: max as u64,
            found: found as u64,
        }
    }

    fn bulk_payload(&mut self, src: &mut BytesMut, p: PendingBulk) -> Result<Step, Error> {
        if src.len() < p.len + 2 {
            return Ok(Step::Partial);
        }
        self.expect_crlf(src, p.len)?;
        if let BulkKind::Verbatim = p.kind {
            if p.len < 4 || src[3] != b':' {
                return Err(Error::InvalidVerbatim {
                    offset: self.position,
                });
            }
        }
        self.pending = None;
        let mut data = src.split_to(p.len);
        self.consume_after_split(src, p.len, 2);
        Ok(match p.kind {
            BulkKind::String => Step::Value(Frame::BulkString(data.freeze())),
            BulkKind::Error => Step::Value(Frame::BlobError(data.freeze())),
            BulkKind::Verbatim => {
                let format = [data[0], data[1], data[2]];
                data.advance(4);
                Step::Value(Frame::VerbatimString {
                    format,
                    data: data.freeze(),
                })
            }
            BulkKind::Chunk => {
                if let Some(Level {
                    store: Store::Chunks(buf),
                    ..
                }) = self.stack.last_mut()
                {
                    if buf.is_empty() {
                        *buf = data;
                    } else {
                        buf.extend_from_slice(&data);
                    }
                }
                Step::Continue
            }
        })
    }

    fn aggregate_header(&mut self, src: &mut BytesMut, kind: Kind) -> Result<Step, Error> {
        let Some((header, used)) = self.header(src)? else {
            return Ok(Step::Partial);
        };
        let n = match header {
            Header::Len(n) => n,
            Header::Null if kind == Kind::Array => {
                self.consume(src, used);
                return Ok(Step::Value(Frame::NullArray));
            }
            Header::Streamed if matches!(kind, Kind::Array | Kind::Set | Kind::Map) => {
                self.open(src.len() - used, kind, 0, true)?;
                self.consume(src, used);
                return Ok(Step::Continue);
            }
            Header::Null | Header::Streamed => {
                return Err(Error::InvalidLength {
                    offset: self.position + 1,
                    found: src[1],
                })
            }
        };
        if n > self.limits.max_aggregate_len {
            return Err(self.limit(Limit::AggregateLen, self.limits.max_aggregate_len, n));
        }
        if n == 0 && kind != Kind::Attribute {
            self.check_depth()?;
            self.consume(src, used);
            return Ok(Step::Value(match kind {
                Kind::Map => Frame::Map(Vec::new()),
                Kind::Set => Frame::Set(Vec::new()),
                Kind::Push => Frame::Push(Vec::new()),
                _ => Frame::Array(Vec::new()),
            }));
        }
        self.open(src.len() - used, kind, n, false)?;
        self.consume(src, used);
        Ok(Step::Continue)
    }

    fn check_depth(&self) -> Result<(), Error> {
        let depth = self.stack.len() + 1;
        if depth > self.limits.max_depth {
            return Err(self.limit(Limit::Depth, self.limits.max_depth, depth));
        }
        Ok(())
    }

    /// Pushes a new aggregate level expecting `n` elements (pairs for maps and attributes).
    /// `buffered` bounds the capacity reserved up front.
    fn open(&mut self, buffered: usize, kind: Kind, n: usize, streamed: bool) -> Result<(), Error> {
        self.check_depth()?;
        let cap = n.min(buffered / MIN_ELEMENT_LEN).min(PREALLOC_CAP);
        let (store, remaining) = match kind {
            Kind::Map | Kind::Attribute => (
                Store::Pairs {
                    pairs: Vec::with_capacity(cap / 2),
                    key: None,
                },
                n * 2,
            ),
            Kind::StreamedString => (Store::Chunks(BytesMut::new()), 0),
            _ => (Store::List(Vec::with_capacity(cap)), n),
        };
        if kind == Kind::Attribute && n == 0 {
            self.stack.push(Level::annotated(Vec::new()));
        } else {
            self.stack.push(Level {
                kind,
                remaining,
                streamed,
                store,
            });
        }
        Ok(())
    }

    /// An inline command line at the front of `src` (only when enabled).
    fn inline_command(&mut self, src: &mut BytesMut) -> Result<Step, Error> {
        let from = self.line_scan;
        let max = self.limits.max_line_len;
        // Content is src[..nl] minus a trailing CR: the LF may sit at index max + 1 at the latest.
        let cap = max.saturating_add(2);
        let window = src.len().min(cap);
        let found = memchr::memchr(b'\n', &src[from.min(window)..window]).map(|i| i + from);
        let Some(nl) = found else {
            if window == cap {
                return Err(self.line_too_long());
            }
            self.line_scan = src.len();
            return Ok(Step::Partial);
        };
        let end = if nl > 0 && src[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        if end > max {
            return Err(self.line_too_long());
        }
        self.line_scan = 0;
        let line = src.split_to(nl + 1).freeze();
        self.position += line.len() as u64;
        let mut args = Vec::new();
        let mut i = 0;
        while i < end {
            while i < end && matches!(line[i], b' ' | b'\t') {
                i += 1;
            }
            let start = i;
            while i < end && !matches!(line[i], b' ' | b'\t') {
                i += 1;
            }
            if i > start {
                args.push(Frame::BulkString(line.slice(start..i)));
            }
        }
        if args.is_empty() {
            // A blank line (also a replication keepalive): not a frame.
            self.frame_start = self.position;
            return Ok(Step::Continue);
        }
        Ok(Step::Value(Frame::Array(args)))
    }
}

/// Parses `<digits>\r\n` at `buf[at..]` (no sign, at most 18 digits so it cannot overflow):
/// the value and the index after the CRLF. `None` for anything else, partial input included.
#[inline(always)]
/// Takes one validated bulk string (`$len\r\ndata\r\n`) off the front of `src`.
fn take_bulk(src: &mut BytesMut) -> Bytes {
    let (len, data) = fast_len(src, 1).unwrap_or_default();
    src.advance(data);
    let bulk = src.split_to(len).freeze();
    src.advance(2);
    bulk
}

fn fast_len(buf: &[u8], at: usize) -> Option<(usize, usize)> {
    let mut n = 0u64;
    let mut i = at;
    loop {
        let b = *buf.get(i)?;
        if b.is_ascii_digit() {
            n = n * 10 + u64::from(b - b'0');
            i += 1;
            if i - at > 18 {
                return None;
            }
        } else if b == b'\r' && i > at && *buf.get(i + 1)? == b'\n' {
            return Some((usize::try_from(n).ok()?, i + 2));
        } else {
            return None;
        }
    }
}

/// Parses a RESP3 double: decimal or exponent notation, `inf`, `-inf`, `nan` (any case).
fn parse_double(text: &[u8]) -> Option<f64> {
    if text.is_empty() {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse::<f64>().ok()
}
