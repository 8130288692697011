// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The rule grammar, lists, modes and precedence (DESIGN.md, "The policy").
 * Precedence is checked twice: through df_policy_judge (the reference) and
 * through df_policy_compile + df_compiled_judge (what the kernel does with the
 * LPM contents), then the two are cross-checked on random policies.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../hook/policy.h"
#include "unit.h"


/* ---- df_rule_parse: valid rules ---- */

struct valid_case {
	const char *in;
	const char *text; /* normalized */
	int target;
	const char *addr; /* CIDR rules: the network as text; NULL for names */
	int prefixlen;
	int has_ports, port_lo, port_hi;
	int proto;
	const char *name; /* name rules */
	int kind;
};

#define ANY DF_PROTO_ANY
#define TCP DF_PROTO_TCP
#define UDP DF_PROTO_UDP
#define C4 DF_TARGET_CIDR4
#define C6 DF_TARGET_CIDR6
#define NM DF_TARGET_NAME

static const struct valid_case valid_cases[] = {
	/* names */
	{ "github.com", "github.com", NM, NULL, 0, 0, 0, 65535, ANY, "github.com", DF_NAME_EXACT },
	{ "*.github.com", "*.github.com", NM, NULL, 0, 0, 0, 65535, ANY, "github.com",
	  DF_NAME_ONE },
	{ "**.github.com", "**.github.com", NM, NULL, 0, 0, 0, 65535, ANY, "github.com",
	  DF_NAME_MANY },
	{ "GitHub.COM", "github.com", NM, NULL, 0, 0, 0, 65535, ANY, "github.com", DF_NAME_EXACT },
	{ "github.com.", "github.com", NM, NULL, 0, 0, 0, 65535, ANY, "github.com", DF_NAME_EXACT },
	{ "*.API.GitHub.com.", "*.api.github.com", NM, NULL, 0, 0, 0, 65535, ANY, "api.github.com",
	  DF_NAME_ONE },
	{ "**.GitHub.com.:443", "**.github.com:443", NM, NULL, 0, 1, 443, 443, ANY, "github.com",
	  DF_NAME_MANY },
	{ "localhost", "localhost", NM, NULL, 0, 0, 0, 65535, ANY, "localhost", DF_NAME_EXACT },
	{ "api-1.ex_ample.org", "api-1.ex_ample.org", NM, NULL, 0, 0, 0, 65535, ANY,
	  "api-1.ex_ample.org", DF_NAME_EXACT },
	{ "xn--bcher-kva.example", "xn--bcher-kva.example", NM, NULL, 0, 0, 0, 65535, ANY,
	  "xn--bcher-kva.example", DF_NAME_EXACT },
	{ "host.1a", "host.1a", NM, NULL, 0, 0, 0, 65535, ANY, "host.1a", DF_NAME_EXACT },
	{ "1.2.3.example", "1.2.3.example", NM, NULL, 0, 0, 0, 65535, ANY, "1.2.3.example",
	  DF_NAME_EXACT },
	{ "tcp/github.com:443", "tcp/github.com:443", NM, NULL, 0, 1, 443, 443, TCP, "github.com",
	  DF_NAME_EXACT },
	{ "TCP/github.com", "tcp/github.com", NM, NULL, 0, 0, 0, 65535, TCP, "github.com",
	  DF_NAME_EXACT },
	{ "udp/**.example.com:53", "udp/**.example.com:53", NM, NULL, 0, 1, 53, 53, UDP,
	  "example.com", DF_NAME_MANY },
	{ "Udp/*.example.com:5000-5010", "udp/*.example.com:5000-5010", NM, NULL, 0, 1, 5000, 5010,
	  UDP, "example.com", DF_NAME_ONE },
	/* IPv4 */
	{ "1.2.3.4", "1.2.3.4", C4, "1.2.3.4", 32, 0, 0, 65535, ANY, NULL, 0 },
	{ "1.2.3.4/32", "1.2.3.4", C4, "1.2.3.4", 32, 0, 0, 65535, ANY, NULL, 0 },
	{ "140.82.112.0/20", "140.82.112.0/20", C4, "140.82.112.0", 20, 0, 0, 65535, ANY, NULL, 0 },
	{ "0.0.0.0/0", "0.0.0.0/0", C4, "0.0.0.0", 0, 0, 0, 65535, ANY, NULL, 0 },
	{ "255.255.255.255", "255.255.255.255", C4, "255.255.255.255", 32, 0, 0, 65535, ANY, NULL,
	  0 },
	{ "10.0.0.5:5432", "10.0.0.5:5432", C4, "10.0.0.5", 32, 1, 5432, 5432, ANY, NULL, 0 },
	{ "tcp/10.0.0.5:5432", "tcp/10.0.0.5:5432", C4, "10.0.0.5", 32, 1, 5432, 5432, TCP, NULL,
	  0 },
	{ "udp/10.0.0.0/8:53-60", "udp/10.0.0.0/8:53-60", C4, "10.0.0.0", 8, 1, 53, 60, UDP, NULL,
	  0 },
	{ "10.0.0.0/8:1-65535", "10.0.0.0/8:1-65535", C4, "10.0.0.0", 8, 1, 1, 65535, ANY, NULL,
	  0 },
	{ "10.0.0.0/8:65535", "10.0.0.0/8:65535", C4, "10.0.0.0", 8, 1, 65535, 65535, ANY, NULL,
	  0 },
	{ "10.0.0.0/8:80-80", "10.0.0.0/8:80", C4, "10.0.0.0", 8, 1, 80, 80, ANY, NULL, 0 },
	{ "tcp/0.0.0.0/0:1", "tcp/0.0.0.0/0:1", C4, "0.0.0.0", 0, 1, 1, 1, TCP, NULL, 0 },
	/* IPv6 */
	{ "[2606:50c0::/32]:443", "[2606:50c0::/32]:443", C6, "2606:50c0::", 32, 1, 443, 443, ANY,
	  NULL, 0 },
	{ "[2001:DB8::1]", "[2001:db8::1]", C6, "2001:db8::1", 128, 0, 0, 65535, ANY, NULL, 0 },
	{ "[2001:db8::1/128]", "[2001:db8::1]", C6, "2001:db8::1", 128, 0, 0, 65535, ANY, NULL, 0 },
	{ "[2001:db8:0:0::/64]", "[2001:db8::/64]", C6, "2001:db8::", 64, 0, 0, 65535, ANY, NULL,
	  0 },
	{ "udp/[::/0]:53", "udp/[::/0]:53", C6, "::", 0, 1, 53, 53, UDP, NULL, 0 },
	{ "[::1]:8080", "[::1]:8080", C6, "::1", 128, 1, 8080, 8080, ANY, NULL, 0 },
	{ "tcp/[fe80::/10]:1-1023", "tcp/[fe80::/10]:1-1023", C6, "fe80::", 10, 1, 1, 1023, TCP,
	  NULL, 0 },
	{ "[::fffe:0:0/95]", "[::fffe:0:0/95]", C6, "::fffe:0:0", 95, 0, 0, 65535, ANY, NULL, 0 },
	/* IPv4-mapped IPv6 rules are IPv4 rules */
	{ "[::ffff:10.0.0.0/104]", "10.0.0.0/8", C4, "10.0.0.0", 8, 0, 0, 65535, ANY, NULL, 0 },
	{ "[::ffff:1.2.3.4]", "1.2.3.4", C4, "1.2.3.4", 32, 0, 0, 65535, ANY, NULL, 0 },
	{ "[::FFFF:0a01:0203]:22", "10.1.2.3:22", C4, "10.1.2.3", 32, 1, 22, 22, ANY, NULL, 0 },
	{ "tcp/[::ffff:192.168.0.0/112]:443", "tcp/192.168.0.0/16:443", C4, "192.168.0.0", 16, 1,
	  443, 443, TCP, NULL, 0 },
	{ "[::ffff:0:0/96]", "0.0.0.0/0", C4, "0.0.0.0", 0, 0, 0, 65535, ANY, NULL, 0 },
};

static void describe_rule(char *buf, size_t len, int target, const uint8_t *addr, int prefixlen,
			  int has_ports, int lo, int hi, int proto, const char *name, int kind)
{
	char a[INET6_ADDRSTRLEN] = "-";

	if (target == C4)
		inet_ntop(AF_INET, addr, a, sizeof(a));
	else if (target == C6)
		inet_ntop(AF_INET6, addr, a, sizeof(a));
	snprintf(buf, len, "target=%d addr=%s/%d ports=%d:%d-%d proto=%#x name=%s kind=%d", target,
		 a, prefixlen, has_ports, lo, hi, proto, name ? name : "(none)",
		 target == NM ? kind : 0);
}

