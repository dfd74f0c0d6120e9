//! A message type's identity across programs: two crates (here, two
//! modules standing for a producer's and a consumer's crates) that each
//! define the same `#[repr(C)]` struct and declare the same wire name open
//! each other's segments; another name, size or alignment is refused with
//! both types named.

mod common;

use common::SegName;
use procring::queue::{Receiver, Sender};
use procring::spsc::{Consumer, Producer};
use procring::{Array, OpenError, Value};

/// The producer's crate.
mod producer {
    #[derive(Clone, Copy, Debug, PartialEq, procring::Pod, procring::Zeroable)]
    #[bytemuck(crate = "procring::bytemuck")]
    #[repr(C)]
    pub struct Tick {
        pub price: f64,
        pub qty: u32,
        pub venue: u32,
    }
    procring::message!(Tick);
}

/// The consumer's crate: the same struct, its own definition.
mod consumer {
    #[derive(Clone, Copy, Debug, PartialEq, procring::Pod, procring::Zeroable)]
    #[bytemuck(crate = "procring::bytemuck")]
    #[repr(C)]
    pub struct Tick {
        pub price: f64,
        pub qty: u32,
        pub venue: u32,
    }
    procring::message!(Tick);
}

/// The same layout under another name.
mod renamed {
    #[derive(Clone, Copy, procring::Pod, procring::Zeroable)]
    #[bytemuck(crate = "procring::bytemuck")]
    #[repr(C)]
    pub struct Tick {
        pub price: f64,
        pub qty: u32,
        pub venue: u32,
    }
    procring::message!(Tick = "Trade");
}

/// The same name, another layout.
mod widened {
    #[derive(Clone, Copy, procring::Pod, procring::Zeroable)]
    #[bytemuck(crate = "procring::bytemuck")]
    #[repr(C)]
    pub struct Tick {
        pub price: f64,
        pub qty: u64,
        pub venue: u64,
    }
    procring::message!(Tick);
}

fn is_type_mismatch<T>(r: Result<T, OpenError>, found: &str, expected: &str) {
    match r {
        Err(OpenError::TypeMismatch { found: f, expected: e, .. }) => {
            assert!(f.contains(found) && e.contains(expected), "found {f:?}, expected {e:?}");
        }
        Err(e) => panic!("not a type mismatch: {e}"),
        Ok(_) => panic!("opened a segment of another type"),
    }
}

#[test]
fn the_same_struct_defined_in_two_crates_with_one_name_crosses() {
    let name = SegName::new("message-queue");
    let (tx, _rx) = procring::queue::create::<producer::Tick>(name.as_str(), 4).unwrap();
    let rx = Receiver::<consumer::Tick>::open(name.as_str()).unwrap();
    tx.send(producer::Tick { price: 1.5, qty: 100, venue: 7 }).unwrap();
    assert_eq!(rx.recv(), Ok(consumer::Tick { price: 1.5, qty: 100, venue: 7 }));

    let ring = SegName::new("message-spsc");
    let mut ptx = Producer::<producer::Tick>::create(ring.as_str(), 4).unwrap();
    let mut crx = Consumer::<consumer::Tick>::open(ring.as_str()).unwrap();
    ptx.send(producer::Tick { price: 2.0, qty: 1, venue: 2 }).unwrap();
    assert_eq!(crx.recv().unwrap().qty, 1);

    let value = SegName::new("message-value");
    let _v = Value::<producer::Tick>::create(value.as_str(), producer::Tick { price: 0.0, qty: 3, venue: 0 }).unwrap();
    assert_eq!(Value::<consumer::Tick>::open(value.as_str()).unwrap().load().qty, 3);
}

#[test]
fn another_name_or_layout_is_a_type_mismatch_naming_both() {
    let name = SegName::new("message-mismatch");
    let (_tx, _rx) = procring::queue::create::<producer::Tick>(name.as_str(), 4).unwrap();
    is_type_mismatch(Sender::<renamed::Tick>::open(name.as_str()), "Tick (size 16", "Trade (size 16");
    is_type_mismatch(Receiver::<widened::Tick>::open(name.as_str()), "Tick (size 16", "Tick (size 24");
    is_type_mismatch(Receiver::<[u32; 4]>::open(name.as_str()), "Tick", "u32 (size 16");
    let array = SegName::new("message-array");
    let _a = Array::<u64>::create(array.as_str(), &[1, 2]).unwrap();
    is_type_mismatch(Array::<i64>::open(array.as_str()), "u64", "i64");
}
