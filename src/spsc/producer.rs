//! The sending end of an SPSC ring.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use bytemuck::Pod;

use crate::error::{SendError, SendTimeoutError, TrySendError};
#[cfg(not(loom))]
use crate::ring::pace::stream_pause;
use crate::ring::pace::{Pacer, LOOK_EVERY};
use crate::ring::spsc::{room, HeadView, Ring};
use crate::shm::peer::PeerState;
use crate::sync::wait::Deadline;
use crate::sync::{MutPtr, Ordering};

/// Why a wait stopped without success.
enum Stop {
    Timeout,
    Disconnected,
}

/// The sending end of an SPSC ring. One per ring; not `Clone`.
pub struct Producer<T> {
    ring: Ring<T>,
    /// Our position: the next slot to write. Mirrors the shared `tail`.
    tail: u64,
    /// The consumer's position as last read; refreshed only when it says full.
    head_view: HeadView,
}

// SAFETY: the producer owns its role in the ring (the peer slot is taken, so
// no other producer exists); moving it to another thread moves that role.
// `T: Send` because values move through it.
unsafe impl<T: Send> Send for Producer<T> {}

impl<T: Pod> Producer<T> {
    pub(super) fn new(ring: Ring<T>) -> Self {
        // Acquire: we may be re-attaching; continue after what was published.
        let mut tail = ring.ctl().tail.load(Ordering::Acquire);
        // A producer that died between stamping slots and storing `tail`
        // published messages the consumer may have taken already: continue
        // after the last stamped slot, and make `tail` count it.
        let start = tail;
        while tail.wrapping_sub(start) < ring.capacity() && ring.stamped(tail) {
            tail += 1;
        }
        if tail != start {
            // Release: as in `publish`.
            ring.ctl().tail.store(tail, Ordering::Release);
        }
        let head = ring.ctl().head.load(Ordering::Acquire);
        Self { ring, tail, head_view: HeadView { head, pacer: Pacer::default() } }
    }

    observers!(consumer, "consumer", "A send then fails at once, handing the value back.", "send");

    #[inline(always)]
    fn consumer_gone(&self, check_peers: bool) -> bool {
        self.ring.ctl().peers.consumer.state(check_peers) == PeerState::Gone
    }

    #[inline(always)]
    fn room(&mut self, want: u64) -> u64 {
        room(self.ring.ctl(), self.ring.capacity(), self.tail, &mut self.head_view, want)
    }

    /// Writes and stamps the slot for `pos`: from here the consumer may take
    /// it, though `tail` does not count it until [`Self::publish`].
    #[inline(always)]
    fn write(&self, pos: u64, value: T) {
        {
            let slot = self.ring.slot(pos).value.get_mut();
            // SAFETY: `pos` is in `tail..head + capacity`, a slot the producer
            // owns (module invariant): nobody else reads or writes it now.
            unsafe { *slot.deref() = value };
        }
        self.stamp(pos);
    }

    /// Hands the written slot for `pos` to the consumer.
    #[inline(always)]
    fn stamp(&self, pos: u64) {
        // Release: pairs with the consumer's Acquire load of the stamp; the
        // message written before is visible to it.
        self.ring.slot(pos).stamp.store(pos.wrapping_add(1), Ordering::Release);
    }

    #[inline(always)]
    fn publish(&mut self, new_tail: u64) {
        self.tail = new_tail;
        // Release: pairs with the consumer's Acquire load of `tail`; the slot
        // writes before this store are visible to it. The eventcount's
        // barrier in `notify` comes after the stamps too, so a consumer about
        // to sleep sees either them or our wake-up.
        self.ring.ctl().tail.store(new_tail, Ordering::Release);
        self.ring.ctl().not_empty.notify(self.ring.barrier);
    }

