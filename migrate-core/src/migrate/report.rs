//! [`Report`]: what a migration did, printable as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;

/// Longest key shown in reports; longer keys are cut with `...`.
const SHOWN_KEY_LEN: usize = 128;

/// Why the migration ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StopReason {
    /// The RDB file was imported completely.
    #[default]
    Completed,
    /// `once`: the full sync was done and the target caught up with the source.
    CaughtUp,
    /// [`MigrationHandle::stop`](crate::migrate::MigrationHandle::stop) was called.
    Stopped,
    /// An error ended it (see [`Report::error`]).
    Failed,
}

impl StopReason {
    /// `completed`, `caught-up`, `stopped`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Completed => "completed",
            StopReason::CaughtUp => "caught-up",
            StopReason::Stopped => "stopped",
            StopReason::Failed => "failed",
        }
    }
}

/// A write the target refused (or lost), with its key and command, never its values.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Failure {
    /// The target db.
    pub db: Option<u32>,
    /// The key.
    pub key: Option<Bytes>,
    /// The command name.
    pub command: String,
    /// The error (the server's reply, cut and without arguments).
    pub error: String,
}

/// A command or key that cannot be reproduced on the target.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unsupported {
    /// The key.
    pub key: Option<Bytes>,
    /// The command name (or the key's type in the full sync).
    pub command: String,
    /// Why.
    pub reason: String,
}

/// A key written without something the target cannot hold (hash field TTLs into a
/// target without them, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lossy {
    /// The target db.
    pub db: u32,
    /// The key.
    pub key: Bytes,
    /// What was lost.
    pub what: String,
}

