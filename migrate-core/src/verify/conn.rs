//! Connections of a verification: [`connect`] (TCP or TLS, AUTH, the same handling of
//! `redis://`/`rediss://` URLs as the migration's target) and the pipelined reader that
//! sends one batch of commands per round trip, paced by the rate cap.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use resp_codec::{Frame, FrameDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::error::{Side, VerifyError};
use crate::migrate::TargetConfig;
use crate::{ServerError, ServerVersion, Target};

pub use crate::migrate::{Io, Stream};

/// Connects to the server of `cfg` and logs in, as the migration connects to its target
/// ([`crate::migrate::connect`], the same code), naming the client `redis-migrate-verify`.
///
/// # Errors
/// [`VerifyError::Connect`] (refused, unknown host, timeout, authentication) and
/// [`VerifyError::Tls`], both naming the redacted URL.
pub async fn connect(
    cfg: &TargetConfig,
    timeout: Duration,
    side: Side,
) -> Result<Target<Stream>, VerifyError> {
    let url = cfg.url.to_string();
    crate::migrate::open(cfg, timeout, Some("redis-migrate-verify"))
        .await
        .map_err(|e| match e {
            crate::migrate::OpenError::Server(source) => VerifyError::Connect {
                side,
                url,
                source: Box::new(source),
            },
            crate::migrate::OpenError::Tls(reason) => VerifyError::Tls { side, url, reason },
        })
}

/// A command: its arguments.
pub(crate) type Cmd = Vec<Bytes>;

/// Builds a command from anything byte-like.
pub(crate) fn cmd<I, A>(args: I) -> Cmd
where
    I: IntoIterator<Item = A>,
    A: AsRef<[u8]>,
{
    args.into_iter()
        .map(|a| Bytes::copy_from_slice(a.as_ref()))
        .collect()
}

/// Pacing of one side's commands: at most `rate` per second, spread evenly.
#[derive(Debug)]
struct Pace {
    per_op: Duration,
    next: Instant,
}

/// A pipelined reader over one logged-in connection.
pub(crate) struct Reader {
    stream: Stream,
    pub(crate) side: Side,
    pub(crate) url: String,
    pub(crate) version: ServerVersion,
    timeout: Duration,
    read_buf: BytesMut,
    decoder: FrameDecoder,
    db: Option<u32>,
    pace: Option<Pace>,
    /// Commands sent (SELECT included).
    pub(crate) commands: u64,
    /// Largest batch sent at once (a rate cap lowers it so batches stay small).
    pub(crate) max_batch: usize,
    /// Send `ASKING` before every command (reading keys of a slot this cluster node is
    /// importing, after an `ASK` redirection); its `+OK` replies are dropped.
    pub(crate) asking: bool,
}

impl Reader {
    pub(crate) fn new(
        target: Target<Stream>,
        side: Side,
        url: String,
        timeout: Duration,
        max_ops: Option<u64>,
    ) -> Reader {
        let version = target.version();
        let pace = max_ops.filter(|&n| n > 0).map(|n| Pace {
            per_op: Duration::from_secs_f64(1.0 / n as f64),
            next: Instant::now(),
        });
        Reader {
            stream: target.into_inner(),
            side,
            url,
            version,
            timeout,
            read_buf: BytesMut::with_capacity(64 << 10),
            decoder: FrameDecoder::default(),
            db: None,
            pace,
            commands: 0,
            max_batch: max_ops
                .filter(|&n| n > 0)
                .map_or(usize::MAX, |n| n as usize),
            asking: false,
        }
    }

