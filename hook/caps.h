/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* What loading and attaching cgroup BPF programs asks of the caller, checked up
 * front. */
#ifndef DEPFENCE_CAPS_H
#define DEPFENCE_CAPS_H

#include <stddef.h>

#define DF_CAP_NET_ADMIN 12
#define DF_CAP_SYS_ADMIN 21
#define DF_CAP_PERFMON 38
#define DF_CAP_BPF 39

struct df_caps {
	unsigned long long eff; /* effective set */
	int init_userns;	/* 1: the initial user namespace, 0: a user namespace
				   (rootless) */
	unsigned int euid;
	long long outer_uid; /* rootless: the host uid of uid 0 (or of euid); -1 unknown */
};

/* The calling process's effective capabilities and user namespace. */
int df_caps_self(struct df_caps *ret);

static inline int df_caps_has(const struct df_caps *c, int cap)
{
	return c->init_userns == 1 && (c->eff >> cap) & 1;
}

/*
 * 1 when the caller may load and attach the fence's programs: CAP_BPF and
 * CAP_NET_ADMIN, or CAP_SYS_ADMIN, in the initial user namespace (the kernel
 * checks them there: capabilities inside a user namespace do not count).
 */
int df_caps_can_fence(const struct df_caps *c);

/*
 * What is missing and what to do about it, one sentence without a prefix;
 * for_hook: the advice speaks of container engines rather than sudo.
 */
void df_caps_explain(const struct df_caps *c, int for_hook, char *buf, size_t len);

#endif