/// The final report of a migration: counts per type and per db, what was skipped and why,
/// failures and unsupported commands (with keys, never values), resyncs, durations and the
/// final offsets. [`Report::to_json`] prints it.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Report {
    /// The source (file path, or URL redacted).
    pub source: String,
    /// The target URL, redacted.
    pub target: String,
    /// The target's version (`redis 7.0.15`).
    pub target_version: String,
    /// Why it ended.
    pub stop_reason: StopReason,
    /// The error that ended it, if any (one line).
    pub error: Option<String>,
    /// Full-sync keys written, per type (`string`, `hash`, ...).
    pub keys_by_type: BTreeMap<String, u64>,
    /// Full-sync keys written, per target db.
    pub keys_by_db: BTreeMap<u32, u64>,
    /// Keys written with `RESTORE`.
    pub keys_restored: u64,
    /// Keys written as commands.
    pub keys_rewritten: u64,
    /// Keys written as commands that lost something (see the rewrite module's `Loss`).
    pub keys_lossy: u64,
    /// The lossy keys with what each lost (the first 1000; `keys_lossy` counts all).
    pub lossy: Vec<Lossy>,
    /// Keys skipped because their TTL had passed.
    pub skipped_expired: u64,
    /// Keys skipped by the filter.
    pub skipped_filtered: u64,
    /// Keys kept on the target ([`Conflict::Skip`](crate::migrate::Conflict::Skip)).
    pub skipped_conflict: u64,
    /// Function libraries loaded.
    pub functions: u64,
    /// Function libraries of the source kept as they were on the target
    /// ([`Conflict::Skip`](crate::migrate::Conflict::Skip)), by name.
    pub functions_skipped: Vec<String>,
    /// Modules loaded on the source but not on the target (their values are counted as
    /// unsupported, their auxiliary data in `module_aux_dropped`).
    pub modules_missing: Vec<String>,
    /// Module auxiliary data records (`MODULE_AUX`) that no command can load on the target,
    /// per `module (type)`: e.g. RediSearch index definitions `search (ft_index0)`. Indexes
    /// recreated from a live source are listed in `search_indexes_created`.
    pub module_aux_dropped: BTreeMap<String, u64>,
    /// RediSearch indexes recreated on the target with `FT.CREATE` (live sources).
    pub search_indexes_created: Vec<String>,
    /// Indexes that could not be recreated, or differ from the source's, with the reason.
    pub search_index_problems: Vec<String>,
    /// RDB bytes decoded.
    pub rdb_bytes: u64,
    /// Replicated commands applied (incremental phase).
    pub commands_applied: u64,
    /// Failed writes (at most the first 1000 are listed; see `failures_total`).
    pub failures: Vec<Failure>,
    /// All failed writes.
    pub failures_total: u64,
    /// Unsupported keys and commands (first 1000 listed).
    pub unsupported: Vec<Unsupported>,
    /// All unsupported keys and commands.
    pub unsupported_total: u64,
    /// Full syncs (the first included).
    pub full_syncs: u64,
    /// Full syncs that healed the target: after an interrupted full sync or a refused
    /// partial resync, the new snapshot is loaded over the old data and the keys it does not
    /// hold are removed (`keys_swept`).
    pub healing_full_syncs: u64,
    /// Keys removed from the target by the sweep of healing full syncs.
    pub keys_swept: u64,
    /// What probing the target taught, per RDB type byte: whether it restores it (see
    /// [`MigrationBuilder::probe_restore`](crate::migrate::MigrationBuilder::probe_restore)).
    pub restore_probe: BTreeMap<u8, bool>,
    /// Things the user should know that fit no counter (one line each).
    pub warnings: Vec<String>,
    /// The checkpoint the migration resumed from, if it did.
    pub resumed_from: Option<String>,
    /// The source offset of the last checkpoint written to the target.
    pub checkpoint_offset: Option<u64>,
    /// Partial resyncs after link failures (each resumed with no gap and no duplicate).
    pub partial_resyncs: u64,
    /// Replication link failures.
    pub disconnects: u64,
    /// Duration of the full sync.
    pub full_sync_duration: Option<Duration>,
    /// Total duration.
    pub duration: Duration,
    /// The source's replication id at the end.
    pub replid: Option<String>,
    /// Source replication offset received at the end.
    pub source_offset: Option<u64>,
    /// Source replication offset applied to the target at the end.
    pub applied_offset: Option<u64>,
    /// How the source was read: `psync`, `scan` or `file`.
    pub source_mode: String,
    /// Why scan mode was used when it was not asked for (the source's refusal).
    pub source_mode_reason: Option<String>,
    /// The number of masters when the target is a Redis Cluster (`None`: standalone).
    pub target_cluster_masters: Option<usize>,
    /// Cluster target: commands whose keys span slots and that no split serves (`RENAME`,
    /// `SMOVE`, `*STORE`, ...), run on temporary keys sharing one slot and copied back.
    pub cross_slot_commands: u64,
    /// Cluster target: commands split into one command per slot (`DEL`, `UNLINK`, `TOUCH`,
    /// `MSET` across slots).
    pub cross_slot_split: u64,
    /// Cluster target: source transactions and scripts writing keys in several slots,
    /// applied command by command (not atomically).
    pub cross_slot_transactions: u64,
    /// Cluster source: Valkey 9 atomic slot migrations (`CLUSTER MIGRATESLOTS`) seen
    /// during the migration (in a shard's stream, or listed by the old owner's node). Each
    /// is ordered across the two shards' streams (see `asm_unconfirmed`); one that could
    /// not be is named in `warnings`.
    pub atomic_slot_migrations: u64,
    /// Cluster source: replicated commands of an atomic slot migration's old owner on the
    /// moving slots, left out because the new owner's import carries them.
    pub asm_commands_left_out: u64,
    /// Cluster source: atomic slot migrations imported without the old owner's
    /// confirmation (within `move_wait`) that it leaves the slots out: their keys may
    /// differ on the target (each is named in `warnings`; check with `redis-migrate verify`).
    pub asm_unconfirmed: u64,
    /// Cluster target: `MOVED` and `ASK` redirections followed.
    pub cluster_redirects: u64,
    /// Cluster target: commands retried (`TRYAGAIN`, `CLUSTERDOWN`, a master failing over).
    pub cluster_retries: u64,
    /// Cluster target: commands sent again after their master's connection died.
    pub cluster_resent: u64,
    /// Cluster target, resumed: replicated commands not applied again because their
    /// slot's checkpoint showed them applied (the floor checkpoint lags the slots').
    pub cluster_resume_skipped: u64,
    /// Scan mode's counts (scanned, copied, re-copied, deleted, reconciled keys, the change
    /// queue at the end).
    pub scan: Option<super::ScanStats>,
    /// Failovers of the source followed: the link moved to the node that took over (a
    /// cluster shard's new master), continuing with `PSYNC` where it was.
    pub failovers_followed: u64,
    /// A cluster source: one entry per shard, sorted by first slot (the counters above are
    /// their sums). Empty for other sources.
    pub shards: Vec<ShardReport>,
}

