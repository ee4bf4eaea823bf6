//! Hidden entry points of the fuzz targets (feature `fuzzing`) into private code that
//! parses what a server or a replication stream sends: the input split into RESP frames
//! or argument vectors, fed to the parsers, with the invariants the targets check.

use bytes::{Bytes, BytesMut};
use resp_codec::{Frame, FrameDecoder, Limits};

use crate::cluster::{ClusterTopology, Node, SlotMap, TopologySource};
use crate::migrate::{cluster_plan, slots_of, ClusterPlan};
use crate::{key_slot, ServerError, SLOTS};

/// Up to 16 RESP frames of `input` (small limits: these are parsers of replies, not of
/// the decoder's limits).
fn frames(input: &[u8]) -> Vec<Frame> {
    let limits = Limits::default()
        .with_max_bulk_len(4096)
        .with_max_aggregate_len(256)
        .with_max_depth(8);
    let mut dec = FrameDecoder::new(limits);
    let mut buf = BytesMut::from(input);
    let mut out = Vec::new();
    while out.len() < 16 {
        match dec.decode(&mut buf) {
            Ok(Some((f, _))) => out.push(f),
            _ => break,
        }
    }
    out
}

/// For the `scan_replies` fuzz target: arbitrary RESP read as the replies of a big key
/// read in pieces (`HSCAN`/`ZSCAN`/`SSCAN`/`LRANGE`, `HPEXPIRETIME`) and of a big stream
/// (`XRANGE`, `XINFO STREAM`/`GROUPS`/`CONSUMERS`, `XPENDING`).
pub fn check_scan_replies(input: &[u8]) {
    let Some((&sel, rest)) = input.split_first() else {
        return;
    };
    let now_ms = u64::from(sel) << 36;
    for f in frames(rest) {
        crate::migrate::scan::check_replies(&f, usize::from(sel % 8), now_ms);
    }
}

/// For the `verify_replies` fuzz target: arbitrary RESP read as the verifier's replies,
/// and the input as the text of a redirection (`ASK`) to route a read by.
pub fn check_verify_replies(input: &[u8]) {
    let Some((&sel, rest)) = input.split_first() else {
        return;
    };
    let r = frames(rest);
    crate::verify::check_replies(&r, sel & 1 != 0);
    let addrs = ["127.0.0.1:7000".to_string(), "[::1]:7001".to_string()];
    for text in std::iter::once(String::from_utf8_lossy(rest).into_owned()).chain(
        r.iter()
            .filter_map(|f| f.as_bytes())
            .map(|b| String::from_utf8_lossy(b).into_owned()),
    ) {
        if let Some(i) = crate::verify::ask_target(&addrs, &text) {
            assert!(i < addrs.len());
        }
    }
}

/// Commands whose keys the cluster sink routes in unusual ways, for the first argument.
const NAMES: [&str; 24] = [
    "DEL",
    "UNLINK",
    "TOUCH",
    "MSET",
    "MSETNX",
    "SET",
    "EVAL",
    "EVALSHA",
    "FCALL",
    "XREAD",
    "XREADGROUP",
    "ZUNIONSTORE",
    "SINTERSTORE",
    "LMPOP",
    "BLMPOP",
    "ZINTER",
    "GEORADIUS",
    "SORT",
    "MIGRATE",
    "BITOP",
    "PFMERGE",
    "RENAME",
    "LMOVE",
    "FLUSHALL",
];

/// For the `cluster_topology` fuzz target: the input's RESP frames read as the replies
/// of Valkey 9 atomic slot migrations (`CLUSTER GETSLOTMIGRATIONS`, the target's fence
/// hash), and the input split at NULs as a `CLUSTER SYNCSLOTS` marker: no panic, and
/// what is parsed is consistent (see `shards::asm` and `shards::fence`).
pub fn check_asm_replies(input: &[u8]) {
    let mut args = vec![
        Bytes::from_static(b"CLUSTER"),
        Bytes::from_static(b"SYNCSLOTS"),
    ];
    args.extend(
        input
            .split(|&b| b == 0)
            .take(64)
            .map(Bytes::copy_from_slice),
    );
    let frames = frames(input);
    if frames.is_empty() {
        crate::migrate::fuzz_asm(&Frame::Null, &args);
    }
    for f in &frames {
        crate::migrate::fuzz_asm(f, &args);
    }
}

