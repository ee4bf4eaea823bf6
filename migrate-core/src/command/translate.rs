//! The incremental sync's command translation; the rules are documented on the public
//! [`crate::command`] module.

use bytes::Bytes;

use super::keys::{first_key_index, key_indexes};
use crate::{Filter, ServerVersion};

/// One command for the target, with the db it runs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetCommand {
    /// The target db (after mapping).
    pub db: u32,
    /// The arguments, command name first.
    pub args: Vec<Bytes>,
}

impl TargetCommand {
    /// The first key argument, for error reports (`None` for keyless commands).
    pub fn key(&self) -> Option<&Bytes> {
        first_key_index(&self.args).and_then(|i| self.args.get(i))
    }
}

/// Commands that must be applied together: one replicated command (possibly expanded to
/// several, then `atomic`), or a whole transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// The commands, in order.
    pub commands: Vec<TargetCommand>,
    /// Apply inside `MULTI`/`EXEC`.
    pub atomic: bool,
}

/// What became of one replicated command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Translated {
    /// Apply this one command: the common case (`SET`, `INCR`, `LPUSH`, `HSET`... forwarded
    /// as they came, or rewritten into one command), without a [`Unit`] around it.
    Forward(TargetCommand),
    /// Apply this unit: a transaction, or a command expanded to several.
    Apply(Unit),
    /// Consumed, nothing to apply (yet): protocol commands, `MULTI` and the commands
    /// buffered in a transaction, commands outside the filter.
    Nothing,
    /// The command cannot be reproduced on the target; the migration reports it (with the
    /// key) and stops or counts it, as configured.
    Unsupported {
        /// The command name.
        command: Bytes,
        /// Its first key, if any.
        key: Option<Bytes>,
        /// Why.
        reason: &'static str,
    },
}

impl Translated {
    /// The commands to apply, in order (none for [`Nothing`](Translated::Nothing) and
    /// [`Unsupported`](Translated::Unsupported)).
    pub fn commands(&self) -> &[TargetCommand] {
        match self {
            Translated::Forward(c) => std::slice::from_ref(c),
            Translated::Apply(unit) => &unit.commands,
            Translated::Nothing | Translated::Unsupported { .. } => &[],
        }
    }

    /// Whether the commands must be applied inside `MULTI`/`EXEC`.
    pub fn is_atomic(&self) -> bool {
        matches!(self, Translated::Apply(unit) if unit.atomic)
    }
}

/// What [`Translator::command`] makes of one command: nothing, one command (no `Vec`), or
/// a unit.
enum Out {
    Empty,
    One(TargetCommand),
    Unit(Unit),
}

/// Options of the translation.
#[derive(Debug, Clone)]
pub struct TranslateOptions {
    /// Forward `PUBLISH`/`SPUBLISH` (default off: subscribers of the target would see
    /// every message twice once they also listen to the source).
    pub forward_publish: bool,
    /// Number of dbs on the source (`FLUSHALL` narrowing covers `0..source_dbs`; default 16).
    pub source_dbs: u32,
    /// The target's modules (`MODULE LIST` names), when known: commands of a known module
    /// that is not among them (`JSON.SET` without RedisJSON) are refused as unsupported,
    /// naming the module, instead of failing on the target. Default `None` (not checked).
    pub target_modules: Option<Vec<String>>,
}

impl Default for TranslateOptions {
    fn default() -> TranslateOptions {
        TranslateOptions {
            forward_publish: false,
            source_dbs: 16,
            target_modules: None,
        }
    }
}

/// Translates replicated commands for one target. Sans-IO and stateful only for
/// transactions; the rules (filters, db mapping, `FLUSHALL` narrowing, multi-key commands,
/// older targets) are listed in the [`command`](crate::command) module docs.
#[derive(Debug, Clone)]
pub struct Translator {
    target: ServerVersion,
    filter: Filter,
    opts: TranslateOptions,
    /// Commands of the open transaction, `None` outside `MULTI`.
    transaction: Option<Vec<TargetCommand>>,
}

/// What the key filter and transform make of a command's keys.
enum Narrow {
    /// Apply it (keys renamed in place), in this target db when the transform chose one.
    Keep(Option<u32>),
    /// Every key is outside the filter.
    Drop,
    /// The key table does not know where the keys are.
    Unknown,
    /// Keys inside and outside the filter, and the command cannot be narrowed.
    Mixed,
    /// The transform sends the keys to different dbs.
    SplitDbs,
}

