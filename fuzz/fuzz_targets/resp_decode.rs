//! Arbitrary bytes into the RESP decoder: no panic, no hang, consumed ≤ input, the reported
//! wire lengths add up to the bytes consumed, and every decoded frame re-encodes and decodes
//! to itself.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use resp_codec::{FrameDecoder, Limits};

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
    loop {
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
