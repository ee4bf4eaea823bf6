//! The parsers on replies captured from real clusters (Redis 6.2, 7.0, Valkey 9.1).

use std::ops::RangeInclusive;

use bytes::BytesMut;
use resp_codec::{Frame, FrameDecoder};

#[path = "captured.rs"]
mod captured;

use super::*;
use captured::*;

fn frame(raw: &[u8]) -> Frame {
    let mut buf = BytesMut::from(raw);
    let (frame, _) = FrameDecoder::default().decode(&mut buf).unwrap().unwrap();
    assert!(buf.is_empty());
    frame
}

fn nodes_text(raw: &[u8]) -> String {
    String::from_utf8(frame(raw).as_bytes().unwrap().to_vec()).unwrap()
}

type Summary = Vec<(u16, Vec<RangeInclusive<u16>>, Vec<u16>)>;

/// Per master (by first slot): port, slot ranges, replica ports.
fn summary(map: SlotMap) -> Summary {
    let topo = ClusterTopology::new(map, TopologySource::Slots);
    assert!(topo.slot_map().is_complete());
    topo.masters()
        .iter()
        .map(|m| {
            (
                m.port,
                topo.slot_map().slots_of(m),
                topo.replicas_of(m).iter().map(|r| r.port).collect(),
            )
        })
        .collect()
}

#[test]
fn redis_6_2() {
    let expected: Summary = vec![
        (45727, vec![0..=5460], vec![46807]),
        (36819, vec![5461..=10921], vec![38691]),
        (44033, vec![10922..=16383], vec![33115]),
    ];
    let map = SlotMap::from_slots(&frame(R62_SLOTS)).unwrap();
    let first = map.master_for_slot(0).unwrap();
    assert_eq!(
        first.id.as_deref(),
        Some("f1b0b2c2bfe59b084c263cb213625ac026149b22")
    );
    assert_eq!(first.addr(), "127.0.0.1:45727");
    assert_eq!(
        map.shard_for_slot(0).unwrap().replicas[0].id.as_deref(),
        Some("b65e1eb6843c426695889d37b769ad5b47d1a7ae")
    );
    assert_eq!(summary(map), expected);
    // Slots 0 and 1 are migrating: they stay with their owner until SETSLOT NODE.
    let nodes = SlotMap::from_nodes(&nodes_text(R62_NODES_MIGRATING)).unwrap();
    assert_eq!(summary(nodes), expected);
    // No CLUSTER SHARDS before 7.0.
    assert!(frame(R62_SHARDS).is_error());
    assert!(SlotMap::from_shards(&frame(R62_SHARDS)).is_err());
}

#[test]
fn redis_6_2_after_reshard_and_failover() {
    let expected: Summary = vec![
        (36819, vec![0..=1, 5461..=10921], vec![38691]),
        (45727, vec![2..=5460], vec![46807]),
        (33115, vec![10922..=16383], vec![]),
    ];
    assert_eq!(
        summary(SlotMap::from_slots(&frame(R62_SLOTS_FAILED)).unwrap()),
        expected
    );
    // The dead master (master,fail, no slots) is dropped.
    let nodes = SlotMap::from_nodes(&nodes_text(R62_NODES_FAILED)).unwrap();
    assert_eq!(nodes.shards().len(), 3);
    assert!(nodes.shards().iter().all(|s| s.master.healthy));
    assert_eq!(summary(nodes), expected);
}

#[test]
fn redis_7_0() {
    let expected: Summary = vec![
        (40067, vec![0..=5460], vec![41701]),
        (44809, vec![5461..=10921], vec![43241]),
        (38799, vec![10922..=16383], vec![39937]),
    ];
    let shards = SlotMap::from_shards(&frame(R70_SHARDS)).unwrap();
    let replica = &shards.shard_for_slot(0).unwrap().replicas[0];
    assert_eq!(
        replica.id.as_deref(),
        Some("8b6045eae6519dce14e7447f0954c5647849d4f8")
    );
    // A fresh replica that has not reported an offset: health "loading".
    assert!(replica.healthy && replica.loading);
    assert_eq!(summary(shards), expected);
    let nodes = SlotMap::from_nodes(&nodes_text(R70_NODES)).unwrap();
    assert_eq!(summary(nodes), expected);
    // 7.0's CLUSTER SLOTS leaves those replicas out.
    let slots = summary(SlotMap::from_slots(&frame(R70_SLOTS)).unwrap());
    let no_replicas: Summary = expected
        .into_iter()
        .map(|(p, s, _)| (p, s, vec![]))
        .collect();
    assert_eq!(slots, no_replicas);
}

#[test]
fn redis_7_0_after_reshard_and_failover() {
    let map = SlotMap::from_shards(&frame(R70_SHARDS_FAILED)).unwrap();
    // The dead master's own shard (no slots, health fail) is dropped.
    assert_eq!(map.shards().len(), 3);
    assert_eq!(
        summary(map),
        vec![
            (44809, vec![0..=1, 5461..=10921], vec![43241]),
            (40067, vec![2..=5460], vec![41701]),
            (39937, vec![10922..=16383], vec![]),
        ]
    );
}

