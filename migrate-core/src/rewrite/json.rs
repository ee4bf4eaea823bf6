//! JSON lines: one JSON object per key, written as the events arrive.
//!
//! Each line is
//! `{"db":0,"key":S,"type":"list","expire_at_ms":null,"value":...}` where `S`, a Redis
//! string, is a JSON string when the bytes are valid UTF-8 and `{"base64":"..."}` otherwise
//! (integer-encoded strings are their decimal text). `expire_at_ms` is the absolute expiry in
//! Unix milliseconds or `null`. `value` per `type`:
//!
//! | type | value |
//! |---|---|
//! | `string` | `S` |
//! | `list` | `[S, ...]` in order |
//! | `set` | `[S, ...]` |
//! | `zset` | `[[S, score], ...]`; `score` a JSON number (shortest round-trip form) or `"inf"`, `"-inf"`, `"nan"` |
//! | `hash` | `[[field S, value S], ...]`; a field with its own TTL has a third element, its absolute expiry in ms |
//! | `stream` | `{"entries":[{"id":"ms-seq","fields":[[S,S],...]},...],"length":n,"last_id":"ms-seq","first_id":id\|null,"max_deleted_id":id\|null,"entries_added":n\|null,"groups":[{"name":S,"last_id":id,"entries_read":n\|null,"pending":[{"id":id,"delivery_time_ms":n,"delivery_count":n},...],"consumers":[{"name":S,"seen_time_ms":n,"active_time_ms":n\|null,"pending":[id,...]},...]},...]}` |
//! | `module` | `{"module":"name","encver":n,"raw":{"base64":"..."}}` (the raw tagged values) |
//!
//! A function library is a line with `"type":"function"`, `"db":null`, `"key"`: the library
//! name (or `null`), `"expire_at_ms":null` and `"value":S`, the code as `FUNCTION LOAD` takes it.
//!
//! Collections stream through (memory stays bounded by the decoder's chunks); a string
//! value and a module value are held whole until their end (to choose between a JSON string
//! and base64).
//!
//! ```
//! use migrate_core::rewrite::json::JsonWriter;
//!
//! let events = rdb_parser::decode_all(b"REDIS0003\xfe\x00\x00\x01k\x01v\xff", Default::default())?;
//! let mut json = JsonWriter::new();
//! let mut out = Vec::new();
//! for ev in &events {
//!     json.push(ev, &mut out);
//! }
//! assert_eq!(
//!     String::from_utf8(out).unwrap(),
//!     "{\"db\":0,\"key\":\"k\",\"type\":\"string\",\"expire_at_ms\":null,\"value\":\"v\"}\n"
//! );
//! # Ok::<(), rdb_parser::Error>(())
//! ```

use std::fmt::Write as _;

use bytes::BytesMut;
use rdb_parser::{Event, Str, StreamId, ValueKind};

use super::format_score;

/// Writes [`Event`]s as JSON lines (see the [module documentation](self)).
#[derive(Debug, Default)]
pub struct JsonWriter {
    key: Option<KeyJson>,
}

#[derive(Debug)]
enum KeyJson {
    /// A string or module value, held until its end.
    Whole {
        buf: BytesMut,
        module: bool,
    },
    /// An array of items; `n` written so far.
    Array {
        n: u64,
    },
    Stream(StreamJson),
}

#[derive(Debug, Default)]
struct StreamJson {
    entries_open: bool,
    entries: u64,
    meta_done: bool,
    groups: u64,
    in_group: bool,
    pending_open: bool,
    pending: u64,
    in_consumer: bool,
    consumers: u64,
    consumer_pending: u64,
}

impl JsonWriter {
    /// A writer between keys.
    pub fn new() -> JsonWriter {
        JsonWriter::default()
    }

