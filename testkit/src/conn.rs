use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A reply from the server, as a tiny RESP2 (and basic RESP3) reader sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK` and other simple strings.
    Status(String),
    /// `-ERR ...`: error replies are data here, like in the real codec.
    Error(String),
    /// `:42`.
    Int(i64),
    /// `$3\r\nfoo`.
    Bulk(Vec<u8>),
    /// `*N` (and RESP3 sets, maps flattened, pushes).
    Array(Vec<Reply>),
    /// `$-1`, `*-1`, `_`.
    Nil,
    /// RESP3 double, kept as text.
    Double(String),
}

impl Reply {
    /// The reply as bytes, for bulk and status replies.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Reply::Bulk(b) => Some(b),
            Reply::Status(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// The reply as text (lossy), for bulk, status and error replies.
    pub fn text(&self) -> String {
        match self {
            Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            Reply::Status(s) | Reply::Error(s) | Reply::Double(s) => s.clone(),
            Reply::Int(i) => i.to_string(),
            other => format!("{other:?}"),
        }
    }
}

/// A blocking connection to a test server, for setting up and checking data.
///
/// Every helper panics with the command and the reply when the server answers something
/// unexpected: this is test code, and a clear panic is the most useful failure.
#[derive(Debug)]
pub struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    /// Connects to `127.0.0.1:port` with generous timeouts.
    pub fn connect(port: u16) -> io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            reader: BufReader::new(stream),
        })
    }

    /// Sends one command without reading the reply (for pipelining: read them later
    /// with [`Conn::read_reply`]).
    pub fn send<I, A>(&mut self, args: I) -> io::Result<()>
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        let args: Vec<A> = args.into_iter().collect();
        let mut buf = format!("*{}\r\n", args.len()).into_bytes();
        for a in &args {
            let a = a.as_ref();
            buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            buf.extend_from_slice(a);
            buf.extend_from_slice(b"\r\n");
        }
        self.reader.get_mut().write_all(&buf)
    }

    /// Reads one reply.
    pub fn read_reply(&mut self) -> io::Result<Reply> {
        let mut line = Vec::new();
        if self.reader.read_until(b'\n', &mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if line.len() < 3 || !line.ends_with(b"\r\n") {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "bad reply line"));
        }
        let body = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
        let num = || {
            body.parse::<i64>()
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad number"))
        };
        Ok(match line[0] {
            b'+' => Reply::Status(body),
            b'-' => Reply::Error(body),
            b':' => Reply::Int(num()?),
            b',' => Reply::Double(body),
            b'_' => Reply::Nil,
            b'#' => Reply::Int(i64::from(body == "t")),
            b'$' | b'=' | b'!' => {
                let n = num()?;
                if n < 0 {
                    return Ok(Reply::Nil);
                }
                let mut data = vec![0; n as usize + 2];
                self.reader.read_exact(&mut data)?;
                data.truncate(n as usize);
                if line[0] == b'!' {
                    Reply::Error(String::from_utf8_lossy(&data).into_owned())
                } else {
                    Reply::Bulk(data)
                }
            }
            b'*' | b'~' | b'>' | b'%' => {
                let n = num()?;
                if n < 0 {
                    return Ok(Reply::Nil);
                }
                let n = if line[0] == b'%' { n * 2 } else { n };
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(self.read_reply()?);
                }
                Reply::Array(items)
            }
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unknown reply type byte {other:#04x}"),
                ))
            }
        })
    }

    /// Sends a command and returns its reply; panics on an I/O error.
    pub fn cmd<I, A>(&mut self, args: I) -> Reply
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        let args: Vec<A> = args.into_iter().collect();
        let shown = show(&args);
        self.send(&args)
            .and_then(|()| self.read_reply())
            .unwrap_or_else(|e| panic!("{shown}: {e}"))
    }

    /// Sends a command that must not fail; returns its reply.
    pub fn must<I, A>(&mut self, args: I) -> Reply
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        let args: Vec<A> = args.into_iter().collect();
        match self.cmd(&args) {
            Reply::Error(e) => panic!("{}: -{e}", show(&args)),
            r => r,
        }
    }

    /// Sends a command that must answer `+OK`.
    pub fn ok<I, A>(&mut self, args: I)
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        let args: Vec<A> = args.into_iter().collect();
        let r = self.cmd(&args);
        assert_eq!(r, Reply::Status("OK".into()), "{}", show(&args));
    }

    /// Sends a command that answers an integer.
    pub fn int<I, A>(&mut self, args: I) -> i64
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        let args: Vec<A> = args.into_iter().collect();
        match self.cmd(&args) {
            Reply::Int(i) => i,
            r => panic!("{}: expected an integer, got {r:?}", show(&args)),
        }
    }

    /// Sends a command that answers a bulk string or nil.
    pub fn bulk<I, A>(&mut self, args: I) -> Option<Vec<u8>>
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        let args: Vec<A> = args.into_iter().collect();
        match self.cmd(&args) {
            Reply::Bulk(b) => Some(b),
            Reply::Nil => None,
            r => panic!("{}: expected a bulk string, got {r:?}", show(&args)),
        }
    }

    /// `INFO <section>` parsed into `(field, value)` pairs.
    pub fn info(&mut self, section: &str) -> Vec<(String, String)> {
        let text = self.bulk(["INFO", section]).expect("INFO answered nil");
        String::from_utf8_lossy(&text)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.trim().to_string()))
            .collect()
    }

    /// One field of `INFO <section>`.
    pub fn info_field(&mut self, section: &str, field: &str) -> Option<String> {
        self.info(section)
            .into_iter()
            .find(|(k, _)| k == field)
            .map(|(_, v)| v)
    }
}

fn show<A: AsRef<[u8]>>(args: &[A]) -> String {
    args.iter()
        .map(|a| String::from_utf8_lossy(a.as_ref()).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
