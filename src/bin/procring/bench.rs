//! `procring bench`: two processes, pinned to two cores, exchanging messages
//! through each transport in turn.
//!
//! The driver (this process) runs every measurement against a peer process
//! (this program again, as `bench-peer`) that it starts for that measurement
//! alone. Every message carries a sequence number in its first 8 bytes; the
//! receiving side checks it, so loss or reordering shows in the figures.
//!
//! - **pingpong**: the driver sends a message, the peer sends it back; the
//!   driver times each round trip and keeps a histogram. Every row is
//!   measured right after its own floor measurement (a raw cache-line
//!   ping-pong), because the host may move the two vCPUs between placements
//!   of very different distance during a run. The floor moves through 64
//!   line pairs, one per round trip, as a ring moves through its slots: what
//!   one line costs depends on where its physical address is homed, and on
//!   this machine 16 fixed pairs measured in the same run had p50s from 445
//!   to 613 ns (`docs/benchmarks.md`).
//! - **stream**: the peer sends as fast as it can for a fixed time, then
//!   closes; the driver receives and checks every message. Every size is
//!   also streamed through two bare rings in raw atomics (`raw`,
//!   `raw-claim`): the SPSC ring's shape and any MPMC queue's with nothing
//!   else in the way (see `RawRing`).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, Command, Stdio};
// The floor is raw atomics in a raw shared mapping, on purpose: nothing of
// procring's between the two processes.
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use hdrhistogram::Histogram;
use procring::spsc::{Consumer, Producer};
use procring::{pipe, MessageRecvError, Options, Pipe, Queue, RecvTimeoutError};

/// Calls `$f::<N>(args...)` for the run-time size `$size`.
macro_rules! with_size {
    ($size:expr, $f:ident, $($arg:expr),*) => {
        match $size {
            8 => $f::<8>($($arg),*),
            16 => $f::<16>($($arg),*),
            32 => $f::<32>($($arg),*),
            64 => $f::<64>($($arg),*),
            128 => $f::<128>($($arg),*),
            256 => $f::<256>($($arg),*),
            512 => $f::<512>($($arg),*),
            1024 => $f::<1024>($($arg),*),
            2048 => $f::<2048>($($arg),*),
            4096 => $f::<4096>($($arg),*),
            8192 => $f::<8192>($($arg),*),
            s => Err(format!("message size {s} is not supported; use one of {SIZES:?}").into()),
        }
    };
}

type Error = Box<dyn std::error::Error>;

/// Message sizes a ring can carry in this program (a ring's element type is
/// fixed at compile time).
const SIZES: [usize; 11] = [8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192];

// `Msg<N>` is `Pod` only for whole 8-byte words (see its impls).
const _: () = {
    let mut i = 0;
    while i < SIZES.len() {
        assert!(SIZES[i] % 8 == 0 && SIZES[i] >= 8);
        i += 1;
    }
};

/// A message's sequence number carries its producer's id in its top byte.
const PRODUCER_SHIFT: u32 = 56;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// A shorter run (fewer round trips, shorter streams): figures are noisier.
    #[arg(long)]
    quick: bool,
    /// Print one JSON object per measurement instead of the table.
    #[arg(long)]
    json: bool,
    /// Message size in bytes for every measurement (default: 64 for
    /// ping-pong; 8, 64 and 4096 for streams). One of 8, 16, ..., 8192.
    #[arg(long)]
    size: Option<usize>,
    /// The two cores to pin the processes to, e.g. `--cores 0,1`
    /// (default: the first two this process may run on).
    #[arg(long, value_delimiter = ',', num_args = 2)]
    cores: Option<Vec<usize>>,
    /// Spin-loop steps before a blocked side sleeps, in block mode
    /// (default: the library's). `--spin 0` measures the futex path alone.
    #[arg(long)]
    spin: Option<u32>,
    /// Round trips per ping-pong measurement, after a warm-up
    /// (default 100000; 20000 with --quick).
    #[arg(long)]
    round_trips: Option<u64>,
    /// Milliseconds per stream run (default 300; 100 with --quick); each
    /// stream row is the median of 5 runs (3 with --quick).
    #[arg(long)]
    stream_ms: Option<u64>,
    /// Only these transports (comma-separated): procring-spsc,
    /// procring-queue, procring-pipe, unix-pipe, unix-socket. The floor and
    /// the raw rings are always measured.
    #[arg(long, value_delimiter = ',')]
    transports: Option<Vec<String>>,
    /// Cache-line pairs the floor's ping-pong moves through, one per round
    /// trip (default 64, as many as a ping-pong ring's slots; 1 is the
    /// classic two-word ping-pong on one fixed pair of lines).
    #[arg(long, default_value_t = FLOOR_LINES, value_parser = clap::value_parser!(u64).range(1..=FLOOR_LINES))]
    floor_lines: u64,
}

#[derive(Args, Debug)]
pub struct PeerArgs {
    #[arg(long)]
    transport: String,
    #[arg(long)]
    mode: String,
    #[arg(long)]
    kind: String,
    #[arg(long)]
    size: usize,
    #[arg(long)]
    name: String,
    #[arg(long)]
    core: usize,
    #[arg(long)]
    spin: u32,
    #[arg(long)]
    stream_ms: u64,
    /// This producer's id (streams with several producers).
    #[arg(long, default_value_t = 0)]
    producer: u64,
    /// How many producers share the stream; the driver closes it if more than one.
    #[arg(long, default_value_t = 1)]
    producers: u64,
    /// The floor's line pairs (see `BenchArgs::floor_lines`).
    #[arg(long, default_value_t = FLOOR_LINES)]
    floor_lines: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Floor,
    /// The SPSC ring's shape in raw atomics, streams only (see `RawRing`).
    Raw,
    /// `Raw` plus a CAS per message on each side (see `RawRing`).
    RawClaim,
    Spsc,
    Queue,
    Pipe,
    UnixPipe,
    UnixSocket,
}

