//! `examples/rdb_report.rs`, built and run on a real server's RDB.

#[path = "../examples/rdb_report.rs"]
#[allow(dead_code, unreachable_pub)]
mod rdb_report;

use testkit::{Dataset, Flavor, Server};

#[test]
fn rdb_report_lists_types_and_the_biggest_keys() {
    let server = Server::start(Flavor::Redis7_0);
    Dataset::small().fill(&server);
    let rdb = server.save();
    let text = rdb_report::report(&rdb[..], 3).unwrap();
    assert!(text.starts_with("600 keys, "), "{text}");
    for kind in ["string", "list", "set", "zset", "hash", "stream"] {
        assert!(text.lines().any(|l| l.starts_with(kind)), "{kind}: {text}");
    }
    assert_eq!(
        text.lines().filter(|l| l.starts_with('#')).count(),
        3,
        "{text}"
    );
    assert!(rdb_report::report(&b"REDIS0009\xfe"[..], 3).is_err());
}
