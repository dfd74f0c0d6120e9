//! The seed's two `multiprocessing.Queue` programs, across real processes.
//!
//! 1. A worker process puts a string on a queue; the main process gets it and
//!    prints `Received message in the main process: Hello from the worker process!`.
//! 2. A worker puts `[42, None, 'hello']` (a serialized value, as Python
//!    pickles it) and the main process prints it.
//!
//! Run: `cargo run --example queue`. The program starts its own workers
//! (itself again, with a role argument).

use std::error::Error;
use std::process::Command;

use procring::SerdeQueue;

type Record = (i32, Option<i32>, String);

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("hello-worker"), Some(name)) => {
            let queue = SerdeQueue::<String>::open(name)?;
            queue.send(&"Hello from the worker process!".to_owned())?;
            Ok(())
        }
        (Some("record-worker"), Some(name)) => {
            let queue = SerdeQueue::<Record>::open(name)?;
            queue.send(&(42, None, "hello".to_owned()))?;
            Ok(())
        }
        _ => {
            hello()?;
            record()
        }
    }
}

/// Starts this program again as `role`, on the queue `name`.
fn spawn(role: &str, name: &str) -> Result<std::process::Child, Box<dyn Error>> {
    Ok(Command::new(std::env::current_exe()?).args([role, name]).spawn()?)
}

fn hello() -> Result<(), Box<dyn Error>> {
    let name = format!("/procring-example-queue-{}", std::process::id());
    let queue = SerdeQueue::<String>::create(&name, 4, 256)?;
    let mut worker = spawn("hello-worker", &name)?;
    let message = queue.recv()?;
    println!("Received message in the main process: {message}");
    worker.wait()?;
    Ok(())
}

fn record() -> Result<(), Box<dyn Error>> {
    let name = format!("/procring-example-record-{}", std::process::id());
    let queue = SerdeQueue::<Record>::create(&name, 4, 256)?;
    let mut worker = spawn("record-worker", &name)?;
    let (n, none, s) = queue.recv()?;
    // As Python prints the list.
    println!("[{n}, {}, '{s}']", none.map_or("None".to_owned(), |v| v.to_string()));
    worker.wait()?;
    Ok(())
}
