//! The per-key planner: for each key of an RDB stream, what to write to the target and why.
//!
//! [`KeyPlanner`] is sans-IO (no sockets, no clock): it is fed the decoder's output for one
//! key at a time and hands out the [`Cmd`]s that recreate the key on the target through a
//! callback, like [`Rewriter::push`]. The engine's full sync (live sources, RDB files,
//! scan mode), `redis-migrate rdb dump --format resp` and custom tools use this one planner,
//! so every key is decided the same way:
//!
//! 1. the [`Filter`] (db map, key patterns, key transform) maps or drops the key
//!    ([`SkipReason::Filtered`]); keys under [`crate::migrate::RESERVED_PREFIX`] are never
//!    copied ([`SkipReason::Reserved`]);
//! 2. a key whose TTL passed is skipped ([`SkipReason::Expired`]; under
//!    [`Conflict::Replace`] an `UNLINK` makes sure the target does not keep an older value);
//! 3. a module value needs its module on the target ([`UnsupportedReason::ModuleNotLoaded`]);
//! 4. the value is written as `RESTORE key ttl payload ABSTTL [REPLACE] [IDLETIME n|FREQ n]`
//!    of its raw serialized bytes with the footer set for the target ([`Verdict::Restore`]),
//!    when the target accepts the type byte (by family and version, or as probed:
//!    [`KeyPlanner::set_accepted`]) and the value stays below the big-key threshold;
//! 5. otherwise as commands from the [`Rewriter`], chunked ([`Verdict::Rewrite`] with its
//!    [`RewriteReason`]); what the target cannot hold exactly is listed in
//!    [`KeyPlan::losses`] (lossy keys), what it cannot hold at all is
//!    [`Verdict::Unsupported`].
//!
//! # Feeding a key
//! [`KeyPlanner::key_start`] returns the first [`Verdict`]. Then the value: its raw bytes
//! ([`KeyPlanner::raw`], the `RawValue` chunks of a decoder with
//! [`rdb_parser::Options::raw_values`]) and, while [`KeyPlanner::wants_events`] says so, its
//! decoded events ([`KeyPlanner::value`]). A key that may still be restored keeps both
//! (memory bounded by about twice the big-key threshold); when it grows past the
//! threshold the planner switches to commands mid-key (the buffered events first).
//! [`KeyPlanner::key_end`] emits what is left and returns the [`KeyPlan`].
//!
//! A caller that does not decode the values of keys bound for `RESTORE` (raw pass-through)
//! feeds only the raw bytes while [`KeyPlanner::wants_events`] is `false`; when the key
//! must be rewritten after all, the planner decodes the buffered raw bytes itself.
//!
//! A [`rdb_parser::Visitor`] starts its keys with [`KeyPlanner::key_start_ref`] (the borrowed
//! [`KeyRef`]). The common key then costs no allocation of its own: its name, its raw value
//! with the payload's footer, and its TTL are carved from one arena of the planner, and the
//! argument vectors of written commands come back through [`KeyPlanner::recycle`].
//!
//! Faster still, a visitor offered a key whole ([`rdb_parser::Visitor::whole_key`]) plans
//! it in one call with [`KeyPlanner::whole_key`]: a key bound for one `RESTORE` and nothing
//! else is lent as a [`RestoreCmd`] that borrows the key and the value from the decoder's
//! buffer, and [`RestoreCmd::encode`] writes it as RESP into the caller's output (the value
//! copied once, the payload's CRC computed over that copy); a key skipped without a
//! command is decided too. Every other key is declined, untouched, and fed as above. The
//! engine's full sync and `rdb dump --format resp` take every key they can this way.
//!
//! Two decisions need the target, and so the caller: under [`Conflict::Skip`] a key to be
//! rewritten waits for [`KeyPlanner::resolve_exists`] ([`KeyPlanner::awaiting_exists`]
//! names it), and with probing ([`PlanOptions::probe`]) the first key of each type byte
//! waits at its end for a trial `RESTORE` ([`KeyPlanner::needs_probe`],
//! [`KeyPlanner::probe_payload`], [`KeyPlanner::set_accepted`]).
//!
//! ```
//! use migrate_core::plan::{KeyPlanner, PlanOptions, Verdict};
//! use migrate_core::{ServerFamily, ServerVersion};
//! use rdb_parser::{decode_all, Options};
//!
//! // An RDB 3 file with one string key "k" = "v".
//! let events = decode_all(b"REDIS0003\xfe\x00\x00\x01k\x01v\xff", Options::default().raw_values(true))?;
//! let target = ServerVersion::new(ServerFamily::Redis, 7, 2, 0);
//! let mut planner = KeyPlanner::new(PlanOptions::new(target), 1_700_000_000_000);
//! let mut cmds = Vec::new();
//! let mut plans = Vec::new();
//! for ev in events {
//!     if let Some(plan) = planner.push(ev, &mut |c| cmds.push(c)).into_key() {
//!         plans.push(plan);
//!     }
//! }
//! assert_eq!(plans[0].verdict, Verdict::Restore);
//! assert_eq!(&cmds[0].args[0][..], b"RESTORE");
//! # Ok::<(), rdb_parser::Error>(())
//! ```

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use rdb_parser::{Event, Family, KeyRef, KeyStart, ValueKind};

use crate::migrate::{Conflict, WriteMode};
use crate::rewrite::direct::{DirectDone, DirectKey, Spare};
use crate::rewrite::{Cmd, Done, FunctionStatus, KeyStatus, Loss, RewriteOptions, Rewriter, Scope};
use crate::{Filter, ServerVersion};

mod restore;

pub use restore::RestoreCmd;
use restore::{decimal, Hint, FOOTER};

/// The facts and policies the planner decides by.
#[derive(Clone)]
#[non_exhaustive]
pub struct PlanOptions {
    /// The target's version (its type tables, `ABSTTL`, `UNLINK`, the payload footer).
    pub target: ServerVersion,
    /// `RESTORE` or commands ([`WriteMode::Auto`] by default).
    pub mode: WriteMode,
    /// Keys that exist on the target ([`Conflict::Replace`]: `RESTORE ... REPLACE`, or the
    /// key removed before its commands).
    pub conflict: Conflict,
    /// A value whose raw size passes this is written as commands (default
    /// [`crate::migrate::DEFAULT_BIG_KEY_BYTES`], as the engine's).
    pub big_key_bytes: usize,
    /// The target's `proto-max-bulk-len`: a `RESTORE` payload above it cannot be sent.
    pub max_bulk_len: u64,
    /// Options of the rewrite (chunk sizes); `replace` follows [`PlanOptions::conflict`].
    pub rewrite: RewriteOptions,
    /// Which keys, in which db, under which name.
    pub filter: Filter,
    /// The target's modules (`MODULE LIST`), when known: module values whose module is not
    /// loaded are [`UnsupportedReason::ModuleNotLoaded`].
    pub target_modules: Option<Arc<[String]>>,
    /// Function libraries already on the target, kept ([`FunctionPlan::Kept`]).
    pub existing_functions: Option<Arc<HashSet<Bytes>>>,
    /// Learn which type bytes the target restores from the target itself (see
    /// [`KeyPlanner::needs_probe`]) instead of the version tables.
    pub probe: bool,
    /// With [`WriteMode::Rewrite`]: module values (which no command recreates) are still
    /// written with `RESTORE`.
    pub restore_modules: bool,
}

