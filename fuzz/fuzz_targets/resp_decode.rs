//! Arbitrary bytes into the RESP decoder: no panic, no hang, consumed ≤ input, the reported
//! wire lengths add up to the bytes consumed, and every decoded frame re-encodes and decodes
//! to itself. With the third configuration bit, each frame is first offered to
//! `decode_command` (the replication stream's fast path), whose arguments and length must be
//! what the general decoder makes of the same bytes. With the fourth, each frame is first
//! offered to `skip_plain_array` (the writer's fast path for `EXEC` replies): whatever it
//! consumes, the general decoder must decode as an array of as many elements, none of them an
//! error, a null bulk string or an aggregate, with the same length.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use resp_codec::{Frame, FrameDecoder, Limits};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the configuration, so small limits and inline mode get exercised too.
    let Some((&cfg, input)) = data.split_first() else {
        return;
    };
    let limits = if cfg & 1 == 0 {
        Limits::default()
    } else {
        Limits::default()
            .with_max_bulk_len(64)
            .with_max_line_len(32)
            .with_max_depth(8)
            .with_max_aggregate_len(16)
    };
    let inline = cfg & 2 != 0;
    let mut dec = FrameDecoder::new(limits).with_inline_commands(inline);
    let mut buf = BytesMut::from(input);
    let mut framed: u64 = 0;
    let fast = cfg & 4 != 0;
    loop {
        if fast {
            let before = buf.clone();
            if let Some((args, len)) = dec.decode_command(&mut buf) {
                assert!(len > 0 && len == before.len() - buf.len());
                framed += len as u64;
                let mut general = FrameDecoder::new(limits).with_inline_commands(inline);
                let mut again = before;
                let (frame, len2) = general
                    .decode(&mut again)
                    .expect("the general decoder takes what the fast path took")
                    .expect("whole");
                assert_eq!(len, len2);
                let want: Vec<Frame> = args.into_iter().map(Frame::BulkString).collect();
                assert_eq!(frame, Frame::Array(want));
                continue;
            }
        }
        if cfg & 8 != 0 {
            let before = buf.clone();
            if let Some((n, len)) = dec.skip_plain_array(&mut buf) {
                assert!(len > 0 && len == before.len() - buf.len());
                framed += len as u64;
                let mut general = FrameDecoder::new(limits).with_inline_commands(inline);
                let mut again = before;
                let (frame, len2) = general
                    .decode(&mut again)
                    .expect("the general decoder takes what the fast path took")
                    .expect("whole");
                assert_eq!(len, len2);
                let Frame::Array(items) = frame else {
                    panic!("not an array: {frame:?}")
                };
                assert_eq!(items.len(), n);
                for item in &items {
                    assert!(
                        matches!(
                            item,
                            Frame::SimpleString(_)
                                | Frame::Integer(_)
                                | Frame::BulkString(_)
                                | Frame::Null
                        ),
                        "{item:?}"
                    );
                }
                continue;
            }
        }
        match dec.decode(&mut buf) {
            Ok(Some((frame, len))) => {
                assert!(len > 0);
                framed += len as u64;
                let mut out = BytesMut::new();
                frame
                    .encode(&mut out)
                    .expect("decoded frames are encodable");
                let mut again = FrameDecoder::new(Limits::default().with_max_depth(usize::MAX));
                let (f2, len2) = again.decode(&mut out).expect("re-decode").expect("whole");
                assert_eq!(format!("{frame:?}"), format!("{f2:?}"));
                assert!(out.is_empty());
                assert!(len2 > 0);
            }
            Ok(None) | Err(_) => break,
        }
    }
    let consumed = input.len() - buf.len();
    assert!(consumed <= input.len());
    assert_eq!(dec.position(), consumed as u64);
    assert!(framed <= consumed as u64);
    // Without inline mode (whose blank lines are consumed outside frames), every consumed byte
    // belongs to a returned frame when the decoder is idle.
    if dec.is_idle() && !inline {
        assert_eq!(framed, consumed as u64);
    }
});
