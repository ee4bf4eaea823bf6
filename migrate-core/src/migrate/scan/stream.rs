//! A big stream read in pieces: entries by `XRANGE ... COUNT n` with an exclusive start,
//! then `XINFO STREAM` (last id, max deleted id, entries added), `XINFO GROUPS` (last
//! delivered id, entries read), and per group `XINFO CONSUMERS` and `XPENDING` pages per
//! consumer (owner, delivery count, idle time → delivery time). They become the same
//! [`Event`]s an RDB stream decodes to, so the rewrite module writes them as it writes a
//! stream of a snapshot (`XADD` with the ids, `XSETID`, `XGROUP CREATE ... ENTRIESREAD`,
//! `XGROUP CREATECONSUMER`, `XCLAIM ... TIME RETRYCOUNT FORCE JUSTID`, where the target
//! supports each).

use bytes::Bytes;
use rdb_parser::{Event, PendingEntry, StreamConsumer, StreamEntry, StreamGroup, StreamId};
use rdb_parser::{Str, StreamMeta};
use resp_codec::Frame;

use super::super::MigrationError;
use super::source::{b, SourceConn};

/// Parses `ms-seq` (or `ms`).
pub(crate) fn parse_id(b: &[u8]) -> Option<StreamId> {
    let s = std::str::from_utf8(b).ok()?;
    let (ms, seq) = s.split_once('-').unwrap_or((s, "0"));
    Some(StreamId {
        ms: ms.parse().ok()?,
        seq: seq.parse().ok()?,
    })
}

/// The smallest id after `id` (an exclusive start that every server version accepts).
fn next_id(id: StreamId) -> Option<StreamId> {
    match id.seq.checked_add(1) {
        Some(seq) => Some(StreamId { ms: id.ms, seq }),
        None => id.ms.checked_add(1).map(|ms| StreamId { ms, seq: 0 }),
    }
}

fn id_arg(id: StreamId) -> Bytes {
    Bytes::from(id.to_string())
}

/// An `XINFO` reply (`[name, value, ...]` in RESP2, a map in RESP3) as pairs.
fn pairs(f: &Frame) -> Vec<(&[u8], &Frame)> {
    match f {
        Frame::Map(kv) => kv
            .iter()
            .filter_map(|(k, v)| Some((k.as_bytes()?, v)))
            .collect(),
        _ => f
            .as_slice()
            .unwrap_or_default()
            .chunks_exact(2)
            .filter_map(|p| Some((p[0].as_bytes()?, &p[1])))
            .collect(),
    }
}

fn get<'a>(p: &[(&[u8], &'a Frame)], name: &str) -> Option<&'a Frame> {
    p.iter()
        .find(|(k, _)| *k == name.as_bytes())
        .map(|(_, v)| *v)
}

fn get_id(p: &[(&[u8], &Frame)], name: &str) -> Option<StreamId> {
    get(p, name)
        .filter(|f| !f.is_error())
        .and_then(|f| f.as_bytes())
        .and_then(parse_id)
}

fn get_int(p: &[(&[u8], &Frame)], name: &str) -> Option<u64> {
    get(p, name)
        .and_then(Frame::as_integer)
        .and_then(|n| u64::try_from(n).ok())
}

/// An error reply as text (for the "stream changed while read" case).
fn error_of(f: &Frame) -> Option<String> {
    crate::ServerError::from_frame(f).map(|e| e.to_string())
}

#[derive(Debug)]
enum Step {
    Entries(Option<StreamId>),
    Meta,
    Group,
    Consumer,
    Pending(Option<StreamId>),
    Done,
}

/// Reads one stream in pieces of `chunk` entries (or pending entries).
pub(crate) struct StreamReader {
    key: Bytes,
    chunk: usize,
    step: Step,
    /// Groups not read yet (name, last delivered id, entries read), in `XINFO` order.
    groups: std::vec::IntoIter<StreamGroup>,
    group: Option<Bytes>,
    consumers: std::vec::IntoIter<Bytes>,
    consumer: Option<Bytes>,
    now_ms: u64,
    /// What could not be read (a refused command): the key is reported lossy with it.
    pub(crate) lost: Vec<String>,
}

impl StreamReader {
    pub(crate) fn new(key: Bytes, chunk: usize, now_ms: i64) -> StreamReader {
        StreamReader {
            key,
            chunk: chunk.max(1),
            step: Step::Entries(None),
            groups: Vec::new().into_iter(),
            group: None,
            consumers: Vec::new().into_iter(),
            consumer: None,
            now_ms: u64::try_from(now_ms).unwrap_or(0),
            lost: Vec::new(),
        }
    }

    /// Notes an error reply to `what`: the key changed meanwhile (deleted, another type:
    /// its notification copies it again) or, otherwise, a loss to report.
    fn failed(&mut self, what: String, e: String) {
        if e.starts_with("WRONGTYPE") || e.contains("no such key") {
            tracing::debug!(target: "migrate", "{what}: {e} (the key changed while read)");
        } else {
            self.lost.push(format!("{what} not read ({e})"));
        }
    }

