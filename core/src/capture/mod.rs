//! The probe's side of the per-event path: the record and counter layouts
//! generated from bpf/kestrel.h (`skel`), their limits as constants (`abi`),
//! decoding a record (`record`), reading the ring (`ring`) and the syscall
//! tables. Loading and attaching the probe is `kestrel::capture`.

pub mod abi;
pub mod record;
pub mod ring;
pub mod syscall_names;
pub mod syscalls;

pub use abi::{
    Comm, SyscallCounts, CALLS_SAMPLE_PERIOD, COMM_LEN, KA_MAX, KC_MAX, KD_MAX, SYSCALL_SLOTS,
};

/// The skeletons libbpf-cargo generates (build.rs): the probe's, and the
/// benchmark floor's (`kestrel::capture::floor`).
#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    dead_code,
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    unused_imports,
    missing_docs
)]
mod generated {
    pub mod skel {
        include!(concat!(env!("OUT_DIR"), "/kestrel.skel.rs"));
    }
    #[cfg(feature = "bench")]
    pub mod floor_skel {
        include!(concat!(env!("OUT_DIR"), "/floor.skel.rs"));
    }
}
#[cfg(feature = "bench")]
pub use generated::floor_skel;
pub use generated::skel;

include!(concat!(env!("OUT_DIR"), "/kestrel.bpf.o.z.len.rs"));
/// The probe as build.rs embedded it: zlib, inflated once on first use.
static PROBE_OBJECT_Z: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kestrel.bpf.o.z"));

/// The BPF object this binary carries, byte for byte (`kestrel export-probe`,
/// and the skeleton's open). Inflated once and kept: the skeleton holds a
/// `'static` borrow of it for as long as the probe lives (160 KB of heap,
/// where the uncompressed object cost that in the binary and in page cache).
pub fn probe_object() -> &'static [u8] {
    static OBJECT: std::sync::OnceLock<Box<[u8]>> = std::sync::OnceLock::new();
    // The bytes are this binary's own, checked at build time: a failure
    // is a corrupt binary, and an empty object fails to open cleanly.
    OBJECT.get_or_init(|| {
        crate::base::zlib::inflate(PROBE_OBJECT_Z, PROBE_OBJECT_LEN).unwrap_or_default()
    })
}
