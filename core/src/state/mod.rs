//! Process state: the thread table and fd table, updated from every decoded
//! record, with libsinsp's state counters (userspace/libsinsp/threadinfo.cpp,
//! fdinfo.cpp, parsers.cpp of libs 0.14) and Kestrel's clean figures beside
//! them. Both tables are fixed at start; nothing here allocates per event.
//!
//! Model: an fd table belongs to a process (tgid), so threads share it (as
//! libsinsp's get_fd_table() resolves a thread to its main thread's table);
//! a forked child (no CLONE_THREAD) gets a copy of its parent's table. Per
//! process a small entry keeps the fd count, the highest fd and libsinsp's
//! one-entry "last accessed fd" cache, which belongs to the table, not to a
//! thread. Where libsinsp's count is an artifact the `falco.` figure keeps it
//! and a `kestrel.` counter gives the clean one (see `StateCounters`).

pub mod activity;
pub mod apply;
mod fds;
pub mod pipeline;
pub mod proc_scan;
mod thread;

use heapless::Vec as HVec;

use crate::base::table::FixedMap;
use crate::capture::record::SockAddr;
use fds::ProcFds;
pub use thread::{
    resolve, Thread, ARGS_MAX, EXE_FROM_MEMFD, EXE_MAX, EXE_UPPER_LAYER, PROC_PATH_MAX,
};

pub const DEFAULT_THREAD_CAPACITY: usize = 4096;
pub const DEFAULT_FD_CAPACITY: usize = 8192;
/// What the fd table keeps of a file's path: a head of the open record's
/// path (KESTREL_OPEN_PATH_MAX), kept short because every fd holds one.
pub const FD_PATH_MAX: usize = 64;
const _: () = assert!(FD_PATH_MAX <= crate::capture::abi::OPEN_PATH_MAX);
/// Falco caps each process's table at this many fds (sinsp m_max_fdtable_size);
/// Kestrel tracks fd numbers below it, which bounds every per-process walk.
pub const FDS_PER_PROCESS_MAX: u32 = 4096;
/// Slots kept beyond the configured capacity for the agent's own threads.
pub const OWN_THREAD_RESERVE: usize = 16;
/// /proc lookups allowed per tick (100 ms) on thread-lookup misses.
const PROC_LOOKUPS_PER_TICK: u32 = 10;

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
    /// Sockets: the peer and local end of the last connect or the accept.
    pub sock: SockAddr,
    /// From accept: the local end is the server (libsinsp's role_server).
    pub server: bool,
    /// socket()'s type (SOCK_STREAM, SOCK_DGRAM ...), 0 when unknown: fd.l4proto.
    pub sock_type: u8,
}

/// libsinsp's state counters plus Kestrel's. n_threads and n_fds are read
/// from the tables at snapshot time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateCounters {
    /// Includes threads seeded from /proc and added by a /proc lookup.
    pub n_added_threads: u64,
    /// Exits, exec by a non-leader thread, and the purge sweep.
    pub n_removed_threads: u64,
    pub n_cached_thread_lookups: u64,
    pub n_noncached_thread_lookups: u64,
    pub n_failed_thread_lookups: u64,
    pub n_drops_full_threadtable: u64,
    /// New fds through the table's add (seeded fds included, fork copies not:
    /// libsinsp copies the parent's table by assignment).
    pub n_added_fds: u64,
    /// fds erased one by one (close); not those dropped with their table.
    pub n_removed_fds: u64,
    pub n_cached_fd_lookups: u64,
    pub n_noncached_fd_lookups: u64,
    pub n_failed_fd_lookups: u64,
    pub n_drops_full_fdtable: u64,
    pub n_stored_evts: u64,
    pub n_store_evts_drops: u64,
    pub n_retrieved_evts: u64,
    pub n_retrieve_evts_drops: u64,
    /// kestrel.n_inherited_fds: fds copied into a forked child's table.
    pub n_inherited_fds: u64,
    /// kestrel.n_released_fds: fds that left with their table (process exit,
    /// close-on-exec at exec, purge). With the above:
    /// kestrel.n_fds = n_added_fds + n_inherited_fds − n_removed_fds − n_released_fds.
    pub n_released_fds: u64,
    /// kestrel.n_proc_lookups: thread-lookup misses answered from /proc.
    pub n_proc_lookups: u64,
    /// kestrel.n_proc_lookup_misses: misses /proc could not answer (gone, or
    /// over the per-tick budget); a placeholder from the record was added.
    pub n_proc_lookup_misses: u64,
    /// kestrel.n_purged_threads: removed by the sweep (part of n_removed_threads).
    pub n_purged_threads: u64,
    /// Records that failed decoding (see capture::record).
    pub n_decode_errors: u64,
}

