// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <signal.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

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

/*
 * The first cap processes of the cgroup at dfd, as cgroup.procs lists them;
 * *ret_n counts them all.
 */
static int read_pids(int dfd, int *pids, int cap, int *ret_n)
{
	_cleanup_free_ char *buf = NULL;
	char *save = NULL;
	int r, n = 0;

	r = read_file_capped(dfd, "cgroup.procs", 1 << 20, &buf, NULL);
	if (r < 0)
		return r;
	for (char *t = strtok_r(buf, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
		unsigned int v;

		if (parse_u32(t, 0x7fffffff, &v) < 0)
			return -EINVAL;
		if (n < cap)
			pids[n] = (int)v;
		n++;
	}
	*ret_n = n;
	return 0;
}

int cg2_only_pid(const char *dir, int pid, int *ret_other)
{
	_cleanup_close_ int dfd = -1;
	int pids[2], n, r;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	r = read_pids(dfd, pids, 2, &n);
	if (r < 0)
		return r;
	/* listed once each: of two, one is not pid */
	for (int i = 0; i < n && i < 2; i++)
		if (pids[i] != pid) {
			*ret_other = pids[i];
			return 0;
		}
	return 1;
}

static int cg_key(int dfd, const char *file, const char *key);

int cg2_populated(const char *dir)
{
	_cleanup_close_ int dfd = -1;
	int v;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	v = cg_key(dfd, "cgroup.events", "populated");
	return v < 0 ? -EIO : v > 0;
}

/* at most this many processes, threads a process, fd entries in all; more and the answer is "might" */
#define SCAN_PIDS 64
#define SCAN_TASKS 256
#define SCAN_FDS 16384

/* "KEY N" of a cgroup's flat-keyed file (cgroup.stat, cgroup.events); -1 when unread */
static int cg_key(int dfd, const char *file, const char *key)
{
	_cleanup_free_ char *buf = NULL;
	char num[16];
	const char *p;
	unsigned int v;
	size_t k = strlen(key), l;

	if (read_file_capped(dfd, file, 1 << 16, &buf, NULL) < 0)
		return -1;
	for (p = buf; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, key, k) && p[k] == ' ')
			break;
	if (!p)
		return -1;
	p += k + 1;
	l = strcspn(p, "\n");
	if (l == 0 || l >= sizeof(num))
		return -1;
	memcpy(num, p, l);
	num[l] = '\0';
	return parse_u32(num, 0x7fffffff, &v) < 0 ? -1 : (int)v;
}

/* a cgroup tree depfence run ends and removes: at most this deep, this many cgroups */
#define TREE_DEPTH 32
#define TREE_CGROUPS 4096

/*
 * fn(parent, name, fd) for each cgroup below dfd, children before their
 * parent; -E2BIG past TREE_DEPTH levels or *budget cgroups, else the first
 * error of fn or of reading a directory (the walk goes on past it).
 */
static int cg_walk(int dfd, int depth, int *budget, int (*fn)(int parent, const char *name, int fd))
{
	struct dirent *de;
	DIR *d;
	int fd, r = 0, q;

	fd = dup(dfd);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		r = -errno;
		close(fd);
		return r;
	}
	for (;;) {
		int cfd;

		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno && !r)
				r = -errno;
			break;
		}
		if (de->d_type != DT_DIR || !strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (depth >= TREE_DEPTH || --*budget < 0) {
			r = -E2BIG;
			break;
		}
		cfd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (cfd < 0) {
			if (errno != ENOENT && !r)
				r = -errno;
			continue;
		}
		q = cg_walk(cfd, depth + 1, budget, fn);
		if (q >= 0)
			q = fn(dfd, de->d_name, cfd);
		close(cfd);
		if (q == -E2BIG) {
			r = q;
			break;
		}
		if (q < 0 && !r)
			r = q;
	}
	closedir(d);
	return r;
}

/* SIGKILL to every process cgroup.procs lists */
static int kill_procs(int dfd)
{
	_cleanup_free_ char *buf = NULL;
	char *save = NULL;
	int r;

	r = read_file_capped(dfd, "cgroup.procs", 1 << 20, &buf, NULL);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	for (char *t = strtok_r(buf, "\n", &save); t; t = strtok_r(NULL, "\n", &save)) {
		unsigned int v;

		if (parse_u32(t, 0x7fffffff, &v) == 0 && v > 1)
			kill((pid_t)v, SIGKILL);
	}
	return 0;
}

static int kill_child(int parent, const char *name, int fd)
{
	(void)parent;
	(void)name;
	return kill_procs(fd);
}

int cg2_kill_all(const char *dir)
{
	_cleanup_close_ int dfd = -1;
	int r = 0;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	for (int round = 0; round < 200; round++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		_cleanup_close_ int kfd = -1;
		int populated, budget = TREE_CGROUPS;

		/* populated counts the processes of every descendant too */
		populated = cg_key(dfd, "cgroup.events", "populated");
		if (populated == 0)
			return 0;
		if (populated < 0)
			return -EIO;
		/* recursive, and a process cannot fork away from it (5.14+) */
		kfd = openat(dfd, "cgroup.kill", O_WRONLY | O_CLOEXEC);
		if (kfd >= 0 && write(kfd, "1", 1) == 1) {
			r = 0;
		} else {
			/* older kernels: the cgroup and each below it, by pid */
			r = kill_procs(dfd);
			if (r >= 0)
				r = cg_walk(dfd, 0, &budget, kill_child);
		}
		nanosleep(&ts, NULL);
	}
	return r < 0 ? r : -EBUSY;
}

