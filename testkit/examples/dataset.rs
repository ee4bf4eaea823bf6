//! Fills a server with a dataset, saves it, and prints what was written: the RDB file's
//! size and the count of keys per type and encoding.
//!
//! `cargo run --release -p testkit --example dataset -- [small|bench] [flavor] [OUT.rdb]`
//! (flavor: redis-6.2, redis-7.0, redis-7.4, valkey-8.1, valkey-9.1; default bench, redis-7.0).
//! With OUT the RDB file is copied there, e.g. to produce the benchmark input.

use std::collections::BTreeMap;
use std::time::Instant;

use testkit::{Dataset, Flavor, Reply, Server};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dataset = match args.first().map(String::as_str) {
        Some("small") => Dataset::small(),
        _ => Dataset::bench(),
    };
    let flavor = match args.get(1).map(String::as_str) {
        Some("redis-6.2") => Flavor::Redis6_2,
        Some("redis-7.4") => Flavor::Redis7_4,
        Some("valkey-8.1") => Flavor::Valkey8_1,
        Some("valkey-9.1") => Flavor::Valkey9_1,
        _ => Flavor::Redis7_0,
    };
    let server = Server::start(flavor);
    let started = Instant::now();
    let stats = dataset.fill(&server);
    let filled = started.elapsed();
    let rdb = server.save();
    println!(
        "{flavor}: {} keys ({} with TTL, {} commands) in {:.1?}; RDB {} bytes ({:.1} MB)",
        stats.keys,
        stats.with_ttl,
        stats.commands,
        filled,
        rdb.len(),
        rdb.len() as f64 / 1e6
    );
    if let Some(out) = args.get(2) {
        std::fs::write(out, &rdb).expect("cannot write the RDB copy");
        println!("wrote {out}");
    }
    // Encodings of a sample of keys (all of them for the small dataset).
    let mut conn = server.connect();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for db in 0..dataset.dbs {
        conn.ok(["SELECT".to_string(), db.to_string()]);
        let Reply::Array(mut scan) = conn.must(["SCAN", "0", "COUNT", "20000"]) else {
            continue;
        };
        let Some(Reply::Array(keys)) = scan.pop() else {
            continue;
        };
        for key in keys {
            let key = key.as_bytes().unwrap_or_default().to_vec();
            let ty = conn.must([b"TYPE".as_slice(), &key]).text();
            let enc = conn.must([b"OBJECT".as_slice(), b"ENCODING", &key]).text();
            *counts.entry(format!("{ty}/{enc}")).or_default() += 1;
        }
    }
    for (k, n) in counts {
        println!("  {k:<22} {n}");
    }
}
