use kestrel::agent::{self, AgentConfig};
use kestrel::alerts::{DropAlertConfig, EXIT_ON_DROPS};
use kestrel::capture::{ProbeConfig, DEFAULT_RING_BYTES};
use kestrel::cli::{self, Command};
use kestrel::metrics::MetricsConfig;
use kestrel::output::OutputSpec;
use kestrel::state::{DEFAULT_FD_CAPACITY, DEFAULT_THREAD_CAPACITY};

const DEFAULT_INTERVAL_NS: u64 = 15 * 60 * 1_000_000_000;

fn main() {
    let cli = cli::parse_or_exit();
    let a = match cli.cmd {
        Command::Run(a) => a,
        Command::Check(c) => {
            let report = kestrel::check::run();
            if c.json {
                kestrel::check::print_json(&report);
            } else {
                kestrel::check::print_text(&report);
            }
            std::process::exit(if report.can_run { 0 } else { 1 });
        }
    };
    let d = MetricsConfig::default();
    let dd = DropAlertConfig::default();
    let probe = ProbeConfig::for_ring(a.ring_buffer_size.unwrap_or(DEFAULT_RING_BYTES));
    let cfg = AgentConfig {
        probe: ProbeConfig {
            selection: a.syscalls.unwrap_or(probe.selection.clone()),
            enter_events: a.enter_events,
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
        thread_capacity: a.thread_table_size.unwrap_or(DEFAULT_THREAD_CAPACITY),
        fd_capacity: a.fd_table_size.unwrap_or(DEFAULT_FD_CAPACITY),
        pidfile: a.pidfile,
        verbose: a.verbose,
        drops: DropAlertConfig {
            actions: a.syscall_event_drops_actions.unwrap_or(dd.actions),
            threshold: a.syscall_event_drops_threshold.unwrap_or(dd.threshold),
            rate: a.syscall_event_drops_rate.unwrap_or(dd.rate),
            max_burst: a.syscall_event_drops_max_burst.unwrap_or(dd.max_burst),
        },
        thread_timeout_ns: a.thread_timeout.unwrap_or(30 * 60 * 1_000_000_000),
        thread_purge_interval_ns: a.thread_purge_interval.unwrap_or(20 * 60 * 1_000_000_000),
    };
    match agent::run(cfg) {
        Ok(agent::RunEnd::Stopped) => {}
        Ok(agent::RunEnd::DropExit) => std::process::exit(EXIT_ON_DROPS),
        Err(e) => {
            eprintln!("kestrel: {}", e.0);
            std::process::exit(1);
        }
    }
}
