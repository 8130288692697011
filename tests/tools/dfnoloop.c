// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libdfnoloop.so: an LD_PRELOAD shim that plays a kernel whose verifier
 * refuses the fence's bpf_loop build (hook/fence_obj.h). It fails with
 * EINVAL every BPF_PROG_LOAD of more than PROBE_MAX instructions that calls
 * bpf_loop, through libc's syscall(), which libbpf calls for bpf(2); the
 * hook's own bpf_loop probe (a few instructions) still passes, so the hook
 * chooses the loop build and must fall back to the unrolled one. Each refusal
 * appends a line to $DFNOLOOP_LOG when that is set. For tests only.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/bpf.h>

#define PROBE_MAX 16

static int calls_loop(const union bpf_attr *a)
{
	const struct bpf_insn *in = (const struct bpf_insn *)(unsigned long)a->insns;

	if (a->insn_cnt <= PROBE_MAX)
		return 0;
	for (__u32 i = 0; i < a->insn_cnt; i++)
		if (in[i].code == (BPF_JMP | BPF_CALL) && in[i].src_reg == 0 && in[i].imm == BPF_FUNC_loop)
			return 1;
	return 0;
}

long syscall(long nr, ...)
{
	static long (*real)(long, ...);
	long a[6];
	va_list ap;

	va_start(ap, nr);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (!real)
		real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
	if (nr == SYS_bpf && a[0] == BPF_PROG_LOAD && a[1] && calls_loop((const union bpf_attr *)a[1])) {
		const char *log = getenv("DFNOLOOP_LOG");
		int fd = log ? open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600) : -1;

		if (fd >= 0) {
			dprintf(fd, "refused %s\n", ((const union bpf_attr *)a[1])->prog_name);
			close(fd);
		}
		errno = EINVAL;
		return -1;
	}
	return real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}
