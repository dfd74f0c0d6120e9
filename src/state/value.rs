//! `Value<T>`: Python's `multiprocessing.Value`, for `Pod` values, across
//! processes.
//!
//! Two ways in:
//! - the lock-free operations — [`load`](Value::load), [`store`](Value::store),
//!   [`swap`](Value::swap), [`compare_exchange`](Value::compare_exchange),
//!   [`fetch_update`](Value::fetch_update) and [`update`](Value::update) —
//!   each atomic;
//! - [`lock`](Value::lock), Python's `get_lock()`: a guard through which one
//!   holder at a time reads and changes the value, for changes that span
//!   several steps. The lock is a mutex in the segment that names its
//!   holder's process, so a holder that dies is reported to the next one
//!   instead of hanging it.
//!
//! How the lock-free operations are made depends on `T`:
//! - **a `T` that fits a native atomic** ([`Value::is_lock_free`]: 1, 2, 4 or
//!   8 bytes, aligned to its size) lives in one atomic word, and every
//!   operation is a single atomic instruction (a CAS loop for `fetch_update`).
//!   These writes do not wait for a [`lock`](Value::lock) holder: on such a
//!   value, do a read-modify-write either with `update`/`compare_exchange` or
//!   under `lock()`, not both at once.
//! - **any other `T`** sits behind a two-copy seqlock ([`crate::lock::seqlock`]):
//!   `load` never waits and never sees a torn value; the writes take the lock
//!   for the few nanoseconds they copy, so they are atomic with respect to
//!   each other and to `lock()` holders.
//!
//! Either way a holder's changes are published all at once when its guard
//! drops, so a reader, and a holder that takes over from a dead one, only
//! ever sees values that were published whole. A panic while holding the
//! guard discards the holder's changes.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use bytemuck::Pod;

use crate::error::{OwnerDied, TryLockError};
use crate::state::cells::{locked, try_locked, Cells};
use crate::sync::wait::Deadline;
use crate::sync::{native_atomic, Native, Ordering};

/// A shared value of `T`, in a named segment or in this process.
///
/// ```
/// use procring::Value;
///
/// let hits = Value::<u64>::new(0); // in-process; `create`/`open` for a named one
/// let h2 = hits.clone();
/// std::thread::spawn(move || h2.update(|n| n + 1)).join().unwrap();
/// *hits.lock().unwrap() += 10;
/// assert_eq!(hits.load(), 11);
/// ```
pub struct Value<T> {
    cells: Arc<Cells>,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Value<T> {
    fn clone(&self) -> Self {
        Self { cells: self.cells.clone(), _t: PhantomData }
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Value").field(&self.load()).finish()
    }
}

impl<T: Pod> Value<T> {
    const NATIVE: bool = native_atomic::<T>();

    /// A value shared between the threads of this process.
    pub fn new(initial: T) -> Self {
        Self::with(Cells::heap(1, size_of::<T>(), !Self::NATIVE, bytemuck::bytes_of(&initial)))
    }

    fn with(cells: Cells) -> Self {
        Self { cells: Arc::new(cells), _t: PhantomData }
    }

    /// Whether the lock-free operations are single atomic instructions on
    /// this `T` (otherwise they go through the seqlock, see the module docs).
    pub const fn is_lock_free() -> bool {
        Self::NATIVE
    }

    fn native(&self) -> Native<'_, T> {
        // SAFETY: only called when NATIVE; word 0 holds the value and is
        // only ever accessed through `Native<T>`.
        unsafe { Native::new(self.cells.word0()) }
    }

    /// The current value. Never waits for a writer or a lock holder.
    pub fn load(&self) -> T {
        if Self::NATIVE {
            // Acquire: pairs with the Release of the store that wrote it, so
            // what the writer did before is visible (a flag can guard data).
            self.native().load(Ordering::Acquire)
        } else {
            let mut v = T::zeroed();
            self.cells.read(0, bytemuck::bytes_of_mut(&mut v));
            v
        }
    }

    /// Replaces the value.
    pub fn store(&self, value: T) {
        if Self::NATIVE {
            // Release: pairs with `load`'s Acquire.
            self.native().store(value, Ordering::Release);
        } else {
            *self.lock_quiet() = value;
        }
    }

    /// Replaces the value, returning the one it replaced.
    pub fn swap(&self, value: T) -> T {
        if Self::NATIVE {
            // AcqRel: a load and a store, ordered as `load` and `store` are.
            self.native().swap(value, Ordering::AcqRel)
        } else {
            std::mem::replace(&mut *self.lock_quiet(), value)
        }
    }

