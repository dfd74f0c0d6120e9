//! The shared model runner: every model runs with a bounded preemption count
//! so CI finishes in minutes. `LOOM_MAX_PREEMPTIONS` in the environment
//! overrides the default of 3.

#![allow(dead_code)]

pub fn model<F: Fn() + Sync + Send + 'static>(f: F) {
    model_bounded(3, f)
}

/// As `model`, with a default preemption bound of `bound` (the environment
/// still overrides it, but only downwards).
pub fn model_bounded<F: Fn() + Sync + Send + 'static>(bound: usize, f: F) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(builder.preemption_bound.map_or(bound, |b| b.min(bound)));
    builder.check(f);
}
