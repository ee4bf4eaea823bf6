//! Scripted byte sequences against the session.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::Session;
use crate::config::{Limits, SessionConfig};
use crate::error::{Error, Phase};
use crate::event::{Command, FullResyncReason, RdbTransfer, ReplId, ResumePoint, SessionEvent};
use crate::url::Secret;

const ID: &str = "0123456789abcdef0123456789abcdef01234567";
const ID2: &str = "fedcba9876543210fedcba9876543210fedcba98";
const MARK: &str = "ABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJ";

fn cmd(args: &[&str]) -> Vec<u8> {
    let mut out = BytesMut::new();
    resp_codec::encode_command(&mut out, args);
    out.to_vec()
}

fn ack(offset: u64) -> Vec<u8> {
    cmd(&["REPLCONF", "ACK", &offset.to_string()])
}

fn sent(s: &mut Session) -> Vec<u8> {
    let mut v = Vec::new();
    while let Some(b) = s.poll_transmit() {
        v.extend_from_slice(&b);
    }
    v
}

fn events(s: &mut Session) -> Vec<SessionEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn rid(s: &str) -> ReplId {
    s.parse().unwrap()
}

/// A session past the handshake, having sent PSYNC.
fn at_psync(cfg: SessionConfig, resume: Option<ResumePoint>, now: Instant) -> Session {
    // listening-port and capa, then the optional ones.
    let replies =
        2 + usize::from(cfg.replconf_version.is_some()) + usize::from(cfg.password.is_some());
    let mut s = Session::new(cfg, resume, now);
    assert_eq!(sent(&mut s), cmd(&["PING"]));
    s.handle_input(b"+PONG\r\n", now).unwrap();
    sent(&mut s);
    s.handle_input("+OK\r\n".repeat(replies).as_bytes(), now)
        .unwrap();
    sent(&mut s);
    s
}

/// A streaming session after a disk-based full sync at offset 100.
fn streaming(now: Instant) -> Session {
    let mut s = at_psync(SessionConfig::default(), None, now);
    s.handle_input(format!("+FULLRESYNC {ID} 100\r\n$0\r\n").as_bytes(), now)
        .unwrap();
    assert_eq!(sent(&mut s), ack(100));
    events(&mut s);
    s
}

