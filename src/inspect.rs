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
use crate::ring::mpmc::{self, Mpmc};
use crate::shm::header::{Expected, Kind, Layout, TypeInfo};
use crate::shm::peer::PeerInfo;
use crate::shm::probe::{self, Found, Probe};
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
    let probe = match probe::probe(name, timeout)? {
        Found::Ready(probe) => probe,
        // A creator that died before publishing leaves a segment that can
        // never become ready: stale.
        Found::Abandoned(Probe { segment, snap }) => {
            return Ok(SegmentInfo {
                name: segment.name().to_owned(),
                kind: snap.kind().unwrap_or(Kind::Spsc),
                capacity: 0,
                elem_type: snap.type_name(),
                elem_size: snap.elem_size,
                bytes: segment.len() as u64,
                creator_pid: snap.creator_pid,
                peers: Vec::new(),
                stale: true,
                counters: vec![("never became ready", 1)],
            })
        }
    };
    let (segment, snap) = (&probe.segment, &probe.snap);
    let name = segment.name().to_owned();
    let corrupt = |what: String| OpenError::Corrupt { name: name.clone(), what };
    let kind = snap.kind().ok_or_else(|| corrupt(format!("unknown object kind {}", snap.kind)))?;
    let elem =
        TypeInfo { size: snap.elem_size, align: snap.elem_align, hash: snap.type_hash, name: "(the recorded type)" };
    let (off, _) = snap.validate(&name, &Expected::new(layout(kind), elem, 0), segment.len())?;
    let table = probe.table()?;
    // SAFETY: `validate` checked the control block lies within the mapping;
    // it is only read, through atomics, while the mapping lives.
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
        name,
    })
}

/// What each kind puts in its segment.
fn layout(kind: Kind) -> Layout {
    match kind {
        Kind::Spsc => crate::spsc::LAYOUT,
        Kind::Queue => crate::queue::LAYOUT,
        Kind::Pipe => crate::pipe::LAYOUT,
        Kind::Value | Kind::Array => crate::state::cells::layout(kind),
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
                let state = ctl.add(crate::state::cells::offsets::LOCK_WORD).cast::<u32>().read_volatile();
                let writes = word(ctl, crate::state::cells::offsets::SEQ) / 2;
                vec![
                    ("lock holder pid", u64::from(crate::lock::mutex::LockWord::from_bits(state).holder())),
                    ("seqlock writes", writes),
                ]
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
    crate::shm::segment::unlink(name)?;
    Ok(())
}
