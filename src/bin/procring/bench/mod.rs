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
//!   one line costs depends on where its physical address is homed, so a
//!   single fixed pair would be a floor of one line's luck.
//! - **stream**: the peer sends as fast as it can for a fixed time, then
//!   closes; the driver receives and checks every message. Each of
//!   procring's rings streams twice: to a consumer that takes only the
//!   sequence number (`stream`), and to one shaped as users write them,
//!   which receives each message by value as a `[u8; N]`, copies it into a
//!   buffer of its own and checks the number in its first and last 8 bytes
//!   (`stream-copy`). Every size is
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
    /// crossbeam-channel between two threads of the driver (feature
    /// `bench-peers`): the in-process reference.
    #[cfg_attr(not(feature = "bench-peers"), allow(dead_code))]
    Crossbeam,
}

impl Transport {
    const ALL: &'static [Transport] = &[
        Transport::Floor,
        Transport::Raw,
        Transport::RawClaim,
        Transport::Spsc,
        Transport::Queue,
        Transport::Pipe,
        Transport::UnixPipe,
        Transport::UnixSocket,
        #[cfg(feature = "bench-peers")]
        Transport::Crossbeam,
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
            Transport::Crossbeam => "crossbeam-channel",
        }
    }

    fn parse(s: &str) -> Result<Self, Error> {
        Self::ALL.iter().copied().find(|t| t.name() == s).ok_or_else(|| format!("unknown transport {s:?}").into())
    }

    /// Modes measured: procring's own transports in both; the others block.
    fn modes(self) -> &'static [Mode] {
        match self {
            Transport::Floor | Transport::Raw | Transport::RawClaim => &[Mode::Poll],
            Transport::Spsc | Transport::Queue | Transport::Pipe => &[Mode::Poll, Mode::Block],
            Transport::UnixPipe | Transport::UnixSocket | Transport::Crossbeam => &[Mode::Block],
        }
    }

    /// The hardware baselines, measured in every run whatever `--transports` says.
    fn is_baseline(self) -> bool {
        matches!(self, Transport::Floor | Transport::Raw | Transport::RawClaim)
    }

    /// One of procring's own rings.
    fn is_procring(self) -> bool {
        matches!(self, Transport::Spsc | Transport::Queue | Transport::Pipe)
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
    /// A stream whose consumer takes each message's sequence number only.
    Stream,
    /// A stream whose consumer does what users do: receives each message
    /// by value (a `[u8; N]`, through the public `recv`, or the pipe's
    /// `recv_bytes_into`), copies it into a buffer of its own and checks the
    /// sequence number in its first and last 8 bytes.
    StreamCopy,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::PingPong => "pingpong",
            Kind::Stream => "stream",
            Kind::StreamCopy => "stream-copy",
        }
    }

    fn is_stream(self) -> bool {
        matches!(self, Kind::Stream | Kind::StreamCopy)
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
        let same = |o: &Spec| o.kind.is_stream() && o.size == s.size && o.many == s.many;
        let group = specs[at..].iter().take_while(|o| same(o)).count();
        for rep in 0..reps {
            order.extend((at..at + group).map(|i| (i, Some(rep))));
        }
        at += group;
    }
    order
}

mod driver;
mod floor;
mod peer;
#[cfg(feature = "bench-peers")]
mod peers;
mod raw;
mod report;
mod transports;

pub use driver::run;
use driver::*;
use floor::*;
pub use peer::peer;
#[cfg(feature = "bench-peers")]
use peers::*;
use raw::*;
use report::*;
use transports::*;
