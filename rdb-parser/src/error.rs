//! The crate's one error type.

use std::fmt;

/// Longest key prefix (in bytes) kept in an error, so that errors stay small and logs readable.
pub const ERROR_KEY_MAX: usize = 64;

/// A key as shown in errors: lossy UTF-8, truncated to [`ERROR_KEY_MAX`] bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyName(pub String);

impl KeyName {
    /// Builds the display form of `key` (lossy, truncated).
    pub fn new(key: &[u8]) -> KeyName {
        let cut = key.len().min(ERROR_KEY_MAX);
        let mut s = String::from_utf8_lossy(&key[..cut]).into_owned();
        if key.len() > ERROR_KEY_MAX {
            s.push('…');
        }
        KeyName(s)
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// Formats the optional key / type context of an error.
struct Ctx<'a>(&'a Option<KeyName>, &'a Option<u8>);

impl fmt::Display for Ctx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(t) = self.1 {
            write!(f, " (type {t})")?;
        }
        if let Some(k) = self.0 {
            write!(f, " in key {k}")?;
        }
        Ok(())
    }
}

/// Everything that can go wrong while decoding an RDB stream or a DUMP payload.
///
/// Offsets are absolute byte offsets from the start of the stream (the first byte of the
/// magic, or of the DUMP payload). `type_byte` and `key` are filled in when the error happens
/// inside a key's value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The first 9 bytes are not `REDIS%04d` or `VALKEY%03d`.
    #[error("not an RDB stream: bad magic {found:?} at offset 0")]
    BadMagic {
        /// The bytes found (lossy).
        found: String,
    },
    /// The magic names a version this decoder refuses (0, or outside what the options allow).
    #[error("unsupported RDB version {version} ({magic})")]
    UnsupportedVersion {
        /// The magic as text (`REDIS0099`).
        magic: String,
        /// The version number.
        version: u32,
    },
    /// A type byte or opcode that this magic and version do not define, or that no decoder can
    /// skip (Dragonfly's types 30-37, future types, module values of type 6).
    #[error("unknown or undecodable type/opcode {type_byte} at offset {offset}{}", Ctx(key, &None))]
    UnknownType {
        /// The type byte or opcode.
        type_byte: u8,
        /// Where it is.
        offset: u64,
        /// The key it belongs to, when the key was already read.
        key: Option<KeyName>,
    },
    /// The bytes violate the format.
    #[error("corrupt {what} at offset {offset}{}", Ctx(key, type_byte))]
    Corrupt {
        /// What was wrong.
        what: String,
        /// Where (for errors inside a compact blob: the offset of the blob's string).
        offset: u64,
        /// The value's type byte, when inside a value.
        type_byte: Option<u8>,
        /// The key, when inside a value.
        key: Option<KeyName>,
    },
    /// A length is larger than a configured limit (see [`crate::Options`]).
    #[error(
        "{what} of {len} bytes exceeds the limit {limit} at offset {offset}{}",
        Ctx(key, type_byte)
    )]
    LimitExceeded {
        /// What was too large.
        what: &'static str,
        /// The length found.
        len: u64,
        /// The limit.
        limit: u64,
        /// Where.
        offset: u64,
        /// The value's type byte, when inside a value.
        type_byte: Option<u8>,
        /// The key, when inside a value.
        key: Option<KeyName>,
    },
    /// The CRC-64 trailer does not match the bytes.
    #[error(
        "checksum mismatch at offset {offset}: stored {stored:#018x}, computed {computed:#018x}"
    )]
    ChecksumMismatch {
        /// The stored value.
        stored: u64,
        /// The value computed over the stream.
        computed: u64,
        /// Where the stored checksum starts.
        offset: u64,
    },
    /// The input ended inside the stream (reported by `finish`, the reader and the codec at EOF).
    #[error("truncated input: ended at offset {offset} while reading {what}{}", Ctx(key, &None))]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// How many bytes were consumed.
        offset: u64,
        /// The key being read, if any.
        key: Option<KeyName>,
    },
    /// A DUMP payload's footer is wrong (too short, bad CRC, version out of range).
    #[error("bad DUMP payload: {what}")]
    BadDumpPayload {
        /// What was wrong.
        what: String,
    },
    /// The decoder already failed; it does not resume after an error.
    #[error("decoder used after an error")]
    Poisoned,
    /// An I/O error of the reader adapter.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// A [`Error::Corrupt`] without key context.
    pub(crate) fn corrupt(what: impl Into<String>, offset: u64) -> Error {
        Error::Corrupt {
            what: what.into(),
            offset,
            type_byte: None,
            key: None,
        }
    }

    /// A [`Error::LimitExceeded`] without key context.
    pub(crate) fn limit(what: &'static str, len: u64, limit: u64, offset: u64) -> Error {
        Error::LimitExceeded {
            what,
            len,
            limit,
            offset,
            type_byte: None,
            key: None,
        }
    }

    /// Adds the key (and type byte) context to errors that carry it and do not have it yet.
    pub(crate) fn with_key(mut self, key: &[u8], tb: u8) -> Error {
        match &mut self {
            Error::Corrupt {
                type_byte, key: k, ..
            }
            | Error::LimitExceeded {
                type_byte, key: k, ..
            } => {
                if k.is_none() {
                    *k = Some(KeyName::new(key));
                }
                if type_byte.is_none() {
                    *type_byte = Some(tb);
                }
            }
            Error::UnknownType { key: k, .. } | Error::Truncated { key: k, .. } if k.is_none() => {
                *k = Some(KeyName::new(key));
            }
            _ => {}
        }
        self
    }

    /// The absolute byte offset the error refers to, when it has one.
    pub fn offset(&self) -> Option<u64> {
        match self {
            Error::BadMagic { .. } | Error::UnsupportedVersion { .. } => Some(0),
            Error::UnknownType { offset, .. }
            | Error::Corrupt { offset, .. }
            | Error::LimitExceeded { offset, .. }
            | Error::ChecksumMismatch { offset, .. }
            | Error::Truncated { offset, .. } => Some(*offset),
            _ => None,
        }
    }

    /// The key the error happened in, when known.
    pub fn key(&self) -> Option<&KeyName> {
        match self {
            Error::UnknownType { key, .. }
            | Error::Corrupt { key, .. }
            | Error::LimitExceeded { key, .. }
            | Error::Truncated { key, .. } => key.as_ref(),
            _ => None,
        }
    }
}
