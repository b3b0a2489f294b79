//! The `output_fields` map of a snapshot: a fixed-capacity list of
//! (name, value) pairs with Falco's include_empty_values rule, serialised
//! in key order without allocation.

use core::fmt::Write as _;

use heapless::{String as HString, Vec as HVec};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use super::culprits::Culprits;

pub const MAX_FIELDS: usize = 512;

#[derive(Clone, Copy)]
pub enum Value<'a> {
    U64(u64),
    F64(f64),
    Str(&'a str),
    /// The culprit lists (see metrics::culprits), as JSON arrays.
    Syscalls(&'a Culprits),
    Procs(&'a Culprits, bool),
}

/// Culprit lists compare by identity: tests compare scalar fields.
impl PartialEq for Value<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::U64(a), Value::U64(b)) => a == b,
            (Value::F64(a), Value::F64(b)) => a == b,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Syscalls(a), Value::Syscalls(b)) => core::ptr::eq(*a, *b),
            (Value::Procs(a, x), Value::Procs(b, y)) => core::ptr::eq(*a, *b) && x == y,
            _ => false,
        }
    }
}

impl core::fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Value::U64(v) => write!(f, "U64({v})"),
            Value::F64(v) => write!(f, "F64({v})"),
            Value::Str(v) => write!(f, "Str({v:?})"),
            Value::Syscalls(_) => f.write_str("Syscalls"),
            Value::Procs(_, by_drops) => write!(f, "Procs(by_drops: {by_drops})"),
        }
    }
}

impl Value<'_> {
    fn is_empty(&self) -> bool {
        match *self {
            Value::U64(v) => v == 0,
            Value::F64(v) => v == 0.0,
            Value::Str(s) => s.is_empty(),
            Value::Syscalls(_) => false,
            Value::Procs(c, by_drops) => by_drops && c.by_drops.is_empty(),
        }
    }
}

pub use kestrel_core::metrics::KEY_MAX;
pub type Key = HString<KEY_MAX>;

/// Fields that stay even when zero and include_empty_values is off
/// (stats_writer.cpp always sets the wrapper fields and the scap totals).
const ALWAYS: &[&str] = &[
    "evt.source",
    "evt.time",
    "evt.hostname",
    "falco.duration_sec",
    "falco.host_boot_ts",
    "falco.host_num_cpus",
    "falco.hostname",
    "falco.kernel_release",
    "falco.num_evts",
    "falco.num_evts_prev",
    "falco.outputs_queue_num_drops",
    "falco.reload_ts",
    "falco.start_ts",
    "falco.version",
    "falco.evts_rate_sec",
    "scap.engine_name",
    "scap.n_evts",
    "scap.n_evts_prev",
    "scap.evts_rate_sec",
    "scap.n_drops",
    "scap.n_drops_prev",
    "scap.evts_drop_rate_sec",
    "scap.n_drops_perc",
    "falco.n_fds",
    "falco.n_threads",
];

pub struct Fields<'a> {
    pub list: HVec<(Key, Value<'a>), MAX_FIELDS>,
    pub include_empty: bool,
}

impl<'a> Fields<'a> {
    pub fn new(include_empty: bool) -> Self {
        Fields {
            list: HVec::new(),
            include_empty,
        }
    }

    pub fn put(&mut self, key: &str, v: Value<'a>) {
        if !self.include_empty && v.is_empty() && !ALWAYS.contains(&key) {
            return;
        }
        self.put_always(key, v);
    }

    /// Puts without the emptiness check: for values whose zero check was
    /// made on the raw figure (Falco 0.37 tests before converting to MB).
    pub fn put_always(&mut self, key: &str, v: Value<'a>) {
        let mut k = Key::new();
        let _ = k.push_str(key);
        if self.list.push((k, v)).is_err() {
            crate::log_limited!(
                crate::log::Key::FieldsFull,
                "a snapshot has more than {MAX_FIELDS} fields: the rest are left out"
            );
        }
    }

    pub fn put_fmt(&mut self, v: Value<'a>, args: core::fmt::Arguments<'_>) {
        let mut k = Key::new();
        let _ = k.write_fmt(args);
        self.put(&k, v);
    }

    pub fn sort(&mut self) {
        self.list.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    }
}

impl Serialize for Fields<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.list.len()))?;
        for (k, v) in &self.list {
            match *v {
                Value::U64(x) => m.serialize_entry(k.as_str(), &x)?,
                Value::F64(x) => m.serialize_entry(k.as_str(), &x)?,
                Value::Str(x) => m.serialize_entry(k.as_str(), x)?,
                Value::Syscalls(c) => m.serialize_entry(k.as_str(), &c.top_syscalls())?,
                Value::Procs(c, by_drops) => {
                    m.serialize_entry(k.as_str(), &c.top_procs(by_drops))?
                }
            }
        }
        m.end()
    }
}
