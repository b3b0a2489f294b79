//! What the probe is loaded with and how a load can fail: the settings fixed
//! at load time, their defaults, and the one-line errors `run` and `check`
//! print.

use std::fmt;
use std::path::PathBuf;

use super::btf::{AttachMode, NoBtf};
use super::buffer::EventBuffer;
use super::syscalls::Selection;
use super::{skel, CALLS_SAMPLE_PERIOD};

/// Probe settings fixed at load time.
#[derive(Clone, Debug)]
pub struct ProbeConfig {
    pub selection: Selection,
    /// Ring buffer size in bytes: a power of two, at least one page.
    pub ring_bytes: u32,
    /// Attach sys_enter and send enter records for the selected syscalls.
    pub enter_events: bool,
    /// Pending bytes at which the probe wakes the consumer (0: every record).
    pub wakeup_bytes: u64,
    pub attach: AttachMode,
    /// BTF file for CO-RE instead of the kernel's own (`--btf`).
    pub btf: Option<PathBuf>,
    /// Culprit counters: per-syscall counts in the kernel, drops per process.
    pub culprits: bool,
    /// Processes the kernel keeps drop counts for (LRU beyond that).
    pub culprit_capacity: u32,
    /// Mean syscall exits per CPU between two per-process samples, a power
    /// of two; 0 = none (with `culprits` only).
    pub calls_sample_period: u32,
    /// Failed opens carry their path too (rules compare fd.name on them, as
    /// Falco does); without rules only successful opens pay for the copy.
    pub failed_open_paths: bool,
    /// Ring buffer, perf buffers, or whichever the kernel has (`--event-buffer`).
    pub event_buffer: EventBuffer,
    /// Small records go to the ring in per-CPU groups (bpf/stage.h;
    /// `--stage-records`): the ring path on 64-bit kernels only.
    pub stage_records: bool,
}

/// A power of two minus one: at most 64 records between fill checks, and
/// no more than an eighth of the ring's worth of the largest record.
pub fn wake_check_mask(ring_bytes: u32) -> u32 {
    let largest = std::mem::size_of::<skel::types::kestrel_record>() as u32;
    let n = (ring_bytes / 8 / largest).clamp(1, 64);
    (1u32 << (31 - n.leading_zeros())) - 1
}

/// Bytes at which a CPU's stage goes to the ring: KESTREL_STAGE_FLUSH, or a
/// sixteenth of a smaller ring (a 4 KiB ring takes groups of 256 bytes, not
/// two of 2 KiB that leave no room for the records sent alone).
pub fn stage_bytes(ring_bytes: u32) -> u32 {
    let most = skel::types::kestrel_limits::KESTREL_STAGE_FLUSH.0;
    (ring_bytes / 16).min(most)
}

impl ProbeConfig {
    /// Defaults for a ring of `ring_bytes`: the probe wakes the consumer once a
    /// quarter of the ring is pending.
    pub fn for_ring(ring_bytes: u32) -> Self {
        ProbeConfig {
            selection: Selection::Default,
            ring_bytes,
            enter_events: false,
            wakeup_bytes: u64::from(ring_bytes) / 4,
            attach: AttachMode::Auto,
            btf: None,
            culprits: true,
            culprit_capacity: DEFAULT_CULPRIT_CAPACITY,
            calls_sample_period: CALLS_SAMPLE_PERIOD,
            failed_open_paths: false,
            event_buffer: EventBuffer::Auto,
            stage_records: true,
        }
    }
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig::for_ring(DEFAULT_RING_BYTES)
    }
}

pub const DEFAULT_RING_BYTES: u32 = 1 << 20;
pub const DEFAULT_CULPRIT_CAPACITY: u32 = 256;
/// Why the probe could not start; each renders as one line saying what to do.
#[derive(Debug)]
pub enum CaptureError {
    NoBtf(NoBtf),
    BadAttach(String),
    BtfFile { path: PathBuf, err: String },
    Permission(String),
    Verifier { prog: String, log_tail: String },
    Load(String),
    Attach { prog: &'static str, err: String },
    BadRingSize(u32),
    BadBuffer(String),
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::NoBtf(n) => write!(f, "{n}"),
            CaptureError::BadAttach(e) => write!(f, "{e}"),
            CaptureError::BtfFile { path, err } => write!(
                f,
                "BTF file {}: {err}; make it with pahole -J --btf_encode_detached=FILE vmlinux",
                path.display()
            ),
            CaptureError::Permission(e) => write!(
                f,
                "permission denied loading the probe ({e}): run as root or with CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN before 5.8)"
            ),
            CaptureError::Verifier { prog, log_tail } => {
                write!(f, "the kernel verifier rejected program {prog}: {log_tail}")
            }
            CaptureError::Load(e) => write!(f, "loading the probe failed: {e}"),
            CaptureError::Attach { prog, err } => write!(f, "attaching {prog} failed: {err}"),
            CaptureError::BadBuffer(e) => write!(f, "{e}"),
            CaptureError::BadRingSize(n) => write!(
                f,
                "ring buffer size {n} must be a power of two between 4096 and 1073741824 bytes"
            ),
        }
    }
}
