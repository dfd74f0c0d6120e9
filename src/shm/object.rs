//! A named segment holding one object: the header, a control block and a
//! data region. Creating one writes the header (unpublished) and lets the
//! object initialise its control block; opening one waits for the header,
//! validates it against what the caller expects and hands back the parts.
//! Every object kind (rings, queues, pipes) builds on this.

use std::ptr::NonNull;

use crate::error::{CreateError, OpenError};
use crate::shm::backing::{Backing, Mapped};
use crate::shm::header::{self, Expected, Header, Offsets, Snapshot, HEADER_LEN};
use crate::shm::peer::{Attached, Identity, Row, Table};
use crate::shm::segment::Segment;
use crate::shm::Options;
use crate::sync::{register_asymmetric, Barrier};

/// A mapped, validated segment, where its parts are, and this process's row
/// in its attachment table.
#[derive(Debug)]
pub(crate) struct Object {
    // Fields drop in order: the row is freed while the mapping still exists.
    attached: Attached,
    segment: Segment,
    table: Table,
    pub(crate) off: Offsets,
    pub(crate) capacity: u64,
    /// The element size recorded in the header (what the caller asked for,
    /// or, if it asked for size 0, what the creator chose).
    pub(crate) elem_size: u32,
    pub(crate) barrier: Barrier,
}

impl Object {
    /// Creates the segment for `e` (with `opts.peers` attachment rows), takes
    /// a row for this process as `role`, writes the kind's fresh control
    /// block (`Layout::init`), then the header. The header is not yet
    /// published: the caller takes its role, then calls
    /// [`Object::publish`].
    pub(crate) fn create(name: &str, e: &Expected, opts: &Options, role: u32) -> Result<Self, CreateError> {
        let capacity = e.capacity as usize;
        let e = Expected { rows: opts.peers, ..*e };
        let off = e.offsets().ok_or(CreateError::InvalidCapacity { capacity, reason: "too large to map" })?;
        let mut segment = match Segment::create(name, off.total, opts.mode) {
            Err(CreateError::AlreadyExists(n)) if opts.reclaim_stale && reclaim(&n, opts) => {
                Segment::create(name, off.total, opts.mode)?
            }
            other => other?,
        };
        segment.set_keep(opts.keep);
        let barrier = super::backing::local_barrier();
        // SAFETY: the fresh mapping holds `e.rows` zeroed (free) rows at
        // `off.peers`; the table is only used while the segment is mapped.
        let table = unsafe { table_in(&segment, &off, e.rows) };
        let attached = table.attach(Identity::this_process(), role).expect("a fresh table has free rows");
        let region = Self { segment, attached, table, off, capacity: e.capacity, elem_size: e.elem.size, barrier };
        // SAFETY: the fresh mapping's control block: `ctl_len` zeroed bytes,
        // 128-aligned, that nobody else uses before `publish`.
        unsafe { (e.layout.init)(region.ctl()) };
        // SAFETY: a fresh mapping of `off.total` bytes that no other process
        // reads before `publish`.
        unsafe { header::write(region.header(), &e, &off, barrier) };
        Ok(region)
    }

    /// Lets openers in: the header and the control block are complete (and
    /// the creator has taken its role).
    pub(crate) fn publish(&self) {
        self.publisher().publish();
    }

    /// Opens segment `name`, waits for its header, checks it against `e`
    /// (whose capacity is ignored: the segment's own is used and checked),
    /// refuses a stale one (unless `opts.open_stale`), and takes a row for
    /// this process as `role`.
    pub(crate) fn open(name: &str, e: &Expected, opts: &Options, role: u32) -> Result<Self, OpenError> {
        Self::open_then(name, e, opts, role, |_| ())
    }

