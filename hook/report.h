/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The report: depfence.report/v1 JSON, written atomically. */
#ifndef DEPFENCE_REPORT_H
#define DEPFENCE_REPORT_H

#include "fence.h"

#define DF_REPORT_SCHEMA "depfence.report/v1"

/* Build the report JSON. */
int report_build(const struct fence_state *st, const struct fence_data *d, char **ret,
		 size_t *ret_len);

/* Write it to path (temp file, fsync, rename), mode 0640. */
int report_write(const char *path, const char *json, size_t len, struct df_error *e);

/* One line for stderr and syslog. */
void report_summary_line(const struct fence_state *st, const struct fence_data *d,
			 const char *path, char *buf, size_t len);

#endif
