//! Biased claims (segments whose processes all use the asymmetric
//! barrier; see `crate::sync::Barrier`). A CAS per message on each side is
//! what an MPMC ring costs over an SPSC one: a locked instruction waits for
//! the side's earlier stores, slot lines still on their way to the other
//! core, to drain. So a side with a single claimer lets it claim with a
//! plain store. Each side has a `bias` word next to its position:
//! [`FREE`] (claims CAS), an owner's id (its row and thread), [`REVOKING`]
//! with the revoker's id, or [`SHARED`] (claims CAS; the producers' side
//! once closed, for good).
//!
//! ```text
//!  claimer (every claim)                      taker / revoker (rare)
//!  ─────────────────────                      ──────────────────────
//!  C2 announce pos + 1 in its claim word      T1 CAS bias FREE → me   (take)
//!  B1 light barrier        ── Dekker ──       or CAS owner → REVOKING (revoke)
//!  B2 load bias (Acquire)                     B3 heavy barrier (membarrier)
//!  me?       store pos + 1 (Release)          take: a claim announced beyond pos?
//!  FREE/SHARED: CAS pos → pos + 1                   then give the bias back
//!  other: withdraw (word = TAKEN), revoke     revoke: wait until no live row
//!         or wait out the revoker, retry              announces one; bias = FREE
//! ```
//!
//! **Invariant:** while a side's bias names an owner, only that thread
//! writes the side's position, and it does so only between its claim's
//! announcement and its look at the bias. B1/B3 give the either-or of the
//! eventcount: a claim whose look (B2) comes after a taker's or revoker's
//! B3 sees the new bias; one whose look came before has its announcement
//! visible to the scan after B3. So a taker sees every CAS that may still
//! succeed (and gives the bias back rather than store over it), and a
//! revoker sees the owner's store under way and waits for `pos` to pass
//! it; claimers that find a revocation under way withdraw their
//! announcements, so that the revoker's wait ends. `close` ends the
//! producers' bias (`SHARED`) before it sets `CLOSED`, which an owner's
//! plain store would otherwise wipe. A thread takes the bias after
//! `TAKE_AFTER` uncontended claims in a row (a `membarrier` costs a few
//! microseconds); a dead owner (or revoker) stores nothing more, so the
//! revoker's wait skips dead rows and a waiter takes over a dead revoker's
//! revocation (or a live one's that takes very long: only the revocation's
//! current holder frees the bias, with a CAS from its own `REVOKING` value).
//! A claim stays under way for long only while its process is stopped (or
//! in a corrupt segment): a revoker then gives up after `QUIESCE_FOR` spin
//! steps, its call reports full or empty, and the next claim takes the
//! revocation up again; `close` waits.

use super::*;

