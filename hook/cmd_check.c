// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * depfence check: validate a policy without running anything, print it
 * normalized in the order precedence tries its rules, and explain which rule
 * decides for a destination (the verdicts come from df_policy_judge and
 * df_policy_judge_name, the references the kernel tables are checked against).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <getopt.h>

#include "../oci/json.h"
#include "../oci/json_emit.h"
#include "../oci/state.h"
#include "cli.h"
#include "profiles.h"

#define CHECK_ANN_MAX (1024 * 1024)
#define CHECK_RULES_MAX 1000000

static void check_usage(FILE *f)
{
	fprintf(f,
		"Usage: depfence check [OPTIONS]\n"
		"\n"
		"Validate a policy, print it normalized (rules in the order precedence tries\n"
		"them, with where each came from), and explain verdicts. Nothing is loaded.\n"
		"\n"
		"  --annotations FILE.json  a JSON object of annotations (a pod's\n"
		"                           metadata.annotations; an object holding\n"
		"                           \"annotations\" or \"metadata.annotations\" works too)\n"
		"  --container NAME         the container the annotations are read for: its\n"
		"                           NAME.depfence.io/ keys apply (Kubernetes); without\n"
		"                           it such keys are an error\n"
		"  --mode observe|audit|enforce, --default allow|deny\n"
		"  --deny RULES, --allow RULES     repeatable, comma or space separated\n"
		"  --profile NAMES          host profiles (<profiles_dir>/NAME.json)\n"
		"  --label TEXT\n"
		"  --explain DEST           which rule decides for DEST, and why; repeatable.\n"
		"                           DEST = [tcp/|udp/](ADDR:PORT | [ADDR6]:PORT | NAME[:PORT])\n"
		"  --json                   machine output\n"
		"  -h, --help               this text\n"
		"\n"
		"Flags apply after the annotations: --mode and --default override, rules add.\n"
		"The host config's admin policy (mode, default, deny, allow) applies under\n"
		"both, as the hook and run apply it: what would loosen it is invalid.\n"
		"Exit status: 0 the policy is valid, 1 it is not (the message names the key\n"
		"and the rule), 2 usage.\n");
}

/* ---- precedence, for display: the order policy.c decides with ---- */

static const struct df_policy *sort_policy;

static int cmp_index(const void *pa, const void *pb)
{
	size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
	int c = df_rule_cmp_precedence(&sort_policy->rules[a], &sort_policy->rules[b]);

	if (c)
		return c;
	return a < b ? -1 : a > b;
}

static size_t *precedence_order(const struct df_policy *p, const size_t *idx, size_t n)
{
	size_t *o = malloc((n + 1) * sizeof(*o));

	if (!o)
		return NULL;
	memcpy(o, idx, n * sizeof(*o));
	sort_policy = p;
	qsort(o, n, sizeof(*o), cmp_index);
	return o;
}

static const char *spec_words(int s)
{
	static const char *const w[] = { "no protocol or ports", "a protocol", "ports",
					 "a protocol and ports" };
	return w[s];
}

/* Why w decides over o (the next candidate). */
static void reason(const struct df_rule *w, const struct df_rule *o, char *buf, size_t len)
{
	if (!o) {
		snprintf(buf, len, "the only rule that matches");
		return;
	}
	if (w->target == DF_TARGET_NAME &&
	    (w->name_kind != o->name_kind || strcmp(w->name, o->name))) {
		if (w->name_kind != o->name_kind)
			snprintf(buf, len, "%s is more specific than %s",
				 w->name_kind == DF_NAME_EXACT ? "an exact name" : "\"*.\"",
				 o->name_kind == DF_NAME_ONE ? "\"*.\"" : "\"**.\"");
		else
			snprintf(buf, len, "the longer suffix (%s) is more specific than %s",
				 w->name, o->name);
	} else if (w->target != DF_TARGET_NAME && w->prefixlen != o->prefixlen) {
		snprintf(buf, len, "the longest prefix decides (/%u over /%u of %s)", w->prefixlen,
			 o->prefixlen, o->text);
	} else if (df_rule_specificity(w) != df_rule_specificity(o)) {
		snprintf(buf, len, "a rule with %s is more specific than one with %s (%s)",
			 spec_words(df_rule_specificity(w)), spec_words(df_rule_specificity(o)), o->text);
	} else if (w->port_hi - w->port_lo != o->port_hi - o->port_lo) {
		snprintf(buf, len, "the narrower port range decides (over %s)", o->text);
	} else if (w->verdict != o->verdict) {
		snprintf(buf, len, "as specific as %s: on a tie, deny wins", o->text);
	} else {
		snprintf(buf, len, "as specific as %s, with the same verdict", o->text);
	}
}

