// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <fcntl.h>

#include "../oci/json.h"
#include "config.h"

void df_config_defaults(struct df_host_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->report_dir, sizeof(c->report_dir), "/var/lib/depfence/reports");
	snprintf(c->state_dir, sizeof(c->state_dir), "/run/depfence");
	snprintf(c->bpffs_root, sizeof(c->bpffs_root), "/sys/fs/bpf/depfence");
	snprintf(c->profiles_dir, sizeof(c->profiles_dir), "/etc/depfence/profiles");
	c->max_records = DF_DEFAULT_RECORDS;
	c->dns_ttl_floor = 60;
	c->attribution_linger = 300;
	c->fence_pool = 4;
	c->dns_ports[0] = 53;
	snprintf(c->hooks_dirs[0], PATH_MAX, "/usr/share/containers/oci/hooks.d");
	snprintf(c->hooks_dirs[1], PATH_MAX, "/etc/containers/oci/hooks.d");
	c->n_hooks_dirs = 2;
	c->admin_mode = c->admin_default = -1;
	df_policy_init(&c->admin);
}

void df_config_free(struct df_host_config *c)
{
	df_policy_free(&c->admin);
	df_policy_init(&c->admin);
}

static int take_hooks_dirs(yajl_val root, struct df_host_config *c, const char *path,
			   struct df_error *e)
{
	yajl_val arr;
	size_t n;
	int r = json_get_array(root, "hooks_dirs", &arr, e);

	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return df_fail(e, r, "%s: key \"hooks_dirs\": expected an array of absolute paths",
			       path);
	n = json_array_len(arr);
	if (n > DF_HOOKS_DIRS_MAX)
		return df_fail(e, -E2BIG, "%s: key \"hooks_dirs\": at most %d directories", path,
			       DF_HOOKS_DIRS_MAX);
	for (size_t i = 0; i < n; i++) {
		const char *v = json_string(json_array_at(arr, i));

		if (!v || v[0] != '/' || strstr(v, "/..") || strlen(v) >= PATH_MAX - 256)
			return df_fail(e, -EINVAL,
				       "%s: key \"hooks_dirs\": element %zu is not an absolute path without \"..\"",
				       path, i);
		snprintf(c->hooks_dirs[i], PATH_MAX, "%s", v);
	}
	c->n_hooks_dirs = n;
	return 0;
}

static int take_dir(yajl_val root, const char *key, char *dst, size_t len, const char *path,
		    struct df_error *e)
{
	const char *v;
	int r = json_get_string(root, key, &v, e);

	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return df_fail(e, r, "%s: key \"%s\": expected a string (an absolute path)", path,
			       key);
	if (v[0] != '/' || strstr(v, "/../") || strlen(v) >= len - 64 ||
	    (strlen(v) >= 3 && !strcmp(v + strlen(v) - 3, "/..")))
		return df_fail(e, -EINVAL,
			       "%s: key \"%s\": \"%.100s\" must be an absolute path without \"..\", shorter than %zu bytes",
			       path, key, v, len - 64);
	snprintf(dst, len, "%s", v);
	/* no trailing slash: paths are joined with one */
	for (size_t n = strlen(dst); n > 1 && dst[n - 1] == '/'; n--)
		dst[n - 1] = '\0';
	return 0;
}

/* An optional integer key in lo..hi; what stands after "expected an integer" is hint. */
static int take_uint(yajl_val root, const char *key, const char *hint, long long lo, long long hi,
		     unsigned int *dst, const char *path, struct df_error *e)
{
	long long n;
	int r;

	r = json_get_int(root, key, &n, e);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return df_fail(e, r, "%s: key \"%s\": expected an integer%s", path, key, hint);
	if (n < lo || n > hi)
		return df_fail(e, -ERANGE, "%s: key \"%s\": %lld is not in %lld..%lld", path, key, n,
			       lo, hi);
	*dst = (unsigned int)n;
	return 0;
}

static const char *const known_keys[] = {
	"report_dir", "state_dir", "bpffs_root", "profiles_dir", "annotations_may_loosen",
	"max_records", "dns_ttl_floor", "attribution_linger", "fence_pool", "dns_ports", "annotations_may_break_glass", "mode",
	"default", "deny", "allow", "hooks_dirs",
};

