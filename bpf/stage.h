/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Per-CPU staging of small records. A ring reservation and its commit cost
 * about as much as building a small record (a lock, the header, the
 * release), so the small records of a CPU (open, close and dup, socket,
 * generic and argument-only syscall records) are built in a per-CPU stage
 * and go to the ring as one record, which user space splits by hdr.len.
 *
 * Order and latency: one CPU's records reach the ring in the order they
 * were made: any record sent on its own (clone, exec, exit, connect and
 * accept, strings) sends the stage first, and a task switched out sends it
 * (sched_switch) before it can run on another CPU, so one thread's records
 * stay in order. A stage is sent once it holds stage_bytes (maps.h),
 * when a record finds it older than the current jiffy, and from any hrtimer
 * expiry (the tick) that finds it older: a task that spins after a call
 * cannot hold it back. Records of two threads on two CPUs may arrive in
 * another order than they were made, within about a jiffy, as Falco's
 * per-CPU buffers (libscap merges their heads by time) allow too.
 *
 * A close right after its thread's open of that fd rides on the open as an
 * 8-byte tail (stage_close_tail, at the end).
 *
 * `busy` keeps an hrtimer that interrupts an append from sending a half
 * built record: an append or send that finds it set goes to the ring
 * directly. 32-bit ARM and the perf path never stage (use_stage false: the
 * verifier prunes all of it).
 */
#ifndef KESTREL_STAGE_H
#define KESTREL_STAGE_H

#include "emit.h"

_Static_assert(sizeof(struct kestrel_fd) <= sizeof(struct kestrel_open) &&
		       sizeof(struct kestrel_socket) <= sizeof(struct kestrel_open) &&
		       __builtin_offsetof(struct kestrel_syscall, data) <=
			       sizeof(struct kestrel_open),
	       "a stage has room past KESTREL_STAGE_FLUSH for one open record, the largest staged");
_Static_assert((KESTREL_STAGE_FLUSH & (KESTREL_STAGE_FLUSH - 1)) == 0, "the stage masks offsets");

#if defined(__TARGET_ARCH_arm)
#define staging false
#else
#define staging use_stage
#endif

/* The ring refused a whole stage: every record lands in its category's
 * drop bucket, and each run under its process in drops_by_pid. */
static __always_inline void stage_dropped(struct kestrel_counters *c, struct stage *st)
{
	__u32 i;

	for (i = 0; i < STAGE_SLOTS; i++) {
		c->n_drops_buffer[i / KD_MAX][i % KD_MAX] += st->n[i];
		c->n_drops_buffer_total += st->n[i];
	}
	drop_wake = 1;
#pragma unroll
	for (i = 0; i < STAGE_RUNS; i++)
		if (i < st->runs)
			count_drops_of(st->run_pid[i], st->run_n[i]);
}

/* One ring record for the whole stage; the caller holds `busy`. */
static __out_of_line int stage_send(struct kestrel_counters *c, struct stage *st)
{
	__u32 len = st->len;

	if (len > KL_STAGE) {
		c->n_drops_bug++;
	} else if (len && bpf_ringbuf_output(&events, st->buf, len, wake_flags(c, true))) {
		stage_dropped(c, st);
	}
	st->len = 0;
	st->runs = 0;
	__builtin_memset(st->n, 0, sizeof(st->n));
	return 0;
}

static __always_inline struct stage *stage_get(void)
{
	return bpf_map_lookup_elem(&stage, &zero_key);
}

/* Sends this CPU's stage `st` unless an append is under way (see emit.h). */
static __always_inline void stage_drain_this(struct kestrel_counters *c, struct stage *st)
{
	if (!st || !st->len || st->busy)
		return;
	st->busy = 1;
	barrier();
	stage_send(c, st);
	barrier();
	st->busy = 0;
}

static __always_inline void stage_drain(struct kestrel_counters *c)
{
	if (staging)
		stage_drain_this(c, stage_get());
}

/* sched_switch, and hrtimer expiries with `stale` (only a stage older than
 * the current jiffy). One lookup of the stage serves the checks and the
 * send, and keeps `running` (sched_switch's next task, for switched_task in
 * kestrel.bpf.c) unless it is 0. */
static __always_inline int stage_flush_cpu(bool stale, __u64 running)
{
	struct kestrel_counters *c;
	struct stage *st;

	if (!staging)
		return 0;
	st = stage_get();
	if (!st)
		return 0;
	if (running)
		st->task = running;
	if (!st->len || st->busy)
		return 0;
	if (stale && bpf_jiffies64() == st->since)
		return 0;
	c = get_counters();
	if (c)
		stage_drain_this(c, st);
	return 0;
}

