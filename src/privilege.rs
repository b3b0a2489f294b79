//! Least privilege: once the probe is loaded and attached, the loop needs
//! almost nothing. It keeps CAP_BPF alone (reading map counters and program
//! stats goes through bpf(2), which kernels with unprivileged BPF disabled
//! refuse without it), drops every other capability from the effective,
//! permitted, inheritable, ambient and bounding sets, and sets no_new_privs
//! so nothing it could exec regains any.
//!
//! With `--user NAME` it also leaves uid 0: after attach and seeding it
//! switches uid, gid and supplementary groups to the user's while keeping
//! CAP_BPF (PR_SET_KEEPCAPS across setresuid, then capset), so a SIGHUP
//! reopen of an output is checked by the kernel as that user.

use rustix::thread::{
    capabilities, clear_ambient_capability_set, remove_capability_from_bounding_set,
    set_capabilities, set_no_new_privs, CapabilitySet, CapabilitySets,
};

/// What stays after the drop.
pub const KEPT: CapabilitySet = CapabilitySet::BPF;

/// The account `--user` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// Looks up a user name (or a numeric uid) in the passwd database.
pub fn lookup_user(name: &str) -> Result<User, String> {
    let shown = crate::log::escape(name);
    let c = std::ffi::CString::new(name).map_err(|_| format!("user '{shown}': NUL in name"))?;
    // SAFETY: passwd is plain C data (integers and pointers): all-zero is valid.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16384];
    let mut res: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is to live storage of the stated size.
    let r = unsafe { libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut res) };
    if r == 0 && !res.is_null() {
        return Ok(User {
            name: name.to_string(),
            uid: pw.pw_uid,
            gid: pw.pw_gid,
        });
    }
    if let Ok(uid) = name.parse::<u32>() {
        // SAFETY: as above.
        let r = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut res) };
        let gid = if r == 0 && !res.is_null() {
            pw.pw_gid
        } else {
            uid
        };
        return Ok(User {
            name: name.to_string(),
            uid,
            gid,
        });
    }
    Err(format!("user '{shown}' does not exist"))
}

/// setgroups/setresgid/setresuid for all threads (libc's wrappers do that).
fn switch_user(u: &User) -> Result<(), String> {
    let err = |what: &str| {
        format!(
            "switching to user {}: {what}: {}",
            u.name,
            std::io::Error::last_os_error()
        )
    };
    // SAFETY: plain libc calls with valid arguments.
    unsafe {
        if libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 {
            return Err(err("PR_SET_KEEPCAPS"));
        }
        let groups = [u.gid];
        if libc::setgroups(1, groups.as_ptr()) != 0 {
            return Err(err("setgroups"));
        }
        if libc::setresgid(u.gid, u.gid, u.gid) != 0 {
            return Err(err("setresgid"));
        }
        if libc::setresuid(u.uid, u.uid, u.uid) != 0 {
            return Err(err("setresuid"));
        }
        libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0);
    }
    Ok(())
}

/// A capability set as the start line names it: "CAP_BPF", joined by "+",
/// or "none".
pub fn names(set: CapabilitySet) -> String {
    let v: Vec<String> = set.iter_names().map(|(n, _)| format!("CAP_{n}")).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join("+")
    }
}

/// Drops privileges (and switches user); returns the effective set that remains.
pub fn drop_after_attach(user: Option<&User>) -> Result<CapabilitySet, String> {
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
    if let Some(u) = user {
        switch_user(u)?;
    }
    // After the uid change only the permitted set survived (keep-caps).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_sets_are_named_as_the_kernel_names_them() {
        assert_eq!(names(CapabilitySet::BPF), "CAP_BPF");
        assert_eq!(
            names(CapabilitySet::BPF | CapabilitySet::SYS_ADMIN),
            "CAP_SYS_ADMIN+CAP_BPF"
        );
        assert_eq!(names(CapabilitySet::empty()), "none");
    }
}
