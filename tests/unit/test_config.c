// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/* Host configuration: /etc/depfence/depfence.json or DEPFENCE_CONFIG (DESIGN.md). */
#include <fcntl.h>
#include <sys/stat.h>

#include "../../hook/config.h"
#include "unit.h"

#define P "/etc/depfence/test.json"

static void describe(const struct df_host_config *c, char *buf, size_t len)
{
	snprintf(
		buf, len,
		"report_dir=%s state_dir=%s bpffs_root=%s profiles_dir=%s loosen=%d max_records=%u",
		c->report_dir, c->state_dir, c->bpffs_root, c->profiles_dir,
		c->annotations_may_loosen, c->max_records);
}

static void test_defaults(void)
{
	struct df_host_config c;
	char got[5000];

	memset(&c, 0x5a, sizeof(c));
	df_config_defaults(&c);
	describe(&c, got, sizeof(got));
	CHECK_STR(
		"df_config_defaults: the documented defaults",
		"report_dir=/var/lib/depfence/reports state_dir=/run/depfence bpffs_root=/sys/fs/bpf/depfence profiles_dir=/etc/depfence/profiles loosen=0 max_records=4096",
		got);
	CHECK_STR("df_config_defaults: no file read", "", c.path);
}

/* ---- documents that parse ---- */

struct good_case {
	const char *what;
	const char *json;
	const char *want; /* describe() of the result, starting from defaults */
};

#define DEF_DIRS                                                                                   \
	"report_dir=/var/lib/depfence/reports state_dir=/run/depfence "                            \
	"bpffs_root=/sys/fs/bpf/depfence profiles_dir=/etc/depfence/profiles"

static const struct good_case good_cases[] = {
	{ "empty object", "{}", DEF_DIRS " loosen=0 max_records=4096" },
	{ "every key",
	  "{\"report_dir\":\"/srv/reports\",\"state_dir\":\"/run/df\",\"bpffs_root\":\"/sys/fs/bpf/df\","
	  "\"profiles_dir\":\"/etc/df/profiles\",\"annotations_may_loosen\":true,\"max_records\":100}",
	  "report_dir=/srv/reports state_dir=/run/df bpffs_root=/sys/fs/bpf/df profiles_dir=/etc/df/profiles loosen=1 max_records=100" },
	{ "one key leaves the others", "{\"state_dir\":\"/tmp/state\"}",
	  "report_dir=/var/lib/depfence/reports state_dir=/tmp/state bpffs_root=/sys/fs/bpf/depfence profiles_dir=/etc/depfence/profiles loosen=0 max_records=4096" },
	{ "nulls count as absent",
	  "{\"report_dir\":null,\"annotations_may_loosen\":null,\"max_records\":null}",
	  DEF_DIRS " loosen=0 max_records=4096" },
	{ "false stays false", "{\"annotations_may_loosen\":false}",
	  DEF_DIRS " loosen=0 max_records=4096" },
	{ "trailing slashes are dropped", "{\"report_dir\":\"/srv/reports//\"}",
	  "report_dir=/srv/reports state_dir=/run/depfence bpffs_root=/sys/fs/bpf/depfence profiles_dir=/etc/depfence/profiles loosen=0 max_records=4096" },
	{ "the root directory stays /", "{\"report_dir\":\"/\"}",
	  "report_dir=/ state_dir=/run/depfence bpffs_root=/sys/fs/bpf/depfence profiles_dir=/etc/depfence/profiles loosen=0 max_records=4096" },
	{ "dots inside names are fine", "{\"report_dir\":\"/srv/..reports/a..b/.x\"}",
	  "report_dir=/srv/..reports/a..b/.x state_dir=/run/depfence bpffs_root=/sys/fs/bpf/depfence profiles_dir=/etc/depfence/profiles loosen=0 max_records=4096" },
	{ "comments",
	  "/* admin: keep reports on the big disk */\n{\n\t// reports\n\t\"report_dir\": \"/srv/r\" /* here */\n}\n",
	  "report_dir=/srv/r state_dir=/run/depfence bpffs_root=/sys/fs/bpf/depfence profiles_dir=/etc/depfence/profiles loosen=0 max_records=4096" },
	{ "max_records at the low end", "{\"max_records\":16}",
	  DEF_DIRS " loosen=0 max_records=16" },
	{ "max_records at the high end", "{\"max_records\":1048576}",
	  DEF_DIRS " loosen=0 max_records=1048576" },
};