impl StateCounters {
    /// libsinsp's own counters by their libs name, in libs_state_counters'
    /// to_metrics order: the JSON snapshot and Prometheus name them alike.
    pub fn libs(&self) -> [(&'static str, u64); 15] {
        [
            ("n_noncached_fd_lookups", self.n_noncached_fd_lookups),
            ("n_cached_fd_lookups", self.n_cached_fd_lookups),
            ("n_failed_fd_lookups", self.n_failed_fd_lookups),
            ("n_added_fds", self.n_added_fds),
            ("n_removed_fds", self.n_removed_fds),
            ("n_stored_evts", self.n_stored_evts),
            ("n_store_evts_drops", self.n_store_evts_drops),
            ("n_retrieved_evts", self.n_retrieved_evts),
            ("n_retrieve_evts_drops", self.n_retrieve_evts_drops),
            (
                "n_noncached_thread_lookups",
                self.n_noncached_thread_lookups,
            ),
            ("n_cached_thread_lookups", self.n_cached_thread_lookups),
            ("n_failed_thread_lookups", self.n_failed_thread_lookups),
            ("n_added_threads", self.n_added_threads),
            ("n_removed_threads", self.n_removed_threads),
            ("n_drops_full_threadtable", self.n_drops_full_threadtable),
        ]
    }
}

pub struct State {
    threads: FixedMap<Thread>,
    fds: FixedMap<Fd>,
    procs: FixedMap<ProcFds>,
    /// The fd an open with a close tail left out of the table
    /// (`fds::add_closed_fd`), for the tail's close, the next record.
    closed_fd: Option<u64>,
    thread_capacity: usize,
    /// One-entry last-thread cache: (tid, slab position).
    last_thread: Option<(u32, u32)>,
    own_pid: u32,
    /// Enter records are captured, so exits pair with them.
    pairing: bool,
    /// Where thread-lookup misses are resolved; None: no /proc fallback.
    proc_root: Option<proc_scan::ProcRoot>,
    proc_budget: u32,
    /// The last get_thread read its thread from /proc: its cwd is already
    /// the one the record's syscall left.
    from_proc: bool,
    /// chdir and fchdir, (native, compat) numbers: they move the cwd.
    chdir_nr: (i16, i16),
    fchdir_nr: (i16, i16),
    now_tick: u32,
    pub counters: StateCounters,
    /// Set when a table-full drop should be logged (first, then every capacity-th).
    pub log_full_drop: bool,
}

fn fd_key(pid: u32, fd: i64) -> u64 {
    (u64::from(pid) << 32) | (fd as u32 as u64)
}

/// A syscall's (native, compat) numbers on this arch; -1 where absent.
fn syscall_nrs(name: &str) -> (i16, i16) {
    let nr = |n: Option<u16>| n.map_or(-1, |n| n as i16);
    crate::capture::syscalls::by_name(name).map_or((-1, -1), |s| (nr(s.nr), nr(s.compat_nr)))
}

/// Replaces `dst` with the head of `s` that fits, copying only those bytes
/// (an assignment would move the whole N-byte buffer).
fn set_bytes<const N: usize>(dst: &mut HVec<u8, N>, s: &[u8]) {
    dst.clear();
    let _ = dst.extend_from_slice(&s[..s.len().min(N)]);
}

fn bounded<const N: usize>(s: &[u8]) -> HVec<u8, N> {
    let mut v = HVec::new();
    let _ = v.extend_from_slice(&s[..s.len().min(N)]);
    v
}

impl State {
    pub fn new(thread_capacity: usize, fd_capacity: usize, own_pid: u32, pairing: bool) -> State {
        State {
            threads: FixedMap::with_capacity(thread_capacity + OWN_THREAD_RESERVE),
            fds: FixedMap::with_capacity(fd_capacity),
            procs: FixedMap::with_capacity(fd_capacity),
            closed_fd: None,
            thread_capacity,
            last_thread: None,
            own_pid,
            pairing,
            proc_root: None,
            proc_budget: PROC_LOOKUPS_PER_TICK,
            from_proc: false,
            chdir_nr: syscall_nrs("chdir"),
            fchdir_nr: syscall_nrs("fchdir"),
            now_tick: 0,
            counters: StateCounters::default(),
            log_full_drop: false,
        }
    }

