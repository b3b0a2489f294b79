//! Command line: `kestrel run` and `kestrel check`. Parsing errors become one
//! line on stderr and exit status 2 (argh alone would exit 1).

use argh::FromArgs;

use crate::capture::syscalls::Selection;
use crate::output::OutputSpec;

#[derive(FromArgs, Debug)]
/// Kestrel: eBPF runtime monitoring with Falco-format metrics snapshots.
pub struct Cli {
    #[argh(subcommand)]
    pub cmd: Command,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    Run(RunArgs),
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        _ => Err(format!("'{s}' is not true or false")),
    }
}

/// Parses `500ms`, `15s`, `15m`, `1h` (and combinations such as `1m30s`) to ns.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let bad = || format!("bad duration '{s}' (use e.g. 500ms, 15s, 15m, 1h)");
    let mut total: u64 = 0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        total = n
            .checked_mul(mult)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

fn parse_interval(s: &str) -> Result<u64, String> {
    let ns = parse_duration(s)?;
    if ns < 100_000_000 {
        return Err(format!("interval '{s}' is below the 100ms minimum"));
    }
    Ok(ns)
}

fn parse_size(s: &str) -> Result<u32, String> {
    let (num, mult) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (
            &s[..i],
            match &s[i..] {
                "K" | "k" | "KiB" => 1024,
                "M" | "m" | "MiB" => 1 << 20,
                _ => return Err(format!("bad size '{s}' (bytes, or with K or M)")),
            },
        ),
        None => (s, 1),
    };
    num.parse::<u32>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("bad size '{s}'"))
}

fn parse_count(s: &str) -> Result<usize, String> {
    s.parse::<usize>()
        .ok()
        .filter(|n| (1..=1 << 24).contains(n))
        .ok_or_else(|| format!("'{s}' is not a table size between 1 and 16777216"))
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "run")]
/// Load the probe and write a metrics snapshot every interval.
pub struct RunArgs {
    /// where snapshots go: stdout, file:PATH or syslog://HOST:PORT[?opts]; repeatable
    #[argh(option, from_str_fn(OutputSpec::parse))]
    pub output: Vec<OutputSpec>,
    /// snapshot interval, e.g. 500ms, 15s, 15m, 1h (default 15m; min 100ms)
    #[argh(option, from_str_fn(parse_interval))]
    pub interval: Option<u64>,
    /// stop after this long (default: until SIGTERM or SIGINT)
    #[argh(option, from_str_fn(parse_duration))]
    pub duration: Option<u64>,
    /// ring buffer size in bytes, a power of two (default 1M)
    #[argh(option, from_str_fn(parse_size))]
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
    /// BPF program run-time stats (default false; turned on via BPF_ENABLE_STATS)
    #[argh(option, from_str_fn(parse_bool))]
    pub libbpf_stats_enabled: Option<bool>,
    /// memory fields in MB instead of kB/bytes (default true)
    #[argh(option, from_str_fn(parse_bool))]
    pub convert_memory_to_mb: Option<bool>,
    /// keep zero-valued fields (default false)
    #[argh(option, from_str_fn(parse_bool))]
    pub include_empty_values: Option<bool>,
    /// write the agent's pid to this file
    #[argh(option)]
    pub pidfile: Option<String>,
    /// more log lines on stderr
    #[argh(switch, short = 'v')]
    pub verbose: bool,
}

/// Parses argv; on error prints one line and exits 2, on --help prints and exits 0.
pub fn parse_or_exit() -> Cli {
    let args: Vec<String> = std::env::args().collect();
    let cmd = args
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
        .unwrap_or_else(|| "kestrel".into());
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    match Cli::from_args(&[&cmd], &rest) {
        Ok(cli) => cli,
        Err(early) => match early.status {
            Ok(()) => {
                print!("{}", early.output);
                std::process::exit(0);
            }
            Err(()) => {
                let line = early.output.lines().next().unwrap_or("bad arguments");
                eprintln!("kestrel: {line} (see {cmd} --help)");
                std::process::exit(2);
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), 500_000_000);
        assert_eq!(parse_duration("15s").unwrap(), 15_000_000_000);
        assert_eq!(parse_duration("15m").unwrap(), 900_000_000_000);
        assert_eq!(parse_duration("1h").unwrap(), 3_600_000_000_000);
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000_000_000);
        for bad in ["", "5", "ms", "5x", "-5s", "1.5s", "99999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_interval("50ms").is_err());
    }

    #[test]
    fn sizes_and_flags() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("8M").unwrap(), 8 << 20);
        assert!(parse_size("8G").is_err());
        assert!(parse_bool("maybe").is_err());
        assert!(parse_count("0").is_err());
        let cli = Cli::from_args(
            &["kestrel"],
            &["run", "--interval", "1s", "--output", "stdout"],
        )
        .unwrap();
        let Command::Run(r) = cli.cmd;
        assert_eq!(r.interval, Some(1_000_000_000));
        assert!(Cli::from_args(&["kestrel"], &["run", "--interval", "fast"]).is_err());
        assert!(Cli::from_args(&["kestrel"], &["run", "--bogus"]).is_err());
    }
}
