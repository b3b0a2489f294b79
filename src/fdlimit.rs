//! RLIMIT_NOFILE against what the start needs. Too few fds surface deep in
//! libbpf ("fd 12 is not pointing to valid bpf_map", "attaching
//! sched_proc_exit failed"), naming nothing a user can act on; counted
//! first, the shortage is one line naming the limit.

use crate::agent::{AgentConfig, StartError};
use crate::output::OutputSpec;

/// Fds the start opens with the default probe and no output or option:
/// the signalfd, both epolls, the snapshot and drain timerfds, the probe's
/// maps, programs and links, and what libbpf holds for a moment during
/// load. Measured as the lowest limit that starts, less the fds open before.
const PROBE_AND_LOOP: u64 = 18;
/// What the running agent opens for a moment: /proc lookups, a SIGHUP
/// reopen beside the old fd, a textfile's temporary.
pub const HEADROOM: u64 = 3;

/// Fds open now (0-2 included), below `limit`: the limit caps fd numbers.
pub fn open_now(limit: u64) -> u64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return 3;
    };
    let n = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .filter(|&fd| fd < limit)
        .count() as u64;
    // The directory's own fd was listed too.
    n.saturating_sub(1)
}

/// The soft RLIMIT_NOFILE (None: unlimited).
pub fn soft_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// Fds the start opens for this configuration, beyond those open now.
pub fn needed(cfg: &AgentConfig, pidfile: bool) -> u64 {
    let outputs: u64 = cfg
        .outputs
        .iter()
        .map(|o| match o {
            // A non-blocking dup of fd 1.
            OutputSpec::Stdout => 1,
            // The directory and the file.
            OutputSpec::File(_) => 2,
            OutputSpec::Syslog(_) => 1,
            // The socket, and while resolving the resolver thread's.
            OutputSpec::SyslogStream(_) => 2,
            // The socket, the resolver's, the spool's tail and reader.
            OutputSpec::Mqtt(_) => 4,
            // The directory; the temporary is in HEADROOM.
            OutputSpec::PrometheusTextfile(_) => 1,
        })
        .sum();
    PROBE_AND_LOOP
        + outputs
        + u64::from(cfg.duration_ns.is_some())
        + 2 * u64::from(cfg.probe.enter_events)
        // Staging: the stage map, and the sched_switch and hrtimer programs
        // and their links (none on the perf path: 5 to spare there).
        + 5 * u64::from(cfg.probe.stage_records && cfg!(not(target_arch = "arm")))
        + u64::from(cfg.metrics.libbpf_stats_enabled)
        + u64::from(cfg.probe.btf.is_some())
        // The listener and one connection.
        + 2 * u64::from(cfg.prometheus.listen.is_some())
        // The bcrypt worker's eventfd (web config files are read before it).
        + u64::from(cfg.prometheus.web_config.is_some())
        + u64::from(pidfile)
        + HEADROOM
}

/// Err when the limit leaves fewer fds than the start needs.
pub fn check(cfg: &AgentConfig, pidfile: bool) -> Result<(), StartError> {
    let Some(limit) = soft_limit() else {
        return Ok(());
    };
    let open = open_now(limit);
    let want = open + needed(cfg, pidfile);
    if want <= limit {
        return Ok(());
    }
    Err(StartError(
        format!(
            "RLIMIT_NOFILE is {limit} open files and {open} are open: this configuration needs \
         at least {want} (raise it, e.g. ulimit -n {})",
            want.next_power_of_two().max(64)
        ),
        1,
    ))
}
