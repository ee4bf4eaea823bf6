//! RDB decoding: our `rdb-parser` against the `rdb` crate and `redis-check-rdb`, in the
//! same run, on the same file.
//!
//! ```text
//! cargo run --release -p benches --bin rdb-compare -- all FILE [RUNS]
//! ```
//!
//! Each contender runs as its own process under GNU `time`, so wall time and peak RSS are
//! measured the same way for all; RUNS rounds (default 3) run every contender once each, and
//! the best run of each is reported. The `visit`
//! (zero-copy `Visitor`), `ours` (owned `Event` iterator), their `-raw` variants (also every
//! key's raw value for RESTORE), `pass-through` (the raw pass-through of `import`: every
//! key's raw value, no value decoded) and `rdb-crate` modes decode FILE once and print what
//! they counted; `gen-mixed FILE [KEYS]` writes [`benches::mixed_rdb`] to FILE.
//!
//! Produce a benchmark file with the dataset example:
//! `cargo run --release -p testkit --example dataset -- bench redis-7.0 /tmp/bench.rdb`.

use std::fs::File;
use std::io::BufReader;
use std::ops::ControlFlow;
use std::process::{exit, Command};
use std::time::Instant;

use rdb_parser::{Event, Item, KeyRef, Options, RdbReader, StreamId, Visitor};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, file) = match (args.first(), args.get(1)) {
        (Some(m), Some(f)) => (m.as_str(), f.as_str()),
        _ => usage(),
    };
    match mode {
        "ours" => ours(file),
        "ours-raw" => ours_raw(file),
        "visit" => visit(file, Options::default()),
        "visit-raw" => visit(file, Options::default().raw_values(true)),
        "pass-through" => pass_through(file),
        "gen-mixed" => {
            let keys = args.get(2).and_then(|k| k.parse().ok()).unwrap_or(20_000);
            std::fs::write(file, benches::mixed_rdb(keys)).unwrap_or_else(|e| fail(file, e));
        }
        "rdb-crate" => rdb_crate(file),
        "all" => all(file, args.get(2).and_then(|r| r.parse().ok()).unwrap_or(3)),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: rdb-compare visit|visit-raw|pass-through|ours|ours-raw|rdb-crate|all FILE [RUNS]\n       rdb-compare gen-mixed FILE [KEYS]"
    );
    exit(2)
}

/// Decodes every key, value and stream/module part; counts keys and value items.
fn ours(file: &str) {
    decode(file, Options::default());
}

/// Same, also producing the raw serialized value of every key (what RESTORE needs).
fn ours_raw(file: &str) {
    decode(file, Options::default().raw_values(true));
}

fn decode(file: &str, opts: Options) {
    let started = Instant::now();
    let f = File::open(file).unwrap_or_else(|e| fail(file, e));
    let (mut keys, mut items) = (0u64, 0u64);
    for event in RdbReader::new(f, opts) {
        match event.unwrap_or_else(|e| fail(file, e)) {
            Event::KeyStart(_) => keys += 1,
            Event::ListItems(v) | Event::SetMembers(v) => items += v.len() as u64,
            Event::ZSetEntries(v) => items += v.len() as u64,
            Event::HashEntries(v) => items += v.len() as u64,
            Event::StreamEntries(v) => items += v.len() as u64,
            _ => {}
        }
    }
    println!(
        "ours: {keys} keys, {items} items in {:.3}s",
        started.elapsed().as_secs_f64()
    );
}

/// Counts what a [`Visitor`] receives: every key, element, score and stream entry, and the
/// bytes of the string items (an integer item counts as 8).
#[derive(Default)]
struct Counter {
    keys: u64,
    items: u64,
    bytes: u64,
}

fn size(i: Item<'_>) -> u64 {
    match i {
        Item::Bytes(b) => b.len() as u64,
        _ => 8,
    }
}

