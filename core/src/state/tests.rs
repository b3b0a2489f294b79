//! Unit tests for every state-counter rule; each names the libsinsp
//! behaviour (libs 0.14, userspace/libsinsp) it mirrors.
use super::*;
use crate::capture::record::{decode, synth};
use crate::capture::skel::types::kestrel_record_type as T;

fn apply(s: &mut State, rec: &[u8]) {
    s.apply(&decode(rec).expect("synthetic record decodes"));
}

fn seeded(cap: usize) -> State {
    let mut s = State::new(cap, 64, 999_999, false);
    s.add_thread(State::thread_from_task(100, 100, &synth::task(1, "init")));
    s.counters = StateCounters::default();
    s
}

fn close(tid: u32, fd: i64, ret: i64) -> Vec<u8> {
    synth::fd(T::KR_CLOSE, tid, tid, fd, ret, false)
}

#[test]
fn find_thread_cached_noncached_failed() {
    // threadinfo.cpp find_thread: the one-entry m_last_tid cache, then the table.
    let mut s = seeded(8);
    apply(&mut s, &close(100, 9, -9));
    assert_eq!(s.counters.n_noncached_thread_lookups, 1);
    apply(&mut s, &close(100, 9, -9));
    assert_eq!(s.counters.n_cached_thread_lookups, 1);
    apply(&mut s, &close(555, 9, -9));
    assert_eq!(s.counters.n_failed_thread_lookups, 1);
    // procexit of an unknown thread: reset()'s lookup fails, once.
    apply(&mut s, &synth::exit(555, 555, true));
    assert_eq!(s.counters.n_failed_thread_lookups, 2);
    // remove_thread (of 101: known, a noncached find) clears m_last_tid.
    s.add_thread(Thread::new(101, 100));
    apply(&mut s, &synth::exit(101, 100, false));
    apply(&mut s, &close(100, 9, -9));
    assert_eq!(s.counters.n_noncached_thread_lookups, 3);
}

#[test]
fn exit_of_an_unknown_thread_fails_one_lookup() {
    // parsers.cpp parse_thread_exit (libs 0.14.2): no m_tinfo from reset(),
    // so it returns before m_tid_to_remove is set and remove_thread never
    // runs. A known thread: one lookup, one removal, no failure.
    let mut s = seeded(8);
    apply(&mut s, &synth::exit(555, 555, false));
    apply(&mut s, &synth::exit(556, 555, true));
    let c = s.counters;
    assert_eq!(c.n_failed_thread_lookups, 2, "one per exit");
    assert_eq!(c.n_removed_threads, 0);
    apply(&mut s, &synth::exit(100, 100, true));
    let c = s.counters;
    assert_eq!(c.n_failed_thread_lookups, 2);
    assert_eq!((c.n_noncached_thread_lookups, c.n_removed_threads), (1, 1));
    assert_eq!(s.n_threads(), 0);
}

#[test]
fn clone_child_adds_and_clone_misses_are_not_failures() {
    // parsers.cpp reset(): clone exits never query /proc and take a failed
    // lookup back; only the child-side record adds the child.
    let mut s = seeded(8);
    apply(&mut s, &synth::clone(101, 101, 0, true, false));
    apply(&mut s, &synth::exit(101, 101, true));
    apply(&mut s, &synth::clone(100, 100, 101, false, false));
    apply(&mut s, &synth::clone(777, 777, 102, false, false));
    assert_eq!(s.counters.n_added_threads, 1);
    assert_eq!(s.counters.n_removed_threads, 1);
    assert_eq!(s.n_threads(), 1, "a late parent record does not resurrect");
    assert_eq!(s.counters.n_failed_thread_lookups, 0);
    apply(&mut s, &synth::clone(102, 100, 0, true, true));
    assert_eq!(s.thread(102).unwrap().pid, 100);
}

#[test]
fn new_thread_takes_exe_from_its_leader_and_a_process_from_its_parent() {
    let mut s = seeded(8);
    s.threads.get_mut(100).unwrap().exe = bounded(b"/usr/bin/leader");
    // The grandparent (ppid 1 in synth::task) has another exe.
    let mut gp = Thread::new(1, 1);
    gp.exe = bounded(b"/sbin/init");
    s.add_thread(gp);
    apply(&mut s, &synth::clone(102, 100, 0, true, true));
    assert_eq!(&s.thread(102).unwrap().exe[..], b"/usr/bin/leader");
    // A fork child's parent is its real_parent (ppid 1 here).
    apply(&mut s, &synth::clone(103, 103, 0, true, false));
    assert_eq!(&s.thread(103).unwrap().exe[..], b"/sbin/init");
}

