//! Live tests: the real probe on this machine's kernel, watching syscalls
//! this test makes with known counts. They need root (CAP_BPF + CAP_PERFMON);
//! the tests are #[ignore]d ("needs root") and scripts/test.sh runs them.

use std::collections::HashSet;

use kestrel::capture::btf::{AttachMode, KERNEL_BTF};
use kestrel::capture::record::{decode, Record};
use kestrel::capture::syscalls::Selection;
use kestrel::capture::ProbeConfig;
use kestrel::state::State;

mod common;
use common::{apply_where, capture, open_close_n, probe_lock, tiny_ring, tmp, unbatched};

/// Owned copy of a record's interesting parts, so tests can inspect them
/// after the ring buffer callback returns.
#[derive(Debug, Clone)]
struct Seen {
    kind: &'static str,
    tid: u32,
    pid: u32,
    ret: i64,
    path: Vec<u8>,
}

fn seen(rec: &Record<'_>) -> Seen {
    let h = rec.hdr();
    let (kind, path) = match rec {
        Record::Clone {
            child_side: true, ..
        } => ("clone_child", &[][..]),
        Record::Clone { .. } => ("clone", &[][..]),
        Record::Exec { path, .. } => ("exec", *path),
        Record::ProcExit { .. } => ("exit", &[][..]),
        Record::Open { path, .. } => ("open", *path),
        Record::Close { .. } => ("close", &[][..]),
        _ => ("other", &[][..]),
    };
    Seen {
        kind,
        tid: h.tid,
        pid: h.pid,
        ret: h.ret,
        path: path.to_vec(),
    }
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn every_fork_exec_and_open_of_this_tree_is_seen_exactly() {
    exact_tree(AttachMode::TpBtf, None);
}

/// The 5.4–5.7 path forced here: per-CPU perf buffers, merged by time.
#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn perf_buffer_sees_the_same_tree_exactly() {
    exact_tree_with(AttachMode::TpBtf, None, common::perf);
}

/// Every record alone through the ring (32-bit ARM's path): built in the
/// scratch space and copied out.
#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn unstaged_ring_sees_the_same_tree_exactly() {
    exact_tree_with(AttachMode::TpBtf, None, common::unstaged);
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn raw_tp_sees_the_same_tree_exactly() {
    exact_tree(AttachMode::RawTp, None);
}

/// CO-RE against a file instead of the running kernel: the kernel's own BTF
/// read as a file, then the minimal BTF bpftool cuts from it for this probe.
#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn raw_tp_with_external_full_and_minimal_btf_sees_the_tree_exactly() {
    exact_tree(AttachMode::RawTp, Some(KERNEL_BTF.into()));
    let obj = tmp("probe.bpf.o");
    let min = tmp("min.btf");
    std::fs::write(&obj, kestrel::capture::probe_object()).unwrap();
    let st = std::process::Command::new("bpftool")
        .args(["gen", "min_core_btf", KERNEL_BTF, &min, &obj])
        .status()
        .expect("bpftool (Debian's bpftool package; scripts/test.sh installs it)");
    assert!(st.success(), "bpftool gen min_core_btf failed");
    let size = std::fs::metadata(&min).unwrap().len();
    assert!(size > 0 && size < 16 * 1024, "minimal BTF is {size} bytes");
    exact_tree(AttachMode::RawTp, Some(min.clone().into()));
    let _ = std::fs::remove_file(&obj);
    let _ = std::fs::remove_file(&min);
}

fn exact_tree(attach: AttachMode, btf: Option<std::path::PathBuf>) {
    exact_tree_with(attach, btf, |c| c);
}

