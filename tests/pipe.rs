//! `Pipe`: byte messages in process and across real processes.

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::{child_role, spawn_child, wait_child, SegName};
use procring::{MessageRecvError, MessageSendError, OpenError, Options, Pipe};

const CHILD_LIMIT: Duration = Duration::from_secs(300);
const LIMIT: Duration = Duration::from_secs(30);

fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fixed-seed generator of message sizes (xorshift64*).
struct Sizes(u64);

impl Sizes {
    fn next(&mut self, max: u64) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % (max + 1)) as usize
    }
}

/// Message `i`'s content: a word pattern both sides compute, checked whole.
fn fill(i: u64, buf: &mut [u8]) {
    let key = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for (k, chunk) in buf.chunks_mut(8).enumerate() {
        let w = (key ^ k as u64).to_le_bytes();
        chunk.copy_from_slice(&w[..chunk.len()]);
    }
}

fn check(i: u64, got: &[u8], len: usize) {
    assert_eq!(got.len(), len, "message {i}: length");
    // Word by word against `fill`'s pattern, without building a copy.
    let key = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let same = got.chunks(8).enumerate().all(|(k, chunk)| chunk == &(key ^ k as u64).to_le_bytes()[..chunk.len()]);
    assert!(same, "message {i} ({len} bytes) differs");
}

const SEED: u64 = 0x5eed_1234_abcd_0001;
const MAX: u64 = 64 * 1024;

#[test]
fn child_entry() {
    let Some((role, name, arg)) = child_role() else { return };
    match role.as_str() {
        // Send `arg` messages of random sizes (0..=64 KiB, fixed seed),
        // alternating copying, zero-copy and non-blocking sends.
        "sender" => {
            let count: u64 = arg.parse().unwrap();
            let mut tx = Pipe::open_sender(&name, &Options::new()).unwrap();
            let mut sizes = Sizes(SEED);
            let mut buf = vec![0u8; MAX as usize];
            for i in 0..count {
                let len = sizes.next(MAX);
                match i % 3 {
                    0 => {
                        fill(i, &mut buf[..len]);
                        tx.send_bytes(&buf[..len]).unwrap();
                    }
                    1 => {
                        let mut out = tx.reserve(len).unwrap();
                        fill(i, &mut out);
                        out.commit();
                    }
                    _ => {
                        fill(i, &mut buf[..len]);
                        loop {
                            match tx.try_send_bytes(&buf[..len]) {
                                Ok(()) => break,
                                Err(MessageSendError::Full) => std::thread::yield_now(),
                                Err(e) => panic!("{e}"),
                            }
                        }
                    }
                }
            }
        }
        // Send every message back, until the other end goes.
        "echo" => {
            let mut end = Pipe::open(&name).unwrap();
            while let Ok(m) = end.recv_bytes() {
                end.send_bytes(&m).unwrap();
            }
        }
        // Send two messages, then exit without running destructors.
        "leaves" => {
            let mut tx = Pipe::open_sender(&name, &Options::new()).unwrap();
            tx.send_bytes(b"one").unwrap();
            tx.send_bytes(b"two").unwrap();
            std::process::exit(0);
        }
        other => panic!("unknown child role {other}"),
    }
}

#[test]
fn a_million_messages_of_random_sizes_arrive_byte_for_byte() {
    let _serial = serial();
    let name = SegName::new("pipe-stream");
    const COUNT: u64 = 1_000_000;
    let mut rx = Pipe::create_receiver(name.as_str(), 1 << 20, &Options::new()).unwrap();
    let mut child = spawn_child("sender", name.as_str(), &COUNT.to_string());
    let mut sizes = Sizes(SEED);
    let mut buf = vec![0u8; MAX as usize];
    for i in 0..COUNT {
        let len = sizes.next(MAX);
        match i % 3 {
            0 => check(i, &rx.recv_bytes_timeout(LIMIT).unwrap(), len),
            1 => check(i, &rx.read_timeout(LIMIT).unwrap(), len),
            _ => {
                let n = rx.recv_bytes_into_timeout(&mut buf, LIMIT).unwrap();
                check(i, &buf[..n], len);
            }
        }
    }
    assert_eq!(rx.recv_bytes_timeout(LIMIT), Err(MessageRecvError::Disconnected), "nothing more");
    assert!(wait_child(&mut child, CHILD_LIMIT).success());
}

#[test]
fn a_hundred_thousand_duplex_round_trips() {
    let _serial = serial();
    let name = SegName::new("pipe-duplex");
    let mut end = Pipe::create(name.as_str(), 1 << 16).unwrap();
    let mut child = spawn_child("echo", name.as_str(), "");
    let mut sizes = Sizes(SEED ^ 7);
    let mut buf = vec![0u8; 4096];
    for i in 0..100_000u64 {
        let len = sizes.next(4096);
        fill(i, &mut buf[..len]);
        end.sender().send_bytes_timeout(&buf[..len], LIMIT).unwrap();
        check(i, &end.receiver().recv_bytes_timeout(LIMIT).unwrap(), len);
    }
    drop(end);
    assert!(wait_child(&mut child, CHILD_LIMIT).success());
}

