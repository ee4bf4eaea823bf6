//! Redis Cluster test support: real clusters of N masters with R replicas each, on free
//! loopback ports, and the topology changes tests need (failover, a killed master, slots
//! resharded between masters).
//!
//! [`Cluster::start`] starts `masters × (1 + replicas)` servers with `--cluster-enabled yes`,
//! gives each its own config epoch, assigns the 16384 slots evenly (`CLUSTER ADDSLOTSRANGE`,
//! or `ADDSLOTS` on 6.2), joins them with `CLUSTER MEET`, attaches the replicas with
//! `CLUSTER REPLICATE` and waits until every node says `cluster_state:ok`, agrees on the
//! roles and slot owners, and every replica's link is up. Replication is diskless without
//! delay, so a start takes about a second. Valkey 9 nodes take `DEBUG` from loopback
//! clients (`enable-debug-command local`), e.g. `DEBUG SLOTMIGRATION PREVENT-PAUSE`.
//!
//! [`ClusterConn`] is a slot-aware version of [`Conn`]: it routes each command by the slot
//! of its first key (computed here with the same CRC16 as the servers, so testkit still
//! depends on none of the crates under test) and follows `MOVED`, `ASK`, `TRYAGAIN` and
//! `CLUSTERDOWN`.
//!
//! ```no_run
//! use testkit::{Cluster, Flavor};
//!
//! let cluster = Cluster::start(Flavor::Valkey9_1, 3, 1);
//! let mut conn = cluster.connect();
//! conn.ok(["SET", "greeting", "hello"]);
//! let before = cluster.snapshot();
//!
//! let replica = cluster.replicas_of(&cluster.masters()[0])[0].id().to_string();
//! cluster.failover(&replica);
//! let to = cluster.masters()[1].id().to_string();
//! cluster.move_slots(0..=99, &to);
//! before.assert_same(&cluster.snapshot(), 0);
//! ```

use std::collections::HashMap;
use std::io;
use std::net::TcpListener;
use std::ops::RangeInclusive;
use std::thread;
use std::time::{Duration, Instant};

use crate::{free_port, Conn, Flavor, Reply, Server, ServerBuilder, Snapshot};

/// Number of slots in a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// How long a cluster may take to settle (start, failover, reshard) before the test fails.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long [`ClusterConn`] keeps retrying one command (redirections, `TRYAGAIN`,
/// `CLUSTERDOWN`, a node that went away).
const RETRY_TIMEOUT: Duration = Duration::from_secs(30);

/// The slot of `key`, with hash tags, as the servers compute it (CRC16/XMODEM mod 16384).
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|&b| b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    let mut crc: u16 = 0;
    for &b in hashed {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % SLOTS
}

/// A key whose slot is `slot`: `"{<n>}<prefix>"` with the smallest such tag `n`, for tests
/// that need keys in given slots.
pub fn key_in_slot(slot: u16, prefix: &str) -> Vec<u8> {
    static TAGS: std::sync::OnceLock<Vec<u32>> = std::sync::OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        let mut tags = vec![u32::MAX; usize::from(SLOTS)];
        let mut missing = tags.len();
        let mut n = 0u32;
        while missing > 0 {
            let t = &mut tags[usize::from(key_slot(n.to_string().as_bytes()))];
            if *t == u32::MAX {
                *t = n;
                missing -= 1;
            }
            n += 1;
        }
        tags
    });
    format!("{{{}}}{prefix}", tags[usize::from(slot % SLOTS)]).into_bytes()
}

