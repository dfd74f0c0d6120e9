//! In-process benches of the core: the SPSC ring's send/recv on one thread
//! (no coherence traffic: the cost of the code itself), batches, message
//! sizes, threads on two cores, and the eventcount's fast path. Each sits
//! beside a trivial baseline measured the same way.
//!
//! Cross-process latency and throughput are `procring bench`'s job.

#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::hint::black_box;
use std::sync::atomic::{fence, AtomicU64, Ordering};

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use procring::spsc;

fn send_recv_one_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("spsc/send+recv, one thread");
    g.throughput(Throughput::Elements(1));
    // Baseline: what a Release store + Acquire load of a position costs.
    let pos = AtomicU64::new(0);
    g.bench_function("baseline: store+load of a u64", |b| {
        b.iter(|| {
            pos.store(black_box(1), Ordering::Release);
            black_box(pos.load(Ordering::Acquire))
        })
    });
    g.bench_function("baseline: + fence(SeqCst)", |b| {
        b.iter(|| {
            pos.store(black_box(1), Ordering::Release);
            fence(Ordering::SeqCst);
            black_box(pos.load(Ordering::Acquire))
        })
    });
    macro_rules! sizes {
        ($($n:literal),*) => {$(
            let (mut tx, mut rx) = spsc::channel::<[u8; $n]>(1024).unwrap();
            g.throughput(Throughput::Bytes($n));
            g.bench_function(BenchmarkId::new("send+recv", $n), |b| {
                b.iter(|| {
                    tx.try_send(black_box([7u8; $n])).unwrap();
                    black_box(rx.try_recv().unwrap())
                })
            });
        )*};
    }
    sizes!(8, 64, 512, 4096);
    g.finish();
}

fn batches(c: &mut Criterion) {
    let mut g = c.benchmark_group("spsc/batch, one thread");
    for n in [1usize, 8, 64, 256] {
        let (mut tx, mut rx) = spsc::channel::<u64>(1024).unwrap();
        let items: Vec<u64> = (0..n as u64).collect();
        let mut out = vec![0u64; n];
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::new("send_batch+recv_batch", n), |b| {
            b.iter(|| {
                tx.try_send_batch(black_box(&items)).unwrap();
                black_box(rx.try_recv_batch(&mut out).unwrap())
            })
        });
    }
    g.finish();
}

fn zero_copy(c: &mut Criterion) {
    let mut g = c.benchmark_group("spsc/zero-copy, one thread");
    g.throughput(Throughput::Bytes(4096));
    let (mut tx, mut rx) = spsc::channel::<[u8; 4096]>(64).unwrap();
    g.bench_function("reserve+commit, recv_ref (4096 B, one byte touched)", |b| {
        b.iter(|| {
            let mut slot = tx.try_reserve().unwrap();
            slot[0] = black_box(1);
            slot.commit();
            black_box(rx.try_recv_ref().unwrap()[0])
        })
    });
    g.finish();
}

fn two_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("spsc/stream, two threads");
    const N: u64 = 1 << 16;
    g.throughput(Throughput::Elements(N));
    for (name, spin) in [("busy-poll", u32::MAX), ("blocking", procring::Options::DEFAULT_SPIN)] {
        g.bench_function(BenchmarkId::new("u64 x 65536", name), |b| {
            b.iter_batched(
                || {
                    let (mut tx, mut rx) = spsc::channel::<u64>(4096).unwrap();
                    tx.set_spin(spin);
                    rx.set_spin(spin);
                    (tx, rx)
                },
                |(mut tx, mut rx)| {
                    let t = std::thread::spawn(move || (0..N).for_each(|i| tx.send(i).unwrap()));
                    for _ in 0..N {
                        black_box(rx.recv().unwrap());
                    }
                    t.join().unwrap();
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

fn eventcount_fast_path(c: &mut Criterion) {
    // The cost a send pays for wakeups when nobody sleeps: a publish plus
    // the notify's barrier and one load. Against the plain publish.
    let mut g = c.benchmark_group("eventcount fast path (no waiter)");
    g.throughput(Throughput::Elements(1));
    let (mut tx, mut _rx) = spsc::channel::<u64>(1 << 20).unwrap();
    let mut sent = 0u64;
    g.bench_function("try_send (publish + notify)", |b| {
        b.iter(|| {
            if tx.try_send(black_box(sent)).is_err() {
                // Full: start over with a fresh ring. The consumer must stay
                // alive, or every later send finds it gone and starts over.
                (tx, _rx) = spsc::channel::<u64>(1 << 20).unwrap();
            }
            sent += 1;
        })
    });
    g.finish();
}

criterion_group!(benches, send_recv_one_thread, batches, zero_copy, two_threads, eventcount_fast_path);
criterion_main!(benches);
