//! Rings in named segments: `create` and `open` for both ends.

use super::*;
use crate::error::OpenError;
use crate::ring::spsc::Role;
use crate::shm::header::{init_control, Expected, Kind, Layout, TypeInfo};
use crate::shm::object::Object;
use crate::shm::Options;

/// An SPSC ring's segment: its control block, then its slots.
pub(crate) const LAYOUT: Layout = Layout {
    kind: Kind::Spsc,
    ctl_len: std::mem::size_of::<Control>(),
    data_len: crate::ring::slot_region_len,
    init: init_control::<Control>,
};

fn expected<T: crate::message::Message>(capacity: u64) -> Expected {
    Expected::new(LAYOUT, TypeInfo::of::<T>(), capacity)
}

fn ring_in<T>(object: Object, opts: &Options) -> Ring<T> {
    Ring {
        ctl: object.ctl().cast(),
        slots: object.data().cast(),
        mask: crate::ring::slots_for(object.capacity) - 1,
        bound: object.capacity,
        barrier: object.barrier,
        wait: opts.wait(),
        backing: object.into_backing(),
    }
}

fn create<T: crate::message::Message>(
    name: &str,
    capacity: usize,
    opts: &Options,
    role: Role,
) -> Result<Ring<T>, CreateError> {
    let e = expected::<T>(check_shape::<T>(capacity)?);
    let object = Object::create(name, &e, opts, role.bits())?;
    // A fresh slot: the role cannot be taken.
    let _ = region_ctl(&object).peer(role).attach(Identity::this_process());
    object.publish();
    Ok(ring_in(object, opts))
}

fn region_ctl(object: &Object) -> &Control {
    // SAFETY: the object's control block was initialised as a `Control`
    // (by `create`, or by the creator of a segment `open` validated).
    unsafe { object.ctl().cast::<Control>().as_ref() }
}

fn open<T: crate::message::Message>(name: &str, opts: &Options, role: Role) -> Result<Ring<T>, OpenError> {
    let object = Object::open(name, &expected::<T>(0), opts, role.bits())?;
    region_ctl(&object)
        .peer(role)
        .attach(Identity::this_process())
        .map_err(|r| r.into_open_error(object.name(), role.name()))?;
    Ok(ring_in(object, opts))
}

impl<T: crate::message::Message> Producer<T> {
    /// Creates a ring in a new segment named `name` and takes its
    /// producer end. The name is removed when this end drops.
    ///
    /// # Errors
    /// [`CreateError`]: a bad name or capacity, a name that exists, no
    /// permission, or a system error.
    pub fn create(name: &str, capacity: usize) -> Result<Self, CreateError> {
        Self::create_with(name, capacity, &Options::new())
    }

    /// As [`Producer::create`], with [`Options`].
    ///
    /// # Errors
    /// As [`Producer::create`].
    pub fn create_with(name: &str, capacity: usize, opts: &Options) -> Result<Self, CreateError> {
        create(name, capacity, opts, Role::Producer).map(Self::new)
    }

    /// Opens the ring in segment `name` and takes its producer end.
    ///
    /// # Errors
    /// [`OpenError`]: no such segment, not a ring of `T`, a corrupt or
    /// incompatible header, or a producer already attached.
    pub fn open(name: &str) -> Result<Self, OpenError> {
        Self::open_with(name, &Options::new())
    }

    /// As [`Producer::open`], with [`Options`].
    ///
    /// # Errors
    /// As [`Producer::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Self, OpenError> {
        open(name, opts, Role::Producer).map(Self::new)
    }
}

impl<T: crate::message::Message> Consumer<T> {
    /// Creates a ring in a new segment named `name` and takes its
    /// consumer end. The name is removed when this end drops.
    ///
    /// # Errors
    /// As [`Producer::create`].
    pub fn create(name: &str, capacity: usize) -> Result<Self, CreateError> {
        Self::create_with(name, capacity, &Options::new())
    }

    /// As [`Consumer::create`], with [`Options`].
    ///
    /// # Errors
    /// As [`Producer::create`].
    pub fn create_with(name: &str, capacity: usize, opts: &Options) -> Result<Self, CreateError> {
        create(name, capacity, opts, Role::Consumer).map(Self::new)
    }

    /// Opens the ring in segment `name` and takes its consumer end.
    ///
    /// # Errors
    /// As [`Producer::open`].
    pub fn open(name: &str) -> Result<Self, OpenError> {
        Self::open_with(name, &Options::new())
    }

    /// As [`Consumer::open`], with [`Options`].
    ///
    /// # Errors
    /// As [`Producer::open`].
    pub fn open_with(name: &str, opts: &Options) -> Result<Self, OpenError> {
        open(name, opts, Role::Consumer).map(Self::new)
    }
}
