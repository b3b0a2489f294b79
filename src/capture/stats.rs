//! Reading the kernel side at snapshot time: the per-CPU counters summed
//! over CPUs (drops by category, culprit syscall counts), the kernel's drops
//! by process, and BPF run-time stats of each attached program. Once per
//! snapshot, never per event; buffers are sized at load.

use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use super::skel::types::{kestrel_counters, kestrel_proc_calls};
use super::{Comm, Probe, SyscallCounts, KC_MAX, KD_MAX};

/// Cumulative kernel counters, summed over all CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelCounters {
    pub n_evts: u64,
    pub n_drops_buffer_total: u64,
    pub n_drops_buffer: [[u64; KD_MAX]; KC_MAX],
    pub n_drops_scratch_map: u64,
    pub n_drops_page_faults: u64,
    pub n_drops_bug: u64,
    /// Records with no enter event in Falco 0.37 (process exit, a fork's
    /// child side): tried, and dropped (see metrics::units).
    pub n_evts_no_enter: u64,
    pub n_drops_no_enter: u64,
}

impl KernelCounters {
    /// Every record the probe failed to deliver. Page faults are not here:
    /// such records are still sent, with the unreadable field empty.
    pub fn n_drops(&self) -> u64 {
        self.n_drops_buffer_total + self.n_drops_scratch_map + self.n_drops_bug
    }

    fn add(&mut self, c: &kestrel_counters) {
        self.n_evts += c.n_evts;
        self.n_drops_buffer_total += c.n_drops_buffer_total;
        for (dst, src) in self.n_drops_buffer.iter_mut().zip(c.n_drops_buffer.iter()) {
            for (d, s) in dst.iter_mut().zip(src) {
                *d += s;
            }
        }
        self.n_drops_scratch_map += c.n_drops_scratch_map;
        self.n_drops_page_faults += c.n_drops_page_faults;
        self.n_drops_bug += c.n_drops_bug;
        self.n_evts_no_enter += c.n_evts_no_enter;
        self.n_drops_no_enter += c.n_drops_no_enter;
    }
}

/// Run-time statistics of one attached program.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProgStats {
    pub name: &'static str,
    pub run_cnt: u64,
    pub run_time_ns: u64,
}

/// Where BPF run-time stats come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsSource {
    Off,
    Sysctl,
    Agent,
    /// Before 5.8 (no BPF_ENABLE_STATS): the agent set the sysctl itself,
    /// as Falco's legacy probe does, and clears it when the probe goes.
    AgentSysctl,
}

const STATS_SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

