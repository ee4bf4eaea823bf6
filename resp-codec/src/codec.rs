//! The tokio-util codec ([`RespCodec`]).

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::command::Command;
use crate::decode::FrameDecoder;
use crate::encode::encode_command;
use crate::error::Error;
use crate::frame::Frame;
use crate::limits::Limits;

/// A `tokio_util::codec` codec for RESP2 and RESP3: decodes [`Frame`]s, encodes frames and
/// commands.
///
/// Decoding is done by a [`FrameDecoder`] (resumable, bounded by [`Limits`]). The wire length of
/// the last decoded frame is available from [`last_frame_len`](Self::last_frame_len) (through
/// `Framed::codec()`), or use [`decode_with_len`](Self::decode_with_len) directly.
///
/// Encodes [`Frame`] / `&Frame`, [`Command`] / `&Command`, and commands given as
/// `&[impl AsRef<[u8]>]`.
///
/// ```
/// use bytes::BytesMut;
/// use resp_codec::{Frame, RespCodec};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut codec = RespCodec::default();
/// let mut wire = BytesMut::new();
/// codec.encode(&["PING"][..], &mut wire).unwrap();
/// assert_eq!(&wire[..], b"*1\r\n$4\r\nPING\r\n");
///
/// let mut input = BytesMut::from(&b"-ERR unknown command\r\n"[..]);
/// let frame = codec.decode(&mut input).unwrap().unwrap();
/// assert!(frame.is_error()); // a server error reply is a frame, not an Err
/// assert_eq!(codec.last_frame_len(), 22);
/// ```
#[derive(Debug, Default)]
pub struct RespCodec {
    decoder: FrameDecoder,
    last_len: usize,
}

impl RespCodec {
    /// A codec with the default [`Limits`] (Redis's).
    pub fn new() -> Self {
        Self::default()
    }

    /// A codec enforcing `limits`.
    pub fn with_limits(limits: Limits) -> Self {
        RespCodec {
            decoder: FrameDecoder::new(limits),
            last_len: 0,
        }
    }

    /// Accept inline commands (for server-side users); see
    /// [`FrameDecoder::with_inline_commands`].
    pub fn with_inline_commands(mut self, enabled: bool) -> Self {
        self.decoder = self.decoder.with_inline_commands(enabled);
        self
    }

    /// Decodes the next frame with its exact wire length; see [`FrameDecoder::decode`].
    pub fn decode_with_len(&mut self, src: &mut BytesMut) -> Result<Option<(Frame, usize)>, Error> {
        let r = self.decoder.decode(src)?;
        if let Some((_, len)) = &r {
            self.last_len = *len;
        }
        Ok(r)
    }

    /// The wire length of the frame returned by the last successful decode.
    pub fn last_frame_len(&self) -> usize {
        self.last_len
    }

    /// Total bytes consumed from the stream; see [`FrameDecoder::position`].
    pub fn position(&self) -> u64 {
        self.decoder.position()
    }

    /// The underlying decoder.
    pub fn decoder(&self) -> &FrameDecoder {
        &self.decoder
    }

    /// The underlying decoder, mutably (e.g. to [`set_position`](FrameDecoder::set_position)).
    pub fn decoder_mut(&mut self) -> &mut FrameDecoder {
        &mut self.decoder
    }
}

impl Decoder for RespCodec {
    type Item = Frame;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, Error> {
        Ok(self.decode_with_len(src)?.map(|(f, _)| f))
    }

    /// Like `decode`, then [`Error::Truncated`] if the stream ended inside a frame (including
    /// a frame whose first bytes were already consumed into the decoder's state).
    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, Error> {
        match self.decode(src)? {
            Some(f) => Ok(Some(f)),
            None => {
                self.decoder.finish(src)?;
                Ok(None)
            }
        }
    }
}

impl Encoder<Frame> for RespCodec {
    type Error = Error;

    fn encode(&mut self, item: Frame, dst: &mut BytesMut) -> Result<(), Error> {
        item.encode(dst)
    }
}

impl Encoder<&Frame> for RespCodec {
    type Error = Error;

    fn encode(&mut self, item: &Frame, dst: &mut BytesMut) -> Result<(), Error> {
        item.encode(dst)
    }
}

impl Encoder<Command> for RespCodec {
    type Error = Error;

    fn encode(&mut self, item: Command, dst: &mut BytesMut) -> Result<(), Error> {
        item.encode(dst);
        Ok(())
    }
}

impl Encoder<&Command> for RespCodec {
    type Error = Error;

    fn encode(&mut self, item: &Command, dst: &mut BytesMut) -> Result<(), Error> {
        item.encode(dst);
        Ok(())
    }
}

impl<A: AsRef<[u8]>> Encoder<&[A]> for RespCodec {
    type Error = Error;

    fn encode(&mut self, args: &[A], dst: &mut BytesMut) -> Result<(), Error> {
        encode_command(dst, args);
        Ok(())
    }
}