impl Visitor for Counter {
    fn key_start(&mut self, _key: &KeyRef<'_>) -> ControlFlow<()> {
        self.keys += 1;
        ControlFlow::Continue(())
    }
    fn string(&mut self, piece: Item<'_>) -> ControlFlow<()> {
        self.bytes += size(piece);
        ControlFlow::Continue(())
    }
    fn list_item(&mut self, item: Item<'_>) -> ControlFlow<()> {
        self.items += 1;
        self.bytes += size(item);
        ControlFlow::Continue(())
    }
    fn set_member(&mut self, member: Item<'_>) -> ControlFlow<()> {
        self.items += 1;
        self.bytes += size(member);
        ControlFlow::Continue(())
    }
    fn zset_entry(&mut self, member: Item<'_>, score: f64) -> ControlFlow<()> {
        self.items += 1;
        self.bytes += size(member) + u64::from(score.is_nan());
        ControlFlow::Continue(())
    }
    fn hash_entry(
        &mut self,
        field: Item<'_>,
        value: Item<'_>,
        _ttl: Option<u64>,
    ) -> ControlFlow<()> {
        self.items += 1;
        self.bytes += size(field) + size(value);
        ControlFlow::Continue(())
    }
    fn stream_entry(&mut self, _id: StreamId, fields: &[(Item<'_>, Item<'_>)]) -> ControlFlow<()> {
        self.items += 1;
        self.bytes += fields.iter().map(|(f, v)| size(*f) + size(*v)).sum::<u64>();
        ControlFlow::Continue(())
    }
    fn raw_value(&mut self, piece: &[u8]) -> ControlFlow<()> {
        self.bytes += piece.len() as u64;
        ControlFlow::Continue(())
    }
}

/// Decodes every key and value through the zero-copy [`Visitor`] API.
fn visit(file: &str, opts: Options) {
    let started = Instant::now();
    let f = File::open(file).unwrap_or_else(|e| fail(file, e));
    let mut c = Counter::default();
    let _ = RdbReader::new(f, opts)
        .visit(&mut c)
        .unwrap_or_else(|e| fail(file, e));
    println!(
        "ours (visitor): {} keys, {} items, {} bytes in {:.3}s",
        c.keys,
        c.items,
        c.bytes,
        started.elapsed().as_secs_f64()
    );
}

/// Counts keys and raw value bytes; declines every key's items (raw pass-through).
#[derive(Default)]
struct RawOnly {
    keys: u64,
    bytes: u64,
}

impl Visitor for RawOnly {
    fn key_start(&mut self, _key: &KeyRef<'_>) -> ControlFlow<()> {
        self.keys += 1;
        ControlFlow::Continue(())
    }
    fn wants_items(&mut self, _value_len: u64) -> bool {
        false
    }
    fn raw_value(&mut self, piece: &[u8]) -> ControlFlow<()> {
        self.bytes += piece.len() as u64;
        ControlFlow::Continue(())
    }
}

/// The raw pass-through of `import` and the full sync: raw values only, nothing decoded
/// (keys cut by a buffer boundary still go through the state machine).
fn pass_through(file: &str) {
    let started = Instant::now();
    let f = File::open(file).unwrap_or_else(|e| fail(file, e));
    let mut c = RawOnly::default();
    let _ = RdbReader::new(f, Options::default().raw_values(true))
        .visit(&mut c)
        .unwrap_or_else(|e| fail(file, e));
    println!(
        "ours (pass-through): {} keys, {} raw bytes in {:.3}s",
        c.keys,
        c.bytes,
        started.elapsed().as_secs_f64()
    );
}

/// The peer: `rdb` 0.4's decoder with no output (it skips streams and modules).
fn rdb_crate(file: &str) {
    let started = Instant::now();
    let f = BufReader::with_capacity(
        64 * 1024,
        File::open(file).unwrap_or_else(|e| fail(file, e)),
    );
    let decoder =
        rdb::RdbDecoder::new(f, rdb::filter::Simple::new()).unwrap_or_else(|e| fail(file, e));
    let mut values = 0u64;
    for value in decoder {
        value.unwrap_or_else(|e| fail(file, e));
        values += 1;
    }
    println!(
        "rdb crate: {values} values in {:.3}s",
        started.elapsed().as_secs_f64()
    );
}

fn fail(file: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("rdb-compare: {file}: {e}");
    exit(1)
}

