//! A single-producer single-consumer ring of variable-length messages, over
//! a byte region it is handed. This is what `Pipe` carries.
//!
//! # Protocol
//!
//! The shared state is the SPSC ring's control block ([`super::spsc::Control`]):
//! `tail` and `head`, byte positions that only grow, peer slots and two
//! eventcounts. The region holds `cap` bytes (a power of two, at least 64).
//! A message is a *record*: an 8-byte header (bits 0..32 the payload's
//! length, bit 32 `WRAP`), then the payload, padded to 8 bytes. A record never
//! crosses the end of the region. When one would, the producer writes a wrap
//! record (just a header with `WRAP`) in the remaining space and puts the
//! message at offset 0, so every message is contiguous and readable in place.
//!
//! **Invariant:** `head <= tail <= head + cap`, both multiples of 8. The
//! bytes in `head..tail` are complete records, which belong to the consumer.
//! The producer writes a record (payload, then headers) and only then stores
//! `tail` past it (Release). The consumer loads `tail` (Acquire), reads records
//! in place, and stores `head` past them (Release) when it is done with them.
//!
//! A message of up to `cap / 2 - 8` bytes always fits in an empty ring,
//! wherever `tail` is: either it fits before the end, or the wrap wastes
//! less than `cap / 2`. A larger one is refused with both sizes.
//!
//! Every header is read from shared memory and is untrusted. A length whose
//! record would leave the region, or pass `tail`, is reported as corrupt and
//! nothing is read.

#[cfg(not(loom))]
use std::ptr::NonNull;

use crate::peer::PeerState;
use crate::sync::{Barrier, Ordering};

use super::spsc::{Control, Pacer, STREAM_BATCH};

/// Bytes in a record header.
pub(crate) const HDR: u64 = 8;
/// Header bit: a wrap record (skip to the start of the region).
const WRAP: u64 = 1 << 32;

/// Bytes a record for a `len`-byte message takes.
fn record_len(len: u64) -> u64 {
    (HDR + len).next_multiple_of(8)
}

/// The largest message a ring of `cap` bytes carries.
pub(crate) fn max_message(cap: u64) -> usize {
    (cap / 2 - HDR) as usize
}

// ---------------------------------------------------------------------------
// The byte region
// ---------------------------------------------------------------------------

/// The region: raw memory normally; one loom cell per 8-byte word under loom,
/// so that loom checks every access but disjoint records do not conflict.
#[derive(Debug)]
pub(crate) struct Region {
    #[cfg(not(loom))]
    base: NonNull<u8>,
    #[cfg(loom)]
    words: Box<[crate::sync::UnsafeCell<u64>]>,
    cap: u64,
}

impl Region {
    /// # Safety
    /// `base` points to `cap` bytes, 8-aligned, valid while the region is used,
    /// and accessed by other parties only through this protocol.
    #[cfg(not(loom))]
    pub(crate) unsafe fn new(base: NonNull<u8>, cap: u64) -> Self {
        Self { base, cap }
    }

    #[cfg(loom)]
    pub(crate) fn new_loom(cap: u64) -> Self {
        Self { words: (0..cap / 8).map(|_| crate::sync::UnsafeCell::new(0)).collect(), cap }
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.cap
    }

    /// The byte at offset `off` (< cap).
    #[cfg(not(loom))]
    fn at(&self, off: u64) -> *mut u8 {
        debug_assert!(off < self.cap);
        // SAFETY: `off < cap`: in bounds (constructor's contract).
        unsafe { self.base.as_ptr().add(off as usize) }
    }

    fn write_word(&self, off: u64, v: u64) {
        #[cfg(not(loom))]
        // SAFETY: `off` is 8-aligned and `off + 8 <= cap`: this record's
        // header, owned by the producer until it is published.
        unsafe {
            self.at(off).cast::<u64>().write(v)
        };
        #[cfg(loom)]
        // SAFETY: loom checks that no other access overlaps this one.
        unsafe {
            *self.words[(off / 8) as usize].get_mut().deref() = v
        };
    }

    fn read_word(&self, off: u64) -> u64 {
        #[cfg(not(loom))]
        // SAFETY: `off` is 8-aligned and in bounds: a published header, which
        // the producer does not write until the consumer releases it.
        return unsafe { self.at(off).cast::<u64>().read() };
        #[cfg(loom)]
        // SAFETY: loom checks that no other access overlaps this one.
        return unsafe { *self.words[(off / 8) as usize].get().deref() };
    }

