use kestrel::agent::{self, AgentConfig};
use std::path::PathBuf;

use kestrel::alerts::{DropAlertConfig, EXIT_ON_DROPS};
use kestrel::capture::btf::AttachMode;
use kestrel::capture::syscalls::Selection;
use kestrel::capture::{ProbeConfig, DEFAULT_RING_BYTES};
use kestrel::cli::{self, Command};
use kestrel::metrics::culprits::CulpritConfig;
use kestrel::metrics::MetricsConfig;
use kestrel::output::OutputSpec;
use kestrel::rules::engine::EngineConfig;
use kestrel::rules::{Priority, RuleSet};
use kestrel::state::{DEFAULT_FD_CAPACITY, DEFAULT_THREAD_CAPACITY};

const DEFAULT_INTERVAL_NS: u64 = 15 * 60 * 1_000_000_000;

fn main() {
    // Before anything opens a file: closed 0-2 get /dev/null, stderr goes
    // non-blocking.
    kestrel::log::init();
    let cli = cli::parse_or_exit();
    let a = match cli.cmd {
        Command::Run(a) => a,
        Command::ExportProbe(e) => export_probe(&e.file),
        Command::Check(c) => check(c),
    };
    let threads = a.thread_table_size.unwrap_or(DEFAULT_THREAD_CAPACITY);
    let fds = a.fd_table_size.unwrap_or(DEFAULT_FD_CAPACITY);
    // Everything that can be wrong with the input, before anything is created.
    let checked =
        match kestrel::preflight::check(a.pidfile.as_deref(), a.user.as_deref(), threads, fds) {
            Ok(c) => c,
            Err(e) => cli::bad_input(&e),
        };
    let rules =
        match kestrel::rules::files::load(&a.rules, a.min_priority.unwrap_or(Priority::Debug)) {
            Ok(r) => r,
            Err(e) => cli::bad_input(&format!("rules: {e}")),
        };
    match agent::run(agent_config(a, threads, fds, rules), checked) {
        Ok(agent::RunEnd::Stopped) => {}
        Ok(agent::RunEnd::DropExit) => std::process::exit(EXIT_ON_DROPS),
        Err(e) => {
            kestrel::log_line!("{}", e.0);
            std::process::exit(e.1);
        }
    }
}

/// `kestrel check`: the report, exit 0 when this host can run the probe.
fn check(c: cli::CheckArgs) -> ! {
    let probe = ProbeConfig {
        attach: c.attach.unwrap_or(AttachMode::Auto),
        btf: c.btf.map(PathBuf::from),
        ..ProbeConfig::default()
    };
    // A one-shot report: into a closed pipe it ends quietly the way cat
    // does (SIGPIPE), never with a panic.
    // SAFETY: restoring the default disposition of one signal.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let report = kestrel::check::run(&probe);
    if c.json {
        kestrel::check::print_json(&report);
    } else {
        kestrel::check::print_text(&report);
    }
    std::process::exit(if report.can_run { 0 } else { 1 });
}

/// The run's flags (the config file already merged in), defaults filled.
fn agent_config(a: cli::RunArgs, threads: usize, fds: usize, rules: RuleSet) -> AgentConfig {
    let d = MetricsConfig::default();
    let dc = CulpritConfig::default();
    let culprits = CulpritConfig {
        enabled: a.culprits.unwrap_or(dc.enabled),
        top_syscalls: a.culprit_top_syscalls.unwrap_or(dc.top_syscalls),
        top_procs: a.culprit_top_procs.unwrap_or(dc.top_procs),
        capacity: a.culprit_capacity.unwrap_or(dc.capacity),
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
            btf: a.btf.map(PathBuf::from),
            culprits: culprits.enabled,
            culprit_capacity: culprits.capacity as u32,
            failed_open_paths: !rules.rules.is_empty(),
            ..probe
        },
        metrics: MetricsConfig {
            resource_utilization_enabled: a
                .resource_utilization_enabled
                .unwrap_or(d.resource_utilization_enabled),
            state_counters_enabled: a.state_counters_enabled.unwrap_or(d.state_counters_enabled),
            kernel_event_counters_enabled: a
                .kernel_event_counters_enabled
                .unwrap_or(d.kernel_event_counters_enabled),
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
        prometheus: kestrel::output::prometheus::PrometheusConfig {
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
    }
}

/// The selection plus every syscall a loaded rule can match (Falco's
/// configure_interesting_sets.cpp merges the rules' codes the same way);
/// `--syscalls none` stays none.
fn with_rules(sel: Selection, rules: &RuleSet) -> Selection {
    let wanted: Vec<String> = rules
        .wanted_codes()
        .codes()
        .filter(|&c| c != kestrel::rules::events::PROCEXIT)
        .map(|c| kestrel::rules::events::name_of(c).to_string())
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

/// Writes the embedded BPF object; exit 2 when the file cannot be written.
fn export_probe(file: &str) -> ! {
    let obj = kestrel::capture::probe_object();
    match std::fs::write(file, obj) {
        Ok(()) => {
            println!(
                "kestrel: wrote the probe object ({} bytes) to {file}",
                obj.len()
            );
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("kestrel: export-probe: cannot write {file}: {e}");
            std::process::exit(2)
        }
    }
}