impl PlanOptions {
    /// Defaults for a target of version `target`.
    pub fn new(target: ServerVersion) -> PlanOptions {
        PlanOptions {
            target,
            mode: WriteMode::Auto,
            conflict: Conflict::Refuse,
            big_key_bytes: crate::migrate::DEFAULT_BIG_KEY_BYTES,
            max_bulk_len: 512 * 1024 * 1024,
            rewrite: RewriteOptions::default(),
            filter: Filter::new(),
            target_modules: None,
            existing_functions: None,
            probe: false,
            restore_modules: false,
        }
    }

    /// Sets [`PlanOptions::mode`].
    pub fn mode(mut self, mode: WriteMode) -> PlanOptions {
        self.mode = mode;
        self
    }

    /// Sets [`PlanOptions::conflict`].
    pub fn conflict(mut self, conflict: Conflict) -> PlanOptions {
        self.conflict = conflict;
        self
    }

    /// Sets [`PlanOptions::big_key_bytes`].
    pub fn big_key_bytes(mut self, n: usize) -> PlanOptions {
        self.big_key_bytes = n;
        self
    }

    /// Sets [`PlanOptions::max_bulk_len`].
    pub fn max_bulk_len(mut self, n: u64) -> PlanOptions {
        self.max_bulk_len = n;
        self
    }

    /// Sets [`PlanOptions::rewrite`].
    pub fn rewrite(mut self, opts: RewriteOptions) -> PlanOptions {
        self.rewrite = opts;
        self
    }

    /// Sets [`PlanOptions::filter`].
    pub fn filter(mut self, filter: Filter) -> PlanOptions {
        self.filter = filter;
        self
    }

    /// Sets [`PlanOptions::target_modules`].
    pub fn target_modules(mut self, modules: Option<Arc<[String]>>) -> PlanOptions {
        self.target_modules = modules;
        self
    }

    /// Sets [`PlanOptions::existing_functions`].
    pub fn existing_functions(mut self, names: Option<Arc<HashSet<Bytes>>>) -> PlanOptions {
        self.existing_functions = names;
        self
    }

    /// Sets [`PlanOptions::probe`].
    pub fn probe(mut self, on: bool) -> PlanOptions {
        self.probe = on;
        self
    }

    /// Sets [`PlanOptions::restore_modules`].
    pub fn restore_modules(mut self, on: bool) -> PlanOptions {
        self.restore_modules = on;
        self
    }
}

/// How a key is (being) written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// `RESTORE` of the raw payload, at the key's end.
    Restore,
    /// Commands from the [`Rewriter`].
    Rewrite(RewriteReason),
    /// Nothing is written, by design.
    Skip(SkipReason),
    /// Nothing is written: the target cannot hold the key (report it).
    Unsupported(UnsupportedReason),
}

impl Verdict {
    /// `true` for [`Verdict::Restore`] and [`Verdict::Rewrite`].
    pub fn writes(&self) -> bool {
        matches!(self, Verdict::Restore | Verdict::Rewrite(_))
    }
}

/// Why a key is written as commands rather than restored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RewriteReason {
    /// [`WriteMode::Rewrite`].
    Mode,
    /// The target's version does not know the type byte (or, for type bytes from 22 up,
    /// source and target families read it differently).
    UnknownType {
        /// The type byte.
        type_byte: u8,
    },
    /// The target refused a trial `RESTORE` of this type byte.
    Refused {
        /// The type byte.
        type_byte: u8,
    },
    /// The raw value grew past [`PlanOptions::big_key_bytes`].
    BigKey {
        /// Raw bytes seen when the planner switched.
        bytes: usize,
    },
}

/// Why a key is not written, by design.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// The filter (db, key patterns, transform) dropped it.
    Filtered,
    /// A key of a migration's own (under [`crate::migrate::RESERVED_PREFIX`]).
    Reserved,
    /// Its TTL passed.
    Expired {
        /// The key's expiry (Unix ms).
        expire_at_ms: i64,
    },
    /// [`Conflict::Skip`]: the target has the key.
    Exists,
    /// Nothing to write: an empty collection, or a hash whose fields all expired.
    Empty,
}

/// Why the target cannot hold a key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnsupportedReason {
    /// [`WriteMode::Restore`], and the target cannot `RESTORE` this type byte.
    NoRestore {
        /// The type byte.
        type_byte: u8,
        /// The target.
        target: ServerVersion,
    },
    /// The module of this module type is not loaded on the target.
    ModuleNotLoaded {
        /// The module's name (`ReJSON`, `bf`, ...), when known.
        module: String,
        /// The module type name (`ReJSON-RL`).
        type_name: String,
    },
    /// The target has no module loaded at all.
    NoModules {
        /// The module type name.
        type_name: String,
    },
    /// A module value under [`WriteMode::Rewrite`]: no command recreates it.
    ModuleNeedsRestore {
        /// The module type name, when known.
        type_name: Option<String>,
    },
    /// The `RESTORE` payload is larger than the target's `proto-max-bulk-len`.
    PayloadTooBig {
        /// The target's limit.
        limit: u64,
    },
    /// The rewriter cannot express the value for this target (e.g. a stream before 5.0).
    Rewrite(KeyStatus),
    /// The raw value could not be decoded for the rewrite.
    Corrupt(String),
}

impl fmt::Display for UnsupportedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnsupportedReason::NoRestore { type_byte, target } => {
                write!(
                    f,
                    "the target ({target}) cannot RESTORE RDB type {type_byte}"
                )
            }
            UnsupportedReason::ModuleNotLoaded { module, type_name } => write!(
                f,
                "module {module} is not loaded on the target (module type {type_name})"
            ),
            UnsupportedReason::NoModules { type_name } => write!(
                f,
                "no module is loaded on the target (module type {type_name})"
            ),
            UnsupportedReason::ModuleNeedsRestore { .. } => {
                f.write_str("module values can only be written with RESTORE (write mode rewrite)")
            }
            UnsupportedReason::PayloadTooBig { limit } => write!(
                f,
                "its RESTORE payload exceeds the target's proto-max-bulk-len ({limit} bytes)"
            ),
            UnsupportedReason::Rewrite(status) => fmt::Display::fmt(status, f),
            UnsupportedReason::Corrupt(what) => write!(f, "its value cannot be decoded: {what}"),
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Filtered => f.write_str("filtered out"),
            SkipReason::Reserved => f.write_str("a key of redis-migrate's own"),
            SkipReason::Expired { expire_at_ms } => write!(f, "expired at {expire_at_ms} ms"),
            SkipReason::Exists => f.write_str("exists on the target"),
            SkipReason::Empty => f.write_str("empty, nothing to write"),
        }
    }
}

