//! Reading a batch of keys on one side, pipelined: `TYPE` + `PTTL` of every key in one round
//! trip, the first chunk of every value in a second (`GETRANGE`, `LRANGE`, `SSCAN`,
//! `ZRANGE`, `HSCAN`, `XINFO STREAM FULL`, `JSON.GET`, `TOPK.LIST`, `DUMP`), hash field
//! TTLs in a third; only the keys bigger than a chunk then read their remaining chunks.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use resp_codec::Frame;

use super::conn::{cmd, Cmd, Reader};
use super::digest::{hash64, Acc};
use super::error::VerifyError;

/// How values are read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadOpts {
    /// Elements per chunk (`COUNT` of the scans, `LRANGE`/`ZRANGE`/`XRANGE` spans).
    pub(crate) chunk: usize,
    /// Bytes per `GETRANGE` chunk.
    pub(crate) string_chunk: usize,
    /// Bytes of elements kept per key for an element-wise comparison; beyond it only the
    /// digest is kept.
    pub(crate) budget: usize,
    /// Read hash field TTLs (`HPEXPIRETIME`).
    pub(crate) field_ttls: bool,
    /// The server has `XINFO STREAM key FULL` (Redis 6.0+, Valkey).
    pub(crate) stream_full: bool,
}

/// One key as one side holds it.
#[derive(Debug)]
pub(crate) struct KeyState {
    /// `TYPE` (`none` when absent).
    pub(crate) ty: String,
    /// Absolute expiry in local Unix ms, from `PTTL`.
    pub(crate) expire_at: Option<i64>,
    pub(crate) val: Val,
    /// Hash field expiries, when read.
    pub(crate) field_ttls: Option<FieldTtls>,
    /// A cluster node answered a read of this key with a redirection or a retry
    /// (`MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN`): the state is not the key's; read it
    /// again from its owner.
    pub(crate) redirected: Option<String>,
}

/// Whether an error reply means "ask another node, or again later" in a cluster.
pub(crate) fn is_redirect(text: &str) -> bool {
    ["MOVED ", "ASK ", "TRYAGAIN", "CLUSTERDOWN"]
        .iter()
        .any(|p| text.starts_with(p))
}

/// A value as read.
#[derive(Debug)]
pub(crate) enum Val {
    Absent,
    /// Strings (chunks), lists, sets, sorted sets (`[member, score]`), hashes
    /// (`[field, value]`).
    Items(Acc),
    Stream(Box<StreamVal>),
    /// A JSON document or a module value's `DUMP` body.
    Blob(Bytes),
    /// Top-K items with their counts, sorted.
    Pairs(Vec<(Bytes, i64)>),
    /// The read failed (the key changed type meanwhile, a module command refused).
    Unread(String),
}

/// A stream's comparable state.
#[derive(Debug)]
pub(crate) struct StreamVal {
    pub(crate) length: i64,
    pub(crate) last_id: String,
    /// `[id, field, value, ...]` per entry, in id order.
    pub(crate) entries: Acc,
    /// By name.
    pub(crate) groups: Vec<GroupVal>,
}

/// A consumer group's comparable state.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct GroupVal {
    pub(crate) name: Bytes,
    pub(crate) last_delivered: String,
    pub(crate) pel_count: i64,
    /// `(id, consumer, delivery count)`, when the whole PEL fit in one chunk.
    pub(crate) pending: Option<Vec<(String, Bytes, i64)>>,
    /// `(name, pending count)`, sorted.
    pub(crate) consumers: Vec<(Bytes, i64)>,
}

/// Field expiries of a hash (server Unix ms).
#[derive(Debug, Default)]
pub(crate) struct FieldTtls {
    /// Per field, while the hash is small enough to keep.
    pub(crate) map: Option<BTreeMap<Bytes, i64>>,
    /// Fields with a TTL.
    pub(crate) count: u64,
    /// Order-free digest of their names.
    pub(crate) names: u64,
    /// Sum of their expiries.
    pub(crate) sum: i128,
}

impl FieldTtls {
    fn new(keep: bool) -> FieldTtls {
        FieldTtls {
            map: keep.then(BTreeMap::new),
            ..FieldTtls::default()
        }
    }

