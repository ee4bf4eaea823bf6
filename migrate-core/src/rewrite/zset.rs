//! Sorted sets: `ZADD key score member...` in chunks, with bit-exact scores.

use bytes::Bytes;
use rdb_parser::ZSetEntry;

use super::chunk::Batch;
use super::{Env, KeyCtx, Loss, Out};

#[derive(Debug)]
pub(crate) struct ZSetWriter {
    batch: Batch,
}

impl ZSetWriter {
    pub(crate) fn new(key: &Bytes) -> ZSetWriter {
        ZSetWriter {
            batch: Batch::new(b"ZADD", key),
        }
    }

    pub(crate) fn push(&mut self, env: &Env, ctx: &mut KeyCtx, out: Out<'_>, items: &[ZSetEntry]) {
        for e in items {
            if e.score.is_nan() {
                // Only corrupt input has NaN scores; no server accepts one.
                ctx.lose(Loss::NanScores { members: 1 });
                continue;
            }
            let score = Bytes::from(format_score(e.score));
            if self.batch.full_for(env, 2, score.len() + e.member.len()) {
                if let Some(cmd) = self.batch.take() {
                    ctx.emit(env, out, cmd);
                }
            }
            self.batch.push(score);
            self.batch.push(e.member.to_bytes());
        }
    }

    pub(crate) fn finish(mut self, env: &Env, ctx: &mut KeyCtx, out: Out<'_>) {
        if let Some(cmd) = self.batch.take() {
            ctx.emit(env, out, cmd);
        }
    }
}

/// Formats a score so that the server parses back the very same `f64`: the shortest
/// decimal that round-trips (exponent form for very large and very small magnitudes),
/// `inf` / `-inf` for infinities, `nan` for NaN (which no server accepts).
///
/// ```
/// use migrate_core::rewrite::format_score;
///
/// assert_eq!(format_score(1.0), "1");
/// assert_eq!(format_score(0.1), "0.1");
/// assert_eq!(format_score(-2.5e-300), "-2.5e-300");
/// assert_eq!(format_score(f64::INFINITY), "inf");
/// for x in [0.1 + 0.2, 1.0 / 3.0, f64::MAX, f64::MIN_POSITIVE, 5e-324, -0.0] {
///     assert_eq!(format_score(x).parse::<f64>().unwrap().to_bits(), x.to_bits());
/// }
/// ```
pub fn format_score(x: f64) -> String {
    let mut s = String::new();
    format_score_into(x, &mut s);
    s
}

/// [`format_score`] appended to `out` (no allocation once `out` has room).
pub(crate) fn format_score_into(x: f64, out: &mut String) {
    use std::fmt::Write;
    if x.is_nan() {
        out.push_str("nan");
    } else if x.is_infinite() {
        out.push_str(if x > 0.0 { "inf" } else { "-inf" });
    } else if x.fract() == 0.0 && x.abs() < 1e15 && !(x == 0.0 && x.is_sign_negative()) {
        // An integer (most scores): its digits, as `Display` writes them, by hand (no
        // formatting machinery).
        let mut buf = [0u8; 21];
        let n = x as i64;
        let mut i = buf.len();
        let mut m = n.unsigned_abs();
        loop {
            i -= 1;
            buf[i] = b'0' + (m % 10) as u8;
            m /= 10;
            if m == 0 {
                break;
            }
        }
        if n < 0 {
            i -= 1;
            buf[i] = b'-';
        }
        out.extend(buf[i..].iter().map(|&b| char::from(b)));
    } else {
        let a = x.abs();
        // Writing to a String cannot fail.
        let _ = if a != 0.0 && !(1e-5..1e16).contains(&a) {
            write!(out, "{x:e}")
        } else {
            write!(out, "{x}")
        };
    }
}

#[cfg(test)]
mod score_tests {
    #[test]
    fn integer_scores_are_the_display_text() {
        let mut x: i64 = 1;
        let mut values = vec![
            0i64,
            1,
            -1,
            9,
            10,
            -10,
            999_999_999_999_999,
            -999_999_999_999_999,
        ];
        while x < 1_000_000_000_000_000 {
            values.extend([x - 1, x, x + 1, -x]);
            x *= 10;
        }
        for v in values {
            let f = v as f64;
            if f.abs() < 1e15 {
                assert_eq!(super::format_score(f), format!("{}", f as i64), "{v}");
            }
        }
    }
}
