//! Live tests of the kernel drop buckets and of enter/exit pairing across
//! forks: the real probe, this process's own syscalls, exact expectations.

use std::collections::HashSet;

use kestrel::capture::record::Record;
use kestrel::capture::skel::types::kestrel_category as Cat;
use kestrel::capture::syscalls::Selection;
use kestrel::capture::ProbeConfig;
use kestrel::state::State;

mod common;
use common::{
    apply_where, capture, fork_children, open_close_n, probe_lock, tiny_ring, tmp, unbatched,
};

/// With enter events a full ring drops close enters too; they must land in
/// a bucket (kestrel.n_drops_buffer_close_enter), so the buckets add up to
/// the total exactly.
#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn close_enter_drops_have_a_bucket_and_buckets_sum_to_the_total() {
    let _g = probe_lock();
    let path = tmp("enter-burst");
    let (raw, c) = capture(tiny_ring("openat,close,dup", true), false, || {
        open_close_n(&path, 5000);
        for _ in 0..2000 {
            // SAFETY: dup of stdin and close of the copy.
            let fd = unsafe { libc::dup(0) };
            // SAFETY: closes the copy just made.
            unsafe { libc::close(fd) };
        }
    });
    let _ = std::fs::remove_file(&path);
    let close = Cat::KC_CLOSE.0 as usize;
    let dup = Cat::KC_DUP.0 as usize;
    assert!(c.n_drops_buffer[close][0] > 0, "close enter drops counted");
    assert!(
        c.n_drops_buffer[dup][1] > 0,
        "dup exits in Kestrel's own bucket"
    );
    let dir_file = Cat::KC_DIR_FILE.0 as usize;
    assert_eq!(c.n_drops_buffer[dir_file], [0, 0], "dup is not dir_file");
    let per_cat: u64 = c.n_drops_buffer.iter().flatten().sum();
    assert_eq!(per_cat, c.n_drops_buffer_total);
    assert_eq!(c.n_evts, raw.len() as u64 + c.n_drops());
}

/// x86_64 delivers the child's side of a fork from the child's own sys_exit;
/// it has no enter on the child, so it must not count a retrieve drop.
#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn forks_with_enter_events_pair_without_retrieve_drops() {
    let _g = probe_lock();
    const CHILDREN: usize = 10;
    let me = std::process::id();
    let me_tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
    let mut children = HashSet::new();
    let (raw, c) = capture(
        ProbeConfig {
            selection: Selection::parse("clone,clone3,fork,close").unwrap(),
            enter_events: true,
            ..unbatched()
        },
        false,
        || {
            // SAFETY: close(2) is async-signal-safe.
            children.extend(fork_children(CHILDREN, || unsafe {
                libc::close(1000);
            }));
        },
    );
    assert_eq!(c.n_drops(), 0);
    let mut state = State::new(4096, 4096, u32::MAX, true);
    state.seed_thread(kestrel::state::Thread::new(me_tid, me));
    apply_where(&mut state, &raw, |rec| {
        let h = rec.hdr();
        let mine = h.tid == me_tid && !matches!(rec, Record::ProcExit { .. });
        mine || children.contains(&h.pid)
    });
    let s = state.counters;
    assert_eq!(s.n_added_threads as usize, CHILDREN + 1);
    assert_eq!(s.n_retrieve_evts_drops, 0, "no spurious drop per fork");
    // Each fork in the parent, each child's close, and the loader's own
    // closes on this thread are paired; only the closes that detach the two
    // programs have their enter seen and their exit not.
    assert!(s.n_retrieved_evts as usize >= 2 * CHILDREN);
    assert!(s.n_stored_evts - s.n_retrieved_evts <= 2, "{s:?}");
    assert_eq!(s.n_store_evts_drops, 0);
}

/// The agent's net for a sys_exit attached but never run (start_lines::
/// check_sys_exit): loaded and not attached, it has not run; attached
/// again by reattach, it has.
#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn sys_exit_ran_tells_a_silent_sys_exit_and_reattach_revives_it() {
    let _g = common::probe_lock();
    let mut storage = std::mem::MaybeUninit::uninit();
    let mut probe = kestrel::capture::Probe::load_detached(&mut storage, &ProbeConfig::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(probe.sys_exit_ran(), Some(false), "nothing attached yet");
    probe.reattach(kestrel::capture::Prog::SysExit).unwrap();
    assert_eq!(probe.sys_exit_ran(), Some(true));
    assert_eq!(probe.attached().collect::<Vec<_>>(), ["sys_exit"]);
    let off = ProbeConfig {
        culprits: false,
        ..ProbeConfig::default()
    };
    let mut storage = std::mem::MaybeUninit::uninit();
    let mut probe = kestrel::capture::Probe::load(&mut storage, &off).unwrap();
    assert_eq!(probe.sys_exit_ran(), None, "culprits off: cannot tell");
}

/// Where the kernel has bpf_rdonly_cast (6.2+), x86_64 and arm64 tp_btf read the
/// running task without a helper: the placeholder call is patched into the
/// kfunc call, the verifier takes it, and a selected call teaches the probe
/// where a task's saved registers sit. Elsewhere the probe says it does not.
#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn task_cast_is_patched_in_where_the_kernel_has_the_kfunc() {
    let _g = common::probe_lock();
    let mut storage = std::mem::MaybeUninit::uninit();
    let probe = kestrel::capture::Probe::load(&mut storage, &ProbeConfig::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let arch = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").unwrap();
    let has_kfunc = kallsyms.lines().any(|l| l.ends_with(" bpf_rdonly_cast"));
    let expect =
        arch && probe.attach_path() == kestrel::capture::btf::AttachPath::TpBtf && has_kfunc;
    for _ in 0..3 {
        drop(std::fs::File::open("/etc/hostname"));
    }
    assert_eq!(
        probe.task_cast(),
        expect,
        "kernel has bpf_rdonly_cast: {has_kfunc}"
    );
    // This thread's CPU has made a selected call; the others may have too.
    let cpus = probe.task_cast_cpus();
    if expect {
        assert!(cpus >= 1, "no CPU learned the pt_regs offset");
    } else {
        assert_eq!(cpus, 0);
    }
}
