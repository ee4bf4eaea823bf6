//! The zero-copy visitor path feeding code written for owned events (`Rewriter`,
//! `JsonWriter`): the items of each chunk are copied into one shared buffer (one allocation
//! per chunk, not per item) and handed on as the same events the event iterator yields.
//! Chunks are cut at most every `MAX_ITEMS` items or `MAX_BYTES` bytes; the consumers
//! write the same output whatever the cut.

use std::ops::{ControlFlow, Range};

use bytes::{Bytes, BytesMut};
use rdb_parser::{
    Event, HashEntry, Item, KeyRef, RdbReader, Str, StreamEntry, StreamId, Visitor, ZSetEntry,
};

use crate::error::CliError;

const MAX_ITEMS: usize = 1024;
const MAX_BYTES: usize = 256 * 1024;

/// A string of a chunk: a range of the chunk's buffer, or an integer.
#[derive(Clone, Copy)]
enum A {
    R(usize, usize),
    I(i64),
}

enum Chunk {
    None,
    List(Vec<A>),
    Set(Vec<A>),
    ZSet(Vec<(A, f64)>),
    Hash(Vec<(A, A, Option<u64>)>),
    Stream(Vec<(StreamId, Range<usize>)>),
}

/// Where [`ToEvents`] sends its events: a closure, or a type of its own (whose state a
/// visitor wrapping [`ToEvents`] can reach through [`ToEvents::sink`]).
pub(crate) trait Sink {
    /// One event; an error stops decoding.
    fn event(&mut self, ev: Event) -> Result<(), CliError>;
}

impl<F: FnMut(Event) -> Result<(), CliError>> Sink for F {
    fn event(&mut self, ev: Event) -> Result<(), CliError> {
        self(ev)
    }
}

/// Turns visitor calls into events for `f`; the first error of `f` stops decoding.
pub(crate) struct ToEvents<F> {
    f: F,
    buf: BytesMut,
    chunk: Chunk,
    items: usize,
    /// Stream entry fields, as ranges into `fields`.
    fields: Vec<(A, A)>,
    pub(crate) error: Option<CliError>,
}

impl<F: Sink> ToEvents<F> {
    pub(crate) fn new(f: F) -> ToEvents<F> {
        ToEvents {
            f,
            buf: BytesMut::with_capacity(MAX_BYTES),
            chunk: Chunk::None,
            items: 0,
            fields: Vec::new(),
            error: None,
        }
    }

    /// Decodes the whole stream through `f`: its first error, or the decoder's (as
    /// `<file>: <error>`).
    pub(crate) fn run<R: std::io::Read>(
        mut self,
        reader: &mut RdbReader<R>,
        path: &std::path::Path,
    ) -> Result<(), CliError> {
        let r = reader.visit(&mut self);
        self.result(r, path)
    }

    /// The outcome of a decode through this visitor (or one wrapping it): its first error,
    /// or the decoder's (as `<file>: <error>`).
    pub(crate) fn result(
        &mut self,
        r: Result<ControlFlow<()>, rdb_parser::Error>,
        path: &std::path::Path,
    ) -> Result<(), CliError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        r.map(|_| ()).map_err(|e| CliError::file(path, e))
    }

    /// The sink.
    pub(crate) fn sink(&mut self) -> &mut F {
        &mut self.f
    }

    /// Records an error of the wrapping visitor (the first one is kept) and stops.
    pub(crate) fn fail(&mut self, e: CliError) -> ControlFlow<()> {
        self.error.get_or_insert(e);
        ControlFlow::Break(())
    }

    #[inline]
    fn put(&mut self, i: Item<'_>) -> A {
        match i {
            Item::Int(n) => A::I(n),
            Item::Bytes(b) => {
                let start = self.buf.len();
                self.buf.extend_from_slice(b);
                A::R(start, self.buf.len())
            }
        }
    }

    fn send(&mut self, ev: Event) -> ControlFlow<()> {
        if self.error.is_some() {
            return ControlFlow::Break(());
        }
        match self.f.event(ev) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                self.error = Some(e);
                ControlFlow::Break(())
            }
        }
    }

    /// Sends the pending chunk.
    fn flush(&mut self) -> ControlFlow<()> {
        let chunk = std::mem::replace(&mut self.chunk, Chunk::None);
        self.items = 0;
        if matches!(chunk, Chunk::None) {
            return ControlFlow::Continue(());
        }
        let buf = self.buf.split().freeze();
        let s = |a: A| match a {
            A::R(x, y) => Str::Bytes(buf.slice(x..y)),
            A::I(n) => Str::Int(n),
        };
        let ev = match chunk {
            Chunk::None => unreachable!(),
            Chunk::List(v) => Event::ListItems(v.into_iter().map(s).collect()),
            Chunk::Set(v) => Event::SetMembers(v.into_iter().map(s).collect()),
            Chunk::ZSet(v) => Event::ZSetEntries(
                v.into_iter()
                    .map(|(m, score)| ZSetEntry {
                        member: s(m),
                        score,
                    })
                    .collect(),
            ),
            Chunk::Hash(v) => Event::HashEntries(
                v.into_iter()
                    .map(|(f, x, expire_at_ms)| HashEntry {
                        field: s(f),
                        value: s(x),
                        expire_at_ms,
                    })
                    .collect(),
            ),
            Chunk::Stream(v) => {
                let fields = std::mem::take(&mut self.fields);
                Event::StreamEntries(
                    v.into_iter()
                        .map(|(id, r)| StreamEntry {
                            id,
                            fields: fields[r].iter().map(|&(f, x)| (s(f), s(x))).collect(),
                        })
                        .collect(),
                )
            }
        };
        self.send(ev)
    }

    /// Counts an item; sends the chunk when full.
    #[inline]
    fn added(&mut self) -> ControlFlow<()> {
        self.items += 1;
        if self.items >= MAX_ITEMS || self.buf.len() >= MAX_BYTES {
            return self.flush();
        }
        ControlFlow::Continue(())
    }
}

