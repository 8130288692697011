/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Subcommand handlers and what they share. */
#ifndef DEPFENCE_CLI_H
#define DEPFENCE_CLI_H

#include "config.h"
#include "fence.h"

/* Exit codes (documented in README.md and --help). */
#define DF_EXIT_OK 0
#define DF_EXIT_ERROR 1
#define DF_EXIT_USAGE 2
#define DF_EXIT_VIOLATIONS 3 /* depfence report --fail-on: matching events found */

#ifndef DF_VERSION
#define DF_VERSION "0.1.0"
#endif

int cmd_hook(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_doctor(int argc, char **argv);

/*
 * Read what the fence recorded, write the report to report_path (NULL: the
 * report dir), log the summary, then remove pins and state. Records stay
 * pinned when the report cannot be written. 0 when there was no fence;
 * -EUCLEAN when the report was written and everything removed, but map pins
 * were gone before it (the report names them in records_lost).
 */
int fence_finish(const struct df_host_config *hc, const char *id, const char *report_path,
		 struct fence_data *ret_data);

/*
 * poststop: fence_finish for the container of bundle. A fence of the same id
 * whose state file names another bundle belongs to another container (ids
 * are unique per runtime root only: two runc --root dirs, two containerd
 * namespaces): it is left alone, said so, and 0 returned. A state file
 * without a bundle (run, or an older depfence) or a bundle of NULL: not compared.
 */
int fence_finish_container(const struct df_host_config *hc, const char *id, const char *bundle);

void df_libbpf_logging(void);

#endif
