//! `redis-migrate rdb ...`: offline work on RDB files, and what its subcommands share.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use clap::Subcommand;
use migrate_core::{ServerFamily, ServerVersion};
use rdb_parser::{Event, Family, Options, RdbReader};

use super::rdb_dump::DumpArgs;
use super::rdb_stats::StatsArgs;
use crate::error::CliError;

/// `rdb` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum RdbCommand {
    /// Write the keys of an RDB file as commands (RESP, loadable with `redis-cli --pipe`) or
    /// as JSON lines.
    Dump(DumpArgs),
    /// Print key counts per db and type, bytes per type and the biggest keys of an RDB file.
    Stats(StatsArgs),
}

impl RdbCommand {
    pub(crate) fn run(self) -> Result<(), CliError> {
        match self {
            RdbCommand::Dump(a) => a.run(),
            RdbCommand::Stats(a) => a.run(),
        }
    }
}

/// An RDB input: a file, or stdin for `-`.
pub(crate) struct Input {
    pub(crate) path: PathBuf,
    pub(crate) reader: RdbReader<Box<dyn Read>>,
}

impl Input {
    pub(crate) fn open(path: &Path, opts: Options) -> Result<Input, CliError> {
        let read: Box<dyn Read> = if path == Path::new("-") {
            Box::new(io::stdin().lock())
        } else {
            Box::new(File::open(path).map_err(|e| CliError::file(path, e))?)
        };
        Ok(Input {
            path: path.to_path_buf(),
            reader: RdbReader::new(read, opts),
        })
    }
}

/// Parses a target version: `7.0`, `6.2.14`, `redis-7.0`, `valkey-9.1` (also with `:`).
/// A bare version means Redis.
pub(crate) fn parse_version(s: &str) -> Result<ServerVersion, String> {
    let lower = s.trim().to_ascii_lowercase();
    let (family, rest) = if let Some(r) = lower
        .strip_prefix("valkey-")
        .or_else(|| lower.strip_prefix("valkey:"))
        .or_else(|| lower.strip_prefix("valkey"))
    {
        (ServerFamily::Valkey, r)
    } else if let Some(r) = lower
        .strip_prefix("redis-")
        .or_else(|| lower.strip_prefix("redis:"))
        .or_else(|| lower.strip_prefix("redis"))
    {
        (ServerFamily::Redis, r)
    } else {
        (ServerFamily::Redis, lower.as_str())
    };
    let parts: Vec<&str> = rest.split('.').collect();
    let num = |i: usize| -> Result<u16, String> {
        match parts.get(i) {
            None => Ok(0),
            Some(p) => p
                .parse()
                .map_err(|_| format!("bad version {s:?} (expected X.Y, redis-X.Y or valkey-X.Y)")),
        }
    };
    if parts.len() > 3 || rest.is_empty() {
        return Err(format!(
            "bad version {s:?} (expected X.Y, redis-X.Y or valkey-X.Y)"
        ));
    }
    Ok(ServerVersion::new(family, num(0)?, num(1)?, num(2)?))
}

/// The version that wrote a file, from its `valkey-ver` / `redis-ver` AUX fields and magic.
/// Test builds write `255.255.255` or `999.999.999`: those (and files without the field)
/// get the newest version of the family.
#[derive(Debug, Default)]
pub(crate) struct WriterVersion {
    family: Option<Family>,
    header: Option<rdb_parser::Header>,
    redis_ver: Option<String>,
    valkey_ver: Option<String>,
}

impl WriterVersion {
    pub(crate) fn observe(&mut self, ev: &Event) {
        match ev {
            Event::Header(h) => {
                self.family = Some(h.family);
                self.header = Some(*h);
            }
            Event::Aux(a) if &a.key[..] == b"redis-ver" => {
                self.redis_ver = Some(String::from_utf8_lossy(&a.value).into_owned())
            }
            Event::Aux(a) if &a.key[..] == b"valkey-ver" => {
                self.valkey_ver = Some(String::from_utf8_lossy(&a.value).into_owned())
            }
            _ => {}
        }
    }

    /// The stream's header, once seen.
    pub(crate) fn header(&self) -> Option<rdb_parser::Header> {
        self.header
    }

    pub(crate) fn version(&self) -> ServerVersion {
        let parse = |family: &str, v: &Option<String>| {
            v.as_deref()
                .and_then(|v| parse_version(&format!("{family}-{v}")).ok())
                .filter(|v| v.major < 100)
        };
        if let Some(v) = parse("valkey", &self.valkey_ver) {
            return v;
        }
        if self.family == Some(Family::Valkey) {
            return ServerVersion::new(ServerFamily::Valkey, 9, 0, 0);
        }
        parse("redis", &self.redis_ver).unwrap_or(ServerVersion::new(ServerFamily::Redis, 8, 0, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        let v = parse_version("7.0").unwrap();
        assert_eq!((v.family, v.major, v.minor), (ServerFamily::Redis, 7, 0));
        let v = parse_version("valkey-9.1").unwrap();
        assert_eq!((v.family, v.major, v.minor), (ServerFamily::Valkey, 9, 1));
        let v = parse_version("Redis:6.2.14").unwrap();
        assert_eq!((v.major, v.minor, v.patch), (6, 2, 14));
        assert!(parse_version("seven").is_err());
        assert!(parse_version("").is_err());
        assert!(parse_version("1.2.3.4").is_err());
    }
}
