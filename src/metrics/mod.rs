//! Snapshot assembly: gathers the kernel counters, program stats, state
//! counters and resource readings at each interval, derives rates against the
//! previous snapshot, and renders one line of Falco's metrics-snapshot JSON
//! (rule-output form, keys sorted as Falco prints them) into a buffer sized
//! once. Runs once per interval, never per event.

pub mod culprits;
pub mod resources;
pub mod time;

use core::fmt::Write as _;

use heapless::{String as HString, Vec as HVec};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::capture::{KernelCounters, ProgStats};
use crate::state::StateCounters;
use culprits::Culprits;
use resources::{bytes_to_mb, kb_to_mb, round1, ResourceSample, Resources};

pub const ENGINE_NAME: &str = "kestrel_bpf";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Upper bound for one rendered snapshot line.
pub const SNAPSHOT_MAX: usize = 16 * 1024;
const MAX_FIELDS: usize = 160;
const DROP_CATEGORIES: [&str; 8] = [
    "clone_fork",
    "execve",
    "connect",
    "open",
    "dir_file",
    "other_interest",
    "close",
    "proc_exit",
];

/// The knobs of falco.yaml's `metrics:` section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricsConfig {
    pub resource_utilization_enabled: bool,
    pub state_counters_enabled: bool,
    pub kernel_event_counters_enabled: bool,
    pub libbpf_stats_enabled: bool,
    pub convert_memory_to_mb: bool,
    pub include_empty_values: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            resource_utilization_enabled: true,
            state_counters_enabled: true,
            kernel_event_counters_enabled: true,
            libbpf_stats_enabled: false,
            convert_memory_to_mb: true,
            include_empty_values: false,
        }
    }
}

/// What the loop hands over at snapshot time.
pub struct Inputs<'a> {
    pub num_evts: u64,
    pub num_compat_evts: u64,
    /// tp_btf or raw_tp.
    pub attach: &'a str,
    pub outputs_queue_num_drops: u64,
    pub output_write_errors: u64,
    pub kernel: KernelCounters,
    pub state: StateCounters,
    pub n_threads: u64,
    pub n_fds: u64,
    pub progs: &'a [ProgStats],
    /// Culprit lists of the interval, when enabled.
    pub culprits: Option<&'a Culprits>,
}

#[derive(Clone, Copy)]
enum Value<'a> {
    U64(u64),
    F64(f64),
    Str(&'a str),
    Syscalls(&'a Culprits),
    Procs(&'a Culprits, bool),
}

impl Value<'_> {
    fn is_empty(&self) -> bool {
        match *self {
            Value::U64(v) => v == 0,
            Value::F64(v) => v == 0.0,
            Value::Str(s) => s.is_empty(),
            Value::Syscalls(_) => false,
            Value::Procs(c, by_drops) => by_drops && c.by_drops.is_empty(),
        }
    }
}

type Key = HString<48>;

/// Fields that stay even when zero and include_empty_values is off.
const ALWAYS: &[&str] = &[
    "evt.source",
    "evt.time",
    "falco.duration_sec",
    "falco.host_boot_ts",
    "falco.host_num_cpus",
    "falco.hostname",
    "falco.kernel_release",
    "falco.num_evts",
    "falco.num_evts_prev",
    "falco.outputs_queue_num_drops",
    "falco.start_ts",
    "falco.version",
    "falco.evts_rate_sec",
    "scap.engine_name",
    "scap.n_evts",
    "scap.n_evts_prev",
    "scap.evts_rate_sec",
    "scap.n_drops",
    "scap.n_drops_prev",
    "scap.evts_drop_rate_sec",
    "scap.n_drops_perc",
    "falco.n_fds",
    "falco.n_threads",
];

struct Fields<'a> {
    list: HVec<(Key, Value<'a>), MAX_FIELDS>,
    include_empty: bool,
}

impl<'a> Fields<'a> {
    fn put(&mut self, key: &str, v: Value<'a>) {
        if !self.include_empty && v.is_empty() && !ALWAYS.contains(&key) {
            return;
        }
        let mut k = Key::new();
        let _ = k.push_str(key);
        let _ = self.list.push((k, v));
    }

    fn put_fmt(&mut self, v: Value<'a>, args: core::fmt::Arguments<'_>) {
        let mut k = Key::new();
        let _ = k.write_fmt(args);
        self.put(&k, v);
    }
}

impl Serialize for Fields<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.list.len()))?;
        for (k, v) in &self.list {
            match *v {
                Value::U64(x) => m.serialize_entry(k.as_str(), &x)?,
                Value::F64(x) => m.serialize_entry(k.as_str(), &x)?,
                Value::Str(x) => m.serialize_entry(k.as_str(), x)?,
                Value::Syscalls(c) => m.serialize_entry(k.as_str(), &c.top_syscalls())?,
                Value::Procs(c, by_drops) => {
                    m.serialize_entry(k.as_str(), &c.top_procs(by_drops))?
                }
            }
        }
        m.end()
    }
}

