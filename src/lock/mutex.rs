//! A mutex between processes on a futex word, which survives its holder's
//! death: the lock behind `Value::lock()` and `Array::lock()`, and the writer
//! lock of their seqlock.
//!
//! # Protocol
//!
//! One 32-bit futex word, `state`: 0 when free, otherwise the holder's
//! process id, with bit 31 (`CONTENDED`) set when someone may be asleep
//! waiting. This is the three-state mutex of Drepper's "Futexes Are Tricky"
//! (0 / locked / locked-with-waiters), with the holder's pid in place of the
//! "locked" value, so that the word itself says who holds it: a holder that
//! dies between taking the lock and anything else is still named.
//!
//! ```text
//!  lock                                      unlock
//!  L1 CAS state 0 → me (Acquire); done       U1 old = swap(state, 0) (Release)
//!  L2 spin a while, retrying L1              U2 if old & CONTENDED: futex_wake(1)
//!  L3 s = state; if 0: CAS 0 → me|C; done
//!  L4 CAS s → s|C (announce a sleeper)
//!  L5 futex_wait(state, s|C, slice)
//!  L6 still s|C and holder s is dead: CAS s|C → me|C; done, recovered
//! ```
//!
//! **Invariant (exclusion):** `state` names at most one holder, and only a
//! CAS from 0 (L1, L3), or from a dead holder's exact word (L6), takes it.
//! **No lost wakeup:** a waiter sleeps (L5) only while the word still holds
//! `s|C`, which the kernel checks atomically with queueing it; the unlock
//! that follows must swap that `C` out (U1) and so wakes one sleeper (U2).
//! A woken waiter that takes the lock does so with `C` set (L3), because
//! others may still sleep, so the chain of wakes continues.
//! **Death:** a sleeper never sleeps longer than one slice (50 ms) at a time;
//! each time it wakes to find the same holder, it asks whether that process
//! still runs. So a dead holder is taken over within about one slice.
//!
//! The holder also records `owner = start << 22 | pid` (its start time
//! since boot, see [`crate::shm::peer`]) right after taking the lock, so that a
//! reused process id is not mistaken for the holder. In the instant between
//! the CAS and that record, only the pid is known, and a waiter takes the
//! pid alone as proof of life.
//!
//! Process ids are compared as the kernel numbers them in the caller's pid
//! namespace: processes sharing a segment must share a pid namespace
//! (`docs/design.md`).
//!
//! In a segment, a holder must also be attached to it (have a row in its
//! attachment table): a lock word naming any other process — left by a
//! corrupt or hostile writer, or a pid reused by an unrelated process — is
//! treated as a dead holder's, so it can never block lockers for ever.
//!
//! `died` holds the pid of a holder that was found dead, until a
//! [`lock`](RobustMutex::lock) caller that wants to hear about it takes it:
//! a plain write that took the lock over leaves the news for the next user
//! of `Value::lock()`. It is only touched by the holder.

use std::time::Instant;

use crate::shm::peer::{self, Identity, Table};
use crate::sync::wait::{Deadline, Wait};
use crate::sync::{futex_wait, futex_wake_one, spin_hint, AtomicU32, AtomicU64, Ordering};

/// The pid part of `state`, and of `owner`. Linux pids are below 2^22
/// (`PID_MAX_LIMIT`).
const PID_BITS: u32 = 22;
const PID_MASK: u32 = (1 << PID_BITS) - 1;

/// The lock word (`state`): 0 free, else the holder's pid, with bit 31 set
/// when someone may be asleep on it. Read from shared memory, so any value
/// may be found; the pid is its low 22 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LockWord(u32);

impl LockWord {
    const CONTENDED: u32 = 1 << 31;
    pub(crate) const FREE: Self = Self(0);

    /// Held by `pid` (this process's: checked in debug builds).
    #[inline(always)]
    fn held(pid: u32, contended: bool) -> Self {
        debug_assert!(pid != 0 && pid <= PID_MASK, "pid {pid} out of range");
        Self(if contended { pid | Self::CONTENDED } else { pid })
    }

    #[inline(always)]
    pub(crate) const fn from_bits(bits: u32) -> Self {
        Self(bits)
    }

    #[inline(always)]
    const fn bits(self) -> u32 {
        self.0
    }

    /// The holder's pid (0: free).
    #[inline(always)]
    pub(crate) const fn holder(self) -> u32 {
        self.0 & PID_MASK
    }

    /// Whether someone may be asleep on it.
    #[inline(always)]
    const fn contended(self) -> bool {
        self.0 & Self::CONTENDED != 0
    }

    /// The same, marked contended.
    #[inline(always)]
    const fn marked_contended(self) -> Self {
        Self(self.0 | Self::CONTENDED)
    }
}

