//! Not a test: writes the raw replies that `migrate-core/src/cluster/captured.rs` holds
//! (`CLUSTER SHARDS`, `SLOTS`, `NODES`, `INFO cluster` of 3+3 clusters: settled, mid-move,
//! after a killed master) into `$CAPTURE_DIR` (default `/tmp/cap`):
//! `cargo test -p testkit --test capture_cluster_replies -- --ignored`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use testkit::{Cluster, Flavor};

fn raw(port: u16, args: &[&str]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut buf = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        buf.extend(format!("${}\r\n{}\r\n", a.len(), a).as_bytes());
    }
    s.write_all(&buf).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut out = Vec::new();
    let mut chunk = [0u8; 65536];
    while let Ok(n) = s.read(&mut chunk) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&chunk[..n]);
    }
    out
}

fn dir() -> String {
    let dir = std::env::var("CAPTURE_DIR").unwrap_or_else(|_| "/tmp/cap".into());
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn dump(flavor: Flavor, tag: &str, port: u16) {
    for (name, args) in [
        ("shards", &["CLUSTER", "SHARDS"][..]),
        ("slots", &["CLUSTER", "SLOTS"]),
        ("nodes", &["CLUSTER", "NODES"]),
        ("info", &["INFO", "cluster"]),
    ] {
        std::fs::write(
            format!("{}/{flavor}-{tag}-{name}.resp", dir()),
            raw(port, args),
        )
        .unwrap();
    }
}

#[test]
#[ignore = "writes reply captures, see the file's docs"]
fn capture() {
    for flavor in [Flavor::Redis6_2, Flavor::Redis7_0, Flavor::Valkey9_1] {
        let mut c = Cluster::start(flavor, 3, 1);
        let p = c.masters()[0].port();
        dump(flavor, "ok", p);
        let to = c.masters()[1].id().to_string();
        let mv = c.begin_move(0..=1, &to);
        dump(flavor, "migrating", p);
        mv.finish(&c);
        let p = c.masters()[1].port();
        c.kill_master(2);
        c.wait_ok();
        dump(flavor, "failed", p);
    }
    let s = testkit::Server::start(Flavor::Redis7_0);
    std::fs::write(
        format!("{}/standalone-info.resp", dir()),
        raw(s.port(), &["INFO", "cluster"]),
    )
    .unwrap();
}
