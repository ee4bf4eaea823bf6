//! Value → commands: turns decoded RDB events into the commands that recreate each key
//! exactly on a target of a given version.
//!
//! This is the write path for values a target cannot `RESTORE` (a type byte it does not
//! know, a downgrade), for RESP files (`redis-migrate rdb dump --format resp`) and for users
//! who want plain commands. It is sans-IO: [`Rewriter::push`] takes one
//! [`rdb_parser::Event`] and hands out [`Cmd`]s through a callback; time ("now", to skip
//! keys that already expired) is an input. Memory stays bounded by the options: big values
//! are written in chunks of at most [`RewriteOptions::max_command_args`] arguments /
//! [`RewriteOptions::max_command_bytes`] bytes.
//!
//! ```
//! use migrate_core::rewrite::{Done, RewriteOptions, Rewriter};
//! use migrate_core::{ServerFamily, ServerVersion};
//!
//! // An RDB 3 file with one string key "k" = "v".
//! let events = rdb_parser::decode_all(b"REDIS0003\xfe\x00\x00\x01k\x01v\xff", Default::default())?;
//! let target = ServerVersion::new(ServerFamily::Redis, 6, 2, 0);
//! let now_ms = 1_700_000_000_000;
//! let mut rw = Rewriter::new(target, RewriteOptions::default(), now_ms);
//! let mut cmds = Vec::new();
//! for ev in &events {
//!     if let Some(Done::Key(report)) = rw.push(ev, &mut |c| cmds.push(c)) {
//!         assert_eq!(&report.key[..], b"k");
//!     }
//! }
//! assert_eq!(cmds.len(), 1);
//! assert_eq!(cmds[0].args, ["SET", "k", "v"]);
//! assert_eq!(cmds[0].db(), Some(0));
//! # Ok::<(), rdb_parser::Error>(())
//! ```
//!
//! # Commands per type
//! | value | commands |
//! |---|---|
//! | string | `SET key v` (`... PXAT ms` on 6.2+ when it has a TTL); a string longer than `max_command_bytes` as `SET` + `APPEND`s |
//! | list | `RPUSH key e...` chunks, in order |
//! | set | `SADD key m...` chunks |
//! | sorted set | `ZADD key score m...` chunks; scores bit-exact ([`format_score`]) |
//! | hash | `HSET key f v...` chunks (`HMSET` before 4.0); field TTLs as `HPEXPIREAT key ms FIELDS n f...` (7.4+, Valkey 9+) |
//! | stream | `XADD key id f v...` per entry, `XSETID key last [ENTRIESADDED n MAXDELETEDID id]`, `XGROUP CREATE key g id [ENTRIESREAD n] [MKSTREAM]`, `XGROUP CREATECONSUMER` (6.2+), `XCLAIM key g c 0 id... TIME ms RETRYCOUNT n FORCE JUSTID` |
//! | function library | `FUNCTION LOAD [REPLACE] code` (server-wide, 7.0+) |
//! | module value | none: [`KeyStatus::NeedsRestore`] |
//!
//! A key's TTL is written last, as `PEXPIREAT key ms` (absolute: no drift), after the whole
//! value. A key whose TTL is at or before "now" is skipped ([`KeyStatus::Expired`]); so is a
//! hash field whose TTL passed. With [`RewriteOptions::replace`], a key that a first chunk
//! would not overwrite is removed first (`UNLINK`, or `DEL` before 4.0), and so is a key that
//! is skipped as expired or empty (the target must not keep an older value of it). LRU idle
//! times and LFU counters are not recreated: no command sets them (`RESTORE` does).
//!
//! # Streams
//! Entries keep their ids; the stream's last id, entries-added counter and max deleted id
//! are set with `XSETID` (the last two only on 7.0+ targets, which are the only ones that
//! have them); consumer groups keep their last delivered id and (7.0+)
//! entries-read; consumers are created explicitly on 6.2+ (before 6.2 a consumer without
//! pending entries cannot be created: [`Loss::IdleConsumers`]); pending entries keep their
//! owner, delivery time and delivery count.
//!
//! A pending entry may refer to an entry that was deleted (`XDEL`) after delivery; `XCLAIM`
//! cannot recreate it, since the server ignores ids that are not in the stream. For streams
//! whose entries fit in [`RewriteOptions::stream_buffer_bytes`], the rewriter knows which
//! ids are missing and writes a placeholder entry for each, claims it, then deletes it
//! again, so the pending list is exact. Larger streams are written as they are decoded,
//! and such pending entries are lost ([`Loss::PendingUnverified`] says how many pending
//! entries could be affected). Consumer seen/active times cannot be set by any command:
//! they become the time of the load. Redis 8.6 idempotent-producer state is not
//! recreated ([`Loss::StreamIdmp`]).

