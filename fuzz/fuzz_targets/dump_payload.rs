//! rdb-parser DUMP payloads: parsing arbitrary payloads never panics; a payload built from a
//! value parses to the same events as the bare value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rdb_parser::{dump, Options};

fuzz_target!(|data: &[u8]| {
    let opts = Options::default().max_chunk_items(4).string_piece(33);
    // As a whole payload, checked and unchecked CRC.
    let _ = dump::decode(data, opts.clone());
    let unchecked = dump::decode(data, opts.clone().verify_checksum(false));
    if let Ok(events) = &unchecked {
        // A payload that parses unchecked parses checked once its footer is rebuilt.
        let p = dump::split(data, false).unwrap();
        let rebuilt = dump::build_payload(&p.value, p.version);
        let again = dump::decode(&rebuilt, opts.clone()).expect("rebuilt payload");
        assert_eq!(format!("{again:?}"), format!("{events:?}"));
    }
    // As a bare value with a footer for every family.
    if !data.is_empty() {
        for version in [9u16, 11, 12, 13, 80] {
            let built = dump::build_payload(data, version);
            let _ = dump::decode(&built, opts.clone());
        }
    }
});
