/* SPDX-License-Identifier: GPL-2.0 */
/*
 * libbpf's CO-RE reads, fitted to 32-bit kernels. BPF_CORE_READ copies
 * sizeof(the local field) bytes, and a BPF pointer or long is 8 bytes: on a
 * 32-bit ARM kernel that is the field and the next one. There every read
 * (each step of a chain too) copies the kernel field's own size, relocated
 * like its offset, into a zeroed destination: pointers and unsigned longs
 * arrive zero-extended, so they compare and index as on 64-bit kernels.
 * Elsewhere the sizes agree and libbpf's macro is used as is.
 */
#ifndef KESTREL_CORE_READ_H
#define KESTREL_CORE_READ_H

#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

/* A BPF-to-BPF call (4.16+, JIT or interpreter), except on 32-bit ARM,
 * whose JIT has none: inlined there. */
#if defined(__TARGET_ARCH_arm)
#define __out_of_line __always_inline
#else
#define __out_of_line __noinline
#endif

#if defined(__TARGET_ARCH_arm)
#define KCORE_MIN(a, b) ((a) < (b) ? (a) : (b))
#define kcore_read(read_fn, dst, field)                                                       \
	({                                                                                    \
		__builtin_memset((void *)(dst), 0, sizeof(*(dst)));                           \
		read_fn((void *)(dst), KCORE_MIN(sizeof(*(dst)), bpf_core_field_size(field)), \
			&(field));                                                            \
	})
#undef ___read
#define ___read(read_fn, dst, src_type, src, accessor) \
	kcore_read(read_fn, dst, ((src_type)(src))->accessor)
#endif

#endif /* KESTREL_CORE_READ_H */
