//! Bounded-memory value accumulation: every element read is folded into a 128-bit digest
//! (order-sensitive for strings, lists, sorted sets and stream entries, order-free for sets
//! and hashes); the elements themselves are kept only while they fit a byte budget, so
//! that small values can be compared element by element and big ones by digest.

use bytes::Bytes;

/// FNV-1a over `data` from `seed`, then a splitmix64 finalizer: stable across runs and
/// builds (sampling depends on it).
pub(crate) fn hash64(seed: u64, data: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Whether `key` is in the deterministic sample of fraction `sample`.
pub(crate) fn sampled(key: &[u8], sample: f64) -> bool {
    if sample >= 1.0 {
        return true;
    }
    let h = hash64(0x5eed, key);
    (h as f64) < sample * (u64::MAX as f64)
}

/// One element's hash pair (length-prefixed parts, so `["ab","c"]` ≠ `["a","bc"]`).
fn item_hash(item: &[Bytes]) -> (u64, u64) {
    let mut a = 0x1234_5678u64;
    let mut b = 0x8765_4321u64;
    for part in item {
        let len = (part.len() as u64).to_le_bytes();
        a = hash64(a, &len);
        a = hash64(a, part);
        b = hash64(b.rotate_left(17), &len);
        b = hash64(b, part);
    }
    (a, b)
}

/// What one side read of a collection-like value.
#[derive(Debug, Clone)]
pub(crate) struct Acc {
    ordered: bool,
    pub(crate) count: u64,
    h1: u64,
    h2: u64,
    /// The elements, while within the budget.
    items: Option<Vec<Vec<Bytes>>>,
    bytes: usize,
    budget: usize,
}

impl Acc {
    pub(crate) fn new(ordered: bool, budget: usize) -> Acc {
        Acc {
            ordered,
            count: 0,
            h1: 0,
            h2: 0,
            items: Some(Vec::new()),
            bytes: 0,
            budget,
        }
    }

    pub(crate) fn push(&mut self, item: Vec<Bytes>) {
        let (a, b) = item_hash(&item);
        self.count += 1;
        if self.ordered {
            self.h1 = mix(self.h1.rotate_left(7) ^ a);
            self.h2 = mix(self.h2.rotate_left(11) ^ b);
        } else {
            self.h1 = self.h1.wrapping_add(a);
            self.h2 = self.h2.wrapping_add(b);
        }
        if let Some(items) = &mut self.items {
            self.bytes += item.iter().map(|p| p.len() + 8).sum::<usize>();
            if self.bytes > self.budget {
                self.items = None;
            } else {
                items.push(item);
            }
        }
    }

    /// Whether every element was kept.
    pub(crate) fn is_kept(&self) -> bool {
        self.items.is_some()
    }

    /// The elements (sorted for unordered values), when all were kept.
    pub(crate) fn items(&self) -> Option<Vec<&Vec<Bytes>>> {
        let items = self.items.as_ref()?;
        let mut v: Vec<&Vec<Bytes>> = items.iter().collect();
        if !self.ordered {
            v.sort();
            v.dedup();
        }
        Some(v)
    }

    /// Whether the digests (and counts) agree.
    pub(crate) fn same_digest(&self, other: &Acc) -> bool {
        (self.count, self.h1, self.h2) == (other.count, other.h1, other.h2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(ordered: bool, budget: usize, items: &[&str]) -> Acc {
        let mut a = Acc::new(ordered, budget);
        for i in items {
            a.push(vec![Bytes::copy_from_slice(i.as_bytes())]);
        }
        a
    }

    #[test]
    fn digests() {
        assert!(acc(false, 0, &["a", "b"]).same_digest(&acc(false, 0, &["b", "a"])));
        assert!(!acc(true, 0, &["a", "b"]).same_digest(&acc(true, 0, &["b", "a"])));
        assert!(!acc(false, 0, &["a", "b"]).same_digest(&acc(false, 0, &["a", "c"])));
        assert!(acc(true, 0, &["a"]).items().is_none());
        assert_eq!(acc(false, 100, &["b", "a"]).items().unwrap().len(), 2);
        let mut x = Acc::new(true, 100);
        x.push(vec![Bytes::from_static(b"ab"), Bytes::from_static(b"c")]);
        let mut y = Acc::new(true, 100);
        y.push(vec![Bytes::from_static(b"a"), Bytes::from_static(b"bc")]);
        assert!(!x.same_digest(&y));
    }

    #[test]
    fn sampling_is_deterministic() {
        let n = (0..10_000)
            .filter(|i| sampled(format!("key:{i}").as_bytes(), 0.25))
            .count();
        assert!((2000..3000).contains(&n), "{n}");
        assert!(sampled(b"anything", 1.0));
        assert_eq!(sampled(b"k:1", 0.5), sampled(b"k:1", 0.5));
    }
}
