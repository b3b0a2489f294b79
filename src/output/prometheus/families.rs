//! The snapshot's families, section by section, each with the libs or
//! Falco source its names come from. `render` calls them in Falco's order.

use super::render::{Culprits, Kind, ServerStats, Text, Val, MAX_CULPRITS, STATUS_CODES};
use crate::capture::{KernelCounters, ProgStats};
use crate::metrics::culprits::MAX_EXPORTED;
use crate::metrics::resources::ResourceSample;
use crate::metrics::schema::{has_enter_side, prometheus_drop_label};
use crate::metrics::Inputs;
use std::io::Write as _;
use Kind::{Counter, Gauge};
use Val::{F, U};

pub(super) fn kernel(t: &mut Text<'_>, k: &KernelCounters) {
    t.one(
        "falcosecurity_scap_n_evts_total",
        Counter,
        "Events the probe tried to send, dropped ones included.",
        U(k.n_evts),
    );
    // Falco leaves out the n_drops_buffer_total aggregate: it would clash with
    // this family's name. Every row of enum kestrel_category is here, Kestrel's
    // own (dup, socket, other, close enter) beside Falco's, so sum() gives it.
    t.family(
        format_args!("falcosecurity_scap_n_drops_buffer_total"),
        Counter,
        "Events dropped because the ring buffer was full, by category and direction.",
    );
    for (cat, dirs) in k.n_drops_buffer.iter().enumerate() {
        let drop = prometheus_drop_label(cat);
        if has_enter_side(cat) {
            t.sample(&[("dir", "enter"), ("drop", drop)], U(dirs[0]));
        }
        t.sample(&[("dir", "exit"), ("drop", drop)], U(dirs[1]));
    }
    for (name, help, v) in [
        (
            "falcosecurity_scap_n_drops_scratch_map_total",
            "Events too large to send.",
            k.n_drops_scratch_map,
        ),
        // modern_bpf (libpman stats.c, 0.25.4) has neither page-fault nor bug
        // drops; Kestrel's figures keep the JSON's kestrel. names.
        (
            "kestrel_n_page_faults_total",
            "Events sent with a user-memory field that could not be read (not in n_drops).",
            k.n_drops_page_faults,
        ),
        (
            "kestrel_n_drops_bug_total",
            "Events dropped because the probe reached an impossible state.",
            k.n_drops_bug,
        ),
        (
            "falcosecurity_scap_n_drops_total",
            "All events the probe failed to deliver.",
            k.n_drops(),
        ),
    ] {
        t.one(name, Counter, help, U(v));
    }
}

/// Per-CPU counters (Falco 0.39+, falco_metrics.cpp
/// sources_to_text_prometheus): `n_evts_cpu_N` loses its digits to a `cpu`
/// label, so `falcosecurity_scap_n_evts_cpu_total{cpu="7"}`; likewise drops.
pub(super) fn per_cpu(t: &mut Text<'_>, per_cpu: &[(u64, u64)]) {
    if per_cpu.is_empty() {
        return;
    }
    for (name, help, drops) in [
        (
            "falcosecurity_scap_n_evts_cpu_total",
            "Events the probe tried to send on this CPU.",
            false,
        ),
        (
            "falcosecurity_scap_n_drops_cpu_total",
            "Events the probe failed to deliver on this CPU.",
            true,
        ),
    ] {
        t.family(format_args!("{name}"), Counter, help);
        for (cpu, (evts, n_drops)) in per_cpu.iter().enumerate() {
            let mut label: heapless::String<10> = heapless::String::new();
            let _ = std::fmt::Write::write_fmt(&mut label, format_args!("{cpu}"));
            t.sample(&[("cpu", &label)], U(if drops { *n_drops } else { *evts }));
        }
    }
}

/// libpman stats.c, collect_libbpf_stats: `<prog>.run_cnt` (count),
/// `<prog>.run_time_ns` (ns count), `<prog>.avg_time_ns` (ns gauge); the
/// dot becomes `_` in prometheus_sanitize_metric_name.
pub(super) fn progs(t: &mut Text<'_>, progs: &[ProgStats]) {
    for p in progs {
        t.one(
            &format!("falcosecurity_scap_{}_run_cnt_total", p.name),
            Counter,
            "Runs of this BPF program (BPF run-time stats).",
            U(p.run_cnt),
        );
        t.one(
            &format!("falcosecurity_scap_{}_run_time_nanoseconds_total", p.name),
            Counter,
            "Time spent in this BPF program.",
            U(p.run_time_ns),
        );
        t.one(
            &format!("falcosecurity_scap_{}_avg_time_nanoseconds", p.name),
            Gauge,
            "Mean run time of this BPF program since attach.",
            U(p.run_time_ns.checked_div(p.run_cnt).unwrap_or(0)),
        );
    }
}

