//! Output paths written as root beyond `file:`: `prometheus-textfile:` (its
//! directory, temporary and rename, checked at start like `file:`), and an
//! output directory deleted and made again before a SIGHUP. The bad-input
//! ones need no probe and run anywhere.

use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::Duration;

mod common;
use common::paths::{as_nobody, assert_bad_input, fresh_dir, nobodys_dir, run};
use common::SpawnGuarded;
use common::{agent, bin, probe_lock, signal, spawn_agent, tmp, wait_for_lines};

/// `prometheus-textfile:` is written as root into a directory another user
/// may own: `file:`'s path rules, checked at start (one line, exit 2). It
/// wrote through a symlinked directory, and started with exit 0 on a
/// missing directory, a directory or `/`, then failed every interval.
#[test]
fn textfile_paths_are_checked_at_start_with_the_file_rules() {
    let d = fresh_dir("tfpaths");
    std::fs::create_dir(format!("{d}/real")).unwrap();
    std::os::unix::fs::symlink(format!("{d}/real"), format!("{d}/linkdir")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", format!("{d}/real/l.prom")).unwrap();
    std::fs::create_dir(format!("{d}/real/dir.prom")).unwrap();
    let out = format!("{d}/out.json");
    let textfile = |path: &str| {
        // --duration: a start that is wrongly accepted ends by itself.
        run(&[
            "run",
            "--duration",
            "1ms",
            "--output",
            &format!("file:{out}"),
            "--output",
            &format!("prometheus-textfile:{path}"),
        ])
    };
    for (path, want) in [
        (format!("{d}/linkdir/k.prom"), "symlink"),
        (format!("{d}/nodir/k.prom"), "does not exist"),
        (format!("{d}/real/dir.prom"), "is a directory"),
        (format!("{d}/real/l.prom"), "is a symlink"),
        ("/".to_string(), "not a file path"),
        (format!("{d}/real/../real/k.prom"), "'..'"),
    ] {
        assert_bad_input(&textfile(&path), want);
        assert!(
            !std::path::Path::new(&out).exists(),
            "{path}: nothing created"
        );
    }
    let o = Command::new(bin())
        .args(["run", "--duration", "1ms", "--output"])
        .arg(format!("prometheus-textfile:{d}/linkdir/k.prom"))
        .env("KESTREL_NO_OPENAT2", "1")
        .output()
        .unwrap();
    assert_bad_input(&o, "symlink");
    assert_eq!(std::fs::read_dir(format!("{d}/real")).unwrap().count(), 2);
}

/// Waits until the file at `path` is a new one (each textfile write renames
/// a fresh file over it).
fn wait_for_new_inode(path: &str, old: u64) {
    let seen = common::wait_until(Duration::from_secs(30), || {
        std::fs::metadata(path).is_ok_and(|m| m.ino() != old)
    });
    assert!(seen.is_some(), "{path} not rewritten");
}

/// The textfile collector's directory owner swaps it for a symlink to a
/// root-owned directory after start: root's create-and-rename stays in the
/// directory taken at start.
#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn textfile_writes_never_follow_a_swapped_directory() {
    let _g = probe_lock();
    let d = fresh_dir("tfswap");
    std::fs::create_dir(format!("{d}/victim")).unwrap();
    nobodys_dir(&format!("{d}/u"));
    // Writable by the agent's uid: it keeps no CAP_DAC_OVERRIDE.
    as_nobody(&format!("mkdir -m 0777 {d}/u/collector"));
    let prom = format!("{d}/u/collector/k.prom");
    let side = format!("{d}/side.json");
    let agent = spawn_agent(
        &side,
        &[
            "--interval",
            "100ms",
            "--output",
            &format!("prometheus-textfile:{prom}"),
        ],
    );
    wait_for_lines(&side, 1, Duration::from_secs(30));
    // The snapshot's line is written just before the textfile.
    let written = common::wait_until(Duration::from_secs(10), || {
        std::path::Path::new(&prom).exists()
    });
    assert!(written.is_some(), "written at start");
    as_nobody(&format!(
        "mv {d}/u/collector {d}/u/old && ln -s {d}/victim {d}/u/collector"
    ));
    let moved = format!("{d}/u/old/k.prom");
    let ino = std::fs::metadata(&moved).unwrap().ino();
    wait_for_new_inode(&moved, ino);
    signal(&agent.0, libc::SIGHUP);
    let ino = std::fs::metadata(&moved).unwrap().ino();
    wait_for_new_inode(&moved, ino);
    assert!(agent.term().success());
    assert_eq!(
        std::fs::read_dir(format!("{d}/victim")).unwrap().count(),
        0,
        "nothing written through the symlink"
    );
    let names: Vec<_> = std::fs::read_dir(format!("{d}/u/old"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["k.prom"], "no temporary left");
}

/// logrotate-style cleanups that delete the output directory and make it
/// again: SIGHUP looks the path up again (the old directory is gone, so
/// nothing can be redirected through it), for files and textfiles alike.
#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn sighup_follows_a_deleted_and_recreated_output_directory() {
    let _g = probe_lock();
    let d = fresh_dir("recreated");
    let logs = format!("{d}/logs");
    std::fs::create_dir(&logs).unwrap();
    let (out, prom) = (format!("{logs}/out.json"), format!("{logs}/k.prom"));
    let err = tmp("recreated.err");
    let agent = agent(&out, &["--interval", "100ms"])
        .args(["--output", &format!("prometheus-textfile:{prom}")])
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn_guarded();
    // Start is over once the textfile is written (its failure fails the
    // start): the snapshot's line comes just before it.
    wait_for_lines(&out, 1, Duration::from_secs(30));
    let started = common::wait_until(Duration::from_secs(10), || {
        std::path::Path::new(&prom).exists()
    });
    assert!(started.is_some(), "textfile written at start");
    std::fs::remove_dir_all(&logs).unwrap();
    std::fs::create_dir(&logs).unwrap();
    signal(&agent.0, libc::SIGHUP);
    wait_for_lines(&out, 2, Duration::from_secs(30));
    let seen = common::wait_until(Duration::from_secs(30), || {
        std::path::Path::new(&prom).exists()
    });
    assert!(agent.term().success());
    assert!(seen.is_some(), "textfile written in the new directory");
    let text = std::fs::read_to_string(&err).unwrap();
    assert!(!text.contains("cannot open output file"), "{text}");
}

