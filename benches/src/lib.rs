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

/// Appends a listpack entry for `s`: a 7-bit integer when it is one, else a short string.
fn lp_entry(lp: &mut Vec<u8>, s: &[u8]) {
    let int = std::str::from_utf8(s)
        .ok()
        .and_then(|t| t.parse::<u8>().ok());
    match int {
        Some(n) if n < 128 && s.len() < 4 && (s == b"0" || s[0] != b'0') => {
            lp.extend_from_slice(&[n, 1]);
        }
        _ => {
            assert!(s.len() < 64, "short strings only");
            lp.push(0x80 | s.len() as u8);
            lp.extend_from_slice(s);
            lp.push(1 + s.len() as u8);
        }
    }
}

/// A listpack blob of `entries`.
fn listpack(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut lp = vec![0u8; 6];
    for e in entries {
        lp_entry(&mut lp, e);
    }
    lp.push(0xff);
    let total = lp.len() as u32;
    lp[..4].copy_from_slice(&total.to_le_bytes());
    lp[4..6].copy_from_slice(&(entries.len().min(65535) as u16).to_le_bytes());
    lp
}

/// An RDB length prefix.
fn rdb_len(out: &mut Vec<u8>, n: usize) {
    if n < 64 {
        out.push(n as u8);
    } else if n < 16384 {
        out.extend_from_slice(&[0x40 | (n >> 8) as u8, n as u8]);
    } else {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

/// An RDB string (plain, length-prefixed).
fn rdb_str(out: &mut Vec<u8>, s: &[u8]) {
    rdb_len(out, s.len());
    out.extend_from_slice(s);
}

/// An RDB 11 (Redis 7.2) file of `keys` keys cycling through the common encodings: plain and
/// integer strings, quicklist (listpack nodes), listpack sets, hashes and sorted sets, an
/// intset, and big hashes and sorted sets in their plain encodings (200 elements); every
/// third key has an expiry. The checksum is 0 (not verified; the CRC is still computed).
pub fn mixed_rdb(keys: usize) -> Vec<u8> {
    let mut f = b"REDIS0011".to_vec();
    f.extend_from_slice(b"\xfa\x09redis-ver\x057.2.4\xfe\x00");
    let small = |n: usize, p: &str| -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("{p}{i}").into_bytes()).collect()
    };
    for i in 0..keys {
        if i % 3 == 0 {
            f.push(0xfc);
            f.extend_from_slice(&(1_900_000_000_000u64 + i as u64).to_le_bytes());
        }
        let key = format!("key:{i:08}");
        let kind = i % 9;
        f.push(match kind {
            0 | 1 => 0,
            2 => 18,
            3 => 20,
            4 => 16,
            5 => 17,
            6 => 11,
            7 => 4,
            _ => 5,
        });
        rdb_str(&mut f, key.as_bytes());
        match kind {
            0 => rdb_str(&mut f, format!("value:{i:024}").as_bytes()),
            1 => {
                f.push(0xc2);
                f.extend_from_slice(&(i as i32).to_le_bytes());
            }
            2 => {
                // One packed node of 50 small integers.
                f.extend_from_slice(&[1, 2]);
                let lp = listpack(
                    &(0..50)
                        .map(|j| format!("{}", j % 100).into_bytes())
                        .collect::<Vec<_>>(),
                );
                rdb_str(&mut f, &lp);
            }
            3 => rdb_str(&mut f, &listpack(&small(20, "member:"))),
            4 => {
                let e: Vec<Vec<u8>> = (0..10)
                    .flat_map(|j| {
                        [
                            format!("field:{j}").into_bytes(),
                            format!("value:{j}").into_bytes(),
                        ]
                    })
                    .collect();
                rdb_str(&mut f, &listpack(&e));
            }
            5 => {
                let e: Vec<Vec<u8>> = (0..10)
                    .flat_map(|j| {
                        [
                            format!("m:{j}").into_bytes(),
                            format!("{}", j * 7).into_bytes(),
                        ]
                    })
                    .collect();
                rdb_str(&mut f, &listpack(&e));
            }
            6 => {
                let mut set = Vec::new();
                set.extend_from_slice(&2u32.to_le_bytes());
                set.extend_from_slice(&16u32.to_le_bytes());
                for j in 0..16i16 {
                    set.extend_from_slice(&(j * 3).to_le_bytes());
                }
                rdb_str(&mut f, &set);
            }
            7 => {
                rdb_len(&mut f, 200);
                for j in 0..200 {
                    rdb_str(&mut f, format!("field:{j:04}").as_bytes());
                    rdb_str(&mut f, format!("value of field {j}").as_bytes());
                }
            }
            _ => {
                rdb_len(&mut f, 200);
                for j in 0..200 {
                    rdb_str(&mut f, format!("member:{j:04}").as_bytes());
                    f.extend_from_slice(&(j as f64 * 1.5).to_le_bytes());
                }
            }
        }
    }
    f.push(0xff);
    f.extend_from_slice(&[0; 8]);
    f
}
