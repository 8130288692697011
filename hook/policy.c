// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The rule grammar (DESIGN.md):
 *
 *   RULE   = [PROTO "/"] TARGET [":" PORTS]
 *   PROTO  = "tcp" | "udp"
 *   TARGET = IPV4 ["/" LEN] | "[" IPV6 ["/" LEN] "]" | NAME
 *   PORTS  = PORT | PORT "-" PORT
 *   NAME   = FQDN | "*." FQDN | "**." FQDN
 *
 * and the precedence: the most specific rule decides. For addresses that is
 * the longest prefix first, then a rule with protocol and ports over one with
 * ports over one with a protocol over a bare one, then the narrower port
 * range; on a tie deny wins.
 */
#include <arpa/inet.h>
#include <ctype.h>

#include "policy.h"

int df_parse_mode(const char *s, int *ret)
{
	if (!strcmp(s, "observe"))
		*ret = DF_MODE_OBSERVE;
	else if (!strcmp(s, "audit"))
		*ret = DF_MODE_AUDIT;
	else if (!strcmp(s, "enforce"))
		*ret = DF_MODE_ENFORCE;
	else
		return -EINVAL;
	return 0;
}

int df_parse_default(const char *s, int *ret)
{
	if (!strcmp(s, "allow"))
		*ret = DF_ALLOW;
	else if (!strcmp(s, "deny"))
		*ret = DF_DENY;
	else
		return -EINVAL;
	return 0;
}

const char *df_mode_name(int mode)
{
	switch (mode) {
	case DF_MODE_OBSERVE:
		return "observe";
	case DF_MODE_AUDIT:
		return "audit";
	case DF_MODE_ENFORCE:
		return "enforce";
	}
	return "?";
}

const char *df_verdict_name(int verdict)
{
	return verdict == DF_DENY ? "deny" : "allow";
}

void df_policy_init(struct df_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->mode = DF_MODE_AUDIT;
	p->default_verdict = DF_ALLOW;
}

void df_rule_free(struct df_rule *r)
{
	free(r->text);
	free(r->source);
	free(r->name);
	memset(r, 0, sizeof(*r));
}

void df_policy_free(struct df_policy *p)
{
	for (size_t i = 0; i < p->n_rules; i++)
		df_rule_free(&p->rules[i]);
	free(p->rules);
	free(p->label);
	for (size_t i = 0; i < p->n_profiles; i++)
		free(p->profiles[i]);
	free(p->profiles);
	free(p->mode_source);
	free(p->default_source);
	free(p->break_glass);
	free(p->break_glass_source);
	free(p->profiles_source);
	memset(p, 0, sizeof(*p));
}

static int parse_port(const char *s, size_t len, uint16_t *ret)
{
	char buf[8];
	unsigned int v;

	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	for (size_t i = 0; i < len; i++)
		if (!isdigit((unsigned char)buf[i]))
			return -EINVAL;
	if (parse_u32(buf, 65535, &v) < 0 || v == 0)
		return -ERANGE;
	*ret = (uint16_t)v;
	return 0;
}

static int parse_ports(const char *s, struct df_rule *r, const char *rule, struct df_error *e)
{
	const char *dash = strchr(s, '-');
	size_t len = strlen(s);

	if (len == 0)
		return df_fail(e, -EINVAL, "rule \"%s\": empty port after ':'", rule);
	if (dash) {
		if (parse_port(s, dash - s, &r->port_lo) < 0 ||
		    parse_port(dash + 1, strlen(dash + 1), &r->port_hi) < 0)
			return df_fail(e, -EINVAL,
				       "rule \"%s\": port range \"%s\" must be PORT-PORT with ports 1..65535",
				       rule, s);
		if (r->port_lo > r->port_hi)
			return df_fail(e, -EINVAL, "rule \"%s\": port range \"%s\" is reversed", rule,
				       s);
	} else {
		if (parse_port(s, len, &r->port_lo) < 0)
			return df_fail(e, -EINVAL, "rule \"%s\": port \"%s\" is not a number in 1..65535",
				       rule, s);
		r->port_hi = r->port_lo;
	}
	r->has_ports = 1;
	return 0;
}

static int parse_prefixlen(const char *s, unsigned int max, uint8_t *ret)
{
	unsigned int v;

	for (const char *p = s; *p; p++)
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
	if (strlen(s) > 3 || parse_u32(s, max, &v) < 0)
		return -EINVAL;
	*ret = (uint8_t)v;
	return 0;
}

/* Zero the bits past len; report whether any were set. */
static int mask_addr(uint8_t *addr, unsigned int bytes, unsigned int len)
{
	int had = 0;

	for (unsigned int i = 0; i < bytes; i++) {
		unsigned int bit = i * 8;
		uint8_t keep;

		if (bit + 8 <= len)
			continue;
		keep = bit >= len ? 0 : (uint8_t)(0xff << (8 - (len - bit)));
		if (addr[i] & ~keep)
			had = 1;
		addr[i] &= keep;
	}
	return had;
}