/// Why a command is refused, as one shared phrase per case.
mod reason {
    pub(super) const MIXED_KEYS: &str =
        "its keys are partly inside and partly outside the key filter";
    pub(super) const SPLIT_DBS: &str = "the key transform sends its keys to different dbs";
    pub(super) const UNKNOWN_KEYS: &str =
        "the key filter cannot tell which arguments of this command are keys";
    pub(super) const SWAPDB_FILTERED: &str =
        "SWAPDB cannot be reproduced when dbs are filtered or mapped";
    pub(super) const KEEPTTL: &str = "SET ... KEEPTTL needs Redis 6.0+ on the target";
    pub(super) const FIELD_TTL: &str = "hash field TTLs need Redis 7.4+ or Valkey 9+ on the target";
    pub(super) const FUNCTIONS: &str = "functions need Redis 7.0+ on the target";
    pub(super) const NEW_COMMAND: &str = "the target's version lacks this command";
    pub(super) const NESTED_MULTI: &str = "MULTI inside a transaction";
    pub(super) const STRAY_EXEC: &str = "EXEC without MULTI";
}

/// A command name upper-cased; names up to [`Upper::INLINE`] bytes (every command the
/// replication stream carries) stay on the stack: translating is allocation-free for them.
enum Upper {
    Inline([u8; Upper::INLINE], u8),
    Heap(Vec<u8>),
}

impl Upper {
    const INLINE: usize = 32;
}

impl std::ops::Deref for Upper {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Upper::Inline(buf, len) => &buf[..usize::from(*len)],
            Upper::Heap(v) => v,
        }
    }
}

fn upper(arg: &[u8]) -> Upper {
    if arg.len() > Upper::INLINE {
        return Upper::Heap(arg.to_ascii_uppercase());
    }
    let mut buf = [0u8; Upper::INLINE];
    for (u, c) in buf.iter_mut().zip(arg) {
        *u = c.to_ascii_uppercase();
    }
    // At most INLINE (32) bytes: fits.
    Upper::Inline(buf, arg.len() as u8)
}

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

impl Translator {
    /// A translator for `target`, applying `filter`.
    pub fn new(target: ServerVersion, filter: Filter, opts: TranslateOptions) -> Translator {
        Translator {
            target,
            filter,
            opts,
            transaction: None,
        }
    }

    /// Whether a transaction is open (its commands are buffered).
    pub fn in_transaction(&self) -> bool {
        self.transaction.is_some()
    }

    /// Translates one replicated command that runs in source db `db`.
    pub fn translate(&mut self, db: u32, args: Vec<Bytes>) -> Translated {
        let Some(name) = args.first().map(|n| upper(n)) else {
            return Translated::Nothing;
        };
        match &name[..] {
            b"PING" | b"REPLCONF" | b"SELECT" => return Translated::Nothing,
            b"MULTI" => {
                if self.transaction.is_some() {
                    return self.unsupported(&args, reason::NESTED_MULTI);
                }
                self.transaction = Some(Vec::new());
                return Translated::Nothing;
            }
            b"EXEC" => {
                return match self.transaction.take() {
                    None => self.unsupported(&args, reason::STRAY_EXEC),
                    Some(commands) if commands.is_empty() => Translated::Nothing,
                    Some(commands) => Translated::Apply(Unit {
                        commands,
                        atomic: true,
                    }),
                };
            }
            b"DISCARD" => {
                self.transaction = None;
                return Translated::Nothing;
            }
            _ => {}
        }
        match self.command(db, &name, args) {
            Ok(out) => match (&mut self.transaction, out) {
                (_, Out::Empty) => Translated::Nothing,
                (Some(buffer), Out::One(c)) => {
                    buffer.push(c);
                    Translated::Nothing
                }
                (Some(buffer), Out::Unit(unit)) => {
                    buffer.extend(unit.commands);
                    Translated::Nothing
                }
                (None, Out::One(c)) => Translated::Forward(c),
                (None, Out::Unit(unit)) if unit.commands.is_empty() => Translated::Nothing,
                (None, Out::Unit(unit)) => Translated::Apply(unit),
            },
            Err(refused) => refused,
        }
    }

    fn unsupported(&self, args: &[Bytes], reason: &'static str) -> Translated {
        let key = first_key_index(args).and_then(|i| args.get(i).cloned());
        Translated::Unsupported {
            command: args.first().cloned().unwrap_or_default(),
            key,
            reason,
        }
    }

