//! Intset (`src/intset.c`): `encoding u32 (2, 4 or 8) | length u32 | sorted LE integers`.

use bytes::Bytes;

/// Iterates the members of an intset blob.
#[derive(Debug)]
pub(crate) struct IntsetIter {
    blob: Bytes,
    width: usize,
    next: usize,
    len: usize,
}

impl IntsetIter {
    /// The blob's size in bytes.
    pub(crate) fn blob_len(&self) -> usize {
        self.blob.len()
    }

    pub(crate) fn new(blob: Bytes) -> Result<IntsetIter, String> {
        let (width, len) = open(&blob)?;
        Ok(IntsetIter {
            blob,
            width,
            next: 0,
            len,
        })
    }

    pub(crate) fn next_int(&mut self) -> Option<i64> {
        if self.next >= self.len {
            return None;
        }
        let v = member(&self.blob, self.width, self.next);
        self.next += 1;
        Some(v)
    }
}

/// Checks the header of an intset `blob`; returns its member width and count (the one
/// check behind both [`IntsetIter`] and the borrowing fast path).
pub(crate) fn open(blob: &[u8]) -> Result<(usize, usize), String> {
    if blob.len() < 8 {
        return Err(format!(
            "intset of {} bytes is shorter than its header",
            blob.len()
        ));
    }
    let width = u32::from_le_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
    if !matches!(width, 2 | 4 | 8) {
        return Err(format!("intset encoding {width}"));
    }
    let len = u32::from_le_bytes([blob[4], blob[5], blob[6], blob[7]]) as usize;
    if (blob.len() - 8) as u64 != len as u64 * width as u64 {
        return Err(format!(
            "intset of {len} members of {width} bytes in a blob of {} bytes",
            blob.len()
        ));
    }
    Ok((width, len))
}

/// Member `i` of an intset checked by [`open`].
#[inline]
pub(crate) fn member(blob: &[u8], width: usize, i: usize) -> i64 {
    let at = 8 + i * width;
    let b = &blob[at..at + width];
    match width {
        2 => i64::from(i16::from_le_bytes([b[0], b[1]])),
        4 => i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        _ => i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
    }
}
