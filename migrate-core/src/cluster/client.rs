//! [`ClusterClient`]: one request at a time to the right master of a cluster.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use resp_codec::Frame;

use super::{discover, ClusterTopology, Node};
use crate::command::key_indexes;
use crate::migrate::{MigrationError, Stream, TargetConfig};
use crate::slot::key_slot;
use crate::write::{ServerError, ServerErrorKind};
use crate::Target;

/// How a [`ClusterClient`] waits and retries.
#[derive(Debug, Clone)]
pub struct ClusterClientOptions {
    /// Bound on connecting to a node and on each request. Default 10 s.
    pub timeout: Duration,
    /// `MOVED` and `ASK` redirections followed for one command before giving up
    /// ([`ClusterError::TooManyRedirects`]). Default 16.
    pub max_redirects: usize,
    /// How long one command may keep retrying `TRYAGAIN`, `CLUSTERDOWN`, `LOADING`, an
    /// unserved slot or an unreachable node (a failover in progress) before it fails with
    /// [`ClusterError::Unavailable`]. Default 10 s (a failover takes the node timeout plus
    /// about a second).
    pub retry_for: Duration,
    /// First wait between retries, doubled after each up to
    /// [`max_backoff`](Self::max_backoff). Default 10 ms.
    pub first_backoff: Duration,
    /// Longest wait between retries. Default 500 ms.
    pub max_backoff: Duration,
    /// Send a command again after its connection broke while it was in flight. Off by
    /// default: the command may have run, so [`ClusterError::Lost`] is returned and the
    /// caller decides (the next call reconnects).
    pub resend_lost: bool,
}

impl Default for ClusterClientOptions {
    fn default() -> Self {
        ClusterClientOptions {
            timeout: Duration::from_secs(10),
            max_redirects: 16,
            retry_for: Duration::from_secs(10),
            first_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(500),
            resend_lost: false,
        }
    }
}

/// What a [`ClusterClient`] has met so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterStats {
    /// `MOVED` redirections followed.
    pub moved: u64,
    /// `ASK` redirections followed.
    pub ask: u64,
    /// Retries after `TRYAGAIN`, `CLUSTERDOWN`, `LOADING`, an unserved slot, an unreachable
    /// node or (with [`resend_lost`](ClusterClientOptions::resend_lost)) a lost connection.
    pub retries: u64,
    /// Topology reads after the first.
    pub refreshes: u64,
}

/// Why a [`ClusterClient`] call failed. Commands are named without their arguments.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// No seed could be connected to or answered the topology commands.
    #[error("no seed node answered: {}", errors.join("; "))]
    NoSeed {
        /// One message per seed.
        errors: Vec<String>,
    },
    /// A seed is a standalone server (`cluster_enabled:0`).
    #[error("{addr} is not in cluster mode (INFO cluster: cluster_enabled:0): use a Target")]
    NotACluster {
        /// `host:port`.
        addr: String,
    },
    /// A node of the topology could not be connected to (after the retries).
    #[error("cluster node {url}: {source}")]
    Connect {
        /// The node's redacted URL.
        url: String,
        /// What failed.
        #[source]
        source: Box<MigrationError>,
    },
    /// The command's keys are in different slots: no single node can run it (the server
    /// would answer `-CROSSSLOT`). Empty `slots`: the server said so about a command whose
    /// keys the client does not know.
    #[error("{command}: keys in {} different slots ({slots:?}): a cluster runs a multi-key command only when all its keys share a slot (use a {{hash tag}})", slots.len())]
    CrossSlot {
        /// The command name.
        command: String,
        /// The distinct slots, ascending.
        slots: Vec<u16>,
    },
    /// The command has no key to route by (`FLUSHALL`, `PING`, `FUNCTION LOAD`, `MULTI`):
    /// send it to one node with [`ClusterClient::call_node`] or to every master with
    /// [`ClusterClient::call_masters`].
    #[error("{command}: no key to route by: send it to a node (call_node) or every master (call_masters)")]
    NoKey {
        /// The command name.
        command: String,
    },
    /// Redirections kept coming (a slot moving back and forth, or a misconfigured cluster).
    #[error(
        "{command} (slot {slot}): {redirects} redirections without an answer, the last: {last}"
    )]
    TooManyRedirects {
        /// The command name.
        command: String,
        /// The slot.
        slot: u16,
        /// How many were followed.
        redirects: usize,
        /// The last redirection.
        last: ServerError,
    },
    /// The cluster could not serve the slot for [`ClusterClientOptions::retry_for`].
    #[error("{command}{}: the cluster did not serve it after {attempts} attempts over {waited:?}; last: {last}", slot.map(|s| format!(" (slot {s})")).unwrap_or_default())]
    Unavailable {
        /// The command name.
        command: String,
        /// The slot, when routed by slot.
        slot: Option<u16>,
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        waited: Duration,
        /// The last reason (`TRYAGAIN ...`, `CLUSTERDOWN ...`, a connection error).
        last: String,
    },
    /// The connection broke with the command in flight: it may or may not have run.
    #[error("{command}: connection to {addr} lost with the command in flight (it may have run): {source}")]
    Lost {
        /// The command name.
        command: String,
        /// The node.
        addr: String,
        /// What happened.
        #[source]
        source: Box<crate::Error>,
    },
}

