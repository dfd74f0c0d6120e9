//! The SPSC ring over heap memory: order, no loss, no duplication, full and
//! empty edges, wrap-around at small capacities, zero-copy access, and
//! disconnection while the other side is blocked. Every wait sleeps at once
//! (spin 0), so the eventcount and the futex model are always exercised.
//! Catches: `procring_bug="publish_before_write"` (a racy slot access, or a
//! value read before it was written), and both eventcount fence bugs.
#![cfg(loom)]

mod common;

use loom::thread;
use procring::spsc::{channel, Consumer, Producer};
use procring::{RecvError, TryRecvError, TrySendError};

fn pair(capacity: usize) -> (Producer<u64>, Consumer<u64>) {
    let (mut tx, mut rx) = channel::<u64>(capacity).unwrap();
    tx.set_spin(0);
    rx.set_spin(0);
    (tx, rx)
}

#[test]
fn messages_arrive_once_in_order_across_the_wrap() {
    common::model(|| {
        let (mut tx, mut rx) = pair(2);
        let producer = thread::spawn(move || {
            for i in 1..=3 {
                tx.send(i).unwrap();
            }
        });
        for i in 1..=3 {
            assert_eq!(rx.recv(), Ok(i));
        }
        producer.join().unwrap();
        assert_eq!(rx.recv(), Err(RecvError::Disconnected));
    });
}

#[test]
fn full_and_empty_edges_at_capacity_one() {
    common::model(|| {
        let (mut tx, mut rx) = pair(1);
        let producer = thread::spawn(move || {
            let mut sent = 0;
            while sent < 2 {
                match tx.try_send(sent + 10) {
                    Ok(()) => sent += 1,
                    Err(TrySendError::Full(_)) => thread::yield_now(),
                    Err(e) => panic!("{e}"),
                }
            }
        });
        let mut got = vec![];
        while got.len() < 2 {
            match rx.try_recv() {
                Ok(v) => got.push(v),
                Err(TryRecvError::Empty) => thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, [10, 11]);
        producer.join().unwrap();
    });
}

/// A message can be taken by its slot's stamp before `tail` counts it; a
/// later look at `tail` (a batch) must then read "nothing new", never a
/// corrupt position, and the batch must not repeat or skip a message.
#[test]
fn stamps_and_tail_agree_across_single_and_batch_receives() {
    common::model(|| {
        let (mut tx, mut rx) = pair(2);
        let producer = thread::spawn(move || {
            for i in 1..=3 {
                tx.send(i).unwrap();
            }
        });
        let mut got = vec![rx.recv().unwrap()];
        let mut buf = [0u64; 2];
        while got.len() < 3 {
            let n = rx.recv_batch(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, [1, 2, 3]);
        producer.join().unwrap();
        assert_eq!(rx.recv(), Err(RecvError::Disconnected));
    });
}

#[test]
fn zero_copy_slots_are_never_shared_while_in_use() {
    common::model(|| {
        let (tx, rx) = channel::<[u64; 2]>(1).unwrap();
        let (mut tx, mut rx) = (tx, rx);
        tx.set_spin(0);
        rx.set_spin(0);
        let producer = thread::spawn(move || {
            for i in 1..=2u64 {
                let mut slot = tx.reserve().unwrap();
                *slot = [i, i * 100];
                slot.commit();
            }
        });
        for i in 1..=2u64 {
            let r = rx.recv_ref().unwrap();
            assert_eq!(*r, [i, i * 100]);
        }
        producer.join().unwrap();
    });
}

#[test]
fn a_consumer_blocked_on_empty_sees_the_producer_leave() {
    common::model(|| {
        let (mut tx, mut rx) = pair(2);
        let producer = thread::spawn(move || {
            tx.send(1).unwrap();
            drop(tx);
        });
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.recv(), Err(RecvError::Disconnected));
        producer.join().unwrap();
    });
}

#[test]
fn a_producer_blocked_on_full_sees_the_consumer_leave() {
    common::model(|| {
        let (mut tx, rx) = pair(1);
        tx.send(1).unwrap();
        let consumer = thread::spawn(move || drop(rx));
        // Full: blocks until the consumer's drop wakes it.
        assert!(tx.send(2).is_err());
        consumer.join().unwrap();
    });
}
