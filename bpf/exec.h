/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The strings of a successful exec record: bprm->filename, argv from the new
 * mm, and the executable's path and the cwd resolved through the dentry and
 * mount chains up to the root of the mount namespace. sched_process_exec may
 * not call bpf_d_path, so this walks as libs' modern_bpf does when it cannot
 * either (helpers/store/auxmap_store_params.h, auxmap__store_d_path_approx);
 * the exe flags follow its extract__exe_from_memfd and extract__overlay_layer
 * (helpers/extract/extract_from_kernel.h). Included by kestrel.bpf.c.
 */
#ifndef KESTREL_EXEC_H
#define KESTREL_EXEC_H

#include "emit.h"

#define OVERLAYFS_SUPER_MAGIC 0x794c7630
/* A walked path ends at buf[PATH_END] (its NUL) and grows down. */
#define PATH_END (KESTREL_PATH_MAX - 1)
#define PATH_MASK (KESTREL_PATH_MAX - 1)

_Static_assert((KESTREL_PATH_MAX & PATH_MASK) == 0, "the walk masks positions");

enum walk_end {
	WALK_ROOT,  /* reached the namespace's root: a complete path */
	WALK_ANON,  /* a file in no tree (memfd, pipe): its own name, as libs */
	WALK_TRUNC, /* too long, too deep, detached or unreadable */
};

/*
 * Assembles the path of *path backwards in buf (2 * KESTREL_PATH_MAX bytes,
 * so a component copied at any position still fits) and returns where it
 * starts. The masks never change a value; they are the bounds the verifier
 * tracks.
 */
static __always_inline __u32 walk_path(const struct path *path, char *buf, int *end)
{
	struct dentry *d, *parent, *root;
	struct mount *mnt, *up;
	struct vfsmount *vfs;
	struct path_raw p = {};
	struct qstr name;
	__u32 pos = PATH_END, len;

	buf[PATH_END] = 0;
	*end = WALK_TRUNC;
	if (bpf_probe_read_kernel(&p, sizeof(p), path) || !p.dentry || !p.mnt)
		return pos;
	d = (struct dentry *)(__u64)p.dentry;
	vfs = (struct vfsmount *)(__u64)p.mnt;
	mnt = (void *)vfs - bpf_core_field_offset(struct mount, mnt);
	up = BPF_CORE_READ(mnt, mnt_parent);
	root = BPF_CORE_READ(vfs, mnt_root);
#pragma clang loop unroll(disable)
	for (int i = 0; i < KESTREL_PATH_DEPTH; i++) {
		if (d == root) {
			if (mnt == up) {
				*end = WALK_ROOT;
				break;
			}
			/* A mount's root: go on from where it is mounted. */
			d = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = up;
			up = BPF_CORE_READ(mnt, mnt_parent);
			root = BPF_CORE_READ(mnt, mnt.mnt_root);
			continue;
		}
		parent = BPF_CORE_READ(d, d_parent);
		/* A root that is no mount's: only a first one has a name to give. */
		if (d == parent && pos != PATH_END)
			break;
		if (bpf_probe_read_kernel(&name, sizeof(name),
					  __builtin_preserve_access_index(&d->d_name)))
			break;
		len = name.len;
		/* Room for the name and the '/' before it. */
		if (len == 0 || len >= pos)
			break;
		/* barrier_var: clang would drop a mask it can prove redundant. */
		barrier_var(len);
		len &= PATH_MASK;
		pos -= len;
		barrier_var(pos);
		pos &= PATH_MASK;
		if (bpf_probe_read_kernel(buf + pos, len, (const void *)(__u64)name.name))
			break;
		if (d == parent) {
			*end = WALK_ANON;
			break;
		}
		pos -= 1;
		barrier_var(pos);
		pos &= PATH_MASK;
		buf[pos] = '/';
		d = parent;
	}
	if (*end == WALK_ROOT && pos == PATH_END) {
		pos = PATH_END - 1;
		buf[pos] = '/';
	}
	return pos;
}

/* Copies a walked path into dst; returns its length, NUL included. */
static __always_inline __u32 put_path(char *dst, const char *buf, __u32 pos)
{
	__u32 n;

	barrier_var(pos);
	pos &= PATH_MASK;
	n = KESTREL_PATH_MAX - pos;
	if (bpf_probe_read_kernel(dst, n, buf + pos))
		return 0;
	return n;
}

static __always_inline bool is_memfd(const char *s)
{
	return s[0] == 'm' && s[1] == 'e' && s[2] == 'm' && s[3] == 'f' && s[4] == 'd' &&
	       s[5] == ':';
}

