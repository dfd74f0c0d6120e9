//! The receiving end of one direction of a pipe.

use super::*;

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
    pub(super) fn new(shared: Arc<Shared>, dir: usize, wait: Wait) -> Self {
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
    fn find(&mut self, deadline: Deadline, block: bool) -> Result<Found, Stop> {
        let (ctl, region) = (self.shared.ctl(self.dir), &self.shared.buffers[self.dir]);
        match self.reader.try_find(ctl, region) {
            Err(Stop::NotNow) if block => self.wait_find(deadline),
            other => other,
        }
    }

    #[inline(never)]
    fn wait_find(&mut self, deadline: Deadline) -> Result<Found, Stop> {
        let (shared, dir) = (&self.shared, self.dir);
        let (ctl, region) = (shared.ctl(dir), &shared.buffers[dir]);
        let reader = &mut self.reader;
        let outcome = ctl.not_empty.wait_until(shared.barrier, &self.wait, deadline, |check_peers| {
            if check_peers {
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

    fn recv_with(&mut self, deadline: Deadline, block: bool) -> Result<Vec<u8>, MessageRecvError> {
        let found = self.find(deadline, block).map_err(recv_err)?;
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
        self.recv_with(Deadline::Never, false)
    }

    /// Receives the next message, waiting as long as it takes.
    ///
    /// # Errors
    /// [`MessageRecvError::Disconnected`], [`MessageRecvError::Corrupt`].
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>, MessageRecvError> {
        self.recv_with(Deadline::Never, true)
    }

    /// Receives the next message, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Receiver::recv_bytes`], or [`MessageRecvError::Timeout`].
    pub fn recv_bytes_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, MessageRecvError> {
        self.recv_with(Deadline::After(timeout), true)
    }

    #[inline(always)]
    fn recv_into_with(&mut self, buf: &mut [u8], deadline: Deadline, block: bool) -> Result<usize, MessageRecvError> {
        let found = self.find(deadline, block).map_err(recv_err)?;
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
        self.recv_into_with(buf, Deadline::Never, true)
    }

    /// As [`Receiver::recv_bytes_into`], if a message is ready now.
    ///
    /// # Errors
    /// As [`Receiver::recv_bytes_into`], or [`MessageRecvError::Empty`].
    #[inline]
    pub fn try_recv_bytes_into(&mut self, buf: &mut [u8]) -> Result<usize, MessageRecvError> {
        self.recv_into_with(buf, Deadline::Never, false)
    }

    /// As [`Receiver::recv_bytes_into`], waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Receiver::recv_bytes_into`], or [`MessageRecvError::Timeout`].
    #[inline]
    pub fn recv_bytes_into_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize, MessageRecvError> {
        self.recv_into_with(buf, Deadline::After(timeout), true)
    }

    /// Whether a receive would not block now or within `timeout`: a message
    /// is waiting, or the sender is gone (Python's `Connection.poll`).
    pub fn poll(&mut self, timeout: Duration) -> bool {
        !matches!(self.find(Deadline::After(timeout), !timeout.is_zero()), Err(Stop::NotNow | Stop::Timeout))
    }

    #[inline(always)]
    fn read_with(&mut self, deadline: Deadline, block: bool) -> Result<RecvBuf<'_>, MessageRecvError> {
        let found = self.find(deadline, block).map_err(recv_err)?;
        Ok(RecvBuf { receiver: self, found })
    }

    /// Zero-copy receive: the next message, read in place; its space goes
    /// back to the sender when the guard drops.
    ///
    /// # Errors
    /// As [`Receiver::recv_bytes`].
    #[inline]
    pub fn read(&mut self) -> Result<RecvBuf<'_>, MessageRecvError> {
        self.read_with(Deadline::Never, true)
    }

    /// As [`Receiver::read`], if a message is ready now.
    ///
    /// # Errors
    /// As [`Receiver::try_recv_bytes`].
    #[inline]
    pub fn try_read(&mut self) -> Result<RecvBuf<'_>, MessageRecvError> {
        self.read_with(Deadline::Never, false)
    }

    /// As [`Receiver::read`], waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Receiver::recv_bytes_timeout`].
    #[inline]
    pub fn read_timeout(&mut self, timeout: Duration) -> Result<RecvBuf<'_>, MessageRecvError> {
        self.read_with(Deadline::After(timeout), true)
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
