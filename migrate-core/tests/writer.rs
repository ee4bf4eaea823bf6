//! The target writer against real servers: pipelining across dbs, failures reported with
//! their tags, transactions, out of memory, a connection killed mid-stream, authentication.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use migrate_core::{
    chunk_items, chunk_string, Error, Outcome, Resolved, ServerErrorKind, Tag, Target,
    TargetOptions, Writer, WriterOptions,
};
use testkit::{Flavor, Reply, Server, Snapshot};
use tokio::net::TcpStream;

async fn writer(server: &Server) -> Writer<TcpStream> {
    let target = Target::connect(&server.addr(), &TargetOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", server.flavor()));
    let options = target.writer_options();
    target.into_writer(options)
}

/// Every outcome left, and the writer's final result.
async fn drain(w: &mut Writer<TcpStream>) -> (Vec<Outcome>, Result<(), Error>) {
    let mut all = Vec::new();
    loop {
        match w.next_outcome().await {
            Ok(Some(o)) => all.push(o),
            Ok(None) => return (all, Ok(())),
            Err(e) => return (all, Err(e)),
        }
    }
}

fn key_tag(db: u32, command: &'static str, key: &str, seq: u64) -> Tag {
    Tag::new(Some(db), command, seq).with_key(key.to_string())
}

#[tokio::test]
async fn pipelined_sets_across_dbs_on_every_flavour() {
    const N: u64 = 100_000;
    for flavor in Flavor::ALL {
        let server = Server::start(flavor);
        let mut w = writer(&server).await;
        let mut applied = 0u64;
        let mut next_seq = 0u64;
        for i in 0..N {
            // Runs of keys per db, with a db change every few commands.
            let db = ((i / 7) % 3) as u32;
            let key = format!("key:{i}");
            w.send(
                key_tag(db, "SET", &key, i),
                &["SET", &key, &format!("v{i}")],
            )
            .await
            .unwrap();
            while let Some(o) = w.try_next_outcome() {
                assert!(o.is_applied(), "{flavor}: {o}");
                assert_eq!(o.tag().seq, next_seq, "outcomes in order");
                next_seq += 1;
                applied += 1;
            }
            assert!(w.pipeline().in_flight() <= WriterOptions::DEFAULT_MAX_IN_FLIGHT);
        }
        w.flush().await.unwrap();
        let (rest, end) = drain(&mut w).await;
        end.unwrap();
        applied += rest.iter().filter(|o| o.is_applied()).count() as u64;
        assert_eq!(applied, N, "{flavor}");
        w.shutdown().await.unwrap();

        let mut conn = server.connect();
        let mut total = 0;
        for db in 0..3 {
            conn.ok(["SELECT", &db.to_string()]);
            let size = conn.int(["DBSIZE"]);
            assert!(size > 30_000, "{flavor} db{db}: {size}");
            total += size;
        }
        assert_eq!(total as u64, N, "{flavor}");
        conn.ok(["SELECT", "2"]);
        assert_eq!(
            conn.bulk(["GET", "key:99999"]).as_deref(),
            Some(&b"v99999"[..])
        );

        // The conflict check sees the same.
        let mut target = Target::connect(&server.addr(), &TargetOptions::default())
            .await
            .unwrap();
        let keyspace = target.keyspace().await.unwrap();
        assert_eq!(keyspace.total_keys(), N, "{flavor}");
        assert_eq!(keyspace.non_empty([1, 3]).len(), 1, "{flavor}");
        assert_eq!(
            target.db_size(1).await.unwrap(),
            keyspace.keys(1),
            "{flavor}"
        );
    }
}

#[tokio::test]
async fn a_db_the_target_lacks_stops_the_writer() {
    let server = Server::builder(Flavor::Redis7_0)
        .config("databases", "4")
        .start();
    let mut w = writer(&server).await;
    w.send(key_tag(3, "SET", "a", 0), &["SET", "a", "1"])
        .await
        .unwrap();
    w.send(key_tag(4, "SET", "b", 1), &["SET", "b", "2"])
        .await
        .unwrap();
    let e = w.flush().await.unwrap_err();
    assert!(matches!(e, Error::SelectRefused { db: 4, .. }), "{e}");
    assert!(
        e.to_string()
            .starts_with("SELECT 4 refused by the target: ERR DB index is out of range"),
        "{e}"
    );
    let (outcomes, _) = drain(&mut w).await;
    assert!(outcomes[0].is_applied());
    // It ran in db 3 instead: reported as lost (maybe applied), never as applied.
    assert!(matches!(
        outcomes[1],
        Outcome::Lost {
            maybe_applied: true,
            ..
        }
    ));
}

#[tokio::test]
async fn mixed_types_match_a_reference_written_directly() {
    let target = Server::start(Flavor::Valkey9_1);
    let reference = Server::start(Flavor::Valkey9_1);
    let mut w = writer(&target).await;
    let mut direct = reference.connect();
    let expire_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 3_600_000;
    let mut seq = 0;
    for i in 0..3000u64 {
        let db = (i % 3) as u32;
        let key = format!("k{i}");
        let commands: Vec<Vec<String>> = match i % 5 {
            0 => vec![vec!["SET".into(), key.clone(), format!("value-{i}")]],
            1 => vec![vec![
                "HSET".into(),
                key.clone(),
                "f1".into(),
                i.to_string(),
                "f2".into(),
                "x".into(),
            ]],
            2 => vec![vec![
                "RPUSH".into(),
                key.clone(),
                "a".into(),
                "b".into(),
                i.to_string(),
            ]],
            3 => vec![vec!["SADD".into(), key.clone(), "m1".into(), i.to_string()]],
            _ => vec![vec![
                "ZADD".into(),
                key.clone(),
                "1.5".into(),
                "m".into(),
                i.to_string(),
                "n".into(),
            ]],
        };
        let mut commands = commands;
        if i % 4 == 0 {
            commands.push(vec!["PEXPIREAT".into(), key.clone(), expire_at.to_string()]);
        }
        direct.ok(["SELECT", &db.to_string()]);
        for cmd in &commands {
            direct.must(cmd);
            w.send(
                Tag::new(Some(db), cmd[0].clone(), seq).with_key(key.clone()),
                cmd,
            )
            .await
            .unwrap();
            seq += 1;
        }
    }
    w.flush().await.unwrap();
    let (outcomes, end) = drain(&mut w).await;
    end.unwrap();
    assert_eq!(outcomes.len() as u64, seq);
    assert!(outcomes.iter().all(Outcome::is_applied));
    // Both sides got the same PEXPIREAT; expiries are read back as PTTL plus the local
    // clock, which drifts under load.
    Snapshot::take(&reference, 3).assert_same(&Snapshot::take(&target, 3), 2000);
}

#[tokio::test]
async fn failed_commands_are_reported_with_their_tag_and_the_rest_goes_on() {
    for flavor in Flavor::ALL {
        let server = Server::start(flavor);
        let mut w = writer(&server).await;
        let sends: &[(&str, &[&str])] = &[
            ("SET", &["SET", "s", "not a number"]),
            ("INCR", &["INCR", "s"]),
            ("LPUSH", &["LPUSH", "s", "secret-value"]),
            ("SET", &["SET", "n", "41"]),
            ("INCR", &["INCR", "n"]),
        ];
        for (seq, (name, args)) in sends.iter().enumerate() {
            w.send(key_tag(1, name, args[1], seq as u64), args)
                .await
                .unwrap();
        }
        w.flush().await.unwrap();
        let (outcomes, end) = drain(&mut w).await;
        end.unwrap();
        let shown: Vec<String> = outcomes.iter().map(ToString::to_string).collect();
        assert_eq!(shown[0], "SET \"s\" (db 1, seq 0): applied");
        assert!(
            shown[1].starts_with("INCR \"s\" (db 1, seq 1): failed: ERR value is not an integer"),
            "{flavor}: {}",
            shown[1]
        );
        match &outcomes[2] {
            Outcome::Failed { tag, reply } => {
                assert_eq!(tag.seq, 2);
                assert_eq!(reply.kind(), ServerErrorKind::WrongType);
            }
            o => panic!("{flavor}: {o}"),
        }
        assert!(shown.iter().all(|s| !s.contains("secret-value")));
        assert!(outcomes[3].is_applied() && outcomes[4].is_applied());
        let mut conn = server.connect();
        conn.ok(["SELECT", "1"]);
        assert_eq!(conn.bulk(["GET", "n"]).as_deref(), Some(&b"42"[..]));
    }
}

#[tokio::test]
async fn transactions_report_each_command() {
    for flavor in Flavor::ALL {
        let server = Server::start(flavor);
        let mut w = writer(&server).await;
        w.send(key_tag(0, "SET", "s", 0), &["SET", "s", "text"])
            .await
            .unwrap();
        // A command failing inside EXEC fails alone; the transaction moves across dbs.
        w.multi().unwrap();
        w.send(key_tag(0, "SET", "a", 1), &["SET", "a", "1"])
            .await
            .unwrap();
        w.send(key_tag(0, "INCR", "s", 2), &["INCR", "s"])
            .await
            .unwrap();
        w.send(key_tag(2, "SET", "b", 3), &["SET", "b", "2"])
            .await
            .unwrap();
        w.exec().unwrap();
        // A command refused while queueing aborts the whole transaction.
        w.multi().unwrap();
        w.send(key_tag(2, "SET", "c", 4), &["SET", "c", "3"])
            .await
            .unwrap();
        w.send(key_tag(2, "NOSUCHCOMMAND", "c", 5), &["NOSUCHCOMMAND", "c"])
            .await
            .unwrap();
        w.exec().unwrap();
        // The db after a transaction that changed it is selected again.
        w.send(key_tag(0, "SET", "d", 6), &["SET", "d", "4"])
            .await
            .unwrap();
        w.flush().await.unwrap();
        let (outcomes, end) = drain(&mut w).await;
        end.unwrap();
        let kinds: Vec<String> = outcomes
            .iter()
            .map(|o| match o {
                Outcome::Applied(t) => format!("{} ok", t.seq),
                Outcome::Failed { tag, reply } => {
                    format!("{} {}", tag.seq, String::from_utf8_lossy(reply.code()))
                }
                o => panic!("{flavor}: {o}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "0 ok",
                "1 ok",
                "2 ERR",
                "3 ok",
                "4 EXECABORT",
                "5 ERR",
                "6 ok"
            ],
            "{flavor}"
        );
        let mut conn = server.connect();
        assert_eq!(conn.bulk(["GET", "a"]).as_deref(), Some(&b"1"[..]));
        assert_eq!(conn.bulk(["GET", "d"]).as_deref(), Some(&b"4"[..]));
        conn.ok(["SELECT", "2"]);
        assert_eq!(conn.bulk(["GET", "b"]).as_deref(), Some(&b"2"[..]));
        assert_eq!(conn.bulk(["GET", "c"]), None);
    }
}

#[tokio::test]
async fn out_of_memory_stops_the_writer_with_a_clear_error() {
    for flavor in Flavor::ALL {
        let server = Server::builder(flavor)
            .config("maxmemory", "1mb")
            .config("maxmemory-policy", "noeviction")
            .start();
        let mut w = writer(&server).await;
        let value = "x".repeat(10_000);
        let mut accepted = 0u64;
        let mut stopped = None;
        for i in 0..2000u64 {
            let key = format!("big:{i}");
            match w
                .send(key_tag(0, "SET", &key, i), &["SET", &key, &value])
                .await
            {
                Ok(()) => accepted += 1,
                Err(e) => {
                    stopped = Some(e);
                    break;
                }
            }
        }
        let flushed = w.flush().await;
        let (outcomes, end) = drain(&mut w).await;
        let e = stopped.or(flushed.err()).expect("the writer stopped");
        assert!(e.is_out_of_memory(), "{flavor}: {e}");
        assert!(
            e.to_string().starts_with(
                "target out of memory: OOM command not allowed when used memory > 'maxmemory'"
            ),
            "{flavor}: {e}"
        );
        assert!(e.to_string().contains("(on SET \"big:"), "{e}");
        assert!(matches!(end, Err(Error::OutOfMemory { .. })));
        // Every accepted command has its outcome; the first failure is an OOM.
        assert_eq!(outcomes.len() as u64, accepted, "{flavor}");
        let first_failed = outcomes.iter().find(|o| !o.is_applied()).unwrap();
        assert!(
            matches!(first_failed, Outcome::Failed { reply, .. } if reply.is_oom()),
            "{first_failed}"
        );
        let applied = outcomes.iter().filter(|o| o.is_applied()).count() as i64;
        assert_eq!(server.connect().int(["DBSIZE"]), applied, "{flavor}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_killed_mid_stream_loses_nothing_silently() {
    for flavor in Flavor::ALL {
        let server = Server::start(flavor);
        let mut w = writer(&server).await;
        let mut seq = 0;
        for i in 0..1000 {
            let key = format!("before:{i}");
            w.send(key_tag(0, "SET", &key, seq), &["SET", &key, "v"])
                .await
                .unwrap();
            seq += 1;
        }
        // Blocks the connection on the server: what follows waits unprocessed.
        w.send(
            key_tag(0, "BLPOP", "nothing", seq),
            &["BLPOP", "nothing", "0"],
        )
        .await
        .unwrap();
        seq += 1;
        for i in 0..500 {
            let key = format!("after:{i}");
            w.send(key_tag(0, "SET", &key, seq), &["SET", &key, "v"])
                .await
                .unwrap();
            seq += 1;
        }
        let port = server.port();
        let killer = tokio::task::spawn_blocking(move || {
            let mut conn = testkit::Conn::connect(port).unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            while conn.info_field("clients", "blocked_clients").as_deref() != Some("1") {
                assert!(Instant::now() < deadline, "the writer never blocked");
                std::thread::sleep(Duration::from_millis(10));
            }
            // SKIPME yes (the default): only the writer's connection goes.
            match conn.cmd(["CLIENT", "KILL", "TYPE", "normal"]) {
                Reply::Int(n) => assert_eq!(n, 1),
                r => panic!("{r:?}"),
            }
        });
        let flushed = w.flush().await;
        killer.await.unwrap();
        let e = flushed.unwrap_err();
        assert!(e.is_connection_error(), "{flavor}: {e}");
        assert!(
            e.to_string().contains("501 commands unanswered"),
            "{flavor}: {e}"
        );
        let (outcomes, end) = drain(&mut w).await;
        assert_eq!(end.unwrap_err().to_string(), e.to_string());
        assert_eq!(outcomes.len() as u64, seq, "every command has an outcome");
        assert!(outcomes[..1000].iter().all(Outcome::is_applied));
        for o in &outcomes[1000..] {
            assert!(
                matches!(
                    o,
                    Outcome::Lost {
                        maybe_applied: true,
                        ..
                    }
                ),
                "{flavor}: {o}"
            );
        }
        assert!(w
            .send(key_tag(0, "SET", "x", seq), &["SET", "x", "y"])
            .await
            .is_err());
        assert_eq!(server.connect().int(["DBSIZE"]), 1000, "{flavor}");
    }
}

#[tokio::test]
async fn authentication_errors_are_clear() {
    for flavor in Flavor::ALL {
        let server = Server::builder(flavor)
            .password("default-secret")
            .config("user", "migrator on >s3cret-pass ~* &* +@all")
            .start();
        let addr = server.addr();

        let ok = Target::connect(
            &addr,
            &TargetOptions::default().with_user("migrator", "s3cret-pass"),
        )
        .await
        .unwrap();
        assert_eq!(
            ok.version().to_string().split(' ').nth(1),
            Some(flavor.version())
        );
        let ok = Target::connect(
            &addr,
            &TargetOptions::default().with_password("default-secret"),
        )
        .await
        .unwrap();
        assert!(ok.proto_max_bulk_len_known());

        let e = Target::connect(
            &addr,
            &TargetOptions::default().with_user("migrator", "wrong-pass"),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, Error::AuthRefused { .. }), "{flavor}: {e}");
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!(
                "{addr} refused authentication as user 'migrator': WRONGPASS"
            )),
            "{flavor}: {shown}"
        );
        assert!(!shown.contains("wrong-pass"));
        assert!(!format!("{e:?}").contains("wrong-pass"));

        let e = Target::connect(&addr, &TargetOptions::default().with_password("nope"))
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::AuthRefused { user: None, .. }),
            "{flavor}: {e}"
        );

        let e = Target::connect(&addr, &TargetOptions::default())
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{addr} requires authentication (NOAUTH): give a password"),
            "{flavor}"
        );
    }
}

