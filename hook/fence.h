/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* A fence: programs attached to one cgroup, links and maps pinned, a state file. */
#ifndef DEPFENCE_FENCE_H
#define DEPFENCE_FENCE_H

#include "../bpf/fence.h"
#include "attrib.h"
#include "config.h"
#include "policy.h"

#define DF_KIND_HOOK "hook"
#define DF_KIND_RUN "run"

/*
 * What could let the job get around its fence, found at attach time: from
 * the bundle's config.json for a container, from depfence's own process for
 * run (the job inherits it).
 */
struct df_integrity {
	int checked;
	char source[32]; /* "config.json", "process" */
	int cap_net_raw; /* raw and packet sockets skip connect/sendmsg */
	int cap_net_admin; /* can change routes, netns devices, nftables */
	int cap_sys_admin; /* can detach programs, move cgroups, setns */
	int cap_bpf; /* can detach or blind the programs */
	int host_network; /* shares the host's network namespace */
	int host_pid; /* shares the host's pid namespace */
	int writable_cgroupfs; /* can move itself out of its cgroup */
	int unconfined; /* run --no-confine: bpf() and cgroup moves left to the job */
	int foreign_sockets; /* may use sockets made outside the fence (inherited, SCM_RIGHTS) */
};

/* What the state file keeps between attach and report. */
struct fence_state {
	char id[130];
	char kind[8];
	char cgroup[PATH_MAX];
	char command[1024]; /* run: the job's command line */
	/*
	 * hook: the OCI state's bundle path at createRuntime. Container ids are
	 * unique per runtime root only: poststop finishes the fence only for the
	 * same bundle. "" for run, and in state files written before it was kept.
	 */
	char bundle[PATH_MAX];
	unsigned long long started_ns; /* CLOCK_REALTIME */
	struct df_policy policy;
	struct df_integrity integrity;
	struct attrib_ref attrib; /* process attribution: this fence's slot (fence_start sets it) */
	/*
	 * Set in the state file once all six links are pinned: a fence whose link
	 * pins are missing then was unpinned after it held (reported, not whole),
	 * not killed while attaching (removed without a report).
	 */
	int attached;
	/*
	 * The pool (pool.h): the signature of the fence's verified programs, ""
	 * when they are not to be kept, and the id of the cgroup they served.
	 */
	char pool_sig[33];
	unsigned long long cgroup_id;
	/*
	 * fence_start only, not in the state file: the cgroup was made empty for
	 * this fence and nothing enters it before fence_start returns (run), so
	 * every socket of it is made under the fence (DF_CFG_FRESH).
	 */
	int fresh;
};

struct fence_record {
	struct df_rec_key k;
	struct df_rec_val v;
	char name[DF_DNS_NAME_MAX]; /* "" when the name is not known */
};

/* A break-glass period: every fence on the host in audit. */
struct df_breakglass {
	char reason[DF_BREAKGLASS_REASON_MAX + 1];
	unsigned long long from_ns, to_ns; /* to_ns 0: still on */
};

struct fence_data {
	struct df_counters counters;
	struct df_breakglass *breakglass; /* periods overlapping the fence's life */
	size_t n_breakglass;
	struct fence_record *recs;
	size_t n_recs;
	unsigned long long stopped_ns;
	struct attrib_data attrib; /* the images the records name (attrib_collect) */
	/* pins gone before the report ("links", "counters", "records"): it cannot be whole */
	const char *lost[3];
	size_t n_lost;
};

void fence_state_free(struct fence_state *s);
void fence_data_free(struct fence_data *d);

/* 1 when cgroup_skb programs may ask for the current task (kernel 6.18+). */
int fence_probe_skb_task_helpers(void);
/* 1 when the kernel has bpf_loop, so a fence loads the bpf_loop build of its programs (fence_obj.h). */
int fence_probe_bpf_loop(void);

/* Load the fence's programs and drop them: the verifier takes them on this kernel. */
int fence_probe_load(struct df_error *e);

