//! [`VerifyReport`] and its [`Difference`]s.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

/// What kind of difference a key (or function library) shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DiffKind {
    /// On the source, not on the target.
    Missing,
    /// On the target, not on the source.
    Extra,
    /// Of another type on each side.
    Type,
    /// Same type, another value.
    Value,
    /// Same value, another expiry (beyond the tolerance), or another field expiry.
    Ttl,
}

impl DiffKind {
    /// Every kind, in report order.
    pub const ALL: [DiffKind; 5] = [
        DiffKind::Missing,
        DiffKind::Extra,
        DiffKind::Type,
        DiffKind::Value,
        DiffKind::Ttl,
    ];

    /// `missing`, `extra`, `type`, `value` or `ttl`.
    pub fn as_str(self) -> &'static str {
        match self {
            DiffKind::Missing => "missing",
            DiffKind::Extra => "extra",
            DiffKind::Type => "type",
            DiffKind::Value => "value",
            DiffKind::Ttl => "ttl",
        }
    }
}

impl fmt::Display for DiffKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One difference that persisted through every round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The source db (`None` for a function library). For an extra key, the source db its
    /// target db is mapped from (the lowest one when several are).
    pub db: Option<u32>,
    /// The target db compared with it (`None` for a function library).
    pub target_db: Option<u32>,
    /// The key (or the function library's name).
    pub key: Bytes,
    /// What kind of difference.
    pub kind: DiffKind,
    /// What differs, in a few words; values appear only as short prefixes.
    pub detail: String,
}

impl Difference {
    /// Whether this is about a function library rather than a key.
    pub fn is_function(&self) -> bool {
        self.db.is_none()
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.db, self.target_db) {
            (Some(s), Some(t)) if s != t => write!(f, "db {s}->{t} ")?,
            (Some(s), _) => write!(f, "db {s} ")?,
            _ => f.write_str("function library ")?,
        }
        write!(
            f,
            "{}: {}: {}",
            quoted(&self.key),
            self.kind.as_str(),
            self.detail
        )
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Source keys compared in the first pass (after filters and sampling).
    pub keys_compared: u64,
    /// Target keys looked at for extras in the first pass (after filters and sampling).
    pub target_keys_scanned: u64,
    /// Function libraries compared (both sides' names together, once each).
    pub libraries_compared: u64,
    /// Differences found by the first pass, before the re-check rounds.
    pub first_pass_differences: u64,
    /// Passes made: the first one plus the re-check rounds that ran (they stop early when
    /// nothing is left to re-check).
    pub rounds: u32,
    /// Differences that persisted, by kind (all of them, even beyond
    /// [`differences`](Self::differences)'s cap).
    pub missing: u64,
    /// See [`missing`](Self::missing).
    pub extra: u64,
    /// See [`missing`](Self::missing).
    pub type_mismatch: u64,
    /// See [`missing`](Self::missing).
    pub value: u64,
    /// See [`missing`](Self::missing).
    pub ttl: u64,
    /// The persisting differences, in (db, key) order, up to
    /// [`VerifyOptions::max_listed`](super::VerifyOptions::max_listed).
    pub differences: Vec<Difference>,
    /// Whether hash field TTLs were compared (both sides have them).
    pub field_ttls_compared: bool,
    /// The sampled fraction of keys (1.0: all).
    pub sample: f64,
    /// The source's family and version.
    pub source_version: String,
    /// The target's family and version.
    pub target_version: String,
    /// The source's masters when it is a cluster (`None`: a standalone server).
    pub source_masters: Option<usize>,
    /// The target's masters when it is a cluster (`None`: a standalone server).
    pub target_masters: Option<usize>,
    /// Commands sent to the source.
    pub source_commands: u64,
    /// Commands sent to the target.
    pub target_commands: u64,
    /// Wall time.
    pub duration: Duration,
}

impl VerifyReport {
    /// Persisting differences of all kinds.
    pub fn differences_total(&self) -> u64 {
        self.missing + self.extra + self.type_mismatch + self.value + self.ttl
    }

    /// Whether the target equals the source (within the TTL tolerance).
    pub fn is_equal(&self) -> bool {
        self.differences_total() == 0
    }

    /// The count of one kind.
    pub fn count(&self, kind: DiffKind) -> u64 {
        match kind {
            DiffKind::Missing => self.missing,
            DiffKind::Extra => self.extra,
            DiffKind::Type => self.type_mismatch,
            DiffKind::Value => self.value,
            DiffKind::Ttl => self.ttl,
        }
    }

    pub(crate) fn add(&mut self, d: Difference, max_listed: usize) {
        match d.kind {
            DiffKind::Missing => self.missing += 1,
            DiffKind::Extra => self.extra += 1,
            DiffKind::Type => self.type_mismatch += 1,
            DiffKind::Value => self.value += 1,
            DiffKind::Ttl => self.ttl += 1,
        }
        if self.differences.len() < max_listed {
            self.differences.push(d);
        }
    }