impl Probe<'_> {
    /// Sums the per-CPU counters. No allocation: the buffer is sized at load.
    pub fn counters(&mut self) -> KernelCounters {
        let key = 0u32;
        let fd = self.skel.maps.counters.as_fd().as_raw_fd();
        // SAFETY: counter_buf holds one 8-byte-aligned slot per possible CPU,
        // which is what a per-CPU array lookup writes.
        let rc = unsafe {
            libbpf_rs::libbpf_sys::bpf_map_lookup_elem(
                fd,
                (&key as *const u32).cast(),
                self.counter_buf.as_mut_ptr().cast(),
            )
        };
        let mut total = KernelCounters::default();
        if rc != 0 {
            // Zeros would make every counter go backwards: keep the last read.
            self.counter_read_errors += 1;
            crate::log_limited!(
                crate::log::Key::KernelRead,
                "reading the kernel counters failed ({} times): {}; the snapshot repeats the last values",
                self.counter_read_errors,
                std::io::Error::from_raw_os_error(-rc)
            );
            return self.last_counters;
        }
        let stride = size_of::<kestrel_counters>().next_multiple_of(8);
        for slot in self.counter_buf.chunks_exact(stride) {
            // SAFETY: slot is exactly one kestrel_counters of plain u64s.
            let c: kestrel_counters = unsafe { std::ptr::read_unaligned(slot.as_ptr().cast()) };
            total.add(&c);
        }
        for (row, left) in total.n_drops_buffer.iter_mut().zip(&self.stranded) {
            for (d, n) in row.iter_mut().zip(left) {
                *d += n;
                total.n_drops_buffer_total += n;
            }
        }
        self.last_counters = total;
        total
    }

    /// Possible CPUs: the per-CPU counters have one slot each.
    pub fn possible_cpus(&self) -> usize {
        self.counter_buf.len() / size_of::<kestrel_counters>().next_multiple_of(8)
    }

    /// (events tried, drops) of each possible CPU as of the last `counters()`
    /// read, into `out` (cleared; no allocation within its capacity). The
    /// drops are `n_drops()`'s, so the CPUs add up to the totals (libpman
    /// stats.c collect_kernel_counter_stats: n_evts_cpu_N, n_drops_cpu_N).
    pub fn per_cpu(&self, out: &mut Vec<(u64, u64)>) {
        let stride = size_of::<kestrel_counters>().next_multiple_of(8);
        let word =
            |b: &[u8], off: usize| u64::from_ne_bytes(b[off..off + 8].try_into().unwrap_or([0; 8]));
        let evts = std::mem::offset_of!(kestrel_counters, n_evts);
        let drops = [
            std::mem::offset_of!(kestrel_counters, n_drops_buffer_total),
            std::mem::offset_of!(kestrel_counters, n_drops_scratch_map),
            std::mem::offset_of!(kestrel_counters, n_drops_bug),
        ];
        out.clear();
        for slot in self.counter_buf.chunks_exact(stride) {
            let d = drops.iter().map(|&o| word(slot, o)).sum();
            out.push((word(slot, evts), d));
        }
    }

    /// Whether sys_exit has run since load, after one syscall of our own:
    /// any per-syscall count on any CPU. None: culprits off, nothing counted.
    pub fn sys_exit_ran(&mut self) -> Option<bool> {
        if !self.counts_syscalls {
            return None;
        }
        let _ = rustix::process::getppid();
        self.counters();
        let stride = size_of::<kestrel_counters>().next_multiple_of(8);
        let un = std::mem::offset_of!(kestrel_counters, n_syscalls_unnumbered);
        let table = std::mem::offset_of!(kestrel_counters, syscalls);
        let len = size_of::<SyscallCounts>();
        let ran = self.counter_buf.chunks_exact(stride).any(|s| {
            s[un..un + 8].iter().any(|&b| b != 0) || s[table..table + len].iter().any(|&b| b != 0)
        });
        Some(ran)
    }

    /// Per-syscall exit counts as of the last `counters()` read, and the
    /// exits whose number had no slot. No allocation.
    pub fn syscall_counts(&self, out: &mut SyscallCounts) -> u64 {
        let stride = size_of::<kestrel_counters>().next_multiple_of(8);
        let mut unnumbered = 0;
        for row in out.iter_mut() {
            row.fill(0);
        }
        let word = |b: &[u8]| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8]));
        let un = std::mem::offset_of!(kestrel_counters, n_syscalls_unnumbered);
        let table = std::mem::offset_of!(kestrel_counters, syscalls);
        for slot in self.counter_buf.chunks_exact(stride) {
            unnumbered += word(&slot[un..un + 8]);
            let words = slot[table..].chunks_exact(8);
            for (d, w) in out.iter_mut().flatten().zip(words) {
                *d += word(w);
            }
        }
        unnumbered
    }

    /// Records dropped per process (tgid) since load, as far as the kernel's
    /// LRU table still holds them; calls `f(pid, drops)` for each.
    pub fn drops_by_pid(&self, mut f: impl FnMut(u32, u64)) {
        walk_pids(&self.skel.maps.drops_by_pid, |pid, n: &u64| f(pid, *n));
    }

    /// Sampled syscall exits per process (tgid) since load, and the leader's
    /// comm, as far as the kernel's LRU table still holds them: calls
    /// `f(pid, samples, comm)`; each sample stands for the sample period
    /// calls on average.
    pub fn calls_by_pid(&self, mut f: impl FnMut(u32, u64, &Comm)) {
        walk_pids(
            &self.skel.maps.calls_by_pid,
            |pid, v: &kestrel_proc_calls| {
                // SAFETY: c_char and u8 have the same size and alignment.
                let comm: &Comm = unsafe { &*v.comm.as_ptr().cast::<Comm>() };
                f(pid, v.samples, comm)
            },
        );
    }

    /// (samples taken, samples the kernel table missed) since load, as of the
    /// last `counters()` read.
    pub fn calls_samples(&self) -> (u64, u64) {
        let stride = size_of::<kestrel_counters>().next_multiple_of(8);
        let word =
            |b: &[u8], off: usize| u64::from_ne_bytes(b[off..off + 8].try_into().unwrap_or([0; 8]));
        let taken = std::mem::offset_of!(kestrel_counters, n_calls_samples);
        let missed = std::mem::offset_of!(kestrel_counters, n_calls_sample_misses);
        self.counter_buf
            .chunks_exact(stride)
            .fold((0, 0), |(t, m), slot| {
                (t + word(slot, taken), m + word(slot, missed))
            })
    }

    /// Turns BPF run-time stats on for as long as the probe lives, unless the
    /// sysctl already has them on.
    pub fn enable_stats(&mut self) -> StatsSource {
        let sysctl = std::fs::read(STATS_SYSCTL)
            .map(|v| v.first() == Some(&b'1'))
            .unwrap_or(false);
        if sysctl {
            return StatsSource::Sysctl;
        }
        // SAFETY: plain syscall wrapper; a non-negative result is a new fd we own.
        let fd = unsafe {
            libbpf_rs::libbpf_sys::bpf_enable_stats(libbpf_rs::libbpf_sys::BPF_STATS_RUN_TIME)
        };
        if fd == -libc::EINVAL && std::fs::write(STATS_SYSCTL, b"1").is_ok() {
            self.stats_sysctl_set = true;
            return StatsSource::AgentSysctl;
        }
        if fd < 0 {
            return StatsSource::Off;
        }
        // SAFETY: fd was just returned by the kernel and is owned by nobody else.
        self.stats_fd = Some(unsafe { OwnedFd::from_raw_fd(fd) });
        StatsSource::Agent
    }

    /// Run-time stats of every attached program, written into `out`.
    pub fn prog_stats(&self, out: &mut heapless::Vec<ProgStats, 8>) {
        out.clear();
        for &p in &self.attached {
            let prog = self.prog(p);
            let mut info = libbpf_rs::libbpf_sys::bpf_prog_info::default();
            let mut len = size_of::<libbpf_rs::libbpf_sys::bpf_prog_info>() as u32;
            // SAFETY: info is a zeroed bpf_prog_info and len its size.
            let rc = unsafe {
                libbpf_rs::libbpf_sys::bpf_prog_get_info_by_fd(
                    prog.as_fd().as_raw_fd(),
                    &mut info,
                    &mut len,
                )
            };
            if rc == 0 {
                let _ = out.push(ProgStats {
                    name: p.name(),
                    run_cnt: info.run_cnt,
                    run_time_ns: info.run_time_ns,
                });
            }
        }
    }
}