    /// The unit for one command outside the transaction bookkeeping.
    fn command(&self, db: u32, name: &[u8], mut args: Vec<Bytes>) -> Result<Out, Translated> {
        // Commands about dbs rather than keys.
        match name {
            b"FLUSHALL" => {
                if !self.filter.filters_dbs() {
                    return Ok(self.single(db, args));
                }
                let mut commands: Vec<TargetCommand> = self
                    .filter
                    .target_dbs(0..self.opts.source_dbs)
                    .into_iter()
                    .map(|db| TargetCommand {
                        db,
                        args: [b("FLUSHDB")]
                            .into_iter()
                            .chain(args.get(1).cloned())
                            .collect(),
                    })
                    .collect();
                let atomic = commands.len() > 1;
                commands.shrink_to_fit();
                return Ok(Out::Unit(Unit { commands, atomic }));
            }
            b"SWAPDB" if self.filter.filters_dbs() => {
                return Err(self.unsupported(&args, reason::SWAPDB_FILTERED));
            }
            b"PUBLISH" | b"SPUBLISH" if !self.opts.forward_publish => return Ok(Out::Empty),
            b"FUNCTION" if !self.target.has_functions() => {
                return Err(self.unsupported(&args, reason::FUNCTIONS));
            }
            _ => {}
        }
        let Some(target_db) = self.filter.target_db(db) else {
            return Ok(Out::Empty);
        };
        // A source that is itself a migration's target writes its checkpoint: not ours.
        if args
            .get(1)
            .is_some_and(|k| k.starts_with(crate::migrate::RESERVED_PREFIX))
        {
            return Ok(Out::Empty);
        }
        if let (Some(loaded), Some((module, why))) =
            (&self.opts.target_modules, crate::command_module(name))
        {
            if !crate::module_loaded(loaded, module) {
                // Module commands are not in the key table; their key comes first.
                return Err(Translated::Unsupported {
                    command: args[0].clone(),
                    key: args.get(1).cloned(),
                    reason: why,
                });
            }
        }
        let mut target_db = target_db;
        if self.filter.filters_keys() {
            match self.narrow_keys(db, name, &mut args) {
                Narrow::Keep(Some(d)) => target_db = d,
                Narrow::Keep(None) => {}
                Narrow::Drop => return Ok(Out::Empty),
                Narrow::Unknown => return Err(self.unsupported(&args, reason::UNKNOWN_KEYS)),
                Narrow::Mixed => return Err(self.unsupported(&args, reason::MIXED_KEYS)),
                Narrow::SplitDbs => return Err(self.unsupported(&args, reason::SPLIT_DBS)),
            }
        }
        if name == b"MOVE" || name == b"COPY" {
            return self.db_argument(target_db, name, args);
        }
        self.for_version(target_db, name, args)
    }

    fn single(&self, db: u32, args: Vec<Bytes>) -> Out {
        Out::One(TargetCommand { db, args })
    }

    /// Applies the key patterns and the key transform to every key of the command,
    /// renaming keys in place.
    fn narrow_keys(&self, db: u32, name: &[u8], args: &mut Vec<Bytes>) -> Narrow {
        let Some(keys) = key_indexes(args) else {
            return Narrow::Unknown;
        };
        if keys.is_empty() {
            return Narrow::Keep(None);
        }
        let mapped: Vec<Option<(u32, Bytes)>> = keys
            .iter()
            .map(|&i| {
                self.filter.map_key(db, &args[i]).map(|(d, k)| {
                    let k = match k {
                        std::borrow::Cow::Borrowed(_) => args[i].clone(),
                        std::borrow::Cow::Owned(v) => Bytes::from(v),
                    };
                    (d, k)
                })
            })
            .collect();
        if mapped.iter().all(Option::is_none) {
            return Narrow::Drop;
        }
        let mut dbs = mapped.iter().flatten().map(|(d, _)| *d);
        let first_db = dbs.next();
        if dbs.any(|d| Some(d) != first_db) {
            return Narrow::SplitDbs;
        }
        if mapped.iter().all(Option::is_some) {
            for (&i, m) in keys.iter().zip(&mapped) {
                if let Some((_, k)) = m {
                    args[i] = k.clone();
                }
            }
            return Narrow::Keep(first_db);
        }
        match name {
            b"DEL" | b"UNLINK" | b"TOUCH" => {
                let kept: Vec<Bytes> = std::iter::once(args[0].clone())
                    .chain(mapped.iter().flatten().map(|(_, k)| k.clone()))
                    .collect();
                *args = kept;
            }
            b"MSET" | b"MSETNX" => {
                let mut kept = vec![args[0].clone()];
                for (&i, m) in keys.iter().zip(&mapped) {
                    if let Some((_, k)) = m {
                        kept.push(k.clone());
                        kept.push(args.get(i + 1).cloned().unwrap_or_default());
                    }
                }
                *args = kept;
            }
            _ => return Narrow::Mixed,
        }
        Narrow::Keep(first_db)
    }

