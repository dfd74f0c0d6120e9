//! The attachment table across processes: who is attached, stale segments
//! left by processes that died, a full table, and `procring ls`/`inspect`/
//! `rm` (this binary re-executed in child roles).

mod common;

use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use common::{child_role, spawn_child, wait_child, SegName};
use procring::{CreateError, OpenError, Options, Queue, RemoveError, Value};

const CHILD_LIMIT: Duration = Duration::from_secs(60);

fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn child_entry() {
    let Some((role, name, _arg)) = child_role() else { return };
    match role.as_str() {
        // Creates a kept queue, sends one message, and dies without detaching.
        "create-and-die" => {
            let q = Queue::<u64>::create_with(&name, 8, &Options::new().keep(true)).unwrap();
            q.send(7).unwrap();
            std::process::exit(0);
        }
        // Opens the queue, sends one message, and detaches properly.
        "open-and-leave" => {
            let q = Queue::<u64>::open(&name).unwrap();
            q.send(8).unwrap();
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn attached_processes_are_listed_and_a_clean_leave_frees_the_row() {
    let _s = serial();
    let name = SegName::new("peers-list");
    let q = Queue::<u64>::create(name.as_str(), 8).unwrap();
    let info = procring::inspect(name.as_str()).unwrap();
    assert_eq!(info.peers.len(), 1);
    assert_eq!(
        (info.peers[0].pid, info.peers[0].role, info.peers[0].alive),
        (std::process::id(), "sender+receiver", true)
    );
    assert!(!info.stale && info.in_use());
    let mut child = spawn_child("open-and-leave", name.as_str(), "");
    assert!(wait_child(&mut child, CHILD_LIMIT).success());
    assert_eq!(q.recv_timeout(CHILD_LIMIT), Ok(8));
    let info = procring::inspect(name.as_str()).unwrap();
    assert_eq!(info.peers.len(), 1, "the child detached: only we remain");
    assert!(info.counters.contains(&("received", 1)), "{:?}", info.counters);
}

#[test]
fn a_segment_whose_processes_all_died_is_stale_and_can_be_reclaimed() {
    let _s = serial();
    let name = SegName::new("peers-stale");
    let mut child = spawn_child("create-and-die", name.as_str(), "");
    assert!(wait_child(&mut child, CHILD_LIMIT).success());
    let info = procring::inspect(name.as_str()).unwrap();
    assert!(info.stale && !info.in_use(), "{info:?}");
    assert_eq!(info.peers.iter().map(|p| (p.pid, p.alive)).collect::<Vec<_>>(), [(child.id(), false)]);

    match Queue::<u64>::open(name.as_str()) {
        Err(OpenError::Stale { dead, .. }) => assert_eq!(dead, [child.id()]),
        other => panic!("expected Stale, got {other:?}"),
    }
    // Opening it anyway drains what the dead process left.
    let q = Queue::<u64>::open_with(name.as_str(), &Options::new().open_stale(true)).unwrap();
    assert_eq!(q.try_recv(), Ok(7));
    drop(q);

    assert!(matches!(Queue::<u64>::create(name.as_str(), 8), Err(CreateError::AlreadyExists(_))));
    let q = Queue::<u64>::create_with(name.as_str(), 8, &Options::new().reclaim_stale(true)).unwrap();
    assert_eq!(q.try_recv(), Err(procring::TryRecvError::Empty), "a fresh queue");
    // A live segment is never reclaimed.
    let again = Queue::<u64>::create_with(name.as_str(), 8, &Options::new().reclaim_stale(true));
    assert!(matches!(again, Err(CreateError::AlreadyExists(_))));
}

#[test]
fn a_full_table_refuses_one_more_process() {
    let name = SegName::new("peers-full");
    let _v = Value::<u64>::create_with(name.as_str(), 0, &Options::new().peers(1)).unwrap();
    assert!(matches!(Value::<u64>::open(name.as_str()), Err(OpenError::TooManyPeers { rows: 1, .. })));
}

#[test]
fn rm_refuses_a_live_segment_unless_forced_and_ls_shows_it() {
    let name = SegName::new("peers-rm");
    let _v = Value::<u64>::create_with(name.as_str(), 5, &Options::new().keep(true)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_procring")).arg("ls").output().unwrap();
    let ls = String::from_utf8_lossy(&out.stdout);
    let line = ls.lines().find(|l| l.starts_with(name.as_str())).unwrap_or_else(|| panic!("not listed:\n{ls}"));
    assert!(
        line.contains("value") && line.contains("live") && line.contains(&std::process::id().to_string()),
        "{line}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_procring")).args(["inspect", name.as_str()]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("u64") && text.contains("alive"), "{text}");

    match procring::remove(name.as_str(), false) {
        Err(RemoveError::InUse { pids, .. }) => assert_eq!(pids, [std::process::id()]),
        other => panic!("expected InUse, got {other:?}"),
    }
    let status = Command::new(env!("CARGO_BIN_EXE_procring")).args(["rm", name.as_str()]).status().unwrap();
    assert!(!status.success(), "rm refuses a live segment");
    let status = Command::new(env!("CARGO_BIN_EXE_procring")).args(["rm", "--force", name.as_str()]).status().unwrap();
    assert!(status.success());
    assert!(matches!(procring::inspect(name.as_str()), Err(OpenError::NotFound(_))));
}

#[test]
fn segments_are_private_unless_a_mode_is_given() {
    use std::os::unix::fs::PermissionsExt;
    let (private, shared) = (SegName::new("mode-private"), SegName::new("mode-shared"));
    let _a = Value::<u64>::create(private.as_str(), 0).unwrap();
    let _b = Value::<u64>::create_with(shared.as_str(), 0, &Options::new().mode(0o640)).unwrap();
    let mode = |n: &SegName| std::fs::metadata(n.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&private), 0o600);
    assert_eq!(mode(&shared) & !0o022, 0o640 & !0o022, "the umask may only take bits away");
}
