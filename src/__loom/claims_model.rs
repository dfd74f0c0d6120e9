//! A queue of `u64`s whose handles act as separate (made-up) processes,
//! each with its own row in an attachment table, for the loom models of
//! claims and death.

use std::sync::Arc;

use std::ptr::NonNull;

use crate::ring::mpmc::{Claim, Claims, Control, End, Mpmc, Slots, Stop, LOOM_WORDS};
use crate::shm::peer::{Identity, Row, Table};
use crate::sync::Barrier;

/// The queue's memory: control block, slots, attachment table.
#[derive(Debug)]
pub struct Shared {
    ctl: Box<Control>,
    slots: Slots,
    rows: Box<[Row]>,
    cap: u64,
}

// SAFETY: all shared state is loom atomics, and slot payloads are
// accessed only as the ring protocol allows (loom checks that).
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

/// A queue of capacity `cap` (at least 1) with room for
/// `processes` attached processes.
pub fn queue(cap: u64, processes: usize) -> Arc<Shared> {
    let shared = Shared {
        ctl: Box::new(Control::new()),
        slots: Slots::new_loom(cap),
        rows: (0..processes).map(|_| Row::default()).collect(),
        cap,
    };
    Arc::new(shared)
}

/// One process's handle.
#[derive(Debug)]
pub struct Process {
    ring: Mpmc,
    pid: u32,
    _shared: Arc<Shared>,
}

// SAFETY: as a `Queue`'s handles: the ring's pointers point into
// `_shared`, kept alive here, and the protocol makes use from several
// threads sound (which is what the models check).
unsafe impl Send for Process {}
// SAFETY: as above.
unsafe impl Sync for Process {}

impl Process {
    /// Attaches made-up process `pid` (> 0), counted as a sender and a
    /// receiver (its handles are never uncounted: a model's processes
    /// keep them to the end, or die with them).
    pub fn attach(shared: &Arc<Shared>, pid: u32) -> Self {
        Self::attach_ends(shared, pid, true, true)
    }

    /// As [`Process::attach`], counted as a sender and/or a receiver
    /// (see "Disconnection").
    pub fn attach_ends(shared: &Arc<Shared>, pid: u32, sender: bool, receiver: bool) -> Self {
        let p = Self::attach_row(shared, pid);
        for (yes, end) in [(sender, End::Sender), (receiver, End::Receiver)] {
            if yes {
                p.ring.attach_end(end);
            }
        }
        p
    }

    fn attach_row(shared: &Arc<Shared>, pid: u32) -> Self {
        // SAFETY: the rows live in `shared`, which this handle keeps.
        let table = unsafe { Table::new(NonNull::from(&shared.rows[0]), shared.rows.len()) };
        let row = table
            .attach(Identity::fake(pid), crate::shm::peer::role::SEND | crate::shm::peer::role::RECV)
            .expect("a row");
        let mine = NonNull::from(row.row());
        // The row stays attached for the model's life (a dead process
        // never detaches; a live one need not).
        std::mem::forget(row);
        // SAFETY: the control block, slots and rows live in `shared`.
        let ring = unsafe {
            Mpmc::new(
                NonNull::from(&*shared.ctl),
                shared.slots.clone(),
                shared.cap,
                Barrier::Symmetric,
                Some(Claims::new(table, mine)),
            )
        };
        Self { ring, pid, _shared: shared.clone() }
    }

    fn write(&self, claim: Claim, words: usize, value: u64) {
        let p = self.ring.payload_mut(claim);
        for i in 0..words {
            // SAFETY: a claimed slot's payload of LOOM_WORDS words.
            unsafe { p.ptr.cast::<u64>().add(i).write(value) };
        }
        p.end();
    }

    /// Receives until the queue is disconnected (no sender left in a
    /// live process) and drained, looking into dead processes whenever
    /// it finds nothing; returns what it received.
    pub fn recv_until_disconnected(&self) -> Vec<u64> {
        let mut got = Vec::new();
        loop {
            match self.ring.claim_recv_now() {
                Ok(claim) => {
                    let p = self.ring.payload_ref(claim);
                    // SAFETY: a claimed slot's payload of LOOM_WORDS words.
                    got.push(unsafe { p.ptr.cast::<u64>().read() });
                    p.end();
                    self.ring.release(claim);
                }
                Err(Stop::NotNow) => {
                    if !self.ring.look_into_the_dead(End::Sender) {
                        loom::thread::yield_now();
                    }
                }
                Err(Stop::Closed) => return got,
                Err(e) => panic!("{e:?}"),
            }
        }
    }