    /// Appends what `ev` contributes to `out`; returns `true` when a line was completed.
    pub fn push(&mut self, ev: &Event, out: &mut Vec<u8>) -> bool {
        match ev {
            Event::KeyStart(k) => {
                let _ = write!(Buf(out), "{{\"db\":{},\"key\":", k.db);
                put_str(out, &k.key);
                let kind = k.kind();
                let _ = write!(
                    Buf(out),
                    ",\"type\":\"{}\",\"expire_at_ms\":",
                    kind.as_str()
                );
                match k.expire_at_ms {
                    Some(ms) => {
                        let _ = write!(Buf(out), "{ms}");
                    }
                    None => out.extend_from_slice(b"null"),
                }
                out.extend_from_slice(b",\"value\":");
                self.key = Some(match kind {
                    ValueKind::String => KeyJson::Whole {
                        buf: BytesMut::new(),
                        module: false,
                    },
                    ValueKind::Module => {
                        out.extend_from_slice(b"{\"module\":");
                        match &k.module {
                            Some(m) => {
                                put_str(out, m.name.as_bytes());
                                let _ = write!(Buf(out), ",\"encver\":{}", m.encver);
                            }
                            None => out.extend_from_slice(b"null,\"encver\":null"),
                        }
                        out.extend_from_slice(b",\"raw\":");
                        KeyJson::Whole {
                            buf: BytesMut::new(),
                            module: true,
                        }
                    }
                    ValueKind::Stream => KeyJson::Stream(StreamJson::default()),
                    _ => {
                        out.push(b'[');
                        KeyJson::Array { n: 0 }
                    }
                });
                false
            }
            Event::KeyEnd => {
                match self.key.take() {
                    None => return false,
                    Some(KeyJson::Whole { buf, module }) => {
                        if module {
                            put_base64(out, &buf);
                            out.push(b'}');
                        } else {
                            put_str(out, &buf);
                        }
                    }
                    Some(KeyJson::Array { .. }) => out.push(b']'),
                    Some(KeyJson::Stream(mut s)) => s.close(out),
                }
                out.extend_from_slice(b"}\n");
                true
            }
            Event::Function(f) => {
                out.extend_from_slice(b"{\"db\":null,\"key\":");
                let name = f.name.clone().or_else(|| {
                    let line = f.code.split(|&b| b == b'\n').next().unwrap_or(&[]);
                    line.split(|&b| b == b' ')
                        .find_map(|w| w.strip_prefix(b"name="))
                        .map(|n| f.code.slice_ref(n))
                });
                match name {
                    Some(n) => put_str(out, &n),
                    None => out.extend_from_slice(b"null"),
                }
                out.extend_from_slice(b",\"type\":\"function\",\"expire_at_ms\":null,\"value\":");
                put_str(out, &f.code);
                out.extend_from_slice(b"}\n");
                true
            }
            _ => {
                if let Some(k) = &mut self.key {
                    k.push(ev, out);
                }
                false
            }
        }
    }
}

impl KeyJson {
    fn push(&mut self, ev: &Event, out: &mut Vec<u8>) {
        match (self, ev) {
            (KeyJson::Whole { buf, module: false }, Event::String(s)) => {
                s.with_bytes(|b| buf.extend_from_slice(b))
            }
            (KeyJson::Whole { buf, module: true }, Event::ModuleData(b)) => {
                buf.extend_from_slice(b)
            }
            (KeyJson::Array { n }, Event::ListItems(items) | Event::SetMembers(items)) => {
                for item in items {
                    comma(out, n);
                    put_s(out, item);
                }
            }
            (KeyJson::Array { n }, Event::ZSetEntries(items)) => {
                for e in items {
                    comma(out, n);
                    out.push(b'[');
                    put_s(out, &e.member);
                    out.push(b',');
                    if e.score.is_finite() {
                        out.extend_from_slice(format_score(e.score).as_bytes());
                    } else {
                        let _ = write!(Buf(out), "\"{}\"", format_score(e.score));
                    }
                    out.push(b']');
                }
            }
            (KeyJson::Array { n }, Event::HashEntries(items)) => {
                for e in items {
                    comma(out, n);
                    out.push(b'[');
                    put_s(out, &e.field);
                    out.push(b',');
                    put_s(out, &e.value);
                    if let Some(ms) = e.expire_at_ms {
                        let _ = write!(Buf(out), ",{ms}");
                    }
                    out.push(b']');
                }
            }
            (KeyJson::Stream(s), ev) => s.push(ev, out),
            _ => {}
        }
    }
}

impl StreamJson {
    fn open_entries(&mut self, out: &mut Vec<u8>) {
        if !self.entries_open {
            out.extend_from_slice(b"{\"entries\":[");
            self.entries_open = true;
        }
    }

    fn meta(&mut self, meta: Option<&rdb_parser::StreamMeta>, out: &mut Vec<u8>) {
        self.open_entries(out);
        out.push(b']');
        if let Some(m) = meta {
            let _ = write!(
                Buf(out),
                ",\"length\":{},\"last_id\":\"{}\",\"first_id\":{},\"max_deleted_id\":{},\"entries_added\":{}",
                m.length,
                m.last_id,
                opt_id(m.first_id),
                opt_id(m.max_deleted_id),
                m.entries_added.map_or("null".to_string(), |n| n.to_string()),
            );
        }
        out.extend_from_slice(b",\"groups\":[");
        self.meta_done = true;
    }

