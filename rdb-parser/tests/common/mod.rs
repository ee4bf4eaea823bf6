//! Shared test helpers.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

use bytes::BytesMut;
use rdb_parser::{Error, Event, Options, RdbDecoder};

/// `<workspace root>/../shared/rdb-corpus`, when present.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/rdb-corpus"
    ));
    if dir.join("MANIFEST.tsv").is_file() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: RDB corpus not found at {}", dir.display());
        None
    }
}

/// One row of MANIFEST.tsv.
#[derive(Debug, Clone)]
pub struct Row {
    pub file: String,
    pub magic: String,
    pub note: String,
    pub crc: String,
    pub scan: String,
}

pub fn manifest(dir: &std::path::Path) -> Vec<Row> {
    let text = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            let get = |i: usize| c.get(i).copied().unwrap_or("").to_string();
            Row {
                file: get(0),
                magic: get(5),
                note: get(6),
                crc: get(9),
                scan: get(11),
            }
        })
        .collect()
}

/// Decodes feeding `step` bytes at a time; returns the events and the final result.
pub fn decode_stepwise(data: &[u8], step: usize, opts: Options) -> (Vec<Event>, Result<(), Error>) {
    let mut dec = RdbDecoder::new(opts);
    let mut buf = BytesMut::new();
    let mut events = Vec::new();
    let mut fed = 0;
    loop {
        match dec.decode(&mut buf) {
            Ok(Some(ev)) => events.push(ev),
            Ok(None) => {
                if dec.is_done() {
                    return (events, Ok(()));
                }
                if fed >= data.len() {
                    return (events, dec.finish());
                }
                let n = step.min(data.len() - fed);
                buf.extend_from_slice(&data[fed..fed + n]);
                fed += n;
            }
            Err(e) => return (events, Err(e)),
        }
    }
}
