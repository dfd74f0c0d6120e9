//! A seqlock over words it is handed: shared state larger than an atomic
//! (issue 5's `Value`/`Array` will sit on it), read without a lock and never
//! torn.
//!
//! # Protocol
//!
//! One sequence word `seq`: even when the data is stable, odd while a writer
//! writes. The data is a run of `u64` words, always accessed atomically, so a
//! racing read is a retry and never undefined behaviour.
//!
//! ```text
//!  writer                                   reader
//!  W1 CAS seq: s (even) → s + 1            R1 s1 = seq (Acquire); odd: retry
//!  W2 fence(Release)                       R2 copy the words (Relaxed)
//!  W3 store the words (Relaxed)            R3 fence(Acquire)
//!  W4 seq = s + 2 (Release)                R4 s2 = seq (Relaxed); s1 != s2: retry
//! ```
//!
//! **Invariant:** a read returns the words of exactly one completed write (or
//! the initial words). If any word R2 loaded came from a write's W3, then R3
//! (after R2) synchronises with W2 (before W3), so R4 sees W1's odd value or
//! later. So s2 differs from s1, which was even, and the read is retried. If
//! every word came from writes whose W4 R1 already saw, they are that
//! completed write's words. Writers exclude each other through W1's CAS; a
//! writer that finds `seq` odd waits.
//!
//! This follows Boehm, "Can seqlocks get along with programming language
//! memory models?" (MSPC 2012), with a CAS in W1 so that several writers can
//! share the lock.
//!
//! **Not handled here (issue 5):** a writer that dies between W1 and W4 leaves
//! `seq` odd, and readers would retry for ever. Such a holder has to be
//! detected (its process id) and the lock recovered.

use crate::sync::{fence, spin_hint, AtomicU64, Ordering};

/// The sequence word of a seqlock, `#[repr(C)]` for shared memory.
#[repr(C)]
#[derive(Debug, Default)]
pub struct SeqLock {
    /// Even: stable; odd: a write is under way. Grows by 2 per write.
    seq: AtomicU64,
}

impl SeqLock {
    /// A seqlock whose data is stable.
    pub fn new() -> Self {
        Self { seq: AtomicU64::new(0) }
    }

    /// Copies the data words into `out`, retrying until the copy is not torn.
    pub fn read(&self, words: &[AtomicU64], out: &mut [u64]) {
        debug_assert_eq!(words.len(), out.len());
        loop {
            // R1. Acquire: pairs with W4's Release; a completed write's words
            // are visible to the copy.
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                spin_hint();
                continue;
            }
            // R2. Relaxed: any value is acceptable here; R3/R4 decide
            // whether to keep it.
            for (o, w) in out.iter_mut().zip(words) {
                *o = w.load(Ordering::Relaxed);
            }
            // R3. Acquire fence: pairs with W2. A word from a write in
            // progress makes R4 see that write's odd sequence (or later).
            fence(Ordering::Acquire);
            #[cfg(not(procring_bug = "seqlock_no_recheck"))]
            {
                // R4.
                if self.seq.load(Ordering::Relaxed) == s1 {
                    return;
                }
            }
            #[cfg(procring_bug = "seqlock_no_recheck")]
            return;
        }
    }

    /// Replaces the data words with `src`, excluding other writers.
    pub fn write(&self, words: &[AtomicU64], src: &[u64]) {
        debug_assert_eq!(words.len(), src.len());
        let s = self.lock();
        // W3. Relaxed: ordered after W1 by W2, and before W4 by its Release.
        for (w, v) in words.iter().zip(src) {
            w.store(*v, Ordering::Relaxed);
        }
        self.unlock(s);
    }

    /// W1 + W2: takes the writer's side; returns the (even) sequence taken.
    fn lock(&self) -> u64 {
        loop {
            let s = self.seq.load(Ordering::Relaxed);
            // Acquire on success: the previous writer's words (before its
            // W4 Release) happen before ours, so writes are totally ordered.
            if s & 1 == 0 && self.seq.compare_exchange_weak(s, s + 1, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                // W2. Release fence: the odd sequence is ordered before the
                // word stores, for readers' R3 to pair with.
                fence(Ordering::Release);
                return s;
            }
            spin_hint();
        }
    }

    /// W4: publishes the write.
    fn unlock(&self, s: u64) {
        // Release: pairs with R1's Acquire; the words are visible to a reader
        // that sees the new even sequence.
        self.seq.store(s + 2, Ordering::Release);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn reads_see_whole_writes_from_another_thread() {
        let lock = std::sync::Arc::new(SeqLock::new());
        let words: std::sync::Arc<Vec<AtomicU64>> = std::sync::Arc::new((0..64).map(|_| AtomicU64::new(0)).collect());
        let (l2, w2) = (lock.clone(), words.clone());
        let writer = std::thread::spawn(move || {
            for k in 1..=20_000u64 {
                l2.write(&w2, &[k; 64]);
            }
        });
        let mut out = [0u64; 64];
        let mut last = 0;
        for _ in 0..200_000 {
            lock.read(&words, &mut out);
            assert!(out.iter().all(|&w| w == out[0]), "torn read: {:?}", &out[..4]);
            assert!(out[0] >= last, "reads go back in time");
            last = out[0];
        }
        writer.join().unwrap();
        lock.read(&words, &mut out);
        assert_eq!(out, [20_000; 64]);
    }
}
