// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Process attribution: the host-wide programs, a fence's slot, the images a report names. */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "attrib.h"
#include "attrib.skel.h"
#include "fence.h"

static void attrib_bpf_freep(struct attrib_bpf **s)
{
	if (*s)
		attrib_bpf__destroy(*s);
}
#define _cleanup_attrib_skel_ _cleanup_(attrib_bpf_freep)

/* Pins under <bpffs root>/@attrib/: links first, so removing them detaches before the maps go. */
static const char *const link_pins[] = { "exec", "fork", "exit", "cgmkdir", "cgrmdir" };

enum { M_FENCED, M_SLOTS, M_PROCS, M_IMAGES, M_COUNT };

static const struct {
	const char *pin;
	__u32 key_size, value_size, max_entries;
} map_defs[M_COUNT] = {
	[M_FENCED] = { "fenced", sizeof(__u64), sizeof(struct df_fenced_cg), DF_ATTRIB_CGROUPS },
	[M_SLOTS] = { "slots", sizeof(__u32), sizeof(struct df_slot), DF_ATTRIB_FENCES },
	[M_PROCS] = { "procs", sizeof(__u32), sizeof(struct df_proc), DF_ATTRIB_PROCS },
	[M_IMAGES] = { "images", sizeof(struct df_image_key), sizeof(struct df_image),
		       DF_ATTRIB_IMAGES },
};

struct attrib_fds {
	int fd[M_COUNT];
};

static void attrib_fds_init(struct attrib_fds *f)
{
	for (int i = 0; i < M_COUNT; i++)
		f->fd[i] = -1;
}

static void attrib_fds_close(struct attrib_fds *f)
{
	for (int i = 0; i < M_COUNT; i++)
		closep(&f->fd[i]);
	attrib_fds_init(f);
}
#define _cleanup_attrib_fds_ _cleanup_(attrib_fds_close)

static int pin_dir(const struct df_host_config *hc, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s", hc->bpffs_root, DF_ATTRIB_DIR);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Held while pins, slots and registrations change; released by closing the fd. */
static int attrib_lock(const struct df_host_config *hc)
{
	return lock_file_range(hc->state_dir, DF_ATTRIB_LOCK, 0, 0);
}

static void remove_pins(const char *dir)
{
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (dfd < 0)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(link_pins); i++)
		unlinkat(dfd, link_pins[i], 0);
	for (int i = 0; i < M_COUNT; i++)
		unlinkat(dfd, map_defs[i].pin, 0);
	rmdir(dir);
}

/* 0 with every map open; -ENOENT when the set is missing or partial; -EPROTO when made by another version. */
static int open_pins(const char *dir, struct attrib_fds *ret)
{
	_cleanup_attrib_fds_ struct attrib_fds f;
	_cleanup_close_ int dfd = -1;
	char path[PATH_MAX];

	attrib_fds_init(&f);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	for (size_t i = 0; i < ARRAY_SIZE(link_pins); i++)
		if (faccessat(dfd, link_pins[i], F_OK, AT_SYMLINK_NOFOLLOW) < 0)
			return -ENOENT;
	for (int i = 0; i < M_COUNT; i++) {
		struct bpf_map_info info = {};
		__u32 len = sizeof(info);

		snprintf(path, sizeof(path), "%s/%s", dir, map_defs[i].pin);
		f.fd[i] = bpf_obj_get(path);
		if (f.fd[i] < 0)
			return errno == ENOENT ? -ENOENT : -errno;
		if (bpf_obj_get_info_by_fd(f.fd[i], &info, &len) < 0)
			return -errno;
		if (info.key_size != map_defs[i].key_size ||
		    info.value_size != map_defs[i].value_size ||
		    info.max_entries != map_defs[i].max_entries)
			return -EPROTO;
	}
	*ret = f;
	attrib_fds_init(&f);
	return 0;
}