/* ---- does one rule match? (the reference judges, on a one-rule policy) ---- */

static struct df_policy one_rule(const struct df_rule *r)
{
	struct df_policy one;

	df_policy_init(&one);
	one.rules = (struct df_rule *)r;
	one.n_rules = 1;
	return one;
}

static int matches_addr(const struct df_rule *r, int fam, const uint8_t *addr, uint8_t pbit,
			uint16_t port)
{
	struct df_policy one = one_rule(r);
	uint8_t v;
	uint32_t id;

	df_policy_judge(&one, fam, addr, pbit, port, &v, &id);
	return id == 1;
}

static int matches_name(const struct df_rule *r, const char *name, uint8_t pbit, uint16_t port)
{
	struct df_policy one = one_rule(r);
	uint8_t v;
	uint32_t id;

	return df_policy_judge_name(&one, name, pbit, port, &v, &id) == 1;
}

/* A name rule that matches the name on some protocol and port. */
static int matches_name_any(const struct df_rule *r, const char *name)
{
	uint8_t pbit = r->proto_mask == DF_PROTO_ANY ? DF_PROTO_TCP : r->proto_mask;

	return matches_name(r, name, pbit, r->port_lo ? r->port_lo : 1);
}

/* ---- the destination to explain ---- */

struct dest {
	char text[DF_RULE_MAX_LEN + 16];
	uint8_t proto_mask; /* DF_PROTO_ANY when not given */
	int family;	    /* 4, 6, or 0 for a name */
	uint8_t addr[16];
	char name[DF_NAME_MAX_LEN + 2];
	uint16_t port; /* 0: not given */
};

static int parse_dest(const char *s, struct dest *d, struct df_error *e)
{
	char buf[DF_RULE_MAX_LEN + 16], *host, *colon;
	unsigned int port;

	memset(d, 0, sizeof(*d));
	snprintf(d->text, sizeof(d->text), "%s", s);
	if (strlen(s) >= sizeof(buf))
		return df_fail(e, -E2BIG, "--explain \"%.40s...\": too long", s);
	d->proto_mask = DF_PROTO_ANY;
	if (!strncasecmp(s, "tcp/", 4)) {
		d->proto_mask = DF_PROTO_TCP;
		s += 4;
	} else if (!strncasecmp(s, "udp/", 4)) {
		d->proto_mask = DF_PROTO_UDP;
		s += 4;
	}
	snprintf(buf, sizeof(buf), "%s", s);
	host = buf;
	if (*host == '[') {
		char *close = strchr(host, ']');

		if (!close)
			return df_fail(e, -EINVAL, "--explain \"%s\": '[' without ']'", d->text);
		*close = '\0';
		host++;
		colon = close[1] == ':' ? close + 1 : NULL;
		if (close[1] && !colon)
			return df_fail(e, -EINVAL, "--explain \"%s\": unexpected \"%s\" after ']'",
				       d->text, close + 1);
		if (inet_pton(AF_INET6, host, d->addr) != 1)
			return df_fail(e, -EINVAL,
				       "--explain \"%s\": \"%s\" is not an IPv6 address", d->text,
				       host);
		d->family = 6;
	} else {
		colon = strrchr(host, ':');
		if (colon && strchr(host, ':') != colon)
			return df_fail(
				e, -EINVAL,
				"--explain \"%s\": write IPv6 addresses in brackets, e.g. [2001:db8::1]:443",
				d->text);
		if (colon)
			*colon = '\0';
		if (inet_pton(AF_INET, host, d->addr) == 1) {
			d->family = 4;
		} else if (strspn(host, "0123456789.") == strlen(host)) {
			return df_fail(e, -EINVAL,
				       "--explain \"%s\": \"%s\" is not an IPv4 address", d->text,
				       host);
		} else {
			struct df_rule r;
			int err = df_rule_parse(host, DF_DENY, &r, e);

			if (err < 0) {
				char inner[DF_ERRBUF];

				snprintf(inner, sizeof(inner), "%s", e ? e->msg : "");
				return df_fail(e, err, "--explain \"%s\": not a destination: %s",
					       d->text, inner);
			}
			if (r.target != DF_TARGET_NAME || r.name_kind != DF_NAME_EXACT) {
				df_rule_free(&r);
				return df_fail(
					e, -EINVAL,
					"--explain \"%s\": a destination is one name, without wildcards",
					d->text);
			}
			snprintf(d->name, sizeof(d->name), "%s", r.name);
			df_rule_free(&r);
		}
	}
	if (colon) {
		if (parse_u32(colon + 1, 65535, &port) < 0 || port == 0)
			return df_fail(e, -EINVAL,
				       "--explain \"%s\": port \"%s\" is not in 1..65535", d->text,
				       colon + 1);
		d->port = (uint16_t)port;
	}
	if (d->family && !d->port)
		return df_fail(
			e, -EINVAL,
			"--explain \"%s\": an address needs a port (ADDR:PORT, [ADDR6]:PORT)",
			d->text);
	/* ::ffff:a.b.c.d is judged as a.b.c.d, as the kernel does */
	if (d->family == 6) {
		static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

		if (!memcmp(d->addr, mapped, 12)) {
			memmove(d->addr, d->addr + 12, 4);
			memset(d->addr + 4, 0, 12);
			d->family = 4;
		}
	}
	return 0;
}

