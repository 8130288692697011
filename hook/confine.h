/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* seccomp: the hook confines itself; run confines the job against its fence. */
#ifndef DEPFENCE_CONFINE_H
#define DEPFENCE_CONFINE_H

/*
 * Allow only what the hook needs once its input is parsed (files, bpf(),
 * mounting bpffs, syslog); anything else fails with EPERM.
 */
int df_confine_self(void);

/*
 * For depfence run's job: refuse bpf(), perf_event_open() and the other
 * calls that could detach or blind its fence; everything else is allowed.
 */
int df_confine_job(void);

#endif
