/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Break-glass: every live fence on the host to audit at once, and back. */
#ifndef DEPFENCE_BREAKGLASS_H
#define DEPFENCE_BREAKGLASS_H

#include "config.h"
#include "fence.h"

/* dot files: never taken for a fence's state file (ids cannot start with '.') */
#define DF_BREAKGLASS_FILE ".break-glass.json"
#define DF_BREAKGLASS_HISTORY_MAX 256

/* 1 and the current period when break-glass is on, 0 when off. */
int df_breakglass_current(const struct df_host_config *hc, struct df_breakglass *ret);

/* The periods (past and current) overlapping [from, to]; caller frees *ret. */
int df_breakglass_periods(const struct df_host_config *hc, unsigned long long from,
			  unsigned long long to, struct df_breakglass **ret, size_t *ret_n);

int cmd_break_glass(int argc, char **argv);

#endif
