//! The raw rings: the stream's baselines.

use super::*;

/// A one-way ring in raw atomics: the least that moves `N`-byte messages
/// between two processes through slots. Each slot is a stamp and the
/// message, laid out as procring's slots are; the producer writes a message
/// and stores its stamp (Release), the consumer waits for the stamp
/// (Acquire), copies the message out and stores its position (Release),
/// which the producer rereads only when its copy says the ring is full.
///
/// - `raw` is exactly that: the SPSC ring's shape with nothing else (no
///   wakeups, no liveness checks, no `tail`).
/// - `raw-claim` adds what every MPMC queue needs and an SPSC ring does
///   not: each side claims each message by a CAS on a shared position
///   (`tail`, `head`). A locked instruction waits for the side's earlier
///   stores to leave the store buffer, so the producer waits for each new
///   slot line to come over from the consumer's core. It is the shape of
///   `procring-queue` with one producer and one consumer.
///
/// They are not upper bounds: nothing paces them, so a consumer that
/// catches up reads the very line the producer is writing, which procring's
/// rings avoid. They show how far the bare shape gets on this hardware in
/// the same run.
pub(super) struct RawRing {
    file: SharedFile,
    /// A power of two (`stream_capacity` of a power-of-two size).
    cap: u64,
    stride: usize,
}

impl RawRing {
    /// `tail`, `head`, the consumer's `released` and the producer's `end`
    /// (its count + 1, once it stops), each on its own pair of lines.
    const WORDS: usize = 4;
    const SLOTS: usize = Self::WORDS * 128;

    pub(super) fn len(size: usize, cap: u64) -> usize {
        Self::SLOTS + cap as usize * Self::stride(size)
    }

    /// As a queue slot: an 8-byte stamp, the message, padding to 8 bytes.
    pub(super) fn stride(size: usize) -> usize {
        (8 + size).next_multiple_of(8)
    }

    pub(super) fn create(name: &str, size: usize, cap: u64) -> Result<Self, Error> {
        assert!(cap.is_power_of_two(), "a raw ring's capacity is a power of two");
        Ok(Self { file: SharedFile::create(name, Self::len(size, cap))?, cap, stride: Self::stride(size) })
    }

    pub(super) fn open(name: &str, size: usize, cap: u64) -> Result<Self, Error> {
        assert!(cap.is_power_of_two(), "a raw ring's capacity is a power of two");
        Ok(Self { file: SharedFile::open(name, Self::len(size, cap))?, cap, stride: Self::stride(size) })
    }

    pub(super) fn tail(&self) -> &AtomicU64 {
        self.file.word(0)
    }

    pub(super) fn head(&self) -> &AtomicU64 {
        self.file.word(128)
    }

    pub(super) fn released(&self) -> &AtomicU64 {
        self.file.word(256)
    }

    pub(super) fn end(&self) -> &AtomicU64 {
        self.file.word(384)
    }

    pub(super) fn slot(&self, pos: u64) -> usize {
        // A mask, as procring's rings index: a division here would cost the
        // baseline more than a message.
        Self::SLOTS + (pos & (self.cap - 1)) as usize * self.stride
    }

    pub(super) fn stamp(&self, pos: u64) -> &AtomicU64 {
        self.file.word(self.slot(pos))
    }

    /// Where the message for `pos` goes: `stride - 8 >= N` bytes, 8-aligned.
    pub(super) fn message<const N: usize>(&self, pos: u64) -> *mut Msg<N> {
        debug_assert!(N + 8 <= self.stride);
        // SAFETY: the slot lies inside the mapping (`slot` < `len`).
        unsafe { self.file.base.add(self.slot(pos) + 8).cast() }
    }
}

/// The driver's side of a raw stream: the consumer.
pub(super) fn raw_stream<const N: usize>(
    plan: &Plan,
    t: Transport,
    name: &str,
    counter: &mut StreamCheck,
) -> Result<(), Error> {
    let claim = t == Transport::RawClaim;
    let ring = RawRing::create(name, N, stream_capacity(N) as u64)?;
    let child = spawn_peer(plan, t, Mode::Poll, Kind::Stream, N, name)?;
    let ready = |pos: u64| ring.stamp(pos).load(Ordering::Acquire) == pos + 1;
    let mut head = 0u64;
    loop {
        if !ready(head) {
            spin_until(|| ready(head) || ring.end().load(Ordering::Acquire) == head + 1)?;
            if !ready(head) {
                break; // the producer stopped after `head` messages
            }
        }
        // Relaxed: the claim is here for its cost (a locked instruction, the
        // same whatever the ordering on x86); the stamps carry the data.
        if claim && ring.head().compare_exchange(head, head + 1, Ordering::Relaxed, Ordering::Relaxed).is_err() {
            return Err("raw-claim: the consumer's CAS failed with no other consumer".into());
        }
        // SAFETY: the stamp's Acquire above pairs with the producer's
        // Release: its write of the message is complete, and it writes the
        // slot again only after our `released` store below.
        let msg = unsafe { ring.message::<N>(head).read() };
        // The whole message lands in memory, as the rings' do (`taken`):
        // with only its sequence number used, the compiler read just that.
        std::hint::black_box(&msg);
        // Release: our read of the slot happens before the producer's next
        // write of it.
        ring.released().store(head + 1, Ordering::Release);
        counter.seen(msg.seq());
        head += 1;
    }
    counter.end();
    finish(child)
}

/// The peer's side of a raw stream: the producer, for `run_for`.
pub(super) fn raw_send<const N: usize>(a: &PeerArgs, t: Transport, run_for: Duration) -> Result<(), Error> {
    let claim = t == Transport::RawClaim;
    let ring = RawRing::open(&a.name, N, stream_capacity(N) as u64)?;
    let mut msg = Msg::<N>::new(0xA5, 0);
    let (mut tail, mut released) = (0u64, 0u64);
    let start = Instant::now();
    while start.elapsed() < run_for {
        for _ in 0..1024 {
            if tail - released >= ring.cap {
                // Full: let the consumer free a run of slots between looks,
                // as the rings do, rather than pull its line on every spin.
                spin_until(|| {
                    (0..64).for_each(|_| std::hint::spin_loop());
                    // Acquire: pairs with the consumer's Release.
                    released = ring.released().load(Ordering::Acquire);
                    tail - released < ring.cap
                })?;
            }
            // Relaxed: as the consumer's claim in `raw_stream`.
            if claim && ring.tail().compare_exchange(tail, tail + 1, Ordering::Relaxed, Ordering::Relaxed).is_err() {
                return Err("raw-claim: the producer's CAS failed with no other producer".into());
            }
            msg.set_seq(tail);
            // SAFETY: the consumer has released this slot's previous message
            // (`released` > tail - cap, read with Acquire), and reads this
            // one only after the stamp below.
            unsafe { ring.message::<N>(tail).write(msg) };
            // Release: the message is written before the stamp says so.
            ring.stamp(tail).store(tail + 1, Ordering::Release);
            tail += 1;
        }
    }
    // Release: every stamp before this count.
    ring.end().store(tail + 1, Ordering::Release);
    Ok(())
}

pub(super) fn socket_path(name: &str) -> String {
    format!("{}/{name}.sock", std::env::temp_dir().display())
}
