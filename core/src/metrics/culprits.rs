//! Culprit counters: which syscalls load the machine and which processes
//! make the most syscalls, traced events and drops, over the last interval.
//!
//! Falco declined per-syscall counters as too costly (falcosecurity/falco
//! issue 2333); here the kernel keeps them as per-CPU array slots bumped on
//! every syscall exit (one add on a line the CPU owns), user space sums and
//! differences them once per snapshot. Traced events per process come from
//! the state's activity table; drops per process from the kernel's small
//! LRU table (only the drop path touches it).
//!
//! Syscalls per process, traced or not, are sampled in the kernel: each CPU
//! counts its syscall exits down a random gap (uniform in [P/2, 3P/2], mean
//! P = `--culprit-sample-period`, default 64) and gives the process that ends a gap one
//! sample in an LRU table (`calls_by_pid`). A process's estimate is its
//! samples x P. Error: at least as tight as binomial sampling at 1/P, a
//! relative standard error of at most 1/sqrt(samples) (uniform gaps give
//! less: about 1/sqrt(12 samples) for a process that has its CPU), plus at
//! most one gap (P calls) per CPU where the interval starts and ends. A
//! process making 2.5 M calls a second gets ~39 000 samples a second:
//! +-0.5 % (1 sigma) over one second. One making fewer than P calls in an
//! interval is mostly not listed. The interval's total is exact (the
//! per-syscall slots), so `other` closes the sum.
//!
//! Everything is bounded: the top K syscalls and top N processes (ranked
//! by estimated syscalls, at least their traced events), each list closed
//! by an `other` bucket so the entries add up to the interval's total.
//! Buffers are sized at start.

use heapless::Vec as HVec;

use crate::base::table::FixedMap;
use crate::capture::{
    syscall_names, Comm, SyscallCounts, CALLS_SAMPLE_PERIOD, KA_MAX, SYSCALL_SLOTS,
};
use crate::state::activity::Activity;
use pids::PidDeltas;

pub use json::{TopProcs, TopSyscalls};

mod json;
mod pids;

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
    /// Mean syscalls per CPU between two per-process samples (0: none; then
    /// processes rank by traced events alone).
    pub sample_period: u32,
}

impl Default for CulpritConfig {
    fn default() -> Self {
        CulpritConfig {
            enabled: true,
            top_syscalls: 5,
            top_procs: 5,
            capacity: 256,
            sample_period: CALLS_SAMPLE_PERIOD,
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
    /// Syscalls this interval, traced or not: samples x the sample period.
    pub syscalls: u64,
}

impl ProcTop {
    pub fn comm(&self) -> &str {
        comm_str(&self.comm)
    }
}

/// A NUL-padded comm as text ("?" when not UTF-8).
pub fn comm_str(comm: &Comm) -> &str {
    let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    core::str::from_utf8(&comm[..end]).unwrap_or("?")
}

pub struct Culprits {
    pub cfg: CulpritConfig,
    prev: Box<SyscallCounts>,
    cur: Box<SyscallCounts>,
    /// Kernel drops per pid, and sampled syscalls per pid (with the comm).
    drops: PidDeltas<()>,
    calls: PidDeltas<Comm>,
    /// Monotonic time of the last `read_calls`, and the interval it closed.
    last_ns: u64,
    pub interval_ns: u64,
    /// Syscall exits this interval, all of them (exact).
    pub syscalls_total: u64,
    pub syscalls: HVec<SyscallTop, MAX_TOP>,
    /// Interval syscall exits not in `syscalls` (unnumbered ones included).
    pub syscalls_other: u64,
    prev_unnumbered: u64,
    /// Top processes by syscalls (estimated), and by drops.
    pub by_calls: HVec<ProcTop, MAX_TOP>,
    pub by_drops: HVec<ProcTop, MAX_TOP>,
    /// Interval traced events / drops / syscalls of processes not in the lists.
    pub evts_other: u64,
    pub drops_other: u64,
    pub calls_other: u64,
    /// Pids whose cumulative syscall estimate is exported (see
    /// `exported_procs`), at most MAX_TOP.
    exported_procs: FixedMap<()>,
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
            drops: PidDeltas::with_capacity(cap),
            calls: PidDeltas::with_capacity(cap),
            last_ns: crate::base::time::monotonic_ns(),
            interval_ns: 0,
            syscalls_total: 0,
            syscalls: HVec::new(),
            syscalls_other: 0,
            prev_unnumbered: 0,
            by_calls: HVec::new(),
            by_drops: HVec::new(),
            evts_other: 0,
            drops_other: 0,
            calls_other: 0,
            exported_procs: FixedMap::with_capacity(MAX_TOP),
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

        self.syscalls_total = total;
        self.drops.read(|f| drops(&mut |pid, n| f(pid, n, ())));
        self.rank(interval_drops, activity);
        let calls = &self.calls;
        self.exported_procs
            .remove_where(|pid, _| calls.delta(pid as u32) == 0);
        for p in self.by_calls.iter().filter(|p| calls.delta(p.pid) > 0) {
            let _ = self.exported_procs.insert(u64::from(p.pid), ());
        }
        activity.clear();
    }

    /// Every process once in an interval's top that made a sampled syscall
    /// in the last interval: (pid, comm, estimated syscalls since the
    /// kernel's table took it). A series stays while its process keeps
    /// calling, and there are at most MAX_TOP.
    pub fn exported_procs(&self) -> impl Iterator<Item = (u32, &Comm, u64)> + '_ {
        self.exported_procs.iter().filter_map(|(pid, _)| {
            let &(n, _, ref comm) = self.calls.now.get(pid)?;
            Some((pid as u32, comm, n * u64::from(self.cfg.sample_period)))
        })
    }