/// What was done with one key, at its end.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct KeyPlan {
    /// The target db.
    pub db: u32,
    /// The key's name on the target.
    pub key: Bytes,
    /// Its type.
    pub kind: ValueKind,
    /// Its type byte in the source.
    pub type_byte: u8,
    /// How it was written, or why not.
    pub verdict: Verdict,
    /// Commands emitted for it (including an `UNLINK` of a key skipped under
    /// [`Conflict::Replace`]).
    pub commands: u64,
    /// What the target could not be given exactly (empty for an exact copy).
    pub losses: Vec<Loss>,
    /// Hash fields skipped because their own TTL had passed.
    pub expired_fields: u64,
}

impl KeyPlan {
    /// `true` when the key was written with losses.
    pub fn is_lossy(&self) -> bool {
        self.verdict.writes() && !self.losses.is_empty()
    }
}

/// What was done with a function library.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FunctionPlan {
    /// `FUNCTION LOAD` emitted.
    Load {
        /// The library's name, when the code names it.
        name: Option<Bytes>,
    },
    /// On the target already ([`PlanOptions::existing_functions`]): kept, nothing emitted.
    Kept {
        /// The library's name.
        name: Bytes,
    },
    /// The target has no functions (before Redis 7.0).
    Unsupported {
        /// The library's name, when the code names it.
        name: Option<Bytes>,
    },
}

/// What [`KeyPlanner::push`] reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Planned {
    /// Nothing new.
    Nothing,
    /// A key started or changed course: its (new) verdict.
    Verdict(Verdict),
    /// A key ended.
    Key(KeyPlan),
    /// A function library was handled.
    Function(FunctionPlan),
}

impl Planned {
    /// The key's plan, if a key ended.
    pub fn into_key(self) -> Option<KeyPlan> {
        match self {
            Planned::Key(k) => Some(k),
            _ => None,
        }
    }
}

enum Mode {
    /// Nothing is written (the verdict says why).
    Skip,
    /// Raw bytes (in [`KeyPlanner::arena`]) and the decoded events, when fed, kept for
    /// `RESTORE`.
    Buffer {
        events: Vec<Event>,
        /// Some value events were not fed (raw pass-through): a rewrite decodes `raw`.
        events_missing: bool,
    },
    /// To be rewritten once [`KeyPlanner::resolve_exists`] answers; events buffered.
    AwaitExists { events: Vec<Event> },
    /// Written as commands as the events come.
    Rewrite,
    /// Written as commands by a [`DirectKey`] the caller holds.
    Direct,
}

struct Current {
    start: KeyStart,
    kind: ValueKind,
    verdict: Verdict,
    mode: Mode,
    /// Commands emitted for the key outside the rewriter (RESTORE, UNLINK).
    commands: u64,
}

/// The planner: see the [module documentation](self).
pub struct KeyPlanner {
    opts: PlanOptions,
    rewriter: Rewriter,
    /// The source's family and RDB version (from its header).
    source: (Family, u32),
    probed: BTreeMap<u8, bool>,
    cur: Option<Current>,
    commands: u64,
    /// The buffers of the last [`DirectKey`].
    spare: Spare,
    /// The current key (being rewritten) was started in the rewriter.
    rw_started: bool,
    /// Where the bytes of each key's commands are carved from (its name, its `RESTORE`
    /// payload, its TTL), so that the common key costs no allocation of its own: while a
    /// key is kept for `RESTORE` ([`Mode::Buffer`]), the arena holds its raw value, and is
    /// empty otherwise. A block is shared by the [`Bytes`] carved from it and freed with
    /// the last of them.
    arena: BytesMut,
    /// Argument vectors given back by the caller ([`KeyPlanner::recycle`]).
    spare_args: Vec<Vec<Bytes>>,
}

/// Size of the blocks of the planner's arena.
const ARENA_BLOCK: usize = 64 << 10;
/// Arguments of the longest `RESTORE` (`RESTORE key ttl payload ABSTTL REPLACE IDLETIME n`).
const RESTORE_ARGS: usize = 8;
/// Argument vectors kept for reuse.
const SPARE_ARGS: usize = 4096;

/// The `RESTORE` of a key: TTL as `ABSTTL` (the caller checked that the target has it),
/// `REPLACE` under [`Conflict::Replace`], the idle time or frequency where the target
/// takes them; the payload `body` with the target's footer.
fn restore_cmd<'a>(
    opts: &PlanOptions,
    db: u32,
    key: &'a [u8],
    expire_at_ms: Option<i64>,
    (lru_idle, lfu_freq): (Option<u64>, Option<u8>),
    body: [&'a [u8]; 2],
) -> RestoreCmd<'a> {
    let target = opts.target;
    let hint = if target.has_restore_idletime_freq() {
        lru_idle.map(Hint::Idle).or(lfu_freq.map(Hint::Freq))
    } else {
        None
    };
    RestoreCmd {
        db,
        key,
        expire_at_ms,
        body,
        version: target.rdb_version(),
        replace: opts.conflict == Conflict::Replace,
        hint,
    }
}

/// What [`KeyPlanner::whole_key`] did with a key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WholeKey {
    /// Nothing was done: feed the key as usual ([`KeyPlanner::key_start_ref`], ...).
    Declined,
    /// Its one `RESTORE` was taken by the caller: the key is done.
    Restored {
        /// The target db.
        db: u32,
        /// The value's type.
        kind: ValueKind,
    },
    /// Not written, and nothing to send for it: the key is done.
    Skipped {
        /// The value's type.
        kind: ValueKind,
        /// Why ([`SkipReason::Filtered`], [`SkipReason::Reserved`] or
        /// [`SkipReason::Expired`]).
        reason: SkipReason,
    },
}

impl fmt::Debug for KeyPlanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPlanner")
            .field("target", &self.opts.target)
            .field("mode", &self.opts.mode)
            .field("in_key", &self.cur.is_some())
            .finish_non_exhaustive()
    }
}

impl KeyPlanner {
    /// A planner; `now_ms` (Unix ms) decides which keys already expired.
    pub fn new(opts: PlanOptions, now_ms: i64) -> KeyPlanner {
        let rewrite = opts
            .rewrite
            .clone()
            .replace(opts.conflict == Conflict::Replace);
        KeyPlanner {
            rewriter: Rewriter::new(opts.target, rewrite, now_ms),
            source: (Family::Redis, 12),
            probed: BTreeMap::new(),
            cur: None,
            commands: 0,
            spare: Spare::default(),
            rw_started: false,
            arena: BytesMut::with_capacity(ARENA_BLOCK),
            spare_args: Vec::new(),
            opts,
        }
    }

