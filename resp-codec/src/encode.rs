//! Encoding frames and commands into a `BytesMut`.

use bytes::{BufMut, BytesMut};

use crate::error::Error;
use crate::frame::Frame;

/// Writes `n` in decimal.
#[inline]
pub(crate) fn put_u64(dst: &mut BytesMut, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    dst.extend_from_slice(&buf[i..]);
}

/// Writes `n` in decimal, with a `-` when negative.
#[inline]
pub(crate) fn put_i64(dst: &mut BytesMut, n: i64) {
    if n < 0 {
        dst.put_u8(b'-');
    }
    put_u64(dst, n.unsigned_abs());
}

/// Number of decimal digits of `n`.
#[inline]
pub(crate) fn digits(mut n: u64) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// Writes `<prefix><n>\r\n`.
#[inline]
pub(crate) fn put_header(dst: &mut BytesMut, prefix: u8, n: usize) {
    dst.put_u8(prefix);
    put_u64(dst, n as u64);
    dst.extend_from_slice(b"\r\n");
}

/// Writes `$<len>\r\n<data>\r\n`.
#[inline]
pub(crate) fn put_bulk(dst: &mut BytesMut, data: &[u8]) {
    put_header(dst, b'$', data.len());
    dst.extend_from_slice(data);
    dst.extend_from_slice(b"\r\n");
}

/// Encodes a command (an array of bulk strings) into `dst`.
///
/// ```
/// use bytes::BytesMut;
///
/// let mut buf = BytesMut::new();
/// resp_codec::encode_command(&mut buf, &["SET", "k", "v"]);
/// assert_eq!(&buf[..], b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
/// ```
pub fn encode_command<A: AsRef<[u8]>>(dst: &mut BytesMut, args: &[A]) {
    dst.reserve(command_len(args));
    put_header(dst, b'*', args.len());
    for a in args {
        put_bulk(dst, a.as_ref());
    }
}

/// The encoded length of a command: what [`encode_command`] writes.
pub fn command_len<A: AsRef<[u8]>>(args: &[A]) -> usize {
    let mut n = 3 + digits(args.len() as u64);
    for a in args {
        let l = a.as_ref().len();
        n += 5 + digits(l as u64) + l;
    }
    n
}

fn check_line(text: &[u8], reason: &'static str) -> Result<(), Error> {
    if memchr::memchr2(b'\r', b'\n', text).is_some() {
        return Err(Error::Unencodable { reason });
    }
    Ok(())
}

fn put_line(dst: &mut BytesMut, prefix: u8, text: &[u8]) {
    dst.put_u8(prefix);
    dst.extend_from_slice(text);
    dst.extend_from_slice(b"\r\n");
}

fn put_double(dst: &mut BytesMut, d: f64) {
    use std::fmt::Write;
    struct W<'a>(&'a mut BytesMut);
    impl Write for W<'_> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.extend_from_slice(s.as_bytes());
            Ok(())
        }
    }
    dst.put_u8(b',');
    if d.is_nan() {
        dst.extend_from_slice(b"nan");
    } else if d.is_infinite() {
        dst.extend_from_slice(if d > 0.0 { b"inf" } else { b"-inf" });
    } else {
        let a = d.abs();
        // Shortest round-trip form either way; exponent form keeps huge and tiny values short.
        let _ = if a != 0.0 && !(1e-5..1e16).contains(&a) {
            write!(W(dst), "{d:e}")
        } else {
            write!(W(dst), "{d}")
        };
    }
    dst.extend_from_slice(b"\r\n");
}

fn put_pairs(dst: &mut BytesMut, prefix: u8, pairs: &[(Frame, Frame)]) -> Result<(), Error> {
    put_header(dst, prefix, pairs.len());
    for (k, v) in pairs {
        k.encode(dst)?;
        v.encode(dst)?;
    }
    Ok(())
}

fn put_list(dst: &mut BytesMut, prefix: u8, items: &[Frame]) -> Result<(), Error> {
    put_header(dst, prefix, items.len());
    for f in items {
        f.encode(dst)?;
    }
    Ok(())
}

impl Frame {
    /// Appends the frame's wire form to `dst`.
    ///
    /// Every variant is written the way a server sends it (the three nulls are kept apart; see
    /// [`Frame`]). Streamed forms are written length-prefixed. Fails with
    /// [`Error::Unencodable`] when a simple string, simple error or big number contains CR or LF
    /// (that would corrupt the stream); `dst` may then hold a partial encoding.
    ///
    /// Encoding recurses once per nesting level; frames produced by the decoder are bounded by
    /// [`Limits::max_depth`](crate::Limits::max_depth).
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use resp_codec::Frame;
    ///
    /// let mut buf = BytesMut::new();
    /// Frame::Array(vec![Frame::NullBulkString, Frame::Null, Frame::Double(1.5)])
    ///     .encode(&mut buf)
    ///     .unwrap();
    /// assert_eq!(&buf[..], b"*3\r\n$-1\r\n_\r\n,1.5\r\n");
    /// ```
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), Error> {
        match self {
            Frame::SimpleString(s) => {
                check_line(s, "simple string contains CR or LF")?;
                put_line(dst, b'+', s);
            }
            Frame::SimpleError(s) => {
                check_line(s, "simple error contains CR or LF")?;
                put_line(dst, b'-', s);
            }
            Frame::Integer(i) => {
                dst.put_u8(b':');
                put_i64(dst, *i);
                dst.extend_from_slice(b"\r\n");
            }
            Frame::BulkString(b) => put_bulk(dst, b),
            Frame::Null => dst.extend_from_slice(b"_\r\n"),
            Frame::NullBulkString => dst.extend_from_slice(b"$-1\r\n"),
            Frame::NullArray => dst.extend_from_slice(b"*-1\r\n"),
            Frame::Array(items) => put_list(dst, b'*', items)?,
            Frame::Double(d) => put_double(dst, *d),
            Frame::Boolean(b) => dst.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Frame::BlobError(b) => {
                put_header(dst, b'!', b.len());
                dst.extend_from_slice(b);
                dst.extend_from_slice(b"\r\n");
            }
            Frame::VerbatimString { format, data } => {
                put_header(dst, b'=', data.len() + 4);
                dst.extend_from_slice(format);
                dst.put_u8(b':');
                dst.extend_from_slice(data);
                dst.extend_from_slice(b"\r\n");
            }
            Frame::BigNumber(n) => {
                check_line(n, "big number contains CR or LF")?;
                put_line(dst, b'(', n);
            }
            Frame::Map(pairs) => put_pairs(dst, b'%', pairs)?,
            Frame::Set(items) => put_list(dst, b'~', items)?,
            Frame::Attribute { attributes, data } => {
                put_pairs(dst, b'|', attributes)?;
                data.encode(dst)?;
            }
            Frame::Push(items) => put_list(dst, b'>', items)?,
        }
        Ok(())
    }
}
