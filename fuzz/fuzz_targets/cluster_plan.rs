//! The cluster sink's plan of a replicated command (`migrate::cluster_sink::plan`: one
//! slot, split per slot, every master, cross-slot) for arbitrary argument vectors, and its
//! reading of a `MOVED`/`ASK` reply: never a panic; splits keep every key in its slot's
//! command (the check lives in `migrate_core::check_cluster_plan`).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| migrate_core::check_cluster_plan(input));
