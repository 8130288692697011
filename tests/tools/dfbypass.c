// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * dfbypass: ways a process in a fence may try to reach a destination, one
 * per mode, for tests/integration/test_bypass.sh. Each prints one word:
 * "ok" when the destination answered (an echo came back, a connection was
 * made), "timeout" when the packet went unanswered, or the errno name of the
 * call that was refused (EPERM, ...). Every wait is bounded.
 *
 *   dfbypass serve PORT                   TCP and UDP echo on 0.0.0.0 and ::, 300 s
 *   dfbypass tcp|udp-connect|udp-sendto|udp-sendmsg|sendmmsg|tfo|uring ADDR PORT
 *   dfbypass thread|child MODE ADDR PORT  MODE from a thread / a child process
 *   dfbypass setns NETNS-PATH MODE ADDR PORT
 *   dfbypass raw-udp|raw-tcp ADDR PORT    hand-built UDP / TCP SYN on a raw socket
 *   dfbypass raw-short ADDR               4 bytes on a raw UDP socket (no room for ports)
 *   dfbypass ping|raw-icmp ADDR           ICMP echo: ping socket / raw socket
 *   dfbypass packet SRC4 ADDR4 PORT       IPv4 UDP frame on lo through AF_PACKET
 *   dfbypass pre ADDR PORT GO-FILE        connect TCP and UDP, say "ready", wait
 *                                         until GO-FILE exists, then use both
 *   dfbypass hold KIND GO-FILE            hold one socket (udp, unix, tcp, tcp6-listen;
 *                                         io_uring: an io_uring instance;
 *                                         thread-tcp: a thread with a fd table of its
 *                                         own holds it), say "ready", wait until
 *                                         GO-FILE exists, then say "ok"
 *   dfbypass held GO-FILE serve PORT | MODE ADDR PORT | route[-priv] udp|tcp ADDR PORT HOP
 *                                         hold a TCP socket (never connected), say
 *                                         "ready", wait until GO-FILE exists, then
 *                                         serve or run MODE (a container's fence
 *                                         made meanwhile keeps marks)
 *   dfbypass give-fd UNIX-PATH            (outside) hand a fresh UDP socket to
 *                                         the first client of UNIX-PATH
 *   dfbypass take-fd UNIX-PATH ADDR PORT  send through the socket handed in
 *   dfbypass route udp|tcp ADDR PORT HOP  as nobody (when run as root), give the
 *                                         socket a source route through HOP
 *                                         (IPv6: a type 4 routing header, IPV6_RTHDR;
 *                                         IPv4: LSRR, IP_OPTIONS), then send to /
 *                                         connect to ADDR: the kernel sends to HOP
 *   dfbypass route-priv udp|tcp ADDR PORT HOP   the same with the privileges it has
 *                                         (IPv4's source route takes CAP_NET_RAW)
 *   dfbypass escape PROCS-FILE ADDR PORT  move to another cgroup, then tcp
 *   dfbypass bpf-get PATH                 bpf(BPF_OBJ_GET) on a pinned link
 *   dfbypass unlink PATH                  remove a pinned link
 *
 * Static, no dependencies: it runs in containers too.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/io_uring.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 1500
#define MSG "depfence-bypass"

static const char *errname(int err)
{
	const char *n = strerrorname_np(err);

	return n ? n : "EUNKNOWN";
}

static int say(const char *word)
{
	printf("%s\n", word);
	fflush(stdout);
	return strcmp(word, "ok") ? 1 : 0;
}

static int say_err(int err)
{
	return say(errname(err));
}

/* ADDR PORT to a sockaddr; IPv4 text gives AF_INET, anything else AF_INET6. */
static int parse_addr(const char *a, const char *p, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	int port = atoi(p);

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, a, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*len = sizeof(*s4);
		return AF_INET;
	}
	if (inet_pton(AF_INET6, a, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*len = sizeof(*s6);
		return AF_INET6;
	}
	fprintf(stderr, "dfbypass: bad address %s\n", a);
	exit(2);
}

static int wait_in(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, ms) == 1;
}

