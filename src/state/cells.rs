//! The shared core of [`Value`](crate::Value) and [`Array`](crate::Array):
//! `len` elements of one `Pod` type behind a two-copy seqlock
//! ([`crate::lock::seqlock`]), whose writers hold a robust mutex
//! ([`crate::lock::mutex`]), in a named segment or on the heap.
//!
//! | offset (in the control block) | size | field                     |
//! |------------------------------:|-----:|---------------------------|
//! |                             0 |   16 | the mutex (`RobustMutex`) |
//! |                            64 |    8 | the seqlock's `seq`       |
//!
//! The mutex and `seq` sit on separate cache lines: readers touch only
//! `seq` and the data, so lockers' traffic does not slow them. The data
//! region holds the two copies, each `len * size_of::<T>()` bytes rounded up
//! to whole `u64` words, laid out as `[T; len]` is.
//!
//! A `Value<T>` whose `T` fits a native atomic keeps it in the first word
//! of copy 0 instead, and uses only the mutex of all this.

use std::ptr::NonNull;

use crate::error::{OwnerDied, TryLockError};
use crate::lock::mutex::{RobustMutex, Taken};
use crate::lock::seqlock::{self, SeqLock};
use crate::shm::backing::Backing;
use crate::shm::peer::Identity;
use crate::sync::wait::{Deadline, Wait};
use crate::sync::AtomicU64;

/// The control block, `#[repr(C)]`.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Control {
    mutex: RobustMutex,
    _pad: [u8; 48],
    seq: SeqLock,
    _pad2: [u8; 56],
}

pub(crate) const CONTROL_LEN: usize = 128;
#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<Control>() == CONTROL_LEN);

/// Where `procring inspect` finds the lock word and the seqlock's `seq` in
/// a control block (`SeqLock` is one `u64`).
#[cfg(not(loom))]
pub(crate) mod offsets {
    use super::Control;
    use std::mem::offset_of;

    pub(crate) const LOCK_WORD: usize = offset_of!(Control, mutex) + crate::lock::mutex::STATE_OFFSET;
    pub(crate) const SEQ: usize = offset_of!(Control, seq);
}

/// `u64` words in one seqlock copy of `len` elements of `size` bytes.
pub(crate) fn copy_words(len: usize, size: usize) -> Option<usize> {
    Some(len.checked_mul(size)?.div_ceil(8))
}

impl Default for Control {
    fn default() -> Self {
        Self::new()
    }
}

impl Control {
    fn new() -> Self {
        Self { mutex: RobustMutex::new(), _pad: [0; 48], seq: SeqLock::new(), _pad2: [0; 56] }
    }
}

/// A guard taken without a deadline, as `lock()` returns it: `Err` when the
/// previous holder died (the guard is inside).
pub(crate) fn locked<G>(taken: Option<(G, Option<u32>)>) -> Result<G, OwnerDied<G>> {
    match taken.expect("waits without a deadline") {
        (guard, None) => Ok(guard),
        (guard, Some(pid)) => Err(OwnerDied::new(pid, guard)),
    }
}

/// A guard perhaps taken, as `try_lock()` and `lock_timeout()` return it.
pub(crate) fn try_locked<G>(taken: Option<(G, Option<u32>)>) -> Result<G, TryLockError<G>> {
    match taken {
        None => Err(TryLockError::WouldBlock),
        Some((guard, None)) => Ok(guard),
        Some((guard, Some(pid))) => Err(OwnerDied::new(pid, guard).into()),
    }
}

/// The memory behind one `Value` or `Array`, shared by its handles in this
/// process.
#[derive(Debug)]
pub(crate) struct Cells {
    ctl: NonNull<Control>,
    data: NonNull<AtomicU64>,
    /// `u64` words in both copies together.
    words: usize,
    /// Whether writes go through the seqlock (false: one native atomic).
    seqlocked: bool,
    me: Identity,
    wait: Wait,
    holder: LocalHolder,
    /// The segment's attachment table (a lock holder must be in it).
    peers: Option<crate::shm::peer::Table>,
    _backing: Backing,
}

/// Which thread of this process holds the lock, if one does: a thread that
/// locks again (say, `store` while holding the guard) would wait for itself
/// for ever, so that is a panic instead, as `std::sync::Mutex` allows.
/// Process-local; not modelled under loom (a model never re-locks).
#[derive(Debug, Default)]
struct LocalHolder {
    #[cfg(not(loom))]
    thread: AtomicU64,
}

