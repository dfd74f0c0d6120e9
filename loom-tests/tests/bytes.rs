//! The byte ring under `Pipe`, over a 64-byte region (one loom cell per
//! 8-byte word): wrap records, a record that exactly fills the region's
//! tail, mixed sizes, and the writer and reader racing at the wrap point.
//! Catches: `procring_bug="pipe_publish_before_payload"` (the reader reads
//! a payload while it is being written) and `pipe_no_marker` (the writer
//! leaves an old payload word where its next header goes, and a reader
//! watching that word takes a forged header for it).
#![cfg(loom)]

mod common;

use loom::thread;
use procring::pipe::{Receiver, Sender};
use procring::{__loom, MessageRecvError, Pipe};

fn pipe() -> (Sender, Receiver) {
    let (mut tx, mut rx) = Pipe::simplex(64).unwrap();
    tx.set_spin(0);
    rx.set_spin(0);
    (tx, rx)
}

/// Sends `msgs` from a thread while this one receives and checks them.
fn exchange(msgs: &'static [&'static [u8]]) {
    exchange_owned(msgs.iter().map(|m| m.to_vec()).collect());
}

fn exchange_owned(msgs: Vec<Vec<u8>>) {
    let (mut tx, mut rx) = pipe();
    let sent = msgs.clone();
    let sender = thread::spawn(move || sent.iter().for_each(|m| tx.send_bytes(m).unwrap()));
    for m in &msgs {
        assert_eq!(&rx.recv_bytes().unwrap(), m);
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

#[test]
fn a_payload_forging_the_next_header_is_not_taken_for_it() {
    // A (24 bytes at 0..32) carries, at region offset 16, the header the
    // record at position 80 will have. B (24 bytes, 32..64) and C (8 bytes,
    // 64..80: offsets 0..16) follow, so the reader's `head` comes to rest
    // on that word, and waits there for D's header.
    let mut a = vec![0xAA; 24];
    a[8..16].copy_from_slice(&__loom::pipe_header(80, 8).to_le_bytes());
    common::model(move || exchange_owned(vec![a.clone(), vec![0xBB; 24], vec![0xCC; 8], vec![0xDD; 8]]));
}
