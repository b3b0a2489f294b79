// SPDX-License-Identifier: GPL-2.0
/*
 * Kestrel's probe. One exit-side dispatcher (sys_exit) reads the syscall
 * number, looks it up in a table user space filled before load and returns
 * at once for anything not selected; selected syscalls get a record built in
 * per-CPU scratch space and copied into one ring buffer. Scheduler
 * tracepoints cover what sys_exit cannot see: the child of a fork on arm64,
 * successful execs (the new image's path is only in linux_binprm), and
 * thread exits. sys_enter is optional: the exit side still has the arguments
 * in the saved registers, so it is attached only for enter-event pairing.
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "kestrel.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20); /* resized by user space before load */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kestrel_counters);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, union kestrel_record);
} scratch SEC(".maps");

const volatile __u16 sys_table[KESTREL_SYSCALL_MAX] = {};
/* Pending bytes at which a record wakes the consumer; below it user space
 * drains on its own timer, so a quiet stream costs no wakeup per record. */
const volatile __u64 wakeup_bytes = 0;

/* Makes the record layouts part of the object's BTF so the skeleton
 * generates their Rust types. Never read. */
union kestrel_record kestrel_layouts_unused;
struct kestrel_abi kestrel_abi_unused;

static __always_inline __u64 sys_nr(struct pt_regs *regs)
{
#if defined(__TARGET_ARCH_x86)
	return regs->orig_ax;
#else
	return (__u64)(__s64)regs->syscallno;
#endif
}

static __always_inline __u64 sys_arg(struct pt_regs *regs, int i)
{
#if defined(__TARGET_ARCH_x86)
	switch (i) {
	case 0: return regs->di;
	case 1: return regs->si;
	case 2: return regs->dx;
	case 3: return regs->r10;
	case 4: return regs->r8;
	default: return regs->r9;
	}
#else
	/* arm64 overwrites x0 with the return value; orig_x0 keeps arg 0. */
	switch (i) {
	case 0: return regs->orig_x0;
	case 1: return regs->regs[1];
	case 2: return regs->regs[2];
	case 3: return regs->regs[3];
	case 4: return regs->regs[4];
	default: return regs->regs[5];
	}
#endif
}

static __always_inline struct kestrel_counters *get_counters(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&counters, &zero);
}

static __always_inline union kestrel_record *get_scratch(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&scratch, &zero);
}

static __always_inline void fill_hdr(struct kestrel_hdr *h, __u16 type, __s16 nr, __s64 ret)
{
	__u64 id = bpf_get_current_pid_tgid();

	h->jiffies = bpf_jiffies64();
	h->tid = (__u32)id;
	h->pid = id >> 32;
	h->type = type;
	h->len = 0;
	h->nr = nr;
	h->flags = 0;
	h->ret = ret;
}

static __always_inline void fill_task(struct kestrel_task *t, struct task_struct *task)
{
	t->ppid = BPF_CORE_READ(task, real_parent, tgid);
	t->uid = BPF_CORE_READ(task, real_cred, uid.val);
	t->gid = BPF_CORE_READ(task, real_cred, gid.val);
	t->old_tid = 0;
	t->start_ns = BPF_CORE_READ(task, start_time);
	BPF_CORE_READ_INTO(&t->comm, task, comm);
}

static __always_inline void count_drop(struct kestrel_counters *c, int cat, int dir)
{
	c->n_drops_buffer_total++;
	if ((unsigned int)cat < KC_MAX && (unsigned int)dir < KD_MAX) {
		__u32 idx = (__u32)cat * KD_MAX + (__u32)dir;

		/* Keep the mask: it is the bound the verifier tracks. */
		idx &= KESTREL_CAT_SLOTS * KD_MAX - 1;
		barrier_var(idx);
		(&c->n_drops_buffer[0][0])[idx & (KESTREL_CAT_SLOTS * KD_MAX - 1)]++;
	} else {
		c->n_drops_bug++;
	}
}

/*
 * Asking the ring how full it is costs ~40 ns here, so each CPU asks on
 * every 64th record only; between asks it adds at most 64 records, far
 * below the threshold.
 */
