//! One side of a verification: a standalone server (one [`Reader`]) or a Redis Cluster
//! (one [`Reader`] per master). Keys are enumerated per unit (the server, or each master:
//! `SCAN` on a cluster node lists only its own keys) and read from the master of their
//! slot, pipelined per node; a key answered with `MOVED` is read again from its new owner
//! after the topology is read again, one answered with `ASK` from the importing node with
//! `ASKING`, `TRYAGAIN`/`CLUSTERDOWN` after a backoff; all of it bounded.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use resp_codec::Frame;
use tokio::time::Instant;

use super::conn::{cmd, connect, Cmd, Reader};
use super::error::{Side, VerifyError};
use super::read::{is_redirect, read_batch, KeyState, ReadOpts};
use crate::cluster::{discover, ClusterTopology, Node, SlotMap, TopologySource};
use crate::migrate::TargetConfig;
use crate::{key_slot, ServerError, ServerVersion};

/// How long keys may keep being redirected or refused with `TRYAGAIN`/`CLUSTERDOWN`
/// (a resharding or failover in progress) before the verification stops.
const RETRY_FOR: Duration = Duration::from_secs(15);

/// Where to read a key next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Route {
    /// The reader of this index, as the slot map says.
    Owner(usize),
    /// The reader of this index, with `ASKING` (the slot is being imported there).
    Asking(usize),
}

/// What a routed batch asks each key's node.
enum Batch<'a> {
    /// The key's state ([`read_batch`]).
    Read(ReadOpts),
    /// One command per key.
    Cmds(&'a dyn Fn(&Bytes) -> Cmd),
}

/// A key's answer to a [`Batch`].
enum Got {
    State(KeyState),
    Reply(Frame),
}

/// For an `ASK` redirection in `error`, the index of the reader (of `addrs`, `host:port`)
/// it names (an empty host: any host on its port); `None` for anything else.
pub(crate) fn ask_target(addrs: &[String], error: &str) -> Option<usize> {
    let r = ServerError::new(Bytes::copy_from_slice(error.as_bytes())).redirect()?;
    if !r.ask {
        return None;
    }
    let to = Node::parse_addr(&r.addr)?;
    addrs.iter().position(|a| {
        Node::parse_addr(a)
            .is_some_and(|n| n.port == to.port && (to.host.is_empty() || n.host == to.host))
    })
}

/// The connections of one side.
pub(crate) struct Conns {
    side: Side,
    cfg: TargetConfig,
    timeout: Duration,
    max_ops: Option<u64>,
    /// The server, or one reader per master in [`ClusterTopology::masters`] order.
    readers: Vec<Reader>,
    /// `host:port` of each reader.
    addrs: Vec<String>,
    /// The cluster's topology; `None` for a standalone server.
    topology: Option<ClusterTopology>,
    /// Commands sent by readers closed since (a master gone after a topology change).
    closed_commands: u64,
}

impl Conns {
    /// Connects to the server of `cfg`; when it is in cluster mode, to every master.
    pub(crate) async fn open(
        cfg: &TargetConfig,
        timeout: Duration,
        side: Side,
        max_ops: Option<u64>,
    ) -> Result<Conns, VerifyError> {
        let mut seed = connect(cfg, timeout, side).await?;
        let url = cfg.url.to_string();
        let topology = discover(&mut seed)
            .await
            .map_err(|e| VerifyError::Connection {
                side,
                url: url.clone(),
                source: Box::new(e),
            })?;
        let mut conns = Conns {
            side,
            cfg: cfg.clone(),
            timeout,
            max_ops,
            readers: Vec::new(),
            addrs: Vec::new(),
            topology: None,
            closed_commands: 0,
        };
        match topology {
            None => {
                conns.addrs.push(seed.addr().to_string());
                conns
                    .readers
                    .push(Reader::new(seed, side, url, timeout, max_ops));
            }
            Some(t) => {
                let addr = seed.addr().to_string();
                conns.addrs.push(addr);
                conns
                    .readers
                    .push(Reader::new(seed, side, url, timeout, max_ops));
                conns.set_topology(t).await?;
            }
        }
        Ok(conns)
    }

    /// Adopts `topology`: one reader per master, the open ones kept.
    async fn set_topology(&mut self, topology: ClusterTopology) -> Result<(), VerifyError> {
        let masters: Vec<Node> = topology.masters().into_iter().cloned().collect();
        if masters.is_empty() {
            return Err(VerifyError::Server {
                side: self.side,
                url: self.cfg.url.to_string(),
                command: "CLUSTER SHARDS".into(),
                reply: "the cluster serves no slots (no master with slots)".into(),
            });
        }
        let mut old: BTreeMap<String, Reader> =
            self.addrs.drain(..).zip(self.readers.drain(..)).collect();
        for m in &masters {
            let addr = m.addr();
            let reader = match old.remove(&addr) {
                Some(r) => r,
                None => {
                    let cfg = TargetConfig {
                        url: self.cfg.url.with_host_port(&m.host, m.port),
                        tls: self.cfg.tls.clone(),
                    };
                    let t = connect(&cfg, self.timeout, self.side).await?;
                    Reader::new(
                        t,
                        self.side,
                        cfg.url.to_string(),
                        self.timeout,
                        self.max_ops,
                    )
                }
            };
            self.addrs.push(addr);
            self.readers.push(reader);
        }
        self.closed_commands += old.values().map(|r| r.commands).sum::<u64>();
        self.topology = Some(topology);
        Ok(())
    }

