/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Cleanup attributes, ownership moves and small helpers used everywhere. */
#ifndef DEPFENCE_UTIL_H
#define DEPFENCE_UTIL_H

#include <sys/types.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline void freep(void *p)
{
	free(*(void **)p);
}

static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;

		close(*fd);
		errno = saved;
	}
}

static inline void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Move ownership out of a cleanup variable. */
#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		__typeof__(p) _p = (p);                                                            \
		(p) = NULL;                                                                        \
		_p;                                                                                \
	})
#define TAKE_FD(fd)                                                                                \
	({                                                                                         \
		int _fd = (fd);                                                                    \
		(fd) = -1;                                                                         \
		_fd;                                                                               \
	})

/* Logging: only entry points log. */
extern int df_verbose;
void df_log_init(const char *ident, int use_syslog);
void df_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void df_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void df_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void df_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Error strings that travel with an -errno: a message buffer filled by parsers. */
#define DF_ERRBUF 512
struct df_error {
	char msg[DF_ERRBUF];
};
int df_fail(struct df_error *e, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Files */
int read_fd_capped(int fd, size_t cap, char **ret_buf, size_t *ret_len);
int read_file_capped(int dirfd, const char *path, size_t cap, char **ret_buf, size_t *ret_len);
int write_file_atomic(const char *dir, const char *name, const void *data, size_t len,
		      unsigned int mode);
int mkdir_p(const char *path, unsigned int mode);
/* "a directory", "a character device", ... for a stat mode */
const char *df_file_kind(mode_t mode);
/*
 * Wait for and take a write lock on bytes start..start+len of dir/name
 * (created; len 0: to the end), an OFD lock: it goes with the returned fd.
 */
int lock_file_range(const char *dir, const char *name, off_t start, off_t len);
/* the same, waiting wait_ms at most (-ETIMEDOUT), or for ever when wait_ms < 0 */
int lock_file_range_wait(const char *dir, const char *name, off_t start, off_t len, int wait_ms);

/* Parsing */
int parse_u32(const char *s, unsigned int max, unsigned int *ret);
int safe_id(const char *id);
void format_rfc3339(unsigned long long realtime_ns, char *buf, size_t len);
unsigned long long mono_to_realtime_ns(unsigned long long mono_ns);
unsigned long long now_realtime_ns(void);

#endif