/// The `owner` word: `start << 22 | pid` of the holder (or of a past
/// holder), so that a pid reused by a new process is not taken for the
/// holder. The start time keeps its low 42 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OwnerRecord(u64);

impl OwnerRecord {
    const START_MASK: u64 = (1 << (64 - PID_BITS)) - 1;

    fn of(me: Identity) -> Self {
        debug_assert!(me.pid != 0 && me.pid <= PID_MASK, "pid {} out of range", me.pid);
        Self((me.start & Self::START_MASK) << PID_BITS | u64::from(me.pid))
    }

    const fn pid(self) -> u32 {
        (self.0 & PID_MASK as u64) as u32
    }

    /// The recorded start time (0: not recorded).
    const fn start(self) -> u64 {
        self.0 >> PID_BITS
    }

    /// Whether `start` (a process start time) is the recorded one.
    const fn started_at(self, start: u64) -> bool {
        self.start() == start & Self::START_MASK
    }
}

/// The lock's shared words, `#[repr(C)]`, 16 bytes, zero = free.
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct RobustMutex {
    /// A [`LockWord`].
    state: AtomicU32,
    /// The pid of a holder found dead, not yet reported; 0 if none.
    died: AtomicU32,
    /// An [`OwnerRecord`].
    owner: AtomicU64,
}

/// Where the lock word is in a `RobustMutex`, for `procring inspect`.
#[cfg(not(loom))]
pub(crate) const STATE_OFFSET: usize = std::mem::offset_of!(RobustMutex, state);

/// How the lock was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    /// From a holder that unlocked it (or it was free).
    Clean,
    /// From a holder that died holding it (its pid): what it protected may
    /// be half-changed.
    Recovered(u32),
}

impl RobustMutex {
    pub(crate) fn new() -> Self {
        Self { state: AtomicU32::new(0), died: AtomicU32::new(0), owner: AtomicU64::new(0) }
    }

    /// Takes the lock for `me` (whose pid must be non-zero), waiting as
    /// `wait` says, until `deadline` (`None` if it passes first).
    pub(crate) fn lock(&self, me: Identity, wait: &Wait, deadline: Deadline, peers: Option<&Table>) -> Option<Taken> {
        if self.try_take(LockWord::FREE, LockWord::held(me.pid, false)) {
            return Some(self.taken(me, Taken::Clean));
        }
        let deadline = deadline.start();
        let mut spins: u32 = 0;
        loop {
            let s = LockWord::from_bits(self.state.load(Ordering::Relaxed));
            if s == LockWord::FREE {
                // L3. Others may be asleep: take it marked, so our unlock
                // wakes the next one.
                if self.try_take(LockWord::FREE, LockWord::held(me.pid, true)) {
                    return Some(self.taken(me, Taken::Clean));
                }
                continue;
            }
            if spins < wait.spin {
                // L2. A short critical section ends soon: spinning beats two
                // system calls. Busy-poll never sleeps, so it checks the
                // clock and the holder's life as it spins.
                spins += 1;
                if spins % 64 == 0 && deadline.is_limited() && deadline.passed(Instant::now()) {
                    return None;
                }
                if wait.spin == u32::MAX && spins % (1 << 14) == 0 {
                    spins = 0;
                    if let Some(t) = self.take_over_if_dead(s.marked_contended(), me, peers) {
                        return Some(t);
                    }
                    if !s.contended() {
                        let _ = self.mark_contended(s);
                    }
                }
                spin_hint();
                continue;
            }
            // L4. Relaxed: the kernel's compare in futex_wait, not memory
            // ordering, is what makes the sleep safe.
            if !s.contended() && !self.mark_contended(s) {
                continue;
            }
            let mut timeout = wait.slice;
            if let Some(left) = deadline.left(Instant::now()) {
                if left.is_zero() {
                    return None;
                }
                timeout = Some(timeout.map_or(left, |t| t.min(left)));
            }
            futex_wait(&self.state, s.marked_contended().bits(), timeout); // L5
            if let Some(t) = self.take_over_if_dead(s.marked_contended(), me, peers) {
                return Some(t); // L6
            }
        }
    }

    /// Takes the lock if it is free, or held by a dead process.
    pub(crate) fn try_lock(&self, me: Identity, peers: Option<&Table>) -> Option<Taken> {
        let me_free = LockWord::held(me.pid, false);
        if self.try_take(LockWord::FREE, me_free) {
            return Some(self.taken(me, Taken::Clean));
        }
        let s = LockWord::from_bits(self.state.load(Ordering::Relaxed));
        if s == LockWord::FREE {
            return self.try_take(LockWord::FREE, me_free).then(|| self.taken(me, Taken::Clean));
        }
        self.take_over_if_dead(s, me, peers)
    }

