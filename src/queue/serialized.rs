//! `SerdeQueue<T>`: any `Serialize + DeserializeOwned` value through a queue,
//! the analogue of Python pickling objects into a `multiprocessing.Queue`.
//!
//! Values are encoded with postcard (compact, varint-based) into fixed-size
//! slots of the MPMC ring: a `u32` length, then the bytes. The slot size is
//! chosen at creation; a value that does not fit is refused with its size
//! and the limit, never truncated. Receivers check every length against the
//! slot before reading it.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{CreateError, MessageRecvError, MessageSendError};
use crate::queue::{check_capacity, Counted, Shared};
use crate::ring::mpmc::{Claim, Geometry, Mpmc, Stop};
use crate::shm::header::TypeInfo;
use crate::sync::wait::{Deadline, Wait};

/// Bytes of the length prefix in a slot.
const LEN: usize = 4;

/// A many-producer many-consumer queue of serialized `T` values.
///
/// ```
/// use procring::SerdeQueue;
///
/// let q = SerdeQueue::<(i32, Option<i32>, String)>::new(8, 256)?;
/// q.send(&(42, None, "hello".to_owned()))?;
/// assert_eq!(q.recv()?, (42, None, "hello".to_owned()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SerdeQueue<T> {
    /// Counts as a sender (until closed) and a receiver, as a `Queue`.
    counted: Counted,
    wait: Wait,
    max: usize,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> Clone for SerdeQueue<T> {
    fn clone(&self) -> Self {
        Self { counted: self.counted.clone(), wait: self.wait, max: self.max, _t: PhantomData }
    }
}

impl<T> SerdeQueue<T> {
    fn ring(&self) -> &Mpmc {
        &self.counted.shared.ring
    }
}

impl<T> fmt::Debug for SerdeQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SerdeQueue").field("capacity", &self.ring().capacity()).field("max", &self.max).finish()
    }
}

fn geometry(max_bytes: usize) -> Geometry {
    Geometry { size: LEN + max_bytes, align: 8 }
}

fn check_max(max_bytes: usize) -> Result<u32, CreateError> {
    match u32::try_from(LEN + max_bytes) {
        Ok(n) if max_bytes > 0 && n <= 1 << 30 => Ok(n),
        _ => {
            Err(CreateError::InvalidCapacity { capacity: max_bytes, reason: "a message must hold 1 to 2^30 - 4 bytes" })
        }
    }
}

impl<T: Serialize + DeserializeOwned> SerdeQueue<T> {
    fn with(shared: Shared, wait: Wait, max: usize) -> Self {
        Self { counted: Counted::new(Arc::new(shared), crate::queue::BOTH_ENDS), wait, max, _t: PhantomData }
    }

    /// An in-process queue of at most `capacity` values of up to
    /// `max_bytes` serialized bytes each.
    ///
    /// # Errors
    /// [`CreateError::InvalidCapacity`] for a capacity of 0 or a
    /// `max_bytes` of 0 or over 2^30, or a queue too large for this
    /// process's memory.
    pub fn new(capacity: usize, max_bytes: usize) -> Result<Self, CreateError> {
        let cap = check_capacity(capacity)?;
        check_max(max_bytes)?;
        let shared = Shared::heap(geometry(max_bytes), cap)?;
        Ok(Self::with(shared, Wait::local(), max_bytes))
    }

    /// Creates a queue in a new segment named `name`: at most `capacity`
    /// values, each of up to `max_bytes` serialized bytes.
    ///
    /// # Errors
    /// As [`crate::Queue::create`], and as [`SerdeQueue::new`].
    pub fn create(name: &str, capacity: usize, max_bytes: usize) -> Result<Self, CreateError> {
        Self::create_with(name, capacity, max_bytes, &crate::shm::Options::new())
    }