impl LocalHolder {
    /// Whether the calling thread holds the lock.
    fn is_me(&self) -> bool {
        // Relaxed: only this thread ever stores its own tag.
        #[cfg(not(loom))]
        return crate::sync::thread_tag::current()
            .is_some_and(|tag| self.thread.load(crate::sync::Ordering::Relaxed) == tag);
        #[cfg(loom)]
        false
    }

    fn set(&self, held: bool) {
        #[cfg(not(loom))]
        {
            let tag = crate::sync::thread_tag::current().filter(|_| held).unwrap_or(0);
            self.thread.store(tag, crate::sync::Ordering::Relaxed);
        }
        #[cfg(loom)]
        let _ = held;
    }
}

// SAFETY: the pointers point into `_backing`, which `Cells` owns; every shared
// word is atomic, and the protocols (mutex, seqlock) make concurrent use from
// any number of threads sound.
unsafe impl Send for Cells {}
// SAFETY: as above.
unsafe impl Sync for Cells {}

impl Cells {
    /// `len` elements of `size` bytes, in this process, holding `init`.
    pub(crate) fn heap(len: usize, size: usize, seqlocked: bool, init: &[u8]) -> Self {
        let words = 2 * copy_words(len, size).expect("length checked by the caller");
        #[cfg(not(loom))]
        let cells = {
            let heap = crate::shm::backing::HeapObject::new(
                &layout(crate::shm::header::Kind::Array),
                size as u32,
                8,
                len as u64,
            )
            // Two copies of values that already exist in memory: only
            // running out of memory, as for any allocation, fails here.
            .unwrap_or_else(|e| panic!("two copies of {len} values: {e}"));
            let (ctl, data) = (heap.ctl.cast(), heap.data.cast());
            let wait = Wait::local();
            Self {
                ctl,
                data,
                words,
                seqlocked,
                me: Identity::this_process(),
                wait,
                holder: LocalHolder::default(),
                peers: None,
                _backing: heap.backing,
            }
        };
        #[cfg(loom)]
        let cells = {
            let parts = Box::new((Control::new(), (0..words.max(1)).map(|_| AtomicU64::new(0)).collect::<Vec<_>>()));
            let ctl = NonNull::from(&parts.0);
            let data = NonNull::from(&parts.1[0]);
            // One made-up process; no spinning, and untimed sleeps, so that a
            // lost wakeup is a deadlock loom reports.
            let wait = Wait { spin: 0, slice: None };
            Self {
                ctl,
                data,
                words,
                seqlocked,
                me: Identity::fake(1),
                wait,
                holder: LocalHolder::default(),
                peers: None,
                _backing: Backing::Local(std::sync::Arc::new(parts)),
            }
        };
        cells.init(init);
        cells
    }

    /// Writes `init` into both copies: the region is not shared yet.
    fn init(&self, init: &[u8]) {
        let data = self.data();
        let (a, b) = data.split_at(data.len() / 2);
        seqlock::store_bytes(a, 0, init);
        seqlock::store_bytes(b, 0, init);
    }

    fn control(&self) -> &Control {
        // SAFETY: initialised before `Cells` was built, alive while `_backing` is.
        unsafe { self.ctl.as_ref() }
    }

    /// Both copies.
    fn data(&self) -> &[AtomicU64] {
        // SAFETY: `words` atomics (zeroed or written, both valid) in `_backing`.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr(), self.words) }
    }

    /// The word a native atomic value lives in.
    pub(crate) fn word0(&self) -> &AtomicU64 {
        &self.data()[0]
    }

    /// Copies `out.len()` bytes from byte `start`, never torn.
    pub(crate) fn read(&self, start: usize, out: &mut [u8]) {
        self.control().seq.read(self.data(), |copy| seqlock::load_bytes(copy, start, out));
    }

    /// Copies `out.len()` bytes from byte `start`. The caller holds the
    /// lock, so no write is under way and both copies are equal (a write
    /// leaves them so, and so does the repair after a holder died): copy 0
    /// is read directly, without the seqlock.
    pub(crate) fn read_locked(&self, start: usize, out: &mut [u8]) {
        let data = self.data();
        seqlock::load_bytes(&data[..data.len() / 2], start, out);
    }