/* An echo of MSG on fd within the wait: "ok", else "timeout" or the error. */
static int expect_echo(int fd)
{
	char buf[256];
	ssize_t n;

	if (!wait_in(fd, WAIT_MS))
		return say("timeout");
	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0)
		return say_err(errno);
	return say(n > 0 ? "ok" : "timeout");
}

/* ------------------------------------------------------------ sockets */

static int do_tcp(struct sockaddr_storage *ss, socklen_t len)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = { 2, 0 };

	if (fd < 0)
		return say_err(errno);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)ss, len) < 0)
		return say_err(errno);
	if (send(fd, MSG, sizeof(MSG), MSG_NOSIGNAL) < 0)
		return say_err(errno);
	return expect_echo(fd);
}

static int do_udp(const char *mode, struct sockaddr_storage *ss, socklen_t len)
{
	int fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ssize_t r;

	if (fd < 0)
		return say_err(errno);
	if (!strcmp(mode, "udp-connect")) {
		if (connect(fd, (struct sockaddr *)ss, len) < 0)
			return say_err(errno);
		r = send(fd, MSG, sizeof(MSG), 0);
	} else if (!strcmp(mode, "udp-sendto")) {
		r = sendto(fd, MSG, sizeof(MSG), 0, (struct sockaddr *)ss, len);
	} else if (!strcmp(mode, "udp-sendmsg")) {
		struct iovec iov = { MSG, sizeof(MSG) };
		struct msghdr mh = { .msg_name = ss, .msg_namelen = len, .msg_iov = &iov,
				     .msg_iovlen = 1 };

		r = sendmsg(fd, &mh, 0);
	} else { /* sendmmsg: two datagrams in one call */
		struct iovec iov = { MSG, sizeof(MSG) };
		struct mmsghdr mm[2] = {};

		for (int i = 0; i < 2; i++) {
			mm[i].msg_hdr.msg_name = ss;
			mm[i].msg_hdr.msg_namelen = len;
			mm[i].msg_hdr.msg_iov = &iov;
			mm[i].msg_hdr.msg_iovlen = 1;
		}
		r = sendmmsg(fd, mm, 2, 0);
		if (r == 0)
			return say("EUNKNOWN");
	}
	if (r < 0)
		return say_err(errno);
	return expect_echo(fd);
}

static int do_tfo(struct sockaddr_storage *ss, socklen_t len)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return say_err(errno);
	if (sendto(fd, MSG, sizeof(MSG), MSG_FASTOPEN, (struct sockaddr *)ss, len) < 0)
		return say_err(errno);
	return expect_echo(fd);
}

/* IORING_OP_CONNECT through the raw io_uring syscalls. */
static int do_uring(struct sockaddr_storage *ss, socklen_t len)
{
	struct io_uring_params p = {};
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqe;
	unsigned *sq_tail, *sq_array, *cq_head, *cq_tail, mask;
	void *sq, *cq;
	int ring, fd, r;

	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ring = (int)syscall(__NR_io_uring_setup, 4, &p);
	if (fd < 0 || ring < 0)
		return say_err(errno);
	if (!(p.features & IORING_FEAT_SINGLE_MMAP)) {
		fprintf(stderr, "dfbypass: io_uring without IORING_FEAT_SINGLE_MMAP\n");
		return say("EUNKNOWN");
	}
	sq = mmap(NULL, p.sq_off.array + p.sq_entries * sizeof(unsigned) +
				p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe),
		  PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQ_RING);
	sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQES);
	if (sq == MAP_FAILED || sqes == MAP_FAILED)
		return say_err(errno);
	cq = sq;
	sq_tail = (unsigned *)((char *)sq + p.sq_off.tail);
	sq_array = (unsigned *)((char *)sq + p.sq_off.array);
	mask = *(unsigned *)((char *)sq + p.sq_off.ring_mask);
	cq_head = (unsigned *)((char *)cq + p.cq_off.head);
	cq_tail = (unsigned *)((char *)cq + p.cq_off.tail);

	memset(&sqes[0], 0, sizeof(sqes[0]));
	sqes[0].opcode = IORING_OP_CONNECT;
	sqes[0].fd = fd;
	sqes[0].addr = (unsigned long)ss;
	sqes[0].off = len;
	sq_array[*sq_tail & mask] = 0;
	__atomic_store_n(sq_tail, *sq_tail + 1, __ATOMIC_RELEASE);
	r = (int)syscall(__NR_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0);
	if (r < 0)
		return say_err(errno);
	if (__atomic_load_n(cq_tail, __ATOMIC_ACQUIRE) == *cq_head)
		return say("EUNKNOWN");
	cqe = (struct io_uring_cqe *)((char *)cq + p.cq_off.cqes) +
	      (*cq_head & *(unsigned *)((char *)cq + p.cq_off.ring_mask));
	if (cqe->res < 0)
		return say_err(-cqe->res);
	if (send(fd, MSG, sizeof(MSG), MSG_NOSIGNAL) < 0)
		return say_err(errno);
	return expect_echo(fd);
}