static int parse_cidr4(const char *s, struct df_rule *r, const char *rule, struct df_error *e)
{
	char buf[INET_ADDRSTRLEN + 4];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);

	if (alen >= INET_ADDRSTRLEN)
		return df_fail(e, -EINVAL, "rule \"%s\": \"%s\" is not an IPv4 address", rule, s);
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (inet_pton(AF_INET, buf, r->addr) != 1)
		return df_fail(e, -EINVAL, "rule \"%s\": \"%s\" is not an IPv4 address", rule, buf);
	r->prefixlen = 32;
	if (slash && parse_prefixlen(slash + 1, 32, &r->prefixlen) < 0)
		return df_fail(e, -EINVAL, "rule \"%s\": prefix length \"%s\" is not in 0..32", rule,
			       slash + 1);
	if (mask_addr(r->addr, 4, r->prefixlen))
		return df_fail(e, -EINVAL,
			       "rule \"%s\": %s has bits set past the /%u prefix (host bits)", rule,
			       buf, r->prefixlen);
	r->target = DF_TARGET_CIDR4;
	return 0;
}

static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static int parse_cidr6(const char *s, size_t len, struct df_rule *r, const char *rule,
		       struct df_error *e)
{
	char buf[INET6_ADDRSTRLEN + 8];
	char *slash;

	if (len >= sizeof(buf))
		return df_fail(e, -EINVAL, "rule \"%s\": not an IPv6 address", rule);
	memcpy(buf, s, len);
	buf[len] = '\0';
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET6, buf, r->addr) != 1)
		return df_fail(e, -EINVAL, "rule \"%s\": \"%s\" is not an IPv6 address", rule, buf);
	r->prefixlen = 128;
	if (slash && parse_prefixlen(slash + 1, 128, &r->prefixlen) < 0)
		return df_fail(e, -EINVAL, "rule \"%s\": prefix length \"%s\" is not in 0..128", rule,
			       slash + 1);
	if (mask_addr(r->addr, 16, r->prefixlen))
		return df_fail(e, -EINVAL,
			       "rule \"%s\": %s has bits set past the /%u prefix (host bits)", rule,
			       buf, r->prefixlen);
	/* ::ffff:a.b.c.d/len is an IPv4 rule: mapped destinations are judged as IPv4 */
	if (r->prefixlen >= 96 && !memcmp(r->addr, v4mapped, 12)) {
		memmove(r->addr, r->addr + 12, 4);
		memset(r->addr + 4, 0, 12);
		r->prefixlen -= 96;
		r->target = DF_TARGET_CIDR4;
		return 0;
	}
	r->target = DF_TARGET_CIDR6;
	return 0;
}

static int valid_label_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static int parse_name(const char *s, struct df_rule *r, const char *rule, struct df_error *e)
{
	char buf[DF_NAME_MAX_LEN + 8];
	size_t len = strlen(s), lab = 0, labels = 0;
	int all_digits = 1;

	r->name_kind = DF_NAME_EXACT;
	if (!strncmp(s, "**.", 3)) {
		r->name_kind = DF_NAME_MANY;
		s += 3;
		len -= 3;
	} else if (!strncmp(s, "*.", 2)) {
		r->name_kind = DF_NAME_ONE;
		s += 2;
		len -= 2;
	}
	if (len && s[len - 1] == '.')
		len--;
	if (len == 0)
		return df_fail(e, -EINVAL, "rule \"%s\": empty name", rule);
	if (len > DF_NAME_MAX_LEN)
		return df_fail(e, -E2BIG, "rule \"%s\": name is longer than %d bytes", rule,
			       DF_NAME_MAX_LEN);
	for (size_t i = 0; i < len; i++) {
		char c = (char)tolower((unsigned char)s[i]);

		if (c == '*')
			return df_fail(e, -EINVAL,
				       "rule \"%s\": '*' is only allowed as a whole first label (\"*.\" or \"**.\")",
				       rule);
		if (c == '.') {
			if (lab == 0)
				return df_fail(e, -EINVAL, "rule \"%s\": empty label in name", rule);
			lab = 0;
			labels++;
			all_digits = 1;
			buf[i] = c;
			continue;
		}
		if (!valid_label_char(c))
			return df_fail(e, -EINVAL,
				       "rule \"%s\": character '%c' is not allowed in a name", rule,
				       s[i]);
		if (++lab > 63)
			return df_fail(e, -EINVAL, "rule \"%s\": a label is longer than 63 bytes",
				       rule);
		if (!isdigit((unsigned char)c))
			all_digits = 0;
		buf[i] = c;
	}
	if (lab == 0)
		return df_fail(e, -EINVAL, "rule \"%s\": empty label in name", rule);
	labels++;
	if (all_digits)
		return df_fail(e, -EINVAL,
			       "rule \"%s\": \"%.*s\" is neither an IPv4 address nor a name (last label is numeric)",
			       rule, (int)len, s);
	buf[len] = '\0';
	r->name = strdup(buf);
	if (!r->name)
		return -ENOMEM;
	r->target = DF_TARGET_NAME;
	(void)labels;
	return 0;
}

