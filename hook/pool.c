// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Verified program sets kept for the next fence: see pool.h. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cgroup.h"
#include "pool.h"
#include "util.h"

int pool_enabled(const struct df_host_config *hc)
{
	/* the sets idle out with the attribution programs they are bound to */
	return hc->fence_pool > 0 && hc->attribution_linger > 0;
}

/* ---- the signature: SipHash-2-4 (Aumasson and Bernstein), twice, under two keys ---- */

struct sip {
	uint64_t v0, v1, v2, v3;
};

static inline uint64_t rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

static void sip_round(struct sip *s)
{
	s->v0 += s->v1;
	s->v1 = rotl(s->v1, 13);
	s->v1 ^= s->v0;
	s->v0 = rotl(s->v0, 32);
	s->v2 += s->v3;
	s->v3 = rotl(s->v3, 16);
	s->v3 ^= s->v2;
	s->v0 += s->v3;
	s->v3 = rotl(s->v3, 21);
	s->v3 ^= s->v0;
	s->v2 += s->v1;
	s->v1 = rotl(s->v1, 17);
	s->v1 ^= s->v2;
	s->v2 = rotl(s->v2, 32);
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t siphash24(const uint64_t k[2], const uint8_t *p, size_t len)
{
	struct sip s = { k[0] ^ 0x736f6d6570736575ULL, k[1] ^ 0x646f72616e646f6dULL,
			 k[0] ^ 0x6c7967656e657261ULL, k[1] ^ 0x7465646279746573ULL };
	uint8_t last[8] = { 0 };
	size_t i;
	uint64_t m;

	for (i = 0; i + 8 <= len; i += 8) {
		m = le64(p + i);
		s.v3 ^= m;
		sip_round(&s);
		sip_round(&s);
		s.v0 ^= m;
	}
	memcpy(last, p + i, len - i);
	last[7] = (uint8_t)len;
	m = le64(last);
	s.v3 ^= m;
	sip_round(&s);
	sip_round(&s);
	s.v0 ^= m;
	s.v2 ^= 0xff;
	for (int r = 0; r < 4; r++)
		sip_round(&s);
	return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

struct buf {
	uint8_t *p;
	size_t len, cap;
	int err;
};

static void put(struct buf *b, const void *data, size_t len)
{
	if (b->err)
		return;
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *n;

		while (cap < b->len + len)
			cap *= 2;
		n = realloc(b->p, cap);
		if (!n) {
			b->err = -ENOMEM;
			return;
		}
		b->p = n;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
}

static void put_u64(struct buf *b, uint64_t v)
{
	put(b, &v, sizeof(v));
}

static void put_compiled(struct buf *b, const struct df_compiled *c)
{
	put_u64(b, c->n);
	put(b, c->keys, c->n * sizeof(*c->keys));
	put(b, c->vals, c->n * sizeof(*c->vals));
}

/* The per-boot key (the state dir is a tmpfs, as bpffs is): made on first use. */
static int pool_key(const struct df_host_config *hc, uint64_t ret[4])
{
	_cleanup_close_ int dfd = -1, lock = -1;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	int r;

	for (int pass = 0; pass < 2; pass++) {
		dfd = open(hc->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return -errno;
		r = read_file_capped(dfd, POOL_KEY, 64, &buf, &len);
		close(TAKE_FD(dfd));
		if (r == 0 && len == 4 * sizeof(uint64_t)) {
			memcpy(ret, buf, len);
			return 0;
		}
		free(TAKE_PTR(buf));
		if (r < 0 && r != -ENOENT)
			return r;
		if (pass == 0) {
			/* made once, under the lock: a second maker would orphan the sets of the first */
			lock = lock_file_range(hc->state_dir, POOL_LOCK, 0, 0);
			if (lock < 0)
				return lock;
		}
	}
	if (getrandom(ret, 4 * sizeof(uint64_t), 0) != 4 * sizeof(uint64_t))
		return -errno;
	return write_file_atomic(hc->state_dir, POOL_KEY, ret, 4 * sizeof(uint64_t), 0600);
}

int pool_sig(const struct df_host_config *hc, const struct pool_inputs *in,
	     char ret[POOL_SIG_LEN])
{
	static const char tag[] = "depfence.pool/v1";
	struct buf b = {};
	uint64_t key[4], h[2];
	int r;

	r = pool_key(hc, key);
	if (r < 0)
		return r;
	put(&b, tag, sizeof(tag));
	/* the programs themselves: both builds, whichever this kernel loads */
	for (int i = 0; i < 2; i++) {
		put_u64(&b, in->obj_sz[i]);
		put(&b, in->obj[i], in->obj_sz[i]);
	}
	put_compiled(&b, in->c4);
	put_compiled(&b, in->c6);
	put_u64(&b, in->n_names);
	put_u64(&b, (uint64_t)in->tcp_reader);
	put_u64(&b, in->max_records);
	put_u64(&b, in->procs_map_id);
	if (b.err) {
		free(b.p);
		return b.err;
	}
	h[0] = siphash24(key, b.p, b.len);
	h[1] = siphash24(key + 2, b.p, b.len);
	free(b.p);
	snprintf(ret, POOL_SIG_LEN, "%016llx%016llx", (unsigned long long)h[0],
		 (unsigned long long)h[1]);
	return 0;
}

/* ---- the pool directory ---- */

static unsigned long long boottime_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (unsigned long long)ts.tv_sec;
}

/*
 * "<sig>-<cgroup id>-<parked at, boottime s>" (bpffs refuses names with a
 * dot); anything else, such as "stage-..." (a park that did not finish), is
 * not a set to take
 */
static int parse_entry(const char *name, char sig[POOL_SIG_LEN], unsigned long long *cgid,
		       unsigned long long *since)
{
	int n = 0;

	if (strlen(name) < POOL_SIG_LEN || name[POOL_SIG_LEN - 1] != '-')
		return -EINVAL;
	memcpy(sig, name, POOL_SIG_LEN - 1);
	sig[POOL_SIG_LEN - 1] = 0;
	if (strspn(sig, "0123456789abcdef") != POOL_SIG_LEN - 1 ||
	    sscanf(name + POOL_SIG_LEN, "%llu-%llu%n", cgid, since, &n) != 2 ||
	    name[POOL_SIG_LEN + n])
		return -EINVAL;
	return 0;
}

/* Unpin everything in dfd's directory name (a set: its programs and maps go with the pins). */
static int remove_entry(int pdfd, const char *name)
{
	_cleanup_close_ int dfd = openat(pdfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;
	struct dirent *de;
	int r = 0;

	if (dfd < 0)
		return errno == ENOENT ? 0 : -errno;
	d = fdopendir(TAKE_FD(dfd));
	if (!d)
		return -errno;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT)
			r = -errno;
	closedir(d);
	if (unlinkat(pdfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		r = -errno;
	return r;
}

static int pool_dir(const struct df_host_config *hc, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s", hc->bpffs_root, POOL_DIR);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

struct walk {
	/* what to look for, or NULL (sweep only) */
	const char *sig;
	unsigned long long cgroup_id;
	int all; /* remove every set */
	/* out */
	char found[NAME_MAX + 1];
	int ready, removed;
};

/*
 * Under the pool lock: remove sets idle past attribution_linger (every set
 * with w->all) and what killed parks left; count the others; find one that
 * fits w->sig.
 */
static int walk_pool(const struct df_host_config *hc, int pdfd, struct walk *w)
{
	unsigned long long now = boottime_s(), cgid, since;
	_cleanup_close_ int dfd = fcntl(pdfd, F_DUPFD_CLOEXEC, 3);
	char sig[POOL_SIG_LEN];
	struct dirent *de;
	int r = 0, r2;
	DIR *d;

	if (dfd < 0)
		return -errno;
	d = fdopendir(TAKE_FD(dfd));
	if (!d)
		return -errno;
	rewinddir(d); /* a dup shares the offset: read the whole directory */
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (w->all || parse_entry(de->d_name, sig, &cgid, &since) < 0 ||
		    since + hc->attribution_linger < now || since > now) {
			r2 = remove_entry(pdfd, de->d_name);
			if (r2 < 0)
				r = r2;
			else
				w->removed++;
			continue;
		}
		w->ready++;
		if (w->sig && !w->found[0] && !strcmp(sig, w->sig) && cgid != w->cgroup_id)
			snprintf(w->found, sizeof(w->found), "%s", de->d_name);
	}
	closedir(d);
	return r;
}

/* The pool's directory, open, and its lock held (*ret_lock); -ENOENT when there is none and !create. */
static int open_pool(const struct df_host_config *hc, int create, int *ret_lock)
{
	_cleanup_close_ int lock = -1;
	char dir[PATH_MAX];
	int dfd;

	if (pool_dir(hc, dir, sizeof(dir)) < 0)
		return -ENAMETOOLONG;
	lock = lock_file_range(hc->state_dir, POOL_LOCK, 0, 0);
	if (lock < 0)
		return lock;
	if (create && mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	*ret_lock = TAKE_FD(lock);
	return dfd;
}

int pool_take(const struct df_host_config *hc, const char *sig, unsigned long long cgroup_id,
	      const char *dir)
{
	_cleanup_close_ int lock = -1, pdfd = -1;
	struct walk w = { .sig = sig, .cgroup_id = cgroup_id };
	int r;

	pdfd = open_pool(hc, 0, &lock);
	if (pdfd == -ENOENT)
		return 0;
	if (pdfd < 0)
		return pdfd;
	r = walk_pool(hc, pdfd, &w);
	if (r < 0)
		df_debug("pool: sweep %s/%s: %s", hc->bpffs_root, POOL_DIR, strerror(-r));
	if (!w.found[0])
		return 0;
	if (renameat2(pdfd, w.found, AT_FDCWD, dir, RENAME_NOREPLACE) < 0)
		return -errno;
	return 1;
}

/* ---- the cgroup kept sets stay attached to ---- */

static int hold_path(char *buf, size_t len)
{
	char root[PATH_MAX];
	int r = cg2_mount(root, sizeof(root)), n;

	if (r < 0)
		return r;
	n = snprintf(buf, len, "%s/%s", root, POOL_HOLD);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int write_small(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];
	_cleanup_close_ int fd = -1;
	size_t n = strlen(text);

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	return write(fd, text, n) == (ssize_t)n ? 0 : -errno;
}

int pool_hold_cgroup(void)
{
	char path[PATH_MAX];
	int r, fd;

	r = hold_path(path, sizeof(path));
	if (r < 0)
		return r;
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	/* frozen: a process put in it is stopped before it runs, so it makes no socket here */
	r = write_small(path, "cgroup.freeze", "1");
	if (r < 0)
		return r;
	r = cg2_populated(path);
	if (r != 0)
		return r < 0 ? r : -EBUSY;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int pool_unhold(int dfd)
{
	_cleanup_close_ int dup = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
	struct dirent *de;
	int r = 0;
	DIR *d;

	if (dup < 0)
		return -errno;
	d = fdopendir(TAKE_FD(dup));
	if (!d)
		return -errno;
	rewinddir(d); /* a dup shares the offset: read the whole directory */
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, POOL_PIN "l_", strlen(POOL_PIN "l_")) &&
		    unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT)
			r = -errno;
	closedir(d);
	return r;
}

/* ---- emptying a set's maps ---- */

static int clear_hash(int fd, const struct bpf_map_info *info)
{
	char key[256];

	if (info->key_size > sizeof(key))
		return -E2BIG;
	/* bounded: every round deletes the first key, or stops */
	for (__u32 i = 0; i <= info->max_entries; i++) {
		if (bpf_map_get_next_key(fd, NULL, key) < 0)
			return errno == ENOENT ? 0 : -errno;
		if (bpf_map_delete_elem(fd, key) < 0 && errno != ENOENT)
			return -errno;
	}
	return -EBUSY; /* still filling: something writes it */
}

static int clear_array(int fd, const struct bpf_map_info *info, int percpu)
{
	size_t vsz = percpu ? ((info->value_size + 7) & ~7u) * (size_t)libbpf_num_possible_cpus()
			    : info->value_size;
	_cleanup_free_ void *zero = calloc(info->max_entries, vsz);
	_cleanup_free_ __u32 *keys = calloc(info->max_entries, sizeof(*keys));
	__u32 count = info->max_entries;

	if (!zero || !keys)
		return -ENOMEM;
	for (__u32 i = 0; i < info->max_entries; i++)
		keys[i] = i;
	/* one call for them all (5.6+), else one each */
	if (bpf_map_update_batch(fd, keys, zero, &count, NULL) == 0 &&
	    count == info->max_entries)
		return 0;
	for (__u32 i = 0; i < info->max_entries; i++)
		if (bpf_map_update_elem(fd, &i, zero, BPF_ANY) < 0)
			return -errno;
	return 0;
}

/* Empty every map of the set in dfd (pins POOL_PIN "m_*") but its config, which a take rewrites. */
static int clear_maps(int dfd)
{
	_cleanup_close_ int dup = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
	struct dirent *de;
	int r = 0, n = 0;
	DIR *d;

	if (dup < 0)
		return -errno;
	d = fdopendir(TAKE_FD(dup));
	if (!d)
		return -errno;
	rewinddir(d); /* a dup shares the offset: read the whole directory */
	while (r == 0 && (de = readdir(d))) {
		struct bpf_map_info info = {};
		__u32 len = sizeof(info);
		char path[PATH_MAX];
		_cleanup_close_ int fd = -1;

		if (strncmp(de->d_name, POOL_PIN "m_", strlen(POOL_PIN "m_")) ||
		    !strcmp(de->d_name, POOL_PIN "m_config"))
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dirfd(d), de->d_name);
		fd = bpf_obj_get(path);
		if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len) < 0) {
			r = -errno;
			break;
		}
		switch (info.type) {
		case BPF_MAP_TYPE_HASH:
		case BPF_MAP_TYPE_LRU_HASH:
		case BPF_MAP_TYPE_SOCKHASH:
			r = clear_hash(fd, &info);
			break;
		case BPF_MAP_TYPE_ARRAY:
			r = clear_array(fd, &info, 0);
			break;
		case BPF_MAP_TYPE_PERCPU_ARRAY:
			r = clear_array(fd, &info, 1);
			break;
		default:
			r = -EINVAL;
		}
		n++;
	}
	closedir(d);
	return r < 0 ? r : n ? 0 : -ENOENT;
}

/* Unpin all but the set's own pins (the fence's links went before, its map pins go now). */
static int drop_fence_pins(int dfd)
{
	_cleanup_close_ int dup = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
	struct dirent *de;
	int r = 0;
	DIR *d;

	if (dup < 0)
		return -errno;
	d = fdopendir(TAKE_FD(dup));
	if (!d)
		return -errno;
	rewinddir(d); /* a dup shares the offset: read the whole directory */
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    strncmp(de->d_name, POOL_PIN, strlen(POOL_PIN)) &&
		    unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT)
			r = -errno;
	closedir(d);
	return r;
}