/// A port whose cluster bus port (port + 10000) is free too.
fn cluster_port() -> u16 {
    loop {
        let port = free_port();
        if port <= u16::MAX - 10000 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
}

/// One node of a [`Cluster`]: a server (until killed) and its node id.
#[derive(Debug)]
pub struct ClusterNode {
    server: Option<Server>,
    port: u16,
    id: String,
}

impl ClusterNode {
    /// The node id (`CLUSTER MYID`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `false` once [`Cluster::kill_master`] killed it.
    pub fn is_alive(&self) -> bool {
        self.server.is_some()
    }

    /// The server.
    ///
    /// # Panics
    /// When the node was killed.
    pub fn server(&self) -> &Server {
        self.server
            .as_ref()
            .unwrap_or_else(|| panic!("node {} was killed", self.addr()))
    }

    /// A plain connection to this node (commands for other slots answer `MOVED`).
    pub fn connect(&self) -> Conn {
        self.server().connect()
    }
}

/// One line of `CLUSTER NODES`, as far as tests need it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeLine {
    id: String,
    port: u16,
    flags: Vec<String>,
    master: Option<String>,
    slots: Vec<(u16, u16)>,
}

impl NodeLine {
    fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    fn is_master(&self) -> bool {
        self.has_flag("master")
    }

    fn failing(&self) -> bool {
        self.has_flag("fail") || self.has_flag("fail?") || self.has_flag("handshake")
    }
}

fn parse_nodes(text: &str) -> Vec<NodeLine> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split(' ');
            let id = words.next()?.to_string();
            let addr = words.next()?;
            let hostport = addr.split(['@', ',']).next()?;
            let port = hostport.rsplit(':').next()?.parse().unwrap_or(0);
            let flags = words.next()?.split(',').map(str::to_string).collect();
            let master = words.next()?;
            let master = (master != "-").then(|| master.to_string());
            let slots = words
                .skip(4)
                .filter(|w| !w.starts_with('['))
                .filter_map(|w| match w.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => {
                        let s = w.parse().ok()?;
                        Some((s, s))
                    }
                })
                .collect();
            Some(NodeLine {
                id,
                port,
                flags,
                master,
                slots,
            })
        })
        .collect()
}

/// A running cluster; every node is killed when it is dropped.
#[derive(Debug)]
pub struct Cluster {
    flavor: Flavor,
    nodes: Vec<ClusterNode>,
}