static void test_good(void)
{
	char name[300], got[5000];

	for (size_t i = 0; i < ARRAY_SIZE(good_cases); i++) {
		const struct good_case *c = &good_cases[i];
		struct df_error e = { "" };
		struct df_host_config hc;
		int err;

		df_config_defaults(&hc);
		err = df_config_parse(c->json, P, &hc, &e);
		snprintf(name, sizeof(name), "df_config_parse %s: accepted", c->what);
		CHECK(name, err == 0, "expected 0, got %d (%s)", err, e.msg);
		if (err)
			continue;
		describe(&hc, got, sizeof(got));
		snprintf(name, sizeof(name), "df_config_parse %s: values", c->what);
		CHECK_STR(name, c->want, got);
		snprintf(name, sizeof(name), "df_config_parse %s: path recorded", c->what);
		CHECK_STR(name, P, hc.path);
	}
}

/* ---- documents that do not ---- */

struct bad_case {
	const char *what;
	const char *json;
	int err;
	const char *frag1, *frag2;
};

static const struct bad_case bad_cases[] = {
	{ "not JSON", "{\"report_dir\":", -EINVAL, P ": not valid JSON", NULL },
	{ "an array", "[]", -EINVAL, P ": expected a JSON object", NULL },
	{ "a string", "\"/srv\"", -EINVAL, P ": expected a JSON object", NULL },
	{ "unknown key", "{\"report_dir\":\"/srv\",\"reports_dir\":\"/srv\"}", -EINVAL,
	  P ": unknown key \"reports_dir\"", NULL },
	{ "unknown key, other case", "{\"Report_Dir\":\"/srv\"}", -EINVAL,
	  "unknown key \"Report_Dir\"", NULL },
	{ "relative report_dir", "{\"report_dir\":\"srv/reports\"}", -EINVAL,
	  P ": key \"report_dir\"", "must be an absolute path" },
	{ "empty state_dir", "{\"state_dir\":\"\"}", -EINVAL, "key \"state_dir\"",
	  "must be an absolute path" },
	{ "/../ in bpffs_root", "{\"bpffs_root\":\"/sys/fs/bpf/../../etc\"}", -EINVAL,
	  "key \"bpffs_root\"", "without \"..\"" },
	{ "trailing /.. in profiles_dir", "{\"profiles_dir\":\"/etc/depfence/..\"}", -EINVAL,
	  "key \"profiles_dir\"", "without \"..\"" },
	{ "just /..", "{\"report_dir\":\"/..\"}", -EINVAL, "key \"report_dir\"", "without \"..\"" },
	{ "leading ..", "{\"report_dir\":\"../x\"}", -EINVAL, "key \"report_dir\"",
	  "absolute path" },
	{ "report_dir a number", "{\"report_dir\":1}", -EINVAL, "key \"report_dir\"",
	  "expected a string" },
	{ "state_dir an array", "{\"state_dir\":[\"/run\"]}", -EINVAL, "key \"state_dir\"",
	  "expected a string" },
	{ "bpffs_root an object", "{\"bpffs_root\":{}}", -EINVAL, "key \"bpffs_root\"",
	  "expected a string" },
	{ "profiles_dir a bool", "{\"profiles_dir\":true}", -EINVAL, "key \"profiles_dir\"",
	  "expected a string" },
	{ "hooks_dirs a string", "{\"hooks_dirs\":\"/etc\"}", -EINVAL, P ": key \"hooks_dirs\"",
	  "expected an array" },
	{ "hooks_dirs relative", "{\"hooks_dirs\":[\"/etc\",\"hooks.d\"]}", -EINVAL,
	  "key \"hooks_dirs\": element 1", "absolute path" },
	{ "hooks_dirs with ..", "{\"hooks_dirs\":[\"/etc/../x\"]}", -EINVAL,
	  "key \"hooks_dirs\": element 0", "without \"..\"" },
	{ "hooks_dirs too many", "{\"hooks_dirs\":[\"/1\",\"/2\",\"/3\",\"/4\",\"/5\",\"/6\",\"/7\",\"/8\",\"/9\"]}",
	  -E2BIG, "key \"hooks_dirs\"", "at most 8" },
	{ "annotations_may_loosen a string", "{\"annotations_may_loosen\":\"yes\"}", -EINVAL,
	  P ": key \"annotations_may_loosen\"", "expected true or false" },
	{ "annotations_may_loosen a number", "{\"annotations_may_loosen\":1}", -EINVAL,
	  "key \"annotations_may_loosen\"", "expected true or false" },
	{ "max_records a string", "{\"max_records\":\"4096\"}", -EINVAL, P ": key \"max_records\"",
	  "expected an integer" },
	{ "max_records a fraction", "{\"max_records\":100.5}", -EINVAL, "key \"max_records\"",
	  "expected an integer" },
	{ "max_records too small", "{\"max_records\":15}", -ERANGE, "key \"max_records\"",
	  "15 is not in 16..1048576" },
	{ "max_records zero", "{\"max_records\":0}", -ERANGE, "key \"max_records\"",
	  "not in 16..1048576" },
	{ "max_records negative", "{\"max_records\":-4096}", -ERANGE, "key \"max_records\"",
	  "not in 16..1048576" },
	{ "max_records too big", "{\"max_records\":1048577}", -ERANGE, "key \"max_records\"",
	  "1048577 is not in 16..1048576" },
	{ "max_records past 32 bits", "{\"max_records\":4294967312}", -ERANGE,
	  "key \"max_records\"", "not in 16..1048576" },
};

