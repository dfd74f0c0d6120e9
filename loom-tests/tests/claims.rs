//! Queue claims and death: a slot claimed by a process that dies before
//! publishing is skipped, never delivered half-written, and a live
//! process's claim is never taken for a dead one's. Catches:
//! `procring_bug="recover_ignores_liveness"` (recovery takes any announced
//! claim for a dead one: it skips the live sender's slot while it writes,
//! and the live message is lost), and `procring_bug="own_word_ignores_hold"`
//! (a thread's own claim word, announcing a zero-copy guard's claim, is
//! taken for its next claim: when the process dies, nobody announces the
//! guard's claim and consumers wait on it for ever). An earlier version of this model found a
//! real bug in the sweep of dead claims (docs/design.md).
#![cfg(loom)]

mod common;

use loom::thread;
use procring::__loom::claims_model::{queue, Process};

#[test]
fn a_dead_senders_claim_is_skipped_and_a_live_senders_message_delivered() {
    common::model(|| {
        let q = queue(2, 3);
        let (dying, live, receiver) = (Process::attach(&q, 7), Process::attach(&q, 8), Process::attach(&q, 9));
        let a = thread::spawn(move || dying.claim_and_die(1));
        let b = thread::spawn(move || assert!(live.try_send(2)));
        // The receiver races both: a few attempts while they run (recovering
        // whatever it finds dead), then the rest once they are done.
        let mut got: Vec<u64> = receiver.recv(Some(2)).into_iter().collect();
        a.join().unwrap();
        b.join().unwrap();
        // Both are done: two passes resolve and drain everything.
        while let Some(v) = receiver.recv(Some(2)) {
            got.push(v);
        }
        assert_eq!(got, [2], "the live sender's message, whole, once; never the dead one's half");
        assert_eq!(receiver.abandoned(), 1);
    });
}

#[test]
fn a_dead_receivers_claim_is_released_so_senders_are_not_wedged() {
    common::model(|| {
        let q = queue(2, 3);
        let (sender, dying, receiver) = (Process::attach(&q, 8), Process::attach(&q, 7), Process::attach(&q, 9));
        assert!(sender.try_send(1) && sender.try_send(2), "the queue is full");
        // The receiver that dies takes message 1 and never releases its slot,
        // the one the third send needs.
        let d = thread::spawn(move || dying.recv_and_die());
        let mut sent = sender.send(3, 2);
        d.join().unwrap();
        sent = sent || sender.send(3, 2);
        assert!(sent, "the dead receiver's slot came back");
        let mut got = Vec::new();
        while let Some(v) = receiver.recv(Some(2)) {
            got.push(v);
        }
        assert_eq!(got, [2, 3], "message 1 went with the dead receiver; the rest arrive once, in order");
        assert_eq!(receiver.abandoned(), 1);
    });
}

#[test]
fn two_threads_of_one_process_leave_every_claim_word_free() {
    common::model(|| {
        let q = queue(2, 2);
        let sender = std::sync::Arc::new(Process::attach(&q, 8));
        let receiver = Process::attach(&q, 9);
        // Both threads may announce position 0; one wins it, the other moves
        // on to 1. Each must clear its own shared word (one thread announces
        // in its own word, which may keep the finished claim), not the
        // other's.
        let other = {
            let sender = sender.clone();
            thread::spawn(move || assert!(sender.try_send(1)))
        };
        assert!(sender.try_send(2));
        other.join().unwrap();
        assert_eq!(sender.claims_in_use(), 0, "a finished claim left its word taken");
        let mut got = Vec::new();
        while let Some(v) = receiver.recv(Some(0)) {
            got.push(v);
        }
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
        assert_eq!(receiver.claims_in_use(), 0);
    });
}

#[test]
fn a_dead_processs_guard_claim_is_recovered_after_it_sent_more() {
    common::model(|| {
        let q = queue(4, 2);
        let (sender, receiver) = (Process::attach(&q, 7), Process::attach(&q, 9));
        // The guard's claim is position 0, unpublished for good; message 5
        // goes through a second claim made while the guard is held.
        let s = thread::spawn(move || sender.hold_send_and_die(5));
        let mut got: Vec<u64> = receiver.recv(Some(1)).into_iter().collect();
        s.join().unwrap();
        while let Some(v) = receiver.recv(Some(2)) {
            got.push(v);
        }
        assert_eq!(got, [5], "the message sent past the held claim, once");
        assert_eq!(receiver.abandoned(), 1, "the held claim was found dead and skipped");
    });
}
