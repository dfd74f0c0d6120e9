//! Who is attached to a ring, and whether that process is still alive.
//!
//! # Protocol
//!
//! A [`PeerSlot`] records one role (producer or consumer) of a ring:
//!
//! | `state`        | meaning                                         |
//! |----------------|-------------------------------------------------|
//! | `NONE` (0)     | nobody has taken the role yet                   |
//! | `ATTACHED` (1) | a process holds the role; `pid`/`start` say who  |
//! | `GONE` (2)     | the holder dropped its end                      |
//! | `DIED` (3)     | the holder's process was found dead; `pid` says who |
//!
//! A process takes the role with a CAS from `NONE` or `GONE` to `ATTACHED`
//! (a dead holder's slot is first moved to `GONE`), so at most one process
//! holds it at a time. Only the holder moves `ATTACHED` → `GONE` on drop,
//! after its last publishing store, with `Release`; the other side loads
//! `state` with `Acquire` and then re-reads the ring, so "gone" is never
//! reported while a message the holder published is still unread.
//!
//! A process id alone can be reused, so the slot also records the holder's
//! start time (field 22 of `/proc/PID/stat`, in clock ticks since boot). The
//! holder is alive while `/proc/PID/stat` exists, has that start time, and is
//! not a zombie. `pid == 0` means "this process, no need to look" (both ends
//! of an in-process ring).

use crate::sync::{AtomicU32, AtomicU64, Ordering};

const NONE: u32 = 0;
const ATTACHED: u32 = 1;
const GONE: u32 = 2;
const DIED: u32 = 3;

/// One role's record in a ring's shared control block. `#[repr(C)]`, 16 bytes.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct PeerSlot {
    /// `NONE`, `ATTACHED` or `GONE`.
    state: AtomicU32,
    /// Holder's process id; 0 for "in this process" or "not recorded yet".
    pid: AtomicU32,
    /// Holder's start time in clock ticks since boot; 0 = unknown.
    start: AtomicU64,
}

/// What a peer slot says about the other side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerState {
    /// Nobody has attached yet: wait for them.
    NotYet,
    /// Attached and (as far as was checked) alive.
    Attached,
    /// Dropped its end, or found dead.
    Gone,
}

/// Why a role could not be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// A live process holds it.
    Taken { pid: u32 },
    /// The slot's state is none of the four a slot can be in: the segment
    /// is corrupt, and no wait would change that.
    Corrupt { state: u32 },
}

impl Refused {
    /// The error `open` reports for taking `role` in segment `name`.
    pub(crate) fn into_open_error(self, name: &str, role: &'static str) -> crate::error::OpenError {
        use crate::error::OpenError;
        match self {
            Refused::Taken { pid } => OpenError::RoleTaken { name: name.to_owned(), role, pid },
            Refused::Corrupt { state } => OpenError::Corrupt {
                name: name.to_owned(),
                what: format!("the {role} slot's state is {state:#x}, none of the four a slot can be in"),
            },
        }
    }
}

impl PeerSlot {
    pub(crate) fn new() -> Self {
        Self { state: AtomicU32::new(NONE), pid: AtomicU32::new(0), start: AtomicU64::new(0) }
    }

    /// Takes the role for process `me` (`Identity::local()` for in-process).
    pub(crate) fn attach(&self, me: Identity) -> Result<(), Refused> {
        loop {
            let s = self.state.load(Ordering::Acquire);
            match s {
                // Acquire on success: pairs with the previous holder's Release
                // in `detach`, so its last stores are visible to the new one.
                NONE | GONE | DIED => {
                    if self.state.compare_exchange(s, ATTACHED, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                        self.pid.store(me.pid, Ordering::Relaxed);
                        self.start.store(me.start, Ordering::Relaxed);
                        return Ok(());
                    }
                }
                ATTACHED => {
                    if self.holder_alive() {
                        return Err(Refused::Taken { pid: self.pid.load(Ordering::Relaxed) });
                    }
                    self.mark_died();
                }
                // `mark_died` could never move such a state on: without this
                // the loop would spin for ever.
                state => return Err(Refused::Corrupt { state }),
            }
        }
    }

    /// Gives the role up. Release: pairs with the Acquire in `state`, so the
    /// other side sees every position this holder published before leaving.
    pub(crate) fn detach(&self) {
        self.state.store(GONE, Ordering::Release);
    }

    /// The other side's view. With `check_alive`, a holder whose process is
    /// dead is reported (and recorded) as gone; that costs a read of `/proc`,
    /// so callers do it only on their slow path. Inlined: every send and
    /// every spin of a receive asks, and the answer is one load.
    #[inline]
    pub(crate) fn state(&self, check_alive: bool) -> PeerState {
        // Acquire: pairs with the Release in `detach` (see module docs).
        match self.state.load(Ordering::Acquire) {
            NONE => PeerState::NotYet,
            ATTACHED if check_alive && !self.holder_alive() => {
                self.mark_died();
                PeerState::Gone
            }
            ATTACHED => PeerState::Attached,
            _ => PeerState::Gone,
        }
    }

