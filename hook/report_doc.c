// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Reading a depfence.report/v1 document back, for depfence report. */
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include "report.h"
#include "report_doc.h"

void rdoc_free(struct rdoc *d)
{
	for (size_t i = 0; i < d->n_events; i++)
		free(d->events[i].chain);
	free(d->events);
	free(d->rules);
	free(d->notes);
	if (d->root)
		yajl_tree_free(d->root);
	memset(d, 0, sizeof(*d));
}

/* A failure inside ctx ("events[3]", "summary"): the message names the file, the place and the key. */
static int fail_at(struct df_error *e, int r, const char *what, const char *ctx)
{
	if (e) {
		char inner[DF_ERRBUF];

		snprintf(inner, sizeof(inner), "%s", e->msg);
		df_fail(e, r, "%s: %s%s%s", what, ctx, ctx[0] ? ": " : "", inner);
	}
	return r;
}

/* Absent or null: *ret = NULL. */
static int opt_str(yajl_val o, const char *key, const char **ret, struct df_error *e)
{
	int r = json_get_string(o, key, ret, e);

	if (r == -ENOENT) {
		*ret = NULL;
		return 0;
	}
	return r;
}

/* Absent or null: *ret = def. */
static int opt_int(yajl_val o, const char *key, long long def, long long *ret, struct df_error *e)
{
	int r = json_get_int(o, key, ret, e);

	if (r == -ENOENT) {
		*ret = def;
		return 0;
	}
	return r;
}

/* "deploy.sh → servicectl → curl": the ancestry (strings, or objects with "comm"), then the process. */
static int build_chain(yajl_val proc, struct rdoc_event *ev, struct df_error *e)
{
	yajl_val anc, last = NULL;
	size_t n, len = 0;
	char *out;
	int r;

	r = json_get_array(proc, "ancestry", &anc, e);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	n = json_array_len(anc);
	if (n == 0)
		return 0;
	/* first pass: validate and measure */
	for (size_t i = 0; i < n; i++) {
		yajl_val a = json_array_at(anc, i);
		const char *c = json_string(a);

		if (!c && json_is_object(a) && opt_str(a, "comm", &c, e) < 0)
			return df_fail(e, -EINVAL,
				       "process: ancestry[%zu]: key \"comm\": expected a string",
				       i);
		if (!c && !json_is_object(a))
			return df_fail(
				e, -EINVAL,
				"process: ancestry[%zu]: expected a string or an object with \"comm\"",
				i);
		len += (c ? strlen(c) : 1) + 5;
		last = a;
	}
	len += (ev->comm ? strlen(ev->comm) : 1) + 5;
	out = malloc(len + 1);
	if (!out)
		return -ENOMEM;
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		yajl_val a = json_array_at(anc, i);
		const char *c = json_string(a);

		if (!c)
			json_get_string(a, "comm", &c, NULL);
		if (i)
			strcat(out, " \u2192 ");
		strcat(out, c ? c : "?");
	}
	/* the chain ends at the process itself unless the ancestry already does */
	{
		const char *lc = json_string(last);
		long long lpid = -1;
		int self;

		if (!lc)
			json_get_string(last, "comm", &lc, NULL);
		if (json_is_object(last))
			json_get_int(last, "pid", &lpid, NULL);
		if (lpid >= 0 && ev->pid >= 0)
			self = lpid == ev->pid;
		else
			self = lc && ev->comm && !strcmp(lc, ev->comm);
		if (!self && ev->comm) {
			strcat(out, " \u2192 ");
			strcat(out, ev->comm);
		}
	}
	ev->chain = out;
	return 0;
}

