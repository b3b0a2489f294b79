//! Drop alerts end to end (Falco's syscall_event_drops), the schema flag,
//! the config file's Falco-style table and FALCO_CGROUP_MEM_PATH: the real
//! binary, the real probe (a 4 KiB ring for the drops), alerts and snapshots
//! read back from the output file.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{json_lines, require_root, serial, tmp};

const BIN: &str = env!("CARGO_BIN_EXE_kestrel");
const DROP_RULE: &str = "Falco internal: syscall event drop";

fn spawn(out: &str, extra: &[&str]) -> Child {
    Command::new(BIN)
        .args(["run", "--output", &format!("file:{out}")])
        .args(extra)
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn lines(path: &str) -> Vec<serde_json::Value> {
    json_lines(path)
}

fn alerts(path: &str) -> Vec<serde_json::Value> {
    lines(path)
        .into_iter()
        .filter(|v| v["rule"] == DROP_RULE)
        .collect()
}

fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn term(child: &mut Child) -> std::process::ExitStatus {
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait().unwrap()
}

/// Opens and closes a file as fast as possible for `d`: overflows a 4 KiB ring.
/// A burst while the agent is stopped (SIGSTOP): nothing drains the 4 KiB
/// ring, so it drops for certain. Returns when the agent runs again.
fn stalled_burst(agent: &Child, path: &str, d: Duration) {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(agent.id() as i32, libc::SIGSTOP) };
    burst(path, d);
    // SAFETY: as above.
    unsafe { libc::kill(agent.id() as i32, libc::SIGCONT) };
}

fn burst(path: &str, d: Duration) {
    std::fs::write(path, b"x").unwrap();
    let t = Instant::now();
    while t.elapsed() < d {
        drop(std::fs::File::open(path).unwrap());
    }
}

fn s(v: &serde_json::Value, k: &str) -> u64 {
    v["output_fields"][k]
        .as_str()
        .map(|x| x.parse().unwrap())
        .or_else(|| v["output_fields"][k].as_u64())
        .unwrap_or(0)
}

const TINY: &[&str] = &[
    "--ring-buffer-size",
    "4K",
    "--syscalls",
    "openat,close",
    "--interval",
    "1h",
];

#[test]
#[ignore = "needs root: loads the probe (scripts/test.sh runs it with --include-ignored)"]
fn drop_alert_follows_a_burst_within_2s_and_its_counts_match_the_snapshot() {
    let _g = serial();
    require_root();
    let out = tmp("drops.json");
    let mut args = TINY.to_vec();
    args.extend([
        "--syscall-event-drops-actions",
        "log,alert",
        "--syscall-event-drops-threshold",
        "0",
        "--syscall-event-drops-rate",
        "1000",
        "--syscall-event-drops-max-burst",
        "1000",
    ]);
    let mut agent = spawn(&out, &args);
    assert!(wait_for(Duration::from_secs(20), || !lines(&out).is_empty()).is_some());
    stalled_burst(&agent, &tmp("drops-wl"), Duration::from_millis(300));
    let start = Instant::now();
    let seen = wait_for(Duration::from_secs(3), || !alerts(&out).is_empty());
    let after = start.elapsed();
    assert!(seen.is_some(), "no drop alert");
    assert!(
        after <= Duration::from_millis(2300),
        "alert after {after:?}"
    );
    std::thread::sleep(Duration::from_millis(1200));
    assert!(term(&mut agent).success());
    let all = lines(&out);
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
    let sum = |k: &str| al.iter().map(|a| s(a, k)).sum::<u64>();
    assert_eq!(sum("n_drops"), s(last, "scap.n_drops"));
    assert_eq!(
        sum("n_drops_buffer_total"),
        s(last, "scap.n_drops_buffer_total")
    );
    assert_eq!(
        sum("n_drops_buffer_open_exit"),
        s(last, "scap.n_drops_buffer_open_exit")
    );
    assert_eq!(
        sum("n_drops_buffer_close_exit"),
        s(last, "scap.n_drops_buffer_close_exit")
    );
    assert!(sum("n_drops_buffer_open_exit") > 0);
    eprintln!(
        "{} alerts, first {after:?} after the burst began; {} drops of {} events",
        al.len(),
        s(last, "scap.n_drops"),
        s(last, "scap.n_evts")
    );
}

#[test]
#[ignore = "needs root: loads the probe (scripts/test.sh runs it with --include-ignored)"]
fn drop_alerts_are_rate_limited_as_configured() {
    let _g = serial();
    require_root();
    let out = tmp("drops-rl.json");
    let mut args = TINY.to_vec();
    // Falco's defaults but threshold 0: one token, one per 30 s.
    args.extend(["--syscall-event-drops-threshold", "0"]);
    let mut agent = spawn(&out, &args);
    assert!(wait_for(Duration::from_secs(20), || !lines(&out).is_empty()).is_some());
    for _ in 0..3 {
        stalled_burst(&agent, &tmp("drops-rl-wl"), Duration::from_millis(200));
        std::thread::sleep(Duration::from_millis(1300));
    }
    assert!(term(&mut agent).success());
    let last = lines(&out).pop().unwrap();
    assert!(s(&last, "scap.n_drops") > 0, "bursts dropped");
    assert_eq!(alerts(&out).len(), 1, "one token, none refilled in 5 s");
}

