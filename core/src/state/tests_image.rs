//! The process image, cwd and session in the thread table: set by exec,
//! copied to children, moved by chdir (libsinsp parsers.cpp
//! parse_execve_exit, parse_clone_exit_child, parse_chdir_exit).
use core::mem::offset_of;

use super::*;
use crate::capture::record::{decode, synth};
use crate::capture::skel::types::{kestrel_clone, kestrel_exec, kestrel_flags as F, kestrel_task};
use crate::capture::syscalls::by_name;

fn apply(s: &mut State, rec: &[u8]) {
    s.apply(&decode(rec).expect("synthetic record decodes"));
}

fn state() -> State {
    let mut s = State::new(16, 64, 999_999, false);
    let mut init = Thread::new(1, 1);
    init.cwd = bounded(b"/");
    init.args = bounded(b"/sbin/init\0");
    s.add_thread(init);
    s.add_thread(State::thread_from_task(100, 100, &synth::task(1, "leader")));
    s.counters = StateCounters::default();
    s
}

/// Sets loginuid, tty and sid in the task of a record whose task is at `at`.
fn session(rec: &mut [u8], at: usize, (loginuid, tty, sid): (u32, u32, u32)) {
    for (f, v) in [
        (offset_of!(kestrel_task, loginuid), loginuid),
        (offset_of!(kestrel_task, tty), tty),
        (offset_of!(kestrel_task, sid), sid),
    ] {
        rec[at + f..at + f + 4].copy_from_slice(&v.to_ne_bytes());
    }
}

fn exec(tid: u32, flags: F) -> Vec<u8> {
    let img = synth::Image {
        path: "/bin/app",
        argv: &["app", "--serve", "8080"],
        exepath: "/usr/bin/app",
        cwd: "/srv",
        flags: flags.0,
    };
    let mut rec = synth::exec_image(tid, tid, tid, &img);
    session(&mut rec, offset_of!(kestrel_exec, task), (1000, 34816, 77));
    rec
}

fn chdir(tid: u32, pid: u32, ret: i64, path: &str) -> Vec<u8> {
    let nr = by_name("chdir").and_then(|s| s.nr).unwrap() as i16;
    synth::syscall(tid, pid, nr, ret, [0; 6], Some(path), None)
}

fn cwd(s: &State, tid: u32) -> &[u8] {
    &s.thread(tid).unwrap().cwd
}

#[test]
fn exec_sets_the_image_and_session() {
    let mut s = state();
    apply(&mut s, &exec(100, F::KF_EXE_MEMFD));
    let t = s.thread(100).unwrap();
    assert_eq!(&t.exe[..], b"/bin/app");
    assert_eq!(&t.args[..], b"app\0--serve\08080\0");
    assert!(!t.args_trunc);
    assert_eq!(
        (&t.exepath[..], &t.cwd[..]),
        (&b"/usr/bin/app"[..], &b"/srv"[..])
    );
    assert_eq!((t.loginuid, t.tty, t.sid), (1000, 34816, 77));
    assert_eq!(t.exe_flags, EXE_FROM_MEMFD);
    assert_eq!(s.counters.n_noncached_thread_lookups, 1);
    assert_eq!(s.counters.n_added_threads, 0);
    // An exec of an unknown thread adds it with the same fields.
    apply(&mut s, &exec(300, F::KF_EXE_UPPER_LAYER));
    let t = s.thread(300).unwrap();
    assert_eq!((t.exe_flags, t.sid), (EXE_UPPER_LAYER, 77));
    assert_eq!(&t.args[..], b"app\0--serve\08080\0");
}

#[test]
fn incomplete_paths_are_unknown_and_cut_argv_is_flagged() {
    let mut s = state();
    let f = F(F::KF_EXEPATH_TRUNC.0 | F::KF_CWD_TRUNC.0 | F::KF_ARGS_TRUNC.0);
    apply(&mut s, &exec(100, f));
    let t = s.thread(100).unwrap();
    assert!(t.exepath.is_empty() && t.cwd.is_empty());
    assert!(t.args_trunc && !t.args.is_empty());
}

