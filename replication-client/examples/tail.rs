//! Prints what a server replicates, like `redis-cli --replica`:
//!
//! ```sh
//! cargo run -p replication-client --example tail -- redis://127.0.0.1:6379
//! cargo run -p replication-client --example tail -- rediss://user:pass@host:6380 \
//!     --ca ca.crt [--cert client.crt --key client.key] [--insecure] [--replconf-version 9.1.0]
//! ```
//!
//! The RDB of the full sync is decoded and its keys counted, not printed; every command is printed as a line of
//! quoted arguments with its database and end offset. Disconnects are reported and resumed.

use std::process::ExitCode;

use replication_client::{Config, Event, Replica, TlsOptions};

fn usage() -> ExitCode {
    eprintln!(
        "usage: tail <redis[s]://[user:pass@]host:port> [--ca FILE] [--cert FILE --key FILE] \
         [--sni NAME] [--insecure] [--replconf-version X.Y.Z]"
    );
    ExitCode::from(2)
}

fn quote(arg: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in arg {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b' '..=b'~' => s.push(b as char),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push('"');
    s
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(url) = args.next() else {
        return usage();
    };
    let mut config = match Config::new(&url) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut tls = TlsOptions::new();
    let (mut cert, mut key) = (None, None);
    while let Some(flag) = args.next() {
        let mut value = || args.next();
        match flag.as_str() {
            "--ca" => match value() {
                Some(v) => tls = tls.ca_file(v),
                None => return usage(),
            },
            "--cert" => cert = value(),
            "--key" => key = value(),
            "--sni" => match value() {
                Some(v) => tls = tls.server_name(v),
                None => return usage(),
            },
            "--insecure" => tls = tls.insecure_skip_verify(true),
            "--replconf-version" => match value() {
                Some(v) => config = config.replconf_version(v),
                None => return usage(),
            },
            _ => return usage(),
        }
    }
    match (cert, key) {
        (Some(c), Some(k)) => tls = tls.client_cert(c, k),
        (None, None) => {}
        _ => return usage(),
    }
    let config = config.tls(tls);
    eprintln!("connecting to {}", config.url());
    let mut replica = match Replica::connect(config).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut rdb_keys = 0u64;
    while let Some(event) = replica.recv().await {
        match event {
            Ok(Event::FullResync {
                replid,
                offset,
                reason,
            }) => eprintln!("full sync from {replid} offset {offset} ({reason:?})"),
            Ok(Event::PartialResync { replid, offset, .. }) => {
                eprintln!("partial resync: {replid} continues after offset {offset}")
            }
            Ok(Event::RdbStart(t)) => {
                rdb_keys = 0;
                eprintln!("RDB transfer: {t:?}");
            }
            Ok(Event::Rdb(batch)) => {
                for ev in batch {
                    match ev {
                        rdb_parser::Event::Header(h) => eprintln!("RDB {h:?}"),
                        rdb_parser::Event::KeyStart(_) => rdb_keys += 1,
                        _ => {}
                    }
                }
            }
            Ok(Event::RdbEnd { len }) => {
                eprintln!("RDB done: {len} bytes, {rdb_keys} keys; streaming")
            }
            Ok(Event::Command(c)) => {
                let line: Vec<String> = c.args.iter().map(|a| quote(a)).collect();
                println!("db{} @{} {}", c.db, c.end_offset, line.join(" "));
            }
            Ok(Event::Disconnected {
                error, retry_in, ..
            }) => eprintln!("disconnected: {error}; reconnecting in {retry_in:?}"),
            Ok(other) => eprintln!("{other:?}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
