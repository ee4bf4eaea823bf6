//! `redis-migrate rdb stats FILE`: counts per db and type, bytes per type, the biggest keys;
//! computed by `rdb_parser::stats::Stats` (the zero-copy visitor, element counts read from
//! the values' headers: `rdb_parser::Want::Count`), printed here.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use clap::Args;
use rdb_parser::stats::{Counts, Stats};
use rdb_parser::{Checksum, Options};

use super::rdb::Input;
use crate::error::CliError;

/// Arguments of `rdb stats`.
#[derive(Debug, Args)]
pub(crate) struct StatsArgs {
    /// The RDB file (`-` for stdin).
    file: PathBuf,
    /// How many of the biggest keys to list.
    #[arg(long, value_name = "N", default_value_t = 10)]
    top: usize,
}

impl StatsArgs {
    pub(crate) fn run(self) -> Result<(), CliError> {
        let mut input = Input::open(&self.file, Options::default())?;
        let mut stats = Stats::new(self.top);
        // The statistics never stop the decoder.
        let _ = input
            .reader
            .visit(&mut stats)
            .map_err(|e| CliError::file(&input.path, e))?;
        let header = stats
            .header()
            .map(|h| format!("{:?} RDB version {}", h.family, h.version))
            .unwrap_or_default();
        let aux: Vec<String> = stats
            .aux()
            .iter()
            .map(|a| {
                format!(
                    "{}={}",
                    String::from_utf8_lossy(&a.key),
                    String::from_utf8_lossy(&a.value)
                )
            })
            .collect();
        let (functions, module_aux, eof) = (stats.functions(), stats.module_aux(), stats.eof());
        // Rows sorted by type name, as `TYPE` names them.
        let per_db: BTreeMap<(u32, &'static str), Counts> = stats
            .per_db()
            .into_iter()
            .map(|((db, k), c)| ((db, k.as_str()), c))
            .collect();
        let per_type: BTreeMap<&'static str, Counts> = stats
            .per_type()
            .into_iter()
            .map(|(k, c)| (k.as_str(), c))
            .collect();
        let total = stats.total();
        let top = stats.biggest();
        let mut s = String::new();
        let _ = writeln!(s, "file: {} ({header})", self.file.display());
        if let Some(e) = eof {
            let check = match e.checksum {
                Checksum::Verified(_) => "checksum verified",
                Checksum::Disabled => "checksum disabled",
                Checksum::Absent => "no checksum (RDB < 5)",
                Checksum::Unverified(_) => "checksum not verified",
            };
            let _ = writeln!(s, "size: {} bytes, {check}", e.len);
        }
        if !aux.is_empty() {
            let _ = writeln!(s, "aux: {}", aux.join(" "));
        }
        if functions > 0 || module_aux > 0 {
            let _ = writeln!(
                s,
                "function libraries: {functions}, module aux records: {module_aux}"
            );
        }
        let _ = writeln!(
            s,
            "keys: {} ({} with TTL), {} bytes of key records",
            total.keys, total.with_ttl, total.bytes
        );
        let _ = writeln!(s, "\nper db and type:");
        let _ = writeln!(
            s,
            "  {:>4}  {:<8} {:>10} {:>10} {:>14} {:>12}",
            "db", "type", "keys", "with_ttl", "bytes", "elements"
        );
        for ((db, kind), c) in &per_db {
            let _ = writeln!(
                s,
                "  {db:>4}  {kind:<8} {:>10} {:>10} {:>14} {:>12}",
                c.keys, c.with_ttl, c.bytes, c.elements
            );
        }
        let _ = writeln!(s, "\nper type:");
        let _ = writeln!(
            s,
            "  {:<8} {:>10} {:>14} {:>12} {:>10}",
            "type", "keys", "bytes", "elements", "avg_bytes"
        );
        for (kind, c) in &per_type {
            let _ = writeln!(
                s,
                "  {kind:<8} {:>10} {:>14} {:>12} {:>10}",
                c.keys,
                c.bytes,
                c.elements,
                c.bytes / c.keys.max(1)
            );
        }
        if !top.is_empty() {
            let _ = writeln!(s, "\nbiggest keys:");
            let _ = writeln!(
                s,
                "  {:>4}  {:>4}  {:<8} {:>14} {:>12}  key",
                "rank", "db", "type", "bytes", "elements"
            );
            for (i, k) in top.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "  {:>4}  {:>4}  {:<8} {:>14} {:>12}  {:?}",
                    i + 1,
                    k.db,
                    k.kind.as_str(),
                    k.record_len,
                    k.elements,
                    String::from_utf8_lossy(&k.key)
                );
            }
        }
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(s.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(|e| CliError::output("stdout", e))
    }
}