static void test_bad(void)
{
	char name[300];

	for (size_t i = 0; i < ARRAY_SIZE(bad_cases); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct df_error e = { "" };
		struct df_host_config hc;
		int err;

		df_config_defaults(&hc);
		err = df_config_parse(c->json, P, &hc, &e);
		snprintf(name, sizeof(name), "df_config_parse %s: refused", c->what);
		CHECK(name, err == c->err, "expected %d, got %d (%s)", c->err, err, e.msg);
		if (!err)
			continue;
		snprintf(name, sizeof(name), "df_config_parse %s: message names the key", c->what);
		CHECK_MSG(name, e.msg, c->frag1);
		if (c->frag2) {
			snprintf(name, sizeof(name), "df_config_parse %s: message says why",
				 c->what);
			CHECK_MSG(name, e.msg, c->frag2);
		}
	}

	/* a path too long to join file names to */
	{
		size_t n = PATH_MAX;
		char *json = malloc(n + 64);
		struct df_error e = { "" };
		struct df_host_config hc;
		int err;

		if (json) {
			size_t off = sprintf(json, "{\"report_dir\":\"/");

			memset(json + off, 'a', n);
			strcpy(json + off + n, "\"}");
			df_config_defaults(&hc);
			err = df_config_parse(json, P, &hc, &e);
			CHECK_INT("df_config_parse: a path of PATH_MAX bytes is refused", -EINVAL,
				  err);
			CHECK_MSG("df_config_parse: long path names the key", e.msg,
				  "key \"report_dir\"");
			CHECK_MSG("df_config_parse: long path says why", e.msg, "shorter than");
			free(json);
		}
	}
}

/* ---- df_config_load ---- */

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	if (!f)
		return -errno;
	fputs(text, f);
	return fclose(f) ? -errno : 0;
}

