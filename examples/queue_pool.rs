//! A pool of worker processes pulling jobs from one queue and pushing
//! results to another, like `multiprocessing.Pool` built from two `Queue`s.
//!
//! The main process puts the numbers 1..=20 on `jobs`, starts 3 workers,
//! closes `jobs` (workers stop when it is drained), and collects a square
//! per job from `results`, each tagged with the worker that computed it.
//!
//! Run: `cargo run --example queue_pool`.

use std::error::Error;
use std::process::Command;

use procring::Queue;

/// A result: which job, its square, and which worker computed it.
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Done {
    job: u64,
    square: u64,
    worker: u64,
}
procring::message!(Done);

const WORKERS: u64 = 3;
const JOBS: u64 = 20;

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, role, jobs, results, id] = &args[..] {
        if role == "worker" {
            return worker(jobs, results, id.parse()?);
        }
    }
    let (jobs_name, results_name) = (
        format!("/procring-pool-jobs-{}", std::process::id()),
        format!("/procring-pool-results-{}", std::process::id()),
    );
    let jobs = Queue::<u64>::create(&jobs_name, 32)?;
    let results = Queue::<Done>::create(&results_name, 32)?;
    for n in 1..=JOBS {
        jobs.send(n)?;
    }
    let mut workers = (0..WORKERS)
        .map(|id| {
            Command::new(std::env::current_exe()?).args(["worker", &jobs_name, &results_name, &id.to_string()]).spawn()
        })
        .collect::<Result<Vec<_>, _>>()?;
    // No more jobs: workers finish what is queued and stop.
    jobs.shutdown();
    let mut done: Vec<Done> = (0..JOBS).map(|_| results.recv()).collect::<Result<_, _>>()?;
    for w in &mut workers {
        w.wait()?;
    }
    done.sort_by_key(|d| d.job);
    for d in &done {
        println!("{:>2}^2 = {:>3}  (worker {})", d.job, d.square, d.worker);
    }
    let per_worker: Vec<usize> = (0..WORKERS).map(|w| done.iter().filter(|d| d.worker == w).count()).collect();
    println!("{} jobs done by {WORKERS} worker processes: {per_worker:?}", done.len());
    Ok(())
}

fn worker(jobs: &str, results: &str, id: u64) -> Result<(), Box<dyn Error>> {
    let (jobs, results) = (Queue::<u64>::open(jobs)?, Queue::<Done>::open(results)?);
    // `recv` fails once the queue is closed and drained.
    while let Ok(job) = jobs.recv() {
        results.send(Done { job, square: job * job, worker: id })?;
    }
    Ok(())
}