/// A cluster-aware request router over [`Target`] connections: one per master, opened on
/// first use, each command sent to the master of its key's slot.
///
/// - **Routing.** [`call`](Self::call) finds the keys with [`key_indexes`] (the replicated
///   write commands) and computes their [`key_slot`]; commands the table does not know
///   (reads: `GET`, `HGETALL`, `TTL`, ...) are routed by their first argument. Keys in
///   different slots are refused before sending ([`ClusterError::CrossSlot`]); commands
///   without keys are refused ([`ClusterError::NoKey`]: use
///   [`call_masters`](Self::call_masters) or [`call_node`](Self::call_node)).
/// - **`MOVED`**: the slot map is updated ([`ClusterTopology::update_from_moved`]; read
///   again when the node is new) and the command sent to the new owner. **`ASK`**:
///   `ASKING` + the command to the named node, the map unchanged.
/// - **`TRYAGAIN`, `CLUSTERDOWN`, `LOADING`**, an unserved slot or an unreachable node:
///   retried with exponential backoff (10 ms to 500 ms), the topology read again, for at
///   most [`retry_for`](ClusterClientOptions::retry_for); then
///   [`ClusterError::Unavailable`].
/// - A connection that breaks with the command in flight is [`ClusterError::Lost`] (the
///   command may have run) unless [`resend_lost`](ClusterClientOptions::resend_lost).
/// - Other server errors (`WRONGTYPE`, `BUSYKEY`, ...) are replies, as with
///   [`Target::call`].
///
/// Transactions are not routed (each call may go to a different node); send `MULTI` ...
/// `EXEC` of one slot through [`call_node`](Self::call_node) on its master.
///
/// ```no_run
/// use std::time::Duration;
/// use migrate_core::cluster::{ClusterClient, ClusterError};
/// use migrate_core::migrate::TargetConfig;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let seeds = [TargetConfig::parse("redis://127.0.0.1:7000")?];
/// let mut client = ClusterClient::connect(&seeds, Duration::from_secs(5)).await?;
/// client.call(&["SET", "user:1", "ada"]).await?;
/// let v = client.call(&["GET", "user:1"]).await?;
/// assert_eq!(v.as_bytes(), Some(&b"ada"[..]));
/// client.call(&["MSET", "{user:1}:a", "1", "{user:1}:b", "2"]).await?; // one slot: fine
/// let refused = client.call(&["MSET", "a", "1", "b", "2"]).await;
/// assert!(matches!(refused, Err(ClusterError::CrossSlot { .. })));
/// for (node, reply) in client.call_masters(&["DBSIZE"]).await? {
///     println!("{node}: {reply:?} keys");
/// }
/// # Ok(()) }
/// ```
pub struct ClusterClient {
    template: TargetConfig,
    options: ClusterClientOptions,
    topology: ClusterTopology,
    conns: HashMap<String, Target<Stream>>,
    stats: ClusterStats,
}

impl std::fmt::Debug for ClusterClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterClient")
            .field("seed", &self.template.url)
            .field("topology", &self.topology)
            .field("connections", &self.conns.keys().collect::<Vec<_>>())
            .field("stats", &self.stats)
            .finish()
    }
}

impl ClusterClient {
    /// Connects to the first seed that answers and reads the topology
    /// ([`discover`]); the other nodes are connected on first use with the same
    /// credentials and TLS settings as that seed. `timeout` bounds each connection and
    /// request; other options are the defaults.
    ///
    /// # Errors
    /// [`ClusterError::NotACluster`] for a standalone seed, [`ClusterError::NoSeed`] when
    /// none answers.
    pub async fn connect(
        seeds: &[TargetConfig],
        timeout: Duration,
    ) -> Result<ClusterClient, ClusterError> {
        let options = ClusterClientOptions {
            timeout,
            ..ClusterClientOptions::default()
        };
        ClusterClient::connect_with(seeds, options).await
    }

