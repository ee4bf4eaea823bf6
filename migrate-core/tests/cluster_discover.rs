//! `cluster::discover` against testkit clusters of every flavour: the masters, their slots
//! and replicas match what the cluster says, also after a failover and a reshard; a
//! standalone server is `None`.

use migrate_core::cluster::{discover, TopologySource};
use migrate_core::{Target, TargetOptions};
use testkit::{Cluster, Flavor, Server};

async fn check(flavor: Flavor) {
    let cluster = Cluster::start(flavor, 3, 1);
    let expected = if flavor == Flavor::Redis6_2 {
        TopologySource::Slots
    } else {
        TopologySource::Shards
    };
    let compare = |cluster: &Cluster, topo: &migrate_core::cluster::ClusterTopology| {
        let masters = topo.masters();
        let want = cluster.masters();
        assert_eq!(masters.len(), want.len(), "{flavor}");
        for (m, w) in masters.iter().zip(&want) {
            assert_eq!(m.addr(), w.addr(), "{flavor}");
            assert_eq!(m.id.as_deref(), Some(w.id()), "{flavor}");
            let slots: Vec<_> = topo.slot_map().slots_of(m);
            assert_eq!(slots, cluster.slots_of(w), "{flavor}");
            let replicas: Vec<String> = topo.replicas_of(m).iter().map(|r| r.addr()).collect();
            let want_replicas: Vec<String> =
                cluster.replicas_of(w).iter().map(|r| r.addr()).collect();
            // Redis 7.0's CLUSTER SHARDS lists replicas; only its CLUSTER SLOTS hides fresh ones.
            assert_eq!(replicas, want_replicas, "{flavor}: {:?}", topo.slot_map());
        }
        assert!(topo.slot_map().is_complete());
    };
    // Through a replica too: any node answers for the whole cluster.
    for node in cluster.nodes() {
        let mut target = Target::connect(&node.addr(), &TargetOptions::default())
            .await
            .unwrap();
        let topo = discover(&mut target).await.unwrap().expect("a cluster");
        assert_eq!(topo.source(), expected, "{flavor}");
        compare(&cluster, &topo);
    }
    let replica = cluster.replicas_of(cluster.masters()[0])[0]
        .id()
        .to_string();
    cluster.failover(&replica);
    let to = cluster.masters()[2].id().to_string();
    cluster.move_slots(0..=9, &to);
    let mut target = Target::connect(&cluster.masters()[1].addr(), &TargetOptions::default())
        .await
        .unwrap();
    let topo = discover(&mut target).await.unwrap().unwrap();
    assert_eq!(
        topo.master_for_slot(0).unwrap().id.as_deref(),
        Some(&to[..])
    );
    assert_eq!(
        topo.master_for_slot(10).unwrap().id.as_deref(),
        Some(&replica[..])
    );
    compare(&cluster, &topo);
}

#[tokio::test]
async fn redis_6_2() {
    check(Flavor::Redis6_2).await;
}

#[tokio::test]
async fn redis_7_0() {
    check(Flavor::Redis7_0).await;
}

#[tokio::test]
async fn redis_7_4() {
    check(Flavor::Redis7_4).await;
}

#[tokio::test]
async fn valkey_8_1() {
    check(Flavor::Valkey8_1).await;
}

#[tokio::test]
async fn valkey_9_1() {
    check(Flavor::Valkey9_1).await;
}

#[tokio::test]
async fn standalone_is_none() {
    for flavor in [Flavor::Redis6_2, Flavor::Valkey9_1] {
        let server = Server::start(flavor);
        let mut target = Target::connect(&server.addr(), &TargetOptions::default())
            .await
            .unwrap();
        assert!(discover(&mut target).await.unwrap().is_none(), "{flavor}");
    }
}
