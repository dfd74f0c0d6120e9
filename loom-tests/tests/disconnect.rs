//! The queue's handle counts ("Disconnection" in `ring::mpmc`): the last
//! sender to leave wakes a receiver asleep on an empty queue, which drains
//! it and then sees the disconnection; the last receiver to leave wakes a
//! sender asleep on a full one; a sender's process killed with its handle
//! counted is taken off the count by a receiver's look. Catches
//! `procring_bug="ends_without_wake"` (a count taken to none with no wake:
//! the sleeper never learns).
#![cfg(loom)]

mod common;

use loom::thread;
use procring::__loom::claims_model::{queue, Process};
use procring::queue::{bounded, Receiver, Sender};
use procring::{RecvError, SendError};

fn halves(capacity: usize) -> (Sender<u64>, Receiver<u64>) {
    let (mut tx, mut rx) = bounded::<u64>(capacity).unwrap();
    // Sleep at once: a lost wakeup is then a deadlock loom reports.
    tx.set_spin(0);
    rx.set_spin(0);
    (tx, rx)
}

#[test]
fn the_last_sender_leaving_wakes_a_receiver_that_drains_then_disconnects() {
    common::model(|| {
        let (tx, rx) = halves(2);
        let tx2 = tx.clone();
        let one = thread::spawn(move || {
            tx.send(1).unwrap();
            drop(tx);
        });
        let two = thread::spawn(move || drop(tx2));
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.recv(), Err(RecvError::Disconnected));
        one.join().unwrap();
        two.join().unwrap();
    });
}

#[test]
fn the_last_receiver_leaving_wakes_a_sender_blocked_on_full() {
    common::model(|| {
        let (tx, rx) = halves(1);
        let rx2 = rx.clone();
        tx.send(1).unwrap();
        let sender = thread::spawn(move || tx.send(2));
        let other = thread::spawn(move || drop(rx2));
        drop(rx);
        assert_eq!(sender.join().unwrap(), Err(SendError(2)));
        other.join().unwrap();
    });
}

#[test]
fn a_killed_senders_count_is_taken_off_and_its_messages_still_arrive() {
    common::model_bounded(2, || {
        let shared = queue(2, 2);
        let sender = Process::attach_ends(&shared, 1, true, false);
        let receiver = Process::attach_ends(&shared, 2, false, true);
        let killed = thread::spawn(move || {
            assert!(sender.try_send(7));
            sender.die();
        });
        assert_eq!(receiver.recv_until_disconnected(), [7]);
        killed.join().unwrap();
    });
}
