//! The lines the start logs: what was loaded and seeded, and its word on
//! table sizes: a /proc scan that already fills more than half of a table
//! leaves little room for what starts later, so the agent says so once,
//! naming the flag that raises it and what an entry costs (the tables are
//! fixed at start; nothing grows later).

use super::AgentConfig;
use crate::capture::{Probe, StatsSource};
use crate::preflight::Checked;
use crate::state::{proc_scan, State};

/// One line per table the scan filled beyond half: (used, capacity).
pub(super) fn half_full_lines(threads: (usize, usize), fds: (usize, usize)) -> Vec<String> {
    let tables = [
        (
            "thread",
            "--thread-table-size",
            threads,
            State::bytes_per_thread(),
        ),
        ("fd", "--fd-table-size", fds, State::bytes_per_fd()),
    ];
    tables
        .into_iter()
        .filter(|(_, _, (used, cap), _)| used.saturating_mul(2) > *cap)
        .map(|(name, flag, (used, cap), bytes)| {
            // The agent's own threads are admitted beyond the capacity.
            let used = used.min(cap);
            format!(
                "{name} table: the /proc scan filled {used} of its {cap} entries at start; \
                 raise {flag} ({bytes} bytes per entry) to leave room for what starts later"
            )
        })
        .collect()
}

/// The start line (and, with --verbose, the sizes).
pub(super) fn log_start(
    cfg: &AgentConfig,
    probe: &Probe<'_>,
    seeded: &proc_scan::Seeded,
    stats: StatsSource,
    kept: &str,
    checked: &Checked,
) {
    let attached: Vec<&str> = probe.attached().collect();
    crate::log_line!(
        "v{}: probe attached via {} with {} ({}){}{}, events via the {} ({}), {} syscalls selected, {} threads and {} fds seeded{}, bpf stats: {}, capabilities kept: {}{}",
        crate::metrics::VERSION,
        probe.attach_path().name(),
        probe.btf_source(),
        attached.join(", "),
        if probe.ia32_entry() {
            ""
        } else {
            ", no ia32 syscall entry (TS_COMPAT not read)"
        },
        if probe.task_cast() {
            ", the running task read without a helper (bpf_rdonly_cast)"
        } else {
            ""
        },
        probe.buffer().0.name(),
        probe.buffer().1,
        cfg.probe.selection.resolve().len(),
        seeded.threads,
        seeded.fds,
        if seeded.refused_threads > 0 {
            format!(
                " ({} more threads did not fit the table of {})",
                seeded.refused_threads, cfg.thread_capacity
            )
        } else {
            String::new()
        },
        match stats {
            StatsSource::Off => "off",
            StatsSource::Sysctl => "from kernel.bpf_stats_enabled",
            StatsSource::Agent => "enabled by the agent (BPF_ENABLE_STATS)",
            StatsSource::AgentSysctl => "enabled by the agent (kernel.bpf_stats_enabled)",
        },
        kept,
        checked
            .user
            .as_ref()
            .map(|u| format!(", running as {} (uid {}, gid {})", u.name, u.uid, u.gid))
            .unwrap_or_default()
    );
    if cfg.verbose {
        crate::log_line!(
            "interval {} ms, ring buffer {} bytes, thread table {} ({} B/entry), fd table {} ({} B/entry)",
            cfg.interval_ns / 1_000_000,
            cfg.probe.ring_bytes,
            cfg.thread_capacity,
            State::bytes_per_thread(),
            cfg.fd_capacity,
            State::bytes_per_fd()
        );
    }
}

/// A sys_exit attached but never run was seen once under QEMU (arm64 5.10,
/// two CPUs, right after `kestrel check` had attached and detached it):
/// every syscall record would be missing. Attached again, it runs.
pub(super) fn check_sys_exit(probe: &mut Probe<'_>) -> Result<(), super::StartError> {
    if probe.sys_exit_ran() != Some(false) {
        return Ok(());
    }
    probe
        .reattach(crate::capture::Prog::SysExit)
        .map_err(|e| super::StartError::env(e.to_string()))?;
    let again = if probe.sys_exit_ran() == Some(true) {
        "it runs now"
    } else {
        "it still does not run: syscall records will be missing"
    };
    crate::log_line!("sys_exit was attached but never ran; attached again: {again}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tables_filled_beyond_half_are_named_with_flag_and_cost() {
        assert!(half_full_lines((10, 20), (0, 8)).is_empty(), "half is fine");
        let l = half_full_lines((11, 20), (5000, 8192));
        assert_eq!(l.len(), 2);
        assert!(l[0].starts_with("thread table: the /proc scan filled 11 of its 20 entries"));
        assert!(l[0].contains("--thread-table-size"));
        assert!(l[1].contains(&format!(
            "--fd-table-size ({} bytes per entry)",
            State::bytes_per_fd()
        )));
        let l = half_full_lines((0, 4096), (65, 64));
        assert!(l[0].starts_with("fd table: the /proc scan filled 64 of its 64"));
    }
}
