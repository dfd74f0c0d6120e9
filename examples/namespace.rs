//! The seed's `Manager().Namespace()` program, across real processes: a
//! worker does `x += 5` and `y *= 10` on a shared namespace; the main process
//! prints it before and after.
//!
//! A namespace of named fields is a `#[repr(C)]` struct of `Pod` fields in
//! a [`Value`]: the fields are named and typed, the whole struct is read
//! without tearing, and `lock()` changes several fields as one step.
//!
//! Run: `cargo run --example namespace`.

use std::error::Error;
use std::fmt;
use std::process::Command;

use procring::Value;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Namespace {
    x: i64,
    y: i64,
}
procring::message!(Namespace);

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // As Python prints a Namespace.
        write!(f, "Namespace(x={}, y={})", self.x, self.y)
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let [_, role, name] = &args[..] {
        if role == "worker" {
            let ns = Value::<Namespace>::open(name)?;
            // A holder that died left the last published namespace: carry on.
            let mut g = ns.lock().unwrap_or_else(|died| died.into_guard());
            g.x += 5;
            g.y *= 10;
            return Ok(());
        }
    }
    let name = format!("/procring-example-namespace-{}", std::process::id());
    let using_ns = Value::create(&name, Namespace { x: 1, y: 1 })?;
    println!("before {}", using_ns.load());
    let status = Command::new(std::env::current_exe()?).args(["worker", &name]).status()?;
    if !status.success() {
        return Err(format!("worker failed: {status}").into());
    }
    println!("after {}", using_ns.load());
    Ok(())
}