    /// Reads the topology again from the first master that answers.
    async fn refresh(&mut self) -> Result<(), VerifyError> {
        let mut last = None;
        for i in 0..self.readers.len() {
            let r = &mut self.readers[i];
            let shards = r.version.major >= 7 || r.version.is_valkey();
            let (command, parsed) = if shards {
                let reply = r.one(0, cmd(["CLUSTER", "SHARDS"])).await?;
                ("CLUSTER SHARDS", SlotMap::from_shards(&reply))
            } else {
                let reply = r.one(0, cmd(["CLUSTER", "SLOTS"])).await?;
                ("CLUSTER SLOTS", SlotMap::from_slots(&reply))
            };
            match parsed {
                Ok(mut map) => {
                    if let Some(n) = Node::parse_addr(&self.addrs[i]) {
                        map.fill_unknown_hosts(&n.host);
                    }
                    let source = if shards {
                        TopologySource::Shards
                    } else {
                        TopologySource::Slots
                    };
                    return self.set_topology(ClusterTopology::new(map, source)).await;
                }
                Err(e) => last = Some((command, self.readers[i].url.clone(), e.to_string())),
            }
        }
        let (command, url, reply) =
            last.unwrap_or(("CLUSTER SHARDS", self.cfg.url.to_string(), String::new()));
        Err(VerifyError::Server {
            side: self.side,
            url,
            command: command.into(),
            reply,
        })
    }

    /// How many units keys are enumerated on: 1, or the number of masters.
    pub(crate) fn units(&self) -> usize {
        self.readers.len()
    }

    /// The reader of unit `i`.
    pub(crate) fn unit(&mut self, i: usize) -> &mut Reader {
        &mut self.readers[i]
    }

    /// The side's URL, redacted.
    pub(crate) fn url(&self) -> String {
        self.cfg.url.to_string()
    }

    /// `host:port` of unit `i`.
    pub(crate) fn addr(&self, i: usize) -> &str {
        &self.addrs[i]
    }

    /// The first reader (the server, or the first master): server-wide questions.
    pub(crate) fn first(&mut self) -> &mut Reader {
        &mut self.readers[0]
    }

    /// The version of the (first) server.
    pub(crate) fn version(&self) -> ServerVersion {
        self.readers[0].version
    }

    /// Commands sent so far, on every connection.
    pub(crate) fn commands(&self) -> u64 {
        self.closed_commands + self.readers.iter().map(|r| r.commands).sum::<u64>()
    }

    /// The reader index of `key`'s master.
    fn owner(&self, key: &[u8]) -> usize {
        let Some(t) = &self.topology else { return 0 };
        t.master_for_slot(key_slot(key))
            .and_then(|m| {
                let a = m.addr();
                self.addrs.iter().position(|x| *x == a)
            })
            .unwrap_or(0)
    }

    /// Where a key answered with `error` goes next; `None`: to its owner, after the
    /// topology is read again.
    fn next_route(&self, error: &str) -> Option<Route> {
        ask_target(&self.addrs, error).map(Route::Asking)
    }

    /// Waits before a retry, or fails once [`RETRY_FOR`] is spent.
    async fn wait(
        &mut self,
        started: Instant,
        backoff: &mut Duration,
        command: &str,
        last: &str,
        attempts: u32,
    ) -> Result<(), VerifyError> {
        if started.elapsed() + *backoff > RETRY_FOR {
            return Err(VerifyError::Server {
                side: self.side,
                url: self.cfg.url.to_string(),
                command: command.into(),
                reply: format!(
                    "{last} (keys still redirected after {attempts} attempts over {:?}: the \
                     cluster is resharding or failing over; verify again once it is stable)",
                    started.elapsed()
                ),
            });
        }
        tokio::time::sleep(*backoff).await;
        *backoff = (*backoff * 2).min(Duration::from_secs(1));
        Ok(())
    }

    /// Reads `keys` of `db` (type, value, TTL as `o` asks), each from its master; the
    /// states in the order of `keys`. Redirections are followed (see the module docs).
    pub(crate) async fn read(
        &mut self,
        db: u32,
        keys: &[Bytes],
        o: ReadOpts,
    ) -> Result<Vec<KeyState>, VerifyError> {
        let got = self.routed(db, keys, "TYPE", Batch::Read(o)).await?;
        Ok(got
            .into_iter()
            .filter_map(|g| match g {
                Some(Got::State(s)) => Some(s),
                _ => None,
            })
            .collect())
    }

