//! Redis Cluster topology, sans IO: which master serves each of the 16384 slots, with its
//! replicas, read from the cluster's own replies and kept current from redirections.
//!
//! - [`SlotMap`]: slot → [`Shard`] (a master [`Node`] and its replicas), parsed from
//!   `CLUSTER SHARDS` (Redis 7.0+, Valkey; [`SlotMap::from_shards`]), `CLUSTER SLOTS`
//!   (Redis 6.2; [`SlotMap::from_slots`]) or `CLUSTER NODES` text
//!   ([`SlotMap::from_nodes`]), and updated by `MOVED` ([`SlotMap::update_from_moved`]).
//! - [`ClusterTopology`]: the map with the questions a router and a per-shard source ask:
//!   [`masters`](ClusterTopology::masters), [`master_for_slot`](ClusterTopology::master_for_slot),
//!   [`master_for_key`](ClusterTopology::master_for_key),
//!   [`replicas_of`](ClusterTopology::replicas_of).
//! - [`cluster_enabled`]: cluster mode from `INFO cluster`.
//! - [`discover`]: all of the above over a [`Target`](crate::Target) connection: `None` for
//!   a standalone server, else the topology, with the right command for the version.
//! - [`ClusterClient`]: a request router for custom tools, one connection per master:
//!   each command to its key's master, `MOVED`/`ASK` followed, `TRYAGAIN`/`CLUSTERDOWN`
//!   retried with bounded backoff, `CROSSSLOT` commands refused with a clear error.
//!
//! The migration engine reads cluster sources with [`discover`] and the topology (one
//! replication link per shard; see [`crate::migrate`], "Cluster sources") and writes to
//! cluster targets with one pipelined writer per master ("Cluster targets").
//!
//! ```
//! use bytes::BytesMut;
//! use migrate_core::cluster::SlotMap;
//! use resp_codec::FrameDecoder;
//!
//! // CLUSTER SLOTS of a Redis 6.2 cluster of one master and one replica (ids shortened).
//! let mut reply = BytesMut::from(
//!     &b"*1\r\n*4\r\n:0\r\n:16383\r\n\
//!        *3\r\n$9\r\n127.0.0.1\r\n:7000\r\n$2\r\nm1\r\n\
//!        *3\r\n$9\r\n127.0.0.1\r\n:7001\r\n$2\r\nr1\r\n"[..],
//! );
//! let (frame, _) = FrameDecoder::default().decode(&mut reply).unwrap().unwrap();
//! let map = SlotMap::from_slots(&frame).unwrap();
//! let shard = map.shard_for_slot(migrate_core::key_slot(b"user:1")).unwrap();
//! assert_eq!(shard.master.addr(), "127.0.0.1:7000");
//! assert_eq!(shard.replicas[0].id.as_deref(), Some("r1"));
//! assert!(map.is_complete());
//! ```
//!
//! Connecting to a cluster:
//!
//! ```no_run
//! use migrate_core::{cluster, Target, TargetOptions};
//!
//! # async fn demo() -> Result<(), migrate_core::Error> {
//! let mut seed = Target::connect("127.0.0.1:7000", &TargetOptions::default()).await?;
//! match cluster::discover(&mut seed).await? {
//!     None => println!("standalone"),
//!     Some(topo) => {
//!         for m in topo.masters() {
//!             let slots = topo.slot_map().slots_of(m);
//!             println!("{m} serves {slots:?}, replicas {:?}", topo.replicas_of(m));
//!         }
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod client;
mod dbs;
mod discover;
mod parse;
#[cfg(test)]
mod tests;
mod topology;

pub use client::{ClusterClient, ClusterClientOptions, ClusterError, ClusterStats};
pub(crate) use dbs::LackedDbs;
pub use discover::discover;
pub use parse::{cluster_enabled, TopologyError};
pub use topology::{ClusterTopology, Node, Shard, SlotMap, TopologySource};