    /// As [`SerdeQueue::create`], with [`crate::shm::Options`].
    ///
    /// # Errors
    /// As [`SerdeQueue::create`].
    pub fn create_with(
        name: &str,
        capacity: usize,
        max_bytes: usize,
        opts: &crate::shm::Options,
    ) -> Result<Self, CreateError> {
        let cap = check_capacity(capacity)?;
        let size = check_max(max_bytes)?;
        let shared = Shared::create(name, TypeInfo::serialized::<T>(size), geometry(max_bytes), cap, opts)?;
        Ok(Self::with(shared, Wait::shared(opts.spin), max_bytes))
    }

    /// Opens the queue of serialized `T` in segment `name`; its slot size is
    /// the creator's.
    ///
    /// # Errors
    /// As [`crate::Queue::open`].
    pub fn open(name: &str) -> Result<Self, crate::error::OpenError> {
        Self::open_with(name, &crate::shm::Options::new())
    }

    /// As [`SerdeQueue::open`], with [`crate::shm::Options`].
    ///
    /// # Errors
    /// As [`crate::Queue::open`].
    pub fn open_with(name: &str, opts: &crate::shm::Options) -> Result<Self, crate::error::OpenError> {
        let (shared, size) = Shared::open(name, TypeInfo::serialized::<T>(0), opts)?;
        if size <= LEN {
            return Err(crate::error::OpenError::Corrupt {
                name: name.to_owned(),
                what: format!("slot size {size} holds no message"),
            });
        }
        Ok(Self::with(shared, Wait::shared(opts.spin), size - LEN))
    }

    /// The largest serialized value a message may hold, in bytes.
    pub fn max_bytes(&self) -> usize {
        self.max
    }

    /// Messages in the queue (a snapshot).
    pub fn len(&self) -> usize {
        self.ring().len() as usize
    }

    /// Whether the queue holds no message (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values the queue holds at most: the capacity it was created with.
    pub fn capacity(&self) -> usize {
        self.ring().capacity() as usize
    }

    /// This handle sends no more (see [`crate::Queue::close`]); whether
    /// this call closed it.
    pub fn close(&self) -> bool {
        self.counted.stop_sending()
    }

    /// Whether this handle was closed.
    pub fn is_closed(&self) -> bool {
        !self.counted.sends()
    }

    /// Ends the queue for everyone (see [`crate::Queue::shutdown`]);
    /// whether this call did.
    pub fn shutdown(&self) -> bool {
        self.ring().close()
    }

    /// Whether the queue was shut down.
    pub fn is_shutdown(&self) -> bool {
        self.ring().is_closed()
    }

    /// A claim to send (`Closed` for a closed handle), as `claim`.
    fn claim_send(&self, claim: impl FnOnce(&Mpmc) -> Result<Claim, Stop>) -> Result<Claim, Stop> {
        if !self.counted.sends() {
            return Err(Stop::Closed);
        }
        claim(self.ring())
    }

    fn encode(&self, value: &T) -> Result<Vec<u8>, MessageSendError> {
        let bytes = postcard::to_allocvec(value).map_err(|e| MessageSendError::Encode(e.to_string()))?;
        if bytes.len() > self.max {
            return Err(MessageSendError::TooLarge { size: bytes.len(), limit: self.max });
        }
        Ok(bytes)
    }

