//! A copier for sources that forbid replication, on the public client alone: `SCAN` each
//! db, `DUMP` + `PTTL` each batch of keys in one round trip, `RESTORE ... REPLACE` them on
//! the target in one round trip. A snapshot, no change tracking: see issue 14 for the scan
//! mode of `sync`.
//!
//! ```text
//! cargo run -p migrate-core --example dump_restore_copy -- redis://src:6379 redis://dst:6380
//! ```

use std::time::Duration;

use bytes::Bytes;
use migrate_core::migrate::{connect, MigrationError, TargetConfig};
use resp_codec::Frame;

/// Copies dbs `0..dbs` of `from` into `to`; returns how many keys were restored.
pub async fn copy(from: &str, to: &str, dbs: u32) -> Result<u64, Box<dyn std::error::Error>> {
    let timeout = Duration::from_secs(10);
    let mut src = connect(&TargetConfig::parse(from)?, timeout).await?;
    let mut dst = connect(&TargetConfig::parse(to)?, timeout).await?;
    let mut copied = 0;
    for db in 0..dbs {
        let select = ["SELECT".to_string(), db.to_string()];
        if src.call(&select).await?.is_error() {
            break; // no such db on the source
        }
        dst.call(&select).await?;
        let mut cursor = Bytes::from_static(b"0");
        loop {
            let reply = src.call(&[&b"SCAN"[..], &cursor, b"COUNT", b"100"]).await?;
            let Some([next, Frame::Array(keys)]) = reply.as_slice() else {
                return Err(format!("unexpected SCAN reply {reply:?}").into());
            };
            let keys: Vec<Bytes> = keys
                .iter()
                .filter_map(|k| k.as_bytes())
                .map(Bytes::copy_from_slice)
                .collect();
            // DUMP and PTTL of every key of the batch in one round trip.
            let reads: Vec<Vec<Bytes>> = keys
                .iter()
                .flat_map(|k| {
                    [
                        vec![Bytes::from_static(b"DUMP"), k.clone()],
                        vec![Bytes::from_static(b"PTTL"), k.clone()],
                    ]
                })
                .collect();
            let replies = src.call_many(&reads).await?;
            let mut writes = Vec::new();
            for (key, pair) in keys.iter().zip(replies.chunks(2)) {
                let (Some(payload), Frame::Integer(pttl)) = (pair[0].as_bytes(), &pair[1]) else {
                    continue; // expired or deleted meanwhile
                };
                let ttl = if *pttl > 0 { *pttl } else { 0 };
                writes.push(vec![
                    Bytes::from_static(b"RESTORE"),
                    key.clone(),
                    Bytes::from(ttl.to_string()),
                    Bytes::copy_from_slice(payload),
                    Bytes::from_static(b"REPLACE"),
                ]);
            }
            for (w, reply) in writes.iter().zip(dst.call_many(&writes).await?) {
                if reply.is_error() {
                    // Every write is checked: a refused key is an error that names it.
                    let key = String::from_utf8_lossy(&w[1]);
                    return Err(MigrationError::Config(format!("RESTORE {key}: {reply:?}")).into());
                }
                copied += 1;
            }
            let next = next.as_bytes().unwrap_or(b"0");
            if next == b"0" {
                break;
            }
            cursor = Bytes::copy_from_slice(next);
        }
    }
    Ok(copied)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(from), Some(to)) = (args.first(), args.get(1)) else {
        return Err("usage: dump_restore_copy FROM_URL TO_URL".into());
    };
    let n = copy(from, to, 16).await?;
    println!("{n} keys copied");
    Ok(())
}
