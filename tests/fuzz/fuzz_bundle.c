// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The bundle's config.json, read three ways: the integrity section
 * (oci_integrity_from_config), the command line for the report
 * (oci_command_from_config) and the annotations runtimes leave out of the
 * state (oci_config_annotations_parse), then the policy they make.
 */
#include "../../oci/integrity.h"
#include "../../oci/state.h"
#include "fuzz_common.h"

DF_FUZZ_TARGET(bundle)
{
	struct oci_state s = {};
	struct df_integrity in;
	struct df_policy p;
	struct df_error e = {};
	char cmd[sizeof(((struct fence_state *)0)->command)], *buf;
	int r;

	if (size > OCI_CONFIG_MAX)
		return 0;
	buf = df_fuzz_str(data, size);
	memset(&in, 0xa5, sizeof(in));
	r = oci_integrity_from_config(buf, &in, &e);
	if (r < 0) {
		df_fuzz_check_msg(e.msg);
	} else {
		DF_FUZZ_ASSERT(in.checked == 1, "integrity not marked checked");
		DF_FUZZ_ASSERT(in.cap_net_raw <= 1 && in.cap_sys_admin <= 1 && in.host_network <= 1 &&
				       in.writable_cgroupfs <= 1,
			       "flags not 0 or 1");
	}

	memset(cmd, 'x', sizeof(cmd));
	r = oci_command_from_config(buf, cmd, sizeof(cmd));
	if (r == 0 || r == -ENOENT) {
		DF_FUZZ_ASSERT(memchr(cmd, '\0', sizeof(cmd)), "command not terminated");
		for (const char *c = cmd; *c; c++)
			DF_FUZZ_ASSERT((unsigned char)*c >= 0x20, "control byte %#x in the command",
				       (unsigned char)*c);
	}

	r = oci_config_annotations_parse(buf, &s, &e);
	if (r == 0) {
		df_policy_init(&p);
		if (oci_policy_from_annotations(s.ann, s.n_ann, &p, &e) == 0)
			df_fuzz_policy_sane(&p);
		df_policy_free(&p);
	}
	oci_state_free(&s);
	free(buf);
	return 0;
}
