//! Per-process figures the kernel keeps cumulative in an LRU table (drops,
//! sampled syscalls), turned into interval deltas once per snapshot.

use crate::base::table::FixedMap;

/// One kernel table's view: per pid the cumulative count, this interval's
/// delta and what else the table holds (`X`, e.g. the comm).
pub(super) struct PidDeltas<X: Copy> {
    /// Cumulative count per pid at the last snapshot, for the pids the
    /// kernel's table held then and no others.
    seen: FixedMap<u64>,
    /// Per pid the kernel's table holds now: (cumulative, this interval, X).
    pub now: FixedMap<(u64, u64, X)>,
}

impl<X: Copy> PidDeltas<X> {
    pub fn with_capacity(cap: usize) -> Self {
        PidDeltas {
            seen: FixedMap::with_capacity(cap),
            now: FixedMap::with_capacity(cap),
        }
    }

    /// This interval's count of `pid` (0 when the table does not hold it).
    pub fn delta(&self, pid: u32) -> u64 {
        self.now.get(u64::from(pid)).map_or(0, |d| d.1)
    }

    /// This interval's counts: the kernel's cumulative count minus the last
    /// snapshot's. The kernel table is an LRU, so `seen` is rebuilt from
    /// each walk: a pid it evicted is forgotten (it restarts from zero
    /// there) instead of filling the table with dead pids.
    pub fn read(&mut self, walk: impl FnOnce(&mut dyn FnMut(u32, u64, X))) {
        let now = &mut self.now;
        now.remove_where(|_, _| true);
        walk(&mut |pid, cumulative, x| {
            // A walk of a changing hash table can repeat a key: the last wins.
            // Beyond capacity (churn during the walk) counts go to `other`.
            let key = u64::from(pid);
            match now.get_mut(key) {
                Some(v) => (v.0, v.2) = (cumulative, x),
                None => {
                    let _ = now.insert(key, (cumulative, 0, x));
                }
            }
        });
        let seen = &mut self.seen;
        now.for_each_mut(|pid, (cumulative, delta, _)| {
            let before = seen.get(pid).copied().unwrap_or(0);
            // Below the last count: evicted and added again since.
            *delta = cumulative.checked_sub(before).unwrap_or(*cumulative);
        });
        seen.remove_where(|_, _| true);
        for (pid, &(cumulative, _, _)) in now.iter() {
            let _ = seen.insert(pid, cumulative);
        }
    }
}
