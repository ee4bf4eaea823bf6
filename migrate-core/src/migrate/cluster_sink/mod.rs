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
//!   not have been applied. Inside checkpointed batches nothing is guessed (below).
//!
//! # Checkpoints (exactly once per slot)
//! A cluster runs `MULTI`/`EXEC` only when every key is in one slot, so a replicated batch
//! becomes one transaction per slot it touches: `MULTI`, the batch's commands of that slot,
//! `SET <checkpoint key>{<tag of the slot>} <checkpoint>`, `EXEC`, on the slot's master
//! ([`slot_key`]). A slot's data and its checkpoint change together, so the slot holds
//! exactly the commands up to its checkpoint's offset. Once every transaction of a batch
//! is applied, the base checkpoint key (the *floor*: every slot holds at least this much)
//! is set to the batch's position; it is written outside any transaction and may lag.
//! - Resume: PSYNC from the floor; a replicated command is skipped when its slot's
//!   checkpoint key (found with `SCAN MATCH <base>{*` on every master, since resharding
//!   moves them), or the keyless marker of its slot's master (below), is at or past its
//!   offset. Nothing lost, nothing applied twice, per slot.
//! - A transaction whose `EXEC` may have run on a master that died: the slot's checkpoint
//!   key, read on the new owner, says whether it did; if not, the whole transaction is sent
//!   again there. `MOVED`, `TRYAGAIN` or `CLUSTERDOWN` inside it (the transaction was not
//!   run): sent again whole; `ASK` (the slot is being migrated): retried until the slot
//!   has moved.
//! - Keyless and cross-slot commands inside a batch end the transactions so far (each slot
//!   checkpointed at its last command) and run alone, exactly once as the next section
//!   says.
//! - One checkpoint key per slot ever written stays on the target (about 120 bytes each),
//!   under the reserved prefix: never copied, swept or counted; `forget` removes them all.
//!
//! # Cross-slot and keyless commands with checkpoints (exactly once)
//! Such a command is named by the checkpoint's fingerprint and replication id, its source
//! offset, its rank among such commands at that offset (a source transaction or script may
//! hold several) and a hash of its arguments ([`xslot::Ident`]). Each attempt first reads
//! the records below, so an attempt that stopped anywhere (the tool killed, a master
//! failing over: the command is retried as a whole for up to [`RETRY_FOR`], then one
//! error) is finished, never run twice. The records are under the checkpoint key `<base>`
//! (one set per source shard; `forget` removes them with it).
//! - Cross-slot: (a) its keys are copied (`DUMP`/`PTTL`/`RESTORE`) to temporary keys
//!   `<base>:xslot:{<base>}:<n>` in the floor's slot, then one `MULTI`/`EXEC` there runs the
//!   command on them and sets the stage marker `<base>:xslot:{<base>}:stage` to it;
//!   (b) per slot of its keys, one `MULTI`/`EXEC` on that slot's master writes the results
//!   (`RESTORE ... REPLACE` with the TTL, or `DEL` when absent) and sets the slot's done key
//!   `<base>:xslot:done{<tag>}` to the command; (c) the marker says done and the temporary
//!   keys are removed. A command that fails on the copies changes nothing: the marker says
//!   done with the error reply, reported again by a resume. A resume, or a retry, finds: no
//!   marker naming it → (a); its marker staged → (b) for the slots whose done key does not
//!   name it; done, or a later command's marker → nothing to do.
//! - Keyless (`FLUSHALL`, `FUNCTION ...`, `SCRIPT ...`, `FLUSHDB` of db 0): per master, one
//!   `MULTI`/`EXEC` on a slot it owns (the floor's slot on its master, else its first
//!   slot) with the command and `SET <base>:keyless{<tag>}` naming it; a flush also sets
//!   again the floor and the stage marker it erases. A master whose marker names the
//!   command or a later one is skipped. A flush erases the slot checkpoint keys too: at
//!   resume, a keyless marker stands for them (every slot of its master holds the commands
//!   up to its offset).
//! - What stays on the target, like the slot checkpoint keys: the stage marker, one done
//!   key per slot a cross-slot command wrote, one keyless marker per master.
//! - Limits: a marker of another replication id (the source failed over in between) is not
//!   trusted, so the command runs again; a target resharded between a crash and the resume
//!   may carry a keyless marker to a master that did not run the command; inside one
//!   source transaction or script (one offset), the writes just before or after a keyless
//!   command or a cross-slot one are told apart by offset only, as in batches.
//! - Without checkpoints, cross-slot commands use `__redis-migrate:xslot:{__redis-migrate}:<n>`
//!   and keyless ones go through the pipelined writers: a crash in the middle of one can
//!   leave it half applied.
//!
//! Acknowledged writes that a killed master had not yet replicated to its replica are
//! lost by Redis Cluster itself (replication is asynchronous); no client can see it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use resp_codec::Frame;

