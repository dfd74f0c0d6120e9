//! `Queue<T>`: in-process behaviour, and many producer and consumer
//! processes on one queue (this binary re-executed in child roles).

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::{child_role, spawn_child, wait_child, SegName};
use procring::spsc::Producer;
use procring::{OpenError, Queue, RecvError, RecvTimeoutError, SendError, TryRecvError, TrySendError};

const CHILD_LIMIT: Duration = Duration::from_secs(120);
const PER_PRODUCER: u64 = 500_000;

fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A message: the producer's id in the high half, its sequence number low.
fn msg(producer: u64, seq: u64) -> u64 {
    producer << 32 | seq
}

#[test]
fn child_entry() {
    let Some((role, name, arg)) = child_role() else { return };
    match role.as_str() {
        // arg = producer id: send PER_PRODUCER numbered messages, mixing
        // blocking, timed, non-blocking and zero-copy sends.
        "producer" => {
            let id: u64 = arg.parse().unwrap();
            produce(&Queue::<u64>::open(&name).unwrap(), id, 0..PER_PRODUCER);
        }
        // arg = "STAGED GO": producer 0 sends STAGE messages alone, creates
        // file STAGED, waits for file GO, then sends the rest.
        "staged-producer" => {
            let (staged, go) = arg.split_once(' ').unwrap();
            let q = Queue::<u64>::open(&name).unwrap();
            produce(&q, 0, 0..STAGE);
            std::fs::write(staged, b"").unwrap();
            wait_for_file(go);
            produce(&q, 0, STAGE..STAGED_TOTAL);
        }
        // arg = output file: receive until closed, check each producer's
        // order, and write what arrived for the parent to check.
        "consumer" => {
            let q = Queue::<u64>::open(&name).unwrap();
            let mut got = Vec::new();
            let mut last = [None::<u64>; 2];
            loop {
                let r = match got.len() % 3 {
                    0 => q.recv().map_err(|_| ()),
                    1 => q.recv_timeout(Duration::from_secs(60)).map_err(|_| ()),
                    _ => q.recv_ref().map(|r| *r).map_err(|_| ()),
                };
                let Ok(m) = r else { break };
                let (p, seq) = ((m >> 32) as usize, m & 0xffff_ffff);
                assert!(last[p].is_none_or(|l| seq > l), "producer {p}'s messages out of order: {seq} after {last:?}");
                last[p] = Some(seq);
                got.push(m);
            }
            assert!(q.is_shutdown());
            let bytes: Vec<u8> = got.iter().flat_map(|m| m.to_le_bytes()).collect();
            std::fs::write(&arg, bytes).unwrap();
        }
        // Block in recv until another process closes the queue.
        "blocked-receiver" => {
            let q = Queue::<u64>::open(&name).unwrap();
            assert_eq!(q.recv_timeout(Duration::from_secs(60)), Err(RecvTimeoutError::Disconnected));
        }
        // arg = rounds: the try_recv probe's loop, in its own process.
        "send-try-recv" => {
            let q = Queue::<i32>::open(&name).unwrap();
            let empties = send_try_recv_rounds(&q, arg.parse().unwrap());
            assert_eq!(empties, 0, "try_recv reported Empty {empties} times with messages queued");
        }
        other => panic!("unknown child role {other}"),
    }
}

/// `rounds` rounds of `send(0); try_recv()`; returns how many receives
/// said `Empty`. Each round's own message was sent before its receive, so
/// with every thread doing the same, `Empty` is never honest.
fn send_try_recv_rounds(q: &Queue<i32>, rounds: u32) -> u32 {
    let mut empties = 0;
    for _ in 0..rounds {
        q.send(0).unwrap();
        match q.try_recv() {
            Ok(_) => {}
            Err(TryRecvError::Empty) => empties += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    empties
}

#[test]
fn try_recv_is_never_empty_while_messages_are_queued_four_threads() {
    let _s = serial();
    let q = Queue::<i32>::new(4).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let q = q.clone();
            std::thread::spawn(move || send_try_recv_rounds(&q, 25_000))
        })
        .collect();
    let empties: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(empties, 0, "try_recv reported Empty with messages queued");
    assert!(q.is_empty());
}