    /// [`connect`](Self::connect) with every option.
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn connect_with(
        seeds: &[TargetConfig],
        options: ClusterClientOptions,
    ) -> Result<ClusterClient, ClusterError> {
        let mut errors = Vec::new();
        for seed in seeds {
            let mut target = match crate::migrate::connect(seed, options.timeout).await {
                Ok(t) => t,
                Err(e) => {
                    errors.push(e.to_string());
                    continue;
                }
            };
            match discover(&mut target).await {
                Ok(Some(topology)) => {
                    let mut conns = HashMap::new();
                    conns.insert(target.addr().to_string(), target);
                    return Ok(ClusterClient {
                        template: seed.clone(),
                        options,
                        topology,
                        conns,
                        stats: ClusterStats::default(),
                    });
                }
                Ok(None) => {
                    return Err(ClusterError::NotACluster {
                        addr: target.addr().to_string(),
                    })
                }
                Err(e) => errors.push(format!("{}: {e}", seed.url)),
            }
        }
        if seeds.is_empty() {
            errors.push("no seed given".into());
        }
        Err(ClusterError::NoSeed { errors })
    }

    /// The topology as the client currently believes it.
    pub fn topology(&self) -> &ClusterTopology {
        &self.topology
    }

    /// Redirections, retries and refreshes so far.
    pub fn stats(&self) -> ClusterStats {
        self.stats
    }

    /// Reads the topology again from the first node that answers (known masters first,
    /// then the other known nodes, then the seed).
    ///
    /// # Errors
    /// [`ClusterError::NoSeed`] when no node answers; the old topology is kept.
    pub async fn refresh(&mut self) -> Result<(), ClusterError> {
        self.stats.refreshes += 1;
        let mut candidates: Vec<Node> = self.topology.masters().into_iter().cloned().collect();
        for shard in self.topology.slot_map().shards() {
            for n in std::iter::once(&shard.master).chain(&shard.replicas) {
                if !candidates.iter().any(|c| c.addr() == n.addr()) {
                    candidates.push(n.clone());
                }
            }
        }
        let seed = Node::new(self.template.url.host(), self.template.url.port());
        candidates.push(seed);
        let mut errors = Vec::new();
        for node in candidates {
            let addr = node.addr();
            let conn = match self.conn(&node).await {
                Ok(c) => c,
                Err(e) => {
                    errors.push(e.to_string());
                    continue;
                }
            };
            match discover(conn).await {
                // A node that lost its cluster (restarted empty) serves nothing: ask another.
                Ok(Some(topology)) if !topology.masters().is_empty() => {
                    self.topology = topology;
                    return Ok(());
                }
                Ok(_) => errors.push(format!("{addr}: no slots served")),
                Err(e) => {
                    self.conns.remove(&addr);
                    errors.push(format!("{addr}: {e}"));
                }
            }
        }
        Err(ClusterError::NoSeed { errors })
    }

    /// Sends `args` to the master of its keys' slot (see the type docs) and returns the
    /// reply; server errors other than redirections and retried ones are replies.
    ///
    /// # Errors
    /// [`ClusterError::CrossSlot`], [`ClusterError::NoKey`],
    /// [`ClusterError::TooManyRedirects`], [`ClusterError::Unavailable`],
    /// [`ClusterError::Lost`].
    pub async fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Frame, ClusterError> {
        let slot = route_slot(args)?;
        self.call_slot(slot, args).await
    }

