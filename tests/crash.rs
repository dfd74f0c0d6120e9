//! Processes SIGKILLed at the worst moments, 100 times each: while holding
//! a queue slot claimed for zero-copy writing, while reading one in place,
//! in the middle of a stream of sends, while blocked in `recv`, and while
//! holding a `Value`'s lock. Each time the survivors must neither hang nor
//! lose or duplicate a published message, and every message delivered must
//! be whole. (This binary re-executed in child roles; each child tells the
//! parent it has reached the point through a shared flag, then waits to be
//! killed.)

mod common;

use std::process::Child;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{child_role, spawn_child, SegName};
use procring::{Queue, Value};

const ROUNDS: u64 = 100;
/// Far longer than recovery needs (two 50 ms slices); only a hang reaches it.
const LIMIT: Duration = Duration::from_secs(20);

/// A message whose eight words are all the same number: whole, or not.
type Msg = [u64; 8];

fn whole(m: &Msg) -> bool {
    m.iter().all(|&w| w == m[0])
}

fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Names of a queue and of the flag a child raises when it is in place.
struct Names {
    queue: SegName,
    flag: SegName,
}

fn names(test: &str) -> Names {
    Names { queue: SegName::new(test), flag: SegName::new(&format!("{test}-flag")) }
}

/// One test's queue of `capacity`, the children's flag, and the names.
fn setup(test: &str, capacity: usize) -> (Names, Queue<Msg>, Value<u64>) {
    let n = names(test);
    let q = Queue::<Msg>::create(n.queue.as_str(), capacity).unwrap();
    let flag = Value::<u64>::create(n.flag.as_str(), 0).unwrap();
    (n, q, flag)
}

/// Starts `role` and waits until it raises the flag to `round + 1`.
fn start_and_wait(role: &str, n: &Names, flag: &Value<u64>, round: u64) -> Child {
    let mut child = spawn_child(role, n.queue.as_str(), n.flag.as_str());
    let start = Instant::now();
    while flag.load() != round + 1 {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("round {round}: {role} exited early: {status}");
        }
        assert!(start.elapsed() < LIMIT, "watchdog: {role} never got in place");
        std::thread::sleep(Duration::from_micros(200));
    }
    child
}

