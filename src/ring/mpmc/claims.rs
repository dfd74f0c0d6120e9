//! Claims and death (segments only). Each process attached to the queue
//! has a row in the segment's attachment table ([`crate::shm::peer`]) with six
//! claim words. Before its CAS on `tail` (or `head`), an operation writes
//! the position it is about to claim into one of them: `pos + 1` for a
//! producer, `(pos + 1) | RECV_CLAIM` for a consumer. After publishing (or
//! releasing) it clears a shared word; a thread's own word keeps announcing
//! the finished claim (below). The CAS is Release, so whoever sees the claim
//! in `tail`/`head` (Acquire) also sees the announcement.
//!
//! **Invariant:** while position `p` is claimed and not yet published
//! (released), the claimer's word says so. So a side that waits on `p` can
//! ask who claimed it: if every row announcing `p` belongs to a dead process
//! (and one does), the claimer is dead, for a live claimer's word would be
//! among them. A producer's abandoned claim is then published with `SKIP`
//! (CAS from the unpublished value, so a message is never half-delivered);
//! a consumer's slot is marked as read and `released` moved on over it
//! (the message it was reading is lost with it).
//! Either way `abandoned` counts it. A waiter checks this on its check_peers
//! polls (before sleeping, and after every 50 ms slice), so a death is
//! resolved within about two slices (a claim is looked into when two
//! checks in a row find it unfinished); `try_` calls check every 1024th time
//! they find the queue full or empty.
//!
//! **Finished claims stay announced.** A thread's own word is not cleared
//! after a claim that ended within its call (every copying send and
//! receive): its next claim overwrites it. Clearing cost a store per
//! operation on each side, and with the locked instructions gone (biased
//! claims, below) the stores are what limit a stream: a sender's stores
//! queue behind the slot lines still on their way from the other core.
//! A zero-copy guard may outlive its call, so its claim marks the word
//! held (process-local) until it ends, and the thread's other claims take
//! a shared word meanwhile. So a word may announce a finished claim, and
//! every reader tells: the bias scans look only beyond the side's
//! position, which a finished claim never is; recovery first checks that
//! the slot is still unpublished (unreleased), and its CAS from that value
//! fails if it was not; the sweep, `procring ls` and the model's count
//! judge by the slot and the positions ([`Mpmc::finished`]). A handle
//! dropping clears its owned words; a killed process's are swept by the
//! next process to open the queue, before it takes a row, so that a table
//! full of dead processes' rows has rows to free.

use super::bias::{bias_tag, uncontended_run};
#[cfg(not(loom))]
use super::ends::LOOK_AT_ENDS_EVERY;
#[cfg(not(loom))]
use super::recovery::rare_check_due;
use super::*;

/// Claim words `0..OWNED` of a row are each owned by one thread of the
/// process, which announces in it with plain stores and leaves its finished
/// claims announced (see "Finished claims stay announced"); the rest are
/// taken per operation (a CAS) and cleared after it, by threads without one
/// and for a claim made while the thread's own word serves a zero-copy
/// guard. Under loom one, so that the models run both kinds with two
/// threads in a process.
pub(super) const OWNED: usize = if cfg!(loom) { 1 } else { 3 };

/// Where a process records its claims, and where it looks for others'.
#[derive(Debug)]
pub(crate) struct Claims {
    pub(super) table: Table,
    mine: NonNull<Row>,
    /// Process-local: the thread (its tag) owning each of the first
    /// `OWNED` claim words; 0 = none.
    owners: [AtomicU64; OWNED],
    /// Process-local: 1 while an owned word announces the claim of a
    /// zero-copy guard, which may outlive the call that made it; the owner
    /// thread's other claims then take a shared word. Claims that end
    /// within their call (every copying send and receive) never set it.
    held: [AtomicU64; OWNED],
    /// This process's row: its index + 1, the high bits of its owners' ids.
    pub(super) row: u64,
    /// Process-local: the blocking claims (encoded as in the claim words)
    /// the last check found unfinished. Only a claim found unfinished twice
    /// in a row is looked into: a live process finishes a claim in
    /// nanoseconds, and looking (a scan of the table and a `/proc` read)
    /// costs microseconds.
    suspects: [AtomicU64; 2],
    /// Process-local: when this handle last looked at the rows for dead
    /// processes' handle counts ([`Claims::time_to_look`]), in
    /// milliseconds since the first look in this process.
    ends_looked: AtomicU64,
}

