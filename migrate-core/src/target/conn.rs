//! [`Target`]: connecting to the target, authenticating, and learning what it accepts.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use resp_codec::{Frame, FrameDecoder};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::Error;
use crate::target::{Keyspace, ServerVersion};
use crate::write::{LowWater, Pipeline, ServerError, ServerErrorKind, Writer, WriterOptions};

/// How to log in to a target.
///
/// `Debug` never shows the password.
#[derive(Clone)]
pub struct TargetOptions {
    /// ACL user name (`AUTH user password`); `None` for `AUTH password` (the default user).
    /// Only used together with a password.
    pub user: Option<String>,
    /// Password; `None` to skip `AUTH`.
    pub password: Option<String>,
    /// Bound on connecting, on the handshake, and on each request of [`Target::call`].
    /// Default 10 s.
    pub timeout: Duration,
    /// `CLIENT SETNAME` value (makes the connection easy to spot in `CLIENT LIST`); refused
    /// names are ignored. Default `redis-migrate`.
    pub client_name: Option<String>,
}

impl TargetOptions {
    /// Default options with a password for the default user.
    pub fn with_password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Logs in as an ACL user.
    pub fn with_user(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self.password = Some(password.into());
        self
    }

    /// Sets [`timeout`](Self::timeout).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl Default for TargetOptions {
    fn default() -> Self {
        TargetOptions {
            user: None,
            password: None,
            timeout: Duration::from_secs(10),
            client_name: Some("redis-migrate".into()),
        }
    }
}

impl fmt::Debug for TargetOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TargetOptions")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("client_name", &self.client_name)
            .finish()
    }
}

/// An authenticated connection to a target, with what the handshake learned: its version
/// (from `INFO server`) and its `proto-max-bulk-len` (from `CONFIG GET`, or Redis's default
/// 512 MiB where `CONFIG` is forbidden, as on managed services).
///
/// The stream is generic: [`connect`](Target::connect) opens a TCP connection, and
/// [`handshake`](Target::handshake) runs over any stream the caller opened (TLS). Use
/// [`into_writer`](Target::into_writer) to start writing.
///
/// ```no_run
/// use migrate_core::{Target, TargetOptions};
///
/// # async fn demo() -> Result<(), migrate_core::Error> {
/// let mut target = Target::connect("127.0.0.1:6379", &TargetOptions::default()).await?;
/// println!("{} accepts bulks up to {} bytes", target.version(), target.proto_max_bulk_len());
/// let busy = target.keyspace().await?.non_empty([0, 1, 2]);
/// if !busy.is_empty() {
///     eprintln!("target dbs not empty: {busy:?}");
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Target<S> {
    stream: S,
    addr: String,
    timeout: Duration,
    read_buf: BytesMut,
    decoder: FrameDecoder,
    version: Option<ServerVersion>,
    proto_max_bulk_len: Option<u64>,
    /// The db selected on this connection.
    db: u32,
    broken: bool,
    /// The socket's low-water mark for the writer (a plain TCP stream).
    low_water: Option<LowWater>,
}

impl Target<TcpStream> {
    /// Connects to `addr` (`host:port`) over TCP and runs the [`handshake`](Target::handshake).
    ///
    /// # Errors
    /// [`Error::Connect`] (refused, unknown host), [`Error::Timeout`], and the handshake's.
    pub async fn connect(addr: &str, options: &TargetOptions) -> Result<Target<TcpStream>, Error> {
        let stream = match tokio::time::timeout(options.timeout, TcpStream::connect(addr)).await {
            Err(_) => {
                return Err(Error::Timeout {
                    addr: addr.into(),
                    timeout: options.timeout,
                    during: "connect",
                })
            }
            Ok(Err(e)) => {
                return Err(Error::Connect {
                    addr: addr.into(),
                    source: Arc::new(e),
                })
            }
            Ok(Ok(s)) => s,
        };
        // Pipelined small writes must not wait for Nagle; failure to set it is harmless.
        let _ = stream.set_nodelay(true);
        let low_water = LowWater::of(&stream);
        Ok(Target::handshake(stream, addr, options)
            .await?
            .with_low_water(low_water))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Target<S> {
    /// Logs in over an open stream (`AUTH`), then reads `INFO server` and
    /// `CONFIG GET proto-max-bulk-len`, and sets the client name. `addr` only names the
    /// server in errors.
    ///
    /// # Errors
    /// [`Error::AuthRefused`] (`-WRONGPASS`, or any error to `AUTH`),
    /// [`Error::AuthRequired`] (`-NOAUTH` without a password), [`Error::CommandRefused`] when
    /// `INFO server` is refused, [`Error::UnknownVersion`], [`Error::Timeout`], connection
    /// errors.
    pub async fn handshake(
        stream: S,
        addr: impl Into<String>,
        options: &TargetOptions,
    ) -> Result<Target<S>, Error> {
        let mut target = Target {
            stream,
            addr: addr.into(),
            timeout: options.timeout,
            read_buf: BytesMut::with_capacity(16 << 10),
            decoder: FrameDecoder::default(),
            version: None,
            proto_max_bulk_len: None,
            db: 0,
            broken: false,
            low_water: None,
        };
        let timeout = options.timeout;
        let addr = target.addr.clone();
        match tokio::time::timeout(timeout, target.login(options)).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(Error::Timeout {
                    addr,
                    timeout,
                    during: "handshake",
                })
            }
        }
        Ok(target)
    }

