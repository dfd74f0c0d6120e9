//! Internals exposed for the loom models in `loom-tests/`; not a stable API.
//! Everything the models need from inside the crate is reached from here.

#[cfg(loom)]
pub mod claims_model;
pub use crate::lock::seqlock::{Death, SeqLock};
pub use crate::sync::wait::EventCount;

/// The robust mutex, as a process `pid` (> 0) takes it: `timed` waits
/// in slices (and checks the holder's life after each), otherwise it
/// sleeps until woken, so a lost wakeup is a deadlock.
#[derive(Debug, Default)]
pub struct Mutex(crate::lock::mutex::RobustMutex);

impl Mutex {
    /// A free mutex.
    pub fn new() -> Self {
        Self(crate::lock::mutex::RobustMutex::new())
    }

    /// Takes it; returns the pid of a dead holder it was taken from.
    pub fn lock(&self, pid: u32, timed: bool) -> Option<u32> {
        let wait = crate::sync::wait::Wait { spin: 0, slice: timed.then_some(std::time::Duration::from_millis(1)) };
        match self.0.lock(Self::me(pid), &wait, crate::sync::wait::Deadline::Never, None).expect("no deadline") {
            crate::lock::mutex::Taken::Clean => None,
            crate::lock::mutex::Taken::Recovered(dead) => Some(dead),
        }
    }

    /// Releases it.
    pub fn unlock(&self) {
        self.0.unlock();
    }

    fn me(pid: u32) -> crate::shm::peer::Identity {
        #[cfg(loom)]
        return crate::shm::peer::Identity::fake(pid);
        #[cfg(not(loom))]
        crate::shm::peer::Identity { pid, start: 0 }
    }
}

/// The header a pipe record at byte position `pos` with a `len`-byte
/// message carries.
#[cfg(loom)]
pub fn pipe_header(pos: u64, len: u64) -> u64 {
    crate::ring::bytes::Header::new(pos, false, len).bits()
}

/// A receive from `q` that finds the next message or nothing, without
/// the honest `try_recv`'s wait for a send under way that messages are
/// queued behind (which has a model of its own).
#[cfg(loom)]
pub fn try_recv_quick<T: bytemuck::Pod>(q: &crate::queue::api::Queue<T>) -> Option<T> {
    q.try_recv_quick()
}

/// Declares made-up process `pid` dead (it stops; nothing runs for it).
#[cfg(loom)]
pub fn kill(pid: u32) {
    crate::shm::peer::loom_kill(pid);
}

/// Wait/notify on an eventcount with the symmetric barrier (loom's only one).
pub fn notify(ec: &EventCount) {
    ec.notify(crate::sync::Barrier::Symmetric);
}

/// Waits (no timeout, no spinning) until `poll` returns `Some`.
pub fn wait<R>(ec: &EventCount, poll: impl FnMut(bool) -> Option<R>) -> R {
    let wait = crate::sync::wait::Wait { spin: 0, slice: None };
    ec.wait_until(crate::sync::Barrier::Symmetric, &wait, crate::sync::wait::Deadline::Never, poll)
        .expect("no deadline: waits until ready")
}
