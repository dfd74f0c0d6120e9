//! The eventcount: how one side of a ring sleeps until the other side has
//! done something, with no system call on the other side's fast path.
//!
//! # Protocol
//!
//! Shared state: `seq`, a 32-bit futex word bumped by every notify that finds a
//! waiter, and `waiters`, the number of sides that have announced they are
//! about to sleep.
//!
//! ```text
//!  notifier (producer after publishing)     waiter (consumer finding the ring empty)
//!  ─────────────────────────────────────     ─────────────────────────────────────────
//!  N1 store tail (Release)                  W1 waiters += 1
//!  N2 barrier.light()   ── Dekker ──        W2 barrier.heavy()
//!  N3 if waiters != 0:                      W3 key = seq (Acquire)
//!  N4     seq += 1 (Release)                W4 if condition() { waiters -= 1; done }
//!  N5     futex_wake(seq)                   W5 futex_wait(seq, key); waiters -= 1; retry
//! ```
//!
//! **Invariant (no lost wakeup):** if the waiter sleeps at W5, a notify whose
//! store N1 came before W4 cannot be missed. The barriers give a total order to
//! W1→W4 and N1→N3: either W4 sees N1 (the waiter does not sleep) or N3 sees
//! W1 (the notifier bumps and wakes). In the second case, either W3 read the
//! value before N4 — then `futex_wait` returns at once (`EAGAIN`) or is woken
//! by N5, since the kernel checks the word and queues the waiter atomically —
//! or W3 read N4's value, and then N4's Release / W3's Acquire make N1 visible
//! to W4, so the waiter does not sleep. Take away either barrier and both
//! loads can miss both stores: the waiter sleeps on a ring that has data.
//! (`loom-tests/tests/eventcount.rs` checks this, with the futex modelled.)
//!
//! N1 stands for every store that makes the waiter's condition true; for the
//! SPSC ring that is the slot stamps and then `tail`, all before N2.
//!
//! `waiters` is a count, not a flag, so that several waiters (MPMC) can share
//! one eventcount; it is only ever read for `!= 0`.
//!
//! # Memory ordering
//!
//! Data is never carried by wait/wake: the ring's positions (Release/Acquire)
//! carry it. `waiters` is Relaxed everywhere; the barriers order it.

use std::time::{Duration, Instant};

use crate::sync::{futex_wait, futex_wake_all, spin_hint, AtomicU32, Barrier, Ordering};

/// The two futex-word fields of an eventcount, `#[repr(C)]` for shared memory.
#[repr(C)]
#[derive(Debug)]
pub struct EventCount {
    /// Futex word: bumped (wrapping) by a notify that saw a waiter.
    seq: AtomicU32,
    /// Sides announced as about to sleep (0..=number of attached waiters).
    waiters: AtomicU32,
}

impl Default for EventCount {
    fn default() -> Self {
        Self::new()
    }
}

impl EventCount {
    /// A fresh eventcount with nobody waiting.
    pub fn new() -> Self {
        Self { seq: AtomicU32::new(0), waiters: AtomicU32::new(0) }
    }

    /// Called after publishing the state a waiter may be waiting for.
    /// The fast path (nobody waiting) is a barrier and one load: no system call.
    #[inline]
    #[cfg_attr(procring_bug = "no_notify_fence", allow(unused_variables))]
    pub(crate) fn notify(&self, barrier: Barrier) {
        // N2: orders the caller's publishing store (N1) before the load of
        // `waiters` (N3); pairs with the waiter's heavy barrier (W2).
        #[cfg(not(procring_bug = "no_notify_fence"))]
        barrier.light();
        if self.waiters.load(Ordering::Relaxed) != 0 {
            self.wake(barrier);
        }
    }

    #[cold]
    fn wake(&self, _barrier: Barrier) {
        // N4 Release: pairs with W3's Acquire, so a waiter whose key already
        // includes this bump also sees the publishing store N1.
        self.seq.fetch_add(1, Ordering::Release);
        futex_wake_all(&self.seq);
    }