static int load_and_pin(const char *dir, struct attrib_fds *ret, struct df_error *e)
{
	_cleanup_attrib_skel_ struct attrib_bpf *skel = NULL;
	_cleanup_attrib_fds_ struct attrib_fds f;
	struct bpf_program *progs[ARRAY_SIZE(link_pins)];
	struct bpf_map *maps[M_COUNT];
	char path[PATH_MAX];
	int r;

	attrib_fds_init(&f);
	remove_pins(dir); /* what a crash left half made */
	skel = attrib_bpf__open();
	if (!skel)
		return df_fail(e, -errno, "open attribution programs: %s", strerror(errno));
	r = attrib_bpf__load(skel);
	if (r < 0)
		return df_fail(e, r,
			       "load attribution programs: %s (they need a kernel with BTF, /sys/kernel/btf/vmlinux)",
			       strerror(-r));
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return df_fail(e, -errno, "create %s: %s", dir, strerror(errno));

	maps[M_FENCED] = skel->maps.fenced;
	maps[M_SLOTS] = skel->maps.slots;
	maps[M_PROCS] = skel->maps.procs;
	maps[M_IMAGES] = skel->maps.images;
	for (int i = 0; i < M_COUNT; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, map_defs[i].pin);
		r = bpf_map__pin(maps[i], path);
		if (r < 0) {
			df_fail(e, r, "pin %s: %s", path, strerror(-r));
			goto fail;
		}
		f.fd[i] = fcntl(bpf_map__fd(maps[i]), F_DUPFD_CLOEXEC, 3);
		if (f.fd[i] < 0) {
			r = df_fail(e, -errno, "dup map fd: %s", strerror(errno));
			goto fail;
		}
	}

	progs[0] = skel->progs.df_exec;
	progs[1] = skel->progs.df_fork;
	progs[2] = skel->progs.df_exit;
	progs[3] = skel->progs.df_cgmkdir;
	progs[4] = skel->progs.df_cgrmdir;
	for (size_t i = 0; i < ARRAY_SIZE(progs); i++) {
		struct bpf_link *link = bpf_program__attach(progs[i]);

		if (!link) {
			r = df_fail(e, -errno, "attach attribution program %s: %s", link_pins[i],
				    strerror(errno));
			goto fail;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, link_pins[i]);
		r = bpf_link__pin(link, path);
		/* the pin holds the link now: drop our fd without detaching */
		bpf_link__disconnect(link);
		bpf_link__destroy(link);
		if (r < 0) {
			df_fail(e, r, "pin %s: %s", path, strerror(-r));
			goto fail;
		}
	}
	*ret = f;
	attrib_fds_init(&f);
	return 0;
fail:
	remove_pins(dir);
	return r;
}

/*
 * The first free slot (or DF_ATTRIB_FENCES: none) and how many are taken,
 * from one batch read of the slot array instead of a bpf() call a slot
 * (about 1.5 ms at 256 taken here). 0 or -errno.
 */
static int scan_slots(int slots_fd, __u32 *ret_free, __u32 *ret_taken)
{
	/* zeroed: the kernel fills them, which valgrind cannot see */
	struct df_slot v[DF_ATTRIB_FENCES] = {};
	__u32 keys[DF_ATTRIB_FENCES] = {}, n = DF_ATTRIB_FENCES, out = 0, taken = 0;
	int r;

	r = bpf_map_lookup_batch(slots_fd, NULL, &out, keys, v, &n, NULL);
	/* ENOENT: the batch reached the array's end, as it must */
	if ((r < 0 && errno != ENOENT) || n != DF_ATTRIB_FENCES)
		return r < 0 && errno != ENOENT ? -errno : -EIO;
	*ret_free = DF_ATTRIB_FENCES;
	for (__u32 i = 0; i < n; i++) {
		if (keys[i] != i)
			return -EIO;
		if (v[i].gen)
			taken++;
		else if (*ret_free == DF_ATTRIB_FENCES)
			*ret_free = i;
	}
	*ret_taken = taken;
	return 0;
}

/* A free slot and a fresh generation for it, not claimed yet. */
static int pick_slot(int slots_fd, struct attrib_ref *ref)
{
	__u32 free, taken;
	int r = scan_slots(slots_fd, &free, &taken);

	if (r < 0)
		return r;
	if (free == DF_ATTRIB_FENCES)
		return -ENOSPC;
	ref->slot = free;
	do {
		if (getrandom(&ref->gen, sizeof(ref->gen), 0) != sizeof(ref->gen))
			return -errno;
	} while (!ref->gen);
	return 0;
}

static int claim_slot(int slots_fd, const struct attrib_ref *ref)
{
	struct df_slot s = { .gen = ref->gen, .images_max = DF_ATTRIB_IMAGES_PER_FENCE };

	if (bpf_map_update_elem(slots_fd, &ref->slot, &s, BPF_ANY) < 0)
		return -errno;
	return 0;
}

/* The cgroup v2 id of dfd (name "") or of dfd/name: its file handle, else its inode number. */
static int cgroup_id_at(int dfd, const char *name, __u64 *ret)
{
	union {
		struct file_handle fh;
		char buf[sizeof(struct file_handle) + 8];
	} h;
	struct stat st;
	int mnt;

	h.fh.handle_bytes = 8;
	if (name_to_handle_at(dfd, name, &h.fh, &mnt, name[0] ? 0 : AT_EMPTY_PATH) == 0 &&
	    h.fh.handle_bytes == 8) {
		memcpy(ret, h.fh.f_handle, 8);
		return 0;
	}
	if (fstatat(dfd, name, &st, name[0] ? AT_SYMLINK_NOFOLLOW : AT_EMPTY_PATH) < 0)
		return -errno;
	*ret = st.st_ino;
	return 0;
}

/* Register the cgroups below dfd, depth-first, within the bounds. */
static void register_below(int fenced_fd, int dfd, const struct df_fenced_cg *v, int depth,
			   size_t *count)
{
	DIR *d;
	struct dirent *de;
	int dup_fd;

	if (depth >= DF_ATTRIB_CG_DEPTH)
		return;
	dup_fd = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
	if (dup_fd < 0)
		return;
	d = fdopendir(dup_fd);
	if (!d) {
		close(dup_fd);
		return;
	}
	while ((de = readdir(d)) && *count < DF_ATTRIB_CGROUPS) {
		_cleanup_close_ int sub = -1;
		__u64 id;

		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		sub = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0 || cgroup_id_at(sub, "", &id) < 0)
			continue;
		if (bpf_map_update_elem(fenced_fd, &id, v, BPF_ANY) == 0)
			(*count)++;
		register_below(fenced_fd, sub, v, depth + 1, count);
	}
	closedir(d);
}

