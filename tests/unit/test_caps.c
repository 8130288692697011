// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Capabilities and user namespace: who may fence, and what the message says
 * otherwise. */
#include <unistd.h>

#include "../../hook/caps.h"
#include "unit.h"

#define B(cap) (1ULL << (cap))

static const struct caps_case {
	const char *what;
	unsigned long long eff;
	int init_userns;
	unsigned int euid;
	long long outer;
	int for_hook;
	int can;
	const char *frag1, *frag2;
} cases[] = {
	{ "root: every capability", ~0ULL, 1, 0, 0, 0, 1, "has what it needs", "CAP_SYS_ADMIN" },
	{ "CAP_SYS_ADMIN alone", B(DF_CAP_SYS_ADMIN), 1, 0, 0, 0, 1, "CAP_SYS_ADMIN", NULL },
	{ "CAP_BPF and CAP_NET_ADMIN", B(DF_CAP_BPF) | B(DF_CAP_NET_ADMIN), 1, 1000, 1000, 0, 1,
	  "CAP_BPF, CAP_NET_ADMIN", NULL },
	{ "CAP_BPF without CAP_NET_ADMIN", B(DF_CAP_BPF), 1, 1000, 1000, 0, 0,
	  "lacks CAP_NET_ADMIN, CAP_SYS_ADMIN", "(uid 1000)" },
	{ "CAP_NET_ADMIN without CAP_BPF", B(DF_CAP_NET_ADMIN), 1, 1000, 1000, 0, 0,
	  "lacks CAP_BPF, CAP_SYS_ADMIN", "sudo depfence" },
	{ "nothing", 0, 1, 65534, 65534, 0, 0, "lacks CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN",
	  "needs CAP_BPF and CAP_NET_ADMIN (or CAP_SYS_ADMIN) in the initial user namespace" },
	{ "nothing, as a hook", 0, 1, 0, 0, 1, 0, "lacks CAP_BPF",
	  "run the container engine as root" },
	{ "root in a user namespace", ~0ULL, 0, 0, 1000, 1, 0, "runs in a user namespace",
	  "uid 0 here is uid 1000 outside" },
	{ "rootless podman's hook", ~0ULL, 0, 0, 1000, 1, 0,
	  "rootless podman cannot fence containers", "rootful podman" },
	{ "user namespace, unknown mapping", B(DF_CAP_SYS_ADMIN), 0, 0, -1, 0, 0, "(rootless)",
	  "not inside a user namespace" },
};

int main(void)
{
	char name[256], msg[1024];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct caps_case *t = &cases[i];
		struct df_caps c = { .eff = t->eff,
				     .init_userns = t->init_userns,
				     .euid = t->euid,
				     .outer_uid = t->outer };

		snprintf(name, sizeof(name), "df_caps_can_fence %s", t->what);
		CHECK_INT(name, t->can, df_caps_can_fence(&c));
		df_caps_explain(&c, t->for_hook, msg, sizeof(msg));
		snprintf(name, sizeof(name), "df_caps_explain %s: says it", t->what);
		CHECK_MSG(name, msg, t->frag1);
		if (t->frag2) {
			snprintf(name, sizeof(name), "df_caps_explain %s: and what to do", t->what);
			CHECK_MSG(name, msg, t->frag2);
		}
	}

	/* this process, as the tests run it: root in the initial user namespace */
	{
		struct df_caps self;

		CHECK_INT("df_caps_self: reads this process", 0, df_caps_self(&self));
		if (geteuid() == 0)
			CHECK_INT("df_caps_self: root here may fence", 1, df_caps_can_fence(&self));
	}
	return unit_done();
}
