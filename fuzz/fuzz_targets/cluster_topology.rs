//! A cluster's topology replies (arbitrary bytes read as RESP `CLUSTER SHARDS` /
//! `CLUSTER SLOTS` replies, and as `CLUSTER NODES` text) turned into a slot map, then
//! updated by a `MOVED`: a map or an error, never a panic or an unbounded allocation.
//! The same bytes are read as the replies of Valkey 9 atomic slot migrations
//! (`CLUSTER GETSLOTMIGRATIONS`, the target's fence hash) and a `CLUSTER SYNCSLOTS` marker.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use migrate_core::cluster::SlotMap;
use resp_codec::FrameDecoder;

fuzz_target!(|input: &[u8]| {
    let mut buf = BytesMut::from(input);
    let mut decoder = FrameDecoder::default();
    while let Ok(Some((frame, _))) = decoder.decode(&mut buf) {
        for map in [SlotMap::from_shards(&frame), SlotMap::from_slots(&frame)]
            .into_iter()
            .flatten()
        {
            exercise(map);
        }
    }
    if let Ok(text) = std::str::from_utf8(input) {
        if let Ok(map) = SlotMap::from_nodes(text) {
            exercise(map);
        }
    }
    migrate_core::check_asm_replies(input);
});

fn exercise(mut map: SlotMap) {
    let _ = map.is_complete();
    let _ = map.unassigned();
    let masters: Vec<_> = map.shards().iter().map(|s| s.master.clone()).collect();
    for m in &masters {
        let _ = map.slots_of(m);
    }
    let _ = map.shard_for_slot(0);
    map.fill_unknown_hosts("127.0.0.1");
    let _ = map.update_from_moved(16383, "127.0.0.1", 7000);
    let _ = map.master_for_slot(16383);
}
