//! `procring ls`, `inspect` and `rm`: the segments on this host, what is in
//! one, and removing one.

use std::error::Error;

use procring::{OpenError, SegmentInfo};

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// The segment's name (with or without the leading `/`).
    name: String,
    /// Remove it even while live processes are attached (they keep their
    /// mapping; nobody new can open it).
    #[arg(long)]
    force: bool,
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// The segment's name (with or without the leading `/`).
    name: String,
}

fn peers(info: &SegmentInfo) -> String {
    if info.peers.is_empty() {
        return "-".to_owned();
    }
    let each = info.peers.iter().map(|p| format!("{}{}", p.pid, if p.alive { "" } else { " (dead)" }));
    each.collect::<Vec<_>>().join(", ")
}

fn fill(info: &SegmentInfo) -> String {
    let get = |k: &str| info.counters.iter().find(|(n, _)| *n == k).map(|&(_, v)| v);
    match (get("queued"), info.kind) {
        (Some(q), _) => format!("{q}/{}", info.capacity),
        (None, procring::Kind::Pipe) => {
            let used: u64 = info.counters.iter().map(|&(_, v)| v).sum();
            format!("{used} B")
        }
        _ => "-".to_owned(),
    }
}

/// `procring ls`: one line per procring segment.
pub fn ls() -> Result<(), Box<dyn Error>> {
    let all = procring::list();
    if all.is_empty() {
        println!("no procring segments in /dev/shm");
        return Ok(());
    }
    let w = all.iter().map(|(n, _)| n.len()).max().unwrap_or(0).max(4);
    println!("{:<w$} {:<10} {:>9} {:>12} {:<6} attached (pid)", "name", "kind", "capacity", "fill", "state");
    for (name, info) in all {
        match info {
            Ok(i) => {
                let state = if i.stale {
                    "stale"
                } else if i.in_use() {
                    "live"
                } else {
                    "idle"
                };
                println!(
                    "{:<w$} {:<10} {:>9} {:>12} {:<6} {}",
                    i.name,
                    i.kind.name(),
                    i.capacity,
                    fill(&i),
                    state,
                    peers(&i)
                );
            }
            Err(e) => println!("{name:<w$} ({e})"),
        }
    }
    Ok(())
}

/// `procring inspect NAME`: the header, the counters and the peers.
pub fn inspect(args: &InspectArgs) -> Result<(), Box<dyn Error>> {
    let i = procring::inspect(&args.name)?;
    println!("name        {}", i.name);
    println!("kind        {}", i.kind.name());
    println!("element     {} ({} bytes)", i.elem_type, i.elem_size);
    println!("capacity    {}", i.capacity);
    println!("size        {} bytes", i.bytes);
    println!("created by  pid {}", i.creator_pid);
    println!("state       {}", if i.stale { "stale: every attached process is dead" } else { "ok" });
    for (name, value) in &i.counters {
        println!("{name:<32}{value}");
    }
    println!("attached:");
    for p in &i.peers {
        let claims = if p.claims.is_empty() { String::new() } else { format!(", claims {:?}", p.claims) };
        println!("  pid {:<8} {:<16} {}{claims}", p.pid, p.role, if p.alive { "alive" } else { "dead" });
    }
    if i.peers.is_empty() {
        println!("  nobody");
    }
    Ok(())
}

/// `procring rm NAME [--force]`.
pub fn rm(args: &RmArgs) -> Result<(), Box<dyn Error>> {
    match procring::remove(&args.name, args.force) {
        Ok(()) => Ok(()),
        Err(procring::RemoveError::Open(OpenError::Corrupt { name, what })) => {
            Err(format!("{name} is not a readable procring segment ({what}); --force removes it anyway").into())
        }
        Err(e) => Err(e.into()),
    }
}
