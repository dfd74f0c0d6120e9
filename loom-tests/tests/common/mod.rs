//! The shared model runner: every model runs with a bounded preemption count
//! so CI finishes in minutes. `LOOM_MAX_PREEMPTIONS` in the environment
//! overrides the default of 3.

pub fn model<F: Fn() + Sync + Send + 'static>(f: F) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(f);
}
