// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * dfconnloop: the connect-cost loop of `make bench`.
 *
 *   dfconnloop [-r] [-k] [-t SECONDS] [-w SECONDS] [-c CGROUPDIR] ADDR PORT
 *   dfconnloop -s [-t SECONDS] ADDR PORT
 *
 * Client (default): TCP connect + close to ADDR:PORT in a loop for SECONDS
 * (default 2) after a warm-up of -w SECONDS (default 0.2, not counted), then
 * prints "connects/s N". Sockets close with SO_LINGER 0 (a reset), so no
 * TIME_WAIT piles up and the port search costs the same in every round.
 * -c moves the process into CGROUPDIR (its cgroup.procs) first.
 * -k keeps one TCP socket (never connected) open from the start: a container
 * whose init holds one when the hook runs gets a fence that marks sockets.
 * -r: rounds on demand: one round (warm-up included) for each line read on
 * stdin, its result printed and flushed; ends at end of input. The bench
 * keeps one such process per condition, so rounds of different conditions
 * can alternate without setting anything up between them.
 * Exit 0 when every connect succeeded, 1 otherwise (the errno is printed).
 *
 * Server (-s): listens on ADDR:PORT, accepts and closes, ends by itself
 * after SECONDS (default 600) so a failed bench never leaves it behind.
 * Prints "ready" once listening.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_addr(const char *a, const char *p, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, a, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((unsigned short)atoi(p));
		*len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, a, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((unsigned short)atoi(p));
		*len = sizeof(*s6);
		return 0;
	}
	return -1;
}

static int serve(const struct sockaddr_storage *ss, socklen_t len, int secs)
{
	int one = 1, fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return perror("socket"), 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)ss, len) < 0)
		return perror("bind"), 1;
	if (listen(fd, 4096) < 0)
		return perror("listen"), 1;
	alarm((unsigned)secs);
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

		if (c >= 0)
			close(c);
		else if (errno != EINTR && errno != ECONNABORTED && errno != EMFILE &&
			 errno != ENFILE)
			return perror("accept"), 1;
	}
}

/* one connect + close; 0 or an errno */
static int once(const struct sockaddr_storage *ss, socklen_t len)
{
	struct linger lg = { 1, 0 };
	int err = 0, fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return errno;
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	if (connect(fd, (const struct sockaddr *)ss, len) < 0)
		err = errno;
	close(fd);
	return err;
}

/* one round: warm-up, then the timed loop; prints the rate */
static int round_once(const struct sockaddr_storage *ss, socklen_t len, double secs, double warm)
{
	double t0, t1, end;
	unsigned long n = 0;
	int err;

	end = now() + warm;
	while (now() < end)
		if ((err = once(ss, len))) {
			printf("error %s\n", strerrorname_np(err));
			return 1;
		}
	t0 = now();
	end = t0 + secs;
	for (;;) {
		for (int i = 0; i < 64; i++, n++)
			if ((err = once(ss, len))) {
				printf("error %s\n", strerrorname_np(err));
				return 1;
			}
		if ((t1 = now()) >= end)
			break;
	}
	printf("connects/s %.0f\n", (double)n / (t1 - t0));
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cgroup = NULL;
	double secs = -1, warm = 0.2;
	struct sockaddr_storage ss;
	socklen_t len;
	int opt, server = 0, rounds = 0, keep = -1;

	while ((opt = getopt(argc, argv, "rkst:w:c:")) != -1) {
		switch (opt) {
		case 's':
			server = 1;
			break;
		case 'r':
			rounds = 1;
			break;
		case 'k':
			keep = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (keep < 0) {
				perror("dfconnloop: socket");
				return 2;
			}
			break;
		case 't':
			secs = atof(optarg);
			break;
		case 'w':
			warm = atof(optarg);
			break;
		case 'c':
			cgroup = optarg;
			break;
		default:
			return 2;
		}
	}
	if (argc - optind != 2 || parse_addr(argv[optind], argv[optind + 1], &ss, &len) < 0) {
		fprintf(stderr, "usage: dfconnloop [-r] [-k] [-t SECONDS] [-w SECONDS] [-c CGROUPDIR] ADDR PORT\n"
				"       dfconnloop -s [-t SECONDS] ADDR PORT\n");
		return 2;
	}
	if (server)
		return serve(&ss, len, secs > 0 ? (int)secs : 600);
	if (secs <= 0)
		secs = 2;
	if (cgroup) {
		char path[4096];
		int fd;

		snprintf(path, sizeof(path), "%s/cgroup.procs", cgroup);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) != 1) {
			fprintf(stderr, "dfconnloop: join %s: %s\n", path, strerror(errno));
			return 2;
		}
		close(fd);
	}
	if (rounds) {
		char line[64];

		while (fgets(line, sizeof(line), stdin))
			if (round_once(&ss, len, secs, warm))
				return 1;
		return keep >= 0 ? close(keep) : 0;
	}
	return round_once(&ss, len, secs, warm);
}