impl Cluster {
    /// Starts `masters` masters with `replicas_per_master` replicas each and waits until the
    /// cluster is up (see the [module docs](self)). Redis 7.4 starts without its modules.
    ///
    /// # Panics
    /// When a server does not start, or the cluster does not settle within 30 s.
    pub fn start(flavor: Flavor, masters: usize, replicas_per_master: usize) -> Cluster {
        assert!(masters >= 1, "a cluster needs a master");
        let total = masters * (1 + replicas_per_master);
        let servers: Vec<Server> = thread::scope(|s| {
            let handles: Vec<_> = (0..total)
                .map(|_| s.spawn(move || node_builder(flavor).start()))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("server start panicked"))
                .collect()
        });
        let mut nodes = Vec::with_capacity(total);
        for (i, server) in servers.into_iter().enumerate() {
            let mut conn = server.connect();
            let id = conn.must(["CLUSTER", "MYID"]).text();
            // Distinct epochs from the start: no collision handling to wait for.
            conn.ok(["CLUSTER", "SET-CONFIG-EPOCH", &(i + 1).to_string()]);
            nodes.push(ClusterNode {
                port: server.port(),
                server: Some(server),
                id,
            });
        }
        let cluster = Cluster { flavor, nodes };
        let per = usize::from(SLOTS) / masters;
        for i in 0..masters {
            let first = i * per;
            let last = if i + 1 == masters {
                usize::from(SLOTS) - 1
            } else {
                (i + 1) * per - 1
            };
            let mut conn = cluster.nodes[i].connect();
            if flavor == Flavor::Redis6_2 {
                let mut args = vec!["CLUSTER".to_string(), "ADDSLOTS".to_string()];
                args.extend((first..=last).map(|s| s.to_string()));
                conn.ok(&args);
            } else {
                conn.ok([
                    "CLUSTER",
                    "ADDSLOTSRANGE",
                    &first.to_string(),
                    &last.to_string(),
                ]);
            }
        }
        // Every node meets every other: no waiting for gossip to spread the news.
        for (i, a) in cluster.nodes.iter().enumerate() {
            let mut conn = a.connect();
            for b in &cluster.nodes[i + 1..] {
                conn.ok(["CLUSTER", "MEET", "127.0.0.1", &b.port.to_string()]);
            }
        }
        // Every node must know every other before a replica can name its master.
        cluster.wait("every node to know every other", |c| {
            c.alive().all(|n| {
                let view = c.view_from(n);
                view.len() == total && view.iter().all(|l| !l.failing())
            })
        });
        for m in 0..masters {
            for r in 0..replicas_per_master {
                let replica = &cluster.nodes[masters + m * replicas_per_master + r];
                replica
                    .connect()
                    .ok(["CLUSTER", "REPLICATE", &cluster.nodes[m].id]);
            }
        }
        cluster.wait_ok();
        cluster
    }

    /// The flavour of every node.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// Every node, as started (killed ones included: see [`ClusterNode::is_alive`]).
    pub fn nodes(&self) -> &[ClusterNode] {
        &self.nodes
    }

    /// The node with this id.
    ///
    /// # Panics
    /// When no node has it.
    pub fn node(&self, id: &str) -> &ClusterNode {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// A live master serving slots other than the node `id` (panics when there is none).
    pub fn other_master(&self, id: &str) -> &ClusterNode {
        self.masters()
            .into_iter()
            .find(|m| m.id() != id)
            .expect("the cluster has another master")
    }

    /// The live masters that serve slots, ordered by their first slot (so index `i` keeps
    /// naming the same slot range across failovers).
    pub fn masters(&self) -> Vec<&ClusterNode> {
        let view = self.view();
        let mut masters: Vec<(u16, &ClusterNode)> = view
            .iter()
            .filter(|l| l.is_master() && !l.failing() && !l.slots.is_empty())
            .filter_map(|l| {
                let node = self.nodes.iter().find(|n| n.id == l.id && n.is_alive())?;
                Some((l.slots.iter().map(|s| s.0).min()?, node))
            })
            .collect();
        masters.sort_by_key(|m| m.0);
        masters.into_iter().map(|m| m.1).collect()
    }

    /// The live replicas of `master`.
    pub fn replicas_of(&self, master: &ClusterNode) -> Vec<&ClusterNode> {
        self.view()
            .iter()
            .filter(|l| l.master.as_deref() == Some(&master.id))
            .filter_map(|l| self.nodes.iter().find(|n| n.id == l.id && n.is_alive()))
            .collect()
    }

    /// The slot ranges `master` serves, from the cluster's view.
    pub fn slots_of(&self, master: &ClusterNode) -> Vec<RangeInclusive<u16>> {
        self.view()
            .iter()
            .find(|l| l.id == master.id)
            .map(|l| l.slots.iter().map(|&(a, b)| a..=b).collect())
            .unwrap_or_default()
    }

    /// The live master serving `slot`.
    pub fn master_for_slot(&self, slot: u16) -> &ClusterNode {
        let view = self.view();
        let line = view
            .iter()
            .find(|l| l.is_master() && l.slots.iter().any(|&(a, b)| (a..=b).contains(&slot)))
            .unwrap_or_else(|| panic!("no master serves slot {slot}"));
        self.node(&line.id)
    }

    /// A slot-aware connection to the cluster.
    pub fn connect(&self) -> ClusterConn {
        ClusterConn::new(self.alive().map(|n| n.port).collect())
    }

    /// The seed addresses of every live node, `127.0.0.1:<port>`.
    pub fn addrs(&self) -> Vec<String> {
        self.alive().map(ClusterNode::addr).collect()
    }

    /// Kills master `i` (of [`masters`](Self::masters)) with SIGKILL and returns its id. Its
    /// replica, if any, takes over after the node timeout (2 s); wait for it with
    /// [`wait_ok`](Self::wait_ok).
    pub fn kill_master(&mut self, i: usize) -> String {
        let id = self.masters()[i].id.clone();
        let node = self.nodes.iter_mut().find(|n| n.id == id).expect("master");
        node.server = None;
        id
    }

    /// A manual failover: `CLUSTER FAILOVER` on `replica` (by id), waiting until it is a
    /// master, its old master its replica, and the cluster settled.
    pub fn failover(&self, replica: &str) {
        let node = self.node(replica);
        node.connect().ok(["CLUSTER", "FAILOVER"]);
        self.wait("the replica to become master", |c| {
            let mut conn = c.node(replica).connect();
            conn.info_field("replication", "role").as_deref() == Some("master")
        });
        self.wait_ok();
    }

    /// Moves `slots` to master `to` (by id) as `redis-cli --cluster reshard` does, keys
    /// included; see [`begin_move`](Self::begin_move) to move in steps.
    pub fn move_slots(&self, slots: RangeInclusive<u16>, to: &str) {
        let mv = self.begin_move(slots, to);
        mv.finish(self);
    }

    /// Starts moving `slots` to master `to` (by id): `CLUSTER SETSLOT <slot> IMPORTING` on
    /// `to`, `MIGRATING` on each slot's owner. Slots `to` already owns are left out. Move
    /// keys with [`SlotMove::migrate_keys`] (clients then get `ASK` for the moved ones) and
    /// end with [`SlotMove::finish`].
    pub fn begin_move(&self, slots: RangeInclusive<u16>, to: &str) -> SlotMove {
        let dst = self.node(to);
        let view = self.view();
        let mut moving = Vec::new();
        let mut dst_conn = dst.connect();
        let mut src_conns: HashMap<u16, Conn> = HashMap::new();
        for slot in slots {
            let owner = view
                .iter()
                .find(|l| l.is_master() && l.slots.iter().any(|&(a, b)| (a..=b).contains(&slot)))
                .unwrap_or_else(|| panic!("no master serves slot {slot}"));
            if owner.id == dst.id {
                continue;
            }
            let src = self.node(&owner.id);
            dst_conn.ok([
                "CLUSTER",
                "SETSLOT",
                &slot.to_string(),
                "IMPORTING",
                &src.id,
            ]);
            src_conns
                .entry(src.port)
                .or_insert_with(|| src.connect())
                .ok([
                    "CLUSTER",
                    "SETSLOT",
                    &slot.to_string(),
                    "MIGRATING",
                    &dst.id,
                ]);
            moving.push((slot, src.port, src.id.clone()));
        }
        SlotMove {
            slots: moving,
            dst_port: dst.port,
            dst_id: dst.id.clone(),
        }
    }

    /// Every master's keys in one snapshot (db 0), to compare with a standalone server.
    pub fn snapshot(&self) -> Snapshot {
        let mut all = Snapshot::default();
        for master in self.masters() {
            let part = Snapshot::take_conn(&mut master.connect(), 1);
            all.keys.extend(part.keys);
        }
        all
    }

    /// Total keys on the masters (`DBSIZE` of each).
    pub fn dbsize(&self) -> i64 {
        self.masters()
            .iter()
            .map(|m| m.connect().int(["DBSIZE"]))
            .sum()
    }

    /// Waits until every live node reports `cluster_state:ok`, all of them agree on the
    /// roles and the slot owners of the live nodes (no live node marked failing), every
    /// slot is served, every replica's link to its master is up, and (7.0+) `CLUSTER
    /// SHARDS` lists each replica in its master's shard.
    ///
    /// # Panics
    /// After 30 s, with each node's `CLUSTER NODES`.
    pub fn wait_ok(&self) {
        self.wait("the cluster to settle", Cluster::settled);
    }

    fn settled(&self) -> bool {
        let live: Vec<&str> = self.alive().map(|n| n.id.as_str()).collect();
        let mut reference: Option<Vec<NodeLine>> = None;
        for node in self.alive() {
            let mut conn = node.connect();
            let info = conn.bulk(["CLUSTER", "INFO"]).unwrap_or_default();
            if !String::from_utf8_lossy(&info).contains("cluster_state:ok") {
                return false;
            }
            let mut view: Vec<NodeLine> = self
                .view_from(node)
                .into_iter()
                .filter(|l| live.contains(&l.id.as_str()))
                .map(|mut l| {
                    l.flags.retain(|f| f != "myself");
                    l
                })
                .collect();
            view.sort_by(|a, b| a.id.cmp(&b.id));
            if view.len() != live.len() || view.iter().any(NodeLine::failing) {
                return false;
            }
            let served: usize = view
                .iter()
                .filter(|l| l.is_master())
                .flat_map(|l| &l.slots)
                .map(|&(a, b)| usize::from(b - a) + 1)
                .sum();
            if served != usize::from(SLOTS) {
                return false;
            }
            if self.flavor != Flavor::Redis6_2 && !shards_have_masters(&mut conn) {
                return false;
            }
            let is_replica = view.iter().any(|l| l.id == node.id && !l.is_master());
            if is_replica
                && conn
                    .info_field("replication", "master_link_status")
                    .as_deref()
                    != Some("up")
            {
                return false;
            }
            match &reference {
                None => reference = Some(view),
                Some(r) if *r != view => return false,
                Some(_) => {}
            }
        }
        true
    }

    fn wait(&self, what: &str, mut done: impl FnMut(&Cluster) -> bool) {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        while !done(self) {
            if Instant::now() > deadline {
                let views: Vec<String> = self
                    .alive()
                    .map(|n| {
                        let nodes = n.connect().bulk(["CLUSTER", "NODES"]).unwrap_or_default();
                        format!("{}:\n{}", n.addr(), String::from_utf8_lossy(&nodes))
                    })
                    .collect();
                panic!(
                    "{}: timed out waiting for {what}; CLUSTER NODES:\n{}",
                    self.flavor,
                    views.join("\n")
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn alive(&self) -> impl Iterator<Item = &ClusterNode> {
        self.nodes.iter().filter(|n| n.is_alive())
    }

    fn view(&self) -> Vec<NodeLine> {
        let node = self.alive().next().expect("every node was killed");
        self.view_from(node)
    }

    fn view_from(&self, node: &ClusterNode) -> Vec<NodeLine> {
        let text = node
            .connect()
            .bulk(["CLUSTER", "NODES"])
            .unwrap_or_default();
        parse_nodes(&String::from_utf8_lossy(&text))
    }
}

/// Whether every shard of `CLUSTER SHARDS` has a node with role `master`: a replica that
/// has not yet learnt its master's shard id is listed in a shard of its own.
fn shards_have_masters(conn: &mut Conn) -> bool {
    let Reply::Array(shards) = conn.cmd(["CLUSTER", "SHARDS"]) else {
        return false;
    };
    let field = |items: &[Reply], name: &str| -> Option<Reply> {
        items
            .chunks_exact(2)
            .find(|kv| kv[0].as_bytes() == Some(name.as_bytes()))
            .map(|kv| kv[1].clone())
    };
    shards.iter().all(|shard| {
        let Reply::Array(fields) = shard else {
            return false;
        };
        let Some(Reply::Array(nodes)) = field(fields, "nodes") else {
            return false;
        };
        nodes.iter().any(|n| match n {
            Reply::Array(f) => {
                field(f, "role").and_then(|r| r.as_bytes().map(<[u8]>::to_vec))
                    == Some(b"master".to_vec())
            }
            _ => false,
        })
    })
}

fn node_builder(flavor: Flavor) -> ServerBuilder {
    let mut b = Server::builder(flavor)
        .pick_port(cluster_port)
        .config("cluster-enabled", "yes")
        // Relative to --dir, the server's own temp dir.
        .config("cluster-config-file", "nodes.conf")
        .config("cluster-node-timeout", "2000")
        // A replica whose master died long ago may still take over (tests kill masters).
        .config("cluster-replica-validity-factor", "0")
        .config("repl-diskless-sync", "yes")
        .config("repl-diskless-sync-delay", "0");
    if flavor.has_modules() {
        b = b.no_modules();
    }
    if flavor == Flavor::Valkey9_1 {
        // `DEBUG SLOTMIGRATION PREVENT-PAUSE 1` holds an atomic slot migration after its
        // snapshot (`waiting-to-pause`) for tests that need it mid-import.
        b = b.config("enable-debug-command", "local");
    }
    b
}

/// A slot move in progress (see [`Cluster::begin_move`]).
#[derive(Debug)]
#[must_use = "finish the move, or the slots stay MIGRATING/IMPORTING"]
pub struct SlotMove {
    /// `(slot, source port, source id)`.
    slots: Vec<(u16, u16, String)>,
    dst_port: u16,
    dst_id: String,
}

impl SlotMove {
    /// The slots being moved.
    pub fn slots(&self) -> Vec<u16> {
        self.slots.iter().map(|s| s.0).collect()
    }

    /// Moves up to `per_slot` keys of each slot (`CLUSTER GETKEYSINSLOT` + `MIGRATE ...
    /// KEYS`); returns how many moved.
    pub fn migrate_keys(&self, per_slot: usize) -> usize {
        let mut moved = 0;
        let mut conns: HashMap<u16, Conn> = HashMap::new();
        for (slot, port, _) in &self.slots {
            let conn = conns
                .entry(*port)
                .or_insert_with(|| Conn::connect(*port).expect("source node"));
            moved += migrate_batch(conn, *slot, self.dst_port, per_slot);
        }
        moved
    }

    /// Moves every remaining key, then `CLUSTER SETSLOT <slot> NODE <to>` on the destination,
    /// the source and every other master, and waits until the cluster agrees.
    pub fn finish(self, cluster: &Cluster) {
        let mut conns: HashMap<u16, Conn> = HashMap::new();
        for (slot, port, _) in &self.slots {
            let conn = conns
                .entry(*port)
                .or_insert_with(|| Conn::connect(*port).expect("source node"));
            while migrate_batch(conn, *slot, self.dst_port, 100) > 0 {}
        }
        let masters: Vec<u16> = cluster.masters().iter().map(|m| m.port).collect();
        let mut order = vec![self.dst_port];
        order.extend(self.slots.iter().map(|s| s.1));
        order.extend(masters);
        order.dedup();
        let mut seen = Vec::new();
        for port in order {
            if seen.contains(&port) {
                continue;
            }
            seen.push(port);
            let conn = conns
                .entry(port)
                .or_insert_with(|| Conn::connect(port).expect("master"));
            for (slot, _, _) in &self.slots {
                conn.ok([
                    "CLUSTER",
                    "SETSLOT",
                    &slot.to_string(),
                    "NODE",
                    &self.dst_id,
                ]);
            }
        }
        cluster.wait_ok();
    }
}

/// Moves up to `count` keys of `slot` from `conn`'s node to `dst_port`; returns how many.
fn migrate_batch(conn: &mut Conn, slot: u16, dst_port: u16, count: usize) -> usize {
    let keys = match conn.must([
        "CLUSTER",
        "GETKEYSINSLOT",
        &slot.to_string(),
        &count.to_string(),
    ]) {
        Reply::Array(keys) => keys,
        other => panic!("CLUSTER GETKEYSINSLOT {slot}: {other:?}"),
    };
    if keys.is_empty() {
        return 0;
    }
    let mut args: Vec<Vec<u8>> = [
        "MIGRATE",
        "127.0.0.1",
        &dst_port.to_string(),
        "",
        "0",
        "10000",
        "KEYS",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    args.extend(keys.iter().filter_map(|k| k.as_bytes().map(<[u8]>::to_vec)));
    conn.ok(&args);
    keys.len()
}

/// A slot-aware connection to a [`Cluster`]: each command goes to the master of the slot of
/// its first key (`args[1]`; keyless commands go to any master), following `MOVED` (the
/// slot map is read again), `ASK` (`ASKING` then the command, on that node), `TRYAGAIN`,
/// `CLUSTERDOWN` and lost nodes (retried for up to 30 s).
///
/// A command whose connection broke is sent again: this is test code, not an exactly-once
/// client.
#[derive(Debug)]
pub struct ClusterConn {
    seeds: Vec<u16>,
    slots: Vec<u16>,
    conns: HashMap<u16, Conn>,
}

impl ClusterConn {
    /// A connection that learns the slot map from any of `seeds` (ports on 127.0.0.1).
    pub fn new(seeds: Vec<u16>) -> ClusterConn {
        let mut conn = ClusterConn {
            seeds,
            slots: vec![0; usize::from(SLOTS)],
            conns: HashMap::new(),
        };
        conn.refresh();
        conn
    }

    /// Reads the slot map again (`CLUSTER SLOTS` from the first node that answers).
    pub fn refresh(&mut self) {
        let seeds: Vec<u16> = self
            .slots
            .iter()
            .copied()
            .filter(|&p| p != 0)
            .chain(self.seeds.iter().copied())
            .collect::<std::collections::BTreeSet<u16>>()
            .into_iter()
            .collect();
        for port in seeds {
            let Ok(mut conn) = Conn::connect(port) else {
                continue;
            };
            let Ok(Reply::Array(ranges)) = conn
                .send(["CLUSTER", "SLOTS"])
                .and_then(|()| conn.read_reply())
            else {
                continue;
            };
            let mut slots = vec![0; usize::from(SLOTS)];
            for range in ranges {
                let Reply::Array(items) = range else { continue };
                let (Some(Reply::Int(a)), Some(Reply::Int(b)), Some(Reply::Array(master))) =
                    (items.first(), items.get(1), items.get(2))
                else {
                    continue;
                };
                let Some(Reply::Int(p)) = master.get(1) else {
                    continue;
                };
                for s in *a..=*b {
                    slots[s as usize] = *p as u16;
                }
            }
            for p in &slots {
                if *p != 0 && !self.seeds.contains(p) {
                    self.seeds.push(*p);
                }
            }
            self.slots = slots;
            return;
        }
    }

    /// The port of the master serving `slot`, as this connection believes (0: unknown).
    pub fn port_for_slot(&self, slot: u16) -> u16 {
        self.slots[usize::from(slot)]
    }

    /// Sends a command routed by `args[1]` and returns the reply (errors other than
    /// redirections are replies).
    ///
    /// # Panics
    /// When no node answers for 30 s.
    pub fn cmd<I, A>(&mut self, args: I) -> Reply
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        let args: Vec<Vec<u8>> = args.into_iter().map(|a| a.as_ref().to_vec()).collect();
        let slot = args.get(1).map(|k| key_slot(k));
        self.routed(slot, &args)
    }

    /// Sends a command to the master of `key`'s slot.
    pub fn cmd_key<I, A>(&mut self, key: &[u8], args: I) -> Reply
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        let args: Vec<Vec<u8>> = args.into_iter().map(|a| a.as_ref().to_vec()).collect();
        self.routed(Some(key_slot(key)), &args)
    }

    /// A command that must not fail.
    pub fn must<I, A>(&mut self, args: I) -> Reply
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        let args: Vec<Vec<u8>> = args.into_iter().map(|a| a.as_ref().to_vec()).collect();
        match self.cmd(&args) {
            Reply::Error(e) => panic!("{}: -{e}", show(&args)),
            r => r,
        }
    }

    /// A command that must answer `+OK`.
    pub fn ok<I, A>(&mut self, args: I)
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        let args: Vec<Vec<u8>> = args.into_iter().map(|a| a.as_ref().to_vec()).collect();
        let r = self.cmd(&args);
        assert_eq!(r, Reply::Status("OK".into()), "{}", show(&args));
    }

    /// A command that answers an integer.
    pub fn int<I, A>(&mut self, args: I) -> i64
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        let args: Vec<Vec<u8>> = args.into_iter().map(|a| a.as_ref().to_vec()).collect();
        match self.cmd(&args) {
            Reply::Int(i) => i,
            r => panic!("{}: expected an integer, got {r:?}", show(&args)),
        }
    }

    /// A command that answers a bulk string or nil.
    pub fn bulk<I, A>(&mut self, args: I) -> Option<Vec<u8>>
    where
        I: IntoIterator<Item = A>,
        A: AsRef<[u8]>,
    {
        let args: Vec<Vec<u8>> = args.into_iter().map(|a| a.as_ref().to_vec()).collect();
        match self.cmd(&args) {
            Reply::Bulk(b) => Some(b),
            Reply::Nil => None,
            r => panic!("{}: expected a bulk string, got {r:?}", show(&args)),
        }
    }

    fn routed(&mut self, slot: Option<u16>, args: &[Vec<u8>]) -> Reply {
        let deadline = Instant::now() + RETRY_TIMEOUT;
        let mut ask: Option<u16> = None;
        loop {
            if Instant::now() > deadline {
                panic!("{}: no answer from the cluster within 30 s", show(args));
            }
            let port = match (ask, slot) {
                (Some(p), _) => p,
                (None, Some(s)) => self.slots[usize::from(s)],
                (None, None) => self.slots.iter().copied().find(|&p| p != 0).unwrap_or(0),
            };
            if port == 0 {
                thread::sleep(Duration::from_millis(50));
                self.refresh();
                continue;
            }
            let asking = ask.take().is_some();
            match self.send_to(port, args, asking) {
                Err(_) => {
                    self.conns.remove(&port);
                    thread::sleep(Duration::from_millis(50));
                    self.refresh();
                }
                Ok(Reply::Error(e)) if e.starts_with("MOVED ") || e.starts_with("ASK ") => {
                    let mut words = e.split(' ');
                    let kind = words.next();
                    let moved_slot: Option<usize> = words.next().and_then(|s| s.parse().ok());
                    let to: Option<u16> = words
                        .next()
                        .and_then(|a| a.rsplit(':').next())
                        .and_then(|p| p.parse().ok());
                    match (kind, moved_slot, to) {
                        (Some("ASK"), _, Some(to)) => ask = Some(to),
                        (_, Some(s), Some(to)) if s < usize::from(SLOTS) => {
                            self.slots[s] = to;
                            self.refresh();
                            // A stale CLUSTER SLOTS must not undo what MOVED said.
                            self.slots[s] = to;
                        }
                        _ => return Reply::Error(e),
                    }
                }
                Ok(Reply::Error(e))
                    if e.starts_with("TRYAGAIN") || e.starts_with("CLUSTERDOWN") =>
                {
                    thread::sleep(Duration::from_millis(50));
                    self.refresh();
                }
                Ok(reply) => return reply,
            }
        }
    }

    fn send_to(&mut self, port: u16, args: &[Vec<u8>], asking: bool) -> io::Result<Reply> {
        let conn = match self.conns.entry(port) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(Conn::connect(port)?),
        };
        if asking {
            conn.send(["ASKING"])?;
        }
        conn.send(args)?;
        if asking {
            conn.read_reply()?;
        }
        conn.read_reply()
    }
}

fn show(args: &[Vec<u8>]) -> String {
    args.iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots() {
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(&key_in_slot(42, "x")), 42);
    }

    #[test]
    fn nodes_lines() {
        let text = "07c3 127.0.0.1:30004@40004,host slave e7d1 0 1426238317239 4 connected\n\
                    e7d1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460 5462 [5461->-abcd]\n";
        let nodes = parse_nodes(text);
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0].port, 30004);
        assert_eq!(nodes[0].master.as_deref(), Some("e7d1"));
        assert!(nodes[1].is_master());
        assert_eq!(nodes[1].slots, vec![(0, 5460), (5462, 5462)]);
    }
}