    /// Copies `src` into the region at `off` (8-aligned, within one record).
    fn write_bytes(&self, off: u64, src: &[u8]) {
        #[cfg(not(loom))]
        // SAFETY: the record at `off` is the producer's until published and
        // holds at least `src.len()` bytes before the end of the region.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.at(off), src.len())
        };
        #[cfg(loom)]
        for (i, chunk) in src.chunks(8).enumerate() {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.write_word(off + 8 * i as u64, u64::from_le_bytes(w));
        }
    }

    /// Copies from the region at `off` (8-aligned, within one record) to `dst`.
    fn read_bytes(&self, off: u64, dst: &mut [u8]) {
        #[cfg(not(loom))]
        // SAFETY: a published, unreleased record of at least `dst.len()` bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(self.at(off), dst.as_mut_ptr(), dst.len())
        };
        #[cfg(loom)]
        for (i, chunk) in dst.chunks_mut(8).enumerate() {
            let w = self.read_word(off + 8 * i as u64).to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
    }

    /// The payload at `off` as a mutable slice (zero-copy writing).
    ///
    /// # Safety
    /// `off..off + len` is within a record the caller has placed and not yet
    /// published, and nothing else uses the slice while it lives.
    #[cfg(not(loom))]
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn slice_mut(&self, off: u64, len: usize) -> &mut [u8] {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.at(off.min(self.cap - 1)), len) }
    }

    /// The payload at `off` as a slice (zero-copy reading).
    ///
    /// # Safety
    /// `off..off + len` is within a published record the caller has not yet
    /// released.
    #[cfg(not(loom))]
    pub(crate) unsafe fn slice(&self, off: u64, len: usize) -> &[u8] {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts(self.at(off.min(self.cap - 1)), len) }
    }
}

// ---------------------------------------------------------------------------
// The two ends
// ---------------------------------------------------------------------------

/// Why a write or read did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// No room / no message right now.
    NotNow,
    /// The other side is gone (and, for reading, the ring is drained).
    Disconnected,
    /// The deadline passed.
    Timeout,
    /// The message can never fit: `size` > `max`.
    TooLarge { size: usize, max: usize },
    /// The shared state or a header is impossible.
    Corrupt(&'static str),
}

/// Where a placed record goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Place {
    /// Offset of the wrap record, if the message goes to the start.
    wrap_at: Option<u64>,
    /// Region offset of the payload.
    pub(crate) payload: u64,
    pub(crate) len: usize,
    /// `tail` after publishing.
    end: u64,
}

/// A located message: where its payload is, and `head` after releasing it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Found {
    pub(crate) payload: u64,
    pub(crate) len: usize,
    end: u64,
}

/// The writing end's protocol state (process-local).
#[derive(Debug)]
pub(crate) struct Writer {
    tail: u64,
    head_cache: u64,
    /// A run: rereads of `head` that found room for fewer than a batch of
    /// messages this size (the SPSC producer's stream detection).
    pacer: Pacer,
}

impl Writer {
    pub(crate) fn new(ctl: &Control) -> Self {
        // Acquire: we may be re-attaching; continue after what was published.
        Self {
            tail: ctl.tail.load(Ordering::Acquire),
            head_cache: ctl.head.load(Ordering::Acquire),
            pacer: Pacer::default(),
        }
    }

    /// Finds room for a `len`-byte message now, or says why not.
    #[inline(always)]
    pub(crate) fn try_place(&mut self, ctl: &Control, region: &Region, len: usize) -> Result<Place, Stop> {
        let cap = region.capacity();
        let max = max_message(cap);
        if len > max {
            return Err(Stop::TooLarge { size: len, max });
        }
        if ctl.peers.consumer.state(false) == PeerState::Gone {
            return Err(Stop::Disconnected);
        }
        let need = record_len(len as u64);
        let off = self.tail & (cap - 1);
        let to_end = cap - off;
        let (wrap_at, total) = if need <= to_end { (None, need) } else { (Some(off), to_end + need) };
        if self.room(cap) < total {
            let mut room = self.reread_head(ctl, cap);
            // As the SPSC producer: a writer that keeps finding the ring
            // nearly full lets the reader free a run before it looks again.
            // A reader slower than the SPSC ring's frees about half a batch
            // of small messages in one pause; that still pays.
            let batch = need.saturating_mul(STREAM_BATCH);
            if self.pacer.pause(room, room >= total, batch) {
                let before = room;
                room = self.reread_head(ctl, cap);
                self.pacer.paid(before, room, batch / 2);
            }
            self.pacer.note(room < batch);
            if room < total {
                return Err(Stop::NotNow);
            }
        }
        let payload = if wrap_at.is_some() { 0 } else { off } + HDR;
        Ok(Place { wrap_at, payload, len, end: self.tail + total })
    }

    /// Free bytes as of the cached `head`; a corrupt `head` (ahead of
    /// `tail`, or far behind) reads as full.
    fn room(&self, cap: u64) -> u64 {
        match self.tail.wrapping_sub(self.head_cache) {
            used if used <= cap => cap - used,
            _ => 0,
        }
    }

    fn reread_head(&mut self, ctl: &Control, cap: u64) -> u64 {
        // Acquire: pairs with the consumer's Release store of `head`; its
        // reads of the released bytes happen before we overwrite them.
        self.head_cache = ctl.head.load(Ordering::Acquire);
        self.room(cap)
    }

