//! A comparable picture of a server's whole keyspace: every key's type, value and
//! absolute expiry, read back with ordinary commands. Tests compare a source with a
//! target (or with what a decoder produced) through [`Snapshot::diff`].
//!
//! Hash field TTLs (Redis 7.4, Valkey 9) are read with `HPEXPIRETIME` where the server
//! knows it. Module values (Redis 7.4 with its modules) are read with the module's own
//! commands: RedisJSON by `JSON.GET key $`, Top-K by `TOPK.LIST key WITHCOUNT` and
//! `TOPK.INFO`, time series by `TS.RANGE key - +` and `TS.INFO`; other module types (Bloom
//! and cuckoo filters, count-min sketches, t-digests, ...) by their `DUMP` payload.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{Conn, Reply, Server};

/// One key's value, in a form that compares equal across server versions.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string.
    String(Vec<u8>),
    /// A list, in order.
    List(Vec<Vec<u8>>),
    /// A set.
    Set(BTreeSet<Vec<u8>>),
    /// A sorted set as `(member, score)` in rank order.
    ZSet(Vec<(Vec<u8>, f64)>),
    /// A hash.
    Hash(BTreeMap<Vec<u8>, Vec<u8>>),
    /// A stream: entries, last id, and consumer groups.
    Stream(Stream),
    /// A RedisJSON document (`ReJSON-RL`), as `JSON.GET key $` returns it.
    Json(Vec<u8>),
    /// A RedisBloom Top-K (`TopK-TYPE`): `TOPK.INFO` (k, width, depth, decay) and the
    /// `TOPK.LIST key WITHCOUNT` items, sorted by item.
    TopK {
        /// `TOPK.INFO` as `[name, value, ...]` text.
        info: Vec<String>,
        /// `(item, count)`, sorted by item.
        items: Vec<(Vec<u8>, i64)>,
    },
    /// A RedisTimeSeries series (`TSDB-TYPE`).
    TimeSeries(TimeSeries),
    /// Another module type, compared by its `DUMP` payload without the trailing RDB
    /// version and CRC (the same server version writes the same bytes for the same value).
    Module {
        /// The name `TYPE` reports (`MBbloom--`, `MBbloomCF`, `CMSk-TYPE`, `TDIS-TYPE`...).
        type_name: String,
        /// The `DUMP` payload's body.
        dump: Vec<u8>,
    },
    /// A type this snapshot does not read: only the name is compared.
    Other(String),
}

/// A time series' observable state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TimeSeries {
    /// `(timestamp, value)` from `TS.RANGE key - +`.
    pub samples: Vec<(i64, String)>,
    /// `retentionTime` from `TS.INFO`.
    pub retention_ms: i64,
    /// `labels` from `TS.INFO`, sorted.
    pub labels: Vec<(String, String)>,
    /// `duplicatePolicy` from `TS.INFO` (empty when unset).
    pub duplicate_policy: String,
    /// Compaction rules from `TS.INFO`: `(destination, bucket ms, aggregation)`, sorted.
    pub rules: Vec<(String, i64, String)>,
    /// `sourceKey` from `TS.INFO` (empty unless this series is a rule's destination).
    pub source_key: String,
}

/// A stream's observable state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stream {
    /// `(id, [field, value, ...])` in id order.
    pub entries: Vec<(String, Vec<Vec<u8>>)>,
    /// `last-generated-id` from `XINFO STREAM`.
    pub last_id: String,
    /// Consumer groups by name.
    pub groups: BTreeMap<String, Group>,
}

/// A consumer group's observable state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Group {
    /// `last-delivered-id`.
    pub last_delivered: String,
    /// Pending entries: id → (consumer, delivery count).
    pub pending: BTreeMap<String, (String, i64)>,
    /// Consumer names.
    pub consumers: BTreeSet<String>,
}

/// A key's value and expiry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The value.
    pub value: Value,
    /// Absolute expiry in Unix ms (from `PTTL` plus the local clock), if any.
    pub expire_at_ms: Option<i64>,
    /// For hashes: the fields that have a TTL, with their absolute expiry in Unix ms
    /// (`HPEXPIRETIME`). Empty on servers without field TTLs.
    pub field_expire_at_ms: BTreeMap<Vec<u8>, i64>,
}

/// Every key of the listed dbs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// `(db, key)` → entry.
    pub keys: BTreeMap<(u32, Vec<u8>), Entry>,
}

impl Snapshot {
    /// Reads every key of dbs `0..dbs`.
    pub fn take(server: &Server, dbs: u32) -> Snapshot {
        Snapshot::take_conn(&mut server.connect(), dbs)
    }

