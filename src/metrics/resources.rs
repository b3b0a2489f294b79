//! Resource-utilisation readers for the Falco-format metrics snapshot.
//!
//! Falco's `resource_utilization_enabled` fields (`cpu_usage_perc`, `memory_rss`,
//! `memory_vsz`, `memory_pss`, `container_memory_used`, `cpu_usage_perc_total_host`,
//! `memory_used_host`, `procs_running_host`, `open_fds_host`, `host_boot_ts`) are instant
//! reads of procfs/cgroupfs taken when a snapshot is written. [`Resources`] resolves every
//! path and allocates its single read buffer once at construction, so
//! [`Resources::sample`] does no heap allocation: it opens, streams and closes each file
//! with raw syscalls. Besides Falco's lifetime-average CPU figures it keeps the previous
//! sample and also reports per-interval process and host CPU, which is what operators
//! usually want. All paths hang off a root directory so tests can point the reader at
//! fixture trees; parsers are pure functions over byte slices. A missing file or
//! malformed content gives `None` (0 in the sample), never a panic.

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::base::time::monotonic_ns;
use crate::procfs::{
    cpath, kb_line, parse_cgroup, parse_file_nr, parse_self_stat, parse_single_u64, parse_uptime,
    read_whole, scan_lines, CgroupMode, CpuTimes, LineAcc, MemInfoAcc, ProcStat, SelfStat,
    StatusMem,
};

/// Size of the one read buffer. Every field we need sits on a short line; longer lines
/// (the `intr` line of /proc/stat on big hosts) are skipped by the streaming scanner.
const BUF_SIZE: usize = 8192;

/// libsinsp's default container memory file: the v1 memory hierarchy's root,
/// which inside a container is the container's cgroup.
const FALCO_MEM_FILE: &str = "sys/fs/cgroup/memory/memory.usage_in_bytes";

/// One snapshot of resource figures. Memory fields keep their source unit (kB or bytes);
/// use [`kb_to_mb`] / [`bytes_to_mb`] for Falco's `convert_memory_to_mb`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ResourceSample {
    /// Falco's `cpu_usage_perc`: lifetime average, % of one CPU, round1.
    pub cpu_usage_perc: f64,
    /// Process CPU since the previous sample (or construction), % of one CPU, round1.
    pub kestrel_cpu_usage_perc_interval: f64,
    pub memory_rss_kb: u64,
    pub memory_vsz_kb: u64,
    pub memory_pss_kb: u64,
    /// Falco's `container_memory_used`: FALCO_CGROUP_MEM_PATH or the cgroup v1
    /// memory hierarchy's root file, absent (0) on a v2-only host.
    pub container_memory_used_bytes: u64,
    /// `kestrel.cgroup_memory_used_bytes`: the agent's own memory cgroup,
    /// v1 or v2 (memory.current).
    pub kestrel_cgroup_memory_used_bytes: u64,
    /// Falco's `cpu_usage_perc_total_host`: cumulative since boot, round1.
    pub cpu_usage_perc_total_host: f64,
    /// Host CPU since the previous sample (or construction), round1.
    pub host_cpu_usage_perc_interval: f64,
    pub memory_used_host_kb: u64,
    pub procs_running_host: u64,
    pub open_fds_host: u64,
    pub host_boot_ts_ns: u64,
}

/// Falco's `convert_memory_to_mb` for kB values (truncating).
pub fn kb_to_mb(kb: u64) -> u64 {
    kb / 1024
}

/// Falco's `convert_memory_to_mb` for byte values (truncating).
pub fn bytes_to_mb(bytes: u64) -> u64 {
    bytes / (1024 * 1024)
}

/// Round half away from zero to one decimal (Falco's `std::round(x * 10) / 10`).
pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

// ---------------------------------------------------------------------------------------
// Derived figures
// ---------------------------------------------------------------------------------------

fn finite_or_zero(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        0.0
    }
}

