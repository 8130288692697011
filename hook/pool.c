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

/* SipHash-2-4 over a stream: whole 8-byte words as they come, the tail kept */
struct sip_stream {
	struct sip s;
	uint8_t tail[8];
	size_t ntail, len;
};

static void sip_init(struct sip_stream *h, const uint64_t k[2])
{
	memset(h, 0, sizeof(*h));
	h->s.v0 = k[0] ^ 0x736f6d6570736575ULL;
	h->s.v1 = k[1] ^ 0x646f72616e646f6dULL;
	h->s.v2 = k[0] ^ 0x6c7967656e657261ULL;
	h->s.v3 = k[1] ^ 0x7465646279746573ULL;
}

static void sip_word(struct sip *s, uint64_t m)
{
	s->v3 ^= m;
	sip_round(s);
	sip_round(s);
	s->v0 ^= m;
}

static void sip_update(struct sip_stream *h, const void *data, size_t len)
{
	const uint8_t *p = data;

	h->len += len;
	while (len) {
		size_t n = 8 - h->ntail < len ? 8 - h->ntail : len;

		if (h->ntail == 0 && len >= 8) {
			sip_word(&h->s, le64(p));
			p += 8;
			len -= 8;
			continue;
		}
		memcpy(h->tail + h->ntail, p, n);
		h->ntail += n;
		p += n;
		len -= n;
		if (h->ntail == 8) {
			sip_word(&h->s, le64(h->tail));
			h->ntail = 0;
		}
	}
}

static uint64_t sip_final(struct sip_stream *h)
{
	uint8_t last[8] = { 0 };

	memcpy(last, h->tail, h->ntail);
	last[7] = (uint8_t)h->len;
	sip_word(&h->s, le64(last));
	h->s.v2 ^= 0xff;
	for (int r = 0; r < 4; r++)
		sip_round(&h->s);
	return h->s.v0 ^ h->s.v1 ^ h->s.v2 ^ h->s.v3;
}

/* the signature's two hashes, fed together */
struct sig_hash {
	struct sip_stream h[2];
};

static void put(struct sig_hash *g, const void *data, size_t len)
{
	sip_update(&g->h[0], data, len);
	sip_update(&g->h[1], data, len);
}

static void put_u64(struct sig_hash *g, uint64_t v)
{
	put(g, &v, sizeof(v));
}

static void put_compiled(struct sig_hash *g, const struct df_compiled *c)
{
	put_u64(g, c->n);
	put(g, c->keys, c->n * sizeof(*c->keys));
	put(g, c->vals, c->n * sizeof(*c->vals));
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
	struct sig_hash g;
	uint64_t key[4];
	int r;

	r = pool_key(hc, key);
	if (r < 0)
		return r;
	sip_init(&g.h[0], key);
	sip_init(&g.h[1], key + 2);
	put(&g, tag, sizeof(tag));
	/* the programs themselves: both builds, whichever this kernel loads */
	put(&g, in->obj_id, strlen(in->obj_id) + 1);
	put_compiled(&g, in->c4);
	put_compiled(&g, in->c6);
	put_u64(&g, in->n_names);
	put_u64(&g, (uint64_t)in->tcp_reader);
	put_u64(&g, (uint64_t)in->skb_task_helpers);
	put_u64(&g, in->max_records);
	put_u64(&g, in->procs_map_id);
	snprintf(ret, POOL_SIG_LEN, "%016llx%016llx", (unsigned long long)sip_final(&g.h[0]),
		 (unsigned long long)sip_final(&g.h[1]));
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

/* A DIR on dfd's directory, from its start (a dup shares the offset: rewound); dfd stays open. */
static DIR *dir_of(int dfd)
{
	int dup = fcntl(dfd, F_DUPFD_CLOEXEC, 3), err;
	DIR *d;

	if (dup < 0)
		return NULL;
	d = fdopendir(dup);
	if (!d) {
		err = errno;
		close(dup);
		errno = err;
		return NULL;
	}
	rewinddir(d);
	return d;
}

/* Unpin what dfd's directory holds whose name starts with prefix (match) or does not (!match). */
static int unpin_prefixed(int dfd, const char *prefix, int match)
{
	DIR *d = dir_of(dfd);
	struct dirent *de;
	int r = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    (strncmp(de->d_name, prefix, strlen(prefix)) == 0) != match)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT)
			r = -errno;
	}
	closedir(d);
	return r;
}

