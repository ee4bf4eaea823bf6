//! Reading `CLUSTER SHARDS`, `CLUSTER SLOTS`, `CLUSTER NODES` and `INFO cluster` replies.

use std::fmt;

use resp_codec::Frame;

use super::topology::{Node, Shard, SlotMap};

/// A reply that does not have the shape of its command's topology reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyError {
    /// The command (`CLUSTER SHARDS`, `CLUSTER SLOTS`, `CLUSTER NODES`).
    pub command: &'static str,
    /// What was wrong.
    pub reason: String,
}

impl fmt::Display for TopologyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.command, self.reason)
    }
}

impl std::error::Error for TopologyError {}

fn err(command: &'static str, reason: impl Into<String>) -> TopologyError {
    TopologyError {
        command,
        reason: reason.into(),
    }
}

/// Whether `INFO cluster` (or a full `INFO`) says the server runs in cluster mode
/// (`cluster_enabled:1`). Servers without a cluster section (Redis before 3.0) are not.
///
/// ```
/// assert!(migrate_core::cluster::cluster_enabled("# Cluster\r\ncluster_enabled:1\r\n"));
/// assert!(!migrate_core::cluster::cluster_enabled("# Cluster\r\ncluster_enabled:0\r\n"));
/// assert!(!migrate_core::cluster::cluster_enabled(""));
/// ```
pub fn cluster_enabled(info: &str) -> bool {
    info.lines()
        .filter_map(|l| l.split_once(':'))
        .any(|(k, v)| k == "cluster_enabled" && v.trim() == "1")
}

/// The items of an array, set or RESP3 push.
fn items(frame: &Frame) -> Option<&[Frame]> {
    match frame {
        Frame::Array(v) | Frame::Set(v) => Some(v),
        _ => None,
    }
}

/// `[k, v, k, v]` (RESP2) or a map (RESP3) as `(key, value)` pairs.
fn pairs(frame: &Frame) -> Option<Vec<(&[u8], &Frame)>> {
    match frame {
        Frame::Array(v) => {
            if v.len() % 2 != 0 {
                return None;
            }
            v.chunks_exact(2)
                .map(|kv| Some((kv[0].as_bytes()?, &kv[1])))
                .collect()
        }
        Frame::Map(kv) => kv.iter().map(|(k, v)| Some((k.as_bytes()?, v))).collect(),
        _ => None,
    }
}

fn field<'a>(pairs: &[(&[u8], &'a Frame)], name: &str) -> Option<&'a Frame> {
    pairs
        .iter()
        .find(|(k, _)| *k == name.as_bytes())
        .map(|(_, v)| *v)
}

