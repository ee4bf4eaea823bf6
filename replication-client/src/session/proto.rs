//! Helpers shared by the session phases: `REPLCONF ACK`, strict integers, message text.

use bytes::BytesMut;

/// `REPLCONF ACK <offset>`.
pub(crate) fn encode_ack(out: &mut BytesMut, offset: u64) {
    resp_codec::encode_command(out, &["REPLCONF", "ACK", offset.to_string().as_str()]);
}

/// A strict decimal integer like Redis's `string2ll`: optional `-`, digits, no leading `+`,
/// no spaces, no overflow.
pub(crate) fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        let d = i64::from(d - b'0');
        v = if neg {
            v.checked_mul(10)?.checked_sub(d)?
        } else {
            v.checked_mul(10)?.checked_add(d)?
        };
    }
    Some(v)
}

/// Lossy text of a server line for messages, at most 512 characters.
pub(crate) fn text(line: &[u8]) -> String {
    let s = String::from_utf8_lossy(&line[..line.len().min(512)]).into_owned();
    if line.len() > 512 {
        s + "..."
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_strict() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b" 1",
            b"1 ",
            b"9223372036854775808",
            b"1a",
        ] {
            assert_eq!(parse_i64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn encodes_commands() {
        let mut out = BytesMut::new();
        encode_ack(&mut out, 1234);
        assert_eq!(
            &out[..],
            b"*3\r\n$8\r\nREPLCONF\r\n$3\r\nACK\r\n$4\r\n1234\r\n"
        );
    }
}
