//! Starts each server of the test matrix, writes a key, saves, and prints what it is.
//!
//! `cargo run -p testkit --example matrix` (after `scripts/install-test-servers.sh`).

use testkit::{Flavor, Server};

fn main() {
    println!(
        "{:<14} {:<8} {:<10} {:>10}",
        "server", "port", "rdb magic", "rdb bytes"
    );
    for flavor in Flavor::ALL {
        let server = Server::start(flavor);
        let mut conn = server.connect();
        for i in 0..1000 {
            conn.ok(["SET".to_string(), format!("key:{i}"), format!("value:{i}")]);
        }
        let rdb = server.save();
        println!(
            "{:<14} {:<8} {:<10} {:>10}",
            flavor.to_string(),
            server.port(),
            String::from_utf8_lossy(&rdb[..9]),
            rdb.len()
        );
    }
}
