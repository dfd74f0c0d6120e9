//! procring: fast communication between processes on one host.
//!
//! The core is a lock-free ring buffer that lives in a named shared-memory
//! segment. One process creates the segment by name and takes one end; another
//! opens it by name and takes the other. Messages are `Pod` values written
//! straight into the shared slots and read in place: no system call, no copy
//! through the kernel. A side that has to wait spins briefly, then sleeps on a
//! futex in the segment; the other side wakes it only if it is asleep, so a
//! busy stream costs no system calls at all.
//!
//! ```no_run
//! use procring::spsc::{Consumer, Producer};
//!
//! // Process A
//! let mut tx = Producer::<u64>::create("/ticks", 1024)?;
//! tx.send(42)?;
//!
//! // Process B
//! let mut rx = Consumer::<u64>::open("/ticks")?;
//! assert_eq!(rx.recv()?, 42);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! When one end drops (or its process dies), the other learns it: a
//! receiver gets [`RecvError::Disconnected`] once it has drained what was
//! sent, a sender gets its value back in a [`SendError`].
//!
//! The layers, invariants and memory orderings are described in
//! `docs/design.md` of the repository.
//!
//! # Message types
//!
//! A message in a ring, a queue, a `Value` or an `Array` is any type that is
//! valid for every bit pattern and holds no pointer: [`Pod`]. Between
//! processes it also has a wire name ([`Message`]), which every program that
//! exchanges it declares, and which `open` checks with its size and
//! alignment. Derive and declare it through procring (no direct dependency
//! on `bytemuck` needed):
//!
//! ```
//! #[derive(Clone, Copy, Debug, PartialEq, procring::Pod, procring::Zeroable)]
//! #[bytemuck(crate = "procring::bytemuck")]
//! #[repr(C)]
//! struct Tick {
//!     price: f64,
//!     qty: u32,
//!     venue: u32,
//! }
//! procring::message!(Tick);
//!
//! let (tx, rx) = procring::queue::bounded::<Tick>(8)?;
//! tx.send(Tick { price: 1.5, qty: 100, venue: 7 })?;
//! assert_eq!(rx.recv()?.qty, 100);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `#[repr(C)]` with no padding bytes (add explicit fields for it) is what
//! `Pod` requires. Any `serde` value travels through [`SerdeQueue`] or a
//! [`Pipe`] instead.
//!
//! procring runs on Linux only: it needs POSIX shared memory in
//! `/dev/shm`, shared futexes and `/proc`.
#![deny(unsafe_op_in_unsafe_fn)]
// Under loom only the protocols are built; the segment plumbing is not.
#![cfg_attr(loom, allow(dead_code))]

#[cfg(not(target_os = "linux"))]
compile_error!("procring runs on Linux only: it needs /dev/shm, shared futexes and /proc");

mod array;
mod cells;
pub mod error;
#[cfg(not(loom))]
mod inspect;
#[cfg(not(loom))]
mod layout;
mod memory;
mod message;
mod mutex;
mod peer;
pub mod pipe;
pub mod queue;
#[cfg(not(loom))]
mod region;
pub mod ring;
#[cfg(not(loom))]
mod segment;
mod seqlock;
#[cfg(all(feature = "serde", not(loom)))]
mod serde_queue;
mod sync;
#[cfg(not(loom))]
mod thread_tag;
mod value;
mod wait;

pub use array::{Array, ArrayGuard};
/// The `bytemuck` crate, for `#[bytemuck(crate = "procring::bytemuck")]` on
/// a message type that derives [`Pod`] through procring.
pub use bytemuck;
/// A message type: valid for every bit pattern, no pointers (and its
/// derive). See "Message types" above.
pub use bytemuck::Pod;
/// All zeroes is a valid value (and its derive); `Pod` requires it.
pub use bytemuck::Zeroable;
#[cfg(not(loom))]
pub use inspect::{inspect, list, remove, RemoveError, SegmentInfo};
pub use message::Message;
pub use peer::PeerInfo;
pub use value::{Value, ValueGuard};

pub use error::{
    CreateError, MessageRecvError, MessageSendError, OpenError, OutOfBounds, OwnerDied, RecvError, RecvTimeoutError,
    SendError, SendTimeoutError, TryLockError, TryRecvError, TrySendError,
};
pub use pipe::{Connection, Pipe};
pub use queue::{Queue, RecvRef as QueueRecvRef, SendSlot as QueueSendSlot};
pub use ring::spsc;
#[cfg(not(loom))]
pub use segment::unlink;
#[cfg(all(feature = "serde", not(loom)))]
pub use serde_queue::SerdeQueue;

#[cfg(not(loom))]
pub use layout::{Kind, VERSION as LAYOUT_VERSION};

/// Internals exposed for the loom models in `loom-tests/`; not a stable API.
#[doc(hidden)]
pub mod __loom {
    #[cfg(loom)]
    pub use crate::ring::mpmc::claims_model;
    pub use crate::seqlock::{Death, SeqLock};
    pub use crate::wait::EventCount;

    /// The robust mutex, as a process `pid` (> 0) takes it: `timed` waits
    /// in slices (and checks the holder's life after each), otherwise it
    /// sleeps until woken, so a lost wakeup is a deadlock.
    #[derive(Debug, Default)]
    pub struct Mutex(crate::mutex::RobustMutex);

    impl Mutex {
        /// A free mutex.
        pub fn new() -> Self {
            Self(crate::mutex::RobustMutex::new())
        }

