//! Valkey 9 atomic slot migration (`CLUSTER MIGRATESLOTS`) on the source: what the
//! streams carry, the markers, and counting; the ordering is [`super::fence`].
//!
//! Note: the facts below were seen on the real server; `valkey-cli` 9.1 itself is not in the
//! test servers (its `--cluster` defaults come from its documentation).
//!
//! What the two replication streams carry (Valkey 9.1.2, a raw replica on each master,
//! `CLUSTER MIGRATESLOTS SLOTSRANGE 0 2000 NODE <B>` with writes to the slots during it):
//!
//! - The new owner (B) propagates the whole import to its replicas, framed by the internal
//!   `CLUSTER SYNCSLOTS` commands: `ESTABLISH SOURCE <A id> NAME <name> SLOTSRANGE <a> <b>
//!   ...`, `ACK`, then the snapshot as AOF-rewrite commands per key (`SELECT 0`, `SET`,
//!   `RPUSH`/`HMSET`/... in chunks, `PEXPIREAT`; no `DEL` first, no `MULTI`), `SNAPSHOT-EOF`,
//!   the old owner's writes to the slots since the snapshot (as A ran them: `INCR` stays
//!   `INCR`), `PAUSED`, `FAILOVER-GRANTED`, `FINISH STATE SUCCESS NAME <name> MESSAGE ""`,
//!   then its own writes to the keys.
//! - The old owner (A) shows no marker: its own writes to the slots up to the pause, then,
//!   once ownership moved, the trim as one `UNLINK key` per key of the slots (200,042 of
//!   them for a slot of 200,000 keys, right after B's `FINISH`).
//! - `CLUSTER CANCELSLOTMIGRATIONS` before the snapshot: B's stream has `ESTABLISH`, then
//!   `FINISH STATE FAILED NAME <name> MESSAGE "Connection lost to source. ..."`, nothing
//!   else; A's stream nothing. (A link attached mid-import sees the markers from there on,
//!   maybe no `ESTABLISH`: such an import is counted at its first marker and named by the
//!   fence read back from the target (a link resumed after its `ESTABLISH`), a listing or
//!   its `FINISH`, so it counts once.)
//!
//! Applied as they come the import would be wrong on the target whichever way the two
//! streams interleave: A's `UNLINK`s landing after B's import lose the keys, A's writes
//! after the snapshot run twice (once from each stream: counters double), a collection
//! already on the target gets the snapshot's elements appended. So the `SYNCSLOTS` markers
//! (no data, and no target runs them) are left out of the stream, each import seen is
//! counted ([`Report::atomic_slot_migrations`](crate::migrate::Report::atomic_slot_migrations))
//! and ordered by a fence ([`super::fence`]); one that could not be ordered is named in the
//! report's warnings: the keys of those slots must be checked (`redis-migrate verify`).
//!
//! Only the new owner's stream shows an import. For the old owner's side (a process
//! migrating only that shard, `--shards`), the node of each shard of this process is also
//! asked `CLUSTER GETSLOTMIGRATIONS` at the periodic topology check
//! ([`rediscover_every`](crate::migrate::MigrationBuilder::rediscover_every)) and once at the
//! end ([`check`]): its `EXPORT`/`IMPORT` entries updated since the start (on the node's
//! clock, `TIME`) are counted the same way, by name, so one migration seen both ways counts
//! once; a listing also makes the shards of this process read the target's fences (the
//! process of the other shard may be ordering it). A node without the command (before
//! Valkey 9) is not asked again. With
//! `rediscover_every` zero only the streams are looked at.
//! `valkey-cli --cluster reshard`/`rebalance` of 9.1 move keys by `MIGRATE` unless given
//! `--cluster-use-atomic-slot-migration`, so they go through [`super::moves`] instead.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use resp_codec::Frame;

use super::super::conn;
use super::super::TargetConfig;
use super::Moves;
use crate::cluster::Node;

