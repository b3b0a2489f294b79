/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One small handler per syscall family, shared by both attach paths and
 * both ABIs: each reads only what the state tables use and emits one record.
 * The family comes from the handler bits user space wrote into the table.
 */
#ifndef KESTREL_HANDLERS_H
#define KESTREL_HANDLERS_H

#include "emit.h"
#include "stage.h"
#include "syscall.h"

/* The caller as bpf_get_current_pid_tgid() has it: tgid << 32 | tid. */
static __always_inline __u64 call_id(const struct call *k)
{
	if (k->btf && k->task)
		return (__u64)(__u32)k->task->tgid << 32 | (__u32)k->task->pid;
	return bpf_get_current_pid_tgid();
}

/* A syscall record's header: the caller's identity plus the call's ABI. */
static __always_inline void fill_call_hdr_as(struct kestrel_hdr *h, __u16 type,
					     const struct call *k, __u64 id)
{
	fill_hdr_of(h, type, k->nr, k->ret, id);
	if (k->compat)
		h->flags |= KF_COMPAT;
}

static __always_inline void fill_call_hdr(struct kestrel_hdr *h, __u16 type, const struct call *k)
{
	fill_call_hdr_as(h, type, k, call_id(k));
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

static __always_inline void handle_clone(struct kestrel_counters *c, const struct call *k)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	bool child = k->ret == 0;
	struct kestrel_clone *r;
	__u64 flags = 0;

	/* The child is a thread iff it joined its parent's group (tid != tgid),
	 * as on_fork decides. Its clone3 args are not read: they sit in the
	 * parent's memory, which pthread_create's caller has often reused by
	 * the time the new thread runs, so a thread read as a process and its
	 * group's fd table was replaced by the grandparent's. */
	if (k->handler == KH_CLONE && !child) {
		flags = sys_arg(k, 0);
	} else if (k->handler == KH_CLONE3 && !child) {
		if (bpf_probe_read_user(&flags, sizeof(flags), (const void *)sys_arg(k, 0)))
			flags = 0;
	}
	c->n_evts_no_enter += child;
	r = reserve(c, sizeof(*r), k->cat, KD_EXIT);
	if (!r) {
		c->n_drops_no_enter += child;
		return;
	}
	/* x86_64: the new child returns through sys_exit with 0. */
	fill_call_hdr(&r->hdr, child ? KR_CLONE_CHILD : KR_CLONE, k);
	fill_task(&r->task, task);
	if (child) {
		fill_task_session(&r->task, task);
		if (r->hdr.tid != r->hdr.pid)
			flags = CLONE_THREAD;
	}
	if (flags & CLONE_THREAD)
		r->hdr.flags |= KF_CLONE_THREAD;
	if (submit(k->ctx, c, r, sizeof(*r), k->cat, KD_EXIT))
		c->n_drops_no_enter += child;
}

/*
 * Built in place: no scratch lookup, no copy. Only a successful open reads
 * its path (the user string copy is most of a traced open's cost), unless
 * rules are loaded (failed_open_paths): their fd.name needs it.
 */
static __always_inline void handle_open(struct kestrel_counters *c, const struct call *k)
{
	struct stage *st;
	struct kestrel_open *o = take(c, &st);
	__u64 path = 0, size;

	if (!o)
		return;
	fill_call_hdr(&o->hdr, KR_OPEN, k);
	o->flags = 0;
	o->mode = 0;
	o->pad = 0;
	o->pad2 = 0;
	switch (k->handler) {
	case KH_OPEN:
		path = sys_arg(k, 0);
		o->flags = sys_arg(k, 1);
		o->mode = sys_arg(k, 2);
		break;
	case KH_OPENAT:
		path = sys_arg(k, 1);
		o->flags = sys_arg(k, 2);
		o->mode = sys_arg(k, 3);
		break;
	case KH_OPENAT2: {
		__u64 how[2] = {};

		path = sys_arg(k, 1);
		if (bpf_probe_read_user(how, sizeof(how), (const void *)sys_arg(k, 2)) == 0) {
			o->flags = how[0];
			o->mode = how[1];
		}
		break;
	}
	case KH_CREAT:
		path = sys_arg(k, 0);
		o->flags = 01 | 0100 | 01000; /* O_WRONLY|O_CREAT|O_TRUNC */
		o->mode = sys_arg(k, 1);
		break;
	default: /* open_by_handle_at */
		o->flags = sys_arg(k, 2);
		break;
	}
	if (o->flags & O_CLOEXEC_GENERIC)
		o->hdr.flags |= KF_CLOEXEC;
	if (path && (k->ret >= 0 || failed_open_paths)) {
		o->path_len = read_user_path(c, &o->hdr, o->path, KESTREL_OPEN_PATH_MAX, path);
	} else {
		o->path_len = 1;
		o->path[0] = 0;
	}
	/* Only the used part of the path goes. */
	size = __builtin_offsetof(struct kestrel_open, path) + o->path_len;
	put(k->ctx, c, st, o, size, k->cat, KD_EXIT);
}

