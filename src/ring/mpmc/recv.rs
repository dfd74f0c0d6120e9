//! The receive path: claiming a published position, the honest `try_recv`,
//! and releasing a read position in order or by a mark.
//!
//! **An honest `try_recv`.** A receiver that finds the slot at `head`
//! unpublished may be looking at a sender's claim still under way while
//! later senders have published theirs. So a `try_` receive that finds
//! nothing reads `head`, then `tail`, and scans the positions between for
//! one published (at any lap past it); if none is, each was unpublished
//! when read, and so at the read of `tail`. Otherwise it waits on
//! `not_empty` (whose peer-checking polls recover a dead claimer's claim)
//! until it claims a message or the queue is empty by the same test.
//!
//! **Invariant:** `try_recv` reports `Empty` only if the queue was empty at
//! its read of `tail`; so a send that returned before it is never behind an
//! `Empty`. A zero-copy reservation of this process may be the claim waited
//! on, held by this very thread: with one outstanding, `try_recv` does not
//! wait (and may say `Empty`).

use super::*;

impl Mpmc {
    /// Claims a published slot for reading, if there is one now (slots
    /// published without a message are released and passed over); every so
    /// often when there is none, first resolves a dead process's claim.
    /// `NotNow` only if the ring was empty at some instant of the call (see
    /// [`Mpmc::settle_recv`]).
    #[inline(always)]
    pub(crate) fn try_claim_recv(&self) -> Result<Claim, Stop> {
        match self.claim_recv_quick() {
            Err(Stop::NotNow) => self.settle_recv(),
            other => other,
        }
    }

    /// As [`Mpmc::try_claim_recv`], but `NotNow` also while the next
    /// position is claimed and not yet published, whatever is queued behind
    /// it: for callers that look again anyway (a blocking receive's first
    /// try, the rest of a batch).
    #[inline(always)]
    pub(crate) fn claim_recv_quick(&self) -> Result<Claim, Stop> {
        match self.claim_recv_now() {
            Err(Stop::NotNow) if self.rare_check_due() && self.look_into_the_dead(End::Sender) => self.claim_recv_now(),
            other => other,
        }
    }

    /// The end of a `try_` receive that found the next slot unpublished.
    /// Reporting empty then is honest only if nothing is queued: a sender
    /// may have claimed the next position and not yet published it while
    /// later senders have published theirs, and a crossbeam user expects
    /// those messages. So unless the queue is empty now
    /// ([`Mpmc::queued_behind_a_send`]), wait on `not_empty` (which every
    /// publish notifies) for the claim at `head` to be published, or its dead
    /// claimer's claim to be recovered, and claim again. A zero-copy
    /// reservation of this process may be that claim and be kept by this
    /// very thread, so with one outstanding the wait is not made (empty, as
    /// before).
    #[cold]
    #[inline(never)]
    pub(super) fn settle_recv(&self) -> Result<Claim, Stop> {
        if !self.queued_behind_a_send() {
            return Err(Stop::NotNow);
        }
        // A live sender publishes within nanoseconds unless it lost its
        // core: spin for that, then sleep (in slices, in a segment, to look
        // into a dead claimer's claim).
        let wait = Wait { spin: SETTLE_SPIN, slice: self.claims.as_ref().map(|_| Wait::PEER_SLICE) };
        let outcome = self.ctl().not_empty.wait_until(self.barrier, &wait, Deadline::Never, |check_peers| {
            if check_peers {
                self.recover();
            }
            match self.claim_recv_now() {
                Err(Stop::NotNow) if self.queued_behind_a_send() => None,
                other => Some(other),
            }
        });
        outcome.unwrap_or(Err(Stop::NotNow))
    }

    /// Whether a message is queued behind a claim still under way at `head`
    /// (and no reservation of this process's may be that claim). If not,
    /// the queue was empty at the read of `tail`.
    pub(super) fn queued_behind_a_send(&self) -> bool {
        let ctl = self.ctl();
        let head = ctl.head.pos.load(Ordering::Relaxed);
        // Acquire: pairs with the producers' Release CAS of `tail`, for the
        // claims' announcements (`recover` reads them).
        let tail = Tail::from_bits(ctl.tail.pos.load(Ordering::Acquire)).pos();
        // Relaxed: process-local; a reservation counted is one whose claim
        // this thread may be waiting on.
        tail > head && self.published_in(head, tail) && self.room.reservations.load(Ordering::Relaxed) == 0
    }

    /// Whether any position in `from..to` (all claimed by senders) has been
    /// published, read or not. If none has, each was unpublished when it was
    /// read, and so at the earlier read of `tail`: no message was queued
    /// then.
    pub(super) fn published_in(&self, from: u64, to: u64) -> bool {
        // Positions beyond a lap are not claimed (tail - released <= cap).
        (from..to.min(from + self.capacity())).any(|pos| {
            // Acquire: pairs with `publish`; only the value matters here.
            Seq::from_bits(self.slots.seq(self.idx(pos)).load(Ordering::Acquire)).lap() > pos
        })
    }

    /// Claims a published slot for reading, if there is one now.
    #[inline(always)]
    pub(crate) fn claim_recv_now(&self) -> Result<Claim, Stop> {
        let mut word = None;
        let attempt = self.claim_recv_announcing(&mut word);
        self.claimed(attempt, word)
    }