/*
 * Room for a small record: in the stage (*st set, `busy` held until
 * put()), else in the scratch space (NULL if even that fails, counted).
 */
static __always_inline void *take(struct kestrel_counters *c, struct stage **st)
{
	struct stage *s;
	__u32 off;

	*st = NULL;
	c->n_evts++;
	if (staging) {
		s = stage_get();
		if (s && !s->busy && s->len < KESTREL_STAGE_FLUSH) {
			s->busy = 1;
			barrier();
			off = s->len;
			barrier_var(off);
			*st = s;
			return s->buf + (off & (KESTREL_STAGE_FLUSH - 1));
		}
	}
	return perf_scratch(c);
}

/* The record's process joins the stage's last run, or starts one. */
static __always_inline void stage_run(struct stage *st, __u32 pid)
{
	__u32 r = st->runs;

	if (r && (st->run_pid[(r - 1) & (STAGE_RUNS - 1)] == pid || r >= STAGE_RUNS)) {
		st->run_n[(r - 1) & (STAGE_RUNS - 1)]++;
		return;
	}
	r &= STAGE_RUNS - 1;
	st->run_pid[r] = pid;
	st->run_n[r] = 1;
	st->runs = r + 1;
}

/* Completes a record from take(): `size` bytes (an open sends only the
 * used part of its path). */
static __always_inline void put(void *ctx, struct kestrel_counters *c, struct stage *st, void *rec,
				__u64 size, int cat, int dir)
{
	struct kestrel_hdr *h = rec;
	__u32 i = (__u32)cat * KD_MAX + (__u32)dir;
	__u64 now;

	if (!st) {
		scratch_send(ctx, c, rec, size, i);
		return;
	}
	now = bpf_jiffies64();
	h->len = size;
	h->jiffies = now;
	if (!st->len)
		st->since = now;
	st->last = st->len;
	st->len += (size + 7) & ~7U;
	st->n[i & (STAGE_SLOTS - 1)]++;
	if (count_drops_by_pid)
		stage_run(st, h->pid);
	if (st->len >= stage_bytes || now != st->since)
		stage_send(c, st);
	barrier();
	st->busy = 0;
}

/*
 * Open, read, close: a close of the fd its thread's open just made, with
 * that open still the stage's last record and this jiffy's, goes as the
 * 8 bytes of a kestrel_close_tail after it instead of a 48-byte record
 * (fewer ring bytes per file access). Only a successful close rides: user
 * space then knows at the open that the fd is gone before anything reads
 * the fd table, and leaves it out (state/fds.rs). False: make the whole
 * record.
 * `busy` is taken before anything is read, as take() does.
 */
static __always_inline bool stage_close_tail(struct kestrel_counters *c, __u64 id, __s64 fd,
					     __s16 nr, __u16 flags, __s64 ret, int cat)
{
	struct kestrel_close_tail *t;
	struct kestrel_hdr *o;
	struct stage *st;
	__u32 len, at;

	if (!staging || ret != 0)
		return false;
	st = stage_get();
	if (!st || st->busy)
		return false;
	st->busy = 1;
	barrier();
	len = st->len;
	o = (struct kestrel_hdr *)(st->buf + (st->last & (KESTREL_STAGE_FLUSH - 1)));
	if (!len || len >= KESTREL_STAGE_FLUSH || bpf_jiffies64() != st->since ||
	    o->type != KR_OPEN || o->ret != fd || (o->flags & KF_CLOSE_FOLLOWS) ||
	    o->tid != (__u32)id || o->pid != (__u32)(id >> 32)) {
		barrier();
		st->busy = 0;
		return false;
	}
	/* Hide the bound checked above, so the mask, which the verifier
	 * tracks, stays. */
	at = len;
	barrier_var(at);
	t = (struct kestrel_close_tail *)(st->buf + (at & (KESTREL_STAGE_FLUSH - 1)));
	t->nr = nr;
	t->flags = flags;
	t->ret = ret;
	o->flags |= KF_CLOSE_FOLLOWS;
	st->len = len + sizeof(*t);
	c->n_evts++;
	st->n[((__u32)cat * KD_MAX + KD_EXIT) & (STAGE_SLOTS - 1)]++;
	if (count_drops_by_pid)
		stage_run(st, id >> 32);
	if (st->len >= stage_bytes)
		stage_send(c, st);
	barrier();
	st->busy = 0;
	return true;
}

#endif /* KESTREL_STAGE_H */
