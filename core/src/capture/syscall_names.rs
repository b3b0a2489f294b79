//! Syscall names by number for the culprit counters, one table per ABI,
//! taken from the kernel's UAPI headers (Debian's linux-libc-dev and
//! linux-libc-dev-armhf-cross, Linux 6.1; asm-generic's `__NR3264_` names
//! as arm64 spells them); a test re-reads the headers and checks every entry.
//! Space-separated, position = number, `-` for a gap. Numbers a newer
//! kernel adds print as `sys_<nr>`.

pub const X86_64: &str = concat!(
    "read write open close stat fstat lstat poll lseek mmap mprotect munmap brk rt_sigaction ",
    "rt_sigprocmask rt_sigreturn ioctl pread64 pwrite64 readv writev access pipe select ",
    "sched_yield mremap msync mincore madvise shmget shmat shmctl dup dup2 pause nanosleep ",
    "getitimer alarm setitimer getpid sendfile socket connect accept sendto recvfrom sendmsg ",
    "recvmsg shutdown bind listen getsockname getpeername socketpair setsockopt getsockopt ",
    "clone fork vfork execve exit wait4 kill uname semget semop semctl shmdt msgget msgsnd ",
    "msgrcv msgctl fcntl flock fsync fdatasync truncate ftruncate getdents getcwd chdir ",
    "fchdir rename mkdir rmdir creat link unlink symlink readlink chmod fchmod chown fchown ",
    "lchown umask gettimeofday getrlimit getrusage sysinfo times ptrace getuid syslog getgid ",
    "setuid setgid geteuid getegid setpgid getppid getpgrp setsid setreuid setregid ",
    "getgroups setgroups setresuid getresuid setresgid getresgid getpgid setfsuid setfsgid ",
    "getsid capget capset rt_sigpending rt_sigtimedwait rt_sigqueueinfo rt_sigsuspend ",
    "sigaltstack utime mknod uselib personality ustat statfs fstatfs sysfs getpriority ",
    "setpriority sched_setparam sched_getparam sched_setscheduler sched_getscheduler ",
    "sched_get_priority_max sched_get_priority_min sched_rr_get_interval mlock munlock ",
    "mlockall munlockall vhangup modify_ldt pivot_root _sysctl prctl arch_prctl adjtimex ",
    "setrlimit chroot sync acct settimeofday mount umount2 swapon swapoff reboot sethostname ",
    "setdomainname iopl ioperm create_module init_module delete_module get_kernel_syms ",
    "query_module quotactl nfsservctl getpmsg putpmsg afs_syscall tuxcall security gettid ",
    "readahead setxattr lsetxattr fsetxattr getxattr lgetxattr fgetxattr listxattr ",
    "llistxattr flistxattr removexattr lremovexattr fremovexattr tkill time futex ",
    "sched_setaffinity sched_getaffinity set_thread_area io_setup io_destroy io_getevents ",
    "io_submit io_cancel get_thread_area lookup_dcookie epoll_create epoll_ctl_old ",
    "epoll_wait_old remap_file_pages getdents64 set_tid_address restart_syscall semtimedop ",
    "fadvise64 timer_create timer_settime timer_gettime timer_getoverrun timer_delete ",
    "clock_settime clock_gettime clock_getres clock_nanosleep exit_group epoll_wait ",
    "epoll_ctl tgkill utimes vserver mbind set_mempolicy get_mempolicy mq_open mq_unlink ",
    "mq_timedsend mq_timedreceive mq_notify mq_getsetattr kexec_load waitid add_key ",
    "request_key keyctl ioprio_set ioprio_get inotify_init inotify_add_watch ",
    "inotify_rm_watch migrate_pages openat mkdirat mknodat fchownat futimesat newfstatat ",
    "unlinkat renameat linkat symlinkat readlinkat fchmodat faccessat pselect6 ppoll unshare ",
    "set_robust_list get_robust_list splice tee sync_file_range vmsplice move_pages ",
    "utimensat epoll_pwait signalfd timerfd_create eventfd fallocate timerfd_settime ",
    "timerfd_gettime accept4 signalfd4 eventfd2 epoll_create1 dup3 pipe2 inotify_init1 ",
    "preadv pwritev rt_tgsigqueueinfo perf_event_open recvmmsg fanotify_init fanotify_mark ",
    "prlimit64 name_to_handle_at open_by_handle_at clock_adjtime syncfs sendmmsg setns ",
    "getcpu process_vm_readv process_vm_writev kcmp finit_module sched_setattr sched_getattr ",
    "renameat2 seccomp getrandom memfd_create kexec_file_load bpf execveat userfaultfd ",
    "membarrier mlock2 copy_file_range preadv2 pwritev2 pkey_mprotect pkey_alloc pkey_free ",
    "statx io_pgetevents rseq - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - ",
    "- - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - ",
    "- - - - - - - - - - - - - - pidfd_send_signal io_uring_setup io_uring_enter ",
    "io_uring_register open_tree move_mount fsopen fsconfig fsmount fspick pidfd_open clone3 ",
    "close_range openat2 pidfd_getfd faccessat2 process_madvise epoll_pwait2 mount_setattr ",
    "quotactl_fd landlock_create_ruleset landlock_add_rule landlock_restrict_self ",
    "memfd_secret process_mrelease futex_waitv set_mempolicy_home_node ",
);

