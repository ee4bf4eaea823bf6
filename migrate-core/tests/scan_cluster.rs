//! Scan mode from a Redis Cluster source (issue 14: "scan each master"): a Redis 7.0
//! cluster whose user may not replicate (`-psync -sync` on every node), copied into a
//! standalone target by `SCAN` on every master, kept in sync through the keyspace
//! notifications of every master (each publishes only its own keys' events), with a writer
//! during the copy and one master's subscription killed mid-run; `once` too.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use migrate_core::migrate::{
    Limits, Migration, MigrationBuilder, MigrationHandle, Phase, ScanOptions, Source, SourceMode,
    StopReason, TargetConfig,
};
use testkit::{Cluster, ClusterConn, Flavor, Server, Snapshot};

const TTL_TOLERANCE_MS: i64 = 1000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A 3-master Redis 7.0 cluster with the user `app` on every node: everything but
/// replication, as on managed services.
fn refusing_cluster() -> Cluster {
    let c = Cluster::start(Flavor::Redis7_0, 3, 0);
    for n in c.nodes() {
        n.connect().ok([
            "ACL", "SETUSER", "app", "on", ">pw", "~*", "&*", "+@all", "-sync", "-psync",
        ]);
    }
    c
}

fn builder(cluster: &Cluster, target: &Server) -> MigrationBuilder {
    let port = cluster.masters()[0].port();
    let url = format!("redis://app:pw@127.0.0.1:{port}");
    Migration::builder()
        .source(Source::Live(replication_client::Config::new(&url).unwrap()))
        .target(TargetConfig::parse(&target.url()).unwrap())
        .source_mode(SourceMode::Auto)
        .big_key_bytes(2048)
        .scan_options(
            ScanOptions::default()
                .count(50)
                .chunk_elements(100)
                .set_notify_keyspace_events(true)
                .reconcile_interval(Duration::from_millis(300)),
        )
}

/// Keys of every type over all slots, and a few big ones (copied in pieces).
fn fill(c: &mut ClusterConn) {
    for i in 0..200 {
        c.ok(["SET", &format!("s:{i}"), &format!("v{i}")]);
        c.must(["RPUSH", &format!("l:{i}"), "a", "b"]);
        c.must(["HSET", &format!("h:{i}"), "f", &i.to_string()]);
        c.ok(["SET", &format!("t:{i}"), "x", "PX", "600000"]);
    }
    for b in 0..3 {
        let k = format!("big:{b}");
        for chunk in 0..5 {
            let mut args = vec!["HSET".to_string(), k.clone()];
            for f in 0..100 {
                args.push(format!("field-{chunk}-{f}"));
                args.push(format!("value {chunk} {f} {}", "x".repeat(20)));
            }
            c.must(&args);
        }
    }
}

/// Writes single-key commands over all slots until `stop`.
fn writer(mut conn: ClusterConn, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) || i < 1000 {
            let k = format!("w:{}", i % 101);
            match i % 6 {
                0 => conn.ok(["SET", &k, &format!("v{i}")]),
                1 => {
                    conn.must(["INCR", &format!("counter:{}", i % 7)]);
                }
                2 => {
                    conn.must(["RPUSH", &format!("l:{}", i % 50), &i.to_string()]);
                }
                3 => {
                    conn.must(["HSET", &format!("big:{}", i % 3), &format!("new{i}"), "1"]);
                }
                4 => {
                    conn.must(["PEXPIRE", &k, "600000"]);
                }
                _ => {
                    conn.must(["DEL", &format!("s:{}", i % 200)]);
                }
            }
            i += 1;
            if i % 50 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        i
    })
}

