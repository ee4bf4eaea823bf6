//! Streams: entries with their ids (`XADD`), `XSETID`, consumer groups, consumers and
//! pending entries. See the module documentation of [`super`] for the exactness rules.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use rdb_parser::{Event, StreamConsumer, StreamEntry, StreamGroup, StreamId, StreamMeta};

use super::chunk::Batch;
use super::{Env, KeyCtx, Loss, Out};

/// Name of the group that creates an empty stream (created and destroyed at once).
const TMP_GROUP: &[u8] = b"redis-migrate:tmp";

/// The field and value of a placeholder entry (for a pending entry that was deleted).
pub(crate) const PLACEHOLDER: (&str, &str) = ("redis-migrate", "placeholder");

#[derive(Debug, Default)]
pub(crate) struct StreamWriter {
    /// Entries held back while the stream fits [`super::RewriteOptions::stream_buffer_bytes`].
    buffered: Vec<StreamEntry>,
    buffered_bytes: usize,
    /// Set once the entries did not fit: they are written as they come.
    streaming: bool,
    /// The last id written with `XADD`.
    last_written: Option<StreamId>,
    meta: Option<StreamMeta>,
    groups: Vec<Group>,
    idmp: bool,
}

#[derive(Debug)]
struct Group {
    header: StreamGroup,
    /// The group's pending entries: id → (delivery time, delivery count).
    pel: BTreeMap<StreamId, (u64, u64)>,
    consumers: Vec<Consumer>,
}

#[derive(Debug)]
struct Consumer {
    header: StreamConsumer,
    pending: Vec<StreamId>,
}

/// `ms-seq`, as `StreamId`'s `Display` writes it.
fn id_bytes(id: StreamId) -> Bytes {
    let mut v = Vec::with_capacity(41);
    push_u64(&mut v, id.ms);
    v.push(b'-');
    push_u64(&mut v, id.seq);
    Bytes::from(v)
}

fn push_u64(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 20];
    let mut i = 20;
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

impl StreamWriter {
    pub(crate) fn push(&mut self, env: &Env, ctx: &mut KeyCtx, out: Out<'_>, ev: &Event) {
        match ev {
            Event::StreamEntries(entries) => {
                if self.streaming {
                    for e in entries {
                        self.xadd(env, ctx, out, e.id, &e.fields);
                    }
                    return;
                }
                for e in entries {
                    self.buffered_bytes += 16
                        + e.fields
                            .iter()
                            .map(|(f, v)| f.len() + v.len() + 16)
                            .sum::<usize>();
                    self.buffered.push(e.clone());
                }
                if self.buffered_bytes > env.opts.stream_buffer_bytes {
                    self.streaming = true;
                    for e in std::mem::take(&mut self.buffered) {
                        self.xadd(env, ctx, out, e.id, &e.fields);
                    }
                }
            }
            Event::StreamMeta(m) => self.meta = Some(m.clone()),
            Event::StreamGroup(g) => self.groups.push(Group {
                header: g.clone(),
                pel: BTreeMap::new(),
                consumers: Vec::new(),
            }),
            Event::StreamPending(p) => {
                if let Some(g) = self.groups.last_mut() {
                    g.pel.extend(
                        p.iter()
                            .map(|p| (p.id, (p.delivery_time_ms, p.delivery_count))),
                    );
                }
            }
            Event::StreamConsumer(c) => {
                if let Some(g) = self.groups.last_mut() {
                    g.consumers.push(Consumer {
                        header: c.clone(),
                        pending: Vec::new(),
                    });
                }
            }
            Event::StreamConsumerPending(ids) => {
                if let Some(c) = self.groups.last_mut().and_then(|g| g.consumers.last_mut()) {
                    c.pending.extend_from_slice(ids);
                }
            }
            Event::StreamIdmp(raw) => self.idmp |= !raw.is_empty(),
            _ => {}
        }
    }

    fn xadd(
        &mut self,
        env: &Env,
        ctx: &mut KeyCtx,
        out: Out<'_>,
        id: StreamId,
        fields: &[(rdb_parser::Str, rdb_parser::Str)],
    ) {
        let mut args = Vec::with_capacity(3 + 2 * fields.len());
        args.push(Bytes::from_static(b"XADD"));
        args.push(ctx.key.clone());
        args.push(id_bytes(id));
        for (f, v) in fields {
            args.push(f.to_bytes());
            args.push(v.to_bytes());
        }
        ctx.emit(env, out, args);
        self.last_written = Some(id);
    }

