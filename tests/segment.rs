//! What creating a segment promises about the file behind it: the mode is
//! the one asked for whatever the umask, and a `/dev/shm` too full for it
//! is a `CreateError::NoSpace` that leaves no file behind, never a SIGBUS.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use common::SegName;
use procring::spsc::Producer;
use procring::{CreateError, Options, Pipe, Queue};

#[test]
fn the_mode_asked_for_is_applied_under_umask_022() {
    // umask is per process; 022 is what most shells set.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    let name = SegName::new("mode");
    let _q = Queue::<u64>::create_with(name.as_str(), 8, &Options::new().mode(0o666)).unwrap();
    let mode = std::fs::metadata(name.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o666, "mode {mode:o}");
    let other = SegName::new("mode");
    let _tx = Producer::<u64>::create_with(other.as_str(), 8, &Options::new().mode(0o640)).unwrap();
    let mode = std::fs::metadata(other.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "mode {mode:o}");
}

/// In the child, inside a private mount namespace whose `/dev/shm` is a
/// 16 MiB tmpfs: every kind refuses a segment larger than that with
/// `NoSpace`, leaves no file, and one that fits still works.
fn full_dev_shm_child() {
    let no_space = |r: Result<(), CreateError>, what: &str| match r {
        Err(CreateError::NoSpace { needed, free, .. }) => {
            assert!(needed > free, "{what}: needs {needed}, free {free}");
            assert!(free <= 16 << 20, "{what}: free {free}");
        }
        other => panic!("{what}: {other:?}"),
    };
    let name = SegName::new("full");
    no_space(Queue::<u64>::create(name.as_str(), 1 << 21).map(drop), "queue");
    no_space(Producer::<u64>::create(name.as_str(), 1 << 22).map(drop), "spsc");
    no_space(Pipe::create(name.as_str(), 1 << 25).map(drop), "pipe");
    assert!(std::fs::metadata(name.path()).is_err(), "a file was left behind");
    let q = Queue::<u64>::create(name.as_str(), 1 << 10).unwrap();
    q.send(7).unwrap();
    assert_eq!(q.recv().unwrap(), 7);
}

#[test]
fn a_full_dev_shm_is_no_space_and_leaves_no_file() {
    // Only where this user may make a mount namespace and mount a tmpfs.
    let probe = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", "mount -t tmpfs -o size=1m none /dev/shm"])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            println!("skipped: no private tmpfs here: {}", String::from_utf8_lossy(&out.stderr).trim());
            return;
        }
        Err(e) => {
            println!("skipped: cannot run unshare: {e}");
            return;
        }
    }
    let exe = std::env::current_exe().unwrap();
    let script = format!(
        "mount -t tmpfs -o size=16m none /dev/shm && exec {} --exact child_entry --nocapture --test-threads=1",
        exe.display()
    );
    let mut child = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env(common::ROLE_VAR, "full")
        .env(common::NAME_VAR, "-")
        .spawn()
        .unwrap();
    let status = common::wait_child(&mut child, Duration::from_secs(60));
    assert!(status.success(), "child: {status:?}");
}

#[test]
fn child_entry() {
    let Some((role, _, _)) = common::child_role() else { return };
    match role.as_str() {
        "full" => full_dev_shm_child(),
        other => panic!("unknown role {other}"),
    }
}