/*
 * Keys of map entries whose value matches, read first and deleted after:
 * deleting while walking a hash map may restart the walk.
 */
static int delete_matching(int fd, __u32 ksz, __u32 vsz, __u32 max,
			   int (*match)(const void *val, const struct attrib_ref *ref),
			   const struct attrib_ref *ref)
{
	_cleanup_free_ unsigned char *keys = malloc((size_t)max * ksz);
	_cleanup_free_ unsigned char *val = malloc(vsz);
	unsigned char cur[64], next[64];
	size_t n = 0, steps = 0;
	int r;

	if (!keys || !val || ksz > sizeof(cur))
		return -ENOMEM;
	for (r = bpf_map_get_next_key(fd, NULL, next); r == 0 && n < max && steps < 4 * (size_t)max;
	     r = bpf_map_get_next_key(fd, cur, next), steps++) {
		memcpy(cur, next, ksz);
		if (bpf_map_lookup_elem(fd, cur, val) == 0 && match(val, ref))
			memcpy(keys + n++ * ksz, cur, ksz);
	}
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(fd, keys + i * ksz);
	return (int)n;
}

static int match_fenced(const void *val, const struct attrib_ref *ref)
{
	const struct df_fenced_cg *v = val;

	return v->slot == ref->slot && v->gen == ref->gen;
}

static int match_proc(const void *val, const struct attrib_ref *ref)
{
	const struct df_proc *v = val;

	return v->slot == ref->slot && v->gen == ref->gen;
}

static int match_image(const void *val, const struct attrib_ref *ref)
{
	const struct df_image *v = val;

	return v->slot == ref->slot && v->gen == ref->gen;
}

/* Undo a fence's registration; then, when no fence is left, remove the programs. */
/*
 * With attribution_linger, the programs outlive the last fence: a host that
 * starts one container after another (CI) loads and verifies them once, not
 * at every start. The state dir's @attrib.idle says since when (CLOCK_BOOTTIME
 * seconds, like the pins, gone at reboot); attrib_gc removes them after that.
 */
#define ATTRIB_IDLE "@attrib.idle"

static unsigned long long boottime_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (unsigned long long)ts.tv_sec;
}

static void mark_idle(const struct df_host_config *hc)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%llu\n", boottime_s());
	int r = write_file_atomic(hc->state_dir, ATTRIB_IDLE, buf, (size_t)n, 0600);

	if (r < 0)
		df_err("mark the attribution programs idle in %s/%s: %s", hc->state_dir,
		       ATTRIB_IDLE, strerror(-r));
}

static void clear_idle(const struct df_host_config *hc)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", hc->state_dir, ATTRIB_IDLE);
	if (unlink(path) < 0 && errno != ENOENT)
		df_err("remove %s: %s", path, strerror(errno));
}

