//! Writing to a Redis Cluster target: one pipelined [`Writer`] per master, each command
//! routed to the master of its keys' slot, behind the same interface as the single writer
//! of a standalone target ([`Sink`], used by the [`Applier`](super::apply::Applier)).
//!
//! # Routing
//! - A command's keys are found with [`key_indexes`]; a command with keys in one slot goes
//!   to that slot's master. Keyless `FLUSHALL`, `FLUSHDB`, `FUNCTION ...` and `SCRIPT ...`
//!   go to every master (one outcome for all: applied when every master applied it).
//! - Commands with keys in several slots are split where the split has the same effect
//!   (`DEL`, `UNLINK`, `TOUCH`, `MSET`: one command per slot); the others (`RENAME`,
//!   `SMOVE`, `LMOVE`, `*STORE`, `BITOP`, `PFMERGE`, `MSETNX`, ...) run on temporary copies
//!   of their keys that share one hash tag, and the results are copied back
//!   ([`plan`], [`cross_slot`]). Both are counted in the report.
//! - Outcomes are handed out in the order the commands were given, whatever master
//!   answered first, so the applier's per-key accounting and offsets work unchanged.
//!
//! # Topology changes
//! - `MOVED`: the slot map is updated and the command sent to the new owner; `ASK`:
//!   `ASKING` + the command to that node, the map unchanged; `TRYAGAIN`, `CLUSTERDOWN`,
//!   `LOADING`, an unreachable node: retried with backoff (10 ms doubling to 500 ms) and the
//!   topology read again, for at most [`RETRY_FOR`] per command, then one error naming the
//!   slot, the node and the last reply ([`MigrationError::ClusterUnavailable`]).
//! - Order per key: after any redirection, retry or topology change, every master's
//!   pipeline is drained and the commands to resend go out in their original order before
//!   any new command.
//! - A master whose connection dies (killed, failed over): the topology is read again and
//!   its commands go to the new owner. A command whose reply never came and which was never
//!   completely written is resent; one that may have run before the connection died is
//!   resent only when running it twice has the effect of running it once (`SET`, `DEL`,
//!   `RESTORE` (sent again with `REPLACE`), `HSET`, `SADD`, `ZADD`, `PEXPIREAT`, ...);
//!   others (`INCR`, `RPUSH`, ...) are reported as failures naming the key: they may or may
//!   not have been applied.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use resp_codec::Frame;

use super::conn::{self, Stream};
use super::{MigrationError, TargetConfig};
use crate::cluster::{self, ClusterClient, ClusterTopology, Node};
use crate::command::key_indexes;
use crate::{key_slot, Outcome, ServerError, ServerErrorKind, Tag, Writer, WriterOptions};

/// How long one command may keep being retried (redirections, `TRYAGAIN`, `CLUSTERDOWN`,
/// a master failing over) before the migration stops with a clear error.
pub(crate) const RETRY_FOR: Duration = Duration::from_secs(30);
/// First wait between retries of a command.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
/// Longest wait between retries.
const MAX_BACKOFF: Duration = Duration::from_millis(500);
/// Redirections followed for one command before giving up.
const MAX_REDIRECTS: u32 = 32;
/// Commands whose outcome waits for an earlier one (answered by a slower master) before
/// every pipeline is drained.
const MAX_WAITING: usize = 50_000;
/// Prefix of the temporary keys of cross-slot commands (under the reserved prefix).
const TEMP_PREFIX: &[u8] = b"__redis-migrate:xslot:{__redis-migrate}:";

/// What the cluster sink met, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ClusterStats {
    pub(crate) moved: u64,
    pub(crate) ask: u64,
    pub(crate) retries: u64,
    pub(crate) refreshes: u64,
    /// Commands sent again after their master's connection died.
    pub(crate) resent: u64,
    /// Commands split into one command per slot.
    pub(crate) split: u64,
    /// Commands run on temporary keys sharing one slot.
    pub(crate) cross_slot: u64,
}

/// Where a command goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    /// The master of this slot.
    Slot(u16),
    /// This master (keyless commands sent to every master).
    Node(Node),
}

/// How a command is written to the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// One command to the master of the slot.
    Slot(u16),
    /// To every master.
    AllMasters,
    /// To one master (keyless commands that any node runs: `PUBLISH`, `EVAL` without keys).
    AnyMaster,
    /// One command per slot, in the order the slots first appear.
    Split(Vec<(u16, Vec<Bytes>)>),
    /// Keys in several slots that no split can serve: the key argument indexes.
    CrossSlot(Vec<usize>),
}