    #[inline(always)]
    pub(super) fn claim_recv_announcing<'a>(&'a self, word: &mut Option<&'a AtomicU64>) -> Result<u64, Stop> {
        let ctl = self.ctl();
        let mut head = ctl.head.pos.load(Ordering::Relaxed);
        loop {
            // Acquire: pairs with the producer's Release in `publish`.
            let seq = Seq::from_bits(self.slots.seq(self.idx(head)).load(Ordering::Acquire));
            let diff = seq.lap().wrapping_sub(head + 1) as i64;
            if diff == 0 && !seq.is_marked() {
                let w = self.word(word);
                if let Some(w) = w {
                    w.store(ClaimWord::claim(head, RECV).bits(), Ordering::Relaxed);
                    // announce the claim
                }
                match self.claim_pos(&ctl.head, w, head, RECV) {
                    Ok(()) if seq.is_skip() => {
                        ctl.counters.skipped.fetch_add(1, Ordering::Relaxed);
                        self.release_slot(head);
                        head += 1;
                    }
                    Ok(()) => return Ok(head),
                    Err(Miss::At(now)) => head = now,
                    Err(Miss::Busy) => return Err(Stop::NotNow),
                }
            } else if diff < 0 {
                // Not published yet: empty, or a producer is still writing
                // it. Either way there is nothing to take now, unless the
                // queue is closed or has no sender left: only then look at
                // `tail` (see "Close").
                let orphaned = self.none_left(End::Sender);
                if !orphaned && !self.closed_flag() {
                    return Err(Stop::NotNow);
                }
                // Acquire: pairs with `close`, and (after the Acquire load
                // of the senders' count) carries every claim of theirs.
                let tail = Tail::from_bits(ctl.tail.pos.load(Ordering::Acquire));
                if tail.pos() == head {
                    // Truly empty: nothing claimed that is not consumed.
                    return Err(if orphaned || tail.is_closed() { Stop::Closed } else { Stop::NotNow });
                }
                // A producer claimed `head` and is still writing it (or `head`
                // moved on): look again, or report empty for now.
                let now = ctl.head.pos.load(Ordering::Relaxed);
                if now == head {
                    return Err(Stop::NotNow);
                }
                head = now;
            } else {
                // Another consumer took this position (and may have read it
                // already: a mark); `head` has moved on.
                let now = ctl.head.pos.load(Ordering::Relaxed);
                if now == head {
                    return Err(Stop::Corrupt("a slot's sequence is ahead of the consumers' position"));
                }
                head = now;
            }
        }
    }

    /// Marks `claim` as held by a zero-copy guard, which may outlive the
    /// call that claimed it (see [`Claims::hold`]).
    #[inline]
    pub(crate) fn hold(&self, claim: Claim) {
        if let Some(c) = &self.claims {
            c.hold(claim.word);
        }
    }

    /// Marks `claim`, a send claim, as held by a zero-copy guard until
    /// [`Mpmc::publish_held`].
    pub(crate) fn hold_send(&self, claim: Claim) {
        self.hold(claim);
        // Relaxed: see `settle_recv`.
        self.room.reservations.fetch_add(1, Ordering::Relaxed);
    }

    /// Publishes a claim held by [`Mpmc::hold_send`], as [`Mpmc::publish`].
    pub(crate) fn publish_held(&self, claim: Claim, commit: bool) {
        self.publish(claim, commit);
        // Relaxed: see `settle_recv`.
        self.room.reservations.fetch_sub(1, Ordering::Relaxed);
    }

    /// Releases a slot this handle has read, for the next lap's producer.
    #[inline]
    pub(crate) fn release(&self, claim: Claim) {
        self.release_slot(claim.pos);
        if let Some(c) = &self.claims {
            c.clear(claim.word);
        }
    }

    /// Releases position `pos`, in order or by a mark (see "Protocol").
    #[inline]
    pub(super) fn release_slot(&self, pos: u64) {
        let ctl = self.ctl();
        // Acquire: the store of `pos` by the consumer before us happens
        // before ours, so ours carries its reads along to producers.
        if ctl.released.load(Ordering::Acquire) == pos {
            // Release: pairs with the producers' Acquire load; our read of
            // the payload happens before the next lap's write.
            ctl.released.store(pos + 1, Ordering::Release);
            // Consumers after us may have finished first and marked their
            // slots: only if someone claimed after us (with one consumer,
            // never; this keeps its next slot's line out of the way).
            if ctl.head.pos.load(Ordering::Relaxed) != pos + 1 {
                self.advance_over_marks(pos + 1);
            }
        } else {
            // Release: pairs with the Acquire load in `advance_over_marks`.
            self.slots.seq(self.idx(pos)).store(Seq::marked(pos).bits(), Ordering::Release);
            // The consumer before us may have finished meanwhile without
            // seeing our mark (or left marks unswept the same way): move
            // `released` on from wherever it is now. Best effort; a
            // producer that finds the ring full looks for marks itself.
            // Acquire: as in `advance_over_marks`.
            self.advance_over_marks(ctl.released.load(Ordering::Acquire));
        }
        ctl.not_full.notify(self.barrier);
    }
}

/// Spin steps a `try_` receive spends waiting for a send under way that a
/// queued message waits behind, before it sleeps (under loom none: a
/// model's spins are scheduling points).
pub(super) const SETTLE_SPIN: u32 = if cfg!(loom) { 0 } else { 1 << 12 };
