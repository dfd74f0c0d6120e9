//! Pipes in named segments: `create` and `open`, duplex and simplex.

use super::*;
use crate::error::OpenError;
use crate::shm::header::{init_control, Expected, Kind, Layout, TypeInfo};
use crate::shm::object::Object;
use crate::shm::Options;

const CTL: usize = std::mem::size_of::<Control>();

/// A pipe's segment: a control block per direction, then a byte ring of
/// `capacity` bytes per direction (the "element size" is the number of
/// directions).
pub(crate) const LAYOUT: Layout = Layout {
    kind: Kind::Pipe,
    ctl_len: 2 * CTL,
    data_len: |dirs, _, capacity| usize::try_from(capacity).ok()?.checked_mul(dirs as usize),
    init: init_controls,
};

/// `Layout::init`: a fresh control block per direction.
///
/// # Safety
/// As `Layout::init`.
unsafe fn init_controls(ctl: NonNull<u8>) {
    // SAFETY: the caller's contract; `ctl_len` holds two control blocks,
    // each 128-aligned.
    unsafe {
        init_control::<Control>(ctl);
        init_control::<Control>(ctl.add(CTL));
    }
}

fn expected(dirs: u32, capacity: u64) -> Expected {
    Expected::new(LAYOUT, TypeInfo::pipe(dirs), capacity)
}

/// The rings' parts in `object`, and the shared handle that owns it.
fn shared_in(object: Object, dirs: usize) -> Shared {
    let (ctl0, data, cap) = (object.ctl(), object.data(), object.capacity);
    // SAFETY: the segment holds two control blocks at `ctl` (CTL bytes
    // each; CTL is a multiple of 128) and `dirs` buffers of `cap` bytes at
    // `data`: we laid it out, or validated its header against this layout.
    let (ctl, buffers) = unsafe {
        (
            [ctl0.cast::<Control>(), ctl0.add(CTL).cast::<Control>()],
            (0..dirs).map(|d| Buffer::new(data.add(d * cap as usize), cap)).collect(),
        )
    };
    Shared { ctl, buffers, barrier: object.barrier, _backing: object.into_backing() }
}

/// Creates a pipe segment, takes `roles` in it, then lets openers in.
fn create(
    name: &str,
    capacity: usize,
    dirs: u32,
    roles: &[(usize, Role)],
    opts: &Options,
) -> Result<Arc<Shared>, CreateError> {
    let cap = check_capacity(capacity)?;
    let object = Object::create(name, &expected(dirs, cap), opts, role_bits(roles))?;
    let publish = object.publisher();
    let shared = shared_in(object, dirs as usize);
    for &(dir, role) in roles {
        // Fresh slots: the roles cannot be taken.
        let _ = attach(&shared, dir, role, Identity::this_process());
    }
    publish.publish();
    Ok(Arc::new(shared))
}

fn open(name: &str, dirs: u32, roles: &[(usize, Role)], opts: &Options) -> Result<Arc<Shared>, OpenError> {
    let object = Object::open(name, &expected(dirs, 0), opts, role_bits(roles))?;
    let seg_name = object.name().to_owned();
    let shared = shared_in(object, dirs as usize);
    for &(dir, role) in roles {
        attach(&shared, dir, role, Identity::this_process()).map_err(|r| r.into_open_error(&seg_name, role.name()))?;
    }
    Ok(Arc::new(shared))
}

/// The attachment-table role of the pipe roles taken.
fn role_bits(roles: &[(usize, Role)]) -> u32 {
    roles.iter().fold(0, |r, &(_, role)| r | role.bits())
}

// Direction 0 carries creator → opener, direction 1 opener → creator.
const CREATOR: [(usize, Role); 2] = [(0, Role::Producer), (1, Role::Consumer)];
const OPENER: [(usize, Role); 2] = [(0, Role::Consumer), (1, Role::Producer)];

impl Pipe {
    /// Creates a duplex pipe in a new segment named `name`, `capacity`
    /// bytes each way, and returns this end; the other process
    /// [`open`](Pipe::open)s the other end. The name is removed when
    /// this end drops.
    ///
    /// # Errors
    /// [`CreateError`]: a bad name or capacity (a power of two, 64 B to
    /// 4 GiB), a name that exists, no permission, or a system error.
    pub fn create(name: &str, capacity: usize) -> Result<Connection, CreateError> {
        Self::create_with(name, capacity, &Options::new())
    }

    /// As [`Pipe::create`], with [`Options`].
    ///
    /// # Errors
    /// As [`Pipe::create`].
    pub fn create_with(name: &str, capacity: usize, opts: &Options) -> Result<Connection, CreateError> {
        let shared = create(name, capacity, 2, &CREATOR, opts)?;
        let wait = opts.wait();
        Ok(Connection { tx: Sender::new(shared.clone(), 0, wait), rx: Receiver::new(shared, 1, wait) })
    }

    /// Opens the other end of the duplex pipe in segment `name`.
    ///
    /// # Errors
    /// [`OpenError`]: no such segment, not a duplex pipe, a corrupt or
    /// incompatible header, or the end already taken.
    pub fn open(name: &str) -> Result<Connection, OpenError> {
        Self::open_with(name, &Options::new())
    }

    /// As [`Pipe::open`], with [`Options`].
    ///
    /// # Errors
    /// As [`Pipe::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Connection, OpenError> {
        let shared = open(name, 2, &OPENER, opts)?;
        let wait = opts.wait();
        Ok(Connection { tx: Sender::new(shared.clone(), 1, wait), rx: Receiver::new(shared, 0, wait) })
    }

    /// Creates a simplex pipe in a new segment and returns its sending end.
    ///
    /// # Errors
    /// As [`Pipe::create`].
    pub fn create_sender(name: &str, capacity: usize, opts: &Options) -> Result<Sender, CreateError> {
        let shared = create(name, capacity, 1, &[(0, Role::Producer)], opts)?;
        Ok(Sender::new(shared, 0, opts.wait()))
    }

    /// Creates a simplex pipe in a new segment and returns its receiving end.
    ///
    /// # Errors
    /// As [`Pipe::create`].
    pub fn create_receiver(name: &str, capacity: usize, opts: &Options) -> Result<Receiver, CreateError> {
        let shared = create(name, capacity, 1, &[(0, Role::Consumer)], opts)?;
        Ok(Receiver::new(shared, 0, opts.wait()))
    }

    /// Opens the sending end of the simplex pipe in segment `name`.
    ///
    /// # Errors
    /// As [`Pipe::open`] (a duplex pipe is not a simplex one).
    pub fn open_sender(name: &str, opts: &Options) -> Result<Sender, OpenError> {
        let shared = open(name, 1, &[(0, Role::Producer)], opts)?;
        Ok(Sender::new(shared, 0, opts.wait()))
    }

    /// Opens the receiving end of the simplex pipe in segment `name`.
    ///
    /// # Errors
    /// As [`Pipe::open`].
    pub fn open_receiver(name: &str, opts: &Options) -> Result<Receiver, OpenError> {
        let shared = open(name, 1, &[(0, Role::Consumer)], opts)?;
        Ok(Receiver::new(shared, 0, opts.wait()))
    }
}