int pool_park(const struct df_host_config *hc, const char *dir, const char *sig,
	      unsigned long long cgroup_id, int (*after_move)(void *arg), void *arg,
	      int *ret_moved)
{
	_cleanup_close_ int lock = -1, pdfd = -1, dfd = -1;
	struct walk w = {};
	char staged[NAME_MAX + 1], ready[NAME_MAX + 1];
	int r;

	*ret_moved = 0;
	if (!pool_enabled(hc) || !sig || strlen(sig) != POOL_SIG_LEN - 1)
		return 0;
	/* a whole set: the programs of its links and its config */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return 0;
	if (faccessat(dfd, POOL_PIN "m_config", F_OK, AT_SYMLINK_NOFOLLOW) < 0 ||
	    faccessat(dfd, POOL_PIN "p_egress", F_OK, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	pdfd = open_pool(hc, 1, &lock);
	if (pdfd < 0)
		return pdfd;
	r = walk_pool(hc, pdfd, &w);
	if (r < 0)
		df_debug("pool: sweep %s/%s: %s", hc->bpffs_root, POOL_DIR, strerror(-r));
	if (w.ready >= (int)hc->fence_pool)
		return 0;
	snprintf(ready, sizeof(ready), "%s-%llu-%llu", sig, cgroup_id, boottime_s());
	snprintf(staged, sizeof(staged), "stage-%s", ready);
	/* staged under a name walk_pool removes: a park killed from here on leaves nothing to take */
	if (renameat2(AT_FDCWD, dir, pdfd, staged, RENAME_NOREPLACE) < 0)
		return -errno;
	*ret_moved = 1;
	r = after_move ? after_move(arg) : 0;
	if (r < 0) {
		remove_entry(pdfd, staged);
		return r;
	}
	/* the fence is gone now, whether its set is kept or, should this fail, unloaded */
	r = clear_maps(dfd);
	if (r == 0)
		r = drop_fence_pins(dfd);
	if (r == 0 && renameat2(pdfd, staged, pdfd, ready, RENAME_NOREPLACE) < 0)
		r = -errno;
	if (r < 0) {
		df_debug("pool: keep %s: %s; its programs are unloaded", dir, strerror(-r));
		remove_entry(pdfd, staged);
	}
	return 1;
}

int pool_gc(const struct df_host_config *hc, int all)
{
	_cleanup_close_ int lock = -1, pdfd = -1;
	struct walk w = { .all = all };
	char dir[PATH_MAX];
	int r;

	pdfd = open_pool(hc, 0, &lock);
	if (pdfd == -ENOENT)
		return 0;
	if (pdfd < 0)
		return pdfd;
	r = walk_pool(hc, pdfd, &w);
	if (r < 0)
		return r;
	/*
	 * Empty: the directory goes too (bpffs_root holds nothing of the pool's
	 * then), and the cgroup its sets were held on (a pool of another
	 * bpffs_root that holds sets on it loses no set, only their holds).
	 */
	if (w.ready == 0) {
		if (pool_dir(hc, dir, sizeof(dir)) == 0 && rmdir(dir) < 0 && errno != ENOENT &&
		    errno != ENOTEMPTY)
			return -errno;
		if (hold_path(dir, sizeof(dir)) == 0 && rmdir(dir) < 0 && errno != ENOENT)
			df_debug("pool: remove %s: %s", dir, strerror(errno));
	}
	return w.removed;
}
