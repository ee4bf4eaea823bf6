//! [`Node`], [`Shard`], [`SlotMap`] and [`ClusterTopology`]: who serves which slot.

use std::fmt;
use std::ops::RangeInclusive;

use crate::slot::{key_slot, SLOTS};

/// No shard serves the slot.
const UNASSIGNED: u16 = u16::MAX;

/// One cluster node: its address and, when the reply named it, its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Node {
    /// Host name or IP, without brackets for IPv6. Empty when the server did not know its
    /// own address (a node that only answered for itself); [`discover`](super::discover)
    /// fills in the host it connected to.
    pub host: String,
    /// Port (the TLS port for a cluster that only listens on TLS).
    pub port: u16,
    /// The 40-character node id; `None` when only a redirection named the node.
    pub id: Option<String>,
    /// `false` when the cluster marks the node failing (`fail`, `fail?` in `CLUSTER NODES`,
    /// `health: fail` in `CLUSTER SHARDS`). Replicas still loading their data are `true`
    /// with [`Node::loading`].
    pub healthy: bool,
    /// `CLUSTER SHARDS` says `health: loading` (a replica that has not yet reported a
    /// replication offset).
    pub loading: bool,
}

impl Node {
    /// A healthy node at `host:port`, id unknown.
    pub fn new(host: impl Into<String>, port: u16) -> Node {
        Node {
            host: host.into(),
            port,
            id: None,
            healthy: true,
            loading: false,
        }
    }

    /// Parses `host:port` as redirections and `CLUSTER NODES` write it (`127.0.0.1:7000`,
    /// `[::1]:7000`, `::1:7000`).
    pub fn parse_addr(addr: &str) -> Option<Node> {
        let (host, port) = addr.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Some(Node::new(host, port.parse().ok()?))
    }

    /// `host:port` (IPv6 hosts in brackets), to connect to.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Whether `other` is the same server: same id when both have one, else same address.
    pub fn same(&self, other: &Node) -> bool {
        match (&self.id, &other.id) {
            (Some(a), Some(b)) => a == b,
            _ => self.host == other.host && self.port == other.port,
        }
    }

    fn same_addr(&self, host: &str, port: u16) -> bool {
        self.host == host && self.port == port
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.addr())
    }
}

/// A master and its replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// The master.
    pub master: Node,
    /// Its replicas, in the order the server listed them.
    pub replicas: Vec<Node>,
}

/// Slot → shard: which master serves each of the 16384 slots, and its replicas.
///
/// Built from `CLUSTER SHARDS` (Redis 7.0+, Valkey), `CLUSTER SLOTS` (Redis 3.0+) or
/// `CLUSTER NODES` text ([`SlotMap::from_shards`], [`SlotMap::from_slots`],
/// [`SlotMap::from_nodes`]), kept current with [`SlotMap::update_from_moved`].
#[derive(Clone, PartialEq, Eq)]
pub struct SlotMap {
    /// Index into `shards` for every slot, [`UNASSIGNED`] for none.
    owners: Vec<u16>,
    shards: Vec<Shard>,
}

impl fmt::Debug for SlotMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (i, shard) in self.shards.iter().enumerate() {
            m.entry(&shard.master.addr(), &self.ranges_of_index(i));
        }
        m.finish()
    }
}

impl Default for SlotMap {
    fn default() -> Self {
        SlotMap::new()
    }
}

impl SlotMap {
    /// A map where no slot is served.
    pub fn new() -> SlotMap {
        SlotMap {
            owners: vec![UNASSIGNED; usize::from(SLOTS)],
            shards: Vec::new(),
        }
    }

    /// Adds a shard (or finds the one with the same master) and returns its index.
    pub(crate) fn add_shard(&mut self, shard: Shard) -> usize {
        if let Some(i) = self
            .shards
            .iter()
            .position(|s| s.master.same(&shard.master))
        {
            for r in shard.replicas {
                if !self.shards[i].replicas.iter().any(|x| x.same(&r)) {
                    self.shards[i].replicas.push(r);
                }
            }
            return i;
        }
        self.shards.push(shard);
        self.shards.len() - 1
    }

    /// Gives slots `range` to shard `index` (ranges past 16383 are cut).
    pub(crate) fn assign(&mut self, range: RangeInclusive<u16>, index: usize) {
        let end = (*range.end()).min(SLOTS - 1);
        for s in *range.start()..=end {
            self.owners[usize::from(s)] = index as u16;
        }
    }

