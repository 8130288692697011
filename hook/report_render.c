// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* depfence report: a report read back, as text, JSON, JUnit XML or SARIF. */
#include <time.h>

#include "../oci/json_emit.h"
#include "cli.h"
#include "report_doc.h"

#define C_RESET "\033[0m"
#define C_BOLD "\033[1m"
#define C_RED "\033[1;31m"
#define C_YELLOW "\033[33m"
#define C_GREEN "\033[32m"

char *rdoc_clean(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	unsigned char *out = malloc(n + 1);

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f) {
			out[i] = '?';
		} else if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 &&
			   (unsigned char)s[i + 1] <= 0x9f) {
			/* C1 controls (U+0080..U+009F) include CSI: no escape sequences */
			out[i] = '?';
			out[i + 1] = '?';
			i++;
		} else {
			out[i] = c;
		}
	}
	out[n] = '\0';
	return (char *)out;
}

static void addr_port(FILE *f, const char *addr, long long port)
{
	if (!addr)
		addr = "?";
	if (strchr(addr, ':'))
		fprintf(f, "[%s]:%lld", addr, port);
	else
		fprintf(f, "%s:%lld", addr, port);
}

static int is_dns(const struct rdoc_event *ev)
{
	return ev->hook && !strcmp(ev->hook, "dns");
}