static int run_mode(const char *mode, const char *a, const char *p)
{
	struct sockaddr_storage ss;
	socklen_t len;

	parse_addr(a, p, &ss, &len);
	if (!strcmp(mode, "tcp"))
		return do_tcp(&ss, len);
	if (!strncmp(mode, "udp-", 4) || !strcmp(mode, "sendmmsg"))
		return do_udp(mode, &ss, len);
	if (!strcmp(mode, "tfo"))
		return do_tfo(&ss, len);
	if (!strcmp(mode, "uring"))
		return do_uring(&ss, len);
	fprintf(stderr, "dfbypass: unknown mode %s\n", mode);
	return 2;
}

struct thread_arg {
	const char *mode, *a, *p;
	int rc;
};

static void *thread_main(void *arg)
{
	struct thread_arg *t = arg;

	t->rc = run_mode(t->mode, t->a, t->p);
	return NULL;
}

/* ------------------------------------------------------------ raw packets */

static uint16_t csum(const void *data, size_t len, uint32_t sum)
{
	const uint8_t *b = data;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t)b[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* A UDP socket on an ephemeral port of the wildcard address, to catch the echo. */
static int catcher(int family, uint16_t *ret_port)
{
	struct sockaddr_storage ss = {};
	socklen_t len = sizeof(ss);
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	ss.ss_family = family;
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	*ret_port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
					      ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

static int do_raw_udp(struct sockaddr_storage *ss, socklen_t len)
{
	uint8_t pkt[8 + sizeof(MSG)];
	uint16_t sport, dport;
	int fd, c, off = 6;

	dport = ntohs(ss->ss_family == AF_INET ? ((struct sockaddr_in *)ss)->sin_port :
						 ((struct sockaddr_in6 *)ss)->sin6_port);
	c = catcher(ss->ss_family, &sport);
	fd = socket(ss->ss_family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_UDP);
	if (c < 0 || fd < 0)
		return say_err(errno);
	if (ss->ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_CHECKSUM, &off, sizeof(off)) < 0)
		return say_err(errno);
	memset(pkt, 0, sizeof(pkt));
	pkt[0] = sport >> 8, pkt[1] = sport & 0xff;
	pkt[2] = dport >> 8, pkt[3] = dport & 0xff;
	pkt[4] = sizeof(pkt) >> 8, pkt[5] = sizeof(pkt) & 0xff;
	memcpy(pkt + 8, MSG, sizeof(MSG)); /* IPv4: checksum 0, none */
	/* a raw socket's address carries no port */
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = 0;
	else
		((struct sockaddr_in6 *)ss)->sin6_port = 0;
	if (sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)ss, len) < 0)
		return say_err(errno);
	return expect_echo(c);
}

/* 4 bytes on a raw UDP socket: too short to carry ports; "ok" when sent. */
static int do_raw_short(struct sockaddr_storage *ss, socklen_t len)
{
	uint8_t pkt[4] = { 0x1e, 0x61, 0x1e, 0x61 };
	int fd = socket(ss->ss_family, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_UDP);

	if (fd < 0)
		return say_err(errno);
	if (sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)ss, len) < 0)
		return say_err(errno);
	puts("ok");
	return 0;
}

