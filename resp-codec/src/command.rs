//! A command builder.

use bytes::{Bytes, BytesMut};

use crate::encode::{digits, put_bulk, put_header, put_i64};

/// A command under construction: arguments are encoded as they are added, so encoding the
/// command is a header plus one copy.
///
/// ```
/// use bytes::BytesMut;
/// use resp_codec::Command;
///
/// let cmd = Command::new("SET").arg("key").arg(b"value").arg("PX").arg_int(1500);
/// assert_eq!(cmd.argc(), 5);
/// let mut buf = BytesMut::new();
/// cmd.encode(&mut buf);
/// assert_eq!(
///     &buf[..],
///     b"*5\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n$2\r\nPX\r\n$4\r\n1500\r\n"
/// );
/// assert_eq!(cmd.encoded_len(), buf.len());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Command {
    /// The arguments, already encoded as bulk strings.
    args: BytesMut,
    argc: usize,
}

impl Command {
    /// A command with its name (the first argument).
    pub fn new(name: impl AsRef<[u8]>) -> Self {
        Command::default().arg(name)
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl AsRef<[u8]>) -> Self {
        self.push_arg(arg);
        self
    }

    /// Adds an integer argument, in decimal.
    pub fn arg_int(mut self, n: i64) -> Self {
        self.push_int(n);
        self
    }

    /// Adds an argument in place.
    pub fn push_arg(&mut self, arg: impl AsRef<[u8]>) {
        put_bulk(&mut self.args, arg.as_ref());
        self.argc += 1;
    }

    /// Adds an integer argument in place, in decimal.
    pub fn push_int(&mut self, n: i64) {
        let len = digits(n.unsigned_abs()) + usize::from(n < 0);
        put_header(&mut self.args, b'$', len);
        put_i64(&mut self.args, n);
        self.args.extend_from_slice(b"\r\n");
        self.argc += 1;
    }

    /// The number of arguments, the name included.
    pub fn argc(&self) -> usize {
        self.argc
    }

    /// The encoded length: what [`encode`](Self::encode) appends.
    pub fn encoded_len(&self) -> usize {
        3 + digits(self.argc as u64) + self.args.len()
    }

    /// Appends the command (`*<argc>\r\n` and the bulk strings) to `dst`.
    pub fn encode(&self, dst: &mut BytesMut) {
        dst.reserve(self.encoded_len());
        put_header(dst, b'*', self.argc);
        dst.extend_from_slice(&self.args);
    }

    /// The encoded command as one buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut b);
        b.freeze()
    }
}

impl<A: AsRef<[u8]>> FromIterator<A> for Command {
    fn from_iter<I: IntoIterator<Item = A>>(iter: I) -> Self {
        let mut c = Command::default();
        for a in iter {
            c.push_arg(a);
        }
        c
    }
}
