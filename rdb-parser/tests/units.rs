//! Small, server-free checks of the building blocks.

use rdb_parser::dump::crc64;
use rdb_parser::encoding::lzf;
use rdb_parser::{decode_all, module_type, Event, Options, Str};

#[test]
fn crc_fast_crc64_redis_check_value() {
    // CRC-64/Jones as Redis uses it ("CRC-64/REDIS"): reflected, init 0, xorout 0.
    assert_eq!(crc64(b"123456789"), 0xe9c6d914c4b8d9ca);
}

#[test]
fn lzf_roundtrip_and_errors() {
    // "aaaaaaaaaa": literal 'a', then a back-reference of length 9 at distance 1.
    let compressed = [0x00, b'a', 0xe0, 0x00, 0x00];
    assert_eq!(lzf::decompress(&compressed, 10).unwrap(), b"aaaaaaaaaa");
    assert!(lzf::decompress(&compressed, 11).is_err());
    assert!(lzf::decompress(&compressed, 9).is_err());
    // Back-reference before the start.
    assert!(lzf::decompress(&[0x20, 0x05], 3).is_err());
    // Claimed raw length far beyond what the input can produce: refused before allocating.
    assert!(lzf::decompress(&[0x00, b'a'], usize::MAX / 2).is_err());
}

#[test]
fn module_id_decodes_name_and_encver() {
    // "ReJSON-RL" encver 3.
    let cs = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut id: u64 = 0;
    for c in b"ReJSON-RL" {
        id = (id << 6) | cs.iter().position(|x| x == c).unwrap() as u64;
    }
    id = (id << 10) | 3;
    let t = module_type(id);
    assert_eq!(t.name, "ReJSON-RL");
    assert_eq!(t.encver, 3);
}

#[test]
fn str_text_of_integers() {
    assert_eq!(
        Str::Int(-9223372036854775808).to_vec(),
        b"-9223372036854775808"
    );
    assert_eq!(Str::Int(0).len(), 1);
    assert_eq!(Str::Int(-42).with_bytes(|b| b.to_vec()), b"-42");
}

#[test]
fn minimal_files() {
    let ev = decode_all(b"REDIS0003\xfe\x00\x00\x01k\x01v\xff", Options::default()).unwrap();
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::String(s) if *s == Str::from("v"))));
    assert!(decode_all(b"RUBIS0003\xff", Options::default()).is_err());
    assert!(decode_all(b"REDIS0003", Options::default()).is_err());
}
