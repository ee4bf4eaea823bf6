//! Shared workload generators for the benchmarks in `benches/benches/`.
//!
//! Run them with `cargo bench -p benches`; results are recorded in each crate's README.
//!
//! ```
//! let input = benches::small_set_commands(1024);
//! assert!(input.len() >= 1024);
//! ```

/// `*3 $3 SET $16 <key> $64 <value>` commands, repeated until at least `bytes` long.
pub fn small_set_commands(bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes + 128);
    let mut i = 0u64;
    while out.len() < bytes {
        let key = format!("key:{i:012}");
        let value = format!("{:064}", i);
        out.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$16\r\n");
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\r\n$64\r\n");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
        i += 1;
    }
    out
}
