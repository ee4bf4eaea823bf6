//! Which dbs and keys a migration copies, and where each db goes.
//!
//! - dbs: an allow-list (`--db`), a deny-list (`--exclude-db`, DigitalOcean's
//!   `ignore_dbs`), and a mapping (`--map-db 3=0`); an unmapped db keeps its number.
//! - keys: include globs (a key is copied when it matches any; none means all) and
//!   exclude globs (a key matching any is skipped), with Redis `KEYS` semantics.
//! - a key transform ([`Filter::transform`]): a function of the db and key that renames a
//!   key, moves it to another db, or drops it, for what globs cannot say.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::Glob;

/// What a [`Filter::transform`] does with one key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyAction {
    /// Copy it as it is.
    Keep,
    /// Copy it under another name and/or into another target db.
    Rename {
        /// The target db.
        db: u32,
        /// The new key.
        key: Bytes,
    },
    /// Do not copy it.
    Drop,
}

impl KeyAction {
    /// Copy the key under `key`, in the same db.
    pub fn rename(db: u32, key: impl Into<Bytes>) -> KeyAction {
        KeyAction::Rename {
            db,
            key: key.into(),
        }
    }
}

type TransformFn = dyn Fn(u32, &[u8]) -> KeyAction + Send + Sync;

/// A named key transform (the name is part of the migration's checkpoint fingerprint: a
/// changed transform is a new migration).
#[derive(Clone)]
struct Transform {
    name: String,
    f: Arc<TransformFn>,
}

impl fmt::Debug for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Transform({:?})", self.name)
    }
}

/// The filter applied to every key of the full sync and every command of the incremental
/// sync. The default copies everything to the same db.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    include_dbs: Option<BTreeSet<u32>>,
    exclude_dbs: BTreeSet<u32>,
    db_map: BTreeMap<u32, u32>,
    include_keys: Vec<Glob>,
    exclude_keys: Vec<Glob>,
    transform: Option<Transform>,
}

impl Filter {
    /// Copies everything.
    pub fn new() -> Filter {
        Filter::default()
    }

    /// Copies db `db` (once any db is included, only included dbs are copied).
    pub fn include_db(mut self, db: u32) -> Filter {
        self.include_dbs
            .get_or_insert_with(BTreeSet::new)
            .insert(db);
        self
    }

    /// Skips db `db`.
    pub fn exclude_db(mut self, db: u32) -> Filter {
        self.exclude_dbs.insert(db);
        self
    }

    /// Writes source db `from` into target db `to`.
    pub fn map_db(mut self, from: u32, to: u32) -> Filter {
        self.db_map.insert(from, to);
        self
    }

    /// Copies only keys matching `pattern` (or any other included pattern).
    pub fn include_keys(mut self, pattern: impl Into<Vec<u8>>) -> Filter {
        self.include_keys.push(Glob::new(pattern));
        self
    }

    /// Skips keys matching `pattern`.
    pub fn exclude_keys(mut self, pattern: impl Into<Vec<u8>>) -> Filter {
        self.exclude_keys.push(Glob::new(pattern));
        self
    }

    /// Applies `f` to every key that passes the db and key filters, after the db mapping:
    /// `f(target_db, key)` keeps, renames (or moves to another db), or drops the key. The
    /// same function is applied to full-sync keys and to every key of replicated commands,
    /// so a renamed key stays in sync; a multi-key command whose keys would land in
    /// different dbs, or partly be dropped, is refused as unsupported (`DEL`, `UNLINK`,
    /// `TOUCH`, `MSET`, `MSETNX` are narrowed instead). `name` identifies the transform in
    /// the checkpoint's fingerprint: change it when the function changes.
    ///
    /// ```
    /// use migrate_core::{Filter, KeyAction};
    ///
    /// // Copy the session:* keys as s2:*, nothing else.
    /// let filter = Filter::new().include_keys("session:*").transform("s2", |db, key| {
    ///     let mut renamed = b"s2:".to_vec();
    ///     renamed.extend_from_slice(&key[b"session:".len()..]);
    ///     KeyAction::rename(db, renamed)
    /// });
    /// assert_eq!(
    ///     filter.map_key(0, b"session:42").map(|(db, k)| (db, k.to_vec())),
    ///     Some((0, b"s2:42".to_vec()))
    /// );
    /// assert_eq!(filter.map_key(0, b"other"), None);
    /// ```
    pub fn transform(
        mut self,
        name: impl Into<String>,
        f: impl Fn(u32, &[u8]) -> KeyAction + Send + Sync + 'static,
    ) -> Filter {
        self.transform = Some(Transform {
            name: name.into(),
            f: Arc::new(f),
        });
        self
    }

