//! migrate-core's per-key planner (`plan::KeyPlanner`, which the engine's full sync feeds)
//! driven by whatever events the decoder makes of arbitrary bytes (seed with real RDB
//! files, e.g. a copy of fuzz/corpus/rdb_decode), under options picked by the input's last
//! byte (write mode, conflict policy, big-key threshold, payload limit, probing, raw
//! pass-through, the answers to `EXISTS` and to the probes): never a panic; every key
//! command names the key being planned; each key's plan counts exactly the commands emitted
//! for it; every key that starts ends with a plan; the RESP output decodes to the commands;
//! and `KeyPlanner::whole_key`, asked first for every key with its whole raw value (and
//! declined by its writer), would have written the same single `RESTORE` as the key's
//! events make (its RESP encoding equal to that of its arguments), or skipped it for the
//! same reason with no command.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use migrate_core::migrate::{Conflict, WriteMode};
use migrate_core::plan::{KeyPlanner, PlanOptions, Planned, Verdict, WholeKey};
use migrate_core::rewrite::{Cmd, RespWriter, RewriteOptions, Scope};
use migrate_core::{ServerFamily, ServerVersion};
use rdb_parser::{decode_all, Event, Options};
use resp_codec::{FrameDecoder, Limits};

fuzz_target!(|data: &[u8]| {
    let opts = Options::default()
        .max_chunk_items(3)
        .max_chunk_bytes(256)
        .string_piece(17)
        .raw_values(true);
    // Events up to the first error (a corrupt file still hands out its first keys).
    let events = match decode_all(data, opts.clone()) {
        Ok(evs) => evs,
        Err(_) => {
            let mut evs = Vec::new();
            let mut dec = rdb_parser::RdbDecoder::new(opts);
            let mut buf = BytesMut::from(data);
            while let Ok(Some(ev)) = dec.decode(&mut buf) {
                evs.push(ev);
            }
            evs
        }
    };
    // The last byte (a CRC byte in a real file) picks the options.
    let sel = data.last().copied().unwrap_or(0);
    let sel2 = data.len() as u8;
    let target = match sel % 4 {
        0 => ServerVersion::new(ServerFamily::Redis, 3, 2, 0),
        1 => ServerVersion::new(ServerFamily::Redis, 6, 2, 0),
        2 => ServerVersion::new(ServerFamily::Redis, 7, 4, 0),
        _ => ServerVersion::new(ServerFamily::Valkey, 9, 1, 0),
    };
    let mode = match (sel >> 2) % 3 {
        0 => WriteMode::Auto,
        1 => WriteMode::Restore,
        _ => WriteMode::Rewrite,
    };
    let conflict = match (sel >> 4) % 3 {
        0 => Conflict::Refuse,
        1 => Conflict::Replace,
        _ => Conflict::Skip,
    };
    let big = [0usize, 16, 300, 1 << 20][usize::from(sel2 % 4)];
    let max_bulk = [64u64, 4096, 512 << 20][usize::from((sel2 >> 2) % 3)];
    let probe = sel & 0x40 != 0;
    let raw_only = sel & 0x80 != 0;
    let popts = PlanOptions::new(target)
        .mode(mode)
        .conflict(conflict)
        .big_key_bytes(big)
        .max_bulk_len(max_bulk)
        .probe(probe)
        .restore_modules(sel2 & 0x10 != 0)
        .rewrite(
            RewriteOptions::default()
                .max_command_args(2 + usize::from(sel2 % 5))
                .max_command_bytes(1 + usize::from(sel2 % 64))
                .stream_buffer_bytes(usize::from(sel2 % 3) * 100),
        );
    let now = i64::from(sel) * 1_000_000_000_000 / 255;
    let mut planner = KeyPlanner::new(popts, now);

    // Each complete key's raw value (type byte first), for `whole_key`.
    let mut raws: Vec<(Vec<u8>, bool)> = Vec::new();
    for ev in &events {
        match (ev, raws.last_mut()) {
            (Event::KeyStart(_), _) => raws.push((Vec::new(), false)),
            (Event::RawValue(r), Some((raw, false))) => raw.extend_from_slice(r),
            (Event::KeyEnd, Some((_, done))) => *done = true,
            _ => {}
        }
    }

    let mut resp = RespWriter::new();
    let mut out = BytesMut::new();
    let mut frames = 0usize;
    // The key being planned (db, name) and the commands emitted for it.
    let mut current: Option<(u32, Bytes)> = None;
    let mut key_cmds = 0u64;
    let mut keys = 0u64;
    let mut plans = 0u64;
    // What `whole_key` would have done with the current key (and the RESTORE it lent),
    // and the last command emitted for the key.
    let mut whole: Option<(WholeKey, Option<Vec<Bytes>>)> = None;
    let last_args: std::cell::RefCell<Option<Vec<Bytes>>> = Default::default();
    let mut emit = |cmd: Cmd, current: &Option<(u32, Bytes)>, key_cmds: &mut u64| {
        match &cmd.scope {
            Scope::Key { db, key } => {
                let (cdb, ckey) = current.as_ref().expect("a key command outside a key");
                assert_eq!((db, key), (cdb, ckey), "a command for another key");
                *key_cmds += 1;
                *last_args.borrow_mut() = Some(cmd.args.clone());
            }
            Scope::Server => assert_eq!(cmd.name(), b"FUNCTION"),
        }
        let before = resp.current_db();
        resp.encode(&cmd, &mut out);
        frames += 1 + usize::from(cmd.db().is_some() && before != cmd.db());
    };
    for ev in events {
        let value_event = !matches!(
            ev,
            Event::Header(_)
                | Event::KeyStart(_)
                | Event::RawValue(_)
                | Event::KeyEnd
                | Event::Function(_)
        );
        // Raw pass-through, as the engine does it: value events only while wanted.
        if value_event && raw_only && planner.current_key().is_some() && !planner.wants_events() {
            continue;
        }
        let is_start = matches!(ev, Event::KeyStart(_));
        let is_end = matches!(ev, Event::KeyEnd);
        if let Event::KeyStart(k) = &ev {
            keys += 1;
            current = Some((k.db, k.key.clone()));
            key_cmds = 0;
            whole = None;
            let raw = raws.get(keys as usize - 1).filter(|(_, done)| *done);
            if let Some((raw, _)) = raw.filter(|(r, _)| r.first() == Some(&k.type_byte)) {
                let mut lent = None;
                let w = planner.whole_key(&k.as_key_ref(), &raw[1..], |cmd| {
                    let args = cmd.to_args();
                    assert_eq!(args.len(), cmd.arg_count());
                    assert_eq!(args[3].len(), cmd.payload_len());
                    let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
                    assert_eq!(cmd.encode(&mut a), a.len());
                    resp_codec::encode_command(&mut b, &args);
                    assert_eq!(a, b, "a lent RESTORE encodes as its arguments");
                    lent = Some(args);
                    false
                });
                whole = Some((w, lent));
            }
        }
        if is_end {
            if let Some(t) = planner.needs_probe() {
                assert!(planner.probe_payload().is_some());
                let accepted = (t ^ sel2) & 1 == 0;
                planner.set_accepted(t, accepted, &mut |c| emit(c, &current, &mut key_cmds));
            }
        }
        let planned = planner.push(ev, &mut |c| emit(c, &current, &mut key_cmds));
        if is_start && raw_only && planned == Planned::Verdict(Verdict::Restore) {
            planner.raw_only();
        }
        if planner.awaiting_exists().is_some() {
            let exists = (keys + u64::from(sel2)) % 3 == 0;
            planner.resolve_exists(exists, &mut |c| emit(c, &current, &mut key_cmds));
        }
        if let Planned::Key(p) = planned {
            plans += 1;
            assert_eq!(
                p.commands, key_cmds,
                "the plan of {p:?} miscounts its commands"
            );
            let (db, key) = current.take().expect("a plan outside a key");
            assert_eq!((p.db, &p.key), (db, &key));
            match whole.take() {
                Some((WholeKey::Skipped { reason, .. }, _)) => {
                    assert_eq!((p.verdict, p.commands), (Verdict::Skip(reason), 0));
                }
                Some((WholeKey::Declined, Some(lent))) => {
                    assert_eq!((&p.verdict, p.commands), (&Verdict::Restore, 1));
                    assert_eq!(last_args.borrow_mut().take(), Some(lent), "whole_key lent another RESTORE");
                }
                _ => {}
            }
        }
    }
    // A key cut by the end of the events gets no plan.
    assert!(plans == keys || plans + 1 == keys && current.is_some());
    let mut dec = FrameDecoder::new(Limits::default());
    let mut n = 0;
    while let Some((frame, _)) = dec.decode(&mut out).expect("RESP output decodes") {
        assert!(frame.into_command().is_ok());
        n += 1;
    }
    assert!(out.is_empty());
    assert_eq!(n, frames);
});
