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

/// `count` bulk strings of `size` bytes each: `$<size>\r\n<bytes>\r\n`.
pub fn large_bulks(count: usize, size: usize) -> Vec<u8> {
    let header = format!("${size}\r\n");
    let mut out = Vec::with_capacity(count * (size + header.len() + 2));
    for i in 0..count {
        out.extend_from_slice(header.as_bytes());
        out.extend((0..size).map(|j| b'a' + ((i + j) % 26) as u8));
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// One array of `n` bulk strings (`member:<i>`), like an `SMEMBERS`/`LRANGE` reply.
pub fn big_array(n: usize) -> Vec<u8> {
    let mut out = format!("*{n}\r\n").into_bytes();
    for i in 0..n {
        let m = format!("member:{i}");
        out.extend_from_slice(format!("${}\r\n{m}\r\n", m.len()).as_bytes());
    }
    out
}

/// A RESP3 reply mix, repeated until at least `bytes` long: a map with a double and an integer
/// (`HGETALL`-like), a pub/sub push, a bare double, a set, a boolean and a null.
/// Returns the input and its number of top-level frames.
pub fn resp3_mix(bytes: usize) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(bytes + 256);
    let mut frames = 0;
    let mut i = 0u64;
    while out.len() < bytes {
        out.extend_from_slice(
            format!(
                "%3\r\n$5\r\nfield\r\n,{}.25\r\n$5\r\ncount\r\n:{i}\r\n$4\r\nname\r\n$12\r\nuser:{i:07}\r\n",
                i % 1000
            )
            .as_bytes(),
        );
        out.extend_from_slice(
            format!(">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$16\r\npayload-{i:08}\r\n").as_bytes(),
        );
        out.extend_from_slice(format!(",{}.5e-3\r\n", i % 977).as_bytes());
        out.extend_from_slice(b"~3\r\n+a\r\n+b\r\n:3\r\n#t\r\n_\r\n");
        frames += 6;
        i += 1;
    }
    (out, frames)
}
