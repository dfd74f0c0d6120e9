//! Pacing a stream: how a side that rereads the other side's position lets
//! the other side get a run done per cache-line transfer. Every ring uses it.

use crate::sync::spin_hint;

/// Stream detection, for a side that rereads the other side's position:
/// each reread takes that line from the other side and costs it its next
/// store there. When rereads keep finding less than a batch, the next one
/// waits [`STREAM_PAUSE`] and reads again, so the other side gets a run done
/// per transfer; a pause that does not pay turns pausing off for a while:
/// [`STREAM_COOLDOWN_MIN`] rereads, doubling with each pause in a row that
/// does not pay, up to [`STREAM_COOLDOWN`]. The caller rereads; this keeps
/// the count. Used by both ends of the SPSC ring and of the pipe
/// (`super::bytes`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Pacer {
    /// Consecutive rereads that continued a run (the caller says what that is).
    streak: u32,
    /// Rereads left before pausing is tried again.
    cooldown: u32,
    /// The cooldown the last pause that did not pay set: doubled by each
    /// one that does not pay, back to none by one that does.
    backoff: u32,
}

impl Pacer {
    /// The state packed in a word, for a pacer that threads share (the
    /// queue's producers in a process).
    pub(crate) fn to_bits(self) -> u64 {
        let field = |v: u32| u64::from(v.min(FIELD));
        field(self.streak) | field(self.cooldown) << 21 | field(self.backoff) << 42
    }

    /// The state [`Pacer::to_bits`] packed.
    pub(crate) fn from_bits(bits: u64) -> Self {
        let field = |shift: u32| ((bits >> shift) & u64::from(FIELD)) as u32;
        Self { streak: field(0), cooldown: field(21), backoff: field(42) }
    }

    /// After a reread found `got` (messages, slots or bytes), of which the
    /// caller could use some (`usable`): whether to reread once more, after
    /// the pause this spends. True when `got` is under `batch` and the
    /// rereads before continued a run, unless pausing is cooling down.
    #[inline(always)]
    pub(crate) fn pause(&mut self, got: u64, usable: bool, batch: u64) -> bool {
        if self.cooldown > 0 {
            self.cooldown -= 1;
            return false;
        }
        if !usable || got >= batch || self.streak < STREAM_STREAK {
            return false;
        }
        stream_pause();
        true
    }

    /// After the reread that followed a pause: pausing stays on only if the
    /// count grew by at least `paid`.
    #[inline(always)]
    pub(crate) fn paid(&mut self, before: u64, now: u64, paid: u64) {
        if now.saturating_sub(before) < paid {
            self.backoff = (self.backoff * 2).clamp(STREAM_COOLDOWN_MIN, STREAM_COOLDOWN);
            self.cooldown = self.backoff;
        } else {
            self.backoff = 0;
        }
    }

    /// Records whether the last reread continued a run.
    #[inline(always)]
    pub(crate) fn note(&mut self, continues: bool) {
        self.streak = if continues { self.streak.saturating_add(1) } else { 0 };
    }
}

/// The largest value of a packed [`Pacer`] field (21 bits): a streak
/// saturates there, and cooldowns never reach it.
const FIELD: u32 = (1 << 21) - 1;

/// Spins [`STREAM_PAUSE`] steps: the time a side lets the other get a run
/// done before it takes a shared line from it again.
#[inline]
pub(crate) fn stream_pause() {
    for _ in 0..STREAM_PAUSE {
        spin_hint();
    }
}

/// In a saturated stream, a producer's reread that finds room for fewer
/// than this many messages waits [`STREAM_PAUSE`] and reads again; so does
/// a consumer's that finds fewer than [`READ_BATCH`]. A pause pays (pacing
/// stays on) if it gains at least this many.
pub(crate) const STREAM_BATCH: u64 = 8;
/// A streaming consumer's batch: it takes the `tail` line from the producer
/// about once per this many messages. Each time costs the producer a line
/// transfer on its next `tail` store, and a store buffer that fills behind
/// it: a small batch (8) lets a consumer close behind its producer stall it
/// every few messages.
pub(crate) const READ_BATCH: u64 = 64;
/// Consecutive non-empty rereads that make a stream.
const STREAM_STREAK: u32 = 2;
/// Spin-loop steps (about a microsecond) a streaming consumer lets the
/// producer run ahead before it takes the `tail` line from it again. Every
/// read of `tail` costs the producer its next store to that line, so a
/// consumer that keeps up message by message slows the producer to one
/// line transfer per message; this lets it publish a run of them per
/// transfer instead. A consumer that finds the ring empty resets the
/// streak, so request/response traffic never waits here.
const STREAM_PAUSE: u32 = 64;
/// A side waiting on a full ring rereads the other side's position (which
/// that side stores on every message) every this many spin steps, after a
/// first [`stream_pause`] (under loom, every step: a model's spins are
/// scheduling points).
pub(crate) const LOOK_EVERY: u32 = if cfg!(loom) { 1 } else { 32 };
/// The longest cooldown, in rereads without pausing: a producer that is not
/// saturated (in this thread, or just slow) costs one wasted pause per this
/// many rereads, once its pauses have failed seven times in a row.
const STREAM_COOLDOWN: u32 = 1024;
/// The cooldown after a pause that did not pay when the one before paid. A
/// stream whose pause fails now and then is paced again soon; a consumer
/// in lock-step with its producer (whose every pause fails) reaches
/// [`STREAM_COOLDOWN`] after seven pauses. (A flat 1024 left a stream that
/// lost pacing once unpaced for long stretches.)
const STREAM_COOLDOWN_MIN: u32 = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_pacer_unpacks_to_the_same_state() {
        let mut p = Pacer::default();
        assert_eq!(Pacer::from_bits(p.to_bits()).to_bits(), 0);
        // A streak, then a pause that does not pay: a cooldown and a backoff.
        p.note(true);
        p.note(true);
        p.paid(0, 1, STREAM_BATCH);
        p.paid(0, 1, STREAM_BATCH);
        let q = Pacer::from_bits(p.to_bits());
        assert_eq!((q.streak, q.cooldown, q.backoff), (2, 32, 32));
        // A streak past 21 bits saturates, and stays in its field.
        let long = Pacer { streak: u32::MAX, ..q };
        let r = Pacer::from_bits(long.to_bits());
        assert_eq!((r.streak, r.cooldown, r.backoff), (FIELD, 32, 32));
    }
}
