/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one definition of everything the probe and user space share: record
 * layouts, counter layout, drop categories and selection bits. The Rust side
 * uses the types libbpf-cargo generates from this header (via the skeleton),
 * never a hand-kept copy.
 *
 * Every record starts with struct kestrel_hdr; hdr.len is the number of bytes
 * that follow in the ring buffer for this record (variable-size records carry
 * a path trimmed to its real length).
 */
#ifndef KESTREL_H
#define KESTREL_H

/* The __u* types; user space gets the layouts from the skeleton instead. */
#include "kernel_types.h"

/* Enums, so the skeleton carries them to Rust. */
enum kestrel_limits {
	/* task_struct.comm, NUL included (TASK_COMM_LEN). */
	KESTREL_COMM_LEN = 16,
	/* Size of each syscall table: every ABI's numbers (x86_64, arm64,
	 * i386, ARM EABI) stay below it. */
	KESTREL_SYSCALL_MAX = 512,
	/* Any string a record carries, NUL included. */
	KESTREL_PATH_MAX = 256,
	/* What an open record keeps of its path (rules compare fd.name). */
	KESTREL_OPEN_PATH_MAX = 256,
	/* argv bytes an exec record keeps. */
	KESTREL_ARGS_MAX = 256,
	/* Steps (components and mount crossings) of the exe and cwd walks. */
	KESTREL_PATH_DEPTH = 24,
	/* Staged bytes at which a CPU's small records go to the ring as one
	 * (bpf/stage.h); a power of two. */
	KESTREL_STAGE_FLUSH = 2048,
};

enum kestrel_record_type {
	KR_CLONE = 1,   /* parent side of clone/clone3/fork/vfork: ret is the child tid */
	KR_CLONE_CHILD, /* child side: sys_exit with ret 0 (x86_64) or sched_process_fork */
	KR_EXECVE,      /* successful exec from sched_process_exec, or failed execve exit */
	KR_PROC_EXIT,   /* sched_process_exit: a thread ended */
	KR_OPEN,        /* open family exit */
	KR_CLOSE,       /* close exit */
	KR_DUP,         /* dup family exit */
	KR_SOCKET,      /* socket exit */
	KR_CONNECT,     /* connect exit */
	KR_ACCEPT,      /* accept family exit */
	KR_GENERIC,     /* any other selected syscall: number, return and raw arguments */
	KR_ENTER,       /* enter side of a selected syscall (only with enter capture on) */
	KR_SYSCALL,     /* a syscall the rules need: raw arguments and up to two user strings */
	KR_TYPE_MAX,
};

/* Drop categories, named as Falco's scap.n_drops_buffer_<category>_<dir>. */
enum kestrel_category {
	KC_CLONE_FORK = 0,
	KC_EXECVE,
	KC_CONNECT,
	KC_OPEN,
	KC_DIR_FILE,
	KC_OTHER_INTEREST,
	KC_CLOSE,
	KC_PROC_EXIT,
	/* Kestrel's own buckets: modern_bpf puts these syscalls in no category
	 * (driver/modern_bpf/helpers/base/stats.h), so Falco's never see them. */
	KC_DUP,
	KC_SOCKET,
	KC_OTHER, /* memfd_create, module loads, chdir, setuid, sendto, kill ... */
	KC_MAX,
};

/* Rows of n_drops_buffer: a power of two >= KC_MAX, so the probe can mask. */
#define KESTREL_CAT_SLOTS 16

enum kestrel_dir {
	KD_ENTER = 0,
	KD_EXIT = 1,
	KD_MAX,
};

/* Which table a syscall number belongs to. */
enum kestrel_abi_kind {
	KA_NATIVE = 0, /* x86_64 / arm64 */
	KA_COMPAT = 1, /* i386 / ARM EABI */
	KA_MAX,
};

/*
 * How the probe decodes a syscall's arguments. User space owns the per-arch
 * syscall table and tells the probe, per number, which handler applies, so
 * the probe itself holds no arch-specific syscall numbers.
 */
