//! The SPSC ring: in-process behaviour, and streams, disconnections and bad
//! segments across real processes (this binary re-executed in a child role).

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{child_role, spawn_child, wait_child, SegName};
use procring::spsc::{self, Consumer, Producer};
use procring::{
    CreateError, OpenError, Options, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError,
    TrySendError,
};

const CHILD_LIMIT: Duration = Duration::from_secs(120);
const RECV_LIMIT: Duration = Duration::from_secs(30);

/// Cross-process tests run one at a time: on two cores, two busy-polling
/// pairs would starve each other.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn opts_for(mode: &str) -> Options {
    match mode {
        "poll" => Options::new().busy_poll(),
        "futex" => Options::new().spin(0),
        _ => Options::new(),
    }
}

// ---------------------------------------------------------------------------
// Child roles
// ---------------------------------------------------------------------------

#[test]
fn child_entry() {
    let Some((role, name, arg)) = child_role() else { return };
    match role.as_str() {
        // arg = "COUNT,MODE": send 0..COUNT in order, then drop the end.
        "stream-producer" => {
            let (count, mode) = arg.split_once(',').unwrap();
            let count: u64 = count.parse().unwrap();
            let mut tx = Producer::<u64>::open_with(&name, &opts_for(mode)).unwrap();
            if mode == "zerocopy" {
                let mut next = 0;
                while next < count {
                    if next % 3 == 0 {
                        let batch: Vec<u64> = (next..(next + 100).min(count)).collect();
                        tx.send_batch(&batch).unwrap();
                        next += batch.len() as u64;
                    } else {
                        let mut slot = tx.reserve().unwrap();
                        *slot = next;
                        slot.commit();
                        next += 1;
                    }
                }
            } else {
                for i in 0..count {
                    tx.send(i).unwrap();
                }
            }
        }
        // Send three, then leave: "exit" without running any destructor,
        // "drop" by dropping the end and staying alive a while.
        "producer-leaves" => {
            let mut tx = Producer::<u64>::open(&name).unwrap();
            for i in 0..3 {
                tx.send(i).unwrap();
            }
            if arg == "exit" {
                std::process::exit(0);
            }
            drop(tx);
            std::thread::sleep(Duration::from_secs(3));
        }
        // Receive one message, then exit without running destructors.
        "consumer-exits" => {
            let mut rx = Consumer::<u64>::open(&name).unwrap();
            rx.recv().unwrap();
            std::process::exit(0);
        }
        other => panic!("unknown child role {other}"),
    }
}

// ---------------------------------------------------------------------------
// Across processes
// ---------------------------------------------------------------------------

fn stream_from_child(mode: &str, count: u64) {
    let _serial = serial();
    let name = SegName::new(&format!("stream-{mode}"));
    let mut rx = Consumer::<u64>::create_with(name.as_str(), 1024, &opts_for(mode)).unwrap();
    let mut child = spawn_child("stream-producer", name.as_str(), &format!("{count},{mode}"));
    let mut expect = 0u64;
    let mut buf = [0u64; 64];
    loop {
        let got = if mode == "zerocopy" && expect % 2 == 0 {
            match rx.recv_batch_timeout(&mut buf, RECV_LIMIT) {
                Ok(n) => buf[..n].to_vec(),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(e) => panic!("after {expect} messages: {e}"),
            }
        } else if mode == "zerocopy" {
            match rx.recv_ref_timeout(RECV_LIMIT) {
                Ok(r) => vec![*r],
                Err(RecvTimeoutError::Disconnected) => break,
                Err(e) => panic!("after {expect} messages: {e}"),
            }
        } else {
            match rx.recv_timeout(RECV_LIMIT) {
                Ok(v) => vec![v],
                Err(RecvTimeoutError::Disconnected) => break,
                Err(e) => panic!("after {expect} messages: {e}"),
            }
        };
        for v in got {
            assert_eq!(v, expect, "message out of order, lost or duplicated");
            expect += 1;
        }
    }
    assert_eq!(expect, count, "every message arrives once");
    assert!(wait_child(&mut child, CHILD_LIMIT).success());
}

#[test]
fn a_million_messages_arrive_once_and_in_order_busy_poll() {
    stream_from_child("poll", 1_000_000);
}

#[test]
fn a_million_messages_arrive_once_and_in_order_blocking() {
    stream_from_child("block", 1_000_000);
}

#[test]
fn messages_arrive_in_order_when_every_wait_sleeps_on_the_futex() {
    stream_from_child("futex", 100_000);
}

