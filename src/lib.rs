//! Kestrel: a CO-RE eBPF capture engine with Falco-format metrics, small
//! enough for an ARM edge gateway. Data flows one way:
//! capture → state → metrics → output, driven by the loop in `agent`.

pub mod agent;
pub mod alerts;
pub mod base;
pub mod capture;
pub mod check;
pub mod cli;
pub mod config;
pub mod fdlimit;
pub mod log;
pub mod metrics;
pub mod output;
pub mod pidfile;
pub mod preflight;
pub mod privilege;
pub mod procfs;
pub mod rules;
pub mod state;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
