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

use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

/// Size of the one read buffer. Every field we need sits on a short line; longer lines
/// (the `intr` line of /proc/stat on big hosts) are skipped by the streaming scanner.
const BUF_SIZE: usize = 8192;

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
    pub container_memory_used_bytes: u64,
    /// Falco's `cpu_usage_perc_total_host`: cumulative since boot, round1.
    pub cpu_usage_perc_total_host: f64,
    /// Host CPU since the previous sample (or construction), round1.
    pub host_cpu_usage_perc_interval: f64,
    pub memory_used_host_kb: u64,
    pub procs_running_host: u64,
    pub open_fds_host: u64,
    pub host_boot_ts_ns: u64,
}

/// Which cgroup hierarchy `container_memory_used` is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    /// No usable cgroup line, or no memory file found: reported as 0.
    None,
    /// v1 `memory` controller: `memory.usage_in_bytes`.
    V1,
    /// v2 unified hierarchy: `memory.current`.
    V2,
}

/// VmRSS / VmSize of /proc/self/status, kB. Each is `None` when absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusMem {
    pub rss_kb: Option<u64>,
    pub vsz_kb: Option<u64>,
}

/// The fields of /proc/self/stat we use, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SelfStat {
    pub utime: u64,
    pub stime: u64,
    /// Start time after boot.
    pub starttime: u64,
}

impl SelfStat {
    pub fn cpu_ticks(&self) -> u64 {
        self.utime.saturating_add(self.stime)
    }
}

/// The first seven columns of the aggregate `cpu` line of /proc/stat (ticks since boot).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
}

impl CpuTimes {
    /// Falco's denominator: user+nice+system+idle+iowait+irq+softirq (steal/guest left out).
    pub fn total(&self) -> u64 {
        [
            self.user,
            self.nice,
            self.system,
            self.idle,
            self.iowait,
            self.irq,
            self.softirq,
        ]
        .iter()
        .fold(0u64, |a, &b| a.saturating_add(b))
    }
}

/// What we take from /proc/stat. Each part is `None` when absent or malformed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcStat {
    pub cpu: Option<CpuTimes>,
    /// Boot time, seconds since the epoch.
    pub btime: Option<u64>,
    pub procs_running: Option<u64>,
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
// Pure parsers
// ---------------------------------------------------------------------------------------

fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
}

fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split(|&b| b == b'\n')
}

/// Strict unsigned decimal; `None` on empty, non-digit or overflow.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// `Key:   1234 kB` → 1234. The unit is required, so a line cut mid-number is rejected.
fn kb_line(line: &[u8], key: &[u8]) -> Option<u64> {
    let mut it = fields(line.strip_prefix(key)?);
    let v = parse_u64(it.next()?)?;
    (it.next()? == b"kB" && it.next().is_none()).then_some(v)
}

impl StatusMem {
    /// Feed one line; returns false once nothing more is needed.
    fn feed(&mut self, line: &[u8]) -> bool {
        if let Some(v) = kb_line(line, b"VmRSS:") {
            self.rss_kb = Some(v);
        } else if let Some(v) = kb_line(line, b"VmSize:") {
            self.vsz_kb = Some(v);
        }
        self.rss_kb.is_none() || self.vsz_kb.is_none()
    }
}

/// VmRSS and VmSize of /proc/self/status.
pub fn parse_status(bytes: &[u8]) -> StatusMem {
    let mut acc = StatusMem::default();
    for l in lines(bytes) {
        if !acc.feed(l) {
            break;
        }
    }
    acc
}

/// First `Pss:` of /proc/self/smaps_rollup (kB). Later `Pss_*` lines don't match the key.
pub fn parse_smaps_rollup_pss(bytes: &[u8]) -> Option<u64> {
    lines(bytes).find_map(|l| kb_line(l, b"Pss:"))
}

/// The fields of a /proc/<pid>/stat line after `comm`, starting with state.
/// `comm` may hold spaces and parentheses, so counting starts at the last `)`.
pub fn stat_fields_after_comm(bytes: &[u8]) -> Option<impl Iterator<Item = &[u8]>> {
    let close = bytes.iter().rposition(|&b| b == b')')?;
    Some(fields(&bytes[close + 1..]))
}