static char *format_rule(const struct df_rule *r)
{
	char target[DF_RULE_MAX_LEN + 64], ports[16] = "", addr[INET6_ADDRSTRLEN];
	const char *proto = r->proto_mask == DF_PROTO_TCP ? "tcp/" :
			    r->proto_mask == DF_PROTO_UDP ? "udp/" :
							    "";
	char *out;

	switch (r->target) {
	case DF_TARGET_CIDR4:
		inet_ntop(AF_INET, r->addr, addr, sizeof(addr));
		if (r->prefixlen == 32)
			snprintf(target, sizeof(target), "%s", addr);
		else
			snprintf(target, sizeof(target), "%s/%u", addr, r->prefixlen);
		break;
	case DF_TARGET_CIDR6:
		inet_ntop(AF_INET6, r->addr, addr, sizeof(addr));
		if (r->prefixlen == 128)
			snprintf(target, sizeof(target), "[%s]", addr);
		else
			snprintf(target, sizeof(target), "[%s/%u]", addr, r->prefixlen);
		break;
	default:
		snprintf(target, sizeof(target), "%s%s",
			 r->name_kind == DF_NAME_MANY ? "**." :
			 r->name_kind == DF_NAME_ONE  ? "*." :
							"",
			 r->name);
	}
	if (r->has_ports) {
		if (r->port_lo == r->port_hi)
			snprintf(ports, sizeof(ports), ":%u", r->port_lo);
		else
			snprintf(ports, sizeof(ports), ":%u-%u", r->port_lo, r->port_hi);
	}
	if (asprintf(&out, "%s%s%s", proto, target, ports) < 0)
		return NULL;
	return out;
}

int df_rule_parse(const char *text, uint8_t verdict, struct df_rule *ret, struct df_error *e)
{
	struct df_rule r = { .verdict = verdict, .proto_mask = DF_PROTO_ANY, .port_hi = 65535 };
	char buf[DF_RULE_MAX_LEN + 1];
	const char *s = buf;
	char *colon;
	size_t len = strlen(text);
	int err;

	if (len == 0)
		return df_fail(e, -EINVAL, "empty rule");
	if (len > DF_RULE_MAX_LEN)
		return df_fail(e, -E2BIG, "rule \"%.40s...\" is longer than %d bytes", text,
			       DF_RULE_MAX_LEN);
	memcpy(buf, text, len + 1);

	if (!strncasecmp(s, "tcp/", 4)) {
		r.proto_mask = DF_PROTO_TCP;
		s += 4;
	} else if (!strncasecmp(s, "udp/", 4)) {
		r.proto_mask = DF_PROTO_UDP;
		s += 4;
	}

	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close)
			return df_fail(e, -EINVAL, "rule \"%s\": '[' without ']'", text);
		if (close[1] == ':') {
			err = parse_ports(close + 2, &r, text, e);
			if (err < 0)
				return err;
		} else if (close[1]) {
			return df_fail(e, -EINVAL, "rule \"%s\": unexpected \"%s\" after ']'", text,
				       close + 1);
		}
		err = parse_cidr6(s + 1, close - s - 1, &r, text, e);
		if (err < 0)
			return err;
	} else {
		colon = strchr(s, ':');
		if (colon && strchr(colon + 1, ':'))
			return df_fail(e, -EINVAL,
				       "rule \"%s\": IPv6 addresses must be written in brackets, e.g. [2001:db8::/32]:443",
				       text);
		if (colon) {
			*colon = '\0';
			err = parse_ports(colon + 1, &r, text, e);
			if (err < 0)
				return err;
		}
		if (!*s)
			return df_fail(e, -EINVAL, "rule \"%s\": no address or name", text);
		/* digits, dots and a '/' only: an IPv4 address or prefix, or an error */
		if (strspn(s, "0123456789./") == strlen(s))
			err = parse_cidr4(s, &r, text, e);
		else if (strchr(s, '/'))
			err = df_fail(e, -EINVAL, "rule \"%s\": \"%s\" is not an IPv4 prefix", text, s);
		else
			err = parse_name(s, &r, text, e);
		if (err < 0)
			return err;
	}

	r.text = format_rule(&r);
	if (!r.text) {
		free(r.name);
		return -ENOMEM;
	}
	*ret = r;
	return 0;
}

static int policy_push(struct df_policy *p, struct df_rule *r)
{
	if (p->n_rules == p->cap_rules) {
		size_t cap = p->cap_rules ? p->cap_rules * 2 : 16;
		struct df_rule *n = realloc(p->rules, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		p->rules = n;
		p->cap_rules = cap;
	}
	p->rules[p->n_rules++] = *r;
	return 0;
}

int df_policy_add_list(struct df_policy *p, const char *list, uint8_t verdict, const char *key,
		       size_t max_rules, struct df_error *e)
{
	const char *s = list;
	size_t added = 0;

	for (;;) {
		char tok[DF_RULE_MAX_LEN + 2];
		struct df_rule r;
		size_t len;
		int err;

		s += strspn(s, ", \t\r\n");
		if (!*s)
			break;
		len = strcspn(s, ", \t\r\n");
		if (len > DF_RULE_MAX_LEN)
			return df_fail(e, -E2BIG, "%s: rule \"%.40s...\" is longer than %d bytes",
				       key, s, DF_RULE_MAX_LEN);
		if (++added > max_rules)
			return df_fail(e, -E2BIG, "%s: more than %zu rules", key, max_rules);
		memcpy(tok, s, len);
		tok[len] = '\0';
		s += len;
		err = df_rule_parse(tok, verdict, &r, e);
		if (err < 0) {
			if (e) {
				char inner[DF_ERRBUF];

				snprintf(inner, sizeof(inner), "%s", e->msg);
				df_fail(e, err, "%s: %s", key, inner);
			}
			return err;
		}
		r.source = strdup(key);
		if (!r.source || policy_push(p, &r) < 0) {
			df_rule_free(&r);
			return -ENOMEM;
		}
	}
	return 0;
}

/* A profile name is a file name in the admin's directory: keep it plain. */
static int valid_profile_name(const char *s, size_t len)
{
	if (len == 0 || len > DF_PROFILE_NAME_MAX || s[0] == '.' || s[0] == '-')
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.'))
			return 0;
	}
	return 1;
}

