//! Ordering a Valkey 9 atomic slot migration (`CLUSTER MIGRATESLOTS`, see [`super::asm`]
//! for what the two streams carry) across the two shards' streams, processes and restarts.
//!
//! The import into B rebuilds the slots from scratch: a snapshot of the slots as old owner
//! A held them, then A's writes to them since, as A ran them. So the target ends right
//! when, from some point on, nothing of A's stream touches those slots and the target
//! holds none of their keys when B's snapshot starts. A *fence* does that:
//!
//! 1. B's link, at `ESTABLISH` (everything before it applied and checkpointed), records
//!    the fence (import name, A's node id, B's shard, the slots) in this process and on the
//!    target ([`FENCE_KEY`], a hash, written through B's applier), and waits.
//! 2. A's link sees the fence (in memory, or by reading [`FENCE_KEY`] every
//!    [`POLL_EVERY`] when this process does not migrate every shard or a fence was seen):
//!    from its next command on it leaves out every command on a key of those slots
//!    (counted in `asm_commands_left_out`). Whatever it left out is in B's import (a write
//!    before the snapshot is in the snapshot, one after it is forwarded), and its trim
//!    (`UNLINK` per key after the handover) is moot. Once its stream is applied on the
//!    target up to the last command it let through, it confirms (`<name>:ack`).
//! 3. B, once confirmed, removes the slots' keys from the target (a sweep through its
//!    applier), then applies the snapshot and the rest of its stream. Without a
//!    confirmation within [`move_wait`](crate::migrate::MigrationBuilder::move_wait) it
//!    goes on anyway, counted in `asm_unconfirmed` and named in the warnings; when A is
//!    not in this process and checkpoints are off, at once.
//! 4. `FINISH STATE SUCCESS`: noted. A keeps leaving the slots out until its own stream
//!    shows an import of one of them again (an `ESTABLISH` into A, or a `RESTORE-ASKING`
//!    of `MIGRATE`), from where it applies them again (`<name>:end:<shard>` = that offset,
//!    so a restart knows).
//! 5. `FINISH` in any other state (failed, cancelled): the slots stay A's, but A left out
//!    its commands on them and B's partial import reached the target. A's link then
//!    re-syncs (a healing full sync: its snapshot replaces the slots' keys and the sweep
//!    removes the others; `<name>:healed` after it) and B leaves out its own later
//!    commands on the slots (the removal of its partial import).
//!
//! Restarts: every shard reads the fences back from the target before its first command,
//! so a link resumed from a checkpoint before the fence leaves the slots out from there
//! (what it would replay is in the import, or was swept). A `ESTABLISH` replayed by B
//! after a restart sweeps and imports again; one of a failed import is ignored.
//!
//! A full sync of a shard (a fresh start, `--reset-checkpoint`, a lost stream) takes a
//! snapshot newer than every import that has ended: it stops leaving their slots out
//! (fences of an earlier run stay on the target until `forget`, which removes them with
//! the checkpoints). For one still open it asks the source's node whether it still runs
//! it (`CLUSTER GETSLOTMIGRATIONS`; one it no longer lists was left open by an earlier
//! run): if so the slots stay out and the import is named as not ordered, since the
//! snapshot may hold the slots' keys as they were then, landing after B's sweep.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use bytes::Bytes;
use resp_codec::Frame;

use super::super::apply::Applier;
use super::Follow;

/// The hash on the target holding the fences (a reserved key: never copied or swept).
pub(crate) const FENCE_KEY: &str = "__redis-migrate:asm";
/// How often a shard reads the fences on the target when another process may write them.
const POLL_EVERY: Duration = Duration::from_millis(250);
/// A failed first read of the target's fences is tried again after this long.
const RETRY_READ: Duration = Duration::from_millis(200);

/// Where an import stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Open,
    Success,
    Failed,
}

