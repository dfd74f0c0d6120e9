//! The shared-memory layer: named segments ([`segment`]), the header every
//! segment starts with ([`header`]), the attachment table that records which
//! processes use one ([`peer`]), building an object over a segment or the
//! heap ([`object`], [`backing`]), the read-only look `procring ls` and stale
//! reclaiming use ([`probe`]), and [`Options`].
//!
//! This layer knows nothing of what an object does with its control block
//! and data region: each kind describes their sizes ([`header::Layout`]).

pub(crate) mod backing;
#[cfg(not(loom))]
pub(crate) mod header;
#[cfg(not(loom))]
pub(crate) mod object;
mod options;
pub(crate) mod peer;
#[cfg(not(loom))]
pub(crate) mod probe;
#[cfg(not(loom))]
pub(crate) mod segment;

pub use options::Options;
pub use peer::PeerInfo;

#[cfg(not(loom))]
pub use header::{Kind, VERSION as LAYOUT_VERSION};
#[cfg(not(loom))]
pub use segment::unlink;
