//! The driver: plans the run, pins itself, starts a peer per measurement
//! (under a watchdog) and prints the table.

use super::*;

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
        // procring's rings again, with a consumer shaped as users write one.
        for &t in plan.transports.iter().filter(|t| t.is_procring()) {
            for &m in t.modes() {
                specs.push(Spec { transport: t, mode: m, kind: Kind::StreamCopy, size, many: false });
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
            Kind::Stream | Kind::StreamCopy => {
                let run = if many { queue_stream_2x2_sized(&plan, size)? } else { stream(&plan, t, m, k, size)? };
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

pub(super) fn plan(args: &BenchArgs) -> Result<Plan, Error> {
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
            let mut v: Vec<_> = Transport::ALL.iter().copied().filter(|t| t.is_baseline()).collect();
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

pub(super) fn default_cores() -> Result<[usize; 2], Error> {
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

pub(super) fn pin(core: usize) -> Result<(), Error> {
    let mut set = rustix::thread::CpuSet::new();
    set.set(core);
    rustix::thread::sched_setaffinity(None, &set).map_err(|e| format!("cannot pin to core {core}: {e}").into())
}

pub(super) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let n = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {n} cores")
}

pub(super) static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// A name for one measurement's resources: unique per driver and step.
pub(super) fn unique(tag: &str) -> String {
    format!("procring-bench-{}-{}-{tag}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Counts measurements; the watchdog ends a peer when it stops moving.
pub(super) static WATCHDOG_STEP: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
pub(super) static WATCHDOG_PEER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Kills the current peer if one measurement takes longer than
/// `STEP_LIMIT`, so that a driver blocked in a read (a pipe cannot time out)
/// sees end-of-file and reports the failure instead of hanging.
pub(super) struct Watchdog;

pub(super) const STEP_LIMIT: Duration = Duration::from_secs(120);

impl Watchdog {
    pub(super) fn arm() -> Self {
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

pub(super) fn spawn_peer(plan: &Plan, t: Transport, m: Mode, k: Kind, size: usize, name: &str) -> Result<Child, Error> {
    spawn_producer(plan, t, m, k, size, name, (0, 1))
}

/// As `spawn_peer`, as producer `id` of `count` (which report on stdout).
pub(super) fn spawn_producer(
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
pub(super) fn finish(mut child: Child) -> Result<(), Error> {
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

pub(super) fn ring_options(mode: Mode, spin: u32) -> Options {
    match mode {
        Mode::Poll => Options::new().busy_poll(),
        Mode::Block => Options::new().spin(spin),
    }
}
