// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A profile is a JSON object in the admin's profiles dir:
 *
 *   { "description": "no dependency on github.com",
 *     "deny": ["github.com", "**.github.com", "140.82.112.0/20"],
 *     "allow": [] }
 */
#include <dirent.h>
#include <fcntl.h>

#include "../oci/json.h"
#include "profiles.h"

static int add_rules(struct df_policy *p, yajl_val arr, uint8_t verdict, const char *src,
		     const char *file, const char *key, struct df_error *e)
{
	for (size_t i = 0; i < json_array_len(arr); i++) {
		const char *rule = json_string(json_array_at(arr, i));
		int r;

		if (!rule)
			return df_fail(e, -EINVAL, "profile %s: key \"%s\": element %zu is not a string",
				       file, key, i);
		r = df_policy_add_list(p, rule, verdict, src, DF_PROFILE_RULES_MAX, e);
		if (r < 0) {
			char inner[DF_ERRBUF];

			snprintf(inner, sizeof(inner), "%s", e ? e->msg : "");
			return df_fail(e, r, "%s (in %s, key \"%s\")", inner, file, key);
		}
	}
	return 0;
}

static int apply_one(int dfd, const char *dir, const char *fname, const char *name,
		     struct df_policy *p, struct df_error *e)
{
	_cleanup_free_ char *buf = NULL;
	char what[PATH_MAX];
	int r;

	snprintf(what, sizeof(what), "%s/%s", dir, fname);
	r = read_file_capped(dfd, fname, DF_PROFILE_MAX_SIZE, &buf, NULL);
	if (r < 0)
		return df_fail(e, r, "profile %s: %s", what, strerror(-r));
	return df_profile_parse(buf, what, name, p, e);
}

int df_profile_parse(const char *buf, const char *what, const char *name, struct df_policy *p,
		     struct df_error *e)
{
	_cleanup_yajl_ yajl_val root = NULL;
	yajl_val deny = NULL, allow = NULL;
	char src[96];
	int r;

	r = json_parse(buf, what, &root, e);
	if (r < 0)
		return r;
	if (!json_is_object(root))
		return df_fail(e, -EINVAL, "profile %s: expected a JSON object", what);
	for (size_t i = 0; i < json_object_len(root); i++) {
		const char *k = json_object_key(root, i);

		if (strcmp(k, "description") && strcmp(k, "deny") && strcmp(k, "allow"))
			return df_fail(e, -EINVAL,
				       "profile %s: unknown key \"%s\" (known: description, deny, allow)",
				       what, k);
	}
	if ((r = json_get_array(root, "deny", &deny, e)) < 0 && r != -ENOENT)
		return df_fail(e, r, "profile %s: key \"deny\": expected an array of rules", what);
	if ((r = json_get_array(root, "allow", &allow, e)) < 0 && r != -ENOENT)
		return df_fail(e, r, "profile %s: key \"allow\": expected an array of rules", what);
	snprintf(src, sizeof(src), "profile %s", name);
	r = add_rules(p, deny, DF_DENY, src, what, "deny", e);
	if (r < 0)
		return r;
	return add_rules(p, allow, DF_ALLOW, src, what, "allow", e);
}

int df_profiles_apply(const char *dir, struct df_policy *p, struct df_error *e)
{
	for (size_t i = 0; i < p->n_profiles; i++) {
		const char *name = p->profiles[i];
		size_t nlen = strlen(name);
		struct dirent *de;
		DIR *d;
		int r = -ENOENT;

		d = opendir(dir);
		if (!d)
			return df_fail(e, -errno, "profile \"%s\": profiles dir %s: %s", name, dir,
				       strerror(errno));
		while ((de = readdir(d))) {
			size_t l = strlen(de->d_name);

			if (l != nlen + 5 || strncmp(de->d_name, name, nlen) ||
			    strcmp(de->d_name + nlen, ".json"))
				continue;
			r = apply_one(dirfd(d), dir, de->d_name, name, p, e);
			break;
		}
		closedir(d);
		if (r == -ENOENT && !de)
			return df_fail(e, -ENOENT, "profile \"%s\": no %s.json in %s", name, name, dir);
		if (r < 0)
			return r;
	}
	return 0;
}
