//! Keys moved between source shards by `MIGRATE` (slots resharded on the source), ordered
//! on the target across links, processes and restarts.
//!
//! `MIGRATE` shows up as `RESTORE-ASKING key payload` in the new owner's (B's) stream and
//! as `DEL key` in the old owner's (A's); the two streams reach the target in either order,
//! through different links, maybe different processes (`--shards`), maybe a run restarted
//! from its checkpoints. A's writes to the key before the move and its `DEL` must be
//! applied before B's `RESTORE` (and B's later writes), never after.
//!
//! - `MIGRATE` blocks A's event loop until A has deleted the key and propagated the `DEL`.
//!   So once B's link has received `RESTORE-ASKING k`, any `INFO replication` A answers
//!   reports a `master_repl_offset` Q at or past A's `DEL k` (and every earlier write of A
//!   to `k`).
//! - On `RESTORE-ASKING k`, the old owners of `k`'s slot are found ([`Moves::seen`]: the
//!   owners of the slot in every topology seen since the start; else the node an
//!   importing marker `[slot-<-id]` of B's master names; else every other master), each is
//!   asked for its replication ids and offset Q (its master, else a node of its shard; a
//!   few rounds with backoff), and the `RESTORE` waits until that shard is applied on the
//!   target up to Q:
//!   - a shard of this process: its applied offset in memory ([`Moves`]), or the offset of
//!     its `DEL` of the key when its link already screened it (tighter);
//!   - any other: its checkpoint on the target, found by its replication id (`replid` or
//!     `replid2`, a failover's history) and fingerprint: `CHECKPOINT_KEY:<shard>` on a
//!     standalone target; on a cluster target the larger of the floor and the key's slot
//!     checkpoint (`<base>{tag}`). So a second process, or this one after a restart, is
//!     waited for too.
//! - Batching: before asking the old owners, B's own node is asked for its offset P: a
//!   `RESTORE-ASKING` up to P was run by B before A answered, so one answer of A covers
//!   every key moved up to P (a whole `MIGRATE ... KEYS` batch).
//! - Bounded: the wait polls with backoff up to
//!   [`move_wait`](crate::migrate::MigrationBuilder::move_wait) (default 60 s), then the
//!   key is restored anyway, counted (`unconfirmed`) and warned about once per old shard,
//!   naming it, the offset waited for and the offset seen. That shard is then checked once
//!   per later key, without waiting, until it is seen caught up again. Two shards of this
//!   process waiting for each other (keys moving both ways at once) do not wait: the
//!   in-memory screening ([`super::Follow::screen`]) orders them inside the process.
//! - Without checkpoints (`--no-checkpoint`) only the shards of this process can be
//!   waited for; a key from any other shard is restored at once and counted.
//! - A quiet old owner: its checkpoint is written with each batch of commands, not for the
//!   `PING`s of an idle stream, so a `PING` between its `DEL` and the answer can make the
//!   wait run out (counted, warned) when that shard receives no other write meanwhile.

use std::collections::{HashMap, HashSet};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use resp_codec::Frame;
use tokio::sync::watch;

use super::super::checkpoint::{self, Checkpoint, CHECKPOINT_KEY};
use super::super::conn;
use super::super::options::Settings;
use super::super::TargetConfig;
use crate::cluster::{ClusterClient, ClusterTopology, Node};

/// Bound on one request to a source node or the target.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Rounds over an old owner's nodes before its offset counts as unknown.
const QUERY_ROUNDS: u32 = 3;
/// Shards kept in the topology history.
const HISTORY_MAX: usize = 512;
/// The checkpoint keys on the target are listed again at most this often.
const RESCAN_EVERY: Duration = Duration::from_secs(15);
/// The longest pause between two looks at an old owner's position.
const MAX_POLL: Duration = Duration::from_millis(200);

/// A shard as a topology showed it.
#[derive(Debug, Clone)]
pub(crate) struct Owner {
    pub(crate) master: Node,
    pub(crate) replicas: Vec<Node>,
    pub(crate) slots: Vec<RangeInclusive<u16>>,
}

impl Owner {
    /// Its master's id, else its address.
    fn key(&self) -> String {
        self.master.id.clone().unwrap_or_else(|| self.master.addr())
    }