/// utime, stime, starttime of /proc/<pid>/stat. `comm` may contain spaces, parens and
/// even newlines, so fields are counted from the last `)`.
pub fn parse_self_stat(bytes: &[u8]) -> Option<SelfStat> {
    // Index 0 after ')' is field 3 (state): utime = 14, stime = 15, starttime = 22.
    let mut it = stat_fields_after_comm(bytes)?;
    let utime = parse_u64(it.nth(11)?)?;
    let stime = parse_u64(it.next()?)?;
    let starttime = parse_u64(it.nth(6)?)?;
    Some(SelfStat {
        utime,
        stime,
        starttime,
    })
}

/// First number of /proc/uptime, seconds.
pub fn parse_uptime(bytes: &[u8]) -> Option<f64> {
    let first = fields(bytes).next()?;
    let v: f64 = std::str::from_utf8(first).ok()?.parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some(v)
}

/// The aggregate `cpu` line (`cpu` followed by whitespace, not `cpuN`).
pub fn parse_cpu_line(line: &[u8]) -> Option<CpuTimes> {
    let rest = line.strip_prefix(b"cpu")?;
    if !rest.first()?.is_ascii_whitespace() {
        return None;
    }
    let mut it = fields(rest).map(parse_u64);
    let mut next = || it.next().flatten();
    Some(CpuTimes {
        user: next()?,
        nice: next()?,
        system: next()?,
        idle: next()?,
        iowait: next()?,
        irq: next()?,
        softirq: next()?,
    })
}

fn keyed_u64(line: &[u8], key: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(key)?;
    if !rest.first()?.is_ascii_whitespace() {
        return None;
    }
    let mut it = fields(rest);
    let v = parse_u64(it.next()?)?;
    it.next().is_none().then_some(v)
}

impl ProcStat {
    fn feed(&mut self, line: &[u8]) -> bool {
        if self.cpu.is_none() && line.starts_with(b"cpu") {
            self.cpu = parse_cpu_line(line);
        } else if let Some(v) = keyed_u64(line, b"btime") {
            self.btime = Some(v);
        } else if let Some(v) = keyed_u64(line, b"procs_running") {
            self.procs_running = Some(v);
        }
        self.cpu.is_none() || self.btime.is_none() || self.procs_running.is_none()
    }
}

/// The `cpu` line, `btime` and `procs_running` of /proc/stat.
pub fn parse_proc_stat(bytes: &[u8]) -> ProcStat {
    let mut acc = ProcStat::default();
    for l in lines(bytes) {
        if !acc.feed(l) {
            break;
        }
    }
    acc
}

#[derive(Default)]
struct MemInfoAcc {
    total: Option<u64>,
    free: Option<u64>,
    buffers: Option<u64>,
    cached: Option<u64>,
}

impl MemInfoAcc {
    fn feed(&mut self, line: &[u8]) -> bool {
        let slots: [(&[u8], &mut Option<u64>); 4] = [
            (b"MemTotal:", &mut self.total),
            (b"MemFree:", &mut self.free),
            (b"Buffers:", &mut self.buffers),
            (b"Cached:", &mut self.cached),
        ];
        for (key, slot) in slots {
            if let Some(v) = kb_line(line, key) {
                *slot = Some(v);
                break;
            }
        }
        self.used().is_none()
    }

    /// All four are required: a partial formula would overstate usage.
    fn used(&self) -> Option<u64> {
        Some(
            self.total?
                .saturating_sub(self.free?)
                .saturating_sub(self.buffers?)
                .saturating_sub(self.cached?),
        )
    }
}

/// MemTotal − MemFree − Buffers − Cached of /proc/meminfo (kB).
pub fn parse_meminfo_used(bytes: &[u8]) -> Option<u64> {
    let mut acc = MemInfoAcc::default();
    for l in lines(bytes) {
        if !acc.feed(l) {
            break;
        }
    }
    acc.used()
}

/// First number of /proc/sys/fs/file-nr (allocated file handles).
pub fn parse_file_nr(bytes: &[u8]) -> Option<u64> {
    parse_u64(fields(bytes).next()?)
}

/// A single integer file such as `memory.current` / `memory.usage_in_bytes`.
pub fn parse_single_u64(bytes: &[u8]) -> Option<u64> {
    let mut it = fields(bytes);
    let v = parse_u64(it.next()?)?;
    it.next().is_none().then_some(v)
}