    /// Whether a key transform is set.
    pub fn has_transform(&self) -> bool {
        self.transform.is_some()
    }

    /// Where source key `key` of source db `db` goes: the target db and the key's name
    /// there, or `None` when the filter or the transform drops it.
    pub fn map_key<'k>(&self, db: u32, key: &'k [u8]) -> Option<(u32, std::borrow::Cow<'k, [u8]>)> {
        let db = self.target_db(db)?;
        if !self.accepts_key(key) {
            return None;
        }
        match &self.transform {
            None => Some((db, std::borrow::Cow::Borrowed(key))),
            Some(t) => match (t.f)(db, key) {
                KeyAction::Keep => Some((db, std::borrow::Cow::Borrowed(key))),
                KeyAction::Rename { db, key } => Some((db, std::borrow::Cow::Owned(key.to_vec()))),
                KeyAction::Drop => None,
            },
        }
    }

    /// The target db for source db `db`, or `None` when the db is filtered out.
    pub fn target_db(&self, db: u32) -> Option<u32> {
        let included = self
            .include_dbs
            .as_ref()
            .is_none_or(|set| set.contains(&db));
        if !included || self.exclude_dbs.contains(&db) {
            return None;
        }
        Some(self.db_map.get(&db).copied().unwrap_or(db))
    }

    /// Whether `key` passes the key patterns.
    pub fn accepts_key(&self, key: &[u8]) -> bool {
        (self.include_keys.is_empty() || self.include_keys.iter().any(|g| g.matches(key)))
            && !self.exclude_keys.iter().any(|g| g.matches(key))
    }

    /// Whether the filter selects or renames keys by name (and so must look at every key
    /// of multi-key commands).
    pub fn filters_keys(&self) -> bool {
        !self.include_keys.is_empty() || !self.exclude_keys.is_empty() || self.transform.is_some()
    }

    /// Whether some db is skipped or mapped (so that `FLUSHALL` must be narrowed to the
    /// written dbs, and `SELECT`/`MOVE`/`COPY ... DB` rewritten).
    pub fn filters_dbs(&self) -> bool {
        self.include_dbs.is_some() || !self.exclude_dbs.is_empty() || !self.db_map.is_empty()
    }

    /// The target dbs written for the given source dbs, deduplicated and sorted.
    pub fn target_dbs(&self, source_dbs: impl IntoIterator<Item = u32>) -> Vec<u32> {
        let set: BTreeSet<u32> = source_dbs
            .into_iter()
            .filter_map(|db| self.target_db(db))
            .collect();
        set.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dbs() {
        let all = Filter::new();
        assert_eq!(all.target_db(5), Some(5));
        assert!(!all.filters_dbs());

        let f = Filter::new().exclude_db(1).map_db(2, 0);
        assert_eq!(f.target_db(0), Some(0));
        assert_eq!(f.target_db(1), None);
        assert_eq!(f.target_db(2), Some(0));
        assert_eq!(f.target_dbs(0..4), vec![0, 3]);

        let only = Filter::new().include_db(3).include_db(4).exclude_db(4);
        assert_eq!(only.target_db(3), Some(3));
        assert_eq!(only.target_db(4), None);
        assert_eq!(only.target_db(0), None);
    }

    #[test]
    fn keys() {
        let f = Filter::new()
            .include_keys("user:*")
            .include_keys("session:*")
            .exclude_keys("*:tmp");
        assert!(f.accepts_key(b"user:1"));
        assert!(f.accepts_key(b"session:9"));
        assert!(!f.accepts_key(b"user:1:tmp"));
        assert!(!f.accepts_key(b"other"));
        assert!(Filter::new().accepts_key(b"anything"));
        assert!(!Filter::new().exclude_keys("*").accepts_key(b"x"));
    }
}