/// How `args` is written to a cluster (see the module docs); `fallback_key` routes a command
/// the key table does not know.
pub(crate) fn plan(args: &[Bytes], fallback_key: Option<&[u8]>) -> Plan {
    let name = args
        .first()
        .map(|a| a.to_ascii_uppercase())
        .unwrap_or_default();
    let Some(idx) = key_indexes(args) else {
        return match fallback_key {
            Some(k) => Plan::Slot(key_slot(k)),
            None => Plan::AnyMaster,
        };
    };
    if idx.is_empty() {
        return match &name[..] {
            b"FLUSHALL" | b"FLUSHDB" | b"FUNCTION" | b"SCRIPT" => Plan::AllMasters,
            _ => Plan::AnyMaster,
        };
    }
    let mut slots: Vec<u16> = idx.iter().map(|&i| key_slot(&args[i])).collect();
    let first = slots[0];
    if slots.iter().all(|&s| s == first) {
        return Plan::Slot(first);
    }
    let pairs = match &name[..] {
        b"DEL" | b"UNLINK" | b"TOUCH" => Some(1),
        b"MSET" => Some(2),
        _ => None,
    };
    let Some(width) = pairs else {
        return Plan::CrossSlot(idx);
    };
    let mut out: Vec<(u16, Vec<Bytes>)> = Vec::new();
    for (n, &i) in idx.iter().enumerate() {
        let slot = slots[n];
        let pos = match out.iter().position(|(s, _)| *s == slot) {
            Some(p) => p,
            None => {
                out.push((slot, vec![args[0].clone()]));
                out.len() - 1
            }
        };
        out[pos].1.extend(args[i..i + width].iter().cloned());
    }
    slots.clear();
    Plan::Split(out)
}

/// Whether running the command twice has the same effect as running it once (so that it
/// can be resent when it may have run on a master that died).
fn idempotent(args: &[Bytes]) -> bool {
    let name = args
        .first()
        .map(|a| a.to_ascii_uppercase())
        .unwrap_or_default();
    let has = |word: &[u8]| args.iter().skip(2).any(|a| a.eq_ignore_ascii_case(word));
    match &name[..] {
        b"SET" => !has(b"GET"),
        b"ZADD" => !has(b"INCR"),
        b"RESTORE" | b"SETEX" | b"PSETEX" | b"MSET" | b"DEL" | b"UNLINK" | b"TOUCH" | b"HSET"
        | b"HMSET" | b"HDEL" | b"SADD" | b"SREM" | b"ZREM" | b"PEXPIREAT" | b"EXPIREAT"
        | b"PERSIST" | b"PFADD" | b"GEOADD" | b"SETBIT" | b"SETRANGE" | b"LSET" | b"XSETID"
        | b"HPEXPIREAT" | b"HEXPIREAT" | b"HPERSIST" | b"FLUSHALL" | b"FLUSHDB" | b"SCRIPT" => true,
        b"FUNCTION" => {
            let sub = args
                .get(1)
                .map(|a| a.to_ascii_uppercase())
                .unwrap_or_default();
            sub == b"FLUSH" || (sub == b"LOAD" && has(b"REPLACE"))
        }
        _ => false,
    }
}

/// One command given to a master's writer.
struct Entry {
    /// The applier's command it serves (several entries for a split or broadcast command).
    gid: u64,
    tag: Tag,
    args: Vec<Bytes>,
    route: Route,
    /// The `ASKING` sent before a command redirected by `ASK`: its outcome is ignored.
    asking: bool,
    /// Send `ASKING` + the command to this node (an `ASK` redirection).
    ask_to: Option<Node>,
    redirects: u32,
    first: Instant,
    backoff: Duration,
    wait_until: Option<Instant>,
}

impl Entry {
    fn new(gid: u64, tag: Tag, args: Vec<Bytes>, route: Route) -> Entry {
        Entry {
            gid,
            tag,
            args,
            route,
            asking: false,
            ask_to: None,
            redirects: 0,
            first: Instant::now(),
            backoff: FIRST_BACKOFF,
            wait_until: None,
        }
    }
}

/// One master's connection.
struct NodeConn {
    writer: Option<Writer<Stream>>,
    /// The entries given to `writer`, in order: one outcome each.
    inflight: VecDeque<Entry>,
}

/// The outcome of one applier command, waiting for all its entries.
struct Group {
    tag: Tag,
    pending: usize,
    failure: Option<Outcome>,
}

/// The writer of a cluster target (see the module docs).
pub(crate) struct ClusterSink {
    template: TargetConfig,
    url: String,
    timeout: Duration,
    wopts: WriterOptions,
    topology: ClusterTopology,
    nodes: HashMap<String, NodeConn>,
    groups: BTreeMap<u64, Group>,
    next_gid: u64,
    next_deliver: u64,
    ready: VecDeque<Outcome>,
    resend: Vec<Entry>,
    /// A redirection, a retry or a dead connection was seen: settle before the next send.
    unsettled: bool,
    refresh_needed: bool,
    fatal: Option<MigrationError>,
    in_txn: bool,
    /// Dbs the cluster has (`cluster-databases` on Valkey 9, else 1).
    pub(crate) dbs: u32,
    client: Option<ClusterClient>,
    pub(crate) stats: ClusterStats,
}

