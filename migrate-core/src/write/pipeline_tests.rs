//! Scripted-reply tests of the pipeline: no I/O, every reply chosen by the test.

use bytes::{Bytes, BytesMut};
use resp_codec::{Frame, FrameDecoder};

use crate::{Error, Outcome, Pipeline, Resolved, ServerErrorKind, Tag, WriterOptions};

/// Everything the pipeline wants to send, as commands (each a list of strings).
fn sent(p: &mut Pipeline) -> Vec<String> {
    let mut wire = BytesMut::new();
    while let Some(b) = p.transmit() {
        wire.extend_from_slice(b);
        let n = b.len();
        p.advance_transmit(n);
    }
    let mut dec = FrameDecoder::default();
    let mut out = Vec::new();
    while let Some((f, _)) = dec.decode(&mut wire).unwrap() {
        let args = f.into_command().unwrap();
        out.push(
            args.iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    out
}

fn ok() -> Frame {
    Frame::simple("OK")
}

fn queued() -> Frame {
    Frame::simple("QUEUED")
}

fn err(text: &'static str) -> Frame {
    Frame::SimpleError(Bytes::from_static(text.as_bytes()))
}

fn tag(db: u32, seq: u64) -> Tag {
    Tag::new(Some(db), "SET", seq).with_key(format!("k{seq}"))
}

fn set(p: &mut Pipeline, db: u32, seq: u64) {
    let key = format!("k{seq}");
    p.push(tag(db, seq), &["SET", &key, "v"]).unwrap();
}

fn outcomes(p: &mut Pipeline) -> Vec<String> {
    std::iter::from_fn(|| p.poll_outcome())
        .map(|o| match o {
            Outcome::Applied(t) => format!("applied {}", t.seq),
            Outcome::Failed { tag, reply } => format!("failed {} {}", tag.seq, reply),
            Outcome::Discarded(t) => format!("discarded {}", t.seq),
            Outcome::Lost { tag, maybe_applied } => format!("lost {} {maybe_applied}", tag.seq),
        })
        .collect()
}

#[test]
fn select_is_inserted_and_checked() {
    let mut p = Pipeline::new(WriterOptions::default());
    set(&mut p, 0, 1);
    set(&mut p, 0, 2);
    set(&mut p, 2, 3);
    p.push(Tag::new(None, "FLUSHALL", 4), &["FLUSHALL"])
        .unwrap();
    set(&mut p, 2, 5);
    set(&mut p, 0, 6);
    assert_eq!(
        sent(&mut p),
        [
            "SELECT 0", "SET k1 v", "SET k2 v", "SELECT 2", "SET k3 v", "FLUSHALL", "SET k5 v",
            "SELECT 0", "SET k6 v"
        ]
    );
    assert_eq!(p.awaiting_replies(), 9);
    assert_eq!(p.in_flight(), 6);
    for f in [
        ok(),
        ok(),
        Frame::NullBulkString,
        ok(),
        ok(),
        ok(),
        ok(),
        ok(),
    ] {
        p.handle_reply(f).unwrap();
    }
    // The SELECTs' replies are consumed, not reported.
    assert_eq!(
        outcomes(&mut p),
        [
            "applied 1",
            "applied 2",
            "applied 3",
            "applied 4",
            "applied 5"
        ]
    );
    p.handle_reply(Frame::Integer(1)).unwrap();
    assert_eq!(outcomes(&mut p), ["applied 6"]);
    assert!(p.is_idle());
    assert_eq!(p.db(), Some(0));

    // A known db spares the SELECT.
    let mut p = Pipeline::new(WriterOptions::default());
    p.assume_db(Some(0));
    set(&mut p, 0, 1);
    assert_eq!(sent(&mut p), ["SET k1 v"]);
}

#[test]
fn refused_select_breaks_the_pipeline() {
    let mut p = Pipeline::new(WriterOptions::default());
    set(&mut p, 99, 1);
    set(&mut p, 99, 2);
    sent(&mut p);
    let e = p
        .handle_reply(err("ERR DB index is out of range"))
        .unwrap_err();
    assert!(matches!(e, Error::SelectRefused { db: 99, .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "SELECT 99 refused by the target: ERR DB index is out of range"
    );
    // The commands after it ran elsewhere or not at all: not reported as applied.
    assert_eq!(outcomes(&mut p), ["lost 1 true", "lost 2 true"]);
    assert!(p.is_broken());
    assert!(matches!(
        p.push(tag(0, 3), &["SET", "a", "b"]),
        Err(Error::SelectRefused { .. })
    ));
}

#[test]
fn window_counts_commands_and_bytes() {
    let mut p = Pipeline::new(WriterOptions::default().with_max_in_flight(3));
    p.assume_db(Some(0));
    for seq in 0..3 {
        assert!(p.has_room());
        set(&mut p, 0, seq);
    }
    assert!(!p.has_room());
    p.handle_reply(ok()).unwrap();
    assert!(p.has_room());
    assert_eq!(p.in_flight(), 2);

    // Bytes: a command larger than the whole window is accepted when the window is empty.
    let mut p = Pipeline::new(WriterOptions::default().with_max_in_flight_bytes(100));
    p.assume_db(Some(0));
    let big = "x".repeat(500);
    p.push(tag(0, 1), &["SET", "k", &big]).unwrap();
    assert!(!p.has_room());
    assert!(p.in_flight_bytes() > 500);
    p.handle_reply(ok()).unwrap();
    assert!(p.has_room());
    assert_eq!(p.in_flight_bytes(), 0);
    p.push(tag(0, 2), &["SET", "k", "1234567890"]).unwrap();
    assert!(p.has_room());
    p.push(tag(0, 3), &["SET", "k", &"y".repeat(60)]).unwrap();
    assert!(!p.has_room());
}

#[test]
fn exec_results_are_checked_one_by_one() {
    let mut p = Pipeline::new(WriterOptions::default());
    p.multi().unwrap();
    set(&mut p, 1, 1);
    p.push(tag(1, 2), &["INCR", "k1"]).unwrap();
    set(&mut p, 1, 3);
    assert!(p.has_room());
    p.exec().unwrap();
    assert_eq!(
        sent(&mut p),
        ["SELECT 1", "MULTI", "SET k1 v", "INCR k1", "SET k3 v", "EXEC"]
    );
    for f in [ok(), ok(), queued(), queued(), queued()] {
        p.handle_reply(f).unwrap();
    }
    // Queued commands left the window but are resolved only by EXEC.
    assert_eq!(p.in_flight(), 0);
    assert_eq!(p.unresolved(), 3);
    assert!(p.poll_outcome().is_none());
    p.handle_reply(Frame::Array(vec![
        ok(),
        err("ERR value is not an integer or out of range"),
        ok(),
    ]))
    .unwrap();
    assert_eq!(
        outcomes(&mut p),
        [
            "applied 1",
            "failed 2 ERR value is not an integer or out of range",
            "applied 3"
        ]
    );
    assert!(p.is_idle());
    assert_eq!(p.unresolved(), 0);
}

#[test]
fn select_inside_a_transaction() {
    let mut p = Pipeline::new(WriterOptions::default());
    p.assume_db(Some(0));
    p.multi().unwrap();
    set(&mut p, 0, 1);
    set(&mut p, 3, 2);
    p.exec().unwrap();
    // After a transaction that changed db, the db is re-selected explicitly.
    set(&mut p, 3, 3);
    assert_eq!(
        sent(&mut p),
        ["MULTI", "SET k1 v", "SELECT 3", "SET k2 v", "EXEC", "SELECT 3", "SET k3 v"]
    );
    for f in [ok(), queued(), queued(), queued()] {
        p.handle_reply(f).unwrap();
    }
    p.handle_reply(Frame::Array(vec![ok(), ok(), ok()]))
        .unwrap();
    p.handle_reply(ok()).unwrap();
    p.handle_reply(ok()).unwrap();
    assert_eq!(outcomes(&mut p), ["applied 1", "applied 2", "applied 3"]);

    // A refused SELECT inside EXEC breaks the pipeline after reporting the results.
    let mut p = Pipeline::new(WriterOptions::default());
    p.assume_db(Some(0));
    p.multi().unwrap();
    set(&mut p, 0, 1);
    set(&mut p, 3, 2);
    p.exec().unwrap();
    sent(&mut p);
    for f in [ok(), queued(), queued(), queued()] {
        p.handle_reply(f).unwrap();
    }
    let e = p
        .handle_reply(Frame::Array(vec![
            ok(),
            err("ERR DB index is out of range"),
            ok(),
        ]))
        .unwrap_err();
    assert!(matches!(e, Error::SelectRefused { db: 3, .. }));
    assert_eq!(outcomes(&mut p), ["applied 1", "applied 2"]);
}

#[test]
fn execabort_and_null_exec_fail_every_command() {
    let mut p = Pipeline::new(WriterOptions::default());
    p.assume_db(Some(0));
    p.multi().unwrap();
    set(&mut p, 0, 1);
    p.push(tag(0, 2), &["NOSUCHCOMMAND", "k2"]).unwrap();
    set(&mut p, 0, 3);
    p.exec().unwrap();
    sent(&mut p);
    p.handle_reply(ok()).unwrap();
    p.handle_reply(queued()).unwrap();
    p.handle_reply(err(
        "ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'k2' ",
    ))
    .unwrap();
    p.handle_reply(queued()).unwrap();
    p.handle_reply(err(
        "EXECABORT Transaction discarded because of previous errors.",
    ))
    .unwrap();
    let got = outcomes(&mut p);
    assert_eq!(
        got,
        [
            "failed 1 EXECABORT Transaction discarded because of previous errors.",
            "failed 2 ERR unknown command 'NOSUCHCOMMAND'",
            "failed 3 EXECABORT Transaction discarded because of previous errors."
        ]
    );

    p.multi().unwrap();
    set(&mut p, 0, 4);
    p.exec().unwrap();
    sent(&mut p);
    for f in [ok(), queued(), Frame::NullArray] {
        p.handle_reply(f).unwrap();
    }
    let o = p.poll_outcome().unwrap();
    assert!(
        matches!(&o, Outcome::Failed { reply, .. } if reply.kind() == ServerErrorKind::ExecAbort),
        "{o}"
    );
    assert!(p.is_idle());
}

#[test]
fn empty_transaction_and_discard() {
    let mut p = Pipeline::new(WriterOptions::default());
    p.assume_db(Some(0));
    p.multi().unwrap();
    assert!(matches!(p.multi(), Err(Error::InvalidUse(_))));
    p.exec().unwrap();
    assert!(sent(&mut p).is_empty());
    assert!(matches!(p.exec(), Err(Error::InvalidUse(_))));

    p.multi().unwrap();
    set(&mut p, 0, 1);
    p.discard().unwrap();
    assert_eq!(sent(&mut p), ["MULTI", "SET k1 v", "DISCARD"]);
    for f in [ok(), queued(), ok()] {
        p.handle_reply(f).unwrap();
    }
    assert_eq!(outcomes(&mut p), ["discarded 1"]);
}

#[test]
fn out_of_step_replies_are_errors_naming_the_command() {
    // A reply with nothing in flight.
    let mut p = Pipeline::new(WriterOptions::default());
    let e = p.handle_reply(ok()).unwrap_err();
    assert!(
        e.to_string()
            .contains("expected nothing (no command in flight), got +OK"),
        "{e}"
    );

    // MULTI answered with something else.
    let mut p = Pipeline::new(WriterOptions::default());
    p.assume_db(Some(0));
    p.multi().unwrap();
    set(&mut p, 0, 1);
    p.exec().unwrap();
    sent(&mut p);
    let e = p.handle_reply(queued()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unexpected reply to MULTI: expected +OK, got +QUEUED"
    );
    assert_eq!(outcomes(&mut p), ["lost 1 true"]);

    // EXEC with the wrong number of results.
    let mut p = Pipeline::new(WriterOptions::default());
    p.assume_db(Some(0));
    p.multi().unwrap();
    set(&mut p, 0, 1);
    set(&mut p, 0, 2);
    p.exec().unwrap();
    set(&mut p, 0, 3);
    sent(&mut p);
    for f in [ok(), queued(), queued()] {
        p.handle_reply(f).unwrap();
    }
    let e = p.handle_reply(Frame::Array(vec![ok()])).unwrap_err();
    assert!(e.to_string().starts_with("unexpected reply to EXEC"), "{e}");
    assert!(e.to_string().contains("an array of 1 elements"), "{e}");
    assert_eq!(
        outcomes(&mut p),
        ["lost 1 true", "lost 2 true", "lost 3 true"]
    );
    assert!(matches!(
        p.handle_reply(ok()),
        Err(Error::UnexpectedReply { .. })
    ));

    // A queued command answered with a bulk string; its contents are not shown.
    let mut p = Pipeline::new(WriterOptions::default());
    p.assume_db(Some(0));
    p.multi().unwrap();
    set(&mut p, 0, 1);
    sent(&mut p);
    p.handle_reply(ok()).unwrap();
    let e = p.handle_reply(Frame::bulk("secret")).unwrap_err();
    assert!(!e.to_string().contains("secret"), "{e}");
    assert!(e.to_string().contains("a bulk string of 6 bytes"), "{e}");
    // The open transaction's command is reported too.
    assert_eq!(outcomes(&mut p), ["lost 1 false"]);
}

#[test]
fn abort_tells_written_from_unwritten() {
    let mut p = Pipeline::new(WriterOptions::default());
    p.assume_db(Some(0));
    set(&mut p, 0, 1);
    set(&mut p, 0, 2);
    p.multi().unwrap();
    set(&mut p, 0, 3);
    p.exec().unwrap();
    set(&mut p, 0, 4);
    p.multi().unwrap();
    set(&mut p, 0, 5);
    // Write the first command and a half.
    let first = resp_codec::command_len(&["SET", "k1", "v"]);
    let mut written = 0;
    while written < first + 5 {
        let n = p.transmit().unwrap().len().min(first + 5 - written);
        p.advance_transmit(n);
        written += n;
    }
    p.handle_reply(ok()).unwrap();
    p.abort(Error::ConnectionClosed { in_flight: 4 });
    assert_eq!(
        outcomes(&mut p),
        [
            "applied 1",
            "lost 2 false",
            "lost 3 false",
            "lost 4 false",
            "lost 5 false"
        ]
    );
    assert!(p.transmit().is_none());
    assert_eq!(p.unresolved(), 0);
    assert!(matches!(
        p.push(tag(0, 6), &["SET", "a", "b"]),
        Err(Error::ConnectionClosed { .. })
    ));

    // Everything written: a transaction whose EXEC went out may have been applied.
    let mut p = Pipeline::new(WriterOptions::default());
    p.assume_db(Some(0));
    p.multi().unwrap();
    set(&mut p, 0, 1);
    p.exec().unwrap();
    sent(&mut p);
    p.handle_reply(ok()).unwrap();
    p.abort(Error::ConnectionClosed { in_flight: 1 });
    assert_eq!(outcomes(&mut p), ["lost 1 true"]);
}

#[test]
fn oom_stops_new_commands_but_in_flight_ones_are_answered() {
    let mut p = Pipeline::new(WriterOptions::default());
    p.assume_db(Some(0));
    set(&mut p, 0, 1);
    set(&mut p, 0, 2);
    p.push(Tag::new(Some(0), "DEL", 3).with_key("k0"), &["DEL", "k0"])
        .unwrap();
    p.multi().unwrap();
    set(&mut p, 0, 4);
    sent(&mut p);
    p.handle_reply(ok()).unwrap();
    p.handle_reply(err(
        "OOM command not allowed when used memory > 'maxmemory'.",
    ))
    .unwrap();
    let e = p.error().unwrap().clone();
    assert!(e.is_out_of_memory());
    assert_eq!(
        e.to_string(),
        "target out of memory: OOM command not allowed when used memory > 'maxmemory'. \
         (on SET \"k2\" (db 0, seq 2))"
    );
    assert!(matches!(
        p.push(tag(0, 9), &["SET", "a", "b"]),
        Err(Error::OutOfMemory { .. })
    ));
    assert!(matches!(p.exec(), Err(Error::OutOfMemory { .. })));
    // The open transaction was discarded for the caller.
    assert_eq!(sent(&mut p), ["DISCARD"]);
    for f in [Frame::Integer(1), ok(), queued(), ok()] {
        p.handle_reply(f).unwrap();
    }
    assert_eq!(
        outcomes(&mut p),
        [
            "applied 1",
            "failed 2 OOM command not allowed when used memory > 'maxmemory'.",
            "applied 3",
            "discarded 4"
        ]
    );
    assert!(p.is_idle());
    assert!(!p.is_broken());
}

#[test]
fn refuses_what_it_cannot_track() {
    let mut p = Pipeline::new(WriterOptions::default().with_max_bulk_len(10));
    for args in [
        &["SELECT", "1"][..],
        &["multi"],
        &["exec"],
        &["WATCH", "k"],
        &["client", "reply", "off"],
        &["SUBSCRIBE", "c"],
    ] {
        assert!(
            matches!(p.push(tag(0, 1), args), Err(Error::InvalidUse(_))),
            "{args:?}"
        );
    }
    let none: &[&str] = &[];
    assert!(matches!(p.push(tag(0, 1), none), Err(Error::InvalidUse(_))));
    let e = p
        .push(tag(0, 7), &["SET", "k7", "01234567890"])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "SET \"k7\" (db 0, seq 7): an argument of 11 bytes exceeds the target's \
         proto-max-bulk-len (10 bytes)"
    );
    assert!(sent(&mut p).is_empty());
    assert_eq!(p.unresolved(), 0);
    // CLIENT SETNAME is fine.
    p.push(Tag::new(None, "CLIENT", 1), &["CLIENT", "SETNAME", "x"])
        .unwrap();
}

#[test]
fn shared_arguments_and_push_frames() {
    let big = Bytes::from(vec![b'v'; 100_000]);
    let mut a = Pipeline::new(WriterOptions::default());
    a.push_bytes(
        tag(0, 1),
        &[
            Bytes::from_static(b"SET"),
            Bytes::from_static(b"k"),
            big.clone(),
        ],
    )
    .unwrap();
    let mut b = Pipeline::new(WriterOptions::default());
    b.push(tag(0, 1), &[&b"SET"[..], b"k", &big]).unwrap();
    assert_eq!(a.in_flight_bytes(), b.in_flight_bytes());
    assert_eq!(sent(&mut a), sent(&mut b));

    // RESP3 pushes (e.g. invalidations) are not replies; attributes wrap a reply.
    a.handle_reply(Frame::Push(vec![Frame::bulk("invalidate")]))
        .unwrap();
    a.handle_reply(ok()).unwrap();
    a.handle_reply(Frame::Attribute {
        attributes: vec![],
        data: Box::new(ok()),
    })
    .unwrap();
    assert_eq!(outcomes(&mut a), ["applied 1"]);
}

#[test]
fn random_scripts_keep_every_command_accounted_for() {
    // A fixed-seed generator: the same scripts on every run.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3000 {
        let len = (next() % 200) as usize;
        let input: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        super::check_pipeline_script(&input);
    }
}

/// A command queued without a tag (`push_compact`).
fn compact(p: &mut Pipeline, db: u32, seq: u64, args: &[&str]) {
    let args: Vec<Bytes> = args
        .iter()
        .map(|a| Bytes::copy_from_slice(a.as_bytes()))
        .collect();
    let key = args.get(1).cloned();
    p.push_compact(Some(db), seq, key.as_deref(), &args)
        .unwrap();
}

fn resolved(p: &mut Pipeline) -> Vec<String> {
    std::iter::from_fn(|| p.poll_resolved())
        .map(|r| match r {
            Resolved::Applied { commands, up_to } => format!("{commands} applied up to {up_to}"),
            Resolved::One(Outcome::Failed { tag, reply }) => format!("failed {tag}: {reply}"),
            Resolved::One(Outcome::Lost { tag, .. }) => format!("lost {tag}"),
            Resolved::One(Outcome::Discarded(tag)) => format!("discarded {tag}"),
            Resolved::One(Outcome::Applied(tag)) => format!("applied {tag}"),
        })
        .collect()
}

/// Applied compact commands are counted in runs; a failed one gets its tag back (db, the
/// name upper-cased, the key, the seq); tagged commands in between keep their own outcome.
#[test]
fn compact_commands_are_counted_and_failures_named() {
    let mut p = Pipeline::new(WriterOptions::default());
    p.assume_db(Some(0));
    compact(&mut p, 0, 10, &["set", "a", "1"]);
    compact(&mut p, 0, 20, &["INCR", "a"]);
    compact(&mut p, 3, 30, &["lpush", "l\x01", "x"]);
    compact(&mut p, 3, 40, &["INCR", "b"]);
    set(&mut p, 3, 41);
    compact(&mut p, 3, 50, &["FLUSHDB"]);
    assert_eq!(
        sent(&mut p),
        [
            "set a 1",
            "INCR a",
            "SELECT 3",
            "lpush l\x01 x",
            "INCR b",
            "SET k41 v",
            "FLUSHDB"
        ]
    );
    for reply in [ok(), Frame::Integer(1), ok(), err("WRONGTYPE wrong kind")] {
        p.handle_reply(reply).unwrap();
    }
    p.handle_reply(Frame::Integer(1)).unwrap();
    p.handle_reply(ok()).unwrap();
    p.handle_reply(ok()).unwrap();
    assert_eq!(p.unresolved(), 0);
    assert_eq!(
        resolved(&mut p),
        [
            "2 applied up to 20",
            "failed LPUSH \"l\\x01\" (db 3, seq 30): WRONGTYPE wrong kind",
            "1 applied up to 40",
            "applied SET \"k41\" (db 3, seq 41)",
            "1 applied up to 50"
        ]
    );
    assert!(p.is_idle());
}

/// A connection lost with compact commands in flight and queued in a transaction: each
/// gets its own outcome with its tag, in order; `poll_outcome` spells runs out one by one.
#[test]
fn compact_commands_lost_and_through_poll_outcome() {
    let mut p = Pipeline::new(WriterOptions::default());
    p.assume_db(Some(0));
    compact(&mut p, 0, 1, &["SET", "a", "1"]);
    compact(&mut p, 0, 2, &["SET", "b", "1"]);
    p.multi().unwrap();
    compact(&mut p, 0, 3, &["SET", "c", "1"]);
    p.exec().unwrap();
    p.multi().unwrap();
    compact(&mut p, 0, 4, &["DEL", "d"]);
    sent(&mut p);
    p.handle_reply(ok()).unwrap();
    p.handle_reply(ok()).unwrap();
    p.abort(Error::ConnectionClosed { in_flight: 2 });
    assert_eq!(
        outcomes(&mut p),
        ["applied 2", "applied 2", "lost 3 true", "lost 4 false"]
    );
    assert_eq!(p.unresolved(), 0);
}

/// `EXEC`'s reply read as a plain array (no frames): the same outcomes as the frames give,
/// queueing errors included; an array of the wrong length breaks the pipeline.
#[test]
fn plain_exec_arrays_are_counted() {
    let run = |plain: bool, results: usize| {
        let mut p = Pipeline::new(WriterOptions::default());
        p.assume_db(Some(0));
        p.multi().unwrap();
        compact(&mut p, 0, 1, &["SET", "a", "1"]);
        compact(&mut p, 0, 2, &["NOSUCH", "b"]);
        set(&mut p, 0, 3);
        p.exec().unwrap();
        sent(&mut p);
        for reply in [ok(), queued(), err("ERR unknown command"), queued()] {
            p.handle_reply(reply).unwrap();
        }
        assert!(p.takes_plain_array());
        let r = if plain {
            p.handle_plain_array(results)
        } else {
            p.handle_reply(Frame::Array(vec![ok(); results]))
        };
        (r.map_err(|e| e.to_string()), resolved(&mut p))
    };
    assert_eq!(run(true, 2), run(false, 2));
    let (r, got) = run(true, 2);
    assert!(r.is_ok());
    assert_eq!(
        got,
        [
            "1 applied up to 1",
            "failed NOSUCH \"b\" (db 0, seq 2): ERR unknown command",
            "applied SET \"k3\" (db 0, seq 3)"
        ]
    );
    let (r, got) = run(true, 3);
    assert!(r.unwrap_err().contains("an array of 3 elements"));
    assert_eq!(got.len(), 3, "{got:?}");
    // A transaction with an inserted SELECT is read frame by frame.
    let mut p = Pipeline::new(WriterOptions::default());
    p.assume_db(Some(0));
    p.multi().unwrap();
    compact(&mut p, 0, 1, &["SET", "a", "1"]);
    compact(&mut p, 2, 2, &["SET", "a", "1"]);
    p.exec().unwrap();
    sent(&mut p);
    for reply in [ok(), queued(), queued(), queued()] {
        p.handle_reply(reply).unwrap();
    }
    assert!(!p.takes_plain_array());
}

/// A `RESTORE` the planner lent ([`Pipeline::push_compact_restore`]): the same bytes as
/// its arguments pushed as a compact command, counted in runs, named when it fails; a
/// payload over `proto-max-bulk-len` is refused before anything is queued.
#[test]
fn lent_restores_are_written_counted_and_named() {
    use crate::plan::{KeyPlanner, PlanOptions, WholeKey};
    let target = crate::ServerVersion::new(crate::ServerFamily::Redis, 7, 0, 0);
    let mut planner = KeyPlanner::new(PlanOptions::new(target), 1_700_000_000_000);
    let mut start = rdb_parser::KeyStart {
        db: 3,
        key: Bytes::from_static(b"k"),
        type_byte: 0,
        rdb_type: rdb_parser::RdbType::String,
        expire_at_ms: Some(1_800_000_000_000),
        lru_idle: Some(5),
        lfu_freq: None,
        meta: Vec::new(),
        module: None,
        min_field_expire_ms: None,
        record_offset: 0,
    };
    let mut lent = Pipeline::new(WriterOptions::default());
    let mut owned = Pipeline::new(WriterOptions::default());
    for p in [&mut lent, &mut owned] {
        p.assume_db(Some(0));
    }
    for seq in [1, 2] {
        start.key = Bytes::from(format!("k{seq}"));
        let plan = planner.whole_key(&start.as_key_ref(), b"\x01v", |cmd| {
            lent.push_compact_restore(seq, cmd).unwrap();
            let args = cmd.to_args();
            let key = args[1].clone();
            owned
                .push_compact(Some(cmd.db()), seq, Some(&key), &args)
                .unwrap();
            true
        });
        assert!(matches!(plan, WholeKey::Restored { db: 3, .. }));
    }
    let wire = sent(&mut lent);
    assert_eq!(wire, sent(&mut owned));
    assert_eq!(wire[0], "SELECT 3");
    assert!(wire[1].starts_with("RESTORE k1 1800000000000 \0\x01v"));
    assert!(wire[1].ends_with(" ABSTTL IDLETIME 5"));
    lent.handle_reply(ok()).unwrap();
    lent.handle_reply(ok()).unwrap();
    lent.handle_reply(err("BUSYKEY Target key name already exists."))
        .unwrap();
    assert_eq!(
        resolved(&mut lent),
        [
            "1 applied up to 1",
            "failed RESTORE \"k2\" (db 3, seq 2): BUSYKEY Target key name already exists."
        ]
    );
    // Over the target's bulk limit: refused, nothing queued.
    let mut small = Pipeline::new(WriterOptions::default().with_max_bulk_len(10));
    let mut refused = None;
    planner.whole_key(&start.as_key_ref(), b"\x01v", |cmd| {
        refused = Some(small.push_compact_restore(9, cmd));
        false
    });
    let Some(Err(Error::ArgumentTooLarge { tag, len, max })) = refused else {
        panic!("{refused:?}");
    };
    assert_eq!(
        (len, max, tag.key.as_deref().map(|k| k.to_vec())),
        (13, 10, Some(b"k2".to_vec()))
    );
    assert!(sent(&mut small).is_empty());
}
