//! Command line: `kestrel run` and `kestrel check`. Parsing errors become one
//! line on stderr and exit status 2 (argh alone would exit 1).

use argh::FromArgs;

use crate::alerts::{parse_actions, DropAction};
use crate::capture::btf::AttachMode;
use crate::capture::buffer::EventBuffer;
use crate::capture::syscalls::Selection;
use crate::metrics::Schema;
use crate::output::OutputSpec;
use crate::rules::Priority;

pub(crate) mod values;
pub use values::parse_duration;
use values::*;

#[derive(FromArgs, Debug)]
/// Kestrel: eBPF runtime monitoring with Falco-format metrics snapshots.
pub struct Cli {
    #[argh(subcommand)]
    pub cmd: Command,
}

// Parsed once at start; argh's subcommands cannot be boxed.
#[allow(clippy::large_enum_variant)]
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    Run(RunArgs),
    Check(CheckArgs),
    ExportProbe(ExportProbeArgs),
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "export-probe")]
/// Write the BPF object this binary loads, byte for byte, to FILE; cut a
/// kernel's BTF to what it needs with `bpftool gen min_core_btf FULL.btf MIN.btf FILE`.
pub struct ExportProbeArgs {
    /// where to write the object
    #[argh(positional)]
    pub file: String,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "check")]
/// Say whether this host can run the probe and, for each failing line, what to do.
/// Exit status 0 when it can run, 1 when it cannot.
pub struct CheckArgs {
    /// print the report as JSON
    #[argh(switch)]
    pub json: bool,
    /// BTF file for CO-RE, as `run --btf`
    #[argh(option, from_str_fn(parse_btf_file))]
    pub btf: Option<String>,
    /// attach path, as `run --attach`
    #[argh(option, from_str_fn(AttachMode::parse))]
    pub attach: Option<AttachMode>,
    /// event buffer, as `run --event-buffer`
    #[argh(option, from_str_fn(EventBuffer::parse))]
    pub event_buffer: Option<EventBuffer>,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "run")]