    /// One command per key (`make(key)`), each sent to the key's master; the replies in
    /// the order of `keys`. Redirections are followed as in [`read`](Self::read).
    pub(crate) async fn per_key(
        &mut self,
        db: u32,
        keys: &[Bytes],
        name: &str,
        make: impl Fn(&Bytes) -> Cmd,
    ) -> Result<Vec<Frame>, VerifyError> {
        let got = self.routed(db, keys, name, Batch::Cmds(&make)).await?;
        Ok(got
            .into_iter()
            .map(|g| match g {
                Some(Got::Reply(f)) => f,
                _ => Frame::Null,
            })
            .collect())
    }

    /// The routing both share: `keys` grouped by the node to ask, one pipelined batch per
    /// node, the redirected ones asked again (after a backoff, and a new topology when a
    /// `MOVED` names a node the map does not know) until none is, within [`RETRY_FOR`].
    async fn routed(
        &mut self,
        db: u32,
        keys: &[Bytes],
        name: &str,
        op: Batch<'_>,
    ) -> Result<Vec<Option<Got>>, VerifyError> {
        let mut out: Vec<Option<Got>> = keys.iter().map(|_| None).collect();
        let mut todo: Vec<(usize, Route)> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (i, Route::Owner(self.owner(k))))
            .collect();
        let started = Instant::now();
        let mut backoff = Duration::from_millis(20);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let mut groups: BTreeMap<Route, Vec<usize>> = BTreeMap::new();
            for (i, route) in todo.drain(..) {
                groups.entry(route).or_default().push(i);
            }
            let mut again: Vec<(usize, Option<Route>)> = Vec::new();
            let mut last = String::new();
            for (route, idx) in groups {
                let (n, asking) = match route {
                    Route::Owner(n) => (n, false),
                    Route::Asking(n) => (n, true),
                };
                let r = &mut self.readers[n];
                r.asking = asking;
                let got: Result<Vec<(Got, Option<String>)>, VerifyError> = match &op {
                    Batch::Read(o) => {
                        let ks: Vec<Bytes> = idx.iter().map(|&i| keys[i].clone()).collect();
                        read_batch(r, db, &ks, *o).await.map(|states| {
                            states
                                .into_iter()
                                .map(|s| {
                                    let redirect = s.redirected.clone();
                                    (Got::State(s), redirect)
                                })
                                .collect()
                        })
                    }
                    Batch::Cmds(make) => {
                        let cmds: Vec<Cmd> = idx.iter().map(|&i| make(&keys[i])).collect();
                        r.batch(db, &cmds).await.map(|replies| {
                            replies
                                .into_iter()
                                .map(|f| {
                                    let redirect = match &f {
                                        Frame::SimpleError(b) | Frame::BlobError(b) => {
                                            Some(String::from_utf8_lossy(b).into_owned())
                                        }
                                        _ => None,
                                    }
                                    .filter(|e| is_redirect(e));
                                    (Got::Reply(f), redirect)
                                })
                                .collect()
                        })
                    }
                };
                r.asking = false;
                for (i, (g, redirect)) in idx.into_iter().zip(got?) {
                    if let Some(e) = redirect {
                        again.push((i, self.next_route(&e)));
                        last = e;
                    }
                    out[i] = Some(g);
                }
            }
            if again.is_empty() || self.topology.is_none() {
                return Ok(out);
            }
            self.wait(started, &mut backoff, name, &last, attempts)
                .await?;
            if again.iter().any(|(_, r)| r.is_none()) {
                self.refresh().await?;
            }
            todo = again
                .into_iter()
                .map(|(i, r)| (i, r.unwrap_or_else(|| Route::Owner(self.owner(&keys[i])))))
                .collect();
        }
    }

    /// `INFO keyspace` of every unit, added up per db.
    pub(crate) async fn keyspace(&mut self) -> Result<crate::Keyspace, VerifyError> {
        let mut total = crate::Keyspace::default();
        for r in &mut self.readers {
            let reply = r.one(0, cmd(["INFO", "keyspace"])).await?;
            if reply.is_error() {
                return Err(r.refused("INFO keyspace", &reply));
            }
            let ks = crate::Keyspace::from_info(&super::read::text_of(&reply));
            for (db, k) in ks.dbs {
                let e = total.dbs.entry(db).or_default();
                e.keys += k.keys;
                e.expires += k.expires;
            }
        }
        Ok(total)
    }

    /// `masters` for a cluster, else `None`.
    pub(crate) fn masters(&self) -> Option<usize> {
        self.topology.as_ref().map(|_| self.readers.len())
    }
}
