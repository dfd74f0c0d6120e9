//! `Value<T>` and `Array<T>` across processes (this binary re-executed in
//! child roles): exact counts under contention, no torn reads of a large
//! value, and a lock holder killed with SIGKILL reported to the next one.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{child_role, spawn_child, wait_child, SegName};
use procring::{Array, OpenError, Value};

const CHILD_LIMIT: Duration = Duration::from_secs(180);
const INCREMENTS: u64 = 1_000_000;
const READS: u64 = 1_000_000;

/// 4 KiB: every word of a published value holds the same number.
#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Page([u64; 512]);
procring::message!(Page);

fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Polls `cond` until it holds; fails the test past `limit`.
fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "watchdog: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn child_entry() {
    let Some((role, name, arg)) = child_role() else { return };
    match role.as_str() {
        "update" => {
            let v = Value::<u64>::open(&name).unwrap();
            for _ in 0..INCREMENTS {
                v.update(|x| x + 1);
            }
        }
        "lock" => {
            let v = Value::<u64>::open(&name).unwrap();
            for _ in 0..INCREMENTS {
                *v.lock().unwrap() += 1;
            }
        }
        // Writes pages 1, 2, 3, ... until the reader sets the flag `arg`.
        "page-writer" => {
            let v = Value::<Page>::open(&name).unwrap();
            let stop = Value::<u32>::open(&arg).unwrap();
            let mut k = 0;
            while stop.load() == 0 {
                k += 1;
                v.store(Page([k; 512]));
            }
        }
        // Takes the lock, changes the value without publishing it, says so
        // through the flag `arg`, and waits to be killed.
        "hold-lock" => {
            let v = Value::<Page>::open(&name).unwrap();
            let holding = Value::<u32>::open(&arg).unwrap();
            let mut g = v.lock().unwrap();
            g.0 = [u64::MAX; 512];
            holding.store(1);
            std::thread::sleep(Duration::from_secs(600));
        }
        // Stores pages as fast as it can until killed.
        "store-forever" => {
            let v = Value::<Page>::open(&name).unwrap();
            let started = Value::<u32>::open(&arg).unwrap();
            for k in 1.. {
                v.store(Page([k; 512]));
                if k == 1 {
                    started.store(1);
                }
            }
        }
        "negate" => {
            let a = Array::<i32>::open(&name).unwrap();
            for i in 0..a.len() {
                a.update(i, |x| -x).unwrap();
            }
        }
        other => panic!("unknown role {other}"),
    }
}

fn two_children_increment(role: &str) {
    let _s = serial();
    let name = SegName::new(role);
    let v = Value::<u64>::create(name.as_str(), 0).unwrap();
    let mut children: Vec<_> = (0..2).map(|_| spawn_child(role, name.as_str(), "")).collect();
    for c in &mut children {
        assert!(wait_child(c, CHILD_LIMIT).success(), "{role} child failed");
    }
    assert_eq!(v.load(), 2 * INCREMENTS);
}

#[test]
fn two_processes_increment_exactly_through_update() {
    two_children_increment("update");
}

#[test]
fn two_processes_increment_exactly_through_lock() {
    two_children_increment("lock");
}

#[test]
fn a_4k_value_written_by_one_process_is_never_torn_for_another() {
    let _s = serial();
    let (name, flag) = (SegName::new("page"), SegName::new("page-stop"));
    let v = Value::<Page>::create(name.as_str(), Page([0; 512])).unwrap();
    let stop = Value::<u32>::create(flag.as_str(), 0).unwrap();
    let mut child = spawn_child("page-writer", name.as_str(), flag.as_str());
    wait_until("the writer never wrote", CHILD_LIMIT, || v.load().0[0] > 0);
    let (mut last, mut changes) = (0, 0u64);
    for _ in 0..READS {
        let p = v.load();
        let k = p.0[0];
        assert!(p.0.iter().all(|&w| w == k), "torn read: a page mixing {k} and other values");
        assert!(k >= last, "a read went back from {last} to {k}");
        changes += u64::from(k != last);
        last = k;
    }
    stop.store(1);
    assert!(wait_child(&mut child, CHILD_LIMIT).success());
    eprintln!("{READS} reads saw {changes} changes, up to page {last}");
    assert!(changes > 1, "the writer never got a write in while we read");
}