    /// The pid of a holder whose process was found dead (rather than having
    /// dropped its end), after checking whether the holder still runs.
    pub(crate) fn died(&self) -> Option<u32> {
        let _ = self.state(true);
        (self.state.load(Ordering::Acquire) == DIED).then(|| self.pid.load(Ordering::Relaxed))
    }

    fn mark_died(&self) {
        // Relaxed: a dead process publishes nothing we could synchronise with.
        let _ = self.state.compare_exchange(ATTACHED, DIED, Ordering::Relaxed, Ordering::Relaxed);
    }

    #[cold]
    fn holder_alive(&self) -> bool {
        let pid = self.pid.load(Ordering::Relaxed);
        let start = self.start.load(Ordering::Relaxed);
        pid == 0 || process_alive(pid, start)
    }
}

/// A process as recorded in a peer slot or a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) pid: u32,
    /// Start time in clock ticks since boot; 0 = unknown.
    pub(crate) start: u64,
}

impl Identity {
    /// "This process": never looked up, always alive. For in-process rings.
    pub(crate) fn local() -> Self {
        Self { pid: 0, start: 0 }
    }

    /// This process, as other processes must see it. Looked up once; a
    /// process that forks must not carry handles into the child.
    #[cfg(not(loom))]
    pub(crate) fn this_process() -> Self {
        static ME: std::sync::OnceLock<Identity> = std::sync::OnceLock::new();
        *ME.get_or_init(|| {
            let pid = std::process::id();
            Self { pid, start: proc_stat(pid).map_or(0, |s| s.start) }
        })
    }

    /// A made-up process for loom models (`pid` > 0), alive until
    /// [`loom_kill`] says otherwise.
    #[cfg(loom)]
    pub(crate) fn fake(pid: u32) -> Self {
        Self { pid, start: 0 }
    }
}

struct ProcStat {
    zombie: bool,
    start: u64,
}

/// Reads state and start time from `/proc/PID/stat`. `None` if no such process.
#[cfg(not(loom))]
fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ppid ...": comm may hold spaces and parentheses, so split
    // after the last ')'. Then field 3 (state) is first, field 22 (starttime)
    // is the 20th.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some(ProcStat { zombie: matches!(state, "Z" | "X" | "x"), start })
}

// Under loom, the made-up processes that a model has declared dead, in a
// loom `Mutex` made afresh for each execution. Its lock orders a death
// after everything the dead process did, and before whoever then finds it
// dead, as the kernel does: a process is torn down before `/proc` stops
// showing it, and a survivor reads `/proc` after that.
#[cfg(loom)]
loom::lazy_static! {
    static ref DEAD: loom::sync::Mutex<Vec<u32>> = loom::sync::Mutex::new(Vec::new());
}

/// Declares a made-up process dead (loom models of a holder that dies).
#[cfg(loom)]
pub(crate) fn loom_kill(pid: u32) {
    DEAD.lock().unwrap().push(pid);
}

#[cfg(loom)]
fn proc_stat(pid: u32) -> Option<ProcStat> {
    (!DEAD.lock().unwrap().contains(&pid)).then_some(ProcStat { zombie: false, start: 0 })
}

/// Whether process `pid`, started at `start` (0 = unknown), still runs.
/// A zombie (exited, not yet reaped) counts as dead: it will never write.
pub(crate) fn process_alive(pid: u32, start: u64) -> bool {
    started(pid).is_some_and(|s| start == 0 || s == start)
}

/// The start time of running process `pid`; `None` if it is dead (or a
/// zombie).
pub(crate) fn started(pid: u32) -> Option<u64> {
    proc_stat(pid).filter(|s| !s.zombie).map(|s| s.start)
}

// ---------------------------------------------------------------------------
// The attachment table
// ---------------------------------------------------------------------------

/// What an attachment does with the object (bits of a row's `role`).
pub(crate) mod role {
    /// Sends (a producer, a pipe's sending side).
    pub(crate) const SEND: u32 = 1;
    /// Receives (a consumer, a pipe's receiving side).
    pub(crate) const RECV: u32 = 2;
    /// Reads and writes shared state (a `Value` or an `Array`).
    pub(crate) const STATE: u32 = 4;

    /// The role's name, for `procring ls`.
    pub(crate) fn name(role: u32) -> &'static str {
        match role {
            SEND => "sender",
            RECV => "receiver",
            r if r == SEND | RECV => "sender+receiver",
            STATE => "user",
            _ => "?",
        }
    }
}

