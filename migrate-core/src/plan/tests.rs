//! Unit tests of the planner: no server, hand-made events and raw values.

use bytes::Bytes;
use rdb_parser::{Event, Family, HashEntry, KeyStart, ModuleType, RdbType, Str};

use super::*;
use crate::rewrite::Loss;
use crate::ServerFamily::{Redis, Valkey};
use crate::{Filter, KeyAction, ServerVersion};

const NOW: i64 = 1_700_000_000_000;

fn v(family: crate::ServerFamily, major: u16, minor: u16) -> ServerVersion {
    ServerVersion::new(family, major, minor, 0)
}

fn key(name: &str, t: RdbType, family: Family) -> KeyStart {
    KeyStart {
        db: 0,
        key: Bytes::copy_from_slice(name.as_bytes()),
        type_byte: t.byte(family),
        rdb_type: t,
        expire_at_ms: None,
        lru_idle: None,
        lfu_freq: None,
        meta: Vec::new(),
        module: None,
        min_field_expire_ms: None,
        record_offset: 0,
    }
}

fn s(x: &str) -> Str {
    Str::Bytes(Bytes::copy_from_slice(x.as_bytes()))
}

fn text(c: &Cmd) -> String {
    c.args
        .iter()
        .map(|a| {
            if a.iter().all(|b| b.is_ascii_graphic()) {
                String::from_utf8_lossy(a).into_owned()
            } else {
                "<payload>".to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Feeds events; returns the commands as text, the verdicts of `KeyStart`/changes, and the
/// key plans.
fn run(p: &mut KeyPlanner, events: Vec<Event>) -> (Vec<String>, Vec<Verdict>, Vec<KeyPlan>) {
    let mut cmds = Vec::new();
    let mut verdicts = Vec::new();
    let mut plans = Vec::new();
    for ev in events {
        match p.push(ev, &mut |c| cmds.push(c)) {
            Planned::Verdict(v) => verdicts.push(v),
            Planned::Key(k) => plans.push(k),
            _ => {}
        }
    }
    (cmds.iter().map(text).collect(), verdicts, plans)
}

/// A string key "k" = "v" as events with its raw value.
fn string_key(start: KeyStart) -> Vec<Event> {
    vec![
        Event::KeyStart(start),
        Event::RawValue(Bytes::from_static(b"\x00\x01v")),
        Event::String(s("v")),
        Event::KeyEnd,
    ]
}

fn planner(opts: PlanOptions) -> KeyPlanner {
    KeyPlanner::new(opts, NOW)
}

#[test]
fn restore_or_rewrite_by_type_byte_and_target_version() {
    // Set listpack (type 20, RDB 11): Redis 7.0 does not know it, 7.2 does.
    let set = |target| {
        let mut p = planner(PlanOptions::new(target));
        let k = key("s", RdbType::SetListpack, Family::Redis);
        p.key_start(k, &mut |_| {})
    };
    assert_eq!(
        set(v(Redis, 7, 0)),
        Verdict::Rewrite(RewriteReason::UnknownType { type_byte: 20 })
    );
    assert_eq!(set(v(Redis, 7, 2)), Verdict::Restore);
}

#[test]
fn type_22_is_read_by_the_source_family() {
    // Redis 7.4 RC HASH_METADATA_PRE_GA and Valkey 9 HASH_2 share type byte 22.
    let run22 = |source: Family, t: RdbType, target| {
        let mut p = planner(PlanOptions::new(target));
        p.set_source(source, if source == Family::Valkey { 80 } else { 12 });
        let k = key("h", t, source);
        assert_eq!(k.type_byte, 22);
        p.key_start(k, &mut |_| {})
    };
    let refused = Verdict::Rewrite(RewriteReason::UnknownType { type_byte: 22 });
    assert_eq!(
        run22(Family::Valkey, RdbType::Hash2, v(Valkey, 9, 0)),
        Verdict::Restore
    );
    assert_eq!(
        run22(Family::Redis, RdbType::HashMetadataPreGa, v(Valkey, 9, 0)),
        refused
    );
    assert_eq!(
        run22(Family::Valkey, RdbType::Hash2, v(Redis, 7, 4)),
        refused
    );
    assert_eq!(
        run22(Family::Redis, RdbType::HashMetadataPreGa, v(Redis, 7, 4)),
        Verdict::Restore
    );
}

#[test]
fn restore_carries_absttl_idletime_freq_and_the_target_footer() {
    let target = v(Redis, 7, 0);
    let mut p = planner(PlanOptions::new(target));
    let mut a = key("a", RdbType::String, Family::Redis);
    a.expire_at_ms = Some(NOW + 5000);
    a.lru_idle = Some(42);
    let mut b = key("b", RdbType::String, Family::Redis);
    b.lfu_freq = Some(7);
    let mut events = string_key(a);
    events.extend(string_key(b));
    let mut cmds = Vec::new();
    let mut plans = Vec::new();
    for ev in events {
        if let Planned::Key(k) = p.push(ev, &mut |c| cmds.push(c)) {
            plans.push(k);
        }
    }
    let texts: Vec<String> = cmds.iter().map(text).collect();
    assert_eq!(
        texts,
        [
            format!("RESTORE a {} <payload> ABSTTL IDLETIME 42", NOW + 5000),
            "RESTORE b 0 <payload> FREQ 7".to_string(),
        ]
    );
    assert!(plans.iter().all(|k| k.verdict == Verdict::Restore));
    // The payload: the raw value with the target's RDB version and a valid CRC.
    let payload = rdb_parser::dump::split(&cmds[0].args[3], true).unwrap();
    assert_eq!(payload.version, target.rdb_version());
    assert_eq!(&payload.value[..], b"\x00\x01v");

    // Before 5.0: no ABSTTL (PEXPIREAT after), no IDLETIME/FREQ.
    let mut p = planner(PlanOptions::new(v(Redis, 4, 0)));
    let mut a = key("a", RdbType::String, Family::Redis);
    a.expire_at_ms = Some(NOW + 5000);
    a.lru_idle = Some(42);
    let (texts, _, _) = run(&mut p, string_key(a));
    assert_eq!(
        texts,
        [
            "RESTORE a 0 <payload>".to_string(),
            format!("PEXPIREAT a {}", NOW + 5000)
        ]
    );
}

#[test]
fn replace_under_conflict_replace() {
    let opts = PlanOptions::new(v(Redis, 7, 2)).conflict(Conflict::Replace);
    let (texts, _, _) = run(
        &mut planner(opts.clone()),
        string_key(key("k", RdbType::String, Family::Redis)),
    );
    assert_eq!(texts, ["RESTORE k 0 <payload> REPLACE"]);
    // Written as commands: the key is removed first (SET replaces by itself).
    let mut events = vec![Event::KeyStart(key("l", RdbType::List, Family::Redis))];
    events.push(Event::ListItems(vec![s("a"), s("b")]));
    events.push(Event::KeyEnd);
    let (texts, _, _) = run(&mut planner(opts.mode(WriteMode::Rewrite)), events);
    assert_eq!(texts, ["UNLINK l", "RPUSH l a b"]);
}

#[test]
fn expired_key_is_skipped_and_unlinked_under_replace() {
    let mut k = key("k", RdbType::String, Family::Redis);
    k.expire_at_ms = Some(NOW - 1);
    let (texts, verdicts, plans) = run(
        &mut planner(PlanOptions::new(v(Redis, 7, 2))),
        string_key(k.clone()),
    );
    let expired = Verdict::Skip(SkipReason::Expired {
        expire_at_ms: NOW - 1,
    });
    assert!(texts.is_empty());
    assert_eq!(verdicts, std::slice::from_ref(&expired));
    assert_eq!(plans[0].verdict, expired);
    let opts = PlanOptions::new(v(Redis, 7, 2)).conflict(Conflict::Replace);
    let (texts, _, plans) = run(&mut planner(opts), string_key(k));
    assert_eq!(texts, ["UNLINK k"]);
    assert_eq!(plans[0].verdict, expired);
    assert_eq!(plans[0].commands, 1);
}

#[test]
fn big_key_switches_to_commands_mid_key() {
    let opts = PlanOptions::new(v(Redis, 7, 2))
        .big_key_bytes(7)
        .rewrite(RewriteOptions::default().max_command_args(2));
    let mut p = planner(opts);
    let events = vec![
        Event::KeyStart(key("l", RdbType::List, Family::Redis)),
        Event::RawValue(Bytes::from_static(b"\x01\x03")),
        Event::ListItems(vec![s("a"), s("b")]),
        Event::RawValue(Bytes::from_static(b"\x01a\x01b\x01c")),
        Event::ListItems(vec![s("c")]),
        Event::KeyEnd,
    ];
    let (texts, verdicts, plans) = run(&mut p, events);
    assert_eq!(
        verdicts,
        [
            Verdict::Restore,
            Verdict::Rewrite(RewriteReason::BigKey { bytes: 8 })
        ]
    );
    // The buffered items first, then the rest as it came.
    assert_eq!(texts, ["RPUSH l a b", "RPUSH l c"]);
    assert_eq!(
        plans[0].verdict,
        Verdict::Rewrite(RewriteReason::BigKey { bytes: 8 })
    );
    assert_eq!(plans[0].commands, 2);
}

#[test]
fn raw_only_key_is_decoded_when_it_must_be_rewritten() {
    // Raw pass-through: no value events fed; the switch decodes the kept raw bytes.
    let mut p = planner(PlanOptions::new(v(Redis, 7, 2)).big_key_bytes(2));
    let mut cmds = Vec::new();
    let mut out = |c: Cmd| cmds.push(text(&c));
    assert_eq!(
        p.key_start(key("k", RdbType::String, Family::Redis), &mut out),
        Verdict::Restore
    );
    assert!(p.wants_events());
    p.raw_only();
    assert!(!p.wants_events());
    let changed = p.raw(b"\x00\x01v", &mut out);
    assert_eq!(
        changed,
        Some(Verdict::Rewrite(RewriteReason::BigKey { bytes: 3 }))
    );
    assert!(p.wants_events());
    let plan = p.key_end(&mut out).unwrap();
    assert_eq!(plan.commands, 1);
    assert_eq!(cmds, ["SET k v"]);
}

#[test]
fn module_value_without_its_module_is_unsupported_with_reason() {
    let mut k = key("j", RdbType::Module2, Family::Redis);
    k.module = Some(ModuleType {
        id: 0,
        name: "ReJSON-RL".into(),
        encver: 3,
    });
    let events = || {
        vec![
            Event::KeyStart(k.clone()),
            Event::RawValue(Bytes::from_static(b"\x07\x00")),
            Event::KeyEnd,
        ]
    };
    let none: Arc<[String]> = Arc::from(Vec::new());
    let opts = PlanOptions::new(v(Redis, 7, 2)).target_modules(Some(none.clone()));
    let (texts, verdicts, plans) = run(&mut planner(opts), events());
    let reason = UnsupportedReason::ModuleNotLoaded {
        module: "ReJSON".into(),
        type_name: "ReJSON-RL".into(),
    };
    assert!(texts.is_empty());
    assert_eq!(verdicts, [Verdict::Unsupported(reason.clone())]);
    assert_eq!(plans[0].verdict, Verdict::Unsupported(reason.clone()));
    assert_eq!(
        reason.to_string(),
        "module ReJSON is not loaded on the target (module type ReJSON-RL)"
    );

    // A module type no table names, on a target without modules.
    let mut p = planner(PlanOptions::new(v(Redis, 7, 2)).target_modules(Some(none)));
    let mut unknown = k.clone();
    unknown.module.as_mut().unwrap().name = "xyzmodule".into();
    assert_eq!(
        p.key_start(unknown, &mut |_| {}),
        Verdict::Unsupported(UnsupportedReason::NoModules {
            type_name: "xyzmodule".into()
        })
    );

    // Commands only: a module value has none, unless module values may be restored.
    let opts = PlanOptions::new(v(Redis, 7, 2)).mode(WriteMode::Rewrite);
    let (_, verdicts, _) = run(&mut planner(opts.clone()), events());
    assert!(matches!(
        verdicts[0],
        Verdict::Unsupported(UnsupportedReason::ModuleNeedsRestore { .. })
    ));
    let (texts, _, plans) = run(&mut planner(opts.restore_modules(true)), events());
    assert_eq!(texts, ["RESTORE j 0 <payload>"]);
    assert_eq!(plans[0].verdict, Verdict::Restore);
}

#[test]
fn field_ttls_into_an_older_target_are_lossy_with_reason() {
    // Redis 7.4 hash with field TTLs (type 25) into Redis 7.2: commands, TTLs lost.
    let mut p = planner(PlanOptions::new(v(Redis, 7, 2)));
    p.set_source(Family::Redis, 12);
    let events = vec![
        Event::KeyStart(key("h", RdbType::HashListpackEx, Family::Redis)),
        Event::RawValue(Bytes::from_static(b"\x19")),
        Event::HashEntries(vec![
            HashEntry {
                field: s("f"),
                value: s("x"),
                expire_at_ms: Some(NOW as u64 + 10_000),
            },
            HashEntry {
                field: s("g"),
                value: s("y"),
                expire_at_ms: None,
            },
        ]),
        Event::KeyEnd,
    ];
    let (texts, verdicts, plans) = run(&mut p, events);
    assert_eq!(
        verdicts,
        [Verdict::Rewrite(RewriteReason::UnknownType {
            type_byte: 25
        })]
    );
    assert_eq!(texts, ["HSET h f x g y"]);
    assert!(plans[0].is_lossy());
    assert_eq!(plans[0].losses, [Loss::FieldTtls { fields: 1 }]);
}

#[test]
fn conflict_skip_waits_for_exists() {
    let opts = PlanOptions::new(v(Redis, 7, 2))
        .conflict(Conflict::Skip)
        .mode(WriteMode::Rewrite);
    let mut p = planner(opts);
    let mut cmds = Vec::new();
    let mut out = |c: Cmd| cmds.push(text(&c));
    p.key_start(key("k", RdbType::String, Family::Redis), &mut out);
    assert_eq!(
        p.awaiting_exists().map(|(db, k)| (db, &k[..])),
        Some((0, &b"k"[..]))
    );
    p.value(Event::String(s("v")), &mut out);
    p.resolve_exists(true, &mut out);
    let plan = p.key_end(&mut out).unwrap();
    assert_eq!(plan.verdict, Verdict::Skip(SkipReason::Exists));

    p.key_start(key("m", RdbType::String, Family::Redis), &mut out);
    p.value(Event::String(s("w")), &mut out);
    p.resolve_exists(false, &mut out);
    let plan = p.key_end(&mut out).unwrap();
    assert_eq!(plan.verdict, Verdict::Rewrite(RewriteReason::Mode));
    assert_eq!(cmds, ["SET m w"]);
}

#[test]
fn probed_type_byte_refused_turns_the_key_into_commands() {
    let mut p = planner(PlanOptions::new(v(Redis, 7, 2)).probe(true));
    let mut cmds = Vec::new();
    let mut out = |c: Cmd| cmds.push(text(&c));
    for ev in string_key(key("a", RdbType::String, Family::Redis)) {
        if matches!(ev, Event::KeyEnd) {
            assert_eq!(p.needs_probe(), Some(0));
            let payload = p.probe_payload().unwrap();
            assert!(rdb_parser::dump::split(&payload, true).is_ok());
            p.set_accepted(0, false, &mut out);
        }
        p.push(ev, &mut out);
    }
    // The next key of that type byte is rewritten from the start, without a probe.
    let (texts, verdicts, _) = run(&mut p, string_key(key("b", RdbType::String, Family::Redis)));
    assert_eq!(
        verdicts,
        [Verdict::Rewrite(RewriteReason::Refused { type_byte: 0 })]
    );
    assert_eq!(cmds, ["SET a v"]);
    assert_eq!(texts, ["SET b v"]);
    assert_eq!(p.probed().get(&0), Some(&false));
    assert_eq!(p.needs_probe(), None);
}

/// `session:*` keys renamed `s2:*` into db 5; every other key dropped.
fn sessions_to_db5() -> Filter {
    Filter::new()
        .map_db(0, 5)
        .transform("s2", |db, k| match k.strip_prefix(b"session:") {
            Some(rest) => KeyAction::rename(db, [&b"s2:"[..], rest].concat()),
            None => KeyAction::Drop,
        })
}

#[test]
fn filter_maps_and_drops_keys() {
    let mut p = planner(PlanOptions::new(v(Redis, 7, 2)).filter(sessions_to_db5()));
    let mut events = string_key(key("session:1", RdbType::String, Family::Redis));
    events.extend(string_key(key("other", RdbType::String, Family::Redis)));
    events.extend(string_key(key(
        "__redis-migrate:checkpoint",
        RdbType::String,
        Family::Redis,
    )));
    let (texts, verdicts, plans) = run(&mut p, events);
    assert_eq!(texts, ["RESTORE s2:1 0 <payload>"]);
    assert_eq!(
        verdicts,
        [
            Verdict::Restore,
            Verdict::Skip(SkipReason::Filtered),
            Verdict::Skip(SkipReason::Reserved)
        ]
    );
    assert_eq!((plans[0].db, &plans[0].key[..]), (5, &b"s2:1"[..]));
}

#[test]
fn restore_only_mode_and_payload_limit() {
    let opts = PlanOptions::new(v(Redis, 7, 0)).mode(WriteMode::Restore);
    let mut p = planner(opts.clone());
    let verdict = p.key_start(key("s", RdbType::SetListpack, Family::Redis), &mut |_| {});
    let reason = UnsupportedReason::NoRestore {
        type_byte: 20,
        target: v(Redis, 7, 0),
    };
    assert_eq!(verdict, Verdict::Unsupported(reason.clone()));
    assert!(reason.to_string().contains("cannot RESTORE RDB type 20"));

    let mut p = planner(opts.max_bulk_len(12));
    let (texts, verdicts, _) = run(
        &mut p,
        vec![
            Event::KeyStart(key("k", RdbType::String, Family::Redis)),
            Event::RawValue(Bytes::from_static(b"\x00\x03abc")),
            Event::KeyEnd,
        ],
    );
    assert!(texts.is_empty());
    assert_eq!(
        verdicts[1],
        Verdict::Unsupported(UnsupportedReason::PayloadTooBig { limit: 12 })
    );
}

#[test]
fn functions_are_loaded_kept_or_unsupported() {
    let code = Bytes::from_static(
        b"#!lua name=lib\nredis.register_function('f', function() return 1 end)",
    );
    let f = || {
        Event::Function(rdb_parser::Function {
            pre_ga: false,
            name: None,
            engine: None,
            description: None,
            code: code.clone(),
        })
    };
    let mut cmds = Vec::new();
    let mut p = planner(PlanOptions::new(v(Redis, 7, 2)));
    let plan = p.function(&f(), &mut |c| cmds.push(c));
    assert_eq!(
        plan,
        Some(FunctionPlan::Load {
            name: Some(Bytes::from_static(b"lib"))
        })
    );
    assert_eq!(cmds.len(), 1);
    let kept: Arc<HashSet<Bytes>> = Arc::new([Bytes::from_static(b"lib")].into_iter().collect());
    let mut p = planner(PlanOptions::new(v(Redis, 7, 2)).existing_functions(Some(kept)));
    assert!(matches!(
        p.function(&f(), &mut |_| panic!("nothing emitted")),
        Some(FunctionPlan::Kept { .. })
    ));
    let mut p = planner(PlanOptions::new(v(Redis, 6, 2)));
    assert!(matches!(
        p.function(&f(), &mut |_| panic!("nothing emitted")),
        Some(FunctionPlan::Unsupported { .. })
    ));
}

/// The same key through the planner's rewriter (events + `RespWriter`) and through
/// `KeyPlanner::direct` (borrowed items): the same bytes.
fn direct_matches_rewriter(opts: PlanOptions, start: KeyStart, events: Vec<Event>) -> Vec<u8> {
    use crate::rewrite::RespWriter;
    use bytes::BytesMut;
    use rdb_parser::Item;

    let mut via_events = BytesMut::new();
    let mut resp = RespWriter::new();
    let mut p = planner(opts.clone());
    let mut all = vec![Event::KeyStart(start.clone())];
    all.extend(events.iter().cloned());
    all.push(Event::KeyEnd);
    let mut plan_a = None;
    for ev in all {
        if let Planned::Key(k) = p.push(ev, &mut |c| resp.encode(&c, &mut via_events)) {
            plan_a = Some(k);
        }
    }
    let mut direct = BytesMut::new();
    let mut resp = RespWriter::new();
    let mut p = planner(opts);
    p.key_start(start, &mut |c| resp.encode(&c, &mut direct));
    let mut dk = p.direct().expect("a direct key");
    fn item(s: &Str) -> Item<'_> {
        s.as_item()
    }
    for ev in &events {
        match ev {
            Event::String(s) => dk.string(item(s), &mut resp, &mut direct),
            Event::ListItems(v) | Event::SetMembers(v) => {
                for s in v {
                    dk.element(item(s), &mut resp, &mut direct);
                }
            }
            Event::ZSetEntries(v) => {
                for e in v {
                    dk.zset_entry(item(&e.member), e.score, &mut resp, &mut direct);
                }
            }
            Event::HashEntries(v) => {
                for e in v {
                    dk.hash_entry(item(&e.field), item(&e.value), &mut resp, &mut direct);
                }
            }
            Event::StreamEntries(v) => {
                for e in v {
                    let fields: Vec<_> = e.fields.iter().map(|(f, x)| (item(f), item(x))).collect();
                    dk.stream_entry(e.id, &fields, &mut resp, &mut direct);
                }
            }
            ev => dk.stream_event(ev),
        }
    }
    let plan_b = p.direct_done(dk.finish(&mut resp, &mut direct));
    assert_eq!(
        String::from_utf8_lossy(&direct),
        String::from_utf8_lossy(&via_events)
    );
    let (a, b) = (plan_a.unwrap(), plan_b.unwrap());
    assert_eq!(
        (a.verdict, a.commands, a.losses),
        (b.verdict, b.commands, b.losses)
    );
    direct.to_vec()
}

#[test]
fn direct_resp_writes_what_the_rewriter_writes() {
    let strs = |xs: &[&str]| xs.iter().map(|x| s(x)).collect::<Vec<_>>();
    for target in [v(Redis, 3, 2), v(Redis, 6, 2), v(Redis, 7, 2)] {
        for replace in [false, true] {
            for ttl in [None, Some(NOW + 1000)] {
                let conflict = if replace {
                    Conflict::Replace
                } else {
                    Conflict::Refuse
                };
                let opts = PlanOptions::new(target)
                    .mode(WriteMode::Rewrite)
                    .conflict(conflict)
                    .rewrite(
                        RewriteOptions::default()
                            .max_command_args(3)
                            .max_command_bytes(5),
                    );
                let start = |name: &str, t: RdbType| {
                    let mut k = key(name, t, Family::Redis);
                    k.db = 2;
                    k.expire_at_ms = ttl;
                    k
                };
                // Strings: small, integer, cut into SET + APPENDs, empty.
                for pieces in [
                    vec![s("v")],
                    vec![Str::Int(-42)],
                    vec![s("abcd"), s("efghijklm")],
                    vec![],
                ] {
                    let events = pieces.into_iter().map(Event::String).collect();
                    direct_matches_rewriter(opts.clone(), start("s", RdbType::String), events);
                }
                let items = strs(&["a", "bb", "ccc", "dddddd", "e"]);
                let mut with_int = items.clone();
                with_int.push(Str::Int(7));
                direct_matches_rewriter(
                    opts.clone(),
                    start("l", RdbType::ListQuicklist2),
                    vec![Event::ListItems(with_int.clone())],
                );
                direct_matches_rewriter(
                    opts.clone(),
                    start("t", RdbType::SetListpack),
                    vec![Event::SetMembers(with_int)],
                );
                // An empty collection: nothing (or the UNLINK under replace).
                direct_matches_rewriter(
                    opts.clone(),
                    start("e", RdbType::List),
                    vec![Event::ListItems(Vec::new())],
                );
                let zset = [1.5, f64::NAN, -0.0, 1e300, f64::INFINITY]
                    .iter()
                    .zip(&items)
                    .map(|(score, m)| rdb_parser::ZSetEntry {
                        member: m.clone(),
                        score: *score,
                    })
                    .collect();
                direct_matches_rewriter(
                    opts.clone(),
                    start("z", RdbType::ZSetListpack),
                    vec![Event::ZSetEntries(zset)],
                );
                let hash = items
                    .iter()
                    .zip(items.iter().rev())
                    .map(|(f, x)| HashEntry {
                        field: f.clone(),
                        value: x.clone(),
                        expire_at_ms: None,
                    })
                    .collect();
                direct_matches_rewriter(
                    opts.clone(),
                    start("h", RdbType::HashListpack),
                    vec![Event::HashEntries(hash)],
                );
            }
        }
    }
    // Not handed over: hashes with field TTLs, keys restored.
    let mut p = planner(PlanOptions::new(v(Redis, 7, 2)).mode(WriteMode::Rewrite));
    p.key_start(
        key("h", RdbType::HashListpackEx, Family::Redis),
        &mut |_| {},
    );
    assert!(p.direct().is_none());
    let mut p = planner(PlanOptions::new(v(Redis, 7, 2)));
    p.key_start(key("k", RdbType::String, Family::Redis), &mut |_| {});
    assert!(p.direct().is_none());
}

/// A stream (of RDB 11 and later: type 21) with entries, its metadata, a group, pending
/// entries (one of a deleted entry) and consumers.
fn stream_value() -> Vec<Event> {
    use rdb_parser::{
        PendingEntry, StreamConsumer, StreamEntry, StreamGroup, StreamId, StreamMeta,
    };
    let id = |ms, seq| StreamId { ms, seq };
    let entry = |ms, seq| StreamEntry {
        id: id(ms, seq),
        fields: vec![(s("f"), s("v")), (Str::Int(-7), s("x"))],
    };
    let pending = |ms, seq| PendingEntry {
        id: id(ms, seq),
        delivery_time_ms: 100,
        delivery_count: 2,
    };
    vec![
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
        Event::StreamPending(vec![pending(1, 0), pending(3, 0)]),
        Event::StreamConsumer(StreamConsumer {
            name: Bytes::from_static(b"alice"),
            seen_time_ms: 1,
            active_time_ms: Some(1),
        }),
        Event::StreamConsumerPending(vec![id(1, 0), id(3, 0)]),
    ]
}

/// A stream key written as commands goes to a [`DirectKey`] on a target with streams
/// (the same bytes as through the rewriter), whether by choice or because the target
/// cannot restore its encoding; not where it is restored, nor on a target without streams.
#[test]
fn stream_keys_are_handed_out_where_written_as_commands() {
    let mut st = key("st", RdbType::StreamListpacks3, Family::Redis);
    st.expire_at_ms = Some(NOW + 60_000);
    // By choice, on targets of every stream metadata generation, with and without replace.
    for target in [
        v(Redis, 5, 0),
        v(Redis, 6, 2),
        v(Redis, 7, 2),
        v(Valkey, 8, 1),
    ] {
        for conflict in [Conflict::Refuse, Conflict::Replace] {
            let opts = PlanOptions::new(target)
                .mode(WriteMode::Rewrite)
                .conflict(conflict);
            let out = direct_matches_rewriter(opts, st.clone(), stream_value());
            assert!(String::from_utf8_lossy(&out).contains("XGROUP"), "{target}");
        }
    }
    // Auto: a stream of RDB 11 cannot be restored as is by 6.2, so it is rewritten, by the
    // direct writer.
    let opts = PlanOptions::new(v(Redis, 6, 2));
    let mut p = planner(opts.clone());
    assert_eq!(
        p.key_start(st.clone(), &mut |_| {}),
        Verdict::Rewrite(RewriteReason::UnknownType { type_byte: 21 })
    );
    assert!(p.direct().is_some_and(|k| k.is_stream()));
    direct_matches_rewriter(opts, st.clone(), stream_value());
    // Auto on 7.2, which restores it: RESTORE, nothing handed out.
    let mut p = planner(PlanOptions::new(v(Redis, 7, 2)));
    assert_eq!(p.key_start(st.clone(), &mut |_| {}), Verdict::Restore);
    assert!(p.direct().is_none());
    // A target without streams: not handed out, the rewriter reports the key unsupported.
    let mut p = planner(PlanOptions::new(v(Redis, 4, 0)).mode(WriteMode::Rewrite));
    p.key_start(st.clone(), &mut |_| {});
    assert!(p.direct().is_none());
    let mut events = stream_value();
    events.push(Event::KeyEnd);
    let (cmds, _, plans) = run(&mut p, events);
    assert!(cmds.is_empty(), "{cmds:?}");
    assert!(
        matches!(plans[0].verdict, Verdict::Unsupported(_)),
        "{:?}",
        plans[0].verdict
    );
    // The next key of that planner is still handed out (its buffers were kept).
    p.key_start(key("l", RdbType::List, Family::Redis), &mut |_| {});
    assert!(p.direct().is_some_and(|k| !k.is_stream()));
}

#[test]
fn integer_scores_are_formatted_as_display_does() {
    for x in [
        0.0,
        1.0,
        -1.0,
        42.0,
        -7e14,
        999_999_999_999_999.0,
        1e15,
        -0.0,
        0.5,
        1e16,
    ] {
        let text = crate::rewrite::format_score(x);
        assert_eq!(text.parse::<f64>().unwrap().to_bits(), x.to_bits(), "{x}");
        if (1e-5..1e16).contains(&x.abs()) || x == 0.0 {
            assert_eq!(text, format!("{x}"));
        }
    }
}

/// The planner's own `RESTORE` (payload, TTL and arguments carved from its arena) writes
/// what `restore_payload_commands` writes, for every combination of TTL, `REPLACE`,
/// `IDLETIME`/`FREQ` and target (with and without `ABSTTL`), borrowed or owned key, with
/// and without a recycled argument vector.
#[test]
fn restore_matches_the_shared_rules() {
    let raw = b"\x00\x05hello";
    for target in [v(Redis, 4, 0), v(Redis, 7, 2), v(Valkey, 8, 1)] {
        for conflict in [Conflict::Refuse, Conflict::Replace] {
            for (ttl, idle, freq) in [
                (None, None, None),
                (Some(NOW + 5_000), None, None),
                (Some(NOW + 5_000), Some(77), None),
                (None, None, Some(3)),
            ] {
                let mut start = key("k", RdbType::String, Family::Redis);
                start.expire_at_ms = ttl;
                start.lru_idle = idle;
                start.lfu_freq = freq;
                let payload = rdb_parser::dump::build_payload(raw, target.rdb_version());
                let want = crate::rewrite::restore_payload_commands(
                    &start,
                    Bytes::from(payload),
                    target,
                    conflict == Conflict::Replace,
                );
                let mut p = planner(PlanOptions::new(target).conflict(conflict));
                for borrowed in [false, true] {
                    let mut got = Vec::new();
                    if borrowed {
                        p.key_start_ref(&start.as_key_ref(), &mut |c| got.push(c));
                    } else {
                        p.key_start(start.clone(), &mut |c| got.push(c));
                    }
                    p.reserve_raw(raw.len());
                    p.raw(raw, &mut |c| got.push(c));
                    let plan = p.key_end(&mut |c| got.push(c)).unwrap();
                    assert_eq!(plan.verdict, Verdict::Restore);
                    assert_eq!(plan.commands, want.len() as u64);
                    assert_eq!(got, want, "{target} {conflict:?} {ttl:?} {idle:?} {freq:?}");
                    for c in got {
                        p.recycle(c.args);
                    }
                }
            }
        }
    }
}

/// A lent `RESTORE` as RESP ([`RestoreCmd::encode`]), checking the length it returns.
fn resp_of(cmd: &RestoreCmd<'_>) -> Vec<u8> {
    let mut out = BytesMut::from(&b"before"[..]);
    let n = cmd.encode(&mut out);
    assert_eq!(n, out.len() - 6);
    out[6..].to_vec()
}

/// Owned arguments as RESP.
fn resp_of_args(args: &[Bytes]) -> Vec<u8> {
    let mut out = BytesMut::new();
    resp_codec::encode_command(&mut out, args);
    out.to_vec()
}

/// Ends one string key "k" (TTL, idle time, frequency as given) with `key_end_restore`
/// (`None` when it declined) and, on a fresh planner, with `key_end`: their arguments.
fn both_ends(
    opts: PlanOptions,
    expire: Option<i64>,
    idle: Option<u64>,
    freq: Option<u8>,
) -> (Option<Vec<Vec<u8>>>, Vec<Vec<Bytes>>) {
    let start = || {
        let mut k = key("k", RdbType::String, Family::Redis);
        k.db = 3;
        k.expire_at_ms = expire;
        k.lru_idle = idle;
        k.lfu_freq = freq;
        k
    };
    let begin = |p: &mut KeyPlanner| {
        let mut none = |_: Cmd| panic!("no command before the key's end");
        p.key_start(start(), &mut none);
        p.raw(b"\x00\x01v", &mut none);
    };
    let mut p = planner(opts.clone());
    begin(&mut p);
    let mut got = None;
    let plan = p.key_end_restore(|cmd| {
        assert_eq!(cmd.db(), 3);
        let args = cmd.to_args();
        assert_eq!(args.len(), cmd.arg_count());
        assert_eq!(args[3].len(), cmd.payload_len());
        assert_eq!(resp_of(cmd), resp_of_args(&args));
        got = Some(args.iter().map(|a| a.to_vec()).collect::<Vec<_>>());
        true
    });
    if let Some(plan) = &plan {
        assert_eq!((plan.db, &plan.key[..], plan.commands), (3, &b"k"[..], 1));
        assert_eq!(plan.verdict, Verdict::Restore);
        assert!(p.key_end(&mut |_| panic!("the key is ended")).is_none());
    }
    let mut q = planner(opts);
    begin(&mut q);
    let mut cmds = Vec::new();
    q.key_end(&mut |c| cmds.push(c.args));
    (plan.and(got), cmds)
}

/// Keys ended with one `RESTORE`: target, conflict rule, TTL, idle time, frequency.
#[allow(clippy::type_complexity)]
fn restore_cases() -> [(
    ServerVersion,
    Conflict,
    Option<i64>,
    Option<u64>,
    Option<u8>,
); 5] {
    [
        (
            v(Redis, 7, 0),
            Conflict::Replace,
            Some(NOW + 5000),
            Some(42),
            None,
        ),
        (v(Redis, 7, 0), Conflict::Skip, None, None, Some(7)),
        (v(Redis, 6, 2), Conflict::Refuse, None, None, None),
        (v(Redis, 4, 0), Conflict::Refuse, None, Some(9), None),
        (
            v(Valkey, 8, 0),
            Conflict::Replace,
            Some(NOW + 1),
            None,
            Some(0),
        ),
    ]
}

#[test]
fn key_end_restore_borrows_what_key_end_emits() {
    let cases = restore_cases();
    for (target, conflict, expire, idle, freq) in cases {
        let opts = PlanOptions::new(target).conflict(conflict);
        let (direct, cmds) = both_ends(opts, expire, idle, freq);
        assert_eq!(cmds.len(), 1, "{target:?}");
        let want: Vec<Vec<u8>> = cmds[0].iter().map(|a| a.to_vec()).collect();
        assert_eq!(direct, Some(want), "{target:?} {conflict:?}");
    }
    // A target without ABSTTL and a key with a TTL (RESTORE, then PEXPIREAT): declined.
    let (direct, cmds) = both_ends(
        PlanOptions::new(v(Redis, 4, 0)),
        Some(NOW + 5000),
        None,
        None,
    );
    assert_eq!((direct, cmds.len()), (None, 2));
    // Declined by the writer: the key ends as before, with the same payload.
    let mut p = planner(PlanOptions::new(v(Redis, 7, 0)));
    let mut none = |_: Cmd| panic!("no command before the key's end");
    p.key_start(key("k", RdbType::String, Family::Redis), &mut none);
    p.raw(b"\x00\x01v", &mut none);
    assert!(p.key_end_restore(|_| false).is_none());
    let mut cmds = Vec::new();
    p.key_end(&mut |c| cmds.push(c));
    assert_eq!(text(&cmds[0]), "RESTORE k 0 <payload>");
    let payload = rdb_parser::dump::split(&cmds[0].args[3], true).unwrap();
    assert_eq!(&payload.value[..], b"\x00\x01v");
}

/// Plans one string key "k" (value "v") whole; with what it lent as owned arguments and
/// as RESP (checked to agree).
fn whole(p: &mut KeyPlanner, k: &KeyStart, taken: bool) -> (WholeKey, Option<Vec<Bytes>>) {
    let mut lent = None;
    let plan = p.whole_key(&k.as_key_ref(), b"\x01v", |cmd| {
        let args = cmd.to_args();
        assert_eq!(resp_of(cmd), resp_of_args(&args));
        assert_eq!((cmd.db(), cmd.key()), (k.db, &k.key[..]));
        lent = Some(args);
        taken
    });
    (plan, lent)
}

#[test]
fn whole_key_restores_what_key_end_emits() {
    let cases = restore_cases();
    for (target, conflict, expire, idle, freq) in cases {
        let opts = PlanOptions::new(target).conflict(conflict);
        let (_, want) = both_ends(opts.clone(), expire, idle, freq);
        let mut k = key("k", RdbType::String, Family::Redis);
        k.db = 3;
        k.expire_at_ms = expire;
        k.lru_idle = idle;
        k.lfu_freq = freq;
        let mut p = planner(opts);
        let (plan, lent) = whole(&mut p, &k, true);
        let kind = ValueKind::String;
        assert_eq!(plan, WholeKey::Restored { db: 3, kind }, "{target:?}");
        assert_eq!(lent.unwrap(), want[0], "{target:?} {conflict:?}");
        assert_eq!(p.commands(), 1);
        // Nothing of it is left in the planner: the next key starts clean.
        assert_eq!(p.current_key(), None);
    }
}

#[test]
fn whole_key_skips_or_declines_what_needs_more() {
    let r70 = v(Redis, 7, 0);
    let string = || key("k", RdbType::String, Family::Redis);
    let skipped = |reason| WholeKey::Skipped {
        kind: ValueKind::String,
        reason,
    };
    // Skipped without a command: filtered, reserved, expired (no UNLINK to send).
    let mut p = planner(PlanOptions::new(r70).filter(Filter::new().include_db(1)));
    assert_eq!(
        whole(&mut p, &string(), true).0,
        skipped(SkipReason::Filtered)
    );
    let mut p = planner(PlanOptions::new(r70));
    let reserved = key("__redis-migrate:checkpoint", RdbType::String, Family::Redis);
    assert_eq!(
        whole(&mut p, &reserved, true).0,
        skipped(SkipReason::Reserved)
    );
    let mut expired = string();
    expired.expire_at_ms = Some(NOW - 1);
    let expired_at = SkipReason::Expired {
        expire_at_ms: NOW - 1,
    };
    assert_eq!(whole(&mut p, &expired, true).0, skipped(expired_at));
    assert_eq!(p.commands(), 0);
    // Declined, nothing lent: an expired key's UNLINK under REPLACE, a key to rewrite, a
    // big key, a TTL that needs PEXPIREAT after, a type byte not probed yet, a module
    // value, and a key the writer does not take.
    let declined = |opts: PlanOptions, k: &KeyStart, taken: bool| {
        let mut p = planner(opts);
        let (plan, lent) = whole(&mut p, k, taken);
        assert_eq!(plan, WholeKey::Declined, "{k:?}");
        assert!(lent.is_none() || !taken);
        assert_eq!(p.commands(), 0);
        // The key goes the usual way, undisturbed.
        let mut cmds = Vec::new();
        p.key_start_ref(&k.as_key_ref(), &mut |c| cmds.push(c));
        p.raw(b"\x00\x01v", &mut |c| cmds.push(c));
        p.key_end(&mut |c| cmds.push(c)).unwrap()
    };
    let plan = declined(
        PlanOptions::new(r70).conflict(Conflict::Replace),
        &expired,
        true,
    );
    assert_eq!(plan.commands, 1);
    let plan = declined(
        PlanOptions::new(r70).mode(WriteMode::Rewrite),
        &string(),
        true,
    );
    assert_eq!(plan.verdict, Verdict::Rewrite(RewriteReason::Mode));
    let plan = declined(PlanOptions::new(r70).big_key_bytes(2), &string(), true);
    assert!(matches!(
        plan.verdict,
        Verdict::Rewrite(RewriteReason::BigKey { .. })
    ));
    let mut ttl = string();
    ttl.expire_at_ms = Some(NOW + 5000);
    let plan = declined(PlanOptions::new(v(Redis, 4, 0)), &ttl, true);
    assert_eq!((plan.verdict, plan.commands), (Verdict::Restore, 2));
    let plan = declined(PlanOptions::new(r70).probe(true), &string(), true);
    assert_eq!(plan.verdict, Verdict::Restore);
    let plan = declined(PlanOptions::new(r70), &string(), false);
    assert_eq!(plan.verdict, Verdict::Restore);
    let mut module = key("m", RdbType::Module2, Family::Redis);
    module.module = Some(ModuleType {
        name: "ReJSON-RL".into(),
        id: 0,
        encver: 3,
    });
    let mut p = planner(PlanOptions::new(r70));
    assert_eq!(whole(&mut p, &module, true).0, WholeKey::Declined);
}

#[test]
fn whole_key_maps_renamed_keys() {
    let mut p = planner(PlanOptions::new(v(Redis, 7, 2)).filter(sessions_to_db5()));
    let k = key("session:1", RdbType::String, Family::Redis);
    let mut lent = None;
    let plan = p.whole_key(&k.as_key_ref(), b"\x01v", |cmd| {
        lent = Some((cmd.db(), cmd.to_args()));
        true
    });
    let kind = ValueKind::String;
    assert_eq!(plan, WholeKey::Restored { db: 5, kind });
    let (db, args) = lent.unwrap();
    assert_eq!((db, &args[1][..]), (5, &b"s2:1"[..]));
    let other = key("other", RdbType::String, Family::Redis);
    let plan = p.whole_key(&other.as_key_ref(), b"\x01v", |_| panic!("filtered"));
    let reason = SkipReason::Filtered;
    assert_eq!(plan, WholeKey::Skipped { kind, reason });
}