#[test]
fn zero_copy_and_batches_cross_processes_in_order() {
    stream_from_child("zerocopy", 1_000_000);
}

fn consumer_sees_producer_leave(how: &str) {
    let _serial = serial();
    let name = SegName::new(&format!("leave-{how}"));
    let mut rx = Consumer::<u64>::create_with(name.as_str(), 16, &Options::new().spin(0)).unwrap();
    let mut child = spawn_child("producer-leaves", name.as_str(), how);
    for i in 0..3 {
        assert_eq!(rx.recv_timeout(RECV_LIMIT), Ok(i), "messages sent before leaving are delivered");
    }
    // Now blocked on an empty ring until the producer's leaving wakes us.
    assert_eq!(rx.recv_timeout(RECV_LIMIT), Err(RecvTimeoutError::Disconnected));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert!(rx.is_disconnected());
    // Why: a producer that exited without dropping its end died; one that
    // dropped it left.
    let died = rx.peer_died();
    assert!(wait_child(&mut child, CHILD_LIMIT).success());
    assert_eq!(died, (how == "exit").then(|| child.id()));
}

#[test]
fn a_producer_that_drops_its_end_wakes_a_blocked_consumer() {
    consumer_sees_producer_leave("drop");
}

#[test]
fn a_producer_that_exits_without_dropping_wakes_a_blocked_consumer() {
    consumer_sees_producer_leave("exit");
}

#[test]
fn a_consumer_that_exits_wakes_a_producer_blocked_on_a_full_ring() {
    let _serial = serial();
    let name = SegName::new("consumer-exits");
    let mut tx = Producer::<u64>::create_with(name.as_str(), 4, &Options::new().spin(0)).unwrap();
    let mut child = spawn_child("consumer-exits", name.as_str(), "");
    let start = Instant::now();
    let mut sent = 0u64;
    let err = loop {
        match tx.send_timeout(sent, RECV_LIMIT) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(start.elapsed() < RECV_LIMIT, "watchdog: never disconnected");
    };
    assert!(matches!(err, SendTimeoutError::Disconnected(v) if v == sent), "the unsent value comes back");
    // The child took one and exited; the ring (4) filled behind it.
    assert_eq!(sent, 5);
    assert_eq!(tx.try_send(99), Err(TrySendError::Disconnected(99)));
    assert_eq!(tx.peer_died(), Some(child.id()), "the consumer exited without dropping its end");
    assert!(wait_child(&mut child, CHILD_LIMIT).success());
}

// ---------------------------------------------------------------------------
// Opening the wrong thing
// ---------------------------------------------------------------------------

#[test]
fn opening_with_another_element_type_is_a_type_mismatch() {
    let name = SegName::new("type");
    let _tx = Producer::<u64>::create(name.as_str(), 8).unwrap();
    let err = Consumer::<[u8; 32]>::open(name.as_str()).unwrap_err();
    assert!(matches!(err, OpenError::TypeMismatch { .. }), "{err}");
    let err = Consumer::<i64>::open(name.as_str()).unwrap_err();
    assert!(matches!(err, OpenError::TypeMismatch { .. }), "same size, other type: {err}");
    assert!(err.to_string().contains("u64"), "the message names the types: {err}");
    Consumer::<u64>::open(name.as_str()).unwrap();
}

#[test]
fn a_second_producer_or_consumer_is_refused() {
    let name = SegName::new("roles");
    let _tx = Producer::<u64>::create(name.as_str(), 8).unwrap();
    let err = Producer::<u64>::open(name.as_str()).unwrap_err();
    assert!(matches!(err, OpenError::RoleTaken { role: "producer", .. }), "{err}");
    let rx = Consumer::<u64>::open(name.as_str()).unwrap();
    assert!(matches!(Consumer::<u64>::open(name.as_str()), Err(OpenError::RoleTaken { role: "consumer", .. })));
    drop(rx);
    Consumer::<u64>::open(name.as_str()).expect("a role given up can be taken again");
}

