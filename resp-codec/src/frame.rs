//! The [`Frame`] type: one decoded RESP2/RESP3 value.

use bytes::Bytes;

/// One RESP2 or RESP3 value.
///
/// Byte payloads are [`Bytes`] slices of the decoder's input buffer: decoding a bulk string does
/// not copy it.
///
/// # Nulls
///
/// RESP has three null encodings and a server picks one depending on the protocol version and
/// the command, so the frame keeps which one arrived and the encoder writes it back unchanged:
///
/// | wire | variant | sent by |
/// |---|---|---|
/// | `$-1\r\n` | [`Frame::NullBulkString`] | RESP2 servers for a missing string (`GET nokey`) |
/// | `*-1\r\n` | [`Frame::NullArray`] | RESP2 servers for a missing aggregate (`BLPOP` timeout, aborted `EXEC`) |
/// | `_\r\n` | [`Frame::Null`] | RESP3 servers, for every null |
///
/// Use [`Frame::is_null`] when the distinction does not matter.
///
/// # Streamed forms
///
/// RESP3 streamed strings (`$?` + `;` chunks) and streamed aggregates (`*?`, `~?`, `%?` ended by
/// `.`) decode to the ordinary [`BulkString`](Frame::BulkString), [`Array`](Frame::Array),
/// [`Set`](Frame::Set) and [`Map`](Frame::Map) (a streamed string's chunks are joined, its only
/// copy); the encoder writes the length-prefixed form. The decoder still reports the wire length
/// of what actually arrived.
///
/// # Attributes
///
/// A RESP3 attribute (`|`) annotates the value that follows it, so it decodes to
/// [`Frame::Attribute`] holding both; it does not count as an element of an enclosing aggregate.
///
/// # Equality
///
/// `PartialEq` compares doubles as `f64`: a frame holding `Double(NaN)` is not equal to itself.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `+<text>\r\n`.
    SimpleString(Bytes),
    /// `-<text>\r\n`: a server error reply (e.g. `ERR unknown command`). Data, not a decoder error.
    SimpleError(Bytes),
    /// `:<i64>\r\n`.
    Integer(i64),
    /// `$<len>\r\n<bytes>\r\n` (or a RESP3 streamed string).
    BulkString(Bytes),
    /// RESP3 null: `_\r\n`.
    Null,
    /// RESP2 null bulk string: `$-1\r\n`.
    NullBulkString,
    /// RESP2 null array: `*-1\r\n`.
    NullArray,
    /// `*<n>\r\n` followed by `n` frames (or a streamed `*?` array).
    Array(Vec<Frame>),
    /// RESP3 double: `,<float>\r\n`, including `inf`, `-inf` and `nan`.
    Double(f64),
    /// RESP3 boolean: `#t\r\n` or `#f\r\n`.
    Boolean(bool),
    /// RESP3 blob error: `!<len>\r\n<bytes>\r\n`. Data, not a decoder error.
    BlobError(Bytes),
    /// RESP3 verbatim string: `=<len>\r\n<fmt>:<bytes>\r\n`, e.g. format `txt` or `mkd`.
    VerbatimString {
        /// The three-byte format (`txt`, `mkd`).
        format: [u8; 3],
        /// The text after `<fmt>:`.
        data: Bytes,
    },
    /// RESP3 big number: `(<digits>\r\n`, kept as its decimal text (optional sign, digits).
    BigNumber(Bytes),
    /// RESP3 map: `%<n>\r\n` followed by `n` key/value pairs, in wire order (or a streamed `%?`).
    Map(Vec<(Frame, Frame)>),
    /// RESP3 set: `~<n>\r\n` followed by `n` frames, in wire order (or a streamed `~?`).
    Set(Vec<Frame>),
    /// RESP3 attribute `|<n>\r\n` + `n` pairs, together with the value it annotates.
    Attribute {
        /// The attribute pairs.
        attributes: Vec<(Frame, Frame)>,
        /// The annotated value that followed the attribute on the wire.
        data: Box<Frame>,
    },
    /// RESP3 push: `><n>\r\n` followed by `n` frames (pub/sub messages, invalidations).
    Push(Vec<Frame>),
}

impl Frame {
    /// A bulk string frame from anything convertible into [`Bytes`].
    pub fn bulk(data: impl Into<Bytes>) -> Frame {
        Frame::BulkString(data.into())
    }

    /// A simple string frame, e.g. `Frame::simple("OK")`.
    pub fn simple(text: impl Into<Bytes>) -> Frame {
        Frame::SimpleString(text.into())
    }

