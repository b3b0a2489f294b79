//! Drop alerts end to end (Falco's syscall_event_drops), the schema flag,
//! the config file's Falco-style table and FALCO_CGROUP_MEM_PATH: the real
//! binary, the real probe (a 4 KiB ring for the drops), alerts and snapshots
//! read back from the output file.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

mod common;
use common::SpawnGuarded;
use common::{
    agent, bin, field, json_lines, open_close_for, probe_lock, signal, snapshots, spawn_agent,
    term, tmp, wait_until,
};

const DROP_RULE: &str = "Falco internal: syscall event drop";

fn alerts(path: &str) -> Vec<serde_json::Value> {
    json_lines(path)
        .into_iter()
        .filter(|v| v["rule"] == DROP_RULE)
        .collect()
}

/// A burst while the agent is stopped (SIGSTOP): nothing drains the 4 KiB
/// ring, so it drops for certain. Returns when the agent runs again.
fn stalled_burst(agent: &Child, path: &str, d: Duration) {
    signal(agent, libc::SIGSTOP);
    open_close_for(path, d);
    signal(agent, libc::SIGCONT);
}

const TINY: &[&str] = &[
    "--ring-buffer-size",
    "4K",
    "--syscalls",
    "openat,close",
    "--interval",
    "1h",
];

/// The agent on the 4 KiB ring with `extra` flags, once its first line is out.
fn start_tiny(out: &str, extra: &[&str]) -> common::Guard {
    let agent = spawn_agent(out, &[TINY, extra].concat());
    assert!(wait_until(Duration::from_secs(20), || !json_lines(out).is_empty()).is_some());
    agent
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn drop_alert_follows_a_burst_within_2s_and_its_counts_match_the_snapshot() {
    drop_alert_matches_snapshot(&[]);
}

/// The same accounting through per-CPU perf buffers (the 5.4–5.7 path).
#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn perf_buffer_drop_alerts_match_the_snapshot() {
    drop_alert_matches_snapshot(&["--event-buffer", "perf"]);
}