    /// Replaces the bytes from `start` with `src`. The caller holds the lock.
    pub(crate) fn write_locked(&self, start: usize, src: &[u8]) {
        self.control().seq.write(self.data(), |copy| seqlock::store_bytes(copy, start, src));
    }

    /// Takes the lock. `Some(died)` when taken, with the pid of a holder
    /// found dead since the last report if `report` asks for it.
    pub(crate) fn lock(&self, deadline: Deadline, report: bool) -> Option<Option<u32>> {
        if self.holder.is_me() {
            match deadline {
                Deadline::Never => panic!(
                    "this thread already holds this lock: procring's locks are not reentrant \
                     (change the value through the guard instead of calling store/update/lock)"
                ),
                _ => return None,
            }
        }
        let mutex = &self.control().mutex;
        let peers = self.peers.as_ref();
        let taken = match deadline {
            Deadline::Now => mutex.try_lock(self.me, peers),
            deadline => mutex.lock(self.me, &self.wait, deadline, peers),
        }?;
        if let Taken::Recovered(_) = taken {
            if self.seqlocked {
                // The dead holder may have been half-way through a write.
                self.control().seq.repair(self.data());
            }
        }
        self.holder.set(true);
        Some(if report { mutex.take_died() } else { None })
    }

    /// Releases the lock.
    pub(crate) fn unlock(&self) {
        self.holder.set(false);
        self.control().mutex.unlock();
    }
}

#[cfg(not(loom))]
mod named {
    use super::*;
    use crate::error::{CreateError, OpenError};
    use crate::shm::header::{init_control, Expected, Kind, Layout, TypeInfo};
    use crate::shm::object::Object;
    use crate::shm::peer::role;
    use crate::shm::Options;

    /// A value's or an array's segment: the control block, then the two
    /// copies of the seqlock, each whole `u64` words.
    pub(crate) const fn layout(kind: Kind) -> Layout {
        Layout {
            kind,
            ctl_len: CONTROL_LEN,
            data_len: |size, _, len| copy_words(usize::try_from(len).ok()?, size as usize)?.checked_mul(16),
            init: init_control::<Control>,
        }
    }

    fn expected(kind: Kind, elem: TypeInfo, len: u64) -> Expected {
        Expected::new(layout(kind), elem, len)
    }

    impl Cells {
        /// # Safety
        /// The object holds a control block and `len` elements of `size`
        /// bytes, as `expected` laid them out.
        unsafe fn in_object(object: Object, len: u64, size: usize, seqlocked: bool, wait: Wait) -> Self {
            let words = 2 * copy_words(len as usize, size).expect("checked by the layout");
            let peers = Some(object.peers().0);
            Self {
                ctl: object.ctl().cast(),
                data: object.data().cast(),
                words,
                seqlocked,
                me: Identity::this_process(),
                wait,
                holder: LocalHolder::default(),
                peers,
                _backing: object.into_backing(),
            }
        }

        pub(crate) fn create(
            name: &str,
            kind: Kind,
            elem: TypeInfo,
            seqlocked: bool,
            init: &[u8],
            opts: &Options,
        ) -> Result<Self, CreateError> {
            let size = elem.size as usize;
            let len = init.len() / size;
            let object = Object::create(name, &expected(kind, elem, len as u64), opts, role::STATE)?;
            let publisher = object.publisher();
            // SAFETY: just created with this layout.
            let cells = unsafe { Self::in_object(object, len as u64, size, seqlocked, opts.wait()) };
            cells.init(init);
            publisher.publish();
            Ok(cells)
        }

        /// Opens one; returns it and its length in elements.
        pub(crate) fn open(
            name: &str,
            kind: Kind,
            elem: TypeInfo,
            seqlocked: bool,
            opts: &Options,
        ) -> Result<(Self, usize), OpenError> {
            let object = Object::open(name, &expected(kind, elem, 0), opts, role::STATE)?;
            let len = object.capacity;
            // SAFETY: `open` validated the header (kind, element type, length
            // and offsets) against this layout and the file's size.
            let cells = unsafe { Self::in_object(object, len, elem.size as usize, seqlocked, opts.wait()) };
            Ok((cells, len as usize))
        }
    }
}
#[cfg(not(loom))]
pub(crate) use named::layout;
