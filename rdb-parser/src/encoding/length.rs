//! RDB lengths (6/14/32/64-bit) and strings (raw, integer, LZF).

use std::ops::Range;

use bytes::Bytes;

use crate::cursor::{Cursor, PResult, Stop};
use crate::encoding::lzf;
use crate::error::Error;
use crate::event::Str;

/// A decoded length field: a plain length, or the sub-encoding of a special string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Len {
    Plain(u64),
    /// `11xxxxxx`: 0 int8, 1 int16, 2 int32, 3 LZF.
    Special(u8),
}

impl Cursor<'_> {
    /// Reads a length field.
    #[inline]
    pub(crate) fn length(&mut self) -> PResult<Len> {
        let at = self.offset();
        let b = self.u8()?;
        Ok(match b >> 6 {
            0 => Len::Plain(u64::from(b & 0x3f)),
            1 => Len::Plain((u64::from(b & 0x3f) << 8) | u64::from(self.u8()?)),
            2 => match b {
                0x80 => Len::Plain(u64::from(u32::from_be_bytes(self.array()?))),
                0x81 => Len::Plain(self.u64_be()?),
                _ => {
                    return Err(Stop::Err(Error::corrupt(
                        format!("length prefix {b:#04x}"),
                        at,
                    )))
                }
            },
            _ => Len::Special(b & 0x3f),
        })
    }

    /// Reads a plain length; a special encoding is an error naming `what`.
    #[inline]
    pub(crate) fn len(&mut self, what: &str) -> PResult<u64> {
        let at = self.offset();
        match self.length()? {
            Len::Plain(n) => Ok(n),
            Len::Special(s) => Err(Stop::Err(Error::corrupt(
                format!("{what}: expected a length, found special encoding {s}"),
                at,
            ))),
        }
    }

    /// Reads a string header.
    #[inline]
    pub(crate) fn string_header(&mut self) -> PResult<StrHeader> {
        let at = self.offset();
        Ok(match self.length()? {
            Len::Plain(n) => StrHeader::Plain(n),
            Len::Special(0) => StrHeader::Int(i64::from(self.u8()? as i8)),
            Len::Special(1) => StrHeader::Int(i64::from(i16::from_le_bytes(self.array()?))),
            Len::Special(2) => StrHeader::Int(i64::from(i32::from_le_bytes(self.array()?))),
            Len::Special(3) => {
                let clen = self.len("LZF compressed length")?;
                let rlen = self.len("LZF raw length")?;
                StrHeader::Lzf {
                    clen,
                    rlen,
                    offset: at,
                }
            }
            Len::Special(s) => {
                return Err(Stop::Err(Error::corrupt(
                    format!("unknown string encoding {s}"),
                    at,
                )))
            }
        })
    }

    /// Reads a whole string of at most `limit` bytes (raw or decompressed).
    #[inline]
    pub(crate) fn string(&mut self, limit: usize) -> PResult<StrRef> {
        let at = self.offset();
        match self.string_header()? {
            StrHeader::Plain(n) => {
                check_limit("string", n, limit, at)?;
                Ok(StrRef::Plain(self.take(n as usize)?))
            }
            StrHeader::Int(i) => Ok(StrRef::Int(i)),
            StrHeader::Lzf { clen, rlen, offset } => {
                check_limit("LZF string", rlen.max(clen), limit, at)?;
                let range = self.take(clen as usize)?;
                Ok(StrRef::Lzf {
                    range,
                    rlen: rlen as usize,
                    offset,
                })
            }
        }
    }

    /// Skips a whole string (no decompression); returns its raw range.
    #[inline]
    pub(crate) fn skip_string(&mut self, limit: usize) -> PResult<()> {
        let at = self.offset();
        match self.string_header()? {
            StrHeader::Plain(n) | StrHeader::Lzf { clen: n, .. } => {
                check_limit("string", n, limit, at)?;
                self.take(n as usize)?;
            }
            StrHeader::Int(_) => {}
        }
        Ok(())
    }
}

pub(crate) fn check_limit(what: &'static str, n: u64, limit: usize, at: u64) -> PResult<()> {
    if n > limit as u64 {
        return Err(Stop::Err(Error::limit(what, n, limit as u64, at)));
    }
    Ok(())
}

/// A string header.
#[derive(Debug, Clone, Copy)]
pub(crate) enum StrHeader {
    Plain(u64),
    Int(i64),
    Lzf { clen: u64, rlen: u64, offset: u64 },
}

/// A complete string found by a peek; resolved against the consumed bytes.
#[derive(Debug, Clone)]
pub(crate) enum StrRef {
    Plain(Range<usize>),
    Int(i64),
    Lzf {
        range: Range<usize>,
        rlen: usize,
        offset: u64,
    },
}

impl StrRef {
    /// The string, given the consumed bytes the peek ran over.
    pub(crate) fn resolve(self, chunk: &Bytes) -> Result<Str, Error> {
        Ok(match self {
            StrRef::Plain(r) => Str::Bytes(chunk.slice(r)),
            StrRef::Int(i) => Str::Int(i),
            StrRef::Lzf {
                range,
                rlen,
                offset,
            } => Str::Bytes(
                lzf::decompress(&chunk[range], rlen)
                    .map_err(|what| Error::corrupt(format!("LZF data: {what}"), offset))?
                    .into(),
            ),
        })
    }

    /// The string of an integer or LZF reference, given the bytes the peek ran over (a
    /// plain string is copied: use [`StrRef::resolve`] for those).
    pub(crate) fn resolve_slice(self, chunk: &[u8]) -> Result<Str, Error> {
        Ok(match self {
            StrRef::Plain(r) => Str::Bytes(Bytes::copy_from_slice(&chunk[r])),
            StrRef::Int(i) => Str::Int(i),
            StrRef::Lzf {
                range,
                rlen,
                offset,
            } => Str::Bytes(
                lzf::decompress(&chunk[range], rlen)
                    .map_err(|what| Error::corrupt(format!("LZF data: {what}"), offset))?
                    .into(),
            ),
        })
    }

    /// The same reference for a buffer whose first `n` bytes were consumed.
    pub(crate) fn shifted(self, n: usize) -> StrRef {
        match self {
            StrRef::Plain(r) => StrRef::Plain(r.start - n..r.end - n),
            StrRef::Int(i) => StrRef::Int(i),
            StrRef::Lzf {
                range,
                rlen,
                offset,
            } => StrRef::Lzf {
                range: range.start - n..range.end - n,
                rlen,
                offset,
            },
        }
    }

    /// The string's bytes (integers as decimal text).
    pub(crate) fn resolve_bytes(self, chunk: &Bytes) -> Result<Bytes, Error> {
        match self {
            StrRef::Plain(r) => Ok(chunk.slice(r)),
            other => Ok(other.resolve(chunk)?.to_bytes()),
        }
    }
}