    /// Waits until `poll` returns `Some`, or until `deadline` passes (then
    /// `None`, after a last peer-checking poll). See [`Wait`] for how long it spins before it sleeps.
    ///
    /// `poll(check_peers)` must be cheap when `check_peers` is false (it runs on
    /// every spin); when true it may also check things that cost a system
    /// call, such as whether the peer process is still alive. The peer-checking
    /// form runs before every sleep and after every sleep slice, so a peer's
    /// death is noticed within one slice even if nobody ever notifies.
    pub(crate) fn wait_until<R>(
        &self,
        barrier: Barrier,
        wait: &Wait,
        deadline: Deadline,
        mut poll: impl FnMut(bool) -> Option<R>,
    ) -> Option<R> {
        let deadline = deadline.start();
        let mut spins: u32 = 0;
        let expired = |now: Instant| deadline.passed(now);
        loop {
            if let Some(r) = poll(false) {
                return Some(r);
            }
            if spins < wait.spin {
                spins += 1;
                // A clock read costs as much as a few polls: look at the
                // deadline only every CLOCK_EVERY spins (~1 µs).
                if spins % Wait::CLOCK_EVERY == 0 && deadline.is_limited() && expired(Instant::now()) {
                    return poll(true);
                }
                if spins % Wait::CHECK_PEERS_EVERY == 0 {
                    if let Some(r) = poll(true) {
                        return Some(r);
                    }
                }
                if wait.spin == u32::MAX {
                    // Busy-poll mode never sleeps: keep the counter small.
                    spins %= Wait::CHECK_PEERS_EVERY;
                }
                spin_hint();
                continue;
            }
            let now = deadline.is_limited().then(Instant::now);
            if now.is_some_and(expired) {
                return poll(true);
            }
            // Slow path: announce, re-check, sleep.
            self.waiters.fetch_add(1, Ordering::Relaxed); // W1
            #[cfg(not(procring_bug = "no_wait_fence"))]
            barrier.heavy(); // W2: pairs with the notifier's light barrier (N2).
            let key = self.seq.load(Ordering::Acquire); // W3: pairs with N4.
            if let Some(r) = poll(true) {
                self.waiters.fetch_sub(1, Ordering::Relaxed);
                return Some(r);
            }
            let mut timeout = wait.slice;
            if let Some(left) = now.and_then(|now| deadline.left(now)) {
                timeout = Some(timeout.map_or(left, |s| s.min(left)));
            }
            futex_wait(&self.seq, key, timeout); // W5
            self.waiters.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// How a side waits: how long it spins before it sleeps, and how long one
/// sleep may last before it looks at its peer's liveness again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Wait {
    /// Spin-loop steps (`PAUSE` on x86) before sleeping; `u32::MAX` never
    /// sleeps (busy-poll).
    pub(crate) spin: u32,
    /// Longest single sleep; `None` only where there is no peer process to
    /// watch (both ends in this process, and loom).
    pub(crate) slice: Option<Duration>,
}

impl Wait {
    /// Spin steps between two peer-checking polls while spinning.
    const CHECK_PEERS_EVERY: u32 = 1 << 14;
    /// Spin steps between two looks at the clock while spinning.
    const CLOCK_EVERY: u32 = 64;
    /// Default sleep slice for objects shared with other processes.
    pub(crate) const PEER_SLICE: Duration = Duration::from_millis(50);

    /// An object within one process: the default spin, sleeps without
    /// slices (there is no peer process whose death could go unnoticed).
    pub(crate) const fn local() -> Self {
        Self { spin: DEFAULT_SPIN, slice: None }
    }

    /// An object in a segment: `spin` steps, then sleeps in slices of
    /// [`Wait::PEER_SLICE`] that look at the peers' liveness.
    pub(crate) const fn shared(spin: u32) -> Self {
        Self { spin, slice: Some(Self::PEER_SLICE) }
    }
}

/// Default spin-loop steps before a blocked side sleeps.
pub(crate) const DEFAULT_SPIN: u32 = 1 << 12;

/// How long a blocking call may wait: the one deadline type of every wait
/// in the crate (the public calls' timeouts and `Option<Instant>`
/// deadlines become one). A timeout becomes an instant only once the first
/// look has found nothing ([`Deadline::start`]), so a call that can go
/// ahead at once never reads the clock (a clock read costs about as much as
/// a message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deadline {
    /// Do not wait: one more look, then give up (a `try_` call).
    Now,
    /// Wait as long as it takes.
    Never,
    /// Wait until this instant.
    At(Instant),
    /// Wait this long, from the first look that found nothing.
    After(Duration),
}

impl Deadline {
    /// A public `_deadline` call's argument: `None` waits as long as it takes.
    pub(crate) fn at(deadline: Option<Instant>) -> Self {
        deadline.map_or(Deadline::Never, Deadline::At)
    }

    /// Fixes a timeout to an instant (reading the clock once); every wait
    /// of the same call then keeps that instant. A timeout too long to be
    /// an instant never passes.
    pub(crate) fn start(self) -> Self {
        match self {
            Deadline::After(t) => Instant::now().checked_add(t).map_or(Deadline::Never, Deadline::At),
            d => d,
        }
    }

    /// Whether waiting has a limit (so the clock must be read).
    pub(crate) fn is_limited(self) -> bool {
        self != Deadline::Never
    }

    /// Time left at `now`: `None` without a limit, zero once passed. A
    /// timeout not yet started has all of it left.
    pub(crate) fn left(self, now: Instant) -> Option<Duration> {
        match self {
            Deadline::Now => Some(Duration::ZERO),
            Deadline::Never => None,
            Deadline::At(d) => Some(d.saturating_duration_since(now)),
            Deadline::After(t) => Some(t),
        }
    }

    /// Whether it has passed at `now`.
    pub(crate) fn passed(self, now: Instant) -> bool {
        self.left(now) == Some(Duration::ZERO)
    }
}
