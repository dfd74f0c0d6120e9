//! A tag for the calling thread, unique in this process, and whether a
//! tag's thread still runs: for process-local records of which thread holds
//! what (a queue's claim words, a `Value`'s lock), where a thread's id would
//! do but could be reused after it ends.
//!
//! `current()` is `None` while the thread is being torn down (its tag has
//! been dropped): callers treat such a thread as holding nothing.

use std::collections::HashSet;
use std::sync::Mutex;

use crate::sync::{AtomicU64, Ordering};

static NEXT: AtomicU64 = AtomicU64::new(1);
static LIVE: Mutex<Option<HashSet<u64>>> = Mutex::new(None);

struct Tag(u64);

impl Drop for Tag {
    fn drop(&mut self) {
        // From here on the thread has no tag: it holds nothing by tag.
        CACHED.with(|c| c.set(0));
        if let Some(live) = LIVE.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            live.remove(&self.0);
        }
    }
}

thread_local! {
    static TAG: Tag = {
        let tag = NEXT.fetch_add(1, Ordering::Relaxed);
        LIVE.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(HashSet::new).insert(tag);
        Tag(tag)
    };
    /// `TAG`'s value once known: a const thread-local without a
    /// destructor is one load, where `TAG` is a lazily initialised one.
    static CACHED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

#[inline]
pub(crate) fn current() -> Option<u64> {
    match CACHED.with(|c| c.get()) {
        0 => first(),
        tag => Some(tag),
    }
}

#[cold]
fn first() -> Option<u64> {
    let tag = TAG.try_with(|t| t.0).ok()?;
    CACHED.with(|c| c.set(tag));
    Some(tag)
}

pub(crate) fn alive(tag: u64) -> bool {
    LIVE.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_some_and(|l| l.contains(&tag))
}