/* Seconds since the last fence let the programs go, or -ENOENT when not marked. */
static int idle_seconds(const struct df_host_config *hc, unsigned long long *ret)
{
	_cleanup_close_ int dfd = open(hc->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_free_ char *buf = NULL;
	unsigned long long since, now = boottime_s();
	char *end;
	int r;

	if (dfd < 0)
		return -errno;
	r = read_file_capped(dfd, ATTRIB_IDLE, 64, &buf, NULL);
	if (r < 0)
		return r;
	errno = 0;
	since = strtoull(buf, &end, 10);
	if (errno || end == buf)
		return -EBADMSG;
	*ret = now > since ? now - since : 0;
	return 0;
}

static void release(const struct df_host_config *hc, const char *dir, struct attrib_fds *f,
		    const struct attrib_ref *ref)
{
	struct df_slot s;
	__u32 free, taken;

	if (ref->gen && ref->slot < DF_ATTRIB_FENCES) {
		/* cgroups first: the programs stop following the fence's processes */
		delete_matching(f->fd[M_FENCED], sizeof(__u64), sizeof(struct df_fenced_cg),
				DF_ATTRIB_CGROUPS, match_fenced, ref);
		if (bpf_map_lookup_elem(f->fd[M_SLOTS], &ref->slot, &s) == 0 && s.gen == ref->gen) {
			memset(&s, 0, sizeof(s));
			bpf_map_update_elem(f->fd[M_SLOTS], &ref->slot, &s, BPF_ANY);
		}
		delete_matching(f->fd[M_PROCS], sizeof(__u32), sizeof(struct df_proc),
				DF_ATTRIB_PROCS, match_proc, ref);
		delete_matching(f->fd[M_IMAGES], sizeof(struct df_image_key),
				sizeof(struct df_image), DF_ATTRIB_IMAGES, match_image, ref);
	}
	/* in use, or cannot tell: the programs stay */
	if (scan_slots(f->fd[M_SLOTS], &free, &taken) < 0 || taken)
		return;
	if (hc->attribution_linger) {
		mark_idle(hc);
		return;
	}
	attrib_fds_close(f);
	remove_pins(dir);
	clear_idle(hc);
}

int attrib_attach(const struct df_host_config *hc, const char *cgdir,
		  int (*before_claim)(const struct attrib_ref *ref, void *arg), void *arg,
		  struct attrib_ref *ret, int *ret_procs_fd, struct df_error *e)
{
	_cleanup_attrib_fds_ struct attrib_fds f;
	_cleanup_close_ int lock = -1, cgfd = -1;
	struct attrib_ref ref = {};
	struct df_fenced_cg v;
	char dir[PATH_MAX];
	size_t count = 0;
	__u64 id;
	int r;

	attrib_fds_init(&f);
	if (pin_dir(hc, dir, sizeof(dir)) < 0)
		return df_fail(e, -ENAMETOOLONG, "%s/%s: path too long", hc->bpffs_root,
			       DF_ATTRIB_DIR);
	lock = attrib_lock(hc);
	if (lock < 0)
		return df_fail(e, lock, "lock %s/%s: %s", hc->state_dir, DF_ATTRIB_LOCK,
			       strerror(-lock));
	r = open_pins(dir, &f);
	if (r == -ENOENT)
		r = load_and_pin(dir, &f, e);
	else if (r == -EPROTO)
		return df_fail(e, r,
			       "the attribution programs pinned at %s were made by another depfence version; they go when its last fence ends",
			       dir);
	else if (r < 0)
		return df_fail(e, r, "open %s: %s", dir, strerror(-r));
	if (r < 0)
		return r;

	r = pick_slot(f.fd[M_SLOTS], &ref);
	if (r < 0) {
		df_fail(e, r, "claim an attribution slot: %s", r == -ENOSPC ?
			"all taken (fences whose poststop never came hold them)" : strerror(-r));
		goto fail;
	}
	/* whoever must release the slot learns of it before it is taken */
	if (before_claim) {
		r = before_claim(&ref, arg);
		if (r < 0) {
			df_fail(e, r, "record the attribution slot: %s", strerror(-r));
			goto fail_unclaimed;
		}
	}
	r = claim_slot(f.fd[M_SLOTS], &ref);
	if (r < 0) {
		df_fail(e, r, "claim attribution slot %u: %s", ref.slot, strerror(-r));
		goto fail;
	}
	cgfd = open(cgdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cgfd < 0) {
		r = df_fail(e, -errno, "open cgroup %s: %s", cgdir, strerror(errno));
		goto fail;
	}
	r = cgroup_id_at(cgfd, "", &id);
	if (r < 0) {
		df_fail(e, r, "cgroup id of %s: %s", cgdir, strerror(-r));
		goto fail;
	}
	v.slot = ref.slot;
	v.gen = ref.gen;
	if (bpf_map_update_elem(f.fd[M_FENCED], &id, &v, BPF_ANY) < 0) {
		r = df_fail(e, -errno, "register cgroup %s: %s", cgdir, strerror(errno));
		goto fail;
	}
	/* cgroups made from now on are followed by the programs; these exist already */
	register_below(f.fd[M_FENCED], cgfd, &v, 0, &count);
	clear_idle(hc);
	*ret_procs_fd = TAKE_FD(f.fd[M_PROCS]);
	*ret = ref;
	return 0;
fail_unclaimed:
	memset(&ref, 0, sizeof(ref));
fail:
	release(hc, dir, &f, &ref);
	return r;
}

int attrib_detach(const struct df_host_config *hc, const struct attrib_ref *ref)
{
	_cleanup_attrib_fds_ struct attrib_fds f;
	_cleanup_close_ int lock = -1;
	char dir[PATH_MAX];
	int r;

	attrib_fds_init(&f);
	if (!ref->gen)
		return 0;
	if (pin_dir(hc, dir, sizeof(dir)) < 0)
		return -ENAMETOOLONG;
	lock = attrib_lock(hc);
	if (lock < 0)
		return lock;
	r = open_pins(dir, &f);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	release(hc, dir, &f, ref);
	return 0;
}

int attrib_gc(const struct df_host_config *hc)
{
	_cleanup_attrib_fds_ struct attrib_fds f;
	_cleanup_close_ int lock = -1;
	char dir[PATH_MAX];
	__u32 free, taken;
	struct stat sb;
	int r;

	attrib_fds_init(&f);
	if (pin_dir(hc, dir, sizeof(dir)) < 0)
		return -ENAMETOOLONG;
	if (stat(dir, &sb) < 0)
		return errno == ENOENT ? 0 : -errno;
	lock = attrib_lock(hc);
	if (lock < 0)
		return lock;
	r = open_pins(dir, &f);
	if (r == -ENOENT) {
		/* a set the first fence did not finish pinning (it was killed) */
		remove_pins(dir);
		return stat(dir, &sb) < 0 && errno == ENOENT ? 1 : -EBUSY;
	}
	if (r < 0)
		return r;
	r = scan_slots(f.fd[M_SLOTS], &free, &taken);
	if (r < 0)
		return r;
	if (taken)
		return 0;
	if (hc->attribution_linger) {
		unsigned long long idle = 0;

		r = idle_seconds(hc, &idle);
		if (r == -ENOENT) {
			mark_idle(hc); /* idle, and nobody said since when: from now */
			return 0;
		}
		if (r == 0 && idle < hc->attribution_linger)
			return 0;
	}
	attrib_fds_close(&f);
	remove_pins(dir);
	clear_idle(hc);
	return stat(dir, &sb) < 0 && errno == ENOENT ? 1 : -EBUSY;
}

/* ---- reading for the report ---- */

static int cmp_key(const struct df_image_key *a, const struct df_image_key *b)
{
	if (a->tgid != b->tgid)
		return a->tgid < b->tgid ? -1 : 1;
	if (a->id != b->id)
		return a->id < b->id ? -1 : 1;
	return 0;
}

static int cmp_images(const void *a, const void *b)
{
	return cmp_key(&((const struct attrib_image *)a)->key, &((const struct attrib_image *)b)->key);
}

void attrib_data_free(struct attrib_data *a)
{
	free(a->imgs);
	memset(a, 0, sizeof(*a));
}

int attrib_collect(const struct df_host_config *hc, const struct attrib_ref *ref,
		   struct fence_data *d)
{
	struct attrib_data *a = &d->attrib;
	_cleanup_close_ int sfd = -1, ifd = -1;
	struct df_image_key cur, next;
	char dir[PATH_MAX], path[PATH_MAX];
	size_t cap = 0, steps = 0;
	int r;

	attrib_data_free(a);
	if (!ref->gen) {
		snprintf(a->error, sizeof(a->error), "%s",
			 ref->error[0] ? ref->error : "not set up for this fence");
		return 0;
	}
	if (pin_dir(hc, dir, sizeof(dir)) < 0)
		return -ENAMETOOLONG;
	snprintf(path, sizeof(path), "%s/slots", dir);
	sfd = bpf_obj_get(path);
	snprintf(path, sizeof(path), "%s/images", dir);
	ifd = bpf_obj_get(path);
	if (sfd < 0 || ifd < 0) {
		snprintf(a->error, sizeof(a->error), "the attribution maps at %s are gone", dir);
		return 0;
	}
	if (bpf_map_lookup_elem(sfd, &ref->slot, &a->slot) < 0 || a->slot.gen != ref->gen) {
		memset(&a->slot, 0, sizeof(a->slot));
		snprintf(a->error, sizeof(a->error), "this fence's attribution slot was released");
		return 0;
	}
	/* a fence keeps at most images_max images at once: read them all, ancestors included */
	for (r = bpf_map_get_next_key(ifd, NULL, &next); r == 0 && steps < 4 * DF_ATTRIB_IMAGES;
	     r = bpf_map_get_next_key(ifd, &cur, &next), steps++) {
		struct df_image img;

		cur = next;
		if (bpf_map_lookup_elem(ifd, &cur, &img) < 0 || img.slot != ref->slot ||
		    img.gen != ref->gen)
			continue;
		if (a->n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct attrib_image *ni = realloc(a->imgs, ncap * sizeof(*ni));

			if (!ni) {
				attrib_data_free(a);
				return -ENOMEM;
			}
			a->imgs = ni;
			cap = ncap;
		}
		a->imgs[a->n].key = cur;
		a->imgs[a->n].img = img;
		a->n++;
	}
	if (a->n)
		qsort(a->imgs, a->n, sizeof(*a->imgs), cmp_images);
	a->available = 1;
	for (size_t i = 0; i < d->n_recs; i++)
		if (d->recs[i].k.image && !attrib_find(a, d->recs[i].k.tgid, d->recs[i].k.image))
			a->missing++;
	return 0;
}

static const struct attrib_image *find_ai(const struct attrib_data *a, __u32 tgid, __u64 id)
{
	struct df_image_key k = { .tgid = tgid, .id = id };
	size_t lo = 0, hi = a->n;

	if (!id)
		return NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = cmp_key(&a->imgs[mid].key, &k);

		if (c == 0)
			return &a->imgs[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct df_image *attrib_find(const struct attrib_data *a, __u32 tgid, __u64 id)
{
	const struct attrib_image *ai = find_ai(a, tgid, id);

	return ai ? &ai->img : NULL;
}

static const struct attrib_image *parent_of(const struct attrib_data *a,
					    const struct attrib_image *ai)
{
	return ai->img.parent.id ? find_ai(a, ai->img.parent.tgid, ai->img.parent.id) : NULL;
}

/* The image whose program a process runs: its own exec, or the nearest ancestor's. */
static const struct attrib_image *program_of(const struct attrib_data *a,
					     const struct attrib_image *ai)
{
	for (int i = 0; ai && i < DF_ANCESTRY_MAX; i++) {
		if (ai->img.flags & DF_IMG_EXEC)
			return ai;
		ai = parent_of(a, ai);
	}
	return NULL;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 when it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;

	if (c >= 0x20 && c < 0x7f)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0; /* control characters, DEL, stray continuation bytes */
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0) ||
	    (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))
		return 0; /* overlong, surrogate, past U+10FFFF */
	return len;
}

/*
 * Bytes of the character at s (at least 1) and whether it shows as itself:
 * control characters (C0, DEL, C1) and bytes that are not UTF-8 become '?'.
 */
static size_t clean_char(const unsigned char *s, size_t n, int *ret_keep)
{
	size_t l = utf8_len(s, n);

	*ret_keep = l > 0 && !(l == 2 && s[0] == 0xc2 && s[1] < 0xa0);
	return l ? l : 1;
}

struct out {
	char *buf;
	size_t len, off;
	int full;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->full || o->off + n + 1 > o->len) {
		o->full = 1;
		return;
	}
	memcpy(o->buf + o->off, s, n);
	o->off += n;
	o->buf[o->off] = '\0';
}

