//! Full-sync ingest throughput against `redis-cli --rdb` on the same server in the same run.
//! Ignored by default (minutes of setup): run with
//!
//! ```sh
//! BENCH_KEYS=1100000 cargo test --release -p replication-client --test bench_full_sync -- --ignored --nocapture
//! ```
//!
//! It prints one line per contender (best of `BENCH_RUNS`, default 3): wall time from the
//! request to the end of the RDB and MB/s. No timing is asserted.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use replication_client::{Event, RdbMode, Replica};
use testkit::{Dataset, Flavor, Server};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn ours(url: &str, mode: RdbMode) -> (Duration, u64, u64) {
    let start = Instant::now();
    let decode = matches!(mode, RdbMode::Decode);
    let mut replica = Replica::connect(config(url).rdb_mode(mode).channel_capacity(1024))
        .await
        .unwrap();
    let (mut keys, mut bytes) = (0u64, 0u64);
    loop {
        match replica.recv().await.unwrap().unwrap() {
            Event::RdbChunk(b) => bytes += b.len() as u64,
            Event::Rdb(batch) => {
                keys += batch
                    .iter()
                    .filter(|e| matches!(e, rdb_parser::Event::KeyStart(_)))
                    .count() as u64;
            }
            Event::RdbEnd { len } => {
                assert!(decode || bytes == len);
                bytes = len;
                break;
            }
            _ => {}
        }
    }
    let t = start.elapsed();
    assert!(!decode || keys > 0);
    (t, bytes, keys)
}

fn redis_cli(flavor: Flavor, port: u16, out: &std::path::Path) -> Duration {
    let start = Instant::now();
    let status = Command::new(flavor.cli_path())
        .args(["-p", &port.to_string(), "--rdb"])
        .arg(out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("redis-cli");
    assert!(status.success());
    start.elapsed()
}

#[test]
#[ignore = "benchmark: minutes of setup; run explicitly"]
fn full_sync_throughput_vs_redis_cli_rdb() {
    let flavor = Flavor::Redis7_0;
    let runs = env("BENCH_RUNS", 3);
    let server = Server::builder(flavor)
        .config("repl-diskless-sync", "yes")
        .config("repl-diskless-sync-delay", "0")
        .start();
    let dataset = Dataset {
        keys: env("BENCH_KEYS", Dataset::bench().keys),
        ..Dataset::bench()
    };
    let fill = Instant::now();
    let stats = dataset.fill(&server);
    eprintln!("filled {} keys in {:?}", stats.keys, fill.elapsed());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cli.rdb");
    let rt = runtime();
    let url = server.url();
    let mut cli = Duration::MAX;
    let (mut raw, mut dec) = (Duration::MAX, Duration::MAX);
    let (mut size, mut keys) = (0, 0);
    for _ in 0..runs {
        cli = cli.min(redis_cli(flavor, server.port(), &out));
        let (t, b, _) = rt.block_on(ours(&url, RdbMode::Raw));
        raw = raw.min(t);
        size = b;
        let (t, _, k) = rt.block_on(ours(&url, RdbMode::Decode));
        dec = dec.min(t);
        keys = k;
    }
    assert_eq!(keys, stats.keys, "every key decoded");
    let cli_size = std::fs::metadata(&out).unwrap().len();
    let mbs = |b: u64, t: Duration| b as f64 / 1e6 / t.as_secs_f64();
    println!("RDB {size} bytes ({cli_size} via redis-cli), {keys} keys, {flavor}, best of {runs}");
    println!(
        "redis-cli --rdb (to file):       {cli:>10.2?}  {:>7.1} MB/s",
        mbs(cli_size, cli)
    );
    println!(
        "replication-client raw chunks:   {raw:>10.2?}  {:>7.1} MB/s  ({:.2}x redis-cli)",
        mbs(size, raw),
        raw.as_secs_f64() / cli.as_secs_f64()
    );
    println!(
        "replication-client decoded keys: {dec:>10.2?}  {:>7.1} MB/s  ({:.2}x redis-cli)",
        mbs(size, dec),
        dec.as_secs_f64() / cli.as_secs_f64()
    );
}
