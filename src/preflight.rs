//! Everything that can be wrong with the input is found before anything is
//! created: the user to switch to, the pidfile, table capacities against
//! the memory the process can get, the hostname the snapshot carries.
//! Each problem is one line and exit status 2.

use crate::pidfile::Pidfile;
use crate::privilege::User;
use crate::state::State;

/// What the checks found, handed to the agent.
pub struct Checked {
    pub pidfile: Option<Pidfile>,
    pub user: Option<User>,
}

/// Longest hostname a snapshot carries (RFC 5424 HOSTNAME is 1*255).
pub const HOSTNAME_MAX: usize = 255;

pub fn check(
    pidfile: Option<&str>,
    user: Option<&str>,
    thread_capacity: usize,
    fd_capacity: usize,
) -> Result<Checked, String> {
    if let Some(h) = std::env::var_os("FALCO_HOSTNAME") {
        if h.to_str().is_none() {
            return Err("FALCO_HOSTNAME is not valid UTF-8".into());
        }
        if h.len() > HOSTNAME_MAX {
            return Err(format!(
                "FALCO_HOSTNAME is {} bytes long: at most {HOSTNAME_MAX}",
                h.len()
            ));
        }
    }
    let user = user.map(crate::privilege::lookup_user).transpose()?;
    check_memory(thread_capacity, fd_capacity, &Limits::read())?;
    let pidfile = pidfile
        .map(|p| Pidfile::check(std::path::Path::new(p)))
        .transpose()
        .map_err(|e| e.msg)?;
    Ok(Checked { pidfile, user })
}

/// What the process may still allocate, from each source that limits it.
#[derive(Debug, Default)]
pub struct Limits {
    /// /proc/meminfo MemAvailable.
    pub mem_available: Option<u64>,
    /// RLIMIT_AS minus what the process already maps.
    pub address_space: Option<u64>,
    /// cgroup v2 memory.max minus memory.current.
    pub cgroup: Option<u64>,
}

fn meminfo_kb(text: &str, key: &str) -> Option<u64> {
    let l = text.lines().find(|l| l.starts_with(key))?;
    l[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

impl Limits {
    pub fn read() -> Limits {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let vm = meminfo_kb(&status, "VmSize:").unwrap_or(0) * 1024;
        let rl = rustix::process::getrlimit(rustix::process::Resource::As);
        let cg = std::fs::read_to_string("/proc/self/cgroup")
            .ok()
            .and_then(|c| {
                c.lines()
                    .find_map(|l| l.strip_prefix("0::").map(str::to_string))
            })
            .and_then(|p| {
                let dir = format!("/sys/fs/cgroup{}", p.trim_end_matches('/'));
                let max = std::fs::read_to_string(format!("{dir}/memory.max")).ok()?;
                let cur = std::fs::read_to_string(format!("{dir}/memory.current")).ok()?;
                let max: u64 = max.trim().parse().ok()?;
                Some(max.saturating_sub(cur.trim().parse().ok()?))
            });
        Limits {
            mem_available: meminfo_kb(&meminfo, "MemAvailable:").map(|k| k * 1024),
            address_space: rl.current.map(|c| c.saturating_sub(vm)),
            cgroup: cg,
        }
    }
}

/// Headroom beyond the tables: libbpf, the ring mapping, buffers.
const HEADROOM: u64 = 32 << 20;

pub fn check_memory(threads: usize, fds: usize, lim: &Limits) -> Result<(), String> {
    let need = (threads as u64)
        .saturating_mul(State::bytes_per_thread() as u64)
        .saturating_add((fds as u64).saturating_mul(State::bytes_per_fd() as u64));
    for (what, avail) in [
        ("RLIMIT_AS", lim.address_space),
        ("the cgroup's memory.max", lim.cgroup),
        ("MemAvailable", lim.mem_available),
    ] {
        if let Some(a) = avail {
            if need.saturating_add(HEADROOM) > a {
                return Err(format!(
                    "tables of {threads} threads and {fds} fds need {} MiB, but {what} leaves \
                     {} MiB: lower --thread-table-size or --fd-table-size",
                    need >> 20,
                    a.saturating_sub(HEADROOM) >> 20
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_is_checked_against_each_limit() {
        let big = Limits {
            mem_available: Some(1 << 30),
            address_space: None,
            cgroup: None,
        };
        assert!(check_memory(4096, 8192, &big).is_ok());
        let e = check_memory(1 << 24, 1 << 24, &big).unwrap_err();
        assert!(e.contains("MemAvailable") && e.contains("MiB"), "{e}");
        let rl = Limits {
            address_space: Some(64 << 20),
            ..big
        };
        let e = check_memory(1 << 20, 8192, &rl).unwrap_err();
        assert!(e.contains("RLIMIT_AS"), "{e}");
        assert!(meminfo_kb("MemAvailable:   12345 kB\n", "MemAvailable:") == Some(12345));
    }
}