    /// The stream's last id: its metadata's, or the last entry's (written, or buffered
    /// elsewhere: `buffered_last`), whichever is greater.
    pub(crate) fn last_id(&self, buffered_last: Option<StreamId>) -> StreamId {
        self.meta
            .as_ref()
            .map(|m| m.last_id)
            .into_iter()
            .chain(self.buffered.last().map(|e| e.id))
            .chain(buffered_last)
            .chain(self.last_written)
            .max()
            .unwrap_or_default()
    }

    /// Records that the entry `id` was written with `XADD` (by a caller writing the
    /// entries itself).
    pub(crate) fn written(&mut self, id: StreamId) {
        self.last_written = Some(id);
    }

    /// The pending ids whose entries are not in the stream (deleted after delivery), which
    /// get a placeholder entry; `buffered` says whether an id is among the entries held
    /// back. Records the pending entries that cannot be recreated exactly in `ctx`.
    pub(crate) fn placeholders(
        &self,
        ctx: &mut KeyCtx,
        last_id: StreamId,
        buffered: impl Fn(StreamId) -> bool,
    ) -> Vec<StreamId> {
        let pending: BTreeSet<StreamId> = self
            .groups
            .iter()
            .flat_map(|g| g.pel.keys().copied())
            .collect();
        let mut placeholders = Vec::new();
        let mut unverified = 0u64;
        let mut out_of_range = 0u64;
        for &id in &pending {
            if id > last_id {
                out_of_range += 1;
            } else if self.last_written.is_some_and(|w| id <= w) {
                // Already streamed past it: cannot know whether it exists.
                unverified += 1;
            } else if !buffered(id) {
                placeholders.push(id);
            }
        }
        if unverified > 0 {
            ctx.lose(Loss::PendingUnverified {
                entries: unverified,
            });
        }
        if out_of_range > 0 {
            ctx.lose(Loss::PendingOutOfRange {
                entries: out_of_range,
            });
        }
        placeholders
    }

    pub(crate) fn finish(mut self, env: &Env, ctx: &mut KeyCtx, out: Out<'_>) {
        let last_id = self.last_id(None);
        // Pending ids of entries that are not in the stream (deleted after delivery) get a
        // placeholder entry: claimed, then deleted again.
        let placeholders = self.placeholders(ctx, last_id, |id| {
            self.buffered.binary_search_by_key(&id, |e| e.id).is_ok()
        });
        let placeholder_fields = [(
            rdb_parser::Str::from(PLACEHOLDER.0),
            rdb_parser::Str::from(PLACEHOLDER.1),
        )];
        let entries = std::mem::take(&mut self.buffered);
        let mut ph = placeholders.iter().peekable();
        for e in &entries {
            while let Some(&&p) = ph.peek().filter(|&&&p| p < e.id) {
                self.xadd(env, ctx, out, p, &placeholder_fields);
                ph.next();
            }
            self.xadd(env, ctx, out, e.id, &e.fields);
        }
        for &p in ph {
            self.xadd(env, ctx, out, p, &placeholder_fields);
        }
        self.finish_tail(env, ctx, out, last_id, placeholders);
    }

