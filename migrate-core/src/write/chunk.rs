//! Splitting big writes into commands under a byte budget.
//!
//! A key with millions of elements (or a string of hundreds of megabytes) cannot go to the
//! target as one command when it exceeds the target's `proto-max-bulk-len` or query buffer,
//! and should not as one command anyway: it would sit whole in the writer's window and stall
//! the target for its whole length. These helpers cut it into commands of at most a given
//! encoded size, without copying the arguments ([`Bytes`] handles are cloned, string parts are
//! slices).
//!
//! The pieces are not atomic together: a reader of the target may observe a partly written
//! key, and writing into an existing key appends to it (delete or `RESTORE ... REPLACE`
//! first when replacing).

use bytes::Bytes;

/// Encoded size of one bulk string of `len` bytes: `$<len>\r\n<data>\r\n`.
fn bulk_len(len: usize) -> usize {
    1 + decimal_digits(len) + 2 + len + 2
}

fn decimal_digits(mut n: usize) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

/// Largest command header: `*` + 20 digits + CRLF.
const MAX_HEADER: usize = 23;

/// Splits `items` into commands `prefix + items...` of at most `max_bytes` encoded bytes,
/// keeping groups of `group` consecutive items together (1 for `RPUSH`/`SADD`, 2 for
/// `HSET field value` or `ZADD score member`, 3 for `GEOADD lon lat member`).
///
/// Every command holds at least one group, even when that group alone exceeds the budget.
/// See [`ChunkItems::max_groups`] to bound the number of groups per command as well.
///
/// ```
/// use bytes::Bytes;
/// use migrate_core::chunk_items;
///
/// let prefix = vec![Bytes::from_static(b"RPUSH"), Bytes::from_static(b"list")];
/// let items = (0..1000).map(|i| Bytes::from(format!("element-{i}")));
/// let commands: Vec<Vec<Bytes>> = chunk_items(prefix, items, 1, 1024).collect();
/// assert!(commands.len() > 1);
/// for cmd in &commands {
///     assert_eq!(&cmd[..2], [&b"RPUSH"[..], &b"list"[..]]);
///     assert!(resp_codec::command_len(cmd) <= 1024);
/// }
/// assert_eq!(commands.iter().map(|c| c.len() - 2).sum::<usize>(), 1000);
/// ```
pub fn chunk_items<I>(
    prefix: Vec<Bytes>,
    items: I,
    group: usize,
    max_bytes: usize,
) -> ChunkItems<I::IntoIter>
where
    I: IntoIterator<Item = Bytes>,
{
    let prefix_bytes = prefix.iter().map(|a| bulk_len(a.len())).sum();
    ChunkItems {
        prefix,
        prefix_bytes,
        items: items.into_iter(),
        carry: None,
        group: group.max(1),
        max_bytes,
        max_groups: usize::MAX,
    }
}

/// The iterator returned by [`chunk_items`]: each item is one command's arguments.
#[derive(Debug)]
pub struct ChunkItems<I: Iterator<Item = Bytes>> {
    prefix: Vec<Bytes>,
    prefix_bytes: usize,
    items: I,
    /// A group taken from `items` that did not fit the previous command, with its size.
    carry: Option<(Vec<Bytes>, usize)>,
    group: usize,
    max_bytes: usize,
    max_groups: usize,
}

impl<I: Iterator<Item = Bytes>> ChunkItems<I> {
    /// Also bounds the number of groups per command (at least 1).
    pub fn max_groups(mut self, n: usize) -> Self {
        self.max_groups = n.max(1);
        self
    }

    fn next_group(&mut self) -> Option<(Vec<Bytes>, usize)> {
        if let Some(carried) = self.carry.take() {
            return Some(carried);
        }
        let group: Vec<Bytes> = self.items.by_ref().take(self.group).collect();
        if group.is_empty() {
            return None;
        }
        let size = group.iter().map(|a| bulk_len(a.len())).sum();
        Some((group, size))
    }
}

impl<I: Iterator<Item = Bytes>> Iterator for ChunkItems<I> {
    type Item = Vec<Bytes>;

    fn next(&mut self) -> Option<Vec<Bytes>> {
        let mut cmd = self.prefix.clone();
        let mut size = MAX_HEADER + self.prefix_bytes;
        let mut groups = 0;
        while groups < self.max_groups {
            let Some((group, group_size)) = self.next_group() else {
                break;
            };
            if groups > 0 && size + group_size > self.max_bytes {
                self.carry = Some((group, group_size));
                break;
            }
            size += group_size;
            cmd.extend(group);
            groups += 1;
        }
        (groups > 0).then_some(cmd)
    }
}

