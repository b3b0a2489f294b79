//! Culprit counters: which syscalls load the machine and which processes
//! make the most traced events and drops, over the last interval.
//!
//! Falco declined per-syscall counters as too costly (falcosecurity/falco
//! issue 2333); here the kernel keeps them as per-CPU array slots bumped on
//! every syscall exit (one add on a line the CPU owns), user space sums and
//! differences them once per snapshot. Traced events per process come from
//! the state's activity table; drops per process from the kernel's small
//! LRU table (only the drop path touches it). Everything is bounded: the top
//! K syscalls and top N processes, each list closed by an `other` bucket so
//! the entries add up to the interval's total. Buffers are sized at start.

use heapless::Vec as HVec;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;

use crate::base::table::FixedMap;
use crate::capture::{syscall_names, Comm, SyscallCounts, KA_MAX, SYSCALL_SLOTS};
use crate::state::activity::Activity;

/// Upper bound of both list lengths (K and N).
pub const MAX_TOP: usize = 32;
/// Syscall series the exporter can hold: every slot of both ABIs' tables.
pub const MAX_EXPORTED: usize = 2 * SYSCALL_SLOTS;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CulpritConfig {
    pub enabled: bool,
    pub top_syscalls: usize,
    pub top_procs: usize,
    /// Processes tracked per interval (user space) and for drops (kernel).
    pub capacity: usize,
}