static void test_valid_rules(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(valid_cases); i++) {
		const struct valid_case *c = &valid_cases[i];
		struct df_error e = { "" };
		struct df_rule r;
		uint8_t want_addr[16] = {};
		char name[400], want[300], got[300];
		int err;

		err = df_rule_parse(c->in, DF_DENY, &r, &e);
		snprintf(name, sizeof(name), "df_rule_parse \"%s\": accepted", esc(c->in));
		CHECK(name, err == 0, "expected 0, got %d (%s)", err, e.msg);
		if (err)
			continue;
		snprintf(name, sizeof(name), "df_rule_parse \"%s\": normalized text", esc(c->in));
		CHECK_STR(name, c->text, r.text);

		if (c->target == C4)
			inet_pton(AF_INET, c->addr, want_addr);
		else if (c->target == C6)
			inet_pton(AF_INET6, c->addr, want_addr);
		describe_rule(want, sizeof(want), c->target, want_addr, c->prefixlen, c->has_ports,
			      c->port_lo, c->port_hi, c->proto, c->name, c->kind);
		describe_rule(got, sizeof(got), r.target, r.addr, r.prefixlen, r.has_ports,
			      r.port_lo, r.port_hi, r.proto_mask, r.name, r.name_kind);
		snprintf(name, sizeof(name), "df_rule_parse \"%s\": fields", esc(c->in));
		CHECK_STR(name, want, got);
		snprintf(name, sizeof(name), "df_rule_parse \"%s\": verdict kept, no source",
			 esc(c->in));
		CHECK(name, r.verdict == DF_DENY && r.source == NULL, "verdict %d source %s",
		      r.verdict, r.source ? r.source : "(null)");
		if (c->target != NM) {
			snprintf(name, sizeof(name),
				 "df_rule_parse \"%s\": address bytes past the family are zero",
				 esc(c->in));
			CHECK(name, !memcmp(r.addr, want_addr, 16), "address bytes differ");
		}

		/* the normalized text parses to itself */
		{
			struct df_rule again;

			err = df_rule_parse(r.text, DF_DENY, &again, &e);
			snprintf(name, sizeof(name),
				 "df_rule_parse \"%s\": normalized text is stable", esc(c->in));
			CHECK(name, err == 0 && !strcmp(again.text, r.text),
			      "reparse of \"%s\": err %d text \"%s\"", r.text, err,
			      err ? e.msg : again.text);
			if (!err)
				df_rule_free(&again);
		}
		df_rule_free(&r);
	}
}

/* Names at the length limits, built at run time. */
static void test_name_limits(void)
{
	char label63[64], name253[260], buf[320];
	struct df_error e = { "" };
	struct df_rule r;
	int err;

	memset(label63, 'a', 63);
	label63[63] = '\0';
	/* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 */
	snprintf(name253, sizeof(name253), "%s.%s.%s.%.61s", label63, label63, label63, label63);
	CHECK_INT("name of 253 bytes: length of the test input", 253, strlen(name253));

	err = df_rule_parse(name253, DF_ALLOW, &r, &e);
	CHECK("df_rule_parse: a 253-byte name is accepted", err == 0, "got %d (%s)", err, e.msg);
	if (!err) {
		CHECK_STR("df_rule_parse: a 253-byte name is kept whole", name253, r.name);
		df_rule_free(&r);
	}

	snprintf(buf, sizeof(buf), "%s.", name253);
	err = df_rule_parse(buf, DF_ALLOW, &r, &e);
	CHECK("df_rule_parse: a 253-byte name with a trailing dot is accepted", err == 0,
	      "got %d (%s)", err, e.msg);
	if (!err) {
		CHECK_STR("df_rule_parse: the trailing dot is dropped", name253, r.text);
		df_rule_free(&r);
	}

	snprintf(buf, sizeof(buf), "**.%s:443", name253);
	err = df_rule_parse(buf, DF_ALLOW, &r, &e);
	CHECK("df_rule_parse: **. and a port around a 253-byte name", err == 0, "got %d (%s)", err,
	      e.msg);
	if (!err) {
		CHECK_INT("df_rule_parse: **. 253-byte name kind", DF_NAME_MANY, r.name_kind);
		df_rule_free(&r);
	}

	snprintf(buf, sizeof(buf), "%s.com", label63);
	err = df_rule_parse(buf, DF_ALLOW, &r, &e);
	CHECK("df_rule_parse: a 63-byte label is accepted", err == 0, "got %d (%s)", err, e.msg);
	if (!err)
		df_rule_free(&r);

	snprintf(buf, sizeof(buf), "%sa", name253);
	err = df_rule_parse(buf, DF_ALLOW, &r, &e);
	CHECK_INT("df_rule_parse: a 254-byte name is refused", -E2BIG, err);
	CHECK_MSG("df_rule_parse: 254-byte name message", e.msg, "longer than 253 bytes");

	snprintf(buf, sizeof(buf), "%sa.com", label63);
	err = df_rule_parse(buf, DF_ALLOW, &r, &e);
	CHECK_INT("df_rule_parse: a 64-byte label is refused", -EINVAL, err);
	CHECK_MSG("df_rule_parse: 64-byte label message", e.msg, "longer than 63 bytes");

	memset(buf, 'a', 301);
	buf[301] = '\0';
	err = df_rule_parse(buf, DF_ALLOW, &r, &e);
	CHECK_INT("df_rule_parse: a 301-byte rule is refused", -E2BIG, err);
	CHECK_MSG("df_rule_parse: 301-byte rule message", e.msg, "longer than 300 bytes");
}

/* ---- df_rule_parse: invalid rules ---- */

struct invalid_case {
	const char *in;
	int err;
	const char *what; /* the problem, in the message */
	const char *rule; /* the rule as named in the message, NULL: not checked */
};

static const struct invalid_case invalid_cases[] = {
	{ "", -EINVAL, "empty rule", NULL },
	{ "git*hub.com", -EINVAL, "'*' is only allowed as a whole first label", "git*hub.com" },
	{ "a.*.com", -EINVAL, "'*' is only allowed", "a.*.com" },
	{ "*", -EINVAL, "'*' is only allowed", "\"*\"" },
	{ "**", -EINVAL, "'*' is only allowed", "\"**\"" },
	{ "***.com", -EINVAL, "'*' is only allowed", "***.com" },
	{ "*.*.com", -EINVAL, "'*' is only allowed", "*.*.com" },
	{ "github.*", -EINVAL, "'*' is only allowed", "github.*" },
	{ "*.", -EINVAL, "empty name", "\"*.\"" },
	{ "**.", -EINVAL, "empty name", "\"**.\"" },
	{ ".", -EINVAL, "is not an IPv4 address", "\".\"" },
	{ "2001:db8::1", -EINVAL, "must be written in brackets", "2001:db8::1" },
	{ "2001:db8::/32", -EINVAL, "must be written in brackets", "2001:db8::/32" },
	{ "tcp/::1", -EINVAL, "must be written in brackets", "tcp/::1" },
	{ "10.0.0.1/8", -EINVAL, "host bits", "10.0.0.1/8" },
	{ "10.0.0.0/6", -EINVAL, "host bits", "10.0.0.0/6" },
	{ "[::ffff:0:0/95]", -EINVAL, "host bits", "[::ffff:0:0/95]" },
	{ "[2001:db8::1/32]", -EINVAL, "host bits", "[2001:db8::1/32]" },
	{ "[::ffff:10.0.0.1/104]", -EINVAL, "host bits", "[::ffff:10.0.0.1/104]" },
	{ "10.0.0.0/33", -EINVAL, "not in 0..32", "10.0.0.0/33" },
	{ "10.0.0.0/", -EINVAL, "not in 0..32", "10.0.0.0/" },
	{ "10.0.0.0/1000", -EINVAL, "not in 0..32", "10.0.0.0/1000" },
	{ "10.0.0.0/-1", -EINVAL, "is not an IPv4 prefix", "10.0.0.0/-1" },
	{ "10.0.0.0/8/8", -EINVAL, "not in 0..32", "10.0.0.0/8/8" },
	{ "[::/129]", -EINVAL, "not in 0..128", "[::/129]" },
	{ "[::/]", -EINVAL, "not in 0..128", "[::/]" },
	{ "[::/x]", -EINVAL, "not in 0..128", "[::/x]" },
	{ "1.2.3.4:0", -EINVAL, "not a number in 1..65535", "1.2.3.4:0" },
	{ "1.2.3.4:65536", -EINVAL, "not a number in 1..65535", "1.2.3.4:65536" },
	{ "1.2.3.4:99999999999", -EINVAL, "not a number in 1..65535", "1.2.3.4:99999999999" },
	{ "1.2.3.4:http", -EINVAL, "not a number in 1..65535", "1.2.3.4:http" },
	{ "1.2.3.4:+80", -EINVAL, "not a number in 1..65535", "1.2.3.4:+80" },
	{ "1.2.3.4:0-80", -EINVAL, "must be PORT-PORT", "1.2.3.4:0-80" },
	{ "1.2.3.4:80-65536", -EINVAL, "must be PORT-PORT", "1.2.3.4:80-65536" },
	{ "1.2.3.4:80-79", -EINVAL, "is reversed", "1.2.3.4:80-79" },
	{ "[::1]:443-80", -EINVAL, "is reversed", "[::1]:443-80" },
	{ "1.2.3.4:1-", -EINVAL, "must be PORT-PORT", "1.2.3.4:1-" },
	{ "1.2.3.4:-5", -EINVAL, "must be PORT-PORT", "1.2.3.4:-5" },
	{ "1.2.3.4:1-2-3", -EINVAL, "must be PORT-PORT", "1.2.3.4:1-2-3" },
	{ "1.2.3.4:", -EINVAL, "empty port", "1.2.3.4:" },
	{ "[::1]:", -EINVAL, "empty port", "[::1]:" },
	{ "github.com:", -EINVAL, "empty port", "github.com:" },
	{ "[::1]x", -EINVAL, "unexpected \"x\" after ']'", "[::1]x" },
	{ "[::1]/64", -EINVAL, "after ']'", "[::1]/64" },
	{ "[::1]]", -EINVAL, "after ']'", "[::1]]" },
	{ "[::1", -EINVAL, "'[' without ']'", "[::1" },
	{ "[1.2.3.4]", -EINVAL, "is not an IPv6 address", "[1.2.3.4]" },
	{ "[]", -EINVAL, "is not an IPv6 address", "[]" },
	{ "[github.com]", -EINVAL, "is not an IPv6 address", "[github.com]" },
	{ "exa mple.com", -EINVAL, "character ' ' is not allowed", "exa mple.com" },
	{ "exa!mple.com", -EINVAL, "character '!' is not allowed", "exa!mple.com" },
	{ "ex\xc3\xa9.com", -EINVAL, "is not allowed in a name", NULL },
	{ "a..b", -EINVAL, "empty label", "a..b" },
	{ ".example.com", -EINVAL, "empty label", ".example.com" },
	{ "example.com..", -EINVAL, "empty label", "example.com.." },
	{ "*..com", -EINVAL, "empty label", "*..com" },
	{ "10.0.0", -EINVAL, "\"10.0.0\" is not an IPv4 address", "10.0.0" },
	{ "1.2.3.4.5", -EINVAL, "is not an IPv4 address", "1.2.3.4.5" },
	{ "256.1.1.1", -EINVAL, "is not an IPv4 address", "256.1.1.1" },
	{ "10", -EINVAL, "is not an IPv4 address", "\"10\"" },
	{ "example.123", -EINVAL, "last label is numeric", "example.123" },
	{ "**.10.0.0", -EINVAL, "last label is numeric", "**.10.0.0" },
	{ "icmp/1.2.3.4", -EINVAL, "\"icmp/1.2.3.4\" is not an IPv4 prefix", NULL },
	{ "tcp/udp/1.2.3.4", -EINVAL, "\"udp/1.2.3.4\" is not an IPv4 prefix", "tcp/udp/1.2.3.4" },
	{ "github.com/24", -EINVAL, "is not an IPv4 prefix", "github.com/24" },
	{ "tcp/", -EINVAL, "no address or name", "\"tcp/\"" },
	{ "udp/:53", -EINVAL, "no address or name", "udp/:53" },
	{ ":80", -EINVAL, "no address or name", "\":80\"" },
};

