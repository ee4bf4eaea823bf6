//! rdb-parser: arbitrary bytes (seed with real RDB files under fuzz/corpus/rdb_decode) must
//! never panic, hang or over-allocate; feeding in small steps gives the same events and the
//! same error as feeding everything at once.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rdb_parser::{Event, Options, RdbDecoder};

/// The events (as Debug text: NaN scores compare equal) and the error, if any.
fn run(data: &[u8], step: usize, opts: &Options) -> (String, Option<String>) {
    let mut dec = RdbDecoder::new(opts.clone());
    let mut buf = BytesMut::new();
    let mut events: Vec<Event> = Vec::new();
    let mut fed = 0;
    loop {
        match dec.decode(&mut buf) {
            Ok(Some(ev)) => events.push(ev),
            Ok(None) => {
                if dec.is_done() {
                    return (format!("{events:?}"), None);
                }
                if fed >= data.len() {
                    return (format!("{events:?}"), dec.finish().err().map(|e| e.to_string()));
                }
                let n = step.min(data.len() - fed);
                buf.extend_from_slice(&data[fed..fed + n]);
                fed += n;
            }
            Err(e) => {
                assert!(e.offset().unwrap_or(0) <= data.len() as u64);
                return (format!("{events:?}"), Some(e.to_string()));
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    // Small chunks exercise the chunking paths; raw values exercise the capture.
    let opts = Options::default()
        .max_chunk_items(3)
        .max_chunk_bytes(256)
        .string_piece(17)
        .raw_values(data.len() % 2 == 0);
    let whole = run(data, usize::MAX, &opts);
    // Tiny steps on small inputs; on big ones, steps that still split most units.
    let step = if data.len() < 4096 {
        1 + data.len() % 7
    } else {
        1 + data.len() % 251
    };
    let stepped = run(data, step, &opts);
    assert_eq!(whole, stepped, "feeding in steps of {step} changed the result");
});