    fn ids(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.master)
            .chain(&self.replicas)
            .filter_map(|n| n.id.as_ref())
    }

    fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|r| r.contains(&slot))
    }

    fn shown(&self) -> String {
        format!(
            "{} (slots {})",
            self.master.addr(),
            super::slots_text(&self.slots)
        )
    }
}

/// What the shards of this process share about keys moved between shards (see the
/// module docs and [`super::Follow::screen`]).
#[derive(Debug, Default)]
pub(crate) struct Moves {
    inner: Mutex<MovesInner>,
    /// Bumped at every change of [`MovesInner::fences`]: a shard's link looks at them
    /// again only then ([`super::fence`]).
    pub(crate) fence_gen: std::sync::atomic::AtomicU64,
}

#[derive(Debug, Default)]
pub(crate) struct MovesInner {
    /// Key → the shard whose stream restored it last (its owner since).
    pub(crate) owners: HashMap<Bytes, String>,
    /// Key → (shard, its source offset) of a `DEL`/`UNLINK` screened but maybe not yet
    /// applied on the target.
    pub(crate) dels: HashMap<Bytes, (String, u64)>,
    /// Shard → the source offset up to which its stream is applied on the target.
    pub(crate) landed: HashMap<String, u64>,
    /// Shard of this process → its nodes' ids.
    members: HashMap<String, Vec<String>>,
    /// Shard of this process → the shard of this process it waits for.
    waiting: HashMap<String, String>,
    /// Every shard seen in a topology since the start.
    history: Vec<Owner>,
    /// The shards of the latest topology.
    latest: Vec<Owner>,
    /// Shard ids of checkpoints of this migration found on the target at the start.
    checkpoint_ids: Vec<String>,
    /// Atomic slot migrations seen in the shards' streams ([`super::asm`]).
    pub(crate) asm: super::asm::Seen,
    /// Their ordering: the fences known to this process ([`super::fence`]).
    pub(crate) fences: super::fence::Fences,
}

impl Moves {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, MovesInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes a change of the fences.
    pub(crate) fn fences_changed(&self) {
        self.fence_gen
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// The fences' generation now.
    pub(crate) fn fence_gen(&self) -> u64 {
        self.fence_gen.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Whether shard `id` of this process has `node` among its nodes.
    pub(crate) fn local_shard_of(&self, node: &str) -> Option<String> {
        self.lock()
            .members
            .iter()
            .find(|(_, ids)| ids.iter().any(|i| i == node))
            .map(|(id, _)| id.clone())
    }

    /// Remembers who served which slots in `topo` (the old owners of moved keys).
    pub(crate) fn seen(&self, topo: &ClusterTopology) {
        let map = topo.slot_map();
        let now: Vec<Owner> = map
            .shards()
            .iter()
            .map(|s| Owner {
                master: s.master.clone(),
                replicas: s.replicas.clone(),
                slots: map.slots_of(&s.master),
            })
            .filter(|o| !o.slots.is_empty())
            .collect();
        let mut m = self.lock();
        for o in &now {
            match m
                .history
                .iter_mut()
                .find(|h| h.master.same(&o.master) && h.slots == o.slots)
            {
                Some(h) => h.replicas.clone_from(&o.replicas),
                None => m.history.push(o.clone()),
            }
        }
        if m.history.len() > HISTORY_MAX {
            let extra = m.history.len() - HISTORY_MAX;
            m.history.drain(..extra);
        }
        m.latest = now;
    }

    /// The shard ids of the checkpoints of this migration found on the target at the
    /// start: where an old owner's checkpoint is looked for before listing the target's.
    pub(crate) fn checkpoints_found(&self, ids: Vec<String>) {
        self.lock().checkpoint_ids = ids;
    }

    /// A shard of this process and its nodes' ids (again after a failover).
    pub(crate) fn register(&self, shard: &str, members: Vec<String>) {
        self.lock().members.insert(shard.to_string(), members);
    }
}

/// An old owner's replication state (`INFO replication`).
#[derive(Debug, Clone)]
struct Repl {
    replid: String,
    replid2: String,
    offset: u64,
}

/// Parses `INFO replication`: the state and whether the node is a master.
fn parse_repl(text: &str) -> Option<(Repl, bool)> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    let repl = Repl {
        replid: field("master_replid")?.to_string(),
        replid2: field("master_replid2").unwrap_or_default().to_string(),
        offset: field("master_repl_offset")?.parse().ok()?,
    };
    Some((repl, field("role") == Some("master")))
}

/// The node id an importing marker `[slot-<-id]` of the `myself` line names.
fn importing_from(nodes: &str, slot: u16) -> Option<String> {
    let me = nodes.lines().find(|l| l.contains("myself"))?;
    me.split_whitespace().find_map(|w| {
        let inner = w.strip_prefix('[')?.strip_suffix(']')?;
        let (s, id) = inner.split_once("-<-")?;
        (s.parse::<u16>().ok()? == slot).then(|| id.to_string())
    })
}

/// A connection to the target (standalone or cluster).
enum Reader {
    Single(Box<crate::Target<conn::Stream>>),
    Cluster(Box<ClusterClient>),
}

/// The target, read for checkpoints: connected on first use, again after an error.
pub(crate) struct TargetReader {
    target: TargetConfig,
    cluster: bool,
    conn: Option<Reader>,
}

impl TargetReader {
    pub(crate) fn new(target: TargetConfig, cluster: bool) -> TargetReader {
        TargetReader {
            target,
            cluster,
            conn: None,
        }
    }

