//! Pieces several rooms share, depending on nothing above them: the fixed
//! map (state, metrics), the safe directory walk (outputs, pidfile) and the
//! clocks (metrics, outputs, alerts, agent, log), the binary's own pages
//! (agent), and inflating what build.rs embedded compressed (capture, rules).

pub mod image;
pub mod path;
pub mod table;
pub mod time;
pub mod zlib;