impl Drop for Probe<'_> {
    /// Best effort: after a switch to --user the write is refused.
    fn drop(&mut self) {
        if self.stats_sysctl_set {
            let _ = std::fs::write(STATS_SYSCTL, b"0");
        }
    }
}

/// Walks a hash map keyed by tgid (u32), calling `f(pid, value)` for each
/// entry. No allocation. A key evicted under the walk restarts it from the
/// first key: under a storm of new pids the walk is bounded, never endless.
fn walk_pids<V: Default>(map: &libbpf_rs::Map<'_>, mut f: impl FnMut(u32, &V)) {
    use libbpf_rs::MapCore;
    let fd = map.as_fd().as_raw_fd();
    let mut key: u32 = 0;
    let mut next: u32 = 0;
    let mut first = true;
    for _ in 0..map.max_entries().saturating_mul(4) {
        let prev = if first {
            std::ptr::null()
        } else {
            (&key as *const u32).cast()
        };
        // SAFETY: u32 keys as the map declares; null asks for the first key.
        let rc = unsafe {
            libbpf_rs::libbpf_sys::bpf_map_get_next_key(fd, prev, (&mut next as *mut u32).cast())
        };
        if rc != 0 {
            return;
        }
        let mut val = V::default();
        // SAFETY: the caller names the map's value type as V.
        let rc = unsafe {
            libbpf_rs::libbpf_sys::bpf_map_lookup_elem(
                fd,
                (&next as *const u32).cast(),
                (&mut val as *mut V).cast(),
            )
        };
        if rc == 0 {
            f(next, &val);
        }
        key = next;
        first = false;
    }
}
