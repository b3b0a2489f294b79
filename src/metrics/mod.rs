//! Snapshot assembly: gathers the kernel counters, program stats, state
//! counters and resource readings at each interval, derives rates against the
//! previous snapshot, and renders one line of Falco's metrics-snapshot JSON
//! (rule-output form, keys sorted as Falco prints them, names and types of
//! the chosen `Schema`) into a buffer sized once. Runs once per interval,
//! never per event.

pub mod fields;
pub mod resources;
pub mod schema;
pub mod time;

use crate::capture::{KernelCounters, ProgStats};
use crate::state::StateCounters;
use fields::{Fields, Key, Value};
use resources::{bytes_to_mb, kb_to_mb, round1, ResourceSample, Resources};
pub use schema::Schema;

pub const ENGINE_NAME: &str = "kestrel_bpf";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Upper bound for one rendered snapshot line.
pub const SNAPSHOT_MAX: usize = 16 * 1024;

/// The knobs of falco.yaml's `metrics:` section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricsConfig {
    pub resource_utilization_enabled: bool,
    pub state_counters_enabled: bool,
    pub kernel_event_counters_enabled: bool,
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
    pub outputs_queue_num_drops: u64,
    pub output_write_errors: u64,
    pub kernel: KernelCounters,
    pub state: StateCounters,
    pub n_threads: u64,
    /// libsinsp's n_fds: each thread counts its process's table.
    pub n_fds: u64,
    /// Distinct fds in the table.
    pub kestrel_n_fds: u64,
    pub progs: &'a [ProgStats],
}

#[derive(serde::Serialize)]
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
    rendered: u64,
}

/// 0.37 memory: the zero check is made on the raw value, then kB or bytes
/// become whole MB (stats_writer.cpp get_metrics_output_fields_additional),
/// so a small nonzero figure shows as 0 rather than vanishing.
fn put_mem_037(f: &mut Fields<'_>, key: &str, raw: u64, mb: Option<u64>) {
    if raw == 0 {
        f.put(key, Value::U64(0));
    } else {
        f.put_always(key, Value::U64(mb.unwrap_or(raw)));
    }
}

