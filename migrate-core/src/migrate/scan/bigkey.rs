//! Big keys read in pieces (`GETRANGE`, `LRANGE`, `SSCAN`, `ZSCAN`, `HSCAN`) and written
//! as the rewrite module's chunked commands, so neither side holds the whole value: memory
//! is bounded by one piece plus the writer's window.

use bytes::Bytes;
use rdb_parser::{Event, HashEntry, KeyStart, RdbType, Str, ZSetEntry};
use resp_codec::Frame;

use super::super::apply::{Applier, KeyMark, Method};
use super::super::fullsync::{now_ms, FullSyncConfig};
use super::super::MigrationError;
use super::source::{b, SourceConn};
use crate::rewrite::{Cmd, Done, KeyStatus, Rewriter};
use crate::Tag;

/// What became of a big key.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Big {
    /// Gone from the source.
    Gone,
    /// Written (its last command carries the key's mark).
    Sent,
    /// Not written (expired meanwhile, or unsupported).
    Skipped,
    /// A type read whole instead (streams, module values): DUMP it.
    Dump,
    /// A cluster node redirected the read (`MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN`:
    /// the error text): read it again from its owner.
    Redirected(String),
}

fn tag(c: &Cmd, seq: u64) -> Tag {
    let t = Tag::new(c.db(), c.args[0].clone(), seq);
    match c.key() {
        Some(k) => t.with_key(k.clone()),
        None => t,
    }
}

/// Sends commands, holding the last one back for the key's mark.
async fn send(
    cmds: Vec<Cmd>,
    held: &mut Option<Cmd>,
    ap: &mut Applier,
) -> Result<(), MigrationError> {
    for c in cmds {
        if let Some(prev) = held.replace(c) {
            let t = tag(&prev, ap.next_seq());
            ap.send(t, &prev.args).await?;
        }
    }
    Ok(())
}

fn strs(f: &Frame) -> Vec<Bytes> {
    f.as_slice()
        .unwrap_or_default()
        .iter()
        .filter_map(|x| x.as_bytes().map(Bytes::copy_from_slice))
        .collect()
}

fn score(b: &[u8]) -> f64 {
    match b {
        b"inf" | b"+inf" => f64::INFINITY,
        b"-inf" => f64::NEG_INFINITY,
        _ => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.0),
    }
}