/// A `CLUSTER SYNCSLOTS` marker of an import in a shard's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Marker {
    /// `ESTABLISH SOURCE <id> NAME <name> SLOTSRANGE <a> <b> ...`: an import starts.
    Establish {
        source: String,
        name: String,
        slots: Vec<(u16, u16)>,
    },
    /// `FINISH STATE <state> NAME <name> ...`: it ended (`SUCCESS`, else failed or
    /// cancelled).
    Finish { state: String, name: String },
    /// Any other step (`ACK`, `SNAPSHOT-EOF`, `PAUSED`, `FAILOVER-GRANTED`, ...).
    Step,
}

/// The marker `args` is, if it is `CLUSTER SYNCSLOTS ...`.
pub(crate) fn marker(args: &[Bytes]) -> Option<Marker> {
    let [name, sub, rest @ ..] = args else {
        return None;
    };
    if !name.eq_ignore_ascii_case(b"CLUSTER") || !sub.eq_ignore_ascii_case(b"SYNCSLOTS") {
        return None;
    }
    let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
    let step = rest.first().map(|s| s.to_ascii_uppercase());
    // `KEY value` pairs after the step; `SLOTSRANGE` takes the pairs after it.
    let value = |key: &[u8]| {
        rest.windows(2)
            .find(|w| w[0].eq_ignore_ascii_case(key))
            .map(|w| text(&w[1]))
    };
    match step.as_deref() {
        Some(b"ESTABLISH") => {
            let slots = rest
                .iter()
                .position(|a| a.eq_ignore_ascii_case(b"SLOTSRANGE"))
                .map(|i| {
                    let num = |b: &Bytes| std::str::from_utf8(b).ok()?.parse::<u16>().ok();
                    rest[i + 1..]
                        .chunks_exact(2)
                        .map_while(|p| Some((num(&p[0])?, num(&p[1])?)))
                        .collect()
                })
                .unwrap_or_default();
            Some(Marker::Establish {
                source: value(b"SOURCE").unwrap_or_default(),
                name: value(b"NAME").unwrap_or_default(),
                slots,
            })
        }
        Some(b"FINISH") => Some(Marker::Finish {
            state: value(b"STATE").unwrap_or_default(),
            name: value(b"NAME").unwrap_or_default(),
        }),
        _ => Some(Marker::Step),
    }
}

/// `0-100,200`.
fn ranges_text(slots: &[(u16, u16)]) -> String {
    let ranges: Vec<_> = slots.iter().map(|&(a, b)| a..=b).collect();
    super::slots_text(&ranges)
}

/// One import seen in a shard's stream.
#[derive(Debug, Clone)]
struct Import {
    shard: String,
    source: String,
    slots: String,
    state: Option<String>,
}

/// The imports seen by the shards of this process (in [`super::Moves`]).
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// Import name → what is known of it (names starting with `\0`: an import whose
    /// `ESTABLISH` was not seen and whose `FINISH` not yet).
    imports: HashMap<String, Import>,
    /// Imports in order of first sight.
    order: Vec<String>,
    /// Shard → the import its stream is in.
    open: HashMap<String, String>,
    /// Nodes that do not know `CLUSTER GETSLOTMIGRATIONS` (before Valkey 9).
    refused: HashSet<String>,
    /// Imports begun without the old owner's confirmation ([`super::fence`]).
    unordered: HashSet<String>,
}

impl Seen {
    /// Imports seen.
    pub(crate) fn count(&self) -> u64 {
        self.order.len() as u64
    }

    /// An import was begun without its old owner's confirmation.
    pub(crate) fn unordered(&mut self, name: &str) {
        self.unordered.insert(name.to_string());
    }

    /// One report line per import seen that was not ordered: begun unconfirmed, or
    /// without a fence (seen only from the old owner's side, or attached mid-import).
    pub(crate) fn lines(&self, fences: &super::fence::Fences) -> Vec<String> {
        self.order
            .iter()
            .filter(|n| self.unordered.contains(*n) || !fences.map.contains_key(*n))
            .filter_map(|n| self.imports.get(n).map(|i| (n, i)))
            .map(|(n, i)| {
                let name = if n.starts_with('\0') { "?" } else { n.as_str() };
                format!(
                    "shard {}: atomic slot migration {name} (CLUSTER MIGRATESLOTS) of slots {} from node {} seen on the source ({}) was not ordered across the two shards' streams (its old owner did not confirm, or no fence for it was found on the target): the keys of those slots may differ on the target (lost, counted twice, or with extra elements); check them with `redis-migrate verify`",
                    i.shard,
                    if i.slots.is_empty() { "?" } else { &i.slots },
                    if i.source.is_empty() { "?" } else { &i.source },
                    i.state.as_deref().map_or_else(|| "not finished".to_string(), |s| format!("finished: {s}")),
                )
            })
            .collect()
    }