/* ---- output ---- */

struct out {
	FILE *f;
	yajl_gen g; /* --json */
	int r;
};

/* The mode the fence runs in: a container's own break-glass keeps an enforce fence in audit. */
static int fence_mode(const struct df_policy *p)
{
	return p->break_glass && p->mode == DF_MODE_ENFORCE ? DF_MODE_AUDIT : (int)p->mode;
}

static const char *mode_effect(int mode, int verdict)
{
	if (verdict == DF_ALLOW)
		return mode == DF_MODE_OBSERVE ? "allowed, recorded" : "allowed";
	switch (mode) {
	case DF_MODE_ENFORCE:
		return "refused (enforce)";
	case DF_MODE_AUDIT:
		return "let through, recorded as would-block (audit)";
	}
	return "let through, recorded as would-block (observe)";
}

static void print_rule_line(struct out *o, const struct df_policy *p, size_t i, const char *mark)
{
	const struct df_rule *r = &p->rules[i];

	fprintf(o->f, "  %s %-5s  %-32s  %s\n", mark, df_verdict_name(r->verdict), r->text,
		r->source ? r->source : "");
}

static void gen_rule(struct out *o, const struct df_policy *p, size_t i)
{
	const struct df_rule *r = &p->rules[i];

	yajl_gen_map_open(o->g);
	o->r |= jg_key_str(o->g, "rule", r->text);
	o->r |= jg_key_str(o->g, "verdict", df_verdict_name(r->verdict));
	o->r |= jg_key_str(o->g, "source", r->source);
	o->r |= jg_key_str(o->g, "kind",
			   r->target == DF_TARGET_NAME	  ? "name"
			   : r->target == DF_TARGET_CIDR4 ? "ipv4"
							  : "ipv6");
	yajl_gen_map_close(o->g);
}

/* One verdict: text line or JSON object. */
static void emit_verdict(struct out *o, const struct df_policy *p, const char *what,
			 const char *proto, uint16_t port, uint8_t verdict, int rule_i,
			 const char *why)
{
	const char *rule = rule_i >= 0 ? p->rules[rule_i].text : "default";

	if (o->g) {
		yajl_gen_map_open(o->g);
		o->r |= jg_key_str(o->g, "what", what);
		o->r |= jg_key_str(o->g, "proto", proto);
		if (port)
			o->r |= jg_key_int(o->g, "port", port);
		o->r |= jg_key_str(o->g, "verdict", df_verdict_name(verdict));
		o->r |= jg_key_str(o->g, "effect", mode_effect(fence_mode(p), verdict));
		o->r |= jg_key_str(o->g, "rule", rule);
		o->r |= jg_key_str(o->g, "source", rule_i >= 0 ? p->rules[rule_i].source : NULL);
		o->r |= jg_key_str(o->g, "why", why);
		yajl_gen_map_close(o->g);
		return;
	}
	fprintf(o->f, "  %s: %s, %s\n", what, df_verdict_name(verdict),
		mode_effect(fence_mode(p), verdict));
	if (rule_i >= 0)
		fprintf(o->f, "    rule %s (%s): %s\n", rule, p->rules[rule_i].source, why);
	else
		fprintf(o->f, "    %s\n", why);
}

/* The candidates a destination has, in precedence order; ret_n may be 0. */
static size_t *candidates(const struct df_policy *p, const struct dest *d, int any_port,
			  uint8_t pbit, size_t *ret_n)
{
	_cleanup_free_ size_t *idx = malloc((p->n_rules + 1) * sizeof(*idx));
	size_t n = 0;

	if (!idx)
		return NULL;
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct df_rule *r = &p->rules[i];
		int m;

		if (d->family)
			m = matches_addr(r, d->family, d->addr, pbit, d->port);
		else if (r->target != DF_TARGET_NAME)
			m = 0;
		else if (any_port)
			m = matches_name_any(r, d->name);
		else
			m = matches_name(r, d->name, pbit, d->port);
		if (m)
			idx[n++] = i;
	}
	*ret_n = n;
	return precedence_order(p, idx, n);
}

