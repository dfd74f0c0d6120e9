//! A bounded many-producer many-consumer ring with a sequence number per slot
//! (Vyukov's design, as in crossbeam's `ArrayQueue`), over memory it is handed.
//!
//! # Protocol
//!
//! Shared state: `tail` (next position to claim for writing) and `head` (next
//! position to claim for reading), `u64` counters that only grow; and in
//! every slot a sequence word `seq` next to the payload. Slot `i` serves the
//! positions `i, i + cap, i + 2cap, ...`; its `seq` says which and in what
//! state:
//!
//! | `seq` (without the `SKIP` bit) | the slot, for position `pos` in it |
//! |--------------------------------|------------------------------------|
//! | `pos`                          | free: a producer may claim `pos`   |
//! | `pos + 1`                      | published: a consumer may claim it |
//! | `pos + cap` (= next lap's `pos`) | released: free for the next lap  |
//!
//! A producer claims `pos` by CAS `tail: pos → pos + 1` after seeing
//! `seq == pos`, writes the payload, and stores `seq = pos + 1` (publish). A
//! consumer claims `pos` by CAS `head: pos → pos + 1` after seeing
//! `seq == pos + 1`, reads the payload, and stores `seq = pos + cap` (release).
//!
//! The three states differ only if `cap >= 2`: a queue has at least two slots.
//!
//! **Invariant:** `head <= tail <= head + cap`; each position is claimed by
//! exactly one producer and then one consumer, and its payload is written only
//! between the producer's claim and publish, and read only between the
//! consumer's claim and release.
//!
//! **Close:** bit 63 of `tail` (`CLOSED`), set once with `fetch_or`. A claim
//! is a CAS on `tail`, so no send can succeed after close. A consumer reports
//! "closed" only when `head` has reached `tail`: every claim made before the
//! close is delivered first.
//!
//! **Skip:** bit 62 of `seq` (`SKIP`) on a published slot means "no message":
//! a producer that claimed a slot for zero-copy writing and dropped the guard
//! uncommitted. Consumers claim and release such a slot without returning it.
//!
//! # Memory ordering
//!
//! - publish: `seq` store Release ↔ consumer's `seq` load Acquire: the payload
//!   is written before it is read.
//! - release: `seq` store Release ↔ producer's `seq` load Acquire (next lap):
//!   the payload is read before it is overwritten.
//! - `head`/`tail` CAS and loads are Relaxed: they only hand out positions;
//!   the payload's visibility is carried by `seq` alone.
//! - close: `fetch_or` AcqRel; consumers load `tail` (Acquire) to see it.
//!
//! Positions and sequence words come from shared memory: indices are masked,
//! so no value can lead outside the slot region, and a sequence word that no
//! honest protocol state could produce is reported as corrupt.

use std::mem::size_of;
use std::ptr::NonNull;
use std::time::Instant;

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicU64, Barrier, Ordering};
use crate::wait::{EventCount, Wait};

/// Bit 63 of `tail`: the queue is closed.
const CLOSED: u64 = 1 << 63;
/// Bit 62 of a published slot's `seq`: the slot carries no message.
const SKIP: u64 = 1 << 62;

/// The ring's shared control block.
///
/// | offset | field       | written by |
/// |-------:|-------------|------------|
/// |      0 | `tail: u64` (bit 63: closed) | producers (CAS), `close` |
/// |    128 | `head: u64` | consumers (CAS) |
/// |    256 | `not_empty: EventCount` | consumers announce, producers wake |
/// |    384 | `not_full: EventCount`  | producers announce, consumers wake |
/// |    512 | `skipped: u64` | consumers: slots passed over (claims dropped uncommitted, or abandoned) |
/// |    520 | `abandoned: u64` | survivors: claims whose process died before finishing |
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Control {
    tail: CachePadded<AtomicU64>,
    head: CachePadded<AtomicU64>,
    not_empty: CachePadded<EventCount>,
    not_full: CachePadded<EventCount>,
    counters: CachePadded<Counters>,
}

/// Rarely written counters, on one line of their own.
#[repr(C)]
#[derive(Debug)]
struct Counters {
    skipped: AtomicU64,
    abandoned: AtomicU64,
}

#[cfg(all(not(loom), target_arch = "x86_64"))]
const _: () = {
    assert!(size_of::<Control>() == 640);
    assert!(std::mem::offset_of!(Control, head) == 128);
    assert!(std::mem::offset_of!(Control, not_empty) == 256);
    assert!(std::mem::offset_of!(Control, not_full) == 384);
    assert!(std::mem::offset_of!(Control, counters) == 512);
};

