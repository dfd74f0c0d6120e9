//! The segment header: the first 128 bytes of every procring segment.
//!
//! The header is an ABI shared by every process that maps the segment, and it
//! is untrusted input: another process, a stale file or an attacker with
//! write access may have written it. So an opener copies it out field by
//! field (volatile reads, never a reference to shared plain data), checks
//! every field against what it expects and against the file's size, and only
//! then computes a single offset from it.
//!
//! | offset | size | field         | meaning                                         |
//! |-------:|-----:|---------------|-------------------------------------------------|
//! |      0 |    8 | `magic`       | `b"PROCRING"`                                   |
//! |      8 |    4 | `version`     | layout version ([`VERSION`])                    |
//! |     12 |    4 | `kind`        | [`Kind`] of object (1 spsc ring, 2 queue, 3 pipe, 4 value, 5 array) |
//! |     16 |    4 | `state`       | atomic: 0 initialising, 1 ready (Release/Acquire) |
//! |     20 |    4 | `barrier`     | 0 symmetric fences, 1 asymmetric (membarrier)   |
//! |     24 |    8 | `capacity`    | messages a ring or queue holds (its slots: `ring::slots_for`); bytes per pipe direction (a power of two); elements of an array; 1 for a value |
//! |     32 |    4 | `elem_size`   | `size_of::<T>()`                                |
//! |     36 |    4 | `elem_align`  | `align_of::<T>()`                               |
//! |     40 |    8 | `type_hash`   | FNV-1a of the element type's wire name ([`crate::message::Message`]) |
//! |     48 |    8 | `total_len`   | bytes in the segment                            |
//! |     56 |    8 | `ctl_offset`  | offset of the kind's control block (128)        |
//! |     64 |    8 | `data_offset` | offset of the slot region                       |
//! |     72 |    4 | `creator_pid` | process that created it (for `procring ls`)     |
//! |     76 |    4 | `peer_rows`   | rows in the attachment table ([`crate::shm::peer`])  |
//! |     80 |   48 | `type_name`   | element type's wire name, truncated, NUL-padded |
//!
//! The attachment table follows at offset 128 (`peer_rows` rows of 128
//! bytes), then the kind's control block, then the data region.

use std::mem::{align_of, size_of};
use std::ptr::{addr_of, addr_of_mut, NonNull};
use std::time::{Duration, Instant};

use super::peer::{MAX_ROWS, ROW_LEN};
use crate::error::OpenError;
use crate::sync::{AtomicU32, Barrier, Ordering};

/// `b"PROCRING"` read as a little-endian `u64`.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"PROCRING");
/// The layout version this build writes and reads.
pub const VERSION: u32 = 9;
/// Size of the header; the control block starts here.
pub(crate) const HEADER_LEN: usize = 128;

const STATE_INIT: u32 = 0;
const STATE_READY: u32 = 1;

/// What a segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Kind {
    /// A single-producer single-consumer ring ([`crate::spsc`]).
    Spsc = 1,
    /// A many-producer many-consumer queue ([`crate::Queue`]).
    Queue = 2,
    /// A pipe of byte messages, duplex or simplex ([`crate::pipe`]).
    Pipe = 3,
    /// One shared value ([`crate::Value`]).
    Value = 4,
    /// A fixed-length array of shared values ([`crate::Array`]).
    Array = 5,
}

impl Kind {
    fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(Kind::Spsc),
            2 => Some(Kind::Queue),
            3 => Some(Kind::Pipe),
            4 => Some(Kind::Value),
            5 => Some(Kind::Array),
            _ => None,
        }
    }

    /// The kind's name, as printed in errors and by `procring ls`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Spsc => "spsc ring",
            Kind::Queue => "queue",
            Kind::Pipe => "pipe",
            Kind::Value => "value",
            Kind::Array => "array",
        }
    }

    /// What is wrong with `capacity` for this kind, if anything.
    fn capacity_problem(self, capacity: u64) -> Option<String> {
        match self {
            Kind::Spsc | Kind::Queue if capacity == 0 || capacity > 1 << 40 => {
                Some(format!("capacity {capacity} is not 1 to 2^40 messages"))
            }
            Kind::Pipe if !capacity.is_power_of_two() => Some(format!("capacity {capacity} is not a power of two")),
            Kind::Value if capacity != 1 => Some(format!("a value holds 1 element, not {capacity}")),
            _ => None,
        }
    }
}

