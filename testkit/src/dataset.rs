//! Deterministic mixed datasets written into a real server: every type, in both its
//! compact and its large encoding, with TTLs, across several dbs.
//!
//! [`Dataset::small`] is for correctness tests (a few hundred keys, every encoding);
//! [`Dataset::bench`] is the ~1.1M-key, ~300 MB dataset the benchmarks compare on.
//!
//! Two opt-in extras, for flavours that have them (they make the dataset unloadable on
//! others, so cross-version tests leave them off): [`Dataset::with_field_ttls`] gives half
//! of the hashes per-field TTLs in both encodings (Redis 7.4's listpack-ex and hash
//! table, Valkey 9's hash table; [`crate::Flavor::has_field_ttl`]), and
//! [`Dataset::with_modules`] adds RedisJSON, Bloom, cuckoo, count-min, Top-K, t-digest and
//! time series keys to every db ([`crate::Flavor::has_modules`]).

use std::io;

use crate::{Conn, Flavor, Reply, Server};

/// What to write. All fields are public so that tests can tune a preset.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Number of keys in all (spread round-robin over the dbs).
    pub keys: u64,
    /// Number of dbs used: 0..dbs.
    pub dbs: u32,
    /// Percentage of keys given a TTL (1 h to 10 h ahead, so none expires during a run).
    pub ttl_percent: u64,
    /// Every `big_every`-th collection key is large enough to need the non-compact
    /// encoding (quicklist with several nodes, hashtable, skiplist), and every
    /// `big_every`-th string is 100 KiB.
    pub big_every: u64,
    /// Elements in a large collection.
    pub big_len: usize,
    /// Elements in a small collection (at most; the actual count varies per key).
    pub small_len: usize,
    /// Whether streams (with consumer groups and pending entries) are included.
    pub streams: bool,
    /// Whether every other hash gets TTLs on some of its fields (`HPEXPIRE`; needs
    /// Redis 7.4+ or Valkey 9+).
    pub field_ttls: bool,
    /// Whether module keys are added to every db (needs Redis 7.4 with its modules).
    pub modules: bool,
    /// Whether hashes are written with `HMSET` (servers before Redis 4.0, whose `HSET`
    /// takes one field).
    pub hmset: bool,
    /// Seed of the value generator.
    pub seed: u64,
}

/// What [`Dataset::fill`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FillStats {
    /// Keys written.
    pub keys: u64,
    /// Keys given a TTL.
    pub with_ttl: u64,
    /// Hashes given field TTLs.
    pub with_field_ttl: u64,
    /// Module keys written (included in `keys`).
    pub module_keys: u64,
    /// Commands sent.
    pub commands: u64,
}

impl Dataset {
    /// A few hundred keys of every type and encoding in 3 dbs, 20% with TTL.
    pub fn small() -> Dataset {
        Dataset {
            keys: 600,
            dbs: 3,
            ttl_percent: 20,
            big_every: 7,
            big_len: 300,
            small_len: 12,
            streams: true,
            field_ttls: false,
            modules: false,
            hmset: false,
            seed: 1,
        }
    }

    /// [`Dataset::small`] as `flavor` can hold it: without streams before Redis 5.0,
    /// hashes by `HMSET` before 4.0, and, for the old source builds
    /// ([`Flavor::OLD_SOURCES`]), 300 keys instead of 600 (still every type and encoding
    /// the version has, TTLs, 3 dbs).
    pub fn small_for(flavor: Flavor) -> Dataset {
        Dataset {
            keys: if flavor.is_old_source() { 300 } else { 600 },
            streams: flavor.has_streams(),
            hmset: !flavor.has_variadic_hset(),
            ..Dataset::small()
        }
    }

    /// This dataset with field TTLs on every other hash ([`Dataset::field_ttls`]).
    pub fn with_field_ttls(mut self) -> Dataset {
        self.field_ttls = true;
        self
    }

    /// This dataset with module keys in every db ([`Dataset::modules`]).
    pub fn with_modules(mut self) -> Dataset {
        self.modules = true;
        self
    }

    /// The benchmark dataset: 1.1M keys of every type and encoding in 3 dbs, 22% with
    /// TTL, about 300 MB as an RDB file.
    pub fn bench() -> Dataset {
        Dataset {
            keys: 1_100_000,
            dbs: 3,
            ttl_percent: 22,
            big_every: 400,
            big_len: 300,
            small_len: 20,
            streams: true,
            field_ttls: false,
            modules: false,
            hmset: false,
            seed: 7,
        }
    }

