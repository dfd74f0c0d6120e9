//! `Pipe` and `Connection`: variable-length messages between two ends, like
//! Python's `multiprocessing.Pipe()`, on byte rings ([`crate::ring::bytes`]).
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
use crate::shm::backing::{local_barrier, HeapBlock};
use crate::shm::peer::{Identity, Refused};
use crate::sync::wait::{Limit, Wait};
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
    fn ctl(&self, dir: usize) -> &Control {
        // SAFETY: points into `_backing`, initialised; a Control is all atomics.
        unsafe { self.ctl[dir].as_ref() }
    }

    /// An in-process pipe with `dirs` rings of `cap` bytes.
    fn heap(dirs: usize, cap: u64) -> Self {
        #[cfg(not(loom))]
        {
            let ctl_len = std::mem::size_of::<Control>();
            let data = (2 * ctl_len).next_multiple_of(128);
            let block = HeapBlock::new(data + dirs * cap as usize, 128);
            let base = block.ptr();
            // SAFETY: the block holds two control blocks at 0 and ctl_len
            // (128-aligned), then `dirs` buffers of `cap` bytes, zeroed.
            let (ctl, buffers) = unsafe {
                let ctl = [base.cast::<Control>(), base.add(ctl_len).cast::<Control>()];
                for c in ctl {
                    c.as_ptr().write(Control::new());
                }
                (ctl, (0..dirs).map(|d| Buffer::new(base.add(data + d * cap as usize), cap)).collect())
            };
            Self { ctl, buffers, barrier: local_barrier(), _backing: Backing::Heap(block) }
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

// ---------------------------------------------------------------------------
// Sender
// ---------------------------------------------------------------------------

/// The sending end of one direction of a pipe.
pub struct Sender {
    shared: Arc<Shared>,
    dir: usize,
    writer: Writer,
    wait: Wait,
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").field("capacity", &self.capacity()).finish()
    }
}

impl Sender {
    fn new(shared: Arc<Shared>, dir: usize, wait: Wait) -> Self {
        let writer = Writer::new(shared.ctl(dir), &shared.buffers[dir]);
        Self { shared, dir, writer, wait }
    }

    /// Bytes in this direction's ring.
    pub fn capacity(&self) -> usize {
        self.shared.buffers[self.dir].capacity() as usize
    }

    /// The largest message this direction carries (half the ring, less a
    /// header: any message up to it fits, wherever the ring wrapped).
    pub fn max_message(&self) -> usize {
        bytes::max_message(self.capacity() as u64)
    }

    /// Sets how many spin-loop steps a blocked send spins before sleeping.
    pub fn set_spin(&mut self, spin: u32) {
        self.wait.spin = spin;
    }

    /// The receiving process's id if it died without dropping its end: the
    /// reason behind a `Disconnected`. `None` while it runs, and if it
    /// dropped its end.
    pub fn peer_died(&self) -> Option<u32> {
        self.shared.ctl(self.dir).peers.consumer.died()
    }

    /// Room for a `len`-byte message: the first try inline, the wait (if
    /// `block` and the ring is full) out of line.
    #[inline(always)]
    fn place(&mut self, len: usize, limit: Limit, block: bool) -> Result<Place, Stop> {
        let (ctl, region) = (self.shared.ctl(self.dir), &self.shared.buffers[self.dir]);
        match self.writer.try_place(ctl, region, len) {
            Err(Stop::NotNow) if block => self.wait_place(len, limit),
            other => other,
        }
    }

    #[inline(never)]
    fn wait_place(&mut self, len: usize, limit: Limit) -> Result<Place, Stop> {
        let (shared, dir) = (&self.shared, self.dir);
        let (ctl, region) = (shared.ctl(dir), &shared.buffers[dir]);
        let writer = &mut self.writer;
        let outcome = ctl.not_full.wait_until(shared.barrier, &self.wait, limit.deadline(), |thorough| {
            if thorough {
                // Notices a consumer that died without dropping its end.
                let _ = ctl.peers.consumer.state(true);
            }
            match writer.try_place(ctl, region, len) {
                Err(Stop::NotNow) => None,
                other => Some(other),
            }
        });
        outcome.unwrap_or(Err(Stop::Timeout))
    }

    #[inline(always)]
    fn send_with(&mut self, msg: &[u8], limit: Limit, block: bool) -> Result<(), MessageSendError> {
        let place = self.place(msg.len(), limit, block).map_err(send_err)?;
        let (ctl, region) = (self.shared.ctl(self.dir), &self.shared.buffers[self.dir]);
        #[cfg(not(procring_bug = "pipe_publish_before_payload"))]
        {
            self.writer.write(region, &place, msg);
            self.writer.commit(ctl, region, place, self.shared.barrier);
        }
        #[cfg(procring_bug = "pipe_publish_before_payload")]
        {
            self.writer.commit(ctl, region, place, self.shared.barrier);
            self.writer.write(region, &place, msg);
        }
        Ok(())
    }

    /// Sends `msg` if there is room now.
    ///
    /// # Errors
    /// [`MessageSendError::TooLarge`] (never fits: both sizes),
    /// [`MessageSendError::Full`], [`MessageSendError::Disconnected`].
    #[inline]
    pub fn try_send_bytes(&mut self, msg: &[u8]) -> Result<(), MessageSendError> {
        self.send_with(msg, Limit::Never, false)
    }

    /// Sends `msg`, waiting for room as long as it takes.
    ///
    /// # Errors
    /// [`MessageSendError::TooLarge`], [`MessageSendError::Disconnected`].
    #[inline]
    pub fn send_bytes(&mut self, msg: &[u8]) -> Result<(), MessageSendError> {
        self.send_with(msg, Limit::Never, true)
    }

    /// Sends `msg`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// As [`Sender::send_bytes`], or [`MessageSendError::Timeout`].
    #[inline]
    pub fn send_bytes_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), MessageSendError> {
        self.send_with(msg, Limit::After(timeout), true)
    }

    #[inline(always)]
    fn reserve_with(&mut self, len: usize, limit: Limit, block: bool) -> Result<SendBuf<'_>, MessageSendError> {
        let place = self.place(len, limit, block).map_err(send_err)?;
        Ok(SendBuf { sender: self, place })
    }

    /// Zero-copy send: room for exactly `len` bytes, to fill in place and
    /// [`commit`](SendBuf::commit). Dropped uncommitted, it sends nothing.
    ///
    /// # Errors
    /// As [`Sender::send_bytes`].
    #[inline]
    pub fn reserve(&mut self, len: usize) -> Result<SendBuf<'_>, MessageSendError> {
        self.reserve_with(len, Limit::Never, true)
    }

    /// As [`Sender::reserve`], if there is room now.
    ///
    /// # Errors
    /// As [`Sender::try_send_bytes`].
    #[inline]
    pub fn try_reserve(&mut self, len: usize) -> Result<SendBuf<'_>, MessageSendError> {
        self.reserve_with(len, Limit::Never, false)
    }

    /// As [`Sender::reserve`], waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Sender::send_bytes_timeout`].
    #[inline]
    pub fn reserve_timeout(&mut self, len: usize, timeout: Duration) -> Result<SendBuf<'_>, MessageSendError> {
        self.reserve_with(len, Limit::After(timeout), true)
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let ctl = self.shared.ctl(self.dir);
        ctl.peers.producer.detach();
        // Wake a receiver asleep on an empty ring, so it sees "disconnected".
        ctl.not_empty.notify(self.shared.barrier);
    }
}

