//! An AgentConfig from the `run` flags (the config file merged in),
//! defaults filled: at start, and again on SIGHUP (agent::reload), from the
//! same command line and the file as it is then.

use std::path::PathBuf;

use super::AgentConfig;
use crate::alerts::DropAlertConfig;
use crate::capture::btf::AttachMode;
use crate::capture::syscalls::Selection;
use crate::capture::{ProbeConfig, DEFAULT_RING_BYTES};
use crate::cli;
use crate::metrics::culprits::CulpritConfig;
use crate::metrics::MetricsConfig;
use crate::output::OutputSpec;
use crate::rules::engine::EngineConfig;
use crate::rules::{Priority, RuleSet};
use crate::state::{DEFAULT_FD_CAPACITY, DEFAULT_THREAD_CAPACITY};

const DEFAULT_INTERVAL_NS: u64 = 15 * 60 * 1_000_000_000;

/// A reload's configuration from `run`'s tokens as the config file now
/// reads, its rules loaded (the files as they now read), and the values of
/// its restart-only keys. An error is one line.
pub fn for_reload(tokens: &[String]) -> Result<(AgentConfig, RestartKeys), String> {
    let t: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let a = cli::run_args_with_config(&t)?;
    let keys = restart_keys(&a);
    let threads = a.thread_table_size.unwrap_or(DEFAULT_THREAD_CAPACITY);
    let fds = a.fd_table_size.unwrap_or(DEFAULT_FD_CAPACITY);
    let rules = crate::rules::files::load(&a.rules, a.min_priority.unwrap_or(Priority::Debug))
        .map_err(|e| format!("rules: {e}"))?;
    Ok((agent_config(a, threads, fds, rules), keys))
}

