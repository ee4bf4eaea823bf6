//! Scan mode's replies for big keys read in pieces (`HSCAN`/`ZSCAN`/`SSCAN`/`LRANGE`,
//! `HPEXPIRETIME`) and big streams (`XRANGE`, `XINFO STREAM`/`GROUPS`/`CONSUMERS`,
//! `XPENDING`) as arbitrary RESP: never a panic, ids that print back to themselves (the
//! check lives in `migrate_core::check_scan_replies`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| migrate_core::check_scan_replies(input));
