//! The BPF JIT line of `kestrel check` (kernel.rs has bpf(), the event
//! buffer, memlock and run-time stats).

use super::{line, Line};

const JIT_SYSCTL: &str = "/proc/sys/net/core/bpf_jit_enable";

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
