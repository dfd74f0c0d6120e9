//! A bounded single-producer single-consumer ring (Lamport's, with cached
//! indices) over memory it is handed: a named segment, or the heap.
//!
//! # Protocol
//!
//! Shared state: `tail` (written only by the producer) and `head` (written
//! only by the consumer), both `u64` counters that only grow; slot `i` lives at
//! `i & (capacity - 1)`. Each slot also has a `stamp`, written only by the
//! producer: `pos + 1` once the message for position `pos` is in it. Each side
//! keeps its own position in process-local memory and a cached copy of the
//! other side's, and rereads the shared one only when the cached copy says
//! full (producer) or empty (consumer).
//!
//! **Invariant:** `head <= published <= head + capacity`, where `published`
//! is the first position whose slot's stamp is not yet `pos + 1`; `tail`
//! trails `published` by at most the messages being published now. Slots in
//! `head..published` hold published messages and belong to the consumer; all
//! others belong to the producer. A slot changes hands only by a store to its
//! stamp (producer → consumer) or to `head` (consumer → producer).
//!
//! Why two ways to publish: a consumer waiting for one message watches the
//! stamp in the slot it will read, so the message and the news of it travel
//! in one cache line (for messages up to 56 bytes) instead of two, one after
//! the other: a round trip costs about what a raw cache-line ping-pong costs.
//! A consumer that keeps finding messages ready reads `tail` instead, which
//! counts a whole run of them with one line transfer.
//!
//! # Memory ordering
//!
//! - The producer writes a slot, then stores its stamp with Release, then
//!   (after the last slot of a send) `tail` with Release; the consumer loads
//!   the stamp or `tail` with Acquire before reading the slot. So a message is
//!   never read before it is fully written.
//! - The consumer reads a slot, then stores `head` with Release; the producer
//!   loads `head` with Acquire before overwriting the slot. So a slot is never
//!   overwritten while it is being read (in place, through a [`RecvRef`]).
//! - After each store of a position, the storing side notifies the other
//!   side's eventcount ([`crate::wait`]), which is how a sleeper is woken.
//! - The peer slots ([`crate::peer`]) carry disconnection: a side leaving
//!   stores `GONE` with Release after its last position store.
//!
//! The positions are read from shared memory, so a corrupt or hostile peer
//! can write anything there. Slot indices are always masked, so no value can
//! lead outside the slot region; a `tail` more than `capacity` ahead of the
//! consumer's `head` is reported as [`RecvError::Corrupt`].

use std::fmt;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytemuck::Pod;
use crossbeam_utils::CachePadded;

use crate::error::{CreateError, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError};
use crate::peer::{Identity, PeerSlot, PeerState};
use crate::sync::{prefetch, spin_hint, AtomicU64, Barrier, ConstPtr, MutPtr, Ordering, UnsafeCell};

/// One slot of the ring: a message and the stamp that publishes it. The same
/// shape as a queue slot ([`super::mpmc::Geometry`]): the stamp, then the
/// message at `max(8, align_of::<T>())`, padded to that alignment.
#[repr(C)]
pub(crate) struct Slot<T> {
    /// `pos + 1` once the message for position `pos` is written; 0 in a
    /// fresh ring (position 0 expects 1, so no slot starts out published).
    stamp: AtomicU64,
    value: UnsafeCell<T>,
}

impl<T: Pod> Slot<T> {
    fn new() -> Self {
        Self { stamp: AtomicU64::new(0), value: UnsafeCell::new(T::zeroed()) }
    }
}

use crate::wait::{EventCount, Limit, Wait};

/// The ring's shared control block. In a segment it sits at `ctl_offset`.
///
/// | offset | field       | written by                  |
/// |-------:|-------------|-----------------------------|
/// |      0 | `tail`      | producer (every send)       |
/// |    128 | `head`      | consumer (every receive)    |
/// |    256 | `producer`, `consumer` peer slots | attach/detach only |
/// |    384 | `not_empty` | consumer sleeps, producer wakes |
/// |    512 | `not_full`  | producer sleeps, consumer wakes |
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Control {
    pub(crate) tail: CachePadded<AtomicU64>,
    pub(crate) head: CachePadded<AtomicU64>,
    pub(crate) peers: CachePadded<Peers>,
    pub(crate) not_empty: CachePadded<EventCount>,
    pub(crate) not_full: CachePadded<EventCount>,
}

#[repr(C)]
#[derive(Debug)]
pub(crate) struct Peers {
    pub(crate) producer: PeerSlot,
    pub(crate) consumer: PeerSlot,
}

#[cfg(all(not(loom), target_arch = "x86_64"))]
const _: () = {
    assert!(std::mem::size_of::<Control>() == 640);
    assert!(std::mem::offset_of!(Control, head) == 128);
    assert!(std::mem::offset_of!(Control, peers) == 256);
    assert!(std::mem::offset_of!(Control, not_empty) == 384);
    assert!(std::mem::offset_of!(Control, not_full) == 512);
};

impl Control {
    pub(crate) fn new() -> Self {
        Self {
            tail: CachePadded::new(AtomicU64::new(0)),
            head: CachePadded::new(AtomicU64::new(0)),
            peers: CachePadded::new(Peers { producer: PeerSlot::new(), consumer: PeerSlot::new() }),
            not_empty: CachePadded::new(EventCount::new()),
            not_full: CachePadded::new(EventCount::new()),
        }
    }

    pub(crate) fn peer(&self, role: Role) -> &PeerSlot {
        match role {
            Role::Producer => &self.peers.producer,
            Role::Consumer => &self.peers.consumer,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Producer,
    Consumer,
}

impl Role {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Producer => "producer",
            Role::Consumer => "consumer",
        }
    }

    /// The role's bits in a segment's attachment table.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn bits(self) -> u32 {
        match self {
            Role::Producer => crate::peer::role::SEND,
            Role::Consumer => crate::peer::role::RECV,
        }
    }
}

/// Default spin-loop steps before a blocked side sleeps.
pub(crate) const DEFAULT_SPIN: u32 = 1 << 12;

/// Both ends of an in-process ring share this allocation.
struct Heap<T> {
    ctl: Control,
    slots: Box<[Slot<T>]>,
}

// SAFETY: the two ends that share a `Heap` touch its slots only as the ring
// protocol allows (module invariant); everything else in it is atomic.
unsafe impl<T: Send> Send for Heap<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Heap<T> {}

