//! DUMP payloads into the full sync's per-key planner: each payload becomes the RDB record
//! it would have been in a snapshot (`SELECTDB`, `EXPIRETIME_MS`, type byte, key, value)
//! behind a header of the payload's own RDB version and family, and is fed to a
//! [`FullSync`]. So a key is written exactly as a full sync writes it: `RESTORE` with the
//! footer set to the target's version when the target knows the type byte (and the source
//! family's type table agrees for bytes 22+), the rewrite module's commands otherwise;
//! filters, db map, conflict policy, expired keys and unsupported modules alike.

use bytes::{Bytes, BytesMut};

use super::super::apply::Applier;
use super::super::fullsync::{FullSync, FullSyncConfig};
use super::super::side::SideConn;
use super::super::MigrationError;

/// `SELECTDB` and `EXPIRETIME_MS` opcodes.
const SELECTDB: u8 = 0xFE;
const EXPIRETIME_MS: u8 = 0xFC;
/// Redis 8.6 `KEY_META`: metadata before the type byte.
const KEY_META: u8 = 243;

/// RDB length encoding.
fn put_len(out: &mut BytesMut, n: u64) {
    if n < 1 << 6 {
        out.extend_from_slice(&[n as u8]);
    } else if n < 1 << 14 {
        out.extend_from_slice(&[0x40 | (n >> 8) as u8, n as u8]);
    } else if n <= u64::from(u32::MAX) {
        out.extend_from_slice(&[0x80]);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.extend_from_slice(&[0x81]);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// The RDB header of a payload's version: `REDIS%04d`, or `VALKEY%03d` from 80 up.
fn header(version: u16) -> Vec<u8> {
    if version >= rdb_parser::dump::VALKEY_FIRST_VERSION {
        format!("VALKEY{version:03}").into_bytes()
    } else {
        format!("REDIS{version:04}").into_bytes()
    }
}

/// One planner (one conflict policy) for DUMP payloads.
pub(crate) struct Sink {
    cfg: FullSyncConfig,
    fs: Option<FullSync>,
    version: u16,
    db: Option<u32>,
    exists: Option<SideConn>,
}

/// What became of one key.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fed {
    /// Sent to the target (its outcome is counted by the applier).
    Sent,
    /// Skipped (expired, filtered, existing, unsupported: counted in the report).
    Skipped,
}

impl Sink {
    pub(crate) fn new(cfg: FullSyncConfig, exists: Option<SideConn>) -> Sink {
        Sink {
            cfg,
            fs: None,
            version: 0,
            db: None,
            exists,
        }
    }

    /// Writes key `key` of source db `db` from its DUMP `payload`, expiring at
    /// `expire_at_ms` (absolute, from `PTTL` at read time).
    pub(crate) async fn key(
        &mut self,
        db: u32,
        key: &Bytes,
        payload: &[u8],
        expire_at_ms: Option<i64>,
        ap: &mut Applier,
    ) -> Result<Fed, MigrationError> {
        let p = match rdb_parser::dump::split(payload, true) {
            Ok(p) => p,
            Err(e) => {
                ap.unsupported("DUMP".into(), Some(key.clone()), e.to_string())?;
                return Ok(Fed::Skipped);
            }
        };
        if p.type_byte() == KEY_META {
            ap.unsupported(
                "DUMP".into(),
                Some(key.clone()),
                "payloads with key metadata (Redis 8.6 KEY_META) cannot be read in scan mode"
                    .into(),
            )?;
            return Ok(Fed::Skipped);
        }
        if self.fs.is_none() || self.version != p.version {
            let exists = self.fs.take().and_then(FullSync::into_exists);
            let exists = exists.or_else(|| self.exists.take());
            let mut fs = FullSync::new(self.cfg.clone(), exists);
            fs.feed(&header(p.version), ap).await?;
            self.fs = Some(fs);
            self.version = p.version;
            self.db = None;
        }
        let mut rec = BytesMut::with_capacity(payload.len() + key.len() + 24);
        if self.db != Some(db) {
            rec.extend_from_slice(&[SELECTDB]);
            put_len(&mut rec, u64::from(db));
            self.db = Some(db);
        }
        if let Some(at) = expire_at_ms {
            rec.extend_from_slice(&[EXPIRETIME_MS]);
            rec.extend_from_slice(&at.to_le_bytes());
        }
        rec.extend_from_slice(&p.value[..1]);
        put_len(&mut rec, key.len() as u64);
        rec.extend_from_slice(key);
        rec.extend_from_slice(&p.value[1..]);
        let fs = self.fs.as_mut().expect("set above");
        let before = fs.keys_sent();
        fs.feed(&rec, ap).await?;
        Ok(if fs.keys_sent() > before {
            Fed::Sent
        } else {
            Fed::Skipped
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_headers() {
        let mut b = BytesMut::new();
        put_len(&mut b, 5);
        put_len(&mut b, 300);
        put_len(&mut b, 70_000);
        assert_eq!(&b[..], &[5, 0x41, 0x2c, 0x80, 0, 1, 0x11, 0x70]);
        assert_eq!(header(10), b"REDIS0010");
        assert_eq!(header(80), b"VALKEY080");
    }
}
