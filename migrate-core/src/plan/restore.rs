//! One `RESTORE` command lent by the planner, its payload in pieces: written as RESP
//! straight into a caller's buffer, the value copied once and its CRC computed over that
//! copy.

use bytes::{BufMut, Bytes, BytesMut};

/// The size of a `DUMP` payload's footer: the RDB version (2 bytes) and the CRC-64 (8).
pub(crate) const FOOTER: usize = 10;

/// What `RESTORE` carries after the payload to set the key's eviction data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hint {
    Idle(u64),
    Freq(u8),
}

/// A `RESTORE key ttl payload [ABSTTL] [REPLACE] [IDLETIME n | FREQ n]` the planner lends
/// to the caller ([`super::KeyPlanner::whole_key`], [`super::KeyPlanner::key_end_restore`])
/// for one key bound for a single `RESTORE`. Nothing of it is allocated: the key and the
/// value are borrowed (from the decoder's buffer or the planner's arena), the payload's
/// footer (the target's RDB version and the CRC-64) is made as it is written.
///
/// [`RestoreCmd::encode`] writes it as RESP into a buffer, which is the fast path: the
/// value is copied once (into the output) and the CRC is computed over that copy.
/// [`RestoreCmd::to_args`] gives the same command as owned arguments.
#[derive(Debug, Clone, Copy)]
pub struct RestoreCmd<'a> {
    pub(crate) db: u32,
    pub(crate) key: &'a [u8],
    /// The absolute expiry sent with `ABSTTL` (the TTL argument is `0` without one).
    pub(crate) expire_at_ms: Option<i64>,
    /// The payload without its footer, in two pieces (the type byte and the rest of the
    /// value, or the whole value and nothing).
    pub(crate) body: [&'a [u8]; 2],
    pub(crate) version: u16,
    pub(crate) replace: bool,
    pub(crate) hint: Option<Hint>,
}

impl<'a> RestoreCmd<'a> {
    /// The target db.
    pub fn db(&self) -> u32 {
        self.db
    }

    /// The key's name on the target.
    pub fn key(&self) -> &'a [u8] {
        self.key
    }

    /// The payload's size: the serialized value and its 10-byte footer.
    pub fn payload_len(&self) -> usize {
        self.body[0].len() + self.body[1].len() + FOOTER
    }

    /// The number of arguments, `RESTORE` included.
    pub fn arg_count(&self) -> usize {
        4 + usize::from(self.expire_at_ms.is_some())
            + usize::from(self.replace)
            + if self.hint.is_some() { 2 } else { 0 }
    }

    /// Appends the command as RESP to `out` and returns the bytes written. The value is
    /// copied once, and the payload's CRC-64 is computed over the copy in `out` in one
    /// pass (no scratch buffer).
    pub fn encode(&self, out: &mut BytesMut) -> usize {
        let start = out.len();
        let payload = self.payload_len();
        // Headers of at most 24 bytes each, the small arguments, the payload.
        out.reserve(8 * 24 + self.key.len() + 64 + payload);
        header(out, b'*', self.arg_count());
        arg(out, b"RESTORE");
        arg(out, self.key);
        let mut digits = [0u8; 40];
        match self.expire_at_ms {
            Some(at) => arg(out, decimal(at.into(), &mut digits)),
            None => arg(out, b"0"),
        }
        header(out, b'$', payload);
        let body = out.len();
        out.extend_from_slice(self.body[0]);
        out.extend_from_slice(self.body[1]);
        out.extend_from_slice(&self.version.to_le_bytes());
        let crc = rdb_parser::dump::crc64(&out[body..]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(b"\r\n");
        if self.expire_at_ms.is_some() {
            arg(out, b"ABSTTL");
        }
        if self.replace {
            arg(out, b"REPLACE");
        }
        match self.hint {
            Some(Hint::Idle(idle)) => {
                arg(out, b"IDLETIME");
                arg(out, decimal(idle.into(), &mut digits));
            }
            Some(Hint::Freq(freq)) => {
                arg(out, b"FREQ");
                arg(out, decimal(freq.into(), &mut digits));
            }
            None => {}
        }
        out.len() - start
    }

    /// The command as owned arguments (`RESTORE`, key, TTL, payload with its footer, the
    /// options), as [`super::KeyPlanner::key_end`] emits it.
    pub fn to_args(&self) -> Vec<Bytes> {
        let mut digits = [0u8; 40];
        let mut args = Vec::with_capacity(self.arg_count());
        args.push(Bytes::from_static(b"RESTORE"));
        args.push(Bytes::copy_from_slice(self.key));
        args.push(match self.expire_at_ms {
            Some(at) => Bytes::copy_from_slice(decimal(at.into(), &mut digits)),
            None => Bytes::from_static(b"0"),
        });
        let mut payload = Vec::with_capacity(self.payload_len());
        payload.extend_from_slice(self.body[0]);
        payload.extend_from_slice(self.body[1]);
        payload.extend_from_slice(&self.version.to_le_bytes());
        let crc = rdb_parser::dump::crc64(&payload);
        payload.extend_from_slice(&crc.to_le_bytes());
        args.push(payload.into());
        if self.expire_at_ms.is_some() {
            args.push(Bytes::from_static(b"ABSTTL"));
        }
        if self.replace {
            args.push(Bytes::from_static(b"REPLACE"));
        }
        match self.hint {
            Some(Hint::Idle(idle)) => {
                args.push(Bytes::from_static(b"IDLETIME"));
                args.push(Bytes::copy_from_slice(decimal(idle.into(), &mut digits)));
            }
            Some(Hint::Freq(freq)) => {
                args.push(Bytes::from_static(b"FREQ"));
                args.push(Bytes::copy_from_slice(decimal(freq.into(), &mut digits)));
            }
            None => {}
        }
        args
    }
}

