//! `redis-migrate rdb dump FILE --format resp|json`.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use clap::{Args, ValueEnum};
use migrate_core::migrate::{Conflict, WriteMode};
use migrate_core::plan::{
    FunctionPlan, KeyPlan, KeyPlanner, PlanOptions, Planned, SkipReason, UnsupportedReason,
    Verdict, WholeKey,
};
use migrate_core::rewrite::direct::DirectKey;
use migrate_core::rewrite::json::JsonWriter;
use migrate_core::rewrite::{RespWriter, RewriteOptions};
use migrate_core::{Filter, ServerVersion};
use rdb_parser::{Event, Item, KeyRef, Options, StreamId, ValueKind, Visitor};

use super::filter_args::FilterArgs;
use super::rdb::{parse_version, Input, WriterVersion};
use super::rdb_events::{Sink, ToEvents};
use crate::error::CliError;

/// Output format of `rdb dump`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Commands in RESP, with `SELECT`s: `redis-migrate rdb dump f.rdb | redis-cli --pipe`.
    Resp,
    /// One JSON object per key per line (schema in the README).
    Json,
}

/// How `rdb dump --format resp` writes keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DumpWriteMode {
    /// Commands only.
    Rewrite,
    /// `RESTORE` where the target knows the type, commands otherwise.
    Auto,
    /// `RESTORE` only.
    Restore,
}

impl DumpWriteMode {
    fn mode(self) -> WriteMode {
        match self {
            DumpWriteMode::Rewrite => WriteMode::Rewrite,
            DumpWriteMode::Auto => WriteMode::Auto,
            DumpWriteMode::Restore => WriteMode::Restore,
        }
    }
}

/// Arguments of `rdb dump`.
#[derive(Debug, Args)]
pub(crate) struct DumpArgs {
    /// The RDB file (`-` for stdin).
    file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Resp)]
    format: Format,
    /// Write here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The server the commands are for: `X.Y`, `redis-X.Y` or `valkey-X.Y` (default: the
    /// version that wrote the file). Decides e.g. HSET vs HMSET, XSETID/ENTRIESREAD, hash
    /// field TTLs, FUNCTION LOAD.
    #[arg(long, value_name = "VERSION", value_parser = parse_version)]
    target_version: Option<ServerVersion>,
    #[command(flatten)]
    filter: FilterArgs,
    /// RESP: remove each key before writing it (UNLINK) and replace function libraries.
    #[arg(long)]
    replace: bool,
    /// Keep keys whose TTL already passed (skipped by default).
    #[arg(long)]
    include_expired: bool,
    /// RESP: write module values (which no command recreates) as `RESTORE` of their raw
    /// payload; the target must have the module loaded.
    #[arg(long)]
    restore_modules: bool,
    /// RESP: `rewrite` writes every key as commands; `auto` writes `RESTORE ... ABSTTL
    /// [IDLETIME|FREQ]` of the raw value where the target version knows its type (commands
    /// otherwise), as a migration does; `restore` always `RESTORE`s.
    #[arg(long, value_enum, default_value_t = DumpWriteMode::Rewrite)]
    write_mode: DumpWriteMode,
    /// "Now" in Unix milliseconds, for deciding which keys expired (default: the clock).
    #[arg(long, value_name = "MS", hide = true)]
    now_ms: Option<i64>,
    /// RESP: most value arguments per command (big keys are split).
    #[arg(long, value_name = "N", default_value_t = RewriteOptions::default().max_command_args)]
    max_command_args: usize,
    /// RESP: most value bytes per command (big keys are split; big strings use APPEND).
    #[arg(long, value_name = "BYTES", default_value_t = RewriteOptions::default().max_command_bytes)]
    max_command_bytes: usize,
    /// Do not print per-key warnings (the summary is still printed).
    #[arg(short, long)]
    quiet: bool,
}

/// How many per-key warnings are printed before only counting.
const MAX_WARNINGS: u64 = 20;

/// Where the output goes, with the error context.
struct Output {
    name: String,
    out: BufWriter<Box<dyn Write>>,
}