    /// Drops shards that serve no slot and whose master is failing (an old master after
    /// a failover), renumbering the rest.
    pub(crate) fn prune(&mut self) {
        let used: Vec<bool> = (0..self.shards.len())
            .map(|i| self.owners.contains(&(i as u16)))
            .collect();
        let keep: Vec<bool> = self
            .shards
            .iter()
            .zip(&used)
            .map(|(s, &u)| u || s.master.healthy)
            .collect();
        if keep.iter().all(|&k| k) {
            return;
        }
        let mut new_index = vec![UNASSIGNED; self.shards.len()];
        let mut next = 0u16;
        for (i, &k) in keep.iter().enumerate() {
            if k {
                new_index[i] = next;
                next += 1;
            }
        }
        for o in &mut self.owners {
            if *o != UNASSIGNED {
                *o = new_index[usize::from(*o)];
            }
        }
        let mut i = 0;
        self.shards.retain(|_| {
            i += 1;
            keep[i - 1]
        });
    }

    /// Every shard, served slots or not (a master just added holds none until resharded),
    /// in the order the reply listed them.
    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// The shard serving `slot`.
    pub fn shard_for_slot(&self, slot: u16) -> Option<&Shard> {
        let i = *self.owners.get(usize::from(slot))?;
        self.shards.get(usize::from(i))
    }

    /// The master serving `slot`.
    pub fn master_for_slot(&self, slot: u16) -> Option<&Node> {
        self.shard_for_slot(slot).map(|s| &s.master)
    }

    /// The slot ranges `master` serves (by id, or address when ids are unknown).
    pub fn slots_of(&self, master: &Node) -> Vec<RangeInclusive<u16>> {
        match self.shards.iter().position(|s| s.master.same(master)) {
            Some(i) => self.ranges_of_index(i),
            None => Vec::new(),
        }
    }

    /// The slot ranges no master serves (a cluster in `cluster_state:fail`, or a map being
    /// built).
    pub fn unassigned(&self) -> Vec<RangeInclusive<u16>> {
        ranges(&self.owners, UNASSIGNED)
    }

    /// Whether every slot is served.
    pub fn is_complete(&self) -> bool {
        !self.owners.contains(&UNASSIGNED)
    }

    fn ranges_of_index(&self, i: usize) -> Vec<RangeInclusive<u16>> {
        ranges(&self.owners, i as u16)
    }

    /// Applies a `MOVED <slot> <host:port>` redirection: `slot` is now served by the master
    /// at `host:port`. A node not in the map becomes a new shard (id unknown); a node known
    /// as a replica was promoted, so it becomes the master of its shard, which keeps its
    /// slots, and the old master one of its replicas, marked unhealthy. Returns whether
    /// the map changed.
    pub fn update_from_moved(&mut self, slot: u16, host: &str, port: u16) -> bool {
        if slot >= SLOTS {
            return false;
        }
        let mut changed = false;
        let index = if let Some(i) = self
            .shards
            .iter()
            .position(|s| s.master.same_addr(host, port))
        {
            i
        } else if let Some(i) = self
            .shards
            .iter()
            .position(|s| s.replicas.iter().any(|r| r.same_addr(host, port)))
        {
            let shard = &mut self.shards[i];
            let r = shard
                .replicas
                .iter()
                .position(|r| r.same_addr(host, port))
                .expect("found above");
            let mut promoted = shard.replicas.remove(r);
            promoted.healthy = true;
            promoted.loading = false;
            let mut old = std::mem::replace(&mut shard.master, promoted);
            old.healthy = false;
            shard.replicas.insert(0, old);
            changed = true;
            i
        } else {
            self.shards.push(Shard {
                master: Node::new(host, port),
                replicas: Vec::new(),
            });
            changed = true;
            self.shards.len() - 1
        };
        let old = std::mem::replace(&mut self.owners[usize::from(slot)], index as u16);
        changed || old != index as u16
    }

    /// Sets the host of every node whose host is empty or `?` (the server did not know it:
    /// `cluster-preferred-endpoint-type unknown-endpoint`, a single-node answer) to `host`,
    /// the host the reply came from.
    pub fn fill_unknown_hosts(&mut self, host: &str) {
        for shard in &mut self.shards {
            for node in std::iter::once(&mut shard.master).chain(&mut shard.replicas) {
                if node.host.is_empty() || node.host == "?" {
                    node.host = host.to_string();
                }
            }
        }
    }
}