use super::checkpoint::Checkpoint;
use super::conn::{self, Stream};
use super::{MigrationError, TargetConfig};
use crate::cluster::{self, ClusterClient, ClusterTopology, Node};
use crate::{key_slot, Outcome, ServerError, ServerErrorKind, Tag, Writer, WriterOptions};

mod plan;
mod start;
mod xslot;

use plan::idempotent;
#[cfg(test)]
use plan::slot_tags;
pub(crate) use plan::{plan, slot_key, slots_of, Plan};
pub(crate) use start::{check_source_dbs, detect, forget_all, Detected};

/// How long one command may keep being retried (redirections, `TRYAGAIN`, `CLUSTERDOWN`,
/// a master failing over) before the migration stops with a clear error.
pub(crate) const RETRY_FOR: Duration = Duration::from_secs(30);
/// Bound on reconnecting to a master after a failure.
const RECONNECT_TIMEOUT: Duration = Duration::from_secs(5);
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
    /// Resumed: replicated commands not applied again (their slot's checkpoint holds them).
    pub(crate) skipped: u64,
}

/// What a resumed migration knows from the cluster's checkpoint keys.
#[derive(Debug, Default)]
pub(crate) struct Resume {
    /// The checkpoint key (`None`: no checkpoint kept).
    pub(crate) base: Option<Bytes>,
    /// Per slot, the offset its checkpoint key holds (above the floor).
    pub(crate) skip: HashMap<u16, u64>,
    /// The highest offset of any checkpoint key.
    pub(crate) max_seen: u64,
    /// The floor read at start.
    pub(crate) floor: Option<Checkpoint>,
    /// Test-only fault: stop after this many copy-back or keyless transactions.
    pub(crate) fault_after: Option<u32>,
}

/// Whether a reply means "not here, not now": redirections and cluster states that pass.
fn retryable(reply: &ServerError) -> bool {
    matches!(
        reply.kind(),
        ServerErrorKind::Moved
            | ServerErrorKind::Ask
            | ServerErrorKind::TryAgain
            | ServerErrorKind::ClusterDown
            | ServerErrorKind::Loading
            | ServerErrorKind::ReadOnly
    )
}

/// Where a command goes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    /// The master of this slot.
    Slot(u16),
    /// This master (keyless commands sent to every master).
    Node(Node),
}

/// One command given to a master's writer.
#[derive(Clone)]
struct Entry {
    /// The applier's command it serves (several entries for a split or broadcast command).
    gid: u64,
    tag: Tag,
    args: Vec<Bytes>,
    route: Route,
    /// The sink's own command (`ASKING`, the floor checkpoint): its outcome is ignored.
    internal: bool,
    /// Part of a slot transaction: (transaction id, attempt).
    txn: Option<(u64, u32)>,
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
            internal: false,
            txn: None,
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
    /// A batch's checkpoint: once delivered applied, the floor may move to it.
    ckpt_value: Option<Bytes>,
}

impl Group {
    fn new(tag: Tag, pending: usize) -> Group {
        Group {
            tag,
            pending,
            failure: None,
            ckpt_value: None,
        }
    }
}

/// A checkpointed batch of replicated commands being collected: per slot, its commands.
#[derive(Default)]
struct Batch {
    slots: BTreeMap<u16, Vec<Entry>>,
    /// The batch's checkpoint command: (its applier id, the checkpoint value).
    ckpt: Option<(u64, Bytes)>,
}

