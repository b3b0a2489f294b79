//! Unit tests for every state-counter rule.
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

#[test]
fn thread_lookup_cache_rules() {
    let mut s = seeded(8);
    apply(&mut s, &synth::fd(T::KR_CLOSE, 100, 100, 9, -9, false));
    assert_eq!(s.counters.n_noncached_thread_lookups, 1);
    apply(&mut s, &synth::fd(T::KR_CLOSE, 100, 100, 9, -9, false));
    assert_eq!(s.counters.n_cached_thread_lookups, 1);
    apply(&mut s, &synth::fd(T::KR_CLOSE, 555, 555, 9, -9, false));
    assert_eq!(s.counters.n_failed_thread_lookups, 1);
    // Any remove clears the cache.
    apply(&mut s, &synth::exit(555, 555, true));
    assert_eq!(
        s.counters.n_failed_thread_lookups, 2,
        "removing an absent tid fails"
    );
    apply(&mut s, &synth::fd(T::KR_CLOSE, 100, 100, 9, -9, false));
    assert_eq!(s.counters.n_noncached_thread_lookups, 2);
}

#[test]
fn clone_adds_the_child_from_its_own_record_only() {
    let mut s = seeded(8);
    // The child may run and exit before the parent's return is seen.
    apply(&mut s, &synth::clone(101, 101, 0, true, false));
    apply(&mut s, &synth::exit(101, 101, true));
    apply(&mut s, &synth::clone(100, 100, 101, false, false));
    assert_eq!(s.counters.n_added_threads, 1);
    assert_eq!(s.counters.n_removed_threads, 1);
    assert_eq!(
        s.n_threads(),
        1,
        "the late parent record does not resurrect the child"
    );
    assert_eq!(
        s.counters.n_noncached_thread_lookups, 1,
        "the parent is looked up"
    );
    apply(&mut s, &synth::clone(102, 100, 0, true, true));
    assert_eq!(s.thread(102).unwrap().pid, 100);
    assert_eq!(
        s.counters.n_failed_thread_lookups, 0,
        "a new child is not a failed lookup"
    );
}

#[test]
fn full_thread_table_refuses_and_logs_first_and_every_capacity_th() {
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
    // The agent's own threads are always admitted.
    let mut own = State::thread_from_task(7, 999_999, &synth::task(1, "kestrel"));
    own.pid = 999_999;
    assert!(s.add_thread(own));
}

#[test]
fn fd_add_replace_remove_and_failed_close() {
    let mut s = seeded(8);
    apply(&mut s, &synth::open(100, 100, 3, 0, "/etc/hosts"));
    assert_eq!(s.counters.n_added_fds, 1);
    apply(&mut s, &synth::open(100, 100, 3, 0, "/etc/passwd"));
    assert_eq!(s.counters.n_added_fds, 1, "replacing is not an add");
    assert_eq!(&s.fd(100, 3).unwrap().path[..], b"/etc/passwd");
    apply(&mut s, &synth::fd(T::KR_CLOSE, 100, 100, 3, 0, false));
    assert_eq!(
        (s.counters.n_removed_fds, s.counters.n_noncached_fd_lookups),
        (1, 1)
    );
    apply(&mut s, &synth::fd(T::KR_CLOSE, 100, 100, 3, 0, false));
    assert_eq!(s.counters.n_failed_fd_lookups, 1, "absent fd");
    apply(&mut s, &synth::fd(T::KR_CLOSE, 100, 100, 3, -9, false));
    assert_eq!(
        s.counters.n_failed_fd_lookups, 1,
        "a failed close is not a failed lookup"
    );
    apply(&mut s, &synth::open(100, 100, -2, 0, "/nope"));
    assert_eq!(s.n_fds(), 0);
}