/// Falco's `cpu_usage_perc`: (utime+stime)/CLK_TCK ÷ (uptime − starttime/CLK_TCK) × 100.
pub fn lifetime_cpu_perc(stat: &SelfStat, uptime_secs: f64, clk_tck: u64) -> f64 {
    if clk_tck == 0 {
        return 0.0;
    }
    let hz = clk_tck as f64;
    let elapsed = uptime_secs - stat.starttime as f64 / hz;
    if elapsed.is_nan() || elapsed <= 0.0 {
        return 0.0;
    }
    finite_or_zero(round1(stat.cpu_ticks() as f64 / hz / elapsed * 100.0))
}

/// Process CPU between two samples, % of one CPU.
pub fn interval_cpu_perc(prev_ticks: u64, cur_ticks: u64, dt_ns: u64, clk_tck: u64) -> f64 {
    if dt_ns == 0 || clk_tck == 0 {
        return 0.0;
    }
    let secs = cur_ticks.saturating_sub(prev_ticks) as f64 / clk_tck as f64;
    finite_or_zero(round1(secs / (dt_ns as f64 / 1e9) * 100.0))
}

/// Falco's `cpu_usage_perc_total_host`: 100 − idle×100/total, cumulative since boot.
pub fn host_cpu_perc(c: &CpuTimes) -> f64 {
    let total = c.total();
    if total == 0 {
        return 0.0;
    }
    finite_or_zero(round1(100.0 - c.idle as f64 * 100.0 / total as f64))
}

/// The same formula over the deltas between two reads. Counters can step back on CPU
/// hot-unplug, so each delta saturates at 0.
pub fn host_cpu_perc_between(prev: &CpuTimes, cur: &CpuTimes) -> f64 {
    let d = CpuTimes {
        user: cur.user.saturating_sub(prev.user),
        nice: cur.nice.saturating_sub(prev.nice),
        system: cur.system.saturating_sub(prev.system),
        idle: cur.idle.saturating_sub(prev.idle),
        iowait: cur.iowait.saturating_sub(prev.iowait),
        irq: cur.irq.saturating_sub(prev.irq),
        softirq: cur.softirq.saturating_sub(prev.softirq),
    };
    host_cpu_perc(&d)
}

/// Paths of every file read per sample, resolved once.
struct Paths {
    status: CString,
    smaps_rollup: CString,
    self_stat: CString,
    uptime: CString,
    proc_stat: CString,
    meminfo: CString,
    file_nr: CString,
}

/// Reader for all resource figures; see the module docs.
pub struct Resources {
    buf: Box<[u8]>,
    paths: Paths,
    clk_tck: u64,
    cgroup_mode: CgroupMode,
    /// The agent's own memory cgroup file.
    cgroup_mem: Option<CString>,
    /// Falco's container memory file.
    falco_mem: CString,
    /// (utime+stime ticks, monotonic ns) of the previous successful read.
    prev_proc: Option<(u64, u64)>,
    prev_host: Option<CpuTimes>,
}

impl Default for Resources {
    fn default() -> Self {
        Self::new("/")
    }
}

impl Resources {
    /// Build a reader whose paths live under `root` ("/" on a live system). Resolves the
    /// memory cgroup and takes the baseline for the interval figures, so the first
    /// [`sample`](Self::sample) already reports CPU since construction.
    pub fn new(root: impl AsRef<Path>) -> Self {
        Self::on_host(root.as_ref(), root.as_ref())
    }

