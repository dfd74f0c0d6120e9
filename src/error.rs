//! Error types, one per concern, in the style of `std::sync::mpsc` and
//! crossbeam-channel: a failed send hands the value back, and every error
//! says what happened in words a user can act on.

use std::fmt;
use std::io;
use std::time::Duration;

/// Why a named segment could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// The name is not a valid shared-memory name.
    #[error("invalid segment name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A segment of that name exists already (creation is exclusive).
    #[error("a segment named {0:?} already exists (open it, or remove it with `procring rm`)")]
    AlreadyExists(String),
    /// The caller may not create that name.
    #[error("permission denied creating segment {0:?}")]
    PermissionDenied(String),
    /// The capacity is zero, too large, or (a pipe's) not a power of two.
    #[error("invalid capacity {capacity}: {reason}")]
    InvalidCapacity {
        /// The capacity as given.
        capacity: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The element type cannot live in a ring (for example, it is zero-sized).
    #[error("unsupported element type {type_name}: {reason}")]
    UnsupportedType {
        /// The Rust name of the type.
        type_name: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The shared-memory file system (`/dev/shm`) has too little room left.
    #[error("no room for segment {name:?}: it needs {needed} bytes and /dev/shm has {free} free")]
    NoSpace {
        /// The segment's name.
        name: String,
        /// Bytes the segment needs.
        needed: u64,
        /// Bytes free on the file system when creation failed.
        free: u64,
    },
    /// Any other system error, with the call that failed.
    #[error("cannot create segment {name:?}: {op}: {source}")]
    Io {
        /// The segment's name.
        name: String,
        /// The operation that failed (`shm_open`, `ftruncate`, `mmap`).
        op: &'static str,
        /// The system's error.
        source: io::Error,
    },
}

/// Why a named segment could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The name is not a valid shared-memory name.
    #[error("invalid segment name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No segment of that name exists.
    #[error("no segment named {0:?}")]
    NotFound(String),
    /// The caller may not open that segment (another user's, or mode 0600).
    #[error("permission denied opening segment {0:?} (see docs/design.md on sharing between users)")]
    PermissionDenied(String),
    /// The creator never published the header within the wait.
    #[error(
        "segment {name:?} did not become ready within {waited:?} (its creator may have died while initialising it)"
    )]
    NotReady {
        /// The segment's name.
        name: String,
        /// How long `open` waited.
        waited: Duration,
    },
    /// The segment is not a procring segment, or its header is inconsistent.
    #[error("segment {name:?} is corrupt or not a procring segment: {what}")]
    Corrupt {
        /// The segment's name.
        name: String,
        /// What does not hold.
        what: String,
    },
    /// The segment was made by an incompatible version of procring.
    #[error("segment {name:?} has layout version {found}, this build reads version {expected}")]
    VersionMismatch {
        /// The segment's name.
        name: String,
        /// Version in the segment.
        found: u32,
        /// Version this build writes and reads.
        expected: u32,
    },
    /// The segment holds another kind of object (a Queue opened as a ring...).
    #[error("segment {name:?} holds a {found}, not a {expected}")]
    KindMismatch {
        /// The segment's name.
        name: String,
        /// Kind in the segment.
        found: &'static str,
        /// Kind the caller asked for.
        expected: &'static str,
    },
    /// The segment's element type is not the caller's.
    #[error("segment {name:?} holds elements of {found}, not {expected}")]
    TypeMismatch {
        /// The segment's name.
        name: String,
        /// What the segment's header records.
        found: String,
        /// What the caller asked for.
        expected: String,
    },
    /// The role asked for (producer, consumer) is held by a live process.
    #[error("segment {name:?} already has a {role} attached (pid {pid})")]
    RoleTaken {
        /// The segment's name.
        name: String,
        /// The role asked for.
        role: &'static str,
        /// The process holding it.
        pid: u32,
    },
    /// The segment needs a kernel feature this process cannot use.
    #[error("segment {name:?} needs {what}, which this process cannot use")]
    Unsupported {
        /// The segment's name.
        name: String,
        /// The missing feature.
        what: &'static str,
    },
    /// Every process attached to the segment died without detaching
    /// (`Options::open_stale` opens it anyway; `procring rm` removes it).
    #[error("segment {name:?} is stale: every process attached to it ({dead:?}) has died")]
    Stale {
        /// The segment's name.
        name: String,
        /// The dead processes still recorded as attached.
        dead: Vec<u32>,
    },
    /// The segment's attachment table is full of live processes
    /// (`Options::peers` sets its size at creation).
    #[error("segment {name:?} already has {rows} processes attached, as many as it was created for")]
    TooManyPeers {
        /// The segment's name.
        name: String,
        /// The table's size.
        rows: u32,
    },
    /// Any other system error, with the call that failed.
    #[error("cannot open segment {name:?}: {op}: {source}")]
    Io {
        /// The segment's name.
        name: String,
        /// The operation that failed (`shm_open`, `fstat`, `mmap`).
        op: &'static str,
        /// The system's error.
        source: io::Error,
    },
}

