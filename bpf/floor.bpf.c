// SPDX-License-Identifier: GPL-2.0
/*
 * The floor for benchmarks: a program that does nothing, attached to the
 * same tracepoint as Kestrel's dispatcher. Its per-call cost is what merely
 * attaching costs; Kestrel's figures are reported as ratios to it. Never
 * loaded by the agent itself.
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "core_read.h"
#include "kestrel.h"
#include "syscall.h"

char LICENSE[] SEC("license") = "GPL";

/* Written so the compiler keeps the check; never read. */
__u64 compat_seen = 0;

SEC("tp_btf/sys_exit")
int BPF_PROG(floor_sys_exit, struct pt_regs *regs, long ret)
{
	return 0;
}

/* The floor plus the probe's first step on every syscall (number and ABI,
 * compat check included): the difference is what that step costs every
 * syscall on the machine, traced or not. Writes only for a 32-bit call. */
SEC("tp_btf/sys_exit")
int BPF_PROG(floor_compat, struct pt_regs *regs, long ret)
{
	__u64 copy[CALL_REGS] = {};
	struct call k = { .regs = regs, .btf = true, .r = copy };

	if (call_start(&k) < KESTREL_SYSCALL_MAX && k.compat)
		compat_seen++;
	return 0;
}

/* The same step on the raw_tp path: one checked copy from pt_regs. */
SEC("raw_tp/sys_exit")
int BPF_PROG(floor_raw_step, struct pt_regs *regs, long ret)
{
	__u64 copy[CALL_REGS];
	struct call k = { .regs = regs, .btf = false, .r = copy };

	if (call_start(&k) < KESTREL_SYSCALL_MAX && k.compat)
		compat_seen++;
	return 0;
}

/*
 * Ways to learn the number on every syscall (issue 22), each alone on the
 * same calls: a raw_tp no-op; a classic tracepoint no-op and one reading the
 * number from its record (its run time leaves out the perf record built
 * before the program runs); checked copies of 8 bytes (orig_ax) and of the
 * 112 from bp to cs (the probe before issue 22). floor_raw_step above is the
 * probe's own: 88 bytes, r10 to cs (32, di to cs, until 2026-12-05).
 */
SEC("raw_tp/sys_exit")
int BPF_PROG(floor_raw_noop, struct pt_regs *regs, long ret)
{
	return 0;
}

/* include/trace/events/syscalls.h: sys_exit's record after trace_entry. */
struct tp_sys_exit {
	__u64 ent;
	long id;
	long ret;
};

SEC("tracepoint/raw_syscalls/sys_exit")
int floor_tp_noop(struct tp_sys_exit *ctx)
{
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_exit")
int floor_tp_id(struct tp_sys_exit *ctx)
{
	if ((__u64)ctx->id < KESTREL_SYSCALL_MAX && ctx->ret == 0x7fffffff)
		compat_seen++;
	return 0;
}

#if defined(__TARGET_ARCH_x86)
SEC("raw_tp/sys_exit")
int BPF_PROG(floor_raw_nr, struct pt_regs *regs, long ret)
{
	__u64 nr;

	if (!bpf_probe_read_kernel(&nr, sizeof(nr),
				   __builtin_preserve_access_index(&regs->orig_ax)) &&
	    nr < KESTREL_SYSCALL_MAX && ret == 0x7fffffff)
		compat_seen++;
	return 0;
}

SEC("raw_tp/sys_exit")
int BPF_PROG(floor_raw_full, struct pt_regs *regs, long ret)
{
	__u64 r[XR_N];

	if (!bpf_probe_read_kernel(r, sizeof(r), __builtin_preserve_access_index(&regs->bp)) &&
	    r[XR_ORIG_AX] < KESTREL_SYSCALL_MAX && (r[XR_CS] & 0xffff) == USER32_CS)
		compat_seen++;
	return 0;
}

/*
 * The helpers a traced tp_btf call cannot do without (issue 22), each alone
 * on every call: the current task and its TS_COMPAT word (call_confirm_abi),
 * the ids as raw_tp gets them, and one 64-byte user copy, as an open reads
 * its path (here from the user's code at ip, always mapped). Their sum with
 * the floor is what any exact probe pays for a traced call on this host.
 */
SEC("tp_btf/sys_exit")
int BPF_PROG(floor_task, struct pt_regs *regs, long ret)
{
	struct task_struct *t = bpf_get_current_task_btf();

	if (t->thread_info.status & TS_COMPAT)
		compat_seen++;
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(floor_ids, struct pt_regs *regs, long ret)
{
	if (!bpf_get_current_pid_tgid())
		compat_seen++;
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(floor_user64, struct pt_regs *regs, long ret)
{
	__u64 w[8];

	if (!bpf_probe_read_user(w, sizeof(w), (void *)regs->ip) && !(w[0] | w[7]))
		compat_seen++;
	return 0;
}
#endif
