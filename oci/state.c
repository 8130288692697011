// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <fcntl.h>
#include <limits.h>

#include "json.h"
#include "state.h"

void oci_state_free(struct oci_state *s)
{
	free(s->id);
	free(s->bundle);
	free(s->status);
	for (size_t i = 0; i < s->n_ann; i++) {
		free(s->ann[i].key);
		free(s->ann[i].value);
		free(s->ann[i].orig);
	}
	free(s->ann);
	memset(s, 0, sizeof(*s));
}

/*
 * The key as depfence reads it: "depfence.io/KEY" as is, and
 * "<name>.depfence.io/KEY" as "depfence.io/KEY" scoped to the container
 * called name. NULL for every other key, and for other containers' keys.
 */
static const char *our_key(const char *k, const char *container, int *ret_scoped)
{
	const size_t plen = strlen(DF_ANNOTATION_PREFIX);
	const char *at;
	size_t clen;

	*ret_scoped = 0;
	if (!strncmp(k, DF_ANNOTATION_PREFIX, plen))
		return k;
	at = strstr(k, "." DF_ANNOTATION_PREFIX);
	if (!at || !container)
		return NULL;
	clen = strlen(container);
	if ((size_t)(at - k) != clen || strncmp(k, container, clen))
		return NULL;
	*ret_scoped = 1;
	return at + 1;
}

static int take_annotations(yajl_val obj, struct oci_state *s, const char *where,
			    struct df_error *e)
{
	size_t n = json_object_len(obj), kept = 0;
	const char *container = json_string(json_get(obj, OCI_K8S_CONTAINER_NAME));
	int scoped;

	if (!container)
		container = json_string(json_get(obj, OCI_CRI_CONTAINER_NAME));
	for (size_t i = 0; i < n; i++)
		kept += our_key(json_object_key(obj, i), container, &scoped) != NULL;
	if (kept > 64)
		return df_fail(e, -E2BIG, "%s: more than 64 depfence.io/ annotations", where);
	s->ann = calloc(kept ? kept : 1, sizeof(*s->ann));
	if (!s->ann)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *k = json_object_key(obj, i);
		const char *v = json_string(json_object_value(obj, i));
		const char *ours = our_key(k, container, &scoped);

		if (!ours)
			continue;
		if (!v)
			return df_fail(e, -EINVAL, "%s: annotation \"%s\": value must be a string",
				       where, k);
		if (strlen(v) > DF_ANNOTATION_VALUE_MAX)
			return df_fail(e, -E2BIG, "annotation \"%s\": value is longer than %d bytes",
				       k, DF_ANNOTATION_VALUE_MAX);
		s->ann[s->n_ann].key = strdup(ours);
		s->ann[s->n_ann].value = strdup(v);
		s->ann[s->n_ann].scoped = scoped;
		s->ann[s->n_ann].orig = scoped ? strdup(k) : NULL;
		if (!s->ann[s->n_ann].key || !s->ann[s->n_ann].value ||
		    (scoped && !s->ann[s->n_ann].orig)) {
			free(s->ann[s->n_ann].key);
			free(s->ann[s->n_ann].value);
			free(s->ann[s->n_ann].orig);
			return -ENOMEM;
		}
		s->n_ann++;
	}
	return 0;
}

int oci_state_parse(const char *buf, struct oci_state *ret, struct df_error *e)
{
	_cleanup_yajl_ yajl_val root = NULL;
	struct oci_state s = {};
	const char *str;
	yajl_val ann;
	long long pid = 0;
	int r;

	r = json_parse(buf, "container state", &root, e);
	if (r < 0)
		return r;
	if (!json_is_object(root))
		return df_fail(e, -EINVAL, "container state: expected a JSON object");

	r = json_get_string(root, "id", &str, e);
	if (r == -ENOENT)
		return df_fail(e, -EINVAL, "container state: key \"id\" is missing");
	if (r < 0)
		goto fail_ctx;
	if (safe_id(str) < 0) {
		r = df_fail(e, -EINVAL,
			    "container state: key \"id\": \"%.80s\" is not a safe container id (1-128 of A-Z a-z 0-9 . _ -, not starting with '.')",
			    str);
		goto fail;
	}
	s.id = strdup(str);
	if (!s.id) {
		r = -ENOMEM;
		goto fail;
	}

	r = json_get_int(root, "pid", &pid, e);
	if (r < 0 && r != -ENOENT)
		goto fail_ctx;
	if (pid < 0 || pid > INT_MAX) {
		r = df_fail(e, -ERANGE, "container state: key \"pid\": %lld is out of range", pid);
		goto fail;
	}
	s.pid = (int)pid;

	r = json_get_string(root, "bundle", &str, e);
	if (r < 0 && r != -ENOENT)
		goto fail_ctx;
	if (r == 0) {
		s.bundle = strdup(str);
		if (!s.bundle) {
			r = -ENOMEM;
			goto fail;
		}
	}
	r = json_get_string(root, "status", &str, e);
	if (r < 0 && r != -ENOENT)
		goto fail_ctx;
	if (r == 0) {
		s.status = strdup(str);
		if (!s.status) {
			r = -ENOMEM;
			goto fail;
		}
	}

	r = json_get_object(root, "annotations", &ann, e);
	if (r < 0 && r != -ENOENT)
		goto fail_ctx;
	if (r == 0) {
		s.has_annotations = 1;
		r = take_annotations(ann, &s, "container state", e);
		if (r < 0)
			goto fail;
	}
	*ret = s;
	return 0;

fail_ctx:
	if (e) {
		char inner[DF_ERRBUF];

		snprintf(inner, sizeof(inner), "%s", e->msg);
		df_fail(e, r, "container state: %s", inner);
	}
fail:
	oci_state_free(&s);
	return r;
}