    /// An array of bulk strings: the form of a command.
    pub fn command<A: AsRef<[u8]>>(args: &[A]) -> Frame {
        Frame::Array(
            args.iter()
                .map(|a| Frame::BulkString(Bytes::copy_from_slice(a.as_ref())))
                .collect(),
        )
    }

    /// True for all three null forms ([`Null`](Frame::Null), [`NullBulkString`](Frame::NullBulkString),
    /// [`NullArray`](Frame::NullArray)).
    pub fn is_null(&self) -> bool {
        matches!(self, Frame::Null | Frame::NullBulkString | Frame::NullArray)
    }

    /// True for server error replies ([`SimpleError`](Frame::SimpleError), [`BlobError`](Frame::BlobError)).
    pub fn is_error(&self) -> bool {
        matches!(self, Frame::SimpleError(_) | Frame::BlobError(_))
    }

    /// The bytes of a simple string, simple error, bulk string, blob error, verbatim string
    /// (without its format) or big number.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Frame::SimpleString(b)
            | Frame::SimpleError(b)
            | Frame::BulkString(b)
            | Frame::BlobError(b)
            | Frame::BigNumber(b)
            | Frame::VerbatimString { data: b, .. } => Some(b),
            _ => None,
        }
    }

    /// The value of an [`Integer`](Frame::Integer).
    pub fn as_integer(&self) -> Option<i64> {
        match *self {
            Frame::Integer(i) => Some(i),
            _ => None,
        }
    }

    /// The elements of an array, set or push.
    pub fn as_slice(&self) -> Option<&[Frame]> {
        match self {
            Frame::Array(v) | Frame::Set(v) | Frame::Push(v) => Some(v),
            _ => None,
        }
    }

    /// The arguments of a command: `Some` when this is a non-empty [`Array`](Frame::Array) whose
    /// elements are all [`BulkString`](Frame::BulkString)s (how clients and masters send commands).
    ///
    /// ```
    /// use resp_codec::Frame;
    ///
    /// let f = Frame::command(&["SET", "k", "v"]);
    /// let args = f.as_command().unwrap();
    /// assert_eq!(args.len(), 3);
    /// assert!(args.name().eq_ignore_ascii_case(b"set"));
    /// assert_eq!(args.iter().collect::<Vec<_>>(), [&b"SET"[..], b"k", b"v"]);
    /// assert!(Frame::Integer(1).as_command().is_none());
    /// ```
    pub fn as_command(&self) -> Option<CommandArgs<'_>> {
        match self {
            Frame::Array(items)
                if !items.is_empty() && items.iter().all(|f| matches!(f, Frame::BulkString(_))) =>
            {
                Some(CommandArgs { items })
            }
            _ => None,
        }
    }

    /// Takes the arguments of a command out of the frame without copying them
    /// (same condition as [`as_command`](Frame::as_command)); gives the frame back otherwise.
    pub fn into_command(self) -> Result<Vec<Bytes>, Frame> {
        if self.as_command().is_none() {
            return Err(self);
        }
        match self {
            Frame::Array(items) => Ok(items
                .into_iter()
                .map(|f| match f {
                    Frame::BulkString(b) => b,
                    _ => Bytes::new(), // unreachable: checked by as_command
                })
                .collect()),
            other => Err(other),
        }
    }
}

/// A validated view of a command frame's arguments; see [`Frame::as_command`].
#[derive(Clone, Copy, Debug)]
pub struct CommandArgs<'a> {
    items: &'a [Frame],
}

impl<'a> CommandArgs<'a> {
    /// The number of arguments, the command name included.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Always false: a command has at least its name.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The command name as sent (compare with `eq_ignore_ascii_case`).
    pub fn name(&self) -> &'a [u8] {
        self.get(0).unwrap_or_default()
    }

    /// The `i`th argument (0 is the name).
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        match self.items.get(i) {
            Some(Frame::BulkString(b)) => Some(b),
            _ => None,
        }
    }

    /// The `i`th argument as a shared [`Bytes`] handle (a reference-count increment, no copy).
    pub fn get_bytes(&self, i: usize) -> Option<&'a Bytes> {
        match self.items.get(i) {
            Some(Frame::BulkString(b)) => Some(b),
            _ => None,
        }
    }

    /// The arguments in order, the name first.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + DoubleEndedIterator + 'a {
        self.items.iter().map(|f| match f {
            Frame::BulkString(b) => &b[..],
            _ => &[][..],
        })
    }
}
