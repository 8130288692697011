/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* What could let a job get around its fence. */
#ifndef DEPFENCE_OCI_INTEGRITY_H
#define DEPFENCE_OCI_INTEGRITY_H

#include "../hook/fence.h"

/* From an OCI runtime config.json document (the bundle's). */
int oci_integrity_from_config(const char *buf, struct df_integrity *ret, struct df_error *e);
/* From <bundle>/config.json. */
int oci_integrity_from_bundle(const char *bundle, struct df_integrity *ret, struct df_error *e);
/* The container's command line from <bundle>/config.json process.args, for the report. */
int oci_command_from_bundle(const char *bundle, char *buf, size_t len);
/* The same from a config.json document already read. */
int oci_command_from_config(const char *doc, char *buf, size_t len);
/* From this process, whose capabilities and namespaces depfence run's job inherits. */
int df_integrity_from_self(struct df_integrity *ret);

#endif
