//! Each transport's ping-pong and stream, as the driver runs them.

use super::*;

/// How long a driver waits for any one message before it calls the peer dead.
pub(super) const STALL: Duration = Duration::from_secs(10);

pub(super) fn histogram() -> Result<Histogram<u64>, Error> {
    Ok(Histogram::new_with_bounds(1, 60_000_000_000, 3)?)
}

impl Latency {
    pub(super) fn of(h: &Histogram<u64>, floor_p50: u64) -> Self {
        let q = |q| h.value_at_quantile(q);
        Latency { p50: q(0.5), p90: q(0.9), p99: q(0.99), p999: q(0.999), max: h.max(), floor_p50 }
    }
}

/// Adds `round_trips` round trips (after a warm-up) to `hist`.
pub(super) fn pingpong(
    plan: &Plan,
    t: Transport,
    m: Mode,
    size: usize,
    round_trips: u64,
    hist: &mut Histogram<u64>,
) -> Result<(), Error> {
    let name = unique("pp");
    let total = plan.warmup + round_trips;
    let mut timed = |i: u64, f: &mut dyn FnMut(u64) -> Result<(), Error>| -> Result<(), Error> {
        let t0 = Instant::now();
        f(i)?;
        if i >= plan.warmup {
            hist.saturating_record(t0.elapsed().as_nanos() as u64);
        }
        Ok(())
    };
    match t {
        Transport::Floor => {
            let floor = FloorMap::create(&name, plan.floor_lines)?;
            let child = spawn_peer(plan, t, m, Kind::PingPong, size, &name)?;
            for i in 1..=total {
                timed(i, &mut |i| {
                    floor.ping(i).store(i, Ordering::Release);
                    spin_until(|| floor.pong(i).load(Ordering::Acquire) == i)
                })?;
            }
            floor.ping(total + 1).store(u64::MAX, Ordering::Release);
            finish(child)?;
        }
        Transport::Raw | Transport::RawClaim => unreachable!("the raw rings are streams only"),
        #[cfg(feature = "bench-peers")]
        Transport::Crossbeam => with_size!(size, crossbeam_pingpong, plan, total, &mut timed)?,
        #[cfg(not(feature = "bench-peers"))]
        Transport::Crossbeam => unreachable!("built without the bench-peers feature"),
        Transport::Spsc => with_size!(size, spsc_pingpong, plan, m, &name, total, &mut timed)?,
        Transport::Queue => with_size!(size, queue_pingpong, plan, m, &name, total, &mut timed)?,
        Transport::Pipe => with_size!(size, pipe_pingpong, plan, m, &name, total, &mut timed)?,
        Transport::UnixPipe => {
            let mut child = spawn_peer(plan, t, m, Kind::PingPong, size, &name)?;
            let mut w = child.stdin.take().ok_or("no pipe to the peer")?;
            let mut r = child.stdout.take().ok_or("no pipe from the peer")?;
            byte_pingpong(&mut r, &mut w, size, total, &mut timed)?;
            drop((w, r));
            finish(child)?;
        }
        Transport::UnixSocket => {
            let path = socket_path(&name);
            let listener = UnixListener::bind(&path)?;
            let child = spawn_peer(plan, t, m, Kind::PingPong, size, &name)?;
            let (mut s, _) = listener.accept()?;
            let _ = std::fs::remove_file(&path);
            let mut r = s.try_clone()?;
            byte_pingpong(&mut r, &mut s, size, total, &mut timed)?;
            drop((s, r));
            finish(child)?;
        }
    }
    Ok(())
}

pub(super) fn spin_until(mut done: impl FnMut() -> bool) -> Result<(), Error> {
    let start = Instant::now();
    let mut n = 0u32;
    while !done() {
        std::hint::spin_loop();
        n = n.wrapping_add(1);
        if n % (1 << 16) == 0 && start.elapsed() > STALL {
            return Err("peer stopped answering".into());
        }
    }
    Ok(())
}