impl ClusterSink {
    /// Opens one writer per master of `topology`, logged in like `template`.
    pub(crate) async fn open(
        template: &TargetConfig,
        timeout: Duration,
        topology: ClusterTopology,
        wopts: WriterOptions,
        dbs: u32,
    ) -> Result<ClusterSink, MigrationError> {
        let mut sink = ClusterSink {
            template: template.clone(),
            url: template.url.to_string(),
            timeout,
            wopts,
            topology,
            nodes: HashMap::new(),
            groups: BTreeMap::new(),
            next_gid: 0,
            next_deliver: 0,
            ready: VecDeque::new(),
            resend: Vec::new(),
            unsettled: false,
            refresh_needed: false,
            fatal: None,
            in_txn: false,
            dbs,
            client: None,
            stats: ClusterStats::default(),
        };
        let masters: Vec<Node> = sink.topology.masters().into_iter().cloned().collect();
        for m in masters {
            sink.writer_for(&m).await?;
        }
        Ok(sink)
    }

    /// The masters serving slots now.
    pub(crate) fn masters(&self) -> Vec<Node> {
        self.topology.masters().into_iter().cloned().collect()
    }

    /// The configuration of a connection to `node`.
    pub(crate) fn node_config(&self, node: &Node) -> TargetConfig {
        node_config(&self.template, node)
    }

    async fn writer_for(&mut self, node: &Node) -> Result<(), MigrationError> {
        let addr = node.addr();
        let conn = self.nodes.entry(addr).or_insert_with(|| NodeConn {
            writer: None,
            inflight: VecDeque::new(),
        });
        if conn.writer.is_none() {
            let cfg = node_config(&self.template, node);
            let target = conn::connect(&cfg, self.timeout).await?;
            conn.writer = Some(target.into_writer(self.wopts.clone()));
        }
        Ok(())
    }

    /// Sends one applier command (see the module docs).
    pub(crate) async fn send(&mut self, tag: Tag, args: &[Bytes]) -> Result<(), MigrationError> {
        if self.unsettled || !self.resend.is_empty() || self.refresh_needed {
            self.settle().await?;
        }
        let gid = self.next_gid;
        self.next_gid += 1;
        let plan = plan(args, tag.key.as_deref());
        let mut entries = Vec::new();
        match plan {
            Plan::Slot(slot) => entries.push(Entry::new(
                gid,
                tag.clone(),
                args.to_vec(),
                Route::Slot(slot),
            )),
            Plan::AllMasters => {
                for m in self.masters() {
                    entries.push(Entry::new(gid, tag.clone(), args.to_vec(), Route::Node(m)));
                }
            }
            Plan::AnyMaster => match self.masters().into_iter().next() {
                Some(m) => {
                    entries.push(Entry::new(gid, tag.clone(), args.to_vec(), Route::Node(m)))
                }
                None => entries.push(Entry::new(gid, tag.clone(), args.to_vec(), Route::Slot(0))),
            },
            Plan::Split(parts) => {
                self.stats.split += 1;
                for (slot, part) in parts {
                    entries.push(Entry::new(gid, tag.clone(), part, Route::Slot(slot)));
                }
            }
            Plan::CrossSlot(idx) => {
                self.stats.cross_slot += 1;
                self.settle().await?;
                let failure = self.cross_slot(&tag, args, &idx).await?;
                self.groups.insert(
                    gid,
                    Group {
                        tag,
                        pending: 0,
                        failure,
                    },
                );
                self.deliver();
                return Ok(());
            }
        }
        self.groups.insert(
            gid,
            Group {
                tag,
                pending: entries.len(),
                failure: None,
            },
        );
        for e in entries {
            self.dispatch(e).await;
        }
        self.collect();
        if self.groups.len() > MAX_WAITING {
            self.settle().await?;
        }
        self.check_fatal()
    }

