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
//!   overwritten while it is being read (in place, through a `RecvRef`).
//! - After each store of a position, the storing side notifies the other
//!   side's eventcount ([`crate::sync::wait`]), which is how a sleeper is woken.
//! - The peer slots ([`crate::shm::peer`]) carry disconnection: a side leaving
//!   stores `GONE` with Release after its last position store.
//!
//! The positions are read from shared memory, so a corrupt or hostile peer
//! can write anything there. Slot indices are always masked, so no value can
//! lead outside the slot region; a `tail` more than `capacity` ahead of the
//! consumer's `head` is reported as `RecvError::Corrupt`.

use std::ptr::NonNull;

use bytemuck::Pod;
use crossbeam_utils::CachePadded;

use super::pace::{Pacer, READ_BATCH, STREAM_BATCH};
use crate::error::RecvError;
use crate::shm::backing::Backing;
use crate::shm::peer::PeerSlot;
use crate::sync::wait::{EventCount, Wait};
use crate::sync::{AtomicU64, Barrier, Ordering, UnsafeCell};

/// One slot of the ring: a message and the stamp that publishes it. The same
/// shape as a queue slot ([`super::mpmc::Geometry`]): the stamp, then the
/// message at `max(8, align_of::<T>())`, padded to that alignment.
#[repr(C)]
pub(crate) struct Slot<T> {
    /// `pos + 1` once the message for position `pos` is written; 0 in a
    /// fresh ring (position 0 expects 1, so no slot starts out published).
    pub(crate) stamp: AtomicU64,
    pub(crate) value: UnsafeCell<T>,
}

impl<T: Pod> Slot<T> {
    pub(crate) fn new() -> Self {
        Self { stamp: AtomicU64::new(0), value: UnsafeCell::new(T::zeroed()) }
    }
}

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

impl Default for Control {
    fn default() -> Self {
        Self::new()
    }
}

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
            Role::Producer => crate::shm::peer::role::SEND,
            Role::Consumer => crate::shm::peer::role::RECV,
        }
    }
}

/// One end's view of a ring: where the memory is and how to wait on it.
pub(crate) struct Ring<T> {
    pub(crate) ctl: NonNull<Control>,
    pub(crate) slots: NonNull<Slot<T>>,
    pub(crate) mask: u64,
    /// Messages the ring holds at most (at most `mask + 1`, see
    /// `ring::slots_for`): what the producer's room is measured against.
    pub(crate) bound: u64,
    pub(crate) barrier: Barrier,
    pub(crate) wait: Wait,
    /// Keeps the memory the pointers point into alive.
    #[allow(dead_code)] // held for its drop
    pub(crate) backing: Backing,
}

impl<T> Ring<T> {
    #[inline(always)]
    pub(crate) fn ctl(&self) -> &Control {
        // SAFETY: `ctl` points into `_memory`, which lives as long as `self`;
        // a Control holds only atomics, so a shared reference is sound even
        // while other processes use it.
        unsafe { self.ctl.as_ref() }
    }

    #[inline(always)]
    pub(crate) fn slot(&self, pos: u64) -> &Slot<T> {
        // SAFETY: the index is masked to `0..=mask`, `slots` points to
        // `mask + 1` slots in `_memory` (alive as long as `self`), and a slot
        // is an atomic and an `UnsafeCell`, so sharing it is sound.
        unsafe { &*self.slots.as_ptr().add((pos & self.mask) as usize) }
    }

    /// Whether the message for `pos` is published, judged by its slot's stamp.
    #[inline(always)]
    pub(crate) fn stamped(&self, pos: u64) -> bool {
        // Acquire: pairs with the producer's Release store of the stamp; the
        // message was written before it.
        self.slot(pos).stamp.load(Ordering::Acquire) == pos.wrapping_add(1)
    }

    /// The last byte of the slot, for a prefetch (no access is made through
    /// it): the stamp's line is the one being polled, and for a message that
    /// spills into the next line this brings that line along.
    #[inline(always)]
    pub(crate) fn slot_end(&self, pos: u64) -> *const u8 {
        let slot = self.slots.as_ptr().wrapping_add((pos & self.mask) as usize);
        slot.cast::<u8>().wrapping_add(std::mem::size_of::<Slot<T>>() - 1)
    }

    #[inline(always)]
    pub(crate) fn capacity(&self) -> u64 {
        self.bound
    }

    pub(crate) fn len(&self) -> usize {
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

/// The producer's process-local view of the consumer's position.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadView {
    /// `head` as last read.
    pub(crate) head: u64,
    /// A run: rereads of `head` that found less than a batch free (the
    /// producer may be outrunning a saturated consumer).
    pub(crate) pacer: Pacer,
}

/// Free room in the ring, rereading `head` only when the cached copy shows
/// less than `want` free slots.
#[inline(always)]
pub(crate) fn room(ctl: &Control, cap: u64, tail: u64, view: &mut HeadView, want: u64) -> u64 {
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
pub(crate) fn reread_head(ctl: &Control, cap: u64, tail: u64, head: &mut u64) -> u64 {
    // Acquire: pairs with the consumer's Release store of `head`; its reads
    // of the slots it freed happen before we overwrite them.
    *head = ctl.head.load(Ordering::Acquire);
    // A corrupt `head` (ahead of `tail`, or far behind) reads as "full".
    cap.saturating_sub(tail.wrapping_sub(*head))
}

/// The consumer's process-local view of the producer's position.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TailView {
    /// `tail` as last read.
    pub(crate) tail: u64,
    /// A run: rereads of `tail` that found new messages (none found the ring
    /// empty), so the consumer may be keeping up with a saturated stream.
    pub(crate) pacer: Pacer,
    /// The last reread of `tail` found nothing: until a message comes, watch
    /// the next slot's stamp instead of `tail`.
    pub(crate) empty: bool,
}

/// Messages ready to read: the cached count if it reaches `want`; else, if
/// `tail` last said empty, the next slot's stamp (one message, or none);
/// else `tail`.
#[inline(always)]
pub(crate) fn available<T>(ring: &Ring<T>, head: u64, view: &mut TailView, want: u64) -> Result<u64, RecvError> {
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
pub(crate) fn published(ctl: &Control, cap: u64, head: u64) -> Result<u64, RecvError> {
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::ring::mpmc::Geometry;

    fn same_shape<T>() {
        let g = Geometry { size: std::mem::size_of::<T>(), align: std::mem::align_of::<T>() };
        assert_eq!(std::mem::size_of::<Slot<T>>(), g.stride(), "{}", std::any::type_name::<T>());
        assert_eq!(std::mem::offset_of!(Slot<T>, value), g.payload_offset(), "{}", std::any::type_name::<T>());
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