pub const ASM_GENERIC: &str = concat!(
    "io_setup io_destroy io_submit io_cancel io_getevents setxattr lsetxattr fsetxattr ",
    "getxattr lgetxattr fgetxattr listxattr llistxattr flistxattr removexattr lremovexattr ",
    "fremovexattr getcwd lookup_dcookie eventfd2 epoll_create1 epoll_ctl epoll_pwait dup ",
    "dup3 fcntl inotify_init1 inotify_add_watch inotify_rm_watch ioctl ioprio_set ioprio_get ",
    "flock mknodat mkdirat unlinkat symlinkat linkat renameat umount2 mount pivot_root ",
    "nfsservctl statfs fstatfs truncate ftruncate fallocate faccessat chdir fchdir chroot ",
    "fchmod fchmodat fchownat fchown openat close vhangup pipe2 quotactl getdents64 lseek ",
    "read write readv writev pread64 pwrite64 preadv pwritev sendfile pselect6 ppoll ",
    "signalfd4 vmsplice splice tee readlinkat newfstatat fstat sync fsync fdatasync ",
    "sync_file_range timerfd_create timerfd_settime timerfd_gettime utimensat acct capget ",
    "capset personality exit exit_group waitid set_tid_address unshare futex set_robust_list ",
    "get_robust_list nanosleep getitimer setitimer kexec_load init_module delete_module ",
    "timer_create timer_gettime timer_getoverrun timer_settime timer_delete clock_settime ",
    "clock_gettime clock_getres clock_nanosleep syslog ptrace sched_setparam ",
    "sched_setscheduler sched_getscheduler sched_getparam sched_setaffinity ",
    "sched_getaffinity sched_yield sched_get_priority_max sched_get_priority_min ",
    "sched_rr_get_interval restart_syscall kill tkill tgkill sigaltstack rt_sigsuspend ",
    "rt_sigaction rt_sigprocmask rt_sigpending rt_sigtimedwait rt_sigqueueinfo rt_sigreturn ",
    "setpriority getpriority reboot setregid setgid setreuid setuid setresuid getresuid ",
    "setresgid getresgid setfsuid setfsgid times setpgid getpgid getsid setsid getgroups ",
    "setgroups uname sethostname setdomainname getrlimit setrlimit getrusage umask prctl ",
    "getcpu gettimeofday settimeofday adjtimex getpid getppid getuid geteuid getgid getegid ",
    "gettid sysinfo mq_open mq_unlink mq_timedsend mq_timedreceive mq_notify mq_getsetattr ",
    "msgget msgctl msgrcv msgsnd semget semctl semtimedop semop shmget shmctl shmat shmdt ",
    "socket socketpair bind listen accept connect getsockname getpeername sendto recvfrom ",
    "setsockopt getsockopt shutdown sendmsg recvmsg readahead brk munmap mremap add_key ",
    "request_key keyctl clone execve mmap fadvise64 swapon swapoff mprotect msync mlock ",
    "munlock mlockall munlockall mincore madvise remap_file_pages mbind get_mempolicy ",
    "set_mempolicy migrate_pages move_pages rt_tgsigqueueinfo perf_event_open accept4 ",
    "recvmmsg arch_specific_syscall - - - - - - - - - - - - - - - wait4 prlimit64 ",
    "fanotify_init fanotify_mark name_to_handle_at open_by_handle_at clock_adjtime syncfs ",
    "setns sendmmsg process_vm_readv process_vm_writev kcmp finit_module sched_setattr ",
    "sched_getattr renameat2 seccomp getrandom memfd_create bpf execveat userfaultfd ",
    "membarrier mlock2 copy_file_range preadv2 pwritev2 pkey_mprotect pkey_alloc pkey_free ",
    "statx io_pgetevents rseq kexec_file_load - - - - - - - - - - - - - - - - - - - - - - - ",
    "- - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - ",
    "- - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - ",
    "clock_gettime64 clock_settime64 clock_adjtime64 clock_getres_time64 ",
    "clock_nanosleep_time64 timer_gettime64 timer_settime64 timerfd_gettime64 ",
    "timerfd_settime64 utimensat_time64 pselect6_time64 ppoll_time64 - io_pgetevents_time64 ",
    "recvmmsg_time64 mq_timedsend_time64 mq_timedreceive_time64 semtimedop_time64 ",
    "rt_sigtimedwait_time64 futex_time64 sched_rr_get_interval_time64 pidfd_send_signal ",
    "io_uring_setup io_uring_enter io_uring_register open_tree move_mount fsopen fsconfig ",
    "fsmount fspick pidfd_open clone3 close_range openat2 pidfd_getfd faccessat2 ",
    "process_madvise epoll_pwait2 mount_setattr quotactl_fd landlock_create_ruleset ",
    "landlock_add_rule landlock_restrict_self memfd_secret process_mrelease futex_waitv ",
    "set_mempolicy_home_node syscalls ",
);