/// Splits writing a string value into `SET key part0` followed by `APPEND key part`
/// commands of at most `max_bytes` encoded bytes each. The parts are slices of `value`
/// (no copy). An empty value gives one `SET`.
///
/// This keeps each command small (for the window, the query buffer and the time the target
/// spends on one command); it does not get around `proto-max-bulk-len`: the target refuses
/// to grow a string beyond it (`APPEND` answers `string exceeds maximum allowed size`).
///
/// ```
/// use bytes::Bytes;
/// use migrate_core::chunk_string;
///
/// let value = Bytes::from(vec![b'x'; 10_000]);
/// let cmds: Vec<Vec<Bytes>> = chunk_string(Bytes::from_static(b"big"), value, 4096).collect();
/// assert_eq!(cmds.len(), 3);
/// assert_eq!(cmds[0][0], "SET");
/// assert_eq!(cmds[1][0], "APPEND");
/// assert_eq!(cmds.iter().map(|c| c[2].len()).sum::<usize>(), 10_000);
/// assert!(cmds.iter().all(|c| resp_codec::command_len(c) <= 4096));
/// ```
pub fn chunk_string(key: Bytes, value: Bytes, max_bytes: usize) -> ChunkString {
    // "*3\r\n" + "$6\r\nAPPEND\r\n" + key + the part's own header and CRLF.
    let overhead = 4 + bulk_len(6) + bulk_len(key.len()) + 1 + decimal_digits(max_bytes) + 4;
    ChunkString {
        key,
        value,
        part: max_bytes.saturating_sub(overhead).max(1),
        first: true,
    }
}

/// The iterator returned by [`chunk_string`].
#[derive(Debug, Clone)]
pub struct ChunkString {
    key: Bytes,
    value: Bytes,
    part: usize,
    first: bool,
}

impl Iterator for ChunkString {
    type Item = Vec<Bytes>;

    fn next(&mut self) -> Option<Vec<Bytes>> {
        if self.value.is_empty() && !self.first {
            return None;
        }
        let n = self.part.min(self.value.len());
        let part = self.value.split_to(n);
        let name: &'static [u8] = if self.first { b"SET" } else { b"APPEND" };
        self.first = false;
        Some(vec![Bytes::from_static(name), self.key.clone(), part])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use resp_codec::command_len;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn groups_stay_together_and_fit() {
        let prefix = vec![b("HSET"), b("h")];
        let items: Vec<Bytes> = (0..200)
            .flat_map(|i| [b(&format!("field{i}")), b(&"v".repeat(i % 37))])
            .collect();
        let cmds: Vec<_> = chunk_items(prefix, items.clone(), 2, 300).collect();
        let mut rebuilt = Vec::new();
        for c in &cmds {
            assert!(command_len(c) <= 300, "{}", command_len(c));
            assert_eq!((c.len() - 2) % 2, 0);
            rebuilt.extend_from_slice(&c[2..]);
        }
        assert_eq!(rebuilt, items);
    }

    #[test]
    fn oversized_group_goes_alone_and_max_groups_bounds() {
        let prefix = vec![b("SADD"), b("s")];
        let items = vec![b("a"), Bytes::from(vec![b'x'; 500]), b("c"), b("d")];
        let cmds: Vec<_> = chunk_items(prefix.clone(), items.clone(), 1, 100).collect();
        assert_eq!(cmds.len(), 3);
        assert_eq!(cmds[1].len(), 3);
        let cmds: Vec<_> = chunk_items(prefix, items, 1, 1 << 20)
            .max_groups(3)
            .collect();
        assert_eq!(cmds.iter().map(Vec::len).collect::<Vec<_>>(), [5, 3]);
        assert_eq!(chunk_items(vec![b("X")], Vec::new(), 1, 10).count(), 0);
    }

    #[test]
    fn strings() {
        let cmds: Vec<_> = chunk_string(b("k"), Bytes::new(), 100).collect();
        assert_eq!(cmds, vec![vec![b("SET"), b("k"), Bytes::new()]]);
        let v = Bytes::from((0..=255u8).cycle().take(5000).collect::<Vec<_>>());
        let cmds: Vec<_> = chunk_string(b("key"), v.clone(), 1000).collect();
        let joined: Vec<u8> = cmds.iter().flat_map(|c| c[2].to_vec()).collect();
        assert_eq!(joined, v);
        assert!(cmds.iter().all(|c| command_len(c) <= 1000));
        assert!(cmds.len() <= 6);
    }
}
