//! Property tests: encode → decode round trips, and splitting the input anywhere (or feeding it
//! byte by byte) yields the same frames with the same wire lengths.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use resp_codec::{encode_command, Command, Frame, FrameDecoder, Limits, RespCodec};
use tokio_util::codec::Encoder;

fn leaf() -> impl Strategy<Value = Frame> {
    let text = "[a-zA-Z0-9 :_.-]{0,16}".prop_map(Bytes::from);
    let blob = proptest::collection::vec(any::<u8>(), 0..48).prop_map(Bytes::from);
    prop_oneof![
        text.clone().prop_map(Frame::SimpleString),
        text.prop_map(Frame::SimpleError),
        any::<i64>().prop_map(Frame::Integer),
        blob.clone().prop_map(Frame::BulkString),
        Just(Frame::Null),
        Just(Frame::NullBulkString),
        Just(Frame::NullArray),
        prop_oneof![
            any::<f64>().prop_filter("NaN never compares equal", |d| !d.is_nan()),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(0.1),
            Just(1e300),
            Just(-2.5e-300),
        ]
        .prop_map(Frame::Double),
        any::<bool>().prop_map(Frame::Boolean),
        blob.clone().prop_map(Frame::BlobError),
        ("[a-z]{3}", blob).prop_map(|(f, data)| {
            let f = f.as_bytes();
            Frame::VerbatimString {
                format: [f[0], f[1], f[2]],
                data,
            }
        }),
        "-?[0-9]{1,40}".prop_map(|s| Frame::BigNumber(Bytes::from(s))),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    leaf().prop_recursive(5, 64, 6, |inner| {
        let pairs = proptest::collection::vec((inner.clone(), inner.clone()), 0..4);
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Frame::Array),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Frame::Set),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Frame::Push),
            pairs.clone().prop_map(Frame::Map),
            (pairs, inner).prop_map(|(attributes, data)| Frame::Attribute {
                attributes,
                data: Box::new(data)
            }),
        ]
    })
}

fn encode_all(frames: &[Frame]) -> (BytesMut, Vec<usize>) {
    let mut wire = BytesMut::new();
    let mut lens = Vec::new();
    for f in frames {
        let before = wire.len();
        f.encode(&mut wire).unwrap();
        lens.push(wire.len() - before);
    }
    (wire, lens)
}

/// Feeds `input` cut at `cuts` and decodes everything.
fn decode_cut(input: &[u8], cuts: impl IntoIterator<Item = usize>) -> Vec<(Frame, usize)> {
    let mut dec = FrameDecoder::default();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut start = 0;
    for cut in cuts.into_iter().chain([input.len()]) {
        let cut = cut.clamp(start, input.len());
        buf.extend_from_slice(&input[start..cut]);
        start = cut;
        while let Some(x) = dec.decode(&mut buf).unwrap() {
            out.push(x);
        }
    }
    assert!(dec.is_idle() && buf.is_empty());
    assert_eq!(dec.position(), input.len() as u64);
    out
}

proptest! {
    #[test]
    fn encode_decode_round_trip(frames in proptest::collection::vec(frame(), 1..6)) {
        let (wire, lens) = encode_all(&frames);
        let got = decode_cut(&wire, []);
        let want: Vec<(Frame, usize)> = frames.into_iter().zip(lens).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn split_anywhere_equals_whole(
        frames in proptest::collection::vec(frame(), 1..4),
        cut in any::<prop::sample::Index>(),
        step in 1usize..40,
    ) {
        let (wire, _) = encode_all(&frames);
        let whole = decode_cut(&wire, []);
        let at = cut.index(wire.len() + 1);
        prop_assert_eq!(&decode_cut(&wire, [at]), &whole);
        prop_assert_eq!(&decode_cut(&wire, (0..wire.len()).step_by(step)), &whole);
    }

    #[test]
    fn commands_round_trip(args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 1..8)) {
        let mut a = BytesMut::new();
        encode_command(&mut a, &args);
        prop_assert_eq!(a.len(), resp_codec::command_len(&args));
        let cmd: Command = args.iter().collect();
        prop_assert_eq!(&cmd.to_bytes()[..], &a[..]);
        let mut c = BytesMut::new();
        RespCodec::default().encode(&args[..], &mut c).unwrap();
        prop_assert_eq!(&c[..], &a[..]);
        let got = decode_cut(&a, []);
        prop_assert_eq!(got.len(), 1);
        let parsed: Vec<&[u8]> = got[0].0.as_command().unwrap().iter().collect();
        let want: Vec<&[u8]> = args.iter().map(|v| &v[..]).collect();
        prop_assert_eq!(parsed, want);
        prop_assert_eq!(got[0].1, a.len());
    }
}

/// Hand-written wire covering streamed forms, attributes in aggregates and every null; split at
/// every point and fed byte by byte.
const WIRE: &[u8] = b"+OK\r\n-ERR x\r\n:-12\r\n$5\r\nhello\r\n$-1\r\n*-1\r\n_\r\n\
*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n,3.25\r\n,-inf\r\n#t\r\n!3\r\nbad\r\n\
=8\r\ntxt:abcd\r\n(123456789012345678901234567890\r\n%1\r\n+a\r\n~2\r\n:1\r\n:2\r\n\
>2\r\n+msg\r\n|1\r\n+k\r\n+v\r\n$1\r\nx\r\n\
$?\r\n;3\r\nabc\r\n;2\r\nde\r\n;0\r\n*?\r\n:1\r\n%?\r\n+k\r\n$?\r\n;1\r\nv\r\n;0\r\n.\r\n.\r\n\
~?\r\n.\r\n*0\r\n%0\r\n";

