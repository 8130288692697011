/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* A depfence.report/v1 document read back: what depfence report renders. */
#ifndef DEPFENCE_REPORT_DOC_H
#define DEPFENCE_REPORT_DOC_H

#include <stdio.h>

#include "../oci/json.h"
#include "config.h"

/* Reports larger than this are refused (about 100,000 events). */
#define RDOC_MAX (64 * 1024 * 1024)

struct rdoc_event {
	const char *verdict; /* "blocked", "would-block", "allowed", or what the file says */
	const char *hook, *proto, *daddr, *name, *rule, *qtype;
	const char *first_seen, *last_seen;
	long long dport, count;
	int unparsable;
	/* process */
	long long pid; /* -1 when absent */
	const char *comm, *cmdline, *exe;
	char *chain; /* "deploy.sh → curl" from the ancestry; NULL without one */
};

struct rdoc_rule {
	const char *rule, *verdict, *source;
};

/* Summary counters; -1 when the report lacks one. */
struct rdoc_summary {
	long long connections, allowed, would_block, blocked, dns_queries, dns_blocked,
		dropped_records, destinations;
};

struct rdoc {
	yajl_val root;	 /* owns every string below */
	char path[4096]; /* the file read, "-" for stdin */
	const char *schema, *id, *label, *kind, *command, *cgroup, *mode, *def;
	const char *started_at, *stopped_at;
	struct rdoc_rule *rules;
	size_t n_rules;
	struct rdoc_summary sum;
	struct rdoc_event *events;
	size_t n_events;
	const char **notes;
	size_t n_notes;
	size_t records_lost; /* map pins gone before the report: not whole */
};

void rdoc_free(struct rdoc *d);

/* Parse a report; what names it in errors. Unknown keys are ignored. */
int rdoc_parse(const char *buf, const char *what, struct rdoc *ret, struct df_error *e);

/*
 * Read a report named by a path, "-" (stdin), or a report id, which is looked
 * up as <report_dir>/<id>.json in the host configuration (loaded only then).
 */
int rdoc_load(const char *arg, struct rdoc *ret, struct df_error *e);

int rdoc_is_violation(const struct rdoc_event *ev);

/* RFC 3339 (as depfence writes it) to nanoseconds; -EINVAL when it is not one. */
int rdoc_parse_time(const char *s, unsigned long long *ret_ns);

/* ---- rendering (report_render.c, report_learn.c); each returns 0 or -errno ---- */

/* "github.com (203.0.113.10:443)", "203.0.113.10:443", "github.com A via 10.0.0.2:53" (malloc'd) */
char *rdoc_event_dest(const struct rdoc_event *ev);
/* "deploy.sh → curl (4242)", without " (4242)" unless with_pid (malloc'd) */
char *rdoc_event_process(const struct rdoc_event *ev, int with_pid);
/* Terminal-safe copy: control characters (C0, DEL, C1) become '?' (malloc'd). */
char *rdoc_clean(const char *s);

int rdoc_print_text(FILE *f, const struct rdoc *d, int color);
int rdoc_print_json(FILE *f, const struct rdoc *d);
int rdoc_print_junit(FILE *f, const struct rdoc *d);
int rdoc_print_sarif(FILE *f, const struct rdoc *d);
/* The policy that allows what the report saw, default deny; prefixes: group into /24 and /64. */
int rdoc_print_policy(FILE *f, const struct rdoc *d, int prefixes);

#endif
