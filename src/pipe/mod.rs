//! `Pipe` and `Connection`: variable-length messages between two ends, like
//! Python's `multiprocessing.Pipe()`, on byte rings (`src/ring/bytes.rs`).
//!
//! A duplex pipe is two byte rings in one segment, one per direction; each
//! end is a [`Connection`] with a [`Sender`] and a [`Receiver`]. A simplex
//! pipe is one ring, with a `Sender` at one end and a `Receiver` at the other.
//! When one end drops (or its process dies), the other end's receives drain
//! what was sent and then fail with `Disconnected`; its sends fail at once.
//!
//! ```
//! let (mut a, mut b) = procring::Pipe::new(4096)?; // in-process; `create`/`open` by name
//! a.send_bytes(b"ping")?;
//! assert_eq!(b.recv_bytes()?, b"ping");
//! b.send_bytes(b"pong")?;
//! assert_eq!(&*a.read()?, b"pong"); // zero-copy: read in place
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub(crate) mod connection;
#[cfg(not(loom))]
mod named;
mod receiver;
mod sender;
#[cfg(all(feature = "serde", not(loom)))]
mod values;

#[cfg(not(loom))]
use connection::{Connection, Pipe};
#[cfg(not(loom))]
pub(crate) use named::LAYOUT;
pub use receiver::{Receiver, RecvBuf};
pub use sender::{SendBuf, Sender};
#[cfg(all(feature = "serde", not(loom)))]
pub use values::{IntoValues, Values};

use std::fmt;
#[cfg(not(loom))]
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{CreateError, MessageRecvError, MessageSendError};
use crate::ring::bytes::{self, Buffer, Found, Place, Reader, Stop, Writer};
use crate::ring::spsc::{Control, Role};
use crate::shm::backing::Backing;
#[cfg(not(loom))]
use crate::shm::backing::{local_barrier, HeapObject};
use crate::shm::peer::{Identity, Refused};
use crate::sync::wait::{Deadline, Wait};
use crate::sync::Barrier;

/// The memory behind a pipe's rings, shared by its ends in this process.
#[derive(Debug)]
struct Shared {
    ctl: [NonNull<Control>; 2],
    buffers: Vec<Buffer>,
    barrier: Barrier,
    _backing: Backing,
}

// SAFETY: the pointers point into `_backing`, which `Shared` owns; each ring is
// used by one writer and one reader, which the peer slots guarantee, and every
// shared word is atomic.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

impl Shared {
    #[inline(always)]
    fn ctl(&self, dir: usize) -> &Control {
        // SAFETY: points into `_backing`, initialised; a Control is all atomics.
        unsafe { self.ctl[dir].as_ref() }
    }

    /// An in-process pipe with `dirs` rings of `cap` bytes.
    fn heap(dirs: usize, cap: u64) -> Result<Self, CreateError> {
        #[cfg(not(loom))]
        {
            let heap = HeapObject::new(&LAYOUT, dirs as u32, 8, cap)?;
            let ctl_len = std::mem::size_of::<Control>();
            // SAFETY: a pipe's layout: two control blocks (ctl_len bytes each,
            // 128-aligned) at `ctl`, then `dirs` zeroed buffers of `cap`
            // bytes at `data`.
            let (ctl, buffers) = unsafe {
                let ctl = [heap.ctl.cast::<Control>(), heap.ctl.add(ctl_len).cast::<Control>()];
                (ctl, (0..dirs).map(|d| Buffer::new(heap.data.add(d * cap as usize), cap)).collect())
            };
            Ok(Self { ctl, buffers, barrier: local_barrier(), _backing: heap.backing })
        }
        #[cfg(loom)]
        {
            let ctls = Box::new([Control::new(), Control::new()]);
            let ctl = [NonNull::from(&ctls[0]), NonNull::from(&ctls[1])];
            let buffers = (0..dirs).map(|_| Buffer::new_loom(cap)).collect();
            Ok(Self { ctl, buffers, barrier: Barrier::Symmetric, _backing: Backing::Local(std::sync::Arc::new(ctls)) })
        }
    }
}

fn check_capacity(capacity: usize) -> Result<u64, CreateError> {
    crate::shm::backing::check_capacity(capacity, 64, 1 << 32, "a pipe needs at least 64 bytes per direction")
}

fn send_err(stop: Stop) -> MessageSendError {
    match stop {
        Stop::NotNow => MessageSendError::Full,
        Stop::Timeout => MessageSendError::Timeout,
        Stop::TooLarge { size, max } => MessageSendError::TooLarge { size, limit: max },
        Stop::Disconnected | Stop::Corrupt(_) => MessageSendError::Disconnected,
    }
}

fn recv_err(stop: Stop) -> MessageRecvError {
    match stop {
        Stop::NotNow => MessageRecvError::Empty,
        Stop::Timeout => MessageRecvError::Timeout,
        Stop::Disconnected | Stop::TooLarge { .. } => MessageRecvError::Disconnected,
        Stop::Corrupt(w) => MessageRecvError::Corrupt(w),
    }
}

fn attach(shared: &Shared, dir: usize, role: Role, me: Identity) -> Result<(), Refused> {
    shared.ctl(dir).peer(role).attach(me)
}
