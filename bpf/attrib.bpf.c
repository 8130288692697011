// SPDX-License-Identifier: GPL-2.0
/*
 * depfence: process attribution, once per host.
 *
 * exec, fork and exit of the processes in fenced cgroups keep an image of
 * every program they run (bpf/attrib.h), so a report can name the process
 * that made a call and the chain of processes above it, long after they
 * exited. Processes outside fences cost one cgroup id read and one hash
 * lookup at fork, exec and process exit, and nothing else.
 *
 * Memory: an image is dropped when its program ends (exit or re-exec) and no
 * record names it and no kept image names it as parent; what a fence keeps at
 * once is bounded by its slot's images_max, and what did not fit is counted.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "attrib.h"

char LICENSE[] SEC("license") = "GPL";

/* The kernel's own types, only the fields read here; CO-RE relocates the offsets. */
typedef struct {
	int counter;
} atomic_t;

struct kernfs_node {
	__u64 id;
} __attribute__((preserve_access_index));

struct cgroup_root {
	int hierarchy_id; /* 0: the cgroup v2 hierarchy */
} __attribute__((preserve_access_index));

struct cgroup;

struct cgroup_subsys_state {
	struct cgroup *cgroup;
	struct cgroup_subsys_state *parent;
} __attribute__((preserve_access_index));

struct cgroup {
	struct cgroup_subsys_state self;
	struct kernfs_node *kn;
	struct cgroup_root *root;
} __attribute__((preserve_access_index));

struct css_set {
	struct cgroup *dfl_cgrp;
} __attribute__((preserve_access_index));

struct signal_struct {
	atomic_t live; /* threads not yet exiting */
} __attribute__((preserve_access_index));

struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
} __attribute__((preserve_access_index));

struct linux_binprm {
	const char *filename; /* as passed to execve */
	const char *interp; /* what runs: the #! interpreter for a script, else filename */
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
	int tgid;
	struct task_struct *real_parent;
	struct css_set *cgroups;
	struct signal_struct *signal;
	struct mm_struct *mm;
} __attribute__((preserve_access_index));

/* Keep a value within [0, mask] where clang would drop a C mask after a range check. */
#define BOUND(v, mask) asm volatile("%0 &= " #mask : "+r"(v))

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DF_ATTRIB_CGROUPS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, struct df_fenced_cg);
} fenced SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DF_ATTRIB_FENCES);
	__type(key, __u32);
	__type(value, struct df_slot);
} slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DF_ATTRIB_PROCS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct df_proc);
} procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DF_ATTRIB_IMAGES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct df_image_key);
	__type(value, struct df_image);
} images SEC(".maps");

/* An image is built here: it is too large for the stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct df_image);
} scratch SEC(".maps");

static __always_inline struct df_slot *slot_get(__u32 slot, __u32 gen)
{
	struct df_slot *s = bpf_map_lookup_elem(&slots, &slot);

	if (!s || !gen || s->gen != gen)
		return NULL;
	return s;
}

/* The fence of the cgroup with this id, or NULL. */
static __always_inline const struct df_fenced_cg *fence_of(__u64 cgid)
{
	return bpf_map_lookup_elem(&fenced, &cgid);
}

/*
 * The parent an image links to: the image procs says tgid runs now, when it
 * is in the same fence.
 */
static __always_inline void parent_of(__u32 tgid, const struct df_fenced_cg *f,
				      struct df_image_key *ret)
{
	const struct df_proc *pp = bpf_map_lookup_elem(&procs, &tgid);

	ret->tgid = 0;
	ret->pad = 0;
	ret->id = 0;
	if (!pp || !pp->image || pp->slot != f->slot || pp->gen != f->gen)
		return;
	ret->tgid = tgid;
	ret->id = pp->image;
}

/*
 * Keep img under key when the fence's share allows it, and count a
 * reference on its parent. 1 when kept, 0 when counted as lost.
 */
static __always_inline int keep_image(struct df_slot *s, const struct df_image_key *key,
				      struct df_image *img)
{
	struct df_image *parent = NULL;

	if (img->parent.id) {
		parent = bpf_map_lookup_elem(&images, &img->parent);
		if (!parent)
			img->parent.id = 0; /* not kept: the chain starts here */
	}
	if (s->images >= s->images_max)
		goto lost;
	if (bpf_map_update_elem(&images, key, img, BPF_NOEXIST))
		goto lost;
	__sync_fetch_and_add(&s->images, 1);
	if (parent)
		__sync_fetch_and_add(&parent->refs, 1);
	return 1;
lost:
	__sync_fetch_and_add(&s->lost, 1);
	return 0;
}

