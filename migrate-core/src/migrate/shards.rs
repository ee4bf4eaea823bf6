//! A Redis Cluster source: one replication link per shard, run concurrently.
//!
//! [`run`] is entered when the `--from` node says `cluster_enabled:1` (`INFO cluster`). The
//! masters are discovered ([`cluster::discover`](crate::cluster::discover): `CLUSTER SHARDS`
//! on 7.0+, `CLUSTER SLOTS`/`NODES` on 6.2) and sorted by their first slot; each selected
//! shard ([`ShardSpec`]) gets its own [`Live`] link with its own [`Applier`] and target
//! connection, spawned on the runtime.
//!
//! - Identity: a shard's id is `s` and the lowest slot it served at discovery (`s0`,
//!   `s5461`); its checkpoint key is [`CHECKPOINT_KEY`]`:<id>` and its fingerprint names the
//!   id (not a node address, which a failover changes). At the start a shard whose lowest
//!   slot moved since takes the id of its checkpoint, found by replication id ([`ids`]).
//! - At most [`max_concurrent_full_syncs`](super::MigrationBuilder::max_concurrent_full_syncs)
//!   shards run their first full sync at a time: a shard without a checkpoint waits for a
//!   permit before its `PSYNC`, and gives it back when its RDB is loaded.
//! - [`Follow`]: when a shard's link fails, the cluster is asked again (any known node),
//!   the shard found again by its nodes' ids (else by its first slot), and the link moved
//!   to the node now serving it with `PSYNC` from the position reached: psync2 lets the
//!   promoted replica continue the old master's history, so no full sync is needed. A
//!   quiet link also checks every `rediscover_every` whether its shard moved.
//! - New shards (a master that now serves slots and is none of ours) found by the
//!   periodic rediscovery get a link (when no `--shards` selection is set); shards left
//!   without slots are logged and keep their link.
//! - Slots resharded on the source ([`moves`]): a key moved by `MIGRATE` is a
//!   `RESTORE-ASKING` in the new owner's stream and a `DEL` in the old owner's. The restore
//!   waits (bounded) until the old owner's stream is applied on the target past the offset
//!   the old owner reports once the key has moved: seen in memory for a shard of this
//!   process, else in that shard's checkpoint on the target, so two processes splitting
//!   the shards (`--shards`) and a restart mid-reshard keep the key exactly once. Inside
//!   one process the old owner's late commands on a moved key are also left out
//!   ([`Follow::screen`]).
//! - Valkey 9 atomic slot migration (`CLUSTER MIGRATESLOTS`, [`asm`]): the new owner's
//!   stream carries the import (`CLUSTER SYNCSLOTS ESTABLISH ...`, an AOF-format snapshot
//!   of the slots, the old owner's later writes to them, `CLUSTER SYNCSLOTS FINISH`), the
//!   old owner's stream one `UNLINK` per key after ownership moved. Ordered by a fence
//!   ([`fence`]): the old owner's link leaves the slots out from the import's start (and
//!   confirms), then the slots are cleared on the target and the import rebuilds them; a
//!   failed import makes the old owner re-sync. Across processes and restarts through a
//!   reserved hash on the target. Each import is counted (`atomic_slot_migrations`; also
//!   found by `CLUSTER GETSLOTMIGRATIONS` at the periodic checks); one not ordered is
//!   named in the warnings.
//! - One shard failing stops the others (each writes its checkpoint) and the migration
//!   ends with [`MigrationError::Shard`] naming it.

use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use replication_client::{RdbMode, Replica, ResumePoint};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use super::apply::{Applier, Sink};
use super::checkpoint::{self, Checkpoint, CheckpointPhase, CHECKPOINT_KEY};
use super::conn;
use super::fullsync::FullSyncConfig;
use super::live::Live;
use super::progress::{Phase, ShardEntry, Tracker};
use super::report::{Report, ShardReport, StopReason};
use super::run::{prepare, read_checkpoint, CheckpointWriter, Job, Prepared};
use super::side::{SideConfig, SideConn};
use super::{scan, Conflict, MigrationError, Source, SourceMode, TargetConfig};
use crate::cluster::{self, ClusterTopology, Node};

/// Consecutive failed attempts of a shard's link (its node unreachable, no other node
/// serving its slots) before the migration stops with [`MigrationError::ShardLost`]. With
/// the link's backoff (100 ms doubling to 30 s) that is about 3 minutes.
const MAX_FOLLOW_ATTEMPTS: u32 = 12;
/// Bound on one `Replica::connect` to a shard's new node.
const RELINK_TIMEOUT: Duration = Duration::from_secs(30);

/// Which shards of a cluster source this process migrates
/// ([`MigrationBuilder::shards`](super::MigrationBuilder::shards)); the default (none given)
/// is all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShardSpec {
    /// Indexes in the list of shards sorted by first slot (`0-2`, `5`).
    Indexes(RangeInclusive<usize>),
    /// The shard one of whose nodes (master or replica) has this id (or id prefix, at
    /// least 8 characters).
    Node(String),
}

impl ShardSpec {
    /// Parses a `--shards` list: comma-separated indexes (`5`), index ranges (`0-2`) and
    /// node ids (`07c37dfeb235213a872192d90877d0cd55635b91`).
    ///
    /// ```
    /// use migrate_core::migrate::ShardSpec;
    /// let specs = ShardSpec::parse_list("0-2,5").unwrap();
    /// assert_eq!(specs, vec![ShardSpec::Indexes(0..=2), ShardSpec::Indexes(5..=5)]);
    /// assert!(ShardSpec::parse_list("2-1").is_err());
    /// ```
    ///
    /// # Errors
    /// An empty item, a reversed range, or a node id shorter than 8 characters.
    pub fn parse_list(text: &str) -> Result<Vec<ShardSpec>, String> {
        let mut out = Vec::new();
        for item in text.split(',').map(str::trim) {
            if item.is_empty() {
                return Err(format!("empty item in shard list {text:?}"));
            }
            let num = |s: &str| s.trim().parse::<usize>().ok();
            if let Some(i) = num(item) {
                out.push(ShardSpec::Indexes(i..=i));
            } else if let Some((a, b)) = item
                .split_once('-')
                .and_then(|(a, b)| Some((num(a)?, num(b)?)))
            {
                if a > b {
                    return Err(format!("shard range {item:?} is reversed"));
                }
                out.push(ShardSpec::Indexes(a..=b));
            } else if item.len() >= 8 && item.bytes().all(|b| b.is_ascii_alphanumeric()) {
                out.push(ShardSpec::Node(item.to_ascii_lowercase()));
            } else {
                return Err(format!(
                    "{item:?} is neither a shard index, an index range (0-2) nor a node id"
                ));
            }
        }
        Ok(out)
    }
}

