//! RESP decoding: `resp-codec` against the `redis-protocol` 6 codec, same inputs, same run.
//!
//! Workloads (see the crate README for results):
//! A) ~1 MiB of small `SET` commands, B) 256 × 64 KiB bulks, C) one 50,000-element array,
//! whole and fed in 16 KiB reads, D) a RESP3 mix (maps, doubles, pushes, sets).
//!
//! Each decoder gets the input in a `BytesMut` (built outside the timing for whole inputs; for
//! the 16 KiB reads the appends are timed for both) and decodes every frame, which is dropped.

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use redis_protocol::codec::{Resp2, Resp3};
use resp_codec::RespCodec;
use tokio_util::codec::Decoder;

/// Decodes every frame of `buf`; returns the number of frames.
fn drain<D: Decoder>(mut dec: D, buf: &mut BytesMut) -> usize
where
    D::Error: std::fmt::Debug,
{
    let mut n = 0;
    while let Some(f) = dec.decode(buf).expect("valid input") {
        black_box(f);
        n += 1;
    }
    n
}

/// Feeds `input` in `read`-byte pieces, decoding after each one, as a socket reader would.
fn drain_in_reads<D: Decoder>(mut dec: D, input: &[u8], read: usize) -> usize
where
    D::Error: std::fmt::Debug,
{
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut n = 0;
    for chunk in input.chunks(read) {
        buf.extend_from_slice(chunk);
        while let Some(f) = dec.decode(&mut buf).expect("valid input") {
            black_box(f);
            n += 1;
        }
    }
    n
}

fn whole<D: Decoder, F: Fn() -> D>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    input: &[u8],
    frames: usize,
    make: F,
) where
    D::Error: std::fmt::Debug,
{
    assert_eq!(drain(make(), &mut BytesMut::from(input)), frames, "{name}");
    g.bench_function(name, |b| {
        b.iter_batched(
            || BytesMut::from(input),
            |mut buf| drain(make(), &mut buf),
            BatchSize::LargeInput,
        )
    });
}

fn count(input: &[u8]) -> usize {
    drain(RespCodec::default(), &mut BytesMut::from(input))
}

fn a_small_set(c: &mut Criterion) {
    let input = benches::small_set_commands(1 << 20);
    let frames = count(&input);
    let mut g = c.benchmark_group("A_small_set_1MiB");
    g.throughput(Throughput::Elements(frames as u64));
    whole(&mut g, "resp-codec", &input, frames, RespCodec::default);
    whole(
        &mut g,
        "redis-protocol-resp2",
        &input,
        frames,
        Resp2::default,
    );
    whole(
        &mut g,
        "redis-protocol-resp3",
        &input,
        frames,
        Resp3::default,
    );
    g.finish();
}

fn b_large_bulks(c: &mut Criterion) {
    let input = benches::large_bulks(256, 64 * 1024);
    let mut g = c.benchmark_group("B_bulks_256x64KiB");
    g.throughput(Throughput::Elements(256));
    whole(&mut g, "resp-codec", &input, 256, RespCodec::default);
    whole(&mut g, "redis-protocol-resp2", &input, 256, Resp2::default);
    g.finish();
}

fn c_big_array(c: &mut Criterion) {
    let input = benches::big_array(50_000);
    let mut g = c.benchmark_group("C_array_50k");
    g.throughput(Throughput::Elements(1));
    whole(&mut g, "resp-codec/whole", &input, 1, RespCodec::default);
    whole(
        &mut g,
        "redis-protocol-resp2/whole",
        &input,
        1,
        Resp2::default,
    );
    let read = 16 * 1024;
    assert_eq!(drain_in_reads(RespCodec::default(), &input, read), 1);
    assert_eq!(drain_in_reads(Resp2::default(), &input, read), 1);
    g.bench_function("resp-codec/16KiB-reads", |b| {
        b.iter(|| drain_in_reads(RespCodec::default(), &input, read))
    });
    g.bench_function("redis-protocol-resp2/16KiB-reads", |b| {
        b.iter(|| drain_in_reads(Resp2::default(), &input, read))
    });
    g.finish();
}

fn d_resp3_mix(c: &mut Criterion) {
    let (input, frames) = benches::resp3_mix(1 << 20);
    let mut g = c.benchmark_group("D_resp3_mix_1MiB");
    g.throughput(Throughput::Elements(frames as u64));
    whole(&mut g, "resp-codec", &input, frames, RespCodec::default);
    whole(
        &mut g,
        "redis-protocol-resp3",
        &input,
        frames,
        Resp3::default,
    );
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
    targets = a_small_set, b_large_bulks, c_big_array, d_resp3_mix
}
criterion_main!(benches);