#[derive(Serialize)]
struct Snapshot<'a> {
    hostname: &'a str,
    output: &'static str,
    output_fields: &'a Fields<'a>,
    priority: &'static str,
    rule: &'static str,
    source: &'static str,
    time: &'a str,
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
        HostInfo {
            hostname,
            kernel_release: uname.release().to_string_lossy().into_owned(),
            num_cpus: cpus.max(1) as u64,
            start_ts_ns: time::realtime_ns(),
        }
    }
}

/// Shortest window a rate is taken over.
const MIN_RATE_WINDOW_NS: u64 = 100_000_000;

/// Counter values at one snapshot, for rates and `*_prev` fields.
#[derive(Clone, Copy)]
struct Mark {
    mono_ns: u64,
    num_evts: u64,
    kernel: KernelCounters,
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
    start_mono_ns: u64,
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
            start_mono_ns: now,
            rendered: 0,
            last_resources: None,
        }
    }

    pub fn host(&self) -> &HostInfo {
        &self.host
    }

    /// Renders one snapshot line (newline-terminated) and advances the
    /// previous-values the next snapshot's rates are taken against.
    pub fn render(&mut self, inp: &Inputs<'_>) -> Rendered<'_> {
        let now_mono = time::monotonic_ns();
        let now_real = time::realtime_ns();
        let first = self.rendered == 0;
        // A snapshot right after another (the final one on SIGTERM) would take
        // its rates over a few ms; take them over the interval before instead.
        let base = if now_mono.saturating_sub(self.prev.mono_ns) < MIN_RATE_WINDOW_NS {
            self.before_prev
        } else {
            self.prev
        };
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

        let mut f = Fields {
            list: HVec::new(),
            include_empty: self.cfg.include_empty_values,
        };
        let c = &self.cfg;
        f.put("evt.source", Value::Str("syscall"));
        f.put("evt.time", Value::U64(now_real));
        f.put(
            "falco.duration_sec",
            Value::U64((now_mono - self.start_mono_ns) / 1_000_000_000),
        );
        if self.prev.num_evts > 0 {
            f.put(
                "falco.evts_rate_sec",
                Value::F64(rate(inp.num_evts, base.num_evts)),
            );
        }
        let boot_ts = res
            .map(|r| r.host_boot_ts_ns)
            .unwrap_or_else(time::boot_ts_ns);
        f.put("falco.host_boot_ts", Value::U64(boot_ts));
        f.put("falco.host_num_cpus", Value::U64(self.host.num_cpus));
        f.put("falco.hostname", Value::Str(&self.host.hostname));
        f.put(
            "falco.kernel_release",
            Value::Str(&self.host.kernel_release),
        );
        f.put("falco.num_evts", Value::U64(inp.num_evts));
        f.put("falco.num_evts_prev", Value::U64(self.prev.num_evts));
        f.put(
            "falco.outputs_queue_num_drops",
            Value::U64(inp.outputs_queue_num_drops),
        );
        f.put("falco.start_ts", Value::U64(self.host.start_ts_ns));
        f.put("falco.version", Value::Str(VERSION));
        f.put("scap.engine_name", Value::Str(ENGINE_NAME));
        f.put(
            "kestrel.output_write_errors",
            Value::U64(inp.output_write_errors),
        );
        f.put("kestrel.attach", Value::Str(inp.attach));
        if let Some(cul) = inp.culprits {
            f.put("kestrel.top_syscalls", Value::Syscalls(cul));
            f.put("kestrel.top_procs", Value::Procs(cul, false));
            f.put("kestrel.top_procs_by_drops", Value::Procs(cul, true));
        }
        f.put("kestrel.n_compat_evts", Value::U64(inp.num_compat_evts));

        if let Some(r) = res {
            let mem_kb = |kb| {
                Value::U64(if c.convert_memory_to_mb {
                    kb_to_mb(kb)
                } else {
                    kb
                })
            };
            f.put("falco.cpu_usage_perc", Value::F64(r.cpu_usage_perc));
            // The first interval is the few ms since start: too short to mean anything.
            let interval = |v: f64| Value::F64(if first { 0.0 } else { v });
            f.put(
                "kestrel.cpu_usage_perc_interval",
                interval(r.kestrel_cpu_usage_perc_interval),
            );
            f.put("falco.memory_rss", mem_kb(r.memory_rss_kb));
            f.put("falco.memory_vsz", mem_kb(r.memory_vsz_kb));
            f.put("falco.memory_pss", mem_kb(r.memory_pss_kb));
            f.put(
                "falco.container_memory_used",
                Value::U64(if c.convert_memory_to_mb {
                    bytes_to_mb(r.container_memory_used_bytes)
                } else {
                    r.container_memory_used_bytes
                }),
            );
            f.put(
                "falco.cpu_usage_perc_total_host",
                Value::F64(r.cpu_usage_perc_total_host),
            );
            f.put(
                "kestrel.host_cpu_usage_perc_interval",
                interval(r.host_cpu_usage_perc_interval),
            );
            f.put("falco.memory_used_host", mem_kb(r.memory_used_host_kb));
            f.put("falco.procs_running_host", Value::U64(r.procs_running_host));
            f.put("falco.open_fds_host", Value::U64(r.open_fds_host));
        }

        if c.state_counters_enabled {
            let s = &inp.state;
            for (k, v) in [
                ("falco.n_threads", inp.n_threads),
                ("falco.n_fds", inp.n_fds),
                ("falco.n_added_fds", s.n_added_fds),
                ("falco.n_added_threads", s.n_added_threads),
                ("falco.n_cached_fd_lookups", s.n_cached_fd_lookups),
                ("falco.n_cached_thread_lookups", s.n_cached_thread_lookups),
                ("falco.n_containers", 0),
                ("falco.n_drops_full_threadtable", s.n_drops_full_threadtable),
                ("falco.n_failed_fd_lookups", s.n_failed_fd_lookups),
                ("falco.n_failed_thread_lookups", s.n_failed_thread_lookups),
                ("falco.n_missing_container_images", 0),
                ("falco.n_noncached_fd_lookups", s.n_noncached_fd_lookups),
                (
                    "falco.n_noncached_thread_lookups",
                    s.n_noncached_thread_lookups,
                ),
                ("falco.n_removed_fds", s.n_removed_fds),
                ("falco.n_removed_threads", s.n_removed_threads),
                ("falco.n_retrieve_evts_drops", s.n_retrieve_evts_drops),
                ("falco.n_retrieved_evts", s.n_retrieved_evts),
                ("falco.n_store_evts_drops", s.n_store_evts_drops),
                ("falco.n_stored_evts", s.n_stored_evts),
                ("kestrel.n_drops_full_fdtable", s.n_drops_full_fdtable),
                ("kestrel.n_decode_errors", s.n_decode_errors),
            ] {
                f.put(k, Value::U64(v));
            }
        }

        let k = &inp.kernel;
        if c.kernel_event_counters_enabled {
            let prev = &self.prev.kernel;
            let d_evts = k.n_evts.saturating_sub(prev.n_evts);
            let d_drops = k.n_drops().saturating_sub(prev.n_drops());
            f.put("scap.n_evts", Value::U64(k.n_evts));
            f.put("scap.n_evts_prev", Value::U64(prev.n_evts));
            f.put(
                "scap.evts_rate_sec",
                Value::F64(rate(k.n_evts, base.kernel.n_evts)),
            );
            f.put("scap.n_drops", Value::U64(k.n_drops()));
            f.put("scap.n_drops_prev", Value::U64(prev.n_drops()));
            f.put(
                "scap.evts_drop_rate_sec",
                Value::F64(rate(k.n_drops(), base.kernel.n_drops())),
            );
            let perc = if d_evts == 0 {
                0.0
            } else {
                100.0 * d_drops as f64 / d_evts as f64
            };
            f.put("scap.n_drops_perc", Value::F64(perc));
            f.put(
                "scap.n_drops_buffer_total",
                Value::U64(k.n_drops_buffer_total),
            );
            for (cat, dirs) in DROP_CATEGORIES.iter().zip(k.n_drops_buffer.iter()) {
                match *cat {
                    // Falco has only the exit side for these two, proc_exit without a suffix.
                    "close" => f.put("scap.n_drops_buffer_close_exit", Value::U64(dirs[1])),
                    "proc_exit" => f.put("scap.n_drops_buffer_proc_exit", Value::U64(dirs[1])),
                    _ => {
                        f.put_fmt(
                            Value::U64(dirs[0]),
                            format_args!("scap.n_drops_buffer_{cat}_enter"),
                        );
                        f.put_fmt(
                            Value::U64(dirs[1]),
                            format_args!("scap.n_drops_buffer_{cat}_exit"),
                        );
                    }
                }
            }
            f.put(
                "scap.n_drops_scratch_map",
                Value::U64(k.n_drops_scratch_map),
            );
            f.put(
                "scap.n_drops_page_faults",
                Value::U64(k.n_drops_page_faults),
            );
            f.put("scap.n_drops_bug", Value::U64(k.n_drops_bug));
        }

        if c.libbpf_stats_enabled {
            for p in inp.progs {
                let avg = p.run_time_ns.checked_div(p.run_cnt).unwrap_or(0);
                f.put_fmt(Value::U64(avg), format_args!("scap.{}.avg_time_ns", p.name));
                f.put_fmt(
                    Value::U64(p.run_cnt),
                    format_args!("scap.{}.run_cnt", p.name),
                );
                f.put_fmt(
                    Value::U64(p.run_time_ns),
                    format_args!("scap.{}.run_time_ns", p.name),
                );
            }
        }

        f.list.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let snap = Snapshot {
            hostname: &self.host.hostname,
            output: "Falco metrics snapshot",
            output_fields: &f,
            priority: "Informational",
            rule: "Falco internal: metrics snapshot",
            source: "internal",
            time: time_str,
        };
        // Leave room for the newline every sink but syslog wants.
        let end = self.buf.len() - 1;
        let mut n = serde_json_core::to_slice(&snap, &mut self.buf[..end]).unwrap_or(0);
        self.buf[n] = b'\n';
        n += 1;

        self.before_prev = self.prev;
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
