//! A cluster target found at start ([`detect`]): its dbs, its checkpoint keys read
//! ([`Detected::start`]) or removed ([`forget_all`]), the source dbs it cannot hold
//! ([`check_source_dbs`]), every master checked before anything is written, then the
//! writers opened.

use super::*;

/// A cluster target found at start, before its writers are opened.
pub(crate) struct Detected {
    pub(crate) topology: ClusterTopology,
    /// Dbs the cluster has: `cluster-databases` (Valkey 9), else 1.
    pub(crate) dbs: u32,
    /// What the checkpoint keys say (see [`Detected::read_checkpoint`]).
    pub(crate) resume: Resume,
}

/// Whether the target is a cluster (`INFO cluster`), with its topology and dbs. A server
/// that refuses `INFO cluster` or the topology commands is taken as standalone.
pub(crate) async fn detect(target: &mut crate::Target<Stream>, url: &str) -> Option<Detected> {
    let topology = match cluster::discover(target).await {
        Ok(Some(t)) => t,
        Ok(None) => return None,
        Err(e) => {
            tracing::debug!(target: "migrate", "target {url}: no cluster topology ({e}): taken as standalone");
            return None;
        }
    };
    let dbs = match target.call(&["CONFIG", "GET", "cluster-databases"]).await {
        Ok(Frame::Array(items)) => items
            .get(1)
            .and_then(Frame::as_bytes)
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|t| t.parse::<u32>().ok())
            .filter(|&n| n >= 1)
            .unwrap_or(1),
        _ => 1,
    };
    Some(Detected {
        topology,
        dbs,
        resume: Resume::default(),
    })
}

impl Detected {
    /// The same cluster with nothing read from its checkpoint keys yet (one per source
    /// shard of a cluster source).
    pub(crate) fn fresh(&self) -> Detected {
        Detected {
            topology: self.topology.clone(),
            dbs: self.dbs,
            resume: Resume::default(),
        }
    }

    /// `(db, keys)` of the `dbs` that hold keys, summed over every master.
    pub(crate) async fn non_empty(
        &self,
        template: &TargetConfig,
        timeout: Duration,
        dbs: Vec<u32>,
    ) -> Result<Vec<(u32, u64)>, MigrationError> {
        let mut total: BTreeMap<u32, u64> = BTreeMap::new();
        for m in self.topology.masters() {
            let cfg = node_config(template, m);
            let mut t = conn::connect(&cfg, timeout).await?;
            let ks = t
                .keyspace()
                .await
                .map_err(|source| MigrationError::Target {
                    url: cfg.url.to_string(),
                    source: Box::new(source),
                })?;
            for (db, n) in ks.non_empty(dbs.iter().copied()) {
                *total.entry(db).or_default() += n;
            }
        }
        Ok(total.into_iter().collect())
    }

    /// At start: the report names the cluster; its checkpoint keys are removed
    /// (`reset_checkpoint`) or read ([`read_checkpoint`](Self::read_checkpoint)).
    pub(crate) async fn start(
        &mut self,
        template: &TargetConfig,
        s: &crate::migrate::options::Settings,
        base: &str,
        fingerprint: &str,
        report: &mut crate::migrate::Report,
    ) -> Result<Option<Checkpoint>, MigrationError> {
        let masters = self.topology.masters().len();
        report.target_cluster_masters = Some(masters);
        tracing::info!(target: "migrate", "target {} is a cluster of {masters} masters", template.url);
        self.resume.base = s
            .checkpoint
            .then(|| Bytes::copy_from_slice(base.as_bytes()));
        let found = if s.reset_checkpoint {
            self.forget(template, s.connect_timeout, base).await?;
            tracing::info!(target: "migrate", "checkpoint removed from every master: starting over");
            None
        } else if s.checkpoint {
            self.read_checkpoint(template, s.connect_timeout, base, fingerprint)
                .await?
        } else {
            None
        };
        self.resume.fault_after = s.crash_after_copy_backs;
        Ok(found)
    }