impl<F: Sink> Visitor for ToEvents<F> {
    fn key_start(&mut self, key: &KeyRef<'_>) -> ControlFlow<()> {
        self.flush()?;
        self.send(Event::KeyStart(key.to_key_start()))
    }
    fn string(&mut self, piece: Item<'_>) -> ControlFlow<()> {
        self.flush()?;
        self.send(Event::String(piece.to_str()))
    }
    fn list_item(&mut self, item: Item<'_>) -> ControlFlow<()> {
        if !matches!(self.chunk, Chunk::List(_)) {
            self.flush()?;
            self.chunk = Chunk::List(Vec::new());
        }
        let a = self.put(item);
        if let Chunk::List(v) = &mut self.chunk {
            v.push(a);
        }
        self.added()
    }
    fn set_member(&mut self, member: Item<'_>) -> ControlFlow<()> {
        if !matches!(self.chunk, Chunk::Set(_)) {
            self.flush()?;
            self.chunk = Chunk::Set(Vec::new());
        }
        let a = self.put(member);
        if let Chunk::Set(v) = &mut self.chunk {
            v.push(a);
        }
        self.added()
    }
    fn zset_entry(&mut self, member: Item<'_>, score: f64) -> ControlFlow<()> {
        if !matches!(self.chunk, Chunk::ZSet(_)) {
            self.flush()?;
            self.chunk = Chunk::ZSet(Vec::new());
        }
        let a = self.put(member);
        if let Chunk::ZSet(v) = &mut self.chunk {
            v.push((a, score));
        }
        self.added()
    }
    fn hash_entry(
        &mut self,
        field: Item<'_>,
        value: Item<'_>,
        ttl: Option<u64>,
    ) -> ControlFlow<()> {
        if !matches!(self.chunk, Chunk::Hash(_)) {
            self.flush()?;
            self.chunk = Chunk::Hash(Vec::new());
        }
        let f = self.put(field);
        let x = self.put(value);
        if let Chunk::Hash(v) = &mut self.chunk {
            v.push((f, x, ttl));
        }
        self.added()
    }
    fn stream_entry(&mut self, id: StreamId, fields: &[(Item<'_>, Item<'_>)]) -> ControlFlow<()> {
        if !matches!(self.chunk, Chunk::Stream(_)) {
            self.flush()?;
            self.chunk = Chunk::Stream(Vec::new());
        }
        let start = self.fields.len();
        for &(f, x) in fields {
            let f = self.put(f);
            let x = self.put(x);
            self.fields.push((f, x));
        }
        let end = self.fields.len();
        if let Chunk::Stream(v) = &mut self.chunk {
            v.push((id, start..end));
        }
        self.added()
    }
    fn raw_value(&mut self, piece: &[u8]) -> ControlFlow<()> {
        self.flush()?;
        self.send(Event::RawValue(Bytes::copy_from_slice(piece)))
    }
    fn key_end(&mut self, _record_len: u64) -> ControlFlow<()> {
        self.flush()?;
        self.send(Event::KeyEnd)
    }
    fn event(&mut self, event: Event) -> ControlFlow<()> {
        self.flush()?;
        self.send(event)
    }
}