    /// Stores `new` if the value is `current` (compared byte for byte).
    /// Returns the previous value: `Ok` if it was replaced, `Err` if not.
    pub fn compare_exchange(&self, current: T, new: T) -> Result<T, T> {
        if Self::NATIVE {
            self.native().compare_exchange(current, new, Ordering::AcqRel, Ordering::Acquire)
        } else {
            self.fetch_update(|v| (bytemuck::bytes_of(&v) == bytemuck::bytes_of(&current)).then_some(new))
        }
    }

    /// Applies `f` to the value until it is stored unchanged by anyone else
    /// in between (`f` may run more than once), or until `f` returns `None`.
    /// Returns the previous value: `Ok` if `f`'s result was stored, `Err` if
    /// `f` declined.
    pub fn fetch_update(&self, mut f: impl FnMut(T) -> Option<T>) -> Result<T, T> {
        if Self::NATIVE {
            let cell = self.native();
            // Acquire: `f` sees what the value's last writer did before.
            let mut old = cell.load(Ordering::Acquire);
            loop {
                let new = f(old).ok_or(old)?;
                match cell.compare_exchange_weak(old, new, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(prev) => return Ok(prev),
                    Err(now) => old = now,
                }
            }
        } else {
            let mut g = self.lock_quiet();
            let old = *g;
            *g = f(old).ok_or(old)?;
            Ok(old)
        }
    }

    /// Replaces the value with `f(value)`, atomically; returns the previous
    /// value. `f` may run more than once.
    pub fn update(&self, mut f: impl FnMut(T) -> T) -> T {
        match self.fetch_update(|v| Some(f(v))) {
            Ok(v) | Err(v) => v,
        }
    }

    /// Takes the value's lock, waiting as long as it takes; a holder that
    /// died is noticed within about 50 ms. The guard derefs to the value;
    /// changes made through it are published when it drops.
    ///
    /// `Err` carries the guard too: the lock is held, and the previous
    /// holder died holding it (see [`OwnerDied`]).
    pub fn lock(&self) -> Result<ValueGuard<'_, T>, OwnerDied<ValueGuard<'_, T>>> {
        locked(self.acquire(Deadline::Never))
    }

    /// Takes the lock if no live process or thread holds it.
    pub fn try_lock(&self) -> Result<ValueGuard<'_, T>, TryLockError<ValueGuard<'_, T>>> {
        try_locked(self.acquire(Deadline::Now))
    }

    /// Takes the lock, waiting at most `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> Result<ValueGuard<'_, T>, TryLockError<ValueGuard<'_, T>>> {
        try_locked(self.acquire(Deadline::After(timeout)))
    }

    /// The lock for one of our own writes: a dead holder's news is left for
    /// the next `lock()` caller.
    fn lock_quiet(&self) -> ValueGuard<'_, T> {
        self.acquire_reporting(Deadline::Never, false).expect("waits without a deadline").0
    }

    fn acquire(&self, deadline: Deadline) -> Option<(ValueGuard<'_, T>, Option<u32>)> {
        self.acquire_reporting(deadline, true)
    }

    fn acquire_reporting(&self, deadline: Deadline, report: bool) -> Option<(ValueGuard<'_, T>, Option<u32>)> {
        let died = self.cells.lock(deadline, report)?;
        let local = if Self::NATIVE {
            // A native value may still change under us (see the module docs).
            self.load()
        } else {
            let mut v = T::zeroed();
            self.cells.read_locked(0, bytemuck::bytes_of_mut(&mut v));
            v
        };
        Some((ValueGuard { value: self, local, dirty: false }, died))
    }
}

#[cfg(not(loom))]
mod named {
    use super::*;
    use crate::error::{CreateError, OpenError};
    use crate::shm::header::{Kind, TypeInfo};
    use crate::shm::Options;

    impl<T: crate::message::Message> Value<T> {
        /// Creates the value in a new segment `name` (such as `"/counter"`),
        /// holding `initial`.
        pub fn create(name: &str, initial: T) -> Result<Self, CreateError> {
            Self::create_with(name, initial, &Options::new())
        }

        /// [`Value::create`] with options (mode, keep, spin).
        pub fn create_with(name: &str, initial: T, opts: &Options) -> Result<Self, CreateError> {
            let init = bytemuck::bytes_of(&initial);
            Cells::create(name, Kind::Value, TypeInfo::of::<T>(), !Self::NATIVE, init, opts).map(Self::with)
        }

        /// Opens the value in segment `name`, which must hold a `T`.
        pub fn open(name: &str) -> Result<Self, OpenError> {
            Self::open_with(name, &Options::new())
        }

        /// [`Value::open`] with options (spin, open timeout).
        pub fn open_with(name: &str, opts: &Options) -> Result<Self, OpenError> {
            Cells::open(name, Kind::Value, TypeInfo::of::<T>(), !Self::NATIVE, opts).map(|(cells, _)| Self::with(cells))
        }
    }
}