    /// Notes a migration listed by `CLUSTER GETSLOTMIGRATIONS` on the node of shard
    /// `shard` (an `EXPORT` from it or an `IMPORT` into it), unless already known.
    fn listed(&mut self, shard: &str, e: Listed) {
        if e.operation.eq_ignore_ascii_case("IMPORT") {
            if let Some(open) = self
                .open
                .get(shard)
                .filter(|o| o.starts_with('\0'))
                .cloned()
            {
                self.rename(&open, &e.name);
            }
        }
        if let Some(i) = self.imports.get_mut(&e.name) {
            // A later listing of a migration seen unfinished (or in a passing state such
            // as `failover-granted`) says how it ended.
            if terminal(&e.state) && !i.state.as_deref().is_some_and(terminal) {
                i.state = Some(e.state);
            }
            return;
        }
        let dir = if e.operation.eq_ignore_ascii_case("EXPORT") {
            format!("out of this shard to node {}", e.target)
        } else {
            format!("into this shard from node {}", e.source)
        };
        tracing::info!(target: "migrate", "shard {shard}: the source ran an atomic slot migration (CLUSTER MIGRATESLOTS) {} of slots {} {dir}", e.name, e.slots);
        self.order.push(e.name.clone());
        self.imports.insert(
            e.name,
            Import {
                shard: shard.to_string(),
                source: e.source,
                slots: e.slots,
                state: terminal(&e.state).then_some(e.state),
            },
        );
    }

    /// Notes `m` seen in shard `shard`'s stream.
    /// `hint`: the import this shard's fence says is open into it (a link resumed
    /// after its `ESTABLISH` sees only the later steps).
    pub(crate) fn note(&mut self, shard: &str, m: Marker, hint: Option<String>) {
        if let (Marker::Finish { name, .. }, Some(open)) = (&m, self.open.get(shard).cloned()) {
            if open.starts_with('\0') && !name.is_empty() {
                self.rename(&open, name);
                self.open.insert(shard.to_string(), name.clone());
            }
        }
        let open = self.open.get(shard).cloned();
        let key = match &m {
            Marker::Establish { name, .. } if !name.is_empty() => name.clone(),
            Marker::Finish { name, .. } if self.imports.contains_key(name) => name.clone(),
            Marker::Step | Marker::Finish { .. } if open.is_some() => open.unwrap_or_default(),
            Marker::Finish { name, .. } if !name.is_empty() => name.clone(),
            Marker::Step if hint.is_some() => hint.unwrap_or_default(),
            // An import whose ESTABLISH this link did not see (it attached mid-import).
            _ => format!("\0{shard}#{}", self.order.len()),
        };
        if !self.imports.contains_key(&key) {
            self.order.push(key.clone());
        }
        let entry = self.imports.entry(key.clone()).or_insert_with(|| Import {
            shard: shard.to_string(),
            source: String::new(),
            slots: String::new(),
            state: None,
        });
        match m {
            Marker::Establish { source, slots, .. } => {
                // The importing shard names it (its old owner may have listed it first).
                entry.shard = shard.to_string();
                entry.source = source;
                entry.slots = ranges_text(&slots);
                entry.state = None;
                self.open.insert(shard.to_string(), key);
            }
            Marker::Step => {
                self.open.insert(shard.to_string(), key);
            }
            Marker::Finish { state, name } => {
                entry.state = Some(state.to_ascii_lowercase());
                self.open.remove(shard);
                tracing::info!(target: "migrate", "shard {shard}: atomic slot migration {name} finished: {state}");
            }
        }
    }