/// libsinsp linux/resource_utilization.cpp, to_metrics, after the converter's
/// unit convention: kB → bytes, percent → ratio.
pub(super) fn resources(t: &mut Text<'_>, r: &ResourceSample) {
    let kb = |v: u64| U(v.saturating_mul(1024));
    for (name, help, v) in [
        (
            "falcosecurity_falco_cpu_usage_ratio",
            "Agent CPU, lifetime average, share of one CPU.",
            F(r.cpu_usage_perc / 100.0),
        ),
        (
            "falcosecurity_falco_memory_rss_bytes",
            "Agent resident set size.",
            kb(r.memory_rss_kb),
        ),
        (
            "falcosecurity_falco_memory_vsz_bytes",
            "Agent virtual memory size.",
            kb(r.memory_vsz_kb),
        ),
        (
            "falcosecurity_falco_memory_pss_bytes",
            "Agent proportional set size.",
            kb(r.memory_pss_kb),
        ),
        (
            "falcosecurity_falco_container_memory_used_bytes",
            "Falco's container memory: FALCO_CGROUP_MEM_PATH or the cgroup v1 memory root (0 on v2).",
            U(r.container_memory_used_bytes),
        ),
        (
            "kestrel_cgroup_memory_used_bytes",
            "Memory charged to the agent's own cgroup (v1 or v2).",
            U(r.kestrel_cgroup_memory_used_bytes),
        ),
        (
            "falcosecurity_falco_host_cpu_usage_ratio",
            "Host CPU busy share since boot.",
            F(r.cpu_usage_perc_total_host / 100.0),
        ),
        (
            "falcosecurity_falco_host_memory_used_bytes",
            "Host memory used (total - free - buffers - cached).",
            kb(r.memory_used_host_kb),
        ),
        // Falco's names: gauges with a _total suffix (libs maps every count unit to it).
        (
            "falcosecurity_falco_host_procs_running_total",
            "Runnable tasks on the host.",
            U(r.procs_running_host),
        ),
        (
            "falcosecurity_falco_host_open_fds_total",
            "Open files on the host.",
            U(r.open_fds_host),
        ),
    ] {
        t.one(name, Gauge, help, v);
    }
}

/// libsinsp metrics_collector.cpp, libs_state_counters::to_metrics; subsystem scap.
pub(super) fn state(t: &mut Text<'_>, inp: &Inputs<'_>) {
    let s = &inp.state;
    t.one(
        "falcosecurity_scap_n_threads_total",
        Gauge,
        "Threads in the thread table.",
        U(inp.n_threads),
    );
    t.one(
        "falcosecurity_scap_n_fds_total",
        Gauge,
        "Fds in the fd table.",
        U(inp.n_fds),
    );
    for (name, v) in s.libs() {
        t.family(
            format_args!("falcosecurity_scap_{name}_total"),
            Counter,
            "State table counter (see Falco's metrics documentation).",
        );
        t.sample(&[], U(v));
    }
    t.one(
        "kestrel_n_drops_full_fdtable_total",
        Counter,
        "Fds refused because the fd table was full.",
        U(s.n_drops_full_fdtable),
    );
    t.one(
        "kestrel_n_decode_errors_total",
        Counter,
        "Records that failed decoding.",
        U(s.n_decode_errors),
    );
}

pub(super) fn culprits(t: &mut Text<'_>, c: &Culprits<'_>) {
    let sys = &c.syscalls[..c.syscalls.len().min(MAX_EXPORTED)];
    if !sys.is_empty() {
        t.family(
            format_args!("kestrel_syscall_calls_total"),
            Counter,
            "Calls since start, traced or not, of each syscall once among an interval's busiest.",
        );
        for s in sys {
            t.sample(&[("abi", s.abi), ("syscall", s.name)], U(s.calls));
        }
    }
    let calls = &c.process_calls[..c.process_calls.len().min(MAX_CULPRITS)];
    let mut pid_buf = heapless::String::<10>::new();
    if !calls.is_empty() {
        t.family(
            format_args!("kestrel_process_syscalls_total"),
            Counter,
            "Syscalls, traced or not, estimated by sampling (1 in 64 per CPU on average), of each process once among an interval's busiest, while it keeps calling.",
        );
        for p in calls {
            pid_buf.clear();
            let _ = std::fmt::Write::write_fmt(&mut pid_buf, format_args!("{}", p.pid));
            t.sample(&[("comm", p.comm), ("pid", &pid_buf)], U(p.calls));
        }
    }
    let procs = &c.processes[..c.processes.len().min(MAX_CULPRITS)];
    if procs.is_empty() {
        return;
    }
    let mut pids: heapless::Vec<heapless::String<10>, MAX_CULPRITS> = heapless::Vec::new();
    for p in procs {
        let mut s = heapless::String::new();
        let _ = std::fmt::Write::write_fmt(&mut s, format_args!("{}", p.pid));
        let _ = pids.push(s);
    }
    // Per-interval figures (pids come and go): gauges, not counters.
    for (name, help, which) in [
        (
            "kestrel_process_interval_events",
            "Traced events in the last interval of its busiest processes.",
            0,
        ),
        (
            "kestrel_process_interval_drops",
            "Dropped events in the last interval of its busiest processes.",
            1,
        ),
        (
            "kestrel_process_interval_syscalls",
            "Syscalls, traced or not (estimated by sampling), in the last interval of its busiest processes.",
            2,
        ),
    ] {
        t.family(format_args!("{name}"), Gauge, help);
        for (p, pid) in procs.iter().zip(pids.iter()) {
            let v = [p.events, p.drops, p.syscalls][which];
            t.sample(&[("comm", p.comm), ("pid", pid)], U(v));
        }
    }
}