/// `$len\r\n` or `*len\r\n` (fixed-size copies for lengths below 10 000: no loop, no
/// `memcpy` call).
#[inline(always)]
fn header(out: &mut BytesMut, prefix: u8, len: usize) {
    let d = |n: usize| b'0' + (n % 10) as u8;
    match len {
        0..=9 => out.put_slice(&[prefix, d(len), b'\r', b'\n']),
        10..=99 => out.put_slice(&[prefix, d(len / 10), d(len), b'\r', b'\n']),
        100..=999 => out.put_slice(&[prefix, d(len / 100), d(len / 10), d(len), b'\r', b'\n']),
        1000..=9999 => out.put_slice(&[
            prefix,
            d(len / 1000),
            d(len / 100),
            d(len / 10),
            d(len),
            b'\r',
            b'\n',
        ]),
        _ => {
            let mut digits = [0u8; 40];
            out.put_u8(prefix);
            out.put_slice(decimal(len as i128, &mut digits));
            out.put_slice(b"\r\n");
        }
    }
}

/// One bulk string argument.
#[inline(always)]
fn arg(out: &mut BytesMut, a: &[u8]) {
    header(out, b'$', a.len());
    out.put_slice(a);
    out.put_slice(b"\r\n");
}

/// `n` in decimal, written at the end of `buf`.
pub(crate) fn decimal(n: i128, buf: &mut [u8; 40]) -> &[u8] {
    let mut i = buf.len();
    let neg = n < 0;
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if neg {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RESP of every length class (the fixed-size headers and the general one) and every
    /// option: the same bytes as the owned arguments encoded by `resp_codec`.
    #[test]
    fn encodes_as_its_arguments() {
        let lens = [0usize, 1, 9, 10, 99, 100, 999, 1000, 9999, 10_000, 123_456];
        let hints = [
            None,
            Some(Hint::Idle(12_345_678_901)),
            Some(Hint::Freq(255)),
        ];
        for (i, &len) in lens.iter().enumerate() {
            let key = vec![b'k'; lens[(i + 3) % lens.len()].max(1)];
            let value = vec![b'v'; len];
            let cmd = RestoreCmd {
                db: i as u32,
                key: &key,
                expire_at_ms: (i % 2 == 0).then_some(1_700_000_000_000 + i as i64),
                body: [&[0u8][..], &value],
                version: 11,
                replace: i % 3 == 0,
                hint: hints[i % 3],
            };
            let args = cmd.to_args();
            assert_eq!(args.len(), cmd.arg_count());
            assert_eq!(args[3].len(), cmd.payload_len());
            let mut want = BytesMut::new();
            resp_codec::encode_command(&mut want, &args);
            let mut got = BytesMut::from(&b"x"[..]);
            assert_eq!(cmd.encode(&mut got), want.len());
            assert_eq!(&got[1..], &want[..], "value of {len} bytes");
            // The payload checks out as a DUMP payload of the type byte and the value.
            let p = rdb_parser::dump::split(&args[3], true).unwrap();
            assert_eq!(p.value.len(), len + 1);
        }
    }
}