    /// One line: keys compared, differences per kind, rounds.
    pub fn summary(&self) -> String {
        let kinds: Vec<String> = DiffKind::ALL
            .iter()
            .map(|&k| format!("{} {}", self.count(k), k.as_str()))
            .collect();
        let sample = if self.sample < 1.0 {
            format!(" (sample {})", self.sample)
        } else {
            String::new()
        };
        format!(
            "{}: {} keys compared{sample}, {} target keys scanned, {} function libraries; {} differences ({}); {} rounds, {} in the first pass; {:.2} s",
            if self.is_equal() { "equal" } else { "different" },
            self.keys_compared,
            self.target_keys_scanned,
            self.libraries_compared,
            self.differences_total(),
            kinds.join(", "),
            self.rounds,
            self.first_pass_differences,
            self.duration.as_secs_f64()
        )
    }

    /// The report as a JSON object (stable field names; keys as text with `\xNN` escapes
    /// for bytes outside printable ASCII).
    pub fn to_json(&self) -> String {
        let diffs: Vec<String> = self
            .differences
            .iter()
            .map(|d| {
                let db = |x: Option<u32>| x.map_or("null".into(), |v| v.to_string());
                format!(
                    "{{\"db\": {}, \"target_db\": {}, \"key\": {}, \"kind\": \"{}\", \"detail\": {}}}",
                    db(d.db),
                    db(d.target_db),
                    json_str(&key_text(&d.key)),
                    d.kind.as_str(),
                    json_str(&d.detail)
                )
            })
            .collect();
        let list = if diffs.is_empty() {
            "[]".to_string()
        } else {
            format!("[\n    {}\n  ]", diffs.join(",\n    "))
        };
        format!(
            "{{\n  \"result\": \"{}\",\n  \"keys_compared\": {},\n  \"target_keys_scanned\": {},\n  \"libraries_compared\": {},\n  \"differences_total\": {},\n  \"by_kind\": {{\"missing\": {}, \"extra\": {}, \"type\": {}, \"value\": {}, \"ttl\": {}}},\n  \"first_pass_differences\": {},\n  \"rounds\": {},\n  \"field_ttls_compared\": {},\n  \"sample\": {},\n  \"source_version\": {},\n  \"target_version\": {},\n  \"source_masters\": {},\n  \"target_masters\": {},\n  \"source_commands\": {},\n  \"target_commands\": {},\n  \"duration_ms\": {},\n  \"differences\": {list}\n}}",
            if self.is_equal() { "equal" } else { "different" },
            self.keys_compared,
            self.target_keys_scanned,
            self.libraries_compared,
            self.differences_total(),
            self.missing,
            self.extra,
            self.type_mismatch,
            self.value,
            self.ttl,
            self.first_pass_differences,
            self.rounds,
            self.field_ttls_compared,
            self.sample,
            json_str(&self.source_version),
            json_str(&self.target_version),
            masters(self.source_masters),
            masters(self.target_masters),
            self.source_commands,
            self.target_commands,
            self.duration.as_millis(),
        )
    }
}

/// A side's masters in JSON: a number, or `null` for a standalone server.
fn masters(n: Option<usize>) -> String {
    n.map_or("null".into(), |n| n.to_string())
}

/// The migration report's text forms, shared.
pub(crate) use crate::migrate::{json_str, key_text};

/// A key or value prefix in double quotes (`"` escaped), cut after 128 bytes.
pub(crate) fn quoted(key: &[u8]) -> String {
    format!("\"{}\"", key_text(key).replace('"', "\\\""))
}

/// At most the first 24 bytes of a value, quoted; `...` when cut.
pub(crate) fn prefix(value: &[u8]) -> String {
    const SHOWN: usize = 24;
    if value.len() <= SHOWN {
        quoted(value)
    } else {
        format!("{}...", quoted(&value[..SHOWN]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_keys_and_prefixes() {
        assert_eq!(key_text(b"a\x00b\\"), "a\\x00b\\\\");
        assert_eq!(prefix(b"short"), "\"short\"");
        let long = vec![b'x'; 100];
        assert!(prefix(&long).ends_with("\"..."));
        assert!(prefix(&long).len() < 40);
        assert_eq!(json_str("a\"b\n"), "\"a\\\"b\\n\"");
    }

    #[test]
    fn counts_and_json() {
        let mut r = VerifyReport {
            sample: 1.0,
            ..VerifyReport::default()
        };
        assert!(r.is_equal());
        r.add(
            Difference {
                db: Some(1),
                target_db: Some(4),
                key: Bytes::from_static(b"k\"1"),
                kind: DiffKind::Ttl,
                detail: "expiry in 10 ms vs none".into(),
            },
            0,
        );
        assert_eq!(r.ttl, 1);
        assert!(r.differences.is_empty());
        assert!(!r.is_equal());
        assert!(r.to_json().contains("\"ttl\": 1"));
        assert!(r.summary().starts_with("different: "));
        let d = Difference {
            db: Some(1),
            target_db: Some(4),
            key: Bytes::from_static(b"k"),
            kind: DiffKind::Missing,
            detail: "not on the target".into(),
        };
        assert_eq!(d.to_string(), "db 1->4 \"k\": missing: not on the target");
    }
}