mod chunk;
mod cmd;
pub mod direct;
mod function;
mod hash;
pub mod json;
mod list;
mod report;
pub(crate) mod restore;
mod set;
mod stream;
mod string;
mod zset;

use bytes::Bytes;
use rdb_parser::{Event, KeyStart, ValueKind};

use crate::ServerVersion;

pub use cmd::{Cmd, RespWriter, Scope};
pub use report::{Done, FunctionReport, FunctionStatus, KeyReport, KeyStatus, Loss, RewriteStats};
pub use restore::{restore_commands, restore_payload_commands};
pub use zset::format_score;

/// Limits and policies of the rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RewriteOptions {
    /// Most value arguments per command (elements, or fields and values; default 512). A
    /// collection with more is written in several commands.
    pub max_command_args: usize,
    /// A command is cut once its value arguments reach this many bytes (default 1 MiB); a
    /// string longer than this is written as `SET` of the first piece and `APPEND`s. One
    /// element larger than this is still one command: keep this below the target's
    /// `proto-max-bulk-len`.
    pub max_command_bytes: usize,
    /// Remove an existing key of the same name first (`UNLINK`/`DEL` before the first chunk;
    /// `SET` and `FUNCTION LOAD REPLACE` replace by themselves). Without it the target is
    /// assumed not to hold the key (default off).
    pub replace: bool,
    /// Streams whose entries total at most this many bytes are buffered whole so that pending
    /// entries of deleted entries can be recreated exactly (default 16 MiB; 0 never buffers).
    pub stream_buffer_bytes: usize,
}

impl Default for RewriteOptions {
    fn default() -> RewriteOptions {
        RewriteOptions {
            max_command_args: 512,
            max_command_bytes: 1024 * 1024,
            replace: false,
            stream_buffer_bytes: 16 * 1024 * 1024,
        }
    }
}

impl RewriteOptions {
    /// Sets [`RewriteOptions::max_command_args`] (at least 2, one field and its value).
    pub fn max_command_args(mut self, n: usize) -> RewriteOptions {
        self.max_command_args = n.max(2);
        self
    }

    /// Sets [`RewriteOptions::max_command_bytes`] (at least 1).
    pub fn max_command_bytes(mut self, n: usize) -> RewriteOptions {
        self.max_command_bytes = n.max(1);
        self
    }

    /// Sets [`RewriteOptions::replace`].
    pub fn replace(mut self, on: bool) -> RewriteOptions {
        self.replace = on;
        self
    }

    /// Sets [`RewriteOptions::stream_buffer_bytes`].
    pub fn stream_buffer_bytes(mut self, n: usize) -> RewriteOptions {
        self.stream_buffer_bytes = n;
        self
    }
}

/// What the type writers need from the rewriter.
#[derive(Debug, Clone)]
pub(crate) struct Env {
    pub(crate) target: ServerVersion,
    pub(crate) opts: RewriteOptions,
    pub(crate) now_ms: i64,
}

impl Env {
    pub(crate) fn at_least(&self, major: u16, minor: u16) -> bool {
        (self.target.major, self.target.minor) >= (major, minor)
    }
}

/// The key being written: its identity, what was sent, and what was lost.
#[derive(Debug)]
pub(crate) struct KeyCtx {
    pub(crate) db: u32,
    pub(crate) key: Bytes,
    pub(crate) expire_at_ms: Option<i64>,
    pub(crate) commands: u64,
    /// An `UNLINK` is still owed before the first non-overwriting command.
    pub(crate) need_clear: bool,
    /// The TTL was already set (by `SET ... PXAT`).
    pub(crate) ttl_written: bool,
    pub(crate) losses: Vec<Loss>,
    pub(crate) expired_fields: u64,
}

/// The command sink as the type writers see it.
pub(crate) type Out<'a> = &'a mut dyn FnMut(Cmd);

impl KeyCtx {
    fn scope(&self) -> Scope {
        Scope::Key {
            db: self.db,
            key: self.key.clone(),
        }
    }

    /// Emits a command that adds to the key (after removing an existing key when owed).
    pub(crate) fn emit(&mut self, env: &Env, out: Out<'_>, args: Vec<Bytes>) {
        if self.need_clear {
            self.need_clear = false;
            let name: &'static [u8] = if env.at_least(4, 0) {
                b"UNLINK"
            } else {
                b"DEL"
            };
            out(Cmd::new(
                self.scope(),
                vec![Bytes::from_static(name), self.key.clone()],
            ));
            self.commands += 1;
        }
        out(Cmd::new(self.scope(), args));
        self.commands += 1;
    }

    /// Emits a command that replaces the whole key by itself (`SET`).
    pub(crate) fn emit_overwrite(&mut self, out: Out<'_>, args: Vec<Bytes>) {
        self.need_clear = false;
        out(Cmd::new(self.scope(), args));
        self.commands += 1;
    }

    /// Adds to a loss of the same kind, or records it.
    pub(crate) fn lose(&mut self, loss: Loss) {
        for l in &mut self.losses {
            if l.merge(&loss) {
                return;
            }
        }
        self.losses.push(loss);
    }
}

