//! The robust mutex: mutual exclusion, no lost wakeup (a waiter sleeps with
//! no timeout, so a missing wake is a deadlock loom reports), and a holder
//! that dies holding it is taken over and reported. Catches:
//! `procring_bug="mutex_unlock_no_wake"` (unlock skips the wake when a
//! waiter has announced itself).
#![cfg(loom)]

mod common;

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;
use procring::__loom::{kill, Mutex};

#[test]
fn three_lockers_exclude_each_other_and_none_sleeps_forever() {
    common::model(|| {
        let m = Arc::new(Mutex::new());
        // A plain cell: loom reports any two accesses the lock fails to order.
        let count = Arc::new(UnsafeCell::new(0u32));
        let lockers: Vec<_> = (1..=2)
            .map(|pid| {
                let (m, count) = (m.clone(), count.clone());
                thread::spawn(move || {
                    assert_eq!(m.lock(pid, false), None);
                    // SAFETY: under the lock.
                    count.with_mut(|c| unsafe { *c += 1 });
                    m.unlock();
                })
            })
            .collect();
        assert_eq!(m.lock(3, false), None);
        // SAFETY: under the lock.
        count.with_mut(|c| unsafe { *c += 1 });
        m.unlock();
        lockers.into_iter().for_each(|t| t.join().unwrap());
        // SAFETY: every other thread has finished.
        assert_eq!(count.with(|c| unsafe { *c }), 3);
    });
}

#[test]
fn a_holder_that_dies_is_taken_over_and_reported_once() {
    common::model(|| {
        let m = Arc::new(Mutex::new());
        let count = Arc::new(UnsafeCell::new(0u32));
        let (m2, c2) = (m.clone(), count.clone());
        // Process 7 takes the lock, changes the data, and dies holding it.
        let dying = thread::spawn(move || {
            assert_eq!(m2.lock(7, true), None);
            // SAFETY: under the lock.
            c2.with_mut(|c| unsafe { *c += 1 });
            kill(7);
        });
        // Process 8 either takes the lock first (then 7 waits for it, and
        // dies after) or finds 7 dead and takes the lock over from it.
        let dead = m.lock(8, true);
        // SAFETY: under the lock (taken over or not).
        let seen = count.with_mut(|c| unsafe {
            *c += 1;
            *c
        });
        match dead {
            Some(pid) => assert_eq!((pid, seen), (7, 2), "taken over from 7 after its change"),
            None => assert_eq!(seen, 1, "taken first"),
        }
        m.unlock();
        dying.join().unwrap();
    });
}