    async fn login(&mut self, options: &TargetOptions) -> Result<(), Error> {
        if let Some(password) = &options.password {
            let reply = match &options.user {
                Some(user) => self.raw_call(&["AUTH", user, password]).await?,
                None => self.raw_call(&["AUTH", password]).await?,
            };
            if let Some(reply) = ServerError::from_frame(&reply) {
                return Err(Error::AuthRefused {
                    addr: self.addr.clone(),
                    user: options.user.clone(),
                    reply,
                });
            }
        }
        let info = self.raw_call(&["INFO", "server"]).await?;
        let text = self.text_reply("INFO server", &info)?;
        self.version =
            Some(
                ServerVersion::from_info(&text).ok_or_else(|| Error::UnknownVersion {
                    addr: self.addr.clone(),
                })?,
            );
        let config = self
            .raw_call(&["CONFIG", "GET", "proto-max-bulk-len"])
            .await?;
        self.proto_max_bulk_len = config_value(&config).and_then(|v| v.parse().ok());
        if let Some(name) = &options.client_name {
            // Managed services may refuse CLIENT: the name is only a convenience.
            self.raw_call(&["CLIENT", "SETNAME", name]).await?;
        }
        Ok(())
    }

    /// `host:port` as given.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The target's family and version, from `INFO server`.
    pub fn version(&self) -> ServerVersion {
        self.version
            .unwrap_or(ServerVersion::new(crate::ServerFamily::Redis, 0, 0, 0))
    }

    /// The target's `proto-max-bulk-len`, or 512 MiB (Redis's default) when `CONFIG GET` was
    /// refused.
    pub fn proto_max_bulk_len(&self) -> u64 {
        self.proto_max_bulk_len
            .unwrap_or(WriterOptions::DEFAULT_MAX_BULK_LEN)
    }

    /// Whether [`proto_max_bulk_len`](Self::proto_max_bulk_len) was read from the target
    /// (`false`: the default was assumed).
    pub fn proto_max_bulk_len_known(&self) -> bool {
        self.proto_max_bulk_len.is_some()
    }

    /// Sends one command and returns its reply; server error replies are returned as
    /// frames, not errors.
    ///
    /// # Errors
    /// Connection errors, invalid RESP, [`Error::Timeout`] after
    /// [`TargetOptions::timeout`] (the connection is then unusable).
    pub async fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Frame, Error> {
        match tokio::time::timeout(self.timeout, self.raw_call(args)).await {
            Ok(r) => r,
            Err(_) => Err(self.timed_out()),
        }
    }

    /// Sends every command in one write, then reads their replies, in order: one round trip
    /// for a batch (`DUMP` + `PTTL` of a hundred keys, say). Server error replies are
    /// frames in the result, not errors.
    ///
    /// # Errors
    /// As [`call`](Self::call); the timeout bounds the whole batch.
    pub async fn call_many<C, A>(&mut self, commands: &[C]) -> Result<Vec<Frame>, Error>
    where
        C: AsRef<[A]>,
        A: AsRef<[u8]>,
    {
        match tokio::time::timeout(self.timeout, self.raw_call_many(commands)).await {
            Ok(r) => r,
            Err(_) => Err(self.timed_out()),
        }
    }

    async fn raw_call_many<C, A>(&mut self, commands: &[C]) -> Result<Vec<Frame>, Error>
    where
        C: AsRef<[A]>,
        A: AsRef<[u8]>,
    {
        let mut out = BytesMut::new();
        for c in commands {
            resp_codec::encode_command(&mut out, c.as_ref());
        }
        self.write_out(&out).await?;
        let mut replies = Vec::with_capacity(commands.len());
        while replies.len() < commands.len() {
            replies.push(self.read_frame().await?);
        }
        Ok(replies)
    }