/// Room reserved by [`Sender::reserve`]: exactly the requested length, to
/// fill in place; [`commit`](Self::commit) sends it.
pub struct SendBuf<'a> {
    sender: &'a mut Sender,
    place: Place,
}

impl SendBuf<'_> {
    /// Sends the message.
    #[inline]
    pub fn commit(self) {
        let s = self.sender;
        s.writer.commit(s.shared.ctl(s.dir), &s.shared.buffers[s.dir], self.place, s.shared.barrier);
    }
}

#[cfg(not(loom))]
impl Deref for SendBuf<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        let region = &self.sender.shared.buffers[self.sender.dir];
        // SAFETY: the placed record is the sender's until committed, and this
        // guard borrows the sender mutably, so nothing else touches it.
        unsafe { region.slice(self.place.payload, self.place.len) }
    }
}

#[cfg(not(loom))]
impl DerefMut for SendBuf<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        let region = &self.sender.shared.buffers[self.sender.dir];
        // SAFETY: as in `deref`; `&mut self` makes this access unique.
        unsafe { region.slice_mut(self.place.payload, self.place.len) }
    }
}

impl fmt::Debug for SendBuf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendBuf").field("len", &self.place.len).finish()
    }
}

// ---------------------------------------------------------------------------
// Receiver
// ---------------------------------------------------------------------------

