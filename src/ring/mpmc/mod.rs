//! A bounded many-producer many-consumer ring over memory it is handed: a
//! sequence number per slot for publishing (as in Vyukov's design and
//! crossbeam's `ArrayQueue`), and a shared count of released positions for
//! room (as in the SPSC ring), so that a consumer never writes a slot line
//! and a producer never reads one in the common case.
//!
//! # Protocol
//!
//! Shared state: `tail` (next position to claim for writing), `head` (next
//! position to claim for reading) and `released` (every position below it
//! has been read, its slot free for the next lap), `u64` counters that only
//! grow; and in every slot a sequence word `seq` next to the payload. The
//! ring holds at most `cap` messages (the capacity asked for) in `n =
//! ring::slots_for(cap)` slots (a power of two, at least 2, at least
//! `cap`). Slot `i` serves the positions `i, i + n, i + 2n, ...`; its `seq`
//! says which and in what state:
//!
//! | `seq` (without `SKIP`) | the slot, for position `pos` in it |
//! |------------------------|------------------------------------|
//! | below `pos + 1` (an earlier lap's value, or 0 at first) | not published |
//! | `pos + 1`              | published: a consumer may claim it |
//! | `(pos + 1) \| DONE`    | read by a consumer that finished out of order |
//!
//! A producer claims `pos` by CAS `tail: pos → pos + 1` once `pos <
//! released + cap` (its process caches `released` and rereads it only when
//! the cached copy says full), writes the payload, and stores
//! `seq = pos + 1` (publish). A consumer claims `pos` by CAS
//! `head: pos → pos + 1` after seeing `seq == pos + 1`, reads the payload,
//! and releases the position:
//!
//! - **in order** (`released == pos`, the common case, and always with one
//!   consumer): stores `released = pos + 1`. Nobody else moves `released`
//!   off `pos` (below), so a plain store is enough. It then moves
//!   `released` on over any slots marked after it (best effort; see next).
//! - **out of order** (an earlier position is still being read): marks its
//!   slot `(pos + 1) | DONE` and returns at once, so that one slow consumer
//!   (or one holding a zero-copy guard) never holds up the others' receives.
//!   Whoever finds `released` at a marked slot moves it on with a CAS: the
//!   consumer that releases the position before it, if it sees the mark,
//!   and otherwise a producer that finds the ring full, which looks for
//!   marks before it reports full or waits. The marking consumer notifies
//!   `not_full`, so a producer asleep on a full ring wakes to look.
//!
//! **Invariant:** `released <= head <= tail <= released + cap`; each position
//! is claimed by exactly one producer and then one consumer; its payload is
//! written only between the producer's claim and publish, and read only
//! between the consumer's claim and its release (in order, or marked), and
//! `released` moves off a position only by its own consumer's store, or by
//! a CAS over a marked slot (or a dead consumer's claim, below).
//!
//! **Close:** bit 63 of `tail` (`CLOSED`), set once with `fetch_or`. A claim
//! is a CAS on `tail`, so no send can succeed after close. A consumer reports
//! "closed" only when `head` has reached `tail`: every claim made before the
//! close is delivered first. `close` then also sets `closed`, a word on a
//! line of its own that nobody writes again, and consumers that find the next
//! slot unpublished read that word, not `tail`: `tail` is the producers' hot
//! line, and a consumer that kept up with a stream would otherwise take it
//! from the producer once per message, just before the producer's next CAS
//! on it.
//!
//! The rest of the protocol is stated where it lives: disconnection
//! ([`ends`]), claims, their announcement and a dead claimer's recovery
//! ([`claims`], [`recovery`]), and biased claims ([`bias`]); the send and
//! receive paths are in [`send`] and [`recv`], the slots in [`slots`].
//!
//! **Skip:** bit 62 of `seq` (`SKIP`) on a published slot means "no message":
//! a producer that claimed a slot for zero-copy writing and dropped the guard
//! uncommitted, or one that died before publishing (below). Consumers claim
//! and release such a slot without returning it.
//!
//! # Memory ordering
//!
//! - publish: `seq` store Release ↔ consumer's `seq` load Acquire: the payload
//!   is written before it is read.
//! - release: `released` store Release ↔ producer's `released` load
//!   Acquire: the payload is read before the next lap overwrites it. A
//!   consumer's check `released == pos` is Acquire, so the store it then
//!   makes carries every earlier consumer's reads along; a mark is stored
//!   Release and read Acquire by whoever moves `released` over it with an
//!   AcqRel CAS, which carries the marking consumer's read on to producers.
//!   A producer's process-local cache of `released` is itself stored
//!   Release and loaded Acquire, for the same chain between its threads.
//! - `head`/`tail` CAS and loads are Relaxed: they only hand out positions;
//!   the payload's visibility is carried by `seq` and `released` alone.
//! - bias: an owner's store of the position is Release, as the CAS; a
//!   revoker's wait loads the position with Acquire and frees the bias with
//!   a Release store, which claimers load with Acquire (B2), so the next
//!   CAS starts from the owner's last claim. Taking and revoking CASes are
//!   Relaxed: the heavy barrier after them does the ordering.
//! - close: `fetch_or` AcqRel, then `closed` stored Release; a consumer that
//!   loads `closed` (Acquire) and finds it set then loads `tail` (Acquire),
//!   which has the `CLOSED` bit and every claim made before it.
//!
//! Positions and sequence words come from shared memory: indices are masked,
//! so no value can lead outside the slot region, and a sequence word that no
//! honest protocol state could produce is reported as corrupt.