impl Control {
    pub(crate) fn new() -> Self {
        Self {
            tail: CachePadded::new(AtomicU64::new(0)),
            head: CachePadded::new(AtomicU64::new(0)),
            not_empty: CachePadded::new(EventCount::new()),
            not_full: CachePadded::new(EventCount::new()),
            counters: CachePadded::new(Counters { skipped: AtomicU64::new(0), abandoned: AtomicU64::new(0) }),
        }
    }
}

/// The shape of a slot: its payload's size and alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) size: usize,
    pub(crate) align: usize,
}

impl Geometry {
    /// Offset of the payload in a slot: after the 8-byte `seq`, aligned.
    pub(crate) fn payload_offset(&self) -> usize {
        self.align.max(8)
    }

    /// Bytes per slot: `seq`, the payload, padding to the alignment.
    pub(crate) fn stride(&self) -> usize {
        (self.payload_offset() + self.size).next_multiple_of(self.align.max(8))
    }
}

// ---------------------------------------------------------------------------
// Slot storage: raw memory normally, loom-tracked cells under loom
// ---------------------------------------------------------------------------

/// Write access to a claimed slot's payload, for as long as this lives.
#[derive(Debug)]
pub(crate) struct PayloadMut {
    pub(crate) ptr: *mut u8,
    #[cfg(loom)]
    _track: crate::sync::MutPtr<[u64; LOOM_WORDS]>,
}

impl PayloadMut {
    /// Ends this access to the payload (under loom: the tracked access),
    /// before the slot is handed on.
    #[inline(always)]
    pub(crate) fn end(self) {}
}

/// Read access to a claimed slot's payload, for as long as this lives.
#[derive(Debug)]
pub(crate) struct PayloadRef {
    pub(crate) ptr: *const u8,
    #[cfg(loom)]
    _track: crate::sync::ConstPtr<[u64; LOOM_WORDS]>,
}

impl PayloadRef {
    /// Ends this access to the payload (under loom: the tracked access),
    /// before the slot is handed on.
    #[inline(always)]
    pub(crate) fn end(self) {}
}

#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct Slots {
    base: NonNull<u8>,
    stride: usize,
    payload: usize,
}

#[cfg(not(loom))]
impl Slots {
    /// # Safety
    /// `base` points to `cap` slots of `g.stride()` bytes, aligned to
    /// `max(8, g.align)`, each starting with an initialised `u64` sequence
    /// word, valid for as long as the `Slots` is used.
    pub(crate) unsafe fn new(base: NonNull<u8>, g: Geometry) -> Self {
        Self { base, stride: g.stride(), payload: g.payload_offset() }
    }

    #[inline(always)]
    fn at(&self, idx: usize) -> *mut u8 {
        // SAFETY: callers pass a masked index (< cap): in bounds.
        unsafe { self.base.as_ptr().add(idx * self.stride) }
    }

    #[inline(always)]
    fn seq(&self, idx: usize) -> &AtomicU64 {
        // SAFETY: every slot starts with an aligned, initialised u64 that is
        // only ever accessed atomically (constructor's contract).
        unsafe { &*self.at(idx).cast::<AtomicU64>() }
    }

    #[inline(always)]
    fn payload_mut(&self, idx: usize) -> PayloadMut {
        // SAFETY: in bounds, as in `at`.
        PayloadMut { ptr: unsafe { self.at(idx).add(self.payload) } }
    }

    #[inline(always)]
    fn payload_ref(&self, idx: usize) -> PayloadRef {
        // SAFETY: in bounds, as in `at`.
        PayloadRef { ptr: unsafe { self.at(idx).add(self.payload) } }
    }
}

/// Payload words per slot in loom models.
#[cfg(loom)]
pub(crate) const LOOM_WORDS: usize = 4;

#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct LoomSlot {
    seq: AtomicU64,
    data: crate::sync::UnsafeCell<[u64; LOOM_WORDS]>,
}

#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct Slots {
    slots: Box<[LoomSlot]>,
}

#[cfg(loom)]
impl Slots {
    pub(crate) fn new_loom(cap: u64) -> Self {
        let slots = (0..cap)
            .map(|i| LoomSlot { seq: AtomicU64::new(i), data: crate::sync::UnsafeCell::new([0; LOOM_WORDS]) })
            .collect();
        Self { slots }
    }

    fn seq(&self, idx: usize) -> &AtomicU64 {
        &self.slots[idx].seq
    }

