//! Ziplist (`src/ziplist.c`): lists, hashes and sorted sets of RDB 2-9, quicklist v1 nodes.
//!
//! Layout: `zlbytes u32 | zltail u32 | zllen u16 | entries | 0xff`, each entry
//! `prevlen (1 byte, or 0xfe + u32) | encoding | data`.

use bytes::Bytes;

use crate::event::{Item, Str};

/// Iterates the entries of a ziplist blob it owns (the owned-event path).
#[derive(Debug)]
pub(crate) struct ZiplistIter {
    blob: Bytes,
    cur: Ziplist,
}

impl ZiplistIter {
    /// The blob's size in bytes.
    pub(crate) fn blob_len(&self) -> usize {
        self.blob.len()
    }

    pub(crate) fn new(blob: Bytes) -> Result<ZiplistIter, String> {
        let cur = Ziplist::open(&blob)?;
        Ok(ZiplistIter { blob, cur })
    }

    pub(crate) fn next_entry(&mut self) -> Result<Option<Str>, String> {
        Ok(self.cur.next(&self.blob)?.map(|i| i.to_str_in(&self.blob)))
    }
}

/// A cursor over the entries of a ziplist blob held elsewhere: the one parser behind both
/// [`ZiplistIter`] and the borrowing fast path.
#[derive(Debug)]
pub(crate) struct Ziplist {
    pos: usize,
    count: u64,
    declared: Option<u16>,
    done: bool,
}

impl Ziplist {
    /// Checks the header of `blob` and starts at its first entry.
    pub(crate) fn open(blob: &[u8]) -> Result<Ziplist, String> {
        if blob.len() < 11 {
            return Err(format!(
                "ziplist of {} bytes is shorter than its header",
                blob.len()
            ));
        }
        let zlbytes = u32::from_le_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
        if zlbytes != blob.len() {
            return Err(format!(
                "ziplist header says {zlbytes} bytes, blob has {}",
                blob.len()
            ));
        }
        let zltail = u32::from_le_bytes([blob[4], blob[5], blob[6], blob[7]]) as usize;
        if zltail >= blob.len() {
            return Err(format!("ziplist tail offset {zltail} out of range"));
        }
        if blob[blob.len() - 1] != 0xff {
            return Err("ziplist does not end with 0xff".into());
        }
        let zllen = u16::from_le_bytes([blob[8], blob[9]]);
        Ok(Ziplist {
            pos: 10,
            count: 0,
            declared: (zllen != u16::MAX).then_some(zllen),
            done: false,
        })
    }

    fn get<'a>(&self, blob: &'a [u8], n: usize) -> Result<&'a [u8], String> {
        blob.get(self.pos..self.pos.saturating_add(n))
            .ok_or_else(|| format!("ziplist entry at byte {} runs past the end", self.pos))
    }

    /// The next entry of `blob` (the blob given to [`Ziplist::open`]).
    pub(crate) fn next<'a>(&mut self, blob: &'a [u8]) -> Result<Option<Item<'a>>, String> {
        if self.done {
            return Ok(None);
        }
        let b = *self.get(blob, 1)?.first().unwrap_or(&0xff);
        if b == 0xff {
            self.done = true;
            if self.pos != blob.len() - 1 {
                return Err(format!(
                    "ziplist end marker at byte {} before the end",
                    self.pos
                ));
            }
            if let Some(d) = self.declared {
                if u64::from(d) != self.count {
                    return Err(format!(
                        "ziplist declares {d} entries, holds {}",
                        self.count
                    ));
                }
            }
            return Ok(None);
        }
        // prevlen
        self.pos += if b == 0xfe { 5 } else { 1 };
        let enc = self.get(blob, 1)?[0];
        let at = self.pos;
        let value = match enc >> 6 {
            0 => {
                let n = usize::from(enc & 0x3f);
                self.pos += 1;
                Item::Bytes(self.slice(blob, n)?)
            }
            1 => {
                let h = self.get(blob, 2)?;
                let n = (usize::from(h[0] & 0x3f) << 8) | usize::from(h[1]);
                self.pos += 2;
                Item::Bytes(self.slice(blob, n)?)
            }
            2 => {
                let h = self.get(blob, 5)?;
                let n = u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize;
                self.pos += 5;
                Item::Bytes(self.slice(blob, n)?)
            }
            _ => {
                self.pos += 1;
                let v = match enc {
                    0xc0 => i64::from(i16::from_le_bytes(self.fixed::<2>(blob)?)),
                    0xd0 => i64::from(i32::from_le_bytes(self.fixed::<4>(blob)?)),
                    0xe0 => i64::from_le_bytes(self.fixed::<8>(blob)?),
                    0xf0 => {
                        let a = self.fixed::<3>(blob)?;
                        i64::from(i32::from_le_bytes([0, a[0], a[1], a[2]]) >> 8)
                    }
                    0xfe => i64::from(self.fixed::<1>(blob)?[0] as i8),
                    0xf1..=0xfd => i64::from(enc & 0x0f) - 1,
                    _ => return Err(format!("ziplist entry encoding {enc:#04x} at byte {at}")),
                };
                Item::Int(v)
            }
        };
        self.count += 1;
        Ok(Some(value))
    }

    fn slice<'a>(&mut self, blob: &'a [u8], n: usize) -> Result<&'a [u8], String> {
        let s = self.get(blob, n)?;
        self.pos += n;
        Ok(s)
    }

    fn fixed<const N: usize>(&mut self, blob: &[u8]) -> Result<[u8; N], String> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.get(blob, N)?);
        self.pos += N;
        Ok(a)
    }
}
