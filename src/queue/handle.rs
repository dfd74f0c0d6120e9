//! What every queue handle is: its share of the queue ([`Counted`]), how it
//! waits, and the steps its public operations are made of.

use std::marker::PhantomData;
use std::sync::Arc;

use bytemuck::Pod;

use super::guards::RecvRef;
use super::{Counted, Shared};
use crate::error::{RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError};
use crate::ring::mpmc::{Claim, Mpmc, Stop};
use crate::sync::wait::{Deadline, Wait};

/// One handle on a queue: `Queue`, `Sender` and `Receiver` are each one,
/// differing in what they count as and which operations they offer.
#[derive(Debug)]
pub(crate) struct Handle<T> {
    pub(crate) counted: Counted,
    pub(crate) wait: Wait,
    _t: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        Self { counted: self.counted.clone(), wait: self.wait, _t: PhantomData }
    }
}

impl<T> Handle<T> {
    /// A handle on `shared` counting as `ends` (see [`Counted`]).
    pub(crate) fn new(shared: Arc<Shared>, ends: u32, wait: Wait) -> Self {
        Self { counted: Counted::new(shared, ends), wait, _t: PhantomData }
    }

    /// The same queue, counting as `ends` (a sender split off a receiver).
    pub(crate) fn as_ends(&self, ends: u32) -> Self {
        Self::new(self.counted.shared.clone(), ends, self.wait)
    }

    #[inline(always)]
    pub(crate) fn ring(&self) -> &Mpmc {
        &self.counted.shared.ring
    }
}

impl<T: Pod> Handle<T> {
    /// Writes `value` into the claimed slot and publishes it.
    #[inline(always)]
    pub(crate) fn write_publish(&self, pos: Claim, value: T) {
        let payload = self.ring().payload_mut(pos);
        #[cfg(not(procring_bug = "queue_seq_before_write"))]
        {
            // SAFETY: we claimed `pos`: its payload is ours until we publish,
            // and it is aligned and sized for `T` (the ring's geometry).
            unsafe { payload.ptr.cast::<T>().write(value) };
            payload.end();
            self.ring().publish(pos, true);
        }
        #[cfg(procring_bug = "queue_seq_before_write")]
        {
            self.ring().publish(pos, true);
            // SAFETY: none: this is the planted bug the loom models must catch.
            unsafe { payload.ptr.cast::<T>().write(value) };
            payload.end();
        }
    }

    /// A claim to send, if there is room now; `Closed` for a handle that
    /// sends no more (a closed `Queue`).
    #[inline(always)]
    pub(crate) fn try_claim_send(&self) -> Result<Claim, Stop> {
        if !self.counted.sends() {
            return Err(Stop::Closed);
        }
        self.ring().try_claim_send()
    }

    /// A claim to send, waiting for room up to `deadline`.
    pub(crate) fn claim_send(&self, deadline: Deadline) -> Result<Claim, Stop> {
        if !self.counted.sends() {
            return Err(Stop::Closed);
        }
        self.ring().claim_send(&self.wait, deadline)
    }

    /// Sends `value`, waiting for room up to `deadline`.
    pub(crate) fn send_within(&self, value: T, deadline: Deadline) -> Result<(), SendTimeoutError<T>> {
        match self.claim_send(deadline) {
            Ok(pos) => {
                self.write_publish(pos, value);
                Ok(())
            }
            Err(stop) => Err(send_err(stop, value)),
        }
    }

    /// A message read in place, for a guard dropped within the call that
    /// made it (see [`RecvRef::held`]).
    #[inline(always)]
    pub(crate) fn try_recv_in_call(&self) -> Result<RecvRef<'_, T>, TryRecvError> {
        match self.ring().try_claim_recv() {
            Ok(pos) => Ok(RecvRef::new(self.ring(), pos)),
            Err(stop) => Err(try_recv_err(stop)),
        }
    }

    /// As [`Handle::try_recv_in_call`], waiting up to `deadline`.
    #[inline(always)]
    pub(crate) fn recv_ref_within(&self, deadline: Deadline) -> Result<RecvRef<'_, T>, RecvTimeoutError> {
        let pos = self.ring().claim_recv(&self.wait, deadline).map_err(recv_err)?;
        Ok(RecvRef::new(self.ring(), pos))
    }

    /// Receives the messages ready now, up to `out.len()`, without waiting
    /// for a send under way (the caller has received at least one).
    pub(crate) fn recv_ready(&self, out: &mut [T]) -> usize {
        for (n, slot) in out.iter_mut().enumerate() {
            match self.ring().claim_recv_quick() {
                Ok(pos) => *slot = *RecvRef::new(self.ring(), pos),
                Err(_) => return n,
            }
        }
        out.len()
    }
}

/// Maps a failed claim to the error types users see.
pub(crate) fn send_err<T>(stop: Stop, value: T) -> SendTimeoutError<T> {
    match stop {
        Stop::Timeout | Stop::NotNow => SendTimeoutError::Timeout(value),
        Stop::Closed | Stop::Corrupt(_) => SendTimeoutError::Disconnected(value),
    }
}

pub(crate) fn try_send_err<T>(stop: Stop, value: T) -> TrySendError<T> {
    match stop {
        Stop::NotNow | Stop::Timeout => TrySendError::Full(value),
        Stop::Closed | Stop::Corrupt(_) => TrySendError::Disconnected(value),
    }
}

pub(crate) fn recv_err(stop: Stop) -> RecvTimeoutError {
    match stop {
        Stop::Timeout | Stop::NotNow => RecvTimeoutError::Timeout,
        Stop::Closed => RecvTimeoutError::Disconnected,
        Stop::Corrupt(w) => RecvTimeoutError::Corrupt(w),
    }
}

pub(crate) fn blocking<T>(e: SendTimeoutError<T>) -> SendError<T> {
    SendError(e.into_inner())
}

pub(crate) fn try_recv_err(stop: Stop) -> TryRecvError {
    match stop {
        Stop::Timeout | Stop::NotNow => TryRecvError::Empty,
        Stop::Closed => TryRecvError::Disconnected,
        Stop::Corrupt(w) => TryRecvError::Corrupt(w),
    }
}

pub(crate) fn recv_blocking(e: RecvTimeoutError) -> RecvError {
    match e {
        RecvTimeoutError::Corrupt(w) => RecvError::Corrupt(w),
        _ => RecvError::Disconnected,
    }
}

impl<T> TrySendError<T> {
    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U) -> TrySendError<U> {
        match self {
            TrySendError::Full(t) => TrySendError::Full(f(t)),
            TrySendError::Disconnected(t) => TrySendError::Disconnected(f(t)),
        }
    }
}