#[test]
fn try_recv_is_never_empty_while_messages_are_queued_four_processes() {
    let _s = serial();
    let name = SegName::new("queue-try-recv");
    let _q = Queue::<i32>::create(name.as_str(), 4).unwrap();
    let mut children: Vec<_> = (0..4).map(|_| spawn_child("send-try-recv", name.as_str(), "10000")).collect();
    for c in &mut children {
        assert!(wait_child(c, CHILD_LIMIT).success(), "a child saw Empty with messages queued (or failed)");
    }
}

/// Sends producer `id`'s messages `seqs`, mixing blocking, timed,
/// non-blocking and zero-copy sends.
fn produce(q: &Queue<u64>, id: u64, seqs: std::ops::Range<u64>) {
    for seq in seqs {
        let m = msg(id, seq);
        match seq % 4 {
            0 => q.send(m).unwrap(),
            1 => q.send_timeout(m, Duration::from_secs(60)).unwrap(),
            2 => {
                let mut v = m;
                loop {
                    match q.try_send(v) {
                        Ok(()) => break,
                        Err(TrySendError::Full(back)) => {
                            v = back;
                            std::thread::yield_now();
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            _ => {
                let mut slot = q.reserve().unwrap();
                *slot = m;
                slot.commit();
            }
        }
    }
}

/// Waits (up to the child limit) for `path` to exist.
fn wait_for_file(path: &str) {
    let start = std::time::Instant::now();
    while !std::path::Path::new(path).exists() {
        assert!(start.elapsed() < CHILD_LIMIT, "{path} never appeared");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Files a test made, removed however it ends.
struct Files(Vec<String>);

impl Drop for Files {
    fn drop(&mut self) {
        for f in &self.0 {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// Reads the consumers' output files: how often each (producer, seq)
/// arrived, for producers sending `counts[p]` messages each.
fn arrivals(outs: &[String], counts: &[u64]) -> Vec<Vec<u8>> {
    let mut seen: Vec<Vec<u8>> = counts.iter().map(|&n| vec![0u8; n as usize]).collect();
    for o in outs {
        let bytes = std::fs::read(o).unwrap();
        for m in bytes.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())) {
            seen[(m >> 32) as usize][(m & 0xffff_ffff) as usize] += 1;
        }
    }
    seen
}

fn assert_each_once(seen: &[Vec<u8>]) {
    for (p, s) in seen.iter().enumerate() {
        let lost = s.iter().filter(|&&n| n == 0).count();
        let dup = s.iter().filter(|&&n| n > 1).count();
        assert_eq!((lost, dup), (0, 0), "producer {p}: {lost} lost, {dup} duplicated");
    }
}

/// Messages the staged producer sends alone: far more than a side's
/// uncontended run that takes the bias (4096), plus a full queue.
const STAGE: u64 = 20_000;
const STAGED_TOTAL: u64 = 120_000;

fn counter(info: &procring::SegmentInfo, name: &str) -> u64 {
    info.counters.iter().find(|(n, _)| n.starts_with(name)).unwrap_or_else(|| panic!("no counter {name}")).1
}

#[test]
fn a_lone_sender_and_receiver_take_the_bias_and_processes_that_join_revoke_it() {
    let _serial = serial();
    let name = SegName::new("queue-bias");
    let q = Queue::<u64>::create(name.as_str(), 1024).unwrap();
    let base = format!("/tmp{}", name.as_str());
    let outs: Vec<String> = (0..2).map(|i| format!("{base}-consumer{i}")).collect();
    let (staged, go) = (format!("{base}-staged"), format!("{base}-go"));
    let _files = Files([outs.clone(), vec![staged.clone(), go.clone()]].concat());
    let mut first = spawn_child("consumer", name.as_str(), &outs[0]);
    let mut p0 = spawn_child("staged-producer", name.as_str(), &format!("{staged} {go}"));
    wait_for_file(&staged);
    // One sender has sent STAGE messages and one receiver taken all but at
    // most a queue's worth, each alone: both own their side's bias.
    let info = procring::inspect(name.as_str()).unwrap();
    assert_eq!(counter(&info, "send bias"), 1, "{:?}", info.counters);
    assert_eq!(counter(&info, "receive bias"), 1, "{:?}", info.counters);
    let mut second = spawn_child("consumer", name.as_str(), &outs[1]);
    let mut p1 = spawn_child("producer", name.as_str(), "1");
    std::fs::write(&go, b"").unwrap();
    for p in [&mut p0, &mut p1] {
        assert!(wait_child(p, CHILD_LIMIT).success(), "a producer failed");
    }
    assert!(q.shutdown());
    for c in [&mut first, &mut second] {
        assert!(wait_child(c, CHILD_LIMIT).success(), "a consumer failed");
    }
    assert_each_once(&arrivals(&outs, &[STAGED_TOTAL, PER_PRODUCER]));
    // The second sender's first claim revoked the first one's bias.
    let info = procring::inspect(name.as_str()).unwrap();
    assert!(counter(&info, "biases revoked") >= 1, "{:?}", info.counters);
    assert_eq!(counter(&info, "send bias"), 3, "close ends the send bias for good");
}

#[test]
fn two_producer_and_two_consumer_processes_deliver_every_message_once_in_order() {
    let _serial = serial();
    let name = SegName::new("queue-2x2");
    let q = Queue::<u64>::create(name.as_str(), 1024).unwrap();
    let outs: Vec<String> = (0..2).map(|i| format!("/tmp{}-consumer{i}", name.as_str())).collect();
    let mut consumers: Vec<_> = outs.iter().map(|o| spawn_child("consumer", name.as_str(), o)).collect();
    let mut producers: Vec<_> = (0..2).map(|i| spawn_child("producer", name.as_str(), &i.to_string())).collect();
    for p in &mut producers {
        assert!(wait_child(p, CHILD_LIMIT).success(), "a producer failed");
    }
    assert!(q.shutdown());
    for c in &mut consumers {
        assert!(wait_child(c, CHILD_LIMIT).success(), "a consumer failed");
    }
    let _files = Files(outs.clone());
    assert_each_once(&arrivals(&outs, &[PER_PRODUCER, PER_PRODUCER]));
    assert_eq!(q.skipped(), 0);
}

#[test]
fn shutdown_in_one_process_wakes_a_blocked_recv_in_another() {
    let _serial = serial();
    let name = SegName::new("queue-close");
    let q = Queue::<u64>::create(name.as_str(), 8).unwrap();
    let mut child = spawn_child("blocked-receiver", name.as_str(), "");
    // Give the child time to block; the outcome does not depend on it.
    std::thread::sleep(Duration::from_millis(200));
    q.shutdown();
    assert!(wait_child(&mut child, CHILD_LIMIT).success());
}

#[test]
fn a_queue_opened_with_another_element_type_or_kind_is_refused() {
    let name = SegName::new("queue-type");
    let _q = Queue::<u64>::create(name.as_str(), 8).unwrap();
    let err = Queue::<[u8; 32]>::open(name.as_str()).unwrap_err();
    assert!(matches!(err, OpenError::TypeMismatch { .. }), "{err}");
    let err = Queue::<i64>::open(name.as_str()).unwrap_err();
    assert!(matches!(err, OpenError::TypeMismatch { .. }), "{err}");
    let err = Producer::<u64>::open(name.as_str()).unwrap_err();
    assert!(matches!(err, OpenError::KindMismatch { .. }), "{err}");
    Queue::<u64>::open(name.as_str()).unwrap();
}

#[test]
fn handles_in_one_process_share_the_queue() {
    let name = SegName::new("queue-handles");
    let a = Queue::<u32>::create(name.as_str(), 4).unwrap();
    let b = Queue::<u32>::open(name.as_str()).unwrap();
    let c = b.clone();
    a.send(1).unwrap();
    c.send(2).unwrap();
    assert_eq!(b.len(), 2);
    assert_eq!((a.recv(), c.recv()), (Ok(1), Ok(2)));
}

// ---------------------------------------------------------------------------
// In one process
// ---------------------------------------------------------------------------

#[test]
fn full_and_empty_edges_hand_values_back() {
    let q = Queue::<u32>::new(2).unwrap();
    assert_eq!(q.try_recv(), Err(TryRecvError::Empty));
    q.try_send(1).unwrap();
    q.try_send(2).unwrap();
    assert!(q.is_full());
    assert_eq!(q.try_send(3), Err(TrySendError::Full(3)));
    assert!(q.send_timeout(3, Duration::from_millis(10)).unwrap_err().is_timeout());
    assert!(q.reserve_timeout(Duration::from_millis(10)).unwrap_err().is_timeout(), "zero-copy, full");
    assert_eq!(q.try_recv(), Ok(1));
    q.try_send(3).unwrap();
    assert_eq!((q.recv(), q.recv()), (Ok(2), Ok(3)));
    assert!(q.is_empty());
    assert_eq!(q.recv_timeout(Duration::from_millis(10)), Err(RecvTimeoutError::Timeout));
    assert_eq!(
        q.recv_ref_timeout(Duration::from_millis(10)).err(),
        Some(RecvTimeoutError::Timeout),
        "zero-copy, empty"
    );
}

#[test]
fn shutdown_fails_sends_and_drains_before_disconnecting() {
    let q = Queue::<u8>::new(4).unwrap();
    q.send(1).unwrap();
    q.send(2).unwrap();
    assert!(q.shutdown());
    assert!(!q.shutdown(), "shutting down twice reports it");
    assert_eq!(q.send(3), Err(SendError(3)));
    assert_eq!(q.try_send(3), Err(TrySendError::Disconnected(3)));
    assert_eq!((q.recv(), q.try_recv()), (Ok(1), Ok(2)));
    assert_eq!(q.recv(), Err(RecvError::Disconnected));
    assert_eq!(q.try_recv(), Err(TryRecvError::Disconnected));
}

#[test]
fn a_capacity_of_zero_and_a_zero_sized_type_are_refused() {
    use procring::CreateError;
    assert!(matches!(Queue::<u8>::new(0), Err(CreateError::InvalidCapacity { .. })));
    assert!(matches!(Queue::<u8>::new(usize::MAX), Err(CreateError::InvalidCapacity { .. })));
    assert!(matches!(Queue::<()>::new(2), Err(CreateError::UnsupportedType { .. })));
}

/// A capacity that no memory holds is an error, not an abort: each of these
/// asks for petabytes.
#[test]
fn a_capacity_too_large_for_memory_is_refused() {
    use procring::CreateError;
    let huge = 1 << 40;
    assert!(matches!(Queue::<[u8; 4096]>::new(huge), Err(CreateError::InvalidCapacity { .. })));
    assert!(matches!(procring::queue::bounded::<[u8; 4096]>(huge), Err(CreateError::InvalidCapacity { .. })));
    assert!(matches!(procring::spsc::channel::<[u8; 4096]>(huge), Err(CreateError::InvalidCapacity { .. })));
    #[cfg(feature = "serde")]
    assert!(matches!(procring::SerdeQueue::<String>::new(huge, 4096), Err(CreateError::InvalidCapacity { .. })));
}

/// Fills `q` (nobody receiving): exactly `cap` sends fit, the next is
/// `Full`; one receive makes room for exactly one more; all come out in
/// order.
fn holds_exactly(q: &Queue<u64>, cap: usize) {
    assert_eq!(q.capacity(), cap);
    for i in 0..cap as u64 {
        q.try_send(i).unwrap_or_else(|e| panic!("capacity {cap}: send {i}: {e:?}"));
    }
    assert!(q.is_full());
    assert_eq!(q.try_send(99), Err(TrySendError::Full(99)), "capacity {cap}");
    assert_eq!(q.send_timeout(99, Duration::from_millis(1)), Err(procring::SendTimeoutError::Timeout(99)));
    assert_eq!(q.try_recv(), Ok(0));
    q.try_send(cap as u64).unwrap();
    assert_eq!(q.try_send(99), Err(TrySendError::Full(99)), "capacity {cap}, after one receive");
    for i in 1..=cap as u64 {
        assert_eq!(q.try_recv(), Ok(i));
    }
    assert_eq!(q.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn any_capacity_is_held_exactly() {
    for cap in [1, 2, 3, 5, 6, 7, 10, 100, 1000] {
        holds_exactly(&Queue::<u64>::new(cap).unwrap(), cap);
        let name = SegName::new("queue-capacity");
        let q = Queue::<u64>::create(name.as_str(), cap).unwrap();
        holds_exactly(&q, cap);
        holds_exactly(&Queue::<u64>::open(name.as_str()).unwrap(), cap);
    }
}

#[test]
fn threads_blocked_on_both_sides_are_woken_by_shutdown() {
    let q = Queue::<u8>::new(2).unwrap();
    q.send(0).unwrap();
    q.send(0).unwrap();
    let full = q.clone();
    let sender = std::thread::spawn(move || full.send(1));
    let empty = Queue::<u8>::new(2).unwrap();
    let e2 = empty.clone();
    let receiver = std::thread::spawn(move || e2.recv());
    std::thread::sleep(Duration::from_millis(50));
    q.shutdown();
    empty.shutdown();
    assert_eq!(sender.join().unwrap(), Err(SendError(1)));
    assert_eq!(receiver.join().unwrap(), Err(RecvError::Disconnected));
}

#[test]
fn an_uncommitted_reservation_is_skipped_not_delivered() {
    let q = Queue::<[u64; 2]>::new(4).unwrap();
    drop(q.reserve().unwrap());
    let mut s = q.reserve().unwrap();
    *s = [5, 6];
    s.commit();
    assert_eq!(*q.recv_ref().unwrap(), [5, 6]);
    assert_eq!(q.skipped(), 1);
    assert_eq!(q.try_recv(), Err(TryRecvError::Empty));
}

#[test]
fn a_receiver_holding_a_message_in_place_holds_up_only_its_own_slot() {
    let q = Queue::<u32>::new(4).unwrap();
    q.send_batch(&[1, 2]).unwrap();
    let held = q.recv_ref().unwrap();
    // Another handle takes the next message and finishes first: it returns
    // at once, without waiting for the held one.
    assert_eq!(q.clone().recv_timeout(Duration::from_secs(10)), Ok(2));
    q.send_batch(&[3, 4]).unwrap();
    // The held message's slot is the next lap's first: no room until it goes.
    assert_eq!(q.try_send(5), Err(TrySendError::Full(5)));
    assert_eq!(*held, 1);
    drop(held);
    // Both slots are free now, the one finished out of order included.
    assert_eq!((q.try_send(5), q.try_send(6)), (Ok(()), Ok(())));
    let mut out = [0; 4];
    assert_eq!(q.try_recv_batch(&mut out), Ok(4));
    assert_eq!(out, [3, 4, 5, 6]);
}

#[test]
fn batches_send_all_and_receive_what_is_ready() {
    let q = Queue::<u16>::new(8).unwrap();
    q.send_batch(&[1, 2, 3]).unwrap();
    assert_eq!(q.try_send_batch(&[4, 5, 6, 7, 8, 9, 10]), Ok(5));
    let mut out = [0u16; 16];
    assert_eq!(q.recv_batch(&mut out), Ok(8));
    assert_eq!(&out[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(q.try_recv_batch(&mut out), Err(TryRecvError::Empty));
}

#[test]
fn four_threads_each_way_lose_and_duplicate_nothing() {
    let q = Queue::<u64>::new(64).unwrap();
    const N: u64 = 50_000;
    let producers: Vec<_> = (0..4)
        .map(|p| {
            let q = q.clone();
            std::thread::spawn(move || (0..N).for_each(|i| q.send(msg(p, i)).unwrap()))
        })
        .collect();
    let consumers: Vec<_> = (0..4)
        .map(|_| {
            let q = q.clone();
            std::thread::spawn(move || {
                let mut last = [None::<u64>; 4];
                let mut got = vec![];
                while let Ok(m) = q.recv() {
                    let (p, i) = ((m >> 32) as usize, m & 0xffff_ffff);
                    assert!(last[p].is_none_or(|l| i > l), "per-producer order");
                    last[p] = Some(i);
                    got.push(m);
                }
                got
            })
        })
        .collect();
    producers.into_iter().for_each(|p| p.join().unwrap());
    q.shutdown();
    let mut all: Vec<u64> = consumers.into_iter().flat_map(|c| c.join().unwrap()).collect();
    all.sort_unstable();
    let expected: Vec<u64> = (0..4).flat_map(|p| (0..N).map(move |i| msg(p, i))).collect();
    assert_eq!(all, expected);
}

// ---------------------------------------------------------------------------
// Serialized values
// ---------------------------------------------------------------------------

mod serialized {
    use super::*;
    use procring::{MessageRecvError, MessageSendError, SerdeQueue};

    type Record = (i32, Option<i32>, String);

    #[test]
    fn values_round_trip_between_handles_of_a_named_queue() {
        let name = SegName::new("serde-named");
        let a = SerdeQueue::<Record>::create(name.as_str(), 4, 64).unwrap();
        let b = SerdeQueue::<Record>::open(name.as_str()).unwrap();
        assert_eq!(b.max_bytes(), 64, "the opener takes the creator's slot size");
        a.send(&(42, None, "hello".into())).unwrap();
        a.try_send(&(-1, Some(7), String::new())).unwrap();
        assert_eq!(b.recv(), Ok((42, None, "hello".into())));
        assert_eq!(b.try_recv(), Ok((-1, Some(7), String::new())));
        assert_eq!(b.try_recv(), Err(MessageRecvError::Empty));
        a.shutdown();
        assert_eq!(b.recv(), Err(MessageRecvError::Disconnected));
    }

    #[test]
    fn any_capacity_is_held_exactly() {
        for cap in [1, 3, 10] {
            let q = SerdeQueue::<String>::new(cap, 16).unwrap();
            assert_eq!(q.capacity(), cap);
            for i in 0..cap {
                q.try_send(&i.to_string()).unwrap();
            }
            assert!(matches!(q.try_send(&"x".to_owned()), Err(MessageSendError::Full)), "capacity {cap}");
            assert_eq!(q.try_recv(), Ok("0".to_owned()));
        }
        assert!(SerdeQueue::<String>::new(0, 16).is_err());
    }

    #[test]
    fn try_recv_is_never_empty_while_values_are_queued() {
        let q = SerdeQueue::<String>::new(4, 32).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let q = q.clone();
                std::thread::spawn(move || {
                    let mut empties = 0;
                    for _ in 0..10_000 {
                        q.send(&"x".to_owned()).unwrap();
                        empties += u32::from(q.try_recv() == Err(MessageRecvError::Empty));
                    }
                    empties
                })
            })
            .collect();
        let empties: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(empties, 0, "try_recv reported Empty with values queued");
    }

    #[test]
    fn timed_calls_time_out_at_the_full_and_empty_edges() {
        let q = SerdeQueue::<u32>::new(2, 8).unwrap();
        assert_eq!(q.recv_timeout(Duration::from_millis(10)), Err(MessageRecvError::Timeout));
        q.send_timeout(&1, Duration::from_millis(10)).unwrap();
        q.send(&2).unwrap();
        assert_eq!(q.send_timeout(&3, Duration::from_millis(10)), Err(MessageSendError::Timeout));
        assert_eq!(q.recv_timeout(Duration::from_millis(10)), Ok(1));
    }

    #[test]
    fn a_value_too_large_for_a_slot_is_refused_with_both_sizes() {
        let q = SerdeQueue::<Vec<u8>>::new(2, 16).unwrap();
        q.send(&vec![1; 15]).unwrap(); // 1 length byte + 15
        let err = q.send(&vec![1; 16]).unwrap_err();
        assert_eq!(err, MessageSendError::TooLarge { size: 17, limit: 16 });
        assert!(err.to_string().contains("17") && err.to_string().contains("16"), "{err}");
        assert_eq!(q.recv(), Ok(vec![1; 15]));
    }

    #[test]
    fn a_serialized_queue_is_not_a_pod_queue_nor_one_of_another_type() {
        let name = SegName::new("serde-type");
        let _q = SerdeQueue::<u64>::create(name.as_str(), 4, 16).unwrap();
        assert!(matches!(Queue::<u64>::open(name.as_str()), Err(OpenError::TypeMismatch { .. })));
        assert!(matches!(SerdeQueue::<String>::open(name.as_str()), Err(OpenError::TypeMismatch { .. })));
    }

    #[test]
    fn a_corrupt_length_is_reported_not_read() {
        let name = SegName::new("serde-corrupt");
        let q = SerdeQueue::<String>::create(name.as_str(), 2, 16).unwrap();
        q.send(&"abc".into()).unwrap();
        // Slot 0's payload (after the 8-byte sequence word) starts with the
        // length; the slot region follows the 768-byte control block.
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(name.path()).unwrap();
        f.write_all_at(&1_000_000u32.to_le_bytes(), crate::common::CONTROL_OFFSET + 768 + 8).unwrap();
        assert!(matches!(q.recv(), Err(MessageRecvError::Corrupt(_))));
        q.send(&"next".into()).unwrap();
        assert_eq!(q.recv(), Ok("next".to_owned()), "the queue goes on");
    }
}
