//! HOST_ROOT, as a container runs the agent: its own /proc shows only its
//! pid namespace, the host's is mounted under HOST_ROOT. Run here under
//! `unshare --mount --pid --fork` with the host's /proc bound at
//! $HOST_ROOT/proc and a fresh procfs on /proc. Root only.

use std::process::Command;

mod common;
use common::{bin, field, probe_lock, snapshots, tmp};

/// Runs the agent in a fresh mount and pid namespace, HOST_ROOT set or
/// not; returns (threads seeded, its stderr, the last snapshot).
fn run_in_namespace(root: &str, host_root: bool) -> (u64, String, serde_json::Value) {
    let out = tmp(if host_root {
        "hr-on.json"
    } else {
        "hr-off.json"
    });
    let script = r#"mount --bind /proc "$D/proc" && mount -t proc proc /proc &&
        exec "$BIN" run --duration 1s --interval 500ms --output "file:$OUT""#;
    let mut c = Command::new("unshare");
    c.args(["--mount", "--pid", "--fork", "--propagation", "private"])
        .args(["sh", "-c", script])
        .env("D", root)
        .env("BIN", bin())
        .env("OUT", &out)
        .env_remove("HOST_ROOT");
    if host_root {
        c.env("HOST_ROOT", root);
    }
    let o = c.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    // "... selected, N threads and M fds seeded ..."
    let seeded = err
        .split(" threads and ")
        .next()
        .and_then(|h| h.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no seeding figure in {err}"));
    (seeded, err, snapshots(&out).pop().unwrap())
}

#[test]
#[cfg_attr(
    not(kestrel_ci),
    ignore = "needs root: loads the probe in a new mount and pid namespace"
)]
fn host_root_gives_a_namespaced_agent_the_hosts_processes_and_users() {
    let _g = probe_lock();
    let root = tmp("hostroot");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(format!("{root}/proc")).unwrap();
    std::fs::create_dir_all(format!("{root}/etc")).unwrap();
    for f in ["passwd", "group"] {
        std::fs::copy(format!("/etc/{f}"), format!("{root}/etc/{f}")).unwrap();
    }
    let host_threads = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_dir(e.path().join("task")).ok())
        .map(|t| t.count() as u64)
        .sum::<u64>();
    let (alone, err, _) = run_in_namespace(&root, false);
    assert!(alone <= 4, "its own namespace: {alone} threads ({err})");
    let (seen, err, last) = run_in_namespace(&root, true);
    // Kernel threads are not seeded; the host has plenty of user ones.
    assert!(seen > alone + 5, "{seen} seeded of ~{host_threads} ({err})");
    assert!(seen <= host_threads + 50, "{seen} of ~{host_threads}");
    assert!(field(&last, "falco.n_threads") >= seen / 2, "{last}");
    // The host's figures come from HOST_ROOT's /proc.
    assert!(field(&last, "falco.open_fds_host") > 0);
    eprintln!("seeded: {alone} alone, {seen} with HOST_ROOT (host ~{host_threads} threads)");
    let _ = std::fs::remove_dir_all(&root);
}

/// A HOST_ROOT longer than the lookup fallback's paths can hold is one line
/// and exit 2 before any output is made.
#[test]
fn a_host_root_too_long_is_refused_in_one_line() {
    let out = tmp("hr-long.json");
    let _ = std::fs::remove_file(&out);
    let max = kestrel::state::proc_scan::ROOT_MAX;
    let long = format!("/{}", "h".repeat(max - "/proc".len()));
    let o = Command::new(bin())
        .args(["run", "--duration", "1s", "--output"])
        .arg(format!("file:{out}"))
        .env("HOST_ROOT", &long)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("HOST_ROOT is too long"), "{err}");
    assert!(!std::path::Path::new(&out).exists());
}
