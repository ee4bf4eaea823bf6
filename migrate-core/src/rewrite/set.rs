//! Sets: `SADD key m...` in chunks.

use bytes::Bytes;
use rdb_parser::Str;

use super::chunk::Batch;
use super::list::push_elements;
use super::{Env, KeyCtx, Out};

#[derive(Debug)]
pub(crate) struct SetWriter {
    batch: Batch,
}

impl SetWriter {
    pub(crate) fn new(key: &Bytes) -> SetWriter {
        SetWriter {
            batch: Batch::new(b"SADD", key),
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
