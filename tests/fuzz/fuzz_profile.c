// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* A host profile document, <profiles_dir>/NAME.json (df_profile_parse). */
#include "../../hook/profiles.h"
#include "fuzz_common.h"

DF_FUZZ_TARGET(profile)
{
	struct df_policy p;
	struct df_error e = {};
	char *buf;
	int r;

	if (size > DF_PROFILE_MAX_SIZE)
		return 0;
	buf = df_fuzz_str(data, size);
	df_policy_init(&p);
	r = df_profile_parse(buf, "/etc/depfence/profiles/fuzz.json", "fuzz", &p, &e);
	free(buf);
	if (r < 0)
		df_fuzz_check_msg(e.msg);
	else
		df_fuzz_policy_sane(&p);
	df_policy_free(&p);
	return 0;
}
