/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The few kernel types the probe touches, declared with
 * preserve_access_index so libbpf relocates every field access against the
 * running kernel's BTF (CO-RE). Keeping them here instead of a generated
 * multi-megabyte vmlinux.h keeps the probe arch-neutral: only pt_regs
 * and the syscall's ABI differ between x86_64, arm64 and 32-bit ARM.
 */
#ifndef KESTREL_KERNEL_TYPES_H
#define KESTREL_KERNEL_TYPES_H

typedef unsigned char __u8;
typedef signed char __s8;
typedef unsigned short __u16;
typedef short __s16;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
#define true 1
#define false 0

/* For bpf_core_enum_value_exists() alone: whether the running kernel has a
 * helper (relocated against its BTF at load; a missing one reads 0 and the
 * verifier drops the branch that calls it). UAPI values. */
enum bpf_func_id {
	BPF_FUNC_get_current_task_btf = 158, /* 5.11 */
};

/* UAPI constants (stable ABI). */
enum {
	BPF_MAP_TYPE_PERF_EVENT_ARRAY = 4,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
};
#define BPF_NOEXIST 1
#define BPF_F_CURRENT_CPU 0xffffffffULL
enum {
	BPF_RB_NO_WAKEUP = 1,
	BPF_RB_FORCE_WAKEUP = 2,
};
enum {
	BPF_RB_AVAIL_DATA = 0,
	BPF_RB_RING_SIZE = 1,
	BPF_RB_CONS_POS = 2,
	BPF_RB_PROD_POS = 3,
};
#define PF_KTHREAD 0x00200000
#define CLONE_THREAD 0x00010000
#define O_CLOEXEC_GENERIC 02000000 /* same value on x86_64 and arm64 */
#define SOCK_CLOEXEC O_CLOEXEC_GENERIC
#define AF_INET 2
#define AF_INET6 10
#define EINPROGRESS 115 /* asm-generic/errno.h: x86 and arm, 64- and 32-bit */

/* A kernel pointer or unsigned long as stored in kernel memory, for the
 * few structs read whole: BPF's pointers are 64-bit whatever the kernel's. */
#if defined(__TARGET_ARCH_arm)
typedef __u32 kword_t;
#else
typedef __u64 kword_t;
#endif

#if defined(__TARGET_ARCH_x86)
/* ia32 syscalls pass their arguments in bx, cx, dx, si, di, bp. */
struct pt_regs {
	unsigned long bx;
	unsigned long cx;
	unsigned long bp;
	unsigned long di;
	unsigned long si;
	unsigned long dx;
	unsigned long r10;
	unsigned long r8;
	unsigned long r9;
	unsigned long orig_ax;
	unsigned long ip;
	unsigned long cs;
} __attribute__((preserve_access_index));
/* arch/x86/include/asm/segment.h: a 32-bit task runs in this code segment. */
#define USER32_CS 0x23
#elif defined(__TARGET_ARCH_arm64)
struct pt_regs {
	__u64 regs[31];
	__u64 pstate;
	__u64 orig_x0;
	__s32 syscallno;
} __attribute__((preserve_access_index));
#elif defined(__TARGET_ARCH_arm)
/* arch/arm/include/uapi/asm/ptrace.h: r0-r15, cpsr, ORIG_r0. No syscall
 * number: that is in thread_info (syscall_get_nr()). */
struct pt_regs {
	__u32 uregs[18];
} __attribute__((preserve_access_index));
#define ARM_ORIG_R0 17
#else
#error "kestrel: unsupported __TARGET_ARCH"
#endif

typedef struct {
	int counter;
} atomic_t;

typedef struct {
	unsigned int val;
} kuid_t;

typedef struct {
	unsigned int val;
} kgid_t;

struct cred {
	kuid_t uid;
	kgid_t gid;
} __attribute__((preserve_access_index));

/* include/linux/pid.h: the id in the initial namespace is numbers[0]. */
struct upid {
	int nr;
} __attribute__((preserve_access_index));

struct pid {
	struct upid numbers[1];
} __attribute__((preserve_access_index));

#define PIDTYPE_SID 3 /* enum pid_type, stable since signal->pids (4.19) */

struct tty_driver {
	int major;
	int minor_start;
} __attribute__((preserve_access_index));

struct tty_struct {
	struct tty_driver *driver;
	int index;
} __attribute__((preserve_access_index));