fn exact_tree_with(
    attach: AttachMode,
    btf: Option<std::path::PathBuf>,
    buffer: fn(ProbeConfig) -> ProbeConfig,
) {
    let _g = probe_lock();
    const FORKS: usize = 25;
    const EXECS: usize = 15;
    const OPENS: usize = 400;
    let path = tmp("live");
    std::fs::write(&path, b"x").unwrap();
    let me = std::process::id();
    let mut fork_children = HashSet::new();
    let mut exec_children = HashSet::new();
    let mut worker = 0;
    let (raw, counters) = capture(
        buffer(ProbeConfig {
            attach,
            btf,
            ..unbatched()
        }),
        true,
        || {
            worker = rustix::thread::gettid().as_raw_nonzero().get() as u32;
            for _ in 0..FORKS {
                // SAFETY: the child only calls the async-signal-safe _exit.
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    // SAFETY: the forked child ends at once.
                    unsafe { libc::_exit(0) };
                }
                assert!(pid > 0);
                let mut st = 0;
                // SAFETY: reaping our own child.
                unsafe { libc::waitpid(pid, &mut st, 0) };
                fork_children.insert(pid as u32);
            }
            for _ in 0..EXECS {
                let mut c = std::process::Command::new("/bin/true").spawn().unwrap();
                exec_children.insert(c.id());
                assert!(c.wait().unwrap().success());
            }
            for _ in 0..OPENS {
                drop(std::fs::File::open(&path).unwrap());
            }
        },
    );
    let _ = std::fs::remove_file(&path);

    let mut delivered = 0u64;
    let mut recs = Vec::new();
    for r in &raw {
        delivered += 1;
        let rec = decode(r).expect("every live record decodes");
        recs.push(seen(&rec));
    }
    let children: HashSet<u32> = fork_children.union(&exec_children).copied().collect();
    let count = |f: &dyn Fn(&Seen) -> bool| recs.iter().filter(|s| f(s)).count();

    assert_eq!(
        count(&|s| s.kind == "clone" && s.pid == me && fork_children.contains(&(s.ret as u32))),
        FORKS,
        "parent side of every fork"
    );
    assert_eq!(
        count(&|s| s.kind == "clone_child" && children.contains(&s.pid)),
        FORKS + EXECS,
        "child side of every fork and spawn"
    );
    assert_eq!(
        count(&|s| s.kind == "exec" && exec_children.contains(&s.pid) && s.path == b"/bin/true"),
        EXECS,
        "every exec of /bin/true"
    );
    assert_eq!(
        count(&|s| s.kind == "exit" && children.contains(&s.tid)),
        FORKS + EXECS,
        "every child exit"
    );
    let opens: Vec<&Seen> = recs
        .iter()
        .filter(|s| s.kind == "open" && s.pid == me && s.path == path.as_bytes())
        .collect();
    assert_eq!(opens.len(), OPENS, "every open of the known file");
    assert!(opens.iter().all(|s| s.ret >= 0));
    assert_eq!(counters.n_drops(), 0, "no drops at this rate");
    assert_eq!(
        counters.n_evts,
        delivered + counters.n_drops(),
        "n_evts = delivered + dropped"
    );

    // The same records for this tree (the worker thread and its children;
    // the test harness's own threads come and go too), through the state tables.
    // The worker thread started after the probe: its clone record adds it.
    let mut state = State::new(4096, 4096, u32::MAX, false);
    for r in &raw {
        let rec = decode(r).unwrap();
        let h = rec.hdr();
        let worker_exit = matches!(rec, Record::ProcExit { .. }) && h.tid == worker;
        if (h.tid == worker && !worker_exit) || children.contains(&h.pid) {
            state.apply(&rec);
        }
    }
    let c = state.counters;
    assert_eq!(
        c.n_added_threads as usize,
        FORKS + EXECS + 1,
        "+1: the worker, from its own clone record"
    );
    assert_eq!(c.n_removed_threads as usize, FORKS + EXECS);
    assert_eq!(
        state.n_fds() as u64,
        c.n_added_fds + c.n_inherited_fds - c.n_removed_fds - c.n_released_fds,
        "every fd added here was removed, released or is still open"
    );

    // The worker's own fd traffic is known exactly: OPENS opens, OPENS closes
    // (the dynamic loader of /bin/true opens files in the children, not here).
    let mut worker_only = State::new(64, 64, u32::MAX, false);
    for r in &raw {
        let rec = decode(r).unwrap();
        if rec.hdr().tid == worker && !matches!(rec, Record::ProcExit { .. }) {
            worker_only.apply(&rec);
        }
    }
    let w = worker_only.counters;
    assert_eq!(w.n_added_fds as usize, OPENS, "worker fds added");
    assert_eq!(w.n_removed_fds as usize, OPENS, "worker fds removed");
    assert_eq!(worker_only.n_fds(), 0);
}

/// Puts this process's threads that appear in `raw` into the table, as the
/// agent's /proc seeding would, without counting them as adds.
fn seed_own_threads(state: &mut State, raw: &[Vec<u8>], me: u32) {
    for r in raw {
        let h = *decode(r).unwrap().hdr();
        if h.pid == me && state.thread(h.tid).is_none() {
            state.seed_thread(kestrel::state::Thread::new(h.tid, me));
        }
    }
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn tiny_ring_buffer_counts_every_drop_in_its_category() {
    tiny_buffer_drops(|c| c);
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn tiny_unstaged_ring_counts_every_drop_in_its_category() {
    tiny_buffer_drops(common::unstaged);
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn tiny_perf_buffer_counts_every_drop_in_its_category() {
    tiny_buffer_drops(common::perf);
}

fn tiny_buffer_drops(buffer: fn(ProbeConfig) -> ProbeConfig) {
    let _g = probe_lock();
    let path = tmp("burst");
    let (raw, c) = capture(buffer(tiny_ring("openat", false)), false, || {
        open_close_n(&path, 5000)
    });
    let _ = std::fs::remove_file(&path);
    let open_cat = kestrel::capture::skel::types::kestrel_category::KC_OPEN.0 as usize;
    assert!(c.n_drops_buffer_total > 0, "a 4 KiB buffer must overflow");
    // sched_proc_exit is always attached, so other processes' exits may drop too.
    assert!(c.n_drops_buffer[open_cat][1] > 0, "open_exit drops counted");
    let per_cat: u64 = c.n_drops_buffer.iter().flatten().sum();
    assert_eq!(per_cat, c.n_drops_buffer_total);
    assert_eq!(c.n_evts, raw.len() as u64 + c.n_drops(), "no silent loss");
    assert!(!raw.is_empty());
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn enter_events_pair_with_exits() {
    let _g = probe_lock();
    let path = tmp("pair");
    let (raw, _) = capture(
        ProbeConfig {
            selection: Selection::parse("openat").unwrap(),
            enter_events: true,
            ..unbatched()
        },
        true,
        || open_close_n(&path, 100),
    );
    let _ = std::fs::remove_file(&path);
    let me = std::process::id();
    let mut state = State::new(64, 64, u32::MAX, true);
    seed_own_threads(&mut state, &raw, me);
    apply_where(&mut state, &raw, |rec| rec.hdr().pid == me);
    assert!(state.counters.n_stored_evts >= 100);
    assert!(state.counters.n_retrieved_evts >= 100);
    assert_eq!(state.counters.n_retrieve_evts_drops, 0);
}
