//! `migrate::precheck` with Redis Cluster sides (issue 15, cluster layouts): each side's
//! mode and masters, slots left unassigned (fail), source dbs a cluster target cannot
//! hold (fail naming them and the fix, unless the filter maps or excludes them), write
//! rights on every master, and `maxmemory` per master against its share of the data.

mod common;

use common::*;

use migrate_core::migrate::{
    precheck, Check, CheckOptions, CheckReport, CheckStatus, Source, TargetConfig,
};
use migrate_core::Filter;
use testkit::{Cluster, Flavor, Server};

fn live(url: &str) -> Source {
    Source::Live(replication_client::Config::new(url).unwrap())
}

fn check(source: &Source, target: &str, o: CheckOptions) -> CheckReport {
    let t = TargetConfig::parse(target).unwrap();
    runtime().block_on(precheck(
        source,
        &t,
        &o.rate_sample(std::time::Duration::ZERO),
    ))
}

fn find<'a>(r: &'a CheckReport, name: &str) -> &'a Check {
    r.checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} check: {:#?}", r.checks))
}

#[test]
fn cluster_target_layout_dbs_rights_and_memory() {
    let source = Server::start(Flavor::Redis7_0);
    let cluster = Cluster::start(Flavor::Redis7_0, 3, 0);
    let mut s = source.connect();
    for db in [0, 1, 3] {
        s.ok(["SELECT", &db.to_string()]);
        for i in 0..50 {
            s.ok(["SET", &format!("k:{i}"), &"v".repeat(2000)]);
        }
    }
    let src = live(&source.url());
    let to = cluster.masters()[0].url();

    let r = check(&src, &to, CheckOptions::default());
    assert_eq!(find(&r, "source layout").status, CheckStatus::Pass);
    assert!(find(&r, "source layout").found.contains("standalone"));
    let l = find(&r, "target layout");
    assert_eq!(l.status, CheckStatus::Pass, "{l:?}");
    assert!(
        l.found.contains("cluster of 3 masters") && l.found.contains("all 16384 slots"),
        "{l:?}"
    );
    let w = find(&r, "target write rights");
    assert_eq!(w.status, CheckStatus::Pass, "{w:?}");
    assert!(w.found.contains("each of the 3 masters"), "{w:?}");
    let d = find(&r, "cluster target dbs");
    assert_eq!(d.status, CheckStatus::Fail, "{d:?}");
    assert!(
        d.found.contains("db 1 (50 keys)") && d.found.contains("db 3 (50 keys)"),
        "{d:?}"
    );
    assert!(!d.found.contains("db 0 ("), "{d:?}");
    let fix = d.fix.as_deref().unwrap();
    assert!(
        fix.contains("--map-db 1=0 --map-db 3=0") && fix.contains("--exclude-db 1 --exclude-db 3"),
        "{fix}"
    );
    assert!(!r.passed());
    let m = find(&r, "target memory");
    assert_eq!(m.status, CheckStatus::Pass, "{m:?}");
    assert!(m.found.contains("3 target masters"), "{m:?}");

    // Mapped or excluded: nothing a cluster cannot hold.
    let f = Filter::new().map_db(1, 0).exclude_db(3);
    let r = check(&src, &to, CheckOptions::default().filter(f));
    assert_eq!(find(&r, "cluster target dbs").status, CheckStatus::Pass);
    assert!(r.passed(), "{:#?}", r.failures());

    // One master too small for its share, another evicting: both named.
    let masters = cluster.masters();
    let small = masters[1].connect();
    let used: u64 = {
        let mut c = small;
        let used: u64 = c
            .info_field("memory", "used_memory")
            .unwrap()
            .parse()
            .unwrap();
        c.ok(["CONFIG", "SET", "maxmemory", &(used + 1000).to_string()]);
        used
    };
    assert!(used > 0);
    masters[2]
        .connect()
        .ok(["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
    let f = Filter::new().map_db(1, 0).exclude_db(3);
    let r = check(&src, &to, CheckOptions::default().filter(f));
    let m = find(&r, "target memory");
    assert_eq!(m.status, CheckStatus::Fail, "{m:?}");
    assert!(m.found.contains(&masters[1].addr()), "{m:?}");
    assert!(!m.found.contains(&masters[0].addr()), "{m:?}");
    assert!(
        m.fix.as_deref().unwrap().contains("CONFIG SET maxmemory"),
        "{m:?}"
    );
    let e = find(&r, "target eviction policy");
    assert_eq!(e.status, CheckStatus::Warn, "{e:?}");
    assert!(
        e.found.contains("allkeys-lru") && e.found.contains(&masters[2].addr()),
        "{e:?}"
    );

    // Slots left unassigned on the node asked: fail.
    let mut seed = masters[0].connect();
    let slot = cluster.slots_of(masters[0])[0].start().to_string();
    seed.ok(["CLUSTER", "DELSLOTS", &slot]);
    let r = check(&src, &to, CheckOptions::default());
    let l = find(&r, "target layout");
    assert_eq!(l.status, CheckStatus::Fail, "{l:?}");
    assert!(
        l.found.contains("1 slots unassigned") && l.found.contains(&slot),
        "{l:?}"
    );
    assert!(l.fix.as_deref().unwrap().contains("ADDSLOTS"), "{l:?}");
}

#[test]
fn cluster_source_layout() {
    let cluster = Cluster::start(Flavor::Valkey8_1, 3, 0);
    let mut c = cluster.connect();
    for i in 0..100 {
        c.ok(["SET", &format!("k:{i}"), "v"]);
    }
    let target = Server::start(Flavor::Valkey8_1);
    let r = check(
        &live(&cluster.masters()[2].url()),
        &target.url(),
        CheckOptions::default(),
    );
    let l = find(&r, "source layout");
    assert_eq!(l.status, CheckStatus::Pass, "{l:?}");
    assert!(l.found.contains("cluster of 3 masters"), "{l:?}");
    assert_eq!(find(&r, "target layout").status, CheckStatus::Pass);
    assert!(r.checks.iter().all(|c| c.name != "cluster target dbs"));
    assert_eq!(find(&r, "target memory").status, CheckStatus::Pass);
}

/// A Valkey 9 cluster with `cluster-databases 4` holds dbs 0 to 3: only db 5 fails.
#[test]
fn valkey_9_cluster_databases_hold_more_dbs() {
    let node = Server::builder(Flavor::Valkey9_1)
        .config("cluster-enabled", "yes")
        .config("cluster-config-file", "nodes.conf")
        .config("cluster-port", testkit::free_port().to_string())
        .config("cluster-databases", "4")
        .start();
    let mut n = node.connect();
    n.ok(["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !n
        .must(["CLUSTER", "INFO"])
        .text()
        .contains("cluster_state:ok")
    {
        assert!(std::time::Instant::now() < deadline, "cluster not ok");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let source = Server::start(Flavor::Valkey9_1);
    let mut s = source.connect();
    for db in [0, 2, 5] {
        s.ok(["SELECT", &db.to_string()]);
        s.ok(["SET", "k", "v"]);
    }
    let src = live(&source.url());
    let r = check(&src, &node.url(), CheckOptions::default());
    let d = find(&r, "cluster target dbs");
    assert_eq!(d.status, CheckStatus::Fail, "{d:?}");
    assert!(
        d.found.contains("db 5 (1 keys)")
            && !d.found.contains("db 2 (")
            && d.found.contains("cluster-databases 4"),
        "{d:?}"
    );
    assert!(d.fix.as_deref().unwrap().contains("--map-db 5=0"), "{d:?}");
    let r = check(
        &src,
        &node.url(),
        CheckOptions::default().filter(Filter::new().exclude_db(5)),
    );
    assert_eq!(find(&r, "cluster target dbs").status, CheckStatus::Pass);
    assert_eq!(find(&r, "target layout").status, CheckStatus::Pass);
}
