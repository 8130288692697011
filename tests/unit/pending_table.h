/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The fence's pending-question table as user space sees it (see struct
 * df_pending_slot in bpf/fence.h): an array of slots, a slot holding a
 * question when its check is set. Shared by test_bpf_dns and fuzz_dns.
 */
#ifndef DEPFENCE_TESTS_PENDING_TABLE_H
#define DEPFENCE_TESTS_PENDING_TABLE_H

#include <stdint.h>
#include <string.h>

#include <bpf/bpf.h>

#include "../../bpf/fence.h"

#define PENDING_SLOTS (DF_PENDING_SETS * DF_PENDING_WAYS)

static inline void pending_clear(int fd)
{
	struct df_pending_slot empty = {};

	for (uint32_t i = 0; i < PENDING_SLOTS; i++)
		bpf_map_update_elem(fd, &i, &empty, BPF_ANY);
}

/* The slot index of the first question waiting at or after slot from (its slot in *ret), or -1. */
static inline int pending_next(int fd, uint32_t from, struct df_pending_slot *ret)
{
	for (uint32_t i = from; i < PENDING_SLOTS; i++)
		if (bpf_map_lookup_elem(fd, &i, ret) == 0 && ret->check)
			return (int)i;
	return -1;
}

static inline size_t pending_count(int fd)
{
	struct df_pending_slot sl;
	size_t n = 0;

	for (int i = pending_next(fd, 0, &sl); i >= 0; i = pending_next(fd, (uint32_t)i + 1, &sl))
		n++;
	return n;
}

/* The slot index holding the question keyed k (its val in *ret), or -1. */
static inline int pending_find(int fd, const struct df_pending_key *k, struct df_pending_val *ret)
{
	struct df_pending_slot sl;

	for (int i = pending_next(fd, 0, &sl); i >= 0; i = pending_next(fd, (uint32_t)i + 1, &sl))
		if (!memcmp(&sl.key, k, sizeof(*k))) {
			*ret = sl.val;
			return i;
		}
	return -1;
}

#endif