/// What keeps a ring's memory alive.
enum Memory<T> {
    Heap(#[allow(dead_code)] Arc<Heap<T>>),
    #[cfg(not(loom))]
    Segment(#[allow(dead_code)] crate::memory::Memory),
}

/// One end's view of a ring: where the memory is and how to wait on it.
struct Ring<T> {
    ctl: NonNull<Control>,
    slots: NonNull<Slot<T>>,
    mask: u64,
    /// Messages the ring holds at most (at most `mask + 1`, see
    /// `ring::slots_for`): what the producer's room is measured against.
    bound: u64,
    barrier: Barrier,
    wait: Wait,
    _memory: Memory<T>,
}

impl<T> Ring<T> {
    #[inline(always)]
    fn ctl(&self) -> &Control {
        // SAFETY: `ctl` points into `_memory`, which lives as long as `self`;
        // a Control holds only atomics, so a shared reference is sound even
        // while other processes use it.
        unsafe { self.ctl.as_ref() }
    }

    #[inline(always)]
    fn slot(&self, pos: u64) -> &Slot<T> {
        // SAFETY: the index is masked to `0..=mask`, `slots` points to
        // `mask + 1` slots in `_memory` (alive as long as `self`), and a slot
        // is an atomic and an `UnsafeCell`, so sharing it is sound.
        unsafe { &*self.slots.as_ptr().add((pos & self.mask) as usize) }
    }

    /// Whether the message for `pos` is published, judged by its slot's stamp.
    #[inline(always)]
    fn stamped(&self, pos: u64) -> bool {
        // Acquire: pairs with the producer's Release store of the stamp; the
        // message was written before it.
        self.slot(pos).stamp.load(Ordering::Acquire) == pos.wrapping_add(1)
    }

    /// The last byte of the slot, for a prefetch (no access is made through
    /// it): the stamp's line is the one being polled, and for a message that
    /// spills into the next line this brings that line along.
    #[inline(always)]
    fn slot_end(&self, pos: u64) -> *const u8 {
        let slot = self.slots.as_ptr().wrapping_add((pos & self.mask) as usize);
        slot.cast::<u8>().wrapping_add(std::mem::size_of::<Slot<T>>() - 1)
    }

    #[inline(always)]
    fn capacity(&self) -> u64 {
        self.bound
    }

    fn len(&self) -> usize {
        // Acquire on both: a fresh view of both positions; only a hint, since
        // either may move at once.
        let head = self.ctl().head.load(Ordering::Acquire);
        let tail = self.ctl().tail.load(Ordering::Acquire);
        // A consumer that took a message by its stamp may be a little ahead
        // of `tail`: that reads as empty.
        match tail.wrapping_sub(head) {
            n if n > self.capacity() => 0,
            n => n as usize,
        }
    }
}

fn check_shape<T>(capacity: usize) -> Result<u64, CreateError> {
    crate::memory::check_element::<T>()?;
    crate::memory::check_bound(capacity)
}

/// Creates an in-process ring: both ends in this process, memory on the heap.
/// Useful between threads, in tests, and as the ring that loom models run.
///
/// # Errors
/// [`CreateError::InvalidCapacity`] for a capacity of 0 (any other up to
/// 2^40 is held exactly), [`CreateError::UnsupportedType`] for a zero-sized
/// `T`.
///
/// # Examples
/// ```
/// let (mut tx, mut rx) = procring::spsc::channel::<u64>(8)?;
/// tx.send(7)?;
/// assert_eq!(rx.recv()?, 7);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn channel<T: Pod + Send>(capacity: usize) -> Result<(Producer<T>, Consumer<T>), CreateError> {
    let cap = check_shape::<T>(capacity)?;
    let slots = super::slots_for(cap);
    let heap = Arc::new(Heap { ctl: Control::new(), slots: (0..slots).map(|_| Slot::new()).collect() });
    #[cfg(not(loom))]
    let barrier = if crate::sync::register_asymmetric() { Barrier::Asymmetric } else { Barrier::Symmetric };
    #[cfg(loom)]
    let barrier = Barrier::Symmetric;
    let (p, c) = (heap_ring(&heap, cap, barrier), heap_ring(&heap, cap, barrier));
    // Fresh slots: both attaches succeed.
    let _ = heap.ctl.peers.producer.attach(Identity::local());
    let _ = heap.ctl.peers.consumer.attach(Identity::local());
    Ok((Producer::new(p), Consumer::new(c)))
}

fn heap_ring<T>(heap: &Arc<Heap<T>>, bound: u64, barrier: Barrier) -> Ring<T> {
    Ring {
        ctl: NonNull::from(&heap.ctl),
        slots: NonNull::new(heap.slots.as_ptr().cast_mut()).expect("a boxed slice is never null"),
        mask: heap.slots.len() as u64 - 1,
        bound,
        barrier,
        wait: Wait { spin: DEFAULT_SPIN, slice: None },
        _memory: Memory::Heap(heap.clone()),
    }
}

// ---------------------------------------------------------------------------
// Producer
// ---------------------------------------------------------------------------

/// The sending end of an SPSC ring. One per ring; not `Clone`.
pub struct Producer<T> {
    ring: Ring<T>,
    /// Our position: the next slot to write. Mirrors the shared `tail`.
    tail: u64,
    /// The consumer's position as last read; refreshed only when it says full.
    head_view: HeadView,
}

/// The producer's process-local view of the consumer's position.
#[derive(Debug, Clone, Copy)]
struct HeadView {
    /// `head` as last read.
    head: u64,
    /// A run: rereads of `head` that found less than a batch free (the
    /// producer may be outrunning a saturated consumer).
    pacer: Pacer,
}

// SAFETY: the producer owns its role in the ring (the peer slot is taken, so
// no other producer exists); moving it to another thread moves that role.
// `T: Send` because values move through it.
unsafe impl<T: Send> Send for Producer<T> {}

/// Why a wait stopped without success.
enum Stop {
    Timeout,
    Disconnected,
}

/// Free room in the ring, rereading `head` only when the cached copy shows
/// less than `want` free slots.
#[inline(always)]
fn room(ctl: &Control, cap: u64, tail: u64, view: &mut HeadView, want: u64) -> u64 {
    let free = cap.saturating_sub(tail.wrapping_sub(view.head));
    if free >= want {
        return free;
    }
    let mut free = reread_head(ctl, cap, tail, &mut view.head);
    // The mirror of the consumer's stream detection: a producer that keeps
    // finding the ring nearly full lets the consumer free a run of slots.
    if view.pacer.pause(free, free >= want, STREAM_BATCH) {
        let before = free;
        free = reread_head(ctl, cap, tail, &mut view.head);
        view.pacer.paid(before, free, STREAM_BATCH);
    }
    view.pacer.note(free < STREAM_BATCH);
    free
}

#[inline(always)]
fn reread_head(ctl: &Control, cap: u64, tail: u64, head: &mut u64) -> u64 {
    // Acquire: pairs with the consumer's Release store of `head`; its reads
    // of the slots it freed happen before we overwrite them.
    *head = ctl.head.load(Ordering::Acquire);
    // A corrupt `head` (ahead of `tail`, or far behind) reads as "full".
    cap.saturating_sub(tail.wrapping_sub(*head))
}

impl<T: Pod> Producer<T> {
    fn new(ring: Ring<T>) -> Self {
        // Acquire: we may be re-attaching; continue after what was published.
        let mut tail = ring.ctl().tail.load(Ordering::Acquire);
        // A producer that died between stamping slots and storing `tail`
        // published messages the consumer may have taken already: continue
        // after the last stamped slot, and make `tail` count it.
        let start = tail;
        while tail.wrapping_sub(start) < ring.capacity() && ring.stamped(tail) {
            tail += 1;
        }
        if tail != start {
            // Release: as in `publish`.
            ring.ctl().tail.store(tail, Ordering::Release);
        }
        let head = ring.ctl().head.load(Ordering::Acquire);
        Self { ring, tail, head_view: HeadView { head, pacer: Pacer::default() } }
    }