pub const I386: &str = concat!(
    "restart_syscall exit fork read write open close waitpid creat link unlink execve chdir ",
    "time mknod chmod lchown break oldstat lseek getpid mount umount setuid getuid stime ",
    "ptrace alarm oldfstat pause utime stty gtty access nice ftime sync kill rename mkdir ",
    "rmdir dup pipe times prof brk setgid getgid signal geteuid getegid acct umount2 lock ",
    "ioctl fcntl mpx setpgid ulimit oldolduname umask chroot ustat dup2 getppid getpgrp ",
    "setsid sigaction sgetmask ssetmask setreuid setregid sigsuspend sigpending sethostname ",
    "setrlimit getrlimit getrusage gettimeofday settimeofday getgroups setgroups select ",
    "symlink oldlstat readlink uselib swapon reboot readdir mmap munmap truncate ftruncate ",
    "fchmod fchown getpriority setpriority profil statfs fstatfs ioperm socketcall syslog ",
    "setitimer getitimer stat lstat fstat olduname iopl vhangup idle vm86old wait4 swapoff ",
    "sysinfo ipc fsync sigreturn clone setdomainname uname modify_ldt adjtimex mprotect ",
    "sigprocmask create_module init_module delete_module get_kernel_syms quotactl getpgid ",
    "fchdir bdflush sysfs personality afs_syscall setfsuid setfsgid _llseek getdents ",
    "_newselect flock msync readv writev getsid fdatasync _sysctl mlock munlock mlockall ",
    "munlockall sched_setparam sched_getparam sched_setscheduler sched_getscheduler ",
    "sched_yield sched_get_priority_max sched_get_priority_min sched_rr_get_interval ",
    "nanosleep mremap setresuid getresuid vm86 query_module poll nfsservctl setresgid ",
    "getresgid prctl rt_sigreturn rt_sigaction rt_sigprocmask rt_sigpending rt_sigtimedwait ",
    "rt_sigqueueinfo rt_sigsuspend pread64 pwrite64 chown getcwd capget capset sigaltstack ",
    "sendfile getpmsg putpmsg vfork ugetrlimit mmap2 truncate64 ftruncate64 stat64 lstat64 ",
    "fstat64 lchown32 getuid32 getgid32 geteuid32 getegid32 setreuid32 setregid32 ",
    "getgroups32 setgroups32 fchown32 setresuid32 getresuid32 setresgid32 getresgid32 ",
    "chown32 setuid32 setgid32 setfsuid32 setfsgid32 pivot_root mincore madvise getdents64 ",
    "fcntl64 - - gettid readahead setxattr lsetxattr fsetxattr getxattr lgetxattr fgetxattr ",
    "listxattr llistxattr flistxattr removexattr lremovexattr fremovexattr tkill sendfile64 ",
    "futex sched_setaffinity sched_getaffinity set_thread_area get_thread_area io_setup ",
    "io_destroy io_getevents io_submit io_cancel fadvise64 - exit_group lookup_dcookie ",
    "epoll_create epoll_ctl epoll_wait remap_file_pages set_tid_address timer_create ",
    "timer_settime timer_gettime timer_getoverrun timer_delete clock_settime clock_gettime ",
    "clock_getres clock_nanosleep statfs64 fstatfs64 tgkill utimes fadvise64_64 vserver ",
    "mbind get_mempolicy set_mempolicy mq_open mq_unlink mq_timedsend mq_timedreceive ",
    "mq_notify mq_getsetattr kexec_load waitid - add_key request_key keyctl ioprio_set ",
    "ioprio_get inotify_init inotify_add_watch inotify_rm_watch migrate_pages openat mkdirat ",
    "mknodat fchownat futimesat fstatat64 unlinkat renameat linkat symlinkat readlinkat ",
    "fchmodat faccessat pselect6 ppoll unshare set_robust_list get_robust_list splice ",
    "sync_file_range tee vmsplice move_pages getcpu epoll_pwait utimensat signalfd ",
    "timerfd_create eventfd fallocate timerfd_settime timerfd_gettime signalfd4 eventfd2 ",
    "epoll_create1 dup3 pipe2 inotify_init1 preadv pwritev rt_tgsigqueueinfo perf_event_open ",
    "recvmmsg fanotify_init fanotify_mark prlimit64 name_to_handle_at open_by_handle_at ",
    "clock_adjtime syncfs sendmmsg setns process_vm_readv process_vm_writev kcmp ",
    "finit_module sched_setattr sched_getattr renameat2 seccomp getrandom memfd_create bpf ",
    "execveat socket socketpair bind connect listen accept4 getsockopt setsockopt ",
    "getsockname getpeername sendto sendmsg recvfrom recvmsg shutdown userfaultfd membarrier ",
    "mlock2 copy_file_range preadv2 pwritev2 pkey_mprotect pkey_alloc pkey_free statx ",
    "arch_prctl io_pgetevents rseq - - - - - - semget semctl shmget shmctl shmat shmdt ",
    "msgget msgsnd msgrcv msgctl clock_gettime64 clock_settime64 clock_adjtime64 ",
    "clock_getres_time64 clock_nanosleep_time64 timer_gettime64 timer_settime64 ",
    "timerfd_gettime64 timerfd_settime64 utimensat_time64 pselect6_time64 ppoll_time64 - ",
    "io_pgetevents_time64 recvmmsg_time64 mq_timedsend_time64 mq_timedreceive_time64 ",
    "semtimedop_time64 rt_sigtimedwait_time64 futex_time64 sched_rr_get_interval_time64 ",
    "pidfd_send_signal io_uring_setup io_uring_enter io_uring_register open_tree move_mount ",
    "fsopen fsconfig fsmount fspick pidfd_open clone3 close_range openat2 pidfd_getfd ",
    "faccessat2 process_madvise epoll_pwait2 mount_setattr quotactl_fd ",
    "landlock_create_ruleset landlock_add_rule landlock_restrict_self memfd_secret ",
    "process_mrelease futex_waitv set_mempolicy_home_node ",
);

