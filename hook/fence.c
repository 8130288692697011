// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <sys/statfs.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../oci/json.h"
#include "fence.h"
#include "breakglass.h"
#include "cgroup.h"
#include "fence_obj.h"
#include "fence_objid.h"
#include "cli.h"
#include "livefence.h"
#include "pool.h"

static void fence_bpf_freep(struct fence_bpf **s)
{
	if (*s)
		fence_bpf__destroy(*s);
}
#define _cleanup_skel_ _cleanup_(fence_bpf_freep)

/*
 * A fence's programs are verified on two CPUs at once. The kernel verifies
 * one program per bpf() call and libbpf loads an object's programs one after
 * the other, while verification is most of a container's added start time
 * (~60 ms of CPU here, df_egress ~20 ms of it). So the object is opened
 * three times: maps creates the maps, and each of half[0] and half[1]
 * verifies its share of the programs against those maps (bpf_map__reuse_fd),
 * half[0] on a second thread. The maps object loads one program itself,
 * the cheap df_connect4 (FIRST_PROG), so that libbpf's feature probes for
 * loading programs run once, on this thread, before the halves start: the
 * calls each thread makes do not depend on which got there first. The
 * shares are balanced by each program's verification time as make bench
 * measures it (6.18; the same order on 5.10 to 6.18), largest first onto
 * the lighter half, over the programs this fence loads.
 */
struct fence_objs {
	struct fence_bpf *maps;
	struct fence_bpf *half[2];
	bool loop; /* the bpf_loop build (fence_obj.h) */
	unsigned int want; /* the programs the fence loads, by their order in the object */
};

static const struct {
	const char *name;
	int ms; /* verification, ms, 6.18 (the bpf_loop build) */
} verify_cost[] = {
	{ "df_egress", 18 },  { "df_dns_msg", 15 }, { "df_ingress", 10 }, { "df_connect6", 5 },
	{ "df_sendmsg6", 4 }, { "df_sendmsg4", 3 },
};

#define FIRST_PROG "df_connect4"

static void fence_objs_free(struct fence_objs *o)
{
	fence_bpf__destroy(o->maps);
	fence_bpf__destroy(o->half[0]);
	fence_bpf__destroy(o->half[1]);
	memset(o, 0, sizeof(*o));
}
#define _cleanup_objs_ _cleanup_(fence_objs_free)

/* Does the fence load the program of this name (o->want)? */
static bool wanted(const struct fence_objs *o, const char *name)
{
	struct bpf_program *p;
	unsigned int k = 0;

	bpf_object__for_each_program(p, o->maps->obj) {
		if (!strcmp(bpf_program__name(p), name))
			return k < 32 && (o->want >> k & 1);
		k++;
	}
	return false;
}

/*
 * Share the programs the fence loads, but FIRST_PROG, between the halves:
 * those verify_cost weighs largest first onto the lighter, the others
 * (sock_ops: ~0 ms) to half 1.
 */
static int split_halves(struct fence_objs *o)
{
	int load[2] = { 0, 0 }, r;
	struct bpf_program *p;

	for (int i = 0; i < 2; i++)
		bpf_object__for_each_program(p, o->half[i]->obj) {
			const char *name = bpf_program__name(p);

			r = bpf_program__set_autoload(p, i == 1 && wanted(o, name) &&
							      strcmp(name, FIRST_PROG));
			if (r < 0)
				return r;
		}
	for (size_t i = 0; i < ARRAY_SIZE(verify_cost); i++) {
		int h = load[1] < load[0];

		if (!wanted(o, verify_cost[i].name))
			continue;
		load[h] += verify_cost[i].ms;
		r = bpf_program__set_autoload(
			bpf_object__find_program_by_name(o->half[h]->obj, verify_cost[i].name), true);
		if (r == 0)
			r = bpf_program__set_autoload(
				bpf_object__find_program_by_name(o->half[!h]->obj, verify_cost[i].name),
				false);
		if (r < 0)
			return r;
	}
	return 0;
}

struct half_load {
	struct bpf_object *obj;
	int r;
};

static void *half_load_main(void *arg)
{
	struct half_load *h = arg;

	h->r = bpf_object__load(h->obj);
	return NULL;
}

/*
 * Open the halves in the build loop names, give them o->maps's maps (loaded)
 * and load them, half[0] on a second thread. 0 or -errno.
 */
static int load_halves(struct fence_objs *o, bool loop)
{
	struct half_load h[2] = {};
	struct bpf_map *m;
	pthread_t th;
	int r;

	/* the rodata needs no copy: the halves reuse the maps object's, frozen */
	for (int i = 0; i < 2; i++) {
		o->half[i] = fence_bpf_open_build(loop);
		if (!o->half[i])
			return -errno;
	}
	r = split_halves(o);
	if (r < 0)
		return r;
	for (int i = 0; i < 2; i++) {
		/* one source, three opens: the same maps in the same order (the Makefile checks the builds agree) */
		const struct bpf_map *mm = NULL;

		bpf_object__for_each_map(m, o->half[i]->obj) {
			mm = bpf_object__next_map(o->maps->obj, mm);
			/* (a reused map takes the kernel's name for it: compare types) */
			if (!mm || bpf_map__type(m) != bpf_map__type(mm))
				return -EINVAL;
			r = bpf_map__reuse_fd(m, bpf_map__fd(mm));
			if (r < 0)
				return r;
		}
		h[i].obj = o->half[i]->obj;
	}
	/* without a second thread (none to be had) the first half loads here too */
	r = pthread_create(&th, NULL, half_load_main, &h[0]);
	if (r != 0)
		half_load_main(&h[0]);
	half_load_main(&h[1]);
	if (r == 0)
		pthread_join(th, NULL);
	return h[0].r < 0 ? h[0].r : h[1].r;
}

/*
 * Load o->maps as configured (its rodata, map sizes and the programs set to
 * load): the maps and FIRST_PROG in it, the other programs split between
 * the two halves. Should a kernel with bpf_loop refuse the loop build, the
 * halves load the unrolled one, which every supported kernel takes (FIRST_PROG
 * and the maps are the same in both). On success every program set to load
 * is loaded once, found by fence_prog(); 0 or -errno.
 */
static int fence_objs_load(struct fence_objs *o)
{
	struct bpf_program *p;
	unsigned int k = 0;
	int r;

	bpf_object__for_each_program(p, o->maps->obj) {
		if (k >= 32)
			return -E2BIG;
		if (bpf_program__autoload(p))
			o->want |= 1u << k;
		k++;
		if (!strcmp(bpf_program__name(p), FIRST_PROG))
			continue;
		r = bpf_program__set_autoload(p, false);
		if (r < 0)
			return r;
	}
	r = fence_bpf__load(o->maps);
	if (r < 0)
		return r;
	r = load_halves(o, o->loop);
	if (r < 0 && o->loop) {
		df_info("the bpf_loop build of the fence's programs did not load (%s); loading the unrolled build",
			strerror(-r));
		for (int i = 0; i < 2; i++) {
			fence_bpf__destroy(o->half[i]);
			o->half[i] = NULL;
		}
		o->loop = false;
		r = load_halves(o, false);
	}
	return r;
}

/* The loaded program by its name, from whichever half loaded it. */
static struct bpf_program *fence_prog(const struct fence_objs *o, const char *name)
{
	struct bpf_object *objs[] = { o->maps->obj, o->half[0]->obj, o->half[1]->obj };

	for (size_t i = 0; i < ARRAY_SIZE(objs); i++) {
		struct bpf_program *p = bpf_object__find_program_by_name(objs[i], name);

		if (p && bpf_program__fd(p) >= 0)
			return p;
	}
	return NULL;
}

/* run takes up to a million rules: the state file must hold them all */
#define STATE_MAX (256 * 1024 * 1024)

