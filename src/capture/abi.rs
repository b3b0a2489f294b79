//! The probe's limits as Rust constants, each read from bpf/kestrel.h
//! through the skeleton's generated enums: change the header, and every
//! array sized here follows (or stops compiling where a table lists them).

use super::skel::types::{kestrel_abi_kind, kestrel_category, kestrel_dir, kestrel_limits as L};

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

/// A task's command name as the probe sends it (NUL-padded).
pub type Comm = [u8; COMM_LEN];
