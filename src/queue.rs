//! `Queue<T>`: Python's `multiprocessing.Queue`, for `Pod` values, across
//! processes, on the MPMC ring ([`crate::ring::mpmc`]).
//!
//! Any number of processes (and threads) send and receive on one queue. A
//! handle is cheap to clone within a process; another process opens the
//! queue by name. `close()` ends it for everyone: sends fail at once, and
//! receivers get what was sent before the close, then a disconnection error.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytemuck::Pod;

use crate::error::{CreateError, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError};
use crate::memory::Memory;
#[cfg(not(loom))]
use crate::memory::{local_barrier, HeapBlock};
use crate::ring::mpmc::{self, Claim, Geometry, Mpmc, PayloadMut, PayloadRef, Stop};
#[cfg(loom)]
use crate::sync::Barrier;
use crate::wait::{Limit, Wait};

/// The memory behind a ring, shared by every handle in this process.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) ring: Mpmc,
    _memory: Memory,
}

// SAFETY: the ring's pointers point into `_memory`, which `Shared` owns; the
// ring protocol makes concurrent use from any number of threads sound
// (every shared word is atomic, payloads are owned by one claimant at a time).
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

pub(crate) fn check_capacity(capacity: usize) -> Result<u64, CreateError> {
    // With one slot, "published for position p" (seq p + 1) and "free for
    // position p + 1" (seq p + cap) would be the same sequence value.
    crate::memory::check_capacity(capacity, 2, 1 << 40, "a queue needs at least 2 slots")
}

impl Shared {
    /// An in-process ring on the heap.
    pub(crate) fn heap(g: Geometry, cap: u64) -> Self {
        #[cfg(not(loom))]
        {
            let ctl_len = mpmc::CONTROL_LEN.next_multiple_of(128);
            let block = HeapBlock::new(ctl_len + cap as usize * g.stride(), g.align.max(128));
            // A control block at 0, then `cap` zeroed slots at `ctl_len`.
            // SAFETY: in bounds and aligned; the control block is written
            // here and the sequence words by `init_slots`, before any use.
            let ring = unsafe {
                let ctl = block.ptr().cast::<mpmc::Control>();
                ctl.as_ptr().write(mpmc::Control::new());
                let slots = mpmc::Slots::new(NonNull::new_unchecked(block.ptr().as_ptr().add(ctl_len)), g);
                Mpmc::new(ctl, slots, cap, local_barrier(), None)
            };
            ring.init_slots();
            Self { ring, _memory: Memory::Heap(block) }
        }
        #[cfg(loom)]
        {
            assert!(g.size <= mpmc::LOOM_WORDS * 8 && g.align <= 8, "loom models use small elements");
            let ctl = Box::new(mpmc::Control::new());
            // SAFETY: the boxed control block lives in `_memory` as long as the ring.
            let ring =
                unsafe { Mpmc::new(NonNull::from(&*ctl), mpmc::Slots::new_loom(cap), cap, Barrier::Symmetric, None) };
            Self { ring, _memory: Memory::Loom(ctl) }
        }
    }
}

#[cfg(not(loom))]
mod named {
    use super::*;
    use crate::error::OpenError;
    use crate::layout::{Expected, Kind, TypeInfo};
    use crate::peer::role;
    use crate::region::{Parts, Region};
    use crate::Options;

