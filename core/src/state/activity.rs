//! Traced events per process over the current snapshot interval, for the
//! culprit counters. Fixed capacity chosen at start; a process that finds
//! the table full lands in `other`, so the total always adds up. Cleared
//! after each snapshot. Per event: one hash lookup and an add.

use crate::base::table::FixedMap;
use crate::capture::Comm;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcEvents {
    pub pid: u32,
    pub evts: u64,
    pub comm: Comm,
}

pub struct Activity {
    procs: FixedMap<ProcEvents>,
    /// Events of processes that did not fit.
    pub other: u64,
    /// Every event counted this interval (listed + other).
    pub total: u64,
}

impl Activity {
    pub fn with_capacity(capacity: usize) -> Activity {
        Activity {
            procs: FixedMap::with_capacity(capacity),
            other: 0,
            total: 0,
        }
    }

    /// Counts one event of process `pid`; `comm` is asked for once per
    /// process and interval.
    #[inline]
    pub fn count(&mut self, pid: u32, comm: impl FnOnce() -> Comm) {
        self.total += 1;
        if let Some(p) = self.procs.get_mut(u64::from(pid)) {
            p.evts += 1;
            return;
        }
        let entry = ProcEvents {
            pid,
            evts: 1,
            comm: comm(),
        };
        if self.procs.insert(u64::from(pid), entry).is_err() {
            self.other += 1;
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &ProcEvents> {
        self.procs.iter().map(|(_, p)| p)
    }

    pub fn get(&self, pid: u32) -> Option<&ProcEvents> {
        self.procs.get(u64::from(pid))
    }

    /// Starts a new interval.
    pub fn clear(&mut self) {
        self.procs.remove_where(|_, _| true);
        self.other = 0;
        self.total = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_process_and_overflow_into_other() {
        let mut a = Activity::with_capacity(2);
        let mut asked = 0;
        for pid in [10, 10, 20, 30, 30, 10] {
            a.count(pid, || {
                asked += 1;
                *b"name\0\0\0\0\0\0\0\0\0\0\0\0"
            });
        }
        assert_eq!(a.get(10).map(|p| p.evts), Some(3));
        assert_eq!(a.get(20).map(|p| p.evts), Some(1));
        assert_eq!(a.get(30), None, "the table holds 2 processes");
        assert_eq!(a.other, 2);
        assert_eq!(a.total, 6);
        assert_eq!(
            asked, 4,
            "comm asked once per new process (and per refused try)"
        );
        a.clear();
        assert_eq!((a.total, a.other, a.iter().count()), (0, 0, 0));
        a.count(30, || [0; 16]);
        assert_eq!(a.get(30).map(|p| p.evts), Some(1));
    }
}
