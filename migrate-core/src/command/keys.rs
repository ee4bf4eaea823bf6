//! Where the keys are in a write command, as the replication stream carries it.
//!
//! A static table of the write commands Redis and Valkey propagate to replicas (only
//! writes are propagated, plus `SELECT`, `PING`, `REPLCONF`, `MULTI`/`EXEC`, `PUBLISH` and
//! the script/function management commands), with the same key-position rules as the
//! servers' command tables. Used to filter commands by key pattern and, later, to route
//! them to cluster slots.

/// How a command's keys are found in its arguments (index 0 is the command name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySpec {
    /// No keys (`FLUSHALL`, `PING`, `FUNCTION LOAD`, ...).
    Keyless,
    /// Arguments `first..=last` every `step`; a negative `last` counts from the end
    /// (`-1` is the last argument).
    Range {
        /// Index of the first key.
        first: usize,
        /// Index of the last key; negative counts from the end.
        last: isize,
        /// Distance between keys (2 for `MSET k v k v`).
        step: usize,
    },
    /// A key count at `numkeys_at` followed by that many keys, plus optionally one fixed
    /// key before it (the destination of `ZUNIONSTORE dst numkeys k...`).
    NumKeys {
        /// Index of the key count.
        numkeys_at: usize,
        /// Index of a fixed key before the count, if any.
        fixed: Option<usize>,
    },
    /// Keys after the `STREAMS` keyword, the first half of what follows (`XREADGROUP`).
    Streams,
    /// `XGROUP <subcommand> <key> ...`.
    SubcommandKey,
    /// `SORT key ... [STORE dst]`, `GEORADIUS key ... [STORE|STOREDIST dst]`.
    KeyAndStore,
    /// `MIGRATE host port key|"" db timeout ... [KEYS k...]`.
    Migrate,
}