int df_policy_add_profiles(struct df_policy *p, const char *list, const char *key,
			   struct df_error *e)
{
	const char *s = list;

	for (;;) {
		size_t len;
		char **n;

		s += strspn(s, ", \t\r\n");
		if (!*s)
			return 0;
		len = strcspn(s, ", \t\r\n");
		if (!valid_profile_name(s, len))
			return df_fail(e, -EINVAL,
				       "%s: \"%.*s\" is not a profile name (1-%d of a-z 0-9 . _ -, not starting with . or -)",
				       key, (int)(len > 80 ? 80 : len), s, DF_PROFILE_NAME_MAX);
		{
			/* a name asked for again adds nothing (each copy would add all its rules again) */
			int seen = 0;

			for (size_t i = 0; i < p->n_profiles && !seen; i++)
				seen = strlen(p->profiles[i]) == len && !strncmp(p->profiles[i], s, len);
			if (seen) {
				s += len;
				continue;
			}
		}
		if (p->n_profiles == DF_PROFILES_MAX)
			return df_fail(e, -E2BIG, "%s: more than %d profiles", key, DF_PROFILES_MAX);
		n = realloc(p->profiles, (p->n_profiles + 1) * sizeof(*n));
		if (!n)
			return -ENOMEM;
		p->profiles = n;
		p->profiles[p->n_profiles] = strndup(s, len);
		if (!p->profiles[p->n_profiles])
			return -ENOMEM;
		if (!p->profiles_source && !(p->profiles_source = strdup(key)))
			return -ENOMEM;
		p->n_profiles++;
		s += len;
	}
}

size_t df_policy_count_names(const struct df_policy *p)
{
	size_t n = 0;

	for (size_t i = 0; i < p->n_rules; i++)
		n += p->rules[i].target == DF_TARGET_NAME;
	return n;
}

/* ---- precedence ---- */

static int specificity(const struct df_rule *r)
{
	int has_proto = r->proto_mask != DF_PROTO_ANY;

	if (has_proto && r->has_ports)
		return 3;
	if (r->has_ports)
		return 2;
	return has_proto;
}

/* < 0 when a is more specific than b (a decides). */
static int rule_precedes(const struct df_rule *a, const struct df_rule *b)
{
	int sa, sb;
	unsigned int wa, wb;

	if (a->prefixlen != b->prefixlen)
		return a->prefixlen > b->prefixlen ? -1 : 1;
	sa = specificity(a);
	sb = specificity(b);
	if (sa != sb)
		return sa > sb ? -1 : 1;
	wa = (unsigned int)a->port_hi - a->port_lo;
	wb = (unsigned int)b->port_hi - b->port_lo;
	if (wa != wb)
		return wa < wb ? -1 : 1;
	if (a->verdict != b->verdict)
		return a->verdict == DF_DENY ? -1 : 1;
	return 0;
}

static int prefix_covers(const uint8_t *net, unsigned int len, const uint8_t *addr)
{
	unsigned int full = len / 8, rem = len % 8;

	if (memcmp(net, addr, full))
		return 0;
	if (rem && ((net[full] ^ addr[full]) & (uint8_t)(0xff << (8 - rem))))
		return 0;
	return 1;
}

static int rule_matches(const struct df_rule *r, int target, const uint8_t *addr,
			uint8_t proto_bit, uint16_t port)
{
	if (r->target != target)
		return 0;
	if (!(r->proto_mask & proto_bit))
		return 0;
	if (port < r->port_lo || port > r->port_hi)
		return 0;
	return prefix_covers(r->addr, r->prefixlen, addr);
}

void df_policy_judge(const struct df_policy *p, int family, const uint8_t *addr,
		     uint8_t proto_bit, uint16_t port, uint8_t *ret_verdict, uint32_t *ret_rule_id)
{
	int target = family == 4 ? DF_TARGET_CIDR4 : DF_TARGET_CIDR6;
	const struct df_rule *best = NULL;
	size_t best_i = 0;

	for (size_t i = 0; i < p->n_rules; i++) {
		const struct df_rule *r = &p->rules[i];

		if (!rule_matches(r, target, addr, proto_bit, port))
			continue;
		if (!best || rule_precedes(r, best) < 0) {
			best = r;
			best_i = i;
		}
	}
	if (!best) {
		*ret_verdict = (uint8_t)p->default_verdict;
		*ret_rule_id = DF_RULE_DEFAULT;
		return;
	}
	*ret_verdict = best->verdict;
	*ret_rule_id = (uint32_t)best_i + 1;
}

