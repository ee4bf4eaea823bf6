//! The passes of a verification: a first pass over both keyspaces, then re-check rounds
//! of the keys that differed.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use resp_codec::Frame;
use tokio::time::Instant;

use super::compare::compare;
use super::conn::{cmd, Reader};
use super::digest::sampled;
use super::error::{Side, VerifyError};
use super::read::{bytes_of, text_of, ReadOpts};
use super::report::{prefix, DiffKind, Difference, VerifyReport};
use super::side::Conns;
use super::{Verifier, VerifyOptions};
use crate::migrate::RESERVED_PREFIX;
use crate::Keyspace;

/// Something to re-check.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Item {
    /// A source key (source db, key), compared with its target db.
    Key(u32, Bytes),
    /// A key of a target db, not found in any source db mapped to it.
    Extra(u32, Bytes),
    /// A function library.
    Library(Bytes),
}

/// Extra keys found, and keys of the target db that a source db does hold.
type Extras = (Vec<(Item, DiffKind, String)>, Vec<(u32, Bytes)>);

struct Run<'a> {
    o: &'a VerifyOptions,
    src: Conns,
    dst: Conns,
    ro_src: ReadOpts,
    ro_dst: ReadOpts,
    /// Target db → the source dbs mapped to it.
    preimages: BTreeMap<u32, Vec<u32>>,
    libraries: bool,
}

pub(crate) async fn run(v: &Verifier) -> Result<VerifyReport, VerifyError> {
    let o = &v.options;
    if !(o.sample > 0.0 && o.sample <= 1.0) {
        return Err(VerifyError::Config(format!(
            "the sample fraction must be in (0, 1], not {}",
            o.sample
        )));
    }
    if o.filter.has_transform() {
        // Target keys cannot be traced back through a transform to find extras.
        return Err(VerifyError::Config(
            "a filter with a key transform cannot be verified yet".into(),
        ));
    }
    if o.batch == 0 || o.chunk == 0 {
        return Err(VerifyError::Config(
            "batch and chunk sizes must be at least 1".into(),
        ));
    }
    let (source, target) = (&v.source, &v.target);
    let started = Instant::now();
    let (src, dst) = tokio::try_join!(
        Conns::open(source, o.timeout, Side::Source, o.max_ops),
        Conns::open(target, o.timeout, Side::Target, o.max_ops)
    )?;
    let (sv, tv) = (src.version(), dst.version());
    let field_ttls = sv.has_hash_field_ttl() && tv.has_hash_field_ttl();
    let ro = |v: crate::ServerVersion| ReadOpts {
        chunk: o.chunk,
        string_chunk: 64 << 10,
        budget: o.key_budget,
        field_ttls,
        stream_full: v.is_valkey() || v.major >= 6,
    };
    let mut report = VerifyReport {
        sample: o.sample,
        field_ttls_compared: field_ttls,
        source_version: sv.to_string(),
        target_version: tv.to_string(),
        source_masters: src.masters(),
        target_masters: dst.masters(),
        ..VerifyReport::default()
    };
    let mut run = Run {
        o,
        ro_src: ro(sv),
        ro_dst: ro(tv),
        libraries: o.functions,
        src,
        dst,
        preimages: BTreeMap::new(),
    };
    let result = run.all(&mut report).await;
    report.source_commands = run.src.commands();
    report.target_commands = run.dst.commands();
    report.duration = started.elapsed();
    result.map(|()| report)
}