char *rdoc_event_dest(const struct rdoc_event *ev)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	if (is_dns(ev)) {
		if (ev->name)
			fprintf(f, "%s %s via ", ev->name, ev->qtype ? ev->qtype : "?");
		else
			fprintf(f, "(%s question) via ", ev->unparsable ? "unparsable" : "unnamed");
		addr_port(f, ev->daddr, ev->dport);
	} else if (ev->name) {
		fprintf(f, "%s (", ev->name);
		addr_port(f, ev->daddr, ev->dport);
		fputc(')', f);
	} else {
		addr_port(f, ev->daddr, ev->dport);
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

char *rdoc_event_process(const struct rdoc_event *ev, int with_pid)
{
	const char *who = ev->chain ? ev->chain : ev->comm ? ev->comm : "?";
	char *out;
	int n;

	if (with_pid && ev->pid >= 0)
		n = asprintf(&out, "%s (%lld)", who, ev->pid);
	else
		n = asprintf(&out, "%s", who);
	return n < 0 ? NULL : out;
}

static const char *proto_col(const struct rdoc_event *ev, char *buf, size_t len)
{
	const char *p = ev->proto ? ev->proto : "?";

	if (is_dns(ev))
		snprintf(buf, len, "dns/%s", p);
	else
		snprintf(buf, len, "%s", p);
	return buf;
}

/* Columns count characters, not bytes: "→" is one. */
static size_t display_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

static const char *verdict_color(const char *v)
{
	if (!strcmp(v, "blocked"))
		return C_RED;
	if (!strcmp(v, "would-block"))
		return C_YELLOW;
	if (!strcmp(v, "allowed"))
		return C_GREEN;
	return "";
}

#define NCOLS 6

struct row {
	char *cell[NCOLS];
	const char *color; /* of the first cell */
};

static void free_rows(struct row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (int c = 0; c < NCOLS; c++)
			free(rows[i].cell[c]);
	free(rows);
}

static void print_cell(FILE *f, const char *s, size_t width, int right, int last, const char *color)
{
	size_t w = display_width(s);

	if (right)
		fprintf(f, "%*s", (int)(width > w ? width - w : 0), "");
	if (color && *color)
		fprintf(f, "%s%s%s", color, s, C_RESET);
	else
		fputs(s, f);
	if (!right && !last)
		fprintf(f, "%*s", (int)(width > w ? width - w : 0), "");
	if (!last)
		fputs("  ", f);
}

static void print_time_span(FILE *f, const struct rdoc *d)
{
	unsigned long long a, b;

	fprintf(f, "%s .. %s", d->started_at ? d->started_at : "?",
		d->stopped_at ? d->stopped_at : "?");
	if (rdoc_parse_time(d->started_at, &a) == 0 && rdoc_parse_time(d->stopped_at, &b) == 0 &&
	    b >= a)
		fprintf(f, " (%.3f s)", (double)(b - a) / 1e9);
	fputc('\n', f);
}

/* "3 connections", "1 connection", "? connections" (unknown); then tail. */
static void print_count(FILE *f, long long n, const char *one, const char *many, const char *tail)
{
	if (n < 0)
		fprintf(f, "? %s%s", many, tail);
	else
		fprintf(f, "%lld %s%s", n, n == 1 ? one : many, tail);
}

static long long distinct_destinations(const struct rdoc *d)
{
	long long n = 0;

	for (size_t i = 0; i < d->n_events; i++) {
		const struct rdoc_event *a = &d->events[i];
		size_t j;

		if (is_dns(a))
			continue;
		for (j = 0; j < i; j++) {
			const struct rdoc_event *b = &d->events[j];

			if (!is_dns(b) && b->dport == a->dport && a->proto && b->proto &&
			    !strcmp(a->proto, b->proto) && a->daddr && b->daddr &&
			    !strcmp(a->daddr, b->daddr))
				break;
		}
		n += j == i;
	}
	return n;
}

/* The name a violation is grouped under: the name, else the address. */
static const char *group_key(const struct rdoc_event *ev)
{
	if (ev->name)
		return ev->name;
	if (is_dns(ev))
		return "(unparsable DNS question)";
	return ev->daddr ? ev->daddr : "?";
}

static int print_violations(FILE *f, const struct rdoc *d, const char *pad)
{
	_cleanup_free_ size_t *groups = NULL; /* index of the first event of each group */
	long long attempts = 0, blocked = 0, would = 0, nev = 0;
	size_t ng = 0, width = 0;

	groups = calloc(d->n_events + 1, sizeof(*groups));
	if (!groups)
		return -ENOMEM;
	for (size_t i = 0; i < d->n_events; i++) {
		const struct rdoc_event *ev = &d->events[i];
		size_t g;

		if (!rdoc_is_violation(ev))
			continue;
		nev++;
		attempts += ev->count;
		if (!strcmp(ev->verdict, "blocked"))
			blocked += ev->count;
		else
			would += ev->count;
		for (g = 0; g < ng; g++)
			if (!strcmp(group_key(&d->events[groups[g]]), group_key(ev)))
				break;
		if (g == ng) {
			groups[ng++] = i;
			if (display_width(group_key(ev)) > width)
				width = display_width(group_key(ev));
		}
	}
	if (!nev) {
		fprintf(f, "none\n");
		return 0;
	}
	fprintf(f, "%lld event%s, %lld attempt%s: %lld blocked, %lld would-block\n", nev,
		nev == 1 ? "" : "s", attempts, attempts == 1 ? "" : "s", blocked, would);
	for (size_t g = 0; g < ng; g++) {
		const char *key = group_key(&d->events[groups[g]]);
		_cleanup_free_ char *ckey = rdoc_clean(key);
		long long b = 0, w = 0, n = 0;
		const char *procs[4];
		size_t np = 0, more = 0;

		if (!ckey)
			return -ENOMEM;
		for (size_t i = groups[g]; i < d->n_events; i++) {
			const struct rdoc_event *ev = &d->events[i];
			const char *c = ev->comm ? ev->comm : "?";
			size_t k;

			if (!rdoc_is_violation(ev) || strcmp(group_key(ev), key))
				continue;
			n++;
			if (!strcmp(ev->verdict, "blocked"))
				b += ev->count;
			else
				w += ev->count;
			for (k = 0; k < np; k++)
				if (!strcmp(procs[k], c))
					break;
			if (k == np) {
				if (np < ARRAY_SIZE(procs))
					procs[np++] = c;
				else
					more++;
			}
		}
		fprintf(f, "%s%s%*s  ", pad, ckey, (int)(width - display_width(ckey)), "");
		if (b)
			fprintf(f, "%lld blocked%s", b, w ? ", " : "");
		if (w)
			fprintf(f, "%lld would-block", w);
		fprintf(f, " (%lld event%s) by ", n, n == 1 ? "" : "s");
		for (size_t k = 0; k < np; k++) {
			_cleanup_free_ char *cp = rdoc_clean(procs[k]);

			fprintf(f, "%s%s", k ? ", " : "", cp ? cp : "?");
		}
		if (more)
			fprintf(f, " and %zu more", more);
		fputc('\n', f);
	}
	return 0;
}

static int print_table(FILE *f, const struct rdoc *d, int color)
{
	static const char *const head[NCOLS] = { "VERDICT", "PROTO",   "DESTINATION",
						 "COUNT",   "PROCESS", "RULE" };
	struct row *rows;
	size_t width[NCOLS] = {};
	int r = 0;

	rows = calloc(d->n_events + 1, sizeof(*rows));
	if (!rows)
		return -ENOMEM;
	for (int c = 0; c < NCOLS; c++)
		width[c] = strlen(head[c]);
	for (size_t i = 0; i < d->n_events; i++) {
		const struct rdoc_event *ev = &d->events[i];
		_cleanup_free_ char *dest = rdoc_event_dest(ev), *proc = rdoc_event_process(ev, 1);
		char pb[32];

		if (!dest || !proc) {
			r = -ENOMEM;
			goto out;
		}
		rows[i].cell[0] = rdoc_clean(ev->verdict);
		rows[i].cell[1] = rdoc_clean(proto_col(ev, pb, sizeof(pb)));
		rows[i].cell[2] = rdoc_clean(dest);
		if (asprintf(&rows[i].cell[3], "%lld", ev->count) < 0)
			rows[i].cell[3] = NULL;
		rows[i].cell[4] = rdoc_clean(proc);
		rows[i].cell[5] = rdoc_clean(ev->rule ? ev->rule : "?");
		rows[i].color = color ? verdict_color(ev->verdict) : NULL;
		for (int c = 0; c < NCOLS; c++) {
			if (!rows[i].cell[c]) {
				r = -ENOMEM;
				goto out;
			}
			if (display_width(rows[i].cell[c]) > width[c])
				width[c] = display_width(rows[i].cell[c]);
		}
	}
	if (color)
		fputs(C_BOLD, f);
	for (int c = 0; c < NCOLS; c++)
		print_cell(f, head[c], width[c], c == 3, c == NCOLS - 1, NULL);
	fprintf(f, "%s\n", color ? C_RESET : "");
	for (size_t i = 0; i < d->n_events; i++) {
		for (int c = 0; c < NCOLS; c++)
			print_cell(f, rows[i].cell[c], width[c], c == 3, c == NCOLS - 1,
				   c == 0 ? rows[i].color : NULL);
		fputc('\n', f);
	}
out:
	free_rows(rows, d->n_events);
	return r;
}

int rdoc_print_text(FILE *f, const struct rdoc *d, int color)
{
	const struct rdoc_summary *s = &d->sum;
	_cleanup_free_ char *id = rdoc_clean(d->id ? d->id : "?"), *label = rdoc_clean(d->label),
			    *cmd = rdoc_clean(d->command), *cg = rdoc_clean(d->cgroup);
	const char *b = color ? C_BOLD : "", *e = color ? C_RESET : "";
	const char *pad = "           ";
	size_t rw = 0;
	int r;

	if (!id || !label || !cmd || !cg)
		return -ENOMEM;
	fprintf(f, "%sReport%s     %s\n", b, e, id);
	if (d->label)
		fprintf(f, "%sLabel%s      %s\n", b, e, label);
	if (d->kind && !strcmp(d->kind, "run"))
		fprintf(f, "%sJob%s        depfence run: %s\n", b, e, d->command ? cmd : "?");
	else if (d->kind && !strcmp(d->kind, "hook"))
		fprintf(f, "%sJob%s        container (OCI hook)%s%s\n", b, e,
			d->command ? ": " : "", d->command ? cmd : "");
	else if (d->kind) {
		_cleanup_free_ char *k = rdoc_clean(d->kind);

		fprintf(f, "%sJob%s        %s%s%s\n", b, e, k ? k : "?", d->command ? ": " : "",
			d->command ? cmd : "");
	}
	if (d->cgroup)
		fprintf(f, "%sCgroup%s     %s\n", b, e, cg);
	fprintf(f, "%sTime%s       ", b, e);
	print_time_span(f, d);
	fprintf(f, "%sPolicy%s     mode %s, default %s, ", b, e, d->mode ? d->mode : "?",
		d->def ? d->def : "?");
	if (!d->n_rules)
		fprintf(f, "no rules\n");
	else
		fprintf(f, "%zu rule%s\n", d->n_rules, d->n_rules == 1 ? "" : "s");
	for (size_t i = 0; i < d->n_rules; i++)
		if (display_width(d->rules[i].rule) > rw)
			rw = display_width(d->rules[i].rule);
	for (size_t i = 0; i < d->n_rules; i++) {
		_cleanup_free_ char *rt = rdoc_clean(d->rules[i].rule),
				    *src = rdoc_clean(d->rules[i].source);

		if (!rt || !src)
			return -ENOMEM;
		fprintf(f, "%s%-5s  %s", pad, d->rules[i].verdict ? d->rules[i].verdict : "?", rt);
		if (d->rules[i].source)
			fprintf(f, "%*s  (%s)", (int)(rw - display_width(rt)), "", src);
		fputc('\n', f);
	}
	fprintf(f, "%sSummary%s    ", b, e);
	if (s->connections < 0 && s->allowed < 0 && s->blocked < 0 && s->would_block < 0 &&
	    s->dns_queries < 0) {
		fprintf(f, "none in the report; ");
		print_count(f, distinct_destinations(d), "distinct destination",
			    "distinct destinations", ", ");
		print_count(f, (long long)d->n_events, "event", "events", "\n");
		goto violations;
	}
	print_count(f, s->connections, "connection", "connections", ": ");
	print_count(f, s->allowed, "allowed", "allowed", ", ");
	print_count(f, s->would_block, "would-block", "would-block", ", ");
	print_count(f, s->blocked, "blocked", "blocked", "; ");
	print_count(f, s->dns_queries, "DNS question", "DNS questions", ", ");
	print_count(f, s->dns_blocked, "refused", "refused", "\n");
	fprintf(f, "%s", pad);
	print_count(f, s->destinations >= 0 ? s->destinations : distinct_destinations(d),
		    "distinct destination", "distinct destinations", ", ");
	print_count(f, (long long)d->n_events, "event", "events", ", ");
	print_count(f, s->dropped_records, "dropped record", "dropped records", "\n");
violations:
	fprintf(f, "%sViolations%s ", b, e);
	r = print_violations(f, d, pad);
	if (r < 0)
		return r;
	if (d->n_events) {
		fputc('\n', f);
		r = print_table(f, d, color);
		if (r < 0)
			return r;
	}
	if (d->n_notes) {
		fprintf(f, "\n%sNotes%s\n", b, e);
		for (size_t i = 0; i < d->n_notes; i++) {
			_cleanup_free_ char *n = rdoc_clean(d->notes[i]);

			fprintf(f, "  - %s\n", n ? n : "?");
		}
	}
	return 0;
}

/* ---- json ---- */

static int gen_out(FILE *f, yajl_gen g)
{
	const unsigned char *out;
	size_t len;

	if (yajl_gen_get_buf(g, &out, &len) != yajl_gen_status_ok)
		return -EINVAL;
	if (fwrite(out, 1, len, f) != len)
		return -EIO;
	if (len == 0 || out[len - 1] != '\n')
		fputc('\n', f);
	return 0;
}

int rdoc_print_json(FILE *f, const struct rdoc *d)
{
	_cleanup_yajl_gen_ yajl_gen g = yajl_gen_alloc(NULL);
	int r;

	if (!g)
		return -ENOMEM;
	yajl_gen_config(g, yajl_gen_beautify, 1);
	yajl_gen_config(g, yajl_gen_validate_utf8, 1);
	r = json_emit_value(g, d->root);
	if (r < 0)
		return r;
	return gen_out(f, g);
}

/* ---- junit ---- */

/* XML 1.0 text: escape markup, and characters XML cannot carry at all become '?'. */
static void xml_put(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		switch (c) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&apos;", f);
			break;
		case '\t':
			fputs("&#9;", f);
			break;
		case '\n':
			fputs("&#10;", f);
			break;
		case '\r':
			fputs("&#13;", f);
			break;
		default:
			fputc(c < 0x20 || c == 0x7f ? '?' : c, f);
		}
	}
}

