//! Replicated commands: where their keys are ([`key_spec`], [`key_indexes`]), and how they
//! translate for the target ([`Translator`]).
//!
//! The incremental sync hands every command of the source's replication stream, with the
//! db it runs in, to a [`Translator`], which returns a [`Translated`]: one
//! [`TargetCommand`] to apply (the common case, no allocation besides the arguments the
//! command came with), a [`Unit`] of them (atomically when it says so), nothing, or a
//! refusal with the reason, which the migration reports with the key.
//!
//! ```
//! use bytes::Bytes;
//! use migrate_core::command::{TranslateOptions, Translated, Translator};
//! use migrate_core::{Filter, ServerFamily, ServerVersion};
//!
//! let target = ServerVersion::new(ServerFamily::Redis, 6, 2, 5);
//! let filter = Filter::new().exclude_keys("tmp:*").map_db(2, 7);
//! let mut t = Translator::new(target, filter, TranslateOptions::default());
//! let args = |a: &[&str]| a.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect();
//!
//! // A multi-key DEL is narrowed to the keys inside the filter; the db is mapped.
//! let Translated::Forward(del) = t.translate(2, args(&["DEL", "a", "tmp:x", "b"])) else {
//!     panic!()
//! };
//! assert_eq!(del.db, 7);
//! assert_eq!(del.args, args(&["DEL", "a", "b"]));
//!
//! // RENAME with one key on each side of the filter cannot be reproduced: refused.
//! let refused = t.translate(0, args(&["RENAME", "a", "tmp:a"]));
//! assert!(matches!(refused, Translated::Unsupported { .. }));
//!
//! // A transaction comes out whole at EXEC.
//! assert_eq!(t.translate(0, args(&["MULTI"])), Translated::Nothing);
//! assert_eq!(t.translate(0, args(&["INCR", "n"])), Translated::Nothing);
//! let Translated::Apply(tx) = t.translate(0, args(&["EXEC"])) else { panic!() };
//! assert!(tx.atomic && tx.commands.len() == 1);
//! ```
//!
//! # Translation rules
//! - `PING`, `REPLCONF` and `SELECT` are consumed (the writer selects dbs itself).
//! - `MULTI` … `EXEC` is buffered and comes out as one atomic [`Unit`], or not at all when
//!   every command inside was filtered out.
//! - The db filter and mapping apply to every command; `FLUSHALL` is narrowed to
//!   `FLUSHDB` on each written db when dbs are filtered or mapped; `SWAPDB` is refused
//!   then; `MOVE`/`COPY ... DB n` get their db argument mapped (a `MOVE` out of the copied
//!   dbs becomes a `DEL`).
//! - Commands newer than the target are rewritten where an exact equivalent exists
//!   (`SET ... PXAT` → `SET` + `PEXPIREAT` in one transaction, `UNLINK` → `DEL`, `HSET`
//!   with several pairs → `HMSET`, `LMOVE src dst RIGHT LEFT` → `RPOPLPUSH`, the Redis 7
//!   stream options `ENTRIESADDED`/`MAXDELETEDID`/`ENTRIESREAD` dropped) and refused
//!   otherwise (`KEEPTTL` before 6.0, hash field TTLs before Redis 7.4 / Valkey 9,
//!   functions before 7.0).
//! - `PUBLISH`/`SPUBLISH` are dropped unless [`TranslateOptions::forward_publish`].
//!
//! # Multi-key commands and key filters
//! Where a command's keys are comes from the static table behind [`key_spec`], the same
//! key positions the servers' command tables give for every write command they replicate.
//! With key patterns in the [`Filter`](crate::Filter):
//! - a command whose keys all match is forwarded unchanged, one whose keys all miss is
//!   dropped;
//! - `DEL`, `UNLINK`, `TOUCH`, `MSET` and `MSETNX` are narrowed to their matching keys
//!   (`MSET` keeps each matching key with its value);
//! - any other command with keys on both sides of the filter (`RENAME in out`,
//!   `SMOVE`, `LMOVE`, `*STORE`, `COPY`, `BITOP`, `PFMERGE` ...) is refused as unsupported:
//!   applying it would write a key outside the filter or read one the target lacks;
//! - a command whose keys the table cannot find (an unknown command, a module command)
//!   is refused when key patterns are set, and forwarded otherwise;
//! - transactions are filtered command by command: a refused command inside one is
//!   reported (with its key), and the rest of the transaction is applied as one atomic
//!   unit at `EXEC`.

mod keys;
mod translate;

pub use keys::{key_indexes, key_spec, KeySpec};

/// The first key argument of a command (`None` for keyless and unknown commands).
pub(crate) fn first_key(args: &[bytes::Bytes]) -> Option<&bytes::Bytes> {
    keys::first_key_index(args).and_then(|i| args.get(i))
}
pub use translate::{TargetCommand, TranslateOptions, Translated, Translator, Unit};
