//! The bytes waiting to be written: small commands coalesced into one buffer, big arguments
//! queued by reference (no copy).

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

/// Output queue with stream offsets: `produced` counts every byte ever queued, `written` every
/// byte handed to the transport, so a command's end offset tells whether it was written.
#[derive(Debug, Default)]
pub(crate) struct Output {
    /// Finished parts, in order, before `tail`.
    chunks: VecDeque<Bytes>,
    /// Where small pieces are appended.
    tail: BytesMut,
    /// Bytes queued and not yet written.
    pending: usize,
    produced: u64,
    written: u64,
}

impl Output {
    /// Appends `args` as a RESP command, copying them.
    pub(crate) fn put_command<A: AsRef<[u8]>>(&mut self, args: &[A]) -> usize {
        let before = self.tail.len();
        resp_codec::encode_command(&mut self.tail, args);
        let n = self.tail.len() - before;
        self.pending += n;
        self.produced += n as u64;
        n
    }

    /// Appends a lent `RESTORE` as RESP (its value copied once, its CRC computed over
    /// the copy).
    pub(crate) fn put_restore(&mut self, cmd: &crate::plan::RestoreCmd<'_>) -> usize {
        let n = cmd.encode(&mut self.tail);
        self.pending += n;
        self.produced += n as u64;
        n
    }

    /// Appends `args` as a RESP command; arguments of at least `zero_copy_min` bytes are
    /// queued by reference.
    pub(crate) fn put_command_shared(&mut self, args: &[Bytes], zero_copy_min: usize) -> usize {
        // One reservation for the copied part: headers (at most 24 bytes each) and the
        // small arguments.
        let copied: usize = args
            .iter()
            .map(|a| 24 + if a.len() < zero_copy_min { a.len() } else { 0 })
            .sum();
        self.tail.reserve(24 + copied);
        let mut n = 0;
        n += self.put_header(b'*', args.len());
        for arg in args {
            n += self.put_header(b'$', arg.len());
            if arg.len() >= zero_copy_min && !arg.is_empty() {
                if !self.tail.is_empty() {
                    self.chunks.push_back(self.tail.split().freeze());
                }
                self.chunks.push_back(arg.clone());
                self.pending += arg.len();
                self.produced += arg.len() as u64;
                n += arg.len();
            } else {
                n += self.put_raw(arg);
            }
            n += self.put_fixed(*b"\r\n");
        }
        n
    }

    fn put_header(&mut self, prefix: u8, len: usize) -> usize {
        // Fixed-size copies for the common short lengths (inlined, no `memcpy` call).
        if len < 10 {
            return self.put_fixed([prefix, b'0' + len as u8, b'\r', b'\n']);
        }
        if len < 100 {
            let (tens, ones) = ((len / 10) as u8, (len % 10) as u8);
            return self.put_fixed([prefix, b'0' + tens, b'0' + ones, b'\r', b'\n']);
        }
        let mut buf = [0u8; 24];
        buf[0] = prefix;
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut v = len;
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        let d = digits.len() - i;
        buf[1..=d].copy_from_slice(&digits[i..]);
        buf[d + 1..d + 3].copy_from_slice(b"\r\n");
        self.put_raw(&buf[..d + 3])
    }

    fn put_fixed<const N: usize>(&mut self, data: [u8; N]) -> usize {
        self.tail.extend_from_slice(&data);
        self.pending += N;
        self.produced += N as u64;
        N
    }

    fn put_raw(&mut self, data: &[u8]) -> usize {
        self.tail.extend_from_slice(data);
        self.pending += data.len();
        self.produced += data.len() as u64;
        data.len()
    }

    /// The next contiguous bytes to write, if any.
    pub(crate) fn front(&self) -> Option<&[u8]> {
        match self.chunks.front() {
            Some(c) => Some(c),
            None if !self.tail.is_empty() => Some(&self.tail),
            None => None,
        }
    }

    /// `n` bytes of [`front`](Self::front) were written.
    pub(crate) fn advance(&mut self, n: usize) {
        let n = match self.chunks.front_mut() {
            Some(c) => {
                let n = n.min(c.len());
                c.advance(n);
                if c.is_empty() {
                    self.chunks.pop_front();
                }
                n
            }
            None => {
                let n = n.min(self.tail.len());
                self.tail.advance(n);
                n
            }
        };
        self.pending -= n;
        self.written += n as u64;
    }

    /// Bytes queued and not yet written.
    pub(crate) fn pending(&self) -> usize {
        self.pending
    }

    /// Stream offset after the last byte queued.
    pub(crate) fn produced(&self) -> u64 {
        self.produced
    }

    /// Stream offset after the last byte written.
    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// Drops everything not yet written (the connection is gone).
    pub(crate) fn clear(&mut self) {
        self.chunks.clear();
        self.tail.clear();
        self.pending = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(out: &mut Output, step: usize) -> Vec<u8> {
        let mut all = Vec::new();
        while let Some(front) = out.front() {
            let n = front.len().min(step);
            all.extend_from_slice(&front[..n]);
            out.advance(n);
        }
        all
    }

    #[test]
    fn shared_and_copied_encode_the_same() {
        let big = Bytes::from(vec![b'x'; 100]);
        let args = [Bytes::from_static(b"SET"), Bytes::from_static(b"k"), big];
        let mut a = Output::default();
        let n = a.put_command_shared(&args, 50);
        let mut b = Output::default();
        let m = b.put_command(&args);
        assert_eq!(n, m);
        assert_eq!(a.pending(), n);
        assert_eq!(a.produced(), n as u64);
        assert_eq!(drain(&mut a, 7), drain(&mut b, 1000));
        assert_eq!(a.written(), n as u64);
        assert_eq!(a.pending(), 0);
        // An empty argument never becomes an empty chunk.
        let mut c = Output::default();
        c.put_command_shared(&[Bytes::from_static(b"GET"), Bytes::new()], 0);
        assert_eq!(drain(&mut c, 3), b"*2\r\n$3\r\nGET\r\n$0\r\n\r\n");
    }
}
