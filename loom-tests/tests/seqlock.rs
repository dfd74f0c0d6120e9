//! The seqlock: a reader never returns a torn value, and never one that no
//! writer wrote, with a writer's two writes racing one reader. Catches:
//! `procring_bug="seqlock_no_recheck"` (the reader skips the sequence
//! re-check and returns a torn pair).
#![cfg(loom)]

mod common;

use loom::sync::atomic::AtomicU64;
use loom::sync::Arc;
use loom::thread;
use procring::__loom::SeqLock;

#[test]
fn a_read_is_never_torn_and_always_a_written_value() {
    common::model(|| {
        let lock = Arc::new(SeqLock::new());
        let words: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let (l2, w2) = (lock.clone(), words.clone());
        // Two writes in a row race one read.
        let writer = thread::spawn(move || {
            l2.write(&w2[..], &[1, 10]);
            l2.write(&w2[..], &[2, 20]);
        });
        let mut out = [0u64; 2];
        lock.read(&words[..], &mut out);
        assert!(matches!(out, [0, 0] | [1, 10] | [2, 20]), "torn or invented read: {out:?}");
        writer.join().unwrap();
        lock.read(&words[..], &mut out);
        assert_eq!(out, [2, 20]);
    });
}
