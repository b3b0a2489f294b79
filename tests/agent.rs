//! End-to-end tests of the running agent: real probe, real snapshots in a
//! file, signals, table and disk limits, privileges, culprit counters (the
//! command line without a workload is tests/cli.rs). Root is needed for the
//! ones that load the probe; they are #[ignore]d ("needs root");
//! scripts/test.sh runs them.

use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::SpawnGuarded;
use common::{
    agent, bin, field, fork_children, open_close_for, probe_lock, signal, snapshots, spawn_agent,
    term, tmp, wait_for_snapshots, Tmpfs,
};

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn acceptance_run_writes_snapshots_while_a_workload_runs() {
    acceptance_run(&[]);
}

/// The same run through per-CPU perf buffers (the 5.4–5.7 path).
#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn perf_buffer_run_accounts_for_every_event() {
    acceptance_run(&["--event-buffer", "perf"]);
}

fn acceptance_run(buffer: &[&str]) {
    let _g = probe_lock();
    let out = tmp("k.json");
    let flags = ["--interval", "1s", "--duration", "5s"];
    let mut agent = spawn_agent(&out, &[&flags, buffer].concat());
    wait_for_snapshots(&out, 1, Duration::from_secs(20));
    open_close_for(&tmp("wl"), Duration::from_secs(3));
    let st = agent.wait().unwrap();
    assert!(st.success(), "agent exits 0 after --duration: {st}");
    let snaps = snapshots(&out);
    assert!(snaps.len() >= 5, "got {} snapshots", snaps.len());
    let evts: Vec<u64> = snaps.iter().map(|s| field(s, "scap.n_evts")).collect();
    assert!(
        evts.windows(2).all(|w| w[1] >= w[0]),
        "n_evts never shrinks: {evts:?}"
    );
    assert!(evts.last() > evts.first(), "n_evts grows: {evts:?}");
    let last = snaps.last().unwrap();
    assert_eq!(
        field(last, "scap.n_evts"),
        field(last, "falco.num_evts") + field(last, "scap.n_drops"),
        "final snapshot: every kernel event delivered or counted as dropped"
    );
    // falco-0.37 counts enters too (metrics::units); Kestrel's records add up alike.
    let (evts, records) = (field(last, "scap.n_evts"), field(last, "kestrel.n_evts"));
    assert!(
        records < evts && evts <= 2 * records,
        "{records} records, {evts} events"
    );
    assert_eq!(
        records,
        field(last, "kestrel.num_evts") + field(last, "kestrel.n_drops")
    );
    assert_eq!(last["rule"], "Falco internal: metrics snapshot");
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn tiny_thread_table_drops_and_the_agent_stays_healthy() {
    let _g = probe_lock();
    let out = tmp("tiny.json");
    let mut agent = spawn_agent(&out, &["--interval", "300ms", "--thread-table-size", "4"]);
    wait_for_snapshots(&out, 1, Duration::from_secs(20));
    for _ in 0..20 {
        Command::new("/bin/true").status().unwrap();
    }
    let n = snapshots(&out).len();
    wait_for_snapshots(&out, n + 2, Duration::from_secs(5));
    assert!(term(&mut agent).success());
    let last = snapshots(&out).pop().unwrap();
    assert!(field(&last, "falco.n_drops_full_threadtable") >= 20);
    assert!(
        field(&last, "falco.n_threads") <= 4 + kestrel::state::OWN_THREAD_RESERVE as u64,
        "capacity plus own-thread reserve"
    );
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn sigterm_writes_a_final_snapshot_and_removes_the_pidfile() {
    let _g = probe_lock();
    let out = tmp("term.json");
    let pidfile = tmp("pid");
    let mut agent = spawn_agent(&out, &["--interval", "1h", "--pidfile", &pidfile]);
    wait_for_snapshots(&out, 1, Duration::from_secs(20));
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pid, agent.id());
    let t = Instant::now();
    assert!(term(&mut agent).success());
    // A hang detector, not a timing test: the exit's bound is structural
    // (outputs get FINISH_NS = 400 ms, then the agent goes).
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "exit after SIGTERM took {:?}",
        t.elapsed()
    );
    assert_eq!(
        snapshots(&out).len(),
        2,
        "start snapshot plus final snapshot"
    );
    assert!(!std::path::Path::new(&pidfile).exists());
}

