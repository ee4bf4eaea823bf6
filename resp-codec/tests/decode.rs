//! Table-driven decoding tests: every type, every malformed form (expected error and offset).

use bytes::{Bytes, BytesMut};
use resp_codec::{Error, Frame, FrameDecoder, Limit, Limits, RespCodec};
use tokio_util::codec::Decoder;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn bulk(s: &str) -> Frame {
    Frame::BulkString(b(s))
}

/// Decodes exactly one frame that spans the whole input.
fn one(input: &[u8]) -> Frame {
    let mut dec = FrameDecoder::default();
    let mut buf = BytesMut::from(input);
    let (f, len) = dec
        .decode(&mut buf)
        .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(input)))
        .unwrap_or_else(|| panic!("{:?}: partial", String::from_utf8_lossy(input)));
    assert_eq!(len, input.len(), "{:?}", String::from_utf8_lossy(input));
    assert!(buf.is_empty());
    assert!(dec.is_idle());
    f
}

fn valid_cases() -> Vec<(&'static str, Frame)> {
    vec![
        // RESP2
        ("+OK\r\n", Frame::SimpleString(b("OK"))),
        ("+\r\n", Frame::SimpleString(b(""))),
        ("-ERR unknown command 'x'\r\n", Frame::SimpleError(b("ERR unknown command 'x'"))),
        (":0\r\n", Frame::Integer(0)),
        (":-42\r\n", Frame::Integer(-42)),
        (":+7\r\n", Frame::Integer(7)),
        (":9223372036854775807\r\n", Frame::Integer(i64::MAX)),
        (":-9223372036854775808\r\n", Frame::Integer(i64::MIN)),
        ("$5\r\nhello\r\n", bulk("hello")),
        ("$0\r\n\r\n", bulk("")),
        ("$4\r\na\r\nb\r\n", bulk("a\r\nb")),
        ("$-1\r\n", Frame::NullBulkString),
        ("*-1\r\n", Frame::NullArray),
        ("*0\r\n", Frame::Array(vec![])),
        (
            "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
            Frame::Array(vec![bulk("GET"), bulk("k")]),
        ),
        (
            "*3\r\n:1\r\n*1\r\n+a\r\n$-1\r\n",
            Frame::Array(vec![
                Frame::Integer(1),
                Frame::Array(vec![Frame::SimpleString(b("a"))]),
                Frame::NullBulkString,
            ]),
        ),
        // RESP3
        ("_\r\n", Frame::Null),
        (",1.5\r\n", Frame::Double(1.5)),
        (",-0.25\r\n", Frame::Double(-0.25)),
        (",10\r\n", Frame::Double(10.0)),
        (",1e+300\r\n", Frame::Double(1e300)),
        (",inf\r\n", Frame::Double(f64::INFINITY)),
        (",-inf\r\n", Frame::Double(f64::NEG_INFINITY)),
        ("#t\r\n", Frame::Boolean(true)),
        ("#f\r\n", Frame::Boolean(false)),
        ("!21\r\nSYNTAX invalid syntax\r\n", Frame::BlobError(b("SYNTAX invalid syntax"))),
        (
            "=15\r\ntxt:Some string\r\n",
            Frame::VerbatimString { format: *b"txt", data: b("Some string") },
        ),
        ("=4\r\nmkd:\r\n", Frame::VerbatimString { format: *b"mkd", data: b("") }),
        (
            "(3492890328409238509324850943850943825024385\r\n",
            Frame::BigNumber(b("3492890328409238509324850943850943825024385")),
        ),
        ("(-1\r\n", Frame::BigNumber(b("-1"))),
        (
            "%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n",
            Frame::Map(vec![
                (Frame::SimpleString(b("first")), Frame::Integer(1)),
                (Frame::SimpleString(b("second")), Frame::Integer(2)),
            ]),
        ),
        ("%0\r\n", Frame::Map(vec![])),
        (
            "~3\r\n+a\r\n:1\r\n#f\r\n",
            Frame::Set(vec![Frame::SimpleString(b("a")), Frame::Integer(1), Frame::Boolean(false)]),
        ),
        (
            ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
            Frame::Push(vec![bulk("message"), bulk("ch"), bulk("hi")]),
        ),
        (
            "|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n",
            Frame::Attribute {
                attributes: vec![(
                    Frame::SimpleString(b("key-popularity")),
                    Frame::Map(vec![
                        (bulk("a"), Frame::Double(0.1923)),
                        (bulk("b"), Frame::Double(0.0012)),
                    ]),
                )],
                data: Box::new(Frame::Array(vec![Frame::Integer(2039123), Frame::Integer(9543892)])),
            },
        ),
        (
            // An attribute inside an array does not count as an element.
            "*2\r\n:1\r\n|1\r\n+ttl\r\n:3600\r\n:2\r\n",
            Frame::Array(vec![
                Frame::Integer(1),
                Frame::Attribute {
                    attributes: vec![(Frame::SimpleString(b("ttl")), Frame::Integer(3600))],
                    data: Box::new(Frame::Integer(2)),
                },
            ]),
        ),
        (
            "|0\r\n+x\r\n",
            Frame::Attribute { attributes: vec![], data: Box::new(Frame::SimpleString(b("x"))) },
        ),
        // Streamed forms.
        ("$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;1\r\nd\r\n;0\r\n", bulk("Hello word")),
        ("$?\r\n;0\r\n", bulk("")),
        ("*?\r\n:1\r\n:2\r\n.\r\n", Frame::Array(vec![Frame::Integer(1), Frame::Integer(2)])),
        ("*?\r\n.\r\n", Frame::Array(vec![])),
        ("~?\r\n+a\r\n.\r\n", Frame::Set(vec![Frame::SimpleString(b("a"))])),
        (
            "%?\r\n+a\r\n:1\r\n+b\r\n:2\r\n.\r\n",
            Frame::Map(vec![
                (Frame::SimpleString(b("a")), Frame::Integer(1)),
                (Frame::SimpleString(b("b")), Frame::Integer(2)),
            ]),
        ),
        (
            "*?\r\n*?\r\n$?\r\n;1\r\nx\r\n;0\r\n.\r\n.\r\n",
            Frame::Array(vec![Frame::Array(vec![bulk("x")])]),
        ),
    ]
}

