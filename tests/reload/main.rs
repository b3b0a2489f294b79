//! SIGHUP reads the config file again and applies it without a restart:
//! the tables, counters and ring keep going, a bad file changes nothing,
//! outputs, the exporter and the rules change live, and what only a
//! restart can apply is named. Root only.

use std::process::{Command, Stdio};
use std::time::Duration;

mod changes;
#[path = "../common/mod.rs"]
mod common;
use common::{
    bin, field, probe_lock, prom, signal, snapshots, tmp, wait_for_snapshots, wait_until, Guard,
};

/// fchmod calls a second while the configuration changes.
const LOAD_PER_SEC: u64 = 3000;

/// A rule on the test's own syscall that never fires: the rules are
/// compiled again at every reload.
const CHMOD_RULE: &str = "- rule: Reload test chmod\n  desc: never fires\n  \
    condition: evt.type = fchmod and proc.name = kestrel-nobody\n  \
    output: chmod %proc.name\n  priority: WARNING\n";

/// Config lines for a ring that carries the test's fchmod load and not the
/// rest of a shared machine (other sessions' builds, their rigs): bursts
/// from them would stall a debug build's drain for hundreds of ms.
fn quiet(rules: &str) -> String {
    format!("syscalls = \"fchmod\"\nrules = [\"{rules}\"]\n")
}

/// The agent on `--config conf`, its stderr into `err`.
fn start(conf: &str, err: &str) -> Guard {
    Guard(
        Command::new(bin())
            .args(["run", "--config", conf])
            .stderr(Stdio::from(std::fs::File::create(err).unwrap()))
            .spawn()
            .unwrap(),
    )
}

/// Writes `text` to `conf`, signals, and waits for the agent's reload line.
fn hup_and_wait(agent: &Guard, conf: &str, err: &str, text: &str) {
    let before = log_count(err, "config reload: ");
    std::fs::write(conf, text).unwrap();
    signal(&agent.0, libc::SIGHUP);
    let done = wait_until(Duration::from_secs(10), || {
        log_count(err, "config reload: ") > before
    });
    assert!(done.is_some(), "no reload line:\n{}", log(err));
}

fn log(err: &str) -> String {
    std::fs::read_to_string(err).unwrap_or_default()
}

fn log_count(err: &str, what: &str) -> usize {
    log(err).lines().filter(|l| l.contains(what)).count()
}

/// Milliseconds between consecutive snapshot times.
fn gaps_ms(times: &[u64]) -> Vec<u64> {
    times
        .windows(2)
        .map(|w| (w[1] - w[0]) / 1_000_000)
        .collect()
}