    /// `MOVE key db` and `COPY src dst ... DB n`: map the db argument.
    fn db_argument(&self, db: u32, name: &[u8], mut args: Vec<Bytes>) -> Result<Out, Translated> {
        let pos = if name == b"MOVE" {
            Some(2)
        } else {
            (3..args.len().saturating_sub(1))
                .find(|&i| args[i].eq_ignore_ascii_case(b"DB"))
                .map(|i| i + 1)
        };
        if let Some(pos) = pos {
            let to = std::str::from_utf8(args.get(pos).map(|a| &a[..]).unwrap_or_default())
                .ok()
                .and_then(|s| s.parse::<u32>().ok());
            match to.map(|to| self.filter.target_db(to)) {
                Some(Some(mapped)) => args[pos] = Bytes::from(mapped.to_string()),
                // Moved out of the copied dbs: gone from the target's point of view.
                Some(None) if name == b"MOVE" => {
                    return Ok(self.single(db, vec![b("DEL"), args[1].clone()]));
                }
                Some(None) => return Ok(Out::Empty),
                None => {}
            }
        }
        if name == b"COPY" && !self.target.has_6_2_commands() {
            return Err(self.unsupported(&args, reason::NEW_COMMAND));
        }
        Ok(self.single(db, args))
    }

    /// Rewrites commands the target's version lacks.
    fn for_version(&self, db: u32, name: &[u8], mut args: Vec<Bytes>) -> Result<Out, Translated> {
        let t = &self.target;
        match name {
            b"SET" => return self.set(db, args),
            b"UNLINK" if !t.has_unlink() => args[0] = b("DEL"),
            b"HSET" if args.len() > 4 && !t.has_variadic_hset() => args[0] = b("HMSET"),
            b"HEXPIRE" | b"HPEXPIRE" | b"HEXPIREAT" | b"HPEXPIREAT" | b"HPERSIST" | b"HSETEX"
            | b"HGETEX" | b"HGETDEL"
                if !t.has_hash_field_ttl() =>
            {
                return Err(self.unsupported(&args, reason::FIELD_TTL));
            }
            b"LMOVE" | b"BLMOVE" if !t.has_6_2_commands() => {
                let dir =
                    |i: usize, d: &[u8]| args.get(i).is_some_and(|a| a.eq_ignore_ascii_case(d));
                if dir(3, b"RIGHT") && dir(4, b"LEFT") {
                    args = vec![b("RPOPLPUSH"), args[1].clone(), args[2].clone()];
                } else {
                    return Err(self.unsupported(&args, reason::NEW_COMMAND));
                }
            }
            b"XSETID" if !t.has_stream_v2_metadata() => {
                strip_options(&mut args, 3, &[b"ENTRIESADDED", b"MAXDELETEDID"]);
            }
            b"XGROUP" if !t.has_stream_v2_metadata() => {
                strip_options(&mut args, 4, &[b"ENTRIESREAD"]);
            }
            _ => {}
        }
        Ok(self.single(db, args))
    }