#[test]
fn every_type_decodes() {
    for (input, want) in valid_cases() {
        assert_eq!(one(input.as_bytes()), want, "{input:?}");
    }
}

#[test]
fn nan_double() {
    for input in [",nan\r\n", ",NaN\r\n"] {
        match one(input.as_bytes()) {
            Frame::Double(d) => assert!(d.is_nan()),
            f => panic!("{f:?}"),
        }
    }
}

#[test]
fn all_cases_concatenated_with_lengths() {
    let cases = valid_cases();
    let mut wire = BytesMut::new();
    for (input, _) in &cases {
        wire.extend_from_slice(input.as_bytes());
    }
    let total = wire.len() as u64;
    let mut dec = FrameDecoder::default();
    for (input, want) in &cases {
        let (f, len) = dec.decode(&mut wire).unwrap().unwrap();
        assert_eq!((&f, len), (want, input.len()));
    }
    assert!(dec.decode(&mut wire).unwrap().is_none());
    assert_eq!(dec.position(), total);
}

fn decode_err(input: &[u8], limits: Limits) -> Error {
    let mut dec = FrameDecoder::new(limits);
    let mut buf = BytesMut::from(input);
    loop {
        match dec.decode(&mut buf) {
            Err(e) => return e,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("{:?}: no error", String::from_utf8_lossy(input)),
        }
    }
}

fn lim(limit: Limit, offset: u64, max: u64, found: u64) -> Error {
    Error::LimitExceeded {
        limit,
        offset,
        max,
        found,
    }
}