    fn check_fatal(&mut self) -> Result<(), MigrationError> {
        match self.fatal.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Gives one entry to its master's writer; failures put it back for a retry.
    async fn dispatch(&mut self, mut entry: Entry) {
        let node = if let Some(n) = entry.ask_to.clone() {
            n
        } else {
            match &entry.route {
                Route::Node(n) => n.clone(),
                Route::Slot(s) => match self.topology.master_for_slot(*s) {
                    Some(n) => n.clone(),
                    None => {
                        self.refresh_needed = true;
                        let why = format!("slot {s} is not served by any master");
                        self.retry(entry, why, None);
                        return;
                    }
                },
            }
        };
        if let Err(e) = self.writer_for(&node).await {
            self.refresh_needed = true;
            self.retry(entry, e.to_string(), Some(&node));
            return;
        }
        let conn = self.nodes.get_mut(&node.addr()).expect("opened above");
        let writer = conn.writer.as_mut().expect("opened above");
        if entry.ask_to.take().is_some() {
            let asking = Entry {
                asking: true,
                ..Entry::new(
                    entry.gid,
                    entry.tag.clone(),
                    Vec::new(),
                    entry.route.clone(),
                )
            };
            let tag = Tag::new(None, "ASKING", entry.tag.seq);
            if writer
                .send_bytes(tag, &[Bytes::from_static(b"ASKING")])
                .await
                .is_ok()
            {
                conn.inflight.push_back(asking);
            }
        }
        match writer.send_bytes(entry.tag.clone(), &entry.args).await {
            Ok(()) => conn.inflight.push_back(entry),
            Err(e) => {
                // Not accepted: certainly not applied.
                self.refresh_needed = true;
                self.unsettled = true;
                self.retry(entry, e.to_string(), Some(&node));
            }
        }
    }

    /// Queues `entry` to be sent again after a backoff, or records the final error once
    /// its retry budget is spent.
    fn retry(&mut self, mut entry: Entry, why: String, node: Option<&Node>) {
        self.unsettled = true;
        let waited = entry.first.elapsed();
        if waited >= RETRY_FOR || entry.redirects > MAX_REDIRECTS {
            let slot = match &entry.route {
                Route::Slot(s) => Some(*s),
                Route::Node(_) => None,
            };
            let node = node
                .map(Node::addr)
                .or_else(|| match &entry.route {
                    Route::Node(n) => Some(n.addr()),
                    Route::Slot(_) => None,
                })
                .unwrap_or_else(|| "no node".into());
            self.fatal
                .get_or_insert(MigrationError::ClusterUnavailable {
                    url: self.url.clone(),
                    command: String::from_utf8_lossy(&entry.tag.command).into_owned(),
                    slot,
                    node,
                    attempts: entry.redirects + 1,
                    waited,
                    last: why,
                });
            return;
        }
        self.stats.retries += 1;
        entry.redirects += 1;
        entry.wait_until = Some(Instant::now() + entry.backoff);
        entry.backoff = (entry.backoff * 2).min(MAX_BACKOFF);
        self.resend.push(entry);
    }

    /// Takes every outcome the writers already have and processes it.
    fn collect(&mut self) {
        let addrs: Vec<String> = self.nodes.keys().cloned().collect();
        for addr in addrs {
            loop {
                let conn = self.nodes.get_mut(&addr).expect("listed");
                let Some(writer) = conn.writer.as_mut() else {
                    break;
                };
                let Some(outcome) = writer.try_next_outcome() else {
                    if writer.pipeline().is_broken() || writer.pipeline().error().is_some() {
                        tracing::warn!(target: "migrate", "cluster target: the connection to {addr} failed; reading the topology again");
                        conn.writer = None;
                        // Entries without an outcome (none expected): may have run.
                        let left: Vec<Entry> = conn.inflight.drain(..).collect();
                        for e in left {
                            let tag = e.tag.clone();
                            self.handle(
                                e,
                                Outcome::Lost {
                                    tag,
                                    maybe_applied: true,
                                },
                                &addr,
                            );
                        }
                        self.refresh_needed = true;
                        self.unsettled = true;
                    }
                    break;
                };
                let Some(entry) = conn.inflight.pop_front() else {
                    self.fatal.get_or_insert(MigrationError::Internal(format!(
                        "cluster target {addr}: an outcome without a command: {outcome}"
                    )));
                    break;
                };
                self.handle(entry, outcome, &addr);
            }
        }
        self.deliver();
    }

    fn handle(&mut self, mut entry: Entry, outcome: Outcome, addr: &str) {
        if entry.asking {
            return;
        }
        let node = Node::parse_addr(addr);
        match outcome {
            Outcome::Applied(_) => self.resolve(entry.gid, None),
            Outcome::Failed { tag, reply } => match reply.kind() {
                ServerErrorKind::Moved | ServerErrorKind::Ask => {
                    let Some(r) = reply.redirect() else {
                        return self.resolve(entry.gid, Some(Outcome::Failed { tag, reply }));
                    };
                    let Some(mut to) = Node::parse_addr(&r.addr) else {
                        return self.resolve(entry.gid, Some(Outcome::Failed { tag, reply }));
                    };
                    if to.host.is_empty() {
                        to.host = node.as_ref().map(|n| n.host.clone()).unwrap_or_default();
                    }
                    if r.ask {
                        self.stats.ask += 1;
                        entry.ask_to = Some(to);
                    } else {
                        self.stats.moved += 1;
                        self.topology.update_from_moved(r.slot, &to.addr());
                        let known = self
                            .topology
                            .master_for_slot(r.slot)
                            .is_some_and(|m| m.id.is_some());
                        if !known {
                            self.refresh_needed = true;
                        }
                        if let Route::Node(_) = entry.route {
                            entry.route = Route::Slot(r.slot);
                        }
                    }
                    // A redirection is followed at once (no backoff).
                    self.unsettled = true;
                    entry.redirects += 1;
                    if entry.redirects > MAX_REDIRECTS {
                        self.retry(entry, reply.to_string(), node.as_ref());
                    } else {
                        entry.wait_until = None;
                        self.resend.push(entry);
                    }
                }
                ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::Loading
                | ServerErrorKind::ReadOnly => {
                    if reply.kind() != ServerErrorKind::TryAgain {
                        self.refresh_needed = true;
                    }
                    self.retry(entry, reply.to_string(), node.as_ref());
                }
                _ => self.resolve(entry.gid, Some(Outcome::Failed { tag, reply })),
            },
            Outcome::Lost { tag, maybe_applied } => {
                self.refresh_needed = true;
                if !maybe_applied || idempotent(&entry.args) {
                    self.stats.resent += 1;
                    if maybe_applied && entry.args[0].eq_ignore_ascii_case(b"RESTORE") {
                        let replace = entry
                            .args
                            .iter()
                            .skip(4)
                            .any(|a| a.eq_ignore_ascii_case(b"REPLACE"));
                        if !replace {
                            entry.args.push(Bytes::from_static(b"REPLACE"));
                        }
                    }
                    self.retry(entry, format!("connection to {addr} lost"), node.as_ref());
                } else {
                    tracing::warn!(target: "migrate", "cluster target: {tag} may have been applied by {addr} before its connection failed; not sent again (it is not idempotent)");
                    self.resolve(
                        entry.gid,
                        Some(Outcome::Lost {
                            tag,
                            maybe_applied: true,
                        }),
                    );
                }
            }
            other => self.resolve(entry.gid, Some(other)),
        }
    }

    fn resolve(&mut self, gid: u64, failure: Option<Outcome>) {
        if let Some(g) = self.groups.get_mut(&gid) {
            g.pending = g.pending.saturating_sub(1);
            if g.failure.is_none() {
                g.failure = failure;
            }
        }
    }

    /// Moves the finished outcomes, in command order, to `ready`.
    fn deliver(&mut self) {
        while let Some(entry) = self.groups.first_entry() {
            if *entry.key() != self.next_deliver || entry.get().pending > 0 {
                break;
            }
            let g = entry.remove();
            self.next_deliver += 1;
            self.ready
                .push_back(g.failure.unwrap_or(Outcome::Applied(g.tag)));
        }
    }

    /// Drains every pipeline and sends again what must be, until nothing is left to
    /// resend (see "Order per key").
    async fn settle(&mut self) -> Result<(), MigrationError> {
        loop {
            self.check_fatal()?;
            if self.refresh_needed {
                self.refresh_needed = false;
                self.refresh().await;
            }
            let addrs: Vec<String> = self.nodes.keys().cloned().collect();
            for addr in &addrs {
                if let Some(w) = self.nodes.get_mut(addr).and_then(|c| c.writer.as_mut()) {
                    let _ = w.flush().await;
                }
            }
            self.collect();
            self.check_fatal()?;
            if self.resend.is_empty() {
                if self.refresh_needed {
                    continue;
                }
                self.unsettled = false;
                return Ok(());
            }
            let mut todo = std::mem::take(&mut self.resend);
            todo.sort_by_key(|e| e.gid);
            for e in todo {
                if let Some(t) = e.wait_until {
                    let now = Instant::now();
                    if t > now {
                        tokio::time::sleep(t - now).await;
                    }
                }
                self.dispatch(e).await;
            }
        }
    }

    /// Reads the topology again from the first node that answers (masters, then replicas,
    /// then the URL's node).
    async fn refresh(&mut self) {
        self.stats.refreshes += 1;
        let mut candidates: Vec<Node> = Vec::new();
        for shard in self.topology.slot_map().shards() {
            for n in std::iter::once(&shard.master).chain(&shard.replicas) {
                if !candidates.iter().any(|c| c.addr() == n.addr()) {
                    candidates.push(n.clone());
                }
            }
        }
        candidates.push(Node::new(
            self.template.url.host(),
            self.template.url.port(),
        ));
        for node in candidates {
            let cfg = node_config(&self.template, &node);
            let Ok(mut t) = conn::connect(&cfg, self.timeout.min(Duration::from_secs(2))).await
            else {
                continue;
            };
            if let Ok(Some(topo)) = cluster::discover(&mut t).await {
                if !topo.masters().is_empty() {
                    self.topology = topo;
                    return;
                }
            }
        }
        tracing::warn!(target: "migrate", "cluster target: no node answered CLUSTER SHARDS/SLOTS; retrying");
    }

    /// Runs a command whose keys are in several slots on temporary copies sharing one slot,
    /// then copies the results back (see the module docs). Returns the failure, if any.
    async fn cross_slot(
        &mut self,
        tag: &Tag,
        args: &[Bytes],
        idx: &[usize],
    ) -> Result<Option<Outcome>, MigrationError> {
        if tag.db.is_some_and(|d| d != 0) {
            let reply = ServerError::new(format!(
                "ERR redis-migrate: a command with keys in several slots runs in db 0 only (db {})",
                tag.db.unwrap_or(0)
            ));
            return Ok(Some(Outcome::Failed {
                tag: tag.clone(),
                reply,
            }));
        }
        if self.client.is_none() {
            let c = ClusterClient::connect(std::slice::from_ref(&self.template), self.timeout)
                .await
                .map_err(|e| self.client_error(tag, e))?;
            self.client = Some(c);
        }
        let mut keys: Vec<Bytes> = Vec::new();
        let mut temp_of: Vec<usize> = Vec::with_capacity(idx.len());
        for &i in idx {
            let k = &args[i];
            let n = match keys.iter().position(|x| x == k) {
                Some(n) => n,
                None => {
                    keys.push(k.clone());
                    keys.len() - 1
                }
            };
            temp_of.push(n);
        }
        let temp = |n: usize| {
            let mut t = TEMP_PREFIX.to_vec();
            t.extend_from_slice(n.to_string().as_bytes());
            Bytes::from(t)
        };
        for (n, k) in keys.iter().enumerate() {
            self.copy(k, &temp(n), tag).await?;
        }
        let mut run = args.to_vec();
        for (j, &i) in idx.iter().enumerate() {
            run[i] = temp(temp_of[j]);
        }
        let reply = self.call(&run, tag).await?;
        let failure = ServerError::from_frame(&reply).map(|reply| Outcome::Failed {
            tag: tag.clone(),
            reply,
        });
        if failure.is_none() {
            for (n, k) in keys.iter().enumerate() {
                self.copy(&temp(n), k, tag).await?;
            }
        }
        for n in 0..keys.len() {
            self.call(&[Bytes::from_static(b"DEL"), temp(n)], tag)
                .await?;
        }
        Ok(failure)
    }

    /// `to` becomes what `from` is (value and TTL), or absent when `from` is.
    async fn copy(&mut self, from: &Bytes, to: &Bytes, tag: &Tag) -> Result<(), MigrationError> {
        let dump = self
            .call(&[Bytes::from_static(b"DUMP"), from.clone()], tag)
            .await?;
        let reply = match dump.as_bytes() {
            Some(payload) => {
                let ttl = self
                    .call(&[Bytes::from_static(b"PTTL"), from.clone()], tag)
                    .await?;
                let ttl = match ttl {
                    Frame::Integer(t) if t > 0 => t,
                    _ => 0,
                };
                let payload = Bytes::copy_from_slice(payload);
                self.call(
                    &[
                        Bytes::from_static(b"RESTORE"),
                        to.clone(),
                        Bytes::from(ttl.to_string()),
                        payload,
                        Bytes::from_static(b"REPLACE"),
                    ],
                    tag,
                )
                .await?
            }
            None if dump.is_null() => {
                self.call(&[Bytes::from_static(b"DEL"), to.clone()], tag)
                    .await?
            }
            None => dump,
        };
        match ServerError::from_frame(&reply) {
            Some(reply) => Err(MigrationError::WriteFailed {
                tag: Box::new(tag.clone()),
                reply: Box::new(reply),
            }),
            None => Ok(()),
        }
    }

    async fn call(&mut self, args: &[Bytes], tag: &Tag) -> Result<Frame, MigrationError> {
        let Some(client) = self.client.as_mut() else {
            return Err(MigrationError::Internal("no cluster client".into()));
        };
        let r = client.call(args).await;
        r.map_err(|e| self.client_error(tag, e))
    }

    fn client_error(&self, tag: &Tag, e: cluster::ClusterError) -> MigrationError {
        MigrationError::ClusterUnavailable {
            url: self.url.clone(),
            command: String::from_utf8_lossy(&tag.command).into_owned(),
            slot: None,
            node: "cross-slot copy".into(),
            attempts: 1,
            waited: Duration::ZERO,
            last: e.to_string(),
        }
    }

    /// Writes what is queued on every master without waiting for the replies.
    pub(crate) async fn write_queued(&mut self) -> Result<(), MigrationError> {
        let addrs: Vec<String> = self.nodes.keys().cloned().collect();
        for addr in &addrs {
            if let Some(w) = self.nodes.get_mut(addr).and_then(|c| c.writer.as_mut()) {
                let _ = w.write_queued().await;
            }
        }
        self.collect();
        if self.unsettled || !self.resend.is_empty() || self.refresh_needed {
            self.settle().await?;
        }
        self.check_fatal()
    }

    /// Waits for every outcome (resending what must be).
    pub(crate) async fn flush(&mut self) -> Result<(), MigrationError> {
        self.settle().await?;
        self.deliver();
        self.check_fatal()
    }

    pub(crate) fn try_next_outcome(&mut self) -> Option<Outcome> {
        self.ready.pop_front()
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.groups.is_empty() && !self.in_txn
    }

    pub(crate) fn in_transaction(&self) -> bool {
        self.in_txn
    }

    /// A source transaction: applied command by command (see the module docs).
    pub(crate) fn multi(&mut self) {
        self.in_txn = true;
    }

    pub(crate) fn exec(&mut self) {
        self.in_txn = false;
    }
}

/// A cluster target found at start, before its writers are opened.
pub(crate) struct Detected {
    pub(crate) topology: ClusterTopology,
    /// Dbs the cluster has: `cluster-databases` (Valkey 9), else 1.
    pub(crate) dbs: u32,
}

/// Whether the target is a cluster (`INFO cluster`), with its topology and dbs. A server
/// that refuses `INFO cluster` or the topology commands is taken as standalone.
pub(crate) async fn detect(target: &mut crate::Target<Stream>, url: &str) -> Option<Detected> {
    let topology = match cluster::discover(target).await {
        Ok(Some(t)) => t,
        Ok(None) => return None,
        Err(e) => {
            tracing::debug!(target: "migrate", "target {url}: no cluster topology ({e}): taken as standalone");
            return None;
        }
    };
    let dbs = match target.call(&["CONFIG", "GET", "cluster-databases"]).await {
        Ok(Frame::Array(items)) => items
            .get(1)
            .and_then(Frame::as_bytes)
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|t| t.parse::<u32>().ok())
            .filter(|&n| n >= 1)
            .unwrap_or(1),
        _ => 1,
    };
    Some(Detected { topology, dbs })
}