    /// How many messages the ring holds (a snapshot; the consumer may be
    /// taking them as you look).
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether the ring holds no message.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the ring has no free slot.
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }

    /// Messages the ring holds at most: the capacity it was created with.
    pub fn capacity(&self) -> usize {
        self.ring.capacity() as usize
    }

    /// Whether the consumer has gone (dropped its end, or its process died).
    pub fn is_disconnected(&self) -> bool {
        self.ring.ctl().peers.consumer.state(true) == PeerState::Gone
    }

    /// The consumer's process id if its process died without dropping its
    /// end (a crash, SIGKILL, `exit`): the reason behind a `Disconnected`.
    /// `None` while it runs, and if it dropped its end.
    pub fn peer_died(&self) -> Option<u32> {
        self.ring.ctl().peers.consumer.died()
    }

    /// Sets how many spin-loop steps a blocked send spins before it sleeps;
    /// `u32::MAX` spins forever (busy-poll: lowest latency, one core busy).
    pub fn set_spin(&mut self, spin: u32) {
        self.ring.wait.spin = spin;
    }

    #[inline(always)]
    fn consumer_gone(&self, thorough: bool) -> bool {
        self.ring.ctl().peers.consumer.state(thorough) == PeerState::Gone
    }

    #[inline(always)]
    fn room(&mut self, want: u64) -> u64 {
        room(self.ring.ctl(), self.ring.capacity(), self.tail, &mut self.head_view, want)
    }

    /// Writes and stamps the slot for `pos`: from here the consumer may take
    /// it, though `tail` does not count it until [`Self::publish`].
    #[inline(always)]
    fn write(&self, pos: u64, value: T) {
        {
            let slot = self.ring.slot(pos).value.get_mut();
            // SAFETY: `pos` is in `tail..head + capacity`, a slot the producer
            // owns (module invariant): nobody else reads or writes it now.
            unsafe { *slot.deref() = value };
        }
        self.stamp(pos);
    }

    /// Hands the written slot for `pos` to the consumer.
    #[inline(always)]
    fn stamp(&self, pos: u64) {
        // Release: pairs with the consumer's Acquire load of the stamp; the
        // message written before is visible to it.
        self.ring.slot(pos).stamp.store(pos.wrapping_add(1), Ordering::Release);
    }

    #[inline(always)]
    fn publish(&mut self, new_tail: u64) {
        self.tail = new_tail;
        // Release: pairs with the consumer's Acquire load of `tail`; the slot
        // writes before this store are visible to it. The eventcount's
        // barrier in `notify` comes after the stamps too, so a consumer about
        // to sleep sees either them or our wake-up.
        self.ring.ctl().tail.store(new_tail, Ordering::Release);
        self.ring.ctl().not_empty.notify(self.ring.barrier);
    }

    /// Waits until there is room (`Ok`), the consumer is gone, or `deadline`.
    fn wait_room(&mut self, deadline: Option<Instant>) -> Result<u64, Stop> {
        let Self { ring, tail, head_view } = self;
        let (ctl, cap, tail) = (ring.ctl(), ring.capacity(), *tail);
        let outcome = ctl.not_full.wait_until(ring.barrier, &ring.wait, deadline, |thorough| {
            if ctl.peers.consumer.state(thorough) == PeerState::Gone {
                return Some(Err(Stop::Disconnected));
            }
            match room(ctl, cap, tail, head_view, 1) {
                0 => None,
                n => Some(Ok(n)),
            }
        });
        outcome.unwrap_or(Err(Stop::Timeout))
    }

    /// Sends `value` if there is room now.
    ///
    /// # Errors
    /// [`TrySendError::Full`] if the ring is full, [`TrySendError::Disconnected`]
    /// if the consumer is gone; both hand `value` back.
    #[inline]
    pub fn try_send(&mut self, value: T) -> Result<(), TrySendError<T>> {
        if self.consumer_gone(false) {
            return Err(TrySendError::Disconnected(value));
        }
        if self.room(1) == 0 {
            return Err(TrySendError::Full(value));
        }
        self.write_publish(value);
        Ok(())
    }

    #[inline(always)]
    fn write_publish(&mut self, value: T) {
        #[cfg(not(procring_bug = "publish_before_write"))]
        {
            self.write(self.tail, value);
            self.publish(self.tail + 1);
        }
        #[cfg(procring_bug = "publish_before_write")]
        {
            let pos = self.tail;
            self.stamp(pos);
            self.publish(pos + 1);
            let slot = self.ring.slot(pos).value.get_mut();
            // SAFETY: none: this is the planted bug the loom models must catch.
            unsafe { *slot.deref() = value };
        }
    }

    /// Sends `value`, waiting for room as long as it takes.
    ///
    /// # Errors
    /// [`SendError`] (with `value`) if the consumer is gone.
    #[inline]
    pub fn send(&mut self, value: T) -> Result<(), SendError<T>> {
        // The first try inline: the value goes straight into its slot, not
        // through the waiting function's argument (about 3 ns a round trip).
        match self.try_send(value) {
            Ok(()) => Ok(()),
            Err(TrySendError::Disconnected(v)) => Err(SendError(v)),
            Err(TrySendError::Full(v)) => self.send_deadline(v, None).map_err(|e| SendError(e.into_inner())),
        }
    }

    /// Sends `value`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`] if the ring stayed full,
    /// [`SendTimeoutError::Disconnected`] if the consumer is gone.
    pub fn send_timeout(&mut self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        // Read the clock only if we have to wait.
        match self.try_send(value) {
            Ok(()) => Ok(()),
            Err(TrySendError::Disconnected(v)) => Err(SendTimeoutError::Disconnected(v)),
            Err(TrySendError::Full(v)) => self.send_deadline(v, Instant::now().checked_add(timeout)),
        }
    }

    /// Sends `value`, waiting for room until `deadline` (`None`: no limit).
    ///
    /// # Errors
    /// As [`Producer::send_timeout`].
    pub fn send_deadline(&mut self, value: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        match self.try_send(value) {
            Ok(()) => Ok(()),
            Err(TrySendError::Disconnected(v)) => Err(SendTimeoutError::Disconnected(v)),
            Err(TrySendError::Full(v)) => match self.wait_room(deadline) {
                Ok(_) => {
                    self.write_publish(v);
                    Ok(())
                }
                Err(Stop::Timeout) => Err(SendTimeoutError::Timeout(v)),
                Err(Stop::Disconnected) => Err(SendTimeoutError::Disconnected(v)),
            },
        }
    }

