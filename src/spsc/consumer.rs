//! The receiving end of an SPSC ring, and its iterators.

use std::fmt;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::time::{Duration, Instant};

use bytemuck::Pod;

use crate::error::{RecvError, RecvTimeoutError, TryRecvError};
use crate::ring::pace::Pacer;
use crate::ring::spsc::{available, Ring, TailView};
use crate::shm::peer::PeerState;
use crate::sync::wait::Deadline;
use crate::sync::{prefetch, ConstPtr, Ordering};

/// The receiving end of an SPSC ring. One per ring; not `Clone`.
pub struct Consumer<T> {
    ring: Ring<T>,
    /// Our position: the next slot to read. Mirrors the shared `head`.
    head: u64,
    /// The producer's position as last read; refreshed only when it says empty.
    tail_view: TailView,
}

// SAFETY: as for `Producer`: the consumer owns its role in the ring.
unsafe impl<T: Send> Send for Consumer<T> {}

impl<T: Pod> Consumer<T> {
    pub(super) fn new(ring: Ring<T>) -> Self {
        // Acquire: we may be re-attaching; continue after what was consumed.
        let head = ring.ctl().head.load(Ordering::Acquire);
        Self { ring, head, tail_view: TailView { tail: head, pacer: Pacer::default(), empty: false } }
    }

    observers!(producer, "producer", "Messages it sent before going can still be received.", "receive");

    /// `Some(Ok(n))` with messages ready, `Some(Err)` if none will come,
    /// `None` to keep waiting.
    fn poll(
        ring: &Ring<T>,
        head: u64,
        tail_view: &mut TailView,
        want: u64,
        check_peers: bool,
    ) -> Option<Result<u64, RecvError>> {
        match available(ring, head, tail_view, want) {
            Ok(0) => prefetch(ring.slot_end(head)),
            other => return Some(other),
        }
        let ctl = ring.ctl();
        if ctl.peers.producer.state(check_peers) != PeerState::Gone {
            return None;
        }
        // The producer stored its last `tail` before `GONE` (Release/Acquire
        // in `peer`): look once more, so nothing it sent is lost.
        match available(ring, head, tail_view, 1) {
            Ok(0) => Some(Err(RecvError::Disconnected)),
            other => Some(other),
        }
    }

    /// Waits until at least one message is ready, returning how many (the
    /// shared `tail` is reread if fewer than `want` are known to be ready).
    /// The clock is read only if the first look finds nothing.
    #[inline(always)]
    fn wait_ready(&mut self, want: u64, deadline: Deadline) -> Result<u64, RecvTimeoutError> {
        match Self::poll(&self.ring, self.head, &mut self.tail_view, want, false) {
            Some(r) => r.map_err(Into::into),
            None => self.wait_ready_slow(deadline),
        }
    }

    fn wait_ready_slow(&mut self, deadline: Deadline) -> Result<u64, RecvTimeoutError> {
        let Self { ring, head, tail_view } = self;
        let head = *head;
        let outcome = ring.ctl().not_empty.wait_until(ring.barrier, &ring.wait, deadline, |check_peers| {
            Self::poll(ring, head, tail_view, 1, check_peers)
        });
        match outcome {
            Some(r) => r.map_err(Into::into),
            None => Err(RecvTimeoutError::Timeout),
        }
    }

    #[inline(always)]
    fn read(&self, pos: u64) -> T {
        let slot = self.ring.slot(pos).value.get();
        // SAFETY: `pos` is in `head..published`, a published slot the consumer
        // owns (module invariant): the producer does not touch it now.
        unsafe { *slot.deref() }
    }

    #[inline(always)]
    fn release(&mut self, new_head: u64) {
        self.head = new_head;
        // Release: pairs with the producer's Acquire load of `head`; our reads
        // of the freed slots happen before it overwrites them.
        self.ring.ctl().head.store(new_head, Ordering::Release);
        self.ring.ctl().not_full.notify(self.ring.barrier);
    }