#[test]
fn full_thread_table_refuses_and_logs_first_and_every_capacity_th() {
    // add_thread: refused when full, the agent's own pid always admitted.
    let mut s = seeded(2);
    apply(&mut s, &synth::clone(101, 101, 0, true, false));
    let mut logged = 0;
    for child in 102..110u32 {
        apply(&mut s, &synth::clone(child, child, 0, true, false));
        if s.log_full_drop {
            logged += 1;
            s.log_full_drop = false;
        }
    }
    assert_eq!(s.n_threads(), 2);
    assert_eq!(s.counters.n_drops_full_threadtable, 8);
    assert_eq!(logged, 4, "drops 1, 3, 5, 7 are logged at capacity 2");
    let own = Thread::new(7, 999_999);
    assert!(s.add_thread(own));
}

#[test]
fn fd_add_replace_erase_and_failed_close() {
    // sinsp_fdtable::add counts new fds only; erase counts noncached +
    // removed, or failed; parse_close_exit takes a failed close's lookup back.
    let mut s = seeded(8);
    apply(&mut s, &synth::open(100, 100, 3, 0, "/etc/hosts"));
    assert_eq!(s.counters.n_added_fds, 1);
    apply(&mut s, &synth::open(100, 100, 3, 0, "/etc/passwd"));
    assert_eq!(s.counters.n_added_fds, 1, "replacing is not an add");
    assert_eq!(&s.fd(100, 3).unwrap().path[..], b"/etc/passwd");
    apply(&mut s, &close(100, 3, 0));
    assert_eq!(
        (s.counters.n_removed_fds, s.counters.n_noncached_fd_lookups),
        (1, 1)
    );
    apply(&mut s, &close(100, 3, 0));
    assert_eq!(s.counters.n_failed_fd_lookups, 1, "absent fd");
    apply(&mut s, &close(100, 3, -9));
    assert_eq!(s.counters.n_failed_fd_lookups, 1, "failed close");
    apply(&mut s, &synth::open(100, 100, -2, 0, "/nope"));
    assert_eq!(s.n_fds(), 0);
}

#[test]
fn fd_cache_belongs_to_the_table() {
    // sinsp_fdtable::find: m_last_accessed_fd is per table, reset by a new
    // add and by erasing that fd, kept by a replacement.
    let mut s = seeded(8);
    apply(&mut s, &synth::clone(101, 100, 0, true, true));
    apply(&mut s, &synth::socket(100, 100, 4));
    apply(&mut s, &synth::sockaddr(T::KR_CONNECT, 100, 100, 4, 0));
    assert_eq!(s.counters.n_noncached_fd_lookups, 1);
    // Another thread of the same process hits the same table's cache.
    apply(&mut s, &synth::sockaddr(T::KR_CONNECT, 101, 100, 4, 0));
    assert_eq!(s.counters.n_cached_fd_lookups, 1);
    assert_eq!(s.fd(100, 4).unwrap().sock.port, 80);
    apply(&mut s, &synth::socket(100, 100, 4));
    apply(&mut s, &synth::sockaddr(T::KR_CONNECT, 100, 100, 4, 0));
    assert_eq!(s.counters.n_cached_fd_lookups, 2, "replacement keeps it");
    apply(&mut s, &synth::socket(100, 100, 5));
    apply(&mut s, &synth::sockaddr(T::KR_CONNECT, 100, 100, 4, 0));
    assert_eq!(s.counters.n_noncached_fd_lookups, 2, "a new fd resets it");
    apply(&mut s, &synth::fd(T::KR_DUP, 100, 100, 4, 9, false));
    assert_eq!(s.fd(100, 9).unwrap().kind, FdKind::Socket);
    assert_eq!(s.counters.n_added_fds, 3);
    apply(&mut s, &synth::sockaddr(T::KR_ACCEPT, 100, 100, 4, 10));
    assert_eq!(s.counters.n_added_fds, 4);
}