fn wait_phase(handle: &MigrationHandle, phase: Phase) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while handle.progress().phase != phase {
        assert!(!handle.is_finished(), "ended before {phase:?}");
        assert!(Instant::now() < deadline, "no {phase:?} within 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn diff(cluster: &Cluster, target: &Server) -> Vec<String> {
    let want = cluster.snapshot();
    let got = Snapshot::take(target, 1);
    want.diff(&got, TTL_TOLERANCE_MS)
        .into_iter()
        .map(|d| format!("{d:?}"))
        .collect()
}

#[test]
fn cluster_source_with_a_writer_converges() {
    let cluster = refusing_cluster();
    let target = Server::start(Flavor::Valkey8_1);
    fill(&mut cluster.connect());
    let rt = runtime();
    let handle = {
        let _g = rt.enter();
        // Capped so that the snapshot is still running when the writer starts.
        builder(&cluster, &target)
            .limits(Limits::new().source_max_ops(3000))
            .start()
    };
    let stop = Arc::new(AtomicBool::new(false));
    wait_phase(&handle, Phase::FullSync);
    let w = writer(cluster.connect(), stop.clone());
    wait_phase(&handle, Phase::Incremental);
    // One master's subscription dropped: only its keys are rescanned.
    let killed = cluster.masters()[1]
        .connect()
        .int(["CLIENT", "KILL", "TYPE", "pubsub"]);
    assert_eq!(killed, 1, "one subscription per master");
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    assert!(w.join().unwrap() >= 1000);

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let d = diff(&cluster, &target);
        if d.is_empty() {
            break;
        }
        assert!(!handle.is_finished(), "ended before equal");
        assert!(
            Instant::now() < deadline,
            "not equal after 60 s ({} differences): {:?}; {:?}",
            d.len(),
            &d[..d.len().min(5)],
            handle.progress()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    handle.stop();
    let report = rt.block_on(handle.wait()).unwrap();
    assert_eq!(report.source_mode, "scan");
    assert_eq!(report.failures_total, 0, "{:?}", report.failures);
    let s = report.scan.clone().unwrap();
    assert!(s.tracking && s.keys_copied >= 803, "{s:?}");
    assert!(s.keys_recopied > 0 && s.keys_deleted > 0, "{s:?}");
    assert!(s.resubscriptions >= 1 && s.reconcile_passes >= 1, "{s:?}");
    assert!(report.keys_rewritten >= 3, "big keys in pieces: {report:?}");
    // notify-keyspace-events was set on every master.
    for m in cluster.masters() {
        let v = m
            .connect()
            .must(["CONFIG", "GET", "notify-keyspace-events"]);
        let testkit::Reply::Array(v) = v else {
            panic!("{v:?}")
        };
        let flags = v[1].text();
        assert!(flags.contains('K') && flags.contains('A'), "{flags}");
    }
}

#[test]
fn cluster_source_once() {
    let cluster = refusing_cluster();
    let target = Server::start(Flavor::Redis7_0);
    fill(&mut cluster.connect());
    let rt = runtime();
    let report = rt
        .block_on(async { builder(&cluster, &target).once(true).start().wait().await })
        .unwrap();
    assert_eq!(report.stop_reason, StopReason::CaughtUp);
    assert_eq!(report.failures_total, 0, "{:?}", report.failures);
    let d = diff(&cluster, &target);
    assert!(
        d.is_empty(),
        "{} differences: {:?}",
        d.len(),
        &d[..d.len().min(5)]
    );
    let s = report.scan.unwrap();
    assert_eq!(s.keys_scanned, 803, "{s:?}");
}

/// Slots moving on the source during the snapshot and after it: keys are read from their
/// new owner (`MOVED`, `ASK` followed), keys moved behind the scan arrive by the
/// importing master's notifications. Ends equal.
#[test]
fn slots_moving_during_scan_mode_converge() {
    let cluster = refusing_cluster();
    let target = Server::start(Flavor::Valkey8_1);
    fill(&mut cluster.connect());
    let rt = runtime();
    let handle = {
        let _g = rt.enter();
        builder(&cluster, &target)
            .limits(Limits::new().source_max_ops(2000))
            .start()
    };
    let masters: Vec<String> = cluster
        .masters()
        .iter()
        .map(|m| m.id().to_string())
        .collect();
    let range = |i: usize| {
        let r = cluster.slots_of(cluster.node(&masters[i]))[0].clone();
        *r.start()..=*r.start() + 300
    };
    wait_phase(&handle, Phase::FullSync);
    cluster.move_slots(range(0), &masters[1]);
    wait_phase(&handle, Phase::Incremental);
    cluster.move_slots(range(2), &masters[0]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let d = diff(&cluster, &target);
        if d.is_empty() {
            break;
        }
        assert!(!handle.is_finished(), "ended before equal");
        assert!(
            Instant::now() < deadline,
            "not equal after 60 s ({} differences): {:?}; {:?}",
            d.len(),
            &d[..d.len().min(5)],
            handle.progress()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    handle.stop();
    let report = rt.block_on(handle.wait()).unwrap();
    assert_eq!(report.failures_total, 0, "{:?}", report.failures);
}