static void test_invalid_rules(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(invalid_cases); i++) {
		const struct invalid_case *c = &invalid_cases[i];
		struct df_error e = { "" };
		struct df_rule r, before;
		char name[400];
		int err;

		memset(&r, 0x5a, sizeof(r));
		before = r;
		err = df_rule_parse(c->in, DF_DENY, &r, &e);
		snprintf(name, sizeof(name), "df_rule_parse \"%s\": refused", esc(c->in));
		CHECK(name, err == c->err, "expected %d, got %d (%s)", c->err, err,
		      err ? e.msg : r.text);
		if (!err) {
			df_rule_free(&r);
			continue;
		}
		snprintf(name, sizeof(name), "df_rule_parse \"%s\": message says what is wrong",
			 esc(c->in));
		CHECK_MSG(name, e.msg, c->what);
		if (c->rule) {
			snprintf(name, sizeof(name), "df_rule_parse \"%s\": message names the rule",
				 esc(c->in));
			CHECK_MSG(name, e.msg, c->rule);
		}
		snprintf(name, sizeof(name), "df_rule_parse \"%s\": out-parameter untouched",
			 esc(c->in));
		CHECK(name, !memcmp(&r, &before, sizeof(r)), "the rule was written on failure");
	}
}

/* Errors are one line, whatever the rule held: they go to stderr and syslog. */
static void test_rule_message_hygiene(void)
{
	static const char *const rules[] = {
		"evil\x1b[2J.com",
		"a\x07.com",
		"1.2.3.4:8\x1b"
		"0",
		"[::1\x1b]",
		"tcp/\x01",
		"\x1b[31m",
		"*.\x7f.com",
	};
	char name[300];

	for (size_t i = 0; i < ARRAY_SIZE(rules); i++) {
		struct df_error e = { "" };
		struct df_rule r;
		int err = df_rule_parse(rules[i], DF_DENY, &r, &e);

		snprintf(name, sizeof(name),
			 "df_rule_parse \"%s\": refused with a one-line message", esc(rules[i]));
		CHECK(name, err < 0 && e.msg[0] && !strpbrk(e.msg, "\x01\x07\x1b\x7f"),
		      "got %d, message \"%s\"", err, esc(e.msg));
		if (!err)
			df_rule_free(&r);
	}
}

/* ---- df_policy_add_list ---- */

static void test_add_list(void)
{
	static const char *const want[] = { "a.com",	       "**.b.com",
					    "1.2.3.4",	       "tcp/5.6.7.0/24:443",
					    "[2001:db8::/32]", "c.org" };
	struct df_policy p;
	struct df_error e = { "" };
	char name[200], big[400];
	int err;

	df_policy_init(&p);
	err = df_policy_add_list(&p,
				 "  a.com, **.B.com\t1.2.3.4,,\n tcp/5.6.7.0/24:443 ,\r\n"
				 "[2001:db8::/32]\tc.org.  ",
				 DF_DENY, "annotation depfence.io/deny", 100, &e);
	CHECK_INT("df_policy_add_list: commas and whitespace separate rules", 0, err);
	CHECK_INT("df_policy_add_list: rule count", ARRAY_SIZE(want), p.n_rules);
	for (size_t i = 0; i < ARRAY_SIZE(want) && i < p.n_rules; i++) {
		snprintf(name, sizeof(name), "df_policy_add_list: rule %zu text", i + 1);
		CHECK_STR(name, want[i], p.rules[i].text);
		snprintf(name, sizeof(name), "df_policy_add_list: rule %zu source", i + 1);
		CHECK_STR(name, "annotation depfence.io/deny", p.rules[i].source);
		snprintf(name, sizeof(name), "df_policy_add_list: rule %zu verdict", i + 1);
		CHECK_INT(name, DF_DENY, p.rules[i].verdict);
	}
	CHECK_INT("df_policy_count_names: three name rules", 3, df_policy_count_names(&p));

	err = df_policy_add_list(&p, "10.0.0.0/8", DF_ALLOW, "--allow", 100, &e);
	CHECK("df_policy_add_list: a second list appends", err == 0 && p.n_rules == 7,
	      "err %d n_rules %zu", err, p.n_rules);
	if (p.n_rules == 7) {
		CHECK_STR("df_policy_add_list: appended rule source", "--allow", p.rules[6].source);
		CHECK_INT("df_policy_add_list: appended rule verdict", DF_ALLOW,
			  p.rules[6].verdict);
	}
	df_policy_free(&p);

	/* empty lists are no rules, not an error */
	static const char *const empty[] = { "", " ", ",,,", " ,\t\n, " };
	for (size_t i = 0; i < ARRAY_SIZE(empty); i++) {
		df_policy_init(&p);
		err = df_policy_add_list(&p, empty[i], DF_DENY, "k", 10, &e);
		snprintf(name, sizeof(name), "df_policy_add_list: empty list %zu adds nothing", i);
		CHECK(name, err == 0 && p.n_rules == 0, "err %d n_rules %zu", err, p.n_rules);
		df_policy_free(&p);
	}

	/* errors name the key and the rule */
	df_policy_init(&p);
	err = df_policy_add_list(&p, "a.com git*hub.com", DF_DENY, "annotation depfence.io/deny",
				 100, &e);
	CHECK_INT("df_policy_add_list: a bad rule fails the list", -EINVAL, err);
	CHECK_MSG("df_policy_add_list: error names the key", e.msg,
		  "annotation depfence.io/deny: ");
	CHECK_MSG("df_policy_add_list: error names the rule", e.msg, "\"git*hub.com\"");
	CHECK_MSG("df_policy_add_list: error says what is wrong", e.msg, "'*' is only allowed");
	df_policy_free(&p);

	df_policy_init(&p);
	err = df_policy_add_list(&p, "[::1]:0", DF_ALLOW, "--allow", 100, &e);
	CHECK_INT("df_policy_add_list: bad port", -EINVAL, err);
	CHECK_MSG("df_policy_add_list: bad port names the flag", e.msg, "--allow: ");
	CHECK_MSG("df_policy_add_list: bad port names the rule", e.msg, "[::1]:0");
	df_policy_free(&p);

	/* the max_rules cap */
	df_policy_init(&p);
	err = df_policy_add_list(&p, "1.1.1.1 2.2.2.2 3.3.3.3", DF_DENY,
				 "annotation depfence.io/deny", 3, &e);
	CHECK("df_policy_add_list: exactly max_rules is fine", err == 0 && p.n_rules == 3,
	      "err %d n_rules %zu", err, p.n_rules);
	df_policy_free(&p);

	df_policy_init(&p);
	err = df_policy_add_list(&p, "1.1.1.1 2.2.2.2 3.3.3.3", DF_DENY,
				 "annotation depfence.io/deny", 2, &e);
	CHECK_INT("df_policy_add_list: more than max_rules is refused", -E2BIG, err);
	CHECK_MSG("df_policy_add_list: cap message names the key", e.msg,
		  "annotation depfence.io/deny");
	CHECK_MSG("df_policy_add_list: cap message gives the cap", e.msg, "more than 2 rules");
	df_policy_free(&p);

	df_policy_init(&p);
	err = df_policy_add_list(&p, "1.1.1.1", DF_DENY, "k", 0, &e);
	CHECK_INT("df_policy_add_list: max_rules 0 refuses any rule", -E2BIG, err);
	df_policy_free(&p);

	/* a token longer than a rule may be */
	memset(big, 'a', 310);
	memcpy(big + 310, ".com", 5);
	df_policy_init(&p);
	err = df_policy_add_list(&p, big, DF_DENY, "--deny", 10, &e);
	CHECK_INT("df_policy_add_list: an over-long token is refused", -E2BIG, err);
	CHECK_MSG("df_policy_add_list: over-long token names the flag", e.msg, "--deny: ");
	CHECK_MSG("df_policy_add_list: over-long token says why", e.msg, "longer than 300 bytes");
	df_policy_free(&p);
}

/* ---- modes and defaults ---- */

struct word_case {
	const char *in;
	int err;
	int want;
};