/* A hand-built SYN (IPv4); a SYN-ACK back from the port is "ok". */
static int do_raw_tcp(struct sockaddr_storage *ss, socklen_t len)
{
	struct sockaddr_in *d = (struct sockaddr_in *)ss, src = { .sin_family = AF_INET };
	uint8_t seg[20] = {}, ph[12 + 20], buf[256];
	uint16_t sport = 40000 + (getpid() % 20000), dport = ntohs(d->sin_port), sum;
	struct timespec t0, t;
	int fd;

	if (ss->ss_family != AF_INET) {
		fprintf(stderr, "dfbypass: raw-tcp is IPv4 only\n");
		return 2;
	}
	/* the tests send to an address of this host: the kernel picks it as the source too */
	src.sin_addr = d->sin_addr;
	fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_TCP);
	if (fd < 0)
		return say_err(errno);
	seg[0] = sport >> 8, seg[1] = sport & 0xff;
	seg[2] = dport >> 8, seg[3] = dport & 0xff;
	seg[7] = 1; /* sequence number */
	seg[12] = 5 << 4; /* header length */
	seg[13] = 0x02; /* SYN */
	seg[14] = 0xff, seg[15] = 0xff; /* window */
	memcpy(ph, &src.sin_addr, 4);
	memcpy(ph + 4, &d->sin_addr, 4);
	ph[8] = 0, ph[9] = IPPROTO_TCP, ph[10] = 0, ph[11] = 20;
	memcpy(ph + 12, seg, 20);
	sum = csum(ph, sizeof(ph), 0);
	seg[16] = sum >> 8, seg[17] = sum & 0xff;
	d->sin_port = 0;
	if (sendto(fd, seg, sizeof(seg), 0, (struct sockaddr *)d, len) < 0)
		return say_err(errno);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 64; i++) {
		ssize_t n;
		int hl;

		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > WAIT_MS)
			break;
		if (!wait_in(fd, 200))
			continue;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 40)
			continue;
		hl = (buf[0] & 0xf) * 4;
		if (n < hl + 20 || memcmp(buf + 12, &d->sin_addr, 4))
			continue;
		/* from the port, to ours, SYN and ACK */
		if ((buf[hl] << 8 | buf[hl + 1]) == dport && (buf[hl + 2] << 8 | buf[hl + 3]) == sport &&
		    (buf[hl + 13] & 0x12) == 0x12)
			return say("ok");
	}
	return say("timeout");
}

/* ICMP echo, through a ping socket (SOCK_DGRAM) or a raw socket. */
static int do_icmp(const char *mode, struct sockaddr_storage *ss, socklen_t len)
{
	int raw = !strcmp(mode, "raw-icmp"), v6 = ss->ss_family == AF_INET6;
	int proto = v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
	uint8_t req[8 + sizeof(MSG)] = {}, buf[512];
	uint16_t id = (uint16_t)getpid(), sum;
	struct timespec t0, t;
	int fd;

	fd = socket(ss->ss_family, (raw ? SOCK_RAW : SOCK_DGRAM) | SOCK_CLOEXEC, proto);
	if (fd < 0)
		return say_err(errno);
	req[0] = v6 ? 128 : 8; /* echo request */
	req[4] = id >> 8, req[5] = id & 0xff;
	req[7] = 1;
	memcpy(req + 8, MSG, sizeof(MSG));
	if (!v6) {
		sum = csum(req, sizeof(req), 0);
		req[2] = sum >> 8, req[3] = sum & 0xff;
	}
	if (sendto(fd, req, sizeof(req), 0, (struct sockaddr *)ss, len) < 0)
		return say_err(errno);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 64; i++) {
		ssize_t n;
		int off = 0;

		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > WAIT_MS)
			break;
		if (!wait_in(fd, 200))
			continue;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (raw && !v6 && n > 0)
			off = (buf[0] & 0xf) * 4; /* raw IPv4 sockets read the IP header too */
		if (n < off + 8)
			continue;
		/* an echo reply (a ping socket rewrites the id: only raw checks it) */
		if (buf[off] == (v6 ? 129 : 0) && (!raw || (buf[off + 4] << 8 | buf[off + 5]) == id))
			return say("ok");
	}
	return say("timeout");
}

