//! migrate-core rewrite: whatever events the decoder makes of arbitrary bytes (seed with real
//! RDB files, e.g. a copy of fuzz/corpus/rdb_decode), the rewriter and the JSON writer never
//! panic; every command is tagged with the key being written; the RESP output is exactly the
//! commands emitted plus the SELECTs; with `replace` at most one UNLINK/DEL is sent per key.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use migrate_core::rewrite::json::JsonWriter;
use migrate_core::rewrite::{Cmd, RespWriter, RewriteOptions, Rewriter, Scope};
use migrate_core::{ServerFamily, ServerVersion};
use rdb_parser::{decode_all, Event, Options};
use resp_codec::{FrameDecoder, Limits};

fuzz_target!(|data: &[u8]| {
    let opts = Options::default()
        .max_chunk_items(3)
        .max_chunk_bytes(256)
        .string_piece(17);
    // Events up to the first error (a corrupt file still hands out its first keys).
    let mut events = Vec::new();
    for n in [data.len(), data.len() / 2] {
        if let Ok(evs) = decode_all(&data[..n], opts.clone()) {
            events = evs;
            break;
        }
    }
    if events.is_empty() {
        let mut dec = rdb_parser::RdbDecoder::new(opts);
        let mut buf = BytesMut::from(data);
        while let Ok(Some(ev)) = dec.decode(&mut buf) {
            events.push(ev);
        }
    }
    // The last byte (a CRC byte in a real file) picks the options: the first is always the
    // `R` of `REDIS` in a file that decodes, so it picked one configuration only.
    let selector = data.last().copied().unwrap_or(0);
    let target = match selector % 4 {
        0 => ServerVersion::new(ServerFamily::Redis, 3, 2, 0),
        1 => ServerVersion::new(ServerFamily::Redis, 6, 2, 0),
        2 => ServerVersion::new(ServerFamily::Redis, 7, 4, 0),
        _ => ServerVersion::new(ServerFamily::Valkey, 9, 1, 0),
    };
    let ropts = RewriteOptions::default()
        .max_command_args(2 + usize::from(selector % 5))
        .max_command_bytes(1 + usize::from(selector % 64))
        .stream_buffer_bytes(usize::from(selector % 3) * 100)
        .replace(selector & 0x10 != 0);
    let now = i64::from(selector) * 1_000_000_000_000 / 255;
    let mut rw = Rewriter::new(target, ropts, now);
    let mut resp = RespWriter::new();
    let mut out = BytesMut::new();
    let mut frames = 0usize;
    let mut json = JsonWriter::new();
    let mut json_out = Vec::new();
    let mut current: Option<(u32, bytes::Bytes)> = None;
    for ev in &events {
        if let Event::KeyStart(k) = ev {
            current = Some((k.db, k.key.clone()));
        }
        let mut unlinks = 0;
        rw.push(ev, &mut |cmd: Cmd| {
            match &cmd.scope {
                Scope::Key { db, key } => {
                    let (cdb, ckey) = current.as_ref().expect("a key command outside a key");
                    assert_eq!((db, key), (cdb, ckey));
                    if cmd.name() == b"UNLINK" || cmd.name() == b"DEL" {
                        unlinks += 1;
                    }
                }
                Scope::Server => assert_eq!(cmd.name(), b"FUNCTION"),
            }
            let before = resp.current_db();
            resp.encode(&cmd, &mut out);
            frames += 1 + usize::from(cmd.db().is_some() && before != cmd.db());
        });
        assert!(unlinks <= 1);
        json.push(ev, &mut json_out);
    }
    let mut dec = FrameDecoder::new(Limits::default());
    let mut n = 0;
    while let Some((frame, _)) = dec.decode(&mut out).expect("RESP output decodes") {
        assert!(frame.into_command().is_ok());
        n += 1;
    }
    assert!(out.is_empty());
    assert_eq!(n, frames);
    assert!(json_out.is_empty() || json_out.ends_with(b"\n") || rw.in_key());
});