/* "deny" and "allow": arrays of strings, each one rule or a list of them, as in profiles */
static int take_rules(yajl_val root, const char *key, uint8_t verdict, const char *path,
		      struct df_host_config *c, struct df_error *e)
{
	char where[PATH_MAX + 32];
	yajl_val arr;
	int r = json_get_array(root, key, &arr, e);

	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return df_fail(e, r, "%s: key \"%s\": expected an array of rules", path, key);
	snprintf(where, sizeof(where), "%s: key \"%s\"", path, key);
	for (size_t i = 0; i < json_array_len(arr); i++) {
		const char *rule = json_string(json_array_at(arr, i));
		size_t before = c->admin.n_rules;

		if (!rule)
			return df_fail(e, -EINVAL, "%s: element %zu is not a string", where, i);
		r = df_policy_add_list(&c->admin, rule, verdict, where,
				       DF_ADMIN_RULES_MAX - before, e);
		if (r < 0)
			return r;
		for (size_t k = before; k < c->admin.n_rules; k++) {
			char *src = strdup(verdict == DF_DENY ? "admin deny" : "admin allow");

			if (!src)
				return -ENOMEM;
			free(c->admin.rules[k].source);
			c->admin.rules[k].source = src;
		}
	}
	return 0;
}

static int take_admin(yajl_val root, const char *path, struct df_host_config *c,
		      struct df_error *e)
{
	const char *v;
	int r;

	r = json_get_bool(root, "annotations_may_break_glass", &c->annotations_may_break_glass, e);
	if (r < 0 && r != -ENOENT)
		return df_fail(e, r,
			       "%s: key \"annotations_may_break_glass\": expected true or false",
			       path);
	r = json_get_string(root, "mode", &v, e);
	if (r < 0 && r != -ENOENT)
		return df_fail(e, r, "%s: key \"mode\": expected a string (observe, audit, enforce)",
			       path);
	if (r == 0 && df_parse_mode(v, &c->admin_mode) < 0)
		return df_fail(e, -EINVAL,
			       "%s: key \"mode\": \"%.64s\" is not a mode (observe, audit, enforce)",
			       path, v);
	r = json_get_string(root, "default", &v, e);
	if (r < 0 && r != -ENOENT)
		return df_fail(e, r, "%s: key \"default\": expected a string (allow, deny)", path);
	if (r == 0 && df_parse_default(v, &c->admin_default) < 0)
		return df_fail(e, -EINVAL,
			       "%s: key \"default\": \"%.64s\" is not a verdict (allow, deny)", path,
			       v);
	r = take_rules(root, "deny", DF_DENY, path, c, e);
	if (r < 0)
		return r;
	return take_rules(root, "allow", DF_ALLOW, path, c, e);
}

int df_config_parse(const char *buf, const char *path, struct df_host_config *c,
		    struct df_error *e)
{
	_cleanup_yajl_ yajl_val root = NULL;
	yajl_val ports;
	int r;

	r = json_parse(buf, path, &root, e);
	if (r < 0)
		return r;
	if (!json_is_object(root))
		return df_fail(e, -EINVAL, "%s: expected a JSON object", path);
	for (size_t i = 0; i < json_object_len(root); i++) {
		const char *k = json_object_key(root, i);
		size_t j;

		for (j = 0; j < ARRAY_SIZE(known_keys); j++)
			if (!strcmp(k, known_keys[j]))
				break;
		if (j == ARRAY_SIZE(known_keys))
			return df_fail(e, -EINVAL, "%s: unknown key \"%s\"", path, k);
	}
	if ((r = take_dir(root, "report_dir", c->report_dir, sizeof(c->report_dir), path, e)) < 0 ||
	    (r = take_dir(root, "state_dir", c->state_dir, sizeof(c->state_dir), path, e)) < 0 ||
	    (r = take_dir(root, "bpffs_root", c->bpffs_root, sizeof(c->bpffs_root), path, e)) < 0 ||
	    (r = take_dir(root, "profiles_dir", c->profiles_dir, sizeof(c->profiles_dir), path,
			  e)) < 0)
		return r;
	r = json_get_bool(root, "annotations_may_loosen", &c->annotations_may_loosen, e);
	if (r < 0 && r != -ENOENT)
		return df_fail(e, r, "%s: key \"annotations_may_loosen\": expected true or false",
			       path);
	if ((r = take_uint(root, "max_records", "", 16, 1048576, &c->max_records, path, e)) < 0 ||
	    (r = take_uint(root, "dns_ttl_floor", " (seconds)", 0, 86400, &c->dns_ttl_floor, path,
			   e)) < 0 ||
	    (r = take_uint(root, "attribution_linger", " (seconds)", 0, 86400,
			   &c->attribution_linger, path, e)) < 0 ||
	    (r = take_uint(root, "fence_pool", " (program sets)", 0, 64, &c->fence_pool, path,
			   e)) < 0)
		return r;
	r = json_get_array(root, "dns_ports", &ports, e);
	if (r < 0 && r != -ENOENT)
		return df_fail(e, r, "%s: key \"dns_ports\": expected an array of ports", path);
	if (r == 0) {
		size_t np = json_array_len(ports);

		if (np >= DF_DNS_PORTS)
			return df_fail(e, -E2BIG,
				       "%s: key \"dns_ports\": at most %d ports besides 53", path,
				       DF_DNS_PORTS - 1);
		for (size_t i = 0; i < np; i++) {
			yajl_val v = json_array_at(ports, i);

			if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 1 ||
			    YAJL_GET_INTEGER(v) > 65535)
				return df_fail(e, -EINVAL,
					       "%s: key \"dns_ports\": element %zu is not a port in 1..65535",
					       path, i);
			c->dns_ports[i + 1] = (unsigned short)YAJL_GET_INTEGER(v);
		}
	}
	r = take_hooks_dirs(root, c, path, e);
	if (r < 0)
		return r;
	r = take_admin(root, path, c, e);
	if (r < 0) {
		df_config_free(c);
		return r;
	}
	snprintf(c->path, sizeof(c->path), "%s", path);
	return 0;
}