static __always_inline void set_proc(struct df_slot *s, __u32 tgid, __u64 image,
				     const struct df_fenced_cg *f)
{
	struct df_proc pr = {
		.image = image,
		.slot = f->slot,
		.gen = f->gen,
	};

	/* the host's table of live fenced processes is full: its image is kept, unnamed */
	if (bpf_map_update_elem(&procs, &tgid, &pr, BPF_ANY) && image)
		__sync_fetch_and_add(&s->lost, 1);
}

/*
 * The program of image key ended (why: exit or re-exec). Drop it unless a
 * record or a kept child names it, and walk up: a parent that ended and lost
 * its last child goes too.
 */
static __always_inline void end_image(struct df_image_key *key, __u32 used, __u32 why, __u64 now)
{
	struct df_image_key k = *key, up;
	struct df_image *img;
	__u32 slot, gen;

	img = bpf_map_lookup_elem(&images, &k);
	if (!img)
		return;
	img->end_ns = now;
	img->flags |= why | (used ? DF_IMG_USED : 0);
	for (int i = 0; i < DF_ANCESTRY_MAX; i++) {
		if ((img->flags & DF_IMG_USED) || img->refs || !img->end_ns)
			return;
		up = img->parent;
		slot = img->slot;
		gen = img->gen;
		if (bpf_map_delete_elem(&images, &k) == 0) {
			struct df_slot *s = slot_get(slot, gen);

			if (s && s->images)
				__sync_fetch_and_add(&s->images, -1);
		}
		if (!up.id)
			return;
		img = bpf_map_lookup_elem(&images, &up);
		if (!img)
			return;
		__sync_fetch_and_add(&img->refs, -1);
		k = up;
	}
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(df_exec, struct task_struct *p, int old_pid, struct linux_binprm *bprm)
{
	const struct df_fenced_cg *f = fence_of(bpf_get_current_cgroup_id());
	struct df_image_key key, old_key = {};
	const struct df_proc *old;
	struct df_image *img, *oimg;
	struct df_slot *s;
	const char *interp;
	__u64 now, start, end, len;
	__u32 zero = 0, tgid, old_used = 0, ppid, flags = DF_IMG_EXEC, i;
	int kept, n;

	if (!f)
		return 0;
	s = slot_get(f->slot, f->gen);
	img = bpf_map_lookup_elem(&scratch, &zero);
	if (!s || !img)
		return 0;
	__sync_fetch_and_add(&s->execs, 1);
	now = bpf_ktime_get_ns();
	tgid = bpf_get_current_pid_tgid() >> 32;
	ppid = p->real_parent->tgid;

	/* the image this exec replaces gives the parent; else the parent process's image */
	img->parent.tgid = 0;
	img->parent.pad = 0;
	img->parent.id = 0;
	old = bpf_map_lookup_elem(&procs, &tgid);
	if (old) {
		old_key.tgid = tgid;
		old_key.id = old->image;
		old_used = old->used;
		if (old->image && old->slot == f->slot && old->gen == f->gen) {
			oimg = bpf_map_lookup_elem(&images, &old_key);
			if (oimg) {
				img->parent = oimg->parent;
				if (oimg->flags & DF_IMG_ENV)
					flags |= DF_IMG_VIA_ENV;
			}
		}
	}
	if (!img->parent.id)
		parent_of(ppid, f, &img->parent);

	img->start_ns = now;
	img->end_ns = 0;
	img->slot = f->slot;
	img->gen = f->gen;
	img->ppid = ppid;
	img->uid = (__u32)bpf_get_current_uid_gid();
	img->refs = 0;
	img->pad = 0;
	bpf_get_current_comm(img->comm, sizeof(img->comm));

	interp = bprm->interp;
	if (interp != bprm->filename)
		flags |= DF_IMG_SCRIPT;
	n = bpf_probe_read_kernel_str(img->exe, sizeof(img->exe), interp);
	if (n < 0)
		img->exe[0] = '\0';
	/* "#!/usr/bin/env bash": the script's name is what a person calls it by, not bash */
	if ((flags & DF_IMG_SCRIPT) && n >= 5 && n <= DF_EXE_MAX) {
		i = (__u32)n - 5;
		BOUND(i, 255);
		if (i <= DF_EXE_MAX - 5 && img->exe[i] == '/' && img->exe[i + 1] == 'e' &&
		    img->exe[i + 2] == 'n' && img->exe[i + 3] == 'v')
			flags |= DF_IMG_ENV;
	}
	img->flags = flags;

	start = p->mm->arg_start;
	end = p->mm->arg_end;
	len = end > start ? end - start : 0;
	if (len > DF_ARGS_MAX) {
		len = DF_ARGS_MAX;
		img->flags |= DF_IMG_TRUNCATED;
	}
	img->args_len = 0;
	if (len > 0) {
		len -= 1;
		BOUND(len, 511); /* DF_ARGS_MAX - 1 */
		len += 1;
		if (bpf_probe_read_user(img->args, len, (const void *)start) == 0)
			img->args_len = (__u32)len;
		else
			img->flags |= DF_IMG_NO_ARGS;
	}

	key.tgid = tgid;
	key.pad = 0;
	key.id = now;
	kept = keep_image(s, &key, img);
	set_proc(s, tgid, kept ? now : 0, f);
	if (old && old_key.id)
		end_image(&old_key, old_used, DF_IMG_REPLACED, now);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(df_fork, struct task_struct *parent, struct task_struct *child)
{
	const struct df_fenced_cg *f;
	struct df_image_key key;
	struct df_image *img;
	struct df_slot *s;
	__u32 zero = 0, tgid, ptgid;
	__u64 now;
	int kept;

	if (child->pid != child->tgid)
		return 0; /* a thread: it runs its process's image */
	/* the child's own cgroup: clone3(CLONE_INTO_CGROUP) may place it apart from its parent */
	f = fence_of(child->cgroups->dfl_cgrp->kn->id);
	if (!f)
		return 0;
	s = slot_get(f->slot, f->gen);
	img = bpf_map_lookup_elem(&scratch, &zero);
	if (!s || !img)
		return 0;
	__sync_fetch_and_add(&s->forks, 1);
	now = bpf_ktime_get_ns();
	tgid = child->tgid;
	ptgid = parent->tgid;

	parent_of(ptgid, f, &img->parent);
	img->start_ns = now;
	img->end_ns = 0;
	img->slot = f->slot;
	img->gen = f->gen;
	img->ppid = ptgid;
	img->uid = (__u32)bpf_get_current_uid_gid();
	img->flags = DF_IMG_FORK;
	img->refs = 0;
	img->args_len = 0;
	img->pad = 0;
	img->exe[0] = '\0';
	bpf_get_current_comm(img->comm, sizeof(img->comm));

	key.tgid = tgid;
	key.pad = 0;
	key.id = now;
	kept = keep_image(s, &key, img);
	set_proc(s, tgid, kept ? now : 0, f);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(df_exit, struct task_struct *p)
{
	struct df_image_key key = {};
	const struct df_proc *pr;
	__u32 tgid, used;

	if (p->signal->live.counter)
		return 0; /* a thread: the process goes on */
	tgid = p->tgid;
	pr = bpf_map_lookup_elem(&procs, &tgid);
	if (!pr)
		return 0;
	key.tgid = tgid;
	key.id = pr->image;
	used = pr->used;
	bpf_map_delete_elem(&procs, &tgid);
	if (key.id)
		end_image(&key, used, DF_IMG_EXITED, bpf_ktime_get_ns());
	return 0;
}

/* A cgroup made under a fenced one is fenced too (cgroup programs apply to descendants). */
SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(df_cgmkdir, struct cgroup *cgrp, const char *path)
{
	const struct df_fenced_cg *f;
	struct df_fenced_cg v;
	struct df_slot *s;
	__u64 id;

	if (cgrp->root->hierarchy_id != 0)
		return 0; /* a cgroup v1 hierarchy: its ids are its own */
	/* kernfs_node.parent became __parent in 6.14: go through the css instead */
	f = fence_of(cgrp->self.parent->cgroup->kn->id);
	if (!f)
		return 0;
	v = *f;
	id = cgrp->kn->id;
	if (bpf_map_update_elem(&fenced, &id, &v, BPF_NOEXIST)) {
		s = slot_get(v.slot, v.gen);
		if (s)
			__sync_fetch_and_add(&s->cgroups_lost, 1);
	}
	return 0;
}

SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(df_cgrmdir, struct cgroup *cgrp, const char *path)
{
	__u64 id;

	if (cgrp->root->hierarchy_id != 0)
		return 0;
	id = cgrp->kn->id;
	bpf_map_delete_elem(&fenced, &id);
	return 0;
}
