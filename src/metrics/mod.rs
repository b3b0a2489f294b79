//! Snapshot assembly: gathers the kernel counters, program stats, state
//! counters and resource readings at each interval, derives rates against the
//! previous snapshot, and renders one line of Falco's metrics-snapshot JSON
//! (rule-output form, keys sorted as Falco prints them, names and types of
//! the chosen `Schema`) into a buffer sized once. Runs once per interval,
//! never per event.

pub use kestrel_core::metrics::culprits;
pub mod fields;
pub mod netinfo;
pub mod resources;
pub mod rule_output;
pub mod schema;
mod sections;
pub mod units;

use crate::base::time;
use crate::capture::{KernelCounters, ProgStats};
use crate::state::StateCounters;
use culprits::Culprits;
use fields::{Fields, Value};
use resources::{round1, ResourceSample, Resources};
use rule_output::RuleOutput;
pub use schema::Schema;

pub const ENGINE_NAME: &str = "kestrel_bpf";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Upper bound for one rendered snapshot line.
pub const SNAPSHOT_MAX: usize = 32 * 1024;

/// The knobs of falco.yaml's `metrics:` section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricsConfig {
    pub resource_utilization_enabled: bool,
    pub state_counters_enabled: bool,
    pub kernel_event_counters_enabled: bool,
    /// Falco 0.39+: events and drops of each CPU (off by default, as in Falco).
    pub kernel_event_counters_per_cpu_enabled: bool,
    pub libbpf_stats_enabled: bool,
    pub convert_memory_to_mb: bool,
    pub include_empty_values: bool,
    pub schema: Schema,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            resource_utilization_enabled: true,
            state_counters_enabled: true,
            kernel_event_counters_enabled: true,
            kernel_event_counters_per_cpu_enabled: false,
            libbpf_stats_enabled: false,
            convert_memory_to_mb: true,
            include_empty_values: false,
            schema: Schema::Falco037,
        }
    }
}

/// What the loop hands over at snapshot time.
pub struct Inputs<'a> {
    pub num_evts: u64,
    /// Of num_evts, records with no enter event in Falco 0.37 (see units).
    pub num_evts_no_enter: u64,
    /// Enter records are captured: records are already 0.37's events.
    pub enter_events: bool,
    pub num_compat_evts: u64,
    /// tp_btf or raw_tp.
    pub attach: &'a str,
    pub outputs_queue_num_drops: u64,
    pub output_write_errors: u64,
    /// Of outputs_queue_num_drops: dropped by MQTT outputs (store or spool
    /// full, oldest first) and by syslog over TCP/TLS.
    pub mqtt_drops: u64,
    pub syslog_stream_drops: u64,
    pub kernel: KernelCounters,
    /// (events, drops) of each possible CPU, records; empty unless
    /// kernel_event_counters_per_cpu_enabled.
    pub per_cpu: &'a [(u64, u64)],
    pub state: StateCounters,
    pub n_threads: u64,
    /// libsinsp's n_fds: each thread counts its process's table.
    pub n_fds: u64,
    /// Distinct fds in the table.
    pub kestrel_n_fds: u64,
    pub progs: &'a [ProgStats],
    /// Culprit lists of the interval, when enabled.
    pub culprits: Option<&'a Culprits>,
    /// The rule engine's counters, when rules are loaded.
    pub rules: Option<&'a crate::rules::engine::Engine>,
    /// metrics.rules_counters_enabled: falco.rules.* in the snapshot.
    pub rules_counters: bool,
}

/// One rendered snapshot: the JSON line with its newline, and the snapshot
/// time as RFC 3339 (syslog's header carries it).
pub struct Rendered<'a> {
    pub line: &'a [u8],
    pub time: &'a str,
}

/// Host facts read once at start.
pub struct HostInfo {
    pub hostname: String,
    pub kernel_release: String,
    pub num_cpus: u64,
    pub start_ts_ns: u64,
    /// falco.reload_ts: the last configuration load (start, or a SIGHUP's).
    pub reload_ts_ns: u64,
    /// falco.host_netinfo.* (key, addresses), read at start (netinfo.rs).
    pub netinfo: Vec<(String, String)>,
}

impl HostInfo {
    pub fn read() -> HostInfo {
        let uname = rustix::system::uname();
        let hostname = std::env::var("FALCO_HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| uname.nodename().to_string_lossy().into_owned());
        // SAFETY: sysconf has no preconditions.
        let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
        let now = time::realtime_ns();
        HostInfo {
            hostname,
            kernel_release: uname.release().to_string_lossy().into_owned(),
            num_cpus: cpus.max(1) as u64,
            start_ts_ns: now,
            reload_ts_ns: now,
            netinfo: netinfo::fields(&netinfo::read()),
        }
    }
}

/// Shortest window a rate is taken over.
const MIN_RATE_WINDOW_NS: u64 = 100_000_000;

/// Counter values at one snapshot, for rates and `*_prev` fields.
#[derive(Clone, Copy)]
pub(crate) struct Mark {
    mono_ns: u64,
    num_evts: u64,
    pub(crate) kernel: KernelCounters,
}

impl Mark {
    fn at(mono_ns: u64) -> Mark {
        Mark {
            mono_ns,
            num_evts: 0,
            kernel: KernelCounters::default(),
        }
    }
}

pub struct Snapshotter {
    pub cfg: MetricsConfig,
    host: HostInfo,
    resources: Resources,
    buf: Box<[u8]>,
    time_buf: [u8; 40],
    /// The previous snapshot (Falco's `*_prev` fields) and the one before it.
    prev: Mark,
    before_prev: Mark,
    rendered: u64,
    /// The last snapshot's resource reading (the Prometheus text reuses it).
    pub last_resources: Option<ResourceSample>,
}

impl Snapshotter {
    pub fn new(cfg: MetricsConfig, host: HostInfo, resources: Resources) -> Snapshotter {
        let now = time::monotonic_ns();
        Snapshotter {
            cfg,
            host,
            resources,
            buf: vec![0u8; SNAPSHOT_MAX].into_boxed_slice(),
            time_buf: [0u8; 40],
            prev: Mark::at(now),
            before_prev: Mark::at(now),
            rendered: 0,
            last_resources: None,
        }
    }