    fn close_group(&mut self, out: &mut Vec<u8>) {
        if !self.in_group {
            return;
        }
        if self.pending_open {
            out.extend_from_slice(b"],\"consumers\":[");
            self.pending_open = false;
        }
        if self.in_consumer {
            out.extend_from_slice(b"]}");
            self.in_consumer = false;
        }
        out.extend_from_slice(b"]}");
        self.in_group = false;
    }

    fn push(&mut self, ev: &Event, out: &mut Vec<u8>) {
        match ev {
            Event::StreamEntries(entries) => {
                self.open_entries(out);
                for e in entries {
                    comma(out, &mut self.entries);
                    let _ = write!(Buf(out), "{{\"id\":\"{}\",\"fields\":[", e.id);
                    for (i, (f, v)) in e.fields.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.push(b'[');
                        put_s(out, f);
                        out.push(b',');
                        put_s(out, v);
                        out.push(b']');
                    }
                    out.extend_from_slice(b"]}");
                }
            }
            Event::StreamMeta(m) => self.meta(Some(m), out),
            Event::StreamGroup(g) => {
                if !self.meta_done {
                    self.meta(None, out);
                }
                self.close_group(out);
                comma(out, &mut self.groups);
                out.extend_from_slice(b"{\"name\":");
                put_str(out, &g.name);
                let _ = write!(
                    Buf(out),
                    ",\"last_id\":\"{}\",\"entries_read\":{},\"pending\":[",
                    g.last_id,
                    g.entries_read.map_or("null".to_string(), |n| n.to_string())
                );
                self.in_group = true;
                self.pending_open = true;
                self.pending = 0;
                self.consumers = 0;
            }
            Event::StreamPending(p) if self.pending_open => {
                for p in p {
                    comma(out, &mut self.pending);
                    let _ = write!(
                        Buf(out),
                        "{{\"id\":\"{}\",\"delivery_time_ms\":{},\"delivery_count\":{}}}",
                        p.id,
                        p.delivery_time_ms,
                        p.delivery_count
                    );
                }
            }
            Event::StreamConsumer(c) if self.in_group => {
                if self.pending_open {
                    out.extend_from_slice(b"],\"consumers\":[");
                    self.pending_open = false;
                }
                if self.in_consumer {
                    out.extend_from_slice(b"]}");
                }
                comma(out, &mut self.consumers);
                out.extend_from_slice(b"{\"name\":");
                put_str(out, &c.name);
                let _ = write!(
                    Buf(out),
                    ",\"seen_time_ms\":{},\"active_time_ms\":{},\"pending\":[",
                    c.seen_time_ms,
                    c.active_time_ms
                        .map_or("null".to_string(), |n| n.to_string())
                );
                self.in_consumer = true;
                self.consumer_pending = 0;
            }
            Event::StreamConsumerPending(ids) if self.in_consumer => {
                for id in ids {
                    comma(out, &mut self.consumer_pending);
                    let _ = write!(Buf(out), "\"{id}\"");
                }
            }
            _ => {}
        }
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if !self.meta_done {
            self.meta(None, out);
        }
        self.close_group(out);
        out.extend_from_slice(b"]}");
    }
}

fn opt_id(id: Option<StreamId>) -> String {
    id.map_or("null".to_string(), |id| format!("\"{id}\""))
}

fn comma(out: &mut Vec<u8>, n: &mut u64) {
    if *n > 0 {
        out.push(b',');
    }
    *n += 1;
}

/// `fmt::Write` over a byte vector.
struct Buf<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Buf<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

fn put_s(out: &mut Vec<u8>, s: &Str) {
    match s {
        Str::Int(i) => {
            let _ = write!(Buf(out), "\"{i}\"");
        }
        Str::Bytes(b) => put_str(out, b),
    }
}

/// Writes a Redis string: a JSON string when it is valid UTF-8, else `{"base64":"..."}`.
fn put_str(out: &mut Vec<u8>, b: &[u8]) {
    match std::str::from_utf8(b) {
        Ok(s) => put_json_string(out, s),
        Err(_) => {
            out.extend_from_slice(b"{\"base64\":");
            put_base64(out, b);
            out.push(b'}');
        }
    }
}

/// Writes `s` as a quoted JSON string.
fn put_json_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &c) in bytes.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            let _ = write!(Buf(out), "\\u{c:04x}");
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Writes `b` as a quoted standard base64 string (with padding).
fn put_base64(out: &mut Vec<u8>, b: &[u8]) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    out.push(b'"');
    for chunk in b.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        out.push(ALPHABET[(v >> 18) as usize & 63]);
        out.push(ALPHABET[(v >> 12) as usize & 63]);
        out.push(if n > 1 {
            ALPHABET[(v >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if n > 2 {
            ALPHABET[v as usize & 63]
        } else {
            b'='
        });
    }
    out.push(b'"');
}