impl Output {
    fn open(path: Option<&Path>) -> Result<Output, CliError> {
        let (name, w): (String, Box<dyn Write>) = match path {
            None => ("stdout".into(), Box::new(io::stdout().lock())),
            Some(p) if p == Path::new("-") => ("stdout".into(), Box::new(io::stdout().lock())),
            Some(p) => (
                p.display().to_string(),
                Box::new(File::create(p).map_err(|e| CliError::file(p, e))?),
            ),
        };
        Ok(Output {
            name,
            // Smaller than the pieces written (128 KiB and up), which then bypass it.
            out: BufWriter::with_capacity(64 * 1024, w),
        })
    }

    fn write(&mut self, b: &[u8]) -> Result<(), CliError> {
        self.out
            .write_all(b)
            .map_err(|e| CliError::output(&self.name, e))
    }

    fn finish(mut self) -> Result<(), CliError> {
        self.out
            .flush()
            .map_err(|e| CliError::output(&self.name, e))
    }
}

impl DumpArgs {
    pub(crate) fn run(self) -> Result<(), CliError> {
        if self.max_command_args < 2 || self.max_command_bytes < 1 {
            return Err(CliError::usage(
                "--max-command-args must be at least 2 and --max-command-bytes at least 1",
            ));
        }
        let filter = self.filter.filter();
        let now_ms = if self.include_expired {
            i64::MIN
        } else {
            self.now_ms.unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0)
            })
        };
        // Raw values are captured only when keys may be RESTOREd.
        let restores = self.restore_modules || self.write_mode != DumpWriteMode::Rewrite;
        let opts = Options::default().raw_values(restores && self.format == Format::Resp);
        let mut input = Input::open(&self.file, opts)?;
        let mut output = Output::open(self.output.as_deref())?;
        let mut summary = Summary::default();
        match self.format {
            Format::Resp => self.resp(&mut input, &mut output, &filter, now_ms, &mut summary)?,
            Format::Json => self.json(&mut input, &mut output, &filter, now_ms, &mut summary)?,
        }
        output.finish()?;
        summary.print(self.format, self.quiet);
        Ok(())
    }

    fn resp(
        &self,
        input: &mut Input,
        output: &mut Output,
        filter: &Filter,
        now_ms: i64,
        summary: &mut Summary,
    ) -> Result<(), CliError> {
        let opts = RewriteOptions::default()
            .max_command_args(self.max_command_args)
            .max_command_bytes(self.max_command_bytes)
            .replace(self.replace);
        let state = RespDump {
            args: self,
            opts,
            filter,
            now_ms,
            writer_version: WriterVersion::default(),
            planner: None,
            resp: RespWriter::new(),
            buf: BytesMut::with_capacity(256 * 1024),
            output,
            summary,
        };
        let mut v = Direct {
            events: ToEvents::new(state),
            key: None,
        };
        let r = input.reader.visit(&mut v);
        v.events.result(r, &input.path)?;
        let state = v.events.sink();
        let buf = std::mem::take(&mut state.buf);
        state.output.write(&buf)?;
        if let Some(p) = &state.planner {
            state.summary.commands = p.commands();
        }
        Ok(())
    }

    fn json(
        &self,
        input: &mut Input,
        output: &mut Output,
        filter: &Filter,
        now_ms: i64,
        summary: &mut Summary,
    ) -> Result<(), CliError> {
        let mut json = JsonWriter::new();
        let mut buf = Vec::with_capacity(256 * 1024);
        let mut skipping = false;
        let on_event = |ev: Event| -> Result<(), CliError> {
            if let Event::KeyStart(k) = &ev {
                let expired = k.expire_at_ms.is_some_and(|at| at <= now_ms);
                let db = filter
                    .target_db(k.db)
                    .filter(|_| filter.accepts_key(&k.key));
                if db.is_none() {
                    summary.filtered += 1;
                    skipping = true;
                } else if expired {
                    summary.expired += 1;
                    skipping = true;
                } else if let Some(db) = db.filter(|&d| d != k.db) {
                    let mut k = k.clone();
                    k.db = db;
                    json.push(&Event::KeyStart(k), &mut buf);
                    summary.written += 1;
                    return Ok(());
                } else {
                    summary.written += 1;
                }
            }
            if skipping {
                if matches!(ev, Event::KeyEnd) {
                    skipping = false;
                }
                return Ok(());
            }
            if json.push(&ev, &mut buf) && buf.len() >= 128 * 1024 {
                output.write(&buf)?;
                buf.clear();
            }
            Ok(())
        };
        ToEvents::new(on_event).run(&mut input.reader, &input.path)?;
        output.write(&buf)?;
        Ok(())
    }
}