    /// The names of the loaded modules (`MODULE LIST`), or `None` when the server refuses
    /// the command (managed services, ACLs) and the modules cannot be known. Engines built
    /// into the server that it lists as modules (Valkey 9's `lua`) are left out.
    pub async fn modules(&mut self) -> Result<Option<Vec<String>>, Error> {
        let reply = self.call(&["MODULE", "LIST"]).await?;
        let Some(list) = reply.as_slice() else {
            return Ok(None);
        };
        let names = list
            .iter()
            .filter_map(|m| named_field(m, b"name"))
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .filter(|n| !BUILT_IN_MODULES.contains(&n.as_str()))
            .collect();
        Ok(Some(names))
    }

    /// The names of the function libraries (`FUNCTION LIST`); empty before Redis 7.0 and
    /// when the server refuses the command.
    pub async fn function_libraries(&mut self) -> Result<Vec<Bytes>, Error> {
        if !self.version().has_functions() {
            return Ok(Vec::new());
        }
        let reply = self.call(&["FUNCTION", "LIST"]).await?;
        Ok(reply
            .as_slice()
            .unwrap_or_default()
            .iter()
            .filter_map(|l| named_field(l, b"library_name"))
            .map(Bytes::copy_from_slice)
            .collect())
    }

    /// Key counts per db from `INFO keyspace` (one round trip).
    pub async fn keyspace(&mut self) -> Result<Keyspace, Error> {
        let reply = self.call(&["INFO", "keyspace"]).await?;
        let text = self.text_reply("INFO keyspace", &reply)?;
        Ok(Keyspace::from_info(&text))
    }

    /// The number of keys in `db` (`SELECT db` + `DBSIZE`); fails with
    /// [`Error::SelectRefused`] when the db does not exist on the target.
    pub async fn db_size(&mut self, db: u32) -> Result<u64, Error> {
        if db != self.db {
            let reply = self.call(&["SELECT", &db.to_string()]).await?;
            if let Some(reply) = ServerError::from_frame(&reply) {
                return Err(Error::SelectRefused { db, reply });
            }
            self.db = db;
        }
        match self.call(&["DBSIZE"]).await? {
            Frame::Integer(n) if n >= 0 => Ok(n as u64),
            other => Err(self.unexpected("DBSIZE", "an integer", &other)),
        }
    }

    /// The options a [`Writer`] to this target should use: the defaults, with
    /// [`WriterOptions::max_bulk_len`] set to the target's `proto-max-bulk-len`.
    pub fn writer_options(&self) -> WriterOptions {
        WriterOptions::default().with_max_bulk_len(self.proto_max_bulk_len())
    }

    /// The low-water mark the [`Writer`] of this connection reads replies with (see
    /// [`Writer::set_low_water`]); [`Target::connect`] sets it for its TCP stream.
    pub(crate) fn with_low_water(mut self, lw: Option<LowWater>) -> Self {
        self.low_water = lw;
        self
    }

    /// Turns the connection into a [`Writer`]. `options.max_bulk_len` is lowered to the
    /// target's `proto-max-bulk-len` when above it. Over plain TCP (from
    /// [`Target::connect`], or a URL without TLS) the writer reads replies in batches
    /// ([`Writer::set_low_water`]).
    pub fn into_writer(self, options: WriterOptions) -> Writer<S> {
        let max = options.max_bulk_len.min(self.proto_max_bulk_len());
        let mut pipeline = Pipeline::new(options.with_max_bulk_len(max));
        // After a timeout the selected db is uncertain: let the writer SELECT again.
        pipeline.assume_db((!self.broken).then_some(self.db));
        let mut writer = Writer::from_pipeline(self.stream, pipeline);
        writer.set_low_water(self.low_water);
        writer
    }

    /// The stream back.
    pub fn into_inner(self) -> S {
        self.stream
    }

    fn text_reply(&self, command: &'static str, reply: &Frame) -> Result<String, Error> {
        match reply {
            Frame::BulkString(b) | Frame::VerbatimString { data: b, .. } => {
                Ok(String::from_utf8_lossy(b).into_owned())
            }
            _ => match ServerError::from_frame(reply) {
                Some(e) if e.kind() == ServerErrorKind::NoAuth => Err(Error::AuthRequired {
                    addr: self.addr.clone(),
                }),
                Some(reply) => Err(Error::CommandRefused {
                    addr: self.addr.clone(),
                    command,
                    reply,
                }),
                None => Err(self.unexpected(command, "a bulk string", reply)),
            },
        }
    }

