//! The public handles: [`Queue`] (Python's, both ends), and crossbeam's
//! split [`Sender`] and [`Receiver`]. Their operations are written once,
//! in the macros below, and each handle takes the sets that fit it.

use std::fmt;
use std::time::{Duration, Instant};

use bytemuck::Pod;

use super::guards::{RecvRef, SendSlot};
use super::handle::{blocking, recv_blocking, send_err, try_send_err, Handle};
use super::{Shared, RECEIVES, SENDS};
use crate::error::{CreateError, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError};
use crate::sync::wait::{Deadline, Wait};

/// What every handle offers: the queue's size and counters.
macro_rules! observing {
    () => {
        /// Messages in the queue (a snapshot).
        pub fn len(&self) -> usize {
            self.h.ring().len() as usize
        }

        /// Whether the queue holds no message (a snapshot).
        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }

        /// Whether the queue holds as many messages as it can (a snapshot).
        pub fn is_full(&self) -> bool {
            self.len() == self.capacity()
        }

        /// Messages the queue holds at most: the capacity it was created with.
        pub fn capacity(&self) -> usize {
            self.h.ring().capacity() as usize
        }

        /// Whether the queue was shut down ([`Queue::shutdown`]).
        pub fn is_shutdown(&self) -> bool {
            self.h.ring().is_closed()
        }

        /// Slots that receivers passed over because a sender claimed them for
        /// zero-copy writing and dropped the guard uncommitted.
        pub fn skipped(&self) -> u64 {
            self.h.ring().skipped()
        }

        /// Claims resolved because the process that made them died: a sender
        /// killed between claiming a slot and publishing it (the slot is
        /// skipped, never delivered half-written), or a receiver killed
        /// between claiming a message and releasing its slot (the message
        /// went with it).
        pub fn abandoned(&self) -> u64 {
            self.h.ring().abandoned()
        }

        /// Sets how many spin-loop steps this handle's blocked calls spin
        /// before they sleep; `u32::MAX` never sleeps.
        pub fn set_spin(&mut self, spin: u32) {
            self.h.wait.spin = spin;
        }
    };
}

/// The sending operations.
macro_rules! sending {
    () => {
        /// Sends `value` if there is room now.
        ///
        /// # Errors
        /// [`TrySendError::Full`], or [`TrySendError::Disconnected`] when no
        /// receiver is left, the queue was shut down, or this handle was
        /// closed; both hand `value` back.
        #[inline]
        pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
            match self.h.try_claim_send() {
                Ok(pos) => {
                    self.h.write_publish(pos, value);
                    Ok(())
                }
                Err(stop) => Err(try_send_err(stop, value)),
            }
        }

        /// Sends `value`, waiting for room as long as it takes.
        ///
        /// # Errors
        /// [`SendError`] (with `value`) when no receiver is left, the queue
        /// was shut down, or this handle was closed.
        #[inline]
        pub fn send(&self, value: T) -> Result<(), SendError<T>> {
            // The first try inline, as the SPSC ring's `send`: the value goes
            // straight into its slot, not through the waiting function's argument.
            match self.try_send(value) {
                Err(TrySendError::Full(v)) => self.h.send_within(v, Deadline::Never).map_err(blocking),
                other => other.map_err(|e| SendError(e.into_inner())),
            }
        }

        /// Sends `value`, waiting at most `timeout` for room.
        ///
        /// # Errors
        /// [`SendTimeoutError::Timeout`], or [`SendTimeoutError::Disconnected`]
        /// as [`Self::send`]; both hand `value` back.
        pub fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
            match self.try_send(value) {
                Err(TrySendError::Full(v)) => self.h.send_within(v, Deadline::After(timeout)),
                other => other.map_err(|e| SendTimeoutError::Disconnected(e.into_inner())),
            }
        }

        /// Sends `value`, waiting for room until `deadline` (`None`: no deadline).
        ///
        /// # Errors
        /// As [`Self::send_timeout`].
        pub fn send_deadline(&self, value: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
            self.h.send_within(value, Deadline::at(deadline))
        }

        /// Zero-copy send: claims a slot to write in place; [`SendSlot::commit`]
        /// sends it. A guard dropped uncommitted sends nothing (receivers pass
        /// the slot over; [`Self::skipped`] counts it).
        ///
        /// # Errors
        /// As [`Self::try_send`], without a value to hand back.
        pub fn try_reserve(&self) -> Result<SendSlot<'_, T>, TrySendError<()>> {
            match self.h.try_claim_send() {
                Ok(pos) => Ok(SendSlot::new(self.h.ring(), pos)),
                Err(stop) => Err(try_send_err(stop, ())),
            }
        }

        /// Zero-copy send, waiting for a slot as long as it takes.
        ///
        /// # Errors
        /// As [`Self::send`], without a value to hand back.
        pub fn reserve(&self) -> Result<SendSlot<'_, T>, SendError<()>> {
            self.reserve_within(Deadline::Never).map_err(blocking)
        }

        /// Zero-copy send, waiting at most `timeout` for a slot.
        ///
        /// # Errors
        /// As [`Self::send_timeout`], without a value to hand back.
        pub fn reserve_timeout(&self, timeout: Duration) -> Result<SendSlot<'_, T>, SendTimeoutError<()>> {
            self.reserve_within(Deadline::After(timeout))
        }

        fn reserve_within(&self, deadline: Deadline) -> Result<SendSlot<'_, T>, SendTimeoutError<()>> {
            match self.h.claim_send(deadline) {
                Ok(pos) => Ok(SendSlot::new(self.h.ring(), pos)),
                Err(stop) => Err(send_err(stop, ())),
            }
        }

        /// Sends as many of `items` as fit now; returns how many (at least one
        /// unless `items` is empty).
        ///
        /// # Errors
        /// [`TrySendError::Full`] if none fit, [`TrySendError::Disconnected`]
        /// as [`Self::try_send`] (before anything was sent).
        pub fn try_send_batch(&self, items: &[T]) -> Result<usize, TrySendError<()>> {
            for (sent, item) in items.iter().enumerate() {
                match self.try_send(*item) {
                    Ok(()) => {}
                    Err(_) if sent > 0 => return Ok(sent),
                    Err(e) => return Err(e.map(|_| ())),
                }
            }
            Ok(items.len())
        }

        /// Sends all of `items` in order, waiting for room as needed.
        ///
        /// # Errors
        /// [`SendError`] with how many were sent, as [`Self::send`].
        pub fn send_batch(&self, items: &[T]) -> Result<(), SendError<usize>> {
            for (sent, item) in items.iter().enumerate() {
                self.send(*item).map_err(|_| SendError(sent))?;
            }
            Ok(())
        }
    };
}

