//! The /proc and cgroup room: pure parsers over byte slices and an
//! allocation-free reader (one caller-owned buffer, raw open/read/close), used
//! by both the state tables (seeding, the lookup fallback) and the metrics
//! (resource figures). A missing file or malformed content gives `None`,
//! never a panic.

pub mod host_root;
pub use host_root::{host_dir, host_path, host_pid, host_root};

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fd::OwnedFd;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

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

// ---------------------------------------------------------------------------------------
// Pure parsers
// ---------------------------------------------------------------------------------------

pub fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
}

pub fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
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

/// A parser fed one line at a time, so the same one reads a buffer
/// (`feed_all`) or streams a file (`scan_lines`).
pub trait LineAcc: Default {
    /// Feed one line; returns false once nothing more is needed.
    fn feed(&mut self, line: &[u8]) -> bool;
}

/// Feeds `bytes` line by line until the accumulator needs no more.
fn feed_all<A: LineAcc>(bytes: &[u8]) -> A {
    let mut acc = A::default();
    for l in lines(bytes) {
        if !acc.feed(l) {
            break;
        }
    }
    acc
}

/// `Key:   1234 kB` → 1234. The unit is required, so a line cut mid-number is rejected.
pub fn kb_line(line: &[u8], key: &[u8]) -> Option<u64> {
    let mut it = fields(line.strip_prefix(key)?);
    let v = parse_u64(it.next()?)?;
    (it.next()? == b"kB" && it.next().is_none()).then_some(v)
}

impl LineAcc for StatusMem {
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
    feed_all(bytes)
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

pub fn keyed_u64(line: &[u8], key: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(key)?;
    if !rest.first()?.is_ascii_whitespace() {
        return None;
    }
    let mut it = fields(rest);
    let v = parse_u64(it.next()?)?;
    it.next().is_none().then_some(v)
}

impl LineAcc for ProcStat {
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
    feed_all(bytes)
}

#[derive(Default)]
pub struct MemInfoAcc {
    total: Option<u64>,
    free: Option<u64>,
    buffers: Option<u64>,
    cached: Option<u64>,
}

impl LineAcc for MemInfoAcc {
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
}

impl MemInfoAcc {
    /// All four are required: a partial formula would overstate usage.
    pub fn used(&self) -> Option<u64> {
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
    feed_all::<MemInfoAcc>(bytes).used()
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
// Allocation-free file access
// ---------------------------------------------------------------------------------------

pub fn open_ro(path: &CStr) -> Option<OwnedFd> {
    rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()
}

pub fn read_retry(fd: &OwnedFd, buf: &mut [u8]) -> Option<usize> {
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
pub fn read_whole<'b>(path: &CStr, buf: &'b mut [u8]) -> Option<&'b [u8]> {
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
pub fn scan_lines(path: &CStr, buf: &mut [u8], mut f: impl FnMut(&[u8]) -> bool) -> Option<()> {
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

pub fn cpath(p: &Path) -> CString {
    // A path with an interior NUL can't exist; an empty path simply fails to open.
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}
