//! The pipeline's invariant check on an operation script, shared by the unit tests and the
//! `writer_pipeline` fuzz target (feature `fuzzing`; not part of the supported API).
//!
//! Input: pairs `(op, arg)`. Ops 0-3 push a command (db and command from the bytes, including
//! ones the pipeline must refuse; with a tag, or compact when `op >= 40`, some of those a
//! lent `RESTORE`), 4 MULTI, 5 EXEC, 6 DISCARD, 7 a partial write, 8-9 server bytes (a
//! canned reply, or with the high bit of `arg` set, raw input bytes).

use bytes::{Bytes, BytesMut};
use resp_codec::FrameDecoder;

use crate::{Error, Outcome, Pipeline, Resolved, Tag, WriterOptions};

/// Takes every resolved entry and checks it against the accepted commands, in order: a run
/// covers the next `commands` of them and ends at `up_to`; an outcome names the next one,
/// and a compact command's rebuilt tag carries its db, name and key.
fn take(p: &mut Pipeline, accepted: &[(u64, Option<Tag>)], next: &mut usize) {
    while let Some(r) = p.poll_resolved() {
        match r {
            Resolved::Applied { commands, up_to } => {
                let end = *next + commands as usize;
                assert!(commands > 0 && end <= accepted.len(), "run of {commands}");
                assert!(accepted[*next..end].iter().all(|(_, t)| t.is_some()));
                assert_eq!(accepted[end - 1].0, up_to);
                *next = end;
            }
            Resolved::One(o) => {
                let (seq, compact) = &accepted[*next];
                assert_eq!(o.tag().seq, *seq);
                if let Some(t) = compact {
                    assert!(!matches!(o, Outcome::Applied(_)), "{o}");
                    assert_eq!(o.tag(), t);
                }
                *next += 1;
            }
        }
    }
}

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
    let mut next = 0;
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
                if op >= 40 && op / 10 % 4 == 0 && arg & 0x20 != 0 {
                    // A RESTORE the planner lends (written straight into the output).
                    let db = db.unwrap_or(0);
                    let value = vec![b'v'; usize::from(arg)];
                    let cmd = crate::plan::RestoreCmd {
                        db,
                        key: b"k",
                        expire_at_ms: (arg & 1 == 1).then_some(1_700_000_000_000),
                        body: [&[0u8][..], &value],
                        version: 11,
                        replace: arg & 2 == 2,
                        hint: None,
                    };
                    if p.push_compact_restore(seq, &cmd).is_ok() {
                        let tag = Tag::new(Some(db), "RESTORE", seq).with_key("k");
                        accepted.push((seq, Some(tag)));
                    }
                } else if op >= 40 {
                    let args: Vec<Bytes> = args.iter().map(|a| Bytes::from_static(a)).collect();
                    let key = args.get(1).map(|k| &k[..]);
                    if p.push_compact(db, seq, key, &args).is_ok() {
                        let mut tag = Tag::new(db, args[0].clone(), seq);
                        if let Some(k) = key {
                            tag = tag.with_key(Bytes::copy_from_slice(k));
                        }
                        accepted.push((seq, Some(tag)));
                    }
                } else if p.push(Tag::new(db, "CMD", seq), args).is_ok() {
                    accepted.push((seq, None));
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
                    if p.takes_plain_array() {
                        if let Some((len, _)) = dec.skip_plain_array(&mut replies) {
                            let _ = p.handle_plain_array(len);
                            continue;
                        }
                    }
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
        take(&mut p, &accepted, &mut next);
    }
    p.abort(Error::ConnectionClosed { in_flight: 0 });
    take(&mut p, &accepted, &mut next);
    assert_eq!(next, accepted.len(), "input {input:?}");
    assert_eq!(
        (p.unresolved(), p.in_flight(), p.in_flight_bytes()),
        (0, 0, 0)
    );
    assert!(p.is_idle());
}