/// `rdb dump --format resp`: every key through the planner, as events (from [`ToEvents`]),
/// or, for a key the planner writes as commands and [`DirectKey`] handles, as RESP straight
/// from the borrowed items.
struct RespDump<'a> {
    args: &'a DumpArgs,
    opts: RewriteOptions,
    filter: &'a Filter,
    now_ms: i64,
    writer_version: WriterVersion,
    planner: Option<KeyPlanner>,
    resp: RespWriter,
    buf: BytesMut,
    output: &'a mut Output,
    summary: &'a mut Summary,
}

impl RespDump<'_> {
    /// Writes the output out once it is big enough.
    fn spill(&mut self) -> Result<(), CliError> {
        if self.buf.len() >= 128 * 1024 {
            self.output.write(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

impl Sink for RespDump<'_> {
    fn event(&mut self, ev: Event) -> Result<(), CliError> {
        self.writer_version.observe(&ev);
        if self.planner.is_none() && matches!(ev, Event::KeyStart(_) | Event::Function(_)) {
            let a = self.args;
            let target = a
                .target_version
                .unwrap_or_else(|| self.writer_version.version());
            self.summary.target = Some(target);
            let mut p = KeyPlanner::new(
                PlanOptions::new(target)
                    .mode(a.write_mode.mode())
                    .conflict(if a.replace {
                        Conflict::Replace
                    } else {
                        Conflict::Refuse
                    })
                    .rewrite(self.opts.clone())
                    .filter(self.filter.clone())
                    .restore_modules(a.restore_modules)
                    // A dump has no size limit of its own: big keys are chunked as
                    // commands in auto mode, RESTOREd whole otherwise.
                    .max_bulk_len(u64::MAX),
                self.now_ms,
            );
            if let Some(h) = self.writer_version.header() {
                p.set_source(h.family, h.version);
            }
            self.planner = Some(p);
        }
        let Some(p) = self.planner.as_mut() else {
            return Ok(());
        };
        let (resp, buf) = (&mut self.resp, &mut self.buf);
        match p.push(ev, &mut |cmd| resp.encode(&cmd, buf)) {
            Planned::Key(k) => self.summary.key(&k, self.args.quiet),
            Planned::Function(f) => self.summary.function(&f, self.args.quiet),
            _ => {}
        }
        self.spill()
    }
}

/// The visitor of [`RespDump`]: [`ToEvents`], except for the items of a key handed to a
/// [`DirectKey`] (a key the planner writes as commands, streams included).
struct Direct<'a> {
    events: ToEvents<RespDump<'a>>,
    key: Option<DirectKey>,
}

impl Direct<'_> {
    /// The key start through [`ToEvents`] (as an owned event), then [`Direct::take_over`].
    fn key_start_event(&mut self, key: &KeyRef<'_>) -> ControlFlow<()> {
        self.events.key_start(key)?;
        self.take_over()
    }

    /// After the planner took the key start: the key's [`DirectKey`], when the planner
    /// hands one out.
    fn take_over(&mut self) -> ControlFlow<()> {
        if let Some(p) = self.events.sink().planner.as_mut() {
            self.key = p.direct();
        }
        ControlFlow::Continue(())
    }

    /// Runs `f` on the direct key, when there is one; else `None`.
    #[inline]
    fn with(
        &mut self,
        f: impl FnOnce(&mut DirectKey, &mut RespWriter, &mut BytesMut),
    ) -> Option<ControlFlow<()>> {
        let key = self.key.as_mut()?;
        let st = self.events.sink();
        f(key, &mut st.resp, &mut st.buf);
        Some(ControlFlow::Continue(()))
    }
}

