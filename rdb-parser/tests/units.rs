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

fn with_crc(mut body: Vec<u8>) -> Vec<u8> {
    let c = crc64(&body);
    body.extend_from_slice(&c.to_le_bytes());
    body
}

#[test]
fn redis_key_meta_and_valkey_slot_import_share_opcode_243() {
    // Redis 8.6: KEY_META with one class (spec, UINT 5, EOF) before a string key.
    let mut f = b"REDIS0013\xf3\x01\x01\x02\x03\x04\x02\x05\x00\x00\x01k\x01v\xff".to_vec();
    f = with_crc(f);
    let ev = decode_all(&f, Options::default()).unwrap();
    let k = ev
        .iter()
        .find_map(|e| match e {
            Event::KeyStart(k) => Some(k.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        k.meta,
        vec![rdb_parser::KeyMeta::Class {
            spec: u32::from_le_bytes([1, 2, 3, 4]),
            raw: bytes::Bytes::from_static(b"\x02\x05\x00")
        }]
    );
    // Valkey 9: SLOT_IMPORT with a job name and two ranges.
    let mut f = b"VALKEY080\xf3\x03job\x02\x00\x40\x64\x41\x00\x3f\xff".to_vec();
    f = with_crc(f);
    let ev = decode_all(&f, Options::default()).unwrap();
    // Ranges: 0-100 (6-bit 0, 14-bit 0x0064) and 0x100-0x3f.
    assert!(ev.contains(&Event::SlotImport {
        job_name: bytes::Bytes::from_static(b"job"),
        ranges: vec![(0, 100), (256, 0x3f)],
    }));
}

#[test]
fn unknown_types_name_byte_key_and_offset() {
    // Dragonfly's type 30 after a key-less position: error names the byte and offset.
    let f = b"REDIS0009\xfe\x00\x1e\x03key\x00".to_vec();
    let e = decode_all(&f, Options::default()).unwrap_err();
    match e {
        rdb_parser::Error::UnknownType {
            type_byte: 30,
            offset: 11,
            ..
        } => {}
        e => panic!("{e:?}"),
    }
    // A Redis-only type in a Valkey stream.
    let f = b"VALKEY080\x18\x01k".to_vec();
    assert!(matches!(
        decode_all(&f, Options::default()),
        Err(rdb_parser::Error::UnknownType { type_byte: 24, .. })
    ));
}

#[test]
fn limits_are_errors_not_allocations() {
    // A string claiming 2^62 bytes.
    let f = b"REDIS0009\xfa\x81\x40\x00\x00\x00\x00\x00\x00\x00".to_vec();
    let e = decode_all(&f, Options::default()).unwrap_err();
    assert!(
        matches!(e, rdb_parser::Error::LimitExceeded { .. }),
        "{e:?}"
    );
    // A list claiming 2^62 elements, then EOF of input: truncated, nothing allocated.
    let f = b"REDIS0009\x01\x01k\x81\x40\x00\x00\x00\x00\x00\x00\x00".to_vec();
    let e = decode_all(&f, Options::default()).unwrap_err();
    assert!(
        matches!(e, rdb_parser::Error::Truncated { key: Some(_), .. }),
        "{e:?}"
    );
}

#[test]
fn codec_contract_and_trailing_bytes() {
    use tokio_util::codec::Decoder;
    let mut rdb = with_crc(b"REDIS0011\xfe\x00\x00\x01k\x01v\xff".to_vec());
    let rdb_len = rdb.len();
    rdb.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    let mut codec = rdb_parser::RdbCodec::new(Options::default());
    let mut buf = bytes::BytesMut::new();
    let mut events = Vec::new();
    for b in &rdb {
        buf.extend_from_slice(&[*b]);
        while let Some(ev) = codec.decode(&mut buf).unwrap() {
            events.push(ev);
        }
    }
    assert!(codec.is_done());
    assert!(matches!(events.last(), Some(Event::Eof(e)) if e.len == rdb_len as u64));
    // The command stream after the RDB is left in the buffer.
    assert_eq!(&buf[..], b"*1\r\n$4\r\nPING\r\n");
    assert!(codec.decode_eof(&mut buf).unwrap().is_none());

    // Truncated: decode_eof reports it.
    let mut codec = rdb_parser::RdbCodec::new(Options::default());
    let mut buf = bytes::BytesMut::from(&rdb[..rdb_len - 3]);
    while codec.decode(&mut buf).unwrap().is_some() {}
    assert!(matches!(
        codec.decode_eof(&mut buf),
        Err(rdb_parser::Error::Truncated { .. })
    ));
}

#[test]
fn reader_adapter_keeps_trailing_bytes() {
    let mut rdb = with_crc(b"REDIS0011\xfe\x00\x00\x01k\x01v\xff".to_vec());
    rdb.extend_from_slice(b"tail");
    let mut r = rdb_parser::RdbReader::new(&rdb[..], Options::default());
    let events: Vec<Event> = r.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(events.len(), 6);
    assert_eq!(r.remaining(), b"tail");
    // Truncated input is an error item, then the iterator ends.
    let mut r = rdb_parser::RdbReader::new(&rdb[..20], Options::default());
    assert!(r.by_ref().any(|e| e.is_err()));
    assert!(r.next().is_none());
}
