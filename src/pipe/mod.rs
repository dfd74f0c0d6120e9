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

#[cfg(not(loom))]
mod named;
mod receiver;
mod sender;
#[cfg(all(feature = "serde", not(loom)))]
mod values;

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
    fn heap(dirs: usize, cap: u64) -> Self {
        #[cfg(not(loom))]
        {
            let heap = HeapObject::new(&LAYOUT, dirs as u32, 8, cap);
            let ctl_len = std::mem::size_of::<Control>();
            // SAFETY: a pipe's layout: two control blocks (ctl_len bytes each,
            // 128-aligned) at `ctl`, then `dirs` zeroed buffers of `cap`
            // bytes at `data`.
            let (ctl, buffers) = unsafe {
                let ctl = [heap.ctl.cast::<Control>(), heap.ctl.add(ctl_len).cast::<Control>()];
                (ctl, (0..dirs).map(|d| Buffer::new(heap.data.add(d * cap as usize), cap)).collect())
            };
            Self { ctl, buffers, barrier: local_barrier(), _backing: heap.backing }
        }
        #[cfg(loom)]
        {
            let ctls = Box::new([Control::new(), Control::new()]);
            let ctl = [NonNull::from(&ctls[0]), NonNull::from(&ctls[1])];
            let buffers = (0..dirs).map(|_| Buffer::new_loom(cap)).collect();
            Self { ctl, buffers, barrier: Barrier::Symmetric, _backing: Backing::Local(std::sync::Arc::new(ctls)) }
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

/// One end of a duplex pipe: sends to and receives from the other end.
/// [`Connection::sender`] and [`Connection::receiver`] give every form of
/// every call; the common ones are here too.
#[derive(Debug)]
pub struct Connection {
    tx: Sender,
    rx: Receiver,
}

impl Connection {
    /// This end's sending half.
    pub fn sender(&mut self) -> &mut Sender {
        &mut self.tx
    }

    /// This end's receiving half.
    pub fn receiver(&mut self) -> &mut Receiver {
        &mut self.rx
    }

    /// Splits the end into its halves (to use them from two threads).
    pub fn split(self) -> (Sender, Receiver) {
        (self.tx, self.rx)
    }

    /// The other end's process id if it died without dropping its end: the
    /// reason behind a `Disconnected`. `None` while it runs, and if it
    /// dropped its end.
    pub fn peer_died(&self) -> Option<u32> {
        self.rx.peer_died().or_else(|| self.tx.peer_died())
    }

    /// See [`Sender::send_bytes`].
    ///
    /// # Errors
    /// As [`Sender::send_bytes`].
    #[inline]
    pub fn send_bytes(&mut self, msg: &[u8]) -> Result<(), MessageSendError> {
        self.tx.send_bytes(msg)
    }

    /// See [`Receiver::recv_bytes`].
    ///
    /// # Errors
    /// As [`Receiver::recv_bytes`].
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>, MessageRecvError> {
        self.rx.recv_bytes()
    }

    /// See [`Receiver::recv_bytes_into`].
    ///
    /// # Errors
    /// As [`Receiver::recv_bytes_into`].
    #[inline]
    pub fn recv_bytes_into(&mut self, buf: &mut [u8]) -> Result<usize, MessageRecvError> {
        self.rx.recv_bytes_into(buf)
    }

    /// See [`Receiver::poll`].
    pub fn poll(&mut self, timeout: Duration) -> bool {
        self.rx.poll(timeout)
    }

    /// See [`Sender::reserve`].
    ///
    /// # Errors
    /// As [`Sender::reserve`].
    #[inline]
    pub fn reserve(&mut self, len: usize) -> Result<SendBuf<'_>, MessageSendError> {
        self.tx.reserve(len)
    }

    /// See [`Receiver::read`].
    ///
    /// # Errors
    /// As [`Receiver::read`].
    #[inline]
    pub fn read(&mut self) -> Result<RecvBuf<'_>, MessageRecvError> {
        self.rx.read()
    }
}

/// Constructors for pipes (Python's `multiprocessing.Pipe()`).
#[derive(Debug)]
pub struct Pipe(());

fn attach(shared: &Shared, dir: usize, role: Role, me: Identity) -> Result<(), Refused> {
    shared.ctl(dir).peer(role).attach(me)
}

impl Pipe {
    /// An in-process duplex pipe: two connected ends, `capacity` bytes each way.
    ///
    /// # Errors
    /// [`CreateError::InvalidCapacity`] unless `capacity` is a power of two
    /// from 64 bytes to 4 GiB.
    #[allow(clippy::new_ret_no_self)] // as Python's Pipe(): a pair of connected ends
    pub fn new(capacity: usize) -> Result<(Connection, Connection), CreateError> {
        let cap = check_capacity(capacity)?;
        let shared = Arc::new(Shared::heap(2, cap));
        for dir in 0..2 {
            let _ = attach(&shared, dir, Role::Producer, Identity::local());
            let _ = attach(&shared, dir, Role::Consumer, Identity::local());
        }
        let wait = Wait::local();
        let a = Connection { tx: Sender::new(shared.clone(), 0, wait), rx: Receiver::new(shared.clone(), 1, wait) };
        let b = Connection { tx: Sender::new(shared.clone(), 1, wait), rx: Receiver::new(shared, 0, wait) };
        Ok((a, b))
    }

    /// An in-process simplex pipe: a sending end and a receiving end.
    ///
    /// # Errors
    /// As [`Pipe::new`].
    pub fn simplex(capacity: usize) -> Result<(Sender, Receiver), CreateError> {
        let cap = check_capacity(capacity)?;
        let shared = Arc::new(Shared::heap(1, cap));
        let _ = attach(&shared, 0, Role::Producer, Identity::local());
        let _ = attach(&shared, 0, Role::Consumer, Identity::local());
        let wait = Wait::local();
        Ok((Sender::new(shared.clone(), 0, wait), Receiver::new(shared, 0, wait)))
    }
}
