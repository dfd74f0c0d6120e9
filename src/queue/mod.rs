//! Queues of `Pod` values between any number of processes (and threads),
//! on the MPMC ring (`src/ring/mpmc/`), in two shapes:
//!
//! - crossbeam's: [`Sender`] and [`Receiver`] ([`bounded`] in a process,
//!   [`create`] for a named queue, `Sender::open`/`Receiver::open` in any
//!   process). When every sender in every process is gone (dropped, or its
//!   process died), receivers drain the queue and then get
//!   `Disconnected`; when every receiver is gone, sends fail at once and
//!   hand their value back.
//! - Python's: [`Queue`](crate::Queue), one handle that sends and receives, as
//!   `multiprocessing.Queue`. `close()` is Python's (this handle sends no
//!   more) and `shutdown()` is Python 3.13's (the queue ends for everyone).
//!
//! A handle is cheap to clone within a process; another process opens the
//! queue by name. Handles are counted in the segment per process, so a
//! process that dies stops counting (see `ring::mpmc`, "Disconnection").

pub(crate) mod api;
mod guards;
mod handle;
#[cfg(all(feature = "serde", not(loom)))]
pub(crate) mod serialized;

#[cfg(loom)]
use std::ptr::NonNull;
use std::sync::Arc;

pub use api::{bounded, IntoIter, Iter, Receiver, Sender, TryIter};
#[cfg(not(loom))]
pub use api::{create, create_with};
pub use guards::{RecvRef, SendSlot};

use crate::error::CreateError;
use crate::ring::mpmc::{self, End, Geometry, Mpmc};
use crate::shm::backing::Backing;
#[cfg(not(loom))]
use crate::shm::backing::{local_barrier, HeapObject};
#[cfg(loom)]
use crate::sync::Barrier;
use crate::sync::{AtomicU32, Mutex, Ordering};

/// A handle's [`Counted::ends`] bit: it counts as a sender.
const SENDS: u32 = 1;
/// A handle's [`Counted::ends`] bit: it counts as a receiver.
const RECEIVES: u32 = 2;
/// A handle that both sends and receives (a `Queue`, a `SerdeQueue`).
pub(crate) const BOTH_ENDS: u32 = SENDS | RECEIVES;

/// Both kinds of end, with their [`Counted::ends`] bits.
const ENDS: [(u32, End); 2] = [(SENDS, End::Sender), (RECEIVES, End::Receiver)];

/// A handle's share of a queue: the memory, and what the handle counts as,
/// uncounted when it drops.
#[derive(Debug)]
pub(crate) struct Counted {
    pub(crate) shared: Arc<Shared>,
    /// [`SENDS`] and [`RECEIVES`] bits still counted. Process-local; atomic
    /// so that a `Queue` can stop sending through `&self`.
    ends: AtomicU32,
}

impl Counted {
    pub(crate) fn new(shared: Arc<Shared>, ends: u32) -> Self {
        for (bit, end) in ENDS {
            if ends & bit != 0 {
                shared.count(end, true);
            }
        }
        Self { shared, ends: AtomicU32::new(ends) }
    }

    /// Whether this handle still counts as a sender.
    #[inline(always)]
    pub(crate) fn sends(&self) -> bool {
        // Relaxed: this handle's own flag; the count it stands for is
        // ordered by `Mpmc::detach_end`.
        self.ends.load(Ordering::Relaxed) & SENDS != 0
    }

    /// Stops counting as a sender; whether this call did.
    pub(crate) fn stop_sending(&self) -> bool {
        // Relaxed: as in `sends`.
        let was = self.ends.fetch_and(!SENDS, Ordering::Relaxed);
        if was & SENDS != 0 {
            self.shared.count(End::Sender, false);
        }
        was & SENDS != 0
    }
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        // Relaxed: as in `sends`.
        Self::new(self.shared.clone(), self.ends.load(Ordering::Relaxed))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        // Relaxed: as in `sends`.
        let ends = self.ends.load(Ordering::Relaxed);
        for (bit, end) in ENDS {
            if ends & bit != 0 {
                self.shared.count(end, false);
            }
        }
    }
}

fn geometry<T>() -> Geometry {
    Geometry { size: std::mem::size_of::<T>(), align: std::mem::align_of::<T>() }
}

/// The memory behind a ring, shared by every handle in this process.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) ring: Mpmc,
    /// This process's handles on the ring, by kind (senders, receivers).
    /// The ring's counts ("Disconnection" in `ring::mpmc`) change only when
    /// one of these goes from 0 to 1 or back, under this lock: clones and
    /// drops within a process touch no shared memory, and a handle made
    /// while the last of its kind drops never lets the ring's count read 0.
    handles: Mutex<[u32; 2]>,
    _backing: Backing,
}

// SAFETY: the ring's pointers point into `_backing`, which `Shared` owns; the
// ring protocol makes concurrent use from any number of threads sound
// (every shared word is atomic, payloads are owned by one claimant at a time).
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

pub(crate) fn check_capacity(capacity: usize) -> Result<u64, CreateError> {
    crate::shm::backing::check_bound(capacity)
}

impl Shared {
    fn new(ring: Mpmc, memory: Backing) -> Self {
        Self { ring, handles: Mutex::new([0; 2]), _backing: memory }
    }

