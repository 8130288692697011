// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Rule lists as annotations, flags and profiles write them
 * (df_policy_add_list, df_policy_add_profiles), then what the kernel does
 * with the compiled tables checked against the reference judge for
 * addresses at and next to every rule's prefix.
 *
 * Input: one control byte (bit 0: the list is an allow list; bit 1: default
 * deny; bit 2: also read it as profile names), then the list.
 */
#include "fuzz_common.h"

static void cross_check(const struct df_policy *p)
{
	static const uint8_t protos[] = { DF_PROTO_TCP, DF_PROTO_UDP, DF_PROTO_OTHER };
	struct df_compiled c[2] = {};
	struct df_error e = {};

	if (df_policy_compile(p, 4, &c[0], &e) < 0 || df_policy_compile(p, 6, &c[1], &e) < 0)
		goto out;
	for (size_t i = 0; i < p->n_rules && i < 64; i++) {
		const struct df_rule *r = &p->rules[i];
		int family = r->target == DF_TARGET_CIDR4 ? 4 : 6;

		if (r->target == DF_TARGET_NAME)
			continue;
		for (int d = 0; d < 3; d++) {
			uint8_t addr[16];
			uint16_t port = d == 0 ? r->port_lo : d == 1 ? r->port_hi : r->port_hi + 1;

			memcpy(addr, r->addr, 16);
			/* the network, its last address, and one past the prefix */
			if (d == 1 && r->prefixlen < (family == 4 ? 32 : 128))
				addr[r->prefixlen / 8] |= (uint8_t)(0xff >> (r->prefixlen % 8));
			if (d == 2)
				addr[(family == 4 ? 3 : 15)] ^= 1;
			for (size_t k = 0; k < sizeof(protos); k++) {
				uint8_t rv, cv;
				uint32_t rid, cid;

				df_policy_judge(p, family, addr, protos[k], port, &rv, &rid);
				df_compiled_judge(&c[family == 6], family, addr, protos[k], port,
						  p->default_verdict, &cv, &cid);
				DF_FUZZ_ASSERT(rv == cv && rid == cid,
					       "rule %s, probe %d proto %#x port %u: reference %u rule %u, compiled %u rule %u",
					       r->text, d, protos[k], port, rv, rid, cv, cid);
			}
		}
	}
out:
	df_compiled_free(&c[0]);
	df_compiled_free(&c[1]);
}

DF_FUZZ_TARGET(rules)
{
	struct df_policy p;
	struct df_error e = {};
	char *list;
	uint8_t ctl;
	int r;

	if (size < 1 || size > 256 * 1024)
		return 0;
	ctl = data[0];
	list = df_fuzz_str(data + 1, size - 1);
	df_policy_init(&p);
	p.default_verdict = ctl & 2 ? DF_DENY : DF_ALLOW;
	r = df_policy_add_list(&p, list, ctl & 1 ? DF_ALLOW : DF_DENY, "fuzz", 4096, &e);
	if (r < 0) {
		df_fuzz_check_msg(e.msg);
	} else {
		df_fuzz_policy_sane(&p);
		cross_check(&p);
	}
	if (ctl & 4) {
		r = df_policy_add_profiles(&p, list, "fuzz profiles", &e);
		if (r < 0)
			df_fuzz_check_msg(e.msg);
		for (size_t i = 0; i < p.n_profiles; i++)
			DF_FUZZ_ASSERT(p.profiles[i] && strlen(p.profiles[i]) <= DF_PROFILE_NAME_MAX &&
					       !strchr(p.profiles[i], '/') &&
					       strcmp(p.profiles[i], "..") && strcmp(p.profiles[i], "."),
				       "profile name \"%s\"", p.profiles[i]);
	}
	df_policy_free(&p);
	free(list);
	return 0;
}
