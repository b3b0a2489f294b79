//! The culprit lists as the snapshot's JSON arrays (see metrics::culprits).

use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;

use super::{Culprits, ProcTop};
use crate::capture::syscall_names;

/// `[{"name":"openat","abi":"64","count":N}, ..., {"name":"other","count":M}]`
pub struct TopSyscalls<'a>(pub(super) &'a Culprits);

struct SyscallEntry<'a> {
    name: &'a str,
    nr: Option<u16>,
    abi: &'static str,
    count: u64,
}

impl Serialize for SyscallEntry<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("name", self.name)?;
        if let Some(nr) = self.nr {
            m.serialize_entry("nr", &nr)?;
            m.serialize_entry("abi", self.abi)?;
        }
        m.serialize_entry("count", &self.count)?;
        m.end()
    }
}

impl Serialize for TopSyscalls<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        let mut unnamed: heapless::String<12> = heapless::String::new();
        for t in &self.0.syscalls {
            unnamed.clear();
            let _ = core::fmt::write(&mut unnamed, format_args!("sys_{}", t.nr));
            seq.serialize_element(&SyscallEntry {
                name: t.name().unwrap_or(&unnamed),
                nr: Some(t.nr),
                abi: syscall_names::abi_label(t.compat),
                count: t.count,
            })?;
        }
        seq.serialize_element(&SyscallEntry {
            name: "other",
            nr: None,
            abi: "",
            count: self.0.syscalls_other,
        })?;
        seq.end()
    }
}

/// `[{"pid":P,"comm":"x","evts":N,"drops":D,"syscalls":S,"syscalls_per_sec":R},
/// ..., {"pid":0,"comm":"other",...}]`: `syscalls` is this interval's
/// estimate (see the module doc for its error), `syscalls_per_sec` the same
/// over the interval's length (0 when unknown).
pub struct TopProcs<'a> {
    pub(super) list: &'a [ProcTop],
    pub(super) other_evts: u64,
    pub(super) other_drops: u64,
    pub(super) other_calls: u64,
    pub(super) interval_ns: u64,
}

struct ProcEntry<'a> {
    pid: u32,
    comm: &'a str,
    evts: u64,
    drops: u64,
    syscalls: u64,
    interval_ns: u64,
}

impl Serialize for ProcEntry<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let rate = match self.interval_ns {
            0 => 0,
            ns => (u128::from(self.syscalls) * 1_000_000_000 / u128::from(ns)) as u64,
        };
        let mut m = s.serialize_map(Some(6))?;
        m.serialize_entry("pid", &self.pid)?;
        m.serialize_entry("comm", self.comm)?;
        m.serialize_entry("evts", &self.evts)?;
        m.serialize_entry("drops", &self.drops)?;
        m.serialize_entry("syscalls", &self.syscalls)?;
        m.serialize_entry("syscalls_per_sec", &rate)?;
        m.end()
    }
}

impl Serialize for TopProcs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        let interval_ns = self.interval_ns;
        for p in self.list {
            seq.serialize_element(&ProcEntry {
                pid: p.pid,
                comm: p.comm(),
                evts: p.evts,
                drops: p.drops,
                syscalls: p.syscalls,
                interval_ns,
            })?;
        }
        seq.serialize_element(&ProcEntry {
            pid: 0,
            comm: "other",
            evts: self.other_evts,
            drops: self.other_drops,
            syscalls: self.other_calls,
            interval_ns,
        })?;
        seq.end()
    }
}