    fn add(&mut self, field: &Bytes, at: i64) {
        self.count += 1;
        self.names = self.names.wrapping_add(hash64(7, field));
        self.sum += i128::from(at);
        if let Some(m) = &mut self.map {
            m.insert(field.clone(), at);
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The bytes of a bulk or simple string.
pub(crate) fn bytes_of(f: &Frame) -> Option<Bytes> {
    match f {
        Frame::BulkString(b) | Frame::SimpleString(b) => Some(b.clone()),
        Frame::VerbatimString { data, .. } => Some(data.clone()),
        _ => None,
    }
}

/// Text of a string or number reply.
pub(crate) fn text_of(f: &Frame) -> String {
    match f {
        Frame::Integer(i) => i.to_string(),
        Frame::Double(d) => d.to_string(),
        f => f
            .as_bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default(),
    }
}

fn int_of(f: &Frame) -> Option<i64> {
    match f {
        Frame::Integer(i) => Some(*i),
        f => f
            .as_bytes()
            .and_then(|b| std::str::from_utf8(b).ok()?.parse().ok()),
    }
}

fn error_text(f: &Frame) -> Option<String> {
    f.is_error().then(|| {
        f.as_bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    })
}

/// `[k, v, ...]` (RESP2) or a map (RESP3) as pairs with text names.
fn pairs(f: &Frame) -> Vec<(String, &Frame)> {
    match f {
        Frame::Array(items) => items
            .chunks_exact(2)
            .map(|kv| (text_of(&kv[0]), &kv[1]))
            .collect(),
        Frame::Map(kv) => kv.iter().map(|(k, v)| (text_of(k), v)).collect(),
        _ => Vec::new(),
    }
}

fn field<'a>(p: &[(String, &'a Frame)], name: &str) -> Option<&'a Frame> {
    p.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
}

fn list(f: &Frame) -> &[Frame] {
    match f {
        Frame::Map(_) => &[],
        f => f.as_slice().unwrap_or_default(),
    }
}

/// A score as canonical text (servers format doubles differently: `0.1` vs
/// `0.10000000000000001`).
fn score(f: &Frame) -> Bytes {
    let v = match f {
        Frame::Double(d) => *d,
        f => text_of(f).parse::<f64>().unwrap_or(f64::NAN),
    };
    Bytes::from(format!("{v}"))
}

/// The `SCAN`-family reply `[cursor, [elements]]`.
fn scan_reply(f: &Frame) -> Option<(Bytes, &[Frame])> {
    let parts = f.as_slice()?;
    let cursor = bytes_of(parts.first()?)?;
    Some((cursor, list(parts.get(1)?)))
}

/// The id after `id` (`ms-seq` → `ms-(seq+1)`), for exclusive `XRANGE` continuation on
/// every version.
fn next_id(id: &str) -> String {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    let ms: u64 = ms.parse().unwrap_or(0);
    let seq: u64 = seq.parse().unwrap_or(0);
    match seq.checked_add(1) {
        Some(s) => format!("{ms}-{s}"),
        None => format!("{}-0", ms.saturating_add(1)),
    }
}

fn entry_item(e: &Frame) -> Option<(String, Vec<Bytes>)> {
    let pair = e.as_slice()?;
    let id = text_of(pair.first()?);
    let mut item = vec![Bytes::from(id.clone())];
    item.extend(list(pair.get(1)?).iter().filter_map(bytes_of));
    Some((id, item))
}

/// What remains to read of a key after its first chunk.
enum Cont {
    Done,
    String { off: usize, len: usize },
    Range { next: usize, len: usize, zset: bool },
    Scan { cursor: Bytes, hash: bool },
    Stream { after: String },
    StreamFallback,
}

