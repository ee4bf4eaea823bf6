//! The blocking adapter: a pull iterator over any [`std::io::Read`].

use std::io::Read;
use std::ops::ControlFlow;

use bytes::BytesMut;

use crate::decoder::RdbDecoder;
use crate::error::Error;
use crate::event::Event;
use crate::input::Options;
use crate::visit::Visitor;

/// How much the reader asks for per `read` call.
const READ_SIZE: usize = 256 * 1024;

/// Decodes an RDB stream from a reader, one event per `next()`.
///
/// Ends after [`Event::Eof`]; an input that ends early yields [`Error::Truncated`]. After an
/// error the iterator ends. Bytes after the end of the RDB stream are left unread in
/// [`RdbReader::remaining`] (e.g. the commands of an AOF file with an RDB preamble).
#[derive(Debug)]
pub struct RdbReader<R> {
    reader: R,
    decoder: RdbDecoder,
    buf: BytesMut,
    eof: bool,
    finished: bool,
}

impl<R: Read> RdbReader<R> {
    /// A reader-driven decoder.
    pub fn new(reader: R, opts: Options) -> RdbReader<R> {
        RdbReader {
            reader,
            decoder: RdbDecoder::new(opts),
            buf: BytesMut::new(),
            eof: false,
            finished: false,
        }
    }

    /// The decoder (offset, header).
    pub fn decoder(&self) -> &RdbDecoder {
        &self.decoder
    }

    /// Bytes read but not consumed (after the end: whatever followed the RDB stream).
    pub fn remaining(&self) -> &[u8] {
        &self.buf
    }

    fn fill(&mut self) -> Result<(), Error> {
        self.buf.reserve(READ_SIZE);
        let start = self.buf.len();
        self.buf.resize(start + READ_SIZE, 0);
        let n = loop {
            match self.reader.read(&mut self.buf[start..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(start);
                    return Err(Error::Io(e));
                }
            }
        };
        self.buf.truncate(start + n);
        if n == 0 {
            self.eof = true;
        }
        Ok(())
    }
}

impl<R: Read> RdbReader<R> {
    /// Decodes the rest of the stream into `v`, the zero-copy way (see [`Visitor`]): the
    /// fastest way to read a file. Returns `Ok(ControlFlow::Continue(()))` at the end of the
    /// RDB stream; an input that ends early is [`Error::Truncated`]. May follow calls to
    /// `next()`.
    ///
    /// When `v` stops ([`ControlFlow::Break`]), returns `Ok(ControlFlow::Break(()))` at
    /// once; calling `visit` again resumes with the next call (see
    /// [Stopping](Visitor#stopping)), and `next()` with the stopped unit whole.
    pub fn visit<V: Visitor + ?Sized>(&mut self, v: &mut V) -> Result<ControlFlow<()>, Error> {
        if self.finished {
            return Ok(ControlFlow::Continue(()));
        }
        let r = self.visit_inner(v);
        if !matches!(r, Ok(ControlFlow::Break(()))) {
            self.finished = true;
        }
        r
    }

    fn visit_inner<V: Visitor + ?Sized>(&mut self, v: &mut V) -> Result<ControlFlow<()>, Error> {
        loop {
            if self.decoder.decode_into(&mut self.buf, v)?.is_break() {
                return Ok(ControlFlow::Break(()));
            }
            if self.decoder.is_done() {
                return Ok(ControlFlow::Continue(()));
            }
            if self.eof {
                return self.decoder.finish().map(ControlFlow::Continue);
            }
            self.fill()?;
        }
    }
}

impl<R: Read> Iterator for RdbReader<R> {
    type Item = Result<Event, Error>;

    fn next(&mut self) -> Option<Result<Event, Error>> {
        if self.finished {
            return None;
        }
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(ev)) => return Some(Ok(ev)),
                Ok(None) if self.decoder.is_done() => {
                    self.finished = true;
                    return None;
                }
                Ok(None) if self.eof => {
                    self.finished = true;
                    return match self.decoder.finish() {
                        Err(e) => Some(Err(e)),
                        Ok(()) => None,
                    };
                }
                Ok(None) => {
                    if let Err(e) = self.fill() {
                        self.finished = true;
                        return Some(Err(e));
                    }
                }
                Err(e) => {
                    self.finished = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// Decodes a whole in-memory RDB stream into events (convenient for tests and small files;
/// use [`RdbReader`] or [`RdbDecoder`] to stream).
pub fn decode_all(data: &[u8], opts: Options) -> Result<Vec<Event>, Error> {
    let mut buf = BytesMut::from(data);
    let mut dec = RdbDecoder::new(opts);
    let mut out = Vec::new();
    while let Some(ev) = dec.decode(&mut buf)? {
        out.push(ev);
    }
    dec.finish()?;
    Ok(out)
}

/// Decodes a whole in-memory RDB stream into `v`, the zero-copy way (see [`Visitor`]).
///
/// When `v` stops ([`ControlFlow::Break`]), returns `Ok(ControlFlow::Break(()))` at once and
/// the rest of `data` is not decoded (use [`RdbDecoder::decode_into`] to be able to resume).
pub fn visit_all<V: Visitor + ?Sized>(
    data: &[u8],
    opts: Options,
    v: &mut V,
) -> Result<ControlFlow<()>, Error> {
    let mut buf = BytesMut::from(data);
    let mut dec = RdbDecoder::new(opts);
    if dec.decode_into(&mut buf, v)?.is_break() {
        return Ok(ControlFlow::Break(()));
    }
    dec.finish().map(ControlFlow::Continue)
}
