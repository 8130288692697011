// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * dflb: a socket load balancer as Cilium's kube-proxy replacement is one, for
 * tests/integration/test_dns.sh. It attaches connect4 and sendmsg4 programs
 * to CGROUP that send FROM:PORT to TO:PORT instead (UDP and TCP), moves
 * itself into CGROUP and runs CMD there. A fence made below CGROUP (depfence
 * run makes its cgroup in its caller's) runs its programs first, so it judges
 * FROM and the packet leaves for TO. The programs go when the last process
 * holding their links (CMD and what it starts) exits.
 *
 *   dflb CGROUP FROM4 TO4 PORT CMD...
 *
 * Static, no dependencies: the programs are a few instructions written here.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	return (int)syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

static struct bpf_insn insn(__u8 code, __u8 dst, __u8 src, __s16 off, __s32 imm)
{
	return (struct bpf_insn){ .code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm };
}

/* if (user_ip4 == from && user_port == port) user_ip4 = to; allow */
static int load(enum bpf_attach_type type, __u32 from, __u32 to, __u16 port)
{
	const __s16 ip = offsetof(struct bpf_sock_addr, user_ip4);
	const __s16 pt = offsetof(struct bpf_sock_addr, user_port);
	struct bpf_insn prog[] = {
		insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_1, ip, 0),
		insn(BPF_JMP32 | BPF_JNE | BPF_K, BPF_REG_2, 0, 4, (__s32)from),
		insn(BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_1, pt, 0),
		insn(BPF_JMP32 | BPF_JNE | BPF_K, BPF_REG_2, 0, 2, (__s32)htons(port)),
		insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_3, 0, 0, (__s32)to),
		insn(BPF_STX | BPF_MEM | BPF_W, BPF_REG_1, BPF_REG_3, ip, 0),
		insn(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1),
		insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_CGROUP_SOCK_ADDR;
	a.expected_attach_type = type;
	a.insns = (__u64)(unsigned long)prog;
	a.insn_cnt = sizeof(prog) / sizeof(prog[0]);
	a.license = (__u64)(unsigned long)"GPL";
	return sys_bpf(BPF_PROG_LOAD, &a);
}

static int attach(int cg, enum bpf_attach_type type, __u32 from, __u32 to, __u16 port)
{
	union bpf_attr a;
	int prog = load(type, from, to, port), link;

	if (prog < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.link_create.prog_fd = prog;
	a.link_create.target_fd = cg;
	a.link_create.attach_type = type;
	link = sys_bpf(BPF_LINK_CREATE, &a);
	/* the kernel makes it close-on-exec: CMD is to hold it */
	return link < 0 ? -1 : fcntl(link, F_SETFD, 0);
}

int main(int argc, char **argv)
{
	struct in_addr from, to;
	char procs[4096];
	int cg, fd;

	if (argc < 6 || inet_pton(AF_INET, argv[2], &from) != 1 ||
	    inet_pton(AF_INET, argv[3], &to) != 1 || atoi(argv[4]) <= 0 || atoi(argv[4]) > 65535) {
		fprintf(stderr, "usage: dflb CGROUP FROM4 TO4 PORT CMD...\n");
		return 2;
	}
	cg = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0 || attach(cg, BPF_CGROUP_INET4_CONNECT, from.s_addr, to.s_addr, atoi(argv[4])) < 0 ||
	    attach(cg, BPF_CGROUP_UDP4_SENDMSG, from.s_addr, to.s_addr, atoi(argv[4])) < 0) {
		fprintf(stderr, "dflb: attach to %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", argv[1]);
	fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || dprintf(fd, "%d\n", getpid()) < 0) {
		fprintf(stderr, "dflb: join %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	close(fd);
	execvp(argv[5], argv + 5);
	fprintf(stderr, "dflb: %s: %s\n", argv[5], strerror(errno));
	return 127;
}