static int parse_event(yajl_val o, struct rdoc_event *ev, struct df_error *e)
{
	const char *chain;
	yajl_val proc;
	int r, b;

	if (!json_is_object(o))
		return df_fail(e, -EINVAL, "expected an object");
	if ((r = opt_str(o, "verdict", &ev->verdict, e)) < 0 ||
	    (r = opt_str(o, "hook", &ev->hook, e)) < 0 ||
	    (r = opt_str(o, "proto", &ev->proto, e)) < 0 ||
	    (r = opt_str(o, "daddr", &ev->daddr, e)) < 0 ||
	    (r = opt_str(o, "name", &ev->name, e)) < 0 ||
	    (r = opt_str(o, "rule", &ev->rule, e)) < 0 ||
	    (r = opt_str(o, "qtype", &ev->qtype, e)) < 0 ||
	    (r = opt_str(o, "first_seen", &ev->first_seen, e)) < 0 ||
	    (r = opt_str(o, "last_seen", &ev->last_seen, e)) < 0 ||
	    (r = opt_int(o, "dport", 0, &ev->dport, e)) < 0 ||
	    (r = opt_int(o, "count", 1, &ev->count, e)) < 0)
		return r;
	if (!ev->verdict)
		return df_fail(e, -EINVAL, "key \"verdict\" is missing");
	if (ev->dport < 0 || ev->dport > 65535)
		return df_fail(e, -ERANGE, "key \"dport\": %lld is not a port", ev->dport);
	if (ev->count < 0)
		return df_fail(e, -ERANGE, "key \"count\": %lld is negative", ev->count);
	r = json_get_bool(o, "unparsable", &b, e);
	if (r < 0 && r != -ENOENT)
		return r;
	ev->unparsable = r == 0 && b;
	ev->pid = -1;
	r = json_get_object(o, "process", &proc, e);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	if ((r = opt_int(proc, "pid", -1, &ev->pid, e)) < 0 ||
	    (r = opt_str(proc, "comm", &ev->comm, e)) < 0 ||
	    (r = opt_str(proc, "cmdline", &ev->cmdline, e)) < 0 ||
	    (r = opt_str(proc, "exe", &ev->exe, e)) < 0) {
		char inner[DF_ERRBUF];

		if (e) {
			snprintf(inner, sizeof(inner), "%s", e->msg);
			df_fail(e, r, "process: %s", inner);
		}
		return r;
	}
	r = build_chain(proc, ev, e);
	if (r < 0 || ev->chain)
		return r;
	/* no ancestry: a chain the writer put as text, if any */
	r = opt_str(proc, "chain", &chain, e);
	if (r < 0)
		return r;
	if (chain && chain[0] && !(ev->chain = strdup(chain)))
		return -ENOMEM;
	return 0;
}

static int parse_policy(yajl_val root, struct rdoc *d, struct df_error *e)
{
	static const char *const lists[] = { "deny", "allow" };
	yajl_val pol, rules, l;
	size_t n = 0;
	int r;

	r = json_get_object(root, "policy", &pol, e);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	r = json_get_array(pol, "rules", &rules, e);
	if (r < 0 && r != -ENOENT)
		return fail_at(e, r, "policy", "");
	if (r == 0) {
		d->rules = calloc(json_array_len(rules) + 1, sizeof(*d->rules));
		if (!d->rules)
			return -ENOMEM;
		for (size_t i = 0; i < json_array_len(rules); i++) {
			yajl_val o = json_array_at(rules, i);
			struct rdoc_rule *ru = &d->rules[d->n_rules];
			char ctx[48];

			snprintf(ctx, sizeof(ctx), "policy: rules[%zu]", i);
			if (!json_is_object(o))
				return df_fail(e, -EINVAL, "%s: expected an object", ctx);
			if ((r = opt_str(o, "rule", &ru->rule, e)) < 0 ||
			    (r = opt_str(o, "verdict", &ru->verdict, e)) < 0 ||
			    (r = opt_str(o, "source", &ru->source, e)) < 0)
				return fail_at(e, r, ctx, "");
			if (!ru->rule)
				return df_fail(e, -EINVAL, "%s: key \"rule\" is missing", ctx);
			d->n_rules++;
		}
		return 0;
	}
	/* no "rules": the deny and allow lists, without sources */
	for (size_t k = 0; k < ARRAY_SIZE(lists); k++)
		if (json_get_array(pol, lists[k], &l, NULL) == 0)
			n += json_array_len(l);
	d->rules = calloc(n + 1, sizeof(*d->rules));
	if (!d->rules)
		return -ENOMEM;
	for (size_t k = 0; k < ARRAY_SIZE(lists); k++) {
		r = json_get_array(pol, lists[k], &l, e);
		if (r == -ENOENT)
			continue;
		if (r < 0)
			return fail_at(e, r, "policy", "");
		for (size_t i = 0; i < json_array_len(l); i++) {
			const char *s = json_string(json_array_at(l, i));

			if (!s)
				return df_fail(e, -EINVAL, "policy: %s[%zu]: expected a string",
					       lists[k], i);
			d->rules[d->n_rules++] = (struct rdoc_rule){ s, lists[k], NULL };
		}
	}
	return 0;
}