#[test]
fn malformed_forms() {
    use Error::*;
    let small = Limits::default()
        .with_max_bulk_len(8)
        .with_max_line_len(8)
        .with_max_depth(2)
        .with_max_aggregate_len(3);
    let d = Limits::default();
    let cases: Vec<(&[u8], Limits, Error)> = vec![
        (
            b"?",
            d,
            InvalidTypeByte {
                offset: 0,
                found: b'?',
            },
        ),
        (
            b"+OK\r\n\x00",
            d,
            InvalidTypeByte {
                offset: 5,
                found: 0,
            },
        ),
        (
            b"*1\r\nx",
            d,
            InvalidTypeByte {
                offset: 4,
                found: b'x',
            },
        ),
        (
            b":12a\r\n",
            d,
            InvalidInteger {
                offset: 3,
                found: b'a',
            },
        ),
        (
            b":\r\n",
            d,
            InvalidInteger {
                offset: 1,
                found: b'\r',
            },
        ),
        (
            b":-\r\n",
            d,
            InvalidInteger {
                offset: 2,
                found: b'\r',
            },
        ),
        (
            b":9223372036854775808\r\n",
            d,
            InvalidInteger {
                offset: 19,
                found: b'8',
            },
        ),
        (
            b":000000000000000000000000000000000001\r\n",
            d,
            InvalidInteger {
                offset: 31,
                found: b'0',
            },
        ),
        (
            b":1\rx",
            d,
            ExpectedCrlf {
                offset: 3,
                found: b'x',
            },
        ),
        (
            b"$x\r\n",
            d,
            InvalidLength {
                offset: 1,
                found: b'x',
            },
        ),
        (
            b"$\r\n",
            d,
            InvalidLength {
                offset: 1,
                found: b'\r',
            },
        ),
        (
            b"$-2\r\n",
            d,
            InvalidLength {
                offset: 2,
                found: b'2',
            },
        ),
        (
            b"$-1x\r\n",
            d,
            InvalidLength {
                offset: 3,
                found: b'x',
            },
        ),
        (
            b"$-1\rx",
            d,
            ExpectedCrlf {
                offset: 4,
                found: b'x',
            },
        ),
        (
            b"*-1 ",
            d,
            InvalidLength {
                offset: 3,
                found: b' ',
            },
        ),
        (
            b"$99999999999999999999999\r\n",
            d,
            InvalidLength {
                offset: 20,
                found: b'9',
            },
        ),
        (
            b"$3\r\nabcde",
            d,
            ExpectedCrlf {
                offset: 7,
                found: b'd',
            },
        ),
        (
            b"$3\r\nabc\rx",
            d,
            ExpectedCrlf {
                offset: 8,
                found: b'x',
            },
        ),
        (
            b"+a\nb\r\n",
            d,
            ExpectedCrlf {
                offset: 2,
                found: b'\n',
            },
        ),
        (
            b"+a\rb\r\n",
            d,
            ExpectedCrlf {
                offset: 3,
                found: b'b',
            },
        ),
        (b",1.5x\r\n", d, InvalidDouble { offset: 0 }),
        (b",\r\n", d, InvalidDouble { offset: 0 }),
        (
            b"#x\r\n",
            d,
            InvalidBoolean {
                offset: 1,
                found: b'x',
            },
        ),
        (
            b"#t\n\r",
            d,
            ExpectedCrlf {
                offset: 2,
                found: b'\n',
            },
        ),
        (
            b"_x\r\n",
            d,
            ExpectedCrlf {
                offset: 1,
                found: b'x',
            },
        ),
        (
            b"(12a\r\n",
            d,
            InvalidBigNumber {
                offset: 3,
                found: b'a',
            },
        ),
        (
            b"(-\r\n",
            d,
            InvalidBigNumber {
                offset: 2,
                found: b'\r',
            },
        ),
        (b"=3\r\ntxt\r\n", d, InvalidVerbatim { offset: 4 }),
        (b"=5\r\ntxt-x\r\n", d, InvalidVerbatim { offset: 4 }),
        (
            b"!-1\r\n",
            d,
            InvalidLength {
                offset: 1,
                found: b'-',
            },
        ),
        (
            b"%-1\r\n",
            d,
            InvalidLength {
                offset: 1,
                found: b'-',
            },
        ),
        (
            b">?\r\n",
            d,
            InvalidLength {
                offset: 1,
                found: b'?',
            },
        ),
        (
            b"|?\r\n",
            d,
            InvalidLength {
                offset: 1,
                found: b'?',
            },
        ),
        (
            b"!?\r\n",
            d,
            InvalidLength {
                offset: 1,
                found: b'?',
            },
        ),
        (b".\r\n", d, UnexpectedEndMarker { offset: 0 }),
        (b"*1\r\n.\r\n", d, UnexpectedEndMarker { offset: 4 }),
        (b"%?\r\n+k\r\n.\r\n", d, UnexpectedEndMarker { offset: 8 }),
        (b";3\r\nabc\r\n", d, UnexpectedChunk { offset: 0 }),
        (
            b"$?\r\n+a\r\n",
            d,
            ExpectedChunk {
                offset: 4,
                found: b'+',
            },
        ),
        (
            b"$?\r\n;x\r\n",
            d,
            InvalidLength {
                offset: 5,
                found: b'x',
            },
        ),
        // Limits, each named, at the offset of the frame exceeding it.
        (b"$9\r\n", small, lim(Limit::BulkLen, 0, 8, 9)),
        (b"*1\r\n!9\r\n", small, lim(Limit::BulkLen, 4, 8, 9)),
        (
            b"$?\r\n;5\r\nabcde\r\n;4\r\n",
            small,
            lim(Limit::BulkLen, 15, 8, 9),
        ),
        (b"+123456789", small, lim(Limit::LineLen, 0, 8, 9)),
        (b"+123456789\r\n", small, lim(Limit::LineLen, 0, 8, 9)),
        (b"*1\r\n*1\r\n*1\r\n", small, lim(Limit::Depth, 8, 2, 3)),
        (b"*1\r\n*1\r\n*0\r\n", small, lim(Limit::Depth, 8, 2, 3)),
        (b"*4\r\n", small, lim(Limit::AggregateLen, 0, 3, 4)),
        (b"%4\r\n", small, lim(Limit::AggregateLen, 0, 3, 4)),
        (
            b"*4294967296\r\n",
            d,
            lim(Limit::AggregateLen, 0, i32::MAX as u64, 1 << 32),
        ),
        (
            b"$536870913\r\n",
            d,
            lim(Limit::BulkLen, 0, 512 << 20, (512 << 20) + 1),
        ),
    ];
    for (input, limits, want) in cases {
        let got = decode_err(input, limits);
        assert_eq!(
            format!("{got:?}"),
            format!("{want:?}"),
            "{:?}",
            String::from_utf8_lossy(input)
        );
        assert!(got.offset().is_some());
    }
}

