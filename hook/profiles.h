/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/* Host profiles: named rule sets the admin keeps in the profiles dir. */
#ifndef DEPFENCE_PROFILES_H
#define DEPFENCE_PROFILES_H

#include "policy.h"

#define DF_PROFILE_MAX_SIZE (4 * 1024 * 1024)
#define DF_PROFILE_RULES_MAX 100000

/*
 * Add the rules of every profile p->profiles names, from <dir>/<name>.json.
 * The file is found among the directory's entries, never by building a
 * path from the name a pod spec wrote.
 */
int df_profiles_apply(const char *dir, struct df_policy *p, struct df_error *e);
/* One profile document; what names the file in errors, name the profile in rule sources. */
int df_profile_parse(const char *buf, const char *what, const char *name, struct df_policy *p,
		     struct df_error *e);

#endif
