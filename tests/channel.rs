//! The queue's split handles, `queue::Sender` and `queue::Receiver`, as a
//! crossbeam-channel user expects them: bounded at any capacity, clones,
//! disconnection from either side, iteration; and across real processes,
//! disconnection when the other side's process drops its handles, exits
//! without dropping them, or is killed.

mod common;

use std::process::Child;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use common::{child_role, spawn_child, wait_child, SegName};
use procring::queue::{self, Receiver, Sender};
use procring::{Queue, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError};

const CHILD_LIMIT: Duration = Duration::from_secs(120);
/// How long a test waits for what must happen (a watchdog, not a timing
/// claim): a receiver's disconnection after a kill takes about two 50 ms
/// slices.
const LIMIT: Duration = Duration::from_secs(30);

fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn child_entry() {
    let Some((role, name, arg)) = child_role() else { return };
    match role.as_str() {
        // arg = "N how": open a sender, send 0..N, then leave as `how` says.
        "sender" => {
            let (n, how) = arg.split_once(' ').unwrap();
            let tx = Sender::<u64>::open(&name).unwrap();
            for i in 0..n.parse().unwrap() {
                tx.send(i).unwrap();
            }
            leave(tx, how);
        }
        // Open a receiver, then leave as arg says.
        "receiver" => leave(Receiver::<u64>::open(&name).unwrap(), &arg),
        // arg = "READY GO": open a sender, create file READY, wait for file
        // GO, then drop the sender and exit.
        "relay-sender" => {
            let (ready, go) = arg.split_once(' ').unwrap();
            let tx = Sender::<u64>::open(&name).unwrap();
            std::fs::write(ready, b"").unwrap();
            wait_for_file(go);
            tx.send(1).unwrap();
            drop(tx);
        }
        other => panic!("unknown child role {other}"),
    }
}

/// Leaves with `handle`: `drop` drops it and returns; `exit` exits without
/// running its destructor; `hang` sleeps until killed.
fn leave<H>(handle: H, how: &str) {
    match how {
        "drop" => drop(handle),
        "exit" => std::process::exit(0),
        "hang" => {
            println!("ready");
            loop {
                thread::sleep(Duration::from_secs(1));
            }
        }
        other => panic!("unknown way to leave {other}"),
    }
}

fn wait_for_file(path: &str) {
    let start = Instant::now();
    while !std::path::Path::new(path).exists() {
        assert!(start.elapsed() < CHILD_LIMIT, "{path} never appeared");
        thread::sleep(Duration::from_millis(1));
    }
}

// --- in one process, as crossbeam-channel's tests ------------------------

#[test]
fn smoke() {
    let (tx, rx) = queue::bounded::<i32>(1).unwrap();
    tx.send(7).unwrap();
    assert_eq!(rx.try_recv(), Ok(7));
    tx.send(8).unwrap();
    assert_eq!(rx.recv(), Ok(8));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Timeout));
}

#[test]
fn capacity_is_exact() {
    for cap in 1..=10 {
        let (tx, rx) = queue::bounded::<u8>(cap).unwrap();
        assert_eq!((tx.capacity(), rx.capacity()), (cap, cap));
        for i in 0..cap {
            tx.try_send(i as u8).unwrap();
        }
        assert_eq!(tx.try_send(0), Err(TrySendError::Full(0)), "capacity {cap}");
        assert!(tx.is_full() && rx.is_full());
        assert_eq!(rx.len(), cap);
        assert_eq!(rx.try_iter().count(), cap);
        assert!(rx.is_empty());
    }
    assert!(queue::bounded::<u8>(0).is_err(), "a rendezvous channel is refused");
}

#[test]
fn dropping_every_sender_disconnects_after_the_queue_drains() {
    let (tx, rx) = queue::bounded::<i32>(4).unwrap();
    let tx2 = tx.clone();
    tx.send(1).unwrap();
    drop(tx);
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "a clone still sends");
    tx2.send(2).unwrap();
    drop(tx2);
    assert_eq!(rx.recv(), Ok(2));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert_eq!(rx.recv(), Err(RecvError::Disconnected));
    assert_eq!(rx.recv_timeout(Duration::from_secs(1)), Err(RecvTimeoutError::Disconnected));
}

#[test]
fn dropping_every_receiver_fails_sends_with_the_value() {
    let (tx, rx) = queue::bounded::<i32>(4).unwrap();
    let rx2 = rx.clone();
    drop(rx);
    tx.send(1).unwrap();
    drop(rx2);
    assert_eq!(tx.try_send(2), Err(TrySendError::Disconnected(2)));
    assert_eq!(tx.send(3), Err(SendError(3)));
    assert_eq!(tx.send_timeout(4, Duration::from_secs(1)), Err(SendTimeoutError::Disconnected(4)));
    assert!(tx.try_reserve().is_err());
}