impl Run<'_> {
    async fn all(&mut self, report: &mut VerifyReport) -> Result<(), VerifyError> {
        let sks = self.keyspace(Side::Source).await?;
        let tks = self.keyspace(Side::Target).await?;
        let max_db = sks
            .dbs
            .keys()
            .chain(tks.dbs.keys())
            .copied()
            .max()
            .unwrap_or(0)
            .max(15);
        let filter = &self.o.filter;
        let mut source_dbs = Vec::new();
        for db in 0..=max_db {
            let Some(t) = filter.target_db(db) else {
                continue;
            };
            self.preimages.entry(t).or_default().push(db);
            if sks.keys(db) > 0 || tks.keys(t) > 0 {
                source_dbs.push(db);
            }
        }

        self.cluster_dbs(&sks, &source_dbs).await?;

        // First pass.
        let mut found: BTreeMap<Item, (DiffKind, String)> = BTreeMap::new();
        for &db in &source_dbs {
            let t = filter.target_db(db).unwrap_or(db);
            // A cluster: every master, each listing its own keys.
            for unit in 0..self.src.units() {
                let mut cursor = Bytes::from_static(b"0");
                loop {
                    let (next, keys) = self.scan(Side::Source, unit, db, &cursor).await?;
                    report.keys_compared += keys.len() as u64;
                    for (key, kind, detail) in self.compare_keys(db, t, &keys).await? {
                        found.insert(Item::Key(db, key), (kind, detail));
                    }
                    if next.as_ref() == b"0" {
                        break;
                    }
                    cursor = next;
                }
            }
        }
        let target_dbs: Vec<u32> = self
            .preimages
            .keys()
            .copied()
            .filter(|&t| tks.keys(t) > 0)
            .collect();
        for t in target_dbs {
            for unit in 0..self.dst.units() {
                let mut cursor = Bytes::from_static(b"0");
                loop {
                    let (next, keys) = self.scan(Side::Target, unit, t, &cursor).await?;
                    report.target_keys_scanned += keys.len() as u64;
                    for (item, kind, detail) in self.check_extras(t, &keys).await?.0 {
                        found.entry(item).or_insert((kind, detail));
                    }
                    if next.as_ref() == b"0" {
                        break;
                    }
                    cursor = next;
                }
            }
        }
        if self.libraries {
            let (n, diffs) = self.compare_libraries().await?;
            report.libraries_compared = n;
            for (name, kind, detail) in diffs {
                found.insert(Item::Library(name), (kind, detail));
            }
        }
        report.first_pass_differences = found.len() as u64;
        report.rounds = 1;
        tracing::info!(
            target: "migrate",
            differences = found.len(),
            "verify: first pass done"
        );

        // Re-check rounds: only what persists stays.
        for round in 1..=self.o.rounds {
            if found.is_empty() {
                break;
            }
            tokio::time::sleep(self.o.delay).await;
            found = self.recheck(found.into_keys().collect()).await?;
            report.rounds += 1;
            tracing::info!(
                target: "migrate",
                round,
                differences = found.len(),
                "verify: re-check round done"
            );
        }
        for (item, (kind, detail)) in found {
            let (db, target_db, key) = match item {
                Item::Key(db, key) => (Some(db), filter.target_db(db), key),
                Item::Extra(t, key) => (
                    self.preimages.get(&t).and_then(|v| v.first().copied()),
                    Some(t),
                    key,
                ),
                Item::Library(name) => (None, None, name),
            };
            report.add(
                Difference {
                    db,
                    target_db,
                    key,
                    kind,
                    detail,
                },
                self.o.max_listed,
            );
        }
        Ok(())
    }

    async fn keyspace(&mut self, side: Side) -> Result<Keyspace, VerifyError> {
        match side {
            Side::Source => self.src.keyspace().await,
            Side::Target => self.dst.keyspace().await,
        }
    }

    /// One `SCAN` step on unit `unit` of `side` (the server, or one master of a cluster);
    /// the keys inside the filter and the sample, reserved keys left out.
    async fn scan(
        &mut self,
        side: Side,
        unit: usize,
        db: u32,
        cursor: &Bytes,
    ) -> Result<(Bytes, Vec<Bytes>), VerifyError> {
        let n = self.o.batch.to_string();
        let (filter, sample) = (&self.o.filter, self.o.sample);
        let r = match side {
            Side::Source => self.src.unit(unit),
            Side::Target => self.dst.unit(unit),
        };
        let reply = r
            .one(
                db,
                cmd([b"SCAN".as_slice(), cursor, b"COUNT", n.as_bytes()]),
            )
            .await?;
        let parts = reply.as_slice().unwrap_or_default();
        let (Some(next), Some(keys)) = (
            parts.first().and_then(bytes_of),
            parts.get(1).and_then(Frame::as_slice),
        ) else {
            return Err(r.refused("SCAN", &reply));
        };
        let keys = keys
            .iter()
            .filter_map(bytes_of)
            .filter(|k| {
                !k.starts_with(RESERVED_PREFIX) && filter.accepts_key(k) && sampled(k, sample)
            })
            .collect();
        Ok((next, keys))
    }

    /// Reads `keys` in source db `db` and target db `t`, both sides at once.
    async fn compare_keys(
        &mut self,
        db: u32,
        t: u32,
        keys: &[Bytes],
    ) -> Result<Vec<(Bytes, DiffKind, String)>, VerifyError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let (a, b) = tokio::try_join!(
            self.src.read(db, keys, self.ro_src),
            self.dst.read(t, keys, self.ro_dst)
        )?;
        let tol = self.o.ttl_tolerance.as_millis() as i64;
        Ok(keys
            .iter()
            .zip(a.iter().zip(&b))
            .filter_map(|(k, (x, y))| compare(x, y, tol).map(|(kind, d)| (k.clone(), kind, d)))
            .collect())
    }

    /// Target keys of db `t` that no source db mapped to `t` holds; those a source db does
    /// hold (only possible on a re-check) are compared as source keys.
    async fn check_extras(&mut self, t: u32, keys: &[Bytes]) -> Result<Extras, VerifyError> {
        let mut out = Vec::new();
        if keys.is_empty() {
            return Ok((out, Vec::new()));
        }
        let mut left: Vec<Bytes> = keys.to_vec();
        let mut on_source: Vec<(u32, Bytes)> = Vec::new();
        for db in self.preimages.get(&t).cloned().unwrap_or_default() {
            if left.is_empty() {
                break;
            }
            let replies = self
                .src
                .per_key(db, &left, "EXISTS", |k| {
                    vec![Bytes::from_static(b"EXISTS"), k.clone()]
                })
                .await?;
            let mut still = Vec::new();
            for (k, r) in left.into_iter().zip(replies) {
                match r {
                    Frame::Integer(n) if n > 0 => on_source.push((db, k)),
                    Frame::Integer(_) => still.push(k),
                    r => return Err(self.src.first().refused("EXISTS", &r)),
                }
            }
            left = still;
        }
        if !left.is_empty() {
            let replies = self
                .dst
                .per_key(t, &left, "TYPE", |k| {
                    vec![Bytes::from_static(b"TYPE"), k.clone()]
                })
                .await?;
            for (k, r) in left.into_iter().zip(replies) {
                let ty = text_of(&r);
                if !r.is_error() && ty != "none" {
                    out.push((
                        Item::Extra(t, k),
                        DiffKind::Extra,
                        format!("a {ty} only on the target"),
                    ));
                }
            }
        }
        Ok((out, on_source))
    }

    /// Re-checks `items`; returns those that still differ.
    async fn recheck(
        &mut self,
        items: Vec<Item>,
    ) -> Result<BTreeMap<Item, (DiffKind, String)>, VerifyError> {
        let mut out = BTreeMap::new();
        let mut keys: BTreeMap<u32, Vec<Bytes>> = BTreeMap::new();
        let mut extras: BTreeMap<u32, Vec<Bytes>> = BTreeMap::new();
        let mut libraries = false;
        for item in items {
            match item {
                Item::Key(db, k) => keys.entry(db).or_default().push(k),
                Item::Extra(t, k) => extras.entry(t).or_default().push(k),
                Item::Library(_) => libraries = true,
            }
        }
        for (t, ks) in extras {
            for chunk in ks.chunks(self.o.batch) {
                // A key now on the source is compared as a source key below.
                let (still, found) = self.check_extras(t, chunk).await?;
                for (item, kind, detail) in still {
                    out.insert(item, (kind, detail));
                }
                for (db, k) in found {
                    keys.entry(db).or_default().push(k);
                }
            }
        }
        for (db, mut ks) in keys {
            ks.sort();
            ks.dedup();
            let t = self.o.filter.target_db(db).unwrap_or(db);
            for chunk in ks.chunks(self.o.batch) {
                for (k, kind, detail) in self.compare_keys(db, t, chunk).await? {
                    out.insert(Item::Key(db, k), (kind, detail));
                }
            }
        }
        if libraries {
            for (name, kind, detail) in self.compare_libraries().await?.1 {
                out.insert(Item::Library(name), (kind, detail));
            }
        }
        Ok(out)
    }

    /// A cluster target holds db 0 (a Valkey 9 cluster `cluster-databases`): source dbs
    /// with keys that go elsewhere are one error before the first pass.
    async fn cluster_dbs(
        &mut self,
        sks: &crate::Keyspace,
        source_dbs: &[u32],
    ) -> Result<(), VerifyError> {
        if self.dst.masters().is_none() {
            return Ok(());
        }
        let held: u32 = if self.dst.version().is_valkey() {
            let r = self
                .dst
                .first()
                .one(0, cmd(["CONFIG", "GET", "cluster-databases"]))
                .await?;
            r.as_slice()
                .and_then(|v| v.get(1))
                .map(text_of)
                .and_then(|t| t.parse().ok())
                .unwrap_or(1u32)
                .max(1)
        } else {
            1
        };
        let lacked = crate::cluster::LackedDbs::find(
            held,
            source_dbs.iter().map(|&db| (db, sks.keys(db))),
            &self.o.filter,
        );
        if lacked.is_empty() {
            return Ok(());
        }
        Err(VerifyError::ClusterDbs {
            url: self.dst.url(),
            holds: lacked.holds(),
            dbs: lacked.shown(),
            fix: format!(
                "verify what the migration wrote with {}, or leave them out with {}",
                lacked.map_flags(),
                lacked.exclude_flags()
            ),
        })
    }

    /// `FUNCTION LIST WITHCODE` on both sides, on every master of a cluster side
    /// (libraries are per node: `FUNCTION LOAD` must reach each master): the number of
    /// libraries and the differences, each naming the target masters it was seen on.
    async fn compare_libraries(
        &mut self,
    ) -> Result<(u64, Vec<(Bytes, DiffKind, String)>), VerifyError> {
        let Some(src) = side_libraries(&mut self.src).await? else {
            return Ok((0, Vec::new()));
        };
        let Some(dst) = side_libraries(&mut self.dst).await? else {
            return Ok((0, Vec::new()));
        };
        // The source's libraries: every master's (the first master's code where they
        // disagree, which is logged).
        let mut want: BTreeMap<Bytes, Bytes> = BTreeMap::new();
        for (addr, libs) in &src {
            for (n, code) in libs {
                match want.get(n) {
                    None => {
                        want.insert(n.clone(), code.clone());
                    }
                    Some(c) if c != code => tracing::warn!(
                        target: "migrate",
                        "verify: source master {addr} has another code for function library {}",
                        String::from_utf8_lossy(n)
                    ),
                    Some(_) => {}
                }
            }
        }
        if src.len() > 1 {
            for (addr, libs) in &src {
                for n in want.keys().filter(|n| !libs.contains_key(*n)) {
                    tracing::warn!(
                        target: "migrate",
                        "verify: source master {addr} lacks function library {}",
                        String::from_utf8_lossy(n)
                    );
                }
            }
        }
        let mut names: BTreeSet<&Bytes> = want.keys().collect();
        for (_, libs) in &dst {
            names.extend(libs.keys());
        }
        let cluster = dst.len() > 1;
        let on = |addrs: &[&str]| {
            if cluster {
                format!(" (target master {})", addrs.join(", "))
            } else {
                String::new()
            }
        };
        let mut diffs = Vec::new();
        for n in &names {
            let (mut missing, mut extra, mut differs) = (Vec::new(), Vec::new(), Vec::new());
            let mut sizes = None;
            for (addr, libs) in &dst {
                match (want.get(*n), libs.get(*n)) {
                    (Some(_), None) => missing.push(addr.as_str()),
                    (None, Some(_)) => extra.push(addr.as_str()),
                    (Some(x), Some(y)) if x != y => {
                        sizes.get_or_insert((x.clone(), y.clone()));
                        differs.push(addr.as_str());
                    }
                    _ => {}
                }
            }
            if !missing.is_empty() {
                diffs.push((
                    (*n).clone(),
                    DiffKind::Missing,
                    format!("not on the target{}", on(&missing)),
                ));
            } else if !extra.is_empty() {
                diffs.push((
                    (*n).clone(),
                    DiffKind::Extra,
                    format!("only on the target{}", on(&extra)),
                ));
            } else if let Some((x, y)) = sizes {
                diffs.push((
                    (*n).clone(),
                    DiffKind::Value,
                    format!(
                        "code differs{} ({} vs {} bytes: {} vs {})",
                        on(&differs),
                        x.len(),
                        y.len(),
                        prefix(&x),
                        prefix(&y)
                    ),
                ));
            }
        }
        Ok((names.len() as u64, diffs))
    }
}

