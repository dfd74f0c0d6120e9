//! Looking at segments from outside, without attaching: what `procring ls`,
//! `procring inspect` and `procring rm` show and do.
//!
//! A segment is mapped read-only and treated as untrusted, as `open` treats
//! it: the header is copied out and validated (against itself: its own kind
//! and element type), and only then are the attachment table and the control
//! block read, at offsets computed from the validated header.

use std::ptr::NonNull;
use std::time::Duration;

use crate::error::OpenError;
use crate::layout::{self, Expected, Header, Kind, Snapshot, TypeInfo};
use crate::peer::{PeerInfo, Table};
use crate::ring::mpmc::{self, Mpmc};
use crate::segment::Segment;
use crate::sync::Barrier;

/// What a segment holds and who is attached to it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SegmentInfo {
    /// The segment's name (with its leading `/`).
    pub name: String,
    /// What it holds.
    pub kind: Kind,
    /// Elements (ring slots, array elements, pipe bytes per direction).
    pub capacity: u64,
    /// The element type's name, as its creator's build spelled it.
    pub elem_type: String,
    /// The element's size in bytes.
    pub elem_size: u32,
    /// The segment's size in bytes.
    pub bytes: u64,
    /// The process that created it.
    pub creator_pid: u32,
    /// The processes attached to it now, dead or alive.
    pub peers: Vec<PeerInfo>,
    /// Whether every attached process is dead (and at least one is recorded).
    pub stale: bool,
    /// The kind's counters: positions, fill level, lock holder, and so on.
    pub counters: Vec<(&'static str, u64)>,
}

impl SegmentInfo {
    /// Whether a live process is attached.
    pub fn in_use(&self) -> bool {
        self.peers.iter().any(|p| p.alive)
    }
}

/// Describes segment `name` without attaching to it.
///
/// # Errors
/// [`OpenError`]: no such segment, not readable, not a procring segment,
/// another layout version, or a header that fails validation.
pub fn inspect(name: &str) -> Result<SegmentInfo, OpenError> {
    inspect_with(name, Duration::ZERO)
}

/// [`inspect`], waiting up to `timeout` for a segment still being created.
pub(crate) fn inspect_with(name: &str, timeout: Duration) -> Result<SegmentInfo, OpenError> {
    let segment = Segment::open_read_only(name, timeout)?;
    let name = segment.name().to_owned();
    let hdr = segment.as_ptr().cast::<Header>().cast_const();
    // SAFETY: `open_read_only` maps at least a header's worth of bytes.
    let ready = unsafe { layout::wait_ready(hdr, &name, timeout) };
    // SAFETY: as above.
    let snap = unsafe { Snapshot::read(hdr) };
    if let Err(e @ OpenError::NotReady { .. }) = ready {
        // A creator that died before publishing leaves a segment that can
        // never become ready: stale.
        let dead = !crate::peer::process_alive(snap.creator_pid, 0);
        if !dead || snap.magic != layout::MAGIC {
            return Err(e);
        }
        return Ok(SegmentInfo {
            name,
            kind: snap.kind().unwrap_or(Kind::Spsc),
            capacity: 0,
            elem_type: snap.type_name(),
            elem_size: snap.elem_size,
            bytes: segment.len() as u64,
            creator_pid: snap.creator_pid,
            peers: Vec::new(),
            stale: true,
            counters: vec![("never became ready", 1)],
        });
    }
    ready?;
    let corrupt = |what: String| OpenError::Corrupt { name: name.clone(), what };
    let kind = snap.kind().ok_or_else(|| corrupt(format!("unknown object kind {}", snap.kind)))?;
    let elem =
        TypeInfo { size: snap.elem_size, align: snap.elem_align, hash: snap.type_hash, name: "(the recorded type)" };
    let e = Expected { kind, elem, capacity: 0, ctl_len: control_len(kind), rows: 0 };
    let (off, _) = snap.validate(&name, &e, segment.len())?;
    // SAFETY: `validate` checked the table and the control block lie within
    // the mapping; both are only read, through atomics, while it is mapped.
    let table = unsafe {
        Table::new(std::ptr::NonNull::new_unchecked(segment.as_ptr().add(off.peers)).cast(), snap.peer_rows as usize)
    };
    // SAFETY: as above.
    let ctl = unsafe { segment.as_ptr().add(off.ctl).cast_const() };
    // A queue's processes leave their last finished claims announced: show
    // only the unfinished ones.
    let queue = (kind == Kind::Queue).then(|| {
        let g = mpmc::Geometry { size: snap.elem_size as usize, align: snap.elem_align as usize };
        // SAFETY: a validated queue: its control block and `capacity` slots
        // of this geometry lie within the mapping, which outlives `queue`;
        // a ring without claims only reads them here.
        unsafe {
            let data = NonNull::new_unchecked(segment.as_ptr().add(off.data));
            Mpmc::new(
                NonNull::new_unchecked(ctl.cast_mut()).cast(),
                mpmc::Slots::new(data, g),
                snap.capacity,
                Barrier::Symmetric,
                None,
            )
        }
    });
    let peers: Vec<PeerInfo> = table
        .rows()
        .iter()
        .filter_map(|r| {
            let mut info = r.info()?;
            if let Some(q) = &queue {
                info.claims = q.unfinished_claims(r);
            }
            Some(info)
        })
        .collect();
    Ok(SegmentInfo {
        name,
        kind,
        capacity: snap.capacity,
        elem_type: snap.type_name(),
        elem_size: snap.elem_size,
        bytes: segment.len() as u64,
        creator_pid: snap.creator_pid,
        stale: table.stale().is_some(),
        peers,
        // SAFETY: `ctl` is this kind's validated control block.
        counters: unsafe { counters(kind, ctl) },
    })
}

