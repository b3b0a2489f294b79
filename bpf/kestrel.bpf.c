// SPDX-License-Identifier: GPL-2.0
/*
 * Kestrel's probe. One exit-side dispatcher (sys_exit) reads the syscall
 * number, looks it up in a table user space filled before load and returns
 * at once for anything not selected; selected syscalls get a record built in
 * per-CPU scratch space or in place in one ring buffer. Scheduler
 * tracepoints cover what sys_exit cannot see: the child of a fork on arm64,
 * successful execs (the new image's path is only in linux_binprm, its argv
 * only in the new mm), and thread exits. sys_enter is optional: the exit side still has the arguments
 * in the saved registers, so it is attached only for enter-event pairing.
 *
 * Every program exists twice, as thin entry points over shared handlers:
 * tp_btf (needs the kernel's own BTF) and raw_tp (runs without it; CO-RE
 * then relocates against an external BTF file). User space loads one set.
 */
#include "maps.h"
#include <bpf/bpf_tracing.h>
#include "core_read.h"

char LICENSE[] SEC("license") = "GPL";

#include "emit.h"
#include "syscall.h"
#include "handlers.h"
#include "exec.h"

/*
 * The running task without a helper call (one is the largest single cost
 * of a traced call on a host with Safe RET: BENCHMARKS.md, issue 22,
 * 2026-12-06): sched_switch keeps the task it switches to in the CPU's
 * stage, from its first switch on the running one (it stays attached until
 * sys_exit is gone: capture/mod.rs detach), read back through
 * bpf_rdonly_cast (task_from in syscall.h). The saved registers confirm
 * it: a task's pt_regs sit at a fixed offset in its own stack
 * (task_pt_regs(), x86_64 and arm64 alike), learned from each CPU's first
 * selected call's task as the helper gives it, so another task's stack
 * cannot match. Any doubt (no task kept yet, no match) leaves k->task NULL
 * and the call goes on as without the cast.
 */
static __always_inline void switched_task(struct call *k)
{
#if defined(__TARGET_ARCH_x86) || defined(__TARGET_ARCH_arm64)
	struct task_struct *t;
	struct stage *st;

	if (!k->btf || !staging || !task_cast || !have_task_btf())
		return;
	st = stage_get();
	if (!st)
		return;
	if (!st->regs_from_stack) {
		t = bpf_get_current_task_btf();
		/* Through memory, so the verifier sees a number: 6.12's refuses
		 * arithmetic on the trusted pointer itself. */
		st->regs_from_stack = (__u64)k->regs;
		st->regs_from_stack = *(volatile __u64 *)&st->regs_from_stack - (__u64)t->stack;
		k->task = t;
		return;
	}
	if (!st->task)
		return;
	t = task_from(st->task);
	if ((__u64)t->stack + st->regs_from_stack == (__u64)k->regs)
		k->task = t;
#endif
}

/* ctx[2]: next, in every version of the tracepoint. */
#define SWITCHED_TO(btf) ((btf) && task_cast ? ((__u64 *)ctx)[2] : 0)

/*
 * The table entry for this call, or 0. A number neither table selects is
 * done with before the ABI is settled: that is the untraced hot path.
 */
static __always_inline __u16 table_entry(struct call *k, __u64 nr)
{
	__u32 i = nr, e;

	if (nr >= KESTREL_SYSCALL_MAX)
		return 0;
	/* The mask is the bound the verifier tracks: clang may test a copy of
	 * nr and index with another (6.1's verifier then rejects the access). */
	barrier_var(i);
	i &= KESTREL_SYSCALL_MAX - 1;
	e = call_table[i];
	if (!e)
		return 0;
	switched_task(k);
	call_confirm_abi(k);
	return k->compat ? e >> KSEL_COMPAT_SHIFT : (__u16)e;
}

