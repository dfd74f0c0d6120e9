//! The seed's `multiprocessing.Pipe()` program: the child sends
//! `[42, None, 'hello']` through its end of a duplex pipe and the parent
//! prints what it receives.
//!
//! Run: `cargo run --example pipe` (the program starts its own child).

use std::error::Error;
use std::process::Command;

use procring::Pipe;

type Record = (i32, Option<i32>, String);

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, role, name] = &args[..] {
        if role == "child" {
            let mut child_conn = Pipe::open(name)?;
            child_conn.send(&(42, None::<i32>, "hello"))?;
            return Ok(()); // dropping the end closes it, like conn.close()
        }
    }
    let name = format!("/procring-example-pipe-{}", std::process::id());
    let mut parent_conn = Pipe::create(&name, 4096)?;
    let mut p = Command::new(std::env::current_exe()?).args(["child", &name]).spawn()?;
    let (n, none, s): Record = parent_conn.recv()?;
    // As Python prints the list.
    println!("[{n}, {}, '{s}']", none.map_or("None".to_owned(), |v| v.to_string()));
    p.wait()?;
    Ok(())
}