    /// The options.
    pub fn options(&self) -> &PlanOptions {
        &self.opts
    }

    /// Updates "now" (a long load advances it as time passes).
    pub fn set_now_ms(&mut self, now_ms: i64) {
        self.rewriter.set_now_ms(now_ms);
    }

    /// The family that wrote the source (from its header; Redis 12 until told): type bytes
    /// from 22 up mean different things in Redis and Valkey.
    /// `version` is the header's RDB version (which decodes a kept raw value for a rewrite).
    pub fn set_source(&mut self, family: Family, version: u32) {
        self.source = (family, version);
    }

    /// Commands emitted so far.
    pub fn commands(&self) -> u64 {
        self.commands
    }

    /// What the target answered to the trial `RESTORE`s so far, per type byte.
    pub fn probed(&self) -> &BTreeMap<u8, bool> {
        &self.probed
    }

    /// The current key's target db and name (after the filter's mapping), while inside a
    /// key that the filter kept.
    pub fn current_key(&self) -> Option<(u32, &Bytes)> {
        self.cur
            .as_ref()
            .filter(|c| {
                !matches!(
                    c.verdict,
                    Verdict::Skip(SkipReason::Filtered | SkipReason::Reserved)
                )
            })
            .map(|c| (c.start.db, &c.start.key))
    }

    /// The current key's verdict so far.
    pub fn verdict(&self) -> Option<&Verdict> {
        self.cur.as_ref().map(|c| &c.verdict)
    }

    /// Whether the current key's decoded value events are wanted: `true` for a key being
    /// written as commands, and for a key kept for `RESTORE` whose events are collected in
    /// case it must switch to commands; `false` for a skipped key and for a key in raw-only
    /// mode ([`KeyPlanner::raw_only`]). If a raw-only key must be rewritten after all, the
    /// planner decodes the raw bytes it kept, and this turns `true` for the rest of it.
    pub fn wants_events(&self) -> bool {
        match self.cur.as_ref().map(|c| &c.mode) {
            Some(Mode::Rewrite | Mode::AwaitExists { .. }) => true,
            Some(Mode::Buffer { events_missing, .. }) => !*events_missing,
            _ => false,
        }
    }

    /// Marks the rest of the current key's value as not fed as events (raw pass-through):
    /// a later switch to commands decodes the kept raw bytes instead.
    pub fn raw_only(&mut self) {
        if let Some(Current {
            mode:
                Mode::Buffer {
                    events,
                    events_missing,
                    ..
                },
            ..
        }) = self.cur.as_mut()
        {
            events.clear();
            *events_missing = true;
        }
    }

    /// Dispatches one decoder event to the method it belongs to.
    pub fn push(&mut self, ev: Event, out: &mut impl FnMut(Cmd)) -> Planned {
        match ev {
            Event::Header(h) => {
                self.source = (h.family, h.version);
                Planned::Nothing
            }
            Event::KeyStart(k) => Planned::Verdict(self.key_start(k, out)),
            Event::RawValue(chunk) => match self.raw(&chunk, out) {
                Some(v) => Planned::Verdict(v),
                None => Planned::Nothing,
            },
            Event::KeyEnd => match self.key_end(out) {
                Some(p) => Planned::Key(p),
                None => Planned::Nothing,
            },
            Event::Function(_) => match self.function(&ev, out) {
                Some(p) => Planned::Function(p),
                None => Planned::Nothing,
            },
            ev => {
                if let Some(Current {
                    mode: Mode::Rewrite,
                    ..
                }) = self.cur
                {
                    self.rewrite_value(&ev, out);
                } else {
                    self.value(ev, out);
                }
                Planned::Nothing
            }
        }
    }

    /// A key begins: maps it through the filter and decides how it is written.
    ///
    /// An expired key under [`Conflict::Replace`] emits its `UNLINK` here.
    pub fn key_start(&mut self, mut k: KeyStart, out: &mut impl FnMut(Cmd)) -> Verdict {
        // A key that ended without `key_end` leaves nothing behind.
        self.arena.clear();
        let kind = k.kind();
        let verdict = self.decide(&mut k);
        let mut commands = 0;
        if let Verdict::Skip(SkipReason::Expired { .. }) = verdict {
            if self.opts.conflict == Conflict::Replace {
                let del = if self.opts.target.has_unlink() {
                    "UNLINK"
                } else {
                    "DEL"
                };
                let scope = Scope::Key {
                    db: k.db,
                    key: k.key.clone(),
                };
                out(Cmd::new(
                    scope,
                    vec![Bytes::from_static(del.as_bytes()), k.key.clone()],
                ));
                commands += 1;
                self.commands += 1;
            }
        }
        let mode = match &verdict {
            Verdict::Restore => Mode::Buffer {
                events: Vec::new(),
                events_missing: false,
            },
            Verdict::Rewrite(_) => Mode::AwaitExists { events: Vec::new() },
            _ => Mode::Skip,
        };
        self.cur = Some(Current {
            start: k,
            kind,
            verdict: verdict.clone(),
            mode,
            commands,
        });
        if matches!(verdict, Verdict::Rewrite(_)) {
            self.begin_rewrite(out);
        }
        verdict
    }

    /// [`KeyPlanner::key_start`] of a key the caller borrows (a [`rdb_parser::Visitor`]'s
    /// [`KeyRef`]): its name is copied into the planner's arena, not into an allocation
    /// of its own.
    pub fn key_start_ref(&mut self, k: &KeyRef<'_>, out: &mut impl FnMut(Cmd)) -> Verdict {
        self.arena.clear();
        self.arena.extend_from_slice(k.key);
        let key = self.arena.split().freeze();
        let start = KeyStart {
            db: k.db,
            key,
            type_byte: k.type_byte,
            rdb_type: k.rdb_type,
            expire_at_ms: k.expire_at_ms,
            lru_idle: k.lru_idle,
            lfu_freq: k.lfu_freq,
            meta: k.meta.to_vec(),
            module: k.module.cloned(),
            min_field_expire_ms: k.min_field_expire_ms,
            record_offset: k.record_offset,
        };
        self.key_start(start, out)
    }

    /// Gives back the argument vector of a command the caller is done with (after it was
    /// written): the planner reuses it for a later command instead of allocating one.
    pub fn recycle(&mut self, mut args: Vec<Bytes>) {
        if self.spare_args.len() < SPARE_ARGS && args.capacity() >= RESTORE_ARGS {
            args.clear();
            self.spare_args.push(args);
        }
    }