    fn slot_guard(&mut self) -> SendSlot<'_, T> {
        let ptr = self.ring.slot(self.tail).value.get_mut();
        SendSlot { producer: self, ptr }
    }

    /// Zero-copy send: the next free slot, to write in place and then
    /// [`commit`](SendSlot::commit). Dropping the guard without committing
    /// publishes nothing. The slot holds whatever it held before (a `Pod`
    /// value): overwrite what you need.
    ///
    /// # Errors
    /// As [`Producer::try_send`], without a value to hand back.
    pub fn try_reserve(&mut self) -> Result<SendSlot<'_, T>, TrySendError<()>> {
        if self.consumer_gone(false) {
            return Err(TrySendError::Disconnected(()));
        }
        if self.room(1) == 0 {
            return Err(TrySendError::Full(()));
        }
        Ok(self.slot_guard())
    }

    /// Zero-copy send, waiting for a free slot as long as it takes.
    ///
    /// # Errors
    /// [`SendError`] if the consumer is gone.
    ///
    /// # Examples
    /// ```
    /// let (mut tx, mut rx) = procring::spsc::channel::<[u64; 8]>(4)?;
    /// let mut slot = tx.reserve()?;
    /// slot[0] = 42;
    /// slot.commit();
    /// assert_eq!(rx.recv_ref()?[0], 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reserve(&mut self) -> Result<SendSlot<'_, T>, SendError<()>> {
        self.reserve_within(Limit::Never).map_err(|_| SendError(()))
    }

    /// Zero-copy send, waiting at most `timeout` for a free slot.
    ///
    /// # Errors
    /// As [`Producer::send_timeout`].
    pub fn reserve_timeout(&mut self, timeout: Duration) -> Result<SendSlot<'_, T>, SendTimeoutError<()>> {
        self.reserve_within(Limit::After(timeout))
    }

    fn reserve_within(&mut self, limit: Limit) -> Result<SendSlot<'_, T>, SendTimeoutError<()>> {
        match self.try_reserve() {
            Ok(_) => {}
            Err(TrySendError::Disconnected(())) => return Err(SendTimeoutError::Disconnected(())),
            Err(TrySendError::Full(())) => match self.wait_room(limit.deadline()) {
                Ok(_) => {}
                Err(Stop::Timeout) => return Err(SendTimeoutError::Timeout(())),
                Err(Stop::Disconnected) => return Err(SendTimeoutError::Disconnected(())),
            },
        }
        Ok(self.slot_guard())
    }

    /// Sends as many of `items` as fit now, with one publish. Returns how
    /// many were sent (at least one, unless `items` is empty).
    ///
    /// # Errors
    /// [`TrySendError::Full`] if not even one fits,
    /// [`TrySendError::Disconnected`] if the consumer is gone.
    pub fn try_send_batch(&mut self, items: &[T]) -> Result<usize, TrySendError<()>> {
        if self.consumer_gone(false) {
            return Err(TrySendError::Disconnected(()));
        }
        if items.is_empty() {
            return Ok(0);
        }
        let n = (self.room(items.len() as u64) as usize).min(items.len());
        if n == 0 {
            return Err(TrySendError::Full(()));
        }
        self.write_batch(&items[..n]);
        Ok(n)
    }

    fn write_batch(&mut self, items: &[T]) {
        for (i, item) in items.iter().enumerate() {
            self.write(self.tail + i as u64, *item);
        }
        self.publish(self.tail + items.len() as u64);
    }

    /// Sends all of `items`, waiting for room as needed; each run of free
    /// slots is filled and published at once.
    ///
    /// # Errors
    /// [`SendError`] with the number of items sent before the consumer went.
    pub fn send_batch(&mut self, items: &[T]) -> Result<(), SendError<usize>> {
        self.send_batch_within(items, Limit::Never).map_err(|e| SendError(e.into_inner()))
    }

    /// Sends all of `items`, waiting at most `timeout` in all.
    ///
    /// # Errors
    /// [`SendTimeoutError`] with the number of items sent before it stopped.
    pub fn send_batch_timeout(&mut self, items: &[T], timeout: Duration) -> Result<(), SendTimeoutError<usize>> {
        self.send_batch_within(items, Limit::After(timeout))
    }

    fn send_batch_within(&mut self, items: &[T], mut limit: Limit) -> Result<(), SendTimeoutError<usize>> {
        let mut sent = 0;
        while sent < items.len() {
            match self.try_send_batch(&items[sent..]) {
                Ok(n) => sent += n,
                Err(TrySendError::Disconnected(())) => return Err(SendTimeoutError::Disconnected(sent)),
                Err(TrySendError::Full(())) => {
                    // The first wait fixes the deadline for all the others.
                    let deadline = limit.deadline();
                    limit = Limit::at(deadline);
                    match self.wait_room(deadline) {
                        Ok(_) => {}
                        Err(Stop::Timeout) => return Err(SendTimeoutError::Timeout(sent)),
                        Err(Stop::Disconnected) => return Err(SendTimeoutError::Disconnected(sent)),
                    }
                }
            }
        }
        Ok(())
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        let ctl = self.ring.ctl();
        ctl.peers.producer.detach();
        // Wake a consumer asleep on an empty ring, so it sees "disconnected".
        ctl.not_empty.notify(self.ring.barrier);
    }
}

impl<T> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer").field("capacity", &self.ring.capacity()).field("tail", &self.tail).finish()
    }
}

/// A slot reserved by [`Producer::reserve`]: write it in place, then
/// [`commit`](Self::commit) to send it. Dropped uncommitted, it sends nothing.
pub struct SendSlot<'a, T: Pod> {
    producer: &'a mut Producer<T>,
    ptr: MutPtr<T>,
}

impl<T: Pod> SendSlot<'_, T> {
    /// Publishes the slot to the consumer.
    pub fn commit(self) {
        let SendSlot { producer, ptr } = self;
        // Our access to the slot ends before the consumer's can begin (under
        // loom this drop is what ends the tracked access).
        #[allow(clippy::drop_non_drop)]
        drop(ptr);
        producer.stamp(producer.tail);
        producer.publish(producer.tail + 1);
    }
}

impl<T: Pod> Deref for SendSlot<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the slot is in the producer's part of the ring (room was
        // checked) and the guard borrows the producer mutably, so this is the
        // only access until `commit`.
        unsafe { self.ptr.deref() }
    }
}

impl<T: Pod> DerefMut for SendSlot<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this access unique.
        unsafe { self.ptr.deref() }
    }
}

impl<T: Pod> fmt::Debug for SendSlot<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendSlot").field("pos", &self.producer.tail).finish()
    }
}

// ---------------------------------------------------------------------------
// Consumer
// ---------------------------------------------------------------------------

