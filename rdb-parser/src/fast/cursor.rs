//! A light cursor for the fast path: every read returns `None` when the unit is incomplete
//! *or* invalid, and the key is then left to the state machine, which reports the exact
//! error. It accepts exactly what `Peek` accepts (length prefixes, string encodings, the
//! `max_buffered` limit), without building an error on the way.

use std::ops::Range;

/// A string header read by [`Cur::string`].
#[derive(Debug, Clone)]
pub(crate) enum S {
    Plain(Range<usize>),
    Int(i64),
    /// Compressed bytes, raw length, offset of the header (for errors).
    Lzf(Range<usize>, usize, usize),
}

/// A cursor over `data`.
#[derive(Debug, Clone)]
pub(crate) struct Cur<'a> {
    data: &'a [u8],
    pub(crate) pos: usize,
    limit: u64,
}

impl<'a> Cur<'a> {
    pub(crate) fn new(data: &'a [u8], pos: usize, limit: usize) -> Cur<'a> {
        Cur {
            data,
            pos,
            limit: limit as u64,
        }
    }

    /// The whole buffer.
    pub(crate) fn data(&self) -> &'a [u8] {
        self.data
    }

    #[inline(always)]
    pub(crate) fn u8(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    #[inline(always)]
    pub(crate) fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let b = self.data.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(b)
    }

    #[inline(always)]
    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Some(a)
    }

    #[inline(always)]
    pub(crate) fn u64_le(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.array()?))
    }

    /// A length field: `Ok(length)` or `Err(special encoding)`.
    #[inline(always)]
    fn length(&mut self) -> Option<Result<u64, u8>> {
        let b = self.u8()?;
        Some(match b >> 6 {
            0 => Ok(u64::from(b & 0x3f)),
            1 => Ok((u64::from(b & 0x3f) << 8) | u64::from(self.u8()?)),
            2 => match b {
                0x80 => Ok(u64::from(u32::from_be_bytes(self.array()?))),
                0x81 => Ok(u64::from_be_bytes(self.array()?)),
                _ => return None,
            },
            _ => Err(b & 0x3f),
        })
    }

    /// A plain length.
    #[inline(always)]
    pub(crate) fn len(&mut self) -> Option<u64> {
        self.length()?.ok()
    }

    /// A whole string (limits as `Peek::string`).
    #[inline(always)]
    pub(crate) fn string(&mut self) -> Option<S> {
        let at = self.pos;
        match self.length()? {
            Ok(n) => {
                if n > self.limit {
                    return None;
                }
                let start = self.pos;
                self.bytes(n as usize)?;
                Some(S::Plain(start..self.pos))
            }
            Err(0) => Some(S::Int(i64::from(self.u8()? as i8))),
            Err(1) => Some(S::Int(i64::from(i16::from_le_bytes(self.array()?)))),
            Err(2) => Some(S::Int(i64::from(i32::from_le_bytes(self.array()?)))),
            Err(3) => {
                let clen = self.len()?;
                let rlen = self.len()?;
                if clen.max(rlen) > self.limit {
                    return None;
                }
                let start = self.pos;
                self.bytes(clen as usize)?;
                Some(S::Lzf(start..self.pos, rlen as usize, at))
            }
            Err(_) => None,
        }
    }

    /// Skips a whole string (limits as [`Cur::string`]): a short plain string (the common
    /// case: a 6-bit length) in one bounds check, others through [`Cur::string`].
    #[inline(always)]
    pub(crate) fn skip_string(&mut self) -> Option<()> {
        let b = *self.data.get(self.pos)?;
        if b < 0x40 && u64::from(b) <= self.limit {
            let end = self.pos + 1 + usize::from(b);
            if end > self.data.len() {
                return None;
            }
            self.pos = end;
            return Some(());
        }
        self.string().map(|_| ())
    }

    /// An ASCII score (as `Peek::ascii_double`).
    #[inline]
    pub(crate) fn ascii_double(&mut self) -> Option<f64> {
        let n = self.u8()?;
        Some(match n {
            253 => f64::NAN,
            254 => f64::INFINITY,
            255 => f64::NEG_INFINITY,
            n => crate::encoding::double::parse_f64(self.bytes(usize::from(n))?)?,
        })
    }
}
