//! The known tree, live: a process holding fds opened before the probe
//! started forks children one after another, each closing the fds it
//! inherited. Seeded from /proc as the agent seeds (its table sizes, the
//! /proc fallback), the real probe's records applied: every count is exact.
//! Root only (#[ignore]d "needs root"; scripts/test.sh runs them).

use std::collections::HashSet;
use std::os::fd::AsRawFd;

use kestrel::capture::record::Record;
use kestrel::state::{proc_scan, State, DEFAULT_FD_CAPACITY, DEFAULT_THREAD_CAPACITY};

mod common;
use common::{apply_where, capture, fork_children, probe_lock, tmp, unbatched};

/// `fds` files open in this process, and their numbers.
fn open_files(name: &str, fds: usize) -> (String, Vec<std::fs::File>, Vec<i32>) {
    let path = tmp(name);
    std::fs::write(&path, b"x").unwrap();
    let files: Vec<std::fs::File> = (0..fds)
        .map(|_| std::fs::File::open(&path).unwrap())
        .collect();
    let raw = files.iter().map(|f| f.as_raw_fd()).collect();
    (path, files, raw)
}

/// The state the agent starts with: its default table sizes, seeded from
/// /proc, lookup misses answered from /proc. Checks the fds were seeded.
fn agent_state(me: u32, raw_fds: &[i32], path: &str) -> State {
    let mut state = State::new(
        DEFAULT_THREAD_CAPACITY,
        DEFAULT_FD_CAPACITY,
        u32::MAX,
        false,
    )
    .with_proc_fallback(proc_scan::ProcRoot::new("/proc").unwrap());
    let seeded = proc_scan::seed(&mut state, &proc_scan::ProcRoot::new("/proc").unwrap());
    let c0 = state.counters;
    assert_eq!(c0.n_added_fds as usize, seeded.fds, "seeded fds are adds");
    assert_eq!(c0.n_added_threads as usize, seeded.threads);
    assert_eq!(seeded.refused_threads, 0);
    for fd in raw_fds {
        let f = state
            .fd(me, i64::from(*fd))
            .expect("fd open before start is seeded");
        assert_eq!(&f.path[..], path.as_bytes());
    }
    state
}

/// Forks `n` children one after another, each closing `raw_fds`.
fn close_in_children(n: usize, raw_fds: &[i32]) -> Vec<u32> {
    fork_children(n, || {
        for fd in raw_fds {
            // SAFETY: close(2) is async-signal-safe.
            unsafe { libc::close(*fd) };
        }
    })
}

/// Overwrites the stack below the caller, where pthread_create's clone3
/// args were.
#[inline(never)]
fn scribble_stack() {
    let mut buf = [0u8; 16 << 10];
    std::hint::black_box(&mut buf);
}

/// This thread on one CPU (its new threads inherit it) until dropped.
struct OneCpu(libc::cpu_set_t);

impl OneCpu {
    fn pin() -> OneCpu {
        // SAFETY: plain affinity calls on this thread with a set on the stack.
        unsafe {
            let mut old: libc::cpu_set_t = std::mem::zeroed();
            libc::sched_getaffinity(0, std::mem::size_of_val(&old), &mut old);
            let mut one: libc::cpu_set_t = std::mem::zeroed();
            let cpu = (0..libc::CPU_SETSIZE as usize)
                .find(|&c| libc::CPU_ISSET(c, &old))
                .unwrap_or(0);
            libc::CPU_SET(cpu, &mut one);
            libc::sched_setaffinity(0, std::mem::size_of_val(&one), &one);
            OneCpu(old)
        }
    }
}

impl Drop for OneCpu {
    fn drop(&mut self) {
        // SAFETY: restores this thread's affinity as it was.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&self.0), &self.0) };
    }
}

