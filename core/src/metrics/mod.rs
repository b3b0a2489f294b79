//! The per-event side of the metrics: the culprit counters' tables. The
//! snapshot that renders them is `kestrel::metrics`, once an interval.

pub mod culprits;

/// The longest key of a metrics snapshot (rule counters are named from
/// rule names, so the rules cut theirs to it).
pub const KEY_MAX: usize = 128;