fn control_len(kind: Kind) -> usize {
    match kind {
        Kind::Spsc => std::mem::size_of::<crate::ring::spsc::Control>(),
        Kind::Queue => crate::ring::mpmc::CONTROL_LEN,
        Kind::Pipe => 2 * std::mem::size_of::<crate::ring::spsc::Control>(),
        Kind::Value | Kind::Array => crate::cells::CONTROL_LEN,
    }
}

/// Reads the `u64` at byte `off` of `ctl`.
///
/// # Safety
/// `ctl + off` is an 8-byte aligned word of a live mapping.
unsafe fn word(ctl: *const u8, off: usize) -> u64 {
    // SAFETY: the caller's contract. Volatile: another process may be
    // changing the word; any value will do for a report.
    unsafe { ctl.add(off).cast::<u64>().read_volatile() }
}

/// The kind's counters, read from its control block.
///
/// # Safety
/// `ctl` is the start of a validated control block of `kind`.
unsafe fn counters(kind: Kind, ctl: *const u8) -> Vec<(&'static str, u64)> {
    use crate::ring::{mpmc, spsc};
    use std::mem::offset_of;
    let (spsc_tail, spsc_head) = (offset_of!(spsc::Control, tail), offset_of!(spsc::Control, head));
    // SAFETY: each offset is an aligned word of that kind's control block,
    // taken from the layout itself.
    unsafe {
        match kind {
            Kind::Spsc => {
                let (tail, head) = (word(ctl, spsc_tail), word(ctl, spsc_head));
                vec![("sent", tail), ("received", head), ("queued", tail.saturating_sub(head))]
            }
            Kind::Queue => {
                let (tail, head) = (word(ctl, mpmc::offsets::TAIL), word(ctl, mpmc::offsets::HEAD));
                let open_tail = tail & !(1 << 63);
                let bias = |at: usize| mpmc::offsets::bias_state(word(ctl, at));
                vec![
                    ("sent", open_tail),
                    ("received", head),
                    ("released", word(ctl, mpmc::offsets::RELEASED)),
                    ("queued", open_tail.saturating_sub(head)),
                    ("closed", tail >> 63),
                    ("skipped", word(ctl, mpmc::offsets::SKIPPED)),
                    ("abandoned", word(ctl, mpmc::offsets::ABANDONED)),
                    ("send bias (0 free, 1 owned, 2 revoking, 3 shared)", bias(mpmc::offsets::TAIL_BIAS)),
                    ("receive bias", bias(mpmc::offsets::HEAD_BIAS)),
                    ("biases revoked", word(ctl, mpmc::offsets::REVOKED)),
                ]
            }
            Kind::Pipe => {
                let second = std::mem::size_of::<spsc::Control>();
                // The reader may take records by their headers before `tail` counts
                // them: `head` can pass `tail` for a moment.
                let used = |c: *const u8| word(c, spsc_tail).saturating_sub(word(c, spsc_head));
                vec![
                    ("bytes queued, creator to opener", used(ctl)),
                    ("bytes queued, opener to creator", used(ctl.add(second))),
                ]
            }
            Kind::Value | Kind::Array => {
                let state = ctl.add(crate::cells::offsets::LOCK_WORD).cast::<u32>().read_volatile();
                let writes = word(ctl, crate::cells::offsets::SEQ) / 2;
                vec![("lock holder pid", u64::from(crate::mutex::holder_of(state))), ("seqlock writes", writes)]
            }
        }
    }
}

/// Every procring segment in `/dev/shm`, described (or why it could not be).
/// Files that are not procring segments are left out.
pub fn list() -> Vec<(String, Result<SegmentInfo, OpenError>)> {
    let Ok(dir) = std::fs::read_dir("/dev/shm") else { return Vec::new() };
    let mut names: Vec<String> =
        dir.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).map(|n| format!("/{n}")).collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|name| {
            let info = inspect(&name);
            let foreign = matches!(&info, Err(OpenError::Corrupt { what, .. })
                    if what.starts_with("bad magic") || what.contains("smaller than a header"))
                || matches!(&info, Err(OpenError::NotReady { .. }) | Err(OpenError::InvalidName { .. }));
            (!foreign).then_some((name, info))
        })
        .collect()
}

/// Why [`remove`] did not remove a segment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoveError {
    /// Live processes are attached (pass `force` to remove it anyway: they
    /// keep their mapping, and nobody new can open it).
    #[error("segment {name:?} is in use by live processes {pids:?} (force to remove it anyway)")]
    InUse {
        /// The segment's name.
        name: String,
        /// The live attached processes.
        pids: Vec<u32>,
    },
    /// It could not be looked at or unlinked.
    #[error(transparent)]
    Open(#[from] OpenError),
}

/// Removes segment `name`, refusing while live processes are attached unless
/// `force`. A segment that is not a readable procring segment is only
/// removed with `force`.
///
/// # Errors
/// [`RemoveError`].
pub fn remove(name: &str, force: bool) -> Result<(), RemoveError> {
    match inspect(name) {
        Ok(info) if info.in_use() && !force => {
            let pids = info.peers.iter().filter(|p| p.alive).map(|p| p.pid).collect();
            return Err(RemoveError::InUse { name: info.name, pids });
        }
        Ok(_) => {}
        Err(e @ OpenError::NotFound(_)) => return Err(e.into()),
        Err(e) if !force => return Err(e.into()),
        Err(_) => {}
    }
    crate::segment::unlink(name)?;
    Ok(())
}
