//! Command-stream decode throughput of the sans-IO [`Session`]: ~100 MB of `SET` commands
//! (`*3 $3 SET $16 key $64 value`, what a master replicates for plain writes) fed in 64 KiB
//! reads through [`Session::input_buffer`] like the driver does, every event drained.
//! Ignored by default; run with
//!
//! ```sh
//! cargo test --release -p replication-client --test bench_stream -- --ignored --nocapture
//! ```
//!
//! `BENCH_MB` (default 100) and `BENCH_RUNS` (default 5) tune it; the best run is printed, by
//! wall time and by the thread's CPU time (`/proc/thread-self/schedstat`, Linux), which is
//! the steadier figure on a shared machine. No timing is asserted.

use std::time::{Duration, Instant};

use replication_client::{Session, SessionConfig, SessionEvent};

const ID: &str = "0123456789abcdef0123456789abcdef01234567";
const READ: usize = 64 * 1024;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `n` bytes (at least) of `SET key:<12 digits> <64-byte value>` commands, and their count.
fn stream(n: usize) -> (Vec<u8>, u64) {
    let value = "v".repeat(64);
    let mut out = Vec::with_capacity(n + 256);
    let mut count = 0u64;
    while out.len() < n {
        let key = format!("key:{count:012}");
        out.extend_from_slice(
            format!("*3\r\n$3\r\nSET\r\n$16\r\n{key}\r\n$64\r\n{value}\r\n").as_bytes(),
        );
        count += 1;
    }
    (out, count)
}

/// A session in the stream phase (after an empty disk-based RDB).
fn streaming(now: Instant) -> Session {
    let mut s = Session::new(SessionConfig::default(), None, now);
    s.handle_input(
        format!("+PONG\r\n+OK\r\n+OK\r\n+FULLRESYNC {ID} 0\r\n$0\r\n").as_bytes(),
        now,
    )
    .unwrap();
    while s.poll_event().is_some() {}
    while s.poll_transmit().is_some() {}
    s
}

/// Nanoseconds this thread has run on a CPU (`None` where the kernel does not tell).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Wall time and CPU time of decoding `input`.
fn run(input: &[u8], count: u64) -> (Duration, Option<Duration>) {
    let now = Instant::now();
    let mut s = streaming(now);
    let cpu = cpu_time();
    let start = Instant::now();
    let mut commands = 0u64;
    for chunk in input.chunks(READ) {
        s.input_buffer(READ).extend_from_slice(chunk);
        s.process(now).unwrap();
        while let Some(ev) = s.poll_event() {
            if let SessionEvent::Command(c) = ev {
                commands += 1;
                std::hint::black_box(&c.args);
            }
        }
    }
    let t = start.elapsed();
    let cpu = cpu.zip(cpu_time()).map(|(a, b)| b - a);
    assert_eq!(commands, count);
    assert_eq!(s.offset(), input.len() as u64);
    (t, cpu)
}

#[test]
#[ignore = "benchmark: run explicitly with --release"]
fn command_stream_decode_throughput() {
    let mb = env("BENCH_MB", 100);
    let runs = env("BENCH_RUNS", 5);
    let (input, count) = stream(mb as usize * 1_000_000);
    let times: Vec<_> = (0..runs).map(|_| run(&input, count)).collect();
    let rate = |t: Duration| {
        let secs = t.as_secs_f64();
        format!(
            "{t:>8.2?}  {:>5.0} MB/s  {:.2} M commands/s",
            input.len() as f64 / 1e6 / secs,
            count as f64 / 1e6 / secs
        )
    };
    println!(
        "command stream: {} bytes, {count} SET commands in 64 KiB reads, best of {runs}",
        input.len()
    );
    let wall = times.iter().map(|t| t.0).min().unwrap();
    println!("  wall: {}", rate(wall));
    if let Some(cpu) = times.iter().filter_map(|t| t.1).min() {
        println!("  cpu:  {}", rate(cpu));
    }
}