impl Claims {
    /// # Safety
    /// `mine` is one of `table`'s rows, held by this process, and both stay
    /// valid while the ring is used.
    pub(crate) unsafe fn new(table: Table, mine: NonNull<Row>) -> Self {
        let row = (mine.as_ptr() as usize - table.rows().as_ptr() as usize) / size_of::<Row>() + 1;
        let (owners, held, suspects) = Default::default();
        Self { table, mine, row: row as u64, owners, held, suspects, ends_looked: AtomicU64::new(0) }
    }

    /// Whether it is time to look at the rows for dead processes' handle
    /// counts: at most once per [`LOOK_AT_ENDS_EVERY`] per handle, as each
    /// look reads `/proc` for every process counted (microseconds), and a
    /// receiver keeping up with a stream finds the queue empty millions of
    /// times a second. Always under loom.
    pub(super) fn time_to_look(&self) -> bool {
        #[cfg(not(loom))]
        {
            static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
            let now = START.get_or_init(std::time::Instant::now).elapsed().as_millis() as u64 + 1;
            // Relaxed: a heuristic in process-local memory.
            let last = self.ends_looked.load(Ordering::Relaxed);
            if last != 0 && now < last + LOOK_AT_ENDS_EVERY.as_millis() as u64 {
                return false;
            }
            self.ends_looked.store(now, Ordering::Relaxed);
        }
        true
    }

    /// A claim word to announce in: the calling thread's own if it is free,
    /// else one taken for this operation.
    #[inline]
    pub(super) fn acquire(&self) -> &AtomicU64 {
        if let Some(w) = self.own() {
            return w;
        }
        self.take()
    }

    /// The calling thread's own claim word, adopting a free one (or a
    /// finished thread's) on first use; `None` if it has none or its word
    /// serves a zero-copy guard.
    #[inline(always)]
    pub(super) fn own(&self) -> Option<&AtomicU64> {
        #[cfg(not(loom))]
        let tag = crate::sync::thread_tag::current()?;
        #[cfg(loom)]
        let tag = bias_tag()?;
        let words = &self.mine().claims;
        // Relaxed (`owners`): process-local bookkeeping, and an owned word
        // is written by its owner thread only. A word found not held has no
        // claim under way: its last claim ended in the call that made it,
        // or its guard ended the hold after its publish or release.
        // Acquire (`held`): pairs with the Release that ends a hold, so that
        // publish or release happens before this thread's next announcement
        // overwrites the word, also when the guard was dropped on another
        // thread.
        #[cfg(not(procring_bug = "own_word_ignores_hold"))]
        let free = |i: usize| (self.held[i].load(Ordering::Acquire) == 0).then_some(&words[i]);
        #[cfg(procring_bug = "own_word_ignores_hold")]
        let free = |i: usize| Some(&words[i]);
        if let Some(i) = self.owners.iter().position(|o| o.load(Ordering::Relaxed) == tag) {
            return free(i);
        }
        for (i, o) in self.owners.iter().enumerate() {
            let owner = o.load(Ordering::Relaxed);
            // A finished thread's word has no claim under way (a thread
            // ends between calls; a guard it leaked keeps the word held);
            // its end is ordered before `alive` says so (a lock).
            #[cfg(not(loom))]
            let adopt = owner == 0 || (rare_check_due() && !crate::sync::thread_tag::alive(owner));
            #[cfg(loom)]
            let adopt = owner == 0;
            if adopt && o.compare_exchange(owner, tag, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
                return free(i);
            }
        }
        None
    }

    pub(super) fn mine(&self) -> &Row {
        // SAFETY: `new`'s contract.
        unsafe { self.mine.as_ref() }
    }

    /// A free shared claim word of this process's row. With all of them in
    /// use (that many extra operations of this process under way at once),
    /// waits for one.
    pub(super) fn take(&self) -> &AtomicU64 {
        let shared = &self.mine().claims[OWNED..];
        loop {
            for w in shared {
                // Relaxed: the word is this process's; announcements made
                // through it are ordered by the CAS on `tail`/`head`.
                if w.load(Ordering::Relaxed) == ClaimWord::FREE.bits()
                    && w.compare_exchange(
                        ClaimWord::FREE.bits(),
                        ClaimWord::TAKEN.bits(),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    return w;
                }
            }
            spin_hint();
        }
    }

