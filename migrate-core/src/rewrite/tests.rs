//! Unit tests of the rewriter on hand-made event sequences (the real-server tests are in
//! `migrate-core/tests/rewrite.rs`).

use bytes::Bytes;
use rdb_parser::{
    Event, Function, HashEntry, KeyStart, PendingEntry, RdbType, Str, StreamConsumer, StreamEntry,
    StreamGroup, StreamId, StreamMeta, ZSetEntry,
};

use super::json::JsonWriter;
use super::*;
use crate::ServerFamily::{Redis, Valkey};

const NOW: i64 = 1_700_000_000_000;

fn v(family: crate::ServerFamily, major: u16, minor: u16) -> ServerVersion {
    ServerVersion::new(family, major, minor, 0)
}

fn start(key: &str, t: RdbType, ttl: Option<i64>) -> Event {
    Event::KeyStart(KeyStart {
        db: 3,
        key: Bytes::copy_from_slice(key.as_bytes()),
        type_byte: 0,
        rdb_type: t,
        expire_at_ms: ttl,
        lru_idle: None,
        lfu_freq: None,
        meta: Vec::new(),
        module: None,
        min_field_expire_ms: None,
        record_offset: 0,
    })
}

fn s(x: &str) -> Str {
    Str::Bytes(Bytes::copy_from_slice(x.as_bytes()))
}

