// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * dfserver: TCP and UDP listeners on ADDR for each PORT, for the tests.
 * Accepts and closes TCP connections, echoes UDP datagrams. Ends by itself
 * after SECONDS (default 120) so a failed test never leaves it behind.
 *
 *   dfserver [-t SECONDS] ADDR PORT [PORT]...
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PORTS 16

int main(int argc, char **argv)
{
	struct pollfd pfd[2 * MAX_PORTS];
	int types[2 * MAX_PORTS], n = 0, secs = 120, a = 1;
	struct sockaddr_storage ss = {};
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	socklen_t slen;
	int family;

	if (argc > 2 && !strcmp(argv[1], "-t")) {
		secs = atoi(argv[2]);
		a = 3;
	}
	if (argc - a < 2 || argc - a - 1 > MAX_PORTS) {
		fprintf(stderr, "usage: dfserver [-t SECONDS] ADDR PORT [PORT]...\n");
		return 2;
	}
	if (inet_pton(AF_INET, argv[a], &s4->sin_addr) == 1) {
		family = AF_INET;
		slen = sizeof(*s4);
	} else if (inet_pton(AF_INET6, argv[a], &s6->sin6_addr) == 1) {
		family = AF_INET6;
		slen = sizeof(*s6);
	} else {
		fprintf(stderr, "dfserver: bad address %s\n", argv[a]);
		return 2;
	}
	ss.ss_family = family;
	for (int i = a + 1; i < argc; i++) {
		for (int t = 0; t < 2; t++) {
			int one = 1, fd = socket(family, t ? SOCK_DGRAM : SOCK_STREAM, 0);

			if (fd < 0)
				return perror("socket"), 1;
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (family == AF_INET6)
				setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
			if (family == AF_INET)
				s4->sin_port = htons(atoi(argv[i]));
			else
				s6->sin6_port = htons(atoi(argv[i]));
			if (bind(fd, (struct sockaddr *)&ss, slen) < 0)
				return perror("bind"), 1;
			if (!t && listen(fd, 128) < 0)
				return perror("listen"), 1;
			pfd[n].fd = fd;
			pfd[n].events = POLLIN;
			types[n++] = t;
		}
	}
	alarm(secs);
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		for (int i = 0; i < n; i++) {
			if (!(pfd[i].revents & POLLIN))
				continue;
			if (!types[i]) {
				int c = accept(pfd[i].fd, NULL, NULL);

				if (c >= 0) {
					(void)!write(c, "hello\n", 6);
					close(c);
				}
			} else {
				char buf[2048];
				struct sockaddr_storage from;
				socklen_t fl = sizeof(from);
				ssize_t r = recvfrom(pfd[i].fd, buf, sizeof(buf), 0,
						     (struct sockaddr *)&from, &fl);

				if (r > 0)
					sendto(pfd[i].fd, buf, r, 0, (struct sockaddr *)&from, fl);
			}
		}
	}
}
