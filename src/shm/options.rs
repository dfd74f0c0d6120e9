//! Options for creating and opening segments.

use std::time::Duration;

/// Options for creating and opening segments.
///
/// ```no_run
/// use procring::{spsc::Producer, Options};
///
/// let opts = Options::new().mode(0o660).keep(true).busy_poll();
/// let tx = Producer::<u64>::create_with("/shared-with-group", 4096, &opts)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub(crate) mode: u32,
    pub(crate) keep: bool,
    pub(crate) spin: u32,
    pub(crate) open_timeout: Duration,
    pub(crate) peers: u32,
    pub(crate) open_stale: bool,
    pub(crate) reclaim_stale: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self::new()
    }
}

impl Options {
    /// Spin-loop steps a blocked call spins before sleeping, by default.
    pub const DEFAULT_SPIN: u32 = crate::sync::wait::DEFAULT_SPIN;

    /// Defaults: mode `0o600`, the creator removes the name on drop, a short
    /// spin before sleeping, and `open` waits up to one second for a creator
    /// that is still initialising the segment.
    pub fn new() -> Self {
        Self {
            mode: 0o600,
            keep: false,
            spin: crate::sync::wait::DEFAULT_SPIN,
            open_timeout: Duration::from_secs(1),
            peers: super::peer::DEFAULT_ROWS,
            open_stale: false,
            reclaim_stale: false,
        }
    }

    /// Permission bits for a new segment (default `0o600`: this user only).
    /// Applied exactly, whatever the process umask.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode & 0o777;
        self
    }

    /// How a blocked call on an object in a segment waits.
    pub(crate) fn wait(&self) -> crate::sync::wait::Wait {
        crate::sync::wait::Wait::shared(self.spin)
    }

    /// Keep the segment's name after the creating handle drops (default:
    /// removed). A kept segment is removed with [`unlink`](crate::unlink) or `procring rm`.
    pub fn keep(mut self, keep: bool) -> Self {
        self.keep = keep;
        self
    }

    /// Spin-loop steps a blocked call spins before it sleeps on the futex.
    /// `0` sleeps at once; `u32::MAX` never sleeps (see [`Options::busy_poll`]).
    pub fn spin(mut self, spin: u32) -> Self {
        self.spin = spin;
        self
    }

    /// Never sleep: blocked calls spin (lowest latency, one core kept busy
    /// per waiting side). They still notice a peer's death and their deadline.
    pub fn busy_poll(self) -> Self {
        self.spin(u32::MAX)
    }

    /// How long `open` waits for a segment's creator to finish initialising it.
    pub fn open_timeout(mut self, timeout: Duration) -> Self {
        self.open_timeout = timeout;
        self
    }

    /// How many processes may be attached to a new segment at once (its
    /// attachment table's rows; default 64, at most 4096). Each process's
    /// handles on one object take one row.
    pub fn peers(mut self, rows: u32) -> Self {
        self.peers = rows.clamp(1, super::peer::MAX_ROWS);
        self
    }

    /// Open a segment even if it is stale: every process attached to it
    /// died without detaching (default: [`OpenError::Stale`](crate::error::OpenError::Stale)). For draining
    /// what such processes left behind.
    pub fn open_stale(mut self, yes: bool) -> Self {
        self.open_stale = yes;
        self
    }

    /// When creating a name that exists, remove the segment there and create
    /// anew if it is stale: every process attached to it died, or its
    /// creator died before it became ready (default: off, and the name
    /// existing is [`CreateError::AlreadyExists`](crate::error::CreateError::AlreadyExists)).
    pub fn reclaim_stale(mut self, yes: bool) -> Self {
        self.reclaim_stale = yes;
        self
    }
}
