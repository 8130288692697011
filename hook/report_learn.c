// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * depfence report --format policy: the allow-list that lets through exactly
 * what a report saw, with everything else denied. Names are preferred where
 * the event has one (a connection to an address a DNS answer gave for NAME
 * becomes PROTO/NAME:PORT, which also lets the question for NAME through); a
 * question for a name the job never connected to becomes the bare name; the
 * resolver and every destination without a name become PROTO/ADDR:PORT.
 */
#include <arpa/inet.h>

#include "policy.h"
#include "report_doc.h"

struct learned {
	struct df_rule *rules;
	size_t n, cap;
	FILE *notes; /* comment lines */
	size_t n_notes;
};

static void learned_free(struct learned *l)
{
	for (size_t i = 0; i < l->n; i++)
		df_rule_free(&l->rules[i]);
	free(l->rules);
}

/* Parse and keep a rule unless an equal one is kept; 0, or -EINVAL when text is not a rule. */
static int learn(struct learned *l, const char *text, struct df_error *e)
{
	struct df_rule r;
	int err;

	err = df_rule_parse(text, DF_ALLOW, &r, e);
	if (err < 0)
		return err;
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->rules[i].text, r.text)) {
			df_rule_free(&r);
			return 0;
		}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct df_rule *nr = realloc(l->rules, cap * sizeof(*nr));

		if (!nr) {
			df_rule_free(&r);
			return -ENOMEM;
		}
		l->rules = nr;
		l->cap = cap;
	}
	l->rules[l->n++] = r;
	return 0;
}

static const char *proto_prefix(const char *proto)
{
	if (proto && !strcmp(proto, "tcp"))
		return "tcp/";
	if (proto && !strcmp(proto, "udp"))
		return "udp/";
	return ""; /* another protocol: the rule covers every protocol */
}

/* PROTO/ADDR:PORT, or PROTO/NET/24:PORT (/64 for IPv6) when grouping. */
static int address_rule(const struct rdoc_event *ev, int prefixes, char *buf, size_t len)
{
	unsigned char a[16];
	char addr[INET6_ADDRSTRLEN + 8], port[16] = "";
	int v6;

	if (!ev->daddr)
		return -EINVAL;
	v6 = strchr(ev->daddr, ':') != NULL;
	if (inet_pton(v6 ? AF_INET6 : AF_INET, ev->daddr, a) != 1)
		return -EINVAL;
	if (prefixes) {
		if (v6)
			memset(a + 8, 0, 8);
		else
			a[3] = 0;
	}
	inet_ntop(v6 ? AF_INET6 : AF_INET, a, addr, INET6_ADDRSTRLEN);
	if (prefixes)
		strcat(addr, v6 ? "/64" : "/24");
	if (ev->dport > 0)
		snprintf(port, sizeof(port), ":%lld", ev->dport);
	snprintf(buf, len, "%s%s%s%s%s%s", proto_prefix(ev->proto), v6 ? "[" : "", addr,
		 v6 ? "]" : "", port, "");
	return 0;
}

static int is_dns(const struct rdoc_event *ev)
{
	return ev->hook && !strcmp(ev->hook, "dns");
}

static void note(struct learned *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct learned *l, const char *fmt, ...)
{
	va_list ap;

	fputs("# note: ", l->notes);
	va_start(ap, fmt);
	vfprintf(l->notes, fmt, ap);
	va_end(ap);
	fputc('\n', l->notes);
	l->n_notes++;
}

static int learn_event(struct learned *l, const struct rdoc *d, size_t i, int prefixes)
{
	const struct rdoc_event *ev = &d->events[i];
	char text[DF_RULE_MAX_LEN + 64];
	struct df_error e = {};
	int r;

	if (ev->rule && !strcmp(ev->rule, "source-route")) {
		note(l,
		     "a source-routed packet (IPv6 routing header, IPv4 source route option) was seen: refused in enforce whatever the rules; no rule lets it through");
		return 0;
	}
	if (is_dns(ev)) {
		/* the resolver, reached the way the question went */
		if (address_rule(ev, prefixes, text, sizeof(text)) == 0) {
			r = learn(l, text, &e);
			if (r == -ENOMEM)
				return r;
		}
		if (!ev->name) {
			note(l,
			     "a DNS question that could not be parsed was seen; with default deny it is refused");
			return 0;
		}
		/* a connection to one of its addresses lets the question through too */
		for (size_t j = 0; j < d->n_events; j++)
			if (!is_dns(&d->events[j]) && d->events[j].name &&
			    !strcasecmp(d->events[j].name, ev->name))
				return 0;
		r = learn(l, ev->name, &e);
		if (r == -EINVAL) {
			_cleanup_free_ char *c = rdoc_clean(ev->name);

			note(l,
			     "the name \"%s\" is not expressible as a rule (%s); its question will be refused",
			     c ? c : "?", e.msg);
			return 0;
		}
		return r;
	}
	if (ev->name) {
		snprintf(text, sizeof(text), "%s%s", proto_prefix(ev->proto), ev->name);
		if (ev->dport > 0)
			snprintf(text + strlen(text), sizeof(text) - strlen(text), ":%lld",
				 ev->dport);
		r = learn(l, text, &e);
		if (r != -EINVAL)
			return r;
		/* not a rule: fall back to the address */
	}
	if (address_rule(ev, prefixes, text, sizeof(text)) < 0) {
		_cleanup_free_ char *c = rdoc_clean(ev->daddr);

		note(l, "event %zu: \"%s\" is not an address; skipped", i, c ? c : "(none)");
		return 0;
	}
	r = learn(l, text, &e);
	if (r == -EINVAL) {
		note(l, "event %zu: %s; skipped", i, e.msg);
		return 0;
	}
	return r;
}