/// Best wall time (s), best CPU time (user + sys, s) and peak RSS (KiB) of `runs` runs of
/// `cmd` under GNU time. CPU time is the steadier figure on a shared machine.
fn measure(cmd: &[String], runs: u32) -> Option<(f64, f64, u64)> {
    let mut best: Option<(f64, f64, u64)> = None;
    for _ in 0..runs {
        let out = Command::new("/usr/bin/time")
            .args(["-f", "@@%e %U %S %M"])
            .args(cmd)
            .output()
            .ok()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            eprintln!("{} failed: {stderr}", cmd.join(" "));
            return None;
        }
        let line = stderr.lines().rev().find(|l| l.starts_with("@@"))?;
        let mut parts = line[2..].split_whitespace();
        let secs: f64 = parts.next()?.parse().ok()?;
        let user: f64 = parts.next()?.parse().ok()?;
        let sys: f64 = parts.next()?.parse().ok()?;
        let rss: u64 = parts.next()?.parse().ok()?;
        let cpu = user + sys;
        let stdout = String::from_utf8_lossy(&out.stdout);
        eprintln!(
            "  {} -> {secs:.2}s wall {cpu:.2}s cpu {rss} KiB {}",
            cmd[0],
            stdout.trim()
        );
        best = Some(match best {
            Some((s, c, r)) => (s.min(secs), c.min(cpu), r.max(rss)),
            None => (secs, cpu, rss),
        });
    }
    best
}

fn all(file: &str, runs: u32) {
    let me = std::env::current_exe()
        .expect("own path")
        .display()
        .to_string();
    let size = std::fs::metadata(file)
        .unwrap_or_else(|e| fail(file, e))
        .len() as f64;
    let check_rdb = which("redis-check-rdb").unwrap_or_else(|| "redis-check-rdb".into());
    let contenders: Vec<(&str, Vec<String>)> = vec![
        (
            "rdb-parser (ours), zero-copy `Visitor`, every type decoded",
            vec![me.clone(), "visit".into(), file.into()],
        ),
        (
            "rdb-parser (ours), `Visitor` + raw values for RESTORE",
            vec![me.clone(), "visit-raw".into(), file.into()],
        ),
        (
            "rdb-parser (ours), owned `Event` iterator",
            vec![me.clone(), "ours".into(), file.into()],
        ),
        (
            "rdb-parser (ours), `Event` iterator + raw values",
            vec![me.clone(), "ours-raw".into(), file.into()],
        ),
        (
            "`rdb` crate 0.4 (skips streams/modules)",
            vec![me, "rdb-crate".into(), file.into()],
        ),
        (
            "`redis-check-rdb` (decode + verify)",
            vec![check_rdb, file.into()],
        ),
    ];
    // Round-robin: each round runs every contender once, so that a drift in the machine's
    // speed (a shared VM) touches all of them alike; the best run of each is kept.
    let mut best: Vec<Option<(f64, f64, u64)>> = vec![None; contenders.len()];
    for round in 0..runs {
        for (i, (name, cmd)) in contenders.iter().enumerate() {
            eprintln!("round {}: {name}:", round + 1);
            let m = measure(cmd, 1);
            best[i] = match (best[i], m) {
                (Some((s, c, r)), Some((s2, c2, r2))) => Some((s.min(s2), c.min(c2), r.max(r2))),
                (a, b) => a.or(b),
            };
        }
    }
    let rows: Vec<_> = contenders.iter().map(|(n, _)| n).zip(best).collect();
    let base = rows.get(4).and_then(|r| r.1);
    println!(
        "\nFile: {file} ({:.1} MB), best of {runs} runs\n",
        size / 1e6
    );
    println!("| decoder | wall time | throughput | vs `rdb` crate (wall) | CPU time | vs `rdb` crate (CPU) | peak RSS |");
    println!("|---|---|---|---|---|---|---|");
    for (name, m) in rows {
        match m {
            Some((secs, cpu, rss)) => println!(
                "| {name} | {secs:.2} s | {:.0} MB/s | {} | {cpu:.2} s | {} | {:.1} MB |",
                size / 1e6 / secs,
                base.map(|(b, _, _)| format!("{:.2}×", b / secs))
                    .unwrap_or_default(),
                base.map(|(_, c, _)| format!("{:.2}×", c / cpu))
                    .unwrap_or_default(),
                rss as f64 / 1024.0,
            ),
            None => println!("| {name} | failed | | | | | |"),
        }
    }
}

fn which(name: &str) -> Option<String> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| format!("{d}/{name}"))
        .find(|p| std::path::Path::new(p).is_file())
}
