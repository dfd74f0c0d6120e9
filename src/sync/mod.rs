//! The one facade for atomics, racy cells, the futex and the memory barriers.
//!
//! Normally these are `core`'s atomics, a transparent `UnsafeCell`, the Linux
//! futex (the *shared* kind, keyed by physical page so that two processes
//! mapping one segment meet on the same word) and `membarrier(2)`. Under
//! `cfg(loom)` they are loom's atomics and cells, and a futex model built on a
//! loom `Mutex` + `Condvar` per word, so that a waiter really sleeps and a lost
//! wakeup is reported by loom as a deadlock.
//!
//! No other file in the crate names `core::sync::atomic` or
//! `core::cell::UnsafeCell` (`.ci/run` checks it).

#[cfg(not(loom))]
pub(crate) mod thread_tag;
pub(crate) mod wait;

use std::time::Duration;

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::Mutex;
/// A lock for process-local bookkeeping (loom's under `cfg(loom)`, so that
/// the models see it).
#[cfg(not(loom))]
pub(crate) use std::sync::Mutex;

/// One step of a busy wait.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(not(loom))]
    core::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Asks the CPU to start fetching the cache line at `ptr` for reading.
///
/// A hint, not a memory access: it reads nothing the program can observe, so
/// it is not a data race even while another process writes that line. A
/// consumer waiting on an empty ring prefetches the next slot, so that the
/// slot's line travels alongside the position's line instead of after it.
#[inline(always)]
pub(crate) fn prefetch<T>(ptr: *const T) {
    #[cfg(all(not(loom), target_arch = "x86_64"))]
    // SAFETY: PREFETCHT0 never faults, whatever the address; SSE is part of
    // the x86_64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(ptr.cast::<i8>());
    }
    #[cfg(any(loom, not(target_arch = "x86_64")))]
    let _ = ptr;
}

// ---------------------------------------------------------------------------
// UnsafeCell with loom's tracked-pointer API
// ---------------------------------------------------------------------------

/// A racy cell. In production it is `#[repr(transparent)]` over
/// `core::cell::UnsafeCell`, so a slot region in a segment can be viewed as a
/// slice of these. Access goes through `get`/`get_mut`, whose returned
/// pointers loom tracks for as long as they live (a zero-copy guard holds one).
#[cfg(not(loom))]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    #[inline]
    pub(crate) fn get(&self) -> ConstPtr<T> {
        ConstPtr(self.0.get())
    }

    #[inline]
    pub(crate) fn get_mut(&self) -> MutPtr<T> {
        MutPtr(self.0.get())
    }
}

/// A shared access to an [`UnsafeCell`]'s contents (loom tracks its lifetime).
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct ConstPtr<T>(*const T);

#[cfg(not(loom))]
impl<T> ConstPtr<T> {
    /// # Safety
    /// No `MutPtr` to the same cell may be dereferenced while the result lives.
    #[inline]
    pub(crate) unsafe fn deref(&self) -> &T {
        // SAFETY: the pointer comes from a live UnsafeCell; exclusion is the
        // caller's obligation, stated above.
        unsafe { &*self.0 }
    }
}

/// An exclusive access to an [`UnsafeCell`]'s contents (loom tracks its lifetime).
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct MutPtr<T>(*mut T);

#[cfg(not(loom))]
impl<T> MutPtr<T> {
    /// # Safety
    /// No other pointer to the same cell may be dereferenced while the result lives.
    #[allow(clippy::mut_from_ref)]
    #[inline]
    pub(crate) unsafe fn deref(&self) -> &mut T {
        // SAFETY: the pointer comes from a live UnsafeCell; exclusion is the
        // caller's obligation, stated above.
        unsafe { &mut *self.0 }
    }
}

#[cfg(loom)]
pub(crate) use loom::cell::{ConstPtr, MutPtr, UnsafeCell};

// ---------------------------------------------------------------------------
// Futex
// ---------------------------------------------------------------------------