impl Visitor for Direct<'_> {
    /// The common key in one call: the planner's `RESTORE` encoded straight into the output
    /// (the value copied once), or the key skipped.
    fn whole_key(
        &mut self,
        key: &KeyRef<'_>,
        value: &[u8],
        _record_len: u64,
    ) -> Option<ControlFlow<()>> {
        if self.events.error.is_some() || self.key.is_some() {
            return None;
        }
        let st = self.events.sink();
        // The first key creates the planner: through the events.
        let p = st.planner.as_mut()?;
        let (resp, buf) = (&mut st.resp, &mut st.buf);
        match p.whole_key(key, value, |cmd| {
            resp.select(cmd.db(), buf);
            cmd.encode(buf);
            true
        }) {
            WholeKey::Restored { .. } => st.summary.written += 1,
            WholeKey::Skipped {
                reason: SkipReason::Expired { .. },
                ..
            } => st.summary.expired += 1,
            WholeKey::Skipped { .. } => st.summary.filtered += 1,
            _ => return None,
        }
        Some(match st.spill() {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => self.events.fail(e),
        })
    }
    fn key_start(&mut self, key: &KeyRef<'_>) -> ControlFlow<()> {
        if self.events.error.is_some() {
            return ControlFlow::Break(());
        }
        let st = self.events.sink();
        let Some(p) = st.planner.as_mut() else {
            // The first key (or function) creates the planner: through the events.
            return self.key_start_event(key);
        };
        // The key's name goes into the planner's arena (no owned `KeyStart` event: no
        // chunk of items is pending between keys, and a key start needs no `observe`).
        let (resp, buf) = (&mut st.resp, &mut st.buf);
        p.key_start_ref(key, &mut |cmd| resp.encode(&cmd, buf));
        self.take_over()
    }
    fn string(&mut self, piece: Item<'_>) -> ControlFlow<()> {
        match self.with(|k, r, b| k.string(piece, r, b)) {
            Some(flow) => flow,
            None => self.events.string(piece),
        }
    }
    fn list_item(&mut self, item: Item<'_>) -> ControlFlow<()> {
        match self.with(|k, r, b| k.element(item, r, b)) {
            Some(flow) => flow,
            None => self.events.list_item(item),
        }
    }
    fn set_member(&mut self, member: Item<'_>) -> ControlFlow<()> {
        match self.with(|k, r, b| k.element(member, r, b)) {
            Some(flow) => flow,
            None => self.events.set_member(member),
        }
    }
    fn zset_entry(&mut self, member: Item<'_>, score: f64) -> ControlFlow<()> {
        match self.with(|k, r, b| k.zset_entry(member, score, r, b)) {
            Some(flow) => flow,
            None => self.events.zset_entry(member, score),
        }
    }
    fn hash_entry(
        &mut self,
        field: Item<'_>,
        value: Item<'_>,
        expire_at_ms: Option<u64>,
    ) -> ControlFlow<()> {
        match self.with(|k, r, b| k.hash_entry(field, value, r, b)) {
            Some(flow) => flow,
            None => self.events.hash_entry(field, value, expire_at_ms),
        }
    }
    fn wants_items(&mut self, value_len: u64) -> bool {
        // A key to be restored whole needs only its raw bytes.
        let Some(p) = self.events.sink().planner.as_mut() else {
            return true;
        };
        let forced = p.options().mode != WriteMode::Auto;
        let fits = forced || value_len <= p.options().big_key_bytes as u64;
        if p.verdict() == Some(&Verdict::Restore) && fits {
            p.raw_only();
            return false;
        }
        true
    }
    fn stream_entry(&mut self, id: StreamId, fields: &[(Item<'_>, Item<'_>)]) -> ControlFlow<()> {
        match self.with(|k, r, b| k.stream_entry(id, fields, r, b)) {
            Some(flow) => flow,
            None => self.events.stream_entry(id, fields),
        }
    }
    fn raw_value(&mut self, piece: &[u8]) -> ControlFlow<()> {
        if self.key.is_some() {
            // A key written as commands has no use for its raw bytes (nor has the
            // planner, in its direct mode).
            return ControlFlow::Continue(());
        }
        self.events.raw_value(piece)
    }
    fn key_end(&mut self, record_len: u64) -> ControlFlow<()> {
        let st = self.events.sink();
        let Some(key) = self.key.take() else {
            return self.events.key_end(record_len);
        };
        let done = key.finish(&mut st.resp, &mut st.buf);
        if let Some(plan) = st.planner.as_mut().and_then(|p| p.direct_done(done)) {
            st.summary.key(&plan, st.args.quiet);
        }
        match st.spill() {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => self.events.fail(e),
        }
    }
    fn event(&mut self, event: Event) -> ControlFlow<()> {
        match self.key.as_mut().filter(|k| k.is_stream()) {
            // Inside a stream key: its metadata, groups and consumers.
            Some(k) => {
                k.stream_event(&event);
                ControlFlow::Continue(())
            }
            None => self.events.event(event),
        }
    }
}

