//! Recovering what dead processes left: their unfinished claims (skipped
//! or released, see [`super::claims`]), and the finished claims their
//! rows still announce (swept by the next process to open the queue).

use super::*;

impl Mpmc {
    /// Whether a `try_` call that found nothing to do should look for a dead
    /// process's claim: every 1024th such call in a thread.
    pub(super) fn rare_check_due(&self) -> bool {
        self.claims.is_some() && rare_check_due()
    }

    /// Resolves claims whose process died where they block the queue: a
    /// producer's unpublished claim at `head` (consumers wait on it), a
    /// consumer's unreleased claim at `released` (producers wait on it).
    /// Then clears dead processes' resolved claim words and handle counts,
    /// so that their rows can be reused. Returns whether it resolved a claim.
    pub(crate) fn recover(&self) -> bool {
        let Some(c) = &self.claims else { return false };
        let ctl = self.ctl();
        let mut resolved = false;
        // Acquire (both): pair with the claims' Release CASes, so their
        // announcements are visible below.
        let head = ctl.head.pos.load(Ordering::Acquire);
        let tail = Tail::from_bits(ctl.tail.pos.load(Ordering::Acquire)).pos();
        let seq_of = |pos: u64| self.slots.seq(self.idx(pos));
        // A producer claimed `head` (tail is past it) and has not published.
        // The slot still holds an earlier lap's value (`released` is past
        // that lap's position, so no one else writes it now).
        let seq = Seq::from_bits(seq_of(head).load(Ordering::Acquire));
        let claim = ClaimWord::claim(head, SEND);
        if tail > head
            && seq.lap() < head + 1
            && c.suspect(0, claim)
            && c.claimed_only_by_dead(claim)
            // AcqRel: as a publish (Release) of an empty slot; fails if the
            // slot moved on meanwhile.
            && seq_of(head)
                .compare_exchange(seq.bits(), Seq::published(head, false).bits(), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            ctl.counters.abandoned.fetch_add(1, Ordering::Relaxed);
            ctl.not_empty.notify(self.barrier);
            resolved = true;
        }
        // A consumer claimed `released` (head is past it) and has neither
        // released nor marked it: producers wait for that slot. Mark it for
        // the consumer, then move `released` on.
        // Acquire: as `head` above; and the marks before it.
        let released = ctl.released.load(Ordering::Acquire);
        let seq = Seq::from_bits(seq_of(released).load(Ordering::Acquire));
        let claim = ClaimWord::claim(released, RECV);
        if head > released
            && seq.unskipped() == Seq::published(released, true)
            && c.suspect(1, claim)
            && c.claimed_only_by_dead(claim)
            // AcqRel: as a mark (Release); fails if the slot moved on.
            && seq_of(released)
                .compare_exchange(seq.bits(), Seq::marked(released).bits(), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            ctl.counters.abandoned.fetch_add(1, Ordering::Relaxed);
            self.advance_over_marks(released);
            ctl.not_full.notify(self.barrier);
            resolved = true;
        }
        if resolved {
            self.sweep(c.table.rows());
        }
        resolved
    }

    /// Clears dead processes' claim words for positions that are resolved
    /// (published, released, or never won). A claim still blocking is left
    /// for `recover`. The rows themselves stay, as the record of who died
    /// (`procring ls`, stale segments), until an attacher needs the room:
    /// a process opening the queue sweeps before it takes a row, so that a
    /// table full of dead processes' rows (whose owned words still
    /// announce their last, finished claims) has rows to free.
    pub(crate) fn sweep(&self, rows: &[Row]) {
        self.sweep_ends(rows);
        for row in rows {
            if row.pid().is_none() || row.alive() {
                continue;
            }
            // Read the positions only now, after seeing the process dead:
            // its death is ordered after its last claim (see `peer`), so
            // these values include that claim. Values read before could
            // make a claim won since look never won.
            let at = self.positions();
            for w in &row.claims {
                let claim = ClaimWord::from_bits(w.load(Ordering::Acquire));
                let done = match claim {
                    ClaimWord::FREE => continue,
                    ClaimWord::TAKEN => true,
                    _ => self.finished(claim, at),
                };
                if done {
                    // Relaxed: a dead process's word; nobody else writes it.
                    let _ =
                        w.compare_exchange(claim.bits(), ClaimWord::FREE.bits(), Ordering::Relaxed, Ordering::Relaxed);
                }
            }
        }
    }

    /// `head`, `tail` (without `CLOSED`) and `released`, for [`Mpmc::finished`].
    pub(super) fn positions(&self) -> [u64; 3] {
        let ctl = self.ctl();
        // Acquire (all): pair with the claims' Release CASes and stores, and
        // with the Release stores of `released`.
        let head = ctl.head.pos.load(Ordering::Acquire);
        let tail = Tail::from_bits(ctl.tail.pos.load(Ordering::Acquire)).pos();
        [head, tail, ctl.released.load(Ordering::Acquire)]
    }

    /// Whether the claim a word announces (neither 0 nor `TAKEN`) is
    /// finished, or was never won, judged by its slot and by the positions
    /// `[head, tail, released]` read before.
    pub(super) fn finished(&self, claim: ClaimWord, [head, tail, released]: [u64; 3]) -> bool {
        let Some((pos, send)) = claim.announced() else { return true };
        // Acquire: a publish, mark or release seen here happened.
        let seq = Seq::from_bits(self.slots.seq(self.idx(pos)).load(Ordering::Acquire)).unskipped();
        if send {
            // Never won, or published (this lap or a later one).
            pos >= tail || seq.lap() > pos
        } else {
            // Never won, released, or marked (or a later lap's).
            pos >= head || released > pos || seq != Seq::published(pos, true)
        }
    }

    /// The positions (as `procring ls` shows them: the claim word minus
    /// one, with the consumer bit) that `row`'s words announce and that are
    /// not finished now.
    pub(crate) fn unfinished_claims(&self, row: &Row) -> Vec<u64> {
        let at = self.positions();
        row.claims
            .iter()
            // Relaxed: a snapshot for a person to read.
            .map(|w| ClaimWord::from_bits(w.load(Ordering::Relaxed)))
            .filter(|&c| c != ClaimWord::FREE && (c == ClaimWord::TAKEN || !self.finished(c, at)))
            .map(|c| c.bits().wrapping_sub(1))
            .collect()
    }
}

/// True on every 1024th call in a thread: for checks too costly to make on
/// every miss.
pub(super) fn rare_check_due() -> bool {
    #[cfg(not(loom))]
    {
        thread_local!(static MISSES: std::cell::Cell<u32> = const { std::cell::Cell::new(0) });
        MISSES.with(|m| {
            m.set(m.get().wrapping_add(1));
            m.get() % 1024 == 0
        })
    }
    #[cfg(loom)]
    false
}
