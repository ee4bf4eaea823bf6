//! Cross-slot and keyless commands applied exactly once with checkpoints (see the module
//! docs, "Cross-slot and keyless commands with checkpoints"): the identity of such a
//! command ([`Ident`]), the keys that record how far it got (stage marker, per-slot
//! done keys, per-master keyless markers), what they say ([`progress`],
//! [`keyless_applied`]), and the two procedures, retried as a whole (every attempt reads
//! the records again, so an attempt that died anywhere is finished, never repeated).

use super::*;

/// First word of an [`Ident`]'s encoding.
const IDENT_MAGIC: &str = "redis-migrate-barrier/1";

/// One cross-slot or keyless command of the replication stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Ident {
    /// The migration's fingerprint (the checkpoint's).
    pub(super) fingerprint: String,
    /// The replication id of the checkpoint it follows.
    pub(super) replid: String,
    /// Its source offset.
    pub(super) offset: u64,
    /// Its rank among the cross-slot and keyless commands at the same offset (a source
    /// transaction or script holds several).
    pub(super) n: u32,
    /// A hash of its arguments.
    pub(super) hash: u64,
}

impl Ident {
    /// The identity of `args` at `offset`, rank `n`, after checkpoint `c`.
    pub(super) fn new(c: &Checkpoint, offset: u64, n: u32, args: &[Bytes]) -> Ident {
        Ident {
            fingerprint: c.fingerprint.clone(),
            replid: c.point.replid.as_str().to_string(),
            offset,
            n,
            hash: args_hash(args),
        }
    }

    /// The stored text.
    pub(super) fn encode(&self) -> String {
        format!(
            "{IDENT_MAGIC} {} {} {} {:016x} {}",
            self.replid, self.offset, self.n, self.hash, self.fingerprint
        )
    }

    /// Parses [`encode`](Self::encode)'s text; `None` for anything else.
    pub(super) fn parse(text: &[u8]) -> Option<Ident> {
        let text = std::str::from_utf8(text).ok()?;
        let mut w = text.split(' ');
        if w.next()? != IDENT_MAGIC {
            return None;
        }
        let replid = w.next()?.to_string();
        let offset = w.next()?.parse().ok()?;
        let n = w.next()?.parse().ok()?;
        let hash = u64::from_str_radix(w.next()?, 16).ok()?;
        let fingerprint = w.next()?.to_string();
        if w.next().is_some() {
            return None;
        }
        Some(Ident {
            fingerprint,
            replid,
            offset,
            n,
            hash,
        })
    }

    /// Same migration and replication history: positions compare.
    fn same_history(&self, other: &Ident) -> bool {
        self.fingerprint == other.fingerprint && self.replid == other.replid
    }

    fn position(&self) -> (u64, u32) {
        (self.offset, self.n)
    }
}