impl State {
    fn text(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Success => "success",
            State::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<State> {
        match s {
            "open" => Some(State::Open),
            "success" => Some(State::Success),
            "failed" => Some(State::Failed),
            _ => None,
        }
    }

    /// From a `FINISH STATE <state>`.
    pub(crate) fn of_finish(state: &str) -> State {
        if state.eq_ignore_ascii_case("success") {
            State::Success
        } else {
            State::Failed
        }
    }
}

/// One import's fence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fence {
    /// The old owner's node id (`ESTABLISH SOURCE`).
    pub(crate) source: String,
    /// The importing shard (this migration's id).
    pub(crate) importer: String,
    pub(crate) slots: Vec<RangeInclusive<u16>>,
    pub(crate) state: State,
    /// The shard that confirmed it leaves the slots out.
    pub(crate) ack: Option<String>,
    /// Shard → the offset of its stream from which it applies the slots again.
    pub(crate) ends: HashMap<String, u64>,
    /// A failed import's old owner has re-synced.
    pub(crate) healed: bool,
}

impl Fence {
    /// B's record: `1 <state> <source> <importer> <slots>`.
    fn record(&self) -> String {
        format!(
            "1 {} {} {} {}",
            self.state.text(),
            self.source,
            self.importer,
            super::slots_text(&self.slots)
        )
    }

    fn parse_record(text: &str) -> Option<Fence> {
        let mut w = text.split(' ');
        if w.next()? != "1" {
            return None;
        }
        let state = State::parse(w.next()?)?;
        let source = w.next()?.to_string();
        let importer = w.next()?.to_string();
        let slots = parse_slots(w.next()?)?;
        Some(Fence {
            source,
            importer,
            slots,
            state,
            ack: None,
            ends: HashMap::new(),
            healed: false,
        })
    }

    fn holds(&self, slot: u16) -> bool {
        self.slots.iter().any(|r| r.contains(&slot))
    }
}

/// Whether two sets of slot ranges share a slot.
fn overlap(a: &[RangeInclusive<u16>], b: &[RangeInclusive<u16>]) -> bool {
    a.iter().any(|r| {
        b.iter()
            .any(|s| s.start() <= r.end() && r.start() <= s.end())
    })
}

/// `0-100,200` back to ranges.
fn parse_slots(text: &str) -> Option<Vec<RangeInclusive<u16>>> {
    text.split(',')
        .map(|part| {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let (a, b) = (a.parse::<u16>().ok()?, b.parse::<u16>().ok()?);
            (a <= b && b < 16384).then_some(a..=b)
        })
        .collect()
}

/// The fences known to this process, by import name (in [`super::Moves`]).
#[derive(Debug, Default)]
pub(crate) struct Fences {
    pub(crate) map: HashMap<String, Fence>,
    /// Whether any was seen (then every shard reads the target's).
    pub(crate) seen: bool,
}

impl Fences {
    /// Merges what the target's [`FENCE_KEY`] holds (`HGETALL` pairs); whether anything
    /// changed. A state only moves forward, a confirmation or an end once set stays.
    fn merge(&mut self, pairs: &[(String, String)]) -> bool {
        let mut changed = false;
        for (field, value) in pairs.iter().filter(|(f, _)| !f.contains(':')) {
            let Some(f) = Fence::parse_record(value) else {
                continue;
            };
            match self.map.get_mut(field) {
                Some(known) => {
                    if known.state == State::Open && f.state != State::Open {
                        known.state = f.state;
                        changed = true;
                    }
                }
                None => {
                    self.map.insert(field.clone(), f);
                    changed = true;
                }
            }
        }
        for (field, value) in pairs {
            let Some((name, what)) = field.split_once(':') else {
                continue;
            };
            let Some(f) = self.map.get_mut(name) else {
                continue;
            };
            if what == "ack" && f.ack.is_none() {
                f.ack = Some(value.clone());
                changed = true;
            } else if what == "healed" && !f.healed {
                f.healed = true;
                changed = true;
            } else if let Some(shard) = what.strip_prefix("end:") {
                if let (false, Ok(offset)) = (f.ends.contains_key(shard), value.parse::<u64>()) {
                    f.ends.insert(shard.to_string(), offset);
                    changed = true;
                }
            }
        }
        if changed {
            self.seen = true;
        }
        changed
    }
}

