//! Scores: the old ASCII form (type 3) and strings holding numbers (ziplist/listpack scores).

use crate::error::Error;
use crate::event::Str;
use crate::peek::{PResult, Peek, Stop};

impl Peek<'_> {
    /// Reads an ASCII double: a length byte (253 NaN, 254 +inf, 255 -inf) and that many bytes.
    pub(crate) fn ascii_double(&mut self) -> PResult<f64> {
        let at = self.offset();
        let n = self.u8()?;
        Ok(match n {
            253 => f64::NAN,
            254 => f64::INFINITY,
            255 => f64::NEG_INFINITY,
            n => {
                let b = self.bytes(usize::from(n))?;
                parse_f64(b).ok_or_else(|| {
                    Stop::Err(Error::corrupt(
                        format!("score {:?}", String::from_utf8_lossy(b)),
                        at,
                    ))
                })?
            }
        })
    }
}

/// Parses a score as Redis writes it (`%.17g`, `inf`, `-inf`, `nan`).
pub(crate) fn parse_f64(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    match s {
        "inf" | "+inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        "nan" | "-nan" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// A score from a string element.
pub(crate) fn str_to_f64(s: &Str) -> Option<f64> {
    match s {
        Str::Int(i) => Some(*i as f64),
        Str::Bytes(b) => parse_f64(b),
    }
}
