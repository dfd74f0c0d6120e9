//! A single-producer single-consumer ring of variable-length messages, over
//! a byte region it is handed. This is what `Pipe` carries.
//!
//! # Protocol
//!
//! The shared state is the SPSC ring's control block ([`super::spsc::Control`]):
//! `tail` and `head`, byte positions that only grow, peer slots and two
//! eventcounts. The region holds `cap` bytes (a power of two, 64 to 2^32).
//! A message is a *record*: an 8-byte header, then the payload, padded to 8
//! bytes. A header is `VALID` (bit 63), the record's *tag* (bits 33..63:
//! its position / 8, modulo 2^30), `WRAP` (bit 32) and the payload's length
//! (bits 0..32). A record never crosses the end of the region. When one
//! would, the producer writes a wrap record (a header with `WRAP`, no
//! payload) in the remaining space and puts the message at offset 0, so
//! every message is contiguous and readable in place.
//!
//! **Invariant:** `head <= tail + cap` and `tail <= head + cap`, all
//! multiples of 8. The word at the producer's position is always 0 or the
//! header of the record it is placing: the producer writes 0 just past each
//! record (the *marker*) before that record's header, and keeps 8 bytes of
//! room free for it, so the ring never fills to the last word.
//!
//! Publishing: the producer writes the payload and the marker, stores the
//! header (Release; the wrap header last, after the header at 0), then
//! stores `tail` past the record (Release). The consumer takes records
//! `tail` counts (Acquire), and, when `tail` last said empty, a record whose
//! header at `head` it loads (Acquire) with `VALID` and `head`'s tag: it
//! waits on the line the message arrives in, not on `tail`, as the SPSC
//! consumer watches stamps. So `head` may pass `tail` for a moment. It
//! stores `head` past the records it is done with (Release).
//!
//! Why a header with the right tag is this lap's: the word at `head` is 0 or
//! the producer's next header (the invariant). Without the marker it could
//! be any old payload word, which a sender controls. A header from an
//! earlier lap at that word has another tag, since `cap / 8 < 2^30`, and
//! the marker means the word at `head` is never more than one lap old.
//!
//! A message of up to `cap / 2 - 8` bytes always fits in an empty ring,
//! wherever `tail` is: either it fits before the end, or the wrap wastes
//! less than `cap / 2` (and the marker's 8 bytes still fit). A larger one is
//! refused with both sizes.
//!
//! Every header is read from shared memory and is untrusted. A header that
//! `tail` counts with the wrong tag, or a length whose record would leave
//! the region or pass `tail`, is reported as corrupt and nothing is read.

#[cfg(not(loom))]
use std::ptr::NonNull;

use crate::shm::peer::PeerState;
use crate::sync::{Barrier, Ordering};

use super::pace::{Pacer, READ_BATCH, STREAM_BATCH};
use super::spsc::Control;

/// Bytes in a record header.
pub(crate) const HDR: u64 = 8;
/// A record header: `VALID` (bit 63: never 0, the marker), the record's
/// tag (its position / 8, modulo 2^30, from bit 33), `WRAP` (bit 32: skip
/// to the start of the region) and the payload's length (bits 0..32). A
/// word loaded where a header may be can hold anything (a marker, an
/// earlier lap's header, payload, or a corrupt peer's writing): decoding
/// masks, and [`Header::is_at`] says whether it is the header of a record
/// at a given position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header(u64);

impl Header {
    const WRAP: u64 = 1 << 32;
    const VALID: u64 = 1 << 63;
    const TAG_SHIFT: u32 = 33;
    const TAG_MASK: u64 = (1 << 30) - 1;
    const LEN_MASK: u64 = 0xffff_ffff;

    /// The header of a record at `pos` with a `len`-byte message (the
    /// caller's: checked in debug builds), or a wrap record's (`len` 0).
    #[inline(always)]
    pub(crate) fn new(pos: u64, wrap: bool, len: u64) -> Self {
        debug_assert!(len <= Self::LEN_MASK, "a {len}-byte message does not fit a header");
        Self(Self::tagged(pos) | if wrap { Self::WRAP } else { 0 } | len)
    }

    /// The tag and `VALID` bits of the header of a record at `pos`.
    #[inline(always)]
    const fn tagged(pos: u64) -> u64 {
        Self::VALID | ((pos >> 3) & Self::TAG_MASK) << Self::TAG_SHIFT
    }

    #[inline(always)]
    const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    #[inline(always)]
    pub(crate) const fn bits(self) -> u64 {
        self.0
    }

    /// Whether this is the header of a record at `pos`.
    #[inline(always)]
    const fn is_at(self, pos: u64) -> bool {
        self.0 & !(Self::WRAP | Self::LEN_MASK) == Self::tagged(pos)
    }

