// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* The host configuration, /etc/depfence/depfence.json (df_config_parse). */
#include "../../hook/config.h"
#include "fuzz.h"

static void dir_sane(const char *d)
{
	size_t n = strnlen(d, PATH_MAX);

	DF_FUZZ_ASSERT(n < PATH_MAX - 64 + 1, "directory not terminated or too long");
	DF_FUZZ_ASSERT(d[0] == '/', "relative directory %s", d);
	DF_FUZZ_ASSERT(!strstr(d, "/../") && (n < 3 || strcmp(d + n - 3, "/..")),
		       "directory %s climbs up", d);
	DF_FUZZ_ASSERT(n == 1 || d[n - 1] != '/', "directory %s ends in a slash", d);
}

DF_FUZZ_TARGET(config)
{
	struct df_host_config c;
	struct df_error e = {};
	char *buf;
	int r;

	if (size > DF_CONFIG_MAX)
		return 0;
	buf = df_fuzz_str(data, size);
	df_config_defaults(&c);
	r = df_config_parse(buf, "fuzz.json", &c, &e);
	free(buf);
	if (r < 0) {
		df_fuzz_check_msg(e.msg);
		return 0;
	}
	dir_sane(c.report_dir);
	dir_sane(c.state_dir);
	dir_sane(c.bpffs_root);
	dir_sane(c.profiles_dir);
	DF_FUZZ_ASSERT(c.max_records >= 16 && c.max_records <= 1048576, "max_records %u",
		       c.max_records);
	DF_FUZZ_ASSERT(c.dns_ttl_floor <= 86400, "dns_ttl_floor %u", c.dns_ttl_floor);
	DF_FUZZ_ASSERT(c.dns_ports[0] == 53, "dns_ports[0] %u", c.dns_ports[0]);
	return 0;
}