static int parse_summary(yajl_val root, struct rdoc_summary *s, struct df_error *e)
{
	static const struct {
		const char *key;
		size_t off;
	} keys[] = {
		{ "connections", offsetof(struct rdoc_summary, connections) },
		{ "allowed", offsetof(struct rdoc_summary, allowed) },
		{ "would_block", offsetof(struct rdoc_summary, would_block) },
		{ "blocked", offsetof(struct rdoc_summary, blocked) },
		{ "dns_queries", offsetof(struct rdoc_summary, dns_queries) },
		{ "dns_blocked", offsetof(struct rdoc_summary, dns_blocked) },
		{ "dropped_records", offsetof(struct rdoc_summary, dropped_records) },
		{ "destinations", offsetof(struct rdoc_summary, destinations) },
	};
	yajl_val sum = NULL;
	int r;

	r = json_get_object(root, "summary", &sum, e);
	if (r < 0 && r != -ENOENT)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		long long *p = (long long *)((char *)s + keys[i].off);

		r = opt_int(sum, keys[i].key, -1, p, e);
		if (r < 0)
			return fail_at(e, r, "summary", "");
	}
	return 0;
}

int rdoc_parse(const char *buf, const char *what, struct rdoc *ret, struct df_error *e)
{
	static const struct {
		const char *key;
		size_t off;
	} strs[] = {
		{ "id", offsetof(struct rdoc, id) },
		{ "label", offsetof(struct rdoc, label) },
		{ "kind", offsetof(struct rdoc, kind) },
		{ "command", offsetof(struct rdoc, command) },
		{ "cgroup", offsetof(struct rdoc, cgroup) },
		{ "mode", offsetof(struct rdoc, mode) },
		{ "default", offsetof(struct rdoc, def) },
		{ "started_at", offsetof(struct rdoc, started_at) },
		{ "stopped_at", offsetof(struct rdoc, stopped_at) },
	};
	struct rdoc d = {};
	yajl_val events, notes, lost;
	int r;

	r = json_parse(buf, what, &d.root, e);
	if (r < 0)
		return r;
	if (!json_is_object(d.root)) {
		r = df_fail(e, -EINVAL, "%s: expected a JSON object (a depfence report)", what);
		goto fail;
	}
	r = json_get_string(d.root, "schema", &d.schema, e);
	if (r == -ENOENT) {
		r = df_fail(e, -EINVAL, "%s: key \"schema\" is missing: not a depfence report",
			    what);
		goto fail;
	}
	if (r < 0)
		goto fail_ctx;
	if (strcmp(d.schema, DF_REPORT_SCHEMA)) {
		r = df_fail(e, -EINVAL, "%s: key \"schema\": \"%.80s\" is not %s", what, d.schema,
			    DF_REPORT_SCHEMA);
		goto fail;
	}
	for (size_t i = 0; i < ARRAY_SIZE(strs); i++) {
		r = opt_str(d.root, strs[i].key, (const char **)((char *)&d + strs[i].off), e);
		if (r < 0)
			goto fail_ctx;
	}
	r = parse_policy(d.root, &d, e);
	if (r < 0)
		goto fail_ctx;
	r = parse_summary(d.root, &d.sum, e);
	if (r < 0)
		goto fail_ctx;

	r = json_get_array(d.root, "events", &events, e);
	if (r < 0 && r != -ENOENT)
		goto fail_ctx;
	if (r == 0 && json_array_len(events)) {
		d.events = calloc(json_array_len(events), sizeof(*d.events));
		if (!d.events) {
			r = -ENOMEM;
			goto fail;
		}
		for (size_t i = 0; i < json_array_len(events); i++) {
			char ctx[32];

			r = parse_event(json_array_at(events, i), &d.events[i], e);
			d.n_events = i + 1; /* the chain is owned from here */
			if (r < 0) {
				snprintf(ctx, sizeof(ctx), "events[%zu]", i);
				fail_at(e, r, what, ctx);
				goto fail;
			}
		}
	}

	/* an incomplete report: which of the fence's maps were gone */
	r = json_get_array(d.root, "records_lost", &lost, e);
	if (r < 0 && r != -ENOENT)
		goto fail_ctx;
	if (r == 0)
		d.records_lost = json_array_len(lost);

	r = json_get_array(d.root, "notes", &notes, e);
	if (r < 0 && r != -ENOENT)
		goto fail_ctx;
	if (r == 0) {
		d.notes = calloc(json_array_len(notes) + 1, sizeof(*d.notes));
		if (!d.notes) {
			r = -ENOMEM;
			goto fail;
		}
		for (size_t i = 0; i < json_array_len(notes); i++) {
			const char *s = json_string(json_array_at(notes, i));

			if (!s) {
				r = df_fail(e, -EINVAL, "%s: notes[%zu]: expected a string", what,
					    i);
				goto fail;
			}
			d.notes[d.n_notes++] = s;
		}
	}
	*ret = d;
	return 0;

fail_ctx:
	fail_at(e, r, what, "");
fail:
	rdoc_free(&d);
	return r;
}