/// Reads `keys` of db `db`.
pub(crate) async fn read_batch(
    r: &mut Reader,
    db: u32,
    keys: &[Bytes],
    o: ReadOpts,
) -> Result<Vec<KeyState>, VerifyError> {
    // Round 1: types and TTLs.
    let mut cmds: Vec<Cmd> = Vec::with_capacity(keys.len() * 2);
    for k in keys {
        cmds.push(vec![Bytes::from_static(b"TYPE"), k.clone()]);
        cmds.push(vec![Bytes::from_static(b"PTTL"), k.clone()]);
    }
    let replies = r.batch(db, &cmds).await?;
    let now = now_ms();
    let mut states = Vec::with_capacity(keys.len());
    for (i, _) in keys.iter().enumerate() {
        let t = &replies[2 * i];
        if let Some(e) = [t, &replies[2 * i + 1]]
            .into_iter()
            .find_map(|f| error_text(f).filter(|e| is_redirect(e)))
        {
            states.push(KeyState {
                ty: "none".into(),
                expire_at: None,
                val: Val::Unread(e.clone()),
                field_ttls: None,
                redirected: Some(e),
            });
            continue;
        }
        if t.is_error() {
            return Err(r.refused("TYPE", t));
        }
        let ty = text_of(t);
        let expire_at = match int_of(&replies[2 * i + 1]) {
            Some(ms) if ms >= 0 => Some(now + ms),
            _ => None,
        };
        states.push(KeyState {
            val: if ty == "none" {
                Val::Absent
            } else {
                Val::Unread(String::new())
            },
            ty,
            expire_at,
            field_ttls: None,
            redirected: None,
        });
    }

    // Round 2: the first chunk of every value.
    let chunk = o.chunk.to_string();
    let last = (o.chunk - 1).to_string();
    let slast = (o.string_chunk - 1).to_string();
    let mut cmds: Vec<Cmd> = Vec::new();
    let mut first: Vec<usize> = Vec::with_capacity(keys.len());
    for (k, s) in keys.iter().zip(&states) {
        first.push(cmds.len());
        let k = k.as_ref();
        if s.redirected.is_some() {
            continue;
        }
        match s.ty.as_str() {
            "none" => {}
            "string" => {
                cmds.push(cmd([b"STRLEN".as_slice(), k]));
                cmds.push(cmd([b"GETRANGE".as_slice(), k, b"0", slast.as_bytes()]));
            }
            "list" => {
                cmds.push(cmd([b"LLEN".as_slice(), k]));
                cmds.push(cmd([b"LRANGE".as_slice(), k, b"0", last.as_bytes()]));
            }
            "zset" => {
                cmds.push(cmd([b"ZCARD".as_slice(), k]));
                cmds.push(cmd([
                    b"ZRANGE".as_slice(),
                    k,
                    b"0",
                    last.as_bytes(),
                    b"WITHSCORES",
                ]));
            }
            "set" => cmds.push(cmd([
                b"SSCAN".as_slice(),
                k,
                b"0",
                b"COUNT",
                chunk.as_bytes(),
            ])),
            "hash" => cmds.push(cmd([
                b"HSCAN".as_slice(),
                k,
                b"0",
                b"COUNT",
                chunk.as_bytes(),
            ])),
            "stream" if o.stream_full => cmds.push(cmd([
                b"XINFO".as_slice(),
                b"STREAM",
                k,
                b"FULL",
                b"COUNT",
                chunk.as_bytes(),
            ])),
            "stream" => {}
            "ReJSON-RL" => cmds.push(cmd([b"JSON.GET".as_slice(), k, b"$"])),
            "TopK-TYPE" => cmds.push(cmd([b"TOPK.LIST".as_slice(), k, b"WITHCOUNT"])),
            _ => cmds.push(cmd([b"DUMP".as_slice(), k])),
        }
    }
    let replies = r.batch(db, &cmds).await?;
    let mut conts = Vec::with_capacity(keys.len());
    for (i, s) in states.iter_mut().enumerate() {
        if s.redirected.is_some() {
            conts.push(Cont::Done);
            continue;
        }
        let at = first[i];
        let (val, cont) = first_chunk(s.ty.as_str(), &replies[at..], o);
        if let Val::Unread(e) = &val {
            if is_redirect(e) {
                s.redirected = Some(e.clone());
            }
        }
        s.val = val;
        conts.push(cont);
    }

    // Round 3: field TTLs of the hash fields read so far.
    if o.field_ttls {
        let mut cmds: Vec<Cmd> = Vec::new();
        let mut asked: Vec<(usize, Vec<Bytes>)> = Vec::new();
        for (i, s) in states.iter_mut().enumerate() {
            if s.ty != "hash" {
                continue;
            }
            let Val::Items(acc) = &s.val else { continue };
            s.field_ttls = Some(FieldTtls::new(acc.is_kept()));
            let fields: Vec<Bytes> = scan_reply(&replies[first[i]])
                .map(|(_, items)| items.chunks(2).filter_map(|p| bytes_of(&p[0])).collect())
                .unwrap_or_default();
            if let Some(c) = hpexpiretime(&keys[i], &fields) {
                cmds.push(c);
                asked.push((i, fields));
            }
        }
        let ttls = r.batch(db, &cmds).await?;
        for ((i, fields), reply) in asked.into_iter().zip(&ttls) {
            if let Some(ft) = &mut states[i].field_ttls {
                add_field_ttls(ft, &fields, reply);
            }
        }
    }

    // Big keys: the remaining chunks, one key at a time.
    for (i, cont) in conts.into_iter().enumerate() {
        if !matches!(cont, Cont::Done) {
            continue_key(r, db, &keys[i], &mut states[i], cont, o).await?;
        }
    }
    Ok(states)
}

