/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Process attribution (bpf/attrib.bpf.c): the host-wide programs, a fence's
 * share of them, and the images a report names.
 *
 * The programs and their maps are loaded by the first fence of a host and
 * pinned under <bpffs root>/@attrib/ (no container id has an @, and bpffs
 * refuses names with a dot);
 * every fence claims a slot there and registers its cgroup; the last fence
 * to end removes them. A lock file in the state dir orders these steps
 * between depfence processes.
 */
#ifndef DEPFENCE_ATTRIB_H
#define DEPFENCE_ATTRIB_H

#include "../bpf/attrib.h"
#include "../oci/json.h"
#include "config.h"

#define DF_ATTRIB_DIR "@attrib"
#define DF_ATTRIB_LOCK ".attrib.lock"
/* Sub-cgroups registered at attach: how deep and how many. */
#define DF_ATTRIB_CG_DEPTH 16
/* Bytes of an ancestor's cmdline shown in the ancestry. */
#define DF_ATTRIB_SHORT_CMDLINE 80

/* A fence's share, kept in the state file. gen 0: no attribution, error says why. */
struct attrib_ref {
	__u32 slot;
	__u32 gen;
	char error[200];
};

struct attrib_image {
	struct df_image_key key;
	struct df_image img;
};

/* What a report needs: the images records name and their ancestors, and the fence's counters. */
struct attrib_data {
	int available;
	char error[200]; /* why not, when !available */
	struct df_slot slot;
	struct attrib_image *imgs; /* sorted by key */
	size_t n;
	size_t missing; /* images named by records or as parents that were not found */
};

struct fence_data;
struct fence_record;

/*
 * Load the programs (once per host) or open the pinned ones, claim a slot
 * and register the cgroup at cgdir and the cgroups under it. before_claim
 * (may be NULL) is called with the slot chosen, before it is taken, so that
 * a process killed after the claim has already written down what to release.
 * ret_procs_fd is the procs map, for bpf_map__reuse_fd() in the fence
 * object; the caller closes it. On failure nothing of this fence is left
 * registered.
 */
int attrib_attach(const struct df_host_config *hc, const char *cgdir,
		  int (*before_claim)(const struct attrib_ref *ref, void *arg), void *arg,
		  struct attrib_ref *ret, int *ret_procs_fd, struct df_error *e);

/*
 * Remove the pinned programs when no fence holds a slot, or when the set is
 * partial (a first fence killed while pinning it). 1 removed, 0 in use or
 * none, < 0 error.
 */
int attrib_gc(const struct df_host_config *hc);

/*
 * Forget the fence's cgroups, images and processes and free its slot; the
 * last fence removes the pinned programs. Nothing to do is not an error.
 */
int attrib_detach(const struct df_host_config *hc, const struct attrib_ref *ref);

/* Read the images d's records name, with their ancestors, into d->attrib. */
int attrib_collect(const struct df_host_config *hc, const struct attrib_ref *ref,
		   struct fence_data *d);

void attrib_data_free(struct attrib_data *a);

const struct df_image *attrib_find(const struct attrib_data *a, __u32 tgid, __u64 id);

/*
 * argv as one line: arguments separated by spaces, quoted the way a shell
 * would need them, control characters and invalid UTF-8 as '?'. At most max
 * bytes of argv are shown (0: all); a cut is marked with "…". Returns the
 * length written.
 */
size_t attrib_format_args(const struct df_image *img, size_t max, char *buf, size_t len);

/*
 * The attribution keys of an event's "process" object, inside the open map:
 * exe, cmdline, truncated, started_at, forked, ppid, reparented, ancestry,
 * ancestry_complete, chain.
 */
void attrib_gen_process(yajl_gen g, const struct attrib_data *a, const struct fence_record *rec,
			int *r);

/* The report's notes about attribution: unavailable, or what the bounds lost. */
int attrib_gen_notes(yajl_gen g, const struct attrib_data *a);

/* Refused events shown in the summary line, with their chains. */
#define DF_ATTRIB_SUMMARY_EVENTS 3

/* Append "; blocked 203.0.113.10:443 by deploy.sh → curl, ..." to the summary line in buf. */
void attrib_summary_refused(const struct fence_data *d, char *buf, size_t len);

/* "deploy.sh → servicectl → curl" for a record (the comm alone when nothing is known). */
void attrib_chain_text(const struct attrib_data *a, const struct fence_record *rec, char *buf,
		       size_t len);

/* State file: the "attrib" object, written and read back. */
int attrib_ref_to_json(yajl_gen g, const struct attrib_ref *ref);
void attrib_ref_from_json(yajl_val root, struct attrib_ref *ret);

#endif
