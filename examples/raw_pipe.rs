//! The seed's `os.pipe()` + `fork` program, with a procring simplex pipe:
//! the child writes a message into the pipe and the parent reads it and
//! prints `Received message in parent process: Hello from the child process!`.
//!
//! Run: `cargo run --example raw_pipe` (the program starts its own child).

use std::error::Error;
use std::process::Command;

use procring::{Options, Pipe};

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, role, name] = &args[..] {
        if role == "child" {
            let mut write_end = Pipe::open_sender(name, &Options::new())?;
            write_end.send_bytes("Hello from the child process!".as_bytes())?;
            return Ok(());
        }
    }
    let name = format!("/procring-example-raw-pipe-{}", std::process::id());
    let mut read_end = Pipe::create_receiver(&name, 1024, &Options::new())?;
    let mut child = Command::new(std::env::current_exe()?).args(["child", &name]).spawn()?;
    let mut buf = [0u8; 1024];
    let n = read_end.recv_bytes_into(&mut buf)?;
    println!("Received message in parent process: {}", String::from_utf8_lossy(&buf[..n]));
    child.wait()?;
    Ok(())
}
