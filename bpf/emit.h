/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Record plumbing shared by every program: per-CPU counters, the scratch
 * record, header and task fields, and the two ways into the ring buffer
 * (copy a variable-size record, or build a fixed-size one in place), or
 * into the per-CPU perf buffers where there is no ring (use_perf). Every
 * outcome is counted: a record is either delivered or lands in a drop
 * counter.
 */
#ifndef KESTREL_EMIT_H
#define KESTREL_EMIT_H

#include "maps.h"
#include "core_read.h"

_Static_assert((KESTREL_CAT_SLOTS & (KESTREL_CAT_SLOTS - 1)) == 0 && KC_MAX <= KESTREL_CAT_SLOTS,
	       "count_drop masks its index: the category rows must be a power of two");
_Static_assert(KESTREL_SYSCALL_MAX % 32 == 0, "kestrel_counters.syscalls rows");
_Static_assert(((KA_MAX * KESTREL_SYSCALL_MAX) & (KA_MAX * KESTREL_SYSCALL_MAX - 1)) == 0,
	       "sys_exit masks its kestrel_counters.syscalls index");
_Static_assert(KR_TYPE_MAX <= 0xffff && KH_MAX <= 0xff && KC_MAX <= KSEL_CAT_MASK + 1,
	       "selection word fields overflow");

/* Adds to a value another CPU may update too. The ARM32 JIT has no atomic
 * instructions (a program with one would run interpreted, or not load with
 * the JIT always on): there a race can lose a count of a per-process
 * estimate. Per-CPU counters never need this. */
#if defined(__TARGET_ARCH_arm)
#define shared_add(p, v) (*(p) += (v))
#else
#define shared_add(p, v) __sync_fetch_and_add(p, v)
#endif

/* The key from .rodata: no stack store and reload on every syscall. */
static const __u32 zero_key = 0;

static __always_inline struct kestrel_counters *get_counters(void)
{
	return bpf_map_lookup_elem(&counters, &zero_key);
}

/* The per-CPU scratch space, or NULL with the record counted as a bug drop
 * (a per-CPU array lookup of key 0 cannot fail). */
static __always_inline struct scratch_space *get_scratch(struct kestrel_counters *c)
{
	__u32 zero = 0;
	struct scratch_space *s = bpf_map_lookup_elem(&scratch, &zero);

	if (!s) {
		c->n_evts++;
		c->n_drops_bug++;
	}
	return s;
}

/* id: as bpf_get_current_pid_tgid() returns it (tgid << 32 | tid). */
static __always_inline void fill_hdr_of(struct kestrel_hdr *h, __u16 type, __s16 nr, __s64 ret,
					__u64 id)
{
	/* h->jiffies: stamped at output (submit, emit, perf_out). */
	h->tid = (__u32)id;
	h->pid = id >> 32;
	h->type = type;
	h->len = 0;
	h->nr = nr;
	h->flags = 0;
	h->ret = ret;
}

static __always_inline void fill_hdr(struct kestrel_hdr *h, __u16 type, __s16 nr, __s64 ret)
{
	fill_hdr_of(h, type, nr, ret, bpf_get_current_pid_tgid());
}

static __always_inline void fill_task(struct kestrel_task *t, struct task_struct *task)
{
	t->ppid = BPF_CORE_READ(task, real_parent, tgid);
	t->uid = BPF_CORE_READ(task, real_cred, uid.val);
	t->gid = BPF_CORE_READ(task, real_cred, gid.val);
	t->old_tid = 0;
	t->start_ns = BPF_CORE_READ(task, start_time);
	BPF_CORE_READ_INTO(&t->comm, task, comm);
	t->loginuid = 0xffffffff;
	t->tty = 0;
	t->sid = 0;
	t->pad = 0;
}

/*
 * loginuid, tty and session id, as libs' modern_bpf reads them
 * (helpers/extract/extract_from_kernel.h: extract__loginuid, extract__tty).
 * The tty is new_encode_dev(MKDEV(major, minor_start) + index), the
 * encoding /proc/PID/stat's tty_nr uses too.
 */
static __always_inline void fill_task_session(struct kestrel_task *t, struct task_struct *task)
{
	struct signal_struct *sig = BPF_CORE_READ(task, signal);
	struct tty_struct *tty;
	struct tty_driver *drv;
	__u32 dev, major, minor;

	if (bpf_core_field_exists(task->loginuid))
		t->loginuid = BPF_CORE_READ(task, loginuid.val);
	if (!sig)
		return;
	if (bpf_core_field_exists(sig->pids)) {
		struct pid *sid = BPF_CORE_READ(sig, pids[PIDTYPE_SID]);

		if (sid)
			t->sid = BPF_CORE_READ(sid, numbers[0].nr);
	}
	tty = BPF_CORE_READ(sig, tty);
	if (!tty)
		return;
	drv = BPF_CORE_READ(tty, driver);
	if (!drv)
		return;
	dev = ((__u32)BPF_CORE_READ(drv, major) << 20) + BPF_CORE_READ(drv, minor_start) +
	      BPF_CORE_READ(tty, index);
	major = dev >> 20;
	minor = dev & 0xfffff;
	t->tty = (minor & 0xff) | (major << 8) | ((minor & ~0xffU) << 12);
}

