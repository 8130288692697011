/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Verified program sets kept for the next fence (host config "fence_pool").
 *
 * Most of a fence's start is the kernel verifying its programs. A finished
 * fence's programs and maps, detached and emptied, wait under
 * <bpffs root>/@pool/ for the next fence that would load exactly the same
 * programs: same BPF object, same address rules (they are baked into the
 * programs' address filter and stay in the rules maps), same number of name
 * rules, same TCP reader, same map sizes, same attribution map. That fence
 * takes them (a rename), refills what is its own (the name rules under new
 * hash bases, the config) and attaches them: no verification.
 *
 * Which set fits is a keyed hash of all that (SipHash-2-4 under a per-boot
 * random key in the state dir), so whoever writes annotations cannot make
 * two policies look alike. A set is never taken for the cgroup it last
 * served (the socket marks of that cgroup's sockets are the old fence's).
 * Sets idle longer than attribution_linger are removed (gc, and every take
 * and park), as the attribution programs they use are.
 */
#ifndef DEPFENCE_POOL_H
#define DEPFENCE_POOL_H

#include <stddef.h>

#include "config.h"
#include "policy.h"

#define POOL_DIR "@pool"
#define POOL_LOCK ".pool.lock"
#define POOL_KEY ".pool.key"
#define POOL_SIG_LEN 33 /* 32 hex digits */
/* a fence with more records is removed, not emptied record by record */
#define POOL_MAX_RECORDS 4096
/*
 * The prefix of the pins a set is kept by, in a fence's pin directory too:
 * POOL_PIN "p_" and a program's pin name, POOL_PIN "m_" and a map's (bpffs
 * refuses names with a dot).
 */
#define POOL_PIN "pool_"
/*
 * Kept sets stay attached, by links pinned as POOL_PIN "l_" and a program's
 * pin name, to this cgroup under the cgroup2 root: empty and frozen, so
 * nothing runs in it to make a socket they would judge. The kernel turns on
 * a static key (patching its text on every CPU) when the first program of a
 * kind attaches anywhere and off when the last goes: held there, a host's
 * only fence neither pays that at its start nor at its end.
 */
#define POOL_HOLD "depfence.pool"

/* What decides the programs a fence loads and the maps they are bound to. */
struct pool_inputs {
	const char *obj_id; /* the BPF object's two builds (fence_obj.h): their SHA-256 */
	const struct df_compiled *c4, *c6;
	size_t n_names; /* name rules: the name_rules map's size, name_rules_on */
	int tcp_reader;
	int skb_task_helpers; /* the kernel's answer to fence_probe_skb_task_helpers() */
	unsigned int max_records;
	unsigned int procs_map_id; /* the host-wide attribution map the programs use, 0: none */
};

/* Is the pool on in this config? */
int pool_enabled(const struct df_host_config *hc);

/* The set's signature, 32 hex digits; 0 or -errno (the key could not be read or made). */
int pool_sig(const struct df_host_config *hc, const struct pool_inputs *in,
	     char ret[POOL_SIG_LEN]);

/*
 * Move a kept set of this signature, last used on another cgroup than
 * cgroup_id, to dir (which must not exist). 1 taken, 0 none, -errno.
 */
int pool_take(const struct df_host_config *hc, const char *sig, unsigned long long cgroup_id,
	      const char *dir);

/*
 * Park the fence at dir (open as dfd), under the pool's lock: when the pool has room and
 * dir holds a whole set, detach() (the caller unpins the fence's links), move
 * dir into the pool, after_move() (the caller removes the state file: from
 * then on nothing names the fence), empty the fence's maps and drop every pin
 * but the POOL_PIN ones. 1: the fence is gone (its set kept, or unloaded
 * should emptying it fail); 0: nothing done (the pool is full, or the set is
 * not whole); -errno: after_move failed (*ret_moved set: dir is gone), or
 * detach or the move did (dir is still there).
 */
int pool_park(const struct df_host_config *hc, const char *dir, int dfd, const char *sig,
	      unsigned long long cgroup_id, int (*detach)(void *arg),
	      int (*after_move)(void *arg), void *arg, int *ret_moved);

/* The hold cgroup, made (empty, frozen) when missing: an open fd, or -errno. */
int pool_hold_cgroup(void);

/* Unpin the hold links in the directory dfd (the set's links to the hold cgroup). */
int pool_unhold(int dfd);

/* Sets kept now (depfence status), -errno. */
int pool_count(const struct df_host_config *hc);

/* Remove idle sets (all with all != 0) and leftovers of killed parks. Count removed, -errno. */
int pool_gc(const struct df_host_config *hc, int all);

#endif