    /// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]` for older targets.
    fn set(&self, db: u32, args: Vec<Bytes>) -> Result<Out, Translated> {
        let t = &self.target;
        if args.len() <= 3 {
            // `SET key value`: nothing to rewrite.
            return Ok(self.single(db, args));
        }
        let mut base: Vec<Bytes> = args.iter().take(3).cloned().collect();
        let mut expire_at: Option<(bool, Bytes)> = None;
        let mut i = 3;
        let mut changed = false;
        while i < args.len() {
            let opt = upper(&args[i]);
            match &opt[..] {
                b"EXAT" | b"PXAT" if !t.has_set_pxat() && i + 1 < args.len() => {
                    expire_at = Some((&opt[..] == b"EXAT", args[i + 1].clone()));
                    changed = true;
                    i += 2;
                    continue;
                }
                b"GET" if !t.has_set_pxat() => {
                    // Only the reply changes; the write is the same.
                    changed = true;
                }
                b"KEEPTTL" if !t.has_set_keepttl() => {
                    return Err(self.unsupported(&args, reason::KEEPTTL));
                }
                _ => base.push(args[i].clone()),
            }
            i += 1;
        }
        if !changed {
            return Ok(self.single(db, args));
        }
        let mut commands = vec![TargetCommand { db, args: base }];
        if let Some((seconds, at)) = expire_at {
            let cmd = if seconds {
                b("EXPIREAT")
            } else {
                b("PEXPIREAT")
            };
            commands.push(TargetCommand {
                db,
                args: vec![cmd, args[1].clone(), at],
            });
        }
        let atomic = commands.len() > 1;
        Ok(Out::Unit(Unit { commands, atomic }))
    }
}