static void emit_candidates(struct out *o, const struct df_policy *p, const size_t *c, size_t n,
			    int w1, int w2, const char *title)
{
	if (o->g) {
		o->r |= jg_str(o->g, "candidates");
		yajl_gen_array_open(o->g);
		for (size_t i = 0; i < n; i++)
			gen_rule(o, p, c[i]);
		yajl_gen_array_close(o->g);
		return;
	}
	if (!n) {
		fprintf(o->f, "  no rule matches %s\n", title);
		return;
	}
	fprintf(o->f, "  rules that match %s, in the order precedence tries them:\n", title);
	for (size_t i = 0; i < n; i++)
		print_rule_line(o, p, c[i], (int)c[i] == w1 || (int)c[i] == w2 ? "  *" : "   ");
}

/* First other candidate after the winner, for the "why". */
static const struct df_rule *runner_up(const struct df_policy *p, const size_t *c, size_t n,
				       int winner)
{
	for (size_t i = 0; i < n; i++)
		if ((int)c[i] != winner)
			return &p->rules[c[i]];
	return NULL;
}

/* A connection (or datagram) to an address, per protocol. */
static int explain_addr(struct out *o, const struct df_policy *p, const struct dest *d)
{
	static const struct {
		uint8_t bit;
		const char *name;
	} protos[] = { { DF_PROTO_TCP, "tcp" }, { DF_PROTO_UDP, "udp" } };
	_cleanup_free_ size_t *c = NULL;
	char what[128], addr[INET6_ADDRSTRLEN], why[512];
	int won[2] = { -1, -1 };
	size_t n = 0;

	inet_ntop(d->family == 4 ? AF_INET : AF_INET6, d->addr, addr, sizeof(addr));
	for (size_t k = 0; k < ARRAY_SIZE(protos); k++) {
		uint8_t v;
		uint32_t id;
		int w;

		if (!(d->proto_mask & protos[k].bit))
			continue;
		df_policy_judge(p, d->family, d->addr, protos[k].bit, d->port, &v, &id);
		w = id ? (int)id - 1 : -1;
		won[k] = w;
		free(c);
		c = candidates(p, d, 0, protos[k].bit, &n);
		if (!c)
			return -ENOMEM;
		if (w >= 0)
			reason(&p->rules[w], runner_up(p, c, n, w), why, sizeof(why));
		else
			snprintf(why, sizeof(why), "no rule matches: the default (%s) decides",
				 df_verdict_name(p->default_verdict));
		snprintf(what, sizeof(what), d->family == 6 ? "%s to [%s]:%u" : "%s to %s:%u",
			 protos[k].name, addr, d->port);
		emit_verdict(o, p, what, protos[k].name, d->port, v, w, why);
	}
	if (!o->g) {
		free(c);
		c = candidates(p, d, 0, d->proto_mask, &n);
		if (!c)
			return -ENOMEM;
		snprintf(what, sizeof(what), d->family == 6 ? "[%s]:%u" : "%s:%u", addr, d->port);
		emit_candidates(o, p, c, n, won[0], won[1], what);
		fprintf(o->f,
			"  (a name rule can refuse this address too when it came from a DNS answer for that name)\n");
	}
	return 0;
}

