//! Pieces several rooms share, depending on nothing above them: the fixed
//! map (state, metrics), the safe directory walk (outputs, pidfile) and the
//! clocks (metrics, outputs, alerts, agent, log), the binary's own pages
//! (agent), inflating what build.rs embedded compressed (capture, rules) and
//! the token bucket (drop alerts, rule alerts).

pub mod bucket;
pub mod image;
pub mod path;
pub mod table;
pub mod time;
pub mod zlib;