    /// What follows the entries (and placeholders, all written): the empty stream's
    /// creation, `XSETID`, the groups, consumers and pending entries, the placeholders'
    /// `XDEL`.
    pub(crate) fn finish_tail(
        mut self,
        env: &Env,
        ctx: &mut KeyCtx,
        out: Out<'_>,
        last_id: StreamId,
        placeholders: Vec<StreamId>,
    ) {
        let meta = self.meta.take();
        let key = ctx.key.clone();
        let b = Bytes::from_static;
        if self.last_written.is_none() {
            // An empty stream: created through a temporary group.
            let tmp = b(TMP_GROUP);
            let create = vec![
                b(b"XGROUP"),
                b(b"CREATE"),
                key.clone(),
                tmp.clone(),
                b(b"0"),
                b(b"MKSTREAM"),
            ];
            ctx.emit(env, out, create);
            let destroy = vec![b(b"XGROUP"), b(b"DESTROY"), key.clone(), tmp];
            ctx.emit(env, out, destroy);
        }

        if let Some(m) = &meta {
            let v2 = env.at_least(7, 0) && m.entries_added.is_some();
            if m.last_id != StreamId::default() || v2 {
                let mut args = vec![b(b"XSETID"), key.clone(), id_bytes(m.last_id)];
                if v2 {
                    args.push(b(b"ENTRIESADDED"));
                    args.push(Bytes::from(m.entries_added.unwrap_or(0).to_string()));
                    args.push(b(b"MAXDELETEDID"));
                    args.push(id_bytes(m.max_deleted_id.unwrap_or_default()));
                }
                ctx.emit(env, out, args);
            }
        }

        let now = u64::try_from(env.now_ms).unwrap_or(0);
        for g in &self.groups {
            let mut args = vec![
                b(b"XGROUP"),
                b(b"CREATE"),
                key.clone(),
                g.header.name.clone(),
                id_bytes(g.header.last_id),
            ];
            if let (Some(n), true) = (g.header.entries_read, env.at_least(7, 0)) {
                args.push(b(b"ENTRIESREAD"));
                args.push(Bytes::from(n.to_string()));
            }
            ctx.emit(env, out, args);
            for c in &g.consumers {
                if env.at_least(6, 2) {
                    let args = vec![
                        b(b"XGROUP"),
                        b(b"CREATECONSUMER"),
                        key.clone(),
                        g.header.name.clone(),
                        c.header.name.clone(),
                    ];
                    ctx.emit(env, out, args);
                } else if c.pending.is_empty() {
                    ctx.lose(Loss::IdleConsumers { consumers: 1 });
                }
                self.claim(env, ctx, out, g, c, last_id, now);
            }
        }

        if !placeholders.is_empty() {
            let mut del = Batch::new(b"XDEL", &key);
            for p in placeholders {
                let id = id_bytes(p);
                if del.full_for(env, 1, id.len()) {
                    if let Some(cmd) = del.take() {
                        ctx.emit(env, out, cmd);
                    }
                }
                del.push(id);
            }
            if let Some(cmd) = del.take() {
                ctx.emit(env, out, cmd);
            }
        }
        if self.idmp {
            ctx.lose(Loss::StreamIdmp);
        }
    }

    /// `XCLAIM key group consumer 0 id... TIME ms RETRYCOUNT n FORCE JUSTID`, one command per
    /// run of ids with the same delivery time and count.
    #[allow(clippy::too_many_arguments)]
    fn claim(
        &self,
        env: &Env,
        ctx: &mut KeyCtx,
        out: Out<'_>,
        g: &Group,
        c: &Consumer,
        last_id: StreamId,
        now: u64,
    ) {
        let max = env.opts.max_command_args.max(1);
        let mut run: Vec<StreamId> = Vec::new();
        let mut run_attrs = (0u64, 0u64);
        let mut flush = |ctx: &mut KeyCtx, run: &mut Vec<StreamId>, attrs: (u64, u64)| {
            if run.is_empty() {
                return;
            }
            let b = Bytes::from_static;
            let mut args = Vec::with_capacity(11 + run.len());
            args.extend([
                b(b"XCLAIM"),
                ctx.key.clone(),
                g.header.name.clone(),
                c.header.name.clone(),
                b(b"0"),
            ]);
            args.extend(run.drain(..).map(id_bytes));
            args.extend([
                b(b"TIME"),
                Bytes::from(attrs.0.to_string()),
                b(b"RETRYCOUNT"),
                Bytes::from(attrs.1.to_string()),
                b(b"FORCE"),
                b(b"JUSTID"),
            ]);
            ctx.emit(env, out, args);
        };
        for &id in &c.pending {
            if id > last_id {
                continue; // counted as out of range
            }
            let attrs = g.pel.get(&id).copied().unwrap_or((now, 1));
            if !run.is_empty() && (attrs != run_attrs || run.len() >= max) {
                flush(ctx, &mut run, run_attrs);
            }
            run_attrs = attrs;
            run.push(id);
        }
        flush(ctx, &mut run, run_attrs);
    }
}

#[cfg(test)]
mod id_tests {
    use super::*;

    #[test]
    fn id_bytes_are_the_display_text() {
        for (ms, seq) in [
            (0, 0),
            (1, 9),
            (10, 0),
            (1_700_000_000_123, 42),
            (u64::MAX, u64::MAX),
        ] {
            let id = StreamId { ms, seq };
            assert_eq!(&id_bytes(id)[..], id.to_string().as_bytes());
        }
    }
}