/* ---- compilation to LPM contents ---- */

struct prefix_ref {
	const struct df_rule *r;
	uint32_t id;
};

static unsigned int cmp_bytes;

static int cmp_ref_addr(const void *a, const void *b)
{
	const struct prefix_ref *x = a, *y = b;
	int c = memcmp(x->r->addr, y->r->addr, cmp_bytes);

	if (c)
		return c;
	return (int)x->r->prefixlen - (int)y->r->prefixlen;
}

static int cmp_ref_prec(const void *a, const void *b)
{
	const struct prefix_ref *x = a, *y = b;
	int c = rule_precedes(x->r, y->r);

	if (c)
		return c;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Index of the first ref with exactly (addr, len), or -1. */
static ssize_t find_prefix(const struct prefix_ref *refs, size_t n, const uint8_t *addr,
			   unsigned int len)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(refs[mid].r->addr, addr, cmp_bytes);

		if (!c)
			c = (int)refs[mid].r->prefixlen - (int)len;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < n && !memcmp(refs[lo].r->addr, addr, cmp_bytes) && refs[lo].r->prefixlen == len)
		return (ssize_t)lo;
	return -1;
}

void df_compiled_free(struct df_compiled *c)
{
	free(c->keys);
	free(c->vals);
	memset(c, 0, sizeof(*c));
}

int df_policy_compile(const struct df_policy *p, int family, struct df_compiled *ret,
		      struct df_error *e)
{
	int target = family == 4 ? DF_TARGET_CIDR4 : DF_TARGET_CIDR6;
	unsigned int bytes = family == 4 ? 4 : 16;
	_cleanup_free_ struct prefix_ref *refs = NULL;
	_cleanup_free_ struct prefix_ref *cand = NULL;
	struct df_compiled c = {};
	size_t n = 0, ncand_cap = 0;
	int err = 0;

	for (size_t i = 0; i < p->n_rules; i++)
		n += p->rules[i].target == target;
	if (n == 0) {
		*ret = c;
		return 0;
	}
	refs = calloc(n, sizeof(*refs));
	c.keys = calloc(n, sizeof(*c.keys));
	c.vals = calloc(n, sizeof(*c.vals));
	if (!refs || !c.keys || !c.vals) {
		df_compiled_free(&c);
		return -ENOMEM;
	}
	n = 0;
	for (size_t i = 0; i < p->n_rules; i++)
		if (p->rules[i].target == target)
			refs[n++] = (struct prefix_ref){ &p->rules[i], (uint32_t)i + 1 };
	cmp_bytes = bytes;
	qsort(refs, n, sizeof(*refs), cmp_ref_addr);

	for (size_t i = 0; i < n; i++) {
		const struct df_rule *pr = refs[i].r;
		struct df_prefix_val *v;
		size_t nc = 0;

		if (i > 0 && refs[i - 1].r->prefixlen == pr->prefixlen &&
		    !memcmp(refs[i - 1].r->addr, pr->addr, bytes))
			continue; /* same prefix: done at its first rule */

		/* candidates: every rule on this prefix and on each covering prefix */
		for (int len = pr->prefixlen; len >= 0; len--) {
			uint8_t net[16];
			ssize_t j;

			memcpy(net, pr->addr, 16);
			mask_addr(net, bytes, (unsigned int)len);
			j = find_prefix(refs, n, net, (unsigned int)len);
			for (; j >= 0 && (size_t)j < n && refs[j].r->prefixlen == len &&
			       !memcmp(refs[j].r->addr, net, bytes);
			     j++) {
				if (nc == ncand_cap) {
					size_t cap = ncand_cap ? ncand_cap * 2 : 32;
					struct prefix_ref *nb = realloc(cand, cap * sizeof(*nb));

					if (!nb) {
						df_compiled_free(&c);
						return -ENOMEM;
					}
					cand = nb;
					ncand_cap = cap;
				}
				cand[nc++] = refs[j];
			}
		}
		qsort(cand, nc, sizeof(*cand), cmp_ref_prec);

		v = &c.vals[c.n];
		c.keys[c.n].prefixlen = pr->prefixlen;
		memcpy(c.keys[c.n].addr, pr->addr, bytes);
		for (size_t k = 0; k < nc; k++) {
			const struct df_rule *r = cand[k].r;

			if (v->n == DF_MAX_ENTRIES) {
				err = df_fail(e, -E2BIG,
					      "rule \"%s\": more than %d rules with protocols or ports overlap this prefix; merge some",
					      pr->text, DF_MAX_ENTRIES);
				df_compiled_free(&c);
				return err;
			}
			v->e[v->n] = (struct df_entry){
				.proto_mask = r->proto_mask,
				.verdict = r->verdict,
				.port_lo = r->port_lo,
				.port_hi = r->port_hi,
				.rule_id = cand[k].id,
			};
			v->n++;
			/* an unconditional rule hides everything less specific */
			if (r->proto_mask == DF_PROTO_ANY && !r->has_ports)
				break;
		}
		c.n++;
	}
	*ret = c;
	return 0;
}