    pub(crate) fn expected(elem: TypeInfo, capacity: u64) -> Expected {
        Expected { kind: Kind::Queue, elem, capacity, ctl_len: mpmc::CONTROL_LEN, rows: 0 }
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
    /// The region's control block is an initialised `Control` and its data
    /// region holds `capacity` slots of geometry `g` (we just created it, or
    /// the header was validated against `g`).
    unsafe fn ring_in(region: &Region, g: Geometry) -> Mpmc {
        let (table, row) = region.peers();
        // SAFETY: the caller's contract; the region's memory outlives the
        // ring (both end up in the same `Shared`), and so does our row.
        unsafe {
            let claims = mpmc::Claims::new(table, row);
            Mpmc::new(
                region.ctl().cast(),
                mpmc::Slots::new(region.data(), g),
                region.capacity,
                region.barrier,
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
            let region = Region::create(name, &expected(elem, cap), opts, role::SEND | role::RECV, |ctl| {
                // SAFETY: `ctl` is the fresh, aligned, unshared control block.
                unsafe { ctl.cast::<mpmc::Control>().write(mpmc::Control::new()) }
            })?;
            // SAFETY: we just created the region with this geometry.
            let ring = unsafe { ring_in(&region, g) };
            ring.init_slots();
            region.publish();
            Ok(Shared { ring, _memory: region.into_memory() })
        }

        /// Opens a queue of `elem`; with `elem.size == 0`, of the segment's
        /// element size (a serialized queue). Returns the element size too.
        pub(crate) fn open(name: &str, elem: TypeInfo, opts: &Options) -> Result<(Self, usize), OpenError> {
            let region =
                Region::open_then(name, &expected(elem, 0), opts, role::SEND | role::RECV, |p| sweep(p, elem.align))?;
            let g = Geometry { size: region.elem_size as usize, align: elem.align as usize };
            // SAFETY: `open` validated the header against this geometry.
            let ring = unsafe { ring_in(&region, g) };
            Ok((Shared { ring, _memory: region.into_memory() }, g.size))
        }
    }
}

/// Maps a failed claim to the error types users see.
fn send_err<T>(stop: Stop, value: T) -> SendTimeoutError<T> {
    match stop {
        Stop::Timeout | Stop::NotNow => SendTimeoutError::Timeout(value),
        Stop::Closed | Stop::Corrupt(_) => SendTimeoutError::Disconnected(value),
    }
}

fn recv_err(stop: Stop) -> RecvTimeoutError {
    match stop {
        Stop::Timeout | Stop::NotNow => RecvTimeoutError::Timeout,
        Stop::Closed => RecvTimeoutError::Disconnected,
        Stop::Corrupt(w) => RecvTimeoutError::Corrupt(w),
    }
}

fn blocking<T>(e: SendTimeoutError<T>) -> SendError<T> {
    SendError(e.into_inner())
}

fn try_recv_err(stop: Stop) -> TryRecvError {
    match stop {
        Stop::Timeout | Stop::NotNow => TryRecvError::Empty,
        Stop::Closed => TryRecvError::Disconnected,
        Stop::Corrupt(w) => TryRecvError::Corrupt(w),
    }
}

fn recv_blocking(e: RecvTimeoutError) -> RecvError {
    match e {
        RecvTimeoutError::Corrupt(w) => RecvError::Corrupt(w),
        _ => RecvError::Disconnected,
    }
}

/// A many-producer many-consumer queue of `T`, in a named segment or in
/// this process.
///
/// ```
/// use procring::Queue;
///
/// let q = Queue::<u64>::new(8)?; // in-process; `create`/`open` for a named one
/// let q2 = q.clone();
/// std::thread::spawn(move || q2.send(42)).join().unwrap()?;
/// assert_eq!(q.recv()?, 42);
/// q.close();
/// assert!(q.recv().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Queue<T> {
    shared: Arc<Shared>,
    wait: Wait,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Self { shared: self.shared.clone(), wait: self.wait, _t: PhantomData }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ring = &self.shared.ring;
        f.debug_struct("Queue").field("capacity", &ring.capacity()).field("len", &ring.len()).finish()
    }
}

fn geometry<T>() -> Geometry {
    Geometry { size: std::mem::size_of::<T>(), align: std::mem::align_of::<T>() }
}

impl<T: Pod> Queue<T> {
    fn with(shared: Shared, wait: Wait) -> Self {
        Self { shared: Arc::new(shared), wait, _t: PhantomData }
    }

    /// An in-process queue (threads of this process only), on the heap.
    ///
    /// # Errors
    /// [`CreateError::InvalidCapacity`] unless `capacity` is a power of two,
    /// [`CreateError::UnsupportedType`] for a zero-sized `T`.
    pub fn new(capacity: usize) -> Result<Self, CreateError> {
        crate::memory::check_element::<T>()?;
        let cap = check_capacity(capacity)?;
        Ok(Self::with(Shared::heap(geometry::<T>(), cap), Wait { spin: crate::Options::DEFAULT_SPIN, slice: None }))
    }