/// The header as it sits in the segment.
#[repr(C)]
pub(crate) struct Header {
    magic: u64,
    version: u32,
    kind: u32,
    state: AtomicU32,
    barrier: u32,
    capacity: u64,
    elem_size: u32,
    elem_align: u32,
    type_hash: u64,
    total_len: u64,
    ctl_offset: u64,
    data_offset: u64,
    creator_pid: u32,
    peer_rows: u32,
    type_name: [u8; 48],
}

const _: () = {
    assert!(size_of::<Header>() == HEADER_LEN);
    assert!(align_of::<Header>() == 8);
    assert!(std::mem::offset_of!(Header, state) == 16);
    assert!(std::mem::offset_of!(Header, capacity) == 24);
    assert!(std::mem::offset_of!(Header, type_hash) == 40);
    assert!(std::mem::offset_of!(Header, creator_pid) == 72);
    assert!(std::mem::offset_of!(Header, type_name) == 80);
};

/// The element type as the header records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TypeInfo {
    pub(crate) size: u32,
    pub(crate) align: u32,
    pub(crate) hash: u64,
    pub(crate) name: &'static str,
}

impl TypeInfo {
    /// A [`Message`](crate::message::Message) type, by its wire name.
    pub(crate) fn of<T: crate::message::Message>() -> Self {
        let name = T::NAME;
        Self { size: size_of::<T>() as u32, align: align_of::<T>() as u32, hash: fnv1a(FNV_START, name), name }
    }

    /// `T` carried serialized in slots of `size` bytes (0 when opening: the
    /// segment's size is taken). Its hash differs from `T`'s own, so a `Pod`
    /// queue of `T` and a serialized one are never mistaken for each other.
    #[allow(dead_code)] // used with the `serde` feature
    pub(crate) fn serialized<T>(size: u32) -> Self {
        let name = std::any::type_name::<T>();
        Self { size, align: 8, hash: fnv1a(fnv1a(FNV_START, "serialized:"), name), name }
    }

    /// A pipe with `directions` byte rings (1 simplex, 2 duplex).
    pub(crate) fn pipe(directions: u32) -> Self {
        let name = if directions == 2 { "duplex pipe" } else { "simplex pipe" };
        Self { size: directions, align: 8, hash: fnv1a(FNV_START, "procring pipe"), name }
    }
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a, 64-bit: a stable hash (std's `Hasher`s are not stable across builds).
fn fnv1a(start: u64, s: &str) -> u64 {
    s.bytes().fold(start, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// What a kind of object puts after the attachment table of its segment
/// (or on the heap, in the same layout): each kind describes its own (its
/// module's `LAYOUT`), and `Object` and `HeapObject` build every kind from
/// it the same way.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub(crate) kind: Kind,
    /// Bytes of the control block.
    pub(crate) ctl_len: usize,
    /// Bytes of the data region for `capacity` elements of `size` bytes
    /// aligned to `align`; `None` on overflow. Both sides derive it from
    /// the header's fields; the header does not store it.
    pub(crate) data_len: fn(size: u32, align: u32, capacity: u64) -> Option<usize>,
    /// Writes a fresh control block.
    ///
    /// # Safety
    /// The pointer is to `ctl_len` zeroed, 128-byte aligned bytes that no
    /// other thread or process uses yet.
    pub(crate) init: unsafe fn(ctl: NonNull<u8>),
}

/// A `Layout::init` for a kind whose control block is one `C`.
///
/// # Safety
/// As `Layout::init`, with `size_of::<C>() <= ctl_len` and `C` 128-aligned
/// at most.
pub(crate) unsafe fn init_control<C: Default>(ctl: NonNull<u8>) {
    // SAFETY: the caller's contract: room for a `C`, aligned, unshared.
    unsafe { ctl.cast::<C>().write(C::default()) }
}

/// Everything an object asks of its segment; the creator writes it and an
/// opener requires it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected {
    pub(crate) layout: Layout,
    pub(crate) elem: TypeInfo,
    pub(crate) capacity: u64,
    /// Rows in the attachment table (the creator's choice; an opener takes
    /// the header's).
    pub(crate) rows: u32,
}

/// Where the parts of a segment are, derived from [`Expected`] alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Offsets {
    /// The attachment table.
    pub(crate) peers: usize,
    pub(crate) ctl: usize,
    pub(crate) data: usize,
    pub(crate) total: usize,
}

/// Alignment of the control block and of the slot region: two cache lines,
/// so no slot shares a line (or an adjacent-line prefetch pair) with a
/// position.
pub(crate) const REGION_ALIGN: usize = 128;

impl Expected {
    /// What an object of `layout` holding `elem`s asks for: `capacity` of
    /// them when creating (an opener takes the header's).
    pub(crate) fn new(layout: Layout, elem: TypeInfo, capacity: u64) -> Self {
        Self { layout, elem, capacity, rows: 0 }
    }

