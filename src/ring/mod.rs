//! The lock-free ring protocols. They run over memory they are handed (a
//! named segment, or the heap) and know nothing of where it came from.

pub(crate) mod bytes;
pub(crate) mod mpmc;
pub mod spsc;