    /// Waits until there is room (`Ok`), the consumer is gone, or `deadline`.
    #[cfg_attr(loom, allow(clippy::modulo_one))] // LOOK_EVERY is 1 under loom
    fn wait_room(&mut self, deadline: Deadline) -> Result<u64, Stop> {
        let Self { ring, tail, head_view } = self;
        let (ctl, cap, tail) = (ring.ctl(), ring.capacity(), *tail);
        // Full. Every look rereads `head`, which the consumer stores on
        // every message: a producer that looked again at once would cost a
        // saturated consumer a line transfer per look. Let it free a run of
        // slots first, then, while spinning, look only every LOOK_EVERY
        // steps (once it sleeps, every wake-up looks).
        #[cfg(not(loom))]
        stream_pause();
        let (mut spins, spin) = (0u32, ring.wait.spin);
        let outcome = ctl.not_full.wait_until(ring.barrier, &ring.wait, deadline, |check_peers| {
            spins = spins.saturating_add(1);
            if !check_peers && spins <= spin && spins % LOOK_EVERY != 0 {
                return None;
            }
            if ctl.peers.consumer.state(check_peers) == PeerState::Gone {
                return Some(Err(Stop::Disconnected));
            }
            match room(ctl, cap, tail, head_view, 1) {
                0 => None,
                n => Some(Ok(n)),
            }
        });
        outcome.unwrap_or(Err(Stop::Timeout))
    }

    /// Sends `value` if there is room now.
    ///
    /// # Errors
    /// [`TrySendError::Full`] if the ring is full, [`TrySendError::Disconnected`]
    /// if the consumer is gone; both hand `value` back.
    #[inline]
    pub fn try_send(&mut self, value: T) -> Result<(), TrySendError<T>> {
        if self.consumer_gone(false) {
            return Err(TrySendError::Disconnected(value));
        }
        if self.room(1) == 0 {
            return Err(TrySendError::Full(value));
        }
        self.write_publish(value);
        Ok(())
    }

    #[inline(always)]
    fn write_publish(&mut self, value: T) {
        #[cfg(not(procring_bug = "publish_before_write"))]
        {
            self.write(self.tail, value);
            self.publish(self.tail + 1);
        }
        #[cfg(procring_bug = "publish_before_write")]
        {
            let pos = self.tail;
            self.stamp(pos);
            self.publish(pos + 1);
            let slot = self.ring.slot(pos).value.get_mut();
            // SAFETY: none: this is the planted bug the loom models must catch.
            unsafe { *slot.deref() = value };
        }
    }

    /// Sends `value`, waiting for room as long as it takes.
    ///
    /// # Errors
    /// [`SendError`] (with `value`) if the consumer is gone.
    #[inline]
    pub fn send(&mut self, value: T) -> Result<(), SendError<T>> {
        // The first try inline: the value goes straight into its slot, not
        // through the waiting function's argument (about 3 ns a round trip).
        match self.try_send(value) {
            Ok(()) => Ok(()),
            Err(TrySendError::Disconnected(v)) => Err(SendError(v)),
            Err(TrySendError::Full(v)) => self.send_deadline(v, None).map_err(|e| SendError(e.into_inner())),
        }
    }

    /// Sends `value`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`SendTimeoutError::Timeout`] if the ring stayed full,
    /// [`SendTimeoutError::Disconnected`] if the consumer is gone.
    pub fn send_timeout(&mut self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        // Read the clock only if we have to wait.
        match self.try_send(value) {
            Ok(()) => Ok(()),
            Err(TrySendError::Disconnected(v)) => Err(SendTimeoutError::Disconnected(v)),
            Err(TrySendError::Full(v)) => self.send_deadline(v, Instant::now().checked_add(timeout)),
        }
    }

    /// Sends `value`, waiting for room until `deadline` (`None`: no deadline).
    ///
    /// # Errors
    /// As [`Producer::send_timeout`].
    pub fn send_deadline(&mut self, value: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        match self.try_send(value) {
            Ok(()) => Ok(()),
            Err(TrySendError::Disconnected(v)) => Err(SendTimeoutError::Disconnected(v)),
            Err(TrySendError::Full(v)) => match self.wait_room(Deadline::at(deadline)) {
                Ok(_) => {
                    self.write_publish(v);
                    Ok(())
                }
                Err(Stop::Timeout) => Err(SendTimeoutError::Timeout(v)),
                Err(Stop::Disconnected) => Err(SendTimeoutError::Disconnected(v)),
            },
        }
    }

