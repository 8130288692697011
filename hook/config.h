/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Host configuration owned by the admin: /etc/depfence/depfence.json. */
#ifndef DEPFENCE_CONFIG_H
#define DEPFENCE_CONFIG_H

#include <limits.h>

#include "../bpf/fence.h"
#include "policy.h"
#include "util.h"

#define DF_CONFIG_DEFAULT "/etc/depfence/depfence.json"
#define DF_CONFIG_MAX (1024 * 1024)
#define DF_HOOKS_DIRS_MAX 8
#define DF_ADMIN_RULES_MAX 100000

struct df_host_config {
	char report_dir[PATH_MAX];
	char state_dir[PATH_MAX];
	char bpffs_root[PATH_MAX];
	char profiles_dir[PATH_MAX];
	int annotations_may_loosen;
	int annotations_may_break_glass; /* depfence.io/break-glass is honoured */
	/*
	 * The admin's policy, under every fence: "mode" and "default" (-1 when
	 * the config leaves them out) and the "deny" and "allow" rules.
	 */
	int admin_mode, admin_default;
	struct df_policy admin;
	unsigned int max_records; /* per fence */
	unsigned int dns_ttl_floor; /* seconds: provenance lives max(TTL, floor) */
	/* seconds the attribution programs stay loaded after the last fence; 0: removed with it */
	unsigned int attribution_linger;
	/* finished fences whose verified programs wait for the next like them (pool.h); 0: none */
	unsigned int fence_pool;
	unsigned short dns_ports[DF_DNS_PORTS]; /* 53 first; 0 = unused */
	/* where this host's engines read hooks.d files (depfence doctor checks them) */
	char hooks_dirs[DF_HOOKS_DIRS_MAX][PATH_MAX];
	size_t n_hooks_dirs;
	char path[PATH_MAX]; /* the file read, or "" for built-in defaults */
};

void df_config_defaults(struct df_host_config *c);
void df_config_free(struct df_host_config *c);
/* Load DEPFENCE_CONFIG or the default path; a missing default file means defaults. */
int df_config_load(struct df_host_config *c, struct df_error *e);
int df_config_parse(const char *buf, const char *path, struct df_host_config *c,
		    struct df_error *e);

/* 1 when the config sets a policy of its own: then every container the hook sees is fenced. */
int df_admin_has_policy(const struct df_host_config *c);

/*
 * Put the admin's policy under a job's (annotations, run flags, and the
 * profiles they asked for): the admin's rules go first, its mode and default
 * hold where the job set none. What would loosen the admin's policy is an
 * error naming the job's key, its value and the admin's rule, unless the
 * config says annotations_may_loosen; a break-glass request is an error
 * unless it says annotations_may_break_glass. On error p is unchanged.
 */
int df_admin_apply(const struct df_host_config *c, struct df_policy *p, struct df_error *e);

#endif