/* Remove the set pdfd's directory holds as name: its programs and maps go with the pins. */
static int remove_entry(int pdfd, const char *name)
{
	_cleanup_close_ int dfd = openat(pdfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r;

	if (dfd < 0)
		return errno == ENOENT ? 0 : -errno;
	r = unpin_prefixed(dfd, "", 1);
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
	char sig[POOL_SIG_LEN];
	struct dirent *de;
	DIR *d = dir_of(pdfd);
	int r = 0, r2;

	if (!d)
		return -errno;
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

/*
 * open_pool, then walk_pool with w: the pool's directory (its lock in
 * *ret_lock), -ENOENT when there is none and !create, or -errno. A walk
 * that failed part way is in *ret_walk (it has swept what it could).
 */
static int open_walked(const struct df_host_config *hc, int create, struct walk *w,
		       int *ret_lock, int *ret_walk)
{
	int pdfd = open_pool(hc, create, ret_lock);

	if (pdfd < 0)
		return pdfd;
	*ret_walk = walk_pool(hc, pdfd, w);
	if (*ret_walk < 0)
		df_debug("pool: sweep %s/%s: %s", hc->bpffs_root, POOL_DIR, strerror(-*ret_walk));
	return pdfd;
}

int pool_take(const struct df_host_config *hc, const char *sig, unsigned long long cgroup_id,
	      const char *dir)
{
	_cleanup_close_ int lock = -1, pdfd = -1;
	struct walk w = { .sig = sig, .cgroup_id = cgroup_id };
	int r;

	pdfd = open_walked(hc, 0, &w, &lock, &r);
	if (pdfd == -ENOENT)
		return 0;
	if (pdfd < 0)
		return pdfd;
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
	return unpin_prefixed(dfd, POOL_PIN "l_", 1);
}

/* ---- emptying a set's maps ---- */

/* Delete every key: walked once in order, then deleted (in one batch where the kernel can). */
static int clear_hash(int fd, const struct bpf_map_info *info)
{
	size_t ksz = info->key_size, n = 0;
	_cleanup_free_ uint8_t *keys = NULL;
	__u32 count;

	if (!ksz || info->max_entries == 0)
		return 0;
	keys = malloc(((size_t)info->max_entries + 1) * ksz);
	if (!keys)
		return -ENOMEM;
	/* bounded: a full map has max_entries keys */
	while (n <= info->max_entries) {
		if (bpf_map_get_next_key(fd, n ? keys + (n - 1) * ksz : NULL, keys + n * ksz) < 0) {
			if (errno != ENOENT)
				return -errno;
			break;
		}
		n++;
	}
	if (n > info->max_entries)
		return -EBUSY; /* still filling: something writes it */
	count = (__u32)n;
	if (n && bpf_map_delete_batch(fd, keys, &count, NULL) == 0 && count == n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (bpf_map_delete_elem(fd, keys + i * ksz) < 0 && errno != ENOENT)
			return -errno;
	return 0;
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

static int clear_pinned(int dfd, const char *name)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char path[PATH_MAX];
	_cleanup_close_ int fd = -1;

	snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", dfd, name);
	fd = bpf_obj_get(path);
	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
		return -errno;
	switch (info.type) {
	case BPF_MAP_TYPE_HASH:
	case BPF_MAP_TYPE_LRU_HASH:
	case BPF_MAP_TYPE_SOCKHASH:
		return clear_hash(fd, &info);
	case BPF_MAP_TYPE_ARRAY:
		return clear_array(fd, &info, 0);
	case BPF_MAP_TYPE_PERCPU_ARRAY:
		return clear_array(fd, &info, 1);
	default:
		return -EINVAL;
	}
}

/*
 * Empty every map of the set in dfd (pins POOL_PIN "m_*") but its config,
 * which a take rewrites. The TCP reader's socket map first: a socket the
 * fence made and passed out stays in it until then, and its writes would
 * reach the reader, which writes to the others.
 */
static int clear_maps(int dfd)
{
	struct dirent *de;
	int r, n = 0;
	DIR *d;

	r = clear_pinned(dfd, POOL_PIN "m_dns_socks");
	if (r < 0 && r != -ENOENT)
		return r;
	r = 0;
	d = dir_of(dfd);
	if (!d)
		return -errno;
	while (r == 0 && (de = readdir(d))) {
		if (strncmp(de->d_name, POOL_PIN "m_", strlen(POOL_PIN "m_")) ||
		    !strcmp(de->d_name, POOL_PIN "m_config") ||
		    !strcmp(de->d_name, POOL_PIN "m_dns_socks"))
			continue;
		r = clear_pinned(dirfd(d), de->d_name);
		n++;
	}
	closedir(d);
	return r < 0 ? r : n ? 0 : -ENOENT;
}

/* Unpin all but the set's own pins (the fence's links went before, its map pins go now). */
static int drop_fence_pins(int dfd)
{
	return unpin_prefixed(dfd, POOL_PIN, 0);
}

int pool_park(const struct df_host_config *hc, const char *dir, int dfd, const char *sig,
	      unsigned long long cgroup_id, int (*detach)(void *arg),
	      int (*after_move)(void *arg), void *arg, int *ret_moved)
{
	_cleanup_close_ int lock = -1, pdfd = -1;
	struct walk w = {};
	char staged[NAME_MAX + 1], ready[NAME_MAX + 1];
	int r;

	*ret_moved = 0;
	if (!pool_enabled(hc) || !sig || strlen(sig) != POOL_SIG_LEN - 1)
		return 0;
	/* a whole set: the programs of its links and its config */
	if (faccessat(dfd, POOL_PIN "m_config", F_OK, AT_SYMLINK_NOFOLLOW) < 0 ||
	    faccessat(dfd, POOL_PIN "p_egress", F_OK, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	pdfd = open_walked(hc, 1, &w, &lock, &r);
	if (pdfd < 0)
		return pdfd;
	if (w.ready >= (int)hc->fence_pool)
		return 0;
	/*
	 * From the links' going to the state file's, under the lock and with no
	 * wait in between: a park killed there leaves what it would have left
	 * before the pool (links gone, the state naming the fence)
	 */
	r = detach ? detach(arg) : 0;
	if (r < 0)
		return r;
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

	pdfd = open_walked(hc, 0, &w, &lock, &r);
	if (pdfd == -ENOENT)
		return 0;
	if (pdfd < 0)
		return pdfd;
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

int pool_count(const struct df_host_config *hc)
{
	char dir[PATH_MAX], sig[POOL_SIG_LEN];
	unsigned long long cgid, since;
	struct dirent *de;
	int n = 0;
	DIR *d;

	if (pool_dir(hc, dir, sizeof(dir)) < 0)
		return -ENAMETOOLONG;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d)))
		n += parse_entry(de->d_name, sig, &cgid, &since) == 0;
	closedir(d);
	return n;
}
