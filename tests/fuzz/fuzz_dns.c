// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The DNS parsers of the kernel side (bpf/fence.bpf.c df_egress and
 * df_ingress), through BPF_PROG_TEST_RUN as tests/unit/test_bpf_dns.c drives
 * them. The input is a DNS message; for IPv4 and IPv6 it goes in UDP:
 *
 *   1. resolver:53 -> client, QR set, with no question pending: an answer
 *      to no question; it must teach nothing;
 *   2. client -> resolver:53, QR clear: a question; it may be refused
 *      (enforce mode, a denied name), then it is recorded and nothing is
 *      pending, or it may wait for its answer in the pending map;
 *   3. resolver:53 -> client, QR set: the answer; only when the question is
 *      pending may it teach provenance, every address of it for the
 *      question's name, living at most the TTL (at least the floor);
 *   4. a server inside the fence answering from port 53: passes, and ends
 *      what was pending.
 *
 * Every run must return 0 or 1, and the maps must say what happened.
 * Needs root (bpf()).
 */
#include <arpa/inet.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../../hook/fence.h"
#include "../../hook/fence_obj.h"
#include "fuzz_common.h"
#include "../unit/fence_maps.h"
#include "../unit/pending_table.h"

#define B1 1000003u
#define B2 1999993u
#define FLOOR 60
#define CPORT 40000
#define MAX_PAYLOAD 1400

static struct fence_bpf *skel;

#ifdef DF_LIBFUZZER
/*
 * libFuzzer sees no coverage inside the kernel: each outcome (family,
 * verdict, pending, trusted, unparsable, addresses learned) counts as a
 * feature of its own, so inputs that reach new outcomes join the corpus.
 */
static uint8_t outcomes[256] __attribute__((section("__libfuzzer_extra_counters"), used));
#define OUTCOME(code) outcomes[(code)&0xff]++
#else
#define OUTCOME(code) ((void)(code))
#endif
static const uint8_t CLI4[4] = { 198, 51, 100, 2 }, RES4[4] = { 198, 51, 100, 53 };
static const uint8_t CLI6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 2 };
static const uint8_t RES6[16] = { 0x20, 0x01, 0x0d, 0xb8, [14] = 0, [15] = 0x53 };

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void fill_rules(void)
{
	struct df_policy pol;
	struct df_compiled_names cn = {};
	struct df_config cfg = {};
	struct df_error e = {};
	__u32 zero = 0;
	int r;

	df_policy_init(&pol);
	pol.mode = DF_MODE_ENFORCE;
	r = df_policy_add_list(&pol, "github.com **.github.com *.x.example tcp/**.y.example:443",
			       DF_DENY, "deny", 64, &e);
	DF_FUZZ_ASSERT(r == 0, "policy: %s", e.msg);
	r = df_policy_add_list(&pol, "api.example.com api.github.com", DF_ALLOW, "allow", 64, &e);
	DF_FUZZ_ASSERT(r == 0, "policy: %s", e.msg);
	r = df_policy_compile_names(&pol, B1, B2, &cn, &e);
	DF_FUZZ_ASSERT(r == 0, "compile names: %s", e.msg);
	for (size_t i = 0; i < cn.n; i++)
		DF_FUZZ_ASSERT(bpf_map_update_elem(bpf_map__fd(skel->maps.name_rules), &cn.keys[i],
						   &cn.vals[i], BPF_ANY) == 0,
			       "fill name_rules: %s", strerror(errno));
	cfg.mode = DF_MODE_ENFORCE;
	cfg.default_verdict = DF_ALLOW;
	cfg.hash_b1 = B1;
	cfg.hash_b2 = B2;
	cfg.ttl_floor_s = FLOOR;
	memcpy(cfg.name_filter, cn.filter, sizeof(cfg.name_filter));
	cfg.dns_ports[0] = 53;
	DF_FUZZ_ASSERT(bpf_map_update_elem(bpf_map__fd(skel->maps.config), &zero, &cfg, BPF_ANY) ==
			       0,
		       "fill config: %s", strerror(errno));
	df_compiled_names_free(&cn);
	df_policy_free(&pol);
}

