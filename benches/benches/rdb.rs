//! RDB decoding paths of `rdb-parser`, on one in-memory file ([`benches::mixed_rdb`]):
//!
//! - `pass_through`: the raw pass-through of `import` and the full sync: the visitor answers
//!   [`Want::Nothing`] for every key and takes the raw value pieces
//!   ([`Options::raw_values`]); values are only measured, the CRC still computed;
//! - `count`: [`Want::Count`] (what `rdb stats` asks): element counts from the headers;
//! - `items`: every item decoded and visited, borrowed;
//! - `events`: the owned [`rdb_parser::Event`] iterator.
//!
//! Each iteration decodes the whole file from a `BytesMut` built outside the timing.

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::hint::black_box;
use std::ops::ControlFlow;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use rdb_parser::{Item, KeyRef, Options, RdbDecoder, Visitor, Want};

/// Counts keys, items, raw bytes and elements; answers `want` for every key.
struct Sum {
    want: Want,
    keys: u64,
    n: u64,
}

impl Visitor for Sum {
    fn key_start(&mut self, _key: &KeyRef<'_>) -> ControlFlow<()> {
        self.keys += 1;
        ControlFlow::Continue(())
    }
    fn wants(&mut self, _value_len: u64) -> Want {
        self.want
    }
    fn raw_value(&mut self, piece: &[u8]) -> ControlFlow<()> {
        self.n += piece.len() as u64;
        ControlFlow::Continue(())
    }
    fn element_count(&mut self, elements: u64) -> ControlFlow<()> {
        self.n += elements;
        ControlFlow::Continue(())
    }
    fn string(&mut self, piece: Item<'_>) -> ControlFlow<()> {
        self.n += piece.len() as u64;
        ControlFlow::Continue(())
    }
    fn list_item(&mut self, _: Item<'_>) -> ControlFlow<()> {
        self.n += 1;
        ControlFlow::Continue(())
    }
    fn set_member(&mut self, _: Item<'_>) -> ControlFlow<()> {
        self.n += 1;
        ControlFlow::Continue(())
    }
    fn zset_entry(&mut self, _: Item<'_>, _: f64) -> ControlFlow<()> {
        self.n += 1;
        ControlFlow::Continue(())
    }
    fn hash_entry(&mut self, _: Item<'_>, _: Item<'_>, _: Option<u64>) -> ControlFlow<()> {
        self.n += 1;
        ControlFlow::Continue(())
    }
}

fn visit(mut buf: BytesMut, opts: &Options, want: Want) -> (u64, u64) {
    let mut dec = RdbDecoder::new(opts.clone());
    let mut v = Sum {
        want,
        keys: 0,
        n: 0,
    };
    let flow = dec.decode_into(&mut buf, &mut v).expect("valid input");
    assert!(flow.is_continue() && dec.is_done());
    (v.keys, v.n)
}

fn rdb_paths(c: &mut Criterion) {
    let keys = 20_000;
    let data = BytesMut::from(&benches::mixed_rdb(keys)[..]);
    let mut g = c.benchmark_group("rdb_decode");
    g.throughput(Throughput::Bytes(data.len() as u64));
    let raw = Options::default().raw_values(true);
    let plain = Options::default();
    for (name, opts, want) in [
        ("pass_through", &raw, Want::Nothing),
        ("count", &plain, Want::Count),
        ("items", &plain, Want::Items),
    ] {
        assert_eq!(visit(data.clone(), opts, want).0, keys as u64, "{name}");
        g.bench_function(name, |b| {
            b.iter_batched(
                || data.clone(),
                |d| black_box(visit(d, opts, want)),
                BatchSize::LargeInput,
            )
        });
    }
    g.bench_function("events", |b| {
        b.iter_batched(
            || data.clone(),
            |mut d| {
                let mut dec = RdbDecoder::new(Options::default());
                let mut n = 0u64;
                while let Some(ev) = dec.decode(&mut d).expect("valid input") {
                    black_box(&ev);
                    n += 1;
                }
                n
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn config() -> Criterion {
    // Two shared cores: short runs; override on the command line for longer ones.
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = rdb_paths
}
criterion_main!(benches);