/* the config last: pinned once its flags are final (fence_start) */
static const char *const pin_maps[] = { "counters", "records", "names", "config" };
static const char *const pin_links[] = { "connect4", "connect6", "sendmsg4", "sendmsg6",
					 "egress", "ingress" };
/* enforce fences only; see attach_dns_tcp() */
#define PIN_DNS_TCP "dns_tcp"
#define PIN_DNS_SOCKS "dns_socks"

void fence_state_free(struct fence_state *s)
{
	df_policy_free(&s->policy);
}

void fence_data_free(struct fence_data *d)
{
	attrib_data_free(&d->attrib);
	free(d->recs);
	free(d->breakglass);
	memset(d, 0, sizeof(*d));
}

static int is_bpffs(const char *path)
{
	struct statfs sf;

	if (statfs(path, &sf) < 0)
		return -errno;
	return sf.f_type == BPF_FS_MAGIC;
}

/*
 * Can cgroup_skb programs call get_current_pid_tgid, _uid_gid and _comm?
 * Load one that does: libbpf's helper probe takes 6.12's "program of this
 * type cannot use helper" for some other failure and says yes.
 */
int fence_probe_skb_task_helpers(void)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_get_current_pid_tgid },
		{ .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_get_current_uid_gid },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = BPF_REG_1, .src_reg = BPF_REG_10 },
		{ .code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = BPF_REG_1, .imm = -16 },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_2, .imm = 16 },
		{ .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_get_current_comm },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 1 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	int fd = bpf_prog_load(BPF_PROG_TYPE_CGROUP_SKB, NULL, "GPL", insns, ARRAY_SIZE(insns),
			       NULL);

	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

int fence_probe_bpf_loop(void)
{
	return fence_kernel_has_bpf_loop();
}

/*
 * Open the fence's programs and load them as fence_start would, then let
 * them go: does this kernel's verifier take them?
 */
static int probe_load_build(bool loop, struct df_error *e)
{
	_cleanup_skel_ struct fence_bpf *skel = fence_bpf_open_build(loop);
	int r;

	if (!skel)
		return df_fail(e, -errno, "open BPF object: %s", strerror(errno));
	skel->rodata->skb_task_helpers = fence_probe_skb_task_helpers() > 0;
	r = fence_bpf__load(skel);
	if (r < 0)
		return df_fail(e, r, "load BPF programs: %s (run with --verbose for the verifier log)",
			       strerror(-r));
	return 0;
}

/* the build fence_start loads, with its fallback (fence_objs_load) */
int fence_probe_load(struct df_error *e)
{
	bool loop = fence_kernel_has_bpf_loop();
	int r = probe_load_build(loop, e);

	if (r < 0 && loop) {
		memset(e, 0, sizeof(*e));
		r = probe_load_build(false, e);
	}
	return r;
}

int fence_bpffs_where(const char *root, char *ret_dir, size_t len, struct df_error *e)
{
	char cur[PATH_MAX];
	int r;

	snprintf(cur, sizeof(cur), "%s", root);
	/* the deepest existing ancestor decides */
	for (;;) {
		struct stat st;
		char *slash;

		if (stat(cur, &st) == 0)
			break;
		if (errno != ENOENT)
			return df_fail(e, -errno, "bpffs root %s: %s", cur, strerror(errno));
		slash = strrchr(cur, '/');
		if (!slash || slash == cur)
			return df_fail(e, -ENOENT, "bpffs root %s: no existing parent", root);
		*slash = '\0';
	}
	r = is_bpffs(cur);
	if (r < 0)
		return df_fail(e, r, "statfs %s: %s", cur, strerror(-r));
	snprintf(ret_dir, len, "%s", cur);
	return r;
}

