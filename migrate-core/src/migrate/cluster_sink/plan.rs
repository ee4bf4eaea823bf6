//! How a command is written to a cluster ([`plan`]: one slot, every master, split per slot,
//! or a cross-slot execution), the per-slot checkpoint keys ([`slot_key`]), and which
//! commands may be sent again after a master died ([`idempotent`]). No I/O.

use bytes::Bytes;

use crate::command::key_indexes;
use crate::key_slot;

/// A hash tag for each slot: `{tag}` puts a key in that slot.
pub(super) fn slot_tags() -> &'static [String] {
    static TAGS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    TAGS.get_or_init(|| {
        let mut tags = vec![String::new(); usize::from(crate::SLOTS)];
        let mut left = tags.len();
        let mut n = 0u64;
        while left > 0 {
            let t = format!("{n:x}");
            let slot = usize::from(key_slot(t.as_bytes()));
            if tags[slot].is_empty() {
                tags[slot] = t;
                left -= 1;
            }
            n += 1;
        }
        tags
    })
}

/// The checkpoint key of `slot`: the base key with the slot's hash tag.
pub(crate) fn slot_key(base: &[u8], slot: u16) -> Bytes {
    let mut k = base.to_vec();
    k.push(b'{');
    k.extend_from_slice(slot_tags()[usize::from(slot)].as_bytes());
    k.push(b'}');
    Bytes::from(k)
}

/// How a command is written to the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// One command to the master of the slot.
    Slot(u16),
    /// To every master.
    AllMasters,
    /// To one master (keyless commands that any node runs: `PUBLISH`, `EVAL` without keys).
    AnyMaster,
    /// One command per slot, in the order the slots first appear.
    Split(Vec<(u16, Vec<Bytes>)>),
    /// Keys in several slots that no split can serve: the key argument indexes.
    CrossSlot(Vec<usize>),
}

/// How `args` is written to a cluster (see the module docs); `fallback_key` routes a command
/// the key table does not know.
pub(crate) fn plan(args: &[Bytes], fallback_key: Option<&[u8]>) -> Plan {
    let name = args
        .first()
        .map(|a| a.to_ascii_uppercase())
        .unwrap_or_default();
    let Some(idx) = key_indexes(args) else {
        return match fallback_key {
            Some(k) => Plan::Slot(key_slot(k)),
            None => Plan::AnyMaster,
        };
    };
    if idx.is_empty() {
        return match &name[..] {
            b"FLUSHALL" | b"FLUSHDB" | b"FUNCTION" | b"SCRIPT" => Plan::AllMasters,
            _ => Plan::AnyMaster,
        };
    }
    let mut slots: Vec<u16> = idx.iter().map(|&i| key_slot(&args[i])).collect();
    let first = slots[0];
    if slots.iter().all(|&s| s == first) {
        return Plan::Slot(first);
    }
    let pairs = match &name[..] {
        b"DEL" | b"UNLINK" | b"TOUCH" => Some(1),
        b"MSET" => Some(2),
        _ => None,
    };
    let Some(width) = pairs else {
        return Plan::CrossSlot(idx);
    };
    if idx.iter().any(|&i| i + width > args.len()) {
        // Malformed (a key without its value): one slot, the server says what is wrong.
        return Plan::Slot(first);
    }
    let mut out: Vec<(u16, Vec<Bytes>)> = Vec::new();
    for (n, &i) in idx.iter().enumerate() {
        let slot = slots[n];
        let pos = match out.iter().position(|(s, _)| *s == slot) {
            Some(p) => p,
            None => {
                out.push((slot, vec![args[0].clone()]));
                out.len() - 1
            }
        };
        out[pos].1.extend(args[i..i + width].iter().cloned());
    }
    slots.clear();
    Plan::Split(out)
}

/// Whether running the command twice has the same effect as running it once (so that it
/// can be resent when it may have run on a master that died).
pub(super) fn idempotent(args: &[Bytes]) -> bool {
    let name = args
        .first()
        .map(|a| a.to_ascii_uppercase())
        .unwrap_or_default();
    let has = |word: &[u8]| args.iter().skip(2).any(|a| a.eq_ignore_ascii_case(word));
    match &name[..] {
        b"SET" => !has(b"GET"),
        b"ZADD" => !has(b"INCR"),
        b"RESTORE" | b"SETEX" | b"PSETEX" | b"MSET" | b"DEL" | b"UNLINK" | b"TOUCH" | b"HSET"
        | b"HMSET" | b"HDEL" | b"SADD" | b"SREM" | b"ZREM" | b"PEXPIREAT" | b"EXPIREAT"
        | b"PERSIST" | b"PFADD" | b"GEOADD" | b"SETBIT" | b"SETRANGE" | b"LSET" | b"XSETID"
        | b"HPEXPIREAT" | b"HEXPIREAT" | b"HPERSIST" | b"FLUSHALL" | b"FLUSHDB" | b"SCRIPT" => true,
        b"FUNCTION" => {
            let sub = args
                .get(1)
                .map(|a| a.to_ascii_uppercase())
                .unwrap_or_default();
            sub == b"FLUSH" || (sub == b"LOAD" && has(b"REPLACE"))
        }
        _ => false,
    }
}

/// The distinct slots of the keys of `commands` (for transactions).
pub(crate) fn slots_of<'a>(commands: impl IntoIterator<Item = &'a [Bytes]>) -> Vec<u16> {
    let mut slots: Vec<u16> = Vec::new();
    for args in commands {
        for i in key_indexes(args).unwrap_or_default() {
            slots.push(key_slot(&args[i]));
        }
    }
    slots.sort_unstable();
    slots.dedup();
    slots
}
