//! The full sync: RDB bytes in (a file, or the source's full-sync payload), keys written
//! to the target, each by `RESTORE` or by commands.
//!
//! Per key ([`WriteMode::Auto`]): the value's raw bytes ([`rdb_parser::Event::RawValue`])
//! and its decoded events are buffered while the raw size stays below the big-key
//! threshold; at `KeyEnd` the raw bytes become a `RESTORE` payload with the target's footer
//! version. A key whose type byte the target does not know, or that grows past the
//! threshold, goes through the [`Rewriter`] instead (the buffered events first, then the
//! rest as it is decoded), so memory stays bounded by about twice the threshold.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use rdb_parser::{Event, Family, KeyStart, Options, RdbDecoder, ValueKind};

use super::apply::{Applier, KeyMark, Method};
use super::conn::Stream;
use super::sweep::KeySet;
use super::{Conflict, MigrationError, WriteMode};
use crate::rewrite::{Cmd, Done as RwOutcome, KeyStatus, RewriteOptions, Rewriter};
use crate::{Filter, ServerVersion, Tag, Target};

/// What the full sync needs to know.
#[derive(Clone)]
pub(crate) struct FullSyncConfig {
    pub(crate) origin: String,
    pub(crate) version: ServerVersion,
    pub(crate) filter: Filter,
    pub(crate) mode: WriteMode,
    pub(crate) conflict: Conflict,
    pub(crate) big_key_bytes: usize,
    pub(crate) max_bulk_len: u64,
    pub(crate) rewrite: RewriteOptions,
    /// The target's modules (`MODULE LIST`), when it answered.
    pub(crate) target_modules: Option<Arc<[String]>>,
    /// Function libraries already on the target, kept ([`Conflict::Skip`] only).
    pub(crate) existing_functions: Option<Arc<HashSet<Bytes>>>,
    /// Learn which type bytes the target restores by trying the first key of each
    /// (a scratch `RESTORE` on its own connection) instead of trusting the version tables.
    pub(crate) probe: Option<(super::TargetConfig, std::time::Duration)>,
}

enum KeyMode {
    /// Nothing is written for this key.
    Skip,
    /// Raw bytes and events kept until `KeyEnd` (RESTORE), or until it gets too big.
    Buffer {
        raw: Vec<Bytes>,
        raw_len: usize,
        events: Vec<Event>,
    },
    /// Written as commands; the last command is held back to carry the key's mark.
    Rewrite { held: Option<Cmd> },
}

struct KeyState {
    start: KeyStart,
    db: u32,
    kind: ValueKind,
    mode: KeyMode,
}