/// The agent's memory cgroup from /proc/self/cgroup. A v1 `memory` controller line wins
/// over the v2 `0::` line: on hybrid hosts memory is bound to v1.
pub fn parse_cgroup(bytes: &[u8]) -> Option<(CgroupMode, &[u8])> {
    let mut v2 = None;
    for l in lines(bytes) {
        // hierarchy-ID:controller-list:path — the path itself may contain ':'.
        let mut parts = l.splitn(3, |&b| b == b':');
        let (Some(id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if path.first() != Some(&b'/') {
            continue;
        }
        if ctrls.split(|&b| b == b',').any(|c| c == b"memory") {
            return Some((CgroupMode::V1, path));
        }
        if id == b"0" && ctrls.is_empty() {
            v2 = Some((CgroupMode::V2, path));
        }
    }
    v2
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

// ---------------------------------------------------------------------------------------
// Allocation-free file access
// ---------------------------------------------------------------------------------------

fn open_ro(path: &CStr) -> Option<OwnedFd> {
    rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()
}

fn read_retry(fd: &OwnedFd, buf: &mut [u8]) -> Option<usize> {
    loop {
        match rustix::io::read(fd, &mut *buf) {
            Ok(n) => return Some(n),
            Err(Errno::INTR) => continue,
            Err(_) => return None,
        }
    }
}

/// Read a small file whole (up to the buffer size). For single-line files where a
/// newline inside `comm` would break line scanning.
pub(crate) fn read_whole<'b>(path: &CStr, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let fd = open_ro(path)?;
    let mut n = 0;
    while n < buf.len() {
        match read_retry(&fd, &mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Some(&buf[..n])
}

/// Stream a file line by line through `buf`, calling `f` until it returns false. Lines
/// longer than the buffer are skipped whole, so any file size works with a fixed buffer.
/// A final line without a newline is still delivered. `None` if the file can't be opened.
fn scan_lines(path: &CStr, buf: &mut [u8], mut f: impl FnMut(&[u8]) -> bool) -> Option<()> {
    let fd = open_ro(path)?;
    let mut filled = 0;
    let mut skipping = false;
    loop {
        if filled == buf.len() {
            // The pending line fills the buffer: drop it up to its newline.
            filled = 0;
            skipping = true;
        }
        let n = match read_retry(&fd, &mut buf[filled..]) {
            Some(0) | None => break,
            Some(n) => n,
        };
        let end = filled + n;
        let mut start = 0;
        let mut from = filled;
        while let Some(pos) = buf[from..end].iter().position(|&b| b == b'\n') {
            let nl = from + pos;
            if skipping {
                skipping = false;
            } else if !f(&buf[start..nl]) {
                return Some(());
            }
            start = nl + 1;
            from = start;
        }
        buf.copy_within(start..end, 0);
        filled = end - start;
    }
    if filled > 0 && !skipping {
        f(&buf[..filled]);
    }
    Some(())
}

fn cpath(p: &Path) -> CString {
    // A path with an interior NUL can't exist; an empty path simply fails to open.
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

fn monotonic_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
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
    cgroup_mem: Option<CString>,
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
        let root = root.as_ref();
        let at = |rel: &str| cpath(&root.join(rel));
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
                uptime: at("proc/uptime"),
                proc_stat: at("proc/stat"),
                meminfo: at("proc/meminfo"),
                file_nr: at("proc/sys/fs/file-nr"),
            },
            clk_tck,
            cgroup_mode: CgroupMode::None,
            cgroup_mem: None,
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

    /// Read `container_memory_used` from an explicit file instead (Falco lets an
    /// environment variable name it).
    pub fn with_container_memory_file(mut self, file: impl AsRef<Path>) -> Self {
        self.cgroup_mem = Some(cpath(file.as_ref()));
        self
    }

    pub fn cgroup_mode(&self) -> CgroupMode {
        self.cgroup_mode
    }

    /// The memory cgroup file in use, if any.
    pub fn container_memory_file(&self) -> Option<&CStr> {
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

    pub fn read_container_memory_bytes(&mut self) -> Option<u64> {
        let path = self.cgroup_mem.as_deref()?;
        parse_single_u64(read_whole(path, &mut self.buf)?)
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
mod tests {
    use super::*;

    fn fx(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/proc")
            .join(name)
    }

    fn fx_bytes(case: &str, rel: &str) -> Vec<u8> {
        std::fs::read(fx(case).join(rel)).unwrap()
    }

    #[test]
    fn rounding_and_mb_conversion() {
        assert_eq!(round1(12.25), 12.3);
        assert_eq!(round1(2.44), 2.4);
        assert_eq!(round1(0.05), 0.1);
        assert_eq!(round1(-0.25), -0.3);
        assert_eq!(kb_to_mb(1023), 0);
        assert_eq!(kb_to_mb(174_000), 169);
        assert_eq!(bytes_to_mb(1024 * 1024 - 1), 0);
        assert_eq!(bytes_to_mb(73_170_944), 69);
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"-1"), None);
        assert_eq!(parse_u64(b""), None);
    }

    #[test]
    fn status_real_missing_truncated() {
        let want = StatusMem {
            rss_kb: Some(1652),
            vsz_kb: Some(4488),
        };
        assert_eq!(parse_status(&fx_bytes("real", "proc/self/status")), want);
        assert_eq!(Resources::new(fx("real")).read_status(), Some(want));
        // No VmRSS line (as for a kernel thread): VmSize alone, VmPeak not mistaken for it.
        let m = Resources::new(fx("missing")).read_status().unwrap();
        assert_eq!((m.rss_kb, m.vsz_kb), (None, Some(8000)));
        // "VmRSS:\t    1" cut before its unit is rejected rather than read as 1 kB.
        let t = Resources::new(fx("truncated")).read_status().unwrap();
        assert_eq!((t.rss_kb, t.vsz_kb), (None, Some(4488)));
        assert_eq!(Resources::new(fx("edge_comm")).read_status(), None);
    }

    #[test]
    fn smaps_rollup_pss() {
        assert_eq!(
            parse_smaps_rollup_pss(&fx_bytes("real", "proc/self/smaps_rollup")),
            Some(332)
        );
        assert_eq!(Resources::new(fx("real")).read_pss_kb(), Some(332));
        // Only SwapPss / Pss_* lines: none of them is "Pss:".
        assert_eq!(Resources::new(fx("missing")).read_pss_kb(), None);
        assert_eq!(
            parse_smaps_rollup_pss(b"Pss_Anon: 5 kB\nPss: 7 kB\n"),
            Some(7)
        );
        assert_eq!(Resources::new(fx("truncated")).read_pss_kb(), None);
        assert_eq!(Resources::new(fx("edge_comm")).read_pss_kb(), None);
    }

    #[test]
    fn self_stat_real_and_lifetime_cpu() {
        let want = SelfStat {
            utime: 81,
            stime: 0,
            starttime: 56695,
        };
        assert_eq!(
            parse_self_stat(&fx_bytes("real", "proc/self/stat")),
            Some(want)
        );
        let mut r = Resources::new(fx("real"));
        assert_eq!(r.read_self_stat(), Some(want));
        assert_eq!(r.read_uptime_secs(), Some(568.47));
        // 0.81 s of CPU over 568.47 − 566.95 = 1.52 s of life.
        assert_eq!(lifetime_cpu_perc(&want, 568.47, 100), 53.3);
        // Started "after" uptime (clock skew / bad data): 0, not negative or infinite.
        assert_eq!(lifetime_cpu_perc(&want, 500.0, 100), 0.0);
        assert_eq!(lifetime_cpu_perc(&want, 568.47, 0), 0.0);
    }

    #[test]
    fn self_stat_comm_with_parens_spaces_newline() {
        let mut r = Resources::new(fx("edge_comm"));
        let st = r.read_self_stat().unwrap();
        assert_eq!(
            st,
            SelfStat {
                utime: 250,
                stime: 150,
                starttime: 1000
            }
        );
        // 4 s of CPU over 100 − 10 = 90 s.
        assert_eq!(
            lifetime_cpu_perc(&st, r.read_uptime_secs().unwrap(), 100),
            4.4
        );
        let nl = b"7 (a\n) (b) R 1 1 1 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0 77 0 0\n";
        assert_eq!(
            parse_self_stat(nl),
            Some(SelfStat {
                utime: 5,
                stime: 6,
                starttime: 77
            })
        );
    }

    #[test]
    fn self_stat_missing_truncated_malformed() {
        assert_eq!(Resources::new(fx("missing")).read_self_stat(), None);
        assert_eq!(Resources::new(fx("truncated")).read_self_stat(), None);
        assert_eq!(Resources::new(fx("cgroup_v2")).read_self_stat(), None);
        assert_eq!(parse_self_stat(b"12 (x R 1 2"), None);
        assert_eq!(parse_self_stat(b""), None);
        assert_eq!(parse_self_stat(b")"), None);
        let bad = b"1 (x) R 1 1 1 0 -1 0 0 0 0 0 u 6 0 0 20 0 1 0 77";
        assert_eq!(parse_self_stat(bad), None);
    }

    #[test]
    fn uptime_parsing() {
        assert_eq!(parse_uptime(b"568.47 976.44\n"), Some(568.47));
        assert_eq!(Resources::new(fx("missing")).read_uptime_secs(), None);
        assert_eq!(
            Resources::new(fx("truncated")).read_uptime_secs(),
            Some(568.0)
        );
        assert_eq!(parse_uptime(b"NaN 1"), None);
        assert_eq!(parse_uptime(b"-3 1"), None);
        assert_eq!(parse_uptime(b""), None);
    }

    #[test]
    fn proc_stat_real() {
        let want = ProcStat {
            cpu: Some(CpuTimes {
                user: 8026,
                nice: 0,
                system: 4194,
                idle: 97634,
                iowait: 1364,
                irq: 0,
                softirq: 55,
            }),
            btime: Some(1_795_464_319),
            procs_running: Some(3),
        };
        assert_eq!(parse_proc_stat(&fx_bytes("real", "proc/stat")), want);
        assert_eq!(Resources::new(fx("real")).read_proc_stat(), want);
        // 100 − 97634×100/111273
        assert_eq!(host_cpu_perc(&want.cpu.unwrap()), 12.3);
    }

    #[test]
    fn proc_stat_many_cpus_streams_past_long_intr_line() {
        let bytes = fx_bytes("many_cpus", "proc/stat");
        assert!(bytes.len() > 4 * BUF_SIZE);
        let mut r = Resources::new(fx("many_cpus"));
        let ps = r.read_proc_stat();
        assert_eq!(ps, parse_proc_stat(&bytes));
        assert_eq!(ps.btime, Some(1_700_000_000));
        assert_eq!(ps.procs_running, Some(37));
        assert_eq!(host_cpu_perc(&ps.cpu.unwrap()), 15.6);
        let s = r.sample();
        assert_eq!(s.host_boot_ts_ns, 1_700_000_000_000_000_000);
        assert_eq!(s.procs_running_host, 37);
    }

    #[test]
    fn proc_stat_missing_truncated() {
        let m = Resources::new(fx("missing")).read_proc_stat();
        assert!(m.cpu.is_some());
        assert_eq!((m.btime, m.procs_running), (None, None));
        // "cpu  8026 0 4194 97634 13": fewer than seven columns.
        let t = Resources::new(fx("truncated")).read_proc_stat();
        assert_eq!(t, ProcStat::default());
        assert_eq!(
            Resources::new(fx("edge_comm")).read_proc_stat(),
            ProcStat::default()
        );
        // cpuN is never taken for the aggregate line; prefixes must match whole keys.
        assert_eq!(parse_cpu_line(b"cpu0 1 2 3 4 5 6 7"), None);
        let p = parse_proc_stat(b"btimex 5\nbtime 6\nprocs_running_x 1\nprocs_running 2\n");
        assert_eq!((p.btime, p.procs_running), (Some(6), Some(2)));
        assert_eq!(host_cpu_perc(&CpuTimes::default()), 0.0);
    }

    #[test]
    fn scan_lines_small_buffer_skips_long_lines() {
        let path = cpath(&fx("real").join("proc/stat"));
        let mut buf = [0u8; 64]; // the real intr line is far longer than this
        let mut acc = ProcStat::default();
        let mut seen = 0;
        scan_lines(&path, &mut buf, |l| {
            seen += 1;
            assert!(!l.starts_with(b"intr") && !l.contains(&b'\n'));
            acc.feed(l)
        })
        .unwrap();
        assert_eq!(acc, parse_proc_stat(&fx_bytes("real", "proc/stat")));
        assert!(scan_lines(&cpath(&fx("nonexistent")), &mut buf, |_| true).is_none());
    }

    #[test]
    fn meminfo_used() {
        // 24684096 − 22928580 − 19200 − 1371488
        assert_eq!(
            parse_meminfo_used(&fx_bytes("real", "proc/meminfo")),
            Some(364_828)
        );
        assert_eq!(
            Resources::new(fx("real")).read_memory_used_host_kb(),
            Some(364_828)
        );
        // No MemFree; and a file cut inside "Cached:".
        assert_eq!(
            Resources::new(fx("missing")).read_memory_used_host_kb(),
            None
        );
        assert_eq!(
            Resources::new(fx("truncated")).read_memory_used_host_kb(),
            None
        );
        // SwapCached must not be read as Cached.
        let b =
            b"MemTotal: 100 kB\nMemFree: 10 kB\nBuffers: 5 kB\nSwapCached: 1 kB\nCached: 20 kB\n";
        assert_eq!(parse_meminfo_used(b), Some(65));
    }

    #[test]
    fn file_nr() {
        assert_eq!(Resources::new(fx("real")).read_open_fds_host(), Some(629));
        assert_eq!(parse_file_nr(b"629\t0\t2466183\n"), Some(629));
        assert_eq!(Resources::new(fx("missing")).read_open_fds_host(), None);
        assert_eq!(
            Resources::new(fx("truncated")).read_open_fds_host(),
            Some(62)
        );
        assert_eq!(Resources::new(fx("edge_comm")).read_open_fds_host(), None);
    }

    #[test]
    fn cgroup_parsing() {
        let v2 = parse_cgroup(b"0::/system.slice/a:b.service\n");
        assert_eq!(
            v2,
            Some((CgroupMode::V2, &b"/system.slice/a:b.service"[..]))
        );
        // Hybrid: the v1 memory line wins even after the 0:: line.
        let hy = parse_cgroup(b"0::/user.slice\n3:cpu,memory:/k/x\n");
        assert_eq!(hy, Some((CgroupMode::V1, &b"/k/x"[..])));
        assert_eq!(parse_cgroup(b"1:name=systemd:/\n2:memoryx:/a\n"), None);
        assert_eq!(parse_cgroup(b"garbage\n\n::\n"), None);
    }

    fn cgroup_case(name: &str) -> (CgroupMode, Option<u64>) {
        let mut r = Resources::new(fx(name));
        (r.cgroup_mode(), r.read_container_memory_bytes())
    }

    #[test]
    fn cgroup_memory_layouts() {
        // This machine: hybrid (v1 memory + "0::/"), per-cgroup v1 file present.
        assert_eq!(cgroup_case("real"), (CgroupMode::V1, Some(17_993_728)));
        assert_eq!(cgroup_case("cgroup_v1"), (CgroupMode::V1, Some(73_170_944)));
        assert_eq!(
            cgroup_case("cgroup_v1_fallback"),
            (CgroupMode::V1, Some(52_428_800))
        );
        assert_eq!(cgroup_case("cgroup_v2"), (CgroupMode::V2, Some(18_874_368)));
        assert_eq!(
            cgroup_case("cgroup_v2_ns"),
            (CgroupMode::V2, Some(31_457_280))
        );
        assert_eq!(
            cgroup_case("cgroup_v2_escape"),
            (CgroupMode::V2, Some(4_194_304))
        );
        assert_eq!(cgroup_case("cgroup_v2_hostroot"), (CgroupMode::None, None));
        assert_eq!(cgroup_case("edge_comm"), (CgroupMode::None, None));
        let f = fx("cgroup_v2").join("sys/fs/cgroup/system.slice/kestrel.service/memory.current");
        let mut r = Resources::new(fx("edge_comm")).with_container_memory_file(f);
        assert_eq!(r.read_container_memory_bytes(), Some(18_874_368));
        assert_eq!(parse_single_u64(b"12 13"), None);
    }

    #[test]
    fn sample_real_fixture() {
        let mut r = Resources::new(fx("real"));
        let s = r.sample();
        let hz = r.clock_ticks_per_second();
        let st = parse_self_stat(&fx_bytes("real", "proc/self/stat")).unwrap();
        let want = ResourceSample {
            cpu_usage_perc: lifetime_cpu_perc(&st, 568.47, hz),
            // Files don't change between construction and sample: no activity.
            kestrel_cpu_usage_perc_interval: 0.0,
            memory_rss_kb: 1652,
            memory_vsz_kb: 4488,
            memory_pss_kb: 332,
            container_memory_used_bytes: 17_993_728,
            cpu_usage_perc_total_host: 12.3,
            host_cpu_usage_perc_interval: 0.0,
            memory_used_host_kb: 364_828,
            procs_running_host: 3,
            open_fds_host: 629,
            host_boot_ts_ns: 1_795_464_319_000_000_000,
        };
        assert_eq!(s, want);
    }

    #[test]
    fn sample_missing_root_is_all_zero() {
        let mut r = Resources::new(fx("does-not-exist"));
        assert_eq!(r.cgroup_mode(), CgroupMode::None);
        assert_eq!(r.sample(), ResourceSample::default());
        // Partial/garbage trees never panic either.
        for case in ["missing", "truncated", "edge_comm", "cgroup_v2"] {
            let _ = Resources::new(fx(case)).sample();
        }
    }

    #[test]
    fn interval_figures_from_deltas() {
        assert_eq!(interval_cpu_perc(100, 200, 2_000_000_000, 100), 50.0);
        assert_eq!(interval_cpu_perc(100, 90, 1_000_000_000, 100), 0.0);
        assert_eq!(interval_cpu_perc(0, 5, 0, 100), 0.0);
        let a = CpuTimes {
            user: 100,
            idle: 1000,
            ..Default::default()
        };
        let b = CpuTimes {
            user: 150,
            idle: 1150,
            ..Default::default()
        };
        assert_eq!(host_cpu_perc_between(&a, &b), 25.0);
        assert_eq!(host_cpu_perc_between(&b, &a), 0.0);

        // End to end through the reader, with the files changing between samples.
        let dir = std::env::temp_dir().join(format!("kestrel-resources-{}", std::process::id()));
        let stat = |u: u64, s: u64| {
            format!("9 (k) S 1 9 9 0 -1 0 0 0 0 0 {u} {s} 0 0 20 0 3 0 500 1000 10 0\n")
        };
        std::fs::create_dir_all(dir.join("proc/self")).unwrap();
        std::fs::write(dir.join("proc/self/stat"), stat(100, 50)).unwrap();
        std::fs::write(dir.join("proc/stat"), "cpu  100 0 0 1000 0 0 0\n").unwrap();
        let mut r = Resources::new(&dir);
        let (_, t0) = r.prev_proc.unwrap();
        let hz = r.clock_ticks_per_second();
        std::fs::write(dir.join("proc/self/stat"), stat(100 + hz, 50)).unwrap();
        std::fs::write(dir.join("proc/stat"), "cpu  150 0 0 1150 0 0 0\n").unwrap();
        let s1 = r.sample_at(t0 + 2_000_000_000);
        // Second sample with nothing new: the baseline moved.
        let s2 = r.sample_at(t0 + 3_000_000_000);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(s1.kestrel_cpu_usage_perc_interval, 50.0);
        assert_eq!(s1.host_cpu_usage_perc_interval, 25.0);
        // Cumulative: 100 − 1150×100/1300.
        assert_eq!(s1.cpu_usage_perc_total_host, 11.5);
        assert_eq!(s2.kestrel_cpu_usage_perc_interval, 0.0);
        assert_eq!(s2.host_cpu_usage_perc_interval, 0.0);
    }

    #[test]
    fn sample_live_system() {
        let mut r = Resources::default();
        // Burn a little CPU so the interval figure has something to see.
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed().as_millis() < 60 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let s = r.sample();
        assert!(s.memory_rss_kb > 0 && s.memory_vsz_kb >= s.memory_rss_kb);
        assert!(s.memory_used_host_kb > 0);
        assert!(s.procs_running_host >= 1, "we are running");
        assert!(s.open_fds_host > 0);
        assert!(s.host_boot_ts_ns > 1_000_000_000 * 1_000_000_000);
        assert!((0.0..=100.0).contains(&s.cpu_usage_perc_total_host));
        assert!(s.cpu_usage_perc >= 0.0 && s.kestrel_cpu_usage_perc_interval >= 0.0);
        assert!((0.0..=100.0).contains(&s.host_cpu_usage_perc_interval));
        if Path::new("/proc/self/smaps_rollup").exists() {
            assert!(s.memory_pss_kb > 0);
        }
        if r.cgroup_mode() != CgroupMode::None {
            assert!(s.container_memory_used_bytes > 0);
        }
        let st = r.read_self_stat().unwrap();
        assert!(st.starttime > 0);
    }
}
