// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
#include <fcntl.h>
#include <sys/stat.h>

#include "integrity.h"
#include "json.h"
#include "state.h"

static int has_cap(yajl_val caps, const char *name)
{
	static const char *const sets[] = { "bounding", "effective", "permitted", "ambient" };

	for (size_t s = 0; s < ARRAY_SIZE(sets); s++) {
		yajl_val arr = json_get(caps, sets[s]);

		for (size_t i = 0; i < json_array_len(arr); i++) {
			const char *c = json_string(json_array_at(arr, i));

			if (c && !strcmp(c, name))
				return 1;
		}
	}
	return 0;
}

/* A namespace of this type in linux.namespaces means the container has its own. */
static int own_namespace(yajl_val lx, const char *type)
{
	yajl_val ns = json_get(lx, "namespaces");

	for (size_t i = 0; i < json_array_len(ns); i++) {
		const char *t = json_string(json_get(json_array_at(ns, i), "type"));

		if (t && !strcmp(t, type))
			return 1;
	}
	return 0;
}

static int cgroupfs_writable(yajl_val mounts)
{
	for (size_t i = 0; i < json_array_len(mounts); i++) {
		yajl_val m = json_array_at(mounts, i), opts = json_get(m, "options");
		const char *dst = json_string(json_get(m, "destination"));
		const char *type = json_string(json_get(m, "type"));
		int ro = 0;

		if (!dst || strncmp(dst, "/sys/fs/cgroup", 14) || !type || strncmp(type, "cgroup", 6))
			continue;
		for (size_t j = 0; j < json_array_len(opts); j++) {
			const char *o = json_string(json_array_at(opts, j));

			if (o && !strcmp(o, "ro"))
				ro = 1;
		}
		if (!ro)
			return 1;
	}
	return 0;
}

int oci_integrity_from_config(const char *buf, struct df_integrity *ret, struct df_error *e)
{
	_cleanup_yajl_ yajl_val root = NULL;
	struct df_integrity in = { .checked = 1 };
	yajl_val caps, lx;
	int r;

	r = json_parse(buf, "bundle config.json", &root, e);
	if (r < 0)
		return r;
	snprintf(in.source, sizeof(in.source), "config.json");
	caps = json_get(json_get(root, "process"), "capabilities");
	in.cap_net_raw = has_cap(caps, "CAP_NET_RAW");
	in.cap_net_admin = has_cap(caps, "CAP_NET_ADMIN");
	in.cap_sys_admin = has_cap(caps, "CAP_SYS_ADMIN");
	in.cap_bpf = has_cap(caps, "CAP_BPF");
	lx = json_get(root, "linux");
	in.host_network = !own_namespace(lx, "network");
	in.host_pid = !own_namespace(lx, "pid");
	in.writable_cgroupfs = cgroupfs_writable(json_get(root, "mounts"));
	*ret = in;
	return 0;
}

int oci_integrity_from_bundle(const char *bundle, struct df_integrity *ret, struct df_error *e)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_close_ int dfd = -1;
	int r;

	if (!bundle || bundle[0] != '/')
		return df_fail(e, -EINVAL, "container state: no absolute \"bundle\" to read config.json from");
	dfd = open(bundle, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return df_fail(e, -errno, "open bundle %s: %s", bundle, strerror(errno));
	r = read_file_capped(dfd, "config.json", OCI_CONFIG_MAX, &buf, NULL);
	if (r < 0)
		return df_fail(e, r, "read %s/config.json: %s", bundle, strerror(-r));
	return oci_integrity_from_config(buf, ret, e);
}

static unsigned long long cap_mask(const char *status, const char *field)
{
	const char *p = strstr(status, field);

	return p ? strtoull(p + strlen(field), NULL, 16) : 0;
}

static int same_ns(const char *type)
{
	char a[64], b[64];
	struct stat sa, sb;

	snprintf(a, sizeof(a), "/proc/self/ns/%s", type);
	snprintf(b, sizeof(b), "/proc/1/ns/%s", type);
	if (stat(a, &sa) < 0 || stat(b, &sb) < 0)
		return 0;
	return sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

int df_integrity_from_self(struct df_integrity *ret)
{
	_cleanup_free_ char *status = NULL;
	struct df_integrity in = { .checked = 1 };
	unsigned long long caps;
	int r;

	r = read_file_capped(AT_FDCWD, "/proc/self/status", 64 * 1024, &status, NULL);
	if (r < 0)
		return r;
	snprintf(in.source, sizeof(in.source), "process");
	/* what the job has now, or may gain through file capabilities */
	caps = cap_mask(status, "CapEff:\t") | cap_mask(status, "CapPrm:\t") |
	       cap_mask(status, "CapBnd:\t");
	in.cap_net_raw = !!(caps & (1ULL << 13));
	in.cap_net_admin = !!(caps & (1ULL << 12));
	in.cap_sys_admin = !!(caps & (1ULL << 21));
	in.cap_bpf = !!(caps & (1ULL << 39));
	in.host_network = same_ns("net");
	in.host_pid = same_ns("pid");
	/* with CAP_SYS_ADMIN (root) the job can write cgroup.procs anywhere */
	in.writable_cgroupfs = in.cap_sys_admin;
	*ret = in;
	return 0;
}

int oci_command_from_bundle(const char *bundle, char *buf, size_t len)
{
	_cleanup_free_ char *doc = NULL;
	_cleanup_close_ int dfd = -1;
	int r;

	if (!bundle || bundle[0] != '/' || len == 0)
		return -EINVAL;
	dfd = open(bundle, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	r = read_file_capped(dfd, "config.json", OCI_CONFIG_MAX, &doc, NULL);
	if (r < 0)
		return r;
	return oci_command_from_config(doc, buf, len);
}

int oci_command_from_config(const char *doc, char *buf, size_t len)
{
	_cleanup_yajl_ yajl_val root = NULL;
	yajl_val args;
	size_t off = 0;
	int r;

	if (len == 0)
		return -EINVAL;
	r = json_parse(doc, "bundle config.json", &root, NULL);
	if (r < 0)
		return r;
	args = json_get(json_get(root, "process"), "args");
	buf[0] = '\0';
	for (size_t i = 0; i < json_array_len(args) && off + 1 < len; i++) {
		const char *a = json_string(json_array_at(args, i));
		int n;

		if (!a)
			continue;
		n = snprintf(buf + off, len - off, "%s%s", off ? " " : "", a);
		if (n < 0)
			break;
		off += (size_t)n;
	}
	if (off >= len)
		off = len - 1;
	/* the state and the report keep to text: no control characters */
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	return json_array_len(args) ? 0 : -ENOENT;
}