    fn unexpected(&self, command: &str, expected: &'static str, found: &Frame) -> Error {
        let found = match found {
            Frame::Integer(i) => format!("integer {i}"),
            f if f.is_error() => ServerError::from_frame(f)
                .map(|e| format!("-{e}"))
                .unwrap_or_default(),
            Frame::Array(v) => format!("an array of {} elements", v.len()),
            f if f.is_null() => "null".into(),
            _ => "another type".into(),
        };
        Error::UnexpectedReply {
            command: format!("{command} on {}", self.addr),
            expected,
            found,
        }
    }

    async fn raw_call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Frame, Error> {
        let mut out = BytesMut::new();
        resp_codec::encode_command(&mut out, args);
        self.write_out(&out).await?;
        self.read_frame().await
    }

    /// Writes `out` (refused once a timeout left the connection unusable).
    async fn write_out(&mut self, out: &[u8]) -> Result<(), Error> {
        if self.broken {
            return Err(Error::InvalidUse(
                "the target connection is unusable after a timeout",
            ));
        }
        let written = async {
            self.stream.write_all(out).await?;
            self.stream.flush().await
        }
        .await;
        written.map_err(|e| self.lost(Some(e)))
    }

    /// A request took longer than the timeout: the connection is unusable now.
    fn timed_out(&mut self) -> Error {
        self.broken = true;
        Error::Timeout {
            addr: self.addr.clone(),
            timeout: self.timeout,
            during: "request",
        }
    }

    /// The next reply (RESP3 pushes skipped).
    async fn read_frame(&mut self) -> Result<Frame, Error> {
        loop {
            match self.decoder.decode(&mut self.read_buf) {
                Ok(Some((Frame::Push(_), _))) => continue,
                Ok(Some((frame, _))) => return Ok(frame),
                Ok(None) => {}
                Err(e) => {
                    self.broken = true;
                    return Err(e.into());
                }
            }
            match self.stream.read_buf(&mut self.read_buf).await {
                Ok(0) => return Err(self.lost(None)),
                Ok(_) => {}
                Err(e) => return Err(self.lost(Some(e))),
            }
        }
    }

    fn lost(&mut self, e: Option<io::Error>) -> Error {
        self.broken = true;
        match e {
            Some(e) => Error::ConnectionLost {
                in_flight: 1,
                source: Arc::new(e),
            },
            None => Error::ConnectionClosed { in_flight: 1 },
        }
    }
}

/// What `MODULE LIST` shows that is part of the server itself, on every server of that
/// version: Valkey 9 lists its Lua scripting engine.
const BUILT_IN_MODULES: &[&str] = &["lua"];

/// The value of field `name` in a `[k, v, ...]` array (RESP2) or map (RESP3) reply.
fn named_field<'a>(entry: &'a Frame, name: &[u8]) -> Option<&'a [u8]> {
    match entry {
        Frame::Array(items) => items
            .chunks_exact(2)
            .find(|kv| kv[0].as_bytes() == Some(name))
            .and_then(|kv| kv[1].as_bytes()),
        Frame::Map(kv) => kv
            .iter()
            .find(|(k, _)| k.as_bytes() == Some(name))
            .and_then(|(_, v)| v.as_bytes()),
        _ => None,
    }
}

/// The value of a `CONFIG GET name` reply: `[name, value]` (RESP2) or `{name: value}`
/// (RESP3); `None` for an error or an empty reply.
fn config_value(reply: &Frame) -> Option<String> {
    let value = match reply {
        Frame::Array(items) => items.get(1)?,
        Frame::Map(pairs) => &pairs.first()?.1,
        _ => return None,
    };
    value
        .as_bytes()
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_values() {
        let resp2 = Frame::Array(vec![
            Frame::bulk("proto-max-bulk-len"),
            Frame::bulk("1048576"),
        ]);
        assert_eq!(config_value(&resp2).as_deref(), Some("1048576"));
        let resp3 = Frame::Map(vec![(Frame::bulk("proto-max-bulk-len"), Frame::bulk("7"))]);
        assert_eq!(config_value(&resp3).as_deref(), Some("7"));
        assert_eq!(config_value(&Frame::Array(vec![])), None);
        assert_eq!(config_value(&Frame::SimpleError("NOPERM".into())), None);
    }

    #[test]
    fn options_debug_redacts_password() {
        let o = TargetOptions::default().with_user("admin", "hunter2");
        let shown = format!("{o:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("admin"));
    }
}