void df_compiled_judge(const struct df_compiled *c, int family, const uint8_t *addr,
		       uint8_t proto_bit, uint16_t port, int default_verdict, uint8_t *ret_verdict,
		       uint32_t *ret_rule_id)
{
	const struct df_prefix_val *best = NULL;
	int best_len = -1;

	for (size_t i = 0; i < c->n; i++) {
		if ((int)c->keys[i].prefixlen > best_len &&
		    prefix_covers(c->keys[i].addr, c->keys[i].prefixlen, addr)) {
			best = &c->vals[i];
			best_len = c->keys[i].prefixlen;
		}
	}
	(void)family;
	if (best) {
		for (uint32_t i = 0; i < best->n && i < DF_MAX_ENTRIES; i++) {
			const struct df_entry *en = &best->e[i];

			if (!(en->proto_mask & proto_bit))
				continue;
			if (port < en->port_lo || port > en->port_hi)
				continue;
			*ret_verdict = en->verdict;
			*ret_rule_id = en->rule_id;
			return;
		}
	}
	*ret_verdict = (uint8_t)default_verdict;
	*ret_rule_id = DF_RULE_DEFAULT;
}

void df_compiled_filter(const struct df_compiled *c, __u64 *ret_words)
{
	memset(ret_words, 0, DF_ADDR_FILTER_WORDS * sizeof(*ret_words));
	for (size_t i = 0; i < c->n; i++) {
		/* the 2^(16 - len) values of the first 16 bits that a /len prefix covers */
		uint32_t len = c->keys[i].prefixlen < 16 ? c->keys[i].prefixlen : 16;
		uint32_t span = 1u << (16 - len);
		uint32_t first = ((uint32_t)c->keys[i].addr[0] << 8 | c->keys[i].addr[1]) & ~(span - 1);

		if (span < 64) {
			ret_words[first / 64] |= ((1ULL << span) - 1) << (first % 64);
			continue;
		}
		for (uint32_t w = first / 64; w < (first + span) / 64; w++)
			ret_words[w] = ~0ULL;
	}
}

/* ---- names ---- */

void df_name_hash(const char *dotted, uint32_t b1, uint32_t b2, uint32_t *ret_h1,
		  uint32_t *ret_h2)
{
	uint8_t wire[DF_DNS_NAME_MAX + 2];
	size_t n = 0, len = strlen(dotted);
	uint64_t h1 = 0, h2 = 0;

	/* dotted to wire: each label preceded by its length, then the zero byte */
	for (size_t i = 0; i <= len && n < DF_DNS_NAME_MAX;) {
		size_t l = strcspn(dotted + i, ".");

		if (l == 0)
			break;
		if (n + l + 1 >= DF_DNS_NAME_MAX)
			break;
		wire[n++] = (uint8_t)l;
		for (size_t k = 0; k < l; k++)
			wire[n++] = (uint8_t)tolower((unsigned char)dotted[i + k]);
		i += l + 1;
	}
	wire[n++] = 0;
	for (size_t k = n; k-- > 0;) {
		h1 = (h1 * b1 + wire[k] + 1) % DF_HASH_P1;
		h2 = (h2 * b2 + wire[k] + 1) % DF_HASH_P2;
	}
	*ret_h1 = (uint32_t)h1;
	*ret_h2 = (uint32_t)h2;
}

static size_t count_labels(const char *s)
{
	size_t n = 1;

	for (; *s; s++)
		n += *s == '.';
	return n;
}

/* Rank of a target: lower decides first. exact < *. < **., longer suffix first. */
static int target_rank(int kind, const char *suffix)
{
	return kind * 1000 - (int)count_labels(suffix);
}

struct name_ref {
	const struct df_rule *r;
	uint32_t id;
	int rank;
};

