//! Sizes per type and the biggest keys of an RDB file, on the zero-copy visitor
//! (`rdb_parser::stats::Stats`): what `redis-migrate rdb stats` prints, as a library call.
//!
//! ```text
//! cargo run -p rdb-parser --example rdb_report -- dump.rdb [TOP]
//! ```

use std::fmt::Write as _;

use rdb_parser::stats::Stats;
use rdb_parser::Options;

/// The report for the RDB stream `reader`: one line per type, then the `top` biggest keys.
pub fn report(reader: impl std::io::Read, top: usize) -> Result<String, rdb_parser::Error> {
    let stats = Stats::from_reader(reader, Options::default(), top)?;
    let mut out = String::new();
    let total = stats.total();
    let _ = writeln!(
        out,
        "{} keys, {} bytes of key records",
        total.keys, total.bytes
    );
    for (kind, c) in stats.per_type() {
        let _ = writeln!(
            out,
            "{:<10} {:>10} keys {:>14} bytes {:>12} elements",
            kind.as_str(),
            c.keys,
            c.bytes,
            c.elements
        );
    }
    for (rank, k) in stats.biggest().iter().enumerate() {
        let _ = writeln!(
            out,
            "#{:<3} db {:<3} {:<8} {:>12} bytes  {}",
            rank + 1,
            k.db,
            k.kind.as_str(),
            k.record_len,
            String::from_utf8_lossy(&k.key)
        );
    }
    Ok(out)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: rdb_report FILE [TOP]")?;
    let top = args.next().map(|t| t.parse()).transpose()?.unwrap_or(10);
    let file = std::io::BufReader::new(std::fs::File::open(&path)?);
    print!("{}", report(file, top)?);
    Ok(())
}