/* A name: its DNS question, and connections to the addresses its answers give. */
static int explain_name(struct out *o, const struct df_policy *p, const struct dest *d)
{
	static const struct {
		uint8_t bit;
		const char *name;
	} protos[] = { { DF_PROTO_TCP, "tcp" }, { DF_PROTO_UDP, "udp" } };
	_cleanup_free_ size_t *c = NULL;
	char what[DF_NAME_MAX_LEN + 64], why[512];
	size_t n = 0;
	int w = -1;
	uint8_t v = (uint8_t)p->default_verdict;

	/*
	 * The question (the kernel's question_verdict): the most specific rules
	 * first; the first that allows the name on some port or protocol lets
	 * the question out, a bare rule that denies it refuses it.
	 */
	c = candidates(p, d, 1, DF_PROTO_ANY, &n);
	if (!c)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct df_rule *r = &p->rules[c[i]];

		if (r->verdict == DF_ALLOW || (r->proto_mask == DF_PROTO_ANY && !r->has_ports)) {
			w = (int)c[i];
			v = r->verdict;
			break;
		}
	}
	if (w < 0)
		snprintf(why, sizeof(why), "no rule decides the question: the default (%s)",
			 df_verdict_name(p->default_verdict));
	else if (v == DF_ALLOW)
		snprintf(
			why, sizeof(why),
			"the most specific rule that allows the name on some port lets the question out");
	else
		snprintf(
			why, sizeof(why),
			"it denies the name on every port and protocol, and no more specific rule allows it");
	snprintf(what, sizeof(what), "DNS question for %s", d->name);
	emit_verdict(o, p, what, "dns", 0, v, w, why);
	if (!o->g)
		emit_candidates(o, p, c, n, w, -1, d->name);

	if (!d->port)
		return 0;
	for (size_t k = 0; k < ARRAY_SIZE(protos); k++) {
		_cleanup_free_ size_t *pc = NULL;
		uint32_t id;
		size_t pn = 0;

		if (!(d->proto_mask & protos[k].bit))
			continue;
		pc = candidates(p, d, 0, protos[k].bit, &pn);
		if (!pc)
			return -ENOMEM;
		if (df_policy_judge_name(p, d->name, protos[k].bit, d->port, &v, &id) == 1) {
			w = (int)id - 1;
			reason(&p->rules[w], runner_up(p, pc, pn, w), why, sizeof(why));
			strncat(why, "; an address rule that refuses the address refuses it anyway",
				sizeof(why) - strlen(why) - 1);
		} else {
			w = -1;
			v = (uint8_t)p->default_verdict;
			snprintf(
				why, sizeof(why),
				"no name rule matches: address rules decide, else the default (%s)",
				df_verdict_name(p->default_verdict));
		}
		snprintf(what, sizeof(what), "%s to addresses of %s, port %u", protos[k].name,
			 d->name, d->port);
		emit_verdict(o, p, what, protos[k].name, d->port, v, w, why);
	}
	return 0;
}

static int explain(struct out *o, const struct df_policy *p, const struct dest *d)
{
	int r;

	if (o->g) {
		yajl_gen_map_open(o->g);
		o->r |= jg_key_str(o->g, "destination", d->text);
		o->r |= jg_str(o->g, "verdicts");
		yajl_gen_array_open(o->g);
	} else {
		fprintf(o->f, "\nexplain %s\n", d->text);
	}
	r = d->family ? explain_addr(o, p, d) : explain_name(o, p, d);
	if (o->g) {
		yajl_gen_array_close(o->g);
		yajl_gen_map_close(o->g);
	}
	return r;
}

/* Hints that do not make the policy invalid. */
static size_t lint(const struct df_policy *p, const char **notes, size_t max)
{
	size_t n = 0, denies = 0;
	int dns_ok = 0;

	for (size_t i = 0; i < p->n_rules; i++) {
		const struct df_rule *r = &p->rules[i];

		denies += r->verdict == DF_DENY;
		if (r->verdict == DF_ALLOW && r->target != DF_TARGET_NAME &&
		    (r->proto_mask & DF_PROTO_UDP) && r->port_lo <= 53 && r->port_hi >= 53)
			dns_ok = 1;
	}
	if (p->default_verdict == DF_DENY && !dns_ok && n < max)
		notes[n++] =
			"default deny and no address rule allows udp port 53: the job cannot reach a resolver (allow it, e.g. udp/10.0.0.2:53)";
	if (p->mode != DF_MODE_ENFORCE && (denies || p->default_verdict == DF_DENY) && n < max)
		notes[n++] =
			p->mode == DF_MODE_AUDIT
				? "mode audit: what the policy refuses is recorded as would-block, nothing is refused (--mode enforce refuses)"
				: "mode observe: every destination is recorded, nothing is refused (--mode enforce refuses)";
	for (size_t i = 0; i < p->n_rules && n < max; i++)
		for (size_t j = 0; j < i; j++)
			if (!strcmp(p->rules[i].text, p->rules[j].text) &&
			    p->rules[i].verdict != p->rules[j].verdict) {
				notes[n++] = "a rule is both allowed and denied: deny wins the tie";
				i = p->n_rules;
				break;
			}
	return n;
}

