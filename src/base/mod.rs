//! Pieces several rooms share, depending on nothing above them: the fixed
//! map (state, metrics), the safe directory walk (outputs, pidfile) and the
//! clocks (metrics, outputs, alerts, agent, log).

pub mod path;
pub mod table;
pub mod time;