int df_config_load(struct df_host_config *c, struct df_error *e)
{
	const char *path = getenv("DEPFENCE_CONFIG");
	_cleanup_free_ char *buf = NULL;
	_cleanup_close_ int fd = -1;
	int explicit = path && *path;
	int r;

	df_config_defaults(c);
	if (!explicit)
		path = DF_CONFIG_DEFAULT;
	/*
	 * The admin names this file, not the container: follow symlinks, as
	 * ConfigMap volumes, NixOS's /etc and config management make them.
	 */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	r = fd < 0 ? -errno : read_fd_capped(fd, DF_CONFIG_MAX, &buf, NULL);
	if (r == -ENOENT && !explicit)
		return 0;
	if (r == -E2BIG)
		return df_fail(e, r, "config %s: larger than %d bytes", path, DF_CONFIG_MAX);
	if (r < 0)
		return df_fail(e, r, "config %s: %s", path, strerror(-r));
	return df_config_parse(buf, path, c, e);
}

int df_admin_has_policy(const struct df_host_config *c)
{
	return c->admin_mode >= 0 || c->admin_default >= 0 || c->admin.n_rules > 0;
}

int df_admin_apply(const struct df_host_config *c, struct df_policy *p, struct df_error *e)
{
	const char *cfg = c->path[0] ? c->path : DF_CONFIG_DEFAULT " (absent)";
	int admin_default = c->admin_default >= 0 ? c->admin_default : DF_ALLOW;
	const char *why = "annotations_may_loosen";
	int r;

	if (p->break_glass && !c->annotations_may_break_glass)
		return df_fail(e, -EPERM,
			       "%s: break-glass for one container is forbidden by the admin config %s: its key \"annotations_may_break_glass\" is not true",
			       p->break_glass_source ? p->break_glass_source : "break-glass", cfg);
	if (c->annotations_may_loosen)
		goto merge;
	if (p->mode_source && c->admin_mode >= 0 && p->mode < c->admin_mode)
		return df_fail(e, -EPERM,
			       "%s: \"%s\" would loosen the admin mode \"%s\" (%s, key \"mode\"; observe < audit < enforce), and the admin config does not set \"%s\": true",
			       p->mode_source, df_mode_name(p->mode), df_mode_name(c->admin_mode),
			       cfg, why);
	if (p->default_source && admin_default == DF_DENY && p->default_verdict == DF_ALLOW)
		return df_fail(e, -EPERM,
			       "%s: \"allow\" would loosen the admin default \"deny\" (%s, key \"default\"), and the admin config does not set \"%s\": true",
			       p->default_source, cfg, why);
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct df_rule *ru = &p->rules[i];
		char src[256];
		size_t which;

		if (!df_rule_loosens(&c->admin, admin_default, ru, &which))
			continue;
		/* a profile's rules count as the job's: it asked for the profile */
		if (ru->source && !strncmp(ru->source, "profile ", 8) && p->profiles_source)
			snprintf(src, sizeof(src), "%s (%s)", p->profiles_source, ru->source);
		else
			snprintf(src, sizeof(src), "%s", ru->source ? ru->source : "rule");
		if (which == DF_LOOSENS_DEFAULT)
			return df_fail(e, -EPERM,
				       "%s: allow rule \"%s\" would loosen the admin default \"deny\" (%s, key \"default\"): no admin allow rule covers all it allows, and the admin config does not set \"%s\": true",
				       src, ru->text, cfg, why);
		return df_fail(e, -EPERM,
			       "%s: allow rule \"%s\" would loosen the admin deny rule \"%s\" (%s, key \"deny\"): it overlaps it and is as specific or more, and the admin config does not set \"%s\": true",
			       src, ru->text, c->admin.rules[which].text, cfg, why);
	}
merge:
	r = df_policy_prepend_rules(p, &c->admin);
	if (r < 0)
		return df_fail(e, r, "admin rules: %s", strerror(-r));
	if (!p->mode_source && c->admin_mode >= 0)
		p->mode = c->admin_mode;
	if (!p->default_source && c->admin_default >= 0)
		p->default_verdict = c->admin_default;
	return 0;
}