mod bias;
mod claims;
mod ends;
mod recovery;
mod recv;
mod send;
mod slots;
mod words;

use super::pace::LOOK_EVERY;
pub(crate) use claims::Claims;
pub(crate) use ends::End;
#[cfg(loom)]
pub(crate) use slots::LOOM_WORDS;
pub(crate) use slots::{PayloadMut, PayloadRef, Slots};
pub(crate) use words::Ends;
use words::{Bias, ClaimWord, Seq, Tail};

use std::mem::size_of;
use std::ptr::NonNull;

use crossbeam_utils::CachePadded;

use crate::shm::peer::{Row, Table};
use crate::sync::wait::{Deadline, EventCount, Wait};
use crate::sync::{spin_hint, AtomicU64, Barrier, Ordering};

#[cfg(not(loom))]
use super::pace::{Pacer, STREAM_BATCH};

/// Spin steps after which a claimer waiting on a revocation takes it over
/// even from a live revoker (one stopped, or a corrupt bias word): safe at
/// any time, since only the revocation's current holder frees the bias.
/// Under loom 2, so that the models run this path.
const TAKE_OVER_AFTER: u32 = if cfg!(loom) { 2 } else { 1 << 16 };
/// Spin steps a revoker waits for the claims under way before it gives up
/// for now (the bias stays revoking; the call reports full or empty, and
/// the next claim takes the revocation up again): a claim stays under way
/// only while its process is stopped, or in a corrupt segment. Under loom
/// 2, as above.
const QUIESCE_FOR: u32 = if cfg!(loom) { 2 } else { 1 << 16 };

/// Why a claim at one position did not succeed.
enum Miss {
    /// Another claim won it: try this position next.
    At(u64),
    /// A revocation of the bias could not finish now.
    Busy,
}
/// Which side a claim is on.
const SEND: bool = true;
const RECV: bool = false;
/// Uncontended claims in a row (by one thread, on one side of one queue)
/// after which that thread takes the side's bias: taking costs a
/// `membarrier`, a few microseconds.
#[cfg(not(loom))]
const TAKE_AFTER: u32 = 4096;

/// The ring's shared control block.
///
/// | offset | field       | written by |
/// |-------:|-------------|------------|
/// |      0 | `tail: u64` (bit 63: closed) | producers (CAS, or the bias owner's store), `close` |
/// |      8 | `tail_bias: u64` | producers (see "Biased claims") |
/// |    128 | `head: u64` | consumers (CAS, or the bias owner's store) |
/// |    136 | `head_bias: u64` | consumers |
/// |    256 | `released: u64` | consumers (store in order; CAS over marks), producers (CAS over marks) |
/// |    384 | `not_empty: EventCount` | consumers announce, producers wake |
/// |    512 | `not_full: EventCount`  | producers announce, consumers wake |
/// |    640 | `skipped: u64` | consumers: slots passed over (claims dropped uncommitted, or abandoned) |
/// |    648 | `abandoned: u64` | survivors: claims whose process died before finishing |
/// |    656 | `closed: u64` | `close`, once (1): what an idle consumer reads instead of `tail` |
/// |    664 | `revoked: u64` | revokers: biases revoked (see "Biased claims") |
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Control {
    tail: CachePadded<Side>,
    head: CachePadded<Side>,
    released: CachePadded<AtomicU64>,
    not_empty: CachePadded<EventCount>,
    not_full: CachePadded<EventCount>,
    counters: CachePadded<Counters>,
}

/// Where `procring inspect` finds the words it reports, in a control block.
#[cfg(not(loom))]
pub(crate) mod offsets {
    use super::{Control, Counters, Side};
    use std::mem::offset_of;

