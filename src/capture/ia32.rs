//! Whether the running kernel has an ia32 syscall entry (x86_64). Without
//! one (built without IA32_EMULATION, as many x86 gateway kernels are, or
//! booted with ia32_emulation=false on 6.7+), `int 0x80` faults, no 32-bit
//! program runs, and TS_COMPAT is never set: the probe's raw_tp path then
//! skips reading it (bpf/syscall.h `ia32_entry`), two helper calls on every
//! selected syscall.
//!
//! The answer comes from trying: a raw-cloned child makes one i386 getpid
//! through `int 0x80`. Only the SIGSEGV of a missing gate, which its handler
//! turns into exit status 3, counts as "no entry"; anything else (a seccomp
//! filter's SIGSYS or errno, a failed clone) keeps the check, so a doubt
//! never skips it. Kernel config files and kallsyms miss the boot
//! parameter, and are not always readable.

/// True unless the kernel refused the ia32 entry outright.
#[cfg(target_arch = "x86_64")]
pub fn entry_available() -> bool {
    /// The child's exit status when int 0x80 faulted.
    const NO_ENTRY: libc::c_int = 3;
    /// The child's SIGSEGV handler: a fault is the answer, not a crash, so
    /// no core and no "general protection fault" line in the kernel log.
    extern "C" fn on_fault(_: libc::c_int) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(NO_ENTRY) }
    }
    // SAFETY: a raw clone with only SIGCHLD is a fork without libc's fork
    // handlers (musl's fork would add ~800 bytes to a binary at its size
    // budget). The child only sets a handler (a bare rt_sigaction in musl),
    // makes one system call and leaves with _exit, all async-signal-safe, so
    // a fork of a threaded process is sound; an i386 getpid (20) reads and
    // writes no memory, and the ia32 entry may clobber r8-r11. A failed
    // clone or wait keeps the check.
    unsafe {
        // Every argument a full word: syscall() reads longs.
        let (flags, none): (libc::c_long, libc::c_long) = (libc::SIGCHLD.into(), 0);
        let pid = libc::syscall(libc::SYS_clone, flags, none, none, none, none) as libc::pid_t;
        if pid == 0 {
            libc::signal(libc::SIGSEGV, on_fault as *const () as libc::sighandler_t);
            core::arch::asm!(
                "int 0x80",
                inout("rax") 20u64 => _,
                out("r8") _, out("r9") _, out("r10") _, out("r11") _,
                options(nostack)
            );
            libc::_exit(0);
        }
        let mut status = 0;
        pid < 0 || libc::waitpid(pid, &mut status, 0) != pid || status != NO_ENTRY << 8
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
