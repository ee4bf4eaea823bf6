//! Listpack (`src/listpack.c`): the compact encoding of RDB 10+ (lists, sets, hashes, sorted
//! sets, streams).
//!
//! Layout: `total u32 | count u16 | entries | 0xff`; each entry is `encoding+data | backlen`
//! where backlen (1-5 bytes) is the length of `encoding+data`.

use bytes::Bytes;

use crate::event::{Item, Str};

/// Iterates the entries of a listpack blob it owns (the owned-event path).
#[derive(Debug)]
pub(crate) struct ListpackIter {
    blob: Bytes,
    cur: Listpack,
}

impl ListpackIter {
    /// The blob's size in bytes.
    pub(crate) fn blob_len(&self) -> usize {
        self.blob.len()
    }

    pub(crate) fn new(blob: Bytes) -> Result<ListpackIter, String> {
        let cur = Listpack::open(&blob)?;
        Ok(ListpackIter { blob, cur })
    }

    pub(crate) fn next_entry(&mut self) -> Result<Option<Str>, String> {
        Ok(self.cur.next(&self.blob)?.map(|i| i.to_str_in(&self.blob)))
    }
}

/// A cursor over the entries of a listpack blob held elsewhere: the one parser behind both
/// [`ListpackIter`] and the borrowing fast path.
#[derive(Debug)]
pub(crate) struct Listpack {
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

#[inline(always)]
fn get(blob: &[u8], at: usize, n: usize, pos: usize) -> Result<&[u8], String> {
    blob.get(at..at.saturating_add(n))
        .ok_or_else(|| format!("listpack entry at byte {pos} runs past the end"))
}

impl Listpack {
    /// Checks the header of `blob` and starts at its first entry.
    pub(crate) fn open(blob: &[u8]) -> Result<Listpack, String> {
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
        Ok(Listpack {
            pos: 6,
            count: 0,
            declared: (n != u16::MAX).then_some(n),
            done: false,
        })
    }

    /// The next entry of `blob` (the blob given to [`Listpack::open`]).
    #[inline(always)]
    pub(crate) fn next<'a>(&mut self, blob: &'a [u8]) -> Result<Option<Item<'a>>, String> {
        if self.done {
            return Ok(None);
        }
        let start = self.pos;
        let b = get(blob, start, 1, start)?[0];
        // The two common forms first: a 7-bit integer and a string of up to 63 bytes (entry
        // under 128 bytes: a 1-byte backlen).
        if b & 0x80 == 0 {
            if start + 2 <= blob.len() {
                self.pos = start + 2;
                self.count += 1;
                return Ok(Some(Item::Int(i64::from(b))));
            }
        } else if b & 0xc0 == 0x80 {
            let n = usize::from(b & 0x3f);
            if start + 2 + n <= blob.len() {
                self.pos = start + 2 + n;
                self.count += 1;
                return Ok(Some(Item::Bytes(&blob[start + 1..start + 1 + n])));
            }
        }
        if b == 0xff {
            self.done = true;
            if start != blob.len() - 1 {
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
            (Item::Int(i64::from(b & 0x7f)), 1)
        } else if b & 0xc0 == 0x80 {
            let n = usize::from(b & 0x3f);
            (Item::Bytes(get(blob, start + 1, n, start)?), 1 + n)
        } else if b & 0xe0 == 0xc0 {
            let lo = get(blob, start + 1, 1, start)?[0];
            let u = (u16::from(b & 0x1f) << 8) | u16::from(lo);
            // 13-bit two's complement.
            let v = i64::from(u) - if u >= 1 << 12 { 1 << 13 } else { 0 };
            (Item::Int(v), 2)
        } else if b & 0xf0 == 0xe0 {
            let lo = get(blob, start + 1, 1, start)?[0];
            let n = (usize::from(b & 0x0f) << 8) | usize::from(lo);
            (Item::Bytes(get(blob, start + 2, n, start)?), 2 + n)
        } else {
            match b {
                0xf0 => {
                    let h = get(blob, start + 1, 4, start)?;
                    let n = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
                    (Item::Bytes(get(blob, start + 5, n, start)?), 5 + n)
                }
                0xf1 => {
                    let h = get(blob, start + 1, 2, start)?;
                    (Item::Int(i64::from(i16::from_le_bytes([h[0], h[1]]))), 3)
                }
                0xf2 => {
                    let h = get(blob, start + 1, 3, start)?;
                    // 24-bit two's complement: shift into the top of an i32 and back.
                    let v = i32::from_le_bytes([0, h[0], h[1], h[2]]) >> 8;
                    (Item::Int(i64::from(v)), 4)
                }
                0xf3 => {
                    let h = get(blob, start + 1, 4, start)?;
                    (
                        Item::Int(i64::from(i32::from_le_bytes([h[0], h[1], h[2], h[3]]))),
                        5,
                    )
                }
                0xf4 => {
                    let h = get(blob, start + 1, 8, start)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(h);
                    (Item::Int(i64::from_le_bytes(a)), 9)
                }
                _ => return Err(format!("listpack entry encoding {b:#04x} at byte {start}")),
            }
        };
        let bl = backlen_size(len);
        get(blob, start + len, bl, start)?;
        self.pos = start + len + bl;
        self.count += 1;
        Ok(Some(value))
    }
}