fn drop_alert_matches_snapshot(buffer: &[&str]) {
    let _g = probe_lock();
    let out = tmp("drops.json");
    let mut agent = start_tiny(
        &out,
        &[
            buffer,
            &[
                "--syscall-event-drops-actions",
                "log,alert",
                "--syscall-event-drops-threshold",
                "0",
                "--syscall-event-drops-rate",
                "1000",
                "--syscall-event-drops-max-burst",
                "1000",
            ],
        ]
        .concat(),
    );
    stalled_burst(&agent, &tmp("drops-wl"), Duration::from_millis(300));
    let start = Instant::now();
    let seen = wait_until(Duration::from_secs(3), || !alerts(&out).is_empty());
    let after = start.elapsed();
    assert!(seen.is_some(), "no drop alert");
    assert!(
        after <= Duration::from_millis(2300),
        "alert after {after:?}"
    );
    std::thread::sleep(Duration::from_millis(1200));
    assert!(term(&mut agent).success());
    let all = json_lines(&out);
    let last = all.last().unwrap();
    assert_eq!(
        last["rule"], "Falco internal: metrics snapshot",
        "final snapshot last"
    );
    let al = alerts(&out);
    let a = &al[0];
    assert_eq!(a["priority"], "Debug");
    assert_eq!(a["source"], "internal");
    assert!(
        a["output_fields"]["n_drops"].is_string(),
        "Falco's string values"
    );
    // Every window with drops alerted (threshold 0, ample tokens), and the
    // last partial second was checked before the final snapshot: the sums
    // are the snapshot's totals, category by category.
    let sum = |k: &str| al.iter().map(|a| field(a, k)).sum::<u64>();
    assert_eq!(sum("n_drops"), field(last, "scap.n_drops"));
    assert_eq!(
        sum("n_drops_buffer_total"),
        field(last, "scap.n_drops_buffer_total")
    );
    assert_eq!(
        sum("n_drops_buffer_open_exit"),
        field(last, "scap.n_drops_buffer_open_exit")
    );
    assert_eq!(
        sum("n_drops_buffer_close_exit"),
        field(last, "scap.n_drops_buffer_close_exit")
    );
    assert!(sum("n_drops_buffer_open_exit") > 0);
    eprintln!(
        "{} alerts, first {after:?} after the burst began; {} drops of {} events",
        al.len(),
        field(last, "scap.n_drops"),
        field(last, "scap.n_evts")
    );
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn drop_alerts_are_rate_limited_as_configured() {
    let _g = probe_lock();
    let out = tmp("drops-rl.json");
    // Falco's defaults but threshold 0: one token, one per 30 s.
    let mut agent = start_tiny(&out, &["--syscall-event-drops-threshold", "0"]);
    for _ in 0..3 {
        stalled_burst(&agent, &tmp("drops-rl-wl"), Duration::from_millis(200));
        std::thread::sleep(Duration::from_millis(1300));
    }
    assert!(term(&mut agent).success());
    let last = json_lines(&out).pop().unwrap();
    assert!(field(&last, "scap.n_drops") > 0, "bursts dropped");
    assert_eq!(alerts(&out).len(), 1, "one token, none refilled in 5 s");
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn exit_action_stops_the_agent_with_status_3() {
    let _g = probe_lock();
    let out = tmp("drops-exit.json");
    let err = tmp("drops-exit.err");
    let args = [
        TINY,
        &[
            "--syscall-event-drops-actions",
            "log,alert,exit",
            "--syscall-event-drops-threshold",
            "0",
        ],
    ]
    .concat();
    let mut agent = agent(&out, &args)
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn_guarded();
    assert!(wait_until(Duration::from_secs(20), || !json_lines(&out).is_empty()).is_some());
    stalled_burst(&agent, &tmp("drops-exit-wl"), Duration::from_millis(100));
    let start = Instant::now();
    let mut status = None;
    wait_until(Duration::from_secs(3), || {
        status = agent.try_wait().unwrap();
        status.is_some()
    });
    let Some(st) = status else {
        term(&mut agent);
        panic!("agent still running after the exit action");
    };
    assert_eq!(st.code(), Some(kestrel::alerts::EXIT_ON_DROPS));
    assert!(start.elapsed() < Duration::from_millis(2500));
    let all = json_lines(&out);
    assert_eq!(alerts(&out).len(), 1);
    assert_eq!(
        all.last().unwrap()["rule"],
        "Falco internal: metrics snapshot"
    );
    // One stderr line for the drop, log and exit listed alike (it came twice).
    let text = std::fs::read_to_string(&err).unwrap();
    let said: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("system calls dropped"))
        .collect();
    assert_eq!(said.len(), 1, "{text}");
    assert!(said[0].ends_with("Exiting with status 3."), "{text}");
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn schema_flag_and_falco_style_config_table() {
    let _g = probe_lock();
    let conf = tmp("schema.toml");
    std::fs::write(
        &conf,
        "schema = \"falco-0.38\"\n[syscall_event_drops]\nactions = [\"log\"]\nthreshold = 0.5\n",
    )
    .unwrap();
    let out = tmp("schema.json");
    let st = agent(&out, &["--config", &conf])
        .args(["--duration", "1s", "--interval", "500ms"])
        .status()
        .unwrap();
    assert!(st.success());
    let last = json_lines(&out).pop().unwrap();
    let f = last["output_fields"].as_object().unwrap();
    assert!(f["evt.hostname"].is_string());
    assert!(f.get("falco.hostname").is_none());
    assert!(f["falco.memory_rss_mb"].is_f64());
    assert!(f["falco.host_open_fds"].is_u64());
    for args in [
        &["run", "--schema", "falco-9"][..],
        &["run", "--syscall-event-drops-actions", "ignore,exit"],
        &["run", "--syscall-event-drops-threshold", "2"],
    ] {
        let o = Command::new(bin()).args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert_eq!(String::from_utf8(o.stderr).unwrap().lines().count(), 1);
    }
}

/// libsinsp's FALCO_CGROUP_MEM_PATH names the file container_memory_used
/// is read from (bytes; MB after the conversion).
#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn falco_cgroup_mem_path_is_honoured() {
    let _g = probe_lock();
    let mem = tmp("mem.usage");
    std::fs::write(&mem, "7340032\n").unwrap();
    let out = tmp("cgmem.json");
    let st = agent(&out, &["--duration", "300ms", "--interval", "1h"])
        .env("FALCO_CGROUP_MEM_PATH", &mem)
        .status()
        .unwrap();
    assert!(st.success());
    let last = json_lines(&out).pop().unwrap();
    assert_eq!(last["output_fields"]["falco.container_memory_used"], 7);
}

/// Exits lost to a full ring leave threads behind; the purge sweep removes
/// those idle past --thread-timeout whose /proc entry is gone, as libsinsp's
/// remove_inactive_threads does. The children start while the ring drains,
/// so the table knows them, and die while the agent is stopped and the ring
/// is full, so their exits are lost. (Children started during a flood could
/// lose their clone with their exit and leave nothing behind.) The gap a
/// flood leaves in the ring holds an exit or two, hence 16 children.
#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn threads_whose_exit_was_dropped_are_purged() {
    const CHILDREN: usize = 16;
    let _g = probe_lock();
    let out = tmp("purge.json");
    let mut agent = start_tiny(
        &out,
        &[
            "--thread-timeout",
            "500ms",
            "--thread-purge-interval",
            "500ms",
        ],
    );
    let mut children: Vec<Child> = (0..CHILDREN)
        .map(|_| {
            let c = Command::new("sleep").arg("60").spawn().unwrap();
            std::thread::sleep(Duration::from_millis(10));
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    signal(&agent.0, libc::SIGSTOP);
    open_close_for(&tmp("purge-wl"), Duration::from_millis(100));
    for c in &mut children {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    signal(&agent.0, libc::SIGCONT);
    std::thread::sleep(Duration::from_millis(2500));
    assert!(term(&mut agent).success());
    let last = json_lines(&out)
        .into_iter()
        .rfind(|v| v["rule"] == "Falco internal: metrics snapshot")
        .unwrap();
    let purged = field(&last, "kestrel.n_purged_threads");
    let exits_dropped = field(&last, "scap.n_drops_buffer_proc_exit");
    eprintln!("purged {purged} threads; {exits_dropped} exits dropped");
    assert!(exits_dropped > 0, "exits were lost");
    assert!(purged > 0, "nothing purged");
    assert!(field(&last, "falco.n_removed_threads") >= purged);
}

/// `kestrel.top_procs_by_drops` with a culprit table of 4 processes and a
/// 4 KiB ring: one long-lived process (this test) and many short ones drop
/// in every round. Each snapshot's per-process figures must add up to at
/// most the interval's drops, the `other` entry taking the rest. With the
/// table full of dead pids, cumulative counts were reported as the
/// interval's (10,886,345 listed against 513,035).
#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn per_process_drops_add_up_to_the_intervals_drops() {
    let _g = probe_lock();
    let out = tmp("culprit-drops.json");
    let agent = spawn_agent(
        &out,
        &[
            "--ring-buffer-size",
            "4K",
            "--syscalls",
            "openat,close",
            "--interval",
            "200ms",
            "--culprit-capacity",
            "4",
            "--syscall-event-drops-actions",
            "ignore",
        ],
    );
    assert!(wait_until(Duration::from_secs(20), || !snapshots(&out).is_empty()).is_some());
    let wl = tmp("culprit-drops-wl");
    std::fs::write(&wl, b"x").unwrap();
    let path = std::ffi::CString::new(wl.as_str()).unwrap();
    for _ in 0..12 {
        // Stopped, nothing drains the ring: every process drops.
        signal(&agent.0, libc::SIGSTOP);
        std::thread::scope(|s| {
            s.spawn(|| open_close_for(&wl, Duration::from_millis(50)));
            common::fork_children(6, || {
                for _ in 0..200 {
                    // SAFETY: open and close are async-signal-safe.
                    unsafe { libc::close(libc::open(path.as_ptr(), libc::O_RDONLY)) };
                }
            });
        });
        signal(&agent.0, libc::SIGCONT);
        let n = snapshots(&out).len();
        assert!(wait_until(Duration::from_secs(20), || snapshots(&out).len() >= n + 2).is_some());
    }
    assert!(agent.term().success());
    let snaps = snapshots(&out);
    let (mut prev, mut pairs, mut listed_total) = (0, Vec::new(), 0);
    for s in &snaps {
        // Records, as the culprit lists count (falco-0.37's scap.n_drops
        // counts enters too).
        let now = field(s, "kestrel.n_drops");
        let interval = now - prev;
        prev = now;
        // Left out when all zero (include_empty_values false).
        let Some(list) = s["output_fields"]["kestrel.top_procs_by_drops"].as_array() else {
            continue;
        };
        let (named, other): (Vec<_>, Vec<_>) = list.iter().partition(|p| p["comm"] != "other");
        let listed: u64 = named.iter().map(|p| p["drops"].as_u64().unwrap()).sum();
        let other = other[0]["drops"].as_u64().unwrap();
        pairs.push((listed, interval));
        listed_total += listed;
        assert!(
            listed <= interval,
            "{listed} drops listed in an interval of {interval}: {list:?}"
        );
        assert_eq!(listed + other, interval, "{list:?}");
    }
    eprintln!(
        "{} snapshots, {prev} drops, {listed_total} named; (named, interval): {pairs:?}",
        snaps.len()
    );
    assert!(listed_total > 0, "drops were named");
}

/// The Prometheus drop family has every bucket of enum kestrel_category,
/// Kestrel's own (close enter here) beside Falco's: at stop its series add
/// up to the final snapshot's scap.n_drops_buffer_total.
#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn prometheus_drop_buckets_sum_to_the_buffer_total() {
    drop_buckets_sum(&[]);
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn perf_buffer_drop_buckets_sum_to_the_buffer_total() {
    drop_buckets_sum(&["--event-buffer", "perf"]);
}

fn drop_buckets_sum(buffer: &[&str]) {
    let _g = probe_lock();
    let out = tmp("drops-prom.json");
    let prom = tmp("drops-prom.prom");
    let textfile = format!("prometheus-textfile:{prom}");
    let flags = ["--enter-events", "--output", &textfile];
    let mut agent = start_tiny(&out, &[buffer, &flags].concat());
    stalled_burst(&agent, &tmp("drops-prom-wl"), Duration::from_millis(300));
    assert!(term(&mut agent).success());
    let last = snapshots(&out).pop().unwrap();
    let text = std::fs::read_to_string(&prom).unwrap();
    let bucket = |l: &str| {
        l.strip_prefix("falcosecurity_scap_n_drops_buffer_total{")
            .map(|s| s.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
    };
    let sum: u64 = text.lines().filter_map(bucket).sum();
    let total = field(&last, "scap.n_drops_buffer_total");
    assert!(total > 0, "the stalled burst dropped");
    assert_eq!(sum, total, "{text}");
    let close_enter = "falcosecurity_scap_n_drops_buffer_total{dir=\"enter\",drop=\"close\"} ";
    let line = text.lines().find(|l| l.starts_with(close_enter));
    let json = field(&last, "kestrel.n_drops_buffer_close_enter");
    assert!(json > 0, "close enter dropped too");
    assert_eq!(line.and_then(bucket), Some(json));
    eprintln!("{total} buffer drops, {json} of them close enter");
}
