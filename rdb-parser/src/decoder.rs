//! The sans-IO decoder: feed bytes, take events.

use std::ops::ControlFlow;

use bytes::{Buf, Bytes, BytesMut};

use crate::cursor::need;
use crate::error::{Error, KeyName};
use crate::event::{
    Aux, Checksum, Eof, Event, Function, Header, KeyMeta, KeyStart, ModuleAux, ModuleType,
};
use crate::opcode::{op, Family, RdbType};
use crate::types::module::{module_type, Tagged, TaggedStep};
use crate::types::ValueState;
use crate::visit::{dispatch_items, is_items, Gate, Visitor};

use crate::input::{Io, Options, Pending, Step};

#[derive(Debug)]
enum State {
    Magic,
    Opcode,
    Key {
        type_byte: u8,
        rdb_type: RdbType,
        at: u64,
    },
    Value(ValueState),
    ModuleAux {
        module: ModuleType,
        when: u64,
        tagged: Tagged,
    },
    KeyMeta {
        left: u64,
        class: Option<(u32, Tagged)>,
    },
    Checksum,
    Done,
    Failed,
}

/// The streaming RDB decoder (sans-IO).
///
/// Feed it with [`RdbDecoder::decode`]: it consumes from the front of the buffer only the bytes
/// it has fully used and returns `Ok(None)` when it needs more. Call [`RdbDecoder::finish`] at
/// the end of the input to detect truncation. Bytes after the EOF opcode and checksum are left
/// in the buffer (on a replication link they are the command stream).
///
/// ```
/// use bytes::BytesMut;
/// use rdb_parser::{Event, Options, RdbDecoder};
///
/// // An empty RDB 3 file: magic, EOF opcode (no checksum before RDB 5).
/// let mut buf = BytesMut::from(&b"REDIS0003\xff"[..]);
/// let mut dec = RdbDecoder::new(Options::default());
/// let mut events = Vec::new();
/// while let Some(ev) = dec.decode(&mut buf)? {
///     events.push(ev);
/// }
/// dec.finish()?;
/// assert!(matches!(events.last(), Some(Event::Eof(_))));
/// # Ok::<(), rdb_parser::Error>(())
/// ```
#[derive(Debug)]
pub struct RdbDecoder {
    io: Io,
    state: State,
    db: u32,
    pending: Pending,
    /// Key and type byte of the value being decoded (for error context).
    key: Option<(Bytes, u8)>,
    header: Option<Header>,
    /// Decoding a bare value (DUMP payload body): no magic, no key, done after one value.
    bare: bool,
    /// Buffers of the fast path ([`RdbDecoder::decode_into`]).
    scratch: crate::fast::Scratch,
    /// Where the current key's record starts, and (once its `KeyEnd` is queued) its length.
    record_start: u64,
    record_len: u64,
    /// After a visitor stopped: how many calls of the unit at the front (the first queued
    /// event, or the key the fast path decodes next) were already made.
    resume: u64,
}

impl RdbDecoder {
    /// A decoder at the start of an RDB stream.
    pub fn new(opts: Options) -> RdbDecoder {
        RdbDecoder {
            io: Io::new(opts),
            state: State::Magic,
            db: 0,
            pending: Pending::default(),
            key: None,
            header: None,
            bare: false,
            scratch: crate::fast::Scratch::default(),
            record_start: 0,
            record_len: 0,
            resume: 0,
        }
    }

    /// A decoder for a bare value (type byte + value), as in a DUMP payload body, for a
    /// stream of `family` and `version`. It yields `KeyStart` (with an empty key), the value
    /// events and `KeyEnd`, then is done. CRC is not computed.
    pub(crate) fn new_value(opts: Options, family: Family, version: u32) -> RdbDecoder {
        let mut opts = opts;
        opts.verify_checksum = false;
        let mut d = RdbDecoder::new(opts);
        d.io.family = family;
        d.io.version = version;
        d.header = Some(Header { family, version });
        d.state = State::Opcode;
        d.bare = true;
        d
    }