    fn payload_mut(&self, idx: usize) -> PayloadMut {
        let track = self.slots[idx].data.get_mut();
        // SAFETY: the pointer is only used while `track` lives.
        let ptr = unsafe { track.deref() }.as_mut_ptr().cast::<u8>();
        PayloadMut { ptr, _track: track }
    }

    fn payload_ref(&self, idx: usize) -> PayloadRef {
        let track = self.slots[idx].data.get();
        // SAFETY: the pointer is only used while `track` lives.
        let ptr = unsafe { track.deref() }.as_ptr().cast::<u8>();
        PayloadRef { ptr, _track: track }
    }
}

// ---------------------------------------------------------------------------
// The protocol
// ---------------------------------------------------------------------------

/// Why a claim did not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Full (claiming to send) or empty (claiming to receive) right now.
    NotNow,
    /// Closed (and, for receiving, drained).
    Closed,
    /// The deadline passed.
    Timeout,
    /// The shared state is impossible.
    Corrupt(&'static str),
}

/// One handle's view of a ring: where the memory is and how to wait on it.
#[derive(Debug)]
pub(crate) struct Mpmc {
    ctl: NonNull<Control>,
    slots: Slots,
    mask: u64,
    barrier: Barrier,
}

impl Mpmc {
    /// # Safety
    /// `ctl` points to an initialised control block and `slots` to the ring's
    /// `cap` slots (a power of two), both valid while this value is used.
    pub(crate) unsafe fn new(ctl: NonNull<Control>, slots: Slots, cap: u64, barrier: Barrier) -> Self {
        debug_assert!(cap.is_power_of_two() && cap >= 2);
        Self { ctl, slots, mask: cap - 1, barrier }
    }

    /// Writes the initial sequence words: slot `i` is free for position `i`.
    pub(crate) fn init_slots(&self) {
        for i in 0..=self.mask {
            self.slots.seq(i as usize).store(i, Ordering::Relaxed);
        }
    }

    #[inline(always)]
    fn ctl(&self) -> &Control {
        // SAFETY: `new`'s contract; a Control holds only atomics.
        unsafe { self.ctl.as_ref() }
    }

    #[inline(always)]
    fn idx(&self, pos: u64) -> usize {
        (pos & self.mask) as usize
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.mask + 1
    }

    /// Messages in the ring (a snapshot).
    pub(crate) fn len(&self) -> u64 {
        // Acquire: a fresh view; only a hint.
        let tail = self.ctl().tail.load(Ordering::Acquire) & !CLOSED;
        let head = self.ctl().head.load(Ordering::Acquire);
        tail.wrapping_sub(head).min(self.capacity())
    }