/// The receiving end of an SPSC ring. One per ring; not `Clone`.
pub struct Consumer<T> {
    ring: Ring<T>,
    /// Our position: the next slot to read. Mirrors the shared `head`.
    head: u64,
    /// The producer's position as last read; refreshed only when it says empty.
    tail_view: TailView,
}

// SAFETY: as for `Producer`: the consumer owns its role in the ring.
unsafe impl<T: Send> Send for Consumer<T> {}

/// The consumer's process-local view of the producer's position.
#[derive(Debug, Clone, Copy)]
struct TailView {
    /// `tail` as last read.
    tail: u64,
    /// A run: rereads of `tail` that found new messages (none found the ring
    /// empty), so the consumer may be keeping up with a saturated stream.
    pacer: Pacer,
    /// The last reread of `tail` found nothing: until a message comes, watch
    /// the next slot's stamp instead of `tail`.
    empty: bool,
}

/// Stream detection, for a side that rereads the other side's position:
/// each reread takes that line from the other side and costs it its next
/// store there. When rereads keep finding less than a batch, the next one
/// waits [`STREAM_PAUSE`] and reads again, so the other side gets a run done
/// per transfer; a pause that does not pay turns pausing off for a while:
/// [`STREAM_COOLDOWN_MIN`] rereads, doubling with each pause in a row that
/// does not pay, up to [`STREAM_COOLDOWN`]. The caller rereads; this keeps
/// the count. Used by both ends of the SPSC ring and of the pipe
/// (`super::bytes`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Pacer {
    /// Consecutive rereads that continued a run (the caller says what that is).
    streak: u32,
    /// Rereads left before pausing is tried again.
    cooldown: u32,
    /// The cooldown the last pause that did not pay set: doubled by each
    /// one that does not pay, back to none by one that does.
    backoff: u32,
}

impl Pacer {
    /// The state packed in a word, for a pacer that threads share (the
    /// queue's producers in a process).
    pub(crate) fn to_bits(self) -> u64 {
        let field = |v: u32| u64::from(v.min(FIELD));
        field(self.streak) | field(self.cooldown) << 21 | field(self.backoff) << 42
    }

    /// The state [`Pacer::to_bits`] packed.
    pub(crate) fn from_bits(bits: u64) -> Self {
        let field = |shift: u32| ((bits >> shift) & u64::from(FIELD)) as u32;
        Self { streak: field(0), cooldown: field(21), backoff: field(42) }
    }

    /// After a reread found `got` (messages, slots or bytes), of which the
    /// caller could use some (`usable`): whether to reread once more, after
    /// the pause this spends. True when `got` is under `batch` and the
    /// rereads before continued a run, unless pausing is cooling down.
    #[inline(always)]
    pub(crate) fn pause(&mut self, got: u64, usable: bool, batch: u64) -> bool {
        if self.cooldown > 0 {
            self.cooldown -= 1;
            return false;
        }
        if !usable || got >= batch || self.streak < STREAM_STREAK {
            return false;
        }
        stream_pause();
        true
    }

    /// After the reread that followed a pause: pausing stays on only if the
    /// count grew by at least `paid`.
    #[inline(always)]
    pub(crate) fn paid(&mut self, before: u64, now: u64, paid: u64) {
        if now.saturating_sub(before) < paid {
            self.backoff = (self.backoff * 2).clamp(STREAM_COOLDOWN_MIN, STREAM_COOLDOWN);
            self.cooldown = self.backoff;
        } else {
            self.backoff = 0;
        }
    }

    /// Records whether the last reread continued a run.
    #[inline(always)]
    pub(crate) fn note(&mut self, continues: bool) {
        self.streak = if continues { self.streak.saturating_add(1) } else { 0 };
    }
}

/// The largest value of a packed [`Pacer`] field (21 bits): a streak
/// saturates there, and cooldowns never reach it.
const FIELD: u32 = (1 << 21) - 1;

/// Spins [`STREAM_PAUSE`] steps: the time a side lets the other get a run
/// done before it takes a shared line from it again.
#[inline]
pub(crate) fn stream_pause() {
    for _ in 0..STREAM_PAUSE {
        spin_hint();
    }
}

/// In a saturated stream, a producer's reread that finds room for fewer
/// than this many messages waits [`STREAM_PAUSE`] and reads again; so does
/// a consumer's that finds fewer than [`READ_BATCH`]. A pause pays (pacing
/// stays on) if it gains at least this many.
pub(crate) const STREAM_BATCH: u64 = 8;
/// A streaming consumer's batch: it takes the `tail` line from the producer
/// about once per this many messages. Each time costs the producer a line
/// transfer on its next `tail` store (250-500 ns in the far placement here),
/// and a store buffer that fills behind it. With a batch of 8, a pipe
/// reader that kept up with its writer reread `tail` every 15-20 messages
/// and held 64-byte streams to 18-23 M msgs/s; with 64, 30-44 M (and the
/// SPSC ring's from 30-46 M to 45-61 M, in alternated rounds).
pub(crate) const READ_BATCH: u64 = 64;
/// Consecutive non-empty rereads that make a stream.
const STREAM_STREAK: u32 = 2;
/// Spin-loop steps (≈1 µs here) a streaming consumer lets the producer run
/// ahead before it takes the `tail` line from it again. Every read of `tail`
/// costs the producer its next store to that line, so a consumer that keeps
/// up message by message slows the producer to one line transfer per
/// message; this lets it publish a run of them per transfer instead (8-byte
/// streams: ~24 → ~46 M msgs/s). A consumer that finds the ring empty
/// resets the streak, so request/response traffic never waits here.
const STREAM_PAUSE: u32 = 64;
/// The longest cooldown, in rereads without pausing: a producer that is not
/// saturated (in this thread, or just slow) costs one wasted pause per this
/// many rereads, once its pauses have failed seven times in a row.
const STREAM_COOLDOWN: u32 = 1024;
/// The cooldown after a pause that did not pay when the one before paid. A
/// stream whose pause fails now and then is paced again soon; a consumer
/// in lock-step with its producer (whose every pause fails) reaches
/// [`STREAM_COOLDOWN`] after seven pauses. With a flat 1024, 64-byte SPSC
/// streams fell to 18-25 M msgs/s in some rounds (an unpaced ring's rate).
const STREAM_COOLDOWN_MIN: u32 = 16;

/// Messages ready to read: the cached count if it reaches `want`; else, if
/// `tail` last said empty, the next slot's stamp (one message, or none);
/// else `tail`.
#[inline(always)]
fn available<T>(ring: &Ring<T>, head: u64, view: &mut TailView, want: u64) -> Result<u64, RecvError> {
    let avail = view.tail.wrapping_sub(head);
    if avail >= want {
        return Ok(avail);
    }
    let mut stamped = false;
    if view.empty {
        // `tail` said empty: watch the line the message itself arrives in.
        if !ring.stamped(head) {
            return Ok(0);
        }
        view.empty = false;
        if want == 1 {
            view.tail = head + 1;
            return Ok(1);
        }
        // A batch: `tail` tells how many more there are.
        stamped = true;
    }
    let (ctl, cap) = (ring.ctl(), ring.capacity());
    let mut avail = published(ctl, cap, head)?;
    if view.pacer.pause(avail, avail != 0, READ_BATCH) {
        let before = avail;
        avail = published(ctl, cap, head)?;
        view.pacer.paid(before, avail, STREAM_BATCH);
    }
    // `tail` may not count a message we saw stamped yet.
    let avail = avail.max(u64::from(stamped));
    view.empty = avail == 0;
    view.pacer.note(avail != 0);
    view.tail = head + avail;
    Ok(avail)
}

