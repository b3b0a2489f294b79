/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One syscall as the exit (or enter) tracepoint sees it, and how to read its
 * number and arguments on either attach path and either ABI.
 *
 * `btf` is a compile-time constant per entry point: tp_btf programs get a
 * BTF-typed pt_regs the verifier lets them dereference; raw_tp programs get
 * a plain number and must copy through bpf_probe_read_kernel (BPF_CORE_READ,
 * still relocated by CO-RE). Handlers are always inlined, so each entry
 * point compiles only its own branch.
 *
 * `compat` marks a 32-bit syscall. Its number belongs to the i386 or ARM
 * EABI table, never to the 64-bit one, and on x86 its arguments sit in
 * other registers. On a 32-bit ARM kernel EABI is native, and `compat`
 * marks an ARM-private call (arm_syscall_nr). Settled before a table entry is used, as
 * falcosecurity/libs does in driver/modern_bpf/programs/attached/
 * dispatchers/syscall_exit.bpf.c (sys_exit, through bpf_in_ia32_syscall()).
 */
#ifndef KESTREL_SYSCALL_H
#define KESTREL_SYSCALL_H

#include "kernel_types.h"
#include "kestrel.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "core_read.h"

/* x86_64 pt_regs from bp to cs: contiguous in every kernel (the ptrace
 * layout); raw_tp copies r10 to cs on every call (a 64-bit call's
 * arguments among them), bp to r11 only for a selected ia32 call. */
/* clang-format off */
enum { XR_BP, XR_BX, XR_R11, XR_R10, XR_R9, XR_R8, XR_AX, XR_CX, XR_DX, XR_SI, XR_DI,
       XR_ORIG_AX, XR_IP, XR_CS, XR_N };
/* clang-format on */

struct call {
	void *ctx; /* the program's, for bpf_perf_event_output */
	struct pt_regs *regs;
	long ret;
	__s16 nr;
	__u8 handler;
	__u8 cat;
	bool btf;
	bool compat;
	/* tp_btf: current, as switched_task or (x86, 5.11+) call_confirm_abi
	 * got it (its ids are then plain loads, not a helper call); else NULL. */
	struct task_struct *task;
	/* raw_tp: the registers, copied into the caller's array (a checked
	 * copy is a helper call, so one for all arguments rather than one per
	 * argument). Kept outside this struct so the helper's write cannot
	 * hide the constant `btf` from the compiler. x86: XR_N words from bp;
	 * arm64: orig_x0, then regs[1..5]. */
	__u64 *r;
};

#if defined(__TARGET_ARCH_x86)
#define CALL_REGS XR_N
#elif defined(__TARGET_ARCH_arm)
#define CALL_REGS 9 /* uregs[0..17], 32-bit words */
#else
#define CALL_REGS 6
#endif

/* The local copy keeps CO-RE from relocating the access to struct call. */
#define REG(k, field)                                                    \
	({                                                               \
		struct pt_regs *__regs = (k)->regs;                      \
		(k)->btf ? __regs->field : BPF_CORE_READ(__regs, field); \
	})

#if defined(__TARGET_ARCH_arm)
/* __NR_SYSCALL_MASK: drops OABI's 0x900000, as syscall_get_nr() does. */
#define ARM_NR_MASK 0x0fffff
/* ARM-private calls: __ARM_NR_BASE + n (cacheflush, set_tls ...). */
#define ARM_NR_PRIVATE 0xf

/*
 * 32-bit ARM: pt_regs holds no syscall number; syscall_get_nr() reads
 * thread_info. ARM-private calls count in the compat row as n, a row
 * 32-bit ARM has no other use for (no table selects them).
 */
static __always_inline __u64 arm_syscall_nr(struct call *k)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct thread_info *ti;
	__u32 nr = ~0U;

	if (bpf_core_field_exists(t->thread_info))
		ti = __builtin_preserve_access_index(&t->thread_info);
	else
		ti = BPF_CORE_READ(t, stack);
	if (bpf_core_field_exists(ti->abi_syscall))
		bpf_core_read(&nr, sizeof(nr), &ti->abi_syscall);
	else
		bpf_core_read(&nr, sizeof(nr), &ti->syscall);
	/* -1: a tracer or seccomp skipped the call. */
	if (nr == ~0U)
		return ~0ULL;
	nr &= ARM_NR_MASK;
	if (nr >> 16 == ARM_NR_PRIVATE && (nr & 0xffff) < KESTREL_SYSCALL_MAX) {
		k->compat = true;
		nr &= 0xffff;
	}
	return nr;
}
#endif