    /// Sends `cmds` in db `db` (one round trip per `max_batch` commands) and returns their
    /// replies in order; server error replies are frames, not errors.
    pub(crate) async fn batch(&mut self, db: u32, cmds: &[Cmd]) -> Result<Vec<Frame>, VerifyError> {
        let mut out = Vec::with_capacity(cmds.len());
        if self.db != Some(db) {
            let reply = self
                .send(&[cmd(["SELECT".to_string(), db.to_string()])])
                .await?;
            if let Some(e) = reply.first().and_then(ServerError::from_frame) {
                return Err(VerifyError::Server {
                    side: self.side,
                    url: self.url.clone(),
                    command: format!("SELECT {db}"),
                    reply: e.to_string(),
                });
            }
            self.db = Some(db);
        }
        for chunk in cmds.chunks(self.max_batch.max(1)) {
            out.extend(self.send(chunk).await?);
        }
        Ok(out)
    }

    /// One command in db `db`.
    pub(crate) async fn one(&mut self, db: u32, c: Cmd) -> Result<Frame, VerifyError> {
        let mut r = self.batch(db, std::slice::from_ref(&c)).await?;
        Ok(r.pop().unwrap_or(Frame::Null))
    }

    async fn send(&mut self, cmds: &[Cmd]) -> Result<Vec<Frame>, VerifyError> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(p) = &mut self.pace {
            let now = Instant::now();
            if p.next > now {
                tokio::time::sleep_until(p.next).await;
            }
            p.next = p.next.max(now) + p.per_op * cmds.len() as u32;
        }
        self.commands += cmds.len() as u64;
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.raw_send(cmds)).await {
            Ok(r) => r,
            Err(_) => {
                self.db = None;
                Err(self.io_err(crate::Error::Timeout {
                    addr: self.url.clone(),
                    timeout,
                    during: "request",
                }))
            }
        }
    }

    async fn raw_send(&mut self, cmds: &[Cmd]) -> Result<Vec<Frame>, VerifyError> {
        let mut buf = BytesMut::new();
        let asking = self.asking;
        for c in cmds {
            if asking {
                resp_codec::encode_command(&mut buf, &[b"ASKING".as_slice()]);
            }
            resp_codec::encode_command(&mut buf, c);
        }
        // With ASKING, every other reply is its `+OK` (or an error: then the command's
        // reply, a MOVED, says what to do).
        let expect = if asking { cmds.len() * 2 } else { cmds.len() };
        let written = async {
            self.stream.write_all(&buf).await?;
            self.stream.flush().await
        }
        .await;
        if let Err(e) = written {
            return Err(self.io_err(crate::Error::ConnectionLost {
                in_flight: cmds.len(),
                source: Arc::new(e),
            }));
        }
        let mut replies = Vec::with_capacity(cmds.len());
        let mut seen = 0usize;
        while seen < expect {
            match self.decoder.decode(&mut self.read_buf) {
                Ok(Some((Frame::Push(_), _))) => continue,
                Ok(Some((frame, _))) => {
                    seen += 1;
                    if !asking || seen % 2 == 0 {
                        replies.push(frame);
                    }
                    continue;
                }
                Ok(None) => {}
                Err(e) => return Err(self.io_err(e.into())),
            }
            match self.stream.read_buf(&mut self.read_buf).await {
                Ok(0) => {
                    return Err(self.io_err(crate::Error::ConnectionClosed {
                        in_flight: cmds.len() - replies.len(),
                    }))
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(self.io_err(crate::Error::ConnectionLost {
                        in_flight: cmds.len() - replies.len(),
                        source: Arc::new(e),
                    }))
                }
            }
        }
        Ok(replies)
    }

    fn io_err(&self, source: crate::Error) -> VerifyError {
        VerifyError::Connection {
            side: self.side,
            url: self.url.clone(),
            source: Box::new(source),
        }
    }

    /// An error for an unexpected error reply to `command` about `key`.
    pub(crate) fn refused(&self, command: &str, reply: &Frame) -> VerifyError {
        VerifyError::Server {
            side: self.side,
            url: self.url.clone(),
            command: command.to_string(),
            reply: ServerError::from_frame(reply)
                .map(|e| e.to_string())
                .unwrap_or_else(|| "an unexpected reply".into()),
        }
    }
}
