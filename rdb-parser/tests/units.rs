//! Small, server-free checks of the building blocks.

use rdb_parser::dump::crc64;
use rdb_parser::{decode_all, module_type, Event, Options, Str};

#[test]
fn crc_fast_crc64_redis_check_value() {
    // CRC-64/Jones as Redis uses it ("CRC-64/REDIS"): reflected, init 0, xorout 0.
    assert_eq!(crc64(b"123456789"), 0xe9c6d914c4b8d9ca);
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
    match &e {
        rdb_parser::Error::UnknownType {
            type_byte: 30,
            offset: 11,
            key: Some(k),
        } => {
            assert_eq!(k.0, "key");
            assert!(
                e.to_string()
                    .contains("type/opcode 30 at offset 11 in key \"key\""),
                "{e}"
            );
        }
        e => panic!("{e:?}"),
    }
    // Type 22 means nothing in a Redis RDB 11 file (HASH_METADATA_PRE_GA came with RDB 12).
    let f = b"REDIS0011\x16\x01k".to_vec();
    assert!(matches!(
        decode_all(&f, Options::default()),
        Err(rdb_parser::Error::UnknownType { type_byte: 22, .. })
    ));
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

#[cfg(feature = "codec")]
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

/// An RDB 11 file with one key of `type_byte` whose value bytes are `value`.
fn one_key_file(type_byte: u8, value: &[u8]) -> Vec<u8> {
    let mut f = b"REDIS0011\xfe\x00".to_vec();
    f.push(type_byte);
    f.extend_from_slice(b"\x01k");
    f.extend_from_slice(value);
    f.push(0xff);
    with_crc(f)
}

/// A 32-bit RDB length.
fn len32(n: u32) -> Vec<u8> {
    let mut v = vec![0x80];
    v.extend_from_slice(&n.to_be_bytes());
    v
}

#[test]
fn huge_strings_stream_in_pieces_with_bounded_buffering() {
    let n = 10 << 20;
    let mut value = len32(n as u32);
    value.extend((0..n).map(|i| (i % 251) as u8));
    let file = one_key_file(0, &value);
    let opts = Options::default().string_piece(64 << 10);
    let mut dec = rdb_parser::RdbDecoder::new(opts);
    let mut buf = bytes::BytesMut::new();
    let (mut pieces, mut total, mut max_buf) = (0, 0, 0);
    for chunk in file.chunks(4096) {
        buf.extend_from_slice(chunk);
        max_buf = max_buf.max(buf.len());
        while let Some(ev) = dec.decode(&mut buf).unwrap() {
            if let Event::String(Str::Bytes(b)) = ev {
                assert!(b.len() <= 64 << 10);
                pieces += 1;
                total += b.len();
            }
        }
    }
    dec.finish().unwrap();
    assert_eq!(total, n);
    assert_eq!(pieces, n / (64 << 10));
    // Never more than one piece plus one read buffered.
    assert!(max_buf <= (64 << 10) + 4096, "{max_buf}");
}

#[test]
fn big_collections_come_in_bounded_chunks() {
    // A plain list (type 1) of 100 000 elements.
    let n = 100_000u32;
    let mut value = len32(n);
    for i in 0..n {
        let s = format!("element-{i}");
        value.push(s.len() as u8);
        value.extend_from_slice(s.as_bytes());
    }
    let file = one_key_file(1, &value);
    let opts = Options::default().max_chunk_items(500);
    let mut count = 0;
    let mut chunks = 0;
    for ev in rdb_parser::RdbReader::new(&file[..], opts) {
        if let Event::ListItems(items) = ev.unwrap() {
            assert!(items.len() <= 500);
            assert_eq!(items[0].to_vec(), format!("element-{count}").into_bytes());
            count += items.len();
            chunks += 1;
        }
    }
    assert_eq!(count, n as usize);
    assert_eq!(chunks, 200);
}

#[test]
fn raw_values_rebuild_the_value_exactly() {
    // A hash table hash with two fields; raw chunks concatenate to type byte + value.
    let value = b"\x02\x01a\x011\x01b\xc0\x02".to_vec();
    let file = one_key_file(4, &value);
    let events = decode_all(&file, Options::default().raw_values(true)).unwrap();
    let raw: Vec<u8> = events
        .iter()
        .filter_map(|e| match e {
            Event::RawValue(b) => Some(b.to_vec()),
            _ => None,
        })
        .flatten()
        .collect();
    let mut want = vec![4u8];
    want.extend_from_slice(&value);
    assert_eq!(raw, want);
    // And a payload built from it decodes to the same hash.
    let payload = rdb_parser::dump::build_payload(&raw, 11);
    let ev = rdb_parser::dump::decode(&payload, Options::default()).unwrap();
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::HashEntries(h) if h.len() == 2)));
    // A footer version is checked by CRC.
    let mut bad = payload.clone();
    bad[raw.len()] = 12;
    assert!(rdb_parser::dump::decode(&bad, Options::default()).is_err());
    let fixed = rdb_parser::dump::with_version(&payload, 9).unwrap();
    assert_eq!(rdb_parser::dump::split(&fixed, true).unwrap().version, 9);
}

#[test]
fn degenerate_options_still_terminate() {
    let opts = Options {
        string_piece: 0,
        max_chunk_items: 0,
        max_chunk_bytes: 0,
        ..Options::default()
    };
    let mut value = len32(1000);
    value.extend(std::iter::repeat_n(b'x', 1000));
    let ev = decode_all(&one_key_file(0, &value), opts).unwrap();
    let n = ev.iter().filter(|e| matches!(e, Event::String(_))).count();
    assert_eq!(n, 1000);
}

/// db numbers are `u32` in every crate: a `SELECTDB` beyond it is an error with its
/// offset, never a truncated db (2^32 + 15 must not become db 15).
#[test]
fn selectdb_beyond_u32_is_an_error_with_its_offset() {
    let mut body = b"REDIS0009".to_vec();
    body.push(0xfe);
    body.push(0x81);
    body.extend_from_slice(&((1u64 << 32) + 15).to_be_bytes());
    body.extend_from_slice(b"\x00\x01k\x01v\xff");
    let err = decode_all(&with_crc(body), Options::default()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("SELECTDB db number of 4294967311"), "{text}");
    assert!(text.contains("at offset 9"), "{text}");
    // The largest u32 db is fine.
    let mut body = b"REDIS0009".to_vec();
    body.push(0xfe);
    body.push(0x80);
    body.extend_from_slice(&u32::MAX.to_be_bytes());
    body.extend_from_slice(b"\x00\x01k\x01v\xff");
    let ev = decode_all(&with_crc(body), Options::default()).unwrap();
    assert!(ev
        .iter()
        .any(|e| matches!(e, Event::KeyStart(k) if k.db == u32::MAX)));
}
