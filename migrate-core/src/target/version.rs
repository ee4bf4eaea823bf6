use std::fmt;

/// Which server implementation answered `INFO server`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServerFamily {
    /// Redis (or a server that reports only `redis_version`).
    Redis,
    /// Valkey (`valkey_version` or `server_name:valkey`).
    Valkey,
    /// KeyDB (reports a Redis-compatible version).
    KeyDb,
    /// Dragonfly (`dragonfly_version`), which reports a Redis-compatible version.
    Dragonfly,
}

/// A server's family and version, with the capability questions the migration asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServerVersion {
    /// The implementation.
    pub family: ServerFamily,
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
    /// Patch version.
    pub patch: u16,
}

impl ServerVersion {
    /// A version from its parts.
    pub const fn new(family: ServerFamily, major: u16, minor: u16, patch: u16) -> Self {
        ServerVersion {
            family,
            major,
            minor,
            patch,
        }
    }

    /// Parses the text of `INFO server` (`field:value` lines). Returns `None` when no
    /// version field is present.
    pub fn from_info(info: &str) -> Option<ServerVersion> {
        let field = |name: &str| {
            info.lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.trim())
        };
        let (family, text) = if let Some(v) = field("valkey_version") {
            (ServerFamily::Valkey, v)
        } else if let Some(v) = field("dragonfly_version") {
            // Dragonfly reports `df-v1.x` here and a Redis-compatible `redis_version`.
            (ServerFamily::Dragonfly, field("redis_version").unwrap_or(v))
        } else if field("server_name") == Some("valkey") {
            (ServerFamily::Valkey, field("redis_version")?)
        } else if info.contains("keydb") || field("mvcc_depth").is_some() {
            (ServerFamily::KeyDb, field("redis_version")?)
        } else {
            (ServerFamily::Redis, field("redis_version")?)
        };
        let mut parts = text.split('.').map(|p| {
            p.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse::<u16>()
                .unwrap_or(0)
        });
        Some(ServerVersion::new(
            family,
            parts.next()?,
            parts.next().unwrap_or(0),
            parts.next().unwrap_or(0),
        ))
    }

    fn at_least(&self, major: u16, minor: u16) -> bool {
        (self.major, self.minor) >= (major, minor)
    }

    /// `true` for Valkey.
    pub fn is_valkey(&self) -> bool {
        self.family == ServerFamily::Valkey
    }

    /// The version an RDB file or DUMP payload written by this server carries; RESTORE
    /// refuses payloads whose footer version is above it.
    pub fn rdb_version(&self) -> u16 {
        if self.is_valkey() {
            return if self.major >= 9 { 80 } else { 11 };
        }
        match (self.major, self.minor) {
            (0..=2, _) | (3, 0..=1) => 6,
            (3, _) => 7,
            (4, _) => 8,
            (5..=6, _) => 9,
            (7, 0..=1) => 10,
            (7, 2..=3) => 11,
            (7, _) | (8, 0..=5) => 12,
            _ => 13,
        }
    }

    /// Whether a DUMP payload of this RDB type byte can be RESTOREd here (after its
    /// version footer is rewritten to [`ServerVersion::rdb_version`]). A server answers
    /// "Bad data format" for a type byte it does not know.
    pub fn knows_type(&self, type_byte: u8) -> bool {
        let rdb = self.rdb_version();
        let newest = match type_byte {
            0..=4 => 1,
            5 | 7 => 8,
            9..=12 => 2,
            13 => 4,
            14 => 7,
            15 => 9,
            16..=19 => 10,
            20 | 21 => 11,
            // Valkey 9: HASH_2 (field TTLs); Redis 7.4+: hash metadata types 22-25.
            22 if self.is_valkey() => return rdb >= 80,
            22..=25 => 12,
            26 => 13,
            _ => return false,
        };
        if self.is_valkey() && rdb >= 80 {
            // Valkey 9 knows everything Redis 7.2 wrote, plus HASH_2.
            return newest <= 11;
        }
        rdb >= newest
    }

    /// `RESTORE ... ABSTTL` (Redis 5.0+).
    pub fn has_restore_absttl(&self) -> bool {
        self.at_least(5, 0)
    }

    /// `RESTORE ... IDLETIME s FREQ f` (Redis 5.0+).
    pub fn has_restore_idletime_freq(&self) -> bool {
        self.at_least(5, 0)
    }

    /// `SET key value PXAT ms` / `EXAT` (Redis 6.2+).
    pub fn has_set_pxat(&self) -> bool {
        self.at_least(6, 2)
    }

    /// `FUNCTION LOAD` (Redis 7.0+, all Valkey).
    pub fn has_functions(&self) -> bool {
        self.at_least(7, 0)
    }

    /// `XSETID key id ENTRIESADDED n MAXDELETEDID id` and `XGROUP CREATE ... ENTRIESREAD n`
    /// (Redis 7.0+).
    pub fn has_stream_v2_metadata(&self) -> bool {
        self.at_least(7, 0)
    }

    /// Per-field hash TTLs: `HPEXPIREAT` (Redis 7.4+, Valkey 9.0+).
    pub fn has_hash_field_ttl(&self) -> bool {
        if self.is_valkey() {
            self.major >= 9
        } else {
            self.at_least(7, 4)
        }
    }

    /// `HSET key f v f v ...` with several pairs (Redis 4.0+; older targets need `HMSET`).
    pub fn has_variadic_hset(&self) -> bool {
        self.at_least(4, 0)
    }

    /// `SET ... KEEPTTL` (Redis 6.0+).
    pub fn has_set_keepttl(&self) -> bool {
        self.at_least(6, 0)
    }

    /// `LMOVE`, `COPY`, `XGROUP CREATECONSUMER` (Redis 6.2+).
    pub fn has_6_2_commands(&self) -> bool {
        self.at_least(6, 2)
    }

    /// `UNLINK` (Redis 4.0+).
    pub fn has_unlink(&self) -> bool {
        self.at_least(4, 0)
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.family {
            ServerFamily::Redis => "Redis",
            ServerFamily::Valkey => "Valkey",
            ServerFamily::KeyDb => "KeyDB",
            ServerFamily::Dragonfly => "Dragonfly",
        };
        write!(f, "{name} {}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ServerFamily::*;

    #[test]
    fn parses_info() {
        let redis = "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n";
        assert_eq!(
            ServerVersion::from_info(redis),
            Some(ServerVersion::new(Redis, 7, 0, 15))
        );
        let valkey =
            "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:9.1.2\r\n";
        assert_eq!(
            ServerVersion::from_info(valkey),
            Some(ServerVersion::new(Valkey, 9, 1, 2))
        );
        assert_eq!(ServerVersion::from_info("nothing:here"), None);
    }

    #[test]
    fn rdb_versions_and_types() {
        let r62 = ServerVersion::new(Redis, 6, 2, 5);
        let r70 = ServerVersion::new(Redis, 7, 0, 15);
        let v81 = ServerVersion::new(Valkey, 8, 1, 8);
        let v91 = ServerVersion::new(Valkey, 9, 1, 2);
        let r74 = ServerVersion::new(Redis, 7, 4, 0);
        assert_eq!(
            [r62, r70, v81, v91, r74].map(|v| v.rdb_version()),
            [9, 10, 11, 80, 12]
        );
        // Listpack hash (16) is new in RDB 10.
        assert!(!r62.knows_type(16) && r70.knows_type(16));
        // Set listpack (20) is new in RDB 11.
        assert!(!r70.knows_type(20) && v81.knows_type(20) && v91.knows_type(20));
        // Type 22 means different things in the two families.
        assert!(v91.knows_type(22) && !v81.knows_type(22));
        assert!(r74.knows_type(22) && r74.knows_type(25) && !v91.knows_type(24));
        assert!(!r62.knows_type(6) && !r62.knows_type(200));
    }
}