/// For the `cluster_plan` fuzz target: an arbitrary argument vector (NUL-separated, the
/// first byte may pick a command name) planned for a cluster: no panic; a plan's slots
/// are slots; a split gives each slot one command whose keys all hash to it, keys in
/// order; cross-slot indexes are key positions. The input is also read as a `MOVED`/`ASK`
/// reply followed as the sink follows it (its address, a topology update).
pub fn check_cluster_plan(input: &[u8]) {
    let Some((&sel, rest)) = input.split_first() else {
        return;
    };
    let mut args: Vec<Bytes> = Vec::new();
    if let Some(name) = NAMES.get(usize::from(sel >> 3)) {
        args.push(Bytes::from_static(name.as_bytes()));
    }
    args.extend(rest.split(|&b| b == 0).take(64).map(Bytes::copy_from_slice));
    let fallback: Option<&[u8]> = (sel & 1 != 0).then_some(b"fallback");
    let keys = crate::command::key_indexes(&args);
    if let Some(idx) = &keys {
        assert!(
            idx.iter().all(|&i| i > 0 && i < args.len()),
            "{idx:?} of {args:?}"
        );
    }
    match cluster_plan(&args, fallback) {
        ClusterPlan::Slot(s) => assert!(s < SLOTS),
        ClusterPlan::AllMasters | ClusterPlan::AnyMaster => {}
        ClusterPlan::Split(parts) => {
            let idx = keys.expect("a split command has keys");
            let mut seen = Vec::new();
            let mut n = 0;
            for (slot, cmd) in &parts {
                assert!(!seen.contains(slot), "slot {slot} split twice");
                seen.push(*slot);
                assert_eq!(cmd[0], args[0]);
                let part_keys = crate::command::key_indexes(cmd).expect("a split part parses");
                assert!(part_keys.iter().all(|&i| key_slot(&cmd[i]) == *slot));
                n += part_keys.len();
            }
            assert_eq!(n, idx.len(), "keys lost or added by the split of {args:?}");
        }
        ClusterPlan::CrossSlot(idx) => {
            assert!(idx.len() >= 2 && idx.iter().all(|&i| i < args.len()));
        }
    }
    let slots = slots_of([&args[..]]);
    assert!(slots.iter().all(|&s| s < SLOTS) && slots.windows(2).all(|w| w[0] < w[1]));

    // The redirection, as the sink and the cluster client follow it.
    let text = Bytes::copy_from_slice(rest);
    let Some(r) = ServerError::new(text).redirect() else {
        return;
    };
    let Some(mut to) = Node::parse_addr(&r.addr) else {
        return;
    };
    if to.host.is_empty() {
        to.host = "127.0.0.1".into();
    }
    let nodes = "a 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-8191\n\
                 b 127.0.0.1:7001@17001 master - 0 0 2 connected 8192-16383\n\
                 c 127.0.0.1:7002@17002 slave a 0 0 1 connected\n";
    let map = SlotMap::from_nodes(nodes).expect("a valid CLUSTER NODES text");
    let mut topo = ClusterTopology::new(map, TopologySource::Nodes);
    let moved = topo.update_from_moved(r.slot, &to.addr());
    if r.slot < SLOTS {
        let owner = topo
            .master_for_slot(r.slot)
            .expect("every slot has a master");
        if moved {
            assert_eq!(
                (owner.host.as_str(), owner.port),
                (to.host.as_str(), to.port)
            );
        }
    } else {
        assert!(!moved);
    }
}
