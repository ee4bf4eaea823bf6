//! Shard ids that survive resharding.
//!
//! A shard is named by its lowest slot when first seen (`s0`, `s5461`), and its checkpoint
//! key and fingerprint carry that name. A reshard that moves a shard's lowest slot (as
//! `redis-cli --cluster reshard` does: it takes a source's slots from its lowest) would
//! give it another name at the next start, and its old name to the shard that received
//! the slot: the restarted shard would find no checkpoint (a new full sync) and the other
//! one a checkpoint of another history. So at the start, with checkpoints on, each
//! shard's checkpoint is looked up by its replication history instead ([`adopt`]): the
//! checkpoint of this migration whose replication id is the shard master's `master_replid`
//! or `master_replid2` gives the shard its name ([`stable_ids`]).

use std::collections::HashSet;
use std::time::Duration;

use super::super::checkpoint::{self, Checkpoint, CHECKPOINT_KEY};
use super::super::conn;
use super::super::options::Settings;
use super::super::TargetConfig;
use super::moves::TargetReader;
use super::Plan;
use crate::cluster::Node;

/// A checkpoint of this migration on the target: its shard id, replication id, offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Known {
    pub(crate) id: String,
    pub(crate) replid: String,
    pub(crate) offset: u64,
}

/// A shard at the start: its name by first slot, its master's id (for a fresh name) and
/// its replication ids (`None`: its master did not answer).
#[derive(Debug, Clone)]
pub(crate) struct Named {
    pub(crate) id: String,
    pub(crate) master_id: Option<String>,
    pub(crate) history: Option<(String, String)>,
}

impl Named {
    fn owns(&self, k: &Known) -> bool {
        self.history
            .as_ref()
            .is_some_and(|(r1, r2)| k.replid == *r1 || k.replid == *r2)
    }
}

/// The name of each shard: its own when its checkpoint is in its history (or when no
/// checkpoint has that name); else the checkpoint in its history with the highest offset;
/// else, when its own name is the checkpoint of another shard's history, a new one
/// (`s0-07c37dfe`: its first slot and master id).
pub(crate) fn stable_ids(shards: &[Named], known: &[Known]) -> Vec<String> {
    let mut out: Vec<Option<String>> = vec![None; shards.len()];
    let mut taken: HashSet<String> = HashSet::new();
    for (i, s) in shards.iter().enumerate() {
        if known.iter().any(|k| k.id == s.id && s.owns(k)) {
            out[i] = Some(s.id.clone());
            taken.insert(s.id.clone());
        }
    }
    for (i, s) in shards.iter().enumerate() {
        if out[i].is_some() {
            continue;
        }
        let best = known
            .iter()
            .filter(|k| s.owns(k) && !taken.contains(&k.id))
            .max_by_key(|k| k.offset);
        if let Some(k) = best {
            out[i] = Some(k.id.clone());
            taken.insert(k.id.clone());
        }
    }
    let names: Vec<String> = shards.iter().map(|s| s.id.clone()).collect();
    for (i, s) in shards.iter().enumerate() {
        if out[i].is_some() {
            continue;
        }
        let others = known
            .iter()
            .any(|k| k.id == s.id && shards.iter().enumerate().any(|(j, o)| j != i && o.owns(k)));
        let id = if taken.contains(&s.id) || others {
            let suffix: String = s
                .master_id
                .as_deref()
                .unwrap_or("x")
                .chars()
                .take(8)
                .collect();
            let mut fresh = format!("{}-{suffix}", s.id);
            while taken.contains(&fresh) || names.contains(&fresh) && fresh != s.id {
                fresh.push('x');
            }
            fresh
        } else {
            s.id.clone()
        };
        taken.insert(id.clone());
        out[i] = Some(id);
    }
    out.into_iter().map(Option::unwrap_or_default).collect()
}

/// `master_replid` and `master_replid2` of the first node of `nodes` that answers.
async fn history(
    source: &TargetConfig,
    nodes: &[&Node],
    timeout: Duration,
) -> Option<(String, String)> {
    for n in nodes {
        let cfg = TargetConfig {
            url: source.url.with_host_port(&n.host, n.port),
            tls: source.tls.clone(),
        };
        let found = tokio::time::timeout(timeout, async {
            let mut t = conn::connect(&cfg, timeout).await.ok()?;
            let reply = t.call(&["INFO", "replication"]).await.ok()?;
            let text = String::from_utf8_lossy(reply.as_bytes()?).into_owned();
            let field = |name: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                    .map(|v| v.trim().to_string())
            };
            Some((field("master_replid")?, field("master_replid2")?))
        })
        .await;
        if let Ok(Some(h)) = found {
            return Some(h);
        }
    }
    None
}