/// The key spec of a command by name (case-insensitive), or `None` for a command this
/// table does not know.
pub fn key_spec(name: &[u8]) -> Option<KeySpec> {
    let mut upper = [0u8; 24];
    if name.len() > upper.len() {
        return None;
    }
    for (u, c) in upper.iter_mut().zip(name) {
        *u = c.to_ascii_uppercase();
    }
    let name = &upper[..name.len()];
    use KeySpec::{KeyAndStore, Keyless, Migrate, NumKeys, Range, Streams, SubcommandKey};
    const ONE: KeySpec = Range {
        first: 1,
        last: 1,
        step: 1,
    };
    const TWO: KeySpec = Range {
        first: 1,
        last: 2,
        step: 1,
    };
    const ALL: KeySpec = Range {
        first: 1,
        last: -1,
        step: 1,
    };
    const PAIRS: KeySpec = Range {
        first: 1,
        last: -1,
        step: 2,
    };
    const BLOCKING: KeySpec = Range {
        first: 1,
        last: -2,
        step: 1,
    };
    Some(match name {
        // Strings.
        b"SET" | b"SETNX" | b"SETEX" | b"PSETEX" | b"APPEND" | b"INCR" | b"DECR" | b"INCRBY"
        | b"DECRBY" | b"INCRBYFLOAT" | b"GETSET" | b"GETDEL" | b"GETEX" | b"SETRANGE"
        | b"SETBIT" | b"BITFIELD" | b"DELIFEQ" => ONE,
        b"MSET" | b"MSETNX" => PAIRS,
        b"BITOP" => Range {
            first: 2,
            last: -1,
            step: 1,
        },
        // Keyspace.
        b"DEL" | b"UNLINK" | b"TOUCH" => ALL,
        b"EXPIRE" | b"PEXPIRE" | b"EXPIREAT" | b"PEXPIREAT" | b"PERSIST" | b"MOVE" | b"RESTORE"
        | b"RESTORE-ASKING" => ONE,
        b"RENAME" | b"RENAMENX" | b"COPY" => TWO,
        b"SORT" => KeyAndStore,
        b"MIGRATE" => Migrate,
        // Lists.
        b"LPUSH" | b"RPUSH" | b"LPUSHX" | b"RPUSHX" | b"LINSERT" | b"LSET" | b"LREM" | b"LTRIM"
        | b"LPOP" | b"RPOP" => ONE,
        b"RPOPLPUSH" | b"LMOVE" | b"BLMOVE" | b"BRPOPLPUSH" => TWO,
        b"BLPOP" | b"BRPOP" | b"BZPOPMIN" | b"BZPOPMAX" => BLOCKING,
        b"LMPOP" | b"ZMPOP" | b"SINTERCARD" | b"ZINTERCARD" => NumKeys {
            numkeys_at: 1,
            fixed: None,
        },
        b"BLMPOP" | b"BZMPOP" => NumKeys {
            numkeys_at: 2,
            fixed: None,
        },
        // Sets.
        b"SADD" | b"SREM" | b"SPOP" => ONE,
        b"SMOVE" => TWO,
        b"SINTERSTORE" | b"SUNIONSTORE" | b"SDIFFSTORE" => ALL,
        // Sorted sets.
        b"ZADD" | b"ZINCRBY" | b"ZREM" | b"ZREMRANGEBYSCORE" | b"ZREMRANGEBYRANK"
        | b"ZREMRANGEBYLEX" | b"ZPOPMIN" | b"ZPOPMAX" => ONE,
        b"ZRANGESTORE" | b"GEOSEARCHSTORE" => TWO,
        b"ZUNIONSTORE" | b"ZINTERSTORE" | b"ZDIFFSTORE" => NumKeys {
            numkeys_at: 2,
            fixed: Some(1),
        },
        // Hashes (incl. field TTLs of Redis 7.4+/Valkey 9).
        b"HSET" | b"HSETNX" | b"HMSET" | b"HDEL" | b"HINCRBY" | b"HINCRBYFLOAT" | b"HEXPIRE"
        | b"HPEXPIRE" | b"HEXPIREAT" | b"HPEXPIREAT" | b"HPERSIST" | b"HGETDEL" | b"HGETEX"
        | b"HSETEX" => ONE,
        // Streams.
        b"XADD" | b"XDEL" | b"XTRIM" | b"XSETID" | b"XACK" | b"XCLAIM" | b"XAUTOCLAIM"
        | b"XACKDEL" | b"XDELEX" => ONE,
        b"XGROUP" => SubcommandKey,
        b"XREADGROUP" => Streams,
        // HyperLogLog, geo.
        b"PFADD" | b"PFDEBUG" | b"GEOADD" => ONE,
        b"PFMERGE" | b"PFCOUNT" => ALL,
        b"GEORADIUS" | b"GEORADIUSBYMEMBER" => KeyAndStore,
        // Scripts and functions: keys after numkeys.
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" | b"FCALL" | b"FCALL_RO" => NumKeys {
            numkeys_at: 2,
            fixed: None,
        },
        // No keys.
        b"SELECT" | b"PING" | b"REPLCONF" | b"MULTI" | b"EXEC" | b"DISCARD" | b"FLUSHDB"
        | b"FLUSHALL" | b"SWAPDB" | b"PUBLISH" | b"SPUBLISH" | b"SCRIPT" | b"FUNCTION" => Keyless,
        _ => return None,
    })
}

/// The indexes of the keys in `args` (`args[0]` is the command name), or `None` when the
/// command is unknown or its arguments are malformed for its spec.
pub fn key_indexes<A: AsRef<[u8]>>(args: &[A]) -> Option<Vec<usize>> {
    let spec = key_spec(args.first()?.as_ref())?;
    let argc = args.len();
    let num = |i: usize| -> Option<usize> {
        std::str::from_utf8(args.get(i)?.as_ref())
            .ok()?
            .parse()
            .ok()
    };
    let upper = |i: usize| args[i].as_ref().to_ascii_uppercase();
    Some(match spec {
        KeySpec::Keyless => Vec::new(),
        KeySpec::Range { first, last, step } => {
            let last = if last < 0 {
                argc.checked_sub(last.unsigned_abs())?
            } else {
                last as usize
            };
            if first > last || last >= argc {
                return None;
            }
            (first..=last).step_by(step).collect()
        }
        KeySpec::NumKeys { numkeys_at, fixed } => {
            let n = num(numkeys_at)?;
            let start = numkeys_at + 1;
            if start.checked_add(n)? > argc {
                return None;
            }
            fixed.into_iter().chain(start..start + n).collect()
        }
        KeySpec::Streams => {
            let pos = (1..argc).find(|&i| upper(i) == b"STREAMS")?;
            let rest = argc - pos - 1;
            if rest == 0 || rest % 2 != 0 {
                return None;
            }
            (pos + 1..pos + 1 + rest / 2).collect()
        }
        KeySpec::SubcommandKey => {
            if argc < 3 {
                // XGROUP HELP has no key.
                return Some(Vec::new());
            }
            vec![2]
        }
        KeySpec::KeyAndStore => {
            if argc < 2 {
                return None;
            }
            let mut keys = vec![1];
            let mut i = 2;
            while i + 1 < argc {
                let word = upper(i);
                if word == b"STORE" || word == b"STOREDIST" {
                    keys.push(i + 1);
                    i += 1;
                }
                i += 1;
            }
            keys
        }
        KeySpec::Migrate => {
            if argc < 6 {
                return None;
            }
            if !args[3].as_ref().is_empty() {
                vec![3]
            } else {
                let pos = (6..argc).find(|&i| upper(i) == b"KEYS")?;
                (pos + 1..argc).collect()
            }
        }
    })
}

