// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * dfverify: what loading a fence costs the kernel, program by program, for
 * `make bench`. Opens the skeleton the way hook/fence.c does (same map
 * sizes), loads it with only one program enabled, and reads the kernel's
 * figures for that program; also loads the maps alone and the whole object.
 * Both builds of the object (hook/fence_obj.h) where the kernel takes both,
 * the unrolled one alone elsewhere. Rounds are interleaved: each round loads
 * every variant of every build once.
 *
 *   dfverify [-r ROUNDS]
 *
 * One line per load:
 *   "BUILD VARIANT ROUND LOAD_NS VERIFIED_INSNS XLATED_BYTES JITED_BYTES",
 * BUILD being "loop" or "unrolled" (a '*' after it marks the one the hook
 * loads), VARIANT a program name, "maps" (no program) or "all". Exit 0 when
 * every load succeeded, 1 otherwise.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../../bpf/fence.h"
#include "../../hook/fence_obj.h"

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

/* only: a program name, "maps" or "all" */
static int load_one(bool loop, const char *build, const char *only, int round)
{
	struct fence_bpf *skel = fence_bpf_open_build(loop);
	struct bpf_program *p, *chosen = NULL;
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	long long t0, dt;
	int r;

	if (!skel) {
		fprintf(stderr, "dfverify: open: %s\n", strerror(errno));
		return -1;
	}
	/* as hook/fence.c sizes them for a policy with few rules */
	bpf_map__set_max_entries(skel->maps.rules4, 1);
	bpf_map__set_max_entries(skel->maps.rules6, 1);
	bpf_map__set_max_entries(skel->maps.records, DF_DEFAULT_RECORDS);
	bpf_map__set_max_entries(skel->maps.name_rules, 1);
	bpf_object__for_each_program(p, skel->obj) {
		int on = !strcmp(only, "all") || !strcmp(only, bpf_program__name(p));

		bpf_program__set_autoload(p, on);
		if (on && strcmp(only, "all"))
			chosen = p;
	}
	t0 = now_ns();
	r = fence_bpf__load(skel);
	dt = now_ns() - t0;
	if (r < 0) {
		fprintf(stderr, "dfverify: load %s: %s\n", only, strerror(-r));
		fence_bpf__destroy(skel);
		return -1;
	}
	memset(&info, 0, sizeof(info));
	if (chosen && bpf_obj_get_info_by_fd(bpf_program__fd(chosen), &info, &len) < 0) {
		fprintf(stderr, "dfverify: info %s: %s\n", only, strerror(errno));
		fence_bpf__destroy(skel);
		return -1;
	}
	printf("%s %s %d %lld %u %u %u\n", build, only, round, dt, info.verified_insns, info.xlated_prog_len,
	       info.jited_prog_len);
	fflush(stdout);
	fence_bpf__destroy(skel);
	return 0;
}

int main(int argc, char **argv)
{
	const char *names[32];
	struct fence_bpf *skel;
	struct bpf_program *p;
	int n = 0, rounds = 3, opt, bad = 0;
	bool loop = fence_kernel_has_bpf_loop();

	while ((opt = getopt(argc, argv, "r:")) != -1) {
		if (opt == 'r')
			rounds = atoi(optarg);
		else
			return 2;
	}
	if (rounds < 1 || optind != argc) {
		fprintf(stderr, "usage: dfverify [-r ROUNDS]\n");
		return 2;
	}
	libbpf_set_print(quiet);
	skel = fence_bpf_open_build(false);
	if (!skel) {
		fprintf(stderr, "dfverify: open: %s\n", strerror(errno));
		return 1;
	}
	names[n++] = "maps";
	bpf_object__for_each_program(p, skel->obj)
		if (n < 30)
			names[n++] = strdup(bpf_program__name(p));
	names[n++] = "all";
	for (int r = 1; r <= rounds; r++)
		for (int i = 0; i < n; i++)
			if (load_one(false, loop ? "unrolled" : "unrolled*", names[i], r) < 0 ||
			    (loop && load_one(true, "loop*", names[i], r) < 0))
				bad = 1;
	fence_bpf__destroy(skel);
	return bad;
}