/// Per-type state of the value being written.
#[derive(Debug)]
enum Value {
    String(string::StringWriter),
    List(list::ListWriter),
    Set(set::SetWriter),
    ZSet(zset::ZSetWriter),
    Hash(hash::HashWriter),
    Stream(Box<stream::StreamWriter>),
    /// Nothing is written for this key (expired, module, unsupported): events are ignored.
    Skip(KeyStatus),
}

#[derive(Debug)]
struct KeyState {
    ctx: KeyCtx,
    kind: ValueKind,
    value: Value,
}

/// The rewriter: feed it decoded events in order, take commands.
///
/// See the [module documentation](self) for the commands per type.
#[derive(Debug)]
pub struct Rewriter {
    env: Env,
    key: Option<KeyState>,
    stats: RewriteStats,
}

impl Rewriter {
    /// A rewriter for a target of version `target`; `now_ms` (Unix ms) decides which keys
    /// and hash fields already expired.
    pub fn new(target: ServerVersion, opts: RewriteOptions, now_ms: i64) -> Rewriter {
        Rewriter {
            env: Env {
                target,
                opts,
                now_ms,
            },
            key: None,
            stats: RewriteStats::default(),
        }
    }

    /// The target version.
    pub fn target(&self) -> ServerVersion {
        self.env.target
    }

    /// The options.
    pub fn options(&self) -> &RewriteOptions {
        &self.env.opts
    }

    /// Updates "now" (a long load should advance it as time passes).
    pub fn set_now_ms(&mut self, now_ms: i64) {
        self.env.now_ms = now_ms;
    }

    /// "Now" (Unix ms), as last set.
    pub fn now_ms(&self) -> i64 {
        self.env.now_ms
    }

    /// Counts so far.
    pub fn stats(&self) -> &RewriteStats {
        &self.stats
    }

    /// `true` while inside a key (between `KeyStart` and `KeyEnd`).
    pub fn in_key(&self) -> bool {
        self.key.is_some()
    }

    /// Whether a key of this kind can be written as commands to the target: `Err` with the
    /// status it would get otherwise ([`KeyStatus::NeedsRestore`] for module values,
    /// [`KeyStatus::Unsupported`] for a stream on a target older than 5.0).
    pub fn check(&self, start: &KeyStart) -> Result<(), KeyStatus> {
        match start.kind() {
            ValueKind::Module => Err(KeyStatus::NeedsRestore {
                module: start.module.as_ref().map(|m| m.name.clone()),
            }),
            ValueKind::Stream if !self.env.at_least(5, 0) => Err(KeyStatus::Unsupported {
                reason: "streams need Redis 5.0+",
            }),
            _ => Ok(()),
        }
    }

    /// Takes one event; emits the commands it completes through `out` and returns an
    /// [`Done`] when a key (at its `KeyEnd`) or a function library is done.
    ///
    /// Events must come in decoder order. Value events outside a key, and global events that
    /// need no command (`Aux`, `ResizeDb`, ...), are ignored. Events decoded from a DUMP
    /// payload (`rdb_parser::dump::decode`) have an empty key and no expiry: fill in
    /// [`KeyStart::key`], [`KeyStart::db`] and [`KeyStart::expire_at_ms`] before pushing the
    /// `KeyStart`.
    pub fn push(&mut self, ev: &Event, out: &mut impl FnMut(Cmd)) -> Option<Done> {
        self.push_dyn(ev, out)
    }

    fn push_dyn(&mut self, ev: &Event, out: Out<'_>) -> Option<Done> {
        let env = &self.env;
        match ev {
            Event::KeyStart(start) => {
                // A KeyStart without the previous KeyEnd (cannot come from the decoder):
                // finish the previous key as it is.
                let prev = self.key.is_some().then(|| self.finish_key(out)).flatten();
                self.start_key(start);
                prev
            }
            Event::KeyEnd => self.finish_key(out),
            Event::Function(f) => {
                let report = function::load(env, f, out);
                self.stats.count_function(&report);
                Some(Done::Function(report))
            }
            _ => {
                let k = self.key.as_mut()?;
                let ctx = &mut k.ctx;
                match (&mut k.value, ev) {
                    (Value::Skip(_), _) => {}
                    (Value::String(w), Event::String(s)) => w.push(env, ctx, out, s),
                    (Value::List(w), Event::ListItems(items)) => w.push(env, ctx, out, items),
                    (Value::Set(w), Event::SetMembers(items)) => w.push(env, ctx, out, items),
                    (Value::ZSet(w), Event::ZSetEntries(items)) => w.push(env, ctx, out, items),
                    (Value::Hash(w), Event::HashEntries(items)) => w.push(env, ctx, out, items),
                    (Value::Stream(w), ev) => w.push(env, ctx, out, ev),
                    _ => {}
                }
                None
            }
        }
    }