static int plain_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("_@%+=:,./-", c) || c >= 0x80;
}

/* Text (no NUL) in s[0..n): clean, copied as is or quoted. */
static void put_arg(struct out *o, const unsigned char *s, size_t n)
{
	int quote = n == 0;

	for (size_t i = 0; i < n && !quote; i++)
		quote = !plain_char(s[i]);
	if (quote)
		put(o, "'", 1);
	for (size_t i = 0; i < n;) {
		int keep;
		size_t l = clean_char(s + i, n - i, &keep);

		if (!keep)
			put(o, "?", 1);
		else if (s[i] == '\'')
			put(o, "'\\''", 4);
		else
			put(o, (const char *)s + i, l);
		i += l;
	}
	if (quote)
		put(o, "'", 1);
}

size_t attrib_format_args(const struct df_image *img, size_t max, char *buf, size_t len)
{
	const unsigned char *a = (const unsigned char *)img->args;
	size_t n = img->args_len < DF_ARGS_MAX ? img->args_len : DF_ARGS_MAX;
	struct out o = { buf, len, 0, 0 };
	int cut = 0;

	if (len == 0)
		return 0;
	buf[0] = '\0';
	/* the kernel ends every argument with a NUL; a truncated argv may stop mid-argument */
	if (n && a[n - 1] == '\0')
		n--;
	if (max && n > max) {
		n = max;
		cut = 1;
	}
	for (size_t i = 0, start = 0; i <= n; i++) {
		if (i < n && a[i] != '\0')
			continue;
		if (start)
			put(&o, " ", 1);
		put_arg(&o, a + start, i - start);
		start = i + 1;
	}
	if (cut || o.full) {
		/* room for the mark: drop bytes from the end, never inside a UTF-8 sequence */
		while (o.off > 0 && o.off + 4 > len)
			o.off--;
		while (o.off > 0 && ((unsigned char)buf[o.off] & 0xc0) == 0x80)
			o.off--;
		buf[o.off] = '\0';
		if (o.off + 4 <= len) {
			memcpy(buf + o.off, "\xe2\x80\xa6", 4);
			o.off += 3;
		}
	}
	return o.off;
}

