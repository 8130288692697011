// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * dfdns: ask one DNS question the way a stub resolver does, print the outcome:
 * "ok ADDR..." (A or AAAA answers, possibly none), or the errno name (EPERM),
 * or "timeout". Every wait is bounded (2 s).
 *
 *   dfdns [-t A|AAAA] [-m sendto|connect|tcp|tcp-split] [-n COUNT [-r]] SERVER PORT NAME
 *
 * sendto is musl's way (unconnected UDP), connect glibc's, tcp a
 * length-prefixed question in one write, tcp-split the prefix and the
 * question in two writes. Exit 0 on an answer, 1 on EPERM, 2 otherwise.
 *
 * -n COUNT (for `make bench`): ask the question COUNT times on one socket,
 * each with a fresh id, waiting for each answer, and print only
 * "queries/s N" at the end (or the first failure, as above). With -r too:
 * do that once for each line read on stdin (flushing each result), on the
 * same socket, until end of input.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int fail(int err)
{
	printf("%s\n", err == ETIMEDOUT ? "timeout" : strerrorname_np(err));
	return err == EPERM ? 1 : 2;
}

static int wait_in(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 2000) == 1 ? 0 : -1;
}

static int print_answers(const unsigned char *m, size_t n, unsigned short id)
{
	size_t off = 12;
	unsigned an;

	if (n < 12 || ((m[0] << 8) | m[1]) != id)
		return fail(EBADMSG);
	an = (m[6] << 8) | m[7];
	while (off < n && m[off]) /* question name: no compression there */
		off += m[off] + 1;
	off += 5;
	printf("ok");
	for (unsigned i = 0; i < an && off < n; i++) {
		unsigned type, rdlen;
		char buf[INET6_ADDRSTRLEN];

		if ((m[off] & 0xc0) == 0xc0)
			off += 2;
		else {
			while (off < n && m[off])
				off += m[off] + 1;
			off++;
		}
		if (off + 10 > n)
			break;
		type = (m[off] << 8) | m[off + 1];
		rdlen = (m[off + 8] << 8) | m[off + 9];
		off += 10;
		if (off + rdlen > n)
			break;
		if (type == 1 && rdlen == 4)
			printf(" %s", inet_ntop(AF_INET, m + off, buf, sizeof(buf)));
		else if (type == 28 && rdlen == 16)
			printf(" %s", inet_ntop(AF_INET6, m + off, buf, sizeof(buf)));
		off += rdlen;
	}
	printf("\n");
	return 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* read exactly n bytes from a stream socket, each wait bounded */
static int read_full(int fd, unsigned char *b, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t m;

		if (wait_in(fd) < 0)
			return -ETIMEDOUT;
		m = recv(fd, b + got, n - got, 0);
		if (m < 0)
			return -errno;
		if (m == 0)
			return -ECONNRESET;
		got += (size_t)m;
	}
	return 0;
}

/* -n COUNT: the same question COUNT times on fd, fresh ids; prints the rate */
static int ask_many(int fd, int mode_sendto, int tcp, const struct sockaddr_storage *ss,
		    socklen_t slen, unsigned char *q, size_t qn, unsigned short *id, long count)
{
	unsigned char a[4096], buf[600];
	double t0 = now();

	for (long i = 0; i < count; i++) {
		unsigned short cur = (*id)++;
		ssize_t n;

		q[0] = cur >> 8;
		q[1] = cur & 0xff;
		if (mode_sendto) {
			if (sendto(fd, q, qn, 0, (const struct sockaddr *)ss, slen) < 0)
				return fail(errno);
		} else if (!tcp) {
			if (send(fd, q, qn, 0) < 0)
				return fail(errno);
		} else {
			buf[0] = qn >> 8;
			buf[1] = qn & 0xff;
			memcpy(buf + 2, q, qn);
			if (send(fd, buf, qn + 2, 0) < 0)
				return fail(errno);
		}
		if (tcp) {
			int r = read_full(fd, a, 2);
			size_t want;

			if (r == 0) {
				want = (size_t)a[0] << 8 | a[1];
				r = want >= 12 && want <= sizeof(a) ? read_full(fd, a, want) : -EBADMSG;
			}
			if (r < 0)
				return fail(-r);
			if (((a[0] << 8) | a[1]) != cur)
				return fail(EBADMSG);
			continue;
		}
		/* UDP: skip late answers to earlier ids */
		for (;;) {
			if (wait_in(fd) < 0)
				return fail(ETIMEDOUT);
			n = recv(fd, a, sizeof(a), 0);
			if (n < 0)
				return fail(errno);
			if (n >= 12 && ((a[0] << 8) | a[1]) == cur)
				break;
		}
	}
	printf("queries/s %.0f\n", (double)count / (now() - t0));
	fflush(stdout);
	return 0;
}

