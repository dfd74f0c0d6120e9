//! The queue's packed words, each a small type that encodes and decodes
//! it: the `tail` position with its closed flag ([`Tail`]), a slot's
//! sequence word ([`Seq`]), a claim word ([`ClaimWord`]), a side's bias
//! ([`Bias`]) and its count of the other side's handles ([`Ends`]). The atomics in shared memory hold their bits (`u64`); these
//! types are what the protocol reads and writes them as.
//!
//! Positions only grow, one per message, and stay below 2^61 (about 73
//! years at a billion messages a second): the bits above are flags. They
//! are read from shared memory, so a corrupt segment may hold any value:
//! encoding wraps and decoding masks, and a position out of range is not
//! asserted (it would turn a corrupt segment into a panic); the protocol
//! reports what it leads to. What this process supplies itself (an owner's
//! row and thread tag) is checked in debug builds.

/// `tail`: the next position to claim for sending, and bit 63 set once the
/// queue is closed (by `fetch_or`, so no claim succeeds after it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tail(u64);

impl Tail {
    /// The closed flag, for `fetch_or`.
    pub(crate) const CLOSED: u64 = 1 << 63;

    #[inline(always)]
    pub(crate) const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// The position, without the flag.
    #[inline(always)]
    pub(crate) const fn pos(self) -> u64 {
        self.0 & !Self::CLOSED
    }

    #[inline(always)]
    pub(crate) const fn is_closed(self) -> bool {
        self.0 & Self::CLOSED != 0
    }
}

/// A slot's sequence word: which position it was last published for, and
/// how. `pos + 1` once published for `pos` (below that: not yet), with bit
/// 62 (`SKIP`) when the slot carries no message, and bit 61 (`DONE`) once
/// read and released out of order (a mark for whoever moves `released`
/// over it). 0 in a fresh slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seq(u64);

impl Seq {
    const SKIP: u64 = 1 << 62;
    const DONE: u64 = 1 << 61;

    #[inline(always)]
    pub(crate) const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    #[inline(always)]
    pub(crate) const fn bits(self) -> u64 {
        self.0
    }

    /// Published for `pos`: with a message if `commit`, else skipped.
    #[inline(always)]
    pub(crate) const fn published(pos: u64, commit: bool) -> Self {
        let lap = pos.wrapping_add(1);
        Self(if commit { lap } else { lap | Self::SKIP })
    }

    /// Published for `pos` and then read out of order (whether it carried
    /// a message no longer matters: the mark drops `SKIP`).
    #[inline(always)]
    pub(crate) const fn marked(pos: u64) -> Self {
        Self(pos.wrapping_add(1) | Self::DONE)
    }

    /// `pos + 1` of the position it was last published for (0: never).
    #[inline(always)]
    pub(crate) const fn lap(self) -> u64 {
        self.0 & !(Self::SKIP | Self::DONE)
    }

    /// Without the `SKIP` flag.
    #[inline(always)]
    pub(crate) const fn unskipped(self) -> Self {
        Self(self.0 & !Self::SKIP)
    }

    #[inline(always)]
    pub(crate) const fn is_skip(self) -> bool {
        self.0 & Self::SKIP != 0
    }

    #[inline(always)]
    pub(crate) const fn is_marked(self) -> bool {
        self.0 & Self::DONE != 0
    }
}

/// A claim word of a row: 0 free, `TAKEN` held by an operation that has
/// not announced a position yet, or the position an operation claims:
/// `pos + 1` for a sender, `(pos + 1) | RECV` (bit 63) for a receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClaimWord(u64);

impl ClaimWord {
    const RECV: u64 = 1 << 63;
    /// Free: announces nothing.
    pub(crate) const FREE: Self = Self(0);
    /// Held by an operation that has not announced a position yet.
    pub(crate) const TAKEN: Self = Self(u64::MAX);

    #[inline(always)]
    pub(crate) const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    #[inline(always)]
    pub(crate) const fn bits(self) -> u64 {
        self.0
    }

    /// An announcement of a claim of `pos` on the sending (`send`) or the
    /// receiving side.
    #[inline(always)]
    pub(crate) const fn claim(pos: u64, send: bool) -> Self {
        let lap = pos.wrapping_add(1);
        Self(if send { lap } else { lap | Self::RECV })
    }

    /// The position it announces and whether for sending, if it announces
    /// one.
    #[inline(always)]
    pub(crate) const fn announced(self) -> Option<(u64, bool)> {
        if self.0 == Self::FREE.0 || self.0 == Self::TAKEN.0 {
            return None;
        }
        Some(((self.0 & !Self::RECV).wrapping_sub(1), self.0 & Self::RECV == 0))
    }
}