    /// Sends `args` to the master of `slot`, with the redirections and retries of
    /// [`call`](Self::call) (for commands the key table does not know).
    ///
    /// # Errors
    /// As [`call`](Self::call), without the key checks.
    pub async fn call_slot<A: AsRef<[u8]>>(
        &mut self,
        slot: u16,
        args: &[A],
    ) -> Result<Frame, ClusterError> {
        let command = command_name(args);
        let started = Instant::now();
        let mut backoff = self.options.first_backoff;
        let mut attempts = 0u32;
        let mut redirects = 0usize;
        let mut ask: Option<Node> = None;
        loop {
            attempts += 1;
            let (node, asking) = match ask.take() {
                Some(n) => (n, true),
                None => match self.topology.master_for_slot(slot) {
                    Some(n) => (n.clone(), false),
                    None => {
                        let last = format!("slot {slot} is not served");
                        self.backoff(&command, Some(slot), attempts, started, &mut backoff, last)
                            .await?;
                        let _ = self.refresh().await;
                        continue;
                    }
                },
            };
            let addr = node.addr();
            let conn = match self.conn(&node).await {
                Ok(c) => c,
                Err(e) => {
                    // Not sent: safe to retry (a failover in progress, a node gone).
                    self.backoff(
                        &command,
                        Some(slot),
                        attempts,
                        started,
                        &mut backoff,
                        e.to_string(),
                    )
                    .await?;
                    let _ = self.refresh().await;
                    continue;
                }
            };
            let reply = if asking {
                let both: [Vec<&[u8]>; 2] = [vec![b"ASKING"], as_slices(args)];
                conn.call_many(&both)
                    .await
                    .map(|mut v| v.pop().unwrap_or(Frame::Null))
            } else {
                conn.call(args).await
            };
            let frame = match reply {
                Ok(f) => f,
                Err(source) => {
                    self.conns.remove(&addr);
                    if !self.options.resend_lost {
                        let _ = self.refresh().await;
                        return Err(ClusterError::Lost {
                            command,
                            addr,
                            source: Box::new(source),
                        });
                    }
                    self.backoff(
                        &command,
                        Some(slot),
                        attempts,
                        started,
                        &mut backoff,
                        source.to_string(),
                    )
                    .await?;
                    let _ = self.refresh().await;
                    continue;
                }
            };
            let Some(error) = ServerError::from_frame(&frame) else {
                return Ok(frame);
            };
            match error.kind() {
                ServerErrorKind::Moved | ServerErrorKind::Ask => {
                    let Some(r) = error.redirect() else {
                        return Ok(frame);
                    };
                    redirects += 1;
                    if redirects > self.options.max_redirects {
                        return Err(ClusterError::TooManyRedirects {
                            command,
                            slot,
                            redirects: redirects - 1,
                            last: error,
                        });
                    }
                    let Some(mut to) = Node::parse_addr(&r.addr) else {
                        return Ok(frame);
                    };
                    if to.host.is_empty() {
                        // `MOVED 1 :7000`: the node did not know its own address.
                        to.host = node.host.clone();
                    }
                    if r.ask {
                        self.stats.ask += 1;
                        ask = Some(to);
                    } else {
                        self.stats.moved += 1;
                        self.topology.update_from_moved(r.slot, &to.addr());
                        let known = self
                            .topology
                            .master_for_slot(r.slot)
                            .is_some_and(|m| m.id.is_some());
                        if !known {
                            // A node the map did not have: learn the rest of the change.
                            let _ = self.refresh().await;
                        }
                    }
                }
                ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::Loading => {
                    let refresh = error.kind() != ServerErrorKind::TryAgain;
                    self.backoff(
                        &command,
                        Some(slot),
                        attempts,
                        started,
                        &mut backoff,
                        error.to_string(),
                    )
                    .await?;
                    if refresh {
                        let _ = self.refresh().await;
                    }
                }
                ServerErrorKind::CrossSlot => {
                    return Err(ClusterError::CrossSlot {
                        command,
                        slots: Vec::new(),
                    })
                }
                _ => return Ok(frame),
            }
        }
    }

    /// Sends `args` to one node (by address), no redirection followed: keyless commands,
    /// a transaction on one slot's master, `CLUSTER` commands.
    ///
    /// # Errors
    /// [`ClusterError::Connect`], [`ClusterError::Lost`].
    pub async fn call_node<A: AsRef<[u8]>>(
        &mut self,
        node: &Node,
        args: &[A],
    ) -> Result<Frame, ClusterError> {
        let command = command_name(args);
        let addr = node.addr();
        let conn = self.conn(node).await?;
        match conn.call(args).await {
            Ok(f) => Ok(f),
            Err(source) => {
                self.conns.remove(&addr);
                Err(ClusterError::Lost {
                    command,
                    addr,
                    source: Box::new(source),
                })
            }
        }
    }

