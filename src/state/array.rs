//! `Array<T>`: Python's `multiprocessing.Array`, a fixed-length array of
//! `Pod` values shared across processes.
//!
//! Reads — [`get`](Array::get), [`to_vec`](Array::to_vec) — never wait and
//! never lock: they copy through the array's two-copy seqlock
//! ([`crate::lock::seqlock`]), so `to_vec` is a consistent snapshot, the whole
//! array as one write left it. Writes — [`set`](Array::set),
//! [`swap`](Array::swap), [`compare_exchange`](Array::compare_exchange),
//! [`update`](Array::update) — are atomic for their element and take the
//! array's lock for the moment they copy, so they are atomic with respect to
//! one another, to snapshots, and to [`lock`](Array::lock) holders. Even
//! for a `T` that fits a native atomic, element writes take the lock: that
//! is the price of snapshots that are whole, and of a writer's death never
//! leaving a torn array behind.
//!
//! An index past the end is `None` or [`OutOfBounds`]: nothing outside the
//! array is ever touched.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use bytemuck::Pod;

use crate::error::{OutOfBounds, OwnerDied, TryLockError};
use crate::state::cells::{locked, try_locked, Cells};
use crate::sync::wait::Deadline;

/// A fixed-length shared array of `T`, in a named segment or in this process.
///
/// ```
/// use procring::Array;
///
/// let a = Array::new(&[1i32, 2, 3, 4, 5]); // in-process; `create`/`open` for a named one
/// for i in 0..a.len() {
///     a.update(i, |x| x * 2)?;
/// }
/// assert_eq!(a.to_vec(), [2, 4, 6, 8, 10]);
/// a.lock().unwrap().reverse();
/// assert_eq!(a.get(0), Some(10));
/// assert_eq!(a.get(5), None);
/// # Ok::<(), procring::OutOfBounds>(())
/// ```
pub struct Array<T> {
    cells: Arc<Cells>,
    len: usize,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Array<T> {
    fn clone(&self) -> Self {
        Self { cells: self.cells.clone(), len: self.len, _t: PhantomData }
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Array").field(&self.to_vec()).finish()
    }
}

impl<T: Pod> Array<T> {
    /// An array shared between the threads of this process.
    pub fn new(values: &[T]) -> Self {
        Self::with(Cells::heap(values.len(), size_of::<T>(), true, bytemuck::cast_slice(values)), values.len())
    }

    fn with(cells: Cells, len: usize) -> Self {
        Self { cells: Arc::new(cells), len, _t: PhantomData }
    }

    /// The number of elements (fixed at creation).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check(&self, index: usize) -> Result<usize, OutOfBounds> {
        if index < self.len {
            Ok(index * size_of::<T>())
        } else {
            Err(OutOfBounds { index, len: self.len })
        }
    }

    /// Element `index`, or `None` past the end. Never waits.
    pub fn get(&self, index: usize) -> Option<T> {
        let at = self.check(index).ok()?;
        let mut v = T::zeroed();
        self.cells.read(at, bytemuck::bytes_of_mut(&mut v));
        Some(v)
    }

    /// A snapshot of the whole array, as one write left it. Never waits.
    pub fn to_vec(&self) -> Vec<T> {
        let mut out = vec![T::zeroed(); self.len];
        self.cells.read(0, bytemuck::cast_slice_mut(&mut out));
        out
    }

    /// Sets element `index`.
    pub fn set(&self, index: usize, value: T) -> Result<(), OutOfBounds> {
        self.swap(index, value).map(drop)
    }

    /// Sets element `index`, returning the value it replaced.
    pub fn swap(&self, index: usize, value: T) -> Result<T, OutOfBounds> {
        self.update(index, |_| value)
    }

    /// Stores `new` in element `index` if it holds `current` (compared byte
    /// for byte). `Ok(Ok(previous))` if it was replaced, `Ok(Err(previous))`
    /// if not.
    pub fn compare_exchange(&self, index: usize, current: T, new: T) -> Result<Result<T, T>, OutOfBounds> {
        self.fetch_update(index, |v| (bytemuck::bytes_of(&v) == bytemuck::bytes_of(&current)).then_some(new))
    }

    /// Applies `f` to element `index` atomically, unless it returns `None`.
    /// `Ok(Ok(previous))` if `f`'s result was stored, `Ok(Err(previous))` if
    /// `f` declined.
    pub fn fetch_update(&self, index: usize, f: impl FnOnce(T) -> Option<T>) -> Result<Result<T, T>, OutOfBounds> {
        let at = self.check(index)?;
        let _held = self.write_lock();
        let mut old = T::zeroed();
        self.cells.read_locked(at, bytemuck::bytes_of_mut(&mut old));
        Ok(match f(old) {
            Some(new) => {
                self.cells.write_locked(at, bytemuck::bytes_of(&new));
                Ok(old)
            }
            None => Err(old),
        })
    }

    /// Replaces element `index` with `f(element)`, atomically; returns the
    /// previous value.
    pub fn update(&self, index: usize, f: impl FnOnce(T) -> T) -> Result<T, OutOfBounds> {
        self.fetch_update(index, |v| Some(f(v))).map(|r| r.unwrap_or_else(|v| v))
    }

    /// Takes the array's lock, waiting as long as it takes; a holder that
    /// died is noticed within about 50 ms. The guard derefs to `[T]`;
    /// changes made through it are published together when it drops.
    ///
    /// `Err` carries the guard too: the lock is held, and the previous
    /// holder died holding it (see [`OwnerDied`]).
    pub fn lock(&self) -> Result<ArrayGuard<'_, T>, OwnerDied<ArrayGuard<'_, T>>> {
        locked(self.acquire(Deadline::Never))
    }