    /// Reads the kernel's sampled syscalls per process (`walk` yields pid,
    /// cumulative samples, comm) at monotonic time `now_ns`; before `update`.
    pub fn read_calls(&mut self, now_ns: u64, walk: impl FnOnce(&mut dyn FnMut(u32, u64, &Comm))) {
        self.interval_ns = now_ns.saturating_sub(self.last_ns);
        self.last_ns = now_ns;
        self.calls
            .read(|f| walk(&mut |pid, n, comm| f(pid, n, *comm)));
    }

    fn calls_of(&self, pid: u32) -> u64 {
        self.calls.delta(pid) * u64::from(self.cfg.sample_period)
    }

    fn rank(&mut self, interval_drops: u64, activity: &Activity) {
        self.by_calls.clear();
        self.by_drops.clear();
        let top = self.cfg.top_procs;
        let period = u64::from(self.cfg.sample_period);
        let drops_of = |pid: u32| self.drops.delta(pid).min(interval_drops);
        // At least its traced events: a process under one sample still ranks.
        let key = |p: &ProcTop| p.syscalls.max(p.evts);
        for (pid, &(_, n, comm)) in self.calls.now.iter().filter(|(_, v)| v.1 > 0) {
            let pid = pid as u32;
            let a = activity.get(pid);
            let item = ProcTop {
                pid,
                comm: a.map_or(comm, |a| a.comm),
                evts: a.map_or(0, |a| a.evts),
                drops: drops_of(pid),
                syscalls: n * period,
            };
            keep_top(&mut self.by_calls, top, item, key);
        }
        for p in activity.iter().filter(|p| self.calls.delta(p.pid) == 0) {
            let item = ProcTop {
                pid: p.pid,
                comm: p.comm,
                evts: p.evts,
                drops: drops_of(p.pid),
                syscalls: 0,
            };
            keep_top(&mut self.by_calls, top, item, key);
        }
        for (pid, &(_, d, ())) in self.drops.now.iter().filter(|(_, d)| d.1 > 0) {
            let pid = pid as u32;
            let a = activity.get(pid);
            let comm = self.calls.now.get(u64::from(pid)).map_or([0; 16], |c| c.2);
            let item = ProcTop {
                pid,
                comm: a.map_or(comm, |a| a.comm),
                evts: a.map_or(0, |a| a.evts),
                drops: d,
                syscalls: self.calls_of(pid),
            };
            keep_top(&mut self.by_drops, top, item, |x| x.drops);
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
        self.evts_other = activity.total - self.by_calls.iter().map(|p| p.evts).sum::<u64>();
        let listed: u64 = self.by_calls.iter().map(|p| p.syscalls).sum();
        // Estimates can overshoot the exact total a little: never below 0.
        self.calls_other = self.syscalls_total.saturating_sub(listed);
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
                &self.by_calls
            },
            other_evts: if by_drops { 0 } else { self.evts_other },
            other_drops: if by_drops { self.drops_other } else { 0 },
            other_calls: if by_drops { 0 } else { self.calls_other },
            interval_ns: self.interval_ns,
        }
    }
}

#[cfg(test)]
mod tests;