#[test]
fn a_receiver_blocked_on_empty_wakes_when_the_last_sender_drops() {
    let (tx, rx) = queue::bounded::<i32>(4).unwrap();
    let receiver = thread::spawn(move || (rx.recv(), rx.recv()));
    thread::sleep(Duration::from_millis(20));
    tx.send(5).unwrap();
    drop(tx);
    assert_eq!(receiver.join().unwrap(), (Ok(5), Err(RecvError::Disconnected)));
}

#[test]
fn a_sender_blocked_on_full_wakes_when_the_last_receiver_drops() {
    let (tx, rx) = queue::bounded::<i32>(1).unwrap();
    tx.send(1).unwrap();
    let sender = thread::spawn(move || tx.send(2));
    thread::sleep(Duration::from_millis(20));
    drop(rx);
    assert_eq!(sender.join().unwrap(), Err(SendError(2)));
}

#[test]
fn iteration_ends_at_disconnection() {
    let (tx, rx) = queue::bounded::<u32>(3).unwrap();
    let producer = thread::spawn(move || (0..100).for_each(|i| tx.send(i).unwrap()));
    assert_eq!(rx.iter().collect::<Vec<_>>(), (0..100).collect::<Vec<_>>());
    producer.join().unwrap();

    let (tx, rx) = queue::bounded::<u32>(8).unwrap();
    tx.send_batch(&[1, 2, 3]).unwrap();
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2, 3], "try_iter takes what is ready");
    tx.send(4).unwrap();
    drop(tx);
    let by_ref: Vec<u32> = (&rx).into_iter().collect();
    assert_eq!(by_ref, [4]);
    let (tx, rx) = queue::bounded::<u32>(8).unwrap();
    tx.send(5).unwrap();
    drop(tx);
    assert_eq!(rx.into_iter().collect::<Vec<_>>(), [5]);
}

#[test]
fn many_senders_and_receivers_in_threads_lose_and_duplicate_nothing() {
    let (tx, rx) = queue::bounded::<u64>(7).unwrap();
    let senders: Vec<_> = (0..3u64)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || (0..10_000).for_each(|i| tx.send(p << 32 | i).unwrap()))
        })
        .collect();
    drop(tx);
    let receivers: Vec<_> =
        (0..3).map(|_| rx.clone()).map(|rx| thread::spawn(move || rx.iter().collect::<Vec<_>>())).collect();
    drop(rx);
    senders.into_iter().for_each(|s| s.join().unwrap());
    let mut all: Vec<u64> = receivers.into_iter().flat_map(|r| r.join().unwrap()).collect();
    all.sort_unstable();
    let want: Vec<u64> = (0..3u64).flat_map(|p| (0..10_000).map(move |i| p << 32 | i)).collect();
    assert_eq!(all, want);
}

#[test]
fn a_closed_queue_handle_sends_no_more_and_stops_counting() {
    let q = Queue::<u32>::new(4).unwrap();
    let rx = q.receiver();
    q.send(1).unwrap();
    assert!(q.close());
    assert!(!q.close(), "closing twice reports it");
    assert!(q.is_closed() && !q.is_shutdown());
    assert_eq!(q.try_send(2), Err(TrySendError::Disconnected(2)));
    // The closed handle was the only sender: the receiver drains, then
    // disconnects; the closed handle still receives.
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.recv(), Err(RecvError::Disconnected));
    assert_eq!(q.try_recv(), Err(TryRecvError::Disconnected));
}

#[test]
fn shutdown_ends_the_queue_for_every_handle() {
    let q = Queue::<u32>::new(4).unwrap();
    let (tx, rx) = (q.sender(), q.receiver());
    tx.send(1).unwrap();
    assert!(q.shutdown());
    assert!(tx.is_shutdown() && rx.is_shutdown());
    assert_eq!(tx.try_send(2), Err(TrySendError::Disconnected(2)));
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.recv(), Err(RecvError::Disconnected));
}

// --- across processes ------------------------------------------------------

fn spawn(role: &str, name: &SegName, arg: &str) -> Child {
    spawn_child(role, name.as_str(), arg)
}

