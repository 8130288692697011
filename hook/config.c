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
	c->dns_ports[0] = 53;
	snprintf(c->hooks_dirs[0], PATH_MAX, "/usr/share/containers/oci/hooks.d");
	snprintf(c->hooks_dirs[1], PATH_MAX, "/etc/containers/oci/hooks.d");
	c->n_hooks_dirs = 2;
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

static const char *const known_keys[] = {
	"report_dir", "state_dir", "bpffs_root", "profiles_dir", "annotations_may_loosen",
	"max_records", "dns_ttl_floor", "dns_ports",
	"hooks_dirs",
};

int df_config_parse(const char *buf, const char *path, struct df_host_config *c,
		    struct df_error *e)
{
	_cleanup_yajl_ yajl_val root = NULL;
	yajl_val ports;
	long long n;
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
	r = json_get_int(root, "max_records", &n, e);
	if (r < 0 && r != -ENOENT)
		return df_fail(e, r, "%s: key \"max_records\": expected an integer", path);
	if (r == 0) {
		if (n < 16 || n > 1048576)
			return df_fail(e, -ERANGE, "%s: key \"max_records\": %lld is not in 16..1048576",
				       path, n);
		c->max_records = (unsigned int)n;
	}
	r = json_get_int(root, "dns_ttl_floor", &n, e);
	if (r < 0 && r != -ENOENT)
		return df_fail(e, r, "%s: key \"dns_ttl_floor\": expected an integer (seconds)", path);
	if (r == 0) {
		if (n < 0 || n > 86400)
			return df_fail(e, -ERANGE, "%s: key \"dns_ttl_floor\": %lld is not in 0..86400",
				       path, n);
		c->dns_ttl_floor = (unsigned int)n;
	}
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
