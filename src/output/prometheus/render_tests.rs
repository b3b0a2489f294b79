//! The rendered text: Falco's family names and types, one HELP/TYPE per
//! family, samples grouped under their family, escaping, knobs, culprits.

use super::*;
use crate::capture::{KernelCounters, ProgStats};
use crate::state::StateCounters;

pub(super) fn host() -> HostInfo {
    HostInfo {
        hostname: "gw\"1\\\n".into(),
        kernel_release: "6.18.0".into(),
        num_cpus: 2,
        start_ts_ns: 1_700_000_000_000_000_000,
        reload_ts_ns: 1_700_000_000_000_000_000,
        netinfo: vec![],
    }
}

fn res() -> ResourceSample {
    ResourceSample {
        cpu_usage_perc: 1.5,
        memory_rss_kb: 3000,
        host_boot_ts_ns: 1_600_000_000_000_000_000,
        procs_running_host: 3,
        ..Default::default()
    }
}

const PROGS: [ProgStats; 1] = [ProgStats {
    name: "sys_exit",
    run_cnt: 10,
    run_time_ns: 480,
}];

pub(super) fn text(cfg: &MetricsConfig, culprits: Option<&Culprits<'_>>) -> String {
    text_named(cfg, culprits, false)
}

fn text_named(cfg: &MetricsConfig, culprits: Option<&Culprits<'_>>, strict_names: bool) -> String {
    let mut kernel = KernelCounters {
        n_evts: 12345,
        n_drops_buffer_total: 16,
        ..Default::default()
    };
    kernel.n_drops_buffer[3] = [2, 5];
    kernel.n_drops_buffer[7] = [0, 9];
    text_kernel(cfg, culprits, strict_names, kernel)
}

pub(super) fn text_kernel(
    cfg: &MetricsConfig,
    culprits: Option<&Culprits<'_>>,
    strict_names: bool,
    kernel: KernelCounters,
) -> String {
    let inputs = test_inputs(kernel);
    let (h, r) = (host(), res());
    let v = View {
        cfg,
        host: &h,
        inputs: &inputs,
        resources: Some(&r),
        culprits,
        server: Some(&ServerStats::default()),
        now_real_ns: h.start_ts_ns + 61_500_000_000,
        strict_names,
    };
    let mut out = Vec::new();
    render(&v, &mut out);
    String::from_utf8(out).unwrap()
}

/// Checks the exposition structure and returns (family, type, samples).
pub(super) fn families(t: &str) -> Vec<(String, String, Vec<String>)> {
    let mut fams: Vec<(String, String, Vec<String>)> = Vec::new();
    let mut lines = t.lines().peekable();
    while let Some(l) = lines.next() {
        let help = l
            .strip_prefix("# HELP ")
            .unwrap_or_else(|| panic!("HELP expected: {l}"));
        let name = help.split(' ').next().unwrap().to_string();
        assert!(!fams.iter().any(|f| f.0 == name), "{name} twice");
        assert!(
            name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "{name}"
        );
        let ty = lines
            .next()
            .unwrap()
            .strip_prefix(&format!("# TYPE {name} "))
            .unwrap();
        let mut samples = Vec::new();
        while lines.peek().is_some_and(|l| !l.starts_with('#')) {
            let s = lines.next().unwrap();
            let rest = s.strip_prefix(name.as_str()).unwrap();
            assert!(rest.starts_with(' ') || rest.starts_with('{'), "{s}");
            let value = s.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{s}");
            samples.push(s.to_string());
        }
        assert!(!samples.is_empty(), "{name} has no sample");
        fams.push((name, ty.to_string(), samples));
    }
    fams
}

pub(super) fn value(t: &str, series: &str) -> String {
    let l = t
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{t}"));
    l.rsplit(' ').next().unwrap().to_string()
}