struct signal_struct {
	atomic_t live;
	struct pid *pids[4];
	struct tty_struct *tty;
} __attribute__((preserve_access_index));

/* Paths. qstr and path are read whole: their layouts have not changed
 * (qstr's hash and len share a u64 on little-endian kernels). */
struct qstr {
	__u32 hash;
	__u32 len;
	kword_t name;
};

struct super_block {
	unsigned long s_magic;
} __attribute__((preserve_access_index));

struct inode {
	unsigned long i_ino;
} __attribute__((preserve_access_index));

struct dentry {
	struct dentry *d_parent;
	struct qstr d_name;
	struct inode *d_inode;
	struct super_block *d_sb;
} __attribute__((preserve_access_index));

struct vfsmount {
	struct dentry *mnt_root;
} __attribute__((preserve_access_index));

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
};

/* struct path as one copy reads it. */
struct path_raw {
	kword_t mnt;
	kword_t dentry;
};

/* fs/mount.h: a vfsmount lives inside its struct mount. */
struct mount {
	struct mount *mnt_parent;
	struct dentry *mnt_mountpoint;
	struct vfsmount mnt;
} __attribute__((preserve_access_index));

struct file {
	struct path f_path;
	void *private_data; /* a socket file's struct socket */
} __attribute__((preserve_access_index));

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} __attribute__((preserve_access_index));

struct files_struct {
	struct fdtable *fdt;
} __attribute__((preserve_access_index));

/* Read whole, so only its size matters; the kernel's is a union of arrays. */
struct in6_addr {
	__u8 s6_addr[16];
};

/* The kernel nests these in anonymous unions; CO-RE finds them by name. */
struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num; /* local port, host order */
	unsigned short skc_family;
	struct in6_addr skc_v6_daddr;     /* CONFIG_IPV6 only */
	struct in6_addr skc_v6_rcv_saddr; /* CONFIG_IPV6 only */
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
} __attribute__((preserve_access_index));

struct socket {
	struct sock *sk;
	struct file *file;
} __attribute__((preserve_access_index));

struct fs_struct {
	struct path pwd;
} __attribute__((preserve_access_index));

struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
} __attribute__((preserve_access_index));

#if defined(__TARGET_ARCH_x86)
/* arch/x86/include/asm/thread_info.h: TS_COMPAT is set while an ia32
 * syscall runs, also when a 64-bit process enters through int 0x80. */
#define TS_COMPAT 0x0002
struct thread_info {
	__u32 status;
} __attribute__((preserve_access_index));
#elif defined(__TARGET_ARCH_arm)
/* What syscall_get_nr() reads: the EABI number (r7), or 0x900000 | nr for
 * an OABI call (named `syscall` in older kernels). In task_struct with
 * THREAD_INFO_IN_TASK, at the base of the kernel stack before it. */
struct thread_info {
	__u32 abi_syscall;
	__u32 syscall;
} __attribute__((preserve_access_index));
#else
/* arch/arm64/include/asm/ptrace.h compat_user_mode(): the saved PSTATE of
 * an AArch32 task has PSR_MODE32_BIT. Architectural, unlike TIF_32BIT,
 * whose number moved when arm64 took the generic TIF bits. */
#define PSR_MODE32_BIT 0x10
#endif

struct task_struct {
#if defined(__TARGET_ARCH_x86) || defined(__TARGET_ARCH_arm)
	struct thread_info thread_info;
#endif
	void *stack;
	unsigned int flags;
	int pid;
	int tgid;
	__u64 start_time;
	struct task_struct *real_parent;
	struct task_struct *group_leader;
	const struct cred *real_cred;
	struct signal_struct *signal;
	char comm[16];
	kuid_t loginuid; /* CONFIG_AUDIT only */
	struct fs_struct *fs;
	struct files_struct *files;
	struct mm_struct *mm;
} __attribute__((preserve_access_index));

struct linux_binprm {
	struct file *file;
	const char *filename;
} __attribute__((preserve_access_index));

struct sockaddr_in {
	__u16 sin_family;
	__be16 sin_port;
	__be32 sin_addr;
};

struct sockaddr_in6 {
	__u16 sin6_family;
	__be16 sin6_port;
	__be32 sin6_flowinfo;
	__u8 sin6_addr[16];
};

#endif /* KESTREL_KERNEL_TYPES_H */
