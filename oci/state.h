/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* The OCI state a runtime hands a hook on stdin, and the annotations in it. */
#ifndef DEPFENCE_OCI_STATE_H
#define DEPFENCE_OCI_STATE_H

#include <stddef.h>

#include "../hook/policy.h"
#include "../hook/util.h"

#define OCI_STATE_MAX (1024 * 1024)
#define OCI_CONFIG_MAX (8 * 1024 * 1024)
#define DF_ANNOTATION_PREFIX "depfence.io/"
#define DF_ANNOTATION_VALUE_MAX (64 * 1024)
#define DF_ANNOTATION_RULES_MAX 4096
#define DF_LABEL_MAX 1024

struct oci_annotation {
	char *key; /* depfence.io/KEY, also for container-scoped ones */
	char *value;
	int scoped; /* from <container-name>.depfence.io/KEY: wins over the pod's */
	char *orig; /* the key as written, for messages and the report; NULL: key */
};

/* The container's name, as CRI-O and containerd annotate it. */
#define OCI_K8S_CONTAINER_NAME "io.kubernetes.container.name"
#define OCI_CRI_CONTAINER_NAME "io.kubernetes.cri.container-name"

struct oci_state {
	char *id;
	char *bundle;
	char *status;
	int pid; /* 0 when absent */
	struct oci_annotation *ann; /* depfence.io/ keys only */
	size_t n_ann;
	int has_annotations; /* the state carried an annotations object */
};

void oci_state_free(struct oci_state *s);

/* Parse the state JSON. Annotations outside depfence.io/ are not kept. */
int oci_state_parse(const char *buf, struct oci_state *ret, struct df_error *e);

/* Take the depfence.io/ annotations from <bundle>/config.json (runtimes that leave them out of the state). */
int oci_config_annotations(struct oci_state *s, struct df_error *e);
/* The same from a config.json document already read. */
int oci_config_annotations_parse(const char *buf, struct oci_state *s, struct df_error *e);

/* Build a policy from depfence.io/ annotations. */
int oci_policy_from_annotations(const struct oci_annotation *ann, size_t n, struct df_policy *p,
				struct df_error *e);

#endif
