//! `ClusterClient` against testkit clusters: routing, CROSSSLOT and keyless refusals, then
//! writes that keep going through a reshard (ASK while slots move, MOVED after), a manual
//! failover and a killed master, every write applied exactly once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use migrate_core::cluster::{ClusterClient, ClusterError};
use migrate_core::migrate::TargetConfig;
use resp_codec::Frame;
use testkit::cluster::{key_in_slot, key_slot};
use testkit::{Cluster, Flavor};

async fn client(cluster: &Cluster) -> ClusterClient {
    let seeds: Vec<TargetConfig> = cluster
        .nodes()
        .iter()
        .map(|n| TargetConfig::parse(&n.url()).unwrap())
        .collect();
    ClusterClient::connect(&seeds, Duration::from_secs(5))
        .await
        .unwrap()
}

fn int(f: &Frame) -> i64 {
    match f {
        Frame::Integer(i) => *i,
        other => panic!("expected an integer, got {other:?}"),
    }
}

#[tokio::test]
async fn routing_and_refusals() {
    let cluster = Cluster::start(Flavor::Redis7_0, 3, 1);
    let mut c = client(&cluster).await;
    for i in 0..300 {
        let r = c
            .call(&["SET", &format!("k{i}"), &i.to_string()])
            .await
            .unwrap();
        assert_eq!(r, Frame::simple("OK"));
    }
    // Each key is on its slot's master, read directly.
    for i in (0..300).step_by(13) {
        let key = format!("k{i}");
        let owner = cluster.master_for_slot(key_slot(key.as_bytes()));
        assert_eq!(
            owner.connect().bulk(["GET", &key]),
            Some(i.to_string().into_bytes())
        );
        let v = c.call(&["GET", &key]).await.unwrap();
        assert_eq!(v.as_bytes(), Some(i.to_string().as_bytes()));
    }
    assert_eq!(c.stats().moved, 0);
    let sizes = c.call_masters(&["DBSIZE"]).await.unwrap();
    assert_eq!(sizes.len(), 3);
    assert_eq!(sizes.iter().map(|(_, f)| int(f)).sum::<i64>(), 300);

    // One slot through a hash tag: fine; two slots: refused before sending.
    c.call(&["MSET", "{u}a", "1", "{u}b", "2"]).await.unwrap();
    match c.call(&["MSET", "a", "1", "b", "2"]).await {
        Err(e @ ClusterError::CrossSlot { .. }) => {
            assert!(e.to_string().contains("2 different slots"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    // A read the key table does not know, across slots: the server's CROSSSLOT.
    assert!(matches!(
        c.call(&["MGET", "a", "b"]).await,
        Err(ClusterError::CrossSlot { slots, .. }) if slots.is_empty()
    ));
    assert!(matches!(
        c.call(&["FLUSHALL"]).await,
        Err(ClusterError::NoKey { .. })
    ));
    // Errors that are not about the cluster stay replies.
    let r = c.call(&["LPUSH", "k1", "x"]).await.unwrap();
    assert!(r.is_error(), "{r:?}");

    // A standalone seed is refused clearly.
    let server = testkit::Server::start(Flavor::Redis7_0);
    let err = ClusterClient::connect(
        &[TargetConfig::parse(&server.url()).unwrap()],
        Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ClusterError::NotACluster { .. }), "{err}");
}

/// `INCR` counters in every slot range, with the expected count kept here: the cluster
/// must end with exactly these values.
struct Counters {
    keys: Vec<String>,
    want: BTreeMap<String, i64>,
}

impl Counters {
    fn new(slots: impl Iterator<Item = u16>) -> Counters {
        let keys: Vec<String> = slots
            .map(|s| String::from_utf8(key_in_slot(s, "n")).unwrap())
            .collect();
        Counters {
            keys,
            want: BTreeMap::new(),
        }
    }

    async fn round(&mut self, c: &mut ClusterClient) {
        for k in &self.keys {
            let got = int(&c.call(&["INCR", k]).await.unwrap());
            let want = self.want.entry(k.clone()).or_insert(0);
            *want += 1;
            assert_eq!(got, *want, "{k}");
        }
    }

    fn check(&self, cluster: &Cluster) {
        let mut conn = cluster.connect();
        for (k, v) in &self.want {
            assert_eq!(
                conn.bulk(["GET", k]),
                Some(v.to_string().into_bytes()),
                "{k}"
            );
        }
    }
}

async fn topology_changes(flavor: Flavor) {
    let mut cluster = Cluster::start(flavor, 3, 1);
    let mut c = client(&cluster).await;
    // Counters in slots 0..=99 (the ones that move) and across the whole range.
    let mut counters = Counters::new((0..100).chain((100..16384).step_by(411)));
    counters.round(&mut c).await;

    // Reshard slots 0..=99 to the second master while writing.
    let to = cluster.masters()[1].id().to_string();
    let mv = cluster.begin_move(0..=99, &to);
    assert!(mv.migrate_keys(1) > 0);
    // Keys already moved answer ASK on the old owner; new keys in moving slots go there too.
    counters.round(&mut c).await;
    let fresh = String::from_utf8(key_in_slot(7, "fresh")).unwrap();
    c.call(&["SET", &fresh, "1"]).await.unwrap();
    assert!(c.stats().ask > 0, "{:?}", c.stats());
    let ask_before = c.stats().ask;
    mv.finish(&cluster);
    counters.round(&mut c).await;
    let stats = c.stats();
    assert!(stats.moved > 0, "{stats:?}");
    assert_eq!(stats.ask, ask_before, "ASK after the move ended: {stats:?}");
    let owner = c.topology().master_for_slot(0).unwrap();
    assert_eq!(owner.id.as_deref(), Some(&to[..]));
    assert_eq!(
        c.call(&["GET", &fresh]).await.unwrap().as_bytes(),
        Some(&b"1"[..])
    );
    counters.check(&cluster);

    // A manual failover of the third master, with writes before and after.
    let replica = cluster.replicas_of(cluster.masters()[2])[0]
        .id()
        .to_string();
    cluster.failover(&replica);
    counters.round(&mut c).await;
    let slot = cluster.slots_of(cluster.node(&replica))[0].clone();
    assert_eq!(
        c.topology()
            .master_for_slot(*slot.start())
            .unwrap()
            .id
            .as_deref(),
        Some(&replica[..])
    );
    counters.check(&cluster);

    // A killed master: calls wait (retrying) until its replica takes over.
    let victim_slot = *cluster.slots_of(cluster.masters()[0])[0].start();
    cluster.kill_master(0);
    let t = Instant::now();
    let key = String::from_utf8(key_in_slot(victim_slot, "after-kill")).unwrap();
    // The connection to the killed node is gone: the first call may report it lost.
    let r = match c.call(&["SET", &key, "x"]).await {
        Err(ClusterError::Lost { .. }) => c.call(&["SET", &key, "x"]).await,
        other => other,
    };
    assert_eq!(r.unwrap(), Frame::simple("OK"));
    eprintln!(
        "{flavor}: write to a killed master's slot answered after {:?} ({:?})",
        t.elapsed(),
        c.stats()
    );
    cluster.wait_ok();
    // Counters whose writes were acknowledged survive (the replica had them).
    counters.round(&mut c).await;
    counters.check(&cluster);
}

#[tokio::test]
async fn redis_6_2_topology_changes() {
    topology_changes(Flavor::Redis6_2).await;
}

#[tokio::test]
async fn valkey_9_1_topology_changes() {
    topology_changes(Flavor::Valkey9_1).await;
}

#[tokio::test]
async fn unavailable_is_bounded() {
    use migrate_core::cluster::ClusterClientOptions;
    let mut cluster = Cluster::start(Flavor::Valkey9_1, 3, 0);
    let seeds = [TargetConfig::parse(&cluster.nodes()[1].url()).unwrap()];
    let options = ClusterClientOptions {
        retry_for: Duration::from_millis(800),
        ..ClusterClientOptions::default()
    };
    let mut c = ClusterClient::connect_with(&seeds, options).await.unwrap();
    let slot = *cluster.slots_of(cluster.masters()[0])[0].start();
    // No replica: the slots of a killed master stay unserved.
    cluster.kill_master(0);
    let key = String::from_utf8(key_in_slot(slot, "k")).unwrap();
    let t = Instant::now();
    let mut last = None;
    for _ in 0..2 {
        match c.call(&["SET", &key, "v"]).await {
            Err(ClusterError::Lost { .. }) => continue,
            other => {
                last = Some(other);
                break;
            }
        }
    }
    let err = last.unwrap().unwrap_err();
    assert!(matches!(err, ClusterError::Unavailable { .. }), "{err}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    eprintln!("{err}");
}
