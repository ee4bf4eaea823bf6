//! [`Keyspace`]: key counts per db from `INFO keyspace`.

use std::collections::BTreeMap;

/// Key counts of one db.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct DbKeys {
    /// Number of keys (`DBSIZE`).
    pub keys: u64,
    /// Keys with an expiry.
    pub expires: u64,
}

/// The non-empty dbs of a server, as `INFO keyspace` lists them (`db0:keys=1,expires=0,...`).
///
/// ```
/// use migrate_core::Keyspace;
///
/// let ks = Keyspace::from_info("# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=0\r\ndb5:keys=7,expires=0,avg_ttl=0\r\n");
/// assert_eq!(ks.keys(0), 3);
/// assert_eq!(ks.keys(1), 0);
/// assert_eq!(ks.non_empty([0, 1, 2]), vec![(0, 3)]);
/// assert_eq!(ks.total_keys(), 10);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keyspace {
    /// Non-empty dbs.
    pub dbs: BTreeMap<u32, DbKeys>,
}

impl Keyspace {
    /// Parses the text of `INFO keyspace`; lines it does not understand are skipped.
    pub fn from_info(info: &str) -> Keyspace {
        let mut dbs = BTreeMap::new();
        for line in info.lines() {
            let Some((name, fields)) = line.trim().split_once(':') else {
                continue;
            };
            let Some(db) = name.strip_prefix("db").and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let mut entry = DbKeys::default();
            for field in fields.split(',') {
                match field.split_once('=') {
                    Some(("keys", v)) => entry.keys = v.parse().unwrap_or(0),
                    Some(("expires", v)) => entry.expires = v.parse().unwrap_or(0),
                    _ => {}
                }
            }
            if entry.keys > 0 {
                dbs.insert(db, entry);
            }
        }
        Keyspace { dbs }
    }

    /// Keys in `db` (0 when it is not listed).
    pub fn keys(&self, db: u32) -> u64 {
        self.dbs.get(&db).map_or(0, |d| d.keys)
    }

    /// Keys in all dbs.
    pub fn total_keys(&self) -> u64 {
        self.dbs.values().map(|d| d.keys).sum()
    }

    /// The dbs among `dbs` that hold keys, with their key counts.
    pub fn non_empty(&self, dbs: impl IntoIterator<Item = u32>) -> Vec<(u32, u64)> {
        let mut out: Vec<(u32, u64)> = dbs
            .into_iter()
            .map(|db| (db, self.keys(db)))
            .filter(|&(_, n)| n > 0)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}