    #[inline(always)]
    const fn is_wrap(self) -> bool {
        self.0 & Self::WRAP != 0
    }

    /// The payload's length.
    #[inline(always)]
    const fn len(self) -> u64 {
        self.0 & Self::LEN_MASK
    }
}

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

/// The region: raw memory normally; one loom atomic per 8-byte word under
/// loom. A word is a header in one lap and payload in another, and headers
/// are atomic; loom then checks the payload by its value (a reader that
/// reads too early sees an older one), not as a data race.
#[derive(Debug)]
pub(crate) struct Buffer {
    #[cfg(not(loom))]
    base: NonNull<u8>,
    #[cfg(loom)]
    words: Box<[crate::sync::AtomicU64]>,
    cap: u64,
}

impl Buffer {
    /// # Safety
    /// `base` points to `cap` bytes, 8-aligned, valid while the region is used,
    /// and accessed by other parties only through this protocol.
    #[cfg(not(loom))]
    pub(crate) unsafe fn new(base: NonNull<u8>, cap: u64) -> Self {
        Self { base, cap }
    }

    #[cfg(loom)]
    pub(crate) fn new_loom(cap: u64) -> Self {
        Self { words: (0..cap / 8).map(|_| crate::sync::AtomicU64::new(0)).collect(), cap }
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

    /// The 8-byte word at `off` (8-aligned, < cap) as an atomic.
    #[inline(always)]
    fn word(&self, off: u64) -> &crate::sync::AtomicU64 {
        // Plain accesses to this word (payload in another lap) happen before
        // or after every atomic one: the protocol orders them through
        // `head` and `tail`.
        #[cfg(not(loom))]
        // SAFETY: `off` is 8-aligned and in bounds, the region is 8-aligned
        // and lives as long as `self` (constructor's contract); see above.
        return unsafe { crate::sync::AtomicU64::from_ptr(self.at(off).cast()) };
        #[cfg(loom)]
        return &self.words[(off / 8) as usize];
    }

    /// Stores a header (Release: pairs with the consumer's Acquire load in
    /// `load_header`; the payload, marker, and for a wrap header the header
    /// at 0, written before it are visible to a consumer that sees it).
    #[inline(always)]
    fn store_header(&self, off: u64, hdr: Header) {
        self.word(off).store(hdr.bits(), Ordering::Release);
    }

    /// Loads what may be a header (Acquire: pairs with `store_header`).
    #[inline(always)]
    fn load_header(&self, off: u64) -> Header {
        Header::from_bits(self.word(off).load(Ordering::Acquire))
    }

    /// Writes the marker (0) at `off`, which the producer owns: past the
    /// record it is placing, in the room it keeps free.
    #[inline(always)]
    fn write_marker(&self, off: u64) {
        #[cfg(not(loom))]
        // SAFETY: `off` is 8-aligned and in bounds, in free space the
        // producer owns; the consumer reads this word only once a header or
        // `tail` published after this write tells it to.
        unsafe {
            self.at(off).cast::<u64>().write(0)
        };
        #[cfg(loom)]
        self.word(off).store(0, Ordering::Relaxed);
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
            self.word(off + 8 * i as u64).store(u64::from_le_bytes(w), Ordering::Relaxed);
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
            let w = self.word(off + 8 * i as u64).load(Ordering::Relaxed).to_le_bytes();
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
    /// Buffer offset of the payload.
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
    pub(crate) fn new(ctl: &Control, region: &Buffer) -> Self {
        // Acquire: we may be re-attaching; continue after what was published.
        let mut tail = ctl.tail.load(Ordering::Acquire);
        // A writer that died between storing headers and storing `tail`
        // published records the reader may have taken already: continue
        // after the last one whose header is in place, and make `tail` count
        // it. The walk stops at the marker.
        let (cap, start) = (region.capacity(), tail);
        while tail.wrapping_sub(start) < cap {
            let off = tail & (cap - 1);
            let hdr = region.load_header(off);
            if !hdr.is_at(tail) {
                break;
            }
            let rec = if hdr.is_wrap() { cap - off } else { record_len(hdr.len()) };
            if off + rec > cap {
                break; // corrupt: the reader will say so
            }
            tail += rec;
        }
        if tail != start {
            // Release: as in `commit`.
            ctl.tail.store(tail, Ordering::Release);
        }
        Self { tail, head_cache: ctl.head.load(Ordering::Acquire), pacer: Pacer::default() }
    }

    /// Finds room for a `len`-byte message now, or says why not.
    #[inline(always)]
    pub(crate) fn try_place(&mut self, ctl: &Control, region: &Buffer, len: usize) -> Result<Place, Stop> {
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
        // The record, and the marker past it.
        let total = total + HDR;
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
        Ok(Place { wrap_at, payload, len, end: self.tail + total - HDR })
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
    pub(crate) fn write(&self, region: &Buffer, place: &Place, src: &[u8]) {
        debug_assert_eq!(src.len(), place.len);
        region.write_bytes(place.payload, src);
    }

    /// Publishes a placed record whose payload is written.
    #[inline(always)]
    pub(crate) fn commit(&mut self, ctl: &Control, region: &Buffer, place: Place, barrier: Barrier) {
        self.store_headers(region, &place);
        self.tail = place.end;
        // Release: pairs with the consumer's Acquire load of `tail`; the
        // payload and headers written above are visible to it.
        ctl.tail.store(place.end, Ordering::Release);
        ctl.not_empty.notify(barrier);
    }

    /// The first half of `commit`: the marker past the record, then its
    /// header and the wrap header before it. A reader watching the header
    /// word may take the record from here on.
    #[inline(always)]
    fn store_headers(&self, region: &Buffer, place: &Place) {
        #[cfg(not(procring_bug = "pipe_no_marker"))]
        region.write_marker(place.end & (region.capacity() - 1));
        let at = place.end - record_len(place.len as u64);
        region.store_header(place.payload - HDR, Header::new(at, false, place.len as u64));
        if let Some(off) = place.wrap_at {
            // After the header at 0: a reader that sees this one sees that.
            region.store_header(off, Header::new(self.tail, true, 0));
        }
    }
}

/// The reading end's protocol state (process-local).
#[derive(Debug)]
pub(crate) struct Reader {
    head: u64,
    /// `tail` as last read, or the end of a record taken by its header; never
    /// behind `head`.
    tail_cache: u64,
    /// `tail` said empty: watch the header word at `head` instead.
    empty: bool,
    /// A run: rereads of `tail` that found messages (the SPSC consumer's
    /// stream detection).
    pacer: Pacer,
    /// The last record's length: a batch is `READ_BATCH` records like it.
    last_record: u64,
}

impl Reader {
    pub(crate) fn new(ctl: &Control) -> Self {
        // Acquire: we may be re-attaching; continue after what was consumed.
        let head = ctl.head.load(Ordering::Acquire);
        Self { head, tail_cache: head, empty: false, pacer: Pacer::default(), last_record: HDR }
    }

    /// Bytes `tail` counts past `head`: the cached count, or if that is 0,
    /// a reread of `tail` (paced in a stream).
    #[inline(always)]
    fn available(&mut self, ctl: &Control, cap: u64) -> Result<u64, Stop> {
        let mut avail = self.tail_cache - self.head;
        if avail == 0 {
            avail = self.reread_tail(ctl, cap)?;
            // As the SPSC consumer: a reader that keeps finding only a few
            // messages takes the `tail` line from the writer once per
            // message; in a stream it lets the writer publish a run first.
            let record = self.last_record;
            if self.pacer.pause(avail, avail != 0, record.saturating_mul(READ_BATCH)) {
                let before = avail;
                avail = self.reread_tail(ctl, cap)?;
                self.pacer.paid(before, avail, record.saturating_mul(STREAM_BATCH));
            }
            self.pacer.note(avail != 0);
            self.empty = avail == 0;
        }
        Ok(avail)
    }

    #[inline(always)]
    fn reread_tail(&mut self, ctl: &Control, cap: u64) -> Result<u64, Stop> {
        // Acquire: pairs with the producer's Release store of `tail`.
        let tail = ctl.tail.load(Ordering::Acquire);
        match tail.wrapping_sub(self.head) {
            n if n <= cap && n % 8 == 0 => {
                self.tail_cache = tail;
                Ok(n)
            }
            // Behind us: we took records by their headers before `tail`
            // counted them (it trails by less than a lap).
            _ if self.head.wrapping_sub(tail) <= cap => Ok(0),
            _ => Err(Stop::Corrupt("the producer's position is impossible")),
        }
    }

    /// Finds the next message now, or says why there is none.
    #[inline(always)]
    pub(crate) fn try_find(&mut self, ctl: &Control, region: &Buffer) -> Result<Found, Stop> {
        let cap = region.capacity();
        if self.tail_cache == self.head && self.empty {
            // `tail` said empty: watch the word the next header arrives in,
            // which the writer is about to store anyway.
            if let Some(found) = self.record_at_head(region, None)? {
                self.empty = false;
                self.tail_cache = found.end;
                return Ok(found);
            }
            if ctl.peers.producer.state(false) != PeerState::Gone {
                return Err(Stop::NotNow);
            }
            self.empty = false; // gone: read `tail` below
        }
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
        self.record_at_head(region, Some(avail))?.ok_or(Stop::Corrupt("a published record's header is not its own"))
    }

    /// The record at `head`, after a wrap record if one is there. With
    /// `published` (what `tail` counts past `head`), it must be within it;
    /// without, its header decides: `None` if there is none yet.
    #[inline(always)]
    fn record_at_head(&mut self, region: &Buffer, published: Option<u64>) -> Result<Option<Found>, Stop> {
        let cap = region.capacity();
        let (mut at, mut off, mut avail) = (self.head, self.head & (cap - 1), published.unwrap_or(cap));
        let mut hdr = region.load_header(off);
        if !hdr.is_at(at) {
            return Ok(None);
        }
        if hdr.is_wrap() {
            let skip = cap - off;
            if skip >= avail {
                return Err(Stop::Corrupt("a wrap record ends past the producer's position"));
            }
            (at, off, avail) = (at + skip, 0, avail - skip);
            // Stored before the wrap header: there if that is.
            hdr = region.load_header(0);
            if !hdr.is_at(at) || hdr.is_wrap() {
                return Err(Stop::Corrupt("a wrap record is not followed by a record at the start"));
            }
        }
        let len = hdr.len();
        let rec = record_len(len);
        if off + rec > cap || rec > avail {
            return Err(Stop::Corrupt("a message's length runs past its region or the producer's position"));
        }
        self.last_record = rec;
        Ok(Some(Found { payload: off + HDR, len: len as usize, end: at + rec }))
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
    pub(crate) fn read(&self, region: &Buffer, found: &Found, dst: &mut [u8]) {
        region.read_bytes(found.payload, &mut dst[..found.len]);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A ring of `cap` bytes on the heap (its words leaked: tests only),
    /// and a writer and a reader on it.
    fn ring(cap: usize) -> (Box<Control>, Buffer, Writer, Reader) {
        let ctl = Box::new(Control::new());
        let words: &'static mut [u64] = Vec::leak(vec![0u64; cap / 8]);
        // SAFETY: `words` is 8-aligned, `cap` bytes, lives for good, and
        // nothing else touches it.
        let region = unsafe { Buffer::new(NonNull::from(&mut words[0]).cast(), cap as u64) };
        let (w, r) = (Writer::new(&ctl, &region), Reader::new(&ctl));
        (ctl, region, w, r)
    }

    fn send(w: &mut Writer, ctl: &Control, region: &Buffer, msg: &[u8]) {
        let place = w.try_place(ctl, region, msg.len()).unwrap();
        w.write(region, &place, msg);
        w.commit(ctl, region, place, Barrier::Symmetric);
    }

    fn recv(r: &mut Reader, ctl: &Control, region: &Buffer) -> Result<Vec<u8>, Stop> {
        let found = r.try_find(ctl, region)?;
        let mut out = vec![0; found.len];
        r.read(region, &found, &mut out);
        r.release(ctl, found, Barrier::Symmetric);
        Ok(out)
    }

    #[test]
    fn a_writer_that_died_between_header_and_tail_is_continued_after_what_it_published() {
        let (ctl, region, mut w, mut r) = ring(128);
        send(&mut w, &ctl, &region, b"one");
        assert_eq!(recv(&mut r, &ctl, &region).unwrap(), b"one");
        // `tail` now says empty: the reader watches the next header.
        assert_eq!(recv(&mut r, &ctl, &region), Err(Stop::NotNow));
        // "two" goes out as far as its header, and its writer dies before
        // storing `tail`. The reader takes it by its header.
        let place = w.try_place(&ctl, &region, 3).unwrap();
        w.write(&region, &place, b"two");
        w.store_headers(&region, &place);
        assert_eq!(recv(&mut r, &ctl, &region).unwrap(), b"two");
        assert!(ctl.head.load(Ordering::Relaxed) > ctl.tail.load(Ordering::Relaxed), "head passed tail");
        // A new writer continues after "two", and `tail` counts it.
        let mut w = Writer::new(&ctl, &region);
        assert_eq!(ctl.tail.load(Ordering::Relaxed), place.end);
        for m in [&b"three"[..], b"four", &[7; 40], &[8; 40], &[9; 40]] {
            send(&mut w, &ctl, &region, m);
            assert_eq!(recv(&mut r, &ctl, &region).unwrap(), m, "in order, once, across the wrap");
        }
        assert_eq!(recv(&mut r, &ctl, &region), Err(Stop::NotNow));
    }

    #[test]
    fn a_published_record_with_another_positions_tag_is_corrupt() {
        let (ctl, region, mut w, mut r) = ring(64);
        send(&mut w, &ctl, &region, b"abc");
        // The same record, tagged as the next lap's.
        region.store_header(0, Header::new(64, false, 3));
        assert!(matches!(recv(&mut r, &ctl, &region), Err(Stop::Corrupt(_))));
    }
}