#[tokio::test]
async fn connection_refused_is_one_clear_line() {
    let port = testkit::free_port();
    let addr = format!("127.0.0.1:{port}");
    let e = Target::connect(&addr, &TargetOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Connect { .. }));
    assert!(
        e.to_string()
            .starts_with(&format!("cannot connect to {addr}: ")),
        "{e}"
    );
    assert!(e.to_string().to_lowercase().contains("refused"), "{e}");
}

#[tokio::test]
async fn forbidden_config_falls_back_and_big_values_are_split() {
    let server = Server::builder(Flavor::Redis7_0)
        .config("proto-max-bulk-len", "1mb")
        .config("user", "limited on >pw ~* &* +@all -config")
        .start();
    // CONFIG is forbidden for this user (as on managed services): the default is assumed.
    let limited = Target::connect(
        &server.addr(),
        &TargetOptions::default().with_user("limited", "pw"),
    )
    .await
    .unwrap();
    assert!(!limited.proto_max_bulk_len_known());
    assert_eq!(limited.proto_max_bulk_len(), 512 << 20);

    let mut target = Target::connect(&server.addr(), &TargetOptions::default())
        .await
        .unwrap();
    assert!(target.proto_max_bulk_len_known());
    assert_eq!(target.proto_max_bulk_len(), 1 << 20);
    assert!(target.keyspace().await.unwrap().dbs.is_empty());
    let e = target.db_size(100).await.unwrap_err();
    assert!(matches!(e, Error::SelectRefused { db: 100, .. }), "{e}");
    let opts = target.writer_options().with_max_in_flight_bytes(1 << 20);
    let mut w = target.into_writer(opts);

    // Too big for the target: refused before sending, the connection stays usable.
    let huge = Bytes::from(vec![b'h'; (1 << 20) + 1]);
    let e = w
        .send_bytes(
            key_tag(0, "SET", "huge", 0),
            &[
                Bytes::from_static(b"SET"),
                Bytes::from_static(b"huge"),
                huge.clone(),
            ],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::ArgumentTooLarge {
                len: 1_048_577,
                max: 1_048_576,
                ..
            }
        ),
        "{e}"
    );

    // Split into SET + APPENDs of at most 256 KiB, sent without copying. (A string
    // longer than proto-max-bulk-len cannot exist on the target at all: APPEND refuses it.)
    let big = huge.slice(..900_000);
    let mut seq = 0;
    for cmd in chunk_string(Bytes::from_static(b"huge"), big, 256 << 10) {
        w.send_bytes(
            Tag::new(Some(0), cmd[0].clone(), seq).with_key("huge"),
            &cmd,
        )
        .await
        .unwrap();
        seq += 1;
    }
    // A list of 3 MB in RPUSHes of at most 64 KiB.
    let items = (0..30_000u32).map(|i| Bytes::from(format!("{i:0>100}")));
    let prefix = vec![Bytes::from_static(b"RPUSH"), Bytes::from_static(b"list")];
    for cmd in chunk_items(prefix, items, 1, 64 << 10) {
        assert!(resp_codec::command_len(&cmd) <= 64 << 10);
        w.send_bytes(Tag::new(Some(0), "RPUSH", seq).with_key("list"), &cmd)
            .await
            .unwrap();
        seq += 1;
    }
    w.flush().await.unwrap();
    let (outcomes, end) = drain(&mut w).await;
    end.unwrap();
    assert_eq!(outcomes.len() as u64, seq);
    for o in &outcomes {
        assert!(o.is_applied(), "{o}");
    }
    let mut conn = server.connect();
    assert_eq!(conn.int(["STRLEN", "huge"]), 900_000);
    assert_eq!(conn.int(["LLEN", "list"]), 30_000);
    assert_eq!(
        conn.bulk(["LINDEX", "list", "29999"]).unwrap(),
        format!("{:0>100}", 29_999).into_bytes()
    );

    let mut check = Target::connect(&server.addr(), &TargetOptions::default())
        .await
        .unwrap();
    let ks = check.keyspace().await.unwrap();
    assert_eq!(ks.non_empty([0, 1]), vec![(0, 2)]);
    assert_eq!(check.db_size(0).await.unwrap(), 2);
}