/// What B's stream asks of its link (see [`Follow::take_asm_step`]).
#[derive(Debug)]
pub(crate) enum Step {
    /// An import begins: fence, wait, sweep the slots.
    Establish {
        name: String,
        source: String,
        slots: Vec<RangeInclusive<u16>>,
        /// The marker's end offset in the stream.
        offset: u64,
    },
    /// It ended.
    Finish {
        name: String,
        state: State,
        offset: u64,
    },
}

/// Slots of one fence this shard leaves out.
#[derive(Debug)]
struct Dropping {
    name: String,
    slots: Vec<RangeInclusive<u16>>,
    /// Up to this offset of the stream (an end read back after a restart); `None`: until
    /// it ends.
    until: Option<u64>,
}

/// One shard's side of the fences (in its [`Follow`]).
#[derive(Debug, Default)]
pub(crate) struct Local {
    /// The generation of the fences last looked at.
    gen: u64,
    dropping: Vec<Dropping>,
    /// Fences to confirm once the stream is applied up to the offset.
    pending_ack: Vec<(String, u64)>,
    /// The end offset of the last command screened.
    screened: u64,
    /// Fences this shard handles already (installed, ended, or healing).
    handled: Vec<String>,
    /// Failed imports this shard re-syncs for, and those whose re-sync runs.
    heal: Vec<String>,
    healing: Vec<String>,
    /// `HSET FENCE_KEY field value` still to write with the reader.
    writes: Vec<(String, String)>,
    polled: Option<Instant>,
    /// When a request to the target last failed.
    failed: Option<Instant>,
    /// The target's fences were read once (before the first command).
    loaded: bool,
    /// Read the target's fences periodically (not every shard is in this process).
    poll: bool,
    step: Option<Step>,
    /// The link forwards replicated commands (no full sync running).
    synced: bool,
    /// Commands left out (the import carries them).
    pub(crate) left_out: u64,
    /// Imports begun without the old owner's confirmation.
    pub(crate) unconfirmed: u64,
}

impl Local {
    /// `poll`: another process may migrate the other shards, so the target's fences are
    /// read every [`POLL_EVERY`] (else only once one was seen).
    pub(crate) fn new(poll: bool) -> Local {
        Local {
            poll,
            ..Local::default()
        }
    }
}

