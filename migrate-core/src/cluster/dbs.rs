//! Source dbs a cluster target cannot hold: one rule and one wording for the precheck
//! (`check`), `verify` and the migration's refusal at start.

use crate::Filter;

/// The source dbs whose keys would go (through the filter's db map) to a db the cluster
/// target lacks: it holds `held` dbs (1, or Valkey 9's `cluster-databases`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LackedDbs {
    pub(crate) held: u32,
    /// `(source db, target db, keys)`.
    pub(crate) bad: Vec<(u32, u32, u64)>,
}

impl LackedDbs {
    /// `dbs`: the source's `(db, keys)` with keys.
    pub(crate) fn find(
        held: u32,
        dbs: impl IntoIterator<Item = (u32, u64)>,
        filter: &Filter,
    ) -> LackedDbs {
        let held = held.max(1);
        let bad = dbs
            .into_iter()
            .filter(|&(_, keys)| keys > 0)
            .filter_map(|(db, keys)| {
                let to = filter.target_db(db)?;
                (to >= held).then_some((db, to, keys))
            })
            .collect();
        LackedDbs { held, bad }
    }

    /// Whether every source db fits.
    pub(crate) fn is_empty(&self) -> bool {
        self.bad.is_empty()
    }

    /// What the cluster holds: `db 0 only`, `dbs 0 to 3 (cluster-databases 4)`.
    pub(crate) fn holds(&self) -> String {
        if self.held == 1 {
            "db 0 only".to_string()
        } else {
            format!(
                "dbs 0 to {} (cluster-databases {})",
                self.held - 1,
                self.held
            )
        }
    }

    /// The offending dbs with their key counts (and where each is mapped).
    pub(crate) fn shown(&self) -> String {
        self.bad
            .iter()
            .map(|(db, to, n)| {
                if db == to {
                    format!("db {db} ({n} keys)")
                } else {
                    format!("db {db} ({n} keys, mapped to db {to})")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `--map-db N=0` for each offending db.
    pub(crate) fn map_flags(&self) -> String {
        self.flags(|db| format!("--map-db {db}=0"))
    }

    /// `--exclude-db N` for each offending db.
    pub(crate) fn exclude_flags(&self) -> String {
        self.flags(|db| format!("--exclude-db {db}"))
    }

    fn flags(&self, f: impl Fn(u32) -> String) -> String {
        self.bad
            .iter()
            .map(|&(db, _, _)| f(db))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_and_excluded_dbs_fit() {
        let all = Filter::default();
        let l = LackedDbs::find(1, [(0, 5), (2, 3), (5, 0)], &all);
        assert_eq!(l.bad, vec![(2, 2, 3)]);
        assert_eq!(l.holds(), "db 0 only");
        assert_eq!(l.shown(), "db 2 (3 keys)");
        assert_eq!(l.map_flags(), "--map-db 2=0");
        assert_eq!(l.exclude_flags(), "--exclude-db 2");
        let mapped = Filter::default().map_db(2, 0);
        assert!(LackedDbs::find(1, [(0, 5), (2, 3)], &mapped).is_empty());
        let l = LackedDbs::find(4, [(3, 1), (4, 2)], &all);
        assert_eq!(l.holds(), "dbs 0 to 3 (cluster-databases 4)");
        assert_eq!(l.bad, vec![(4, 4, 2)]);
    }
}