/// A side's bias: `FREE` (claims CAS, and a claimer may take it), `SHARED`
/// (claims CAS, never to be taken again: the senders' once closed), an
/// owner's id (its row index + 1 from bit 48 up, its thread's tag below,
/// never 0), or bit 63 (`REVOKING`) with the revoker's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bias(u64);

impl Bias {
    const REVOKING: u64 = 1 << 63;
    /// Where an owner's row starts in its id.
    const ROW_SHIFT: u32 = 48;
    pub(crate) const FREE: Self = Self(0);
    pub(crate) const SHARED: Self = Self(u64::MAX);

    #[inline(always)]
    pub(crate) const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    #[inline(always)]
    pub(crate) const fn bits(self) -> u64 {
        self.0
    }

    /// The largest thread tag an owner's id holds (tags are `1..=` this).
    pub(crate) const TAG_MAX: u64 = (1 << Self::ROW_SHIFT) - 1;

    /// The id of an owner in row `row` (index + 1), thread `tag` (0 for a
    /// process whose thread cannot be told: a revoker only).
    #[inline(always)]
    pub(crate) fn owner(row: u64, tag: u64) -> Self {
        debug_assert!(row > 0 && row < 1 << (63 - Self::ROW_SHIFT), "row {row} out of range");
        debug_assert!(tag <= Self::TAG_MAX, "thread tag {tag} out of range");
        Self(row << Self::ROW_SHIFT | tag)
    }

    /// The same id, revoking.
    #[inline(always)]
    pub(crate) const fn revoking(self) -> Self {
        Self(self.0 | Self::REVOKING)
    }

    #[inline(always)]
    pub(crate) const fn is_revoking(self) -> bool {
        self.0 & Self::REVOKING != 0 && self.0 != Self::SHARED.0
    }

    /// The row (index + 1) of an owner's or a revoker's id.
    #[inline(always)]
    pub(crate) const fn row(self) -> u64 {
        (self.0 & !Self::REVOKING) >> Self::ROW_SHIFT
    }
}

/// A count of live handles of one kind, packed in a `u64`: the count in
/// the low 32 bits, and in the high 32 a change number that every update
/// bumps (wrapping), so that a look at the rows can tell whether any
/// handle came or went meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ends(u64);

impl Ends {
    const CHANGE: u64 = 1 << 32;

    #[inline(always)]
    pub(crate) const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    #[inline(always)]
    pub(crate) const fn bits(self) -> u64 {
        self.0
    }

    pub(crate) fn count(self) -> u32 {
        self.0 as u32
    }

    /// What to add to the word to change the count by `delta` (the count
    /// stays within 32 bits: `delta` never takes it below 0).
    pub(crate) fn delta(delta: i64) -> u64 {
        debug_assert!(delta.unsigned_abs() < Self::CHANGE);
        Self::CHANGE.wrapping_add(delta as u64)
    }

    /// The word with the count set to none, as a change.
    pub(crate) fn none(self) -> Self {
        Self((self.0 & !(Self::CHANGE - 1)).wrapping_add(Self::CHANGE))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn words_decode_what_they_encode() {
        let t = Tail::from_bits(41 | Tail::CLOSED);
        assert_eq!((t.pos(), t.is_closed()), (41, true));
        assert_eq!(Seq::published(7, true).lap(), 8);
        assert!(Seq::published(7, false).is_skip());
        assert_eq!(Seq::published(7, false).lap(), 8);
        let m = Seq::marked(7);
        assert!(m.is_marked() && !m.is_skip());
        assert_eq!(m.lap(), 8);
        assert_eq!(ClaimWord::claim(9, true).announced(), Some((9, true)));
        assert_eq!(ClaimWord::claim(9, false).announced(), Some((9, false)));
        assert_eq!(ClaimWord::FREE.announced(), None);
        assert_eq!(ClaimWord::TAKEN.announced(), None);
        let o = Bias::owner(3, Bias::TAG_MAX);
        assert_eq!((o.row(), o.is_revoking()), (3, false));
        assert_eq!((o.revoking().row(), o.revoking().is_revoking()), (3, true));
        assert!(!Bias::SHARED.is_revoking() && !Bias::FREE.is_revoking());
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "out of range")]
    fn an_owner_id_out_of_range_is_refused() {
        let _ = Bias::owner(1, Bias::TAG_MAX + 1);
    }
}