/// Writes `Variant(..)` without requiring `T: Debug`.
macro_rules! debug_opaque {
    ($f:expr, $name:literal) => {
        $f.write_str(concat!($name, "(..)"))
    };
}

/// A blocking send failed because the receiving side is gone. The value is
/// handed back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct SendError<T>(pub T);

impl<T> SendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_opaque!(f, "SendError")
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a closed or disconnected channel")
    }
}

impl<T> std::error::Error for SendError<T> {}

/// A non-blocking send failed. The value is handed back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum TrySendError<T> {
    /// The ring is full right now.
    Full(T),
    /// The receiving side is gone.
    Disconnected(T),
}

impl<T> TrySendError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            Self::Full(t) | Self::Disconnected(t) => t,
        }
    }

    /// Whether the ring was full.
    pub fn is_full(&self) -> bool {
        matches!(self, Self::Full(_))
    }

    /// Whether the receiving side is gone.
    pub fn is_disconnected(&self) -> bool {
        matches!(self, Self::Disconnected(_))
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => debug_opaque!(f, "Full"),
            Self::Disconnected(_) => debug_opaque!(f, "Disconnected"),
        }
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full(_) => f.write_str("sending on a full channel"),
            Self::Disconnected(_) => f.write_str("sending on a closed or disconnected channel"),
        }
    }
}

impl<T> std::error::Error for TrySendError<T> {}

impl<T> From<SendError<T>> for TrySendError<T> {
    fn from(e: SendError<T>) -> Self {
        Self::Disconnected(e.0)
    }
}

/// A timed send failed. The value is handed back.
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum SendTimeoutError<T> {
    /// The ring stayed full until the deadline.
    Timeout(T),
    /// The receiving side is gone.
    Disconnected(T),
}

impl<T> SendTimeoutError<T> {
    /// The value that was not sent.
    pub fn into_inner(self) -> T {
        match self {
            Self::Timeout(t) | Self::Disconnected(t) => t,
        }
    }

    /// Whether the deadline passed.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout(_))
    }
}

impl<T> fmt::Debug for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(_) => debug_opaque!(f, "Timeout"),
            Self::Disconnected(_) => debug_opaque!(f, "Disconnected"),
        }
    }
}

impl<T> fmt::Display for SendTimeoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(_) => f.write_str("timed out waiting for room in the channel"),
            Self::Disconnected(_) => f.write_str("sending on a closed or disconnected channel"),
        }
    }
}

impl<T> std::error::Error for SendTimeoutError<T> {}

/// A blocking receive failed: the ring is empty and the sending side is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// The ring is drained and the sending side is gone (dropped or died).
    #[error("receiving on an empty and closed or disconnected channel")]
    Disconnected,
    /// The shared positions are impossible (written by a buggy or hostile
    /// process); nothing was read.
    #[error("the channel's shared state is corrupt: {0}")]
    Corrupt(&'static str),
}

/// A non-blocking receive failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TryRecvError {
    /// The ring is empty right now.
    #[error("receiving on an empty channel")]
    Empty,
    /// The ring is drained and the sending side is gone (dropped or died).
    #[error("receiving on an empty and closed or disconnected channel")]
    Disconnected,
    /// The shared positions are impossible; nothing was read.
    #[error("the channel's shared state is corrupt: {0}")]
    Corrupt(&'static str),
}

/// A timed receive failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvTimeoutError {
    /// Nothing arrived before the deadline.
    #[error("timed out waiting on an empty channel")]
    Timeout,
    /// The ring is drained and the sending side is gone (dropped or died).
    #[error("receiving on an empty and closed or disconnected channel")]
    Disconnected,
    /// The shared positions are impossible; nothing was read.
    #[error("the channel's shared state is corrupt: {0}")]
    Corrupt(&'static str),
}

impl From<RecvError> for TryRecvError {
    fn from(e: RecvError) -> Self {
        match e {
            RecvError::Disconnected => Self::Disconnected,
            RecvError::Corrupt(w) => Self::Corrupt(w),
        }
    }
}

