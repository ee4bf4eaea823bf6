//! The checkpoint: where the target's data stands in the source's replication stream,
//! stored on the target in the same atomic unit as the data it describes.
//!
//! One string key per source shard, [`CHECKPOINT_KEY`] in db 0 (the reserved prefix
//! [`RESERVED_PREFIX`] is never copied, swept, or counted). Its value is one line of text:
//!
//! ```text
//! redis-migrate-checkpoint/1 incremental <replid> <offset> <db> <fingerprint> <source>
//! redis-migrate-checkpoint/1 fullsync <replid> <offset> 0 <fingerprint> <source>
//! ```
//!
//! - `fullsync`: written before the first key of a full sync; a restart that finds it knows
//!   the full sync was interrupted and heals with a new one (and a sweep of stale keys).
//! - `incremental`: the target holds exactly the source's state at `<offset>` (the RDB plus
//!   every replicated command up to that offset). Written at the end of a full sync, then as
//!   the last command of every `MULTI`/`EXEC` batch of replicated commands, so data and
//!   checkpoint change together: a crash of the tool, the link or the target (restarted from
//!   its own AOF or RDB) leaves them consistent, and the restart asks `PSYNC <replid>
//!   <offset+1>`: no write lost, none applied twice. `<db>` is the source db selected at
//!   `<offset>` (`+CONTINUE` does not re-send `SELECT`).
//! - `<fingerprint>` names the migration: the source address and the settings that change
//!   what is written (filter, db map, write mode). A checkpoint with another fingerprint is
//!   refused, never silently reused.
//!
//! A cluster source keeps one key per shard: [`CHECKPOINT_KEY`]`:<shard>` (`:s0`,
//! `:s5461`: the shard's lowest slot at discovery), its fingerprint naming the shard id
//! instead of a node address. A cluster target keeps, besides each such base key (there
//! the *floor*: every slot holds at least its position, written once a batch is applied),
//! one key per slot written, `<base key>{<tag of the slot>}`, set in each slot's
//! `MULTI`/`EXEC` of a batch; a resume skips the replicated commands each slot already
//! holds (see `cluster_sink`). The format stays the same.

use std::fmt;

use replication_client::{ReplId, ResumePoint};

use super::options::Settings;

/// Keys with this prefix belong to the migration itself: never copied, swept or counted.
pub const RESERVED_PREFIX: &[u8] = b"__redis-migrate:";

/// The checkpoint key of a migration from one standalone source (db 0 of the target).
pub const CHECKPOINT_KEY: &str = "__redis-migrate:checkpoint";

/// The shard id in a per-shard checkpoint key (`CHECKPOINT_KEY:<shard>`, or a cluster
/// target's per-slot copy `CHECKPOINT_KEY:<shard>{tag}`); `None` for other keys.
pub(crate) fn shard_of_key(key: &[u8]) -> Option<String> {
    let rest = key
        .strip_prefix(CHECKPOINT_KEY.as_bytes())?
        .strip_prefix(b":")?;
    let id = String::from_utf8_lossy(rest)
        .split('{')
        .next()
        .unwrap_or_default()
        .to_string();
    (!id.is_empty()).then_some(id)
}

const MAGIC: &str = "redis-migrate-checkpoint/1";

/// What the target holds, according to its checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CheckpointPhase {
    /// A full sync was started and has not ended.
    FullSync,
    /// Everything up to the offset is applied.
    Incremental,
}

/// A parsed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    pub(crate) phase: CheckpointPhase,
    pub(crate) point: ResumePoint,
    pub(crate) fingerprint: String,
    /// The source's address as it was given (redacted), for messages.
    pub(crate) source: String,
}

impl Checkpoint {
    /// The value stored on the target.
    pub(crate) fn encode(&self) -> String {
        let phase = match self.phase {
            CheckpointPhase::FullSync => "fullsync",
            CheckpointPhase::Incremental => "incremental",
        };
        format!(
            "{MAGIC} {phase} {} {} {} {} {}",
            self.point.replid.as_str(),
            self.point.offset,
            self.point.db,
            self.fingerprint,
            self.source
        )
    }

