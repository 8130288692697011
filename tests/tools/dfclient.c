// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * dfclient: one real network call, the way an application makes it, and the
 * outcome on stdout: "ok" or the errno name (EPERM, ECONNREFUSED, ...).
 *
 *   dfclient tcp|udp-connect|udp-sendto|udp-sendmsg ADDR PORT
 *
 * Exit 0 on ok, 1 on EPERM, 2 on any other failure. Every wait is bounded.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int outcome(int err)
{
	if (!err) {
		printf("ok\n");
		return 0;
	}
	printf("%s\n", strerrorname_np(err) ? strerrorname_np(err) : "EUNKNOWN");
	return err == EPERM ? 1 : 2;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss = {};
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	socklen_t slen;
	const char *mode;
	int fd, family, port;
	char msg[] = "depfence-test";

	if (argc != 4) {
		fprintf(stderr, "usage: dfclient tcp|udp-connect|udp-sendto|udp-sendmsg ADDR PORT\n");
		return 2;
	}
	mode = argv[1];
	port = atoi(argv[3]);
	if (inet_pton(AF_INET, argv[2], &s4->sin_addr) == 1) {
		family = AF_INET;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		slen = sizeof(*s4);
	} else if (inet_pton(AF_INET6, argv[2], &s6->sin6_addr) == 1) {
		family = AF_INET6;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		slen = sizeof(*s6);
	} else {
		fprintf(stderr, "dfclient: bad address %s\n", argv[2]);
		return 2;
	}

	if (!strcmp(mode, "tcp")) {
		struct pollfd p;
		int err = 0;
		socklen_t el = sizeof(err);

		fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			return outcome(errno);
		if (connect(fd, (struct sockaddr *)&ss, slen) == 0)
			return outcome(0);
		if (errno != EINPROGRESS)
			return outcome(errno);
		p.fd = fd;
		p.events = POLLOUT;
		if (poll(&p, 1, 3000) != 1)
			return outcome(ETIMEDOUT);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
		return outcome(err);
	}
	fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return outcome(errno);
	if (!strcmp(mode, "udp-connect")) {
		if (connect(fd, (struct sockaddr *)&ss, slen) < 0)
			return outcome(errno);
		if (send(fd, msg, sizeof(msg), 0) < 0)
			return outcome(errno);
		return outcome(0);
	}
	if (!strcmp(mode, "udp-sendto")) {
		if (sendto(fd, msg, sizeof(msg), 0, (struct sockaddr *)&ss, slen) < 0)
			return outcome(errno);
		return outcome(0);
	}
	if (!strcmp(mode, "udp-sendmsg")) {
		struct iovec iov = { msg, sizeof(msg) };
		struct msghdr mh = { .msg_name = &ss, .msg_namelen = slen, .msg_iov = &iov,
				     .msg_iovlen = 1 };

		if (sendmsg(fd, &mh, 0) < 0)
			return outcome(errno);
		return outcome(0);
	}
	fprintf(stderr, "dfclient: unknown mode %s\n", mode);
	return 2;
}
