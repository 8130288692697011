// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <signal.h>
#include <time.h>

#include "cgroup.h"
#include "util.h"

/* mountinfo escapes space, tab, newline and backslash as \ooo */
static void unescape_octal(char *s)
{
	char *w = s;

	for (char *r = s; *r; r++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 3;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
}

/* mnt is dir itself or one of its ancestors */
static bool covers(const char *mnt, const char *dir)
{
	size_t n = strlen(mnt);

	if (!strcmp(mnt, "/"))
		return true;
	return !strncmp(mnt, dir, n) && (dir[n] == '/' || dir[n] == '\0');
}

/*
 * The cgroup2 hierarchy's root mount that this mount namespace can see:
 * mountinfo lists mounts in the order they were made, so a cgroup2 mount is
 * hidden by any later mount on its mount point or above it (a cgroup2 mounted
 * over /sys/fs/cgroup on a hybrid host hides /sys/fs/cgroup/unified). The
 * last visible one wins.
 */
int cg2_mount_from(FILE *f, char *ret, size_t len)
{
	char line[4096], found[PATH_MAX] = "";

	while (fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - "), *save = NULL, *tok, *mnt = NULL, *root = NULL;
		bool cg2;
		int field = 0;

		if (!sep)
			continue;
		cg2 = !strncmp(sep + 3, "cgroup2 ", 8);
		*sep = '\0';
		for (tok = strtok_r(line, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
			field++;
			if (field == 4)
				root = tok;
			else if (field == 5)
				mnt = tok;
		}
		if (!mnt || !root)
			continue;
		unescape_octal(mnt);
		if (found[0] && covers(mnt, found))
			found[0] = '\0';
		/* a bind mount of a sub-tree is not the hierarchy root */
		if (!cg2 || strcmp(root, "/"))
			continue;
		if (strlen(mnt) >= sizeof(found) || strlen(mnt) >= len)
			return -ENAMETOOLONG;
		snprintf(found, sizeof(found), "%s", mnt);
	}
	if (!found[0])
		return -ENOENT;
	snprintf(ret, len, "%s", found);
	return 0;
}

int cg2_mount(char *ret, size_t len)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return -errno;
	return cg2_mount_from(f, ret, len);
}

int cg2_path_from(FILE *f, char *ret, size_t len)
{
	char line[PATH_MAX + 64];

	while (fgets(line, sizeof(line), f)) {
		size_t n;

		if (strncmp(line, "0::", 3))
			continue;
		n = strcspn(line + 3, "\n");
		line[3 + n] = '\0';
		if (line[3] != '/')
			return -EINVAL;
		if (n >= len)
			return -ENAMETOOLONG;
		/* "(deleted)" suffix: the cgroup is gone */
		if (n > 10 && !strcmp(line + 3 + n - 10, " (deleted)"))
			return -ESTALE;
		snprintf(ret, len, "%s", line + 3);
		return 0;
	}
	return -ENOENT;
}

int cg2_path_of(int pid, char *ret, size_t len)
{
	char p[64];
	_cleanup_fclose_ FILE *f = NULL;

	if (pid > 0)
		snprintf(p, sizeof(p), "/proc/%d/cgroup", pid);
	else
		snprintf(p, sizeof(p), "/proc/self/cgroup");
	f = fopen(p, "re");
	if (!f)
		return -errno;
	return cg2_path_from(f, ret, len);
}

int cg2_dir_of(int pid, char *ret, size_t len)
{
	char mnt[PATH_MAX], rel[PATH_MAX];
	int r;

	r = cg2_mount(mnt, sizeof(mnt));
	if (r < 0)
		return r;
	r = cg2_path_of(pid, rel, sizeof(rel));
	if (r < 0)
		return r;
	if (!strcmp(rel, "/"))
		return -EPERM; /* the root cgroup: would fence the whole host */
	if (strstr(rel, "/../") || strlen(mnt) + strlen(rel) >= len)
		return -EINVAL;
	snprintf(ret, len, "%s%s", !strcmp(mnt, "/") ? "" : mnt, rel);
	return 0;
}

int cg2_only_pid(const char *dir, int pid, int *ret_other)
{
	_cleanup_close_ int dfd = -1;
	_cleanup_free_ char *buf = NULL;
	char *save = NULL;
	int r;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	r = read_file_capped(dfd, "cgroup.procs", 1 << 20, &buf, NULL);
	if (r < 0)
		return r;
	for (char *t = strtok_r(buf, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
		unsigned int v;

		if (parse_u32(t, 0x7fffffff, &v) < 0)
			return -EINVAL;
		if ((int)v != pid) {
			*ret_other = (int)v;
			return 0;
		}
	}
	return 1;
}

int cg2_populated(const char *dir)
{
	_cleanup_close_ int dfd = -1;
	_cleanup_free_ char *buf = NULL;
	int r;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	r = read_file_capped(dfd, "cgroup.procs", 1 << 20, &buf, NULL);
	if (r < 0)
		return r;
	return buf[0] != '\0';
}

/* Kill every process left in the cgroup (the job's daemons); bounded in rounds and time. */
int cg2_kill_all(const char *dir)
{
	_cleanup_close_ int dfd = -1;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	for (int round = 0; round < 200; round++) {
		_cleanup_free_ char *buf = NULL;
		char *save = NULL;
		int any = 0, kfd;
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		if (read_file_capped(dfd, "cgroup.procs", 1 << 20, &buf, NULL) < 0)
			return -errno;
		if (!buf[0])
			return 0;
		kfd = openat(dfd, "cgroup.kill", O_WRONLY | O_CLOEXEC);
		if (kfd >= 0) {
			if (write(kfd, "1", 1) == 1)
				any = 1;
			close(kfd);
		}
		if (!any)
			for (char *t = strtok_r(buf, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
				unsigned int v;

				if (parse_u32(t, 0x7fffffff, &v) == 0 && v > 1)
					kill((pid_t)v, SIGKILL);
			}
		nanosleep(&ts, NULL);
	}
	return -EBUSY;
}

int cg2_nsdelegate(void)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mounts", "re");
	char line[4096];

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char fstype[64], opts[2048];

		if (sscanf(line, "%*s %*s %63s %2047s", fstype, opts) != 2)
			continue;
		if (!strcmp(fstype, "cgroup2"))
			return strstr(opts, "nsdelegate") != NULL;
	}
	return 0;
}