    /// Takes the lock if no live process or thread holds it.
    pub fn try_lock(&self) -> Result<ArrayGuard<'_, T>, TryLockError<ArrayGuard<'_, T>>> {
        try_locked(self.acquire(Deadline::Now))
    }

    /// Takes the lock, waiting at most `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> Result<ArrayGuard<'_, T>, TryLockError<ArrayGuard<'_, T>>> {
        try_locked(self.acquire(Deadline::After(timeout)))
    }

    fn acquire(&self, deadline: Deadline) -> Option<(ArrayGuard<'_, T>, Option<u32>)> {
        let died = self.cells.lock(deadline, true)?;
        let mut local = vec![T::zeroed(); self.len];
        self.cells.read_locked(0, bytemuck::cast_slice_mut(&mut local));
        Some((ArrayGuard { array: self, local, dirty: false }, died))
    }

    /// The lock for one of our own writes: a dead holder's news is left for
    /// the next `lock()` caller.
    fn write_lock(&self) -> Held<'_> {
        self.cells.lock(Deadline::Never, false).expect("waits without a deadline");
        Held(&self.cells)
    }
}

/// Releases the lock when dropped (even by a panic).
struct Held<'a>(&'a Cells);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.unlock();
    }
}

#[cfg(not(loom))]
mod named {
    use super::*;
    use crate::error::{CreateError, OpenError};
    use crate::shm::header::{Kind, TypeInfo};
    use crate::shm::Options;

    impl<T: crate::message::Message> Array<T> {
        /// Creates the array in a new segment `name` (such as `"/scores"`),
        /// holding a copy of `values`; its length is fixed from then on.
        ///
        /// # Errors
        /// [`CreateError`]: a bad name, a name that exists, no permission,
        /// no room in `/dev/shm`, or a system error.
        pub fn create(name: &str, values: &[T]) -> Result<Self, CreateError> {
            Self::create_with(name, values, &Options::new())
        }

        /// As [`Array::create`], with [`Options`] (mode, keep, spin), as every
        /// other kind's `create_with`.
        ///
        /// # Errors
        /// As [`Array::create`].
        pub fn create_with(name: &str, values: &[T], opts: &Options) -> Result<Self, CreateError> {
            let init = bytemuck::cast_slice(values);
            Cells::create(name, Kind::Array, TypeInfo::of::<T>(), true, init, opts)
                .map(|cells| Self::with(cells, values.len()))
        }

        /// Creates an array of `len` copies of `value` in a new segment
        /// `name` (Python's `Array('i', 10)` is `create_filled(name, 10, 0)`).
        ///
        /// # Errors
        /// As [`Array::create`].
        pub fn create_filled(name: &str, len: usize, value: T) -> Result<Self, CreateError> {
            Self::create_with(name, &vec![value; len], &Options::new())
        }

        /// Opens the array in segment `name`, which must hold `T`s; its
        /// length is the creator's.
        pub fn open(name: &str) -> Result<Self, OpenError> {
            Self::open_with(name, &Options::new())
        }

        /// [`Array::open`] with options (spin, open timeout).
        pub fn open_with(name: &str, opts: &Options) -> Result<Self, OpenError> {
            Cells::open(name, Kind::Array, TypeInfo::of::<T>(), true, opts).map(|(cells, len)| Self::with(cells, len))
        }
    }
}

/// The lock on an [`Array`], and the array as this holder sees it: derefs to
/// `[T]`. Changes are published, all together, when it drops (and discarded
/// if the thread is panicking).
pub struct ArrayGuard<'a, T: Pod> {
    array: &'a Array<T>,
    local: Vec<T>,
    dirty: bool,
}

impl<T: Pod> Deref for ArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.local
    }
}

impl<T: Pod> DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.dirty = true;
        &mut self.local
    }
}

impl<T: Pod> Drop for ArrayGuard<'_, T> {
    fn drop(&mut self) {
        if self.dirty && !std::thread::panicking() {
            self.array.cells.write_locked(0, bytemuck::cast_slice(&self.local));
        }
        self.array.cells.unlock();
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ArrayGuard").field(&self.local).finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn elements_snapshots_and_bounds() {
        let a = Array::new(&[1u16, 2, 3]);
        assert_eq!((a.len(), a.get(2), a.get(3)), (3, Some(3), None));
        assert_eq!(a.set(3, 0), Err(OutOfBounds { index: 3, len: 3 }));
        assert_eq!(a.swap(1, 20), Ok(2));
        assert_eq!(a.compare_exchange(0, 5, 6), Ok(Err(1)));
        assert_eq!(a.compare_exchange(0, 1, 6), Ok(Ok(1)));
        assert_eq!(a.update(2, |x| x + 1), Ok(3));
        assert_eq!(a.to_vec(), [6, 20, 4]);
        let empty = Array::<u8>::new(&[]);
        assert!(empty.is_empty() && empty.to_vec().is_empty() && empty.get(0).is_none());
    }

    #[test]
    fn snapshots_are_whole_while_a_thread_rewrites_the_array() {
        // Odd sizes, so elements straddle words.
        let a = Array::new(&[[0u8; 3]; 101]);
        let a2 = a.clone();
        let writer = std::thread::spawn(move || {
            for k in 1..=2_000u32 {
                let mut g = a2.lock().unwrap();
                g.iter_mut().for_each(|e| *e = [k as u8; 3]);
            }
        });
        for _ in 0..20_000 {
            let v = a.to_vec();
            assert!(v.iter().all(|e| *e == v[0] && e[0] == e[1] && e[1] == e[2]), "torn snapshot");
        }
        writer.join().unwrap();
        assert_eq!(a.get(100), Some([(2_000 % 256) as u8; 3]));
    }
}