/// A textfile directory the agent cannot write once it keeps only CAP_BPF
/// (another user's 0755 directory): the first write is at start, so the
/// start fails with one line and removes what it created.
#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn an_unwritable_textfile_directory_fails_the_start() {
    let _g = probe_lock();
    let d = fresh_dir("tfperm");
    nobodys_dir(&format!("{d}/collector"));
    let out = format!("{d}/out.json");
    let o = Command::new(bin())
        .args([
            "run",
            "--duration",
            "1ms",
            "--output",
            &format!("file:{out}"),
        ])
        .arg("--output")
        .arg(format!("prometheus-textfile:{d}/collector/k.prom"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.contains("Permission denied") && last.contains("writable by its uid"),
        "{err}"
    );
    assert!(!std::path::Path::new(&out).exists(), "removed again");
    assert_eq!(
        std::fs::read_dir(format!("{d}/collector")).unwrap().count(),
        0
    );
}

/// `kestrel_syscall_calls_total` is a counter: a syscall that topped one
/// interval keeps its series (cumulative calls) after it stops, where it
/// used to vanish with the interval's top list (rate() broke, series churned).
#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn a_syscall_series_stays_after_its_burst() {
    let _g = probe_lock();
    let out = tmp("calls.json");
    let prom = tmp("calls.prom");
    let textfile = format!("prometheus-textfile:{prom}");
    let agent = spawn_agent(&out, &["--interval", "300ms", "--output", &textfile]);
    common::wait_for_snapshots(&out, 1, Duration::from_secs(20));
    let series = "kestrel_syscall_calls_total{abi=\"64\",syscall=\"getppid\"} ";
    let calls = || -> Option<u64> {
        let text = std::fs::read_to_string(&prom).ok()?;
        let line = text.lines().find(|l| l.starts_with(series))?;
        line.rsplit(' ').next()?.parse().ok()
    };
    let t = std::time::Instant::now();
    while t.elapsed() < Duration::from_millis(400) {
        // SAFETY: getppid has no arguments and no effects.
        unsafe { libc::syscall(libc::SYS_getppid) };
    }
    let seen = common::wait_until(Duration::from_secs(10), || calls().is_some());
    assert!(seen.is_some(), "the burst topped an interval");
    let during = calls().unwrap();
    // Three quiet intervals: getppid out of the JSON's interval top, still
    // a series, never smaller.
    let n = common::snapshots(&out).len();
    common::wait_for_snapshots(&out, n + 3, Duration::from_secs(20));
    let last = common::snapshots(&out).pop().unwrap();
    let top = last["output_fields"]["kestrel.top_syscalls"].to_string();
    assert!(!top.contains("\"getppid\""), "quiet now: {top}");
    assert!(calls().is_some_and(|c| c >= during), "series kept");
    assert!(agent.term().success());
}