static void test_mode_default(void)
{
	static const struct word_case modes[] = {
		{ "observe", 0, DF_MODE_OBSERVE }, { "audit", 0, DF_MODE_AUDIT },
		{ "enforce", 0, DF_MODE_ENFORCE }, { "", -EINVAL, 0 },
		{ "Enforce", -EINVAL, 0 },	   { "enforce ", -EINVAL, 0 },
		{ "block", -EINVAL, 0 },	   { "deny", -EINVAL, 0 },
	};
	static const struct word_case defaults[] = {
		{ "allow", 0, DF_ALLOW }, { "deny", 0, DF_DENY },   { "", -EINVAL, 0 },
		{ "Deny", -EINVAL, 0 },	  { "block", -EINVAL, 0 },  { "audit", -EINVAL, 0 },
		{ "allow,", -EINVAL, 0 }, { " allow", -EINVAL, 0 },
	};
	char name[200];

	for (size_t i = 0; i < ARRAY_SIZE(modes); i++) {
		int v = -1, err = df_parse_mode(modes[i].in, &v);

		snprintf(name, sizeof(name), "df_parse_mode \"%s\"", modes[i].in);
		CHECK(name, err == modes[i].err && v == (err ? -1 : modes[i].want),
		      "expected %d/%d, got %d/%d", modes[i].err, err ? -1 : modes[i].want, err, v);
	}
	for (size_t i = 0; i < ARRAY_SIZE(defaults); i++) {
		int v = -1, err = df_parse_default(defaults[i].in, &v);

		snprintf(name, sizeof(name), "df_parse_default \"%s\"", defaults[i].in);
		CHECK(name, err == defaults[i].err && v == (err ? -1 : defaults[i].want),
		      "expected %d/%d, got %d/%d", defaults[i].err, err ? -1 : defaults[i].want,
		      err, v);
	}
	CHECK_STR("df_mode_name observe", "observe", df_mode_name(DF_MODE_OBSERVE));
	CHECK_STR("df_mode_name audit", "audit", df_mode_name(DF_MODE_AUDIT));
	CHECK_STR("df_mode_name enforce", "enforce", df_mode_name(DF_MODE_ENFORCE));
	CHECK_STR("df_verdict_name allow", "allow", df_verdict_name(DF_ALLOW));
	CHECK_STR("df_verdict_name deny", "deny", df_verdict_name(DF_DENY));

	{
		struct df_policy p;

		df_policy_init(&p);
		CHECK("df_policy_init: audit, default allow, no rules",
		      p.mode == DF_MODE_AUDIT && p.default_verdict == DF_ALLOW && p.n_rules == 0 &&
			      p.label == NULL,
		      "mode %d default %d n_rules %zu", p.mode, p.default_verdict, p.n_rules);
		df_policy_free(&p);
	}
}

/* ---- precedence ---- */

/*
 * spec: rules separated by spaces, each "+RULE" (allow) or "-RULE" (deny);
 * rule ids follow the order, from 1.
 */
static int policy_from_spec(struct df_policy *p, const char *spec, int def, struct df_error *e)
{
	char buf[2048], *save = NULL;

	df_policy_init(p);
	p->default_verdict = def;
	snprintf(buf, sizeof(buf), "%s", spec);
	for (char *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		int err = df_policy_add_list(p, t + 1, t[0] == '-' ? DF_DENY : DF_ALLOW, "test", 1,
					     e);

		if (err < 0)
			return err;
	}
	return 0;
}

static int parse_dest(int family, const char *s, uint8_t *addr)
{
	memset(addr, 0, 16);
	return inet_pton(family == 4 ? AF_INET : AF_INET6, s, addr) == 1 ? 0 : -EINVAL;
}

#define ALLOW DF_ALLOW
#define DENY DF_DENY
#define OTH DF_PROTO_OTHER

struct prec_case {
	const char *what;
	const char *rules;
	int def;
	int family;
	const char *daddr;
	uint8_t proto;
	uint16_t dport;
	uint8_t verdict;
	uint32_t rule_id;
};

static const struct prec_case prec_cases[] = {
	{ "longest prefix wins (inner allow)", "-10.0.0.0/8 +10.1.0.0/16", ALLOW, 4, "10.1.2.3",
	  TCP, 443, ALLOW, 2 },
	{ "longest prefix wins (outer deny)", "-10.0.0.0/8 +10.1.0.0/16", ALLOW, 4, "10.2.0.1", TCP,
	  443, DENY, 1 },
	{ "host rule beats /0", "-0.0.0.0/0 +10.0.0.5", ALLOW, 4, "10.0.0.5", UDP, 53, ALLOW, 2 },
	{ "/0 catches the rest", "-0.0.0.0/0 +10.0.0.5", ALLOW, 4, "10.0.0.6", UDP, 53, DENY, 1 },
	{ "a longer bare prefix beats a shorter rule with proto and port",
	  "-tcp/10.0.0.0/8:443 +10.1.0.0/16", ALLOW, 4, "10.1.0.1", TCP, 443, ALLOW, 2 },
	{ "prefix length is decided bit by bit", "-10.0.0.0/23 +10.0.1.0/24", DENY, 4, "10.0.1.255",
	  TCP, 1, ALLOW, 2 },
	{ "prefix length is decided bit by bit (sibling)", "-10.0.0.0/23 +10.0.1.0/24", ALLOW, 4,
	  "10.0.0.255", TCP, 1, DENY, 1 },
	{ "a covering rule applies when the longer prefix has no match",
	  "-tcp/10.0.0.0/8:443 +10.1.0.0/16:80", ALLOW, 4, "10.1.0.1", TCP, 443, DENY, 1 },
	{ "the longer prefix's conditional rule when it matches",
	  "-tcp/10.0.0.0/8:443 +10.1.0.0/16:80", ALLOW, 4, "10.1.0.1", TCP, 80, ALLOW, 2 },
	{ "three levels: the middle one applies", "-10.0.0.0/8 +tcp/10.1.0.0/16 -10.1.1.0/24:22",
	  ALLOW, 4, "10.1.1.1", TCP, 80, ALLOW, 2 },
	{ "three levels: the innermost one applies", "-10.0.0.0/8 +tcp/10.1.0.0/16 -10.1.1.0/24:22",
	  ALLOW, 4, "10.1.1.1", TCP, 22, DENY, 3 },
	{ "three levels: the outermost one applies", "-10.0.0.0/8 +tcp/10.1.0.0/16 -10.1.1.0/24:22",
	  ALLOW, 4, "10.1.1.1", UDP, 53, DENY, 1 },
	{ "same prefix: proto+port over port", "-10.0.0.0/8:443 +tcp/10.0.0.0/8:443", ALLOW, 4,
	  "10.9.9.9", TCP, 443, ALLOW, 2 },
	{ "same prefix: port only rule for the other proto", "-10.0.0.0/8:443 +tcp/10.0.0.0/8:443",
	  ALLOW, 4, "10.9.9.9", UDP, 443, DENY, 1 },
	{ "same prefix: port over proto", "-tcp/10.0.0.0/8 +10.0.0.0/8:443", ALLOW, 4, "10.0.0.1",
	  TCP, 443, ALLOW, 2 },
	{ "same prefix: proto rule off the port", "-tcp/10.0.0.0/8 +10.0.0.0/8:443", ALLOW, 4,
	  "10.0.0.1", TCP, 80, DENY, 1 },
	{ "same prefix: neither matches", "-tcp/10.0.0.0/8 +10.0.0.0/8:443", DENY, 4, "10.0.0.1",
	  UDP, 80, DENY, 0 },
	{ "same prefix: proto over bare", "-10.0.0.0/8 +udp/10.0.0.0/8", ALLOW, 4, "10.0.0.1", UDP,
	  53, ALLOW, 2 },
	{ "same prefix: bare when the proto differs", "-10.0.0.0/8 +udp/10.0.0.0/8", ALLOW, 4,
	  "10.0.0.1", TCP, 53, DENY, 1 },
	{ "same prefix: proto+port over everything",
	  "-10.0.0.0/8 -tcp/10.0.0.0/8 -10.0.0.0/8:443 +tcp/10.0.0.0/8:443", DENY, 4, "10.0.0.1",
	  TCP, 443, ALLOW, 4 },
	{ "same prefix: narrower port range wins", "-10.0.0.0/8:1-1000 +10.0.0.0/8:400-500", ALLOW,
	  4, "10.0.0.1", TCP, 443, ALLOW, 2 },
	{ "same prefix: wider range outside the narrow one",
	  "-10.0.0.0/8:1-1000 +10.0.0.0/8:400-500", ALLOW, 4, "10.0.0.1", TCP, 600, DENY, 1 },
	{ "same prefix: a single port is narrower than a range",
	  "-10.0.0.0/8:442-444 +10.0.0.0/8:443", DENY, 4, "10.0.0.1", TCP, 443, ALLOW, 2 },
	{ "tie: deny wins (deny listed second)", "+10.0.0.0/8:443 -10.0.0.0/8:443", ALLOW, 4,
	  "10.0.0.1", TCP, 443, DENY, 2 },
	{ "tie: deny wins (deny listed first)", "-10.0.0.0/8:443 +10.0.0.0/8:443", ALLOW, 4,
	  "10.0.0.1", TCP, 443, DENY, 1 },
	{ "tie: deny wins between equal-width ranges", "+10.0.0.0/8:80-90 -10.0.0.0/8:85-95", ALLOW,
	  4, "10.0.0.1", TCP, 87, DENY, 2 },
	{ "equal-width ranges: only one covers the port", "+10.0.0.0/8:80-90 -10.0.0.0/8:85-95",
	  ALLOW, 4, "10.0.0.1", TCP, 82, ALLOW, 1 },
	{ "tie between bare deny rules: the first one", "-10.0.0.0/8 -10.0.0.0/8", ALLOW, 4,
	  "10.0.0.1", TCP, 1, DENY, 1 },
	{ "tcp and udp rules on one prefix: each its own protocol",
	  "+tcp/10.0.0.0/8 -udp/10.0.0.0/8", ALLOW, 4, "10.0.0.1", UDP, 1, DENY, 2 },
	{ "default allow when nothing matches", "-10.0.0.0/8", ALLOW, 4, "192.168.1.1", TCP, 80,
	  ALLOW, 0 },
	{ "default deny when nothing matches", "+10.0.0.0/8", DENY, 4, "192.168.1.1", TCP, 80, DENY,
	  0 },
	{ "no rules at all", "", DENY, 4, "1.1.1.1", UDP, 53, DENY, 0 },
	{ "allow-list: exception on a port", "+10.0.0.0/8:443 +tcp/192.168.0.0/16", DENY, 4,
	  "10.0.0.1", TCP, 443, ALLOW, 1 },
	{ "allow-list: off the port", "+10.0.0.0/8:443 +tcp/192.168.0.0/16", DENY, 4, "10.0.0.1",
	  TCP, 80, DENY, 0 },
	{ "allow-list: off the proto", "+10.0.0.0/8:443 +tcp/192.168.0.0/16", DENY, 4,
	  "192.168.3.3", UDP, 53, DENY, 0 },
	{ "allow-list: on the proto", "+10.0.0.0/8:443 +tcp/192.168.0.0/16", DENY, 4, "192.168.3.3",
	  TCP, 22, ALLOW, 2 },
	{ "allow-list: deny carved out of an allowed range", "+10.0.0.0/8 -10.0.0.53:53", DENY, 4,
	  "10.0.0.53", UDP, 53, DENY, 2 },
	{ "allow-list: the rest of the range", "+10.0.0.0/8 -10.0.0.53:53", DENY, 4, "10.0.0.53",
	  TCP, 443, ALLOW, 1 },
	{ "a rule without ports matches port 0", "-10.0.0.0/8", ALLOW, 4, "10.0.0.1", UDP, 0, DENY,
	  1 },
	{ "a rule with ports does not match port 0", "-10.0.0.0/8:1-65535", ALLOW, 4, "10.0.0.1",
	  UDP, 0, ALLOW, 0 },
	{ "bare rules match other protocols", "-10.0.0.0/8", ALLOW, 4, "10.0.0.1", OTH, 0, DENY,
	  1 },
	{ "tcp and udp rules do not match other protocols", "-tcp/10.0.0.0/8 -udp/10.0.0.0/8",
	  ALLOW, 4, "10.0.0.1", OTH, 0, ALLOW, 0 },
	{ "a mapped rule judges IPv4", "-[::ffff:10.0.0.0/104]", ALLOW, 4, "10.1.1.1", TCP, 80,
	  DENY, 1 },
	{ "name rules do not judge addresses", "-github.com -**.github.com", ALLOW, 4, "140.82.1.1",
	  TCP, 443, ALLOW, 0 },
	{ "IPv6 rules do not judge IPv4", "-[::/0]", ALLOW, 4, "1.2.3.4", TCP, 80, ALLOW, 0 },
	{ "IPv4 rules do not judge IPv6", "-0.0.0.0/0", ALLOW, 6, "::1", TCP, 80, ALLOW, 0 },
	{ "IPv6: longest prefix with a port", "-[2001:db8::/32] +[2001:db8:1::/48]:443", ALLOW, 6,
	  "2001:db8:1::5", TCP, 443, ALLOW, 2 },
	{ "IPv6: off the port falls to the covering prefix",
	  "-[2001:db8::/32] +[2001:db8:1::/48]:443", ALLOW, 6, "2001:db8:1::5", TCP, 80, DENY, 1 },
	{ "IPv6: outside every rule", "-[2001:db8::/32] +[2001:db8:1::/48]:443", ALLOW, 6,
	  "2001:db9::1", TCP, 443, ALLOW, 0 },
	{ "IPv6: /128 host rule", "+[::/0] -[2001:db8::1]", DENY, 6, "2001:db8::1", UDP, 53, DENY,
	  2 },
	{ "IPv6: /0 catches the rest", "+[::/0] -[2001:db8::1]", DENY, 6, "2001:db8::2", UDP, 53,
	  ALLOW, 1 },
	{ "IPv6: odd prefix length", "-[fe80::/10]", ALLOW, 6, "febf::1", TCP, 1, DENY, 1 },
	{ "IPv6: just outside an odd prefix length", "-[fe80::/10]", ALLOW, 6, "fec0::1", TCP, 1,
	  ALLOW, 0 },
	{ "IPv6: udp/[::/0]:53", "+udp/[::/0]:53", DENY, 6, "2606:4700::1111", UDP, 53, ALLOW, 1 },
	{ "IPv6: udp/[::/0]:53 is not tcp", "+udp/[::/0]:53", DENY, 6, "2606:4700::1111", TCP, 53,
	  DENY, 0 },
};