/// `try_push_compact` queues without waiting until the writer needs I/O, then refuses with
/// nothing queued; the refused command goes through `send_compact`. Every command lands,
/// and a failed one comes back with its tag rebuilt (db, name, key, seq).
#[tokio::test]
async fn try_push_compact_never_waits_and_loses_nothing() {
    const N: u64 = 20_000;
    let server = Server::start(Flavor::Redis7_0);
    let mut w = writer(&server).await;
    let (mut applied, mut failed, mut refused) = (0u64, Vec::new(), 0u64);
    let mut collect = |w: &mut Writer<TcpStream>| {
        while let Some(r) = w.try_next_resolved() {
            match r {
                Resolved::Applied { commands, .. } => applied += commands,
                Resolved::One(o) => failed.push(o),
                other => panic!("{other:?}"),
            }
        }
    };
    for i in 0..N {
        let key = Bytes::from(format!("k:{i}"));
        // One command that cannot apply: INCR of a value that is not a number.
        let args: Vec<Bytes> = if i == 777 {
            vec!["INCR".into(), "text".into()]
        } else {
            vec!["SET".into(), key.clone(), Bytes::from(format!("v{i}"))]
        };
        let k = if i == 777 { Bytes::from("text") } else { key };
        if !w.try_push_compact(Some(0), i, Some(&k), &args).unwrap() {
            refused += 1;
            w.send_compact(Some(0), i, Some(&k), &args).await.unwrap();
        }
        collect(&mut w);
        if i == 0 {
            // The key the INCR fails on.
            w.send(key_tag(0, "SET", "text", u64::MAX), &["SET", "text", "abc"])
                .await
                .unwrap();
        }
    }
    w.flush().await.unwrap();
    collect(&mut w);
    assert!(
        refused > 0,
        "a window of {N} commands needs I/O at some point"
    );
    let failed: Vec<&Outcome> = failed.iter().filter(|o| !o.is_applied()).collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    let tag = failed[0].tag();
    assert_eq!((tag.seq, tag.key.as_deref()), (777, Some(&b"text"[..])));
    assert_eq!(applied, N - 1);
    // N - 1 keys set, plus "text".
    assert_eq!(server.connect().int(["DBSIZE"]), N as i64);
}