/// The receiving operations.
macro_rules! receiving {
    () => {
        /// Receives a message if one is ready now. `Empty` means the queue
        /// was empty at some instant of the call: a send under way that
        /// messages sent after it wait behind is waited for.
        ///
        /// # Errors
        /// [`TryRecvError::Empty`], [`TryRecvError::Disconnected`] (no sender
        /// left, or shut down, and drained), or [`TryRecvError::Corrupt`].
        #[inline]
        pub fn try_recv(&self) -> Result<T, TryRecvError> {
            // All the copying receives copy out of a `RecvRef` straight into the
            // `Result` they return. Read into a local before the slot is
            // released, a 4 KiB message was copied a second time.
            self.h.try_recv_in_call().map(|m| *m)
        }

        /// Receives a message, waiting as long as it takes.
        ///
        /// # Errors
        /// [`RecvError::Disconnected`] once no sender is left (or the queue
        /// was shut down) and the queue is drained.
        #[inline]
        pub fn recv(&self) -> Result<T, RecvError> {
            // Not through `recv_within`: its `Result` mapped to this error type
            // would be a second copy of the message.
            match self.h.recv_ref_within(Deadline::Never) {
                Ok(m) => Ok(*m),
                Err(e) => Err(recv_blocking(e)),
            }
        }

        /// Receives a message, waiting at most `timeout`.
        ///
        /// # Errors
        /// [`RecvTimeoutError::Timeout`], or as [`Self::recv`].
        #[inline]
        pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
            self.h.recv_ref_within(Deadline::After(timeout)).map(|m| *m)
        }

        /// Receives a message, waiting until `deadline` (`None`: no deadline).
        ///
        /// # Errors
        /// As [`Self::recv_timeout`].
        #[inline]
        pub fn recv_deadline(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
            self.h.recv_ref_within(Deadline::at(deadline)).map(|m| *m)
        }

        /// Zero-copy receive: the next message, read in place; its slot is
        /// released when the guard drops.
        ///
        /// # Errors
        /// As [`Self::try_recv`].
        #[inline]
        pub fn try_recv_ref(&self) -> Result<RecvRef<'_, T>, TryRecvError> {
            self.h.try_recv_in_call().map(RecvRef::held)
        }

        /// Zero-copy receive, waiting as long as it takes.
        ///
        /// # Errors
        /// As [`Self::recv`].
        pub fn recv_ref(&self) -> Result<RecvRef<'_, T>, RecvError> {
            self.h.recv_ref_within(Deadline::Never).map(RecvRef::held).map_err(recv_blocking)
        }

        /// Zero-copy receive, waiting at most `timeout`.
        ///
        /// # Errors
        /// As [`Self::recv_timeout`].
        pub fn recv_ref_timeout(&self, timeout: Duration) -> Result<RecvRef<'_, T>, RecvTimeoutError> {
            self.h.recv_ref_within(Deadline::After(timeout)).map(RecvRef::held)
        }

        /// Receives as many ready messages as fit in `out`; returns how many
        /// (at least one unless `out` is empty).
        ///
        /// # Errors
        /// As [`Self::try_recv`], when nothing was received.
        pub fn try_recv_batch(&self, out: &mut [T]) -> Result<usize, TryRecvError> {
            let Some(first) = out.first_mut() else { return Ok(0) };
            *first = self.try_recv()?;
            Ok(1 + self.h.recv_ready(&mut out[1..]))
        }

        /// Waits for one message, then receives as many more as are ready and
        /// fit in `out`; returns how many (0 at once for an empty `out`).
        ///
        /// # Errors
        /// As [`Self::recv`].
        pub fn recv_batch(&self, out: &mut [T]) -> Result<usize, RecvError> {
            let Some(first) = out.first_mut() else { return Ok(0) };
            *first = self.recv()?;
            Ok(1 + self.h.recv_ready(&mut out[1..]))
        }

        /// A blocking iterator over received messages; it ends once no
        /// sender is left (or the queue was shut down) and the queue is
        /// drained.
        pub fn iter(&self) -> Iter<'_, T> {
            Iter { h: &self.h }
        }

        /// An iterator over the messages ready now; it ends at the first
        /// receive that would wait.
        pub fn try_iter(&self) -> TryIter<'_, T> {
            TryIter { h: &self.h }
        }
    };
}