impl Detected {
    /// `(db, keys)` of the `dbs` that hold keys, summed over every master.
    pub(crate) async fn non_empty(
        &self,
        template: &TargetConfig,
        timeout: Duration,
        dbs: Vec<u32>,
    ) -> Result<Vec<(u32, u64)>, MigrationError> {
        let mut total: BTreeMap<u32, u64> = BTreeMap::new();
        for m in self.topology.masters() {
            let cfg = node_config(template, m);
            let mut t = conn::connect(&cfg, timeout).await?;
            let ks = t
                .keyspace()
                .await
                .map_err(|source| MigrationError::Target {
                    url: cfg.url.to_string(),
                    source: Box::new(source),
                })?;
            for (db, n) in ks.non_empty(dbs.iter().copied()) {
                *total.entry(db).or_default() += n;
            }
        }
        Ok(total.into_iter().collect())
    }

    /// Opens the writers (one per master).
    pub(crate) async fn open(
        self,
        template: &TargetConfig,
        timeout: Duration,
        wopts: WriterOptions,
    ) -> Result<ClusterSink, MigrationError> {
        ClusterSink::open(template, timeout, self.topology, wopts, self.dbs).await
    }
}

/// A live source with keys in dbs the cluster target lacks (after the filter's db map) is
/// refused at start, naming them. A source that does not answer `INFO keyspace` is not
/// checked here (its first key in such a db is refused instead).
pub(crate) async fn check_source_dbs(
    source: &replication_client::Config,
    s: &super::options::Settings,
    allowed: u32,
    url: &str,
) -> Result<(), MigrationError> {
    let cfg = TargetConfig {
        url: source.url().clone(),
        tls: source.tls_options().clone(),
    };
    let Ok(mut t) = conn::connect(&cfg, s.connect_timeout).await else {
        return Ok(());
    };
    let Ok(ks) = t.keyspace().await else {
        return Ok(());
    };
    let used: Vec<u32> = ks.dbs.keys().copied().collect();
    let bad: Vec<u32> = s
        .filter
        .target_dbs(used)
        .into_iter()
        .filter(|&d| d >= allowed)
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    Err(MigrationError::ClusterDbs {
        url: url.to_string(),
        dbs: bad,
        allowed,
    })
}