static const char *vname(int v)
{
	return v == DF_DENY ? "deny" : v == DF_ALLOW ? "allow" : "?";
}

static void test_precedence(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(prec_cases); i++) {
		const struct prec_case *c = &prec_cases[i];
		struct df_error e = { "" };
		struct df_compiled comp = {};
		struct df_policy p;
		uint8_t addr[16], v = 0;
		uint32_t id = 0xdead;
		char name[300];
		int err;

		err = policy_from_spec(&p, c->rules, c->def, &e);
		if (!err)
			err = parse_dest(c->family, c->daddr, addr);
		snprintf(name, sizeof(name), "precedence \"%s\": setup", c->what);
		CHECK(name, err == 0, "rules \"%s\" dest %s: %d %s", c->rules, c->daddr, err,
		      e.msg);
		if (err) {
			df_policy_free(&p);
			continue;
		}

		df_policy_judge(&p, c->family, addr, c->proto, c->dport, &v, &id);
		snprintf(name, sizeof(name), "precedence \"%s\": reference judge", c->what);
		CHECK(name, v == c->verdict && id == c->rule_id,
		      "expected %s rule %u, got %s rule %u", vname(c->verdict), c->rule_id,
		      vname(v), id);

		err = df_policy_compile(&p, c->family, &comp, &e);
		v = 0;
		id = 0xdead;
		if (!err)
			df_compiled_judge(&comp, c->family, addr, c->proto, c->dport,
					  p.default_verdict, &v, &id);
		snprintf(name, sizeof(name), "precedence \"%s\": compiled judge", c->what);
		CHECK(name, err == 0 && v == c->verdict && id == c->rule_id,
		      "expected %s rule %u, got %s rule %u (compile %d %s)", vname(c->verdict),
		      c->rule_id, vname(v), id, err, err ? e.msg : "");
		df_compiled_free(&comp);
		df_policy_free(&p);
	}
}

/* ---- compile limits ---- */

static void test_compile_limits(void)
{
	struct df_error e = { "" };
	struct df_compiled comp = {};
	struct df_policy p;
	char spec[2048];
	size_t off;
	int err;

	/* DF_MAX_ENTRIES conditional rules on one prefix fit; one more does not */
	off = 0;
	for (int i = 1; i <= DF_MAX_ENTRIES; i++)
		off += snprintf(spec + off, sizeof(spec) - off, "-tcp/10.0.0.0/8:%d ", i);
	err = policy_from_spec(&p, spec, DF_ALLOW, &e);
	if (!err)
		err = df_policy_compile(&p, 4, &comp, &e);
	CHECK("df_policy_compile: DF_MAX_ENTRIES rules on one prefix fit", err == 0 && comp.n == 1,
	      "err %d (%s), %zu prefixes", err, err ? e.msg : "", comp.n);
	if (!err && comp.n == 1)
		CHECK_INT("df_policy_compile: every entry kept", DF_MAX_ENTRIES, comp.vals[0].n);
	df_compiled_free(&comp);
	df_policy_free(&p);

	off += snprintf(spec + off, sizeof(spec) - off, "-tcp/10.0.0.0/8:%d ", DF_MAX_ENTRIES + 1);
	err = policy_from_spec(&p, spec, DF_ALLOW, &e);
	CHECK_INT("df_policy_compile: E2BIG setup", 0, err);
	e.msg[0] = '\0';
	comp = (struct df_compiled){};
	err = df_policy_compile(&p, 4, &comp, &e);
	CHECK_INT("df_policy_compile: DF_MAX_ENTRIES + 1 overlapping rules give -E2BIG", -E2BIG,
		  err);
	CHECK_MSG("df_policy_compile: E2BIG message says how many", e.msg, "more than 16 rules");
	CHECK_MSG("df_policy_compile: E2BIG message names the prefix", e.msg, "10.0.0.0/8");
	CHECK_MSG("df_policy_compile: E2BIG message says what to do", e.msg, "merge some");
	CHECK("df_policy_compile: nothing returned on failure", comp.n == 0 && !comp.keys, "n %zu",
	      comp.n);
	df_policy_free(&p);

	/* inherited entries count: 8 on /8 and 9 on /16 overlap at the /16 */
	off = 0;
	for (int i = 1; i <= 8; i++)
		off += snprintf(spec + off, sizeof(spec) - off, "-udp/10.0.0.0/8:%d ", i);
	for (int i = 1; i <= 9; i++)
		off += snprintf(spec + off, sizeof(spec) - off, "+tcp/10.1.0.0/16:%d ", i);
	err = policy_from_spec(&p, spec, DF_ALLOW, &e);
	if (!err)
		err = df_policy_compile(&p, 4, &comp, &e);
	CHECK_INT("df_policy_compile: inherited entries count toward the limit", -E2BIG, err);
	CHECK_MSG("df_policy_compile: inherited E2BIG names the inner prefix", e.msg,
		  "10.1.0.0/16");
	df_compiled_free(&comp);
	df_policy_free(&p);

	/* rules hidden behind an unconditional one do not count */
	off = 0;
	for (int i = 1; i <= 15; i++)
		off += snprintf(spec + off, sizeof(spec) - off, "-udp/10.0.0.0/8:%d ", i);
	for (int i = 1; i <= 5; i++)
		off += snprintf(spec + off, sizeof(spec) - off, "+tcp/10.1.0.0/16:%d ", i);
	off += snprintf(spec + off, sizeof(spec) - off, "+10.1.0.0/16");
	err = policy_from_spec(&p, spec, DF_ALLOW, &e);
	if (!err)
		err = df_policy_compile(&p, 4, &comp, &e);
	CHECK("df_policy_compile: an unconditional rule hides what it covers",
	      err == 0 && comp.n == 2, "err %d (%s), %zu prefixes", err, err ? e.msg : "", comp.n);
	df_compiled_free(&comp);
	df_policy_free(&p);

	/* a family without rules compiles to nothing */
	err = policy_from_spec(&p, "-10.0.0.0/8 -github.com", DF_ALLOW, &e);
	if (!err)
		err = df_policy_compile(&p, 6, &comp, &e);
	CHECK("df_policy_compile: no IPv6 rules, no IPv6 entries", err == 0 && comp.n == 0,
	      "err %d, %zu prefixes", err, comp.n);
	df_compiled_free(&comp);
	df_policy_free(&p);
}

