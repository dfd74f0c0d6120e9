//! Shared state: [`Value`] and [`Array`], `Pod` values in a segment (or on
//! the heap) behind a robust mutex and a seqlock ([`cells`]).

mod array;
pub(crate) mod cells;
mod value;

pub use array::{Array, ArrayGuard};
pub use value::{Value, ValueGuard};