#[test]
fn missing_names_existing_names_and_bad_names_are_errors() {
    let name = SegName::new("names");
    assert!(matches!(Consumer::<u64>::open(name.as_str()), Err(OpenError::NotFound(_))));
    let _tx = Producer::<u64>::create(name.as_str(), 8).unwrap();
    assert!(matches!(Producer::<u64>::create(name.as_str(), 8), Err(CreateError::AlreadyExists(_))));
    assert!(matches!(Producer::<u64>::create("/a/b", 8), Err(CreateError::InvalidName { .. })));
    assert!(matches!(Consumer::<u64>::open(""), Err(OpenError::InvalidName { .. })));
    assert!(matches!(Producer::<u64>::create("/x", 1 << 41), Err(CreateError::InvalidCapacity { .. })));
    assert!(matches!(Producer::<u64>::create("/x", 0), Err(CreateError::InvalidCapacity { .. })));
    assert!(matches!(spsc::channel::<()>(8), Err(CreateError::UnsupportedType { .. })));
}

#[test]
fn the_creator_removes_the_name_unless_told_to_keep_it() {
    let name = SegName::new("keep");
    drop(Producer::<u64>::create(name.as_str(), 8).unwrap());
    assert!(matches!(Consumer::<u64>::open(name.as_str()), Err(OpenError::NotFound(_))));
    drop(Producer::<u64>::create_with(name.as_str(), 8, &Options::new().keep(true)).unwrap());
    Consumer::<u64>::open(name.as_str()).expect("kept");
    procring::unlink(name.as_str()).unwrap();
    assert!(matches!(Consumer::<u64>::open(name.as_str()), Err(OpenError::NotFound(_))));
}

/// Byte offsets in the header (docs/design.md).
const OFF_MAGIC: u64 = 0;
const OFF_VERSION: u64 = 8;
const OFF_KIND: u64 = 12;
const OFF_STATE: u64 = 16;
const OFF_CAPACITY: u64 = 24;
const OFF_TOTAL: u64 = 48;

fn poke(path: &str, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

fn open_corrupted(offset: u64, bytes: &[u8]) -> OpenError {
    let name = SegName::new("corrupt");
    let _tx = Producer::<u64>::create(name.as_str(), 8).unwrap();
    poke(&name.path(), offset, bytes);
    let opts = Options::new().open_timeout(Duration::from_millis(50));
    Consumer::<u64>::open_with(name.as_str(), &opts).unwrap_err()
}

#[test]
fn a_corrupt_header_is_refused_with_what_differs() {
    let e = open_corrupted(OFF_MAGIC, b"NOTARING");
    assert!(matches!(&e, OpenError::Corrupt { what, .. } if what.contains("magic")), "{e}");
    let e = open_corrupted(OFF_VERSION, &99u32.to_le_bytes());
    assert!(matches!(e, OpenError::VersionMismatch { found: 99, .. }), "{e}");
    let e = open_corrupted(OFF_KIND, &77u32.to_le_bytes());
    assert!(matches!(&e, OpenError::Corrupt { what, .. } if what.contains("kind")), "{e}");
    let e = open_corrupted(OFF_CAPACITY, &0u64.to_le_bytes());
    assert!(matches!(&e, OpenError::Corrupt { what, .. } if what.contains("capacity 0")), "{e}");
    let e = open_corrupted(OFF_CAPACITY, &12u64.to_le_bytes());
    assert!(matches!(&e, OpenError::Corrupt { what, .. } if what.contains("do not match capacity 12")), "{e}");
    let e = open_corrupted(OFF_CAPACITY, &(1u64 << 40).to_le_bytes());
    assert!(matches!(e, OpenError::Corrupt { .. }), "a capacity the file cannot hold: {e}");
    let e = open_corrupted(OFF_TOTAL, &1u64.to_le_bytes());
    assert!(matches!(e, OpenError::Corrupt { .. }), "{e}");
    let e = open_corrupted(OFF_STATE, &0u32.to_le_bytes());
    assert!(matches!(e, OpenError::NotReady { .. }), "never published: {e}");
    let e = open_corrupted(OFF_STATE, &7u32.to_le_bytes());
    assert!(matches!(e, OpenError::Corrupt { .. }), "{e}");
}

#[test]
fn a_segment_smaller_than_its_header_or_full_of_noise_is_refused() {
    let name = SegName::new("noise");
    std::fs::write(name.path(), [0xA5u8; 64]).unwrap();
    let opts = Options::new().open_timeout(Duration::from_millis(50));
    assert!(matches!(Consumer::<u64>::open_with(name.as_str(), &opts), Err(OpenError::Corrupt { .. })));
    std::fs::write(name.path(), [0xA5u8; 4096]).unwrap();
    assert!(matches!(Consumer::<u64>::open_with(name.as_str(), &opts), Err(OpenError::Corrupt { .. })));
    std::fs::write(name.path(), []).unwrap();
    assert!(matches!(Consumer::<u64>::open_with(name.as_str(), &opts), Err(OpenError::NotReady { .. })));
}

#[test]
fn impossible_positions_are_reported_not_read() {
    let name = SegName::new("positions");
    let mut tx = Producer::<u64>::create(name.as_str(), 8).unwrap();
    let mut rx = Consumer::<u64>::open(name.as_str()).unwrap();
    tx.send(1).unwrap();
    assert_eq!(rx.recv(), Ok(1));
    // `tail` is the control block's first field.
    poke(&name.path(), common::CONTROL_OFFSET, &1000u64.to_le_bytes());
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Corrupt(_))));
    assert!(matches!(rx.recv(), Err(RecvError::Corrupt(_))));
}

