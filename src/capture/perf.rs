//! The consumer side of the probe's per-CPU perf buffers, for kernels
//! without the BPF ring buffer (5.4-5.7). One BPF-output perf event per
//! online CPU, its buffer mapped once and read in place as ring.rs reads
//! the ring (a record that wraps is copied into scratch); the protocol is
//! perf's (include/uapi/linux/perf_event.h, libbpf's perf_buffer): an
//! acquire load of data_head, a release store of data_tail.
//!
//! A fork on one CPU and its child's exec on another sit in two buffers,
//! so the records of all CPUs are handed on oldest first (the probe puts
//! bpf_ktime_get_ns in hdr.jiffies on this path), a merge in place. Each
//! call takes at most what the buffers held when it began, and only
//! records stamped before it began: whatever caused such a record was
//! written before it was stamped, so before the call began, and comes out
//! first. A record stamped later waits for the next call.

use core::sync::atomic::{AtomicU64, Ordering};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use libbpf_rs::libbpf_sys as sys;
use rustix::mm::{mmap, munmap, MapFlags, ProtFlags};

use super::ring::{OnRecord, MAX_RECORD};

/// perf_event_mmap_page: data_head and data_tail.
const DATA_HEAD: usize = 1024;
const DATA_TAIL: usize = 1032;
/// perf_event_header, then a sample's u32 size and its raw bytes.
const HDR: usize = 8;
const RAW_AT: usize = HDR + 4;
/// kestrel_hdr.len (after jiffies, tid, pid, type).
const REC_LEN_AT: usize = 18;
const PERF_EVENT_IOC_ENABLE: libc::Ioctl = 0x2400;

struct CpuBuf {
    fd: OwnedFd,
    /// The control page, then the data area once: `len` bytes.
    base: *mut core::ffi::c_void,
    len: usize,
    tail: u64,
    /// data_head when this call began: the call reads no further.
    head: u64,
    /// The time of the sample at tail, if it is to be delivered this call.
    next: Option<u64>,
}

pub struct PerfRings<'a> {
    cpus: Box<[CpuBuf]>,
    page: usize,
    /// Data bytes per CPU, a power of two.
    size: usize,
    scratch: Box<[u8]>,
    on_record: OnRecord<'a>,
    /// Samples perf reported lost (PERF_RECORD_LOST): the records the
    /// probe already counted as full-buffer drops, seen from this side.
    pub lost: u64,
    /// Records no kernel could have written: skipped, never delivered cut.
    pub corrupt: u64,
}

impl<'a> PerfRings<'a> {
    /// `total` bytes of buffers split over the online CPUs (perf_pages),
    /// each put in the probe's perf_events map. Perf wakes a poller of a
    /// buffer's fd every time that CPU's share of `wake_bytes` has been
    /// written to it (0: every record).
    pub fn new(
        map: impl AsFd,
        total: u32,
        wake_bytes: u64,
        on_record: OnRecord<'a>,
    ) -> std::io::Result<Self> {
        let page = rustix::param::page_size();
        let cpus = online_cpus()?;
        let size = super::buffer::perf_pages(total, cpus.len()) * page;
        // This CPU's share of wake_bytes (size / total is a power of two).
        let share = wake_bytes / (u64::from(total) / size as u64).max(1);
        let wake_bytes = if wake_bytes == 0 {
            0
        } else {
            share.min(size as u64 / 2).max(1)
        };
        let mut bufs = Vec::with_capacity(cpus.len());
        for cpu in cpus {
            bufs.push(CpuBuf::open(map.as_fd(), cpu, page, size, wake_bytes)?);
        }
        Ok(PerfRings {
            cpus: bufs.into_boxed_slice(),
            page,
            size,
            scratch: vec![0; MAX_RECORD].into_boxed_slice(),
            on_record,
            lost: 0,
            corrupt: 0,
        })
    }

