//! `kestrel check`: one screen answering "will this run on my kernel?".
//! Each line is a requirement, what was found, and for a failure what to do.
//! The last line is the real thing: the probe is loaded, attached and
//! detached, so a pass means the agent will start.

use std::mem::MaybeUninit;
use std::path::Path;

use serde::Serialize;

mod kernel;
use kernel::{bpf_lines, memlock_line, stats_line};

use crate::capture::btf::{self, BtfSource};
use crate::capture::{Probe, ProbeConfig};

mod jit;

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub name: &'static str,
    pub ok: bool,
    /// Required for the probe to run; optional lines only inform.
    pub required: bool,
    pub detail: String,
    pub fix: String,
}

#[derive(Serialize, Debug)]
pub struct Report {
    pub can_run: bool,
    pub checks: Vec<Line>,
}

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;
const TRACEFS: &str = "/sys/kernel/tracing";

pub(crate) fn line(
    name: &'static str,
    ok: bool,
    required: bool,
    detail: String,
    fix: &str,
) -> Line {
    Line {
        name,
        ok,
        required,
        detail,
        fix: if ok { String::new() } else { fix.to_string() },
    }
}

/// (major, minor) of a release string like "6.1.0-18-arm64".
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

fn cap_eff() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}

fn tracefs_mounted() -> bool {
    std::fs::read_to_string("/proc/mounts")
        .map(|m| m.lines().any(|l| l.split(' ').nth(2) == Some("tracefs")))
        .unwrap_or(false)
}

fn tracefs_root() -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter(|l| l.split(' ').nth(2) == Some("tracefs"))
        .filter_map(|l| l.split(' ').nth(1))
        .min_by_key(|p| p.len())
        .map(str::to_string)
}

/// The BTF and attach-path lines: which path the agent would take and why.
fn btf_lines(cfg: &ProbeConfig, release: &str) -> [Line; 2] {
    let kernel_btf = Path::new(btf::KERNEL_BTF);
    let has_kernel_btf = kernel_btf.exists();
    let located = btf::locate(cfg.btf.as_deref(), kernel_btf, release);
    let btf_line = match &located {
        Ok(src @ BtfSource::Kernel) => line("btf", true, true, src.to_string(), ""),
        Ok(BtfSource::File(p)) => {
            let readable = std::fs::File::open(p).is_ok();
            line(
                "btf",
                readable,
                true,
                format!(
                    "external file {}{}",
                    p.display(),
                    if readable { "" } else { " (not readable)" }
                ),
                "make it with pahole -J --btf_encode_detached=FILE vmlinux, or fix the path",
            )
        }
        Err(none) => {
            let tried: Vec<String> = none.tried.iter().map(|p| p.display().to_string()).collect();
            line(
                "btf",
                false,
                true,
                format!("none: tried {}", tried.join(", ")),
                &none.fix(),
            )
        }
    };
    let tp_btf = btf::kernel_can_tp_btf();
    let attach = match btf::choose_path(cfg.attach, tp_btf) {
        Ok(p) => line(
            "attach",
            true,
            true,
            format!(
                "{} ({})",
                p.name(),
                if tp_btf {
                    "the kernel has BTF"
                } else if has_kernel_btf {
                    "kernel BTF but no BPF tracing programs (before 5.5): raw tracepoints"
                } else {
                    "no kernel BTF: classic raw tracepoints"
                }
            ),
            "",
        ),
        Err(e) => line("attach", false, true, e, "use --attach auto or raw_tp"),
    };
    [btf_line, attach]
}

/// One function per requirement, in the order the report prints them.
pub fn run(cfg: &ProbeConfig) -> Report {
    let uname = rustix::system::uname();
    let release = uname.release().to_string_lossy().into_owned();
    let ver = kernel_version(&release).unwrap_or((0, 0));
    let caps = cap_eff();
    // Read before the BPF checks: libbpf raises it itself on kernels that
    // charge BPF memory to it, and the line is about what the agent finds.
    let memlock = rustix::process::getrlimit(rustix::process::Resource::Memlock).current;
    let mut v = vec![
        arch_line(&uname.machine().to_string_lossy()),
        kernel_line(&release, ver),
    ];
    v.extend(btf_lines(cfg, &release));
    v.push(caps_line(caps));
    v.extend(bpf_lines(cfg));
    v.push(memlock_line(ver, caps, memlock));
    v.extend(tracefs_lines());
    v.push(stats_line());
    v.push(jit::jit_line(&release));
    let prereqs_ok = v.iter().all(|l| l.ok || !l.required);
    v.push(probe_line(cfg, prereqs_ok));
    Report {
        can_run: v.iter().all(|l| l.ok || !l.required),
        checks: v,
    }
}

pub(crate) fn has_cap(caps: u64, bit: u32) -> bool {
    caps & (1u64 << bit) != 0
}

fn arch_line(machine: &str) -> Line {
    let built_for = std::env::consts::ARCH;
    line(
        "arch",
        arch_matches(machine, built_for),
        true,
        format!("host {machine}, binary built for {built_for}"),
        "use the kestrel binary built for this kernel's architecture (x86_64, aarch64, armv7)",
    )
}

/// uname's machine against the binary's arch. A 32-bit ARM kernel says
/// armv7l; armv8l is an arm64 kernel under linux32, which needs aarch64.
fn arch_matches(machine: &str, built_for: &str) -> bool {
    match built_for {
        "arm" => machine.starts_with("armv7"),
        _ => machine == built_for,
    }
}