/// Messages `tail` counts as published after `head`.
#[inline(always)]
fn published(ctl: &Control, cap: u64, head: u64) -> Result<u64, RecvError> {
    // Acquire: pairs with the producer's Release store of `tail`; the slots
    // it counts are fully written before we read them.
    let tail = ctl.tail.load(Ordering::Acquire);
    match tail.wrapping_sub(head) {
        n if n <= cap => Ok(n),
        // Behind us: we took messages by their stamps before `tail` counted
        // them (it trails by at most a capacity).
        #[cfg(not(procring_bug = "spsc_tail_lag_is_corrupt"))]
        _ if head.wrapping_sub(tail) <= cap => Ok(0),
        _ => Err(RecvError::Corrupt("the producer's position is more than the capacity ahead of the consumer's")),
    }
}

impl<T: Pod> Consumer<T> {
    fn new(ring: Ring<T>) -> Self {
        // Acquire: we may be re-attaching; continue after what was consumed.
        let head = ring.ctl().head.load(Ordering::Acquire);
        Self { ring, head, tail_view: TailView { tail: head, pacer: Pacer::default(), empty: false } }
    }

    /// How many messages the ring holds (a snapshot).
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether the ring holds no message.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the ring has no free slot.
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }

    /// Messages the ring holds at most: the capacity it was created with.
    pub fn capacity(&self) -> usize {
        self.ring.capacity() as usize
    }

    /// Whether the producer has gone (dropped its end, or its process died).
    /// Messages it sent before going can still be received.
    pub fn is_disconnected(&self) -> bool {
        self.ring.ctl().peers.producer.state(true) == PeerState::Gone
    }

    /// The producer's process id if its process died without dropping its
    /// end (a crash, SIGKILL, `exit`): the reason behind a `Disconnected`.
    /// `None` while it runs, and if it dropped its end.
    pub fn peer_died(&self) -> Option<u32> {
        self.ring.ctl().peers.producer.died()
    }

    /// Sets how many spin-loop steps a blocked receive spins before it
    /// sleeps; `u32::MAX` spins forever (busy-poll).
    pub fn set_spin(&mut self, spin: u32) {
        self.ring.wait.spin = spin;
    }

    /// `Some(Ok(n))` with messages ready, `Some(Err)` if none will come,
    /// `None` to keep waiting.
    fn poll(
        ring: &Ring<T>,
        head: u64,
        tail_view: &mut TailView,
        want: u64,
        thorough: bool,
    ) -> Option<Result<u64, RecvError>> {
        match available(ring, head, tail_view, want) {
            Ok(0) => prefetch(ring.slot_end(head)),
            other => return Some(other),
        }
        let ctl = ring.ctl();
        if ctl.peers.producer.state(thorough) != PeerState::Gone {
            return None;
        }
        // The producer stored its last `tail` before `GONE` (Release/Acquire
        // in `peer`): look once more, so nothing it sent is lost.
        match available(ring, head, tail_view, 1) {
            Ok(0) => Some(Err(RecvError::Disconnected)),
            other => Some(other),
        }
    }

    /// Waits until at least one message is ready, returning how many (the
    /// shared `tail` is reread if fewer than `want` are known to be ready).
    /// The clock is read only if the first look finds nothing.
    #[inline(always)]
    fn wait_ready(&mut self, want: u64, limit: Limit) -> Result<u64, RecvTimeoutError> {
        match Self::poll(&self.ring, self.head, &mut self.tail_view, want, false) {
            Some(r) => r.map_err(Into::into),
            None => self.wait_ready_slow(limit.deadline()),
        }
    }

    fn wait_ready_slow(&mut self, deadline: Option<Instant>) -> Result<u64, RecvTimeoutError> {
        let Self { ring, head, tail_view } = self;
        let head = *head;
        let outcome = ring
            .ctl()
            .not_empty
            .wait_until(ring.barrier, &ring.wait, deadline, |thorough| Self::poll(ring, head, tail_view, 1, thorough));
        match outcome {
            Some(r) => r.map_err(Into::into),
            None => Err(RecvTimeoutError::Timeout),
        }
    }

    #[inline(always)]
    fn read(&self, pos: u64) -> T {
        let slot = self.ring.slot(pos).value.get();
        // SAFETY: `pos` is in `head..published`, a published slot the consumer
        // owns (module invariant): the producer does not touch it now.
        unsafe { *slot.deref() }
    }

    #[inline(always)]
    fn release(&mut self, new_head: u64) {
        self.head = new_head;
        // Release: pairs with the producer's Acquire load of `head`; our reads
        // of the freed slots happen before it overwrites them.
        self.ring.ctl().head.store(new_head, Ordering::Release);
        self.ring.ctl().not_full.notify(self.ring.barrier);
    }

    /// Receives a message if one is ready now.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] if none is, [`TryRecvError::Disconnected`] if
    /// none will ever be (drained, producer gone), [`TryRecvError::Corrupt`]
    /// if the shared positions are impossible.
    #[inline]
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        match Self::poll(&self.ring, self.head, &mut self.tail_view, 1, false) {
            None => Err(TryRecvError::Empty),
            Some(Err(e)) => Err(e.into()),
            Some(Ok(_)) => {
                let v = self.read(self.head);
                self.release(self.head + 1);
                Ok(v)
            }
        }
    }

    /// Receives a message, waiting as long as it takes.
    ///
    /// # Errors
    /// [`RecvError::Disconnected`] once the ring is drained and the producer
    /// is gone; [`RecvError::Corrupt`] if the shared positions are impossible.
    #[inline]
    pub fn recv(&mut self) -> Result<T, RecvError> {
        self.recv_ref().map(|m| *m)
    }

    /// Receives a message, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`] if nothing came; otherwise as
    /// [`Consumer::recv`].
    #[inline]
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.ref_within(Limit::After(timeout)).map(|m| *m)
    }

    /// Receives a message, waiting until `deadline` (`None`: no limit).
    ///
    /// # Errors
    /// As [`Consumer::recv_timeout`].
    #[inline]
    pub fn recv_deadline(&mut self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        self.ref_within(Limit::at(deadline)).map(|m| *m)
    }

    /// Every blocking receive: one look, and a wait only if it found
    /// nothing; then a guard on the message in place. The copying receives
    /// copy out of the guard straight into the `Result` they return.
    /// (Copying out in here, into a `Result` with another error type that
    /// the caller then converted, cost about 12 ns a round trip between two
    /// processes.)
    #[inline(always)]
    fn ref_within(&mut self, limit: Limit) -> Result<RecvRef<'_, T>, RecvTimeoutError> {
        self.wait_ready(1, limit)?;
        Ok(self.ref_guard())
    }

    #[inline(always)]
    fn ref_guard(&mut self) -> RecvRef<'_, T> {
        let ptr = ManuallyDrop::new(self.ring.slot(self.head).value.get());
        RecvRef { consumer: self, ptr }
    }

    /// Zero-copy receive: the next message, read in place. Its slot goes back
    /// to the producer when the guard drops.
    ///
    /// # Errors
    /// As [`Consumer::try_recv`].
    pub fn try_recv_ref(&mut self) -> Result<RecvRef<'_, T>, TryRecvError> {
        match Self::poll(&self.ring, self.head, &mut self.tail_view, 1, false) {
            None => Err(TryRecvError::Empty),
            Some(Err(e)) => Err(e.into()),
            Some(Ok(_)) => Ok(self.ref_guard()),
        }
    }

    /// Zero-copy receive, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`Consumer::recv`].
    #[inline]
    pub fn recv_ref(&mut self) -> Result<RecvRef<'_, T>, RecvError> {
        self.ref_within(Limit::Never).map_err(|e| match e {
            RecvTimeoutError::Corrupt(w) => RecvError::Corrupt(w),
            _ => RecvError::Disconnected,
        })
    }

    /// Zero-copy receive, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Consumer::recv_timeout`].
    pub fn recv_ref_timeout(&mut self, timeout: Duration) -> Result<RecvRef<'_, T>, RecvTimeoutError> {
        self.ref_within(Limit::After(timeout))
    }

    fn read_batch(&mut self, ready: u64, out: &mut [T]) -> usize {
        let n = (ready as usize).min(out.len());
        for (i, o) in out[..n].iter_mut().enumerate() {
            *o = self.read(self.head + i as u64);
        }
        self.release(self.head + n as u64);
        n
    }

    /// Receives as many ready messages as fit in `out`, with one release.
    /// Returns how many (at least one, unless `out` is empty).
    ///
    /// # Errors
    /// As [`Consumer::try_recv`].
    pub fn try_recv_batch(&mut self, out: &mut [T]) -> Result<usize, TryRecvError> {
        if out.is_empty() {
            return Ok(0);
        }
        match Self::poll(&self.ring, self.head, &mut self.tail_view, out.len() as u64, false) {
            None => Err(TryRecvError::Empty),
            Some(Err(e)) => Err(e.into()),
            Some(Ok(ready)) => Ok(self.read_batch(ready, out)),
        }
    }

    /// Waits for at least one message, then receives as many ready messages
    /// as fit in `out`, with one release.
    ///
    /// # Errors
    /// As [`Consumer::recv`].
    pub fn recv_batch(&mut self, out: &mut [T]) -> Result<usize, RecvError> {
        if out.is_empty() {
            return Ok(0);
        }
        match self.wait_ready(out.len() as u64, Limit::Never) {
            Ok(ready) => Ok(self.read_batch(ready, out)),
            Err(RecvTimeoutError::Corrupt(w)) => Err(RecvError::Corrupt(w)),
            Err(_) => Err(RecvError::Disconnected),
        }
    }

    /// As [`Consumer::recv_batch`], waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Consumer::recv_timeout`].
    pub fn recv_batch_timeout(&mut self, out: &mut [T], timeout: Duration) -> Result<usize, RecvTimeoutError> {
        if out.is_empty() {
            return Ok(0);
        }
        let ready = self.wait_ready(out.len() as u64, Limit::After(timeout))?;
        Ok(self.read_batch(ready, out))
    }
}