/*
 * The deepest existing directory of root into ret_dir; 1 when it is on bpffs,
 * 0 when not (fence_ensure_bpffs mounts /sys/fs/bpf then, and only that).
 */
int fence_bpffs_where(const char *root, char *ret_dir, size_t len, struct df_error *e);

/* Make sure the bpffs that holds root is mounted (mounting /sys/fs/bpf if needed). */
int fence_ensure_bpffs(const char *root, struct df_error *e);

/* The attach line (id, label, cgroup, mode, default, rule count, break-glass), through log. */
void fence_log_attached(void (*log)(const char *fmt, ...), const struct fence_state *st,
			const char *cg);

/*
 * Write <state_dir>/<id>.json, then load, fill, attach to the cgroup at cgdir
 * and pin under <bpffs_root>/<id>/. On failure nothing is left attached or
 * pinned; when killed, the state file leads poststop, gc or the next
 * fence_start of the id to what is left. What a killed fence_start of the same
 * id left is removed first; a whole earlier fence of the id that is detached,
 * or attached to this same cgroup, is finished (reported) first; one attached
 * to another cgroup is refused.
 */
int fence_start(const struct df_host_config *hc, const struct fence_state *st,
		struct df_error *e);

/* 1 and the state when the fence exists, 0 when there is nothing (already stopped). */
int fence_load_state(const struct df_host_config *hc, const char *id, struct fence_state *ret,
		     struct df_error *e);

/*
 * A fence's counters map (fd), summed over the CPUs; a map of a fence made
 * before they were per CPU holds one value. 0, or -errno.
 */
int fence_read_counters(int fd, struct df_counters *ret);

/* Read counters and records from the pins without changing them. */
int fence_collect(const struct df_host_config *hc, const char *id, struct fence_data *ret,
		  struct df_error *e);

/* Remove pins (detaching the programs) and the state file. */
int fence_remove(const struct df_host_config *hc, const char *id);
/* the state file alone (fence_remove does pins and state) */
int fence_remove_state(const struct df_host_config *hc, const char *id);
/*
 * The end of a finished fence (its report written): with keep, its verified
 * programs go to the pool when they are to be kept and it takes them, else
 * everything is removed as fence_remove does. 0 or -errno.
 */
int fence_retire(const struct df_host_config *hc, const struct fence_state *st, int keep);

/*
 * Did the fence id hold? attached: its state file says fence_start finished.
 * FENCE_WHOLE: all six link pins are there; FENCE_NEVER_HELD: not, and
 * fence_start never finished (a hook killed while attaching: remove it, no
 * report); FENCE_LINKS_LOST: not, but it was attached (someone unpinned its
 * links since: report it, as not whole). <0 on errors.
 */
enum { FENCE_NEVER_HELD, FENCE_WHOLE, FENCE_LINKS_LOST };
int fence_held(const struct df_host_config *hc, const char *id, int attached);

/*
 * Remove a fence that never held (fence_start did not finish: killed, or a
 * crash): release its attribution slot, remove its pins and state, and the
 * host-wide attribution programs when no fence is left. Nothing is reported.
 */
int fence_discard(const struct df_host_config *hc, const char *id);

/* Serialize the state file JSON / parse it back. */
int fence_state_to_json(const struct fence_state *st, char **ret, size_t *ret_len);
int fence_state_from_json(const char *buf, struct fence_state *ret, struct df_error *e);

/* fence_finish (cli.h) for a caller that holds the id's lock (fence_lock). */
int fence_finish_locked(const struct df_host_config *hc, const char *id, const char *report_path,
			struct fence_data *ret_data);
/*
 * One fence id at a time: createRuntime, poststop and gc of the same id wait
 * for each other. An OFD lock on a byte (by hash of the id) of
 * state_dir/FENCE_LOCKS; returns its fd, or -errno.
 */
#define FENCE_LOCKS ".fences.lock"
int fence_lock(const struct df_host_config *hc, const char *id);
/* the same, waiting wait_ms at most (-ETIMEDOUT) */
int fence_lock_wait(const struct df_host_config *hc, const char *id, int wait_ms);

#endif
