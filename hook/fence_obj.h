/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The fence's BPF object comes in two builds of bpf/fence.bpf.c with one
 * layout (the Makefile stops when their skeletons' maps, programs or rodata
 * differ):
 *  - fence.bpf.o walks a DNS name's bytes in an unrolled loop, which the
 *    verifier checks once per byte: every kernel from 5.10 takes it;
 *  - fence_loop.bpf.o walks them in a bpf_loop callback, which the verifier
 *    checks a few times: ~20k fewer instructions to verify in each of the
 *    three programs that parse names, where the kernel has bpf_loop (5.17+).
 *    5.10's verifier rejects the callback even where it would never run,
 *    hence two builds.
 * Include this in one file of a binary: it carries both objects.
 */
#ifndef DEPFENCE_FENCE_OBJ_H
#define DEPFENCE_FENCE_OBJ_H

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "fence.skel.h"
#include "fence_loop.skel.h"

/*
 * Does the kernel have bpf_loop? Loads a cgroup_skb program that calls it
 * with a callback, and the fd says: no verifier log to read (libbpf's helper
 * probe parses one). A callback needs the program's BTF to name its
 * functions, so the probe brings two. One program type answers for the
 * three that parse names: bpf_loop is a base helper, which every type has
 * from the kernel that brought it (and fence_objs_load falls back should a
 * kernel refuse the loop build all the same).
 */
static inline bool fence_kernel_has_bpf_loop(void)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_1, .imm = 1 },
		/* r2 = the callback at insn 8: ld_imm64 of a function, 8 - (1 + 1) ahead */
		{ .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = BPF_REG_2, .src_reg = BPF_PSEUDO_FUNC,
		  .imm = 6 },
		{},
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_3, .imm = 0 },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_4, .imm = 0 },
		{ .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_loop },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 1 },
		{ .code = BPF_JMP | BPF_EXIT },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	struct bpf_func_info funcs[2] = { { .insn_off = 0 }, { .insn_off = 8 } };
	struct btf *btf = btf__new_empty();
	int fd = -1, proto;

	if (!btf)
		return false;
	proto = btf__add_func_proto(btf, btf__add_int(btf, "int", 4, BTF_INT_SIGNED));
	funcs[0].type_id = btf__add_func(btf, "probe", BTF_FUNC_STATIC, proto);
	funcs[1].type_id = btf__add_func(btf, "probe_cb", BTF_FUNC_STATIC, proto);
	if (proto > 0 && (int)funcs[0].type_id > 0 && (int)funcs[1].type_id > 0 &&
	    btf__load_into_kernel(btf) == 0) {
		LIBBPF_OPTS(bpf_prog_load_opts, o, .prog_btf_fd = btf__fd(btf), .func_info = funcs,
			    .func_info_cnt = 2, .func_info_rec_size = sizeof(funcs[0]));

		fd = bpf_prog_load(BPF_PROG_TYPE_CGROUP_SKB, NULL, "GPL", insns, sizeof(insns) / sizeof(insns[0]), &o);
	}
	btf__free(btf);
	if (fd < 0)
		return false;
	close(fd);
	return true;
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
