//! The seed's `Manager().list()` program, across real processes: one worker
//! appends the record `('English', 3)` to a shared list of (subject, score)
//! records and says so; a second worker prints every record.
//!
//! The list is a fixed-capacity [`Array`] of records plus a length (a
//! [`Value`]), both changed only while holding the array's `lock()`, so a
//! reader that holds it sees them agree.
//!
//! Run: `cargo run --example manager_list`.

use std::error::Error;
use std::process::Command;

use procring::{Array, Value};

const CAPACITY: usize = 16;

/// A (subject, score) record: the subject's UTF-8 bytes, NUL-padded.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Record {
    subject: [u8; 28],
    score: i32,
}
procring::message!(Record);

impl Record {
    fn new(subject: &str, score: i32) -> Self {
        let mut r = Record { subject: [0; 28], score };
        let n = subject.len().min(r.subject.len());
        r.subject[..n].copy_from_slice(&subject.as_bytes()[..n]);
        r
    }

    fn subject(&self) -> String {
        let end = self.subject.iter().position(|&b| b == 0).unwrap_or(self.subject.len());
        String::from_utf8_lossy(&self.subject[..end]).into_owned()
    }
}

/// The shared list: records, and how many of them are in use.
struct List {
    records: Array<Record>,
    len: Value<u32>,
}

impl List {
    fn names(base: &str) -> (String, String) {
        (format!("{base}-records"), format!("{base}-len"))
    }

    fn create(base: &str, items: &[Record]) -> Result<Self, Box<dyn Error>> {
        let (r, l) = Self::names(base);
        let mut records = vec![Record::new("", 0); CAPACITY];
        records[..items.len()].copy_from_slice(items);
        Ok(Self { records: Array::create(&r, &records)?, len: Value::create(&l, items.len() as u32)? })
    }

    fn open(base: &str) -> Result<Self, Box<dyn Error>> {
        let (r, l) = Self::names(base);
        Ok(Self { records: Array::open(&r)?, len: Value::open(&l)? })
    }

    fn append(&self, record: Record) -> Result<(), Box<dyn Error>> {
        // A holder that died left the last published list: carry on with it.
        let mut records = self.records.lock().unwrap_or_else(|died| died.into_guard());
        let len = self.len.load() as usize;
        let slot = records.get_mut(len).ok_or("the list is full")?;
        *slot = record;
        self.len.store(len as u32 + 1);
        Ok(())
    }

    fn to_vec(&self) -> Result<Vec<Record>, Box<dyn Error>> {
        let records = self.records.lock().unwrap_or_else(|died| died.into_guard());
        Ok(records[..self.len.load() as usize].to_vec())
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().skip(1).map(String::as_str).collect::<Vec<_>>()[..] {
        ["insert", base] => {
            List::open(base)?.append(Record::new("English", 3))?;
            println!("A New record is added");
            Ok(())
        }
        ["print", base] => {
            for record in List::open(base)?.to_vec()? {
                println!("Name: {0} Score: {1} ", record.subject(), record.score);
            }
            Ok(())
        }
        _ => {
            let base = format!("/procring-example-list-{}", std::process::id());
            let _records = List::create(
                &base,
                &[Record::new("Computers", 1), Record::new("Histoty", 5), Record::new("Hindi", 9)],
            )?;
            for role in ["insert", "print"] {
                let status = Command::new(std::env::current_exe()?).args([role, &base]).status()?;
                if !status.success() {
                    return Err(format!("{role} failed: {status}").into());
                }
            }
            Ok(())
        }
    }
}
