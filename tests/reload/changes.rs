//! The exporter and the rules changed by a reload (main.rs has the
//! helpers): a new port serves and the old refuses, a web config is read
//! again, a new rule fires and rules that do not load keep the old ones.

use std::time::Duration;

use super::common::{
    field, json_lines, probe_lock, prom, snapshots, tmp, wait_for_snapshots, wait_until,
};
use super::{hup_and_wait, log, start};

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn prometheus_port_moves_and_turns_off_live() {
    let _g = probe_lock();
    let (conf, out, err) = (tmp("prom.toml"), tmp("prom.json"), tmp("prom.err"));
    let (p1, p2) = (prom::free_port(), prom::free_port());
    let with = |port: Option<u16>| {
        let listen = port.map_or(String::new(), |p| {
            format!("prometheus = \"127.0.0.1:{p}\"\n")
        });
        format!("interval = \"1s\"\noutput = [\"file:{out}\"]\n{listen}")
    };
    std::fs::write(&conf, with(Some(p1))).unwrap();
    let agent = start(&conf, &err);
    let first = prom::wait_scrape(p1, Duration::from_secs(30));
    let evts = |t: &str| prom::series(t, "falcosecurity_scap_n_evts_total").unwrap_or(0.0);
    hup_and_wait(&agent, &conf, &err, &with(Some(p2)));
    let second = prom::wait_scrape(p2, Duration::from_secs(10));
    assert!(
        prom::http_get(p1, "/metrics").is_none(),
        "the old port still answers"
    );
    assert!(evts(&second) >= evts(&first), "counters go on");
    assert!(log(&err).contains(&format!(
        "serving Prometheus metrics on http://127.0.0.1:{p2}/metrics"
    )));
    // A port another socket holds: the running exporter stays.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = held.local_addr().unwrap().port();
    hup_and_wait(&agent, &conf, &err, &with(Some(busy)));
    assert!(
        log(&err).contains("the running exporter stays"),
        "{}",
        log(&err)
    );
    assert!(prom::http_get(p2, "/metrics").is_some_and(|r| r.0 == 200));
    // Basic auth from a web config, then the same file rewritten for
    // another user: a reload reads it again.
    let web = tmp("prom-web.yml");
    let users = |who: &str| {
        let hash = bcrypt::hash("secret", 4).unwrap();
        std::fs::write(&web, format!("basic_auth_users:\n  {who}: {hash}\n")).unwrap();
    };
    let as_alice = || get_as(p2, "YWxpY2U6c2VjcmV0"); // alice:secret
    users("alice");
    let with_web = format!("{}prometheus-web-config = \"{web}\"\n", with(Some(p2)));
    hup_and_wait(&agent, &conf, &err, &with_web);
    assert_eq!(prom::http_get(p2, "/metrics").map(|r| r.0), Some(401));
    assert_eq!(as_alice(), Some(200));
    users("bob");
    hup_and_wait(&agent, &conf, &err, &with_web);
    assert_eq!(as_alice(), Some(401), "the web config was not read again");
    // Off: the endpoint closes, the agent goes on.
    hup_and_wait(&agent, &conf, &err, &with(None));
    assert!(prom::http_get(p2, "/metrics").is_none());
    let n = snapshots(&out).len();
    wait_for_snapshots(&out, n + 1, Duration::from_secs(5));
    assert!(agent.term().success());
    let log = log(&err);
    assert!(log.contains("the Prometheus exporter is off"), "{log}");
    assert_eq!(log.matches("config reload: applied").count(), 5, "{log}");
}

/// GET /metrics with Basic credentials (base64 of USER:PASSWORD): the status.
fn get_as(port: u16, basic: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Basic {basic}\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    String::from_utf8_lossy(&raw)
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn rules_change_live_and_a_bad_file_keeps_them() {
    let _g = probe_lock();
    let (conf, out, err) = (tmp("rules.toml"), tmp("rules.json"), tmp("rules.err"));
    let target = tmp("reload-rule-target");
    std::fs::write(&target, b"x").unwrap();
    let rule = |name: &str, path: &str| {
        format!(
            "- rule: {name}\n  desc: a reload test\n  \
             condition: evt.type in (open, openat, openat2, sysinfo) and fd.name = {path}\n  \
             output: opened %fd.name\n  priority: WARNING\n"
        )
    };
    let (without, with, bad) = (
        tmp("rules-a.yaml"),
        tmp("rules-b.yaml"),
        tmp("rules-bad.yaml"),
    );
    std::fs::write(&without, rule("Reload other", "/nonexistent/kestrel")).unwrap();
    let both = rule("Reload other", "/nonexistent/kestrel") + &rule("Reload target", &target);
    std::fs::write(&with, both).unwrap();
    std::fs::write(&bad, "- rule: broken\n  condition: evt.type = = openat\n").unwrap();
    let cfg = |rules: &str| {
        format!(
            "interval = \"300ms\"\noutput = [\"file:{out}\"]\nrules = [\"{rules}\"]\noutputs-rate = 0\n"
        )
    };
    std::fs::write(&conf, cfg(&without)).unwrap();
    let agent = start(&conf, &err);
    wait_for_snapshots(&out, 2, Duration::from_secs(30));
    let fired = || {
        json_lines(&out)
            .iter()
            .filter(|v| v["rule"] == "Reload target")
            .count()
    };
    let touch = || drop(std::fs::File::open(&target).unwrap());
    touch();
    let n = snapshots(&out).len();
    wait_for_snapshots(&out, n + 2, Duration::from_secs(5));
    assert_eq!(fired(), 0, "not loaded yet");

    hup_and_wait(&agent, &conf, &err, &cfg(&with));
    let seen = wait_until(Duration::from_secs(10), || {
        touch();
        fired() > 0
    });
    assert!(seen.is_some(), "the new rule never fired:\n{}", log(&err));
    let count = |s: &serde_json::Value| field(s, "falco.rules.Reload_target");
    let wait_count = || {
        let n = snapshots(&out).len();
        wait_for_snapshots(&out, n + 2, Duration::from_secs(5));
        count(snapshots(&out).last().unwrap())
    };
    let before = wait_count();
    assert!(before > 0);

    // Rules that do not load: one line, the running rules go on.
    hup_and_wait(&agent, &conf, &err, &cfg(&bad));
    let n = fired();
    touch();
    assert!(wait_until(Duration::from_secs(10), || fired() > n).is_some());
    let after = wait_count();
    assert!(
        after > before,
        "the rule's counter goes on: {before} -> {after}"
    );
    assert!(agent.term().success());
    let log = log(&err);
    let kept: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("the running configuration stays"))
        .collect();
    assert_eq!(kept.len(), 1, "{log}");
    assert!(
        kept[0].contains("rules: ") && kept[0].contains("rules-bad.yaml"),
        "{log}"
    );
    assert_eq!(log.matches("config reload: applied").count(), 1, "{log}");
    // The start's warning (sysinfo is not captured) is not said again by the
    // reload, which says only the new rule's.
    assert_eq!(
        log.matches("rule 'Reload other': evt.type sysinfo not captured")
            .count(),
        1,
        "{log}"
    );
    assert_eq!(
        log.matches("rule 'Reload target': evt.type sysinfo not captured")
            .count(),
        1,
        "{log}"
    );
    assert!(
        log.contains("(1 warning and skip lines as before)"),
        "{log}"
    );
    // Every snapshot after the change counts the rule; the count never drops.
    let counts: Vec<u64> = snapshots(&out).iter().map(count).collect();
    assert!(counts.windows(2).all(|w| w[1] >= w[0]), "{counts:?}");
}
