/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Process attribution: types and limits shared by attrib.bpf.c, fence.bpf.c
 * and user space. Fixed-width types only: no pointers, no bool, no long.
 *
 * One set of programs per host (pinned under <bpffs root>/@attrib/) follows
 * exec, fork and exit of the processes in fenced cgroups. Every program a
 * fenced process runs is an "image": its exe, argv, comm and the image that
 * forked the process. A process that forks without exec gets an image too,
 * with no argv of its own (it runs its parent's). Images live in a host-wide
 * map keyed by (tgid, id), id being the time the image began, so pid reuse
 * and re-exec never mix; `procs` says which image each live process runs,
 * and the fence programs put that image's id in every record they make.
 */
#ifndef DEPFENCE_BPF_ATTRIB_H
#define DEPFENCE_BPF_ATTRIB_H

#include <linux/types.h>

/* Host-wide sizes. */
#define DF_ATTRIB_FENCES 256 /* fences at once (slots) */
#define DF_ATTRIB_CGROUPS 4096 /* fenced cgroups, sub-cgroups included */
#define DF_ATTRIB_PROCS 65536 /* live processes in fences */
#define DF_ATTRIB_IMAGES 65536 /* images kept, all fences together */
/* Per fence: images kept at once; past it, processes go unattributed and are counted. */
#define DF_ATTRIB_IMAGES_PER_FENCE 4096

#define DF_ARGS_MAX 512 /* argv bytes kept per image (NUL-separated); a power of two */
#define DF_EXE_MAX 256 /* exe path bytes kept, NUL included; a power of two */
#define DF_ATTRIB_COMM 16
/* Parents walked: when an image is dropped (kernel) and for the report's ancestry. */
#define DF_ANCESTRY_MAX 16

/* Image flags */
#define DF_IMG_EXEC 0x0001 /* begun by exec: exe and argv are its own */
#define DF_IMG_FORK 0x0002 /* begun by fork: runs its parent's program, argv empty */
#define DF_IMG_TRUNCATED 0x0004 /* argv was longer than DF_ARGS_MAX */
#define DF_IMG_USED 0x0008 /* an event names it: kept until the fence ends */
#define DF_IMG_EXITED 0x0010 /* the process exited */
#define DF_IMG_REPLACED 0x0020 /* the process exec'd another program */
#define DF_IMG_SCRIPT 0x0040 /* a #! script: exe is the interpreter, argv[1] the script */
#define DF_IMG_NO_ARGS 0x0080 /* argv could not be read */
#define DF_IMG_ENV 0x0100 /* a #! script whose interpreter is env: env execs the real one next */
#define DF_IMG_VIA_ENV 0x0200 /* exec'd by env for such a script: argv[1] is the script */

/* fenced: cgroup id -> the fence that owns it. */
struct df_fenced_cg {
	__u32 slot;
	__u32 gen;
};

/* slots[slot]: one fence's share of the host-wide maps. */
struct df_slot {
	__u32 gen; /* nonzero while a fence owns the slot; checked on every use */
	__u32 images; /* images kept now */
	__u32 images_max;
	__u32 pad;
	__u64 execs; /* execs seen in the fence */
	__u64 forks; /* processes forked in (or into) the fence */
	__u64 lost; /* processes whose image was not kept (bounds) */
	__u64 cgroups_lost; /* sub-cgroups that could not be followed */
};

/* procs: tgid -> the image the process runs now. */
struct df_proc {
	__u64 image; /* its id; 0: not kept */
	__u32 slot;
	__u32 gen;
	__u32 used; /* set by the fence programs when a record names the image */
	__u32 pad;
};

struct df_image_key {
	__u32 tgid;
	__u32 pad;
	__u64 id; /* CLOCK_MONOTONIC ns when the image began; never 0 */
};

struct df_image {
	struct df_image_key parent; /* the image that forked the process; id 0: none in the fence */
	__u64 start_ns; /* CLOCK_MONOTONIC */
	__u64 end_ns; /* exit or re-exec; 0 while it runs */
	__u32 slot;
	__u32 gen;
	__u32 ppid; /* tgid of the parent at exec or fork, in the fence or not */
	__u32 uid;
	__u32 flags; /* DF_IMG_* */
	__u32 refs; /* images whose parent this is */
	__u32 args_len; /* bytes in args */
	__u32 pad;
	char comm[DF_ATTRIB_COMM];
	char exe[DF_EXE_MAX];
	char args[DF_ARGS_MAX];
};

#endif
