//! The precheck: what a migration would meet, found before anything is written, each
//! finding with its fix. `redis-migrate check` prints it; `sync` and `import` run it first.
//!
//! Redis Cluster on either side: `source layout` / `target layout` name each side's mode
//! and masters (a cluster with unassigned slots, or a master out of reach, fails); with a
//! cluster target, `cluster target dbs` fails for source keys in dbs it cannot hold (db 0
//! only, or `cluster-databases` on Valkey 9) unless the filter maps or excludes them, the
//! write check runs on every master with a key of its own slots, `target memory` compares
//! each master's `maxmemory` with its share of the source's dataset (+25 %), the eviction
//! policy and the target keyspace are read from every master.
//!
//! ```no_run
//! use migrate_core::migrate::{precheck, CheckOptions, Source, TargetConfig};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let source = Source::Live(replication_client::Config::new("redis://127.0.0.1:6379")?);
//! let target = TargetConfig::parse("redis://127.0.0.1:6380")?;
//! let report = precheck(&source, &target, &CheckOptions::default()).await;
//! for c in &report.checks {
//!     println!("{} {}: {}", c.status.as_str(), c.name, c.found);
//! }
//! assert!(report.passed() || !report.failures().is_empty());
//! # Ok(()) }
//! ```

use std::time::Duration;

use bytes::Bytes;
use resp_codec::Frame;

use super::checkpoint::{self, Checkpoint, CHECKPOINT_KEY, RESERVED_PREFIX};
use super::conn::{self, Stream};
use super::options::Settings;
use super::{Conflict, ErrorPolicy, Source, TargetConfig, WriteMode};
use crate::{Filter, ServerVersion, Target};

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckStatus {
    /// Nothing to do.
    Pass,
    /// The migration can run, but something will be lost, slow or risky: read the fix.
    Warn,
    /// The migration would fail or lose data: fix it first.
    Fail,
}

impl CheckStatus {
    /// `pass`, `warn`, `fail`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "fail",
        }
    }
}

/// One finding: what was checked, what was found, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Check {
    /// Short name (`target memory`, `source replication rights`, ...).
    pub name: &'static str,
    /// The outcome.
    pub status: CheckStatus,
    /// What was found.
    pub found: String,
    /// The fix (a `CONFIG SET`, an ACL rule, an option), when there is one.
    pub fix: Option<String>,
}

/// Every check, in order.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CheckReport {
    /// The findings.
    pub checks: Vec<Check>,
}

impl CheckReport {
    /// No check failed.
    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }

    /// The failed checks.
    pub fn failures(&self) -> Vec<&Check> {
        self.checks
            .iter()
            .filter(|c| c.status == CheckStatus::Fail)
            .collect()
    }

    /// The report as a JSON object: `{"passed": bool, "checks": [{name, status, found, fix}]}`.
    pub fn to_json(&self) -> String {
        use super::report::json_str;
        let items: Vec<String> = self
            .checks
            .iter()
            .map(|c| {
                format!(
                    "    {{\"name\": {}, \"status\": {}, \"found\": {}, \"fix\": {}}}",
                    json_str(c.name),
                    json_str(c.status.as_str()),
                    json_str(&c.found),
                    c.fix.as_deref().map(json_str).unwrap_or("null".into())
                )
            })
            .collect();
        format!(
            "{{\n  \"passed\": {},\n  \"checks\": [\n{}\n  ]\n}}",
            self.passed(),
            items.join(",\n")
        )
    }

    fn push(
        &mut self,
        name: &'static str,
        status: CheckStatus,
        found: String,
        fix: Option<String>,
    ) {
        self.checks.push(Check {
            name,
            status,
            found,
            fix,
        });
    }
    fn pass(&mut self, name: &'static str, found: String) {
        self.push(name, CheckStatus::Pass, found, None);
    }
    fn warn(&mut self, name: &'static str, found: String, fix: impl Into<String>) {
        self.push(name, CheckStatus::Warn, found, Some(fix.into()));
    }
    fn fail(&mut self, name: &'static str, found: String, fix: impl Into<String>) {
        self.push(name, CheckStatus::Fail, found, Some(fix.into()));
    }
}

/// What the migration will do, as far as the checks care.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CheckOptions {
    /// The filter and db map of the migration.
    pub filter: Filter,
    /// Its conflict policy.
    pub conflict: Conflict,
    /// Its error policy (missing modules fail under `Stop`, warn otherwise).
    pub on_error: ErrorPolicy,
    /// Its write mode (part of the checkpoint's fingerprint).
    pub write_mode: WriteMode,
    /// A target eviction policy other than `noeviction` fails instead of warning.
    pub strict: bool,
    /// Connect and request timeout. Default 10 s.
    pub timeout: Duration,
    /// How long the source's write rate is sampled (for the backlog check). Default 1 s.
    pub rate_sample: Duration,
    /// How the source will be read: with [`SourceMode::Auto`](super::SourceMode::Auto) or
    /// `Scan`, missing replication rights only warn (scan mode is used). Default `Psync`.
    pub source_mode: super::SourceMode,
}

impl Default for CheckOptions {
    fn default() -> CheckOptions {
        CheckOptions {
            filter: Filter::new(),
            conflict: Conflict::Refuse,
            on_error: ErrorPolicy::Stop,
            write_mode: WriteMode::Auto,
            strict: false,
            timeout: Duration::from_secs(10),
            rate_sample: Duration::from_secs(1),
            source_mode: super::SourceMode::Psync,
        }
    }
}