/*
 * The syscall number and ABI of this call. On raw_tp one copy fetches
 * both: x86 r10 to cs (every argument of a 64-bit call, orig_ax, ip, cs)
 * and arm64 pstate, orig_x0, syscallno sit next to each other in every
 * kernel's pt_regs (it is the ptrace layout). On x86 the copy takes all
 * six argument registers, not only the number: a checked copy is a helper
 * call, which costs 25 ns on a host with retpolines and Safe RET (9 ns on
 * the last one) where its size costs 0.1 ns per word, so a traced call
 * makes no second copy for a few ns on every call (BENCHMARKS.md, steps).
 * arm64's argument registers sit 216 bytes before pstate and wait for
 * call_load_args. A 32-bit task
 * runs in the 32-bit code segment (x86) or AArch32 state (arm64:
 * compat_user_mode() in arch/arm64/include/asm/ptrace.h; unlike _TIF_32BIT,
 * whose number moved, this is architectural).
 */
static __always_inline __u64 call_start(struct call *k)
{
#if defined(__TARGET_ARCH_arm)
	k->compat = false;
	return arm_syscall_nr(k);
#else
	struct pt_regs *regs = k->regs;
#endif
#if defined(__TARGET_ARCH_x86)
	if (k->btf) {
		k->compat = (regs->cs & 0xffff) == USER32_CS;
		return regs->orig_ax;
	}
	if (bpf_probe_read_kernel(&k->r[XR_R10], (XR_N - XR_R10) * sizeof(__u64),
				  __builtin_preserve_access_index(&regs->r10)))
		return ~0ULL;
	k->compat = (k->r[XR_CS] & 0xffff) == USER32_CS;
	return k->r[XR_ORIG_AX];
#elif !defined(__TARGET_ARCH_arm)
	struct {
		__u64 pstate;
		__u64 orig_x0;
		__s32 syscallno;
	} tail = {};

	if (k->btf) {
		tail.pstate = regs->pstate;
		tail.syscallno = regs->syscallno;
	} else if (bpf_probe_read_kernel(&tail, sizeof(tail),
					 __builtin_preserve_access_index(&regs->pstate))) {
		return ~0ULL;
	}
	if (!k->btf)
		k->r[0] = tail.orig_x0;
	k->compat = tail.pstate & PSR_MODE32_BIT;
	return (__u64)(__s64)tail.syscallno;
#endif
}

/* bpf_get_current_task_btf() (plain loads through BTF) needs 5.11; tp_btf
 * runs from 5.8, so 5.8-5.10 take the checked copies instead. */
static __always_inline bool have_task_btf(void)
{
	return bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf);
}

/* x86: the kernel has an ia32 syscall entry (user space tries an int 0x80
 * before load: capture/ia32.rs). Without one (no IA32_EMULATION, or
 * ia32_emulation=false on 6.7+) TS_COMPAT is never set, so raw_tp leaves
 * out the two helper calls that read it (the verifier prunes them). */
const volatile bool ia32_entry = true;

/*
 * bpf_rdonly_cast (6.2+; the verifier inlines it) without its extern: any
 * kfunc extern makes libbpf load the running kernel's own BTF for the whole
 * object (libbpf.c obj_needs_vmlinux_btf), so the probe would no longer load
 * where raw_tp runs against a BTF file. The call below is a placeholder
 * helper number that user space turns into the kfunc's call when the
 * kernel's BTF has it (capture/kfunc.rs), the way libbpf itself poisons an
 * unresolved kfunc (libbpf.c poison_kfunc_call); task_cast says it did.
 * Unpatched, task_cast is false and the verifier prunes the call.
 */
const volatile bool task_cast = false;

static __always_inline struct task_struct *task_from(__u64 p)
{
	struct task_struct *t;
	__u32 id = bpf_core_type_id_kernel(struct task_struct);

	asm volatile("r1 = %[p]\n\t"
		     "r2 = %[id]\n\t"
		     "call %[call]\n\t"
		     "%[t] = r0"
		     : [t] "=r"(t)
		     : [p] "r"(p), [id] "r"(id), [call] "i"(KESTREL_RDONLY_CAST_CALL)
		     : "r0", "r1", "r2", "r3", "r4", "r5");
	return t;
}

/*
 * x86 only: a 64-bit task can enter the ia32 table through int 0x80 and
 * keep its 64-bit code segment; only TS_COMPAT in thread_info.status says
 * so (Falco's bpf_in_ia32_syscall() reads the same bit). One more read, so
 * it runs only for numbers one of the tables selects.
 */
static __always_inline void call_confirm_abi(struct call *k)
{
#if defined(__TARGET_ARCH_x86)
	struct task_struct *t;

	if (k->compat)
		return;
	if (k->btf && k->task) { /* switched_task found it */
		k->compat = k->task->thread_info.status & TS_COMPAT;
		return;
	}
	if (k->btf && have_task_btf()) {
		t = bpf_get_current_task_btf();
		k->task = t;
		k->compat = t->thread_info.status & TS_COMPAT;
		return;
	}
	if (!ia32_entry)
		return;
	t = (struct task_struct *)bpf_get_current_task();
	k->compat = BPF_CORE_READ(t, thread_info.status) & TS_COMPAT;
#endif
}