/// One shard of a cluster source in the [`Report`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShardReport {
    /// `s` and the lowest slot it served at discovery (`s0`, `s5461`): its checkpoint key is
    /// [`CHECKPOINT_KEY`](super::CHECKPOINT_KEY)`:<id>`.
    pub id: String,
    /// The master it was read from at the end (`host:port`).
    pub master: String,
    /// The slots it served at discovery (`0-5460`).
    pub slots: String,
    /// How its link ended (`caught-up`, `stopped`, `failed`).
    pub state: String,
    /// Full syncs (the first included).
    pub full_syncs: u64,
    /// Partial resyncs (resumed from the checkpoint, after link failures or a failover).
    pub partial_resyncs: u64,
    /// Failovers followed.
    pub failovers_followed: u64,
    /// Full-sync keys written.
    pub keys: u64,
    /// Replicated commands applied.
    pub commands_applied: u64,
    /// Source replication offset received at the end.
    pub source_offset: Option<u64>,
    /// Source replication offset applied at the end.
    pub applied_offset: Option<u64>,
    /// The offset of its last checkpoint.
    pub checkpoint_offset: Option<u64>,
    /// Bytes of its stream received but not applied at the end.
    pub lag_bytes: u64,
    /// The error that ended it.
    pub error: Option<String>,
}

impl Report {
    /// Keys written by the full sync.
    pub fn keys_written(&self) -> u64 {
        self.keys_by_type.values().sum()
    }

    /// Adds a shard's counts and lists to this report (a cluster source), lists kept to
    /// `max` entries.
    pub(crate) fn absorb(&mut self, o: &Report, max: usize) {
        fn add<K: Ord + Clone>(a: &mut BTreeMap<K, u64>, b: &BTreeMap<K, u64>) {
            for (k, v) in b {
                *a.entry(k.clone()).or_default() += v;
            }
        }
        fn extend<T: Clone + PartialEq>(a: &mut Vec<T>, b: &[T], max: usize) {
            for x in b {
                if a.len() >= max {
                    break;
                }
                if !a.contains(x) {
                    a.push(x.clone());
                }
            }
        }
        add(&mut self.keys_by_type, &o.keys_by_type);
        add(&mut self.keys_by_db, &o.keys_by_db);
        add(&mut self.module_aux_dropped, &o.module_aux_dropped);
        self.keys_restored += o.keys_restored;
        self.keys_rewritten += o.keys_rewritten;
        self.keys_lossy += o.keys_lossy;
        extend(&mut self.lossy, &o.lossy, max);
        self.skipped_expired += o.skipped_expired;
        self.skipped_filtered += o.skipped_filtered;
        self.skipped_conflict += o.skipped_conflict;
        self.functions += o.functions;
        extend(&mut self.functions_skipped, &o.functions_skipped, max);
        extend(&mut self.modules_missing, &o.modules_missing, max);
        extend(
            &mut self.search_indexes_created,
            &o.search_indexes_created,
            max,
        );
        extend(
            &mut self.search_index_problems,
            &o.search_index_problems,
            max,
        );
        self.rdb_bytes += o.rdb_bytes;
        self.commands_applied += o.commands_applied;
        extend(&mut self.failures, &o.failures, max);
        self.failures_total += o.failures_total;
        extend(&mut self.unsupported, &o.unsupported, max);
        self.unsupported_total += o.unsupported_total;
        self.full_syncs += o.full_syncs;
        self.healing_full_syncs += o.healing_full_syncs;
        self.keys_swept += o.keys_swept;
        for (k, v) in &o.restore_probe {
            self.restore_probe.entry(*k).or_insert(*v);
        }
        extend(&mut self.warnings, &o.warnings, max);
        self.partial_resyncs += o.partial_resyncs;
        self.disconnects += o.disconnects;
        self.failovers_followed += o.failovers_followed;
        // A cluster target: every shard's sink.
        if self.target_cluster_masters.is_none() {
            self.target_cluster_masters = o.target_cluster_masters;
        }
        self.cross_slot_commands += o.cross_slot_commands;
        self.cross_slot_split += o.cross_slot_split;
        self.cross_slot_transactions += o.cross_slot_transactions;
        self.atomic_slot_migrations += o.atomic_slot_migrations;
        self.asm_commands_left_out += o.asm_commands_left_out;
        self.asm_unconfirmed += o.asm_unconfirmed;
        self.cluster_redirects += o.cluster_redirects;
        self.cluster_retries += o.cluster_retries;
        self.cluster_resent += o.cluster_resent;
        self.cluster_resume_skipped += o.cluster_resume_skipped;
    }