fn run(target: ServerVersion, opts: RewriteOptions, events: &[Event]) -> (Vec<String>, Vec<Done>) {
    let mut rw = Rewriter::new(target, opts, NOW);
    let mut cmds = Vec::new();
    let mut outcomes = Vec::new();
    for ev in events {
        if let Some(o) = rw.push(ev, &mut |c: Cmd| cmds.push(c)) {
            outcomes.push(o);
        }
    }
    let text = cmds
        .iter()
        .map(|c| {
            c.args
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    (text, outcomes)
}

fn report(o: &Done) -> &KeyReport {
    match o {
        Done::Key(r) => r,
        other => panic!("not a key: {other:?}"),
    }
}

#[test]
fn string_with_ttl_uses_pxat_on_6_2_and_pexpireat_before() {
    let ttl = NOW + 5000;
    let evs = [
        start("k", RdbType::String, Some(ttl)),
        Event::String(Str::Int(-42)),
        Event::KeyEnd,
    ];
    let (cmds, _) = run(v(Redis, 6, 2), RewriteOptions::default(), &evs);
    assert_eq!(cmds, [format!("SET k -42 PXAT {ttl}")]);
    let (cmds, outs) = run(v(Redis, 6, 0), RewriteOptions::default(), &evs);
    assert_eq!(
        cmds,
        ["SET k -42".to_string(), format!("PEXPIREAT k {ttl}")]
    );
    assert!(report(&outs[0]).is_exact());
    assert_eq!(report(&outs[0]).commands, 2);
}

#[test]
fn big_string_is_set_then_appended() {
    let opts = RewriteOptions::default().max_command_bytes(4).replace(true);
    let evs = [
        start("k", RdbType::String, Some(NOW + 1)),
        Event::String(s("abcdef")),
        Event::String(s("ghij")),
        Event::KeyEnd,
    ];
    let (cmds, _) = run(v(Redis, 7, 0), opts, &evs);
    assert_eq!(
        cmds,
        [
            "SET k abcd".to_string(),
            "APPEND k efgh".into(),
            "APPEND k ij".into(),
            format!("PEXPIREAT k {}", NOW + 1)
        ]
    );
    // An empty string is still written.
    let (cmds, _) = run(
        v(Redis, 7, 0),
        RewriteOptions::default(),
        &[
            start("e", RdbType::String, None),
            Event::String(s("")),
            Event::KeyEnd,
        ],
    );
    assert_eq!(cmds, ["SET e "]);
}

#[test]
fn expired_keys_are_skipped() {
    let evs = [
        start("gone", RdbType::ListQuicklist2, Some(NOW)),
        Event::ListItems(vec![s("a")]),
        Event::KeyEnd,
    ];
    let mut rw = Rewriter::new(v(Redis, 7, 0), RewriteOptions::default(), NOW);
    let mut n = 0;
    let mut outs = Vec::new();
    for ev in &evs {
        outs.extend(rw.push(ev, &mut |_| n += 1));
    }
    assert_eq!(n, 0);
    assert_eq!(
        report(&outs[0]).status,
        KeyStatus::Expired { expire_at_ms: NOW }
    );
    assert_eq!(rw.stats().keys_expired, 1);
    // With replace, the target must not keep an older value of it.
    let (cmds, _) = run(
        v(Redis, 7, 0),
        RewriteOptions::default().replace(true),
        &evs,
    );
    assert_eq!(cmds, ["UNLINK gone"]);
}

#[test]
fn lists_are_chunked_and_replace_clears_first() {
    let opts = RewriteOptions::default().max_command_args(2).replace(true);
    let evs = [
        start("l", RdbType::ListQuicklist2, None),
        Event::ListItems(vec![s("a"), s("b"), Str::Int(3)]),
        Event::ListItems(vec![s("d"), s("e")]),
        Event::KeyEnd,
    ];
    let (cmds, _) = run(v(Redis, 7, 0), opts.clone(), &evs);
    assert_eq!(
        cmds,
        ["UNLINK l", "RPUSH l a b", "RPUSH l 3 d", "RPUSH l e"]
    );
    let (cmds, _) = run(v(Redis, 3, 2), opts, &evs);
    assert_eq!(cmds[0], "DEL l");
    // Byte budget: cut before the item that would exceed it.
    let opts = RewriteOptions::default().max_command_bytes(3);
    let evs = [
        start("s", RdbType::SetListpack, None),
        Event::SetMembers(vec![s("ab"), s("c"), s("defg"), s("h")]),
        Event::KeyEnd,
    ];
    let (cmds, _) = run(v(Redis, 7, 0), opts, &evs);
    assert_eq!(cmds, ["SADD s ab c", "SADD s defg", "SADD s h"]);
}

#[test]
fn zset_scores_are_exact_and_nan_is_reported() {
    let e = |m: &str, score: f64| ZSetEntry {
        member: s(m),
        score,
    };
    let evs = [
        start("z", RdbType::ZSet2, None),
        Event::ZSetEntries(vec![
            e("a", 0.1 + 0.2),
            e("b", f64::NEG_INFINITY),
            e("c", f64::NAN),
            e("d", 1e300),
            e("e", -0.0),
        ]),
        Event::KeyEnd,
    ];
    let (cmds, outs) = run(v(Redis, 7, 0), RewriteOptions::default(), &evs);
    assert_eq!(cmds, ["ZADD z 0.30000000000000004 a -inf b 1e300 d -0 e"]);
    assert_eq!(report(&outs[0]).losses, [Loss::NanScores { members: 1 }]);
}

#[test]
fn hash_field_ttls() {
    let f = |name: &str, ttl: Option<u64>| HashEntry {
        field: s(name),
        value: s("v"),
        expire_at_ms: ttl,
    };
    let later = (NOW + 10_000) as u64;
    let evs = [
        start("h", RdbType::Hash2, None),
        Event::HashEntries(vec![
            f("a", Some(later)),
            f("b", None),
            f("c", Some(later)),
            f("old", Some(NOW as u64 - 1)),
            f("d", Some(later + 1)),
        ]),
        Event::KeyEnd,
    ];
    let (cmds, outs) = run(v(Valkey, 9, 0), RewriteOptions::default(), &evs);
    assert_eq!(
        cmds,
        [
            "HSET h a v b v c v d v".to_string(),
            format!("HPEXPIREAT h {later} FIELDS 2 a c"),
            format!("HPEXPIREAT h {} FIELDS 1 d", later + 1),
        ]
    );
    assert_eq!(report(&outs[0]).expired_fields, 1);
    assert!(report(&outs[0]).is_exact());
    // Chunked: each HSET is followed by the TTLs of its own fields.
    let (cmds, _) = run(
        v(Redis, 7, 4),
        RewriteOptions::default().max_command_args(4),
        &evs,
    );
    assert_eq!(
        cmds,
        [
            "HSET h a v b v".to_string(),
            format!("HPEXPIREAT h {later} FIELDS 1 a"),
            "HSET h c v d v".to_string(),
            format!("HPEXPIREAT h {later} FIELDS 1 c"),
            format!("HPEXPIREAT h {} FIELDS 1 d", later + 1),
        ]
    );
    // No field TTLs on the target: written without, and reported.
    let (cmds, outs) = run(v(Valkey, 8, 1), RewriteOptions::default(), &evs);
    assert_eq!(cmds, ["HSET h a v b v c v d v"]);
    assert_eq!(report(&outs[0]).losses, [Loss::FieldTtls { fields: 3 }]);
    // HMSET before 4.0.
    let (cmds, _) = run(v(Redis, 3, 2), RewriteOptions::default(), &evs);
    assert_eq!(cmds[0], "HMSET h a v b v c v d v");
    // All fields expired: nothing to write.
    let evs = [
        start("h", RdbType::Hash2, None),
        Event::HashEntries(vec![f("old", Some(1))]),
        Event::KeyEnd,
    ];
    let (cmds, outs) = run(v(Valkey, 9, 0), RewriteOptions::default(), &evs);
    assert!(cmds.is_empty());
    assert_eq!(report(&outs[0]).status, KeyStatus::Empty);
}

fn id(ms: u64, seq: u64) -> StreamId {
    StreamId { ms, seq }
}

fn stream_events() -> Vec<Event> {
    let entry = |ms, seq| StreamEntry {
        id: id(ms, seq),
        fields: vec![(s("f"), s("v"))],
    };
    vec![
        start("st", RdbType::StreamListpacks3, Some(NOW + 60_000)),
        Event::StreamEntries(vec![entry(1, 1), entry(3, 0)]),
        Event::StreamMeta(StreamMeta {
            length: 2,
            last_id: id(4, 0),
            first_id: Some(id(1, 1)),
            max_deleted_id: Some(id(4, 0)),
            entries_added: Some(5),
        }),
        Event::StreamGroup(StreamGroup {
            name: Bytes::from_static(b"g"),
            last_id: id(3, 0),
            entries_read: Some(4),
        }),
        Event::StreamPending(vec![
            PendingEntry {
                id: id(1, 0),
                delivery_time_ms: 100,
                delivery_count: 2,
            },
            PendingEntry {
                id: id(1, 1),
                delivery_time_ms: 100,
                delivery_count: 2,
            },
            PendingEntry {
                id: id(3, 0),
                delivery_time_ms: 200,
                delivery_count: 1,
            },
        ]),
        Event::StreamConsumer(StreamConsumer {
            name: Bytes::from_static(b"alice"),
            seen_time_ms: 1,
            active_time_ms: Some(1),
        }),
        Event::StreamConsumerPending(vec![id(1, 0), id(1, 1), id(3, 0)]),
        Event::StreamConsumer(StreamConsumer {
            name: Bytes::from_static(b"idle"),
            seen_time_ms: 1,
            active_time_ms: None,
        }),
        Event::KeyEnd,
    ]
}

#[test]
fn streams_with_groups_and_a_pending_deleted_entry() {
    let (cmds, outs) = run(v(Redis, 7, 0), RewriteOptions::default(), &stream_events());
    assert_eq!(
        cmds,
        [
            "XADD st 1-0 redis-migrate placeholder",
            "XADD st 1-1 f v",
            "XADD st 3-0 f v",
            "XSETID st 4-0 ENTRIESADDED 5 MAXDELETEDID 4-0",
            "XGROUP CREATE st g 3-0 ENTRIESREAD 4",
            "XGROUP CREATECONSUMER st g alice",
            "XCLAIM st g alice 0 1-0 1-1 TIME 100 RETRYCOUNT 2 FORCE JUSTID",
            "XCLAIM st g alice 0 3-0 TIME 200 RETRYCOUNT 1 FORCE JUSTID",
            "XGROUP CREATECONSUMER st g idle",
            "XDEL st 1-0",
            &format!("PEXPIREAT st {}", NOW + 60_000),
        ]
    );
    assert!(report(&outs[0]).is_exact());
    // 6.0: no v2 metadata, no CREATECONSUMER (the idle consumer is lost).
    let (cmds, outs) = run(v(Redis, 6, 0), RewriteOptions::default(), &stream_events());
    assert_eq!(cmds[3], "XSETID st 4-0");
    assert_eq!(cmds[4], "XGROUP CREATE st g 3-0");
    assert!(!cmds.iter().any(|c| c.contains("CREATECONSUMER")));
    assert_eq!(
        report(&outs[0]).losses,
        [Loss::IdleConsumers { consumers: 1 }]
    );
    // Too large to buffer: streamed, and the pending entry before the last written id
    // cannot be checked.
    let (cmds, outs) = run(
        v(Redis, 7, 0),
        RewriteOptions::default().stream_buffer_bytes(0),
        &stream_events(),
    );
    assert_eq!(cmds[0], "XADD st 1-1 f v");
    assert!(!cmds.iter().any(|c| c.starts_with("XDEL")));
    assert_eq!(
        report(&outs[0]).losses,
        [Loss::PendingUnverified { entries: 3 }]
    );
}

#[test]
fn empty_streams_are_created_through_a_temporary_group() {
    let evs = [
        start("e", RdbType::StreamListpacks2, None),
        Event::StreamMeta(StreamMeta {
            length: 0,
            last_id: id(7, 1),
            first_id: None,
            max_deleted_id: Some(id(7, 1)),
            entries_added: Some(3),
        }),
        Event::KeyEnd,
    ];
    let (cmds, _) = run(v(Redis, 7, 0), RewriteOptions::default(), &evs);
    assert_eq!(
        cmds,
        [
            "XGROUP CREATE e redis-migrate:tmp 0 MKSTREAM",
            "XGROUP DESTROY e redis-migrate:tmp",
            "XSETID e 7-1 ENTRIESADDED 3 MAXDELETEDID 7-1",
        ]
    );
}

#[test]
fn modules_need_restore_and_functions_are_loaded() {
    let evs = [
        start("m", RdbType::Module2, None),
        Event::ModuleData(Bytes::from_static(b"\x00")),
        Event::KeyEnd,
        Event::Function(Function {
            pre_ga: false,
            name: None,
            engine: None,
            description: None,
            code: Bytes::from_static(
                b"#!lua name=mylib\nredis.register_function('f', function() return 1 end)",
            ),
        }),
    ];
    let (cmds, outs) = run(
        v(Redis, 7, 0),
        RewriteOptions::default().replace(true),
        &evs,
    );
    assert_eq!(cmds.len(), 1);
    assert!(cmds[0].starts_with("FUNCTION LOAD REPLACE #!lua name=mylib\n"));
    assert!(matches!(
        report(&outs[0]).status,
        KeyStatus::NeedsRestore { .. }
    ));
    match &outs[1] {
        Done::Function(f) => {
            assert_eq!(f.name.as_deref(), Some(&b"mylib"[..]));
            assert_eq!(f.status, FunctionStatus::Loaded);
        }
        o => panic!("{o:?}"),
    }
    let (cmds, outs) = run(v(Redis, 6, 2), RewriteOptions::default(), &evs[3..]);
    assert!(cmds.is_empty());
    assert!(matches!(
        &outs[0],
        Done::Function(FunctionReport {
            status: FunctionStatus::Unsupported,
            ..
        })
    ));
}

#[test]
fn resp_writer_inserts_select() {
    let mut w = RespWriter::new();
    let mut out = bytes::BytesMut::new();
    let key = |db| {
        Cmd::new(
            Scope::Key {
                db,
                key: Bytes::from_static(b"k"),
            },
            vec![Bytes::from_static(b"DEL"), Bytes::from_static(b"k")],
        )
    };
    w.encode(&key(1), &mut out);
    w.encode(&key(1), &mut out);
    w.encode(
        &Cmd::new(Scope::Server, vec![Bytes::from_static(b"PING")]),
        &mut out,
    );
    w.encode(&key(0), &mut out);
    assert_eq!(
        &out[..],
        &b"*2\r\n$6\r\nSELECT\r\n$1\r\n1\r\n*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n\
           *1\r\n$4\r\nPING\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n"[..]
    );
}

fn json(events: &[Event]) -> String {
    let mut w = JsonWriter::new();
    let mut out = Vec::new();
    for ev in events {
        w.push(ev, &mut out);
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn json_lines() {
    let h = json(&[
        start("h\"\x01", RdbType::Hash2, Some(5)),
        Event::HashEntries(vec![
            HashEntry {
                field: Str::Bytes(Bytes::from_static(b"\xff\xfe")),
                value: Str::Int(7),
                expire_at_ms: Some(9),
            },
            HashEntry {
                field: s("x"),
                value: s("é\n"),
                expire_at_ms: None,
            },
        ]),
        Event::KeyEnd,
    ]);
    assert_eq!(
        h,
        "{\"db\":3,\"key\":\"h\\\"\\u0001\",\"type\":\"hash\",\"expire_at_ms\":5,\"value\":\
         [[{\"base64\":\"//4=\"},\"7\",9],[\"x\",\"é\\n\"]]}\n"
    );
    let z = json(&[
        start("z", RdbType::ZSetListpack, None),
        Event::ZSetEntries(vec![
            ZSetEntry {
                member: s("a"),
                score: 1.5,
            },
            ZSetEntry {
                member: s("b"),
                score: f64::INFINITY,
            },
        ]),
        Event::KeyEnd,
    ]);
    assert!(
        z.ends_with("\"value\":[[\"a\",1.5],[\"b\",\"inf\"]]}\n"),
        "{z}"
    );
    let st = json(&stream_events());
    assert!(
        st.ends_with(
            "\"value\":{\"entries\":[{\"id\":\"1-1\",\"fields\":[[\"f\",\"v\"]]},\
             {\"id\":\"3-0\",\"fields\":[[\"f\",\"v\"]]}],\"length\":2,\"last_id\":\"4-0\",\
             \"first_id\":\"1-1\",\"max_deleted_id\":\"4-0\",\"entries_added\":5,\"groups\":[\
             {\"name\":\"g\",\"last_id\":\"3-0\",\"entries_read\":4,\"pending\":[\
             {\"id\":\"1-0\",\"delivery_time_ms\":100,\"delivery_count\":2},\
             {\"id\":\"1-1\",\"delivery_time_ms\":100,\"delivery_count\":2},\
             {\"id\":\"3-0\",\"delivery_time_ms\":200,\"delivery_count\":1}],\"consumers\":[\
             {\"name\":\"alice\",\"seen_time_ms\":1,\"active_time_ms\":1,\"pending\":[\"1-0\",\"1-1\",\"3-0\"]},\
             {\"name\":\"idle\",\"seen_time_ms\":1,\"active_time_ms\":null,\"pending\":[]}]}]}}\n"
        ),
        "{st}"
    );
    // An empty stream without groups.
    let e = json(&[start("e", RdbType::StreamListpacks, None), Event::KeyEnd]);
    assert!(
        e.ends_with("\"value\":{\"entries\":[],\"groups\":[]}}\n"),
        "{e}"
    );
}

/// Rewriter + RespWriter against [`direct::DirectStream`] fed the same stream: the same
/// bytes, command count and losses.
fn direct_stream_matches(
    target: ServerVersion,
    opts: RewriteOptions,
    events: &[Event],
    bufs: &mut direct::StreamBuffers,
) {
    let mut rw = Rewriter::new(target, opts.clone(), NOW);
    let mut resp = RespWriter::new();
    let mut want = bytes::BytesMut::new();
    let mut report = None;
    for ev in events {
        if let Some(Done::Key(r)) = rw.push(ev, &mut |c: Cmd| resp.encode(&c, &mut want)) {
            report = Some(r);
        }
    }
    let report = report.expect("a key report");
    let Event::KeyStart(k) = &events[0] else {
        panic!("a key first")
    };
    let mut ds = direct::DirectStream::new(
        k.db,
        k.key.clone(),
        k.expire_at_ms,
        target,
        &opts,
        NOW,
        std::mem::take(bufs),
    )
    .expect("a target with streams");
    let mut resp = RespWriter::new();
    let mut got = bytes::BytesMut::new();
    for ev in &events[1..] {
        match ev {
            Event::StreamEntries(entries) => {
                for e in entries {
                    let fields: Vec<_> = e
                        .fields
                        .iter()
                        .map(|(f, v)| (f.as_item(), v.as_item()))
                        .collect();
                    ds.entry(e.id, &fields, &mut resp, &mut got);
                }
            }
            Event::KeyEnd => break,
            ev => ds.event(ev),
        }
    }
    let (done, back) = ds.finish(&mut resp, &mut got);
    *bufs = back;
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want),
        "{target} {opts:?}"
    );
    assert_eq!(done.commands, report.commands);
    assert_eq!(done.losses, report.losses);
    assert_eq!(done.empty, report.status == KeyStatus::Empty);
}

#[test]
fn direct_streams_write_what_the_rewriter_writes() {
    // Entries with integer and long fields, and pending entries of deleted ids before,
    // between and after them.
    let mut big = stream_events();
    let entries: Vec<StreamEntry> = (0..40u64)
        .map(|i| StreamEntry {
            id: id(10 + 2 * i, i % 3),
            fields: vec![
                (s("field"), Str::Int(i as i64 - 20)),
                (Str::Int(i64::MIN), s(&"x".repeat(i as usize * 7))),
            ],
        })
        .collect();
    big.insert(2, Event::StreamEntries(entries));
    if let Event::StreamMeta(m) = &mut big[3] {
        m.last_id = id(200, 0);
    }
    big.insert(
        6,
        Event::StreamPending(vec![
            PendingEntry {
                id: id(11, 0),
                delivery_time_ms: 5,
                delivery_count: 1,
            },
            PendingEntry {
                id: id(150, 0),
                delivery_time_ms: 5,
                delivery_count: 1,
            },
            PendingEntry {
                id: id(300, 0),
                delivery_time_ms: 5,
                delivery_count: 1,
            },
        ]),
    );
    big.insert(
        10,
        Event::StreamConsumerPending(vec![id(11, 0), id(150, 0), id(300, 0), id(12, 1)]),
    );
    let empty = [
        start("e", RdbType::StreamListpacks2, Some(NOW + 1)),
        Event::StreamMeta(StreamMeta {
            length: 0,
            last_id: id(7, 1),
            first_id: None,
            max_deleted_id: Some(id(7, 1)),
            entries_added: Some(3),
        }),
        Event::StreamIdmp(Bytes::from_static(b"x")),
        Event::KeyEnd,
    ];
    let bare = [start("b", RdbType::StreamListpacks, None), Event::KeyEnd];
    // The buffers go from one stream to the next, as in `rdb dump`.
    let mut bufs = direct::StreamBuffers::default();
    for target in [
        v(Redis, 5, 0),
        v(Redis, 6, 0),
        v(Redis, 6, 2),
        v(Redis, 7, 0),
    ] {
        for opts in [
            RewriteOptions::default(),
            RewriteOptions::default().replace(true),
            RewriteOptions::default().stream_buffer_bytes(0),
            RewriteOptions::default()
                .stream_buffer_bytes(600)
                .max_command_args(2)
                .replace(true),
            RewriteOptions::default().max_command_bytes(1),
        ] {
            for evs in [&stream_events()[..], &big, &empty, &bare] {
                direct_stream_matches(target, opts.clone(), evs, &mut bufs);
            }
        }
    }
    assert!(direct::DirectStream::new(
        0,
        Bytes::new(),
        None,
        v(Redis, 4, 0),
        &RewriteOptions::default(),
        NOW,
        Default::default(),
    )
    .is_none());
}
