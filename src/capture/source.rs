//! Where the loop reads the probe's records: its BPF ring buffer (ring.rs)
//! or, before 5.8, its per-CPU perf buffers (perf.rs), whichever the probe
//! was loaded with. Both are read in place, never block, take at most a
//! buffer's worth per call and wake the loop through fds it polls.

use std::os::fd::{AsRawFd, RawFd};

use super::buffer::BufferKind;
use super::perf::PerfRings;
use super::ring::{EventRing, OnRecord};
use super::{Probe, ProbeConfig};

pub enum Records<'a> {
    Ring(EventRing<'a>),
    Perf(PerfRings<'a>),
}

impl<'a> Records<'a> {
    /// The probe's buffer, each record handed to `on_record`. Opening perf
    /// buffers is perf_event_open: before privileges are dropped.
    #[inline(never)]
    pub fn open(
        probe: &Probe<'_>,
        cfg: &ProbeConfig,
        on_record: impl FnMut(&[u8]) + 'a,
    ) -> std::io::Result<Self> {
        let on_record: OnRecord<'a> = Box::new(on_record);
        match probe.buffer().0 {
            BufferKind::Ring => EventRing::new(
                probe.events_map().as_fd(),
                cfg.ring_bytes as usize,
                on_record,
            )
            .map(Records::Ring),
            BufferKind::Perf => PerfRings::new(
                probe.perf_map().as_fd(),
                cfg.ring_bytes,
                cfg.wakeup_bytes,
                on_record,
            )
            .map(Records::Perf),
        }
    }

    /// Delivers what is pending (a buffer's worth at most); returns how many.
    pub fn consume(&mut self) -> usize {
        match self {
            Records::Ring(r) => r.consume(),
            Records::Perf(p) => p.consume(),
        }
    }

    /// The fds to poll: readable when the probe (or perf) woke the consumer.
    pub fn for_each_fd(&self, mut f: impl FnMut(RawFd)) {
        match self {
            Records::Ring(r) => f(r.as_raw_fd()),
            Records::Perf(p) => p.fds().for_each(f),
        }
    }

    /// Samples perf reported lost (the perf path only).
    pub fn lost(&self) -> Option<u64> {
        match self {
            Records::Ring(_) => None,
            Records::Perf(p) => Some(p.lost),
        }
    }
}