    /// Reads every key of dbs `0..dbs` through an open connection.
    pub fn take_conn(conn: &mut Conn, dbs: u32) -> Snapshot {
        let mut snap = Snapshot::default();
        let mut reader = Reader {
            conn,
            field_ttls: None,
        };
        for db in 0..dbs {
            reader.conn.ok(["SELECT".to_string(), db.to_string()]);
            for key in scan_all(reader.conn) {
                if let Some(entry) = reader.entry(&key) {
                    snap.keys.insert((db, key), entry);
                }
            }
        }
        snap
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// `true` when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The differences between `self` (expected) and `other` (actual), one line each;
    /// expiries may differ by `ttl_tolerance_ms`.
    pub fn diff(&self, other: &Snapshot, ttl_tolerance_ms: i64) -> Vec<String> {
        let mut out = Vec::new();
        let show =
            |(db, key): &(u32, Vec<u8>)| format!("db{db} {:?}", String::from_utf8_lossy(key));
        for (k, a) in &self.keys {
            match other.keys.get(k) {
                None => out.push(format!("{}: missing", show(k))),
                Some(b) => {
                    if a.value != b.value {
                        out.push(format!(
                            "{}: value differs: {:?} vs {:?}",
                            show(k),
                            short(&a.value),
                            short(&b.value)
                        ));
                    }
                    match (a.expire_at_ms, b.expire_at_ms) {
                        (None, None) => {}
                        (Some(x), Some(y)) if (x - y).abs() <= ttl_tolerance_ms => {}
                        (x, y) => out.push(format!("{}: expiry {x:?} vs {y:?}", show(k))),
                    }
                    let fields: BTreeSet<&Vec<u8>> = a
                        .field_expire_at_ms
                        .keys()
                        .chain(b.field_expire_at_ms.keys())
                        .collect();
                    for f in fields {
                        match (a.field_expire_at_ms.get(f), b.field_expire_at_ms.get(f)) {
                            (Some(x), Some(y)) if (x - y).abs() <= ttl_tolerance_ms => {}
                            (x, y) => out.push(format!(
                                "{}: field {:?} expiry {x:?} vs {y:?}",
                                show(k),
                                String::from_utf8_lossy(f)
                            )),
                        }
                    }
                }
            }
        }
        for k in other.keys.keys() {
            if !self.keys.contains_key(k) {
                out.push(format!("{}: unexpected", show(k)));
            }
        }
        out
    }

    /// Panics with the first differences when `other` differs from `self`.
    pub fn assert_same(&self, other: &Snapshot, ttl_tolerance_ms: i64) {
        let diff = self.diff(other, ttl_tolerance_ms);
        assert!(
            diff.is_empty(),
            "{} of {} keys differ; first ones:\n{}",
            diff.len(),
            self.len(),
            diff.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
        );
    }
}

fn short(v: &Value) -> String {
    let s = format!("{v:?}");
    if s.len() > 300 {
        let cut = (0..=300)
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        format!("{}...", &s[..cut])
    } else {
        s
    }
}

/// The key prefix `redis-migrate` reserves for itself (`migrate_core::migrate::RESERVED_PREFIX`):
/// snapshots leave such keys out.
pub const RESERVED_PREFIX: &[u8] = b"__redis-migrate:";

fn scan_all(conn: &mut Conn) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    let mut cursor = b"0".to_vec();
    loop {
        let reply = conn.must([b"SCAN".as_slice(), &cursor, b"COUNT", b"1000"]);
        let Reply::Array(mut parts) = reply else {
            panic!("SCAN: {reply:?}")
        };
        let Some(Reply::Array(batch)) = parts.pop() else {
            panic!("SCAN: no key list")
        };
        // The migration's own keys (its checkpoint) are not data.
        keys.extend(batch.into_iter().filter_map(|r| match r {
            Reply::Bulk(b) if !b.starts_with(RESERVED_PREFIX) => Some(b),
            _ => None,
        }));
        cursor = parts
            .pop()
            .and_then(|r| r.as_bytes().map(<[u8]>::to_vec))
            .unwrap_or_default();
        if cursor == b"0" {
            break;
        }
    }
    keys
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn bulks(reply: Reply) -> Vec<Vec<u8>> {
    match reply {
        Reply::Array(items) => items
            .into_iter()
            .map(|r| r.as_bytes().map(<[u8]>::to_vec).unwrap_or_default())
            .collect(),
        _ => Vec::new(),
    }
}

/// `XINFO`-style flat `[name, value, ...]` reply as a map.
fn fields(reply: Reply) -> BTreeMap<String, Reply> {
    let mut map = BTreeMap::new();
    if let Reply::Array(items) = reply {
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            map.insert(k.text(), v);
        }
    }
    map
}

