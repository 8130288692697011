/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* cgroup v2 discovery: where the hierarchy is mounted, which cgroup a process is in. */
#ifndef DEPFENCE_CGROUP_H
#define DEPFENCE_CGROUP_H

#include <limits.h>
#include <stdio.h>

/* The cgroup2 mount point from a mountinfo stream (hybrid hosts: /sys/fs/cgroup/unified). */
int cg2_mount_from(FILE *mountinfo, char *ret, size_t len);
int cg2_mount(char *ret, size_t len);

/* The v2 path ("0::/a/b") of pid, relative to the hierarchy root, from a /proc/<pid>/cgroup stream. */
int cg2_path_from(FILE *f, char *ret, size_t len);
int cg2_path_of(int pid, char *ret, size_t len);

/* Absolute directory of pid's cgroup; refuses the root cgroup. */
int cg2_dir_of(int pid, char *ret, size_t len);

/* Every process in the cgroup at dir is pid itself (or dir is empty). */
int cg2_only_pid(const char *dir, int pid, int *ret_other);

/* 1 when a process is in the cgroup at dir or in one below it (cgroup.events), 0 not, -errno */
int cg2_populated(const char *dir);
/* The cgroup2 mount has nsdelegate: cgroup namespaces are delegation boundaries. */
int cg2_nsdelegate(void);
/*
 * End every process in the cgroup at dir and in the cgroups below it
 * (cgroup.kill, or on kernels without it SIGKILL by pid in each of at most
 * 4096 cgroups 32 deep), until cgroup.events says it is not populated;
 * bounded (2 s). -EBUSY when processes are left.
 */
int cg2_kill_all(const char *dir);
/*
 * Remove the (emptied) cgroup at dir and the cgroups below it, deepest
 * first, retrying rmdir for up to 5 s while it says EBUSY; -E2BIG for a tree
 * past the bounds above.
 */
int cg2_remove_tree(const char *dir);
/*
 * Might a process in the cgroup at dir hold an IPv4 or IPv6 stream socket
 * (TCP, MPTCP, SCTP)? 0 when not: no fd table of its processes' threads
 * holds a socket of those protocols (by the name sockfs gives each socket),
 * it has no child cgroups, and its processes stayed the same while they were
 * looked at. 1 when one does, or when that cannot be ruled
 * out (too many processes, one that ended meanwhile, any error).
 */
int cg2_may_hold_inet_stream(const char *dir);

#endif
