//! Cutting big values into commands of bounded size.

use bytes::Bytes;

use super::Env;

/// Accumulates `NAME key item...` and says when the command is full.
///
/// An item is one element (`RPUSH`, `SADD`) or a pair (`ZADD` score/member, `HSET`
/// field/value); items are never split across commands. A command is cut before an item
/// that would take it above the argument or byte budget; one item larger than the budget
/// is a command of its own.
#[derive(Debug)]
pub(crate) struct Batch {
    head: [Bytes; 2],
    args: Vec<Bytes>,
    bytes: usize,
}

impl Batch {
    pub(crate) fn new(name: &'static [u8], key: &Bytes) -> Batch {
        Batch {
            head: [Bytes::from_static(name), key.clone()],
            args: Vec::new(),
            bytes: 0,
        }
    }

    /// Whether adding an item of `n` arguments and `size` bytes must first cut the command.
    pub(crate) fn full_for(&self, env: &Env, n: usize, size: usize) -> bool {
        !self.args.is_empty()
            && (self.args.len() + n > env.opts.max_command_args
                || self.bytes + size > env.opts.max_command_bytes)
    }

    /// Adds one argument of an item.
    pub(crate) fn push(&mut self, arg: Bytes) {
        self.bytes += arg.len();
        self.args.push(arg);
    }

    /// `true` when no item is pending.
    pub(crate) fn is_empty(&self) -> bool {
        self.args.is_empty()
    }

    /// The pending command (name, key, items), leaving the batch empty.
    pub(crate) fn take(&mut self) -> Option<Vec<Bytes>> {
        if self.args.is_empty() {
            return None;
        }
        let mut cmd = Vec::with_capacity(2 + self.args.len());
        cmd.extend(self.head.iter().cloned());
        cmd.append(&mut self.args);
        self.bytes = 0;
        Some(cmd)
    }
}