fn hpexpiretime(key: &Bytes, fields: &[Bytes]) -> Option<Cmd> {
    if fields.is_empty() {
        return None;
    }
    let mut c = vec![
        Bytes::from_static(b"HPEXPIRETIME"),
        key.clone(),
        Bytes::from_static(b"FIELDS"),
        Bytes::from(fields.len().to_string()),
    ];
    c.extend(fields.iter().cloned());
    Some(c)
}

fn add_field_ttls(ft: &mut FieldTtls, fields: &[Bytes], reply: &Frame) {
    for (f, t) in fields.iter().zip(list(reply)) {
        if let Some(t) = int_of(t).filter(|&t| t >= 0) {
            ft.add(f, t);
        }
    }
}

/// The value from the first round-2 replies of a key of type `ty`, and what remains.
fn first_chunk(ty: &str, r: &[Frame], o: ReadOpts) -> (Val, Cont) {
    let done = Cont::Done;
    let get = |i: usize| r.get(i).unwrap_or(&Frame::Null);
    // Any error reply makes the value unread.
    let n = match ty {
        "none" => 0,
        "stream" if !o.stream_full => 0,
        "string" | "list" | "zset" => 2,
        _ => 1,
    };
    if let Some(e) = (0..n).find_map(|i| error_text(get(i))) {
        return (Val::Unread(e), done);
    }
    match ty {
        "none" => (Val::Absent, done),
        "string" => {
            let len = int_of(get(0)).unwrap_or(0).max(0) as usize;
            let mut acc = Acc::new(true, o.budget.max(o.string_chunk));
            let part = bytes_of(get(1)).unwrap_or_default();
            let off = part.len();
            acc.push(vec![part]);
            let cont = if off < len && off > 0 {
                Cont::String { off, len }
            } else {
                done
            };
            (Val::Items(acc), cont)
        }
        "list" | "zset" => {
            let zset = ty == "zset";
            let len = int_of(get(0)).unwrap_or(0).max(0) as usize;
            let mut acc = Acc::new(true, o.budget);
            let got = push_range(&mut acc, get(1), zset);
            let cont = if got < len && got > 0 {
                Cont::Range {
                    next: got,
                    len,
                    zset,
                }
            } else {
                done
            };
            (Val::Items(acc), cont)
        }
        "set" | "hash" => {
            let hash = ty == "hash";
            let mut acc = Acc::new(false, o.budget);
            let Some((cursor, items)) = scan_reply(get(0)) else {
                return (Val::Unread("unexpected SCAN reply".into()), done);
            };
            push_scan(&mut acc, items, hash);
            let cont = if cursor.as_ref() == b"0" {
                done
            } else {
                Cont::Scan { cursor, hash }
            };
            (Val::Items(acc), cont)
        }
        "stream" if !o.stream_full => (Val::Unread(String::new()), Cont::StreamFallback),
        "stream" => match stream_full(get(0), o) {
            Some((s, cont)) => (Val::Stream(Box::new(s)), cont),
            None => (Val::Unread("unexpected XINFO STREAM reply".into()), done),
        },
        "ReJSON-RL" => (Val::Blob(bytes_of(get(0)).unwrap_or_default()), done),
        "TopK-TYPE" => {
            let mut items: Vec<(Bytes, i64)> = list(get(0))
                .chunks(2)
                .map(|p| {
                    (
                        bytes_of(&p[0]).unwrap_or_default(),
                        p.get(1).and_then(int_of).unwrap_or(-1),
                    )
                })
                .collect();
            // Ties in the count have no defined order.
            items.sort();
            (Val::Pairs(items), done)
        }
        _ => match bytes_of(get(0)) {
            // The body without the 2-byte RDB version and the 8-byte CRC: the same value
            // has the same body on any server of the same module version.
            Some(b) if b.len() >= 10 => (Val::Blob(b.slice(..b.len() - 10)), done),
            Some(_) => (Val::Unread("short DUMP payload".into()), done),
            None if get(0).is_null() => (Val::Absent, done),
            None => (Val::Unread("unexpected DUMP reply".into()), done),
        },
    }
}

