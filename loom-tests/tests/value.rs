//! `Value<T>`: `update` (a CAS loop on a native atomic; the lock and the
//! two-copy seqlock otherwise) loses no increment under contention, and a
//! racing `load` only ever sees values that were stored whole. Catches:
//! `procring_bug="seqlock_no_recheck"` and `"mutex_unlock_no_wake"`.
//!
//! The main thread writes and the spawned reader loads: loom's DPOR looks
//! only at an object's last access, so a writer that reads the value itself
//! just before writing it (as `update` does) would hide a reader's earlier
//! load from it. With the reader second, every load it makes is checked
//! against the stores before it.
#![cfg(loom)]

mod common;

use loom::thread;
use procring::Value;

#[test]
fn native_updates_under_contention_lose_nothing() {
    common::model(|| {
        assert!(Value::<u64>::is_lock_free());
        let v = Value::new(0u64);
        let (v1, v2) = (v.clone(), v.clone());
        let other = thread::spawn(move || v1.update(|x| x + 1));
        let reader = thread::spawn(move || assert!(v2.load() <= 2));
        v.update(|x| x + 1);
        other.join().unwrap();
        reader.join().unwrap();
        assert_eq!(v.load(), 2);
    });
}

#[test]
fn seqlock_updates_under_contention_lose_nothing_and_loads_are_whole() {
    common::model(|| {
        assert!(!Value::<[u64; 2]>::is_lock_free());
        let v = Value::new([0u64; 2]);
        let (v1, v2) = (v.clone(), v.clone());
        let other = thread::spawn(move || v1.update(|[a, b]| [a + 1, b + 1]));
        let reader = thread::spawn(move || {
            let [a, b] = v2.load();
            assert!(a == b && a <= 2, "torn or invented load: [{a}, {b}]");
        });
        v.update(|[a, b]| [a + 1, b + 1]);
        other.join().unwrap();
        reader.join().unwrap();
        assert_eq!(v.load(), [2, 2]);
    });
}