    /// Writes the dataset into `server` (pipelined; every reply is checked).
    pub fn fill(&self, server: &Server) -> FillStats {
        let mut conn = server.connect();
        self.fill_conn(&mut conn)
            .unwrap_or_else(|e| panic!("filling {}: {e}", server.flavor()))
    }

    /// Writes the dataset through an open connection.
    pub fn fill_conn(&self, conn: &mut Conn) -> io::Result<FillStats> {
        let mut stats = FillStats::default();
        let mut pipe = Pipeline::new(conn);
        for db in 0..self.dbs {
            pipe.push(vec![b"SELECT".to_vec(), db.to_string().into_bytes()])?;
            let mut i = u64::from(db);
            while i < self.keys {
                let (with_ttl, field_ttl) = self.write_key(&mut pipe, i)?;
                stats.keys += 1;
                stats.with_ttl += u64::from(with_ttl);
                stats.with_field_ttl += u64::from(field_ttl);
                i += u64::from(self.dbs);
            }
            if self.modules {
                let (keys, with_ttl) = self.module_keys(&mut pipe, db)?;
                stats.keys += keys;
                stats.module_keys += keys;
                stats.with_ttl += with_ttl;
            }
        }
        pipe.flush()?;
        stats.commands = pipe.sent;
        Ok(stats)
    }

