//! `FT.INFO` / `FT.SYNDUMP` replies from a source server (arbitrary RESP) turned into the
//! `FT.CREATE` that recreates the index on the target: a plan or an error, never a panic
//! (the check lives in `migrate_core::check_search_plan`, shared with the unit tests).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| migrate_core::check_search_plan(input));