/// A receiver in this process, a sender process that sends `n` and then
/// leaves as `how` says: the receiver gets all `n`, then `Disconnected`.
fn receiver_sees_the_sender_process_leave(how: &str) {
    let _s = serial();
    let name = SegName::new("channel-sender-leaves");
    let (tx, rx) = queue::create::<u64>(name.as_str(), 16).unwrap();
    drop(tx);
    let mut child = spawn("sender", &name, &format!("1000 {how}"));
    let start = Instant::now();
    let mut got = Vec::new();
    loop {
        match rx.recv_timeout(LIMIT) {
            Ok(v) => got.push(v),
            Err(RecvTimeoutError::Disconnected) if got.len() == 1000 => break,
            Err(RecvTimeoutError::Disconnected) => {
                // Before the child opened its sender, nobody sends: wait for it.
                assert!(start.elapsed() < LIMIT, "never saw the sender");
                thread::sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("{how}: after {} messages: {e:?}", got.len()),
        }
    }
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
    assert!(wait_child(&mut child, CHILD_LIMIT).success());
}

#[test]
fn a_sender_process_that_drops_its_handle_disconnects_the_receiver() {
    receiver_sees_the_sender_process_leave("drop");
}

#[test]
fn a_sender_process_that_exits_without_dropping_disconnects_the_receiver() {
    receiver_sees_the_sender_process_leave("exit");
}

/// Waits until `child`, which prints "ready" when it has its handle, does;
/// returns its output, to keep open until it is killed.
fn wait_ready(child: &mut Child) -> impl Sized {
    use std::io::BufRead;
    let mut out = std::io::BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    while !line.contains("ready") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the child ended before it was ready");
    }
    out
}

/// Joins `t`, failing with `what` if it has not finished within [`LIMIT`]
/// (a watchdog, not a timing claim).
fn join_within<R>(t: thread::JoinHandle<R>, what: &str) -> R {
    let start = Instant::now();
    while !t.is_finished() {
        assert!(start.elapsed() < LIMIT, "{what}");
        thread::sleep(Duration::from_millis(5));
    }
    t.join().unwrap()
}

fn spawn_piped(role: &str, name: &SegName, arg: &str) -> Child {
    common::child_command(role, name.as_str(), arg).stdout(std::process::Stdio::piped()).spawn().unwrap()
}

#[test]
fn a_receiver_blocked_while_the_sender_process_is_killed_is_disconnected() {
    let _s = serial();
    let name = SegName::new("channel-sender-killed");
    let (tx, rx) = queue::create::<u64>(name.as_str(), 16).unwrap();
    drop(tx);
    let mut child = spawn_piped("sender", &name, "3 hang");
    let _out = wait_ready(&mut child);
    let receiver = thread::spawn(move || {
        let got: Vec<u64> = rx.iter().collect();
        (got, rx.try_recv())
    });
    thread::sleep(Duration::from_millis(20));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let got = join_within(receiver, "the receiver never saw the sender die");
    assert_eq!(got, (vec![0, 1, 2], Err(TryRecvError::Disconnected)));
}

#[test]
fn a_sender_blocked_while_the_receiver_process_is_killed_gets_its_value_back() {
    let _s = serial();
    let name = SegName::new("channel-receiver-killed");
    let (tx, rx) = queue::create::<u64>(name.as_str(), 2).unwrap();
    drop(rx);
    let mut child = spawn_piped("receiver", &name, "hang");
    let _out = wait_ready(&mut child);
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    let sender = thread::spawn(move || tx.send(3));
    thread::sleep(Duration::from_millis(20));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(join_within(sender, "the sender never saw the receiver die"), Err(SendError(3)));
}

#[test]
fn a_receiver_process_that_drops_its_handle_fails_sends_at_once() {
    let _s = serial();
    let name = SegName::new("channel-receiver-drops");
    let (tx, rx) = queue::create::<u64>(name.as_str(), 4).unwrap();
    let mut child = spawn("receiver", &name, "drop");
    assert!(wait_child(&mut child, CHILD_LIMIT).success());
    tx.send(1).unwrap();
    drop(rx);
    assert_eq!(tx.try_send(2), Err(TrySendError::Disconnected(2)));
}

/// Senders hand over across processes: each opens its sender before the
/// one before it sends its message and drops, so some sender lives
/// throughout, and the receiver's iteration takes every message and ends
/// only after the last one leaves.
#[test]
fn a_sender_opening_while_the_last_one_drops_keeps_the_queue_connected() {
    let _s = serial();
    const RELAY: usize = 6;
    let name = SegName::new("channel-relay");
    let dir = std::env::temp_dir().join(format!("procring-relay-{}-{}", std::process::id(), name.as_str().len()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |what: &str, i: usize| dir.join(format!("{what}-{i}")).to_string_lossy().into_owned();
    let (tx, rx) = queue::create::<u64>(name.as_str(), 64).unwrap();
    let receiver = thread::spawn(move || rx.iter().count());
    let mut children = Vec::new();
    for i in 0..RELAY {
        children.push(spawn("relay-sender", &name, &format!("{} {}", file("ready", i), file("go", i))));
        wait_for_file(&file("ready", i));
        if i > 0 {
            std::fs::write(file("go", i - 1), b"").unwrap();
        }
    }
    drop(tx);
    std::fs::write(file("go", RELAY - 1), b"").unwrap();
    for c in &mut children {
        assert!(wait_child(c, CHILD_LIMIT).success());
    }
    assert_eq!(receiver.join().unwrap(), RELAY, "every relay's message, and no disconnection before the last");
    let _ = std::fs::remove_dir_all(&dir);
}
