//! A seqlock over two copies of the data: shared state larger than an
//! atomic (`Value<T>` of a large `T`, `Array<T>`), read without a lock, never
//! torn, and never left torn by a writer that dies half-way.
//!
//! # Protocol
//!
//! A sequence word `seq` and two copies of the data, each a run of `u64`
//! words that are always accessed atomically (so a racing read is a retry,
//! never undefined behaviour). Readers use copy `seq & 1`; a writer only
//! ever changes the *other* copy. Writers are serialised by the caller (the
//! object's [`RobustMutex`](crate::lock::mutex::RobustMutex)).
//!
//! ```text
//!  writer (holds the writer lock), s = seq    reader
//!  W1 seq = s + 1 (Release)                    R1 s1 = seq (Acquire)
//!  W2 fence(Release)                           R2 copy copy[s1 & 1] (Relaxed)
//!  W3 change copy[s & 1] (Relaxed)             R3 fence(Acquire)
//!  W4 seq = s + 2 (Release)                    R4 s2 = seq (Relaxed); s1 != s2: retry
//!  W5 fence(Release)
//!  W6 change copy[(s + 1) & 1] (Relaxed)
//! ```
//!
//! This is the "latch" form of a seqlock (Linux's `seqcount_latch`), with
//! one change: a writer does not assume `seq` is even, it only assumes that
//! the copy readers use, `seq & 1`, is whole.
//!
//! **Invariant:** the copy `seq & 1` is always whole — every word holds the
//! value of one completed change — and a writer only changes a copy after
//! moving `seq` away from it. So:
//! - *A read is never torn.* If a word R2 loaded came from a change W3 or
//!   W6, then R3 synchronises with the fence before it (W2 or W5), so R4
//!   sees the store that moved `seq` away from that copy (or a later one),
//!   `s2 != s1`, and the read is retried. Otherwise every word came from
//!   changes that completed before the store of `s1` (W1 or W4, Release,
//!   read by R1, Acquire), so the copy is whole.
//! - *A writer that dies anywhere leaves a whole copy for readers*: it was
//!   only ever changing the other one. Readers carry on, never blocked.
//!   The next writer, taking the lock over, calls [`SeqLock::repair`] to
//!   make the other copy equal to the readers' one again, since W3/W6
//!   change copies in place and so need the two equal at the start.
//!
//! Writers never make readers wait: a reader retries only if a write
//! completed a phase while it copied. (Boehm, "Can seqlocks get along with
//! programming language memory models?", MSPC 2012, for the fences.)

use crate::sync::{fence, AtomicU64, Ordering};

/// The sequence word of a two-copy seqlock, `#[repr(C)]` for shared memory.
#[repr(C)]
#[derive(Debug, Default)]
pub struct SeqLock {
    /// Readers use copy `seq & 1`. Grows by 2 per write.
    seq: AtomicU64,
}

/// Where a [`SeqLock::write_partly`] writer stops (loom models of a writer
/// that dies).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Death {
    /// Runs to the end.
    Never,
    /// After changing this many words of the first copy.
    InFirstCopy(usize),
    /// After changing this many words of the second copy.
    InSecondCopy(usize),
}

impl SeqLock {
    /// A seqlock whose readers use copy 0; both copies must be equal.
    pub fn new() -> Self {
        Self { seq: AtomicU64::new(0) }
    }

    /// Calls `copy` on the copy readers may use (the first half of `data` or
    /// the second), again and again until one call ran while no writer
    /// touched that copy; returns that call's result.
    pub fn read<R>(&self, data: &[AtomicU64], mut copy: impl FnMut(&[AtomicU64]) -> R) -> R {
        loop {
            // R1. Acquire: pairs with W1/W4 (Release); the copy it selects
            // was whole before that store.
            let s1 = self.seq.load(Ordering::Acquire);
            let r = copy(half(data, s1)); // R2
                                          // R3. Acquire fence: pairs with W2/W5. A word from a change in
                                          // progress makes R4 see the store that started it.
            fence(Ordering::Acquire);
            #[cfg(not(procring_bug = "seqlock_no_recheck"))]
            {
                // R4.
                if self.seq.load(Ordering::Relaxed) == s1 {
                    return r;
                }
            }
            #[cfg(procring_bug = "seqlock_no_recheck")]
            return r;
        }
    }

    /// Applies `change` to both copies of `data`, the one readers are not
    /// using first. The caller holds the writer lock; `change` must make the
    /// same change to whichever copy it is handed, and only write through
    /// atomic stores.
    pub fn write(&self, data: &[AtomicU64], change: impl FnMut(&[AtomicU64])) {
        self.write_partly(data, change, Death::Never);
    }

    /// [`SeqLock::write`] that stops where `death` says, as a writer that
    /// dies there would (for loom models).
    #[doc(hidden)]
    pub fn write_partly(&self, data: &[AtomicU64], mut change: impl FnMut(&[AtomicU64]), death: Death) {
        // Relaxed: only writers store `seq`, and the writer lock orders them.
        let s = self.seq.load(Ordering::Relaxed);
        for (phase, seq) in [(0, s + 1), (1, s + 2)] {
            // W1/W4. Release: pairs with R1; the copy readers move to (the
            // one changed in the phase before) is whole for them.
            self.seq.store(seq, Ordering::Release);
            // W2/W5. Release fence: orders the store above before the
            // changes below, for R3 to pair with.
            fence(Ordering::Release);
            let target = half(data, seq + 1); // the copy readers left
            let stop = match (phase, death) {
                (0, Death::InFirstCopy(n)) | (1, Death::InSecondCopy(n)) => n,
                _ => usize::MAX,
            };
            if stop == usize::MAX {
                change(target); // W3/W6
            } else {
                // Dies part-way: the change reaches only the first words.
                change(&target[..stop.min(target.len())]);
                return;
            }
        }
    }