/// The raw_tp path through the whole agent, CO-RE against a BTF file: the
/// snapshot names the path and keeps the tp_btf program names.
#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn raw_tp_agent_with_a_btf_file_reports_its_path_and_program_names() {
    let _g = probe_lock();
    let out = tmp("rawtp.json");
    let mut child = spawn_agent(
        &out,
        &[
            "--interval",
            "500ms",
            "--attach",
            "raw_tp",
            "--btf",
            "/sys/kernel/btf/vmlinux",
            "--libbpf-stats-enabled",
            "true",
            "--include-empty-values",
            "true",
        ],
    );
    wait_for_snapshots(&out, 2, Duration::from_secs(20));
    assert!(term(&mut child).success());
    let last = snapshots(&out).pop().unwrap();
    let _ = std::fs::remove_file(&out);
    assert_eq!(last["output_fields"]["kestrel.attach"], "raw_tp");
    assert!(field(&last, "scap.sys_exit.run_cnt") > 0, "{last}");
    let names: Vec<&String> = last["output_fields"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.ends_with(".run_cnt"))
        .collect();
    assert_eq!(
        names,
        [
            "scap.hrtimer_expire.run_cnt",
            "scap.sched_p_exec.run_cnt",
            "scap.sched_proc_exit.run_cnt",
            "scap.sched_switch.run_cnt",
            "scap.sys_exit.run_cnt"
        ],
        "raw_tp twins report the tp_btf names"
    );
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn sighup_reopens_the_output_after_a_rename_even_under_nohup() {
    use std::os::unix::process::CommandExt;
    let _g = probe_lock();
    let out = tmp("rotate.json");
    let rotated = format!("{out}.1");
    let _ = std::fs::remove_file(&rotated);
    // As `nohup` starts it: SIGHUP ignored on entry. The agent blocks it for
    // its signalfd, and a blocked signal is queued even when ignored.
    let mut cmd = agent(&out, &["--interval", "200ms"]);
    // SAFETY: signal(2) only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut agent = cmd.spawn_guarded();
    wait_for_snapshots(&out, 2, Duration::from_secs(20));
    std::fs::rename(&out, &rotated).unwrap();
    signal(&agent, libc::SIGHUP);
    wait_for_snapshots(&out, 2, Duration::from_secs(5));
    assert!(term(&mut agent).success());
    assert!(
        snapshots(&rotated).len() >= 2,
        "old lines stay in the rotated file"
    );
    let fresh = snapshots(&out);
    assert!(
        fresh.len() >= 3,
        "new file gets the later snapshots and the final one"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
}

#[test]
fn symlink_at_the_output_path_is_refused_with_one_line() {
    let link = tmp("link.json");
    let target = tmp("link-target");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let o = Command::new(bin())
        .args([
            "run",
            "--output",
            &format!("file:{link}"),
            "--duration",
            "1s",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "bad input: a path to fix");
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("symlink"), "{err}");
    assert!(
        !std::path::Path::new(&target).exists(),
        "nothing written through the link"
    );
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn full_disk_is_counted_and_the_agent_survives() {
    let _g = probe_lock();
    let fs = Tmpfs::mount("smallfs", "8k");
    let full = format!("{}/m.json", fs.0);
    let side = tmp("side.json");
    let st = agent(&full, &["--output", &format!("file:{side}")])
        .args(["--interval", "100ms", "--duration", "2s"])
        .status()
        .unwrap();
    drop(fs);
    assert!(
        st.success(),
        "the agent ran to its end despite the full disk"
    );
    let snaps = snapshots(&side);
    assert!(
        snaps.len() >= 15,
        "{} snapshots on the healthy sink",
        snaps.len()
    );
    assert!(
        field(snaps.last().unwrap(), "kestrel.output_write_errors") > 0,
        "failed writes are counted in the snapshot"
    );
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn after_attach_only_cap_bpf_remains_and_no_new_privs_is_set() {
    let _g = probe_lock();
    let out = tmp("caps.json");
    let mut agent = spawn_agent(
        &out,
        &["--interval", "200ms", "--libbpf-stats-enabled", "true"],
    );
    wait_for_snapshots(&out, 1, Duration::from_secs(20));
    let status = std::fs::read_to_string(format!("/proc/{}/status", agent.id())).unwrap();
    let get = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    const CAP_BPF: &str = "0000008000000000";
    assert_eq!(get("CapEff:"), CAP_BPF);
    assert_eq!(get("CapPrm:"), CAP_BPF);
    assert_eq!(get("CapBnd:"), CAP_BPF);
    assert_eq!(get("CapInh:"), "0000000000000000");
    assert_eq!(get("CapAmb:"), "0000000000000000");
    assert_eq!(get("NoNewPrivs:"), "1");
    // The loop still reads counters and program stats with what is left.
    wait_for_snapshots(&out, 3, Duration::from_secs(5));
    assert!(term(&mut agent).success());
    let last = snapshots(&out).pop().unwrap();
    assert!(field(&last, "scap.n_evts") > 0);
    assert!(field(&last, "scap.sys_exit.run_cnt") > 0);
}

/// The culprit counters on a known workload: a forked child makes N getppid
/// and M open+close pairs (no exec, so nothing else runs in it). Summed over
/// every snapshot, the child's traced events are exactly its records, it
/// tops the process list, and getppid tops the syscall list.
#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn culprit_counters_name_a_known_workload() {
    let _g = probe_lock();
    const GETPPIDS: usize = 300_000;
    const OPENS: usize = 20_000;
    let out = tmp("culprits.json");
    let file = tmp("culprit-file");
    std::fs::write(&file, b"x").unwrap();
    // Every process of the interval listed, so the child's counts are never
    // folded into `other`.
    let mut child = spawn_agent(
        &out,
        &[
            "--interval",
            "200ms",
            "--culprit-top-procs",
            "32",
            "--culprit-capacity",
            "4096",
            "--ring-buffer-size",
            "16M",
        ],
    );
    wait_for_snapshots(&out, 2, Duration::from_secs(20));
    let path = std::ffi::CString::new(file.clone()).unwrap();
    let pid = fork_children(1, || {
        for _ in 0..GETPPIDS {
            // SAFETY: raw syscalls only in the child.
            unsafe { libc::syscall(libc::SYS_getppid) };
        }
        for _ in 0..OPENS {
            // SAFETY: open of a live C string and close of its fd, in the child.
            let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
            // SAFETY: as above.
            unsafe { libc::close(fd) };
        }
    })[0];
    let n = snapshots(&out).len();
    wait_for_snapshots(&out, n + 2, Duration::from_secs(20));
    assert!(term(&mut child).success());
    let snaps = snapshots(&out);
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(&file);

    let mut evts = 0;
    let mut topped = false;
    let mut getppid = 0;
    for s in &snaps {
        let f = &s["output_fields"];
        let procs = f["kestrel.top_procs"]
            .as_array()
            .expect("top_procs in every snapshot");
        assert!(procs.len() <= 33, "32 processes and other");
        for (i, p) in procs.iter().enumerate() {
            if p["pid"] == pid {
                evts += p["evts"].as_u64().unwrap();
                topped |= i == 0;
            }
        }
        for sc in f["kestrel.top_syscalls"].as_array().unwrap() {
            if sc["name"] == "getppid" {
                getppid += sc["count"].as_u64().unwrap();
            }
        }
    }
    let drops = field(snaps.last().unwrap(), "scap.n_drops");
    assert_eq!(drops, 0, "no drops, so every record of the child arrived");
    // clone child side + OPENS opens + OPENS closes + exit.
    assert_eq!(
        evts as usize,
        2 * OPENS + 2,
        "the child's traced events, exactly"
    );
    assert!(
        topped,
        "the child tops the process list in its interval: {:?}",
        snaps
            .iter()
            .map(|s| s["output_fields"]["kestrel.top_procs"].to_string())
            .filter(|l| l.contains(&format!("\"pid\":{pid}}}")))
            .collect::<Vec<_>>()
    );
    assert!(
        getppid as usize >= GETPPIDS,
        "every getppid counted ({getppid} seen)"
    );
}

/// `--kernel-event-counters-per-cpu-enabled` (Falco 0.39+): each possible
/// CPU's events and drops, which add up to the totals; in Prometheus a
/// `cpu` label. Falco's per-CPU knob turns the kernel counters on.
#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn per_cpu_counters_add_up_to_the_totals() {
    let _g = probe_lock();
    let out = tmp("percpu.json");
    let prom = tmp("percpu.prom");
    let textfile = format!("prometheus-textfile:{prom}");
    let st = agent(&out, &["--schema", "falco-0.42", "--output", &textfile])
        .args(["--kernel-event-counters-enabled", "false"])
        .args(["--kernel-event-counters-per-cpu-enabled", "true"])
        .args(["--duration", "1s", "--interval", "500ms"])
        .status()
        .unwrap();
    assert!(st.success());
    let last = snapshots(&out).pop().unwrap();
    let f = last["output_fields"].as_object().unwrap();
    let sum = |p: &str| -> u64 {
        f.iter()
            .filter(|(k, _)| k.starts_with(p))
            .map(|(_, v)| v.as_u64().unwrap())
            .sum()
    };
    assert!(field(&last, "scap.n_evts") > 0, "kernel counters on");
    assert_eq!(sum("scap.n_evts_cpu_"), field(&last, "scap.n_evts"));
    assert_eq!(sum("scap.n_drops_cpu_"), field(&last, "scap.n_drops"));
    let text = std::fs::read_to_string(&prom).unwrap();
    assert!(text.contains("falcosecurity_scap_n_evts_cpu_total{cpu=\"0\"} "));
    assert!(text.contains("# TYPE falcosecurity_scap_n_drops_cpu_total counter"));
}
