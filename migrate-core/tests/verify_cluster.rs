//! `migrate_core::verify` with a Redis Cluster on either side (issue 15): keys enumerated
//! on every master, each read from the master of its slot. Exact copies (made here with
//! DUMP/RESTORE) compare equal; planted differences (changed value, deleted key, extra key,
//! changed TTL, changed stream group) are each reported by key; cluster → cluster,
//! standalone → cluster and cluster → standalone. Reserved `__redis-migrate:` keys of any
//! suffix are ignored.

mod common;

use common::*;
use std::time::Duration;

use migrate_core::migrate::TargetConfig;
use migrate_core::verify::{DiffKind, Verifier, VerifyOptions, VerifyReport};
use testkit::{Cluster, ClusterConn, Conn, Flavor, Reply, Server};

/// Something that runs one command: a standalone connection or a cluster connection.
/// Commands go by their first argument, or by `key` (`XGROUP CREATE key ...`).
trait Exec {
    fn run(&mut self, args: Vec<Vec<u8>>) -> Reply;
    fn run_key(&mut self, key: &str, args: Vec<Vec<u8>>) -> Reply;
}

impl Exec for Conn {
    fn run(&mut self, args: Vec<Vec<u8>>) -> Reply {
        self.cmd(args)
    }
    fn run_key(&mut self, _key: &str, args: Vec<Vec<u8>>) -> Reply {
        self.cmd(args)
    }
}

impl Exec for ClusterConn {
    fn run(&mut self, args: Vec<Vec<u8>>) -> Reply {
        self.cmd(args)
    }
    fn run_key(&mut self, key: &str, args: Vec<Vec<u8>>) -> Reply {
        self.cmd_key(key.as_bytes(), args)
    }
}

fn args(a: &[&str]) -> Vec<Vec<u8>> {
    a.iter().map(|s| s.as_bytes().to_vec()).collect()
}

fn must(x: &mut dyn Exec, a: &[&str]) -> Reply {
    match x.run(args(a)) {
        Reply::Error(e) => panic!("{a:?}: -{e}"),
        r => r,
    }
}

fn must_key(x: &mut dyn Exec, key: &str, a: &[&str]) -> Reply {
    match x.run_key(key, args(a)) {
        Reply::Error(e) => panic!("{a:?}: -{e}"),
        r => r,
    }
}

/// Every type, expiries, a stream with a group and a pending entry, spread over slots.
fn fill(x: &mut dyn Exec) {
    for i in 0..30 {
        must(x, &["SET", &format!("s:{i}"), &format!("v{i}")]);
        must(x, &["HSET", &format!("h:{i}"), "f", "a", "g", "b"]);
        must(x, &["RPUSH", &format!("l:{i}"), "x", "y", "z"]);
        must(x, &["SADD", &format!("set:{i}"), "a", "b"]);
        must(x, &["ZADD", &format!("z:{i}"), "1", "a", "2.5", "b"]);
        must(x, &["SET", &format!("t:{i}"), "x", "PX", "600000"]);
        must(x, &["SET", &format!("{{m}}:{i}"), &format!("one slot {i}")]);
    }
    for i in 0..3 {
        let k = format!("st:{i}");
        for _ in 0..3 {
            must(x, &["XADD", &k, "*", "f", "v"]);
        }
        must_key(x, &k, &["XGROUP", "CREATE", &k, "g1", "0"]);
        must_key(
            x,
            &k,
            &[
                "XREADGROUP",
                "GROUP",
                "g1",
                "c1",
                "COUNT",
                "1",
                "STREAMS",
                &k,
                ">",
            ],
        );
    }
}

/// All keys of one node (db 0).
fn keys_of(conn: &mut Conn) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let Reply::Array(parts) = conn.must(["SCAN", &cursor, "COUNT", "100"]) else {
            panic!("SCAN");
        };
        cursor = parts[0].text();
        if let Reply::Array(keys) = &parts[1] {
            out.extend(keys.iter().filter_map(|k| k.as_bytes().map(<[u8]>::to_vec)));
        }
        if cursor == "0" {
            return out;
        }
    }
}

/// Copies `keys` from `from` to `to` with DUMP + PTTL + RESTORE.
fn copy(keys: &[Vec<u8>], from: &mut dyn Exec, to: &mut dyn Exec) {
    for k in keys {
        let Reply::Bulk(payload) = from.run(vec![b"DUMP".to_vec(), k.clone()]) else {
            panic!("DUMP {}", String::from_utf8_lossy(k));
        };
        let ttl = match from.run(vec![b"PTTL".to_vec(), k.clone()]) {
            Reply::Int(ms) if ms > 0 => ms,
            _ => 0,
        };
        let r = to.run(vec![
            b"RESTORE".to_vec(),
            k.clone(),
            ttl.to_string().into_bytes(),
            payload,
            b"REPLACE".to_vec(),
        ]);
        assert_eq!(
            r,
            Reply::Status("OK".into()),
            "{}",
            String::from_utf8_lossy(k)
        );
    }
}