    /// The next events (`None` once the whole stream was read). An error reply (the key
    /// deleted or retyped meanwhile) ends the read: the change notification copies the key
    /// again.
    pub(crate) async fn next(
        &mut self,
        src: &mut SourceConn,
    ) -> Result<Option<Vec<Event>>, MigrationError> {
        let key = self.key.clone();
        let n = Bytes::from(self.chunk.to_string());
        loop {
            match std::mem::replace(&mut self.step, Step::Done) {
                Step::Done => return Ok(None),
                Step::Entries(after) => {
                    let start = match after {
                        None => b("-"),
                        Some(id) => match next_id(id) {
                            Some(id) => id_arg(id),
                            None => {
                                self.step = Step::Meta;
                                continue;
                            }
                        },
                    };
                    let r = src
                        .call(vec![
                            b("XRANGE"),
                            key.clone(),
                            start,
                            b("+"),
                            b("COUNT"),
                            n.clone(),
                        ])
                        .await?;
                    if let Some(e) = error_of(&r) {
                        let from = after.map_or("the first".into(), |id| format!("after {id}"));
                        self.failed(format!("entries from {from} (XRANGE)"), e);
                        return Ok(None);
                    }
                    let entries = entries(&r);
                    // A full page asks for the next one, from past its last id; an id that
                    // does not move forward (no real server sends one) ends the reading
                    // instead of asking for the same page forever.
                    self.step = match entries.last() {
                        Some(e)
                            if entries.len() >= self.chunk && after.is_none_or(|a| e.id > a) =>
                        {
                            Step::Entries(Some(e.id))
                        }
                        _ => Step::Meta,
                    };
                    if entries.is_empty() {
                        continue;
                    }
                    return Ok(Some(vec![Event::StreamEntries(entries)]));
                }
                Step::Meta => {
                    let r = src
                        .call_many(&[
                            vec![b("XINFO"), b("STREAM"), key.clone()],
                            vec![b("XINFO"), b("GROUPS"), key.clone()],
                        ])
                        .await?;
                    if let Some(e) = r.iter().find_map(error_of) {
                        self.failed("last id and consumer groups (XINFO)".into(), e);
                        return Ok(None);
                    }
                    let meta = meta_of(&r[0]);
                    self.groups = groups_of(&r[1]).into_iter();
                    self.step = Step::Group;
                    return Ok(Some(vec![Event::StreamMeta(meta)]));
                }
                Step::Group => {
                    let Some(g) = self.groups.next() else {
                        return Ok(None);
                    };
                    let r = src
                        .call(vec![
                            b("XINFO"),
                            b("CONSUMERS"),
                            key.clone(),
                            g.name.clone(),
                        ])
                        .await?;
                    if let Some(e) = error_of(&r) {
                        let name = String::from_utf8_lossy(&g.name).into_owned();
                        self.failed(
                            format!(
                                "consumers and pending entries of group {name:?} (XINFO CONSUMERS)"
                            ),
                            e,
                        );
                    }
                    self.consumers = consumers_of(&r).into_iter();
                    self.group = Some(g.name.clone());
                    self.step = Step::Consumer;
                    return Ok(Some(vec![Event::StreamGroup(g)]));
                }
                Step::Consumer => {
                    let Some(c) = self.consumers.next() else {
                        self.step = Step::Group;
                        continue;
                    };
                    self.consumer = Some(c.clone());
                    self.step = Step::Pending(None);
                    return Ok(Some(vec![Event::StreamConsumer(StreamConsumer {
                        name: c,
                        seen_time_ms: self.now_ms,
                        active_time_ms: None,
                    })]));
                }
                Step::Pending(after) => {
                    let (Some(group), Some(consumer)) = (self.group.clone(), self.consumer.clone())
                    else {
                        self.step = Step::Consumer;
                        continue;
                    };
                    let start = match after {
                        None => b("-"),
                        Some(id) => match next_id(id) {
                            Some(id) => id_arg(id),
                            None => {
                                self.step = Step::Consumer;
                                continue;
                            }
                        },
                    };
                    let r = src
                        .call(vec![
                            b("XPENDING"),
                            key.clone(),
                            group.clone(),
                            start,
                            b("+"),
                            n.clone(),
                            consumer.clone(),
                        ])
                        .await?;
                    if let Some(e) = error_of(&r) {
                        let (g, c) = (
                            String::from_utf8_lossy(&group),
                            String::from_utf8_lossy(&consumer),
                        );
                        self.failed(
                            format!("pending entries of consumer {c:?} in group {g:?} (XPENDING)"),
                            e,
                        );
                        self.step = Step::Consumer;
                        continue;
                    }
                    let pel = pending_of(&r, self.now_ms);
                    self.step = match pel.last() {
                        Some(p) if pel.len() >= self.chunk && after.is_none_or(|a| p.id > a) => {
                            Step::Pending(Some(p.id))
                        }
                        _ => Step::Consumer,
                    };
                    if pel.is_empty() {
                        continue;
                    }
                    let ids = pel.iter().map(|p| p.id).collect();
                    return Ok(Some(vec![
                        Event::StreamPending(pel),
                        Event::StreamConsumerPending(ids),
                    ]));
                }
            }
        }
    }
}