#[test]
fn fork_copies_the_table_without_counting_adds_and_threads_share_it() {
    // parse_clone_exit_child: a child that is not a thread gets a copy of
    // the caller's table by assignment (no add); a thread uses the leader's.
    let mut s = State::new(16, 128, 0, false);
    let mut init = Thread::new(1, 1);
    init.exe = bounded(b"/sbin/init");
    s.add_thread(init);
    for fd in 3..53 {
        apply(&mut s, &synth::open(1, 1, fd, 0, "/f"));
    }
    let added = s.counters.n_added_fds;
    for child in 200..210u32 {
        apply(&mut s, &synth::clone(child, child, 0, true, false));
        for fd in 3..53 {
            apply(&mut s, &close(child, fd, 0));
        }
    }
    let c = s.counters;
    assert_eq!(c.n_added_fds, added, "copies are not adds");
    assert_eq!(c.n_inherited_fds, 500);
    assert_eq!(c.n_removed_fds, 500);
    assert_eq!(c.n_failed_fd_lookups, 0);
    assert_eq!(s.n_fds(), 50);
    // A thread of init adds nothing and makes n_fds count init's table twice.
    apply(&mut s, &synth::clone(300, 1, 0, true, true));
    assert_eq!(s.n_fds(), 50);
    assert_eq!(s.n_fds_falco(), 100, "libsinsp sums the table per thread");
}

#[test]
fn fork_copy_that_does_not_fit_is_a_drop() {
    let mut s = State::new(8, 6, 0, false);
    s.add_thread(Thread::new(1, 1));
    for fd in 0..4 {
        apply(&mut s, &synth::open(1, 1, fd, 0, "/f"));
    }
    apply(&mut s, &synth::clone(2, 2, 0, true, false));
    assert_eq!(s.counters.n_inherited_fds, 2);
    assert_eq!(s.counters.n_drops_full_fdtable, 2);
    assert_eq!(s.n_fds(), 6);
}

#[test]
fn exec_and_exit_release_fds_outside_n_removed_fds() {
    // libsinsp drops a table with its thread uncounted
    // (remove_main_thread_fdtable); Kestrel counts kestrel.n_released_fds.
    let mut s = seeded(8);
    apply(&mut s, &synth::open(100, 100, 3, 0o2000000, "/a"));
    apply(&mut s, &synth::open(100, 100, 4, 0, "/b"));
    apply(&mut s, &synth::exec(100, 100, 100, "/usr/bin/true"));
    assert!(s.fd(100, 3).is_none());
    assert!(s.fd(100, 4).is_some());
    assert_eq!(
        (s.counters.n_removed_fds, s.counters.n_released_fds),
        (0, 1)
    );
    assert_eq!(&s.thread(100).unwrap().exe[..], b"/usr/bin/true");
    assert_eq!(&s.thread(100).unwrap().comm[..4], b"true");
    apply(&mut s, &synth::exit(100, 100, true));
    assert_eq!(s.n_fds(), 0);
    assert_eq!(s.counters.n_released_fds, 2);
    assert_eq!(s.n_threads(), 0);
}

#[test]
fn exec_by_non_leader_thread_removes_old_tid() {
    let mut s = seeded(8);
    apply(&mut s, &synth::clone(105, 100, 0, true, true));
    apply(&mut s, &synth::exec(100, 100, 105, "/bin/sh"));
    assert!(s.thread(105).is_none());
    assert_eq!(s.counters.n_removed_threads, 1);
}

#[test]
fn enter_exit_pairing() {
    // store_event / retrieve_enter_event.
    let mut s = State::new(8, 8, 0, true);
    s.add_thread(State::thread_from_task(100, 100, &synth::task(1, "x")));
    apply(&mut s, &synth::enter(100, 100, 3));
    apply(&mut s, &close(100, 5, -9));
    assert_eq!(
        (s.counters.n_stored_evts, s.counters.n_retrieved_evts),
        (1, 1)
    );
    apply(&mut s, &close(100, 5, -9));
    assert_eq!(s.counters.n_retrieve_evts_drops, 1, "no saved enter");
    apply(&mut s, &synth::enter(300, 300, 3));
    assert_eq!(s.counters.n_store_evts_drops, 1, "no thread to save on");
    apply(&mut s, &close(300, 5, -9));
    assert_eq!(
        s.counters.n_retrieve_evts_drops, 1,
        "no thread: not counted"
    );
    apply(&mut s, &synth::enter(100, 100, 3));
    apply(&mut s, &synth::open(100, 100, 3, 0, "/x"));
    assert_eq!(
        s.counters.n_retrieve_evts_drops, 2,
        "enter of another syscall"
    );
}

