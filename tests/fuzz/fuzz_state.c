// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The OCI state on the hook's stdin (oci_state_parse), then the policy its
 * depfence.io/ annotations make (oci_policy_from_annotations), as
 * createRuntime reads them.
 */
#include "../../oci/state.h"
#include "fuzz_common.h"

DF_FUZZ_TARGET(state)
{
	char *buf;
	struct oci_state s = {};
	struct df_policy p;
	struct df_error e = {};
	int r;

	if (size > OCI_STATE_MAX)
		return 0;
	buf = df_fuzz_str(data, size);
	r = oci_state_parse(buf, &s, &e);
	free(buf);
	if (r < 0) {
		DF_FUZZ_ASSERT(r == -EINVAL || r == -E2BIG || r == -ERANGE, "parse returned %d", r);
		df_fuzz_check_msg(e.msg);
		return 0;
	}
	DF_FUZZ_ASSERT(s.id && safe_id(s.id) == 0, "unsafe id accepted");
	DF_FUZZ_ASSERT(s.pid >= 0, "pid %d", s.pid);
	DF_FUZZ_ASSERT(s.n_ann <= 64, "%zu annotations", s.n_ann);
	for (size_t i = 0; i < s.n_ann; i++) {
		DF_FUZZ_ASSERT(!strncmp(s.ann[i].key, DF_ANNOTATION_PREFIX,
					strlen(DF_ANNOTATION_PREFIX)),
			       "kept key %s", s.ann[i].key);
		DF_FUZZ_ASSERT(s.ann[i].value && strlen(s.ann[i].value) <= DF_ANNOTATION_VALUE_MAX,
			       "value of %s", s.ann[i].key);
		DF_FUZZ_ASSERT(!s.ann[i].scoped == !s.ann[i].orig, "scoped %s without its key",
			       s.ann[i].key);
	}
	df_policy_init(&p);
	r = oci_policy_from_annotations(s.ann, s.n_ann, &p, &e);
	if (r < 0) {
		DF_FUZZ_ASSERT(r == -EINVAL || r == -E2BIG || r == -ERANGE, "policy returned %d", r);
		df_fuzz_check_msg(e.msg);
	} else {
		DF_FUZZ_ASSERT(p.n_rules <= DF_ANNOTATION_RULES_MAX, "%zu rules", p.n_rules);
		DF_FUZZ_ASSERT(!p.label || strlen(p.label) <= DF_LABEL_MAX, "label");
		df_fuzz_policy_sane(&p);
	}
	df_policy_free(&p);
	oci_state_free(&s);
	return 0;
}
