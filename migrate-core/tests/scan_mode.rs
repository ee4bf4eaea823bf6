//! Scan mode (issue 14) against real servers: sources whose user may not replicate, copied
//! by `SCAN` + `DUMP` and kept in sync through keyspace notifications, under a writer
//! across several dbs (a `FLUSHDB` included), with the subscription killed mid-run, and
//! with load caps.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use migrate_core::migrate::{
    Limits, Migration, MigrationBuilder, MigrationHandle, Phase, Report, ScanOptions, Source,
    SourceMode, StopReason, TargetConfig,
};
use testkit::{Conn, Dataset, Flavor, Server, Snapshot};

const TTL_TOLERANCE_MS: i64 = 1000;
const DBS: u32 = 4;

/// A source whose user may do everything but replicate (as on managed services).
fn refusing_source(flavor: Flavor) -> Server {
    Server::builder(flavor)
        .config("user", "app on >pw ~* &* +@all -sync -psync")
        .login("app", "pw")
        .start()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn builder(source: &Server, target: &Server) -> MigrationBuilder {
    Migration::builder()
        .source(Source::Live(
            replication_client::Config::new(&source.url()).unwrap(),
        ))
        .target(TargetConfig::parse(&target.url()).unwrap())
        .source_mode(SourceMode::Auto)
        .scan_options(
            ScanOptions::default()
                .count(100)
                .set_notify_keyspace_events(true)
                .reconcile_interval(Duration::from_millis(300)),
        )
}

/// Writes to dbs 0..DBS until `stop`: strings, counters, lists, hashes, sets, TTLs,
/// deletes, and one `FLUSHDB` of db 2 midway (usually during the snapshot).
fn writer(mut conn: Conn, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut i = 0u64;
        while !stop.load(Ordering::Relaxed) || i < 1500 {
            let db = (i % u64::from(DBS)).to_string();
            conn.ok(["SELECT", &db]);
            let k = format!("w:{}", i % 97);
            match i % 7 {
                0 => conn.ok(["SET", &k, &format!("v{i}")]),
                1 => {
                    conn.must(["INCR", &format!("counter:{}", i % 5)]);
                }
                2 => {
                    conn.must(["RPUSH", &format!("list:{}", i % 11), &i.to_string()]);
                }
                3 => {
                    conn.must([
                        "HSET",
                        &format!("hash:{}", i % 13),
                        &format!("f{}", i % 17),
                        &i.to_string(),
                    ]);
                }
                4 => {
                    conn.must(["SADD", &format!("set:{}", i % 7), &i.to_string()]);
                }
                5 => {
                    conn.must(["PEXPIRE", &k, "600000"]);
                }
                _ => {
                    conn.must(["DEL", &format!("w:{}", (i / 7) % 97)]);
                }
            }
            if i == 700 {
                conn.ok(["SELECT", "2"]);
                conn.ok(["FLUSHDB"]);
            }
            i += 1;
            if i % 50 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        i
    })
}

