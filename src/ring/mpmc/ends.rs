//! Disconnection: each side's line also counts the other side's live
//! handles, as an [`Ends`] word: `tail`'s the receivers (every claim to
//! send reads it, next to `tail`), `head`'s the senders (read by a
//! receiver that finds nothing to take). A sender finding no receiver
//! fails at once; a receiver finding no sender takes what is left and then
//! reports "closed" once `head` has reached `tail`, as after `close`. A
//! process counts in ([`Mpmc::attach_end`]) when its first handle of a kind
//! on this ring appears and out when its last goes (the handles keep a
//! process-local count). In a segment the process is also counted in its
//! row ([`crate::shm::peer::Row::ends`]), which is what outlives a killed
//! process: counting in does the queue's word first and the row second,
//! counting out the reverse, so the queue's count is never below the rows'
//! sum, and "none left" read from it is true. A peer-checking look
//! (a waiter's, or a `try_` call's now and then; at most every 10 ms per
//! handle, as it reads `/proc`) takes each dead process's
//! row count off the queue's ([`Mpmc::settle_ends`]: a swap, so once), and
//! when the count still says some but no live row counts any, and no
//! handle came or went during that look (the word's change number), the
//! count was left too high by a process killed between its two counts and
//! is set to none. The handle that takes a count to none wakes the other
//! side's sleepers (the eventcount's publishing store is the count's).
//!
//! **Invariant:** the queue's count of a kind is at least the number of
//! live handles of that kind; it reaches 0 only when none is left.

use super::*;

/// One of a queue's two kinds of handle (a `Queue` is both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Sender,
    Receiver,
}

impl End {
    /// The index of this kind's count in a row's `ends`.
    pub(super) fn row_index(self) -> usize {
        match self {
            End::Sender => crate::shm::peer::SENDERS,
            End::Receiver => crate::shm::peer::RECEIVERS,
        }
    }
}

impl Mpmc {
    /// The count word of handles of kind `end` (see "Disconnection").
    #[inline(always)]
    pub(super) fn ends(&self, end: End) -> &AtomicU64 {
        match end {
            End::Sender => &self.ctl().head.ends,
            End::Receiver => &self.ctl().tail.ends,
        }
    }

    /// Counts this process in as having a handle of kind `end`: in the
    /// queue's word, then in this process's row.
    pub(crate) fn attach_end(&self, end: End) {
        // Relaxed (both): a handle that arrives publishes nothing; the
        // order of the two counts is program order in this thread, and a
        // sweep only takes a row's count off after seeing its process dead.
        self.ends(end).fetch_add(Ends::delta(1), Ordering::Relaxed);
        if let Some(c) = &self.claims {
            c.mine().ends[end.row_index()].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts this process out as having a handle of kind `end`: in its
    /// row, then in the queue's word; the last one anywhere wakes the other
    /// side.
    pub(crate) fn detach_end(&self, end: End) {
        if let Some(c) = &self.claims {
            // Relaxed: as in `attach_end`.
            c.mine().ends[end.row_index()].fetch_sub(1, Ordering::Relaxed);
        }
        // Release: pairs with the Acquire load in `none_left`, so a receiver
        // that finds no sender left sees every message they sent.
        let before = Ends::from_bits(self.ends(end).fetch_add(Ends::delta(-1), Ordering::Release));
        if before.count() == 1 {
            self.wake_the_other_side(end);
        }
    }

    /// Wakes whoever waits on the handles of kind `end`: receivers, to
    /// drain and see no sender left; senders, to see no receiver left.
    pub(super) fn wake_the_other_side(&self, end: End) {
        #[cfg(procring_bug = "ends_without_wake")]
        return;
        #[allow(unreachable_code)]
        match end {
            End::Sender => self.ctl().not_empty.notify(self.barrier),
            End::Receiver => self.ctl().not_full.notify(self.barrier),
        }
    }

    /// Whether the queue's count says no handle of kind `end` is left
    /// (true, when it says so: see "Disconnection").
    #[inline(always)]
    pub(super) fn none_left(&self, end: End) -> bool {
        // Acquire: pairs with the Release in `detach_end` (and the sweeps).
        Ends::from_bits(self.ends(end).load(Ordering::Acquire)).count() == 0
    }

    /// A peer-checking look of the handles of kind `end`: takes dead processes'
    /// counts off the queue's, and sets a count that no live row backs to
    /// none. Returns whether none is left.
    pub(crate) fn settle_ends(&self, end: End) -> bool {
        if self.none_left(end) {
            return true;
        }
        // Within one process the count is exact.
        let Some(c) = self.claims.as_ref().filter(|c| c.time_to_look()) else { return false };
        let rows = c.table.rows();
        self.sweep_ends(rows);
        // Acquire: as in `none_left`.
        let before = Ends::from_bits(self.ends(end).load(Ordering::Acquire));
        if before.count() == 0 {
            return true;
        }
        let i = end.row_index();
        // Relaxed: the change number below tells whether the rows changed.
        if rows.iter().any(|r| r.ends[i].load(Ordering::Relaxed) != 0 && r.alive()) {
            return false;
        }
        // No live row counts one, and no handle came or went meanwhile (a
        // CAS from the word read before the look): the count is a dead
        // process's that never reached its row. AcqRel: as a detach.
        let fixed =
            self.ends(end).compare_exchange(before.bits(), before.none().bits(), Ordering::AcqRel, Ordering::Acquire);
        if fixed.is_ok() {
            self.wake_the_other_side(end);
        }
        fixed.is_ok()
    }

    /// Takes the handle counts of dead processes' rows off the queue's
    /// counts, each once (a swap of the row's count to 0).
    pub(super) fn sweep_ends(&self, rows: &[Row]) {
        for row in rows {
            // Relaxed: a dead process's counts change no more.
            if row.ends.iter().all(|n| n.load(Ordering::Relaxed) == 0) || row.pid().is_none() || row.alive() {
                continue;
            }
            for end in [End::Sender, End::Receiver] {
                let n = row.ends[end.row_index()].swap(0, Ordering::Relaxed);
                if n == 0 {
                    continue;
                }
                // Release: as in `detach_end`.
                let before = Ends::from_bits(self.ends(end).fetch_add(Ends::delta(-i64::from(n)), Ordering::Release));
                if before.count() <= n {
                    self.wake_the_other_side(end);
                }
            }
        }
    }

    /// A peer-checking look for what dead processes left that holds up a claim
    /// (see [`Mpmc::recover`] and [`Mpmc::settle_ends`]): whether a new try
    /// may now succeed or find the other side gone.
    #[cold]
    #[inline(never)]
    pub(crate) fn look_into_the_dead(&self, other: End) -> bool {
        // Both, whatever the first finds.
        self.recover() | self.settle_ends(other)
    }
}

/// How often a handle looks at the rows for dead processes' handle counts,
/// at most (see [`Claims::time_to_look`]): well within a blocked call's
/// 50 ms slice, so each slice's peer-checking poll looks.
#[cfg(not(loom))]
pub(super) const LOOK_AT_ENDS_EVERY: std::time::Duration = std::time::Duration::from_millis(10);