static int read_report(int dirfd, const char *path, char **ret, struct df_error *e)
{
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r;

	if (!strcmp(path, "-"))
		fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
	else if (dirfd >= 0)
		fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	else
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return df_fail(e, -errno, "open %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0)
		return df_fail(e, -errno, "stat %s: %s", path, strerror(errno));
	if (S_ISDIR(st.st_mode))
		return df_fail(e, -EISDIR, "%s: is a directory, not a report", path);
	if (S_ISREG(st.st_mode) && st.st_size > RDOC_MAX)
		return df_fail(e, -E2BIG,
			       "%s: %lld bytes; reports larger than %d bytes are refused", path,
			       (long long)st.st_size, RDOC_MAX);
	r = read_fd_capped(fd, RDOC_MAX, ret, NULL);
	if (r == -E2BIG)
		return df_fail(e, r, "%s: larger than %d bytes; reports that large are refused",
			       path, RDOC_MAX);
	if (r < 0)
		return df_fail(e, r, "read %s: %s", path, strerror(-r));
	return 0;
}

int rdoc_load(const char *arg, struct rdoc *ret, struct df_error *e)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_close_ int dfd = -1;
	struct df_host_config hc;
	char path[4096], name[160];
	struct stat st;
	int r;

	if (!strcmp(arg, "-") || strchr(arg, '/') || stat(arg, &st) == 0) {
		if (strlen(arg) >= sizeof(path))
			return df_fail(e, -ENAMETOOLONG, "report path too long");
		snprintf(path, sizeof(path), "%s", arg);
		r = read_report(-1, arg, &buf, e);
		if (r < 0)
			return r;
	} else {
		/* not a file here: a report id in the report dir */
		if (safe_id(arg) < 0)
			return df_fail(
				e, -EINVAL,
				"\"%.80s\": no such file, and not a report id (1-128 of A-Z a-z 0-9 . _ - +, not starting with '.')",
				arg);
		r = df_config_load(&hc, e);
		if (r < 0)
			return r;
		snprintf(name, sizeof(name), "%s.json", arg);
		snprintf(path, sizeof(path), "%s/%s", hc.report_dir, name);
		dfd = open(hc.report_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return df_fail(e, -errno, "\"%s\": no such file, and report dir %s: %s",
				       arg, hc.report_dir, strerror(errno));
		if (faccessat(dfd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
			return df_fail(e, -ENOENT, "\"%s\": no such file, and no report %s", arg,
				       path);
		r = read_report(dfd, name, &buf, e);
		if (r < 0) {
			if (e) {
				char inner[DF_ERRBUF];

				snprintf(inner, sizeof(inner), "%s", e->msg);
				df_fail(e, r, "%s/%s", hc.report_dir, inner);
			}
			return r;
		}
	}
	r = rdoc_parse(buf, path, ret, e);
	if (r < 0)
		return r;
	snprintf(ret->path, sizeof(ret->path), "%s", path);
	return 0;
}

int rdoc_is_violation(const struct rdoc_event *ev)
{
	return !strcmp(ev->verdict, "blocked") || !strcmp(ev->verdict, "would-block");
}

int rdoc_parse_time(const char *s, unsigned long long *ret_ns)
{
	struct tm tm = {};
	unsigned int frac = 0, digits = 0;
	const char *p;
	time_t t;

	if (!s)
		return -EINVAL;
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p)
		return -EINVAL;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++)
			if (digits < 9) {
				frac = frac * 10 + (unsigned int)(*p - '0');
				digits++;
			}
	}
	if (strcmp(p, "Z"))
		return -EINVAL;
	for (; digits < 9; digits++)
		frac *= 10;
	t = timegm(&tm);
	if (t < 0)
		return -EINVAL;
	*ret_ns = (unsigned long long)t * 1000000000ULL + frac;
	return 0;
}
