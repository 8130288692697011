// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>

#include "util.h"

int df_verbose;
static int use_syslog;

void df_log_init(const char *ident, int syslog_on)
{
	use_syslog = syslog_on;
	if (syslog_on)
		openlog(ident, LOG_PID, LOG_DAEMON);
}

static void vlog(int prio, const char *fmt, va_list ap)
{
	va_list ap2;

	va_copy(ap2, ap);
	fprintf(stderr, "depfence: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	if (use_syslog)
		vsyslog(prio, fmt, ap2);
	va_end(ap2);
}

void df_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_ERR, fmt, ap);
	va_end(ap);
}

void df_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_INFO, fmt, ap);
	va_end(ap);
}

/* syslog only (stderr with -v): what the runtime's log needs but a terminal does not */
void df_note(const char *fmt, ...)
{
	va_list ap;

	if (use_syslog) {
		va_start(ap, fmt);
		vsyslog(LOG_INFO, fmt, ap);
		va_end(ap);
	}
	if (df_verbose) {
		va_start(ap, fmt);
		fprintf(stderr, "depfence: ");
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		va_end(ap);
	}
}

void df_debug(const char *fmt, ...)
{
	va_list ap;

	if (!df_verbose)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "depfence: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

int df_fail(struct df_error *e, int err, const char *fmt, ...)
{
	va_list ap;

	if (e) {
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
		/* messages quote untrusted input and end up in logs: keep them one line */
		for (char *p = e->msg; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
	}
	return err < 0 ? err : -EINVAL;
}

int read_fd_capped(int fd, size_t cap, char **ret_buf, size_t *ret_len)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, size = 4096;

	buf = malloc(size + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (len == size) {
			char *nb;

			if (size > cap)
				return -E2BIG;
			size *= 2;
			nb = realloc(buf, size + 1);
			if (!nb)
				return -ENOMEM;
			buf = nb;
		}
		n = read(fd, buf + len, size - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		len += n;
		if (len > cap)
			return -E2BIG;
	}
	buf[len] = '\0';
	if (ret_len)
		*ret_len = len;
	*ret_buf = TAKE_PTR(buf);
	return 0;
}

int read_file_capped(int dirfd, const char *path, size_t cap, char **ret_buf, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;

	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd < 0)
		return -errno;
	return read_fd_capped(fd, cap, ret_buf, ret_len);
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= n;
	}
	return 0;
}

/*
 * Write name inside dir atomically: a temp file in the same directory, fsync,
 * rename over the target, fsync the directory. Readers see the old file or
 * the whole new one, never a part.
 */
int write_file_atomic(const char *dir, const char *name, const void *data, size_t len,
		      unsigned int mode)
{
	_cleanup_close_ int dfd = -1, fd = -1;
	char tmp[NAME_MAX + 1];
	int r;

	if (snprintf(tmp, sizeof(tmp), ".%s.tmp.%d", name, (int)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return -errno;
	r = write_all(fd, data, len);
	if (r >= 0 && fchmod(fd, mode) < 0)
		r = -errno;
	if (r >= 0 && fsync(fd) < 0)
		r = -errno;
	if (r >= 0 && close(TAKE_FD(fd)) < 0)
		r = -errno;
	if (r >= 0 && renameat(dfd, tmp, dfd, name) < 0)
		r = -errno;
	if (r < 0) {
		unlinkat(dfd, tmp, 0);
		return r;
	}
	if (fsync(dfd) < 0)
		return -errno;
	return 0;
}

const char *df_file_kind(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return "a regular file";
	case S_IFDIR:
		return "a directory";
	case S_IFCHR:
		return "a character device";
	case S_IFBLK:
		return "a block device";
	case S_IFIFO:
		return "a FIFO";
	case S_IFSOCK:
		return "a socket";
	case S_IFLNK:
		return "a symbolic link";
	default:
		return "a file of unknown type";
	}
}

int lock_file_range(const char *dir, const char *name, off_t start, off_t len)
{
	return lock_file_range_wait(dir, name, start, len, -1);
}

int lock_file_range_wait(const char *dir, const char *name, off_t start, off_t len, int wait_ms)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
	_cleanup_close_ int dfd = -1, fd = -1;
	int r;

	r = mkdir_p(dir, 0700);
	if (r < 0)
		return r;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	fd = openat(dfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	/* an open file description lock: fcntl is in the hook's seccomp allow-list, flock is not */
	if (wait_ms < 0) {
		while (fcntl(fd, F_OFD_SETLKW, &fl) < 0)
			if (errno != EINTR)
				return -errno;
		return TAKE_FD(fd);
	}
	for (int i = 0;; i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
			return TAKE_FD(fd);
		if (errno != EAGAIN && errno != EACCES && errno != EINTR)
			return -errno;
		if (i * 10 >= wait_ms)
			return -ETIMEDOUT;
		nanosleep(&ts, NULL);
	}
}

int mkdir_p(const char *path, unsigned int mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int parse_u32(const char *s, unsigned int max, unsigned int *ret)
{
	unsigned long v;
	char *end;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return errno == ERANGE || v > max ? -ERANGE : -EINVAL;
	*ret = (unsigned int)v;
	return 0;
}

/*
 * A container id becomes a file name: allow what runc, crun and podman
 * generate (letters, digits, '-', '_', '.', '+': runc's set), not starting with '.', 1..128.
 */
int safe_id(const char *id)
{
	size_t n = 0;

	if (!id || !*id || id[0] == '.')
		return -EINVAL;
	for (const char *p = id; *p; p++, n++) {
		char c = *p;

		if (n >= 128)
			return -E2BIG;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.' || c == '+'))
			return -EINVAL;
	}
	return 0;
}

unsigned long long now_realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

unsigned long long mono_to_realtime_ns(unsigned long long mono_ns)
{
	struct timespec rt, mono;
	long long off;

	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	off = ((long long)rt.tv_sec - mono.tv_sec) * 1000000000LL + (rt.tv_nsec - mono.tv_nsec);
	return (unsigned long long)((long long)mono_ns + off);
}

void format_rfc3339(unsigned long long realtime_ns, char *buf, size_t len)
{
	time_t s = (time_t)(realtime_ns / 1000000000ULL);
	unsigned int ms = (unsigned int)(realtime_ns % 1000000000ULL / 1000000ULL);
	struct tm tm;

	gmtime_r(&s, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}