/// The receiving end of one direction of a pipe.
pub struct Receiver {
    shared: Arc<Shared>,
    dir: usize,
    reader: Reader,
    wait: Wait,
}

impl fmt::Debug for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").field("capacity", &self.shared.buffers[self.dir].capacity()).finish()
    }
}

impl Receiver {
    fn new(shared: Arc<Shared>, dir: usize, wait: Wait) -> Self {
        let reader = Reader::new(shared.ctl(dir));
        Self { shared, dir, reader, wait }
    }

    /// Sets how many spin-loop steps a blocked receive spins before sleeping.
    pub fn set_spin(&mut self, spin: u32) {
        self.wait.spin = spin;
    }

    /// The sending process's id if it died without dropping its end: the
    /// reason behind a `Disconnected`. `None` while it runs, and if it
    /// dropped its end.
    pub fn peer_died(&self) -> Option<u32> {
        self.shared.ctl(self.dir).peers.producer.died()
    }

    /// The next message: the first look inline, the wait (if `block` and
    /// the ring is empty) out of line.
    #[inline(always)]
    fn find(&mut self, limit: Limit, block: bool) -> Result<Found, Stop> {
        let (ctl, region) = (self.shared.ctl(self.dir), &self.shared.buffers[self.dir]);
        match self.reader.try_find(ctl, region) {
            Err(Stop::NotNow) if block => self.wait_find(limit),
            other => other,
        }
    }

    #[inline(never)]
    fn wait_find(&mut self, limit: Limit) -> Result<Found, Stop> {
        let (shared, dir) = (&self.shared, self.dir);
        let (ctl, region) = (shared.ctl(dir), &shared.buffers[dir]);
        let reader = &mut self.reader;
        let outcome = ctl.not_empty.wait_until(shared.barrier, &self.wait, limit.deadline(), |thorough| {
            if thorough {
                // Notices a producer that died without dropping its end.
                let _ = ctl.peers.producer.state(true);
            }
            match reader.try_find(ctl, region) {
                Err(Stop::NotNow) => None,
                other => Some(other),
            }
        });
        outcome.unwrap_or(Err(Stop::Timeout))
    }

    #[inline(always)]
    fn release(&mut self, found: Found) {
        self.reader.release(self.shared.ctl(self.dir), found, self.shared.barrier);
    }

    fn recv_with(&mut self, limit: Limit, block: bool) -> Result<Vec<u8>, MessageRecvError> {
        let found = self.find(limit, block).map_err(recv_err)?;
        let mut out = vec![0u8; found.len];
        self.reader.read(&self.shared.buffers[self.dir], &found, &mut out);
        self.release(found);
        Ok(out)
    }

    /// Receives the next message if one is ready now.
    ///
    /// # Errors
    /// [`MessageRecvError::Empty`], [`MessageRecvError::Disconnected`]
    /// (drained, sender gone), [`MessageRecvError::Corrupt`].
    pub fn try_recv_bytes(&mut self) -> Result<Vec<u8>, MessageRecvError> {
        self.recv_with(Limit::Never, false)
    }

    /// Receives the next message, waiting as long as it takes.
    ///
    /// # Errors
    /// [`MessageRecvError::Disconnected`], [`MessageRecvError::Corrupt`].
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>, MessageRecvError> {
        self.recv_with(Limit::Never, true)
    }

    /// Receives the next message, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Receiver::recv_bytes`], or [`MessageRecvError::Timeout`].
    pub fn recv_bytes_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, MessageRecvError> {
        self.recv_with(Limit::After(timeout), true)
    }

    #[inline(always)]
    fn recv_into_with(&mut self, buf: &mut [u8], limit: Limit, block: bool) -> Result<usize, MessageRecvError> {
        let found = self.find(limit, block).map_err(recv_err)?;
        if found.len > buf.len() {
            // Left unread: the caller may come back with a larger buffer.
            return Err(MessageRecvError::BufferTooSmall { needed: found.len });
        }
        self.reader.read(&self.shared.buffers[self.dir], &found, buf);
        let len = found.len;
        self.release(found);
        Ok(len)
    }