/// Removes `NAME value` option pairs from `args[from..]`.
fn strip_options(args: &mut Vec<Bytes>, from: usize, names: &[&[u8]]) {
    let mut i = from;
    while i < args.len() {
        if names.iter().any(|n| args[i].eq_ignore_ascii_case(n)) && i + 1 < args.len() {
            args.drain(i..i + 2);
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServerFamily::Redis;

    fn cmd(s: &str) -> Vec<Bytes> {
        s.split(' ')
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect()
    }

    fn show(t: &Translated) -> Vec<String> {
        match t {
            Translated::Forward(_) | Translated::Apply(_) => t
                .commands()
                .iter()
                .map(|c| {
                    let args: Vec<_> = c
                        .args
                        .iter()
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect();
                    format!(
                        "{}{}:{}",
                        if t.is_atomic() { "*" } else { "" },
                        c.db,
                        args.join(" ")
                    )
                })
                .collect(),
            Translated::Nothing => vec![],
            Translated::Unsupported { reason, .. } => vec![format!("unsupported: {reason}")],
        }
    }

    fn tr(target: (u16, u16), filter: Filter) -> Translator {
        Translator::new(
            ServerVersion::new(Redis, target.0, target.1, 0),
            filter,
            TranslateOptions::default(),
        )
    }

    #[test]
    fn protocol_commands_and_transactions() {
        let mut t = tr((7, 0), Filter::new());
        assert_eq!(t.translate(0, cmd("PING")), Translated::Nothing);
        assert_eq!(
            t.translate(0, cmd("REPLCONF GETACK *")),
            Translated::Nothing
        );
        assert_eq!(t.translate(0, cmd("MULTI")), Translated::Nothing);
        assert_eq!(t.translate(0, cmd("SET a 1")), Translated::Nothing);
        assert_eq!(t.translate(2, cmd("INCR b")), Translated::Nothing);
        assert_eq!(
            show(&t.translate(0, cmd("EXEC"))),
            ["*0:SET a 1", "*2:INCR b"]
        );
        assert!(!t.in_transaction());
        assert!(matches!(
            t.translate(0, cmd("EXEC")),
            Translated::Unsupported { .. }
        ));
    }

    #[test]
    fn db_filter_and_flushall() {
        let f = Filter::new().exclude_db(1).map_db(2, 5);
        let mut t = Translator::new(
            ServerVersion::new(Redis, 7, 0, 0),
            f,
            TranslateOptions {
                source_dbs: 3,
                ..Default::default()
            },
        );
        assert_eq!(show(&t.translate(1, cmd("SET a 1"))), Vec::<String>::new());
        assert_eq!(show(&t.translate(2, cmd("SET a 1"))), ["5:SET a 1"]);
        assert_eq!(
            show(&t.translate(0, cmd("FLUSHALL ASYNC"))),
            ["*0:FLUSHDB ASYNC", "*5:FLUSHDB ASYNC"]
        );
        assert_eq!(show(&t.translate(0, cmd("MOVE k 2"))), ["0:MOVE k 5"]);
        assert_eq!(show(&t.translate(0, cmd("MOVE k 1"))), ["0:DEL k"]);
        assert!(matches!(
            t.translate(0, cmd("SWAPDB 0 1")),
            Translated::Unsupported { .. }
        ));
        // A transaction whose commands are all filtered out disappears.
        t.translate(1, cmd("MULTI"));
        t.translate(1, cmd("SET x 1"));
        assert_eq!(t.translate(1, cmd("EXEC")), Translated::Nothing);
    }

    #[test]
    fn key_filter() {
        let mut t = tr((7, 0), Filter::new().include_keys("a*"));
        assert_eq!(show(&t.translate(0, cmd("DEL a1 b a2"))), ["0:DEL a1 a2"]);
        assert_eq!(show(&t.translate(0, cmd("MSET a1 1 b 2"))), ["0:MSET a1 1"]);
        assert_eq!(show(&t.translate(0, cmd("SET b 1"))), Vec::<String>::new());
        assert_eq!(show(&t.translate(0, cmd("FLUSHDB"))), ["0:FLUSHDB"]);
        assert_eq!(
            show(&t.translate(0, cmd("RENAME a1 b"))),
            [format!("unsupported: {}", reason::MIXED_KEYS)]
        );
        assert_eq!(
            show(&t.translate(0, cmd("NOSUCH a1"))),
            [format!("unsupported: {}", reason::UNKNOWN_KEYS)]
        );
        assert_eq!(
            show(&t.translate(0, cmd("EVAL s 1 a1 x"))),
            ["0:EVAL s 1 a1 x"]
        );
    }

    #[test]
    fn older_targets() {
        let mut t60 = tr((6, 0), Filter::new());
        assert_eq!(
            show(&t60.translate(0, cmd("SET k v PXAT 1700000000000"))),
            ["*0:SET k v", "*0:PEXPIREAT k 1700000000000"]
        );
        assert_eq!(
            show(&t60.translate(0, cmd("SET k v NX GET EXAT 17"))),
            ["*0:SET k v NX", "*0:EXPIREAT k 17"]
        );
        assert_eq!(
            show(&t60.translate(0, cmd("SET k v KEEPTTL"))),
            ["0:SET k v KEEPTTL"]
        );
        assert_eq!(
            show(&t60.translate(0, cmd("LMOVE a b RIGHT LEFT"))),
            ["0:RPOPLPUSH a b"]
        );
        assert!(matches!(
            t60.translate(0, cmd("LMOVE a b LEFT LEFT")),
            Translated::Unsupported { .. }
        ));
        assert_eq!(
            show(&t60.translate(0, cmd("XSETID s 5-0 ENTRIESADDED 9 MAXDELETEDID 3-0"))),
            ["0:XSETID s 5-0"]
        );
        assert_eq!(
            show(&t60.translate(0, cmd("XGROUP CREATE s g 0 ENTRIESREAD 4"))),
            ["0:XGROUP CREATE s g 0"]
        );
        assert!(matches!(
            t60.translate(0, cmd("FUNCTION LOAD x")),
            Translated::Unsupported { .. }
        ));
        assert!(matches!(
            t60.translate(0, cmd("HPEXPIREAT h 1 FIELDS 1 f")),
            Translated::Unsupported { .. }
        ));
        let mut t3 = tr((3, 2), Filter::new());
        assert_eq!(show(&t3.translate(0, cmd("UNLINK a b"))), ["0:DEL a b"]);
        assert_eq!(
            show(&t3.translate(0, cmd("HSET h a 1 b 2"))),
            ["0:HMSET h a 1 b 2"]
        );
        assert!(matches!(
            t3.translate(0, cmd("SET k v KEEPTTL")),
            Translated::Unsupported { .. }
        ));
        // Publishing is dropped by default.
        assert_eq!(t3.translate(0, cmd("PUBLISH ch msg")), Translated::Nothing);
    }
}

#[cfg(test)]
mod reserved_tests {
    use super::*;

    /// A source that is itself the target of another migration replicates that migration's
    /// checkpoint writes: they are not copied (they would overwrite ours).
    #[test]
    fn the_reserved_prefix_is_never_forwarded() {
        let mut t = Translator::new(
            ServerVersion::new(crate::ServerFamily::Redis, 7, 0, 0),
            Filter::new(),
            TranslateOptions::default(),
        );
        let args = |a: &[&str]| {
            a.iter()
                .map(|s| Bytes::copy_from_slice(s.as_bytes()))
                .collect()
        };
        assert_eq!(
            t.translate(0, args(&["SET", "__redis-migrate:checkpoint", "x"])),
            Translated::Nothing
        );
        assert!(matches!(
            t.translate(0, args(&["SET", "k", "x"])),
            Translated::Forward(_)
        ));
    }
}
