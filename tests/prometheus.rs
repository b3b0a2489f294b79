//! The exporter against real peers: promtool lints a scrape taken under load,
//! and a real Prometheus server scrapes the agent for several intervals and
//! answers queries about it. Root is needed (the probe is loaded): they are
//! #[ignore]d and scripts/test.sh runs them. scripts/test.sh installs Debian's
//! `prometheus` package, which brings both binaries.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::prom::{
    free_port, http_get, prom_query, promtool, require_tool, series, spawn_exporter, wait_scrape,
    Workload,
};
use common::SpawnGuarded;
use common::{bin, probe_lock, tmp, Guard};

/// The only findings promtool may report on Falco's exact names: its gauges
/// that carry `_total` and its nanosecond units. Anything else is ours.
fn falco_inherited(line: &str) -> bool {
    let name = line.split(' ').next().unwrap_or("");
    let total_gauges = [
        "falcosecurity_scap_n_threads_total",
        "falcosecurity_scap_n_fds_total",
        "falcosecurity_falco_host_num_cpus_total",
        "falcosecurity_falco_host_procs_running_total",
        "falcosecurity_falco_host_open_fds_total",
    ];
    (total_gauges.contains(&name)
        && line.ends_with("non-counter metrics should not have \"_total\" suffix"))
        || (name.starts_with("falcosecurity_")
            && name.contains("_nanoseconds")
            && line.ends_with("use base unit \"seconds\" instead of \"nanoseconds\""))
}

/// The exporter with `args`, once /metrics answers: (agent, port).
fn exporter_up(args: &[&str]) -> (Guard, u16) {
    let port = free_port();
    let agent = spawn_exporter(port, args);
    wait_scrape(port, Duration::from_secs(20));
    (agent, port)
}

/// A scrape taken two 500 ms intervals after the exporter answered.
fn scrape_after_two_intervals(args: &[&str]) -> (Guard, String) {
    let (agent, port) = exporter_up(&[&["--interval", "500ms"], args].concat());
    std::thread::sleep(Duration::from_millis(1200));
    (agent, wait_scrape(port, Duration::from_secs(5)))
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn promtool_finds_nothing_wrong_in_scrapes_under_load() {
    let _g = probe_lock();
    require_tool("promtool", "--version");
    let wl = Workload::start(tmp("pt-wl"), 20_000);
    // Strict names: promtool must say nothing at all.
    let (agent, body) = scrape_after_two_intervals(&[
        "--libbpf-stats-enabled",
        "true",
        "--prometheus-names",
        "strict",
    ]);
    assert!(series(&body, "falcosecurity_scap_n_evts_total").unwrap() > 0.0);
    assert!(
        body.contains("falcosecurity_scap_sys_exit_run_cnt_total "),
        "libbpf stats rendered"
    );
    let (ok, said) = promtool(&body);
    assert!(
        ok && said.trim().is_empty(),
        "promtool on strict names:\n{said}"
    );
    assert!(agent.term().success());

    // Falco's names (the default), over HTTP and in the textfile: no parse
    // error, and nothing but the findings Falco's own names carry.
    let file = tmp("k.prom");
    let (agent, body) = scrape_after_two_intervals(&[
        "--libbpf-stats-enabled",
        "true",
        "--output",
        &format!("prometheus-textfile:{file}"),
    ]);
    let text = std::fs::read_to_string(&file).unwrap();
    for (what, t) in [("scrape", &body), ("textfile", &text)] {
        let (_, said) = promtool(t);
        let ours: Vec<&str> = said.lines().filter(|l| !falco_inherited(l)).collect();
        assert!(ours.is_empty(), "promtool on the {what}:\n{said}");
        assert!(
            said.lines().count() >= 5,
            "Falco's known findings are there: {said}"
        );
    }
    assert!(agent.term().success());
    wl.stop();
}

#[test]
#[cfg_attr(not(kestrel_ci), ignore = "needs root: loads the probe")]
fn a_real_prometheus_scrapes_the_agent_and_sees_events_grow() {
    let _g = probe_lock();
    require_tool("prometheus", "--version");
    let wl = Workload::start(tmp("ps-wl"), 5_000);
    let (agent, port) = exporter_up(&["--interval", "1s"]);

    let dir = tmp("prom-server");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = format!("{dir}/prometheus.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: kestrel\n    \
             static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .unwrap();
    let pport = free_port();
    let server = Command::new("prometheus")
        .arg(format!("--config.file={cfg}"))
        .arg(format!("--storage.tsdb.path={dir}/data"))
        .arg(format!("--web.listen-address=127.0.0.1:{pport}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn_guarded();
    // Several scrapes: the value must rise at least three times.
    let t = Instant::now();
    let mut seen: Vec<f64> = Vec::new();
    while seen.len() < 4 {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "Prometheus saw falcosecurity_scap_n_evts_total only as {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
        if let Some(v) = prom_query(pport, "falcosecurity_scap_n_evts_total{job=\"kestrel\"}") {
            if seen.last().is_none_or(|&l| v > l) {
                seen.push(v);
            }
        }
    }
    eprintln!("n_evts as Prometheus scraped it: {seen:?}");
    assert_eq!(prom_query(pport, "up{job=\"kestrel\"}"), Some(1.0));
    // PromQL does the rate the exporter leaves out.
    let rate = prom_query(pport, "rate(falcosecurity_scap_n_evts_total[5s])").unwrap_or(0.0);
    assert!(rate > 1000.0, "rate {rate}");
    // Every row of enum kestrel_category both ways, process exit only:
    // Falco's 14 series and Kestrel's own (dup, socket, other, close enter).
    let buckets = 2 * kestrel::capture::KC_MAX - 1;
    assert_eq!(
        prom_query(pport, "count(falcosecurity_scap_n_drops_buffer_total)"),
        Some(buckets as f64),
        "every drop category, labelled as Falco does"
    );
    assert_eq!(
        prom_query(
            pport,
            "count(falcosecurity_falco_memory_rss_bytes > 100000)"
        ),
        Some(1.0)
    );
    // The culprit series: the workload's syscalls counted, its process listed.
    let calls = prom_query(pport, "sum(kestrel_syscall_calls_total{job=\"kestrel\"})");
    assert!(
        calls.unwrap_or(0.0) > 0.0,
        "culprit syscall series: {calls:?}"
    );
    let procs = prom_query(
        pport,
        "count(kestrel_process_interval_events{job=\"kestrel\"})",
    );
    assert!(
        procs.unwrap_or(0.0) >= 1.0,
        "culprit process series: {procs:?}"
    );
    // Prometheus itself found nothing wrong with the scrapes.
    let (_, targets) = http_get(pport, "/api/v1/targets").unwrap();
    let v: serde_json::Value = serde_json::from_str(&targets).unwrap();
    let target = &v["data"]["activeTargets"][0];
    assert_eq!(target["health"], "up", "{target}");
    assert_eq!(target["lastError"], "", "{target}");
    drop(server);
    assert!(agent.term().success());
    wl.stop();
}

#[test]
fn bad_or_busy_listen_addresses_fail_before_the_probe_loads() {
    // Neither needs root: both are refused before the probe is touched.
    let out = Command::new(bin())
        .args(["run", "--prometheus", "localhost:9376"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no host names"), "{err}");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let out = Command::new(bin())
        .args(["run", "--prometheus", &format!(":{port}")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
}
