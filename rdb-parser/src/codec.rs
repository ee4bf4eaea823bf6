//! The async adapter: a [`tokio_util::codec::Decoder`] for `FramedRead`.

use bytes::BytesMut;

use crate::decoder::RdbDecoder;
use crate::error::Error;
use crate::event::Event;
use crate::input::Options;

/// [`RdbDecoder`] as a `tokio_util` codec: `FramedRead::new(rdb_bytes, RdbCodec::new(opts))`
/// is a `Stream` of [`Event`]s.
///
/// It consumes only the RDB's bytes: once [`Event::Eof`] has been produced it yields nothing
/// more and leaves any following bytes in the buffer (`FramedRead::read_buffer`), which on a
/// replication link is where the command stream starts. At end of input before the EOF
/// opcode, `decode_eof` fails with [`Error::Truncated`].
#[derive(Debug)]
pub struct RdbCodec {
    decoder: RdbDecoder,
}

impl RdbCodec {
    /// A codec at the start of an RDB stream.
    pub fn new(opts: Options) -> RdbCodec {
        RdbCodec {
            decoder: RdbDecoder::new(opts),
        }
    }

    /// The underlying decoder.
    pub fn decoder(&self) -> &RdbDecoder {
        &self.decoder
    }

    /// `true` once the whole RDB was decoded.
    pub fn is_done(&self) -> bool {
        self.decoder.is_done()
    }
}

impl tokio_util::codec::Decoder for RdbCodec {
    type Item = Event;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Event>, Error> {
        self.decoder.decode(src)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Event>, Error> {
        match self.decoder.decode(src)? {
            Some(ev) => Ok(Some(ev)),
            None => self.decoder.finish().map(|()| None),
        }
    }
}
