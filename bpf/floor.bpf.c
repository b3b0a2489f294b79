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

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/sys_exit")
int BPF_PROG(floor_sys_exit, struct pt_regs *regs, long ret)
{
	return 0;
}
