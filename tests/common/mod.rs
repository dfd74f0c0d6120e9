//! Helpers for tests that cross processes: unique segment names removed even
//! when a test fails, and the test binary re-executed in a child role.
#![allow(dead_code)]

use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Environment variables that put the re-executed test binary in a child role.
pub const ROLE_VAR: &str = "PROCRING_TEST_ROLE";
pub const NAME_VAR: &str = "PROCRING_TEST_SEGMENT";
pub const ARG_VAR: &str = "PROCRING_TEST_ARG";

/// Where a segment's control block starts with the default options: after
/// the 128-byte header and the attachment table (64 rows of 128 bytes).
pub const CONTROL_OFFSET: u64 = 128 + 64 * 128;

/// A unique segment name, unlinked when dropped (also when a test panics).
pub struct SegName(pub String);

impl SegName {
    pub fn new(test: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
        Self(format!("/procring-test-{test}-{}-{n}-{nanos:x}", std::process::id()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The file behind the name (Linux keeps POSIX shm in /dev/shm).
    pub fn path(&self) -> String {
        format!("/dev/shm{}", self.0)
    }
}

impl Drop for SegName {
    fn drop(&mut self) {
        let _ = procring::unlink(&self.0);
    }
}

/// This test binary again, to run only `child_entry` in `role`.
pub fn child_command(role: &str, name: &str, arg: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(ROLE_VAR, role)
        .env(NAME_VAR, name)
        .env(ARG_VAR, arg)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}

/// Runs this test binary again, running only `child_entry` in `role`.
pub fn spawn_child(role: &str, name: &str, arg: &str) -> Child {
    child_command(role, name, arg).spawn().expect("spawn child")
}

/// Waits for `child` at most `limit`; kills it and fails the test past that.
pub fn wait_child(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("watchdog: child {} still running after {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The child's side: if this process is a child, returns its role, segment
/// name and argument, and arms a watchdog that ends it if it outlives any
/// test. (Each parent has its own, tighter limits on what it waits for; this
/// one only keeps a hung child from lingering, so it is generous enough for
/// a loaded machine.)
pub fn child_role() -> Option<(String, String, String)> {
    let role = std::env::var(ROLE_VAR).ok()?;
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(600));
        eprintln!("watchdog: child hung, exiting");
        std::process::exit(101);
    });
    Some((role, std::env::var(NAME_VAR).unwrap(), std::env::var(ARG_VAR).unwrap_or_default()))
}

/// Waits until `name` exists and has been published (a child creating it).
pub fn wait_for_segment(path: &str, limit: Duration) {
    let start = Instant::now();
    while std::fs::metadata(path).map_or(true, |m| m.len() == 0) {
        assert!(start.elapsed() < limit, "watchdog: segment {path} never appeared");
        std::thread::sleep(Duration::from_millis(1));
    }
}