    #[inline(always)]
    fn ring(&self) -> &Mpmc {
        &self.shared.ring
    }

    /// Messages in the queue (a snapshot).
    pub fn len(&self) -> usize {
        self.ring().len() as usize
    }

    /// Whether the queue holds no message (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue has no free slot (a snapshot).
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }

    /// Slots in the queue.
    pub fn capacity(&self) -> usize {
        self.ring().capacity() as usize
    }

    /// Closes the queue for every handle in every process: sends fail from
    /// now on, receivers drain what was sent and then get a disconnection
    /// error, and every blocked call is woken to see it. Returns whether this
    /// call closed it (`false`: it was closed already).
    pub fn close(&self) -> bool {
        self.ring().close()
    }

    /// Whether the queue is closed.
    pub fn is_closed(&self) -> bool {
        self.ring().is_closed()
    }

    /// Slots that receivers passed over because a sender claimed them for
    /// zero-copy writing and dropped the guard uncommitted.
    pub fn skipped(&self) -> u64 {
        self.ring().skipped()
    }

    /// Claims resolved because the process that made them died: a sender
    /// killed between claiming a slot and publishing it (the slot is
    /// skipped, never delivered half-written), or a receiver killed between
    /// claiming a message and releasing its slot (the message went with it).
    pub fn abandoned(&self) -> u64 {
        self.ring().abandoned()
    }

    /// Sets how many spin-loop steps this handle's blocked calls spin before
    /// they sleep; `u32::MAX` never sleeps.
    pub fn set_spin(&mut self, spin: u32) {
        self.wait.spin = spin;
    }

    #[inline(always)]
    fn write_publish(&self, pos: Claim, value: T) {
        let payload = self.ring().payload_mut(pos);
        #[cfg(not(procring_bug = "queue_seq_before_write"))]
        {
            // SAFETY: we claimed `pos`: its payload is ours until we publish,
            // and it is aligned and sized for `T` (the ring's geometry).
            unsafe { payload.ptr.cast::<T>().write(value) };
            payload.end();
            self.ring().publish(pos, true);
        }
        #[cfg(procring_bug = "queue_seq_before_write")]
        {
            self.ring().publish(pos, true);
            // SAFETY: none: this is the planted bug the loom models must catch.
            unsafe { payload.ptr.cast::<T>().write(value) };
            payload.end();
        }
    }

    /// Sends `value` if there is room now.
    ///
    /// # Errors
    /// [`TrySendError::Full`] or [`TrySendError::Disconnected`] (closed),
    /// both handing `value` back.
    #[inline]
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        match self.ring().try_claim_send() {
            Ok(pos) => {
                self.write_publish(pos, value);
                Ok(())
            }
            Err(Stop::NotNow) => Err(TrySendError::Full(value)),
            Err(_) => Err(TrySendError::Disconnected(value)),
        }
    }

    /// Sends `value`, waiting for room as long as it takes.
    ///
    /// # Errors
    /// [`SendError`] (with `value`) if the queue is closed.
    #[inline]
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        // The first try inline, as the SPSC ring's `send`: the value goes
        // straight into its slot, not through the waiting function's argument.
        match self.try_send(value) {
            Err(TrySendError::Full(v)) => self.send_deadline(v, None).map_err(blocking),
            other => other.map_err(|e| SendError(e.into_inner())),
        }
    }

    /// Sends `value`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`] or [`SendTimeoutError::Disconnected`]
    /// (closed), both handing `value` back.
    pub fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        match self.try_send(value) {
            Err(TrySendError::Full(v)) => self.send_deadline(v, Instant::now().checked_add(timeout)),
            other => other.map_err(|e| SendTimeoutError::Disconnected(e.into_inner())),
        }
    }

    /// Sends `value`, waiting for room until `deadline` (`None`: no limit).
    ///
    /// # Errors
    /// As [`Queue::send_timeout`].
    pub fn send_deadline(&self, value: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        match self.ring().claim_send(&self.wait, Limit::at(deadline)) {
            Ok(pos) => {
                self.write_publish(pos, value);
                Ok(())
            }
            Err(stop) => Err(send_err(stop, value)),
        }
    }

    /// Receives a message if one is ready now.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`], [`TryRecvError::Disconnected`] (closed and
    /// drained), or [`TryRecvError::Corrupt`].
    #[inline]
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        // All the copying receives copy out of a `RecvRef` straight into the
        // `Result` they return. Read into a local before the slot is
        // released, a 4 KiB message was copied a second time.
        self.try_recv_in_call().map(|m| *m)
    }

    /// Receives a message, waiting as long as it takes.
    ///
    /// # Errors
    /// [`RecvError::Disconnected`] once the queue is closed and drained.
    #[inline]
    pub fn recv(&self) -> Result<T, RecvError> {
        // Not through `recv_within`: its `Result` mapped to this error type
        // would be a second copy of the message.
        match self.recv_ref_within(Limit::Never) {
            Ok(m) => Ok(*m),
            Err(e) => Err(recv_blocking(e)),
        }
    }

    /// Receives a message, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`], or as [`Queue::recv`].
    #[inline]
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_within(Limit::After(timeout))
    }

    /// Receives a message, waiting until `deadline` (`None`: no limit).
    ///
    /// # Errors
    /// As [`Queue::recv_timeout`].
    #[inline]
    pub fn recv_deadline(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        self.recv_within(Limit::at(deadline))
    }

    #[inline(always)]
    fn recv_within(&self, limit: Limit) -> Result<T, RecvTimeoutError> {
        self.recv_ref_within(limit).map(|m| *m)
    }

    /// Zero-copy send: claims a slot to write in place; [`SendSlot::commit`]
    /// sends it. A guard dropped uncommitted sends nothing (receivers pass
    /// the slot over; [`Queue::skipped`] counts it).
    ///
    /// # Errors
    /// As [`Queue::try_send`], without a value to hand back.
    pub fn try_reserve(&self) -> Result<SendSlot<'_, T>, TrySendError<()>> {
        match self.ring().try_claim_send() {
            Ok(pos) => Ok(SendSlot::new(self, pos)),
            Err(Stop::NotNow) => Err(TrySendError::Full(())),
            Err(_) => Err(TrySendError::Disconnected(())),
        }
    }

    /// Zero-copy send, waiting for a slot as long as it takes.
    ///
    /// # Errors
    /// [`SendError`] if the queue is closed.
    pub fn reserve(&self) -> Result<SendSlot<'_, T>, SendError<()>> {
        self.reserve_within(Limit::Never).map_err(blocking)
    }

    /// Zero-copy send, waiting at most `timeout` for a slot.
    ///
    /// # Errors
    /// As [`Queue::send_timeout`].
    pub fn reserve_timeout(&self, timeout: Duration) -> Result<SendSlot<'_, T>, SendTimeoutError<()>> {
        self.reserve_within(Limit::After(timeout))
    }

    fn reserve_within(&self, limit: Limit) -> Result<SendSlot<'_, T>, SendTimeoutError<()>> {
        match self.ring().claim_send(&self.wait, limit) {
            Ok(pos) => Ok(SendSlot::new(self, pos)),
            Err(stop) => Err(send_err(stop, ())),
        }
    }

    /// Zero-copy receive: the next message, read in place; its slot is
    /// released when the guard drops.
    ///
    /// # Errors
    /// As [`Queue::try_recv`].
    #[inline]
    pub fn try_recv_ref(&self) -> Result<RecvRef<'_, T>, TryRecvError> {
        self.try_recv_in_call().map(RecvRef::held)
    }

    /// Zero-copy receive, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`Queue::recv`].
    pub fn recv_ref(&self) -> Result<RecvRef<'_, T>, RecvError> {
        self.recv_ref_within(Limit::Never).map(RecvRef::held).map_err(recv_blocking)
    }

    /// Zero-copy receive, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Queue::recv_timeout`].
    pub fn recv_ref_timeout(&self, timeout: Duration) -> Result<RecvRef<'_, T>, RecvTimeoutError> {
        self.recv_ref_within(Limit::After(timeout)).map(RecvRef::held)
    }

    /// A message read in place, for a guard dropped within the call that
    /// made it (see [`RecvRef::held`]).
    #[inline(always)]
    fn try_recv_in_call(&self) -> Result<RecvRef<'_, T>, TryRecvError> {
        match self.ring().try_claim_recv() {
            Ok(pos) => Ok(RecvRef::new(self, pos)),
            Err(stop) => Err(try_recv_err(stop)),
        }
    }

    /// As [`Queue::try_recv_in_call`], waiting up to `limit`.
    #[inline(always)]
    fn recv_ref_within(&self, limit: Limit) -> Result<RecvRef<'_, T>, RecvTimeoutError> {
        let pos = self.ring().claim_recv(&self.wait, limit).map_err(recv_err)?;
        Ok(RecvRef::new(self, pos))
    }

    /// Sends as many of `items` as fit now; returns how many (at least one
    /// unless `items` is empty).
    ///
    /// # Errors
    /// [`TrySendError::Full`] if none fit, [`TrySendError::Disconnected`]
    /// if the queue is closed (before anything was sent).
    pub fn try_send_batch(&self, items: &[T]) -> Result<usize, TrySendError<()>> {
        for (sent, item) in items.iter().enumerate() {
            match self.try_send(*item) {
                Ok(()) => {}
                Err(_) if sent > 0 => return Ok(sent),
                Err(e) => return Err(e.map(|_| ())),
            }
        }
        Ok(items.len())
    }

    /// Sends all of `items` in order, waiting for room as needed.
    ///
    /// # Errors
    /// [`SendError`] with how many were sent before the queue was closed.
    pub fn send_batch(&self, items: &[T]) -> Result<(), SendError<usize>> {
        for (sent, item) in items.iter().enumerate() {
            self.send(*item).map_err(|_| SendError(sent))?;
        }
        Ok(())
    }

    /// Receives as many ready messages as fit in `out`; returns how many (at
    /// least one unless `out` is empty).
    ///
    /// # Errors
    /// As [`Queue::try_recv`], when nothing was received.
    pub fn try_recv_batch(&self, out: &mut [T]) -> Result<usize, TryRecvError> {
        for (n, slot) in out.iter_mut().enumerate() {
            match self.try_recv() {
                Ok(v) => *slot = v,
                Err(_) if n > 0 => return Ok(n),
                Err(e) => return Err(e),
            }
        }
        Ok(out.len())
    }

    /// Waits for one message, then receives as many more as are ready and
    /// fit in `out`; returns how many.
    ///
    /// # Errors
    /// As [`Queue::recv`].
    pub fn recv_batch(&self, out: &mut [T]) -> Result<usize, RecvError> {
        let Some(first) = out.first_mut() else { return Ok(0) };
        *first = self.recv()?;
        Ok(1 + self.try_recv_batch(&mut out[1..]).unwrap_or(0))
    }
}

