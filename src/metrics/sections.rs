//! The sections of a snapshot (the fields every one carries, resource utilisation, state
//! counters, kernel counters), each written under the chosen schema's names
//! and types. Separate from the assembly so the schema rules read in one place.

use super::fields::{Fields, Key, Value};
use super::resources::{bytes_to_mb, kb_to_mb, round1, ResourceSample};
use super::{
    schema, HostInfo, Inputs, Mark, MetricsConfig, Schema, Snapshotter, ENGINE_NAME, VERSION,
};
use crate::capture::{KernelCounters, ProgStats};

/// 0.37 memory: the zero check is made on the raw value, then kB or bytes
/// become whole MB (stats_writer.cpp get_metrics_output_fields_additional),
/// so a small nonzero figure shows as 0 rather than vanishing.
pub(super) fn put_mem_037(f: &mut Fields<'_>, key: &str, raw: u64, mb: Option<u64>) {
    if raw == 0 {
        f.put(key, Value::U64(0));
    } else {
        f.put_always(key, Value::U64(mb.unwrap_or(raw)));
    }
}

/// 0.38+ memory: `*_kb`/`*_bytes` integers, or `*_mb` doubles rounded to one
/// decimal (metrics_collector convert_metric_to_unit_convention).
pub(super) fn put_mem_038(f: &mut Fields<'_>, stem: &str, raw: u64, bytes: bool, to_mb: bool) {
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
    /// The fields every snapshot carries, whatever is enabled.
    pub(super) fn base_fields<'a>(
        c: &MetricsConfig,
        host: &'a HostInfo,
        f: &mut Fields<'a>,
        inp: &Inputs<'a>,
        base: &Mark,
        now_real: u64,
        rate: &dyn Fn(u64, u64) -> f64,
    ) {
        f.put("evt.source", Value::Str("syscall"));
        f.put("evt.time", Value::U64(now_real));
        // stats_writer.cpp: (now - start_ts_epoch) / ONE_SECOND_IN_NS, wall clock.
        f.put(
            "falco.duration_sec",
            Value::U64(now_real.saturating_sub(host.start_ts_ns) / 1_000_000_000),
        );
        if base.num_evts > 0 {
            f.put(
                "falco.evts_rate_sec",
                Value::F64(rate(inp.num_evts, base.num_evts)),
            );
        }
        f.put("falco.host_num_cpus", Value::U64(host.num_cpus));
        f.put(c.schema.hostname_key(), Value::Str(&host.hostname));
        f.put("falco.kernel_release", Value::Str(&host.kernel_release));
        f.put("falco.num_evts", Value::U64(inp.num_evts));
        f.put("falco.num_evts_prev", Value::U64(base.num_evts));
        f.put(
            "falco.outputs_queue_num_drops",
            Value::U64(inp.outputs_queue_num_drops),
        );
        f.put("falco.start_ts", Value::U64(host.start_ts_ns));
        if c.schema == Schema::Falco042 {
            // The start's load, or the last SIGHUP's (agent/reload.rs).
            f.put("falco.reload_ts", Value::U64(host.reload_ts_ns));
            for (k, v) in &host.netinfo {
                f.put(k, Value::Str(v));
            }
        }
        f.put("falco.version", Value::Str(VERSION));
        f.put("scap.engine_name", Value::Str(ENGINE_NAME));
        f.put(
            "kestrel.output_write_errors",
            Value::U64(inp.output_write_errors),
        );
        f.put("kestrel.attach", Value::Str(inp.attach));
        f.put("kestrel.mqtt_drops", Value::U64(inp.mqtt_drops));
        f.put(
            "kestrel.syslog_stream_drops",
            Value::U64(inp.syslog_stream_drops),
        );
        if let Some(cul) = inp.culprits {
            f.put("kestrel.top_syscalls", Value::Syscalls(cul));
            f.put("kestrel.top_procs", Value::Procs(cul, false));
            f.put("kestrel.top_procs_by_drops", Value::Procs(cul, true));
        }
        f.put("kestrel.n_compat_evts", Value::U64(inp.num_compat_evts));
    }

    /// Rule counters (falco stats_writer.cpp, get_metrics_output_fields_additional,
    /// 0.44.1): `falco.rules.matches_total` and one `falco.rules.<name>` per
    /// rule with matches (all with include_empty_values); then the engine's
    /// own figures under `kestrel.`.
    pub(super) fn rule_fields<'a>(
        f: &mut Fields<'a>,
        e: &'a crate::rules::engine::Engine,
        counters: bool,
    ) {
        let c = &e.counters;
        if counters {
            f.put_always("falco.rules.matches_total", Value::U64(c.matches_total));
            for (key, n) in e.keys.iter().zip(&c.by_rule) {
                f.put(key, Value::U64(*n));
            }
        }
        f.put_always("kestrel.rules_loaded", Value::U64(e.set.rules.len() as u64));
        f.put_always(
            "kestrel.rules_skipped",
            Value::U64(e.set.skipped.len() as u64),
        );
        f.put("kestrel.alerts_emitted", Value::U64(c.emitted));
        f.put("kestrel.alerts_rate_limited", Value::U64(c.rate_limited));
        f.put("kestrel.alerts_queue_drops", Value::U64(c.queue_drops));
        f.put("kestrel.rules_evaluated", Value::U64(c.evaluated));
    }

    /// BPF run-time stats per program (libbpf_stats_enabled).
    pub(super) fn prog_fields(f: &mut Fields<'_>, progs: &[ProgStats]) {
        for p in progs {
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

    pub(super) fn resource_fields(
        c: &MetricsConfig,
        f: &mut Fields<'_>,
        r: &ResourceSample,
        first: bool,
    ) {
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
        // Falco's container_memory_used is one fixed file (absent on cgroup v2);
        // this is the agent's own cgroup, v1 or v2, in bytes.
        f.put(
            "kestrel.cgroup_memory_used_bytes",
            Value::U64(r.kestrel_cgroup_memory_used_bytes),
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
            Schema::Falco042 => {
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

    pub(super) fn state_fields(c: &MetricsConfig, f: &mut Fields<'_>, inp: &Inputs<'_>) {
        let s = &inp.state;
        // The fields are sorted at the end, so the order here is free.
        for (k, v) in s.libs() {
            f.put_fmt(Value::U64(v), format_args!("falco.{k}"));
        }
        for (k, v) in [
            ("falco.n_threads", inp.n_threads),
            ("falco.n_fds", inp.n_fds),
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

    /// `scap.n_evts_cpu_N` / `scap.n_drops_cpu_N` (libpman stats.c,
    /// collect_kernel_counter_stats, Falco 0.39+), records. Falco 0.37 had
    /// none: that schema shows them as `kestrel.`.
    pub(super) fn per_cpu_fields(schema: Schema, f: &mut Fields<'_>, per_cpu: &[(u64, u64)]) {
        let p = match schema {
            Schema::Falco037 => "kestrel",
            Schema::Falco042 => "scap",
        };
        for (cpu, (evts, drops)) in per_cpu.iter().enumerate() {
            f.put_fmt(Value::U64(*evts), format_args!("{p}.n_evts_cpu_{cpu}"));
            f.put_fmt(Value::U64(*drops), format_args!("{p}.n_drops_cpu_{cpu}"));
        }
    }

    pub(super) fn kernel_fields(
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
                if dir == 0 && !schema::has_enter_side(cat) {
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
}
