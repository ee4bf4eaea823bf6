//! Scores: the old ASCII form (type 3) and strings holding numbers (ziplist/listpack scores).

use crate::cursor::{Cursor, PResult, Stop};
use crate::error::Error;
use crate::event::Str;

impl Cursor<'_> {
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
    if let Some(v) = parse_simple(b) {
        return Some(v);
    }
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

/// Powers of ten exactly representable as `f64`.
const POW10: [f64; 16] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// The exact fast path (Clinger's): `[-]digits[.digits]` with at most 15 digits is an
/// integer below 2^53 divided by a power of ten, both exact, so one IEEE division gives the
/// correctly rounded result, the same as `str::parse`. Anything else returns `None`.
#[inline]
fn parse_simple(b: &[u8]) -> Option<f64> {
    let (neg, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    let mut m: u64 = 0;
    let mut n = 0;
    let mut frac: Option<usize> = None;
    for (i, &c) in digits.iter().enumerate() {
        match c {
            b'0'..=b'9' => {
                m = m * 10 + u64::from(c - b'0');
                n += 1;
            }
            b'.' if frac.is_none() && i > 0 && i + 1 < digits.len() => frac = Some(i),
            _ => return None,
        }
    }
    if n > 15 {
        return None;
    }
    let scale = frac.map_or(0, |i| digits.len() - i - 1);
    let v = m as f64 / POW10[scale];
    Some(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::parse_f64;

    #[test]
    fn fast_path_equals_std() {
        let mut cases: Vec<String> = [
            "0",
            "-0",
            "1",
            "-1",
            "0.5",
            "1.",
            ".5",
            "+5",
            "123.456",
            "-123.456",
            "999999999999999",
            "9999999999999999",
            "0.000000000000001",
            "1e3",
            "1.5e-3",
            "142857.14285714287",
            "inf",
            "-inf",
            "nan",
            "1.2.3",
            "--1",
            "-",
            "",
            "12a",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = 1 + (x % 16) as usize;
            let mut s: String = (0..digits)
                .map(|i| char::from(b'0' + ((x >> (i * 4)) % 10) as u8))
                .collect();
            let dot = (x >> 60) as usize % (digits + 1);
            if dot > 0 && dot < digits {
                s.insert(dot, '.');
            }
            if x & 1 == 1 {
                s.insert(0, '-');
            }
            cases.push(s);
        }
        for c in cases {
            let want = match c.as_str() {
                "inf" | "+inf" => Some(f64::INFINITY),
                "-inf" => Some(f64::NEG_INFINITY),
                "nan" | "-nan" => Some(f64::NAN),
                s => s.parse::<f64>().ok(),
            };
            let got = parse_f64(c.as_bytes());
            assert_eq!(
                got.map(f64::to_bits),
                want.map(f64::to_bits),
                "{c:?}: {got:?} vs {want:?}"
            );
        }
    }
}