    fn put(&self, claim: Result<Claim, Stop>, bytes: &[u8]) -> Result<(), MessageSendError> {
        let ring = self.ring();
        let pos = claim.map_err(|stop| match stop {
            Stop::NotNow => MessageSendError::Full,
            Stop::Timeout => MessageSendError::Timeout,
            Stop::Closed | Stop::Corrupt(_) => MessageSendError::Disconnected,
        })?;
        let payload = ring.payload_mut(pos);
        // SAFETY: we claimed `pos`; its payload (LEN + max bytes, 8-aligned)
        // is ours until we publish, and `bytes.len() <= max` (checked).
        unsafe {
            payload.ptr.cast::<[u8; LEN]>().write((bytes.len() as u32).to_le_bytes());
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), payload.ptr.add(LEN), bytes.len());
        }
        payload.end();
        ring.publish(pos, true);
        Ok(())
    }

    fn take(&self, claim: Result<Claim, Stop>) -> Result<T, MessageRecvError> {
        let ring = self.ring();
        let pos = claim.map_err(|stop| match stop {
            Stop::NotNow => MessageRecvError::Empty,
            Stop::Timeout => MessageRecvError::Timeout,
            Stop::Closed => MessageRecvError::Disconnected,
            Stop::Corrupt(w) => MessageRecvError::Corrupt(w),
        })?;
        let payload = ring.payload_ref(pos);
        // SAFETY: we claimed `pos` for reading: published and ours until we
        // release it. The length is untrusted: checked against the slot
        // before any byte past it is read.
        let decoded = unsafe {
            let len = u32::from_le_bytes(payload.ptr.cast::<[u8; LEN]>().read()) as usize;
            if len > self.max {
                Err(MessageRecvError::Corrupt("a message's length is larger than its slot"))
            } else {
                let bytes = std::slice::from_raw_parts(payload.ptr.add(LEN), len);
                postcard::from_bytes(bytes).map_err(|e| MessageRecvError::Decode(e.to_string()))
            }
        };
        payload.end();
        ring.release(pos);
        decoded
    }

    /// Sends `value` if there is room now.
    ///
    /// # Errors
    /// [`MessageSendError::TooLarge`] (with its size and the limit),
    /// [`MessageSendError::Full`], [`MessageSendError::Disconnected`], or
    /// [`MessageSendError::Encode`].
    pub fn try_send(&self, value: &T) -> Result<(), MessageSendError> {
        let bytes = self.encode(value)?;
        self.put(self.claim_send(Mpmc::try_claim_send), &bytes)
    }

    /// Sends `value`, waiting for room as long as it takes.
    ///
    /// # Errors
    /// As [`SerdeQueue::try_send`], but never `Full`.
    pub fn send(&self, value: &T) -> Result<(), MessageSendError> {
        self.send_within(value, Deadline::Never)
    }

    /// Sends `value`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// As [`SerdeQueue::try_send`], with `Timeout` instead of `Full`.
    pub fn send_timeout(&self, value: &T, timeout: Duration) -> Result<(), MessageSendError> {
        self.send_within(value, Deadline::After(timeout))
    }

    /// Sends `value`, waiting for room until `deadline` (`None`: no limit).
    ///
    /// # Errors
    /// As [`SerdeQueue::send_timeout`].
    pub fn send_deadline(&self, value: &T, deadline: Option<Instant>) -> Result<(), MessageSendError> {
        self.send_within(value, Deadline::at(deadline))
    }

    fn send_within(&self, value: &T, deadline: Deadline) -> Result<(), MessageSendError> {
        let bytes = self.encode(value)?;
        self.put(self.claim_send(|ring| ring.claim_send(&self.wait, deadline)), &bytes)
    }

    /// Receives a value if one is ready now.
    ///
    /// # Errors
    /// [`MessageRecvError::Empty`], [`MessageRecvError::Disconnected`] (closed
    /// and drained), [`MessageRecvError::Decode`], or
    /// [`MessageRecvError::Corrupt`].
    pub fn try_recv(&self) -> Result<T, MessageRecvError> {
        self.take(self.ring().try_claim_recv())
    }

    /// Receives a value, waiting as long as it takes.
    ///
    /// # Errors
    /// As [`SerdeQueue::try_recv`], but never `Empty`.
    pub fn recv(&self) -> Result<T, MessageRecvError> {
        self.recv_within(Deadline::Never)
    }

    /// Receives a value, waiting at most `timeout`.
    ///
    /// # Errors
    /// As [`SerdeQueue::try_recv`], with `Timeout` instead of `Empty`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, MessageRecvError> {
        self.recv_within(Deadline::After(timeout))
    }

    /// Receives a value, waiting until `deadline` (`None`: no limit).
    ///
    /// # Errors
    /// As [`SerdeQueue::recv_timeout`].
    pub fn recv_deadline(&self, deadline: Option<Instant>) -> Result<T, MessageRecvError> {
        self.recv_within(Deadline::at(deadline))
    }

    fn recv_within(&self, deadline: Deadline) -> Result<T, MessageRecvError> {
        self.take(self.ring().claim_recv(&self.wait, deadline))
    }
}
