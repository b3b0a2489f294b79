//! Pieces several rooms share, depending on nothing above them: the fixed
//! map (state, metrics), the safe directory walk (outputs, pidfile) and the
//! clocks (metrics, outputs, alerts, agent, log), and the binary's own pages
//! (agent).

pub mod image;
pub mod path;
pub mod table;
pub mod time;
