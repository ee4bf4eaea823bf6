//! `redis-migrate rdb stats FILE`: counts per db and type, bytes per type, the biggest keys.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use clap::Args;
use rdb_parser::{Checksum, Event, Options};

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

/// Counts of one (db, type) or one type.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    keys: u64,
    with_ttl: u64,
    bytes: u64,
    elements: u64,
}

impl Counts {
    fn add(&mut self, k: &KeySize) {
        self.keys += 1;
        self.with_ttl += u64::from(k.ttl);
        self.bytes += k.bytes;
        self.elements += k.elements;
    }
}

/// One key's footprint: its record in the file (expiry and other prefixes, type byte, key
/// and value), from the decoder's offsets.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct KeySize {
    bytes: u64,
    db: u32,
    key: Vec<u8>,
    kind: &'static str,
    elements: u64,
    ttl: bool,
}

impl StatsArgs {
    pub(crate) fn run(self) -> Result<(), CliError> {
        let mut input = Input::open(&self.file, Options::default())?;
        let mut per_db: BTreeMap<(u32, &'static str), Counts> = BTreeMap::new();
        let mut per_type: BTreeMap<&'static str, Counts> = BTreeMap::new();
        let mut top: BinaryHeap<Reverse<KeySize>> = BinaryHeap::new();
        let mut header = String::new();
        let mut aux = Vec::new();
        let mut functions = 0u64;
        let mut module_aux = 0u64;
        let mut eof = None;
        // Offset at the end of the last event outside a key: where the next key record starts.
        let mut mark = 0u64;
        let mut cur: Option<KeySize> = None;
        while let Some(ev) = input.next_event()? {
            let offset = input.offset();
            match &ev {
                Event::Header(h) => {
                    header = format!("{:?} RDB version {}", h.family, h.version);
                }
                Event::Aux(a) => aux.push(format!(
                    "{}={}",
                    String::from_utf8_lossy(&a.key),
                    String::from_utf8_lossy(&a.value)
                )),
                Event::Function(_) => functions += 1,
                Event::ModuleAux(_) => module_aux += 1,
                Event::Eof(e) => eof = Some(*e),
                Event::KeyStart(k) => {
                    cur = Some(KeySize {
                        bytes: mark,
                        db: k.db,
                        key: k.key.to_vec(),
                        kind: k.kind().as_str(),
                        elements: 0,
                        ttl: k.expire_at_ms.is_some(),
                    });
                }
                Event::KeyEnd => {
                    if let Some(mut k) = cur.take() {
                        k.bytes = offset - k.bytes;
                        per_db.entry((k.db, k.kind)).or_default().add(&k);
                        per_type.entry(k.kind).or_default().add(&k);
                        if self.top > 0 {
                            top.push(Reverse(k));
                            if top.len() > self.top {
                                top.pop();
                            }
                        }
                    }
                }
                ev => {
                    if let Some(c) = &mut cur {
                        c.elements += elements(ev);
                    }
                }
            }
            if cur.is_none() {
                mark = offset;
            }
        }
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
        let total = per_type.values().fold(Counts::default(), |mut a, c| {
            a.keys += c.keys;
            a.with_ttl += c.with_ttl;
            a.bytes += c.bytes;
            a.elements += c.elements;
            a
        });
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
            let mut top: Vec<KeySize> = top.into_iter().map(|Reverse(k)| k).collect();
            top.sort_by(|a, b| b.cmp(a));
            for (i, k) in top.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "  {:>4}  {:>4}  {:<8} {:>14} {:>12}  {:?}",
                    i + 1,
                    k.db,
                    k.kind,
                    k.bytes,
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

/// Elements a value event adds: list items, members, fields, stream entries; bytes for strings.
fn elements(ev: &Event) -> u64 {
    (match ev {
        Event::String(s) => s.len(),
        Event::ListItems(v) | Event::SetMembers(v) => v.len(),
        Event::ZSetEntries(v) => v.len(),
        Event::HashEntries(v) => v.len(),
        Event::StreamEntries(v) => v.len(),
        _ => 0,
    }) as u64
}