static int cmp_name_ref(const void *a, const void *b)
{
	const struct name_ref *x = a, *y = b;
	struct df_rule rx, ry;
	int c;

	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	/* then as for addresses, without the prefix length */
	rx = *x->r;
	ry = *y->r;
	rx.prefixlen = ry.prefixlen = 0;
	c = rule_precedes(&rx, &ry);
	if (c)
		return c;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Does the rule target (kind, suffix) match every name that target T matches? */
static int target_implied(int kind, const char *suffix, int tkind, const char *tsuffix)
{
	size_t sl = strlen(suffix), tl = strlen(tsuffix);

	if (kind == tkind && !strcmp(suffix, tsuffix))
		return 1;
	if (kind == DF_NAME_EXACT)
		return 0;
	if (kind == DF_NAME_ONE) {
		/* *.S matches the exact name x.S */
		const char *dot = strchr(tsuffix, '.');

		return tkind == DF_NAME_EXACT && dot && !strcmp(dot + 1, suffix);
	}
	/* **.S matches whatever lies strictly below S */
	if (tkind == DF_NAME_EXACT || tkind == DF_NAME_MANY)
		return tl > sl && tsuffix[tl - sl - 1] == '.' && !strcmp(tsuffix + tl - sl, suffix);
	/* T = *.TS matches x.TS: below S when TS is S or below it */
	return !strcmp(tsuffix, suffix) ||
	       (tl > sl && tsuffix[tl - sl - 1] == '.' && !strcmp(tsuffix + tl - sl, suffix));
}

void df_compiled_names_free(struct df_compiled_names *c)
{
	free(c->keys);
	free(c->vals);
	memset(c, 0, sizeof(*c));
}

int df_policy_compile_names(const struct df_policy *p, uint32_t b1, uint32_t b2,
			    struct df_compiled_names *ret, struct df_error *e)
{
	struct df_compiled_names c = {};
	_cleanup_free_ struct name_ref *cand = NULL;
	size_t n = df_policy_count_names(p);

	if (n == 0) {
		*ret = c;
		return 0;
	}
	c.keys = calloc(n, sizeof(*c.keys));
	c.vals = calloc(n, sizeof(*c.vals));
	cand = calloc(n, sizeof(*cand));
	if (!c.keys || !c.vals || !cand) {
		df_compiled_names_free(&c);
		return -ENOMEM;
	}
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct df_rule *t = &p->rules[i];
		struct df_prefix_val *v;
		size_t nc = 0, j;
		uint32_t h1, h2;

		if (t->target != DF_TARGET_NAME)
			continue;
		/* one entry per distinct target: done at its first rule */
		for (j = 0; j < i; j++)
			if (p->rules[j].target == DF_TARGET_NAME &&
			    p->rules[j].name_kind == t->name_kind && !strcmp(p->rules[j].name, t->name))
				break;
		if (j < i)
			continue;
		for (j = 0; j < p->n_rules; j++) {
			const struct df_rule *r = &p->rules[j];

			if (r->target != DF_TARGET_NAME ||
			    !target_implied(r->name_kind, r->name, t->name_kind, t->name))
				continue;
			cand[nc++] = (struct name_ref){ r, (uint32_t)j + 1,
							target_rank(r->name_kind, r->name) };
		}
		qsort(cand, nc, sizeof(*cand), cmp_name_ref);
		v = &c.vals[c.n];
		for (size_t k = 0; k < nc; k++) {
			const struct df_rule *r = cand[k].r;

			if (v->n == DF_MAX_ENTRIES) {
				int err = df_fail(e, -E2BIG,
						  "rule \"%s\": more than %d rules with protocols or ports apply to this name; merge some",
						  t->text, DF_MAX_ENTRIES);
				df_compiled_names_free(&c);
				return err;
			}
			v->e[v->n++] = (struct df_entry){
				.proto_mask = r->proto_mask,
				.verdict = r->verdict,
				.port_lo = r->port_lo,
				.port_hi = r->port_hi,
				.rule_id = cand[k].id,
			};
			if (r->verdict == DF_DENY)
				v->flags |= DF_PV_SOME_DENY;
			if (r->proto_mask == DF_PROTO_ANY && !r->has_ports)
				break;
		}
		df_name_hash(t->name, b1, b2, &h1, &h2);
		c.keys[c.n] = (struct df_name_key){ h1, h2, t->name_kind };
		{
			__u32 bit = DF_NAME_FILTER_BIT(h1, t->name_kind);

			c.filter[bit / 64] |= 1ULL << (bit % 64);
		}
		c.n++;
	}
	*ret = c;
	return 0;
}

/* Does the rule's name pattern match the (normalized) name? */
static int name_matches(const struct df_rule *r, const char *name)
{
	size_t sl = strlen(r->name), nl = strlen(name);
	const char *dot;

	switch (r->name_kind) {
	case DF_NAME_EXACT:
		return !strcmp(name, r->name);
	case DF_NAME_ONE:
		dot = strchr(name, '.');
		return dot && !strcmp(dot + 1, r->name);
	default:
		return nl > sl && name[nl - sl - 1] == '.' && !strcmp(name + nl - sl, r->name);
	}
}

int df_policy_judge_name(const struct df_policy *p, const char *name, uint8_t proto_bit,
			 uint16_t port, uint8_t *ret_verdict, uint32_t *ret_rule_id)
{
	char norm[DF_NAME_MAX_LEN + 2];
	const struct df_rule *best = NULL;
	size_t len = strlen(name), best_i = 0;
	int best_rank = 0;

	if (len > DF_NAME_MAX_LEN + 1)
		return -E2BIG;
	for (size_t i = 0; i <= len; i++)
		norm[i] = (char)tolower((unsigned char)name[i]);
	if (len && norm[len - 1] == '.')
		norm[len - 1] = '\0';
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct df_rule *r = &p->rules[i];
		struct df_rule rx, bx;
		int rank;

		if (r->target != DF_TARGET_NAME || !name_matches(r, norm))
			continue;
		if (!(r->proto_mask & proto_bit) || port < r->port_lo || port > r->port_hi)
			continue;
		rank = target_rank(r->name_kind, r->name);
		if (best) {
			rx = *r;
			bx = *best;
			rx.prefixlen = bx.prefixlen = 0;
		}
		if (!best || rank < best_rank ||
		    (rank == best_rank && rule_precedes(&rx, &bx) < 0)) {
			best = r;
			best_i = i;
			best_rank = rank;
		}
	}
	if (!best)
		return 0;
	*ret_verdict = best->verdict;
	*ret_rule_id = (uint32_t)best_i + 1;
	return 1;
}