fn kill(mut child: Child) {
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

#[test]
fn child_entry() {
    let Some((role, queue, flag)) = child_role() else { return };
    let flag = Value::<u64>::open(&flag).unwrap();
    let raise = || flag.update(|r| r + 1);
    match role.as_str() {
        // Sends one whole message, then claims a slot, writes half of it,
        // and waits to be killed.
        "reserve" => {
            let q = Queue::<Msg>::open(&queue).unwrap();
            let round = flag.load();
            q.send([2 * round; 8]).unwrap();
            let mut slot = q.reserve().unwrap();
            slot[..4].copy_from_slice(&[u64::MAX; 4]);
            raise();
            std::thread::sleep(Duration::from_secs(600));
        }
        // Takes a message in place and waits to be killed holding it.
        "recv-ref" => {
            let q = Queue::<Msg>::open(&queue).unwrap();
            let _m = q.recv_ref().unwrap();
            raise();
            std::thread::sleep(Duration::from_secs(600));
        }
        // Streams numbered messages until killed.
        "stream" => {
            let q = Queue::<Msg>::open(&queue).unwrap();
            raise();
            for i in 0.. {
                q.send([i; 8]).unwrap();
            }
        }
        // Sends a message and receives one (its own: the queue is empty
        // before), then waits to be killed: its claim words still announce
        // its last two claims, both finished.
        "send-recv" => {
            let q = Queue::<Msg>::open(&queue).unwrap();
            let round = flag.load();
            q.send([round; 8]).unwrap();
            assert_eq!(q.recv_timeout(LIMIT), Ok([round; 8]));
            raise();
            std::thread::sleep(Duration::from_secs(600));
        }
        // Opens the queue, sends one message and exits.
        "send-one" => {
            let q = Queue::<Msg>::open(&queue).unwrap();
            q.send([99; 8]).unwrap();
        }
        // Blocks in recv on an empty queue.
        "blocked-recv" => {
            let q = Queue::<Msg>::open(&queue).unwrap();
            raise();
            let m = q.recv().unwrap();
            panic!("nothing was sent to this child, yet it received {m:?}");
        }
        // Takes the lock, changes the value without publishing, waits.
        "lock" => {
            let v = Value::<Msg>::open(&queue).unwrap();
            let mut g = v.lock().unwrap_or_else(|d| d.into_guard());
            *g = [u64::MAX; 8];
            raise();
            std::thread::sleep(Duration::from_secs(600));
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn a_sender_killed_between_reserve_and_commit_is_skipped_never_delivered_half_written() {
    let _s = serial();
    let (n, q, flag) = setup("crash-reserve", 4);
    for round in 0..ROUNDS {
        kill(start_and_wait("reserve", &n, &flag, round));
        // Our own message goes in behind the dead child's claim.
        q.send([2 * round + 1; 8]).unwrap();
        assert_eq!(q.recv_timeout(LIMIT), Ok([2 * round; 8]), "round {round}: the child's whole message");
        assert_eq!(q.recv_timeout(LIMIT), Ok([2 * round + 1; 8]), "round {round}: ours, past the skipped claim");
        assert_eq!(q.abandoned(), round + 1);
    }
    assert!(q.is_empty());
    // 100 children attached to a 64-row table: dead ones' rows, their claims
    // resolved, were reused.
    let info = procring::inspect(n.queue.as_str()).unwrap();
    assert_eq!(info.peers.iter().filter(|p| p.alive).count(), 1, "{:?}", info.peers);
    assert!(info.peers.iter().all(|p| p.claims.is_empty()), "every claim resolved: {:?}", info.peers);
}

#[test]
fn a_table_full_of_processes_killed_after_they_sent_and_received_still_lets_one_in() {
    let _s = serial();
    let n = names("crash-full-table");
    let q = Queue::<Msg>::create_with(n.queue.as_str(), 8, &procring::Options::new().peers(4)).unwrap();
    let flag = Value::<u64>::create(n.flag.as_str(), 0).unwrap();
    // Three children take the three rows left, send, receive and are killed.
    for round in 0..3 {
        kill(start_and_wait("send-recv", &n, &flag, round));
    }
    q.send([7; 8]).unwrap();
    assert_eq!(q.recv(), Ok([7; 8]));
    // Every claim word of the table may still announce a finished claim;
    // none is shown as a claim.
    let info = procring::inspect(n.queue.as_str()).unwrap();
    assert_eq!(info.peers.len(), 4, "{:?}", info.peers);
    assert!(info.peers.iter().all(|p| p.claims.is_empty()), "no claim is unfinished: {:?}", info.peers);
    // Every row is taken: the dead ones must be freed for a fourth process.
    let mut late = common::spawn_child("send-one", n.queue.as_str(), n.flag.as_str());
    assert!(common::wait_child(&mut late, LIMIT).success(), "the fourth process could not open the queue");
    assert_eq!(q.recv_timeout(LIMIT), Ok([99; 8]));
    assert_eq!(q.abandoned(), 0, "nothing was under way when the children died");
}

#[test]
fn a_receiver_killed_while_reading_in_place_does_not_wedge_the_senders() {
    let _s = serial();
    let (n, q, flag) = setup("crash-recv-ref", 2);
    for round in 0..ROUNDS {
        q.send([3 * round; 8]).unwrap();
        kill(start_and_wait("recv-ref", &n, &flag, round));
        // Two slots: one free, one held by the dead child. The second send
        // needs the dead child's slot back.
        q.send([3 * round + 1; 8]).unwrap();
        q.send_timeout([3 * round + 2; 8], LIMIT).unwrap();
        assert_eq!(q.recv_timeout(LIMIT), Ok([3 * round + 1; 8]), "round {round}");
        assert_eq!(q.recv_timeout(LIMIT), Ok([3 * round + 2; 8]), "round {round}");
        assert_eq!(q.abandoned(), round + 1, "the message the dead child took went with it");
    }
    assert!(q.is_empty());
}

#[test]
fn a_sender_killed_mid_stream_leaves_exactly_a_prefix_of_whole_messages() {
    let _s = serial();
    let (n, q, flag) = setup("crash-stream", 64);
    for round in 0..ROUNDS {
        let child = start_and_wait("stream", &n, &flag, round);
        // Receive a varying number of messages first, so the kill lands at
        // varying points of the child's send.
        let mut next = 0;
        for _ in 0..(round * 37) % 500 {
            let m = q.recv_timeout(LIMIT).unwrap();
            assert!(whole(&m) && m[0] == next, "round {round}: expected {next}, got {m:?}");
            next += 1;
        }
        kill(child);
        // Drain: the rest of a prefix 0..k, each once, each whole; a claim
        // the child died holding is skipped.
        while let Ok(m) = q.recv_timeout(Duration::from_millis(300)) {
            assert!(whole(&m) && m[0] == next, "round {round}: expected {next}, got {m:?}");
            next += 1;
        }
        assert!(q.is_empty(), "round {round}");
    }
}

#[test]
fn a_sender_killed_owning_the_send_bias_leaves_it_to_the_next_sender() {
    let _s = serial();
    let (n, q, flag) = setup("crash-bias", 64);
    let counter = |name: &str| {
        let info = procring::inspect(n.queue.as_str()).unwrap();
        info.counters.iter().find(|(c, _)| c.starts_with(name)).unwrap().1
    };
    for round in 0..ROUNDS / 10 {
        let child = start_and_wait("stream", &n, &flag, round);
        // Far more than the 4096 uncontended sends after which the child
        // owns the send bias, so the kill lands on its plain stores.
        let mut next = 0;
        for _ in 0..5000 + (round * 37) % 500 {
            let m = q.recv_timeout(LIMIT).unwrap();
            assert!(whole(&m) && m[0] == next, "round {round}: expected {next}, got {m:?}");
            next += 1;
        }
        assert_eq!(counter("send bias"), 1, "round {round}: the lone sender owns the bias");
        kill(child);
        while let Ok(m) = q.recv_timeout(Duration::from_millis(300)) {
            assert!(whole(&m) && m[0] == next, "round {round}: expected {next}, got {m:?}");
            next += 1;
        }
        // Our send revokes the dead child's bias.
        q.send([u64::MAX; 8]).unwrap();
        assert_eq!(q.recv_timeout(LIMIT), Ok([u64::MAX; 8]), "round {round}");
        assert_eq!(counter("biases revoked"), round + 1);
        assert!(q.is_empty(), "round {round}");
    }
}

#[test]
fn a_receiver_killed_while_blocked_in_recv_takes_nothing_with_it() {
    let _s = serial();
    let (n, q, flag) = setup("crash-blocked", 4);
    for round in 0..ROUNDS {
        kill(start_and_wait("blocked-recv", &n, &flag, round));
        q.send([round; 8]).unwrap();
        assert_eq!(q.recv_timeout(LIMIT), Ok([round; 8]), "round {round}");
    }
    assert_eq!(q.abandoned(), 0);
}

#[test]
fn a_lock_holder_killed_is_reported_and_its_draft_never_published() {
    let _s = serial();
    let n = names("crash-lock");
    let v = Value::<Msg>::create(n.queue.as_str(), [0; 8]).unwrap();
    let flag = Value::<u64>::create(n.flag.as_str(), 0).unwrap();
    for round in 0..ROUNDS {
        let child = start_and_wait("lock", &n, &flag, round);
        let pid = child.id();
        kill(child);
        let died = v.lock().expect_err("the dead holder is reported");
        assert_eq!(died.pid(), pid, "round {round}");
        let mut g = died.into_guard();
        assert_eq!(*g, [round; 8], "round {round}: the last published value, not the draft");
        *g = [round + 1; 8];
        drop(g);
        assert_eq!(v.load(), [round + 1; 8]);
    }
}
