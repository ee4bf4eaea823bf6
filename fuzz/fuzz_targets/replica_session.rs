//! Arbitrary server bytes, split arbitrarily, into the sans-IO replication session.
//!
//! Input: `[mode, n, split sizes (n bytes)..., server bytes...]`. `mode` picks a valid
//! prefix that takes the session to a deeper phase first (handshake, PSYNC reply, disk-based
//! RDB, diskless RDB, command stream) and whether it resumes a position. The bytes go in once
//! whole and once in the given pieces: neither may panic, and both must produce the same
//! events (RDB chunks concatenated), the same bytes to send and the same error.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use replication_client::{Limits, ReplId, ResumePoint, Session, SessionConfig, SessionEvent};

const ID: &str = "0123456789abcdef0123456789abcdef01234567";
const MARK: &str = "ABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJ";

#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<SessionEvent>,
    rdb: Vec<u8>,
    sent: Vec<u8>,
    error: Option<String>,
    offset: u64,
}

fn run(cfg: &SessionConfig, resume: Option<ResumePoint>, pieces: &[&[u8]]) -> Outcome {
    let now = Instant::now();
    let mut s = Session::new(cfg.clone(), resume, now);
    let mut out = Outcome {
        events: Vec::new(),
        rdb: Vec::new(),
        sent: Vec::new(),
        error: None,
        offset: 0,
    };
    let drain = |s: &mut Session, out: &mut Outcome| {
        while let Some(ev) = s.poll_event() {
            match ev {
                SessionEvent::RdbChunk(b) => out.rdb.extend_from_slice(&b),
                ev => out.events.push(ev),
            }
        }
        while let Some(b) = s.poll_transmit() {
            out.sent.extend_from_slice(&b);
        }
    };
    for p in pieces {
        let r = s.handle_input(p, now);
        drain(&mut s, &mut out);
        if let Err(e) = r {
            out.error = Some(format!("{e:?}"));
            break;
        }
    }
    if out.error.is_none() {
        // Timers: an ACK is due after a second; nothing times out yet.
        let _ = s.poll_timeout();
        if let Err(e) = s.handle_timeout(now + Duration::from_secs(2)) {
            out.error = Some(format!("{e:?}"));
        }
        drain(&mut s, &mut out);
    }
    out.offset = s.offset();
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Some((&n, rest)) = rest.split_first() else {
        return;
    };
    let n = (n as usize % 16).min(rest.len());
    let (sizes, payload) = rest.split_at(n);

    // Non-exhaustive configuration: start from the defaults and set fields.
    let mut cfg = SessionConfig::default();
    cfg.password = (mode & 0x10 != 0).then(|| replication_client::Secret::new("pw"));
    if mode & 0x20 == 0 {
        cfg.replconf_version = None;
    }
    let mut limits = Limits::default();
    limits.max_line_len = 256;
    limits.max_bulk_len = 4096;
    limits.max_args = 64;
    cfg.limits = limits;
    let resume = (mode & 0x08 != 0).then(|| ResumePoint {
        replid: ReplId::from_bytes(ID.as_bytes()).unwrap(),
        offset: 1000,
        db: 3,
    });
    let mut input = Vec::new();
    let ok = |n: usize| "+OK\r\n".repeat(n);
    let hs = format!(
        "+PONG\r\n{}",
        ok(2 + usize::from(mode & 0x10 != 0) + usize::from(mode & 0x20 != 0))
    );
    match mode & 0x07 {
        0 => {}
        1 => input.extend(hs.as_bytes()),
        2 => input.extend(format!("{hs}+FULLRESYNC {ID} 100\r\n").as_bytes()),
        3 => input.extend(format!("{hs}+FULLRESYNC {ID} 100\r\n$EOF:{MARK}\r\n").as_bytes()),
        4 => input.extend(format!("{hs}+FULLRESYNC {ID} 100\r\n$0\r\n").as_bytes()),
        5 => {
            input.extend(format!("{hs}+FULLRESYNC {ID} 100\r\n$EOF:{MARK}\r\nRDB{MARK}").as_bytes())
        }
        6 => input.extend(format!("{hs}+CONTINUE\r\n").as_bytes()),
        _ => input.extend(format!("{hs}+CONTINUE {ID}\r\n").as_bytes()),
    }
    input.extend_from_slice(payload);

    let whole = run(&cfg, resume, &[&input]);
    let mut pieces = Vec::new();
    let mut rest: &[u8] = &input;
    let mut i = 0;
    while !rest.is_empty() {
        let size = sizes
            .get(i % sizes.len().max(1))
            .map_or(1, |&s| s as usize + 1);
        let (a, b) = rest.split_at(size.min(rest.len()));
        pieces.push(a);
        rest = b;
        i += 1;
    }
    let split = run(&cfg, resume, &pieces);
    assert_eq!(whole, split);
});