/// Sleeps while `*word == expected`, for at most `timeout` (a relative time on
/// the monotonic clock; `None` = no limit).
///
/// Returns on a wake, on a timeout, when the word no longer holds `expected`
/// (`EAGAIN`), on a signal (`EINTR`) or spuriously: callers always re-check
/// their condition and loop. Errors are never reported because every one of
/// them means "go and look again".
#[cfg(not(loom))]
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    use rustix::thread::futex;
    let ts = timeout.map(|t| futex::Timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(t.subsec_nanos()),
    });
    // Flags::empty(): the shared futex (no FUTEX_PRIVATE_FLAG), so the kernel
    // keys it on the page behind the address, not on this address space.
    // FUTEX_WAIT's timeout is relative and measured on CLOCK_MONOTONIC.
    let _ = futex::wait(word, futex::Flags::empty(), expected, ts.as_ref());
}

/// Wakes every process and thread sleeping on `word`.
#[cfg(not(loom))]
pub(crate) fn futex_wake_all(word: &AtomicU32) {
    futex_wake(word, i32::MAX as u32);
}

/// Wakes at most one process or thread sleeping on `word`.
#[cfg(not(loom))]
pub(crate) fn futex_wake_one(word: &AtomicU32) {
    futex_wake(word, 1);
}

#[cfg(not(loom))]
fn futex_wake(word: &AtomicU32, n: u32) {
    use rustix::thread::futex;
    // Cannot fail for a valid, aligned address in a shared mapping.
    let _ = futex::wake(word, futex::Flags::empty(), n);
}

#[cfg(loom)]
mod futex_model {
    //! A futex for loom: one `Mutex` for the whole table, one `Condvar` per
    //! word (keyed by address), created afresh in every loom execution.
    //!
    //! `wait` compares the word and goes to sleep under the table's lock, and
    //! `wake` takes that lock before notifying: the compare-and-sleep is atomic
    //! with respect to a wake, as the kernel's is. A waiter is woken only by a
    //! wake on its own word, so a missing wake is a deadlock loom reports.
    use super::*;
    use loom::sync::{Arc, Condvar, Mutex};
    use std::collections::HashMap;

    loom::lazy_static! {
        static ref TABLE: Mutex<HashMap<usize, Arc<Condvar>>> = Mutex::new(HashMap::new());
    }

    pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
        // loom cannot model time. A timed wait may time out at any moment, so
        // here it times out at once: a caller that waits with a timeout must
        // make progress by looking again (as a waiter checking a holder's
        // liveness does), never by being woken.
        if timeout.is_some() {
            loom::thread::yield_now();
            return;
        }
        let mut table = TABLE.lock().unwrap();
        if word.load(Ordering::Relaxed) != expected {
            return; // EAGAIN
        }
        let cv = table.entry(word as *const AtomicU32 as usize).or_insert_with(|| Arc::new(Condvar::new())).clone();
        table = cv.wait(table).unwrap();
        drop(table);
    }

    pub(crate) fn futex_wake_all(word: &AtomicU32) {
        let table = TABLE.lock().unwrap();
        if let Some(cv) = table.get(&(word as *const AtomicU32 as usize)) {
            cv.notify_all();
        }
    }

    pub(crate) fn futex_wake_one(word: &AtomicU32) {
        let table = TABLE.lock().unwrap();
        if let Some(cv) = table.get(&(word as *const AtomicU32 as usize)) {
            cv.notify_one();
        }
    }
}

#[cfg(loom)]
pub(crate) use futex_model::{futex_wait, futex_wake_all, futex_wake_one};

// ---------------------------------------------------------------------------
// A native atomic of a Pod type
// ---------------------------------------------------------------------------

/// Whether `T` fits a native (lock-free) atomic, so that a shared value of
/// `T` can live in one atomic word instead of behind a seqlock.
///
/// This asks the `atomic` crate's `Atomic::<T>::is_lock_free()`, and only a
/// `true` answer is ever used: for other types that crate falls back to a
/// spinlock in a process-local table, which would protect nothing between
/// processes. (procring builds it without that fallback, so such a call
/// could not even compile into a silent lock; it would panic.)
pub(crate) const fn native_atomic<T>() -> bool {
    #[cfg(not(loom))]
    {
        atomic::Atomic::<T>::is_lock_free()
    }
    #[cfg(loom)]
    {
        // The same rule as the crate's, for the model below.
        let (size, align) = (core::mem::size_of::<T>(), core::mem::align_of::<T>());
        matches!(size, 1 | 2 | 4 | 8) && align >= size
    }
}

