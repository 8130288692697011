/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The fence's maps as the tests that load its object see them
 * (test_bpf_dns, fuzz_dns): empty one, count one, read the counters.
 * Bounded: a hash map yields at most its entries, and we stop at 100,000.
 */
#ifndef DEPFENCE_TEST_FENCE_MAPS_H
#define DEPFENCE_TEST_FENCE_MAPS_H

#include <stdint.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../../bpf/fence.h"
#include "../../hook/fence.h"

#define FENCE_MAPS_BOUND 100000

static inline void clear_map(struct bpf_map *m)
{
	uint8_t key[512];
	int fd = bpf_map__fd(m);

	for (int i = 0; i < FENCE_MAPS_BOUND && bpf_map_get_next_key(fd, NULL, key) == 0; i++)
		if (bpf_map_delete_elem(fd, key) < 0)
			break;
}

static inline size_t map_count(struct bpf_map *m)
{
	uint8_t key[512], next[512];
	size_t n = 0, ks = bpf_map__key_size(m);
	int fd = bpf_map__fd(m), r;

	for (r = bpf_map_get_next_key(fd, NULL, next); r == 0 && n < FENCE_MAPS_BOUND;
	     r = bpf_map_get_next_key(fd, key, next)) {
		memcpy(key, next, ks);
		n++;
	}
	return n;
}

/* The fence's counters (summed over the CPUs, as the hook reads them), zero when they cannot be read. */
static inline struct df_counters map_counters(struct bpf_map *counters_map)
{
	struct df_counters c = {};

	if (fence_read_counters(bpf_map__fd(counters_map), &c) < 0)
		memset(&c, 0, sizeof(c));
	return c;
}

#endif
