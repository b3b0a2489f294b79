//! SIGHUP reads the config file again and applies it without a restart:
//! the tables, counters and ring keep going, a bad file changes nothing,
//! and what only a restart can apply is named. Root only.

use std::process::{Command, Stdio};
use std::time::Duration;

mod common;
use common::{
    bin, field, open_close_for, probe_lock, signal, snapshots, tmp, wait_for_snapshots, Guard,
};

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn twenty_sighups_valid_and_invalid_under_load() {
    let _g = probe_lock();
    let (conf, out, err) = (tmp("reload.toml"), tmp("reload.json"), tmp("reload.err"));
    let valid =
        |ms: u32, top: u32| format!("interval = \"{ms}ms\"\nculprit-top-syscalls = {top}\n");
    std::fs::write(&conf, valid(300, 3)).unwrap();
    let agent = Guard(
        Command::new(bin())
            .args(["run", "--config", &conf, "--output", &format!("file:{out}")])
            .stderr(Stdio::from(std::fs::File::create(&err).unwrap()))
            .spawn()
            .unwrap(),
    );
    wait_for_snapshots(&out, 2, Duration::from_secs(20));
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            // A steady load the debug build drains between snapshots.
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                open_close_for(&tmp("reload-wl"), Duration::from_millis(10));
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        for i in 0..20u32 {
            let text = match i % 2 {
                0 => valid(if i % 4 == 0 { 200 } else { 300 }, 3 + i % 3),
                _ => "interval = [\n".to_string(),
            };
            std::fs::write(&conf, text).unwrap();
            signal(&agent.0, libc::SIGHUP);
            let n = snapshots(&out).len();
            wait_for_snapshots(&out, n + 1, Duration::from_secs(5));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    // Last valid file: 200 ms. Then a key only a restart applies, then a
    // schema change, which applies live.
    let hup = |text: String, snaps: usize| {
        std::fs::write(&conf, text).unwrap();
        signal(&agent.0, libc::SIGHUP);
        let n = snapshots(&out).len();
        wait_for_snapshots(&out, n + snaps, Duration::from_secs(5));
    };
    hup(format!("{}ring-buffer-size = \"2M\"\n", valid(200, 5)), 3);
    hup(format!("{}schema = \"falco-0.42\"\n", valid(200, 5)), 2);
    assert!(agent.term().success(), "the agent never stopped");

    let log = std::fs::read_to_string(&err).unwrap();
    let kept = log
        .lines()
        .filter(|l| l.contains("the running configuration stays"));
    assert_eq!(kept.count(), 10, "one line per bad file:\n{log}");
    assert_eq!(log.matches("config reload: applied").count(), 12, "{log}");
    let restart = log.lines().filter(|l| l.contains("needs a restart"));
    assert_eq!(restart.count(), 1, "{log}");
    assert!(log.contains("ring-buffer-size changed"), "{log}");
    let all = snapshots(&out);
    let last = all.last().unwrap();
    assert!(
        last["output_fields"]["evt.hostname"].is_string(),
        "falco-0.42 now"
    );
    assert!(field(last, "falco.reload_ts") > field(last, "falco.start_ts"));
    // Up to the schema change, one event unit (falco-0.37's).
    let snaps: Vec<&serde_json::Value> = all
        .iter()
        .filter(|s| s["output_fields"]["falco.hostname"].is_string())
        .collect();
    let times: Vec<u64> = snaps.iter().map(|s| field(s, "evt.time")).collect();
    // No snapshot missed: no gap reaches two intervals (the longer, 300 ms).
    let gaps: Vec<u64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]) / 1_000_000)
        .collect();
    assert!(gaps.iter().all(|&g| g < 2 * 300), "gaps (ms): {gaps:?}");
    // The new interval shows: the last gaps are 200 ms.
    let tail = &gaps[gaps.len() - 3..];
    assert!(tail.iter().all(|&g| (150..=260).contains(&g)), "{gaps:?}");
    // Counters only grow; the last snapshot accounts for every event.
    for k in ["scap.n_evts", "falco.num_evts", "scap.n_drops"] {
        let v: Vec<u64> = snaps.iter().map(|s| field(s, k)).collect();
        assert!(v.windows(2).all(|w| w[1] >= w[0]), "{k}: {v:?}");
    }
    assert_eq!(
        field(last, "scap.n_evts"),
        field(last, "falco.num_evts") + field(last, "scap.n_drops")
    );
    // culprit-top-syscalls 5: at most five named plus `other`.
    let top = last["output_fields"]["kestrel.top_syscalls"]
        .as_array()
        .unwrap();
    assert!(top.len() <= 6, "{top:?}");
    eprintln!("{} snapshots, gaps {gaps:?}", all.len());
}