    /// The segment's offsets, or `None` if they overflow.
    pub(crate) fn offsets(&self) -> Option<Offsets> {
        let peers = HEADER_LEN;
        if self.rows == 0 || self.rows > MAX_ROWS {
            return None;
        }
        let ctl = peers + self.rows as usize * ROW_LEN;
        let align = REGION_ALIGN.max(self.elem.align as usize);
        let data = (ctl.checked_add(self.layout.ctl_len)?).checked_next_multiple_of(align)?;
        let slots = (self.layout.data_len)(self.elem.size, self.elem.align, self.capacity)?;
        let total = data.checked_add(slots)?;
        // A mapping must fit in isize (and in a file offset).
        (total <= isize::MAX as usize).then_some(Offsets { peers, ctl, data, total })
    }
}

/// Writes a fresh header, except `state`, into a zero-filled segment.
///
/// # Safety
/// `hdr` points to at least `HEADER_LEN` writable bytes of a segment that no
/// other process reads yet (its `state` is still 0).
pub(crate) unsafe fn write(hdr: *mut Header, e: &Expected, off: &Offsets, barrier: Barrier) {
    let mut name = [0u8; 48];
    let n = e.elem.name.len().min(name.len());
    name[..n].copy_from_slice(&e.elem.name.as_bytes()[..n]);
    // SAFETY: the caller guarantees exclusive, writable memory for the header;
    // each write goes through a raw field pointer, so no reference to shared
    // memory is formed.
    unsafe {
        addr_of_mut!((*hdr).magic).write(MAGIC);
        addr_of_mut!((*hdr).version).write(VERSION);
        addr_of_mut!((*hdr).kind).write(e.layout.kind as u32);
        addr_of_mut!((*hdr).barrier).write(u32::from(barrier == Barrier::Asymmetric));
        addr_of_mut!((*hdr).capacity).write(e.capacity);
        addr_of_mut!((*hdr).elem_size).write(e.elem.size);
        addr_of_mut!((*hdr).elem_align).write(e.elem.align);
        addr_of_mut!((*hdr).type_hash).write(e.elem.hash);
        addr_of_mut!((*hdr).total_len).write(off.total as u64);
        addr_of_mut!((*hdr).ctl_offset).write(off.ctl as u64);
        addr_of_mut!((*hdr).data_offset).write(off.data as u64);
        addr_of_mut!((*hdr).creator_pid).write(std::process::id());
        addr_of_mut!((*hdr).peer_rows).write(e.rows);
        addr_of_mut!((*hdr).type_name).write(name);
    }
}

/// Publishes a header written by [`write`] (and the control block the
/// creator initialised before it).
///
/// # Safety
/// `hdr` points to a header in a live mapping.
pub(crate) unsafe fn publish(hdr: *const Header) {
    // SAFETY: `state` is an atomic inside a live mapping (caller's contract);
    // shared references to atomics in shared memory are sound.
    let state = unsafe { &*addr_of!((*hdr).state) };
    // Release: pairs with the Acquire in `wait_ready`; everything the creator
    // wrote before (header fields, control block) is visible to an opener
    // that sees READY.
    state.store(STATE_READY, Ordering::Release);
}

/// A copy of the header's plain fields, taken after `state` read READY.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Snapshot {
    pub(crate) magic: u64,
    pub(crate) version: u32,
    pub(crate) kind: u32,
    pub(crate) barrier: u32,
    pub(crate) capacity: u64,
    pub(crate) elem_size: u32,
    pub(crate) elem_align: u32,
    pub(crate) type_hash: u64,
    pub(crate) total_len: u64,
    pub(crate) ctl_offset: u64,
    pub(crate) data_offset: u64,
    pub(crate) creator_pid: u32,
    pub(crate) peer_rows: u32,
    pub(crate) type_name: [u8; 48],
}