// ---------------------------------------------------------------------------
// In one process
// ---------------------------------------------------------------------------

#[test]
fn capacity_len_full_and_empty_at_the_edges() {
    let (mut tx, mut rx) = spsc::channel::<u32>(4).unwrap();
    assert_eq!((tx.capacity(), rx.capacity()), (4, 4));
    assert!(rx.is_empty() && !rx.is_full());
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    for i in 0..4 {
        tx.try_send(i).unwrap();
        assert_eq!(tx.len(), i as usize + 1);
    }
    assert!(tx.is_full());
    assert_eq!(tx.try_send(9), Err(TrySendError::Full(9)), "a full ring hands the value back");
    assert_eq!(tx.send_timeout(9, Duration::from_millis(10)), Err(SendTimeoutError::Timeout(9)));
    assert!(matches!(tx.reserve_timeout(Duration::from_millis(10)), Err(SendTimeoutError::Timeout(()))));
    assert_eq!(rx.recv(), Ok(0));
    tx.try_send(4).unwrap();
    for i in 1..5 {
        assert_eq!(rx.try_recv(), Ok(i));
    }
    assert_eq!(rx.recv_timeout(Duration::from_millis(10)), Err(RecvTimeoutError::Timeout));
    // One slot free: a batch of three sends one, then times out on the rest.
    tx.send_batch(&[5, 6, 7]).unwrap();
    assert_eq!(tx.send_batch_timeout(&[8, 9, 10], Duration::from_millis(10)), Err(SendTimeoutError::Timeout(1)));
    for i in 5..9 {
        assert_eq!(rx.try_recv(), Ok(i));
    }
}

#[test]
fn capacity_one_wraps_around_many_times() {
    let (mut tx, mut rx) = spsc::channel::<u64>(1).unwrap();
    for i in 0..1000 {
        tx.try_send(i).unwrap();
        assert!(tx.try_send(0).unwrap_err().is_full());
        assert_eq!(rx.try_recv(), Ok(i));
    }
}

#[test]
fn zero_copy_slots_publish_only_when_committed() {
    let (mut tx, mut rx) = spsc::channel::<[u64; 4]>(2).unwrap();
    {
        let mut slot = tx.try_reserve().unwrap();
        slot[0] = 1;
    } // dropped uncommitted
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    let mut slot = tx.reserve().unwrap();
    *slot = [7, 8, 9, 10];
    slot.commit();
    {
        let r = rx.try_recv_ref().unwrap();
        assert_eq!(*r, [7, 8, 9, 10]);
        assert_eq!(tx.len(), 1, "the slot stays taken while read in place");
    }
    assert!(tx.is_empty(), "released when the guard drops");
}

#[test]
fn batches_send_and_receive_across_the_wrap_point() {
    let (mut tx, mut rx) = spsc::channel::<u16>(8).unwrap();
    tx.send_batch(&[1, 2, 3, 4, 5]).unwrap();
    let mut out = [0u16; 3];
    assert_eq!(rx.try_recv_batch(&mut out), Ok(3));
    assert_eq!(out, [1, 2, 3]);
    assert_eq!(tx.try_send_batch(&[6, 7, 8, 9, 10, 11, 12]), Ok(6), "as many as fit");
    assert_eq!(tx.try_send_batch(&[0]), Err(TrySendError::Full(())));
    let mut out = [0u16; 16];
    assert_eq!(rx.recv_batch(&mut out), Ok(8));
    assert_eq!(&out[..8], &[4, 5, 6, 7, 8, 9, 10, 11]);
    assert_eq!(rx.try_recv_batch(&mut out), Err(TryRecvError::Empty));
}