static void setup(void)
{
	int r;

	libbpf_set_print(NULL);
	/* the build the hook loads on this kernel */
	skel = fence_bpf_open_build(fence_kernel_has_bpf_loop());
	DF_FUZZ_ASSERT(skel, "open the skeleton: %s", strerror(errno));
	skel->rodata->skb_task_helpers = fence_probe_skb_task_helpers() > 0;
	bpf_map__set_max_entries(skel->maps.rules4, 1);
	bpf_map__set_max_entries(skel->maps.rules6, 1);
	bpf_map__set_max_entries(skel->maps.name_rules, 64);
	r = fence_bpf__load(skel);
	DF_FUZZ_ASSERT(r == 0, "load the programs (root? bpf?): %s", strerror(-r));
	fill_rules();
}

/* Ethernet, IPv4 or IPv6, UDP, the message. */
static size_t packet(uint8_t *out, int fam, int answer, const uint8_t *msg, size_t n)
{
	const uint8_t *src = fam == 4 ? (answer ? RES4 : CLI4) : (answer ? RES6 : CLI6);
	const uint8_t *dst = fam == 4 ? (answer ? CLI4 : RES4) : (answer ? CLI6 : RES6);
	uint16_t sport = htons(answer ? 53 : CPORT), dport = htons(answer ? CPORT : 53);
	uint16_t ulen = htons((uint16_t)(8 + n)), zero = 0;
	size_t o = 12;

	memset(out, 0, 12);
	out[o++] = fam == 4 ? 0x08 : 0x86;
	out[o++] = fam == 4 ? 0x00 : 0xdd;
	if (fam == 4) {
		uint16_t tot = htons((uint16_t)(20 + 8 + n));
		uint32_t s = 0;

		out[o] = 0x45;
		out[o + 1] = 0;
		memcpy(out + o + 2, &tot, 2);
		memset(out + o + 4, 0, 4);
		out[o + 6] = 0x40; /* DF */
		out[o + 8] = 64;
		out[o + 9] = 17;
		memset(out + o + 10, 0, 2);
		memcpy(out + o + 12, src, 4);
		memcpy(out + o + 16, dst, 4);
		for (int i = 0; i < 20; i += 2)
			s += (uint32_t)(out[o + i] << 8 | out[o + i + 1]);
		while (s >> 16)
			s = (s & 0xffff) + (s >> 16);
		out[o + 10] = (uint8_t)(~s >> 8);
		out[o + 11] = (uint8_t)~s;
		o += 20;
	} else {
		uint16_t plen = htons((uint16_t)(8 + n));

		out[o] = 0x60;
		memset(out + o + 1, 0, 3);
		memcpy(out + o + 4, &plen, 2);
		out[o + 6] = 17;
		out[o + 7] = 64;
		memcpy(out + o + 8, src, 16);
		memcpy(out + o + 24, dst, 16);
		o += 40;
	}
	memcpy(out + o, &sport, 2);
	memcpy(out + o + 2, &dport, 2);
	memcpy(out + o + 4, &ulen, 2);
	memcpy(out + o + 6, &zero, 2);
	o += 8;
	memcpy(out + o, msg, n);
	/* QR: the answer has it, the question not */
	if (n >= 3)
		out[o + 2] = answer ? (out[o + 2] | 0x80) : (out[o + 2] & 0x7f);
	return o + n;
}

static int run(struct bpf_program *prog, const uint8_t *pkt, size_t n)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt, .data_size_in = (__u32)n, .repeat = 1);
	int r = bpf_prog_test_run_opts(bpf_program__fd(prog), &o);

	DF_FUZZ_ASSERT(r == 0, "%s: test run failed: %s", bpf_program__name(prog), strerror(errno));
	DF_FUZZ_ASSERT(o.retval == 0 || o.retval == 1, "%s returned %u", bpf_program__name(prog),
		       o.retval);
	return (int)o.retval;
}