    /// Receives the next message into `buf`, waiting as long as it takes;
    /// returns its length.
    ///
    /// # Errors
    /// [`MessageRecvError::BufferTooSmall`] with the length needed (the
    /// message stays unread), or as [`Receiver::recv_bytes`].
    #[inline]
    pub fn recv_bytes_into(&mut self, buf: &mut [u8]) -> Result<usize, MessageRecvError> {
        self.recv_into_with(buf, Limit::Never, true)
    }

    /// As [`Receiver::recv_bytes_into`], if a message is ready now.
    ///
    /// # Errors
    /// As [`Receiver::recv_bytes_into`], or [`MessageRecvError::Empty`].
    #[inline]
    pub fn try_recv_bytes_into(&mut self, buf: &mut [u8]) -> Result<usize, MessageRecvError> {
        self.recv_into_with(buf, Limit::Never, false)
    }

    /// As [`Receiver::recv_bytes_into`], waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Receiver::recv_bytes_into`], or [`MessageRecvError::Timeout`].
    #[inline]
    pub fn recv_bytes_into_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, MessageRecvError> {
        self.recv_into_with(buf, Limit::After(timeout), true)
    }

    /// Whether a receive would not block now or within `timeout`: a message
    /// is waiting, or the sender is gone (Python's `Connection.poll`).
    pub fn poll(&mut self, timeout: Duration) -> bool {
        !matches!(self.find(Limit::After(timeout), !timeout.is_zero()), Err(Stop::NotNow | Stop::Timeout))
    }

    #[inline(always)]
    fn read_with(&mut self, limit: Limit, block: bool) -> Result<RecvBuf<'_>, MessageRecvError> {
        let found = self.find(limit, block).map_err(recv_err)?;
        Ok(RecvBuf { receiver: self, found })
    }

    /// Zero-copy receive: the next message, read in place; its space goes
    /// back to the sender when the guard drops.
    ///
    /// # Errors
    /// As [`Receiver::recv_bytes`].
    #[inline]
    pub fn read(&mut self) -> Result<RecvBuf<'_>, MessageRecvError> {
        self.read_with(Limit::Never, true)
    }

    /// As [`Receiver::read`], if a message is ready now.
    ///
    /// # Errors
    /// As [`Receiver::try_recv_bytes`].
    #[inline]
    pub fn try_read(&mut self) -> Result<RecvBuf<'_>, MessageRecvError> {
        self.read_with(Limit::Never, false)
    }

    /// As [`Receiver::read`], waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Receiver::recv_bytes_timeout`].
    #[inline]
    pub fn read_timeout(&mut self, timeout: Duration) -> Result<RecvBuf<'_>, MessageRecvError> {
        self.read_with(Limit::After(timeout), true)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let ctl = self.shared.ctl(self.dir);
        ctl.peers.consumer.detach();
        // Wake a sender asleep on a full ring, so it sees "disconnected".
        ctl.not_full.notify(self.shared.barrier);
    }
}

/// A message read in place by [`Receiver::read`]; released when dropped.
pub struct RecvBuf<'a> {
    receiver: &'a mut Receiver,
    found: Found,
}

impl RecvBuf<'_> {
    /// Copies the message into `dst` (which must be at least as long).
    #[inline]
    pub fn copy_to(&self, dst: &mut [u8]) {
        self.receiver.reader.read(&self.receiver.shared.buffers[self.receiver.dir], &self.found, dst);
    }
}

#[cfg(not(loom))]
impl Deref for RecvBuf<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        let region = &self.receiver.shared.buffers[self.receiver.dir];
        // SAFETY: a published record not yet released: the sender does not
        // write it until this guard drops.
        unsafe { region.slice(self.found.payload, self.found.len) }
    }
}

impl Drop for RecvBuf<'_> {
    #[inline]
    fn drop(&mut self) {
        self.receiver.release(self.found);
    }
}

impl fmt::Debug for RecvBuf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvBuf").field("len", &self.found.len).finish()
    }
}

// ---------------------------------------------------------------------------
// Serialized values
// ---------------------------------------------------------------------------

#[cfg(all(feature = "serde", not(loom)))]
mod objects {
    use super::*;
    use serde::de::DeserializeOwned;
    use serde::Serialize;

    fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, MessageSendError> {
        postcard::to_allocvec(value).map_err(|e| MessageSendError::Encode(e.to_string()))
    }

    fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, MessageRecvError> {
        postcard::from_bytes(bytes).map_err(|e| MessageRecvError::Decode(e.to_string()))
    }

    impl Sender {
        /// Sends any serializable value (postcard-encoded), waiting for room.
        ///
        /// # Errors
        /// As [`Sender::send_bytes`], or [`MessageSendError::Encode`].
        pub fn send<T: Serialize>(&mut self, value: &T) -> Result<(), MessageSendError> {
            self.send_bytes(&encode(value)?)
        }

        /// As [`Sender::send`], if there is room now.
        ///
        /// # Errors
        /// As [`Sender::try_send_bytes`], or [`MessageSendError::Encode`].
        pub fn try_send<T: Serialize>(&mut self, value: &T) -> Result<(), MessageSendError> {
            self.try_send_bytes(&encode(value)?)
        }

        /// As [`Sender::send`], waiting at most `timeout`.
        ///
        /// # Errors
        /// As [`Sender::send_bytes_timeout`], or [`MessageSendError::Encode`].
        pub fn send_timeout<T: Serialize>(&mut self, value: &T, timeout: Duration) -> Result<(), MessageSendError> {
            self.send_bytes_timeout(&encode(value)?, timeout)
        }
    }

    impl Receiver {
        /// Receives a value sent with [`Sender::send`], waiting for it.
        ///
        /// # Errors
        /// As [`Receiver::recv_bytes`], or [`MessageRecvError::Decode`] (the
        /// message is consumed).
        pub fn recv<T: DeserializeOwned>(&mut self) -> Result<T, MessageRecvError> {
            decode(&self.read()?)
        }

        /// As [`Receiver::recv`], if a message is ready now.
        ///
        /// # Errors
        /// As [`Receiver::try_recv_bytes`], or [`MessageRecvError::Decode`].
        pub fn try_recv<T: DeserializeOwned>(&mut self) -> Result<T, MessageRecvError> {
            decode(&self.try_read()?)
        }

        /// As [`Receiver::recv`], waiting at most `timeout`.
        ///
        /// # Errors
        /// As [`Receiver::recv_bytes_timeout`], or [`MessageRecvError::Decode`].
        pub fn recv_timeout<T: DeserializeOwned>(&mut self, timeout: Duration) -> Result<T, MessageRecvError> {
            decode(&self.read_timeout(timeout)?)
        }

        /// A blocking iterator over received values: each is a `Result`, since
        /// a message may not decode as `T`; it ends once the sender is gone
        /// and the pipe is drained.
        ///
        /// ```
        /// let (mut a, mut b) = procring::Pipe::new(4096)?;
        /// a.send(&"one")?;
        /// a.send(&"two")?;
        /// drop(a);
        /// let got: Result<Vec<String>, _> = b.receiver().iter().collect();
        /// assert_eq!(got?, ["one", "two"]);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn iter<T: DeserializeOwned>(&mut self) -> Values<'_, T> {
            Values { rx: self, wait: true, _t: std::marker::PhantomData }
        }

