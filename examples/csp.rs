//! The seed's PyCSP program in procring's terms: two processes run in
//! parallel, connected by a channel (a simplex pipe from P1 to P2); each
//! prints `P1 exiting` / `P2 exiting`, and the parent prints `Terminating`
//! once both have finished (PyCSP's `Parallel(P1(), P2())`).
//!
//! Run: `cargo run --example csp`.

use std::error::Error;
use std::process::Command;
use std::time::{Duration, Instant};

use procring::{OpenError, Options, Pipe};

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    match &args[..] {
        [_, p, name] if p == "P1" => {
            let mut channel = open_when_created(name)?;
            std::thread::sleep(Duration::from_millis(100)); // PyCSP's time.sleep(1), shorter
            channel.send_bytes(b"done")?;
            println!("P1 exiting");
            Ok(())
        }
        [_, p, name] if p == "P2" => {
            // P2 makes the channel; until P1 attaches, a receive just waits.
            let mut channel = Pipe::create_receiver(name, 256, &Options::new())?;
            channel.recv_bytes_timeout(Duration::from_secs(10))?; // P2 runs until P1 has spoken
            println!("P2 exiting");
            Ok(())
        }
        _ => {
            let name = format!("/procring-example-csp-{}", std::process::id());
            let exe = std::env::current_exe()?;
            let mut p2 = Command::new(&exe).args(["P2", &name]).spawn()?;
            let mut p1 = Command::new(&exe).args(["P1", &name]).spawn()?;
            let (s1, s2) = (p1.wait()?, p2.wait()?);
            if !(s1.success() && s2.success()) {
                return Err("a process failed".into());
            }
            println!("Terminating");
            Ok(())
        }
    }
}

/// Opens the sending end of `name`, waiting (up to 10 s) for P2 to create it.
fn open_when_created(name: &str) -> Result<procring::pipe::Sender, Box<dyn Error>> {
    let start = Instant::now();
    loop {
        match Pipe::open_sender(name, &Options::new()) {
            Ok(sender) => return Ok(sender),
            Err(OpenError::NotFound(_)) if start.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => return Err(e.into()),
        }
    }
}