    /// Reads the checkpoint: the floor (the base key, routed to its slot's master), every
    /// slot's checkpoint key (`SCAN MATCH base{*` on each master, since resharding moves
    /// them) and the keyless markers (`base:keyless{*`: the master owning the marker's slot
    /// holds every command up to it, in each of its slots). `None` when there is no floor;
    /// an error when it belongs to another migration or cannot be read.
    pub(crate) async fn read_checkpoint(
        &mut self,
        template: &TargetConfig,
        timeout: Duration,
        base: &str,
        fingerprint: &str,
    ) -> Result<Option<Checkpoint>, MigrationError> {
        let url = template.url.to_string();
        let unreadable = |reason: String| MigrationError::CheckpointUnreadable {
            url: url.clone(),
            key: base.to_string(),
            reason,
        };
        let mut client = ClusterClient::connect(std::slice::from_ref(template), timeout)
            .await
            .map_err(|e| unreadable(e.to_string()))?;
        let reply = client
            .call(&["GET", base])
            .await
            .map_err(|e| unreadable(e.to_string()))?;
        let floor = match &reply {
            f if f.is_null() => return Ok(None),
            f => match f.as_bytes() {
                Some(v) => Checkpoint::parse(v).map_err(unreadable)?,
                None => return Err(unreadable(format!("{f:?}"))),
            },
        };
        if floor.fingerprint != fingerprint {
            return Err(MigrationError::CheckpointMismatch {
                url,
                found: floor.to_string(),
            });
        }
        let mut resume = Resume {
            base: self.resume.base.take(),
            skip: HashMap::new(),
            max_seen: floor.point.offset,
            floor: Some(floor.clone()),
            fault_after: None,
        };
        let pattern = format!("{base}{{*");
        for (key, value) in scan_checkpoints(template, timeout, &self.topology, &pattern).await? {
            let Some(c) = value.as_deref().and_then(|v| Checkpoint::parse(v).ok()) else {
                continue;
            };
            if c.fingerprint != fingerprint
                || c.point.replid != floor.point.replid
                || c.point.offset <= floor.point.offset
            {
                continue;
            }
            let slot = key_slot(&key);
            let e = resume.skip.entry(slot).or_default();
            *e = (*e).max(c.point.offset);
            resume.max_seen = resume.max_seen.max(c.point.offset);
        }
        let [_, keyless] = xslot::own_patterns(base);
        for (key, value) in scan_checkpoints(template, timeout, &self.topology, &keyless).await? {
            let Some(m) = value.as_deref().and_then(xslot::Ident::parse) else {
                continue;
            };
            if m.fingerprint != fingerprint
                || m.replid != floor.point.replid.as_str()
                || m.offset <= floor.point.offset
            {
                continue;
            }
            let Some(owner) = self.topology.master_for_slot(key_slot(&key)) else {
                continue;
            };
            for r in self.topology.slot_map().slots_of(owner) {
                for slot in r {
                    let e = resume.skip.entry(slot).or_default();
                    *e = (*e).max(m.offset);
                }
            }
            resume.max_seen = resume.max_seen.max(m.offset);
        }
        self.resume = resume;
        Ok(Some(floor))
    }

    /// Removes the floor and every slot checkpoint key; whether there were any.
    pub(crate) async fn forget(
        &self,
        template: &TargetConfig,
        timeout: Duration,
        base: &str,
    ) -> Result<bool, MigrationError> {
        forget_all(template, timeout, &self.topology, base, false).await
    }

    /// The preflight's module and function checks on every master (it ran on the URL's
    /// node): a master that lacks a module the URL's node has, or (with
    /// [`Conflict::Refuse`](crate::migrate::Conflict::Refuse)) holds function libraries, stops the
    /// migration before anything is written.
    pub(crate) async fn check_masters(
        &self,
        template: &TargetConfig,
        s: &crate::migrate::options::Settings,
        pre: &crate::migrate::preflight::Preflight,
        conflict: crate::migrate::Conflict,
    ) -> Result<(), MigrationError> {
        let timeout = s.connect_timeout;
        for m in self.topology.masters() {
            let cfg = node_config(template, m);
            let url = cfg.url.to_string();
            let err = |source| MigrationError::Target {
                url: url.clone(),
                source: Box::new(source),
            };
            let mut t = conn::connect(&cfg, timeout).await?;
            if let (Some(want), Some(has)) = (&pre.target_modules, t.modules().await.map_err(err)?)
            {
                let missing: Vec<String> =
                    want.iter().filter(|w| !has.contains(w)).cloned().collect();
                if !missing.is_empty() {
                    return Err(MigrationError::ModulesMissing {
                        url,
                        modules: missing,
                    });
                }
            }
            let libraries = t.function_libraries().await.map_err(err)?;
            if conflict == crate::migrate::Conflict::Refuse && !libraries.is_empty() {
                return Err(MigrationError::TargetHasDefinitions {
                    url,
                    what: "function libraries",
                    names: libraries
                        .iter()
                        .map(|l| String::from_utf8_lossy(l).into_owned())
                        .collect(),
                });
            }
        }
        Ok(())
    }

    /// Opens the writers (one per master).
    pub(crate) async fn open(
        self,
        template: &TargetConfig,
        timeout: Duration,
        wopts: WriterOptions,
    ) -> Result<ClusterSink, MigrationError> {
        ClusterSink::open(
            template,
            timeout,
            self.topology,
            wopts,
            self.dbs,
            self.resume,
        )
        .await
    }
}