/// Reads entries, remembering whether the server knows `HPEXPIRETIME`.
struct Reader<'a> {
    conn: &'a mut Conn,
    /// `None` until the first hash is read.
    field_ttls: Option<bool>,
}

impl Reader<'_> {
    fn entry(&mut self, key: &[u8]) -> Option<Entry> {
        let conn = &mut *self.conn;
        let ty = conn.must([b"TYPE".as_slice(), key]).text();
        let mut field_expire_at_ms = BTreeMap::new();
        let value = match ty.as_str() {
            "none" => return None, // expired or deleted meanwhile
            "string" => Value::String(conn.bulk([b"GET".as_slice(), key]).unwrap_or_default()),
            "list" => Value::List(bulks(conn.must([b"LRANGE".as_slice(), key, b"0", b"-1"]))),
            "set" => Value::Set(
                bulks(conn.must([b"SMEMBERS".as_slice(), key]))
                    .into_iter()
                    .collect(),
            ),
            "zset" => {
                let flat =
                    bulks(conn.must([b"ZRANGE".as_slice(), key, b"0", b"-1", b"WITHSCORES"]));
                Value::ZSet(
                    flat.chunks(2)
                        .map(|p| {
                            (
                                p[0].clone(),
                                String::from_utf8_lossy(&p[1])
                                    .parse::<f64>()
                                    .unwrap_or(f64::NAN),
                            )
                        })
                        .collect(),
                )
            }
            "hash" => {
                let flat = bulks(conn.must([b"HGETALL".as_slice(), key]));
                let hash: BTreeMap<Vec<u8>, Vec<u8>> = flat
                    .chunks(2)
                    .map(|p| (p[0].clone(), p[1].clone()))
                    .collect();
                field_expire_at_ms = self.field_expiries(key, &hash);
                Value::Hash(hash)
            }
            "stream" => Value::Stream(read_stream(conn, key)),
            "ReJSON-RL" => match conn.cmd([b"JSON.GET".as_slice(), key, b"$"]) {
                Reply::Bulk(b) => Value::Json(b),
                _ => Value::Other(ty),
            },
            "TopK-TYPE" => read_topk(conn, key).unwrap_or(Value::Other(ty)),
            "TSDB-TYPE" => read_timeseries(conn, key)
                .map(Value::TimeSeries)
                .unwrap_or(Value::Other(ty)),
            other => match conn.cmd([b"DUMP".as_slice(), key]) {
                // Body without the 2-byte RDB version and the 8-byte CRC.
                Reply::Bulk(mut b) if b.len() >= 10 => {
                    b.truncate(b.len() - 10);
                    Value::Module {
                        type_name: other.to_string(),
                        dump: b,
                    }
                }
                _ => Value::Other(other.to_string()),
            },
        };
        let pttl = self.conn.int([b"PTTL".as_slice(), key]);
        let expire_at_ms = (pttl >= 0).then(|| now_ms() + pttl);
        Some(Entry {
            value,
            expire_at_ms,
            field_expire_at_ms,
        })
    }

    /// `HPEXPIRETIME key FIELDS n f...` for every field: those with a TTL.
    fn field_expiries(
        &mut self,
        key: &[u8],
        hash: &BTreeMap<Vec<u8>, Vec<u8>>,
    ) -> BTreeMap<Vec<u8>, i64> {
        let mut out = BTreeMap::new();
        if hash.is_empty() || self.field_ttls == Some(false) {
            return out;
        }
        let n = hash.len().to_string();
        let mut cmd: Vec<&[u8]> = vec![b"HPEXPIRETIME", key, b"FIELDS", n.as_bytes()];
        cmd.extend(hash.keys().map(Vec::as_slice));
        match self.conn.cmd(cmd) {
            Reply::Array(times) => {
                self.field_ttls = Some(true);
                for (field, t) in hash.keys().zip(times) {
                    if let Reply::Int(t) = t {
                        if t >= 0 {
                            out.insert(field.clone(), t);
                        }
                    }
                }
            }
            // An older server: no field TTLs anywhere.
            Reply::Error(e) if self.field_ttls.is_none() && e.contains("unknown command") => {
                self.field_ttls = Some(false);
            }
            other => panic!("HPEXPIRETIME {:?}: {other:?}", String::from_utf8_lossy(key)),
        }
        out
    }
}

