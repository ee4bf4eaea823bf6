//! The source of scan mode as nodes: one [`SourceConn`] for a standalone server, one per
//! master for a Redis Cluster, with the slot map that says which master owns a key.

use std::time::Duration;

use bytes::Bytes;
use resp_codec::Frame;

use super::super::limit::Buckets;
use super::super::{MigrationError, TargetConfig};
use super::source::SourceConn;
use crate::cluster::ClusterTopology;
use crate::key_slot;

/// How long keys may keep being redirected (`MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN`:
/// a resharding or failover in progress) before scan mode stops.
pub(crate) const RETRY_FOR: Duration = Duration::from_secs(30);

/// Whether an error reply means "another node, or again later" in a cluster.
pub(crate) fn redirect_text(f: &Frame) -> Option<String> {
    let e = crate::ServerError::from_frame(f)?;
    let text = e.to_string();
    ["MOVED ", "ASK ", "TRYAGAIN", "CLUSTERDOWN"]
        .iter()
        .any(|p| text.starts_with(p))
        .then_some(text)
}

/// The source's nodes.
pub(crate) struct Sources {
    /// The server, or one connection per master in [`ClusterTopology::masters`] order.
    pub(crate) conns: Vec<SourceConn>,
    /// The configuration (URL, TLS) of each connection.
    pub(crate) cfgs: Vec<TargetConfig>,
    /// `host:port` of each connection.
    addrs: Vec<String>,
    /// `None` for a standalone server.
    pub(crate) topology: Option<ClusterTopology>,
    seed: TargetConfig,
    timeout: Duration,
    buckets: Buckets,
}

impl Sources {
    /// Connects to the source; when it is a cluster, to each of its masters.
    pub(crate) async fn open(
        cfg: &TargetConfig,
        timeout: Duration,
        buckets: Buckets,
    ) -> Result<Sources, MigrationError> {
        let mut seed = SourceConn::open(cfg, timeout, buckets.clone()).await?;
        let topology = seed.discover().await?;
        let mut s = Sources {
            addrs: vec![seed.addr()],
            conns: vec![seed],
            cfgs: vec![cfg.clone()],
            topology: None,
            seed: cfg.clone(),
            timeout,
            buckets,
        };
        if let Some(t) = topology {
            s.adopt(t).await?;
        }
        Ok(s)
    }

    /// One connection per master of `t`, the open ones kept.
    async fn adopt(&mut self, t: ClusterTopology) -> Result<(), MigrationError> {
        let masters: Vec<crate::cluster::Node> = t.masters().into_iter().cloned().collect();
        if masters.is_empty() {
            return Err(MigrationError::ScanSource {
                url: self.seed.url.to_string(),
                reason: "the cluster serves no slots".into(),
            });
        }
        let mut old: Vec<(String, SourceConn, TargetConfig)> = self
            .addrs
            .drain(..)
            .zip(self.conns.drain(..))
            .zip(self.cfgs.drain(..))
            .map(|((a, c), f)| (a, c, f))
            .collect();
        for m in masters {
            let addr = m.addr();
            let (conn, cfg) = match old.iter().position(|o| o.0 == addr) {
                Some(i) => {
                    let (_, c, f) = old.swap_remove(i);
                    (c, f)
                }
                None => {
                    let cfg = TargetConfig {
                        url: self.seed.url.with_host_port(&m.host, m.port),
                        tls: self.seed.tls.clone(),
                    };
                    let c = SourceConn::open(&cfg, self.timeout, self.buckets.clone()).await?;
                    (c, cfg)
                }
            };
            self.addrs.push(addr);
            self.conns.push(conn);
            self.cfgs.push(cfg);
        }
        self.topology = Some(t);
        Ok(())
    }

    /// Reads the topology again (after `MOVED`, or a node gone) from the first master
    /// that answers.
    pub(crate) async fn refresh(&mut self) -> Result<(), MigrationError> {
        if self.topology.is_none() {
            return Ok(());
        }
        let mut last = None;
        for i in 0..self.conns.len() {
            match self.conns[i].discover().await {
                Ok(Some(t)) if !t.masters().is_empty() => return self.adopt(t).await,
                Ok(_) => {}
                Err(e) => last = Some(e),
            }
        }
        // Every known master failed: start again from the seed.
        let mut seed = SourceConn::open(&self.seed, self.timeout, self.buckets.clone()).await?;
        match seed.discover().await {
            Ok(Some(t)) => self.adopt(t).await,
            Ok(None) => Err(last.unwrap_or(MigrationError::ScanSource {
                url: self.seed.url.to_string(),
                reason: "no longer in cluster mode".into(),
            })),
            Err(e) => Err(e),
        }
    }

    /// Whether the source is a cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        self.topology.is_some()
    }

    /// The connection index of `key`'s master (0 for a standalone server).
    pub(crate) fn owner(&self, key: &[u8]) -> usize {
        let Some(t) = &self.topology else { return 0 };
        t.master_for_slot(key_slot(key))
            .and_then(|m| {
                let a = m.addr();
                self.addrs.iter().position(|x| *x == a)
            })
            .unwrap_or(0)
    }

    /// The connection index of the node `ASK` names, if it is a known master.
    pub(crate) fn ask_target(&self, error: &str) -> Option<usize> {
        let r = crate::ServerError::new(Bytes::copy_from_slice(error.as_bytes())).redirect()?;
        if !r.ask {
            return None;
        }
        let to = crate::cluster::Node::parse_addr(&r.addr)?;
        self.addrs.iter().position(|a| {
            crate::cluster::Node::parse_addr(a)
                .is_some_and(|n| n.port == to.port && (to.host.is_empty() || n.host == to.host))
        })
    }

    /// `host:port` of connection `i`.
    pub(crate) fn addr(&self, i: usize) -> &str {
        &self.addrs[i]
    }

    /// The connection index of the master at `addr`, if it still is one.
    pub(crate) fn index_of(&self, addr: &str) -> Option<usize> {
        self.addrs.iter().position(|a| a == addr)
    }

    /// The redacted URL of connection `i`.
    pub(crate) fn url(&self, i: usize) -> String {
        self.cfgs[i].url.to_string()
    }
}