/// The iterator impls of a receiving handle.
macro_rules! iterable {
    ($ty:ident) => {
        impl<'a, T: Pod> IntoIterator for &'a $ty<T> {
            type Item = T;
            type IntoIter = Iter<'a, T>;
            fn into_iter(self) -> Iter<'a, T> {
                self.iter()
            }
        }

        impl<T: Pod> IntoIterator for $ty<T> {
            type Item = T;
            type IntoIter = IntoIter<T>;
            fn into_iter(self) -> IntoIter<T> {
                IntoIter { h: self.h }
            }
        }
    };
}

/// A blocking iterator over a receiving handle's messages (`iter()`): it
/// ends once the queue is disconnected and drained.
#[derive(Debug)]
pub struct Iter<'a, T> {
    h: &'a Handle<T>,
}

impl<T: Pod> Iterator for Iter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.h.recv_ref_within(Deadline::Never).ok().map(|m| *m)
    }
}

/// An iterator over the messages ready now (`try_iter()`).
#[derive(Debug)]
pub struct TryIter<'a, T> {
    h: &'a Handle<T>,
}

impl<T: Pod> Iterator for TryIter<'_, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.h.try_recv_in_call().ok().map(|m| *m)
    }
}

/// A blocking iterator that owns its receiving handle (`into_iter()`).
#[derive(Debug)]
pub struct IntoIter<T> {
    h: Handle<T>,
}

impl<T: Pod> Iterator for IntoIter<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        self.h.recv_ref_within(Deadline::Never).ok().map(|m| *m)
    }
}

/// A many-producer many-consumer queue of `T`, in a named segment or in
/// this process: Python's `multiprocessing.Queue`, a handle that both sends
/// and receives.
///
/// Every handle counts as a sender until [`Queue::close`]d, and as a
/// receiver, so a queue whose every process holds a `Queue` never
/// disconnects by itself; [`Queue::shutdown`] ends it for everyone. For
/// crossbeam's shape, where dropping the last sender disconnects the
/// receivers, use [`Sender`] and [`Receiver`].
///
/// ```
/// use procring::Queue;
///
/// let q = Queue::<u64>::new(8)?; // in-process; `create`/`open` for a named one
/// let q2 = q.clone();
/// std::thread::spawn(move || q2.send(42)).join().unwrap()?;
/// assert_eq!(q.recv()?, 42);
/// q.shutdown();
/// assert!(q.recv().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Queue<T> {
    h: Handle<T>,
}