/*
 * Per-process syscall counts without a hash lookup per call: every syscall
 * exit counts down a per-CPU gap, and when it runs out the current process
 * (tgid) gets one sample in calls_by_pid, standing for calls_sample_period
 * calls. The gaps are drawn uniformly from [P/2, 3P/2] (mean P), so no
 * periodic pattern of calls can line up with the sampling or dodge it.
 * The cost is one decrement per call, plus a random number, a hash lookup,
 * an add and a comm copy once every P calls (metrics::culprits states the
 * error). Falco has no per-process syscall count (falcosecurity/falco
 * issue 2333 declined per-syscall counters as too costly).
 */
/* The group leader's comm (as ps shows the process; exec changes it):
 * plain loads through BTF on tp_btf (5.11+), two checked copies otherwise. */
static __always_inline void leader_comm(char *dst, bool btf)
{
	if (btf && have_task_btf()) {
		struct task_struct *t = bpf_get_current_task_btf();

		__builtin_memcpy(dst, t->group_leader->comm, KESTREL_COMM_LEN);
		return;
	}
	BPF_CORE_READ_INTO((char(*)[KESTREL_COMM_LEN])dst,
			   (struct task_struct *)bpf_get_current_task(), group_leader, comm);
}

static __always_inline int sample_call(struct kestrel_counters *c, bool btf)
{
	struct kestrel_proc_calls fresh = { .samples = 1 }, *v;
	__u32 pid, r;

	if (!calls_sample_period) {
		/* Sampling off: never again (the check stays off the per-call path). */
		c->calls_countdown = 1LL << 62;
		return 0;
	}
	r = bpf_get_prandom_u32();
	c->calls_countdown =
		(calls_sample_period >> 1) + (r & (calls_sample_period - 1)) + (r >> 31);
	c->n_calls_samples++;
	pid = bpf_get_current_pid_tgid() >> 32;
	v = bpf_map_lookup_elem(&calls_by_pid, &pid);
	if (v) {
		shared_add(&v->samples, 1);
		leader_comm(v->comm, btf);
		return 0;
	}
	leader_comm(fresh.comm, btf);
	if (bpf_map_update_elem(&calls_by_pid, &pid, &fresh, BPF_NOEXIST))
		c->n_calls_sample_misses++;
	return 0;
}

/*
 * A call one of the tables may select, as on_sys_exit started it: the ABI
 * settled, its handler run. ret is read only here, so the untraced path
 * keeps no register for it.
 */
static __always_inline void traced_exit(struct call *k, struct kestrel_counters *c, __u64 nr)
{
	__u16 sel;

#if defined(__TARGET_ARCH_arm)
	/* The tracepoint passes a 32-bit long zero-extended: -errno back. */
	k->ret = (__s32)((__u64 *)k->ctx)[1];
#else
	k->ret = (long)((__u64 *)k->ctx)[1];
#endif
	sel = table_entry(k, nr);
	if (!(sel & KSEL_EXIT))
		return;
	if (!c)
		c = get_counters();
	if (!c)
		return;
	k->nr = nr;
	k->handler = sel >> KSEL_HANDLER_SHIFT;
	k->cat = (sel >> KSEL_CAT_SHIFT) & KSEL_CAT_MASK;
	call_load_args(k);
	dispatch_exit(c, k);
}

/*
 * The culprit sample is out of line (BPF-to-BPF calls, 4.16+, JIT or
 * interpreter): it runs once in P calls, so the untraced path keeps its
 * few instructions in one place. Twice, so `btf` stays a constant inside
 * (__out_of_line: core_read.h). traced_exit is inlined: a call and its
 * return cost 3-15 ns a traced call on a host with Safe RET, where every
 * return is a thunk, and the untraced path measured the same either way
 * (BENCHMARKS.md, issue 22, 2026-12-05); so it continues on_sys_exit's
 * struct call instead of rebuilding one from ctx.
 */

static __out_of_line int sample_btf(struct kestrel_counters *c)
{
	return sample_call(c, true);
}

static __out_of_line int sample_raw(struct kestrel_counters *c)
{
	return sample_call(c, false);
}

