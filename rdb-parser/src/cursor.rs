//! The one cursor every decoder path reads its input with: the resumable state machine
//! (`decoder.rs`, `types/*`), the one-pass fast path behind the [`crate::Visitor`]
//! (`fast/*`), DUMP payloads and the statistics all go through [`Cursor`].
//!
//! A cursor runs over a buffer whose first byte is at absolute offset `base` in the stream,
//! and never consumes anything itself: a step of the state machine *peeks* a complete unit
//! (a length, a string, an opcode with its arguments) and consumes its bytes only when the
//! unit is complete. Units are small (headers) or bounded by
//! [`crate::Options::max_buffered`], and a step never looks past its unit, so a retry after
//! more input costs O(unit header): the whole decode stays linear even when bytes arrive one
//! at a time.
//!
//! Two flavours of the same reads:
//! - the *checked* reads (`u8`, `bytes`, `length`, `string`, ... in
//!   `encoding/length.rs` and `encoding/double.rs`) return [`PResult`]: incomplete input is
//!   [`Stop::Incomplete`], invalid input an error naming what and where;
//! - the *quick* reads of the fast path (`next_u8`, `next_bytes`, `quick_len`,
//!   `quick_string`, ...) return `None`
//!   when the unit is incomplete *or* invalid, without building an error: the key is then
//!   left to the state machine, which reports the exact error. They are built on the same
//!   primitives and accept exactly what the checked reads accept.

use std::ops::Range;

use crate::encoding::length::StrRef;
use crate::error::Error;

/// Why a read stopped.
#[derive(Debug)]
pub(crate) enum Stop {
    /// More input is needed to complete the unit.
    Incomplete,
    /// The input is invalid.
    Err(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Stop {
        Stop::Err(e)
    }
}

pub(crate) type PResult<T> = Result<T, Stop>;

/// Turns a read result into the step's result: incomplete input returns `Ok(Step::NeedMore)`.
macro_rules! need {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err($crate::cursor::Stop::Incomplete) => return Ok($crate::input::Step::NeedMore),
            Err($crate::cursor::Stop::Err(e)) => return Err(e),
        }
    };
}
pub(crate) use need;

