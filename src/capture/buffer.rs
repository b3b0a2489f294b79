//! Where records leave the kernel: the BPF ring buffer (5.8+) or, where it
//! is missing (5.4–5.7), per-CPU perf buffers, libbpf-tools' compat pattern.
//! The probe carries both maps; `use_perf` in its .rodata picks one and
//! only that map is created.

/// `--event-buffer`: which buffer to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EventBuffer {
    /// The ring buffer where the kernel has it, else perf buffers.
    #[default]
    Auto,
    Ring,
    Perf,
}

impl EventBuffer {
    pub fn parse(s: &str) -> Result<EventBuffer, String> {
        match s {
            "auto" => Ok(EventBuffer::Auto),
            "ring" => Ok(EventBuffer::Ring),
            "perf" => Ok(EventBuffer::Perf),
            _ => Err(format!("event buffer '{s}' is not auto, ring or perf")),
        }
    }
}

/// The buffer actually used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufferKind {
    Ring,
    Perf,
}

impl BufferKind {
    pub fn name(self) -> &'static str {
        match self {
            BufferKind::Ring => "ring buffer",
            BufferKind::Perf => "perf buffer",
        }
    }
}

/// Whether this kernel can create a BPF ring buffer: one page of one,
/// made and closed (libbpf's own feature probe would link its whole
/// probing module, 16 KB of the binary, for this one answer).
pub fn kernel_has_ringbuf() -> bool {
    let page = rustix::param::page_size() as u32;
    // SAFETY: plain bpf(BPF_MAP_CREATE) wrapper; a valid fd is closed at once.
    let fd = unsafe {
        libbpf_rs::libbpf_sys::bpf_map_create(
            libbpf_rs::libbpf_sys::BPF_MAP_TYPE_RINGBUF,
            std::ptr::null(),
            0,
            0,
            page,
            std::ptr::null(),
        )
    };
    if fd >= 0 {
        // SAFETY: fd was just returned to us and is owned by nobody else.
        drop(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
    }
    fd >= 0
}

/// The buffer to use and why, one phrase for the start line and `check`.
pub fn choose(mode: EventBuffer, has_ringbuf: bool) -> Result<(BufferKind, &'static str), String> {
    match (mode, has_ringbuf) {
        (EventBuffer::Auto, true) => Ok((BufferKind::Ring, "the kernel has BPF ring buffers")),
        (EventBuffer::Auto, false) => Ok((
            BufferKind::Perf,
            "the kernel has no BPF ring buffer (before 5.8)",
        )),
        (EventBuffer::Ring, true) => Ok((BufferKind::Ring, "forced by --event-buffer ring")),
        (EventBuffer::Ring, false) => Err(
            "--event-buffer ring: this kernel has no BPF ring buffer (5.8+); use auto or perf"
                .into(),
        ),
        (EventBuffer::Perf, _) => Ok((BufferKind::Perf, "forced by --event-buffer perf")),
    }
}

/// Perf buffer pages per CPU for a ring of `ring_bytes`: the same memory in
/// total, split over the CPUs, a power of two and at least two pages.
pub fn perf_pages(ring_bytes: u32, ncpus: usize) -> usize {
    let page = rustix::param::page_size();
    let per_cpu = ring_bytes as usize / ncpus.max(1) / page;
    per_cpu.max(2).next_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_falls_back_to_perf_and_ring_is_refused_without_it() {
        assert_eq!(choose(EventBuffer::Auto, true).unwrap().0, BufferKind::Ring);
        assert_eq!(
            choose(EventBuffer::Auto, false).unwrap().0,
            BufferKind::Perf
        );
        assert_eq!(choose(EventBuffer::Perf, true).unwrap().0, BufferKind::Perf);
        assert!(choose(EventBuffer::Ring, false).is_err());
        assert!(EventBuffer::parse("bogus").is_err());
        assert_eq!(EventBuffer::parse("perf"), Ok(EventBuffer::Perf));
    }

    #[test]
    fn perf_pages_split_the_ring_over_cpus() {
        let page = rustix::param::page_size() as u32;
        assert_eq!(perf_pages(256 * page, 4), 64);
        assert_eq!(perf_pages(page, 8), 2);
        assert!(perf_pages(3 << 20, 3).is_power_of_two());
    }
}
