//! The slots: each a sequence word and a payload (`Geometry`), in a
//! segment or on the heap, or loom's tracked cells under the models.

use super::*;

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
    pub(super) fn at(&self, idx: usize) -> *mut u8 {
        // SAFETY: callers pass a masked index (< cap): in bounds.
        unsafe { self.base.as_ptr().add(idx * self.stride) }
    }

    #[inline(always)]
    pub(super) fn seq(&self, idx: usize) -> &AtomicU64 {
        // SAFETY: every slot starts with an aligned, initialised u64 that is
        // only ever accessed atomically (constructor's contract).
        unsafe { &*self.at(idx).cast::<AtomicU64>() }
    }

    #[inline(always)]
    pub(super) fn payload_mut(&self, idx: usize) -> PayloadMut {
        // SAFETY: in bounds, as in `at`.
        PayloadMut { ptr: unsafe { self.at(idx).add(self.payload) } }
    }

    #[inline(always)]
    pub(super) fn payload_ref(&self, idx: usize) -> PayloadRef {
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
        let slots = (0..crate::ring::slots_for(bound))
            .map(|_| LoomSlot { seq: AtomicU64::new(0), data: crate::sync::UnsafeCell::new([0; LOOM_WORDS]) })
            .collect();
        Self { slots }
    }

    pub(super) fn seq(&self, idx: usize) -> &AtomicU64 {
        &self.slots[idx].seq
    }

    pub(super) fn payload_mut(&self, idx: usize) -> PayloadMut {
        let track = self.slots[idx].data.get_mut();
        // SAFETY: the pointer is only used while `track` lives.
        let ptr = unsafe { track.deref() }.as_mut_ptr().cast::<u8>();
        PayloadMut { ptr, _track: track }
    }

    pub(super) fn payload_ref(&self, idx: usize) -> PayloadRef {
        let track = self.slots[idx].data.get();
        // SAFETY: the pointer is only used while `track` lives.
        let ptr = unsafe { track.deref() }.as_ptr().cast::<u8>();
        PayloadRef { ptr, _track: track }
    }
}

// ---------------------------------------------------------------------------
// The protocol
// ---------------------------------------------------------------------------
