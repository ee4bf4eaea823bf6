//! The `RESTORE` of a key whose serialized value the target can load: one copy of the rules
//! for the engine's full sync, `import`, `rdb dump --format resp` and custom tools.

use bytes::Bytes;
use rdb_parser::KeyStart;

use super::{Cmd, Scope};
use crate::ServerVersion;

/// The commands that write the key `start` (already renamed/mapped by the caller) from its
/// raw serialized value `chunks` (the `RawValue` pieces, type byte first) on `target`:
///
/// - `RESTORE key ttl payload`, the payload's footer set to the target's RDB version;
/// - the expiry as an absolute time: `ABSTTL` where the target has it (Redis 5+), else
///   `RESTORE key 0 ...` followed by `PEXPIREAT key at`, so no TTL drifts by the time the
///   command takes to arrive (or, for a dump, to be loaded);
/// - `REPLACE` when `replace`;
/// - `IDLETIME secs` or `FREQ n` where the target has them (Redis 5+) and the key carries
///   them, so eviction order survives the copy.
///
/// ```
/// use bytes::Bytes;
/// use migrate_core::rewrite::restore_commands;
/// use migrate_core::{ServerFamily, ServerVersion};
/// use rdb_parser::{decode_all, Event, Options};
///
/// // A one-key RDB: "k" = "v".
/// let events = decode_all(b"REDIS0003\xfe\x00\x00\x01k\x01v\xff", Options::default()).unwrap();
/// let start = events
///     .iter()
///     .find_map(|e| match e {
///         Event::KeyStart(k) => Some(k.clone()),
///         _ => None,
///     })
///     .unwrap();
/// let value = [Bytes::from_static(b"\x00\x01v")]; // type 0 (string), "v"
/// let redis7 = ServerVersion::new(ServerFamily::Redis, 7, 0, 0);
/// let cmds = restore_commands(&start, &value, redis7, true);
/// let args: Vec<&[u8]> = cmds[0].args.iter().map(|a| &a[..]).collect();
/// assert_eq!(args[..3], [&b"RESTORE"[..], b"k", b"0"]);
/// assert_eq!(args[4..], [&b"REPLACE"[..]]);
/// ```
pub fn restore_commands(
    start: &KeyStart,
    chunks: &[Bytes],
    target: ServerVersion,
    replace: bool,
) -> Vec<Cmd> {
    let payload = rdb_parser::dump::build_payload_chunks(chunks, target.rdb_version());
    restore_payload_commands(start, Bytes::from(payload), target, replace)
}

/// [`restore_commands`] of a finished `RESTORE` payload (raw value + footer, as
/// `rdb_parser::dump::build_payload` makes it): no copy of the payload is made.
pub fn restore_payload_commands(
    start: &KeyStart,
    payload: Bytes,
    target: ServerVersion,
    replace: bool,
) -> Vec<Cmd> {
    let mut cmds = Vec::with_capacity(2);
    restore_payload_into(start, payload, target, replace, &mut |c| cmds.push(c));
    cmds
}

/// [`restore_payload_commands`] through a callback (no vector per key).
pub(crate) fn restore_payload_into(
    start: &KeyStart,
    payload: Bytes,
    target: ServerVersion,
    replace: bool,
    out: &mut dyn FnMut(Cmd),
) {
    let scope = Scope::Key {
        db: start.db,
        key: start.key.clone(),
    };
    let absttl = target.has_restore_absttl();
    let ttl = match start.expire_at_ms {
        Some(at) if absttl => Bytes::from(at.to_string()),
        _ => Bytes::from_static(b"0"),
    };
    let mut args = Vec::with_capacity(8);
    args.extend([
        Bytes::from_static(b"RESTORE"),
        start.key.clone(),
        ttl,
        payload,
    ]);
    if absttl && start.expire_at_ms.is_some() {
        args.push(Bytes::from_static(b"ABSTTL"));
    }
    if replace {
        args.push(Bytes::from_static(b"REPLACE"));
    }
    if target.has_restore_idletime_freq() {
        if let Some(idle) = start.lru_idle {
            args.push(Bytes::from_static(b"IDLETIME"));
            args.push(Bytes::from(idle.to_string()));
        } else if let Some(freq) = start.lfu_freq {
            args.push(Bytes::from_static(b"FREQ"));
            args.push(Bytes::from(freq.to_string()));
        }
    }
    out(Cmd::new(scope.clone(), args));
    if let (Some(at), false) = (start.expire_at_ms, absttl) {
        out(Cmd::new(
            scope,
            vec![
                Bytes::from_static(b"PEXPIREAT"),
                start.key.clone(),
                Bytes::from(at.to_string()),
            ],
        ));
    }
}