/* Printable ASCII of a kernel-supplied short string, '?' for the rest. */
static void clean_str(const char *s, size_t max, char *buf)
{
	size_t n = 0;

	for (size_t i = 0; i < max && s[i]; i++)
		buf[n++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	buf[n] = '\0';
}

static void gen_time(yajl_gen g, const char *key, unsigned long long mono_ns, int *r)
{
	char buf[40];

	format_rfc3339(mono_to_realtime_ns(mono_ns), buf, sizeof(buf));
	*r |= jg_key_str(g, key, buf);
}

/*
 * What a person calls the program ai runs: for a script run through env
 * ("#!/usr/bin/env bash"), the script's file name, else comm. 1 when it is
 * the script's.
 */
static int display_name(const struct attrib_data *a, const struct attrib_image *ai, char *buf,
			size_t len)
{
	const struct attrib_image *p = (ai->img.flags & DF_IMG_EXEC) ? ai : program_of(a, ai);
	size_t n, start, end;
	const char *s;

	clean_str(ai->img.comm, DF_ATTRIB_COMM, buf);
	if (!p || !(p->img.flags & DF_IMG_VIA_ENV))
		return 0;
	s = p->img.args;
	n = p->img.args_len < DF_ARGS_MAX ? p->img.args_len : DF_ARGS_MAX;
	start = strnlen(s, n) + 1; /* argv[1] */
	if (start >= n)
		return 0;
	end = start + strnlen(s + start, n - start);
	for (size_t i = start; i < end; i++)
		if (s[i] == '/')
			start = i + 1;
	if (end == start || end - start >= len)
		return 0;
	{
		char name[DF_ARGS_MAX + 1];

		memcpy(name, s + start, end - start);
		name[end - start] = '\0';
		clean_str(name, end - start, buf);
	}
	return 1;
}

/* The images from the fence's first known process down to ai (last); how many. */
static size_t chain_of(const struct attrib_data *a, const struct attrib_image *ai,
		       const struct attrib_image **ret, int *ret_complete)
{
	const struct attrib_image *up[DF_ANCESTRY_MAX];
	size_t n = 0;

	*ret_complete = 0;
	while (ai && n < DF_ANCESTRY_MAX) {
		up[n++] = ai;
		if (!ai->img.parent.id) {
			/* the fence's first process, or one that came in from outside */
			*ret_complete = 1;
			break;
		}
		ai = parent_of(a, ai);
	}
	for (size_t i = 0; i < n; i++)
		ret[i] = up[n - 1 - i];
	return n;
}

void attrib_chain_text(const struct attrib_data *a, const struct fence_record *rec, char *buf,
		       size_t len)
{
	const struct attrib_image *ai = NULL, *chain[DF_ANCESTRY_MAX];
	struct out o = { buf, len, 0, 0 };
	char comm[DF_ARGS_MAX + 1];
	size_t n = 0;
	int complete = 1;

	if (len == 0)
		return;
	buf[0] = '\0';
	if (a->available)
		ai = find_ai(a, rec->k.tgid, rec->k.image);
	if (ai)
		n = chain_of(a, ai, chain, &complete);
	if (!complete)
		put(&o, "\xe2\x80\xa6 \xe2\x86\x92 ", 8); /* "… → ": the top is not known */
	for (size_t i = 0; i + 1 < n; i++) {
		display_name(a, chain[i], comm, sizeof(comm));
		put(&o, comm, strlen(comm));
		put(&o, " \xe2\x86\x92 ", 5);
	}
	/* the caller by the name it had at the event, unless it is a script run through env */
	if (!ai || !display_name(a, ai, comm, sizeof(comm)))
		clean_str(rec->v.comm, DF_COMM_LEN, comm);
	put(&o, comm, strlen(comm));
}

static void gen_exe(yajl_gen g, const struct df_image *img, int *r)
{
	char exe[4 * DF_EXE_MAX];
	struct out o = { exe, sizeof(exe), 0, 0 };
	size_t n = strnlen(img->exe, DF_EXE_MAX);

	exe[0] = '\0';
	for (size_t i = 0; i < n;) {
		int keep;
		size_t l = clean_char((const unsigned char *)img->exe + i, n - i, &keep);

		put(&o, keep ? img->exe + i : "?", keep ? l : 1);
		i += l;
	}
	*r |= jg_key_str(g, "exe", n ? exe : NULL);
}

static void gen_cmdline(yajl_gen g, const struct attrib_image *prog, size_t max, int *r)
{
	char text[4 * DF_ARGS_MAX + 16];

	if (!prog || !prog->img.args_len) {
		*r |= jg_key_str(g, "cmdline", NULL);
		return;
	}
	attrib_format_args(&prog->img, max, text, sizeof(text));
	*r |= jg_key_str(g, "cmdline", text);
}

void attrib_gen_process(yajl_gen g, const struct attrib_data *a, const struct fence_record *rec,
			int *r)
{
	const struct df_rec_key *k = &rec->k;
	const struct df_rec_val *v = &rec->v;
	const struct attrib_image *ai = NULL, *prog = NULL, *parent = NULL;
	const struct attrib_image *chain[DF_ANCESTRY_MAX];
	char comm[DF_ATTRIB_COMM + 1], text[1024];
	int complete = 0;
	size_t n = 0;

	if (a->available)
		ai = find_ai(a, k->tgid, k->image);
	if (ai) {
		prog = program_of(a, ai);
		parent = parent_of(a, ai);
		n = chain_of(a, ai, chain, &complete);
	}

	if (prog)
		gen_exe(g, &prog->img, r);
	else
		*r |= jg_key_str(g, "exe", NULL);
	gen_cmdline(g, prog, 0, r);
	*r |= jg_key_bool(g, "truncated", prog && (prog->img.flags & DF_IMG_TRUNCATED));
	if (ai) {
		gen_time(g, "started_at", ai->img.start_ns, r);
		/* forked and never exec'd: exe and cmdline are the program its parent ran */
		*r |= jg_key_bool(g, "forked", !(ai->img.flags & DF_IMG_EXEC));
		*r |= jg_key_int(g, "ppid", ai->img.ppid);
		/* its parent had exited when it made the call: it was reparented (a daemon) */
		*r |= jg_key_bool(g, "reparented",
				  parent && (parent->img.flags & DF_IMG_EXITED) &&
					  parent->img.end_ns <= v->first_ns);
	}
	/* from the fence's first process down to this one */
	*r |= jg_str(g, "ancestry");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < n; i++) {
		const struct attrib_image *c = chain[i];

		yajl_gen_map_open(g);
		*r |= jg_key_int(g, "pid", c->key.tgid);
		clean_str(c->img.comm, DF_ATTRIB_COMM, comm);
		*r |= jg_key_str(g, "comm", comm);
		/* what the chain calls it: comm, or the script env ran */
		display_name(a, c, text, sizeof(text));
		*r |= jg_key_str(g, "name", text);
		gen_cmdline(g, program_of(a, c), DF_ATTRIB_SHORT_CMDLINE, r);
		*r |= jg_key_bool(g, "exited",
				  (c->img.flags & DF_IMG_EXITED) && c->img.end_ns <= v->first_ns);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	*r |= jg_key_bool(g, "ancestry_complete", ai && complete);
	attrib_chain_text(a, rec, text, sizeof(text));
	*r |= jg_key_str(g, "chain", text);
}

int attrib_gen_notes(yajl_gen g, const struct attrib_data *a)
{
	char buf[512];
	int r = 0;

	if (!a->available) {
		snprintf(buf, sizeof(buf),
			 "process attribution unavailable (%s): events name the process by pid and comm only",
			 a->error[0] ? a->error : "unknown reason");
		return jg_str(g, buf);
	}
	if (a->slot.lost) {
		snprintf(buf, sizeof(buf),
			 "%llu processes of the fence were not kept for attribution (at most %u programs at once per fence, %u on the host): their events have no cmdline or ancestry (attribution_lost)",
			 (unsigned long long)a->slot.lost, a->slot.images_max, DF_ATTRIB_IMAGES);
		r |= jg_str(g, buf);
	}
	if (a->missing) {
		snprintf(buf, sizeof(buf),
			 "%zu events name a program whose record was not found: they have no cmdline or ancestry (attribution_lost)",
			 a->missing);
		r |= jg_str(g, buf);
	}
	if (a->slot.cgroups_lost) {
		snprintf(buf, sizeof(buf),
			 "%llu cgroups made inside the fence could not be followed (at most %u on the host): processes in them have no attribution",
			 (unsigned long long)a->slot.cgroups_lost, DF_ATTRIB_CGROUPS);
		r |= jg_str(g, buf);
	}
	return r;
}

/* "203.0.113.10:443", "[2001:db8::1]:443", "github.com (203.0.113.10:443)" */
static void format_dest(const struct fence_record *rec, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];
	const struct df_rec_key *k = &rec->k;

	inet_ntop(k->family == 4 ? AF_INET : AF_INET6, k->daddr, addr, sizeof(addr));
	if (rec->name[0] && k->hook == DF_HOOK_DNS)
		snprintf(buf, len, "%s (question)", rec->name);
	else if (rec->name[0])
		snprintf(buf, len, "%s (%s%s%s:%u)", rec->name, k->family == 6 ? "[" : "", addr,
			 k->family == 6 ? "]" : "", k->dport);
	else
		snprintf(buf, len, "%s%s%s:%u", k->family == 6 ? "[" : "", addr,
			 k->family == 6 ? "]" : "", k->dport);
}