impl<T> TrySendError<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> TrySendError<U> {
        match self {
            TrySendError::Full(t) => TrySendError::Full(f(t)),
            TrySendError::Disconnected(t) => TrySendError::Disconnected(f(t)),
        }
    }
}

#[cfg(not(loom))]
impl<T: Pod> Queue<T> {
    /// Creates a queue in a new segment named `name`. The name is removed
    /// when this handle (and its clones) drop, unless [`crate::Options::keep`].
    ///
    /// # Errors
    /// [`CreateError`]: a bad name or capacity, a name that exists, no
    /// permission, or a system error.
    pub fn create(name: &str, capacity: usize) -> Result<Self, CreateError> {
        Self::create_with(name, capacity, &crate::Options::new())
    }

    /// As [`Queue::create`], with [`crate::Options`].
    ///
    /// # Errors
    /// As [`Queue::create`].
    pub fn create_with(name: &str, capacity: usize, opts: &crate::Options) -> Result<Self, CreateError> {
        crate::memory::check_element::<T>()?;
        let cap = check_capacity(capacity)?;
        let shared = Shared::create(name, crate::layout::TypeInfo::of::<T>(), geometry::<T>(), cap, opts)?;
        Ok(Self::with(shared, Wait { spin: opts.spin, slice: Some(Wait::PEER_SLICE) }))
    }

