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
//! on it (1×1 8-byte streams: about 10% faster without that).
//!
//! **Disconnection:** each side's line also counts the other side's live
//! handles, as an [`Ends`] word: `tail`'s the receivers (every claim to
//! send reads it, next to `tail`), `head`'s the senders (read by a
//! receiver that finds nothing to take). A sender finding no receiver
//! fails at once; a receiver finding no sender takes what is left and then
//! reports "closed" once `head` has reached `tail`, as after `close`. A
//! process counts in ([`Mpmc::attach_end`]) when its first handle of a kind
//! on this ring appears and out when its last goes (the handles keep a
//! process-local count). In a segment the process is also counted in its
//! row ([`crate::peer::Row::ends`]), which is what outlives a killed
//! process: counting in does the queue's word first and the row second,
//! counting out the reverse, so the queue's count is never below the rows'
//! sum, and "none left" read from it is true. A thorough check
//! (a waiter's, or a `try_` call's now and then; at most every 10 ms per
//! handle, as it reads `/proc`) takes each dead process's
//! row count off the queue's ([`Mpmc::settle_ends`]: a swap, so once), and
//! when the count still says some but no live row counts any, and no
//! handle came or went during that look (the word's change number), the
//! count was left too high by a process killed between its two counts and
//! is set to none. The handle that takes a count to none wakes the other
//! side's sleepers (the eventcount's publishing store is the count's).
//!
//! **Invariant:** the queue's count of a kind is at least the number of
//! live handles of that kind; it reaches 0 only when none is left.
//!
//! **Skip:** bit 62 of `seq` (`SKIP`) on a published slot means "no message":
//! a producer that claimed a slot for zero-copy writing and dropped the guard
//! uncommitted, or one that died before publishing (below). Consumers claim
//! and release such a slot without returning it.
//!
//! **Claims and death** (segments only). Each process attached to the queue
//! has a row in the segment's attachment table ([`crate::peer`]) with six
//! claim words. Before its CAS on `tail` (or `head`), an operation writes
//! the position it is about to claim into one of them: `pos + 1` for a
//! producer, `(pos + 1) | RECV_CLAIM` for a consumer. After publishing (or
//! releasing) it clears a shared word; a thread's own word keeps announcing
//! the finished claim (below). The CAS is Release, so whoever sees the claim
//! in `tail`/`head` (Acquire) also sees the announcement.
//!
//! **Invariant:** while position `p` is claimed and not yet published
//! (released), the claimer's word says so. So a side that waits on `p` can
//! ask who claimed it: if every row announcing `p` belongs to a dead process
//! (and one does), the claimer is dead, for a live claimer's word would be
//! among them. A producer's abandoned claim is then published with `SKIP`
//! (CAS from the unpublished value, so a message is never half-delivered);
//! a consumer's slot is marked as read and `released` moved on over it
//! (the message it was reading is lost with it).
//! Either way `abandoned` counts it. A waiter checks this on its thorough
//! polls (before sleeping, and after every 50 ms slice), so a death is
//! resolved within about two slices (a claim is looked into when two
//! checks in a row find it unfinished); `try_` calls check every 1024th time
//! they find the queue full or empty.
//!
//! **Finished claims stay announced.** A thread's own word is not cleared
//! after a claim that ended within its call (every copying send and
//! receive): its next claim overwrites it. Clearing cost a store per
//! operation on each side, and with the locked instructions gone (biased
//! claims, below) the stores are what limit a stream: a sender's stores
//! queue behind the slot lines still on their way from the other core.
//! A zero-copy guard may outlive its call, so its claim marks the word
//! held (process-local) until it ends, and the thread's other claims take
//! a shared word meanwhile. So a word may announce a finished claim, and
//! every reader tells: the bias scans look only beyond the side's
//! position, which a finished claim never is; recovery first checks that
//! the slot is still unpublished (unreleased), and its CAS from that value
//! fails if it was not; the sweep, `procring ls` and the model's count
//! judge by the slot and the positions ([`Mpmc::finished`]). A handle
//! dropping clears its owned words; a killed process's are swept by the
//! next process to open the queue, before it takes a row, so that a table
//! full of dead processes' rows has rows to free.
//!
//! **Biased claims** (segments whose processes all use the asymmetric
//! barrier; see `crate::sync::Barrier`). A CAS per message on each side is
//! what an MPMC ring costs over an SPSC one: a locked instruction waits for
//! the side's earlier stores, slot lines still on their way to the other
//! core, to drain. So a side with a single claimer lets it claim with a
//! plain store. Each side has a `bias` word next to its position:
//! [`FREE`] (claims CAS), an owner's id (its row and thread), [`REVOKING`]
//! with the revoker's id, or [`SHARED`] (claims CAS; the producers' side
//! once closed, for good).
//!
//! ```text
//!  claimer (every claim)                      taker / revoker (rare)
//!  ─────────────────────                      ──────────────────────
//!  C2 announce pos + 1 in its claim word      T1 CAS bias FREE → me   (take)
//!  B1 light barrier        ── Dekker ──       or CAS owner → REVOKING (revoke)
//!  B2 load bias (Acquire)                     B3 heavy barrier (membarrier)
//!  me?       store pos + 1 (Release)          take: a claim announced beyond pos?
//!  FREE/SHARED: CAS pos → pos + 1                   then give the bias back
//!  other: withdraw (word = TAKEN), revoke     revoke: wait until no live row
//!         or wait out the revoker, retry              announces one; bias = FREE
//! ```
//!
//! **Invariant:** while a side's bias names an owner, only that thread
//! writes the side's position, and it does so only between its claim's
//! announcement and its look at the bias. B1/B3 give the either-or of the
//! eventcount: a claim whose look (B2) comes after a taker's or revoker's
//! B3 sees the new bias; one whose look came before has its announcement
//! visible to the scan after B3. So a taker sees every CAS that may still
//! succeed (and gives the bias back rather than store over it), and a
//! revoker sees the owner's store under way and waits for `pos` to pass
//! it; claimers that find a revocation under way withdraw their
//! announcements, so that the revoker's wait ends. `close` ends the
//! producers' bias (`SHARED`) before it sets `CLOSED`, which an owner's
//! plain store would otherwise wipe. A thread takes the bias after
//! `TAKE_AFTER` uncontended claims in a row (a `membarrier` costs a few
//! microseconds); a dead owner (or revoker) stores nothing more, so the
//! revoker's wait skips dead rows and a waiter takes over a dead revoker's
//! revocation (or a live one's that takes very long: only the revocation's
//! current holder frees the bias, with a CAS from its own `REVOKING` value).
//! A claim stays under way for long only while its process is stopped (or
//! in a corrupt segment): a revoker then gives up after `QUIESCE_FOR` spin
//! steps, its call reports full or empty, and the next claim takes the
//! revocation up again; `close` waits.
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

use std::mem::size_of;
use std::ptr::NonNull;
use std::time::Instant;

use crossbeam_utils::CachePadded;

use crate::peer::{Row, Table};
use crate::sync::{spin_hint, AtomicU64, Barrier, Ordering};
use crate::wait::{EventCount, Limit, Wait};

#[cfg(not(loom))]
use super::spsc::{Pacer, STREAM_BATCH};

/// Bit 63 of `tail`: the queue is closed.
const CLOSED: u64 = 1 << 63;
/// Bit 62 of a published slot's `seq`: the slot carries no message.
const SKIP: u64 = 1 << 62;
/// Bit 61 of a slot's `seq`: read and released out of order (a mark for
/// whoever moves `released` over it).
const DONE: u64 = 1 << 61;

/// The `seq` of position `pos`'s slot once its consumer has marked it.
const fn marked(pos: u64) -> u64 {
    (pos + 1) | DONE
}
/// Bit 63 of a claim word: a consumer's claim (clear: a producer's).
const RECV_CLAIM: u64 = 1 << 63;
/// A claim word held by an operation that has not announced a position yet.
const TAKEN: u64 = u64::MAX;

/// A side's bias: nobody owns it; claims CAS, and a claimer may take it.
const FREE: u64 = 0;
/// A side's bias: never to be taken again (the producers' once the queue
/// is closed); claims CAS.
const SHARED: u64 = u64::MAX;
/// Bit 63 of a side's bias: a revocation is under way, by the thread whose
/// id (as an owner's) is in the low bits.
const REVOKING: u64 = 1 << 63;
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
/// An owner's id: its row (index + 1) from this bit up, its thread's tag
/// below it.
const OWNER_ROW_SHIFT: u32 = 48;
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
        match bias {
            super::FREE => 0,
            super::SHARED => 3,
            b if b & super::REVOKING != 0 => 2,
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
    /// [`FREE`], [`SHARED`], an owner's id, or [`REVOKING`] and the
    /// revoker's id (see "Biased claims").
    bias: AtomicU64,
    /// An [`Ends`] word: on `tail`'s line the receivers, on `head`'s the
    /// senders.
    ends: AtomicU64,
}

