//! The send path: claiming a position to write (announced, biased or
//! by CAS) once there is room, and reading and advancing `released`.

use super::*;

impl Mpmc {
    /// Claims a free slot for writing, if there is one now; every so often
    /// when there is none, first resolves a dead process's claim and takes
    /// dead receivers off the count.
    #[inline(always)]
    pub(crate) fn try_claim_send(&self) -> Result<Claim, Stop> {
        match self.claim_send_now() {
            Err(Stop::NotNow) if self.rare_check_due() && self.look_into_the_dead(End::Receiver) => {
                self.claim_send_now()
            }
            other => other,
        }
    }

    /// Claims a free slot for writing, if there is one now.
    #[inline(always)]
    pub(crate) fn claim_send_now(&self) -> Result<Claim, Stop> {
        let mut word = None;
        let attempt = self.claim_send_announcing(&mut word);
        self.claimed(attempt, word)
    }

    #[inline(always)]
    pub(super) fn claim_send_announcing<'a>(&'a self, word: &mut Option<&'a AtomicU64>) -> Result<u64, Stop> {
        let ctl = self.ctl();
        if self.none_left(End::Receiver) {
            return Err(Stop::Closed);
        }
        let mut tail = ctl.tail.pos.load(Ordering::Relaxed);
        loop {
            if Tail::from_bits(tail).is_closed() {
                return Err(Stop::Closed);
            }
            if !self.room_at(tail) {
                return Err(Stop::NotNow);
            }
            let w = self.word(word);
            if let Some(w) = w {
                w.store(ClaimWord::claim(tail, SEND).bits(), Ordering::Relaxed);
                // announce the claim
            }
            match self.claim_pos(&ctl.tail, w, tail, SEND) {
                Ok(()) => return Ok(tail),
                Err(Miss::At(now)) => tail = now,
                Err(Miss::Busy) => return Err(Stop::NotNow),
            }
        }
    }

    /// Whether position `tail` may be claimed: fewer than `cap` positions
    /// before it are unreleased (so its slot's previous lap, `n >= cap`
    /// positions back, is free too). Uses this process's copy of `released`
    /// while that says so; else rereads it.
    #[inline(always)]
    pub(super) fn room_at(&self, tail: u64) -> bool {
        // Acquire: pairs with the Release store of the thread of this
        // process that last reread `released` (see "Memory ordering").
        let seen = self.room.released.load(Ordering::Acquire);
        self.room(tail, seen) || self.reread_released(tail)
    }

    /// Whether `tail` is less than a lap ahead of `released`. Saturating: a
    /// `tail` read before a `released` that has since passed it is stale;
    /// the CAS on it fails and the caller looks again.
    #[inline(always)]
    pub(super) fn room(&self, tail: u64, released: u64) -> bool {
        tail.saturating_sub(released) < self.capacity()
    }

    /// Rereads `released` (pacing a saturated stream, as the SPSC ring's
    /// producer does) and caches it. Returns whether `tail` has room.
    #[inline(never)]
    pub(super) fn reread_released(&self, tail: u64) -> bool {
        #[cfg_attr(loom, allow(unused_mut))]
        let mut released = self.load_released(tail);
        // A producer that keeps finding only a few slots free is outrunning
        // a saturated consumer, and each reread takes the `released` line
        // from it: let it free a run first (see `pace::Pacer`).
        #[cfg(not(loom))]
        {
            let cap = self.capacity();
            let batch = (cap / 4).clamp(1, ROOM_BATCH);
            let free = |released: u64| cap.saturating_sub(tail.saturating_sub(released));
            // Relaxed (both): process-local bookkeeping.
            let mut pacer = Pacer::from_bits(self.room.pacer.load(Ordering::Relaxed));
            let mut got = free(released);
            if pacer.pause(got, got > 0, batch) {
                released = self.load_released(tail);
                let now = free(released);
                pacer.paid(got, now, STREAM_BATCH);
                got = now;
            }
            pacer.note(got < batch);
            self.room.pacer.store(pacer.to_bits(), Ordering::Relaxed);
        }
        // Release: see `room_at`.
        self.room.released.store(released, Ordering::Release);
        self.room(tail, released)
    }

    /// Loads `released`; when it says `tail` has no room, first moves it
    /// on over slots that consumers finished out of order.
    pub(super) fn load_released(&self, tail: u64) -> u64 {
        // Acquire: pairs with the consumers' Release stores (and CASes) of
        // `released`: their reads of the freed slots happen before our
        // writes to them.
        let released = self.ctl().released.load(Ordering::Acquire);
        #[cfg(not(procring_bug = "queue_full_without_sweep"))]
        if !self.room(tail, released) {
            return self.advance_over_marks(released);
        }
        released
    }

    /// Moves `released` on from `released` over slots marked as read out of
    /// order, one CAS each; returns where it stopped (or the value found
    /// when another thread moved it first, which then goes on from there).
    pub(super) fn advance_over_marks(&self, mut released: u64) -> u64 {
        let ctl = self.ctl();
        loop {
            // Acquire: pairs with the marking consumer's Release store; its
            // read of the payload happens before our CAS, which (Release)
            // passes it on to producers.
            if Seq::from_bits(self.slots.seq(self.idx(released)).load(Ordering::Acquire)) != Seq::marked(released) {
                return released;
            }
            match ctl.released.compare_exchange(released, released + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => released += 1,
                Err(now) => return now,
            }
        }
    }
}