    /// Receives a message if one is ready now.
    ///
    /// # Errors
    /// [`TryRecvError::Empty`] if none is, [`TryRecvError::Disconnected`] if
    /// none will ever be (drained, producer gone), [`TryRecvError::Corrupt`]
    /// if the shared positions are impossible.
    #[inline]
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        match Self::poll(&self.ring, self.head, &mut self.tail_view, 1, false) {
            None => Err(TryRecvError::Empty),
            Some(Err(e)) => Err(e.into()),
            Some(Ok(_)) => {
                let v = self.read(self.head);
                self.release(self.head + 1);
                Ok(v)
            }
        }
    }

    /// Receives a message, waiting as long as it takes.
    ///
    /// # Errors
    /// [`RecvError::Disconnected`] once the ring is drained and the producer
    /// is gone; [`RecvError::Corrupt`] if the shared positions are impossible.
    #[inline]
    pub fn recv(&mut self) -> Result<T, RecvError> {
        self.recv_ref().map(|m| *m)
    }

    /// Receives a message, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`] if nothing came; otherwise as
    /// [`Consumer::recv`].
    #[inline]
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.ref_within(Deadline::After(timeout)).map(|m| *m)
    }

    /// Receives a message, waiting until `deadline` (`None`: no deadline).
    ///
    /// # Errors
    /// As [`Consumer::recv_timeout`].
    #[inline]
    pub fn recv_deadline(&mut self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        self.ref_within(Deadline::at(deadline)).map(|m| *m)
    }

    /// Every blocking receive: one look, and a wait only if it found
    /// nothing; then a guard on the message in place. The copying receives
    /// copy out of the guard straight into the `Result` they return.
    /// (Copying out in here, into a `Result` with another error type that
    /// the caller then converted, cost about 12 ns a round trip between two
    /// processes.)
    #[inline(always)]
    fn ref_within(&mut self, deadline: Deadline) -> Result<RecvRef<'_, T>, RecvTimeoutError> {
        self.wait_ready(1, deadline)?;
        Ok(self.ref_guard())
    }

    #[inline(always)]
    fn ref_guard(&mut self) -> RecvRef<'_, T> {
        let ptr = ManuallyDrop::new(self.ring.slot(self.head).value.get());
        RecvRef { consumer: self, ptr }
    }

    /// Zero-copy receive: the next message, read in place. Its slot goes back
    /// to the producer when the guard drops.
    ///
    /// # Errors
    /// As [`Consumer::try_recv`].
    pub fn try_recv_ref(&mut self) -> Result<RecvRef<'_, T>, TryRecvError> {
        match Self::poll(&self.ring, self.head, &mut self.tail_view, 1, false) {
            None => Err(TryRecvError::Empty),
            Some(Err(e)) => Err(e.into()),
            Some(Ok(_)) => Ok(self.ref_guard()),
        }
    }

    /// Zero-copy receive, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`Consumer::recv`].
    #[inline]
    pub fn recv_ref(&mut self) -> Result<RecvRef<'_, T>, RecvError> {
        self.ref_within(Deadline::Never).map_err(|e| match e {
            RecvTimeoutError::Corrupt(w) => RecvError::Corrupt(w),
            _ => RecvError::Disconnected,
        })
    }

    /// Zero-copy receive, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Consumer::recv_timeout`].
    pub fn recv_ref_timeout(&mut self, timeout: Duration) -> Result<RecvRef<'_, T>, RecvTimeoutError> {
        self.ref_within(Deadline::After(timeout))
    }

    fn read_batch(&mut self, ready: u64, out: &mut [T]) -> usize {
        let n = (ready as usize).min(out.len());
        for (i, o) in out[..n].iter_mut().enumerate() {
            *o = self.read(self.head + i as u64);
        }
        self.release(self.head + n as u64);
        n
    }

    /// Receives as many ready messages as fit in `out`, with one release.
    /// Returns how many (at least one, unless `out` is empty).
    ///
    /// # Errors
    /// As [`Consumer::try_recv`].
    pub fn try_recv_batch(&mut self, out: &mut [T]) -> Result<usize, TryRecvError> {
        if out.is_empty() {
            return Ok(0);
        }
        match Self::poll(&self.ring, self.head, &mut self.tail_view, out.len() as u64, false) {
            None => Err(TryRecvError::Empty),
            Some(Err(e)) => Err(e.into()),
            Some(Ok(ready)) => Ok(self.read_batch(ready, out)),
        }
    }

    /// Waits for at least one message, then receives as many ready messages
    /// as fit in `out`, with one release.
    ///
    /// # Errors
    /// As [`Consumer::recv`].
    pub fn recv_batch(&mut self, out: &mut [T]) -> Result<usize, RecvError> {
        if out.is_empty() {
            return Ok(0);
        }
        match self.wait_ready(out.len() as u64, Deadline::Never) {
            Ok(ready) => Ok(self.read_batch(ready, out)),
            Err(RecvTimeoutError::Corrupt(w)) => Err(RecvError::Corrupt(w)),
            Err(_) => Err(RecvError::Disconnected),
        }
    }

    /// As [`Consumer::recv_batch`], waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`Consumer::recv_timeout`].
    pub fn recv_batch_timeout(&mut self, out: &mut [T], timeout: Duration) -> Result<usize, RecvTimeoutError> {
        if out.is_empty() {
            return Ok(0);
        }
        let ready = self.wait_ready(out.len() as u64, Deadline::After(timeout))?;
        Ok(self.read_batch(ready, out))
    }
}