enum kestrel_handler {
	KH_GENERIC = 0,
	KH_CLONE,  /* flags in arg0 */
	KH_CLONE3, /* flags in the user struct clone_args at arg0 */
	KH_FORK,   /* fork/vfork: no arguments */
	KH_EXECVE,
	KH_OPEN,           /* path arg0, flags arg1, mode arg2 */
	KH_OPENAT,         /* dirfd arg0, path arg1, flags arg2, mode arg3 */
	KH_OPENAT2,        /* dirfd arg0, path arg1, struct open_how at arg2 */
	KH_CREAT,          /* path arg0, mode arg1 */
	KH_OPEN_BY_HANDLE, /* mount fd arg0, flags arg2; no path */
	KH_CLOSE,
	KH_DUP,  /* old arg0 */
	KH_DUP2, /* old arg0, new arg1 */
	KH_DUP3, /* old arg0, new arg1, flags arg2 */
	KH_SOCKET,
	KH_CONNECT,
	KH_ACCEPT,  /* fd arg0, addr arg1 */
	KH_ACCEPT4, /* fd arg0, addr arg1, flags arg3 */
	/* KR_SYSCALL: the six raw arguments, and which of them are user
	 * strings (the first goes to s0, the second to s1). */
	KH_ARGS,      /* no strings */
	KH_STR_A0,    /* s0 = arg0 */
	KH_STR_A1,    /* s0 = arg1 */
	KH_STR_A0_A1, /* s0 = arg0, s1 = arg1 */
	KH_STR_A0_A2, /* s0 = arg0, s1 = arg2 */
	KH_STR_A1_A3, /* s0 = arg1, s1 = arg3 */
	KH_MAX,
};

/*
 * call_table[nr] holds two 16-bit entries, set by user space before load:
 * the 64-bit ABI's in bits 0-15, the compat ABI's (i386 / ARM EABI) from
 * KSEL_COMPAT_SHIFT. Each: selection bits (bits 0-1), drop category (bits
 * 4-7), handler (bits 8-15); 0 = not selected. One word, so the untraced
 * path tests both ABIs with one load from one cache line.
 */
enum kestrel_sel {
	KSEL_EXIT = 0x1,
	KSEL_ENTER = 0x2,
	KSEL_CAT_SHIFT = 4,
	KSEL_CAT_MASK = 0xf,
	KSEL_HANDLER_SHIFT = 8,
	KSEL_COMPAT_SHIFT = 16,
};

/* kestrel_hdr.flags */
enum kestrel_flags {
	KF_CLONE_THREAD = 0x1,     /* KR_CLONE*: the new task shares the thread group */
	KF_GROUP_DEAD = 0x2,       /* KR_PROC_EXIT: last thread of the process */
	KF_PATH_FAULT = 0x4,       /* user memory could not be read; field left empty */
	KF_PATH_TRUNC = 0x8,       /* path longer than KESTREL_PATH_MAX, truncated */
	KF_CLOEXEC = 0x10,         /* the new fd is close-on-exec */
	KF_COMPAT = 0x20,          /* a 32-bit task's syscall: nr is from its ABI's table */
	KF_EXE_MEMFD = 0x40,       /* exec: the executable is a memfd (modern_bpf EXE_FROM_MEMFD) */
	KF_EXE_UPPER_LAYER = 0x80, /* exec: the executable is on an overlayfs upper layer */
	KF_ARGS_TRUNC = 0x100,     /* exec: argv longer than KESTREL_ARGS_MAX, cut */
	KF_EXEPATH_TRUNC = 0x200,  /* exec: exepath incomplete (too long, too deep, detached) */
	KF_CWD_TRUNC = 0x400,      /* exec: cwd incomplete, as above */
	KF_ARGS_FAULT = 0x800,     /* exec: argv could not be read; args empty */
	KF_PATH1_FAULT = 0x1000,   /* KR_SYSCALL: s1 could not be read (KF_PATH_FAULT: s0) */
	KF_PATH1_TRUNC = 0x2000,   /* KR_SYSCALL: s1 truncated (KF_PATH_TRUNC: s0) */
	KF_CLOSE_FOLLOWS = 0x4000, /* KR_OPEN, staged: a successful close as a tail follows */
};

struct kestrel_hdr {
	/* Coarse time (kernel jiffies): a clock read costs more than the rest of
	 * a small record on some VMs, and the metrics need no finer time. */
	__u64 jiffies;
	__u32 tid;
	__u32 pid; /* thread group id */
	__u16 type;
	__u16 len; /* whole record, header included */
	__s16 nr;  /* syscall number, -1 for scheduler events */
	__u16 flags;
	__s64 ret;
};

/* Identity of the task a record is about, read from its task_struct. The
 * session fields are read only where the thread table takes them: exec and
 * the child side of a clone (elsewhere loginuid is UINT32_MAX, tty and sid 0). */
struct kestrel_task {
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u32 old_tid; /* exec: tid before a non-leader thread took over the group */
	__u64 start_ns;
	char comm[KESTREL_COMM_LEN];
	__u32 loginuid; /* audit login uid, UINT32_MAX when unset */
	__u32 tty;      /* Falco's proc.tty (as /proc's tty_nr), 0 = none */
	__u32 sid;      /* session id in the initial pid namespace */
	__u32 pad;
};

