/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Fences on this host as status and gc see them: state files, pins, counters. */
#ifndef DEPFENCE_LIVEFENCE_H
#define DEPFENCE_LIVEFENCE_H

#include "config.h"
#include "fence.h"

struct live_ids {
	char **ids;
	size_t n;
};

void live_ids_free(struct live_ids *l);

/* Ids of the state files (<state_dir>/<id>.json), sorted; none when the dir is missing. */
int live_state_ids(const struct df_host_config *hc, struct live_ids *ret);

/* Ids of the pin directories under bpffs_root, sorted; none when the root is missing. */
int live_pin_ids(const struct df_host_config *hc, struct live_ids *ret);

int live_ids_has(const struct live_ids *l, const char *id);

/*
 * 1 when <bpffs_root>/<id>/ carries depfence's own pins: a "config" pin that
 * is a one-entry BPF array map of struct df_config (fence_start pins it last,
 * and a fence without a state file has one unless it was killed while
 * attaching, when its state file was written first). 0 when not: another
 * tool's directory, where bpffs_root is a bpffs mount's root that others use
 * too. < 0 on errors other than the pin missing or not being that map.
 */
int live_pins_are_fence(const struct df_host_config *hc, const char *id);

/* Counters and the number of records so far, read-only from the pins. */
int live_read_counters(const struct df_host_config *hc, const char *id, struct df_counters *ret,
		       long long *ret_records, struct df_error *e);

/* The pinned config (mode and default of a fence whose state file is lost). */
int live_read_config(const struct df_host_config *hc, const char *id, struct df_config *ret,
		     struct df_error *e);

/*
 * 1 when a pinned link of the fence is still attached to a cgroup (its
 * cgroup id in *ret_cgid), 0 when every link is detached (the kernel detaches
 * a cgroup's links once the cgroup is released) or there are none.
 */
int live_links_attached(const struct df_host_config *hc, const char *id,
			unsigned long long *ret_cgid);

/* Seconds as "42s", "3m07s", "2h05m", "4d03h". */
void live_format_age(unsigned long long seconds, char *buf, size_t len);

#endif