/// The sending half of a queue: crossbeam's `Sender`. Cloneable; opened by
/// name in any process. When the last sender in every process is gone
/// (dropped, or its process died), receivers drain the queue and then get
/// a disconnection error.
///
/// ```
/// let (tx, rx) = procring::queue::bounded::<u64>(4)?;
/// let tx2 = tx.clone();
/// std::thread::spawn(move || tx2.send(1)).join().unwrap()?;
/// drop(tx);
/// assert_eq!(rx.iter().collect::<Vec<_>>(), [1]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Sender<T> {
    h: Handle<T>,
}

/// The receiving half of a queue: crossbeam's `Receiver`. Cloneable;
/// opened by name in any process. When the last receiver in every process
/// is gone, sends fail and hand their value back.
pub struct Receiver<T> {
    h: Handle<T>,
}

macro_rules! handle_traits {
    ($ty:ident) => {
        impl<T> Clone for $ty<T> {
            fn clone(&self) -> Self {
                Self { h: self.h.clone() }
            }
        }

        impl<T> fmt::Debug for $ty<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let ring = self.h.ring();
                f.debug_struct(stringify!($ty)).field("capacity", &ring.capacity()).field("len", &ring.len()).finish()
            }
        }
    };
}

handle_traits!(Queue);
handle_traits!(Sender);
handle_traits!(Receiver);
iterable!(Queue);
iterable!(Receiver);

impl<T: Pod> Queue<T> {
    observing!();
    sending!();
    receiving!();

    /// An in-process queue (threads of this process only), on the heap.
    ///
    /// # Errors
    /// [`CreateError::InvalidCapacity`] for a capacity of 0, or one too
    /// large for this process's memory (any other up to 2^40 is held
    /// exactly), [`CreateError::UnsupportedType`] for a zero-sized `T`.
    pub fn new(capacity: usize) -> Result<Self, CreateError> {
        let shared = Shared::heap_for::<T>(capacity)?;
        Ok(Self { h: Handle::new(shared, SENDS | RECEIVES, Wait::local()) })
    }

    /// Python's `Queue.close()`: this handle sends no more. It stops counting
    /// as a sender (when no sender is left anywhere, receivers drain and
    /// then disconnect), and its sends fail from now on; it still receives.
    /// Returns whether this call closed it (`false`: it was closed already).
    pub fn close(&self) -> bool {
        self.h.counted.stop_sending()
    }

    /// Whether this handle was closed ([`Queue::close`]).
    pub fn is_closed(&self) -> bool {
        !self.h.counted.sends()
    }

    /// Python's `Queue.shutdown()` (3.13): ends the queue for every handle
    /// in every process. Sends fail from now on, receivers drain what was
    /// sent and then get a disconnection error, and every blocked call is
    /// woken to see it. Returns whether this call shut it down (`false`: it
    /// was already).
    pub fn shutdown(&self) -> bool {
        self.h.ring().close()
    }

    /// A [`Sender`] on this queue.
    pub fn sender(&self) -> Sender<T> {
        Sender { h: self.h.as_ends(SENDS) }
    }

    /// A [`Receiver`] on this queue.
    pub fn receiver(&self) -> Receiver<T> {
        Receiver { h: self.h.as_ends(RECEIVES) }
    }
}

#[cfg(loom)]
impl<T: Pod> Queue<T> {
    /// A receive that does not wait for a send under way (for the loom
    /// model of the claims alone; see `__loom::try_recv_quick`).
    pub(crate) fn try_recv_quick(&self) -> Option<T> {
        let pos = self.h.ring().claim_recv_quick().ok()?;
        Some(*RecvRef::new(self.h.ring(), pos))
    }
}

impl<T: Pod> Sender<T> {
    observing!();
    sending!();
}

impl<T: Pod> Receiver<T> {
    observing!();
    receiving!();
}

/// An in-process queue holding at most `capacity` messages, as its two
/// halves: crossbeam's `bounded`.
///
/// # Errors
/// As [`Queue::new`].
pub fn bounded<T: Pod>(capacity: usize) -> Result<(Sender<T>, Receiver<T>), CreateError> {
    let q = Queue::<T>::new(capacity)?;
    Ok((q.sender(), q.receiver()))
}