    /// The next snapshot starts a window as the first one does (rates 0):
    /// its figures are in another unit than the previous one's.
    pub fn restart_window(&mut self) {
        self.rendered = 0;
    }

    /// A SIGHUP loaded the configuration at `ns` (falco.reload_ts).
    pub fn set_reload_ts(&mut self, ns: u64) {
        self.host.reload_ts_ns = ns;
    }

    pub fn host(&self) -> &HostInfo {
        &self.host
    }

    /// Resource figures read now for /metrics, without moving the interval
    /// baseline the next snapshot's per-interval CPU is taken against.
    pub fn peek_resources(&mut self) -> Option<ResourceSample> {
        self.cfg
            .resource_utilization_enabled
            .then(|| self.resources.peek())
    }

    /// Renders one snapshot line (newline-terminated) and advances the
    /// previous-values the next snapshot's rates are taken against.
    pub fn render(&mut self, inp: &Inputs<'_>) -> Rendered<'_> {
        self.render_at(inp, time::monotonic_ns(), time::realtime_ns())
    }

    /// `render` at given clock readings (tests drive time explicitly).
    pub fn render_at(
        &mut self,
        records: &Inputs<'_>,
        now_mono: u64,
        now_real: u64,
    ) -> Rendered<'_> {
        let inp = &units::in_schema_unit(self.cfg.schema, records);
        let first = self.rendered == 0;
        // A snapshot right after another (the final one on SIGTERM) would
        // take its figures over a few ms; take every derived figure (rates,
        // `_prev`, n_drops_perc) over the window since the snapshot before.
        let short = !first && now_mono.saturating_sub(self.prev.mono_ns) < MIN_RATE_WINDOW_NS;
        let base = if short { self.before_prev } else { self.prev };
        let dt = now_mono.saturating_sub(base.mono_ns) as f64 / 1e9;
        let rate = |cur: u64, base: u64| {
            if dt > 0.0 && !first {
                round1(cur.saturating_sub(base) as f64 / dt)
            } else {
                0.0
            }
        };
        let res: Option<ResourceSample> = self
            .cfg
            .resource_utilization_enabled
            .then(|| self.resources.sample());
        self.last_resources = res;
        let time_str = time::rfc3339_nanos(now_real, &mut self.time_buf);

        let boot_ts = res
            .map(|r| r.host_boot_ts_ns)
            .unwrap_or_else(time::boot_ts_ns);
        let mut f = Fields::new(self.cfg.include_empty_values);
        let c = self.cfg;
        Self::base_fields(&c, &self.host, &mut f, inp, &base, now_real, &rate);
        f.put("falco.host_boot_ts", Value::U64(boot_ts));
        if let Some(r) = &res {
            Self::resource_fields(&c, &mut f, r, first);
        }
        if c.state_counters_enabled {
            Self::state_fields(&c, &mut f, inp);
        }
        if c.kernel_event_counters_enabled {
            Self::kernel_fields(c.schema, &mut f, &inp.kernel, &base, &rate);
        }
        if c.kernel_event_counters_per_cpu_enabled {
            Self::per_cpu_fields(c.schema, &mut f, inp.per_cpu);
        }
        if c.libbpf_stats_enabled {
            Self::prog_fields(&mut f, inp.progs);
        }
        if units::converts(c.schema, records.enter_events) {
            // Kestrel's records, beside 0.37's enter-and-exit events.
            f.put("kestrel.num_evts", Value::U64(records.num_evts));
            if c.kernel_event_counters_enabled {
                f.put("kestrel.n_evts", Value::U64(records.kernel.n_evts));
                f.put("kestrel.n_drops", Value::U64(records.kernel.n_drops()));
            }
        }
        if let Some(e) = inp.rules {
            Self::rule_fields(&mut f, e, inp.rules_counters);
        }

        f.sort();
        let snap = RuleOutput {
            hostname: &self.host.hostname,
            output: "Falco metrics snapshot",
            output_fields: &f,
            priority: "Informational",
            rule: "Falco internal: metrics snapshot",
            source: "internal",
            time: time_str,
        };
        let n = snap.write_line(&mut self.buf);

        if !short {
            self.before_prev = self.prev;
        }
        self.prev = Mark {
            mono_ns: now_mono,
            num_evts: inp.num_evts,
            kernel: inp.kernel,
        };
        self.rendered += 1;
        Rendered {
            line: &self.buf[..n],
            time: time_str,
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_newer;