/// The lock on a [`Value`], and the value as this holder sees it: derefs to
/// `T`. Changes are published, all at once, when it drops (and discarded if
/// the thread is panicking).
pub struct ValueGuard<'a, T: Pod> {
    value: &'a Value<T>,
    local: T,
    dirty: bool,
}

impl<T: Pod> Deref for ValueGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.local
    }
}

impl<T: Pod> DerefMut for ValueGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.dirty = true;
        &mut self.local
    }
}

impl<T: Pod> Drop for ValueGuard<'_, T> {
    fn drop(&mut self) {
        if self.dirty && !std::thread::panicking() {
            if Value::<T>::NATIVE {
                // Release: pairs with `load`'s Acquire.
                self.value.native().store(self.local, Ordering::Release);
            } else {
                self.value.cells.write_locked(0, bytemuck::bytes_of(&self.local));
            }
        }
        self.value.cells.unlock();
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ValueGuard").field(&self.local).finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
    struct Big([u64; 5]);

    #[test]
    fn native_and_seqlock_values_do_the_same_things() {
        assert!(Value::<u64>::is_lock_free() && Value::<u8>::is_lock_free());
        assert!(!Value::<Big>::is_lock_free() && !Value::<[u8; 8]>::is_lock_free());

        let v = Value::new(5u64);
        assert_eq!(v.swap(6), 5);
        assert_eq!(v.compare_exchange(5, 9), Err(6));
        assert_eq!(v.compare_exchange(6, 9), Ok(6));
        assert_eq!(v.update(|x| x * 2), 9);
        assert_eq!(v.fetch_update(|_| None), Err(18));
        assert_eq!(v.load(), 18);

        let b = Value::new(Big([1; 5]));
        assert_eq!(b.swap(Big([2; 5])), Big([1; 5]));
        assert_eq!(b.compare_exchange(Big([1; 5]), Big([3; 5])), Err(Big([2; 5])));
        assert_eq!(b.compare_exchange(Big([2; 5]), Big([3; 5])), Ok(Big([2; 5])));
        assert_eq!(
            b.update(|mut x| {
                x.0[4] = 7;
                x
            }),
            Big([3; 5])
        );
        assert_eq!(b.load(), Big([3, 3, 3, 3, 7]));
    }

    #[test]
    fn a_guard_publishes_on_drop_and_a_panic_discards() {
        let v = Value::new(Big([0; 5]));
        {
            let mut g = v.lock().unwrap();
            g.0[0] = 1;
            assert_eq!(v.load(), Big([0; 5]), "not published while held");
            assert!(matches!(v.try_lock(), Err(TryLockError::WouldBlock)));
        }
        assert_eq!(v.load(), Big([1, 0, 0, 0, 0]));
        let v2 = v.clone();
        let r = std::thread::spawn(move || {
            let mut g = v2.lock().unwrap();
            g.0[1] = 9;
            panic!("inside the lock");
        })
        .join();
        assert!(r.is_err());
        assert_eq!(v.load(), Big([1, 0, 0, 0, 0]), "the panicking holder's change is discarded");
        assert!(v.lock_timeout(Duration::from_millis(10)).is_ok(), "and the lock is free");
    }

    #[test]
    fn relocking_from_the_holding_thread_is_refused_not_a_hang() {
        let v = Value::new(Big([0; 5]));
        let g = v.lock().unwrap();
        assert!(matches!(v.try_lock(), Err(TryLockError::WouldBlock)));
        assert!(matches!(v.lock_timeout(Duration::from_secs(60)), Err(TryLockError::WouldBlock)));
        let v2 = v.clone();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| v2.store(Big([1; 5]))));
        assert!(r.is_err(), "store while holding the guard panics");
        drop(g);
        v.store(Big([2; 5]));
        assert_eq!(v.load(), Big([2; 5]));
    }

    #[test]
    fn threads_increment_exactly_through_update_and_lock() {
        fn hammer<T: Pod + Send>(v: Value<T>, inc: fn(T) -> T) {
            let threads: Vec<_> = (0..4)
                .map(|i| {
                    let v = v.clone();
                    std::thread::spawn(move || {
                        for _ in 0..10_000 {
                            if i % 2 == 0 {
                                v.update(inc);
                            } else {
                                let mut g = v.lock().unwrap();
                                *g = inc(*g);
                            }
                        }
                    })
                })
                .collect();
            threads.into_iter().for_each(|t| t.join().unwrap());
        }
        // Seqlock path: update and lock() mix.
        let b = Value::new(Big([0; 5]));
        hammer(b.clone(), |mut x| {
            x.0.iter_mut().for_each(|w| *w += 1);
            x
        });
        assert_eq!(b.load(), Big([40_000; 5]));
    }
}
