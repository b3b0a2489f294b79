//! The fd side of the state: per-process tables in one fixed map keyed by
//! (pid, fd), a small per-process summary (count, highest fd, the table's
//! one-entry cache), and the libsinsp rules for adds, lookups, erases, a
//! fork's copy and a table dropped with its process (fdinfo.cpp
//! sinsp_fdtable, parsers.cpp). Walks go by fd number up to the highest
//! seen, never over the whole map, and never allocate.

use super::{fd_key, Fd, State, FDS_PER_PROCESS_MAX};
use crate::base::table;

/// One process's fd table summary.
#[derive(Clone, Copy, Debug)]
pub(super) struct ProcFds {
    pub(super) count: u32,
    pub(super) max_fd: u32,
    /// sinsp_fdtable::m_last_accessed_fd; -1 when empty.
    pub(super) last_fd: i64,
}

impl State {
    fn procs_entry(&mut self, pid: u32) -> Option<&mut ProcFds> {
        self.procs.get_mut(u64::from(pid))
    }

    /// sinsp_fdtable::find: the table's one-entry cache, then the table.
    pub(super) fn lookup_fd(&mut self, pid: u32, fd: i64) -> bool {
        let found = self.fds.get(fd_key(pid, fd)).is_some();
        let p = self.procs_entry(pid);
        match p {
            Some(p) if found && p.last_fd == fd => {
                self.counters.n_cached_fd_lookups += 1;
            }
            Some(p) if found => {
                p.last_fd = fd;
                self.counters.n_noncached_fd_lookups += 1;
            }
            _ => self.counters.n_failed_fd_lookups += 1,
        }
        found
    }

    /// Inserts without counting; Ok(true) when the fd is new to the table.
    fn insert_fd(&mut self, pid: u32, fd: i64, entry: Fd) -> Result<bool, table::Full> {
        if !(0..i64::from(FDS_PER_PROCESS_MAX)).contains(&fd) {
            return Ok(false);
        }
        let new = self.fds.insert(fd_key(pid, fd), entry)?;
        if new {
            let key = u64::from(pid);
            if let Some(p) = self.procs.get_mut(key) {
                p.count += 1;
                p.max_fd = p.max_fd.max(fd as u32);
                // sinsp_fdtable::add resets the cache on a new entry only.
                p.last_fd = -1;
            } else if self
                .procs
                .insert(
                    key,
                    ProcFds {
                        count: 1,
                        max_fd: fd as u32,
                        last_fd: -1,
                    },
                )
                .is_err()
            {
                // Cannot happen: procs has one slot per fd slot.
                self.fds.remove(fd_key(pid, fd));
                return Err(table::Full);
            }
        }
        Ok(new)
    }

    /// sinsp_fdtable::add: a new fd counts as added, a replacement does not.
    pub(super) fn add_fd(&mut self, pid: u32, fd: i64, entry: Fd) {
        match self.insert_fd(pid, fd, entry) {
            Ok(true) => self.counters.n_added_fds += 1,
            Ok(false) => {}
            Err(_) => self.counters.n_drops_full_fdtable += 1,
        }
    }

    fn unlink_fd(&mut self, pid: u32, fd: i64) -> bool {
        if !self.fds.remove(fd_key(pid, fd)) {
            return false;
        }
        let key = u64::from(pid);
        if let Some(p) = self.procs.get_mut(key) {
            p.count -= 1;
            if p.last_fd == fd {
                p.last_fd = -1;
            }
            if p.count == 0 {
                self.procs.remove(key);
            }
        }
        true
    }

    /// An open whose successful close rides on it as a tail (KF_CLOSE_FOLLOWS,
    /// bpf/stage.h): when the fd is new and fits, add then erase would leave
    /// the table as it was, so only what they count moves: the add now, the
    /// erase's lookup and removal with the tail (`remove_fd`). Between the
    /// two nothing reads the table (an open's fd fields come from its
    /// record). False: add it for real. Out of line: the record loop it
    /// would join is the binary's largest hot function.
    #[inline(never)]
    pub(super) fn add_closed_fd(&mut self, pid: u32, fd: i64) -> bool {
        let key = fd_key(pid, fd);
        if !(0..i64::from(FDS_PER_PROCESS_MAX)).contains(&fd)
            || self.fds.len() >= self.fds.capacity()
            || self.fds.get(key).is_some()
        {
            return false;
        }
        self.counters.n_added_fds += 1;
        if let Some(p) = self.procs_entry(pid) {
            // As add's reset of the cache on a new entry.
            p.last_fd = -1;
        }
        self.closed_fd = Some(key);
        true
    }

    /// sinsp_fdtable::erase: found counts noncached + removed, absent failed.
    /// `closed_fd`: the fd the previous record's open left out, if any.
    pub(super) fn remove_fd(&mut self, pid: u32, fd: i64, closed_fd: Option<u64>) {
        if closed_fd == Some(fd_key(pid, fd)) || self.unlink_fd(pid, fd) {
            self.counters.n_noncached_fd_lookups += 1;
            self.counters.n_removed_fds += 1;
        } else {
            self.counters.n_failed_fd_lookups += 1;
        }
    }

    /// Drops a process's whole table (or its close-on-exec part). libsinsp
    /// drops a table with its thread without counting (threadinfo.cpp
    /// remove_main_thread_fdtable only calls the erase callback), so these
    /// go to kestrel.n_released_fds. Walks fd numbers up to the highest seen.
    pub(super) fn release_fds(&mut self, pid: u32, only_cloexec: bool) {
        let Some(&p) = self.procs.get(u64::from(pid)) else {
            return;
        };
        let mut left = p.count;
        for fd in 0..=i64::from(p.max_fd) {
            if left == 0 {
                break;
            }
            let Some(f) = self.fds.get(fd_key(pid, fd)) else {
                continue;
            };
            left -= 1;
            if !only_cloexec || f.cloexec {
                self.unlink_fd(pid, fd);
                self.counters.n_released_fds += 1;
            }
        }
    }

    /// A forked child's copy of its parent's table (parsers.cpp
    /// parse_clone_exit_child copies the caller's fdtable when the child is
    /// not a thread). No allocation: fd numbers are walked, entries cloned
    /// into fixed slots; what does not fit is a full-table drop.
    pub(super) fn inherit_fds(&mut self, parent: u32, child: u32) {
        let Some(&p) = self.procs.get(u64::from(parent)) else {
            return;
        };
        let mut left = p.count;
        for fd in 0..=i64::from(p.max_fd) {
            if left == 0 {
                break;
            }
            let Some(f) = self.fds.get(fd_key(parent, fd)).cloned() else {
                continue;
            };
            left -= 1;
            match self.insert_fd(child, fd, f) {
                Ok(true) => self.counters.n_inherited_fds += 1,
                Ok(false) => {}
                Err(_) => self.counters.n_drops_full_fdtable += 1,
            }
        }
    }
}