static void xml_attr(FILE *f, const char *name, const char *value)
{
	fprintf(f, " %s=\"", name);
	xml_put(f, value);
	fputc('"', f);
}

/* "2026-11-24T09:19:33.402Z" -> "2026-11-24T09:19:33": JUnit's timestamp has no zone. */
static void junit_timestamp(const char *s, char *buf, size_t len)
{
	unsigned long long ns;

	buf[0] = '\0';
	if (rdoc_parse_time(s, &ns) == 0 && strlen(s) >= 19)
		snprintf(buf, len, "%.19s", s);
}

static char *violation_message(const struct rdoc_event *ev)
{
	_cleanup_free_ char *dest = rdoc_event_dest(ev), *proc = rdoc_event_process(ev, 1);
	char *out;

	if (!dest || !proc)
		return NULL;
	if (asprintf(&out, "%s: %s %s %s, %lld time%s, by %s; rule %s", ev->verdict,
		     ev->proto ? ev->proto : "?", is_dns(ev) ? "question for" : "connection to",
		     dest, ev->count, ev->count == 1 ? "" : "s", proc,
		     ev->rule ? ev->rule : "?") < 0)
		return NULL;
	return out;
}

int rdoc_print_junit(FILE *f, const struct rdoc *d)
{
	unsigned long long a, b;
	char ts[32], num[32], cls[200];
	size_t failures = 0;

	for (size_t i = 0; i < d->n_events; i++)
		failures += rdoc_is_violation(&d->events[i]);
	snprintf(cls, sizeof(cls), "depfence.%s", d->id ? d->id : "report");
	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites", f);
	xml_attr(f, "name", "depfence");
	snprintf(num, sizeof(num), "%zu", d->n_events);
	xml_attr(f, "tests", num);
	snprintf(num, sizeof(num), "%zu", failures);
	xml_attr(f, "failures", num);
	xml_attr(f, "errors", "0");
	fputs(">\n  <testsuite", f);
	{
		_cleanup_free_ char *name = NULL;

		if (asprintf(&name, "depfence %s", d->id ? d->id : "report") < 0)
			return -ENOMEM;
		xml_attr(f, "name", name);
	}
	snprintf(num, sizeof(num), "%zu", d->n_events);
	xml_attr(f, "tests", num);
	snprintf(num, sizeof(num), "%zu", failures);
	xml_attr(f, "failures", num);
	xml_attr(f, "errors", "0");
	xml_attr(f, "skipped", "0");
	junit_timestamp(d->started_at, ts, sizeof(ts));
	if (ts[0])
		xml_attr(f, "timestamp", ts);
	if (rdoc_parse_time(d->started_at, &a) == 0 && rdoc_parse_time(d->stopped_at, &b) == 0 &&
	    b >= a) {
		snprintf(num, sizeof(num), "%.3f", (double)(b - a) / 1e9);
		xml_attr(f, "time", num);
	}
	fputs(">\n    <properties>\n", f);
	{
		const char *props[][2] = {
			{ "id", d->id },	   { "label", d->label },   { "kind", d->kind },
			{ "command", d->command }, { "cgroup", d->cgroup }, { "mode", d->mode },
			{ "default", d->def },	   { "report", d->path },
		};

		for (size_t i = 0; i < ARRAY_SIZE(props); i++) {
			if (!props[i][1])
				continue;
			fputs("      <property", f);
			xml_attr(f, "name", props[i][0]);
			xml_attr(f, "value", props[i][1]);
			fputs("/>\n", f);
		}
	}
	fputs("    </properties>\n", f);
	for (size_t i = 0; i < d->n_events; i++) {
		const struct rdoc_event *ev = &d->events[i];
		_cleanup_free_ char *dest = rdoc_event_dest(ev), *proc = rdoc_event_process(ev, 1),
				    *who = rdoc_event_process(ev, 0), *name = NULL, *msg = NULL;

		/* no pid in the name: the same call is the same test case from run to run */
		if (!dest || !proc || !who ||
		    asprintf(&name, "%s %s by %s",
			     is_dns(ev)	 ? "dns"
			     : ev->proto ? ev->proto
					 : "?",
			     dest, who) < 0)
			return -ENOMEM;
		fputs("    <testcase", f);
		xml_attr(f, "classname", cls);
		xml_attr(f, "name", name);
		xml_attr(f, "time", "0");
		if (!rdoc_is_violation(ev)) {
			fputs("/>\n", f);
			continue;
		}
		msg = violation_message(ev);
		if (!msg)
			return -ENOMEM;
		fputs(">\n      <failure", f);
		xml_attr(f, "type", ev->verdict);
		xml_attr(f, "message", msg);
		fputs(">", f);
		{
			const char *lines[][2] = {
				{ "verdict", ev->verdict },	{ "hook", ev->hook },
				{ "proto", ev->proto },		{ "destination", dest },
				{ "rule", ev->rule },		{ "first_seen", ev->first_seen },
				{ "last_seen", ev->last_seen }, { "process", proc },
				{ "cmdline", ev->cmdline },	{ "exe", ev->exe },
			};

			for (size_t k = 0; k < ARRAY_SIZE(lines); k++) {
				if (!lines[k][1])
					continue;
				fprintf(f, "%s: ", lines[k][0]);
				xml_put(f, lines[k][1]);
				fputs("&#10;", f);
			}
			fprintf(f, "count: %lld", ev->count);
		}
		fputs("</failure>\n    </testcase>\n", f);
	}
	fputs("  </testsuite>\n</testsuites>\n", f);
	return 0;
}

