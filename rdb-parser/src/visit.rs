//! The zero-copy API: a [`Visitor`] receives every key and value item borrowed from the
//! decoder's input, with no allocation per item.

use crate::event::{Event, Item, KeyMeta, KeyStart, ModuleType, StreamId};
use crate::opcode::{RdbType, ValueKind};

/// Receives the contents of an RDB stream from [`crate::RdbDecoder::decode_into`],
/// [`crate::RdbReader::visit`] or [`crate::visit_all`].
///
/// This is the fast way to read a file: items are handed out borrowed from the input
/// ([`Item`]), so nothing is allocated or reference-counted per element, and keys that lie
/// whole in the buffer are decoded in one pass without the resumable state machine. The
/// calls follow the order of [`Event`]s: [`Visitor::key_start`], the value's items,
/// [`Visitor::key_end`]; everything else (header, `AUX`, `SELECTDB`, stream metadata and
/// groups, module data, `EOF`, ...) comes to [`Visitor::event`] as the owned [`Event`].
///
/// Every method has an empty default. Per value kind:
/// - string: one or more [`Visitor::string`] pieces (concatenate them; a raw string longer
///   than [`crate::Options::string_piece`] comes in pieces of that size);
/// - list, set, sorted set, hash: one call per element;
/// - stream: [`Visitor::stream_entry`] per live entry, then [`Event::StreamMeta`], the
///   groups and consumers as events (as in the [`Event`] API);
/// - module: [`Event::ModuleData`] events.
///
/// With [`crate::Options::raw_values`], [`Visitor::raw_value`] pieces come between
/// `key_start` and `key_end`; concatenated they are the serialized value (type byte first),
/// as the [`Event::RawValue`] chunks are.
///
/// ```
/// use rdb_parser::{visit_all, Item, KeyRef, Options, Visitor};
///
/// #[derive(Default)]
/// struct Count { keys: u64, bytes: usize }
///
/// impl Visitor for Count {
///     fn key_start(&mut self, _key: &KeyRef<'_>) { self.keys += 1 }
///     fn string(&mut self, piece: Item<'_>) { self.bytes += piece.len() }
/// }
///
/// let file: &[u8] = b"REDIS0003\xfe\x00\x00\x01k\x01v\xff";
/// let mut count = Count::default();
/// visit_all(file, Options::default(), &mut count)?;
/// assert_eq!((count.keys, count.bytes), (1, 1));
/// # Ok::<(), rdb_parser::Error>(())
/// ```
#[allow(unused_variables)]
pub trait Visitor {
    /// A key begins.
    fn key_start(&mut self, key: &KeyRef<'_>) {}
    /// (A piece of) a string value.
    fn string(&mut self, piece: Item<'_>) {}
    /// A list element, in order.
    fn list_item(&mut self, item: Item<'_>) {}
    /// A set member.
    fn set_member(&mut self, member: Item<'_>) {}
    /// A sorted set member and its score, in the order stored.
    fn zset_entry(&mut self, member: Item<'_>, score: f64) {}
    /// A hash field, its value and its absolute TTL (ms) where the type stores field TTLs.
    fn hash_entry(&mut self, field: Item<'_>, value: Item<'_>, expire_at_ms: Option<u64>) {}
    /// A live stream entry with its field/value pairs.
    fn stream_entry(&mut self, id: StreamId, fields: &[(Item<'_>, Item<'_>)]) {}
    /// A piece of the raw serialized value (only with [`crate::Options::raw_values`]).
    fn raw_value(&mut self, piece: &[u8]) {}
    /// The current key's value is complete.
    fn key_end(&mut self) {}
    /// Every other event: [`Event::Header`], [`Event::Aux`], [`Event::SelectDb`],
    /// [`Event::ResizeDb`], [`Event::SlotInfo`], [`Event::ModuleAux`], [`Event::Function`],
    /// [`Event::SlotImport`], the stream events after the entries, [`Event::ModuleData`],
    /// [`Event::Eof`].
    fn event(&mut self, event: Event) {}
}

/// The start of a key, borrowed: what [`KeyStart`] holds, handed to
/// [`Visitor::key_start`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct KeyRef<'a> {
    /// The database (from the last `SELECTDB`, 0 before any).
    pub db: u32,
    /// The key.
    pub key: &'a [u8],
    /// The type byte as written.
    pub type_byte: u8,
    /// The serialized form.
    pub rdb_type: RdbType,
    /// Absolute expiry time in milliseconds since the epoch, if any.
    pub expire_at_ms: Option<i64>,
    /// LRU idle time in seconds, if any.
    pub lru_idle: Option<u64>,
    /// LFU frequency, if any.
    pub lfu_freq: Option<u8>,
    /// Per-key metadata written before the type.
    pub meta: &'a [KeyMeta],
    /// For module values: the module type.
    pub module: Option<&'a ModuleType>,
    /// For Redis 7.4+ hash types 24 and 25: the minimum field expiry stored before the value.
    pub min_field_expire_ms: Option<u64>,
}

impl KeyRef<'_> {
    /// The logical type.
    pub fn kind(&self) -> ValueKind {
        self.rdb_type.kind()
    }

    /// An owned copy.
    pub fn to_key_start(&self) -> KeyStart {
        KeyStart {
            db: self.db,
            key: bytes::Bytes::copy_from_slice(self.key),
            type_byte: self.type_byte,
            rdb_type: self.rdb_type,
            expire_at_ms: self.expire_at_ms,
            lru_idle: self.lru_idle,
            lfu_freq: self.lfu_freq,
            meta: self.meta.to_vec(),
            module: self.module.cloned(),
            min_field_expire_ms: self.min_field_expire_ms,
        }
    }
}

impl KeyStart {
    /// A borrowed view, as [`Visitor::key_start`] receives it.
    pub fn as_key_ref(&self) -> KeyRef<'_> {
        KeyRef {
            db: self.db,
            key: &self.key,
            type_byte: self.type_byte,
            rdb_type: self.rdb_type,
            expire_at_ms: self.expire_at_ms,
            lru_idle: self.lru_idle,
            lfu_freq: self.lfu_freq,
            meta: &self.meta,
            module: self.module.as_ref(),
            min_field_expire_ms: self.min_field_expire_ms,
        }
    }
}

impl Event {
    /// Hands this event to the [`Visitor`] method it belongs to, as
    /// [`crate::RdbDecoder::decode_into`] does with the events of the state machine (so a
    /// visitor can also be driven from [`crate::RdbDecoder::decode`] or [`crate::RdbReader`]).
    pub fn visit<V: Visitor + ?Sized>(self, v: &mut V) {
        dispatch(self, v)
    }
}

/// Hands an owned event to the visitor method it belongs to.
pub(crate) fn dispatch<V: Visitor + ?Sized>(ev: Event, v: &mut V) {
    match ev {
        Event::KeyStart(k) => v.key_start(&k.as_key_ref()),
        Event::String(s) => v.string(s.as_item()),
        Event::ListItems(items) => items.iter().for_each(|i| v.list_item(i.as_item())),
        Event::SetMembers(items) => items.iter().for_each(|i| v.set_member(i.as_item())),
        Event::ZSetEntries(entries) => entries
            .iter()
            .for_each(|e| v.zset_entry(e.member.as_item(), e.score)),
        Event::HashEntries(entries) => entries
            .iter()
            .for_each(|e| v.hash_entry(e.field.as_item(), e.value.as_item(), e.expire_at_ms)),
        Event::StreamEntries(entries) => {
            let mut fields = Vec::new();
            for e in &entries {
                fields.clear();
                fields.extend(e.fields.iter().map(|(f, x)| (f.as_item(), x.as_item())));
                v.stream_entry(e.id, &fields);
            }
        }
        Event::RawValue(b) => v.raw_value(&b),
        Event::KeyEnd => v.key_end(),
        other => v.event(other),
    }
}