int oci_config_annotations_parse(const char *buf, struct oci_state *s, struct df_error *e)
{
	_cleanup_yajl_ yajl_val root = NULL;
	yajl_val ann;
	int r;

	r = json_parse(buf, "bundle config.json", &root, e);
	if (r < 0)
		return r;
	r = json_get_object(root, "annotations", &ann, e);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	for (size_t i = 0; i < s->n_ann; i++) {
		free(s->ann[i].key);
		free(s->ann[i].value);
		free(s->ann[i].orig);
	}
	free(s->ann);
	s->ann = NULL;
	s->n_ann = 0;
	return take_annotations(ann, s, "bundle config.json", e);
}

int oci_config_annotations(struct oci_state *s, struct df_error *e)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_close_ int dfd = -1;
	int r;

	if (!s->bundle || s->bundle[0] != '/')
		return df_fail(e, -EINVAL,
			       "container state: key \"bundle\" is missing or not absolute, and the state has no annotations");
	dfd = open(s->bundle, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return df_fail(e, -errno, "open bundle %s: %s", s->bundle, strerror(errno));
	r = read_file_capped(dfd, "config.json", OCI_CONFIG_MAX, &buf, NULL);
	if (r == -E2BIG)
		return df_fail(e, r, "%s/config.json: larger than %d bytes", s->bundle,
			       OCI_CONFIG_MAX);
	if (r < 0)
		return df_fail(e, r, "read %s/config.json: %s", s->bundle, strerror(-r));
	return oci_config_annotations_parse(buf, s, e);
}

static int valid_label(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

/* "annotation KEY": who set a policy setting, for the admin's checks */
static int set_source(char **dst, const char *key)
{
	free(*dst);
	return asprintf(dst, "annotation %s", key) < 0 ? (*dst = NULL, -ENOMEM) : 0;
}

/* Is there a container-scoped annotation for this key? Then the pod's does not count. */
static int overridden(const struct oci_annotation *ann, size_t n, size_t i)
{
	if (ann[i].scoped)
		return 0;
	for (size_t j = 0; j < n; j++)
		if (ann[j].scoped && !strcmp(ann[j].key, ann[i].key))
			return 1;
	return 0;
}

int oci_policy_from_annotations(const struct oci_annotation *ann, size_t n, struct df_policy *p,
				struct df_error *e)
{
	const size_t plen = strlen(DF_ANNOTATION_PREFIX);
	size_t rules = 0;
	int r;

	for (size_t i = 0; i < n; i++) {
		const char *key = ann[i].orig ? ann[i].orig : ann[i].key, *v = ann[i].value;
		const char *k = ann[i].key + plen;

		if (strncmp(ann[i].key, DF_ANNOTATION_PREFIX, plen) || overridden(ann, n, i))
			continue;
		if (!strcmp(k, "mode")) {
			if (df_parse_mode(v, &p->mode) < 0)
				return df_fail(e, -EINVAL,
					       "annotation %s: \"%.64s\" is not a mode (observe, audit, enforce)",
					       key, v);
			if (set_source(&p->mode_source, key) < 0)
				return -ENOMEM;
		} else if (!strcmp(k, "default")) {
			if (df_parse_default(v, &p->default_verdict) < 0)
				return df_fail(e, -EINVAL,
					       "annotation %s: \"%.64s\" is not a verdict (allow, deny)",
					       key, v);
			if (set_source(&p->default_source, key) < 0)
				return -ENOMEM;
		} else if (!strcmp(k, "break-glass")) {
			if (strlen(v) > DF_BREAKGLASS_REASON_MAX)
				return df_fail(e, -E2BIG, "annotation %s: longer than %d bytes", key,
					       DF_BREAKGLASS_REASON_MAX);
			if (!valid_label(v))
				return df_fail(e, -EINVAL,
					       "annotation %s: control characters are not allowed",
					       key);
			if (!v[strspn(v, " ")])
				return df_fail(e, -EINVAL,
					       "annotation %s: the reason is empty (say why the fence is lifted)",
					       key);
			free(p->break_glass);
			p->break_glass = strdup(v);
			if (!p->break_glass || set_source(&p->break_glass_source, key) < 0)
				return -ENOMEM;
		} else if (!strcmp(k, "deny") || !strcmp(k, "allow")) {
			size_t before = p->n_rules;
			char src[160];

			snprintf(src, sizeof(src), "annotation %s", key);
			r = df_policy_add_list(p, v, !strcmp(k, "deny") ? DF_DENY : DF_ALLOW, src,
					       DF_ANNOTATION_RULES_MAX - rules, e);
			if (r < 0)
				return r;
			rules += p->n_rules - before;
		} else if (!strcmp(k, "label")) {
			if (strlen(v) > DF_LABEL_MAX)
				return df_fail(e, -E2BIG, "annotation %s: longer than %d bytes", key,
					       DF_LABEL_MAX);
			if (!valid_label(v))
				return df_fail(e, -EINVAL,
					       "annotation %s: control characters are not allowed",
					       key);
			free(p->label);
			p->label = strdup(v);
			if (!p->label)
				return -ENOMEM;
		} else if (!strcmp(k, "profile")) {
			char src[160];

			snprintf(src, sizeof(src), "annotation %s", key);
			r = df_policy_add_profiles(p, v, src, e);
			if (r < 0)
				return r;
		} else {
			return df_fail(e, -EINVAL,
				       "annotation %s: unknown key (known: mode, default, deny, allow, label, profile, break-glass)",
				       key);
		}
	}
	return 0;
}