        /// Takes it; returns the pid of a dead holder it was taken from.
        pub fn lock(&self, pid: u32, timed: bool) -> Option<u32> {
            let wait = crate::wait::Wait { spin: 0, slice: timed.then_some(std::time::Duration::from_millis(1)) };
            match self.0.lock(Self::me(pid), &wait, None, None).expect("no deadline") {
                crate::mutex::Taken::Clean => None,
                crate::mutex::Taken::Recovered(dead) => Some(dead),
            }
        }

        /// Releases it.
        pub fn unlock(&self) {
            self.0.unlock();
        }

        fn me(pid: u32) -> crate::peer::Identity {
            #[cfg(loom)]
            return crate::peer::Identity::fake(pid);
            #[cfg(not(loom))]
            crate::peer::Identity { pid, start: 0 }
        }
    }

    /// The header a pipe record at byte position `pos` with a `len`-byte
    /// message carries.
    #[cfg(loom)]
    pub fn pipe_header(pos: u64, len: u64) -> u64 {
        crate::ring::bytes::loom_header(pos, len)
    }

    /// A receive from `q` that finds the next message or nothing, without
    /// the honest `try_recv`'s wait for a send under way that messages are
    /// queued behind (which has a model of its own).
    #[cfg(loom)]
    pub fn try_recv_quick<T: bytemuck::Pod>(q: &crate::Queue<T>) -> Option<T> {
        q.try_recv_quick()
    }

    /// Declares made-up process `pid` dead (it stops; nothing runs for it).
    #[cfg(loom)]
    pub fn kill(pid: u32) {
        crate::peer::loom_kill(pid);
    }

    /// Wait/notify on an eventcount with the symmetric barrier (loom's only one).
    pub fn notify(ec: &EventCount) {
        ec.notify(crate::sync::Barrier::Symmetric);
    }

    /// Waits (no timeout, no spinning) until `poll` returns `Some`.
    pub fn wait<R>(ec: &EventCount, poll: impl FnMut(bool) -> Option<R>) -> R {
        let wait = crate::wait::Wait { spin: 0, slice: None };
        ec.wait_until(crate::sync::Barrier::Symmetric, &wait, None, poll).expect("no deadline: waits until ready")
    }
}

use std::time::Duration;

/// Options for creating and opening segments.
///
/// ```no_run
/// use procring::{spsc::Producer, Options};
///
/// let opts = Options::new().mode(0o660).keep(true).busy_poll();
/// let tx = Producer::<u64>::create_with("/shared-with-group", 4096, &opts)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub(crate) mode: u32,
    pub(crate) keep: bool,
    pub(crate) spin: u32,
    pub(crate) open_timeout: Duration,
    pub(crate) peers: u32,
    pub(crate) open_stale: bool,
    pub(crate) reclaim_stale: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self::new()
    }
}

impl Options {
    /// Spin-loop steps a blocked call spins before sleeping, by default.
    pub const DEFAULT_SPIN: u32 = ring::spsc::DEFAULT_SPIN;

    /// Defaults: mode `0o600`, the creator removes the name on drop, a short
    /// spin before sleeping, and `open` waits up to one second for a creator
    /// that is still initialising the segment.
    pub fn new() -> Self {
        Self {
            mode: 0o600,
            keep: false,
            spin: ring::spsc::DEFAULT_SPIN,
            open_timeout: Duration::from_secs(1),
            peers: peer::DEFAULT_ROWS,
            open_stale: false,
            reclaim_stale: false,
        }
    }

    /// Permission bits for a new segment (default `0o600`: this user only).
    /// Applied exactly, whatever the process umask.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o777;
        self
    }

    /// Keep the segment's name after the creating handle drops (default:
    /// removed). A kept segment is removed with [`unlink`] or `procring rm`.
    pub fn keep(mut self, keep: bool) -> Self {
        self.keep = keep;
        self
    }

    /// Spin-loop steps a blocked call spins before it sleeps on the futex.
    /// `0` sleeps at once; `u32::MAX` never sleeps (see [`Options::busy_poll`]).
    pub fn spin(mut self, spin: u32) -> Self {
        self.spin = spin;
        self
    }

    /// Never sleep: blocked calls spin (lowest latency, one core kept busy
    /// per waiting side). They still notice a peer's death and their deadline.
    pub fn busy_poll(self) -> Self {
        self.spin(u32::MAX)
    }

    /// How long `open` waits for a segment's creator to finish initialising it.
    pub fn open_timeout(mut self, timeout: Duration) -> Self {
        self.open_timeout = timeout;
        self
    }

    /// How many processes may be attached to a new segment at once (its
    /// attachment table's rows; default 64, at most 4096). Each process's
    /// handles on one object take one row.
    pub fn peers(mut self, rows: u32) -> Self {
        self.peers = rows.clamp(1, peer::MAX_ROWS);
        self
    }

    /// Open a segment even if it is stale: every process attached to it
    /// died without detaching (default: [`OpenError::Stale`]). For draining
    /// what such processes left behind.
    pub fn open_stale(mut self, yes: bool) -> Self {
        self.open_stale = yes;
        self
    }

    /// When creating a name that exists, remove the segment there and create
    /// anew if it is stale: every process attached to it died, or its
    /// creator died before it became ready (default: off, and the name
    /// existing is [`CreateError::AlreadyExists`]).
    pub fn reclaim_stale(mut self, yes: bool) -> Self {
        self.reclaim_stale = yes;
        self
    }
}