fn commands(ev: &[SessionEvent]) -> Vec<&Command> {
    ev.iter()
        .filter_map(|e| match e {
            SessionEvent::Command(c) => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn handshake_sends_auth_replconf_and_psync() {
    let now = Instant::now();
    let cfg = SessionConfig {
        username: Some("repl".into()),
        password: Some(Secret::new("pw")),
        replconf_version: Some("9.1.0".into()),
        ..SessionConfig::default()
    };
    let mut s = Session::new(cfg, None, now);
    assert_eq!(sent(&mut s), cmd(&["PING"]));
    // Keepalive newlines before replies are skipped.
    s.handle_input(b"\n\r\n-NOAUTH Authentication required.\r\n", now)
        .unwrap();
    let mut want = cmd(&["AUTH", "repl", "pw"]);
    want.extend(cmd(&["REPLCONF", "listening-port", "0"]));
    want.extend(cmd(&["REPLCONF", "capa", "eof", "capa", "psync2"]));
    want.extend(cmd(&["REPLCONF", "version", "9.1.0"]));
    assert_eq!(sent(&mut s), want);
    s.handle_input(b"+OK\r\n+OK\r\n+OK\r\n", now).unwrap();
    assert_eq!(sent(&mut s), b"");
    // An unknown REPLCONF option is not fatal.
    s.handle_input(b"-ERR Unrecognized REPLCONF option: version\r\n", now)
        .unwrap();
    assert_eq!(sent(&mut s), cmd(&["PSYNC", "?", "-1"]));
    assert_eq!(s.phase(), Phase::Psync);
}

#[test]
fn auth_failure_is_an_auth_error() {
    let now = Instant::now();
    let cfg = SessionConfig {
        password: Some(Secret::new("hunter2")),
        ..SessionConfig::default()
    };
    let mut s = Session::new(cfg, None, now);
    s.handle_input(b"+PONG\r\n", now).unwrap();
    let e = s
        .handle_input(b"-WRONGPASS invalid username-password pair\r\n", now)
        .unwrap_err();
    assert!(matches!(e, Error::Auth { .. }), "{e:?}");
    assert!(!format!("{e} {e:?}").contains("hunter2"));
    // A failed session keeps its first error and returns it on every later call.
    let again = s.handle_input(b"+OK\r\n", now).unwrap_err();
    assert_eq!(again.to_string(), e.to_string());
    assert!(matches!(again, Error::Auth { .. }), "{again:?}");
    assert!(matches!(
        s.handle_timeout(now + Duration::from_secs(3600)),
        Err(Error::Auth { .. })
    ));
}

#[test]
fn missing_password_and_noperm_are_clear() {
    let now = Instant::now();
    let mut s = Session::new(SessionConfig::default(), None, now);
    s.handle_input(b"-NOAUTH Authentication required.\r\n", now)
        .unwrap();
    let e = s
        .handle_input(b"-NOAUTH Authentication required.\r\n", now)
        .unwrap_err();
    assert!(matches!(e, Error::Auth { .. }), "{e:?}");

    let mut s = at_psync(SessionConfig::default(), None, now);
    let e = s
        .handle_input(
            b"-NOPERM this user has no permissions to run the 'psync' command\r\n",
            now,
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::NoPermission {
                command: "PSYNC",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn loading_and_nomasterlink_are_retryable() {
    let now = Instant::now();
    for reply in [
        &b"-LOADING Redis is loading the dataset in memory\r\n"[..],
        b"-NOMASTERLINK Can't SYNC while not connected with my master\r\n",
    ] {
        let mut s = at_psync(SessionConfig::default(), None, now);
        let e = s.handle_input(reply, now).unwrap_err();
        assert!(
            matches!(e, Error::NotReady { .. }) && e.is_retryable(),
            "{e:?}"
        );
    }
}

#[test]
fn disk_based_full_sync_then_stream() {
    let now = Instant::now();
    let mut s = at_psync(SessionConfig::default(), None, now);
    let mut input = format!("+FULLRESYNC {ID} 1000\r\n\n\n$10\r\n").into_bytes();
    input.extend_from_slice(b"REDIS0011X");
    let select = cmd(&["SELECT", "3"]);
    let set = cmd(&["SET", "k", "v"]);
    input.extend(&select);
    input.extend(&set);
    s.handle_input(&input, now).unwrap();
    let ev = events(&mut s);
    assert_eq!(
        ev[0],
        SessionEvent::FullResync {
            replid: rid(ID),
            offset: 1000,
            reason: FullResyncReason::Initial
        }
    );
    assert_eq!(
        ev[1],
        SessionEvent::RdbStart(RdbTransfer::Sized { len: 10 })
    );
    assert_eq!(
        ev[2],
        SessionEvent::RdbChunk(Bytes::from_static(b"REDIS0011X"))
    );
    assert_eq!(ev[3], SessionEvent::RdbEnd { len: 10 });
    let end = 1000 + (select.len() + set.len()) as u64;
    assert_eq!(
        ev[4],
        SessionEvent::Progress {
            offset: 1000 + select.len() as u64,
            db: 3
        }
    );
    assert_eq!(
        ev[5],
        SessionEvent::Command(Command {
            db: 3,
            args: vec!["SET".into(), "k".into(), "v".into()],
            end_offset: end,
            wire_len: set.len() as u64,
        })
    );
    assert_eq!(sent(&mut s), ack(1000));
    assert_eq!(
        s.resume_point(),
        Some(ResumePoint {
            replid: rid(ID),
            offset: end,
            db: 3
        })
    );
}

#[test]
fn diskless_mark_split_anywhere() {
    let now = Instant::now();
    let rdb: Vec<u8> = (0..200u8).collect();
    let mut input = format!("+FULLRESYNC {ID} 7\r\n$EOF:{MARK}\r\n").into_bytes();
    input.extend(&rdb);
    input.extend(MARK.as_bytes());
    let c = cmd(&["INCR", "n"]);
    // The server streams only after our ACK; the parser must not depend on it.
    let tail = c.clone();
    for split in [1usize, 2, 3, 7, 39, 40, 41, 64, 1000] {
        let mut s = at_psync(SessionConfig::default(), None, now);
        let mut all = input.clone();
        all.extend(&tail);
        let mut got_rdb = Vec::new();
        let mut ev = Vec::new();
        for chunk in all.chunks(split) {
            s.handle_input(chunk, now).unwrap();
            for e in events(&mut s) {
                if let SessionEvent::RdbChunk(b) = &e {
                    // Never holds back more than the mark.
                    got_rdb.extend_from_slice(b);
                } else {
                    ev.push(e);
                }
            }
            if s.phase() == Phase::Rdb {
                assert!(s.inbuf.len() < 40, "held back {}", s.inbuf.len());
            }
        }
        assert_eq!(got_rdb, rdb, "split {split}");
        assert!(ev.contains(&SessionEvent::RdbStart(RdbTransfer::Diskless)));
        assert!(ev.contains(&SessionEvent::RdbEnd { len: 200 }));
        let cmds = commands(&ev);
        assert_eq!(cmds.len(), 1);
        assert_eq!(cmds[0].end_offset, 7 + c.len() as u64);
        // The first ACK goes out right after the RDB.
        assert!(sent(&mut s).starts_with(&ack(7)));
    }
}

#[test]
fn partial_resync_carries_db_and_offset() {
    let now = Instant::now();
    let resume = ResumePoint {
        replid: rid(ID),
        offset: 5000,
        db: 4,
    };
    let mut s = Session::new(SessionConfig::default(), Some(resume), now);
    sent(&mut s);
    s.handle_input(b"+PONG\r\n+OK\r\n+OK\r\n+OK\r\n", now)
        .unwrap();
    assert!(sent(&mut s).ends_with(&cmd(&["PSYNC", ID, "5001"])));
    let set = cmd(&["SET", "a", "1"]);
    let mut input = format!("+CONTINUE {ID2}\r\n").into_bytes();
    input.extend(&set);
    s.handle_input(&input, now).unwrap();
    let ev = events(&mut s);
    assert_eq!(
        ev[0],
        SessionEvent::PartialResync {
            replid: rid(ID2),
            offset: 5000,
            replid_changed: true
        }
    );
    let c = commands(&ev);
    assert_eq!((c[0].db, c[0].end_offset), (4, 5000 + set.len() as u64));
    assert_eq!(sent(&mut s), ack(5000));
    assert_eq!(s.resume_point().unwrap().replid, rid(ID2));

    // Plain +CONTINUE keeps the id.
    let mut s = Session::new(SessionConfig::default(), Some(resume), now);
    s.handle_input(b"+PONG\r\n+OK\r\n+OK\r\n+OK\r\n+CONTINUE\r\n", now)
        .unwrap();
    assert!(events(&mut s).contains(&SessionEvent::PartialResync {
        replid: rid(ID),
        offset: 5000,
        replid_changed: false
    }));
}

#[test]
fn refused_partial_resync_is_reported() {
    let now = Instant::now();
    let resume = ResumePoint {
        replid: rid(ID),
        offset: 10,
        db: 2,
    };
    let mut s = at_psync(SessionConfig::default(), Some(resume), now);
    s.handle_input(format!("+FULLRESYNC {ID2} 900\r\n").as_bytes(), now)
        .unwrap();
    assert_eq!(
        events(&mut s),
        vec![SessionEvent::FullResync {
            replid: rid(ID2),
            offset: 900,
            reason: FullResyncReason::PartialRefused { requested: resume }
        }]
    );
}

#[test]
fn getack_answer_excludes_itself_and_open_multi() {
    let now = Instant::now();
    let mut s = streaming(now);
    let ping = cmd(&["PING"]);
    let getack = cmd(&["REPLCONF", "GETACK", "*"]);
    let multi = cmd(&["MULTI"]);
    let incr = cmd(&["INCR", "x"]);
    let exec = cmd(&["EXEC"]);
    s.handle_input(&ping, now).unwrap();
    s.handle_input(&getack, now).unwrap();
    let after_ping = 100 + ping.len() as u64;
    assert_eq!(sent(&mut s), ack(after_ping));
    // Inside a transaction the ack stays at the boundary before MULTI.
    let boundary = after_ping + getack.len() as u64;
    s.handle_input(&multi, now).unwrap();
    s.handle_input(&incr, now).unwrap();
    s.handle_input(&getack, now).unwrap();
    assert_eq!(sent(&mut s), ack(boundary));
    s.handle_input(&exec, now).unwrap();
    let end = boundary + (multi.len() + incr.len() + getack.len() + exec.len()) as u64;
    assert_eq!(s.offset(), end);
    // The periodic ACK reports the boundary after EXEC.
    s.handle_timeout(now + Duration::from_secs(1)).unwrap();
    assert_eq!(sent(&mut s), ack(end));
    let ev = events(&mut s);
    let names: Vec<_> = commands(&ev).iter().map(|c| c.args[0].clone()).collect();
    assert_eq!(names, ["MULTI", "INCR", "EXEC"]);
}

#[test]
fn acks_once_a_second_and_times_out() {
    let t0 = Instant::now();
    let mut s = streaming(t0);
    // The stream started (until then ACKs go out more often: see the test below).
    s.handle_input(&cmd(&["PING"]), t0).unwrap();
    events(&mut s);
    let t1 = t0 + Duration::from_millis(50);
    assert_eq!(s.poll_timeout(), Some(t1));
    s.handle_timeout(t1).unwrap();
    assert_eq!(sent(&mut s), ack(114));
    assert_eq!(s.poll_timeout(), Some(t1 + Duration::from_secs(1)));
    s.handle_timeout(t1 + Duration::from_millis(500)).unwrap();
    assert_eq!(sent(&mut s), b"");
    let t2 = t1 + Duration::from_secs(1);
    s.handle_timeout(t2).unwrap();
    assert_eq!(sent(&mut s), ack(114));
    assert_eq!(s.poll_timeout(), Some(t2 + Duration::from_secs(1)));
    // Paused reading (slow consumer) is not a timeout.
    s.set_reading_paused(true, t2);
    s.handle_timeout(t0 + Duration::from_secs(120)).unwrap();
    s.set_reading_paused(false, t0 + Duration::from_secs(120));
    s.handle_timeout(t0 + Duration::from_secs(150)).unwrap();
    let e = s.handle_timeout(t0 + Duration::from_secs(181)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Timeout {
                phase: Phase::Stream,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(s.poll_timeout(), None);
}

/// After a diskless RDB a server starts the stream on an ACK received once it saw its RDB
/// child exit; the ACK sent as the RDB ended may come before that. Until the stream's first
/// byte, ACKs go out every 50 ms (for 5 s at most), not once a second.
#[test]
fn acks_often_until_the_stream_starts() {
    let t0 = Instant::now();
    let mut s = streaming(t0);
    let step = Duration::from_millis(50);
    let mut t = t0;
    for _ in 0..3 {
        t += step;
        assert_eq!(s.poll_timeout(), Some(t));
        s.handle_timeout(t).unwrap();
        assert_eq!(sent(&mut s), ack(100));
    }
    // The stream started: the ACK already due, then once a second.
    s.handle_input(&cmd(&["SET", "k", "v"]), t).unwrap();
    events(&mut s);
    t += step;
    assert_eq!(s.poll_timeout(), Some(t));
    s.handle_timeout(t).unwrap();
    assert_eq!(sent(&mut s), ack(127));
    assert_eq!(s.poll_timeout(), Some(t + Duration::from_secs(1)));
    // A source quiet for the whole window: once a second after it.
    let mut q = streaming(t0);
    let late = t0 + Duration::from_secs(5);
    q.handle_timeout(late).unwrap();
    assert_eq!(sent(&mut q), ack(100));
    assert_eq!(q.poll_timeout(), Some(late + Duration::from_secs(1)));
}

#[test]
fn one_byte_at_a_time_equals_all_at_once() {
    let now = Instant::now();
    let mut input = format!("+FULLRESYNC {ID} 0\r\n\n$5\r\nhello").into_bytes();
    for i in 0..50 {
        input.extend(cmd(&["RPUSH", "list", &"x".repeat(i)]));
        if i % 7 == 0 {
            input.extend(cmd(&["SELECT", &(i % 16).to_string()]));
            input.extend(b"\r\n");
        }
    }
    let run = |chunk: usize| {
        let mut s = at_psync(SessionConfig::default(), None, now);
        let mut ev = Vec::new();
        let mut rdb = Vec::new();
        for c in input.chunks(chunk) {
            s.handle_input(c, now).unwrap();
            for e in events(&mut s) {
                match e {
                    SessionEvent::RdbChunk(b) => rdb.extend_from_slice(&b),
                    e => ev.push(e),
                }
            }
        }
        (ev, rdb, s.offset())
    };
    let whole = run(input.len());
    assert_eq!(
        whole.2,
        input.len() as u64 - format!("+FULLRESYNC {ID} 0\r\n\n$5\r\nhello").len() as u64
    );
    for chunk in [1, 2, 3, 5, 13] {
        assert_eq!(run(chunk), whole, "chunk {chunk}");
    }
}

#[test]
fn garbage_is_a_protocol_error_with_offset() {
    let now = Instant::now();
    let mut s = streaming(now);
    let consumed = s.bytes_consumed();
    let e = s.handle_input(b"+OK\r\n", now).unwrap_err();
    assert!(
        matches!(e, Error::Protocol { phase: Phase::Stream, offset, .. } if offset == consumed),
        "{e:?}"
    );

    let mut s = streaming(now);
    let e = s.handle_input(b"*1\r\n$3\r\nabcXY", now).unwrap_err();
    assert!(matches!(e, Error::Protocol { .. }), "{e:?}");

    let mut s = at_psync(SessionConfig::default(), None, now);
    let e = s.handle_input(b"+FULLRESYNC short 1\r\n", now).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Protocol {
                phase: Phase::Psync,
                ..
            }
        ),
        "{e:?}"
    );

    let mut s = at_psync(SessionConfig::default(), None, now);
    let e = s
        .handle_input(
            format!("+FULLRESYNC {ID} 1\r\n$EOF:short\r\n").as_bytes(),
            now,
        )
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Protocol {
                phase: Phase::RdbWait,
                ..
            }
        ),
        "{e:?}"
    );

    let mut s = at_psync(SessionConfig::default(), None, now);
    let e = s.handle_input(b"+CONTINUE\r\n", now).unwrap_err();
    assert!(matches!(e, Error::Protocol { .. }), "{e:?}");
}

#[test]
fn limits_are_enforced_before_allocating() {
    let now = Instant::now();
    let cfg = SessionConfig {
        limits: Limits {
            max_line_len: 64,
            max_bulk_len: 100,
            max_args: 10,
        },
        ..SessionConfig::default()
    };
    let mut s = Session::new(cfg.clone(), None, now);
    let e = s.handle_input(&[b'+'; 100], now).unwrap_err();
    assert!(
        matches!(e, Error::LimitExceeded { what: "line", .. }),
        "{e:?}"
    );

    let mut s = at_psync(cfg.clone(), None, now);
    s.handle_input(format!("+FULLRESYNC {ID} 1\r\n$0\r\n").as_bytes(), now)
        .unwrap();
    let e = s.handle_input(b"*11\r\n", now).unwrap_err();
    assert!(
        matches!(
            e,
            Error::LimitExceeded {
                what: "argument count",
                len: 11,
                ..
            }
        ),
        "{e:?}"
    );

    let mut s = at_psync(cfg, None, now);
    s.handle_input(format!("+FULLRESYNC {ID} 1\r\n$0\r\n").as_bytes(), now)
        .unwrap();
    let e = s.handle_input(b"*1\r\n$101\r\n", now).unwrap_err();
    assert!(
        matches!(
            e,
            Error::LimitExceeded {
                what: "bulk string",
                len: 101,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn empty_arrays_and_newlines_count_in_the_offset() {
    let now = Instant::now();
    let mut s = streaming(now);
    s.handle_input(b"*0\r\n\r\n\n*-1\r\n", now).unwrap();
    assert_eq!(s.offset(), 100 + 4 + 2 + 1 + 5);
    assert!(commands(&events(&mut s)).is_empty());
}

/// Fuzz finding: a failing input fed whole used to drop the handshake bytes it had
/// queued, fed in pieces it did not. Output before the failure is now the same either way.
#[test]
fn regression_output_before_failure_does_not_depend_on_splits() {
    let now = Instant::now();
    let input = b"+PONG\r\n+OK\r\n+OK\r\n+OK\r\n+CONTINUE\r\n";
    let run = |chunk: usize| {
        let mut s = Session::new(SessionConfig::default(), None, now);
        let mut out = Vec::new();
        let mut err = None;
        for c in input.chunks(chunk) {
            let r = s.handle_input(c, now);
            out.extend(sent(&mut s));
            if let Err(e) = r {
                err = Some(format!("{e:?}"));
                break;
            }
        }
        (out, err)
    };
    let whole = run(input.len());
    assert!(whole.1.is_some());
    assert!(whole.0.ends_with(&cmd(&["PSYNC", "?", "-1"])));
    for chunk in 1..input.len() {
        assert_eq!(run(chunk), whole, "chunk {chunk}");
    }
}

/// Fuzz finding: the offset of a bad PSYNC reply counted the keepalive newlines before it
/// only when they arrived in the same read.
#[test]
fn regression_error_offset_skips_keepalives_consistently() {
    let now = Instant::now();
    let input = b"\n\n\n+\r\n";
    let run = |chunk: usize| {
        let mut s = at_psync(SessionConfig::default(), None, now);
        let base = s.bytes_consumed();
        let mut err = None;
        for c in input.chunks(chunk) {
            if let Err(e) = s.handle_input(c, now) {
                err = Some(e);
                break;
            }
        }
        match err {
            Some(Error::Protocol { offset, .. }) => offset - base,
            other => panic!("{other:?}"),
        }
    };
    for chunk in 1..=input.len() {
        assert_eq!(run(chunk), 3, "chunk {chunk}");
    }
}

/// A streaming session fed `input` whole: the error and the connection offset it started
/// at (`bytes_consumed()` when the stream phase began).
fn stream_error(input: &[u8]) -> (Error, u64) {
    let now = Instant::now();
    let mut s = streaming(now);
    let base = s.bytes_consumed();
    (s.handle_input(input, now).unwrap_err(), base)
}

#[test]
fn empty_lines_are_counted_one_by_one() {
    let now = Instant::now();
    let ping = cmd(&["PING"]);
    let mut input = b"\n\r\n".to_vec();
    input.extend(&ping);
    input.extend(b"\n");
    for chunk in 1..=input.len() {
        let mut s = streaming(now);
        let mut ev = Vec::new();
        for c in input.chunks(chunk) {
            s.handle_input(c, now).unwrap();
            ev.extend(events(&mut s));
        }
        let progress = |offset| SessionEvent::Progress { offset, db: 0 };
        let after_ping = 103 + ping.len() as u64;
        assert_eq!(
            ev,
            [
                progress(101),
                progress(103),
                progress(after_ping),
                progress(after_ping + 1)
            ],
            "chunk {chunk}"
        );
        assert_eq!(s.offset(), after_ping + 1);
        // The ACK timer reports the newlines too.
        s.handle_timeout(now + Duration::from_secs(1)).unwrap();
        assert_eq!(sent(&mut s), ack(after_ping + 1));
    }
}

#[test]
fn inline_protocol_from_the_master_is_refused() {
    // Redis: "Master using the inline protocol. Desync?". Blank lines made of spaces are
    // inline protocol too; a lone CR is not an empty line.
    for (input, at) in [
        (&b"PING\r\n"[..], 0),
        (b"\n\r\n  \r\n", 3),
        (b"\r\r\n", 0),
        (b"\t\n", 0),
    ] {
        let now = Instant::now();
        let mut s = streaming(now);
        let base = s.bytes_consumed();
        let e = s.handle_input(input, now).unwrap_err();
        assert!(
            matches!(e, Error::Protocol { phase: Phase::Stream, offset, .. } if offset == base + at),
            "{input:?}: {e:?}"
        );
        // The empty lines before it were counted.
        assert_eq!(s.offset(), 100 + at, "{input:?}");
    }
}

#[test]
fn command_elements_must_be_bulk_strings() {
    // A scalar element: reported at the command's first byte, once the command is complete.
    let mut input = cmd(&["SET", "k", "v"]);
    let at = input.len() as u64;
    input.extend(b"*3\r\n$3\r\nSET\r\n:1\r\n$1\r\nv\r\n");
    let (e, base) = stream_error(&input);
    assert!(
        matches!(&e, Error::Protocol { phase: Phase::Stream, offset, reason }
            if *offset == base + at && reason.contains("element 1") && reason.contains("integer")),
        "{e:?}"
    );
    for element in [&b"$-1\r\n"[..], b"+OK\r\n", b"_\r\n", b"#t\r\n"] {
        let mut input = b"*2\r\n$3\r\nDEL\r\n".to_vec();
        input.extend(element);
        let (e, base) = stream_error(&input);
        assert!(
            matches!(&e, Error::Protocol { offset, .. } if *offset == base),
            "{element:?}: {e:?}"
        );
    }
    // A nested aggregate (or streamed string): refused at once, at its own offset.
    for element in [&b"*1\r\n"[..], b"*0\r\n", b"%1\r\n", b"$?\r\n", b"|1\r\n"] {
        let mut input = b"*2\r\n$3\r\nDEL\r\n".to_vec();
        input.extend(element);
        let (e, base) = stream_error(&input);
        assert!(
            matches!(&e, Error::Protocol { offset, .. } if *offset == base + 13),
            "{element:?}: {e:?}"
        );
    }
    // A streamed array is not a command.
    let (e, base) = stream_error(b"*?\r\n$4\r\nPING\r\n.\r\n");
    assert!(
        matches!(&e, Error::Protocol { offset, .. } if *offset == base),
        "{e:?}"
    );
}

#[test]
fn framing_errors_keep_connection_offsets() {
    // After the handshake and the RDB, the decoder's offsets are still connection offsets.
    let (e, base) = stream_error(b"*1\r\n$3\r\nabcXY");
    assert!(
        matches!(e, Error::Protocol { offset, .. } if offset == base + 11),
        "{e:?}"
    );
    let (e, base) = stream_error(b"*1\r\n$x\r\n");
    assert!(
        matches!(e, Error::Protocol { offset, .. } if offset == base + 5),
        "{e:?}"
    );
    // Limits keep their names and report the header's offset.
    let mut input = cmd(&["PING"]);
    input.extend(b"*1\r\n$536870913\r\n");
    let (e, base) = stream_error(&input);
    assert!(
        matches!(
            e,
            Error::LimitExceeded { what: "bulk string", offset, len: 536_870_913, limit: 536_870_912 }
                if offset == base + 14 + 4
        ),
        "{e:?}"
    );
}
