//! The source connection of scan mode: pipelined requests under the load limits.

use std::time::Duration;

use bytes::Bytes;
use resp_codec::Frame;

use super::super::conn::{self, Stream};
use super::super::limit::{self, Buckets};
use super::super::{MigrationError, TargetConfig};
use crate::Target;

/// A plain (non-replica) connection to the source.
pub(crate) struct SourceConn {
    t: Target<Stream>,
    url: String,
    db: u32,
    buckets: Buckets,
}

/// Bytes of a reply as counted against `max_bandwidth`: its size on the wire (RESP2).
pub(crate) fn frame_len(f: &Frame) -> usize {
    let head = |n: usize| 3 + n.to_string().len();
    match f {
        Frame::Array(v) | Frame::Set(v) | Frame::Push(v) => {
            head(v.len()) + v.iter().map(frame_len).sum::<usize>()
        }
        Frame::Map(kv) => {
            head(kv.len())
                + kv.iter()
                    .map(|(k, v)| frame_len(k) + frame_len(v))
                    .sum::<usize>()
        }
        Frame::Integer(i) => 3 + i.to_string().len(),
        Frame::BulkString(b) => head(b.len()) + b.len() + 2,
        other => other.as_bytes().map_or(5, |b| b.len() + 3),
    }
}

impl SourceConn {
    pub(crate) async fn open(
        cfg: &TargetConfig,
        timeout: Duration,
        buckets: Buckets,
    ) -> Result<SourceConn, MigrationError> {
        let url = cfg.url.to_string();
        let t = conn::open(cfg, timeout, Some("redis-migrate-scan"))
            .await
            .map_err(|e| MigrationError::ScanSource {
                url: url.clone(),
                reason: match e {
                    conn::OpenError::Server(source) => source.to_string(),
                    conn::OpenError::Tls(reason) => format!("TLS: {reason}"),
                },
            })?;
        Ok(SourceConn {
            t,
            url,
            db: 0,
            buckets,
        })
    }

    fn err(&self, source: crate::Error) -> MigrationError {
        MigrationError::ScanSource {
            url: self.url.clone(),
            reason: source.to_string(),
        }
    }

    /// Sends the commands in one round trip, within the load limits.
    pub(crate) async fn call_many(
        &mut self,
        cmds: &[Vec<Bytes>],
    ) -> Result<Vec<Frame>, MigrationError> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        limit::take(&self.buckets.source_ops, cmds.len() as u64).await;
        let replies = match self.t.call_many(cmds).await {
            Ok(r) => r,
            Err(e) => return Err(self.err(e)),
        };
        let bytes: usize = replies.iter().map(frame_len).sum();
        limit::take(&self.buckets.source_bytes, bytes as u64).await;
        Ok(replies)
    }

    pub(crate) async fn call(&mut self, cmd: Vec<Bytes>) -> Result<Frame, MigrationError> {
        let mut r = self.call_many(&[cmd]).await?;
        Ok(r.pop().unwrap_or(Frame::Null))
    }

    /// Selects `db`; `false` when the source has no such db.
    pub(crate) async fn select(&mut self, db: u32) -> Result<bool, MigrationError> {
        if db == self.db {
            return Ok(true);
        }
        let r = self
            .call(vec![b("SELECT"), Bytes::from(db.to_string())])
            .await?;
        if r.is_error() {
            return Ok(false);
        }
        self.db = db;
        Ok(true)
    }

    /// `host:port` of the connection.
    pub(crate) fn addr(&self) -> String {
        self.t.addr().to_string()
    }

    /// The cluster topology seen from this node (`None`: a standalone server).
    pub(crate) async fn discover(
        &mut self,
    ) -> Result<Option<crate::cluster::ClusterTopology>, MigrationError> {
        match crate::cluster::discover(&mut self.t).await {
            Ok(t) => Ok(t),
            Err(e) => Err(self.err(e)),
        }
    }

    /// [`call_many`](Self::call_many) with `ASKING` before every command (keys of a slot
    /// this node is importing); the replies of the commands only.
    pub(crate) async fn call_many_asking(
        &mut self,
        cmds: &[Vec<Bytes>],
    ) -> Result<Vec<Frame>, MigrationError> {
        let mut with = Vec::with_capacity(cmds.len() * 2);
        for c in cmds {
            with.push(vec![b("ASKING")]);
            with.push(c.clone());
        }
        let replies = self.call_many(&with).await?;
        Ok(replies.into_iter().skip(1).step_by(2).collect())
    }

    /// The db selected after a pipeline that ended with `SELECT db`.
    pub(crate) fn assume_db(&mut self, db: u32) {
        self.db = db;
    }
}

pub(crate) fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}