/// Load the probe and write a metrics snapshot every interval.
pub struct RunArgs {
    /// a TOML file whose keys are these flags' names; flags given here win
    #[argh(option)]
    pub config: Option<String>,
    /// where snapshots go: stdout, file:PATH, syslog://HOST:PORT[?opts],
    /// syslog+tcp:// or syslog+tls://HOST:PORT[?opts], mqtt:// or
    /// mqtts://HOST[:PORT]/PREFIX[?opts], prometheus-textfile:PATH; repeatable
    #[argh(option, from_str_fn(OutputSpec::parse))]
    pub output: Vec<OutputSpec>,
    /// snapshot interval, e.g. 500ms, 15s, 15m, 1h (default 15m; min 100ms)
    #[argh(option, from_str_fn(parse_interval))]
    pub interval: Option<u64>,
    /// stop after this long (default: until SIGTERM or SIGINT)
    #[argh(option, from_str_fn(parse_duration))]
    pub duration: Option<u64>,
    /// ring buffer size in bytes, a power of two from 4K (default 1M); measured on 2 cores at ~60k events/s: 4K drops ~20 %, 16K-64K 1-3 %, 256K none: use 256K or more
    #[argh(option, from_str_fn(parse_ring_size))]
    pub ring_buffer_size: Option<u32>,
    /// syscalls to trace: default, none, or a comma list (may include default)
    #[argh(option, from_str_fn(Selection::parse))]
    pub syscalls: Option<Selection>,
    /// also capture enter events (attaches sys_enter; fills the pairing counters)
    #[argh(switch)]
    pub enter_events: bool,
    /// thread table capacity (default 4096)
    #[argh(option, from_str_fn(parse_count))]
    pub thread_table_size: Option<usize>,
    /// fd table capacity (default 8192)
    #[argh(option, from_str_fn(parse_count))]
    pub fd_table_size: Option<usize>,
    /// resource utilisation fields (default true)
    #[argh(option, from_str_fn(parse_bool))]
    pub resource_utilization_enabled: Option<bool>,
    /// state counter fields (default true)
    #[argh(option, from_str_fn(parse_bool))]
    pub state_counters_enabled: Option<bool>,
    /// kernel event counter fields (default true)
    #[argh(option, from_str_fn(parse_bool))]
    pub kernel_event_counters_enabled: Option<bool>,
    /// events and drops of each CPU, Falco 0.39+ (default false; true turns on kernel_event_counters_enabled)
    #[argh(option, from_str_fn(parse_bool))]
    pub kernel_event_counters_per_cpu_enabled: Option<bool>,
    /// BPF program run-time stats (default false; turned on via BPF_ENABLE_STATS)
    #[argh(option, from_str_fn(parse_bool))]
    pub libbpf_stats_enabled: Option<bool>,
    /// memory fields in MB instead of kB/bytes (default true)
    #[argh(option, from_str_fn(parse_bool))]
    pub convert_memory_to_mb: Option<bool>,
    /// keep zero-valued fields (default false)
    #[argh(option, from_str_fn(parse_bool))]
    pub include_empty_values: Option<bool>,
    /// field names and types: falco-0.37 (default, the seed's) or falco-0.42 (Falco 0.42+; falco-0.38 is its old name)
    #[argh(option, from_str_fn(Schema::parse))]
    pub schema: Option<Schema>,
    /// drop alert actions, Falco's syscall_event_drops: ignore, or a list of log, alert, exit (default log,alert)
    #[argh(option, from_str_fn(parse_actions))]
    pub syscall_event_drops_actions: Option<Vec<DropAction>>,
    /// share of events dropped in a second above which actions run (default 0.1)
    #[argh(option, from_str_fn(parse_threshold))]
    pub syscall_event_drops_threshold: Option<f64>,
    /// actions allowed per second on average (default 0.03333, one per 30 s)
    #[argh(option, from_str_fn(parse_positive))]
    pub syscall_event_drops_rate: Option<f64>,
    /// actions allowed in a burst (default 1)
    #[argh(option, from_str_fn(parse_burst))]
    pub syscall_event_drops_max_burst: Option<f64>,
    /// a thread not looked up for this long is purged if /proc no longer has it (default 30m)
    #[argh(option, from_str_fn(parse_duration))]
    pub thread_timeout: Option<u64>,
    /// how often the thread table is swept for such threads (default 20m)
    #[argh(option, from_str_fn(parse_interval))]
    pub thread_purge_interval: Option<u64>,
    /// write the agent's pid to this file (created exclusively, never through a symlink)
    #[argh(option)]
    pub pidfile: Option<String>,
    /// culprit counters: per-syscall counts of every syscall in the kernel,
    /// top processes by traced events and drops (default true)
    #[argh(option, from_str_fn(parse_bool))]
    pub culprits: Option<bool>,
    /// syscalls listed in kestrel.top_syscalls, 1 to 32 (default 5)
    #[argh(option, from_str_fn(parse_top))]
    pub culprit_top_syscalls: Option<usize>,
    /// processes listed in kestrel.top_procs*, 1 to 32 (default 5)
    #[argh(option, from_str_fn(parse_top))]
    pub culprit_top_procs: Option<usize>,
    /// processes tracked per interval for the culprit lists, 1 to 65536 (default 256)
    #[argh(option, from_str_fn(parse_culprit_capacity))]
    pub culprit_capacity: Option<usize>,
    /// mean syscalls per CPU between two per-process samples (top processes
    /// by every syscall, traced or not): a power of two up to 65536, or 0 for
    /// none (default 64)
    #[argh(option, from_str_fn(parse_sample_period))]
    pub culprit_sample_period: Option<u32>,
    /// tracepoint flavour: auto (tp_btf when the kernel has BTF, else raw_tp), tp_btf or raw_tp
    #[argh(option, from_str_fn(AttachMode::parse))]
    pub attach: Option<AttachMode>,
    /// event buffer: auto (the BPF ring buffer where the kernel has it, 5.8+, else
    /// per-CPU perf buffers), ring or perf
    #[argh(option, from_str_fn(EventBuffer::parse))]
    pub event_buffer: Option<EventBuffer>,
    /// small records (open, close, dup, socket) go to the ring buffer in per-CPU
    /// groups, sent within a jiffy, at a task switch or before any other record
    /// (default true; 64-bit kernels with the ring buffer)
    #[argh(option, from_str_fn(parse_bool))]
    pub stage_records: Option<bool>,
    /// BTF file for CO-RE when the kernel has none (default: search
    /// /etc/kestrel/btf/RELEASE.btf, /usr/lib/kestrel/btf/RELEASE.btf)
    #[argh(option, from_str_fn(parse_btf_file))]
    pub btf: Option<String>,
    /// serve GET /metrics (Prometheus text) on PORT, :PORT (loopback) or ADDR:PORT
    #[argh(option, from_str_fn(crate::output::prometheus::parse_listen))]
    pub prometheus: Option<std::net::SocketAddr>,
    /// metric names: falco (exactly Falco's, default) or strict (promtool-clean)
    #[argh(option, from_str_fn(crate::output::prometheus::parse_names))]
    pub prometheus_names: Option<bool>,
    /// TLS and Basic auth for --prometheus: an exporter-toolkit web config file
    #[argh(option)]
    pub prometheus_web_config: Option<String>,
    /// after attach, switch to this user (name or uid), keeping only CAP_BPF
    #[argh(option)]
    pub user: Option<String>,
    /// accept FIFOs, sockets and devices as file: outputs (written non-blocking)
    #[argh(switch)]
    pub allow_special_outputs: bool,
    /// more log lines on stderr
    #[argh(switch, short = 'v')]
    pub verbose: bool,
    /// a rules file in Falco's format (repeatable, loaded in order; config
    /// key rules_files); `none` runs no rules. Default: the built-in edge ruleset
    #[argh(option)]
    pub rules: Vec<String>,
    /// leave out rules below this priority (emergency ... debug; Falco's `priority`)
    #[argh(option, from_str_fn(parse_priority))]
    pub min_priority: Option<Priority>,
    /// rule match counters in the snapshot and /metrics (default true)
    #[argh(option, from_str_fn(parse_bool))]
    pub rules_counters_enabled: Option<bool>,
    /// alerts per second once the burst is spent; 0 turns the limit off (default 10)
    #[argh(option, from_str_fn(parse_rate))]
    pub outputs_rate: Option<f64>,
    /// alerts allowed in a burst (default 100)
    #[argh(option, from_str_fn(parse_burst))]
    pub outputs_max_burst: Option<f64>,
    /// first (an event alerts for its first matching rule, Falco's default) or all
    #[argh(option, from_str_fn(parse_rule_matching))]
    pub rule_matching: Option<bool>,
}