/// A slot transaction: `MULTI`, the batch's commands of one slot, `SET` of the slot's
/// checkpoint key, `EXEC`, on the slot's master.
struct TxnState {
    slot: u16,
    /// The commands, the checkpoint's `SET` last.
    entries: Vec<Entry>,
    /// The slot's checkpoint key and the offset it is set to.
    ckpt_key: Bytes,
    ckpt_offset: u64,
    attempt: u32,
    /// Outcomes of the current attempt so far.
    got: Vec<(Entry, Outcome)>,
    first: Instant,
    backoff: Duration,
    wait_until: Option<Instant>,
    tries: u32,
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
    /// The checkpoint key (`None`: no checkpoint kept).
    ckpt_base: Option<Bytes>,
    batch: Option<Batch>,
    /// A batch closed by `exec`, dispatched by the next async call.
    closed: Vec<Batch>,
    txns: HashMap<u64, TxnState>,
    next_txn: u64,
    resend_txns: Vec<u64>,
    /// Transactions whose `EXEC` may have run on a master that died: their slot's
    /// checkpoint key tells.
    verify: Vec<u64>,
    /// Resume: per slot, the offset its checkpoint key says it holds (commands at or below
    /// it are not applied again).
    skip: HashMap<u16, u64>,
    /// Resume: the highest offset any checkpoint key holds.
    max_seen: u64,
    /// The last checkpoint value seen (for the offsets of slot checkpoints).
    template_ckpt: Option<Checkpoint>,
    /// The value of the last batch whose every command is applied.
    confirmed: Option<Bytes>,
    floor_written: Option<Bytes>,
    /// The offset of the last cross-slot or keyless command and its rank at it.
    barrier_at: Option<(u64, u32)>,
    /// Test-only fault (see [`Resume::fault_after`]) and the transactions counted so far.
    fault_after: Option<u32>,
    fault_steps: u32,
}

