//! Per-CPU staging of small records (bpf/stage.h), on the real probe: a
//! thread's records stay in order when it moves between CPUs, and a task
//! that spins after its call cannot hold its record back.

use std::mem::MaybeUninit;
use std::time::{Duration, Instant};

use kestrel::capture::record::{decode, Record};
use kestrel::capture::skel::types::kestrel_flags;
use kestrel::capture::source::Records;
use kestrel::capture::syscalls::Selection;
use kestrel::capture::{Probe, ProbeConfig};

mod common;
use common::{capture, probe_lock, skip, tmp, unstaged};

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

/// The worker's opens and closes as the consumer sees them: (open?, nr,
/// flags without KF_CLOSE_FOLLOWS, ret, fd or path length), an fd the open
/// made as 0 (two captures' fds differ: the probe holds some); and how many
/// opens came with a close tail.
type Call = (bool, i16, u16, i64, i64);
fn file_calls(raw: &[Vec<u8>], tid: u32, path: &str) -> (Vec<Call>, usize) {
    let follows = kestrel_flags::KF_CLOSE_FOLLOWS.0 as u16;
    let (mut tails, mut made) = (0, -1);
    let calls = raw
        .iter()
        .filter_map(|r| match decode(r).unwrap() {
            // A failed open carries no path (no rules loaded).
            Record::Open { hdr, path: p, .. }
                if hdr.tid == tid && (p == path.as_bytes() || p.is_empty()) =>
            {
                tails += usize::from(hdr.flags & follows != 0);
                made = hdr.ret;
                let ret = if hdr.ret >= 0 { 0 } else { hdr.ret };
                Some((true, hdr.nr, hdr.flags & !follows, ret, p.len() as i64))
            }
            Record::Close { hdr, fd } if hdr.tid == tid => {
                let fd = if fd >= 0 && fd == made { 0 } else { fd };
                Some((false, hdr.nr, hdr.flags, hdr.ret, fd))
            }
            _ => None,
        })
        .collect();
    (calls, tails)
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
fn a_close_sent_as_a_tail_reads_as_the_record_sent_alone() {
    let _g = probe_lock();
    const ROUNDS: usize = 500;
    let path = tmp("stage-tail");
    std::fs::write(&path, b"x").unwrap();
    let cpath = std::ffi::CString::new(path.clone()).unwrap();
    let missing = tmp("stage-tail-missing");
    let _ = std::fs::remove_file(&missing);
    let missing = std::ffi::CString::new(missing).unwrap();
    let run = |cfg: ProbeConfig| {
        let mut worker = 0;
        let (raw, counters) = capture(cfg, true, || {
            worker = rustix::thread::gettid().as_raw_nonzero().get() as u32;
            pin(0);
            for i in 0..ROUNDS {
                // SAFETY: a NUL-terminated path; the fd is closed below.
                let fd = unsafe { libc::open(cpath.as_ptr(), libc::O_RDONLY) };
                assert!(fd >= 0);
                // SAFETY: closing the fd opened above.
                unsafe { libc::close(fd) };
                if i % 10 == 0 {
                    // A failed open (-ENOENT), closed as the kernel answered
                    // it (a tail), then again: that open has its tail, so
                    // the second close goes whole. No real fd is touched.
                    // SAFETY: a NUL-terminated path; closes of -2 fail.
                    unsafe {
                        assert!(libc::open(missing.as_ptr(), libc::O_RDONLY) < 0);
                        libc::close(-libc::ENOENT);
                        libc::close(-libc::ENOENT);
                    }
                }
            }
        });
        assert_eq!(counters.n_drops(), 0, "no record dropped");
        file_calls(&raw, worker, &path)
    };
    let (staged, tails) = run(opens_and_closes());
    let (alone, none) = run(unstaged(opens_and_closes()));
    let _ = std::fs::remove_file(&path);
    const OPENS: usize = ROUNDS + ROUNDS / 10;
    eprintln!("{tails} of {OPENS} opens had their close sent as a tail");
    assert_eq!(none, 0, "records sent alone carry no tail");
    // Only a jiffy's end or a full stage between an open and its close
    // sends the close whole; pinned to one CPU that is a few rounds.
    assert!(tails > OPENS / 2, "{tails} of {OPENS} opens had a tail");
    assert_eq!(staged.len(), ROUNDS * 2 + ROUNDS / 10 * 3, "every call");
    assert_eq!(alone.len(), staged.len());
    let differ = staged.iter().zip(&alone).position(|(a, b)| a != b);
    assert_eq!(differ, None, "the same calls, field for field");
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