    /// As [`Object::open`], calling `before_attach` with the validated
    /// segment's parts before this process takes a row (a queue clears
    /// dead processes' finished claims there, so that their rows can be
    /// freed).
    pub(crate) fn open_then(
        name: &str,
        e: &Expected,
        opts: &Options,
        role: u32,
        before_attach: impl FnOnce(&Parts),
    ) -> Result<Self, OpenError> {
        let segment = Segment::open(name, opts.open_timeout, HEADER_LEN)?;
        let hdr = segment.as_ptr().cast::<Header>().cast_const();
        // SAFETY: `Segment::open` maps at least a header's worth of bytes.
        unsafe { header::wait_ready(hdr, segment.name(), opts.open_timeout)? };
        // SAFETY: as above.
        let snap = unsafe { Snapshot::read(hdr) };
        let (off, barrier) = snap.validate(segment.name(), e, segment.len())?;
        if barrier == Barrier::Asymmetric && !register_asymmetric() {
            return Err(OpenError::Unsupported {
                name: segment.name().to_owned(),
                what: "membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED)",
            });
        }
        // SAFETY: `validate` checked the rows fit before `off.ctl`, within the file.
        let table = unsafe { table_in(&segment, &off, snap.peer_rows) };
        if let Some(dead) = table.stale() {
            if !opts.open_stale {
                return Err(OpenError::Stale { name: segment.name().to_owned(), dead });
            }
        }
        // SAFETY: `validate` checked the control block and the data region
        // lie within the mapping, which outlives the call.
        let (ctl, data) = unsafe { (segment.as_ptr().add(off.ctl), segment.as_ptr().add(off.data)) };
        before_attach(&Parts {
            table,
            // SAFETY: within a mapping, so not null.
            ctl: unsafe { NonNull::new_unchecked(ctl) },
            // SAFETY: as above.
            data: unsafe { NonNull::new_unchecked(data) },
            capacity: snap.capacity,
            elem_size: snap.elem_size,
            barrier,
        });
        let attached = table
            .attach(Identity::this_process(), role)
            .map_err(|_| OpenError::TooManyPeers { name: segment.name().to_owned(), rows: snap.peer_rows })?;
        Ok(Self { segment, attached, table, off, capacity: snap.capacity, elem_size: snap.elem_size, barrier })
    }

    /// The memory owner for the object built on this region: the mapping,
    /// and this process's row, freed first when it drops.
    pub(crate) fn into_backing(self) -> Backing {
        Backing::Segment(Mapped { _attached: self.attached, _segment: self.segment })
    }

    /// The attachment table, and this process's row in it (valid while
    /// the memory from [`Object::into_backing`] is kept).
    pub(crate) fn peers(&self) -> (Table, NonNull<Row>) {
        (self.table, NonNull::from(self.attached.row()))
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

/// A validated segment's parts, for [`Object::open_then`]: valid during the
/// call they are handed to.
#[derive(Debug)]
pub(crate) struct Parts {
    pub(crate) table: Table,
    /// The control block (128-byte aligned).
    pub(crate) ctl: NonNull<u8>,
    /// The data region (aligned for the element type).
    pub(crate) data: NonNull<u8>,
    pub(crate) capacity: u64,
    pub(crate) elem_size: u32,
    pub(crate) barrier: Barrier,
}

/// The attachment table of a mapped segment.
///
/// # Safety
/// `rows` rows at `off.peers` are within the mapping; the table is only
/// used while the segment stays mapped.
unsafe fn table_in(segment: &Segment, off: &Offsets, rows: u32) -> Table {
    // SAFETY: the caller's contract; the offset is 128-aligned, zeroed or
    // written rows are valid atomics.
    unsafe { Table::new(NonNull::new_unchecked(segment.as_ptr().add(off.peers)).cast(), rows as usize) }
}

/// `create` found `name` taken: removes it if the segment there is stale
/// (every process attached to it died, or its creator died before it became
/// ready). Returns whether it did.
fn reclaim(name: &str, opts: &Options) -> bool {
    let timeout = opts.open_timeout.min(std::time::Duration::from_millis(100));
    super::probe::is_stale(name, timeout) && super::segment::unlink(name).is_ok()
}

/// Publishes a segment's header: see [`Object::publisher`].
#[derive(Debug)]
pub(crate) struct Publisher(*mut Header);

impl Publisher {
    /// Lets openers in. The segment must still be mapped: the caller holds
    /// it (in the region, or in the object it built).
    pub(crate) fn publish(self) {
        // SAFETY: the header of a mapping the caller keeps alive.
        unsafe { header::publish(self.0) };
    }
}
