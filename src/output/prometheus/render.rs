//! Prometheus text format 0.0.4 of one snapshot, with the family names,
//! labels, units and types Falco 0.39+ exports, so Falco's dashboards work
//! unchanged. Names follow libs' conversion (metrics_collector.cpp,
//! prometheus_metrics_converter::convert_metric_to_text_prometheus and
//! ::convert_metric_to_unit_convention): `falcosecurity_<subsystem>_<name>`,
//! the libs unit suffix replaced by the type's (`_total` for counts,
//! `_bytes` for memory, `_ratio` for percent ÷ 100, `_timestamp_nanoseconds`,
//! `_seconds_total`). Unlike Falco, each family gets one HELP and one TYPE
//! line (Falco repeats them per sample: a text-format violation). Rates,
//! `_prev` values and percentages of deltas are left to PromQL. Every family
//! has a fixed or capped number of series. Runs once per interval.

use std::io::Write as _;

use crate::capture::{KernelCounters, ProgStats};
use crate::metrics::resources::ResourceSample;
use crate::metrics::{HostInfo, Inputs, MetricsConfig, ENGINE_NAME, VERSION};

/// The most culprit series of each kind rendered, whatever the source hands over.
pub const MAX_CULPRITS: usize = 32;

/// Hook for the probe-side culprit counters (top syscalls, top processes).
/// Nothing fills it yet; when `None` no culprit family is rendered.
pub struct Culprits<'a> {
    /// Cumulative calls per syscall, the interval's top K.
    pub syscalls: &'a [SyscallCount<'a>],
    /// Cumulative events and drops per process, the interval's top N.
    pub processes: &'a [ProcessCount<'a>],
}

pub struct SyscallCount<'a> {
    pub name: &'a str,
    pub calls: u64,
}

pub struct ProcessCount<'a> {
    pub pid: u32,
    pub comm: &'a str,
    pub events: u64,
    pub drops: u64,
}

/// The exporter's own request counters, by response status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// 200, 400, 404, 405, 413, 503, in that order.
    pub responses: [u64; 6],
    pub open_connections: u64,
}

pub const STATUS_CODES: [u16; 6] = [200, 400, 404, 405, 413, 503];

/// Everything one rendering reads.
pub struct View<'a> {
    pub cfg: &'a MetricsConfig,
    pub host: &'a HostInfo,
    pub inputs: &'a Inputs<'a>,
    pub resources: Option<&'a ResourceSample>,
    pub culprits: Option<&'a Culprits<'a>>,
    pub server: Option<&'a ServerStats>,
    pub now_real_ns: u64,
    /// Lint-clean names instead of Falco's (see `Text::family`).
    pub strict_names: bool,
}

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

/// Writes families into a reused buffer. `family` starts one (HELP + TYPE),
/// `sample` adds its series; callers keep each family's samples together.
struct Text<'b> {
    out: &'b mut Vec<u8>,
    name: String,
    strict: bool,
    /// Set when a strict name moved the family from ns to s.
    to_seconds: bool,
}

#[derive(Clone, Copy)]
enum Val {
    U(u64),
    F(f64),
}

impl Text<'_> {
    fn family(&mut self, name: std::fmt::Arguments<'_>, kind: Kind, help: &str) {
        self.name.clear();
        let _ = std::fmt::Write::write_fmt(&mut self.name, name);
        self.to_seconds = false;
        // Falco's names break two Prometheus conventions promtool checks:
        // base units (seconds, not nanoseconds) and `_total` only on
        // counters. Strict names fix both, at the cost of Falco's dashboards.
        if self.strict {
            if let Some(i) = self.name.find("_nanoseconds") {
                self.name
                    .replace_range(i..i + "_nanoseconds".len(), "_seconds");
                self.to_seconds = true;
            }
            if matches!(kind, Kind::Gauge) && self.name.ends_with("_total") {
                self.name.truncate(self.name.len() - "_total".len());
            }
        }
        let t = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = write!(
            self.out,
            "# HELP {} {help}\n# TYPE {} {t}\n",
            self.name, self.name
        );
    }

    fn sample(&mut self, labels: &[(&str, &str)], v: Val) {
        self.out.extend_from_slice(self.name.as_bytes());
        for (i, (k, val)) in labels.iter().enumerate() {
            self.out.extend_from_slice(if i == 0 { b"{" } else { b"," });
            let _ = write!(self.out, "{k}=\"");
            for c in val.chars() {
                match c {
                    '\\' => self.out.extend_from_slice(b"\\\\"),
                    '"' => self.out.extend_from_slice(b"\\\""),
                    '\n' => self.out.extend_from_slice(b"\\n"),
                    c => {
                        let mut b = [0u8; 4];
                        self.out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                    }
                }
            }
            self.out.push(b'"');
        }
        if !labels.is_empty() {
            self.out.push(b'}');
        }
        let v = match v {
            Val::U(u) if self.to_seconds => Val::F(u as f64 / 1e9),
            Val::F(f) if self.to_seconds => Val::F(f / 1e9),
            v => v,
        };
        let _ = match v {
            Val::U(u) => writeln!(self.out, " {u}"),
            Val::F(f) if f.is_nan() => writeln!(self.out, " NaN"),
            Val::F(f) if f.is_infinite() => {
                writeln!(self.out, " {}Inf", if f > 0.0 { "+" } else { "-" })
            }
            Val::F(f) => writeln!(self.out, " {f}"),
        };
    }

    fn one(&mut self, name: &str, kind: Kind, help: &str, v: Val) {
        self.family(format_args!("{name}"), kind, help);
        self.sample(&[], v);
    }

    /// An info family: value 1, the facts in labels (libs' `_info` overload).
    fn info(&mut self, name: &str, help: &str, labels: &[(&str, &str)]) {
        self.family(format_args!("{name}"), Kind::Gauge, help);
        self.sample(labels, Val::U(1));
    }
}