    /// Releases the lock. The caller holds it.
    pub(crate) fn unlock(&self) {
        // U1. Release: everything written under the lock happens before the
        // next holder's Acquire CAS.
        let old = LockWord::from_bits(self.state.swap(LockWord::FREE.bits(), Ordering::Release));
        #[cfg(not(procring_bug = "mutex_unlock_no_wake"))]
        if old.contended() {
            futex_wake_one(&self.state); // U2
        }
        #[cfg(procring_bug = "mutex_unlock_no_wake")]
        let _ = old;
    }

    /// The pid of a holder found dead since the last call, if any. The
    /// caller holds the lock.
    pub(crate) fn take_died(&self) -> Option<u32> {
        // Relaxed: only the holder touches `died`; the lock orders holders.
        match self.died.swap(0, Ordering::Relaxed) {
            0 => None,
            pid => Some(pid),
        }
    }

    fn try_take(&self, from: LockWord, to: LockWord) -> bool {
        // Acquire: pairs with the previous holder's Release in `unlock`; its
        // writes under the lock happen before ours.
        self.state.compare_exchange(from.bits(), to.bits(), Ordering::Acquire, Ordering::Relaxed).is_ok()
    }

    /// Marks the word (still `s`) contended: L4 before a sleep, and a
    /// busy-poller's mark so that the holder's unlock wakes sleepers.
    fn mark_contended(&self, s: LockWord) -> bool {
        // Relaxed: see L4.
        self.state.compare_exchange(s.bits(), s.marked_contended().bits(), Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }

    fn taken(&self, me: Identity, how: Taken) -> Taken {
        self.owner.store(OwnerRecord::of(me).0, Ordering::Relaxed);
        if let Taken::Recovered(pid) = how {
            self.died.store(pid, Ordering::Relaxed);
        }
        how
    }

    /// L6: if the word still reads `seen` and its holder is dead, takes the
    /// lock over from it.
    fn take_over_if_dead(&self, seen: LockWord, me: Identity, peers: Option<&Table>) -> Option<Taken> {
        if self.state.load(Ordering::Relaxed) != seen.bits() {
            return None;
        }
        let pid = seen.holder();
        if pid == me.pid || (self.holder_alive(pid) && peers.is_none_or(|t| t.has(pid))) {
            return None;
        }
        // Keep the contended mark: others may sleep on the dead holder too.
        self.try_take(seen, LockWord::held(me.pid, seen.contended())).then(|| self.taken(me, Taken::Recovered(pid)))
    }

    fn holder_alive(&self, pid: u32) -> bool {
        let owner = OwnerRecord(self.owner.load(Ordering::Relaxed));
        let Some(start) = peer::started(pid) else { return false };
        // The record is this holder's (not a past one's): its start time
        // must match, or the pid has been reused by another process.
        if owner.pid() == pid {
            owner.start() == 0 || owner.started_at(start)
        } else {
            true
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn wait() -> Wait {
        Wait { spin: 100, slice: Some(std::time::Duration::from_millis(5)) }
    }

    #[test]
    fn threads_of_one_process_exclude_each_other() {
        let m = Arc::new(RobustMutex::new());
        let count = Arc::new(crate::sync::AtomicU64::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (m, count) = (m.clone(), count.clone());
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        assert_eq!(
                            m.lock(Identity::this_process(), &wait(), Deadline::Never, None),
                            Some(Taken::Clean)
                        );
                        // A non-atomic increment, made atomic by the lock.
                        let v = count.load(Ordering::Relaxed);
                        count.store(v + 1, Ordering::Relaxed);
                        m.unlock();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(count.load(Ordering::Relaxed), 80_000);
    }

    #[test]
    fn a_dead_holder_is_taken_over_and_reported_once() {
        let m = RobustMutex::new();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = Identity { pid: child.id(), start: 0 };
        child.wait().unwrap();
        assert_eq!(m.lock(dead, &wait(), Deadline::Never, None), Some(Taken::Clean));
        let me = Identity::this_process();
        assert_eq!(m.lock(me, &wait(), Deadline::Never, None), Some(Taken::Recovered(dead.pid)));
        assert_eq!(m.take_died(), Some(dead.pid));
        assert_eq!(m.take_died(), None);
        m.unlock();
        assert_eq!(m.try_lock(me, None), Some(Taken::Clean));
    }

    #[test]
    fn a_live_holder_blocks_try_and_timed_locks() {
        let m = RobustMutex::new();
        let me = Identity::this_process();
        m.lock(me, &wait(), Deadline::Never, None).unwrap();
        assert_eq!(m.try_lock(me, None), None);
        let deadline = Instant::now() + std::time::Duration::from_millis(20);
        assert_eq!(m.lock(me, &wait(), Deadline::At(deadline), None), None);
        assert!(Instant::now() >= deadline);
        m.unlock();
    }
}
