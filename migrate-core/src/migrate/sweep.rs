//! The sweep after a healing full sync: keys left on the target by an earlier attempt
//! (an interrupted full sync, or data from before a refused partial resync) that are not in
//! the new snapshot are removed, so the target ends equal to the source. Only keys inside
//! the migration's scope (the dbs the filter writes, keys the filter accepts) are looked at,
//! and never the reserved keys of the migration itself.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use bytes::Bytes;
use resp_codec::Frame;

use super::apply::Applier;
use super::checkpoint::RESERVED_PREFIX;
use super::conn::Stream;
use super::MigrationError;
use crate::{Filter, Tag, Target};

/// The keys of one snapshot, as 128-bit hashes of (target db, key): 16 bytes a key plus the
/// set's overhead (about 35 MB for a million keys), with a collision chance far below a
/// disk's error rate.
#[derive(Default)]
pub(crate) struct KeySet(HashSet<u128>);

fn hash(db: u32, key: &[u8]) -> u128 {
    let half = |salt: u8| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut h);
        db.hash(&mut h);
        key.hash(&mut h);
        h.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

impl KeySet {
    pub(crate) fn insert(&mut self, db: u32, key: &[u8]) {
        self.0.insert(hash(db, key));
    }

    pub(crate) fn contains(&self, db: u32, key: &[u8]) -> bool {
        self.0.contains(&hash(db, key))
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// Removes, through the applier (so in order before any replicated command), every key of
/// the scope that the snapshot does not hold; `scan` is a separate connection. Returns how
/// many keys were removed. `slots`: the snapshot is one shard of a cluster source, which
/// only speaks for the keys of these slots (the other shards' keys are left alone).
pub(crate) async fn sweep(
    scan: &mut Target<Stream>,
    keys: &KeySet,
    filter: &Filter,
    slots: Option<&[std::ops::RangeInclusive<u16>]>,
    unlink: bool,
    ap: &mut Applier,
) -> Result<u64, MigrationError> {
    let url = ap.report.target.clone();
    let err = |source| MigrationError::Target {
        url: url.clone(),
        source: Box::new(source),
    };
    if filter.has_transform() {
        // Target keys cannot be traced back to source keys through a transform, so the
        // sweep cannot tell which are the migration's: it removes nothing.
        let why = "healing full sync: stale keys were not swept (a key transform is set, so the \
                   tool cannot tell which target keys are its own)";
        tracing::warn!(target: "migrate", "{why}");
        ap.report.warnings.push(why.to_string());
        return Ok(0);
    }
    let del: &'static str = if unlink { "UNLINK" } else { "DEL" };
    let mut removed = 0;
    for db in filter.target_dbs(0..256) {
        let reply = scan
            .call(&["SELECT".as_bytes(), db.to_string().as_bytes()])
            .await
            .map_err(err)?;
        if reply.is_error() {
            // The target has fewer dbs: nothing can be there.
            continue;
        }
        let mut cursor = Bytes::from_static(b"0");
        loop {
            let reply = scan
                .call(&[&b"SCAN"[..], &cursor, b"COUNT", b"1000"])
                .await
                .map_err(err)?;
            let (next, batch) = match reply.as_slice() {
                Some([c, Frame::Array(batch)]) => (c.as_bytes().map(Bytes::copy_from_slice), batch),
                _ => (None, &Vec::new()),
            };
            let Some(next) = next else {
                return Err(MigrationError::Internal(format!(
                    "unexpected SCAN reply from the target: {reply:?}"
                )));
            };
            for key in batch.iter().filter_map(Frame::as_bytes) {
                if key.starts_with(RESERVED_PREFIX)
                    || !filter.accepts_key(key)
                    || slots.is_some_and(|s| {
                        let slot = crate::key_slot(key);
                        !s.iter().any(|r| r.contains(&slot))
                    })
                    || keys.contains(db, key)
                {
                    continue;
                }
                let key = Bytes::copy_from_slice(key);
                let tag = Tag::new(Some(db), del, ap.next_seq()).with_key(key.clone());
                ap.send(tag, &[Bytes::from_static(del.as_bytes()), key])
                    .await?;
                removed += 1;
            }
            if &next[..] == b"0" {
                break;
            }
            cursor = next;
        }
    }
    ap.flush().await?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_set_is_per_db() {
        let mut k = KeySet::default();
        k.insert(0, b"a");
        assert!(k.contains(0, b"a"));
        assert!(!k.contains(1, b"a"));
        assert!(!k.contains(0, b"b"));
        assert_eq!(k.len(), 1);
    }
}
