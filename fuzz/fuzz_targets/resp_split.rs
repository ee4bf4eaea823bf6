//! Splitting the input anywhere (and feeding it in small pieces) yields the same frames, the
//! same wire lengths and the same outcome (partial or the same error) as decoding it whole.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use resp_codec::{FrameDecoder, Limits};

#[derive(Debug, PartialEq)]
enum End {
    Partial,
    Error(String),
}

type Outcome = (Vec<(String, usize)>, End);

fn run(input: &[u8], cuts: &[usize], limits: Limits, inline: bool) -> Outcome {
    let mut dec = FrameDecoder::new(limits).with_inline_commands(inline);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        let cut = cut.clamp(start, input.len());
        buf.extend_from_slice(&input[start..cut]);
        start = cut;
        loop {
            match dec.decode(&mut buf) {
                Ok(Some((f, len))) => frames.push((format!("{f:?}"), len)),
                Ok(None) => break,
                Err(e) => return (frames, End::Error(format!("{e:?}"))),
            }
        }
    }
    (frames, End::Partial)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let cfg = data[0];
    let step = usize::from(data[1]) % 16 + 1;
    let input = &data[2..];
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
    let whole = run(input, &[], limits, inline);
    // One cut at a position derived from the config byte, then pieces of `step` bytes.
    let one_cut = usize::from(cfg >> 2) * input.len() / 63;
    assert_eq!(
        run(input, &[one_cut], limits, inline),
        whole,
        "cut at {one_cut}"
    );
    let cuts: Vec<usize> = (0..input.len()).step_by(step).collect();
    assert_eq!(run(input, &cuts, limits, inline), whole, "pieces of {step}");
});
