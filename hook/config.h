/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Host configuration owned by the admin: /etc/depfence/depfence.json. */
#ifndef DEPFENCE_CONFIG_H
#define DEPFENCE_CONFIG_H

#include <limits.h>

#include "../bpf/fence.h"
#include "util.h"

#define DF_CONFIG_DEFAULT "/etc/depfence/depfence.json"
#define DF_CONFIG_MAX (1024 * 1024)
#define DF_HOOKS_DIRS_MAX 8

struct df_host_config {
	char report_dir[PATH_MAX];
	char state_dir[PATH_MAX];
	char bpffs_root[PATH_MAX];
	char profiles_dir[PATH_MAX];
	int annotations_may_loosen;
	unsigned int max_records; /* per fence */
	unsigned int dns_ttl_floor; /* seconds: provenance lives max(TTL, floor) */
	unsigned short dns_ports[DF_DNS_PORTS]; /* 53 first; 0 = unused */
	/* where this host's engines read hooks.d files (depfence doctor checks them) */
	char hooks_dirs[DF_HOOKS_DIRS_MAX][PATH_MAX];
	size_t n_hooks_dirs;
	char path[PATH_MAX]; /* the file read, or "" for built-in defaults */
};

void df_config_defaults(struct df_host_config *c);
/* Load DEPFENCE_CONFIG or the default path; a missing default file means defaults. */
int df_config_load(struct df_host_config *c, struct df_error *e);
int df_config_parse(const char *buf, const char *path, struct df_host_config *c,
		    struct df_error *e);

#endif
