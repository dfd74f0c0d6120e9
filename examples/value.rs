//! The seeds' two `Value`/`Array` programs, across real processes.
//!
//! 1. A worker sets a shared `Value('i')` to 10 and doubles each element of
//!    `Array('i', [1, 2, 3, 4, 5])`; the main process prints
//!    `Shared Number: 10` and `Shared Array: [2, 4, 6, 8, 10]`.
//! 2. From the Python docs: a worker sets a shared `Value('d')` to
//!    3.1415927 and negates `Array('i', range(10))`; the main process prints
//!    `3.1415927` and `[0, -1, -2, -3, -4, -5, -6, -7, -8, -9]`.
//!
//! Run: `cargo run --example value`. The program starts its own workers
//! (itself again, with a role argument).

use std::error::Error;
use std::process::Command;

use procring::{Array, Value};

/// The number the seed stores (Python's docs' approximation of pi).
#[allow(clippy::approx_constant)]
const SEED_NUMBER: f64 = 3.1415927;

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().skip(1).map(String::as_str).collect::<Vec<_>>()[..] {
        ["double-worker", number, array] => {
            let (number, array) = (Value::<i32>::open(number)?, Array::<i32>::open(array)?);
            number.store(10);
            for i in 0..array.len() {
                array.update(i, |x| x * 2)?;
            }
            Ok(())
        }
        ["negate-worker", number, array] => {
            let (number, array) = (Value::<f64>::open(number)?, Array::<i32>::open(array)?);
            number.store(SEED_NUMBER);
            for i in 0..array.len() {
                array.update(i, |x| -x)?;
            }
            Ok(())
        }
        _ => {
            double()?;
            negate()
        }
    }
}

/// Runs this program again as `role` on the two segments, and waits for it.
fn run_worker(role: &str, number: &str, array: &str) -> Result<(), Box<dyn Error>> {
    let status = Command::new(std::env::current_exe()?).args([role, number, array]).status()?;
    if !status.success() {
        return Err(format!("{role} failed: {status}").into());
    }
    Ok(())
}

fn names(what: &str) -> (String, String) {
    let pid = std::process::id();
    (format!("/procring-example-{what}-number-{pid}"), format!("/procring-example-{what}-array-{pid}"))
}

fn double() -> Result<(), Box<dyn Error>> {
    let (n, a) = names("double");
    let shared_number = Value::<i32>::create(&n, 0)?;
    let shared_array = Array::<i32>::create(&a, &[1, 2, 3, 4, 5])?;
    run_worker("double-worker", &n, &a)?;
    println!("Shared Number: {}", shared_number.load());
    println!("Shared Array: {:?}", shared_array.to_vec());
    Ok(())
}

fn negate() -> Result<(), Box<dyn Error>> {
    let (n, a) = names("negate");
    let num = Value::<f64>::create(&n, 0.0)?;
    let arr = Array::<i32>::create(&a, &(0..10).collect::<Vec<_>>())?;
    run_worker("negate-worker", &n, &a)?;
    println!("{}", num.load());
    println!("{:?}", arr.to_vec());
    Ok(())
}