    /// Gives the import noted as `from` (one whose `ESTABLISH` was not seen) its name,
    /// merging it into the entry of that name if there is one.
    fn rename(&mut self, from: &str, name: &str) {
        let Some(i) = self.imports.remove(from) else {
            return;
        };
        if let Some(known) = self.imports.get_mut(name) {
            if known.state.is_none() {
                known.state = i.state;
            }
            self.order.retain(|n| n != from);
        } else {
            if let Some(n) = self.order.iter_mut().find(|n| **n == from) {
                *n = name.to_string();
            }
            self.imports.insert(name.to_string(), i);
        }
        for open in self.open.values_mut() {
            if open == from {
                *open = name.to_string();
            }
        }
    }
}

/// One entry of `CLUSTER GETSLOTMIGRATIONS`.
#[derive(Debug, Default)]
struct Listed {
    name: String,
    operation: String,
    slots: String,
    source: String,
    target: String,
    state: String,
    updated: i64,
}

/// The migrations a `CLUSTER GETSLOTMIGRATIONS` reply lists as still running (by name).
pub(super) fn running(reply: &Frame) -> HashSet<String> {
    parse_listed(reply)
        .into_iter()
        .filter(|e| !terminal(&e.state))
        .map(|e| e.name)
        .collect()
}

/// Whether a migration's listed state is final (`success`, `failed`, `cancelled`); the
/// states on the way (`connecting`, `snapshotting`, `failover-granted`, ...) are not.
fn terminal(state: &str) -> bool {
    matches!(
        state.to_ascii_lowercase().as_str(),
        "success" | "failed" | "cancelled" | "canceled"
    )
}

/// The entries of a `CLUSTER GETSLOTMIGRATIONS` reply (RESP2 flat pairs or RESP3 maps).
fn parse_listed(reply: &Frame) -> Vec<Listed> {
    let Some(entries) = reply.as_slice() else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|entry| {
            let pairs: Vec<(&Frame, &Frame)> = match entry {
                Frame::Map(p) => p.iter().map(|(k, v)| (k, v)).collect(),
                other => other
                    .as_slice()?
                    .chunks_exact(2)
                    .map(|p| (&p[0], &p[1]))
                    .collect(),
            };
            let mut l = Listed::default();
            for (k, v) in pairs {
                let text = || {
                    v.as_bytes()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .or_else(|| v.as_integer().map(|i| i.to_string()))
                        .unwrap_or_default()
                };
                match k.as_bytes().unwrap_or_default() {
                    b"name" => l.name = text(),
                    b"operation" => l.operation = text(),
                    b"slot_ranges" => l.slots = text(),
                    b"source_node" => l.source = text(),
                    b"target_node" => l.target = text(),
                    b"state" => l.state = text().to_ascii_lowercase(),
                    b"last_update_time" => l.updated = text().parse().unwrap_or(0),
                    _ => {}
                }
            }
            (!l.name.is_empty()).then_some(l)
        })
        .collect()
}

/// At the periodic topology check: asks the node of each shard of this process
/// (`(shard, address)`) for its atomic slot migrations (`CLUSTER GETSLOTMIGRATIONS`,
/// Valkey 9+) and notes those updated since `since` (the start, on the node's clock):
/// the old owner's side, which its stream does not show. A node without the command is
/// not asked again; one that does not answer is skipped this time.
pub(crate) async fn check(
    moves: &Moves,
    nodes: &[(String, String)],
    base: &TargetConfig,
    timeout: Duration,
    since: Instant,
) {
    for (shard, addr) in nodes {
        if moves.lock().asm.refused.contains(addr) {
            continue;
        }
        let Some(node) = Node::parse_addr(addr) else {
            continue;
        };
        let cfg = TargetConfig {
            url: base.url.with_host_port(&node.host, node.port),
            tls: base.tls.clone(),
        };
        let asked = tokio::time::timeout(timeout, async {
            let mut t = conn::connect(&cfg, timeout).await.ok()?;
            let now = t.call(&["TIME"]).await.ok()?;
            let list = t.call(&["CLUSTER", "GETSLOTMIGRATIONS"]).await.ok()?;
            Some((now, list))
        })
        .await;
        let Ok(Some((now, list))) = asked else {
            continue;
        };
        if list.is_error() {
            moves.lock().asm.refused.insert(addr.clone());
            continue;
        }
        let now: i64 = now
            .as_slice()
            .and_then(|t| t.first())
            .and_then(Frame::as_bytes)
            .and_then(|b| std::str::from_utf8(b).ok()?.parse().ok())
            .unwrap_or(i64::MAX);
        // The start on the node's clock, a second early (TIME and the log are in seconds).
        let elapsed = i64::try_from(since.elapsed().as_secs()).unwrap_or(i64::MAX);
        let from = now.saturating_sub(elapsed).saturating_sub(1);
        let mut m = moves.lock();
        for e in parse_listed(&list) {
            if e.updated >= from {
                m.asm.listed(shard, e);
                // Another process may be ordering it: read the target's fences.
                m.fences.seen = true;
            }
        }
    }
}