    /// The agent's own files under `root`, the host's (CPU, memory, uptime,
    /// open files) under `host` (HOST_ROOT, see procfs::host_root).
    pub fn on_host(root: impl AsRef<Path>, host: impl AsRef<Path>) -> Self {
        let (root, host) = (root.as_ref(), host.as_ref());
        let at = |rel: &str| cpath(&root.join(rel));
        let on_host = |rel: &str| cpath(&host.join(rel));
        let clk_tck = match rustix::param::clock_ticks_per_second() {
            0 => 100, // USER_HZ on every Linux ABI; only a broken auxv gives 0
            n => n,
        };
        let mut r = Resources {
            buf: vec![0u8; BUF_SIZE].into_boxed_slice(),
            paths: Paths {
                status: at("proc/self/status"),
                smaps_rollup: at("proc/self/smaps_rollup"),
                self_stat: at("proc/self/stat"),
                uptime: on_host("proc/uptime"),
                proc_stat: on_host("proc/stat"),
                meminfo: on_host("proc/meminfo"),
                file_nr: on_host("proc/sys/fs/file-nr"),
            },
            clk_tck,
            cgroup_mode: CgroupMode::None,
            cgroup_mem: None,
            falco_mem: at(FALCO_MEM_FILE),
            prev_proc: None,
            prev_host: None,
        };
        let (mode, file) = r.resolve_cgroup_memory(root);
        r.cgroup_mode = mode;
        r.cgroup_mem = file.map(|p| cpath(&p));
        let now = monotonic_ns();
        r.prev_proc = r.read_self_stat().map(|s| (s.cpu_ticks(), now));
        r.prev_host = r.read_proc_stat().cpu;
        r
    }

    /// Falco's FALCO_CGROUP_MEM_PATH: `container_memory_used` from this file.
    /// One with ".." (or empty) keeps the default, as libs 0.25.4 does
    /// (linux/resource_utilization.cpp, get_container_memory_used).
    pub fn with_container_memory_file(mut self, file: impl AsRef<Path>) -> Self {
        let f = file.as_ref();
        if !f.as_os_str().is_empty() && !f.as_os_str().as_bytes().windows(2).any(|w| w == b"..") {
            self.falco_mem = cpath(f);
        }
        self
    }

    pub fn cgroup_mode(&self) -> CgroupMode {
        self.cgroup_mode
    }

    /// The agent's own memory cgroup file, if found.
    pub fn own_cgroup_memory_file(&self) -> Option<&CStr> {
        self.cgroup_mem.as_deref()
    }

    pub fn clock_ticks_per_second(&self) -> u64 {
        self.clk_tck
    }

    /// Per-cgroup file first; then the hierarchy's root file, which is the agent's own
    /// cgroup inside a container whose cgroup mount is its own subtree.
    fn resolve_cgroup_memory(&mut self, root: &Path) -> (CgroupMode, Option<PathBuf>) {
        let cg = cpath(&root.join("proc/self/cgroup"));
        let Some(bytes) = read_whole(&cg, &mut self.buf) else {
            return (CgroupMode::None, None);
        };
        let Some((mode, path)) = parse_cgroup(bytes) else {
            return (CgroupMode::None, None);
        };
        let (mount, file) = match mode {
            CgroupMode::V1 => ("sys/fs/cgroup/memory", "memory.usage_in_bytes"),
            _ => ("sys/fs/cgroup", "memory.current"),
        };
        let mount = root.join(mount);
        let rel = Path::new(std::ffi::OsStr::from_bytes(path));
        // "/.." shows up when our cgroup is outside the reader's cgroup namespace: never
        // let it walk out of the mount.
        let own = rel
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
            .then(|| mount.join(rel.strip_prefix("/").unwrap_or(rel)).join(file));
        let found = own
            .into_iter()
            .chain(std::iter::once(mount.join(file)))
            .find(|p| p.is_file());
        match found {
            Some(p) => (mode, Some(p)),
            None => (CgroupMode::None, None),
        }
    }

    pub fn read_status(&mut self) -> Option<StatusMem> {
        let mut acc = StatusMem::default();
        scan_lines(&self.paths.status, &mut self.buf, |l| acc.feed(l))?;
        Some(acc)
    }

    pub fn read_pss_kb(&mut self) -> Option<u64> {
        let mut pss = None;
        scan_lines(&self.paths.smaps_rollup, &mut self.buf, |l| {
            pss = kb_line(l, b"Pss:");
            pss.is_none()
        })?;
        pss
    }

    pub fn read_self_stat(&mut self) -> Option<SelfStat> {
        parse_self_stat(read_whole(&self.paths.self_stat, &mut self.buf)?)
    }

    pub fn read_uptime_secs(&mut self) -> Option<f64> {
        parse_uptime(read_whole(&self.paths.uptime, &mut self.buf)?)
    }

