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
		"report_dir=%s state_dir=%s bpffs_root=%s profiles_dir=%s loosen=%d max_records=%u linger=%u pool=%u",
		c->report_dir, c->state_dir, c->bpffs_root, c->profiles_dir,
		c->annotations_may_loosen, c->max_records, c->attribution_linger, c->fence_pool);
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
		"report_dir=/var/lib/depfence/reports state_dir=/run/depfence bpffs_root=/sys/fs/bpf/depfence profiles_dir=/etc/depfence/profiles loosen=0 max_records=4096 linger=300 pool=4",
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
	{ "empty object", "{}", DEF_DIRS " loosen=0 max_records=4096 linger=300 pool=4" },
	{ "every key",
	  "{\"report_dir\":\"/srv/reports\",\"state_dir\":\"/run/df\",\"bpffs_root\":\"/sys/fs/bpf/df\","
	  "\"profiles_dir\":\"/etc/df/profiles\",\"annotations_may_loosen\":true,\"max_records\":100}",
	  "report_dir=/srv/reports state_dir=/run/df bpffs_root=/sys/fs/bpf/df profiles_dir=/etc/df/profiles loosen=1 max_records=100 linger=300 pool=4" },
	{ "one key leaves the others", "{\"state_dir\":\"/tmp/state\"}",
	  "report_dir=/var/lib/depfence/reports state_dir=/tmp/state bpffs_root=/sys/fs/bpf/depfence profiles_dir=/etc/depfence/profiles loosen=0 max_records=4096 linger=300 pool=4" },
	{ "nulls count as absent",
	  "{\"report_dir\":null,\"annotations_may_loosen\":null,\"max_records\":null}",
	  DEF_DIRS " loosen=0 max_records=4096 linger=300 pool=4" },
	{ "false stays false", "{\"annotations_may_loosen\":false}",
	  DEF_DIRS " loosen=0 max_records=4096 linger=300 pool=4" },
	{ "trailing slashes are dropped", "{\"report_dir\":\"/srv/reports//\"}",
	  "report_dir=/srv/reports state_dir=/run/depfence bpffs_root=/sys/fs/bpf/depfence profiles_dir=/etc/depfence/profiles loosen=0 max_records=4096 linger=300 pool=4" },
	{ "the root directory stays /", "{\"report_dir\":\"/\"}",
	  "report_dir=/ state_dir=/run/depfence bpffs_root=/sys/fs/bpf/depfence profiles_dir=/etc/depfence/profiles loosen=0 max_records=4096 linger=300 pool=4" },
	{ "dots inside names are fine", "{\"report_dir\":\"/srv/..reports/a..b/.x\"}",
	  "report_dir=/srv/..reports/a..b/.x state_dir=/run/depfence bpffs_root=/sys/fs/bpf/depfence profiles_dir=/etc/depfence/profiles loosen=0 max_records=4096 linger=300 pool=4" },
	{ "comments",
	  "/* admin: keep reports on the big disk */\n{\n\t// reports\n\t\"report_dir\": \"/srv/r\" /* here */\n}\n",
	  "report_dir=/srv/r state_dir=/run/depfence bpffs_root=/sys/fs/bpf/depfence profiles_dir=/etc/depfence/profiles loosen=0 max_records=4096 linger=300 pool=4" },
	{ "max_records at the low end", "{\"max_records\":16}",
	  DEF_DIRS " loosen=0 max_records=16 linger=300 pool=4" },
	{ "max_records at the high end", "{\"max_records\":1048576}",
	  DEF_DIRS " loosen=0 max_records=1048576 linger=300 pool=4" },
	{ "attribution_linger off", "{\"attribution_linger\":0}",
	  DEF_DIRS " loosen=0 max_records=4096 linger=0 pool=4" },
	{ "attribution_linger a day", "{\"attribution_linger\":86400}",
	  DEF_DIRS " loosen=0 max_records=4096 linger=86400 pool=4" },
	{ "fence_pool off", "{\"fence_pool\":0}", DEF_DIRS " loosen=0 max_records=4096 linger=300 pool=0" },
	{ "fence_pool at the high end", "{\"fence_pool\":64}",
	  DEF_DIRS " loosen=0 max_records=4096 linger=300 pool=64" },
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
	{ "dns_ttl_floor a string", "{\"dns_ttl_floor\":\"60\"}", -EINVAL,
	  P ": key \"dns_ttl_floor\"", "expected an integer (seconds)" },
	{ "dns_ttl_floor too big", "{\"dns_ttl_floor\":86401}", -ERANGE, "key \"dns_ttl_floor\"",
	  "86401 is not in 0..86400" },
	{ "attribution_linger negative", "{\"attribution_linger\":-1}", -ERANGE,
	  P ": key \"attribution_linger\"", "-1 is not in 0..86400" },
	{ "attribution_linger a bool", "{\"attribution_linger\":true}", -EINVAL,
	  "key \"attribution_linger\"", "expected an integer (seconds)" },
	{ "fence_pool too big", "{\"fence_pool\":65}", -ERANGE, P ": key \"fence_pool\"",
	  "65 is not in 0..64" },
	{ "fence_pool a string", "{\"fence_pool\":\"4\"}", -EINVAL, "key \"fence_pool\"",
	  "expected an integer (program sets)" },
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
		"report_dir=/srv/reports state_dir=/run/depfence bpffs_root=/sys/fs/bpf/depfence profiles_dir=/etc/depfence/profiles loosen=0 max_records=64 linger=300 pool=4",
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
		CHECK_STR("df_config_load: the defaults", DEF_DIRS " loosen=0 max_records=4096 linger=300 pool=4",
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

/* ---- the admin's policy: keys ---- */

static void describe_admin(const struct df_host_config *c, char *buf, size_t len)
{
	size_t off = snprintf(buf, len, "mode=%s default=%s loosen=%d break_glass=%d rules=",
			      c->admin_mode < 0 ? "-" : df_mode_name(c->admin_mode),
			      c->admin_default < 0 ? "-" : df_verdict_name(c->admin_default),
			      c->annotations_may_loosen, c->annotations_may_break_glass);

	for (size_t i = 0; i < c->admin.n_rules && off < len - 1; i++)
		off += snprintf(buf + off, len - off, "%s%c%s(%s)", i ? "," : "",
				c->admin.rules[i].verdict == DF_DENY ? '-' : '+',
				c->admin.rules[i].text, c->admin.rules[i].source);
}

static const struct good_case admin_good[] = {
	{ "no admin policy", "{}", "mode=- default=- loosen=0 break_glass=0 rules=" },
	{ "mode and default", "{\"mode\":\"enforce\",\"default\":\"deny\"}",
	  "mode=enforce default=deny loosen=0 break_glass=0 rules=" },
	{ "rules, one or a list per element",
	  "{\"deny\":[\"github.com, **.github.com\",\"203.0.113.0/24\"],\"allow\":[\"API.github.com.\"]}",
	  "mode=- default=- loosen=0 break_glass=0 rules=-github.com(admin deny),-**.github.com(admin deny),-203.0.113.0/24(admin deny),+api.github.com(admin allow)" },
	{ "empty rule arrays", "{\"deny\":[],\"allow\":[]}",
	  "mode=- default=- loosen=0 break_glass=0 rules=" },
	{ "both permissions", "{\"annotations_may_loosen\":true,\"annotations_may_break_glass\":true}",
	  "mode=- default=- loosen=1 break_glass=1 rules=" },
	{ "nulls count as absent", "{\"mode\":null,\"deny\":null,\"annotations_may_break_glass\":null}",
	  "mode=- default=- loosen=0 break_glass=0 rules=" },
};

static const struct bad_case admin_bad[] = {
	{ "mode not a mode", "{\"mode\":\"strict\"}", -EINVAL, P ": key \"mode\": \"strict\"",
	  "not a mode" },
	{ "mode a number", "{\"mode\":2}", -EINVAL, "key \"mode\"", "expected a string" },
	{ "default not a verdict", "{\"default\":\"block\"}", -EINVAL,
	  P ": key \"default\": \"block\"", "not a verdict" },
	{ "deny a string", "{\"deny\":\"github.com\"}", -EINVAL, P ": key \"deny\"",
	  "expected an array of rules" },
	{ "allow element a number", "{\"allow\":[\"x.example\",7]}", -EINVAL,
	  P ": key \"allow\": element 1", "not a string" },
	{ "a bad rule", "{\"deny\":[\"ok.example git*hub.com\"]}", -EINVAL,
	  P ": key \"deny\": rule \"git*hub.com\"", "'*' is only allowed" },
	{ "annotations_may_break_glass a string", "{\"annotations_may_break_glass\":\"yes\"}",
	  -EINVAL, P ": key \"annotations_may_break_glass\"", "expected true or false" },
};

static void test_admin_keys(void)
{
	char name[300], got[5000];

	for (size_t i = 0; i < ARRAY_SIZE(admin_good); i++) {
		const struct good_case *c = &admin_good[i];
		struct df_error e = { "" };
		struct df_host_config hc;
		int err;

		df_config_defaults(&hc);
		err = df_config_parse(c->json, P, &hc, &e);
		snprintf(name, sizeof(name), "admin keys %s: accepted", c->what);
		CHECK(name, err == 0, "expected 0, got %d (%s)", err, e.msg);
		describe_admin(&hc, got, sizeof(got));
		snprintf(name, sizeof(name), "admin keys %s: values", c->what);
		CHECK_STR(name, c->want, got);
		snprintf(name, sizeof(name), "admin keys %s: df_admin_has_policy", c->what);
		CHECK_INT(name, hc.admin_mode >= 0 || hc.admin_default >= 0 || hc.admin.n_rules,
			  df_admin_has_policy(&hc));
		df_config_free(&hc);
	}
	for (size_t i = 0; i < ARRAY_SIZE(admin_bad); i++) {
		const struct bad_case *c = &admin_bad[i];
		struct df_error e = { "" };
		struct df_host_config hc;
		int err;

		df_config_defaults(&hc);
		err = df_config_parse(c->json, P, &hc, &e);
		snprintf(name, sizeof(name), "admin keys %s: refused", c->what);
		CHECK(name, err == c->err, "expected %d, got %d (%s)", c->err, err, e.msg);
		snprintf(name, sizeof(name), "admin keys %s: message names the key", c->what);
		CHECK_MSG(name, e.msg, c->frag1);
		snprintf(name, sizeof(name), "admin keys %s: message says why", c->what);
		CHECK_MSG(name, e.msg, c->frag2);
		snprintf(name, sizeof(name), "admin keys %s: no rules kept", c->what);
		CHECK_INT(name, 0, hc.admin.n_rules);
		df_config_free(&hc);
	}
}

/* ---- the admin's policy under a job's: the tighten/loosen matrix ---- */

/*
 * job: space separated "mode=M", "default=D", "+RULE" (allow), "-RULE" (deny),
 * "bg=REASON"; each names its annotation as its source.
 */
static int job_from_spec(struct df_policy *p, const char *spec, struct df_error *e)
{
	char buf[1024], *save = NULL;
	int err = 0;

	df_policy_init(p);
	snprintf(buf, sizeof(buf), "%s", spec);
	for (char *t = strtok_r(buf, " ", &save); t && !err; t = strtok_r(NULL, " ", &save)) {
		if (!strncmp(t, "mode=", 5)) {
			err = df_parse_mode(t + 5, &p->mode);
			p->mode_source = strdup("annotation depfence.io/mode");
		} else if (!strncmp(t, "default=", 8)) {
			err = df_parse_default(t + 8, &p->default_verdict);
			p->default_source = strdup("annotation depfence.io/default");
		} else if (!strncmp(t, "bg=", 3)) {
			p->break_glass = strdup(t + 3);
			p->break_glass_source = strdup("annotation depfence.io/break-glass");
		} else {
			err = df_policy_add_list(p, t + 1, t[0] == '-' ? DF_DENY : DF_ALLOW,
						 t[0] == '-' ? "annotation depfence.io/deny" :
							       "annotation depfence.io/allow",
						 16, e);
		}
	}
	return err;
}

struct apply_case {
	const char *what;
	const char *config;
	const char *job;
	const char *want; /* "mode default rules" on success */
	const char *frag1, *frag2; /* on refusal (-EPERM) */
};

#define ADMIN_DENY "\"deny\":[\"**.github.com\",\"203.0.113.0/24\"]"

static const struct apply_case apply_cases[] = {
	/* no job keys: the admin's policy as it is */
	{ "nothing asked: the admin's mode, default, rules", "{\"mode\":\"enforce\"," ADMIN_DENY "}",
	  "", "enforce allow -**.github.com -203.0.113.0/24", NULL, NULL },
	{ "no admin policy: the built-in defaults", "{}", "", "audit allow", NULL, NULL },
	{ "no admin mode: a job may choose observe", "{" ADMIN_DENY "}", "mode=observe",
	  "observe allow -**.github.com -203.0.113.0/24", NULL, NULL },
	/* tightening */
	{ "tighten: audit to enforce", "{\"mode\":\"audit\"}", "mode=enforce", "enforce allow", NULL,
	  NULL },
	{ "tighten: observe to audit", "{\"mode\":\"observe\"}", "mode=audit", "audit allow", NULL,
	  NULL },
	{ "same mode is not loosening", "{\"mode\":\"enforce\"}", "mode=enforce", "enforce allow",
	  NULL, NULL },
	{ "tighten: default allow to deny", "{\"default\":\"allow\"}", "default=deny",
	  "audit deny", NULL, NULL },
	{ "tighten: more deny rules, after the admin's", "{" ADMIN_DENY "}", "-198.51.100.0/24",
	  "audit allow -**.github.com -203.0.113.0/24 -198.51.100.0/24", NULL, NULL },
	{ "tighten: a deny under an admin allow", "{\"allow\":[\"203.0.113.0/24\"]}",
	  "-203.0.113.10", "audit allow +203.0.113.0/24 -203.0.113.10", NULL, NULL },
	{ "an allow the admin's deny still beats", "{" ADMIN_DENY "}", "+**.example.com",
	  "audit allow -**.github.com -203.0.113.0/24 +**.example.com", NULL, NULL },
	{ "an allow less specific than the admin's deny", "{" ADMIN_DENY "}", "+203.0.0.0/16",
	  "audit allow -**.github.com -203.0.113.0/24 +203.0.0.0/16", NULL, NULL },
	{ "default deny: an allow the admin's allow covers", "{\"default\":\"deny\",\"allow\":[\"**.example.com\"]}",
	  "+pkg.example.com", "audit deny +**.example.com +pkg.example.com", NULL, NULL },
	/* loosening, refused */
	{ "loosen: enforce to audit", "{\"mode\":\"enforce\"}", "mode=audit", NULL,
	  "annotation depfence.io/mode: \"audit\" would loosen the admin mode \"enforce\" (" P
	  ", key \"mode\"",
	  "does not set \"annotations_may_loosen\": true" },
	{ "loosen: audit to observe", "{\"mode\":\"audit\"}", "mode=observe", NULL,
	  "annotation depfence.io/mode: \"observe\" would loosen the admin mode \"audit\"",
	  "annotations_may_loosen" },
	{ "loosen: default deny to allow", "{\"default\":\"deny\"}", "default=allow", NULL,
	  "annotation depfence.io/default: \"allow\" would loosen the admin default \"deny\" (" P
	  ", key \"default\")",
	  "annotations_may_loosen" },
	{ "loosen: an allow over the admin's deny", "{" ADMIN_DENY "}", "+api.github.com", NULL,
	  "annotation depfence.io/allow: allow rule \"api.github.com\" would loosen the admin deny rule \"**.github.com\" (" P
	  ", key \"deny\")",
	  "annotations_may_loosen" },
	{ "loosen: an allow equal to the admin's deny", "{" ADMIN_DENY "}", "+203.0.113.0/24",
	  NULL, "allow rule \"203.0.113.0/24\" would loosen the admin deny rule \"203.0.113.0/24\"",
	  "annotations_may_loosen" },
	{ "loosen: an allow with a port inside the admin's deny", "{" ADMIN_DENY "}",
	  "-x.example +tcp/203.0.113.10:443", NULL,
	  "allow rule \"tcp/203.0.113.10:443\" would loosen the admin deny rule \"203.0.113.0/24\"",
	  NULL },
	{ "loosen: an allow under the admin's default deny", "{\"default\":\"deny\"}",
	  "+pkg.example.com", NULL,
	  "annotation depfence.io/allow: allow rule \"pkg.example.com\" would loosen the admin default \"deny\" (" P
	  ", key \"default\")",
	  "no admin allow rule covers" },
	/* the admin permits loosening */
	{ "may loosen: enforce to observe", "{\"annotations_may_loosen\":true,\"mode\":\"enforce\"}",
	  "mode=observe", "observe allow", NULL, NULL },
	{ "may loosen: default deny to allow", "{\"annotations_may_loosen\":true,\"default\":\"deny\"}",
	  "default=allow", "audit allow", NULL, NULL },
	{ "may loosen: an allow over the admin's deny",
	  "{\"annotations_may_loosen\":true," ADMIN_DENY "}", "+api.github.com",
	  "audit allow -**.github.com -203.0.113.0/24 +api.github.com", NULL, NULL },
	/* break-glass */
	{ "break-glass: forbidden by default", "{}", "bg=INC-42", NULL,
	  "annotation depfence.io/break-glass: break-glass for one container is forbidden by the admin config " P,
	  "\"annotations_may_break_glass\" is not true" },
	{ "break-glass: annotations_may_loosen does not permit it",
	  "{\"annotations_may_loosen\":true}", "bg=INC-42", NULL, "annotations_may_break_glass",
	  NULL },
	{ "break-glass: permitted", "{\"annotations_may_break_glass\":true,\"mode\":\"enforce\"}",
	  "bg=INC-42", "enforce allow bg=INC-42", NULL, NULL },
	{ "break-glass permitted does not permit loosening",
	  "{\"annotations_may_break_glass\":true,\"mode\":\"enforce\"}", "bg=INC-42 mode=audit", NULL,
	  "would loosen the admin mode", NULL },
};

static void describe_policy(const struct df_policy *p, char *buf, size_t len)
{
	size_t off = snprintf(buf, len, "%s %s", df_mode_name(p->mode),
			      df_verdict_name(p->default_verdict));

	for (size_t i = 0; i < p->n_rules && off < len - 1; i++)
		off += snprintf(buf + off, len - off, " %c%s",
				p->rules[i].verdict == DF_DENY ? '-' : '+', p->rules[i].text);
	if (p->break_glass && off < len - 1)
		snprintf(buf + off, len - off, " bg=%s", p->break_glass);
}

static void test_admin_apply(void)
{
	char name[300], got[2000], before[2000];

	for (size_t i = 0; i < ARRAY_SIZE(apply_cases); i++) {
		const struct apply_case *c = &apply_cases[i];
		struct df_error e = { "" };
		struct df_host_config hc;
		struct df_policy p;
		int err;

		df_config_defaults(&hc);
		err = df_config_parse(c->config, P, &hc, &e);
		if (!err)
			err = job_from_spec(&p, c->job, &e);
		snprintf(name, sizeof(name), "df_admin_apply %s: config and job parse", c->what);
		CHECK(name, err == 0, "got %d (%s)", err, e.msg);
		if (err) {
			df_config_free(&hc);
			continue;
		}
		describe_policy(&p, before, sizeof(before));
		err = df_admin_apply(&hc, &p, &e);
		describe_policy(&p, got, sizeof(got));
		if (c->want) {
			snprintf(name, sizeof(name), "df_admin_apply %s: accepted", c->what);
			CHECK(name, err == 0, "expected 0, got %d (%s)", err, e.msg);
			snprintf(name, sizeof(name), "df_admin_apply %s: the policy", c->what);
			CHECK_STR(name, c->want, got);
		} else {
			snprintf(name, sizeof(name), "df_admin_apply %s: refused", c->what);
			CHECK_INT(name, -EPERM, err);
			snprintf(name, sizeof(name), "df_admin_apply %s: message names key, value, admin rule",
				 c->what);
			CHECK_MSG(name, e.msg, c->frag1);
			if (c->frag2) {
				snprintf(name, sizeof(name), "df_admin_apply %s: message says why",
					 c->what);
				CHECK_MSG(name, e.msg, c->frag2);
			}
			snprintf(name, sizeof(name), "df_admin_apply %s: policy left as it was",
				 c->what);
			CHECK_STR(name, before, got);
		}
		df_policy_free(&p);
		df_config_free(&hc);
	}
}

int main(void)
{
	test_defaults();
	test_good();
	test_bad();
	test_load();
	test_admin_keys();
	test_admin_apply();
	return unit_done();
}
