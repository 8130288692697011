// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The DNS half of the kernel side (DESIGN.md, "Kernel side"), through
 * BPF_PROG_TEST_RUN on the cgroup_skb programs df_egress and df_ingress.
 * Nothing is attached to any cgroup: every packet is crafted here and handed
 * to the program with bpf_prog_test_run_opts.
 *
 * The name rules are compiled by the real user space (df_policy_add_list +
 * df_policy_compile_names, as fence_start does), so a row also checks that
 * user space and kernel agree on the keyed hash and on name semantics.
 *
 * Input layout for cgroup_skb test runs: a 14-byte Ethernet header (the
 * kernel strips it, skb->protocol comes from its ethertype), then IPv4/IPv6,
 * UDP/TCP, the DNS message. Return value 1 is pass, 0 is drop.
 *
 * Needs root (BPF); prints one skip line otherwise.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../../hook/fence.h"
#include "../../hook/policy.h"
#include "../../hook/fence_obj.h"
#include "fence_maps.h"
#include "pending_table.h"
#include "unit.h"

#define UDP 17
#define TCP 6
#define B1 1000003u /* hash bases: any values in [256, P - 256] */
#define B2 1999993u
#define FLOOR 60 /* ttl_floor_s */
#define TXID 0x1234
#define CPORT 40000
#define NO_TARGET 0xff

/* the kernel lets cgroup_skb programs ask for the current task (6.18+) */
static int task_helpers;

static struct fence_bpf *skel;
static char nbuf[512];
static const char *desc_now;

/* Check names: "<row>: what". */
#define N(...) (snprintf(nbuf, sizeof(nbuf), "%s: ", desc_now),                                   \
		snprintf(nbuf + strlen(nbuf), sizeof(nbuf) - strlen(nbuf), __VA_ARGS__), nbuf)

static const uint8_t CLI4[4] = { 198, 51, 100, 2 };
static const uint8_t RES4[4] = { 198, 51, 100, 53 };
static const uint8_t OTH4[4] = { 198, 51, 100, 54 };
static uint8_t CLI6[16], RES6[16], OTH6[16];

/* ---- bytes ---- */

struct wire {
	uint8_t b[4096];
	size_t n;
};

static void put(struct wire *w, const void *p, size_t n)
{
	if (w->n + n > sizeof(w->b)) {
		fprintf(stderr, "test packet too large\n");
		exit(2);
	}
	memcpy(w->b + w->n, p, n);
	w->n += n;
}

static void put8(struct wire *w, uint8_t v)
{
	put(w, &v, 1);
}

static void put16(struct wire *w, uint16_t v)
{
	uint16_t x = htons(v);

	put(w, &x, 2);
}

static void put32(struct wire *w, uint32_t v)
{
	uint32_t x = htonl(v);

	put(w, &x, 4);
}

static void set16(struct wire *w, size_t off, uint16_t v)
{
	w->b[off] = (uint8_t)(v >> 8);
	w->b[off + 1] = (uint8_t)v;
}

/* A dotted name in wire form, terminating zero included; "" is the root. */
static void put_name(struct wire *w, const char *dotted)
{
	const char *s = dotted;

	while (*s) {
		size_t l = strcspn(s, ".");

		put8(w, (uint8_t)l);
		put(w, s, l);
		s += l;
		if (*s == '.')
			s++;
	}
	put8(w, 0);
}

static void put_addr4(struct wire *w, const char *text)
{
	uint8_t a[4];

	inet_pton(AF_INET, text, a);
	put(w, a, 4);
}

static void put_addr6(struct wire *w, const char *text)
{
	uint8_t a[16];

	inet_pton(AF_INET6, text, a);
	put(w, a, 16);
}

static void dns_header(struct wire *w, uint16_t id, uint16_t flags, uint16_t qd, uint16_t an)
{
	put16(w, id);
	put16(w, flags);
	put16(w, qd);
	put16(w, an);
	put16(w, 0);
	put16(w, 0);
}

static uint16_t ip_csum(const uint8_t *p, size_t n)
{
	uint32_t s = 0;

	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/*
 * Ethernet + IP + UDP/TCP + payload. TCP: with a 2-byte length prefix in the
 * same segment unless split (the prefix went in the segment before).
 */
struct l34 {
	int fam; /* 4 or 6 */
	int proto; /* UDP or TCP */
	int split; /* TCP: no length prefix in this segment */
	int ip_opts; /* IPv4: a 4-byte option (IHL 6) */
	const uint8_t *src, *dst;
	uint16_t sport, dport;
};

static void packet(struct wire *out, const struct l34 *t, const struct wire *dns)
{
	static const uint8_t mac[12] = { 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2 };
	int prefix = t->proto == TCP && !t->split && dns->n;
	size_t l4 = (t->proto == TCP ? 20 : 8) + (prefix ? 2 : 0) + dns->n;

	out->n = 0;
	put(out, mac, sizeof(mac));
	put16(out, t->fam == 6 ? 0x86dd : 0x0800);
	if (t->fam == 6) {
		put32(out, 0x60000000);
		put16(out, (uint16_t)l4);
		put8(out, (uint8_t)t->proto);
		put8(out, 64);
		put(out, t->src, 16);
		put(out, t->dst, 16);
	} else {
		size_t hl = t->ip_opts ? 24 : 20, start = out->n;

		put8(out, (uint8_t)(0x40 | hl / 4));
		put8(out, 0);
		put16(out, (uint16_t)(hl + l4));
		put16(out, 1);
		put16(out, 0x4000); /* DF */
		put8(out, 64);
		put8(out, (uint8_t)t->proto);
		put16(out, 0);
		put(out, t->src, 4);
		put(out, t->dst, 4);
		if (t->ip_opts)
			put32(out, 0x01010100); /* NOP NOP NOP EOL */
		set16(out, start + 10, ip_csum(out->b + start, hl));
	}
	put16(out, t->sport);
	put16(out, t->dport);
	if (t->proto == UDP) {
		put16(out, (uint16_t)l4);
		put16(out, 0);
	} else {
		put32(out, 1000);
		put32(out, 2000);
		put8(out, 0x50);
		put8(out, 0x18); /* PSH ACK */
		put16(out, 65535);
		put16(out, 0);
		put16(out, 0);
		if (prefix)
			put16(out, (uint16_t)dns->n);
	}
	put(out, dns->b, dns->n);
}

/* ---- maps and runs ---- */

static int map_fd(struct bpf_map *m)
{
	return bpf_map__fd(m);
}

static int run(struct bpf_program *prog, const struct wire *pkt, int *ret)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt->b, .data_size_in = (__u32)pkt->n,
		    .repeat = 1);
	int r = bpf_prog_test_run_opts(bpf_program__fd(prog), &o);

	*ret = r < 0 ? -1 : (int)o.retval;
	return r < 0 ? -errno : 0;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct df_name_id name_id(const char *dotted)
{
	struct df_name_id id;

	df_name_hash(dotted, B1, B2, &id.h1, &id.h2);
	return id;
}

