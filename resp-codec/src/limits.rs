//! Decoder limits: named configuration with Redis's defaults.

use std::fmt;

/// Bounds the decoder enforces on untrusted input.
///
/// The defaults are the ones a Redis server applies to its clients (`proto-max-bulk-len`,
/// `PROTO_INLINE_MAX_SIZE`, the `INT_MAX` multibulk bound) plus a nesting depth of 1024, which
/// no real reply approaches. Exceeding a limit is reported as
/// [`Error::LimitExceeded`](crate::Error::LimitExceeded) naming the [`Limit`] and the byte offset.
///
/// ```
/// use resp_codec::Limits;
///
/// let mut limits = Limits::default();
/// assert_eq!(limits.max_bulk_len, 512 * 1024 * 1024);
/// limits.max_depth = 16;
/// let limits = limits.with_max_bulk_len(1 << 20);
/// assert_eq!(limits.max_bulk_len, 1 << 20);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Limits {
    /// Largest bulk string, blob error or verbatim string payload, and the largest total of a
    /// streamed (`$?`) string. Redis: `proto-max-bulk-len`, 512 MiB.
    pub max_bulk_len: usize,
    /// Longest line: simple strings, simple errors, doubles, big numbers and inline commands,
    /// CRLF excluded. Redis: `PROTO_INLINE_MAX_SIZE`, 64 KiB.
    pub max_line_len: usize,
    /// Deepest nesting of aggregates (a top-level array is depth 1). Attributes count as one
    /// level. The decoder never recurses, so this bounds memory, not stack use.
    pub max_depth: usize,
    /// Most elements of one array, set or push, or pairs of one map or attribute.
    /// Redis rejects a multibulk length above `INT_MAX`.
    pub max_aggregate_len: usize,
}

impl Limits {
    /// Redis's `proto-max-bulk-len` default: 512 MiB.
    pub const DEFAULT_MAX_BULK_LEN: usize = 512 * 1024 * 1024;
    /// Redis's `PROTO_INLINE_MAX_SIZE`: 64 KiB.
    pub const DEFAULT_MAX_LINE_LEN: usize = 64 * 1024;
    /// Default nesting depth: 1024.
    pub const DEFAULT_MAX_DEPTH: usize = 1024;
    /// Redis's multibulk bound: `INT_MAX` (2³¹ − 1).
    pub const DEFAULT_MAX_AGGREGATE_LEN: usize = i32::MAX as usize;

    /// The defaults (same as [`Limits::default`]).
    pub const fn new() -> Self {
        Limits {
            max_bulk_len: Self::DEFAULT_MAX_BULK_LEN,
            max_line_len: Self::DEFAULT_MAX_LINE_LEN,
            max_depth: Self::DEFAULT_MAX_DEPTH,
            max_aggregate_len: Self::DEFAULT_MAX_AGGREGATE_LEN,
        }
    }

    /// Sets [`max_bulk_len`](Self::max_bulk_len).
    pub const fn with_max_bulk_len(mut self, n: usize) -> Self {
        self.max_bulk_len = n;
        self
    }

    /// Sets [`max_line_len`](Self::max_line_len).
    pub const fn with_max_line_len(mut self, n: usize) -> Self {
        self.max_line_len = n;
        self
    }

    /// Sets [`max_depth`](Self::max_depth).
    pub const fn with_max_depth(mut self, n: usize) -> Self {
        self.max_depth = n;
        self
    }

    /// Sets [`max_aggregate_len`](Self::max_aggregate_len).
    pub const fn with_max_aggregate_len(mut self, n: usize) -> Self {
        self.max_aggregate_len = n;
        self
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::new()
    }
}

/// Which of the [`Limits`] was exceeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// [`Limits::max_bulk_len`].
    BulkLen,
    /// [`Limits::max_line_len`].
    LineLen,
    /// [`Limits::max_depth`].
    Depth,
    /// [`Limits::max_aggregate_len`].
    AggregateLen,
}

impl Limit {
    /// The field name in [`Limits`], e.g. `"max_bulk_len"`.
    pub const fn name(self) -> &'static str {
        match self {
            Limit::BulkLen => "max_bulk_len",
            Limit::LineLen => "max_line_len",
            Limit::Depth => "max_depth",
            Limit::AggregateLen => "max_aggregate_len",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