    fn write_key(&self, pipe: &mut Pipeline<'_>, i: u64) -> io::Result<(bool, bool)> {
        let mut rng = Rng::new(self.seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let big = self.big_every > 0 && (i / 20) % self.big_every == 0;
        let kind = match i % 20 {
            19 if !self.streams => 0,
            k => k,
        };
        let n = if big {
            self.big_len
        } else {
            1 + rng.below(self.small_len as u64) as usize
        };
        let prefix = match kind {
            0..=7 => "str",
            8..=10 => "list",
            11..=13 => "hash",
            14..=15 => "set",
            16..=17 => "zset",
            18 => "intset",
            _ => "stream",
        };
        let key = format!("{prefix}:{i:08}").into_bytes();
        let mut field_ttl = false;
        match kind {
            0..=7 => pipe.push(cmd(b"SET", &key, [self.string_value(&mut rng, i, big)]))?,
            8..=10 => pipe.push(cmd(b"RPUSH", &key, (0..n).map(|_| rng.text(8, 40))))?,
            11..=13 => {
                // A value longer than 64 bytes forces the hashtable encoding too.
                let long = !big && kind == 13 && i % 3 == 0;
                let mut args = Vec::with_capacity(2 * n);
                for j in 0..n {
                    args.push(format!("field:{j}").into_bytes());
                    args.push(if long {
                        rng.text(70, 90)
                    } else {
                        rng.text(4, 30)
                    });
                }
                let hset: &[u8] = if self.hmset { b"HMSET" } else { b"HSET" };
                pipe.push(cmd(hset, &key, args))?;
                if self.field_ttls && (i / 20) % 2 == 0 {
                    // Every third field (at least one) expires 1 h to 10 h ahead.
                    let ms = 3_600_000 + rng.below(9 * 3_600_000);
                    let fields: Vec<Vec<u8>> = (0..n)
                        .step_by(3)
                        .map(|j| format!("field:{j}").into_bytes())
                        .collect();
                    let mut args = vec![
                        ms.to_string().into_bytes(),
                        b"FIELDS".to_vec(),
                        fields.len().to_string().into_bytes(),
                    ];
                    args.extend(fields);
                    pipe.push(cmd(b"HPEXPIRE", &key, args))?;
                    field_ttl = true;
                }
            }
            14..=15 => pipe.push(cmd(b"SADD", &key, (0..n).map(|_| rng.text(6, 24))))?,
            16..=17 => {
                let mut args = Vec::with_capacity(2 * n);
                for j in 0..n {
                    let score = match j % 5 {
                        0 => (j as i64 - 5).to_string(),
                        1 => format!("{:.3}", rng.below(1_000_000) as f64 / 7.0),
                        2 if j == 2 => "inf".to_string(),
                        3 if j == 3 => "-inf".to_string(),
                        _ => format!("{}e-3", rng.below(999)),
                    };
                    args.push(score.into_bytes());
                    args.push(rng.text(6, 24));
                }
                pipe.push(cmd(b"ZADD", &key, args))?;
            }
            18 => {
                // Intsets of 16-, 32- and 64-bit members.
                let scale: i64 = match i % 3 {
                    0 => 3,
                    1 => 70_000,
                    _ => 4_000_000_007,
                };
                let members =
                    (0..n.max(2) as i64).map(|j| ((j - 3) * scale).to_string().into_bytes());
                pipe.push(cmd(b"SADD", &key, members))?;
            }
            _ => self.stream(pipe, &mut rng, &key, if big { n } else { n.min(20) }, i)?,
        }
        let with_ttl = rng.below(100) < self.ttl_percent;
        if with_ttl {
            let ms = 3_600_000 + rng.below(9 * 3_600_000);
            pipe.push(cmd(b"PEXPIRE", &key, [ms.to_string().into_bytes()]))?;
        }
        Ok((with_ttl, field_ttl))
    }

    /// One key of each module type (two JSON documents, two time series joined by a
    /// compaction rule) in `db`; returns (keys, keys with TTL).
    fn module_keys(&self, pipe: &mut Pipeline<'_>, db: u32) -> io::Result<(u64, u64)> {
        let mut rng = Rng::new(self.seed ^ 0x6d6f_6475_6c65 ^ u64::from(db));
        let k = |name: &str| format!("mod:{db}:{name}").into_bytes();
        let a = |s: &str| s.as_bytes().to_vec();
        let text = |rng: &mut Rng| {
            // JSON-safe printable text.
            (0..4 + rng.below(12))
                .map(|_| char::from(b'a' + rng.below(26) as u8))
                .collect::<String>()
        };
        let doc = format!(
            r#"{{"name":"{}","n":[1,2,{}],"nested":{{"ok":true,"f":1.5,"none":null}},"db":{db}}}"#,
            text(&mut rng),
            rng.below(1000)
        );
        pipe.push(cmd(b"JSON.SET", &k("json"), [a("$"), doc.into_bytes()]))?;
        let items: Vec<String> = (0..200)
            .map(|i| format!(r#"{{"i":{i},"s":"{}"}}"#, text(&mut rng)))
            .collect();
        let big = format!(r#"{{"items":[{}]}}"#, items.join(","));
        pipe.push(cmd(b"JSON.SET", &k("bigjson"), [a("$"), big.into_bytes()]))?;

        pipe.push(cmd(b"BF.RESERVE", &k("bloom"), [a("0.01"), a("1000")]))?;
        pipe.push(cmd(
            b"BF.MADD",
            &k("bloom"),
            (0..100).map(|i| format!("item{i}").into_bytes()),
        ))?;
        pipe.push(cmd(b"CF.RESERVE", &k("cuckoo"), [a("1000")]))?;
        for i in 0..50 {
            pipe.push(cmd(
                b"CF.ADD",
                &k("cuckoo"),
                [format!("item{i}").into_bytes()],
            ))?;
        }
        pipe.push(cmd(b"CMS.INITBYDIM", &k("cms"), [a("200"), a("5")]))?;
        pipe.push(cmd(
            b"CMS.INCRBY",
            &k("cms"),
            (0..20).flat_map(|i| {
                [
                    format!("e{i}").into_bytes(),
                    (1 + i).to_string().into_bytes(),
                ]
            }),
        ))?;
        pipe.push(cmd(
            b"TOPK.RESERVE",
            &k("topk"),
            [a("5"), a("50"), a("4"), a("0.9")],
        ))?;
        pipe.push(cmd(
            b"TOPK.ADD",
            &k("topk"),
            (0..60).map(|i| format!("t{}", (i * i) % 7).into_bytes()),
        ))?;
        pipe.push(cmd(
            b"TDIGEST.CREATE",
            &k("tdigest"),
            [a("COMPRESSION"), a("100")],
        ))?;
        pipe.push(cmd(
            b"TDIGEST.ADD",
            &k("tdigest"),
            (0..100).map(|_| format!("{}.25", rng.below(1000)).into_bytes()),
        ))?;

        let ts = k("ts");
        let avg = k("ts:avg");
        pipe.push(cmd(
            b"TS.CREATE",
            &ts,
            [
                "RETENTION",
                "0",
                "DUPLICATE_POLICY",
                "LAST",
                "LABELS",
                "sensor",
                "t1",
                "db",
            ]
            .map(a)
            .into_iter()
            .chain([db.to_string().into_bytes()]),
        ))?;
        pipe.push(cmd(b"TS.CREATE", &avg, ["LABELS", "kind", "avg"].map(a)))?;
        pipe.push(cmd(
            b"TS.CREATERULE",
            &ts,
            [avg.clone(), a("AGGREGATION"), a("avg"), a("60000")],
        ))?;
        let base: u64 = 1_600_000_000_000;
        for j in 0..300u64 {
            pipe.push(cmd(
                b"TS.ADD",
                &ts,
                [
                    (base + j * 1000).to_string().into_bytes(),
                    format!("{}.5", rng.below(100)).into_bytes(),
                ],
            ))?;
        }
        // TTLs on two of them.
        for name in ["json", "bloom"] {
            pipe.push(cmd(b"PEXPIRE", &k(name), [a("36000000")]))?;
        }
        Ok((9, 2))
    }

    fn string_value(&self, rng: &mut Rng, i: u64, big: bool) -> Vec<u8> {
        if big {
            // Compressible: LZF in the RDB file.
            return b"0123456789abcdef".repeat(6400);
        }
        match i % 8 {
            0 => (rng.below(1 << 40) as i64 - (1 << 39))
                .to_string()
                .into_bytes(),
            1 => rng.below(10_000).to_string().into_bytes(),
            2 => b"compressible-".repeat(3 + rng.below(20) as usize),
            _ => rng.text(10, 600),
        }
    }

    /// A stream with `n` entries (explicit ids) and, for every third one, two consumer
    /// groups, pending entries of two consumers and a deleted entry.
    fn stream(
        &self,
        pipe: &mut Pipeline<'_>,
        rng: &mut Rng,
        key: &[u8],
        n: usize,
        i: u64,
    ) -> io::Result<()> {
        let base = 1_600_000_000_000 + i * 1000;
        for j in 0..n {
            let id = format!("{}-{}", base + j as u64 / 3, j % 3).into_bytes();
            let mut args = vec![id];
            for f in 0..(1 + j % 3) {
                args.push(format!("f{f}").into_bytes());
                args.push(rng.text(3, 20));
            }
            pipe.push(cmd(b"XADD", key, args))?;
        }
        if i % 3 == 0 {
            let s = |s: &str| s.as_bytes().to_vec();
            pipe.push(vec![
                s("XGROUP"),
                s("CREATE"),
                key.to_vec(),
                s("grp"),
                s("0"),
            ])?;
            pipe.push(vec![
                s("XGROUP"),
                s("CREATE"),
                key.to_vec(),
                s("late"),
                s("$"),
            ])?;
            for (consumer, count) in [("alice", "2"), ("bob", "1")] {
                let mut c: Vec<Vec<u8>> = [
                    "XREADGROUP",
                    "GROUP",
                    "grp",
                    consumer,
                    "COUNT",
                    count,
                    "STREAMS",
                ]
                .iter()
                .map(|a| s(a))
                .collect();
                c.push(key.to_vec());
                c.push(s(">"));
                pipe.push(c)?;
            }
            pipe.push(cmd(b"XDEL", key, [format!("{base}-0").into_bytes()]))?;
        }
        Ok(())
    }
}

fn cmd(name: &[u8], key: &[u8], args: impl IntoIterator<Item = Vec<u8>>) -> Vec<Vec<u8>> {
    let mut out = vec![name.to_vec(), key.to_vec()];
    out.extend(args);
    out
}

/// Sends commands in batches and checks every reply.
struct Pipeline<'a> {
    conn: &'a mut Conn,
    pending: Vec<Vec<Vec<u8>>>,
    sent: u64,
}

const BATCH: usize = 512;

impl<'a> Pipeline<'a> {
    fn new(conn: &'a mut Conn) -> Pipeline<'a> {
        Pipeline {
            conn,
            pending: Vec::new(),
            sent: 0,
        }
    }

    fn push(&mut self, cmd: Vec<Vec<u8>>) -> io::Result<()> {
        self.pending.push(cmd);
        if self.pending.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        let batch = std::mem::take(&mut self.pending);
        for cmd in &batch {
            self.conn.send(cmd)?;
        }
        for cmd in &batch {
            if let Reply::Error(e) = self.conn.read_reply()? {
                let shown: Vec<_> = cmd
                    .iter()
                    .take(4)
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect();
                return Err(io::Error::other(format!("{}: -{e}", shown.join(" "))));
            }
        }
        self.sent += batch.len() as u64;
        Ok(())
    }
}

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    /// Printable bytes with some binary ones mixed in, `min..max` long.
    fn text(&mut self, min: usize, max: usize) -> Vec<u8> {
        const ALPHABET: &[u8] =
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_:\x00\xff\r\n";
        let len = min + self.below((max - min) as u64) as usize;
        (0..len)
            .map(|_| ALPHABET[self.below(ALPHABET.len() as u64) as usize])
            .collect()
    }
}