/// Adds an `LRANGE` / `ZRANGE WITHSCORES` reply; returns the number of elements.
fn push_range(acc: &mut Acc, reply: &Frame, zset: bool) -> usize {
    let items = list(reply);
    if zset {
        for p in items.chunks(2) {
            acc.push(vec![
                bytes_of(&p[0]).unwrap_or_default(),
                p.get(1).map(score).unwrap_or_default(),
            ]);
        }
        items.len() / 2
    } else {
        for e in items {
            acc.push(vec![bytes_of(e).unwrap_or_default()]);
        }
        items.len()
    }
}

fn push_scan(acc: &mut Acc, items: &[Frame], hash: bool) {
    if hash {
        for p in items.chunks(2) {
            acc.push(vec![
                bytes_of(&p[0]).unwrap_or_default(),
                p.get(1).and_then(bytes_of).unwrap_or_default(),
            ]);
        }
    } else {
        for m in items {
            acc.push(vec![bytes_of(m).unwrap_or_default()]);
        }
    }
}

/// Parses `XINFO STREAM key FULL COUNT n`.
fn stream_full(reply: &Frame, o: ReadOpts) -> Option<(StreamVal, Cont)> {
    let p = pairs(reply);
    if p.is_empty() {
        return None;
    }
    let length = field(&p, "length").and_then(int_of).unwrap_or(0);
    let last_id = field(&p, "last-generated-id")
        .map(text_of)
        .unwrap_or_default();
    let mut entries = Acc::new(true, o.budget);
    let mut last_read = None;
    for e in field(&p, "entries").map(list).unwrap_or_default() {
        if let Some((id, item)) = entry_item(e) {
            entries.push(item);
            last_read = Some(id);
        }
    }
    let mut groups = Vec::new();
    for g in field(&p, "groups").map(list).unwrap_or_default() {
        let g = pairs(g);
        let pel_count = field(&g, "pel-count").and_then(int_of).unwrap_or(0);
        let listed: Vec<(String, Bytes, i64)> = field(&g, "pending")
            .map(list)
            .unwrap_or_default()
            .iter()
            .filter_map(|pe| {
                let pe = pe.as_slice()?;
                Some((
                    text_of(pe.first()?),
                    bytes_of(pe.get(1)?)?,
                    int_of(pe.get(3)?)?,
                ))
            })
            .collect();
        let mut consumers: Vec<(Bytes, i64)> = field(&g, "consumers")
            .map(list)
            .unwrap_or_default()
            .iter()
            .map(|c| {
                let c = pairs(c);
                (
                    field(&c, "name").and_then(bytes_of).unwrap_or_default(),
                    field(&c, "pel-count").and_then(int_of).unwrap_or(0),
                )
            })
            .collect();
        consumers.sort();
        groups.push(GroupVal {
            name: field(&g, "name").and_then(bytes_of).unwrap_or_default(),
            last_delivered: field(&g, "last-delivered-id")
                .map(text_of)
                .unwrap_or_default(),
            pel_count,
            pending: (listed.len() as i64 >= pel_count).then_some(listed),
            consumers,
        });
    }
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    let cont = match last_read {
        Some(id) if (entries.count as i64) < length => Cont::Stream { after: id },
        _ => Cont::Done,
    };
    Some((
        StreamVal {
            length,
            last_id,
            entries,
            groups,
        },
        cont,
    ))
}