static __always_inline void on_sys_exit(__u64 *ctx, struct pt_regs *regs, bool btf)
{
	/* raw_tp: call_start fills r10 to cs (x86), call_load_args the rest; not
	 * zeroed, as 14 stores showed in the untraced cost. */
	__u64 copy[CALL_REGS];
	struct call k = { .ctx = ctx, .regs = regs, .btf = btf, .r = copy };
	struct kestrel_counters *c = NULL;
	__u64 nr;

	nr = call_start(&k);
	if (count_syscalls) {
		/* By code segment / PSTATE: an int 0x80 from a 64-bit task counts
		 * under the 64-bit table here (see call_confirm_abi). */
		c = get_counters();
		if (!c)
			return;
		if (nr < KESTREL_SYSCALL_MAX) {
			__u32 i = (k.compat ? KESTREL_SYSCALL_MAX : 0) + (__u32)nr;

			/* Hide the bound from the compiler so it keeps the mask:
			 * the mask is the bound the verifier tracks. */
			barrier_var(i);
			i &= KA_MAX * KESTREL_SYSCALL_MAX - 1;
			(&c->syscalls[0][0][0])[i]++;
		} else {
			c->n_syscalls_unnumbered++;
		}
		if (--c->calls_countdown <= 0)
			btf ? sample_btf(c) : sample_raw(c);
	}
	/* Neither table selects it: the untraced path ends here. */
	if (nr >= KESTREL_SYSCALL_MAX || !call_table[nr])
		return;
	traced_exit(&k, c, nr);
}

static __always_inline void on_sys_enter(void *ctx, struct pt_regs *regs, long id, bool btf)
{
	__u64 copy[CALL_REGS]; /* filled by call_start where read */
	struct call k = { .ctx = ctx, .regs = regs, .btf = btf, .r = copy };
	struct kestrel_counters *c;
	__u16 sel;

	call_start(&k);
	sel = table_entry(&k, (__u64)id);
	if (!(sel & KSEL_ENTER))
		return;
	c = get_counters();
	if (!c)
		return;
	k.nr = id;
	k.cat = (sel >> KSEL_CAT_SHIFT) & KSEL_CAT_MASK;
	handle_generic(c, &k, KR_ENTER, KD_ENTER);
}

static __always_inline bool is_kthread(struct task_struct *task)
{
	return BPF_CORE_READ(task, flags) & PF_KTHREAD;
}

/* arm64 (and other arches) never run sys_exit for a new child. */
static __always_inline int on_fork(void *ctx, struct task_struct *child)
{
	struct kestrel_counters *c;
	struct kestrel_clone *r;
	__u32 tid, pid;

	if (is_kthread(child))
		return 0;
	c = get_counters();
	if (!c)
		return 0;
	c->n_evts_no_enter++;
	r = reserve(c, sizeof(*r), KC_CLONE_FORK, KD_EXIT);
	if (!r) {
		c->n_drops_no_enter++;
		return 0;
	}
	tid = BPF_CORE_READ(child, pid);
	pid = BPF_CORE_READ(child, tgid);
	fill_hdr(&r->hdr, KR_CLONE_CHILD, -1, 0);
	r->hdr.tid = tid;
	r->hdr.pid = pid;
	fill_task(&r->task, child);
	fill_task_session(&r->task, child);
	if (tid != pid)
		r->hdr.flags |= KF_CLONE_THREAD;
	if (submit(ctx, c, r, sizeof(*r), KC_CLONE_FORK, KD_EXIT))
		c->n_drops_no_enter++;
	return 0;
}

static __always_inline int on_exec(void *ctx, struct task_struct *p, int old_pid,
				   struct linux_binprm *bprm)
{
	struct kestrel_counters *c = get_counters();
	struct scratch_space *s;
	struct kestrel_exec *e;
	__u32 len;

