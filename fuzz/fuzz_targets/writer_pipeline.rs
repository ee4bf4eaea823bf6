//! The target writer's pipeline driven by arbitrary operations and arbitrary server bytes:
//! no panic, and every accepted command gets exactly one outcome, in acceptance order (the
//! check lives in `migrate_core::check_pipeline_script`, shared with the unit tests).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| migrate_core::check_pipeline_script(input));