/// A cursor over `buf`, whose first byte is at absolute offset `base`.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    base: u64,
    /// The largest string the quick reads accept ([`crate::Options::max_buffered`]).
    limit: u64,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    pub(crate) fn new(buf: &'a [u8], base: u64) -> Cursor<'a> {
        Cursor {
            buf,
            pos: 0,
            base,
            limit: u64::MAX,
        }
    }

    /// A cursor of the fast path: at `pos` in `buf`, quick strings at most `limit` bytes.
    pub(crate) fn quick(buf: &'a [u8], base: u64, pos: usize, limit: usize) -> Cursor<'a> {
        Cursor {
            buf,
            pos,
            base,
            limit: limit as u64,
        }
    }

    /// The whole buffer.
    #[inline(always)]
    pub(crate) fn data(&self) -> &'a [u8] {
        self.buf
    }

    /// Bytes looked at so far (what the step will consume).
    #[inline(always)]
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Absolute offset of the cursor.
    #[inline(always)]
    pub(crate) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    #[inline(always)]
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    // The primitives, as `Option` (`None`: not enough input), without building a `Stop`.

    #[inline(always)]
    pub(crate) fn next_u8(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    /// Takes `n` bytes; returns their range in the buffer.
    #[inline(always)]
    pub(crate) fn next_range(&mut self, n: usize) -> Option<Range<usize>> {
        if self.remaining() < n {
            return None;
        }
        let r = self.pos..self.pos + n;
        self.pos += n;
        Some(r)
    }

    #[inline(always)]
    pub(crate) fn next_bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let r = self.next_range(n)?;
        Some(&self.buf[r])
    }

    #[inline(always)]
    pub(crate) fn next_array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.next_bytes(N)?);
        Some(a)
    }

    #[inline(always)]
    pub(crate) fn next_u64_le(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.next_array()?))
    }

    // The checked primitives: incomplete input is `Stop::Incomplete`.

    #[inline(always)]
    pub(crate) fn u8(&mut self) -> PResult<u8> {
        self.next_u8().ok_or(Stop::Incomplete)
    }

    /// Takes `n` bytes; returns their range in the buffer.
    #[inline(always)]
    pub(crate) fn take(&mut self, n: usize) -> PResult<Range<usize>> {
        self.next_range(n).ok_or(Stop::Incomplete)
    }

    #[inline(always)]
    pub(crate) fn bytes(&mut self, n: usize) -> PResult<&'a [u8]> {
        self.next_bytes(n).ok_or(Stop::Incomplete)
    }

    #[inline(always)]
    pub(crate) fn array<const N: usize>(&mut self) -> PResult<[u8; N]> {
        self.next_array().ok_or(Stop::Incomplete)
    }

    #[inline(always)]
    pub(crate) fn u32_le(&mut self) -> PResult<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    #[inline(always)]
    pub(crate) fn u64_le(&mut self) -> PResult<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    #[inline(always)]
    pub(crate) fn u64_be(&mut self) -> PResult<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    #[inline(always)]
    pub(crate) fn f64_le(&mut self) -> PResult<f64> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    // The quick reads of the fast path.

    /// A length field: `Ok(length)` or `Err(special encoding)` (as `length`).
    #[inline(always)]
    fn quick_length(&mut self) -> Option<Result<u64, u8>> {
        let b = self.next_u8()?;
        Some(match b >> 6 {
            0 => Ok(u64::from(b & 0x3f)),
            1 => Ok((u64::from(b & 0x3f) << 8) | u64::from(self.next_u8()?)),
            2 => match b {
                0x80 => Ok(u64::from(u32::from_be_bytes(self.next_array()?))),
                0x81 => Ok(u64::from_be_bytes(self.next_array()?)),
                _ => return None,
            },
            _ => Err(b & 0x3f),
        })
    }

    /// A plain length (as `len`).
    #[inline(always)]
    pub(crate) fn quick_len(&mut self) -> Option<u64> {
        self.quick_length()?.ok()
    }

    /// A whole string (as `string` with the cursor's limit).
    #[inline(always)]
    pub(crate) fn quick_string(&mut self) -> Option<StrRef> {
        let offset = self.offset();
        match self.quick_length()? {
            Ok(n) => {
                if n > self.limit {
                    return None;
                }
                Some(StrRef::Plain(self.next_range(n as usize)?))
            }
            Err(0) => Some(StrRef::Int(i64::from(self.next_u8()? as i8))),
            Err(1) => Some(StrRef::Int(i64::from(i16::from_le_bytes(
                self.next_array()?,
            )))),
            Err(2) => Some(StrRef::Int(i64::from(i32::from_le_bytes(
                self.next_array()?,
            )))),
            Err(3) => {
                let clen = self.quick_len()?;
                let rlen = self.quick_len()?;
                if clen.max(rlen) > self.limit {
                    return None;
                }
                let range = self.next_range(clen as usize)?;
                Some(StrRef::Lzf {
                    range,
                    rlen: rlen as usize,
                    offset,
                })
            }
            Err(_) => None,
        }
    }

    /// Skips a whole string (as [`Cursor::quick_string`]): a short plain string (the common
    /// case: a 6-bit length) in one bounds check.
    #[inline(always)]
    pub(crate) fn quick_skip_string(&mut self) -> Option<()> {
        let b = *self.buf.get(self.pos)?;
        if b < 0x40 && u64::from(b) <= self.limit {
            let end = self.pos + 1 + usize::from(b);
            if end > self.buf.len() {
                return None;
            }
            self.pos = end;
            return Some(());
        }
        self.quick_string().map(|_| ())
    }

    /// An ASCII score (as `ascii_double`).
    #[inline]
    pub(crate) fn quick_ascii_double(&mut self) -> Option<f64> {
        let n = self.next_u8()?;
        Some(match n {
            253 => f64::NAN,
            254 => f64::INFINITY,
            255 => f64::NEG_INFINITY,
            n => crate::encoding::double::parse_f64(self.next_bytes(usize::from(n))?)?,
        })
    }
}

/// A read result as `Ok(None)` for incomplete input.
pub(crate) fn opt<T>(r: PResult<T>) -> Result<Option<T>, Error> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(Stop::Incomplete) => Ok(None),
        Err(Stop::Err(e)) => Err(e),
    }
}