#[test]
fn fork_child_record_is_not_paired() {
    // The x86_64 child-side clone record has no enter on the child.
    let mut s = State::new(8, 8, 0, true);
    s.add_thread(Thread::new(100, 100));
    apply(&mut s, &synth::enter(100, 100, 56));
    apply(&mut s, &synth::clone(101, 101, 0, true, false));
    apply(&mut s, &synth::clone(100, 100, 101, false, false));
    let c = s.counters;
    assert_eq!((c.n_retrieved_evts, c.n_retrieve_evts_drops), (1, 0));
}

#[test]
fn lookup_miss_falls_back_to_proc() {
    // get_thread_ref(query_os): failed, read /proc, add, found (noncached).
    let me = std::process::id();
    let mut s =
        State::new(64, 64, 0, false).with_proc_fallback(proc_scan::ProcRoot::new("/proc").unwrap());
    apply(&mut s, &close(me, 9, -9));
    let c = s.counters;
    assert_eq!(c.n_failed_thread_lookups, 1);
    assert_eq!((c.n_added_threads, c.n_noncached_thread_lookups), (1, 1));
    assert_eq!(c.n_proc_lookups, 1);
    assert!(!s.thread(me).unwrap().exe.is_empty());
    // A tid /proc does not know gets a placeholder, so it is looked up once.
    apply(&mut s, &close(u32::MAX - 3, 9, -9));
    apply(&mut s, &close(u32::MAX - 3, 9, -9));
    assert_eq!(s.counters.n_proc_lookup_misses, 1);
    assert_eq!(s.counters.n_cached_thread_lookups, 1);
    // Clone and exit records never query /proc.
    apply(&mut s, &synth::exit(u32::MAX - 5, u32::MAX - 5, true));
    assert_eq!(s.counters.n_added_threads, 2);
}

#[test]
fn proc_lookups_are_budgeted_per_tick() {
    let mut s =
        State::new(64, 64, 0, false).with_proc_fallback(proc_scan::ProcRoot::new("/proc").unwrap());
    let me = std::process::id();
    for i in 0..PROC_LOOKUPS_PER_TICK {
        apply(&mut s, &close(u32::MAX - 10 - i, 9, -9));
    }
    apply(&mut s, &close(me, 9, -9));
    assert_eq!(s.counters.n_proc_lookups, 0, "budget spent on unknown tids");
    assert_eq!(s.thread(me).unwrap().exe.len(), 0, "placeholder");
    s.tick();
    apply(&mut s, &close(me, 9, -9));
    assert_eq!(s.counters.n_proc_lookups, 0, "already present");
}

#[test]
fn purge_removes_idle_threads_gone_from_proc() {
    // remove_inactive_threads: idle longer than the timeout and not alive.
    let mut s = seeded(8);
    apply(&mut s, &synth::clone(101, 101, 0, true, false));
    apply(&mut s, &synth::open(101, 101, 3, 0, "/x"));
    for _ in 0..10 {
        s.tick();
    }
    apply(&mut s, &close(100, 9, -9)); // 100 is active
    assert_eq!(s.purge(5, |_, _| true), 0, "alive threads stay");
    assert_eq!(s.purge(5, |_, tid| tid != 101), 1);
    assert!(s.thread(101).is_none() && s.thread(100).is_some());
    let c = s.counters;
    assert_eq!((c.n_removed_threads, c.n_purged_threads), (1, 1));
    assert_eq!((s.n_fds(), c.n_released_fds), (0, 1));
    assert_eq!(s.purge(0, |_, _| false), 0, "active within the timeout");
}

