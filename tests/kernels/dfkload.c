// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * dfkload: load each program of depfence's BPF object (the same skeleton the
 * binary embeds) on its own, and say what the running kernel's verifier made
 * of it. For the kernel matrix (tests/kernels/).
 *
 *   dfkload [loop|unrolled]
 *
 * The build of the object (hook/fence_obj.h) is the one the hook picks on
 * this kernel, or the one named; a first line says which:
 *   build loop|unrolled
 * then one line per program:
 *   prog NAME SECTION loaded insns=N [time_us=N]
 *   prog NAME SECTION failed errno=NAME
 * followed, for a failure, by the verifier's own words:
 *   log NAME: LINE
 * Exit 0 when every program loads, 1 otherwise. Needs root (or CAP_BPF).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../../hook/fence_obj.h"

#define STATS_LOG (64 * 1024)
#define FULL_LOG (16 * 1024 * 1024)
#define TAIL_LINES 12

static bool loop;

static int quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
	return 0;
}

static struct fence_bpf *open_one(const char *name, struct bpf_program **ret)
{
	struct fence_bpf *s = fence_bpf_open_build(loop);
	struct bpf_program *p;

	*ret = NULL;
	if (!s)
		return NULL;
	/* as fence_start and the unit tests do: the rule maps are sized at run time */
	bpf_map__set_max_entries(s->maps.rules4, 1);
	bpf_map__set_max_entries(s->maps.rules6, 1);
	bpf_map__set_max_entries(s->maps.name_rules, 64);
	/* an enforce fence's variant: the connect programs keep DNS writers for df_dns_msg */
	s->rodata->dns_tcp_reader = 1;
	bpf_object__for_each_program(p, s->obj) {
		int me = !strcmp(bpf_program__name(p), name);

		bpf_program__set_autoload(p, me);
		if (me)
			*ret = p;
	}
	return s;
}

/* Print LOG's lines (all, or the last TAIL ones) as "log NAME: LINE". */
static void print_log(const char *name, char *log, int tail)
{
	size_t len = strlen(log);
	char *start = log;

	while (len && log[len - 1] == '\n')
		log[--len] = '\0';
	if (tail) {
		int seen = 0;

		for (size_t i = len; i > 0; i--) {
			if (log[i - 1] == '\n' && ++seen == tail) {
				start = log + i;
				break;
			}
		}
	}
	for (char *l = strtok(start, "\n"); l; l = strtok(NULL, "\n"))
		printf("log %s: %s\n", name, l);
}

static int verify(const char *name, const char *sec)
{
	static char stats[STATS_LOG];
	struct bpf_program *p;
	struct fence_bpf *s = open_one(name, &p);
	const char *t;
	int r;

	if (!s || !p) {
		printf("prog %s %s failed errno=%s (open)\n", name, sec, strerrorname_np(errno));
		fence_bpf__destroy(s);
		return -1;
	}
	stats[0] = '\0';
	/* level 4: statistics only, cheap; errors are printed at any level */
	bpf_program__set_log_buf(p, stats, sizeof(stats));
	bpf_program__set_log_level(p, 4);
	r = fence_bpf__load(s);
	if (r == 0) {
		long insns = -1, us = -1;

		if ((t = strstr(stats, "processed ")))
			insns = strtol(t + 10, NULL, 10);
		if ((t = strstr(stats, "verification time ")))
			us = strtol(t + 18, NULL, 10);
		printf("prog %s %s loaded insns=%ld", name, sec, insns);
		if (us >= 0)
			printf(" time_us=%ld", us);
		printf("\n");
		fence_bpf__destroy(s);
		return 0;
	}
	printf("prog %s %s failed errno=%s\n", name, sec, strerrorname_np(-r));
	fence_bpf__destroy(s);
	/* the verifier's complaint with the instructions that led to it */
	{
		char *full = malloc(FULL_LOG);

		s = open_one(name, &p);
		if (full && s && p) {
			full[0] = '\0';
			bpf_program__set_log_buf(p, full, FULL_LOG);
			bpf_program__set_log_level(p, 1);
			fence_bpf__load(s);
			if (full[0])
				print_log(name, full, TAIL_LINES);
			else
				print_log(name, stats, 0);
		} else {
			print_log(name, stats, 0);
		}
		free(full);
		fence_bpf__destroy(s);
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct fence_bpf *s;
	struct bpf_program *p;
	char names[16][64], secs[16][64];
	int n = 0, bad = 0;

	libbpf_set_print(quiet);
	if (argc > 2 || (argc == 2 && strcmp(argv[1], "loop") && strcmp(argv[1], "unrolled"))) {
		fprintf(stderr, "usage: dfkload [loop|unrolled]\n");
		return 2;
	}
	loop = argc == 2 ? !strcmp(argv[1], "loop") : fence_kernel_has_bpf_loop();
	printf("build %s\n", loop ? "loop" : "unrolled");
	s = fence_bpf_open_build(loop);
	if (!s) {
		printf("open BPF object: %s\n", strerror(errno));
		return 1;
	}
	bpf_object__for_each_program(p, s->obj) {
		if (n == 16)
			break;
		snprintf(names[n], sizeof(names[n]), "%s", bpf_program__name(p));
		snprintf(secs[n], sizeof(secs[n]), "%s", bpf_program__section_name(p));
		n++;
	}
	fence_bpf__destroy(s);
	for (int i = 0; i < n; i++)
		if (verify(names[i], secs[i]) < 0)
			bad++;
	fflush(stdout);
	return bad ? 1 : 0;
}