fn kernel_line(release: &str, ver: (u32, u32)) -> Line {
    line(
        "kernel",
        ver >= (5, 4),
        true,
        format!("{release} (needs 5.4+; 5.8+ for the BPF ring buffer, perf buffers before that)"),
        "upgrade to a 5.4 or newer kernel (older ones are not supported)",
    )
}

fn caps_line(caps: u64) -> Line {
    let yes = |bit| if has_cap(caps, bit) { "yes" } else { "no" };
    let ok = has_cap(caps, CAP_SYS_ADMIN) || (has_cap(caps, CAP_BPF) && has_cap(caps, CAP_PERFMON));
    line(
        "capabilities",
        ok,
        true,
        format!(
            "CAP_BPF {}, CAP_PERFMON {}, CAP_SYS_ADMIN {}",
            yes(CAP_BPF),
            yes(CAP_PERFMON),
            yes(CAP_SYS_ADMIN)
        ),
        "run as root, or grant CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN before 5.8)",
    )
}

/// tracefs (mounted when absent and allowed) and the tracepoints under it.
fn tracefs_lines() -> [Line; 2] {
    let mut tracefs_detail = String::new();
    if !tracefs_mounted() && Path::new(TRACEFS).is_dir() {
        let r = rustix::mount::mount(
            "tracefs",
            TRACEFS,
            "tracefs",
            rustix::mount::MountFlags::empty(),
            None,
        );
        tracefs_detail = match r {
            Ok(()) => format!("mounted it at {TRACEFS}; "),
            Err(e) => format!("not mounted, mounting failed ({e}); "),
        };
    }
    let root = tracefs_root();
    let tracefs = line(
        "tracefs",
        root.is_some(),
        false,
        format!(
            "{tracefs_detail}{}",
            root.as_deref()
                .map_or("not mounted".to_string(), |r| format!("at {r}"))
        ),
        "mount -t tracefs tracefs /sys/kernel/tracing (only needed to inspect tracepoints)",
    );
    let events = [
        "raw_syscalls/sys_exit",
        "sched/sched_process_fork",
        "sched/sched_process_exec",
        "sched/sched_process_exit",
    ];
    let readable = root
        .as_ref()
        .is_some_and(|r| std::fs::read_dir(format!("{r}/events")).is_ok());
    let missing: Vec<&str> = match &root {
        Some(r) if readable => events
            .iter()
            .copied()
            .filter(|e| !Path::new(&format!("{r}/events/{e}")).exists())
            .collect(),
        _ => Vec::new(),
    };
    let tracepoints = line(
        "tracepoints",
        readable && missing.is_empty(),
        readable,
        match &root {
            Some(_) if !readable => "not checked: tracefs events not readable by this user".into(),
            Some(_) if missing.is_empty() => "raw_syscalls and sched_process_* present".into(),
            Some(_) => format!("missing: {}", missing.join(", ")),
            None => "not checked: tracefs not mounted".into(),
        },
        "needs CONFIG_FTRACE_SYSCALLS and the sched tracepoints",
    );
    [tracefs, tracepoints]
}

/// The real thing: load, attach and detach the probe as `run` would.
fn probe_line(cfg: &ProbeConfig, prereqs_ok: bool) -> Line {
    if !prereqs_ok {
        return line(
            "probe",
            false,
            true,
            "not tried: a requirement above failed".into(),
            "fix the failing lines first",
        );
    }
    let mut storage = MaybeUninit::uninit();
    let loaded = Probe::load(&mut storage, cfg);
    let l = match loaded {
        Ok(p) => {
            let (jited, n) = (p.jited(), p.attached().count());
            line(
                "probe",
                true,
                true,
                format!(
                    "loaded and attached via {}, events via the {}: {}; {}",
                    p.attach_path().name(),
                    p.buffer().0.name(),
                    p.attached().collect::<Vec<_>>().join(", "),
                    match jited {
                        _ if jited == n => "JIT-compiled".to_string(),
                        0 => "interpreted (none JIT-compiled)".to_string(),
                        _ => format!("{jited} of {n} JIT-compiled, the rest interpreted"),
                    }
                ),
                "",
            )
        }
        Err(e) => line("probe", false, true, e.to_string(), "see the line above"),
    };
    l
}

pub fn print_text(r: &Report) {
    println!(
        "kestrel check: this host {} run the probe",
        if r.can_run { "CAN" } else { "CANNOT" }
    );
    for l in &r.checks {
        let status = match (l.ok, l.required) {
            (true, _) => "ok  ",
            (false, true) => "FAIL",
            (false, false) => "warn",
        };
        println!("  {status}  {:<13} {}", l.name, l.detail);
        if !l.ok {
            println!("        {:<13} -> {}", "", l.fix);
        }
    }
}

pub fn print_json(r: &Report) {
    let mut buf = vec![0u8; 8192];
    match serde_json_core::to_slice(r, &mut buf) {
        Ok(n) => println!("{}", String::from_utf8_lossy(&buf[..n])),
        Err(_) => println!("{{\"can_run\":{}}}", r.can_run),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arch_lines_match_uname() {
        assert!(arch_matches("x86_64", "x86_64"));
        assert!(arch_matches("aarch64", "aarch64"));
        assert!(arch_matches("armv7l", "arm"));
        assert!(!arch_matches("armv8l", "arm"));
        assert!(!arch_matches("aarch64", "arm"));
        assert!(!arch_matches("armv7l", "aarch64"));
    }

    #[test]
    fn parses_kernel_versions() {
        assert_eq!(kernel_version("6.1.0-18-arm64"), Some((6, 1)));
        assert_eq!(kernel_version("5.10.223"), Some((5, 10)));
        assert_eq!(kernel_version("6.18.44-fc-v595"), Some((6, 18)));
        assert_eq!(kernel_version("garbage"), None);
    }
}