/* Handlers that read no argument past arg0 (handlers.h): on arm64 raw_tp a
 * 64-bit call of theirs needs no copy beyond call_start's. */
#define ARG0_ONLY                                                                                \
	(1u << KH_GENERIC | 1u << KH_CLONE | 1u << KH_CLONE3 | 1u << KH_FORK | 1u << KH_EXECVE | \
	 1u << KH_CLOSE | 1u << KH_DUP | 1u << KH_DUP2)
_Static_assert(KH_MAX <= 32, "ARG0_ONLY is a 32-bit mask");

/*
 * raw_tp: what call_start's copy left out, once a table selected the call
 * (x86: bp, bx and r11 for ia32, whose arguments are bx to di and bp;
 * arm64: regs[1..5]). Every slot is written on every path, by the copy or
 * by zeroing: kernels before 5.12 refuse a read of a stack slot never
 * written, even by root.
 */
static __always_inline void call_load_args(struct call *k)
{
	struct pt_regs *regs = k->regs;

	if (k->btf)
		return;
#if defined(__TARGET_ARCH_arm)
	/* One copy of all 18 words: ORIG_r0 sits past the others. */
	if (bpf_probe_read_kernel(k->r, CALL_REGS * sizeof(__u64),
				  __builtin_preserve_access_index(&regs->uregs[0])))
		__builtin_memset(k->r, 0, CALL_REGS * sizeof(__u64));
#elif defined(__TARGET_ARCH_x86)
	if (!k->compat || bpf_probe_read_kernel(k->r, XR_R10 * sizeof(__u64),
						__builtin_preserve_access_index(&regs->bp)))
		__builtin_memset(k->r, 0, XR_R10 * sizeof(__u64));
#else
	bool arg0_only = !k->compat && (ARG0_ONLY >> (k->handler & 31) & 1);

	if (arg0_only || bpf_probe_read_kernel(&k->r[1], 5 * sizeof(__u64),
					       __builtin_preserve_access_index(&regs->regs[1])))
		__builtin_memset(&k->r[1], 0, 5 * sizeof(__u64));
#endif
}

static __always_inline __u64 sys_arg(const struct call *k, int i)
{
#if defined(__TARGET_ARCH_x86)
	if (!k->btf) {
		static const int native[6] = { XR_DI, XR_SI, XR_DX, XR_R10, XR_R8, XR_R9 };
		static const int ia32[6] = { XR_BX, XR_CX, XR_DX, XR_SI, XR_DI, XR_BP };
		int at = k->compat ? ia32[i] : native[i];

		return k->compat ? (__u32)k->r[at] : k->r[at];
	}
	/* clang-format off */
	if (k->compat) {
		switch (i) {
		case 0: return (__u32)REG(k, bx);
		case 1: return (__u32)REG(k, cx);
		case 2: return (__u32)REG(k, dx);
		case 3: return (__u32)REG(k, si);
		case 4: return (__u32)REG(k, di);
		default: return (__u32)REG(k, bp);
		}
	}
	switch (i) {
	case 0: return REG(k, di);
	case 1: return REG(k, si);
	case 2: return REG(k, dx);
	case 3: return REG(k, r10);
	case 4: return REG(k, r8);
	default: return REG(k, r9);
	}
	/* clang-format on */
#elif defined(__TARGET_ARCH_arm)
	/* r0 holds the return value by now; ORIG_r0 keeps arg 0. */
	if (!k->btf)
		return ((const __u32 *)k->r)[i == 0 ? ARM_ORIG_R0 : i];
	/* clang-format off */
	switch (i) {
	case 0: return REG(k, uregs[ARM_ORIG_R0]);
	case 1: return REG(k, uregs[1]);
	case 2: return REG(k, uregs[2]);
	case 3: return REG(k, uregs[3]);
	case 4: return REG(k, uregs[4]);
	default: return REG(k, uregs[5]);
	}
	/* clang-format on */
#else
	__u64 v;

	if (!k->btf) {
		v = k->r[i];
		return k->compat ? (__u32)v : v;
	}
	/* arm64 overwrites x0 with the return value; orig_x0 keeps arg 0.
	 * An AArch32 task passes r0-r5 in the same slots. */
	/* clang-format off */
	switch (i) {
	case 0: v = REG(k, orig_x0); break;
	case 1: v = REG(k, regs[1]); break;
	case 2: v = REG(k, regs[2]); break;
	case 3: v = REG(k, regs[3]); break;
	case 4: v = REG(k, regs[4]); break;
	default: v = REG(k, regs[5]); break;
	}
	/* clang-format on */
	return k->compat ? (__u32)v : v;
#endif
}

#endif /* KESTREL_SYSCALL_H */