pub const ARM_EABI: &str = concat!(
    "restart_syscall exit fork read write open close - creat link unlink execve chdir - ",
    "mknod chmod lchown - - lseek getpid mount - setuid getuid - ptrace - - pause - - - ",
    "access nice - sync kill rename mkdir rmdir dup pipe times - brk setgid getgid - geteuid ",
    "getegid acct umount2 - ioctl fcntl - setpgid - - umask chroot ustat dup2 getppid ",
    "getpgrp setsid sigaction - - setreuid setregid sigsuspend sigpending sethostname ",
    "setrlimit - getrusage gettimeofday settimeofday getgroups setgroups - symlink - ",
    "readlink uselib swapon reboot - - munmap truncate ftruncate fchmod fchown getpriority ",
    "setpriority - statfs fstatfs - - syslog setitimer getitimer stat lstat fstat - - ",
    "vhangup - - wait4 swapoff sysinfo - fsync sigreturn clone setdomainname uname - ",
    "adjtimex mprotect sigprocmask - init_module delete_module - quotactl getpgid fchdir ",
    "bdflush sysfs personality - setfsuid setfsgid _llseek getdents _newselect flock msync ",
    "readv writev getsid fdatasync _sysctl mlock munlock mlockall munlockall sched_setparam ",
    "sched_getparam sched_setscheduler sched_getscheduler sched_yield sched_get_priority_max ",
    "sched_get_priority_min sched_rr_get_interval nanosleep mremap setresuid getresuid - - ",
    "poll nfsservctl setresgid getresgid prctl rt_sigreturn rt_sigaction rt_sigprocmask ",
    "rt_sigpending rt_sigtimedwait rt_sigqueueinfo rt_sigsuspend pread64 pwrite64 chown ",
    "getcwd capget capset sigaltstack sendfile - - vfork ugetrlimit mmap2 truncate64 ",
    "ftruncate64 stat64 lstat64 fstat64 lchown32 getuid32 getgid32 geteuid32 getegid32 ",
    "setreuid32 setregid32 getgroups32 setgroups32 fchown32 setresuid32 getresuid32 ",
    "setresgid32 getresgid32 chown32 setuid32 setgid32 setfsuid32 setfsgid32 getdents64 ",
    "pivot_root mincore madvise fcntl64 - - gettid readahead setxattr lsetxattr fsetxattr ",
    "getxattr lgetxattr fgetxattr listxattr llistxattr flistxattr removexattr lremovexattr ",
    "fremovexattr tkill sendfile64 futex sched_setaffinity sched_getaffinity io_setup ",
    "io_destroy io_getevents io_submit io_cancel exit_group lookup_dcookie epoll_create ",
    "epoll_ctl epoll_wait remap_file_pages - - set_tid_address timer_create timer_settime ",
    "timer_gettime timer_getoverrun timer_delete clock_settime clock_gettime clock_getres ",
    "clock_nanosleep statfs64 fstatfs64 tgkill utimes arm_fadvise64_64 pciconfig_iobase ",
    "pciconfig_read pciconfig_write mq_open mq_unlink mq_timedsend mq_timedreceive mq_notify ",
    "mq_getsetattr waitid socket bind connect listen accept getsockname getpeername ",
    "socketpair send sendto recv recvfrom shutdown setsockopt getsockopt sendmsg recvmsg ",
    "semop semget semctl msgsnd msgrcv msgget msgctl shmat shmdt shmget shmctl add_key ",
    "request_key keyctl semtimedop vserver ioprio_set ioprio_get inotify_init ",
    "inotify_add_watch inotify_rm_watch mbind get_mempolicy set_mempolicy openat mkdirat ",
    "mknodat fchownat futimesat fstatat64 unlinkat renameat linkat symlinkat readlinkat ",
    "fchmodat faccessat pselect6 ppoll unshare set_robust_list get_robust_list splice ",
    "arm_sync_file_range tee vmsplice move_pages getcpu epoll_pwait kexec_load utimensat ",
    "signalfd timerfd_create eventfd fallocate timerfd_settime timerfd_gettime signalfd4 ",
    "eventfd2 epoll_create1 dup3 pipe2 inotify_init1 preadv pwritev rt_tgsigqueueinfo ",
    "perf_event_open recvmmsg accept4 fanotify_init fanotify_mark prlimit64 ",
    "name_to_handle_at open_by_handle_at clock_adjtime syncfs sendmmsg setns ",
    "process_vm_readv process_vm_writev kcmp finit_module sched_setattr sched_getattr ",
    "renameat2 seccomp getrandom memfd_create bpf execveat userfaultfd membarrier mlock2 ",
    "copy_file_range preadv2 pwritev2 pkey_mprotect pkey_alloc pkey_free statx rseq ",
    "io_pgetevents migrate_pages kexec_file_load - clock_gettime64 clock_settime64 ",
    "clock_adjtime64 clock_getres_time64 clock_nanosleep_time64 timer_gettime64 ",
    "timer_settime64 timerfd_gettime64 timerfd_settime64 utimensat_time64 pselect6_time64 ",
    "ppoll_time64 - io_pgetevents_time64 recvmmsg_time64 mq_timedsend_time64 ",
    "mq_timedreceive_time64 semtimedop_time64 rt_sigtimedwait_time64 futex_time64 ",
    "sched_rr_get_interval_time64 pidfd_send_signal io_uring_setup io_uring_enter ",
    "io_uring_register open_tree move_mount fsopen fsconfig fsmount fspick pidfd_open clone3 ",
    "close_range openat2 pidfd_getfd faccessat2 process_madvise epoll_pwait2 mount_setattr ",
    "quotactl_fd landlock_create_ruleset landlock_add_rule landlock_restrict_self - ",
    "process_mrelease futex_waitv set_mempolicy_home_node ",
);