/// A message of the rings' rows: `N` bytes, 8-aligned, its sequence number
/// in the first 8. A bare `[u8; N]` has alignment 1, and inside the
/// `Result`s the receive paths return it lands at an odd offset; reading its
/// sequence number back then stalled on store forwarding (a load spanning
/// several smaller stores), which cost the SPSC ring's 64-byte stream more
/// than half its consumer's time in the bench's own loop.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(8))]
pub(super) struct Msg<const N: usize>([u8; N]);

// SAFETY: a `[u8; N]` in a `repr(C)` struct of alignment 8. The bench
// makes `Msg<N>` only for the sizes in `SIZES` (through `with_size!`), all
// multiples of 8 (checked below, and again by `Msg::new`), so there is no
// padding; any bits are a valid `Msg`, and all zeroes is one.
unsafe impl<const N: usize> bytemuck::Zeroable for Msg<N> {}
// SAFETY: as above.
unsafe impl<const N: usize> bytemuck::Pod for Msg<N> {}

// Its size tells the sizes apart.
impl<const N: usize> procring::Message for Msg<N> {
    const NAME: &'static str = "procring bench message";
}

impl<const N: usize> Msg<N> {
    /// All bytes `fill`, but the sequence number `seq` up front.
    pub(super) fn new(fill: u8, seq: u64) -> Self {
        const { assert!(N % 8 == 0 && N >= 8, "a Msg is a whole number of 8-byte words") };
        let mut m = Self([fill; N]);
        m.set_seq(seq);
        m
    }

    pub(super) fn seq(&self) -> u64 {
        seq_of(&self.0)
    }

    pub(super) fn set_seq(&mut self, seq: u64) {
        self.0[..8].copy_from_slice(&seq.to_le_bytes());
    }
}

pub(super) fn seq_of(msg: &[u8]) -> u64 {
    u64::from_le_bytes(msg[..8].try_into().expect("messages are at least 8 bytes"))
}

pub(super) fn check_echo(sent: u64, got: u64) -> Result<(), Error> {
    match got {
        s if s == sent => Ok(()),
        s => Err(format!("ping-pong: sent #{sent}, got #{s} back").into()),
    }
}

pub(super) type Timed<'a> = dyn FnMut(u64, &mut dyn FnMut(u64) -> Result<(), Error>) -> Result<(), Error> + 'a;

pub(super) fn byte_pingpong(
    r: &mut dyn Read,
    w: &mut dyn Write,
    size: usize,
    total: u64,
    timed: &mut Timed,
) -> Result<(), Error> {
    let mut out = vec![0u8; size];
    let mut back = vec![0u8; size];
    for i in 1..=total {
        timed(i, &mut |i| {
            out[..8].copy_from_slice(&i.to_le_bytes());
            w.write_all(&out)?;
            r.read_exact(&mut back)?;
            check_echo(i, seq_of(&back))
        })?;
    }
    Ok(())
}

/// A sending end of one of procring's rings, for the bench's loops.
pub(super) trait Put<const N: usize> {
    fn put(&mut self, m: Msg<N>) -> Result<(), Error>;
}

/// A receiving end: `None` once the sender is gone (or the queue closed).
pub(super) trait Take<const N: usize> {
    /// Receives a message into this side's memory and returns its sequence
    /// number, which is all the loops look at. Not the message by value:
    /// moving a just-received message again reads it back with loads of
    /// other widths than the stores that wrote it (after the pipe's
    /// `memmove`, 16-byte loads of one 64-byte store), which store forwarding
    /// cannot serve; each then waits for the store buffer to drain, whose
    /// older stores wait on line transfers from the other core. That was a
    /// third of the pipe reader's time in a 64-byte stream.
    fn take(&mut self) -> Result<Option<u64>, Error>;
}

impl<const N: usize> Put<N> for Producer<Msg<N>> {
    #[inline]
    fn put(&mut self, m: Msg<N>) -> Result<(), Error> {
        self.send(m).map_err(|_| "the receiving side went away".into())
    }
}

impl<const N: usize> Put<N> for Queue<Msg<N>> {
    #[inline]
    fn put(&mut self, m: Msg<N>) -> Result<(), Error> {
        self.send(m).map_err(|_| "the queue was closed".into())
    }
}