    /// Parses a stored value; `Err` names what is wrong.
    pub(crate) fn parse(value: &[u8]) -> Result<Checkpoint, String> {
        let text = std::str::from_utf8(value).map_err(|_| "not text".to_string())?;
        let mut w = text.split(' ');
        if w.next() != Some(MAGIC) {
            return Err(format!("not a checkpoint of this tool (expected {MAGIC})"));
        }
        let phase = match w.next() {
            Some("fullsync") => CheckpointPhase::FullSync,
            Some("incremental") => CheckpointPhase::Incremental,
            other => return Err(format!("unknown phase {other:?}")),
        };
        let replid = w
            .next()
            .and_then(|r| ReplId::from_bytes(r.as_bytes()))
            .ok_or("bad replication id")?;
        let offset = w.next().and_then(|o| o.parse().ok()).ok_or("bad offset")?;
        let db = w.next().and_then(|d| d.parse().ok()).ok_or("bad db")?;
        let fingerprint = w.next().ok_or("no fingerprint")?.to_string();
        let source = w.collect::<Vec<_>>().join(" ");
        Ok(Checkpoint {
            phase,
            point: ResumePoint { replid, offset, db },
            fingerprint,
            source,
        })
    }
}

/// FNV-1a, 64 bits: stable across builds and versions (the std hasher is not).
fn fnv64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The migration's name: the source address and what changes what is written.
pub(crate) fn fingerprint(source_addr: &str, s: &Settings) -> String {
    let text = format!(
        "source={source_addr} filter={:?} mode={:?}",
        s.filter, s.write_mode
    );
    format!("{:016x}", fnv64(text.as_bytes()))
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match self.phase {
            CheckpointPhase::FullSync => "an interrupted full sync",
            CheckpointPhase::Incremental => "offset",
        };
        match self.phase {
            CheckpointPhase::FullSync => write!(f, "{phase} from {}", self.source),
            CheckpointPhase::Incremental => write!(
                f,
                "{phase} {} of {} (replid {})",
                self.point.offset,
                self.source,
                self.point.replid.as_str()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_parse_roundtrip_and_errors() {
        let c = Checkpoint {
            phase: CheckpointPhase::Incremental,
            point: ResumePoint {
                replid: ReplId::from_bytes(b"0123456789abcdef0123456789abcdef01234567").unwrap(),
                offset: 12345,
                db: 3,
            },
            fingerprint: "00ff00ff00ff00ff".into(),
            source: "redis://127.0.0.1:6379".into(),
        };
        let text = c.encode();
        assert!(text.starts_with("redis-migrate-checkpoint/1 incremental 0123"));
        assert_eq!(Checkpoint::parse(text.as_bytes()).unwrap(), c);
        let full = Checkpoint {
            phase: CheckpointPhase::FullSync,
            ..c.clone()
        };
        assert_eq!(Checkpoint::parse(full.encode().as_bytes()).unwrap(), full);
        for bad in [
            &b""[..],
            b"other 1 2",
            b"redis-migrate-checkpoint/1 sleeping x 1 0 f s",
            b"redis-migrate-checkpoint/1 incremental short 1 0 f s",
            b"redis-migrate-checkpoint/1 incremental 0123456789abcdef0123456789abcdef01234567 -1 0 f s",
            b"\xff\xfe",
        ] {
            assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn fingerprint_follows_the_settings() {
        let s = Settings::default();
        let a = fingerprint("127.0.0.1:1", &s);
        assert_eq!(a, fingerprint("127.0.0.1:1", &s));
        assert_ne!(a, fingerprint("127.0.0.1:2", &s));
        let mut other = Settings::default();
        other.filter = other.filter.exclude_db(3);
        assert_ne!(a, fingerprint("127.0.0.1:1", &other));
        assert_eq!(fnv64(b"a"), 0xaf63dc4c8601ec8c);
    }
}