    /// Resolves thread-lookup misses from this procfs root (e.g. "/proc").
    pub fn with_proc_fallback(mut self, root: proc_scan::ProcRoot) -> State {
        self.proc_root = Some(root);
        self
    }

    pub fn n_threads(&self) -> usize {
        self.threads.len()
    }

    /// Distinct fds in the table (kestrel.n_fds).
    pub fn n_fds(&self) -> usize {
        self.fds.len()
    }

    /// libsinsp's n_fds: for every thread, the size of the table it uses, so
    /// a process's fds count once per thread (stats.cpp get_sinsp_stats_v2
    /// sums fdtable->size() over the thread table). Snapshot time only.
    pub fn n_fds_falco(&self) -> u64 {
        self.threads
            .iter()
            .map(|(_, t)| {
                self.procs
                    .get(u64::from(t.pid))
                    .map_or(0, |p| u64::from(p.count))
            })
            .sum()
    }

    /// fds in one process's table.
    pub fn fd_count(&self, pid: u32) -> u32 {
        self.procs.get(u64::from(pid)).map_or(0, |p| p.count)
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
        FixedMap::<Fd>::bytes_per_entry() + FixedMap::<ProcFds>::bytes_per_entry()
    }

    /// One 100 ms tick of the agent's drain timer: the purge's clock and the
    /// /proc lookup budget. Cheaper than reading a clock per event.
    pub fn tick(&mut self) {
        self.now_tick = self.now_tick.wrapping_add(1);
        self.proc_budget = PROC_LOOKUPS_PER_TICK;
    }