/// Every key `base` or `base{...}` on the masters, with its value.
async fn scan_checkpoints(
    template: &TargetConfig,
    timeout: Duration,
    topology: &ClusterTopology,
    pattern: &str,
) -> Result<Vec<(Bytes, Option<Vec<u8>>)>, MigrationError> {
    let mut out = Vec::new();
    for m in topology.masters() {
        let cfg = node_config(template, m);
        let err = |source| MigrationError::Target {
            url: cfg.url.to_string(),
            source: Box::new(source),
        };
        let mut t = conn::connect(&cfg, timeout).await?;
        let mut cursor = b"0".to_vec();
        loop {
            let reply = t
                .call(&[
                    &b"SCAN"[..],
                    &cursor,
                    b"MATCH",
                    pattern.as_bytes(),
                    b"COUNT",
                    b"1000",
                ])
                .await
                .map_err(err)?;
            let Some([c, Frame::Array(keys)]) = reply.as_slice() else {
                return Err(MigrationError::Internal(format!(
                    "unexpected SCAN reply from {}: {reply:?}",
                    m.addr()
                )));
            };
            let next = c.as_bytes().unwrap_or(b"0").to_vec();
            for k in keys.iter().filter_map(Frame::as_bytes) {
                let v = t.call(&[&b"GET"[..], k]).await.map_err(err)?;
                out.push((Bytes::copy_from_slice(k), v.as_bytes().map(<[u8]>::to_vec)));
            }
            if next == b"0" {
                break;
            }
            cursor = next;
        }
    }
    Ok(out)
}

/// Removes the checkpoint keys of a cluster target (the floor and every slot's); whether
/// there were any.
pub(crate) async fn forget_all(
    template: &TargetConfig,
    timeout: Duration,
    topology: &ClusterTopology,
    base: &str,
    every_shard: bool,
) -> Result<bool, MigrationError> {
    let url = template.url.to_string();
    let mut any = false;
    let mut client = ClusterClient::connect(std::slice::from_ref(template), timeout)
        .await
        .map_err(|e| MigrationError::ClusterUnavailable {
            url: url.clone(),
            command: "DEL".into(),
            slot: None,
            node: "the checkpoint's node".into(),
            attempts: 1,
            waited: Duration::ZERO,
            last: e.to_string(),
        })?;
    // `base{*`: this migration's slot keys; `base*`: every source shard's keys too.
    let pattern = if every_shard {
        format!("{base}*")
    } else {
        format!("{base}{{*")
    };
    let mut keys: Vec<Bytes> = vec![Bytes::copy_from_slice(base.as_bytes())];
    keys.extend(
        scan_checkpoints(template, timeout, topology, &pattern)
            .await?
            .into_iter()
            .map(|(k, _)| k),
    );
    let mut others = Vec::new();
    if every_shard {
        // The fences of atomic slot migrations (not a checkpoint: not counted).
        others.push(Bytes::from_static(
            super::super::shards::FENCE_KEY.as_bytes(),
        ));
    } else {
        // The cross-slot and keyless records (`base*` already has them).
        for p in xslot::own_patterns(base) {
            keys.extend(
                scan_checkpoints(template, timeout, topology, &p)
                    .await?
                    .into_iter()
                    .map(|(k, _)| k),
            );
        }
    }
    let counted = keys.len();
    keys.extend(others);
    for (i, k) in keys.into_iter().enumerate() {
        let r = client.call(&[&b"DEL"[..], &k]).await.map_err(|e| {
            MigrationError::ClusterUnavailable {
                url: url.clone(),
                command: "DEL".into(),
                slot: Some(key_slot(&k)),
                node: "the checkpoint's node".into(),
                attempts: 1,
                waited: Duration::ZERO,
                last: e.to_string(),
            }
        })?;
        any |= i < counted && r == Frame::Integer(1);
    }
    Ok(any)
}

/// A live source with keys in dbs the cluster target lacks (after the filter's db map) is
/// refused at start, naming them. A source that does not answer `INFO keyspace` is not
/// checked here (its first key in such a db is refused instead).
pub(crate) async fn check_source_dbs(
    source: &replication_client::Config,
    s: &crate::migrate::options::Settings,
    allowed: u32,
    url: &str,
) -> Result<(), MigrationError> {
    let cfg = TargetConfig::of_source(source);
    let Ok(mut t) = conn::connect(&cfg, s.connect_timeout).await else {
        return Ok(());
    };
    let Ok(ks) = t.keyspace().await else {
        return Ok(());
    };
    let used: Vec<u32> = ks.dbs.keys().copied().collect();
    let bad: Vec<u32> = s
        .filter
        .target_dbs(used)
        .into_iter()
        .filter(|&d| d >= allowed)
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    Err(MigrationError::ClusterDbs {
        url: url.to_string(),
        dbs: bad,
        allowed,
    })
}