/// One shard as found at discovery.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) id: String,
    pub(crate) master: Node,
    pub(crate) replicas: Vec<Node>,
    pub(crate) slots: Vec<RangeInclusive<u16>>,
}

impl Plan {
    fn members(&self) -> Vec<String> {
        std::iter::once(&self.master)
            .chain(&self.replicas)
            .filter_map(|n| n.id.clone())
            .collect()
    }
}

/// The shards of `topo` that serve slots, sorted by first slot.
pub(crate) fn plan(topo: &ClusterTopology) -> Vec<Plan> {
    topo.masters()
        .into_iter()
        .map(|m| {
            let slots = topo.slot_map().slots_of(m);
            Plan {
                id: format!("s{}", slots.first().map_or(0, |r| *r.start())),
                master: m.clone(),
                replicas: topo.replicas_of(m).to_vec(),
                slots,
            }
        })
        .collect()
}

/// `0-5460,6000`.
pub(crate) fn slots_text(slots: &[RangeInclusive<u16>]) -> String {
    slots
        .iter()
        .map(|r| {
            if r.start() == r.end() {
                r.start().to_string()
            } else {
                format!("{}-{}", r.start(), r.end())
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The shards `specs` select (all for none), in order.
pub(crate) fn select(plans: Vec<Plan>, specs: &[ShardSpec]) -> Result<Vec<Plan>, String> {
    if specs.is_empty() {
        return Ok(plans);
    }
    let mut keep = vec![false; plans.len()];
    for spec in specs {
        match spec {
            ShardSpec::Indexes(r) => {
                if *r.end() >= plans.len() {
                    return Err(format!(
                        "shard index {} is out of range: the source cluster has {} shards (0-{})",
                        r.end(),
                        plans.len(),
                        plans.len().saturating_sub(1)
                    ));
                }
                for i in r.clone() {
                    keep[i] = true;
                }
            }
            ShardSpec::Node(id) => {
                let found = plans.iter().position(|p| {
                    p.members()
                        .iter()
                        .any(|m| m.to_ascii_lowercase().starts_with(id))
                });
                match found {
                    Some(i) => keep[i] = true,
                    None => return Err(format!("no node of the source cluster has the id {id}")),
                }
            }
        }
    }
    Ok(plans
        .into_iter()
        .zip(keep)
        .filter_map(|(p, k)| k.then_some(p))
        .collect())
}

/// The node a shard is read from: a healthy replica with `prefer_replica`, else the master.
fn pick(master: &Node, replicas: &[Node], prefer_replica: bool) -> Node {
    if prefer_replica {
        if let Some(r) = replicas.iter().find(|r| r.healthy && !r.loading) {
            return r.clone();
        }
    }
    master.clone()
}

/// Asks the nodes at `seeds` in turn for the cluster's topology; the first answer wins.
async fn discover_any(
    seeds: &[String],
    base: &TargetConfig,
    timeout: Duration,
) -> Option<ClusterTopology> {
    for addr in seeds {
        let Some(node) = Node::parse_addr(addr) else {
            continue;
        };
        let cfg = TargetConfig {
            url: base.url.with_host_port(&node.host, node.port),
            tls: base.tls.clone(),
        };
        let found = tokio::time::timeout(timeout, async {
            let mut t = conn::connect(&cfg, timeout).await.ok()?;
            cluster::discover(&mut t).await.ok().flatten()
        })
        .await;
        if let Ok(Some(topo)) = found {
            return Some(topo);
        }
    }
    None
}

/// Every node address of `topo`, masters first.
fn addrs(topo: &ClusterTopology) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in topo.slot_map().shards() {
        for n in std::iter::once(&s.master).chain(&s.replicas) {
            let a = n.addr();
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    out
}

mod asm;
mod fence;
mod ids;
mod moves;

pub(crate) use fence::Step as AsmStep;
pub(crate) use fence::FENCE_KEY;

/// For the `cluster_topology` fuzz target: `frame` read as the replies of atomic slot
/// migrations (`CLUSTER GETSLOTMIGRATIONS`, the target's fence hash), `args` as a
/// `CLUSTER SYNCSLOTS` marker.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_asm(frame: &resp_codec::Frame, args: &[bytes::Bytes]) {
    asm::fuzz_listed(frame, args);
    fence::fuzz_fences(frame);
}
pub(crate) use moves::Moves;

/// A shard's link state for following failovers (see the module docs).
pub(crate) struct Follow {
    pub(crate) id: String,
    /// Whether this shard carries the function libraries (the first shard of the cluster
    /// does; every master holds the same ones, and loading them again would collide).
    pub(crate) functions: bool,
    /// The slots it served at discovery: a healing full sync sweeps only these.
    pub(crate) slots: Vec<RangeInclusive<u16>>,
    members: Vec<String>,
    /// The link's configuration for the current node (no resume point).
    config: replication_client::Config,
    seeds: Vec<String>,
    prefer_replica: bool,
    timeout: Duration,
    /// The current node, shared with the progress.
    node: Arc<Mutex<String>>,
    check_every: Duration,
    last_check: std::time::Instant,
    /// Shared by the shards of this process.
    moves: Arc<Moves>,
    /// The applied source offset last published to [`Moves`].
    landed_offset: u64,
    /// `DEL`s screened and maybe not applied yet: (source offset, key).
    dels_in_flight: std::collections::VecDeque<(u64, bytes::Bytes)>,
    /// Commands left out because their keys moved to another shard (the move carries
    /// their effect).
    pub(crate) superseded: u64,
    /// Moves applied without the old owner's stream confirmed applied first (see
    /// [`moves`]).
    pub(crate) unconfirmed_moves: u64,
    /// The target-side ordering of keys moved in from other shards.
    gate: moves::MoveGate,
    /// This shard's side of atomic slot migrations ([`fence`]).
    pub(crate) asm: fence::Local,
}

impl Follow {
    /// Screens a replicated command of this shard against keys moved between shards:
    ///
    /// - `RESTORE-ASKING key` (this shard imports a key by `MIGRATE`): this shard owns the
    ///   key from now on; applied as `RESTORE ... REPLACE` (the old owner's copy may still
    ///   be on the target), once the old owner's stream is applied on the target past its
    ///   `DEL` of the key ([`Follow::confirm_move`], bounded).
    /// - A command on a key another shard owns since a move: it happened on this shard
    ///   before the move (no shard writes a key it no longer has), and the move's `RESTORE`
    ///   already holds its effect: left out (`DEL`/`UNLINK` narrowed to the other keys).
    ///
    /// - `CLUSTER SYNCSLOTS ...` (a Valkey 9 atomic slot migration into this shard, see
    ///   [`asm`]): counted, left out, and its step taken by the link ([`fence`]).
    /// - A command on a key of slots this shard leaves out for an atomic slot migration
    ///   ([`fence`]): left out.
    ///
    /// So the order in which the two shards' streams reach the target does not matter.
    /// `None`: leave the command out.
    pub(crate) async fn screen(
        &mut self,
        mut cmd: replication_client::Command,
    ) -> Option<replication_client::Command> {
        self.asm_tick().await;
        if let Some(m) = asm::marker(&cmd.args) {
            self.asm_marker(&m, cmd.end_offset);
            self.asm_screened(cmd.end_offset);
            let mut moves = self.moves.lock();
            // A link resumed after its `ESTABLISH`: the fence read back names the import.
            let hint = moves
                .fences
                .map
                .iter()
                .find(|(_, f)| f.importer == self.id && f.state == fence::State::Open)
                .map(|(n, _)| n.clone());
            moves.asm.note(&self.id, m, hint);
            return None;
        }
        let name = cmd.name().to_ascii_uppercase();
        if name == b"RESTORE-ASKING" {
            let Some(key) = cmd.args.get(1).cloned() else {
                return Some(cmd);
            };
            let slot = crate::key_slot(&key);
            self.asm_import_seen(&[slot..=slot], cmd.end_offset);
            self.asm_screened(cmd.end_offset);
            let hint = {
                let mut m = self.moves.lock();
                m.owners.insert(key.clone(), self.id.clone());
                m.dels.get(&key).filter(|(s, _)| *s != self.id).cloned()
            };
            self.confirm_move(crate::key_slot(&key), cmd.end_offset, hint)
                .await;
            self.unconfirmed_moves = self.gate.unconfirmed;
            cmd.args[0] = bytes::Bytes::from_static(b"RESTORE");
            if !cmd
                .args
                .iter()
                .skip(4)
                .any(|a| a.eq_ignore_ascii_case(b"REPLACE"))
            {
                cmd.args.push(bytes::Bytes::from_static(b"REPLACE"));
            }
            return Some(cmd);
        }
        let Some(idx) = crate::command::key_indexes(&cmd.args).filter(|i| !i.is_empty()) else {
            self.asm_screened(cmd.end_offset);
            return Some(cmd);
        };
        if self.asm_screen(&cmd.args, idx[0], cmd.end_offset) {
            return None;
        }
        let mut m = self.moves.lock();
        let foreign = |m: &moves::MovesInner, i: usize| {
            m.owners
                .get(&cmd.args[i])
                .is_some_and(|owner| *owner != self.id)
        };
        let keep: Vec<usize> = idx.iter().copied().filter(|&i| !foreign(&m, i)).collect();
        let dropped = idx.len() - keep.len();
        if name == b"DEL" || name == b"UNLINK" {
            for &i in &keep {
                m.dels
                    .insert(cmd.args[i].clone(), (self.id.clone(), cmd.end_offset));
                self.dels_in_flight
                    .push_back((cmd.end_offset, cmd.args[i].clone()));
            }
            drop(m);
            if dropped == 0 {
                return Some(cmd);
            }
            self.superseded += 1;
            if keep.is_empty() {
                return None;
            }
            let mut args = vec![cmd.args[0].clone()];
            args.extend(keep.iter().map(|&i| cmd.args[i].clone()));
            cmd.args = args;
            return Some(cmd);
        }
        if dropped == 0 {
            Some(cmd)
        } else {
            self.superseded += 1;
            None
        }
    }

    /// This shard's stream is applied on the target up to source offset `applied`.
    pub(crate) fn landed(&mut self, applied: u64) {
        self.asm_landed(applied);
        if applied <= self.landed_offset {
            return;
        }
        self.landed_offset = applied;
        let mut m = self.moves.lock();
        m.landed.insert(self.id.clone(), applied);
        while self
            .dels_in_flight
            .front()
            .is_some_and(|(offset, _)| *offset <= applied)
        {
            let Some((offset, key)) = self.dels_in_flight.pop_front() else {
                break;
            };
            if m.dels
                .get(&key)
                .is_some_and(|(s, o)| *s == self.id && *o == offset)
            {
                m.dels.remove(&key);
            }
        }
    }

    /// A new link to the current node without a resume point: a full sync (the
    /// re-sync a failed atomic slot migration asks for, [`fence`]). `None`: the node
    /// refused or did not answer (tried again later).
    pub(crate) async fn fresh_link(&mut self) -> Option<Replica> {
        match tokio::time::timeout(RELINK_TIMEOUT, Replica::connect(self.config.clone())).await {
            Ok(Ok(r)) => Some(r),
            Ok(Err(e)) => {
                tracing::warn!(target: "migrate", "shard {}: {} refused the re-sync ({e}); retrying", self.id, self.config.url());
                None
            }
            Err(_) => {
                tracing::warn!(target: "migrate", "shard {}: {} did not answer the re-sync within {RELINK_TIMEOUT:?}; retrying", self.id, self.config.url());
                None
            }
        }
    }

    /// The current node's URL, redacted.
    pub(crate) fn origin(&self) -> String {
        self.config.url().to_string()
    }

    /// The current node as a plain connection (for `INFO`), with the link's credentials
    /// and TLS settings.
    pub(crate) fn node_conn(&self) -> TargetConfig {
        TargetConfig::of_source(&self.config)
    }

    /// Whether a quiet link should check that its node still serves the shard.
    pub(crate) fn check_due(&self) -> bool {
        self.last_check.elapsed() >= self.check_every
    }

    /// After the link failed (`attempt` consecutive failures; 0: a periodic check): the
    /// shard's node now, and a new link to it continuing from `position` when it changed.
    /// `None`: stay (the old link retries by itself).
    ///
    /// # Errors
    /// [`MigrationError::ShardLost`] after [`MAX_FOLLOW_ATTEMPTS`] failures.
    pub(crate) async fn relink(
        &mut self,
        position: Option<ResumePoint>,
        attempt: u32,
    ) -> Result<Option<Replica>, MigrationError> {
        self.last_check = std::time::Instant::now();
        if attempt > MAX_FOLLOW_ATTEMPTS {
            return Err(MigrationError::ShardLost {
                shard: self.id.clone(),
                node: self.config.url().addr(),
                attempts: attempt - 1,
                tried: self.seeds.join(" "),
            });
        }
        let base = TargetConfig::of_source(&self.config);
        // The current node last: it is the one that failed.
        let current = self.config.url().addr();
        let mut seeds: Vec<String> = self
            .seeds
            .iter()
            .filter(|a| **a != current)
            .cloned()
            .collect();
        seeds.push(current.clone());
        let Some(topo) = discover_any(&seeds, &base, self.timeout).await else {
            tracing::warn!(target: "migrate", "shard {}: no node of the source cluster answered ({}); retrying", self.id, seeds.join(" "));
            return Ok(None);
        };
        for a in addrs(&topo) {
            if !self.seeds.contains(&a) {
                self.seeds.push(a);
            }
        }
        self.moves.seen(&topo);
        let Some((master, replicas)) = self.find(&topo) else {
            tracing::warn!(target: "migrate", "shard {}: the cluster names no healthy master for its slots yet; retrying", self.id);
            return Ok(None);
        };
        self.members = std::iter::once(&master)
            .chain(&replicas)
            .filter_map(|n| n.id.clone())
            .collect();
        self.moves.register(&self.id, self.members.clone());
        let slots = topo.slot_map().slots_of(&master);
        if !slots.is_empty() {
            self.slots = slots;
        }
        let node = pick(&master, &replicas, self.prefer_replica);
        let addr = node.addr();
        if addr == current {
            return Ok(None);
        }
        let cfg = self.config.clone().node(&node.host, node.port);
        let mut with_pos = cfg.clone();
        if let Some(p) = position {
            with_pos = with_pos.resume_from(p);
        }
        tracing::warn!(target: "migrate", "shard {}: now served by {addr} (was {current}); continuing there{}", self.id,
            position.map(|p| format!(" with PSYNC at offset {}", p.offset)).unwrap_or_else(|| " with a new full sync".into()));
        match tokio::time::timeout(RELINK_TIMEOUT, Replica::connect(with_pos)).await {
            Ok(Ok(r)) => {
                self.config = cfg;
                *self.node.lock().unwrap_or_else(|e| e.into_inner()) = addr;
                Ok(Some(r))
            }
            Ok(Err(e)) => {
                tracing::warn!(target: "migrate", "shard {}: {addr} refused the link ({e}); retrying", self.id);
                Ok(None)
            }
            Err(_) => {
                tracing::warn!(target: "migrate", "shard {}: {addr} did not answer PSYNC within {RELINK_TIMEOUT:?}; retrying", self.id);
                Ok(None)
            }
        }
    }

    /// Reads the shard's slots again (before the sweep of a healing full sync, which must
    /// stay inside the slots the shard serves now: slots resharded away are another
    /// shard's). Kept as they were when no node answers.
    pub(crate) async fn refresh_slots(&mut self) {
        let base = TargetConfig::of_source(&self.config);
        let mut seeds = vec![self.config.url().addr()];
        seeds.extend(self.seeds.iter().cloned());
        if let Some(topo) = discover_any(&seeds, &base, self.timeout).await {
            self.moves.seen(&topo);
            if let Some((master, _)) = self.find(&topo) {
                let slots = topo.slot_map().slots_of(&master);
                if slots != self.slots {
                    tracing::info!(target: "migrate", "shard {} now serves slots {} (was {})", self.id, slots_text(&slots), slots_text(&self.slots));
                    self.slots = slots;
                }
            }
        }
    }

    /// The shard in `topo`: the one holding one of its known nodes as a healthy master
    /// serving slots, else the master of its first slot.
    fn find(&self, topo: &ClusterTopology) -> Option<(Node, Vec<Node>)> {
        let map = topo.slot_map();
        let serving = |n: &Node| n.healthy && !map.slots_of(n).is_empty();
        let by_id = map.shards().iter().find(|s| {
            serving(&s.master)
                && std::iter::once(&s.master)
                    .chain(&s.replicas)
                    .any(|n| n.id.as_ref().is_some_and(|id| self.members.contains(id)))
        });
        if let Some(s) = by_id {
            return Some((s.master.clone(), s.replicas.clone()));
        }
        let first = *self.slots.first()?.start();
        let m = topo.master_for_slot(first)?.clone();
        let replicas = topo.replicas_of(&m).to_vec();
        m.healthy.then_some((m, replicas))
    }
}

/// What every shard's task shares.
struct Ctx {
    job_target: TargetConfig,
    source: replication_client::Config,
    url: String,
    settings: super::options::Settings,
    wopts: crate::WriterOptions,
    fs: FullSyncConfig,
    buckets: super::limit::Buckets,
    permits: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
    base_report: Report,
    /// The id of the cluster's first shard (by slot): it alone carries function libraries.
    first_id: String,
    /// The libraries of the first shard's master: the other shards leave them out.
    first_libraries: Arc<std::collections::HashSet<bytes::Bytes>>,
    moves: Arc<Moves>,
    /// The target, when it is a cluster (each shard opens its own sink from it).
    cluster_target: Option<super::cluster_sink::Detected>,
}

/// How a shard starts: its checkpoint (`None`: a full sync) and, for a cluster target, the
/// cluster its sink opens (with what the shard's checkpoint keys said).
type Start = (Option<Checkpoint>, Option<super::cluster_sink::Detected>);

/// The end of one shard's task.
struct Done {
    plan: Plan,
    node: Arc<Mutex<String>>,
    report: Report,
    result: Result<StopReason, MigrationError>,
}

/// The per-shard checkpoints on the target (`CHECKPOINT_KEY:<shard>`, for the precheck):
/// each shard's id, its checkpoint (or why it cannot be read), and whether it belongs to
/// a migration with `settings`.
pub(crate) async fn shard_checkpoints(
    t: &mut crate::Target<conn::Stream>,
    settings: &super::options::Settings,
) -> Vec<(String, Result<Checkpoint, String>, bool)> {
    let keys = super::run::checkpoint_keys(t).await.unwrap_or_default();
    let mut out = Vec::new();
    for key in keys {
        // A cluster target's per-node copy carries a `{tag}` after the id.
        let Some(id) = checkpoint::shard_of_key(&key) else {
            continue;
        };
        let parsed = match t.call(&[&b"GET"[..], &key[..]]).await {
            Ok(f) if !f.is_null() && !f.is_error() => f
                .as_bytes()
                .map(Checkpoint::parse)
                .unwrap_or_else(|| Err("not a string".into())),
            _ => continue,
        };
        let fp = checkpoint::fingerprint(&format!("cluster-shard:{id}"), settings);
        let ours = parsed.as_ref().is_ok_and(|c| c.fingerprint == fp);
        if !out.iter().any(|(i, _, _): &(String, _, _)| *i == id) {
            out.push((id, parsed, ours));
        }
    }
    out
}

/// Whether the source at `config` is a cluster node, and its topology. `None` for a
/// standalone server, and when it cannot be asked (the replication link then reports why,
/// as for any source).
pub(crate) async fn detect(
    config: &replication_client::Config,
    timeout: Duration,
) -> Option<ClusterTopology> {
    let probe = TargetConfig::of_source(config);
    let mut t = conn::connect(&probe, timeout).await.ok()?;
    match cluster::discover(&mut t).await {
        Ok(topo) => topo,
        Err(e) => {
            tracing::debug!(target: "migrate", "cluster mode of the source unknown ({e}): read as a standalone server");
            None
        }
    }
}

/// Runs the migration of a cluster source (see the module docs).
pub(crate) async fn run(
    job: &Job,
    mut target: crate::Target<conn::Stream>,
    topo: ClusterTopology,
    tracker: &Tracker,
    stop: &mut watch::Receiver<bool>,
    report: &mut Report,
) -> Result<StopReason, MigrationError> {
    let s = &job.settings;
    let Source::Live(source) = &job.source else {
        return Err(MigrationError::Internal(
            "cluster source without a live source".into(),
        ));
    };
    let url = job.target.url.to_string();
    let cluster_err = |reason: String| MigrationError::ClusterSource {
        url: source.url().to_string(),
        reason,
    };
    let mut all = plan(&topo);
    if all.is_empty() {
        return Err(cluster_err("no master serves any slot".into()));
    }
    // A cluster target: each shard writes through its own cluster sink, with its own
    // per-slot checkpoint keys built from the shard's key.
    let cluster_target = super::cluster_sink::detect(&mut target, &url).await;
    let mut known_ids = Vec::new();
    if s.checkpoint && !s.reset_checkpoint {
        // Names that survive a reshard of a shard's lowest slot ([`ids`]).
        let from = TargetConfig::of_source(source);
        known_ids = ids::adopt(&mut all, &from, &job.target, cluster_target.is_some(), s).await;
    }
    let total = all.len();
    let first_id = all[0].id.clone();
    let first_libraries = {
        let m = &all[0].master;
        let cfg = TargetConfig {
            url: source.url().with_host_port(&m.host, m.port),
            tls: source.tls_options().clone(),
        };
        match conn::connect(&cfg, s.connect_timeout).await {
            Ok(mut t) => t.function_libraries().await.unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    };
    let first_libraries: Arc<std::collections::HashSet<bytes::Bytes>> =
        Arc::new(first_libraries.into_iter().collect());
    let plans = select(all, &s.shards).map_err(cluster_err)?;
    tracing::info!(target: "migrate", "the source {} is a cluster of {total} shards (read with {:?}); migrating {}: {}",
        source.url(), topo.source(), plans.len(),
        plans.iter().map(|p| format!("{} {} ({})", p.id, p.master, slots_text(&p.slots))).collect::<Vec<_>>().join(", "));
    report.source_mode = "psync".into();
    let terr = |source| MigrationError::Target {
        url: url.clone(),
        source: Box::new(source),
    };
    // Each shard's checkpoint.
    let mut resumes: Vec<Option<Checkpoint>> = Vec::new();
    let mut sinks: Vec<Option<super::cluster_sink::Detected>> = Vec::new();
    for p in &plans {
        let key = format!("{CHECKPOINT_KEY}:{}", p.id);
        let fp = checkpoint::fingerprint(&format!("cluster-shard:{}", p.id), s);
        let c = if let Some(ct) = &cluster_target {
            let mut d = ct.fresh();
            let c = d.start(&job.target, s, &key, &fp, report).await?;
            sinks.push(Some(d));
            c
        } else if s.reset_checkpoint {
            target.call(&["DEL", &key]).await.map_err(terr)?;
            None
        } else if s.checkpoint {
            read_checkpoint(&mut target, &url, &key, &fp).await?
        } else {
            None
        };
        if let Some(c) = &c {
            tracing::info!(target: "migrate", "shard {}: resuming from the target's checkpoint: {c}", p.id);
            report.resumed_from.get_or_insert_with(String::new);
            if let Some(r) = report.resumed_from.as_mut() {
                if !r.is_empty() {
                    r.push_str("; ");
                }
                r.push_str(&format!("{}: {c}", p.id));
            }
        }
        resumes.push(c);
        if cluster_target.is_none() {
            sinks.push(None);
        }
    }
    let any_resume = resumes.iter().any(Option::is_some);
    let Prepared { wopts, fs, .. } = prepare(
        job,
        &mut target,
        &url,
        cluster_target.as_ref(),
        any_resume,
        report,
    )
    .await?;
    let buckets = super::limit::Buckets::new(&s.limits);
    let _ = tracker.buckets.set(buckets.clone());
    let (inner_tx, inner_rx) = watch::channel(false);
    let ctx = Arc::new(Ctx {
        job_target: job.target.clone(),
        source: source.clone().rdb_mode(RdbMode::Raw),
        url: url.clone(),
        settings: s.clone(),
        wopts,
        fs,
        buckets,
        permits: Arc::new(Semaphore::new(s.max_full_syncs.max(1))),
        stop: inner_rx,
        base_report: Report {
            source: source.url().to_string(),
            target: url.clone(),
            target_version: report.target_version.clone(),
            source_mode: "psync".into(),
            ..Report::default()
        },
        first_id,
        first_libraries,
        moves: Arc::new(Moves::default()),
        cluster_target,
    });
    ctx.moves.seen(&topo);
    ctx.moves.checkpoints_found(known_ids);
    let mut seeds = addrs(&topo);
    let seed = source.url().addr();
    if !seeds.contains(&seed) {
        seeds.push(seed);
    }
    let mut set: JoinSet<Done> = JoinSet::new();
    let mut known: Vec<Plan> = Vec::new();
    let mut running: Vec<Running> = Vec::new();
    for ((p, c), sink) in plans.into_iter().zip(resumes).zip(sinks) {
        known.push(p.clone());
        running.push(spawn(&ctx, &mut set, tracker, p, (c, sink), &seeds, None));
    }
    let mut done: Vec<Done> = Vec::new();
    let mut first_err: Option<MigrationError> = None;
    // SourceMode::Auto: the cluster refused PSYNC before any shard replicated.
    let mut refused: Option<String> = None;
    // Shards already logged as serving no slot.
    let mut gone: Vec<String> = Vec::new();
    let mut user_stop = false;
    let every = s.rediscover_every;
    let started = std::time::Instant::now();
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            changed = stop.changed(), if !user_stop => {
                if changed.is_err() || *stop.borrow() {
                    user_stop = true;
                    let _ = inner_tx.send(true);
                    tracker.update(|p| p.phase = Phase::Stopping);
                }
            }
            next = set.join_next() => {
                let Some(next) = next else { break };
                let d = match next {
                    Ok(d) => d,
                    Err(e) => {
                        first_err.get_or_insert(MigrationError::Internal(format!("a shard's task ended abnormally: {e}")));
                        let _ = inner_tx.send(true);
                        continue;
                    }
                };
                if refused.is_some() {
                    // Falling back to scan mode: the others are stopping.
                    continue;
                }
                if s.source_mode == SourceMode::Auto && first_err.is_none() && !tracker.shards_replicated() {
                    if let Err(MigrationError::Source { source: e, .. }) = &d.result {
                        if let Some(reason) = scan::refusal(e) {
                            tracing::warn!(target: "migrate", "the source cluster refuses replication ({reason}): continuing in scan mode (SCAN + DUMP on every master, keyspace notifications)");
                            refused = Some(reason);
                            let _ = inner_tx.send(true);
                            continue;
                        }
                    }
                }
                if let Err(e) = &d.result {
                    if first_err.is_none() {
                        let node = d.node.lock().unwrap_or_else(|e| e.into_inner()).clone();
                        tracing::error!(target: "migrate", "shard {} ({node}) failed: {e}; stopping the other shards", d.plan.id);
                        first_err = Some(MigrationError::Shard {
                            shard: d.plan.id.clone(),
                            node,
                            source: Box::new(e.clone()),
                        });
                        let _ = inner_tx.send(true);
                    }
                }
                done.push(d);
            }
            _ = tick.tick(), if !every.is_zero() && first_err.is_none() && !user_stop => {
                let base = TargetConfig::of_source(source);
                let nodes: Vec<(String, String)> = running.iter().map(|(id, _, n)| (id.clone(), n.lock().unwrap_or_else(|e| e.into_inner()).clone())).collect();
                asm::check(&ctx.moves, &nodes, &base, s.connect_timeout, started).await;
                let Some(topo) = discover_any(&seeds, &base, s.connect_timeout).await else { continue };
                ctx.moves.seen(&topo);
                for a in addrs(&topo) {
                    if !seeds.contains(&a) { seeds.push(a); }
                }
                for p in plan(&topo) {
                    let ours = known.iter().any(|k| {
                        let members = k.members();
                        p.members().iter().any(|m| members.contains(m)) || k.master.same(&p.master)
                    });
                    if ours {
                        continue;
                    }
                    let mut p = p;
                    if known.iter().any(|k| k.id == p.id) {
                        p.id = format!("{}-{}", p.id, p.master.id.as_deref().unwrap_or("x").chars().take(8).collect::<String>());
                    }
                    if !s.shards.is_empty() {
                        tracing::warn!(target: "migrate", "a new shard serves slots {} ({}): not in this process's --shards; start a process for it", slots_text(&p.slots), p.master);
                        known.push(p);
                        continue;
                    }
                    tracing::info!(target: "migrate", "a new shard {} serves slots {} ({}): starting its link", p.id, slots_text(&p.slots), p.master);
                    let key = format!("{CHECKPOINT_KEY}:{}", p.id);
                    let fp = checkpoint::fingerprint(&format!("cluster-shard:{}", p.id), s);
                    let mut sink = ctx.cluster_target.as_ref().map(super::cluster_sink::Detected::fresh);
                    let c = if let Some(d) = sink.as_mut() {
                        let mut scratch = Report::default();
                        d.start(&job.target, s, &key, &fp, &mut scratch).await.unwrap_or(None)
                    } else if s.checkpoint {
                        read_checkpoint(&mut target, &url, &key, &fp).await.unwrap_or(None)
                    } else {
                        None
                    };
                    let mut gate = Gate::new();
                    for (id, t, node) in &running {
                        if done.iter().any(|d| d.plan.id == *id) {
                            continue;
                        }
                        let addr = node.lock().unwrap_or_else(|e| e.into_inner()).clone();
                        if let Some(offset) = repl_offset(&base, &addr, s.connect_timeout).await {
                            gate.push((id.clone(), t.clone(), offset));
                        }
                    }
                    known.push(p.clone());
                    running.push(spawn(&ctx, &mut set, tracker, p, (c, sink), &seeds, Some(gate)));
                }
                let now = plan(&topo);
                for k in &known {
                    let members = k.members();
                    let serving = now.iter().any(|p| p.members().iter().any(|m| members.contains(m)) || p.master.same(&k.master));
                    if !serving && !gone.contains(&k.id) {
                        tracing::info!(target: "migrate", "shard {} serves no slot any more (its link stays until the end)", k.id);
                        gone.push(k.id.clone());
                    } else if serving {
                        gone.retain(|g| *g != k.id);
                    }
                }
            }
        }
    }
    if let Some(reason) = refused {
        tracker.clear_shards();
        return scan_instead(&ctx, job, source, reason, tracker, stop, report).await;
    }
    // The report: the shards' sums, and each shard.
    done.sort_by_key(|d| d.plan.slots.first().map_or(0, |r| *r.start()));
    let max = s.max_listed;
    let mut all_caught_up = !done.is_empty();
    for d in &mut done {
        if d.plan.id != ctx.first_id {
            // Left to the first shard, not kept from the target: not "skipped".
            let target_had = ctx.fs.existing_functions.clone().unwrap_or_default();
            d.report.functions_skipped.retain(|n| {
                !ctx.first_libraries.contains(n.as_bytes()) || target_had.contains(n.as_bytes())
            });
        }
        report.absorb(&d.report, max);
        let state = match &d.result {
            Ok(r) => r.as_str(),
            Err(_) => StopReason::Failed.as_str(),
        };
        all_caught_up &= matches!(d.result, Ok(StopReason::CaughtUp));
        let r = &d.report;
        report.shards.push(ShardReport {
            id: d.plan.id.clone(),
            master: d.node.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            slots: slots_text(&d.plan.slots),
            state: state.to_string(),
            full_syncs: r.full_syncs,
            partial_resyncs: r.partial_resyncs,
            failovers_followed: r.failovers_followed,
            keys: r.keys_written(),
            commands_applied: r.commands_applied,
            source_offset: r.source_offset,
            applied_offset: r.applied_offset,
            checkpoint_offset: r.checkpoint_offset,
            lag_bytes: r
                .source_offset
                .zip(r.applied_offset)
                .map_or(0, |(s, a)| s.saturating_sub(a)),
            error: d.result.as_ref().err().map(|e| e.to_string()),
            ..ShardReport::default()
        });
    }
    // Atomic slot migrations: once more at the end (those of the last interval).
    if !every.is_zero() {
        let base = TargetConfig::of_source(source);
        let nodes: Vec<(String, String)> = done
            .iter()
            .map(|d| {
                let node = d.node.lock().unwrap_or_else(|e| e.into_inner()).clone();
                (d.plan.id.clone(), node)
            })
            .collect();
        asm::check(&ctx.moves, &nodes, &base, s.connect_timeout, started).await;
    }
    {
        let m = ctx.moves.lock();
        report.atomic_slot_migrations = m.asm.count();
        let lines = m.asm.lines(&m.fences);
        report.warnings.extend(lines);
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    Ok(if user_stop || !all_caught_up {
        StopReason::Stopped
    } else {
        StopReason::CaughtUp
    })
}

/// Before a shard found while running (slots moved to a new master) loads its snapshot,
/// the running shards apply their streams up to these offsets, read from their nodes when
/// it was found: the old owners' `DEL`s of the keys that moved to it (written before the
/// move completed) then reach the target before the new shard's copies, not after.
type Gate = Vec<(String, Arc<Tracker>, u64)>;

/// How long a new shard waits for [`Gate`].
const GATE_WAIT: Duration = Duration::from_secs(60);

/// A running shard: its id, tracker and current node.
type Running = (String, Arc<Tracker>, Arc<Mutex<String>>);

/// The replication offset of the server at `addr` (`INFO replication`).
async fn repl_offset(base: &TargetConfig, addr: &str, timeout: Duration) -> Option<u64> {
    let node = Node::parse_addr(addr)?;
    let cfg = TargetConfig {
        url: base.url.with_host_port(&node.host, node.port),
        tls: base.tls.clone(),
    };
    conn::repl_offset(&cfg, timeout).await
}

/// The applier of one job over `sink`, with the migration's settings; it takes over
/// `report`.
fn applier(ctx: &Ctx, sink: Sink, report: &mut Report) -> Applier {
    let s = &ctx.settings;
    let mut ap = Applier::new(
        sink,
        ctx.url.clone(),
        s.conflict,
        s.on_error,
        s.max_listed,
        std::mem::take(report),
    );
    ap.target_ops = ctx.buckets.target_ops.clone();
    ap.cross_slot = s.cross_slot;
    ap
}

/// [`SourceMode::Auto`] and a cluster that refuses replication: scan mode, which reads
/// every master ([`scan`]), into one applier.
async fn scan_instead(
    ctx: &Ctx,
    job: &Job,
    source: &replication_client::Config,
    reason: String,
    tracker: &Tracker,
    stop: &mut watch::Receiver<bool>,
    report: &mut Report,
) -> Result<StopReason, MigrationError> {
    let s = &ctx.settings;
    let target = conn::connect(&ctx.job_target, s.connect_timeout).await?;
    let sink = match &ctx.cluster_target {
        None => Sink::Single(target.into_writer(ctx.wopts.clone())),
        Some(d) => Sink::Cluster(Box::new(
            d.fresh()
                .open(&ctx.job_target, s.connect_timeout, ctx.wopts.clone())
                .await?,
        )),
    };
    let mut ap = applier(ctx, sink, report);
    ap.report.source_mode = "scan".into();
    ap.report.source_mode_reason = Some(reason);
    let target_nodes = super::cluster_sink::scan_targets(&ap, &job.target);
    let cluster = ap.cluster().is_some();
    let scan_job = scan::ScanJob {
        target_nodes,
        cluster,
        source: TargetConfig::of_source(source),
        target: job.target.clone(),
        fs_config: FullSyncConfig {
            origin: source.url().to_string(),
            ..ctx.fs.clone()
        },
        timeout: s.connect_timeout,
        once: s.once,
        opts: s.scan.clone(),
        buckets: ctx.buckets.clone(),
    };
    let result = scan::run(scan_job, &mut ap, tracker, stop).await;
    *report = std::mem::take(&mut ap.report);
    result
}

/// Starts one shard's task; `gate`: a shard found while running (see [`Gate`]).
fn spawn(
    ctx: &Arc<Ctx>,
    set: &mut JoinSet<Done>,
    tracker: &Tracker,
    plan: Plan,
    start: Start,
    seeds: &[String],
    gate: Option<Gate>,
) -> Running {
    let child = Arc::new(Tracker::new());
    let node = pick(&plan.master, &plan.replicas, ctx.settings.prefer_replica);
    let shown = Arc::new(Mutex::new(node.addr()));
    tracker.add_shard(ShardEntry {
        id: plan.id.clone(),
        node: shown.clone(),
        slots: slots_text(&plan.slots),
        tracker: child.clone(),
    });
    let follow = Follow {
        functions: plan.id == ctx.first_id,
        id: plan.id.clone(),
        slots: plan.slots.clone(),
        members: plan.members(),
        config: ctx.source.clone().node(&node.host, node.port),
        seeds: seeds.to_vec(),
        prefer_replica: ctx.settings.prefer_replica,
        timeout: ctx.settings.connect_timeout,
        node: shown.clone(),
        check_every: ctx.settings.rediscover_every,
        last_check: std::time::Instant::now(),
        moves: ctx.moves.clone(),
        landed_offset: 0,
        dels_in_flight: std::collections::VecDeque::new(),
        superseded: 0,
        unconfirmed_moves: 0,
        gate: moves::MoveGate::new(
            Arc::new(ctx.settings.clone()),
            ctx.job_target.clone(),
            ctx.cluster_target.is_some(),
            ctx.stop.clone(),
        ),
        // Another process may migrate the other shards: read their fences.
        asm: fence::Local::new(!ctx.settings.shards.is_empty()),
    };
    ctx.moves.register(&plan.id, plan.members());
    let running = (plan.id.clone(), child.clone(), shown.clone());
    let ctx = ctx.clone();
    set.spawn(async move {
        let mut report = ctx.base_report.clone();
        let result = run_shard(&ctx, &plan, start, follow, &child, &mut report, gate).await;
        if result.is_err() {
            child.update(|p| p.phase = Phase::Done);
        }
        Done {
            plan,
            node: shown,
            report,
            result,
        }
    });
    running
}

/// One shard: its target connection and applier, the full-sync permit, the link.
async fn run_shard(
    ctx: &Ctx,
    plan: &Plan,
    (resume, sink): Start,
    follow: Follow,
    tracker: &Tracker,
    report: &mut Report,
    gate: Option<Gate>,
) -> Result<StopReason, MigrationError> {
    let s = &ctx.settings;
    let mut stop = ctx.stop.clone();
    let origin = follow.origin();
    if let Some(gate) = &gate {
        let deadline = std::time::Instant::now() + GATE_WAIT;
        for (id, other, offset) in gate {
            while other.snapshot().applied_offset < *offset {
                if *stop.borrow() {
                    return Ok(StopReason::Stopped);
                }
                if std::time::Instant::now() >= deadline {
                    let why = format!("shard {}: started before shard {id} applied its stream up to offset {offset} (waited {GATE_WAIT:?}): keys that moved from it may need `redis-migrate verify`", plan.id);
                    tracing::warn!(target: "migrate", "{why}");
                    report.warnings.push(why);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    // A shard found while running holds keys that moved from the others: they may still
    // be on the target.
    let conflict = if resume.is_some() || gate.is_some() {
        Conflict::Replace
    } else {
        s.conflict
    };
    let target = conn::connect(&ctx.job_target, s.connect_timeout).await?;
    let exists = if conflict == Conflict::Skip && s.write_mode != super::WriteMode::Restore {
        // `EXISTS` on the key's master when the target is a cluster.
        let side = SideConfig {
            target: ctx.job_target.clone(),
            timeout: s.connect_timeout,
            cluster: sink.is_some(),
        };
        Some(SideConn::connect(&side).await?)
    } else {
        None
    };
    let sink = match sink {
        None => Sink::Single(target.into_writer(ctx.wopts.clone())),
        Some(d) => Sink::Cluster(Box::new(
            d.open(&ctx.job_target, s.connect_timeout, ctx.wopts.clone())
                .await?,
        )),
    };
    let mut ap = applier(ctx, sink, report);
    let result = async {
        let point = resume
            .as_ref()
            .filter(|c| c.phase == CheckpointPhase::Incremental)
            .map(|c| c.point);
        // A shard that will start with a full sync waits for its turn.
        let permit = if point.is_none() {
            if ctx.permits.available_permits() == 0 {
                tracing::info!(target: "migrate", "shard {}: waiting for a full-sync slot (max {} at a time)", plan.id, s.max_full_syncs.max(1));
            }
            tokio::select! {
                p = ctx.permits.clone().acquire_owned() => p.ok(),
                _ = stop.wait_for(|v| *v) => return Ok(StopReason::Stopped),
            }
        } else {
            None
        };
        let existing_functions = if plan.id == ctx.first_id {
            ctx.fs.existing_functions.clone()
        } else {
            // The first shard loads these; here they would collide.
            let mut all: std::collections::HashSet<bytes::Bytes> =
                (*ctx.first_libraries).clone();
            all.extend(ctx.fs.existing_functions.iter().flat_map(|e| e.iter().cloned()));
            Some(Arc::new(all))
        };
        let mut config = ctx.source.clone();
        if let Ok(n) = follow.node.lock().map(|n| n.clone()) {
            if let Some(n) = Node::parse_addr(&n) {
                config = config.node(&n.host, n.port);
            }
        }
        if let Some(p) = point {
            config = config.resume_from(p);
        }
        tracing::info!(target: "migrate", "shard {} ({}): connecting to {origin} (PSYNC)", plan.id, slots_text(&plan.slots));
        let mut follow = follow;
        let replica = match Replica::connect(config).await {
            Ok(r) => r,
            // A refusal (NOPERM, an unknown PSYNC) is the source's answer: the caller may
            // fall back to scan mode. A node out of reach is not: the cluster is asked for
            // the shard's node again (a replica taking over, another replica), bounded.
            Err(e) if scan::refusal(&e).is_none() => {
                tracing::warn!(target: "migrate", "shard {}: {origin} cannot be reached ({e}); asking the cluster which node serves the shard", plan.id);
                let mut attempt = 1;
                let mut backoff = Duration::from_millis(100);
                loop {
                    if let Some(r) = follow.relink(point, attempt).await? {
                        break r;
                    }
                    attempt += 1;
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.wait_for(|v| *v) => return Ok(StopReason::Stopped),
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
            Err(e) => {
                return Err(MigrationError::Source {
                    url: origin.clone(),
                    source: Arc::new(e),
                })
            }
        };
        let origin = follow.origin();
        let live = Live {
            source_bytes: ctx.buckets.source_bytes.clone(),
            ckpt: s.checkpoint.then(|| CheckpointWriter {
                key: bytes::Bytes::from(format!("{CHECKPOINT_KEY}:{}", plan.id)),
                fingerprint: checkpoint::fingerprint(&format!("cluster-shard:{}", plan.id), s),
                source: format!("{} shard {}", ctx.base_report.source, plan.id),
            }),
            heal_next: resume.is_some(),
            target: ctx.job_target.clone(),
            connect_timeout: s.connect_timeout,
            origin: origin.clone(),
            fs_config: FullSyncConfig {
                origin: origin.clone(),
                conflict,
                existing_functions,
                ..ctx.fs.clone()
            },
            exists,
            once: s.once,
            source: None,
            idle_check: s.idle_check,
            version: ctx.fs.version,
            filter: s.filter.clone(),
            shard: Some(follow),
            permit,
        };
        live.run(replica, &mut ap, tracker, &mut stop).await
    }
    .await;
    *report = std::mem::take(&mut ap.report);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_lists_parse() {
        assert_eq!(
            ShardSpec::parse_list("0-2, 5").unwrap(),
            vec![ShardSpec::Indexes(0..=2), ShardSpec::Indexes(5..=5)]
        );
        assert_eq!(
            ShardSpec::parse_list("07C37DFEB235").unwrap(),
            vec![ShardSpec::Node("07c37dfeb235".into())]
        );
        for bad in ["", "1,", "3-1", "abc", "1-x"] {
            assert!(ShardSpec::parse_list(bad).is_err(), "{bad}");
        }
        assert_eq!(slots_text(&[0..=5460, 6000..=6000]), "0-5460,6000");
    }

    #[test]
    fn selection_by_index_and_id() {
        let text = "a1aaaaaa 10.0.0.1:7000@17000 master - 0 0 1 connected 0-8191\n\
                    b2bbbbbb 10.0.0.2:7000@17000 master - 0 0 2 connected 8192-16383\n\
                    c3cccccc 10.0.0.3:7000@17000 slave a1aaaaaa 0 0 1 connected\n";
        let topo = ClusterTopology::new(
            cluster::SlotMap::from_nodes(text).unwrap(),
            cluster::TopologySource::Nodes,
        );
        let plans = plan(&topo);
        assert_eq!(
            plans.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
            ["s0", "s8192"]
        );
        let one = select(plans.clone(), &[ShardSpec::Indexes(1..=1)]).unwrap();
        assert_eq!(one[0].id, "s8192");
        let by_replica = select(plans.clone(), &[ShardSpec::Node("c3cccccc".into())]).unwrap();
        assert_eq!(by_replica[0].id, "s0");
        assert!(select(plans.clone(), &[ShardSpec::Indexes(0..=2)]).is_err());
        assert!(select(plans, &[ShardSpec::Node("dddddddd".into())]).is_err());
        let p = pick(
            &topo.masters()[0].clone(),
            topo.replicas_of(topo.masters()[0]),
            true,
        );
        assert_eq!(p.addr(), "10.0.0.3:7000");
    }
}