    pub(crate) fn fail(&mut self, max: usize, f: Failure) {
        self.failures_total += 1;
        if self.failures.len() < max {
            self.failures.push(f);
        }
    }

    pub(crate) fn lossy(&mut self, max: usize, l: Lossy) {
        self.keys_lossy += 1;
        if self.lossy.len() < max {
            self.lossy.push(l);
        }
    }

    pub(crate) fn unsupported(&mut self, max: usize, u: Unsupported) {
        self.unsupported_total += 1;
        if self.unsupported.len() < max {
            self.unsupported.push(u);
        }
    }

    /// The report as one JSON object (pretty-printed, stable field order). Keys are shown as
    /// text with non-printable bytes escaped as `\xNN` and cut after 128 bytes.
    pub fn to_json(&self) -> String {
        let mut o = String::from("{\n");
        let field = |o: &mut String, name: &str, value: String| {
            let _ = writeln!(o, "  \"{name}\": {value},");
        };
        field(&mut o, "source", json_str(&self.source));
        field(&mut o, "target", json_str(&self.target));
        field(&mut o, "target_version", json_str(&self.target_version));
        field(&mut o, "result", json_str(self.stop_reason.as_str()));
        field(
            &mut o,
            "error",
            self.error.as_deref().map(json_str).unwrap_or("null".into()),
        );
        field(&mut o, "keys_written", self.keys_written().to_string());
        field(&mut o, "keys_by_type", json_map(self.keys_by_type.iter()));
        field(&mut o, "keys_by_db", json_map(self.keys_by_db.iter()));
        field(&mut o, "keys_restored", self.keys_restored.to_string());
        field(&mut o, "keys_rewritten", self.keys_rewritten.to_string());
        field(&mut o, "keys_lossy", self.keys_lossy.to_string());
        let lossy: Vec<String> = self
            .lossy
            .iter()
            .map(|l| {
                format!(
                    "{{\"db\": {}, \"key\": {}, \"lost\": {}}}",
                    l.db,
                    json_str(&key_text(&l.key)),
                    json_str(&l.what)
                )
            })
            .collect();
        field(&mut o, "lossy", json_list(&lossy));
        field(
            &mut o,
            "skipped",
            format!(
                "{{\"expired\": {}, \"filtered\": {}, \"conflict\": {}}}",
                self.skipped_expired, self.skipped_filtered, self.skipped_conflict
            ),
        );
        field(&mut o, "functions", self.functions.to_string());
        let strs = |v: &[String]| {
            format!(
                "[{}]",
                v.iter().map(|s| json_str(s)).collect::<Vec<_>>().join(", ")
            )
        };
        field(&mut o, "functions_skipped", strs(&self.functions_skipped));
        field(&mut o, "modules_missing", strs(&self.modules_missing));
        field(
            &mut o,
            "module_aux_dropped",
            json_map(self.module_aux_dropped.iter()),
        );
        field(
            &mut o,
            "search_indexes_created",
            strs(&self.search_indexes_created),
        );
        let problems: Vec<String> = self
            .search_index_problems
            .iter()
            .map(|p| json_str(p))
            .collect();
        field(&mut o, "search_index_problems", json_list(&problems));
        field(&mut o, "rdb_bytes", self.rdb_bytes.to_string());
        field(
            &mut o,
            "commands_applied",
            self.commands_applied.to_string(),
        );
        field(&mut o, "failures_total", self.failures_total.to_string());
        let failures: Vec<String> = self
            .failures
            .iter()
            .map(|f| {
                format!(
                    "{{\"db\": {}, \"key\": {}, \"command\": {}, \"error\": {}}}",
                    opt_num(f.db),
                    opt_key(&f.key),
                    json_str(&f.command),
                    json_str(&f.error)
                )
            })
            .collect();
        field(&mut o, "failures", json_list(&failures));
        field(
            &mut o,
            "unsupported_total",
            self.unsupported_total.to_string(),
        );
        let unsupported: Vec<String> = self
            .unsupported
            .iter()
            .map(|u| {
                format!(
                    "{{\"key\": {}, \"command\": {}, \"reason\": {}}}",
                    opt_key(&u.key),
                    json_str(&u.command),
                    json_str(&u.reason)
                )
            })
            .collect();
        field(&mut o, "unsupported", json_list(&unsupported));
        field(&mut o, "full_syncs", self.full_syncs.to_string());
        field(
            &mut o,
            "healing_full_syncs",
            self.healing_full_syncs.to_string(),
        );
        field(&mut o, "keys_swept", self.keys_swept.to_string());
        field(
            &mut o,
            "resumed_from",
            self.resumed_from
                .as_deref()
                .map(json_str)
                .unwrap_or("null".into()),
        );
        field(&mut o, "checkpoint_offset", opt_num(self.checkpoint_offset));
        field(&mut o, "restore_probe", json_map(self.restore_probe.iter()));
        field(
            &mut o,
            "target_cluster_masters",
            opt_num(self.target_cluster_masters.map(|n| n as u64)),
        );
        field(
            &mut o,
            "cross_slot_commands",
            self.cross_slot_commands.to_string(),
        );
        field(
            &mut o,
            "cross_slot_split",
            self.cross_slot_split.to_string(),
        );
        field(
            &mut o,
            "cross_slot_transactions",
            self.cross_slot_transactions.to_string(),
        );
        field(
            &mut o,
            "atomic_slot_migrations",
            self.atomic_slot_migrations.to_string(),
        );
        field(
            &mut o,
            "asm_commands_left_out",
            self.asm_commands_left_out.to_string(),
        );
        field(&mut o, "asm_unconfirmed", self.asm_unconfirmed.to_string());
        field(
            &mut o,
            "cluster_redirects",
            self.cluster_redirects.to_string(),
        );
        field(&mut o, "cluster_retries", self.cluster_retries.to_string());
        field(&mut o, "cluster_resent", self.cluster_resent.to_string());
        field(
            &mut o,
            "cluster_resume_skipped",
            self.cluster_resume_skipped.to_string(),
        );
        let warnings: Vec<String> = self.warnings.iter().map(|w| json_str(w)).collect();
        field(&mut o, "warnings", json_list(&warnings));
        field(&mut o, "partial_resyncs", self.partial_resyncs.to_string());
        field(&mut o, "disconnects", self.disconnects.to_string());
        field(
            &mut o,
            "full_sync_ms",
            opt_num(self.full_sync_duration.map(|d| d.as_millis())),
        );
        field(&mut o, "duration_ms", self.duration.as_millis().to_string());
        field(
            &mut o,
            "replid",
            self.replid
                .as_deref()
                .map(json_str)
                .unwrap_or("null".into()),
        );
        field(&mut o, "source_offset", opt_num(self.source_offset));
        field(&mut o, "source_mode", json_str(&self.source_mode));
        field(
            &mut o,
            "source_mode_reason",
            self.source_mode_reason
                .as_deref()
                .map(json_str)
                .unwrap_or("null".into()),
        );
        field(
            &mut o,
            "scan",
            self.scan.as_ref().map_or("null".into(), |s| {
                format!(
                    "{{\"keys_scanned\": {}, \"keys_copied\": {}, \"keys_recopied\": {}, \"keys_deleted\": {}, \"keys_reconciled\": {}, \"reconcile_passes\": {}, \"resubscriptions\": {}, \"source_failovers\": {}, \"notifications\": {}, \"queue_len\": {}, \"queue_age_ms\": {}, \"tracking\": {}}}",
                    s.keys_scanned, s.keys_copied, s.keys_recopied, s.keys_deleted,
                    s.keys_reconciled, s.reconcile_passes, s.resubscriptions, s.source_failovers, s.notifications,
                    s.queue_len, s.queue_age.as_millis(), s.tracking
                )
            }),
        );
        field(
            &mut o,
            "failovers_followed",
            self.failovers_followed.to_string(),
        );
        let shards: Vec<String> = self
            .shards
            .iter()
            .map(|s| {
                format!(
                    "{{\"id\": {}, \"master\": {}, \"slots\": {}, \"state\": {}, \"full_syncs\": {}, \"partial_resyncs\": {}, \"failovers_followed\": {}, \"keys\": {}, \"commands_applied\": {}, \"source_offset\": {}, \"applied_offset\": {}, \"checkpoint_offset\": {}, \"lag_bytes\": {}, \"error\": {}}}",
                    json_str(&s.id),
                    json_str(&s.master),
                    json_str(&s.slots),
                    json_str(&s.state),
                    s.full_syncs,
                    s.partial_resyncs,
                    s.failovers_followed,
                    s.keys,
                    s.commands_applied,
                    opt_num(s.source_offset),
                    opt_num(s.applied_offset),
                    opt_num(s.checkpoint_offset),
                    s.lag_bytes,
                    s.error.as_deref().map(json_str).unwrap_or("null".into())
                )
            })
            .collect();
        field(&mut o, "shards", json_list(&shards));
        let _ = writeln!(o, "  \"applied_offset\": {}", opt_num(self.applied_offset));
        o.push('}');
        o
    }
}

