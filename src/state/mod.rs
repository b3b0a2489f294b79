//! Process state: the thread table and fd table, updated from every decoded
//! record, and Falco's state counters (lookups, adds, removals, full-table
//! drops, enter/exit pairing) kept exactly as ../shared/reference defines
//! them. Both tables are fixed at start; nothing here allocates per event.
//!
//! Choices where Falco's rules are silent: an fd table belongs to a process
//! (tgid), so threads share it; a forked child does not inherit a copy of its
//! parent's fds (its closes of inherited fds count as failed lookups);
//! n_removed_fds counts every fd leaving the table (close, close-on-exec,
//! process exit), so n_fds = seeded + n_added_fds - n_removed_fds.

pub mod activity;
pub mod procfs;
pub mod table;

use heapless::Vec as HVec;

use crate::capture::record::{Record, SockAddr};
use crate::capture::skel::types::{kestrel_flags as F, kestrel_task};
use table::FixedMap;

pub const DEFAULT_THREAD_CAPACITY: usize = 4096;
pub const DEFAULT_FD_CAPACITY: usize = 8192;
pub const EXE_MAX: usize = 96;
pub const FD_PATH_MAX: usize = 64;
/// Falco caps each process at this many fds.
pub const FDS_PER_PROCESS_MAX: u32 = 4096;
/// Slots kept beyond the configured capacity for the agent's own threads.
const OWN_THREAD_RESERVE: usize = 16;

#[derive(Clone, Debug)]
pub struct Thread {
    pub tid: u32,
    pub pid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub start_ns: u64,
    pub comm: [u8; 16],
    pub exe: HVec<u8, EXE_MAX>,
    /// Per-thread last-fd cache.
    last_fd: i64,
    /// Syscall number of the saved enter event, -1 when none.
    pending_enter: i16,
}

impl Thread {
    pub fn new(tid: u32, pid: u32) -> Thread {
        Thread {
            tid,
            pid,
            ..Thread::default()
        }
    }
}