/// Claim words per row: positions a queue handle has claimed and not yet
/// finished with (see `ring::mpmc`).
pub(crate) const CLAIMS: usize = 6;
/// Bytes per row: two cache lines, so that two processes' rows never share
/// an adjacent-line prefetch pair (each process writes its own row on every
/// queue operation).
pub(crate) const ROW_LEN: usize = 128;
/// Rows a segment gets unless `Options::peers` says otherwise.
pub(crate) const DEFAULT_ROWS: u32 = 64;
/// The most rows a segment may have.
pub(crate) const MAX_ROWS: u32 = 4096;

/// One attachment: a process's handles on one object. `#[repr(C)]`, two
/// cache lines, all zero when free.
///
/// **Protocol.** `pid` is the row's lock and its owner at once: a process
/// takes a free row with a CAS `0 → pid` (so a process that dies right after
/// is still named), then records its start time and role. It frees the row
/// with a Release store of 0, after clearing `start` and with no claims
/// left. A row whose process is dead and has no claims may be freed by
/// anyone (CAS `pid → 0`); one with claims is left to the object's recovery,
/// which resolves the claims first. A reader takes `start == 0` as "not yet
/// recorded" and then trusts the pid alone.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct Row {
    pid: AtomicU32,
    role: AtomicU32,
    start: AtomicU64,
    /// 0, or a claimed position + 1, which may be finished already (see
    /// `ring::mpmc`, "Finished claims stay announced").
    pub(crate) claims: [AtomicU64; CLAIMS],
    /// A queue's live sending (`[SENDERS]`) and receiving (`[RECEIVERS]`)
    /// handles in this process (see `ring::mpmc`, "Disconnection"). On the
    /// row's second line, which no fast path writes.
    pub(crate) ends: [AtomicU32; 2],
    _pad: [u64; 7],
}

/// Index of a row's count of sending handles in [`Row::ends`].
pub(crate) const SENDERS: usize = 0;
/// Index of a row's count of receiving handles in [`Row::ends`].
pub(crate) const RECEIVERS: usize = 1;

#[cfg(not(loom))]
const _: () = {
    assert!(std::mem::size_of::<Row>() == ROW_LEN);
    assert!(std::mem::offset_of!(Row, ends) == 64);
};

/// A row as `procring ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    /// The attached process.
    pub pid: u32,
    /// What it does: `sender`, `receiver`, `sender+receiver` or `user`.
    pub role: &'static str,
    /// Whether that process still runs.
    pub alive: bool,
    /// Queue positions it has claimed and not finished with.
    pub claims: Vec<u64>,
}

impl Row {
    /// The attached process, if any.
    pub(crate) fn pid(&self) -> Option<u32> {
        // Acquire: pairs with the Release in `attach`/`free`.
        match self.pid.load(Ordering::Acquire) {
            0 => None,
            pid => Some(pid),
        }
    }

    /// Whether the attached process (if any) still runs.
    pub(crate) fn alive(&self) -> bool {
        let Some(pid) = self.pid() else { return false };
        let start = self.start.load(Ordering::Relaxed);
        process_alive(pid, start)
    }

    /// Whether any claim word is set (a claim under way, or a finished one
    /// nobody has swept yet), or handles are counted (a dead process's count
    /// not yet taken off the queue's): a queue sweeps dead rows before
    /// attaching.
    fn busy(&self) -> bool {
        // Acquire: pairs with the Release that clears a claim word; a word
        // seen cleared means its claim's slot was finished before. Relaxed
        // (`ends`): a dead process counts nothing more.
        self.claims.iter().any(|c| c.load(Ordering::Acquire) != 0)
            || self.ends.iter().any(|n| n.load(Ordering::Relaxed) != 0)
    }