fn read_topk(conn: &mut Conn, key: &[u8]) -> Option<Value> {
    let info = match conn.cmd([b"TOPK.INFO".as_slice(), key]) {
        Reply::Array(items) => items.iter().map(Reply::text).collect(),
        _ => return None,
    };
    let Reply::Array(flat) = conn.cmd([b"TOPK.LIST".as_slice(), key, b"WITHCOUNT"]) else {
        return None;
    };
    let mut items: Vec<(Vec<u8>, i64)> = flat
        .chunks(2)
        .map(|p| {
            let item = p[0].as_bytes().map(<[u8]>::to_vec).unwrap_or_default();
            let count = match p.get(1) {
                Some(Reply::Int(n)) => *n,
                _ => -1,
            };
            (item, count)
        })
        .collect();
    // Ties in the count have no defined order.
    items.sort();
    Some(Value::TopK { info, items })
}

fn read_timeseries(conn: &mut Conn, key: &[u8]) -> Option<TimeSeries> {
    let Reply::Array(samples) = conn.cmd([b"TS.RANGE".as_slice(), key, b"-", b"+"]) else {
        return None;
    };
    let mut ts = TimeSeries::default();
    for s in samples {
        if let Reply::Array(pair) = s {
            if let [Reply::Int(t), v] = &pair[..] {
                ts.samples.push((*t, v.text()));
            }
        }
    }
    let info = fields(conn.cmd([b"TS.INFO".as_slice(), key]));
    if let Some(Reply::Int(r)) = info.get("retentionTime") {
        ts.retention_ms = *r;
    }
    if let Some(Reply::Array(labels)) = info.get("labels") {
        for l in labels {
            if let Reply::Array(p) = l {
                if let [k, v] = &p[..] {
                    ts.labels.push((k.text(), v.text()));
                }
            }
        }
        ts.labels.sort();
    }
    ts.duplicate_policy = info
        .get("duplicatePolicy")
        .map(Reply::text)
        .unwrap_or_default();
    ts.source_key = info.get("sourceKey").map(Reply::text).unwrap_or_default();
    if let Some(Reply::Array(rules)) = info.get("rules") {
        for r in rules {
            if let Reply::Array(r) = r {
                if let [dest, Reply::Int(bucket), agg, ..] = &r[..] {
                    ts.rules.push((dest.text(), *bucket, agg.text()));
                }
            }
        }
        ts.rules.sort();
    }
    Some(ts)
}

fn read_stream(conn: &mut Conn, key: &[u8]) -> Stream {
    let mut stream = Stream::default();
    if let Reply::Array(entries) = conn.must([b"XRANGE".as_slice(), key, b"-", b"+"]) {
        for e in entries {
            if let Reply::Array(mut pair) = e {
                let fv = pair.pop().map(bulks).unwrap_or_default();
                let id = pair.pop().map(|r| r.text()).unwrap_or_default();
                stream.entries.push((id, fv));
            }
        }
    }
    let info = fields(conn.must([b"XINFO".as_slice(), b"STREAM", key]));
    stream.last_id = info
        .get("last-generated-id")
        .map(Reply::text)
        .unwrap_or_default();
    if let Reply::Array(groups) = conn.must([b"XINFO".as_slice(), b"GROUPS", key]) {
        for g in groups {
            let g = fields(g);
            let name = g.get("name").map(Reply::text).unwrap_or_default();
            let mut group = Group {
                last_delivered: g
                    .get("last-delivered-id")
                    .map(Reply::text)
                    .unwrap_or_default(),
                ..Group::default()
            };
            if let Reply::Array(cs) =
                conn.must([b"XINFO".as_slice(), b"CONSUMERS", key, name.as_bytes()])
            {
                for c in cs {
                    group
                        .consumers
                        .insert(fields(c).get("name").map(Reply::text).unwrap_or_default());
                }
            }
            if let Reply::Array(pel) = conn.must([
                b"XPENDING".as_slice(),
                key,
                name.as_bytes(),
                b"-",
                b"+",
                b"1000000",
            ]) {
                for p in pel {
                    if let Reply::Array(p) = p {
                        if let [id, consumer, _idle, count] = &p[..] {
                            let n = if let Reply::Int(n) = count { *n } else { -1 };
                            group.pending.insert(id.text(), (consumer.text(), n));
                        }
                    }
                }
            }
            stream.groups.insert(name, group);
        }
    }
    stream
}