impl<const N: usize> Put<N> for pipe::Sender {
    #[inline]
    fn put(&mut self, m: Msg<N>) -> Result<(), Error> {
        Ok(self.send_bytes(&m.0)?)
    }
}

impl<const N: usize> Take<N> for pipe::Receiver {
    #[inline]
    fn take(&mut self) -> Result<Option<u64>, Error> {
        let mut m = Msg::<N>::new(0, 0);
        match self.recv_bytes_into_timeout(&mut m.0, STALL) {
            Ok(n) if n == N => Ok(Some(m.seq())),
            Ok(n) => Err(format!("a {n}-byte message, expected {N}").into()),
            Err(MessageRecvError::Disconnected) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

pub(super) fn taken<const N: usize>(r: Result<Msg<N>, RecvTimeoutError>) -> Result<Option<u64>, Error> {
    match r {
        Ok(m) => {
            // The whole message lands in memory, as the pipe's does, though
            // only its sequence number is read.
            std::hint::black_box(&m);
            Ok(Some(m.seq()))
        }
        Err(RecvTimeoutError::Disconnected) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl<const N: usize> Take<N> for Consumer<Msg<N>> {
    #[inline]
    fn take(&mut self) -> Result<Option<u64>, Error> {
        taken(self.recv_timeout(STALL))
    }
}

impl<const N: usize> Take<N> for Queue<Msg<N>> {
    #[inline]
    fn take(&mut self) -> Result<Option<u64>, Error> {
        taken(self.recv_timeout(STALL))
    }
}

pub(super) fn ring_pingpong<const N: usize>(
    tx: &mut impl Put<N>,
    rx: &mut impl Take<N>,
    total: u64,
    timed: &mut Timed,
) -> Result<(), Error> {
    let mut msg = Msg::new(0, 0);
    for i in 1..=total {
        timed(i, &mut |i| {
            msg.set_seq(i);
            tx.put(msg)?;
            let back = rx.take()?.ok_or("peer went away")?;
            check_echo(i, back)
        })?;
    }
    Ok(())
}

pub(super) fn spsc_pingpong<const N: usize>(
    plan: &Plan,
    m: Mode,
    name: &str,
    total: u64,
    timed: &mut Timed,
) -> Result<(), Error> {
    let opts = ring_options(m, plan.spin);
    let mut tx = Producer::<Msg<N>>::create_with(&format!("/{name}-a"), 64, &opts)?;
    let mut rx = Consumer::<Msg<N>>::create_with(&format!("/{name}-b"), 64, &opts)?;
    let child = spawn_peer(plan, Transport::Spsc, m, Kind::PingPong, N, name)?;
    ring_pingpong(&mut tx, &mut rx, total, timed)?;
    drop(tx); // the peer sees the disconnection and exits
    finish(child)
}

pub(super) fn queue_pingpong<const N: usize>(
    plan: &Plan,
    m: Mode,
    name: &str,
    total: u64,
    timed: &mut Timed,
) -> Result<(), Error> {
    let opts = ring_options(m, plan.spin);
    let mut tx = Queue::<Msg<N>>::create_with(&format!("/{name}-a"), 64, &opts)?;
    let mut rx = Queue::<Msg<N>>::create_with(&format!("/{name}-b"), 64, &opts)?;
    let child = spawn_peer(plan, Transport::Queue, m, Kind::PingPong, N, name)?;
    ring_pingpong(&mut tx, &mut rx, total, timed)?;
    tx.shutdown(); // the peer drains, sees the close and exits
    finish(child)
}

pub(super) fn stream(plan: &Plan, t: Transport, m: Mode, k: Kind, size: usize) -> Result<Throughput, Error> {
    let name = unique("st");
    let mut counter = StreamCheck::default();
    if k == Kind::StreamCopy {
        match t {
            Transport::Spsc => with_size!(size, spsc_stream_copy, plan, m, &name, &mut counter)?,
            Transport::Queue => with_size!(size, queue_stream_copy, plan, m, &name, &mut counter)?,
            Transport::Pipe => with_size!(size, pipe_stream_copy, plan, m, &name, &mut counter)?,
            _ => unreachable!("only procring's rings have a by-value stream"),
        }
        return Ok(counter.result(size));
    }
    match t {
        Transport::Floor => unreachable!("the floor is a ping-pong only"),
        Transport::Raw | Transport::RawClaim => with_size!(size, raw_stream, plan, t, &name, &mut counter)?,
        Transport::Spsc => with_size!(size, spsc_stream, plan, m, &name, &mut counter)?,
        Transport::Queue => with_size!(size, queue_stream, plan, m, &name, &mut counter)?,
        Transport::Pipe => with_size!(size, pipe_stream, plan, m, &name, &mut counter)?,
        #[cfg(feature = "bench-peers")]
        Transport::Crossbeam => with_size!(size, crossbeam_stream, plan, &mut counter)?,
        #[cfg(not(feature = "bench-peers"))]
        Transport::Crossbeam => unreachable!("built without the bench-peers feature"),
        Transport::UnixPipe => {
            let mut child = spawn_peer(plan, t, m, Kind::Stream, size, &name)?;
            let r = child.stdout.take().ok_or("no pipe from the peer")?;
            byte_stream(r, size, &mut counter)?;
            finish(child)?;
        }
        Transport::UnixSocket => {
            let path = socket_path(&name);
            let listener = UnixListener::bind(&path)?;
            let child = spawn_peer(plan, t, m, Kind::Stream, size, &name)?;
            let (s, _) = listener.accept()?;
            let _ = std::fs::remove_file(&path);
            byte_stream(s, size, &mut counter)?;
            finish(child)?;
        }
    }
    Ok(counter.result(size))
}

pub(super) fn queue_stream_2x2_sized(plan: &Plan, size: usize) -> Result<Throughput, Error> {
    with_size!(size, queue_stream_2x2, plan)
}

/// Two producer processes, two consumer threads here (all blocking): the
/// producers report how many they sent, each consumer checks that every
/// producer's messages reach it in order, and the driver closes the queue
/// once both producers are done.
pub(super) fn queue_stream_2x2<const N: usize>(plan: &Plan) -> Result<Throughput, Error> {
    let name = unique("st2x2");
    let opts = ring_options(Mode::Block, plan.spin);
    let q = Queue::<Msg<N>>::create_with(&format!("/{name}-a"), stream_capacity(N), &opts)?;
    let producers = (0..2)
        .map(|id| spawn_producer(plan, Transport::Queue, Mode::Block, Kind::Stream, N, &name, (id, 2)))
        .collect::<Result<Vec<_>, _>>()?;
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let mut q = q.clone();
            std::thread::spawn(move || -> Result<(u64, u64, Option<Instant>), String> {
                let (mut received, mut disorder, mut first) = (0u64, 0u64, None);
                let mut last = [None::<u64>; 2];
                while let Some(seq) = q.take().map_err(|e| e.to_string())? {
                    first.get_or_insert_with(Instant::now);
                    let p = ((seq >> PRODUCER_SHIFT) as usize).min(1);
                    if last[p].is_some_and(|l| seq <= l) {
                        disorder += 1;
                    }
                    last[p] = Some(seq);
                    received += 1;
                }
                Ok((received, disorder, first))
            })
        })
        .collect();
    let mut sent = 0;
    for mut p in producers {
        let mut out = String::new();
        p.stdout.take().ok_or("no pipe from a producer")?.read_to_string(&mut out)?;
        finish(p)?;
        sent += out.trim().parse::<u64>().map_err(|e| format!("producer's count {out:?}: {e}"))?;
    }
    let end = Instant::now();
    q.shutdown();
    let (mut received, mut disorder, mut first) = (0, 0, None::<Instant>);
    for c in consumers {
        let (r, d, f) = c.join().map_err(|_| "a consumer thread panicked")??;
        (received, disorder) = (received + r, disorder + d);
        first = match (first, f) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    let secs = first.map_or(0.0, |f| (end - f).as_secs_f64());
    let msgs = if secs > 0.0 { received as f64 / secs } else { 0.0 };
    let lost = sent.abs_diff(received) + disorder;
    Ok(Throughput { msgs_per_s: msgs, bytes_per_s: msgs * N as f64, received, lost })
}

/// Counts a stream's messages and checks their sequence numbers.
#[derive(Default)]
pub(super) struct StreamCheck {
    first: Option<Instant>,
    last: Option<Instant>,
    received: u64,
    expected: u64,
    lost: u64,
}

impl StreamCheck {
    #[inline]
    /// A message whose first and last 8 bytes disagree: torn, or never sent.
    pub(super) fn torn(&mut self) {
        self.lost += 1;
    }

    pub(super) fn seen(&mut self, seq: u64) {
        if self.received == 0 {
            self.first = Some(Instant::now());
        }
        self.received += 1;
        if seq != self.expected {
            // Missing messages, or one out of order: count the difference.
            self.lost += seq.abs_diff(self.expected);
        }
        self.expected = seq + 1;
    }

    /// The stream has ended: the sender closed right after its last message.
    pub(super) fn end(&mut self) {
        self.last = Some(Instant::now());
    }

    pub(super) fn result(&self, size: usize) -> Throughput {
        let secs = match (self.first, self.last) {
            (Some(a), Some(b)) => (b - a).as_secs_f64(),
            _ => 0.0,
        };
        // The first message starts the clock, so it is not counted.
        let msgs = if secs > 0.0 { self.received.saturating_sub(1) as f64 / secs } else { 0.0 };
        Throughput { msgs_per_s: msgs, bytes_per_s: msgs * size as f64, received: self.received, lost: self.lost }
    }
}

pub(super) fn byte_stream(r: impl Read, size: usize, counter: &mut StreamCheck) -> Result<(), Error> {
    let mut r = BufReader::with_capacity(1 << 16, r);
    let mut msg = vec![0u8; size];
    loop {
        match r.read_exact(&mut msg) {
            Ok(()) => counter.seen(seq_of(&msg)),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e.into()),
        }
    }
    counter.end();
    Ok(())
}

/// Pipe rings: room for many messages of the largest size measured.
pub(super) const PIPE_BYTES: usize = 1 << 20;

pub(super) fn pipe_pingpong<const N: usize>(
    plan: &Plan,
    m: Mode,
    name: &str,
    total: u64,
    timed: &mut Timed,
) -> Result<(), Error> {
    let (mut tx, mut rx) = Pipe::create_with(&format!("/{name}-a"), PIPE_BYTES, &ring_options(m, plan.spin))?.split();
    let child = spawn_peer(plan, Transport::Pipe, m, Kind::PingPong, N, name)?;
    ring_pingpong::<N>(&mut tx, &mut rx, total, timed)?;
    drop((tx, rx)); // the peer sees the disconnection and exits
    finish(child)
}

pub(super) fn pipe_stream<const N: usize>(
    plan: &Plan,
    m: Mode,
    name: &str,
    counter: &mut StreamCheck,
) -> Result<(), Error> {
    let mut rx = Pipe::create_receiver(&format!("/{name}-a"), PIPE_BYTES, &ring_options(m, plan.spin))?;
    let child = spawn_peer(plan, Transport::Pipe, m, Kind::Stream, N, name)?;
    ring_receive::<N>(&mut rx, counter)?;
    finish(child)
}

pub(super) fn ring_receive<const N: usize>(rx: &mut impl Take<N>, counter: &mut StreamCheck) -> Result<(), Error> {
    while let Some(seq) = rx.take()? {
        counter.seen(seq);
    }
    counter.end();
    Ok(())
}

/// Up to 4096 slots, at most 4 MiB of ring.
pub(super) fn stream_capacity(n: usize) -> usize {
    ((4usize << 20) / n).clamp(64, 4096)
}

pub(super) fn spsc_stream<const N: usize>(
    plan: &Plan,
    m: Mode,
    name: &str,
    counter: &mut StreamCheck,
) -> Result<(), Error> {
    let opts = ring_options(m, plan.spin);
    let mut rx = Consumer::<Msg<N>>::create_with(&format!("/{name}-a"), stream_capacity(N), &opts)?;
    let child = spawn_peer(plan, Transport::Spsc, m, Kind::Stream, N, name)?;
    ring_receive(&mut rx, counter)?;
    finish(child)
}

pub(super) fn queue_stream<const N: usize>(
    plan: &Plan,
    m: Mode,
    name: &str,
    counter: &mut StreamCheck,
) -> Result<(), Error> {
    let opts = ring_options(m, plan.spin);
    let mut rx = Queue::<Msg<N>>::create_with(&format!("/{name}-a"), stream_capacity(N), &opts)?;
    let child = spawn_peer(plan, Transport::Queue, m, Kind::Stream, N, name)?;
    ring_receive(&mut rx, counter)?;
    finish(child)
}

/// Stamps `seq` into the first and last 8 bytes of `m` (the same 8 when
/// `N` is 8): what the by-value streams send and check.
#[inline(always)]
pub(super) fn stamp<const N: usize>(m: &mut [u8; N], seq: u64) {
    m[..8].copy_from_slice(&seq.to_le_bytes());
    m[N - 8..].copy_from_slice(&seq.to_le_bytes());
}

/// The consumer users write: each message by value from `recv` (`None`
/// once the sender is gone), copied into a buffer of its own, its first
/// and last 8 bytes checked.
#[inline(always)]
pub(super) fn value_receive<const N: usize>(
    mut recv: impl FnMut() -> Result<Option<[u8; N]>, Error>,
    counter: &mut StreamCheck,
) -> Result<(), Error> {
    let mut out = [0u8; N];
    while let Some(m) = recv()? {
        out.copy_from_slice(&m);
        let out = std::hint::black_box(&mut out);
        let first = u64::from_le_bytes(out[..8].try_into().expect("8 bytes"));
        let last = u64::from_le_bytes(out[N - 8..].try_into().expect("8 bytes"));
        if first != last {
            counter.torn();
        }
        counter.seen(first);
    }
    counter.end();
    Ok(())
}

/// A typed ring's `recv_timeout` result as [`value_receive`] takes it.
fn by_value<const N: usize>(r: Result<[u8; N], RecvTimeoutError>) -> Result<Option<[u8; N]>, Error> {
    match r {
        Ok(m) => Ok(Some(m)),
        Err(RecvTimeoutError::Disconnected) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub(super) fn spsc_stream_copy<const N: usize>(
    plan: &Plan,
    m: Mode,
    name: &str,
    counter: &mut StreamCheck,
) -> Result<(), Error> {
    let opts = ring_options(m, plan.spin);
    let mut rx = Consumer::<[u8; N]>::create_with(&format!("/{name}-a"), stream_capacity(N), &opts)?;
    let child = spawn_peer(plan, Transport::Spsc, m, Kind::StreamCopy, N, name)?;
    value_receive(|| by_value(rx.recv_timeout(STALL)), counter)?;
    finish(child)
}

pub(super) fn queue_stream_copy<const N: usize>(
    plan: &Plan,
    m: Mode,
    name: &str,
    counter: &mut StreamCheck,
) -> Result<(), Error> {
    let opts = ring_options(m, plan.spin);
    let rx = Queue::<[u8; N]>::create_with(&format!("/{name}-a"), stream_capacity(N), &opts)?;
    let child = spawn_peer(plan, Transport::Queue, m, Kind::StreamCopy, N, name)?;
    value_receive(|| by_value(rx.recv_timeout(STALL)), counter)?;
    finish(child)
}

pub(super) fn pipe_stream_copy<const N: usize>(
    plan: &Plan,
    m: Mode,
    name: &str,
    counter: &mut StreamCheck,
) -> Result<(), Error> {
    let mut rx = Pipe::create_receiver(&format!("/{name}-a"), PIPE_BYTES, &ring_options(m, plan.spin))?;
    let child = spawn_peer(plan, Transport::Pipe, m, Kind::StreamCopy, N, name)?;
    let recv = || {
        let mut m = [0u8; N];
        match rx.recv_bytes_into_timeout(&mut m, STALL) {
            Ok(n) if n == N => Ok(Some(m)),
            Ok(n) => Err(format!("a {n}-byte message, expected {N}").into()),
            Err(MessageRecvError::Disconnected) => Ok(None),
            Err(e) => Err(e.into()),
        }
    };
    value_receive(recv, counter)?;
    finish(child)
}
