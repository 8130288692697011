/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The fence's BPF object comes in two builds of bpf/fence.bpf.c with one
 * layout (the Makefile stops when their skeletons' maps, programs or rodata
 * differ):
 *  - fence.bpf.o walks a DNS name's bytes in an unrolled loop, which the
 *    verifier checks once per byte: every kernel from 5.10 takes it;
 *  - fence_loop.bpf.o walks them in a bpf_loop callback, checked once:
 *    ~25k fewer instructions to verify in each of the three programs that
 *    parse names, where the kernel has bpf_loop (5.17+). 5.10's verifier
 *    rejects the callback even where it would never run, hence two builds.
 * Include this in one file of a binary: it carries both objects.
 */
#ifndef DEPFENCE_FENCE_OBJ_H
#define DEPFENCE_FENCE_OBJ_H

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include <bpf/libbpf.h>

#include "fence.skel.h"
#include "fence_loop.skel.h"

/* Does the kernel have bpf_loop for the fence's program types? */
static inline bool fence_kernel_has_bpf_loop(void)
{
	return libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SKB, BPF_FUNC_loop, NULL) > 0 &&
	       libbpf_probe_bpf_helper(BPF_PROG_TYPE_SK_MSG, BPF_FUNC_loop, NULL) > 0;
}

/*
 * Open one build through fence.skel.h's skeleton (fence_bpf__open_opts with
 * the other object's bytes): NULL with errno set when it cannot.
 */
static inline struct fence_bpf *fence_bpf_open_build(bool loop)
{
	struct fence_bpf *obj = calloc(1, sizeof(*obj));
	int err;

	if (!obj) {
		errno = ENOMEM;
		return NULL;
	}
	err = fence_bpf__create_skeleton(obj);
	if (!err && loop)
		obj->skeleton->data = (void *)fence_loop_bpf__elf_bytes(&obj->skeleton->data_sz);
	if (!err)
		err = bpf_object__open_skeleton(obj->skeleton, NULL);
	if (err) {
		fence_bpf__destroy(obj);
		errno = -err;
		return NULL;
	}
	return obj;
}

#endif