pub(crate) struct FullSync {
    cfg: FullSyncConfig,
    decoder: RdbDecoder,
    buf: BytesMut,
    rewriter: Rewriter,
    key: Option<KeyState>,
    /// Second connection for `EXISTS` ([`Conflict::Skip`] with keys written as commands).
    exists: Option<(Target<Stream>, Option<u32>)>,
    /// Keys sent to the target.
    pub(crate) keys_sent: u64,
    /// Keys skipped (expired, filtered, existing, unsupported).
    pub(crate) keys_skipped: u64,
    /// Every key of the snapshot inside the filter, for the sweep of a healing full sync.
    keys: Option<KeySet>,
    /// The probe connection (opened on first use) and what it learned per type byte.
    probe_conn: Option<Target<Stream>>,
    probed: std::collections::BTreeMap<u8, bool>,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl FullSync {
    pub(crate) fn new(cfg: FullSyncConfig, exists: Option<Target<Stream>>) -> FullSync {
        let rewrite = cfg
            .rewrite
            .clone()
            .replace(cfg.conflict == Conflict::Replace);
        FullSync {
            rewriter: Rewriter::new(cfg.version, rewrite, now_ms()),
            decoder: RdbDecoder::new(Options::default().raw_values(true)),
            buf: BytesMut::new(),
            key: None,
            exists: exists.map(|t| (t, None)),
            keys_sent: 0,
            keys_skipped: 0,
            keys: None,
            probe_conn: None,
            probed: std::collections::BTreeMap::new(),
            cfg,
        }
    }

    /// Records every key of the snapshot that the filter accepts (for [`super::sweep`]).
    pub(crate) fn collect_keys(mut self) -> FullSync {
        self.keys = Some(KeySet::default());
        self
    }

    /// The keys recorded by [`FullSync::collect_keys`].
    pub(crate) fn take_keys(&mut self) -> Option<KeySet> {
        self.keys.take()
    }

    /// Gives back the `EXISTS` connection (for the next full sync after an interrupted one).
    pub(crate) fn into_exists(self) -> Option<Target<Stream>> {
        self.exists.map(|(t, _)| t)
    }

    /// RDB bytes decoded so far.
    pub(crate) fn offset(&self) -> u64 {
        self.decoder.offset()
    }

    fn rdb_error(&self, e: rdb_parser::Error) -> MigrationError {
        MigrationError::Rdb {
            origin: self.cfg.origin.clone(),
            source: std::sync::Arc::new(e),
        }
    }

    /// Takes the next RDB bytes and writes every key they complete.
    pub(crate) async fn feed(
        &mut self,
        chunk: &[u8],
        ap: &mut Applier,
    ) -> Result<(), MigrationError> {
        self.buf.extend_from_slice(chunk);
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(ev)) => self.event(ev, ap).await?,
                Ok(None) => return Ok(()),
                Err(e) => return Err(self.rdb_error(e)),
            }
        }
    }

    /// The input ended: an incomplete RDB is an error.
    pub(crate) fn finish(&self) -> Result<(), MigrationError> {
        self.decoder.finish().map_err(|e| self.rdb_error(e))
    }

    async fn event(&mut self, ev: Event, ap: &mut Applier) -> Result<(), MigrationError> {
        match ev {
            Event::KeyStart(k) => self.key_start(k, ap).await,
            Event::KeyEnd => self.key_end(ap).await,
            Event::RawValue(chunk) => self.raw(chunk, ap).await,
            Event::ModuleAux(aux) => {
                // No command loads module auxiliary data: counted and named.
                let t = &aux.module.name;
                let module = crate::module_for_type(t).unwrap_or("unknown module");
                tracing::debug!(target: "migrate", "module aux data of {module} ({t}) not carried over");
                *ap.report
                    .module_aux_dropped
                    .entry(format!("{module} ({t})"))
                    .or_default() += 1;
                Ok(())
            }
            Event::Function(_) => {
                let mut cmds = Vec::new();
                let out = self.rewriter.push(&ev, &mut |c| cmds.push(c));
                if let (Some(RwOutcome::Function(report)), Some(existing)) =
                    (&out, &self.cfg.existing_functions)
                {
                    if let Some(name) = report.name.as_ref().filter(|n| existing.contains(*n)) {
                        let name = String::from_utf8_lossy(name).into_owned();
                        tracing::info!(target: "migrate", "function library {name} is on the target already: kept");
                        ap.report.functions_skipped.push(name);
                        return Ok(());
                    }
                }
                if let Some(RwOutcome::Function(report)) = &out {
                    if report.status == crate::rewrite::FunctionStatus::Unsupported {
                        let name = report
                            .name
                            .as_ref()
                            .map(|n| String::from_utf8_lossy(n).into_owned());
                        return ap.unsupported(
                            "FUNCTION LOAD".into(),
                            None,
                            format!(
                                "function library {} needs Redis 7.0+ on the target",
                                name.unwrap_or_default()
                            ),
                        );
                    }
                }
                let n = cmds.len();
                for (i, c) in cmds.into_iter().enumerate() {
                    let seq = ap.next_seq();
                    let tag = Tag::new(None, c.args[0].clone(), seq);
                    if i + 1 == n {
                        let mark = KeyMark {
                            seq,
                            db: 0,
                            kind: "function",
                            method: Method::Function,
                            lossy: None,
                        };
                        ap.send_last(tag, &c.args, mark).await?;
                    } else {
                        ap.send(tag, &c.args).await?;
                    }
                }
                Ok(())
            }
            other => self.value_event(other, ap).await,
        }
    }

    async fn key_start(&mut self, mut k: KeyStart, ap: &mut Applier) -> Result<(), MigrationError> {
        let filter = &self.cfg.filter;
        // A source that is itself a migration's target holds its checkpoint: never copied.
        let ours = k.key.starts_with(super::checkpoint::RESERVED_PREFIX);
        let mapped = if ours {
            None
        } else {
            filter.map_key(k.db, &k.key).map(|(db, key)| match key {
                std::borrow::Cow::Borrowed(_) => (db, None),
                std::borrow::Cow::Owned(renamed) => (db, Some(Bytes::from(renamed))),
            })
        };
        let db = mapped.as_ref().map(|(db, _)| *db);
        if let Some((_, Some(renamed))) = mapped {
            k.key = renamed;
        }
        let kind = k.kind();
        let skip = |k: KeyStart, db: u32| KeyState {
            start: k,
            db,
            kind,
            mode: KeyMode::Skip,
        };
        let Some(db) = db else {
            ap.report.skipped_filtered += 1;
            self.keys_skipped += 1;
            self.key = Some(skip(k, 0));
            return Ok(());
        };
        k.db = db;
        if let Some(keys) = &mut self.keys {
            keys.insert(db, &k.key);
        }
        let now = now_ms();
        if k.expire_at_ms.is_some_and(|at| at <= now) {
            ap.report.skipped_expired += 1;
            self.keys_skipped += 1;
            if self.cfg.conflict == Conflict::Replace {
                // The target must not keep an older value of a key that is gone.
                let del = if self.cfg.version.has_unlink() {
                    "UNLINK"
                } else {
                    "DEL"
                };
                let tag = Tag::new(Some(db), del, ap.next_seq()).with_key(k.key.clone());
                ap.send(tag, &[Bytes::from_static(del.as_bytes()), k.key.clone()])
                    .await?;
            }
            self.key = Some(skip(k, db));
            return Ok(());
        }
        let v = self.cfg.version;
        let source_valkey = self.decoder.header().map(|h| h.family) == Some(Family::Valkey);
        // Type bytes from 22 up mean different things in the two families.
        let same_table = k.type_byte < 22 || source_valkey == v.is_valkey();
        let restorable = self.cfg.mode != WriteMode::Rewrite
            && if self.cfg.probe.is_some() {
                // Learned from the target itself (optimistic until the first key is tried).
                self.probed.get(&k.type_byte) != Some(&false)
            } else {
                same_table && v.knows_type(k.type_byte)
            };
        let module = kind == ValueKind::Module;
        if let (true, Some(loaded), Some(t)) = (module, &self.cfg.target_modules, &k.module) {
            let reason = match crate::provides_type(loaded, &t.name) {
                Some(true) => None,
                Some(false) => Some(format!(
                    "module {} is not loaded on the target (module type {})",
                    crate::module_for_type(&t.name).unwrap_or_default(),
                    t.name
                )),
                None if loaded.is_empty() => Some(format!(
                    "no module is loaded on the target (module type {})",
                    t.name
                )),
                None => None,
            };
            if let Some(reason) = reason {
                self.keys_skipped += 1;
                let key = k.key.clone();
                self.key = Some(skip(k, db));
                return ap.unsupported(kind.as_str().into(), Some(key), reason);
            }
        }
        if !restorable && (module || self.cfg.mode == WriteMode::Restore) {
            let reason = if self.cfg.mode == WriteMode::Rewrite {
                "module values can only be written with RESTORE (write mode rewrite)".to_string()
            } else {
                format!("the target ({v}) cannot RESTORE RDB type {}", k.type_byte)
            };
            self.keys_skipped += 1;
            let key = k.key.clone();
            self.key = Some(skip(k, db));
            return ap.unsupported(kind.as_str().into(), Some(key), reason);
        }
        self.key = Some(KeyState {
            start: k,
            db,
            kind,
            mode: KeyMode::Buffer {
                raw: Vec::new(),
                raw_len: 0,
                events: Vec::new(),
            },
        });
        if !restorable {
            self.begin_rewrite(ap).await?;
        }
        Ok(())
    }

    /// Switches the current key to commands: checks `EXISTS` under [`Conflict::Skip`], then
    /// replays the buffered events into the rewriter.
    async fn begin_rewrite(&mut self, ap: &mut Applier) -> Result<(), MigrationError> {
        let Some(state) = self.key.as_mut() else {
            return Ok(());
        };
        let KeyMode::Buffer { events, .. } =
            std::mem::replace(&mut state.mode, KeyMode::Rewrite { held: None })
        else {
            return Ok(());
        };
        if let Some((target, selected)) = &mut self.exists {
            let url = ap.report.target.clone();
            let err = |source| MigrationError::Target {
                url: url.clone(),
                source: Box::new(source),
            };
            if *selected != Some(state.db) {
                target
                    .call(&["SELECT".as_bytes(), state.db.to_string().as_bytes()])
                    .await
                    .map_err(err)?;
                *selected = Some(state.db);
            }
            let reply = target
                .call(&[&b"EXISTS"[..], &state.start.key[..]])
                .await
                .map_err(err)?;
            if reply == resp_codec::Frame::Integer(1) {
                ap.report.skipped_conflict += 1;
                self.keys_skipped += 1;
                state.mode = KeyMode::Skip;
                return Ok(());
            }
        }
        self.rewriter.set_now_ms(now_ms());
        let start = Event::KeyStart(state.start.clone());
        let mut cmds = Vec::new();
        self.rewriter.push(&start, &mut |c| cmds.push(c));
        for ev in &events {
            self.rewriter.push(ev, &mut |c| cmds.push(c));
        }
        self.send_cmds(cmds, ap).await
    }

    /// Sends rewritten commands, holding the last one back.
    async fn send_cmds(&mut self, cmds: Vec<Cmd>, ap: &mut Applier) -> Result<(), MigrationError> {
        for c in cmds {
            let Some(KeyState {
                mode: KeyMode::Rewrite { held },
                ..
            }) = self.key.as_mut()
            else {
                return Ok(());
            };
            if let Some(prev) = held.replace(c) {
                let tag = cmd_tag(&prev, ap.next_seq());
                ap.send(tag, &prev.args).await?;
            }
        }
        Ok(())
    }

    async fn raw(&mut self, chunk: Bytes, ap: &mut Applier) -> Result<(), MigrationError> {
        let Some(state) = self.key.as_mut() else {
            return Ok(());
        };
        let KeyMode::Buffer { raw, raw_len, .. } = &mut state.mode else {
            return Ok(());
        };
        *raw_len += chunk.len();
        raw.push(chunk);
        let len = *raw_len;
        let forced = self.cfg.mode == WriteMode::Restore || state.kind == ValueKind::Module;
        if len > self.cfg.big_key_bytes && !forced {
            return self.begin_rewrite(ap).await;
        }
        // Payload footer: 10 bytes.
        if forced && (len + 10) as u64 > self.cfg.max_bulk_len {
            let key = state.start.key.clone();
            let kind = state.kind;
            state.mode = KeyMode::Skip;
            self.keys_skipped += 1;
            return ap.unsupported(
                kind.as_str().into(),
                Some(key),
                format!(
                    "its RESTORE payload exceeds the target's proto-max-bulk-len ({} bytes)",
                    self.cfg.max_bulk_len
                ),
            );
        }
        Ok(())
    }

    async fn value_event(&mut self, ev: Event, ap: &mut Applier) -> Result<(), MigrationError> {
        let Some(state) = self.key.as_mut() else {
            return Ok(());
        };
        match &mut state.mode {
            KeyMode::Skip => Ok(()),
            KeyMode::Buffer { events, .. } => {
                events.push(ev);
                Ok(())
            }
            KeyMode::Rewrite { .. } => {
                let mut cmds = Vec::new();
                self.rewriter.push(&ev, &mut |c| cmds.push(c));
                self.send_cmds(cmds, ap).await
            }
        }
    }

    /// Whether the current key is the first of its type byte on a probed target.
    fn needs_probe(&self) -> bool {
        self.cfg.probe.is_some()
            && self.key.as_ref().is_some_and(|k| {
                matches!(k.mode, KeyMode::Buffer { .. })
                    && k.kind != ValueKind::Module
                    && !self.probed.contains_key(&k.start.type_byte)
            })
    }

    /// `RESTORE`s the current key's payload into a scratch key of the target (then removes
    /// it) and records whether its type byte is accepted.
    async fn probe_current(&mut self, ap: &mut Applier) -> Result<bool, MigrationError> {
        let (Some(state), Some((target, timeout))) = (self.key.as_ref(), self.cfg.probe.as_ref())
        else {
            return Ok(true);
        };
        let KeyMode::Buffer { raw, .. } = &state.mode else {
            return Ok(true);
        };
        let type_byte = state.start.type_byte;
        let payload = rdb_parser::dump::build_payload_chunks(raw, self.cfg.version.rdb_version());
        if self.probe_conn.is_none() {
            self.probe_conn = Some(super::conn::connect(target, *timeout).await?);
        }
        let conn = self.probe_conn.as_mut().expect("just connected");
        let url = ap.report.target.clone();
        let err = |source| MigrationError::Target {
            url: url.clone(),
            source: Box::new(source),
        };
        let key = [super::checkpoint::RESERVED_PREFIX, b"probe"].concat();
        let reply = conn
            .call(&[&b"RESTORE"[..], &key, b"0", &payload, b"REPLACE"])
            .await
            .map_err(err)?;
        conn.call(&[&b"DEL"[..], &key]).await.map_err(err)?;
        let accepted = !reply.is_error();
        if accepted {
            tracing::info!(target: "migrate", "the target restores RDB type {type_byte}");
        } else {
            let why = crate::ServerError::from_frame(&reply)
                .map(|e| e.to_string())
                .unwrap_or_default();
            tracing::info!(target: "migrate", "the target refuses RDB type {type_byte} ({why}): such keys are written as commands");
        }
        self.probed.insert(type_byte, accepted);
        ap.report.restore_probe.insert(type_byte, accepted);
        Ok(accepted)
    }

    async fn key_end(&mut self, ap: &mut Applier) -> Result<(), MigrationError> {
        if self.needs_probe() && !self.probe_current(ap).await? {
            // The first key of a type the target refuses: its buffered events go to the
            // rewriter like a key that was never restorable.
            self.begin_rewrite(ap).await?;
        }
        let Some(state) = self.key.take() else {
            return Ok(());
        };
        match state.mode {
            KeyMode::Skip => Ok(()),
            KeyMode::Buffer { raw, .. } => {
                let mut k = state.start.clone();
                k.db = state.db;
                let replace = self.cfg.conflict == Conflict::Replace;
                let cmds = crate::rewrite::restore_commands(&k, &raw, self.cfg.version, replace);
                let n = cmds.len();
                for (i, c) in cmds.into_iter().enumerate() {
                    let seq = ap.next_seq();
                    let tag = cmd_tag(&c, seq);
                    if i + 1 < n {
                        ap.send(tag, &c.args).await?;
                        continue;
                    }
                    let mark = KeyMark {
                        seq,
                        db: state.db,
                        kind: state.kind.as_str(),
                        method: Method::Restore,
                        lossy: None,
                    };
                    self.keys_sent += 1;
                    ap.send_last(tag, &c.args, mark).await?;
                }
                Ok(())
            }
            KeyMode::Rewrite { held } => {
                let mut cmds = Vec::new();
                let out = self.rewriter.push(&Event::KeyEnd, &mut |c| cmds.push(c));
                self.key = Some(KeyState {
                    mode: KeyMode::Rewrite { held },
                    ..state
                });
                self.send_cmds(cmds, ap).await?;
                let Some(KeyState {
                    mode: KeyMode::Rewrite { held },
                    start,
                    db,
                    kind,
                }) = self.key.take()
                else {
                    return Ok(());
                };
                let report = match out {
                    Some(RwOutcome::Key(r)) => r,
                    _ => return Ok(()),
                };
                match &report.status {
                    KeyStatus::NeedsRestore { .. } | KeyStatus::Unsupported { .. } => {
                        self.keys_skipped += 1;
                        return ap.unsupported(
                            kind.as_str().into(),
                            Some(start.key),
                            report.status.to_string(),
                        );
                    }
                    KeyStatus::Expired { .. } => {
                        ap.report.skipped_expired += 1;
                        self.keys_skipped += 1;
                    }
                    _ => {}
                }
                for loss in &report.losses {
                    tracing::warn!(target: "migrate", "key {}: {loss}", super::report::key_text(&start.key));
                }
                if let Some(last) = held {
                    let seq = ap.next_seq();
                    let mark = KeyMark {
                        seq,
                        db,
                        kind: kind.as_str(),
                        method: Method::Rewrite,
                        lossy: (!report.losses.is_empty()).then(|| {
                            let what: Vec<String> =
                                report.losses.iter().map(|l| l.to_string()).collect();
                            Box::new((start.key.clone(), what.join("; ")))
                        }),
                    };
                    self.keys_sent += 1;
                    ap.send_last(cmd_tag(&last, seq), &last.args, mark).await?;
                }
                Ok(())
            }
        }
    }
}

fn cmd_tag(c: &Cmd, seq: u64) -> Tag {
    let tag = Tag::new(c.db(), c.args[0].clone(), seq);
    match c.key() {
        Some(k) => tag.with_key(k.clone()),
        None => tag,
    }
}
