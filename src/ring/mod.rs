//! The lock-free ring protocols: the SPSC ring ([`spsc`]), the MPMC ring
//! ([`mpmc`]) and the byte ring ([`bytes`]), with the pacing they share
//! ([`pace`]). Each runs over memory it is handed (a named segment, or the
//! heap) and knows nothing of where it came from; each module states its
//! protocol's invariant and memory orderings.

/// Slots a slot ring (SPSC or MPMC) has for a bound of `capacity`
/// messages: the next power of two (so a position's slot is a mask away),
/// and at least 2 (with one slot, the queue's "published for `p`" and "free
/// for `p + 1`" would be the same sequence value). The rings hold the bound
/// exactly: a sender finds the ring full at `capacity` messages, whatever
/// the slots. Both sides derive it; a segment's header records `capacity`.
pub(crate) const fn slots_for(capacity: u64) -> u64 {
    if capacity <= 2 {
        2
    } else {
        capacity.next_power_of_two()
    }
}

/// Bytes of a slot ring's data region (SPSC or MPMC, which share the slot
/// shape [`mpmc::Geometry`]) for a bound of `capacity` messages of `size`
/// bytes aligned to `align`; `None` on overflow.
pub(crate) fn slot_region_len(size: u32, align: u32, capacity: u64) -> Option<usize> {
    let slots = usize::try_from(slots_for(capacity)).ok()?;
    slots.checked_mul(mpmc::Geometry { size: size as usize, align: align as usize }.stride())
}

pub(crate) mod bytes;
pub(crate) mod mpmc;
pub(crate) mod pace;
pub(crate) mod spsc;