    pub(crate) const TAIL: usize = offset_of!(Control, tail);
    pub(crate) const HEAD: usize = offset_of!(Control, head);
    pub(crate) const RELEASED: usize = offset_of!(Control, released);
    // A `CachePadded<T>` holds its `T` at offset 0.
    pub(crate) const SKIPPED: usize = offset_of!(Control, counters) + offset_of!(Counters, skipped);
    pub(crate) const ABANDONED: usize = offset_of!(Control, counters) + offset_of!(Counters, abandoned);
    pub(crate) const REVOKED: usize = offset_of!(Control, counters) + offset_of!(Counters, revoked);
    pub(crate) const TAIL_BIAS: usize = offset_of!(Control, tail) + offset_of!(Side, bias);
    pub(crate) const HEAD_BIAS: usize = offset_of!(Control, head) + offset_of!(Side, bias);

    /// A bias word as `procring inspect` reports it: 0 free, 1 owned by a
    /// thread, 2 being revoked, 3 shared for good.
    pub(crate) fn bias_state(bias: u64) -> u64 {
        match super::Bias::from_bits(bias) {
            super::Bias::FREE => 0,
            super::Bias::SHARED => 3,
            b if b.is_revoking() => 2,
            _ => 1,
        }
    }
}

/// A claim position (`tail` or `head`) and its side's bias, on one line:
/// the bias owner reads the bias on every claim, next to the position it
/// writes; and the other side's live handles, which this side's claims
/// read (see "Disconnection").
#[repr(C)]
#[derive(Debug)]
struct Side {
    pos: AtomicU64,
    /// [`Bias::FREE`], [`Bias::SHARED`], an owner's id, or a revoker's (see [`Bias`]) and the
    /// revoker's id (see "Biased claims").
    bias: AtomicU64,
    /// An [`Ends`] word: on `tail`'s line the receivers, on `head`'s the
    /// senders.
    ends: AtomicU64,
}

impl Side {
    fn new() -> Self {
        Self { pos: AtomicU64::new(0), bias: AtomicU64::new(Bias::FREE.bits()), ends: AtomicU64::new(0) }
    }
}

/// Rarely written words, on one line of their own.
#[repr(C)]
#[derive(Debug)]
struct Counters {
    skipped: AtomicU64,
    abandoned: AtomicU64,
    /// 1 once the queue is closed (see "Close" in the module docs).
    closed: AtomicU64,
    /// Biases revoked, either side.
    revoked: AtomicU64,
}

#[cfg(all(not(loom), target_arch = "x86_64"))]
const _: () = {
    assert!(size_of::<Control>() == 768);
    assert!(std::mem::offset_of!(Control, head) == 128);
    assert!(std::mem::offset_of!(Control, released) == 256);
    assert!(std::mem::offset_of!(Control, not_empty) == 384);
    assert!(std::mem::offset_of!(Control, not_full) == 512);
    assert!(std::mem::offset_of!(Control, counters) == 640);
};

impl Default for Control {
    fn default() -> Self {
        Self::new()
    }
}