impl Side {
    fn new() -> Self {
        Self { pos: AtomicU64::new(0), bias: AtomicU64::new(FREE), ends: AtomicU64::new(0) }
    }
}

/// One of a queue's two kinds of handle (a `Queue` is both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Sender,
    Receiver,
}

impl End {
    /// The index of this kind's count in a row's `ends`.
    fn row_index(self) -> usize {
        match self {
            End::Sender => crate::peer::SENDERS,
            End::Receiver => crate::peer::RECEIVERS,
        }
    }
}

/// A count of live handles of one kind, packed in a `u64`: the count in
/// the low 32 bits, and in the high 32 a change number that every update
/// bumps (wrapping), so that a look at the rows can tell whether any
/// handle came or went meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ends(u64);

impl Ends {
    const CHANGE: u64 = 1 << 32;

    fn count(self) -> u32 {
        self.0 as u32
    }

    /// What to add to the word to change the count by `delta` (the count
    /// stays within 32 bits: `delta` never takes it below 0).
    fn delta(delta: i64) -> u64 {
        debug_assert!(delta.unsigned_abs() < Self::CHANGE);
        Self::CHANGE.wrapping_add(delta as u64)
    }

    /// The word with the count set to none, as a change.
    fn none(self) -> Self {
        Self((self.0 & !(Self::CHANGE - 1)).wrapping_add(Self::CHANGE))
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
#[derive(Debug, Clone)]
pub(crate) struct Slots {
    // Shared, so that two handles (two made-up processes) can use one ring.
    slots: std::sync::Arc<[LoomSlot]>,
}

#[cfg(loom)]
impl Slots {
    /// The slots of a ring holding `bound` messages.
    pub(crate) fn new_loom(bound: u64) -> Self {
        let slots = (0..super::slots_for(bound))
            .map(|_| LoomSlot { seq: AtomicU64::new(0), data: crate::sync::UnsafeCell::new([0; LOOM_WORDS]) })
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
/// `spsc::stream_pause` and reads again, so that the consumer, whose every
/// release stores to that line, frees a run of slots per transfer. With 64,
/// 8-byte streams were as fast as without pacing; with 256, at a median 0.70
/// of the SPSC ring against 0.61 (six alternated rounds).
#[cfg(not(loom))]
const ROOM_BATCH: u64 = 256;

/// Claim words `0..OWNED` of a row are each owned by one thread of the
/// process, which announces in it with plain stores and leaves its finished
/// claims announced (see "Finished claims stay announced"); the rest are
/// taken per operation (a CAS) and cleared after it, by threads without one
/// and for a claim made while the thread's own word serves a zero-copy
/// guard. Under loom one, so that the models run both kinds with two
/// threads in a process.
const OWNED: usize = if cfg!(loom) { 1 } else { 3 };

/// Where a process records its claims, and where it looks for others'.
#[derive(Debug)]
pub(crate) struct Claims {
    table: Table,
    mine: NonNull<Row>,
    /// Process-local: the thread (its tag) owning each of the first
    /// `OWNED` claim words; 0 = none.
    owners: [AtomicU64; OWNED],
    /// Process-local: 1 while an owned word announces the claim of a
    /// zero-copy guard, which may outlive the call that made it; the owner
    /// thread's other claims then take a shared word. Claims that end
    /// within their call (every copying send and receive) never set it.
    held: [AtomicU64; OWNED],
    /// This process's row: its index + 1, the high bits of its owners' ids.
    row: u64,
    /// Process-local: the blocking claims (encoded as in the claim words)
    /// the last check found unfinished. Only a claim found unfinished twice
    /// in a row is looked into: a live process finishes a claim in
    /// nanoseconds, and looking (a scan of the table and a `/proc` read)
    /// costs microseconds.
    suspects: [AtomicU64; 2],
    /// Process-local: when this handle last looked at the rows for dead
    /// processes' handle counts ([`Claims::time_to_look`]), in
    /// milliseconds since the first look in this process.
    ends_looked: AtomicU64,
}

impl Claims {
    /// # Safety
    /// `mine` is one of `table`'s rows, held by this process, and both stay
    /// valid while the ring is used.
    pub(crate) unsafe fn new(table: Table, mine: NonNull<Row>) -> Self {
        let row = (mine.as_ptr() as usize - table.rows().as_ptr() as usize) / size_of::<Row>() + 1;
        let (owners, held, suspects) = Default::default();
        Self { table, mine, row: row as u64, owners, held, suspects, ends_looked: AtomicU64::new(0) }
    }

    /// Whether it is time to look at the rows for dead processes' handle
    /// counts: at most once per [`LOOK_AT_ENDS_EVERY`] per handle, as each
    /// look reads `/proc` for every process counted (microseconds), and a
    /// receiver keeping up with a stream finds the queue empty millions of
    /// times a second. Always under loom.
    fn time_to_look(&self) -> bool {
        #[cfg(not(loom))]
        {
            static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
            let now = START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1;
            // Relaxed: a heuristic in process-local memory.
            let last = self.ends_looked.load(Ordering::Relaxed);
            if last != 0 && now < last + LOOK_AT_ENDS_EVERY.as_millis() as u64 {
                return false;
            }
            self.ends_looked.store(now, Ordering::Relaxed);
        }
        true
    }

    /// A claim word to announce in: the calling thread's own if it is free,
    /// else one taken for this operation.
    #[inline]
    fn acquire(&self) -> &AtomicU64 {
        if let Some(w) = self.own() {
            return w;
        }
        self.take()
    }

    /// The calling thread's own claim word, adopting a free one (or a
    /// finished thread's) on first use; `None` if it has none or its word
    /// serves a zero-copy guard.
    #[inline(always)]
    fn own(&self) -> Option<&AtomicU64> {
        #[cfg(not(loom))]
        let tag = crate::thread_tag::current()?;
        #[cfg(loom)]
        let tag = bias_tag()?;
        let words = &self.mine().claims;
        // Relaxed (`owners`): process-local bookkeeping, and an owned word
        // is written by its owner thread only. A word found not held has no
        // claim under way: its last claim ended in the call that made it,
        // or its guard ended the hold after its publish or release.
        // Acquire (`held`): pairs with the Release that ends a hold, so that
        // publish or release happens before this thread's next announcement
        // overwrites the word, also when the guard was dropped on another
        // thread.
        #[cfg(not(procring_bug = "own_word_ignores_hold"))]
        let free = |i: usize| (self.held[i].load(Ordering::Acquire) == 0).then_some(&words[i]);
        #[cfg(procring_bug = "own_word_ignores_hold")]
        let free = |i: usize| Some(&words[i]);
        if let Some(i) = self.owners.iter().position(|o| o.load(Ordering::Relaxed) == tag) {
            return free(i);
        }
        for (i, o) in self.owners.iter().enumerate() {
            let owner = o.load(Ordering::Relaxed);
            // A finished thread's word has no claim under way (a thread
            // ends between calls; a guard it leaked keeps the word held);
            // its end is ordered before `alive` says so (a lock).
            #[cfg(not(loom))]
            let adopt = owner == 0 || (now_and_then() && !crate::thread_tag::alive(owner));
            #[cfg(loom)]
            let adopt = owner == 0;
            if adopt && o.compare_exchange(owner, tag, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
                return free(i);
            }
        }
        None
    }

    fn mine(&self) -> &Row {
        // SAFETY: `new`'s contract.
        unsafe { self.mine.as_ref() }
    }

    /// A free shared claim word of this process's row. With all of them in
    /// use (that many extra operations of this process under way at once),
    /// waits for one.
    fn take(&self) -> &AtomicU64 {
        let shared = &self.mine().claims[OWNED..];
        loop {
            for w in shared {
                // Relaxed: the word is this process's; announcements made
                // through it are ordered by the CAS on `tail`/`head`.
                if w.load(Ordering::Relaxed) == 0
                    && w.compare_exchange(0, TAKEN, Ordering::Relaxed, Ordering::Relaxed).is_ok()
                {
                    return w;
                }
            }
            spin_hint();
        }
    }

    /// The calling thread's id as a bias owner (`None` while the thread
    /// is being torn down: such a thread never owns a bias).
    #[inline(always)]
    fn owner_id(&self) -> Option<u64> {
        let tag = bias_tag()?;
        Some(self.row << OWNER_ROW_SHIFT | tag)
    }

    /// Whether any row announces a claim of the given side beyond `pos`.
    fn any_beyond(&self, pos: u64, send: bool) -> bool {
        self.table.rows().iter().any(|row| Self::row_beyond(row, pos, send))
    }

    /// Whether `row` announces a claim of the given side beyond `pos`: one
    /// that may still be made (by a CAS, or by an owner's store).
    fn row_beyond(row: &Row, pos: u64, send: bool) -> bool {
        row.claims.iter().any(|w| {
            // Relaxed: the heavy barrier before the caller's scan makes the
            // announcements that matter visible.
            let claim = w.load(Ordering::Relaxed);
            claim != 0 && claim != TAKEN && (claim & RECV_CLAIM == 0) == send && claim & !RECV_CLAIM > pos
        })
    }

    /// Whether the process in row `row` (index + 1) still runs; a row
    /// number out of range (a corrupt bias) counts as dead.
    fn row_alive(&self, row: u64) -> bool {
        let rows = self.table.rows();
        row.checked_sub(1).and_then(|i| rows.get(i as usize)).is_some_and(Row::alive)
    }

    /// Ends the announcement of a claim whose slot was published or
    /// released: a shared word is cleared (exactly that word: another
    /// thread's may hold the same value for a moment, announced before a CAS
    /// it then lost); an owned word keeps announcing the finished claim
    /// until its owner's next claim (see "Finished claims stay announced"),
    /// and a guard's hold on it ends.
    #[inline(always)]
    fn clear(&self, word: usize) {
        match word {
            // Loaded first (Relaxed: only a guard's own claim set it), so
            // that a claim that ended within its call stores nothing here.
            // Release: the guard's publish or release comes before the word
            // can be reused (see `own`).
            i if i < OWNED && self.held[i].load(Ordering::Relaxed) != 0 => {
                self.held[i].store(0, Ordering::Release);
            }
            i if i < OWNED => {}
            // Release: whoever reads the word cleared also sees the publish
            // or release before it.
            i => {
                if let Some(w) = self.mine().claims.get(i) {
                    w.store(0, Ordering::Release);
                }
            }
        }
    }

    /// Marks the owned word announcing `word`'s claim as serving a
    /// zero-copy guard, which may outlive the call: until the guard ends,
    /// the thread's other claims take a shared word.
    fn hold(&self, word: usize) {
        if let Some(held) = self.held.get(word) {
            // Relaxed: see `own`; only this thread reads it before the
            // guard ends.
            held.store(1, Ordering::Relaxed);
        }
    }

    /// Which of this process's claim words `w` is.
    #[inline(always)]
    fn index_of(&self, w: &AtomicU64) -> usize {
        let words = &self.mine().claims;
        // By address, not by a scan of the words.
        let i = (w as *const AtomicU64 as usize).wrapping_sub(words.as_ptr() as usize) / size_of::<AtomicU64>();
        if i < words.len() {
            i
        } else {
            NO_WORD
        }
    }

    /// Whether `claim`, found unfinished, was also found unfinished by the
    /// previous check on this `side` (0: producers' claims, 1: consumers').
    fn suspect(&self, side: usize, claim: u64) -> bool {
        // Relaxed: a heuristic in process-local memory.
        self.suspects[side].swap(claim, Ordering::Relaxed) == claim
    }

    /// Whether `claim` is announced only by dead processes (at least one).
    fn claimed_only_by_dead(&self, claim: u64) -> bool {
        let mut dead = false;
        for row in self.table.rows() {
            // Acquire: pairs with the Release clear; see `clear`.
            if row.claims.iter().any(|w| w.load(Ordering::Acquire) == claim) {
                #[cfg(not(procring_bug = "recover_ignores_liveness"))]
                if row.alive() {
                    return false;
                }
                dead = true;
            }
        }
        dead
    }
}

impl Drop for Claims {
    /// Before the row is freed: the owned words' finished claims go. No
    /// claim of this handle is under way (guards borrow it), unless a guard
    /// was leaked: its word stays held and announced, as the record of a
    /// claim that never ends.
    fn drop(&mut self) {
        for (w, held) in self.mine().claims.iter().zip(&self.held) {
            // Relaxed: see `own`.
            if held.load(Ordering::Relaxed) == 0 {
                // Release: as in `clear`.
                w.store(0, Ordering::Release);
            }
        }
    }
}

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
        let tail = self.ctl().tail.pos.load(Ordering::Acquire) & !CLOSED;
        let head = self.ctl().head.pos.load(Ordering::Acquire);
        tail.wrapping_sub(head).min(self.capacity())
    }

    pub(crate) fn is_closed(&self) -> bool {
        // Acquire: pairs with the AcqRel `fetch_or` in `close`.
        self.ctl().tail.pos.load(Ordering::Acquire) & CLOSED != 0
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
        let prev = self.ctl().tail.pos.fetch_or(CLOSED, Ordering::AcqRel);
        // Release: a consumer that sees this flag then sees CLOSED in `tail`.
        // Stored before the notifies: it is what a sleeping consumer's last
        // look before sleeping checks (the eventcount's publishing store).
        #[cfg(not(procring_bug = "close_flag_after_notify"))]
        self.ctl().counters.closed.store(1, Ordering::Release);
        self.ctl().not_empty.notify(self.barrier);
        self.ctl().not_full.notify(self.barrier);
        #[cfg(procring_bug = "close_flag_after_notify")]
        self.ctl().counters.closed.store(1, Ordering::Release);
        prev & CLOSED == 0
    }

    /// The count word of handles of kind `end` (see "Disconnection").
    #[inline(always)]
    fn ends(&self, end: End) -> &AtomicU64 {
        match end {
            End::Sender => &self.ctl().head.ends,
            End::Receiver => &self.ctl().tail.ends,
        }
    }

    /// Counts this process in as having a handle of kind `end`: in the
    /// queue's word, then in this process's row.
    pub(crate) fn attach_end(&self, end: End) {
        // Relaxed (both): a handle that arrives publishes nothing; the
        // order of the two counts is program order in this thread, and a
        // sweep only takes a row's count off after seeing its process dead.
        self.ends(end).fetch_add(Ends::delta(1), Ordering::Relaxed);
        if let Some(c) = &self.claims {
            c.mine().ends[end.row_index()].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts this process out as having a handle of kind `end`: in its
    /// row, then in the queue's word; the last one anywhere wakes the other
    /// side.
    pub(crate) fn detach_end(&self, end: End) {
        if let Some(c) = &self.claims {
            // Relaxed: as in `attach_end`.
            c.mine().ends[end.row_index()].fetch_sub(1, Ordering::Relaxed);
        }
        // Release: pairs with the Acquire load in `none_left`, so a receiver
        // that finds no sender left sees every message they sent.
        let before = Ends(self.ends(end).fetch_add(Ends::delta(-1), Ordering::Release));
        if before.count() == 1 {
            self.wake_the_other_side(end);
        }
    }

    /// Wakes whoever waits on the handles of kind `end`: receivers, to
    /// drain and see no sender left; senders, to see no receiver left.
    fn wake_the_other_side(&self, end: End) {
        #[cfg(procring_bug = "ends_without_wake")]
        return;
        #[allow(unreachable_code)]
        match end {
            End::Sender => self.ctl().not_empty.notify(self.barrier),
            End::Receiver => self.ctl().not_full.notify(self.barrier),
        }
    }

    /// Whether the queue's count says no handle of kind `end` is left
    /// (true, when it says so: see "Disconnection").
    #[inline(always)]
    fn none_left(&self, end: End) -> bool {
        // Acquire: pairs with the Release in `detach_end` (and the sweeps).
        Ends(self.ends(end).load(Ordering::Acquire)).count() == 0
    }

    /// A thorough check of the handles of kind `end`: takes dead processes'
    /// counts off the queue's, and sets a count that no live row backs to
    /// none. Returns whether none is left.
    pub(crate) fn settle_ends(&self, end: End) -> bool {
        if self.none_left(end) {
            return true;
        }
        // Within one process the count is exact.
        let Some(c) = self.claims.as_ref().filter(|c| c.time_to_look()) else { return false };
        let rows = c.table.rows();
        self.sweep_ends(rows);
        // Acquire: as in `none_left`.
        let before = Ends(self.ends(end).load(Ordering::Acquire));
        if before.count() == 0 {
            return true;
        }
        let i = end.row_index();
        // Relaxed: the change number below tells whether the rows changed.
        if rows.iter().any(|r| r.ends[i].load(Ordering::Relaxed) != 0 && r.alive()) {
            return false;
        }
        // No live row counts one, and no handle came or went meanwhile (a
        // CAS from the word read before the look): the count is a dead
        // process's that never reached its row. AcqRel: as a detach.
        let fixed = self.ends(end).compare_exchange(before.0, before.none().0, Ordering::AcqRel, Ordering::Acquire);
        if fixed.is_ok() {
            self.wake_the_other_side(end);
        }
        fixed.is_ok()
    }

    /// Takes the handle counts of dead processes' rows off the queue's
    /// counts, each once (a swap of the row's count to 0).
    fn sweep_ends(&self, rows: &[Row]) {
        for row in rows {
            // Relaxed: a dead process's counts change no more.
            if row.ends.iter().all(|n| n.load(Ordering::Relaxed) == 0) || row.pid().is_none() || row.alive() {
                continue;
            }
            for end in [End::Sender, End::Receiver] {
                let n = row.ends[end.row_index()].swap(0, Ordering::Relaxed);
                if n == 0 {
                    continue;
                }
                // Release: as in `detach_end`.
                let before = Ends(self.ends(end).fetch_add(Ends::delta(-i64::from(n)), Ordering::Release));
                if before.count() <= n {
                    self.wake_the_other_side(end);
                }
            }
        }
    }

    /// Claims a free slot for writing, if there is one now; every so often
    /// when there is none, first resolves a dead process's claim and takes
    /// dead receivers off the count.
    #[inline(always)]
    pub(crate) fn try_claim_send(&self) -> Result<Claim, Stop> {
        match self.claim_send_now() {
            Err(Stop::NotNow) if self.now_and_then() && self.look_into_the_dead(End::Receiver) => self.claim_send_now(),
            other => other,
        }
    }

    /// A thorough look for what dead processes left that holds up a claim
    /// (see [`Mpmc::recover`] and [`Mpmc::settle_ends`]): whether a new try
    /// may now succeed or find the other side gone.
    #[cold]
    #[inline(never)]
    fn look_into_the_dead(&self, other: End) -> bool {
        // Both, whatever the first finds.
        self.recover() | self.settle_ends(other)
    }

    /// Claims a free slot for writing, if there is one now.
    #[inline(always)]
    fn claim_send_now(&self) -> Result<Claim, Stop> {
        let mut word = None;
        let attempt = self.claim_send_announcing(&mut word);
        self.claimed(attempt, word)
    }

    /// The end of a claim attempt, which took a claim word on its first use
    /// (see [`Mpmc::word`]): the claim, or the word freed again if the
    /// attempt claimed nothing.
    #[inline(always)]
    fn claimed(&self, attempt: Result<u64, Stop>, word: Option<&AtomicU64>) -> Result<Claim, Stop> {
        match attempt {
            Ok(pos) => {
                let word = word.zip(self.claims.as_ref()).map_or(NO_WORD, |(w, c)| c.index_of(w));
                Ok(Claim { pos, word })
            }
            Err(e) => {
                if let Some(w) = word {
                    w.store(0, Ordering::Relaxed);
                }
                Err(e)
            }
        }
    }

    /// The claim word to announce in, taken on first use: an attempt that
    /// finds the ring full (or empty) never touches one.
    #[inline(always)]
    fn word<'a>(&'a self, word: &mut Option<&'a AtomicU64>) -> Option<&'a AtomicU64> {
        if word.is_none() {
            *word = self.claims.as_ref().map(Claims::acquire);
        }
        *word
    }

    /// Claims position `pos` of `side` (the caller has announced it in
    /// `word`): a CAS `pos → pos + 1`, or a plain store by the side's bias
    /// owner. On failure, the position to try next.
    #[inline(always)]
    fn claim_pos(&self, side: &Side, word: Option<&AtomicU64>, pos: u64, send: bool) -> Result<(), Miss> {
        let cas = || {
            // Release: the announcement is visible to whoever sees this
            // claim (see "Claims and death").
            side.pos
                .compare_exchange_weak(pos, pos + 1, Ordering::Release, Ordering::Relaxed)
                .map(|_| ())
                .map_err(Miss::At)
        };
        let (Some(c), Some(w), true) = (&self.claims, word, self.biased) else { return cas() };
        // B1: the announcement before the look at the bias; pairs with the
        // heavy barrier of whoever takes or revokes it.
        #[cfg(not(procring_bug = "bias_no_claim_fence"))]
        self.barrier.light();
        // B2 Acquire: pairs with the Release store that ends a revocation,
        // so the revoked owner's last store of `pos` is visible here.
        let bias = side.bias.load(Ordering::Acquire);
        let me = c.owner_id();
        if Some(bias) == me {
            // The owner: nobody else writes `pos` while this lasts.
            // Release: as the CAS below.
            side.pos.store(pos + 1, Ordering::Release);
            return Ok(());
        }
        if bias != FREE && bias != SHARED {
            // Withdraw the announcement: a revoker waits for the owner's row
            // to have no claim under way, and this may be that row.
            w.store(TAKEN, Ordering::Relaxed);
            if !self.unbias(c, side, bias, send) {
                return Err(Miss::Busy);
            }
            return Err(Miss::At(side.pos.load(Ordering::Relaxed)));
        }
        cas()?;
        if let (FREE, Some(me)) = (bias, me) {
            if uncontended_run(self.ctl.as_ptr() as usize, pos, send) {
                self.take_bias(c, side, me, send);
            }
        }
        Ok(())
    }

    /// Takes `side`'s bias for this thread, unless a claim by anyone else
    /// may still be under way.
    #[cold]
    #[inline(never)]
    fn take_bias(&self, c: &Claims, side: &Side, me: u64, send: bool) {
        // Relaxed: what matters is the heavy barrier after it.
        if side.bias.compare_exchange(FREE, me, Ordering::Relaxed, Ordering::Relaxed).is_err() {
            return;
        }
        // B3: a claimer whose look at the bias (B2) comes after this sees
        // `me`; one whose look came before has its announcement visible
        // below.
        self.barrier.heavy_sure();
        // Acquire: the CASes that won before are visible to this thread's
        // later reads of `pos`.
        let pos = side.pos.load(Ordering::Acquire);
        if pos & CLOSED != 0 || c.any_beyond(pos & !CLOSED, send) {
            // A claim that read FREE may still CAS: give the bias back, unless
            // a revoker took it from us meanwhile (it then frees it).
            let _ = side.bias.compare_exchange(me, FREE, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// Waits out the bias `bias` (owned by another thread, or being
    /// revoked): revokes it, or waits for the revoker (taking over from one
    /// that died or takes very long). Returns whether the bias is no longer
    /// `bias` (false: a revocation this call holds could not finish now).
    #[cold]
    #[inline(never)]
    fn unbias(&self, c: &Claims, side: &Side, bias: u64, send: bool) -> bool {
        // A thread being torn down revokes under its row alone.
        let me = REVOKING | c.owner_id().unwrap_or(c.row << OWNER_ROW_SHIFT);
        let mut spins = 0u32;
        loop {
            // Revoke an owner's bias; take a revocation over from a revoker
            // that died part-way (or has taken very long).
            let take = bias & REVOKING == 0
                || bias == me
                || spins >= TAKE_OVER_AFTER
                || (spins % 1024 == 1023 && !c.row_alive((bias & !REVOKING) >> OWNER_ROW_SHIFT));
            // Relaxed: the heavy barrier in `quiesce` does the ordering.
            if take && side.bias.compare_exchange(bias, me, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
                return self.quiesce(c, side, me, send);
            }
            // Acquire: as B2.
            if side.bias.load(Ordering::Acquire) != bias {
                return true;
            }
            spins = spins.saturating_add(1);
            pause(spins);
        }
    }

    /// The end of a revocation that holds `side`'s bias as `me` (REVOKING
    /// and this thread's id): waits until no live process has a claim of
    /// this side under way beyond `pos` (a former owner's plain store has
    /// landed; every other claimer has withdrawn), then frees the bias,
    /// unless another claimer took the revocation over meanwhile (it frees
    /// it when its own wait is done). False if claims stayed under way for
    /// [`QUIESCE_FOR`] spin steps: the bias stays `me`, for the next claim
    /// to take up.
    fn quiesce(&self, c: &Claims, side: &Side, me: u64, send: bool) -> bool {
        // B3, as in `take_bias`: every claim that read the old bias has its
        // announcement visible below; every later one reads REVOKING.
        self.barrier.heavy_sure();
        let mut spins = 0u32;
        #[cfg(not(procring_bug = "bias_no_quiesce"))]
        for row in c.table.rows() {
            loop {
                // Acquire: pairs with the owner's Release store of `pos`; the
                // Release below passes it on to every claimer (B2).
                let pos = side.pos.load(Ordering::Acquire) & !CLOSED;
                if !Claims::row_beyond(row, pos, send) {
                    break;
                }
                spins += 1;
                // A dead process stores nothing more.
                if spins % 1024 == 0 && !row.alive() {
                    break;
                }
                if spins >= QUIESCE_FOR {
                    return false;
                }
                pause(spins);
            }
        }
        // Release: see B2.
        if side.bias.compare_exchange(me, FREE, Ordering::Release, Ordering::Relaxed).is_ok() {
            self.ctl().counters.revoked.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// Ends the producers' bias for good (`SHARED`), revoking an owner's.
    fn end_send_bias(&self) {
        let Some(c) = self.claims.as_ref().filter(|_| self.biased) else { return };
        let side = &*self.ctl().tail;
        loop {
            // Acquire: as B2.
            match side.bias.load(Ordering::Acquire) {
                SHARED => return,
                // Nobody owns it, so nobody stores `pos` plainly.
                FREE if side.bias.compare_exchange(FREE, SHARED, Ordering::Relaxed, Ordering::Relaxed).is_ok() => {
                    return
                }
                FREE => {}
                // Until it ends: a close waits for a stopped sender.
                bias => {
                    self.unbias(c, side, bias, SEND);
                }
            }
        }
    }

    #[inline(always)]
    fn claim_send_announcing<'a>(&'a self, word: &mut Option<&'a AtomicU64>) -> Result<u64, Stop> {
        let ctl = self.ctl();
        if self.none_left(End::Receiver) {
            return Err(Stop::Closed);
        }
        let mut tail = ctl.tail.pos.load(Ordering::Relaxed);
        loop {
            if tail & CLOSED != 0 {
                return Err(Stop::Closed);
            }
            if !self.room_at(tail) {
                return Err(Stop::NotNow);
            }
            let w = self.word(word);
            if let Some(w) = w {
                w.store(tail + 1, Ordering::Relaxed); // announce the claim
            }
            match self.claim_pos(&ctl.tail, w, tail, SEND) {
                Ok(()) => return Ok(tail),
                Err(Miss::At(now)) => tail = now,
                Err(Miss::Busy) => return Err(Stop::NotNow),
            }
        }
    }

    /// Whether position `tail` may be claimed: fewer than `cap` positions
    /// before it are unreleased (so its slot's previous lap, `n >= cap`
    /// positions back, is free too). Uses this process's copy of `released`
    /// while that says so; else rereads it.
    #[inline(always)]
    fn room_at(&self, tail: u64) -> bool {
        // Acquire: pairs with the Release store of the thread of this
        // process that last reread `released` (see "Memory ordering").
        let seen = self.room.released.load(Ordering::Acquire);
        self.room(tail, seen) || self.reread_released(tail)
    }

    /// Whether `tail` is less than a lap ahead of `released`. Saturating: a
    /// `tail` read before a `released` that has since passed it is stale;
    /// the CAS on it fails and the caller looks again.
    #[inline(always)]
    fn room(&self, tail: u64, released: u64) -> bool {
        tail.saturating_sub(released) < self.capacity()
    }

    /// Rereads `released` (pacing a saturated stream, as the SPSC ring's
    /// producer does) and caches it. Returns whether `tail` has room.
    #[inline(never)]
    fn reread_released(&self, tail: u64) -> bool {
        #[cfg_attr(loom, allow(unused_mut))]
        let mut released = self.load_released(tail);
        // A producer that keeps finding only a few slots free is outrunning
        // a saturated consumer, and each reread takes the `released` line
        // from it: let it free a run first (see `spsc::Pacer`).
        #[cfg(not(loom))]
        {
            let cap = self.capacity();
            let batch = (cap / 4).clamp(1, ROOM_BATCH);
            let free = |released: u64| cap.saturating_sub(tail.saturating_sub(released));
            // Relaxed (both): process-local bookkeeping.
            let mut pacer = Pacer::from_bits(self.room.pacer.load(Ordering::Relaxed));
            let mut got = free(released);
            if pacer.pause(got, got > 0, batch) {
                released = self.load_released(tail);
                let now = free(released);
                pacer.paid(got, now, STREAM_BATCH);
                got = now;
            }
            pacer.note(got < batch);
            self.room.pacer.store(pacer.to_bits(), Ordering::Relaxed);
        }
        // Release: see `room_at`.
        self.room.released.store(released, Ordering::Release);
        self.room(tail, released)
    }

    /// Loads `released`; when it says `tail` has no room, first moves it
    /// on over slots that consumers finished out of order.
    fn load_released(&self, tail: u64) -> u64 {
        // Acquire: pairs with the consumers' Release stores (and CASes) of
        // `released`: their reads of the freed slots happen before our
        // writes to them.
        let released = self.ctl().released.load(Ordering::Acquire);
        #[cfg(not(procring_bug = "queue_full_without_sweep"))]
        if !self.room(tail, released) {
            return self.advance_over_marks(released);
        }
        released
    }

    /// Moves `released` on from `released` over slots marked as read out of
    /// order, one CAS each; returns where it stopped (or the value found
    /// when another thread moved it first, which then goes on from there).
    fn advance_over_marks(&self, mut released: u64) -> u64 {
        let ctl = self.ctl();
        loop {
            // Acquire: pairs with the marking consumer's Release store; its
            // read of the payload happens before our CAS, which (Release)
            // passes it on to producers.
            if self.slots.seq(self.idx(released)).load(Ordering::Acquire) != marked(released) {
                return released;
            }
            match ctl.released.compare_exchange(released, released + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => released += 1,
                Err(now) => return now,
            }
        }
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
        let seq = if commit { pos + 1 } else { (pos + 1) | SKIP };
        // Release: pairs with the consumer's Acquire load of `seq`; the
        // payload written before is visible to whoever claims the slot.
        self.slots.seq(self.idx(pos)).store(seq, Ordering::Release);
        if let Some(c) = &self.claims {
            c.clear(claim.word);
        }
        self.ctl().not_empty.notify(self.barrier);
    }

    /// Claims a published slot for reading, if there is one now (slots
    /// published without a message are released and passed over); every so
    /// often when there is none, first resolves a dead process's claim.
    /// `NotNow` only if the ring was empty at some instant of the call (see
    /// [`Mpmc::settle_recv`]).
    #[inline(always)]
    pub(crate) fn try_claim_recv(&self) -> Result<Claim, Stop> {
        match self.claim_recv_quick() {
            Err(Stop::NotNow) => self.settle_recv(),
            other => other,
        }
    }

    /// As [`Mpmc::try_claim_recv`], but `NotNow` also while the next
    /// position is claimed and not yet published, whatever is queued behind
    /// it: for callers that look again anyway (a blocking receive's first
    /// try, the rest of a batch).
    #[inline(always)]
    pub(crate) fn claim_recv_quick(&self) -> Result<Claim, Stop> {
        match self.claim_recv_now() {
            Err(Stop::NotNow) if self.now_and_then() && self.look_into_the_dead(End::Sender) => self.claim_recv_now(),
            other => other,
        }
    }

    /// The end of a `try_` receive that found the next slot unpublished.
    /// Reporting empty then is honest only if nothing is queued: a sender
    /// may have claimed the next position and not yet published it while
    /// later senders have published theirs, and a crossbeam user expects
    /// those messages. So unless the queue is empty now
    /// ([`Mpmc::queued_behind_a_send`]), wait on `not_empty` (which every
    /// publish notifies) for the claim at `head` to be published, or its dead
    /// claimer's claim to be recovered, and claim again. A zero-copy
    /// reservation of this process may be that claim and be kept by this
    /// very thread, so with one outstanding the wait is not made (empty, as
    /// before).
    #[cold]
    #[inline(never)]
    fn settle_recv(&self) -> Result<Claim, Stop> {
        if !self.queued_behind_a_send() {
            return Err(Stop::NotNow);
        }
        // A live sender publishes within nanoseconds unless it lost its
        // core: spin for that, then sleep (in slices, in a segment, to look
        // into a dead claimer's claim).
        let wait = Wait { spin: SETTLE_SPIN, slice: self.claims.as_ref().map(|_| Wait::PEER_SLICE) };
        let outcome = self.ctl().not_empty.wait_until(self.barrier, &wait, None, |thorough| {
            if thorough {
                self.recover();
            }
            match self.claim_recv_now() {
                Err(Stop::NotNow) if self.queued_behind_a_send() => None,
                other => Some(other),
            }
        });
        outcome.unwrap_or(Err(Stop::NotNow))
    }

    /// Whether a message is queued behind a claim still under way at `head`
    /// (and no reservation of this process's may be that claim). If not,
    /// the queue was empty at the read of `tail`.
    fn queued_behind_a_send(&self) -> bool {
        let ctl = self.ctl();
        let head = ctl.head.pos.load(Ordering::Relaxed);
        // Acquire: pairs with the producers' Release CAS of `tail`, for the
        // claims' announcements (`recover` reads them).
        let tail = ctl.tail.pos.load(Ordering::Acquire) & !CLOSED;
        // Relaxed: process-local; a reservation counted is one whose claim
        // this thread may be waiting on.
        tail > head && self.published_in(head, tail) && self.room.reservations.load(Ordering::Relaxed) == 0
    }

    /// Whether any position in `from..to` (all claimed by senders) has been
    /// published, read or not. If none has, each was unpublished when it was
    /// read, and so at the earlier read of `tail`: no message was queued
    /// then.
    fn published_in(&self, from: u64, to: u64) -> bool {
        // Positions beyond a lap are not claimed (tail - released <= cap).
        (from..to.min(from + self.capacity())).any(|pos| {
            // Acquire: pairs with `publish`; only the value matters here.
            let seq = self.slots.seq(self.idx(pos)).load(Ordering::Acquire);
            seq & !(SKIP | DONE) > pos
        })
    }

    /// Claims a published slot for reading, if there is one now.
    #[inline(always)]
    fn claim_recv_now(&self) -> Result<Claim, Stop> {
        let mut word = None;
        let attempt = self.claim_recv_announcing(&mut word);
        self.claimed(attempt, word)
    }

    #[inline(always)]
    fn claim_recv_announcing<'a>(&'a self, word: &mut Option<&'a AtomicU64>) -> Result<u64, Stop> {
        let ctl = self.ctl();
        let mut head = ctl.head.pos.load(Ordering::Relaxed);
        loop {
            // Acquire: pairs with the producer's Release in `publish`.
            let seq = self.slots.seq(self.idx(head)).load(Ordering::Acquire);
            let diff = (seq & !(SKIP | DONE)).wrapping_sub(head + 1) as i64;
            if diff == 0 && seq & DONE == 0 {
                let w = self.word(word);
                if let Some(w) = w {
                    w.store((head + 1) | RECV_CLAIM, Ordering::Relaxed); // announce the claim
                }
                match self.claim_pos(&ctl.head, w, head, RECV) {
                    Ok(()) if seq & SKIP != 0 => {
                        ctl.counters.skipped.fetch_add(1, Ordering::Relaxed);
                        self.release_slot(head);
                        head += 1;
                    }
                    Ok(()) => return Ok(head),
                    Err(Miss::At(now)) => head = now,
                    Err(Miss::Busy) => return Err(Stop::NotNow),
                }
            } else if diff < 0 {
                // Not published yet: empty, or a producer is still writing
                // it. Either way there is nothing to take now, unless the
                // queue is closed or has no sender left: only then look at
                // `tail` (see "Close").
                let orphaned = self.none_left(End::Sender);
                if !orphaned && !self.closed_flag() {
                    return Err(Stop::NotNow);
                }
                // Acquire: pairs with `close`, and (after the Acquire load
                // of the senders' count) carries every claim of theirs.
                let tail = ctl.tail.pos.load(Ordering::Acquire);
                if tail & !CLOSED == head {
                    // Truly empty: nothing claimed that is not consumed.
                    return Err(if orphaned || tail & CLOSED != 0 { Stop::Closed } else { Stop::NotNow });
                }
                // A producer claimed `head` and is still writing it (or `head`
                // moved on): look again, or report empty for now.
                let now = ctl.head.pos.load(Ordering::Relaxed);
                if now == head {
                    return Err(Stop::NotNow);
                }
                head = now;
            } else {
                // Another consumer took this position (and may have read it
                // already: a mark); `head` has moved on.
                let now = ctl.head.pos.load(Ordering::Relaxed);
                if now == head {
                    return Err(Stop::Corrupt("a slot's sequence is ahead of the consumers' position"));
                }
                head = now;
            }
        }
    }

    /// Marks `claim` as held by a zero-copy guard, which may outlive the
    /// call that claimed it (see [`Claims::hold`]).
    #[inline]
    pub(crate) fn hold(&self, claim: Claim) {
        if let Some(c) = &self.claims {
            c.hold(claim.word);
        }
    }

    /// Marks `claim`, a send claim, as held by a zero-copy guard until
    /// [`Mpmc::publish_held`].
    pub(crate) fn hold_send(&self, claim: Claim) {
        self.hold(claim);
        // Relaxed: see `settle_recv`.
        self.room.reservations.fetch_add(1, Ordering::Relaxed);
    }

    /// Publishes a claim held by [`Mpmc::hold_send`], as [`Mpmc::publish`].
    pub(crate) fn publish_held(&self, claim: Claim, commit: bool) {
        self.publish(claim, commit);
        // Relaxed: see `settle_recv`.
        self.room.reservations.fetch_sub(1, Ordering::Relaxed);
    }

    /// Releases a slot this handle has read, for the next lap's producer.
    #[inline]
    pub(crate) fn release(&self, claim: Claim) {
        self.release_slot(claim.pos);
        if let Some(c) = &self.claims {
            c.clear(claim.word);
        }
    }

    /// Releases position `pos`, in order or by a mark (see "Protocol").
    #[inline]
    fn release_slot(&self, pos: u64) {
        let ctl = self.ctl();
        // Acquire: the store of `pos` by the consumer before us happens
        // before ours, so ours carries its reads along to producers.
        if ctl.released.load(Ordering::Acquire) == pos {
            // Release: pairs with the producers' Acquire load; our read of
            // the payload happens before the next lap's write.
            ctl.released.store(pos + 1, Ordering::Release);
            // Consumers after us may have finished first and marked their
            // slots: only if someone claimed after us (with one consumer,
            // never; this keeps its next slot's line out of the way).
            if ctl.head.pos.load(Ordering::Relaxed) != pos + 1 {
                self.advance_over_marks(pos + 1);
            }
        } else {
            // Release: pairs with the Acquire load in `advance_over_marks`.
            self.slots.seq(self.idx(pos)).store(marked(pos), Ordering::Release);
            // The consumer before us may have finished meanwhile without
            // seeing our mark (or left marks unswept the same way): move
            // `released` on from wherever it is now. Best effort; a
            // producer that finds the ring full looks for marks itself.
            // Acquire: as in `advance_over_marks`.
            self.advance_over_marks(ctl.released.load(Ordering::Acquire));
        }
        ctl.not_full.notify(self.barrier);
    }

    /// Whether a `try_` call that found nothing to do should look for a dead
    /// process's claim: every 1024th such call in a thread.
    fn now_and_then(&self) -> bool {
        self.claims.is_some() && now_and_then()
    }

    /// Resolves claims whose process died where they block the queue: a
    /// producer's unpublished claim at `head` (consumers wait on it), a
    /// consumer's unreleased claim at `released` (producers wait on it).
    /// Then clears dead processes' resolved claim words and handle counts,
    /// so that their rows can be reused. Returns whether it resolved a claim.
    pub(crate) fn recover(&self) -> bool {
        let Some(c) = &self.claims else { return false };
        let ctl = self.ctl();
        let mut resolved = false;
        // Acquire (both): pair with the claims' Release CASes, so their
        // announcements are visible below.
        let head = ctl.head.pos.load(Ordering::Acquire);
        let tail = ctl.tail.pos.load(Ordering::Acquire) & !CLOSED;
        let seq_of = |pos: u64| self.slots.seq(self.idx(pos));
        // A producer claimed `head` (tail is past it) and has not published.
        // The slot still holds an earlier lap's value (`released` is past
        // that lap's position, so no one else writes it now).
        let seq = seq_of(head).load(Ordering::Acquire);
        if tail > head
            && seq & !(SKIP | DONE) < head + 1
            && c.suspect(0, head + 1)
            && c.claimed_only_by_dead(head + 1)
            // AcqRel: as a publish (Release) of an empty slot; fails if the
            // slot moved on meanwhile.
            && seq_of(head).compare_exchange(seq, (head + 1) | SKIP, Ordering::AcqRel, Ordering::Relaxed).is_ok()
        {
            ctl.counters.abandoned.fetch_add(1, Ordering::Relaxed);
            ctl.not_empty.notify(self.barrier);
            resolved = true;
        }
        // A consumer claimed `released` (head is past it) and has neither
        // released nor marked it: producers wait for that slot. Mark it for
        // the consumer, then move `released` on.
        // Acquire: as `head` above; and the marks before it.
        let released = ctl.released.load(Ordering::Acquire);
        let seq = seq_of(released).load(Ordering::Acquire);
        if head > released
            && seq & !SKIP == released + 1
            && c.suspect(1, (released + 1) | RECV_CLAIM)
            && c.claimed_only_by_dead((released + 1) | RECV_CLAIM)
            // AcqRel: as a mark (Release); fails if the slot moved on.
            && seq_of(released)
                .compare_exchange(seq, marked(released), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            ctl.counters.abandoned.fetch_add(1, Ordering::Relaxed);
            self.advance_over_marks(released);
            ctl.not_full.notify(self.barrier);
            resolved = true;
        }
        if resolved {
            self.sweep(c.table.rows());
        }
        resolved
    }

    /// Clears dead processes' claim words for positions that are resolved
    /// (published, released, or never won). A claim still blocking is left
    /// for `recover`. The rows themselves stay, as the record of who died
    /// (`procring ls`, stale segments), until an attacher needs the room:
    /// a process opening the queue sweeps before it takes a row, so that a
    /// table full of dead processes' rows (whose owned words still
    /// announce their last, finished claims) has rows to free.
    pub(crate) fn sweep(&self, rows: &[Row]) {
        self.sweep_ends(rows);
        for row in rows {
            if row.pid().is_none() || row.alive() {
                continue;
            }
            // Read the positions only now, after seeing the process dead:
            // its death is ordered after its last claim (see `peer`), so
            // these values include that claim. Values read before could
            // make a claim won since look never won.
            let at = self.positions();
            for w in &row.claims {
                let claim = w.load(Ordering::Acquire);
                let done = match claim {
                    0 => continue,
                    TAKEN => true,
                    _ => self.finished(claim, at),
                };
                if done {
                    // Relaxed: a dead process's word; nobody else writes it.
                    let _ = w.compare_exchange(claim, 0, Ordering::Relaxed, Ordering::Relaxed);
                }
            }
        }
    }

    /// `head`, `tail` (without `CLOSED`) and `released`, for [`Mpmc::finished`].
    fn positions(&self) -> [u64; 3] {
        let ctl = self.ctl();
        // Acquire (all): pair with the claims' Release CASes and stores, and
        // with the Release stores of `released`.
        let head = ctl.head.pos.load(Ordering::Acquire);
        let tail = ctl.tail.pos.load(Ordering::Acquire) & !CLOSED;
        [head, tail, ctl.released.load(Ordering::Acquire)]
    }

    /// Whether the claim a word announces (neither 0 nor `TAKEN`) is
    /// finished, or was never won, judged by its slot and by the positions
    /// `[head, tail, released]` read before.
    fn finished(&self, claim: u64, [head, tail, released]: [u64; 3]) -> bool {
        let pos = (claim & !RECV_CLAIM).wrapping_sub(1);
        // Acquire: a publish, mark or release seen here happened.
        let seq = self.slots.seq(self.idx(pos)).load(Ordering::Acquire) & !SKIP;
        if claim & RECV_CLAIM == 0 {
            // Never won, or published (this lap or a later one).
            pos >= tail || seq & !DONE > pos
        } else {
            // Never won, released, or marked (or a later lap's).
            pos >= head || released > pos || seq != pos + 1
        }
    }

    /// The positions (as `procring ls` shows them: the claim word minus
    /// one, with the consumer bit) that `row`'s words announce and that are
    /// not finished now.
    pub(crate) fn unfinished_claims(&self, row: &Row) -> Vec<u64> {
        let at = self.positions();
        row.claims
            .iter()
            // Relaxed: a snapshot for a person to read.
            .map(|w| w.load(Ordering::Relaxed))
            .filter(|&c| c != 0 && (c == TAKEN || !self.finished(c, at)))
            .map(|c| c.wrapping_sub(1))
            .collect()
    }

    /// Claims a slot for writing, waiting for room until `deadline`.
    #[inline(always)]
    pub(crate) fn claim_send(&self, wait: &Wait, limit: Limit) -> Result<Claim, Stop> {
        match self.try_claim_send() {
            Err(Stop::NotNow) => self.wait_send(wait, limit.deadline()),
            other => other,
        }
    }

    /// The rest of [`Mpmc::claim_send`], once its first try found the ring full.
    #[inline(never)]
    #[cfg_attr(loom, allow(clippy::modulo_one))] // LOOK_EVERY is 1 under loom
    fn wait_send(&self, wait: &Wait, deadline: Option<Instant>) -> Result<Claim, Stop> {
        // Full. Every look rereads `released`, which the consumer stores on
        // every message; a sender that looked again at once would cost a
        // saturated consumer a line transfer per message. Let it free a run
        // of slots first (as the SPSC ring's stream detection does).
        #[cfg(not(loom))]
        super::spsc::stream_pause();
        // Then look only every LOOK_EVERY spin steps, for the same reason.
        let mut spins = 0u32;
        let outcome = self.ctl().not_full.wait_until(self.barrier, wait, deadline, |thorough| {
            spins = spins.wrapping_add(1);
            if !thorough && spins % LOOK_EVERY != 0 {
                return None;
            }
            match self.claim_send_now() {
                Err(Stop::NotNow) if thorough && self.look_into_the_dead(End::Receiver) => {
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
    pub(crate) fn claim_recv(&self, wait: &Wait, limit: Limit) -> Result<Claim, Stop> {
        match self.claim_recv_quick() {
            Err(Stop::NotNow) => self.wait_recv(wait, limit.deadline()),
            other => other,
        }
    }

    /// The rest of [`Mpmc::claim_recv`], once its first try found the ring empty.
    #[inline(never)]
    fn wait_recv(&self, wait: &Wait, deadline: Option<Instant>) -> Result<Claim, Stop> {
        let outcome =
            self.ctl().not_empty.wait_until(self.barrier, wait, deadline, |thorough| match self.claim_recv_now() {
                Err(Stop::NotNow) if thorough && self.look_into_the_dead(End::Sender) => match self.claim_recv_now() {
                    Err(Stop::NotNow) => None,
                    other => Some(other),
                },
                Err(Stop::NotNow) => None,
                other => Some(other),
            });
        outcome.unwrap_or(Err(Stop::Timeout))
    }
}

/// Whether this thread's claim of `pos` (on one side of the queue at
/// `key`) makes [`TAKE_AFTER`] in a row that nobody else's came between.
#[cfg(not(loom))]
#[inline(always)]
fn uncontended_run(key: usize, pos: u64, send: bool) -> bool {
    // (queue, next position if uncontended, claims in the run) per side.
    thread_local!(static RUNS: std::cell::Cell<[(usize, u64, u32); 2]> = const { std::cell::Cell::new([(0, 0, 0); 2]) });
    RUNS.with(|r| {
        let mut runs = r.get();
        let run = &mut runs[usize::from(send)];
        let n = if run.0 == key && run.1 == pos { run.2 + 1 } else { 0 };
        let take = n >= TAKE_AFTER;
        *run = (key, pos + 1, if take { 0 } else { n });
        r.set(runs);
        take
    })
}

/// Under loom every uncontended claim tries to take the bias, so that the
/// models see it taken and revoked.
#[cfg(loom)]
fn uncontended_run(_key: usize, _pos: u64, _send: bool) -> bool {
    true
}

/// The calling thread's tag, below [`OWNER_ROW_SHIFT`] bits and never 0.
#[cfg(not(loom))]
#[inline(always)]
fn bias_tag() -> Option<u64> {
    let tag = crate::thread_tag::current()?;
    (tag < 1 << OWNER_ROW_SHIFT).then_some(tag)
}

/// Under loom, a tag per model thread (loom's threads share one OS thread).
#[cfg(loom)]
fn bias_tag() -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    loom::thread::current().id().hash(&mut h);
    Some(h.finish() & ((1 << OWNER_ROW_SHIFT) - 1) | 1)
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

/// How often a handle looks at the rows for dead processes' handle counts,
/// at most (see [`Claims::time_to_look`]): well within a blocked call's
/// 50 ms slice, so each slice's thorough poll looks.
#[cfg(not(loom))]
const LOOK_AT_ENDS_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

/// Spin steps a `try_` receive spends waiting for a send under way that a
/// queued message waits behind, before it sleeps (under loom none: a
/// model's spins are scheduling points).
const SETTLE_SPIN: u32 = if cfg!(loom) { 0 } else { 1 << 12 };

/// A sender waiting for room rereads `released` every this many spin steps
/// (under loom, every step: a model's spins are scheduling points).
const LOOK_EVERY: u32 = if cfg!(loom) { 1 } else { 32 };

/// True on every 1024th call in a thread: for checks too costly to make on
/// every miss.
fn now_and_then() -> bool {
    #[cfg(not(loom))]
    {
        thread_local!(static MISSES: std::cell::Cell<u32> = const { std::cell::Cell::new(0) });
        MISSES.with(|m| {
            m.set(m.get().wrapping_add(1));
            m.get() % 1024 == 0
        })
    }
    #[cfg(loom)]
    false
}

/// The size of a control block, for layouts.
pub(crate) const CONTROL_LEN: usize = size_of::<Control>();

/// A queue of `u64`s whose handles act as separate (made-up) processes,
/// each with its own row in an attachment table, for the loom models of
/// claims and death.
#[cfg(loom)]
pub mod claims_model {
    use std::sync::Arc;

    use super::*;
    use crate::peer::Identity;

    /// The queue's memory: control block, slots, attachment table.
    #[derive(Debug)]
    pub struct Shared {
        ctl: Box<Control>,
        slots: Slots,
        rows: Box<[Row]>,
        cap: u64,
    }

    // SAFETY: all shared state is loom atomics, and slot payloads are
    // accessed only as the ring protocol allows (loom checks that).
    unsafe impl Send for Shared {}
    // SAFETY: as above.
    unsafe impl Sync for Shared {}

    /// A queue of capacity `cap` (at least 1) with room for
    /// `processes` attached processes.
    pub fn queue(cap: u64, processes: usize) -> Arc<Shared> {
        let shared = Shared {
            ctl: Box::new(Control::new()),
            slots: Slots::new_loom(cap),
            rows: (0..processes).map(|_| Row::default()).collect(),
            cap,
        };
        Arc::new(shared)
    }

    /// One process's handle.
    #[derive(Debug)]
    pub struct Process {
        ring: Mpmc,
        pid: u32,
        _shared: Arc<Shared>,
    }

    // SAFETY: as a `Queue`'s handles: the ring's pointers point into
    // `_shared`, kept alive here, and the protocol makes use from several
    // threads sound (which is what the models check).
    unsafe impl Send for Process {}
    // SAFETY: as above.
    unsafe impl Sync for Process {}

    impl Process {
        /// Attaches made-up process `pid` (> 0), counted as a sender and a
        /// receiver (its handles are never uncounted: a model's processes
        /// keep them to the end, or die with them).
        pub fn attach(shared: &Arc<Shared>, pid: u32) -> Self {
            Self::attach_ends(shared, pid, true, true)
        }

        /// As [`Process::attach`], counted as a sender and/or a receiver
        /// (see "Disconnection").
        pub fn attach_ends(shared: &Arc<Shared>, pid: u32, sender: bool, receiver: bool) -> Self {
            let p = Self::attach_row(shared, pid);
            for (yes, end) in [(sender, End::Sender), (receiver, End::Receiver)] {
                if yes {
                    p.ring.attach_end(end);
                }
            }
            p
        }

        fn attach_row(shared: &Arc<Shared>, pid: u32) -> Self {
            // SAFETY: the rows live in `shared`, which this handle keeps.
            let table = unsafe { Table::new(NonNull::from(&shared.rows[0]), shared.rows.len()) };
            let row =
                table.attach(Identity::fake(pid), crate::peer::role::SEND | crate::peer::role::RECV).expect("a row");
            let mine = NonNull::from(row.row());
            // The row stays attached for the model's life (a dead process
            // never detaches; a live one need not).
            std::mem::forget(row);
            // SAFETY: the control block, slots and rows live in `shared`.
            let ring = unsafe {
                Mpmc::new(
                    NonNull::from(&*shared.ctl),
                    shared.slots.clone(),
                    shared.cap,
                    Barrier::Symmetric,
                    Some(Claims::new(table, mine)),
                )
            };
            Self { ring, pid, _shared: shared.clone() }
        }

        fn write(&self, claim: Claim, words: usize, value: u64) {
            let p = self.ring.payload_mut(claim);
            for i in 0..words {
                // SAFETY: a claimed slot's payload of LOOM_WORDS words.
                unsafe { p.ptr.cast::<u64>().add(i).write(value) };
            }
            p.end();
        }

        /// Receives until the queue is disconnected (no sender left in a
        /// live process) and drained, looking into dead processes whenever
        /// it finds nothing; returns what it received.
        pub fn recv_until_disconnected(&self) -> Vec<u64> {
            let mut got = Vec::new();
            loop {
                match self.ring.claim_recv_now() {
                    Ok(claim) => {
                        let p = self.ring.payload_ref(claim);
                        // SAFETY: a claimed slot's payload of LOOM_WORDS words.
                        got.push(unsafe { p.ptr.cast::<u64>().read() });
                        p.end();
                        self.ring.release(claim);
                    }
                    Err(Stop::NotNow) => {
                        if !self.ring.look_into_the_dead(End::Sender) {
                            loom::thread::yield_now();
                        }
                    }
                    Err(Stop::Closed) => return got,
                    Err(e) => panic!("{e:?}"),
                }
            }
        }

        /// Sends `value` in all of a slot's words, if there is room now.
        pub fn try_send(&self, value: u64) -> bool {
            let Ok(claim) = self.ring.claim_send_now() else { return false };
            self.write(claim, LOOM_WORDS, value);
            self.ring.publish(claim, true);
            true
        }

        /// Sends `value`, resolving dead processes' claims while the queue
        /// is full; `false` if `tries` attempts found no room.
        pub fn send(&self, value: u64, mut tries: u32) -> bool {
            loop {
                if self.try_send(value) {
                    return true;
                }
                if self.ring.recover() {
                    continue;
                }
                if tries == 0 {
                    return false;
                }
                tries -= 1;
                loom::thread::yield_now();
            }
        }

        /// Claims a message, reads part of it, and dies.
        pub fn recv_and_die(self) {
            let claim = self.ring.claim_recv_now().expect("a message to claim");
            let p = self.ring.payload_ref(claim);
            // SAFETY: a claimed slot's payload.
            let _first = unsafe { p.ptr.cast::<u64>().read() };
            self.die();
        }

        /// Claims a slot, writes half of it, and dies.
        pub fn claim_and_die(self, value: u64) {
            let claim = self.ring.claim_send_now().expect("room to claim");
            self.write(claim, LOOM_WORDS / 2, value);
            self.die();
        }

        /// Claims a slot as a zero-copy guard does (held past the call),
        /// sends `value` while holding it, and dies without publishing it.
        pub fn hold_send_and_die(self, value: u64) {
            let guard = self.ring.claim_send_now().expect("room to claim");
            self.ring.hold(guard);
            assert!(self.try_send(value), "room for a second message");
            self.die();
        }

        /// Dies: a dead process runs no destructors (its claim words and
        /// handle counts stay as they are).
        pub fn die(self) {
            crate::peer::loom_kill(self.pid);
            std::mem::forget(self);
        }

        /// Receives a message, resolving dead processes' claims while the
        /// queue has none for it: `None` once `tries` attempts found nothing
        /// (a model cannot spin for ever), or, if `tries` is `None`, once the
        /// queue is empty and every claim is resolved. Asserts that what it
        /// receives is whole.
        pub fn recv(&self, mut tries: Option<u32>) -> Option<u64> {
            loop {
                match self.ring.claim_recv_now() {
                    Ok(claim) => {
                        let p = self.ring.payload_ref(claim);
                        // SAFETY: a claimed slot's payload of LOOM_WORDS words.
                        let words: Vec<u64> =
                            (0..LOOM_WORDS).map(|i| unsafe { p.ptr.cast::<u64>().add(i).read() }).collect();
                        p.end();
                        self.ring.release(claim);
                        assert!(
                            words.iter().all(|&w| w == words[0]),
                            "a half-written message was delivered: {words:?}"
                        );
                        return Some(words[0]);
                    }
                    Err(Stop::NotNow) => {
                        if self.ring.recover() {
                            continue;
                        }
                        // Nothing claimed beyond `head`: truly empty.
                        match &mut tries {
                            None if self.ring.len() == 0 => return None,
                            Some(0) => return None,
                            Some(n) => *n -= 1,
                            None => {}
                        }
                        loom::thread::yield_now();
                    }
                    // Closed and drained.
                    Err(Stop::Closed) => return None,
                    Err(e) => panic!("{e:?}"),
                }
            }
        }

        /// Closes the queue; whether this call closed it.
        pub fn close(&self) -> bool {
            self.ring.close()
        }

        /// Whether the queue is closed.
        pub fn is_closed(&self) -> bool {
            self.ring.is_closed()
        }

        /// Claims resolved because their process died.
        pub fn abandoned(&self) -> u64 {
            self.ring.abandoned()
        }

        /// This process's claim words that announce an unfinished claim,
        /// or are taken, or held by a guard.
        pub fn claims_in_use(&self) -> usize {
            let c = self.ring.claims.as_ref().expect("a model queue records claims");
            let held = c.held.iter().filter(|h| h.load(Ordering::Relaxed) != 0).count();
            self.ring.unfinished_claims(c.mine()).len() + held
        }
    }
}
