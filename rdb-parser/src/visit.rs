//! The zero-copy API: a [`Visitor`] receives every key and value item borrowed from the
//! decoder's input, with no allocation per item.

use std::ops::ControlFlow;

use crate::event::{Event, Item, KeyMeta, KeyStart, ModuleType, StreamId};
use crate::opcode::{RdbType, ValueKind};

/// Returns `Ok(ControlFlow::Break(()))` from the enclosing function when `$e` breaks.
macro_rules! flow {
    ($e:expr) => {
        if let ::std::ops::ControlFlow::Break(()) = $e {
            return Ok(::std::ops::ControlFlow::Break(()));
        }
    };
}
pub(crate) use flow;

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
/// Every method has a default that does nothing and returns [`ControlFlow::Continue`]. Per
/// value kind:
/// - string: one or more [`Visitor::string`] pieces (concatenate them; a raw string longer
///   than [`crate::Options::string_piece`] comes in pieces of that size);
/// - list, set, sorted set, hash: one call per element;
/// - stream: [`Visitor::stream_entry`] per live entry, then [`Event::StreamMeta`], the
///   groups and consumers as events (as in the [`Event`] API);
/// - module: [`Event::ModuleData`] events.
///
/// With [`crate::Options::raw_values`], [`Visitor::raw_value`] pieces come between
/// `key_start` and `key_end`; concatenated they are the serialized value (type byte first),
/// as the [`Event::RawValue`] chunks are. A key that lies whole in the buffer is first
/// offered in one call, [`Visitor::whole_key`], which a copier can take instead of all the
/// others (the fastest way to pass values through).
///
/// # Stopping
/// Every method returns [`ControlFlow`]: [`ControlFlow::Break`] stops decoding right after
/// that call, and the driver returns `Ok(ControlFlow::Break(()))` to its caller
/// ([`crate::RdbDecoder::decode_into`], [`crate::RdbReader::visit`], [`crate::visit_all`]).
/// Nothing is lost and nothing is poisoned: calling `decode_into` (or `RdbReader::visit`)
/// again resumes with the call that follows the one that stopped, so a visitor can stop to
/// wait (an async consumer flushing its output) or for good (a consumer that failed, or found
/// what it looked for). Where the input position is then:
/// - stopped at a call outside a key (an [`Event`] such as `Header`, `Aux`, `SelectDb`,
///   `Eof`), or at [`Visitor::key_end`]: after that unit; [`crate::RdbDecoder::offset`] is
///   exact;
/// - stopped inside a key decoded in one pass (the key lay whole in the buffer): *before*
///   the key's type byte (its `EXPIRETIME`/`IDLE`/`FREQ` prefixes are consumed and kept), so
///   `offset()` is at most the start of that key; on resume the key is decoded again from
///   the buffer and the calls already made are not repeated;
/// - stopped inside a key decoded by the resumable state machine: after the input of the
///   chunk being handed out; the rest of its calls come on resume.
///
/// [`ControlFlow<()>`] rather than a `Result` with an error type of the visitor's: Rust has
/// no default for associated types, so a `Result` would make every visitor, infallible ones
/// included, name an error type, and the decoder's own [`crate::Error`] would have to wrap it.
/// A fallible visitor keeps its error in a field and breaks, which reads as well:
///
/// ```
/// use std::ops::ControlFlow;
/// use rdb_parser::{visit_all, KeyRef, Options, Visitor};
///
/// /// Stops at the first key longer than 3 bytes, remembering why.
/// #[derive(Default)]
/// struct Check { keys: u64, error: Option<String> }
///
/// impl Visitor for Check {
///     fn key_start(&mut self, key: &KeyRef<'_>) -> ControlFlow<()> {
///         if key.key.len() > 3 {
///             self.error = Some(format!("key {:?} too long", key.key));
///             return ControlFlow::Break(());
///         }
///         self.keys += 1;
///         ControlFlow::Continue(())
///     }
/// }
///
/// // Two string keys, "k" and "long".
/// let file: &[u8] = b"REDIS0003\xfe\x00\x00\x01k\x01v\x00\x04long\x01v\xff";
/// let mut check = Check::default();
/// let flow = visit_all(file, Options::default(), &mut check)?;
/// assert!(flow.is_break());
/// assert_eq!((check.keys, check.error.is_some()), (1, true));
/// # Ok::<(), rdb_parser::Error>(())
/// ```
///
/// A counter:
///
/// ```
/// use std::ops::ControlFlow;
/// use rdb_parser::{visit_all, Item, KeyRef, Options, Visitor};
///
/// #[derive(Default)]
/// struct Count { keys: u64, bytes: usize, record_bytes: u64 }
///
/// impl Visitor for Count {
///     fn key_start(&mut self, _key: &KeyRef<'_>) -> ControlFlow<()> {
///         self.keys += 1;
///         ControlFlow::Continue(())
///     }
///     fn string(&mut self, piece: Item<'_>) -> ControlFlow<()> {
///         self.bytes += piece.len();
///         ControlFlow::Continue(())
///     }
///     fn key_end(&mut self, record_len: u64) -> ControlFlow<()> {
///         self.record_bytes += record_len;
///         ControlFlow::Continue(())
///     }
/// }
///
/// let file: &[u8] = b"REDIS0003\xfe\x00\x00\x01k\x01v\xff";
/// let mut count = Count::default();
/// visit_all(file, Options::default(), &mut count)?;
/// // The record: type byte, key (length + 1 byte), value (length + 1 byte).
/// assert_eq!((count.keys, count.bytes, count.record_bytes), (1, 1, 5));
/// # Ok::<(), rdb_parser::Error>(())
/// ```
#[allow(unused_variables)]
pub trait Visitor {
    /// A key begins.
    fn key_start(&mut self, key: &KeyRef<'_>) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    /// (A piece of) a string value.
    fn string(&mut self, piece: Item<'_>) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    /// A list element, in order.
    fn list_item(&mut self, item: Item<'_>) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    /// A set member.
    fn set_member(&mut self, member: Item<'_>) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    /// A sorted set member and its score, in the order stored.
    fn zset_entry(&mut self, member: Item<'_>, score: f64) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    /// A hash field, its value and its absolute TTL (ms) where the type stores field TTLs.
    fn hash_entry(
        &mut self,
        field: Item<'_>,
        value: Item<'_>,
        expire_at_ms: Option<u64>,
    ) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    /// A live stream entry with its field/value pairs.
    fn stream_entry(&mut self, id: StreamId, fields: &[(Item<'_>, Item<'_>)]) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    /// A piece of the raw serialized value (only with [`crate::Options::raw_values`]).
    fn raw_value(&mut self, piece: &[u8]) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    /// Raw pass-through of a whole key in one call: offered, with
    /// [`crate::Options::raw_values`], for a key that lies whole in the buffer, before any
    /// other call of it. `value` is its raw serialized value after the type byte
    /// ([`KeyRef::type_byte`]): `[type_byte]` followed by `value` is what the
    /// [`Visitor::raw_value`] pieces of the key would total (a `DUMP` payload without its
    /// footer). `record_len` is as [`Visitor::key_end`]'s.
    ///
    /// `Some(flow)`: the visitor took the key; no other call comes for it (no `key_start`,
    /// `wants`, `raw_value`, items or `key_end`), and `flow` stops or continues decoding as
    /// `key_end`'s answer would. `None` (the default): nothing was done, and the key is
    /// visited as usual. The value is not decoded either way before the visitor answers
    /// (its bytes count in the CRC; a corrupt value inside a valid file is not noticed by a
    /// visitor that takes it).
    ///
    /// Keys decoded by the resumable state machine, and a key decoded again after a stop
    /// inside it, are not offered. One call, at a key that costs a visitor the least as a
    /// whole (a copier that writes the value on as it is, e.g. as one `RESTORE`).
    fn whole_key(
        &mut self,
        key: &KeyRef<'_>,
        value: &[u8],
        record_len: u64,
    ) -> Option<ControlFlow<()>> {
        None
    }
    /// Raw pass-through: asked right after [`Visitor::key_start`] of a key decoded in one
    /// pass (it lies whole in the buffer), with the size of its raw serialized value (type
    /// byte included, as the [`Visitor::raw_value`] pieces total). Returning `false` skips
    /// the value: no item calls and no value events (stream metadata, groups) come, only
    /// the `raw_value` pieces (with [`crate::Options::raw_values`]) and
    /// [`Visitor::key_end`]. The value's bytes still count in the CRC, but they are not
    /// decoded, so a corrupt value inside a valid file is not noticed here. Default `true`.
    ///
    /// Keys decoded by the resumable state machine (cut by the end of the buffer, or in an
    /// encoding the one-pass path leaves to it) are not asked: their items always come.
    /// This is a question, not a call: it is not counted for [stopping](Visitor#stopping),
    /// and a key decoded again after a stop inside it is asked again; answer the same.
    fn wants_items(&mut self, value_len: u64) -> bool {
        true
    }
    /// How much of the value the visitor needs, asked where [`Visitor::wants_items`] is
    /// (and in its place: the driver asks only this; the default answers [`Want::Items`] or
    /// [`Want::Nothing`] from `wants_items`). [`Want::Count`] asks for the number of
    /// elements alone, in one [`Visitor::element_count`] call instead of the item calls:
    /// it is read from the value's headers (lengths, the declared count of a ziplist,
    /// listpack or intset, a compressed string's raw length) without decoding the elements
    /// where the encoding allows, so a corrupt element inside a valid header is not noticed.
    /// A stream (and a key the one-pass path does not take) gives its items instead.
    /// The same rules as `wants_items` apply: a question, not a call; answer the same again.
    fn wants(&mut self, value_len: u64) -> Want {
        if self.wants_items(value_len) {
            Want::Items
        } else {
            Want::Nothing
        }
    }
    /// The number of elements of the current key's value, after [`Visitor::wants`]
    /// answered [`Want::Count`]: list items, set members, sorted set entries or hash fields;
    /// for a string, its length in bytes (as [`Item::len`] totals over its pieces).
    fn element_count(&mut self, elements: u64) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    /// The current key's value is complete. `record_len` is the size of the key's whole
    /// record in the stream, from [`KeyRef::record_offset`]: its per-key prefixes
    /// (`EXPIRETIME`, `IDLE`, `FREQ`, `KEY_META`, `RAM_LRU`), type byte, key and value.
    fn key_end(&mut self, record_len: u64) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    /// Every other event: [`Event::Header`], [`Event::Aux`], [`Event::SelectDb`],
    /// [`Event::ResizeDb`], [`Event::SlotInfo`], [`Event::ModuleAux`], [`Event::Function`],
    /// [`Event::SlotImport`], the stream events after the entries, [`Event::ModuleData`],
    /// [`Event::Eof`].
    fn event(&mut self, event: Event) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

impl<V: Visitor + ?Sized> Visitor for &mut V {
    fn key_start(&mut self, key: &KeyRef<'_>) -> ControlFlow<()> {
        (**self).key_start(key)
    }
    fn string(&mut self, piece: Item<'_>) -> ControlFlow<()> {
        (**self).string(piece)
    }
    fn list_item(&mut self, item: Item<'_>) -> ControlFlow<()> {
        (**self).list_item(item)
    }
    fn set_member(&mut self, member: Item<'_>) -> ControlFlow<()> {
        (**self).set_member(member)
    }
    fn zset_entry(&mut self, member: Item<'_>, score: f64) -> ControlFlow<()> {
        (**self).zset_entry(member, score)
    }
    fn hash_entry(
        &mut self,
        field: Item<'_>,
        value: Item<'_>,
        expire_at_ms: Option<u64>,
    ) -> ControlFlow<()> {
        (**self).hash_entry(field, value, expire_at_ms)
    }
    fn stream_entry(&mut self, id: StreamId, fields: &[(Item<'_>, Item<'_>)]) -> ControlFlow<()> {
        (**self).stream_entry(id, fields)
    }
    fn raw_value(&mut self, piece: &[u8]) -> ControlFlow<()> {
        (**self).raw_value(piece)
    }
    fn whole_key(
        &mut self,
        key: &KeyRef<'_>,
        value: &[u8],
        record_len: u64,
    ) -> Option<ControlFlow<()>> {
        (**self).whole_key(key, value, record_len)
    }
    fn wants_items(&mut self, value_len: u64) -> bool {
        (**self).wants_items(value_len)
    }
    fn wants(&mut self, value_len: u64) -> Want {
        (**self).wants(value_len)
    }
    fn element_count(&mut self, elements: u64) -> ControlFlow<()> {
        (**self).element_count(elements)
    }
    fn key_end(&mut self, record_len: u64) -> ControlFlow<()> {
        (**self).key_end(record_len)
    }
    fn event(&mut self, event: Event) -> ControlFlow<()> {
        (**self).event(event)
    }
}

/// What a [`Visitor`] needs of a key's value: its answer to [`Visitor::wants`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Want {
    /// Every item, decoded (the default).
    Items,
    /// The number of elements only, in one [`Visitor::element_count`] call.
    Count,
    /// Nothing: the value is not decoded (raw pass-through; the
    /// [`Visitor::raw_value`] pieces still come with [`crate::Options::raw_values`]).
    Nothing,
}

/// Passes calls on to a visitor after skipping the first `skip` (those already made before
/// a stop), and counts them (to know where to resume after the next stop).
pub(crate) struct Gate<'v, V: ?Sized> {
    pub(crate) v: &'v mut V,
    skip: u64,
    pub(crate) seen: u64,
}

impl<'v, V: Visitor + ?Sized> Gate<'v, V> {
    #[inline(always)]
    pub(crate) fn new(v: &'v mut V, skip: u64) -> Gate<'v, V> {
        Gate { v, skip, seen: 0 }
    }

    #[inline(always)]
    fn pass(&mut self) -> bool {
        self.seen += 1;
        self.seen > self.skip
    }
}

macro_rules! gated {
    ($self:ident, $call:expr) => {
        if $self.pass() {
            $call
        } else {
            ControlFlow::Continue(())
        }
    };
}

impl<V: Visitor + ?Sized> Visitor for Gate<'_, V> {
    #[inline(always)]
    fn key_start(&mut self, key: &KeyRef<'_>) -> ControlFlow<()> {
        gated!(self, self.v.key_start(key))
    }
    #[inline(always)]
    fn string(&mut self, piece: Item<'_>) -> ControlFlow<()> {
        gated!(self, self.v.string(piece))
    }
    #[inline(always)]
    fn list_item(&mut self, item: Item<'_>) -> ControlFlow<()> {
        gated!(self, self.v.list_item(item))
    }
    #[inline(always)]
    fn set_member(&mut self, member: Item<'_>) -> ControlFlow<()> {
        gated!(self, self.v.set_member(member))
    }
    #[inline(always)]
    fn zset_entry(&mut self, member: Item<'_>, score: f64) -> ControlFlow<()> {
        gated!(self, self.v.zset_entry(member, score))
    }
    #[inline(always)]
    fn hash_entry(
        &mut self,
        field: Item<'_>,
        value: Item<'_>,
        expire_at_ms: Option<u64>,
    ) -> ControlFlow<()> {
        gated!(self, self.v.hash_entry(field, value, expire_at_ms))
    }
    #[inline(always)]
    fn stream_entry(&mut self, id: StreamId, fields: &[(Item<'_>, Item<'_>)]) -> ControlFlow<()> {
        gated!(self, self.v.stream_entry(id, fields))
    }
    #[inline(always)]
    fn raw_value(&mut self, piece: &[u8]) -> ControlFlow<()> {
        gated!(self, self.v.raw_value(piece))
    }
    #[inline(always)]
    fn wants_items(&mut self, value_len: u64) -> bool {
        self.v.wants_items(value_len)
    }
    #[inline(always)]
    fn wants(&mut self, value_len: u64) -> Want {
        self.v.wants(value_len)
    }
    #[inline(always)]
    fn element_count(&mut self, elements: u64) -> ControlFlow<()> {
        gated!(self, self.v.element_count(elements))
    }
    #[inline(always)]
    fn key_end(&mut self, record_len: u64) -> ControlFlow<()> {
        gated!(self, self.v.key_end(record_len))
    }
    #[inline(always)]
    fn event(&mut self, event: Event) -> ControlFlow<()> {
        gated!(self, self.v.event(event))
    }
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
    /// Offset in the stream where the key's record starts: its first per-key prefix
    /// (`EXPIRETIME(_MS)`, `IDLE`, `FREQ`, `KEY_META`, `RAM_LRU`) written right before the
    /// type byte, or the type byte. [`Visitor::key_end`] receives the record's length.
    pub record_offset: u64,
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
            record_offset: self.record_offset,
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
            record_offset: self.record_offset,
        }
    }
}

impl Event {
    /// Hands this event to the [`Visitor`] method it belongs to, as
    /// [`crate::RdbDecoder::decode_into`] does with the events of the state machine (so a
    /// visitor can also be driven from [`crate::RdbDecoder::decode`] or [`crate::RdbReader`]).
    ///
    /// `record_len` is what [`Visitor::key_end`] receives when this is [`Event::KeyEnd`],
    /// which carries no length: the decoder's [`crate::RdbDecoder::offset`] when it returned
    /// the `KeyEnd`, minus the key's [`KeyStart::record_offset`]. It is ignored for other
    /// events. Returns the visitor's [`ControlFlow`] (an event of several items stops at the
    /// item that broke).
    pub fn visit<V: Visitor + ?Sized>(self, v: &mut V, record_len: u64) -> ControlFlow<()> {
        if is_items(&self) {
            dispatch_items(&self, v, record_len)
        } else {
            v.event(self)
        }
    }
}

/// `true` for the events whose contents go to item methods (not to [`Visitor::event`]).
#[inline]
pub(crate) fn is_items(ev: &Event) -> bool {
    matches!(
        ev,
        Event::KeyStart(_)
            | Event::String(_)
            | Event::ListItems(_)
            | Event::SetMembers(_)
            | Event::ZSetEntries(_)
            | Event::HashEntries(_)
            | Event::StreamEntries(_)
            | Event::RawValue(_)
            | Event::KeyEnd
    )
}

/// Hands an item event (see [`is_items`]) to the visitor methods it belongs to, stopping at
/// the first call that breaks.
pub(crate) fn dispatch_items<V: Visitor + ?Sized>(
    ev: &Event,
    v: &mut V,
    record_len: u64,
) -> ControlFlow<()> {
    fn each<T>(items: &[T], mut f: impl FnMut(&T) -> ControlFlow<()>) -> ControlFlow<()> {
        for i in items {
            f(i)?;
        }
        ControlFlow::Continue(())
    }
    match ev {
        Event::KeyStart(k) => v.key_start(&k.as_key_ref()),
        Event::String(s) => v.string(s.as_item()),
        Event::ListItems(items) => each(items, |i| v.list_item(i.as_item())),
        Event::SetMembers(items) => each(items, |i| v.set_member(i.as_item())),
        Event::ZSetEntries(entries) => each(entries, |e| v.zset_entry(e.member.as_item(), e.score)),
        Event::HashEntries(entries) => each(entries, |e| {
            v.hash_entry(e.field.as_item(), e.value.as_item(), e.expire_at_ms)
        }),
        Event::StreamEntries(entries) => {
            let mut fields = Vec::new();
            for e in entries {
                fields.clear();
                fields.extend(e.fields.iter().map(|(f, x)| (f.as_item(), x.as_item())));
                v.stream_entry(e.id, &fields)?;
            }
            ControlFlow::Continue(())
        }
        Event::RawValue(b) => v.raw_value(b),
        Event::KeyEnd => v.key_end(record_len),
        _ => ControlFlow::Continue(()),
    }
}
