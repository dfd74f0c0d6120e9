//! Hostile segments: a real segment of each kind, copied, with random bytes
//! written over its header, attachment table, control block and data, and
//! its length cut or grown, then opened and used. Whatever the bytes, `open`
//! refuses the segment or the operations report what they find: never a
//! panic, never a read outside the mapping (that would crash this process),
//! never a hang (a watchdog aborts the run).
//!
//! Operations are the non-blocking and short-timed forms; a blocking call
//! on a segment whose state says "wait" would rightly wait.

mod common;

use std::sync::Once;
use std::time::Duration;

use common::SegName;
use procring::spsc::{Consumer, Producer};
use procring::{Array, Options, Pipe, Queue, Value};
use proptest::prelude::*;

const SHORT: Duration = Duration::from_millis(1);

/// Aborts the whole run if the hostile tests take far too long: a hang.
fn watchdog() {
    static START: Once = Once::new();
    START.call_once(|| {
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_secs(300));
            eprintln!("watchdog: the hostile-segment tests hung");
            std::process::abort();
        });
    });
}

fn opts() -> Options {
    Options::new().open_timeout(Duration::from_millis(5)).spin(16)
}

/// The bytes of segment `name` as its creator left them.
fn image(name: &SegName) -> Vec<u8> {
    std::fs::read(name.path()).unwrap()
}

/// `image` with `edits` applied (offsets wrap around its length) and its
/// length changed to `len` (0: unchanged), written as a new segment.
fn hostile_copy(image: &[u8], edits: &[(usize, u8)], len: usize) -> SegName {
    let mut bytes = image.to_vec();
    for &(at, b) in edits {
        let n = bytes.len();
        bytes[at % n] = b;
    }
    if len != 0 {
        bytes.resize(len, 0xA5);
    }
    let name = SegName::new("hostile");
    std::fs::write(name.path(), &bytes).unwrap();
    name
}

/// Offsets weighted towards the header, the attachment table and the
/// control blocks, where one wrong number matters most.
fn edits() -> impl Strategy<Value = Vec<(usize, u8)>> {
    let table_end = common::CONTROL_OFFSET as usize;
    let at = prop_oneof![0usize..128, 128usize..table_end, table_end..table_end + 2048, any::<usize>()];
    prop::collection::vec((at, any::<u8>()), 1..12)
}

/// Lengths: unchanged, cut short, or grown.
fn lengths() -> impl Strategy<Value = usize> {
    prop_oneof![Just(0usize), 1usize..20_000]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_hostile_spsc_ring(edits in edits(), len in lengths()) {
        watchdog();
        let orig = SegName::new("hostile-spsc");
        let mut tx = Producer::<u64>::create(orig.as_str(), 8).unwrap();
        for i in 0..3 {
            tx.send(i).unwrap();
        }
        let copy = hostile_copy(&image(&orig), &edits, len);
        if let Ok(mut rx) = Consumer::<u64>::open_with(copy.as_str(), &opts()) {
            for _ in 0..12 {
                let _ = rx.try_recv();
            }
            let _ = rx.recv_timeout(SHORT);
            let _ = (rx.len(), rx.is_empty(), rx.is_full());
        }
    }

    #[test]
    fn a_hostile_queue(edits in edits(), len in lengths()) {
        watchdog();
        let orig = SegName::new("hostile-queue");
        let q = Queue::<u64>::create(orig.as_str(), 8).unwrap();
        for i in 0..3 {
            q.send(i).unwrap();
        }
        let copy = hostile_copy(&image(&orig), &edits, len);
        if let Ok(h) = Queue::<u64>::open_with(copy.as_str(), &opts()) {
            for i in 0..12 {
                let _ = h.try_recv();
                let _ = h.try_send(i);
            }
            let _ = h.recv_timeout(SHORT);
            let _ = h.send_timeout(1, SHORT);
            let _ = (h.len(), h.is_empty(), h.skipped(), h.abandoned());
        }
    }

    #[test]
    fn a_hostile_pipe(edits in edits(), len in lengths()) {
        watchdog();
        let orig = SegName::new("hostile-pipe");
        let mut tx = Pipe::create_sender(orig.as_str(), 4096, &Options::new()).unwrap();
        for m in [&b"one"[..], b"", &[7; 300]] {
            tx.send_bytes(m).unwrap();
        }
        let copy = hostile_copy(&image(&orig), &edits, len);
        if let Ok(mut rx) = Pipe::open_receiver(copy.as_str(), &opts()) {
            let mut buf = [0u8; 64];
            for _ in 0..6 {
                let _ = rx.try_recv_bytes();
                let _ = rx.try_recv_bytes_into(&mut buf);
            }
            let _ = rx.recv_bytes_timeout(SHORT);
        }
    }

    #[test]
    fn a_hostile_value_and_array(edits in edits(), len in lengths()) {
        watchdog();
        let (v_orig, a_orig) = (SegName::new("hostile-value"), SegName::new("hostile-array"));
        let _v = Value::<[u64; 4]>::create(v_orig.as_str(), [9; 4]).unwrap();
        let _a = Array::<u32>::create(a_orig.as_str(), &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).unwrap();
        let v_copy = hostile_copy(&image(&v_orig), &edits, len);
        if let Ok(v) = Value::<[u64; 4]>::open_with(v_copy.as_str(), &opts()) {
            let _ = v.load();
            if let Ok(mut g) = v.try_lock() {
                g[0] += 1;
            }
            let _ = v.lock_timeout(SHORT);
        }
        let a_copy = hostile_copy(&image(&a_orig), &edits, len);
        if let Ok(a) = Array::<u32>::open_with(a_copy.as_str(), &opts()) {
            let _ = (a.to_vec(), a.get(0), a.get(a.len()), a.len());
            if let Ok(mut g) = a.try_lock() {
                if let Some(x) = g.first_mut() {
                    *x += 1;
                }
            }
        }
    }

    #[test]
    fn random_bytes_are_never_a_segment(bytes in prop::collection::vec(any::<u8>(), 0..8192)) {
        watchdog();
        let name = SegName::new("hostile-noise");
        std::fs::write(name.path(), &bytes).unwrap();
        prop_assert!(Consumer::<u64>::open_with(name.as_str(), &opts()).is_err());
        prop_assert!(Queue::<u64>::open_with(name.as_str(), &opts()).is_err());
        prop_assert!(Value::<u64>::open_with(name.as_str(), &opts()).is_err());
        prop_assert!(procring::inspect(name.as_str()).is_err());
    }
}