impl ClusterSink {
    /// Opens one writer per master of `topology`, logged in like `template`.
    pub(crate) async fn open(
        template: &TargetConfig,
        timeout: Duration,
        topology: ClusterTopology,
        wopts: WriterOptions,
        dbs: u32,
        resume: Resume,
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
            ckpt_base: resume.base,
            batch: None,
            closed: Vec::new(),
            txns: HashMap::new(),
            next_txn: 0,
            resend_txns: Vec::new(),
            verify: Vec::new(),
            skip: resume.skip,
            max_seen: resume.max_seen,
            template_ckpt: resume.floor,
            confirmed: None,
            floor_written: None,
            barrier_at: None,
            fault_after: resume.fault_after,
            fault_steps: 0,
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

    /// Where a [`ClusterClient`] may start: the URL's node, then every known master and
    /// replica (the URL's node may be the one that died).
    fn seeds(&self) -> Vec<TargetConfig> {
        let mut seeds = vec![self.template.clone()];
        for shard in self.topology.slot_map().shards() {
            for n in std::iter::once(&shard.master).chain(&shard.replicas) {
                seeds.push(node_config(&self.template, n));
            }
        }
        seeds
    }

    async fn writer_for(&mut self, node: &Node) -> Result<(), MigrationError> {
        let addr = node.addr();
        let conn = self.nodes.entry(addr).or_insert_with(|| NodeConn {
            writer: None,
            inflight: VecDeque::new(),
        });
        if conn.writer.is_none() {
            let cfg = node_config(&self.template, node);
            // Reconnecting (a master that died) must not spend the retry budget on one
            // connect timeout.
            let timeout = if conn.inflight.is_empty() && self.stats.refreshes == 0 {
                self.timeout
            } else {
                self.timeout.min(RECONNECT_TIMEOUT)
            };
            let target = conn::connect(&cfg, timeout).await?;
            conn.writer = Some(target.into_writer(self.wopts.clone()));
        }
        Ok(())
    }

    /// Sends one applier command (see the module docs).
    pub(crate) async fn send(
        &mut self,
        tag: Tag,
        args: &[Bytes],
        incremental: bool,
    ) -> Result<(), MigrationError> {
        self.close_pending().await;
        if self.needs_settle() {
            self.settle().await?;
        }
        if !incremental && (self.max_seen > 0 || !self.skip.is_empty()) {
            // A new full sync: what the checkpoints said no longer applies.
            self.skip.clear();
            self.max_seen = 0;
        }
        let gid = self.next_gid;
        self.next_gid += 1;
        if let Some(base) = self.ckpt_base.clone() {
            let set = args.len() >= 3 && args[0].eq_ignore_ascii_case(b"SET");
            if set && tag.key.as_deref() == Some(&base[..]) {
                return self.checkpoint(gid, tag, args, base).await;
            }
        }
        let mut plan = plan(args, tag.key.as_deref());
        // Cross-slot and keyless commands applied exactly once (checkpoints kept): their
        // own records say what is done, not the offsets.
        let exact = incremental
            && self.ckpt_base.is_some()
            && self.template_ckpt.is_some()
            && match &plan {
                Plan::CrossSlot(_) => true,
                Plan::AllMasters => {
                    tag.db.unwrap_or(0) == 0 || !args[0].eq_ignore_ascii_case(b"FLUSHDB")
                }
                _ => false,
            };
        if incremental && !exact && (self.max_seen > 0 || !self.skip.is_empty()) {
            // Resumed: what a slot's checkpoint says it holds is not applied again.
            let seq = tag.seq;
            let held = |skip: &HashMap<u16, u64>, s: &u16| skip.get(s).is_some_and(|&o| seq <= o);
            let skipped = match &mut plan {
                Plan::Slot(s) => held(&self.skip, s),
                Plan::Split(parts) => {
                    parts.retain(|(s, _)| !held(&self.skip, s));
                    parts.is_empty()
                }
                _ => seq <= self.max_seen,
            };
            if skipped {
                self.stats.skipped += 1;
                self.groups.insert(gid, Group::new(tag, 0));
                self.deliver();
                return self.check_fatal();
            }
        }
        let mut barrier = None;
        if self.batch.is_some() {
            match plan {
                Plan::Slot(slot) => {
                    self.groups.insert(gid, Group::new(tag.clone(), 1));
                    let e = Entry::new(gid, tag, args.to_vec(), Route::Slot(slot));
                    let b = self.batch.as_mut().expect("checked");
                    b.slots.entry(slot).or_default().push(e);
                    return self.check_fatal();
                }
                Plan::Split(parts) => {
                    self.stats.split += 1;
                    self.groups
                        .insert(gid, Group::new(tag.clone(), parts.len()));
                    let b = self.batch.as_mut().expect("checked");
                    for (slot, part) in parts {
                        let e = Entry::new(gid, tag.clone(), part, Route::Slot(slot));
                        b.slots.entry(slot).or_default().push(e);
                    }
                    return self.check_fatal();
                }
                ref other => {
                    // Keyless or cross-slot: what the batch holds so far is applied first
                    // (slot checkpoints at each slot's last command), then this command
                    // alone.
                    barrier = Some(matches!(other, Plan::AllMasters));
                    let so_far = self.batch.replace(Batch::default()).unwrap_or_default();
                    self.dispatch_batch(so_far).await;
                    self.settle().await?;
                }
            }
        }
        if exact {
            let failure = match &plan {
                Plan::CrossSlot(_) => {
                    self.stats.cross_slot += 1;
                    self.cross_slot_db0(&tag)
                }
                _ => None,
            };
            self.settle().await?;
            let failure = match (failure, self.barrier_ident(tag.seq, args)) {
                (Some(f), _) => Some(f),
                (None, None) => None,
                (None, Some(id)) => match &plan {
                    Plan::CrossSlot(idx) => self.cross_slot_once(&tag, args, idx, id).await?,
                    _ => self.keyless_once(&tag, args, id).await?,
                },
            };
            let mut g = Group::new(tag, 0);
            g.failure = failure;
            self.groups.insert(gid, g);
            self.deliver();
            let name = args[0].to_ascii_uppercase();
            if name == b"FLUSHALL" || name == b"FLUSHDB" {
                // Written again by the flush's own transaction; once more with the
                // latest confirmed batch.
                self.floor_written = None;
                self.write_floor().await;
                self.settle().await?;
            }
            return self.check_fatal();
        }
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
                let mut g = Group::new(tag, 0);
                g.failure = failure;
                self.groups.insert(gid, g);
                self.deliver();
                return self.check_fatal();
            }
        }
        self.groups.insert(gid, Group::new(tag, entries.len()));
        for e in entries {
            self.dispatch(e).await;
        }
        self.collect();
        if let Some(flushes) = barrier {
            self.settle().await?;
            if flushes {
                // FLUSHALL took the floor checkpoint with it: written again.
                self.floor_written = None;
                self.write_floor().await;
                self.settle().await?;
            }
        }
        if self.groups.len() > MAX_WAITING {
            self.settle().await?;
        }
        self.check_fatal()
    }

    fn needs_settle(&self) -> bool {
        self.unsettled
            || self.refresh_needed
            || !self.resend.is_empty()
            || !self.resend_txns.is_empty()
            || !self.verify.is_empty()
    }

    /// A `SET` of the checkpoint key: in a batch, the value of the batch's slot
    /// checkpoints; outside (full sync start and end, imports), the floor itself, written
    /// once everything before it is applied.
    async fn checkpoint(
        &mut self,
        gid: u64,
        tag: Tag,
        args: &[Bytes],
        base: Bytes,
    ) -> Result<(), MigrationError> {
        let value = args[2].clone();
        if let Ok(c) = Checkpoint::parse(&value) {
            self.template_ckpt = Some(c);
        }
        if let Some(batch) = self.batch.as_mut() {
            batch.ckpt = Some((gid, value.clone()));
            // Released when the batch is dispatched.
            let mut g = Group::new(tag, 1);
            g.ckpt_value = Some(value);
            self.groups.insert(gid, g);
            return self.check_fatal();
        }
        self.groups.insert(gid, Group::new(tag.clone(), 1));
        self.settle().await?;
        let e = Entry::new(gid, tag, args.to_vec(), Route::Slot(key_slot(&base)));
        self.dispatch(e).await;
        self.settle().await?;
        self.floor_written = Some(value.clone());
        self.confirmed = Some(value);
        self.check_fatal()
    }

    /// Dispatches the batches `exec` closed, and the floor checkpoint when it moved.
    async fn close_pending(&mut self) {
        for b in std::mem::take(&mut self.closed) {
            self.dispatch_batch(b).await;
        }
        self.write_floor().await;
    }

    /// Writes the floor checkpoint (the last batch whose commands are all applied) when it
    /// moved. Not in any transaction: it only says "at least this far", so it may lag.
    async fn write_floor(&mut self) {
        let (Some(base), Some(v)) = (self.ckpt_base.clone(), self.confirmed.clone()) else {
            return;
        };
        if self.floor_written.as_ref() == Some(&v) {
            return;
        }
        self.floor_written = Some(v.clone());
        let tag = Tag::new(Some(0), "SET", 0).with_key(base.clone());
        let slot = key_slot(&base);
        let e = Entry {
            internal: true,
            ..Entry::new(
                u64::MAX,
                tag,
                vec![Bytes::from_static(b"SET"), base, v],
                Route::Slot(slot),
            )
        };
        self.dispatch(e).await;
    }

    /// One slot transaction per slot of the batch, each ending with the slot's checkpoint.
    async fn dispatch_batch(&mut self, b: Batch) {
        let ckpt_gid = b.ckpt.as_ref().map(|(g, _)| *g);
        let batch_value = b.ckpt.as_ref().map(|(_, v)| v.clone());
        let base = self.ckpt_base.clone();
        for (slot, mut entries) in b.slots {
            let Some(last) = entries.last() else {
                continue;
            };
            let last_gid = last.gid;
            let last_seq = last.tag.seq;
            let (value, offset) = match &batch_value {
                Some(v) => (
                    Some(v.clone()),
                    Checkpoint::parse(v).map_or(last_seq, |c| c.point.offset),
                ),
                None => (
                    self.template_ckpt.clone().map(|mut c| {
                        c.point.offset = last_seq;
                        Bytes::from(c.encode())
                    }),
                    last_seq,
                ),
            };
            let (Some(base), Some(value)) = (base.clone(), value) else {
                for e in entries {
                    self.dispatch(e).await;
                }
                continue;
            };
            let key = slot_key(&base, slot);
            let owner = ckpt_gid.unwrap_or(last_gid);
            if let Some(g) = self.groups.get_mut(&owner) {
                g.pending += 1;
            }
            let tag = Tag::new(Some(0), "SET", offset).with_key(key.clone());
            entries.push(Entry::new(
                owner,
                tag,
                vec![Bytes::from_static(b"SET"), key.clone(), value],
                Route::Slot(slot),
            ));
            let id = self.next_txn;
            self.next_txn += 1;
            self.txns.insert(
                id,
                TxnState {
                    slot,
                    entries,
                    ckpt_key: key,
                    ckpt_offset: offset,
                    attempt: 0,
                    got: Vec::new(),
                    first: Instant::now(),
                    backoff: FIRST_BACKOFF,
                    wait_until: None,
                    tries: 0,
                },
            );
            self.dispatch_txn(id).await;
        }
        if let Some(g) = ckpt_gid {
            self.resolve(g, None);
        }
        self.collect();
    }

    /// Sends slot transaction `id` (a new attempt) to its slot's master.
    async fn dispatch_txn(&mut self, id: u64) {
        let Some(st) = self.txns.get_mut(&id) else {
            return;
        };
        st.attempt += 1;
        st.got.clear();
        let attempt = st.attempt;
        let slot = st.slot;
        let node = match self.topology.master_for_slot(slot) {
            Some(n) => n.clone(),
            None => {
                self.refresh_needed = true;
                self.retry_txn(id, format!("slot {slot} is not served by any master"), None);
                return;
            }
        };
        if let Err(e) = self.writer_for(&node).await {
            self.refresh_needed = true;
            self.retry_txn(id, e.to_string(), Some(&node));
            return;
        }
        let entries: Vec<Entry> = self.txns[&id]
            .entries
            .iter()
            .map(|e| Entry {
                txn: Some((id, attempt)),
                ..e.clone()
            })
            .collect();
        let conn = self.nodes.get_mut(&node.addr()).expect("opened above");
        let writer = conn.writer.as_mut().expect("opened above");
        let mut failed = writer.multi().err();
        if failed.is_none() {
            for e in entries {
                match writer.send_bytes(e.tag.clone(), &e.args).await {
                    Ok(()) => conn.inflight.push_back(e),
                    Err(err) => {
                        failed = Some(err);
                        break;
                    }
                }
            }
        }
        if failed.is_none() {
            failed = writer.exec().err();
        }
        if let Some(e) = failed {
            // Never executed (no EXEC went out): this attempt's outcomes are ignored.
            if let Some(st) = self.txns.get_mut(&id) {
                st.attempt += 1;
            }
            self.refresh_needed = true;
            self.retry_txn(id, e.to_string(), Some(&node));
        }
    }

    /// An outcome of a slot transaction; the transaction is decided once all are in.
    fn txn_outcome(&mut self, id: u64, attempt: u32, entry: Entry, outcome: Outcome, addr: &str) {
        let Some(st) = self.txns.get_mut(&id) else {
            return;
        };
        if st.attempt != attempt {
            return;
        }
        st.got.push((entry, outcome));
        if st.got.len() < st.entries.len() {
            return;
        }
        let got = std::mem::take(&mut st.got);
        let node = Node::parse_addr(addr);
        let mut retry = None;
        let (mut lost, mut maybe) = (false, false);
        for (_, o) in &got {
            match o {
                Outcome::Failed { reply, .. } if retryable(reply) => {
                    if let (ServerErrorKind::Moved, Some(r)) = (reply.kind(), reply.redirect()) {
                        self.stats.moved += 1;
                        if let Some(mut to) = Node::parse_addr(&r.addr) {
                            if to.host.is_empty() {
                                to.host = node.as_ref().map(|n| n.host.clone()).unwrap_or_default();
                            }
                            self.topology.update_from_moved(r.slot, &to.addr());
                            let known = self
                                .topology
                                .master_for_slot(r.slot)
                                .is_some_and(|m| m.id.is_some());
                            if !known {
                                self.refresh_needed = true;
                            }
                        }
                    } else if reply.kind() == ServerErrorKind::Ask {
                        // The slot is moving: the whole transaction waits until it moved.
                        self.stats.ask += 1;
                    } else if reply.kind() != ServerErrorKind::TryAgain {
                        self.refresh_needed = true;
                    }
                    retry.get_or_insert(reply.to_string());
                }
                Outcome::Lost { maybe_applied, .. } => {
                    lost = true;
                    maybe |= *maybe_applied;
                }
                _ => {}
            }
        }
        if lost {
            self.refresh_needed = true;
            self.unsettled = true;
            if maybe {
                self.verify.push(id);
            } else {
                self.retry_txn(id, format!("connection to {addr} lost"), node.as_ref());
            }
            return;
        }
        if let Some(why) = retry {
            self.retry_txn(id, why, node.as_ref());
            return;
        }
        self.txns.remove(&id);
        for (e, o) in got {
            match o {
                Outcome::Applied(_) => self.resolve(e.gid, None),
                other => self.resolve(e.gid, Some(other)),
            }
        }
    }

    fn retry_txn(&mut self, id: u64, why: String, node: Option<&Node>) {
        self.unsettled = true;
        let Some(st) = self.txns.get_mut(&id) else {
            return;
        };
        let waited = st.first.elapsed();
        if waited >= RETRY_FOR {
            self.fatal
                .get_or_insert(MigrationError::ClusterUnavailable {
                    url: self.url.clone(),
                    command: "MULTI/EXEC (a checkpointed batch)".into(),
                    slot: Some(st.slot),
                    node: node.map(Node::addr).unwrap_or_else(|| "no node".into()),
                    attempts: st.tries + 1,
                    waited,
                    last: why,
                });
            return;
        }
        st.tries += 1;
        self.stats.retries += 1;
        st.wait_until = Some(Instant::now() + st.backoff);
        st.backoff = (st.backoff * 2).min(MAX_BACKOFF);
        self.resend_txns.push(id);
    }

    /// A transaction whose `EXEC` may have run before its master's connection died: its
    /// slot's checkpoint key says whether it did (then it is applied), else it is resent.
    async fn verify_txn(&mut self, id: u64) -> Result<(), MigrationError> {
        let Some(st) = self.txns.get(&id) else {
            return Ok(());
        };
        let (key, offset, tag) = (
            st.ckpt_key.clone(),
            st.ckpt_offset,
            st.entries[0].tag.clone(),
        );
        if self.client.is_none() {
            match ClusterClient::connect(&self.seeds(), self.timeout).await {
                Ok(c) => self.client = Some(c),
                Err(e) => {
                    self.retry_txn(id, e.to_string(), None);
                    return Ok(());
                }
            }
        }
        let reply = match self.call(&[Bytes::from_static(b"GET"), key], &tag).await {
            Ok(r) => r,
            Err(e) => {
                self.retry_txn(id, e.to_string(), None);
                return Ok(());
            }
        };
        let applied = reply
            .as_bytes()
            .and_then(|v| Checkpoint::parse(v).ok())
            .is_some_and(|c| c.point.offset >= offset);
        if applied {
            if let Some(st) = self.txns.remove(&id) {
                for e in st.entries {
                    self.resolve(e.gid, None);
                }
            }
        } else {
            self.stats.resent += 1;
            self.retry_txn(id, "its master failed before EXEC was applied".into(), None);
        }
        Ok(())
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
                internal: true,
                ..Entry::new(
                    u64::MAX,
                    entry.tag.clone(),
                    vec![Bytes::from_static(b"ASKING")],
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
        if let Some((id, attempt)) = entry.txn {
            return self.txn_outcome(id, attempt, entry, outcome, addr);
        }
        if entry.internal {
            let asking = entry
                .args
                .first()
                .is_some_and(|a| a.eq_ignore_ascii_case(b"ASKING"));
            let follow = match &outcome {
                Outcome::Failed { reply, .. } => retryable(reply),
                Outcome::Lost { .. } => true,
                _ => false,
            };
            if asking || !follow {
                return;
            }
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
                    let restore = entry
                        .args
                        .first()
                        .is_some_and(|a| a.eq_ignore_ascii_case(b"RESTORE"));
                    if maybe_applied && restore {
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
            if let (Some(v), None) = (&g.ckpt_value, &g.failure) {
                self.confirmed = Some(v.clone());
            }
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
            for id in std::mem::take(&mut self.verify) {
                self.verify_txn(id).await?;
            }
            self.check_fatal()?;
            if self.resend.is_empty() && self.resend_txns.is_empty() {
                if self.refresh_needed || !self.verify.is_empty() {
                    continue;
                }
                self.unsettled = false;
                return Ok(());
            }
            // Everything to send again, in the order it was first given.
            let mut todo: Vec<(u64, Result<Entry, u64>)> = Vec::new();
            for e in std::mem::take(&mut self.resend) {
                todo.push((e.gid, Ok(e)));
            }
            for id in std::mem::take(&mut self.resend_txns) {
                if let Some(st) = self.txns.get(&id) {
                    let first = st.entries.iter().map(|e| e.gid).min().unwrap_or(u64::MAX);
                    todo.push((first, Err(id)));
                }
            }
            todo.sort_by_key(|(gid, _)| *gid);
            for (_, item) in todo {
                let wait = match &item {
                    Ok(e) => e.wait_until,
                    Err(id) => self.txns.get(id).and_then(|t| t.wait_until),
                };
                if let Some(t) = wait {
                    let now = Instant::now();
                    if t > now {
                        tokio::time::sleep(t - now).await;
                    }
                }
                match item {
                    Ok(e) => self.dispatch(e).await,
                    Err(id) => self.dispatch_txn(id).await,
                }
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
        if let Some(f) = self.cross_slot_db0(tag) {
            return Ok(Some(f));
        }
        if self.client.is_none() {
            let c = ClusterClient::connect(&self.seeds(), self.timeout)
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

    /// The failure of a cross-slot command outside db 0 (temporary keys live in db 0).
    fn cross_slot_db0(&self, tag: &Tag) -> Option<Outcome> {
        let db = tag.db.unwrap_or(0);
        (db != 0).then(|| Outcome::Failed {
            tag: tag.clone(),
            reply: ServerError::new(format!(
                "ERR redis-migrate: a command with keys in several slots runs in db 0 only (db {db})"
            )),
        })
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
        self.close_pending().await;
        let addrs: Vec<String> = self.nodes.keys().cloned().collect();
        for addr in &addrs {
            if let Some(w) = self.nodes.get_mut(addr).and_then(|c| c.writer.as_mut()) {
                let _ = w.write_queued().await;
            }
        }
        self.collect();
        if self.needs_settle() {
            self.settle().await?;
        }
        self.check_fatal()
    }

    /// Waits for every outcome (resending what must be).
    pub(crate) async fn flush(&mut self) -> Result<(), MigrationError> {
        self.close_pending().await;
        self.settle().await?;
        self.deliver();
        // The last batch confirmed: the floor follows.
        self.write_floor().await;
        self.settle().await?;
        self.deliver();
        self.check_fatal()
    }

    pub(crate) fn try_next_outcome(&mut self) -> Option<Outcome> {
        self.ready.pop_front()
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.groups.is_empty()
            && !self.in_transaction()
            && self.closed.is_empty()
            && self.txns.is_empty()
    }

    pub(crate) fn in_transaction(&self) -> bool {
        self.in_txn || self.batch.is_some()
    }

    /// With checkpoints: opens a batch (see the module docs, "Checkpoints"). Without: a
    /// source transaction, applied command by command.
    pub(crate) fn multi(&mut self) {
        if self.ckpt_base.is_some() {
            self.batch.get_or_insert_with(Batch::default);
        } else {
            self.in_txn = true;
        }
    }

    /// Closes the batch (dispatched by the next async call) or the source transaction.
    pub(crate) fn exec(&mut self) {
        match self.batch.take() {
            Some(b) => self.closed.push(b),
            None => self.in_txn = false,
        }
    }
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
        // Malformed: no panic, one command.
        assert_eq!(
            plan(&b(&["MSET", "foo", "1", "bar"]), None),
            Plan::Slot(12182)
        );
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
    fn slot_checkpoint_keys() {
        for slot in [0u16, 1, 5061, 12182, 16383] {
            let k = slot_key(b"__redis-migrate:checkpoint", slot);
            assert_eq!(key_slot(&k), slot, "{k:?}");
            assert!(k.starts_with(super::super::RESERVED_PREFIX));
        }
        assert!(slot_tags().iter().all(|t| !t.is_empty() && t.len() <= 5));
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
