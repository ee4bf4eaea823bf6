//! Big keys read in pieces (`GETRANGE`, `LRANGE`, `SSCAN`, `ZSCAN`, `HSCAN` with
//! `HPEXPIRETIME` of each chunk's fields, `XRANGE` and the stream's groups: see
//! [`super::stream`]) and written as the rewrite module's chunked commands, so neither side
//! holds the whole value: memory is bounded by one piece plus the writer's window (and, for
//! a stream, the rewrite module's stream buffer and the pending entries of its groups).

use bytes::Bytes;
use rdb_parser::{Event, HashEntry, KeyStart, RdbType, Str, ZSetEntry};
use resp_codec::Frame;

use super::super::apply::{Applier, KeyMark, Method};
use super::super::fullsync::{now_ms, FullSyncConfig};
use super::super::MigrationError;
use super::source::{b, SourceConn};
use super::stream::StreamReader;
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
    /// A type read whole instead (module values): DUMP it.
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

/// The absolute expiry of each of `fields` (`HPEXPIRETIME`, one round trip): `None` for
/// a field without a TTL, a time in the past for one gone meanwhile. `field_ttls` says
/// whether the source has field TTLs (`None`: not known yet; learnt from the first reply:
/// an unknown command means none). Another refusal is noted in `lost`.
async fn field_expiries(
    src: &mut SourceConn,
    key: &Bytes,
    fields: &[Bytes],
    field_ttls: &mut Option<bool>,
    lost: &mut Vec<String>,
) -> Result<Vec<Option<u64>>, MigrationError> {
    let none = vec![None; fields.len()];
    if fields.is_empty() || *field_ttls == Some(false) {
        return Ok(none);
    }
    let mut cmd = Vec::with_capacity(4 + fields.len());
    cmd.extend([
        b("HPEXPIRETIME"),
        key.clone(),
        b("FIELDS"),
        Bytes::from(fields.len().to_string()),
    ]);
    cmd.extend(fields.iter().cloned());
    let r = src.call(cmd).await?;
    if let Some(e) = crate::ServerError::from_frame(&r) {
        let text = e.to_string();
        if field_ttls.is_none() && text.contains("unknown command") {
            // An older source: no field TTLs anywhere.
            tracing::debug!(target: "migrate", "HPEXPIRETIME unknown to the source ({text}): no field TTLs to read");
            *field_ttls = Some(false);
        } else if !text.starts_with("WRONGTYPE") {
            let note = format!("field TTLs not read (HPEXPIRETIME: {text})");
            if !lost.contains(&note) {
                lost.push(note);
            }
        }
        return Ok(none);
    }
    *field_ttls = Some(true);
    Ok(expiry_times(&r, fields.len()))
}

/// An `HPEXPIRETIME` reply for `n` fields: per field its absolute expiry, `None` without
/// one (a reply too short leaves the rest without).
fn expiry_times(r: &Frame, n: usize) -> Vec<Option<u64>> {
    let times = r.as_slice().unwrap_or_default();
    (0..n)
        .map(|i| match times.get(i).and_then(Frame::as_integer) {
            Some(t) if t > 0 => Some(t as u64),
            // -2: the field expired (or was removed) between HSCAN and now.
            Some(-2) => Some(1),
            _ => None,
        })
        .collect()
}

/// A `SCAN`-family reply `[cursor, [elements]]`: the next cursor (`0` at the end, and for
/// a reply of another shape) and the elements.
fn scan_page(r: &Frame) -> (Bytes, Vec<Bytes>) {
    let (next, items) = match r.as_slice() {
        Some([c, list]) => (c.as_bytes().map(Bytes::copy_from_slice), strs(list)),
        _ => (None, Vec::new()),
    };
    (next.unwrap_or_else(|| Bytes::from_static(b"0")), items)
}

/// For the `scan_replies` fuzz target: `r` read as each reply of a big key read in pieces.
#[cfg(feature = "fuzzing")]
pub(crate) fn check_replies(r: &Frame, n: usize) {
    let (_cursor, items) = scan_page(r);
    for p in items.chunks_exact(2) {
        let _ = score(&p[1]);
    }
    let _ = strs(r);
    assert_eq!(expiry_times(r, n).len(), n);
    if let Some(b) = r.as_bytes() {
        let _ = score(b);
    }
}

/// Copies key `key` of source db `db` (already selected on `src`) in pieces of `chunk`
/// elements. `replace`: remove the target's key first. `field_ttls`: whether the source
/// has hash field TTLs (`None` until learnt).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn copy(
    src: &mut SourceConn,
    db: u32,
    key: &Bytes,
    cfg: &FullSyncConfig,
    replace: bool,
    chunk: usize,
    field_ttls: &mut Option<bool>,
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
        b"stream" => RdbType::StreamListpacks2,
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
    let mut stream = StreamReader::new(key.clone(), chunk, now);
    // What the source refused to tell (reported with the key's losses).
    let mut lost: Vec<String> = Vec::new();
    loop {
        if rdb_type == RdbType::StreamListpacks2 {
            let Some(evs) = stream.next(src).await? else {
                break;
            };
            for ev in &evs {
                rw.push(ev, &mut |c| cmds.push(c));
            }
            send(std::mem::take(&mut cmds), &mut held, ap).await?;
            continue;
        }
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
                let (next, items) = scan_page(&r);
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
                    _ => {
                        let fields: Vec<Bytes> =
                            items.chunks_exact(2).map(|p| p[0].clone()).collect();
                        let ttls = field_expiries(src, key, &fields, field_ttls, &mut lost).await?;
                        Event::HashEntries(
                            items
                                .chunks_exact(2)
                                .zip(ttls)
                                .map(|(p, at)| HashEntry {
                                    field: Str::Bytes(p[0].clone()),
                                    value: Str::Bytes(p[1].clone()),
                                    expire_at_ms: at,
                                })
                                .collect(),
                        )
                    }
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
    let (status, losses) = match out {
        Some(Done::Key(r)) => (r.status, r.losses),
        _ => (KeyStatus::Empty, Vec::new()),
    };
    let mut losses: Vec<String> = losses.iter().map(|l| l.to_string()).collect();
    losses.append(&mut lost);
    losses.append(&mut stream.lost);
    match &status {
        KeyStatus::Expired { .. } => ap.report.skipped_expired += 1,
        KeyStatus::NeedsRestore { .. } | KeyStatus::Unsupported { .. } => {
            ap.unsupported(
                rdb_type.kind().as_str().into(),
                Some(tkey.clone()),
                status.to_string(),
            )?;
        }
        _ => {}
    }
    for loss in &losses {
        tracing::warn!(target: "migrate", "key {}: {loss}", super::super::report::key_text(&tkey));
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
            lossy: (!losses.is_empty()).then(|| Box::new((tkey.clone(), losses.join("; ")))),
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