/* -n COUNT [-r]: one socket for all the questions, of one round or of many */
static int run_many(const char *mode, const struct sockaddr_storage *ss, socklen_t slen,
		    unsigned char *q, size_t qn, unsigned short id, long count, int rounds)
{
	int tcp = !strncmp(mode, "tcp", 3), mode_sendto = !tcp && !strcmp(mode, "sendto");
	char line[64];
	int fd, r;

	fd = socket(ss->ss_family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(errno);
	if (!mode_sendto) {
		struct timeval tv = { 2, 0 };
		int one = 1;

		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, (const struct sockaddr *)ss, slen) < 0)
			return fail(errno);
		if (tcp)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	if (!rounds)
		return ask_many(fd, mode_sendto, tcp, ss, slen, q, qn, &id, count);
	while (fgets(line, sizeof(line), stdin))
		if ((r = ask_many(fd, mode_sendto, tcp, ss, slen, q, qn, &id, count)))
			return r;
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = "sendto", *name;
	struct sockaddr_storage ss = {};
	socklen_t slen;
	unsigned char q[512], a[4096];
	unsigned short id, qtype = 1;
	size_t qn = 12;
	int opt, fd, tcp;
	long count = 0;
	int rounds = 0;
	ssize_t n;

	while ((opt = getopt(argc, argv, "t:m:n:r")) != -1) {
		if (opt == 't')
			qtype = !strcmp(optarg, "AAAA") ? 28 : 1;
		else if (opt == 'm')
			mode = optarg;
		else if (opt == 'n')
			count = atol(optarg);
		else if (opt == 'r')
			rounds = 1;
		else
			return 2;
	}
	if (argc - optind != 3 || count < 0) {
		fprintf(stderr, "usage: dfdns [-t A|AAAA] [-m sendto|connect|tcp|tcp-split] [-n COUNT [-r]] SERVER PORT NAME\n");
		return 2;
	}
	name = argv[optind + 2];
	if (inet_pton(AF_INET, argv[optind], &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		ss.ss_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons(atoi(argv[optind + 1]));
		slen = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, argv[optind], &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		ss.ss_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(atoi(argv[optind + 1]));
		slen = sizeof(struct sockaddr_in6);
	} else {
		return 2;
	}

	id = (unsigned short)(getpid() * 7919u);
	memset(q, 0, 12);
	q[0] = id >> 8;
	q[1] = id & 0xff;
	q[2] = 0x01; /* RD */
	q[5] = 1; /* one question */
	for (const char *s = name; *s;) {
		size_t l = strcspn(s, ".");

		if (l == 0 || l > 63 || qn + l + 2 > 300)
			return 2;
		q[qn++] = (unsigned char)l;
		memcpy(q + qn, s, l);
		qn += l;
		s += l;
		if (*s == '.')
			s++;
	}
	q[qn++] = 0;
	q[qn++] = 0;
	q[qn++] = (unsigned char)qtype;
	q[qn++] = 0;
	q[qn++] = 1;

	if (count > 0)
		return run_many(mode, &ss, slen, q, qn, id, count, rounds);
	tcp = !strncmp(mode, "tcp", 3);
	fd = socket(ss.ss_family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(errno);
	if (!tcp && !strcmp(mode, "sendto")) {
		if (sendto(fd, q, qn, 0, (struct sockaddr *)&ss, slen) < 0)
			return fail(errno);
	} else {
		struct timeval tv = { 2, 0 };

		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, (struct sockaddr *)&ss, slen) < 0)
			return fail(errno);
		if (!tcp) {
			if (send(fd, q, qn, 0) < 0)
				return fail(errno);
		} else {
			unsigned char pre[2] = { qn >> 8, qn & 0xff };
			int one = 1;

			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			if (!strcmp(mode, "tcp-split")) {
				if (send(fd, pre, 2, 0) < 0)
					return fail(errno);
				usleep(20000);
				if (send(fd, q, qn, 0) < 0)
					return fail(errno);
			} else {
				unsigned char buf[600];

				memcpy(buf, pre, 2);
				memcpy(buf + 2, q, qn);
				if (send(fd, buf, qn + 2, 0) < 0)
					return fail(errno);
			}
		}
	}
	if (wait_in(fd) < 0)
		return fail(ETIMEDOUT);
	n = recv(fd, a, sizeof(a), 0);
	if (n < 0)
		return fail(errno);
	if (tcp) {
		size_t want;

		/* the length prefix, then the message (maybe in more reads) */
		while (n < 2 && wait_in(fd) == 0) {
			ssize_t m = recv(fd, a + n, sizeof(a) - n, 0);
			if (m <= 0)
				break;
			n += m;
		}
		if (n < 2)
			return fail(EBADMSG);
		want = ((size_t)a[0] << 8 | a[1]) + 2;
		while ((size_t)n < want && want <= sizeof(a) && wait_in(fd) == 0) {
			ssize_t m = recv(fd, a + n, sizeof(a) - n, 0);
			if (m <= 0)
				break;
			n += m;
		}
		return print_answers(a + 2, (size_t)n - 2, id);
	}
	return print_answers(a, (size_t)n, id);
}