/* Names first, then IPv4, then IPv6; by name or address, then protocol and port. */
static int cmp_learned(const void *pa, const void *pb)
{
	const struct df_rule *a = pa, *b = pb;
	static const int order[] = {
		[DF_TARGET_NAME] = 0, [DF_TARGET_CIDR4] = 1, [DF_TARGET_CIDR6] = 2
	};
	int c;

	if (a->target != b->target)
		return order[a->target] - order[b->target];
	if (a->target == DF_TARGET_NAME) {
		c = strcmp(a->name, b->name);
		if (!c)
			c = (int)a->name_kind - (int)b->name_kind;
	} else {
		c = memcmp(a->addr, b->addr, 16);
		if (!c)
			c = (int)a->prefixlen - (int)b->prefixlen;
	}
	if (c)
		return c;
	if (a->proto_mask != b->proto_mask)
		return (int)a->proto_mask - (int)b->proto_mask;
	if (a->port_lo != b->port_lo)
		return (int)a->port_lo - (int)b->port_lo;
	return (int)a->port_hi - (int)b->port_hi;
}

int rdoc_print_policy(FILE *f, const struct rdoc *d, int prefixes)
{
	struct learned l = {};
	_cleanup_free_ char *notes = NULL, *id = rdoc_clean(d->id ? d->id : "?"),
			    *cmd = rdoc_clean(d->command);
	size_t notes_len = 0;
	int r = 0;

	if (!id || !cmd)
		return -ENOMEM;
	l.notes = open_memstream(&notes, &notes_len);
	if (!l.notes)
		return -ENOMEM;
	if (d->mode && strcmp(d->mode, "observe"))
		note(&l,
		     "this report was recorded in %s mode, which records only what the policy refuses, not what it allowed: an observe-mode run gives the whole picture",
		     d->mode);
	if (d->sum.dropped_records > 0)
		note(&l,
		     "%lld records were dropped (the record map was full): destinations may be missing",
		     d->sum.dropped_records);
	for (size_t i = 0; i < d->n_events && r >= 0; i++)
		r = learn_event(&l, d, i, prefixes);
	/*
	 * Outside observe, what the policy allowed is not recorded; with default
	 * deny that is what its allow rules let through: keep them.
	 */
	if (r >= 0 && d->mode && strcmp(d->mode, "observe") && d->def && !strcmp(d->def, "deny")) {
		size_t kept = 0;

		for (size_t i = 0; i < d->n_rules && r >= 0; i++) {
			struct df_error e = {};

			if (!d->rules[i].verdict || strcmp(d->rules[i].verdict, "allow"))
				continue;
			r = learn(&l, d->rules[i].rule, &e);
			if (r == -EINVAL) {
				_cleanup_free_ char *c = rdoc_clean(d->rules[i].rule);

				note(&l, "the report's allow rule \"%s\" is not a rule: %s",
				     c ? c : "?", e.msg);
				r = 0;
				continue;
			}
			kept += r == 0;
		}
		if (kept)
			note(&l,
			     "kept the report's %zu allow rule%s: with default deny they let through what it did not record",
			     kept, kept == 1 ? "" : "s");
	}
	if (r >= 0 && fclose(l.notes) != 0)
		r = -errno;
	else if (r < 0)
		fclose(l.notes);
	l.notes = NULL;
	if (r < 0)
		goto out;
	qsort(l.rules, l.n, sizeof(*l.rules), cmp_learned);

	fprintf(f, "# depfence policy learned from report %s (%s mode, %s)\n", id,
		d->mode ? d->mode : "?", d->started_at ? d->started_at : "?");
	fprintf(f, "# %zu event%s -> %zu rule%s; default deny: anything else is refused\n",
		d->n_events, d->n_events == 1 ? "" : "s", l.n, l.n == 1 ? "" : "s");
	if (prefixes)
		fprintf(f, "# addresses grouped into /24 (IPv4) and /64 (IPv6) prefixes\n");
	if (notes_len)
		fputs(notes, f);
	fprintf(f,
		"\n# as annotations (pod metadata.annotations, podman --annotation, config.json):\n");
	fprintf(f, "depfence.io/mode: enforce\ndepfence.io/default: deny\n");
	fprintf(f, "depfence.io/allow: \"");
	for (size_t i = 0; i < l.n; i++)
		fprintf(f, "%s%s", i ? " " : "", l.rules[i].text);
	fprintf(f, "\"\n\n# as depfence run flags%s%s%s:\n", d->command ? " (the job was: " : "",
		d->command ? cmd : "", d->command ? ")" : "");
	fprintf(f, "depfence run --mode enforce --default deny");
	if (l.n) {
		fprintf(f, " --allow '");
		for (size_t i = 0; i < l.n; i++)
			fprintf(f, "%s%s", i ? " " : "", l.rules[i].text);
		fputc('\'', f);
	}
	fprintf(f, " -- CMD...\n");
out:
	learned_free(&l);
	return r;
}