#[test]
fn a_sender_that_exits_is_drained_then_reported() {
    let _serial = serial();
    let name = SegName::new("pipe-leaves");
    let mut rx = Pipe::create_receiver(name.as_str(), 4096, &Options::new().spin(0)).unwrap();
    let mut child = spawn_child("leaves", name.as_str(), "");
    assert_eq!(rx.recv_bytes_timeout(LIMIT).unwrap(), b"one");
    assert_eq!(rx.recv_bytes_timeout(LIMIT).unwrap(), b"two");
    assert_eq!(rx.recv_bytes_timeout(LIMIT), Err(MessageRecvError::Disconnected));
    assert_eq!(rx.peer_died(), Some(child.id()), "it exited without dropping its end: named");
    assert!(rx.poll(Duration::ZERO), "poll says a receive would not block");
    assert!(wait_child(&mut child, CHILD_LIMIT).success());
}

#[test]
fn a_message_larger_than_the_ring_can_hold_is_refused_with_both_sizes() {
    let (mut tx, _rx) = Pipe::simplex(4096).unwrap();
    assert_eq!(tx.max_message(), 2040);
    let err = tx.send_bytes(&[0; 2041]).unwrap_err();
    assert_eq!(err, MessageSendError::TooLarge { size: 2041, limit: 2040 });
    assert!(err.to_string().contains("2041") && err.to_string().contains("2040"), "{err}");
    tx.send_bytes(&[0; 2040]).unwrap();
}

#[test]
fn a_corrupt_length_is_reported_not_read() {
    let name = SegName::new("pipe-corrupt");
    let mut tx = Pipe::create_sender(name.as_str(), 4096, &Options::new()).unwrap();
    let mut rx = Pipe::open_receiver(name.as_str(), &Options::new()).unwrap();
    tx.send_bytes(b"hello").unwrap();
    // The first record's header: after the control blocks (two of 640
    // bytes; the sum is a multiple of 128).
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(name.path()).unwrap();
    f.write_all_at(&100_000u64.to_le_bytes(), common::CONTROL_OFFSET + 2 * 640).unwrap();
    assert!(matches!(rx.recv_bytes(), Err(MessageRecvError::Corrupt(_))));
    assert!(matches!(rx.try_read(), Err(MessageRecvError::Corrupt(_))));
}

#[test]
fn ends_of_the_wrong_shape_or_taken_are_refused() {
    let name = SegName::new("pipe-shape");
    let _a = Pipe::create(name.as_str(), 4096).unwrap();
    assert!(matches!(Pipe::open_receiver(name.as_str(), &Options::new()), Err(OpenError::TypeMismatch { .. })));
    let _b = Pipe::open(name.as_str()).unwrap();
    assert!(matches!(Pipe::open(name.as_str()), Err(OpenError::RoleTaken { .. })));
    assert!(matches!(procring::Queue::<u64>::open(name.as_str()), Err(OpenError::KindMismatch { .. })));
}

// ---------------------------------------------------------------------------
// In one process
// ---------------------------------------------------------------------------

#[test]
fn wrap_records_and_an_exact_fill_keep_every_message_contiguous() {
    let (mut tx, mut rx) = Pipe::simplex(64).unwrap();
    // Records of 24 and 16 bytes, 40 a round: every start offset a multiple
    // of 8 comes round, and a record wraps wherever it would cross the end.
    // Two in flight take at most 16 of waste + 40 + the writer's 8-byte
    // marker: the whole region.
    for round in 0..20u8 {
        tx.try_send_bytes(&[round; 16]).unwrap();
        tx.try_send_bytes(&[!round; 8]).unwrap();
        assert_eq!(&*rx.try_read().unwrap(), &[round; 16]);
        assert_eq!(&*rx.try_read().unwrap(), &[!round; 8]);
    }
    // A record that exactly fills the region's tail: 64 - tail.
    let (mut tx, mut rx) = Pipe::simplex(64).unwrap();
    tx.try_send_bytes(&[1; 16]).unwrap(); // 0..24
    assert_eq!(rx.try_recv_bytes().unwrap(), [1; 16]);
    tx.try_send_bytes(&[2; 24]).unwrap(); // 24..56
    tx.try_send_bytes(&[]).unwrap(); // 56..64: exactly the tail
    assert_eq!(tx.try_send_bytes(&[3; 17]), Err(MessageSendError::Full));
    assert_eq!(rx.try_recv_bytes().unwrap(), [2; 24]);
    assert_eq!(rx.try_recv_bytes().unwrap(), b"");
    tx.try_send_bytes(&[3; 17]).unwrap(); // wraps to 0
    assert_eq!(rx.try_recv_bytes().unwrap(), [3; 17]);
    assert_eq!(rx.try_recv_bytes(), Err(MessageRecvError::Empty));
}