fn text(frame: &Frame) -> Option<String> {
    frame
        .as_bytes()
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

/// An integer, also when sent as text.
fn int(frame: &Frame) -> Option<i64> {
    match frame {
        Frame::Integer(i) => Some(*i),
        other => std::str::from_utf8(other.as_bytes()?).ok()?.parse().ok(),
    }
}

fn slot(frame: &Frame) -> Option<u16> {
    u16::try_from(int(frame)?).ok().filter(|&s| s < 16384)
}

impl SlotMap {
    /// Reads a `CLUSTER SHARDS` reply (Redis 7.0+, Valkey; RESP2 arrays or RESP3 maps).
    ///
    /// Each shard's master is its node with role `master` and health `online`; a master
    /// that failed and was replaced (listed in the same shard by Valkey, in a shard of its
    /// own without slots by Redis 7.0) is left out. A shard whose only master failed keeps
    /// it, [`healthy`](Node::healthy) `false`. A replica that has not yet learnt its
    /// master's shard id (just after `CLUSTER REPLICATE`) is listed in a shard of its own,
    /// without slots or master: it is left out, as the reply does not say whose it is.
    ///
    /// # Errors
    /// The reply is not an array of shards with `slots` and `nodes`.
    pub fn from_shards(reply: &Frame) -> Result<SlotMap, TopologyError> {
        const CMD: &str = "CLUSTER SHARDS";
        let shards = items(reply).ok_or_else(|| err(CMD, "not an array"))?;
        let mut map = SlotMap::new();
        for shard in shards {
            let fields = pairs(shard).ok_or_else(|| err(CMD, "a shard is not a map"))?;
            let slots = field(&fields, "slots")
                .and_then(items)
                .ok_or_else(|| err(CMD, "a shard has no slots array"))?;
            if slots.len() % 2 != 0 {
                return Err(err(CMD, "odd number of slot bounds"));
            }
            let mut ranges = Vec::new();
            for pair in slots.chunks_exact(2) {
                let (Some(a), Some(b)) = (slot(&pair[0]), slot(&pair[1])) else {
                    return Err(err(CMD, "a slot bound is not a slot number"));
                };
                ranges.push(a..=b);
            }
            let nodes = field(&fields, "nodes")
                .and_then(items)
                .ok_or_else(|| err(CMD, "a shard has no nodes array"))?;
            let mut masters = Vec::new();
            let mut replicas = Vec::new();
            for n in nodes {
                let f = pairs(n).ok_or_else(|| err(CMD, "a node is not a map"))?;
                let (node, role) = shard_node(&f).ok_or_else(|| err(CMD, "a node lacks a port"))?;
                if role == "master" {
                    masters.push(node);
                } else {
                    replicas.push(node);
                }
            }
            let master = masters
                .iter()
                .position(|m| m.healthy)
                .or(if masters.is_empty() { None } else { Some(0) })
                .map(|i| masters.swap_remove(i));
            let Some(master) = master else {
                if ranges.is_empty() {
                    continue;
                }
                return Err(err(CMD, "a shard with slots has no master"));
            };
            let index = map.add_shard(Shard { master, replicas });
            for r in ranges {
                map.assign(r, index);
            }
        }
        map.prune();
        Ok(map)
    }

    /// Reads a `CLUSTER SLOTS` reply: `[start, end, master, replica...]` per range, each
    /// node `[host, port, id?, metadata?]` (ids since Redis 4.0, metadata since 7.0).
    ///
    /// # Errors
    /// The reply does not have that shape.
    pub fn from_slots(reply: &Frame) -> Result<SlotMap, TopologyError> {
        const CMD: &str = "CLUSTER SLOTS";
        let entries = items(reply).ok_or_else(|| err(CMD, "not an array"))?;
        let mut map = SlotMap::new();
        for entry in entries {
            let e = items(entry).ok_or_else(|| err(CMD, "an entry is not an array"))?;
            if e.len() < 3 {
                return Err(err(CMD, "an entry has no master"));
            }
            let (Some(a), Some(b)) = (slot(&e[0]), slot(&e[1])) else {
                return Err(err(CMD, "a slot bound is not a slot number"));
            };
            let mut nodes = Vec::with_capacity(e.len() - 2);
            for n in &e[2..] {
                let n = items(n).ok_or_else(|| err(CMD, "a node is not an array"))?;
                let host = n.first().and_then(text).unwrap_or_default();
                let port = n
                    .get(1)
                    .and_then(int)
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or_else(|| err(CMD, "a node has no port"))?;
                let mut node = Node::new(host, port);
                node.id = n.get(2).and_then(text);
                nodes.push(node);
            }
            let mut nodes = nodes.into_iter();
            let master = nodes.next().expect("len checked");
            let index = map.add_shard(Shard {
                master,
                replicas: nodes.collect(),
            });
            map.assign(a..=b, index);
        }
        Ok(map)
    }

    /// Reads `CLUSTER NODES` text: `<id> <ip:port@cport[,hostname]> <flags> <master> <ping>
    /// <pong> <epoch> <link> <slot>...`. Nodes in `handshake` or `noaddr` are left out;
    /// `fail`/`fail?` nodes are unhealthy (a failed master without slots is dropped); slots
    /// being migrated or imported (`[slot->-id]`) stay with their owner.
    ///
    /// # Errors
    /// A line has fewer than 8 fields, or an address or slot that does not parse.
    pub fn from_nodes(text: &str) -> Result<SlotMap, TopologyError> {
        const CMD: &str = "CLUSTER NODES";
        struct Line<'a> {
            node: Node,
            master_of: Option<&'a str>,
            is_master: bool,
            slots: Vec<(u16, u16)>,
        }
        let mut lines = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let words: Vec<&str> = line.split(' ').collect();
            if words.len() < 8 {
                return Err(err(CMD, format!("a line has {} fields", words.len())));
            }
            let flags: Vec<&str> = words[2].split(',').collect();
            if flags.iter().any(|f| *f == "handshake" || *f == "noaddr") {
                continue;
            }
            let hostport = words[1].split(['@', ',']).next().unwrap_or_default();
            let mut node =
                Node::parse_addr(hostport).ok_or_else(|| err(CMD, "an address does not parse"))?;
            node.id = Some(words[0].to_string());
            node.healthy = !flags.iter().any(|f| *f == "fail" || *f == "fail?");
            let mut slots = Vec::new();
            for w in &words[8..] {
                if w.starts_with('[') {
                    continue;
                }
                let range = match w.split_once('-') {
                    Some((a, b)) => a.parse().ok().zip(b.parse().ok()),
                    None => w.parse().ok().map(|s| (s, s)),
                };
                match range {
                    Some((a, b)) if a <= b && b < 16384 => slots.push((a, b)),
                    _ => return Err(err(CMD, format!("slot range {w:?} does not parse"))),
                }
            }
            lines.push(Line {
                node,
                master_of: (words[3] != "-").then_some(words[3]),
                is_master: flags.contains(&"master"),
                slots,
            });
        }
        let mut map = SlotMap::new();
        for l in lines.iter().filter(|l| l.is_master) {
            let index = map.add_shard(Shard {
                master: l.node.clone(),
                replicas: Vec::new(),
            });
            for &(a, b) in &l.slots {
                map.assign(a..=b, index);
            }
        }
        for l in lines.iter().filter(|l| !l.is_master) {
            let Some(master) = l.master_of else { continue };
            let mut probe = Node::new("", 0);
            probe.id = Some(master.to_string());
            if map.shards().iter().any(|s| s.master.same(&probe)) {
                map.add_shard(Shard {
                    master: probe,
                    replicas: vec![l.node.clone()],
                });
            }
        }
        map.prune();
        Ok(map)
    }
}

/// A node of `CLUSTER SHARDS` and its role.
fn shard_node(f: &[(&[u8], &Frame)]) -> Option<(Node, String)> {
    let port = field(f, "port")
        .or_else(|| field(f, "tls-port"))
        .and_then(int)
        .and_then(|p| u16::try_from(p).ok())?;
    let host = ["endpoint", "ip", "hostname"]
        .iter()
        .filter_map(|k| field(f, k).and_then(text))
        .find(|h| !h.is_empty() && h != "?")
        .unwrap_or_default();
    let health = field(f, "health").and_then(text).unwrap_or_default();
    let mut node = Node::new(host, port);
    node.id = field(f, "id").and_then(text);
    node.healthy = health != "fail";
    node.loading = health == "loading";
    let role = field(f, "role").and_then(text).unwrap_or_default();
    Some((node, role))
}