    /// Sends `value` in all of a slot's words, if there is room now.
    pub fn try_send(&self, value: u64) -> bool {
        let Ok(claim) = self.ring.claim_send_now() else { return false };
        self.write(claim, LOOM_WORDS, value);
        self.ring.publish(claim, true);
        true
    }

    /// Sends `value`, resolving dead processes' claims while the queue
    /// is full; `false` if `tries` attempts found no room.
    pub fn send(&self, value: u64, mut tries: u32) -> bool {
        loop {
            if self.try_send(value) {
                return true;
            }
            if self.ring.recover() {
                continue;
            }
            if tries == 0 {
                return false;
            }
            tries -= 1;
            loom::thread::yield_now();
        }
    }

    /// Claims a message, reads part of it, and dies.
    pub fn recv_and_die(self) {
        let claim = self.ring.claim_recv_now().expect("a message to claim");
        let p = self.ring.payload_ref(claim);
        // SAFETY: a claimed slot's payload.
        let _first = unsafe { p.ptr.cast::<u64>().read() };
        self.die();
    }

    /// Claims a slot, writes half of it, and dies.
    pub fn claim_and_die(self, value: u64) {
        let claim = self.ring.claim_send_now().expect("room to claim");
        self.write(claim, LOOM_WORDS / 2, value);
        self.die();
    }

    /// Claims a slot as a zero-copy guard does (held past the call),
    /// sends `value` while holding it, and dies without publishing it.
    pub fn hold_send_and_die(self, value: u64) {
        let guard = self.ring.claim_send_now().expect("room to claim");
        self.ring.hold(guard);
        assert!(self.try_send(value), "room for a second message");
        self.die();
    }

    /// Dies: a dead process runs no destructors (its claim words and
    /// handle counts stay as they are).
    pub fn die(self) {
        crate::shm::peer::loom_kill(self.pid);
        std::mem::forget(self);
    }

    /// Receives a message, resolving dead processes' claims while the
    /// queue has none for it: `None` once `tries` attempts found nothing
    /// (a model cannot spin for ever), or, if `tries` is `None`, once the
    /// queue is empty and every claim is resolved. Asserts that what it
    /// receives is whole.
    pub fn recv(&self, mut tries: Option<u32>) -> Option<u64> {
        loop {
            match self.ring.claim_recv_now() {
                Ok(claim) => {
                    let p = self.ring.payload_ref(claim);
                    // SAFETY: a claimed slot's payload of LOOM_WORDS words.
                    let words: Vec<u64> =
                        (0..LOOM_WORDS).map(|i| unsafe { p.ptr.cast::<u64>().add(i).read() }).collect();
                    p.end();
                    self.ring.release(claim);
                    assert!(words.iter().all(|&w| w == words[0]), "a half-written message was delivered: {words:?}");
                    return Some(words[0]);
                }
                Err(Stop::NotNow) => {
                    if self.ring.recover() {
                        continue;
                    }
                    // Nothing claimed beyond `head`: truly empty.
                    match &mut tries {
                        None if self.ring.len() == 0 => return None,
                        Some(0) => return None,
                        Some(n) => *n -= 1,
                        None => {}
                    }
                    loom::thread::yield_now();
                }
                // Closed and drained.
                Err(Stop::Closed) => return None,
                Err(e) => panic!("{e:?}"),
            }
        }
    }

    /// Closes the queue; whether this call closed it.
    pub fn close(&self) -> bool {
        self.ring.close()
    }

    /// Whether the queue is closed.
    pub fn is_closed(&self) -> bool {
        self.ring.is_closed()
    }

    /// Claims resolved because their process died.
    pub fn abandoned(&self) -> u64 {
        self.ring.abandoned()
    }

    /// This process's claim words that announce an unfinished claim,
    /// or are taken, or held by a guard.
    pub fn claims_in_use(&self) -> usize {
        self.ring.claims_in_use()
    }
}