/* An overlayfs file whose ovl_inode has an upper dentry (__upperdentry
 * follows the embedded vfs inode). */
static __always_inline bool exe_upper_layer(struct file *exe)
{
	struct dentry *d = BPF_CORE_READ(exe, f_path.dentry);
	kword_t upper = 0;
	char *inode;

	if (BPF_CORE_READ(d, d_sb, s_magic) != OVERLAYFS_SUPER_MAGIC)
		return false;
	inode = (char *)BPF_CORE_READ(d, d_inode);
	if (!inode ||
	    bpf_probe_read_kernel(&upper, sizeof(upper), inode + bpf_core_type_size(struct inode)))
		return false;
	d = (struct dentry *)(__u64)upper;
	return d && BPF_CORE_READ(d, d_inode, i_ino) != 0;
}

/*
 * Bytes of data used so far, read back from the record: the verifier then
 * no longer tells apart the ways the strings before it ended, each of which
 * it would otherwise follow through every later step (147 k instructions
 * processed instead of 24 k). `max` is the bound the next write needs.
 */
static __always_inline __u64 used(struct kestrel_exec *e, __u64 max)
{
	__u64 off = (__u64)e->path_len + e->args_len + e->exepath_len;

	barrier_var(off);
	if (off > max)
		off = max;
	barrier_var(off);
	return off;
}

/*
 * Fills the four strings of e->data and their lengths; returns how many
 * bytes of data are used. Each length is bounded on its own, so the offsets
 * stay below sizeof(e->data) in a way the verifier can follow.
 */
static __always_inline __u32 exec_strings(struct kestrel_counters *c, struct kestrel_exec *e,
					  char *buf, struct task_struct *p,
					  struct linux_binprm *bprm)
{
	struct file *exe = BPF_CORE_READ(bprm, file);
	struct mm_struct *mm = BPF_CORE_READ(p, mm);
	struct fs_struct *fs = BPF_CORE_READ(p, fs);
	__u64 start, stop, n, off;
	__u32 pos;
	long r;
	int end;

	r = bpf_probe_read_kernel_str(e->data, KESTREL_PATH_MAX, BPF_CORE_READ(bprm, filename));
	if (r <= 0) {
		e->data[0] = 0;
		r = 1;
		e->hdr.flags |= KF_PATH_FAULT;
	} else if (r >= KESTREL_PATH_MAX) {
		r = KESTREL_PATH_MAX;
		e->hdr.flags |= KF_PATH_TRUNC;
	}
	off = r;
	e->path_len = off;
	e->exepath_len = 0;

	/* argv: the new image's, already copied in by the kernel. */
	start = BPF_CORE_READ(mm, arg_start);
	stop = BPF_CORE_READ(mm, arg_end);
	n = stop > start ? stop - start : 0;
	if (n > KESTREL_ARGS_MAX) {
		n = KESTREL_ARGS_MAX;
		e->hdr.flags |= KF_ARGS_TRUNC;
	}
	if (n && bpf_probe_read_user(e->data + off, n, (const void *)start)) {
		n = 0;
		e->hdr.flags |= KF_ARGS_FAULT;
	}
	e->args_len = n;

	/* Each offset is read back right before its use: 5.4's verifier keeps
	 * no bounds for a scalar spilled to the stack across the walk's helper
	 * calls (5.5 tracks them), and rejects the pointer math after. */
	pos = walk_path(__builtin_preserve_access_index(&exe->f_path), buf, &end);
	if (end == WALK_ANON && is_memfd(buf + (pos & PATH_MASK)))
		e->hdr.flags |= KF_EXE_MEMFD;
	else if (end == WALK_TRUNC)
		e->hdr.flags |= KF_EXEPATH_TRUNC;
	if (exe_upper_layer(exe))
		e->hdr.flags |= KF_EXE_UPPER_LAYER;
	off = used(e, KESTREL_PATH_MAX + KESTREL_ARGS_MAX);
	n = put_path(e->data + off, buf, pos);
	e->exepath_len = n;

	pos = walk_path(__builtin_preserve_access_index(&fs->pwd), buf, &end);
	if (end != WALK_ROOT)
		e->hdr.flags |= KF_CWD_TRUNC;
	off = used(e, 2 * KESTREL_PATH_MAX + KESTREL_ARGS_MAX);
	n = put_path(e->data + off, buf, pos);
	e->cwd_len = n;
	off += n;

	if (e->hdr.flags & (KF_PATH_FAULT | KF_ARGS_FAULT))
		c->n_drops_page_faults++;
	return off;
}

#endif /* KESTREL_EXEC_H */