/// A `T` for which [`native_atomic`] holds, in the first bytes of an 8-byte
/// aligned `AtomicU64` word.
///
/// Normally the `atomic` crate's `Atomic<T>` over the word's address; under
/// loom, the word itself holding `T`'s bytes zero-extended (the same
/// byte-wise comparison the crate's `compare_exchange` makes).
#[derive(Clone, Copy)]
pub(crate) struct Native<'a, T> {
    #[cfg(not(loom))]
    cell: &'a atomic::Atomic<T>,
    #[cfg(loom)]
    word: &'a AtomicU64,
    #[cfg(loom)]
    _t: core::marker::PhantomData<T>,
}

impl<'a, T: bytemuck::Pod> Native<'a, T> {
    /// # Safety
    /// `native_atomic::<T>()` holds, and every access to the word's first
    /// `size_of::<T>()` bytes goes through a `Native<T>` (or is a load of
    /// the whole word, after which the other bytes are ignored).
    pub(crate) unsafe fn new(word: &'a AtomicU64) -> Self {
        debug_assert!(native_atomic::<T>());
        #[cfg(not(loom))]
        {
            // SAFETY: `Atomic<T>` is `repr(transparent)` over `T`; `T` is at
            // most 8 bytes and the word is 8-byte aligned, so the cast is in
            // bounds and aligned; the caller keeps every access atomic.
            Self { cell: unsafe { &*(word as *const AtomicU64).cast::<atomic::Atomic<T>>() } }
        }
        #[cfg(loom)]
        Self { word, _t: core::marker::PhantomData }
    }

    #[inline]
    pub(crate) fn load(self, order: Ordering) -> T {
        #[cfg(not(loom))]
        return self.cell.load(order);
        #[cfg(loom)]
        from_word(self.word.load(order))
    }

    #[inline]
    pub(crate) fn store(self, value: T, order: Ordering) {
        #[cfg(not(loom))]
        self.cell.store(value, order);
        #[cfg(loom)]
        self.word.store(to_word(value), order);
    }

    #[inline]
    pub(crate) fn swap(self, value: T, order: Ordering) -> T {
        #[cfg(not(loom))]
        return self.cell.swap(value, order);
        #[cfg(loom)]
        from_word(self.word.swap(to_word(value), order))
    }

    #[inline]
    pub(crate) fn compare_exchange_weak(
        self,
        current: T,
        new: T,
        success: Ordering,
        failure: Ordering,
    ) -> Result<T, T> {
        #[cfg(not(loom))]
        return self.cell.compare_exchange_weak(current, new, success, failure);
        #[cfg(loom)]
        self.word
            .compare_exchange_weak(to_word(current), to_word(new), success, failure)
            .map(from_word)
            .map_err(from_word)
    }

    #[inline]
    pub(crate) fn compare_exchange(self, current: T, new: T, success: Ordering, failure: Ordering) -> Result<T, T> {
        #[cfg(not(loom))]
        return self.cell.compare_exchange(current, new, success, failure);
        #[cfg(loom)]
        self.word.compare_exchange(to_word(current), to_word(new), success, failure).map(from_word).map_err(from_word)
    }
}

#[cfg(loom)]
fn to_word<T: bytemuck::Pod>(value: T) -> u64 {
    let mut bytes = [0u8; 8];
    bytes[..core::mem::size_of::<T>()].copy_from_slice(bytemuck::bytes_of(&value));
    u64::from_ne_bytes(bytes)
}

#[cfg(loom)]
fn from_word<T: bytemuck::Pod>(word: u64) -> T {
    bytemuck::pod_read_unaligned(&word.to_ne_bytes()[..core::mem::size_of::<T>()])
}

// ---------------------------------------------------------------------------
// Store-load barriers for the eventcount's Dekker pattern
// ---------------------------------------------------------------------------