    /// Each CPU's buffer fd: readable when perf woke it.
    pub fn fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        self.cpus.iter().map(|c| c.fd.as_raw_fd())
    }

    /// Delivers the records of all CPUs oldest first; returns how many.
    pub fn consume(&mut self) -> usize {
        let cutoff = crate::base::time::monotonic_ns();
        for i in 0..self.cpus.len() {
            let c = &mut self.cpus[i];
            c.head = c.word(DATA_HEAD, self.page).load(Ordering::Acquire);
            self.queue(i, cutoff);
        }
        let mut n = 0;
        // The oldest next record of all CPUs: a scan, a handful of CPUs on
        // the kernels this path is for.
        while let Some(i) = (0..self.cpus.len())
            .filter(|&i| self.cpus[i].next.is_some())
            .min_by_key(|&i| self.cpus[i].next)
        {
            n += usize::from(self.deliver(i));
            self.queue(i, cutoff);
        }
        n
    }

    /// Puts CPU `i`'s next sample in the merge if it was stamped before
    /// `cutoff`; lost counts and other record types on the way are taken.
    fn queue(&mut self, i: usize, cutoff: u64) {
        self.cpus[i].next = None;
        loop {
            let pending = self.cpus[i].head - self.cpus[i].tail;
            if pending == 0 {
                return;
            }
            let mut h = [0u8; HDR + 8];
            self.copy_out(i, 0, &mut h[..HDR]);
            let kind = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]);
            let len = usize::from(u16::from_ne_bytes([h[6], h[7]]));
            if len < HDR || len > self.size || pending < len as u64 {
                // Not a record the kernel could have written: skip to the head.
                self.corrupt += 1;
                self.advance(i, pending);
                return;
            }
            if kind == sys::PERF_RECORD_SAMPLE && len >= RAW_AT + 8 {
                let mut t = [0u8; 8];
                self.copy_out(i, RAW_AT, &mut t);
                let t = u64::from_ne_bytes(t);
                self.cpus[i].next = (t < cutoff).then_some(t);
                return;
            }
            if kind == sys::PERF_RECORD_LOST && len >= HDR + 16 {
                self.copy_out(i, HDR, &mut h);
                self.lost += u64::from_ne_bytes(h[8..16].try_into().unwrap_or([0; 8]));
            }
            self.advance(i, len as u64);
        }
    }

    /// Hands CPU `i`'s sample at its tail to on_record, trimmed to the
    /// record's own length (perf pads samples to 8 bytes).
    fn deliver(&mut self, i: usize) -> bool {
        let mut h = [0u8; RAW_AT];
        self.copy_out(i, 0, &mut h);
        let len = usize::from(u16::from_ne_bytes([h[6], h[7]]));
        let raw = (u32::from_ne_bytes([h[8], h[9], h[10], h[11]]) as usize).min(len - RAW_AT);
        let mut rec_len = raw;
        if raw >= REC_LEN_AT + 2 {
            let mut l = [0u8; 2];
            self.copy_out(i, RAW_AT + REC_LEN_AT, &mut l);
            rec_len = usize::from(u16::from_ne_bytes(l)).min(raw);
        }
        let ok = rec_len <= self.scratch.len();
        if ok {
            let at = (self.cpus[i].tail as usize + RAW_AT) & (self.size - 1);
            if at + rec_len <= self.size {
                // SAFETY: [at, at + rec_len) lies inside the data area,
                // which the kernel does not rewrite before data_tail passes.
                let rec = unsafe {
                    core::slice::from_raw_parts(self.cpus[i].data(self.page).add(at), rec_len)
                };
                (self.on_record)(rec);
            } else {
                let mut s = std::mem::take(&mut self.scratch);
                self.copy_out(i, RAW_AT, &mut s[..rec_len]);
                (self.on_record)(&s[..rec_len]);
                self.scratch = s;
            }
        } else {
            self.corrupt += 1;
        }
        self.advance(i, len as u64);
        ok
    }

    /// Copies `dst.len()` bytes from `off` past CPU `i`'s tail, across the
    /// end of the data area if need be.
    fn copy_out(&self, i: usize, off: usize, dst: &mut [u8]) {
        let c = &self.cpus[i];
        let at = (c.tail as usize + off) & (self.size - 1);
        let first = dst.len().min(self.size - at);
        let data = c.data(self.page);
        // SAFETY: [at, at + first) and [0, len - first) lie inside the data
        // area (len <= size); the bytes before data_head are written.
        unsafe {
            core::ptr::copy_nonoverlapping(data.add(at), dst.as_mut_ptr(), first);
            core::ptr::copy_nonoverlapping(data, dst.as_mut_ptr().add(first), dst.len() - first);
        }
    }

    fn advance(&mut self, i: usize, by: u64) {
        let c = &mut self.cpus[i];
        c.tail += by;
        c.word(DATA_TAIL, self.page)
            .store(c.tail, Ordering::Release);
    }
}