/// Every unit's libraries (`host:port`, libraries); `None` when one refuses `FUNCTION
/// LIST` (then libraries are not compared).
async fn side_libraries(
    side: &mut Conns,
) -> Result<Option<Vec<(String, BTreeMap<Bytes, Bytes>)>>, VerifyError> {
    let mut out = Vec::new();
    for i in 0..side.units() {
        let addr = side.addr(i).to_string();
        match libraries(side.unit(i)).await? {
            Some(l) => out.push((addr, l)),
            None => return Ok(None),
        }
    }
    Ok(Some(out))
}

/// A side's libraries (name → engine and code), empty where functions do not exist;
/// `None` when `FUNCTION LIST` is refused (then libraries are not compared).
async fn libraries(r: &mut Reader) -> Result<Option<BTreeMap<Bytes, Bytes>>, VerifyError> {
    let mut out = BTreeMap::new();
    if !r.version.has_functions() {
        return Ok(Some(out));
    }
    let reply = r.one(0, cmd(["FUNCTION", "LIST", "WITHCODE"])).await?;
    if reply.is_error() {
        tracing::warn!(
            target: "migrate",
            side = r.side.as_str(),
            "verify: FUNCTION LIST refused; function libraries not compared"
        );
        return Ok(None);
    }
    for lib in reply.as_slice().unwrap_or_default() {
        let mut name = None;
        let mut code = Vec::new();
        let kv: Vec<(&Frame, &Frame)> = match lib {
            Frame::Array(items) => items.chunks_exact(2).map(|p| (&p[0], &p[1])).collect(),
            Frame::Map(m) => m.iter().map(|(k, v)| (k, v)).collect(),
            _ => Vec::new(),
        };
        for (k, v) in kv {
            match k.as_bytes() {
                Some(b"library_name") => name = bytes_of(v),
                Some(b"engine") | Some(b"library_code") => {
                    code.extend_from_slice(&bytes_of(v).unwrap_or_default());
                    code.push(0);
                }
                _ => {}
            }
        }
        if let Some(n) = name {
            out.insert(n, Bytes::from(code));
        }
    }
    Ok(Some(out))
}