    /// Drops the current key without finishing it (its value is written elsewhere); `Some`
    /// with the commands it had emitted.
    pub(crate) fn abandon_key(&mut self) -> Option<u64> {
        self.key.take().map(|k| k.ctx.commands)
    }

    /// Commands emitted for the current key so far.
    pub(crate) fn key_commands(&self) -> Option<u64> {
        self.key.as_ref().map(|k| k.ctx.commands)
    }

    /// [`Rewriter::push`] of `Event::KeyStart(start)` without building the event (the
    /// previous key, if any, is dropped as it is: the planner always ends its keys).
    pub(crate) fn start_key(&mut self, start: &KeyStart) {
        let ctx = KeyCtx {
            db: start.db,
            key: start.key.clone(),
            expire_at_ms: start.expire_at_ms,
            commands: 0,
            need_clear: self.env.opts.replace,
            ttl_written: false,
            losses: Vec::new(),
            expired_fields: 0,
        };
        let kind = start.kind();
        let value = match (self.check(start), start.expire_at_ms) {
            (_, Some(at)) if at <= self.env.now_ms => {
                Value::Skip(KeyStatus::Expired { expire_at_ms: at })
            }
            (Err(status), _) => Value::Skip(status),
            (Ok(()), _) => match kind {
                ValueKind::String => Value::String(string::StringWriter::default()),
                ValueKind::List => Value::List(list::ListWriter::new(&start.key)),
                ValueKind::Set => Value::Set(set::SetWriter::new(&start.key)),
                ValueKind::ZSet => Value::ZSet(zset::ZSetWriter::new(&start.key)),
                ValueKind::Hash => Value::Hash(hash::HashWriter::new(&self.env, &start.key)),
                ValueKind::Stream => Value::Stream(Box::default()),
                // `check` refused the others.
                _ => Value::Skip(KeyStatus::Unsupported {
                    reason: "unknown value type",
                }),
            },
        };
        self.key = Some(KeyState { ctx, kind, value });
    }

    fn finish_key(&mut self, out: Out<'_>) -> Option<Done> {
        let KeyState {
            mut ctx,
            kind,
            value,
        } = self.key.take()?;
        let env = &self.env;
        let skipped = match value {
            Value::Skip(status) => Some(status),
            Value::String(w) => {
                w.finish(env, &mut ctx, out);
                None
            }
            Value::List(w) => {
                w.finish(env, &mut ctx, out);
                None
            }
            Value::Set(w) => {
                w.finish(env, &mut ctx, out);
                None
            }
            Value::ZSet(w) => {
                w.finish(env, &mut ctx, out);
                None
            }
            Value::Hash(w) => {
                w.finish(env, &mut ctx, out);
                None
            }
            Value::Stream(w) => {
                w.finish(env, &mut ctx, out);
                None
            }
        };
        let status = match skipped {
            Some(s) => {
                if matches!(s, KeyStatus::Expired { .. }) {
                    clear_absent(env, &mut ctx, out);
                }
                s
            }
            None if ctx.commands == 0 => {
                clear_absent(env, &mut ctx, out);
                KeyStatus::Empty
            }
            None => {
                if let (Some(at), false) = (ctx.expire_at_ms, ctx.ttl_written) {
                    let args = vec![
                        Bytes::from_static(b"PEXPIREAT"),
                        ctx.key.clone(),
                        Bytes::from(at.to_string()),
                    ];
                    ctx.emit(env, out, args);
                }
                KeyStatus::Written
            }
        };
        let report = KeyReport {
            db: ctx.db,
            key: ctx.key,
            kind,
            status,
            commands: ctx.commands,
            losses: ctx.losses,
            expired_fields: ctx.expired_fields,
        };
        self.stats.count_key(&report);
        Some(Done::Key(report))
    }
}

/// With [`RewriteOptions::replace`], a key that does not exist in the source any more (expired,
/// or nothing left to write) must not survive on the target either: `UNLINK` it.
fn clear_absent(env: &Env, ctx: &mut KeyCtx, out: Out<'_>) {
    if ctx.need_clear {
        ctx.need_clear = false;
        let name: &'static [u8] = if env.at_least(4, 0) {
            b"UNLINK"
        } else {
            b"DEL"
        };
        out(Cmd::new(
            ctx.scope(),
            vec![Bytes::from_static(name), ctx.key.clone()],
        ));
        ctx.commands += 1;
    }
}

#[cfg(test)]
mod tests;