/// Runs `open` on another thread and fails if it has not returned within
/// a generous bound: an open with an `open_timeout` must never hang.
fn returns_in_time<R: Send + 'static>(what: String, open: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(open()));
    rx.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| panic!("{what}: open did not return"))
}

/// Values a hostile or stale process might leave in one 8-byte word: every
/// bit set, a state far outside 0–3 with a plausible pid, states 4 and 5,
/// "attached" by the pid of a process that is gone, and "attached" by pid 1.
fn word_patterns() -> Vec<u64> {
    vec![u64::MAX, 0x7fff_fff0_0000_0007, 4, 5, 1 | (u64::from(u32::MAX - 1) << 32), 1 | (1 << 32), 0]
}

fn patched(image: &[u8], at: usize, word: u64) -> SegName {
    let mut bytes = image.to_vec();
    bytes[at..at + 8].copy_from_slice(&word.to_le_bytes());
    let name = SegName::new("hostile-word");
    std::fs::write(name.path(), &bytes).unwrap();
    name
}

/// Every word of the peer slots (and of the first attachment rows) of an
/// SPSC ring and of a pipe, set to each pattern: `open` answers within its
/// timeout, and never by hanging.
#[test]
fn no_word_of_the_peer_slots_or_the_table_hangs_open() {
    watchdog();
    let open_opts = Options::new().open_timeout(Duration::from_millis(20));
    let spsc = SegName::new("hostile-peers-spsc");
    let _tx = Producer::<u64>::create(spsc.as_str(), 8).unwrap();
    let pipe = SegName::new("hostile-peers-pipe");
    let _ptx = Pipe::create_sender(pipe.as_str(), 4096, &Options::new()).unwrap();
    let (spsc_image, pipe_image) = (image(&spsc), image(&pipe));
    // The peer slots sit 256 bytes into each direction's 640-byte control
    // block; the attachment table's first rows right after the header.
    let peers = common::CONTROL_OFFSET as usize + 256;
    let words: Vec<usize> = (peers..peers + 32).step_by(8).chain((128..128 + 2 * 128).step_by(8)).collect();
    for &at in &words {
        for word in word_patterns() {
            let copy = patched(&spsc_image, at, word);
            let (name, o) = (copy.as_str().to_owned(), open_opts.clone());
            let r = returns_in_time(format!("spsc word {at} = {word:#x}"), move || {
                Consumer::<u64>::open_with(&name, &o).map(|mut rx| rx.try_recv().ok())
            });
            if let Err(e) = r {
                assert!(!e.to_string().is_empty());
            }
            let copy = patched(&pipe_image, at, word);
            let (name, o) = (copy.as_str().to_owned(), open_opts.clone());
            let _ = returns_in_time(format!("pipe word {at} = {word:#x}"), move || {
                Pipe::open_receiver(&name, &o).map(|mut rx| rx.try_recv_bytes().ok().map(|m| m.len()))
            });
        }
    }
}

/// The adversary's exact case: the consumer's slot state set to a value
/// outside 0–3 is `Corrupt`, not a spin.
#[test]
fn a_consumer_slot_in_an_impossible_state_is_corrupt() {
    watchdog();
    let orig = SegName::new("hostile-slot");
    let _tx = Producer::<u64>::create(orig.as_str(), 8).unwrap();
    let consumer_slot = common::CONTROL_OFFSET as usize + 256 + 16;
    for word in [u64::MAX, 0x7fff_fff0_0000_0007] {
        let copy = patched(&image(&orig), consumer_slot, word);
        let name = copy.as_str().to_owned();
        let opts = Options::new().open_timeout(Duration::from_millis(20));
        let r = returns_in_time(format!("consumer slot = {word:#x}"), move || {
            Consumer::<u64>::open_with(&name, &opts).map(|_| ())
        });
        assert!(matches!(r, Err(procring::OpenError::Corrupt { .. })), "{word:#x}: {r:?}");
    }
}