    pub(crate) fn is_closed(&self) -> bool {
        // Acquire: pairs with the AcqRel `fetch_or` in `close`.
        self.ctl().tail.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Slots consumers have passed over (claims abandoned uncommitted).
    pub(crate) fn skipped(&self) -> u64 {
        self.ctl().counters.skipped.load(Ordering::Relaxed)
    }

    /// Closes the ring; returns whether this call closed it.
    pub(crate) fn close(&self) -> bool {
        // AcqRel: a consumer that sees CLOSED (Acquire) sees every claim made
        // before it; the notifies wake every sleeper, in every process.
        let prev = self.ctl().tail.fetch_or(CLOSED, Ordering::AcqRel);
        self.ctl().not_empty.notify(self.barrier);
        self.ctl().not_full.notify(self.barrier);
        prev & CLOSED == 0
    }

    /// Claims a free slot for writing, if there is one now.
    #[inline]
    pub(crate) fn try_claim_send(&self) -> Result<u64, Stop> {
        let ctl = self.ctl();
        let mut tail = ctl.tail.load(Ordering::Relaxed);
        loop {
            if tail & CLOSED != 0 {
                return Err(Stop::Closed);
            }
            // Acquire: pairs with the consumer's Release in `release`; its
            // read of the previous lap's payload happens before our write.
            let seq = self.slots.seq(self.idx(tail)).load(Ordering::Acquire);
            let diff = (seq & !SKIP).wrapping_sub(tail) as i64;
            if diff == 0 {
                // Relaxed: the CAS only hands out the position.
                match ctl.tail.compare_exchange_weak(tail, tail + 1, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => return Ok(tail),
                    Err(now) => tail = now,
                }
            } else {
                // diff < 0: the slot still holds last lap's message (full),
                // unless `tail` has moved on; diff > 0: another producer took
                // this position, so `tail` has moved on. Either way, look again.
                let now = ctl.tail.load(Ordering::Relaxed);
                if now == tail {
                    // Full; or, for diff > 0, a slot ahead of an unmoved tail,
                    // which no honest state produces: treat it as full too (a
                    // sender waits; it never writes a slot it does not own).
                    return Err(Stop::NotNow);
                }
                tail = now;
            }
        }
    }

    /// The payload of a slot this handle has claimed for writing.
    #[inline(always)]
    pub(crate) fn payload_mut(&self, pos: u64) -> PayloadMut {
        self.slots.payload_mut(self.idx(pos))
    }

    /// The payload of a slot this handle has claimed for reading.
    #[inline(always)]
    pub(crate) fn payload_ref(&self, pos: u64) -> PayloadRef {
        self.slots.payload_ref(self.idx(pos))
    }

    /// Publishes a claimed slot: `commit` with a message, or without one
    /// (an abandoned claim, which consumers skip).
    #[inline]
    pub(crate) fn publish(&self, pos: u64, commit: bool) {
        let seq = if commit { pos + 1 } else { (pos + 1) | SKIP };
        // Release: pairs with the consumer's Acquire load of `seq`; the
        // payload written before is visible to whoever claims the slot.
        self.slots.seq(self.idx(pos)).store(seq, Ordering::Release);
        self.ctl().not_empty.notify(self.barrier);
    }

    /// Claims a published slot for reading, if there is one now. Slots
    /// published without a message are released and passed over.
    #[inline]
    pub(crate) fn try_claim_recv(&self) -> Result<u64, Stop> {
        let ctl = self.ctl();
        let mut head = ctl.head.load(Ordering::Relaxed);
        loop {
            // Acquire: pairs with the producer's Release in `publish`.
            let seq = self.slots.seq(self.idx(head)).load(Ordering::Acquire);
            let diff = (seq & !SKIP).wrapping_sub(head + 1) as i64;
            if diff == 0 {
                match ctl.head.compare_exchange_weak(head, head + 1, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) if seq & SKIP != 0 => {
                        ctl.counters.skipped.fetch_add(1, Ordering::Relaxed);
                        self.release(head);
                        head += 1;
                    }
                    Ok(_) => return Ok(head),
                    Err(now) => head = now,
                }
            } else if diff < 0 {
                // Not published yet. Acquire: pairs with `close`.
                let tail = ctl.tail.load(Ordering::Acquire);
                if tail & !CLOSED == head {
                    // Truly empty: nothing claimed that is not consumed.
                    return Err(if tail & CLOSED != 0 { Stop::Closed } else { Stop::NotNow });
                }
                // A producer claimed `head` and is still writing it (or `head`
                // moved on): look again, or report empty for now.
                let now = ctl.head.load(Ordering::Relaxed);
                if now == head {
                    return Err(Stop::NotNow);
                }
                head = now;
            } else {
                // Another consumer took this position; `head` has moved on.
                let now = ctl.head.load(Ordering::Relaxed);
                if now == head {
                    return Err(Stop::Corrupt("a slot's sequence is ahead of the consumers' position"));
                }
                head = now;
            }
        }
    }

    /// Releases a slot this handle has read, for the next lap's producer.
    #[inline]
    pub(crate) fn release(&self, pos: u64) {
        // Release: pairs with the producer's Acquire load of `seq`.
        self.slots.seq(self.idx(pos)).store(pos + self.capacity(), Ordering::Release);
        self.ctl().not_full.notify(self.barrier);
    }

    /// Claims a slot for writing, waiting for room until `deadline`.
    pub(crate) fn claim_send(&self, wait: &Wait, deadline: Option<Instant>) -> Result<u64, Stop> {
        match self.try_claim_send() {
            Err(Stop::NotNow) => {}
            other => return other,
        }
        let outcome = self.ctl().not_full.wait_until(self.barrier, wait, deadline, |_| match self.try_claim_send() {
            Err(Stop::NotNow) => None,
            other => Some(other),
        });
        outcome.unwrap_or(Err(Stop::Timeout))
    }

    /// Claims a published slot for reading, waiting until `deadline`.
    pub(crate) fn claim_recv(&self, wait: &Wait, deadline: Option<Instant>) -> Result<u64, Stop> {
        match self.try_claim_recv() {
            Err(Stop::NotNow) => {}
            other => return other,
        }
        let outcome = self.ctl().not_empty.wait_until(self.barrier, wait, deadline, |_| match self.try_claim_recv() {
            Err(Stop::NotNow) => None,
            other => Some(other),
        });
        outcome.unwrap_or(Err(Stop::Timeout))
    }
}

/// The size of a control block, for layouts.
pub(crate) const CONTROL_LEN: usize = size_of::<Control>();