struct kestrel_clone {
	struct kestrel_hdr hdr;
	struct kestrel_task task; /* parent side: the parent; child side: the child */
};

/*
 * A successful exec. data holds four strings back to back, each *_len
 * bytes: path (bprm->filename, NUL included, at least 1), args (argv as in
 * memory: NUL-separated, argv[0] first), exepath and cwd (resolved through
 * the dentry and mount chains, NUL included). 0 = empty. Only the used
 * bytes of data are sent.
 */
struct kestrel_exec {
	struct kestrel_hdr hdr;
	struct kestrel_task task;
	__u16 path_len;
	__u16 args_len;
	__u16 exepath_len;
	__u16 cwd_len;
	char data[3 * KESTREL_PATH_MAX + KESTREL_ARGS_MAX];
};

/* A thread ended: the header says who, KF_GROUP_DEAD whether the process. */
struct kestrel_exit {
	struct kestrel_hdr hdr;
};

/* Fixed size, built in place; a failed open carries no path. */
struct kestrel_open {
	struct kestrel_hdr hdr; /* ret: the new fd or -errno */
	__u32 flags;
	__u32 mode;
	__u16 path_len;
	__u16 pad;
	__u32 pad2; /* the path starts on a word: emit.h stores it a word at a time */
	char path[KESTREL_OPEN_PATH_MAX];
};
_Static_assert(__builtin_offsetof(struct kestrel_open, path) % 8 == 0,
	       "short_user_str stores the open's path in 8-byte words");

/*
 * A successful close of the fd the same thread's open made just before it, in
 * the same stage and jiffy (bpf/stage.h): the open carries KF_CLOSE_FOLLOWS and these
 * 8 bytes follow it in place of a kestrel_fd. The rest of the close record
 * is the open's: thread, jiffies, fd = the open's ret (capture/ring.rs);
 * ret is 0, kept so the tail decodes as the record it stands for.
 */
struct kestrel_close_tail {
	__s16 nr;
	__u16 flags;
	__s32 ret;
};

/* close (fd), dup family (fd = old, ret = new). */
struct kestrel_fd {
	struct kestrel_hdr hdr;
	__s64 fd;
	__u32 flags;
	__u32 pad;
};

struct kestrel_socket {
	struct kestrel_hdr hdr; /* ret: the new fd */
	__u32 domain;
	__u32 type;
	__u32 protocol;
	__u32 pad;
};

/*
 * connect (fd = socket, addr = destination), accept (ret = new fd, addr =
 * peer). The local end (l*) is read from the kernel socket after a connect
 * that succeeded or is in progress and after a successful accept; lfamily 0
 * when unknown (failed call, not an IP socket).
 */
struct kestrel_sockaddr {
	struct kestrel_hdr hdr;
	__s64 fd;
	__u16 family;
	__u16 port; /* host order */
	__u32 flags;
	__u8 addr[16]; /* IPv4 in the first 4 bytes, or IPv6 */
	__u16 lfamily;
	__u16 lport; /* host order */
	__u32 pad;
	__u8 laddr[16];
};

/* Any other selected syscall, or an enter event: number and return value
 * are in the header; nothing reads the arguments, so none are copied. */
struct kestrel_generic {
	struct kestrel_hdr hdr;
};

/*
 * KR_SYSCALL: the raw arguments (a 32-bit task's zero-extended: int
 * arguments are sign-extended by the reader) and up to two user strings,
 * s0 at data[0] and s1 right after it, each *_len bytes with its NUL
 * (0: the handler reads none). An unreadable string is sent empty (length
 * 1) with KF_PATH_FAULT / KF_PATH1_FAULT. Only the used bytes are sent.
 */
struct kestrel_syscall {
	struct kestrel_hdr hdr;
	__u64 args[6];
	__u16 s0_len;
	__u16 s1_len;
	__u32 pad;
	char data[2 * KESTREL_PATH_MAX];
};

/* Largest record; the per-CPU scratch space holds exactly one. */
union kestrel_record {
	struct kestrel_hdr hdr;
	struct kestrel_clone clone;
	struct kestrel_exec exec;
	struct kestrel_exit exit;
	struct kestrel_open open;
	struct kestrel_fd fd;
	struct kestrel_socket socket;
	struct kestrel_sockaddr sockaddr;
	struct kestrel_generic generic;
	struct kestrel_syscall syscall;
};