    /// `GET key` on the target; `None` when missing or unreadable.
    pub(crate) async fn get(&mut self, key: &[u8]) -> Option<Bytes> {
        let reply = self.call(&[&b"GET"[..], key]).await?;
        reply.as_bytes().map(Bytes::copy_from_slice)
    }

    /// `args` on the target (routed by their key on a cluster); `None` when it cannot be
    /// asked or answers an error (connected again next time).
    pub(crate) async fn call(&mut self, args: &[&[u8]]) -> Option<Frame> {
        if self.conn.is_none() {
            self.conn = Some(if self.cluster {
                let c = ClusterClient::connect(std::slice::from_ref(&self.target), QUERY_TIMEOUT)
                    .await
                    .ok()?;
                Reader::Cluster(Box::new(c))
            } else {
                Reader::Single(Box::new(
                    conn::connect(&self.target, QUERY_TIMEOUT).await.ok()?,
                ))
            });
        }
        let reply = match self.conn.as_mut()? {
            Reader::Single(t) => tokio::time::timeout(QUERY_TIMEOUT, t.call(args))
                .await
                .ok()
                .and_then(Result::ok),
            Reader::Cluster(c) => tokio::time::timeout(QUERY_TIMEOUT, c.call(args))
                .await
                .ok()
                .and_then(Result::ok),
        };
        match reply {
            Some(f) if !f.is_error() => Some(f),
            _ => {
                self.conn = None;
                None
            }
        }
    }

    /// The shard ids of the checkpoint keys on the target.
    pub(crate) async fn list_ids(&mut self) -> Vec<String> {
        let pattern = format!("{CHECKPOINT_KEY}:*");
        let mut keys: Vec<Bytes> = Vec::new();
        if self.conn.is_none() {
            // Connects.
            let _ = self.get(CHECKPOINT_KEY.as_bytes()).await;
        }
        match self.conn.as_mut() {
            Some(Reader::Single(t)) => {
                keys = super::super::run::checkpoint_keys(t)
                    .await
                    .unwrap_or_default();
            }
            Some(Reader::Cluster(c)) => {
                let masters: Vec<Node> = c.topology().masters().into_iter().cloned().collect();
                for m in masters {
                    let mut cursor = b"0".to_vec();
                    for _ in 0..100_000 {
                        let args = [
                            &b"SCAN"[..],
                            &cursor,
                            b"MATCH",
                            pattern.as_bytes(),
                            b"COUNT",
                            b"1000",
                        ];
                        let Ok(reply) = c.call_node(&m, &args).await else {
                            break;
                        };
                        let Some([next, Frame::Array(batch)]) = reply.as_slice() else {
                            break;
                        };
                        keys.extend(
                            batch
                                .iter()
                                .filter_map(Frame::as_bytes)
                                .map(Bytes::copy_from_slice),
                        );
                        cursor = next.as_bytes().unwrap_or(b"0").to_vec();
                        if cursor == b"0" {
                            break;
                        }
                    }
                }
            }
            None => {}
        }
        let mut ids: Vec<String> = Vec::new();
        for id in keys.iter().filter_map(|k| checkpoint::shard_of_key(k)) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }
}

/// Why a move was applied without its old owner confirmed.
struct Unconfirmed<'a> {
    owner: &'a Owner,
    name: String,
    want: Option<u64>,
    seen: Option<u64>,
    why: String,
}

