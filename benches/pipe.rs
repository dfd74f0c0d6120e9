//! In-process benches of the pipe's byte ring: send and receive on one
//! thread (no coherence traffic: the cost of the code itself), for message
//! sizes from a word to a page, copying and zero-copy. Each message's length
//! goes through `black_box`, so it is a run-time length, as a user's is.
//!
//! Cross-process latency and throughput are `procring bench`'s job.

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use procring::Pipe;

fn send_recv_one_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipe/send_bytes+recv_bytes_into, one thread");
    let (mut tx, mut rx) = Pipe::simplex(1 << 16).unwrap();
    let mut buf = vec![0u8; 4096];
    for n in [8usize, 24, 64, 512, 4096] {
        let msg = vec![7u8; n];
        g.throughput(Throughput::Bytes(n as u64));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                tx.try_send_bytes(black_box(&msg[..])).unwrap();
                black_box(rx.try_recv_bytes_into(&mut buf).unwrap())
            })
        });
    }
    g.finish();
}

fn zero_copy(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipe/zero-copy, one thread");
    let (mut tx, mut rx) = Pipe::simplex(1 << 16).unwrap();
    for n in [64usize, 4096] {
        g.throughput(Throughput::Bytes(n as u64));
        g.bench_function(BenchmarkId::new("reserve+commit, read (one byte touched)", n), |b| {
            b.iter(|| {
                let mut out = tx.try_reserve(black_box(n)).unwrap();
                out[0] = black_box(1);
                out.commit();
                black_box(rx.try_read().unwrap()[0])
            })
        });
    }
    g.finish();
}

criterion_group!(benches, send_recv_one_thread, zero_copy);
criterion_main!(benches);