fn cluster_keys(c: &Cluster) -> Vec<Vec<u8>> {
    c.masters()
        .iter()
        .flat_map(|m| keys_of(&mut m.connect()))
        .collect()
}

fn cluster_cfg(c: &Cluster) -> TargetConfig {
    TargetConfig::parse(&c.masters()[0].url()).unwrap()
}

fn verify(source: TargetConfig, target: TargetConfig) -> VerifyReport {
    let o = VerifyOptions::default()
        .rounds(1)
        .delay(Duration::from_millis(50))
        .batch(17);
    runtime()
        .block_on(Verifier::new(source, target).options(o).run())
        .unwrap()
}

fn listed(r: &VerifyReport) -> String {
    r.differences
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_equal(r: &VerifyReport, what: &str) {
    assert!(r.is_equal(), "{what}: {}\n{}", r.summary(), listed(r));
}

/// Plants one difference of each kind on the target; returns them (key, kind).
fn plant(t: &mut dyn Exec) -> Vec<(&'static str, DiffKind)> {
    must(t, &["SET", "s:3", "changed"]);
    must(t, &["DEL", "h:4"]);
    must(t, &["SET", "only-on-target", "x"]);
    must(t, &["PEXPIRE", "s:5", "900000"]);
    must_key(t, "st:1", &["XGROUP", "CREATE", "st:1", "g2", "$"]);
    vec![
        ("s:3", DiffKind::Value),
        ("h:4", DiffKind::Missing),
        ("only-on-target", DiffKind::Extra),
        ("s:5", DiffKind::Ttl),
        ("st:1", DiffKind::Value),
    ]
}

fn assert_planted(r: &VerifyReport, planted: &[(&str, DiffKind)], what: &str) {
    assert_eq!(
        r.differences.len(),
        planted.len(),
        "{what}: {}\n{}",
        r.summary(),
        listed(r)
    );
    for (key, kind) in planted {
        let d = r
            .differences
            .iter()
            .find(|d| d.key.as_ref() == key.as_bytes())
            .unwrap_or_else(|| panic!("{what}: {key} not reported:\n{}", listed(r)));
        assert_eq!(d.kind, *kind, "{what}: {d}");
        assert_eq!(d.db, Some(0), "{what}: {d}");
    }
}

/// Reserved keys (any suffix) on both sides, different: never compared.
fn reserved(x: &mut dyn Exec, v: &str) {
    must(x, &["SET", "__redis-migrate:checkpoint", v]);
    must(x, &["SET", "__redis-migrate:checkpoint:shard-2", v]);
}

#[test]
fn cluster_to_cluster() {
    let source = Cluster::start(Flavor::Redis7_0, 3, 0);
    let target = Cluster::start(Flavor::Valkey8_1, 3, 0);
    let (mut s, mut t) = (source.connect(), target.connect());
    fill(&mut s);
    reserved(&mut s, "a");
    let keys: Vec<Vec<u8>> = cluster_keys(&source)
        .into_iter()
        .filter(|k| !k.starts_with(b"__redis-migrate:"))
        .collect();
    // Every master holds some of the keys: the scan has to visit all of them.
    for m in source.masters() {
        assert!(m.connect().int(["DBSIZE"]) > 0);
    }
    copy(&keys, &mut s, &mut t);
    reserved(&mut t, "b");

    let r = verify(cluster_cfg(&source), cluster_cfg(&target));
    assert_equal(&r, "an exact copy");
    assert_eq!(r.keys_compared, keys.len() as u64);
    assert_eq!(r.target_keys_scanned, keys.len() as u64);
    assert_eq!((r.source_masters, r.target_masters), (Some(3), Some(3)));
    assert!(
        r.to_json().contains("\"source_masters\": 3"),
        "{}",
        r.to_json()
    );

    // A slot moving on the target, half of its keys on the importing node: those are
    // read there with ASKING after the owner's ASK.
    let slot = migrate_core::key_slot(b"m");
    let owner = target.master_for_slot(slot).id().to_string();
    let to = target
        .masters()
        .into_iter()
        .find(|m| m.id() != owner)
        .unwrap()
        .id()
        .to_string();
    let mv = target.begin_move(slot..=slot, &to);
    assert_eq!(mv.migrate_keys(15), 15);
    let r = verify(cluster_cfg(&source), cluster_cfg(&target));
    assert_equal(&r, "a slot half moved on the target");
    assert_eq!(r.target_keys_scanned, keys.len() as u64);
    mv.finish(&target);

    // Slots moving on both sides while the verification runs (slowed by a rate cap):
    // keys read after their slot moved are answered with MOVED (or ASK mid-move) and read
    // again from their new owner. Still equal.
    let move_around = |c: &Cluster| {
        let owner = c.master_for_slot(slot).id().to_string();
        let to = c
            .masters()
            .into_iter()
            .find(|m| m.id() != owner)
            .unwrap()
            .id()
            .to_string();
        let lo = c.slots_of(c.node(&owner))[0]
            .start()
            .max(&slot.saturating_sub(40))
            .to_owned();
        c.move_slots(lo..=slot, &to);
    };
    let slow = VerifyOptions::default()
        .rounds(2)
        .delay(Duration::from_millis(200))
        .batch(5)
        .max_ops(1500);
    let (scfg, tcfg) = (cluster_cfg(&source), cluster_cfg(&target));
    let r = std::thread::scope(|sc| {
        let h = sc.spawn(|| runtime().block_on(Verifier::new(scfg, tcfg).options(slow).run()));
        std::thread::sleep(Duration::from_millis(300));
        move_around(&source);
        move_around(&target);
        h.join().unwrap().unwrap()
    });
    assert_equal(&r, "slots moved during the verification");

    let planted = plant(&mut t);
    let r = verify(cluster_cfg(&source), cluster_cfg(&target));
    assert_planted(&r, &planted, "cluster -> cluster");
}

#[test]
fn standalone_to_cluster_and_back() {
    let standalone = Server::start(Flavor::Valkey8_1);
    let cluster = Cluster::start(Flavor::Valkey8_1, 3, 0);
    let scfg = || TargetConfig::parse(&standalone.url()).unwrap();

    // Standalone -> cluster.
    let mut sc = standalone.connect();
    fill(&mut sc);
    reserved(&mut sc, "a");
    let keys: Vec<Vec<u8>> = keys_of(&mut standalone.connect())
        .into_iter()
        .filter(|k| !k.starts_with(b"__redis-migrate:"))
        .collect();
    let mut cc = cluster.connect();
    copy(&keys, &mut sc, &mut cc);
    let r = verify(scfg(), cluster_cfg(&cluster));
    assert_equal(&r, "standalone -> cluster");
    assert_eq!((r.source_masters, r.target_masters), (None, Some(3)));
    assert_eq!(r.target_keys_scanned, keys.len() as u64);

    // Cluster -> standalone: the same data, the other way round.
    let r = verify(cluster_cfg(&cluster), scfg());
    assert_equal(&r, "cluster -> standalone");
    assert_eq!(r.keys_compared, keys.len() as u64);

    // Differences planted on the standalone side, seen as the target of the cluster.
    let planted = plant(&mut sc);
    let r = verify(cluster_cfg(&cluster), scfg());
    assert_planted(&r, &planted, "cluster -> standalone");

    // And planted on the cluster, seen as the target of the standalone server: the
    // standalone side now holds the changed values, so compare the cluster after the
    // same changes: equal again.
    plant(&mut cc);
    let r = verify(scfg(), cluster_cfg(&cluster));
    assert_equal(&r, "both changed alike");
    must(&mut cc, &["DEL", "s:7"]);
    let r = verify(scfg(), cluster_cfg(&cluster));
    assert_planted(&r, &[("s:7", DiffKind::Missing)], "standalone -> cluster");
}

/// A Valkey 9 cluster with `cluster-databases 4`: its dbs other than 0 are compared too.
#[test]
fn valkey_9_cluster_databases() {
    let node = Server::builder(Flavor::Valkey9_1)
        .config("cluster-enabled", "yes")
        .config("cluster-config-file", "nodes.conf")
        .config("cluster-port", testkit::free_port().to_string())
        .config("cluster-databases", "4")
        .start();
    let mut n = node.connect();
    n.ok(["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !n
        .must(["CLUSTER", "INFO"])
        .text()
        .contains("cluster_state:ok")
    {
        assert!(std::time::Instant::now() < deadline, "cluster not ok");
        std::thread::sleep(Duration::from_millis(50));
    }
    let source = Server::start(Flavor::Valkey9_1);
    let mut s = source.connect();
    for db in ["0", "2"] {
        s.ok(["SELECT", db]);
        n.ok(["SELECT", db]);
        fill(&mut s);
        let keys = keys_of(&mut s);
        copy(&keys, &mut s, &mut n);
    }
    let cfg = |u: String| TargetConfig::parse(&u).unwrap();
    let r = verify(cfg(source.url()), cfg(node.url()));
    assert_equal(&r, "db 0 and db 2 into a Valkey 9 cluster");
    assert_eq!(r.target_masters, Some(1));
    n.ok(["SELECT", "2"]);
    must(&mut n, &["DEL", "s:1"]);
    let r = verify(cfg(source.url()), cfg(node.url()));
    assert_eq!(r.differences.len(), 1, "{}", listed(&r));
    let d = &r.differences[0];
    assert_eq!(
        (d.db, d.kind, d.key.as_ref()),
        (Some(2), DiffKind::Missing, &b"s:1"[..])
    );
}
