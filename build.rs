//! Planted bugs, for CI only: `.ci/run` sets `PROCRING_BUG` to compile one
//! of them into a loom build and shows that the models catch it
//! (docs/design.md, "Planted bugs").
//!
//! A build-script cfg, not `RUSTFLAGS`: changing `RUSTFLAGS` rebuilds every
//! dependency (loom included) for each bug, while this rebuilds procring and
//! the models alone. Outside `cfg(loom)` the variable is ignored, so a stray
//! `PROCRING_BUG` in a user's shell can never plant a bug in a real build.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=PROCRING_BUG");
    let Ok(bug) = std::env::var("PROCRING_BUG") else {
        return;
    };
    if bug.is_empty() {
        return;
    }
    if std::env::var_os("CARGO_CFG_LOOM").is_none() {
        println!("cargo::warning=PROCRING_BUG={bug} ignored: planted bugs exist only under --cfg loom");
        return;
    }
    println!("cargo::rustc-cfg=procring_bug=\"{bug}\"");
}
