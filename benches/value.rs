//! `Value<T>` uncontended, in one thread: `load` of a `Value<u64>` (one
//! native atomic) and of a 64-byte `Value` (the two-copy seqlock), against a
//! plain atomic load and a `raw_sync` process-shared mutex (a pthread mutex)
//! guarding the same data; then the writes and `lock()`.
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::cell::UnsafeCell;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use procring::Value;
use raw_sync::locks::{LockImpl, LockInit, Mutex};

/// A `raw_sync` mutex (pthread, process-shared) and the `T` it guards.
struct Locked<T> {
    lock: Box<dyn LockImpl>,
    _mem: Box<[u64; 16]>,
    data: Box<UnsafeCell<T>>,
}

impl<T: Copy> Locked<T> {
    fn new(value: T) -> Self {
        let mut mem = Box::new([0u64; 16]);
        let data = Box::new(UnsafeCell::new(value));
        // SAFETY: `mem` is 128 bytes, enough for a pthread mutex, and lives
        // as long as the lock (both are in `Self`).
        let (lock, _) = unsafe { Mutex::new(mem.as_mut_ptr().cast(), data.get().cast()) }.unwrap();
        Self { lock, _mem: mem, data }
    }

    fn read(&self) -> T {
        let _g = self.lock.lock().unwrap();
        // SAFETY: under the lock.
        unsafe { *self.data.get() }
    }

    fn write(&self, value: T) {
        let _g = self.lock.lock().unwrap();
        // SAFETY: under the lock.
        unsafe { *self.data.get() = value }
    }
}

fn load(c: &mut Criterion) {
    let mut g = c.benchmark_group("value/load, uncontended");
    g.throughput(Throughput::Elements(1));
    let atomic = AtomicU64::new(7);
    g.bench_function("baseline: AtomicU64::load(Acquire)", |b| b.iter(|| black_box(&atomic).load(Ordering::Acquire)));
    let locked = Locked::new(7u64);
    g.bench_function("baseline: raw_sync mutex, u64", |b| b.iter(|| black_box(&locked).read()));
    let v = Value::new(7u64);
    g.bench_function("Value<u64>", |b| b.iter(|| black_box(&v).load()));
    let locked = Locked::new([7u64; 8]);
    g.bench_function("baseline: raw_sync mutex, 64 B", |b| b.iter(|| black_box(&locked).read()));
    let v = Value::new([7u64; 8]);
    g.bench_function("Value<[u64; 8]> (64 B, seqlock)", |b| b.iter(|| black_box(&v).load()));
    g.finish();
}

fn write(c: &mut Criterion) {
    let mut g = c.benchmark_group("value/write, uncontended");
    g.throughput(Throughput::Elements(1));
    let locked = Locked::new(0u64);
    g.bench_function("baseline: raw_sync mutex, u64", |b| b.iter(|| locked.write(black_box(1))));
    let v = Value::new(0u64);
    g.bench_function("Value<u64>::store", |b| b.iter(|| v.store(black_box(1))));
    g.bench_function("Value<u64>::update", |b| b.iter(|| v.update(|x| x + 1)));
    g.bench_function("Value<u64>::lock", |b| b.iter(|| *v.lock().unwrap() += 1));
    let locked = Locked::new([0u64; 8]);
    g.bench_function("baseline: raw_sync mutex, 64 B", |b| b.iter(|| locked.write(black_box([1; 8]))));
    let v = Value::new([0u64; 8]);
    g.bench_function("Value<[u64; 8]>::store", |b| b.iter(|| v.store(black_box([1; 8]))));
    g.bench_function("Value<[u64; 8]>::update", |b| {
        b.iter(|| {
            v.update(|mut x| {
                x[0] += 1;
                x
            })
        })
    });
    g.finish();
}

criterion_group!(benches, load, write);
criterion_main!(benches);
