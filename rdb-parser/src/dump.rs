//! DUMP payloads: `type byte | value | u16 LE RDB version | u64 LE CRC-64`.
//!
//! [`decode`] checks the footer and decodes the value into the same events as a key of an
//! RDB file (`KeyStart` with an empty key and db 0, value events, `KeyEnd`). [`build_payload`]
//! wraps raw value bytes (as collected from [`crate::Event::RawValue`] with
//! [`crate::Options::raw_values`]) into a payload for `RESTORE`, with the version footer you
//! choose: a server refuses a version above its own, so pick the lowest version that knows the
//! type byte ([`crate::RdbType::min_rdb_version`]) or the target's own.

use bytes::{Bytes, BytesMut};
use crc_fast::{CrcAlgorithm, Digest};

use crate::decoder::RdbDecoder;
use crate::error::Error;
use crate::event::Event;
use crate::input::Options;
use crate::opcode::Family;

/// Footer length: u16 version + u64 CRC.
pub const FOOTER_LEN: usize = 10;

/// The first Valkey RDB version (`VALKEY080`); payloads with this version or above use Valkey's
/// type table.
pub const VALKEY_FIRST_VERSION: u16 = 80;

/// CRC-64/Jones ("CRC-64/REDIS") of `data`, as RDB trailers and DUMP footers use it.
pub fn crc64(data: &[u8]) -> u64 {
    crc_fast::checksum(CrcAlgorithm::Crc64Redis, data)
}

/// A payload split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// Type byte + value (preceded by `KEY_META` when a Redis 8.6+ key has module metadata).
    pub value: Bytes,
    /// The RDB version of the footer.
    pub version: u16,
    /// The stored CRC.
    pub crc: u64,
}

impl Payload {
    /// The first byte of the value: its type byte, or `KEY_META` (243) when a Redis 8.6+
    /// payload carries key metadata before the type.
    pub fn type_byte(&self) -> u8 {
        self.value[0]
    }

    /// The type table family the footer version implies.
    pub fn family(&self) -> Family {
        if self.version >= VALKEY_FIRST_VERSION {
            Family::Valkey
        } else {
            Family::Redis
        }
    }
}

/// Splits a payload and checks its CRC (unless `verify` is false).
pub fn split(payload: &[u8], verify: bool) -> Result<Payload, Error> {
    if payload.len() < FOOTER_LEN + 1 {
        return Err(Error::BadDumpPayload {
            what: format!(
                "{} bytes is shorter than a type byte and the footer",
                payload.len()
            ),
        });
    }
    let body = payload.len() - FOOTER_LEN;
    let version = u16::from_le_bytes([payload[body], payload[body + 1]]);
    let mut c = [0u8; 8];
    c.copy_from_slice(&payload[body + 2..]);
    let crc = u64::from_le_bytes(c);
    if verify {
        let computed = crc64(&payload[..body + 2]);
        if computed != crc {
            return Err(Error::BadDumpPayload {
                what: format!("checksum mismatch: stored {crc:#018x}, computed {computed:#018x}"),
            });
        }
    }
    if version == 0 {
        return Err(Error::BadDumpPayload {
            what: "RDB version 0".into(),
        });
    }
    Ok(Payload {
        value: Bytes::copy_from_slice(&payload[..body]),
        version,
        crc,
    })
}

/// Checks a payload and decodes its value into events (see the module docs).
///
/// [`Options::verify_checksum`] controls the CRC check.
pub fn decode(payload: &[u8], opts: Options) -> Result<Vec<Event>, Error> {
    let p = split(payload, opts.verify_checksum)?;
    decode_value(&p.value, p.family(), u32::from(p.version), opts)
}

/// Decodes a bare serialized value (type byte + value) of a stream of `family` and `version`.
pub fn decode_value(
    value: &[u8],
    family: Family,
    version: u32,
    opts: Options,
) -> Result<Vec<Event>, Error> {
    let mut dec = RdbDecoder::new_value(opts, family, version);
    let mut buf = BytesMut::from(value);
    let mut out = Vec::new();
    while let Some(ev) = dec.decode(&mut buf)? {
        out.push(ev);
    }
    dec.finish()?;
    if !buf.is_empty() {
        return Err(Error::corrupt(
            format!("{} bytes after the end of the value", buf.len()),
            dec.offset(),
        ));
    }
    Ok(out)
}

/// Builds a `RESTORE` payload from the raw value (type byte + value) and a footer version.
pub fn build_payload(raw_value: &[u8], version: u16) -> Vec<u8> {
    build_payload_chunks([raw_value], version)
}

/// [`build_payload`] from the [`crate::Event::RawValue`] chunks of one key.
pub fn build_payload_chunks<I, B>(chunks: I, version: u16) -> Vec<u8>
where
    I: IntoIterator<Item = B>,
    B: AsRef<[u8]>,
{
    let mut out = Vec::new();
    let mut crc = Digest::new(CrcAlgorithm::Crc64Redis);
    for c in chunks {
        out.extend_from_slice(c.as_ref());
    }
    out.extend_from_slice(&version.to_le_bytes());
    crc.update(&out);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out
}

/// Turns a raw value (type byte + value) collected in `value` into a `RESTORE` payload in
/// place: appends the footer version and the CRC-64 (no copy of the value is made).
pub fn finish_payload(value: &mut Vec<u8>, version: u16) {
    value.extend_from_slice(&version.to_le_bytes());
    let crc = crc64(value);
    value.extend_from_slice(&crc.to_le_bytes());
}

/// Rewrites the version footer of a payload (and its CRC), e.g. to RESTORE a value into an
/// older server that knows its type byte. The CRC of the input is checked first.
pub fn with_version(payload: &[u8], version: u16) -> Result<Vec<u8>, Error> {
    let p = split(payload, true)?;
    Ok(build_payload(&p.value, version))
}