/// For the `cluster_topology` fuzz target: `frame` read as a `CLUSTER GETSLOTMIGRATIONS`
/// reply and noted twice (still one migration each), `args` as a `CLUSTER SYNCSLOTS`
/// marker: no panic.
#[cfg(feature = "fuzzing")]
pub(crate) fn fuzz_listed(frame: &Frame, args: &[Bytes]) {
    let mut seen = Seen::default();
    let listed = parse_listed(frame);
    let n = listed.len();
    for e in listed {
        seen.listed("s0", e);
    }
    for e in parse_listed(frame) {
        seen.listed("s0", e);
    }
    assert!(seen.count() as usize <= n);
    if let Some(m) = marker(args) {
        seen.note("s1", m, None);
    }
    let _ = seen.lines(&Default::default());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<Bytes> {
        s.split(' ')
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect()
    }

    #[test]
    fn markers_parse() {
        assert_eq!(
            marker(&args(
                "CLUSTER SYNCSLOTS ESTABLISH SOURCE abc NAME n1 SLOTSRANGE 0 2000 3000 3001"
            )),
            Some(Marker::Establish {
                source: "abc".into(),
                name: "n1".into(),
                slots: vec![(0, 2000), (3000, 3001)],
            })
        );
        assert_eq!(
            marker(&args(
                "cluster syncslots FINISH STATE SUCCESS NAME n1 MESSAGE x"
            )),
            Some(Marker::Finish {
                state: "SUCCESS".into(),
                name: "n1".into(),
            })
        );
        assert_eq!(marker(&args("CLUSTER SYNCSLOTS ACK")), Some(Marker::Step));
        // Not data either.
        assert_eq!(marker(&args("CLUSTER SYNCSLOTS")), Some(Marker::Step));
        assert_eq!(marker(&args("CLUSTER NODES")), None);
        assert_eq!(marker(&args("SET k v")), None);
        // Bad slot numbers end the ranges, nothing panics.
        assert_eq!(
            marker(&args("CLUSTER SYNCSLOTS ESTABLISH SLOTSRANGE 1 x NAME")),
            Some(Marker::Establish {
                source: String::new(),
                name: String::new(),
                slots: vec![],
            })
        );
    }

    #[test]
    fn imports_are_counted_once() {
        let mut seen = Seen::default();
        let est = marker(&args(
            "CLUSTER SYNCSLOTS ESTABLISH SOURCE abc NAME n1 SLOTSRANGE 0 10",
        ))
        .unwrap();
        seen.note("s0", est, None);
        seen.note("s0", Marker::Step, None);
        seen.note(
            "s0",
            marker(&args("CLUSTER SYNCSLOTS FINISH STATE SUCCESS NAME n1")).unwrap(),
            None,
        );
        assert_eq!(seen.count(), 1);
        assert!(seen.lines(&Default::default())[0].contains("slots 0-10 from node abc"));
        assert!(seen.lines(&Default::default())[0].contains("finished: success"));
        // Attached mid-import: the steps and the FINISH make one more.
        seen.note("s5", Marker::Step, None);
        seen.note("s5", Marker::Step, None);
        seen.note(
            "s5",
            marker(&args("CLUSTER SYNCSLOTS FINISH STATE FAILED NAME n2")).unwrap(),
            None,
        );
        assert_eq!(seen.count(), 2);
        assert!(seen.lines(&Default::default())[1].contains("n2"));
        // And a later one on the same shard is new.
        seen.note("s5", Marker::Step, None);
        assert_eq!(seen.count(), 3);
    }

    #[test]
    fn a_resumed_link_counts_its_import_once() {
        let b = |s: &str| Frame::BulkString(Bytes::copy_from_slice(s.as_bytes()));
        let listing = |op: &str| {
            Frame::Array(vec![Frame::Array(vec![
                b("name"),
                b("n1"),
                b("operation"),
                b(op),
                b("state"),
                b("snapshotting"),
            ])])
        };
        let finish = || marker(&args("CLUSTER SYNCSLOTS FINISH STATE SUCCESS NAME n1")).unwrap();
        // Resumed after ESTABLISH, the fence read back names it.
        let mut seen = Seen::default();
        seen.note("s8192", Marker::Step, Some("n1".into()));
        for e in parse_listed(&listing("EXPORT")) {
            seen.listed("s0", e);
        }
        seen.note("s8192", finish(), None);
        assert_eq!(seen.count(), 1, "{:?}", seen.order);
        // Without a fence: its steps, then the new owner's node lists it, then FINISH.
        let mut seen = Seen::default();
        seen.note("s8192", Marker::Step, None);
        for e in parse_listed(&listing("IMPORT")) {
            seen.listed("s8192", e);
        }
        seen.note("s8192", Marker::Step, None);
        seen.note("s8192", finish(), None);
        assert_eq!(seen.count(), 1, "{:?}", seen.order);
        // The old owner's listing first, the steps, then FINISH names it: merged.
        let mut seen = Seen::default();
        for e in parse_listed(&listing("EXPORT")) {
            seen.listed("s0", e);
        }
        seen.note("s8192", Marker::Step, None);
        seen.note("s8192", finish(), None);
        assert_eq!(seen.count(), 1, "{:?}", seen.order);
        assert!(seen.lines(&Default::default())[0].contains("finished: success"));
    }

    #[test]
    fn listed_migrations_parse_and_dedup() {
        let b = |s: &str| Frame::BulkString(Bytes::copy_from_slice(s.as_bytes()));
        let entry = |name: &str, state: &str| {
            Frame::Array(vec![
                b("name"),
                b(name),
                b("operation"),
                b("EXPORT"),
                b("slot_ranges"),
                b("0-19"),
                b("target_node"),
                b("bbb"),
                b("source_node"),
                b("aaa"),
                b("last_update_time"),
                Frame::Integer(100),
                b("state"),
                b(state),
            ])
        };
        let reply = Frame::Array(vec![entry("n1", "success"), entry("", "x"), b("junk")]);
        let listed = parse_listed(&reply);
        assert_eq!(listed.len(), 1);
        assert_eq!(
            (
                listed[0].slots.as_str(),
                listed[0].target.as_str(),
                listed[0].updated
            ),
            ("0-19", "bbb", 100)
        );
        assert!(parse_listed(&b("ERR")).is_empty());
        let mut seen = Seen::default();
        for e in parse_listed(&reply) {
            seen.listed("s0", e);
        }
        // The importer's stream names the same migration: still one.
        seen.note(
            "s8192",
            marker(&args(
                "CLUSTER SYNCSLOTS ESTABLISH SOURCE aaa NAME n1 SLOTSRANGE 0 19",
            ))
            .unwrap(),
            None,
        );
        for e in parse_listed(&reply) {
            seen.listed("s0", e);
        }
        assert_eq!(seen.count(), 1);
        assert!(seen.lines(&Default::default())[0].starts_with("shard s8192:"));
        // Listed first on the way (`failover-granted`), then finished: the end is kept.
        let mut seen = Seen::default();
        let passing = Frame::Array(vec![entry("n2", "failover-granted")]);
        for e in parse_listed(&passing) {
            seen.listed("s0", e);
        }
        assert!(
            seen.lines(&Default::default())[0].contains("not finished"),
            "{:?}",
            seen.lines(&Default::default())
        );
        let done = Frame::Array(vec![entry("n2", "success")]);
        for e in parse_listed(&done) {
            seen.listed("s0", e);
        }
        assert!(
            seen.lines(&Default::default())[0].contains("finished: success"),
            "{:?}",
            seen.lines(&Default::default())
        );
        assert_eq!(seen.count(), 1);
    }
}
