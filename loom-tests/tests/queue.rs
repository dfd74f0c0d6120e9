//! The MPMC queue over heap memory: no loss, no duplication and per-producer
//! order with two producers and two consumers; the full and empty edges at
//! capacity 2 with both waits; close racing with blocked senders and
//! receivers; a consumer finishing out of order. Catches:
//! `procring_bug="queue_seq_before_write"` (a slot read while it is being
//! written), `procring_bug="queue_full_without_sweep"` (a mark nobody saw
//! leaves the ring full for good), and both eventcount fence bugs.
#![cfg(loom)]

mod common;

use loom::thread;
use procring::{Queue, RecvError};

fn queue(capacity: usize) -> Queue<u64> {
    let mut q = Queue::<u64>::new(capacity).unwrap();
    q.set_spin(0);
    q
}

#[test]
fn two_producers_two_consumers_lose_and_duplicate_nothing_in_order() {
    // Non-blocking and bounded, so that four threads stay within minutes
    // (the blocking waits are the next two models' subject): producer 0
    // sends two messages (so its order can be checked) and producer 1 one,
    // into a queue with room for all; each consumer tries three times; the
    // main thread then drains what is left. Preemption bound 2: with the
    // `released` count's extra steps, bound 3 takes over four minutes here
    // (22 s at 2), and bound 2 still catches `queue_seq_before_write`.
    common::model_bounded(2, || {
        let q = queue(4);
        let producers: Vec<_> = (0..2u64)
            .map(|p| {
                let q = q.clone();
                thread::spawn(move || (0..2 - p).for_each(|i| q.try_send(p * 10 + i).unwrap()))
            })
            .collect();
        // The consumers' tries are the quick ones: the honest `try_recv`'s
        // wait for a send under way (a model of its own, below) would
        // multiply this model's schedules far past CI's budget.
        let consume = |q: Queue<u64>| (0..3).filter_map(|_| procring::__loom::try_recv_quick(&q)).collect::<Vec<_>>();
        let q2 = q.clone();
        let other = thread::spawn(move || consume(q2));
        let mine = consume(q.clone());
        let theirs = other.join().unwrap();
        producers.into_iter().for_each(|p| p.join().unwrap());
        for g in [&mine, &theirs] {
            let zeros: Vec<_> = g.iter().filter(|v| **v < 10).collect();
            assert!(zeros.windows(2).all(|w| w[0] < w[1]), "producer 0 out of order: {g:?}");
        }
        let mut all: Vec<u64> = mine.into_iter().chain(theirs).collect();
        while let Ok(v) = q.try_recv() {
            all.push(v);
        }
        all.sort_unstable();
        assert_eq!(all, [0, 1, 10], "each message exactly once");
    });
}

#[test]
fn full_and_empty_edges_at_capacity_two_with_both_waits() {
    common::model(|| {
        let q = queue(2);
        let tx = q.clone();
        // Three sends into two slots: the third waits for room (not-full).
        let producer = thread::spawn(move || (1..=3).for_each(|i| tx.send(i).unwrap()));
        // The receiver waits for messages (not-empty).
        for i in 1..=3 {
            assert_eq!(q.recv(), Ok(i));
        }
        producer.join().unwrap();
    });
}

#[test]
fn close_wakes_a_blocked_sender_and_a_blocked_receiver() {
    common::model(|| {
        let q = queue(2);
        q.send(1).unwrap();
        q.send(2).unwrap();
        let tx = q.clone();
        // Blocks on the full queue until a receive makes room or close.
        let sender = thread::spawn(move || tx.send(3).is_ok());
        let rx = q.clone();
        let receiver = thread::spawn(move || {
            let mut got = vec![];
            loop {
                match rx.recv() {
                    Ok(v) => got.push(v),
                    Err(RecvError::Disconnected) => return got,
                    Err(e) => panic!("{e}"),
                }
            }
        });
        q.shutdown();
        let sent = sender.join().unwrap();
        let got = receiver.join().unwrap();
        // Everything claimed before the close arrives, and nothing else.
        assert_eq!(got, if sent { vec![1, 2, 3] } else { vec![1, 2] });
    });
}

#[test]
fn a_consumer_that_finishes_out_of_order_holds_up_no_one() {
    common::model(|| {
        let q = queue(2);
        q.send(1).unwrap();
        q.send(2).unwrap();
        // Message 1 is read in place and held while another consumer takes
        // message 2 and finishes first: it marks its slot and returns.
        let guard = q.recv_ref().unwrap();
        let rx = q.clone();
        let other = thread::spawn(move || rx.recv().unwrap());
        assert_eq!(*guard, 1);
        drop(guard);
        // Both slots come back, however the two releases interleave: the
        // second send needs the marked one.
        q.send(3).unwrap();
        q.send(4).unwrap();
        assert_eq!(other.join().unwrap(), 2);
        assert_eq!((q.recv(), q.recv()), (Ok(3), Ok(4)));
    });
}

#[test]
fn try_recv_waits_for_a_send_under_way_that_a_finished_send_is_queued_behind() {
    common::model(|| {
        let q = queue(4);
        let (a, b) = (q.clone(), q.clone());
        let slow = thread::spawn(move || a.send(1).unwrap());
        let done = thread::spawn(move || b.send(2).unwrap());
        // Message 2's send has returned: whatever message 1's send is doing,
        // the queue holds a message, and `try_recv` must not say `Empty`.
        done.join().unwrap();
        let first = q.try_recv().expect("a message was queued");
        slow.join().unwrap();
        let second = q.try_recv().expect("both were sent");
        assert_eq!([first.min(second), first.max(second)], [1, 2]);
    });
}