    /// Counts a handle of kind `end` in (`up`) or out of this process's.
    fn count(&self, end: End, up: bool) {
        let mut handles = self.handles.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = &mut handles[usize::from(end == End::Receiver)];
        if up {
            *n += 1;
            if *n == 1 {
                self.ring.attach_end(end);
            }
        } else {
            *n -= 1;
            if *n == 0 {
                self.ring.detach_end(end);
            }
        }
    }

    /// An in-process queue of `T` holding at most `capacity` messages.
    fn heap_for<T>(capacity: usize) -> Result<Arc<Self>, CreateError> {
        crate::shm::backing::check_element::<T>()?;
        Ok(Arc::new(Self::heap(geometry::<T>(), check_capacity(capacity)?)?))
    }

    /// An in-process ring on the heap.
    ///
    /// # Errors
    /// [`CreateError::InvalidCapacity`] when it would not fit in memory.
    pub(crate) fn heap(g: Geometry, cap: u64) -> Result<Self, CreateError> {
        #[cfg(not(loom))]
        {
            let heap = HeapObject::new(&LAYOUT, g.size as u32, g.align as u32, cap)?;
            let (ctl, data, barrier) = (heap.ctl.cast(), heap.data, local_barrier());
            // SAFETY: a queue's control block and `cap` slots of geometry `g`
            // (its layout), kept by the backing as long as the ring; the
            // sequence words are written by `init_slots` before any use.
            let ring = unsafe { Mpmc::new(ctl, mpmc::Slots::new(data, g), cap, barrier, None) };
            ring.init_slots();
            Ok(Self::new(ring, heap.backing))
        }
        #[cfg(loom)]
        {
            assert!(g.size <= mpmc::LOOM_WORDS * 8 && g.align <= 8, "loom models use small elements");
            let ctl = Box::new(mpmc::Control::new());
            // SAFETY: the boxed control block lives in `_backing` as long as the ring.
            let ring =
                unsafe { Mpmc::new(NonNull::from(&*ctl), mpmc::Slots::new_loom(cap), cap, Barrier::Symmetric, None) };
            Ok(Self::new(ring, Backing::Local(std::sync::Arc::new(ctl))))
        }
    }
}

#[cfg(not(loom))]
mod named {
    use super::*;
    use crate::error::OpenError;
    use crate::shm::header::{init_control, Expected, Kind, Layout, TypeInfo};
    use crate::shm::object::{Object, Parts};
    use crate::shm::peer::role;
    use crate::shm::Options;

    /// A queue's segment: its control block, then its slots.
    pub(crate) const LAYOUT: Layout = Layout {
        kind: Kind::Queue,
        ctl_len: mpmc::CONTROL_LEN,
        data_len: crate::ring::slot_region_len,
        init: init_control::<mpmc::Control>,
    };

    pub(crate) fn expected(elem: TypeInfo, capacity: u64) -> Expected {
        Expected::new(LAYOUT, elem, capacity)
    }

    /// Clears dead processes' finished claims from the table of a queue
    /// about to be opened (see `Mpmc::sweep`).
    fn sweep(parts: &Parts, align: u32) {
        let g = Geometry { size: parts.elem_size as usize, align: align as usize };
        // SAFETY: `open_then` validated the header against this geometry:
        // the control block is a queue's and the data region holds its
        // slots, mapped for the call; a ring without claims records none.
        let ring = unsafe {
            Mpmc::new(parts.ctl.cast(), mpmc::Slots::new(parts.data, g), parts.capacity, parts.barrier, None)
        };
        ring.sweep(parts.table.rows());
    }

    /// # Safety
    /// The object's control block is an initialised `Control` and its data
    /// region holds `capacity` slots of geometry `g` (we just created it, or
    /// the header was validated against `g`).
    unsafe fn ring_in(object: &Object, g: Geometry) -> Mpmc {
        let (table, row) = object.peers();
        // SAFETY: the caller's contract; the object's memory outlives the
        // ring (both end up in the same `Shared`), and so does our row.
        unsafe {
            let claims = mpmc::Claims::new(table, row);
            Mpmc::new(
                object.ctl().cast(),
                mpmc::Slots::new(object.data(), g),
                object.capacity,
                object.barrier,
                Some(claims),
            )
        }
    }

    impl Shared {
        pub(crate) fn create(
            name: &str,
            elem: TypeInfo,
            g: Geometry,
            cap: u64,
            opts: &Options,
        ) -> Result<Self, CreateError> {
            let object = Object::create(name, &expected(elem, cap), opts, role::SEND | role::RECV)?;
            // SAFETY: we just created the object with this geometry.
            let ring = unsafe { ring_in(&object, g) };
            ring.init_slots();
            object.publish();
            Ok(Shared::new(ring, object.into_backing()))
        }

        /// Opens a queue of `elem`; with `elem.size == 0`, of the segment's
        /// element size (a serialized queue). Returns the element size too.
        pub(crate) fn open(name: &str, elem: TypeInfo, opts: &Options) -> Result<(Self, usize), OpenError> {
            let object =
                Object::open_then(name, &expected(elem, 0), opts, role::SEND | role::RECV, |p| sweep(p, elem.align))?;
            let g = Geometry { size: object.elem_size as usize, align: elem.align as usize };
            // SAFETY: `open` validated the header against this geometry.
            let ring = unsafe { ring_in(&object, g) };
            Ok((Shared::new(ring, object.into_backing()), g.size))
        }
    }
}
#[cfg(not(loom))]
pub(crate) use named::LAYOUT;
