//! Hashes: `HSET key f v...` in chunks (`HMSET` before 4.0), field TTLs as
//! `HPEXPIREAT key ms FIELDS n f...` after the chunk that wrote the fields.

use bytes::Bytes;
use rdb_parser::HashEntry;

use super::chunk::Batch;
use super::{Env, KeyCtx, Loss, Out};

#[derive(Debug)]
pub(crate) struct HashWriter {
    batch: Batch,
    /// Field TTLs of the fields in `batch`: written once the batch is sent.
    ttls: Vec<(u64, Bytes)>,
}

impl HashWriter {
    pub(crate) fn new(env: &Env, key: &Bytes) -> HashWriter {
        let name: &'static [u8] = if env.at_least(4, 0) {
            b"HSET"
        } else {
            b"HMSET"
        };
        HashWriter {
            batch: Batch::new(name, key),
            ttls: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, env: &Env, ctx: &mut KeyCtx, out: Out<'_>, items: &[HashEntry]) {
        for e in items {
            if let Some(at) = e.expire_at_ms {
                if i64::try_from(at).is_ok_and(|at| at <= env.now_ms) {
                    ctx.expired_fields += 1;
                    continue;
                }
            }
            if self.batch.full_for(env, 2, e.field.len() + e.value.len()) {
                self.flush(env, ctx, out);
            }
            let field = e.field.to_bytes();
            if let Some(at) = e.expire_at_ms {
                if env.target.has_hash_field_ttl() {
                    self.ttls.push((at, field.clone()));
                } else {
                    ctx.lose(Loss::FieldTtls { fields: 1 });
                }
            }
            self.batch.push(field);
            self.batch.push(e.value.to_bytes());
        }
    }

    fn flush(&mut self, env: &Env, ctx: &mut KeyCtx, out: Out<'_>) {
        let Some(cmd) = self.batch.take() else {
            return;
        };
        ctx.emit(env, out, cmd);
        if self.ttls.is_empty() {
            return;
        }
        // One HPEXPIREAT per distinct time, within the argument budget.
        let mut ttls = std::mem::take(&mut self.ttls);
        ttls.sort_unstable_by_key(|(at, _)| *at);
        let max = env.opts.max_command_args.max(1);
        for group in ttls.chunk_by(|a, b| a.0 == b.0) {
            let at = Bytes::from(group[0].0.to_string());
            for part in group.chunks(max) {
                let mut args = Vec::with_capacity(5 + part.len());
                args.push(Bytes::from_static(b"HPEXPIREAT"));
                args.push(ctx.key.clone());
                args.push(at.clone());
                args.push(Bytes::from_static(b"FIELDS"));
                args.push(Bytes::from(part.len().to_string()));
                args.extend(part.iter().map(|(_, f)| f.clone()));
                ctx.emit(env, out, args);
            }
        }
    }

    pub(crate) fn finish(mut self, env: &Env, ctx: &mut KeyCtx, out: Out<'_>) {
        if !self.batch.is_empty() {
            self.flush(env, ctx, out);
        }
    }
}
