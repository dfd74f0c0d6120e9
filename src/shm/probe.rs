//! A read-only look at a segment, without attaching: its header, copied out
//! and checked as far as every kind shares it, and its attachment table.
//! `procring ls`/`inspect` build on it (and check the rest per kind), and so
//! does `create`'s reclaiming of a stale name.

use std::ptr::NonNull;
use std::time::Duration;

use super::header::{self, Header, Snapshot, HEADER_LEN, MAGIC};
use super::peer::{process_alive, Table};
use super::segment::Segment;
use crate::error::OpenError;

/// A segment mapped read-only, and its header as copied out.
#[derive(Debug)]
pub(crate) struct Probe {
    pub(crate) segment: Segment,
    pub(crate) snap: Snapshot,
}

/// What a look at a segment found.
#[derive(Debug)]
pub(crate) enum Found {
    /// Its header is published.
    Ready(Probe),
    /// Its creator died before publishing the header: it never will be.
    Abandoned(Probe),
}

/// Maps segment `name` read-only and copies its header out, waiting up to
/// `timeout` for a creator still initialising it.
pub(crate) fn probe(name: &str, timeout: Duration) -> Result<Found, OpenError> {
    let segment = Segment::open_read_only(name, timeout, HEADER_LEN)?;
    let hdr = segment.as_ptr().cast::<Header>().cast_const();
    // SAFETY: `open_read_only` maps at least `HEADER_LEN` bytes, for as long
    // as `segment` lives.
    let ready = unsafe { header::wait_ready(hdr, segment.name(), timeout) };
    // SAFETY: as above.
    let snap = unsafe { Snapshot::read(hdr) };
    match ready {
        Ok(()) => Ok(Found::Ready(Probe { segment, snap })),
        Err(OpenError::NotReady { .. }) if snap.magic == MAGIC && !process_alive(snap.creator_pid, 0) => {
            Ok(Found::Abandoned(Probe { segment, snap }))
        }
        Err(e) => Err(e),
    }
}

impl Probe {
    /// The segment's attachment table, once the header's shared fields
    /// check out; valid while `self` lives.
    pub(crate) fn table(&self) -> Result<Table, OpenError> {
        self.snap.validate_table(self.segment.name(), self.segment.len())?;
        // SAFETY: `validate_table` checked that `peer_rows` rows at
        // `HEADER_LEN` lie within the mapping, which lives as long as `self`;
        // the table only reads them through atomics.
        Ok(unsafe {
            Table::new(
                NonNull::new_unchecked(self.segment.as_ptr().add(HEADER_LEN)).cast(),
                self.snap.peer_rows as usize,
            )
        })
    }
}

/// Whether segment `name` is stale: every process attached to it died (and
/// at least one is recorded), or its creator died before it became ready.
pub(crate) fn is_stale(name: &str, timeout: Duration) -> bool {
    match probe(name, timeout) {
        Ok(Found::Abandoned(_)) => true,
        Ok(Found::Ready(p)) => p.table().is_ok_and(|t| t.stale().is_some()),
        Err(_) => false,
    }
}