    fn slot_guard(&mut self) -> SendSlot<'_, T> {
        let ptr = self.ring.slot(self.tail).value.get_mut();
        SendSlot { producer: self, ptr }
    }

    /// Zero-copy send: the next free slot, to write in place and then
    /// [`commit`](SendSlot::commit). Dropping the guard without committing
    /// publishes nothing. The slot holds whatever it held before (a `Pod`
    /// value): overwrite what you need.
    ///
    /// # Errors
    /// As [`Producer::try_send`], without a value to hand back.
    pub fn try_reserve(&mut self) -> Result<SendSlot<'_, T>, TrySendError<()>> {
        if self.consumer_gone(false) {
            return Err(TrySendError::Disconnected(()));
        }
        if self.room(1) == 0 {
            return Err(TrySendError::Full(()));
        }
        Ok(self.slot_guard())
    }

    /// Zero-copy send, waiting for a free slot as long as it takes.
    ///
    /// # Errors
    /// [`SendError`] if the consumer is gone.
    ///
    /// # Examples
    /// ```
    /// let (mut tx, mut rx) = procring::spsc::channel::<[u64; 8]>(4)?;
    /// let mut slot = tx.reserve()?;
    /// slot[0] = 42;
    /// slot.commit();
    /// assert_eq!(rx.recv_ref()?[0], 42);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reserve(&mut self) -> Result<SendSlot<'_, T>, SendError<()>> {
        self.reserve_within(Deadline::Never).map_err(|_| SendError(()))
    }

    /// Zero-copy send, waiting at most `timeout` for a free slot.
    ///
    /// # Errors
    /// As [`Producer::send_timeout`].
    pub fn reserve_timeout(&mut self, timeout: Duration) -> Result<SendSlot<'_, T>, SendTimeoutError<()>> {
        self.reserve_within(Deadline::After(timeout))
    }

    fn reserve_within(&mut self, deadline: Deadline) -> Result<SendSlot<'_, T>, SendTimeoutError<()>> {
        match self.try_reserve() {
            Ok(_) => {}
            Err(TrySendError::Disconnected(())) => return Err(SendTimeoutError::Disconnected(())),
            Err(TrySendError::Full(())) => match self.wait_room(deadline) {
                Ok(_) => {}
                Err(Stop::Timeout) => return Err(SendTimeoutError::Timeout(())),
                Err(Stop::Disconnected) => return Err(SendTimeoutError::Disconnected(())),
            },
        }
        Ok(self.slot_guard())
    }

    /// Sends as many of `items` as fit now, with one publish. Returns how
    /// many were sent (at least one, unless `items` is empty).
    ///
    /// # Errors
    /// [`TrySendError::Full`] if not even one fits,
    /// [`TrySendError::Disconnected`] if the consumer is gone.
    pub fn try_send_batch(&mut self, items: &[T]) -> Result<usize, TrySendError<()>> {
        if self.consumer_gone(false) {
            return Err(TrySendError::Disconnected(()));
        }
        if items.is_empty() {
            return Ok(0);
        }
        let n = (self.room(items.len() as u64) as usize).min(items.len());
        if n == 0 {
            return Err(TrySendError::Full(()));
        }
        self.write_batch(&items[..n]);
        Ok(n)
    }

    fn write_batch(&mut self, items: &[T]) {
        for (i, item) in items.iter().enumerate() {
            self.write(self.tail + i as u64, *item);
        }
        self.publish(self.tail + items.len() as u64);
    }

    /// Sends all of `items`, waiting for room as needed; each run of free
    /// slots is filled and published at once.
    ///
    /// # Errors
    /// [`SendError`] with the number of items sent before the consumer went.
    pub fn send_batch(&mut self, items: &[T]) -> Result<(), SendError<usize>> {
        self.send_batch_within(items, Deadline::Never).map_err(|e| SendError(e.into_inner()))
    }

    /// Sends all of `items`, waiting at most `timeout` in all.
    ///
    /// # Errors
    /// [`SendTimeoutError`] with the number of items sent before it stopped.
    pub fn send_batch_timeout(&mut self, items: &[T], timeout: Duration) -> Result<(), SendTimeoutError<usize>> {
        self.send_batch_within(items, Deadline::After(timeout))
    }

    fn send_batch_within(&mut self, items: &[T], mut deadline: Deadline) -> Result<(), SendTimeoutError<usize>> {
        let mut sent = 0;
        while sent < items.len() {
            match self.try_send_batch(&items[sent..]) {
                Ok(n) => sent += n,
                Err(TrySendError::Disconnected(())) => return Err(SendTimeoutError::Disconnected(sent)),
                Err(TrySendError::Full(())) => {
                    // The first wait fixes the deadline for all the others.
                    deadline = deadline.start();
                    match self.wait_room(deadline) {
                        Ok(_) => {}
                        Err(Stop::Timeout) => return Err(SendTimeoutError::Timeout(sent)),
                        Err(Stop::Disconnected) => return Err(SendTimeoutError::Disconnected(sent)),
                    }
                }
            }
        }
        Ok(())
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        let ctl = self.ring.ctl();
        ctl.peers.producer.detach();
        // Wake a consumer asleep on an empty ring, so it sees "disconnected".
        ctl.not_empty.notify(self.ring.barrier);
    }
}