/// The counts of the tree: `n` children each closed `fds` inherited fds
/// and copied the whole table (`n_me` fds); the parent keeps its own.
fn assert_exact(
    state: &State,
    c0: kestrel::state::StateCounters,
    me: u32,
    n: u64,
    fds: u64,
    n_me: u64,
) {
    let c = state.counters;
    assert_eq!(c.n_failed_fd_lookups - c0.n_failed_fd_lookups, 0);
    assert_eq!(c.n_failed_thread_lookups - c0.n_failed_thread_lookups, 0);
    assert_eq!(c.n_added_fds - c0.n_added_fds, 0, "copies are not adds");
    assert_eq!(c.n_removed_fds - c0.n_removed_fds, n * fds);
    assert_eq!(c.n_inherited_fds, n * n_me, "each child copied the table");
    assert_eq!(
        c.n_released_fds - c0.n_released_fds,
        n * (n_me - fds),
        "the rest left with each child's exit, none of the parent's"
    );
    assert_eq!(
        u64::from(state.fd_count(me)),
        n_me,
        "the parent keeps its fds"
    );
}

/// 50 fds, 10 children forked by this (seeded) thread.
#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn seeded_and_inherited_fds_of_a_known_tree_are_counted_exactly() {
    let _g = probe_lock();
    const FDS: usize = 50;
    const CHILDREN: usize = 10;
    let (path, files, raw_fds) = open_files("tree", FDS);
    let me = std::process::id();
    let me_tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
    let mut state = agent_state(me, &raw_fds, &path);
    assert!(state.thread(me_tid).is_some(), "this thread is seeded");
    let c0 = state.counters;
    let mut children = HashSet::new();
    let (raw, counters) = capture(unbatched(), false, || {
        children.extend(close_in_children(CHILDREN, &raw_fds));
    });
    drop(files);
    let _ = std::fs::remove_file(&path);
    assert_eq!(counters.n_drops(), 0);
    let n_me = u64::from(state.fd_count(me));
    apply_where(&mut state, &raw, |rec| {
        let h = rec.hdr();
        let mine = h.tid == me_tid && !matches!(rec, Record::ProcExit { .. });
        mine || children.contains(&h.pid)
    });
    let c = state.counters;
    let n = CHILDREN as u64;
    assert_eq!(c.n_added_threads - c0.n_added_threads, n);
    assert_eq!(c.n_removed_threads - c0.n_removed_threads, n);
    assert_eq!(c.n_inherited_fds, n * n_me);
    assert_exact(&state, c0, me, n, FDS as u64, n_me);
}

/// The tree: 200 fds opened before the probe started, 10 children
/// forked from a thread started after it (std's spawn is a clone3). That
/// thread's child-side record said "process" whenever the parent had
/// reused the memory holding its clone3 args before the thread ran: the
/// group's fd table was released and replaced by the grandparent's, and
/// 245-472 of the children's 2,000 closes failed.
#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn a_known_tree_forked_by_a_new_thread_is_counted_exactly() {
    let _g = probe_lock();
    const FDS: usize = 200;
    const CHILDREN: usize = 10;
    let (path, files, raw_fds) = open_files("tree-thread", FDS);
    let me = std::process::id();
    let mut state = agent_state(me, &raw_fds, &path);
    let c0 = state.counters;
    let n_me = u64::from(state.fd_count(me));
    let (mut children, mut workers) = (HashSet::new(), HashSet::new());
    let (raw, counters) = capture(unbatched(), false, || {
        // One CPU: the new thread runs after this one has moved on.
        let _cpu = OneCpu::pin();
        std::thread::scope(|s| {
            let h = s.spawn(|| {
                let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
                (tid, close_in_children(CHILDREN, &raw_fds))
            });
            scribble_stack();
            let (tid, kids) = h.join().unwrap();
            workers.insert(tid);
            children.extend(kids);
        });
    });
    drop(files);
    let _ = std::fs::remove_file(&path);
    assert_eq!(counters.n_drops(), 0);
    // The new thread's records (its birth included) and the children's.
    apply_where(&mut state, &raw, |rec| {
        let h = rec.hdr();
        workers.contains(&h.tid) || children.contains(&h.pid)
    });
    let c = state.counters;
    let n = CHILDREN as u64;
    assert_eq!(
        c.n_added_threads - c0.n_added_threads,
        n + 1,
        "children and the thread"
    );
    assert_eq!(c.n_removed_threads - c0.n_removed_threads, n + 1);
    assert_exact(&state, c0, me, n, FDS as u64, n_me);
}
