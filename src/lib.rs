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

// The layers, bottom up; a module names only modules of its own layer or
// below (`.ci/layers` checks it):
// 0. `sync` (atomics facade, futex, barriers, the eventcount), `error`, `message`;
// 1. `shm`: segments, their header, attachment table and options;
// 2. `ring` and `lock`: the protocols over shared words;
// 3. the typed objects: `spsc`, `queue`, `pipe`, `state` (values and arrays);
// 4. `inspect` (what `procring ls` shows) and `__loom` (for the models).
pub mod error;
#[cfg(not(loom))]
mod inspect;
mod lock;
mod message;
pub mod pipe;
pub mod queue;
mod ring;
mod shm;
pub mod spsc;
mod state;
mod sync;

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
pub use shm::{Options, PeerInfo};
pub use state::{Array, ArrayGuard, Value, ValueGuard};

pub use error::{
    CreateError, MessageRecvError, MessageSendError, OpenError, OutOfBounds, OwnerDied, RecvError, RecvTimeoutError,
    SendError, SendTimeoutError, TryLockError, TryRecvError, TrySendError,
};
pub use pipe::connection::{Connection, Pipe};
pub use queue::api::Queue;
#[cfg(all(feature = "serde", not(loom)))]
pub use queue::serialized::SerdeQueue;
#[cfg(not(loom))]
pub use shm::unlink;

#[cfg(not(loom))]
pub use shm::{Kind, LAYOUT_VERSION};

#[doc(hidden)]
pub mod __loom;