/* ---- randomized cross-check ---- */

static int rnd(int n)
{
	return rand() % n;
}

static void mask_bits(uint8_t *a, int bytes, int len)
{
	for (int i = 0; i < bytes; i++) {
		int bit = i * 8;

		if (bit + 8 <= len)
			continue;
		a[i] &= bit >= len ? 0 : (uint8_t)(0xff << (8 - (len - bit)));
	}
}

static void random_rule(char *buf, size_t len)
{
	static const char *const protos[] = { "", "tcp/", "udp/" };
	char ports[24] = "", target[80];
	uint8_t a[16] = {};

	if (rnd(2)) {
		int lo = 1 + rnd(8), hi = lo + rnd(9 - lo);

		if (lo == hi)
			snprintf(ports, sizeof(ports), ":%d", lo);
		else
			snprintf(ports, sizeof(ports), ":%d-%d", lo, hi);
	}
	if (rnd(5) < 3) {
		int plen = rnd(10) == 0 ? (rnd(2) ? 0 : 8) : 16 + rnd(17);

		a[0] = 10;
		a[2] = (uint8_t)rnd(4);
		a[3] = (uint8_t)rnd(256);
		mask_bits(a, 4, plen);
		if (rnd(8) == 0)
			snprintf(target, sizeof(target), "[::ffff:%u.%u.%u.%u/%d]", a[0], a[1],
				 a[2], a[3], plen + 96);
		else
			snprintf(target, sizeof(target), "%u.%u.%u.%u/%d", a[0], a[1], a[2], a[3],
				 plen);
	} else {
		char s[INET6_ADDRSTRLEN];
		int plen = rnd(10) == 0 ? (rnd(2) ? 0 : 32) : 112 + rnd(17);

		inet_pton(AF_INET6, "2001:db8::", a);
		a[15] = (uint8_t)rnd(256);
		mask_bits(a, 16, plen);
		inet_ntop(AF_INET6, a, s, sizeof(s));
		snprintf(target, sizeof(target), "[%s/%d]", s, plen);
	}
	snprintf(buf, len, "%s%s%s", protos[rnd(3)], target, ports);
}

static void random_dest(const struct df_policy *p, int family, uint8_t *addr)
{
	int target = family == 4 ? DF_TARGET_CIDR4 : DF_TARGET_CIDR6;
	int bits = family == 4 ? 32 : 128;
	size_t n = 0;

	memset(addr, 0, 16);
	for (size_t i = 0; i < p->n_rules; i++)
		n += p->rules[i].target == target;
	if (n && rnd(2)) {
		/* inside (or right next to) a rule's prefix */
		size_t k = (size_t)rnd((int)n);

		for (size_t i = 0; i < p->n_rules; i++) {
			if (p->rules[i].target != target || k--)
				continue;
			memcpy(addr, p->rules[i].addr, 16);
			for (int b = p->rules[i].prefixlen; b < bits; b++)
				if (rnd(2))
					addr[b / 8] |= (uint8_t)(0x80 >> (b % 8));
			if (p->rules[i].prefixlen > 0 && rnd(8) == 0) {
				int b = p->rules[i].prefixlen - 1;

				addr[b / 8] ^= (uint8_t)(0x80 >> (b % 8));
			}
			break;
		}
		return;
	}
	if (family == 4) {
		if (rnd(10) == 0) {
			for (int i = 0; i < 4; i++)
				addr[i] = (uint8_t)rnd(256);
		} else {
			addr[0] = 10;
			addr[2] = (uint8_t)rnd(4);
			addr[3] = (uint8_t)rnd(256);
		}
	} else {
		if (rnd(10) == 0) {
			for (int i = 0; i < 16; i++)
				addr[i] = (uint8_t)rnd(256);
		} else {
			inet_pton(AF_INET6, "2001:db8::", addr);
			addr[15] = (uint8_t)rnd(256);
		}
	}
}

/* The address filter's bit for an address (fence.h): its first 16 bits. */
static int filter_bit(const __u64 *words, const uint8_t *addr)
{
	uint32_t top = (uint32_t)addr[0] << 8 | addr[1];

	return (words[top / 64] >> (top % 64)) & 1;
}

/* Is every bit set that a rule's prefix covers, and no other? Value by value. */
static int filter_exact(const struct df_compiled *c, const __u64 *words)
{
	static uint8_t want[65536];

	memset(want, 0, sizeof(want));
	for (size_t i = 0; i < c->n; i++) {
		uint32_t len = c->keys[i].prefixlen, top = (uint32_t)c->keys[i].addr[0] << 8 |
							     c->keys[i].addr[1];

		for (uint32_t v = 0; v < 65536; v++)
			if (len >= 16 ? v == top : (v >> (16 - len)) == (top >> (16 - len)))
				want[v] = 1;
	}
	for (uint32_t v = 0; v < 65536; v++) {
		uint8_t a[2] = { (uint8_t)(v >> 8), (uint8_t)v };

		if (filter_bit(words, a) != want[v])
			return 0;
	}
	return 1;
}

static void test_random_cross_check(void)
{
	static __u64 filter[2][DF_ADDR_FILTER_WORDS];
	static const uint8_t proto_bits[] = { DF_PROTO_TCP, DF_PROTO_UDP, DF_PROTO_OTHER };
	const int policies = 500, dests = 20;
	int compared_policies = 0, skipped = 0, judged = 0, mismatches = 0, setup_errors = 0;
	int matched_rule = 0, filtered = 0, filter_misses = 0, filter_inexact = 0;
	char first[2048] = "", first_setup[600] = "", first_filter[200] = "";

	srand(1);
	for (int pi = 0; pi < policies; pi++) {
		struct df_compiled comp[2] = {};
		struct df_error e = { "" };
		struct df_policy p;
		int nrules = 1 + rnd(40), err = 0, skip = 0;

		df_policy_init(&p);
		p.default_verdict = rnd(2) ? DF_ALLOW : DF_DENY;
		for (int i = 0; i < nrules && !err; i++) {
			char rule[128];

			random_rule(rule, sizeof(rule));
			err = df_policy_add_list(&p, rule, rnd(2) ? DF_ALLOW : DF_DENY, "random", 1,
						 &e);
			if (err && !first_setup[0])
				snprintf(first_setup, sizeof(first_setup), "\"%s\": %s", rule,
					 e.msg);
		}
		if (err) {
			setup_errors++;
			df_policy_free(&p);
			continue;
		}
		for (int f = 0; f < 2 && !skip; f++) {
			err = df_policy_compile(&p, f ? 6 : 4, &comp[f], &e);
			if (err == -E2BIG)
				skip = 1;
			else if (err) {
				setup_errors++;
				skip = 1;
				if (!first_setup[0])
					snprintf(first_setup, sizeof(first_setup), "compile: %d %s",
						 err, e.msg);
			}
		}
		if (skip) {
			skipped++;
			df_compiled_free(&comp[0]);
			df_compiled_free(&comp[1]);
			df_policy_free(&p);
			continue;
		}
		compared_policies++;
		for (int f = 0; f < 2; f++) {
			df_compiled_filter(&comp[f], filter[f]);
			/* against a bit-by-bit reading of the same rules, for some of them */
			if (pi < 100 && !filter_exact(&comp[f], filter[f]) && filter_inexact++ == 0)
				snprintf(first_filter, sizeof(first_filter), "policy %d, IPv%d", pi,
					 f ? 6 : 4);
		}
		for (int di = 0; di < dests; di++) {
			int family = rnd(2) ? 4 : 6;
			uint8_t proto = proto_bits[rnd(3)], addr[16], rv, cv;
			uint16_t port = (uint16_t)rnd(11);
			uint32_t rid, cid;

			random_dest(&p, family, addr);
			df_policy_judge(&p, family, addr, proto, port, &rv, &rid);
			df_compiled_judge(&comp[family == 6], family, addr, proto, port,
					  p.default_verdict, &cv, &cid);
			judged++;
			matched_rule += rid != DF_RULE_DEFAULT;
			/* a clear bit must mean no rule: the kernel then judges by the default */
			if (!filter_bit(filter[family == 6], addr)) {
				filtered++;
				filter_misses += cid != DF_RULE_DEFAULT;
			}
			if (rv == cv && rid == cid)
				continue;
			if (mismatches++ == 0) {
				char a[INET6_ADDRSTRLEN];
				size_t off;

				inet_ntop(family == 4 ? AF_INET : AF_INET6, addr, a, sizeof(a));
				off = snprintf(
					first, sizeof(first),
					"%s proto %#x port %u: reference %s rule %u, compiled %s rule %u; default %s; rules:",
					a, proto, port, vname(rv), rid, vname(cv), cid,
					vname(p.default_verdict));
				for (size_t i = 0; i < p.n_rules && off < sizeof(first) - 1; i++)
					off += snprintf(first + off, sizeof(first) - off, " %c%s",
							p.rules[i].verdict == DF_DENY ? '-' : '+',
							p.rules[i].text);
			}
		}
		df_compiled_free(&comp[0]);
		df_compiled_free(&comp[1]);
		df_policy_free(&p);
	}

	CHECK("random policies: every generated rule parses and compiles", setup_errors == 0,
	      "%d errors, first %s", setup_errors, first_setup);
	CHECK("random policies: most fit the kernel's entry limit",
	      compared_policies >= policies / 2,
	      "compared %d of %d policies (%d over DF_MAX_ENTRIES)", compared_policies, policies,
	      skipped);
	CHECK("random policies: destinations hit rules as well as the default",
	      matched_rule > judged / 4 && matched_rule < judged,
	      "%d of %d destinations matched a rule", matched_rule, judged);
	CHECK("random policies: compiled judge agrees with the reference", mismatches == 0,
	      "%d of %d destinations differ; first: %s", mismatches, judged, first);
	CHECK("random policies: the address filter rules out no destination a rule covers",
	      filter_misses == 0 && filtered > 0, "%d of %d filtered out had a rule",
	      filter_misses, filtered);
	CHECK("random policies: the address filter has the bits of the rules' prefixes and no other",
	      filter_inexact == 0, "%d filters differ; first: %s", filter_inexact, first_filter);
	printf("# random cross-check: %d policies compared, %d skipped (E2BIG), %d destinations, %d matched a rule\n",
	       compared_policies, skipped, judged, matched_rule);
}