impl Snapshot {
    /// Copies the header out of shared memory.
    ///
    /// # Safety
    /// `hdr` points to `HEADER_LEN` readable bytes of a live mapping.
    pub(crate) unsafe fn read(hdr: *const Header) -> Self {
        // SAFETY: caller guarantees the bytes are mapped and readable. Volatile
        // reads of plain integers: another process may be writing them (a
        // hostile one, at any time), and any bit pattern is a valid integer.
        unsafe {
            Self {
                magic: addr_of!((*hdr).magic).read_volatile(),
                version: addr_of!((*hdr).version).read_volatile(),
                kind: addr_of!((*hdr).kind).read_volatile(),
                barrier: addr_of!((*hdr).barrier).read_volatile(),
                capacity: addr_of!((*hdr).capacity).read_volatile(),
                elem_size: addr_of!((*hdr).elem_size).read_volatile(),
                elem_align: addr_of!((*hdr).elem_align).read_volatile(),
                type_hash: addr_of!((*hdr).type_hash).read_volatile(),
                total_len: addr_of!((*hdr).total_len).read_volatile(),
                ctl_offset: addr_of!((*hdr).ctl_offset).read_volatile(),
                data_offset: addr_of!((*hdr).data_offset).read_volatile(),
                creator_pid: addr_of!((*hdr).creator_pid).read_volatile(),
                peer_rows: addr_of!((*hdr).peer_rows).read_volatile(),
                type_name: addr_of!((*hdr).type_name).read_volatile(),
            }
        }
    }

    /// The recorded element type's name, for messages.
    pub(crate) fn type_name(&self) -> String {
        let end = self.type_name.iter().position(|&b| b == 0).unwrap_or(self.type_name.len());
        String::from_utf8_lossy(&self.type_name[..end]).into_owned()
    }

    /// The kind, if it is one this build knows.
    pub(crate) fn kind(&self) -> Option<Kind> {
        Kind::from_u32(self.kind)
    }

    /// Checks what every kind shares: the magic, the version, and an
    /// attachment table of 1 to `MAX_ROWS` rows that lies within the file.
    /// Then the table at `HEADER_LEN` may be read.
    pub(crate) fn validate_table(&self, name: &str, file_len: usize) -> Result<(), OpenError> {
        let corrupt = |what: String| OpenError::Corrupt { name: name.to_owned(), what };
        if self.magic != MAGIC {
            return Err(corrupt(format!("bad magic {:#018x}", self.magic)));
        }
        if self.version != VERSION {
            return Err(OpenError::VersionMismatch { name: name.to_owned(), found: self.version, expected: VERSION });
        }
        if self.peer_rows == 0 || self.peer_rows > MAX_ROWS {
            return Err(corrupt(format!("{} attachment rows (1 to {MAX_ROWS} allowed)", self.peer_rows)));
        }
        let end = HEADER_LEN + self.peer_rows as usize * ROW_LEN;
        if end > file_len {
            return Err(corrupt(format!(
                "{} attachment rows end at {end}, past the file's {file_len} bytes",
                self.peer_rows
            )));
        }
        Ok(())
    }