static int remove_child(int parent, const char *name, int fd)
{
	(void)fd;
	if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int cg2_remove_tree(const char *dir)
{
	int r = 0;

	/* rmdir fails with EBUSY for a moment after the last process exits */
	for (int i = 0; i < 500; i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		_cleanup_close_ int dfd = -1;
		int budget = TREE_CGROUPS;

		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return errno == ENOENT ? 0 : -errno;
		r = cg_walk(dfd, 0, &budget, remove_child);
		if (r == -E2BIG)
			return r;
		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		r = -errno;
		if (r != -EBUSY && r != -ENOTEMPTY)
			return r;
		nanosleep(&ts, NULL);
	}
	return r;
}

/*
 * Kinds of socket that are no IPv4 or IPv6 stream, by the protocol name
 * sockfs gives (the "system.sockprotoname" attribute of a socket's inode).
 * Any other name, TCP, TCPv6, MPTCP and SCTP among them, might be one.
 */
static const char *const not_stream[] = {
	"UNIX-STREAM", "UNIX-DGRAM", "UNIX", "NETLINK", "UDP",	  "UDPv6",
	"UDP-Lite",    "UDPLITEv6",  "RAW",  "RAWv6",   "PING", "PINGv6", "PACKET",
};

/* 1 when the fd at path (in /proc/PID/task/TID/fd) might be such a socket or hold one */
static int fd_may_hold(const char *path, int *unused)
{
	char link[64], proto[32];
	ssize_t l;

	(void)unused;
	l = readlink(path, link, sizeof(link) - 1);
	if (l < 0)
		return 1; /* closed while we looked */
	link[l] = '\0';
	/* an io_uring's registered files are in no fd table */
	if (!strcmp(link, "anon_inode:[io_uring]"))
		return 1;
	if (strncmp(link, "socket:[", 8))
		return 0;
	/* follows the link to the socket's inode */
	l = getxattr(path, "system.sockprotoname", proto, sizeof(proto) - 1);
	if (l <= 0)
		return 1;
	proto[l] = '\0';
	for (size_t i = 0; i < sizeof(not_stream) / sizeof(not_stream[0]); i++)
		if (!strcmp(proto, not_stream[i]))
			return 0;
	return 1;
}

/*
 * 1 when a directory entry of dir might hold such a socket (each(): 1 for
 * an entry that might; fds goes on to it), when dir cannot be read to its
 * end, or past *budget entries in all.
 */
static int dir_may_hold(const char *dir, int (*each)(const char *path, int *fds), int *budget,
			int *fds)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int r = 0;

	if (!d)
		return 1;
	for (;;) {
		char path[128];

		errno = 0;
		de = readdir(d);
		if (!de) {
			r = errno != 0; /* an error is no end of the directory */
			break;
		}
		if (de->d_name[0] == '.')
			continue;
		if (--*budget < 0 || snprintf(path, sizeof(path), "%s/%.16s", dir, de->d_name) >=
					     (int)sizeof(path) || each(path, fds)) {
			r = 1;
			break;
		}
	}
	closedir(d);
	return r;
}

/* a thread: its fd table (one may have unshared it); *fds: what is left of the fd budget */
static int task_may_hold(const char *task, int *fds)
{
	char fddir[128];

	snprintf(fddir, sizeof(fddir), "%s/fd", task);
	return dir_may_hold(fddir, fd_may_hold, fds, NULL);
}

/* 1 when one of pid's threads might hold such a socket */
static int pid_may_hold(int pid, int *fds)
{
	char path[64];
	int tasks = SCAN_TASKS;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	return dir_may_hold(path, task_may_hold, &tasks, fds);
}

/* Freeze the cgroup (1), find it frozen already (0), or fail (-1), in 100 ms at most. */
static int freeze(int dfd)
{
	_cleanup_close_ int fd = -1;

	if (cg_key(dfd, "cgroup.events", "frozen") == 1)
		return 0;
	fd = openat(dfd, "cgroup.freeze", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "1", 1) != 1)
		return -1;
	for (int i = 0; i < 1000; i++) {
		struct timespec ts = { 0, 100 * 1000 };

		if (cg_key(dfd, "cgroup.events", "frozen") == 1)
			return 1;
		nanosleep(&ts, NULL);
	}
	(void)!write(fd, "0", 1);
	return -1;
}

static void thaw(int dfd)
{
	_cleanup_close_ int fd = openat(dfd, "cgroup.freeze", O_WRONLY | O_CLOEXEC);

	if (fd >= 0)
		(void)!write(fd, "0", 1);
}

int cg2_may_hold_inet_stream(const char *dir)
{
	_cleanup_close_ int dfd = -1;
	int before[SCAN_PIDS], after[SCAN_PIDS], nb = 0, na = 0, frozen, r = 1, fds = SCAN_FDS;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || cg_key(dfd, "cgroup.stat", "nr_descendants") != 0)
		return 1;
	/* frozen, its processes cannot move a socket from one fd to another while we look */
	frozen = freeze(dfd);
	if (frozen < 0)
		return 1;
	if (read_pids(dfd, before, SCAN_PIDS, &nb) < 0 || nb > SCAN_PIDS)
		goto out;
	for (int i = 0; i < nb; i++)
		if (pid_may_hold(before[i], &fds))
			goto out;
	/* a process that entered meanwhile was not looked at */
	if (cg_key(dfd, "cgroup.stat", "nr_descendants") != 0 ||
	    read_pids(dfd, after, SCAN_PIDS, &na) < 0 || na != nb ||
	    memcmp(before, after, (size_t)nb * sizeof(*before)))
		goto out;
	r = 0;
out:
	if (frozen == 1)
		thaw(dfd);
	return r;
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
