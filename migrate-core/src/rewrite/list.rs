//! Lists: `RPUSH key e...`, in order, in chunks.

use bytes::Bytes;
use rdb_parser::Str;

use super::chunk::Batch;
use super::{Env, KeyCtx, Out};

#[derive(Debug)]
pub(crate) struct ListWriter {
    batch: Batch,
}

impl ListWriter {
    pub(crate) fn new(key: &Bytes) -> ListWriter {
        ListWriter {
            batch: Batch::new(b"RPUSH", key),
        }
    }

    pub(crate) fn push(&mut self, env: &Env, ctx: &mut KeyCtx, out: Out<'_>, items: &[Str]) {
        push_elements(&mut self.batch, env, ctx, out, items);
    }

    pub(crate) fn finish(mut self, env: &Env, ctx: &mut KeyCtx, out: Out<'_>) {
        if let Some(cmd) = self.batch.take() {
            ctx.emit(env, out, cmd);
        }
    }
}

/// Adds single-argument items to `batch`, emitting full commands.
pub(crate) fn push_elements(
    batch: &mut Batch,
    env: &Env,
    ctx: &mut KeyCtx,
    out: Out<'_>,
    items: &[Str],
) {
    for item in items {
        if batch.full_for(env, 1, item.len()) {
            if let Some(cmd) = batch.take() {
                ctx.emit(env, out, cmd);
            }
        }
        batch.push(item.to_bytes());
    }
}