    /// The calling thread's id as a bias owner (`None` while the thread
    /// is being torn down: such a thread never owns a bias).
    #[inline(always)]
    pub(super) fn owner_id(&self) -> Option<Bias> {
        let tag = bias_tag()?;
        Some(Bias::owner(self.row, tag))
    }

    /// Whether any row announces a claim of the given side beyond `pos`.
    pub(super) fn any_beyond(&self, pos: u64, send: bool) -> bool {
        self.table.rows().iter().any(|row| Self::row_beyond(row, pos, send))
    }

    /// Whether `row` announces a claim of the given side beyond `pos`: one
    /// that may still be made (by a CAS, or by an owner's store).
    pub(super) fn row_beyond(row: &Row, pos: u64, send: bool) -> bool {
        row.claims.iter().any(|w| {
            // Relaxed: the heavy barrier before the caller's scan makes the
            // announcements that matter visible.
            let claim = ClaimWord::from_bits(w.load(Ordering::Relaxed));
            claim.announced().is_some_and(|(at, sends)| sends == send && at >= pos)
        })
    }

    /// Whether the process in row `row` (index + 1) still runs; a row
    /// number out of range (a corrupt bias) counts as dead.
    pub(super) fn row_alive(&self, row: u64) -> bool {
        let rows = self.table.rows();
        row.checked_sub(1).and_then(|i| rows.get(i as usize)).is_some_and(Row::alive)
    }

    /// Ends the announcement of a claim whose slot was published or
    /// released: a shared word is cleared (exactly that word: another
    /// thread's may hold the same value for a moment, announced before a CAS
    /// it then lost); an owned word keeps announcing the finished claim
    /// until its owner's next claim (see "Finished claims stay announced"),
    /// and a guard's hold on it ends.
    #[inline(always)]
    pub(super) fn clear(&self, word: usize) {
        match word {
            // Loaded first (Relaxed: only a guard's own claim set it), so
            // that a claim that ended within its call stores nothing here.
            // Release: the guard's publish or release comes before the word
            // can be reused (see `own`).
            i if i < OWNED && self.held[i].load(Ordering::Relaxed) != 0 => {
                self.held[i].store(0, Ordering::Release);
            }
            i if i < OWNED => {}
            // Release: whoever reads the word cleared also sees the publish
            // or release before it.
            i => {
                if let Some(w) = self.mine().claims.get(i) {
                    w.store(0, Ordering::Release);
                }
            }
        }
    }

    /// Marks the owned word announcing `word`'s claim as serving a
    /// zero-copy guard, which may outlive the call: until the guard ends,
    /// the thread's other claims take a shared word.
    pub(super) fn hold(&self, word: usize) {
        if let Some(held) = self.held.get(word) {
            // Relaxed: see `own`; only this thread reads it before the
            // guard ends.
            held.store(1, Ordering::Relaxed);
        }
    }

    /// Which of this process's claim words `w` is.
    #[inline(always)]
    pub(super) fn index_of(&self, w: &AtomicU64) -> usize {
        let words = &self.mine().claims;
        // By address, not by a scan of the words.
        let i = (w as *const AtomicU64 as usize).wrapping_sub(words.as_ptr() as usize) / size_of::<AtomicU64>();
        if i < words.len() {
            i
        } else {
            NO_WORD
        }
    }

    /// Whether `claim`, found unfinished, was also found unfinished by the
    /// previous check on this `side` (0: producers' claims, 1: consumers').
    pub(super) fn suspect(&self, side: usize, claim: ClaimWord) -> bool {
        // Relaxed: a heuristic in process-local memory.
        self.suspects[side].swap(claim.bits(), Ordering::Relaxed) == claim.bits()
    }

    /// Whether `claim` is announced only by dead processes (at least one).
    pub(super) fn claimed_only_by_dead(&self, claim: ClaimWord) -> bool {
        let mut dead = false;
        for row in self.table.rows() {
            // Acquire: pairs with the Release clear; see `clear`.
            if row.claims.iter().any(|w| w.load(Ordering::Acquire) == claim.bits()) {
                #[cfg(not(procring_bug = "recover_ignores_liveness"))]
                if row.alive() {
                    return false;
                }
                dead = true;
            }
        }
        dead
    }
}

