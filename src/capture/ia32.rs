//! Whether the running kernel has an ia32 syscall entry (x86_64). Without
//! one (built without IA32_EMULATION, as many x86 gateway kernels are, or
//! booted with ia32_emulation=false on 6.7+), `int 0x80` faults, no 32-bit
//! program runs, and TS_COMPAT is never set: the probe's raw_tp path then
//! skips reading it (bpf/syscall.h `ia32_entry`), two helper calls on every
//! selected syscall.
//!
//! The answer comes from trying: a forked child makes one i386 getpid
//! through `int 0x80`. Only a SIGSEGV (the #GP of a missing gate) counts as
//! "no entry"; anything else (a seccomp filter's SIGSYS or errno, a failed
//! fork) keeps the check, so a doubt never skips it. Kernel config files and
//! kallsyms miss the boot parameter, and are not always readable.

/// True unless the kernel refused the ia32 entry outright.
#[cfg(target_arch = "x86_64")]
pub fn entry_available() -> bool {
    /// The child's SIGSEGV handler: a fault is the answer, not a crash, so
    /// no core and no "general protection fault" line in the kernel log.
    extern "C" fn on_fault(_: libc::c_int) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(NO_ENTRY) }
    }
    const NO_ENTRY: libc::c_int = 3;
    const I386_GETPID: u64 = 20;
    // SAFETY: the child only makes raw system calls and leaves with _exit,
    // all async-signal-safe, so a fork of a threaded process is sound.
    match unsafe { libc::fork() } {
        -1 => true,
        0 => unsafe {
            // SAFETY: a zeroed sigaction with a plain handler is valid.
            let mut sa: libc::sigaction = core::mem::zeroed();
            sa.sa_sigaction = on_fault as *const () as usize;
            libc::sigaction(libc::SIGSEGV, &sa, core::ptr::null_mut());
            let mut nr = I386_GETPID;
            // SAFETY: an i386 getpid reads and writes no memory; the ia32
            // entry may clobber r8-r11.
            core::arch::asm!(
                "int 0x80",
                inout("rax") nr,
                out("r8") _, out("r9") _, out("r10") _, out("r11") _,
                options(nostack)
            );
            let _ = nr;
            libc::_exit(0)
        },
        pid => {
            let mut status = 0;
            loop {
                // SAFETY: our own child; status is a valid out pointer.
                let r = unsafe { libc::waitpid(pid, &mut status, 0) };
                if r == pid {
                    break;
                }
                if r == -1
                    && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
                {
                    return true;
                }
            }
            !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == NO_ENTRY)
        }
    }
}

/// Other architectures have no ia32 entry to skip; the probe never reads
/// the flag there.
#[cfg(not(target_arch = "x86_64"))]
pub fn entry_available() -> bool {
    true
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    /// Independent evidence of an ia32 entry: kallsyms names the int 0x80
    /// entry (entry_INT80_compat before 6.7, int80_emulation since) and the
    /// command line does not turn emulation off.
    fn kernel_says() -> bool {
        let syms = std::fs::read_to_string("/proc/kallsyms").expect("/proc/kallsyms");
        let has = syms.lines().any(|l| {
            matches!(
                l.split_whitespace().nth(2),
                Some("entry_INT80_compat" | "int80_emulation" | "asm_int80_emulation")
            )
        });
        let cmdline = std::fs::read_to_string("/proc/cmdline").expect("/proc/cmdline");
        let off = cmdline.split_whitespace().any(|w| {
            matches!(
                w,
                "ia32_emulation=0" | "ia32_emulation=false" | "ia32_emulation=n"
            )
        });
        has && !off
    }

    #[test]
    fn agrees_with_the_kernel() {
        assert_eq!(super::entry_available(), kernel_says());
    }
}
