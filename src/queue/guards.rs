//! The zero-copy guards: a slot claimed for writing in place
//! ([`SendSlot`]), and a message read in place ([`RecvRef`]).

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use bytemuck::Pod;

use crate::ring::mpmc::{Claim, Mpmc, PayloadMut, PayloadRef};

/// A slot claimed by `reserve`: write it in place, then
/// [`commit`](Self::commit). Dropped uncommitted, it sends nothing.
pub struct SendSlot<'a, T: Pod> {
    ring: &'a Mpmc,
    pos: Claim,
    payload: Option<PayloadMut>,
    _t: PhantomData<&'a mut T>,
}

impl<'a, T: Pod> SendSlot<'a, T> {
    /// A guard handed to the caller, which may keep it past the call: the
    /// claim holds its word (see `mpmc::Claims::hold`).
    pub(super) fn new(ring: &'a Mpmc, pos: Claim) -> Self {
        ring.hold_send(pos);
        Self { ring, pos, payload: Some(ring.payload_mut(pos)), _t: PhantomData }
    }

    /// Sends the slot's contents.
    pub fn commit(mut self) {
        if let Some(p) = self.payload.take() {
            p.end();
        }
        self.ring.publish_held(self.pos, true);
    }

    fn ptr(&self) -> *mut T {
        self.payload.as_ref().map_or(std::ptr::null_mut(), |p| p.ptr.cast())
    }
}

impl<T: Pod> Drop for SendSlot<'_, T> {
    fn drop(&mut self) {
        if let Some(p) = self.payload.take() {
            p.end();
            self.ring.publish_held(self.pos, false);
        }
    }
}

impl<T: Pod> Deref for SendSlot<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the slot is claimed by this guard alone until it is
        // published; aligned and sized for `T`; any bits are a valid `T`.
        unsafe { &*self.ptr() }
    }
}

impl<T: Pod> DerefMut for SendSlot<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this access unique.
        unsafe { &mut *self.ptr() }
    }
}

impl<T: Pod> fmt::Debug for SendSlot<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendSlot").field("pos", &self.pos).finish()
    }
}

/// A message read in place by `recv_ref`; its slot is released when this
/// guard drops.
pub struct RecvRef<'a, T: Pod> {
    ring: &'a Mpmc,
    pos: Claim,
    payload: Option<PayloadRef>,
    _t: PhantomData<&'a T>,
}

impl<'a, T: Pod> RecvRef<'a, T> {
    /// A guard for use within the call that made it (a copying receive).
    #[inline(always)]
    pub(super) fn new(ring: &'a Mpmc, pos: Claim) -> Self {
        Self { ring, pos, payload: Some(ring.payload_ref(pos)), _t: PhantomData }
    }

    /// The guard handed to the caller, which may keep it past the call: the
    /// claim holds its word (see `mpmc::Claims::hold`).
    pub(super) fn held(self) -> Self {
        self.ring.hold(self.pos);
        self
    }
}

impl<T: Pod> Deref for RecvRef<'_, T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        let ptr = self.payload.as_ref().map_or(std::ptr::null(), |p| p.ptr.cast::<T>());
        // SAFETY: the slot is published and claimed by this guard alone until
        // it drops; aligned and sized for `T`; any bits are a valid `T`.
        unsafe { &*ptr }
    }
}

impl<T: Pod> Drop for RecvRef<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if let Some(p) = self.payload.take() {
            p.end();
        }
        self.ring.release(self.pos);
    }
}

impl<T: Pod> fmt::Debug for RecvRef<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvRef").field("pos", &self.pos).finish()
    }
}