    /// Opens the queue in segment `name`.
    ///
    /// # Errors
    /// [`crate::OpenError`]: no such segment, not a queue of `T`, or a
    /// corrupt or incompatible header.
    pub fn open(name: &str) -> Result<Self, crate::OpenError> {
        Self::open_with(name, &crate::Options::new())
    }

    /// As [`Queue::open`], with [`crate::Options`].
    ///
    /// # Errors
    /// As [`Queue::open`].
    pub fn open_with(name: &str, opts: &crate::Options) -> Result<Self, crate::OpenError> {
        let (shared, _) = Shared::open(name, crate::layout::TypeInfo::of::<T>(), opts)?;
        Ok(Self::with(shared, Wait { spin: opts.spin, slice: Some(Wait::PEER_SLICE) }))
    }
}

/// A slot claimed by [`Queue::reserve`]: write it in place, then
/// [`commit`](Self::commit). Dropped uncommitted, it sends nothing.
pub struct SendSlot<'a, T: Pod> {
    queue: &'a Queue<T>,
    pos: Claim,
    payload: Option<PayloadMut>,
}

impl<'a, T: Pod> SendSlot<'a, T> {
    /// A guard handed to the caller, which may keep it past the call: the
    /// claim holds its word (see `mpmc::Claims::hold`).
    fn new(queue: &'a Queue<T>, pos: Claim) -> Self {
        queue.ring().hold(pos);
        Self { queue, pos, payload: Some(queue.ring().payload_mut(pos)) }
    }

