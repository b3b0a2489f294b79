//! The built-in edge ruleset against real actions on this host: each rule
//! fires on the real attack and stays quiet on a benign twin that differs
//! in the one thing the rule is about. The agent runs with the shipped
//! rules plus a sentinel rule; every case runs its twin, a sentinel, the
//! attack and a second sentinel, so "quiet" is checked against a point the
//! agent provably reached, never against a sleep.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::prom;
use common::*;
use serde_json::Value;

const SENTINEL: &str = "kt-sentinel";

fn dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rules-live");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Compiles one of tests/attacks/*.c with the host's C compiler.
fn build(name: &str) -> String {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/attacks/{name}.c"));
    let out = dir().join(name);
    let ok = Command::new("cc")
        .args(["-O1", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("cc runs");
    assert!(ok.success(), "cc {name}.c");
    out.to_string_lossy().into_owned()
}

/// A copy of `from` named `name` in `dir` (a process name is its file's name).
fn copy_as(from: &str, dir: &Path, name: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let to = dir.join(name);
    let _ = std::fs::remove_file(&to);
    std::fs::copy(from, &to).unwrap();
    to.to_string_lossy().into_owned()
}

fn run(cmd: &str, args: &[&str]) {
    let _ = Command::new(cmd).args(args).output().expect(cmd);
}

struct Session {
    out: String,
    agent: Guard,
    /// The agent's /metrics port.
    port: u16,
    sentinel: String,
    seen: usize,
    n: u32,
}

impl Session {
    fn start() -> Session {
        let out = tmp("rules-live.json");
        let _ = std::fs::remove_file(&out);
        let rules = dir().join("sentinel.yaml");
        std::fs::write(
            &rules,
            format!(
                "- rule: Kestrel test sentinel\n  desc: marks a point the agent reached\n  \
                 condition: evt.type = execve and proc.name = {SENTINEL}\n  \
                 output: sentinel %proc.args\n  priority: DEBUG\n\
                 - rule: Failed open of a missing file\n  desc: Falco's open_file_failed\n  \
                 condition: evt.type in (open, openat, openat2) and fd.typechar = f and fd.num = -1 \
                 and evt.res startswith E and fd.name startswith /etc/kestrel-missing-\n  \
                 output: missing %fd.name\n  priority: NOTICE\n"
            ),
        )
        .unwrap();
        let shipped = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/configs/rules/kestrel_rules.yaml"
        );
        let port = prom::free_port();
        let listen = format!("127.0.0.1:{port}");
        let agent = spawn_agent(
            &out,
            &[
                "--prometheus",
                &listen,
                "--rules",
                shipped,
                "--rules",
                rules.to_str().unwrap(),
                "--interval",
                "1h",
                "--outputs-rate",
                "0",
                // Every matching rule alerts: with `first` a sentinel run
                // from a temporary directory (a clone under /tmp) would only
                // fire "Execution from a temporary directory".
                "--rule-matching",
                "all",
            ],
        );
        wait_for_lines(&out, 1, Duration::from_secs(30));
        let sentinel = copy_as("/bin/true", &dir(), SENTINEL);
        Session {
            out,
            agent,
            port,
            sentinel,
            seen: 0,
            n: 0,
        }
    }

    /// Runs the sentinel and returns the alerts since the previous one.
    fn mark(&mut self) -> Vec<Value> {
        self.n += 1;
        let tag = format!("mark-{}", self.n);
        run(&self.sentinel, &[&tag]);
        let out = self.out.clone();
        let found = wait_until(Duration::from_secs(10), || {
            json_lines(&out).iter().any(|v| {
                v["rule"] == "Kestrel test sentinel" && v["output_fields"]["proc.args"] == tag
            })
        });
        assert!(found.is_some(), "the sentinel {tag} never alerted");
        let all = json_lines(&self.out);
        let end = all
            .iter()
            .position(|v| v["output_fields"]["proc.args"] == tag)
            .unwrap();
        let batch = all[self.seen..end]
            .iter()
            // The sentinel's own exec may match other rules too (it runs
            // from /tmp in a clone there): those are not the case's alerts.
            .filter(|v| {
                v["rule"] != "Kestrel test sentinel"
                    && v["rule"] != SNAPSHOT_RULE
                    && v["output_fields"]["proc.name"] != SENTINEL
            })
            .cloned()
            .collect();
        self.seen = end + 1;
        batch
    }

    /// The twin must not fire `rule`; the attack must, once at least.
    fn case(&mut self, rule: &str, twin: impl FnOnce(), attack: impl FnOnce()) -> Value {
        twin();
        let quiet = self.mark();
        assert!(
            !quiet.iter().any(|v| v["rule"] == rule),
            "benign twin fired '{rule}': {quiet:?}"
        );
        attack();
        let loud = self.mark();
        let hit = loud.iter().find(|v| v["rule"] == rule);
        hit.unwrap_or_else(|| panic!("'{rule}' did not fire; alerts: {loud:?}"))
            .clone()
    }
}

fn fields(v: &Value) -> &Value {
    &v["output_fields"]
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn default_rules_fire_on_attacks_and_stay_quiet_on_twins() {
    let _g = probe_lock();
    let memfd = build("memfd_exec");
    let ptrace = build("ptrace_attach");
    let reverse = build("reverse_shell");
    let mut s = Session::start();

    // A shell below a daemon: a copy of sh named like one, outside any
    // temporary directory (that has a rule of its own).
    let daemons = dir().join("daemons");
    let lighttpd = copy_as("/bin/sh", &daemons, "lighttpd");
    let worker = copy_as("/bin/sh", &daemons, "worker");
    let v = s.case(
        "Run shell untrusted",
        || run(&worker, &["-c", "sh -c true; true"]),
        || run(&lighttpd, &["-c", "sh -c true; true"]),
    );
    assert_eq!(v["priority"], "Notice");
    assert_eq!(fields(&v)["proc.name"], "sh");
    assert_eq!(fields(&v)["proc.pname"], "lighttpd");
    assert_eq!(fields(&v)["proc.cmdline"], "sh -c true");
    assert_eq!(fields(&v)["evt.type"], "execve");

    // Execution from /dev/shm.
    let shm = copy_as("/bin/true", Path::new("/dev/shm"), "kestrel-payload");
    let v = s.case(
        "Execution from /dev/shm",
        || run("/bin/true", &[]),
        || run(&shm, &[]),
    );
    assert_eq!(v["priority"], "Warning");
    assert_eq!(fields(&v)["proc.exepath"], shm.as_str());
    let _ = std::fs::remove_file(&shm);

    // The edge variant: /tmp.
    let tmpdir = Path::new("/tmp").join(format!("kestrel-rules-{}", std::process::id()));
    let in_tmp = copy_as("/bin/true", &tmpdir, "dropper");
    let v = s.case(
        "Execution from a temporary directory",
        || run("/bin/true", &[]),
        || run(&in_tmp, &[]),
    );
    assert_eq!(fields(&v)["proc.name"], "dropper");
    let _ = std::fs::remove_dir_all(&tmpdir);

    // Fileless execution via memfd_create.
    let v = s.case(
        "Fileless execution via memfd_create",
        || run(&memfd, &["/bin/true", "file"]),
        || run(&memfd, &["/bin/true"]),
    );
    assert_eq!(v["priority"], "Critical");
    assert!(fields(&v)["proc.exepath"]
        .as_str()
        .unwrap()
        .contains("memfd:"));
    assert_eq!(fields(&v)["evt.arg.flags"], "EXE_FROM_MEMFD");

    // /etc/shadow read by an untrusted program.
    let v = s.case(
        "Read sensitive file untrusted",
        || run("/bin/cat", &["/etc/hostname"]),
        || run("/bin/cat", &["/etc/shadow"]),
    );
    assert_eq!(fields(&v)["fd.name"], "/etc/shadow");
    assert_eq!(fields(&v)["proc.name"], "cat");
    assert_eq!(fields(&v)["user.uid"], 0);
    assert_eq!(fields(&v)["user.name"], "root");

    // ptrace attach.
    let v = s.case(
        "PTRACE attached to process",
        || run(&ptrace, &["benign"]),
        || run(&ptrace, &[]),
    );
    assert_eq!(fields(&v)["evt.type"], "ptrace");
    assert_eq!(fields(&v)["proc.name"], "ptrace_attach");

    // A reverse shell to a listener on 127.0.0.1.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    // The clients' ports, as the listener saw them: the twin's, then the attack's.
    let accept = std::thread::spawn(move || {
        l.incoming()
            .take(2)
            .map(|c| c.unwrap().peer_addr().unwrap().port())
            .collect::<Vec<u16>>()
    });
    let v = s.case(
        "Redirect STDOUT/STDIN to Network Connection",
        || run(&reverse, &["127.0.0.1", &port, "benign"]),
        || run(&reverse, &["127.0.0.1", &port]),
    );
    let client_port = accept.join().unwrap()[1];
    assert_eq!(fields(&v)["fd.type"], "ipv4");
    assert_eq!(fields(&v)["fd.sip"], "127.0.0.1");
    assert_eq!(fields(&v)["fd.rport"].to_string(), port);
    assert_eq!(
        fields(&v)["fd.name"],
        format!("127.0.0.1:{client_port}->127.0.0.1:{port}")
    );
    assert_eq!(fields(&v)["fd.lport"], client_port);
    assert!(["dup2", "dup3"].contains(&fields(&v)["evt.type"].as_str().unwrap()));

    // A failed open still names its path (Falco's open_file_failed macro).
    let missing = format!("/etc/kestrel-missing-{}", std::process::id());
    let v = s.case(
        "Failed open of a missing file",
        || run("/bin/cat", &["/etc/hostname"]),
        || run("/bin/cat", &[&missing]),
    );
    assert_eq!(fields(&v)["fd.name"], missing.as_str());
    assert!(v["output"]
        .as_str()
        .unwrap()
        .ends_with(&format!("missing {missing}")));

    // Log truncation.
    let log = format!("/var/log/kestrel-test-{}.log", std::process::id());
    // Created for appending: a write that truncates is the attack itself.
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    let v = s.case(
        "Clear Log Activities",
        || run("/bin/sh", &["-c", &format!("echo y >> {log}")]),
        || run("/bin/sh", &["-c", &format!(": > {log}")]),
    );
    assert_eq!(fields(&v)["fd.name"], log.as_str());
    let _ = std::fs::remove_file(&log);

    // grep for private keys.
    let v = s.case(
        "Search Private Keys or Passwords",
        || run("/bin/grep", &["-r", "hello", "/dev/null"]),
        || run("/bin/grep", &["-r", "BEGIN RSA PRIVATE", "/dev/null"]),
    );
    assert_eq!(fields(&v)["proc.name"], "grep");

    // Bulk data removal.
    let victim = tmp("shred-me");
    std::fs::write(&victim, "secret").unwrap();
    let v = s.case(
        "Remove Bulk Data from Disk",
        || run("/bin/rm", &["-f", "/nonexistent-kestrel"]),
        || run("/usr/bin/shred", &["-u", &victim]),
    );
    assert_eq!(fields(&v)["proc.name"], "shred");

    // The rule counters: /metrics without waiting for a snapshot (it is
    // re-rendered within a second of a match), then the final snapshot.
    let mut metrics = String::new();
    let counted = wait_until(Duration::from_secs(5), || {
        metrics = prom::wait_scrape(s.port, Duration::from_secs(5));
        metrics.contains("rule_name=\"Remove Bulk Data from Disk\"")
    });
    assert!(counted.is_some(), "no rule series in /metrics:\n{metrics}");
    let shadow = metrics
        .lines()
        .find(|l| {
            l.starts_with("falcosecurity_falco_rules_matches_total{")
                && l.contains("Read sensitive file untrusted")
        })
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(shadow.contains("priority=\"4\""), "{shadow}");
    assert!(shadow.contains("source=\"syscall\""), "{shadow}");
    assert!(shadow.contains("tag_T1555=\"true\""), "{shadow}");
    assert!(prom::series(&metrics, "kestrel_alerts_emitted_total").unwrap() >= 11.0);
    let out = s.out.clone();
    let status = s.agent.term();
    assert!(status.success(), "agent exit: {status:?}");
    let last = snapshots(&out).pop().unwrap();
    let rules_fired = json_lines(&out)
        .iter()
        .filter(|v| v["rule"] != SNAPSHOT_RULE)
        .count() as u64;
    assert_eq!(field(&last, "falco.rules.matches_total"), rules_fired);
    assert!(field(&last, "falco.rules.Read_sensitive_file_untrusted") >= 1);
    assert!(
        field(
            &last,
            "falco.rules.Redirect_STDOUT_STDIN_to_Network_Connection"
        ) >= 1
    );
    assert!(field(&last, "kestrel.rules_loaded") >= 14);
    assert_eq!(field(&last, "kestrel.rules_skipped"), 0);
}