#[test]
fn fd_cache_hits_and_is_invalidated() {
    let mut s = seeded(8);
    apply(&mut s, &synth::socket(100, 100, 4));
    apply(&mut s, &synth::sockaddr(T::KR_CONNECT, 100, 100, 4, 0));
    assert_eq!(s.counters.n_noncached_fd_lookups, 1);
    apply(&mut s, &synth::sockaddr(T::KR_CONNECT, 100, 100, 4, 0));
    assert_eq!(s.counters.n_cached_fd_lookups, 1);
    assert_eq!(s.fd(100, 4).unwrap().sock.port, 80);
    // Re-adding fd 4 invalidates the cache.
    apply(&mut s, &synth::socket(100, 100, 4));
    apply(&mut s, &synth::sockaddr(T::KR_CONNECT, 100, 100, 4, 0));
    assert_eq!(s.counters.n_noncached_fd_lookups, 2);
    // dup looks the old fd up and adds the new one.
    apply(&mut s, &synth::fd(T::KR_DUP, 100, 100, 4, 9, false));
    assert_eq!(s.fd(100, 9).unwrap().kind, FdKind::Socket);
    assert_eq!(s.counters.n_added_fds, 2);
    apply(&mut s, &synth::sockaddr(T::KR_ACCEPT, 100, 100, 4, 10));
    assert_eq!(s.counters.n_added_fds, 3);
}

#[test]
fn exec_drops_cloexec_fds_and_updates_identity() {
    let mut s = seeded(8);
    apply(&mut s, &synth::open(100, 100, 3, 0o2000000, "/a"));
    apply(&mut s, &synth::open(100, 100, 4, 0, "/b"));
    apply(&mut s, &synth::exec(100, 100, 100, "/usr/bin/true"));
    assert!(s.fd(100, 3).is_none());
    assert!(s.fd(100, 4).is_some());
    assert_eq!(s.counters.n_removed_fds, 1);
    assert_eq!(&s.thread(100).unwrap().exe[..], b"/usr/bin/true");
    assert_eq!(&s.thread(100).unwrap().comm[..4], b"true");
    // Process exit with the group gone clears its fds.
    apply(&mut s, &synth::exit(100, 100, true));
    assert_eq!(s.n_fds(), 0);
    assert_eq!(s.counters.n_removed_fds, 2);
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
    let mut s = State::new(8, 8, 0, true);
    s.add_thread(State::thread_from_task(100, 100, &synth::task(1, "x")));
    apply(&mut s, &synth::enter(100, 100, 3));
    apply(&mut s, &synth::fd(T::KR_CLOSE, 100, 100, 5, -9, false));
    assert_eq!(
        (s.counters.n_stored_evts, s.counters.n_retrieved_evts),
        (1, 1)
    );
    apply(&mut s, &synth::fd(T::KR_CLOSE, 100, 100, 5, -9, false));
    assert_eq!(s.counters.n_retrieve_evts_drops, 1, "no saved enter");
    apply(&mut s, &synth::enter(300, 300, 3));
    assert_eq!(s.counters.n_store_evts_drops, 1, "no thread to save on");
    apply(&mut s, &synth::enter(100, 100, 3));
    apply(&mut s, &synth::open(100, 100, 3, 0, "/x"));
    assert_eq!(
        s.counters.n_retrieve_evts_drops, 2,
        "enter of another syscall"
    );
}

#[test]
fn fd_invariant_holds() {
    let mut s = seeded(8);
    for fd in 3..40 {
        apply(
            &mut s,
            &synth::open(100, 100, fd, if fd % 3 == 0 { 0o2000000 } else { 0 }, "/f"),
        );
        if fd % 2 == 0 {
            apply(&mut s, &synth::fd(T::KR_CLOSE, 100, 100, fd, 0, false));
        }
    }
    apply(&mut s, &synth::exec(100, 100, 100, "/bin/x"));
    let c = s.counters;
    assert_eq!(s.n_fds() as u64, c.n_added_fds - c.n_removed_fds);
}