/// Prints one line naming the problem (control characters escaped) and
/// exits 2.
pub fn bad_input(line: &str) -> ! {
    crate::log_line!("{line}");
    std::process::exit(2);
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("bad arguments").trim()
}

/// `arg` as UTF-8, or the line saying it is not: every flag and value is
/// text to argh, and a path is no exception.
fn utf8_arg(i: usize, arg: &std::ffi::OsStr) -> Result<&str, String> {
    use std::os::unix::ffi::OsStrExt;
    arg.to_str().ok_or_else(|| {
        let mut shown = String::new();
        for chunk in arg.as_bytes().utf8_chunks() {
            shown.push_str(&crate::log::escape(chunk.valid()));
            for b in chunk.invalid() {
                shown.push_str(&format!("\\x{b:02x}"));
            }
        }
        format!("argument {i} '{shown}' is not valid UTF-8")
    })
}

/// What parsing argv came to when it is not a command to run.
#[derive(Debug, PartialEq, Eq)]
pub enum Early {
    /// --help: print this on stdout, exit 0.
    Help(String),
    /// One line for stderr, exit 2.
    Bad(String),
}

/// Parses argv (any bytes) and the `--config` file.
pub fn parse_args(args: &[std::ffi::OsString]) -> Result<Cli, Early> {
    let cmd = args
        .first()
        .map(|a| a.to_string_lossy())
        .map(|a| a.rsplit('/').next().unwrap_or(&a).to_string())
        .unwrap_or_else(|| "kestrel".into());
    let rest = args
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, a)| utf8_arg(i, a))
        .collect::<Result<Vec<&str>, String>>()
        .map_err(Early::Bad)?;
    let cli = Cli::from_args(&[&cmd], &rest).map_err(|early| match early.status {
        Ok(()) => Early::Help(early.output),
        Err(()) => Early::Bad(format!("{} (see {cmd} --help)", first_line(&early.output))),
    })?;
    let Command::Run(_) = cli.cmd else {
        return Ok(cli);
    };
    let run = run_args_with_config(&rest[1..]).map_err(Early::Bad)?;
    Ok(Cli {
        cmd: Command::Run(run),
    })
}

