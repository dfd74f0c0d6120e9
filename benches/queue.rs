//! In-process benches of the MPMC queue: one thread's send+recv per message
//! size (the code's own cost), and threads on both sides. The SPSC ring's
//! figures (`benches/spsc.rs`) are the baseline.
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use procring::{spsc, Queue};

fn send_recv_one_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue/send+recv, one thread");
    g.throughput(Throughput::Elements(1));
    let (mut tx, mut rx) = spsc::channel::<[u8; 8]>(1024).unwrap();
    g.bench_function("baseline: spsc, 8 B", |b| {
        b.iter(|| {
            tx.try_send(black_box([1; 8])).unwrap();
            black_box(rx.try_recv().unwrap())
        })
    });
    macro_rules! sizes {
        ($($n:literal),*) => {$(
            let q = Queue::<[u8; $n]>::new(1024).unwrap();
            g.bench_function(BenchmarkId::new("queue", $n), |b| {
                b.iter(|| {
                    q.try_send(black_box([1; $n])).unwrap();
                    black_box(q.try_recv().unwrap())
                })
            });
        )*};
    }
    sizes!(8, 64, 512);
    g.finish();
}

fn threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue/threads, blocking");
    const N: u64 = 1 << 15;
    g.throughput(Throughput::Elements(N));
    for (producers, consumers) in [(1u64, 1u64), (2, 2)] {
        g.bench_function(BenchmarkId::new("u64", format!("{producers}x{consumers}")), |b| {
            b.iter_batched(
                || Queue::<u64>::new(4096).unwrap(),
                |q| {
                    let per = N / producers;
                    let ps: Vec<_> = (0..producers)
                        .map(|_| {
                            let q = q.clone();
                            std::thread::spawn(move || (0..per).for_each(|i| q.send(i).unwrap()))
                        })
                        .collect();
                    let cs: Vec<_> = (0..consumers)
                        .map(|_| {
                            let q = q.clone();
                            std::thread::spawn(move || while q.recv().is_ok() {})
                        })
                        .collect();
                    ps.into_iter().for_each(|p| p.join().unwrap());
                    q.shutdown();
                    cs.into_iter().for_each(|c| c.join().unwrap());
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, send_recv_one_thread, threads);
criterion_main!(benches);
