/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* What several targets check about a policy once it parsed. */
#ifndef DEPFENCE_FUZZ_COMMON_H
#define DEPFENCE_FUZZ_COMMON_H

#include "../../hook/policy.h"
#include "fuzz.h"

/* Every rule is whole, and user space compiles it as fence_start would. */
static inline void df_fuzz_policy_sane(const struct df_policy *p)
{
	struct df_compiled c4 = {}, c6 = {};
	struct df_compiled_names cn = {};
	struct df_error e = {};
	int r4, r6, rn;

	DF_FUZZ_ASSERT(p->n_rules <= p->cap_rules, "%zu rules, room for %zu", p->n_rules,
		       p->cap_rules);
	DF_FUZZ_ASSERT(p->mode >= DF_MODE_OBSERVE && p->mode <= DF_MODE_ENFORCE, "mode %d",
		       p->mode);
	DF_FUZZ_ASSERT(p->default_verdict == DF_ALLOW || p->default_verdict == DF_DENY,
		       "default %d", p->default_verdict);
	DF_FUZZ_ASSERT(p->n_profiles <= DF_PROFILES_MAX, "%zu profiles", p->n_profiles);
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct df_rule *r = &p->rules[i];

		DF_FUZZ_ASSERT(r->text && r->source, "rule %zu without text or source", i);
		DF_FUZZ_ASSERT(r->verdict == DF_ALLOW || r->verdict == DF_DENY, "rule %zu verdict %u",
			       i, r->verdict);
		DF_FUZZ_ASSERT(r->port_lo <= r->port_hi, "rule %s: ports %u-%u", r->text, r->port_lo,
			       r->port_hi);
		if (r->target == DF_TARGET_NAME) {
			DF_FUZZ_ASSERT(r->name && strlen(r->name) <= DF_NAME_MAX_LEN,
				       "rule %s: name", r->text);
			DF_FUZZ_ASSERT(r->name_kind <= DF_NAME_MANY, "rule %s: kind %u", r->text,
				       r->name_kind);
		} else {
			DF_FUZZ_ASSERT(r->prefixlen <= (r->target == DF_TARGET_CIDR4 ? 32 : 128),
				       "rule %s: /%u", r->text, r->prefixlen);
		}
	}
	r4 = df_policy_compile(p, 4, &c4, &e);
	r6 = df_policy_compile(p, 6, &c6, &e);
	rn = df_policy_compile_names(p, 1000003u, 1999993u, &cn, &e);
	/* the only way a parsed policy may not compile: too many rules on one prefix */
	DF_FUZZ_ASSERT(r4 == 0 || r4 == -E2BIG, "compile IPv4: %d %s", r4, e.msg);
	DF_FUZZ_ASSERT(r6 == 0 || r6 == -E2BIG, "compile IPv6: %d %s", r6, e.msg);
	DF_FUZZ_ASSERT(rn == 0 || rn == -E2BIG, "compile names: %d %s", rn, e.msg);
	df_compiled_free(&c4);
	df_compiled_free(&c6);
	df_compiled_names_free(&cn);
}

#endif
