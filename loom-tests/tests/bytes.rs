//! The byte ring under `Pipe`, over a 64-byte region (one loom cell per
//! 8-byte word): wrap records, a record that exactly fills the region's
//! tail, mixed sizes, and the writer and reader racing at the wrap point.
//! Catches: `procring_bug="pipe_publish_before_payload"` (the reader reads
//! a payload while it is being written).
#![cfg(loom)]

mod common;

use loom::thread;
use procring::pipe::{Receiver, Sender};
use procring::{MessageRecvError, Pipe};

fn pipe() -> (Sender, Receiver) {
    let (mut tx, mut rx) = Pipe::simplex(64).unwrap();
    tx.set_spin(0);
    rx.set_spin(0);
    (tx, rx)
}

/// Sends `msgs` from a thread while this one receives and checks them.
fn exchange(msgs: &'static [&'static [u8]]) {
    let (mut tx, mut rx) = pipe();
    let sender = thread::spawn(move || msgs.iter().for_each(|m| tx.send_bytes(m).unwrap()));
    for m in msgs {
        assert_eq!(&rx.recv_bytes().unwrap()[..], *m);
    }
    sender.join().unwrap();
    assert_eq!(rx.recv_bytes(), Err(MessageRecvError::Disconnected));
}

#[test]
fn a_message_that_would_cross_the_end_wraps_while_the_reader_races() {
    // Records of 24 bytes: the third does not fit in the last 16 and wraps,
    // waiting for the reader to release the first.
    common::model(|| exchange(&[&[1; 16], &[2; 16], &[3; 16]]));
}

#[test]
fn a_record_exactly_filling_the_tail_of_the_region() {
    // 24 + 32 + 8 = 64: the empty message ends exactly at the end; the next
    // starts at 0.
    common::model(|| exchange(&[&[1; 16], &[2; 24], &[], &[4; 9]]));
}

#[test]
fn mixed_sizes_in_order() {
    common::model(|| exchange(&[&[7; 1], &[], &[9; 20], &[5; 8]]));
}