/// 0.38+ memory: `*_kb`/`*_bytes` integers, or `*_mb` doubles rounded to one
/// decimal (metrics_collector convert_metric_to_unit_convention).
fn put_mem_038(f: &mut Fields<'_>, stem: &str, raw: u64, bytes: bool, to_mb: bool) {
    let mut k = Key::new();
    let _ = core::fmt::Write::write_fmt(
        &mut k,
        format_args!(
            "falco.{stem}_{}",
            match (to_mb, bytes) {
                (true, _) => "mb",
                (false, true) => "bytes",
                (false, false) => "kb",
            }
        ),
    );
    if to_mb {
        let div = if bytes { 1024.0 * 1024.0 } else { 1024.0 };
        f.put(&k, Value::F64(round1(raw as f64 / div)));
    } else {
        f.put(&k, Value::U64(raw));
    }
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
        }
    }

    pub fn host(&self) -> &HostInfo {
        &self.host
    }

    fn resource_fields(c: &MetricsConfig, f: &mut Fields<'_>, r: &ResourceSample, first: bool) {
        let mb = c.convert_memory_to_mb;
        f.put("falco.cpu_usage_perc", Value::F64(r.cpu_usage_perc));
        // The first interval is the few ms since start: too short to mean anything.
        let interval = |v: f64| Value::F64(if first { 0.0 } else { v });
        f.put(
            "kestrel.cpu_usage_perc_interval",
            interval(r.kestrel_cpu_usage_perc_interval),
        );
        f.put(
            "kestrel.host_cpu_usage_perc_interval",
            interval(r.host_cpu_usage_perc_interval),
        );
        match c.schema {
            Schema::Falco037 => {
                let kb = |v: u64| mb.then(|| kb_to_mb(v));
                put_mem_037(f, "falco.memory_rss", r.memory_rss_kb, kb(r.memory_rss_kb));
                put_mem_037(f, "falco.memory_vsz", r.memory_vsz_kb, kb(r.memory_vsz_kb));
                put_mem_037(f, "falco.memory_pss", r.memory_pss_kb, kb(r.memory_pss_kb));
                let cm = r.container_memory_used_bytes;
                put_mem_037(
                    f,
                    "falco.container_memory_used",
                    cm,
                    mb.then(|| bytes_to_mb(cm)),
                );
                put_mem_037(
                    f,
                    "falco.memory_used_host",
                    r.memory_used_host_kb,
                    kb(r.memory_used_host_kb),
                );
                f.put(
                    "falco.cpu_usage_perc_total_host",
                    Value::F64(r.cpu_usage_perc_total_host),
                );
                f.put("falco.procs_running_host", Value::U64(r.procs_running_host));
                f.put("falco.open_fds_host", Value::U64(r.open_fds_host));
            }
            Schema::Falco038 => {
                put_mem_038(f, "memory_rss", r.memory_rss_kb, false, mb);
                put_mem_038(f, "memory_vsz", r.memory_vsz_kb, false, mb);
                put_mem_038(f, "memory_pss", r.memory_pss_kb, false, mb);
                let cm = r.container_memory_used_bytes;
                put_mem_038(f, "container_memory_used", cm, true, mb);
                put_mem_038(f, "host_memory_used", r.memory_used_host_kb, false, mb);
                f.put(
                    "falco.host_cpu_usage_perc",
                    Value::F64(r.cpu_usage_perc_total_host),
                );
                f.put("falco.host_procs_running", Value::U64(r.procs_running_host));
                f.put("falco.host_open_fds", Value::U64(r.open_fds_host));
            }
        }
    }

    fn state_fields(c: &MetricsConfig, f: &mut Fields<'_>, inp: &Inputs<'_>) {
        let s = &inp.state;
        for (k, v) in [
            ("falco.n_threads", inp.n_threads),
            ("falco.n_fds", inp.n_fds),
            ("falco.n_added_fds", s.n_added_fds),
            ("falco.n_added_threads", s.n_added_threads),
            ("falco.n_cached_fd_lookups", s.n_cached_fd_lookups),
            ("falco.n_cached_thread_lookups", s.n_cached_thread_lookups),
            ("falco.n_drops_full_threadtable", s.n_drops_full_threadtable),
            ("falco.n_failed_fd_lookups", s.n_failed_fd_lookups),
            ("falco.n_failed_thread_lookups", s.n_failed_thread_lookups),
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
            ("kestrel.n_fds", inp.kestrel_n_fds),
            ("kestrel.n_inherited_fds", s.n_inherited_fds),
            ("kestrel.n_released_fds", s.n_released_fds),
            ("kestrel.n_proc_lookups", s.n_proc_lookups),
            ("kestrel.n_proc_lookup_misses", s.n_proc_lookup_misses),
            ("kestrel.n_purged_threads", s.n_purged_threads),
            ("kestrel.n_drops_full_fdtable", s.n_drops_full_fdtable),
            ("kestrel.n_decode_errors", s.n_decode_errors),
        ] {
            f.put(k, Value::U64(v));
        }
        if c.schema == Schema::Falco037 {
            // Container metadata is not tracked; libs 0.14 still had the fields.
            f.put("falco.n_containers", Value::U64(0));
            f.put("falco.n_missing_container_images", Value::U64(0));
        }
    }

    fn kernel_fields(
        schema: Schema,
        f: &mut Fields<'_>,
        k: &KernelCounters,
        base: &Mark,
        rate: &dyn Fn(u64, u64) -> f64,
    ) {
        let d_evts = k.n_evts.saturating_sub(base.kernel.n_evts);
        let d_drops = k.n_drops().saturating_sub(base.kernel.n_drops());
        f.put("scap.n_evts", Value::U64(k.n_evts));
        f.put("scap.n_evts_prev", Value::U64(base.kernel.n_evts));
        f.put(
            "scap.evts_rate_sec",
            Value::F64(rate(k.n_evts, base.kernel.n_evts)),
        );
        f.put("scap.n_drops", Value::U64(k.n_drops()));
        f.put("scap.n_drops_prev", Value::U64(base.kernel.n_drops()));
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
        let mut key = Key::new();
        for (cat, dirs) in k.n_drops_buffer.iter().enumerate() {
            for (dir, v) in dirs.iter().enumerate() {
                // No enter side exists for these two: nothing to publish.
                let exit_only = matches!(schema::CATEGORY_NAMES[cat], "proc_exit");
                if exit_only && dir == 0 {
                    continue;
                }
                schema.bucket_name(cat, dir, &mut key);
                f.put(&key, Value::U64(*v));
            }
        }
        f.put(
            "scap.n_drops_scratch_map",
            Value::U64(k.n_drops_scratch_map),
        );
        // Kestrel never drops a record for an unreadable field, so Falco's
        // page-fault drop count is 0; the field reads are counted apart.
        let (pf, bug) = if schema.has_pf_and_bug() {
            ("scap.n_drops_page_faults", "scap.n_drops_bug")
        } else {
            ("", "kestrel.n_drops_bug")
        };
        if !pf.is_empty() {
            f.put(pf, Value::U64(0));
        }
        f.put(bug, Value::U64(k.n_drops_bug));
        f.put("kestrel.n_page_faults", Value::U64(k.n_drops_page_faults));
    }

    /// Renders one snapshot line (newline-terminated) and advances the
    /// previous-values the next snapshot's rates are taken against.
    pub fn render(&mut self, inp: &Inputs<'_>) -> Rendered<'_> {
        let now_mono = time::monotonic_ns();
        let now_real = time::realtime_ns();
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
        let time_str = time::rfc3339_nanos(now_real, &mut self.time_buf);

        let mut f = Fields::new(self.cfg.include_empty_values);
        let c = self.cfg;
        f.put("evt.source", Value::Str("syscall"));
        f.put("evt.time", Value::U64(now_real));
        // stats_writer.cpp: (now - start_ts_epoch) / ONE_SECOND_IN_NS, wall clock.
        f.put(
            "falco.duration_sec",
            Value::U64(now_real.saturating_sub(self.host.start_ts_ns) / 1_000_000_000),
        );
        if base.num_evts > 0 {
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
        f.put(c.schema.hostname_key(), Value::Str(&self.host.hostname));
        f.put(
            "falco.kernel_release",
            Value::Str(&self.host.kernel_release),
        );
        f.put("falco.num_evts", Value::U64(inp.num_evts));
        f.put("falco.num_evts_prev", Value::U64(base.num_evts));
        f.put(
            "falco.outputs_queue_num_drops",
            Value::U64(inp.outputs_queue_num_drops),
        );
        f.put("falco.start_ts", Value::U64(self.host.start_ts_ns));
        if c.schema == Schema::Falco038 {
            // Kestrel never reloads its configuration: the start is the load.
            f.put("falco.reload_ts", Value::U64(self.host.start_ts_ns));
        }
        f.put("falco.version", Value::Str(VERSION));
        f.put("scap.engine_name", Value::Str(ENGINE_NAME));
        f.put(
            "kestrel.output_write_errors",
            Value::U64(inp.output_write_errors),
        );
        if let Some(r) = &res {
            Self::resource_fields(&c, &mut f, r, first);
        }
        if c.state_counters_enabled {
            Self::state_fields(&c, &mut f, inp);
        }
        if c.kernel_event_counters_enabled {
            Self::kernel_fields(c.schema, &mut f, &inp.kernel, &base, &rate);
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

        f.sort();
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
