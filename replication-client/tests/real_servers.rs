//! The replica against the four real servers (testkit): full syncs (diskless and disk-based),
//! the stream and its offsets, partial resync after a killed link, backlog overflow, ACL
//! users.

mod common;

use std::time::Duration;

use common::*;
use replication_client::{Backoff, Error, FullResyncReason, RdbMode, RdbSpool, Replica};
use testkit::{Flavor, Server};

fn full_sync(flavor: Flavor, diskless: bool, mode: RdbMode) {
    let server = Server::builder(flavor)
        .config("repl-diskless-sync", if diskless { "yes" } else { "no" })
        .config("repl-diskless-sync-delay", "0")
        .start();
    let mut conn = server.connect();
    let keys = fill(&mut conn);
    runtime().block_on(async {
        let raw = matches!(mode, RdbMode::Raw);
        let cfg = config(&server.url()).rdb_mode(mode);
        let mut replica = Replica::connect(cfg).await.unwrap();
        // Writes while the full sync runs: they come after the RDB, in the stream.
        conn.ok(["SELECT", "0"]);
        for i in 0..50 {
            conn.ok(["SET", &format!("during:{i}"), &i.to_string()]);
        }
        let mut log = Log::default();
        recv_until(&mut replica, &mut log, 30, |l| l.named("SET").len() >= 50).await;
        assert_eq!(log.full_resyncs, vec![FullResyncReason::Initial]);
        assert_eq!(log.rdb_ends, 1);
        // Each server sends its native format (Valkey 9: `VALKEY080`, for the version we
        // announce by default).
        let magic: &[u8] = flavor.rdb_magic();
        if raw {
            assert_eq!(&log.rdb[..9], magic);
            assert_eq!(log.rdb[log.rdb.len() - 9], 0xff, "RDB ends with EOF + CRC");
            assert!(
                log.rdb.len() > 100_000,
                "RDB of {keys} keys: {}",
                log.rdb.len()
            );
        } else {
            let h = log.rdb_header.expect("decoded header");
            let family = if h.family == rdb_parser::Family::Valkey {
                "VALKEY"
            } else {
                "REDIS0"
            };
            assert_eq!(format!("{family}{:03}", h.version).as_bytes(), magic);
            assert_eq!(log.rdb_keys, keys, "every key decoded");
        }

        // Writes after the sync, in other databases and in a transaction.
        conn.ok(["SELECT", "2"]);
        for i in 0..20 {
            conn.int(["RPUSH", "after", &i.to_string()]);
        }
        conn.ok(["SELECT", "7"]);
        conn.ok(["MULTI"]);
        conn.cmd(["SET", "tx:a", "1"]);
        conn.cmd(["INCR", "tx:n"]);
        conn.must(["EXEC"]);
        recv_until(&mut replica, &mut log, 30, |l| !l.named("EXEC").is_empty()).await;

        let sets = log.named("SET");
        let during: Vec<_> = sets
            .iter()
            .filter(|a| a[1].starts_with("during:"))
            .collect();
        for (i, a) in during.iter().enumerate() {
            assert_eq!(a[1], format!("during:{i}"));
        }
        let rpush: Vec<_> = log
            .commands
            .iter()
            .filter(|c| c.is("RPUSH"))
            .map(|c| (c.db, String::from_utf8_lossy(&c.args[2]).into_owned()))
            .collect();
        let want: Vec<_> = (0..20).map(|i| (2, i.to_string())).collect();
        assert_eq!(rpush, want);
        let tail: Vec<_> = log.commands.iter().rev().take(4).rev().collect();
        let names: Vec<_> = tail
            .iter()
            .map(|c| String::from_utf8_lossy(c.name()).to_uppercase())
            .collect();
        assert_eq!(names, ["MULTI", "SET", "INCR", "EXEC"]);
        // Valkey sends MULTI before the SELECT: only the writes' db matters.
        assert_eq!((tail[1].db, tail[2].db), (7, 7));
        // Offsets: strictly increasing, commands never overlap.
        for w in log.commands.windows(2) {
            assert!(w[1].end_offset - w[1].wire_len >= w[0].end_offset, "{w:?}");
        }
        assert_caught_up(&mut replica, &mut log, &mut conn).await;
    });
}