/// 32-bit ARM's private calls, `__ARM_NR_BASE` (0x0f0000) + position: the
/// probe counts them in the compat row, which ARM has no other use for.
pub const ARM_PRIVATE: &str = "- breakpoint cacheflush usr26 usr32 set_tls get_tls";

/// The name of syscall `nr` of this build's native (`compat == false`) or
/// 32-bit ABI (on 32-bit ARM: of its private calls), if the table has one.
pub fn name(compat: bool, nr: usize) -> Option<&'static str> {
    let table = match (
        compat,
        cfg!(target_arch = "x86_64"),
        cfg!(target_arch = "arm"),
    ) {
        (false, true, _) => X86_64,
        (true, true, _) => I386,
        (false, _, true) => ARM_EABI,
        (true, _, true) => ARM_PRIVATE,
        (false, _, _) => ASM_GENERIC,
        (true, _, _) => ARM_EABI,
    };
    table
        .split(' ')
        .nth(nr)
        .filter(|n| !n.is_empty() && *n != "-")
}

/// The culprit counters' `abi` label of a row: the word size of a 64-bit
/// kernel's native and compat ABIs; on 32-bit ARM, EABI and private calls.
pub fn abi_label(compat: bool) -> &'static str {
    match (compat, cfg!(target_arch = "arm")) {
        (false, false) => "64",
        (true, false) | (false, true) => "32",
        (true, true) => "arm",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// name -> number from a UAPI header, as the table was made from it.
    fn header(text: &str) -> Vec<(String, usize)> {
        text.lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                if it.next() != Some("#define") {
                    return None;
                }
                let key = it.next()?;
                let (generic, name) = match key.strip_prefix("__NR3264_") {
                    Some(n) => (true, n),
                    None => (false, key.strip_prefix("__NR_")?),
                };
                let v: String = it.collect();
                let nr = v
                    .trim_start_matches("(__NR_SYSCALL_BASE+")
                    .trim_end_matches(')')
                    .parse()
                    .ok()?;
                let name = if generic && name == "fstatat" {
                    "newfstatat"
                } else {
                    name
                };
                Some((name.to_string(), nr))
            })
            .filter(|(_, nr)| *nr < 512)
            .collect()
    }

    #[test]
    fn every_name_matches_the_uapi_headers() {
        for (table, path) in [
            (X86_64, "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
            (ASM_GENERIC, "/usr/include/asm-generic/unistd.h"),
            (I386, "/usr/include/x86_64-linux-gnu/asm/unistd_32.h"),
            (
                ARM_EABI,
                "/usr/arm-linux-gnueabihf/include/asm/unistd-eabi.h",
            ),
        ] {
            let Some(text) = crate::testing::uapi_header(path) else {
                continue;
            };
            let names: Vec<&str> = table.split(' ').filter(|t| !t.is_empty()).collect();
            let defs = header(&text);
            assert!(defs.len() > 300, "{path}: only {} syscalls", defs.len());
            // #ifdef'd alternatives share a number (sync_file_range2 or
            // sync_file_range): the table holds one of them.
            let mut numbers: Vec<usize> = defs.iter().map(|d| d.1).collect();
            numbers.sort_unstable();
            numbers.dedup();
            for nr in &numbers {
                let listed = names.get(*nr).copied().unwrap_or("-");
                assert!(
                    defs.iter().any(|(n, x)| x == nr && n == listed),
                    "{path}: {nr} is {listed} in the table"
                );
            }
            let defined = names.iter().filter(|n| **n != "-").count();
            assert_eq!(
                defined,
                numbers.len(),
                "{path}: the table has no extra names"
            );
        }
    }

    #[test]
    fn lookup_by_abi() {
        let (open_at, close) = if cfg!(target_arch = "x86_64") {
            (257, 3)
        } else if cfg!(target_arch = "arm") {
            (322, 6)
        } else {
            (56, 57)
        };
        assert_eq!(name(false, open_at), Some("openat"));
        assert_eq!(name(false, close), Some("close"));
        let compat_6 = if cfg!(target_arch = "arm") {
            "get_tls"
        } else {
            "close"
        };
        assert_eq!(name(true, 6), Some(compat_6));
        assert_eq!(name(false, 511), None);
    }

    #[test]
    fn arm_private_names_match_the_uapi_header() {
        let path = "/usr/arm-linux-gnueabihf/include/asm/unistd.h";
        let Some(text) = crate::testing::uapi_header(path) else {
            return;
        };
        let names: Vec<&str> = ARM_PRIVATE.split(' ').collect();
        let mut defined = 0;
        for l in text.lines() {
            let mut it = l.split_whitespace();
            let (Some("#define"), Some(key)) = (it.next(), it.next()) else {
                continue;
            };
            let Some(name) = key.strip_prefix("__ARM_NR_").filter(|n| *n != "BASE") else {
                continue;
            };
            let v: String = it.collect();
            let nr: usize = v
                .trim_start_matches("(__ARM_NR_BASE+")
                .trim_end_matches(')')
                .parse()
                .expect("__ARM_NR_BASE + n");
            assert_eq!(names.get(nr), Some(&name), "{path}: {key}");
            defined += 1;
        }
        assert_eq!(defined, names.len() - 1, "{path}: every private call");
    }
}