/* ---- loosening: a job's allow rule against the admin's rules ---- */

struct loosen_case {
	const char *what;
	const char *admin; /* policy_from_spec: "+RULE" allow, "-RULE" deny */
	int admin_default;
	const char *job; /* one rule, "+RULE" or "-RULE" */
	const char *loosens; /* NULL: it does not; "default"; or the admin deny rule's text */
};

static const struct loosen_case loosen_cases[] = {
	/* names */
	{ "a deny never loosens", "-github.com", ALLOW, "-x.example", NULL },
	{ "an allow equal to an admin deny", "-github.com", ALLOW, "+github.com", "github.com" },
	{ "an exact name under an admin **.", "-**.github.com", ALLOW, "+api.github.com",
	  "**.github.com" },
	{ "*. is more specific than **.", "-**.github.com", ALLOW, "+*.github.com",
	  "**.github.com" },
	{ "a deeper **. is more specific", "-**.github.com", ALLOW, "+**.api.github.com",
	  "**.github.com" },
	{ "a shallower **. is less specific", "-**.api.github.com", ALLOW, "+**.github.com",
	  NULL },
	{ "**. broader than an admin exact name", "-api.github.com", ALLOW, "+**.github.com",
	  NULL },
	{ "**.x does not hold x itself", "-**.github.com", ALLOW, "+github.com", NULL },
	{ "sibling suffixes do not overlap", "-*.github.com", ALLOW, "+*.gitlab.com", NULL },
	{ "*.x and *.y.x do not overlap", "-*.github.com", ALLOW, "+*.api.github.com", NULL },
	{ "case and trailing dot do not hide a name", "-api.github.com", ALLOW,
	  "+API.GitHub.com.", "api.github.com" },
	{ "a name with ports over a bare admin name", "-github.com", ALLOW, "+tcp/github.com:443",
	  "github.com" },
	{ "a bare name under an admin name with ports", "-github.com:443", ALLOW, "+github.com",
	  NULL },
	/* addresses */
	{ "a longer prefix inside an admin deny", "-203.0.113.0/24", ALLOW, "+203.0.113.10",
	  "203.0.113.0/24" },
	{ "a shorter prefix around an admin deny", "-203.0.113.10", ALLOW, "+203.0.113.0/24",
	  NULL },
	{ "disjoint prefixes", "-203.0.113.0/24", ALLOW, "+198.51.100.0/24", NULL },
	{ "the same prefix with a port", "-203.0.113.0/24", ALLOW, "+203.0.113.0/24:443",
	  "203.0.113.0/24" },
	{ "the same prefix, the admin's has the port", "-203.0.113.0/24:443", ALLOW,
	  "+203.0.113.0/24", NULL },
	{ "disjoint protocols", "-tcp/203.0.113.0/24", ALLOW, "+udp/203.0.113.10:53", NULL },
	{ "disjoint ports", "-203.0.113.0/24:443", ALLOW, "+203.0.113.10:80", NULL },
	{ "overlapping port ranges", "-203.0.113.0/24:400-500", ALLOW, "+203.0.113.10:450-600",
	  "203.0.113.0/24:400-500" },
	{ "IPv6", "-[2001:db8::/32]", ALLOW, "+[2001:db8::10]:443", "[2001:db8::/32]" },
	{ "IPv4 rules never meet IPv6 ones", "-[::/0]", ALLOW, "+203.0.113.10", NULL },
	{ "a mapped address is IPv4", "-203.0.113.0/24", ALLOW, "+[::ffff:203.0.113.10]",
	  "203.0.113.0/24" },
	{ "a name rule never meets an address rule", "-203.0.113.0/24", ALLOW, "+github.com",
	  NULL },
	{ "the second of two admin denies", "-198.51.100.0/24 -203.0.113.0/24", ALLOW,
	  "+203.0.113.0/25", "203.0.113.0/24" },
	/* what the admin already allows */
	{ "an admin allow already wins over the deny", "-**.example.com +mirror.example.com", ALLOW,
	  "+mirror.example.com", NULL },
	{ "an admin allow that ties with its deny loses", "-203.0.113.0/24 +203.0.113.0/24", ALLOW,
	  "+203.0.113.0/24", "203.0.113.0/24" },
	{ "an admin allow that covers only part", "-**.example.com +mirror.example.com", ALLOW,
	  "+*.example.com", "**.example.com" },
	{ "a more specific admin deny under the admin allow", "-203.0.113.0/24 +203.0.113.0/25 -203.0.113.10",
	  ALLOW, "+203.0.113.10:443", "203.0.113.10" },
	/* the admin's default deny */
	{ "default deny, no admin rule", "", DENY, "+github.com", "default" },
	{ "default deny, a deny is fine", "", DENY, "-github.com", NULL },
	{ "default deny, covered by an admin **.", "+**.github.com", DENY, "+api.github.com", NULL },
	{ "default deny, covered by an admin prefix", "+203.0.113.0/24", DENY,
	  "+tcp/203.0.113.10:443", NULL },
	{ "default deny, admin allows one protocol", "+tcp/203.0.113.0/24", DENY, "+203.0.113.10",
	  "default" },
	{ "default deny, admin allows one port", "+203.0.113.0/24:443", DENY,
	  "+203.0.113.10:80-443", "default" },
	{ "default deny, an admin deny inside the allow", "+203.0.113.0/24 -203.0.113.10", DENY,
	  "+203.0.113.10:443", "203.0.113.10" },
	{ "default deny, a less specific allow leaves the deny", "+203.0.113.0/24 -203.0.113.10",
	  DENY, "+203.0.113.0/26", NULL },
	{ "default allow, nothing to loosen", "", ALLOW, "+github.com", NULL },
};

static void test_loosen(void)
{
	char name[300];

	for (size_t i = 0; i < ARRAY_SIZE(loosen_cases); i++) {
		const struct loosen_case *c = &loosen_cases[i];
		struct df_error e = { "" };
		struct df_policy admin, job;
		const char *got = NULL;
		size_t which = 0;
		int err, r;

		err = policy_from_spec(&admin, c->admin, c->admin_default, &e);
		if (!err)
			err = policy_from_spec(&job, c->job, ALLOW, &e);
		snprintf(name, sizeof(name), "loosen %s: rules parse", c->what);
		CHECK(name, err == 0 && job.n_rules == 1, "got %d (%s)", err, e.msg);
		if (err || job.n_rules != 1)
			continue;
		r = df_rule_loosens(&admin, c->admin_default, &job.rules[0], &which);
		if (r == 1)
			got = which == DF_LOOSENS_DEFAULT ? "default" :
			      which < admin.n_rules	   ? admin.rules[which].text :
							     "(out of range)";
		snprintf(name, sizeof(name), "loosen %s: %s %s against [%s] default %s", c->what,
			 c->job[0] == '+' ? "allow" : "deny", c->job + 1, c->admin,
			 vname(c->admin_default));
		CHECK(name, c->loosens ? got && !strcmp(got, c->loosens) : r == 0,
		      "expected %s, got %s (returned %d)", c->loosens ? c->loosens : "no loosening",
		      got ? got : "no loosening", r);
		df_policy_free(&admin);
		df_policy_free(&job);
	}
}

/*
 * What df_rule_loosens lets through must change nothing the admin refuses:
 * random admin policies and job allow rules; where it says "does not loosen",
 * every destination the admin's policy denies is still denied with the job's
 * rule added (df_policy_judge, the reference).
 */