    /// The header, once read.
    pub fn header(&self) -> Option<Header> {
        self.header
    }

    /// Bytes consumed so far (the absolute offset of the next byte).
    pub fn offset(&self) -> u64 {
        self.io.offset
    }

    /// `true` once the EOF event has been produced (or, for a bare value, `KeyEnd`).
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done) && self.io.out.is_empty()
    }

    /// Decodes the next event from the front of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` holds no complete unit (feed more and call again), or
    /// when the stream is done. After an error the decoder is poisoned.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Event>, Error> {
        // Events hand out whole units: a visitor's stop inside one is forgotten.
        self.resume = 0;
        loop {
            if let Some(ev) = self.io.out.pop_front() {
                return Ok(Some(ev));
            }
            match self.step(buf) {
                // A step may queue events (a raw-value chunk) before it runs out of input.
                Ok(Step::NeedMore) => return Ok(self.io.out.pop_front()),
                Ok(_) => {}
                Err(e) => return Err(self.fail(e)),
            }
        }
    }

    /// Decodes everything `buf` holds into `v`, the zero-copy way (see [`Visitor`]).
    ///
    /// Consumes what it decoded and returns `Ok(ControlFlow::Continue(()))` when `buf` holds
    /// no further complete unit (feed more and call again) or when the stream is done
    /// ([`RdbDecoder::is_done`]). Keys that lie whole in `buf` are decoded in one pass and
    /// their items handed out borrowed; a key cut by the end of `buf` is decoded by the
    /// resumable state machine, so feeding any split of the input gives the same calls (the
    /// pieces of [`Visitor::raw_value`] aside, which may be cut differently).
    ///
    /// When a visitor method returns [`ControlFlow::Break`], returns
    /// `Ok(ControlFlow::Break(()))` at once; calling `decode_into` again (with `buf` as it
    /// was left, more bytes appended if you like) resumes with the next call. See
    /// [Stopping](Visitor#stopping) for where the input stands. [`RdbDecoder::decode`] after
    /// a stop returns the stopped unit whole (the key from its `KeyStart`, or the event).
    ///
    /// After an error the decoder is poisoned; the key that failed may have had some items
    /// visited and gets no [`Visitor::key_end`].
    ///
    /// [`RdbDecoder::decode`] and `decode_into` may be mixed on one stream.
    pub fn decode_into<V: Visitor + ?Sized>(
        &mut self,
        buf: &mut BytesMut,
        v: &mut V,
    ) -> Result<ControlFlow<()>, Error> {
        loop {
            if self.drain(v).is_break() {
                return Ok(ControlFlow::Break(()));
            }
            if matches!(self.state, State::Opcode) && !self.bare {
                let r = crate::fast::run(
                    &mut self.io,
                    self.db,
                    &mut self.pending,
                    &mut self.scratch,
                    &mut self.resume,
                    buf,
                    v,
                );
                match r {
                    Ok(ControlFlow::Continue(())) => {}
                    Ok(ControlFlow::Break(())) => return Ok(ControlFlow::Break(())),
                    Err(e) => {
                        self.state = State::Failed;
                        return Err(e);
                    }
                }
            }
            match self.step(buf) {
                Ok(Step::NeedMore) => return Ok(self.drain(v)),
                Ok(_) => {}
                Err(e) => return Err(self.fail(e)),
            }
        }
    }

    /// Hands the queued events to `v`; on a stop, keeps the stopped event at the front with
    /// the count of its calls already made.
    fn drain<V: Visitor + ?Sized>(&mut self, v: &mut V) -> ControlFlow<()> {
        while let Some(ev) = self.io.out.pop_front() {
            if is_items(&ev) {
                let mut gate = Gate::new(v, std::mem::take(&mut self.resume));
                if dispatch_items(&ev, &mut gate, self.record_len).is_break() {
                    self.resume = gate.seen;
                    self.io.out.push_front(ev);
                    return ControlFlow::Break(());
                }
            } else {
                v.event(ev)?;
            }
        }
        ControlFlow::Continue(())
    }

    /// Poisons the decoder after a step failed; returns the error with the key context.
    fn fail(&mut self, e: Error) -> Error {
        let e = match &self.key {
            Some((k, tb)) => e.with_key(k, *tb),
            None => e,
        };
        self.state = State::Failed;
        self.io.out.clear();
        e
    }

    /// Checks that the stream is complete: call once the input has ended.
    ///
    /// Returns [`Error::Truncated`] (with what was being read and the key) when it is not.
    pub fn finish(&self) -> Result<(), Error> {
        if self.is_done() {
            return Ok(());
        }
        if matches!(self.state, State::Failed) {
            return Err(Error::Poisoned);
        }
        let what = match &self.state {
            State::Magic => "the header",
            State::Opcode => "an opcode",
            State::Key { .. } => "a key",
            State::Value(_) => "a value",
            State::ModuleAux { .. } => "module aux data",
            State::KeyMeta { .. } => "key metadata",
            State::Checksum => "the checksum",
            State::Done | State::Failed => "events",
        };
        Err(Error::Truncated {
            what,
            offset: self.io.offset,
            key: self.key.as_ref().map(|(k, _)| KeyName::new(k)),
        })
    }

    fn step(&mut self, buf: &mut BytesMut) -> Result<Step, Error> {
        match &mut self.state {
            State::Magic => self.magic(buf),
            State::Opcode => self.opcode(buf),
            State::Key { .. } => self.key(buf),
            State::Value(v) => match v.step(&mut self.io, buf)? {
                Step::Done => {
                    self.io.flush_raw(true);
                    self.record_len = self.io.offset - self.record_start;
                    self.io.emit(Event::KeyEnd);
                    self.key = None;
                    self.state = if self.bare {
                        State::Done
                    } else {
                        State::Opcode
                    };
                    Ok(Step::Continue)
                }
                s => {
                    self.io.flush_raw(false);
                    Ok(s)
                }
            },
            State::ModuleAux {
                module,
                when,
                tagged,
            } => {
                let module = module.clone();
                let when = *when;
                match tagged.step(&mut self.io, buf)? {
                    TaggedStep::NeedMore => Ok(Step::NeedMore),
                    TaggedStep::Value => Ok(Step::Continue),
                    TaggedStep::Eof => {
                        let raw = tagged.take_all();
                        self.io
                            .emit(Event::ModuleAux(ModuleAux { module, when, raw }));
                        self.state = State::Opcode;
                        Ok(Step::Continue)
                    }
                }
            }
            State::KeyMeta { left, class } => {
                if let Some((spec, tagged)) = class {
                    match tagged.step(&mut self.io, buf)? {
                        TaggedStep::NeedMore => return Ok(Step::NeedMore),
                        TaggedStep::Value => return Ok(Step::Continue),
                        TaggedStep::Eof => {
                            let raw = tagged.take_all();
                            self.pending.meta.push(KeyMeta::Class { spec: *spec, raw });
                            *class = None;
                            *left -= 1;
                        }
                    }
                }
                if *left == 0 {
                    self.state = State::Opcode;
                    return Ok(Step::Continue);
                }
                let mut p = self.io.peek(buf);
                let spec = need!(p.u32_le());
                self.io.skip(buf, 4);
                let limit = self.io.opts.max_buffered;
                *class = Some((spec, Tagged::new(true, limit)));
                Ok(Step::Continue)
            }
            State::Checksum => self.checksum(buf),
            State::Done => Ok(Step::NeedMore),
            State::Failed => Err(Error::Poisoned),
        }
    }

    fn magic(&mut self, buf: &mut BytesMut) -> Result<Step, Error> {
        let mut p = self.io.peek(buf);
        let m: [u8; 9] = need!(p.array());
        let (family, digits) = if &m[..5] == b"REDIS" {
            (Family::Redis, &m[5..])
        } else if &m[..6] == b"VALKEY" {
            (Family::Valkey, &m[6..])
        } else {
            return Err(Error::BadMagic {
                found: String::from_utf8_lossy(&m).into_owned(),
            });
        };
        let text = String::from_utf8_lossy(&m).into_owned();
        let version: u32 = std::str::from_utf8(digits)
            .ok()
            .filter(|d| d.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| Error::BadMagic {
                found: text.clone(),
            })?;
        if version == 0 {
            return Err(Error::UnsupportedVersion {
                magic: text,
                version,
            });
        }
        self.io.skip(buf, 9);
        self.io.family = family;
        self.io.version = version;
        let h = Header { family, version };
        self.header = Some(h);
        self.io.emit(Event::Header(h));
        self.state = State::Opcode;
        Ok(Step::Continue)
    }

    fn opcode(&mut self, buf: &mut BytesMut) -> Result<Step, Error> {
        let at = self.io.offset;
        let mut p = self.io.peek(buf);
        let b = need!(p.u8());
        let limit = self.io.opts.max_buffered;
        // A bare value (DUMP payload body) holds only KEY_META (Redis) and the type byte.
        let key_meta = b == op::KEY_META_OR_SLOT_IMPORT && self.io.family == Family::Redis;
        if self.bare && (b >= op::KEY_META_OR_SLOT_IMPORT || b == op::RAM_LRU) && !key_meta {
            return Err(Error::UnknownType {
                type_byte: b,
                offset: at,
                key: None,
            });
        }
        match b {
            op::EOF => {
                self.io.skip(buf, 1);
                if self.io.version >= 5 {
                    self.state = State::Checksum;
                } else {
                    let len = self.io.offset;
                    self.io.emit(Event::Eof(Eof {
                        checksum: Checksum::Absent,
                        len,
                    }));
                    self.state = State::Done;
                }
            }
            op::SELECTDB => {
                let db = need!(p.len("SELECTDB"));
                // Servers number dbs with an `int`; one type (u32) serves every crate.
                let db = u32::try_from(db).map_err(|_| Error::LimitExceeded {
                    what: "SELECTDB db number",
                    len: db,
                    limit: u64::from(u32::MAX),
                    offset: at,
                    type_byte: None,
                    key: None,
                })?;
                self.io.skip(buf, p.pos());
                self.db = db;
                self.io.emit(Event::SelectDb { db });
            }
            op::RESIZEDB => {
                let db_size = need!(p.len("RESIZEDB"));
                let expires_size = need!(p.len("RESIZEDB"));
                self.io.skip(buf, p.pos());
                self.io.emit(Event::ResizeDb {
                    db_size,
                    expires_size,
                });
            }
            op::SLOT_INFO => {
                let slot = need!(p.len("SLOT_INFO"));
                let slot_size = need!(p.len("SLOT_INFO"));
                let expires_slot_size = need!(p.len("SLOT_INFO"));
                self.io.skip(buf, p.pos());
                self.io.emit(Event::SlotInfo {
                    slot,
                    slot_size,
                    expires_slot_size,
                });
            }
            op::AUX => {
                let k = need!(p.string(limit));
                let v = need!(p.string(limit));
                let chunk = self.io.consume(buf, p.pos());
                let key = k.resolve_bytes(&chunk)?;
                let value = v.resolve_bytes(&chunk)?;
                self.io.emit(Event::Aux(Aux { key, value }));
            }
            op::EXPIRETIME => {
                let s = need!(p.array::<4>());
                self.io.skip(buf, 5);
                self.pending.expire_at_ms = Some(i64::from(i32::from_le_bytes(s)) * 1000);
            }
            op::EXPIRETIME_MS => {
                let ms = need!(p.array::<8>());
                self.io.skip(buf, 9);
                self.pending.expire_at_ms = Some(i64::from_le_bytes(ms));
            }
            op::IDLE => {
                let idle = need!(p.len("IDLE"));
                self.io.skip(buf, p.pos());
                self.pending.lru_idle = Some(idle);
            }
            op::FREQ => {
                let f = need!(p.u8());
                self.io.skip(buf, 2);
                self.pending.lfu_freq = Some(f);
            }
            op::FUNCTION2 => {
                let code = need!(p.string(limit));
                let chunk = self.io.consume(buf, p.pos());
                let code = code.resolve_bytes(&chunk)?;
                self.io.emit(Event::Function(Function {
                    pre_ga: false,
                    name: None,
                    engine: None,
                    description: None,
                    code,
                }));
            }
            op::FUNCTION_PRE_GA => {
                let name = need!(p.string(limit));
                let engine = need!(p.string(limit));
                let has_desc = need!(p.len("function description flag"));
                let desc = if has_desc != 0 {
                    Some(need!(p.string(limit)))
                } else {
                    None
                };
                let code = need!(p.string(limit));
                let chunk = self.io.consume(buf, p.pos());
                let description = match desc {
                    Some(d) => Some(d.resolve_bytes(&chunk)?),
                    None => None,
                };
                self.io.emit(Event::Function(Function {
                    pre_ga: true,
                    name: Some(name.resolve_bytes(&chunk)?),
                    engine: Some(engine.resolve_bytes(&chunk)?),
                    description,
                    code: code.resolve_bytes(&chunk)?,
                }));
            }
            op::MODULE_AUX => {
                let id = need!(p.len("module id"));
                let when_op = need!(p.len("module aux when opcode"));
                if when_op != 2 {
                    return Err(Error::corrupt(
                        format!("module aux 'when' tag {when_op}, expected 2 (UINT)"),
                        at,
                    ));
                }
                let when = need!(p.len("module aux when"));
                self.io.skip(buf, p.pos());
                self.state = State::ModuleAux {
                    module: module_type(id),
                    when,
                    tagged: Tagged::new(true, limit),
                };
            }
            op::RAM_LRU if self.io.family == Family::Redis => {
                let v = need!(p.len("RAM_LRU"));
                self.io.skip(buf, p.pos());
                self.pending.meta.push(KeyMeta::RamLru(v));
            }
            op::KEY_META_OR_SLOT_IMPORT
                if self.io.family == Family::Redis && self.io.version >= 13 =>
            {
                let n = need!(p.len("KEY_META class count"));
                self.io.skip(buf, p.pos());
                self.state = State::KeyMeta {
                    left: n,
                    class: None,
                };
            }
            op::KEY_META_OR_SLOT_IMPORT if self.io.family == Family::Valkey => {
                let name = need!(p.string(limit));
                let n = need!(p.len("SLOT_IMPORT range count"));
                if n > 16384 {
                    return Err(Error::corrupt(
                        format!("SLOT_IMPORT with {n} slot ranges"),
                        at,
                    ));
                }
                let mut ranges = Vec::new();
                for _ in 0..n {
                    let start = need!(p.len("SLOT_IMPORT range"));
                    let end = need!(p.len("SLOT_IMPORT range"));
                    ranges.push((start, end));
                }
                let chunk = self.io.consume(buf, p.pos());
                let job_name = name.resolve_bytes(&chunk)?;
                self.io.emit(Event::SlotImport { job_name, ranges });
            }
            _ => {
                let Some(rdb_type) = RdbType::from_byte(self.io.family, self.io.version, b) else {
                    // Every type byte is followed by its key: name it in the error when it
                    // parses (wait for it, so the error does not depend on how input arrives).
                    let key = if self.bare || b >= op::KEY_META_OR_SLOT_IMPORT {
                        None
                    } else {
                        match p.string(limit) {
                            Ok(k) => {
                                let end = p.pos();
                                match k.resolve_bytes(&Bytes::copy_from_slice(&buf[..end])) {
                                    Ok(k) => Some(KeyName::new(&k)),
                                    Err(_) => None,
                                }
                            }
                            Err(crate::cursor::Stop::Incomplete) => return Ok(Step::NeedMore),
                            Err(crate::cursor::Stop::Err(_)) => None,
                        }
                    };
                    return Err(Error::UnknownType {
                        type_byte: b,
                        offset: at,
                        key,
                    });
                };
                // The type byte is consumed with the key (one unit), see `key`.
                self.state = State::Key {
                    type_byte: b,
                    rdb_type,
                    at,
                };
            }
        }
        // The record of the next key starts at its first prefix; any other unit in between
        // (an AUX, as KeyDB writes per key) starts it over.
        let prefix = match b {
            op::EXPIRETIME | op::EXPIRETIME_MS | op::IDLE | op::FREQ => true,
            op::RAM_LRU => self.io.family == Family::Redis,
            op::KEY_META_OR_SLOT_IMPORT => matches!(self.state, State::KeyMeta { .. }),
            _ => false,
        };
        if prefix {
            self.pending.record_start.get_or_insert(at);
        } else if !matches!(self.state, State::Key { .. }) {
            self.pending.record_start = None;
        }
        Ok(Step::Continue)
    }

    fn key(&mut self, buf: &mut BytesMut) -> Result<Step, Error> {
        let State::Key {
            type_byte,
            rdb_type,
            at,
        } = self.state
        else {
            unreachable!("key() outside State::Key")
        };
        let limit = self.io.opts.max_buffered;
        let mut p = self.io.peek(buf);
        need!(p.u8());
        let key_ref = if self.bare {
            None
        } else {
            Some(need!(p.string(limit)))
        };
        let key_end = p.pos();
        // Value prefixes read with the key, so that KeyStart can carry them.
        let mut module = None;
        let mut min_expire = None;
        match rdb_type {
            RdbType::ModulePreGa => {
                let total = p.pos();
                let head = self.io.consume(buf, total);
                let key = match key_ref {
                    Some(k) => k.resolve_bytes(&head)?,
                    None => Bytes::new(),
                };
                return Err(Error::UnknownType {
                    type_byte,
                    offset: at,
                    key: Some(KeyName::new(&key)),
                });
            }
            RdbType::Module2 => module = Some(module_type(need!(p.len("module id")))),
            RdbType::HashMetadata | RdbType::HashListpackEx => {
                min_expire = Some(need!(p.u64_le()));
            }
            _ => {}
        }
        let total = p.pos();
        let key = match key_ref {
            Some(k) => self.io.consume_str(buf, key_end, k)?.to_bytes(),
            None => {
                self.io.skip(buf, key_end);
                Bytes::new()
            }
        };
        self.io.start_raw(type_byte);
        let prefix = total - key_end;
        if prefix > 0 {
            self.io.skip(buf, prefix);
        }
        let pending = std::mem::take(&mut self.pending);
        let record_offset = pending.record_start.unwrap_or(at);
        self.record_start = record_offset;
        // A copy, not a slice of the input: a slice would keep the input buffer shared
        // while the key's value is read, and every refill would then allocate a new one.
        self.key = Some((Bytes::copy_from_slice(&key), type_byte));
        self.io.emit(Event::KeyStart(KeyStart {
            db: self.db,
            key,
            type_byte,
            rdb_type,
            expire_at_ms: pending.expire_at_ms,
            lru_idle: pending.lru_idle,
            lfu_freq: pending.lfu_freq,
            meta: pending.meta,
            module,
            min_field_expire_ms: min_expire,
            record_offset,
        }));
        self.state = State::Value(ValueState::new(rdb_type, min_expire));
        Ok(Step::Continue)
    }

    fn checksum(&mut self, buf: &mut BytesMut) -> Result<Step, Error> {
        let at = self.io.offset;
        let computed = self.io.crc();
        let mut p = self.io.peek(buf);
        let stored = need!(p.u64_le());
        // Not part of the CRC: consume without updating it.
        buf.advance(8);
        self.io.offset += 8;
        let checksum = match (stored, computed) {
            (0, _) => Checksum::Disabled,
            (s, None) => Checksum::Unverified(s),
            (s, Some(c)) if s == c => Checksum::Verified(s),
            (s, Some(c)) => {
                return Err(Error::ChecksumMismatch {
                    stored: s,
                    computed: c,
                    offset: at,
                })
            }
        };
        self.io.emit(Event::Eof(Eof {
            checksum,
            len: self.io.offset,
        }));
        self.state = State::Done;
        Ok(Step::Continue)
    }
}