#[test]
fn dropping_either_end_disconnects_the_other() {
    let (mut tx, rx) = spsc::channel::<u8>(2).unwrap();
    drop(rx);
    assert_eq!(tx.send(1), Err(SendError(1)));
    assert!(tx.is_disconnected());

    let (mut tx, mut rx) = spsc::channel::<u8>(2).unwrap();
    tx.send(5).unwrap();
    drop(tx);
    assert_eq!(rx.recv(), Ok(5), "drained first");
    assert_eq!(rx.recv(), Err(RecvError::Disconnected));
}

#[test]
fn a_thread_blocked_in_recv_is_woken_by_the_producer_dropping() {
    let (tx, mut rx) = spsc::channel::<u8>(2).unwrap();
    let t = std::thread::spawn(move || rx.recv_timeout(RECV_LIMIT));
    std::thread::sleep(Duration::from_millis(50));
    drop(tx);
    assert_eq!(t.join().unwrap(), Err(RecvTimeoutError::Disconnected));
}

#[test]
fn threads_stream_in_order_in_every_wait_mode() {
    let _serial = serial();
    for spin in [0, 64, u32::MAX] {
        let (mut tx, mut rx) = spsc::channel::<u64>(64).unwrap();
        tx.set_spin(spin);
        rx.set_spin(spin);
        let t = std::thread::spawn(move || (0..200_000u64).try_for_each(|i| tx.send(i)));
        for i in 0..200_000u64 {
            assert_eq!(rx.recv_timeout(RECV_LIMIT), Ok(i));
        }
        t.join().unwrap().unwrap();
        assert_eq!(rx.recv(), Err(RecvError::Disconnected));
    }
}

/// Exactly `cap` sends fit in a ring nobody drains; one receive frees one.
fn holds_exactly(tx: &mut Producer<u64>, rx: &mut Consumer<u64>, cap: usize) {
    assert_eq!((tx.capacity(), rx.capacity()), (cap, cap));
    for i in 0..cap as u64 {
        tx.try_send(i).unwrap_or_else(|e| panic!("capacity {cap}: send {i}: {e:?}"));
    }
    assert!(tx.is_full() && rx.is_full());
    assert_eq!(tx.try_send(99), Err(TrySendError::Full(99)), "capacity {cap}");
    assert_eq!(rx.try_recv(), Ok(0));
    tx.try_send(cap as u64).unwrap();
    assert_eq!(tx.try_send(99), Err(TrySendError::Full(99)), "capacity {cap}, after one receive");
    for i in 1..=cap as u64 {
        assert_eq!(rx.try_recv(), Ok(i));
    }
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn any_capacity_is_held_exactly() {
    assert!(matches!(spsc::channel::<u64>(0), Err(CreateError::InvalidCapacity { .. })));
    for cap in [1, 2, 3, 5, 7, 10, 100, 1000] {
        let (mut tx, mut rx) = spsc::channel::<u64>(cap).unwrap();
        holds_exactly(&mut tx, &mut rx, cap);
        let name = SegName::new("spsc-capacity");
        let mut tx = Producer::<u64>::create(name.as_str(), cap).unwrap();
        let mut rx = Consumer::<u64>::open(name.as_str()).unwrap();
        holds_exactly(&mut tx, &mut rx, cap);
    }
}

#[test]
fn empty_batches_return_zero_at_once() {
    let (_tx, mut rx) = spsc::channel::<u64>(4).unwrap();
    assert_eq!(rx.try_recv_batch(&mut []), Ok(0));
    assert_eq!(rx.recv_batch(&mut []), Ok(0), "an empty batch does not wait");
    assert_eq!(rx.recv_batch_timeout(&mut [], Duration::from_secs(60)), Ok(0));
}

#[test]
fn iteration_ends_when_the_producer_is_gone() {
    let (mut tx, mut rx) = spsc::channel::<u32>(3).unwrap();
    let producer = std::thread::spawn(move || (0..50).for_each(|i| tx.send(i).unwrap()));
    assert_eq!(rx.iter().collect::<Vec<_>>(), (0..50).collect::<Vec<_>>());
    producer.join().unwrap();

    let (mut tx, mut rx) = spsc::channel::<u32>(8).unwrap();
    tx.send_batch(&[1, 2]).unwrap();
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
    tx.send(3).unwrap();
    drop(tx);
    assert_eq!((&mut rx).into_iter().collect::<Vec<_>>(), [3]);
    let (mut tx, rx) = spsc::channel::<u32>(8).unwrap();
    tx.send(4).unwrap();
    drop(tx);
    assert_eq!(rx.into_iter().collect::<Vec<_>>(), [4]);
}
