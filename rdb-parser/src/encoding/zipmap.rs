//! Zipmap (`src/zipmap.c`), the hash encoding of Redis < 2.6:
//! `zmlen u8 | (len key len free value free-bytes)* | 0xff`; a length is one byte below 254,
//! or 254 followed by a u32 (little-endian on every platform Redis ran on).

use bytes::Bytes;

/// Iterates a zipmap blob as alternating field and value strings.
#[derive(Debug)]
pub(crate) struct ZipmapIter {
    blob: Bytes,
    pos: usize,
    want_value: bool,
    done: bool,
}

impl ZipmapIter {
    /// The blob's size in bytes.
    pub(crate) fn blob_len(&self) -> usize {
        self.blob.len()
    }

    pub(crate) fn new(blob: Bytes) -> Result<ZipmapIter, String> {
        if blob.len() < 2 {
            return Err("zipmap shorter than its header".into());
        }
        if blob[blob.len() - 1] != 0xff {
            return Err("zipmap does not end with 0xff".into());
        }
        Ok(ZipmapIter {
            blob,
            pos: 1,
            want_value: false,
            done: false,
        })
    }

    fn byte(&self, at: usize) -> Result<u8, String> {
        self.blob
            .get(at)
            .copied()
            .ok_or_else(|| format!("zipmap entry at byte {at} runs past the end"))
    }

    fn read_len(&mut self) -> Result<Option<usize>, String> {
        let b = self.byte(self.pos)?;
        match b {
            0xff => Ok(None),
            254 => {
                let h = self
                    .blob
                    .get(self.pos + 1..self.pos + 5)
                    .ok_or("zipmap length runs past the end")?;
                let n = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
                self.pos += 5;
                Ok(Some(n))
            }
            n => {
                self.pos += 1;
                Ok(Some(usize::from(n)))
            }
        }
    }

    /// The next field or value.
    pub(crate) fn next_entry(&mut self) -> Result<Option<Bytes>, String> {
        if self.done {
            return Ok(None);
        }
        let Some(n) = self.read_len()? else {
            if self.want_value {
                return Err("zipmap field without a value".into());
            }
            self.done = true;
            if self.pos != self.blob.len() - 1 {
                return Err("zipmap end marker before the end".into());
            }
            return Ok(None);
        };
        let free = if self.want_value {
            let f = usize::from(self.byte(self.pos)?);
            self.pos += 1;
            f
        } else {
            0
        };
        let end = self.pos.checked_add(n).filter(|&e| e < self.blob.len());
        let Some(end) = end else {
            return Err(format!("zipmap entry of {n} bytes runs past the end"));
        };
        let s = self.blob.slice(self.pos..end);
        self.pos = end + free;
        if self.pos > self.blob.len() - 1 {
            return Err("zipmap free space runs past the end".into());
        }
        self.want_value = !self.want_value;
        Ok(Some(s))
    }
}
