//! What the real-server tests of migrate-core share: a runtime, a source that starts its
//! full syncs at once, builders for a live migration, and waits on a running one.
#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use migrate_core::migrate::{
    Migration, MigrationBuilder, MigrationError, MigrationHandle, Phase, Report, Source,
    TargetConfig,
};
use testkit::{Conn, Flavor, Server};

/// Snapshots read expiries as `now + PTTL` when each key is read.
pub const TTL_TOLERANCE_MS: i64 = 1000;

/// A two-worker runtime (tests block on testkit connections on their own thread).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A source server that starts full syncs at once (the 5 s diskless delay would dominate
/// the run time).
pub fn source_server(flavor: Flavor) -> Server {
    Server::builder(flavor)
        .config("repl-diskless-sync-delay", "0")
        .start()
}

/// A live migration from `source` into `target`, every other setting at its default.
pub fn live(source: &Server, target: &Server) -> MigrationBuilder {
    let config = replication_client::Config::new(&source.url()).unwrap();
    Migration::builder()
        .source(Source::Live(config))
        .target(TargetConfig::parse(&target.url()).unwrap())
}

/// Runs `b` with `once(true)` to its end.
pub fn run_once(b: MigrationBuilder) -> (Report, Result<(), MigrationError>) {
    runtime().block_on(async { b.once(true).start().finish().await })
}

/// A numeric `INFO` field.
pub fn info_u64(conn: &mut Conn, section: &str, field: &str) -> u64 {
    conn.info_field(section, field)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("INFO {section} has no number {field}"))
}

/// The source's `master_repl_offset`.
pub fn master_offset(conn: &mut Conn) -> u64 {
    info_u64(conn, "replication", "master_repl_offset")
}

/// Waits (30 s at most) until the migration is in `phase`.
pub fn wait_for_phase(handle: &MigrationHandle, phase: Phase) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while handle.progress().phase != phase {
        assert!(
            !handle.is_finished(),
            "ended early: {:?}",
            handle.progress()
        );
        assert!(Instant::now() < deadline, "{:?}", handle.progress());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (30 s at most) until the migration applied everything the source has written.
pub fn wait_caught_up(handle: &MigrationHandle, source: &mut Conn) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let want = master_offset(source);
        let p = handle.progress();
        if p.phase == Phase::Incremental && p.applied_offset >= want {
            return;
        }
        assert!(
            !handle.is_finished(),
            "the migration ended early: {:?}",
            handle.progress()
        );
        assert!(
            Instant::now() < deadline,
            "not caught up: source at {want}, {p:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// No failed write and nothing unsupported.
pub fn clean(report: &Report, what: &str) {
    assert_eq!(report.failures_total, 0, "{what}: {:?}", report.failures);
    assert_eq!(
        report.unsupported_total, 0,
        "{what}: {:?}",
        report.unsupported
    );
}
