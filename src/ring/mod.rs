//! The lock-free ring protocols. They run over memory they are handed (a
//! named segment, or the heap) and know nothing of where it came from.

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

pub(crate) mod bytes;
pub(crate) mod mpmc;
pub mod spsc;