#[test]
fn split_at_every_point_and_byte_by_byte() {
    let whole = decode_cut(WIRE, []);
    assert_eq!(whole.len(), 21);
    assert_eq!(whole.iter().map(|(_, l)| l).sum::<usize>(), WIRE.len());
    for at in 0..=WIRE.len() {
        assert_eq!(decode_cut(WIRE, [at]), whole, "cut at {at}");
    }
    assert_eq!(decode_cut(WIRE, 0..WIRE.len()), whole);
    for a in (0..WIRE.len()).step_by(7) {
        for b in (a..WIRE.len()).step_by(11) {
            assert_eq!(decode_cut(WIRE, [a, b]), whole, "cuts at {a}, {b}");
        }
    }
}

#[test]
fn fifty_thousand_element_array_in_small_reads() {
    let args: Vec<String> = (0..50_000).map(|i| format!("member:{i}")).collect();
    let mut wire = BytesMut::new();
    encode_command(&mut wire, &args);
    let whole = decode_cut(&wire, []);
    let pieces = decode_cut(&wire, (0..wire.len()).step_by(16 * 1024));
    assert_eq!(whole, pieces);
    assert_eq!(whole[0].1, wire.len());
}

#[test]
fn limits_apply_to_round_tripped_frames_too() {
    // A frame deeper than max_depth is refused even when it is well formed.
    let mut f = Frame::Integer(1);
    for _ in 0..5 {
        f = Frame::Array(vec![f]);
    }
    let mut wire = BytesMut::new();
    f.encode(&mut wire).unwrap();
    let mut dec = FrameDecoder::new(Limits::default().with_max_depth(4));
    assert!(dec.decode(&mut wire).is_err());
}

#[test]
fn unencodable_frames_are_refused() {
    let mut out = BytesMut::new();
    for f in [
        Frame::SimpleString(Bytes::from_static(b"a\r\nb")),
        Frame::SimpleError(Bytes::from_static(b"\n")),
        Frame::BigNumber(Bytes::from_static(b"1\r")),
    ] {
        assert!(matches!(
            f.encode(&mut out),
            Err(resp_codec::Error::Unencodable { .. })
        ));
    }
}

/// The fuzz harness `resp_split`'s comparison: frames (as Debug) with lengths, then how it ended.
fn outcome(
    input: &[u8],
    cuts: impl IntoIterator<Item = usize>,
    limits: Limits,
    inline: bool,
) -> (Vec<(String, usize)>, Option<String>) {
    let mut dec = FrameDecoder::new(limits).with_inline_commands(inline);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut start = 0;
    for cut in cuts.into_iter().chain([input.len()]) {
        let cut = cut.clamp(start, input.len());
        buf.extend_from_slice(&input[start..cut]);
        start = cut;
        loop {
            match dec.decode(&mut buf) {
                Ok(Some((f, len))) => frames.push((format!("{f:?}"), len)),
                Ok(None) => break,
                Err(e) => return (frames, Some(format!("{e:?}"))),
            }
        }
    }
    (frames, None)
}

fn tiny() -> Limits {
    Limits::default()
        .with_max_bulk_len(64)
        .with_max_line_len(32)
        .with_max_depth(8)
        .with_max_aggregate_len(16)
}

/// Fuzz finding (resp_split, crash-674e9be7…): an inline line of exactly `max_line_len` bytes
/// plus CRLF was refused when its CR arrived before its LF, accepted when whole.
#[test]
fn regression_inline_line_at_the_limit_split_before_lf() {
    let input =
        b"+OK\r\n-ERR x\r\n:-12\r\n$5\r\nhell&&&&&&&&&&&&&&&&&&&&&&&&&&&o\r\n$-1\r\n*-1\r\n_\r\n";
    let whole = outcome(input, [], tiny(), true);
    assert_eq!(whole.1, None);
    assert_eq!(whole.0.len(), 8);
    for step in 1..=16 {
        assert_eq!(
            outcome(input, (0..input.len()).step_by(step), tiny(), true),
            whole,
            "{step}"
        );
    }
}

/// Same family: the line-length error must not depend on where the input was cut.
#[test]
fn line_limit_errors_do_not_depend_on_splits() {
    let long_simple = [&b"+"[..], &[b'a'; 40], b"\r\n"].concat();
    let long_inline = [&[b'a'; 40][..], b"\r\n"].concat();
    let exact_simple = [&b"+"[..], &[b'a'; 32], b"\r\n"].concat();
    let exact_inline = [&[b'a'; 32][..], b"\r\n"].concat();
    for (input, inline) in [
        (&long_simple, false),
        (&long_inline, true),
        (&exact_simple, false),
        (&exact_inline, true),
    ] {
        let whole = outcome(input, [], tiny(), inline);
        for at in 0..=input.len() {
            assert_eq!(outcome(input, [at], tiny(), inline), whole, "cut at {at}");
        }
        assert_eq!(outcome(input, 0..input.len(), tiny(), inline), whole);
    }
    assert!(outcome(&long_simple, [], tiny(), false)
        .1
        .unwrap()
        .contains("found: 33"));
    assert_eq!(outcome(&exact_simple, [], tiny(), false).0.len(), 1);
    assert_eq!(outcome(&exact_inline, [], tiny(), true).0.len(), 1);
}

#[test]
fn command_builder_integers() {
    for n in [0, 7, -7, 10, -10, 1_500, i64::MAX, i64::MIN] {
        let text = n.to_string();
        assert_eq!(
            Command::new("X").arg_int(n).to_bytes(),
            Command::new("X").arg(&text).to_bytes()
        );
    }
}
