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
    if raw_len > input.len().saturating_mul(MAX_EXPANSION).saturating_add(1) {
        return Err("raw length larger than the compressed data can produce");
    }
    let mut out: Vec<u8> = Vec::with_capacity(raw_len);
    let mut i = 0;
    while i < input.len() {
        let ctrl = usize::from(input[i]);
        i += 1;
        if ctrl < 32 {
            let n = ctrl + 1;
            let lit = input
                .get(i..i + n)
                .ok_or("literal run past the end of the input")?;
            if out.len() + n > raw_len {
                return Err("output longer than the raw length");
            }
            out.extend_from_slice(lit);
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
            if back > out.len() {
                return Err("back-reference before the start of the output");
            }
            if out.len() + len > raw_len {
                return Err("output longer than the raw length");
            }
            let start = out.len() - back;
            if back >= len {
                out.extend_from_within(start..start + len);
            } else {
                for k in 0..len {
                    let b = out[start + k];
                    out.push(b);
                }
            }
        }
    }
    if out.len() != raw_len {
        return Err("output shorter than the raw length");
    }
    Ok(out)
}