impl CpuBuf {
    fn open(
        map: std::os::fd::BorrowedFd<'_>,
        cpu: u32,
        page: usize,
        size: usize,
        wake_bytes: u64,
    ) -> std::io::Result<CpuBuf> {
        let mut attr = sys::perf_event_attr {
            type_: sys::PERF_TYPE_SOFTWARE,
            size: std::mem::size_of::<sys::perf_event_attr>() as u32,
            config: u64::from(sys::PERF_COUNT_SW_BPF_OUTPUT),
            sample_type: u64::from(sys::PERF_SAMPLE_RAW),
            ..Default::default()
        };
        attr.__bindgen_anon_1.sample_period = 1;
        if wake_bytes == 0 {
            attr.__bindgen_anon_2.wakeup_events = 1;
        } else {
            attr.set_watermark(1);
            attr.__bindgen_anon_2.wakeup_watermark = wake_bytes.min(size as u64 / 2) as u32;
        }
        // SAFETY: attr is a whole perf_event_attr of its declared size;
        // pid -1 and this cpu: every task's samples on that CPU.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                &attr as *const sys::perf_event_attr,
                -1,
                cpu as libc::c_int,
                -1,
                libc::c_ulong::from(sys::PERF_FLAG_FD_CLOEXEC),
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a new fd the kernel just returned, owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        // SAFETY: a fresh shared mapping of the event's control page and
        // data area, writable for data_tail.
        let base = unsafe {
            mmap(
                core::ptr::null_mut(),
                page + size,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                &fd,
                0,
            )
        }?;
        let buf = CpuBuf {
            fd,
            base,
            len: page + size,
            tail: 0,
            head: 0,
            next: None,
        };
        let raw = buf.fd.as_raw_fd();
        // SAFETY: a plain ioctl on our perf fd.
        if unsafe { libc::ioctl(raw, PERF_EVENT_IOC_ENABLE, 0) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: u32 key and value, as the map declares.
        let rc = unsafe {
            sys::bpf_map_update_elem(
                map.as_raw_fd(),
                (&cpu as *const u32).cast(),
                (&raw as *const RawFd).cast(),
                u64::from(sys::BPF_ANY),
            )
        };
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(-rc));
        }
        Ok(buf)
    }

    fn word(&self, off: usize, page: usize) -> &AtomicU64 {
        debug_assert!(off + 8 <= page);
        // SAFETY: an aligned u64 of the control page, mapped for self's life.
        unsafe { AtomicU64::from_ptr(self.base.cast::<u8>().add(off).cast()) }
    }

    fn data(&self, page: usize) -> *const u8 {
        // SAFETY: page bytes into a mapping of page + size bytes.
        unsafe { self.base.cast::<u8>().add(page) }
    }
}

impl Drop for CpuBuf {
    fn drop(&mut self) {
        // SAFETY: the mapping made in CpuBuf::open, unmapped once; no
        // record borrowed from it outlives on_record.
        let _ = unsafe { munmap(self.base, self.len) };
    }
}

/// The online CPUs (/sys/devices/system/cpu/online: "0-3,5").
fn online_cpus() -> std::io::Result<Vec<u32>> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online")?;
    parse_cpus(&text).ok_or_else(|| std::io::Error::other("unreadable online CPU list"))
}

fn parse_cpus(text: &str) -> Option<Vec<u32>> {
    let mut v = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
        if b < a || b - a > 1 << 16 {
            return None;
        }
        v.extend(a..=b);
    }
    (!v.is_empty()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::parse_cpus;

    #[test]
    fn cpu_lists_parse_as_the_kernel_writes_them() {
        assert_eq!(parse_cpus("0-3,5\n"), Some(vec![0, 1, 2, 3, 5]));
        assert_eq!(parse_cpus("0\n"), Some(vec![0]));
        assert_eq!(parse_cpus(""), None);
        assert_eq!(parse_cpus("3-1"), None);
    }
}