/// Waits until the target equals the source key by key (the writer has stopped).
fn wait_equal(handle: &MigrationHandle, source: &Server, target: &Server) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let want = Snapshot::take(source, DBS);
        let got = Snapshot::take(target, DBS);
        let diff = want.diff(&got, TTL_TOLERANCE_MS);
        if diff.is_empty() {
            return;
        }
        assert!(
            !handle.is_finished(),
            "the migration ended before the target was equal"
        );
        assert!(
            Instant::now() < deadline,
            "not equal after 90 s ({} differences), first: {:?}; progress {:?}",
            diff.len(),
            &diff[..diff.len().min(5)],
            handle.progress()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn wait_phase(handle: &MigrationHandle, phase: Phase) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while handle.progress().phase != phase {
        assert!(!handle.is_finished(), "ended before {phase:?}");
        assert!(Instant::now() < deadline, "no {phase:?} within 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The whole scenario: a filled source, a writer during the copy, equality after it
/// stops. `kill` kills the subscription mid-run.
fn converges(from: Flavor, to: Flavor, kill: bool) -> Report {
    let source = refusing_source(from);
    let target = Server::start(to);
    Dataset::small_for(from).fill(&source);
    let rt = runtime();
    let handle = {
        let _g = rt.enter();
        // Capped so that the snapshot is still running when the writer starts.
        builder(&source, &target)
            .limits(Limits::new().source_max_ops(4000))
            .start()
    };
    let stop = Arc::new(AtomicBool::new(false));
    // Writes start while the snapshot runs.
    wait_phase(&handle, Phase::FullSync);
    let w = writer(source.connect(), stop.clone());
    // After the snapshot: a FLUSHDB raises no notification; only a reconcile pass can
    // remove db 1's old keys from the target.
    wait_phase(&handle, Phase::Incremental);
    let mut c = source.connect();
    c.ok(["SELECT", "1"]);
    c.ok(["FLUSHDB"]);
    if kill {
        std::thread::sleep(Duration::from_millis(200));
        let killed = source.connect().int(["CLIENT", "KILL", "TYPE", "pubsub"]);
        assert!(killed >= 1, "no subscription to kill");
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let written = w.join().unwrap();
    assert!(written >= 1500);
    wait_equal(&handle, &source, &target);
    handle.stop();
    let report = rt.block_on(handle.wait()).unwrap();
    assert_eq!(report.stop_reason, StopReason::Stopped);
    assert_eq!(report.source_mode, "scan");
    let why = report.source_mode_reason.clone().unwrap_or_default();
    assert!(
        why.contains("NOPERM") || why.contains("permission"),
        "{why}"
    );
    let s = report.scan.clone().unwrap();
    assert!(
        s.tracking && s.keys_copied > 0 && s.keys_recopied > 0,
        "{s:?}"
    );
    assert_eq!(report.failures_total, 0, "{:?}", report.failures);
    report
}

#[test]
fn refused_replication_redis_7_0_into_valkey_8_1_converges() {
    let report = converges(Flavor::Redis7_0, Flavor::Valkey8_1, false);
    let s = report.scan.clone().unwrap();
    // FLUSHDB raises no notification: a reconcile pass removed db 1's keys.
    assert!(s.reconcile_passes >= 1 && s.keys_reconciled > 0, "{s:?}");
    assert!(report.to_json().contains("\"source_mode\": \"scan\""));
}

#[test]
fn valkey_9_1_into_redis_7_0_rewrites_what_the_target_cannot_load() {
    let report = converges(Flavor::Valkey9_1, Flavor::Redis7_0, false);
    // Set listpacks (type 20), Valkey's own types: written as commands.
    assert!(report.keys_rewritten > 0, "{report:?}");
    assert!(report.keys_restored > 0, "{report:?}");
}

#[test]
fn a_killed_subscription_still_converges() {
    let report = converges(Flavor::Redis7_0, Flavor::Redis7_0, true);
    let s = report.scan.unwrap();
    assert!(s.resubscriptions >= 1 && s.reconcile_passes >= 1, "{s:?}");
}

#[test]
fn notifications_off_stop_with_the_setting_unless_once() {
    let source = refusing_source(Flavor::Valkey8_1);
    let target = Server::start(Flavor::Valkey8_1);
    source.connect().ok(["SET", "k", "v"]);
    let rt = runtime();
    let plain = || {
        Migration::builder()
            .source(Source::Live(
                replication_client::Config::new(&source.url()).unwrap(),
            ))
            .target(TargetConfig::parse(&target.url()).unwrap())
            .source_mode(SourceMode::Auto)
    };
    let err = rt
        .block_on(async { plain().start().wait().await })
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("notify-keyspace-events")
            && err.contains("KEA")
            && err.contains("parameter group"),
        "{err}"
    );
    assert_eq!(target.connect().int(["DBSIZE"]), 0);
    // A snapshot is enough: copied, and the report says changes were not tracked.
    let report = rt
        .block_on(async { plain().once(true).start().wait().await })
        .unwrap();
    assert_eq!(report.stop_reason, StopReason::CaughtUp);
    assert!(!report.scan.as_ref().unwrap().tracking);
    assert!(report
        .warnings
        .iter()
        .any(|w| w.contains("without change tracking")));
    assert_eq!(
        target.connect().bulk(["GET", "k"]).as_deref(),
        Some(&b"v"[..])
    );
    // Psync mode keeps the old error.
    let err = rt
        .block_on(async {
            plain()
                .source_mode(SourceMode::Psync)
                .on_conflict(migrate_core::migrate::Conflict::Replace)
                .once(true)
                .start()
                .wait()
                .await
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("import"), "{err}");
}

#[test]
fn once_copies_a_snapshot_with_big_keys_in_pieces() {
    let source = refusing_source(Flavor::Valkey9_1);
    let target = Server::start(Flavor::Redis7_0);
    Dataset::small_for(Flavor::Valkey9_1).fill(&source);
    let mut c = source.connect();
    for i in 0..20 {
        let fields: Vec<String> = (0..250)
            .flat_map(|j| [format!("f{}", i * 250 + j), "x".repeat(40)])
            .collect();
        let mut args = vec!["HSET".to_string(), "bighash".into()];
        args.extend(fields);
        c.must(args);
        let members: Vec<String> = (0..250).map(|j| format!("m{}", i * 250 + j)).collect();
        let mut z = vec!["ZADD".to_string(), "bigzset".into()];
        for (j, m) in members.iter().enumerate() {
            z.push(format!("{}.5", j));
            z.push(m.clone());
        }
        c.must(z);
        let mut l = vec!["RPUSH".to_string(), "biglist".into()];
        l.extend(members.clone());
        c.must(l);
        let mut s = vec!["SADD".to_string(), "bigset".into()];
        s.extend(members);
        c.must(s);
    }
    c.ok(["SET", "bigstring", &"s".repeat(300_000)]);
    c.must(["PEXPIRE", "bighash", "500000"]);
    let report = runtime()
        .block_on(async {
            builder(&source, &target)
                .big_key_bytes(64 << 10)
                .scan_options(
                    ScanOptions::default()
                        .count(50)
                        .chunk_elements(300)
                        .set_notify_keyspace_events(true),
                )
                .rewrite_options(
                    migrate_core::rewrite::RewriteOptions::default().max_command_bytes(64 << 10),
                )
                .once(true)
                .start()
                .wait()
                .await
        })
        .unwrap();
    assert_eq!(report.stop_reason, StopReason::CaughtUp);
    Snapshot::take(&source, 3).assert_same(&Snapshot::take(&target, 3), TTL_TOLERANCE_MS);
    assert_eq!(target.connect().int(["HLEN", "bighash"]), 5000);
}

/// Commands per second between two `INFO stats` readings.
fn commands_processed(conn: &mut Conn) -> u64 {
    conn.info_field("stats", "total_commands_processed")
        .unwrap()
        .parse()
        .unwrap()
}

fn net_output(conn: &mut Conn) -> u64 {
    conn.info_field("stats", "total_net_output_bytes")
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn rate_caps_hold() {
    let source = refusing_source(Flavor::Redis7_0);
    let target = Server::start(Flavor::Valkey8_1);
    let mut c = source.connect();
    c.ok(["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    // Values LZF cannot shrink, so that DUMP payloads are as big as the values.
    let mut x: u64 = 7;
    let mut value = || {
        (0..25)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                format!("{:08x}", x >> 32)
            })
            .collect::<String>()
    };
    for chunk in 0..40 {
        let mut args = vec!["MSET".to_string()];
        for i in 0..100 {
            args.push(format!("k{}", chunk * 100 + i));
            args.push(value());
        }
        c.ok(args);
    }
    let rt = runtime();
    let mut measured = Vec::new();
    for (name, limits) in [
        ("source-max-ops", Limits::new().source_max_ops(2000)),
        ("max-bandwidth", Limits::new().max_bandwidth(200_000)),
        ("target-max-ops", Limits::new().target_max_ops(1000)),
    ] {
        let target = Server::start(Flavor::Valkey8_1);
        let mut s = source.connect();
        let mut t = target.connect();
        let (s0, b0, t0) = (
            commands_processed(&mut s),
            net_output(&mut s),
            commands_processed(&mut t),
        );
        let started = Instant::now();
        let report = rt
            .block_on(async {
                builder(&source, &target)
                    .limits(limits)
                    .once(true)
                    .start()
                    .wait()
                    .await
            })
            .unwrap();
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(report.stop_reason, StopReason::CaughtUp);
        let (s1, b1, t1) = (
            commands_processed(&mut s),
            net_output(&mut s),
            commands_processed(&mut t),
        );
        let (rate, cap) = match name {
            "source-max-ops" => ((s1 - s0) as f64 / secs, 2000.0),
            "max-bandwidth" => ((b1 - b0) as f64 / secs, 200_000.0),
            _ => ((t1 - t0) as f64 / secs, 1000.0),
        };
        eprintln!("{name}: {rate:.0}/s over {secs:.2} s (cap {cap})");
        measured.push((name, rate, cap, secs));
        assert!(secs >= 2.0, "{name}: too fast to be capped: {secs} s");
        assert!(
            rate <= cap * 1.1,
            "{name}: {rate:.0}/s exceeds the cap {cap} by more than 10%"
        );
        assert_eq!(Snapshot::take(&target, 1).len(), 4000);
    }
    let _ = target;
    eprintln!("measured: {measured:?}");
}

/// The other way servers forbid replication: `PSYNC` and `SYNC` renamed away
/// (`rename-command`, as some hosted services do). `PSYNC` then answers "unknown command";
/// the plain migration notices, says why, and copies in scan mode.
#[test]
fn renamed_psync_falls_back_to_scan_mode() {
    let source = Server::builder(Flavor::Redis7_0)
        .arg("--rename-command")
        .arg("PSYNC")
        .arg("")
        .arg("--rename-command")
        .arg("SYNC")
        .arg("")
        .start();
    Dataset::small().fill(&source);
    let target = Server::start(Flavor::Valkey8_1);
    let rt = runtime();
    let handle = {
        let _guard = rt.enter();
        builder(&source, &target).start()
    };
    wait_equal(&handle, &source, &target);
    handle.stop();
    let report = rt.block_on(handle.wait()).unwrap();
    assert_eq!(report.source_mode, "scan", "{report:?}");
    let reason = report.source_mode_reason.clone().unwrap_or_default();
    assert!(reason.to_lowercase().contains("unknown"), "{reason}");
}