    /// Streams /proc/stat: `btime`/`procs_running` come after one line per CPU and the
    /// long `intr` line, which may far exceed the buffer.
    pub fn read_proc_stat(&mut self) -> ProcStat {
        let mut acc = ProcStat::default();
        let _ = scan_lines(&self.paths.proc_stat, &mut self.buf, |l| acc.feed(l));
        acc
    }

    pub fn read_memory_used_host_kb(&mut self) -> Option<u64> {
        let mut acc = MemInfoAcc::default();
        scan_lines(&self.paths.meminfo, &mut self.buf, |l| acc.feed(l))?;
        acc.used()
    }

    pub fn read_open_fds_host(&mut self) -> Option<u64> {
        parse_file_nr(read_whole(&self.paths.file_nr, &mut self.buf)?)
    }

    /// Falco's figure: libsinsp reads this one file (0.14.2 stats.cpp
    /// get_container_memory_usage), which on a v2-only host is missing.
    pub fn read_container_memory_bytes(&mut self) -> Option<u64> {
        parse_single_u64(read_whole(&self.falco_mem, &mut self.buf)?)
    }

    /// The agent's own memory cgroup's usage.
    pub fn read_own_cgroup_memory_bytes(&mut self) -> Option<u64> {
        let path = self.cgroup_mem.as_deref()?;
        parse_single_u64(read_whole(path, &mut self.buf)?)
    }

    /// A sample that leaves the interval figures' baseline where the last
    /// `sample` put it (a scrape between two snapshots).
    pub fn peek(&mut self) -> ResourceSample {
        let (proc_, host) = (self.prev_proc, self.prev_host);
        let s = self.sample();
        (self.prev_proc, self.prev_host) = (proc_, host);
        s
    }

    /// Take a sample now (monotonic clock).
    pub fn sample(&mut self) -> ResourceSample {
        self.sample_at(monotonic_ns())
    }

    /// Take a sample, with `now_ns` the caller's CLOCK_MONOTONIC time in ns (used only
    /// for the interval CPU figure).
    pub fn sample_at(&mut self, now_ns: u64) -> ResourceSample {
        let mut s = ResourceSample::default();

        if let Some(m) = self.read_status() {
            s.memory_rss_kb = m.rss_kb.unwrap_or(0);
            s.memory_vsz_kb = m.vsz_kb.unwrap_or(0);
        }
        s.memory_pss_kb = self.read_pss_kb().unwrap_or(0);
        s.container_memory_used_bytes = self.read_container_memory_bytes().unwrap_or(0);
        s.kestrel_cgroup_memory_used_bytes = self.read_own_cgroup_memory_bytes().unwrap_or(0);

        if let Some(st) = self.read_self_stat() {
            if let Some(up) = self.read_uptime_secs() {
                s.cpu_usage_perc = lifetime_cpu_perc(&st, up, self.clk_tck);
            }
            let ticks = st.cpu_ticks();
            if let Some((pt, pns)) = self.prev_proc {
                let dt = now_ns.saturating_sub(pns);
                s.kestrel_cpu_usage_perc_interval = interval_cpu_perc(pt, ticks, dt, self.clk_tck);
            }
            self.prev_proc = Some((ticks, now_ns));
        }

        let ps = self.read_proc_stat();
        if let Some(cpu) = ps.cpu {
            s.cpu_usage_perc_total_host = host_cpu_perc(&cpu);
            if let Some(prev) = self.prev_host {
                s.host_cpu_usage_perc_interval = host_cpu_perc_between(&prev, &cpu);
            }
            self.prev_host = Some(cpu);
        }
        s.host_boot_ts_ns = ps.btime.unwrap_or(0).saturating_mul(1_000_000_000);
        s.procs_running_host = ps.procs_running.unwrap_or(0);

        s.memory_used_host_kb = self.read_memory_used_host_kb().unwrap_or(0);
        s.open_fds_host = self.read_open_fds_host().unwrap_or(0);
        s
    }
}

#[cfg(test)]
mod tests;