static int print_policy(struct out *o, const struct df_policy *p)
{
	static const struct {
		int target;
		const char *title;
	} groups[] = { { DF_TARGET_CIDR4, "IPv4" },
		       { DF_TARGET_CIDR6, "IPv6" },
		       { DF_TARGET_NAME, "name" } };
	_cleanup_free_ size_t *all = malloc((p->n_rules + 1) * sizeof(*all));
	_cleanup_free_ size_t *order = NULL;
	const char *notes[8];
	size_t nn, denies = 0;

	if (!all)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_rules; i++) {
		all[i] = i;
		denies += p->rules[i].verdict == DF_DENY;
	}
	order = precedence_order(p, all, p->n_rules);
	if (!order)
		return -ENOMEM;
	nn = lint(p, notes, ARRAY_SIZE(notes));
	if (o->g) {
		o->r |= jg_key_bool(o->g, "valid", 1);
		o->r |= jg_key_str(o->g, "mode", df_mode_name(p->mode));
		o->r |= jg_key_str(o->g, "default", df_verdict_name(p->default_verdict));
		o->r |= jg_key_str(o->g, "label", p->label);
		o->r |= jg_key_str(o->g, "break_glass", p->break_glass);
		o->r |= jg_str(o->g, "profiles");
		yajl_gen_array_open(o->g);
		for (size_t i = 0; i < p->n_profiles; i++)
			o->r |= jg_str(o->g, p->profiles[i]);
		yajl_gen_array_close(o->g);
		o->r |= jg_str(o->g, "rules");
		yajl_gen_array_open(o->g);
		for (size_t i = 0; i < p->n_rules; i++)
			gen_rule(o, p, order[i]);
		yajl_gen_array_close(o->g);
		o->r |= jg_str(o->g, "notes");
		yajl_gen_array_open(o->g);
		for (size_t i = 0; i < nn; i++)
			o->r |= jg_str(o->g, notes[i]);
		yajl_gen_array_close(o->g);
		return 0;
	}
	fprintf(o->f, "policy is valid: mode %s, default %s, %zu rule%s (%zu deny, %zu allow)\n",
		df_mode_name(p->mode), df_verdict_name(p->default_verdict), p->n_rules,
		p->n_rules == 1 ? "" : "s", denies, p->n_rules - denies);
	fprintf(o->f, "mode     %s\ndefault  %s\n", df_mode_name(p->mode),
		df_verdict_name(p->default_verdict));
	if (p->label)
		fprintf(o->f, "label    %s\n", p->label);
	if (p->break_glass)
		fprintf(o->f, "break-glass  %s (%s)%s\n", p->break_glass, p->break_glass_source,
			p->mode == DF_MODE_ENFORCE ?
				": the fence starts in audit and stays there, refusing nothing" :
				"");
	for (size_t i = 0; i < p->n_profiles; i++)
		fprintf(o->f, "%s%s", i ? ", " : "profiles ", p->profiles[i]);
	if (p->n_profiles)
		fputc('\n', o->f);
	for (size_t g = 0; g < ARRAY_SIZE(groups); g++) {
		int first = 1;

		for (size_t i = 0; i < p->n_rules; i++) {
			if (p->rules[order[i]].target != groups[g].target)
				continue;
			if (first)
				fprintf(o->f, "%s rules, in the order precedence tries them:\n",
					groups[g].title);
			first = 0;
			print_rule_line(o, p, order[i], "");
		}
	}
	for (size_t i = 0; i < nn; i++)
		fprintf(o->f, "note: %s\n", notes[i]);
	return 0;
}

/*
 * The annotations object: the file itself, or its "annotations" or
 * "metadata.annotations". It goes through the hook's own reader, as the
 * annotations of a container state, so the same keys, limits and errors apply.
 */
static int load_annotations(const char *path, const char *container, struct df_policy *p,
			    struct df_error *e)
{
	_cleanup_free_ char *buf = NULL, *state = NULL;
	_cleanup_yajl_ yajl_val root = NULL;
	_cleanup_yajl_gen_ yajl_gen g = NULL;
	_cleanup_close_ int fd = -1;
	struct oci_state s = {};
	const unsigned char *out;
	yajl_val obj, meta;
	size_t len;
	int r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return df_fail(e, -errno, "open %s: %s", path, strerror(errno));
	r = read_fd_capped(fd, CHECK_ANN_MAX, &buf, NULL);
	if (r == -E2BIG)
		return df_fail(e, r, "%s: larger than %d bytes", path, CHECK_ANN_MAX);
	if (r < 0)
		return df_fail(e, r, "read %s: %s", path, strerror(-r));
	r = json_parse(buf, path, &root, e);
	if (r < 0)
		return r;
	if (!json_is_object(root))
		return df_fail(e, -EINVAL, "%s: expected a JSON object of annotations", path);
	if (json_get_object(root, "metadata", &meta, NULL) == 0 &&
	    json_get_object(meta, "annotations", &obj, NULL) == 0)
		;
	else if (json_get_object(root, "annotations", &obj, NULL) == 0)
		;
	else
		obj = root;

