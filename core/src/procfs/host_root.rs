//! HOST_ROOT, as libscap's scap_get_host_root: where the host's /proc and
//! /etc are seen from inside a container (`-v /proc:/host/proc:ro -v
//! /etc:/host/etc:ro -e HOST_ROOT=/host`). The host's processes (seeding,
//! the lookup fallback, the purge), its users and groups, and its CPU,
//! memory, uptime and open-file figures are read under it; the agent's own
//! files (/proc/self, its cgroup) are not (libsinsp
//! linux/resource_utilization.cpp reads those without it). Read once.

use std::path::PathBuf;
use std::sync::OnceLock;

static ROOT: OnceLock<String> = OnceLock::new();

/// The prefix ("" when unset), without a trailing '/'.
pub fn host_root() -> &'static str {
    ROOT.get_or_init(|| from_env(std::env::var("HOST_ROOT").ok().as_deref()))
}

fn from_env(v: Option<&str>) -> String {
    v.unwrap_or("").trim_end_matches('/').to_string()
}

/// `abs` (an absolute host path) under HOST_ROOT.
pub fn host_path(abs: &str) -> String {
    format!("{}{abs}", host_root())
}

/// This process's pid as the host sees it: HOST_ROOT's /proc/self names it
/// in the host's pid namespace (the probe's ids), where getpid() gives the
/// container's.
pub fn host_pid() -> u32 {
    std::fs::read_link(host_path("/proc/self"))
        .ok()
        .and_then(|p| p.to_str()?.parse().ok())
        .unwrap_or_else(std::process::id)
}

/// The directory host paths hang off: HOST_ROOT, or `/`.
pub fn host_dir() -> PathBuf {
    match host_root() {
        "" => PathBuf::from("/"),
        r => PathBuf::from(r),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_prefix_without_its_trailing_slash() {
        assert_eq!(super::from_env(None), "");
        assert_eq!(super::from_env(Some("/host/")), "/host");
        assert_eq!(super::from_env(Some("/")), "");
        assert_eq!(
            format!("{}{}", super::from_env(Some("/host")), "/proc"),
            "/host/proc"
        );
    }
}