/// How the two sides of a Dekker pattern get their store-load barrier.
///
/// `Symmetric`: a `fence(SeqCst)` on both sides.
///
/// `Asymmetric`: the frequent side (a producer publishing) pays only a compiler
/// fence; the rare side (a consumer about to sleep) calls
/// `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`, which runs a full barrier on
/// every CPU currently running a thread of a registered process (a thread not
/// running has passed one at its context switch). Every process attached to a
/// segment registers (see [`register_asymmetric`]) before it touches the ring.
///
/// **Why the two are equivalent** for the eventcount's Dekker pair (a
/// store N1 then a load N3 on the frequent side; a store W1, the barrier,
/// then a load W4 on the rare side): take the frequent thread at the moment
/// M of the barrier `membarrier` forced on it. If N1 came before M, N1 is
/// globally visible when `membarrier` returns, and W4 sees it. If N1 came
/// after M, then N3, which the compiler fence keeps after N1, came after M
/// too, and W1, made before the call, is visible to it. Either W4 sees N1
/// or N3 sees W1: what two `SeqCst` fences give. An opener that cannot
/// register refuses an asymmetric segment; a creator that cannot records
/// the symmetric mode.
///
/// Under loom both forms are `fence(SeqCst)`: loom cannot model membarrier,
/// and the symmetric form is what the argument above reduces to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Barrier {
    Symmetric,
    Asymmetric,
}

impl Barrier {
    /// The frequent side's barrier: orders an earlier store before a later load.
    #[inline(always)]
    pub(crate) fn light(self) {
        #[cfg(not(loom))]
        match self {
            Barrier::Symmetric => fence(Ordering::SeqCst),
            // The compiler must not move the load above the store; the CPU
            // may, until the heavy side's membarrier forces a full barrier.
            Barrier::Asymmetric => core::sync::atomic::compiler_fence(Ordering::SeqCst),
        }
        #[cfg(loom)]
        {
            let _ = self;
            fence(Ordering::SeqCst);
        }
    }

    /// The rare side's barrier: a full barrier here *and* on every CPU
    /// running a thread of a registered process.
    #[inline]
    pub(crate) fn heavy(self) {
        #[cfg(not(loom))]
        match self {
            Barrier::Symmetric => fence(Ordering::SeqCst),
            Barrier::Asymmetric => {
                use rustix::thread::{membarrier, MembarrierCommand};
                // Registered at attach (register_asymmetric); if the kernel
                // refuses now, a plain fence still orders our side and the
                // protocol falls back to the bounded sleep slice.
                if membarrier(MembarrierCommand::GlobalExpedited).is_err() {
                    fence(Ordering::SeqCst);
                }
            }
        }
        #[cfg(loom)]
        {
            let _ = self;
            fence(Ordering::SeqCst);
        }
    }

    /// The rare side's barrier where a fallback is not enough: a fence
    /// orders only this side, and the biased claims (`ring::mpmc`) rely on
    /// the other side's barrier too. Retries the `membarrier` call until
    /// the kernel takes it (it was registered at attach, so it fails only
    /// transiently, if ever).
    pub(crate) fn heavy_without_fallback(self) {
        #[cfg(not(loom))]
        if self == Barrier::Asymmetric {
            use rustix::thread::{membarrier, MembarrierCommand};
            while membarrier(MembarrierCommand::GlobalExpedited).is_err() {
                std::thread::yield_now();
            }
            return;
        }
        fence(Ordering::SeqCst);
    }
}

/// Registers this process for `MEMBARRIER_CMD_GLOBAL_EXPEDITED`, once.
/// Returns whether the asymmetric barrier is usable in this process.
#[cfg(not(loom))]
pub(crate) fn register_asymmetric() -> bool {
    use rustix::thread::{membarrier, membarrier_query, MembarrierCommand, MembarrierQuery};
    use std::sync::OnceLock;
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        let q = membarrier_query();
        q.contains(MembarrierQuery::GLOBAL_EXPEDITED | MembarrierQuery::REGISTER_GLOBAL_EXPEDITED)
            && membarrier(MembarrierCommand::RegisterGlobalExpedited).is_ok()
    })
}