/// One shard's side of the ordering: its connections and what it learned.
pub(crate) struct MoveGate {
    pub(super) limit: Duration,
    pub(super) checkpoint: bool,
    settings: Arc<Settings>,
    cluster_target: bool,
    pub(super) stop: watch::Receiver<bool>,
    pub(super) reader: TargetReader,
    /// Connections to source nodes, by address.
    conns: HashMap<String, crate::Target<conn::Stream>>,
    /// Old owner → (offset of this shard's stream its answer covers, the answer).
    answers: HashMap<String, (u64, Repl)>,
    /// Old owner → the ids of its checkpoints (in its replication history).
    ckpt_ids: HashMap<String, Vec<String>>,
    /// Shard ids of the checkpoint keys on the target, and when they were listed.
    listed: Option<(Instant, Vec<String>)>,
    /// Old owner → the highest position seen applied (its answers only grow).
    confirmed: HashMap<String, u64>,
    /// Old owners whose wait ran out.
    stalled: HashSet<String>,
    warned: HashSet<String>,
    /// Moves applied without the old owner confirmed.
    pub(crate) unconfirmed: u64,
}

impl MoveGate {
    pub(crate) fn new(
        settings: Arc<Settings>,
        target: TargetConfig,
        cluster_target: bool,
        stop: watch::Receiver<bool>,
    ) -> MoveGate {
        MoveGate {
            limit: settings.move_wait,
            checkpoint: settings.checkpoint,
            settings,
            cluster_target,
            stop,
            reader: TargetReader::new(target, cluster_target),
            conns: HashMap::new(),
            answers: HashMap::new(),
            ckpt_ids: HashMap::new(),
            listed: None,
            confirmed: HashMap::new(),
            stalled: HashSet::new(),
            warned: HashSet::new(),
            unconfirmed: 0,
        }
    }

    /// `args` on the source node at `addr` (connected with `source`'s credentials): its
    /// reply, unless an error.
    pub(super) async fn source_frame(
        &mut self,
        source: &TargetConfig,
        addr: &str,
        args: &[&str],
    ) -> Option<Frame> {
        if !self.conns.contains_key(addr) {
            let node = Node::parse_addr(addr)?;
            let cfg = TargetConfig {
                url: source.url.with_host_port(&node.host, node.port),
                tls: source.tls.clone(),
            };
            let t = conn::connect(&cfg, QUERY_TIMEOUT).await.ok()?;
            self.conns.insert(addr.to_string(), t);
        }
        let t = self.conns.get_mut(addr)?;
        match tokio::time::timeout(QUERY_TIMEOUT, t.call(args)).await {
            Ok(Ok(f)) if !f.is_error() => Some(f),
            Ok(Ok(_)) => None,
            _ => {
                self.conns.remove(addr);
                None
            }
        }
    }

    /// [`MoveGate::source_frame`] of a bulk string reply, as text.
    async fn source_call(
        &mut self,
        source: &TargetConfig,
        addr: &str,
        args: &[&str],
    ) -> Option<String> {
        let f = self.source_frame(source, addr, args).await?;
        f.as_bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }

    /// The replication offset of the node at `addr`.
    async fn node_offset(&mut self, source: &TargetConfig, addr: &str) -> Option<u64> {
        let text = self
            .source_call(source, addr, &["INFO", "replication"])
            .await?;
        parse_repl(&text).map(|(r, _)| r.offset)
    }