static void reset(void)
{
	clear_map(skel->maps.records);
	pending_clear(bpf_map__fd(skel->maps.pending));
	clear_map(skel->maps.prov4);
	clear_map(skel->maps.prov6);
	clear_map(skel->maps.names);
}

/* Every provenance entry is for the pending question's name and lives max(TTL, floor). */
static size_t check_prov(struct bpf_map *m, const struct df_pending_val *q, uint64_t before,
			 uint64_t after)
{
	uint8_t key[16], next[16];
	struct df_prov v;
	size_t n = 0;
	int fd = bpf_map__fd(m), r;

	for (r = bpf_map_get_next_key(fd, NULL, next); r == 0 && n < 100000;
	     r = bpf_map_get_next_key(fd, key, next)) {
		memcpy(key, next, sizeof(key));
		n++;
		if (bpf_map_lookup_elem(fd, key, &v) < 0)
			continue;
		DF_FUZZ_ASSERT(v.name.h1 == q->name.h1 && v.name.h2 == q->name.h2,
			       "provenance for a name that was not asked");
		DF_FUZZ_ASSERT(v.deny == q->deny, "provenance deny %u, question %u", v.deny, q->deny);
		DF_FUZZ_ASSERT(v.expires_ns >= before + FLOOR * 1000000000ull,
			       "provenance shorter than the floor");
		DF_FUZZ_ASSERT(v.expires_ns <= after + 0xffffffffull * 1000000000ull,
			       "provenance longer than any TTL");
	}
	return n;
}

