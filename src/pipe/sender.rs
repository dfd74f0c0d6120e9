//! The sending end of one direction of a pipe.

use super::*;

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
    pub(super) fn new(shared: Arc<Shared>, dir: usize, wait: Wait) -> Self {
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
    fn place(&mut self, len: usize, deadline: Deadline, block: bool) -> Result<Place, Stop> {
        let (ctl, region) = (self.shared.ctl(self.dir), &self.shared.buffers[self.dir]);
        match self.writer.try_place(ctl, region, len) {
            Err(Stop::NotNow) if block => self.wait_place(len, deadline),
            other => other,
        }
    }

    #[inline(never)]
    fn wait_place(&mut self, len: usize, deadline: Deadline) -> Result<Place, Stop> {
        let (shared, dir) = (&self.shared, self.dir);
        let (ctl, region) = (shared.ctl(dir), &shared.buffers[dir]);
        let writer = &mut self.writer;
        let outcome = ctl.not_full.wait_until(shared.barrier, &self.wait, deadline, |check_peers| {
            if check_peers {
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
    fn send_with(&mut self, msg: &[u8], deadline: Deadline, block: bool) -> Result<(), MessageSendError> {
        let place = self.place(msg.len(), deadline, block).map_err(send_err)?;
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
        self.send_with(msg, Deadline::Never, false)
    }

    /// Sends `msg`, waiting for room as long as it takes.
    ///
    /// # Errors
    /// [`MessageSendError::TooLarge`], [`MessageSendError::Disconnected`].
    #[inline]
    pub fn send_bytes(&mut self, msg: &[u8]) -> Result<(), MessageSendError> {
        self.send_with(msg, Deadline::Never, true)
    }

    /// Sends `msg`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// As [`Sender::send_bytes`], or [`MessageSendError::Timeout`].
    #[inline]
    pub fn send_bytes_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), MessageSendError> {
        self.send_with(msg, Deadline::After(timeout), true)
    }

    #[inline(always)]
    fn reserve_with(&mut self, len: usize, deadline: Deadline, block: bool) -> Result<SendBuf<'_>, MessageSendError> {
        let place = self.place(len, deadline, block).map_err(send_err)?;
        Ok(SendBuf { sender: self, place })
    }

    /// Zero-copy send: room for exactly `len` bytes, to fill in place and
    /// [`commit`](SendBuf::commit). Dropped uncommitted, it sends nothing.
    ///
    /// # Errors
    /// As [`Sender::send_bytes`].
    #[inline]
    pub fn reserve(&mut self, len: usize) -> Result<SendBuf<'_>, MessageSendError> {
        self.reserve_with(len, Deadline::Never, true)
    }

    /// As [`Sender::reserve`], if there is room now.
    ///
    /// # Errors
    /// As [`Sender::try_send_bytes`].
    #[inline]
    pub fn try_reserve(&mut self, len: usize) -> Result<SendBuf<'_>, MessageSendError> {
        self.reserve_with(len, Deadline::Never, false)
    }

    /// As [`Sender::reserve`], waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Sender::send_bytes_timeout`].
    #[inline]
    pub fn reserve_timeout(&mut self, len: usize, timeout: Duration) -> Result<SendBuf<'_>, MessageSendError> {
        self.reserve_with(len, Deadline::After(timeout), true)
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