int fence_ensure_bpffs(const char *root, struct df_error *e)
{
	char cur[PATH_MAX];
	int r;

	r = fence_bpffs_where(root, cur, sizeof(cur), e);
	if (r < 0)
		return r;
	if (!r) {
		/* Mount bpffs only at its usual place, never over another directory. */
		if (strcmp(cur, "/sys/fs/bpf"))
			return df_fail(e, -ENOTSUP,
				       "bpffs root %s: %s is not on a bpf filesystem (mount one, or use a bpffs_root under /sys/fs/bpf)",
				       root, cur);
		if (mount("bpf", "/sys/fs/bpf", "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  "mode=0700") < 0)
			return df_fail(e, -errno, "mount bpffs on /sys/fs/bpf: %s", strerror(errno));
	}
	r = mkdir_p(root, 0700);
	if (r < 0)
		return df_fail(e, r, "mkdir %s: %s", root, strerror(-r));
	return 0;
}

static int join(char *buf, size_t len, const char *a, const char *b, const char *c)
{
	int n = c ? snprintf(buf, len, "%s/%s/%s", a, b, c) : snprintf(buf, len, "%s/%s", a, b);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int fill_rules(struct bpf_map *map, int family, const struct df_compiled *c,
		      struct df_error *e)
{
	size_t ksz = family == 4 ? sizeof(struct df_key4) : sizeof(struct df_key6);

	for (size_t i = 0; i < c->n; i++) {
		struct df_key4 k4;
		const void *key = &c->keys[i];

		if (family == 4) {
			k4.prefixlen = c->keys[i].prefixlen;
			memcpy(&k4.addr, c->keys[i].addr, 4);
			key = &k4;
		}
		if (bpf_map__update_elem(map, key, ksz, &c->vals[i], sizeof(c->vals[i]), BPF_ANY) <
		    0)
			return df_fail(e, -errno, "fill rules%d: %s", family, strerror(errno));
	}
	return 0;
}

/* the links attach_pinned made, held by this process (see there) */
static int held_links[ARRAY_SIZE(pin_links) + 1];
static size_t n_held_links;

/* Let go of the links this process attached: with their pins gone, they detach. */
static void release_held_links(void)
{
	while (n_held_links)
		close(held_links[--n_held_links]);
}

/* Unpin the fence's links: its programs let go of the cgroup. 0 or -errno. */
static int unpin_links(int dfd)
{
	int r = 0;

	for (size_t i = 0; i < ARRAY_SIZE(pin_links); i++)
		if (unlinkat(dfd, pin_links[i], 0) < 0 && errno != ENOENT)
			r = -errno;
	if (unlinkat(dfd, PIN_DNS_TCP, 0) < 0 && errno != ENOENT)
		r = -errno;
	return r;
}

int fence_remove_state(const struct df_host_config *hc, const char *id)
{
	char path[PATH_MAX];

	if (safe_id(id) < 0)
		return -EINVAL;
	if (join(path, sizeof(path), hc->state_dir, id, NULL) < 0)
		return -ENAMETOOLONG;
	strncat(path, ".json", sizeof(path) - strlen(path) - 1);
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* Unpin everything in a fence's pin directory, links first, and remove it. 0 or -errno. */
static int remove_pin_dir(const char *dir)
{
	DIR *d;
	int r = 0;

	d = opendir(dir);
	if (d) {
		struct dirent *de;

		/* links first: removing their pins detaches the programs */
		r = unpin_links(dirfd(d));
		while ((de = readdir(d))) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT)
				r = -errno;
		}
		closedir(d);
		if (rmdir(dir) < 0 && errno != ENOENT)
			r = -errno;
	} else if (errno != ENOENT) {
		r = -errno;
	}
	return r;
}

int fence_remove(const struct df_host_config *hc, const char *id)
{
	char dir[PATH_MAX];
	int r, r2;

	if (safe_id(id) < 0)
		return -EINVAL;
	if (join(dir, sizeof(dir), hc->bpffs_root, id, NULL) < 0)
		return -ENAMETOOLONG;
	r = remove_pin_dir(dir);
	r2 = fence_remove_state(hc, id);
	return r < 0 ? r : r2;
}

static void hold_set(const char *dir, int dfd);

struct retire_arg {
	const struct df_host_config *hc;
	const char *id, *dir;
	int dfd;
};

/* the pool's detach step: held on the hold cgroup first, so the kernel's static keys stay on */
static int retire_links(void *arg)
{
	const struct retire_arg *a = arg;
	int r;

	hold_set(a->dir, a->dfd);
	r = unpin_links(a->dfd);
	release_held_links();
	return r;
}

static int retire_state(void *arg)
{
	const struct retire_arg *a = arg;

	return fence_remove_state(a->hc, a->id);
}

int fence_retire(const struct df_host_config *hc, const struct fence_state *st, int keep)
{
	struct retire_arg a = { hc, st->id, NULL, -1 };
	_cleanup_close_ int dfd = -1;
	char dir[PATH_MAX];
	int r, moved = 0;

	if (!keep || !st->pool_sig[0] || !pool_enabled(hc) || safe_id(st->id) < 0 ||
	    join(dir, sizeof(dir), hc->bpffs_root, st->id, NULL) < 0)
		return fence_remove(hc, st->id);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return fence_remove(hc, st->id);
	a.dir = dir;
	a.dfd = dfd;
	r = pool_park(hc, dir, dfd, st->pool_sig, st->cgroup_id, retire_links, retire_state, &a,
		      &moved);
	if (r > 0)
		return 0;
	if (r < 0 && moved)
		return r;
	if (r < 0)
		df_debug("fence %s: keep its programs in the pool: %s", st->id, strerror(-r));
	return fence_remove(hc, st->id);
}

void fence_log_attached(void (*log)(const char *fmt, ...), const struct fence_state *st,
			const char *cg)
{
	const char *label = st->policy.label, *bg = st->policy.break_glass;

	log("fence %s%s%s%s attached to %s: mode=%s default=%s, %zu rules%s%s", st->id,
	    label ? " (" : "", label ? label : "", label ? ")" : "", cg,
	    df_mode_name(st->policy.mode), df_verdict_name(st->policy.default_verdict),
	    st->policy.n_rules, bg ? "; break-glass, in audit: " : "", bg ? bg : "");
}

int fence_held(const struct df_host_config *hc, const char *id, int attached)
{
	char dir[PATH_MAX];
	_cleanup_close_ int dfd = -1;
	size_t n = 0;

	if (safe_id(id) < 0 || join(dir, sizeof(dir), hc->bpffs_root, id, NULL) < 0)
		return -EINVAL;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 && errno != ENOENT)
		return -errno;
	for (size_t i = 0; dfd >= 0 && i < ARRAY_SIZE(pin_links); i++)
		n += faccessat(dfd, pin_links[i], F_OK, AT_SYMLINK_NOFOLLOW) == 0;
	if (n == ARRAY_SIZE(pin_links))
		return FENCE_WHOLE;
	return attached ? FENCE_LINKS_LOST : FENCE_NEVER_HELD;
}

int fence_discard(const struct df_host_config *hc, const char *id)
{
	struct fence_state old = {};
	int r, r2;

	/* the slot first: the state file that names it goes last */
	if (fence_load_state(hc, id, &old, NULL) > 0) {
		r = attrib_detach(hc, &old.attrib);
		fence_state_free(&old);
		if (r < 0)
			return r;
	}
	r = fence_remove(hc, id);
	r2 = attrib_gc(hc);
	return r < 0 ? r : r2 < 0 ? r2 : 0;
}

/* The cgroup v2 id of the directory at path (its inode number, as the kernel reports it). */
static int cgroup_id_of(const char *path, unsigned long long *ret)
{
	struct stat sb;

	if (stat(path, &sb) < 0)
		return -errno;
	*ret = (unsigned long long)sb.st_ino;
	return 0;
}

/*
 * What an earlier fence of this id left. A fence_start killed before its six
 * links were pinned never held: remove it (one whose state says it was
 * attached lost its link pins later: it is reported, as not whole). A whole fence whose links are
 * detached (its cgroup is gone: a poststop that never came), or attached to
 * the very cgroup this fence is for (a hook killed after attaching, before it
 * exited), is finished as poststop would, report included. A whole fence on
 * another live cgroup is refused.
 */
static int clear_leftover(const struct df_host_config *hc, const char *id, const char *cgroup,
			  struct df_error *e)
{
	char dir[PATH_MAX], name[160];
	unsigned long long cgid = 0, mine = 0;
	struct fence_state old = {};
	struct stat sb;
	int r, has_dir, has_state;

	join(dir, sizeof(dir), hc->bpffs_root, id, NULL);
	snprintf(name, sizeof(name), "%s/%s.json", hc->state_dir, id);
	has_dir = stat(dir, &sb) == 0;
	has_state = fence_load_state(hc, id, &old, NULL) > 0;
	if (!has_dir && !has_state) {
		fence_state_free(&old);
		return 0; /* the usual start: nothing to read */
	}
	r = fence_held(hc, id, has_state && old.attached);
	fence_state_free(&old);
	if (r < 0)
		return df_fail(e, r, "read pins %s: %s", dir, strerror(-r));
	if (r == FENCE_NEVER_HELD) {
		r = fence_discard(hc, id);
		if (r < 0)
			return df_fail(e, r, "remove what an unfinished fence %s left (%s, %s): %s",
				       id, dir, name, strerror(-r));
		return 1;
	}
	if (r == FENCE_WHOLE) {
		r = live_links_attached(hc, id, &cgid);
		if (r < 0)
			return df_fail(e, r, "read the links in %s: %s", dir, strerror(-r));
		if (r > 0 && (cgroup_id_of(cgroup, &mine) < 0 || mine != cgid))
			return df_fail(e, -EEXIST,
				       "a fence with id %s is attached to another cgroup (id %llu; pins %s)",
				       id, cgid, dir);
		if (!has_state)
			return df_fail(e, -EEXIST,
				       "pins of a fence with id %s are at %s without a state file; depfence gc recovers them",
				       id, dir);
	}
	r = fence_finish_locked(hc, id, NULL, NULL);
	/* -EUCLEAN: reported as not whole, and removed */
	if (r < 0 && r != -EUCLEAN)
		return df_fail(e, r, "finish the earlier fence %s (%s) first: failed (see above)", id,
			       dir);
	return 1;
}

struct state_writer {
	const struct df_host_config *hc;
	struct fence_state *stw;
	const char *name;
	int written;
};

static int write_state(struct state_writer *w)
{
	_cleanup_free_ char *json = NULL;
	size_t len;
	int r;

	r = fence_state_to_json(w->stw, &json, &len);
	if (r < 0)
		return r;
	r = write_file_atomic(w->hc->state_dir, w->name, json, len, 0600);
	if (r < 0)
		return r;
	w->written = 1;
	return 0;
}

/* attrib_attach calls this with the slot chosen: the state file names it before it is taken */
static int write_state_with_slot(const struct attrib_ref *ref, void *arg)
{
	struct state_writer *w = arg;

	w->stw->attrib = *ref;
	return write_state(w);
}

/*
 * The fence's programs and the maps user space fills or pins, as fds: from
 * the objects just loaded, or from a set the pool kept (pool.h).
 */
enum { FP_CONNECT4, FP_CONNECT6, FP_SENDMSG4, FP_SENDMSG6, FP_EGRESS, FP_INGRESS, FP_SOCKOPS,
       FP_N };
static const struct {
	const char *name; /* the pin, and the program without "df_" */
	enum bpf_attach_type type;
} fence_progs[FP_N] = {
	[FP_CONNECT4] = { "connect4", BPF_CGROUP_INET4_CONNECT },
	[FP_CONNECT6] = { "connect6", BPF_CGROUP_INET6_CONNECT },
	[FP_SENDMSG4] = { "sendmsg4", BPF_CGROUP_UDP4_SENDMSG },
	[FP_SENDMSG6] = { "sendmsg6", BPF_CGROUP_UDP6_SENDMSG },
	[FP_EGRESS] = { "egress", BPF_CGROUP_INET_EGRESS },
	[FP_INGRESS] = { "ingress", BPF_CGROUP_INET_INGRESS },
	[FP_SOCKOPS] = { "sockops", BPF_CGROUP_SOCK_OPS }, /* the TCP reader's only */
};
_Static_assert(FP_SOCKOPS == ARRAY_SIZE(pin_links), "the links pinned by name come first");

/* the maps a set is kept with: what user space fills or pins, and what a park empties */
enum { FM_CONFIG, FM_COUNTERS, FM_RECORDS, FM_NAMES, FM_NAME_RULES, FM_PENDING, FM_PROV4,
       FM_PROV6, FM_SOCK_OWNER, FM_DNS_WRITERS, FM_DNS_SOCKS, FM_N };
static const char *const fence_maps[FM_N] = {
	"config", "counters", "records", "names", "name_rules", "pending",
	"prov4", "prov6", "sock_owner", "dns_writers", "dns_socks", /* the TCP reader's only */
};

struct fence_fds {
	int prog[FP_N];
	int map[FM_N];
	int owned; /* opened from pins: closed by fence_fds_close */
};

static void fence_fds_close(struct fence_fds *f)
{
	for (size_t i = 0; f->owned && i < FP_N; i++)
		if (f->prog[i] >= 0)
			close(f->prog[i]);
	for (size_t i = 0; f->owned && i < FM_N; i++)
		if (f->map[i] >= 0)
			close(f->map[i]);
}
#define _cleanup_fds_ _cleanup_(fence_fds_close)

static void fence_fds_init(struct fence_fds *f)
{
	memset(f, 0, sizeof(*f));
	memset(f->prog, -1, sizeof(f->prog));
	memset(f->map, -1, sizeof(f->map));
}

/* The fds of the objects loaded (owned by them); with pin_dir, also pinned there for the pool. */
static int fds_of_objs(const struct fence_objs *o, int tcp_reader, struct fence_fds *f,
		       const char *pin_dir, struct df_error *e)
{
	char path[PATH_MAX], name[64];

	for (size_t i = 0; i < FP_N; i++) {
		struct bpf_program *p;

		if (i == FP_SOCKOPS && !tcp_reader)
			continue;
		snprintf(name, sizeof(name), "df_%s", fence_progs[i].name);
		p = fence_prog(o, name);
		if (!p)
			return df_fail(e, -ENOENT, "program %s was not loaded", name);
		f->prog[i] = bpf_program__fd(p);
		snprintf(name, sizeof(name), POOL_PIN "p_%s", fence_progs[i].name);
		if (pin_dir && (join(path, sizeof(path), pin_dir, name, NULL) < 0 ||
				bpf_obj_pin(f->prog[i], path) < 0))
			return df_fail(e, -errno, "pin %s: %s", path, strerror(errno));
	}
	for (size_t i = 0; i < FM_N; i++) {
		struct bpf_map *m = bpf_object__find_map_by_name(o->maps->obj, fence_maps[i]);

		if (i == FM_DNS_SOCKS && !tcp_reader)
			continue;
		if (!m || bpf_map__fd(m) < 0)
			return df_fail(e, -ENOENT, "map %s was not made", fence_maps[i]);
		f->map[i] = bpf_map__fd(m);
		snprintf(name, sizeof(name), POOL_PIN "m_%s", fence_maps[i]);
		if (pin_dir && (join(path, sizeof(path), pin_dir, name, NULL) < 0 ||
				bpf_obj_pin(f->map[i], path) < 0))
			return df_fail(e, -errno, "pin %s: %s", path, strerror(errno));
	}
	return 0;
}

/*
 * The fds of a kept set (its pins in dir): its programs, and with maps the
 * maps a start fills or pins (the others only a park empties, by their pins).
 */
static int fds_of_pins(const char *dir, int tcp_reader, int maps, struct fence_fds *f,
		       struct df_error *e)
{
	static const unsigned int started = 1u << FM_CONFIG | 1u << FM_COUNTERS |
					    1u << FM_RECORDS | 1u << FM_NAMES |
					    1u << FM_NAME_RULES | 1u << FM_DNS_SOCKS;
	char path[PATH_MAX];
	int n;

	f->owned = 1;
	for (size_t i = 0; i < FP_N + FM_N; i++) {
		int *fd = i < FP_N ? &f->prog[i] : &f->map[i - FP_N];

		if ((i == FP_SOCKOPS || i == FP_N + FM_DNS_SOCKS) && !tcp_reader)
			continue;
		if (i >= FP_N && !(maps && (started >> (i - FP_N) & 1)))
			continue;
		n = i < FP_N ? snprintf(path, sizeof(path), "%s/" POOL_PIN "p_%s", dir,
					fence_progs[i].name)
			     : snprintf(path, sizeof(path), "%s/" POOL_PIN "m_%s", dir,
					fence_maps[i - FP_N]);
		if (n < 0 || (size_t)n >= sizeof(path))
			return df_fail(e, -ENAMETOOLONG, "%s: path too long", dir);
		*fd = bpf_obj_get(path);
		if (*fd < 0)
			return df_fail(e, -errno, "open the kept program set's %s: %s", path,
				       strerror(errno));
	}
	return 0;
}

static int fill_config(int fd, const struct df_config *cfg, struct df_error *e)
{
	__u32 zero = 0;

	if (bpf_map_update_elem(fd, &zero, cfg, BPF_ANY) < 0)
		return df_fail(e, -errno, "fill config: %s", strerror(errno));
	return 0;
}

static int pin_fd(int fd, const char *dir, const char *name, struct df_error *e)
{
	char path[PATH_MAX];

	if (join(path, sizeof(path), dir, name, NULL) < 0 || bpf_obj_pin(fd, path) < 0)
		return df_fail(e, -errno, "pin %s/%s: %s", dir, name, strerror(errno));
	return 0;
}

/*
 * Attach the program to the cgroup and pin the link as dir/name: the pin
 * holds it from then on. The link's fd, or -errno.
 */
static int link_pinned(int prog_fd, enum bpf_attach_type type, int cgfd, const char *dir,
		       const char *name, const char *cgroup, struct df_error *e)
{
	int fd = bpf_link_create(prog_fd, cgfd, type, NULL), r;

	if (fd < 0)
		return df_fail(e, -errno, "attach %s to %s: %s", name, cgroup, strerror(errno));
	r = pin_fd(fd, dir, name, e);
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/*
 * link_pinned, and the link's fd stays open for the life of the process,
 * holding it too: depfence run lives as long as its job, so its fence holds
 * even if the pins go (the hook exits, and the pins alone hold a
 * container's fence).
 */
static int attach_pinned(int prog_fd, enum bpf_attach_type type, int cgfd, const char *dir,
			 const char *name, const char *cgroup, struct df_error *e)
{
	int fd = link_pinned(prog_fd, type, cgfd, dir, name, cgroup, e);

	if (fd < 0)
		return fd;
	if (n_held_links == ARRAY_SIZE(held_links))
		close(fd);
	else
		held_links[n_held_links++] = fd;
	return 0;
}

/*
 * Attach a finished fence's programs (its pool pins in dfd's directory dir)
 * to the hold cgroup, before its own links go (pool.h, POOL_HOLD). Best
 * effort: without the holds the set is kept all the same.
 */
static void hold_set(const char *dir, int dfd)
{
	_cleanup_fds_ struct fence_fds f;
	_cleanup_close_ int hfd = -1;
	struct df_error e = {};
	char name[64];
	int r;

	fence_fds_init(&f);
	hfd = pool_hold_cgroup();
	r = hfd < 0 ? hfd
		    : fds_of_pins(dir, faccessat(dfd, POOL_PIN "p_sockops", F_OK,
						 AT_SYMLINK_NOFOLLOW) == 0,
				  0, &f, &e);
	for (size_t i = 0; r == 0 && i < FP_N; i++) {
		if (f.prog[i] < 0)
			continue;
		snprintf(name, sizeof(name), POOL_PIN "l_%s", fence_progs[i].name);
		r = link_pinned(f.prog[i], fence_progs[i].type, hfd, dir, name, POOL_HOLD, &e);
		if (r >= 0) {
			close(r);
			r = 0;
		}
	}
	if (r < 0)
		df_debug("hold the programs of %s on %s: %s", dir, POOL_HOLD,
			 e.msg[0] ? e.msg : strerror(-r));
}

/*
 * The reader of DNS questions over TCP: its sk_msg program on the sockhash
 * first (a kept set's is on it still), then the sock_ops program that fills
 * the hash on the cgroup. The hash is pinned: a sockhash lets its programs
 * go when the last reference from user space does (the sock_ops program's
 * does not count). These pins are not among pin_maps and pin_links: without
 * them the fence still refuses those questions (egress drops them), the
 * client only waits for its timeout.
 */
static int attach_dns_tcp(const struct fence_objs *o, const struct fence_fds *f, int cgfd,
			  const char *dir, const char *cgroup, struct df_error *e)
{
	int r;

	r = pin_fd(f->map[FM_DNS_SOCKS], dir, PIN_DNS_SOCKS, e);
	if (r < 0)
		return r;
	if (o) {
		struct bpf_program *msg = fence_prog(o, "df_dns_msg");

		if (!msg)
			return df_fail(e, -ENOENT, "the DNS-over-TCP reader was not loaded");
		if (bpf_prog_attach(bpf_program__fd(msg), f->map[FM_DNS_SOCKS],
				    BPF_SK_MSG_VERDICT, 0) < 0)
			return df_fail(e, -errno,
				       "attach the DNS-over-TCP reader to its socket map: %s",
				       strerror(errno));
	}
	return attach_pinned(f->prog[FP_SOCKOPS], fence_progs[FP_SOCKOPS].type, cgfd, dir,
			     PIN_DNS_TCP, cgroup, e);
}

int fence_lock_wait(const struct df_host_config *hc, const char *id, int wait_ms)
{
	__u32 h = 2166136261u; /* FNV-1a */

	for (const char *p = id; *p; p++) {
		h ^= (unsigned char)*p;
		h *= 16777619u;
	}
	return lock_file_range_wait(hc->state_dir, FENCE_LOCKS, (off_t)(h & 0xffff), 1, wait_ms);
}

int fence_lock(const struct df_host_config *hc, const char *id)
{
	return fence_lock_wait(hc, id, -1);
}

/* The map's kernel id, 0 when fd is not one. */
static unsigned int map_id_of(int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	return fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
}

/*
 * Open, size and load the fence's programs (the kernel verifies them), fill
 * the rules, and make the pin directory: with keep, the objects a set is kept
 * with are pinned there too. procs_fd: the host-wide attribution map, or -1;
 * when the fence cannot use it, stw->attrib is cleared (and the slot given
 * back) and so is stw->pool_sig.
 */
static int load_fresh(const struct df_host_config *hc, struct state_writer *sw,
		      struct fence_objs *objs, const struct df_compiled *c4,
		      const struct df_compiled *c6, size_t n_names, int tcp_reader,
		      int skb_task_helpers, int procs_fd, const char *dir, struct fence_fds *fds,
		      struct df_error *e)
{
	struct fence_state *stw = sw->stw;
	struct fence_bpf *skel;
	int r;

	objs->loop = fence_kernel_has_bpf_loop();
	skel = objs->maps = fence_bpf_open_build(objs->loop);
	if (!skel)
		return df_fail(e, -errno, "open BPF object: %s", strerror(errno));
	skel->rodata->skb_task_helpers = skb_task_helpers;
	skel->rodata->name_rules_on = n_names > 0;
#if defined(__x86_64__)
	/* the sendmsg verdict cache needs x86's ordering of loads and of stores (fence.bpf.c) */
	skel->rodata->send_cache_on = 1;
#endif
	df_compiled_filter(c4, skel->rodata->addr_filter[0]);
	df_compiled_filter(c6, skel->rodata->addr_filter[1]);
	bpf_map__set_max_entries(skel->maps.rules4, c4->n ? (__u32)c4->n : 1);
	bpf_map__set_max_entries(skel->maps.rules6, c6->n ? (__u32)c6->n : 1);
	bpf_map__set_max_entries(skel->maps.records, hc->max_records);
	bpf_map__set_max_entries(skel->maps.name_rules, n_names ? (__u32)n_names : 1);
	/*
	 * Process attribution is best effort: without it the fence holds and the
	 * report says why events name only pid and comm.
	 */
	if (stw->attrib.gen && bpf_map__reuse_fd(skel->maps.attrib_procs, procs_fd) < 0) {
		struct attrib_ref claimed = stw->attrib;

		memset(&stw->attrib, 0, sizeof(stw->attrib));
		snprintf(stw->attrib.error, sizeof(stw->attrib.error),
			 "hand the attribution map to the fence: %s", strerror(errno));
		stw->pool_sig[0] = 0;
		/* the state file stops naming the slot before it is released */
		if (write_state(sw) == 0)
			attrib_detach(hc, &claimed);
		else
			stw->attrib = claimed;
	}
	/*
	 * Without the host-wide map (no slot left, no BTF) the fence's own stays
	 * empty: one entry, not the 1 MiB of buckets a 65,536-entry hash costs.
	 */
	if (!stw->attrib.gen)
		bpf_map__set_max_entries(skel->maps.attrib_procs, 1);
	/*
	 * The TCP question reader is loaded (and verified: ~30 ms) only where a
	 * question can be refused: enforce, with a name rule or default deny.
	 */
	if (!tcp_reader) {
		bpf_program__set_autoload(skel->progs.df_sockops, false);
		bpf_program__set_autoload(skel->progs.df_dns_msg, false);
	} else {
		skel->rodata->dns_tcp_reader = 1;
	}
	r = fence_objs_load(objs);
	if (r < 0)
		return df_fail(e, r, "load BPF programs: %s (run with --verbose for the verifier log)",
			       strerror(-r));
	if ((r = fill_rules(skel->maps.rules4, 4, c4, e)) < 0 ||
	    (r = fill_rules(skel->maps.rules6, 6, c6, e)) < 0)
		return r;
	/* whatever is pinned from here on can be found through the state file and removed */
	if (mkdir(dir, 0700) < 0)
		return df_fail(e, -errno, "create pin directory %s: %s%s", dir, strerror(errno),
			       errno == EEXIST ? " (a fence with this id exists; depfence gc removes stale ones)" : "");
	return fds_of_objs(objs, tcp_reader, fds, stw->pool_sig[0] ? dir : NULL, e);
}

int fence_start(const struct df_host_config *hc, const struct fence_state *st, struct df_error *e)
{
	_cleanup_objs_ struct fence_objs objs = {};
	_cleanup_fds_ struct fence_fds fds;
	_cleanup_close_ int cgfd = -1, idlock = -1, procs_fd = -1;
	struct df_compiled c4 = {}, c6 = {};
	struct df_compiled_names cn = {};
	struct df_config cfg = {};
	char dir[PATH_MAX], name[160];
	struct fence_state stw = *st; /* what the state file says: st and the attribution slot */
	struct state_writer sw = { .hc = hc, .stw = &stw, .name = name };
	struct df_error ae = {};
	__u32 bases[2];
	int r, tcp_reader, skb_task_helpers, taken = 0;

	fence_fds_init(&fds);
	if (safe_id(st->id) < 0)
		return df_fail(e, -EINVAL, "container id \"%.80s\" is not a safe file name", st->id);
	/* until this start is done, another for the same id waits (then finds this fence) */
	idlock = fence_lock(hc, st->id);
	if (idlock < 0)
		return df_fail(e, idlock, "lock %s/%s for %s: %s", hc->state_dir, FENCE_LOCKS, st->id,
			       strerror(-idlock));
	memset(&stw.attrib, 0, sizeof(stw.attrib));
	stw.pool_sig[0] = 0;
	r = df_policy_compile(&st->policy, 4, &c4, e);
	if (r < 0)
		return r;
	r = df_policy_compile(&st->policy, 6, &c6, e);
	if (r < 0)
		goto out;
	/* the name hashes are keyed: bases a process in the fence cannot know */
	if (getrandom(bases, sizeof(bases), 0) != sizeof(bases)) {
		r = df_fail(e, -errno, "getrandom: %s", strerror(errno));
		goto out;
	}
	cfg.hash_b1 = 256 + bases[0] % (DF_HASH_P1 - 512);
	cfg.hash_b2 = 256 + bases[1] % (DF_HASH_P2 - 512);
	r = df_policy_compile_names(&st->policy, cfg.hash_b1, cfg.hash_b2, &cn, e);
	if (r < 0)
		goto out;

	r = fence_ensure_bpffs(hc->bpffs_root, e);
	if (r < 0)
		goto out;
	r = join(dir, sizeof(dir), hc->bpffs_root, st->id, NULL);
	if (r < 0) {
		df_fail(e, r, "pin path for %s: too long", st->id);
		goto out;
	}
	r = mkdir_p(hc->state_dir, 0700);
	if (r < 0) {
		df_fail(e, r, "mkdir %s: %s", hc->state_dir, strerror(-r));
		goto out;
	}
	snprintf(name, sizeof(name), "%s.json", st->id);
	r = clear_leftover(hc, st->id, st->cgroup, e);
	if (r < 0)
		goto out;

	cgfd = open(st->cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0) {
		r = df_fail(e, -errno, "open cgroup %s: %s", st->cgroup, strerror(errno));
		goto out;
	}
	tcp_reader = st->policy.mode == DF_MODE_ENFORCE &&
		     (cn.n > 0 || st->policy.default_verdict == DF_DENY);
	/*
	 * The state file comes first, before anything is claimed or pinned: a
	 * hook killed at any later step leaves what poststop, gc or the next
	 * fence_start for this id needs to find and remove it.
	 */
	if (attrib_attach(hc, st->cgroup, write_state_with_slot, &sw, &stw.attrib, &procs_fd,
			  &ae) < 0) {
		memset(&stw.attrib, 0, sizeof(stw.attrib));
		snprintf(stw.attrib.error, sizeof(stw.attrib.error), "%s", ae.msg);
	}
	if (!stw.attrib.gen) {
		r = write_state(&sw);
		if (r < 0) {
			df_fail(e, r, "write state %s/%s: %s", hc->state_dir, name, strerror(-r));
			goto out;
		}
	}
	/* cgroup_skb may ask who the current task is only on recent kernels (6.18) */
	skb_task_helpers = fence_probe_skb_task_helpers() > 0;
	/* a set verified for a fence like this one, kept by the pool: no verification */
	if (pool_enabled(hc) && cgroup_id_of(st->cgroup, &stw.cgroup_id) == 0) {
		struct pool_inputs in = {
			.obj_id = DF_FENCE_OBJ_ID, .c4 = &c4, .c6 = &c6, .n_names = cn.n,
			.tcp_reader = tcp_reader,
			.skb_task_helpers = skb_task_helpers, .max_records = hc->max_records,
			.procs_map_id = stw.attrib.gen ? map_id_of(procs_fd) : 0,
		};

		r = pool_sig(hc, &in, stw.pool_sig);
		if (r == 0)
			taken = pool_take(hc, stw.pool_sig, stw.cgroup_id, dir);
		if (r < 0 || taken < 0) {
			df_info("fence %s: the pool of verified programs: %s; loading them", st->id,
				strerror(-(r < 0 ? r : taken)));
			stw.pool_sig[0] = 0;
			taken = 0;
		}
	}
	if (taken) {
		struct df_counters cnt;
		static const struct df_counters zero;

		struct df_error pe = {};

		df_debug("fence %s: programs verified before, kept by the pool", st->id);
		/*
		 * Emptied when kept, and held where nothing runs: a set that counted
		 * anything since (someone thawed the hold cgroup and ran something
		 * there) would bring that into this fence's report and provenance
		 */
		r = fds_of_pins(dir, tcp_reader, 1, &fds, &pe);
		if (r == 0)
			r = fence_read_counters(fds.map[FM_COUNTERS], &cnt);
		if (r < 0 || memcmp(&cnt, &zero, sizeof(cnt))) {
			df_info("fence %s: a kept program set %s; unloaded, loading the programs anew",
				st->id, r < 0 ? (pe.msg[0] ? pe.msg : "could not be read") : "ran while kept");
			fence_fds_close(&fds);
			fence_fds_init(&fds);
			taken = 0;
			r = remove_pin_dir(dir);
			if (r < 0) {
				df_fail(e, r, "remove the kept program set at %s: %s", dir,
					strerror(-r));
				goto out;
			}
		}
	}
	if (!taken)
		r = load_fresh(hc, &sw, &objs, &c4, &c6, cn.n, tcp_reader, skb_task_helpers,
			       procs_fd, dir, &fds, e);
	if (r < 0)
		goto out;

	cfg.mode = (__u32)st->policy.mode;
	{
		struct df_breakglass bg;

		/*
		 * break-glass on, for the host or for this container alone: the fence
		 * starts in audit, its state keeps its own mode
		 */
		if (cfg.mode == DF_MODE_ENFORCE &&
		    (st->policy.break_glass || df_breakglass_current(hc, &bg) > 0))
			cfg.mode = DF_MODE_AUDIT;
	}
	cfg.default_verdict = (__u32)st->policy.default_verdict;
	cfg.ttl_floor_s = hc->dns_ttl_floor;
	cfg.flags = st->fresh ? DF_CFG_FRESH : 0;
	memcpy(cfg.name_filter, cn.filter, sizeof(cfg.name_filter));
	for (size_t i = 0; i < DF_DNS_PORTS; i++)
		cfg.dns_ports[i] = hc->dns_ports[i];
	for (size_t i = 0; i < cn.n; i++) {
		if (bpf_map_update_elem(fds.map[FM_NAME_RULES], &cn.keys[i], &cn.vals[i], BPF_ANY) <
		    0) {
			r = df_fail(e, -errno, "fill name rules: %s", strerror(errno));
			goto out;
		}
	}
	r = fill_config(fds.map[FM_CONFIG], &cfg, e);
	if (r < 0)
		goto out;

	static const int pinned[] = { FM_COUNTERS, FM_RECORDS, FM_NAMES, FM_CONFIG };

	_Static_assert(ARRAY_SIZE(pinned) == ARRAY_SIZE(pin_maps), "a pin name for each map");
	for (size_t i = 0; i < ARRAY_SIZE(pinned) - 1; i++) {
		r = pin_fd(fds.map[pinned[i]], dir, pin_maps[i], e);
		if (r < 0)
			goto out;
	}
	for (size_t i = 0; i < ARRAY_SIZE(pin_links); i++) {
		r = attach_pinned(fds.prog[i], fence_progs[i].type, cgfd, dir, pin_links[i],
				  st->cgroup, e);
		if (r < 0)
			goto out;
	}
	if (tcp_reader) {
		r = attach_dns_tcp(taken ? NULL : &objs, &fds, cgfd, dir, st->cgroup, e);
		if (r < 0)
			goto out;
	}
	if (taken) {
		_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		int ur = dfd < 0 ? -errno : pool_unhold(dfd);

		/* attached here now, the set lets go of the hold cgroup */
		if (ur < 0)
			df_debug("fence %s: unpin the hold links in %s: %s", st->id, dir,
				 strerror(-ur));
	}
	/*
	 * A container's fence is fresh too when, with its programs attached (so
	 * every socket made from now on is judged), none of its cgroup's
	 * processes holds an IPv4 or IPv6 stream socket made before: at
	 * createRuntime its one process is the runtime's init, waiting to exec
	 * the container's command. The config is not pinned yet, so nothing
	 * else (break-glass) writes it meanwhile.
	 */
	if (!st->fresh && cg2_may_hold_inet_stream(st->cgroup) == 0) {
		cfg.flags |= DF_CFG_FRESH;
		r = fill_config(fds.map[FM_CONFIG], &cfg, e);
		if (r < 0)
			goto out;
	}
	r = pin_fd(fds.map[FM_CONFIG], dir, pin_maps[ARRAY_SIZE(pin_maps) - 1], e);
	if (r < 0)
		goto out;
	/* from here on, missing link pins mean someone removed them */
	stw.attached = 1;
	r = write_state(&sw);
	if (r < 0) {
		df_fail(e, r, "write state %s/%s: %s", hc->state_dir, name, strerror(-r));
		goto out;
	}
	r = 0;
out:
	if (r < 0 && stw.attrib.gen)
		attrib_detach(hc, &stw.attrib);
	if (r < 0 && sw.written)
		fence_remove(hc, st->id);
	df_compiled_free(&c4);
	df_compiled_free(&c6);
	df_compiled_names_free(&cn);
	return r;
}

int fence_load_state(const struct df_host_config *hc, const char *id, struct fence_state *ret,
		     struct df_error *e)
{
	_cleanup_close_ int dfd = -1;
	_cleanup_free_ char *buf = NULL;
	char name[160];
	int r;

	if (safe_id(id) < 0)
		return df_fail(e, -EINVAL, "id \"%.80s\" is not a safe file name", id);
	dfd = open(hc->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 && errno == ENOENT)
		return 0;
	if (dfd < 0)
		return df_fail(e, -errno, "open %s: %s", hc->state_dir, strerror(errno));
	snprintf(name, sizeof(name), "%s.json", id);
	r = read_file_capped(dfd, name, STATE_MAX, &buf, NULL);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return df_fail(e, r, "read %s/%s: %s", hc->state_dir, name, strerror(-r));
	r = fence_state_from_json(buf, ret, e);
	if (r < 0)
		return r;
	return 1;
}

int fence_read_counters(int fd, struct df_counters *ret)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info), zero = 0;
	struct df_counters *v = NULL;
	int n, r = 0;

	memset(ret, 0, sizeof(*ret));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
		return -errno;
	if (info.value_size != sizeof(*ret))
		return -EINVAL;
	if (info.type != BPF_MAP_TYPE_PERCPU_ARRAY)
		return bpf_map_lookup_elem(fd, &zero, ret) < 0 ? -errno : 0;
	n = libbpf_num_possible_cpus();
	if (n <= 0)
		return n < 0 ? n : -EINVAL;
	/* per CPU: one value each, rounded up to 8 bytes (all its fields are __u64) */
	_Static_assert(sizeof(struct df_counters) % sizeof(__u64) == 0, "counters are __u64 only");
	v = calloc((size_t)n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, &zero, v) < 0) {
		r = -errno;
	} else {
		for (int i = 0; i < n; i++) {
			const __u64 *src = (const __u64 *)&v[i];
			__u64 *dst = (__u64 *)ret;

			for (size_t k = 0; k < sizeof(*ret) / sizeof(__u64); k++)
				dst[k] += src[k];
		}
	}
	free(v);
	return r;
}

