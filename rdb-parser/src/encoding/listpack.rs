//! Listpack (`src/listpack.c`): the compact encoding of RDB 10+ (lists, sets, hashes, sorted
//! sets, streams).
//!
//! Layout: `total u32 | count u16 | entries | 0xff`; each entry is `encoding+data | backlen`
//! where backlen (1-5 bytes) is the length of `encoding+data`.

use bytes::Bytes;

use crate::event::Str;

/// Iterates the entries of a listpack blob.
#[derive(Debug)]
pub(crate) struct ListpackIter {
    blob: Bytes,
    pos: usize,
    count: u64,
    declared: Option<u16>,
    done: bool,
}

/// Bytes the backlen of an entry of `l` bytes takes.
fn backlen_size(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

impl ListpackIter {
    /// The blob's size in bytes.
    pub(crate) fn blob_len(&self) -> usize {
        self.blob.len()
    }

    pub(crate) fn new(blob: Bytes) -> Result<ListpackIter, String> {
        if blob.len() < 7 {
            return Err(format!(
                "listpack of {} bytes is shorter than its header",
                blob.len()
            ));
        }
        let total = u32::from_le_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
        if total != blob.len() {
            return Err(format!(
                "listpack header says {total} bytes, blob has {}",
                blob.len()
            ));
        }
        if blob[blob.len() - 1] != 0xff {
            return Err("listpack does not end with 0xff".into());
        }
        let n = u16::from_le_bytes([blob[4], blob[5]]);
        Ok(ListpackIter {
            blob,
            pos: 6,
            count: 0,
            declared: (n != u16::MAX).then_some(n),
            done: false,
        })
    }

    fn get(&self, at: usize, n: usize) -> Result<&[u8], String> {
        self.blob
            .get(at..at + n)
            .ok_or_else(|| format!("listpack entry at byte {} runs past the end", self.pos))
    }

    pub(crate) fn next_entry(&mut self) -> Result<Option<Str>, String> {
        if self.done {
            return Ok(None);
        }
        let start = self.pos;
        let b = self.get(start, 1)?[0];
        if b == 0xff {
            self.done = true;
            if start != self.blob.len() - 1 {
                return Err(format!(
                    "listpack end marker at byte {start} before the end"
                ));
            }
            if let Some(d) = self.declared {
                if u64::from(d) != self.count {
                    return Err(format!(
                        "listpack declares {d} entries, holds {}",
                        self.count
                    ));
                }
            }
            return Ok(None);
        }
        let (value, len) = if b & 0x80 == 0 {
            (Str::Int(i64::from(b & 0x7f)), 1)
        } else if b & 0xc0 == 0x80 {
            let n = usize::from(b & 0x3f);
            (Str::Bytes(self.str_at(start + 1, n)?), 1 + n)
        } else if b & 0xe0 == 0xc0 {
            let lo = self.get(start + 1, 1)?[0];
            let u = (u16::from(b & 0x1f) << 8) | u16::from(lo);
            // 13-bit two's complement.
            let v = i64::from(u) - if u >= 1 << 12 { 1 << 13 } else { 0 };
            (Str::Int(v), 2)
        } else if b & 0xf0 == 0xe0 {
            let lo = self.get(start + 1, 1)?[0];
            let n = (usize::from(b & 0x0f) << 8) | usize::from(lo);
            (Str::Bytes(self.str_at(start + 2, n)?), 2 + n)
        } else {
            match b {
                0xf0 => {
                    let h = self.get(start + 1, 4)?;
                    let n = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
                    (Str::Bytes(self.str_at(start + 5, n)?), 5 + n)
                }
                0xf1 => {
                    let h = self.get(start + 1, 2)?;
                    (Str::Int(i64::from(i16::from_le_bytes([h[0], h[1]]))), 3)
                }
                0xf2 => {
                    let h = self.get(start + 1, 3)?;
                    // 24-bit two's complement: shift into the top of an i32 and back.
                    let v = i32::from_le_bytes([0, h[0], h[1], h[2]]) >> 8;
                    (Str::Int(i64::from(v)), 4)
                }
                0xf3 => {
                    let h = self.get(start + 1, 4)?;
                    (
                        Str::Int(i64::from(i32::from_le_bytes([h[0], h[1], h[2], h[3]]))),
                        5,
                    )
                }
                0xf4 => {
                    let h = self.get(start + 1, 8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(h);
                    (Str::Int(i64::from_le_bytes(a)), 9)
                }
                _ => return Err(format!("listpack entry encoding {b:#04x} at byte {start}")),
            }
        };
        let bl = backlen_size(len);
        self.get(start + len, bl)?;
        self.pos = start + len + bl;
        self.count += 1;
        Ok(Some(value))
    }

    fn str_at(&self, at: usize, n: usize) -> Result<Bytes, String> {
        self.get(at, n)?;
        Ok(self.blob.slice(at..at + n))
    }
}