/// FNV-1a over the arguments with their lengths (stable across builds).
fn args_hash(args: &[Bytes]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |data: &[u8]| {
        for &b in data {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for a in args {
        eat(&(a.len() as u64).to_le_bytes());
        eat(a);
    }
    h
}

/// Where a cross-slot command stands, according to the stage marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Progress {
    /// Not run on the temporary keys yet: stage it.
    NotStaged,
    /// Run on the temporary keys: copy back to the slots not done.
    Staged,
    /// Finished (with the server's error reply when it failed).
    Done(Option<String>),
}

/// The stage marker's value: the command's identity, then `staged`, `done ok` or
/// `done err <reply>`.
pub(super) fn marker_value(id: &Ident, progress: &Progress) -> Bytes {
    let state = match progress {
        Progress::NotStaged | Progress::Staged => "staged".to_string(),
        Progress::Done(None) => "done ok".to_string(),
        Progress::Done(Some(e)) => format!("done err {e}"),
    };
    Bytes::from(format!("{}\n{state}", id.encode()))
}

/// What the stage marker (`None`: absent) says about the command `id`. A marker of a later
/// command of the same history means `id` finished (commands run one at a time, in order).
pub(super) fn progress(marker: Option<&[u8]>, id: &Ident) -> Progress {
    let Some(v) = marker else {
        return Progress::NotStaged;
    };
    let Some(nl) = v.iter().position(|&b| b == b'\n') else {
        return Progress::NotStaged;
    };
    let Some(m) = Ident::parse(&v[..nl]) else {
        return Progress::NotStaged;
    };
    if !m.same_history(id) {
        return Progress::NotStaged;
    }
    if m.position() > id.position() {
        return Progress::Done(None);
    }
    if m != *id {
        return Progress::NotStaged;
    }
    let state = String::from_utf8_lossy(&v[nl + 1..]);
    if state == "staged" {
        Progress::Staged
    } else if let Some(e) = state.strip_prefix("done err ") {
        Progress::Done(Some(e.to_string()))
    } else {
        Progress::Done(None)
    }
}

/// Whether a master's keyless marker (`None`: absent) says it ran `id` (or a later one).
pub(super) fn keyless_applied(marker: Option<&[u8]>, id: &Ident) -> bool {
    marker
        .and_then(Ident::parse)
        .is_some_and(|m| m.same_history(id) && m.position() >= id.position())
}

/// `<base>:xslot:{<base>}:<suffix>`: the temporary keys and the stage marker, in the
/// floor's slot.
fn in_base_slot(base: &[u8], suffix: &str) -> Bytes {
    let mut k = base.to_vec();
    k.extend_from_slice(b":xslot:{");
    k.extend_from_slice(base);
    k.extend_from_slice(b"}:");
    k.extend_from_slice(suffix.as_bytes());
    Bytes::from(k)
}

/// The `n`th temporary key of a cross-slot command of the migration `base`.
pub(super) fn temp_key(base: &[u8], n: usize) -> Bytes {
    in_base_slot(base, &n.to_string())
}

/// The stage marker of the migration `base`.
pub(super) fn stage_key(base: &[u8]) -> Bytes {
    in_base_slot(base, "stage")
}

/// `<base><middle>{<tag of slot>}`.
fn with_slot(base: &[u8], middle: &[u8], slot: u16) -> Bytes {
    let mut k = base.to_vec();
    k.extend_from_slice(middle);
    k.push(b'{');
    k.extend_from_slice(super::plan::slot_tags()[usize::from(slot)].as_bytes());
    k.push(b'}');
    Bytes::from(k)
}

/// The key that says which cross-slot command `slot` last received the results of.
pub(super) fn done_key(base: &[u8], slot: u16) -> Bytes {
    with_slot(base, b":xslot:done", slot)
}

/// The key that says which keyless command the master owning `slot` last ran.
pub(super) fn keyless_key(base: &[u8], slot: u16) -> Bytes {
    with_slot(base, b":keyless", slot)
}

/// The `SCAN MATCH` patterns of the keys above (removed by `forget`; the keyless markers
/// are also read at resume).
pub(super) fn own_patterns(base: &str) -> [String; 2] {
    [format!("{base}:xslot*"), format!("{base}:keyless{{*")]
}

/// How an attempt failed.
pub(super) enum Step {
    /// Try again from the start (a master died or moved, the cluster is failing over).
    Retry(String),
    /// Stop the migration.
    Fatal(MigrationError),
}

fn from_cluster(e: cluster::ClusterError) -> Step {
    match e {
        cluster::ClusterError::CrossSlot { .. } | cluster::ClusterError::NoKey { .. } => {
            Step::Fatal(MigrationError::Internal(format!("cross-slot copy: {e}")))
        }
        other => Step::Retry(other.to_string()),
    }
}

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

impl ClusterSink {
    /// The identity of a cross-slot or keyless command at `seq` when it can be applied
    /// exactly once (checkpoints kept, a replicated command, a checkpoint seen); ranks the
    /// commands at one offset.
    pub(super) fn barrier_ident(&mut self, seq: u64, args: &[Bytes]) -> Option<Ident> {
        self.ckpt_base.as_ref()?;
        let c = self.template_ckpt.as_ref()?;
        let n = match self.barrier_at {
            Some((s, n)) if s == seq => n + 1,
            _ => 0,
        };
        self.barrier_at = Some((seq, n));
        Some(Ident::new(c, seq, n, args))
    }

    /// Retries `attempt` as a whole (see the module docs), bounded by [`RETRY_FOR`].
    async fn retried<T>(
        &mut self,
        tag: &Tag,
        what: &str,
        mut attempt: impl for<'a> FnMut(
            &'a mut ClusterSink,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T, Step>> + Send + 'a>,
        >,
    ) -> Result<T, MigrationError> {
        let first = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        let mut tries = 0u32;
        loop {
            if self.client.is_none() {
                match ClusterClient::connect(&self.seeds(), self.timeout).await {
                    Ok(c) => self.client = Some(c),
                    Err(e) => {
                        tries += 1;
                        self.give_up_or_wait(tag, what, first, tries, &mut backoff, e.to_string())
                            .await?;
                        continue;
                    }
                }
            }
            match attempt(self).await {
                Ok(v) => return Ok(v),
                Err(Step::Fatal(e)) => return Err(e),
                Err(Step::Retry(why)) => {
                    tries += 1;
                    self.give_up_or_wait(tag, what, first, tries, &mut backoff, why)
                        .await?;
                    if let Some(c) = self.client.as_mut() {
                        let _ = c.refresh().await;
                    }
                }
            }
        }
    }

    async fn give_up_or_wait(
        &mut self,
        tag: &Tag,
        what: &str,
        first: Instant,
        tries: u32,
        backoff: &mut Duration,
        why: String,
    ) -> Result<(), MigrationError> {
        let waited = first.elapsed();
        if waited >= RETRY_FOR {
            return Err(MigrationError::ClusterUnavailable {
                url: self.url.clone(),
                command: String::from_utf8_lossy(&tag.command).into_owned(),
                slot: None,
                node: what.to_string(),
                attempts: tries,
                waited,
                last: why,
            });
        }
        tracing::debug!(target: "migrate", "cluster target: {what} of {tag}: {why}; trying again");
        self.stats.retries += 1;
        tokio::time::sleep(*backoff).await;
        *backoff = (*backoff * 2).min(MAX_BACKOFF);
        Ok(())
    }

    /// The test-only fault ([`crash_after_copy_backs`](crate::migrate::MigrationBuilder::crash_after_copy_backs)).
    fn fault_tick(&mut self) -> Result<(), Step> {
        self.fault_steps += 1;
        match self.fault_after {
            Some(n) if self.fault_steps >= n => Err(Step::Fatal(MigrationError::Internal(
                format!("fault injected: stopped after {n} copy-back or keyless transactions"),
            ))),
            _ => Ok(()),
        }
    }

    async fn xcall(&mut self, args: &[Bytes]) -> Result<Frame, Step> {
        let Some(c) = self.client.as_mut() else {
            return Err(Step::Retry("no cluster client".into()));
        };
        let r = c.call(args).await.map_err(from_cluster)?;
        match ServerError::from_frame(&r) {
            Some(e) if retryable(&e) => Err(Step::Retry(e.to_string())),
            _ => Ok(r),
        }
    }

    /// `GET key` (`None`: absent).
    async fn xget(&mut self, key: &Bytes) -> Result<Option<Vec<u8>>, Step> {
        let r = self.xcall(&[b("GET"), key.clone()]).await?;
        Ok(r.as_bytes().map(<[u8]>::to_vec))
    }

    /// The command that makes `to` what `from` is now (value and TTL), or absent.
    async fn copy_command(
        &mut self,
        from: &Bytes,
        to: &Bytes,
        tag: &Tag,
    ) -> Result<Vec<Bytes>, Step> {
        let dump = self.xcall(&[b("DUMP"), from.clone()]).await?;
        match dump.as_bytes() {
            Some(payload) => {
                let payload = Bytes::copy_from_slice(payload);
                let ttl = match self.xcall(&[b("PTTL"), from.clone()]).await? {
                    Frame::Integer(t) if t > 0 => t,
                    _ => 0,
                };
                Ok(vec![
                    b("RESTORE"),
                    to.clone(),
                    Bytes::from(ttl.to_string()),
                    payload,
                    b("REPLACE"),
                ])
            }
            None if dump.is_null() => Ok(vec![b("DEL"), to.clone()]),
            None => Err(Step::Fatal(MigrationError::WriteFailed {
                tag: Box::new(tag.clone().with_key(from.clone())),
                reply: Box::new(
                    ServerError::from_frame(&dump)
                        .unwrap_or_else(|| ServerError::new(format!("ERR DUMP answered {dump:?}"))),
                ),
            })),
        }
    }

    /// One `MULTI`/`EXEC` of `cmds` on the master of `slot`: the replies of `EXEC`. An
    /// error queuing a command discards the transaction.
    async fn slot_txn(
        &mut self,
        slot: u16,
        cmds: &[Vec<Bytes>],
        tag: &Tag,
    ) -> Result<Vec<Frame>, Step> {
        let Some(c) = self.client.as_mut() else {
            return Err(Step::Retry("no cluster client".into()));
        };
        let Some(node) = c.topology().master_for_slot(slot).cloned() else {
            return Err(Step::Retry(format!(
                "slot {slot} is not served by any master"
            )));
        };
        let refused = |e: ServerError, key: Option<&Bytes>| {
            if retryable(&e) {
                Step::Retry(format!("{} (slot {slot}): {e}", node.addr()))
            } else {
                let tag = match key {
                    Some(k) => tag.clone().with_key(k.clone()),
                    None => tag.clone(),
                };
                Step::Fatal(MigrationError::WriteFailed {
                    tag: Box::new(tag),
                    reply: Box::new(e),
                })
            }
        };
        let r = c
            .call_node(&node, &[b("MULTI")])
            .await
            .map_err(from_cluster)?;
        if let Some(e) = ServerError::from_frame(&r) {
            return Err(refused(e, None));
        }
        for cmd in cmds {
            let r = c.call_node(&node, cmd).await.map_err(from_cluster)?;
            if let Some(e) = ServerError::from_frame(&r) {
                let _ = c.call_node(&node, &[b("DISCARD")]).await;
                return Err(refused(e, cmd.get(1)));
            }
        }
        let r = c
            .call_node(&node, &[b("EXEC")])
            .await
            .map_err(from_cluster)?;
        match r {
            Frame::Array(items) if items.len() == cmds.len() => Ok(items),
            other => match ServerError::from_frame(&other) {
                Some(e) => Err(refused(e, None)),
                None => Err(Step::Retry(format!(
                    "{}: EXEC answered {other:?}",
                    node.addr()
                ))),
            },
        }
    }

    /// A cross-slot command applied exactly once (see the module docs): the failure, if
    /// any.
    pub(super) async fn cross_slot_once(
        &mut self,
        tag: &Tag,
        args: &[Bytes],
        idx: &[usize],
        id: Ident,
    ) -> Result<Option<Outcome>, MigrationError> {
        let (args, idx) = (args.to_vec(), idx.to_vec());
        let t = tag.clone();
        let failure = self
            .retried(tag, "cross-slot copy", move |s| {
                let (t, args, idx, id) = (t.clone(), args.clone(), idx.clone(), id.clone());
                Box::pin(async move { s.cross_slot_attempt(&t, &args, &idx, &id).await })
            })
            .await?;
        Ok(failure.map(|reply| Outcome::Failed {
            tag: tag.clone(),
            reply: ServerError::new(reply),
        }))
    }

    async fn cross_slot_attempt(
        &mut self,
        tag: &Tag,
        args: &[Bytes],
        idx: &[usize],
        id: &Ident,
    ) -> Result<Option<String>, Step> {
        let Some(base) = self.ckpt_base.clone() else {
            return Err(Step::Fatal(MigrationError::Internal(
                "no checkpoint key".into(),
            )));
        };
        let mut keys: Vec<Bytes> = Vec::new();
        let mut temp_of: Vec<usize> = Vec::with_capacity(idx.len());
        for &i in idx {
            let n = match keys.iter().position(|x| *x == args[i]) {
                Some(n) => n,
                None => {
                    keys.push(args[i].clone());
                    keys.len() - 1
                }
            };
            temp_of.push(n);
        }
        let mut by_slot: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
        for (n, k) in keys.iter().enumerate() {
            by_slot.entry(key_slot(k)).or_default().push(n);
        }
        let stage = stage_key(&base);
        let base_slot = key_slot(&base);
        let temps: Vec<Bytes> = (0..keys.len()).map(|n| temp_key(&base, n)).collect();
        let marker = self.xget(&stage).await?;
        let staged_now = match progress(marker.as_deref(), id) {
            Progress::Done(failure) => {
                self.stats.skipped += 1;
                return Ok(failure);
            }
            Progress::Staged => false,
            Progress::NotStaged => {
                // a. The keys copied to the temporary keys, then the command on them and
                // the marker in one transaction.
                for (n, k) in keys.iter().enumerate() {
                    let cmd = self.copy_command(k, &temps[n], tag).await?;
                    let r = self.xcall(&cmd).await?;
                    if let Some(e) = ServerError::from_frame(&r) {
                        return Err(Step::Fatal(MigrationError::WriteFailed {
                            tag: Box::new(tag.clone().with_key(k.clone())),
                            reply: Box::new(e),
                        }));
                    }
                }
                let mut run = args.to_vec();
                for (j, &i) in idx.iter().enumerate() {
                    run[i] = temps[temp_of[j]].clone();
                }
                let set = vec![b("SET"), stage.clone(), marker_value(id, &Progress::Staged)];
                let replies = self.slot_txn(base_slot, &[run, set], tag).await?;
                if let Some(e) = replies.first().and_then(ServerError::from_frame) {
                    // Failed on the copies: nothing to copy back.
                    let done = Progress::Done(Some(e.to_string()));
                    self.xcall(&[b("SET"), stage.clone(), marker_value(id, &done)])
                        .await?;
                    let mut del = vec![b("DEL")];
                    del.extend(temps.iter().cloned());
                    self.xcall(&del).await?;
                    return Ok(Some(e.to_string()));
                }
                true
            }
        };
        // b. Per slot: its keys' results and its done key, in one transaction.
        let done_value = Bytes::from(id.encode());
        for (slot, ns) in by_slot {
            let done = done_key(&base, slot);
            if !staged_now && self.xget(&done).await?.as_deref() == Some(&done_value[..]) {
                continue;
            }
            let mut cmds = Vec::with_capacity(ns.len() + 1);
            for n in ns {
                cmds.push(self.copy_command(&temps[n], &keys[n], tag).await?);
            }
            cmds.push(vec![b("SET"), done, done_value.clone()]);
            let replies = self.slot_txn(slot, &cmds, tag).await?;
            for (r, cmd) in replies.iter().zip(&cmds) {
                if let Some(e) = ServerError::from_frame(r) {
                    return Err(Step::Fatal(MigrationError::WriteFailed {
                        tag: Box::new(tag.clone().with_key(cmd[1].clone())),
                        reply: Box::new(e),
                    }));
                }
            }
            self.fault_tick()?;
        }
        // c. Finished; the temporary keys removed.
        self.xcall(&[b("SET"), stage, marker_value(id, &Progress::Done(None))])
            .await?;
        let mut del = vec![b("DEL")];
        del.extend(temps);
        self.xcall(&del).await?;
        Ok(None)
    }

    /// A keyless command (`FLUSHALL`, `FUNCTION LOAD`, ...) applied exactly once on every
    /// master (see the module docs): the failure, if any.
    pub(super) async fn keyless_once(
        &mut self,
        tag: &Tag,
        args: &[Bytes],
        id: Ident,
    ) -> Result<Option<Outcome>, MigrationError> {
        let Some(base) = self.ckpt_base.clone() else {
            return Err(MigrationError::Internal("no checkpoint key".into()));
        };
        let base_slot = key_slot(&base);
        // One marker slot per master: the floor's for its master, else the first.
        let mut slots: Vec<u16> = Vec::new();
        for m in self.masters() {
            let owned = self.topology.slot_map().slots_of(&m);
            let s = if owned.iter().any(|r| r.contains(&base_slot)) {
                base_slot
            } else {
                match owned.first() {
                    Some(r) => *r.start(),
                    None => continue,
                }
            };
            slots.push(s);
        }
        let name = args
            .first()
            .map(|a| a.to_ascii_uppercase())
            .unwrap_or_default();
        let flush = name == b"FLUSHALL" || name == b"FLUSHDB";
        let mut failure: Option<String> = None;
        for slot in slots {
            let (t, args2, id2, base2) = (tag.clone(), args.to_vec(), id.clone(), base.clone());
            let f = self
                .retried(tag, "keyless command", move |s| {
                    let (t, args2, id2, base2) =
                        (t.clone(), args2.clone(), id2.clone(), base2.clone());
                    Box::pin(async move {
                        s.keyless_attempt(&t, &args2, &id2, &base2, slot, flush)
                            .await
                    })
                })
                .await?;
            if failure.is_none() {
                failure = f;
            }
        }
        Ok(failure.map(|reply| Outcome::Failed {
            tag: tag.clone(),
            reply: ServerError::new(reply),
        }))
    }

    async fn keyless_attempt(
        &mut self,
        tag: &Tag,
        args: &[Bytes],
        id: &Ident,
        base: &Bytes,
        slot: u16,
        flush: bool,
    ) -> Result<Option<String>, Step> {
        let key = keyless_key(base, slot);
        if keyless_applied(self.xget(&key).await?.as_deref(), id) {
            self.stats.skipped += 1;
            return Ok(None);
        }
        let mut cmds = vec![args.to_vec(), vec![b("SET"), key, Bytes::from(id.encode())]];
        if flush && slot == key_slot(base) {
            // The flush erases the floor and the stage marker: set again with it.
            for k in [base.clone(), stage_key(base)] {
                if let Some(v) = self.xget(&k).await? {
                    cmds.push(vec![b("SET"), k, Bytes::from(v)]);
                }
            }
        }
        let replies = self.slot_txn(slot, &cmds, tag).await?;
        self.fault_tick()?;
        Ok(replies
            .first()
            .and_then(ServerError::from_frame)
            .map(|e| e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use replication_client::{ReplId, ResumePoint};

    fn ckpt(offset: u64) -> Checkpoint {
        Checkpoint {
            phase: crate::migrate::checkpoint::CheckpointPhase::Incremental,
            point: ResumePoint {
                replid: ReplId::from_bytes(&[b'a'; 40]).unwrap(),
                offset,
                db: 0,
            },
            fingerprint: "fp1".into(),
            source: "redis://src:6379".into(),
        }
    }

    fn args(a: &[&str]) -> Vec<Bytes> {
        a.iter().map(|s| Bytes::from(s.to_string())).collect()
    }

    #[test]
    fn identity_round_trips_and_names_the_command() {
        let rename = args(&["RENAME", "a", "b"]);
        let id = Ident::new(&ckpt(10), 42, 1, &rename);
        assert_eq!(Ident::parse(id.encode().as_bytes()), Some(id.clone()));
        assert_ne!(
            Ident::new(&ckpt(10), 42, 1, &args(&["RENAME", "a", "c"])).hash,
            id.hash
        );
        // Argument boundaries count.
        assert_ne!(
            args_hash(&args(&["ab", "c"])),
            args_hash(&args(&["a", "bc"]))
        );
        assert_eq!(Ident::parse(b"redis-migrate-checkpoint/1 x"), None);
        assert_eq!(Ident::parse(b"\xff"), None);
        assert_eq!(Ident::parse(b""), None);
    }

    #[test]
    fn what_the_stage_marker_says() {
        let c = ckpt(10);
        let id = Ident::new(&c, 100, 0, &args(&["RENAME", "a", "b"]));
        assert_eq!(progress(None, &id), Progress::NotStaged);
        assert_eq!(progress(Some(b"garbage"), &id), Progress::NotStaged);
        let staged = marker_value(&id, &Progress::Staged);
        assert_eq!(progress(Some(&staged), &id), Progress::Staged);
        let ok = marker_value(&id, &Progress::Done(None));
        assert_eq!(progress(Some(&ok), &id), Progress::Done(None));
        let err = marker_value(&id, &Progress::Done(Some("ERR no such key".into())));
        assert_eq!(
            progress(Some(&err), &id),
            Progress::Done(Some("ERR no such key".into()))
        );
        // An earlier command's marker: this one is not staged.
        let before = Ident::new(&c, 90, 0, &args(&["SMOVE", "a", "b", "m"]));
        let m = marker_value(&before, &Progress::Staged);
        assert_eq!(progress(Some(&m), &id), Progress::NotStaged);
        // A later one (or a later one at the same offset): this one finished.
        for later in [
            Ident::new(&c, 110, 0, &args(&["SMOVE", "a", "b", "m"])),
            Ident::new(&c, 100, 1, &args(&["SMOVE", "a", "b", "m"])),
        ] {
            let m = marker_value(&later, &Progress::Staged);
            assert_eq!(progress(Some(&m), &id), Progress::Done(None));
        }
        // Another command at the same place, or another migration: not this one.
        let other = Ident::new(&c, 100, 0, &args(&["RENAME", "a", "c"]));
        let m = marker_value(&other, &Progress::Staged);
        assert_eq!(progress(Some(&m), &id), Progress::NotStaged);
        let mut foreign = id.clone();
        foreign.fingerprint = "fp2".into();
        foreign.offset = 500;
        let m = marker_value(&foreign, &Progress::Done(None));
        assert_eq!(progress(Some(&m), &id), Progress::NotStaged);
    }

    #[test]
    fn what_a_keyless_marker_says() {
        let c = ckpt(10);
        let id = Ident::new(&c, 100, 0, &args(&["FLUSHALL"]));
        assert!(!keyless_applied(None, &id));
        assert!(keyless_applied(Some(id.encode().as_bytes()), &id));
        let later = Ident::new(&c, 100, 1, &args(&["FUNCTION", "LOAD", "x"]));
        assert!(keyless_applied(Some(later.encode().as_bytes()), &id));
        let earlier = Ident::new(&c, 99, 3, &args(&["FLUSHALL"]));
        assert!(!keyless_applied(Some(earlier.encode().as_bytes()), &id));
        let mut other = later;
        other.replid = "b".repeat(40);
        assert!(!keyless_applied(Some(other.encode().as_bytes()), &id));
    }

    #[test]
    fn record_keys_are_placed_and_reserved() {
        let base = b"__redis-migrate:checkpoint:s5461";
        let floor = key_slot(base);
        for k in [temp_key(base, 0), temp_key(base, 9), stage_key(base)] {
            assert_eq!(key_slot(&k), floor, "{k:?}");
            assert!(k.starts_with(base));
        }
        for slot in [0u16, 777, 16383] {
            assert_eq!(key_slot(&done_key(base, slot)), slot);
            assert_eq!(key_slot(&keyless_key(base, slot)), slot);
        }
        // Not read as slot checkpoints (`<base>{*`), removed by `forget` (`<base>*`).
        let slot_pattern = [&base[..], b"{"].concat();
        for k in [stage_key(base), done_key(base, 3), keyless_key(base, 3)] {
            assert!(!k.starts_with(&slot_pattern));
        }
        // Two source shards never share them.
        let other = b"__redis-migrate:checkpoint:s0";
        assert_ne!(temp_key(base, 0), temp_key(other, 0));
        assert!(!temp_key(base, 0).starts_with(other));
        assert!(!done_key(base, 3).starts_with(&[&other[..], b":"].concat()));
    }
}
