//! The ring consumer (capture/ring.rs) maps the data area once and copies
//! a record that wraps past its end. A small ring makes wraps frequent: a
//! child's open+close pairs must all be accounted for, exactly (arrived, or
//! dropped and counted against the child when the host is busy), and none
//! may arrive cut (a decode error).

use std::time::Duration;

mod common;
use common::{
    field, fork_children, probe_lock, snapshots, spawn_agent, term, tmp, wait_for_snapshots,
};

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn records_that_wrap_the_ring_arrive_whole() {
    wraps(&[]);
}

/// The perf path's reader (capture/perf.rs) copies a wrapped record too:
/// 32 KB split over the CPUs wraps each CPU's buffer more often still.
#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn records_that_wrap_a_perf_buffer_arrive_whole() {
    wraps(&["--event-buffer", "perf"]);
}

fn wraps(buffer: &[&str]) {
    let _g = probe_lock();
    const OPENS: usize = 4_000;
    let out = tmp("ring-wrap.json");
    // Path lengths vary so records end at every 8-byte offset of the ring.
    let files: Vec<String> = (0..7)
        .map(|i| {
            let f = tmp(&format!("ring-wrap-{}", "x".repeat(1 + 9 * i)));
            std::fs::write(&f, b"x").unwrap();
            f
        })
        .collect();
    let mut agent = spawn_agent(
        &out,
        &[
            buffer,
            &[
                "--interval",
                "200ms",
                "--culprit-top-procs",
                "32",
                "--culprit-capacity",
                "4096",
                "--ring-buffer-size",
                "32K",
                // The child's own syscalls, and few of the rest of the machine's.
                "--syscalls",
                "open,openat,close,clone,clone3",
            ],
        ]
        .concat(),
    );
    wait_for_snapshots(&out, 2, Duration::from_secs(20));
    let paths: Vec<std::ffi::CString> = files
        .iter()
        .map(|f| std::ffi::CString::new(f.as_str()).unwrap())
        .collect();
    let pid = fork_children(1, || {
        for i in 0..OPENS {
            let p = &paths[i % paths.len()];
            // SAFETY: open of a live C string and close of its fd, in the child.
            let fd = unsafe { libc::open(p.as_ptr(), libc::O_RDONLY) };
            // SAFETY: as above.
            unsafe { libc::close(fd) };
            if i % 4 == 3 {
                // A 32 KB ring holds ~100 records: give the agent time to
                // drain so the test sees wraps, not drops.
                std::thread::sleep(Duration::from_micros(300));
            }
        }
    })[0];
    let n = snapshots(&out).len();
    wait_for_snapshots(&out, n + 2, Duration::from_secs(20));
    assert!(term(&mut agent).success());
    let snaps = snapshots(&out);
    let _ = std::fs::remove_file(&out);
    for f in &files {
        let _ = std::fs::remove_file(f);
    }
    let last = snaps.last().unwrap();
    assert_eq!(field(last, "kestrel.n_decode_errors"), 0, "no record cut");
    let child = |k: &str| -> u64 {
        snaps
            .iter()
            .flat_map(|s| s["output_fields"]["kestrel.top_procs"].as_array().unwrap())
            .filter(|p| p["pid"] == pid)
            .map(|p| p[k].as_u64().unwrap())
            .sum()
    };
    let (evts, drops) = (child("evts"), child("drops"));
    // Clone child side + OPENS opens + OPENS closes + exit.
    assert_eq!(
        (evts + drops) as usize,
        2 * OPENS + 2,
        "the child's records, exactly: {evts} arrived, {drops} dropped"
    );
    assert!(evts as usize > OPENS, "most arrived: {evts}");
    // 4,000 opens of ~300-byte records through 32 KB: the ring wrapped
    // dozens of times.
    assert!(field(last, "scap.n_evts") >= 2 * OPENS as u64);
}