#[test]
#[ignore = "needs root: loads the probe (scripts/test.sh runs it with --include-ignored)"]
fn exit_action_stops_the_agent_with_status_3() {
    let _g = serial();
    require_root();
    let out = tmp("drops-exit.json");
    let mut args = TINY.to_vec();
    args.extend([
        "--syscall-event-drops-actions",
        "alert,exit",
        "--syscall-event-drops-threshold",
        "0",
    ]);
    let mut agent = spawn(&out, &args);
    assert!(wait_for(Duration::from_secs(20), || !lines(&out).is_empty()).is_some());
    stalled_burst(&agent, &tmp("drops-exit-wl"), Duration::from_millis(100));
    let start = Instant::now();
    let mut status = None;
    wait_for(Duration::from_secs(3), || {
        status = agent.try_wait().unwrap();
        status.is_some()
    });
    let Some(st) = status else {
        term(&mut agent);
        panic!("agent still running after the exit action");
    };
    assert_eq!(st.code(), Some(kestrel::alerts::EXIT_ON_DROPS));
    assert!(start.elapsed() < Duration::from_millis(2500));
    let all = lines(&out);
    assert_eq!(alerts(&out).len(), 1);
    assert_eq!(
        all.last().unwrap()["rule"],
        "Falco internal: metrics snapshot"
    );
}

#[test]
#[ignore = "needs root: loads the probe (scripts/test.sh runs it with --include-ignored)"]
fn schema_flag_and_falco_style_config_table() {
    let _g = serial();
    require_root();
    let conf = tmp("schema.toml");
    std::fs::write(
        &conf,
        "schema = \"falco-0.38\"\n[syscall_event_drops]\nactions = [\"log\"]\nthreshold = 0.5\n",
    )
    .unwrap();
    let out = tmp("schema.json");
    let st = Command::new(BIN)
        .args(["run", "--output", &format!("file:{out}"), "--config", &conf])
        .args(["--duration", "1s", "--interval", "500ms"])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let last = lines(&out).pop().unwrap();
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
        let o = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert_eq!(String::from_utf8(o.stderr).unwrap().lines().count(), 1);
    }
}

/// libsinsp's FALCO_CGROUP_MEM_PATH names the file container_memory_used
/// is read from (bytes; MB after the conversion).
#[test]
#[ignore = "needs root: loads the probe (scripts/test.sh runs it with --include-ignored)"]
fn falco_cgroup_mem_path_is_honoured() {
    let _g = serial();
    require_root();
    let mem = tmp("mem.usage");
    std::fs::write(&mem, "7340032\n").unwrap();
    let out = tmp("cgmem.json");
    let st = Command::new(BIN)
        .env("FALCO_CGROUP_MEM_PATH", &mem)
        .args(["run", "--output", &format!("file:{out}")])
        .args(["--duration", "300ms", "--interval", "1h"])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let last = lines(&out).pop().unwrap();
    assert_eq!(last["output_fields"]["falco.container_memory_used"], 7);
}

/// Exits lost to a full ring leave threads behind; the purge sweep removes
/// those idle past --thread-timeout whose /proc entry is gone, as libsinsp's
/// remove_inactive_threads does.
#[test]
#[ignore = "needs root: loads the probe (scripts/test.sh runs it with --include-ignored)"]
fn threads_whose_exit_was_dropped_are_purged() {
    let _g = serial();
    require_root();
    let out = tmp("purge.json");
    let mut args = TINY.to_vec();
    args.extend([
        "--thread-timeout",
        "500ms",
        "--thread-purge-interval",
        "500ms",
    ]);
    let mut agent = spawn(&out, &args);
    assert!(wait_for(Duration::from_secs(20), || !lines(&out).is_empty()).is_some());
    let wl = tmp("purge-wl");
    std::thread::scope(|sc| {
        sc.spawn(|| burst(&wl, Duration::from_millis(1500)));
        for _ in 0..40 {
            Command::new("/bin/true").status().unwrap();
        }
    });
    std::thread::sleep(Duration::from_millis(2500));
    assert!(term(&mut agent).success());
    let last = lines(&out)
        .into_iter()
        .rfind(|v| v["rule"] == "Falco internal: metrics snapshot")
        .unwrap();
    let purged = s(&last, "kestrel.n_purged_threads");
    eprintln!(
        "purged {purged} threads; {} exits dropped",
        s(&last, "scap.n_drops_buffer_proc_exit")
    );
    assert!(
        s(&last, "scap.n_drops_buffer_proc_exit") > 0,
        "exits were lost"
    );
    assert!(purged > 0, "nothing purged");
    assert!(s(&last, "falco.n_removed_threads") >= purged);
}