use Kind::{Counter, Gauge};
use Val::{F, U};

/// Falco's drop categories as its regex splits the libs counter names
/// (falco_metrics.cpp, sources_to_text_prometheus: `n_drops_buffer_(.+)_exit`):
/// `n_drops_buffer_proc_exit` becomes `drop="proc"`. Kestrel has both
/// directions for the first six; close and process exit are exit-only.
const DROPS: [(&str, bool); 8] = [
    ("clone_fork", true),
    ("execve", true),
    ("connect", true),
    ("open", true),
    ("dir_file", true),
    ("other_interest", true),
    ("close", false),
    ("proc", false),
];

fn kernel(t: &mut Text<'_>, k: &KernelCounters) {
    t.one(
        "falcosecurity_scap_n_evts_total",
        Counter,
        "Events the probe tried to send, dropped ones included.",
        U(k.n_evts),
    );
    // Falco leaves out the n_drops_buffer_total aggregate: it would clash with
    // this family's name, and sum() gives it.
    t.family(
        format_args!("falcosecurity_scap_n_drops_buffer_total"),
        Counter,
        "Events dropped because the ring buffer was full, by category and direction.",
    );
    for ((drop, enter), dirs) in DROPS.iter().zip(k.n_drops_buffer.iter()) {
        if *enter {
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
        (
            "falcosecurity_scap_n_drops_page_faults_total",
            "Events sent with a user-memory field that could not be read (not in n_drops).",
            k.n_drops_page_faults,
        ),
        (
            "falcosecurity_scap_n_drops_bug_total",
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

/// libpman stats.c, collect_libbpf_stats: `<prog>.run_cnt` (count),
/// `<prog>.run_time_ns` (ns count), `<prog>.avg_time_ns` (ns gauge); the
/// dot becomes `_` in prometheus_sanitize_metric_name.
fn progs(t: &mut Text<'_>, progs: &[ProgStats]) {
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
fn resources(t: &mut Text<'_>, r: &ResourceSample) {
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
            "Memory charged to the agent's cgroup.",
            U(r.container_memory_used_bytes),
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
fn state(t: &mut Text<'_>, inp: &Inputs<'_>) {
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
    for (name, v) in [
        ("n_noncached_fd_lookups", s.n_noncached_fd_lookups),
        ("n_cached_fd_lookups", s.n_cached_fd_lookups),
        ("n_failed_fd_lookups", s.n_failed_fd_lookups),
        ("n_added_fds", s.n_added_fds),
        ("n_removed_fds", s.n_removed_fds),
        ("n_stored_evts", s.n_stored_evts),
        ("n_store_evts_drops", s.n_store_evts_drops),
        ("n_retrieved_evts", s.n_retrieved_evts),
        ("n_retrieve_evts_drops", s.n_retrieve_evts_drops),
        ("n_noncached_thread_lookups", s.n_noncached_thread_lookups),
        ("n_cached_thread_lookups", s.n_cached_thread_lookups),
        ("n_failed_thread_lookups", s.n_failed_thread_lookups),
        ("n_added_threads", s.n_added_threads),
        ("n_removed_threads", s.n_removed_threads),
        ("n_drops_full_threadtable", s.n_drops_full_threadtable),
    ] {
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

fn culprits(t: &mut Text<'_>, c: &Culprits<'_>) {
    let sys = &c.syscalls[..c.syscalls.len().min(MAX_CULPRITS)];
    if !sys.is_empty() {
        t.family(
            format_args!("kestrel_syscall_calls_total"),
            Counter,
            "Calls of the interval's busiest syscalls, traced or not.",
        );
        for s in sys {
            t.sample(&[("syscall", s.name)], U(s.calls));
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
    for (name, help, drops) in [
        (
            "kestrel_process_events_total",
            "Traced events of the interval's busiest processes.",
            false,
        ),
        (
            "kestrel_process_drops_total",
            "Dropped events of the interval's busiest processes.",
            true,
        ),
    ] {
        t.family(format_args!("{name}"), Counter, help);
        for (p, pid) in procs.iter().zip(pids.iter()) {
            let v = if drops { p.drops } else { p.events };
            t.sample(&[("comm", p.comm), ("pid", pid)], U(v));
        }
    }
}

fn server(t: &mut Text<'_>, s: &ServerStats) {
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
}

/// Renders the whole text into `out` (cleared first; its capacity is reused).
pub fn render(v: &View<'_>, out: &mut Vec<u8>) {
    out.clear();
    let mut t = Text {
        out,
        name: String::with_capacity(96),
        strict: v.strict_names,
        to_seconds: false,
    };
    let h = v.host;
    // falco_metrics.cpp, falco_to_text_prometheus / sources_to_text_prometheus.
    t.info(
        "falcosecurity_falco_version_info",
        "Agent version.",
        &[("version", VERSION)],
    );
    t.info(
        "falcosecurity_scap_engine_name_info",
        "Capture engine.",
        &[("engine_name", ENGINE_NAME), ("evt_source", "syscall")],
    );
    t.info(
        "falcosecurity_falco_evt_source_info",
        "Event source.",
        &[("evt_source", "syscall")],
    );
    t.info(
        "falcosecurity_falco_kernel_release_info",
        "Kernel release.",
        &[("kernel_release", &h.kernel_release)],
    );
    t.info(
        "falcosecurity_evt_hostname_info",
        "Host name.",
        &[("hostname", &h.hostname)],
    );
    let i = v.inputs;
    if v.cfg.kernel_event_counters_enabled {
        kernel(&mut t, &i.kernel);
    }
    if v.cfg.libbpf_stats_enabled {
        progs(&mut t, i.progs);
    }
    if let (true, Some(r)) = (v.cfg.resource_utilization_enabled, v.resources) {
        resources(&mut t, r);
    }
    if v.cfg.state_counters_enabled {
        state(&mut t, i);
    }
    if let Some(c) = v.culprits {
        culprits(&mut t, c);
    }
    // Falco's additional wrapper metrics, subsystem falco.
    let boot = v
        .resources
        .map_or_else(crate::metrics::time::boot_ts_ns, |r| r.host_boot_ts_ns);
    for (name, help, kind, val) in [
        (
            "falcosecurity_falco_start_timestamp_nanoseconds",
            "Agent start, ns since the epoch.",
            Gauge,
            h.start_ts_ns,
        ),
        // Kestrel never reloads its configuration: the load at start is the last one.
        (
            "falcosecurity_falco_reload_timestamp_nanoseconds",
            "Last configuration load, ns since the epoch.",
            Gauge,
            h.start_ts_ns,
        ),
        (
            "falcosecurity_falco_host_boot_timestamp_nanoseconds",
            "Host boot, ns since the epoch.",
            Gauge,
            boot,
        ),
        (
            "falcosecurity_falco_host_num_cpus_total",
            "CPUs online.",
            Gauge,
            h.num_cpus,
        ),
        (
            "falcosecurity_falco_outputs_queue_num_drops_total",
            "Snapshots an output could not take.",
            Counter,
            i.outputs_queue_num_drops,
        ),
        (
            "falcosecurity_falco_duration_seconds_total",
            "Seconds since agent start.",
            Counter,
            v.now_real_ns.saturating_sub(h.start_ts_ns) / 1_000_000_000,
        ),
        (
            "kestrel_output_write_errors_total",
            "Failed snapshot writes, all outputs.",
            Counter,
            i.output_write_errors,
        ),
    ] {
        t.one(name, kind, help, U(val));
    }
    if let Some(s) = v.server {
        server(&mut t, s);
    }
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