fn full_sync_diskless(flavor: Flavor) {
    full_sync(flavor, true, RdbMode::Decode)
}
matrix!(full_sync_diskless);

fn full_sync_disk(flavor: Flavor) {
    full_sync(flavor, false, RdbMode::Raw)
}
matrix!(full_sync_disk);

/// Killing the link mid-stream: `PSYNC` resumes, every marker arrives exactly once.
fn partial_resync_after_kill(flavor: Flavor) {
    let server = Server::builder(flavor)
        .config("repl-diskless-sync", "yes")
        .config("repl-diskless-sync-delay", "0")
        .start();
    let mut conn = server.connect();
    runtime().block_on(async {
        let cfg = config(&server.url()).backoff(Backoff {
            initial: Duration::from_millis(50),
            ..Backoff::default()
        });
        let mut replica = Replica::connect(cfg).await.unwrap();
        let mut log = Log::default();
        recv_until(&mut replica, &mut log, 30, |l| l.rdb_ends == 1).await;
        let partial_before = stat(&mut conn, "sync_partial_ok");
        let n = 90;
        conn.ok(["SELECT", "4"]);
        for i in 0..n {
            if i == 30 || i == 60 {
                // Let some markers reach the replica first, then cut the link.
                let want = i;
                recv_until(&mut replica, &mut log, 30, |l| {
                    l.named("INCR").len() >= want
                })
                .await;
                assert_eq!(kill_replicas(&mut conn), 1);
            }
            conn.int(["INCR", "marker"]);
            conn.int(["RPUSH", "markers", &i.to_string()]);
        }
        recv_until(&mut replica, &mut log, 60, |l| l.named("RPUSH").len() >= n).await;
        assert_caught_up(&mut replica, &mut log, &mut conn).await;
        let pushed: Vec<String> = log
            .named("RPUSH")
            .into_iter()
            .map(|a| a[2].clone())
            .collect();
        let want: Vec<String> = (0..n).map(|i| i.to_string()).collect();
        assert_eq!(pushed, want, "markers exactly once, in order");
        assert_eq!(log.named("INCR").len(), n);
        assert!(log
            .commands
            .iter()
            .filter(|c| c.is("INCR"))
            .all(|c| c.db == 4));
        assert_eq!(log.partial_resyncs, 2);
        assert_eq!(log.disconnects, 2);
        assert_eq!(log.full_resyncs.len(), 1);
        assert_eq!(stat(&mut conn, "sync_partial_ok"), partial_before + 2);
    });
}
matrix!(partial_resync_after_kill);

/// The link is cut and more than the backlog is written before the replica comes back:
/// the server refuses the partial resync and a new full sync is reported as such.
fn backlog_overflow_full_resync(flavor: Flavor) {
    let server = Server::builder(flavor)
        .config("repl-backlog-size", "16384")
        .config("repl-diskless-sync", "yes")
        .config("repl-diskless-sync-delay", "0")
        .start();
    let mut conn = server.connect();
    runtime().block_on(async {
        let cfg = config(&server.url()).backoff(Backoff {
            initial: Duration::from_millis(1500),
            jitter: 0.0,
            ..Backoff::default()
        });
        let mut replica = Replica::connect(cfg).await.unwrap();
        let mut log = Log::default();
        recv_until(&mut replica, &mut log, 30, |l| l.rdb_ends == 1).await;
        conn.ok(["SET", "before", "1"]);
        recv_until(&mut replica, &mut log, 30, |l| !l.named("SET").is_empty()).await;
        let resume = replica.position().unwrap();
        assert_eq!(kill_replicas(&mut conn), 1);
        let big = "x".repeat(40_000);
        for i in 0..3 {
            conn.ok(["SET", &format!("big:{i}"), &big]);
        }
        recv_until(&mut replica, &mut log, 30, |l| l.rdb_ends == 2).await;
        assert_eq!(log.disconnects, 1);
        assert_eq!(log.full_resyncs.len(), 2);
        match &log.full_resyncs[1] {
            FullResyncReason::PartialRefused { requested } => {
                assert_eq!(requested.offset, resume.offset);
                assert_eq!(requested.replid, resume.replid);
            }
            other => panic!("expected PartialRefused, got {other:?}"),
        }
        // The new RDB holds the big values; the stream continues after it.
        conn.ok(["SET", "after", "1"]);
        recv_until(&mut replica, &mut log, 30, |l| {
            l.named("SET").iter().any(|a| a[1] == "after")
        })
        .await;
        assert_caught_up(&mut replica, &mut log, &mut conn).await;
    });
}
matrix!(backlog_overflow_full_resync);