static void test_loosen_random(void)
{
	static const uint8_t proto_bits[] = { DF_PROTO_TCP, DF_PROTO_UDP };
	const int rounds = 2000, dests = 40;
	int accepted = 0, refused = 0, judged = 0, wrong = 0, setup = 0;
	char first[1024] = "";

	srand(7);
	for (int ri = 0; ri < rounds; ri++) {
		struct df_error e = { "" };
		struct df_policy admin, both;
		int nrules = 1 + rnd(8), def = rnd(3) ? DF_ALLOW : DF_DENY, err = 0;
		char rule[128];
		size_t which;

		df_policy_init(&admin);
		admin.default_verdict = def;
		for (int i = 0; i < nrules && !err; i++) {
			random_rule(rule, sizeof(rule));
			err = df_policy_add_list(&admin, rule, rnd(3) ? DF_DENY : DF_ALLOW, "admin", 1,
						 &e);
		}
		df_policy_init(&both);
		both.default_verdict = def;
		random_rule(rule, sizeof(rule));
		if (!err)
			err = df_policy_add_list(&both, rule, DF_ALLOW, "job", 1, &e);
		if (!err)
			err = df_policy_prepend_rules(&both, &admin);
		if (err) {
			setup++;
			df_policy_free(&admin);
			df_policy_free(&both);
			continue;
		}
		if (df_rule_loosens(&admin, def, &both.rules[both.n_rules - 1], &which)) {
			refused++;
			df_policy_free(&admin);
			df_policy_free(&both);
			continue;
		}
		accepted++;
		for (int di = 0; di < dests; di++) {
			int family = both.rules[both.n_rules - 1].target == DF_TARGET_CIDR4 ? 4 : 6;
			uint8_t proto = proto_bits[rnd(2)], addr[16], va, vb;
			uint16_t port = (uint16_t)rnd(11);
			uint32_t ida, idb;

			random_dest(&both, family, addr);
			df_policy_judge(&admin, family, addr, proto, port, &va, &ida);
			df_policy_judge(&both, family, addr, proto, port, &vb, &idb);
			judged++;
			if (va == DF_DENY && vb != DF_DENY && wrong++ == 0) {
				char a[INET6_ADDRSTRLEN];
				size_t off;

				inet_ntop(family == 4 ? AF_INET : AF_INET6, addr, a, sizeof(a));
				off = snprintf(first, sizeof(first),
					       "%s proto %#x port %u: admin denies, with +%s allowed; default %s; admin:",
					       a, proto, port, rule, vname(def));
				for (size_t i = 0; i < admin.n_rules && off < sizeof(first) - 1; i++)
					off += snprintf(first + off, sizeof(first) - off, " %c%s",
							admin.rules[i].verdict == DF_DENY ? '-' : '+',
							admin.rules[i].text);
			}
		}
		df_policy_free(&admin);
		df_policy_free(&both);
	}
	CHECK("loosen, random: every generated policy builds", setup == 0, "%d failed", setup);
	CHECK("loosen, random: both answers occur", accepted > rounds / 10 && refused > rounds / 10,
	      "%d accepted, %d refused", accepted, refused);
	CHECK("loosen, random: an accepted allow never lets through what the admin denies",
	      wrong == 0, "%d of %d destinations; first: %s", wrong, judged, first);
	printf("# loosen cross-check: %d accepted, %d refused, %d destinations judged\n", accepted,
	       refused, judged);
}

/* The compiled name filter has the bit of every target and no other. */
static void test_name_filter(void)
{
	struct df_error e = { "" };
	struct df_compiled_names cn = {};
	__u64 want[DF_NAME_FILTER_WORDS] = {};
	struct df_policy p;
	int err, bits = 0;

	err = policy_from_spec(&p, "-github.com -**.github.com -*.x.example +api.example.com +tcp/api.example.com:443",
			       DF_ALLOW, &e);
	if (!err)
		err = df_policy_compile_names(&p, 1000003, 1000033, &cn, &e);
	CHECK("name filter: compiled", err == 0 && cn.n == 4, "err %d (%s), %zu targets", err,
	      err ? e.msg : "", cn.n);
	for (size_t i = 0; i < cn.n; i++) {
		__u32 bit = DF_NAME_FILTER_BIT(cn.keys[i].h1, cn.keys[i].kind);

		want[bit / 64] |= 1ULL << (bit % 64);
	}
	for (int w = 0; w < DF_NAME_FILTER_WORDS; w++)
		bits += __builtin_popcountll(cn.filter[w]);
	CHECK("name filter: the bit of every target and no other",
	      !memcmp(want, cn.filter, sizeof(want)) && bits >= 1 && bits <= 4, "%d bits", bits);
	df_compiled_names_free(&cn);
	df_policy_free(&p);

	err = policy_from_spec(&p, "-10.0.0.0/8", DF_ALLOW, &e);
	cn = (struct df_compiled_names){ .filter = { 1 } };
	if (!err)
		err = df_policy_compile_names(&p, 1000003, 1000033, &cn, &e);
	CHECK("name filter: empty without name rules",
	      err == 0 && !cn.filter[0] && !cn.filter[1] && !cn.filter[2] && !cn.filter[3], "err %d",
	      err);
	df_compiled_names_free(&cn);
	df_policy_free(&p);

	/*
	 * DF_PV_SOME_DENY: a target some entry refuses, on a port or on all
	 * (its addresses keep that provenance); by the target's own rules and
	 * the wider ones that apply to it
	 */
	{
		static const struct {
			const char *spec, *target;
			int kind, some_deny;
		} cases[] = {
			{ "-tcp/evil.example:443", "evil.example", DF_NAME_EXACT, 1 },
			{ "-evil.example", "evil.example", DF_NAME_EXACT, 1 },
			{ "+api.example.com", "api.example.com", DF_NAME_EXACT, 0 },
			{ "+tcp/api.example.com:443 -udp/**.example.com", "api.example.com", DF_NAME_EXACT, 1 },
			{ "+api.example.com -udp/**.example.com", "api.example.com", DF_NAME_EXACT, 0 },
			{ "+api.example.com -**.example.com", "api.example.com", DF_NAME_EXACT, 0 },
			{ "-tcp/*.example.com:22 +**.example.com", "example.com", DF_NAME_MANY, 0 },
		};

		for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
			uint32_t h1, h2;
			int found = -1;

			err = policy_from_spec(&p, cases[i].spec, DF_ALLOW, &e);
			if (!err)
				err = df_policy_compile_names(&p, 1000003, 1000033, &cn, &e);
			df_name_hash(cases[i].target, 1000003, 1000033, &h1, &h2);
			for (size_t k = 0; !err && k < cn.n; k++)
				if (cn.keys[k].h1 == h1 && cn.keys[k].h2 == h2 &&
				    cn.keys[k].kind == (__u32)cases[i].kind)
					found = !!(cn.vals[k].flags & DF_PV_SOME_DENY);
			CHECK("name rules: some-deny flag", found == cases[i].some_deny,
			      "%s, target %s: got %d (err %d %s)", cases[i].spec, cases[i].target, found,
			      err, err ? e.msg : "");
			df_compiled_names_free(&cn);
			df_policy_free(&p);
		}
	}
}

static void test_addr_filter(void)
{
	static const struct {
		const char *spec;
		int family, bits;
		const char *in, *out; /* an address whose bit is set, one whose is not */
	} cases[] = {
		{ "-0.0.0.0/0", 4, 65536, "255.255.255.255", NULL },
		{ "-128.0.0.0/1", 4, 32768, "203.0.113.10", "127.255.255.255" },
		{ "-202.0.0.0/7", 4, 512, "203.255.0.1", "204.0.0.0" },
		{ "-202.0.0.0/7 +203.0.113.0/24", 4, 512, "202.0.0.0", "201.255.255.255" },
		{ "-10.2.0.0/15", 4, 2, "10.3.255.255", "10.4.0.0" },
		{ "-198.51.0.0/16", 4, 1, "198.51.255.255", "198.52.0.0" },
		{ "-198.51.100.128/25", 4, 1, "198.51.0.1", "198.50.100.128" },
		{ "+tcp/203.0.113.10:443 -udp/203.0.113.0/24", 4, 1, "203.0.0.0", "203.1.113.10" },
		{ "-[::/0]", 6, 65536, "ffff::", NULL },
		{ "-[2000::/3]", 6, 8192, "3fff::1", "4000::" },
		{ "-[2001:db8::/32]:80", 6, 1, "2001:1::", "2002:db8::" },
		{ "-[2001:d00::/24]", 6, 1, "2001:db8::10", "2000:db8::10" },
		{ "-[::ffff:203.0.113.0/120]", 4, 1, "203.0.1.1", "203.1.0.0" },
		{ "-github.com", 4, 0, NULL, "203.0.113.10" },
	};
	static __u64 words[DF_ADDR_FILTER_WORDS];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct df_error e = { "" };
		struct df_compiled c = {};
		struct df_policy p;
		uint8_t a[16];
		char name[160];
		int err, bits = 0, f = cases[i].family;

		err = policy_from_spec(&p, cases[i].spec, DF_ALLOW, &e);
		if (!err)
			err = df_policy_compile(&p, f, &c, &e);
		memset(words, 0xa5, sizeof(words));
		df_compiled_filter(&c, words);
		for (int w = 0; w < DF_ADDR_FILTER_WORDS; w++)
			bits += __builtin_popcountll(words[w]);
		snprintf(name, sizeof(name), "address filter %s (IPv%d): %d bits", cases[i].spec, f,
			 cases[i].bits);
		CHECK(name, err == 0 && bits == cases[i].bits, "err %d (%s), %d bits", err, e.msg,
		      bits);
		if (cases[i].in) {
			snprintf(name, sizeof(name), "address filter %s: looks for %s", cases[i].spec,
				 cases[i].in);
			CHECK(name, parse_dest(f, cases[i].in, a) == 0 && filter_bit(words, a),
			      "bit clear");
		}
		if (cases[i].out) {
			snprintf(name, sizeof(name), "address filter %s: rules out %s", cases[i].spec,
				 cases[i].out);
			CHECK(name, parse_dest(f, cases[i].out, a) == 0 && !filter_bit(words, a),
			      "bit set");
		}
		df_compiled_free(&c);
		df_policy_free(&p);
	}
}

int main(void)
{
	test_name_filter();
	test_addr_filter();
	test_valid_rules();
	test_name_limits();
	test_invalid_rules();
	test_rule_message_hygiene();
	test_add_list();
	test_mode_default();
	test_precedence();
	test_compile_limits();
	test_random_cross_check();
	test_loosen();
	test_loosen_random();
	return unit_done();
}
