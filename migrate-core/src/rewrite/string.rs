//! Strings: `SET key v` (with `PXAT` on 6.2+), big ones as `SET` + `APPEND`s.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use rdb_parser::Str;

use super::{Env, KeyCtx, Out};

/// Collects the decoder's pieces and cuts them into commands of
/// [`super::RewriteOptions::max_command_bytes`].
#[derive(Debug, Default)]
pub(crate) struct StringWriter {
    pieces: VecDeque<Bytes>,
    pending: usize,
    sent: bool,
}

impl StringWriter {
    pub(crate) fn push(&mut self, env: &Env, ctx: &mut KeyCtx, out: Out<'_>, s: &Str) {
        let b = s.to_bytes();
        if b.is_empty() {
            return;
        }
        self.pending += b.len();
        self.pieces.push_back(b);
        let max = env.opts.max_command_bytes.max(1);
        while self.pending > max {
            let part = self.take(max);
            self.send(ctx, out, part, None);
        }
    }

    pub(crate) fn finish(mut self, env: &Env, ctx: &mut KeyCtx, out: Out<'_>) {
        if self.pending == 0 && self.sent {
            return;
        }
        let rest = self.take(self.pending);
        // A string written in one command takes its TTL along (6.2+): one command less.
        let pxat = match ctx.expire_at_ms {
            Some(at) if !self.sent && env.at_least(6, 2) => Some(at),
            _ => None,
        };
        self.send(ctx, out, rest, pxat);
        if pxat.is_some() {
            ctx.ttl_written = true;
        }
    }

    /// The first `n` pending bytes, as one buffer (zero-copy when one piece holds them).
    fn take(&mut self, n: usize) -> Bytes {
        self.pending -= n;
        if self.pieces.front().is_some_and(|p| p.len() >= n) {
            let first = &mut self.pieces[0];
            let part = first.split_to(n);
            if first.is_empty() {
                self.pieces.pop_front();
            }
            return part;
        }
        let mut buf = BytesMut::with_capacity(n);
        while buf.len() < n {
            let want = n - buf.len();
            let first = &mut self.pieces[0];
            if first.len() <= want {
                buf.extend_from_slice(first);
                self.pieces.pop_front();
            } else {
                buf.extend_from_slice(&first.split_to(want));
            }
        }
        buf.freeze()
    }

    fn send(&mut self, ctx: &mut KeyCtx, out: Out<'_>, part: Bytes, pxat: Option<i64>) {
        let key = ctx.key.clone();
        if self.sent {
            let args = vec![Bytes::from_static(b"APPEND"), key, part];
            out_append(ctx, out, args);
        } else {
            self.sent = true;
            let mut args = vec![Bytes::from_static(b"SET"), key, part];
            if let Some(at) = pxat {
                args.push(Bytes::from_static(b"PXAT"));
                args.push(Bytes::from(at.to_string()));
            }
            ctx.emit_overwrite(out, args);
        }
    }
}

fn out_append(ctx: &mut KeyCtx, out: Out<'_>, args: Vec<Bytes>) {
    // After the first SET nothing is owed: APPEND extends the string just written.
    ctx.emit_overwrite(out, args);
}
