//! Shared helpers for the real-server tests.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use replication_client::{Command, Config, Event, Replica};
use testkit::{Conn, Reply};

/// Generates one `#[test]` per server flavour calling `$body(flavor)`.
#[macro_export]
macro_rules! matrix {
    ($name:ident) => {
        mod $name {
            use testkit::Flavor;
            #[test]
            fn redis_6_2() {
                super::$name(Flavor::Redis6_2)
            }
            #[test]
            fn redis_7_0() {
                super::$name(Flavor::Redis7_0)
            }
            #[test]
            fn valkey_8_1() {
                super::$name(Flavor::Valkey8_1)
            }
            #[test]
            fn valkey_9_1() {
                super::$name(Flavor::Valkey9_1)
            }
        }
    };
}

/// A two-worker runtime (the tests block on testkit connections in one of them).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Everything a replica hands out, recorded.
#[derive(Default, Debug)]
pub struct Log {
    /// The RDB payload of the last full sync.
    pub rdb: Vec<u8>,
    /// Completed RDB transfers.
    pub rdb_ends: usize,
    /// Every command, in order.
    pub commands: Vec<Command>,
    /// Reasons of the full syncs.
    pub full_resyncs: Vec<replication_client::FullResyncReason>,
    /// Partial resyncs.
    pub partial_resyncs: usize,
    /// Disconnections reported.
    pub disconnects: usize,
    /// Keys decoded from the RDB of the last full sync (decode mode).
    pub rdb_keys: usize,
    /// Header of the decoded RDB.
    pub rdb_header: Option<rdb_parser::Header>,
    /// Whether the decoder reported the RDB's end.
    pub rdb_eof: bool,
}

impl Log {
    /// Records one event.
    pub fn record(&mut self, ev: Event) {
        match ev {
            Event::FullResync { reason, .. } => {
                self.rdb.clear();
                self.rdb_keys = 0;
                self.rdb_header = None;
                self.rdb_eof = false;
                self.full_resyncs.push(reason);
            }
            Event::RdbChunk(b) => self.rdb.extend_from_slice(&b),
            Event::Rdb(batch) => {
                for ev in batch {
                    match ev {
                        rdb_parser::Event::Header(h) => self.rdb_header = Some(h),
                        rdb_parser::Event::KeyStart(_) => self.rdb_keys += 1,
                        rdb_parser::Event::Eof(_) => self.rdb_eof = true,
                        _ => {}
                    }
                }
            }
            Event::RdbEnd { len } => {
                if self.rdb_header.is_some() {
                    assert!(self.rdb_eof, "decoded RDB without EOF");
                } else {
                    assert_eq!(len as usize, self.rdb.len());
                }
                self.rdb_ends += 1;
            }
            Event::Command(c) => self.commands.push(c),
            Event::PartialResync { .. } => self.partial_resyncs += 1,
            Event::Disconnected { .. } => self.disconnects += 1,
            _ => {}
        }
    }

    /// Commands named `name`, as text args.
    pub fn named(&self, name: &str) -> Vec<Vec<String>> {
        self.commands
            .iter()
            .filter(|c| c.is(name))
            .map(|c| {
                c.args
                    .iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect()
            })
            .collect()
    }
}

/// Receives events into `log` until `done(log)` holds; panics after `secs` seconds.
pub async fn recv_until(
    replica: &mut Replica,
    log: &mut Log,
    secs: u64,
    mut done: impl FnMut(&Log) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !done(log) {
        let ev = tokio::time::timeout_at(deadline, replica.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out; got so far: {log:?}"))
            .expect("replica ended")
            .expect("replica failed");
        log.record(ev);
    }
}

/// Waits until the replica's position equals the server's `master_repl_offset` (the server
/// may PING meanwhile: retried), receiving into `log`.
pub async fn assert_caught_up(replica: &mut Replica, log: &mut Log, conn: &mut Conn) {
    for _ in 0..20 {
        let master: u64 = conn
            .info_field("replication", "master_repl_offset")
            .unwrap()
            .parse()
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while replica.position().map_or(0, |p| p.offset) < master {
            match tokio::time::timeout_at(deadline, replica.recv()).await {
                Ok(Some(Ok(ev))) => log.record(ev),
                Ok(other) => panic!("replica ended: {other:?}"),
                Err(_) => break,
            }
        }
        let ours = replica.position().unwrap().offset;
        let again: u64 = conn
            .info_field("replication", "master_repl_offset")
            .unwrap()
            .parse()
            .unwrap();
        if ours == master && again == master {
            assert_eq!(replica.lag().bytes(), 0);
            return;
        }
        assert!(
            ours <= again,
            "our offset {ours} is past the server's {again}"
        );
    }
    panic!("never caught up with master_repl_offset");
}

/// Fills three databases with keys of every type and common encodings; returns how many.
pub fn fill(conn: &mut Conn) -> usize {
    let mut keys = 0;
    for db in ["0", "3", "9"] {
        conn.ok(["SELECT", db]);
        let mut cmds: Vec<Vec<String>> = Vec::new();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        for i in 0..150 {
            cmds.push(s(&["SET", &format!("str:int:{i}"), &i.to_string()]));
            cmds.push(s(&["SET", &format!("str:txt:{i}"), &"v".repeat(i % 70)]));
        }
        cmds.push(s(&["SET", "str:big", &"x".repeat(20_000)]));
        keys += 301;
        for i in 0..6 {
            let n = if i % 2 == 0 { 5 } else { 400 };
            let mut l = s(&["RPUSH", &format!("list:{i}")]);
            let mut h = s(&["HSET", &format!("hash:{i}")]);
            let mut st = s(&["SADD", &format!("set:int:{i}")]);
            let mut ss = s(&["SADD", &format!("set:str:{i}")]);
            let mut z = s(&["ZADD", &format!("zset:{i}")]);
            for j in 0..n {
                l.push(format!("e{j}"));
                h.push(format!("f{j}"));
                h.push(format!("{j}"));
                st.push(format!("{}", j * 3 - 7));
                ss.push(format!("m{j}"));
                z.push(format!("{}.5", j));
                z.push(format!("z{j}"));
            }
            cmds.extend([l, h, st, ss, z]);
            keys += 5;
        }
        for i in 0..2 {
            let k = format!("stream:{i}");
            for j in 0..30 {
                cmds.push(s(&["XADD", &k, "*", "n", &j.to_string()]));
            }
            cmds.push(s(&["XGROUP", "CREATE", &k, "g", "0"]));
            keys += 1;
        }
        for i in 0..20 {
            cmds.push(s(&["SET", &format!("ttl:{i}"), "v", "EX", "100000"]));
            keys += 1;
        }
        for c in &cmds {
            conn.send(c).unwrap();
        }
        for c in &cmds {
            if let Reply::Error(e) = conn.read_reply().unwrap() {
                panic!("{c:?}: {e}");
            }
        }
    }
    conn.ok(["SELECT", "0"]);
    keys
}

/// The default configuration for `url`.
pub fn config(url: &str) -> Config {
    Config::new(url).unwrap()
}

/// `CLIENT KILL TYPE replica` (falls back to `slave` on servers without the alias).
pub fn kill_replicas(conn: &mut Conn) -> i64 {
    match conn.cmd(["CLIENT", "KILL", "TYPE", "replica"]) {
        Reply::Int(n) => n,
        _ => conn.int(["CLIENT", "KILL", "TYPE", "slave"]),
    }
}

/// A numeric field of `INFO stats`.
pub fn stat(conn: &mut Conn, field: &str) -> u64 {
    conn.info_field("stats", field).unwrap().parse().unwrap()
}