/// The connections a sweep scans: every master of a cluster target, else the target.
pub(crate) fn scan_targets(ap: &super::apply::Applier, target: &TargetConfig) -> Vec<TargetConfig> {
    match ap.cluster() {
        Some(c) => c.masters().iter().map(|m| c.node_config(m)).collect(),
        None => vec![target.clone()],
    }
}

/// The configuration of a connection to `node`: the template's credentials and TLS.
pub(crate) fn node_config(template: &TargetConfig, node: &Node) -> TargetConfig {
    TargetConfig {
        url: template.url.with_host_port(&node.host, node.port),
        tls: template.tls.clone(),
    }
}

/// The distinct slots of the keys of `commands` (for transactions).
pub(crate) fn slots_of<'a>(commands: impl IntoIterator<Item = &'a [Bytes]>) -> Vec<u16> {
    let mut slots: Vec<u16> = Vec::new();
    for args in commands {
        for i in key_indexes(args).unwrap_or_default() {
            slots.push(key_slot(&args[i]));
        }
    }
    slots.sort_unstable();
    slots.dedup();
    slots
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(args: &[&str]) -> Vec<Bytes> {
        args.iter().map(|a| Bytes::from(a.to_string())).collect()
    }

    #[test]
    fn plans() {
        assert_eq!(plan(&b(&["SET", "foo", "1"]), None), Plan::Slot(12182));
        assert_eq!(
            plan(&b(&["MSET", "{t}a", "1", "{t}b", "2"]), None),
            Plan::Slot(key_slot(b"t"))
        );
        assert_eq!(plan(&b(&["FLUSHALL"]), None), Plan::AllMasters);
        assert_eq!(plan(&b(&["flushdb", "ASYNC"]), None), Plan::AllMasters);
        assert_eq!(plan(&b(&["FUNCTION", "LOAD", "x"]), None), Plan::AllMasters);
        assert_eq!(plan(&b(&["SCRIPT", "FLUSH"]), None), Plan::AllMasters);
        assert_eq!(plan(&b(&["PUBLISH", "ch", "m"]), None), Plan::AnyMaster);
        assert_eq!(plan(&b(&["EVAL", "return 1", "0"]), None), Plan::AnyMaster);
        // Unknown command: routed by the tag's key.
        assert_eq!(
            plan(&b(&["MYMOD.SET", "foo", "1"]), Some(b"foo")),
            Plan::Slot(12182)
        );
    }

    #[test]
    fn splits_what_splits() {
        match plan(&b(&["DEL", "foo", "bar", "{foo}x"]), None) {
            Plan::Split(parts) => {
                assert_eq!(
                    parts,
                    vec![
                        (12182, b(&["DEL", "foo", "{foo}x"])),
                        (5061, b(&["DEL", "bar"])),
                    ]
                );
            }
            other => panic!("{other:?}"),
        }
        match plan(&b(&["MSET", "foo", "1", "bar", "2", "{bar}z", "3"]), None) {
            Plan::Split(parts) => assert_eq!(
                parts,
                vec![
                    (12182, b(&["MSET", "foo", "1"])),
                    (5061, b(&["MSET", "bar", "2", "{bar}z", "3"])),
                ]
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            plan(&b(&["UNLINK", "foo", "bar"]), None),
            Plan::Split(_)
        ));
        assert!(matches!(
            plan(&b(&["TOUCH", "foo", "bar"]), None),
            Plan::Split(_)
        ));
    }

    #[test]
    fn the_rest_runs_on_temporary_keys() {
        for (args, keys) in [
            (b(&["RENAME", "foo", "bar"]), vec![1, 2]),
            (b(&["MSETNX", "foo", "1", "bar", "2"]), vec![1, 3]),
            (b(&["SMOVE", "foo", "bar", "m"]), vec![1, 2]),
            (b(&["LMOVE", "foo", "bar", "LEFT", "RIGHT"]), vec![1, 2]),
            (b(&["SUNIONSTORE", "d", "foo", "bar"]), vec![1, 2, 3]),
            (b(&["ZUNIONSTORE", "d", "2", "foo", "bar"]), vec![1, 3, 4]),
            (b(&["BITOP", "AND", "d", "foo", "bar"]), vec![2, 3, 4]),
            (b(&["PFMERGE", "d", "foo"]), vec![1, 2]),
            (b(&["COPY", "foo", "bar"]), vec![1, 2]),
        ] {
            assert_eq!(plan(&args, None), Plan::CrossSlot(keys), "{args:?}");
        }
        // The temporary keys share one slot and are reserved.
        let a = [TEMP_PREFIX, b"0"].concat();
        let c = [TEMP_PREFIX, b"7"].concat();
        assert_eq!(key_slot(&a), key_slot(&c));
        assert!(a.starts_with(super::super::RESERVED_PREFIX));
    }

    #[test]
    fn resent_only_when_idempotent() {
        assert!(idempotent(&b(&["SET", "k", "v"])));
        assert!(!idempotent(&b(&["SET", "k", "v", "GET"])));
        assert!(idempotent(&b(&["RESTORE", "k", "0", "x"])));
        assert!(!idempotent(&b(&["INCR", "k"])));
        assert!(!idempotent(&b(&["RPUSH", "k", "a"])));
        assert!(!idempotent(&b(&["ZADD", "k", "INCR", "1", "m"])));
        assert!(idempotent(&b(&["FUNCTION", "LOAD", "REPLACE", "code"])));
        assert!(!idempotent(&b(&["FUNCTION", "LOAD", "code"])));
    }

    #[test]
    fn transaction_slots() {
        let a = b(&["SET", "foo", "1"]);
        let c = b(&["INCR", "{foo}2"]);
        let d = b(&["DEL", "bar"]);
        assert_eq!(slots_of([&a[..], &c[..]]).len(), 1);
        assert_eq!(slots_of([&a[..], &c[..], &d[..]]), vec![5061, 12182]);
    }
}
