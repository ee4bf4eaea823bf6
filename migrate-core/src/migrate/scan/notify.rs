//! Keyspace notifications: a subscriber task on its own connection
//! (`PSUBSCRIBE __keyspace@*__:*`) feeding a deduplicated queue of keys to copy again.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use resp_codec::{Frame, FrameDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

use super::super::conn::{self, Stream};
use super::super::{MigrationError, TargetConfig};

/// The pattern subscribed to: every key of every db.
pub(crate) const PATTERN: &str = "__keyspace@*__:*";

/// Keys queued at most; beyond, notifications are dropped and a rescan is asked for.
const MAX_QUEUED: usize = 1 << 20;

/// Keys touched on the source and not copied again yet, oldest first, each at most once.
#[derive(Default)]
pub(crate) struct Changes {
    q: Mutex<Queue>,
    /// Woken on every new key.
    pub(crate) wake: Notify,
    /// Notifications may have been lost (the subscription dropped and came back, or the
    /// queue overflowed): the runner rescans.
    lost: AtomicBool,
    /// Cluster masters (`host:port`) whose subscription dropped and came back: the runner
    /// rescans those only.
    lost_nodes: Mutex<BTreeSet<String>>,
    /// Re-subscriptions after the first.
    pub(crate) reconnects: AtomicU64,
    /// Notifications received.
    pub(crate) received: AtomicU64,
}

#[derive(Default)]
struct Queue {
    order: VecDeque<(u32, Bytes, Instant)>,
    queued: HashSet<(u32, Bytes)>,
}

impl Changes {
    pub(crate) fn push(&self, db: u32, key: Bytes) {
        self.received.fetch_add(1, Ordering::Relaxed);
        let mut q = self.q.lock().unwrap_or_else(|e| e.into_inner());
        if q.queued.contains(&(db, key.clone())) {
            return;
        }
        if q.order.len() >= MAX_QUEUED {
            self.lost.store(true, Ordering::Relaxed);
            return;
        }
        q.queued.insert((db, key.clone()));
        q.order.push_back((db, key, Instant::now()));
        drop(q);
        self.wake.notify_one();
    }

    /// Up to `n` keys, oldest first, removed from the queue (a later notification queues
    /// the key again).
    pub(crate) fn pop(&self, n: usize) -> Vec<(u32, Bytes)> {
        let mut q = self.q.lock().unwrap_or_else(|e| e.into_inner());
        let n = n.min(q.order.len());
        let out: Vec<(u32, Bytes)> = q.order.drain(..n).map(|(d, k, _)| (d, k)).collect();
        for k in &out {
            q.queued.remove(k);
        }
        out
    }

    /// The queue's length and the age of its oldest entry.
    pub(crate) fn lag(&self) -> (usize, Duration) {
        let q = self.q.lock().unwrap_or_else(|e| e.into_inner());
        let age = q.order.front().map(|e| e.2.elapsed()).unwrap_or_default();
        (q.order.len(), age)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.lag().0 == 0
    }

    /// What may have lost notifications since the last call: everything (`all`), or
    /// some cluster masters.
    pub(crate) fn take_lost(&self) -> Lost {
        let nodes = std::mem::take(&mut *self.lost_nodes.lock().unwrap_or_else(|e| e.into_inner()));
        Lost {
            all: self.lost.swap(false, Ordering::Relaxed),
            nodes,
        }
    }

    /// Whether notifications may have been lost (without clearing it).
    pub(crate) fn any_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
            || !self
                .lost_nodes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty()
    }

    /// Marks notifications of `node` (a cluster master; `None`: the source) as lost.
    pub(crate) fn mark_lost(&self, node: Option<&str>) {
        match node {
            Some(n) => {
                self.lost_nodes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(n.to_string());
            }
            None => self.lost.store(true, Ordering::Relaxed),
        }
        self.wake.notify_one();
    }
}

/// What [`Changes::take_lost`] found.
#[derive(Debug, Default)]
pub(crate) struct Lost {
    /// Everything may have been missed (a standalone source, a queue overflow).
    pub(crate) all: bool,
    /// Cluster masters whose own notifications may have been missed.
    pub(crate) nodes: BTreeSet<String>,
}

impl Lost {
    /// Nothing lost.
    pub(crate) fn is_empty(&self) -> bool {
        !self.all && self.nodes.is_empty()
    }
}

/// `__keyspace@<db>__:<key>` → `(db, key)`.
pub(crate) fn parse_channel(channel: &[u8]) -> Option<(u32, Bytes)> {
    let rest = channel.strip_prefix(b"__keyspace@")?;
    let end = rest.iter().position(|&c| c == b'_')?;
    let db = std::str::from_utf8(&rest[..end]).ok()?.parse().ok()?;
    let key = rest[end..].strip_prefix(b"__:")?;
    Some((db, Bytes::copy_from_slice(key)))
}