    /// The old owner's replication state: its master, else a promoted node of its shard,
    /// else what a replica says; `QUERY_ROUNDS` rounds with backoff.
    async fn query(&mut self, source: &TargetConfig, o: &Owner) -> Option<Repl> {
        let nodes: Vec<String> = std::iter::once(&o.master)
            .chain(&o.replicas)
            .map(Node::addr)
            .collect();
        let mut backoff = Duration::from_millis(100);
        for round in 0..QUERY_ROUNDS {
            let mut fallback = None;
            for addr in &nodes {
                let Some(text) = self
                    .source_call(source, addr, &["INFO", "replication"])
                    .await
                else {
                    continue;
                };
                match parse_repl(&text) {
                    Some((r, true)) => return Some(r),
                    Some((r, false)) => {
                        fallback.get_or_insert(r);
                    }
                    None => {}
                }
            }
            if fallback.is_some() {
                return fallback;
            }
            if round + 1 < QUERY_ROUNDS {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        None
    }

    async fn get(&mut self, key: &[u8]) -> Option<Bytes> {
        self.reader.get(key).await
    }

    /// How far the checkpoint of shard `id` says `slot` is applied, when it is the
    /// checkpoint of this migration in `repl`'s history.
    async fn read_position(&mut self, id: &str, repl: &Repl, slot: u16) -> Option<u64> {
        let base = format!("{CHECKPOINT_KEY}:{id}");
        let fp = checkpoint::fingerprint(&format!("cluster-shard:{id}"), &self.settings);
        let ours = |v: Option<Bytes>| {
            let c = Checkpoint::parse(&v?).ok()?;
            let r = c.point.replid.as_str();
            (c.fingerprint == fp && (r == repl.replid || r == repl.replid2))
                .then_some(c.point.offset)
        };
        let floor = ours(self.get(base.as_bytes()).await);
        let in_slot = if self.cluster_target {
            let key = super::super::cluster_sink::slot_key(base.as_bytes(), slot);
            ours(self.get(&key).await)
        } else {
            None
        };
        floor.max(in_slot)
    }

    async fn list_ids(&mut self) -> Vec<String> {
        self.reader.list_ids().await
    }

    /// The old owner's applied position for `slot` according to its checkpoints on the
    /// target, in its history: by the ids found before, else the ids its slots gave it in
    /// the topologies seen and those found at the start, else every checkpoint key on the
    /// target (listed again at most every [`RESCAN_EVERY`]).
    async fn checkpointed(
        &mut self,
        o: &Owner,
        repl: &Repl,
        slot: u16,
        want: u64,
        guesses: Vec<String>,
    ) -> Option<u64> {
        let mut tried: Vec<String> = Vec::new();
        let mut best: Option<u64> = None;
        let cached: Vec<String> = self.ckpt_ids.get(&o.key()).cloned().unwrap_or_default();
        for stage in 0..3 {
            let ids = match stage {
                0 => cached.clone(),
                1 => guesses.clone(),
                _ => {
                    let stale = self
                        .listed
                        .as_ref()
                        .is_none_or(|(at, _)| at.elapsed() >= RESCAN_EVERY);
                    if stale {
                        let listed = self.list_ids().await;
                        self.listed = Some((Instant::now(), listed));
                    }
                    self.listed
                        .as_ref()
                        .map(|(_, l)| l.clone())
                        .unwrap_or_default()
                }
            };
            for id in ids {
                if tried.contains(&id) {
                    continue;
                }
                if let Some(p) = self.read_position(&id, repl, slot).await {
                    let known = self.ckpt_ids.entry(o.key()).or_default();
                    if !known.contains(&id) {
                        known.push(id.clone());
                    }
                    best = best.max(Some(p));
                    if p >= want {
                        return best;
                    }
                }
                tried.push(id);
            }
            // Found in its history: that is its checkpoint, behind for now.
            if best.is_some() {
                break;
            }
        }
        best
    }

    fn give_up(&mut self, shard: &str, u: Unconfirmed<'_>, limit: Duration) {
        self.unconfirmed += 1;
        let key = u.owner.key();
        self.stalled.insert(key.clone());
        if self.warned.insert(key) {
            let want = u
                .want
                .map_or("its current offset".into(), |w| w.to_string());
            let seen = u.seen.map_or("none found".into(), |s| s.to_string());
            tracing::warn!(target: "migrate", "shard {shard}: a key moved in from shard {} is restored without that shard's stream confirmed applied on the target up to offset {want} (seen: {seen}; waited up to {limit:?}): {}; is the process migrating shard {} running, with checkpoints? Check the moved keys with `redis-migrate verify` (further keys from it are counted, not warned about)", u.name, u.why, u.name);
        }
    }
}

/// Sleeps `pause` (at most until `deadline`, less if a stop is asked); the next pause
/// (doubled, up to [`MAX_POLL`]).
pub(super) async fn nap(
    stop: &mut watch::Receiver<bool>,
    pause: Duration,
    deadline: Instant,
) -> Duration {
    let left = deadline.saturating_duration_since(Instant::now());
    tokio::select! {
        _ = tokio::time::sleep(pause.min(left)) => {}
        // A closed channel: no stop to wait for, only the pause.
        Ok(()) = stop.changed() => {}
    }
    (pause * 2).min(MAX_POLL)
}

impl super::Follow {
    /// Waits (bounded) until the old owners of `slot` are applied on the target past a
    /// key moved into this shard at stream offset `offset` (see the module docs); `hint`:
    /// a `DEL` of the key screened by a shard of this process (its id and offset).
    pub(crate) async fn confirm_move(
        &mut self,
        slot: u16,
        offset: u64,
        hint: Option<(String, u64)>,
    ) {
        let source = TargetConfig::of_source(&self.config);
        let owners = self.old_owners(&source, slot).await;
        let need = owners.iter().any(|o| {
            self.gate
                .answers
                .get(&o.key())
                .is_none_or(|(covered, _)| *covered < offset)
        });
        // B's own offset first: the answers that follow cover every move up to it.
        let covered = if need {
            let own = self.config.url().addr();
            self.gate
                .node_offset(&source, &own)
                .await
                .unwrap_or(offset)
                .max(offset)
        } else {
            offset
        };
        for o in owners {
            let k = o.key();
            let repl = match self.gate.answers.get(&k) {
                Some((c, r)) if *c >= offset => Some(r.clone()),
                _ => {
                    let r = self.gate.query(&source, &o).await;
                    if let Some(r) = &r {
                        self.gate.answers.insert(k.clone(), (covered, r.clone()));
                    }
                    r
                }
            };
            let limit = self.gate.limit;
            let Some(repl) = repl else {
                let u = Unconfirmed {
                    owner: &o,
                    name: o.shown(),
                    want: None,
                    seen: None,
                    why: format!("no node of it answered INFO replication ({QUERY_ROUNDS} rounds)"),
                };
                self.gate.give_up(&self.id, u, limit);
                continue;
            };
            self.wait_for(&o, &repl, slot, hint.as_ref()).await;
            self.moves.lock().waiting.remove(&self.id);
        }
    }

    /// The shards that may have held keys of `slot` before this one.
    async fn old_owners(&mut self, source: &TargetConfig, slot: u16) -> Vec<Owner> {
        // This shard: by its nodes' ids, or the node its link reads.
        let own = self.config.url().addr();
        let mine = |o: &Owner, members: &[String]| {
            o.ids().any(|i| members.contains(i))
                || std::iter::once(&o.master)
                    .chain(&o.replicas)
                    .any(|n| n.addr() == own)
        };
        let (mut found, latest, me) = {
            let m = self.moves.lock();
            let mut found: Vec<Owner> = Vec::new();
            for h in m.history.iter().rev() {
                if h.serves(slot)
                    && !mine(h, &self.members)
                    && !found.iter().any(|f| f.master.same(&h.master))
                {
                    found.push(h.clone());
                }
            }
            let me = m
                .latest
                .iter()
                .chain(m.history.iter().rev())
                .find(|h| mine(h, &self.members))
                .map(|h| h.master.addr());
            (found, m.latest.clone(), me)
        };
        if !found.is_empty() {
            return found;
        }
        // The slot's importing marker on this shard's master.
        if let Some(me) = me {
            if let Some(text) = self
                .gate
                .source_call(source, &me, &["CLUSTER", "NODES"])
                .await
            {
                if let Some(id) = importing_from(&text, slot) {
                    let m = self.moves.lock();
                    if let Some(h) = m
                        .latest
                        .iter()
                        .chain(m.history.iter().rev())
                        .find(|h| h.master.id.as_deref() == Some(id.as_str()))
                    {
                        found.push(h.clone());
                    }
                }
            }
        }
        if found.is_empty() {
            found = latest
                .into_iter()
                .filter(|o| !mine(o, &self.members))
                .collect();
        }
        found
    }

    /// This process's shard that is `o`, if any.
    fn local_shard(&self, o: &Owner) -> Option<String> {
        let m = self.moves.lock();
        m.members
            .iter()
            .find(|(id, ids)| **id != self.id && o.ids().any(|i| ids.contains(i)))
            .map(|(id, _)| id.clone())
    }

    async fn wait_for(&mut self, o: &Owner, repl: &Repl, slot: u16, hint: Option<&(String, u64)>) {
        let local = self.local_shard(o);
        let want = match (&local, hint) {
            (Some(s), Some((hs, d))) if s == hs => (*d).min(repl.offset),
            _ => repl.offset,
        };
        let name = local.clone().unwrap_or_else(|| o.shown());
        let limit = self.gate.limit;
        if local.is_none() && !self.gate.checkpoint {
            let u = Unconfirmed {
                owner: o,
                name,
                want: Some(want),
                seen: None,
                why: "checkpoints are off: only the shards of this process can be waited for"
                    .into(),
            };
            self.gate.give_up(&self.id, u, limit);
            return;
        }
        // The shard ids its slots gave it in the topologies seen (`s<first slot>`).
        let guesses: Vec<String> = {
            let m = self.moves.lock();
            m.history
                .iter()
                .rev()
                .filter(|h| h.master.same(&o.master))
                .filter_map(|h| h.slots.first().map(|r| format!("s{}", r.start())))
                .chain(m.checkpoint_ids.iter().cloned())
                .collect()
        };
        let key = o.key();
        if self.gate.confirmed.get(&key).is_some_and(|&c| c >= want) {
            return;
        }
        let budget = if self.gate.stalled.contains(&key) {
            Duration::ZERO
        } else {
            limit
        };
        let deadline = Instant::now() + budget;
        let mut pause = Duration::from_millis(2);
        let mut seen = None;
        loop {
            let pos = match &local {
                Some(s) => self.moves.lock().landed.get(s).copied(),
                None => {
                    self.gate
                        .checkpointed(o, repl, slot, want, guesses.clone())
                        .await
                }
            };
            if pos.is_some() {
                seen = pos;
            }
            if let Some(p) = pos {
                let c = self.gate.confirmed.entry(key.clone()).or_default();
                *c = (*c).max(p);
            }
            if pos.is_some_and(|p| p >= want) {
                self.gate.stalled.remove(&key);
                return;
            }
            if let Some(s) = &local {
                let mut m = self.moves.lock();
                if m.waiting.get(s) == Some(&self.id) {
                    drop(m);
                    let u = Unconfirmed {
                        owner: o,
                        name,
                        want: Some(want),
                        seen,
                        why: "that shard waits for this one too (keys moving both ways at once): ordered in memory by this process only".into(),
                    };
                    self.gate.give_up(&self.id, u, limit);
                    return;
                }
                m.waiting.insert(self.id.clone(), s.clone());
            }
            let stopping = *self.gate.stop.borrow();
            if Instant::now() >= deadline || stopping {
                let why = if stopping {
                    "the migration is stopping".to_string()
                } else {
                    format!("not reached within {budget:?}")
                };
                let u = Unconfirmed {
                    owner: o,
                    name,
                    want: Some(want),
                    seen,
                    why,
                };
                self.gate.give_up(&self.id, u, limit);
                return;
            }
            pause = nap(&mut self.gate.stop, pause, deadline).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_and_markers_parse() {
        let info = "# Replication\r\nrole:master\r\nconnected_slaves:1\r\nmaster_replid:aaa\r\nmaster_replid2:0000\r\nmaster_repl_offset:1234\r\nsecond_repl_offset:-1\r\n";
        let (r, master) = parse_repl(info).unwrap();
        assert!(master);
        assert_eq!(
            (r.replid.as_str(), r.replid2.as_str(), r.offset),
            ("aaa", "0000", 1234)
        );
        assert!(parse_repl("role:slave\r\n").is_none());
        let nodes = "abc 127.0.0.1:7001@17001 myself,master - 0 0 2 connected 5461-10922 [42-<-def0123] [43->-xyz]\n\
                     def0123 127.0.0.1:7000@17000 master - 0 0 1 connected 0-5460\n";
        assert_eq!(importing_from(nodes, 42).as_deref(), Some("def0123"));
        assert_eq!(importing_from(nodes, 43), None);
        assert_eq!(importing_from(nodes, 7), None);
    }
}
