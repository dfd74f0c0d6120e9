//! The `procring` command-line program.
//!
//! `procring bench` measures round-trip latency and streaming throughput
//! between two processes pinned to two cores, for procring's transports and,
//! in the same run, a Unix pipe, a Unix domain socket and the hardware's floor
//! (a raw cache-line ping-pong through shared memory). `procring ls`,
//! `inspect` and `rm` show and remove the segments on this host.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod tools;

#[derive(Parser, Debug)]
#[command(name = "procring", version, about = "Shared-memory rings between processes: benches and tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Latency and throughput between two pinned processes, side by side
    /// with a Unix pipe, a Unix socket and the raw cache-line floor.
    Bench(bench::BenchArgs),
    /// List procring segments: kind, capacity, fill level, attached
    /// processes and whether they are alive.
    Ls,
    /// Show one segment's header, counters and attached processes.
    Inspect(tools::InspectArgs),
    /// Remove a segment (refused while live processes are attached,
    /// unless --force).
    Rm(tools::RmArgs),
    /// The peer side of one measurement (started by `bench` itself).
    #[command(hide = true)]
    BenchPeer(bench::PeerArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => bench::run(&args),
        Command::BenchPeer(args) => bench::peer(&args),
        Command::Ls => tools::ls(),
        Command::Inspect(args) => tools::inspect(&args),
        Command::Rm(args) => tools::rm(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("procring: {e}");
            ExitCode::FAILURE
        }
    }
}