/// The checkpoint of this migration stored under shard id `id`, if any.
async fn read_known(reader: &mut TargetReader, id: &str, settings: &Settings) -> Option<Known> {
    let key = format!("{CHECKPOINT_KEY}:{id}");
    let c = Checkpoint::parse(&reader.get(key.as_bytes()).await?).ok()?;
    (c.fingerprint == checkpoint::fingerprint(&format!("cluster-shard:{id}"), settings)).then(
        || Known {
            id: id.to_string(),
            replid: c.point.replid.as_str().to_string(),
            offset: c.point.offset,
        },
    )
}

/// Renames `plans` after their checkpoints on the target (see the module docs); returns
/// the shard ids of the checkpoints of this migration found. Nothing is listed (a `SCAN`
/// of the target) when no shard has a checkpoint under its own name (a new migration), or
/// when each has its own.
pub(crate) async fn adopt(
    plans: &mut [Plan],
    source: &TargetConfig,
    target: &TargetConfig,
    cluster_target: bool,
    settings: &Settings,
) -> Vec<String> {
    let timeout = settings.connect_timeout;
    let mut reader = TargetReader::new(target.clone(), cluster_target);
    let mut known = Vec::new();
    for p in plans.iter() {
        if let Some(k) = read_known(&mut reader, &p.id, settings).await {
            known.push(k);
        }
    }
    if known.is_empty() {
        return Vec::new();
    }
    let mut named = Vec::with_capacity(plans.len());
    for p in plans.iter() {
        let nodes: Vec<&Node> = std::iter::once(&p.master).chain(&p.replicas).collect();
        named.push(Named {
            id: p.id.clone(),
            master_id: p.master.id.clone(),
            history: history(source, &nodes, timeout).await,
        });
    }
    let settled = named
        .iter()
        .all(|n| known.iter().any(|k| k.id == n.id && n.owns(k)));
    if !settled {
        for id in reader.list_ids().await {
            if known.iter().any(|k| k.id == id) {
                continue;
            }
            if let Some(k) = read_known(&mut reader, &id, settings).await {
                known.push(k);
            }
        }
    }
    for (p, id) in plans.iter_mut().zip(stable_ids(&named, &known)) {
        if id != p.id {
            tracing::info!(target: "migrate", "shard {} ({}, slots {}) is named {id} after its checkpoint on the target (found by its replication id: slots were resharded since it was named)", p.id, p.master, super::slots_text(&p.slots));
            p.id = id;
        }
    }
    known.into_iter().map(|k| k.id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(id: &str, r1: &str) -> Named {
        Named {
            id: id.into(),
            master_id: Some(format!("{id}aaaaaaaaaa")),
            history: Some((r1.into(), "0000".into())),
        }
    }

    fn known(id: &str, replid: &str, offset: u64) -> Known {
        Known {
            id: id.into(),
            replid: replid.into(),
            offset,
        }
    }

    #[test]
    fn ids_follow_the_replication_history() {
        // Nothing resharded: every shard keeps its name.
        let shards = [named("s0", "A"), named("s5461", "B")];
        let k = [known("s0", "A", 10), known("s5461", "B", 20)];
        assert_eq!(stable_ids(&shards, &k), ["s0", "s5461"]);
        // Slots 0-99 moved from A to B: A is now first at 100, B at 0.
        let shards = [named("s0", "B"), named("s100", "A")];
        assert_eq!(stable_ids(&shards, &k), ["s5461", "s0"]);
        // A failover: the promoted replica's replid2 is the old history.
        let promoted = Named {
            history: Some(("C".into(), "A".into())),
            ..named("s0", "C")
        };
        assert_eq!(stable_ids(&[promoted], &k[..1]), ["s0"]);
        // A shard without a checkpoint whose name is another shard's checkpoint: a new
        // name; one whose name is a stale checkpoint keeps it.
        let shards = [named("s0", "B2"), named("s100", "A")];
        let k = [known("s0", "A", 10)];
        assert_eq!(stable_ids(&shards, &k), ["s0-s0aaaaaa", "s0"]);
        assert_eq!(stable_ids(&[named("s0", "Z")], &k), ["s0"]);
        // A master that did not answer keeps its name.
        let silent = Named {
            history: None,
            ..named("s7", "x")
        };
        assert_eq!(stable_ids(&[silent], &[]), ["s7"]);
    }
}