impl<T: Pod> Consumer<T> {
    /// A blocking iterator over received messages; it ends once the
    /// producer is gone and the ring is drained.
    ///
    /// ```
    /// let (mut tx, mut rx) = procring::spsc::channel::<u32>(4)?;
    /// std::thread::spawn(move || (0..10).for_each(|i| tx.send(i).unwrap()));
    /// assert_eq!(rx.iter().sum::<u32>(), 45);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter(&mut self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator over the messages ready now; it ends at the first
    /// receive that would wait.
    pub fn try_iter(&mut self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }
}

/// A blocking iterator over a [`Consumer`]'s messages ([`Consumer::iter`]).
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a mut Consumer<T>,
}

impl<T: Pod> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// An iterator over the messages ready now ([`Consumer::try_iter`]).
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a mut Consumer<T>,
}

impl<T: Pod> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// A blocking iterator that owns its [`Consumer`].
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Consumer<T>,
}

impl<T: Pod> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<'a, T: Pod> IntoIterator for &'a mut Consumer<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T: Pod> IntoIterator for Consumer<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        let ctl = self.ring.ctl();
        ctl.peers.consumer.detach();
        // Wake a producer asleep on a full ring, so it sees "disconnected".
        ctl.not_full.notify(self.ring.barrier);
    }
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer").field("capacity", &self.ring.capacity()).field("head", &self.head).finish()
    }
}

/// A message read in place by [`Consumer::recv_ref`]; its slot is released
/// to the producer when this guard drops.
pub struct RecvRef<'a, T: Pod> {
    consumer: &'a mut Consumer<T>,
    ptr: ManuallyDrop<ConstPtr<T>>,
}

impl<T: Pod> Deref for RecvRef<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the slot is published and not yet released (it is in
        // `head..tail`), so the producer does not write it while we read.
        unsafe { ConstPtr::deref(&self.ptr) }
    }
}

impl<T: Pod> Drop for RecvRef<'_, T> {
    fn drop(&mut self) {
        // SAFETY: `ptr` is not used again; our access to the slot ends here,
        // before the release hands it back to the producer.
        unsafe { ManuallyDrop::drop(&mut self.ptr) };
        self.consumer.release(self.consumer.head + 1);
    }
}

impl<T: Pod> fmt::Debug for RecvRef<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvRef").field("pos", &self.consumer.head).finish()
    }
}

// ---------------------------------------------------------------------------
// Named segments
// ---------------------------------------------------------------------------

#[cfg(not(loom))]
mod named {
    use super::*;
    use crate::error::OpenError;
    use crate::layout::{Expected, Kind, TypeInfo};
    use crate::region::Region;
    use crate::Options;

    fn expected<T: crate::Message>(capacity: u64) -> Expected {
        Expected {
            kind: Kind::Spsc,
            elem: TypeInfo::of::<T>(),
            capacity,
            ctl_len: std::mem::size_of::<Control>(),
            rows: 0,
        }
    }