	if (!container)
		for (size_t i = 0; i < json_object_len(obj); i++) {
			const char *k = json_object_key(obj, i), *at;

			/* a container's own key, which the hook reads for that container only */
			at = strstr(k, "." DF_ANNOTATION_PREFIX);
			if (at && strncmp(k, DF_ANNOTATION_PREFIX, strlen(DF_ANNOTATION_PREFIX)) &&
			    !json_get(obj, OCI_K8S_CONTAINER_NAME) &&
			    !json_get(obj, OCI_CRI_CONTAINER_NAME))
				return df_fail(e, -EINVAL,
					       "%s: annotation \"%.200s\" applies to container \"%.*s\" only: name the container to check with --container",
					       path, k, (int)(at - k > 100 ? 100 : at - k), k);
		}
	g = yajl_gen_alloc(NULL);
	if (!g)
		return -ENOMEM;
	yajl_gen_map_open(g);
	r = jg_key_str(g, "id", "depfence-check");
	r |= jg_str(g, "annotations");
	yajl_gen_map_open(g);
	for (size_t i = 0; i < json_object_len(obj); i++) {
		const char *k = json_object_key(obj, i);

		/* --container names the container as the runtime would */
		if (container && (!strcmp(k, OCI_K8S_CONTAINER_NAME) || !strcmp(k, OCI_CRI_CONTAINER_NAME)))
			continue;
		r |= jg_str(g, k);
		r |= json_emit_value(g, json_object_value(obj, i));
	}
	if (container)
		r |= jg_key_str(g, OCI_K8S_CONTAINER_NAME, container);
	yajl_gen_map_close(g);
	if (yajl_gen_map_close(g) != yajl_gen_status_ok || r)
		return df_fail(e, -EINVAL, "%s: the annotations are not valid UTF-8 JSON", path);
	yajl_gen_get_buf(g, &out, &len);
	state = strndup((const char *)out, len);
	if (!state)
		return -ENOMEM;
	r = oci_state_parse(state, &s, e);
	if (r == 0)
		r = oci_policy_from_annotations(s.ann, s.n_ann, p, e);
	oci_state_free(&s);
	if (r < 0 && e) {
		char inner[DF_ERRBUF];
		const char *m = e->msg;

		if (!strncmp(m, "container state: ", 17))
			m += 17;
		snprintf(inner, sizeof(inner), "%s", m);
		df_fail(e, r, "%s: %s", path, inner);
	}
	return r;
}

/* Compile what the hook would load: the limits it enforces are checked too. */
static int compile_check(const struct df_policy *p, struct df_error *e)
{
	struct df_compiled c = {};
	struct df_compiled_names cn = {};
	int r;

	for (int fam = 4; fam <= 6; fam += 2) {
		r = df_policy_compile(p, fam, &c, e);
		df_compiled_free(&c);
		if (r < 0)
			return r;
	}
	r = df_policy_compile_names(p, 257, 263, &cn, e);
	df_compiled_names_free(&cn);
	return r;
}

struct flag_rule {
	int verdict; /* DF_DENY, DF_ALLOW; 0: a profile list */
	const char *text;
};

int cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "default", required_argument, NULL, 'd' },
		{ "deny", required_argument, NULL, 'D' },
		{ "allow", required_argument, NULL, 'A' },
		{ "profile", required_argument, NULL, 'p' },
		{ "label", required_argument, NULL, 'l' },
		{ "annotations", required_argument, NULL, 'a' },
		{ "container", required_argument, NULL, 'c' },
		{ "explain", required_argument, NULL, 'x' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	_cleanup_free_ struct flag_rule *flags = calloc((size_t)argc + 1, sizeof(*flags));
	_cleanup_free_ struct dest *dests = calloc((size_t)argc + 1, sizeof(*dests));
	_cleanup_yajl_gen_ yajl_gen g = NULL;
	const char *mode = NULL, *def = NULL, *label = NULL, *annotations = NULL, *container = NULL;
	struct out o = { .f = stdout };
	struct df_policy p;
	struct df_error e = {};
	size_t nflags = 0, ndests = 0;
	int c, r, json = 0, rc = DF_EXIT_ERROR;

	df_policy_init(&p);
	if (!flags || !dests) {
		df_err("check: out of memory");
		return DF_EXIT_ERROR;
	}
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			mode = optarg;
			break;
		case 'd':
			def = optarg;
			break;
		case 'D':
		case 'A':
			flags[nflags++] =
				(struct flag_rule){ c == 'D' ? DF_DENY : DF_ALLOW, optarg };
			break;
		case 'p':
			flags[nflags++] = (struct flag_rule){ 0, optarg };
			break;
		case 'l':
			label = optarg;
			break;
		case 'a':
			annotations = optarg;
			break;
		case 'c':
			container = optarg;
			break;
		case 'x':
			if (parse_dest(optarg, &dests[ndests], &e) < 0) {
				df_err("check: %s", e.msg);
				goto usage;
			}
			ndests++;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			check_usage(stdout);
			return DF_EXIT_OK;
		default:
			df_err("check: unknown or incomplete option \"%s\"", argv[optind - 1]);
			goto usage;
		}
	}
	if (optind < argc) {
		df_err("check: unexpected argument \"%s\"", argv[optind]);
		goto usage;
	}

	/* from here on, what is wrong is the policy: exit 1 */
	if (container && !annotations) {
		df_err("check: --container needs --annotations");
		goto usage;
	}
	if (annotations && (r = load_annotations(annotations, container, &p, &e)) < 0)
		goto invalid;
	if (mode && df_parse_mode(mode, &p.mode) < 0) {
		df_fail(&e, -EINVAL, "--mode \"%s\": not a mode (observe, audit, enforce)", mode);
		goto invalid;
	}
	if (def && df_parse_default(def, &p.default_verdict) < 0) {
		df_fail(&e, -EINVAL, "--default \"%s\": not a verdict (allow, deny)", def);
		goto invalid;
	}
	/* who set them, for the admin's checks */
	if (mode) {
		free(p.mode_source);
		p.mode_source = strdup("--mode");
	}
	if (def) {
		free(p.default_source);
		p.default_source = strdup("--default");
	}
	if ((mode && !p.mode_source) || (def && !p.default_source)) {
		df_fail(&e, -ENOMEM, "out of memory");
		goto invalid;
	}
	for (size_t i = 0; i < nflags; i++) {
		if (flags[i].verdict)
			r = df_policy_add_list(&p, flags[i].text, (uint8_t)flags[i].verdict,
					       flags[i].verdict == DF_DENY ? "--deny" : "--allow",
					       CHECK_RULES_MAX, &e);
		else
			r = df_policy_add_profiles(&p, flags[i].text, "--profile", &e);
		if (r < 0)
			goto invalid;
	}
	if (label) {
		if (strlen(label) > DF_LABEL_MAX) {
			df_fail(&e, -E2BIG, "--label: longer than %d bytes", DF_LABEL_MAX);
			goto invalid;
		}
		free(p.label);
		p.label = strdup(label);
		if (!p.label) {
			df_fail(&e, -ENOMEM, "out of memory");
			goto invalid;
		}
	}
	{
		/* the host's config: its profiles, and the admin's policy under this one */
		struct df_host_config hc;

		r = df_config_load(&hc, &e);
		if (r == 0)
			r = df_profiles_apply(hc.profiles_dir, &p, &e);
		if (r == 0)
			r = df_admin_apply(&hc, &p, &e);
		df_config_free(&hc);
		if (r < 0)
			goto invalid;
	}
	r = compile_check(&p, &e);
	if (r < 0)
		goto invalid;

	if (json) {
		g = yajl_gen_alloc(NULL);
		if (!g) {
			df_err("check: out of memory");
			goto out;
		}
		yajl_gen_config(g, yajl_gen_beautify, 1);
		yajl_gen_config(g, yajl_gen_validate_utf8, 1);
		o.g = g;
		yajl_gen_map_open(g);
	}
	r = print_policy(&o, &p);
	if (json && r >= 0) {
		o.r |= jg_str(g, "explain");
		yajl_gen_array_open(g);
	}
	for (size_t i = 0; i < ndests && r >= 0; i++)
		r = explain(&o, &p, &dests[i]);
	if (json && r >= 0) {
		const unsigned char *buf;
		size_t len;

		yajl_gen_array_close(g);
		if (yajl_gen_map_close(g) != yajl_gen_status_ok || o.r)
			r = -EINVAL;
		else if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok)
			fwrite(buf, 1, len, stdout);
	}
	if (r >= 0 && fflush(stdout) != 0)
		r = -errno;
	if (r < 0) {
		df_err("check: %s", strerror(-r));
		goto out;
	}
	rc = DF_EXIT_OK;
	goto out;

invalid:
	df_err("check: policy is not valid: %s", e.msg);
	if (json) {
		_cleanup_yajl_gen_ yajl_gen eg = yajl_gen_alloc(NULL);
		const unsigned char *buf;
		size_t len;

		if (eg) {
			yajl_gen_config(eg, yajl_gen_beautify, 1);
			yajl_gen_map_open(eg);
			jg_key_bool(eg, "valid", 0);
			jg_key_str(eg, "error", e.msg);
			yajl_gen_map_close(eg);
			if (yajl_gen_get_buf(eg, &buf, &len) == yajl_gen_status_ok)
				fwrite(buf, 1, len, stdout);
		}
	}
	rc = DF_EXIT_ERROR;
out:
	df_policy_free(&p);
	return rc;

usage:
	fprintf(stderr, "Try 'depfence check --help'.\n");
	df_policy_free(&p);
	return DF_EXIT_USAGE;
}