impl<T> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer").field("capacity", &self.ring.capacity()).field("tail", &self.tail).finish()
    }
}

/// A slot reserved by [`Producer::reserve`]: write it in place, then
/// [`commit`](Self::commit) to send it. Dropped uncommitted, it sends nothing.
pub struct SendSlot<'a, T: Pod> {
    producer: &'a mut Producer<T>,
    ptr: MutPtr<T>,
}

impl<T: Pod> SendSlot<'_, T> {
    /// Publishes the slot to the consumer.
    pub fn commit(self) {
        let SendSlot { producer, ptr } = self;
        // Our access to the slot ends before the consumer's can begin (under
        // loom this drop is what ends the tracked access).
        #[allow(clippy::drop_non_drop)]
        drop(ptr);
        producer.stamp(producer.tail);
        producer.publish(producer.tail + 1);
    }
}

impl<T: Pod> Deref for SendSlot<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the slot is in the producer's part of the ring (room was
        // checked) and the guard borrows the producer mutably, so this is the
        // only access until `commit`.
        unsafe { self.ptr.deref() }
    }
}

impl<T: Pod> DerefMut for SendSlot<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this access unique.
        unsafe { self.ptr.deref() }
    }
}

impl<T: Pod> fmt::Debug for SendSlot<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendSlot").field("pos", &self.producer.tail).finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::shm::backing::Backing;
    use crate::spsc::{channel, heap_ring, Heap};
    use crate::sync::Barrier;

    /// A producer that died after stamping a slot but before storing `tail`:
    /// the consumer takes the message by its stamp, and the next producer to
    /// attach must continue after it, not write that position again.
    #[test]
    fn a_new_producer_continues_after_slots_stamped_but_not_counted() {
        let (tx, mut rx) = channel::<u64>(4).unwrap();
        tx.write(0, 7); // stamped; `tail` still says 0
        let heap = match &tx.ring.backing {
            Backing::Local(h) => h.clone().downcast::<Heap<u64>>().expect("a heap ring of u64"),
            #[allow(unreachable_patterns)]
            _ => unreachable!("channel() rings live on the heap"),
        };
        drop(tx);
        // `tail` says empty; the producer is gone, so the consumer looks
        // again, at the stamp, and finds the message.
        assert_eq!(rx.try_recv(), Ok(7));
        let mut tx = Producer::new(heap_ring(&heap, 4, Barrier::Symmetric));
        assert_eq!(tx.tail, 1);
        tx.send(8).unwrap();
        assert_eq!(rx.try_recv(), Ok(8));
        assert_eq!(rx.len(), 0);
    }
}