impl Transport {
    const ALL: [Transport; 8] = [
        Transport::Floor,
        Transport::Raw,
        Transport::RawClaim,
        Transport::Spsc,
        Transport::Queue,
        Transport::Pipe,
        Transport::UnixPipe,
        Transport::UnixSocket,
    ];

    fn name(self) -> &'static str {
        match self {
            Transport::Floor => "floor",
            Transport::Raw => "raw",
            Transport::RawClaim => "raw-claim",
            Transport::Spsc => "procring-spsc",
            Transport::Queue => "procring-queue",
            Transport::Pipe => "procring-pipe",
            Transport::UnixPipe => "unix-pipe",
            Transport::UnixSocket => "unix-socket",
        }
    }

    fn parse(s: &str) -> Result<Self, Error> {
        Self::ALL.into_iter().find(|t| t.name() == s).ok_or_else(|| format!("unknown transport {s:?}").into())
    }

    /// Modes measured: procring's own transports in both; the others block.
    fn modes(self) -> &'static [Mode] {
        match self {
            Transport::Floor | Transport::Raw | Transport::RawClaim => &[Mode::Poll],
            Transport::Spsc | Transport::Queue | Transport::Pipe => &[Mode::Poll, Mode::Block],
            Transport::UnixPipe | Transport::UnixSocket => &[Mode::Block],
        }
    }

    /// The hardware baselines, measured in every run whatever `--transports` says.
    fn is_baseline(self) -> bool {
        matches!(self, Transport::Floor | Transport::Raw | Transport::RawClaim)
    }

    /// Streams only (the ping-pong's baseline is the floor).
    fn is_raw(self) -> bool {
        matches!(self, Transport::Raw | Transport::RawClaim)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Poll,
    Block,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Poll => "poll",
            Mode::Block => "block",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    PingPong,
    Stream,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::PingPong => "pingpong",
            Kind::Stream => "stream",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Latency {
    p50: u64,
    p90: u64,
    p99: u64,
    p999: u64,
    max: u64,
    /// p50 of the floor measured just before this row.
    floor_p50: u64,
}

#[derive(Debug, Clone, Copy)]
struct Throughput {
    msgs_per_s: f64,
    bytes_per_s: f64,
    received: u64,
    lost: u64,
}

#[derive(Debug, Clone)]
struct Row {
    transport: Transport,
    mode: Mode,
    kind: Kind,
    size: usize,
    /// Producer and consumer counts (1 and 1 but for the 2x2 queue stream).
    procs: (u64, u64),
    latency: Option<Latency>,
    stream: Option<Throughput>,
}

struct Plan {
    cores: [usize; 2],
    spin: u32,
    round_trips: u64,
    warmup: u64,
    /// Repetitions of each measurement (see `run`).
    reps: u64,
    stream: Duration,
    pingpong_size: usize,
    stream_sizes: Vec<usize>,
    transports: Vec<Transport>,
    /// Line pairs the floor moves through.
    floor_lines: u64,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
struct Spec {
    transport: Transport,
    mode: Mode,
    kind: Kind,
    size: usize,
    /// Two producers and two consumers.
    many: bool,
}

/// The order of the measurements: `(spec, run)`, where `run` is `None` for
/// a ping-pong (which interleaves its runs with the floor's itself).
///
/// The streams of one message size go round-robin, one run of each row per
/// round, so that the rows compared in the table (a transport against the
/// Unix pipe, the queue against the SPSC ring, each against the bare ring)
/// meet the host's placement moves in the same proportions. Run in a block
/// per row, a move halfway through the size moved one row and not the next.
fn schedule(specs: &[Spec], reps: u64) -> Vec<(usize, Option<u64>)> {
    let mut order = vec![];
    let mut at = 0;
    while at < specs.len() {
        let s = specs[at];
        if s.kind == Kind::PingPong {
            order.push((at, None));
            at += 1;
            continue;
        }
        let same = |o: &Spec| o.kind == Kind::Stream && o.size == s.size && o.many == s.many;
        let group = specs[at..].iter().take_while(|o| same(o)).count();
        for rep in 0..reps {
            order.extend((at..at + group).map(|i| (i, Some(rep))));
        }
        at += group;
    }
    order
}

// ---------------------------------------------------------------------------
// Driver
// ---------------------------------------------------------------------------

pub fn run(args: &BenchArgs) -> Result<(), Error> {
    let plan = plan(args)?;
    let machine = machine();
    pin(plan.cores[0])?;
    if !args.json {
        println!("procring bench: {machine}");
        println!(
            "driver on core {}, peer on core {}; per row: {} round trips in {} runs interleaved with the floor, \
             or the median of {} streams of {} ms taken in turn with the other rows of their size; block-mode spin {}",
            plan.cores[0],
            plan.cores[1],
            plan.round_trips,
            plan.reps,
            plan.reps,
            plan.stream.as_millis(),
            plan.spin
        );
    }
    // Every row, in the table's order.
    let mut specs: Vec<Spec> = vec![];
    for &t in plan.transports.iter().filter(|t| !t.is_raw()) {
        for &m in t.modes() {
            specs.push(Spec { transport: t, mode: m, kind: Kind::PingPong, size: plan.pingpong_size, many: false });
        }
    }
    for &size in &plan.stream_sizes {
        for &t in plan.transports.iter().filter(|&&t| t != Transport::Floor) {
            for &m in t.modes() {
                specs.push(Spec { transport: t, mode: m, kind: Kind::Stream, size, many: false });
            }
        }
    }
    if plan.transports.contains(&Transport::Queue) {
        // Four processes on two cores: blocking mode only.
        let size = plan.pingpong_size;
        specs.push(Spec { transport: Transport::Queue, mode: Mode::Block, kind: Kind::Stream, size, many: true });
    }
    let schedule = schedule(&specs, plan.reps);
    let mut runs: Vec<Vec<Throughput>> = vec![vec![]; specs.len()];
    let mut rows: Vec<Option<Row>> = vec![None; specs.len()];
    let _watchdog = Watchdog::arm();
    for (i, &(at, rep)) in schedule.iter().enumerate() {
        WATCHDOG_STEP.fetch_add(1, Ordering::Relaxed);
        let Spec { transport: t, mode: m, kind: k, size, many } = specs[at];
        let x = if many { " 2x2" } else { "" };
        let of = match rep {
            Some(r) => format!(" ({}/{})", r + 1, plan.reps),
            None => String::new(),
        };
        eprint!("\r\x1b[2K[{}/{}] {}{x} {} {} {}B{of} ...", i + 1, schedule.len(), t.name(), m.name(), k.name(), size);
        let row = match k {
            Kind::PingPong => {
                // Interleave the floor with the transport, so that both see the
                // same vCPU placements in the same proportions.
                let (mut floor, mut hist) = (histogram()?, histogram()?);
                let per_rep = plan.round_trips.div_ceil(plan.reps);
                for _ in 0..plan.reps {
                    pingpong(&plan, Transport::Floor, Mode::Poll, size, per_rep, &mut floor)?;
                    if t != Transport::Floor {
                        pingpong(&plan, t, m, size, per_rep, &mut hist)?;
                    }
                }
                let hist = if t == Transport::Floor { &floor } else { &hist };
                let latency = Latency::of(hist, floor.value_at_quantile(0.5));
                Row { transport: t, mode: m, kind: k, size, procs: (1, 1), latency: Some(latency), stream: None }
            }
            Kind::Stream => {
                let run = if many { queue_stream_2x2_sized(&plan, size)? } else { stream(&plan, t, m, size)? };
                runs[at].push(run);
                if (runs[at].len() as u64) < plan.reps {
                    continue;
                }
                // The median of the runs: one that met a placement move does
                // not decide the figure.
                let runs = &mut runs[at];
                runs.sort_by(|a, b| a.msgs_per_s.total_cmp(&b.msgs_per_s));
                let mut median = runs[runs.len() / 2];
                median.lost = runs.iter().map(|r| r.lost).sum();
                median.received = runs.iter().map(|r| r.received).sum();
                let procs = if many { (2, 2) } else { (1, 1) };
                Row { transport: t, mode: m, kind: k, size, procs, latency: None, stream: Some(median) }
            }
        };
        if args.json {
            println!("{}", json(&row));
        }
        rows[at] = Some(row);
    }
    let rows: Vec<Row> = rows.into_iter().flatten().collect();
    eprint!("\r\x1b[2K");
    if !args.json {
        print!("{}", table(&rows, plan.floor_lines));
    }
    Ok(())
}

fn plan(args: &BenchArgs) -> Result<Plan, Error> {
    let cores = match &args.cores {
        Some(c) => [c[0], c[1]],
        None => default_cores()?,
    };
    let sizes_ok = |s: usize| {
        if SIZES.contains(&s) {
            Ok(s)
        } else {
            Err(format!("--size {s} is not supported; use one of {SIZES:?}"))
        }
    };
    let transports = match &args.transports {
        None => Transport::ALL.to_vec(),
        Some(names) => {
            let mut v: Vec<_> = Transport::ALL.into_iter().filter(|t| t.is_baseline()).collect();
            for n in names {
                let t = Transport::parse(n)?;
                if !v.contains(&t) {
                    v.push(t);
                }
            }
            v
        }
    };
    Ok(Plan {
        cores,
        spin: args.spin.unwrap_or(Options::DEFAULT_SPIN),
        round_trips: args.round_trips.unwrap_or(if args.quick { 20_000 } else { 100_000 }).max(1),
        warmup: if args.quick { 2_000 } else { 10_000 },
        reps: if args.quick { 3 } else { 5 },
        stream: Duration::from_millis(args.stream_ms.unwrap_or(if args.quick { 100 } else { 300 })),
        pingpong_size: sizes_ok(args.size.unwrap_or(64))?,
        stream_sizes: match args.size {
            Some(s) => vec![sizes_ok(s)?],
            None => vec![8, 64, 4096],
        },
        transports,
        floor_lines: args.floor_lines,
    })
}

fn default_cores() -> Result<[usize; 2], Error> {
    let set = rustix::thread::sched_getaffinity(None)?;
    let mine: Vec<usize> = (0..rustix::thread::CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).take(2).collect();
    match mine[..] {
        [a, b] => Ok([a, b]),
        [a] => {
            eprintln!("procring bench: only core {a} is available; both processes share it (figures will be poor)");
            Ok([a, a])
        }
        _ => Err("no core to run on".into()),
    }
}

fn pin(core: usize) -> Result<(), Error> {
    let mut set = rustix::thread::CpuSet::new();
    set.set(core);
    rustix::thread::sched_setaffinity(None, &set).map_err(|e| format!("cannot pin to core {core}: {e}").into())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let n = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {n} cores")
}

static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A name for one measurement's resources: unique per driver and step.
fn unique(tag: &str) -> String {
    format!("procring-bench-{}-{}-{tag}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Counts measurements; the watchdog ends a peer when it stops moving.
static WATCHDOG_STEP: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
static WATCHDOG_PEER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Kills the current peer if one measurement takes longer than
/// `STEP_LIMIT`, so that a driver blocked in a read (a pipe cannot time out)
/// sees end-of-file and reports the failure instead of hanging.
struct Watchdog;

const STEP_LIMIT: Duration = Duration::from_secs(120);

impl Watchdog {
    fn arm() -> Self {
        std::thread::spawn(|| {
            let (mut step, mut since) = (u32::MAX, Instant::now());
            loop {
                std::thread::sleep(Duration::from_millis(200));
                let now = WATCHDOG_STEP.load(Ordering::Relaxed);
                if now != step {
                    (step, since) = (now, Instant::now());
                } else if since.elapsed() > STEP_LIMIT {
                    let pid = WATCHDOG_PEER.load(Ordering::Relaxed);
                    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                        eprintln!("procring bench: watchdog: measurement {now} stuck; killing peer {pid:?}");
                        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                    }
                    since = Instant::now();
                }
            }
        });
        Watchdog
    }
}

fn spawn_peer(plan: &Plan, t: Transport, m: Mode, k: Kind, size: usize, name: &str) -> Result<Child, Error> {
    spawn_producer(plan, t, m, k, size, name, (0, 1))
}

/// As `spawn_peer`, as producer `id` of `count` (which report on stdout).
fn spawn_producer(
    plan: &Plan,
    t: Transport,
    m: Mode,
    k: Kind,
    size: usize,
    name: &str,
    (id, count): (u64, u64),
) -> Result<Child, Error> {
    let piped = t == Transport::UnixPipe || count > 1;
    let child = Command::new(std::env::current_exe()?)
        .arg("bench-peer")
        .args(["--producer", &id.to_string(), "--producers", &count.to_string()])
        .args(["--transport", t.name(), "--mode", m.name(), "--kind", k.name()])
        .args(["--size", &size.to_string(), "--name", name, "--core", &plan.cores[1].to_string()])
        .args(["--spin", &plan.spin.to_string(), "--stream-ms", &plan.stream.as_millis().to_string()])
        .args(["--floor-lines", &plan.floor_lines.to_string()])
        .stdin(if piped { Stdio::piped() } else { Stdio::null() })
        .stdout(if piped { Stdio::piped() } else { Stdio::null() })
        .spawn()?;
    WATCHDOG_PEER.store(child.id(), Ordering::Relaxed);
    Ok(child)
}

/// Waits for the peer, failing if it failed or hangs.
fn finish(mut child: Child) -> Result<(), Error> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return if status.success() { Ok(()) } else { Err(format!("bench peer failed: {status}").into()) };
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            return Err("bench peer hung; killed it".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn ring_options(mode: Mode, spin: u32) -> Options {
    match mode {
        Mode::Poll => Options::new().busy_poll(),
        Mode::Block => Options::new().spin(spin),
    }
}

/// How long a driver waits for any one message before it calls the peer dead.
const STALL: Duration = Duration::from_secs(10);

fn histogram() -> Result<Histogram<u64>, Error> {
    Ok(Histogram::new_with_bounds(1, 60_000_000_000, 3)?)
}

impl Latency {
    fn of(h: &Histogram<u64>, floor_p50: u64) -> Self {
        let q = |q| h.value_at_quantile(q);
        Latency { p50: q(0.5), p90: q(0.9), p99: q(0.99), p999: q(0.999), max: h.max(), floor_p50 }
    }
}

/// Adds `round_trips` round trips (after a warm-up) to `hist`.
fn pingpong(
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

fn spin_until(mut done: impl FnMut() -> bool) -> Result<(), Error> {
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
struct Msg<const N: usize>([u8; N]);

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
    fn new(fill: u8, seq: u64) -> Self {
        const { assert!(N % 8 == 0 && N >= 8, "a Msg is a whole number of 8-byte words") };
        let mut m = Self([fill; N]);
        m.set_seq(seq);
        m
    }

    fn seq(&self) -> u64 {
        seq_of(&self.0)
    }

    fn set_seq(&mut self, seq: u64) {
        self.0[..8].copy_from_slice(&seq.to_le_bytes());
    }
}

fn seq_of(msg: &[u8]) -> u64 {
    u64::from_le_bytes(msg[..8].try_into().expect("messages are at least 8 bytes"))
}

fn check_echo(sent: u64, got: u64) -> Result<(), Error> {
    match got {
        s if s == sent => Ok(()),
        s => Err(format!("ping-pong: sent #{sent}, got #{s} back").into()),
    }
}

type Timed<'a> = dyn FnMut(u64, &mut dyn FnMut(u64) -> Result<(), Error>) -> Result<(), Error> + 'a;

fn byte_pingpong(r: &mut dyn Read, w: &mut dyn Write, size: usize, total: u64, timed: &mut Timed) -> Result<(), Error> {
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
trait Put<const N: usize> {
    fn put(&mut self, m: Msg<N>) -> Result<(), Error>;
}

/// A receiving end: `None` once the sender is gone (or the queue closed).
trait Take<const N: usize> {
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

fn taken<const N: usize>(r: Result<Msg<N>, RecvTimeoutError>) -> Result<Option<u64>, Error> {
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

fn ring_pingpong<const N: usize>(
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

fn spsc_pingpong<const N: usize>(plan: &Plan, m: Mode, name: &str, total: u64, timed: &mut Timed) -> Result<(), Error> {
    let opts = ring_options(m, plan.spin);
    let mut tx = Producer::<Msg<N>>::create_with(&format!("/{name}-a"), 64, &opts)?;
    let mut rx = Consumer::<Msg<N>>::create_with(&format!("/{name}-b"), 64, &opts)?;
    let child = spawn_peer(plan, Transport::Spsc, m, Kind::PingPong, N, name)?;
    ring_pingpong(&mut tx, &mut rx, total, timed)?;
    drop(tx); // the peer sees the disconnection and exits
    finish(child)
}

fn queue_pingpong<const N: usize>(
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

fn stream(plan: &Plan, t: Transport, m: Mode, size: usize) -> Result<Throughput, Error> {
    let name = unique("st");
    let mut counter = StreamCheck::default();
    match t {
        Transport::Floor => unreachable!("the floor is a ping-pong only"),
        Transport::Raw | Transport::RawClaim => with_size!(size, raw_stream, plan, t, &name, &mut counter)?,
        Transport::Spsc => with_size!(size, spsc_stream, plan, m, &name, &mut counter)?,
        Transport::Queue => with_size!(size, queue_stream, plan, m, &name, &mut counter)?,
        Transport::Pipe => with_size!(size, pipe_stream, plan, m, &name, &mut counter)?,
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

fn queue_stream_2x2_sized(plan: &Plan, size: usize) -> Result<Throughput, Error> {
    with_size!(size, queue_stream_2x2, plan)
}

/// Two producer processes, two consumer threads here (all blocking): the
/// producers report how many they sent, each consumer checks that every
/// producer's messages reach it in order, and the driver closes the queue
/// once both producers are done.
fn queue_stream_2x2<const N: usize>(plan: &Plan) -> Result<Throughput, Error> {
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
struct StreamCheck {
    first: Option<Instant>,
    last: Option<Instant>,
    received: u64,
    expected: u64,
    lost: u64,
}

impl StreamCheck {
    #[inline]
    fn seen(&mut self, seq: u64) {
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
    fn end(&mut self) {
        self.last = Some(Instant::now());
    }

    fn result(&self, size: usize) -> Throughput {
        let secs = match (self.first, self.last) {
            (Some(a), Some(b)) => (b - a).as_secs_f64(),
            _ => 0.0,
        };
        // The first message starts the clock, so it is not counted.
        let msgs = if secs > 0.0 { self.received.saturating_sub(1) as f64 / secs } else { 0.0 };
        Throughput { msgs_per_s: msgs, bytes_per_s: msgs * size as f64, received: self.received, lost: self.lost }
    }
}

fn byte_stream(r: impl Read, size: usize, counter: &mut StreamCheck) -> Result<(), Error> {
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
const PIPE_BYTES: usize = 1 << 20;

fn pipe_pingpong<const N: usize>(plan: &Plan, m: Mode, name: &str, total: u64, timed: &mut Timed) -> Result<(), Error> {
    let (mut tx, mut rx) = Pipe::create_with(&format!("/{name}-a"), PIPE_BYTES, &ring_options(m, plan.spin))?.split();
    let child = spawn_peer(plan, Transport::Pipe, m, Kind::PingPong, N, name)?;
    ring_pingpong::<N>(&mut tx, &mut rx, total, timed)?;
    drop((tx, rx)); // the peer sees the disconnection and exits
    finish(child)
}

fn pipe_stream<const N: usize>(plan: &Plan, m: Mode, name: &str, counter: &mut StreamCheck) -> Result<(), Error> {
    let mut rx = Pipe::create_receiver(&format!("/{name}-a"), PIPE_BYTES, &ring_options(m, plan.spin))?;
    let child = spawn_peer(plan, Transport::Pipe, m, Kind::Stream, N, name)?;
    ring_receive::<N>(&mut rx, counter)?;
    finish(child)
}

fn ring_receive<const N: usize>(rx: &mut impl Take<N>, counter: &mut StreamCheck) -> Result<(), Error> {
    while let Some(seq) = rx.take()? {
        counter.seen(seq);
    }
    counter.end();
    Ok(())
}

/// Up to 4096 slots, at most 4 MiB of ring.
fn stream_capacity(n: usize) -> usize {
    ((4usize << 20) / n).clamp(64, 4096)
}

fn spsc_stream<const N: usize>(plan: &Plan, m: Mode, name: &str, counter: &mut StreamCheck) -> Result<(), Error> {
    let opts = ring_options(m, plan.spin);
    let mut rx = Consumer::<Msg<N>>::create_with(&format!("/{name}-a"), stream_capacity(N), &opts)?;
    let child = spawn_peer(plan, Transport::Spsc, m, Kind::Stream, N, name)?;
    ring_receive(&mut rx, counter)?;
    finish(child)
}

fn queue_stream<const N: usize>(plan: &Plan, m: Mode, name: &str, counter: &mut StreamCheck) -> Result<(), Error> {
    let opts = ring_options(m, plan.spin);
    let mut rx = Queue::<Msg<N>>::create_with(&format!("/{name}-a"), stream_capacity(N), &opts)?;
    let child = spawn_peer(plan, Transport::Queue, m, Kind::Stream, N, name)?;
    ring_receive(&mut rx, counter)?;
    finish(child)
}

// ---------------------------------------------------------------------------
// Peer
// ---------------------------------------------------------------------------

pub fn peer(a: &PeerArgs) -> Result<(), Error> {
    pin(a.core)?;
    let t = Transport::parse(&a.transport)?;
    let m = if a.mode == "poll" { Mode::Poll } else { Mode::Block };
    let stream_for = Duration::from_millis(a.stream_ms);
    match (t, a.kind.as_str()) {
        (Transport::Floor, _) => {
            let floor = FloorMap::open(&a.name, a.floor_lines)?;
            for i in 1.. {
                let mut v = 0;
                spin_until(|| {
                    v = floor.ping(i).load(Ordering::Acquire);
                    v == i || v == u64::MAX
                })?;
                if v == u64::MAX {
                    break;
                }
                floor.pong(i).store(i, Ordering::Release);
            }
            Ok(())
        }
        (Transport::Raw | Transport::RawClaim, _) => with_size!(a.size, raw_send, a, t, stream_for),
        (Transport::Spsc, "pingpong") => with_size!(a.size, spsc_echo, a, m),
        (Transport::Spsc, _) => with_size!(a.size, spsc_send, a, m, stream_for),
        (Transport::Queue, "pingpong") => with_size!(a.size, queue_echo, a, m),
        (Transport::Queue, _) => with_size!(a.size, queue_send, a, m, stream_for),
        (Transport::Pipe, "pingpong") => with_size!(a.size, pipe_echo, a, m),
        (Transport::Pipe, _) => with_size!(a.size, pipe_send, a, m, stream_for),
        (Transport::UnixPipe, kind) => {
            // Raw, unbuffered ends: std's stdout would hold an echo back.
            use std::os::fd::AsFd;
            let mut r = File::from(io::stdin().as_fd().try_clone_to_owned()?);
            let mut w = File::from(io::stdout().as_fd().try_clone_to_owned()?);
            if kind == "pingpong" {
                byte_echo(&mut r, &mut w, a.size)
            } else {
                byte_send(&mut w, a.size, stream_for)
            }
        }
        (Transport::UnixSocket, kind) => {
            let mut s = UnixStream::connect(socket_path(&a.name))?;
            if kind == "pingpong" {
                let mut r = s.try_clone()?;
                byte_echo(&mut r, &mut s, a.size)
            } else {
                byte_send(&mut s, a.size, stream_for)
            }
        }
    }
}

fn byte_echo(r: &mut dyn Read, w: &mut dyn Write, size: usize) -> Result<(), Error> {
    let mut msg = vec![0u8; size];
    loop {
        match r.read_exact(&mut msg) {
            Ok(()) => w.write_all(&msg)?,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

/// One `write` per message: a message-oriented sender, as latency demands.
fn byte_send(w: &mut dyn Write, size: usize, run_for: Duration) -> Result<(), Error> {
    let mut msg = vec![0xA5u8; size];
    let start = Instant::now();
    let mut seq = 0u64;
    while start.elapsed() < run_for {
        for _ in 0..256 {
            msg[..8].copy_from_slice(&seq.to_le_bytes());
            w.write_all(&msg)?;
            seq += 1;
        }
    }
    Ok(())
}

fn ring_echo<const N: usize>(rx: &mut impl Take<N>, tx: &mut impl Put<N>) -> Result<(), Error> {
    let mut msg = Msg::new(0xA5, 0);
    while let Some(seq) = rx.take()? {
        msg.set_seq(seq);
        tx.put(msg)?;
    }
    Ok(())
}

/// Sends numbered messages for `run_for`; returns how many.
fn ring_send<const N: usize>(tx: &mut impl Put<N>, producer: u64, run_for: Duration) -> Result<u64, Error> {
    let mut msg = Msg::new(0xA5, 0);
    let start = Instant::now();
    let mut seq = producer << PRODUCER_SHIFT;
    while start.elapsed() < run_for {
        for _ in 0..1024 {
            msg.set_seq(seq);
            tx.put(msg)?;
            seq += 1;
        }
    }
    Ok(seq - (producer << PRODUCER_SHIFT))
}

fn spsc_echo<const N: usize>(a: &PeerArgs, m: Mode) -> Result<(), Error> {
    let opts = ring_options(m, a.spin);
    let mut rx = Consumer::<Msg<N>>::open_with(&format!("/{}-a", a.name), &opts)?;
    let mut tx = Producer::<Msg<N>>::open_with(&format!("/{}-b", a.name), &opts)?;
    ring_echo(&mut rx, &mut tx)
}

fn queue_echo<const N: usize>(a: &PeerArgs, m: Mode) -> Result<(), Error> {
    let opts = ring_options(m, a.spin);
    let mut rx = Queue::<Msg<N>>::open_with(&format!("/{}-a", a.name), &opts)?;
    let mut tx = Queue::<Msg<N>>::open_with(&format!("/{}-b", a.name), &opts)?;
    ring_echo(&mut rx, &mut tx)
}

fn pipe_echo<const N: usize>(a: &PeerArgs, m: Mode) -> Result<(), Error> {
    let (mut tx, mut rx) = Pipe::open_with(&format!("/{}-a", a.name), &ring_options(m, a.spin))?.split();
    ring_echo::<N>(&mut rx, &mut tx)
}

fn pipe_send<const N: usize>(a: &PeerArgs, m: Mode, run_for: Duration) -> Result<(), Error> {
    let mut tx = Pipe::open_sender(&format!("/{}-a", a.name), &ring_options(m, a.spin))?;
    ring_send::<N>(&mut tx, 0, run_for)?;
    Ok(()) // dropping `tx` disconnects the driver
}

fn spsc_send<const N: usize>(a: &PeerArgs, m: Mode, run_for: Duration) -> Result<(), Error> {
    let mut tx = Producer::<Msg<N>>::open_with(&format!("/{}-a", a.name), &ring_options(m, a.spin))?;
    ring_send(&mut tx, 0, run_for)?;
    Ok(()) // dropping `tx` disconnects the driver
}

fn queue_send<const N: usize>(a: &PeerArgs, m: Mode, run_for: Duration) -> Result<(), Error> {
    let mut tx = Queue::<Msg<N>>::open_with(&format!("/{}-a", a.name), &ring_options(m, a.spin))?;
    let sent = ring_send(&mut tx, a.producer, run_for)?;
    if a.producers == 1 {
        tx.shutdown(); // the only producer: the stream ends here
    } else {
        println!("{sent}"); // the driver closes the queue and counts
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The floor: words on their own cache lines of a shared file mapping
// ---------------------------------------------------------------------------

/// Most line pairs the floor moves through: as many slots as the ping-pong
/// rings have.
const FLOOR_LINES: u64 = 64;
/// Bytes between two of the floor's words: two lines, so that no two words
/// share the adjacent-line prefetcher's 128-byte pair.
const FLOOR_STRIDE: usize = 128;
/// Where the pong words start, after the ping words.
const FLOOR_PONGS: usize = FLOOR_LINES as usize * FLOOR_STRIDE;

/// Round trip `i` of the floor is a store of `i` to ping word `i % lines`
/// by the driver, and a store of `i` to pong word `i % lines` by the peer
/// once it sees it. Each side spins on one word at a time, and the next
/// round trip uses the next pair of lines, as a ring's next message uses its
/// next slot.
struct FloorMap {
    file: SharedFile,
    lines: u64,
}

impl FloorMap {
    const LEN: usize = 2 * FLOOR_PONGS;

    fn create(name: &str, lines: u64) -> Result<Self, Error> {
        Ok(Self { file: SharedFile::create(name, Self::LEN)?, lines })
    }

    fn open(name: &str, lines: u64) -> Result<Self, Error> {
        Ok(Self { file: SharedFile::open(name, Self::LEN)?, lines })
    }

    /// The driver's word for round trip `i`.
    fn ping(&self, i: u64) -> &AtomicU64 {
        self.word(0, i)
    }

    /// The peer's word for round trip `i`.
    fn pong(&self, i: u64) -> &AtomicU64 {
        self.word(FLOOR_PONGS, i)
    }

    fn word(&self, base: usize, i: u64) -> &AtomicU64 {
        // The index is below FLOOR_LINES, so the word is inside LEN.
        self.file.word(base + (i % self.lines.clamp(1, FLOOR_LINES)) as usize * FLOOR_STRIDE)
    }
}

/// A file in `/dev/shm` mapped shared, for the baselines: nothing of
/// procring's between the two processes. The creator removes it on drop.
struct SharedFile {
    map: memmap2::MmapMut,
    /// `map`'s start, taken mutably: the other process writes it too.
    base: *mut u8,
    path: Option<String>,
}

impl SharedFile {
    fn create(name: &str, len: usize) -> Result<Self, Error> {
        let path = format!("/dev/shm/{name}");
        let f = File::options().read(true).write(true).create_new(true).open(&path)?;
        let mapped = f.set_len(len as u64).and_then(|()| {
            // SAFETY: a file of ours, mapped shared; the two processes share
            // it only through atomics and the accesses those order (see its
            // users).
            unsafe { memmap2::MmapMut::map_mut(&f) }
        });
        match mapped {
            Ok(mut map) => Ok(Self { base: map.as_mut_ptr(), map, path: Some(path) }),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                Err(e.into())
            }
        }
    }

    fn open(name: &str, len: usize) -> Result<Self, Error> {
        let f = File::options().read(true).write(true).open(format!("/dev/shm/{name}"))?;
        if f.metadata()?.len() != len as u64 {
            return Err(format!("the baseline's file /dev/shm/{name} has the wrong size").into());
        }
        // SAFETY: as in `create`.
        let mut map = unsafe { memmap2::MmapMut::map_mut(&f)? };
        let base = map.as_mut_ptr();
        Ok(Self { map, base, path: None })
    }

    /// The 8-byte word at `offset`, which both processes only ever access
    /// atomically.
    fn word(&self, offset: usize) -> &AtomicU64 {
        assert!(offset % 8 == 0 && offset + 8 <= self.map.len(), "word {offset} out of the mapping");
        // SAFETY: in bounds (checked above) and 8-byte aligned (the mapping
        // is page-aligned); every access to it, in both processes, is atomic.
        unsafe { &*self.base.add(offset).cast::<AtomicU64>() }
    }
}

impl Drop for SharedFile {
    fn drop(&mut self) {
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

// ---------------------------------------------------------------------------
// The raw rings: the stream's baselines
// ---------------------------------------------------------------------------

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
struct RawRing {
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

    fn len(size: usize, cap: u64) -> usize {
        Self::SLOTS + cap as usize * Self::stride(size)
    }

    /// As a queue slot: an 8-byte stamp, the message, padding to 8 bytes.
    fn stride(size: usize) -> usize {
        (8 + size).next_multiple_of(8)
    }

    fn create(name: &str, size: usize, cap: u64) -> Result<Self, Error> {
        assert!(cap.is_power_of_two(), "a raw ring's capacity is a power of two");
        Ok(Self { file: SharedFile::create(name, Self::len(size, cap))?, cap, stride: Self::stride(size) })
    }

    fn open(name: &str, size: usize, cap: u64) -> Result<Self, Error> {
        assert!(cap.is_power_of_two(), "a raw ring's capacity is a power of two");
        Ok(Self { file: SharedFile::open(name, Self::len(size, cap))?, cap, stride: Self::stride(size) })
    }

    fn tail(&self) -> &AtomicU64 {
        self.file.word(0)
    }

    fn head(&self) -> &AtomicU64 {
        self.file.word(128)
    }

    fn released(&self) -> &AtomicU64 {
        self.file.word(256)
    }

    fn end(&self) -> &AtomicU64 {
        self.file.word(384)
    }

    fn slot(&self, pos: u64) -> usize {
        // A mask, as procring's rings index: a division here would cost the
        // baseline more than a message.
        Self::SLOTS + (pos & (self.cap - 1)) as usize * self.stride
    }

    fn stamp(&self, pos: u64) -> &AtomicU64 {
        self.file.word(self.slot(pos))
    }

    /// Where the message for `pos` goes: `stride - 8 >= N` bytes, 8-aligned.
    fn message<const N: usize>(&self, pos: u64) -> *mut Msg<N> {
        debug_assert!(N + 8 <= self.stride);
        // SAFETY: the slot lies inside the mapping (`slot` < `len`).
        unsafe { self.file.base.add(self.slot(pos) + 8).cast() }
    }
}

/// The driver's side of a raw stream: the consumer.
fn raw_stream<const N: usize>(plan: &Plan, t: Transport, name: &str, counter: &mut StreamCheck) -> Result<(), Error> {
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
fn raw_send<const N: usize>(a: &PeerArgs, t: Transport, run_for: Duration) -> Result<(), Error> {
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

fn socket_path(name: &str) -> String {
    format!("{}/{name}.sock", std::env::temp_dir().display())
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

fn json(r: &Row) -> String {
    let mut s = format!(
        "{{\"transport\":\"{}\",\"mode\":\"{}\",\"kind\":\"{}\",\"size\":{},\"producers\":{},\"consumers\":{}",
        r.transport.name(),
        r.mode.name(),
        r.kind.name(),
        r.size,
        r.procs.0,
        r.procs.1
    );
    if let Some(l) = r.latency {
        let _ = write!(
            s,
            ",\"p50_ns\":{},\"p90_ns\":{},\"p99_ns\":{},\"p999_ns\":{},\"max_ns\":{},\"floor_p50_ns\":{}",
            l.p50, l.p90, l.p99, l.p999, l.max, l.floor_p50
        );
    }
    if let Some(t) = r.stream {
        let _ = write!(
            s,
            ",\"msgs_per_s\":{:.0},\"bytes_per_s\":{:.0},\"received\":{},\"lost\":{}",
            t.msgs_per_s, t.bytes_per_s, t.received, t.lost
        );
    }
    s.push('}');
    s
}

fn ns(v: u64) -> String {
    if v >= 100_000 {
        format!("{:.0}us", v as f64 / 1000.0)
    } else if v >= 10_000 {
        format!("{:.1}us", v as f64 / 1000.0)
    } else {
        format!("{v}ns")
    }
}

fn si(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{:.2}G", v / 1e9),
        v if v >= 1e6 => format!("{:.1}M", v / 1e6),
        v if v >= 1e3 => format!("{:.1}k", v / 1e3),
        v => format!("{v:.0}"),
    }
}

fn table(rows: &[Row], floor_lines: u64) -> String {
    let mut out = String::new();
    let pipe_p50 = rows
        .iter()
        .find(|r| r.kind == Kind::PingPong && r.transport == Transport::UnixPipe)
        .and_then(|r| r.latency.map(|l| l.p50));
    let _ = writeln!(
        out,
        "\nround trip (ping-pong), {} bytes",
        rows.iter().find(|r| r.kind == Kind::PingPong).map_or(0, |r| r.size)
    );
    let _ = writeln!(
        out,
        "{:<18} {:<5} {:>8} {:>8} {:>8} {:>8} {:>8}  {:>9} {:>7} {:>7}",
        "transport", "mode", "p50", "p90", "p99", "p99.9", "max", "floor p50", "x floor", "x pipe"
    );
    for r in rows.iter().filter(|r| r.kind == Kind::PingPong) {
        let l = r.latency.expect("ping-pong rows have latency");
        let _ = writeln!(
            out,
            "{:<18} {:<5} {:>8} {:>8} {:>8} {:>8} {:>8}  {:>9} {:>7.2} {:>7}",
            r.transport.name(),
            r.mode.name(),
            ns(l.p50),
            ns(l.p90),
            ns(l.p99),
            ns(l.p999),
            ns(l.max),
            ns(l.floor_p50),
            l.p50 as f64 / l.floor_p50.max(1) as f64,
            pipe_p50.map_or("-".into(), |p| format!("{:.3}", l.p50 as f64 / p.max(1) as f64)),
        );
    }
    let _ = writeln!(out, "\none-way stream");
    let _ = writeln!(
        out,
        "{:<18} {:<5} {:>6} {:>10} {:>10} {:>8} {:>6} {:>6}",
        "transport", "mode", "size", "msgs/s", "MB/s", "x pipe", "x raw", "lost"
    );
    for r in rows.iter().filter(|r| r.kind == Kind::Stream) {
        let t = r.stream.expect("stream rows have throughput");
        let msgs_of = |of: Transport| {
            rows.iter()
                .find(|p| p.kind == Kind::Stream && p.transport == of && p.size == r.size && p.procs == (1, 1))
                .and_then(|p| p.stream.map(|s| s.msgs_per_s))
        };
        let ratio = |base: Option<f64>, digits: usize| {
            base.map_or("-".into(), |b| format!("{:.digits$}", t.msgs_per_s / b.max(1.0)))
        };
        // Each of procring's rings against the raw ring of its shape.
        let raw = match (r.transport, r.procs) {
            (Transport::Spsc | Transport::Pipe, _) => msgs_of(Transport::Raw),
            (Transport::Queue, (1, 1)) => msgs_of(Transport::RawClaim),
            _ => None,
        };
        let _ = writeln!(
            out,
            "{:<18} {:<5} {:>6} {:>10} {:>10.1} {:>8} {:>6} {:>6}",
            if r.procs == (1, 1) { r.transport.name().to_owned() } else { format!("{} 2x2", r.transport.name()) },
            r.mode.name(),
            r.size,
            si(t.msgs_per_s),
            t.bytes_per_s / 1e6,
            ratio(msgs_of(Transport::UnixPipe), 1),
            ratio(raw, 2),
            t.lost,
        );
    }
    let _ = writeln!(
        out,
        "\nfloor: a raw cache-line ping-pong between the same two cores, over {floor_lines} line pair(s)\n  \
         in turn, interleaved with each row's runs.\n\
         x floor / x pipe: p50 over the floor's / the Unix pipe's p50 (lower is better).\n\
         raw: a bare ring of stamped slots in raw atomics (the SPSC ring's shape); raw-claim: the same\n  \
         with a CAS per message on each side (every MPMC queue's shape). Unpaced, so noisy.\n\
         stream x pipe / x raw: messages/s over the Unix pipe's / over the bare ring's of the same\n  \
         shape (raw for procring-spsc and -pipe, raw-claim for procring-queue); higher is better."
    );
    out
}
