//! Biased claims: a side's single claimer stores `tail` (or `head`) plainly
//! instead of a CAS, and a second claimer first revokes that bias. Under
//! loom every uncontended claim takes the bias, so each model has an owner
//! storing plainly while another process (or `close`) revokes it, and one
//! where two revokers race (a takeover, a revocation given up and resumed).
//! Catches:
//! `procring_bug="bias_no_quiesce"` (a revoker that does not wait for the
//! owner's claim under way: both claim one position, and loom reports the
//! two writes of its slot) and `procring_bug="bias_no_claim_fence"` (a
//! claimer looks at the bias without the barrier after its announcement).
#![cfg(loom)]

mod common;

use loom::thread;
use procring::__loom::claims_model::{queue, Process};

/// Everything `receiver` can take now, in order.
fn drain(receiver: &Process) -> Vec<u64> {
    let mut got = Vec::new();
    while let Some(v) = receiver.recv(Some(0)) {
        got.push(v);
    }
    got
}

#[test]
fn an_owner_sending_while_a_second_sender_revokes_loses_and_duplicates_nothing() {
    common::model(|| {
        let q = queue(4, 3);
        let (owner, other, receiver) = (Process::attach(&q, 7), Process::attach(&q, 8), Process::attach(&q, 9));
        // The first send takes the bias; the second is a plain store, unless
        // the other sender revoked the bias in between.
        let t = thread::spawn(move || assert!(owner.try_send(1) && owner.try_send(2)));
        assert!(other.try_send(3));
        t.join().unwrap();
        let got = drain(&receiver);
        let mut sorted = got.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [1, 2, 3], "each message once: {got:?}");
        let at = |v| got.iter().position(|&g| g == v);
        assert!(at(1) < at(2), "one sender's messages in order: {got:?}");
    });
}

#[test]
fn an_owner_receiving_while_a_second_receiver_revokes_loses_and_duplicates_nothing() {
    common::model(|| {
        let q = queue(4, 3);
        let (sender, owner, other) = (Process::attach(&q, 7), Process::attach(&q, 8), Process::attach(&q, 9));
        assert!(sender.try_send(1) && sender.try_send(2) && sender.try_send(3));
        let t = thread::spawn(move || {
            let first = owner.recv(Some(0));
            let second = owner.recv(Some(0));
            [first, second]
        });
        let mine = other.recv(Some(0));
        let theirs = t.join().unwrap();
        if let [Some(a), Some(b)] = theirs {
            assert!(a < b, "one receiver takes in order: {theirs:?}");
        }
        let mut got: Vec<u64> = theirs.into_iter().chain([mine]).flatten().collect();
        got.extend(drain(&other));
        got.sort_unstable();
        assert_eq!(got, [1, 2, 3], "each message once");
    });
}

#[test]
fn close_revokes_a_sending_owner_and_keeps_every_claimed_message() {
    common::model(|| {
        let q = queue(4, 2);
        let (owner, receiver) = (Process::attach(&q, 7), Process::attach(&q, 8));
        let t = thread::spawn(move || [owner.try_send(1), owner.try_send(2)]);
        assert!(receiver.close());
        let sent = t.join().unwrap();
        assert!(receiver.is_closed(), "an owner's plain store wiped the close");
        let expected: Vec<u64> = [1, 2].into_iter().zip(sent).filter(|&(_, s)| s).map(|(v, _)| v).collect();
        assert_eq!(drain(&receiver), expected, "exactly the sends that succeeded, in order");
        assert!(!receiver.try_send(3), "no send after close");
    });
}

#[test]
fn two_senders_revoking_one_owner_at_once_lose_and_duplicate_nothing() {
    // Under loom a waiter takes a revocation over after two spins, and a
    // revoker gives up after two (its send then reports full, and is
    // retried): both paths run here. Preemption bound 2: four threads.
    common::model_bounded(2, || {
        let q = queue(4, 4);
        let owner = Process::attach(&q, 7);
        let (b, c, receiver) = (Process::attach(&q, 8), Process::attach(&q, 9), Process::attach(&q, 10));
        let t = thread::spawn(move || [owner.send(1, 3), owner.send(2, 3)]);
        let u = thread::spawn(move || b.send(3, 3));
        let sent_4 = c.send(4, 3);
        let [sent_1, sent_2] = t.join().unwrap();
        let sent_3 = u.join().unwrap();
        let got = drain(&receiver);
        let mut expected: Vec<u64> = [(1, sent_1), (2, sent_2), (3, sent_3), (4, sent_4)]
            .into_iter()
            .filter(|&(_, s)| s)
            .map(|(v, _)| v)
            .collect();
        let mut sorted = got.clone();
        sorted.sort_unstable();
        expected.sort_unstable();
        assert_eq!(sorted, expected, "each message sent arrives once: {got:?}");
        let at = |v| got.iter().position(|&g| g == v);
        assert!(!(sent_1 && sent_2) || at(1) < at(2), "one sender's messages in order: {got:?}");
    });
}