impl Default for Thread {
    fn default() -> Self {
        Thread {
            tid: 0,
            pid: 0,
            ppid: 0,
            uid: 0,
            gid: 0,
            start_ns: 0,
            comm: [0; 16],
            exe: HVec::new(),
            last_fd: -1,
            pending_enter: -1,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdKind {
    File,
    Socket,
}

#[derive(Clone, Debug)]
pub struct Fd {
    pub kind: FdKind,
    pub cloexec: bool,
    /// Bounded head of the path for files; empty for sockets.
    pub path: HVec<u8, FD_PATH_MAX>,
    pub sock: SockAddr,
}

/// Falco's state counters; n_threads and n_fds are read from the tables.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateCounters {
    pub n_added_threads: u64,
    pub n_removed_threads: u64,
    pub n_cached_thread_lookups: u64,
    pub n_noncached_thread_lookups: u64,
    pub n_failed_thread_lookups: u64,
    pub n_drops_full_threadtable: u64,
    pub n_added_fds: u64,
    pub n_removed_fds: u64,
    pub n_cached_fd_lookups: u64,
    pub n_noncached_fd_lookups: u64,
    pub n_failed_fd_lookups: u64,
    pub n_drops_full_fdtable: u64,
    pub n_stored_evts: u64,
    pub n_store_evts_drops: u64,
    pub n_retrieved_evts: u64,
    pub n_retrieve_evts_drops: u64,
    /// Records that failed decoding (see capture::record).
    pub n_decode_errors: u64,
}

pub struct State {
    threads: FixedMap<Thread>,
    fds: FixedMap<Fd>,
    thread_capacity: usize,
    /// One-entry last-thread cache: (tid, slab position).
    last_thread: Option<(u32, u32)>,
    own_pid: u32,
    /// Enter records are captured, so exits pair with them.
    pairing: bool,
    pub counters: StateCounters,
    /// Set when a table-full drop should be logged (first, then every capacity-th).
    pub log_full_drop: bool,
}

fn fd_key(pid: u32, fd: i64) -> u64 {
    (u64::from(pid) << 32) | (fd as u32 as u64)
}

fn bounded<const N: usize>(s: &[u8]) -> HVec<u8, N> {
    let mut v = HVec::new();
    let _ = v.extend_from_slice(&s[..s.len().min(N)]);
    v
}

fn comm_bytes(c: &[i8; 16]) -> [u8; 16] {
    c.map(|b| b as u8)
}

impl State {
    pub fn new(thread_capacity: usize, fd_capacity: usize, own_pid: u32, pairing: bool) -> State {
        State {
            threads: FixedMap::with_capacity(thread_capacity + OWN_THREAD_RESERVE),
            fds: FixedMap::with_capacity(fd_capacity),
            thread_capacity,
            last_thread: None,
            own_pid,
            pairing,
            counters: StateCounters::default(),
            log_full_drop: false,
        }
    }

    pub fn n_threads(&self) -> usize {
        self.threads.len()
    }

    pub fn n_fds(&self) -> usize {
        self.fds.len()
    }

    pub fn thread(&self, tid: u32) -> Option<&Thread> {
        self.threads.get(u64::from(tid))
    }

    pub fn fd(&self, pid: u32, fd: i64) -> Option<&Fd> {
        self.fds.get(fd_key(pid, fd))
    }

    pub fn bytes_per_thread() -> usize {
        FixedMap::<Thread>::bytes_per_entry()
    }

    pub fn bytes_per_fd() -> usize {
        FixedMap::<Fd>::bytes_per_entry()
    }

    /// Adds a thread unless present; counts adds and full-table drops.
    pub fn add_thread(&mut self, t: Thread) -> bool {
        let tid = t.tid;
        if self.threads.get(u64::from(tid)).is_some() {
            return false;
        }
        let own = t.pid == self.own_pid;
        if self.threads.len() >= self.thread_capacity && !own {
            self.counters.n_drops_full_threadtable += 1;
            let n = self.counters.n_drops_full_threadtable;
            self.log_full_drop = n == 1 || (n - 1) % self.thread_capacity.max(1) as u64 == 0;
            return false;
        }
        match self.threads.insert(u64::from(tid), t) {
            Ok(_) => {
                self.counters.n_added_threads += 1;
                if self.last_thread.map(|(t, _)| t) == Some(tid) {
                    self.last_thread = None;
                }
                true
            }
            Err(_) => {
                self.counters.n_drops_full_threadtable += 1;
                false
            }
        }
    }

    fn remove_thread(&mut self, tid: u32) {
        self.last_thread = None;
        if self.threads.remove(u64::from(tid)) {
            self.counters.n_removed_threads += 1;
        } else {
            self.counters.n_failed_thread_lookups += 1;
        }
    }

    /// Counted thread lookup through the one-entry cache.
    fn lookup_thread(&mut self, tid: u32) -> Option<&mut Thread> {
        let key = u64::from(tid);
        if let Some((ctid, pos)) = self.last_thread {
            if ctid == tid && self.threads.holds(pos, key) {
                self.counters.n_cached_thread_lookups += 1;
                return Some(self.threads.at_mut(pos));
            }
        }
        match self.threads.position(key) {
            Some(pos) => {
                self.counters.n_noncached_thread_lookups += 1;
                self.last_thread = Some((tid, pos));
                Some(self.threads.at_mut(pos))
            }
            None => {
                self.counters.n_failed_thread_lookups += 1;
                None
            }
        }
    }

    /// Counted fd lookup through the thread's last-fd cache.
    fn lookup_fd(&mut self, tid: u32, pid: u32, fd: i64) -> bool {
        let cached = self.threads.get(u64::from(tid)).map(|t| t.last_fd) == Some(fd);
        let found = self.fds.get(fd_key(pid, fd)).is_some();
        if found && cached {
            self.counters.n_cached_fd_lookups += 1;
        } else if found {
            self.counters.n_noncached_fd_lookups += 1;
            self.set_last_fd(tid, fd);
        } else {
            self.counters.n_failed_fd_lookups += 1;
        }
        found
    }

    fn set_last_fd(&mut self, tid: u32, fd: i64) {
        if let Some(t) = self.threads.get_mut(u64::from(tid)) {
            t.last_fd = fd;
        }
    }

    fn add_fd(&mut self, tid: u32, pid: u32, fd: i64, entry: Fd) {
        if !(0..i64::from(FDS_PER_PROCESS_MAX)).contains(&fd) {
            return;
        }
        match self.fds.insert(fd_key(pid, fd), entry) {
            Ok(true) => self.counters.n_added_fds += 1,
            Ok(false) => {}
            Err(_) => self.counters.n_drops_full_fdtable += 1,
        }
        // The cache must not answer for a replaced or new fd.
        if let Some(t) = self.threads.get_mut(u64::from(tid)) {
            if t.last_fd == fd {
                t.last_fd = -1;
            }
        }
    }

    fn remove_fd(&mut self, tid: u32, pid: u32, fd: i64) {
        if self.fds.remove(fd_key(pid, fd)) {
            self.counters.n_noncached_fd_lookups += 1;
            self.counters.n_removed_fds += 1;
        } else {
            self.counters.n_failed_fd_lookups += 1;
        }
        if let Some(t) = self.threads.get_mut(u64::from(tid)) {
            if t.last_fd == fd {
                t.last_fd = -1;
            }
        }
    }

    fn drop_process_fds(&mut self, pid: u32, only_cloexec: bool) {
        let lo = u64::from(pid) << 32;
        let n = self
            .fds
            .remove_where(|k, f| k & !0xffff_ffff == lo && (!only_cloexec || f.cloexec));
        self.counters.n_removed_fds += n as u64;
    }

    fn thread_from_task(tid: u32, pid: u32, task: &kestrel_task) -> Thread {
        Thread {
            tid,
            pid,
            ppid: task.ppid,
            uid: task.uid,
            gid: task.gid,
            start_ns: task.start_ns,
            comm: comm_bytes(&task.comm),
            ..Thread::default()
        }
    }

    pub fn count_decode_error(&mut self) {
        self.counters.n_decode_errors += 1;
    }

    /// Applies one record. Never allocates.
    pub fn apply(&mut self, rec: &Record<'_>) {
        let hdr = *rec.hdr();
        let (tid, pid) = (hdr.tid, hdr.pid);
        if self.pairing && hdr.nr >= 0 && !matches!(rec, Record::Enter { .. }) {
            self.retrieve_enter(tid, hdr.nr);
        }
        match *rec {
            Record::Enter { .. } => {
                if let Some(t) = self.threads.get_mut(u64::from(tid)) {
                    t.pending_enter = hdr.nr;
                    self.counters.n_stored_evts += 1;
                } else {
                    self.counters.n_store_evts_drops += 1;
                }
            }
            Record::Clone {
                task, child_side, ..
            } => {
                if child_side {
                    let mut t = Self::thread_from_task(tid, pid, &task);
                    if let Some(p) = self.threads.get(u64::from(task.ppid)) {
                        t.exe = p.exe.clone();
                    }
                    self.add_thread(t);
                    return;
                }
                // The parent's return can reach the ring after the child has
                // already run and exited on another CPU, so only the child's
                // own record (always before its exit) adds it.
                self.lookup_thread(tid);
            }
            Record::Exec { task, path, .. } => {
                let Some(task) = task else {
                    self.lookup_thread(tid);
                    return;
                };
                if task.old_tid != 0 && task.old_tid != tid {
                    self.remove_thread(task.old_tid);
                }
                match self.lookup_thread(tid) {
                    Some(t) => {
                        t.comm = comm_bytes(&task.comm);
                        t.exe = bounded(path);
                        t.ppid = task.ppid;
                        t.uid = task.uid;
                        t.gid = task.gid;
                    }
                    None => {
                        let mut t = Self::thread_from_task(tid, pid, &task);
                        t.exe = bounded(path);
                        self.add_thread(t);
                    }
                }
                self.drop_process_fds(pid, true);
            }
            Record::ProcExit { .. } => {
                self.remove_thread(tid);
                if rec.has_flag(F::KF_GROUP_DEAD) {
                    self.drop_process_fds(pid, false);
                }
            }
            Record::Open { path, .. } => {
                self.lookup_thread(tid);
                if hdr.ret >= 0 {
                    let entry = Fd {
                        kind: FdKind::File,
                        cloexec: rec.has_flag(F::KF_CLOEXEC),
                        path: bounded(path),
                        sock: SockAddr::default(),
                    };
                    self.add_fd(tid, pid, hdr.ret, entry);
                }
            }
            Record::Close { fd, .. } => {
                self.lookup_thread(tid);
                // A failed close removed nothing, so it looks nothing up.
                if hdr.ret == 0 {
                    self.remove_fd(tid, pid, fd);
                }
            }
            Record::Dup { old_fd, .. } => {
                self.lookup_thread(tid);
                if hdr.ret < 0 {
                    return;
                }
                let src = if self.lookup_fd(tid, pid, old_fd) {
                    self.fds.get(fd_key(pid, old_fd)).cloned()
                } else {
                    None
                };
                if let Some(mut entry) = src {
                    entry.cloexec = rec.has_flag(F::KF_CLOEXEC);
                    self.add_fd(tid, pid, hdr.ret, entry);
                }
            }
            Record::Socket { .. } => {
                self.lookup_thread(tid);
                if hdr.ret >= 0 {
                    let entry = Fd {
                        kind: FdKind::Socket,
                        cloexec: rec.has_flag(F::KF_CLOEXEC),
                        path: HVec::new(),
                        sock: SockAddr::default(),
                    };
                    self.add_fd(tid, pid, hdr.ret, entry);
                }
            }
            Record::Connect { addr, .. } => {
                self.lookup_thread(tid);
                if self.lookup_fd(tid, pid, addr.fd) {
                    if let Some(f) = self.fds.get_mut(fd_key(pid, addr.fd)) {
                        f.sock = addr;
                    }
                }
            }
            Record::Accept { addr, .. } => {
                self.lookup_thread(tid);
                if hdr.ret >= 0 {
                    let entry = Fd {
                        kind: FdKind::Socket,
                        cloexec: rec.has_flag(F::KF_CLOEXEC),
                        path: HVec::new(),
                        sock: addr,
                    };
                    self.add_fd(tid, pid, hdr.ret, entry);
                }
            }
            Record::Generic { .. } => {
                self.lookup_thread(tid);
            }
        }
    }

    fn retrieve_enter(&mut self, tid: u32, nr: i16) {
        match self.threads.get_mut(u64::from(tid)) {
            Some(t) if t.pending_enter == nr => {
                t.pending_enter = -1;
                self.counters.n_retrieved_evts += 1;
            }
            Some(t) => {
                t.pending_enter = -1;
                self.counters.n_retrieve_evts_drops += 1;
            }
            None => self.counters.n_retrieve_evts_drops += 1,
        }
    }

    /// Seeds one thread found in /proc at start (not counted as an add).
    pub fn seed_thread(&mut self, t: Thread) {
        let _ = self.threads.insert(u64::from(t.tid), t);
    }
}

#[cfg(test)]
mod tests;
