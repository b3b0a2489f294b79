//! Kestrel: a CO-RE eBPF capture engine with Falco-format metrics, small
//! enough for an ARM edge gateway. Data flows one way:
//! capture → state → metrics → output, driven by the loop in `agent`.
//! The per-event path (decoding, state, rule evaluation) is the `kestrel-core` crate,
//! built for speed; its modules are re-exported here under their own names.

#[cfg(any(test, feature = "testing"))]
pub use kestrel_core::testing;
pub use kestrel_core::{base, log, log_limited, log_line, procfs, state};

pub mod agent;
pub mod alerts;
pub mod capture;
pub mod check;
pub mod cli;
pub mod config;
pub mod fdlimit;
pub mod metrics;
pub mod output;
pub mod pidfile;
pub mod preflight;
pub mod privilege;
pub mod rules;