#[test]
fn recv_into_a_small_buffer_says_the_size_and_leaves_the_message() {
    let (mut a, mut b) = Pipe::new(4096).unwrap();
    a.send_bytes(b"twelve bytes").unwrap();
    let mut small = [0u8; 4];
    assert_eq!(b.recv_bytes_into(&mut small), Err(MessageRecvError::BufferTooSmall { needed: 12 }));
    let mut big = [0u8; 32];
    assert_eq!(b.recv_bytes_into(&mut big), Ok(12));
    assert_eq!(&big[..12], b"twelve bytes");
}

#[test]
fn poll_zero_copy_and_timeouts() {
    let (mut a, mut b) = Pipe::new(256).unwrap();
    assert!(!b.poll(Duration::ZERO));
    assert!(!b.poll(Duration::from_millis(5)));
    {
        let mut out = a.reserve(5).unwrap();
        out.copy_from_slice(b"hello");
    } // dropped uncommitted: nothing sent
    assert!(!b.poll(Duration::ZERO));
    let mut out = a.reserve(5).unwrap();
    out.copy_from_slice(b"hello");
    out.commit();
    assert!(b.poll(Duration::ZERO));
    assert_eq!(&*b.read().unwrap(), b"hello");
    assert_eq!(b.receiver().recv_bytes_timeout(Duration::from_millis(5)), Err(MessageRecvError::Timeout));
    while a.sender().try_send_bytes(&[0; 100]).is_ok() {}
    assert_eq!(a.sender().send_bytes_timeout(&[0; 100], Duration::from_millis(5)), Err(MessageSendError::Timeout));
}

#[test]
fn dropping_an_end_disconnects_both_directions() {
    let (mut a, b) = Pipe::new(256).unwrap();
    a.send_bytes(b"left behind").unwrap();
    let (_tx, mut rx) = b.split();
    drop(a);
    assert_eq!(rx.recv_bytes().unwrap(), b"left behind");
    assert_eq!(rx.recv_bytes(), Err(MessageRecvError::Disconnected));
    let (mut a, b) = Pipe::new(256).unwrap();
    drop(b);
    assert_eq!(a.send_bytes(b"x"), Err(MessageSendError::Disconnected));
}

#[test]
fn serialized_values_cross_a_pipe() {
    let (mut a, mut b) = Pipe::new(4096).unwrap();
    a.send(&(42, None::<i32>, "hello")).unwrap();
    assert_eq!(b.recv::<(i32, Option<i32>, String)>().unwrap(), (42, None, "hello".to_owned()));
    b.send(&vec![1.5f64, -2.0]).unwrap();
    assert_eq!(a.recv::<Vec<f64>>().unwrap(), [1.5, -2.0]);
    a.send(&u64::MAX).unwrap(); // does not fit a u32
    assert!(matches!(b.recv::<u64>(), Err(MessageRecvError::Decode(_)) | Ok(_)));
}

#[test]
fn threads_stream_random_sizes_through_a_small_ring() {
    let (mut tx, mut rx) = Pipe::simplex(1024).unwrap();
    let t = std::thread::spawn(move || {
        let mut sizes = Sizes(3);
        let mut buf = vec![0u8; 504];
        for i in 0..100_000u64 {
            let len = sizes.next(504);
            fill(i, &mut buf[..len]);
            tx.send_bytes(&buf[..len]).unwrap();
        }
    });
    let mut sizes = Sizes(3);
    for i in 0..100_000u64 {
        let len = sizes.next(504);
        check(i, &rx.recv_bytes_timeout(LIMIT).unwrap(), len);
    }
    t.join().unwrap();
}

#[test]
fn values_iterate_until_the_sender_is_gone_and_a_bad_one_is_an_error() {
    let (mut a, mut b) = Pipe::new(4096).unwrap();
    for i in 0..5u32 {
        a.send(&i).unwrap();
    }
    assert_eq!(b.receiver().try_iter::<u32>().take(2).collect::<Result<Vec<_>, _>>(), Ok(vec![0, 1]));
    a.send(&u64::MAX).unwrap(); // does not fit a u32
    drop(a);
    let rest: Vec<Result<u32, MessageRecvError>> = b.receiver().iter().collect();
    assert_eq!(rest.len(), 4, "three values, one decode error, then the end: {rest:?}");
    assert_eq!(rest[..3], [Ok(2), Ok(3), Ok(4)]);
    assert!(matches!(rest[3], Err(MessageRecvError::Decode(_))));

    let (mut a, b) = Pipe::new(4096).unwrap();
    a.send(&"owned").unwrap();
    drop(a);
    let (_, rx) = b.split();
    assert_eq!(rx.into_values::<String>().collect::<Result<Vec<_>, _>>(), Ok(vec!["owned".to_owned()]));
}