pub(super) fn server(t: &mut Text<'_>, s: &ServerStats) {
    t.family(
        format_args!("kestrel_prometheus_responses_total"),
        Counter,
        "Responses of the /metrics endpoint by status code.",
    );
    for (code, n) in STATUS_CODES.iter().zip(s.responses.iter()) {
        let mut c = [0u8; 3];
        let _ = write!(&mut c[..], "{code}");
        t.sample(&[("code", std::str::from_utf8(&c).unwrap_or("0"))], U(*n));
    }
    t.one(
        "kestrel_prometheus_open_connections",
        Gauge,
        "Connections open to the /metrics endpoint.",
        U(s.open_connections),
    );
    for (name, help, v) in [
        (
            "kestrel_prometheus_tls_handshake_failures_total",
            "TLS connections that ended before their handshake completed.",
            U(s.tls_failures),
        ),
        (
            "kestrel_prometheus_renders_total",
            "Renders of this text for a scrape (besides one per snapshot).",
            U(s.renders),
        ),
        (
            "kestrel_prometheus_render_seconds_total",
            "Time those renders took, counters read included.",
            F(s.render_ns as f64 / 1e9),
        ),
        (
            "kestrel_prometheus_bcrypt_checks_total",
            "Basic auth passwords checked with bcrypt (cache misses).",
            U(s.bcrypt_checks),
        ),
    ] {
        t.one(name, Counter, help, v);
    }
}

/// Rule matches (falco_metrics.cpp, 0.44.1): one series per rule that has
/// matched, priority as its number, each tag a `tag_<tag>="true"` label;
/// then the engine's own counters.
pub(super) fn rules(t: &mut Text<'_>, e: &crate::rules::engine::Engine, counters: bool) {
    const DIGITS: [&str; 8] = ["0", "1", "2", "3", "4", "5", "6", "7"];
    let c = &e.counters;
    if counters {
        t.family(
            format_args!("falcosecurity_falco_rules_matches_total"),
            Counter,
            "Events that matched each rule.",
        );
        for (i, r) in e.set.rules.iter().enumerate() {
            let n = c.by_rule.get(i).copied().unwrap_or(0);
            if n == 0 {
                continue;
            }
            let prio = DIGITS[usize::from(r.priority.severity()) & 7];
            let mut labels = vec![
                ("priority", prio),
                ("rule_name", r.name.as_str()),
                ("source", r.source.as_str()),
            ];
            if let Some(tags) = e.tag_labels.get(i) {
                labels.extend(tags.iter().map(|t| (t.as_str(), "true")));
            }
            labels.sort_by(|a, b| a.0.cmp(b.0));
            labels.dedup_by(|a, b| a.0 == b.0);
            t.sample(&labels, U(n));
        }
    }
    for (name, help, v) in [
        (
            "kestrel_alerts_emitted_total",
            "Alert lines handed to the outputs.",
            c.emitted,
        ),
        (
            "kestrel_alerts_rate_limited_total",
            "Rule matches the alert rate limit suppressed.",
            c.rate_limited,
        ),
        (
            "kestrel_alerts_queue_drops_total",
            "Alerts dropped because the alert queue was full.",
            c.queue_drops,
        ),
    ] {
        t.one(name, Counter, help, U(v));
    }
    t.one(
        "kestrel_rules_loaded",
        Gauge,
        "Rules loaded and enabled.",
        U(e.set.rules.len() as u64),
    );
    t.one(
        "kestrel_rules_skipped",
        Gauge,
        "Rules skipped: they need what Kestrel does not capture.",
        U(e.set.skipped.len() as u64),
    );
}
