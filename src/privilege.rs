//! Least privilege: once the probe is loaded and attached, the loop needs
//! almost nothing. It keeps CAP_BPF alone (reading map counters and program
//! stats goes through bpf(2), which kernels with unprivileged BPF disabled
//! refuse without it), drops every other capability from the effective,
//! permitted, inheritable, ambient and bounding sets, and sets no_new_privs
//! so nothing it could exec regains any.

use rustix::thread::{
    capabilities, clear_ambient_capability_set, remove_capability_from_bounding_set,
    set_capabilities, set_no_new_privs, CapabilitySet, CapabilitySets,
};

/// What stays after the drop.
pub const KEPT: CapabilitySet = CapabilitySet::BPF;

/// Drops privileges; returns the effective set that remains.
pub fn drop_after_attach() -> Result<CapabilitySet, String> {
    let err = |what: &str, e: rustix::io::Errno| format!("dropping privileges: {what}: {e}");
    // Only keep what the process actually has (CAP_BPF is unknown before 5.8,
    // where CAP_SYS_ADMIN stands in for it).
    let had = capabilities(None).map_err(|e| err("capget", e))?;
    let mut keep = had.permitted & KEPT;
    if keep.is_empty() && had.permitted.contains(CapabilitySet::SYS_ADMIN) && !bpf_cap_known() {
        keep = CapabilitySet::SYS_ADMIN;
    }
    // The bounding set needs CAP_SETPCAP, so it goes first.
    for bit in 0..64u32 {
        let cap = CapabilitySet::from_bits_retain(1u64 << bit);
        if !keep.contains(cap) && had.permitted.contains(CapabilitySet::SETPCAP) {
            // EINVAL: a capability this kernel does not know; nothing to drop.
            let _ = remove_capability_from_bounding_set(cap);
        }
    }
    let _ = clear_ambient_capability_set();
    set_capabilities(
        None,
        CapabilitySets {
            effective: keep,
            permitted: keep,
            inheritable: CapabilitySet::empty(),
        },
    )
    .map_err(|e| err("capset", e))?;
    set_no_new_privs(true).map_err(|e| err("no_new_privs", e))?;
    Ok(keep)
}

/// CAP_BPF (5.8+) exists when the kernel's last capability is at least 39.
fn bpf_cap_known() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .is_some_and(|n| n >= 39)
}