static void test_load(void)
{
	char dir[] = "/tmp/depfence-unit-XXXXXX", path[4096], missing[4096], got[5000];
	struct df_error e = { "" };
	struct df_host_config hc;
	int err;

	if (!mkdtemp(dir)) {
		CHECK("df_config_load: mkdtemp", 0, "%s", strerror(errno));
		return;
	}
	snprintf(path, sizeof(path), "%s/depfence.json", dir);
	snprintf(missing, sizeof(missing), "%s/absent.json", dir);

	err = write_text(path, "{\"report_dir\":\"/srv/reports\",\"max_records\":64}");
	CHECK_INT("df_config_load: write the config file", 0, err);
	setenv("DEPFENCE_CONFIG", path, 1);
	memset(&hc, 0x5a, sizeof(hc));
	err = df_config_load(&hc, &e);
	CHECK("df_config_load: DEPFENCE_CONFIG is read", err == 0, "got %d (%s)", err, e.msg);
	describe(&hc, got, sizeof(got));
	CHECK_STR(
		"df_config_load: file values over defaults",
		"report_dir=/srv/reports state_dir=/run/depfence bpffs_root=/sys/fs/bpf/depfence profiles_dir=/etc/depfence/profiles loosen=0 max_records=64",
		got);
	CHECK_STR("df_config_load: path recorded", path, hc.path);

	err = write_text(path, "{\"report_dir\":\"/srv/reports\",\"colour\":\"blue\"}");
	err = err ?: df_config_load(&hc, &e);
	CHECK_INT("df_config_load: an unknown key fails the load", -EINVAL, err);
	CHECK_MSG("df_config_load: unknown key message names the file", e.msg, path);
	CHECK_MSG("df_config_load: unknown key message names the key", e.msg,
		  "unknown key \"colour\"");

	setenv("DEPFENCE_CONFIG", missing, 1);
	err = df_config_load(&hc, &e);
	CHECK_INT("df_config_load: a missing DEPFENCE_CONFIG file is an error", -ENOENT, err);
	CHECK_MSG("df_config_load: missing file named", e.msg, missing);
	CHECK_MSG("df_config_load: missing file says why", e.msg, strerror(ENOENT));

	setenv("DEPFENCE_CONFIG", dir, 1);
	err = df_config_load(&hc, &e);
	CHECK("df_config_load: a directory is an error", err < 0, "got %d", err);
	CHECK_MSG("df_config_load: directory named", e.msg, dir);

	/*
	 * The admin's file may be a symlink: Kubernetes ConfigMap volumes, NixOS
	 * /etc and config management all make one.
	 */
	snprintf(missing, sizeof(missing), "%s/link.json", dir);
	err = write_text(path, "{\"state_dir\":\"/run/linked\"}");
	if (!err && symlink("depfence.json", missing) < 0)
		err = -errno;
	CHECK_INT("df_config_load: make a symlinked config", 0, err);
	setenv("DEPFENCE_CONFIG", missing, 1);
	err = df_config_load(&hc, &e);
	CHECK("df_config_load: a symlinked config is read",
	      err == 0 && !strcmp(hc.state_dir, "/run/linked"), "got %d (%s), state_dir %s", err,
	      err ? e.msg : "", hc.state_dir);
	unlink(missing);

	unsetenv("DEPFENCE_CONFIG");
	err = df_config_load(&hc, &e);
	if (access(DF_CONFIG_DEFAULT, F_OK) < 0 && errno == ENOENT) {
		CHECK("df_config_load: no DEPFENCE_CONFIG and no default file: defaults", err == 0,
		      "got %d (%s)", err, e.msg);
		describe(&hc, got, sizeof(got));
		CHECK_STR("df_config_load: the defaults", DEF_DIRS " loosen=0 max_records=4096",
			  got);
		CHECK_STR("df_config_load: no file read", "", hc.path);
	} else {
		/* this host has a config: it is the one read */
		CHECK("df_config_load: no DEPFENCE_CONFIG reads the default path",
		      (err == 0 && !strcmp(hc.path, DF_CONFIG_DEFAULT)) ||
			      (err < 0 && strstr(e.msg, DF_CONFIG_DEFAULT)),
		      "got %d, path \"%s\", message \"%s\"", err, hc.path, e.msg);
	}

	setenv("DEPFENCE_CONFIG", "", 1);
	err = df_config_load(&hc, &e);
	CHECK("df_config_load: an empty DEPFENCE_CONFIG means the default path",
	      err == 0 ? !strcmp(hc.path, access(DF_CONFIG_DEFAULT, F_OK) ? "" : DF_CONFIG_DEFAULT)
		       : strstr(e.msg, DF_CONFIG_DEFAULT) != NULL,
	      "got %d, path \"%s\"", err, hc.path);
	unsetenv("DEPFENCE_CONFIG");

	unlink(path);
	rmdir(dir);
}

int main(void)
{
	test_defaults();
	test_good();
	test_bad();
	test_load();
	return unit_done();
}