#[test]
fn deep_nesting_is_a_limit_error_not_a_stack_overflow() {
    let input = b"*1\r\n".repeat(100_000);
    let err = decode_err(&input, Limits::default());
    assert_eq!(
        format!("{err:?}"),
        format!("{:?}", lim(Limit::Depth, 4 * 1024, 1024, 1025))
    );
    // Also when fed in small pieces.
    let mut dec = FrameDecoder::default();
    let mut buf = BytesMut::new();
    let mut failed = None;
    for chunk in input.chunks(7) {
        buf.extend_from_slice(chunk);
        match dec.decode(&mut buf) {
            Ok(None) => {}
            Ok(Some(f)) => panic!("{f:?}"),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    assert!(matches!(
        failed,
        Some(Error::LimitExceeded {
            limit: Limit::Depth,
            offset: 4096,
            ..
        })
    ));
    // A huge limit is fine too: the decoder has no recursion (the stack of levels is on the heap).
    let deep = b"*1\r\n".repeat(50_000);
    let mut dec = FrameDecoder::new(Limits::default().with_max_depth(usize::MAX));
    let mut buf = BytesMut::from(&deep[..]);
    assert!(dec.decode(&mut buf).unwrap().is_none());
    assert!(!dec.is_idle());
}

#[test]
fn huge_declared_lengths_allocate_nothing_up_front() {
    // Declared lengths far beyond what arrived: partial, not an allocation.
    for input in [
        &b"*2147483647\r\n"[..],
        b"%2147483647\r\n",
        b"$536870912\r\nab",
    ] {
        let mut dec = FrameDecoder::default();
        let mut buf = BytesMut::from(input);
        assert!(dec.decode(&mut buf).unwrap().is_none());
    }
}

#[test]
fn truncated_stream_is_reported_at_eof() {
    let mut codec = RespCodec::default();
    let mut buf = BytesMut::from(&b"+OK\r\n*2\r\n$3\r\nGET\r\n"[..]);
    assert_eq!(
        codec.decode_eof(&mut buf).unwrap(),
        Some(Frame::SimpleString(b("OK")))
    );
    let err = codec.decode_eof(&mut buf).unwrap_err();
    assert_eq!(
        format!("{err:?}"),
        format!("{:?}", Error::Truncated { offset: 5, end: 18 })
    );
    // A partial first line, nothing consumed yet.
    let mut codec = RespCodec::default();
    let mut buf = BytesMut::from(&b"+O"[..]);
    assert!(matches!(
        codec.decode_eof(&mut buf),
        Err(Error::Truncated { offset: 0, end: 2 })
    ));
    // Clean end.
    let mut codec = RespCodec::default();
    let mut buf = BytesMut::from(&b":1\r\n"[..]);
    assert!(codec.decode_eof(&mut buf).unwrap().is_some());
    assert!(codec.decode_eof(&mut buf).unwrap().is_none());
}

#[test]
fn error_messages_name_the_problem_and_offset() {
    let e = decode_err(b"+OK\r\n$5\r\nabc", Limits::default().with_max_bulk_len(4));
    assert_eq!(e.to_string(), "max_bulk_len exceeded at offset 5: 5 > 4");
    let e = decode_err(b"*1\r\n:1x\r\n", Limits::default());
    assert_eq!(
        e.to_string(),
        "invalid integer at offset 6: unexpected byte 0x78"
    );
}

#[test]
fn bulk_payloads_share_the_input_buffer() {
    let mut buf = BytesMut::with_capacity(64);
    buf.extend_from_slice(b"$5\r\nhello\r\n");
    let base = buf.as_ptr() as usize;
    let f = FrameDecoder::default().decode(&mut buf).unwrap().unwrap().0;
    match f {
        Frame::BulkString(data) => assert_eq!(data.as_ptr() as usize, base + 4),
        f => panic!("{f:?}"),
    }
}

#[test]
fn inline_commands_behind_a_flag() {
    let mut dec = FrameDecoder::default().with_inline_commands(true);
    let mut buf = BytesMut::from(&b"PING\r\n\n  \r\nSET  k\tv\n*1\r\n$4\r\nPING\r\n"[..]);
    let (f, len) = dec.decode(&mut buf).unwrap().unwrap();
    assert_eq!((f, len), (Frame::command(&["PING"]), 6));
    let (f, len) = dec.decode(&mut buf).unwrap().unwrap();
    assert_eq!((f, len), (Frame::command(&["SET", "k", "v"]), 9));
    let (f, len) = dec.decode(&mut buf).unwrap().unwrap();
    assert_eq!((f, len), (Frame::command(&["PING"]), 14));
    assert_eq!(dec.position(), 6 + 1 + 4 + 9 + 14);
    // Off by default.
    let err = decode_err(b"PING\r\n", Limits::default());
    assert!(matches!(
        err,
        Error::InvalidTypeByte {
            offset: 0,
            found: b'P'
        }
    ));
    // Bounded.
    let mut dec =
        FrameDecoder::new(Limits::default().with_max_line_len(4)).with_inline_commands(true);
    let mut buf = BytesMut::from(&b"PINGPONG"[..]);
    assert!(matches!(
        dec.decode(&mut buf),
        Err(Error::LimitExceeded {
            limit: Limit::LineLen,
            offset: 0,
            ..
        })
    ));
}

#[test]
fn command_helpers() {
    let f = one(b"*3\r\n$3\r\nset\r\n$1\r\nk\r\n$1\r\nv\r\n");
    let args = f.as_command().unwrap();
    assert!(args.name().eq_ignore_ascii_case(b"SET"));
    assert_eq!(args.get(2), Some(&b"v"[..]));
    assert_eq!(args.get(3), None);
    assert_eq!(
        f.clone().into_command().unwrap(),
        vec![b("set"), b("k"), b("v")]
    );
    let not = Frame::Array(vec![bulk("x"), Frame::Integer(1)]);
    assert!(not.as_command().is_none());
    assert_eq!(not.clone().into_command(), Err(not));
    assert!(Frame::Array(vec![]).as_command().is_none());
}

/// The writer's common replies (`+OK`, `+QUEUED`) take a fast path: same frames, lengths and
/// positions as the general decoder, including split and look-alike lines.
#[test]
fn common_status_replies() {
    let input = b"+OK\r\n+QUEUED\r\n+OKAY\r\n+QUEUEDX\r\n:1\r\n+OK\r\n+QUEUED\r\n+OK\r";
    let expected = [("OK", 5), ("QUEUED", 9), ("OKAY", 7), ("QUEUEDX", 10)];
    let mut dec = FrameDecoder::default();
    let mut buf = BytesMut::from(&input[..]);
    let mut pos = 0u64;
    for (text, len) in expected {
        let (f, n) = dec.decode(&mut buf).unwrap().unwrap();
        assert_eq!((f, n), (Frame::SimpleString(b(text)), len));
        pos += len as u64;
        assert_eq!(dec.position(), pos);
    }
    assert_eq!(
        dec.decode(&mut buf).unwrap().unwrap(),
        (Frame::Integer(1), 4)
    );
    assert_eq!(dec.decode(&mut buf).unwrap().unwrap().1, 5);
    assert_eq!(dec.decode(&mut buf).unwrap().unwrap().1, 9);
    // A partial `+OK\r` waits for its `\n`, then completes.
    assert_eq!(dec.decode(&mut buf).unwrap(), None);
    buf.extend_from_slice(b"\n");
    assert_eq!(
        dec.decode(&mut buf).unwrap().unwrap(),
        (Frame::SimpleString(b("OK")), 5)
    );
    assert_eq!(dec.position(), input.len() as u64 + 1);
    assert!(buf.is_empty() && dec.is_idle());
}
