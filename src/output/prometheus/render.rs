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

use super::families::{culprits, kernel, per_cpu, progs, resources, server, state};
use crate::metrics::resources::ResourceSample;
use crate::metrics::{HostInfo, Inputs, MetricsConfig, ENGINE_NAME, VERSION};

/// The most culprit series of each kind rendered, whatever the source hands over.
pub const MAX_CULPRITS: usize = 32;

/// The culprit lists as the exporter renders them (see metrics::culprits);
/// when `None` no culprit family is rendered.
pub struct Culprits<'a> {
    /// Calls since start of every syscall ever in an interval's top K.
    pub syscalls: &'a [SyscallCount<'a>],
    /// Events, drops and syscalls of the interval's top N processes, this
    /// interval.
    pub processes: &'a [ProcessCount<'a>],
    /// Estimated syscalls since the kernel's table took each process, of
    /// processes once in the top that still make calls (metrics::culprits).
    pub process_calls: &'a [ProcessCalls<'a>],
}

pub struct ProcessCalls<'a> {
    pub pid: u32,
    pub comm: &'a str,
    pub calls: u64,
}

pub struct SyscallCount<'a> {
    pub name: &'a str,
    /// "64" or "32" (i386 / ARM EABI numbering).
    pub abi: &'a str,
    pub calls: u64,
}

pub struct ProcessCount<'a> {
    pub pid: u32,
    pub comm: &'a str,
    pub events: u64,
    pub drops: u64,
    /// Estimated (sampled), traced or not.
    pub syscalls: u64,
}

/// The exporter's own request counters, by response status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// By STATUS_CODES, in that order.
    pub responses: [u64; 8],
    pub open_connections: u64,
    /// TLS connections that ended before their handshake did.
    pub tls_failures: u64,
    /// Renders for scrapes (between snapshots) and the time they took.
    pub renders: u64,
    pub render_ns: u64,
    /// bcrypt checks run by the worker.
    pub bcrypt_checks: u64,
}

pub const STATUS_CODES: [u16; 8] = [200, 400, 401, 404, 405, 413, 429, 503];

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
pub(super) enum Kind {
    Counter,
    Gauge,
}

/// Writes families into a reused buffer. `family` starts one (HELP + TYPE),
/// `sample` adds its series; callers keep each family's samples together.
pub(super) struct Text<'b> {
    out: &'b mut Vec<u8>,
    name: String,
    strict: bool,
    /// Set when a strict name moved the family from ns to s.
    to_seconds: bool,
}

#[derive(Clone, Copy)]
pub(super) enum Val {
    U(u64),
    F(f64),
}

impl Text<'_> {
    pub(super) fn family(&mut self, name: std::fmt::Arguments<'_>, kind: Kind, help: &str) {
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

    pub(super) fn sample(&mut self, labels: &[(&str, &str)], v: Val) {
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

    pub(super) fn one(&mut self, name: &str, kind: Kind, help: &str, v: Val) {
        self.family(format_args!("{name}"), kind, help);
        self.sample(&[], v);
    }

    /// An info family: value 1, the facts in labels (libs' `_info` overload).
    pub(super) fn info(&mut self, name: &str, help: &str, labels: &[(&str, &str)]) {
        self.family(format_args!("{name}"), Kind::Gauge, help);
        self.sample(labels, Val::U(1));
    }
}

/// Renders the whole text into `out` (cleared first; its capacity is reused).
pub fn render(v: &View<'_>, out: &mut Vec<u8>) {
    use Kind::{Counter, Gauge};
    use Val::U;
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
    if v.cfg.kernel_event_counters_per_cpu_enabled {
        per_cpu(&mut t, i.per_cpu);
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
    if let Some(e) = i.rules {
        super::families::rules(&mut t, e, i.rules_counters);
    }
    // Falco's additional wrapper metrics, subsystem falco.
    let boot = v
        .resources
        .map_or_else(crate::base::time::boot_ts_ns, |r| r.host_boot_ts_ns);
    for (name, help, kind, val) in [
        (
            "falcosecurity_falco_start_timestamp_nanoseconds",
            "Agent start, ns since the epoch.",
            Gauge,
            h.start_ts_ns,
        ),
        (
            "falcosecurity_falco_reload_timestamp_nanoseconds",
            "Last configuration load (start or SIGHUP), ns since the epoch.",
            Gauge,
            h.reload_ts_ns,
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
        (
            "kestrel_mqtt_drops_total",
            "Messages MQTT outputs dropped, oldest first (store or spool full).",
            Counter,
            i.mqtt_drops,
        ),
        (
            "kestrel_syslog_stream_drops_total",
            "Messages syslog over TCP/TLS dropped, oldest first (store full).",
            Counter,
            i.syslog_stream_drops,
        ),
    ] {
        t.one(name, kind, help, U(val));
    }
    if let Some(s) = v.server {
        server(&mut t, s);
    }
}

#[cfg(test)]
#[path = "render_kernel_tests.rs"]
mod kernel_tests;
#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