#[test]
fn falco_names_types_and_one_help_per_family() {
    let cfg = MetricsConfig {
        libbpf_stats_enabled: true,
        ..Default::default()
    };
    let t = text(&cfg, None);
    let fams = families(&t);
    let mut got: Vec<String> = fams.iter().map(|f| format!("{} {}", f.0, f.1)).collect();
    got.sort();
    let mut want: Vec<&str> = "falcosecurity_evt_hostname_info gauge
falcosecurity_falco_container_memory_used_bytes gauge
falcosecurity_falco_cpu_usage_ratio gauge
falcosecurity_falco_duration_seconds_total counter
falcosecurity_falco_evt_source_info gauge
falcosecurity_falco_host_boot_timestamp_nanoseconds gauge
falcosecurity_falco_host_cpu_usage_ratio gauge
falcosecurity_falco_host_memory_used_bytes gauge
falcosecurity_falco_host_num_cpus_total gauge
falcosecurity_falco_host_open_fds_total gauge
falcosecurity_falco_host_procs_running_total gauge
falcosecurity_falco_kernel_release_info gauge
falcosecurity_falco_memory_pss_bytes gauge
falcosecurity_falco_memory_rss_bytes gauge
falcosecurity_falco_memory_vsz_bytes gauge
falcosecurity_falco_outputs_queue_num_drops_total counter
falcosecurity_falco_reload_timestamp_nanoseconds gauge
falcosecurity_falco_start_timestamp_nanoseconds gauge
falcosecurity_falco_version_info gauge
falcosecurity_scap_engine_name_info gauge
falcosecurity_scap_n_added_fds_total counter
falcosecurity_scap_n_added_threads_total counter
falcosecurity_scap_n_cached_fd_lookups_total counter
falcosecurity_scap_n_cached_thread_lookups_total counter
falcosecurity_scap_n_drops_buffer_total counter
falcosecurity_scap_n_drops_full_threadtable_total counter
falcosecurity_scap_n_drops_scratch_map_total counter
falcosecurity_scap_n_drops_total counter
falcosecurity_scap_n_evts_total counter
falcosecurity_scap_n_failed_fd_lookups_total counter
falcosecurity_scap_n_failed_thread_lookups_total counter
falcosecurity_scap_n_fds_total gauge
falcosecurity_scap_n_noncached_fd_lookups_total counter
falcosecurity_scap_n_noncached_thread_lookups_total counter
falcosecurity_scap_n_removed_fds_total counter
falcosecurity_scap_n_removed_threads_total counter
falcosecurity_scap_n_retrieve_evts_drops_total counter
falcosecurity_scap_n_retrieved_evts_total counter
falcosecurity_scap_n_store_evts_drops_total counter
falcosecurity_scap_n_stored_evts_total counter
falcosecurity_scap_n_threads_total gauge
falcosecurity_scap_sys_exit_avg_time_nanoseconds gauge
falcosecurity_scap_sys_exit_run_cnt_total counter
falcosecurity_scap_sys_exit_run_time_nanoseconds_total counter
kestrel_cgroup_memory_used_bytes gauge
kestrel_mqtt_drops_total counter
kestrel_n_decode_errors_total counter
kestrel_n_drops_bug_total counter
kestrel_n_drops_full_fdtable_total counter
kestrel_n_page_faults_total counter
kestrel_output_write_errors_total counter
kestrel_prometheus_bcrypt_checks_total counter
kestrel_prometheus_open_connections gauge
kestrel_prometheus_render_seconds_total counter
kestrel_prometheus_renders_total counter
kestrel_prometheus_responses_total counter
kestrel_prometheus_tls_handshake_failures_total counter
kestrel_syslog_stream_drops_total counter"
        .lines()
        .collect();
    want.sort();
    assert_eq!(got, want);
    // Counters are counters: every counter ends in _total.
    for f in &fams {
        assert!(f.1 != "counter" || f.0.ends_with("_total"), "{}", f.0);
    }
}

#[test]
fn values_units_and_labels() {
    let t = text(&MetricsConfig::default(), None);
    assert_eq!(value(&t, "falcosecurity_scap_n_evts_total"), "12345");
    assert_eq!(value(&t, "falcosecurity_falco_memory_rss_bytes"), "3072000");
    assert_eq!(value(&t, "falcosecurity_falco_cpu_usage_ratio"), "0.015");
    assert_eq!(
        value(&t, "falcosecurity_falco_duration_seconds_total"),
        "61"
    );
    assert_eq!(value(&t, "falcosecurity_scap_n_threads_total"), "42");
    assert_eq!(
        value(
            &t,
            "falcosecurity_scap_n_drops_buffer_total{dir=\"enter\",drop=\"open\"}"
        ),
        "2"
    );
    assert_eq!(
        value(
            &t,
            "falcosecurity_scap_n_drops_buffer_total{dir=\"exit\",drop=\"open\"}"
        ),
        "5"
    );
    // Falco's regex turns n_drops_buffer_proc_exit into drop="proc".
    assert_eq!(
        value(
            &t,
            "falcosecurity_scap_n_drops_buffer_total{dir=\"exit\",drop=\"proc\"}"
        ),
        "9"
    );
    let drops = t
        .lines()
        .filter(|l| l.starts_with("falcosecurity_scap_n_drops_buffer_total{"))
        .count();
    assert_eq!(
        drops,
        2 * crate::capture::KC_MAX - 1,
        "every category both ways, process exit only"
    );
    assert!(
        t.contains("falcosecurity_evt_hostname_info{hostname=\"gw\\\"1\\\\\\n\"} 1\n"),
        "{t}"
    );
    assert!(t.contains(
        "falcosecurity_scap_engine_name_info{engine_name=\"kestrel_bpf\",evt_source=\"syscall\"} 1\n"
    ));
    assert!(!t.contains("run_cnt"), "libbpf stats off by default");
    assert!(
        !t.contains("_prev") && !t.contains("rate"),
        "no derived rates"
    );
}

