//! Culprits that see every syscall (issue 20): a process making only
//! untraced syscalls tops the process list while it runs, with an estimated
//! count and rate within the sampling error (metrics::culprits) of what it
//! measured itself; an idle twin does not top. Needs root: loads the probe.

use std::time::Duration;

mod common;
use common::wait_for_snapshots;
use common::{field, fork_children, probe_lock, snapshots, spawn_agent, term, tmp};
use kestrel::capture::CALLS_SAMPLE_PERIOD;

/// How long the storm runs, and the agent's interval.
const STORM: Duration = Duration::from_secs(3);
const INTERVAL: &str = "500ms";
/// getpid calls between two entries of the storm's log.
const CHUNK: u64 = 4_096;
/// Log entries (time, calls so far) the shared page holds.
const LOG: usize = 16_384;

fn realtime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: fills ts; async-signal-safe (the forked child calls it).
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// In a forked child: getpid in a tight loop for STORM, logging (realtime
/// ns, calls so far) every CHUNK calls into `log` (shared with the parent),
/// entry 0 being the entry count. No allocation (the harness is
/// multi-threaded); the clock is the vDSO's.
fn storm(log: &mut [[u64; 2]]) {
    let start = realtime_ns();
    let end_by = start + STORM.as_nanos() as u64;
    let (mut n, mut at) = (0u64, 1usize);
    log[at] = [start, 0];
    loop {
        for _ in 0..CHUNK {
            // SAFETY: no arguments; getpid is in no selection (untraced).
            unsafe { libc::syscall(libc::SYS_getpid) };
        }
        n += CHUNK;
        let now = realtime_ns();
        if at + 1 < log.len() {
            at += 1;
            log[at] = [now, n];
        }
        if now >= end_by {
            break;
        }
    }
    log[0] = [at as u64, 0];
}

/// The storm's calls by realtime `t`, interpolated in its log.
fn calls_at(log: &[[u64; 2]], t: u64) -> f64 {
    let i = log.partition_point(|e| e[0] <= t).clamp(1, log.len() - 1);
    let ([t0, n0], [t1, n1]) = (log[i - 1], log[i]);
    let f = (t.clamp(t0, t1) - t0) as f64 / (t1 - t0).max(1) as f64;
    n0 as f64 + f * (n1 - n0) as f64
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn untraced_getpid_storm_tops_the_process_list_at_its_rate() {
    let _g = probe_lock();
    let out = tmp("culprits-untraced.json");
    let mut agent = spawn_agent(&out, &["--interval", INTERVAL, "--culprit-top-procs", "32"]);
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
    let bytes = LOG * 16;
    // SAFETY: a fresh shared anonymous mapping, unmapped below.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(page, libc::MAP_FAILED);
    let pid = fork_children(1, || {
        // SAFETY: the mapping holds LOG zeroed [u64; 2]; the child writes
        // it and the parent reads it only after reaping the child.
        let log = unsafe { std::slice::from_raw_parts_mut(page.cast::<[u64; 2]>(), LOG) };
        storm(log)
    })[0];
    // SAFETY: as above; the child is reaped.
    let log = unsafe { std::slice::from_raw_parts(page.cast::<[u64; 2]>(), LOG) };
    let log = log[1..=log[0][0] as usize].to_vec();
    // SAFETY: our own mapping, no longer referenced.
    unsafe { libc::munmap(page, bytes) };
    let n = snapshots(&out).len();
    wait_for_snapshots(&out, n + 2, Duration::from_secs(20));
    assert!(term(&mut agent).success());
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(twin, std::ptr::null_mut(), 0) };
    let snaps = snapshots(&out);
    let _ = std::fs::remove_file(&out);

    let p = u64::from(CALLS_SAMPLE_PERIOD) as f64;
    let [start, _] = log[0];
    let [end, calls] = *log.last().unwrap();
    let mean_rate = calls as f64 * 1e9 / (end - start) as f64;
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get()) as f64;
    // The stated error: 3 sigma of binomial sampling at 1/P (sigma of the
    // count: P x sqrt(samples)), a gap per CPU at each end of an interval,
    // and 2 ms of calls for the snapshot's time stamp against its read.
    let bound =
        |count: f64, rate: f64| 3.0 * p * (count / p).sqrt() + 2.0 * cpus * 1.5 * p + 0.002 * rate;
    let (mut estimated, mut inside, mut prev) = (0u64, 0, 0u64);
    let mut report = Vec::new();
    for s in &snaps {
        let time = field(s, "evt.time");
        let procs = s["output_fields"]["kestrel.top_procs"]
            .as_array()
            .expect("top_procs");
        assert!(
            procs.first().is_none_or(|p| p["pid"] != twin),
            "the idle twin never tops: {procs:?}"
        );
        let whole = prev > start && time <= end;
        let entry = procs.iter().position(|e| e["pid"] == pid);
        if let Some(i) = entry {
            estimated += procs[i]["syscalls"].as_u64().unwrap();
        }
        if whole {
            // A whole interval inside the storm: it tops the list, and its
            // count and rate are within the bound of the log's.
            let i = entry.unwrap_or_else(|| panic!("the storm is listed: {procs:?}"));
            assert_eq!(i, 0, "the storm tops its interval: {procs:?}");
            inside += 1;
            let secs = (time - prev) as f64 / 1e9;
            let truth = calls_at(&log, time) - calls_at(&log, prev);
            let rate = truth / secs;
            let got = procs[0]["syscalls"].as_u64().unwrap() as f64;
            let got_rate = procs[0]["syscalls_per_sec"].as_u64().unwrap() as f64;
            let b = bound(truth, rate);
            report.push(format!(
                "{truth:.0} calls ({rate:.0}/s): estimated {got} ({:+.2} %, bound {:.2} %), {got_rate}/s",
                100.0 * (got - truth) / truth,
                100.0 * b / truth
            ));
            assert!(
                (got - truth).abs() <= b,
                "interval: {}",
                report.last().unwrap()
            );
            // The rate is over the agent's own measure of the interval.
            assert!(
                (got_rate - rate).abs() <= b / secs + 0.01 * rate,
                "interval rate: {}",
                report.last().unwrap()
            );
        }
        prev = time;
    }
    eprintln!(
        "storm: {calls} getpid in {:.3} s ({mean_rate:.0}/s), estimated {estimated} ({:+.3} %); whole intervals:\n  {}",
        (end - start) as f64 / 1e9,
        100.0 * (estimated as f64 - calls as f64) / calls as f64,
        report.join("\n  ")
    );
    assert!(
        inside >= 2,
        "two whole {INTERVAL} intervals inside a {STORM:?} storm"
    );
    // Over the whole storm (every snapshot that listed it).
    let err = estimated as f64 - calls as f64;
    let b = bound(calls as f64, mean_rate) + 64.0;
    assert!(
        err.abs() <= b,
        "estimated {estimated} vs exact {calls}: off by {err}, bound {b}"
    );
}