/* An IPv4/UDP frame written to lo with AF_PACKET; the echo comes back to a UDP socket. */
static int do_packet(const char *src, const char *dst, const char *port)
{
	uint8_t f[14 + 20 + 8 + sizeof(MSG)] = {};
	struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP) };
	struct in_addr s, d;
	uint16_t sport, dport = (uint16_t)atoi(port), tot = sizeof(f) - 14, sum;
	uint8_t *ip = f + 14, *udp = f + 34;
	int fd, c;

	if (inet_pton(AF_INET, src, &s) != 1 || inet_pton(AF_INET, dst, &d) != 1) {
		fprintf(stderr, "dfbypass: packet takes IPv4 addresses\n");
		return 2;
	}
	c = catcher(AF_INET, &sport);
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_IP));
	if (c < 0 || fd < 0)
		return say_err(errno);
	ll.sll_ifindex = (int)if_nametoindex("lo");
	ll.sll_halen = 6;
	f[12] = 0x08, f[13] = 0x00;
	ip[0] = 0x45;
	ip[2] = tot >> 8, ip[3] = tot & 0xff;
	ip[8] = 64;
	ip[9] = IPPROTO_UDP;
	memcpy(ip + 12, &s, 4);
	memcpy(ip + 16, &d, 4);
	sum = csum(ip, 20, 0);
	ip[10] = sum >> 8, ip[11] = sum & 0xff;
	udp[0] = sport >> 8, udp[1] = sport & 0xff;
	udp[2] = dport >> 8, udp[3] = dport & 0xff;
	udp[4] = (8 + sizeof(MSG)) >> 8, udp[5] = (8 + sizeof(MSG)) & 0xff;
	memcpy(udp + 8, MSG, sizeof(MSG));
	if (sendto(fd, f, sizeof(f), 0, (struct sockaddr *)&ll, sizeof(ll)) < 0)
		return say_err(errno);
	return expect_echo(c);
}

/* ------------------------------------------------------------ sockets from elsewhere */

/* Connected TCP and UDP sockets made now; used once GO-FILE exists. */
/* until the file go exists (30 s at most) */
static void wait_go(const char *go)
{
	for (int i = 0; i < 300 && access(go, F_OK) < 0; i++)
		usleep(100 * 1000);
}

static int do_pre(const char *a, const char *p, const char *go)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int t, u;

	parse_addr(a, p, &ss, &len);
	t = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	u = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (t < 0 || u < 0 || connect(t, (struct sockaddr *)&ss, len) < 0 ||
	    connect(u, (struct sockaddr *)&ss, len) < 0) {
		printf("setup %s\n", errname(errno));
		return 2;
	}
	say("ready");
	wait_go(go);
	printf("tcp ");
	if (send(t, MSG, sizeof(MSG), MSG_NOSIGNAL) < 0)
		say_err(errno);
	else
		expect_echo(t);
	printf("udp ");
	if (send(u, MSG, sizeof(MSG), 0) < 0)
		say_err(errno);
	else
		expect_echo(u);
	return 0;
}

/* hold: the one socket of each kind, made before the fence (see usage) */
struct hold_arg {
	const char *kind;
	int fd, ready;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static int hold_socket(const char *kind)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int fd;