#[test]
fn knobs_remove_their_families() {
    let cfg = MetricsConfig {
        resource_utilization_enabled: false,
        state_counters_enabled: false,
        kernel_event_counters_enabled: false,
        ..Default::default()
    };
    let t = text(&cfg, None);
    families(&t);
    for gone in [
        "memory_rss",
        "n_evts",
        "n_threads",
        "n_drops",
        "kestrel_syscall",
    ] {
        assert!(!t.contains(gone), "{gone}");
    }
    assert!(t.contains("falcosecurity_falco_version_info"));
}

#[test]
fn culprits_render_when_present_and_are_capped() {
    let names: Vec<String> = (0..MAX_CULPRITS + 10).map(|i| format!("sys{i}")).collect();
    let mut sys: Vec<SyscallCount<'_>> = names
        .iter()
        .enumerate()
        .map(|(i, n)| SyscallCount {
            name: n,
            abi: "64",
            calls: 100 - i as u64,
        })
        .collect();
    sys[0].name = "getppid";
    let procs = [ProcessCount {
        pid: 4242,
        comm: "busy\"box",
        events: 99,
        drops: 3,
        syscalls: 2_500_032,
    }];
    let calls = [ProcessCalls {
        pid: 4242,
        comm: "busy\"box",
        calls: 9_000_064,
    }];
    let c = Culprits {
        syscalls: &sys,
        processes: &procs,
        process_calls: &calls,
    };
    let t = text(&MetricsConfig::default(), Some(&c));
    let fams = families(&t);
    let f = fams
        .iter()
        .find(|f| f.0 == "kestrel_syscall_calls_total")
        .unwrap();
    assert_eq!(
        f.2.len(),
        MAX_CULPRITS + 10,
        "every exported syscall (the tables bound them)"
    );
    assert_eq!(
        value(
            &t,
            "kestrel_syscall_calls_total{abi=\"64\",syscall=\"getppid\"}"
        ),
        "100"
    );
    for (family, want) in [
        ("kestrel_process_interval_events", "99"),
        ("kestrel_process_interval_drops", "3"),
        ("kestrel_process_interval_syscalls", "2500032"),
        ("kestrel_process_syscalls_total", "9000064"),
    ] {
        let series = format!("{family}{{comm=\"busy\\\"box\",pid=\"4242\"}}");
        assert_eq!(value(&t, &series), want, "{series}");
    }
    let empty = Culprits {
        syscalls: &[],
        processes: &[],
        process_calls: &[],
    };
    let t = text(&MetricsConfig::default(), Some(&empty));
    assert!(!t.contains("kestrel_syscall") && !t.contains("kestrel_process_"));
}

#[test]
fn strict_names_use_base_units_and_no_total_on_gauges() {
    let cfg = MetricsConfig {
        libbpf_stats_enabled: true,
        ..Default::default()
    };
    let t = text_named(&cfg, None, true);
    let fams = families(&t);
    for f in &fams {
        assert!(!f.0.contains("nanoseconds"), "{}", f.0);
        assert!(f.1 == "counter" || !f.0.ends_with("_total"), "{}", f.0);
    }
    assert_eq!(value(&t, "falcosecurity_scap_n_threads"), "42");
    assert_eq!(
        value(&t, "falcosecurity_scap_sys_exit_run_time_seconds_total"),
        "0.00000048"
    );
    assert_eq!(
        value(&t, "falcosecurity_scap_sys_exit_avg_time_seconds"),
        "0.000000048"
    );
    assert_eq!(
        value(&t, "falcosecurity_falco_start_timestamp_seconds"),
        "1700000000"
    );
    assert_eq!(value(&t, "falcosecurity_scap_n_evts_total"), "12345");
    assert_eq!(fams.len(), families(&text(&cfg, None)).len());
}

pub(super) fn test_inputs(kernel: KernelCounters) -> Inputs<'static> {
    Inputs {
        kestrel_n_fds: 17,
        num_evts: 12338,
        num_compat_evts: 0,
        num_evts_no_enter: 0,
        enter_events: false,
        attach: "tp_btf",
        culprits: None,
        rules: None,
        rules_counters: true,
        outputs_queue_num_drops: 0,
        output_write_errors: 1,
        mqtt_drops: 0,
        syslog_stream_drops: 0,
        kernel,
        per_cpu: &[],
        state: StateCounters {
            n_added_threads: 4,
            ..Default::default()
        },
        n_threads: 42,
        n_fds: 17,
        progs: &PROGS,
    }
}