/// The index of the first key in `args`: `key_indexes(args)?.first()`, without building the
/// list for the common specs (one call per replicated command names its key in reports).
pub(crate) fn first_key_index<A: AsRef<[u8]>>(args: &[A]) -> Option<usize> {
    let spec = key_spec(args.first()?.as_ref())?;
    let argc = args.len();
    match spec {
        KeySpec::Keyless => None,
        KeySpec::Range { first, last, .. } => {
            let last = if last < 0 {
                argc.checked_sub(last.unsigned_abs())?
            } else {
                last as usize
            };
            (first <= last && last < argc).then_some(first)
        }
        KeySpec::SubcommandKey => (argc >= 3).then_some(2),
        KeySpec::KeyAndStore => (argc >= 2).then_some(1),
        _ => key_indexes(args)?.first().copied(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(cmd: &str) -> Option<Vec<usize>> {
        let args: Vec<&str> = cmd.split(' ').collect();
        key_indexes(&args)
    }

    #[test]
    fn positions() {
        assert_eq!(keys("SET k v PXAT 1"), Some(vec![1]));
        assert_eq!(keys("set k v"), Some(vec![1]));
        assert_eq!(keys("MSET a 1 b 2"), Some(vec![1, 3]));
        assert_eq!(keys("DEL a b c"), Some(vec![1, 2, 3]));
        assert_eq!(keys("BITOP AND d a b"), Some(vec![2, 3, 4]));
        assert_eq!(keys("RENAME a b"), Some(vec![1, 2]));
        assert_eq!(keys("ZUNIONSTORE d 2 a b WEIGHTS 1 2"), Some(vec![1, 3, 4]));
        assert_eq!(keys("EVAL s 2 a b x y"), Some(vec![3, 4]));
        assert_eq!(keys("EVAL s 0"), Some(vec![]));
        assert_eq!(keys("EVAL s 3 a"), None);
        assert_eq!(keys("LMPOP 2 a b LEFT"), Some(vec![2, 3]));
        assert_eq!(keys("BLMPOP 0 2 a b LEFT"), Some(vec![3, 4]));
        assert_eq!(
            keys("XREADGROUP GROUP g c COUNT 1 STREAMS s1 s2 > >"),
            Some(vec![7, 8])
        );
        assert_eq!(keys("XGROUP CREATE s g $ MKSTREAM"), Some(vec![2]));
        assert_eq!(keys("SORT k BY w STORE d"), Some(vec![1, 5]));
        assert_eq!(keys("MIGRATE h 1 k 0 10"), Some(vec![3]));
        assert_eq!(keys("MIGRATE h 1  0 10 COPY KEYS a b"), Some(vec![8, 9]));
        assert_eq!(keys("BLPOP a b 0"), Some(vec![1, 2]));
        assert_eq!(keys("FLUSHALL"), Some(vec![]));
        assert_eq!(keys("NOSUCHCOMMAND k"), None);
        assert_eq!(keys("SET"), None);
    }

    #[test]
    fn first_key_is_the_first_of_the_list() {
        for cmd in [
            "SET k v PXAT 1",
            "MSET a 1 b 2",
            "BITOP AND d a b",
            "ZUNIONSTORE d 2 a b",
            "EVAL s 0",
            "EVAL s 3 a",
            "XREADGROUP GROUP g c STREAMS s1 >",
            "XGROUP CREATE s g $",
            "XGROUP HELP",
            "SORT k STORE d",
            "SORT",
            "MIGRATE h 1  0 10 KEYS a b",
            "BLPOP a 0",
            "BLPOP 0",
            "FLUSHALL",
            "NOSUCHCOMMAND k",
            "SET",
        ] {
            let args: Vec<&str> = cmd.split(' ').collect();
            let first = key_indexes(&args).and_then(|k| k.first().copied());
            assert_eq!(first_key_index(&args), first, "{cmd}");
        }
    }
}