/// An ACL user with a password; a wrong password is a clear authentication error.
fn acl_user(flavor: Flavor) {
    let server = Server::builder(flavor)
        .config("user", "repl on >pw ~* &* +@all")
        .config("user", "nosync on >pw ~* &* +@all -psync -sync")
        .config("repl-diskless-sync-delay", "0")
        .start();
    let url = format!("redis://repl:pw@127.0.0.1:{}", server.port());
    runtime().block_on(async {
        let mut replica = Replica::connect(config(&url)).await.unwrap();
        let mut log = Log::default();
        recv_until(&mut replica, &mut log, 30, |l| l.rdb_ends == 1).await;
        let bad = format!("redis://repl:wrong@127.0.0.1:{}", server.port());
        let e = Replica::connect(config(&bad)).await.unwrap_err();
        assert!(matches!(e, Error::Auth { .. }), "{e:?}");
        assert!(!e.to_string().contains("wrong"));
        // A user without the replication commands gets a clear permission error.
        let denied = format!("redis://nosync:pw@127.0.0.1:{}", server.port());
        let e = Replica::connect(config(&denied)).await.unwrap_err();
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
        assert!(!e.is_retryable());
    });
}
matrix!(acl_user);

/// Without a `REPLCONF version`, Valkey 9 sends RDB 11; it still decodes.
#[test]
fn valkey_9_rdb_11_without_replconf_version() {
    let server = Server::builder(Flavor::Valkey9_1)
        .config("repl-diskless-sync", "yes")
        .config("repl-diskless-sync-delay", "0")
        .start();
    let mut conn = server.connect();
    let keys = fill(&mut conn);
    runtime().block_on(async {
        let cfg = config(&server.url()).no_replconf_version();
        let mut replica = Replica::connect(cfg).await.unwrap();
        let mut log = Log::default();
        recv_until(&mut replica, &mut log, 30, |l| l.rdb_ends == 1).await;
        let h = log.rdb_header.expect("decoded header");
        assert_eq!((h.family, h.version), (rdb_parser::Family::Redis, 11));
        assert_eq!(log.rdb_keys, keys);
    });
}

