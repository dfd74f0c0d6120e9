//! A bounded single-producer single-consumer ring between two processes
//! (or two threads): [`Producer`] and [`Consumer`], created and opened by a
//! segment's name, or made in this process with [`channel`].
//!
//! Each message is written straight into a shared slot and read in place
//! ([`Producer::reserve`], [`Consumer::recv_ref`]) or by value. A side that
//! has to wait spins briefly, then sleeps on a futex in the segment; the other
//! side wakes it only if it is asleep. When one end drops or its process
//! dies, the other learns it: a receiver gets [`RecvError::Disconnected`]
//! once it has drained what was sent, a sender gets its value back.
//!
//! The protocol, its invariant and its memory orderings are stated in
//! `src/ring/spsc.rs`.

use std::ptr::NonNull;
use std::sync::Arc;

use bytemuck::Pod;

use crate::error::CreateError;
#[allow(unused_imports)] // doc links
use crate::error::RecvError;
use crate::ring::spsc::{Control, Ring, Slot};
use crate::shm::backing::Backing;
use crate::shm::peer::Identity;
use crate::sync::wait::Wait;
use crate::sync::Barrier;

/// What both ends show alike: the ring's fill level and capacity, whether
/// the other end (`$peer`, named `$name`) has gone or died (`$gone` says
/// what that leaves), and how long a blocked `$op` spins.
macro_rules! observers {
    ($peer:ident, $name:literal, $gone:literal, $op:literal) => {
        /// How many messages the ring holds (a snapshot: the other end may be
        /// changing it as you look).
        pub fn len(&self) -> usize {
            self.ring.len()
        }

        /// Whether the ring holds no message.
        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }

        /// Whether the ring has no free slot.
        pub fn is_full(&self) -> bool {
            self.len() == self.capacity()
        }

        /// Messages the ring holds at most: the capacity it was created with.
        pub fn capacity(&self) -> usize {
            self.ring.capacity() as usize
        }

        #[doc = concat!("Whether the ", $name, " has gone (dropped its end, or its process died).")]
        #[doc = $gone]
        pub fn is_disconnected(&self) -> bool {
            self.ring.ctl().peers.$peer.state(true) == PeerState::Gone
        }

        #[doc = concat!("The ", $name, "'s process id if its process died without dropping its")]
        /// end (a crash, SIGKILL, `exit`): the reason behind a `Disconnected`.
        /// `None` while it runs, and if it dropped its end.
        pub fn peer_died(&self) -> Option<u32> {
            self.ring.ctl().peers.$peer.died()
        }

        #[doc = concat!("Sets how many spin-loop steps a blocked ", $op, " spins before it")]
        /// sleeps; `u32::MAX` spins forever (busy-poll: lowest latency, one
        /// core kept busy).
        pub fn set_spin(&mut self, spin: u32) {
            self.ring.wait.spin = spin;
        }
    };
}

mod consumer;
#[cfg(not(loom))]
mod named;
#[cfg(not(loom))]
pub(crate) use named::LAYOUT;
mod producer;

pub use consumer::{Consumer, IntoIter, Iter, RecvRef, TryIter};
pub use producer::{Producer, SendSlot};

/// Both ends of an in-process ring share this allocation.
struct Heap<T> {
    ctl: Control,
    slots: Box<[Slot<T>]>,
}

// SAFETY: the two ends that share a `Heap` touch its slots only as the ring
// protocol allows (module invariant); everything else in it is atomic.
unsafe impl<T: Send> Send for Heap<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Heap<T> {}

fn check_shape<T>(capacity: usize) -> Result<u64, CreateError> {
    crate::shm::backing::check_element::<T>()?;
    crate::shm::backing::check_bound(capacity)
}

/// Creates an in-process ring: both ends in this process, memory on the heap.
/// Useful between threads, in tests, and as the ring that loom models run.
///
/// # Errors
/// [`CreateError::InvalidCapacity`] for a capacity of 0, or one too large
/// for this process's memory (any other up to 2^40 is held exactly),
/// [`CreateError::UnsupportedType`] for a zero-sized `T`.
///
/// # Examples
/// ```
/// let (mut tx, mut rx) = procring::spsc::channel::<u64>(8)?;
/// tx.send(7)?;
/// assert_eq!(rx.recv()?, 7);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn channel<T: Pod + Send>(capacity: usize) -> Result<(Producer<T>, Consumer<T>), CreateError> {
    let cap = check_shape::<T>(capacity)?;
    let n = crate::ring::slots_for(cap) as usize;
    let mut slots = Vec::new();
    slots
        .try_reserve_exact(n)
        .map_err(|_| CreateError::InvalidCapacity { capacity, reason: "too large for this process's memory" })?;
    slots.extend((0..n).map(|_| Slot::new()));
    let heap = Arc::new(Heap { ctl: Control::new(), slots: slots.into_boxed_slice() });
    #[cfg(not(loom))]
    let barrier = crate::shm::backing::local_barrier();
    #[cfg(loom)]
    let barrier = Barrier::Symmetric;
    let (p, c) = (heap_ring(&heap, cap, barrier), heap_ring(&heap, cap, barrier));
    // Fresh slots: both attaches succeed.
    let _ = heap.ctl.peers.producer.attach(Identity::local());
    let _ = heap.ctl.peers.consumer.attach(Identity::local());
    Ok((Producer::new(p), Consumer::new(c)))
}

fn heap_ring<T: Pod + Send>(heap: &Arc<Heap<T>>, bound: u64, barrier: Barrier) -> Ring<T> {
    Ring {
        ctl: NonNull::from(&heap.ctl),
        slots: NonNull::new(heap.slots.as_ptr().cast_mut()).expect("a boxed slice is never null"),
        mask: heap.slots.len() as u64 - 1,
        bound,
        barrier,
        wait: Wait::local(),
        backing: Backing::Local(heap.clone()),
    }
}
