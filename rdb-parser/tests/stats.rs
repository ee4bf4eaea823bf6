//! `stats::Stats` (on the visitor) against the same figures computed from the owned events
//! with the decoder's offsets, on every corpus file fed whole and in steps.

mod common;

use std::collections::BTreeMap;

use common::{corpus_dir, decode_stepwise_at, manifest, visit_stepwise_into};
use rdb_parser::stats::Stats;
use rdb_parser::{Event, Options, ValueKind};

/// (keys, with_ttl, bytes, elements) per (db, kind), and every key's (record bytes, db, key),
/// from the events: a record starts where the last event outside a key ended.
type Figures = (
    BTreeMap<(u32, ValueKind), (u64, u64, u64, u64)>,
    Vec<(u64, u32, Vec<u8>)>,
);

fn from_events(data: &[u8]) -> Option<Figures> {
    let (events, r) = decode_stepwise_at(data, usize::MAX, Options::default());
    r.ok()?;
    let mut per_db = BTreeMap::new();
    let mut keys = Vec::new();
    let mut mark = 0;
    let mut cur: Option<(u64, u32, Vec<u8>, ValueKind, bool, u64)> = None;
    for (ev, offset) in events {
        match &ev {
            Event::KeyStart(k) => {
                assert_eq!(k.record_offset, mark, "record start of {:?}", k.key);
                cur = Some((
                    mark,
                    k.db,
                    k.key.to_vec(),
                    k.kind(),
                    k.expire_at_ms.is_some(),
                    0,
                ));
            }
            Event::KeyEnd => {
                let (start, db, key, kind, ttl, elements) = cur.take().unwrap();
                let e: &mut (u64, u64, u64, u64) = per_db.entry((db, kind)).or_default();
                e.0 += 1;
                e.1 += u64::from(ttl);
                e.2 += offset - start;
                e.3 += elements;
                keys.push((offset - start, db, key));
            }
            ev => {
                if let Some(c) = &mut cur {
                    c.5 += match ev {
                        Event::String(s) => s.len() as u64,
                        Event::ListItems(v) | Event::SetMembers(v) => v.len() as u64,
                        Event::ZSetEntries(v) => v.len() as u64,
                        Event::HashEntries(v) => v.len() as u64,
                        Event::StreamEntries(v) => v.len() as u64,
                        _ => 0,
                    };
                }
            }
        }
        if cur.is_none() {
            mark = offset;
        }
    }
    keys.sort_by(|a, b| b.cmp(a));
    Some((per_db, keys))
}

#[test]
fn stats_equal_the_figures_of_the_events_on_every_corpus_file() {
    let Some(dir) = corpus_dir() else { return };
    let mut checked = 0;
    for row in manifest(&dir) {
        let data = std::fs::read(dir.join(&row.file)).expect("corpus file");
        let Some((per_db, keys)) = from_events(&data) else {
            continue;
        };
        let step = if data.len() < 64 * 1024 { 1 } else { 997 };
        for (s, items) in [(usize::MAX, false), (usize::MAX, true), (step, false)] {
            let mut stats = Stats::new(5).decode_items(items);
            visit_stepwise_into(&data, s, Options::default(), &mut stats).unwrap();
            let got: BTreeMap<_, _> = stats
                .per_db()
                .into_iter()
                .map(|(k, c)| (k, (c.keys, c.with_ttl, c.bytes, c.elements)))
                .collect();
            assert_eq!(got, per_db, "{} (step {s})", row.file);
            let top: Vec<_> = stats
                .biggest()
                .into_iter()
                .map(|k| (k.record_len, k.db, k.key))
                .collect();
            let want: Vec<_> = keys.iter().take(5).cloned().collect();
            assert_eq!(top, want, "{} (step {s}): biggest keys", row.file);
            let total = stats.total();
            assert_eq!(total.keys, keys.len() as u64);
            assert_eq!(total.bytes, keys.iter().map(|k| k.0).sum::<u64>());
        }
        let whole = Stats::from_reader(&data[..], Options::default(), 3).unwrap();
        assert_eq!(whole.total().keys, keys.len() as u64);
        assert!(whole.eof().is_some());
        checked += 1;
    }
    assert!(checked >= 170, "{checked} corpus files checked");
}
