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
#include <bpf/bpf_core_read.h>
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
	__u64 copy[CALL_REGS] = {};
	struct call k = { .regs = regs, .btf = false, .r = copy };

	if (call_start(&k) < KESTREL_SYSCALL_MAX && k.compat)
		compat_seen++;
	return 0;
}