/// Copies key `key` of source db `db` (already selected on `src`) in pieces of `chunk`
/// elements. `replace`: remove the target's key first.
pub(crate) async fn copy(
    src: &mut SourceConn,
    db: u32,
    key: &Bytes,
    cfg: &FullSyncConfig,
    replace: bool,
    chunk: usize,
    ap: &mut Applier,
) -> Result<Big, MigrationError> {
    let r = src
        .call_many(&[vec![b("TYPE"), key.clone()], vec![b("PTTL"), key.clone()]])
        .await?;
    if let Some(e) = r.iter().find_map(super::nodes::redirect_text) {
        return Ok(Big::Redirected(e));
    }
    let now = now_ms();
    let kind = r[0].as_bytes().unwrap_or_default().to_vec();
    let pttl = r[1].as_integer().unwrap_or(-2);
    let rdb_type = match &kind[..] {
        b"none" => return Ok(Big::Gone),
        _ if pttl == -2 => return Ok(Big::Gone),
        b"string" => RdbType::String,
        b"list" => RdbType::List,
        b"set" => RdbType::Set,
        b"zset" => RdbType::ZSet2,
        b"hash" => RdbType::Hash,
        _ => return Ok(Big::Dump),
    };
    let Some((tdb, tkey)) = cfg.filter.map_key(db, key) else {
        return Ok(Big::Skipped);
    };
    let tkey = Bytes::copy_from_slice(&tkey);
    let start = KeyStart {
        db: tdb,
        key: tkey.clone(),
        type_byte: rdb_type.byte(rdb_parser::Family::Redis),
        rdb_type,
        expire_at_ms: (pttl > 0).then(|| now + pttl),
        lru_idle: None,
        lfu_freq: None,
        meta: Vec::new(),
        module: None,
        min_field_expire_ms: None,
        record_offset: 0,
    };
    let mut rw = Rewriter::new(cfg.version, cfg.rewrite.clone().replace(replace), now);
    let mut held = None;
    let mut cmds = Vec::new();
    rw.push(&Event::KeyStart(start), &mut |c| cmds.push(c));
    send(std::mem::take(&mut cmds), &mut held, ap).await?;
    let n = Bytes::from(chunk.max(1).to_string());
    let mut cursor = Bytes::from_static(b"0");
    let mut offset: i64 = 0;
    loop {
        let (ev, done) = match rdb_type {
            RdbType::String => {
                let step = cfg.rewrite.max_command_bytes.max(1) as i64;
                let r = src
                    .call(vec![
                        b("GETRANGE"),
                        key.clone(),
                        Bytes::from(offset.to_string()),
                        Bytes::from((offset + step - 1).to_string()),
                    ])
                    .await?;
                let piece = Bytes::copy_from_slice(r.as_bytes().unwrap_or_default());
                offset += step;
                let done = (piece.len() as i64) < step;
                (Event::String(Str::Bytes(piece)), done)
            }
            RdbType::List => {
                let end = offset + chunk as i64 - 1;
                let r = src
                    .call(vec![
                        b("LRANGE"),
                        key.clone(),
                        Bytes::from(offset.to_string()),
                        Bytes::from(end.to_string()),
                    ])
                    .await?;
                let items = strs(&r);
                offset += chunk as i64;
                let done = items.len() < chunk;
                (
                    Event::ListItems(items.into_iter().map(Str::Bytes).collect()),
                    done,
                )
            }
            _ => {
                let cmd = match rdb_type {
                    RdbType::Set => "SSCAN",
                    RdbType::ZSet2 => "ZSCAN",
                    _ => "HSCAN",
                };
                let r = src
                    .call(vec![
                        b(cmd),
                        key.clone(),
                        cursor.clone(),
                        b("COUNT"),
                        n.clone(),
                    ])
                    .await?;
                let (next, items) = match r.as_slice() {
                    Some([c, list]) => (c.as_bytes().map(Bytes::copy_from_slice), strs(list)),
                    _ => (None, Vec::new()),
                };
                let next = next.unwrap_or_else(|| Bytes::from_static(b"0"));
                let done = &next[..] == b"0";
                cursor = next;
                let ev = match rdb_type {
                    RdbType::Set => Event::SetMembers(items.into_iter().map(Str::Bytes).collect()),
                    RdbType::ZSet2 => Event::ZSetEntries(
                        items
                            .chunks_exact(2)
                            .map(|p| ZSetEntry {
                                member: Str::Bytes(p[0].clone()),
                                score: score(&p[1]),
                            })
                            .collect(),
                    ),
                    _ => Event::HashEntries(
                        items
                            .chunks_exact(2)
                            .map(|p| HashEntry {
                                field: Str::Bytes(p[0].clone()),
                                value: Str::Bytes(p[1].clone()),
                                expire_at_ms: None,
                            })
                            .collect(),
                    ),
                };
                (ev, done)
            }
        };
        rw.push(&ev, &mut |c| cmds.push(c));
        send(std::mem::take(&mut cmds), &mut held, ap).await?;
        if done {
            break;
        }
    }
    let out = rw.push(&Event::KeyEnd, &mut |c| cmds.push(c));
    send(std::mem::take(&mut cmds), &mut held, ap).await?;
    let status = match out {
        Some(Done::Key(r)) => r.status,
        _ => KeyStatus::Empty,
    };
    if matches!(status, KeyStatus::Expired { .. }) {
        ap.report.skipped_expired += 1;
    }
    let Some(last) = held else {
        return Ok(Big::Skipped);
    };
    let seq = ap.next_seq();
    let written = status == KeyStatus::Written;
    if written {
        let mark = KeyMark {
            seq,
            db: tdb,
            kind: rdb_type.kind().as_str(),
            method: Method::Rewrite,
            lossy: None,
        };
        ap.send_last(tag(&last, seq), &last.args, mark).await?;
        Ok(Big::Sent)
    } else {
        // An UNLINK of a key that expired meanwhile.
        ap.send(tag(&last, seq), &last.args).await?;
        Ok(Big::Skipped)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn scores() {
        assert_eq!(super::score(b"1.5"), 1.5);
        assert_eq!(super::score(b"-inf"), f64::NEG_INFINITY);
    }
}