    /// After a writer died holding the writer lock: copies the copy readers
    /// use onto the other, so the two are equal again. The caller holds the
    /// writer lock.
    pub fn repair(&self, data: &[AtomicU64]) {
        // Acquire: the dead writer released nothing to us through the lock;
        // this pairs with its last W1/W4, so the readers' copy is whole here.
        let s = self.seq.load(Ordering::Acquire);
        // Release fence: as W2; a reader still on the other copy (from
        // before the dead writer's last move) re-checks and retries.
        fence(Ordering::Release);
        for (to, from) in half(data, s + 1).iter().zip(half(data, s)) {
            to.store(from.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }
}

/// Copy `seq & 1` of `data` (two equal halves).
fn half(data: &[AtomicU64], seq: u64) -> &[AtomicU64] {
    let n = data.len() / 2;
    if seq & 1 == 0 {
        &data[..n]
    } else {
        &data[n..]
    }
}

/// Loads `out.len()` bytes starting at byte `start` of `words` (native
/// byte order, as the bytes of a `T` are laid out in memory).
pub(crate) fn load_bytes(words: &[AtomicU64], start: usize, out: &mut [u8]) {
    let mut done = 0;
    while done < out.len() {
        let pos = start + done;
        let (w, off) = (pos / 8, pos % 8);
        let n = (8 - off).min(out.len() - done);
        let bytes = words[w].load(Ordering::Relaxed).to_ne_bytes();
        out[done..done + n].copy_from_slice(&bytes[off..off + n]);
        done += n;
    }
}

/// Stores `src` at byte `start` of `words`. A word only partly covered is
/// read, merged and written back, so the caller must be the only writer.
pub(crate) fn store_bytes(words: &[AtomicU64], start: usize, src: &[u8]) {
    let mut done = 0;
    while done < src.len() {
        let pos = start + done;
        let (w, off) = (pos / 8, pos % 8);
        let n = (8 - off).min(src.len() - done);
        let mut bytes = if n == 8 { [0; 8] } else { words[w].load(Ordering::Relaxed).to_ne_bytes() };
        bytes[off..off + n].copy_from_slice(&src[done..done + n]);
        words[w].store(u64::from_ne_bytes(bytes), Ordering::Relaxed);
        done += n;
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn reads_see_whole_writes_from_another_thread() {
        let lock = Arc::new(SeqLock::new());
        let data: Arc<Vec<AtomicU64>> = Arc::new((0..128).map(|_| AtomicU64::new(0)).collect());
        let (l2, d2) = (lock.clone(), data.clone());
        let writer = std::thread::spawn(move || {
            for k in 1..=20_000u64 {
                l2.write(&d2, |copy| copy.iter().for_each(|w| w.store(k, Ordering::Relaxed)));
            }
        });
        let mut out = [0u64; 64];
        let mut last = 0;
        let read = |out: &mut [u64; 64]| {
            lock.read(&data, |copy| out.iter_mut().zip(copy).for_each(|(o, w)| *o = w.load(Ordering::Relaxed)))
        };
        for _ in 0..200_000 {
            read(&mut out);
            assert!(out.iter().all(|&w| w == out[0]), "torn read: {:?}", &out[..4]);
            assert!(out[0] >= last, "reads go back in time");
            last = out[0];
        }
        writer.join().unwrap();
        read(&mut out);
        assert_eq!(out, [20_000; 64]);
    }

    #[test]
    fn a_writer_dying_anywhere_leaves_readers_a_whole_copy_and_repair_restores_both() {
        for death in [Death::InFirstCopy(0), Death::InFirstCopy(3), Death::InSecondCopy(0), Death::InSecondCopy(3)] {
            let lock = SeqLock::new();
            let data: Vec<AtomicU64> = (0..16).map(|_| AtomicU64::new(1)).collect();
            lock.write_partly(&data, |copy| copy.iter().for_each(|w| w.store(2, Ordering::Relaxed)), death);
            let seen = lock.read(&data, |copy| copy.iter().map(|w| w.load(Ordering::Relaxed)).collect::<Vec<_>>());
            let want = if matches!(death, Death::InFirstCopy(_)) { 1 } else { 2 };
            assert_eq!(seen, vec![want; 8], "{death:?}");
            lock.repair(&data);
            assert!(data.iter().all(|w| w.load(Ordering::Relaxed) == want), "{death:?}");
        }
    }

    #[test]
    fn bytes_round_trip_at_any_offset() {
        let words: Vec<AtomicU64> = (0..4).map(|_| AtomicU64::new(u64::MAX)).collect();
        let src: Vec<u8> = (1..=13).collect();
        store_bytes(&words, 5, &src);
        let mut out = [0u8; 13];
        load_bytes(&words, 5, &mut out);
        assert_eq!(out.as_slice(), src.as_slice());
        let mut around = [0u8; 32];
        load_bytes(&words, 0, &mut around);
        assert_eq!(&around[..5], &[0xff; 5], "bytes before the range are kept");
        assert_eq!(&around[18..], &[0xff; 14], "bytes after the range are kept");
    }
}
