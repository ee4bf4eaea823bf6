//! Placeholder benchmark: builds the small-SET workload (the codec comparison lands with
//! the resp-codec issue).

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn workload(c: &mut Criterion) {
    let mut group = c.benchmark_group("workload");
    group.throughput(Throughput::Bytes(1 << 20));
    group.bench_function("build 1 MiB of SET commands", |b| {
        b.iter(|| benches::small_set_commands(1 << 20))
    });
    group.finish();
}

criterion_group!(benches, workload);
criterion_main!(benches);
