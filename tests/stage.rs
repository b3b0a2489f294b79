//! Per-CPU staging of small records (bpf/stage.h), on the real probe: a
//! thread's records stay in order when it moves between CPUs, and a task
//! that spins after its call cannot hold its record back.

use std::mem::MaybeUninit;
use std::time::{Duration, Instant};

use kestrel::capture::record::{decode, Record};
use kestrel::capture::source::Records;
use kestrel::capture::syscalls::Selection;
use kestrel::capture::{Probe, ProbeConfig};

mod common;
use common::{capture, probe_lock, skip, tmp};

fn online_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Pins the calling thread to `cpu` (a raw syscall: async-signal-safe).
fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t with one bit set, passed by pointer with
    // its size; 0 is the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = core::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        assert_eq!(
            libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set),
            0,
            "sched_setaffinity"
        );
    }
}

fn opens_and_closes() -> ProbeConfig {
    ProbeConfig {
        selection: Selection::parse("openat,close").unwrap(),
        ..ProbeConfig::default()
    }
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn a_thread_moving_between_cpus_keeps_its_records_in_order() {
    let _g = probe_lock();
    if online_cpus() < 2 && skip("needs 2 CPUs") {
        return;
    }
    const ROUNDS: usize = 300;
    let path = tmp("stage-order");
    std::fs::write(&path, b"x").unwrap();
    let cpath = std::ffi::CString::new(path.clone()).unwrap();
    let mut worker = 0;
    let (raw, counters) = capture(opens_and_closes(), true, || {
        worker = rustix::thread::gettid().as_raw_nonzero().get() as u32;
        for i in 0..ROUNDS {
            // Open on one CPU, close on the other: each move is a task
            // switch, which must send the stage the first record sits in.
            pin(i % 2);
            // SAFETY: a NUL-terminated path; the fd is closed below.
            let fd = unsafe { libc::open(cpath.as_ptr(), libc::O_RDONLY) };
            assert!(fd >= 0);
            pin((i + 1) % 2);
            // SAFETY: closing the fd opened above.
            unsafe { libc::close(fd) };
        }
    });
    let _ = std::fs::remove_file(&path);
    assert_eq!(counters.n_drops(), 0, "no record dropped");
    let mine: Vec<(bool, i64)> = raw
        .iter()
        .filter_map(|r| match decode(r).unwrap() {
            Record::Open { hdr, path: p, .. } if hdr.tid == worker && p == path.as_bytes() => {
                Some((true, hdr.ret))
            }
            Record::Close { hdr, fd } if hdr.tid == worker => Some((false, fd)),
            _ => None,
        })
        .collect();
    // Closes of fds the test harness opened between rounds are not ours;
    // every round is an open, then the close of that fd.
    let mut rounds = 0;
    let mut open_fd = None;
    for (is_open, n) in mine {
        match (is_open, open_fd) {
            (true, None) => open_fd = Some(n),
            (false, Some(fd)) if fd == n => {
                rounds += 1;
                open_fd = None;
            }
            (false, None) => {}
            other => panic!("round {rounds}: out of order: {other:?}"),
        }
    }
    assert_eq!(rounds, ROUNDS, "every open, then its close");
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn a_task_spinning_after_its_call_cannot_hold_its_record_back() {
    let _g = probe_lock();
    if online_cpus() < 2 && skip("needs 2 CPUs") {
        return;
    }
    const SPIN: Duration = Duration::from_millis(1500);
    let path = tmp("stage-spin");
    std::fs::write(&path, b"x").unwrap();
    let cpath = std::ffi::CString::new(path.clone()).unwrap();
    let cfg = opens_and_closes();
    let mut storage = MaybeUninit::uninit();
    let mut probe = Probe::load_detached(&mut storage, &cfg).unwrap_or_else(|e| panic!("{e}"));
    let found = std::cell::Cell::new(false);
    let child = std::cell::Cell::new(0u32);
    let mut source = Records::open(&probe, &cfg, |d: &[u8]| {
        if let Ok(Record::Open { hdr, path: p, .. }) = decode(d) {
            if hdr.pid == child.get() && p == path.as_bytes() {
                found.set(true);
            }
        }
    })
    .unwrap();
    probe.attach_all().unwrap_or_else(|e| panic!("{e}"));
    pin(0);
    // SAFETY: the child makes only raw syscalls and reads the vDSO clock,
    // then _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        pin(1);
        // SAFETY: a NUL-terminated path; the child exits holding the fd.
        unsafe { libc::open(cpath.as_ptr(), libc::O_RDONLY) };
        let t0 = Instant::now();
        while t0.elapsed() < SPIN {
            core::hint::spin_loop();
        }
        // SAFETY: the child ends here.
        unsafe { libc::_exit(0) };
    }
    assert!(pid > 0, "fork");
    child.set(pid as u32);
    let start = Instant::now();
    let mut seen_while_spinning = None;
    while start.elapsed() < SPIN * 3 {
        source.consume();
        let mut st = 0;
        // SAFETY: polling our own child.
        let done = unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) } == pid;
        if found.get() {
            seen_while_spinning = Some(!done);
            break;
        }
        if done {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let waited = start.elapsed();
    let mut st = 0;
    // SAFETY: reaping our own child (ECHILD if reaped above).
    unsafe { libc::waitpid(pid, &mut st, 0) };
    probe.detach();
    while source.consume() > 0 {}
    drop(source);
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        seen_while_spinning,
        Some(true),
        "the open reached the ring while its task still spun (after {waited:?}, spin {SPIN:?})"
    );
}