impl Drop for Claims {
    /// Before the row is freed: the owned words' finished claims go. No
    /// claim of this handle is under way (guards borrow it), unless a guard
    /// was leaked: its word stays held and announced, as the record of a
    /// claim that never ends.
    fn drop(&mut self) {
        for (w, held) in self.mine().claims.iter().zip(&self.held) {
            // Relaxed: see `own`.
            if held.load(Ordering::Relaxed) == 0 {
                // Release: as in `clear`.
                w.store(0, Ordering::Release);
            }
        }
    }
}

impl Mpmc {
    /// The end of a claim attempt, which took a claim word on its first use
    /// (see [`Mpmc::word`]): the claim, or the word freed again if the
    /// attempt claimed nothing.
    #[inline(always)]
    pub(super) fn claimed(&self, attempt: Result<u64, Stop>, word: Option<&AtomicU64>) -> Result<Claim, Stop> {
        match attempt {
            Ok(pos) => {
                let word = word.zip(self.claims.as_ref()).map_or(NO_WORD, |(w, c)| c.index_of(w));
                Ok(Claim { pos, word })
            }
            Err(e) => {
                if let Some(w) = word {
                    w.store(0, Ordering::Relaxed);
                }
                Err(e)
            }
        }
    }

    /// The claim word to announce in, taken on first use: an attempt that
    /// finds the ring full (or empty) never touches one.
    #[inline(always)]
    pub(super) fn word<'a>(&'a self, word: &mut Option<&'a AtomicU64>) -> Option<&'a AtomicU64> {
        if word.is_none() {
            *word = self.claims.as_ref().map(Claims::acquire);
        }
        *word
    }

    /// Claims position `pos` of `side` (the caller has announced it in
    /// `word`): a CAS `pos → pos + 1`, or a plain store by the side's bias
    /// owner. On failure, the position to try next.
    #[inline(always)]
    pub(super) fn claim_pos(&self, side: &Side, word: Option<&AtomicU64>, pos: u64, send: bool) -> Result<(), Miss> {
        let cas = || {
            // Release: the announcement is visible to whoever sees this
            // claim (see "Claims and death").
            side.pos
                .compare_exchange_weak(pos, pos + 1, Ordering::Release, Ordering::Relaxed)
                .map(|_| ())
                .map_err(Miss::At)
        };
        let (Some(c), Some(w), true) = (&self.claims, word, self.biased) else { return cas() };
        // B1: the announcement before the look at the bias; pairs with the
        // heavy barrier of whoever takes or revokes it.
        #[cfg(not(procring_bug = "bias_no_claim_fence"))]
        self.barrier.light();
        // B2 Acquire: pairs with the Release store that ends a revocation,
        // so the revoked owner's last store of `pos` is visible here.
        let bias = Bias::from_bits(side.bias.load(Ordering::Acquire));
        let me = c.owner_id();
        if Some(bias) == me {
            // The owner: nobody else writes `pos` while this lasts.
            // Release: as the CAS below.
            side.pos.store(pos + 1, Ordering::Release);
            return Ok(());
        }
        if bias != Bias::FREE && bias != Bias::SHARED {
            // Withdraw the announcement: a revoker waits for the owner's row
            // to have no claim under way, and this may be that row.
            w.store(ClaimWord::TAKEN.bits(), Ordering::Relaxed);
            if !self.unbias(c, side, bias, send) {
                return Err(Miss::Busy);
            }
            return Err(Miss::At(side.pos.load(Ordering::Relaxed)));
        }
        cas()?;
        if let (Bias::FREE, Some(me)) = (bias, me) {
            if uncontended_run(self.ctl.as_ptr() as usize, pos, send) {
                self.take_bias(c, side, me, send);
            }
        }
        Ok(())
    }

    /// This process's claim words that announce an unfinished claim, or
    /// are taken, or held by a guard (for the models' checks).
    #[cfg(loom)]
    pub(crate) fn claims_in_use(&self) -> usize {
        let c = self.claims.as_ref().expect("a model queue records claims");
        let held = c.held.iter().filter(|h| h.load(Ordering::Relaxed) != 0).count();
        self.unfinished_claims(c.mine()).len() + held
    }
}