impl Default for CulpritConfig {
    fn default() -> Self {
        CulpritConfig {
            enabled: true,
            top_syscalls: 5,
            top_procs: 5,
            capacity: 256,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallTop {
    pub compat: bool,
    pub nr: u16,
    pub count: u64,
}

impl SyscallTop {
    pub fn name(&self) -> Option<&'static str> {
        syscall_names::name(self.compat, usize::from(self.nr))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcTop {
    pub pid: u32,
    pub comm: Comm,
    pub evts: u64,
    pub drops: u64,
}

impl ProcTop {
    pub fn comm(&self) -> &str {
        let end = self.comm.iter().position(|&b| b == 0).unwrap_or(16);
        core::str::from_utf8(&self.comm[..end]).unwrap_or("?")
    }
}

pub struct Culprits {
    pub cfg: CulpritConfig,
    prev: Box<SyscallCounts>,
    cur: Box<SyscallCounts>,
    /// Cumulative kernel drop count per pid at the last snapshot, for the
    /// pids the kernel's table held then and no others.
    drops_seen: FixedMap<u64>,
    pub syscalls: HVec<SyscallTop, MAX_TOP>,
    /// Interval syscall exits not in `syscalls` (unnumbered ones included).
    pub syscalls_other: u64,
    prev_unnumbered: u64,
    pub by_evts: HVec<ProcTop, MAX_TOP>,
    pub by_drops: HVec<ProcTop, MAX_TOP>,
    /// Interval traced events / drops of processes not in the lists.
    pub evts_other: u64,
    pub drops_other: u64,
    /// Per pid the kernel's table holds now: (cumulative, this interval).
    drops_now: FixedMap<(u64, u64)>,
    /// Syscalls ever in an interval's top, by ABI and number: a counter
    /// series once exported stays, or rate() breaks and series churn.
    exported: [[u64; SYSCALL_SLOTS / 64]; 2],
}

fn zeroed() -> Box<SyscallCounts> {
    Box::new([[0; SYSCALL_SLOTS]; KA_MAX])
}

/// Inserts `item` keeping `list` sorted by `key` descending, at most `n` long.
fn keep_top<T: Copy, const M: usize>(
    list: &mut HVec<T, M>,
    n: usize,
    item: T,
    key: impl Fn(&T) -> u64,
) {
    let at = list
        .iter()
        .position(|x| key(x) < key(&item))
        .unwrap_or(list.len());
    if at >= n.min(M) {
        return;
    }
    if list.len() == n.min(M) {
        list.pop();
    }
    let _ = list.insert(at, item);
}

impl Culprits {
    pub fn new(cfg: CulpritConfig) -> Culprits {
        let cap = cfg.capacity.max(1);
        Culprits {
            cfg,
            prev: zeroed(),
            cur: zeroed(),
            drops_seen: FixedMap::with_capacity(cap),
            syscalls: HVec::new(),
            syscalls_other: 0,
            prev_unnumbered: 0,
            by_evts: HVec::new(),
            by_drops: HVec::new(),
            evts_other: 0,
            drops_other: 0,
            drops_now: FixedMap::with_capacity(cap),
            exported: [[0; SYSCALL_SLOTS / 64]; 2],
        }
    }

    /// The cumulative per-syscall counts buffer to fill (then `update`).
    pub fn counts_mut(&mut self) -> &mut SyscallCounts {
        &mut self.cur
    }

    /// Takes this interval's figures: `cur` holds fresh cumulative syscall
    /// counts, `drops` yields (pid, cumulative drops) from the kernel,
    /// `interval_drops` is the interval's drop total. Clears `activity`.
    pub fn update(
        &mut self,
        unnumbered: u64,
        drops: impl FnOnce(&mut dyn FnMut(u32, u64)),
        interval_drops: u64,
        activity: &mut Activity,
    ) {
        self.syscalls.clear();
        let mut total = unnumbered.saturating_sub(self.prev_unnumbered);
        for (abi, (cur, prev)) in self.cur.iter().zip(self.prev.iter()).enumerate() {
            for (nr, (c, p)) in cur.iter().zip(prev.iter()).enumerate() {
                let count = c.saturating_sub(*p);
                if count == 0 {
                    continue;
                }
                total += count;
                let item = SyscallTop {
                    compat: abi == 1,
                    nr: nr as u16,
                    count,
                };
                keep_top(&mut self.syscalls, self.cfg.top_syscalls, item, |s| s.count);
            }
        }
        self.syscalls_other = total - self.syscalls.iter().map(|s| s.count).sum::<u64>();
        for s in &self.syscalls {
            let nr = usize::from(s.nr);
            self.exported[usize::from(s.compat)][nr / 64] |= 1 << (nr % 64);
        }
        self.prev_unnumbered = unnumbered;
        core::mem::swap(&mut self.prev, &mut self.cur);

        self.read_drops(drops);
        self.by_evts.clear();
        self.by_drops.clear();
        let drops_of = |pid: u32| {
            let d = self.drops_now.get(u64::from(pid)).map_or(0, |d| d.1);
            d.min(interval_drops)
        };
        for p in activity.iter() {
            let item = ProcTop {
                pid: p.pid,
                comm: p.comm,
                evts: p.evts,
                drops: drops_of(p.pid),
            };
            keep_top(&mut self.by_evts, self.cfg.top_procs, item, |x| x.evts);
        }
        for (pid, &(_, d)) in self.drops_now.iter().filter(|(_, d)| d.1 > 0) {
            let pid = pid as u32;
            let a = activity.get(pid);
            let item = ProcTop {
                pid,
                comm: a.map_or([0; 16], |a| a.comm),
                evts: a.map_or(0, |a| a.evts),
                drops: d,
            };
            keep_top(&mut self.by_drops, self.cfg.top_procs, item, |x| x.drops);
        }
        // The table is walked after the drop total was read, so it can hold
        // a few drops the total has not counted yet: the list never claims
        // more than the interval's drops, `other` takes what it does not name.
        let mut left = interval_drops;
        for p in self.by_drops.iter_mut() {
            p.drops = p.drops.min(left);
            left -= p.drops;
        }
        self.by_drops.retain(|p| p.drops > 0);
        self.drops_other = left;
        self.evts_other = activity.total - self.by_evts.iter().map(|p| p.evts).sum::<u64>();
        activity.clear();
    }

    /// This interval's drops per pid: the kernel's cumulative count minus
    /// the last snapshot's. The kernel table is an LRU, so `drops_seen` is
    /// rebuilt from each walk: a pid it evicted is forgotten (it restarts
    /// from zero there) instead of filling the table with dead pids.
    fn read_drops(&mut self, drops: impl FnOnce(&mut dyn FnMut(u32, u64))) {
        let now = &mut self.drops_now;
        now.remove_where(|_, _| true);
        drops(&mut |pid, cumulative| {
            // A walk of a changing hash table can repeat a key: the last wins.
            // Beyond capacity (churn during the walk) drops go to `other`.
            let key = u64::from(pid);
            match now.get_mut(key) {
                Some(v) => v.0 = cumulative,
                None => {
                    let _ = now.insert(key, (cumulative, 0));
                }
            }
        });
        let seen = &mut self.drops_seen;
        now.for_each_mut(|pid, (cumulative, delta)| {
            let before = seen.get(pid).copied().unwrap_or(0);
            // Below the last count: evicted and added again since.
            *delta = cumulative.checked_sub(before).unwrap_or(*cumulative);
        });
        seen.remove_where(|_, _| true);
        for (pid, &(cumulative, _)) in now.iter() {
            let _ = seen.insert(pid, cumulative);
        }
    }

    /// Every syscall that was ever in an interval's top, by ABI then number,
    /// with its calls since load (valid after `update`).
    pub fn exported_syscalls(&self) -> impl Iterator<Item = SyscallTop> + '_ {
        self.exported
            .iter()
            .enumerate()
            .flat_map(move |(abi, words)| {
                (0..SYSCALL_SLOTS)
                    .filter(move |nr| words[nr / 64] & (1 << (nr % 64)) != 0)
                    .map(move |nr| SyscallTop {
                        compat: abi == 1,
                        nr: nr as u16,
                        count: self.prev[abi][nr],
                    })
            })
    }

    pub fn top_syscalls(&self) -> TopSyscalls<'_> {
        TopSyscalls(self)
    }

    pub fn top_procs(&self, by_drops: bool) -> TopProcs<'_> {
        TopProcs {
            list: if by_drops {
                &self.by_drops
            } else {
                &self.by_evts
            },
            other_evts: if by_drops { 0 } else { self.evts_other },
            other_drops: if by_drops { self.drops_other } else { 0 },
        }
    }
}

/// `[{"name":"openat","abi":"64","count":N}, ..., {"name":"other","count":M}]`
pub struct TopSyscalls<'a>(&'a Culprits);

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
                abi: if t.compat { "32" } else { "64" },
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

/// `[{"pid":P,"comm":"x","evts":N,"drops":D}, ..., {"pid":0,"comm":"other",...}]`
pub struct TopProcs<'a> {
    list: &'a [ProcTop],
    other_evts: u64,
    other_drops: u64,
}

struct ProcEntry<'a>(u32, &'a str, u64, u64);

impl Serialize for ProcEntry<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("pid", &self.0)?;
        m.serialize_entry("comm", self.1)?;
        m.serialize_entry("evts", &self.2)?;
        m.serialize_entry("drops", &self.3)?;
        m.end()
    }
}

impl Serialize for TopProcs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for p in self.list {
            seq.serialize_element(&ProcEntry(p.pid, p.comm(), p.evts, p.drops))?;
        }
        let (e, d) = (self.other_evts, self.other_drops);
        seq.serialize_element(&ProcEntry(0, "other", e, d))?;
        seq.end()
    }
}

#[cfg(test)]
mod tests;