    /// Adds a thread unless present; counts adds and full-table drops
    /// (threadinfo.cpp sinsp_thread_manager::add_thread).
    pub fn add_thread(&mut self, mut t: Thread) -> bool {
        let tid = t.tid;
        if self.threads.get(u64::from(tid)).is_some() {
            return false;
        }
        let own = t.pid == self.own_pid;
        if self.threads.len() >= self.thread_capacity && !own {
            self.counters.n_drops_full_threadtable += 1;
            let n = self.counters.n_drops_full_threadtable;
            // Sticky until the loop logs it (rate-limited there).
            self.log_full_drop |= n == 1 || (n - 1) % self.thread_capacity.max(1) as u64 == 0;
            return false;
        }
        t.last_tick = self.now_tick;
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

    /// sinsp_thread_manager::remove_thread: an absent tid is a failed lookup;
    /// any removal clears the one-entry cache.
    fn remove_thread(&mut self, tid: u32) -> bool {
        self.last_thread = None;
        if self.threads.remove(u64::from(tid)) {
            self.counters.n_removed_threads += 1;
            true
        } else {
            self.counters.n_failed_thread_lookups += 1;
            false
        }
    }

    /// sinsp_thread_manager::find_thread: cached, noncached or failed.
    /// `count_miss` false mirrors parsers.cpp reset() taking the failure back
    /// for clone exits, whose thread is expected to be absent.
    #[inline]
    fn find_thread(&mut self, tid: u32, count_miss: bool) -> Option<u32> {
        let key = u64::from(tid);
        if let Some((ctid, pos)) = self.last_thread {
            if ctid == tid && self.threads.holds(pos, key) {
                self.counters.n_cached_thread_lookups += 1;
                self.threads.at_mut(pos).last_tick = self.now_tick;
                return Some(pos);
            }
        }
        match self.threads.position(key) {
            Some(pos) => {
                self.counters.n_noncached_thread_lookups += 1;
                self.last_thread = Some((tid, pos));
                self.threads.at_mut(pos).last_tick = self.now_tick;
                Some(pos)
            }
            None => {
                if count_miss {
                    self.counters.n_failed_thread_lookups += 1;
                }
                None
            }
        }
    }

    /// sinsp_thread_manager::get_thread_ref with query_os: a miss is counted
    /// failed, then the thread is read from /proc (bounded, allocation-free;
    /// a placeholder from the record's ids when /proc has nothing, as libsinsp
    /// adds a fake entry "to avoid a continuous lookup"), added, and found
    /// again (noncached). Not when the table is full.
    fn get_thread(&mut self, tid: u32, pid: u32) -> Option<&mut Thread> {
        self.from_proc = false;
        if let Some(pos) = self.find_thread(tid, true) {
            return Some(self.threads.at_mut(pos));
        }
        let room = self.threads.len() < self.thread_capacity || pid == self.own_pid;
        if self.proc_root.is_none() || !room {
            return None;
        }
        let looked = if self.proc_budget > 0 {
            self.proc_budget -= 1;
            self.proc_root
                .as_ref()
                .and_then(|r| proc_scan::lookup(r, tid, pid))
        } else {
            None
        };
        let t = match looked {
            Some(t) => {
                self.counters.n_proc_lookups += 1;
                self.from_proc = true;
                t
            }
            None => {
                self.counters.n_proc_lookup_misses += 1;
                Thread::new(tid, pid)
            }
        };
        self.add_thread(t);
        let pos = self.find_thread(tid, true)?;
        Some(self.threads.at_mut(pos))
    }

    pub fn count_decode_error(&mut self) {
        self.counters.n_decode_errors += 1;
    }

    /// Seeds one thread found in /proc at start; libsinsp's proc scan adds
    /// through add_thread, so it counts in n_added_threads.
    pub fn seed_thread(&mut self, t: Thread) -> bool {
        self.add_thread(t)
    }

    /// Seeds one fd found in /proc at start, counted as added (the proc scan
    /// goes through sinsp_fdtable::add).
    pub fn seed_fd(&mut self, pid: u32, fd: i64, entry: Fd) {
        self.add_fd(pid, fd, entry);
    }

    /// libsinsp's remove_inactive_threads: threads not looked up for
    /// `timeout_ticks` whose /proc entry is gone are removed (their exit
    /// record was lost to a drop). Runs on the agent's timer, not per event.
    pub fn purge(&mut self, timeout_ticks: u32, alive: impl Fn(u32, u32) -> bool) -> usize {
        let mut n = 0;
        for p in 0..self.threads.slab_len() {
            let Some((_, t)) = self.threads.entry_at(p) else {
                continue;
            };
            let (tid, pid) = (t.tid, t.pid);
            let idle = self.now_tick.wrapping_sub(t.last_tick) > timeout_ticks;
            if !idle || pid == self.own_pid || alive(pid, tid) {
                continue;
            }
            self.remove_thread(tid);
            self.counters.n_purged_threads += 1;
            n += 1;
            if tid == pid {
                self.release_fds(pid, false);
            }
        }
        n
    }

    /// The purge against this State's /proc root (a no-op without one).
    pub fn purge_proc(&mut self, timeout_ticks: u32) -> usize {
        let Some(root) = self.proc_root.clone() else {
            return 0;
        };
        self.purge(timeout_ticks, |pid, tid| {
            proc_scan::thread_alive(&root, pid, tid)
        })
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_image;