impl Control {
    pub(crate) fn new() -> Self {
        Self {
            tail: CachePadded::new(Side::new()),
            head: CachePadded::new(Side::new()),
            released: CachePadded::new(AtomicU64::new(0)),
            not_empty: CachePadded::new(EventCount::new()),
            not_full: CachePadded::new(EventCount::new()),
            counters: CachePadded::new(Counters {
                skipped: AtomicU64::new(0),
                abandoned: AtomicU64::new(0),
                closed: AtomicU64::new(0),
                revoked: AtomicU64::new(0),
            }),
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

/// A claimed position, and which of this process's claim words announces
/// it (to clear exactly that one when the claim is finished).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Claim {
    pub(crate) pos: u64,
    /// The word's index in this process's row, or [`NO_WORD`]. A whole
    /// word, not an `Option<u8>`: a claim passes through memory on its way
    /// out of the claiming function, and an `Option<u8>`, stored as two
    /// bytes and loaded as one word, cannot be forwarded from the store
    /// buffer, so each receive waited for its buffer to drain (a third of
    /// the receiver's samples in 8- and 64-byte queue streams).
    word: usize,
}

/// [`Claim::word`] when the claim was not announced (a queue within one
/// process records no claims).
const NO_WORD: usize = usize::MAX;

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
    /// Messages the ring holds at most (at most `mask + 1`): what a sender's
    /// room is measured against.
    bound: u64,
    barrier: Barrier,
    /// The segment's attachment table and this process's row in it; `None`
    /// for a queue within one process (no process can die under it).
    claims: Option<Claims>,
    /// Whether claims follow the bias protocol ("Biased claims"): in a
    /// segment (claim records) whose processes all use the asymmetric
    /// barrier; under loom, in the claims models.
    biased: bool,
    /// Process-local: `released` as last read by a producer of this
    /// process, and their pacing. On a line of its own: producers write it
    /// whenever they reread `released`, and every operation reads the
    /// fields above.
    room: CachePadded<RoomView>,
}

/// This process's producers' view of `released`.
#[derive(Debug, Default)]
struct RoomView {
    /// `released` as last read.
    released: AtomicU64,
    /// A [`Pacer`], packed ([`Pacer::to_bits`]), shared by the process's
    /// producers: a heuristic, so two of them racing lose an update and
    /// nothing more.
    #[cfg(not(loom))]
    pacer: AtomicU64,
    /// Zero-copy send guards of this process not yet committed or dropped
    /// (see [`Mpmc::settle_recv`]).
    reservations: AtomicU64,
}

/// A producer's reread of `released` that finds room for fewer than this
/// many messages (or a quarter of the capacity) in a saturated stream waits
/// `pace::stream_pause` and reads again, so that the consumer, whose every
/// release stores to that line, frees a run of slots per transfer. (64 was
/// too few to make a run worth its pause.)
#[cfg(not(loom))]
const ROOM_BATCH: u64 = 256;

impl Mpmc {
    /// # Safety
    /// `ctl` points to an initialised control block and `slots` to the
    /// ring's `slots_for(bound)` slots, both valid while this value is used.
    pub(crate) unsafe fn new(
        ctl: NonNull<Control>,
        slots: Slots,
        bound: u64,
        barrier: Barrier,
        claims: Option<Claims>,
    ) -> Self {
        debug_assert!(bound >= 1);
        let biased = claims.is_some() && (cfg!(loom) || barrier == Barrier::Asymmetric);
        let mask = super::slots_for(bound) - 1;
        Self { ctl, slots, mask, bound, barrier, claims, biased, room: Default::default() }
    }

