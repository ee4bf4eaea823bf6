//! The crate's error type.

use crate::limits::Limit;

/// Everything that can go wrong while decoding or encoding RESP.
///
/// Decoding errors carry `offset`: the **stream-absolute** byte offset of the offending byte,
/// counted from the first byte the decoder was ever given (see
/// [`FrameDecoder::position`](crate::FrameDecoder::position)). Server error replies (`-ERR ...`,
/// `!<len>`) are [`Frame`](crate::Frame)s, never errors.
///
/// After a decoding error the stream's framing is lost: drop the connection (or call
/// [`FrameDecoder::reset`](crate::FrameDecoder::reset) if you resynchronise some other way).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The byte where a frame (or an aggregate element) starts is not a RESP type byte.
    #[error("invalid RESP type byte {found:#04x} at offset {offset}")]
    InvalidTypeByte {
        /// Stream offset of the byte.
        offset: u64,
        /// The byte found.
        found: u8,
    },
    /// An integer reply (`:`) is malformed or does not fit an `i64`.
    #[error("invalid integer at offset {offset}: unexpected byte {found:#04x}")]
    InvalidInteger {
        /// Stream offset of the offending byte.
        offset: u64,
        /// The byte found there.
        found: u8,
    },
    /// A length header (`$`, `*`, `%`, `~`, `>`, `|`, `!`, `=`, `;`) is malformed, negative
    /// (other than the RESP2 null `-1`), or does not fit a `usize`.
    #[error("invalid length at offset {offset}: unexpected byte {found:#04x}")]
    InvalidLength {
        /// Stream offset of the offending byte.
        offset: u64,
        /// The byte found there.
        found: u8,
    },
    /// A `\r\n` terminator was expected.
    #[error("expected CRLF at offset {offset}, found byte {found:#04x}")]
    ExpectedCrlf {
        /// Stream offset of the offending byte.
        offset: u64,
        /// The byte found there.
        found: u8,
    },
    /// A double (`,`) is not a number, `inf`, `-inf` or `nan`.
    #[error("invalid double at offset {offset}")]
    InvalidDouble {
        /// Stream offset of the type byte.
        offset: u64,
    },
    /// A boolean (`#`) is neither `t` nor `f`.
    #[error("invalid boolean at offset {offset}: found byte {found:#04x}")]
    InvalidBoolean {
        /// Stream offset of the offending byte.
        offset: u64,
        /// The byte found there.
        found: u8,
    },
    /// A big number (`(`) contains something other than an optional sign and digits.
    #[error("invalid big number at offset {offset}: found byte {found:#04x}")]
    InvalidBigNumber {
        /// Stream offset of the offending byte.
        offset: u64,
        /// The byte found there.
        found: u8,
    },
    /// A verbatim string (`=`) is shorter than 4 bytes or lacks the `xxx:` format prefix.
    #[error("invalid verbatim string at offset {offset}: expected a 3-byte format and ':'")]
    InvalidVerbatim {
        /// Stream offset of the payload's first byte.
        offset: u64,
    },
    /// A streamed-aggregate end marker (`.`) outside a streamed aggregate, or after a map key
    /// without its value.
    #[error("unexpected end marker '.' at offset {offset}")]
    UnexpectedEndMarker {
        /// Stream offset of the `.`.
        offset: u64,
    },
    /// A string chunk (`;`) outside a streamed string (`$?`).
    #[error("unexpected string chunk ';' at offset {offset}")]
    UnexpectedChunk {
        /// Stream offset of the `;`.
        offset: u64,
    },
    /// Inside a streamed string (`$?`) something other than a chunk (`;`) arrived.
    #[error("expected a string chunk ';' at offset {offset}, found byte {found:#04x}")]
    ExpectedChunk {
        /// Stream offset of the offending byte.
        offset: u64,
        /// The byte found there.
        found: u8,
    },
    /// A configured [`Limits`](crate::Limits) bound was exceeded.
    #[error("{limit} exceeded at offset {offset}: {found} > {max}")]
    LimitExceeded {
        /// Which limit.
        limit: Limit,
        /// Stream offset of the frame (type byte) that exceeded it.
        offset: u64,
        /// The configured maximum.
        max: u64,
        /// The declared size (for lines: `max + 1`, whatever the actual length).
        found: u64,
    },
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame: the frame starts at offset {offset}, input ends at offset {end}")]
    Truncated {
        /// Stream offset where the unfinished frame starts.
        offset: u64,
        /// Stream offset where the input ended.
        end: u64,
    },
    /// A frame cannot be encoded faithfully (e.g. a simple string containing CR or LF).
    #[error("cannot encode frame: {reason}")]
    Unencodable {
        /// What is wrong with the frame.
        reason: &'static str,
    },
    /// An I/O error from the transport (only produced by tokio-util's `Framed*` wrappers).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The stream offset the error points at, when it is a decoding error.
    pub fn offset(&self) -> Option<u64> {
        match *self {
            Error::InvalidTypeByte { offset, .. }
            | Error::InvalidInteger { offset, .. }
            | Error::InvalidLength { offset, .. }
            | Error::ExpectedCrlf { offset, .. }
            | Error::InvalidDouble { offset }
            | Error::InvalidBoolean { offset, .. }
            | Error::InvalidBigNumber { offset, .. }
            | Error::InvalidVerbatim { offset }
            | Error::UnexpectedEndMarker { offset }
            | Error::UnexpectedChunk { offset }
            | Error::ExpectedChunk { offset, .. }
            | Error::LimitExceeded { offset, .. }
            | Error::Truncated { offset, .. } => Some(offset),
            Error::Unencodable { .. } | Error::Io(_) => None,
        }
    }
}