impl Mpmc {
    /// Takes `side`'s bias for this thread, unless a claim by anyone else
    /// may still be under way.
    #[cold]
    #[inline(never)]
    pub(super) fn take_bias(&self, c: &Claims, side: &Side, me: Bias, send: bool) {
        // Relaxed: what matters is the heavy barrier after it.
        if side.bias.compare_exchange(Bias::FREE.bits(), me.bits(), Ordering::Relaxed, Ordering::Relaxed).is_err() {
            return;
        }
        // B3: a claimer whose look at the bias (B2) comes after this sees
        // `me`; one whose look came before has its announcement visible
        // below.
        self.barrier.heavy_without_fallback();
        // Acquire: the CASes that won before are visible to this thread's
        // later reads of `pos`.
        let pos = Tail::from_bits(side.pos.load(Ordering::Acquire));
        if pos.is_closed() || c.any_beyond(pos.pos(), send) {
            // A claim that read FREE may still CAS: give the bias back, unless
            // a revoker took it from us meanwhile (it then frees it).
            let _ = side.bias.compare_exchange(me.bits(), Bias::FREE.bits(), Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// Waits out the bias `bias` (owned by another thread, or being
    /// revoked): revokes it, or waits for the revoker (taking over from one
    /// that died or takes very long). Returns whether the bias is no longer
    /// `bias` (false: a revocation this call holds could not finish now).
    #[cold]
    #[inline(never)]
    pub(super) fn unbias(&self, c: &Claims, side: &Side, bias: Bias, send: bool) -> bool {
        // A thread being torn down revokes under its row alone.
        let me = c.owner_id().unwrap_or(Bias::owner(c.row, 0)).revoking();
        let mut spins = 0u32;
        loop {
            // Revoke an owner's bias; take a revocation over from a revoker
            // that died part-way (or has taken very long).
            let take = !bias.is_revoking()
                || bias == me
                || spins >= TAKE_OVER_AFTER
                || (spins % 1024 == 1023 && !c.row_alive(bias.row()));
            // Relaxed: the heavy barrier in `quiesce` does the ordering.
            if take && side.bias.compare_exchange(bias.bits(), me.bits(), Ordering::Relaxed, Ordering::Relaxed).is_ok()
            {
                return self.quiesce(c, side, me, send);
            }
            // Acquire: as B2.
            if side.bias.load(Ordering::Acquire) != bias.bits() {
                return true;
            }
            spins = spins.saturating_add(1);
            pause(spins);
        }
    }

    /// The end of a revocation that holds `side`'s bias as `me` (REVOKING
    /// and this thread's id): waits until no live process has a claim of
    /// this side under way beyond `pos` (a former owner's plain store has
    /// landed; every other claimer has withdrawn), then frees the bias,
    /// unless another claimer took the revocation over meanwhile (it frees
    /// it when its own wait is done). False if claims stayed under way for
    /// [`QUIESCE_FOR`] spin steps: the bias stays `me`, for the next claim
    /// to take up.
    pub(super) fn quiesce(&self, c: &Claims, side: &Side, me: Bias, send: bool) -> bool {
        // B3, as in `take_bias`: every claim that read the old bias has its
        // announcement visible below; every later one reads REVOKING.
        self.barrier.heavy_without_fallback();
        let mut spins = 0u32;
        #[cfg(not(procring_bug = "bias_no_quiesce"))]
        for row in c.table.rows() {
            loop {
                // Acquire: pairs with the owner's Release store of `pos`; the
                // Release below passes it on to every claimer (B2).
                let pos = Tail::from_bits(side.pos.load(Ordering::Acquire)).pos();
                if !Claims::row_beyond(row, pos, send) {
                    break;
                }
                spins += 1;
                // A dead process stores nothing more.
                if spins % 1024 == 0 && !row.alive() {
                    break;
                }
                if spins >= QUIESCE_FOR {
                    return false;
                }
                pause(spins);
            }
        }
        // Release: see B2.
        if side.bias.compare_exchange(me.bits(), Bias::FREE.bits(), Ordering::Release, Ordering::Relaxed).is_ok() {
            self.ctl().counters.revoked.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// Ends the producers' bias for good (`SHARED`), revoking an owner's.
    pub(super) fn end_send_bias(&self) {
        let Some(c) = self.claims.as_ref().filter(|_| self.biased) else { return };
        let side = &*self.ctl().tail;
        loop {
            // Acquire: as B2.
            match Bias::from_bits(side.bias.load(Ordering::Acquire)) {
                Bias::SHARED => return,
                // Nobody owns it, so nobody stores `pos` plainly.
                Bias::FREE
                    if side
                        .bias
                        .compare_exchange(Bias::FREE.bits(), Bias::SHARED.bits(), Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok() =>
                {
                    return
                }
                Bias::FREE => {}
                // Until it ends: a close waits for a stopped sender.
                bias => {
                    self.unbias(c, side, bias, SEND);
                }
            }
        }
    }
}

/// Whether this thread's claim of `pos` (on one side of the queue at
/// `key`) makes [`TAKE_AFTER`] in a row that nobody else's came between.
#[cfg(not(loom))]
#[inline(always)]
pub(super) fn uncontended_run(key: usize, pos: u64, send: bool) -> bool {
    // (queue, next position if uncontended, claims in the run) per side.
    thread_local!(static RUNS: std::cell::Cell<[(usize, u64, u32); 2]> = const { std::cell::Cell::new([(0, 0, 0); 2]) });
    RUNS.with(|r| {
        let mut runs = r.get();
        let run = &mut runs[usize::from(send)];
        let n = if run.0 == key && run.1 == pos { run.2 + 1 } else { 0 };
        let take = n >= TAKE_AFTER;
        *run = (key, pos + 1, if take { 0 } else { n });
        r.set(runs);
        take
    })
}

/// Under loom every uncontended claim tries to take the bias, so that the
/// models see it taken and revoked.
#[cfg(loom)]
pub(super) fn uncontended_run(_key: usize, _pos: u64, _send: bool) -> bool {
    true
}

/// The calling thread's tag, at most [`Bias::TAG_MAX`] and never 0.
#[cfg(not(loom))]
#[inline(always)]
pub(super) fn bias_tag() -> Option<u64> {
    let tag = crate::sync::thread_tag::current()?;
    (tag <= Bias::TAG_MAX).then_some(tag)
}

/// Under loom, a tag per model thread (loom's threads share one OS thread).
#[cfg(loom)]
pub(super) fn bias_tag() -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    loom::thread::current().id().hash(&mut h);
    Some(h.finish() & Bias::TAG_MAX | 1)
}
