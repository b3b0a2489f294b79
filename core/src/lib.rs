//! Kestrel's per-event path, in a crate of its own so that it alone is built
//! for speed (opt-level 3, Cargo.toml) while the rest of the agent is built
//! for size: with fat LTO a crate keeps the optimisation it was compiled
//! with, and this one is about a tenth of the binary but nearly all of the
//! agent's CPU (BENCHMARKS.md, "The per-event path built for speed").
//!
//! Here: the record layouts and their decoding (`capture`), the thread and
//! fd tables (`state`), the rules from YAML to evaluation (`rules`), the
//! culprit counters (`metrics::culprits`) and the leaf pieces they share
//! (`base`, `log`, `procfs`). Loading the probe, the snapshot, the outputs
//! and the loop stay in `kestrel`, which re-exports these modules under the
//! same paths.

pub mod base;
pub mod capture;
pub mod log;
pub mod metrics;
pub mod procfs;
pub mod rules;
pub mod state;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