#[test]
fn a_holder_killed_with_sigkill_is_reported_to_the_next_locker() {
    let _s = serial();
    let (name, flag) = (SegName::new("killed"), SegName::new("killed-flag"));
    let v = Value::<Page>::create(name.as_str(), Page([7; 512])).unwrap();
    let holding = Value::<u32>::create(flag.as_str(), 0).unwrap();
    let mut child = spawn_child("hold-lock", name.as_str(), flag.as_str());
    wait_until("the child never took the lock", CHILD_LIMIT, || holding.load() == 1);
    assert!(v.try_lock().is_err(), "the child holds the lock");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let died = v.lock().expect_err("the holder's death is reported");
    assert_eq!(died.pid(), child.id());
    let mut g = died.into_guard();
    assert!(g.0.iter().all(|&w| w == 7), "the value is the last published one, not the dead holder's draft");
    g.0 = [8; 512];
    drop(g);
    assert_eq!(v.load().0[511], 8);
    assert!(v.lock().is_ok(), "reported once");
}

#[test]
fn writers_killed_mid_store_never_leave_a_torn_or_stuck_value() {
    let _s = serial();
    let (name, flag) = (SegName::new("midstore"), SegName::new("midstore-flag"));
    let v = Value::<Page>::create(name.as_str(), Page([0; 512])).unwrap();
    let started = Value::<u32>::create(flag.as_str(), 0).unwrap();
    for round in 0..20u64 {
        started.store(0);
        let mut child = spawn_child("store-forever", name.as_str(), flag.as_str());
        wait_until("the writer never started", CHILD_LIMIT, || started.load() == 1);
        // Let it run a varying while, then kill it wherever it is.
        std::thread::sleep(Duration::from_micros(100 * (round % 7)));
        child.kill().unwrap();
        child.wait().unwrap();
        let p = v.load();
        assert!(p.0.iter().all(|&w| w == p.0[0]), "round {round}: torn after the writer died");
        // The next writer takes the lock over if the child died holding it.
        v.store(Page([round; 512]));
        assert!(v.load().0.iter().all(|&w| w == round), "round {round}");
    }
}

#[test]
fn an_array_changed_by_a_child_and_opened_with_the_wrong_type_or_kind() {
    let _s = serial();
    let name = SegName::new("array");
    let a = Array::<i32>::create(name.as_str(), &(0..10).collect::<Vec<_>>()).unwrap();
    let mut child = spawn_child("negate", name.as_str(), "");
    assert!(wait_child(&mut child, CHILD_LIMIT).success());
    assert_eq!(a.to_vec(), (0..10).map(|x| -x).collect::<Vec<_>>());
    assert!(matches!(Array::<u32>::open(name.as_str()), Err(OpenError::TypeMismatch { .. })));
    assert!(matches!(Value::<i32>::open(name.as_str()), Err(OpenError::KindMismatch { .. })));
    assert_eq!(Array::<i32>::open(name.as_str()).unwrap().len(), 10);
}

#[test]
fn a_lock_word_naming_a_process_that_is_not_attached_is_taken_over() {
    let _s = serial();
    let name = SegName::new("forged-lock");
    let v = Value::<Page>::create(name.as_str(), Page([3; 512])).unwrap();
    // Forge the lock word (the control block's first word): held by pid 1,
    // which runs but is not attached to this segment.
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(name.path()).unwrap();
    f.write_all_at(&1u32.to_le_bytes(), common::CONTROL_OFFSET).unwrap();
    v.store(Page([4; 512])); // would wait for ever on a live holder
    let died = v.lock().expect_err("the forged holder is reported");
    assert_eq!(died.pid(), 1);
    assert_eq!(died.into_guard().0[0], 4);
}

#[test]
fn an_array_is_created_from_values_or_filled_and_with_options() {
    let name = SegName::new("array-filled");
    let a = Array::<i32>::create_filled(name.as_str(), 5, 7).unwrap();
    assert_eq!(a.to_vec(), [7; 5]);
    let other = SegName::new("array-with");
    let b = Array::<i32>::create_with(other.as_str(), &[1, 2], &procring::Options::new().keep(false)).unwrap();
    assert_eq!(b.to_vec(), [1, 2]);
}
