/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The probe's maps and the globals user space sets before load (.rodata) or
 * reads while it runs (.bss), in one place as modern_bpf keeps them
 * (driver/modern_bpf/maps/maps.h). One translation unit (kestrel.bpf.c)
 * includes it, so the definitions live here.
 */
#ifndef KESTREL_MAPS_H
#define KESTREL_MAPS_H

#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include "kestrel.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20); /* resized by user space before load */
} events SEC(".maps");

/* Kernels before 5.8 have no ring buffer: records go to per-CPU perf
 * buffers instead (use_perf). User space creates only the map in use. */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kestrel_counters);
} counters SEC(".maps");

/* One record being built, and room to assemble a path backwards (exec's
 * exe and cwd walks). */
struct scratch_space {
	union kestrel_record rec;
	char path[2 * KESTREL_PATH_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch_space);
} scratch SEC(".maps");

/* Records dropped per process (tgid); LRU so a burst of new pids evicts the
 * oldest. Sized by user space (the culprit capacity). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} drops_by_pid SEC(".maps");

/* Sampled syscall exits per process (tgid), every syscall of the machine,
 * traced or not (see sample_call); LRU, sized by user space (the culprit
 * capacity). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct kestrel_proc_calls);
} calls_by_pid SEC(".maps");

/* The per-CPU stage of small records (bpf/stage.h). */
#define STAGE_SLOTS (KESTREL_CAT_SLOTS * KD_MAX)
/* Runs of one process's records a stage keeps apart for drops_by_pid. */
#define STAGE_RUNS 4

/* Records of one CPU not yet in the ring, 8-aligned, back to back. */
struct stage {
	__u32 len;
	__u32 busy;
	/* The task sched_switch last switched to on this CPU, the running one,
	 * and a syscall's pt_regs minus its task's stack, learned from this
	 * CPU's first selected call (switched_task in kestrel.bpf.c). In the
	 * line a staged record reads anyway: the mix evicts the probe's data
	 * between two calls, and a line of their own cost a miss each. */
	__u64 task;
	__u64 regs_from_stack;
	__u64 since; /* jiffies of the first record staged */
	__u32 last;  /* offset of the last record staged, while len > 0 */
	__u32 pad;
	/* Staged records by category and direction: a send the ring refuses
	 * counts each as a drop in its own bucket. */
	__u16 n[STAGE_SLOTS];
	/* Whose records, as runs of one process each (culprit counters on):
	 * a refused stage counts each run under its process in drops_by_pid.
	 * Past STAGE_RUNS runs, records join the last one (an estimate, as
	 * that table is; walking the records instead made the verifier take
	 * 0.2 s more at every start). */
	__u32 run_pid[STAGE_RUNS];
	__u16 run_n[STAGE_RUNS];
	__u32 runs;
	char buf[KL_STAGE];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stage);
} stage SEC(".maps");

const volatile __u32 call_table[KESTREL_SYSCALL_MAX] = {}; /* kestrel.h kestrel_sel */
/* Culprit counters: per-syscall counts on every exit, drops by process.
 * Off, the verifier prunes their code: untraced syscalls cost nothing more. */
const volatile bool count_syscalls = false;
const volatile bool count_drops_by_pid = false;
/* Mean syscall exits per CPU between two per-process samples, a power of
 * two; 0 = no sampling (the verifier prunes it). */
const volatile __u32 calls_sample_period = 0;
/* Rules are loaded: a failed open's path is read too (Falco's fd.name on a
 * failed open comes from the path argument); off, the verifier prunes it. */
const volatile bool failed_open_paths = false;
/* Pending bytes at which a record wakes the consumer; below it user space
 * drains on its own timer, so a quiet stream costs no wakeup per record. */
const volatile __u64 wakeup_bytes = 0;
/* Records go to perf_events, not the ring. A constant to the verifier: it
 * prunes the path not taken, so the ring path runs none of it, and a kernel
 * without ring buffers never sees their helpers. */
const volatile bool use_perf = false;
/* Small records are staged per CPU and sent in groups (bpf/stage.h), a
 * group once it holds stage_bytes (at most KESTREL_STAGE_FLUSH; user space
 * keeps it to a sixteenth of the ring, so a small ring still takes many). */
const volatile bool use_stage = false;
const volatile __u32 stage_bytes = KESTREL_STAGE_FLUSH;
/* Records between two fill checks, minus one (a power of two minus one):
 * user space derives it from the ring size so that at most an eighth of
 * the ring fills between checks; a 4 KiB ring checks every record. */
const volatile __u32 wake_check_mask = 63;
/* Set by a drop: the next record that fits wakes the consumer at once
 * instead of waiting for the drain timer while the ring stays full. */
__u32 drop_wake = 0;
/* The producer position at the last fill wakeup (32 bits: a 32-bit kernel's
 * positions wrap there). Until the consumer has read past it, it is awake
 * or about to be, and another wakeup buys nothing but its cost: an
 * irq_work, a self-IPI, which is a VM exit under a hypervisor. */
__u32 woken_at = 0;

/* Makes the record layouts part of the object's BTF so the skeleton
 * generates their Rust types. Never read. */
union kestrel_record kestrel_layouts_unused;
struct kestrel_abi kestrel_abi_unused;
struct kestrel_proc_calls kestrel_proc_calls_unused;
struct kestrel_close_tail kestrel_close_tail_unused;

#endif /* KESTREL_MAPS_H */