/// Each key fixed at start (the probe, the tables, the process) with its
/// value, defaults filled (a key written out with its default value is no
/// change). The outputs, the exporter and the rules change live
/// (agent::reload).
pub type RestartKeys = Vec<(&'static str, String)>;

pub fn restart_keys(a: &cli::RunArgs) -> RestartKeys {
    let d = |v: &dyn std::fmt::Debug| format!("{v:?}");
    let dc = CulpritConfig::default();
    vec![
        (
            "syscalls",
            d(a.syscalls.as_ref().unwrap_or(&Selection::Default)),
        ),
        (
            "ring-buffer-size",
            d(&a.ring_buffer_size.unwrap_or(DEFAULT_RING_BYTES)),
        ),
        ("enter-events", d(&a.enter_events)),
        ("attach", d(&a.attach.unwrap_or(AttachMode::Auto))),
        ("event-buffer", d(&a.event_buffer.unwrap_or_default())),
        ("stage-records", d(&a.stage_records.unwrap_or(true))),
        ("btf", d(&a.btf)),
        (
            "thread-table-size",
            d(&a.thread_table_size.unwrap_or(DEFAULT_THREAD_CAPACITY)),
        ),
        (
            "fd-table-size",
            d(&a.fd_table_size.unwrap_or(DEFAULT_FD_CAPACITY)),
        ),
        ("culprits", d(&a.culprits.unwrap_or(dc.enabled))),
        (
            "culprit-capacity",
            d(&a.culprit_capacity.unwrap_or(dc.capacity)),
        ),
        (
            "culprit-sample-period",
            d(&a.culprit_sample_period.unwrap_or(dc.sample_period)),
        ),
        ("user", d(&a.user)),
        ("pidfile", d(&a.pidfile)),
        ("duration", d(&a.duration)),
    ]
}

/// The run's flags (the config file already merged in), defaults filled.
pub fn agent_config(a: cli::RunArgs, threads: usize, fds: usize, rules: RuleSet) -> AgentConfig {
    let keys = restart_keys(&a);
    let d = MetricsConfig::default();
    let per_cpu = a
        .kernel_event_counters_per_cpu_enabled
        .unwrap_or(d.kernel_event_counters_per_cpu_enabled);
    let dc = CulpritConfig::default();
    let culprits = CulpritConfig {
        enabled: a.culprits.unwrap_or(dc.enabled),
        top_syscalls: a.culprit_top_syscalls.unwrap_or(dc.top_syscalls),
        top_procs: a.culprit_top_procs.unwrap_or(dc.top_procs),
        capacity: a.culprit_capacity.unwrap_or(dc.capacity),
        sample_period: a.culprit_sample_period.unwrap_or(dc.sample_period),
    };
    let dd = DropAlertConfig::default();
    let probe = ProbeConfig::for_ring(a.ring_buffer_size.unwrap_or(DEFAULT_RING_BYTES));
    let de = EngineConfig::default();
    let selection = with_rules(a.syscalls.unwrap_or(probe.selection.clone()), &rules);
    AgentConfig {
        probe: ProbeConfig {
            selection,
            enter_events: a.enter_events,
            attach: a.attach.unwrap_or(AttachMode::Auto),
            event_buffer: a.event_buffer.unwrap_or_default(),
            stage_records: a.stage_records.unwrap_or(probe.stage_records),
            btf: a.btf.map(PathBuf::from),
            culprits: culprits.enabled,
            culprit_capacity: culprits.capacity as u32,
            calls_sample_period: culprits.sample_period,
            failed_open_paths: !rules.rules.is_empty(),
            ..probe
        },
        metrics: MetricsConfig {
            resource_utilization_enabled: a
                .resource_utilization_enabled
                .unwrap_or(d.resource_utilization_enabled),
            state_counters_enabled: a.state_counters_enabled.unwrap_or(d.state_counters_enabled),
            // Falco: the per-CPU knob turns the kernel counters on.
            kernel_event_counters_enabled: per_cpu
                || a.kernel_event_counters_enabled
                    .unwrap_or(d.kernel_event_counters_enabled),
            kernel_event_counters_per_cpu_enabled: per_cpu,
            libbpf_stats_enabled: a.libbpf_stats_enabled.unwrap_or(d.libbpf_stats_enabled),
            convert_memory_to_mb: a.convert_memory_to_mb.unwrap_or(d.convert_memory_to_mb),
            include_empty_values: a.include_empty_values.unwrap_or(d.include_empty_values),
            schema: a.schema.unwrap_or(d.schema),
        },
        outputs: if a.output.is_empty() {
            vec![OutputSpec::Stdout]
        } else {
            a.output
        },
        interval_ns: a.interval.unwrap_or(DEFAULT_INTERVAL_NS),
        duration_ns: a.duration,
        thread_capacity: threads,
        fd_capacity: fds,
        allow_special_outputs: a.allow_special_outputs,
        prometheus: crate::output::prometheus::PrometheusConfig {
            listen: a.prometheus,
            strict_names: a.prometheus_names.unwrap_or(false),
            web_config: a.prometheus_web_config.map(PathBuf::from),
        },
        verbose: a.verbose,
        culprits,
        drops: DropAlertConfig {
            actions: a.syscall_event_drops_actions.unwrap_or(dd.actions),
            threshold: a.syscall_event_drops_threshold.unwrap_or(dd.threshold),
            rate: a.syscall_event_drops_rate.unwrap_or(dd.rate),
            max_burst: a.syscall_event_drops_max_burst.unwrap_or(dd.max_burst),
        },
        thread_timeout_ns: a.thread_timeout.unwrap_or(30 * 60 * 1_000_000_000),
        thread_purge_interval_ns: a.thread_purge_interval.unwrap_or(20 * 60 * 1_000_000_000),
        rules,
        engine: EngineConfig {
            rate: a.outputs_rate.unwrap_or(de.rate),
            max_burst: a.outputs_max_burst.unwrap_or(de.max_burst),
            match_all: a.rule_matching.unwrap_or(de.match_all),
            ..de
        },
        rules_counters: a.rules_counters_enabled.unwrap_or(true),
        reload_tokens: None,
        restart_keys: keys,
    }
}

/// The selection plus every syscall a loaded rule can match (Falco's
/// configure_interesting_sets.cpp merges the rules' codes the same way);
/// `--syscalls none` stays none.
pub fn with_rules(sel: Selection, rules: &RuleSet) -> Selection {
    let wanted: Vec<String> = rules
        .wanted_codes()
        .codes()
        .filter(|&c| c != crate::rules::events::PROCEXIT)
        .map(|c| crate::rules::events::name_of(c).to_string())
        .collect();
    match sel {
        Selection::None => Selection::None,
        _ if wanted.is_empty() => sel,
        Selection::Default => {
            let mut v = vec!["default".to_string()];
            v.extend(wanted);
            Selection::Names(v)
        }
        Selection::Names(mut v) => {
            v.extend(wanted);
            Selection::Names(v)
        }
    }
}