    /// An argument vector for a command (a recycled one when there is one).
    fn args(&mut self) -> Vec<Bytes> {
        self.spare_args
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(RESTORE_ARGS))
    }

    /// A number as an argument, carved from the arena.
    fn number(&mut self, n: i128) -> Bytes {
        let mut digits = [0u8; 40];
        let text = decimal(n, &mut digits);
        self.arena.extend_from_slice(text);
        self.arena.split().freeze()
    }

    /// [`KeyPlanner::key_end`] of a key bound for a single `RESTORE` (no `PEXPIREAT` after
    /// it: a key without a TTL, or a target with `ABSTTL`), lent instead of emitted: the
    /// same command as `key_end` emits, as a [`RestoreCmd`] borrowing the key and the raw
    /// value from the planner's arena (no `Bytes` per argument, the footer made as it is
    /// written). `write` answers whether it took the command. `None`: nothing was done
    /// (another kind of key, or `write` answered `false`): end the key with `key_end`.
    pub fn key_end_restore(
        &mut self,
        write: impl FnOnce(&RestoreCmd<'_>) -> bool,
    ) -> Option<KeyPlan> {
        let c = self.cur.as_ref()?;
        if !matches!(c.mode, Mode::Buffer { .. })
            || c.verdict != Verdict::Restore
            || (c.start.expire_at_ms.is_some() && !self.opts.target.has_restore_absttl())
        {
            return None;
        }
        let s = &c.start;
        let cmd = restore_cmd(
            &self.opts,
            s.db,
            &s.key,
            s.expire_at_ms,
            (s.lru_idle, s.lfu_freq),
            [&self.arena, &[]],
        );
        if !write(&cmd) {
            return None;
        }
        self.arena.clear();
        let c = self.cur.take()?;
        self.commands += 1;
        Some(KeyPlan {
            db: c.start.db,
            key: c.start.key,
            kind: c.kind,
            type_byte: c.start.type_byte,
            verdict: c.verdict,
            commands: c.commands + 1,
            losses: Vec::new(),
            expired_fields: 0,
        })
    }

    /// A key whose whole serialized value is at hand, planned in one call (for a
    /// [`rdb_parser::Visitor::whole_key`]: `value` is the raw value after the type byte).
    ///
    /// The common key is bound for one `RESTORE` and nothing else: `write` is lent that
    /// command ([`RestoreCmd`], borrowing the key and `value`: nothing is copied or
    /// allocated here) and answers whether it took it ([`WholeKey::Restored`]). A key
    /// skipped without a command is decided too ([`WholeKey::Skipped`]: filtered,
    /// reserved, or expired without an `UNLINK`). Anything else is
    /// [`WholeKey::Declined`], with nothing done: a key to write as commands, a big key, a
    /// module value, a type byte still to probe, a TTL that needs `PEXPIREAT` after the
    /// `RESTORE`, an expired key's `UNLINK`, or `write` answered `false`. Feed that key
    /// as usual, from [`KeyPlanner::key_start_ref`]; it is decided the same way.
    ///
    /// ```
    /// use std::ops::ControlFlow;
    ///
    /// use bytes::BytesMut;
    /// use migrate_core::plan::{KeyPlanner, PlanOptions, WholeKey};
    /// use migrate_core::{ServerFamily, ServerVersion};
    /// use rdb_parser::{visit_all, KeyRef, Options, Visitor};
    ///
    /// /// Writes each key it can as one `RESTORE` (RESP) into `out`.
    /// struct Copy {
    ///     planner: KeyPlanner,
    ///     out: BytesMut,
    ///     restored: usize,
    /// }
    ///
    /// impl Visitor for Copy {
    ///     fn whole_key(&mut self, key: &KeyRef<'_>, value: &[u8], _: u64) -> Option<ControlFlow<()>> {
    ///         let out = &mut self.out;
    ///         match self.planner.whole_key(key, value, |cmd| {
    ///             cmd.encode(out);
    ///             true
    ///         }) {
    ///             WholeKey::Restored { .. } => self.restored += 1,
    ///             WholeKey::Skipped { .. } => {}
    ///             // A real tool feeds this key with `key_start_ref`, `raw`, `key_end`.
    ///             _ => return None,
    ///         }
    ///         Some(ControlFlow::Continue(()))
    ///     }
    /// }
    ///
    /// let target = ServerVersion::new(ServerFamily::Redis, 7, 2, 0);
    /// let planner = KeyPlanner::new(PlanOptions::new(target), 1_700_000_000_000);
    /// let mut copy = Copy { planner, out: BytesMut::new(), restored: 0 };
    /// // An RDB 3 file with one string key "k" = "v".
    /// let file = b"REDIS0003\xfe\x00\x00\x01k\x01v\xff";
    /// visit_all(file, Options::default().raw_values(true), &mut copy)?;
    /// assert_eq!(copy.restored, 1);
    /// // The payload: type byte, value, the target's RDB version (11), CRC-64.
    /// assert!(copy.out.starts_with(b"*4\r\n$7\r\nRESTORE\r\n$1\r\nk\r\n$1\r\n0\r\n$13\r\n\x00\x01v\x0b\x00"));
    /// # Ok::<(), rdb_parser::Error>(())
    /// ```
    pub fn whole_key(
        &mut self,
        k: &KeyRef<'_>,
        value: &[u8],
        write: impl FnOnce(&RestoreCmd<'_>) -> bool,
    ) -> WholeKey {
        let kind = k.kind();
        if kind == ValueKind::Module || k.module.is_some() {
            return WholeKey::Declined;
        }
        let (verdict, db, key) =
            self.decide_ref(k.db, k.key, k.type_byte, kind, k.expire_at_ms, k.module);
        let opts = &self.opts;
        match verdict {
            Verdict::Restore => {}
            Verdict::Skip(
                reason @ (SkipReason::Filtered | SkipReason::Reserved | SkipReason::Expired { .. }),
            ) if !(matches!(reason, SkipReason::Expired { .. })
                && opts.conflict == Conflict::Replace) =>
            {
                return WholeKey::Skipped { kind, reason };
            }
            _ => return WholeKey::Declined,
        }
        let len = 1 + value.len();
        let forced = opts.mode != WriteMode::Auto;
        if (!forced && len > opts.big_key_bytes)
            || (len + FOOTER) as u64 > opts.max_bulk_len
            || (k.expire_at_ms.is_some() && !opts.target.has_restore_absttl())
            || (opts.probe && !self.probed.contains_key(&k.type_byte))
        {
            return WholeKey::Declined;
        }
        let cmd = restore_cmd(
            opts,
            db,
            &key,
            k.expire_at_ms,
            (k.lru_idle, k.lfu_freq),
            [std::slice::from_ref(&k.type_byte), value],
        );
        if !write(&cmd) {
            return WholeKey::Declined;
        }
        self.commands += 1;
        WholeKey::Restored { db, kind }
    }

    /// The end of a key kept for `RESTORE`: its payload (the raw value in the arena, with
    /// the footer for the target) and its commands, by the rules of
    /// [`crate::rewrite::restore_payload_commands`] (`ABSTTL` where the target has it,
    /// else a `PEXPIREAT` after; `REPLACE`; `IDLETIME`/`FREQ`). Returns the commands
    /// emitted.
    fn restore(&mut self, start: &KeyStart, out: &mut impl FnMut(Cmd)) -> u64 {
        let version = self.opts.target.rdb_version();
        self.arena.extend_from_slice(&version.to_le_bytes());
        let crc = rdb_parser::dump::crc64(&self.arena);
        self.arena.extend_from_slice(&crc.to_le_bytes());
        let payload = self.arena.split().freeze();
        let target = self.opts.target;
        let absttl = target.has_restore_absttl();
        let ttl = match start.expire_at_ms {
            Some(at) if absttl => self.number(at.into()),
            _ => Bytes::from_static(b"0"),
        };
        let mut args = self.args();
        args.extend([
            Bytes::from_static(b"RESTORE"),
            start.key.clone(),
            ttl,
            payload,
        ]);
        if absttl && start.expire_at_ms.is_some() {
            args.push(Bytes::from_static(b"ABSTTL"));
        }
        if self.opts.conflict == Conflict::Replace {
            args.push(Bytes::from_static(b"REPLACE"));
        }
        if target.has_restore_idletime_freq() {
            if let Some(idle) = start.lru_idle {
                args.push(Bytes::from_static(b"IDLETIME"));
                args.push(self.number(idle.into()));
            } else if let Some(freq) = start.lfu_freq {
                args.push(Bytes::from_static(b"FREQ"));
                args.push(self.number(freq.into()));
            }
        }
        let scope = Scope::Key {
            db: start.db,
            key: start.key.clone(),
        };
        match (start.expire_at_ms, absttl) {
            (Some(at), false) => {
                out(Cmd::new(scope.clone(), args));
                let mut args = self.args();
                args.extend([
                    Bytes::from_static(b"PEXPIREAT"),
                    start.key.clone(),
                    self.number(at.into()),
                ]);
                out(Cmd::new(scope, args));
                2
            }
            _ => {
                out(Cmd::new(scope, args));
                1
            }
        }
    }

    fn decide(&mut self, k: &mut KeyStart) -> Verdict {
        let (verdict, db, renamed) = {
            let (verdict, db, key) = self.decide_ref(
                k.db,
                &k.key,
                k.type_byte,
                k.kind(),
                k.expire_at_ms,
                k.module.as_ref(),
            );
            let renamed = match key {
                std::borrow::Cow::Owned(renamed) => Some(Bytes::from(renamed)),
                std::borrow::Cow::Borrowed(_) => None,
            };
            (verdict, db, renamed)
        };
        k.db = db;
        if let Some(renamed) = renamed {
            k.key = renamed;
        }
        verdict
    }

    /// The decision for a key by its header: the verdict, and the key's db and name on the
    /// target (owned when the filter renamed it; as given when it is skipped).
    fn decide_ref<'k>(
        &self,
        db: u32,
        key: &'k [u8],
        type_byte: u8,
        kind: ValueKind,
        expire_at_ms: Option<i64>,
        module_type: Option<&rdb_parser::ModuleType>,
    ) -> (Verdict, u32, std::borrow::Cow<'k, [u8]>) {
        let as_given = std::borrow::Cow::Borrowed(key);
        // A source that is itself a migration's target holds its checkpoint: never copied.
        if key.starts_with(crate::migrate::RESERVED_PREFIX) {
            return (Verdict::Skip(SkipReason::Reserved), db, as_given);
        }
        let Some((db, key)) = self.opts.filter.map_key(db, key) else {
            return (Verdict::Skip(SkipReason::Filtered), db, as_given);
        };
        let verdict = self.decide_kept(type_byte, kind, expire_at_ms, module_type);
        (verdict, db, key)
    }

    /// The decision for a key the filter keeps.
    fn decide_kept(
        &self,
        type_byte: u8,
        kind: ValueKind,
        expire_at_ms: Option<i64>,
        module_type: Option<&rdb_parser::ModuleType>,
    ) -> Verdict {
        if let Some(at) = expire_at_ms.filter(|&at| at <= self.now_ms()) {
            return Verdict::Skip(SkipReason::Expired { expire_at_ms: at });
        }
        let module = kind == ValueKind::Module;
        if let (true, Some(loaded), Some(t)) = (module, &self.opts.target_modules, module_type) {
            match crate::provides_type(loaded, &t.name) {
                Some(false) => {
                    return Verdict::Unsupported(UnsupportedReason::ModuleNotLoaded {
                        module: crate::module_for_type(&t.name)
                            .unwrap_or_default()
                            .to_string(),
                        type_name: t.name.clone(),
                    })
                }
                None if loaded.is_empty() => {
                    return Verdict::Unsupported(UnsupportedReason::NoModules {
                        type_name: t.name.clone(),
                    })
                }
                _ => {}
            }
        }
        let t = type_byte;
        let v = self.opts.target;
        match self.opts.mode {
            WriteMode::Rewrite if module && self.opts.restore_modules => Verdict::Restore,
            WriteMode::Rewrite if module => {
                Verdict::Unsupported(UnsupportedReason::ModuleNeedsRestore {
                    type_name: module_type.map(|m| m.name.clone()),
                })
            }
            WriteMode::Rewrite => Verdict::Rewrite(RewriteReason::Mode),
            mode => match self.accepts(t) {
                Ok(()) => Verdict::Restore,
                Err(_) if module || mode == WriteMode::Restore => {
                    Verdict::Unsupported(UnsupportedReason::NoRestore {
                        type_byte: t,
                        target: v,
                    })
                }
                Err(reason) => Verdict::Rewrite(reason),
            },
        }
    }

    /// Whether the target restores type byte `t`.
    fn accepts(&self, t: u8) -> Result<(), RewriteReason> {
        if self.opts.probe {
            // Learned from the target itself (optimistic until the first key is tried).
            return match self.probed.get(&t) {
                Some(false) => Err(RewriteReason::Refused { type_byte: t }),
                _ => Ok(()),
            };
        }
        let v = self.opts.target;
        // Type bytes from 22 up mean different things in the two families.
        let same_table = t < 22 || (self.source.0 == Family::Valkey) == v.is_valkey();
        if same_table && v.knows_type(t) {
            Ok(())
        } else {
            Err(RewriteReason::UnknownType { type_byte: t })
        }
    }

    fn now_ms(&self) -> i64 {
        self.rewriter.now_ms()
    }

    /// Under [`Conflict::Skip`], the key that waits for [`KeyPlanner::resolve_exists`]
    /// before its commands: its target db and name.
    pub fn awaiting_exists(&self) -> Option<(u32, &Bytes)> {
        match self.cur.as_ref() {
            Some(c) if matches!(c.mode, Mode::AwaitExists { .. }) => {
                Some((c.start.db, &c.start.key))
            }
            _ => None,
        }
    }

    /// The answer to [`KeyPlanner::awaiting_exists`]: an existing key is skipped
    /// ([`SkipReason::Exists`]), else its commands start.
    pub fn resolve_exists(&mut self, exists: bool, out: &mut impl FnMut(Cmd)) {
        let Some(c) = self.cur.as_mut() else {
            return;
        };
        if !matches!(c.mode, Mode::AwaitExists { .. }) {
            return;
        }
        if exists {
            c.mode = Mode::Skip;
            c.verdict = Verdict::Skip(SkipReason::Exists);
            return;
        }
        let Mode::AwaitExists { events } = std::mem::replace(&mut c.mode, Mode::Rewrite) else {
            return;
        };
        // The rewriter starts the key with its first value event (a key handed to a
        // DirectKey never starts there).
        self.rw_started = false;
        if events.is_empty() {
            return;
        }
        self.rewriter.start_key(&c.start);
        self.rw_started = true;
        let mut n = 0;
        let mut emit = |cmd: Cmd| {
            n += 1;
            out(cmd)
        };
        for ev in &events {
            self.rewriter.push(ev, &mut emit);
        }
        self.commands += n;
    }

    /// Switches the current key to commands (its verdict already says why): waits for
    /// [`KeyPlanner::resolve_exists`] under [`Conflict::Skip`], else starts right away.
    fn begin_rewrite(&mut self, out: &mut impl FnMut(Cmd)) {
        let Some(c) = self.cur.as_mut() else {
            return;
        };
        let events = match std::mem::replace(&mut c.mode, Mode::Skip) {
            Mode::Buffer {
                events,
                events_missing,
            } => {
                let decoded = events_missing.then(|| self.decode_raw(&self.arena));
                self.arena.clear();
                match decoded {
                    None => events,
                    Some(Ok(evs)) => evs,
                    Some(Err(reason)) => {
                        let c = self.cur.as_mut().expect("in a key");
                        c.verdict = Verdict::Unsupported(reason);
                        return;
                    }
                }
            }
            Mode::AwaitExists { events } => events,
            Mode::Skip | Mode::Rewrite | Mode::Direct => Vec::new(),
        };
        let c = self.cur.as_mut().expect("in a key");
        c.mode = Mode::AwaitExists { events };
        if self.opts.conflict != Conflict::Skip {
            self.resolve_exists(false, out);
        }
    }

    /// The value events of the kept raw bytes (a complete value), for a rewrite.
    fn decode_raw(&self, raw: &[u8]) -> Result<Vec<Event>, UnsupportedReason> {
        let (family, version) = self.source;
        let evs =
            rdb_parser::dump::decode_value(raw, family, version, rdb_parser::Options::default())
                .map_err(|e| UnsupportedReason::Corrupt(e.to_string()))?;
        Ok(evs
            .into_iter()
            .filter(|e| !matches!(e, Event::KeyStart(_) | Event::KeyEnd | Event::RawValue(_)))
            .collect())
    }

    /// Makes room for `n` more raw bytes of the current key (and the payload's footer), when
    /// the caller knows the value's size ahead.
    pub fn reserve_raw(&mut self, n: usize) {
        if let Some(Current {
            mode: Mode::Buffer { .. },
            ..
        }) = self.cur.as_ref()
        {
            self.arena.reserve(n + FOOTER);
        }
    }

    /// A piece of the current key's raw serialized value (type byte first). Returns the new
    /// verdict when the key changes course: [`RewriteReason::BigKey`], or
    /// [`UnsupportedReason::PayloadTooBig`] for a key that can only be restored.
    pub fn raw(&mut self, chunk: &[u8], out: &mut impl FnMut(Cmd)) -> Option<Verdict> {
        let c = self.cur.as_mut()?;
        let Mode::Buffer { .. } = &mut c.mode else {
            return None;
        };
        self.arena.extend_from_slice(chunk);
        let len = self.arena.len();
        let forced = self.opts.mode != WriteMode::Auto || c.kind == ValueKind::Module;
        if len > self.opts.big_key_bytes && !forced {
            c.verdict = Verdict::Rewrite(RewriteReason::BigKey { bytes: len });
            self.begin_rewrite(out);
            return self.cur.as_ref().map(|c| c.verdict.clone());
        }
        if forced && (len + FOOTER) as u64 > self.opts.max_bulk_len {
            c.mode = Mode::Skip;
            self.arena.clear();
            c.verdict = Verdict::Unsupported(UnsupportedReason::PayloadTooBig {
                limit: self.opts.max_bulk_len,
            });
            return Some(c.verdict.clone());
        }
        None
    }

    /// A decoded value event of the current key (kept, rewritten, or ignored as the key's
    /// course says). Events outside a key are ignored.
    #[inline]
    pub fn value(&mut self, ev: Event, out: &mut impl FnMut(Cmd)) {
        let Some(c) = self.cur.as_mut() else {
            return;
        };
        if let Mode::Rewrite = c.mode {
            return self.rewrite_value(&ev, out);
        }
        match &mut c.mode {
            Mode::Skip => {}
            Mode::Buffer {
                events,
                events_missing,
                ..
            } => {
                if !*events_missing {
                    events.push(ev);
                }
            }
            Mode::AwaitExists { events } => events.push(ev),
            Mode::Rewrite | Mode::Direct => {}
        }
    }

    /// The fast way to RESP: for the current key, when it is being written as commands,
    /// nothing was written for its value yet, and [`DirectKey`] handles its kind (strings,
    /// lists, sets, sorted sets, hashes without field TTLs, and streams on a target with
    /// streams), hands the key over to a [`DirectKey`], which writes the same commands as
    /// RESP straight from borrowed items. Feed it the value (a stream's through
    /// [`DirectKey::stream_entry`] and [`DirectKey::stream_event`]), then give its
    /// [`DirectKey::finish`] to [`KeyPlanner::direct_done`] (instead of
    /// [`KeyPlanner::key_end`]). `None`: go on with events.
    ///
    /// Whether the target could `RESTORE` the value does not matter here: a key written as
    /// commands is written so by choice ([`WriteMode::Rewrite`]) or because it cannot be
    /// restored (e.g. a stream of RDB 11 and later, type 21, for a 6.2 target), and the
    /// commands follow the target's version either way.
    pub fn direct(&mut self) -> Option<DirectKey> {
        let c = self.cur.as_mut()?;
        if !matches!(c.mode, Mode::Rewrite)
            || !crate::rewrite::direct::handles(&c.start)
            || (self.rw_started && self.rewriter.key_commands() != Some(0))
        {
            return None;
        }
        // `None`: a stream for a target without streams (the rewriter reports it).
        let key = DirectKey::new(
            &c.start,
            self.opts.target,
            self.rewriter.options(),
            self.rewriter.now_ms(),
            &mut self.spare,
        )?;
        if self.rw_started {
            self.rewriter.abandon_key();
            self.rw_started = false;
        }
        c.mode = Mode::Direct;
        Some(key)
    }

    /// The end of a key handed to a [`DirectKey`] ([`KeyPlanner::direct`]): its plan.
    pub fn direct_done(&mut self, done: DirectDone) -> Option<KeyPlan> {
        self.spare = done.spare;
        let c = self.cur.take()?;
        self.commands += done.commands;
        let verdict = if done.empty {
            Verdict::Skip(SkipReason::Empty)
        } else {
            c.verdict
        };
        Some(KeyPlan {
            db: c.start.db,
            key: c.start.key,
            kind: c.kind,
            type_byte: c.start.type_byte,
            verdict,
            commands: c.commands + done.commands,
            losses: done.losses,
            expired_fields: 0,
        })
    }

    /// Starts the current key in the rewriter, if not yet.
    fn start_rewriter(&mut self) {
        if !self.rw_started {
            if let Some(c) = &self.cur {
                self.rewriter.start_key(&c.start);
                self.rw_started = true;
            }
        }
    }

    /// A value event of a key being written as commands.
    fn rewrite_value(&mut self, ev: &Event, out: &mut impl FnMut(Cmd)) {
        self.start_rewriter();
        let mut n = 0;
        self.rewriter.push(ev, &mut |cmd| {
            n += 1;
            out(cmd)
        });
        self.commands += n;
    }

    /// With [`PlanOptions::probe`]: the type byte of the current key when it is the first
    /// of its type byte and bound for `RESTORE`, at its end. The caller tries
    /// [`KeyPlanner::probe_payload`] on a scratch key, then calls
    /// [`KeyPlanner::set_accepted`], before [`KeyPlanner::key_end`].
    pub fn needs_probe(&self) -> Option<u8> {
        let c = self.cur.as_ref()?;
        (self.opts.probe
            && matches!(c.mode, Mode::Buffer { .. })
            && c.kind != ValueKind::Module
            && !self.probed.contains_key(&c.start.type_byte))
        .then_some(c.start.type_byte)
    }

    /// The current key's `RESTORE` payload as it would be sent (for a probe).
    pub fn probe_payload(&self) -> Option<Vec<u8>> {
        match self.cur.as_ref().map(|c| &c.mode) {
            Some(Mode::Buffer { .. }) => Some(rdb_parser::dump::build_payload(
                &self.arena,
                self.opts.target.rdb_version(),
            )),
            _ => None,
        }
    }

    /// Records whether the target restores `type_byte`; a refused type byte turns the
    /// current key (if it is of that type and bound for `RESTORE`) into commands.
    pub fn set_accepted(&mut self, type_byte: u8, accepted: bool, out: &mut impl FnMut(Cmd)) {
        self.probed.insert(type_byte, accepted);
        let Some(c) = self.cur.as_mut() else {
            return;
        };
        if accepted || c.start.type_byte != type_byte || !matches!(c.mode, Mode::Buffer { .. }) {
            return;
        }
        c.verdict = Verdict::Rewrite(RewriteReason::Refused { type_byte });
        self.begin_rewrite(out);
    }

    /// The current key ends: emits its `RESTORE` (or its last commands) and returns its
    /// plan. `None` outside a key.
    pub fn key_end(&mut self, out: &mut impl FnMut(Cmd)) -> Option<KeyPlan> {
        let c = self.cur.take()?;
        let mut plan = KeyPlan {
            db: c.start.db,
            // Moved in at the end (no reference count per key for it).
            key: Bytes::new(),
            kind: c.kind,
            type_byte: c.start.type_byte,
            verdict: c.verdict,
            commands: c.commands,
            losses: Vec::new(),
            expired_fields: 0,
        };
        match c.mode {
            Mode::Skip => {}
            Mode::Buffer { .. } => {
                let n = self.restore(&c.start, out);
                plan.commands += n;
                self.commands += n;
            }
            Mode::AwaitExists { .. } => {
                // Never resolved: nothing was written.
                plan.verdict = Verdict::Skip(SkipReason::Exists);
            }
            // Written by the caller's DirectKey (its counts are in `direct_done`).
            Mode::Direct => {}
            Mode::Rewrite => {
                // `cur` is taken: start the key here if no value event did.
                if !self.rw_started {
                    self.rewriter.start_key(&c.start);
                }
                self.rw_started = false;
                let mut n = 0;
                let done = self.rewriter.push(&Event::KeyEnd, &mut |cmd| {
                    n += 1;
                    out(cmd)
                });
                self.commands += n;
                if let Some(Done::Key(r)) = done {
                    plan.commands += r.commands;
                    plan.losses = r.losses;
                    plan.expired_fields = r.expired_fields;
                    match r.status {
                        KeyStatus::Written => {}
                        KeyStatus::Expired { expire_at_ms } => {
                            plan.verdict = Verdict::Skip(SkipReason::Expired { expire_at_ms })
                        }
                        KeyStatus::Empty => plan.verdict = Verdict::Skip(SkipReason::Empty),
                        KeyStatus::NeedsRestore { module } => {
                            plan.verdict =
                                Verdict::Unsupported(UnsupportedReason::ModuleNeedsRestore {
                                    type_name: module,
                                })
                        }
                        status => {
                            plan.verdict = Verdict::Unsupported(UnsupportedReason::Rewrite(status))
                        }
                    }
                }
            }
        }
        plan.key = c.start.key;
        Some(plan)
    }

    /// A function library ([`Event::Function`]; other events are ignored): emits its
    /// `FUNCTION LOAD` unless the target keeps its own or has no functions.
    pub fn function(&mut self, ev: &Event, out: &mut impl FnMut(Cmd)) -> Option<FunctionPlan> {
        if !matches!(ev, Event::Function(_)) {
            return None;
        }
        let mut cmds = Vec::new();
        let Some(Done::Function(report)) = self.rewriter.push(ev, &mut |c| cmds.push(c)) else {
            return None;
        };
        if let (Some(name), Some(existing)) = (&report.name, &self.opts.existing_functions) {
            if existing.contains(name) {
                return Some(FunctionPlan::Kept { name: name.clone() });
            }
        }
        if report.status == FunctionStatus::Unsupported {
            return Some(FunctionPlan::Unsupported { name: report.name });
        }
        for c in cmds {
            self.commands += 1;
            out(c);
        }
        Some(FunctionPlan::Load { name: report.name })
    }
}

#[cfg(test)]
mod tests;
