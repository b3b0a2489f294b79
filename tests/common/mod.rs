//! Shared by the integration tests that load the real probe.
#![allow(dead_code)]

use std::mem::MaybeUninit;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use kestrel::capture::buffer::EventBuffer;
use kestrel::capture::source::Records;
use kestrel::capture::{KernelCounters, Probe, ProbeConfig};

mod agent;
pub mod paths;
pub mod peers;
pub mod prom;
pub use agent::*;

/// Every probe sees every workload on the machine: one such test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Tests that load the probe are `#[ignore]`d ("needs root") so a run
/// without privileges shows them as ignored, never as passed; scripts/test.sh
/// runs them with --include-ignored. Built with CI=true (build.rs sets
/// `kestrel_ci`) they are not ignored at all. Run without root, they fail here.
pub fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test loads the probe: run it as root (it is #[ignore]d otherwise)"
    );
}

/// A test that cannot run here (`why`) returns early and says so; under
/// CI=true it fails instead: CI never passes a test that did not run.
#[must_use]
pub fn skip(why: &str) -> bool {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true: cannot skip: {why}"
    );
    eprintln!("skipped: {why}");
    true
}

/// Every test that loads the probe starts here: root required, one at a time.
pub fn probe_lock() -> MutexGuard<'static, ()> {
    let g = serial();
    require_root();
    g
}

/// The complete lines of a file another process is appending to: a line
/// still being written (no newline yet) is left for the next read.
pub fn written_lines(path: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let done = text.rfind('\n').map_or(0, |i| i + 1);
    text[..done].lines().map(str::to_string).collect()
}

/// The complete lines of an agent's output file, parsed: snapshots and
/// alerts alike (every line must be one JSON object).
pub fn json_lines(path: &str) -> Vec<serde_json::Value> {
    written_lines(path)
        .iter()
        .map(|l| serde_json::from_str(l).expect("every line is one JSON object"))
        .collect()
}

/// A fresh path unique to this user and test process
/// (kestrel::testing::scratch), as a string.
pub fn tmp(name: &str) -> String {
    kestrel::testing::scratch(name)
        .to_string_lossy()
        .into_owned()
}

/// Creates `path`, then opens and closes it `n` times (one openat and one
/// close each).
pub fn open_close_n(path: &str, n: usize) {
    std::fs::write(path, b"x").unwrap();
    for _ in 0..n {
        drop(std::fs::File::open(path).unwrap());
    }
}

/// Loads the probe, runs `work`, detaches, drains; returns the raw records
/// (as bytes) and the final kernel counters. The records come through the
/// agent's own reader (capture::source): the ring, or on the perf path
/// every CPU's buffer merged oldest first.
pub fn capture(
    cfg: ProbeConfig,
    consume_during: bool,
    work: impl FnOnce() + Send,
) -> (Vec<Vec<u8>>, KernelCounters) {
    let mut storage = MaybeUninit::uninit();
    let mut probe = Probe::load_detached(&mut storage, &cfg).unwrap_or_else(|e| panic!("{e}"));
    let records = std::cell::RefCell::new(Vec::new());
    let mut source = Records::open(&probe, &cfg, |d: &[u8]| {
        records.borrow_mut().push(d.to_vec());
    })
    .unwrap();
    probe.attach_all().unwrap_or_else(|e| panic!("{e}"));
    if consume_during {
        std::thread::scope(|s| {
            let h = s.spawn(work);
            while !h.is_finished() {
                source.consume();
                std::thread::sleep(Duration::from_millis(5));
            }
        });
    } else {
        work();
    }
    probe.detach();
    while source.consume() > 0 {}
    let counters = probe.counters();
    drop(source);
    (records.into_inner(), counters)
}

/// `cfg` with records forced through per-CPU perf buffers (the 5.4-5.7 path).
pub fn perf(cfg: ProbeConfig) -> ProbeConfig {
    ProbeConfig {
        event_buffer: EventBuffer::Perf,
        ..cfg
    }
}

/// `cfg` with every record sent alone (`--stage-records false`, the path
/// 32-bit ARM kernels take).
pub fn unstaged(cfg: ProbeConfig) -> ProbeConfig {
    ProbeConfig {
        stage_records: false,
        ..cfg
    }
}

/// Forks `n` children one after another; each runs `child` (which must only
/// make async-signal-safe calls: the test harness is multi-threaded) and
/// exits 0. Each is reaped before the next starts; returns their pids.
pub fn fork_children(n: usize, child: impl Fn()) -> Vec<u32> {
    (0..n)
        .map(|_| {
            // SAFETY: the child runs `child` (async-signal-safe by contract)
            // and _exit.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork");
            if pid == 0 {
                child();
                // SAFETY: the child ends here, without running the parent's atexit.
                unsafe { libc::_exit(0) };
            }
            let mut st = 0;
            // SAFETY: reaping our own child.
            unsafe { libc::waitpid(pid, &mut st, 0) };
            pid as u32
        })
        .collect()
}

/// `syscalls` traced into a 4 KiB ring nobody drains until the end: it
/// overflows for certain.
pub fn tiny_ring(syscalls: &str, enter_events: bool) -> ProbeConfig {
    ProbeConfig {
        selection: kestrel::capture::syscalls::Selection::parse(syscalls).unwrap(),
        ring_bytes: 4096,
        enter_events,
        wakeup_bytes: u64::MAX,
        ..ProbeConfig::default()
    }
}

/// Every record delivered at once (no batching), these syscalls traced.
pub fn selecting(attach: kestrel::capture::btf::AttachMode, syscalls: &str) -> ProbeConfig {
    ProbeConfig {
        attach,
        selection: kestrel::capture::syscalls::Selection::parse(syscalls).unwrap(),
        ..unbatched()
    }
}

/// Waits for our child `pid`; returns its wait status.
pub fn reap(pid: u32) -> i32 {
    let mut st = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid as i32, &mut st, 0) };
    st
}

/// A thread exit: left out where a test reads the table after its process ended.
pub fn is_exit(r: &kestrel::capture::record::Record<'_>) -> bool {
    matches!(r, kestrel::capture::record::Record::ProcExit { .. })
}

/// Every record delivered at once (no batching), default selection.
pub fn unbatched() -> ProbeConfig {
    ProbeConfig {
        wakeup_bytes: 0,
        ..ProbeConfig::default()
    }
}

/// Applies to `state`, in order, the records that `keep` selects.
pub fn apply_where(
    state: &mut kestrel::state::State,
    raw: &[Vec<u8>],
    keep: impl Fn(&kestrel::capture::record::Record<'_>) -> bool,
) {
    for r in raw {
        let rec = kestrel::capture::record::decode(r).unwrap();
        if keep(&rec) {
            state.apply(&rec);
        }
    }
}