/// Counters never go back, and every event is accounted for: what the
/// kernel counted is what userspace took or dropped, in every snapshot.
fn accounted(snaps: &[&serde_json::Value]) {
    for k in ["scap.n_evts", "falco.num_evts", "scap.n_drops"] {
        let v: Vec<u64> = snaps.iter().map(|s| field(s, k)).collect();
        assert!(v.windows(2).all(|w| w[1] >= w[0]), "{k}: {v:?}");
    }
    for s in snaps {
        let (n, took, drops) = (
            field(s, "scap.n_evts"),
            field(s, "falco.num_evts"),
            field(s, "scap.n_drops"),
        );
        assert_eq!(n, took + drops, "n_evts = num_evts + n_drops");
    }
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn twenty_sighups_valid_and_invalid_under_load() {
    let _g = probe_lock();
    let (conf, out, err) = (tmp("reload.toml"), tmp("reload.json"), tmp("reload.err"));
    let out2 = tmp("reload-2.json");
    let rules = tmp("reload-rules.yaml");
    std::fs::write(&rules, CHMOD_RULE).unwrap();
    // The valid files alternate between one output and two: the first
    // stays open throughout, the second comes and goes.
    let valid = |ms: u32, top: u32| {
        let second = if top % 2 == 0 {
            format!(", \"file:{out2}\"")
        } else {
            String::new()
        };
        format!(
            "interval = \"{ms}ms\"\nculprit-top-syscalls = {top}\noutput = [\"file:{out}\"{second}]\n{}",
            quiet(&rules)
        )
    };
    std::fs::write(&conf, valid(300, 3)).unwrap();
    let agent = start(&conf, &err);
    wait_for_snapshots(&out, 2, Duration::from_secs(20));
    // A steady load the debug build drains between snapshots.
    let load = prom::Workload::fchmod(tmp("reload-wl"), LOAD_PER_SEC);
    {
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
    }
    assert!(load.stop() > 0);
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
    // The second output came and went (culprit-top-syscalls even: there).
    assert!(log.contains(&format!("added [file:{out2}]")), "{log}");
    assert!(log.contains(&format!("removed [file:{out2}]")), "{log}");
    assert!(!snapshots(&out2).is_empty());
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
    // No snapshot missed, none late: no gap beyond one interval (the
    // longer, 300 ms), give or take scheduling on a busy 2-CPU host.
    let gaps = gaps_ms(&times);
    assert!(
        gaps.iter().all(|&g| g < 300 + 300 / 2),
        "gaps (ms): {gaps:?}\n{log}"
    );
    // The new interval shows: the last gaps are 200 ms.
    let tail = &gaps[gaps.len() - 3..];
    assert!(tail.iter().all(|&g| (150..=260).contains(&g)), "{gaps:?}");
    // Counters only grow; the last snapshot accounts for every event.
    accounted(&snaps);
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

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn outputs_swap_live_without_a_gap() {
    let _g = probe_lock();
    let (conf, err) = (tmp("swap.toml"), tmp("swap.err"));
    let (a, b) = (tmp("swap-a.json"), tmp("swap-b.json"));
    let rules = tmp("swap-rules.yaml");
    std::fs::write(&rules, CHMOD_RULE).unwrap();
    // A syslog collector whose output stays through the change.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = udp.local_addr().unwrap().port();
    let with = |out: &str| {
        format!(
            "interval = \"200ms\"\noutput = [\"file:{out}\", \"syslog://127.0.0.1:{port}\"]\n{}",
            quiet(&rules)
        )
    };
    std::fs::write(&conf, with(&a)).unwrap();
    let agent = start(&conf, &err);
    wait_for_snapshots(&a, 3, Duration::from_secs(20));
    // Load on the ring while the outputs change.
    let load = prom::Workload::fchmod(tmp("swap-wl"), LOAD_PER_SEC);
    std::thread::sleep(Duration::from_millis(300));
    hup_and_wait(&agent, &conf, &err, &with(&b));
    wait_for_snapshots(&b, 4, Duration::from_secs(10));
    assert!(load.stop() > 0);
    let on_a = snapshots(&a).len();
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(snapshots(&a).len(), on_a, "the removed output got more");
    // An output that cannot open: one line naming it, the running set stays.
    let bad = tmp("no-such-dir/swap-c.json");
    hup_and_wait(&agent, &conf, &err, &with(&bad));
    let n = snapshots(&b).len();
    wait_for_snapshots(&b, n + 2, Duration::from_secs(5));
    assert!(agent.term().success());
    let log = log(&err);
    assert!(
        log.contains(&format!("added [file:{b}], removed [file:{a}]")),
        "{log}"
    );
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("the running outputs stay"))
        .collect();
    assert_eq!(refused.len(), 1, "{log}");
    assert!(refused[0].contains("no-such-dir"), "{log}");
    // The removed output's exit line came at its removal; the syslog one
    // was neither added nor removed, and took every snapshot.
    assert!(log.contains(&format!("output file:{a}: ")), "{log}");
    udp.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 65536];
    let mut datagrams = 0;
    while let Ok(n) = udp.recv(&mut buf) {
        // Alerts of the default rules share the output.
        datagrams += usize::from(String::from_utf8_lossy(&buf[..n]).contains("metrics snapshot"));
    }
    let (sa, sb) = (snapshots(&a), snapshots(&b));
    let all: Vec<&serde_json::Value> = sa.iter().chain(sb.iter()).collect();
    let times: Vec<u64> = all.iter().map(|s| field(s, "evt.time")).collect();
    assert!(times.windows(2).all(|w| w[1] > w[0]), "one after the other");
    // No gap beyond one interval (give or take scheduling).
    let gaps = gaps_ms(&times);
    assert!(
        gaps.iter().all(|&g| g < 200 + 200 / 2),
        "gaps (ms): {gaps:?}\n{log}"
    );
    accounted(&all);
    assert_eq!(datagrams, all.len(), "the kept syslog output missed none");
    let last = all.last().unwrap();
    assert_eq!(
        field(last, "scap.n_evts"),
        field(last, "falco.num_evts") + field(last, "scap.n_drops")
    );
    eprintln!("{} + {} snapshots, gaps {gaps:?}", sa.len(), sb.len());
}