    /// Copies `src` into a placed record.
    #[inline(always)]
    pub(crate) fn write(&self, region: &Region, place: &Place, src: &[u8]) {
        debug_assert_eq!(src.len(), place.len);
        region.write_bytes(place.payload, src);
    }

    /// Publishes a placed record whose payload is written.
    #[inline(always)]
    pub(crate) fn commit(&mut self, ctl: &Control, region: &Region, place: Place, barrier: Barrier) {
        if let Some(at) = place.wrap_at {
            region.write_word(at, WRAP);
        }
        region.write_word(place.payload - HDR, place.len as u64);
        self.tail = place.end;
        // Release: pairs with the consumer's Acquire load of `tail`; the
        // payload and headers written above are visible to it.
        ctl.tail.store(place.end, Ordering::Release);
        ctl.not_empty.notify(barrier);
    }
}

/// The reading end's protocol state (process-local).
#[derive(Debug)]
pub(crate) struct Reader {
    head: u64,
    tail_cache: u64,
    /// A run: rereads of `tail` that found messages (the SPSC consumer's
    /// stream detection).
    pacer: Pacer,
    /// The last record's length: a batch is `STREAM_BATCH` records like it.
    last_record: u64,
}

impl Reader {
    pub(crate) fn new(ctl: &Control) -> Self {
        // Acquire: we may be re-attaching; continue after what was consumed.
        let head = ctl.head.load(Ordering::Acquire);
        Self { head, tail_cache: head, pacer: Pacer::default(), last_record: HDR }
    }

    /// Bytes published and not yet consumed, rereading `tail` if none are known.
    #[inline(always)]
    fn available(&mut self, ctl: &Control, cap: u64) -> Result<u64, Stop> {
        let mut avail = self.tail_cache.wrapping_sub(self.head);
        if avail == 0 {
            avail = self.reread_tail(ctl);
            // As the SPSC consumer: a reader that keeps finding only a few
            // messages takes the `tail` line from the writer once per
            // message; in a stream it lets the writer publish a run first.
            let batch = self.last_record.saturating_mul(STREAM_BATCH);
            if self.pacer.pause(avail, avail != 0, batch) {
                let before = avail;
                avail = self.reread_tail(ctl);
                self.pacer.paid(before, avail, batch);
            }
            self.pacer.note(avail != 0);
        }
        if avail > cap || avail % 8 != 0 {
            self.tail_cache = self.head;
            return Err(Stop::Corrupt("the producer's position is impossible"));
        }
        Ok(avail)
    }

    fn reread_tail(&mut self, ctl: &Control) -> u64 {
        // Acquire: pairs with the producer's Release store of `tail`.
        self.tail_cache = ctl.tail.load(Ordering::Acquire);
        self.tail_cache.wrapping_sub(self.head)
    }

    /// Finds the next message now, or says why there is none.
    #[inline(always)]
    pub(crate) fn try_find(&mut self, ctl: &Control, region: &Region) -> Result<Found, Stop> {
        let cap = region.capacity();
        let mut avail = self.available(ctl, cap)?;
        if avail == 0 {
            if ctl.peers.producer.state(false) != PeerState::Gone {
                return Err(Stop::NotNow);
            }
            // Gone: it stored its last `tail` before leaving (Release/Acquire
            // in `peer`); look once more so nothing it sent is lost.
            avail = self.available(ctl, cap)?;
            if avail == 0 {
                return Err(Stop::Disconnected);
            }
        }
        let mut at = self.head;
        let mut off = at & (cap - 1);
        let mut hdr = region.read_word(off);
        if hdr & WRAP != 0 {
            let skip = cap - off;
            if skip >= avail {
                return Err(Stop::Corrupt("a wrap record ends past the producer's position"));
            }
            (at, off, avail) = (at + skip, 0, avail - skip);
            hdr = region.read_word(0);
            if hdr & WRAP != 0 {
                return Err(Stop::Corrupt("two wrap records in a row"));
            }
        }
        let len = hdr & 0xffff_ffff;
        let rec = record_len(len);
        if hdr >> 33 != 0 || off + rec > cap || rec > avail {
            return Err(Stop::Corrupt("a message's length runs past its region or the producer's position"));
        }
        self.last_record = rec;
        Ok(Found { payload: off + HDR, len: len as usize, end: at + rec })
    }

    /// Gives the space of a found message (and any wrap before it) back.
    #[inline(always)]
    pub(crate) fn release(&mut self, ctl: &Control, found: Found, barrier: Barrier) {
        self.head = found.end;
        // Release: pairs with the producer's Acquire load of `head`; our
        // reads of the message happen before it overwrites the space.
        ctl.head.store(found.end, Ordering::Release);
        ctl.not_full.notify(barrier);
    }

    /// Copies a found message's payload out.
    #[inline(always)]
    pub(crate) fn read(&self, region: &Region, found: &Found, dst: &mut [u8]) {
        region.read_bytes(found.payload, &mut dst[..found.len]);
    }
}