int df_rule_specificity(const struct df_rule *r)
{
	return specificity(r);
}

int df_rule_cmp_precedence(const struct df_rule *a, const struct df_rule *b)
{
	static const int order[] = {
		[DF_TARGET_CIDR4] = 0, [DF_TARGET_CIDR6] = 1, [DF_TARGET_NAME] = 2
	};

	if (a->target != b->target)
		return order[a->target] - order[b->target];
	if (a->target == DF_TARGET_NAME) {
		int ra = target_rank(a->name_kind, a->name), rb = target_rank(b->name_kind, b->name);

		if (ra != rb)
			return ra < rb ? -1 : 1;
	}
	/* names carry no prefix length: the rest is as for addresses */
	return rule_precedes(a, b);
}

/* ---- loosening ---- */

static int ports_overlap(const struct df_rule *a, const struct df_rule *b)
{
	return (a->proto_mask & b->proto_mask) && a->port_lo <= b->port_hi &&
	       b->port_lo <= a->port_hi;
}

int df_rule_covers(const struct df_rule *a, const struct df_rule *b)
{
	if (a->target != b->target || (b->proto_mask & ~a->proto_mask) ||
	    a->port_lo > b->port_lo || a->port_hi < b->port_hi)
		return 0;
	if (a->target == DF_TARGET_NAME)
		return target_implied(a->name_kind, a->name, b->name_kind, b->name);
	return a->prefixlen <= b->prefixlen && prefix_covers(a->addr, a->prefixlen, b->addr);
}

int df_rule_overlaps(const struct df_rule *a, const struct df_rule *b)
{
	const struct df_rule *wide, *narrow;

	if (a->target != b->target || !ports_overlap(a, b))
		return 0;
	/* two name patterns share a name only when one holds every name of the other */
	if (a->target == DF_TARGET_NAME)
		return target_implied(a->name_kind, a->name, b->name_kind, b->name) ||
		       target_implied(b->name_kind, b->name, a->name_kind, a->name);
	/* and two prefixes share an address only when one contains the other */
	wide = a->prefixlen <= b->prefixlen ? a : b;
	narrow = wide == a ? b : a;
	return prefix_covers(wide->addr, wide->prefixlen, narrow->addr);
}

int df_rule_cmp_specific(const struct df_rule *a, const struct df_rule *b)
{
	struct df_rule x = *a, y = *b;

	x.verdict = y.verdict = DF_DENY;
	return df_rule_cmp_precedence(&x, &y);
}

int df_rule_loosens(const struct df_policy *admin, int admin_default, const struct df_rule *r,
		    size_t *ret_which)
{
	int covered = 0;

	if (r->verdict != DF_ALLOW)
		return 0;
	for (size_t i = 0; i < admin->n_rules; i++) {
		const struct df_rule *d = &admin->rules[i];
		size_t j;

		if (d->verdict != DF_DENY || !df_rule_overlaps(r, d) ||
		    df_rule_cmp_specific(r, d) > 0)
			continue;
		/* where an admin allow covering r already beats d, r changes nothing */
		for (j = 0; j < admin->n_rules; j++) {
			const struct df_rule *a = &admin->rules[j];

			if (a->verdict == DF_ALLOW && df_rule_covers(a, r) &&
			    df_rule_cmp_specific(a, d) < 0)
				break;
		}
		if (j == admin->n_rules) {
			*ret_which = i;
			return 1;
		}
	}
	if (admin_default != DF_DENY)
		return 0;
	for (size_t i = 0; i < admin->n_rules && !covered; i++)
		covered = admin->rules[i].verdict == DF_ALLOW && df_rule_covers(&admin->rules[i], r);
	if (covered)
		return 0;
	*ret_which = DF_LOOSENS_DEFAULT;
	return 1;
}

static int rule_copy(const struct df_rule *src, struct df_rule *ret)
{
	struct df_rule r = *src;

	r.text = strdup(src->text);
	r.source = src->source ? strdup(src->source) : NULL;
	r.name = src->name ? strdup(src->name) : NULL;
	if (!r.text || (src->source && !r.source) || (src->name && !r.name)) {
		df_rule_free(&r);
		return -ENOMEM;
	}
	*ret = r;
	return 0;
}

int df_policy_prepend_rules(struct df_policy *p, const struct df_policy *src)
{
	size_t n = src->n_rules + p->n_rules, k;
	struct df_rule *rules;

	if (src->n_rules == 0)
		return 0;
	rules = calloc(n, sizeof(*rules));
	if (!rules)
		return -ENOMEM;
	for (k = 0; k < src->n_rules; k++) {
		if (rule_copy(&src->rules[k], &rules[k]) < 0) {
			while (k--)
				df_rule_free(&rules[k]);
			free(rules);
			return -ENOMEM;
		}
	}
	if (p->n_rules)
		memcpy(rules + k, p->rules, p->n_rules * sizeof(*rules));
	free(p->rules);
	p->rules = rules;
	p->n_rules = p->cap_rules = n;
	return 0;
}
