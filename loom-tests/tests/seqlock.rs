//! The two-copy seqlock: a reader never returns a torn value, and never one
//! that no writer wrote — with writes racing a read, and with a writer that
//! dies part-way through a write. Catches:
//! `procring_bug="seqlock_no_recheck"` (the reader skips the sequence
//! re-check and returns a torn pair).
#![cfg(loom)]

mod common;

use loom::sync::atomic::{AtomicU64, Ordering};
use loom::sync::Arc;
use loom::thread;
use procring::__loom::{Death, SeqLock};

/// A value of two words, [k, 10 k], in two copies (four words).
fn data(k: u64) -> Arc<[AtomicU64; 4]> {
    Arc::new([AtomicU64::new(k), AtomicU64::new(10 * k), AtomicU64::new(k), AtomicU64::new(10 * k)])
}

fn write(lock: &SeqLock, data: &[AtomicU64], k: u64, death: Death) {
    lock.write_partly(
        data,
        |copy| {
            for (w, v) in copy.iter().zip([k, 10 * k]) {
                w.store(v, Ordering::Relaxed);
            }
        },
        death,
    );
}

fn read(lock: &SeqLock, data: &[AtomicU64]) -> [u64; 2] {
    lock.read(data, |copy| [copy[0].load(Ordering::Relaxed), copy[1].load(Ordering::Relaxed)])
}

#[test]
fn a_read_is_never_torn_and_always_a_written_value() {
    common::model(|| {
        let lock = Arc::new(SeqLock::new());
        let words = data(0);
        let (l2, w2) = (lock.clone(), words.clone());
        // Two writes in a row race one read.
        let writer = thread::spawn(move || {
            write(&l2, &w2[..], 1, Death::Never);
            write(&l2, &w2[..], 2, Death::Never);
        });
        let out = read(&lock, &words[..]);
        assert!(matches!(out, [0, 0] | [1, 10] | [2, 20]), "torn or invented read: {out:?}");
        writer.join().unwrap();
        assert_eq!(read(&lock, &words[..]), [2, 20]);
    });
}

#[test]
fn a_writer_that_dies_mid_write_leaves_whole_values_and_repair_lets_the_next_one_write() {
    for death in [Death::InFirstCopy(1), Death::InSecondCopy(1)] {
        common::model(move || {
            let lock = Arc::new(SeqLock::new());
            let words = data(1);
            let (l2, w2) = (lock.clone(), words.clone());
            // The writer stops half-way through one copy, and never returns.
            let dying = thread::spawn(move || write(&l2, &w2[..], 2, death));
            let out = read(&lock, &words[..]);
            assert!(matches!(out, [1, 10] | [2, 20]), "torn or invented read: {out:?}");
            dying.join().unwrap();
            // The next writer (who took the lock over) repairs, then writes,
            // while a reader races it.
            let (l3, w3) = (lock.clone(), words.clone());
            let next = thread::spawn(move || {
                l3.repair(&w3[..]);
                write(&l3, &w3[..], 3, Death::Never);
            });
            let out = read(&lock, &words[..]);
            assert!(matches!(out, [1, 10] | [2, 20] | [3, 30]), "torn or invented read: {out:?}");
            next.join().unwrap();
            assert_eq!(read(&lock, &words[..]), [3, 30]);
            let all: Vec<u64> = words.iter().map(|w| w.load(Ordering::Relaxed)).collect();
            assert_eq!(all, [3, 30, 3, 30], "both copies whole and equal after the write");
        });
    }
}
