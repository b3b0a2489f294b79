//! The kernel-facing lines of `kestrel check`: bpf(), the event buffer,
//! memlock and BPF run-time stats.

use super::{has_cap, line, Line};
use crate::capture::buffer::{self, BufferKind};
use crate::capture::ProbeConfig;

/// A real ring buffer map: EPERM means bpf() is refused, EINVAL that the
/// kernel has no ring buffers, and then perf buffers carry the records.
pub(super) fn bpf_lines(cfg: &ProbeConfig) -> [Line; 2] {
    // SAFETY: plain bpf(BPF_MAP_CREATE) wrapper; a valid fd is closed at once.
    let rb = unsafe {
        libbpf_rs::libbpf_sys::bpf_map_create(
            libbpf_rs::libbpf_sys::BPF_MAP_TYPE_RINGBUF,
            std::ptr::null(),
            0,
            0,
            4096,
            std::ptr::null(),
        )
    };
    if rb >= 0 {
        // SAFETY: rb was just returned to us and is owned by nobody else.
        drop(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(rb) });
    }
    let refused = rb == -libc::EPERM || rb == -libc::EACCES;
    let err = || std::io::Error::from_raw_os_error(-rb);
    [
        line(
            "bpf",
            !refused,
            true,
            if refused {
                format!("bpf() refused: {}", err())
            } else {
                "bpf() permitted".into()
            },
            "run as root with CAP_BPF; check kernel.unprivileged_bpf_disabled and any LSM policy",
        ),
        buffer_line(cfg, rb, refused),
    ]
}

/// Which event buffer `run` would use and why.
fn buffer_line(cfg: &ProbeConfig, rb: i32, refused: bool) -> Line {
    if refused {
        return line(
            "event_buffer",
            false,
            false,
            "not checked: bpf() refused".into(),
            "",
        );
    }
    let why_not = std::io::Error::from_raw_os_error(-rb);
    match buffer::choose(cfg.event_buffer, rb >= 0) {
        Ok((kind, why)) => line(
            "event_buffer",
            true,
            true,
            match kind {
                BufferKind::Perf if rb < 0 => {
                    format!("{}: {why} (creating one: {why_not})", kind.name())
                }
                _ => format!("{}: {why}", kind.name()),
            },
            "",
        ),
        Err(e) => line(
            "event_buffer",
            false,
            true,
            e,
            "use --event-buffer auto (perf buffers before 5.8)",
        ),
    }
}

/// `memlock`: the soft limit as the process started (None: unlimited).
pub(super) fn memlock_line(ver: (u32, u32), caps: u64, memlock: Option<u64>) -> Line {
    const CAP_SYS_RESOURCE: u32 = 24;
    let ok = ver >= (5, 11) || memlock.is_none() || has_cap(caps, CAP_SYS_RESOURCE);
    line(
        "memlock",
        ok,
        true,
        format!(
            "RLIMIT_MEMLOCK {} ({})",
            memlock.map_or("unlimited".to_string(), |n| format!("{} KiB", n / 1024)),
            if ver >= (5, 11) {
                "not used for BPF memory since 5.11"
            } else if memlock.is_some() && has_cap(caps, CAP_SYS_RESOURCE) {
                "kernels before 5.11 charge BPF maps to it; the agent raises it (CAP_SYS_RESOURCE)"
            } else {
                "kernels before 5.11 charge BPF maps to it"
            }
        ),
        "raise it (ulimit -l unlimited, LimitMEMLOCK=infinity) or keep CAP_SYS_RESOURCE",
    )
}

pub(super) fn stats_line() -> Line {
    let sysctl = std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled")
        .map(|s| s.trim() == "1")
        .unwrap_or(false);
    // SAFETY: plain syscall wrapper; a valid fd is closed at once.
    let fd = unsafe {
        libbpf_rs::libbpf_sys::bpf_enable_stats(libbpf_rs::libbpf_sys::BPF_STATS_RUN_TIME)
    };
    if fd >= 0 {
        // SAFETY: fd was just returned to us and is owned by nobody else.
        drop(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
    }
    let sysctl_writable = rustix::fs::access(
        "/proc/sys/kernel/bpf_stats_enabled",
        rustix::fs::Access::WRITE_OK,
    )
    .is_ok();
    line(
        "bpf_stats",
        sysctl || fd >= 0 || (fd == -libc::EINVAL && sysctl_writable),
        false,
        if sysctl {
            "on through kernel.bpf_stats_enabled".into()
        } else if fd >= 0 {
            "the agent can turn them on (BPF_ENABLE_STATS)".into()
        } else if fd == -libc::EINVAL && sysctl_writable {
            "the agent can turn them on (kernel.bpf_stats_enabled; no BPF_ENABLE_STATS before 5.8)"
                .into()
        } else {
            "unavailable".into()
        },
        "libbpf_stats_enabled needs kernel.bpf_stats_enabled (5.1+, root) or BPF_ENABLE_STATS (5.8+)",
    )
}