    fn ring_in<T>(region: Region, opts: &Options) -> Ring<T> {
        Ring {
            ctl: region.ctl().cast(),
            slots: region.data().cast(),
            mask: crate::ring::slots_for(region.capacity) - 1,
            bound: region.capacity,
            barrier: region.barrier,
            wait: Wait { spin: opts.spin, slice: Some(Wait::PEER_SLICE) },
            _memory: Memory::Segment(region.into_memory()),
        }
    }

    fn create<T: crate::Message>(
        name: &str,
        capacity: usize,
        opts: &Options,
        role: Role,
    ) -> Result<Ring<T>, CreateError> {
        let e = expected::<T>(check_shape::<T>(capacity)?);
        let region = Region::create(name, &e, opts, role.bits(), |ctl| {
            // SAFETY: `ctl` is the fresh, aligned, unshared control block.
            unsafe { ctl.cast::<Control>().write(Control::new()) }
        })?;
        // A fresh slot: the role cannot be taken.
        let _ = region_ctl(&region).peer(role).attach(Identity::this_process());
        region.publish();
        Ok(ring_in(region, opts))
    }

    fn region_ctl(region: &Region) -> &Control {
        // SAFETY: the region's control block was initialised as a `Control`
        // (by `create`, or by the creator of a segment `open` validated).
        unsafe { region.ctl().cast::<Control>().as_ref() }
    }

    fn open<T: crate::Message>(name: &str, opts: &Options, role: Role) -> Result<Ring<T>, OpenError> {
        let region = Region::open(name, &expected::<T>(0), opts, role.bits())?;
        region_ctl(&region)
            .peer(role)
            .attach(Identity::this_process())
            .map_err(|r| r.into_open_error(region.name(), role.name()))?;
        Ok(ring_in(region, opts))
    }

    impl<T: crate::Message> Producer<T> {
        /// Creates a ring in a new segment named `name` and takes its
        /// producer end. The name is removed when this end drops.
        ///
        /// # Errors
        /// [`CreateError`]: a bad name or capacity, a name that exists, no
        /// permission, or a system error.
        pub fn create(name: &str, capacity: usize) -> Result<Self, CreateError> {
            Self::create_with(name, capacity, &Options::new())
        }

        /// As [`Producer::create`], with [`Options`].
        ///
        /// # Errors
        /// As [`Producer::create`].
        pub fn create_with(name: &str, capacity: usize, opts: &Options) -> Result<Self, CreateError> {
            create(name, capacity, opts, Role::Producer).map(Self::new)
        }

        /// Opens the ring in segment `name` and takes its producer end.
        ///
        /// # Errors
        /// [`OpenError`]: no such segment, not a ring of `T`, a corrupt or
        /// incompatible header, or a producer already attached.
        pub fn open(name: &str) -> Result<Self, OpenError> {
            Self::open_with(name, &Options::new())
        }

        /// As [`Producer::open`], with [`Options`].
        ///
        /// # Errors
        /// As [`Producer::open`].
        pub fn open_with(name: &str, opts: &Options) -> Result<Self, OpenError> {
            open(name, opts, Role::Producer).map(Self::new)
        }
    }

    impl<T: crate::Message> Consumer<T> {
        /// Creates a ring in a new segment named `name` and takes its
        /// consumer end. The name is removed when this end drops.
        ///
        /// # Errors
        /// As [`Producer::create`].
        pub fn create(name: &str, capacity: usize) -> Result<Self, CreateError> {
            Self::create_with(name, capacity, &Options::new())
        }

        /// As [`Consumer::create`], with [`Options`].
        ///
        /// # Errors
        /// As [`Producer::create`].
        pub fn create_with(name: &str, capacity: usize, opts: &Options) -> Result<Self, CreateError> {
            create(name, capacity, opts, Role::Consumer).map(Self::new)
        }

        /// Opens the ring in segment `name` and takes its consumer end.
        ///
        /// # Errors
        /// As [`Producer::open`].
        pub fn open(name: &str) -> Result<Self, OpenError> {
            Self::open_with(name, &Options::new())
        }

        /// As [`Consumer::open`], with [`Options`].
        ///
        /// # Errors
        /// As [`Producer::open`].
        pub fn open_with(name: &str, opts: &Options) -> Result<Self, OpenError> {
            open(name, opts, Role::Consumer).map(Self::new)
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::ring::mpmc::Geometry;

    fn same_shape<T>() {
        let g = Geometry { size: std::mem::size_of::<T>(), align: std::mem::align_of::<T>() };
        assert_eq!(std::mem::size_of::<Slot<T>>(), g.stride(), "{}", std::any::type_name::<T>());
        assert_eq!(std::mem::offset_of!(Slot<T>, value), g.payload_offset(), "{}", std::any::type_name::<T>());
    }

    #[test]
    fn a_packed_pacer_unpacks_to_the_same_state() {
        let mut p = Pacer::default();
        assert_eq!(Pacer::from_bits(p.to_bits()).to_bits(), 0);
        // A streak, then a pause that does not pay: a cooldown and a backoff.
        p.note(true);
        p.note(true);
        p.paid(0, 1, STREAM_BATCH);
        p.paid(0, 1, STREAM_BATCH);
        let q = Pacer::from_bits(p.to_bits());
        assert_eq!((q.streak, q.cooldown, q.backoff), (2, 32, 32));
        // A streak past 21 bits saturates, and stays in its field.
        let long = Pacer { streak: u32::MAX, ..q };
        let r = Pacer::from_bits(long.to_bits());
        assert_eq!((r.streak, r.cooldown, r.backoff), (FIELD, 32, 32));
    }

    /// A producer that died after stamping a slot but before storing `tail`:
    /// the consumer takes the message by its stamp, and the next producer to
    /// attach must continue after it, not write that position again.
    #[test]
    fn a_new_producer_continues_after_slots_stamped_but_not_counted() {
        let (tx, mut rx) = channel::<u64>(4).unwrap();
        tx.write(0, 7); // stamped; `tail` still says 0
        let heap = match &tx.ring._memory {
            Memory::Heap(h) => h.clone(),
            #[allow(unreachable_patterns)]
            _ => unreachable!("channel() rings live on the heap"),
        };
        drop(tx);
        // `tail` says empty; the producer is gone, so the consumer looks
        // again, at the stamp, and finds the message.
        assert_eq!(rx.try_recv(), Ok(7));
        let mut tx = Producer::new(heap_ring(&heap, 4, Barrier::Symmetric));
        assert_eq!(tx.tail, 1);
        tx.send(8).unwrap();
        assert_eq!(rx.try_recv(), Ok(8));
        assert_eq!(rx.len(), 0);
    }

    /// A segment's size is computed from the queue's slot geometry: the
    /// typed slot must have exactly that shape.
    #[test]
    fn slots_have_the_segment_geometry() {
        same_shape::<u8>();
        same_shape::<u64>();
        same_shape::<[u8; 3]>();
        same_shape::<[u8; 64]>();
        same_shape::<u128>();
        same_shape::<[u128; 3]>();
        same_shape::<[u8; 4096]>();
    }
}
