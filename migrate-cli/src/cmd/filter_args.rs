//! The db and key filter flags shared by `rdb dump`, `import` and `sync`.

use clap::Args;
use migrate_core::Filter;

/// `--db`, `--exclude-db`, `--map-db`, `--key`, `--exclude-key`.
#[derive(Debug, Args)]
pub(crate) struct FilterArgs {
    /// Only these dbs (repeatable).
    #[arg(long = "db", value_name = "N")]
    dbs: Vec<u32>,
    /// Skip these dbs (repeatable).
    #[arg(long = "exclude-db", value_name = "N")]
    exclude_dbs: Vec<u32>,
    /// Write db FROM as db TO (repeatable), e.g. `--map-db 3=0`.
    #[arg(long = "map-db", value_name = "FROM=TO", value_parser = parse_map)]
    map_dbs: Vec<(u32, u32)>,
    /// Only keys matching this glob (Redis `KEYS` syntax; repeatable: any matches).
    #[arg(long = "key", value_name = "GLOB")]
    keys: Vec<String>,
    /// Skip keys matching this glob (repeatable).
    #[arg(long = "exclude-key", value_name = "GLOB")]
    exclude_keys: Vec<String>,
}

impl FilterArgs {
    /// The filter these flags describe.
    pub(crate) fn filter(&self) -> Filter {
        let mut f = Filter::new();
        for &db in &self.dbs {
            f = f.include_db(db);
        }
        for &db in &self.exclude_dbs {
            f = f.exclude_db(db);
        }
        for &(a, b) in &self.map_dbs {
            f = f.map_db(a, b);
        }
        for k in &self.keys {
            f = f.include_keys(k.as_bytes().to_vec());
        }
        for k in &self.exclude_keys {
            f = f.exclude_keys(k.as_bytes().to_vec());
        }
        f
    }
}

fn parse_map(s: &str) -> Result<(u32, u32), String> {
    let (a, b) = s
        .split_once('=')
        .ok_or_else(|| format!("expected FROM=TO, got {s:?}"))?;
    let num = |x: &str| {
        x.trim()
            .parse::<u32>()
            .map_err(|_| format!("bad db number {x:?}"))
    };
    Ok((num(a)?, num(b)?))
}