static void one_family(int fam, const uint8_t *msg, size_t n)
{
	uint8_t pkt[MAX_PAYLOAD + 128];
	struct df_counters c0, c1, c2, c3;
	struct df_pending_val q = {};
	struct bpf_map *prov = fam == 4 ? skel->maps.prov4 : skel->maps.prov6;
	size_t len, pend;
	uint64_t t0, t1;
	int ret, have_q = 0;

	reset();
	c0 = map_counters(skel->maps.counters);

	/* 1. an answer to no question */
	len = packet(pkt, fam, 1, msg, n);
	run(skel->progs.df_ingress, pkt, len);
	c1 = map_counters(skel->maps.counters);
	DF_FUZZ_ASSERT(map_count(skel->maps.prov4) == 0 && map_count(skel->maps.prov6) == 0,
		       "IPv%d: provenance learned from an answer to no question", fam);
	DF_FUZZ_ASSERT(c1.dns_answers == c0.dns_answers,
		       "IPv%d: an answer to no question counted as trusted", fam);

	/* 2. the question */
	len = packet(pkt, fam, 0, msg, n);
	ret = run(skel->progs.df_egress, pkt, len);
	c2 = map_counters(skel->maps.counters);
	pend = pending_count(bpf_map__fd(skel->maps.pending));
	DF_FUZZ_ASSERT(pend <= 1, "IPv%d: %zu questions pending after one", fam, pend);
	DF_FUZZ_ASSERT(c2.dns_queries - c1.dns_queries <= 1, "IPv%d: one packet, %llu questions",
		       fam, (unsigned long long)(c2.dns_queries - c1.dns_queries));
	if (ret == 0) {
		DF_FUZZ_ASSERT(c2.dns_blocked == c1.dns_blocked + 1,
			       "IPv%d: a question dropped without counting it blocked", fam);
		DF_FUZZ_ASSERT(map_count(skel->maps.records) == 1,
			       "IPv%d: a question dropped without a record", fam);
		DF_FUZZ_ASSERT(pend == 0, "IPv%d: a refused question is pending", fam);
	} else {
		DF_FUZZ_ASSERT(c2.dns_blocked == c1.dns_blocked,
			       "IPv%d: a question counted blocked but passed", fam);
	}
	if (pend == 1) {
		struct df_pending_slot sl;
		struct df_pending_key pk;

		DF_FUZZ_ASSERT(pending_next(bpf_map__fd(skel->maps.pending), 0, &sl) >= 0,
			       "read the pending question");
		pk = sl.key;
		q = sl.val;
		DF_FUZZ_ASSERT(pk.client_port == CPORT && pk.resolver_port == 53 &&
				       pk.family == fam && !memcmp(&pk.txid, msg, 2),
			       "IPv%d: pending key not the question's", fam);
		have_q = 1;
	}

	/* 3. its answer */
	len = packet(pkt, fam, 1, msg, n);
	t0 = mono_ns();
	run(skel->progs.df_ingress, pkt, len);
	t1 = mono_ns();
	c3 = map_counters(skel->maps.counters);
	if (!have_q) {
		DF_FUZZ_ASSERT(map_count(skel->maps.prov4) == 0 && map_count(skel->maps.prov6) == 0,
			       "IPv%d: provenance learned with no question pending", fam);
		DF_FUZZ_ASSERT(c3.dns_answers == c2.dns_answers,
			       "IPv%d: trusted answer with no question pending", fam);
	} else {
		size_t learned = check_prov(skel->maps.prov4, &q, t0, t1) +
				 check_prov(skel->maps.prov6, &q, t0, t1);

		DF_FUZZ_ASSERT(learned <= DF_DNS_ANSWERS_MAX, "IPv%d: %zu addresses from one answer",
			       fam, learned);
		DF_FUZZ_ASSERT(!learned || c3.dns_answers == c2.dns_answers + 1,
			       "IPv%d: provenance without a trusted answer", fam);
		DF_FUZZ_ASSERT(c3.dns_answers - c2.dns_answers + c3.dns_untrusted -
					       c2.dns_untrusted ==
				       (n >= 6 && msg[4] == 0 && msg[5] == 1 ? 1u : 0u) ||
				       n < 12,
			       "IPv%d: an answer both trusted and untrusted, or neither", fam);
		if (c3.dns_answers == c2.dns_answers + 1)
			DF_FUZZ_ASSERT(pending_count(bpf_map__fd(skel->maps.pending)) == 0,
				       "IPv%d: the answered question is still pending", fam);
		if (getenv("DF_FUZZ_VERBOSE"))
			fprintf(stderr, "IPv%d: question %s, answer %s, %zu addresses learned\n",
				fam, ret ? "passed" : "refused",
				c3.dns_answers > c2.dns_answers ? "trusted" : "untrusted", learned);
	}
	OUTCOME((fam == 6) | (ret == 0) << 1 | have_q << 2 |
		(c3.dns_answers > c2.dns_answers) << 3 | (c3.dns_untrusted > c2.dns_untrusted) << 4 |
		(c2.dns_unparsable > c1.dns_unparsable) << 5 |
		(map_count(skel->maps.prov4) + map_count(skel->maps.prov6) > 0) << 6 |
		(map_count(skel->maps.prov4) + map_count(skel->maps.prov6) > 1) << 7);
	if (!have_q && getenv("DF_FUZZ_VERBOSE"))
		fprintf(stderr, "IPv%d: question %s, none pending\n", fam, ret ? "passed" : "refused");
	(void)prov;

	/* 4. a DNS server in the fence answering its own client */
	len = packet(pkt, fam, 0, msg, n);
	{
		/* swap ports: from 53 to CPORT, QR set */
		size_t l4 = 14 + (fam == 4 ? 20 : 40);
		uint16_t s = htons(53), d = htons(CPORT);

		memcpy(pkt + l4, &s, 2);
		memcpy(pkt + l4 + 2, &d, 2);
		if (n >= 3)
			pkt[l4 + 8 + 2] |= 0x80;
		DF_FUZZ_ASSERT(run(skel->progs.df_egress, pkt, len) == 1,
			       "IPv%d: a server's answer dropped", fam);
	}
}

DF_FUZZ_TARGET(dns)
{
	if (!skel)
		setup();
	if (size > MAX_PAYLOAD)
		return 0;
	one_family(4, data, size);
	one_family(6, data, size);
	return 0;
}