void attrib_summary_refused(const struct fence_data *d, char *buf, size_t len)
{
	size_t off = strlen(buf), shown = 0, more = 0;

	for (int verdict = DF_EV_BLOCKED; verdict >= DF_EV_WOULD_BLOCK; verdict--) {
		for (size_t i = 0; i < d->n_recs; i++) {
			const struct fence_record *rec = &d->recs[i];
			char dest[DF_DNS_NAME_MAX + 64], chain[512];
			int n;

			if (rec->k.verdict != verdict)
				continue;
			if (shown == DF_ATTRIB_SUMMARY_EVENTS) {
				more++;
				continue;
			}
			format_dest(rec, dest, sizeof(dest));
			attrib_chain_text(&d->attrib, rec, chain, sizeof(chain));
			n = snprintf(buf + off, len - off, "%s%s %s by %s", shown ? ", " : "; ",
				     verdict == DF_EV_BLOCKED ? "blocked" : "would-block", dest, chain);
			if (n < 0 || (size_t)n >= len - off) {
				buf[off] = '\0';
				return;
			}
			off += (size_t)n;
			shown++;
		}
	}
	if (more)
		snprintf(buf + off, len - off, " and %zu more", more);
}

/* ---- state file ---- */

int attrib_ref_to_json(yajl_gen g, const struct attrib_ref *ref)
{
	int r = 0;

	r |= jg_str(g, "attrib");
	yajl_gen_map_open(g);
	r |= jg_key_int(g, "slot", ref->slot);
	r |= jg_key_int(g, "gen", ref->gen);
	r |= jg_key_str(g, "error", ref->error[0] ? ref->error : NULL);
	if (yajl_gen_map_close(g) != yajl_gen_status_ok)
		r = -EINVAL;
	return r;
}

void attrib_ref_from_json(yajl_val root, struct attrib_ref *ret)
{
	struct attrib_ref ref = {};
	yajl_val o;
	long long n;
	const char *s;

	if (json_get_object(root, "attrib", &o, NULL) == 0) {
		if (json_get_int(o, "slot", &n, NULL) == 0 && n >= 0 && n < DF_ATTRIB_FENCES)
			ref.slot = (__u32)n;
		if (json_get_int(o, "gen", &n, NULL) == 0 && n > 0 && n <= 0xffffffffLL)
			ref.gen = (__u32)n;
		if (json_get_string(o, "error", &s, NULL) == 0)
			snprintf(ref.error, sizeof(ref.error), "%s", s);
	} else {
		snprintf(ref.error, sizeof(ref.error), "not set up for this fence");
	}
	*ret = ref;
}
