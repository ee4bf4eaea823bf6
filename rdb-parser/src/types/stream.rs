//! Streams (types 15, 19, 21, 26).

use bytes::BytesMut;

use crate::decoder::{Io, Step};
use crate::error::Error;
use crate::opcode::RdbType;

#[derive(Debug)]
pub(crate) struct StreamState {
    t: RdbType,
}

impl StreamState {
    pub(crate) fn new(t: RdbType) -> StreamState {
        StreamState { t }
    }

    pub(crate) fn step(&mut self, io: &mut Io, _buf: &mut BytesMut) -> Result<Step, Error> {
        Err(Error::UnknownType {
            type_byte: self.t.byte(io.family),
            offset: io.offset,
            key: None,
        })
    }
}