int fence_collect(const struct df_host_config *hc, const char *id, struct fence_data *ret,
		  struct df_error *e)
{
	char path[PATH_MAX];
	_cleanup_close_ int cfd = -1, rfd = -1, nfd = -1;
	struct fence_data d = {};
	struct df_rec_key key, next;
	size_t cap = 0;
	int r;

	/*
	 * A process with CAP_SYS_ADMIN in the fence (or an admin) may unlink the
	 * map pins: the links hold the maps, but nothing can read them any more.
	 * What is gone is named in the report, which the caller must not pass
	 * off as whole; anything else that fails to open is an error.
	 */
	join(path, sizeof(path), hc->bpffs_root, id, "counters");
	cfd = bpf_obj_get(path);
	if (cfd < 0 && errno != ENOENT)
		return df_fail(e, -errno, "open pinned %s: %s", path, strerror(errno));
	if (cfd < 0)
		d.lost[d.n_lost++] = "counters";
	else if ((r = fence_read_counters(cfd, &d.counters)) < 0)
		return df_fail(e, r, "read %s: %s", path, strerror(-r));
	join(path, sizeof(path), hc->bpffs_root, id, "records");
	rfd = bpf_obj_get(path);
	if (rfd < 0 && errno != ENOENT)
		return df_fail(e, -errno, "open pinned %s: %s", path, strerror(errno));
	if (rfd < 0)
		d.lost[d.n_lost++] = "records";

