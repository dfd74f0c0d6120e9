//! A named segment holding one object: the header, a control block and a
//! data region. Creating one writes the header (unpublished) and lets the
//! object initialise its control block; opening one waits for the header,
//! validates it against what the caller expects and hands back the parts.
//! Every object kind (rings, queues, pipes) builds on this.

use std::ptr::NonNull;

use crate::error::{CreateError, OpenError};
use crate::layout::{self, Expected, Header, Offsets, Snapshot};
use crate::segment::Segment;
use crate::sync::{register_asymmetric, Barrier};
use crate::Options;

/// A mapped, validated segment and where its parts are.
#[derive(Debug)]
pub(crate) struct Region {
    pub(crate) segment: Segment,
    pub(crate) off: Offsets,
    pub(crate) capacity: u64,
    /// The element size recorded in the header (what the caller asked for,
    /// or, if it asked for size 0, what the creator chose).
    pub(crate) elem_size: u32,
    pub(crate) barrier: Barrier,
}

impl Region {
    /// Creates the segment for `e` and calls `init` with the (zeroed, 128-byte
    /// aligned) control block's address, then writes the header. The header
    /// is not yet published: the caller takes its role, then calls
    /// [`Region::publish`].
    pub(crate) fn create(
        name: &str,
        e: &Expected,
        opts: &Options,
        init: impl FnOnce(NonNull<u8>),
    ) -> Result<Self, CreateError> {
        let capacity = e.capacity as usize;
        let off = e.offsets().ok_or(CreateError::InvalidCapacity { capacity, reason: "too large to map" })?;
        let mut segment = Segment::create(name, off.total, opts.mode)?;
        segment.set_keep(opts.keep);
        let barrier = if register_asymmetric() { Barrier::Asymmetric } else { Barrier::Symmetric };
        let region = Self { segment, off, capacity: e.capacity, elem_size: e.elem.size, barrier };
        init(region.ctl());
        // SAFETY: a fresh mapping of `off.total` bytes that no other process
        // reads before `publish`.
        unsafe { layout::write(region.header(), e, &off, barrier) };
        Ok(region)
    }

    /// Lets openers in: the header and the control block are complete (and
    /// the creator has taken its role).
    pub(crate) fn publish(&self) {
        self.publisher().publish();
    }

    /// Opens segment `name`, waits for its header, and checks it against `e`
    /// (whose capacity is ignored: the segment's own is used and checked).
    pub(crate) fn open(name: &str, e: &Expected, opts: &Options) -> Result<Self, OpenError> {
        let segment = Segment::open(name, opts.open_timeout)?;
        let hdr = segment.as_ptr().cast::<Header>().cast_const();
        // SAFETY: `Segment::open` maps at least a header's worth of bytes.
        unsafe { layout::wait_ready(hdr, segment.name(), opts.open_timeout)? };
        // SAFETY: as above.
        let snap = unsafe { Snapshot::read(hdr) };
        let (off, barrier) = snap.validate(segment.name(), e, segment.len())?;
        if barrier == Barrier::Asymmetric && !register_asymmetric() {
            return Err(OpenError::Unsupported {
                name: segment.name().to_owned(),
                what: "membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED)",
            });
        }
        Ok(Self { segment, off, capacity: snap.capacity, elem_size: snap.elem_size, barrier })
    }

    /// A handle that publishes the header later, after the segment has
    /// moved into the object that owns it (the mapping does not move).
    pub(crate) fn publisher(&self) -> Publisher {
        Publisher(self.header())
    }

    fn header(&self) -> *mut Header {
        self.segment.as_ptr().cast()
    }

    /// The control block's address (128-byte aligned, `ctl_len` bytes).
    pub(crate) fn ctl(&self) -> NonNull<u8> {
        // SAFETY: `off.ctl` was computed for this layout and is within the
        // mapping (checked against its length); a mapping is never at null.
        unsafe { NonNull::new_unchecked(self.segment.as_ptr().add(self.off.ctl)) }
    }

    /// The data region's address (aligned for the element type).
    pub(crate) fn data(&self) -> NonNull<u8> {
        // SAFETY: as for `ctl`.
        unsafe { NonNull::new_unchecked(self.segment.as_ptr().add(self.off.data)) }
    }

    pub(crate) fn name(&self) -> &str {
        self.segment.name()
    }
}

/// Publishes a segment's header: see [`Region::publisher`].
#[derive(Debug)]
pub(crate) struct Publisher(*mut Header);

impl Publisher {
    /// Lets openers in. The segment must still be mapped: the caller holds
    /// it (in the region, or in the object it built).
    pub(crate) fn publish(self) {
        // SAFETY: the header of a mapping the caller keeps alive.
        unsafe { layout::publish(self.0) };
    }
}