impl<T: Pod> Consumer<T> {
    /// A blocking iterator over received messages; it ends once the
    /// producer is gone and the ring is drained.
    ///
    /// ```
    /// let (mut tx, mut rx) = procring::spsc::channel::<u32>(4)?;
    /// std::thread::spawn(move || (0..10).for_each(|i| tx.send(i).unwrap()));
    /// assert_eq!(rx.iter().sum::<u32>(), 45);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter(&mut self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// An iterator over the messages ready now; it ends at the first
    /// receive that would wait.
    pub fn try_iter(&mut self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }
}

/// A blocking iterator over a [`Consumer`]'s messages ([`Consumer::iter`]).
#[derive(Debug)]
pub struct Iter<'a, T> {
    rx: &'a mut Consumer<T>,
}

impl<T: Pod> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

/// An iterator over the messages ready now ([`Consumer::try_iter`]).
#[derive(Debug)]
pub struct TryIter<'a, T> {
    rx: &'a mut Consumer<T>,
}

impl<T: Pod> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

/// A blocking iterator that owns its [`Consumer`].
#[derive(Debug)]
pub struct IntoIter<T> {
    rx: Consumer<T>,
}

impl<T: Pod> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<'a, T: Pod> IntoIterator for &'a mut Consumer<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T: Pod> IntoIterator for Consumer<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}

impl<T> Drop for Consumer<T> {
    fn drop(&mut self) {
        let ctl = self.ring.ctl();
        ctl.peers.consumer.detach();
        // Wake a producer asleep on a full ring, so it sees "disconnected".
        ctl.not_full.notify(self.ring.barrier);
    }
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer").field("capacity", &self.ring.capacity()).field("head", &self.head).finish()
    }
}

/// A message read in place by [`Consumer::recv_ref`]; its slot is released
/// to the producer when this guard drops.
pub struct RecvRef<'a, T: Pod> {
    consumer: &'a mut Consumer<T>,
    ptr: ManuallyDrop<ConstPtr<T>>,
}

impl<T: Pod> Deref for RecvRef<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the slot is published and not yet released (it is in
        // `head..tail`), so the producer does not write it while we read.
        unsafe { ConstPtr::deref(&self.ptr) }
    }
}

impl<T: Pod> Drop for RecvRef<'_, T> {
    fn drop(&mut self) {
        // SAFETY: `ptr` is not used again; our access to the slot ends here,
        // before the release hands it back to the producer.
        unsafe { ManuallyDrop::drop(&mut self.ptr) };
        self.consumer.release(self.consumer.head + 1);
    }
}

impl<T: Pod> fmt::Debug for RecvRef<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvRef").field("pos", &self.consumer.head).finish()
    }
}