    /// Sends the slot's contents.
    pub fn commit(mut self) {
        if let Some(p) = self.payload.take() {
            p.end();
        }
        self.queue.ring().publish(self.pos, true);
    }

    fn ptr(&self) -> *mut T {
        self.payload.as_ref().map_or(std::ptr::null_mut(), |p| p.ptr.cast())
    }
}

impl<T: Pod> Drop for SendSlot<'_, T> {
    fn drop(&mut self) {
        if let Some(p) = self.payload.take() {
            p.end();
            self.queue.ring().publish(self.pos, false);
        }
    }
}

impl<T: Pod> Deref for SendSlot<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the slot is claimed by this guard alone until it is
        // published; aligned and sized for `T`; any bits are a valid `T`.
        unsafe { &*self.ptr() }
    }
}

impl<T: Pod> DerefMut for SendSlot<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this access unique.
        unsafe { &mut *self.ptr() }
    }
}

impl<T: Pod> fmt::Debug for SendSlot<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendSlot").field("pos", &self.pos).finish()
    }
}

/// A message read in place by [`Queue::recv_ref`]; its slot is released when
/// this guard drops.
pub struct RecvRef<'a, T: Pod> {
    queue: &'a Queue<T>,
    pos: Claim,
    payload: Option<PayloadRef>,
}

impl<'a, T: Pod> RecvRef<'a, T> {
    /// A guard for use within the call that made it (a copying receive).
    #[inline(always)]
    fn new(queue: &'a Queue<T>, pos: Claim) -> Self {
        Self { queue, pos, payload: Some(queue.ring().payload_ref(pos)) }
    }

    /// The guard handed to the caller, which may keep it past the call: the
    /// claim holds its word (see `mpmc::Claims::hold`).
    fn held(self) -> Self {
        self.queue.ring().hold(self.pos);
        self
    }
}

impl<T: Pod> Deref for RecvRef<'_, T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        let ptr = self.payload.as_ref().map_or(std::ptr::null(), |p| p.ptr.cast::<T>());
        // SAFETY: the slot is published and claimed by this guard alone until
        // it drops; aligned and sized for `T`; any bits are a valid `T`.
        unsafe { &*ptr }
    }
}

impl<T: Pod> Drop for RecvRef<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if let Some(p) = self.payload.take() {
            p.end();
        }
        self.queue.ring().release(self.pos);
    }
}

impl<T: Pod> fmt::Debug for RecvRef<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvRef").field("pos", &self.pos).finish()
    }
}