/// Reads the rest of one big key (or a whole stream on servers without `XINFO ... FULL`).
async fn continue_key(
    r: &mut Reader,
    db: u32,
    key: &Bytes,
    s: &mut KeyState,
    cont: Cont,
    o: ReadOpts,
) -> Result<(), VerifyError> {
    let k = key.as_ref();
    let n = o.chunk.to_string();
    match cont {
        Cont::Done => {}
        Cont::String { mut off, len } => {
            let Val::Items(acc) = &mut s.val else {
                return Ok(());
            };
            while off < len {
                let end = (off + o.string_chunk - 1).to_string();
                let reply = r
                    .one(
                        db,
                        cmd([
                            b"GETRANGE".as_slice(),
                            k,
                            off.to_string().as_bytes(),
                            end.as_bytes(),
                        ]),
                    )
                    .await?;
                let part = bytes_of(&reply).unwrap_or_default();
                if part.is_empty() {
                    break;
                }
                off += part.len();
                acc.push(vec![part]);
            }
        }
        Cont::Range {
            mut next,
            len,
            zset,
        } => {
            let Val::Items(acc) = &mut s.val else {
                return Ok(());
            };
            while next < len {
                let (a, b) = (next.to_string(), (next + o.chunk - 1).to_string());
                let c = if zset {
                    cmd([
                        b"ZRANGE".as_slice(),
                        k,
                        a.as_bytes(),
                        b.as_bytes(),
                        b"WITHSCORES",
                    ])
                } else {
                    cmd([b"LRANGE".as_slice(), k, a.as_bytes(), b.as_bytes()])
                };
                let reply = r.one(db, c).await?;
                let got = push_range(acc, &reply, zset);
                if got == 0 {
                    break;
                }
                next += got;
            }
        }
        Cont::Scan { mut cursor, hash } => {
            let name: &[u8] = if hash { b"HSCAN" } else { b"SSCAN" };
            loop {
                let reply = r
                    .one(db, cmd([name, k, &cursor, b"COUNT", n.as_bytes()]))
                    .await?;
                let Some((next, items)) = scan_reply(&reply) else {
                    s.val = Val::Unread("unexpected SCAN reply".into());
                    return Ok(());
                };
                let Val::Items(acc) = &mut s.val else {
                    return Ok(());
                };
                push_scan(acc, items, hash);
                if hash && o.field_ttls {
                    let fields: Vec<Bytes> =
                        items.chunks(2).filter_map(|p| bytes_of(&p[0])).collect();
                    if let Some(c) = hpexpiretime(key, &fields) {
                        let reply = r.one(db, c).await?;
                        let kept = matches!(&s.val, Val::Items(a) if a.is_kept());
                        if let Some(ft) = &mut s.field_ttls {
                            if !kept {
                                ft.map = None;
                            }
                            add_field_ttls(ft, &fields, &reply);
                        }
                    }
                }
                if next.as_ref() == b"0" {
                    break;
                }
                cursor = next;
            }
            if let (Some(ft), Val::Items(acc)) = (&mut s.field_ttls, &s.val) {
                if !acc.is_kept() {
                    ft.map = None;
                }
            }
        }
        Cont::Stream { after } => {
            let Val::Stream(st) = &mut s.val else {
                return Ok(());
            };
            read_entries(r, db, k, &mut st.entries, next_id(&after), o).await?;
        }
        Cont::StreamFallback => s.val = stream_fallback(r, db, k, o).await?,
    }
    Ok(())
}

/// `XRANGE key from + COUNT n` until the end.
async fn read_entries(
    r: &mut Reader,
    db: u32,
    k: &[u8],
    acc: &mut Acc,
    mut from: String,
    o: ReadOpts,
) -> Result<(), VerifyError> {
    let n = o.chunk.to_string();
    loop {
        let reply = r
            .one(
                db,
                cmd([
                    b"XRANGE".as_slice(),
                    k,
                    from.as_bytes(),
                    b"+",
                    b"COUNT",
                    n.as_bytes(),
                ]),
            )
            .await?;
        let entries = list(&reply);
        let mut last = None;
        for e in entries {
            if let Some((id, item)) = entry_item(e) {
                acc.push(item);
                last = Some(id);
            }
        }
        match last {
            Some(id) if entries.len() >= o.chunk => from = next_id(&id),
            _ => return Ok(()),
        }
    }
}