	if (!strcmp(kind, "udp"))
		return socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (!strcmp(kind, "unix"))
		return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!strcmp(kind, "io_uring")) {
		struct io_uring_params p = {};

		return (int)syscall(__NR_io_uring_setup, 4, &p);
	}
	if (!strcmp(kind, "tcp") || !strcmp(kind, "thread-tcp"))
		return socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (strcmp(kind, "tcp6-listen"))
		return -1;
	fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && (bind(fd, (struct sockaddr *)&a6, sizeof(a6)) < 0 || listen(fd, 1) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* thread-tcp: a thread with a fd table of its own holds the socket */
static void *hold_thread(void *p)
{
	struct hold_arg *h = p;

	pthread_mutex_lock(&h->mu);
	h->fd = unshare(CLONE_FILES) < 0 ? -1 : hold_socket(h->kind);
	h->ready = 1;
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
	for (int i = 0; i < 300; i++)
		usleep(100 * 1000);
	return NULL;
}

static int do_hold(const char *kind, const char *go)
{
	struct hold_arg h = { kind, -1, 0, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER };
	pthread_t th;

	if (!strcmp(kind, "thread-tcp")) {
		if (pthread_create(&th, NULL, hold_thread, &h))
			return say("EUNKNOWN");
		pthread_mutex_lock(&h.mu);
		while (!h.ready)
			pthread_cond_wait(&h.cv, &h.mu);
		pthread_mutex_unlock(&h.mu);
	} else {
		h.fd = hold_socket(kind);
	}
	if (h.fd < 0) {
		printf("setup %s\n", errname(errno));
		return 2;
	}
	say("ready");
	wait_go(go);
	return say("ok");
}

static int unix_addr(const char *path, struct sockaddr_un *un)
{
	memset(un, 0, sizeof(*un));
	un->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(un->sun_path))
		return -1;
	strcpy(un->sun_path, path);
	return 0;
}

static int do_give_fd(const char *path)
{
	struct sockaddr_un un;
	char cbuf[CMSG_SPACE(sizeof(int))] = {}, b = 'x';
	struct iovec iov = { &b, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	int l, c, s;

	l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (l < 0 || s < 0 || unix_addr(path, &un) < 0 ||
	    bind(l, (struct sockaddr *)&un, sizeof(un)) < 0 || listen(l, 1) < 0)
		return say_err(errno);
	say("ready");
	if (!wait_in(l, 30000))
		return say("timeout");
	c = accept(l, NULL, NULL);
	if (c < 0)
		return say_err(errno);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &s, sizeof(int));
	return sendmsg(c, &mh, 0) == 1 ? say("ok") : say_err(errno);
}

static int do_take_fd(const char *path, const char *a, const char *p)
{
	struct sockaddr_storage ss;
	struct sockaddr_un un;
	char cbuf[CMSG_SPACE(sizeof(int))] = {}, b;
	struct iovec iov = { &b, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	socklen_t len;
	int c, s;

	parse_addr(a, p, &ss, &len);
	c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0 || unix_addr(path, &un) < 0 || connect(c, (struct sockaddr *)&un, sizeof(un)) < 0)
		return say_err(errno);
	if (!wait_in(c, 5000) || recvmsg(c, &mh, 0) != 1)
		return say("EUNKNOWN");
	cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return say("EUNKNOWN");
	memcpy(&s, CMSG_DATA(cm), sizeof(int));
	if (sendto(s, MSG, sizeof(MSG), 0, (struct sockaddr *)&ss, len) < 0)
		return say_err(errno);
	return expect_echo(s);
}

/* ------------------------------------------------------------ source routes */

/*
 * The route through hop, on the socket: what an unprivileged process may set.
 * IPv6: a segment routing header (type 4), segments [0] = the destination's
 * place (the kernel writes it) and [1] = hop, one left. IPv4: a loose source
 * route whose first hop the kernel takes as the packet's destination.
 */
static int set_route(int fd, int family, const char *hop)
{
	uint8_t h[8 + 2 * 16] = { 0, 4, 4, 1, 1, 0, 0, 0 };
	uint8_t o[8] = { 131, 7, 4, 0, 0, 0, 0, 0 }; /* LSRR, one address, then the end */

	if (family == AF_INET6) {
		if (inet_pton(AF_INET6, hop, h + 8 + 16) != 1)
			return -EINVAL;
		return setsockopt(fd, IPPROTO_IPV6, IPV6_RTHDR, h, sizeof(h)) < 0 ? -errno : 0;
	}
	if (inet_pton(AF_INET, hop, o + 3) != 1)
		return -EINVAL;
	return setsockopt(fd, IPPROTO_IP, IP_OPTIONS, o, sizeof(o)) < 0 ? -errno : 0;
}