fn opt_num<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "null".into())
}

fn opt_key(k: &Option<Bytes>) -> String {
    k.as_ref()
        .map(|k| json_str(&key_text(k)))
        .unwrap_or_else(|| "null".into())
}

fn json_map<K: ToString, V: ToString>(items: impl Iterator<Item = (K, V)>) -> String {
    let parts: Vec<String> = items
        .map(|(k, v)| format!("{}: {}", json_str(&k.to_string()), v.to_string()))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

fn json_list(items: &[String]) -> String {
    if items.is_empty() {
        return "[]".into();
    }
    format!("[\n    {}\n  ]", items.join(",\n    "))
}

/// A JSON string literal.
pub(crate) fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A key as text: printable ASCII as is, other bytes as `\xNN`, cut after 128 bytes.
pub(crate) fn key_text(key: &[u8]) -> String {
    let mut s = String::with_capacity(key.len().min(SHOWN_KEY_LEN) + 8);
    for &b in key.iter().take(SHOWN_KEY_LEN) {
        match b {
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    if key.len() > SHOWN_KEY_LEN {
        let _ = write!(s, "... ({} bytes)", key.len());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_keys_and_strings() {
        let mut r = Report {
            source: "a\"b".into(),
            ..Report::default()
        };
        r.keys_by_type.insert("string".into(), 2);
        r.keys_by_db.insert(3, 2);
        r.fail(
            10,
            Failure {
                db: Some(3),
                key: Some(Bytes::from_static(b"k\x00\n")),
                command: "RESTORE".into(),
                error: "ERR x".into(),
            },
        );
        let j = r.to_json();
        assert!(j.contains(r#""source": "a\"b""#), "{j}");
        assert!(j.contains(r#""key": "k\\x00\\x0a""#), "{j}");
        assert!(j.contains(r#""keys_by_db": {"3": 2}"#), "{j}");
        assert!(j.contains(r#""keys_written": 2"#), "{j}");
    }

    #[test]
    fn shards_are_summed_and_listed() {
        let mut total = Report::default();
        for (n, t) in [(2u64, "string"), (3, "hash")] {
            let mut r = Report::default();
            r.keys_by_type.insert(t.into(), n);
            r.keys_by_type.insert("list".into(), 1);
            r.commands_applied = n * 10;
            r.full_syncs = 1;
            r.warnings.push("same".into());
            total.absorb(&r, 10);
        }
        assert_eq!(total.keys_written(), 7);
        assert_eq!(total.keys_by_type["list"], 2);
        assert_eq!(total.commands_applied, 50);
        assert_eq!(total.full_syncs, 2);
        assert_eq!(total.warnings, ["same"]);
        total.shards.push(ShardReport {
            id: "s0".into(),
            master: "127.0.0.1:7000".into(),
            slots: "0-8191".into(),
            state: "caught-up".into(),
            applied_offset: Some(42),
            ..ShardReport::default()
        });
        let j = total.to_json();
        assert!(
            j.contains(r#"{"id": "s0", "master": "127.0.0.1:7000", "slots": "0-8191", "state": "caught-up""#)
                && j.contains(r#""applied_offset": 42, "checkpoint_offset": null"#),
            "{j}"
        );
    }
}
