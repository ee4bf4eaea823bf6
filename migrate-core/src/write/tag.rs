//! [`Tag`]: what the caller attaches to each command so its outcome can be reported.

use std::fmt;

use bytes::Bytes;

/// Longest key prefix shown in messages; longer keys are cut with `...`.
const SHOWN_KEY_LEN: usize = 128;

/// The caller's label for one command: where it goes, what it touches and where it came from.
///
/// The writer never looks inside the command's arguments to report on it: every
/// [`Outcome`](crate::Outcome) and error names the command by its tag, so reports carry the db,
/// the key and the command name, never values or credentials.
///
/// - `db`: the target db the command must run in; the writer inserts `SELECT` when the
///   connection is elsewhere. `None` for server-wide commands (`FLUSHALL`, `FUNCTION LOAD`,
///   `SCRIPT LOAD`) that run in whatever db is selected.
/// - `command`: the command name as it should appear in reports (`SET`, `RESTORE`).
/// - `key`: the key the command writes, when there is one (the first one for multi-key
///   commands).
/// - `seq`: the caller's sequence number: a source replication offset, a key counter. The
///   writer delivers outcomes in the order commands were sent, so the highest `seq` of an
///   unbroken run of [`Applied`](crate::Outcome::Applied) outcomes is an "applied up to" mark.
///
/// ```
/// use migrate_core::Tag;
///
/// let tag = Tag::new(Some(2), "SET", 4096).with_key("user:1");
/// assert_eq!(tag.to_string(), "SET \"user:1\" (db 2, seq 4096)");
/// let flush = Tag::new(None, "FLUSHALL", 4100);
/// assert_eq!(flush.to_string(), "FLUSHALL (seq 4100)");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Tag {
    /// The db the command runs in (`None`: any, no `SELECT` is inserted for it).
    pub db: Option<u32>,
    /// The command name, for reports.
    pub command: Bytes,
    /// The key written, if any.
    pub key: Option<Bytes>,
    /// The caller's sequence number or source offset.
    pub seq: u64,
}

impl Tag {
    /// A tag without a key.
    pub fn new(db: Option<u32>, command: impl Into<Bytes>, seq: u64) -> Tag {
        Tag {
            db,
            command: command.into(),
            key: None,
            seq,
        }
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Tag {
        self.key = Some(key.into());
        self
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.command))?;
        if let Some(key) = &self.key {
            f.write_str(" ")?;
            write_key(f, key)?;
        }
        match self.db {
            Some(db) => write!(f, " (db {db}, seq {})", self.seq),
            None => write!(f, " (seq {})", self.seq),
        }
    }
}

/// Writes a key quoted, with non-printable bytes escaped and long keys cut.
pub(crate) fn write_key(f: &mut fmt::Formatter<'_>, key: &[u8]) -> fmt::Result {
    f.write_str("\"")?;
    for &b in key.iter().take(SHOWN_KEY_LEN) {
        match b {
            b'"' => f.write_str("\\\"")?,
            b'\\' => f.write_str("\\\\")?,
            0x20..=0x7e => write!(f, "{}", b as char)?,
            _ => write!(f, "\\x{b:02x}")?,
        }
    }
    f.write_str("\"")?;
    if key.len() > SHOWN_KEY_LEN {
        write!(f, "... ({} bytes)", key.len())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_escapes_and_cuts() {
        let tag = Tag::new(Some(0), "HSET", 1).with_key(&b"a\"b\x00\xff"[..]);
        assert_eq!(tag.to_string(), r#"HSET "a\"b\x00\xff" (db 0, seq 1)"#);
        let long = Tag::new(Some(0), "SET", 1).with_key(vec![b'k'; 300]);
        let shown = long.to_string();
        assert!(shown.contains("... (300 bytes)"), "{shown}");
        assert!(shown.len() < 180);
    }
}