/// Parses argv and the `--config` file; on error prints one line and exits 2,
/// on --help prints and exits 0.
/// The tokens after `run` on this process's command line.
pub fn run_tokens() -> Option<Vec<String>> {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    (args.first().map(String::as_str) == Some("run")).then(|| args[1..].to_vec())
}

pub fn parse_or_exit() -> Cli {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match parse_args(&args) {
        Ok(cli) => cli,
        Err(Early::Help(text)) => {
            // Into a closed pipe or closed stdout: nothing to do about it.
            let _ = rustix::io::write(rustix::stdio::stdout(), text.as_bytes());
            std::process::exit(0);
        }
        Err(Early::Bad(line)) => bad_input(&line),
    }
}

/// `kestrel run` from its tokens (those after `run`) and the `--config`
/// file they name: the file's keys become the flags they name, put before
/// the command line's, and a flag given on the command line drops the
/// file's (all of the file's outputs go when the command line has one).
/// One field list: a new flag needs nothing here.
pub fn run_args_with_config(tokens: &[&str]) -> Result<RunArgs, String> {
    let mut argv = vec!["run"];
    argv.extend_from_slice(tokens);
    let parsed = |argv: &[&str]| match Cli::from_args(&["kestrel"], argv) {
        Ok(Cli {
            cmd: Command::Run(r),
        }) => Ok(r),
        Ok(_) => Err("not a run command".to_string()),
        Err(early) => Err(first_line(&early.output).to_string()),
    };
    let cli = parsed(&argv)?;
    let Some(path) = cli.config.clone() else {
        return Ok(cli);
    };
    let esc = crate::log::escape;
    let entries = crate::config::load(std::path::Path::new(&path))?;
    // Flags the command line sets ("-v" is --verbose).
    let given: Vec<&str> = tokens
        .iter()
        .filter_map(|t| match *t {
            "-v" => Some("--verbose"),
            t if t.starts_with("--") => Some(t),
            _ => None,
        })
        .collect();
    let mut merged = vec!["run"];
    for e in &entries {
        // Each key alone first, so an error can name its line.
        let mut one = vec!["run"];
        one.extend(e.tokens.iter().map(String::as_str));
        if let Err(early) = Cli::from_args(&["kestrel"], &one) {
            let msg = first_line(&early.output);
            let why = if msg.starts_with("Unrecognized argument") {
                "unknown key"
            } else {
                msg
            };
            return Err(format!(
                "{}:{}: key '{}': {}",
                esc(&path),
                e.line,
                esc(&e.key),
                esc(why)
            ));
        }
        let flag = e.tokens.first().map(String::as_str).unwrap_or("");
        if !given.contains(&flag) {
            merged.extend(e.tokens.iter().map(String::as_str));
        }
    }
    merged.extend_from_slice(tokens);
    parsed(&merged).map_err(|e| format!("{}: {}", esc(&path), esc(&e)))
}

#[cfg(test)]
mod tests;