    /// Sends `args` to every master serving slots (`FLUSHALL`, `FUNCTION LOAD`, `DBSIZE`,
    /// `SCAN` per node), in [`ClusterTopology::masters`] order; one reply per master.
    ///
    /// # Errors
    /// The first failing master's [`ClusterError::Connect`] or [`ClusterError::Lost`].
    pub async fn call_masters<A: AsRef<[u8]>>(
        &mut self,
        args: &[A],
    ) -> Result<Vec<(Node, Frame)>, ClusterError> {
        let masters: Vec<Node> = self.topology.masters().into_iter().cloned().collect();
        let mut out = Vec::with_capacity(masters.len());
        for m in masters {
            let reply = self.call_node(&m, args).await?;
            out.push((m, reply));
        }
        Ok(out)
    }

    /// The open connection to `node`, connecting with the seed's credentials and TLS.
    async fn conn(&mut self, node: &Node) -> Result<&mut Target<Stream>, ClusterError> {
        let addr = node.addr();
        if !self.conns.contains_key(&addr) {
            let cfg = TargetConfig {
                url: self.template.url.with_host_port(&node.host, node.port),
                tls: self.template.tls.clone(),
            };
            let target = crate::migrate::connect(&cfg, self.options.timeout)
                .await
                .map_err(|e| ClusterError::Connect {
                    url: cfg.url.to_string(),
                    source: Box::new(e),
                })?;
            self.conns.insert(addr.clone(), target);
        }
        Ok(self.conns.get_mut(&addr).expect("inserted above"))
    }

    /// Waits before the next attempt, or fails when the retry budget is spent.
    async fn backoff(
        &mut self,
        command: &str,
        slot: Option<u16>,
        attempts: u32,
        started: Instant,
        backoff: &mut Duration,
        last: String,
    ) -> Result<(), ClusterError> {
        let waited = started.elapsed();
        if waited + *backoff > self.options.retry_for {
            return Err(ClusterError::Unavailable {
                command: command.to_string(),
                slot,
                attempts,
                waited,
                last,
            });
        }
        self.stats.retries += 1;
        tokio::time::sleep(*backoff).await;
        *backoff = (*backoff * 2).min(self.options.max_backoff);
        Ok(())
    }
}

fn as_slices<A: AsRef<[u8]>>(args: &[A]) -> Vec<&[u8]> {
    args.iter().map(AsRef::as_ref).collect()
}

/// The command's name, upper case (never its arguments: they may be keys or values).
fn command_name<A: AsRef<[u8]>>(args: &[A]) -> String {
    args.first()
        .map(|a| String::from_utf8_lossy(a.as_ref()).to_ascii_uppercase())
        .unwrap_or_default()
}

/// The slot `args` must go to: the one slot of its keys.
fn route_slot<A: AsRef<[u8]>>(args: &[A]) -> Result<u16, ClusterError> {
    let keys: Vec<&[u8]> = match key_indexes(args) {
        Some(idx) => idx.into_iter().map(|i| args[i].as_ref()).collect(),
        // Not a replicated write the table knows: reads have their key first.
        None => args.get(1).map(AsRef::as_ref).into_iter().collect(),
    };
    let mut slots: Vec<u16> = keys.iter().map(|k| key_slot(k)).collect();
    slots.sort_unstable();
    slots.dedup();
    match slots.len() {
        0 => Err(ClusterError::NoKey {
            command: command_name(args),
        }),
        1 => Ok(slots[0]),
        _ => Err(ClusterError::CrossSlot {
            command: command_name(args),
            slots,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing() {
        assert_eq!(route_slot(&["SET", "foo", "v"]).unwrap(), 12182);
        assert_eq!(route_slot(&["GET", "foo"]).unwrap(), 12182);
        assert_eq!(
            route_slot(&["MSET", "{t}a", "1", "{t}b", "2"]).unwrap(),
            key_slot(b"t")
        );
        match route_slot(&["MSET", "foo", "1", "bar", "2"]) {
            Err(ClusterError::CrossSlot { command, slots }) => {
                assert_eq!(command, "MSET");
                assert_eq!(slots, vec![5061, 12182]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            route_slot(&["flushall"]),
            Err(ClusterError::NoKey { command }) if command == "FLUSHALL"
        ));
        assert!(matches!(
            route_slot(&["EVAL", "return 1", "0"]),
            Err(ClusterError::NoKey { .. })
        ));
        // RENAME across slots is refused before sending.
        assert!(matches!(
            route_slot(&["RENAME", "foo", "bar"]),
            Err(ClusterError::CrossSlot { .. })
        ));
        let shown = route_slot(&["MSET", "secret-key", "1", "other", "2"])
            .unwrap_err()
            .to_string();
        assert!(!shown.contains("secret-key"), "{shown}");
    }
}