static __always_inline void handle_fd(struct kestrel_counters *c, const struct call *k)
{
	__u64 id = call_id(k);
	struct kestrel_fd *f;
	struct stage *st;

	if (k->handler == KH_CLOSE && staging &&
	    stage_close_tail(c, id, (__s32)sys_arg(k, 0), k->nr, k->compat ? KF_COMPAT : 0, k->ret,
			     k->cat))
		return;
	f = take(c, &st);
	if (!f)
		return;
	fill_call_hdr_as(&f->hdr, k->handler == KH_CLOSE ? KR_CLOSE : KR_DUP, k, id);
	f->fd = (__s32)sys_arg(k, 0);
	f->flags = k->handler == KH_DUP3 ? sys_arg(k, 2) : 0;
	f->pad = 0;
	if (f->flags & O_CLOEXEC_GENERIC)
		f->hdr.flags |= KF_CLOEXEC;
	put(k->ctx, c, st, f, sizeof(*f), k->cat, KD_EXIT);
}

static __always_inline void handle_socket(struct kestrel_counters *c, const struct call *k)
{
	struct stage *st;
	struct kestrel_socket *r = take(c, &st);

	if (!r)
		return;
	fill_call_hdr(&r->hdr, KR_SOCKET, k);
	r->domain = sys_arg(k, 0);
	r->type = sys_arg(k, 1);
	r->protocol = sys_arg(k, 2);
	r->pad = 0;
	if (r->type & SOCK_CLOEXEC)
		r->hdr.flags |= KF_CLOEXEC;
	put(k->ctx, c, st, r, sizeof(*r), k->cat, KD_EXIT);
}

/*
 * The kernel socket behind fd in the caller's table, or NULL: the walk of
 * libs' extract__file_struct_from_fd. A file is taken for a socket only if
 * its struct socket points back at it: the fd may have been closed and
 * reused by another thread since the call returned.
 */