        /// An iterator over the values ready now; it ends at the first
        /// receive that would wait (or at disconnection).
        pub fn try_iter<T: DeserializeOwned>(&mut self) -> Values<'_, T> {
            Values { rx: self, wait: false, _t: std::marker::PhantomData }
        }

        /// As [`Receiver::iter`], owning the receiver. (Not `IntoIterator`:
        /// the type received is chosen per call, not by the receiver.)
        pub fn into_values<T: DeserializeOwned>(self) -> IntoValues<T> {
            IntoValues { rx: self, _t: std::marker::PhantomData }
        }
    }

    /// A blocking iterator over the values of a pipe [`Receiver`] it owns
    /// ([`Receiver::into_values`]).
    #[derive(Debug)]
    pub struct IntoValues<T> {
        rx: Receiver,
        _t: std::marker::PhantomData<fn() -> T>,
    }

    impl<T: DeserializeOwned> Iterator for IntoValues<T> {
        type Item = Result<T, MessageRecvError>;
        fn next(&mut self) -> Option<Self::Item> {
            self.rx.iter().next()
        }
    }

    /// An iterator over a pipe [`Receiver`]'s values
    /// ([`Receiver::iter`], [`Receiver::try_iter`]).
    #[derive(Debug)]
    pub struct Values<'a, T> {
        rx: &'a mut Receiver,
        wait: bool,
        _t: std::marker::PhantomData<fn() -> T>,
    }

    impl<T: DeserializeOwned> Iterator for Values<'_, T> {
        type Item = Result<T, MessageRecvError>;
        fn next(&mut self) -> Option<Self::Item> {
            let got = if self.wait { self.rx.recv() } else { self.rx.try_recv() };
            match got {
                Err(MessageRecvError::Disconnected | MessageRecvError::Empty) => None,
                other => Some(other),
            }
        }
    }

    impl Connection {
        /// Sends a serializable value to the other end (see [`Sender::send`]).
        ///
        /// # Errors
        /// As [`Sender::send`].
        pub fn send<T: Serialize>(&mut self, value: &T) -> Result<(), MessageSendError> {
            self.tx.send(value)
        }

        /// Receives a value from the other end (see [`Receiver::recv`]).
        ///
        /// # Errors
        /// As [`Receiver::recv`].
        pub fn recv<T: DeserializeOwned>(&mut self) -> Result<T, MessageRecvError> {
            self.rx.recv()
        }
    }
}

#[cfg(all(feature = "serde", not(loom)))]
pub use objects::{IntoValues, Values};

// ---------------------------------------------------------------------------
// Connection and construction
// ---------------------------------------------------------------------------

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

#[cfg(not(loom))]
mod named {
    use super::*;
    use crate::error::OpenError;
    use crate::shm::header::{Expected, Kind, Layout, TypeInfo};
    use crate::shm::object::Object;
    use crate::shm::Options;

    const CTL: usize = std::mem::size_of::<Control>();

    /// A pipe's segment: a control block per direction, then a byte ring of
    /// `capacity` bytes per direction (the "element size" is the number of
    /// directions).
    pub(crate) const LAYOUT: Layout = Layout {
        kind: Kind::Pipe,
        ctl_len: 2 * CTL,
        data_len: |dirs, _, capacity| usize::try_from(capacity).ok()?.checked_mul(dirs as usize),
    };

    fn expected(dirs: u32, capacity: u64) -> Expected {
        Expected::new(LAYOUT, TypeInfo::pipe(dirs), capacity)
    }

    /// The rings' parts in `object`, and the shared handle that owns it.
    fn shared_in(object: Object, dirs: usize) -> Shared {
        let (ctl0, data, cap) = (object.ctl(), object.data(), object.capacity);
        // SAFETY: the segment holds two control blocks at `ctl` (CTL bytes
        // each; CTL is a multiple of 128) and `dirs` buffers of `cap` bytes at
        // `data`: we laid it out, or validated its header against this layout.
        let (ctl, buffers) = unsafe {
            (
                [ctl0.cast::<Control>(), ctl0.add(CTL).cast::<Control>()],
                (0..dirs).map(|d| Buffer::new(data.add(d * cap as usize), cap)).collect(),
            )
        };
        Shared { ctl, buffers, barrier: object.barrier, _backing: object.into_backing() }
    }

    /// Creates a pipe segment, takes `roles` in it, then lets openers in.
    fn create(
        name: &str,
        capacity: usize,
        dirs: u32,
        roles: &[(usize, Role)],
        opts: &Options,
    ) -> Result<Arc<Shared>, CreateError> {
        let cap = check_capacity(capacity)?;
        let object = Object::create(name, &expected(dirs, cap), opts, role_bits(roles), |ctl| {
            // SAFETY: the fresh, aligned, unshared control blocks.
            unsafe {
                ctl.cast::<Control>().write(Control::new());
                ctl.add(CTL).cast::<Control>().write(Control::new());
            }
        })?;
        let publish = object.publisher();
        let shared = shared_in(object, dirs as usize);
        for &(dir, role) in roles {
            // Fresh slots: the roles cannot be taken.
            let _ = attach(&shared, dir, role, Identity::this_process());
        }
        publish.publish();
        Ok(Arc::new(shared))
    }