impl From<RecvError> for RecvTimeoutError {
    fn from(e: RecvError) -> Self {
        match e {
            RecvError::Disconnected => Self::Disconnected,
            RecvError::Corrupt(w) => Self::Corrupt(w),
        }
    }
}

/// Sending a variable-length message (bytes, or a serialized value) failed.
/// The message was taken by reference, so there is nothing to hand back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageSendError {
    /// The message (or the value, serialized) is larger than a message may
    /// ever be in this channel.
    #[error("the message is {size} bytes, more than the {limit} a message may hold")]
    TooLarge {
        /// Its serialized size.
        size: usize,
        /// The most a message may hold.
        limit: usize,
    },
    /// No room right now (non-blocking send).
    #[error("sending on a full channel")]
    Full,
    /// No room before the deadline (timed send).
    #[error("timed out waiting for room in the channel")]
    Timeout,
    /// The channel is closed, or its receiving side is gone.
    #[error("sending on a closed or disconnected channel")]
    Disconnected,
    /// The value could not be serialized.
    #[error("cannot serialize the value: {0}")]
    Encode(String),
}

/// Receiving a variable-length message (bytes, or a serialized value) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageRecvError {
    /// Nothing ready right now (non-blocking receive).
    #[error("receiving on an empty channel")]
    Empty,
    /// Nothing arrived before the deadline (timed receive).
    #[error("timed out waiting on an empty channel")]
    Timeout,
    /// The channel is closed and drained, or its sending side is gone.
    #[error("receiving on an empty and closed or disconnected channel")]
    Disconnected,
    /// The message is not a valid encoding of the type asked for (the
    /// message was consumed).
    #[error("cannot deserialize the message: {0}")]
    Decode(String),
    /// The caller's buffer is too small for the next message, which is
    /// left unread.
    #[error("the next message is {needed} bytes, larger than the buffer")]
    BufferTooSmall {
        /// The message's length.
        needed: usize,
    },
    /// The shared state or a message's length is impossible.
    #[error("the channel's shared state is corrupt: {0}")]
    Corrupt(&'static str),
}

/// The lock's previous holder died while holding it.
///
/// The caller holds the lock now: [`OwnerDied::into_guard`] hands the guard
/// over. What the lock protects is whole — a holder publishes its changes
/// all at once, on release — and holds the last value that was published
/// (the dead holder's unpublished changes are lost). Reported once, to the
/// next caller of `lock` (a plain `store` that takes the lock over leaves
/// the report for it).
pub struct OwnerDied<G> {
    pid: u32,
    guard: G,
}

impl<G> OwnerDied<G> {
    pub(crate) fn new(pid: u32, guard: G) -> Self {
        Self { pid, guard }
    }

    /// The process id of the holder that died.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The guard: the lock is held, the value is the last one published.
    pub fn into_guard(self) -> G {
        self.guard
    }
}

impl<G> fmt::Debug for OwnerDied<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnerDied").field("pid", &self.pid).finish_non_exhaustive()
    }
}

impl<G> fmt::Display for OwnerDied<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the lock's holder (pid {}) died holding it; the lock is yours, and the value is the last one published",
            self.pid
        )
    }
}

impl<G> std::error::Error for OwnerDied<G> {}

/// Why `try_lock` or `lock_timeout` returned without the lock, or with the
/// news that its last holder died.
pub enum TryLockError<G> {
    /// Another live process or thread holds the lock (for `lock_timeout`:
    /// still did when the time ran out).
    WouldBlock,
    /// The lock was taken over from a holder that died: see [`OwnerDied`].
    OwnerDied(OwnerDied<G>),
}

impl<G> fmt::Debug for TryLockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryLockError::WouldBlock => f.write_str("WouldBlock"),
            TryLockError::OwnerDied(e) => f.debug_tuple("OwnerDied").field(e).finish(),
        }
    }
}

impl<G> fmt::Display for TryLockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryLockError::WouldBlock => f.write_str("the lock is held by a live process or thread"),
            TryLockError::OwnerDied(e) => e.fmt(f),
        }
    }
}

impl<G> std::error::Error for TryLockError<G> {}

impl<G> From<OwnerDied<G>> for TryLockError<G> {
    fn from(e: OwnerDied<G>) -> Self {
        TryLockError::OwnerDied(e)
    }
}

/// An index past the end of an [`Array`](crate::Array).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("index {index} is out of range for an array of {len} elements")]
pub struct OutOfBounds {
    /// The index given.
    pub index: usize,
    /// The array's length.
    pub len: usize,
}