	join(path, sizeof(path), hc->bpffs_root, id, "names");
	nfd = bpf_obj_get(path); /* fences pinned before names existed have none */

	/* bounded: a hash map never yields more keys than its max_entries, and we stop at 2^20 */
	for (r = rfd >= 0 ? bpf_map_get_next_key(rfd, NULL, &next) : -ENOENT;
	     r == 0 && d.n_recs < (1u << 20);
	     r = bpf_map_get_next_key(rfd, &key, &next)) {
		if (d.n_recs == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct fence_record *nr = realloc(d.recs, ncap * sizeof(*nr));

			if (!nr) {
				fence_data_free(&d);
				return -ENOMEM;
			}
			d.recs = nr;
			cap = ncap;
		}
		key = next;
		if (bpf_map_lookup_elem(rfd, &key, &d.recs[d.n_recs].v) < 0)
			continue; /* deleted meanwhile: nothing deletes records, but be safe */
		d.recs[d.n_recs].k = key;
		d.recs[d.n_recs].name[0] = '\0';
		if (nfd >= 0 && (key.name.h1 || key.name.h2)) {
			struct df_name_text t;

			if (bpf_map_lookup_elem(nfd, &key.name, &t) == 0) {
				t.name[sizeof(t.name) - 1] = '\0';
				memcpy(d.recs[d.n_recs].name, t.name, sizeof(t.name));
			}
		}
		d.n_recs++;
	}
	d.stopped_ns = now_realtime_ns();
	*ret = d;
	return 0;
}

