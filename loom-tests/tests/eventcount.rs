//! The eventcount: a waiter that finds the condition false and goes to sleep
//! is always woken by a notify that follows the state change. With the futex
//! modelled as a real sleep, a lost wakeup is a loom deadlock.
//! Catches: `procring_bug="no_notify_fence"`, `procring_bug="no_wait_fence"`.
#![cfg(loom)]

mod common;

use loom::sync::atomic::{AtomicU64, Ordering};
use loom::sync::Arc;
use loom::thread;
use procring::__loom::{notify, wait, EventCount};

#[test]
fn a_sleeping_waiter_is_always_woken() {
    common::model(|| {
        let ec = Arc::new(EventCount::new());
        let flag = Arc::new(AtomicU64::new(0));
        let (ec2, flag2) = (ec.clone(), flag.clone());
        let waiter = thread::spawn(move || {
            wait(&ec2, |_| match flag2.load(Ordering::Acquire) {
                0 => None,
                v => Some(v),
            })
        });
        flag.store(7, Ordering::Release);
        notify(&ec);
        assert_eq!(waiter.join().unwrap(), 7);
    });
}

#[test]
fn two_rounds_of_wait_and_notify() {
    // The waiter sleeps twice on the same eventcount: a stale key from the
    // first round must not let it sleep through the second notify.
    common::model(|| {
        let ec = Arc::new(EventCount::new());
        let count = Arc::new(AtomicU64::new(0));
        let (ec2, count2) = (ec.clone(), count.clone());
        let waiter = thread::spawn(move || {
            for round in 1..=2 {
                wait(&ec2, |_| (count2.load(Ordering::Acquire) >= round).then_some(()));
            }
        });
        for _ in 0..2 {
            count.fetch_add(1, Ordering::Release);
            notify(&ec);
        }
        waiter.join().unwrap();
    });
}