/// The slot ranges of `table` whose value is `value`.
fn ranges(table: &[u16], value: u16) -> Vec<RangeInclusive<u16>> {
    let mut out = Vec::new();
    let mut start = None;
    for (s, &o) in table.iter().enumerate() {
        match (o == value, start) {
            (true, None) => start = Some(s as u16),
            (false, Some(a)) => {
                out.push(a..=(s as u16 - 1));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(a) = start {
        out.push(a..=(SLOTS - 1));
    }
    out
}

/// Which command a [`ClusterTopology`] was read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TopologySource {
    /// `CLUSTER SHARDS` (Redis 7.0+, Valkey).
    Shards,
    /// `CLUSTER SLOTS` (Redis 3.0+; deprecated in 7.0 but still answered).
    Slots,
    /// `CLUSTER NODES` text.
    Nodes,
}

/// A cluster's topology: its [`SlotMap`] and how it was read.
///
/// ```
/// use migrate_core::cluster::{ClusterTopology, SlotMap, TopologySource};
///
/// // CLUSTER NODES of a 2-master cluster (ids shortened).
/// let text = "a1 10.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-8191\n\
///             b2 10.0.0.2:7000@17000 master - 0 0 2 connected 8192-16383\n\
///             c3 10.0.0.3:7000@17000 slave a1 0 0 1 connected\n";
/// let mut topo = ClusterTopology::new(SlotMap::from_nodes(text).unwrap(), TopologySource::Nodes);
/// let masters = topo.masters();
/// assert_eq!(masters.len(), 2);
/// assert_eq!(topo.replicas_of(masters[0])[0].addr(), "10.0.0.3:7000");
/// assert_eq!(topo.master_for_key(b"foo").unwrap().addr(), "10.0.0.2:7000"); // slot 12182
///
/// // A failover: MOVED names the replica, which now serves the first shard's slots.
/// assert!(topo.update_from_moved(5, "10.0.0.3:7000"));
/// assert_eq!(topo.master_for_slot(0).unwrap().addr(), "10.0.0.3:7000");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTopology {
    map: SlotMap,
    source: TopologySource,
}

impl ClusterTopology {
    /// A topology from a map read with `source`.
    pub fn new(map: SlotMap, source: TopologySource) -> ClusterTopology {
        ClusterTopology { map, source }
    }

    /// The slot map.
    pub fn slot_map(&self) -> &SlotMap {
        &self.map
    }

    /// Which command the map was read with.
    pub fn source(&self) -> TopologySource {
        self.source
    }

    /// The masters serving at least one slot, ordered by their first slot.
    pub fn masters(&self) -> Vec<&Node> {
        let mut seen: Vec<u16> = Vec::new();
        for &o in &self.map.owners {
            if o != UNASSIGNED && !seen.contains(&o) {
                seen.push(o);
            }
        }
        seen.into_iter()
            .map(|i| &self.map.shards[usize::from(i)].master)
            .collect()
    }

    /// The master serving `slot`.
    pub fn master_for_slot(&self, slot: u16) -> Option<&Node> {
        self.map.master_for_slot(slot)
    }

    /// The master serving `key`'s slot ([`key_slot`], hash tags honoured).
    pub fn master_for_key(&self, key: &[u8]) -> Option<&Node> {
        self.map.master_for_slot(key_slot(key))
    }

    /// The replicas of `master` (by id, or address when ids are unknown); empty for a node
    /// that is not a master here.
    pub fn replicas_of(&self, master: &Node) -> &[Node] {
        self.map
            .shards
            .iter()
            .find(|s| s.master.same(master))
            .map(|s| &s.replicas[..])
            .unwrap_or_default()
    }

    /// Applies a `MOVED` redirection to `addr` (`host:port`); see
    /// [`SlotMap::update_from_moved`]. Returns whether the map changed; `false` also for
    /// an address that does not parse.
    pub fn update_from_moved(&mut self, slot: u16, addr: &str) -> bool {
        match Node::parse_addr(addr) {
            Some(n) => self.map.update_from_moved(slot, &n.host, n.port),
            None => false,
        }
    }
}