/* Per-CPU kernel counters, summed by user space over all possible CPUs. */
struct kestrel_counters {
	__u64 n_evts; /* every record the probe tried to send */
	__u64 n_drops_buffer_total;
	__u64 n_drops_buffer[KESTREL_CAT_SLOTS][KD_MAX];
	__u64 n_drops_scratch_map;
	__u64 n_drops_page_faults;
	__u64 n_drops_bug;
	/* Records with no enter event in Falco 0.37's driver (process exit, the
	 * child's return from a fork): tried, and dropped. The falco-0.37 schema
	 * counts every other record as its enter and exit. */
	__u64 n_evts_no_enter;
	__u64 n_drops_no_enter;
	/* Culprit counters (count_syscalls): every syscall exit on the machine,
	 * selected or not, by ABI and number; numbers past the table (x32, -1
	 * after an exec) in n_syscalls_unnumbered. Rows of 32 only because
	 * the generated Rust types derive Default, which longer arrays lack;
	 * both sides index it flat. */
	__u64 n_syscalls_unnumbered;
	/* Per-process sampling (count_syscalls): syscall exits left on this
	 * CPU before the next sample (beside the native counts, so most calls
	 * write one page of this value); samples taken; samples the process
	 * table could not take (a racing insert, or a full table). Not summed. */
	__s64 calls_countdown;
	__u64 syscalls[KA_MAX][KESTREL_SYSCALL_MAX / 32][32];
	__u64 n_calls_samples;
	__u64 n_calls_sample_misses;
};

/*
 * calls_by_pid's value: syscall exits of one process (tgid) sampled since
 * load (each stands for calls_sample_period calls on average), and its
 * group leader's comm at the last sample.
 */
struct kestrel_proc_calls {
	__u64 samples;
	char comm[KESTREL_COMM_LEN];
};

/*
 * What user space reads records and counters by. Rust checks its generated
 * types against these at build time on every target, so a 32-bit user space
 * (armv7) reads the probe's 64-bit layouts byte for byte: fixed-width
 * fields only, never a long or a pointer.
 */
enum kestrel_layout {
	KL_HDR = sizeof(struct kestrel_hdr),
	KL_TASK = sizeof(struct kestrel_task),
	KL_CLONE = sizeof(struct kestrel_clone),
	KL_EXEC = sizeof(struct kestrel_exec),
	KL_EXEC_DATA = __builtin_offsetof(struct kestrel_exec, data),
	KL_EXIT = sizeof(struct kestrel_exit),
	KL_OPEN = sizeof(struct kestrel_open),
	KL_OPEN_PATH = __builtin_offsetof(struct kestrel_open, path),
	KL_FD = sizeof(struct kestrel_fd),
	KL_SOCKET = sizeof(struct kestrel_socket),
	KL_SOCKADDR = sizeof(struct kestrel_sockaddr),
	KL_SOCKADDR_LADDR = __builtin_offsetof(struct kestrel_sockaddr, laddr),
	KL_GENERIC = sizeof(struct kestrel_generic),
	KL_SYSCALL = sizeof(struct kestrel_syscall),
	KL_SYSCALL_DATA = __builtin_offsetof(struct kestrel_syscall, data),
	KL_RECORD = sizeof(union kestrel_record),
	KL_COUNTERS = sizeof(struct kestrel_counters),
	KL_COUNTERS_SYSCALLS = __builtin_offsetof(struct kestrel_counters, syscalls),
	KL_PROC_CALLS = sizeof(struct kestrel_proc_calls),
	KL_CLOSE_TAIL = sizeof(struct kestrel_close_tail),
	/* The largest ring record: a full stage of small records (a stage is
	 * flushed once it reaches KESTREL_STAGE_FLUSH; an open is the largest
	 * record staged), or one record of the largest type. */
	KL_STAGE = KESTREL_STAGE_FLUSH + sizeof(struct kestrel_open),
};

/*
 * The placeholder helper number of the probe's bpf_rdonly_cast call, which
 * user space turns into that kfunc's call before load (capture/kfunc.rs;
 * why: syscall.h task_from). Never a real helper: if it ever reached the
 * verifier, the load would fail naming it (invalid func unknown#...).
 */
enum kestrel_patch {
	KESTREL_RDONLY_CAST_CALL = 0x6b657374,
};

/*
 * Enums user space needs but no record field names; an unused global of this
 * type puts them into the object's BTF, hence into the generated Rust types.
 */
struct kestrel_abi {
	enum kestrel_record_type record_type;
	enum kestrel_category category;
	enum kestrel_dir dir;
	enum kestrel_handler handler;
	enum kestrel_sel sel;
	enum kestrel_flags flags;
	enum kestrel_limits limits;
	enum kestrel_abi_kind abi_kind;
	enum kestrel_layout layout;
	enum kestrel_patch patch;
};

#endif /* KESTREL_H */
