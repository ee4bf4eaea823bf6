//! The verifier's replies (`TYPE`/`PTTL`, first and further chunks of every kind of key,
//! `XINFO STREAM FULL`, `HPEXPIRETIME`, `DUMP`, `TOPK.LIST`) as arbitrary RESP, and its
//! routing of an `ASK` reply: never a panic, what remains to read lies ahead (the check
//! lives in `migrate_core::check_verify_replies`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| migrate_core::check_verify_replies(input));
