//! The BPF side of `kestrel check`: bpf() itself, ring buffers, memlock,
//! run-time stats and the JIT.

use super::{has_cap, line, Line};

const JIT_SYSCTL: &str = "/proc/sys/net/core/bpf_jit_enable";

/// A real ring buffer map: EPERM means bpf() is refused, EINVAL that the
/// kernel has no ring buffers.
pub(super) fn bpf_lines() -> [Line; 2] {
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
        line(
            "ringbuf",
            rb >= 0,
            !refused,
            if rb >= 0 {
                "BPF ring buffer supported".into()
            } else if refused {
                "not checked: bpf() refused".into()
            } else {
                format!("cannot create one: {}", err())
            },
            "needs a 5.8+ kernel with BPF ring buffers",
        ),
    ]
}

pub(super) fn memlock_line(ver: (u32, u32), caps: u64) -> Line {
    const CAP_SYS_RESOURCE: u32 = 24;
    let memlock = rustix::process::getrlimit(rustix::process::Resource::Memlock);
    let ok = ver >= (5, 11) || memlock.current.is_none() || has_cap(caps, CAP_SYS_RESOURCE);
    line(
        "memlock",
        ok,
        true,
        format!(
            "RLIMIT_MEMLOCK {} ({})",
            memlock
                .current
                .map_or("unlimited".to_string(), |n| format!("{} KiB", n / 1024)),
            if ver >= (5, 11) {
                "not used for BPF memory since 5.11"
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
    line(
        "bpf_stats",
        sysctl || fd >= 0,
        false,
        if sysctl {
            "on through kernel.bpf_stats_enabled".into()
        } else if fd >= 0 {
            "the agent can turn them on (BPF_ENABLE_STATS)".into()
        } else {
            "unavailable".into()
        },
        "libbpf_stats_enabled needs a 5.8+ kernel and CAP_SYS_ADMIN or the sysctl",
    )
}

/// The BPF JIT: off, the probe runs in the kernel's interpreter (Debian's
/// 32-bit ARM kernels boot with it off). Whether it can be switched off at
/// all is CONFIG_BPF_JIT_ALWAYS_ON, read from the kernel's config.
pub(super) fn jit_line(release: &str) -> Line {
    let sysctl = std::fs::read_to_string(JIT_SYSCTL)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    let (ok, state) = match sysctl {
        Some(0) => (
            false,
            "off (net.core.bpf_jit_enable=0): the probe runs in the BPF interpreter".to_string(),
        ),
        Some(n) => (true, format!("on (net.core.bpf_jit_enable={n})")),
        None => (
            false,
            "no BPF JIT in this kernel (no net.core.bpf_jit_enable): the probe runs in the interpreter".to_string(),
        ),
    };
    let always = match kernel_config(release, "CONFIG_BPF_JIT_ALWAYS_ON") {
        Some((src, Some(v))) => format!("always on (CONFIG_BPF_JIT_ALWAYS_ON={v}, {src})"),
        Some((src, None)) => format!("not always on (CONFIG_BPF_JIT_ALWAYS_ON unset, {src})"),
        None => format!("always on: unknown (no /proc/config.gz or /boot/config-{release})"),
    };
    line(
        "bpf_jit",
        ok,
        false,
        format!("{state}; {always}"),
        "sysctl -w net.core.bpf_jit_enable=1 (and keep it in /etc/sysctl.conf)",
    )
}

/// `key`'s value in the running kernel's config, and the file it came
/// from; None for the value when unset, None overall when no config is
/// readable.
fn kernel_config(release: &str, key: &str) -> Option<(String, Option<String>)> {
    let boot = format!("/boot/config-{release}");
    for path in ["/proc/config.gz", boot.as_str()] {
        let mut value = None;
        let found = crate::base::zlib::gz_lines(path.as_ref(), |l| {
            let v = l
                .strip_prefix(key.as_bytes())
                .and_then(|r| r.strip_prefix(b"="));
            if let Some(v) = v {
                value = Some(String::from_utf8_lossy(v).trim_end().to_string());
                return false;
            }
            true
        });
        if found.is_ok() {
            return Some((path.to_string(), value));
        }
    }
    None
}