#[test]
fn threads_copy_their_leader_and_processes_their_parent() {
    let mut s = state();
    apply(&mut s, &exec(100, F::KF_EXE_MEMFD));
    let mut rec = synth::clone(102, 100, 0, true, true);
    session(&mut rec, offset_of!(kestrel_clone, task), (5, 6, 7));
    apply(&mut s, &rec);
    let t = s.thread(102).unwrap();
    assert_eq!(&t.args[..], b"app\0--serve\08080\0");
    assert_eq!(
        (&t.exepath[..], &t.cwd[..]),
        (&b"/usr/bin/app"[..], &b"/srv"[..])
    );
    assert_eq!(t.exe_flags, EXE_FROM_MEMFD);
    // The session comes from the child's own record.
    assert_eq!((t.loginuid, t.tty, t.sid), (5, 6, 7));
    // A forked child's parent is its real_parent (ppid 1 in synth::task).
    apply(&mut s, &synth::clone(103, 103, 0, true, false));
    let t = s.thread(103).unwrap();
    assert_eq!((&t.args[..], &t.cwd[..]), (&b"/sbin/init\0"[..], &b"/"[..]));
    assert_eq!(t.exe_flags, 0);
}

#[test]
fn chdir_resolves_against_the_cwd_and_moves_the_leader_too() {
    let mut s = state();
    apply(&mut s, &exec(100, F(0)));
    apply(&mut s, &synth::clone(101, 100, 0, true, true));
    s.counters = StateCounters::default();
    apply(&mut s, &chdir(101, 100, 0, "data//./x/.."));
    assert_eq!(cwd(&s, 101), b"/srv/data");
    assert_eq!(cwd(&s, 100), b"/srv/data", "the process's cwd");
    apply(&mut s, &chdir(100, 100, -2, "/nope"));
    assert_eq!(cwd(&s, 100), b"/srv/data", "a failed chdir moves nothing");
    apply(&mut s, &chdir(100, 100, 0, "/var/../etc"));
    assert_eq!(cwd(&s, 100), b"/etc");
    // Every KR_SYSCALL record looks its thread up once, as a generic one.
    let c = s.counters;
    assert_eq!(c.n_cached_thread_lookups + c.n_noncached_thread_lookups, 3);
    assert_eq!(c.n_failed_thread_lookups, 0);
}

#[test]
fn fchdir_unreadable_paths_and_unknown_bases_leave_the_cwd_unknown() {
    let mut s = state();
    apply(&mut s, &exec(100, F(0)));
    let fchdir = by_name("fchdir").and_then(|s| s.nr).unwrap() as i16;
    apply(
        &mut s,
        &synth::syscall(100, 100, fchdir, 0, [3, 0, 0, 0, 0, 0], None, None),
    );
    assert_eq!(cwd(&s, 100), b"");
    apply(&mut s, &chdir(100, 100, 0, "rel"));
    assert_eq!(cwd(&s, 100), b"", "relative to an unknown cwd");
    apply(&mut s, &chdir(100, 100, 0, "/abs"));
    assert_eq!(cwd(&s, 100), b"/abs");
    let mut rec = chdir(100, 100, 0, "");
    let at = offset_of!(crate::capture::skel::types::kestrel_hdr, flags);
    rec[at..at + 2].copy_from_slice(&(F::KF_PATH_FAULT.0 as u16).to_ne_bytes());
    apply(&mut s, &rec);
    assert_eq!(cwd(&s, 100), b"", "the path could not be read");
}

#[test]
fn chdir_numbers_are_taken_per_abi() {
    let mut s = state();
    apply(&mut s, &exec(100, F(0)));
    let sc = by_name("chdir").unwrap();
    let compat = sc.compat_nr.unwrap() as i16;
    let flags = offset_of!(crate::capture::skel::types::kestrel_hdr, flags);
    // The compat number read as a native one is another syscall.
    apply(
        &mut s,
        &synth::syscall(100, 100, compat, 0, [0; 6], Some("/x"), None),
    );
    assert_eq!(cwd(&s, 100), b"/srv");
    let mut rec = synth::syscall(100, 100, compat, 0, [0; 6], Some("/x"), None);
    rec[flags..flags + 2].copy_from_slice(&(F::KF_COMPAT.0 as u16).to_ne_bytes());
    apply(&mut s, &rec);
    assert_eq!(cwd(&s, 100), b"/x");
}

#[test]
fn a_thread_just_read_from_proc_already_has_the_new_cwd() {
    let root = &crate::testing::repo_tests_path("fixtures/proc/threads/proc");
    let mut s = State::new(16, 64, 999_999, false)
        .with_proc_fallback(proc_scan::ProcRoot::new(root).unwrap());
    apply(&mut s, &chdir(4242, 4242, 0, "sub"));
    assert_eq!(s.counters.n_proc_lookups, 1);
    assert_eq!(cwd(&s, 4242), b"/home/user", "/proc read after the chdir");
    apply(&mut s, &chdir(4242, 4242, 0, "sub"));
    assert_eq!(cwd(&s, 4242), b"/home/user/sub");
}