/* ---- state file ---- */

int fence_state_to_json(const struct fence_state *st, char **ret, size_t *ret_len)
{
	_cleanup_yajl_gen_ yajl_gen g = yajl_gen_alloc(NULL);
	int r = 0;

	if (!g)
		return -ENOMEM;
	yajl_gen_config(g, yajl_gen_validate_utf8, 1);
	yajl_gen_map_open(g);
	r |= jg_key_str(g, "schema", "depfence.state/v1");
	r |= jg_key_str(g, "id", st->id);
	r |= jg_key_str(g, "kind", st->kind);
	r |= jg_key_str(g, "cgroup", st->cgroup);
	r |= jg_key_str(g, "command", st->command[0] ? st->command : NULL);
	if (st->bundle[0])
		r |= jg_key_str(g, "bundle", st->bundle);
	r |= jg_key_int(g, "started_at_ns", (long long)st->started_ns);
	if (st->attached)
		r |= jg_key_bool(g, "attached", 1);
	if (st->pool_sig[0]) {
		r |= jg_key_str(g, "pool", st->pool_sig);
		r |= jg_key_int(g, "cgroup_id", (long long)st->cgroup_id);
	}
	r |= jg_key_str(g, "label", st->policy.label);
	r |= jg_key_str(g, "mode", df_mode_name(st->policy.mode));
	r |= jg_key_str(g, "default", df_verdict_name(st->policy.default_verdict));
	if (st->policy.break_glass) {
		r |= jg_key_str(g, "break_glass", st->policy.break_glass);
		r |= jg_key_str(g, "break_glass_source", st->policy.break_glass_source);
	}
	r |= attrib_ref_to_json(g, &st->attrib);
	if (st->integrity.checked) {
		const struct df_integrity *in = &st->integrity;

		r |= jg_str(g, "integrity");
		yajl_gen_map_open(g);
		r |= jg_key_str(g, "source", in->source);
		r |= jg_key_bool(g, "cap_net_raw", in->cap_net_raw);
		r |= jg_key_bool(g, "cap_net_admin", in->cap_net_admin);
		r |= jg_key_bool(g, "cap_sys_admin", in->cap_sys_admin);
		r |= jg_key_bool(g, "cap_bpf", in->cap_bpf);
		r |= jg_key_bool(g, "host_network", in->host_network);
		r |= jg_key_bool(g, "host_pid", in->host_pid);
		r |= jg_key_bool(g, "writable_cgroupfs", in->writable_cgroupfs);
		r |= jg_key_bool(g, "unconfined", in->unconfined);
		r |= jg_key_bool(g, "foreign_sockets", in->foreign_sockets);
		yajl_gen_map_close(g);
	}
	r |= jg_str(g, "profiles");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < st->policy.n_profiles; i++)
		r |= jg_str(g, st->policy.profiles[i]);
	yajl_gen_array_close(g);
	r |= jg_str(g, "rules");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < st->policy.n_rules; i++) {
		const struct df_rule *ru = &st->policy.rules[i];

		yajl_gen_map_open(g);
		r |= jg_key_str(g, "rule", ru->text);
		r |= jg_key_str(g, "verdict", df_verdict_name(ru->verdict));
		r |= jg_key_str(g, "source", ru->source);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	return jg_finish(g, r, ret, ret_len);
}