static __always_inline struct sock *fd_sock(long fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds, *f;
	struct socket *sock;
	kword_t fw = 0;

	if (!fdt || fd < 0 || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (!fds || bpf_probe_read_kernel(&fw, sizeof(fw), (kword_t *)fds + fd) || !fw)
		return NULL;
	f = (struct file *)(__u64)fw;
	sock = BPF_CORE_READ(f, private_data);
	if (!sock || BPF_CORE_READ(sock, file) != f)
		return NULL;
	return BPF_CORE_READ(sock, sk);
}

/* An IP socket's address (local or peer end) into addr; false otherwise. */
static __always_inline bool read_sk_addr(struct sock *sk, __u16 family, __u8 *addr, bool peer)
{
	__be32 a;

	if (family == AF_INET) {
		a = peer ? BPF_CORE_READ(sk, __sk_common.skc_daddr) :
			   BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__builtin_memcpy(addr, &a, 4);
		return true;
	}
	if (family != AF_INET6 || !bpf_core_field_exists(sk->__sk_common.skc_v6_rcv_saddr))
		return false;
	if (peer)
		bpf_core_read(addr, 16, &sk->__sk_common.skc_v6_daddr);
	else
		bpf_core_read(addr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
	return true;
}

/* The local end from the kernel socket (the user's buffers only hold the
 * peer); an accept's peer too when the caller gave no buffer
 * (accept(fd, NULL, NULL)). */
static __always_inline void read_sock_ends(struct kestrel_sockaddr *r, long fd, bool accept)
{
	struct sock *sk = fd_sock(fd);
	__u16 family;

	if (!sk)
		return;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (!read_sk_addr(sk, family, r->laddr, false))
		return;
	r->lfamily = family;
	r->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (accept && r->family == 0 && read_sk_addr(sk, family, r->addr, true)) {
		r->family = family;
		r->port = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	}
}

static __always_inline void handle_sockaddr(struct kestrel_counters *c, const struct call *k)
{
	struct kestrel_sockaddr *r = reserve(c, sizeof(*r), k->cat, KD_EXIT);
	bool connect = k->handler == KH_CONNECT;

	if (!r)
		return;
	fill_call_hdr(&r->hdr, connect ? KR_CONNECT : KR_ACCEPT, k);
	r->fd = (__s32)sys_arg(k, 0);
	r->flags = k->handler == KH_ACCEPT4 ? sys_arg(k, 3) : 0;
	if (r->flags & SOCK_CLOEXEC)
		r->hdr.flags |= KF_CLOEXEC;
	/* A failed accept has no peer to read; a failed connect still names its target. */
	read_sockaddr(c, r, (connect || k->ret >= 0) ? sys_arg(k, 1) : 0);
	r->lfamily = 0;
	r->lport = 0;
	r->pad = 0;
	__builtin_memset(r->laddr, 0, sizeof(r->laddr));
	/* A non-blocking connect in progress has its local port already. */
	if (connect && (k->ret == 0 || k->ret == -EINPROGRESS))
		read_sock_ends(r, r->fd, false);
	else if (!connect && k->ret >= 0)
		read_sock_ends(r, k->ret, true);
	submit(k->ctx, c, r, sizeof(*r), k->cat, KD_EXIT);
}

static __always_inline void handle_generic(struct kestrel_counters *c, const struct call *k,
					   __u16 type, int dir)
{
	struct stage *st;
	struct kestrel_generic *g = take(c, &st);

	if (!g)
		return;
	fill_call_hdr(&g->hdr, type, k);
	put(k->ctx, c, st, g, sizeof(*g), k->cat, dir);
}

static __always_inline void fill_args(__u64 *a, const struct call *k)
{
	a[0] = sys_arg(k, 0);
	a[1] = sys_arg(k, 1);
	a[2] = sys_arg(k, 2);
	a[3] = sys_arg(k, 3);
	a[4] = sys_arg(k, 4);
	a[5] = sys_arg(k, 5);
}

/*
 * KR_SYSCALL: without strings built in place; with strings in scratch space
 * and sent trimmed. Strings are read whatever the result: a failed unlink
 * still names its path.
 */
static __always_inline void handle_syscall(struct kestrel_counters *c, const struct call *k)
{
	const __u32 fixed = __builtin_offsetof(struct kestrel_syscall, data);
	struct kestrel_syscall *r;
	struct scratch_space *s;
	__u64 p0, p1 = 0;
	__u32 n0, n1 = 0;

	if (k->handler == KH_ARGS) {
		struct stage *st;

		r = take(c, &st);
		if (!r)
			return;
		fill_call_hdr(&r->hdr, KR_SYSCALL, k);
		fill_args(r->args, k);
		r->s0_len = 0;
		r->s1_len = 0;
		r->pad = 0;
		put(k->ctx, c, st, r, fixed, k->cat, KD_EXIT);
		return;
	}
	s = get_scratch(c);
	if (!s)
		return;
	r = &s->rec.syscall;
	fill_call_hdr(&r->hdr, KR_SYSCALL, k);
	fill_args(r->args, k);
	r->pad = 0;
	/* clang-format off */
	switch (k->handler) {
	case KH_STR_A0: p0 = r->args[0]; break;
	case KH_STR_A1: p0 = r->args[1]; break;
	case KH_STR_A0_A1: p0 = r->args[0]; p1 = r->args[1]; break;
	case KH_STR_A0_A2: p0 = r->args[0]; p1 = r->args[2]; break;
	default: p0 = r->args[1]; p1 = r->args[3]; break;
	}
	/* clang-format on */
	n0 = read_user_str(&r->hdr, r->data, KESTREL_PATH_MAX, p0, KF_PATH_FAULT, KF_PATH_TRUNC,
			   false);
	if (k->handler >= KH_STR_A0_A1)
		n1 = read_user_str(&r->hdr, r->data + n0, KESTREL_PATH_MAX, p1, KF_PATH1_FAULT,
				   KF_PATH1_TRUNC, false);
	r->s0_len = n0;
	r->s1_len = n1;
	/* Once per record, however many of its strings failed. */
	if (r->hdr.flags & (KF_PATH_FAULT | KF_PATH1_FAULT))
		c->n_drops_page_faults++;
	emit(k->ctx, c, r, fixed + n0 + n1, k->cat, KD_EXIT);
}

static __always_inline void dispatch_exit(struct kestrel_counters *c, const struct call *k)
{
	switch (k->handler) {
	case KH_CLONE:
	case KH_CLONE3:
	case KH_FORK:
		handle_clone(c, k);
		break;
	case KH_EXECVE:
		/* Successful execs come from sched_process_exec on every arch. */
		if (k->ret != 0)
			handle_generic(c, k, KR_EXECVE, KD_EXIT);
		break;
	case KH_OPEN:
	case KH_OPENAT:
	case KH_OPENAT2:
	case KH_CREAT:
	case KH_OPEN_BY_HANDLE:
		handle_open(c, k);
		break;
	case KH_CLOSE:
	case KH_DUP:
	case KH_DUP2:
	case KH_DUP3:
		handle_fd(c, k);
		break;
	case KH_SOCKET:
		handle_socket(c, k);
		break;
	case KH_CONNECT:
	case KH_ACCEPT:
	case KH_ACCEPT4:
		handle_sockaddr(c, k);
		break;
	case KH_ARGS:
	case KH_STR_A0:
	case KH_STR_A1:
	case KH_STR_A0_A1:
	case KH_STR_A0_A2:
	case KH_STR_A1_A3:
		handle_syscall(c, k);
		break;
	default:
		handle_generic(c, k, KR_GENERIC, KD_EXIT);
		break;
	}
}

#endif /* KESTREL_HANDLERS_H */