/// `HGETALL` pairs (RESP2 flat or a RESP3 map) as text.
fn pairs(reply: &Frame) -> Vec<(String, String)> {
    let text = |f: &Frame| {
        f.as_bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    match reply {
        Frame::Map(p) => p
            .iter()
            .filter_map(|(k, v)| Some((text(k)?, text(v)?)))
            .collect(),
        other => other
            .as_slice()
            .unwrap_or_default()
            .chunks_exact(2)
            .filter_map(|p| Some((text(&p[0])?, text(&p[1])?)))
            .collect(),
    }
}

impl Follow {
    fn is_member(&self, node: &str) -> bool {
        self.members.iter().any(|m| m == node)
    }

    /// Whether the link forwards replicated commands (`false` while a full sync runs: the
    /// old owner confirms nothing then).
    pub(crate) fn asm_synced(&mut self, synced: bool) {
        self.asm.synced = synced;
    }

    /// A full sync of this shard begins: its snapshot is newer than any import that has
    /// ended, so the slots it left out for those are applied again (a fence of an earlier
    /// run, say, after `--reset-checkpoint`). One still open keeps them out; the source's
    /// node is asked whether it still runs it (`CLUSTER GETSLOTMIGRATIONS`: one it no
    /// longer lists was left open by an earlier run). The snapshot of a running one may
    /// hold the slots' keys as they were then, landing after the new owner's sweep: named
    /// as not ordered.
    pub(crate) async fn asm_full_sync(&mut self) {
        self.asm_synced(false);
        if self.asm.dropping.is_empty() {
            return;
        }
        let states: Vec<(String, Option<State>)> = {
            let m = self.moves.lock();
            self.asm
                .dropping
                .iter()
                .map(|d| (d.name.clone(), m.fences.map.get(&d.name).map(|f| f.state)))
                .collect()
        };
        let running = if states.iter().any(|(_, s)| *s == Some(State::Open)) {
            let source = super::super::TargetConfig::of_source(&self.config);
            let addr = self.config.url().addr();
            self.gate
                .source_frame(&source, &addr, &["CLUSTER", "GETSLOTMIGRATIONS"])
                .await
                .map(|reply| super::asm::running(&reply))
        } else {
            Some(Default::default())
        };
        for (name, state) in states {
            let open = state == Some(State::Open);
            // Not known to be over: kept out, and named.
            if open && running.as_ref().is_none_or(|r| r.contains(&name)) {
                let why = "its link began a full sync during the import, whose snapshot may hold the slots' keys as they were then";
                self.asm_unconfirmed(&name, &self.id.clone(), why);
                continue;
            }
            self.asm.dropping.retain(|d| d.name != name);
            self.asm.pending_ack.retain(|(n, _)| *n != name);
            tracing::info!(target: "migrate", "shard {}: atomic slot migration {name} is over before this full sync: its slots are applied again", self.id);
        }
    }

    /// Takes what B's stream asked for (a marker was screened).
    pub(crate) fn take_asm_step(&mut self) -> Option<Step> {
        self.asm.step.take()
    }

    /// A `CLUSTER SYNCSLOTS` marker in this shard's stream (at `offset`).
    pub(super) fn asm_marker(&mut self, m: &super::asm::Marker, offset: u64) {
        match m {
            super::asm::Marker::Establish {
                source,
                name,
                slots,
            } if !name.is_empty() && !slots.is_empty() => {
                let slots: Vec<RangeInclusive<u16>> = slots
                    .iter()
                    .filter(|(a, b)| a <= b && *b < 16384)
                    .map(|&(a, b)| a..=b)
                    .collect();
                // This shard imports them: whatever it left out of them ends here.
                self.asm_import_seen(&slots, offset);
                self.asm.step = Some(Step::Establish {
                    name: name.clone(),
                    source: source.clone(),
                    slots,
                    offset,
                });
            }
            super::asm::Marker::Finish { state, name } if !name.is_empty() => {
                self.asm.step = Some(Step::Finish {
                    name: name.clone(),
                    state: State::of_finish(state),
                    offset,
                });
            }
            _ => {}
        }
    }

    /// This shard's stream imports `slots` at `offset` (an `ESTABLISH` into it, or a
    /// `RESTORE-ASKING` of a key of them): the fences it left them out for end here.
    pub(super) fn asm_import_seen(&mut self, slots: &[RangeInclusive<u16>], offset: u64) {
        if self.asm.dropping.is_empty() {
            return;
        }
        let ended: Vec<String> = self
            .asm
            .dropping
            .iter()
            .filter(|d| overlap(&d.slots, slots))
            .map(|d| d.name.clone())
            .collect();
        if ended.is_empty() {
            return;
        }
        self.asm.dropping.retain(|d| !ended.contains(&d.name));
        {
            let mut m = self.moves.lock();
            for name in &ended {
                if let Some(f) = m.fences.map.get_mut(name) {
                    f.ends.insert(self.id.clone(), offset);
                }
            }
        }
        for name in ended {
            tracing::info!(target: "migrate", "shard {}: its stream imports slots of atomic slot migration {name} again (offset {offset}): applied from here", self.id);
            self.asm
                .writes
                .push((format!("{name}:end:{}", self.id), offset.to_string()));
        }
    }

    /// Whether replicated command `args` (ending at `offset`) is left out: a key of
    /// slots this shard leaves out for an import (counted).
    pub(super) fn asm_screen(&mut self, args: &[Bytes], key_index: usize, offset: u64) -> bool {
        self.asm_refresh();
        self.asm.screened = offset;
        if self.asm.dropping.is_empty() {
            return false;
        }
        let Some(key) = args.get(key_index) else {
            return false;
        };
        let slot = crate::key_slot(key);
        let out = self.asm.dropping.iter().any(|d| {
            d.until.is_none_or(|u| offset <= u) && d.slots.iter().any(|r| r.contains(&slot))
        });
        if out {
            self.asm.left_out += 1;
        }
        out
    }

    /// Notes the end offset of a command screened without keys.
    pub(super) fn asm_screened(&mut self, offset: u64) {
        self.asm_refresh();
        self.asm.screened = offset;
    }

    /// Looks at the fences again when they changed: starts leaving out the slots of an
    /// import out of this shard, stops for a failed one (and re-syncs), leaves out its own
    /// leftovers of a failed import into it.
    fn asm_refresh(&mut self) {
        let gen = self.moves.fence_gen();
        if gen == self.asm.gen {
            return;
        }
        self.asm.gen = gen;
        let fences: Vec<(String, Fence)> = {
            let m = self.moves.lock();
            m.fences
                .map
                .iter()
                .map(|(n, f)| (n.clone(), f.clone()))
                .collect()
        };
        for (name, f) in fences {
            // The old owner: by its node id, or (its nodes replaced by a failover since)
            // by the confirmation it wrote.
            let source = (self.is_member(&f.source) || f.ack.as_deref() == Some(self.id.as_str()))
                && f.importer != self.id;
            let importer = f.importer == self.id;
            match f.state {
                State::Open | State::Success if source => {
                    if self.asm.handled.contains(&name) {
                        continue;
                    }
                    self.asm.handled.push(name.clone());
                    let until = f.ends.get(&self.id).copied();
                    if until.is_some_and(|u| self.asm.screened >= u) {
                        continue;
                    }
                    tracing::info!(target: "migrate", "shard {}: atomic slot migration {name} of slots {} to shard {}: this shard's commands on them are left out from offset {} (the import carries them)", self.id, super::slots_text(&f.slots), f.importer, self.asm.screened);
                    self.asm.dropping.push(Dropping {
                        name: name.clone(),
                        slots: f.slots.clone(),
                        until,
                    });
                    if f.ack.is_none() {
                        self.asm.pending_ack.push((name, self.asm.screened));
                    }
                }
                State::Failed if source => {
                    self.asm.dropping.retain(|d| d.name != name);
                    self.asm.pending_ack.retain(|(n, _)| *n != name);
                    // B swept the slots before it could see the failure: whatever this
                    // shard left out or not, only a new snapshot of it puts them back.
                    if !f.healed
                        && !self.asm.heal.contains(&name)
                        && !self.asm.healing.contains(&name)
                        && !self.asm.handled.contains(&format!("{name}#healed"))
                    {
                        tracing::warn!(target: "migrate", "shard {}: atomic slot migration {name} of slots {} failed: the slots stay with this shard, whose commands on them were left out, so it re-syncs (a healing full sync)", self.id, super::slots_text(&f.slots));
                        self.asm.heal.push(name);
                    }
                }
                State::Failed if importer => {
                    let tag = format!("{name}#failed");
                    if self.asm.handled.contains(&tag) {
                        continue;
                    }
                    self.asm.handled.push(tag);
                    let until = f.ends.get(&self.id).copied();
                    if until.is_some_and(|u| self.asm.screened >= u) {
                        continue;
                    }
                    self.asm.dropping.push(Dropping {
                        name,
                        slots: f.slots.clone(),
                        until,
                    });
                }
                _ => {}
            }
        }
    }

    /// This shard's stream is applied up to `applied`: confirms the fences whose last
    /// command let through has landed.
    pub(super) fn asm_landed(&mut self, applied: u64) {
        self.asm_refresh();
        // During a full sync the snapshot's keys are still being written.
        if self.asm.pending_ack.is_empty() || !self.asm.synced {
            return;
        }
        let (done, wait): (Vec<_>, Vec<_>) = std::mem::take(&mut self.asm.pending_ack)
            .into_iter()
            .partition(|(_, at)| *at <= applied);
        self.asm.pending_ack = wait;
        if done.is_empty() {
            return;
        }
        {
            let mut m = self.moves.lock();
            for (name, _) in &done {
                if let Some(f) = m.fences.map.get_mut(name) {
                    f.ack.get_or_insert_with(|| self.id.clone());
                }
            }
        }
        self.moves.fences_changed();
        for (name, _) in done {
            self.asm
                .writes
                .push((format!("{name}:ack"), self.id.clone()));
        }
    }

    /// Reads the target's fences (before the first command, then every [`POLL_EVERY`]
    /// when another process may write them) and writes this shard's confirmations and
    /// ends. Without checkpoints only the fences of this process count.
    pub(crate) async fn asm_tick(&mut self) {
        if !self.gate.checkpoint {
            self.asm.writes.clear();
            return;
        }
        let due = if self.asm.failed.is_some_and(|t| t.elapsed() < RETRY_READ) {
            // A failed request is tried again after a pause, not at every command.
            false
        } else if !self.asm.loaded || !self.asm.writes.is_empty() {
            true
        } else {
            self.asm.polled.is_none_or(|t| t.elapsed() >= POLL_EVERY)
                && (self.asm.poll || self.moves.lock().fences.seen)
        };
        if !due {
            return;
        }
        self.asm.polled = Some(Instant::now());
        let mut writes = std::mem::take(&mut self.asm.writes).into_iter();
        while let Some((field, value)) = writes.next() {
            let args = [
                &b"HSET"[..],
                FENCE_KEY.as_bytes(),
                field.as_bytes(),
                value.as_bytes(),
            ];
            if self.gate.reader.call(&args).await.is_none() {
                // This one and the rest are tried again at a later tick.
                self.asm.writes.push((field, value));
                self.asm.writes.extend(writes);
                self.asm.failed = Some(Instant::now());
                return;
            }
        }
        let Some(reply) = self
            .gate
            .reader
            .call(&[&b"HGETALL"[..], FENCE_KEY.as_bytes()])
            .await
        else {
            self.asm.failed = Some(Instant::now());
            return;
        };
        self.asm.loaded = true;
        let pairs = pairs(&reply);
        if pairs.is_empty() {
            return;
        }
        let changed = self.moves.lock().fences.merge(&pairs);
        if changed {
            self.moves.fences_changed();
        }
        self.asm_refresh();
    }

    /// Whether a failed import asks this shard to re-sync now (then it is noted as
    /// running until [`Follow::asm_healed`]).
    pub(crate) fn asm_heal_due(&mut self) -> bool {
        if self.asm.heal.is_empty() {
            return false;
        }
        let heal = std::mem::take(&mut self.asm.heal);
        self.asm.healing.extend(heal);
        true
    }

    /// The re-sync could not start: asked again later.
    pub(crate) fn asm_heal_retry(&mut self) {
        let again = std::mem::take(&mut self.asm.healing);
        self.asm.heal.extend(again);
    }

    /// A healing full sync of this shard ended: the failed imports it was for are healed.
    pub(crate) fn asm_healed(&mut self) {
        if self.asm.healing.is_empty() {
            return;
        }
        let names = std::mem::take(&mut self.asm.healing);
        self.asm
            .handled
            .extend(names.iter().map(|n| format!("{n}#healed")));
        {
            let mut m = self.moves.lock();
            for n in &names {
                if let Some(f) = m.fences.map.get_mut(n) {
                    f.healed = true;
                }
            }
        }
        self.moves.fences_changed();
        for n in names {
            self.asm.writes.push((format!("{n}:healed"), "1".into()));
        }
    }

    /// B's `ESTABLISH` (ending at stream offset `offset`): records the fence (in memory,
    /// and on the target through `ap`, flushed), then waits (bounded) for the old owner's confirmation. `false`: an import
    /// already known to have failed (replayed after a restart): nothing to do.
    pub(crate) async fn asm_establish(
        &mut self,
        name: &str,
        source: &str,
        slots: Vec<RangeInclusive<u16>>,
        offset: u64,
        ap: &mut Applier,
    ) -> Result<bool, super::super::MigrationError> {
        self.asm_tick().await;
        let fence = {
            let mut m = self.moves.lock();
            m.fences.seen = true;
            let f = m.fences.map.entry(name.to_string()).or_insert(Fence {
                source: source.to_string(),
                importer: self.id.clone(),
                slots,
                state: State::Open,
                ack: None,
                ends: HashMap::new(),
                healed: false,
            });
            if f.state == State::Failed {
                return Ok(false);
            }
            let f = f.clone();
            // Keys of the slots restored into another shard by `MIGRATE` before: this
            // import owns them now.
            m.owners.retain(|k, _| !f.holds(crate::key_slot(k)));
            f
        };
        self.moves.fences_changed();
        self.asm_put(name, &fence, offset, ap).await?;
        let local = self.moves.local_shard_of(&fence.source);
        if fence.ack.is_some() {
            return Ok(true);
        }
        let limit = self.gate.limit;
        let shown = local
            .clone()
            .unwrap_or_else(|| format!("of node {}", fence.source));
        if local.is_none() && !self.gate.checkpoint {
            self.asm_unconfirmed(
                name,
                &shown,
                "checkpoints are off: only the shards of this process can confirm",
            );
            return Ok(true);
        }
        let deadline = Instant::now() + limit;
        let mut pause = Duration::from_millis(2);
        loop {
            if local.is_none() {
                let field = format!("{name}:ack");
                let args = [&b"HGET"[..], FENCE_KEY.as_bytes(), field.as_bytes()];
                if let Some(v) = self.gate.reader.call(&args).await {
                    if let Some(ack) = v.as_bytes() {
                        let ack = String::from_utf8_lossy(ack).into_owned();
                        let mut m = self.moves.lock();
                        if let Some(f) = m.fences.map.get_mut(name) {
                            f.ack.get_or_insert(ack);
                        }
                    }
                }
            }
            let acked = self
                .moves
                .lock()
                .fences
                .map
                .get(name)
                .and_then(|f| f.ack.clone());
            if let Some(by) = acked {
                tracing::info!(target: "migrate", "shard {}: atomic slot migration {name} of slots {}: shard {by} confirmed; its keys are rebuilt from the import", self.id, super::slots_text(&fence.slots));
                return Ok(true);
            }
            let stopping = *self.gate.stop.borrow();
            if stopping || Instant::now() >= deadline {
                let why = if stopping {
                    "the migration is stopping".to_string()
                } else {
                    format!("no confirmation within {limit:?} (is the process migrating that shard running, with checkpoints?)")
                };
                self.asm_unconfirmed(name, &shown, &why);
                return Ok(true);
            }
            pause = super::moves::nap(&mut self.gate.stop, pause, deadline).await;
        }
    }

    fn asm_unconfirmed(&mut self, name: &str, shard: &str, why: &str) {
        self.asm.unconfirmed += 1;
        self.moves.lock().asm.unordered(name);
        tracing::warn!(target: "migrate", "shard {}: atomic slot migration {name} is imported without the old owner (shard {shard}) confirmed that it leaves the slots out: {why}; check the keys of those slots with `redis-migrate verify`", self.id);
    }

    /// B's `FINISH` (its stream before it applied): notes the state, in memory and on the
    /// target through `ap`.
    pub(crate) async fn asm_finish(
        &mut self,
        name: &str,
        state: State,
        offset: u64,
        ap: &mut Applier,
    ) -> Result<(), super::super::MigrationError> {
        let fence = {
            let mut m = self.moves.lock();
            let Some(f) = m.fences.map.get_mut(name) else {
                return Ok(());
            };
            if f.state != State::Open {
                return Ok(());
            }
            f.state = state;
            f.clone()
        };
        self.moves.fences_changed();
        self.asm_put(name, &fence, offset, ap).await?;
        self.asm_refresh();
        Ok(())
    }

    /// Writes B's record of `fence` through `ap` (in order with its data) and waits for
    /// it. Without checkpoints nothing is written. `offset`: the marker's, so that a
    /// cluster target resumed past older offsets of the key's slot still takes it.
    async fn asm_put(
        &mut self,
        name: &str,
        fence: &Fence,
        offset: u64,
        ap: &mut Applier,
    ) -> Result<(), super::super::MigrationError> {
        if !self.gate.checkpoint {
            return Ok(());
        }
        let key = Bytes::from_static(FENCE_KEY.as_bytes());
        let tag = crate::Tag::new(Some(0), "HSET", offset).with_key(key.clone());
        ap.send(
            tag,
            &[
                Bytes::from_static(b"HSET"),
                key,
                Bytes::from(name.to_string()),
                Bytes::from(fence.record()),
            ],
        )
        .await?;
        ap.flush().await
    }
}

/// For the `cluster_topology` fuzz target: `frame` read as the target's fence hash
/// (`HGETALL`), merged twice (the second merge changes nothing), every record's slots
/// valid slots and its text read back the same.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_fences(frame: &Frame) {
    let pairs = pairs(frame);
    let mut fences = Fences::default();
    fences.merge(&pairs);
    assert!(
        !fences.merge(&pairs),
        "a second merge of {pairs:?} changed the fences"
    );
    for f in fences.map.values() {
        assert!(f
            .slots
            .iter()
            .all(|r| r.start() <= r.end() && *r.end() < 16384));
        assert_eq!(
            Fence::parse_record(&f.record()).map(|g| g.slots),
            Some(f.slots.clone())
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fence() -> Fence {
        Fence {
            source: "aaa".into(),
            importer: "s8192".into(),
            slots: vec![0..=19, 100..=100],
            state: State::Open,
            ack: None,
            ends: HashMap::new(),
            healed: false,
        }
    }

    #[test]
    fn records_round_trip() {
        let f = fence();
        assert_eq!(f.record(), "1 open aaa s8192 0-19,100");
        assert_eq!(Fence::parse_record(&f.record()), Some(f));
        assert_eq!(Fence::parse_record("2 open a b 0"), None);
        assert_eq!(Fence::parse_record("1 open a b 5-x"), None);
        assert_eq!(Fence::parse_record("1 open a b 9-3"), None);
        assert_eq!(Fence::parse_record("1 done a b 1"), None);
        assert_eq!(Fence::parse_record(""), None);
        assert!(overlap(&fence().slots, &[19..=30]));
        assert!(!overlap(&fence().slots, &[20..=99]));
    }

    #[test]
    fn merge_moves_forward_only() {
        let p = |a: &str, b: &str| (a.to_string(), b.to_string());
        let mut fences = Fences::default();
        assert!(fences.merge(&[
            p("n1", "1 open aaa s8192 0-19"),
            p("n1:ack", "s0"),
            p("n1:end:s0", "77"),
            p("junk", "x"),
            p("n2:ack", "orphan"),
        ]));
        let f = &fences.map["n1"];
        assert_eq!(f.ack.as_deref(), Some("s0"));
        assert_eq!(f.ends.get("s0"), Some(&77));
        assert!(!fences.map.contains_key("n2"));
        // The same again: nothing new.
        assert!(!fences.merge(&[p("n1", "1 open aaa s8192 0-19")]));
        assert!(fences.merge(&[p("n1", "1 failed aaa s8192 0-19"), p("n1:healed", "1")]));
        assert_eq!(fences.map["n1"].state, State::Failed);
        assert!(fences.map["n1"].healed);
        // A state never goes back.
        fences.merge(&[p("n1", "1 open aaa s8192 0-19")]);
        assert_eq!(fences.map["n1"].state, State::Failed);
    }

    #[test]
    fn hgetall_replies_parse() {
        let b = |s: &str| Frame::BulkString(Bytes::copy_from_slice(s.as_bytes()));
        let flat = Frame::Array(vec![b("a"), b("1"), b("b")]);
        assert_eq!(pairs(&flat), vec![("a".to_string(), "1".to_string())]);
        let map = Frame::Map(vec![(b("k"), b("v"))]);
        assert_eq!(pairs(&map), vec![("k".to_string(), "v".to_string())]);
        assert!(pairs(&Frame::Integer(3)).is_empty());
    }
}