    fn open(name: &str, dirs: u32, roles: &[(usize, Role)], opts: &Options) -> Result<Arc<Shared>, OpenError> {
        let object = Object::open(name, &expected(dirs, 0), opts, role_bits(roles))?;
        let seg_name = object.name().to_owned();
        let shared = shared_in(object, dirs as usize);
        for &(dir, role) in roles {
            attach(&shared, dir, role, Identity::this_process())
                .map_err(|r| r.into_open_error(&seg_name, role.name()))?;
        }
        Ok(Arc::new(shared))
    }

    /// The attachment-table role of the pipe roles taken.
    fn role_bits(roles: &[(usize, Role)]) -> u32 {
        roles.iter().fold(0, |r, &(_, role)| r | role.bits())
    }

    // Direction 0 carries creator → opener, direction 1 opener → creator.
    const CREATOR: [(usize, Role); 2] = [(0, Role::Producer), (1, Role::Consumer)];
    const OPENER: [(usize, Role); 2] = [(0, Role::Consumer), (1, Role::Producer)];

    impl Pipe {
        /// Creates a duplex pipe in a new segment named `name`, `capacity`
        /// bytes each way, and returns this end; the other process
        /// [`open`](Pipe::open)s the other end. The name is removed when
        /// this end drops.
        ///
        /// # Errors
        /// [`CreateError`]: a bad name or capacity (a power of two, 64 B to
        /// 4 GiB), a name that exists, no permission, or a system error.
        pub fn create(name: &str, capacity: usize) -> Result<Connection, CreateError> {
            Self::create_with(name, capacity, &Options::new())
        }

        /// As [`Pipe::create`], with [`Options`].
        ///
        /// # Errors
        /// As [`Pipe::create`].
        pub fn create_with(name: &str, capacity: usize, opts: &Options) -> Result<Connection, CreateError> {
            let shared = create(name, capacity, 2, &CREATOR, opts)?;
            let wait = opts.wait();
            Ok(Connection { tx: Sender::new(shared.clone(), 0, wait), rx: Receiver::new(shared, 1, wait) })
        }

        /// Opens the other end of the duplex pipe in segment `name`.
        ///
        /// # Errors
        /// [`OpenError`]: no such segment, not a duplex pipe, a corrupt or
        /// incompatible header, or the end already taken.
        pub fn open(name: &str) -> Result<Connection, OpenError> {
            Self::open_with(name, &Options::new())
        }

        /// As [`Pipe::open`], with [`Options`].
        ///
        /// # Errors
        /// As [`Pipe::open`].
        pub fn open_with(name: &str, opts: &Options) -> Result<Connection, OpenError> {
            let shared = open(name, 2, &OPENER, opts)?;
            let wait = opts.wait();
            Ok(Connection { tx: Sender::new(shared.clone(), 1, wait), rx: Receiver::new(shared, 0, wait) })
        }

        /// Creates a simplex pipe in a new segment and returns its sending end.
        ///
        /// # Errors
        /// As [`Pipe::create`].
        pub fn create_sender(name: &str, capacity: usize, opts: &Options) -> Result<Sender, CreateError> {
            let shared = create(name, capacity, 1, &[(0, Role::Producer)], opts)?;
            Ok(Sender::new(shared, 0, opts.wait()))
        }

        /// Creates a simplex pipe in a new segment and returns its receiving end.
        ///
        /// # Errors
        /// As [`Pipe::create`].
        pub fn create_receiver(name: &str, capacity: usize, opts: &Options) -> Result<Receiver, CreateError> {
            let shared = create(name, capacity, 1, &[(0, Role::Consumer)], opts)?;
            Ok(Receiver::new(shared, 0, opts.wait()))
        }

        /// Opens the sending end of the simplex pipe in segment `name`.
        ///
        /// # Errors
        /// As [`Pipe::open`] (a duplex pipe is not a simplex one).
        pub fn open_sender(name: &str, opts: &Options) -> Result<Sender, OpenError> {
            let shared = open(name, 1, &[(0, Role::Producer)], opts)?;
            Ok(Sender::new(shared, 0, opts.wait()))
        }

        /// Opens the receiving end of the simplex pipe in segment `name`.
        ///
        /// # Errors
        /// As [`Pipe::open`].
        pub fn open_receiver(name: &str, opts: &Options) -> Result<Receiver, OpenError> {
            let shared = open(name, 1, &[(0, Role::Consumer)], opts)?;
            Ok(Receiver::new(shared, 0, opts.wait()))
        }
    }
}
#[cfg(not(loom))]
pub(crate) use named::LAYOUT;