#[cfg(not(loom))]
mod named {
    use super::*;
    use crate::error::OpenError;
    use crate::message::Message;
    use crate::shm::header::TypeInfo;
    use crate::shm::Options;

    fn created<T: Message>(name: &str, capacity: usize, opts: &Options, ends: u32) -> Result<Handle<T>, CreateError> {
        crate::shm::backing::check_element::<T>()?;
        let cap = crate::queue::check_capacity(capacity)?;
        let shared = Shared::create(name, TypeInfo::of::<T>(), crate::queue::geometry::<T>(), cap, opts)?;
        Ok(Handle::new(std::sync::Arc::new(shared), ends, opts.wait()))
    }

    fn opened<T: Message>(name: &str, opts: &Options, ends: u32) -> Result<Handle<T>, OpenError> {
        let (shared, _) = Shared::open(name, TypeInfo::of::<T>(), opts)?;
        Ok(Handle::new(std::sync::Arc::new(shared), ends, opts.wait()))
    }

    /// Creates a queue in a new segment named `name`, holding at most
    /// `capacity` messages, as its two halves. The name is removed when the
    /// last of them (and their clones) drop, unless [`Options::keep`].
    ///
    /// # Errors
    /// As [`Queue::create`].
    pub fn create<T: Message>(name: &str, capacity: usize) -> Result<(Sender<T>, Receiver<T>), CreateError> {
        create_with(name, capacity, &Options::new())
    }

    /// As [`create`], with [`Options`].
    ///
    /// # Errors
    /// As [`Queue::create`].
    pub fn create_with<T: Message>(
        name: &str,
        capacity: usize,
        opts: &Options,
    ) -> Result<(Sender<T>, Receiver<T>), CreateError> {
        let h = created::<T>(name, capacity, opts, RECEIVES)?;
        Ok((Sender { h: h.as_ends(SENDS) }, Receiver { h }))
    }

    impl<T: Message> Queue<T> {
        /// Creates a queue in a new segment named `name`, holding at most
        /// `capacity` messages. The name is removed when this handle (and
        /// its clones) drop, unless [`Options::keep`].
        ///
        /// # Errors
        /// [`CreateError`]: a bad name or capacity, a name that exists, no
        /// permission, no room in `/dev/shm`, or a system error.
        pub fn create(name: &str, capacity: usize) -> Result<Self, CreateError> {
            Self::create_with(name, capacity, &Options::new())
        }

        /// As [`Queue::create`], with [`Options`].
        ///
        /// # Errors
        /// As [`Queue::create`].
        pub fn create_with(name: &str, capacity: usize, opts: &Options) -> Result<Self, CreateError> {
            Ok(Self { h: created(name, capacity, opts, SENDS | RECEIVES)? })
        }

        /// Opens the queue in segment `name`.
        ///
        /// # Errors
        /// [`OpenError`]: no such segment, not a queue of `T`, or a corrupt
        /// or incompatible header.
        pub fn open(name: &str) -> Result<Self, OpenError> {
            Self::open_with(name, &Options::new())
        }

        /// As [`Queue::open`], with [`Options`].
        ///
        /// # Errors
        /// As [`Queue::open`].
        pub fn open_with(name: &str, opts: &Options) -> Result<Self, OpenError> {
            Ok(Self { h: opened(name, opts, SENDS | RECEIVES)? })
        }
    }

    impl<T: Message> Sender<T> {
        /// Opens the queue in segment `name` to send.
        ///
        /// # Errors
        /// As [`Queue::open`].
        pub fn open(name: &str) -> Result<Self, OpenError> {
            Self::open_with(name, &Options::new())
        }

        /// As [`Sender::open`], with [`Options`].
        ///
        /// # Errors
        /// As [`Queue::open`].
        pub fn open_with(name: &str, opts: &Options) -> Result<Self, OpenError> {
            Ok(Self { h: opened(name, opts, SENDS)? })
        }
    }

    impl<T: Message> Receiver<T> {
        /// Opens the queue in segment `name` to receive.
        ///
        /// # Errors
        /// As [`Queue::open`].
        pub fn open(name: &str) -> Result<Self, OpenError> {
            Self::open_with(name, &Options::new())
        }

        /// As [`Receiver::open`], with [`Options`].
        ///
        /// # Errors
        /// As [`Queue::open`].
        pub fn open_with(name: &str, opts: &Options) -> Result<Self, OpenError> {
            Ok(Self { h: opened(name, opts, RECEIVES)? })
        }
    }
}

#[cfg(not(loom))]
pub use named::{create, create_with};