static int do_route(int drop, const char *proto, const char *a, const char *p, const char *hop)
{
	struct sockaddr_storage ss;
	struct pollfd pfd;
	socklen_t len;
	int fd, tcp = !strcmp(proto, "tcp"), err;

	parse_addr(a, p, &ss, &len);
	if (drop && geteuid() == 0 && (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 ||
			       setresuid(65534, 65534, 65534) < 0)) {
		printf("setup %s\n", errname(errno));
		return 2;
	}
	fd = socket(ss.ss_family, (tcp ? SOCK_STREAM | SOCK_NONBLOCK : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return say_err(errno);
	err = set_route(fd, ss.ss_family, hop);
	if (err < 0) {
		printf("setup %s\n", errname(-err));
		return 2;
	}
	if (!tcp) {
		if (sendto(fd, MSG, sizeof(MSG), 0, (struct sockaddr *)&ss, len) < 0)
			return say_err(errno);
		return expect_echo(fd);
	}
	if (connect(fd, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS)
		return say_err(errno);
	pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
	if (poll(&pfd, 1, WAIT_MS) != 1)
		return say("timeout");
	len = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err)
		return say_err(err ? err : errno);
	if (send(fd, MSG, sizeof(MSG), MSG_NOSIGNAL) < 0)
		return say_err(errno);
	return expect_echo(fd);
}

/* ------------------------------------------------------------ the fence itself */

static int do_escape(const char *procs, const char *a, const char *p)
{
	int fd = open(procs, O_WRONLY | O_CLOEXEC);

	printf("move ");
	if (fd < 0 || write(fd, "0", 1) != 1)
		say_err(errno);
	else
		say("ok");
	if (fd >= 0)
		close(fd);
	printf("tcp ");
	return run_mode("tcp", a, p);
}

static int do_bpf_get(const char *path)
{
	union bpf_attr attr;
	long fd;

	memset(&attr, 0, sizeof(attr));
	attr.pathname = (unsigned long)path;
	fd = syscall(__NR_bpf, BPF_OBJ_GET, &attr, sizeof(attr));
	return fd < 0 ? say_err(errno) : say("ok");
}

/* ------------------------------------------------------------ the echo server */

static int listen_on(int family, int type, int port)
{
	struct sockaddr_storage ss = {};
	int fd = socket(family, type | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	ss.ss_family = family;
	((struct sockaddr_in *)&ss)->sin_port = htons(port); /* same offset in sockaddr_in6 */
	if (bind(fd, (struct sockaddr *)&ss,
		 family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 64) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int do_serve(const char *port)
{
	struct pollfd pfd[4];
	int p = atoi(port);
	time_t end = time(NULL) + 300;

	pfd[0].fd = listen_on(AF_INET, SOCK_STREAM, p);
	pfd[1].fd = listen_on(AF_INET6, SOCK_STREAM, p);
	pfd[2].fd = listen_on(AF_INET, SOCK_DGRAM, p);
	pfd[3].fd = listen_on(AF_INET6, SOCK_DGRAM, p);
	for (int i = 0; i < 4; i++) {
		if (pfd[i].fd < 0) {
			perror("dfbypass serve");
			return 2;
		}
		pfd[i].events = POLLIN;
	}
	signal(SIGPIPE, SIG_IGN);
	while (time(NULL) < end) {
		char buf[2048];

		if (poll(pfd, 4, 1000) <= 0)
			continue;
		for (int i = 0; i < 4; i++) {
			struct sockaddr_storage from;
			socklen_t fl = sizeof(from);
			ssize_t n;

			if (!(pfd[i].revents & POLLIN))
				continue;
			if (i < 2) {
				int c = accept(pfd[i].fd, NULL, NULL);

				if (c < 0)
					continue;
				/* bounded: a client that never writes costs one wait */
				if (wait_in(c, 2000) && (n = recv(c, buf, sizeof(buf), 0)) > 0)
					(void)!send(c, buf, (size_t)n, MSG_NOSIGNAL);
				close(c);
			} else {
				n = recvfrom(pfd[i].fd, buf, sizeof(buf), MSG_DONTWAIT,
					     (struct sockaddr *)&from, &fl);
				if (n > 0)
					sendto(pfd[i].fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fl);
			}
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *m = argc > 1 ? argv[1] : "";

	if (!strcmp(m, "serve") && argc == 3)
		return do_serve(argv[2]);
	if ((!strcmp(m, "thread") || !strcmp(m, "child")) && argc == 5) {
		if (m[0] == 't') {
			struct thread_arg t = { argv[2], argv[3], argv[4], 2 };
			pthread_t th;

			if (pthread_create(&th, NULL, thread_main, &t) || pthread_join(th, NULL))
				return say("EUNKNOWN");
			return t.rc;
		} else {
			int st;
			pid_t pid;

			fflush(stdout);
			pid = fork();
			if (pid == 0)
				_exit(run_mode(argv[2], argv[3], argv[4]));
			if (pid < 0 || waitpid(pid, &st, 0) < 0)
				return say_err(errno);
			return WIFEXITED(st) ? WEXITSTATUS(st) : 2;
		}
	}
	if (!strcmp(m, "setns") && argc == 6) {
		int fd = open(argv[2], O_RDONLY | O_CLOEXEC);

		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
			return say_err(errno);
		return run_mode(argv[3], argv[4], argv[5]);
	}
	if (!strcmp(m, "raw-short") && argc == 3) {
		struct sockaddr_storage ss;
		socklen_t len;

		parse_addr(argv[2], "0", &ss, &len);
		return do_raw_short(&ss, len);
	}
	if ((!strcmp(m, "raw-udp") || !strcmp(m, "raw-tcp")) && argc == 4) {
		struct sockaddr_storage ss;
		socklen_t len;

		parse_addr(argv[2], argv[3], &ss, &len);
		return m[4] == 'u' ? do_raw_udp(&ss, len) : do_raw_tcp(&ss, len);
	}
	if ((!strcmp(m, "ping") || !strcmp(m, "raw-icmp")) && argc == 3) {
		struct sockaddr_storage ss;
		socklen_t len;

		parse_addr(argv[2], "0", &ss, &len);
		return do_icmp(m, &ss, len);
	}
	if (!strcmp(m, "packet") && argc == 5)
		return do_packet(argv[2], argv[3], argv[4]);
	if (!strcmp(m, "pre") && argc == 5)
		return do_pre(argv[2], argv[3], argv[4]);
	if (!strcmp(m, "hold") && argc == 4)
		return do_hold(argv[2], argv[3]);
	if (!strcmp(m, "held") && (argc == 5 || argc == 6 || argc == 8)) {
		int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (t < 0)
			return say_err(errno);
		say("ready");
		wait_go(argv[2]);
		if (argc == 5 && !strcmp(argv[3], "serve"))
			return do_serve(argv[4]);
		if (argc == 6)
			return run_mode(argv[3], argv[4], argv[5]);
		if (argc == 8 && (!strcmp(argv[3], "route") || !strcmp(argv[3], "route-priv")))
			return do_route(!strcmp(argv[3], "route"), argv[4], argv[5], argv[6], argv[7]);
		return 2;
	}
	if (!strcmp(m, "give-fd") && argc == 3)
		return do_give_fd(argv[2]);
	if (!strcmp(m, "take-fd") && argc == 5)
		return do_take_fd(argv[2], argv[3], argv[4]);
	if ((!strcmp(m, "route") || !strcmp(m, "route-priv")) && argc == 6)
		return do_route(!strcmp(m, "route"), argv[2], argv[3], argv[4], argv[5]);
	if (!strcmp(m, "escape") && argc == 5)
		return do_escape(argv[2], argv[3], argv[4]);
	if (!strcmp(m, "bpf-get") && argc == 3)
		return do_bpf_get(argv[2]);
	if (!strcmp(m, "unlink") && argc == 3)
		return unlink(argv[2]) < 0 ? say_err(errno) : say("ok");
	if (argc == 4)
		return run_mode(m, argv[2], argv[3]);
	fprintf(stderr, "usage: see the head of tests/tools/dfbypass.c\n");
	return 2;
}