/// What `rdb dump` did, printed on stderr at the end.
#[derive(Debug, Default)]
struct Summary {
    target: Option<ServerVersion>,
    written: u64,
    commands: u64,
    filtered: u64,
    expired: u64,
    empty: u64,
    need_restore: u64,
    restored: u64,
    unsupported: u64,
    lossy: u64,
    functions: u64,
    functions_unsupported: u64,
    warnings: u64,
}

impl Summary {
    fn warn(&mut self, quiet: bool, msg: String) {
        self.warnings += 1;
        if !quiet && self.warnings <= MAX_WARNINGS {
            eprintln!("redis-migrate: warning: {msg}");
        }
    }

    fn key(&mut self, k: &KeyPlan, quiet: bool) {
        let name = || format!("db{} {:?}", k.db, String::from_utf8_lossy(&k.key));
        match &k.verdict {
            Verdict::Restore => {
                if k.kind == ValueKind::Module {
                    self.restored += 1;
                } else {
                    self.written += 1;
                }
            }
            Verdict::Rewrite(_) => {
                self.written += 1;
                if !k.losses.is_empty() {
                    self.lossy += 1;
                    for l in &k.losses {
                        self.warn(quiet, format!("{}: {l}", name()));
                    }
                }
            }
            Verdict::Skip(SkipReason::Filtered | SkipReason::Reserved) => self.filtered += 1,
            Verdict::Skip(SkipReason::Expired { .. }) => self.expired += 1,
            Verdict::Skip(_) => self.empty += 1,
            Verdict::Unsupported(UnsupportedReason::ModuleNeedsRestore { type_name }) => {
                self.need_restore += 1;
                let what = match type_name {
                    Some(m) => format!("module value ({m}) needs RESTORE"),
                    None => "needs RESTORE".to_string(),
                };
                self.warn(quiet, format!("{}: {what}, not written", name()));
            }
            Verdict::Unsupported(UnsupportedReason::Rewrite(status)) => {
                self.unsupported += 1;
                self.warn(quiet, format!("{}: {status}, not written", name()));
            }
            Verdict::Unsupported(reason) => {
                self.unsupported += 1;
                self.warn(
                    quiet,
                    format!(
                        "{}: unsupported by the target: {reason}, not written",
                        name()
                    ),
                );
            }
            _ => {}
        }
    }

    fn function(&mut self, f: &FunctionPlan, quiet: bool) {
        match f {
            FunctionPlan::Unsupported { name } => {
                let name = name
                    .as_ref()
                    .map(|n| String::from_utf8_lossy(n).into_owned())
                    .unwrap_or_else(|| "?".into());
                self.functions_unsupported += 1;
                self.warn(
                    quiet,
                    format!("function library {name}: the target has no functions, not written"),
                );
            }
            _ => self.functions += 1,
        }
    }

    fn print(&self, format: Format, quiet: bool) {
        if self.warnings > MAX_WARNINGS && !quiet {
            eprintln!(
                "redis-migrate: warning: ... {} more warnings",
                self.warnings - MAX_WARNINGS
            );
        }
        let mut line = format!("redis-migrate: {} keys written", self.written);
        if format == Format::Resp {
            line += &format!(" ({} commands", self.commands);
            if let Some(t) = self.target {
                line += &format!(" for {t}");
            }
            line += ")";
            if self.functions > 0 {
                line += &format!(", {} function libraries", self.functions);
            }
        }
        for (n, what) in [
            (self.expired, "expired"),
            (self.filtered, "filtered out"),
            (self.empty, "empty"),
            (self.lossy, "written with losses (see warnings)"),
            (self.restored, "module values written as RESTORE"),
            (
                self.need_restore,
                "need RESTORE (module values; see --restore-modules), not written",
            ),
            (self.unsupported, "unsupported by the target, not written"),
            (
                self.functions_unsupported,
                "function libraries unsupported by the target",
            ),
        ] {
            if n > 0 {
                line += &format!(", {n} {what}");
            }
        }
        eprintln!("{line}");
    }
}