static void lower(char *out, size_t len, const char *in)
{
	size_t i;

	for (i = 0; in[i] && i + 1 < len; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	out[i] = '\0';
}

/* ---- policies ---- */

struct pol {
	int mode, def;
	const char *deny, *allow;
};

#define MAIN_DENY "github.com **.github.com *.x.example **.y.example" /* rules 1..4 */
#define MAIN_ALLOW "api.example.com" /* rule 5 */

static const struct pol P_MAIN = { DF_MODE_ENFORCE, DF_ALLOW, MAIN_DENY, MAIN_ALLOW };
static const struct pol P_AUDIT = { DF_MODE_AUDIT, DF_ALLOW, MAIN_DENY, MAIN_ALLOW };
static const struct pol P_OBSERVE = { DF_MODE_OBSERVE, DF_ALLOW, MAIN_DENY, MAIN_ALLOW };
static const struct pol P_DENYDEF = { DF_MODE_ENFORCE, DF_DENY, MAIN_DENY, MAIN_ALLOW };
static const struct pol P_PREC = { DF_MODE_ENFORCE, DF_ALLOW, "**.github.com", "api.github.com" };
static const struct pol P_PORT = { DF_MODE_ENFORCE, DF_ALLOW, "tcp/github.com:443", NULL };

/* names at the limits, made in main() */
static char long127[256]; /* 127 labels of one byte: 255 wire bytes */
static char tail3_rule[64], tail126_rule[300], long127_rule[300];
static char max4[256]; /* 63.63.63.61: 255 wire bytes */
static char over255[300]; /* 63.63.63.62: 256 wire bytes */
static char labels128[300]; /* 128 labels: 257 wire bytes */
static char label64[80]; /* a 64-byte label */
static char label46[80]; /* a 46-byte label: its length byte is '.' */
static const struct pol P_TAIL3 = { DF_MODE_ENFORCE, DF_ALLOW, tail3_rule, NULL };
static const struct pol P_TAIL126 = { DF_MODE_ENFORCE, DF_ALLOW, tail126_rule, NULL };
static const struct pol P_LONGEXACT = { DF_MODE_ENFORCE, DF_ALLOW, long127_rule, NULL };
static const struct pol P_MAX4 = { DF_MODE_ENFORCE, DF_ALLOW, max4, NULL };

static int apply(const struct pol *p)
{
	struct df_policy pol;
	struct df_compiled_names cn = {};
	struct df_config cfg = {};
	struct df_error e = {};
	__u32 zero = 0;
	int r = 0;

	df_policy_init(&pol);
	pol.mode = p->mode;
	pol.default_verdict = p->def;
	if ((p->deny && (r = df_policy_add_list(&pol, p->deny, DF_DENY, "deny", 64, &e)) < 0) ||
	    (p->allow && (r = df_policy_add_list(&pol, p->allow, DF_ALLOW, "allow", 64, &e)) < 0) ||
	    (r = df_policy_compile_names(&pol, B1, B2, &cn, &e)) < 0) {
		CHECK(N("policy"), 0, "%s (%d)", e.msg, r);
		df_policy_free(&pol);
		return r;
	}
	clear_map(skel->maps.name_rules);
	for (size_t i = 0; i < cn.n; i++)
		if (bpf_map_update_elem(map_fd(skel->maps.name_rules), &cn.keys[i], &cn.vals[i],
					BPF_ANY) < 0) {
			r = -errno;
			CHECK(N("fill name_rules"), 0, "%s", strerror(errno));
		}
	cfg.mode = (__u32)pol.mode;
	cfg.default_verdict = (__u32)pol.default_verdict;
	cfg.hash_b1 = B1;
	cfg.hash_b2 = B2;
	cfg.ttl_floor_s = FLOOR;
	memcpy(cfg.name_filter, cn.filter, sizeof(cfg.name_filter));
	cfg.dns_ports[0] = 53;
	cfg.dns_ports[1] = 5353;
	if (bpf_map_update_elem(map_fd(skel->maps.config), &zero, &cfg, BPF_ANY) < 0) {
		r = -errno;
		CHECK(N("fill config"), 0, "%s", strerror(errno));
	}
	df_compiled_names_free(&cn);
	df_policy_free(&pol);
	return r;
}

static void reset_state(void)
{
	clear_map(skel->maps.records);
	pending_clear(map_fd(skel->maps.pending));
	clear_map(skel->maps.prov4);
	clear_map(skel->maps.prov6);
}

/* ======================================================================
 * Egress: questions
 * ====================================================================== */

struct qcase {
	const char *desc;
	const struct pol *pol;
	/* the packet */
	int fam; /* 0: 4 */
	int proto; /* 0: UDP */
	int split; /* TCP without the length prefix in this segment */
	int ip_opts;
	uint16_t dport; /* 0: 53 */
	uint16_t flags; /* 0: 0x0100 (RD) */
	int qd; /* 0: 1; -1: 0 */
	uint16_t txid; /* 0: TXID */
	const char *name; /* dotted, in wire form */
	const char *raw; /* or the wire bytes of the name, as they are */
	size_t raw_len;
	const struct wire *whole; /* or the whole DNS payload */
	uint16_t qtype; /* 0: A */
	int noqtype; /* the packet ends after the name */
	const char *norm; /* raw names: the name as parsed, for names/pending */
	/* expected */
	int ret;
	int q, b, u; /* dns_queries, dns_blocked, dns_unparsable deltas */
	int rec; /* one record, else none */
	int verdict;
	uint32_t rule;
};

#define RAW(s) .raw = (s), .raw_len = sizeof(s) - 1
#define DROP .ret = 0
#define PASS .ret = 1
#define CNT(Q, B, U) .q = (Q), .b = (B), .u = (U)
#define REC(V, R) .rec = 1, .verdict = (V), .rule = (R)
#define BLOCKED(R) REC(DF_EV_BLOCKED, R)

static struct wire w_short_hdr, w_tcp_ack, w_tcp_prefix_only, w_tcp_pipelined, w_tcp_trailing;
/* two messages in one TCP write whose first reads both with and without its length (ambig()) */
static struct wire w_amb_denied, w_amb_default, w_amb_allowed, w_amb_raw_root;

static const struct qcase qcases[] = {
	/* exact, *., **. */
	{ "exact github.com", &P_MAIN, .name = "github.com", DROP, CNT(1, 1, 0), BLOCKED(1) },
	{ "**.github.com one label deep", &P_MAIN, .name = "api.github.com", DROP, CNT(1, 1, 0),
	  BLOCKED(2) },
	{ "**.github.com several labels deep", &P_MAIN, .name = "a.b.c.github.com", DROP,
	  CNT(1, 1, 0), BLOCKED(2) },
	{ "suffix on a label boundary only (notgithub.com)", &P_MAIN, .name = "notgithub.com", PASS,
	  CNT(1, 0, 0) },
	{ "rule name inside, not at the end (github.com.evil.example)", &P_MAIN,
	  .name = "github.com.evil.example", PASS, CNT(1, 0, 0) },
	{ "*.x.example matches one label", &P_MAIN, .name = "a.x.example", DROP, CNT(1, 1, 0),
	  BLOCKED(3) },
	{ "*.x.example does not match two labels", &P_MAIN, .name = "a.b.x.example", PASS,
	  CNT(1, 0, 0) },
	{ "*.x.example does not match its apex", &P_MAIN, .name = "x.example", PASS, CNT(1, 0, 0) },
	{ "**.y.example does not match its apex", &P_MAIN, .name = "y.example", PASS, CNT(1, 0, 0) },
	{ "**.y.example two labels deep", &P_MAIN, .name = "a.b.y.example", DROP, CNT(1, 1, 0),
	  BLOCKED(4) },
	{ "exact rule does not match a child (allow api.example.com vs www.api.example.com)",
	  &P_DENYDEF, .name = "www.api.example.com", DROP, CNT(1, 1, 0), BLOCKED(DF_RULE_DEFAULT) },
	/* case */
	{ "case-insensitive GitHub.COM", &P_MAIN, .name = "GitHub.COM", DROP, CNT(1, 1, 0),
	  BLOCKED(1) },
	{ "0x20 mixed case gItHuB.cOm", &P_MAIN, .name = "gItHuB.cOm", DROP, CNT(1, 1, 0),
	  BLOCKED(1) },
	{ "0x20 mixed case under **. (aPi.GiThUb.CoM)", &P_MAIN, .name = "aPi.GiThUb.CoM", DROP,
	  CNT(1, 1, 0), BLOCKED(2) },
	/* the root and the limits */
	{ "root (empty question name)", &P_MAIN, .name = "", PASS, CNT(1, 0, 0) },
	{ "root, default deny: judged by the default", &P_DENYDEF, .name = "", DROP, CNT(1, 1, 0),
	  BLOCKED(DF_RULE_DEFAULT) },
	{ "255 wire bytes, 127 labels: **. of its last 3 labels", &P_TAIL3, .name = long127, DROP,
	  CNT(1, 1, 0), BLOCKED(1) },
	{ "255 wire bytes, 127 labels: **. of its last 126 labels", &P_TAIL126, .name = long127,
	  DROP, CNT(1, 1, 0), BLOCKED(1) },
	{ "255 wire bytes, 127 labels: exact rule", &P_LONGEXACT, .name = long127, DROP,
	  CNT(1, 1, 0), BLOCKED(1) },
	{ "255 wire bytes, 63-byte labels: exact rule", &P_MAX4, .name = max4, DROP, CNT(1, 1, 0),
	  BLOCKED(1) },
	{ "256 wire bytes: unparsable", &P_MAIN, .name = over255, PASS, CNT(1, 0, 1) },
	{ "128 labels: unparsable", &P_MAIN, .name = labels128, PASS, CNT(1, 0, 1) },
	{ "label of 64 bytes: unparsable", &P_MAIN, .name = label64, PASS, CNT(1, 0, 1) },
	{ "label of 46 bytes (length byte is '.') parses", &P_MAIN, .name = label46, DROP,
	  CNT(1, 1, 0), BLOCKED(2) },
	/* malformed names */
	{ "compression pointer after a label: unparsable", &P_MAIN,
	  RAW("\x03" "api" "\xc0\x0c"), PASS, CNT(1, 0, 1) },
	{ "compression pointer as the whole name: unparsable", &P_MAIN, RAW("\xc0\x0c"), PASS,
	  CNT(1, 0, 1) },
	{ "label type 0x40: unparsable", &P_MAIN, RAW("\x41" "a" "\x00"), PASS, CNT(1, 0, 1) },
	{ "one label \"github.com\" (a '.' byte inside): unparsable, not github.com", &P_MAIN,
	  RAW("\x0a" "github.com" "\x00"), PASS, CNT(1, 0, 1) },
	{ "'.' byte inside a label before a real one (\"api.github\" com)", &P_MAIN,
	  RAW("\x0a" "api.github" "\x03" "com" "\x00"), PASS, CNT(1, 0, 1) },
	{ "'.' inside a label, default deny: dropped as unparsable", &P_DENYDEF,
	  RAW("\x0a" "github.com" "\x00"), DROP, CNT(1, 1, 1), BLOCKED(DF_RULE_UNPARSABLE) },
	{ "a zero byte inside a label is not github.com", &P_MAIN,
	  RAW("\x07" "git\0hub" "\x03" "com" "\x00"), PASS, CNT(1, 0, 0) },
	{ "truncated DNS header (11 bytes): not DNS", &P_MAIN, .whole = &w_short_hdr, PASS,
	  CNT(0, 0, 0) },
	{ "truncated name (last label runs past the end)", &P_MAIN,
	  RAW("\x06" "github" "\x03" "co"), .noqtype = 1, PASS, CNT(1, 0, 1) },
	{ "label length 63 with 3 bytes left", &P_MAIN, RAW("\x3f" "abc"), .noqtype = 1, PASS,
	  CNT(1, 0, 1) },
	{ "name without its zero byte at the end of the packet", &P_MAIN,
	  RAW("\x06" "github" "\x03" "com"), .noqtype = 1, PASS, CNT(1, 0, 1) },
	{ "name with no QTYPE after it still judged", &P_MAIN, .name = "github.com", .noqtype = 1,
	  DROP, CNT(1, 1, 0), BLOCKED(1) },
	/* header fields */
	{ "qdcount 0: unparsable", &P_MAIN, .name = "github.com", .qd = -1, PASS, CNT(1, 0, 1) },
	{ "qdcount 2: unparsable", &P_MAIN, .name = "github.com", .qd = 2, PASS, CNT(1, 0, 1) },
	{ "qdcount 2, default deny: dropped", &P_DENYDEF, .name = "api.example.com", .qd = 2, DROP,
	  CNT(1, 1, 1), BLOCKED(DF_RULE_UNPARSABLE) },
	{ "opcode 4 (NOTIFY): unparsable", &P_MAIN, .name = "github.com", .flags = 0x2000, PASS,
	  CNT(1, 0, 1) },
	{ "QR set on egress to port 53: not a question", &P_MAIN, .name = "github.com",
	  .flags = 0x8180, PASS, CNT(0, 0, 0) },
	{ "UDP to port 443: not DNS", &P_MAIN, .name = "github.com", .dport = 443, PASS,
	  CNT(0, 0, 0) },
	{ "TCP to port 80: not DNS", &P_MAIN, .proto = TCP, .name = "github.com", .dport = 80, PASS,
	  CNT(0, 0, 0) },
	{ "UDP to port 5353 (a configured DNS port)", &P_MAIN, .name = "github.com", .dport = 5353,
	  DROP, CNT(1, 1, 0), BLOCKED(1) },
	{ "AAAA question: qtype recorded", &P_MAIN, .name = "github.com", .qtype = 28, DROP,
	  CNT(1, 1, 0), BLOCKED(1) },
	{ "IPv4 header with options (IHL 6)", &P_MAIN, .ip_opts = 1, .name = "github.com", DROP,
	  CNT(1, 1, 0), BLOCKED(1) },
	/* IPv6, TCP */
	{ "IPv6 UDP question github.com", &P_MAIN, .fam = 6, .name = "github.com", DROP,
	  CNT(1, 1, 0), BLOCKED(1) },
	{ "IPv6 UDP question allowed", &P_MAIN, .fam = 6, .name = "api.example.com", .qtype = 28,
	  PASS, CNT(1, 0, 0) },
	{ "TCP question with the length prefix", &P_MAIN, .proto = TCP, .name = "github.com", DROP,
	  CNT(1, 1, 0), BLOCKED(1) },
	{ "TCP question without the prefix (split)", &P_MAIN, .proto = TCP, .split = 1,
	  .name = "github.com", DROP, CNT(1, 1, 0), BLOCKED(1) },
	{ "TCP over IPv6 with the prefix", &P_MAIN, .fam = 6, .proto = TCP,
	  .name = "api.github.com", DROP, CNT(1, 1, 0), BLOCKED(2) },
	{ "TCP over IPv6 split", &P_MAIN, .fam = 6, .proto = TCP, .split = 1,
	  .name = "api.github.com", DROP, CNT(1, 1, 0), BLOCKED(2) },
	{ "TCP allowed question", &P_MAIN, .proto = TCP, .name = "api.example.com", PASS,
	  CNT(1, 0, 0) },
	{ "TCP segment with no payload (ACK)", &P_MAIN, .proto = TCP, .split = 1,
	  .whole = &w_tcp_ack, PASS, CNT(0, 0, 0) },
	{ "TCP segment with only the length prefix", &P_MAIN, .proto = TCP, .split = 1,
	  .whole = &w_tcp_prefix_only, PASS, CNT(0, 0, 0) },
	{ "TCP, two questions in one segment (glibc use-vc sends A and AAAA in one writev)",
	  &P_MAIN, .proto = TCP, .split = 1, .whole = &w_tcp_pipelined, DROP, CNT(1, 1, 0),
	  BLOCKED(1) },
	{ "TCP split, txid equal to the segment length - 2 (reads like a prefix)", &P_MAIN,
	  .proto = TCP, .split = 1, .txid = 26, .name = "github.com", DROP, CNT(1, 1, 0),
	  BLOCKED(1) },
	{ "TCP split, small txid (20)", &P_MAIN, .proto = TCP, .split = 1, .txid = 20,
	  .name = "github.com", DROP, CNT(1, 1, 0), BLOCKED(1) },
	{ "TCP with the prefix, qdcount 2: unparsable", &P_MAIN, .proto = TCP, .qd = 2,
	  .name = "github.com", PASS, CNT(1, 0, 1) },
	{ "TCP, question followed by one more byte", &P_MAIN, .proto = TCP, .split = 1,
	  .whole = &w_tcp_trailing, DROP, CNT(1, 1, 0), BLOCKED(1) },
	/*
	 * [len][id 0x8001, flags 0x0001: github.com][len][a question]: qdcount 1
	 * read with the length and without it, and without it the id reads as
	 * flags with QR set; the guess reads it without, but the question the
	 * resolver reads is judged
	 */
	{ "TCP, flags 0x0001 and id 0x8001 before another message: github.com refused", &P_MAIN,
	  .proto = TCP, .split = 1, .whole = &w_amb_denied, .norm = "github.com", DROP,
	  CNT(1, 1, 0), BLOCKED(1) },
	{ "TCP, flags 0x0001 and id 0x8001 before another message, default deny: refused",
	  &P_DENYDEF, .proto = TCP, .split = 1, .whole = &w_amb_default, .norm = "www.example.org",
	  DROP, CNT(1, 1, 0), BLOCKED(DF_RULE_DEFAULT) },
	{ "TCP, flags 0x0001 and id 0x8001 before another message: an allowed one is a question",
	  &P_MAIN, .proto = TCP, .split = 1, .whole = &w_amb_allowed, .txid = 0x8001,
	  .norm = "api.example.com", PASS, CNT(1, 0, 0) },
	/* id 0x0100: without its length it reads as a question for the root, allowed */
	{ "TCP, flags 0x0001 and id 0x0100 before another message: both readings judged", &P_MAIN,
	  .proto = TCP, .split = 1, .whole = &w_amb_raw_root, .norm = "github.com", DROP,
	  CNT(1, 1, 0), BLOCKED(1) },
	/* modes and defaults */
	{ "audit: denied name passes, would-block record", &P_AUDIT, .name = "github.com", PASS,
	  CNT(1, 0, 0), REC(DF_EV_WOULD_BLOCK, 1) },
	{ "observe: allowed name, allowed record", &P_OBSERVE, .name = "api.example.com", PASS,
	  CNT(1, 0, 0), REC(DF_EV_ALLOWED, 5) },
	{ "observe: unmatched name, allowed record by the default", &P_OBSERVE,
	  .name = "www.example.org", PASS, CNT(1, 0, 0), REC(DF_EV_ALLOWED, DF_RULE_DEFAULT) },
	{ "observe: denied name passes, would-block record", &P_OBSERVE, .name = "github.com", PASS,
	  CNT(1, 0, 0), REC(DF_EV_WOULD_BLOCK, 1) },
	{ "enforce, default allow: allowed name leaves no record", &P_MAIN,
	  .name = "api.example.com", PASS, CNT(1, 0, 0) },
	{ "enforce, default deny: unmatched name dropped by the default", &P_DENYDEF,
	  .name = "www.example.org", DROP, CNT(1, 1, 0), BLOCKED(DF_RULE_DEFAULT) },
	{ "enforce, default deny: allowed name passes", &P_DENYDEF, .name = "api.example.com", PASS,
	  CNT(1, 0, 0) },
	{ "enforce, default deny: unparsable dropped", &P_DENYDEF, RAW("\x03" "api" "\xc0\x0c"),
	  DROP, CNT(1, 1, 1), BLOCKED(DF_RULE_UNPARSABLE) },
	{ "enforce, default allow: unparsable passes", &P_MAIN, RAW("\x03" "api" "\xc0\x0c"), PASS,
	  CNT(1, 0, 1) },
	{ "audit, default deny: unparsable would-block", &(const struct pol){ DF_MODE_AUDIT, DF_DENY,
	  MAIN_DENY, MAIN_ALLOW }, RAW("\xc0\x0c"), PASS, CNT(1, 0, 1),
	  REC(DF_EV_WOULD_BLOCK, DF_RULE_UNPARSABLE) },
	/* precedence through the compiled targets */
	{ "exact allow over **. deny (api.github.com)", &P_PREC, .name = "api.github.com", PASS,
	  CNT(1, 0, 0) },
	{ "**. deny beside an exact allow (www.github.com)", &P_PREC, .name = "www.github.com", DROP,
	  CNT(1, 1, 0), BLOCKED(1) },
	{ "a name denied on one port only may be resolved", &P_PORT, .name = "github.com", PASS,
	  CNT(1, 0, 0) },
};

static void question(struct wire *d, const struct qcase *c)
{
	d->n = 0;
	if (c->whole) {
		put(d, c->whole->b, c->whole->n);
		return;
	}
	dns_header(d, c->txid ? c->txid : TXID, c->flags ? c->flags : 0x0100,
		   (uint16_t)(c->qd == 0 ? 1 : c->qd < 0 ? 0 : c->qd), 0);
	if (c->name)
		put_name(d, c->name);
	else
		put(d, c->raw, c->raw_len);
	if (!c->noqtype) {
		put16(d, c->qtype ? c->qtype : 1);
		put16(d, 1);
	}
}

static int find_records(struct df_rec_key *keys, struct df_rec_val *vals, int max)
{
	struct df_rec_key k, next;
	int fd = map_fd(skel->maps.records), n = 0, r;

	for (r = bpf_map_get_next_key(fd, NULL, &next); r == 0 && n < max;
	     r = bpf_map_get_next_key(fd, &k, &next)) {
		k = next;
		if (bpf_map_lookup_elem(fd, &k, &vals[n]) == 0)
			keys[n++] = k;
	}
	return n;
}

static int name_text(struct df_name_id id, char *out)
{
	struct df_name_text t;

	if (bpf_map_lookup_elem(map_fd(skel->maps.names), &id, &t) < 0)
		return -1;
	t.name[sizeof(t.name) - 1] = '\0';
	strcpy(out, t.name);
	return 0;
}

static void check_question(const struct qcase *c)
{
	struct df_counters before, after;
	struct df_rec_key keys[8];
	struct df_rec_val vals[8];
	struct wire dns, pkt;
	struct l34 t = {
		.fam = c->fam ? c->fam : 4,
		.proto = c->proto ? c->proto : UDP,
		.split = c->split,
		.ip_opts = c->ip_opts,
		.sport = CPORT,
		.dport = c->dport ? c->dport : 53,
	};
	char norm[DF_DNS_NAME_MAX] = "", text[DF_DNS_NAME_MAX];
	int parsed = c->q && !c->u, have_norm = 0, ret, err, n;
	uint16_t qtype = parsed && !c->noqtype ? (c->qtype ? c->qtype : 1) : 0;

	desc_now = c->desc;
	t.src = t.fam == 6 ? CLI6 : CLI4;
	t.dst = t.fam == 6 ? RES6 : RES4;
	if (apply(c->pol) < 0)
		return;
	reset_state();
	question(&dns, c);
	packet(&pkt, &t, &dns);
	if (c->name) {
		lower(norm, sizeof(norm), c->name);
		have_norm = 1;
	} else if (c->norm) {
		lower(norm, sizeof(norm), c->norm);
		have_norm = 1;
	}

	before = map_counters(skel->maps.counters);
	err = run(skel->progs.df_egress, &pkt, &ret);
	after = map_counters(skel->maps.counters);
	CHECK_INT(N("test run"), 0, err);
	CHECK_INT(N("retval"), c->ret, ret);
	CHECK_INT(N("dns_queries"), c->q, after.dns_queries - before.dns_queries);
	CHECK_INT(N("dns_blocked"), c->b, after.dns_blocked - before.dns_blocked);
	CHECK_INT(N("dns_unparsable"), c->u, after.dns_unparsable - before.dns_unparsable);
	CHECK_INT(N("dns_answers, dns_untrusted"), 0,
		  (after.dns_answers - before.dns_answers) +
			  (after.dns_untrusted - before.dns_untrusted));
	CHECK_INT(N("connections (DNS is not a connection)"), 0,
		  after.connections - before.connections);

	n = find_records(keys, vals, 8);
	CHECK_INT(N("records"), c->rec, n);
	if (c->rec && n == 1) {
		const struct df_rec_key *k = &keys[0];
		const uint8_t *res = t.fam == 6 ? RES6 : RES4;

		CHECK_INT(N("record verdict"), c->verdict, k->verdict);
		CHECK_INT(N("record rule"), c->rule, k->rule_id);
		CHECK_INT(N("record hook"), DF_HOOK_DNS, k->hook);
		CHECK_INT(N("record proto"), t.proto, k->proto);
		CHECK_INT(N("record family"), t.fam, k->family);
		CHECK_INT(N("record dport"), t.dport, k->dport);
		CHECK_INT(N("record qtype"), qtype, k->qtype);
		/* without task helpers in cgroup_skb the sender comes from its socket; test_run has none */
		CHECK_INT(N("record tgid"), task_helpers ? getpid() : 0, k->tgid);
		CHECK(N("record daddr is the resolver"), !memcmp(k->daddr, res, t.fam == 6 ? 16 : 4),
		      "daddr differs");
		CHECK_INT(N("record count"), 1, vals[0].count);
		if (!parsed) {
			CHECK(N("record has no name"), !k->name.h1 && !k->name.h2, "name %08x/%08x",
			      k->name.h1, k->name.h2);
		} else if (have_norm) {
			struct df_name_id id = name_id(norm);

			CHECK(N("record name id"), k->name.h1 == id.h1 && k->name.h2 == id.h2,
			      "expected %08x/%08x, got %08x/%08x", id.h1, id.h2, k->name.h1,
			      k->name.h2);
			text[0] = '\0';
			if (name_text(k->name, text) < 0)
				strcpy(text, "(not in names)");
			CHECK_STR(N("record name text"), norm, text);
		}
	}

	/* a parsed question that left is pending, and its name is known */
	n = (int)pending_count(map_fd(skel->maps.pending));
	CHECK_INT(N("pending entries"), parsed && c->ret == 1, n);
	if (parsed && have_norm) {
		struct df_name_id id = name_id(norm);

		text[0] = '\0';
		if (name_text(id, text) < 0)
			strcpy(text, "(not in names)");
		CHECK_STR(N("names map text"), norm, text);
		if (c->ret == 1) {
			struct df_pending_key pk = {
				.family = (uint8_t)t.fam,
				.proto = (uint8_t)t.proto,
				.txid = htons(c->txid ? c->txid : TXID),
				.resolver_port = t.dport,
				.client_port = CPORT,
			};
			struct df_pending_val pv = {};

			memcpy(pk.resolver, t.dst, t.fam == 6 ? 16 : 4);
			err = pending_find(map_fd(skel->maps.pending), &pk, &pv) < 0 ? -ENOENT : 0;
			CHECK_INT(N("pending entry by key"), 0, err);
			CHECK(N("pending name id"), !err && pv.name.h1 == id.h1 && pv.name.h2 == id.h2,
			      "expected %08x/%08x, got %08x/%08x", id.h1, id.h2, pv.name.h1,
			      pv.name.h2);
		}
	}
}

/* ======================================================================
 * Ingress: answers
 * ====================================================================== */

typedef void (*ans_fn)(struct wire *m, uint16_t *an);

static void rr(struct wire *m, uint16_t type, uint32_t ttl, uint16_t rdlen)
{
	put16(m, type);
	put16(m, 1);
	put32(m, ttl);
	put16(m, rdlen);
}

static void ans_a(struct wire *m, uint16_t *an)
{
	put16(m, 0xc00c);
	rr(m, 1, 5, 4);
	put_addr4(m, "203.0.113.10");
	*an = 1;
}

static void ans_a_ttl3600(struct wire *m, uint16_t *an)
{
	put16(m, 0xc00c);
	rr(m, 1, 3600, 4);
	put_addr4(m, "203.0.113.14");
	*an = 1;
}

static void ans_aaaa(struct wire *m, uint16_t *an)
{
	put16(m, 0xc00c);
	rr(m, 28, 5, 16);
	put_addr6(m, "2001:db8::10");
	*an = 1;
}

static void ans_aaaa_mapped(struct wire *m, uint16_t *an)
{
	put16(m, 0xc00c);
	rr(m, 28, 5, 16);
	put_addr6(m, "::ffff:203.0.113.77");
	*an = 1;
}

static void ans_multi(struct wire *m, uint16_t *an)
{
	put16(m, 0xc00c);
	rr(m, 1, 30, 4);
	put_addr4(m, "203.0.113.11");
	put16(m, 0xc00c);
	rr(m, 1, 30, 4);
	put_addr4(m, "203.0.113.12");
	put16(m, 0xc00c);
	rr(m, 28, 30, 16);
	put_addr6(m, "2001:db8::11");
	put16(m, 0xc00c);
	rr(m, 1, 30, 4);
	put_addr4(m, "203.0.113.13");
	*an = 4;
}

/* api.example.com CNAME x.cdn.net; (pointer into the CNAME rdata) A 203.0.113.30 */
static void ans_cname_ptr(struct wire *m, uint16_t *an)
{
	size_t rdata;

	put16(m, 0xc00c);
	rr(m, 5, 300, 11);
	rdata = m->n; /* m is the DNS message: offsets are pointer offsets */
	put_name(m, "x.cdn.net");
	put16(m, (uint16_t)(0xc000 | rdata));
	rr(m, 1, 20, 4);
	put_addr4(m, "203.0.113.30");
	*an = 2;
}

/* the same chain with owner names written out in full */
static void ans_cname_full(struct wire *m, uint16_t *an)
{
	put_name(m, "api.example.com");
	rr(m, 5, 300, 11);
	put_name(m, "x.cdn.net");
	put_name(m, "x.cdn.net");
	rr(m, 1, 20, 4);
	put_addr4(m, "203.0.113.31");
	*an = 2;
}

/* three links: api.example.com -> a.cdn.net -> b.cdn.net (rdata compressed) -> A */
static void ans_cname3(struct wire *m, uint16_t *an)
{
	size_t rd1, rd2;

	put16(m, 0xc00c);
	rr(m, 5, 300, 11);
	rd1 = m->n;
	put_name(m, "a.cdn.net");
	put16(m, (uint16_t)(0xc000 | rd1));
	rr(m, 5, 300, 4);
	rd2 = m->n;
	put8(m, 1);
	put8(m, 'b');
	put16(m, (uint16_t)(0xc000 | (rd1 + 2))); /* "cdn.net" of the first rdata */
	put16(m, (uint16_t)(0xc000 | rd2));
	rr(m, 1, 20, 4);
	put_addr4(m, "203.0.113.32");
	*an = 3;
}

/* A with rdlength 4 and 2 bytes of rdata: the packet ends */
static void ans_rdlen_past(struct wire *m, uint16_t *an)
{
	put16(m, 0xc00c);
	rr(m, 1, 30, 4);
	put8(m, 203);
	put8(m, 0);
	*an = 1;
}

/* a CNAME whose rdlength runs far past the end, then an A inside that "rdata" */
static void ans_cname_rdlen_past(struct wire *m, uint16_t *an)
{
	put16(m, 0xc00c);
	rr(m, 5, 30, 300);
	put_name(m, "x.cdn.net");
	put16(m, 0xc00c);
	rr(m, 1, 30, 4);
	put_addr4(m, "203.0.113.60");
	*an = 2;
}

/* an owner name pointing at itself, and one whose label points back at itself */
static void ans_loop(struct wire *m, uint16_t *an)
{
	size_t at = m->n;

	put16(m, (uint16_t)(0xc000 | at));
	rr(m, 1, 30, 4);
	put_addr4(m, "203.0.113.61");
	at = m->n;
	put8(m, 1);
	put8(m, 'a');
	put16(m, (uint16_t)(0xc000 | at));
	rr(m, 1, 30, 4);
	put_addr4(m, "203.0.113.62");
	*an = 2;
}

/* ancount 5, one record present */
static void ans_short(struct wire *m, uint16_t *an)
{
	put16(m, 0xc00c);
	rr(m, 1, 30, 4);
	put_addr4(m, "203.0.113.63");
	*an = 5;
}

/* 200 A records 203.0.113.1 .. 203.0.113.200 */
static void ans_200(struct wire *m, uint16_t *an)
{
	for (int i = 1; i <= 200; i++) {
		put16(m, 0xc00c);
		rr(m, 1, 30, 4);
		put8(m, 203);
		put8(m, 0);
		put8(m, 113);
		put8(m, (uint8_t)i);
	}
	*an = 200;
}

/*
 * A TXT record with rdlength 0xffff whose few real rdata bytes look like an A
 * record: past the end of the packet nothing may be read as a record, least
 * of all by wrapping the offset around 64 KiB back into this rdata.
 */
static void ans_rdlen_wrap(struct wire *m, uint16_t *an)
{
	put16(m, 0xc00c);
	rr(m, 16, 30, 0xffff);
	put8(m, 0xc0); /* read as a pointer if the walk wraps to here */
	rr(m, 1, 30, 4);
	put_addr4(m, "203.0.113.99");
	put(m, "\0\0\0\0", 4);
	*an = 2;
}

/* owner names with the undefined label types 0x40 and 0x80 */
static void ans_badlabel(struct wire *m, uint16_t *an)
{
	put8(m, 0x41);
	put8(m, 'a');
	put8(m, 0);
	rr(m, 1, 30, 4);
	put_addr4(m, "203.0.113.64");
	*an = 1;
}

/* the answer section ends in the middle of the fixed part */
static void ans_cut_fixed(struct wire *m, uint16_t *an)
{
	put16(m, 0xc00c);
	put16(m, 1);
	put16(m, 1);
	put8(m, 0);
	*an = 1;
}

struct acase {
	const char *desc;
	const struct pol *pol;
	int fam, proto; /* 0: 4, UDP */
	int split; /* TCP answer without the prefix */
	int aproto; /* the answer's protocol when it differs */
	const char *qname; /* the question sent first; NULL: none */
	int qdrop; /* the question is refused */
	const char *aname; /* the answer's question section; NULL: qname */
	int txid_delta, other_res, cport_delta;
	uint16_t rport; /* the answer's source port; 0: 53 */
	ans_fn answers;
	int copies; /* 0: 1 */
	/* expected */
	int answers_d, untrusted_d;
	const char *learned[4], *absent[4];
	uint32_t ttl; /* lifetime of what is learned, seconds */
	const char *prov_name; /* NULL: qname */
	int tkind; /* the question's rule target; NO_TARGET: none */
	const char *tname;
	int deny;
};

#define TRUSTED .answers_d = 1, .untrusted_d = 0
#define UNTRUSTED .answers_d = 0, .untrusted_d = 1
#define TGT_API .tkind = DF_NAME_EXACT, .tname = "api.example.com"

static const struct acase acases[] = {
	{ "A answer", &P_MAIN, .qname = "api.example.com", .answers = ans_a, TRUSTED,
	  .learned = { "203.0.113.10" }, .ttl = FLOOR, TGT_API },
	{ "A answer, TTL above the floor", &P_MAIN, .qname = "api.example.com",
	  .answers = ans_a_ttl3600, TRUSTED, .learned = { "203.0.113.14" }, .ttl = 3600, TGT_API },
	{ "IPv4-mapped AAAA answer: learnt as the IPv4 address it is judged as", &P_MAIN,
	  .qname = "api.example.com", .answers = ans_aaaa_mapped, TRUSTED,
	  .learned = { "203.0.113.77" }, .absent = { "::ffff:203.0.113.77" }, .ttl = FLOOR,
	  TGT_API },
	{ "AAAA answer", &P_MAIN, .qname = "api.example.com", .answers = ans_aaaa, TRUSTED,
	  .learned = { "2001:db8::10" }, .ttl = FLOOR, TGT_API },
	{ "several answers (A, A, AAAA, A)", &P_MAIN, .qname = "api.example.com",
	  .answers = ans_multi, TRUSTED,
	  .learned = { "203.0.113.11", "203.0.113.12", "2001:db8::11", "203.0.113.13" },
	  .ttl = FLOOR, TGT_API },
	{ "CNAME chain, owners as 0xC00C and a pointer into the CNAME rdata", &P_MAIN,
	  .qname = "api.example.com", .answers = ans_cname_ptr, TRUSTED,
	  .learned = { "203.0.113.30" }, .ttl = FLOOR, TGT_API },
	{ "CNAME chain, owner names in full", &P_MAIN, .qname = "api.example.com",
	  .answers = ans_cname_full, TRUSTED, .learned = { "203.0.113.31" }, .ttl = FLOOR, TGT_API },
	{ "CNAME chain of three, compressed rdata", &P_MAIN, .qname = "api.example.com",
	  .answers = ans_cname3, TRUSTED, .learned = { "203.0.113.32" }, .ttl = FLOOR, TGT_API },
	{ "IPv6 transport, A and AAAA answers", &P_MAIN, .fam = 6, .qname = "api.example.com",
	  .answers = ans_multi, TRUSTED,
	  .learned = { "203.0.113.11", "203.0.113.12", "2001:db8::11", "203.0.113.13" },
	  .ttl = FLOOR, TGT_API },
	{ "TCP with the length prefix", &P_MAIN, .proto = TCP, .qname = "api.example.com",
	  .answers = ans_cname_ptr, TRUSTED, .learned = { "203.0.113.30" }, .ttl = FLOOR, TGT_API },
	{ "TCP answer without the prefix (split)", &P_MAIN, .proto = TCP, .split = 1,
	  .qname = "api.example.com", .answers = ans_a, TRUSTED, .learned = { "203.0.113.10" },
	  .ttl = FLOOR, TGT_API },
	{ "TCP over IPv6", &P_MAIN, .fam = 6, .proto = TCP, .qname = "api.example.com",
	  .answers = ans_aaaa, TRUSTED, .learned = { "2001:db8::10" }, .ttl = FLOOR, TGT_API },
	{ "0x20 question, answer echoes its case", &P_MAIN, .qname = "aPi.ExAmPlE.cOm",
	  .answers = ans_a, TRUSTED, .learned = { "203.0.113.10" }, .ttl = FLOOR,
	  .prov_name = "api.example.com", TGT_API },
	{ "0x20 question, answer in lower case", &P_MAIN, .qname = "aPi.ExAmPlE.cOm",
	  .aname = "api.example.com", .answers = ans_a, TRUSTED, .learned = { "203.0.113.10" },
	  .ttl = FLOOR, .prov_name = "api.example.com", TGT_API },
	{ "audit: a denied name's addresses carry the deny", &P_AUDIT, .qname = "api.github.com",
	  .answers = ans_a, TRUSTED, .learned = { "203.0.113.10" }, .ttl = FLOOR,
	  .tkind = DF_NAME_MANY, .tname = "github.com", .deny = 1 },
	{ "a name no rule matches: no target", &P_MAIN, .qname = "www.example.net",
	  .answers = ans_a, TRUSTED, .learned = { "203.0.113.10" }, .ttl = FLOOR,
	  .tkind = NO_TARGET },
	/* untrusted */
	{ "untrusted: different txid", &P_MAIN, .qname = "api.example.com", .txid_delta = 1,
	  .answers = ans_a, UNTRUSTED, .absent = { "203.0.113.10" } },
	{ "untrusted: different resolver address", &P_MAIN, .qname = "api.example.com",
	  .other_res = 1, .answers = ans_a, UNTRUSTED, .absent = { "203.0.113.10" } },
	{ "untrusted: different resolver address (IPv6)", &P_MAIN, .fam = 6,
	  .qname = "api.example.com", .other_res = 1, .answers = ans_aaaa, UNTRUSTED,
	  .absent = { "2001:db8::10" } },
	{ "untrusted: from another DNS port (5353)", &P_MAIN, .qname = "api.example.com",
	  .rport = 5353, .answers = ans_a, UNTRUSTED, .absent = { "203.0.113.10" } },
	{ "ignored: from a port that is not DNS (1053)", &P_MAIN, .qname = "api.example.com",
	  .rport = 1053, .answers = ans_a, .answers_d = 0, .untrusted_d = 0,
	  .absent = { "203.0.113.10" } },
	{ "untrusted: to a different client port", &P_MAIN, .qname = "api.example.com",
	  .cport_delta = 1, .answers = ans_a, UNTRUSTED, .absent = { "203.0.113.10" } },
	{ "untrusted: different question name", &P_MAIN, .qname = "api.example.com",
	  .aname = "api.example.org", .answers = ans_a, UNTRUSTED, .absent = { "203.0.113.10" } },
	{ "untrusted: no question was sent", &P_MAIN, .answers = ans_a, UNTRUSTED,
	  .absent = { "203.0.113.10" } },
	{ "untrusted: second copy after the first was consumed", &P_MAIN,
	  .qname = "api.example.com", .answers = ans_a, .copies = 2, .answers_d = 1,
	  .untrusted_d = 1, .learned = { "203.0.113.10" }, .ttl = FLOOR, TGT_API },
	{ "untrusted: TCP answer to a UDP question", &P_MAIN, .qname = "api.example.com",
	  .aproto = TCP, .answers = ans_a, UNTRUSTED, .absent = { "203.0.113.10" } },
	{ "untrusted: the question was refused", &P_MAIN, .qname = "github.com", .qdrop = 1,
	  .answers = ans_a, UNTRUSTED, .absent = { "203.0.113.10" } },
	/* malformed: never a crash, always pass */
	{ "malformed: rdlength past the end", &P_MAIN, .qname = "api.example.com",
	  .answers = ans_rdlen_past, TRUSTED, .absent = { "203.0.0.0" } },
	{ "malformed: CNAME rdlength past the end hides the rest", &P_MAIN,
	  .qname = "api.example.com", .answers = ans_cname_rdlen_past, TRUSTED,
	  .absent = { "203.0.113.60" } },
	{ "malformed: compression loops in owner names", &P_MAIN, .qname = "api.example.com",
	  .answers = ans_loop, TRUSTED },
	{ "malformed: ancount larger than the records present", &P_MAIN,
	  .qname = "api.example.com", .answers = ans_short, TRUSTED, .learned = { "203.0.113.63" },
	  .ttl = FLOOR, TGT_API },
	{ "malformed: 200 answers, the first 32 learned", &P_MAIN, .qname = "api.example.com",
	  .answers = ans_200, TRUSTED, .learned = { "203.0.113.1", "203.0.113.32" }, .ttl = FLOOR,
	  TGT_API, .absent = { "203.0.113.33", "203.0.113.200" } },
	{ "malformed: rdlength 0xffff, nothing read past the end", &P_MAIN,
	  .qname = "api.example.com", .answers = ans_rdlen_wrap, TRUSTED,
	  .absent = { "203.0.113.99" } },
	{ "malformed: owner label type 0x40 stops the walk", &P_MAIN, .qname = "api.example.com",
	  .answers = ans_badlabel, TRUSTED, .absent = { "203.0.113.64" } },
	{ "malformed: answer cut in its fixed part", &P_MAIN, .qname = "api.example.com",
	  .answers = ans_cut_fixed, TRUSTED },
};

static const uint8_t *cli(int fam)
{
	return fam == 6 ? CLI6 : CLI4;
}

static const uint8_t *res(int fam)
{
	return fam == 6 ? RES6 : RES4;
}

static void build_question(struct wire *pkt, int fam, int proto, const char *name, uint16_t txid)
{
	struct wire d = {};
	struct l34 t = { fam, proto, 0, 0, cli(fam), res(fam), CPORT, 53 };

	dns_header(&d, txid, 0x0100, 1, 0);
	put_name(&d, name);
	put16(&d, 1);
	put16(&d, 1);
	packet(pkt, &t, &d);
}

static void build_answer(struct wire *pkt, const struct l34 *t, const char *name, uint16_t txid,
			 ans_fn answers)
{
	struct wire d = {};
	uint16_t an = 0;

	dns_header(&d, txid, 0x8180, 1, 0);
	put_name(&d, name);
	put16(&d, 1);
	put16(&d, 1);
	if (answers)
		answers(&d, &an);
	set16(&d, 6, an);
	packet(pkt, t, &d);
}

static int parse_addr(const char *text, uint8_t *a)
{
	if (strchr(text, ':'))
		return inet_pton(AF_INET6, text, a) == 1 ? 6 : -1;
	return inet_pton(AF_INET, text, a) == 1 ? 4 : -1;
}

static int lookup_prov(const char *addr, struct df_prov *pv)
{
	uint8_t a[16];
	int fam = parse_addr(addr, a);

	if (fam < 0)
		return -2;
	return bpf_map_lookup_elem(map_fd(fam == 6 ? skel->maps.prov6 : skel->maps.prov4), a,
				   pv);
}

static void check_learned(const char *addr, const char *name, uint64_t t0, uint64_t t1,
			  uint32_t ttl, int tkind, const char *tname, int deny)
{
	struct df_prov pv = {};
	struct df_name_id id = name_id(name);
	int r = lookup_prov(addr, &pv);

	CHECK(N("%s learned", addr), r == 0, "no provenance");
	if (r)
		return;
	CHECK(N("%s name id", addr), pv.name.h1 == id.h1 && pv.name.h2 == id.h2,
	      "expected %08x/%08x (%s), got %08x/%08x", id.h1, id.h2, name, pv.name.h1,
	      pv.name.h2);
	CHECK(N("%s expires_ns >= now + %us", addr, ttl),
	      pv.expires_ns >= t0 + (uint64_t)ttl * 1000000000ull,
	      "expires %llu, now %llu", (unsigned long long)pv.expires_ns,
	      (unsigned long long)t0);
	CHECK(N("%s expires_ns <= now + %us", addr, ttl),
	      pv.expires_ns <= t1 + (uint64_t)ttl * 1000000000ull,
	      "expires %llu, now %llu", (unsigned long long)pv.expires_ns,
	      (unsigned long long)t1);
	CHECK_INT(N("%s deny", addr), deny, pv.deny);
	CHECK_INT(N("%s target kind", addr), tkind, pv.target.kind);
	if (tname) {
		struct df_name_id tid = name_id(tname);

		CHECK(N("%s target hash", addr), pv.target.h1 == tid.h1 && pv.target.h2 == tid.h2,
		      "expected the hash of %s", tname);
	}
}

static void check_absent(const char *addr)
{
	struct df_prov pv;

	CHECK(N("%s not learned", addr), lookup_prov(addr, &pv) != 0, "provenance present");
}

static void check_answer(const struct acase *c)
{
	struct df_counters before, after;
	struct wire q, a;
	int fam = c->fam ? c->fam : 4, proto = c->proto ? c->proto : UDP, ret, err;
	struct l34 t = {
		.fam = fam,
		.proto = c->aproto ? c->aproto : proto,
		.split = c->split,
		.src = c->other_res ? (fam == 6 ? OTH6 : OTH4) : res(fam),
		.dst = cli(fam),
		.sport = c->rport ? c->rport : 53,
		.dport = (uint16_t)(CPORT + c->cport_delta),
	};
	const char *aname = c->aname ? c->aname : c->qname ? c->qname : "api.example.com";
	char pname[DF_DNS_NAME_MAX];
	uint64_t t0, t1;

	desc_now = c->desc;
	if (apply(c->pol) < 0)
		return;
	reset_state();
	if (c->qname) {
		build_question(&q, fam, proto, c->qname, TXID);
		err = run(skel->progs.df_egress, &q, &ret);
		CHECK_INT(N("question test run"), 0, err);
		CHECK_INT(N("question retval"), !c->qdrop, ret);
	}
	build_answer(&a, &t, aname, (uint16_t)(TXID + c->txid_delta), c->answers);

	before = map_counters(skel->maps.counters);
	t0 = mono_ns();
	for (int i = 0; i < (c->copies ? c->copies : 1); i++) {
		err = run(skel->progs.df_ingress, &a, &ret);
		CHECK_INT(N("answer %d test run", i + 1), 0, err);
		CHECK_INT(N("answer %d retval", i + 1), 1, ret);
	}
	t1 = mono_ns();
	after = map_counters(skel->maps.counters);
	CHECK_INT(N("dns_answers"), c->answers_d, after.dns_answers - before.dns_answers);
	CHECK_INT(N("dns_untrusted"), c->untrusted_d, after.dns_untrusted - before.dns_untrusted);
	CHECK_INT(N("dns_queries (an answer is no question)"), 0,
		  after.dns_queries - before.dns_queries);
	if (c->answers_d)
		CHECK_INT(N("pending consumed"), 0, pending_count(map_fd(skel->maps.pending)));

	lower(pname, sizeof(pname), c->prov_name ? c->prov_name : c->qname ? c->qname : "");
	for (int i = 0; i < 4 && c->learned[i]; i++)
		check_learned(c->learned[i], pname, t0, t1, c->ttl, c->tkind, c->tname, c->deny);
	for (int i = 0; i < 4 && c->absent[i]; i++)
		check_absent(c->absent[i]);
	if (!c->answers_d)
		CHECK_INT(N("no provenance at all"), 0,
			  map_count(skel->maps.prov4) + map_count(skel->maps.prov6));
}

/* Sequences that do not fit one row. */
static void one_exchange(const char *name, uint16_t txid, const char *addr, uint16_t rport,
			 const char *aname)
{
	struct wire q, a, d = {};
	struct l34 t = { 4, UDP, 0, 0, RES4, CLI4, rport, CPORT };
	int ret;

	if (name) {
		build_question(&q, 4, UDP, name, txid);
		run(skel->progs.df_egress, &q, &ret);
	}
	dns_header(&d, txid, 0x8180, 1, 1);
	put_name(&d, aname ? aname : name);
	put16(&d, 1);
	put16(&d, 1);
	put16(&d, 0xc00c);
	rr(&d, 1, 30, 4);
	put_addr4(&d, addr);
	packet(&a, &t, &d);
	run(skel->progs.df_ingress, &a, &ret);
}

/* [len][message][len][message] in one TCP segment: A and AAAA, questions or answers */
static void pipelined(struct wire *out, const char *name, int answers)
{
	struct wire d;

	out->n = 0;
	for (int i = 0; i < 2; i++) {
		d.n = 0;
		dns_header(&d, (uint16_t)(0x5555 + i), answers ? 0x8180 : 0x0100, 1, answers ? 1 : 0);
		put_name(&d, name);
		put16(&d, i ? 28 : 1);
		put16(&d, 1);
		if (answers) {
			put16(&d, 0xc00c);
			rr(&d, i ? 28 : 1, 30, i ? 16 : 4);
			if (i)
				put_addr6(&d, "2001:db8::80");
			else
				put_addr4(&d, "203.0.113.80");
		}
		put16(out, (uint16_t)d.n);
		put(out, d.b, d.n);
	}
}

static void sequences(void)
{
	struct df_prov pv = {};
	struct df_counters before, after;
	struct df_name_id id;

	desc_now = "ingress: TCP, two answers in one segment: the first is trusted";
	{
		struct wire dq, da, q, a;
		struct l34 tq = { 4, TCP, 1, 0, CLI4, RES4, CPORT, 53 };
		struct l34 ta = { 4, TCP, 1, 0, RES4, CLI4, 53, CPORT };
		int ret = -1;

		apply(&P_MAIN);
		reset_state();
		pipelined(&dq, "api.example.com", 0);
		pipelined(&da, "api.example.com", 1);
		packet(&q, &tq, &dq);
		packet(&a, &ta, &da);
		before = map_counters(skel->maps.counters);
		run(skel->progs.df_egress, &q, &ret);
		CHECK_INT(N("questions pass"), 1, ret);
		CHECK_INT(N("first question pending"), 1, pending_count(map_fd(skel->maps.pending)));
		ret = -1;
		run(skel->progs.df_ingress, &a, &ret);
		after = map_counters(skel->maps.counters);
		CHECK_INT(N("answers pass"), 1, ret);
		CHECK_INT(N("dns_queries"), 1, after.dns_queries - before.dns_queries);
		CHECK_INT(N("dns_answers"), 1, after.dns_answers - before.dns_answers);
		CHECK_INT(N("dns_untrusted"), 0, after.dns_untrusted - before.dns_untrusted);
		CHECK_INT(N("203.0.113.80 learned"), 0, lookup_prov("203.0.113.80", &pv));
	}

	desc_now = "nesting: a program entered over another uses the next scratch slot";
	{
		int ncpu = libbpf_num_possible_cpus(), ret = -1, same = 1;
		struct df_dns_scratch *sl = calloc((size_t)(ncpu > 0 ? ncpu : 1), sizeof(*sl));
		/* a per-CPU map's values come 8 bytes apart: the u32 level in the low half */
		__u64 *lv = calloc((size_t)(ncpu > 0 ? ncpu : 1), sizeof(*lv));
		__u32 zero = 0;
		struct wire q;

		apply(&P_MAIN);
		reset_state();
		CHECK(N("buffers"), sl && lv && ncpu > 0, "ncpu %d", ncpu);
		for (int i = 0; sl && lv && i < ncpu; i++) {
			memset(&sl[i], 0xab, sizeof(sl[i]));
			lv[i] = 1; /* as if a program at level 0 were interrupted */
		}
		if (sl && lv && ncpu > 0) {
			CHECK_INT(N("mark slot 0"), 0,
				  bpf_map_update_elem(map_fd(skel->maps.scratch), &zero, sl, BPF_ANY));
			CHECK_INT(N("level 1"), 0,
				  bpf_map_update_elem(map_fd(skel->maps.nest), &zero, lv, BPF_ANY));
			build_question(&q, 4, UDP, "github.com", 0x5151);
			run(skel->progs.df_egress, &q, &ret);
			CHECK_INT(N("github.com still refused at level 1"), 0, ret);
			memset(sl, 0, sizeof(*sl) * (size_t)ncpu);
			CHECK_INT(N("read slot 0"), 0,
				  bpf_map_lookup_elem(map_fd(skel->maps.scratch), &zero, sl));
			for (int i = 0; i < ncpu; i++)
				for (size_t b = 0; b < sizeof(sl[i].buf); b++)
					same &= sl[i].buf[b] == 0xab;
			CHECK_INT(N("slot 0 untouched"), 1, same);
			memset(lv, 0, sizeof(*lv) * (size_t)ncpu);
			CHECK_INT(N("read level"), 0,
				  bpf_map_lookup_elem(map_fd(skel->maps.nest), &zero, lv));
			CHECK_INT(N("the level given back"), 1, (int)lv[0]);
			for (int i = 0; i < ncpu; i++)
				lv[i] = DF_SCRATCH_LEVELS;
			CHECK_INT(N("level past the slots"), 0,
				  bpf_map_update_elem(map_fd(skel->maps.nest), &zero, lv, BPF_ANY));
			ret = -1;
			build_question(&q, 4, UDP, "api.example.com", 0x5152);
			run(skel->progs.df_egress, &q, &ret);
			CHECK_INT(N("past the slots an allowed question is not let through unjudged (enforce)"), 0, ret);
			memset(lv, 0, sizeof(*lv) * (size_t)ncpu);
			CHECK_INT(N("level 0 again"), 0,
				  bpf_map_update_elem(map_fd(skel->maps.nest), &zero, lv, BPF_ANY));
			ret = -1;
			run(skel->progs.df_egress, &q, &ret);
			CHECK_INT(N("and at level 0 it passes"), 1, ret);
		}
		free(sl);
		free(lv);
		reset_state();
	}

	desc_now = "name filter: a rule is looked up only where its bit is set";
	{
		struct df_config cfg;
		struct wire q;
		__u32 zero = 0;
		int ret = -1;

		apply(&P_MAIN);
		reset_state();
		build_question(&q, 4, UDP, "github.com", 0x4141);
		run(skel->progs.df_egress, &q, &ret);
		CHECK_INT(N("github.com refused with the filter as compiled"), 0, ret);
		CHECK_INT(N("read config"), 0, bpf_map_lookup_elem(map_fd(skel->maps.config), &zero, &cfg));
		memset(cfg.name_filter, 0, sizeof(cfg.name_filter));
		CHECK_INT(N("write config"), 0,
			  bpf_map_update_elem(map_fd(skel->maps.config), &zero, &cfg, BPF_ANY));
		ret = -1;
		build_question(&q, 4, UDP, "github.com", 0x4142);
		run(skel->progs.df_egress, &q, &ret);
		CHECK_INT(N("with every bit clear no rule is found: it passes"), 1, ret);
		apply(&P_MAIN);
	}

	desc_now = "ingress: an address a denied name resolved to stays denied";
	apply(&P_AUDIT);
	reset_state();
	one_exchange("api.github.com", 0x1111, "203.0.113.40", 53, NULL);
	one_exchange("api.example.com", 0x2222, "203.0.113.40", 53, NULL);
	id = name_id("api.github.com");
	CHECK_INT(N("learned"), 0, lookup_prov("203.0.113.40", &pv));
	CHECK_INT(N("deny kept"), 1, pv.deny);
	CHECK(N("name kept"), pv.name.h1 == id.h1 && pv.name.h2 == id.h2, "name replaced");

	desc_now = "ingress: an answer for another name leaves the question pending";
	apply(&P_MAIN);
	reset_state();
	before = map_counters(skel->maps.counters);
	one_exchange("api.example.com", 0x3333, "203.0.113.70", 53, "api.example.org");
	one_exchange(NULL, 0x3333, "203.0.113.71", 53, "api.example.com");
	after = map_counters(skel->maps.counters);
	CHECK_INT(N("dns_untrusted"), 1, after.dns_untrusted - before.dns_untrusted);
	CHECK_INT(N("dns_answers"), 1, after.dns_answers - before.dns_answers);
	CHECK(N("spoofed address not learned"), lookup_prov("203.0.113.70", &pv) != 0, "learned");
	CHECK_INT(N("real answer learned"), 0, lookup_prov("203.0.113.71", &pv));

	desc_now = "ingress: a pending slot changed behind the fence's back matches nothing";
	{
		struct df_pending_slot sl;
		struct wire q;
		int ret, found = -1;

		apply(&P_MAIN);
		reset_state();
		build_question(&q, 4, UDP, "api.example.com", 0x5151);
		run(skel->progs.df_egress, &q, &ret);
		found = pending_next(map_fd(skel->maps.pending), 0, &sl);
		CHECK(N("the question is pending"), found >= 0, "no slot");
		if (found >= 0) {
			uint32_t i = (uint32_t)found;

			/* what a torn write, or a forger without the fence's key, leaves */
			sl.val.deny ^= 1;
			bpf_map_update_elem(map_fd(skel->maps.pending), &i, &sl, BPF_ANY);
		}
		before = map_counters(skel->maps.counters);
		one_exchange(NULL, 0x5151, "203.0.113.72", 53, "api.example.com");
		after = map_counters(skel->maps.counters);
		CHECK_INT(N("dns_untrusted"), 1, after.dns_untrusted - before.dns_untrusted);
		CHECK(N("nothing learned"), lookup_prov("203.0.113.72", &pv) != 0, "learned");
	}

	desc_now = "ingress: 48 questions in flight at once are all answered and learned";
	{
		int learned = 0;

		apply(&P_MAIN);
		reset_state();
		for (int i = 0; i < 48; i++) {
			struct wire q;
			int ret;

			build_question(&q, 4, UDP, "api.example.com", (uint16_t)(0x6000 + i * 7));
			run(skel->progs.df_egress, &q, &ret);
		}
		CHECK_INT(N("all pending"), 48, pending_count(map_fd(skel->maps.pending)));
		for (int i = 0; i < 48; i++) {
			char addr[32];

			snprintf(addr, sizeof(addr), "203.0.113.%d", 100 + i);
			one_exchange(NULL, (uint16_t)(0x6000 + i * 7), addr, 53, "api.example.com");
			learned += lookup_prov(addr, &pv) == 0;
		}
		CHECK_INT(N("every answer learned"), 48, learned);
		CHECK_INT(N("none left pending"), 0, pending_count(map_fd(skel->maps.pending)));
	}

	desc_now = "egress: an answer sent from port 53 inside the fence clears the question";
	{
		struct wire q, a, d = {};
		struct l34 t = { 4, UDP, 0, 0, CLI4, RES4, 53, CPORT };
		int ret;

		reset_state();
		build_question(&q, 4, UDP, "api.example.com", 0x4444);
		run(skel->progs.df_egress, &q, &ret);
		CHECK_INT(N("pending after the question"), 1, pending_count(map_fd(skel->maps.pending)));
		/* the host answers its own question from port 53: the reverse key */
		dns_header(&d, 0x4444, 0x8180, 1, 0);
		put_name(&d, "api.example.com");
		put16(&d, 1);
		put16(&d, 1);
		t.src = RES4;
		t.dst = CLI4;
		t.sport = 53;
		t.dport = CPORT;
		packet(&a, &t, &d);
		before = map_counters(skel->maps.counters);
		run(skel->progs.df_egress, &a, &ret);
		after = map_counters(skel->maps.counters);
		CHECK_INT(N("retval"), 1, ret);
		CHECK_INT(N("not a question"), 0, after.dns_queries - before.dns_queries);
		CHECK_INT(N("pending cleared"), 0, pending_count(map_fd(skel->maps.pending)));
	}

	/*
	 * A client bound to port 53 asks a resolver on port 53; another socket
	 * in the fence sends it an answer from the resolver's address and port
	 * (loopback, both bound to 127.0.0.1:53). That answer leaves the fence
	 * to a DNS port, and it cancels the question all the same: the answer
	 * that comes in is untrusted. Without it the same exchange is trusted.
	 */
	for (int fake = 0; fake < 2; fake++) {
		struct wire q, a, d = {};
		struct l34 tq = { 4, UDP, 0, 0, CLI4, RES4, 53, 53 };
		struct l34 ta = { 4, UDP, 0, 0, RES4, CLI4, 53, 53 };
		int ret = -1;

		desc_now = fake ? "egress: an answer sent to a client on port 53 clears the question"
				: "ingress: an answer to a client on port 53 is trusted";
		apply(&P_MAIN);
		reset_state();
		dns_header(&d, 0x4545, 0x0100, 1, 0);
		put_name(&d, "api.example.com");
		put16(&d, 1);
		put16(&d, 1);
		packet(&q, &tq, &d);
		run(skel->progs.df_egress, &q, &ret);
		CHECK_INT(N("question passes"), 1, ret);
		CHECK_INT(N("pending after the question"), 1, pending_count(map_fd(skel->maps.pending)));
		d.n = 0;
		dns_header(&d, 0x4545, 0x8180, 1, 1);
		put_name(&d, "api.example.com");
		put16(&d, 1);
		put16(&d, 1);
		put16(&d, 0xc00c);
		rr(&d, 1, 30, 4);
		put_addr4(&d, "203.0.113.73");
		packet(&a, &ta, &d);
		before = map_counters(skel->maps.counters);
		if (fake) {
			ret = -1;
			run(skel->progs.df_egress, &a, &ret);
			CHECK_INT(N("the fake answer leaves"), 1, ret);
			CHECK_INT(N("pending cleared"), 0, pending_count(map_fd(skel->maps.pending)));
		}
		ret = -1;
		run(skel->progs.df_ingress, &a, &ret);
		after = map_counters(skel->maps.counters);
		CHECK_INT(N("answer passes"), 1, ret);
		CHECK_INT(N("not a question"), 0, after.dns_queries - before.dns_queries);
		CHECK_INT(N("dns_answers"), !fake, after.dns_answers - before.dns_answers);
		CHECK_INT(N("dns_untrusted"), fake, after.dns_untrusted - before.dns_untrusted);
		CHECK_INT(N("203.0.113.73 learned"), !fake, lookup_prov("203.0.113.73", &pv) == 0);
	}
}

/* ======================================================================
 * Random mutations: every run returns, with 0 or 1.
 * ====================================================================== */

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint32_t rnd(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	rng_state = x;
	return (uint32_t)(x >> 11);
}

/* Mutate past the Ethernet header; keep at least the IP header, which test_run requires. */
static void mutate(struct wire *p, size_t dns_off, size_t min_len)
{
	static const uint8_t special[] = { 0, 1, 0x3f, 0x40, 0x80, 0xc0, 0xff, '.', 'A', 12, 46 };
	int n = 1 + (int)(rnd() % 6);

	for (int i = 0; i < n; i++) {
		size_t lo = rnd() % 4 == 0 ? 14 : dns_off, pos;
		uint8_t v;

		if (lo >= p->n)
			lo = 14;
		pos = lo + rnd() % (p->n - lo);
		v = rnd() % 2 ? (uint8_t)rnd() : special[rnd() % sizeof(special)];
		p->b[pos] = v;
	}
	if (rnd() % 5 == 0)
		p->n = min_len + rnd() % (p->n - min_len + 1);
}

static void fuzz(void)
{
	struct {
		int fam, proto;
		ans_fn answers;
	} bases[] = {
		{ 4, UDP, ans_cname_ptr }, { 6, UDP, ans_multi }, { 4, TCP, ans_cname3 },
		{ 6, TCP, ans_a },	   { 4, UDP, ans_200 },
	};
	int runs = 0, bad = 0, iters = 500;
	char first[256] = "";

	struct df_counters before, after;

	desc_now = "mutations";
	apply(&P_AUDIT);
	reset_state();
	before = map_counters(skel->maps.counters);
	for (int it = 0; it < iters; it++) {
		int b = it % (int)ARRAY_SIZE(bases), fam = bases[b].fam, proto = bases[b].proto;
		size_t dns_off = 14 + (fam == 6 ? 40 : 20) + (proto == TCP ? 22 : 8);
		struct l34 t = { fam, proto, 0, 0, res(fam), cli(fam), 53, CPORT };
		struct wire q, a, m;
		int ret, err;
		const char *names[] = { "api.example.com", "api.github.com", "a.x.example" };
		const char *name = names[rnd() % 3];

		build_question(&q, fam, proto, name, (uint16_t)it);
		build_answer(&a, &t, name, (uint16_t)it, bases[b].answers);
		for (int k = 0; k < 4; k++) {
			/* k: mutated question to egress and ingress, mutated answer likewise */
			struct bpf_program *prog = k % 2 ? skel->progs.df_ingress :
							   skel->progs.df_egress;

			m = k < 2 ? q : a;
			if (k >= 2) /* a pending question, so the answer walk is reached */
				run(skel->progs.df_egress, &q, &ret);
			mutate(&m, dns_off, 14 + (fam == 6 ? 40 : 20));
			err = run(prog, &m, &ret);
			runs++;
			if (err || (ret != 0 && ret != 1)) {
				if (!bad++)
					snprintf(first, sizeof(first),
						 "iteration %d, step %d: err %d, retval %d", it, k, err,
						 ret);
			}
		}
		if (it % 50 == 49)
			reset_state(); /* keep LRU maps from filling with junk */
	}
	after = map_counters(skel->maps.counters);
	CHECK(N("%d runs of mutated questions and answers return 0 or 1", runs), bad == 0,
	      "%d bad, first: %s", bad, first);
	/* the mutations reached the parsers, not only the early exits */
	CHECK(N("some mutated questions parsed"),
	      after.dns_queries - before.dns_queries > after.dns_unparsable - before.dns_unparsable,
	      "none");
	CHECK(N("some mutated questions unparsable"),
	      after.dns_unparsable - before.dns_unparsable > 0, "none");
	CHECK(N("some mutated answers walked"), after.dns_answers - before.dns_answers > 0, "none");
	CHECK(N("some mutated answers untrusted"), after.dns_untrusted - before.dns_untrusted > 0,
	      "none");
	/* the programs still work after the junk */
	{
		struct wire q;
		int ret = -1;

		apply(&P_MAIN);
		build_question(&q, 4, UDP, "github.com", 1);
		run(skel->progs.df_egress, &q, &ret);
		CHECK_INT(N("github.com still refused afterwards"), 0, ret);
	}
}

/* ====================================================================== */

/*
 * [len][id, flags 0x0001, qdcount 1: name A][len][id 0x7777: api.example.com A]
 * in one TCP write or segment: qdcount reads 1 with the first length and
 * without it, and the length is not the rest of the write.
 */
static void ambig(struct wire *out, uint16_t id, const char *name)
{
	struct wire d;

	out->n = 0;
	for (int i = 0; i < 2; i++) {
		d.n = 0;
		dns_header(&d, i ? 0x7777 : id, i ? 0x0100 : 0x0001, 1, 0);
		put_name(&d, i ? "api.example.com" : name);
		put16(&d, 1);
		put16(&d, 1);
		put16(out, (uint16_t)d.n);
		put(out, d.b, d.n);
	}
}

static void make_names(void)
{
	struct wire d;
	char *p;

	/* 127 one-byte labels a.b.c...: 253 dotted bytes, 255 on the wire */
	p = long127;
	for (int i = 0; i < 127; i++) {
		if (i)
			*p++ = '.';
		*p++ = (char)('a' + i % 26);
	}
	*p = '\0';
	snprintf(tail3_rule, sizeof(tail3_rule), "**.%s", long127 + 2 * 124);
	snprintf(tail126_rule, sizeof(tail126_rule), "**.%s", long127 + 2);
	snprintf(long127_rule, sizeof(long127_rule), "%s", long127);

	/* 63.63.63.61 = 255 wire bytes; 63.63.63.62 = 256 */
	memset(max4, 0, sizeof(max4));
	memset(max4, 'm', 63 * 3 + 61 + 3);
	max4[63] = max4[127] = max4[191] = '.';
	memset(over255, 0, sizeof(over255));
	memset(over255, 'o', 63 * 3 + 62 + 3);
	over255[63] = over255[127] = over255[191] = '.';

	p = labels128;
	for (int i = 0; i < 128; i++) {
		if (i)
			*p++ = '.';
		*p++ = 'b';
	}
	*p = '\0';
	memset(label64, 'l', 64);
	strcpy(label64 + 64, ".com");
	memset(label46, 'q', 46);
	strcpy(label46 + 46, ".github.com");

	/* payloads that are not a single well-formed message */
	w_short_hdr.n = 0;
	put(&w_short_hdr, "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00", 11);
	w_tcp_prefix_only.n = 0;
	put16(&w_tcp_prefix_only, 28);

	/* [len][A github.com][len][AAAA github.com], as glibc writes them over TCP */
	w_tcp_pipelined.n = 0;
	for (int i = 0; i < 2; i++) {
		d.n = 0;
		dns_header(&d, (uint16_t)(0x5555 + i), 0x0100, 1, 0);
		put_name(&d, "github.com");
		put16(&d, i ? 28 : 1);
		put16(&d, 1);
		put16(&w_tcp_pipelined, (uint16_t)d.n);
		put(&w_tcp_pipelined, d.b, d.n);
	}
	w_tcp_trailing.n = 0;
	d.n = 0;
	dns_header(&d, 0x6666, 0x0100, 1, 0);
	put_name(&d, "github.com");
	put16(&d, 1);
	put16(&d, 1);
	put16(&w_tcp_trailing, (uint16_t)d.n);
	put(&w_tcp_trailing, d.b, d.n);
	put8(&w_tcp_trailing, 0);

	ambig(&w_amb_denied, 0x8001, "github.com");
	ambig(&w_amb_default, 0x8001, "www.example.org");
	ambig(&w_amb_allowed, 0x8001, "api.example.com");
	ambig(&w_amb_raw_root, 0x0100, "github.com");
}

/* ======================================================================
 * Egress: source routes (IPv6 routing header, IPv4 LSRR/SSRR): refused in
 * enforce whatever the addresses and the socket, recorded with rule
 * DF_RULE_SOURCE_ROUTE; other options and extension headers pass as before.
 * ====================================================================== */

/* Extension headers of 8 bytes each: next header, length 0 (routing: 16 more, one segment). */
static void ext6(struct wire *w, uint8_t next, int routing)
{
	put8(w, next);
	put8(w, routing ? 2 : 0);
	if (routing) {
		put8(w, 4); /* segment routing */
		put8(w, 0); /* segments left */
		put8(w, 0); /* last entry */
		put8(w, 0);
		put16(w, 0);
		put(w, OTH6, 16);
	} else {
		put8(w, 1); /* PadN, 4 bytes */
		put8(w, 4);
		put32(w, 0);
	}
}

struct rcase {
	const char *desc;
	int fam;
	const char *chain; /* IPv6: the headers before UDP, "h" hop-by-hop, "d" dest options, "r" routing */
	const uint8_t *opts; /* IPv4: options, a multiple of 4 bytes */
	size_t opts_n;
	int mode;
	int ret; /* 1 pass, 0 drop */
	int routed; /* a record with rule source-route: its verdict */
};

static const uint8_t O_LSRR[8] = { 131, 7, 4, 198, 51, 100, 54, 0 };
static const uint8_t O_NOP_SSRR[12] = { 1, 1, 137, 7, 4, 198, 51, 100, 54, 0, 0, 0 };
static const uint8_t O_RR[8] = { 7, 7, 4, 0, 0, 0, 0, 0 };
static const uint8_t O_NOPS[4] = { 1, 1, 1, 0 };
static const uint8_t O_BADLEN[4] = { 68, 1, 0, 0 }; /* a timestamp whose length is 1 */
static const uint8_t O_RR_SSRR[16] = { 7, 7, 4, 0, 0, 0, 0, 1, 137, 7, 4, 198, 51, 100, 54, 0 };

static const struct rcase rcases[] = {
	{ "ipv6 routing header", 6, "r", NULL, 0, DF_MODE_ENFORCE, 0, DF_EV_BLOCKED },
	{ "ipv6 hop-by-hop, routing header", 6, "hr", NULL, 0, DF_MODE_ENFORCE, 0, DF_EV_BLOCKED },
	{ "ipv6 hop-by-hop, dest options, routing header", 6, "hdr", NULL, 0, DF_MODE_ENFORCE, 0, DF_EV_BLOCKED },
	{ "ipv6 four options headers (longer than walked)", 6, "hddd", NULL, 0, DF_MODE_ENFORCE, 0, DF_EV_BLOCKED },
	{ "ipv6 routing header, audit", 6, "r", NULL, 0, DF_MODE_AUDIT, 1, DF_EV_WOULD_BLOCK },
	{ "ipv6 routing header, observe", 6, "r", NULL, 0, DF_MODE_OBSERVE, 1, DF_EV_WOULD_BLOCK },
	{ "ipv6 hop-by-hop only", 6, "h", NULL, 0, DF_MODE_ENFORCE, 1, -1 },
	{ "ipv6 hop-by-hop, dest options, no route", 6, "hd", NULL, 0, DF_MODE_ENFORCE, 1, -1 },
	{ "ipv4 lsrr", 4, NULL, O_LSRR, sizeof(O_LSRR), DF_MODE_ENFORCE, 0, DF_EV_BLOCKED },
	{ "ipv4 no-ops, ssrr", 4, NULL, O_NOP_SSRR, sizeof(O_NOP_SSRR), DF_MODE_ENFORCE, 0, DF_EV_BLOCKED },
	{ "ipv4 record route, ssrr", 4, NULL, O_RR_SSRR, sizeof(O_RR_SSRR), DF_MODE_ENFORCE, 0, DF_EV_BLOCKED },
	{ "ipv4 lsrr, audit", 4, NULL, O_LSRR, sizeof(O_LSRR), DF_MODE_AUDIT, 1, DF_EV_WOULD_BLOCK },
	{ "ipv4 option length 1 (unreadable past it)", 4, NULL, O_BADLEN, sizeof(O_BADLEN), DF_MODE_ENFORCE, 0, DF_EV_BLOCKED },
	{ "ipv4 record route only", 4, NULL, O_RR, sizeof(O_RR), DF_MODE_ENFORCE, 1, -1 },
	{ "ipv4 no-ops only", 4, NULL, O_NOPS, sizeof(O_NOPS), DF_MODE_ENFORCE, 1, -1 },
};

static void route_packet(struct wire *out, const struct rcase *c)
{
	static const uint8_t mac[12] = { 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2 };
	struct wire ext = {};
	size_t l4 = 8 + 4;

	out->n = 0;
	put(out, mac, sizeof(mac));
	put16(out, c->fam == 6 ? 0x86dd : 0x0800);
	if (c->fam == 6) {
		size_t n = strlen(c->chain);

		for (size_t i = 0; i < n; i++) {
			char nx = i + 1 < n ? c->chain[i + 1] : 'u';

			ext6(&ext, nx == 'h' ? 0 : nx == 'd' ? 60 : nx == 'r' ? 43 : UDP, c->chain[i] == 'r');
		}
		put32(out, 0x60000000);
		put16(out, (uint16_t)(ext.n + l4));
		put8(out, c->chain[0] == 'h' ? 0 : c->chain[0] == 'd' ? 60 : 43);
		put8(out, 64);
		put(out, CLI6, 16);
		put(out, RES6, 16);
		put(out, ext.b, ext.n);
	} else {
		size_t hl = 20 + c->opts_n, start = out->n;

		put8(out, (uint8_t)(0x40 | hl / 4));
		put8(out, 0);
		put16(out, (uint16_t)(hl + l4));
		put16(out, 1);
		put16(out, 0x4000);
		put8(out, 64);
		put8(out, UDP);
		put16(out, 0);
		put(out, CLI4, 4);
		put(out, RES4, 4);
		put(out, c->opts, c->opts_n);
		set16(out, start + 10, ip_csum(out->b + start, hl));
	}
	put16(out, CPORT);
	put16(out, 7777);
	put16(out, (uint16_t)l4);
	put16(out, 0);
	put32(out, 0x64667274);
}

static void check_route(const struct rcase *c)
{
	struct df_rec_key keys[8];
	struct df_rec_val vals[8];
	const struct df_rec_key *k = NULL;
	struct pol p = { c->mode, DF_ALLOW, NULL, NULL };
	struct wire pkt;
	int ret, err, n, routed = 0;

	desc_now = c->desc;
	if (apply(&p) < 0)
		return;
	reset_state();
	route_packet(&pkt, c);
	err = run(skel->progs.df_egress, &pkt, &ret);
	CHECK_INT(N("test run"), 0, err);
	CHECK_INT(N("retval"), c->ret, ret);
	n = find_records(keys, vals, 8);
	for (int i = 0; i < n; i++)
		if (keys[i].rule_id == DF_RULE_SOURCE_ROUTE) {
			routed++;
			k = &keys[i];
		}
	CHECK_INT(N("source-route records"), c->routed >= 0 ? 1 : 0, routed);
	if (!k || c->routed < 0)
		return;
	CHECK_INT(N("verdict"), c->routed, k->verdict);
	CHECK_INT(N("hook"), DF_HOOK_EGRESS, k->hook);
	CHECK_INT(N("family"), c->fam, k->family);
	/* what the packet carries, past its route: UDP to 7777 (a chain not walked: its first header) */
	CHECK_INT(N("proto"), c->fam == 4 || strchr(c->chain, 'r') ? UDP : 0, k->proto);
	CHECK_INT(N("dport"), c->fam == 4 || strchr(c->chain, 'r') ? 7777 : 0, k->dport);
	CHECK(N("daddr is the header's"),
	      !memcmp(k->daddr, c->fam == 6 ? RES6 : RES4, c->fam == 6 ? 16 : 4), "other address");
}

/* The whole table on one build of the fence's object (hook/fence_obj.h). */
static void run_build(bool loop)
{
	char name[300];
	int r;

	unit_prefix = loop ? "[bpf_loop] " : "";
	skel = fence_bpf_open_build(loop);
	CHECK("bpf dns: open skeleton", skel != NULL, "%s", strerror(errno));
	if (!skel)
		return;
	skel->rodata->skb_task_helpers = task_helpers;
	/* the test run's made-up socket was never judged: keep the egress backstop out of this table */
	skel->rodata->backstop_on = 0;
	bpf_map__set_max_entries(skel->maps.rules4, 1);
	bpf_map__set_max_entries(skel->maps.rules6, 1);
	bpf_map__set_max_entries(skel->maps.name_rules, 64);
	r = fence_bpf__load(skel);
	CHECK_INT("bpf dns: load (verifier)", 0, r);
	if (r < 0) {
		fence_bpf__destroy(skel);
		skel = NULL;
		return;
	}

	for (size_t i = 0; i < ARRAY_SIZE(qcases); i++) {
		struct qcase c = qcases[i];

		snprintf(name, sizeof(name), "egress: %s", c.desc);
		c.desc = name;
		check_question(&c);
	}
	for (size_t i = 0; i < ARRAY_SIZE(acases); i++) {
		struct acase c = acases[i];

		snprintf(name, sizeof(name), "ingress: %s", c.desc);
		c.desc = name;
		check_answer(&c);
	}
	for (size_t i = 0; i < ARRAY_SIZE(rcases); i++) {
		struct rcase c = rcases[i];

		snprintf(name, sizeof(name), "egress: source route: %s", c.desc);
		c.desc = name;
		check_route(&c);
	}
	sequences();
	fuzz();
	fence_bpf__destroy(skel);
	skel = NULL;
	unit_prefix = "";
}

/*
 * fence_read_counters: a fence's per-CPU counters summed over the CPUs; the
 * one value of a fence made before they were per CPU (a plain array); any
 * other value size refused.
 */
static void check_read_counters(void)
{
	int n = libbpf_num_possible_cpus(), fd;
	struct df_counters *v, one = { .connections = 7, .dns_unparsable = 3 }, got;
	__u32 zero = 0;

	CHECK("counters: possible CPUs known", n > 0, "%d", n);
	if (n <= 0)
		return;
	v = calloc((size_t)n, sizeof(*v));
	fd = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "t_counters", 4, sizeof(*v), 1, NULL);
	CHECK("counters: per-CPU map made", fd >= 0 && v, "%s", strerror(errno));
	if (fd >= 0 && v) {
		for (int i = 0; i < n; i++) {
			v[i].connections = (__u64)i + 1;
			v[i].dns_unparsable = 10;
		}
		bpf_map_update_elem(fd, &zero, v, BPF_ANY);
		CHECK_INT("counters: per CPU, read back", 0, fence_read_counters(fd, &got));
		CHECK_INT("counters: connections summed over the CPUs", (long long)n * (n + 1) / 2,
			  (long long)got.connections);
		CHECK_INT("counters: last field summed too", 10LL * n, (long long)got.dns_unparsable);
		CHECK_INT("counters: an untouched field stays 0", 0, (long long)got.blocked);
	}
	if (fd >= 0)
		close(fd);
	free(v);
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "t_counters", 4, sizeof(one), 1, NULL);
	if (fd >= 0) {
		bpf_map_update_elem(fd, &zero, &one, BPF_ANY);
		CHECK_INT("counters: a fence made before they were per CPU (one value)", 0,
			  fence_read_counters(fd, &got));
		CHECK_INT("counters: its value as it is", 7, (long long)got.connections);
		CHECK_INT("counters: its last field", 3, (long long)got.dns_unparsable);
		close(fd);
	}
	fd = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "t_counters", 4, 8, 1, NULL);
	if (fd >= 0) {
		CHECK_INT("counters: another value size refused", -EINVAL, fence_read_counters(fd, &got));
		close(fd);
	}
}

int main(void)
{
	bool loop;

	if (geteuid() != 0) {
		printf("skip - bpf dns: not root\n");
		return 0;
	}
	inet_pton(AF_INET6, "2001:db8::2", CLI6);
	inet_pton(AF_INET6, "2001:db8::53", RES6);
	inet_pton(AF_INET6, "2001:db8::54", OTH6);
	make_names();
	check_read_counters();

	task_helpers = fence_probe_skb_task_helpers() > 0;
	printf("# cgroup_skb task helpers: %s\n", task_helpers ? "yes" : "no");
	/* the hook loads the bpf_loop build where the kernel has bpf_loop (5.17+): both then */
	loop = fence_kernel_has_bpf_loop();
	printf("# bpf_loop: %s\n", loop ? "yes, both builds" : "no (the hook loads the unrolled build)");
	run_build(false);
	if (loop)
		run_build(true);
	return unit_done();
}
