//! Module values (type 7) and module aux data: a 64-bit module id, then tagged values
//! (`0 EOF, 1 SINT, 2 UINT, 3 FLOAT, 4 DOUBLE, 5 STRING`) up to the EOF tag. The decoder
//! skips them generically, one tagged value per step, and hands them out raw.
//! Type 6 (Redis 4.0 RC modules) has no tags and cannot be skipped: it is an error.

use bytes::{Bytes, BytesMut};

use crate::error::Error;
use crate::event::{Event, ModuleType};
use crate::input::{Io, Step};

const CHARSET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Decodes a 64-bit module id into its 9-character name and 10-bit encoding version.
pub fn module_type(id: u64) -> ModuleType {
    let mut name = String::with_capacity(9);
    for j in 0..9 {
        let c = (id >> (64 - 6 * (j + 1))) & 63;
        name.push(char::from(CHARSET[c as usize]));
    }
    ModuleType {
        id,
        name,
        encver: (id & 1023) as u16,
    }
}

/// What one tagged-value step did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TaggedStep {
    NeedMore,
    Value,
    Eof,
}

/// Skips tagged values one at a time, keeping their raw bytes.
#[derive(Debug)]
pub(crate) struct Tagged {
    acc: BytesMut,
    /// Keep everything (module aux, key metadata) or emit chunks (module values).
    keep_all: bool,
    limit: usize,
}

impl Tagged {
    pub(crate) fn new(keep_all: bool, limit: usize) -> Tagged {
        Tagged {
            acc: BytesMut::new(),
            keep_all,
            limit,
        }
    }

    pub(crate) fn take_all(&mut self) -> Bytes {
        self.acc.split().freeze()
    }

    pub(crate) fn step(&mut self, io: &mut Io, buf: &mut BytesMut) -> Result<TaggedStep, Error> {
        let at = io.offset;
        let mut p = io.peek(buf);
        let tag = match p.len("module value tag") {
            Ok(t) => t,
            Err(crate::cursor::Stop::Incomplete) => return Ok(TaggedStep::NeedMore),
            Err(crate::cursor::Stop::Err(e)) => return Err(e),
        };
        let r = match tag {
            0 => Ok(()),
            1 | 2 => p.len("module integer").map(|_| ()),
            3 => p.take(4).map(|_| ()),
            4 => p.take(8).map(|_| ()),
            5 => p.skip_string(self.limit),
            t => return Err(Error::corrupt(format!("module value tag {t}"), at)),
        };
        match r {
            Ok(()) => {}
            Err(crate::cursor::Stop::Incomplete) => return Ok(TaggedStep::NeedMore),
            Err(crate::cursor::Stop::Err(e)) => return Err(e),
        }
        let n = p.pos();
        if self.keep_all && self.acc.len() + n > self.limit {
            return Err(Error::limit(
                "module aux data",
                (self.acc.len() + n) as u64,
                self.limit as u64,
                at,
            ));
        }
        self.acc.extend_from_slice(&buf[..n]);
        io.skip(buf, n);
        Ok(if tag == 0 {
            TaggedStep::Eof
        } else {
            TaggedStep::Value
        })
    }
}

/// A module value (type 7) after its module id (read with the key).
#[derive(Debug)]
pub(crate) struct ModuleValue {
    tagged: Option<Tagged>,
}

impl ModuleValue {
    pub(crate) fn new() -> ModuleValue {
        ModuleValue { tagged: None }
    }

    pub(crate) fn step(&mut self, io: &mut Io, buf: &mut BytesMut) -> Result<Step, Error> {
        let limit = io.opts.max_buffered;
        let t = self.tagged.get_or_insert_with(|| Tagged::new(false, limit));
        match t.step(io, buf)? {
            TaggedStep::NeedMore => Ok(Step::NeedMore),
            TaggedStep::Value => {
                if t.acc.len() >= io.opts.max_chunk_bytes {
                    io.emit(Event::ModuleData(t.take_all()));
                }
                Ok(Step::Continue)
            }
            TaggedStep::Eof => {
                io.emit(Event::ModuleData(t.take_all()));
                Ok(Step::Done)
            }
        }
    }
}
