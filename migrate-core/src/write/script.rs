//! The pipeline's invariant check on an operation script, shared by the unit tests and the
//! `writer_pipeline` fuzz target (feature `fuzzing`; not part of the supported API).
//!
//! Input: pairs `(op, arg)`. Ops 0-3 push a command (db and command from the bytes, including
//! ones the pipeline must refuse), 4 MULTI, 5 EXEC, 6 DISCARD, 7 a partial write, 8-9 server
//! bytes (a canned reply, or with the high bit of `arg` set, raw input bytes).

use bytes::BytesMut;
use resp_codec::FrameDecoder;

use crate::{Error, Pipeline, Tag, WriterOptions};

/// Drives a pipeline with the operations and server bytes `input` chooses and panics unless
/// every accepted command got exactly one outcome, in acceptance order, and the counters
/// returned to zero.
#[cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))]
pub fn check_pipeline_script(input: &[u8]) {
    let mut p = Pipeline::new(
        WriterOptions::default()
            .with_max_in_flight(4)
            .with_max_in_flight_bytes(256),
    );
    let mut dec = FrameDecoder::default();
    let mut replies = BytesMut::new();
    let mut accepted = Vec::new();
    let mut seen = Vec::new();
    let mut seq = 0u64;
    let mut bytes = input.iter().copied();
    while let Some(op) = bytes.next() {
        let arg = bytes.next().unwrap_or(0);
        match op % 10 {
            0..=3 => {
                let db = (arg % 5 != 4).then_some(u32::from(arg % 3));
                let args: &[&[u8]] = match op / 10 % 4 {
                    0 => &[b"SET", b"k", b"v"],
                    1 => &[b"INCR", b"k"],
                    2 => &[b"DEL", b"a", b"b"],
                    _ => &[b"SELECT", b"1"],
                };
                if p.push(Tag::new(db, "CMD", seq), args).is_ok() {
                    accepted.push(seq);
                }
                seq += 1;
            }
            4 => {
                let _ = p.multi();
            }
            5 => {
                let _ = p.exec();
            }
            6 => {
                let _ = p.discard();
            }
            7 => {
                if let Some(b) = p.transmit() {
                    let n = b.len().min(usize::from(arg) + 1);
                    p.advance_transmit(n);
                }
            }
            _ => {
                // Server bytes: a canned reply or raw input.
                let canned: &[u8] = match arg % 8 {
                    0 => b"+OK\r\n",
                    1 => b"+QUEUED\r\n",
                    2 => b"-ERR no\r\n",
                    3 => b"-OOM command not allowed\r\n",
                    4 => b"*-1\r\n",
                    5 => b"*2\r\n+OK\r\n:1\r\n",
                    6 => b"-EXECABORT Transaction discarded\r\n",
                    _ => b">1\r\n+x\r\n",
                };
                if arg & 0x80 != 0 {
                    let raw: Vec<u8> = bytes.by_ref().take(usize::from(arg & 0x3f)).collect();
                    replies.extend_from_slice(&raw);
                } else {
                    replies.extend_from_slice(canned);
                }
                loop {
                    match dec.decode(&mut replies) {
                        Ok(Some((frame, _))) => {
                            let _ = p.handle_reply(frame);
                        }
                        Ok(None) => break,
                        Err(e) => {
                            p.abort(e.into());
                            break;
                        }
                    }
                }
            }
        }
        while let Some(o) = p.poll_outcome() {
            seen.push(o.tag().seq);
        }
    }
    p.abort(Error::ConnectionClosed { in_flight: 0 });
    while let Some(o) = p.poll_outcome() {
        seen.push(o.tag().seq);
    }
    assert_eq!(seen, accepted, "input {input:?}");
    assert_eq!(
        (p.unresolved(), p.in_flight(), p.in_flight_bytes()),
        (0, 0, 0)
    );
    assert!(p.is_idle());
}
