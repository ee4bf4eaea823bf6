//! LZF decompression (the format of `lzf_d.c`), in safe Rust.
//!
//! Why not the `lzf` crate: measured on this machine (see the crate docs), the safe loop
//! below is as fast for the short strings RDB files hold, needs no C toolchain, and checks
//! every back-reference and the output size so that corrupt input is an error, never an
//! out-of-bounds access or an allocation larger than the input can produce.

/// Longest output one input byte can produce: a 3-byte back-reference emits at most 264
/// bytes, so no valid stream expands by more than this factor.
pub(crate) const MAX_EXPANSION: usize = 132;

/// Decompresses `input`, which must produce exactly `raw_len` bytes.
///
/// `raw_len` is checked against `input.len() * MAX_EXPANSION` before anything is allocated.
pub(crate) fn decompress(input: &[u8], raw_len: usize) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::new();
    decompress_into(input, raw_len, &mut out)?;
    Ok(out)
}

/// [`decompress`] into `out` (its contents replaced), so that a caller can reuse one buffer.
pub(crate) fn decompress_into(
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

/// The first `out.len()` bytes `input` decompresses to (fewer if `raw_len` is smaller),
/// without producing the rest: to read the header of a compressed blob. Returns how many
/// bytes were written. Checks what it reads as [`decompress`] does, but not the rest of the
/// input nor that it produces exactly `raw_len` bytes.
pub(crate) fn decompress_prefix(
    input: &[u8],
    raw_len: usize,
    out: &mut [u8],
) -> Result<usize, &'static str> {
    let want = out.len().min(raw_len);
    let mut o = 0;
    let mut i = 0;
    while o < want {
        let ctrl = usize::from(*input.get(i).ok_or("output shorter than the raw length")?);
        i += 1;
        if ctrl < 32 {
            let n = ctrl + 1;
            let lit = input
                .get(i..i + n)
                .ok_or("literal run past the end of the input")?;
            let k = n.min(want - o);
            out[o..o + k].copy_from_slice(&lit[..k]);
            o += k;
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
            for d in o..o + len.min(want - o) {
                out[d] = out[d - back];
            }
            o += len.min(want - o);
        }
    }
    Ok(want)
}

#[cfg(test)]
mod tests {
    #[test]
    fn lzf_roundtrip_and_errors() {
        // "aaaaaaaaaa": literal 'a', then a back-reference of length 9 at distance 1.
        let compressed = [0x00, b'a', 0xe0, 0x00, 0x00];
        assert_eq!(super::decompress(&compressed, 10).unwrap(), b"aaaaaaaaaa");
        assert!(super::decompress(&compressed, 11).is_err());
        assert!(super::decompress(&compressed, 9).is_err());
        // Back-reference before the start.
        assert!(super::decompress(&[0x20, 0x05], 3).is_err());
        // Claimed raw length far beyond what the input can produce: refused before allocating.
        assert!(super::decompress(&[0x00, b'a'], usize::MAX / 2).is_err());
    }

    /// A plain byte-by-byte LZF decoder, the reference for the block-copying one.
    fn lzf_reference(input: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < input.len() {
            let ctrl = usize::from(input[i]);
            i += 1;
            if ctrl < 32 {
                out.extend_from_slice(input.get(i..i + ctrl + 1)?);
                i += ctrl + 1;
            } else {
                let mut len = ctrl >> 5;
                if len == 7 {
                    len += usize::from(*input.get(i)?);
                    i += 1;
                }
                len += 2;
                let back = ((ctrl & 0x1f) << 8) + usize::from(*input.get(i)?) + 1;
                i += 1;
                let start = out.len().checked_sub(back)?;
                for k in 0..len {
                    out.push(out[start + k]);
                }
            }
        }
        Some(out)
    }

    #[test]
    fn lzf_block_copies_equal_the_reference() {
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let mut scratch = Vec::new();
        for _ in 0..3000 {
            // A valid stream: literal runs and back-references of every length and distance.
            let mut input = Vec::new();
            let mut produced = 0usize;
            for _ in 0..1 + next(40) {
                if produced == 0 || next(3) == 0 {
                    let n = 1 + next(32) as usize;
                    input.push((n - 1) as u8);
                    input.extend((0..n).map(|_| next(256) as u8));
                    produced += n;
                } else {
                    let back = 1 + next(produced.min(8192) as u64) as usize;
                    let len = 3 + next(262) as usize;
                    let off = back - 1;
                    if len - 2 >= 7 {
                        input.push((7 << 5 | (off >> 8)) as u8);
                        input.push((len - 2 - 7) as u8);
                    } else {
                        input.push(((len - 2) << 5 | (off >> 8)) as u8);
                    }
                    input.push((off & 0xff) as u8);
                    produced += len;
                }
            }
            let want = lzf_reference(&input).expect("valid stream");
            assert_eq!(super::decompress(&input, want.len()).unwrap(), want);
            super::decompress_into(&input, want.len(), &mut scratch).unwrap();
            assert_eq!(scratch, want);
            for n in [0, 1, 7, 10, 33, 300] {
                let mut head = vec![0u8; n];
                let got = super::decompress_prefix(&input, want.len(), &mut head).unwrap();
                assert_eq!(&head[..got], &want[..n.min(want.len())]);
            }
            // A cut stream is an error, never a panic.
            let cut =
                &input[..input.len() - 1 - next(input.len() as u64) as usize % input.len().max(1)];
            let _ = super::decompress(cut, want.len());
        }
    }
}