#[test]
fn clean_fd_identity_holds() {
    let mut s = seeded(8);
    for fd in 3..40 {
        apply(
            &mut s,
            &synth::open(100, 100, fd, if fd % 3 == 0 { 0o2000000 } else { 0 }, "/f"),
        );
        if fd % 2 == 0 {
            apply(&mut s, &close(100, fd, 0));
        }
    }
    apply(&mut s, &synth::clone(101, 101, 0, true, false));
    apply(&mut s, &synth::exec(100, 100, 100, "/bin/x"));
    apply(&mut s, &synth::exit(101, 101, true));
    let c = s.counters;
    assert_eq!(
        s.n_fds() as u64,
        c.n_added_fds + c.n_inherited_fds - c.n_removed_fds - c.n_released_fds
    );
}

#[test]
fn a_stale_entry_with_a_reused_tid_is_replaced_at_clone() {
    // parse_clone_exit_child: an existing child tid is an old thread whose
    // exit was lost; it is removed and the new one added.
    let mut s = seeded(8);
    apply(&mut s, &synth::clone(101, 101, 0, true, false));
    apply(&mut s, &synth::open(101, 101, 7, 0, "/stale"));
    // 101's exit is lost; the tid comes back as a new process.
    apply(&mut s, &synth::clone(101, 101, 0, true, false));
    let c = s.counters;
    assert_eq!((c.n_added_threads, c.n_removed_threads), (2, 1));
    assert!(
        s.fd(101, 7).is_none(),
        "the dead process's fds went with it"
    );
    assert_eq!(c.n_released_fds, 1);
    assert_eq!(s.n_threads(), 2);
}

#[test]
fn an_open_closed_by_its_tail_counts_as_add_then_erase() {
    // The table skips an open whose close rides on it; every counter, the
    // lookup cache and the entries must still read as if it had added and
    // erased it: fresh, beside a cached entry, over a stale one, with the
    // table full, and out of range.
    let (mut tailed, mut alone) = (
        State::new(8, 4, 999_999, false),
        State::new(8, 4, 999_999, false),
    );
    for s in [&mut tailed, &mut alone] {
        s.add_thread(State::thread_from_task(100, 100, &synth::task(1, "init")));
    }
    let dup = |old| synth::fd(T::KR_DUP, 100, 100, old, 10, false);
    let steps: &[(&str, Vec<u8>, i64)] = &[
        ("fresh", vec![], 3),
        ("kept", synth::open(100, 100, 4, 0, "/kept"), 5),
        ("cached", dup(4), 5),
        ("stale", synth::open(100, 100, 6, 0, "/stale"), 6),
        ("full", synth::open(100, 100, 7, 0, "/a"), 9),
        ("out of range", vec![], i64::from(FDS_PER_PROCESS_MAX)),
    ];
    for (what, before, fd) in steps {
        for (s, open) in [
            (
                &mut tailed,
                synth::with_close_tail(synth::open(100, 100, *fd, 0, "/f")),
            ),
            (&mut alone, synth::open(100, 100, *fd, 0, "/f")),
        ] {
            if !before.is_empty() {
                apply(s, before);
            }
            if *what == "full" {
                apply(s, &synth::open(100, 100, 8, 0, "/b"));
            }
            apply(s, &open);
            apply(s, &close(100, *fd, 0));
            apply(s, &dup(4));
        }
        assert_eq!(tailed.counters, alone.counters, "{what}");
        assert_eq!(tailed.n_fds(), alone.n_fds(), "{what}");
        for fd in 0..12 {
            assert_eq!(
                tailed.fd(100, fd).is_some(),
                alone.fd(100, fd).is_some(),
                "{what}: fd {fd}"
            );
        }
    }
    let c = alone.counters;
    assert!(c.n_drops_full_fdtable > 0 && c.n_cached_fd_lookups > 0 && c.n_failed_fd_lookups > 0);
    assert!(
        c.n_removed_fds >= 3,
        "the fresh, cached and stale closes erased"
    );

    // A flagged open whose tail never came (a cut stage) leaves nothing
    // that would keep a later close of that fd from erasing it.
    let mut s = seeded(8);
    apply(
        &mut s,
        &synth::with_close_tail(synth::open(100, 100, 3, 0, "/f")),
    );
    apply(&mut s, &close(100, 9, -9));
    apply(&mut s, &synth::open(100, 100, 3, 0, "/f"));
    apply(&mut s, &close(100, 3, 0));
    assert_eq!((s.n_fds(), s.counters.n_removed_fds), (0, 1));
}
