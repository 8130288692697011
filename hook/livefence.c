// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <bpf/bpf.h>

#include "livefence.h"
#include "pool.h"

void live_ids_free(struct live_ids *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->ids[i]);
	free(l->ids);
	memset(l, 0, sizeof(*l));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Entries of dir that are safe ids once suffix (if any) is cut; dirs: directories only. */
static int list_ids(const char *dir, const char *suffix, int dirs, struct live_ids *ret)
{
	struct live_ids l = {};
	size_t cap = 0, sl = suffix ? strlen(suffix) : 0;
	struct dirent *de;
	DIR *d;

	d = opendir(dir);
	if (!d) {
		if (errno == ENOENT) {
			*ret = l;
			return 0;
		}
		return -errno;
	}
	while ((de = readdir(d))) {
		char id[256];
		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.' || len <= sl || len - sl >= sizeof(id))
			continue;
		if (sl && strcmp(de->d_name + len - sl, suffix))
			continue;
		if (dirs && de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		if (!dirs && de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
			continue;
		memcpy(id, de->d_name, len - sl);
		id[len - sl] = '\0';
		if (safe_id(id) < 0)
			continue;
		if (l.n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **n = realloc(l.ids, ncap * sizeof(*n));

			if (!n)
				goto nomem;
			l.ids = n;
			cap = ncap;
		}
		l.ids[l.n] = strdup(id);
		if (!l.ids[l.n])
			goto nomem;
		l.n++;
	}
	closedir(d);
	if (l.n)
		qsort(l.ids, l.n, sizeof(*l.ids), cmp_str);
	*ret = l;
	return 0;
nomem:
	closedir(d);
	live_ids_free(&l);
	return -ENOMEM;
}

int live_state_ids(const struct df_host_config *hc, struct live_ids *ret)
{
	return list_ids(hc->state_dir, ".json", 0, ret);
}

int live_pin_ids(const struct df_host_config *hc, struct live_ids *ret)
{
	return list_ids(hc->bpffs_root, NULL, 1, ret);
}

int live_ids_has(const struct live_ids *l, const char *id)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->ids[i], id))
			return 1;
	return 0;
}

static int map_get_ro(const struct df_host_config *hc, const char *id, const char *name, char *path,
		      size_t len)
{
	LIBBPF_OPTS(bpf_obj_get_opts, opts, .file_flags = BPF_F_RDONLY);
	int fd;

	if ((size_t)snprintf(path, len, "%s/%s/%s", hc->bpffs_root, id, name) >= len)
		return -ENAMETOOLONG;
	fd = bpf_obj_get_opts(path, &opts);
	return fd < 0 ? -errno : fd;
}

int live_read_counters(const struct df_host_config *hc, const char *id, struct df_counters *ret,
		       long long *ret_records, struct df_error *e)
{
	_cleanup_close_ int cfd = -1, rfd = -1;
	struct df_rec_key key, next;
	struct df_counters c;
	char path[PATH_MAX];
	long long n = 0;
	int r;

	cfd = map_get_ro(hc, id, "counters", path, sizeof(path));
	if (cfd < 0)
		return df_fail(e, cfd, "open pinned %s: %s", path, strerror(-cfd));
	r = fence_read_counters(cfd, &c);
	if (r < 0)
		return df_fail(e, r, "read %s: %s", path, strerror(-r));
	rfd = map_get_ro(hc, id, "records", path, sizeof(path));
	if (rfd >= 0) {
		/* bounded: a hash map yields at most max_entries keys */
		for (r = bpf_map_get_next_key(rfd, NULL, &next); r == 0 && n < (1 << 20);
		     r = bpf_map_get_next_key(rfd, &key, &next)) {
			key = next;
			n++;
		}
	}
	*ret = c;
	*ret_records = rfd >= 0 ? n : -1;
	return 0;
}

int live_read_config(const struct df_host_config *hc, const char *id, struct df_config *ret,
		     struct df_error *e)
{
	_cleanup_close_ int fd = -1;
	char path[PATH_MAX];
	__u32 zero = 0;

	fd = map_get_ro(hc, id, "config", path, sizeof(path));
	if (fd < 0)
		return df_fail(e, fd, "open pinned %s: %s", path, strerror(-fd));
	if (bpf_map_lookup_elem(fd, &zero, ret) < 0)
		return df_fail(e, -errno, "read %s: %s", path, strerror(errno));
	return 0;
}

/* What a pinned object is: "bpf-link", "bpf-map", "bpf-prog". */
static int fd_kind(int fd, char *buf, size_t len)
{
	char proc[64], link[64];
	ssize_t n;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, link, sizeof(link) - 1);
	if (n < 0)
		return -errno;
	link[n] = '\0';
	snprintf(buf, len, "%s", strncmp(link, "anon_inode:", 11) ? link : link + 11);
	return 0;
}

int live_pins_are_fence(const struct df_host_config *hc, const char *id)
{
	_cleanup_close_ int fd = -1;
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char path[PATH_MAX], kind[64];

	if (safe_id(id) < 0)
		return 0;
	fd = map_get_ro(hc, id, "config", path, sizeof(path));
	if (fd == -ENOMEM || fd == -EMFILE || fd == -ENFILE)
		return fd;
	/* missing, a directory, a program or link (EINVAL read-only), not a bpf object */
	if (fd < 0)
		return 0;
	if (fd_kind(fd, kind, sizeof(kind)) < 0 || strcmp(kind, "bpf-map"))
		return 0;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
		return -errno;
	return info.type == BPF_MAP_TYPE_ARRAY && info.key_size == sizeof(__u32) &&
	       info.value_size == sizeof(struct df_config) && info.max_entries == 1;
}

int live_links_attached(const struct df_host_config *hc, const char *id,
			unsigned long long *ret_cgid)
{
	char dir[PATH_MAX];
	struct dirent *de;
	int attached = 0;
	DIR *d;

	if ((size_t)snprintf(dir, sizeof(dir), "%s/%s", hc->bpffs_root, id) >= sizeof(dir))
		return -ENAMETOOLONG;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while (!attached && (de = readdir(d))) {
		_cleanup_close_ int fd = -1;
		struct bpf_link_info info = {};
		__u32 len = sizeof(info);
		char path[PATH_MAX], kind[64];

		/* the pool's links to its hold cgroup (pool.h) hold nothing of the fence's */
		if (de->d_name[0] == '.' || !strncmp(de->d_name, POOL_PIN, strlen(POOL_PIN)))
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= sizeof(path))
			continue;
		fd = bpf_obj_get(path);
		if (fd < 0 || fd_kind(fd, kind, sizeof(kind)) < 0 || strcmp(kind, "bpf-link"))
			continue;
		if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
			continue;
		if (info.type == BPF_LINK_TYPE_CGROUP && info.cgroup.cgroup_id) {
			attached = 1;
			if (ret_cgid)
				*ret_cgid = info.cgroup.cgroup_id;
		}
	}
	closedir(d);
	return attached;
}

void live_format_age(unsigned long long s, char *buf, size_t len)
{
	if (s < 60)
		snprintf(buf, len, "%llus", s);
	else if (s < 3600)
		snprintf(buf, len, "%llum%02llus", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%lluh%02llum", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, len, "%llud%02lluh", s / 86400, s % 86400 / 3600);
}