    /// Checks every field against what the caller expects and against the
    /// segment's real size. On success returns the offsets (computed from
    /// `e`, never taken from the header) and the barrier mode.
    pub(crate) fn validate(&self, name: &str, e: &Expected, file_len: usize) -> Result<(Offsets, Barrier), OpenError> {
        let corrupt = |what: String| OpenError::Corrupt { name: name.to_owned(), what };
        self.validate_table(name, file_len)?;
        let Some(kind) = Kind::from_u32(self.kind) else {
            return Err(corrupt(format!("unknown object kind {}", self.kind)));
        };
        if kind != e.layout.kind {
            return Err(OpenError::KindMismatch {
                name: name.to_owned(),
                found: kind.name(),
                expected: e.layout.kind.name(),
            });
        }
        // An expected size of 0 takes the segment's (serialized elements,
        // whose slot size the creator chose); it must still be a real size.
        let want_size = if e.elem.size == 0 { self.elem_size.max(1) } else { e.elem.size };
        if (self.elem_size, self.elem_align, self.type_hash) != (want_size, e.elem.align, e.elem.hash) {
            return Err(OpenError::TypeMismatch {
                name: name.to_owned(),
                found: format!("{} (size {}, align {})", self.type_name(), self.elem_size, self.elem_align),
                expected: format!("{} (size {}, align {})", e.elem.name, e.elem.size, e.elem.align),
            });
        }
        if let Some(problem) = kind.capacity_problem(self.capacity) {
            return Err(corrupt(problem));
        }
        let barrier = match self.barrier {
            0 => Barrier::Symmetric,
            1 => Barrier::Asymmetric,
            b => return Err(corrupt(format!("unknown barrier mode {b}"))),
        };
        let e = Expected {
            capacity: self.capacity,
            elem: TypeInfo { size: self.elem_size, ..e.elem },
            rows: self.peer_rows,
            ..*e
        };
        let Some(off) = e.offsets() else {
            return Err(corrupt(format!("capacity {} overflows the address space", self.capacity)));
        };
        if (self.ctl_offset, self.data_offset, self.total_len) != (off.ctl as u64, off.data as u64, off.total as u64) {
            return Err(corrupt(format!(
                "offsets (control {}, data {}, total {}) do not match capacity {} (expected {}, {}, {})",
                self.ctl_offset, self.data_offset, self.total_len, self.capacity, off.ctl, off.data, off.total
            )));
        }
        if off.total > file_len {
            return Err(corrupt(format!("header claims {} bytes but the segment has {file_len}", off.total)));
        }
        Ok((off, barrier))
    }
}

/// Waits (bounded) for the creator to publish the header.
///
/// # Safety
/// `hdr` points to a header in a live mapping of at least `HEADER_LEN` bytes.
pub(crate) unsafe fn wait_ready(hdr: *const Header, name: &str, timeout: Duration) -> Result<(), OpenError> {
    // SAFETY: caller's contract; an atomic in shared memory.
    let state = unsafe { &*addr_of!((*hdr).state) };
    let start = Instant::now();
    loop {
        // Acquire: pairs with the Release in `publish`.
        match state.load(Ordering::Acquire) {
            STATE_READY => return Ok(()),
            STATE_INIT if start.elapsed() < timeout => std::thread::sleep(Duration::from_micros(200)),
            STATE_INIT => return Err(OpenError::NotReady { name: name.to_owned(), waited: timeout }),
            other => {
                return Err(OpenError::Corrupt { name: name.to_owned(), what: format!("unknown header state {other}") })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_info_tells_same_sized_types_apart() {
        assert_eq!(TypeInfo::of::<u64>(), TypeInfo::of::<u64>());
        assert_ne!(TypeInfo::of::<u64>().hash, TypeInfo::of::<i64>().hash);
        assert_eq!(TypeInfo::of::<[u8; 32]>().size, 32);
    }

    #[test]
    fn offsets_align_the_data_and_refuse_overflow() {
        // A ring slot: an 8-byte stamp, then the 8-byte message.
        let layout = Layout {
            kind: Kind::Spsc,
            ctl_len: 640,
            data_len: |size, _, cap| usize::try_from(cap).ok()?.checked_mul(8 + size as usize),
            init: |_| (),
        };
        let e = Expected { rows: 2, ..Expected::new(layout, TypeInfo::of::<u64>(), 1024) };
        let off = e.offsets().unwrap();
        assert_eq!((off.peers, off.ctl), (HEADER_LEN, HEADER_LEN + 2 * ROW_LEN));
        assert_eq!(off.data % REGION_ALIGN, 0);
        assert!(off.data >= off.ctl + 640);
        assert_eq!(off.total, off.data + 1024 * 16);
        assert_eq!(Expected { capacity: 1 << 62, ..e }.offsets(), None);
    }
}