/// `XINFO STREAM` reply: the stream's metadata.
fn meta_of(r: &Frame) -> StreamMeta {
    let info = pairs(r);
    StreamMeta {
        length: get_int(&info, "length").unwrap_or(0),
        last_id: get_id(&info, "last-generated-id").unwrap_or_default(),
        first_id: None,
        max_deleted_id: get_id(&info, "max-deleted-entry-id"),
        entries_added: get_int(&info, "entries-added"),
    }
}

/// `XINFO GROUPS` reply: the groups (name, last delivered id, entries read).
fn groups_of(r: &Frame) -> Vec<StreamGroup> {
    r.as_slice()
        .unwrap_or_default()
        .iter()
        .filter_map(|g| {
            let g = pairs(g);
            Some(StreamGroup {
                name: Bytes::copy_from_slice(get(&g, "name")?.as_bytes()?),
                last_id: get_id(&g, "last-delivered-id").unwrap_or_default(),
                entries_read: get_int(&g, "entries-read"),
            })
        })
        .collect()
}

/// `XINFO CONSUMERS` reply: the consumers' names.
fn consumers_of(r: &Frame) -> Vec<Bytes> {
    r.as_slice()
        .unwrap_or_default()
        .iter()
        .filter_map(|c| {
            let c = pairs(c);
            Some(Bytes::copy_from_slice(get(&c, "name")?.as_bytes()?))
        })
        .collect()
}

/// `XPENDING key group start + n consumer` reply: `[[id, owner, idle ms, deliveries], ...]`
/// (idle time turned into a delivery time before `now_ms`).
fn pending_of(r: &Frame, now_ms: u64) -> Vec<PendingEntry> {
    r.as_slice()
        .unwrap_or_default()
        .iter()
        .filter_map(|p| match p.as_slice()? {
            [id, _owner, idle, count] => Some(PendingEntry {
                id: parse_id(id.as_bytes()?)?,
                delivery_time_ms: now_ms.saturating_sub(idle.as_integer()?.max(0) as u64),
                delivery_count: count.as_integer()?.max(0) as u64,
            }),
            _ => None,
        })
        .collect()
}

/// For the `scan_replies` fuzz target: `r` read as each reply of a stream read in pieces;
/// ids parsed print back to themselves and have a successor above them.
#[cfg(feature = "fuzzing")]
pub(crate) fn check_replies(r: &Frame, now_ms: u64) {
    let _ = meta_of(r);
    let _ = groups_of(r);
    let _ = consumers_of(r);
    for p in pending_of(r, now_ms) {
        assert!(p.delivery_time_ms <= now_ms);
    }
    for e in entries(r) {
        assert_eq!(parse_id(&id_arg(e.id)), Some(e.id));
        if let Some(n) = next_id(e.id) {
            assert!(n > e.id);
        }
    }
    if let Some(id) = r.as_bytes().and_then(parse_id) {
        assert_eq!(parse_id(&id_arg(id)), Some(id));
    }
}

/// `XRANGE` reply: `[[id, [f, v, ...]], ...]`.
fn entries(r: &Frame) -> Vec<StreamEntry> {
    r.as_slice()
        .unwrap_or_default()
        .iter()
        .filter_map(|e| match e.as_slice()? {
            [id, fields] => Some(StreamEntry {
                id: parse_id(id.as_bytes()?)?,
                fields: fields
                    .as_slice()
                    .unwrap_or_default()
                    .chunks_exact(2)
                    .filter_map(|p| {
                        Some((
                            Str::Bytes(Bytes::copy_from_slice(p[0].as_bytes()?)),
                            Str::Bytes(Bytes::copy_from_slice(p[1].as_bytes()?)),
                        ))
                    })
                    .collect(),
            }),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(parse_id(b"5-3"), Some(StreamId { ms: 5, seq: 3 }));
        assert_eq!(parse_id(b"7"), Some(StreamId { ms: 7, seq: 0 }));
        assert_eq!(parse_id(b"x-1"), None);
        assert_eq!(
            next_id(StreamId {
                ms: 1,
                seq: u64::MAX
            }),
            Some(StreamId { ms: 2, seq: 0 })
        );
        assert_eq!(
            next_id(StreamId {
                ms: u64::MAX,
                seq: u64::MAX
            }),
            None
        );
    }

    #[test]
    fn xinfo_pairs_in_both_protocols() {
        let flat = Frame::Array(vec![
            Frame::BulkString(Bytes::from_static(b"last-generated-id")),
            Frame::BulkString(Bytes::from_static(b"9-1")),
            Frame::BulkString(Bytes::from_static(b"entries-added")),
            Frame::Integer(4),
        ]);
        let p = pairs(&flat);
        assert_eq!(
            get_id(&p, "last-generated-id"),
            Some(StreamId { ms: 9, seq: 1 })
        );
        assert_eq!(get_int(&p, "entries-added"), Some(4));
        let map = Frame::Map(vec![(
            Frame::BulkString(Bytes::from_static(b"entries-read")),
            Frame::Null,
        )]);
        assert_eq!(get_int(&pairs(&map), "entries-read"), None);
    }
}