int fence_state_from_json(const char *buf, struct fence_state *ret, struct df_error *e)
{
	_cleanup_yajl_ yajl_val root = NULL;
	struct fence_state st = {};
	const char *s;
	long long n;
	yajl_val rules, integ, profs;
	int r;

	r = json_parse(buf, "state file", &root, e);
	if (r < 0)
		return r;
	df_policy_init(&st.policy);
	if (json_get_string(root, "schema", &s, NULL) < 0 || strcmp(s, "depfence.state/v1"))
		goto bad;
	if (json_get_string(root, "id", &s, NULL) < 0 || safe_id(s) < 0)
		goto bad;
	snprintf(st.id, sizeof(st.id), "%s", s);
	if (json_get_string(root, "kind", &s, NULL) < 0)
		goto bad;
	snprintf(st.kind, sizeof(st.kind), "%s", s);
	if (json_get_string(root, "cgroup", &s, NULL) < 0)
		goto bad;
	snprintf(st.cgroup, sizeof(st.cgroup), "%s", s);
	if (json_get_string(root, "command", &s, NULL) == 0)
		snprintf(st.command, sizeof(st.command), "%s", s);
	/* absent in state files of an older depfence: poststop then does not compare */
	if (json_get_string(root, "bundle", &s, NULL) == 0)
		snprintf(st.bundle, sizeof(st.bundle), "%s", s);
	if (json_get_int(root, "started_at_ns", &n, NULL) < 0)
		goto bad;
	st.started_ns = (unsigned long long)n;
	if (json_get_bool(root, "attached", &st.attached, NULL) < 0)
		st.attached = 0;
	/* only what pool_sig makes: anything else is not kept */
	if (json_get_string(root, "pool", &s, NULL) == 0 && strlen(s) == sizeof(st.pool_sig) - 1 &&
	    strspn(s, "0123456789abcdef") == sizeof(st.pool_sig) - 1 &&
	    json_get_int(root, "cgroup_id", &n, NULL) == 0) {
		snprintf(st.pool_sig, sizeof(st.pool_sig), "%s", s);
		st.cgroup_id = (unsigned long long)n;
	}
	if (json_get_string(root, "label", &s, NULL) == 0 && !(st.policy.label = strdup(s)))
		goto nomem;
	if (json_get_string(root, "mode", &s, NULL) < 0 || df_parse_mode(s, &st.policy.mode) < 0)
		goto bad;
	if (json_get_string(root, "default", &s, NULL) < 0 ||
	    df_parse_default(s, &st.policy.default_verdict) < 0)
		goto bad;
	if (json_get_string(root, "break_glass", &s, NULL) == 0 &&
	    !(st.policy.break_glass = strdup(s)))
		goto nomem;
	if (json_get_string(root, "break_glass_source", &s, NULL) == 0 &&
	    !(st.policy.break_glass_source = strdup(s)))
		goto nomem;
	if (json_get_object(root, "integrity", &integ, NULL) == 0) {
		struct df_integrity *in = &st.integrity;

		in->checked = 1;
		if (json_get_string(integ, "source", &s, NULL) == 0)
			snprintf(in->source, sizeof(in->source), "%s", s);
		json_get_bool(integ, "cap_net_raw", &in->cap_net_raw, NULL);
		json_get_bool(integ, "cap_net_admin", &in->cap_net_admin, NULL);
		json_get_bool(integ, "cap_sys_admin", &in->cap_sys_admin, NULL);
		json_get_bool(integ, "cap_bpf", &in->cap_bpf, NULL);
		json_get_bool(integ, "host_network", &in->host_network, NULL);
		json_get_bool(integ, "host_pid", &in->host_pid, NULL);
		json_get_bool(integ, "writable_cgroupfs", &in->writable_cgroupfs, NULL);
		json_get_bool(integ, "unconfined", &in->unconfined, NULL);
		json_get_bool(integ, "foreign_sockets", &in->foreign_sockets, NULL);
	}
	if (json_get_array(root, "profiles", &profs, NULL) == 0) {
		for (size_t i = 0; i < json_array_len(profs); i++) {
			const char *pn = json_string(json_array_at(profs, i));

			if (!pn || df_policy_add_profiles(&st.policy, pn, "state file", e) < 0)
				goto bad;
		}
	}
	attrib_ref_from_json(root, &st.attrib);
	if (json_get_array(root, "rules", &rules, NULL) < 0)
		goto bad;
	for (size_t i = 0; i < json_array_len(rules); i++) {
		yajl_val o = json_array_at(rules, i);
		const char *text, *verdict, *source;

		if (json_get_string(o, "rule", &text, NULL) < 0 ||
		    json_get_string(o, "verdict", &verdict, NULL) < 0 ||
		    json_get_string(o, "source", &source, NULL) < 0)
			goto bad;
		r = df_policy_add_list(&st.policy, text, !strcmp(verdict, "deny") ? DF_DENY : DF_ALLOW,
				       source, 1, e);
		if (r < 0)
			goto fail;
	}
	*ret = st;
	return 0;
bad:
	r = df_fail(e, -EINVAL, "state file: missing or mistyped keys (not written by this depfence?)");
	goto fail;
nomem:
	r = -ENOMEM;
fail:
	fence_state_free(&st);
	return r;
}