    /// Frees the row of a dead process that has no claims left.
    pub(crate) fn free_if_dead(&self) {
        let Some(pid) = self.pid() else { return };
        if !self.busy() && !self.alive() {
            self.start.store(0, Ordering::Relaxed);
            // Relaxed: a dead process publishes nothing through its row.
            let _ = self.pid.compare_exchange(pid, 0, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    pub(crate) fn info(&self) -> Option<PeerInfo> {
        let pid = self.pid()?;
        let claims = self.claims.iter().map(|c| c.load(Ordering::Relaxed)).filter(|&c| c != 0).map(|c| c - 1);
        Some(PeerInfo {
            pid,
            role: role::name(self.role.load(Ordering::Relaxed)),
            alive: self.alive(),
            claims: claims.collect(),
        })
    }
}

/// The rows of one segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Table {
    rows: std::ptr::NonNull<Row>,
    len: usize,
}

// SAFETY: the rows are atomics in shared memory; the table is a view.
unsafe impl Send for Table {}
// SAFETY: as above.
unsafe impl Sync for Table {}

/// Every row was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TableFull;

impl Table {
    /// # Safety
    /// `rows` points to `len` initialised rows that outlive every use of the
    /// table (and of the `Attached` handles it gives out).
    pub(crate) unsafe fn new(rows: std::ptr::NonNull<Row>, len: usize) -> Self {
        Self { rows, len }
    }

    pub(crate) fn rows(&self) -> &[Row] {
        // SAFETY: `new`'s contract.
        unsafe { std::slice::from_raw_parts(self.rows.as_ptr(), self.len) }
    }

    /// Takes a free row (freeing dead processes' rows first if need be).
    pub(crate) fn attach(&self, me: Identity, role: u32) -> Result<Attached, TableFull> {
        debug_assert!(me.pid != 0);
        for pass in 0..2 {
            for row in self.rows() {
                if pass == 1 {
                    row.free_if_dead();
                }
                // Acquire: the previous holder's last stores (its freeing
                // of claims) happen before our use of the row.
                if row.pid.compare_exchange(0, me.pid, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                    row.start.store(me.start, Ordering::Relaxed);
                    row.role.store(role, Ordering::Relaxed);
                    return Ok(Attached { row: std::ptr::NonNull::from(row) });
                }
            }
        }
        Err(TableFull)
    }

    /// Whether process `pid` holds a row.
    pub(crate) fn has(&self, pid: u32) -> bool {
        self.rows().iter().any(|r| r.pid() == Some(pid))
    }

    /// The pids of the attached processes, if there is at least one and all
    /// of them are dead: a segment left behind by processes that died.
    pub(crate) fn stale(&self) -> Option<Vec<u32>> {
        let attached: Vec<&Row> = self.rows().iter().filter(|r| r.pid().is_some()).collect();
        if attached.is_empty() || attached.iter().any(|r| r.alive()) {
            return None;
        }
        Some(attached.iter().filter_map(|r| r.pid()).collect())
    }
}

/// A row this process holds; frees it on drop.
#[derive(Debug)]
pub(crate) struct Attached {
    row: std::ptr::NonNull<Row>,
}

// SAFETY: the row is atomics in shared memory, alive while the mapping is
// (the mapping's owner drops this first).
unsafe impl Send for Attached {}
// SAFETY: as above.
unsafe impl Sync for Attached {}

impl Attached {
    pub(crate) fn row(&self) -> &Row {
        // SAFETY: see `Table::new`; the owner keeps the mapping alive.
        unsafe { self.row.as_ref() }
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        let row = self.row();
        row.role.store(0, Ordering::Relaxed);
        row.start.store(0, Ordering::Relaxed);
        // Release: the next holder's Acquire CAS sees the row cleared.
        row.pid.store(0, Ordering::Release);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_not() {
        let me = Identity::this_process();
        assert!(me.start > 0);
        assert!(process_alive(me.pid, me.start));
        assert!(!process_alive(me.pid, me.start + 1), "a different start time is another process");

        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = proc_stat(pid).map_or(0, |s| s.start);
        // Exited but not reaped: a zombie, which must read as dead.
        while proc_stat(pid).is_some_and(|s| !s.zombie) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(!process_alive(pid, start));
        child.wait().unwrap();
        assert!(!process_alive(pid, start));
    }

    #[test]
    fn a_role_is_held_once_and_freed_on_detach() {
        let slot = PeerSlot::new();
        assert_eq!(slot.state(true), PeerState::NotYet);
        slot.attach(Identity::this_process()).unwrap();
        assert_eq!(slot.attach(Identity::this_process()), Err(Refused::Taken { pid: std::process::id() }));
        assert_eq!(slot.state(true), PeerState::Attached);
        slot.detach();
        assert_eq!(slot.state(true), PeerState::Gone);
        assert_eq!(slot.died(), None, "left, not died");
        slot.attach(Identity::this_process()).unwrap();
    }

    #[test]
    fn a_slot_in_no_known_state_is_refused_as_corrupt_at_once() {
        let slot = PeerSlot::new();
        slot.state.store(7, Ordering::Relaxed);
        slot.pid.store(u32::MAX, Ordering::Relaxed);
        assert_eq!(slot.attach(Identity::this_process()), Err(Refused::Corrupt { state: 7 }));
    }

    #[test]
    fn a_dead_holder_is_reported_gone_and_its_role_can_be_retaken() {
        let slot = PeerSlot::new();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = Identity { pid: child.id(), start: 0 };
        child.wait().unwrap();
        slot.attach(dead).unwrap();
        assert_eq!(slot.state(false), PeerState::Attached, "the cheap check does not look");
        assert_eq!(slot.state(true), PeerState::Gone);
        assert_eq!(slot.died(), Some(dead.pid), "found dead: named");
        slot.attach(Identity::this_process()).unwrap();
    }
}