/// A Valkey 9 source holding hash field TTLs, asked for RDB 11 (no version announced):
/// its snapshot fails every time. The replica stops after the configured number of full
/// syncs with one error that names the cause, instead of retrying forever.
#[test]
fn failing_full_syncs_end_in_one_clear_error() {
    let server = Server::builder(Flavor::Valkey9_1)
        .config("repl-diskless-sync", "yes")
        .config("repl-diskless-sync-delay", "0")
        .start();
    let mut conn = server.connect();
    conn.int(["HSET", "h", "a", "1", "b", "2"]);
    conn.must(["HPEXPIRE", "h", "86400000", "FIELDS", "1", "a"]);
    runtime().block_on(async {
        let cfg = config(&server.url())
            .no_replconf_version()
            .max_full_sync_attempts(3);
        let mut replica = Replica::connect(cfg).await.unwrap();
        let mut log = Log::default();
        let err = loop {
            match tokio::time::timeout(Duration::from_secs(60), replica.recv())
                .await
                .expect("the replica must give up, not retry forever")
            {
                Some(Ok(ev)) => log.record(ev),
                Some(Err(e)) => break e,
                None => panic!("channel closed without an error"),
            }
        };
        let Error::FullSyncFailing {
            attempts,
            diagnosis,
            ..
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!(*attempts, 3, "{err}");
        assert_eq!(log.full_resyncs.len(), 3, "{log:?}");
        assert_eq!(log.disconnects, 2, "{log:?}");
        assert!(diagnosis.contains("Valkey 9+"), "{err}");
        assert!(diagnosis.contains("source's log"), "{err}");
        assert!(replica.recv().await.is_none());
        let sync_full = conn.info_field("stats", "sync_full");
        assert_eq!(sync_full.as_deref(), Some("3"), "{err}");
    });
    // The same source with the default (announced) version syncs at once.
    runtime().block_on(async {
        let mut replica = Replica::connect(config(&server.url())).await.unwrap();
        let mut log = Log::default();
        recv_until(&mut replica, &mut log, 30, |l| l.rdb_ends == 1).await;
        assert_eq!(log.rdb_keys, 1);
    });
}

/// Spooling: the RDB goes to a temp file at network speed, then to a consumer that reads
/// through a one-slot channel; the stream follows with nothing lost.
#[test]
fn spooled_rdb_to_a_slow_consumer() {
    let server = Server::builder(Flavor::Redis7_0)
        .config("repl-diskless-sync", "yes")
        .config("repl-diskless-sync-delay", "0")
        .start();
    let mut conn = server.connect();
    let keys = fill(&mut conn);
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let cfg = config(&server.url())
            .spool(RdbSpool::ToDir(dir.path().to_path_buf()))
            .channel_capacity(1);
        let mut replica = Replica::connect(cfg).await.unwrap();
        for i in 0..100 {
            conn.int(["RPUSH", "spooled", &i.to_string()]);
        }
        let mut log = Log::default();
        recv_until(&mut replica, &mut log, 60, |l| {
            l.named("RPUSH").len() == 100
        })
        .await;
        assert_eq!(log.rdb_keys, keys);
        assert_caught_up(&mut replica, &mut log, &mut conn).await;
    });
}

/// A new `Replica` (after a restart) resumes from a saved position with a partial resync,
/// in the saved db, with nothing missed or repeated.
fn resume_from_saved_position(flavor: Flavor) {
    let server = Server::builder(flavor)
        .config("repl-diskless-sync", "yes")
        .config("repl-diskless-sync-delay", "0")
        .start();
    let mut conn = server.connect();
    runtime().block_on(async {
        let mut replica = Replica::connect(config(&server.url())).await.unwrap();
        let mut log = Log::default();
        conn.ok(["SELECT", "5"]);
        conn.int(["RPUSH", "saved", "0"]);
        recv_until(&mut replica, &mut log, 30, |l| !l.named("RPUSH").is_empty()).await;
        let saved = replica.position().unwrap();
        assert_eq!(saved.db, 5);
        drop(replica);
        // Written while no replica runs; same connection, so no new SELECT is sent.
        for i in 1..10 {
            conn.int(["RPUSH", "saved", &i.to_string()]);
        }
        let mut replica = Replica::connect(config(&server.url()).resume_from(saved))
            .await
            .unwrap();
        let mut log = Log::default();
        recv_until(&mut replica, &mut log, 30, |l| l.named("RPUSH").len() == 9).await;
        assert_eq!(log.partial_resyncs, 1);
        assert!(log.full_resyncs.is_empty());
        let got: Vec<_> = log
            .commands
            .iter()
            .filter(|c| c.is("RPUSH"))
            .map(|c| (c.db, String::from_utf8_lossy(&c.args[2]).into_owned()))
            .collect();
        let want: Vec<_> = (1..10).map(|i| (5, i.to_string())).collect();
        assert_eq!(got, want);
        assert_caught_up(&mut replica, &mut log, &mut conn).await;
    });
}
matrix!(resume_from_saved_position);