/* ---- sarif ---- */

struct sarif_rule {
	char *id;
	const char *text, *verdict, *source;
};

static ssize_t sarif_find(const struct sarif_rule *rs, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(rs[i].id, id))
			return (ssize_t)i;
	return -1;
}

/* The rule an event names: "deny:TEXT", "default:deny". */
static char *event_rule_id(const struct rdoc *d, const struct rdoc_event *ev)
{
	const char *rule = ev->rule ? ev->rule : "unknown";
	char *id;

	if (!strcmp(rule, "default")) {
		if (asprintf(&id, "default:%s", d->def ? d->def : "unknown") < 0)
			return NULL;
		return id;
	}
	if (asprintf(&id, "%s:%s", !strcmp(ev->verdict, "allowed") ? "allow" : "deny", rule) < 0)
		return NULL;
	return id;
}

/* A relative URI reference for a path: unreserved characters and '/' stay, the rest is %XX. */
static char *path_uri(const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	if (path[0] == '/')
		fputs("file://", f);
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~/", *p))
			fputc(*p, f);
		else
			fprintf(f, "%%%02X", *p);
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static int sarif_rules(const struct rdoc *d, struct sarif_rule **ret, size_t *ret_n)
{
	struct sarif_rule *rs = calloc(d->n_rules + d->n_events + 2, sizeof(*rs));
	size_t n = 0;

	if (!rs)
		return -ENOMEM;
	for (size_t i = 0; i < d->n_rules; i++) {
		char *id;

		if (asprintf(&id, "%s:%s", d->rules[i].verdict ? d->rules[i].verdict : "unknown",
			     d->rules[i].rule) < 0)
			goto nomem;
		if (sarif_find(rs, n, id) >= 0) {
			free(id);
			continue;
		}
		rs[n++] = (struct sarif_rule){ id, d->rules[i].rule, d->rules[i].verdict,
					       d->rules[i].source };
	}
	{
		char *id;

		if (asprintf(&id, "default:%s", d->def ? d->def : "unknown") < 0)
			goto nomem;
		rs[n++] = (struct sarif_rule){ id, "default", d->def, "the policy default" };
	}
	/* rules the events name that the policy section does not list */
	for (size_t i = 0; i < d->n_events; i++) {
		char *id = event_rule_id(d, &d->events[i]);

		if (!id)
			goto nomem;
		if (sarif_find(rs, n, id) >= 0) {
			free(id);
			continue;
		}
		rs[n++] =
			(struct sarif_rule){ id, d->events[i].rule ? d->events[i].rule : "unknown",
					     NULL, NULL };
	}
	*ret = rs;
	*ret_n = n;
	return 0;
nomem:
	for (size_t i = 0; i < n; i++)
		free(rs[i].id);
	free(rs);
	return -ENOMEM;
}

static void jg_key_open_map(yajl_gen g, const char *k, int *r)
{
	*r |= jg_str(g, k);
	yajl_gen_map_open(g);
}

static void jg_message(yajl_gen g, const char *key, const char *text, int *r)
{
	jg_key_open_map(g, key, r);
	*r |= jg_key_str(g, "text", text);
	yajl_gen_map_close(g);
}

int rdoc_print_sarif(FILE *f, const struct rdoc *d)
{
	_cleanup_yajl_gen_ yajl_gen g = yajl_gen_alloc(NULL);
	_cleanup_free_ char *uri = path_uri(d->path[0] ? d->path : "report.json");
	struct sarif_rule *rs = NULL;
	size_t nrs = 0;
	int r = 0;

	if (!g || !uri)
		return -ENOMEM;
	r = sarif_rules(d, &rs, &nrs);
	if (r < 0)
		return r;
	yajl_gen_config(g, yajl_gen_beautify, 1);
	yajl_gen_config(g, yajl_gen_validate_utf8, 1);
	yajl_gen_map_open(g);
	r |= jg_key_str(g, "$schema", "https://json.schemastore.org/sarif-2.1.0.json");
	r |= jg_key_str(g, "version", "2.1.0");
	r |= jg_str(g, "runs");
	yajl_gen_array_open(g);
	yajl_gen_map_open(g);

	jg_key_open_map(g, "tool", &r);
	jg_key_open_map(g, "driver", &r);
	r |= jg_key_str(g, "name", "depfence");
	r |= jg_key_str(g, "semanticVersion", DF_VERSION);
	r |= jg_str(g, "rules");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < nrs; i++) {
		_cleanup_free_ char *desc = NULL;
		int is_default = !strncmp(rs[i].id, "default:", 8);

		if (is_default)
			r |= asprintf(&desc, "no rule matched: the policy default (%s) decided",
				      d->def ? d->def : "unknown") < 0;
		else
			r |= asprintf(&desc, "%s %s%s%s%s", rs[i].verdict ? rs[i].verdict : "rule",
				      rs[i].text, rs[i].source ? " (from " : "",
				      rs[i].source ? rs[i].source : "",
				      rs[i].source ? ")" : "") < 0;
		yajl_gen_map_open(g);
		r |= jg_key_str(g, "id", rs[i].id);
		r |= jg_key_str(g, "name", is_default ? "default" : rs[i].text);
		jg_message(g, "shortDescription", desc ? desc : "", &r);
		jg_key_open_map(g, "defaultConfiguration", &r);
		r |= jg_key_str(g, "level",
				rs[i].verdict && !strcmp(rs[i].verdict, "allow") ? "none"
										 : "error");
		yajl_gen_map_close(g);
		jg_key_open_map(g, "properties", &r);
		r |= jg_key_str(g, "verdict", rs[i].verdict);
		r |= jg_key_str(g, "source", rs[i].source);
		yajl_gen_map_close(g);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g); /* driver */
	yajl_gen_map_close(g); /* tool */

	r |= jg_str(g, "invocations");
	yajl_gen_array_open(g);
	yajl_gen_map_open(g);
	r |= jg_key_bool(g, "executionSuccessful", 1);
	if (d->started_at)
		r |= jg_key_str(g, "startTimeUtc", d->started_at);
	if (d->stopped_at)
		r |= jg_key_str(g, "endTimeUtc", d->stopped_at);
	yajl_gen_map_close(g);
	yajl_gen_array_close(g);

	r |= jg_str(g, "results");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < d->n_events; i++) {
		const struct rdoc_event *ev = &d->events[i];
		_cleanup_free_ char *rid = NULL, *msg = NULL, *fp = NULL, *proc = NULL;

		if (!rdoc_is_violation(ev))
			continue;
		rid = event_rule_id(d, ev);
		msg = violation_message(ev);
		proc = rdoc_event_process(ev, 1);
		if (!rid || !msg || !proc ||
		    asprintf(&fp, "%s|%s|%s|%s|%lld|%s|%s", ev->verdict, ev->hook ? ev->hook : "",
			     ev->proto ? ev->proto : "",
			     ev->name	 ? ev->name
			     : ev->daddr ? ev->daddr
					 : "",
			     ev->dport, ev->rule ? ev->rule : "", ev->comm ? ev->comm : "") < 0) {
			r = -ENOMEM;
			break;
		}
		yajl_gen_map_open(g);
		r |= jg_key_str(g, "ruleId", rid);
		r |= jg_key_int(g, "ruleIndex", (long long)sarif_find(rs, nrs, rid));
		r |= jg_key_str(g, "kind", "fail");
		r |= jg_key_str(g, "level", !strcmp(ev->verdict, "blocked") ? "error" : "warning");
		jg_message(g, "message", msg, &r);
		r |= jg_str(g, "locations");
		yajl_gen_array_open(g);
		yajl_gen_map_open(g);
		jg_key_open_map(g, "physicalLocation", &r);
		jg_key_open_map(g, "artifactLocation", &r);
		r |= jg_key_str(g, "uri", uri);
		yajl_gen_map_close(g);
		yajl_gen_map_close(g);
		yajl_gen_map_close(g);
		yajl_gen_array_close(g);
		jg_key_open_map(g, "partialFingerprints", &r);
		r |= jg_key_str(g, "depfenceEvent/v1", fp);
		yajl_gen_map_close(g);
		jg_key_open_map(g, "properties", &r);
		r |= jg_key_str(g, "verdict", ev->verdict);
		r |= jg_key_str(g, "hook", ev->hook);
		r |= jg_key_str(g, "proto", ev->proto);
		r |= jg_key_str(g, "daddr", ev->daddr);
		r |= jg_key_int(g, "dport", ev->dport);
		r |= jg_key_str(g, "name", ev->name);
		r |= jg_key_str(g, "rule", ev->rule);
		r |= jg_key_int(g, "count", ev->count);
		r |= jg_key_str(g, "first_seen", ev->first_seen);
		r |= jg_key_str(g, "last_seen", ev->last_seen);
		r |= jg_key_str(g, "process", proc);
		yajl_gen_map_close(g);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);

	jg_key_open_map(g, "properties", &r);
	r |= jg_key_str(g, "id", d->id);
	r |= jg_key_str(g, "label", d->label);
	r |= jg_key_str(g, "kind", d->kind);
	r |= jg_key_str(g, "command", d->command);
	r |= jg_key_str(g, "mode", d->mode);
	r |= jg_key_str(g, "default", d->def);
	yajl_gen_map_close(g);

	yajl_gen_map_close(g); /* run */
	yajl_gen_array_close(g);
	if (yajl_gen_map_close(g) != yajl_gen_status_ok && r >= 0)
		r = -EINVAL;
	for (size_t i = 0; i < nrs; i++)
		free(rs[i].id);
	free(rs);
	if (r)
		return r < 0 ? r : -EINVAL;
	return gen_out(f, g);
}