#[test]
fn valkey_9_1() {
    assert_eq!(
        summary(SlotMap::from_slots(&frame(V91_SLOTS)).unwrap()),
        vec![
            (36159, vec![0..=5460], vec![40413]),
            (45609, vec![5461..=10921], vec![44439]),
            (41655, vec![10922..=16383], vec![35179]),
        ]
    );
    // After the failover Valkey lists the dead master in its shard, health "fail", next to
    // the promoted replica.
    let map = SlotMap::from_shards(&frame(V91_SHARDS_FAILED)).unwrap();
    let shard = map.shard_for_slot(16383).unwrap();
    assert_eq!(shard.master.port, 35179);
    assert!(shard.master.healthy);
    assert_eq!(
        summary(map),
        vec![
            (45609, vec![0..=1, 5461..=10921], vec![44439]),
            (36159, vec![2..=5460], vec![40413]),
            (35179, vec![10922..=16383], vec![]),
        ]
    );
}

#[test]
fn info_cluster() {
    let text = |raw| nodes_text(raw);
    assert!(cluster_enabled(&text(INFO_CLUSTER_ON)));
    assert!(!cluster_enabled(&text(INFO_CLUSTER_OFF)));
}

#[test]
fn moved_updates() {
    let mut topo = ClusterTopology::new(
        SlotMap::from_slots(&frame(R62_SLOTS)).unwrap(),
        TopologySource::Slots,
    );
    // A resharded slot.
    assert!(topo.update_from_moved(0, "127.0.0.1:36819"));
    assert!(!topo.update_from_moved(0, "127.0.0.1:36819"));
    assert_eq!(topo.master_for_slot(0).unwrap().port, 36819);
    assert_eq!(topo.master_for_slot(1).unwrap().port, 45727);
    assert_eq!(topo.masters().len(), 3);
    // A failover: the replica 33115 now serves the third master's slots.
    assert!(topo.update_from_moved(16000, "127.0.0.1:33115"));
    let m = topo.master_for_slot(10922).unwrap().clone();
    assert_eq!(m.port, 33115);
    assert_eq!(
        m.id.as_deref(),
        Some("7cc5797afd2f784cc1ef43c87c2f831eea1e14b5")
    );
    let old = &topo.replicas_of(&m)[0];
    assert_eq!((old.port, old.healthy), (44033, false));
    // An unknown node (a master just added).
    assert!(topo.update_from_moved(5, "[::1]:7000"));
    let new = topo.master_for_slot(5).unwrap();
    assert_eq!(
        (new.host.as_str(), new.port, new.id.as_ref()),
        ("::1", 7000, None)
    );
    assert_eq!(new.addr(), "[::1]:7000");
    assert_eq!(topo.masters().len(), 4);
    assert_eq!(topo.slot_map().slots_of(new), vec![5..=5]);
    assert!(!topo.update_from_moved(16384, "127.0.0.1:1"));
    assert!(!topo.update_from_moved(1, "nonsense"));
}

#[test]
fn resp3_maps_and_unknown_hosts() {
    let node = |id: &str, port: i64, role: &str, ip: &str| {
        Frame::Map(vec![
            (Frame::bulk("id"), Frame::bulk(id.to_string())),
            (Frame::bulk("port"), Frame::Integer(port)),
            (Frame::bulk("ip"), Frame::bulk(ip.to_string())),
            (Frame::bulk("endpoint"), Frame::bulk("?")),
            (Frame::bulk("role"), Frame::bulk(role.to_string())),
            (Frame::bulk("health"), Frame::bulk("online")),
        ])
    };
    let reply = Frame::Array(vec![Frame::Map(vec![
        (
            Frame::bulk("slots"),
            Frame::Array(vec![Frame::Integer(0), Frame::Integer(16383)]),
        ),
        (
            Frame::bulk("nodes"),
            Frame::Array(vec![
                node("r", 7001, "replica", "10.0.0.2"),
                node("m", 7000, "master", ""),
            ]),
        ),
    ])]);
    let mut map = SlotMap::from_shards(&reply).unwrap();
    assert_eq!(map.master_for_slot(9).unwrap().host, "");
    map.fill_unknown_hosts("10.0.0.1");
    assert_eq!(map.master_for_slot(9).unwrap().addr(), "10.0.0.1:7000");
    assert_eq!(
        map.shard_for_slot(9).unwrap().replicas[0].addr(),
        "10.0.0.2:7001"
    );
    assert!(map.is_complete());
}

#[test]
fn malformed() {
    assert!(SlotMap::from_nodes("abc 1.2.3.4:5 master").is_err());
    assert!(SlotMap::from_nodes("a 1.2.3.4:5@6 master - 0 0 1 connected 9-x").is_err());
    assert!(SlotMap::from_slots(&Frame::Integer(1)).is_err());
    let partial = SlotMap::from_nodes("a 1.2.3.4:5@6 master - 0 0 1 connected 0-99").unwrap();
    assert_eq!(partial.unassigned(), vec![100..=16383]);
    assert!(!partial.is_complete());
}
