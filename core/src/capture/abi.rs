//! The probe's limits as Rust constants, each read from bpf/kestrel.h
//! through the skeleton's generated enums: change the header, and every
//! array sized here follows (or stops compiling where a table lists them).

use core::mem::{offset_of, size_of};

use super::skel::types::{
    kestrel_abi_kind, kestrel_category, kestrel_clone, kestrel_close_tail, kestrel_counters,
    kestrel_dir, kestrel_exec, kestrel_exit, kestrel_fd, kestrel_generic, kestrel_hdr,
    kestrel_layout as KL, kestrel_limits as L, kestrel_open, kestrel_proc_calls, kestrel_record,
    kestrel_sockaddr, kestrel_socket, kestrel_syscall, kestrel_task,
};

/// Drop categories (rows of `n_drops_buffer`).
pub const KC_MAX: usize = kestrel_category::KC_MAX.0 as usize;
/// Directions (enter, exit): the columns of `n_drops_buffer`.
pub const KD_MAX: usize = kestrel_dir::KD_MAX.0 as usize;
/// Syscall ABIs (native, compat): the rows of the culprit counters.
pub const KA_MAX: usize = kestrel_abi_kind::KA_MAX.0 as usize;
/// task_struct.comm, NUL included.
pub const COMM_LEN: usize = L::KESTREL_COMM_LEN.0 as usize;
/// What an open record keeps of its path, NUL included.
pub const OPEN_PATH_MAX: usize = L::KESTREL_OPEN_PATH_MAX.0 as usize;

/// Default mean syscall exits per CPU between two per-process samples (the
/// probe's `calls_sample_period`; see metrics::culprits for the error it
/// gives). A power of two: the probe masks with it.
pub const CALLS_SAMPLE_PERIOD: u32 = 64;

/// Syscall table length (bpf/kestrel.h), for both ABIs.
pub const SYSCALL_SLOTS: usize = L::KESTREL_SYSCALL_MAX.0 as usize;

/// Exits per syscall number since load, summed over CPUs: [native, compat].
pub type SyscallCounts = [[u64; SYSCALL_SLOTS]; KA_MAX];

/// A task's command name as the probe sends it (NUL-padded).
pub type Comm = [u8; COMM_LEN];

/// The generated types lay out as the probe does (kestrel.h's
/// kestrel_layout), on this target too: checked when it compiles.
const fn v(k: KL) -> usize {
    k.0 as usize
}
const _: () = {
    assert!(size_of::<kestrel_hdr>() == v(KL::KL_HDR));
    assert!(size_of::<kestrel_task>() == v(KL::KL_TASK));
    assert!(size_of::<kestrel_clone>() == v(KL::KL_CLONE));
    assert!(size_of::<kestrel_exec>() == v(KL::KL_EXEC));
    assert!(offset_of!(kestrel_exec, data) == v(KL::KL_EXEC_DATA));
    assert!(size_of::<kestrel_exit>() == v(KL::KL_EXIT));
    assert!(size_of::<kestrel_open>() == v(KL::KL_OPEN));
    assert!(offset_of!(kestrel_open, path) == v(KL::KL_OPEN_PATH));
    assert!(size_of::<kestrel_fd>() == v(KL::KL_FD));
    assert!(size_of::<kestrel_socket>() == v(KL::KL_SOCKET));
    assert!(size_of::<kestrel_sockaddr>() == v(KL::KL_SOCKADDR));
    assert!(offset_of!(kestrel_sockaddr, laddr) == v(KL::KL_SOCKADDR_LADDR));
    assert!(size_of::<kestrel_generic>() == v(KL::KL_GENERIC));
    assert!(size_of::<kestrel_syscall>() == v(KL::KL_SYSCALL));
    assert!(offset_of!(kestrel_syscall, data) == v(KL::KL_SYSCALL_DATA));
    assert!(size_of::<kestrel_record>() == v(KL::KL_RECORD));
    assert!(size_of::<kestrel_counters>() == v(KL::KL_COUNTERS));
    assert!(offset_of!(kestrel_counters, syscalls) == v(KL::KL_COUNTERS_SYSCALLS));
    assert!(size_of::<kestrel_proc_calls>() == v(KL::KL_PROC_CALLS));
    assert!(size_of::<kestrel_close_tail>() == v(KL::KL_CLOSE_TAIL));
    // A tail follows an 8-aligned record and keeps the next one 8-aligned.
    assert!(size_of::<kestrel_close_tail>() % 8 == 0);
};
