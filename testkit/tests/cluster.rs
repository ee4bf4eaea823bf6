//! Clusters of every flavour come up, take keys in every slot range, and keep every key
//! through a manual failover, a reshard and a killed master.

use std::time::Instant;

use testkit::cluster::key_in_slot;
use testkit::{Cluster, Flavor, Reply};

fn up(flavor: Flavor) {
    let t = Instant::now();
    let cluster = Cluster::start(flavor, 3, 1);
    eprintln!("{flavor}: 3 masters + 3 replicas up in {:?}", t.elapsed());
    let masters = cluster.masters();
    assert_eq!(masters.len(), 3);
    for m in &masters {
        assert_eq!(cluster.replicas_of(m).len(), 1, "{flavor}");
    }
    let mut conn = cluster.connect();
    let mut written = 0;
    for slot in (0..16384).step_by(7) {
        let key = key_in_slot(slot, "k");
        conn.ok([&b"SET"[..], &key, b"v"]);
        written += 1;
    }
    eprintln!("{flavor}: writes done {:?}", t.elapsed());
    // Every master got its share.
    for m in &masters {
        let n = m.connect().int(["DBSIZE"]);
        assert!(n > 700, "{flavor}: {} holds {n} keys", m.addr());
    }
    assert_eq!(cluster.dbsize(), written);
    eprintln!("{flavor}: dbsize done {:?}", t.elapsed());
    assert_eq!(cluster.snapshot().len() as i64, written);
    eprintln!("{flavor}: snapshot done {:?}", t.elapsed());
    // A plain connection to the wrong node is redirected.
    let key = key_in_slot(0, "k");
    match masters[2].connect().cmd([&b"GET"[..], &key]) {
        Reply::Error(e) => assert!(e.starts_with("MOVED 0 "), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn redis_6_2_up() {
    up(Flavor::Redis6_2);
}

#[test]
fn redis_7_0_up() {
    up(Flavor::Redis7_0);
}

#[test]
fn redis_7_4_up() {
    up(Flavor::Redis7_4);
}

#[test]
fn valkey_8_1_up() {
    up(Flavor::Valkey8_1);
}

#[test]
fn valkey_9_1_up() {
    up(Flavor::Valkey9_1);
}

/// A manual failover, a reshard with keys moved in steps (ASK while it runs) and a killed
/// master lose no key.
fn topology_changes(flavor: Flavor) {
    let mut cluster = Cluster::start(flavor, 3, 1);
    let mut conn = cluster.connect();
    for i in 0..2000 {
        conn.ok(["SET", &format!("key:{i}"), &i.to_string()]);
    }
    let before = cluster.snapshot();
    assert_eq!(before.len(), 2000);

    let t = Instant::now();
    let old = cluster.masters()[0].id().to_string();
    let replica = cluster.replicas_of(cluster.masters()[0])[0]
        .id()
        .to_string();
    cluster.failover(&replica);
    eprintln!("{flavor}: manual failover in {:?}", t.elapsed());
    assert_eq!(cluster.masters()[0].id(), replica);
    assert_eq!(cluster.replicas_of(cluster.node(&replica))[0].id(), old);
    before.assert_same(&cluster.snapshot(), 0);

    // Move slots 0..=499 from master 0 to master 1 in two steps.
    let t = Instant::now();
    let to = cluster.masters()[1].id().to_string();
    let mv = cluster.begin_move(0..=499, &to);
    assert_eq!(mv.slots().len(), 500);
    assert!(mv.migrate_keys(1) > 0);
    // Through ASK, every key is readable mid-move.
    for i in (0..2000).step_by(97) {
        let v = conn.bulk(["GET", &format!("key:{i}")]);
        assert_eq!(v, Some(i.to_string().into_bytes()));
    }
    mv.finish(&cluster);
    eprintln!("{flavor}: 500 slots moved in {:?}", t.elapsed());
    assert!(cluster.slots_of(cluster.node(&to)).contains(&(0..=499)));
    assert_eq!(cluster.master_for_slot(499).id(), to);
    before.assert_same(&cluster.snapshot(), 0);
    assert_eq!(conn.bulk(["GET", "key:7"]), Some(b"7".to_vec()));

    // A killed master: its replica takes over after the node timeout.
    let t = Instant::now();
    let victim = cluster.masters()[2].id().to_string();
    let heir = cluster.replicas_of(cluster.masters()[2])[0]
        .id()
        .to_string();
    cluster.kill_master(2);
    cluster.wait_ok();
    eprintln!(
        "{flavor}: master killed, replica promoted in {:?}",
        t.elapsed()
    );
    assert!(cluster.masters().iter().all(|m| m.id() != victim));
    assert!(cluster.masters().iter().any(|m| m.id() == heir));
    before.assert_same(&cluster.snapshot(), 0);
    conn.ok(["SET", "after", "kill"]);
}

#[test]
fn redis_6_2_topology_changes() {
    topology_changes(Flavor::Redis6_2);
}

#[test]
fn valkey_9_1_topology_changes() {
    topology_changes(Flavor::Valkey9_1);
}