impl CheckOptions {
    /// Sets [`CheckOptions::filter`].
    pub fn filter(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }
    /// Sets [`CheckOptions::conflict`].
    pub fn conflict(mut self, conflict: Conflict) -> Self {
        self.conflict = conflict;
        self
    }
    /// Sets [`CheckOptions::on_error`].
    pub fn on_error(mut self, policy: ErrorPolicy) -> Self {
        self.on_error = policy;
        self
    }
    /// Sets [`CheckOptions::write_mode`].
    pub fn write_mode(mut self, mode: WriteMode) -> Self {
        self.write_mode = mode;
        self
    }
    /// Sets [`CheckOptions::strict`].
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }
    /// Sets [`CheckOptions::source_mode`].
    pub fn source_mode(mut self, mode: super::SourceMode) -> Self {
        self.source_mode = mode;
        self
    }
    /// Sets [`CheckOptions::rate_sample`] (`Duration::ZERO` skips the sampling).
    pub fn rate_sample(mut self, d: Duration) -> Self {
        self.rate_sample = d;
        self
    }
}

/// `field:value` lines of an `INFO` reply.
fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

fn text(f: &Frame) -> Option<String> {
    f.as_bytes()
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

fn error_text(f: &Frame) -> String {
    crate::ServerError::from_frame(f)
        .map(|e| e.to_string())
        .unwrap_or_else(|| format!("{f:?}"))
}

async fn info(t: &mut Target<Stream>, section: &str) -> Option<String> {
    let f = t.call(&["INFO", section]).await.ok()?;
    if f.is_error() {
        return None;
    }
    text(&f)
}

/// `CONFIG GET name` (`None`: refused, or unknown).
async fn config(t: &mut Target<Stream>, name: &str) -> Option<String> {
    let f = t.call(&["CONFIG", "GET", name]).await.ok()?;
    match &f {
        Frame::Array(items) => items.get(1).and_then(text),
        Frame::Map(kv) => kv.first().and_then(|(_, v)| text(v)),
        _ => None,
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Runs every check. Never fails: an error while checking is itself a finding.
pub async fn precheck(source: &Source, target: &TargetConfig, opts: &CheckOptions) -> CheckReport {
    let mut r = CheckReport::default();
    let shown_target = target.url.to_string();
    let mut tgt = match conn::connect(target, opts.timeout).await {
        Ok(t) => {
            r.pass(
                "target connection",
                format!("{shown_target}: {}", t.version()),
            );
            Some(t)
        }
        Err(e) => {
            r.fail(
                "target connection",
                e.to_string(),
                "check the --to URL, its credentials and TLS options",
            );
            None
        }
    };
    let mut src = None;
    let mut src_version = None;
    match source {
        Source::Live(cfg) => {
            let probe = TargetConfig::of_source(cfg);
            match conn::connect(&probe, opts.timeout).await {
                Ok(s) => {
                    r.pass("source connection", format!("{}: {}", cfg.url(), s.version()));
                    src_version = Some(s.version());
                    src = Some(s);
                }
                Err(e) => r.fail(
                    "source connection",
                    match e {
                        // The probe connects like to a target: name the source.
                        super::MigrationError::Target { source, .. } => format!("{}: {source}", cfg.url()),
                        other => other.to_string(),
                    },
                    "check the --from URL, its credentials (the user needs +info besides replication for the checks) and TLS options",
                ),
            }
            if let Some(s) = src.as_mut() {
                replication_rights(s, &mut r).await;
                let refused = r.checks.last().is_some_and(|c| {
                    c.name == "source replication rights" && c.status == CheckStatus::Fail
                });
                if opts.source_mode != super::SourceMode::Psync {
                    if let Some(c) = r.checks.last_mut().filter(|_| refused) {
                        c.status = CheckStatus::Warn;
                        c.found.push_str(
                            ": sync will copy in scan mode (SCAN + DUMP, keyspace notifications)",
                        );
                    }
                }
                let scan = opts.source_mode == super::SourceMode::Scan
                    || (opts.source_mode == super::SourceMode::Auto && refused);
                if scan {
                    scan_mode_readiness(s, &mut r).await;
                }
            }
        }
        Source::RdbFile(path) => match std::fs::File::open(path) {
            Ok(f) => {
                let mut reader = rdb_parser::RdbReader::new(
                    std::io::BufReader::new(f),
                    rdb_parser::Options::default(),
                );
                match reader.next() {
                    Some(Ok(rdb_parser::Event::Header(h))) => r.pass(
                        "source file",
                        format!(
                            "{}: RDB version {} ({:?})",
                            path.display(),
                            h.version,
                            h.family
                        ),
                    ),
                    Some(Err(e)) => r.fail(
                        "source file",
                        format!("{}: {e}", path.display()),
                        "use an RDB file the server wrote (SAVE, BGSAVE, redis-cli --rdb)",
                    ),
                    _ => r.fail(
                        "source file",
                        format!("{}: no RDB header", path.display()),
                        "use an RDB file the server wrote (SAVE, BGSAVE, redis-cli --rdb)",
                    ),
                }
            }
            Err(e) => r.fail(
                "source file",
                format!("{}: {e}", path.display()),
                "check the path",
            ),
        },
    }
    let Some(t) = tgt.as_mut() else {
        return r;
    };
    let tv = t.version();
    let mut slayout = match (source, src.as_mut()) {
        (Source::Live(cfg), Some(s)) => {
            let probe = TargetConfig::of_source(cfg);
            layout(s, &probe, opts, Side::Source, &mut r).await
        }
        _ => Layout::default(),
    };
    let mut tlayout = layout(t, target, opts, Side::Target, &mut r).await;
    if tlayout.nodes.is_empty() {
        write_rights(t, &default_check_key(), &mut r).await;
    } else {
        cluster_write_rights(&mut tlayout, &mut r).await;
    }
    carried(source, src.as_mut(), src_version, t, tv, opts, &mut r).await;
    if tlayout.topology.is_some() {
        cluster_dbs(src.as_mut(), &mut slayout, t, tv, opts, &mut r).await;
    }
    memory(
        source,
        src.as_mut(),
        &mut slayout,
        t,
        &mut tlayout,
        opts,
        &mut r,
    )
    .await;
    if let Some(s) = src.as_mut() {
        source_limits(s, opts, &mut r).await;
    }
    target_state(source, t, &mut tlayout, opts, &mut r).await;
    r
}

/// Which side a cluster check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Source,
    Target,
}

/// A side's cluster: its topology and a connection to each master (in
/// [`ClusterTopology::masters`](crate::cluster::ClusterTopology::masters) order). Empty
/// for a standalone server, or when the topology could not be read.
#[derive(Default)]
struct Layout {
    topology: Option<crate::cluster::ClusterTopology>,
    nodes: Vec<(crate::cluster::Node, Target<Stream>)>,
}

/// `source layout` / `target layout`: standalone or cluster, its masters and whether
/// every slot is served (a cluster with unassigned slots fails: keys of those slots can be
/// neither read nor written).
async fn layout(
    seed: &mut Target<Stream>,
    cfg: &TargetConfig,
    opts: &CheckOptions,
    side: Side,
    r: &mut CheckReport,
) -> Layout {
    let (name, flag) = match side {
        Side::Source => ("source layout", "--from"),
        Side::Target => ("target layout", "--to"),
    };
    let topology = match crate::cluster::discover(seed).await {
        Ok(None) => {
            r.pass(name, format!("{}: standalone", seed.addr()));
            return Layout::default();
        }
        Ok(Some(t)) => t,
        Err(e) => {
            r.warn(
                name,
                format!("whether {} is a cluster cannot be read: {e}", seed.addr()),
                "the user needs +info and +cluster (CLUSTER SHARDS, SLOTS or NODES) for the cluster checks",
            );
            return Layout::default();
        }
    };
    let masters: Vec<crate::cluster::Node> = topology.masters().into_iter().cloned().collect();
    let unassigned = topology.slot_map().unassigned();
    let shown: Vec<String> = unassigned
        .iter()
        .take(5)
        .map(|s| {
            if s.start() == s.end() {
                s.start().to_string()
            } else {
                format!("{}-{}", s.start(), s.end())
            }
        })
        .collect();
    let mut nodes = Vec::new();
    let mut unreachable = Vec::new();
    for m in &masters {
        let node_cfg = TargetConfig {
            url: cfg.url.with_host_port(&m.host, m.port),
            tls: cfg.tls.clone(),
        };
        match conn::connect(&node_cfg, opts.timeout).await {
            Ok(t) => nodes.push((m.clone(), t)),
            Err(e) => unreachable.push(format!("{m}: {e}")),
        }
    }
    let found = format!(
        "cluster of {} masters ({})",
        masters.len(),
        masters
            .iter()
            .map(|m| m.addr())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !unassigned.is_empty() {
        let n: usize = unassigned.iter().map(|s| s.len()).sum();
        r.fail(
            name,
            format!(
                "{found}: {n} slots unassigned ({}{}): their keys can be neither read nor written",
                shown.join(", "),
                if unassigned.len() > 5 { ", ..." } else { "" }
            ),
            "assign every slot to a master (CLUSTER ADDSLOTS, or redis-cli --cluster fix) before migrating",
        );
    } else if !unreachable.is_empty() {
        r.fail(
            name,
            format!("{found}: masters not reachable: {}", unreachable.join("; ")),
            format!("every master must be reachable from here with the credentials of {flag} (cluster-announce-ip where the nodes announce private addresses)"),
        );
    } else {
        r.pass(name, format!("{found}, all 16384 slots served"));
    }
    Layout {
        topology: Some(topology),
        nodes,
    }
}

/// The scratch key of the write check: under the reserved prefix.
fn default_check_key() -> String {
    format!("{}check", String::from_utf8_lossy(RESERVED_PREFIX))
}

/// A scratch key under the reserved prefix whose slot is in `slots` (a hash tag chosen so).
fn check_key_in(slots: &[std::ops::RangeInclusive<u16>]) -> Option<String> {
    let prefix = default_check_key();
    (0..400_000u32)
        .map(|i| format!("{prefix}{{{i}}}"))
        .find(|k| {
            let slot = crate::key_slot(k.as_bytes());
            slots.iter().any(|s| s.contains(&slot))
        })
}

/// The write check on every master of a cluster target, each with a key of its own slots.
async fn cluster_write_rights(l: &mut Layout, r: &mut CheckReport) {
    const NAME: &str = "target write rights";
    let Some(topo) = &l.topology else { return };
    let mut failed = None;
    for (node, t) in &mut l.nodes {
        let Some(key) = check_key_in(&topo.slot_map().slots_of(node)) else {
            continue;
        };
        let mut one = CheckReport::default();
        write_rights(t, &key, &mut one).await;
        if let Some(c) = one
            .checks
            .into_iter()
            .find(|c| c.status != CheckStatus::Pass)
        {
            failed = Some((node.addr(), c));
            break;
        }
    }
    match failed {
        Some((addr, c)) => r.push(NAME, c.status, format!("master {addr}: {}", c.found), c.fix),
        None => r.pass(
            NAME,
            format!(
                "SET, DUMP, RESTORE, DEL and MULTI/EXEC accepted on each of the {} masters",
                l.nodes.len()
            ),
        ),
    }
}

/// Key counts per db of a side: the server's, or every master's added up.
async fn side_keyspace(
    one: &mut Target<Stream>,
    l: &mut Layout,
) -> Result<crate::Keyspace, String> {
    if l.nodes.is_empty() {
        return one.keyspace().await.map_err(|e| e.to_string());
    }
    let mut total = crate::Keyspace::default();
    for (node, t) in &mut l.nodes {
        let ks = t.keyspace().await.map_err(|e| format!("{node}: {e}"))?;
        for (db, k) in ks.dbs {
            let e = total.dbs.entry(db).or_default();
            e.keys += k.keys;
            e.expires += k.expires;
        }
    }
    Ok(total)
}

/// `cluster target dbs`: source keys in dbs a cluster target cannot hold (db 0 only, or
/// `cluster-databases` on Valkey 9) fail, naming the dbs and the fix.
async fn cluster_dbs(
    src: Option<&mut Target<Stream>>,
    slayout: &mut Layout,
    t: &mut Target<Stream>,
    tv: ServerVersion,
    opts: &CheckOptions,
    r: &mut CheckReport,
) {
    const NAME: &str = "cluster target dbs";
    let Some(s) = src else {
        // An RDB file: its dbs are known only once read; the migration reports keys of
        // dbs the target refuses, by key.
        return;
    };
    let ks = match side_keyspace(s, slayout).await {
        Ok(ks) => ks,
        Err(e) => {
            return r.warn(
                NAME,
                format!("the source's INFO keyspace cannot be read: {e}"),
                "the source user needs +info",
            )
        }
    };
    let held: u32 = if tv.is_valkey() {
        config(t, "cluster-databases")
            .await
            .and_then(|v| v.parse().ok())
            .unwrap_or(1)
            .max(1)
    } else {
        1
    };
    let lacked = crate::cluster::LackedDbs::find(
        held,
        ks.dbs.iter().map(|(&db, k)| (db, k.keys)),
        &opts.filter,
    );
    let holds = lacked.holds();
    if lacked.is_empty() {
        return r.pass(
            NAME,
            format!("every source db with keys goes to a db the cluster target holds ({holds})"),
        );
    }
    r.fail(
        NAME,
        format!(
            "the source has keys in {}: a cluster target holds {holds}",
            lacked.shown()
        ),
        format!(
            "{} (when their keys do not collide with db 0's), or {}{}",
            lacked.map_flags(),
            lacked.exclude_flags(),
            if tv.is_valkey() {
                "; a Valkey 9 cluster holds more dbs with cluster-databases"
            } else {
                ""
            }
        ),
    );
}

async fn replication_rights(s: &mut Target<Stream>, r: &mut CheckReport) {
    const NAME: &str = "source replication rights";
    // REPLCONF is harmless on an ordinary connection; PSYNC would start a snapshot, so it
    // is asked about with ACL DRYRUN (Redis/Valkey 7.0+) where the user may.
    let replconf = s.call(&["REPLCONF", "listening-port", "0"]).await;
    if let Ok(f) = &replconf {
        if f.is_error() && error_text(f).starts_with("NOPERM") {
            return r.fail(
                NAME,
                format!("REPLCONF refused: {}", error_text(f)),
                "give the user +psync +replconf +ping (e.g. ACL SETUSER <user> +psync +replconf +ping), or use an RDB export with `redis-migrate import`",
            );
        }
    }
    let who = s
        .call(&["ACL", "WHOAMI"])
        .await
        .ok()
        .as_ref()
        .and_then(text);
    let Some(who) = who else {
        return r.pass(NAME, "REPLCONF accepted (no ACLs on this server)".into());
    };
    match s.call(&["ACL", "DRYRUN", &who, "PSYNC", "?", "-1"]).await {
        Ok(Frame::SimpleString(_)) => r.pass(NAME, format!("user {who} may PSYNC")),
        Ok(f) if f.as_bytes() == Some(b"OK") => r.pass(NAME, format!("user {who} may PSYNC")),
        Ok(f) if !f.is_error() => r.fail(
            NAME,
            format!("user {who} may not PSYNC: {}", text(&f).unwrap_or_default()),
            format!("ACL SETUSER {who} +psync +replconf +ping, or use an RDB export with `redis-migrate import`"),
        ),
        _ => r.warn(
            NAME,
            format!("REPLCONF accepted; whether user {who} may PSYNC cannot be asked (ACL DRYRUN refused or unknown)"),
            "the user needs +psync +replconf +ping; sync says so at once if it lacks them",
        ),
    }
}

/// What scan mode needs from the source (it will be used): `notify-keyspace-events` for
/// change tracking (`scan mode notifications`), and the user's rights for `SCAN`, `DUMP`,
/// `PTTL`, `MEMORY USAGE` and the keyspace channels (`scan mode rights`).
async fn scan_mode_readiness(s: &mut Target<Stream>, r: &mut CheckReport) {
    const NOTIFY: &str = "scan mode notifications";
    match config(s, "notify-keyspace-events").await {
        Some(flags) if super::scan::notify_flags_enough(&flags) => r.pass(
            NOTIFY,
            format!("notify-keyspace-events is {flags:?}: changes during the copy are followed"),
        ),
        Some(flags) => r.warn(
            NOTIFY,
            format!("notify-keyspace-events is {flags:?}: scan mode cannot follow changes (sync stops before copying, unless --once)"),
            super::scan::NOTIFY_FIX,
        ),
        None => r.warn(
            NOTIFY,
            "notify-keyspace-events cannot be read (CONFIG GET refused)".into(),
            "make sure it includes KEA (a managed service's parameter group), then run sync with --notify-keyspace-events-configured",
        ),
    }
    const RIGHTS: &str = "scan mode rights";
    let who = s
        .call(&["ACL", "WHOAMI"])
        .await
        .ok()
        .as_ref()
        .and_then(text);
    let Some(who) = who else {
        return r.pass(RIGHTS, "no ACLs on this server".into());
    };
    let probes: [(&str, &[&str]); 5] = [
        ("SCAN", &["SCAN", "0"]),
        ("DUMP", &["DUMP", "k"]),
        ("PTTL", &["PTTL", "k"]),
        ("MEMORY USAGE", &["MEMORY", "USAGE", "k"]),
        (
            "PSUBSCRIBE __keyspace@*__:*",
            &["PSUBSCRIBE", "__keyspace@*__:*"],
        ),
    ];
    let mut refused = Vec::new();
    for (name, args) in probes {
        let mut cmd = vec!["ACL", "DRYRUN", who.as_str()];
        cmd.extend_from_slice(args);
        match s.call(&cmd).await {
            Ok(f) if f.as_bytes() == Some(b"OK") => {}
            Ok(f) if !f.is_error() => refused.push(format!(
                "{name} ({})",
                text(&f).unwrap_or_default()
            )),
            _ => {
                return r.warn(
                    RIGHTS,
                    format!("whether user {who} may SCAN, DUMP and subscribe cannot be asked (ACL DRYRUN refused or unknown)"),
                    "the user needs +scan +dump +pttl +memory|usage +psubscribe and &__keyspace@*",
                )
            }
        }
    }
    if refused.is_empty() {
        r.pass(
            RIGHTS,
            format!(
                "user {who} may SCAN, DUMP, PTTL, MEMORY USAGE and subscribe to keyspace events"
            ),
        );
    } else {
        r.fail(
            RIGHTS,
            format!("user {who} may not: {}", refused.join("; ")),
            format!("ACL SETUSER {who} +scan +dump +pttl +memory|usage +psubscribe &__keyspace@*"),
        );
    }
}

/// A scratch write (`MULTI`, `SET`, `DUMP`/`RESTORE`, `DEL`, `EXEC`) under the reserved prefix.
async fn write_rights(t: &mut Target<Stream>, key: &str, r: &mut CheckReport) {
    const NAME: &str = "target write rights";
    let key = key.to_string();
    let steps: [&[&str]; 2] = [&["SET", &key, "1"], &["DUMP", &key]];
    let mut payload = None;
    for args in steps {
        match t.call(args).await {
            Ok(f) if f.is_error() => {
                return r.fail(
                    NAME,
                    format!("{} refused: {}", args[0], error_text(&f)),
                    "the target user needs +@write +restore +multi +exec +select +dump (e.g. ACL SETUSER <user> +@all ~*)",
                )
            }
            Ok(f) => payload = f.as_bytes().map(Bytes::copy_from_slice),
            Err(e) => return r.fail(NAME, e.to_string(), "check the target"),
        }
    }
    let payload = payload.unwrap_or_default();
    let seq: [Vec<Bytes>; 4] = [
        vec![Bytes::from_static(b"MULTI")],
        vec![
            Bytes::from_static(b"RESTORE"),
            Bytes::from(key.clone()),
            Bytes::from_static(b"0"),
            payload,
            Bytes::from_static(b"REPLACE"),
        ],
        vec![Bytes::from_static(b"DEL"), Bytes::from(key.clone())],
        vec![Bytes::from_static(b"EXEC")],
    ];
    for args in seq {
        match t.call(&args).await {
            Ok(f) if f.is_error() => {
                let _ = t.call(&["DISCARD"]).await;
                let _ = t.call(&["DEL", &key]).await;
                return r.fail(
                    NAME,
                    format!(
                        "{} refused: {}",
                        String::from_utf8_lossy(&args[0]),
                        error_text(&f)
                    ),
                    "the target user needs +@write +restore +multi +exec +select +dump",
                );
            }
            Ok(_) => {}
            Err(e) => return r.fail(NAME, e.to_string(), "check the target"),
        }
    }
    r.pass(
        NAME,
        "SET, DUMP, RESTORE, DEL and MULTI/EXEC accepted".into(),
    );
}

/// Versions and families: what will be restored, rewritten, or cannot be carried.
async fn carried(
    source: &Source,
    src: Option<&mut Target<Stream>>,
    src_version: Option<ServerVersion>,
    t: &mut Target<Stream>,
    tv: ServerVersion,
    opts: &CheckOptions,
    r: &mut CheckReport,
) {
    if let Some(sv) = src_version {
        let (srdb, trdb) = (sv.rdb_version(), tv.rdb_version());
        if srdb > trdb || sv.is_valkey() != tv.is_valkey() {
            r.pass(
                "versions",
                format!("{sv} (RDB {srdb}) into {tv} (RDB {trdb}): values in encodings the target does not know are rewritten as commands"),
            );
        } else {
            r.pass(
                "versions",
                format!(
                    "{sv} (RDB {srdb}) into {tv} (RDB {trdb}): values are restored as they are"
                ),
            );
        }
        if sv.has_hash_field_ttl() && !tv.has_hash_field_ttl() {
            r.warn(
                "hash field TTLs",
                format!("{sv} has hash field TTLs, {tv} does not: they are dropped (each such key is named in the report as lossy; replicated field-TTL commands are unsupported)"),
                "migrate into Redis 7.4+ or Valkey 9+ to keep them",
            );
        }
    }
    let Some(s) = src else {
        if let Source::RdbFile(path) = source {
            if let Ok(Some(loaded)) = t.modules().await {
                match super::preflight::file_modules_missing(path, &loaded).await {
                    Ok(m) if m.is_empty() => r.pass(
                        "modules",
                        "the file needs no module the target lacks".into(),
                    ),
                    Ok(m) => module_finding(r, opts, m),
                    Err(e) => r.fail("modules", e.to_string(), "use an RDB file the server wrote"),
                }
            }
        }
        return;
    };
    // Functions.
    let libs = s.function_libraries().await.unwrap_or_default();
    if !libs.is_empty() && !tv.has_functions() {
        r.warn(
            "function libraries",
            format!("the source has {} function librar(ies), the target ({tv}) has no functions: they cannot be carried", libs.len()),
            "migrate into Redis 7.0+ / Valkey 7.2+ to keep them",
        );
    }
    // Modules and their auxiliary data.
    let (Ok(Some(src_mods)), Ok(Some(tgt_mods))) = (s.modules().await, t.modules().await) else {
        return;
    };
    let missing: Vec<String> = src_mods
        .iter()
        .filter(|m| !crate::module_loaded(&tgt_mods, m))
        .cloned()
        .collect();
    if missing.is_empty() {
        r.pass(
            "modules",
            if src_mods.is_empty() {
                "no module on the source".into()
            } else {
                format!(
                    "the target has the source's modules ({})",
                    src_mods.join(", ")
                )
            },
        );
    } else {
        module_finding(r, opts, missing);
    }
    if crate::module_loaded(&src_mods, "search") {
        let n = match s.call(&["FT._LIST"]).await {
            Ok(Frame::Array(v)) => v.len(),
            _ => 0,
        };
        if n > 0 {
            if crate::module_loaded(&tgt_mods, "search") {
                r.pass(
                    "search indexes",
                    format!(
                        "{n} RediSearch index(es) will be recreated with FT.CREATE before the keys"
                    ),
                );
            } else {
                r.warn(
                    "search indexes",
                    format!("{n} RediSearch index(es) on the source; the target has no RediSearch: not carried"),
                    "load RediSearch on the target",
                );
            }
        }
    }
}

fn module_finding(r: &mut CheckReport, opts: &CheckOptions, missing: Vec<String>) {
    let found = format!(
        "the target lacks the source's modules {}: their values cannot be written",
        missing.join(", ")
    );
    let fix = "load them on the target (--loadmodule), or copy the rest with --skip-errors (their keys are then counted as unsupported)";
    if opts.on_error == ErrorPolicy::Stop {
        r.fail("modules", found, fix);
    } else {
        r.warn("modules", found, fix);
    }
}

/// `used_memory_dataset` (or `used_memory`) of a server.
async fn dataset(s: &mut Target<Stream>) -> Option<u64> {
    let info = info(s, "memory").await?;
    let num = |f: &str| info_field(&info, f).and_then(|v| v.parse::<u64>().ok());
    num("used_memory_dataset").or_else(|| num("used_memory"))
}

async fn memory(
    source: &Source,
    src: Option<&mut Target<Stream>>,
    slayout: &mut Layout,
    t: &mut Target<Stream>,
    tlayout: &mut Layout,
    opts: &CheckOptions,
    r: &mut CheckReport,
) {
    let need = match (source, src) {
        (Source::Live(_), Some(s)) if slayout.nodes.is_empty() => dataset(s).await,
        (Source::Live(_), Some(_)) => {
            // A cluster source: every master's share added up.
            let mut sum = Some(0u64);
            for (_, n) in &mut slayout.nodes {
                let d = dataset(n).await;
                sum = sum.zip(d).map(|(a, b)| a + b);
            }
            sum
        }
        // An RDB file is compact: the data takes about twice its size in memory.
        (Source::RdbFile(p), _) => std::fs::metadata(p).ok().map(|m| m.len() * 2),
        _ => None,
    };
    if tlayout.nodes.is_empty() {
        target_memory(t, need, r).await;
    } else {
        cluster_memory(tlayout, need, r).await;
    }
    let mut evicting = Vec::new();
    if tlayout.nodes.is_empty() {
        if let Some(p) = config(t, "maxmemory-policy")
            .await
            .filter(|p| p != "noeviction")
        {
            evicting.push(p);
        }
    } else {
        for (node, n) in &mut tlayout.nodes {
            if let Some(p) = config(n, "maxmemory-policy")
                .await
                .filter(|p| p != "noeviction")
            {
                evicting.push(format!("{p} on {node}"));
            }
        }
    }
    if !evicting.is_empty() {
        let found = format!("target maxmemory-policy {}: under memory pressure the target evicts keys, and the copy becomes inconsistent", evicting.join(", "));
        let fix = if tlayout.nodes.is_empty() {
            "CONFIG SET maxmemory-policy noeviction on the target"
        } else {
            "CONFIG SET maxmemory-policy noeviction on every master of the target"
        };
        if opts.strict {
            r.fail("target eviction policy", found, fix);
        } else {
            r.warn("target eviction policy", found, fix);
        }
    }
}

/// `maxmemory` of one target against what the data needs (+10 %).
async fn target_memory(t: &mut Target<Stream>, need: Option<u64>, r: &mut CheckReport) {
    let tinfo = info(t, "memory").await.unwrap_or_default();
    let num = |info: &str, f: &str| info_field(info, f).and_then(|v| v.parse::<u64>().ok());
    let maxmemory = num(&tinfo, "maxmemory").unwrap_or(0);
    let used = num(&tinfo, "used_memory").unwrap_or(0);
    match (maxmemory, need) {
        (0, Some(n)) => r.pass(
            "target memory",
            format!("no maxmemory on the target; the data needs about {}", mb(n)),
        ),
        (0, None) => r.pass("target memory", "no maxmemory on the target".into()),
        (max, Some(n)) => {
            let free = max.saturating_sub(used);
            let want = n + n / 10;
            if free < want {
                r.fail(
                    "target memory",
                    format!("target maxmemory {} with {} used leaves {}; the data needs about {} (+10%)", mb(max), mb(used), mb(free), mb(n)),
                    format!("CONFIG SET maxmemory {} on the target (or free memory)", used + want),
                );
            } else {
                r.pass(
                    "target memory",
                    format!("{} free under maxmemory for about {}", mb(free), mb(n)),
                );
            }
        }
        (max, None) => r.pass("target memory", format!("target maxmemory {}", mb(max))),
    }
}

/// `maxmemory` of every master of a cluster target against its share of the data (the
/// source's dataset divided by the masters, +25 % for slots that hold more than others).
async fn cluster_memory(l: &mut Layout, need: Option<u64>, r: &mut CheckReport) {
    const NAME: &str = "target memory";
    let masters = l.nodes.len() as u64;
    let share = need.map(|n| n.div_ceil(masters.max(1)));
    let mut short = Vec::new();
    let mut limited = 0;
    for (node, t) in &mut l.nodes {
        let tinfo = info(t, "memory").await.unwrap_or_default();
        let num = |f: &str| info_field(&tinfo, f).and_then(|v| v.parse::<u64>().ok());
        let (max, used) = (
            num("maxmemory").unwrap_or(0),
            num("used_memory").unwrap_or(0),
        );
        if max == 0 {
            continue;
        }
        limited += 1;
        if let Some(share) = share {
            let free = max.saturating_sub(used);
            let want = share + share / 4;
            if free < want {
                short.push((node.addr(), max, used, free, used + want));
            }
        }
    }
    let Some(share) = share else {
        return r.pass(
            NAME,
            format!("{limited} of the {masters} target masters have a maxmemory; the source's dataset size is unknown"),
        );
    };
    if short.is_empty() {
        r.pass(
            NAME,
            if limited == 0 {
                format!("no maxmemory on the {masters} target masters; each holds about {} of the data", mb(share))
            } else {
                format!("each of the {masters} target masters has room for its share of about {} (+25%)", mb(share))
            },
        );
        return;
    }
    let found: Vec<String> = short
        .iter()
        .map(|(a, max, used, free, _)| {
            format!(
                "{a}: maxmemory {} with {} used leaves {}",
                mb(*max),
                mb(*used),
                mb(*free)
            )
        })
        .collect();
    let fix: Vec<String> = short
        .iter()
        .map(|(a, _, _, _, want)| format!("CONFIG SET maxmemory {want} on {a}"))
        .collect();
    r.fail(
        NAME,
        format!(
            "each master holds about {} of the data (the source's {} over {masters} masters, +25%): {}",
            mb(share),
            mb(need.unwrap_or(0)),
            found.join("; ")
        ),
        format!("{} (or add masters)", fix.join(", ")),
    );
}

/// The source's `client-output-buffer-limit replica` and `repl-backlog-size`: the
/// settings behind endless full-sync loops and refused partial resyncs.
async fn source_limits(s: &mut Target<Stream>, opts: &CheckOptions, r: &mut CheckReport) {
    let mem = info(s, "memory").await.unwrap_or_default();
    let dataset = info_field(&mem, "used_memory_dataset")
        .or_else(|| info_field(&mem, "used_memory"))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    if let Some(limits) = config(s, "client-output-buffer-limit").await {
        let w: Vec<&str> = limits.split_whitespace().collect();
        let at = w.iter().position(|x| *x == "slave" || *x == "replica");
        if let Some(at) = at {
            let num = |i: usize| {
                w.get(at + i)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            let (hard, soft, secs) = (num(1), num(2), num(3));
            // What the source buffers for us while we read its RDB is the stream written
            // meanwhile; a slow reader of a big dataset needs room for a big share of it.
            let small = |l: u64| l != 0 && l < dataset / 4;
            if small(hard) || small(soft) {
                r.warn(
                    "source replica output buffer",
                    format!("client-output-buffer-limit replica {hard} {soft} {secs} is small for a {} dataset: a full sync slower than the writes it buffers is cut, and retried", mb(dataset)),
                    format!("CONFIG SET client-output-buffer-limit \"replica {} {} {secs}\" on the source (or spool the RDB to disk)", (dataset / 2).max(hard), (dataset / 4).max(soft)),
                );
            } else {
                r.pass(
                    "source replica output buffer",
                    format!("client-output-buffer-limit replica {hard} {soft} {secs}"),
                );
            }
        }
    }
    let backlog = config(s, "repl-backlog-size")
        .await
        .and_then(|v| v.parse::<u64>().ok());
    let rate = if opts.rate_sample.is_zero() {
        None
    } else {
        // The replication offset advances only once the source has a backlog (after its
        // first replica); before that the input rate is the estimate (reads included, so
        // on the safe side).
        let sample = |info: &str| {
            let field = if info_field(info, "repl_backlog_active") == Some("1") {
                "master_repl_offset"
            } else {
                "total_net_input_bytes"
            };
            info_field(info, field).and_then(|v| v.parse::<u64>().ok())
        };
        let a = info(s, "all").await.as_deref().and_then(sample);
        tokio::time::sleep(opts.rate_sample).await;
        let b = info(s, "all").await.as_deref().and_then(sample);
        a.zip(b)
            .map(|(a, b)| (b.saturating_sub(a) as f64 / opts.rate_sample.as_secs_f64()) as u64)
    };
    if let (Some(backlog), Some(rate)) = (backlog, rate) {
        // A restart or a network blip should be survivable without a full sync.
        let window = backlog.checked_div(rate).unwrap_or(u64::MAX);
        if window < 60 {
            r.warn(
                "source backlog",
                format!("repl-backlog-size {} holds {window} s of the source's writes ({}/s now): a link down longer than that forces a new full sync", mb(backlog), mb(rate)),
                format!("CONFIG SET repl-backlog-size {} on the source (5 minutes of writes)", rate * 300),
            );
        } else {
            r.pass(
                "source backlog",
                format!(
                    "repl-backlog-size {} holds {} of writes at {}/s",
                    mb(backlog),
                    if window == u64::MAX {
                        "any amount".into()
                    } else {
                        format!("{window} s")
                    },
                    mb(rate)
                ),
            );
        }
    }
}

/// The target's keyspace, functions and checkpoint under the chosen policy.
async fn target_state(
    source: &Source,
    t: &mut Target<Stream>,
    tlayout: &mut Layout,
    opts: &CheckOptions,
    r: &mut CheckReport,
) {
    let settings = Settings {
        filter: opts.filter.clone(),
        write_mode: opts.write_mode,
        ..Settings::default()
    };
    let source_addr = match source {
        Source::RdbFile(p) => super::run::file_identity(p),
        Source::Live(c) => c.url().addr(),
    };
    let fp = checkpoint::fingerprint(&source_addr, &settings);
    // On a cluster target the checkpoint (its floor key) is on its slot's master.
    let slot = crate::key_slot(CHECKPOINT_KEY.as_bytes());
    let owner = tlayout.topology.as_ref().and_then(|topo| {
        let m = topo.master_for_slot(slot)?;
        tlayout.nodes.iter().position(|(n, _)| n.same(m))
    });
    let reader = match owner {
        Some(i) => &mut tlayout.nodes[i].1,
        None => &mut *t,
    };
    let ckpt = match reader.call(&["GET", CHECKPOINT_KEY]).await {
        Ok(f) if !f.is_null() && !f.is_error() => f.as_bytes().map(Checkpoint::parse),
        _ => None,
    };
    let shards = match (&ckpt, source) {
        (None, Source::Live(_)) => super::shards::shard_checkpoints(t, &settings).await,
        _ => Vec::new(),
    };
    let resumes = match ckpt {
        None if !shards.is_empty() => {
            // A cluster source: one checkpoint per shard.
            let foreign: Vec<&str> = shards
                .iter()
                .filter(|(_, _, ours)| !ours)
                .map(|(id, _, _)| id.as_str())
                .collect();
            if foreign.is_empty() {
                let ids: Vec<&str> = shards.iter().map(|(id, _, _)| id.as_str()).collect();
                r.pass(
                    "checkpoint",
                    format!(
                        "the migration resumes {} shard(s) of a cluster source from their checkpoints ({})",
                        ids.len(),
                        ids.join(", ")
                    ),
                );
                true
            } else {
                r.fail(
                    "checkpoint",
                    format!(
                        "the target holds shard checkpoints of another migration or unreadable ones ({})",
                        foreign.join(", ")
                    ),
                    "start that migration again, or start over with --reset-checkpoint",
                );
                false
            }
        }
        None => {
            r.pass(
                "checkpoint",
                "none: the migration starts from the beginning".into(),
            );
            false
        }
        Some(Ok(c)) if c.fingerprint == fp => {
            r.pass("checkpoint", format!("the migration resumes from {c}"));
            true
        }
        Some(Ok(c)) => {
            r.fail(
                "checkpoint",
                format!("the target holds the checkpoint of another migration ({c})"),
                "start that migration again, or start over with --reset-checkpoint",
            );
            false
        }
        Some(Err(e)) => {
            r.fail(
                "checkpoint",
                format!("unreadable checkpoint: {e}"),
                "--reset-checkpoint",
            );
            false
        }
    };
    if resumes {
        return;
    }
    let dbs = opts.filter.target_dbs(0..256);
    let busy = match side_keyspace(t, tlayout).await {
        Ok(k) => k.non_empty(dbs),
        Err(e) => return r.fail("target keyspace", e, "check the target"),
    };
    let total: u64 = busy.iter().map(|(_, n)| n).sum();
    let shown = busy
        .iter()
        .map(|(db, n)| format!("db {db}: {n} keys"))
        .collect::<Vec<_>>()
        .join(", ");
    match (total, opts.conflict) {
        (0, _) => r.pass(
            "target keyspace",
            "the dbs the migration writes are empty".into(),
        ),
        (_, Conflict::Refuse) => r.fail(
            "target keyspace",
            format!("target {} is not empty ({shown})", t.addr()),
            "use --on-conflict replace|skip, or empty it first",
        ),
        (_, Conflict::Replace) => r.warn(
            "target keyspace",
            format!("{shown}: keys the source also has are replaced"),
            "--on-conflict skip keeps them",
        ),
        (_, _) => r.warn(
            "target keyspace",
            format!("{shown}: keys the source also has are kept as they are"),
            "--on-conflict replace overwrites them",
        ),
    }
    let libs = t.function_libraries().await.unwrap_or_default();
    if !libs.is_empty() {
        let names: Vec<String> = libs
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        if opts.conflict == Conflict::Refuse {
            r.fail(
                "target function libraries",
                format!("the target has function libraries {}", names.join(", ")),
                "use --on-conflict replace|skip, or FUNCTION DELETE them first",
            );
        } else {
            r.pass(
                "target function libraries",
                format!("{} (handled by --on-conflict)", names.join(", ")),
            );
        }
    }
}