	if (!c)
		return 0;
	s = get_scratch(c);
	if (!s)
		return 0;
	e = &s->rec.exec;
	fill_hdr(&e->hdr, KR_EXECVE, -1, 0);
	fill_task(&e->task, p);
	fill_task_session(&e->task, p);
	e->task.old_tid = old_pid;
	len = exec_strings(c, e, s->path, p, bprm);
	emit(ctx, c, e, __builtin_offsetof(struct kestrel_exec, data) + len, KC_EXECVE, KD_EXIT);
	return 0;
}

static __always_inline int on_exit(void *ctx, struct task_struct *p)
{
	struct kestrel_counters *c;
	struct kestrel_exit *r;

	if (is_kthread(p))
		return 0;
	c = get_counters();
	if (!c)
		return 0;
	c->n_evts_no_enter++;
	r = reserve(c, sizeof(*r), KC_PROC_EXIT, KD_EXIT);
	if (!r) {
		c->n_drops_no_enter++;
		return 0;
	}
	fill_hdr(&r->hdr, KR_PROC_EXIT, -1, 0);
	/* signal->live already dropped for this thread: 0 means the group is gone. */
	if (BPF_CORE_READ(p, signal, live.counter) == 0)
		r->hdr.flags |= KF_GROUP_DEAD;
	if (submit(ctx, c, r, sizeof(*r), KC_PROC_EXIT, KD_EXIT))
		c->n_drops_no_enter++;
	return 0;
}

/*
 * Entry points, each tracepoint twice: tp_btf (BTF-typed arguments) and
 * raw_tp (plain numbers, read through CO-RE's checked copies). The `btf`
 * constant reaches the shared handlers, so each twin compiles only its own
 * reads. Program names are what the stats fields show; the raw_tp twins
 * carry a raw_ prefix that user space maps back to the tp_btf names.
 */
/* clang-format off */
#define TWINS(tp, name, raw_name, call, ...)                                   \
	SEC("tp_btf/" tp) int BPF_PROG(name, __VA_ARGS__) { return call(true); } \
	SEC("raw_tp/" tp) int BPF_PROG(raw_name, __VA_ARGS__) { return call(false); }
/* clang-format on */

#define SYS_EXIT(btf) (on_sys_exit(ctx, regs, btf), 0)
#define SYS_ENTER(btf) (on_sys_enter(ctx, regs, id, btf), 0)
#define P_FORK(btf) on_fork(ctx, child)
#define P_EXEC(btf) on_exec(ctx, p, old_pid, bprm)
#define P_EXIT(btf) on_exit(ctx, p)
#define SWITCH(btf) stage_flush_cpu(false, SWITCHED_TO(btf))
#define TICK(btf) stage_flush_cpu(true, 0)

TWINS("sys_exit", sys_exit, raw_sys_exit, SYS_EXIT, struct pt_regs *regs, long ret)
TWINS("sys_enter", sys_enter, raw_sys_enter, SYS_ENTER, struct pt_regs *regs, long id)
TWINS("sched_process_fork", sched_p_fork, raw_p_fork, P_FORK, struct task_struct *parent,
      struct task_struct *child)
TWINS("sched_process_exec", sched_p_exec, raw_p_exec, P_EXEC, struct task_struct *p, int old_pid,
      struct linux_binprm *bprm)
TWINS("sched_process_exit", sched_proc_exit, raw_proc_exit, P_EXIT, struct task_struct *p)
/* Staging (bpf/stage.h): no argument is read. */
/* clang-format off */
#define TWINS_NO_ARGS(tp, name, raw_name, call)                       \
	SEC("tp_btf/" tp) int name(void *ctx) { return call(true); } \
	SEC("raw_tp/" tp) int raw_name(void *ctx) { return call(false); }
/* clang-format on */
TWINS_NO_ARGS("sched_switch", sched_switch, raw_sched_switch, SWITCH)
TWINS_NO_ARGS("hrtimer_expire_entry", hrtimer_expire, raw_hrtimer_expire, TICK)
