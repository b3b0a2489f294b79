//! Culprits that see every syscall (issue 20): a process making only
//! untraced syscalls tops the process list while it runs, with an estimated
//! rate within the sampling error (metrics::culprits) of the rate it measured
//! itself; an idle twin does not. Needs root: loads the probe.

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

mod common;
use common::wait_for_snapshots;
use common::{field, fork_children, pipe, probe_lock, snapshots, spawn_agent, term, tmp};
use kestrel::capture::CALLS_SAMPLE_PERIOD;

/// How long the storm runs, and the agent's interval.
const STORM: Duration = Duration::from_secs(3);
const INTERVAL_NS: u64 = 500_000_000;

fn realtime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: fills ts; async-signal-safe (the forked child calls it).
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// In a forked child: getpid in a tight loop for STORM, then its exact
/// count and its start and end times (realtime ns) into `w`, as 3 u64s.
/// Raw syscalls and no allocation only (the harness is multi-threaded).
fn storm(w: &OwnedFd) {
    let start = realtime_ns();
    let end_by = start + STORM.as_nanos() as u64;
    let mut n: u64 = 0;
    loop {
        for _ in 0..16_384 {
            // SAFETY: no arguments; getpid is in no selection (untraced).
            unsafe { libc::syscall(libc::SYS_getpid) };
        }
        n += 16_384;
        if realtime_ns() >= end_by {
            break;
        }
    }
    let mut out = [0u8; 24];
    for (i, v) in [n, start, realtime_ns()].into_iter().enumerate() {
        out[i * 8..i * 8 + 8].copy_from_slice(&v.to_ne_bytes());
    }
    // SAFETY: writes our own buffer to our own pipe.
    unsafe { libc::write(w.as_raw_fd(), out.as_ptr().cast(), out.len()) };
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn untraced_getpid_storm_tops_the_process_list_at_its_rate() {
    let _g = probe_lock();
    let out = tmp("culprits-untraced.json");
    let mut agent = spawn_agent(&out, &["--interval", "500ms", "--culprit-top-procs", "32"]);
    wait_for_snapshots(&out, 2, Duration::from_secs(20));

    // The benign twin: sleeps through the storm (one syscall).
    // SAFETY: the child only sleeps and _exits.
    let twin = unsafe { libc::fork() };
    assert!(twin >= 0, "fork");
    if twin == 0 {
        let ts = libc::timespec {
            tv_sec: STORM.as_secs() as i64 + 2,
            tv_nsec: 0,
        };
        // SAFETY: async-signal-safe calls only.
        unsafe {
            libc::nanosleep(&ts, std::ptr::null_mut());
            libc::_exit(0);
        }
    }
    let (r, w) = pipe();
    let pid = fork_children(1, || storm(&w))[0];
    drop(w);
    let mut buf = [0u8; 24];
    // SAFETY: reads into our own buffer from our own pipe.
    let got = unsafe { libc::read(r.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(got, 24, "the storm reports its count");
    let word = |i: usize| u64::from_ne_bytes(buf[i * 8..i * 8 + 8].try_into().unwrap());
    let (calls, start, end) = (word(0), word(1), word(2));
    let n = snapshots(&out).len();
    wait_for_snapshots(&out, n + 2, Duration::from_secs(20));
    assert!(term(&mut agent).success());
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(twin, std::ptr::null_mut(), 0) };
    let snaps = snapshots(&out);
    let _ = std::fs::remove_file(&out);

    let p = u64::from(CALLS_SAMPLE_PERIOD);
    let true_rate = calls as f64 * 1e9 / (end - start) as f64;
    let mut estimated = 0u64;
    let mut topped_inside = 0;
    let mut prev_time = 0u64;
    let mut rates = Vec::new();
    for s in &snaps {
        let f = &s["output_fields"];
        let time = field(s, "evt.time");
        let procs = f["kestrel.top_procs"].as_array().expect("top_procs");
        assert!(
            procs.first().is_none_or(|p| p["pid"] != twin),
            "the idle twin never tops: {procs:?}"
        );
        // Snapshots whose whole interval lies inside the storm.
        let inside = prev_time >= start && time <= end && prev_time > 0;
        if let Some((i, e)) = procs.iter().enumerate().find(|(_, e)| e["pid"] == pid) {
            estimated += e["syscalls"].as_u64().unwrap();
            if inside {
                assert_eq!(i, 0, "the storm tops its interval: {procs:?}");
                topped_inside += 1;
                rates.push(e["syscalls_per_sec"].as_u64().unwrap());
            }
        } else {
            assert!(!inside, "the storm is listed in its interval: {procs:?}");
        }
        prev_time = time;
    }
    assert!(
        topped_inside >= 2,
        "at least two whole intervals inside a {STORM:?} storm at {INTERVAL_NS} ns"
    );
    // The total: binomial bound, 1/sqrt(samples) relative (3 sigma), plus a
    // gap per CPU at each end of the storm and its few other syscalls.
    let samples = calls / p;
    let sigma = p as f64 * (samples as f64).sqrt();
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get()) as f64;
    let slack = 3.0 * sigma + 2.0 * cpus * 1.5 * p as f64 + 64.0;
    let err = estimated as f64 - calls as f64;
    eprintln!(
        "storm: {calls} getpid in {:.3} s ({true_rate:.0}/s), estimated {estimated} \
         ({:+.3} %, bound +-{slack:.0} = {:.3} %), per-interval rates {rates:?}",
        (end - start) as f64 / 1e9,
        100.0 * err / calls as f64,
        100.0 * slack / calls as f64
    );
    assert!(
        err.abs() <= slack,
        "estimated {estimated} vs exact {calls}: off by {err}, bound {slack}"
    );
    // Each whole interval's rate: its own 3 sigma, plus scheduling slack
    // (the storm shares 2 CPUs with the agent and other work, so its rate
    // within one interval differs from its mean): 25 %.
    for r in rates {
        let per_interval = true_rate * INTERVAL_NS as f64 / 1e9;
        let sigma = (p as f64 * per_interval).sqrt() * 1e9 / INTERVAL_NS as f64;
        let bound = 3.0 * sigma + 0.25 * true_rate;
        assert!(
            (r as f64 - true_rate).abs() <= bound,
            "interval rate {r}/s vs the storm's {true_rate:.0}/s (bound {bound:.0})"
        );
    }
}