struct Sub {
    stream: Stream,
    buf: BytesMut,
    dec: FrameDecoder,
}

impl Sub {
    async fn next(&mut self) -> Result<Frame, String> {
        loop {
            match self.dec.decode(&mut self.buf) {
                Ok(Some((f, _))) => return Ok(f),
                Ok(None) => {}
                Err(e) => return Err(e.to_string()),
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) => return Err("connection closed".into()),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

fn items(f: &Frame) -> Option<&[Frame]> {
    match f {
        Frame::Array(v) | Frame::Push(v) => Some(v),
        _ => None,
    }
}

async fn open(cfg: &TargetConfig, timeout: Duration) -> Result<Sub, String> {
    let t = conn::connect(cfg, timeout)
        .await
        .map_err(|e| e.to_string())?;
    let mut sub = Sub {
        stream: t.into_inner(),
        buf: BytesMut::with_capacity(16 << 10),
        dec: FrameDecoder::default(),
    };
    let mut out = BytesMut::new();
    resp_codec::encode_command(&mut out, &["PSUBSCRIBE", PATTERN]);
    sub.stream
        .write_all(&out)
        .await
        .map_err(|e| e.to_string())?;
    sub.stream.flush().await.map_err(|e| e.to_string())?;
    let reply = tokio::time::timeout(timeout, sub.next())
        .await
        .map_err(|_| "no answer to PSUBSCRIBE".to_string())??;
    match items(&reply) {
        Some([kind, ..]) if kind.as_bytes() == Some(b"psubscribe") => Ok(sub),
        _ => Err(match resp_codec_error(&reply) {
            Some(e) => format!("PSUBSCRIBE refused: {e}"),
            None => format!("unexpected reply to PSUBSCRIBE: {reply:?}"),
        }),
    }
}

fn resp_codec_error(f: &Frame) -> Option<String> {
    crate::ServerError::from_frame(f).map(|e| e.to_string())
}

/// Subscribes (before returning: notifications of every write after this call are
/// queued), then keeps the subscription in a task: when it drops, the task subscribes
/// again and marks the queue `lost`, so the runner rescans. `node`: the cluster master
/// subscribed to (each publishes only its own keys' events), whose keys alone are then
/// rescanned.
pub(crate) async fn subscribe(
    cfg: TargetConfig,
    timeout: Duration,
    changes: Arc<Changes>,
    node: Option<String>,
) -> Result<tokio::task::JoinHandle<()>, MigrationError> {
    let url = cfg.url.to_string();
    let first = open(&cfg, timeout)
        .await
        .map_err(|reason| MigrationError::ScanSource {
            url: url.clone(),
            reason: format!("keyspace notifications: {reason}"),
        })?;
    Ok(tokio::spawn(async move {
        let mut sub = Some(first);
        let mut backoff = Duration::from_millis(100);
        loop {
            let Some(s) = sub.as_mut() else {
                tokio::time::sleep(backoff).await;
                match open(&cfg, timeout).await {
                    Ok(s) => {
                        sub = Some(s);
                        backoff = Duration::from_millis(100);
                        changes.reconnects.fetch_add(1, Ordering::Relaxed);
                        changes.mark_lost(node.as_deref());
                        tracing::warn!(target: "migrate", "keyspace notifications of {url}: subscribed again; changes made meanwhile are found by a rescan");
                    }
                    Err(e) => {
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                        tracing::debug!(target: "migrate", "keyspace notifications of {url}: {e}");
                    }
                }
                continue;
            };
            match s.next().await {
                Ok(f) => {
                    if let Some([kind, _pattern, channel, _event]) = items(&f) {
                        if kind.as_bytes() == Some(b"pmessage") {
                            if let Some((db, key)) = channel.as_bytes().and_then(parse_channel) {
                                changes.push(db, key);
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(target: "migrate", "keyspace notifications of {url} lost ({e}): subscribing again");
                    sub = None;
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_and_dedup() {
        assert_eq!(
            parse_channel(b"__keyspace@12__:a:b__:c"),
            Some((12, Bytes::from_static(b"a:b__:c")))
        );
        assert_eq!(parse_channel(b"__keyevent@0__:set"), None);
        let c = Changes::default();
        c.push(0, Bytes::from_static(b"k"));
        c.push(0, Bytes::from_static(b"k"));
        c.push(1, Bytes::from_static(b"k"));
        assert_eq!(c.lag().0, 2);
        assert_eq!(c.pop(10).len(), 2);
        c.push(0, Bytes::from_static(b"k"));
        assert_eq!(c.lag().0, 1);
    }
}
