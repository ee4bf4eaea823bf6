//! RESP2/RESP3 framing for Redis-compatible servers, on [`bytes`].
//!
//! - [`Frame`]: every RESP2 and RESP3 type; byte payloads are [`bytes::Bytes`] slices of the
//!   input buffer (no copy). Server error replies are frames ([`Frame::SimpleError`],
//!   [`Frame::BlobError`]), never decoder errors.
//! - [`FrameDecoder`]: the sans-IO core. Feed it a `BytesMut`; it returns `Ok(None)` on partial
//!   input and keeps an explicit stack of partially built aggregates, so a frame arriving in many
//!   reads is parsed once (linear cost, even byte by byte) and hostile nesting cannot overflow the
//!   call stack. Each frame comes with its exact wire length (replication offsets count it).
//! - [`Limits`]: named bounds with Redis's defaults (512 MiB bulks, 64 KiB lines, depth 1024,
//!   `INT_MAX` elements). Nothing is allocated from a declared length before the bytes arrive.
//! - [`RespCodec`]: a `tokio_util::codec` `Decoder<Item = Frame>` and `Encoder` for frames and
//!   commands; [`encode_command`] and [`Command`] build commands.
//! - [`Error`]: one enum; decoding errors name what was wrong and the stream-absolute byte offset.
//!
//! ```
//! use bytes::BytesMut;
//! use resp_codec::{encode_command, Frame, FrameDecoder, Limits};
//!
//! // What a master sends a replica: commands as arrays of bulk strings.
//! let mut wire = BytesMut::new();
//! encode_command(&mut wire, &["SELECT", "0"]);
//! encode_command(&mut wire, &["SET", "k", "v"]);
//!
//! let mut decoder = FrameDecoder::new(Limits::default());
//! let mut offset = 0;
//! while let Some((frame, len)) = decoder.decode(&mut wire)? {
//!     offset += len; // replication offset
//!     let args = frame.as_command().expect("a command");
//!     println!("{:?} with {} args", args.name(), args.len());
//! }
//! assert_eq!(offset, 23 + 27);
//!
//! // Depth is bounded without recursion.
//! let mut hostile = BytesMut::from(&b"*1\r\n".repeat(100_000)[..]);
//! let err = FrameDecoder::default().decode(&mut hostile).unwrap_err();
//! assert!(err.to_string().contains("max_depth"));
//! # Ok::<(), resp_codec::Error>(())
//! ```
//!
//! # Design notes
//!
//! Only `bytes`, `memchr` (CRLF scans), `thiserror` and `tokio-util` (the codec traits) are
//! used. Bulk payloads are split off the input with `BytesMut::split_to` and frozen, which shares
//! the buffer; see the crate README for the benchmark against `redis-protocol`.

mod codec;
mod command;
mod decode;
mod encode;
mod error;
mod frame;
mod limits;

pub use codec::RespCodec;
pub use command::Command;
pub use decode::FrameDecoder;
pub use encode::{command_len, encode_command};
pub use error::Error;
pub use frame::{CommandArgs, Frame};
pub use limits::{Limit, Limits};
