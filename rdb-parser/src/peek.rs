//! A cursor over the buffered, not yet consumed input.
//!
//! Every parse step of the decoder first *peeks* a complete unit (a length, a string, an
//! opcode with its arguments) without consuming anything; only when the unit is complete are
//! its bytes consumed. Units are small (headers) or bounded by [`crate::Options::max_buffered`],
//! and a step never looks past its unit, so a retry after more input costs O(unit header):
//! the whole decode stays linear even when bytes arrive one at a time.

use std::ops::Range;

use crate::error::Error;

/// Why a peek stopped.
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

/// Turns a peek result into the step's result: incomplete input returns `Ok(Step::NeedMore)`.
macro_rules! need {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err($crate::peek::Stop::Incomplete) => return Ok($crate::input::Step::NeedMore),
            Err($crate::peek::Stop::Err(e)) => return Err(e),
        }
    };
}
pub(crate) use need;

/// A cursor over `buf`, whose first byte is at absolute offset `base`.
#[derive(Debug)]
pub(crate) struct Peek<'a> {
    buf: &'a [u8],
    pos: usize,
    base: u64,
}

impl<'a> Peek<'a> {
    pub(crate) fn new(buf: &'a [u8], base: u64) -> Peek<'a> {
        Peek { buf, pos: 0, base }
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

    #[inline(always)]
    pub(crate) fn u8(&mut self) -> PResult<u8> {
        let b = *self.buf.get(self.pos).ok_or(Stop::Incomplete)?;
        self.pos += 1;
        Ok(b)
    }

    /// Takes `n` bytes; returns their range relative to the start of the cursor.
    #[inline(always)]
    pub(crate) fn take(&mut self, n: usize) -> PResult<Range<usize>> {
        if self.remaining() < n {
            return Err(Stop::Incomplete);
        }
        let r = self.pos..self.pos + n;
        self.pos += n;
        Ok(r)
    }

    #[inline(always)]
    pub(crate) fn bytes(&mut self, n: usize) -> PResult<&'a [u8]> {
        let r = self.take(n)?;
        Ok(&self.buf[r])
    }

    #[inline(always)]
    pub(crate) fn array<const N: usize>(&mut self) -> PResult<[u8; N]> {
        let b = self.bytes(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
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
}

/// A peek result as `Ok(None)` for incomplete input.
pub(crate) fn opt<T>(r: PResult<T>) -> Result<Option<T>, Error> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(Stop::Incomplete) => Ok(None),
        Err(Stop::Err(e)) => Err(e),
    }
}