/// A stream on a server without `XINFO STREAM ... FULL` (Redis 5): `XINFO STREAM`,
/// `XRANGE`, `XINFO GROUPS`, `XINFO CONSUMERS`, `XPENDING`.
async fn stream_fallback(
    r: &mut Reader,
    db: u32,
    k: &[u8],
    o: ReadOpts,
) -> Result<Val, VerifyError> {
    let info = r.one(db, cmd([b"XINFO".as_slice(), b"STREAM", k])).await?;
    if let Some(e) = error_text(&info) {
        return Ok(Val::Unread(e));
    }
    let p = pairs(&info);
    let mut st = StreamVal {
        length: field(&p, "length").and_then(int_of).unwrap_or(0),
        last_id: field(&p, "last-generated-id")
            .map(text_of)
            .unwrap_or_default(),
        entries: Acc::new(true, o.budget),
        groups: Vec::new(),
    };
    read_entries(r, db, k, &mut st.entries, "-".into(), o).await?;
    let groups = r.one(db, cmd([b"XINFO".as_slice(), b"GROUPS", k])).await?;
    for g in list(&groups) {
        let g = pairs(g);
        let name = field(&g, "name").and_then(bytes_of).unwrap_or_default();
        let pel_count = field(&g, "pending").and_then(int_of).unwrap_or(0);
        let cs = r
            .one(db, cmd([b"XINFO".as_slice(), b"CONSUMERS", k, &name]))
            .await?;
        let mut consumers: Vec<(Bytes, i64)> = list(&cs)
            .iter()
            .map(|c| {
                let c = pairs(c);
                (
                    field(&c, "name").and_then(bytes_of).unwrap_or_default(),
                    field(&c, "pending").and_then(int_of).unwrap_or(0),
                )
            })
            .collect();
        consumers.sort();
        let pending = if pel_count as usize <= o.chunk {
            let n = o.chunk.to_string();
            let pel = r
                .one(
                    db,
                    cmd([b"XPENDING".as_slice(), k, &name, b"-", b"+", n.as_bytes()]),
                )
                .await?;
            Some(
                list(&pel)
                    .iter()
                    .filter_map(|pe| {
                        let pe = pe.as_slice()?;
                        Some((
                            text_of(pe.first()?),
                            bytes_of(pe.get(1)?)?,
                            int_of(pe.get(3)?)?,
                        ))
                    })
                    .collect(),
            )
        } else {
            None
        };
        st.groups.push(GroupVal {
            name,
            last_delivered: field(&g, "last-delivered-id")
                .map(text_of)
                .unwrap_or_default(),
            pel_count,
            pending,
            consumers,
        });
    }
    st.groups.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Val::Stream(Box::new(st)))
}

/// For the `verify_replies` fuzz target: `r` read as the replies of every kind of key
/// (first chunks, continuation chunks, field TTLs, stream ids): never a panic, and what
/// remains to read is always ahead of what was read.
#[cfg(feature = "fuzzing")]
pub(crate) fn check_replies(r: &[Frame], stream_full_reply: bool) {
    const TYPES: [&str; 10] = [
        "none",
        "string",
        "list",
        "zset",
        "set",
        "hash",
        "stream",
        "ReJSON-RL",
        "TopK-TYPE",
        "MBbloom--",
    ];
    let o = ReadOpts {
        chunk: 3,
        string_chunk: 5,
        budget: 64,
        field_ttls: true,
        stream_full: stream_full_reply,
    };
    for ty in TYPES {
        match first_chunk(ty, r, o).1 {
            Cont::String { off, len } => assert!(off < len),
            Cont::Range { next, len, .. } => assert!(next < len),
            Cont::Scan { cursor, .. } => assert!(cursor.as_ref() != b"0"),
            Cont::Done | Cont::Stream { .. } | Cont::StreamFallback => {}
        }
    }
    for f in r {
        for zset in [false, true] {
            let mut acc = Acc::new(true, 64);
            let n = push_range(&mut acc, f, zset);
            assert!(acc.count >= n as u64);
        }
        if let Some((_, items)) = scan_reply(f) {
            let fields: Vec<Bytes> = items.iter().filter_map(bytes_of).collect();
            for hash in [false, true] {
                push_scan(&mut Acc::new(false, 64), items, hash);
            }
            let mut ft = FieldTtls::new(true);
            for t in r {
                add_field_ttls(&mut ft, &fields, t);
            }
            assert!(ft.count <= fields.len() as u64 * r.len() as u64);
        }
        let _ = stream_full(f, o);
        let _ = entry_item(f);
        let _ = score(f);
        let _ = int_of(f);
        let _ = error_text(f);
        let text = text_of(f);
        let _ = next_id(&text);
        let _ = is_redirect(&text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_scores() {
        assert_eq!(next_id("5-1"), "5-2");
        assert_eq!(next_id(&format!("5-{}", u64::MAX)), "6-0");
        assert_eq!(score(&Frame::bulk("0.10000000000000001")), "0.1");
        assert_eq!(score(&Frame::bulk("inf")), "inf");
        assert_eq!(score(&Frame::bulk("3")), "3");
    }
}
