//! LZF decompression (the format of `lzf_d.c`), in safe Rust.
//!
//! Why not the `lzf` crate: measured on this machine (see the crate docs), the safe loop
//! below is as fast for the short strings RDB files hold, needs no C toolchain, and checks
//! every back-reference and the output size so that corrupt input is an error, never an
//! out-of-bounds access or an allocation larger than the input can produce.

/// Longest output one input byte can produce: a 3-byte back-reference emits at most 264
/// bytes, so no valid stream expands by more than this factor.
pub const MAX_EXPANSION: usize = 132;

/// Decompresses `input`, which must produce exactly `raw_len` bytes.
///
/// `raw_len` is checked against `input.len() * MAX_EXPANSION` before anything is allocated.
pub fn decompress(input: &[u8], raw_len: usize) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::new();
    decompress_into(input, raw_len, &mut out)?;
    Ok(out)
}

/// [`decompress`] into `out` (its contents replaced), so that a caller can reuse one buffer.
pub fn decompress_into(
    input: &[u8],
    raw_len: usize,
    out: &mut Vec<u8>,
) -> Result<(), &'static str> {
    out.clear();
    decompress_scratch(input, raw_len, out)?;
    out.truncate(raw_len);
    Ok(())
}

/// Bytes the decoder may write past the output (whole-block copies); kept in the buffer.
const SLACK: usize = 32;

/// [`decompress`] into a reused buffer whose length is left at least `raw_len + SLACK`
/// (its old contents are overwritten, never read, so it is not cleared): returns the output.
///
/// Copies go in fixed-size blocks (32-byte literals, 16-byte back-references), which may
/// write past the end of the current run into bytes that later runs overwrite before
/// anything reads them; the slack keeps the last block inside the buffer.
pub(crate) fn decompress_scratch<'a>(
    input: &[u8],
    raw_len: usize,
    out: &'a mut Vec<u8>,
) -> Result<&'a [u8], &'static str> {
    if raw_len > input.len().saturating_mul(MAX_EXPANSION).saturating_add(1) {
        return Err("raw length larger than the compressed data can produce");
    }
    if out.len() < raw_len + SLACK {
        out.resize(raw_len + SLACK, 0);
    }
    let buf = &mut out[..raw_len + SLACK];
    let mut o = 0;
    let mut i = 0;
    while i < input.len() {
        let ctrl = usize::from(input[i]);
        i += 1;
        if ctrl < 32 {
            let n = ctrl + 1;
            if i + n > input.len() {
                return Err("literal run past the end of the input");
            }
            if o + n > raw_len {
                return Err("output longer than the raw length");
            }
            // o + n <= raw_len, so a 32-byte block ends within the slack.
            if i + 32 <= input.len() {
                buf[o..o + 32].copy_from_slice(&input[i..i + 32]);
            } else {
                buf[o..o + n].copy_from_slice(&input[i..i + n]);
            }
            o += n;
            i += n;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += usize::from(*input.get(i).ok_or("truncated back-reference")?);
                i += 1;
            }
            len += 2;
            let lo = usize::from(*input.get(i).ok_or("truncated back-reference")?);
            i += 1;
            let back = ((ctrl & 0x1f) << 8) + lo + 1;
            if back > o {
                return Err("back-reference before the start of the output");
            }
            if o + len > raw_len {
                return Err("output longer than the raw length");
            }
            let end = o + len;
            if back >= 16 {
                // Each 16-byte source block lies before its destination: already written.
                let mut d = o;
                while d < end {
                    buf.copy_within(d - back..d - back + 16, d);
                    d += 16;
                }
            } else if back >= 8 {
                let mut d = o;
                while d < end {
                    buf.copy_within(d - back..d - back + 8, d);
                    d += 8;
                }
            } else {
                // A short period: byte by byte, each byte repeating the one `back` before.
                for d in o..end {
                    buf[d] = buf[d - back];
                }
            }
            o = end;
        }
    }
    if o != raw_len {
        return Err("output shorter than the raw length");
    }
    Ok(&out[..raw_len])
}