    /// Writes the initial sequence words: no slot is published.
    pub(crate) fn init_slots(&self) {
        // The slots, not the bound: every slot starts unpublished.
        for i in 0..=self.mask {
            self.slots.seq(i as usize).store(0, Ordering::Relaxed);
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
        self.bound
    }

    /// Messages in the ring (a snapshot).
    pub(crate) fn len(&self) -> u64 {
        // Acquire: a fresh view; only a hint.
        let tail = Tail::from_bits(self.ctl().tail.pos.load(Ordering::Acquire)).pos();
        let head = self.ctl().head.pos.load(Ordering::Acquire);
        tail.wrapping_sub(head).min(self.capacity())
    }

    pub(crate) fn is_closed(&self) -> bool {
        // Acquire: pairs with the AcqRel `fetch_or` in `close`.
        Tail::from_bits(self.ctl().tail.pos.load(Ordering::Acquire)).is_closed()
    }

    /// Whether `close` has finished setting `closed`: a read of a line that
    /// producers do not write, for consumers that found nothing to take.
    #[inline(always)]
    fn closed_flag(&self) -> bool {
        // Acquire: pairs with the Release store in `close`; the `tail` load
        // after this sees the CLOSED bit.
        self.ctl().counters.closed.load(Ordering::Acquire) != 0
    }

    /// Slots consumers have passed over (claims abandoned uncommitted).
    pub(crate) fn skipped(&self) -> u64 {
        self.ctl().counters.skipped.load(Ordering::Relaxed)
    }

    /// Claims resolved because the process that made them died.
    pub(crate) fn abandoned(&self) -> u64 {
        self.ctl().counters.abandoned.load(Ordering::Relaxed)
    }

    /// Closes the ring; returns whether this call closed it.
    pub(crate) fn close(&self) -> bool {
        // A bias owner's plain store of `tail` would wipe the CLOSED bit:
        // end the producers' bias for good first.
        self.end_send_bias();
        // AcqRel: a consumer that sees CLOSED (Acquire) sees every claim made
        // before it; the notifies wake every sleeper, in every process.
        let prev = Tail::from_bits(self.ctl().tail.pos.fetch_or(Tail::CLOSED, Ordering::AcqRel));
        // Release: a consumer that sees this flag then sees CLOSED in `tail`.
        // Stored before the notifies: it is what a sleeping consumer's last
        // look before sleeping checks (the eventcount's publishing store).
        #[cfg(not(procring_bug = "close_flag_after_notify"))]
        self.ctl().counters.closed.store(1, Ordering::Release);
        self.ctl().not_empty.notify(self.barrier);
        self.ctl().not_full.notify(self.barrier);
        #[cfg(procring_bug = "close_flag_after_notify")]
        self.ctl().counters.closed.store(1, Ordering::Release);
        !prev.is_closed()
    }

    /// The payload of a slot this handle has claimed for writing.
    #[inline(always)]
    pub(crate) fn payload_mut(&self, claim: Claim) -> PayloadMut {
        self.slots.payload_mut(self.idx(claim.pos))
    }

    /// The payload of a slot this handle has claimed for reading.
    #[inline(always)]
    pub(crate) fn payload_ref(&self, claim: Claim) -> PayloadRef {
        self.slots.payload_ref(self.idx(claim.pos))
    }

    /// Publishes a claimed slot: `commit` with a message, or without one
    /// (an abandoned claim, which consumers skip).
    #[inline]
    pub(crate) fn publish(&self, claim: Claim, commit: bool) {
        let pos = claim.pos;
        let seq = Seq::published(pos, commit);
        // Release: pairs with the consumer's Acquire load of `seq`; the
        // payload written before is visible to whoever claims the slot.
        self.slots.seq(self.idx(pos)).store(seq.bits(), Ordering::Release);
        if let Some(c) = &self.claims {
            c.clear(claim.word);
        }
        self.ctl().not_empty.notify(self.barrier);
    }

    /// Claims a slot for writing, waiting for room until `deadline`.
    #[inline(always)]
    pub(crate) fn claim_send(&self, wait: &Wait, deadline: Deadline) -> Result<Claim, Stop> {
        match self.try_claim_send() {
            Err(Stop::NotNow) => self.wait_send(wait, deadline),
            other => other,
        }
    }

    /// The rest of [`Mpmc::claim_send`], once its first try found the ring full.
    #[inline(never)]
    #[cfg_attr(loom, allow(clippy::modulo_one))] // LOOK_EVERY is 1 under loom
    fn wait_send(&self, wait: &Wait, deadline: Deadline) -> Result<Claim, Stop> {
        // Full. Every look rereads `released`, which the consumer stores on
        // every message; a sender that looked again at once would cost a
        // saturated consumer a line transfer per message. Let it free a run
        // of slots first (as the SPSC ring's stream detection does).
        #[cfg(not(loom))]
        super::pace::stream_pause();
        // Then, while spinning, look only every LOOK_EVERY steps, for the
        // same reason (once it sleeps, every wake-up looks).
        let mut spins = 0u32;
        let outcome = self.ctl().not_full.wait_until(self.barrier, wait, deadline, |check_peers| {
            spins = spins.saturating_add(1);
            if !check_peers && spins <= wait.spin && spins % LOOK_EVERY != 0 {
                return None;
            }
            match self.claim_send_now() {
                Err(Stop::NotNow) if check_peers && self.look_into_the_dead(End::Receiver) => {
                    match self.claim_send_now() {
                        Err(Stop::NotNow) => None,
                        other => Some(other),
                    }
                }
                Err(Stop::NotNow) => None,
                other => Some(other),
            }
        });
        outcome.unwrap_or(Err(Stop::Timeout))
    }

    /// Claims a published slot for reading, waiting until `deadline`.
    #[inline(always)]
    pub(crate) fn claim_recv(&self, wait: &Wait, deadline: Deadline) -> Result<Claim, Stop> {
        match self.claim_recv_quick() {
            Err(Stop::NotNow) => self.wait_recv(wait, deadline),
            other => other,
        }
    }

    /// The rest of [`Mpmc::claim_recv`], once its first try found the ring empty.
    #[inline(never)]
    fn wait_recv(&self, wait: &Wait, deadline: Deadline) -> Result<Claim, Stop> {
        let outcome =
            self.ctl().not_empty.wait_until(self.barrier, wait, deadline, |check_peers| match self.claim_recv_now() {
                Err(Stop::NotNow) if check_peers && self.look_into_the_dead(End::Sender) => match self.claim_recv_now()
                {
                    Err(Stop::NotNow) => None,
                    other => Some(other),
                },
                Err(Stop::NotNow) => None,
                other => Some(other),
            });
        outcome.unwrap_or(Err(Stop::Timeout))
    }
}

/// One step of a wait for another process's few instructions (an owner's
/// claim, a revocation): it may be waiting for a core, so yield now and
/// then.
fn pause(spins: u32) {
    spin_hint();
    #[cfg(not(loom))]
    if spins % 64 == 0 {
        std::thread::yield_now();
    }
    #[cfg(loom)]
    let _ = spins;
}

/// The size of a control block, for layouts.
pub(crate) const CONTROL_LEN: usize = size_of::<Control>();