/* Only on the drop path: the ring is full, so this cost is not on the hot path. */
/* `drops` records of process `pid` dropped. */
static __always_inline void count_drops_of(__u32 pid, __u64 drops)
{
	__u64 *n;

	if (!count_drops_by_pid)
		return;
	n = bpf_map_lookup_elem(&drops_by_pid, &pid);
	if (n)
		shared_add(n, drops);
	else
		bpf_map_update_elem(&drops_by_pid, &pid, &drops, BPF_NOEXIST);
}

static __always_inline void count_drop_by_pid(void)
{
	count_drops_of(bpf_get_current_pid_tgid() >> 32, 1);
}

static __always_inline void count_drop(struct kestrel_counters *c, int cat, int dir)
{
	count_drop_by_pid();
	c->n_drops_buffer_total++;
	drop_wake = 1;
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
 * every (wake_check_mask + 1)th record only: 64 for rings of 256 KiB and
 * more, fewer for small rings, where 64 records would fill the ring. A
 * consumer that lags stays above wakeup_bytes, or drops: without woken_at
 * every check or drop would wake it again (perf showed the self-IPI at 3 %
 * of a traced open/close loop's time).
 */
static __always_inline __u64 wake_flags(struct kestrel_counters *c, bool check)
{
	if (!wakeup_bytes)
		return 0;
	if (drop_wake || ((check || (c->n_evts & wake_check_mask) == 0) &&
			  bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)) {
		drop_wake = 0;
		if ((__s32)((__u32)bpf_ringbuf_query(&events, BPF_RB_CONS_POS) - woken_at) >= 0) {
			woken_at = bpf_ringbuf_query(&events, BPF_RB_PROD_POS);
			return BPF_RB_FORCE_WAKEUP;
		}
	}
	return BPF_RB_NO_WAKEUP;
}

/*
 * The perf path's output, out of line: one copy, not one per handler and
 * attach path (the probe object carries them all, compressed, in the
 * binary). ctx: the program's, which bpf_perf_event_output wants; catdir:
 * the category times KD_MAX plus the direction. Returns 1 on a drop.
 */
static __out_of_line int perf_out(void *ctx, struct kestrel_counters *c, void *rec, __u64 len,
				  __u32 catdir)
{
	/* Perf buffers are per CPU: user space merges them by this time, taken
	 * as late as can be, so one CPU's records are in time order. */
	((struct kestrel_hdr *)rec)->jiffies = bpf_ktime_get_ns();
	if (!bpf_perf_event_output(ctx, &perf_events, BPF_F_CURRENT_CPU, rec, len))
		return 0;
	count_drop(c, catdir / KD_MAX, catdir % KD_MAX);
	return 1;
}

/* A fixed-size record built in the scratch space (the perf path's, and
 * a small record that is not staged: bpf/stage.h), out of line for the
 * same reason. */
static __out_of_line void *perf_scratch(struct kestrel_counters *c)
{
	struct scratch_space *s = bpf_map_lookup_elem(&scratch, &zero_key);

	if (!s) {
		c->n_drops_bug++;
		return NULL;
	}
	return &s->rec;
}

/* Sends this CPU's staged records ahead of a record that goes to the ring
 * on its own, so one CPU's records stay in order (bpf/stage.h). */
static __always_inline void stage_drain(struct kestrel_counters *c);

/*
 * Copies out a record built in the scratch space: a variable-size one
 * (emit), or a small one that is not staged (32-bit ARM, the perf path,
 * --stage-records false, a busy stage: bpf/stage.h put()). Out of line: one
 * copy for every handler, not an inlined ring reservation in each. catdir:
 * the category times KD_MAX plus the direction. Returns 1 on a drop.
 */
static __out_of_line int scratch_send(void *ctx, struct kestrel_counters *c, void *rec, __u64 len,
				      __u32 catdir)
{
	if (len > sizeof(union kestrel_record)) {
		c->n_drops_scratch_map++;
		return 1;
	}
	((struct kestrel_hdr *)rec)->len = len;
	if (use_perf)
		return perf_out(ctx, c, rec, len, catdir);
	((struct kestrel_hdr *)rec)->jiffies = bpf_jiffies64();
	if (!bpf_ringbuf_output(&events, rec, len, wake_flags(c, false)))
		return 0;
	count_drop(c, catdir / KD_MAX, catdir % KD_MAX);
	return 1;
}

/* A variable-size record built in scratch space, after the CPU's stage. */
static __always_inline void emit(void *ctx, struct kestrel_counters *c, void *rec, __u64 len,
				 int cat, int dir)
{
	stage_drain(c);
	c->n_evts++;
	scratch_send(ctx, c, rec, len, (__u32)cat * KD_MAX + (__u32)dir);
}

/*
 * Fixed-size records are built in place in the ring buffer: no scratch
 * lookup, no copy. A full ring is counted here; the caller must submit.
 * The perf path builds them in scratch space and copies them at submit.
 */
static __always_inline void *reserve(struct kestrel_counters *c, __u64 size, int cat, int dir)
{
	void *r;

	stage_drain(c);
	c->n_evts++;
	if (use_perf)
		return perf_scratch(c);
	r = bpf_ringbuf_reserve(&events, size, 0);
	if (!r)
		count_drop(c, cat, dir);
	return r;
}

/* Returns 1 when the record was dropped: only the perf path drops here
 * (the ring's reserve already took the space). */
static __always_inline int submit(void *ctx, struct kestrel_counters *c, void *rec, __u64 size,
				  int cat, int dir)
{
	((struct kestrel_hdr *)rec)->len = size;
	if (use_perf)
		return perf_out(ctx, c, rec, size, cat * KD_MAX + dir);
	/* 5.4 has no bpf_jiffies64: the perf path never reaches it. */
	((struct kestrel_hdr *)rec)->jiffies = bpf_jiffies64();
	bpf_ringbuf_submit(rec, wake_flags(c, false));
	return 0;
}

/*
 * Most paths fit in SHORT_STR bytes: one plain copy of that many to the
 * stack, the NUL found a word at a time, the words copied on. The kernel's
 * user copies run the hardened-usercopy check on their destination
 * (mm/usercopy.c __check_object_size), which for a map value walks to its
 * page (perf: an eighth of the probe's time) and for the stack stops at the
 * frame check. Returns the length with the NUL, or 0 (no NUL in the first
 * SHORT_STR bytes, or they cannot all be read: the caller reads it the
 * exact way). dst must be 8-byte aligned (the open's path is: kestrel.h).
 * The word loop stays a loop: unrolled, the object took the static x86_64
 * binary over its 2 000 000 B budget.
 */
#define SHORT_STR 64
static __always_inline long short_user_str(char *dst, __u32 max, __u64 src)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	const __u64 ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
	__u64 tmp[SHORT_STR / 8];
	__u32 i;

	if (max < SHORT_STR || bpf_probe_read_user(tmp, sizeof(tmp), (const void *)src))
		return 0;
#pragma clang loop unroll(disable)
	for (i = 0; i < SHORT_STR / 8; i++) {
		__u64 w = tmp[i];
		/* The lowest flagged byte is the first zero byte (a borrow only
		 * flags bytes above a real zero). */
		__u64 z = (w - ones) & ~w & highs;

		/* One store, not eight: dst is a word-aligned record field. */
		((__u64 *)dst)[i] = w;
		if (z) {
			long n = i * 8 + 1;

			z &= -z;
			if (z >> 32) {
				n += 4;
				z >>= 32;
			}
			if (z >> 16) {
				n += 2;
				z >>= 16;
			}
			if (z >> 8)
				n += 1;
			return n;
		}
	}
#endif
	return 0;
}

/* Reads a user string into dst[max]; returns the stored length including
 * the NUL (1, an empty string, with `fault` set when it cannot be read).
 * max is a compile-time power of two. The caller counts the fault. `quick`
 * (a constant) tries short_user_str first: only opens, the frequent
 * records, take its inlined copy (the static binary's size budget). */
static __always_inline __u16 read_user_str(struct kestrel_hdr *h, char *dst, __u32 max, __u64 src,
					   __u16 fault, __u16 trunc, bool quick)
{
	long n = quick ? short_user_str(dst, max, src) : 0;

	if (!n)
		n = bpf_probe_read_user_str(dst, max, (const void *)src);

	if (n <= 0) {
		dst[0] = 0;
		h->flags |= fault;
		return 1;
	}
	if (n >= max) {
		h->flags |= trunc;
		return max;
	}
	return n;
}

static __always_inline __u16 read_user_path(struct kestrel_counters *c, struct kestrel_hdr *h,
					    char *dst, __u32 max, __u64 src)
{
	__u16 n = read_user_str(h, dst, max, src, KF_PATH_FAULT, KF_PATH_TRUNC, true);

	if (h->flags & KF_PATH_FAULT)
		c->n_drops_page_faults++;
	return n;
}

/* stage_drain, declared above: staging builds on everything here. */
#include "stage.h"

#endif /* KESTREL_EMIT_H */
