//! What keeps an object's memory alive while its handles use it: a mapped
//! segment, a heap block (objects within one process), or any shared
//! allocation of the object's own (typed heap rings, and loom's boxed
//! control blocks).

#[cfg(not(loom))]
use std::ptr::NonNull;

#[cfg(not(loom))]
use super::header::{Layout, REGION_ALIGN};
#[cfg(not(loom))]
use crate::error::CreateError;
#[cfg(not(loom))]
use crate::sync::Barrier;

/// Owns the memory an object's raw pointers point into.
pub(crate) enum Backing {
    #[cfg(not(loom))]
    Segment(#[allow(dead_code)] Mapped),
    #[cfg(not(loom))]
    Heap(#[allow(dead_code)] HeapBlock),
    /// An allocation the object made itself, shared by its handles.
    Local(#[allow(dead_code)] std::sync::Arc<dyn std::any::Any + Send + Sync>),
}

impl std::fmt::Debug for Backing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            #[cfg(not(loom))]
            Backing::Segment(m) => f.debug_tuple("Segment").field(m).finish(),
            #[cfg(not(loom))]
            Backing::Heap(h) => f.debug_tuple("Heap").field(h).finish(),
            Backing::Local(_) => f.write_str("Local"),
        }
    }
}

/// A mapped segment and this process's row in it. Fields drop in order:
/// the row is freed while the mapping is still there.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct Mapped {
    pub(crate) _attached: crate::shm::peer::Attached,
    pub(crate) _segment: crate::shm::segment::Segment,
}

/// A zeroed, aligned heap allocation, for objects within one process.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct HeapBlock {
    ptr: NonNull<u8>,
    layout: std::alloc::Layout,
}

#[cfg(not(loom))]
impl HeapBlock {
    /// `len` zeroed bytes aligned to `align` (a power of two); `None` if no
    /// such block can be allocated (too large a size, or no memory).
    pub(crate) fn new(len: usize, align: usize) -> Option<Self> {
        let layout = std::alloc::Layout::from_size_align(len.max(1), align).ok()?;
        // SAFETY: the layout has a non-zero size.
        let ptr = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })?;
        Some(Self { ptr, layout })
    }

    pub(crate) fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }
}

#[cfg(not(loom))]
impl Drop for HeapBlock {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

#[cfg(not(loom))]
/// The barrier this process offers an object it creates (in a segment or
/// on the heap): asymmetric if the kernel lets it use membarrier.
pub(crate) fn local_barrier() -> Barrier {
    if crate::sync::register_asymmetric() {
        Barrier::Asymmetric
    } else {
        Barrier::Symmetric
    }
}

/// Checks a capacity: a power of two from `min` to `max`. `too_small` says
/// why `min` is the least (it differs by kind).
pub(crate) fn check_capacity(
    capacity: usize,
    min: usize,
    max: u64,
    too_small: &'static str,
) -> Result<u64, crate::error::CreateError> {
    let bad = |reason| crate::error::CreateError::InvalidCapacity { capacity, reason };
    match capacity {
        c if c < min => Err(bad(too_small)),
        c if !c.is_power_of_two() => Err(bad("must be a power of two")),
        c if c as u64 > max => Err(bad("larger than this kind of object allows")),
        c => Ok(c as u64),
    }
}

/// Checks the capacity of a slot ring (a queue or an SPSC ring): any bound
/// from 1 to 2^40 messages (see `ring::slots_for`).
pub(crate) fn check_bound(capacity: usize) -> Result<u64, crate::error::CreateError> {
    let bad = |reason| crate::error::CreateError::InvalidCapacity { capacity, reason };
    match capacity {
        0 => Err(bad("0 would be a rendezvous channel, which procring does not have: at least 1")),
        c if c as u64 > 1 << 40 => Err(bad("larger than 2^40 messages")),
        c => Ok(c as u64),
    }
}

/// Refuses element types that cannot live in a slot.
pub(crate) fn check_element<T>() -> Result<(), crate::error::CreateError> {
    if std::mem::size_of::<T>() == 0 {
        return Err(crate::error::CreateError::UnsupportedType {
            type_name: std::any::type_name::<T>(),
            reason: "zero-sized types carry no data",
        });
    }
    Ok(())
}

/// An object's control block and data region on the heap, laid out by its
/// kind's [`Layout`] as in a segment (without the header and the table):
/// what every in-process object is built on.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct HeapObject {
    /// The control block, written by `Layout::init` (128-byte aligned).
    pub(crate) ctl: NonNull<u8>,
    /// The data region, zeroed (aligned to 128 and to the element).
    pub(crate) data: NonNull<u8>,
    pub(crate) backing: Backing,
}

#[cfg(not(loom))]
impl HeapObject {
    /// An object of `layout` for `capacity` elements of `size` bytes
    /// aligned to `align`.
    ///
    /// # Errors
    /// [`CreateError::InvalidCapacity`] when the object would not fit in
    /// this process's memory.
    pub(crate) fn new(layout: &Layout, size: u32, align: u32, capacity: u64) -> Result<Self, CreateError> {
        let too_large = || CreateError::InvalidCapacity {
            capacity: usize::try_from(capacity).unwrap_or(usize::MAX),
            reason: "too large for this process's memory",
        };
        let block_align = (align as usize).max(REGION_ALIGN);
        let data = layout.ctl_len.next_multiple_of(block_align);
        let len =
            (layout.data_len)(size, align, capacity).and_then(|len| len.checked_add(data)).ok_or_else(too_large)?;
        let block = HeapBlock::new(len, block_align).ok_or_else(too_large)?;
        // SAFETY: a fresh zeroed block, aligned to `block_align` (at least 128),
        // with `ctl_len` bytes for the control block at 0 that nobody uses
        // yet, and the data region at `data` within it.
        let (ctl, data) = unsafe {
            (layout.init)(block.ptr());
            (block.ptr(), NonNull::new_unchecked(block.ptr().as_ptr().add(data)))
        };
        Ok(Self { ctl, data, backing: Backing::Heap(block) })
    }
}