static __always_inline __u64 wake_flags(struct kestrel_counters *c)
{
	if (!wakeup_bytes)
		return 0;
	if ((c->n_evts & 63) == 0 &&
	    bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/* Copies a variable-size record built in scratch space; every outcome is counted. */
static __always_inline void emit(struct kestrel_counters *c, void *rec, __u64 len, int cat, int dir)
{
	c->n_evts++;
	if (len > sizeof(union kestrel_record)) {
		c->n_drops_scratch_map++;
		return;
	}
	((struct kestrel_hdr *)rec)->len = len;
	if (bpf_ringbuf_output(&events, rec, len, wake_flags(c)))
		count_drop(c, cat, dir);
}

/*
 * Fixed-size records are built in place in the ring buffer: no scratch
 * lookup, no copy. A full ring is counted here; the caller must submit.
 */
static __always_inline void *reserve(struct kestrel_counters *c, __u64 size, int cat, int dir)
{
	void *r;

	c->n_evts++;
	r = bpf_ringbuf_reserve(&events, size, 0);
	if (!r)
		count_drop(c, cat, dir);
	return r;
}

static __always_inline void submit(struct kestrel_counters *c, void *rec, __u64 size)
{
	((struct kestrel_hdr *)rec)->len = size;
	bpf_ringbuf_submit(rec, wake_flags(c));
}

/* Reads a user string; returns the stored length including the NUL. */
static __always_inline __u16 read_user_path(struct kestrel_counters *c, struct kestrel_hdr *h,
					    char *dst, __u64 src)
{
	long n = bpf_probe_read_user_str(dst, KESTREL_PATH_MAX, (const void *)src);

	if (n <= 0) {
		dst[0] = 0;
		h->flags |= KF_PATH_FAULT;
		c->n_drops_page_faults++;
		return 1;
	}
	if (n == KESTREL_PATH_MAX)
		h->flags |= KF_PATH_TRUNC;
	return n & (KESTREL_PATH_MAX - 1 + KESTREL_PATH_MAX);
}

static __always_inline void read_sockaddr(struct kestrel_counters *c, struct kestrel_sockaddr *r,
					  __u64 uaddr)
{
	struct sockaddr_in6 sa = {};

	r->family = 0;
	r->port = 0;
	__builtin_memset(r->addr, 0, sizeof(r->addr));
	if (!uaddr)
		return;
	if (bpf_probe_read_user(&sa, sizeof(sa), (const void *)uaddr)) {
		/* An AF_INET address may end before a sockaddr_in6 would. */
		if (bpf_probe_read_user(&sa, sizeof(struct sockaddr_in), (const void *)uaddr)) {
			r->hdr.flags |= KF_PATH_FAULT;
			c->n_drops_page_faults++;
			return;
		}
	}
	r->family = sa.sin6_family;
	r->port = __builtin_bswap16(sa.sin6_port);
	if (sa.sin6_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&sa;

		__builtin_memcpy(r->addr, &in->sin_addr, 4);
	} else if (sa.sin6_family == AF_INET6) {
		__builtin_memcpy(r->addr, sa.sin6_addr, 16);
	}
}

static __always_inline void emit_task_record(struct kestrel_counters *c, __u16 type, __s16 nr,
					     __s64 ret, __u64 clone_flags, struct task_struct *task,
					     int cat)
{
	struct kestrel_clone *r = reserve(c, sizeof(*r), cat, KD_EXIT);

	if (!r)
		return;
	fill_hdr(&r->hdr, type, nr, ret);
	fill_task(&r->task, task);
	r->clone_flags = clone_flags;
	if (clone_flags & CLONE_THREAD)
		r->hdr.flags |= KF_CLONE_THREAD;
	submit(c, r, sizeof(*r));
}

static __always_inline void handle_clone(struct kestrel_counters *c, struct pt_regs *regs, __s16 nr,
					 long ret, int handler, int cat)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 flags = 0;

	if (handler == KH_CLONE) {
		flags = sys_arg(regs, 0);
	} else if (handler == KH_CLONE3) {
		if (bpf_probe_read_user(&flags, sizeof(flags), (const void *)sys_arg(regs, 0)))
			flags = 0;
	}
	if (ret == 0) {
		/* x86_64: the new child returns through sys_exit. */
		emit_task_record(c, KR_CLONE_CHILD, nr, 0, flags, task, cat);
		return;
	}
	emit_task_record(c, KR_CLONE, nr, ret, flags, task, cat);
}

static __always_inline void handle_open(struct kestrel_counters *c, struct pt_regs *regs, __s16 nr,
					long ret, int handler, int cat)
{
	union kestrel_record *r = get_scratch();
	struct kestrel_open *o;
	__u64 path = 0;

	if (!r) {
		c->n_drops_bug++;
		return;
	}
	o = &r->open;
	fill_hdr(&o->hdr, KR_OPEN, nr, ret);
	o->dirfd = -100; /* AT_FDCWD */
	o->flags = 0;
	o->mode = 0;
	switch (handler) {
	case KH_OPEN:
		path = sys_arg(regs, 0);
		o->flags = sys_arg(regs, 1);
		o->mode = sys_arg(regs, 2);
		break;
	case KH_OPENAT:
		o->dirfd = sys_arg(regs, 0);
		path = sys_arg(regs, 1);
		o->flags = sys_arg(regs, 2);
		o->mode = sys_arg(regs, 3);
		break;
	case KH_OPENAT2: {
		__u64 how[2] = {};

		o->dirfd = sys_arg(regs, 0);
		path = sys_arg(regs, 1);
		if (bpf_probe_read_user(how, sizeof(how), (const void *)sys_arg(regs, 2)) == 0) {
			o->flags = how[0];
			o->mode = how[1];
		}
		break;
	}
	case KH_CREAT:
		path = sys_arg(regs, 0);
		o->flags = 01 | 0100 | 01000; /* O_WRONLY|O_CREAT|O_TRUNC */
		o->mode = sys_arg(regs, 1);
		break;
	default: /* open_by_handle_at */
		o->dirfd = sys_arg(regs, 0);
		o->flags = sys_arg(regs, 2);
		break;
	}
	if (o->flags & O_CLOEXEC_GENERIC)
		o->hdr.flags |= KF_CLOEXEC;
	if (path) {
		o->path_len = read_user_path(c, &o->hdr, o->path, path);
	} else {
		o->path_len = 1;
		o->path[0] = 0;
	}
	emit(c, o, __builtin_offsetof(struct kestrel_open, path) + o->path_len, cat, KD_EXIT);
}

static __always_inline void handle_fd(struct kestrel_counters *c, struct pt_regs *regs, __s16 nr,
				      long ret, int handler, int cat)
{
	struct kestrel_fd *f = reserve(c, sizeof(*f), cat, KD_EXIT);

	if (!f)
		return;
	fill_hdr(&f->hdr, handler == KH_CLOSE ? KR_CLOSE : KR_DUP, nr, ret);
	f->fd = (__s32)sys_arg(regs, 0);
	f->flags = handler == KH_DUP3 ? sys_arg(regs, 2) : 0;
	f->pad = 0;
	if (f->flags & O_CLOEXEC_GENERIC)
		f->hdr.flags |= KF_CLOEXEC;
	submit(c, f, sizeof(*f));
}

static __always_inline void handle_socket(struct kestrel_counters *c, struct pt_regs *regs, __s16 nr,
					  long ret, int cat)
{
	struct kestrel_socket *r = reserve(c, sizeof(*r), cat, KD_EXIT);

	if (!r)
		return;
	fill_hdr(&r->hdr, KR_SOCKET, nr, ret);
	r->domain = sys_arg(regs, 0);
	r->type = sys_arg(regs, 1);
	r->protocol = sys_arg(regs, 2);
	r->pad = 0;
	if (r->type & SOCK_CLOEXEC)
		r->hdr.flags |= KF_CLOEXEC;
	submit(c, r, sizeof(*r));
}

static __always_inline void handle_sockaddr(struct kestrel_counters *c, struct pt_regs *regs,
					    __s16 nr, long ret, int handler, int cat)
{
	struct kestrel_sockaddr *r = reserve(c, sizeof(*r), cat, KD_EXIT);

	if (!r)
		return;
	fill_hdr(&r->hdr, handler == KH_CONNECT ? KR_CONNECT : KR_ACCEPT, nr, ret);
	r->fd = (__s32)sys_arg(regs, 0);
	r->flags = handler == KH_ACCEPT4 ? sys_arg(regs, 3) : 0;
	if (r->flags & SOCK_CLOEXEC)
		r->hdr.flags |= KF_CLOEXEC;
	/* A failed accept has no peer to read; a failed connect still names its target. */
	read_sockaddr(c, r, (handler == KH_CONNECT || ret >= 0) ? sys_arg(regs, 1) : 0);
	submit(c, r, sizeof(*r));
}

static __always_inline void handle_generic(struct kestrel_counters *c, struct pt_regs *regs,
					   __s16 nr, long ret, __u16 type, int cat, int dir)
{
	struct kestrel_generic *g = reserve(c, sizeof(*g), cat, dir);

	if (!g)
		return;
	fill_hdr(&g->hdr, type, nr, ret);
	g->args[0] = sys_arg(regs, 0);
	g->args[1] = sys_arg(regs, 1);
	g->args[2] = sys_arg(regs, 2);
	g->args[3] = sys_arg(regs, 3);
	g->args[4] = sys_arg(regs, 4);
	g->args[5] = sys_arg(regs, 5);
	submit(c, g, sizeof(*g));
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit, struct pt_regs *regs, long ret)
{
	__u64 nr = sys_nr(regs);
	struct kestrel_counters *c;
	__u16 sel;
	int handler, cat;

	if (nr >= KESTREL_SYSCALL_MAX)
		return 0;
	sel = sys_table[nr];
	if (!(sel & KSEL_EXIT))
		return 0;
	c = get_counters();
	if (!c)
		return 0;
	handler = sel >> KSEL_HANDLER_SHIFT;
	cat = (sel >> KSEL_CAT_SHIFT) & KSEL_CAT_MASK;
	switch (handler) {
	case KH_CLONE:
	case KH_CLONE3:
	case KH_FORK:
		handle_clone(c, regs, nr, ret, handler, cat);
		break;
	case KH_EXECVE:
		/* Successful execs come from sched_process_exec on every arch. */
		if (ret != 0)
			handle_generic(c, regs, nr, ret, KR_EXECVE, cat, KD_EXIT);
		break;
	case KH_OPEN:
	case KH_OPENAT:
	case KH_OPENAT2:
	case KH_CREAT:
	case KH_OPEN_BY_HANDLE:
		handle_open(c, regs, nr, ret, handler, cat);
		break;
	case KH_CLOSE:
	case KH_DUP:
	case KH_DUP2:
	case KH_DUP3:
		handle_fd(c, regs, nr, ret, handler, cat);
		break;
	case KH_SOCKET:
		handle_socket(c, regs, nr, ret, cat);
		break;
	case KH_CONNECT:
	case KH_ACCEPT:
	case KH_ACCEPT4:
		handle_sockaddr(c, regs, nr, ret, handler, cat);
		break;
	default:
		handle_generic(c, regs, nr, ret, KR_GENERIC, cat, KD_EXIT);
		break;
	}
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter, struct pt_regs *regs, long id)
{
	struct kestrel_counters *c;
	__u16 sel;

	if ((__u64)id >= KESTREL_SYSCALL_MAX)
		return 0;
	sel = sys_table[id];
	if (!(sel & KSEL_ENTER))
		return 0;
	c = get_counters();
	if (!c)
		return 0;
	handle_generic(c, regs, id, 0, KR_ENTER, (sel >> KSEL_CAT_SHIFT) & KSEL_CAT_MASK, KD_ENTER);
	return 0;
}

static __always_inline bool is_kthread(struct task_struct *task)
{
	return BPF_CORE_READ(task, flags) & PF_KTHREAD;
}

/* arm64 (and other arches) never run sys_exit for a new child. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(sched_p_fork, struct task_struct *parent, struct task_struct *child)
{
	struct kestrel_counters *c;
	struct kestrel_clone *r;
	__u32 tid, pid;

	if (is_kthread(child))
		return 0;
	c = get_counters();
	if (!c)
		return 0;
	r = reserve(c, sizeof(*r), KC_CLONE_FORK, KD_EXIT);
	if (!r)
		return 0;
	tid = BPF_CORE_READ(child, pid);
	pid = BPF_CORE_READ(child, tgid);
	fill_hdr(&r->hdr, KR_CLONE_CHILD, -1, 0);
	r->hdr.tid = tid;
	r->hdr.pid = pid;
	fill_task(&r->task, child);
	r->clone_flags = tid != pid ? CLONE_THREAD : 0;
	if (tid != pid)
		r->hdr.flags |= KF_CLONE_THREAD;
	submit(c, r, sizeof(*r));
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_p_exec, struct task_struct *p, int old_pid, struct linux_binprm *bprm)
{
	struct kestrel_counters *c;
	union kestrel_record *r;
	struct kestrel_exec *e;
	const char *filename;
	long n;

	c = get_counters();
	r = get_scratch();
	if (!c)
		return 0;
	if (!r) {
		c->n_drops_bug++;
		return 0;
	}
	e = &r->exec;
	fill_hdr(&e->hdr, KR_EXECVE, -1, 0);
	fill_task(&e->task, p);
	e->task.old_tid = old_pid;
	filename = BPF_CORE_READ(bprm, filename);
	n = bpf_probe_read_kernel_str(e->path, KESTREL_PATH_MAX, filename);
	if (n <= 0) {
		e->path[0] = 0;
		n = 1;
		e->hdr.flags |= KF_PATH_FAULT;
		c->n_drops_page_faults++;
	} else if (n == KESTREL_PATH_MAX) {
		e->hdr.flags |= KF_PATH_TRUNC;
	}
	e->path_len = n & (2 * KESTREL_PATH_MAX - 1);
	emit(c, e, __builtin_offsetof(struct kestrel_exec, path) + e->path_len, KC_EXECVE, KD_EXIT);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(sched_proc_exit, struct task_struct *p)
{
	struct kestrel_counters *c;
	struct kestrel_exit *r;

	if (is_kthread(p))
		return 0;
	c = get_counters();
	if (!c)
		return 0;
	r = reserve(c, sizeof(*r), KC_PROC_EXIT, KD_EXIT);
	if (!r)
		return 0;
	fill_hdr(&r->hdr, KR_PROC_EXIT, -1, 0);
	r->exit_code = BPF_CORE_READ(p, exit_code);
	r->pad = 0;
	/* signal->live already dropped for this thread: 0 means the group is gone. */
	if (BPF_CORE_READ(p, signal, live.counter) == 0)
		r->hdr.flags |= KF_GROUP_DEAD;
	submit(c, r, sizeof(*r));
	return 0;
}
