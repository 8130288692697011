// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The OCI state a runtime hands the hook, the depfence.io/ annotations in it
 * and the policy built from them (DESIGN.md, "Where policy comes from").
 */
#include <fcntl.h>
#include <sys/stat.h>

#include "../../oci/state.h"
#include "unit.h"


/* "k=v;k=v" for the kept annotations, in order. */
static void join_annotations(const struct oci_state *s, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < s->n_ann && off < len; i++)
		off += snprintf(buf + off, len - off, "%s%s=%s", i ? ";" : "", s->ann[i].key,
				s->ann[i].value);
}

/* ---- state shapes that parse ---- */

struct state_case {
	const char *what;
	const char *json;
	const char *id;
	int pid;
	const char *bundle; /* NULL: absent */
	const char *status; /* NULL: absent */
	int has_annotations;
	const char *ann; /* kept annotations as "k=v;k=v" */
};

#define PODMAN_ID "3b0d4a39c53e4b0b6e1a1a5e0f9f6d5c8a6b9e2d7c4f1a0b3e6d9c2f5a8b1e4d"

static const struct state_case state_cases[] = {
	{ "runc createRuntime",
	  "{\"ociVersion\":\"1.0.2-dev\",\"id\":\"deploy-1\",\"status\":\"created\",\"pid\":4242,"
	  "\"bundle\":\"/run/deploy/bundle\",\"annotations\":{\"depfence.io/mode\":\"enforce\","
	  "\"depfence.io/deny\":\"github.com, **.github.com\","
	  "\"org.opencontainers.image.stopSignal\":\"SIGTERM\"}}",
	  "deploy-1", 4242, "/run/deploy/bundle", "created", 1,
	  "depfence.io/mode=enforce;depfence.io/deny=github.com, **.github.com" },
	{ "runc poststop (status stopped, pid 0)",
	  "{\"ociVersion\":\"1.0.2-dev\",\"id\":\"deploy-1\",\"status\":\"stopped\",\"pid\":0,"
	  "\"bundle\":\"/run/deploy/bundle\",\"annotations\":{\"depfence.io/mode\":\"enforce\"}}",
	  "deploy-1", 0, "/run/deploy/bundle", "stopped", 1, "depfence.io/mode=enforce" },
	{ "crun poststop (no pid at all)",
	  "{\"ociVersion\":\"1.0.0\",\"id\":\"c1\",\"status\":\"stopped\",\"bundle\":\"/b\","
	  "\"annotations\":{\"depfence.io/allow\":\"10.0.0.0/8\"}}",
	  "c1", 0, "/b", "stopped", 1, "depfence.io/allow=10.0.0.0/8" },
	{ "crun createRuntime (keys in another order)",
	  "{\"annotations\":{\"depfence.io/default\":\"deny\"},\"bundle\":\"/b\",\"pid\":7,"
	  "\"status\":\"created\",\"id\":\"c1\",\"ociVersion\":\"1.0.0\"}",
	  "c1", 7, "/b", "created", 1, "depfence.io/default=deny" },
	{ "podman (extra keys, many foreign annotations)",
	  "{\"ociVersion\":\"1.1.0\",\"id\":\"" PODMAN_ID "\",\"status\":\"created\",\"pid\":91234,"
	  "\"bundle\":\"/var/lib/containers/storage/overlay-containers/" PODMAN_ID "/userdata\","
	  "\"created\":\"2024-05-01T10:00:00.000000000Z\",\"owner\":\"root\","
	  "\"rootfs\":\"/var/lib/containers/storage/overlay/x/merged\","
	  "\"extra\":{\"nested\":[1,2.5,{\"a\":null,\"b\":[true,false]}]},"
	  "\"annotations\":{\"io.container.manager\":\"libpod\","
	  "\"io.kubernetes.cri-o.Created\":\"2024-05-01T10:00:00Z\","
	  "\"io.podman.annotations.autoremove\":\"FALSE\","
	  "\"io.podman.annotations.init\":\"FALSE\","
	  "\"io.podman.annotations.privileged\":\"FALSE\","
	  "\"io.podman.annotations.publish-all\":\"FALSE\","
	  "\"org.opencontainers.image.stopSignal\":\"15\","
	  "\"depfence.io/mode\":\"audit\","
	  "\"io.podman.annotations.userns\":\"host\","
	  "\"depfence.io/label\":\"job 7\","
	  "\"depfence.io.other/x\":\"not ours\","
	  "\"DEPFENCE.IO/mode\":\"not ours either\","
	  "\"example.com/depfence.io/deny\":\"nor this\","
	  "\"io.podman.count\":5,"
	  "\"io.podman.obj\":{\"x\":[1]}}}",
	  PODMAN_ID, 91234, "/var/lib/containers/storage/overlay-containers/" PODMAN_ID "/userdata",
	  "created", 1, "depfence.io/mode=audit;depfence.io/label=job 7" },
	{ "no annotations key",
	  "{\"ociVersion\":\"1.0.2\",\"id\":\"x\",\"status\":\"created\",\"pid\":1,\"bundle\":\"/b\"}",
	  "x", 1, "/b", "created", 0, "" },
	{ "empty annotations", "{\"id\":\"x\",\"annotations\":{}}", "x", 0, NULL, NULL, 1, "" },
	{ "only foreign annotations", "{\"id\":\"x\",\"annotations\":{\"a\":\"b\",\"c\":\"d\"}}",
	  "x", 0, NULL, NULL, 1, "" },
	{ "nulls count as absent",
	  "{\"id\":\"x\",\"pid\":null,\"bundle\":null,\"status\":null,\"annotations\":null}", "x",
	  0, NULL, NULL, 0, "" },
	{ "only the id", "{\"id\":\"A.b-c_9\"}", "A.b-c_9", 0, NULL, NULL, 0, "" },
	{ "unicode and escapes in values",
	  "{\"id\":\"u\",\"annotations\":{\"depfence.io/label\":\"d\\u00e9ploy \xe2\x9c\x93 \\\"q\\\"\"}}",
	  "u", 0, NULL, NULL, 1, "depfence.io/label=d\xc3\xa9ploy \xe2\x9c\x93 \"q\"" },
	{ "the largest pid", "{\"id\":\"x\",\"pid\":2147483647}", "x", 2147483647, NULL, NULL, 0,
	  "" },
	{ "comments and whitespace", "/* runc */ {\n\t\"id\" : \"x\" , \"pid\" : 3 }\n", "x", 3,
	  NULL, NULL, 0, "" },
	{ "brackets inside strings do not count as nesting",
	  "{\"id\":\"x\",\"s\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\","
	  "\"t\":\"\\\"{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{\"}",
	  "x", 0, NULL, NULL, 0, "" },
	{ "brackets inside comments do not count as nesting",
	  "/* [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ */ {\"id\":\"x\""
	  " // {{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{\n}",
	  "x", 0, NULL, NULL, 0, "" },
};

static void test_state_shapes(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(state_cases); i++) {
		const struct state_case *c = &state_cases[i];
		struct df_error e = { "" };
		struct oci_state s = {};
		char name[300], ann[1024];
		int err;

		err = oci_state_parse(c->json, &s, &e);
		snprintf(name, sizeof(name), "oci_state_parse %s: accepted", c->what);
		CHECK(name, err == 0, "expected 0, got %d (%s)", err, e.msg);
		if (err)
			continue;
		snprintf(name, sizeof(name), "oci_state_parse %s: id", c->what);
		CHECK_STR(name, c->id, s.id);
		snprintf(name, sizeof(name), "oci_state_parse %s: pid", c->what);
		CHECK_INT(name, c->pid, s.pid);
		snprintf(name, sizeof(name), "oci_state_parse %s: bundle", c->what);
		if (c->bundle)
			CHECK_STR(name, c->bundle, s.bundle);
		else
			CHECK(name, s.bundle == NULL, "expected none, got \"%s\"", s.bundle);
		snprintf(name, sizeof(name), "oci_state_parse %s: status", c->what);
		if (c->status)
			CHECK_STR(name, c->status, s.status);
		else
			CHECK(name, s.status == NULL, "expected none, got \"%s\"", s.status);
		snprintf(name, sizeof(name), "oci_state_parse %s: has_annotations", c->what);
		CHECK_INT(name, c->has_annotations, s.has_annotations);
		join_annotations(&s, ann, sizeof(ann));
		snprintf(name, sizeof(name),
			 "oci_state_parse %s: only depfence.io/ annotations kept", c->what);
		CHECK_STR(name, c->ann, ann);
		oci_state_free(&s);
	}
}

/* ---- state errors ---- */

struct state_error {
	const char *what;
	const char *json;
	int err;
	const char *frag1, *frag2; /* the message names both (frag2 may be NULL) */
};

static const struct state_error state_errors[] = {
	{ "not JSON", "{\"id\":", -EINVAL, "container state: not valid JSON", NULL },
	{ "not JSON at all", "runc", -EINVAL, "container state: not valid JSON", NULL },
	{ "empty input", "", -EINVAL, "container state", NULL },
	{ "trailing garbage", "{\"id\":\"x\"} x", -EINVAL, "container state: not valid JSON",
	  NULL },
	{ "an array", "[{\"id\":\"x\"}]", -EINVAL, "container state: expected a JSON object",
	  NULL },
	{ "a string", "\"x\"", -EINVAL, "container state: expected a JSON object", NULL },
	{ "a number", "42", -EINVAL, "container state: expected a JSON object", NULL },
	{ "null", "null", -EINVAL, "container state: expected a JSON object", NULL },
	{ "id missing", "{\"pid\":1,\"bundle\":\"/b\"}", -EINVAL, "key \"id\" is missing", NULL },
	{ "id null", "{\"id\":null}", -EINVAL, "key \"id\" is missing", NULL },
	{ "id a number", "{\"id\":42}", -EINVAL, "container state: key \"id\"",
	  "expected a string" },
	{ "id an object", "{\"id\":{}}", -EINVAL, "key \"id\"", "expected a string" },
	{ "id empty", "{\"id\":\"\"}", -EINVAL, "key \"id\"", "not a safe container id" },
	{ "id with '/'", "{\"id\":\"a/b\"}", -EINVAL, "key \"id\"", "\"a/b\" is not a safe" },
	{ "id ..", "{\"id\":\"..\"}", -EINVAL, "key \"id\"", "not a safe container id" },
	{ "id ../x", "{\"id\":\"../etc\"}", -EINVAL, "key \"id\"", "not a safe container id" },
	{ "id x/../y", "{\"id\":\"x/../y\"}", -EINVAL, "key \"id\"", "not a safe container id" },
	{ "id starting with '.'", "{\"id\":\".hidden\"}", -EINVAL, "key \"id\"",
	  "not starting with '.'" },
	{ "id with a space", "{\"id\":\"a b\"}", -EINVAL, "key \"id\"", "not a safe container id" },
	{ "id with a newline", "{\"id\":\"a\\nb\"}", -EINVAL, "key \"id\"",
	  "not a safe container id" },
	{ "id with non-ASCII", "{\"id\":\"caf\\u00e9\"}", -EINVAL, "key \"id\"",
	  "not a safe container id" },
	{ "pid negative", "{\"id\":\"x\",\"pid\":-1}", -ERANGE, "key \"pid\"", "out of range" },
	{ "pid past INT_MAX", "{\"id\":\"x\",\"pid\":2147483648}", -ERANGE, "key \"pid\"",
	  "out of range" },
	{ "pid past 64 bits", "{\"id\":\"x\",\"pid\":99999999999999999999999}", -EINVAL,
	  "key \"pid\"", "expected an integer" },
	{ "pid a string", "{\"id\":\"x\",\"pid\":\"42\"}", -EINVAL, "container state: key \"pid\"",
	  "expected an integer" },
	{ "pid a fraction", "{\"id\":\"x\",\"pid\":4.5}", -EINVAL, "key \"pid\"",
	  "expected an integer" },
	{ "pid a bool", "{\"id\":\"x\",\"pid\":true}", -EINVAL, "key \"pid\"",
	  "expected an integer" },
	{ "bundle a number", "{\"id\":\"x\",\"bundle\":7}", -EINVAL, "key \"bundle\"",
	  "expected a string" },
	{ "status an array", "{\"id\":\"x\",\"status\":[]}", -EINVAL, "key \"status\"",
	  "expected a string" },
	{ "annotations a string", "{\"id\":\"x\",\"annotations\":\"depfence.io/mode=enforce\"}",
	  -EINVAL, "key \"annotations\"", "expected an object" },
	{ "annotations an array", "{\"id\":\"x\",\"annotations\":[\"a\"]}", -EINVAL,
	  "key \"annotations\"", "expected an object" },
	{ "depfence annotation a number", "{\"id\":\"x\",\"annotations\":{\"depfence.io/mode\":1}}",
	  -EINVAL, "annotation \"depfence.io/mode\"", "value must be a string" },
	{ "depfence annotation null", "{\"id\":\"x\",\"annotations\":{\"depfence.io/deny\":null}}",
	  -EINVAL, "annotation \"depfence.io/deny\"", "value must be a string" },
	{ "depfence annotation an array",
	  "{\"id\":\"x\",\"annotations\":{\"a\":\"b\",\"depfence.io/allow\":[\"10.0.0.0/8\"]}}",
	  -EINVAL, "annotation \"depfence.io/allow\"", "value must be a string" },
};

static void check_state_error(const char *what, const char *json, int want, const char *frag1,
			      const char *frag2)
{
	struct df_error e = { "" };
	struct oci_state s = {};
	char name[300];
	int err;

	err = oci_state_parse(json, &s, &e);
	snprintf(name, sizeof(name), "oci_state_parse %s: refused", what);
	CHECK(name, err == want, "expected %d, got %d (%s)", want, err, e.msg);
	if (!err) {
		oci_state_free(&s);
		return;
	}
	snprintf(name, sizeof(name), "oci_state_parse %s: message", what);
	CHECK_MSG(name, e.msg, frag1);
	if (frag2) {
		snprintf(name, sizeof(name), "oci_state_parse %s: message says why", what);
		CHECK_MSG(name, e.msg, frag2);
	}
	snprintf(name, sizeof(name), "oci_state_parse %s: nothing returned", what);
	CHECK(name, s.id == NULL && s.ann == NULL, "the state was written on failure");
}

static void test_state_errors(void)
{
	char *buf;
	size_t n;

	for (size_t i = 0; i < ARRAY_SIZE(state_errors); i++)
		check_state_error(state_errors[i].what, state_errors[i].json, state_errors[i].err,
				  state_errors[i].frag1, state_errors[i].frag2);

	/* ids at the length limit */
	{
		char json[300], id[140];
		struct oci_state s = {};
		struct df_error e = { "" };
		int err;

		memset(id, 'a', 128);
		id[128] = '\0';
		snprintf(json, sizeof(json), "{\"id\":\"%s\"}", id);
		err = oci_state_parse(json, &s, &e);
		CHECK("oci_state_parse: a 128-byte id is accepted",
		      err == 0 && s.id && strlen(s.id) == 128, "got %d (%s)", err, e.msg);
		oci_state_free(&s);

		snprintf(json, sizeof(json), "{\"id\":\"%sb\"}", id);
		check_state_error("129-byte id", json, -EINVAL, "key \"id\"",
				  "is not a safe container id");
	}

	/* \u0000 would cut a value (or a key) short where it is read as a C string */
	check_state_error("NUL in an annotation value",
			  "{\"id\":\"x\",\"annotations\":{\"depfence.io/deny\":\"203.0.113.0/24\\u0000, github.com\"}}",
			  -EILSEQ, "container state: the string \"203.0.113.0/24\\u0000, github.com\"",
			  "holds \\u0000 (a NUL byte)");
	check_state_error("NUL in an annotation key",
			  "{\"id\":\"x\",\"annotations\":{\"depfence.io/deny\\u0000x\":\"github.com\"}}",
			  -EILSEQ, "\"depfence.io/deny\\u0000x\"", "refused");
	{
		/* an escaped backslash before u0000 is text, not a NUL; \u00000 and \u0001 are no NUL either */
		struct oci_state s = {};
		struct df_error e = { "" };
		int err = oci_state_parse(
			"{\"id\":\"x\",\"annotations\":{\"depfence.io/label\":\"a\\\\u0000 b\\u0001\"}}", &s, &e);

		CHECK("oci_state_parse: an escaped backslash then u0000 is accepted", err == 0,
		      "got %d (%s)", err, e.msg);
		oci_state_free(&s);
	}
	/* a "\u0000" inside a comment is no string */
	{
		struct oci_state s = {};
		struct df_error e = { "" };
		int err = oci_state_parse("/* \"\\u0000\" */ {\"id\":\"x\"}", &s, &e);

		CHECK("oci_state_parse: \\u0000 in a comment is accepted", err == 0, "got %d (%s)", err,
		      e.msg);
		oci_state_free(&s);
	}

	/* 100000 '[' must be refused, not recursed into */
	n = 100000;
	buf = malloc(n + 1);
	if (buf) {
		memset(buf, '[', n);
		buf[n] = '\0';
		check_state_error("100000 '['", buf, -E2BIG, "container state",
				  "nested deeper than 64 levels");
		memset(buf, '{', n);
		check_state_error("100000 '{'", buf, -E2BIG, "container state",
				  "nested deeper than 64 levels");
		free(buf);
	}
	/* a quote inside a comment is no string: the nesting after it counts */
	n = 100;
	buf = malloc(n + 16);
	if (buf) {
		strcpy(buf, "/* \" */");
		memset(buf + strlen(buf), '[', n);
		buf[7 + n] = '\0';
		check_state_error("a quote in a /* */ comment, then 100 '['", buf, -E2BIG,
				  "container state", "nested deeper than 64 levels");
		strcpy(buf, "// \"\n");
		memset(buf + strlen(buf), '{', n);
		buf[5 + n] = '\0';
		check_state_error("a quote in a // comment, then 100 '{'", buf, -E2BIG,
				  "container state", "nested deeper than 64 levels");
		free(buf);
	}
	{
		/* deep nesting after a valid start, closed properly */
		size_t depth = 50000, off = 0;

		buf = malloc(2 * depth + 64);
		if (buf) {
			off += sprintf(buf, "{\"id\":\"x\",\"a\":");
			memset(buf + off, '[', depth);
			off += depth;
			memset(buf + off, ']', depth);
			off += depth;
			strcpy(buf + off, "}");
			check_state_error("50000 nested arrays in a value", buf, -E2BIG,
					  "container state", "nested deeper");
			free(buf);
		}
	}
	for (int levels = 64; levels <= 65; levels++) {
		/* 64 levels in all are fine, 65 are not */
		char json[400];
		size_t off = 0;
		struct oci_state s = {};
		struct df_error e = { "" };
		int err;

		off += sprintf(json, "{\"id\":\"x\",\"a\":");
		memset(json + off, '[', levels - 1);
		off += levels - 1;
		memset(json + off, ']', levels - 1);
		off += levels - 1;
		strcpy(json + off, "}");
		if (levels == 64) {
			err = oci_state_parse(json, &s, &e);
			CHECK("oci_state_parse: 64 levels of nesting are accepted", err == 0,
			      "got %d (%s)", err, e.msg);
			oci_state_free(&s);
		} else {
			check_state_error("65 levels of nesting", json, -E2BIG, "container state",
					  "nested deeper than 64 levels");
		}
	}

	/* counts and sizes of depfence.io/ annotations */
	for (int count = 64; count <= 65; count++) {
		size_t cap = 64 * 64 + 4096, off = 0;
		struct oci_state s = {};
		struct df_error e = { "" };
		int err;

		buf = malloc(cap);
		if (!buf)
			break;
		off += snprintf(buf, cap, "{\"id\":\"x\",\"annotations\":{\"io.other\":\"y\"");
		for (int i = 0; i < count; i++)
			off += snprintf(buf + off, cap - off, ",\"depfence.io/k%d\":\"v\"", i);
		snprintf(buf + off, cap - off, "}}");
		err = oci_state_parse(buf, &s, &e);
		if (count == 64) {
			CHECK("oci_state_parse: 64 depfence.io/ annotations are kept",
			      err == 0 && s.n_ann == 64, "got %d (%s), %zu kept", err, e.msg,
			      s.n_ann);
		} else {
			CHECK_INT("oci_state_parse: 65 depfence.io/ annotations are refused",
				  -E2BIG, err);
			CHECK_MSG("oci_state_parse: annotation count message", e.msg,
				  "more than 64 depfence.io/ annotations");
		}
		oci_state_free(&s);
		free(buf);
	}
	{
		size_t len = DF_ANNOTATION_VALUE_MAX + 1;
		struct oci_state s = {};
		struct df_error e = { "" };
		int err;

		buf = malloc(len + 128);
		if (buf) {
			size_t off =
				sprintf(buf,
					"{\"id\":\"x\",\"annotations\":{\"depfence.io/deny\":\"");

			memset(buf + off, 'a', len);
			strcpy(buf + off + len, "\"}}");
			err = oci_state_parse(buf, &s, &e);
			CHECK_INT("oci_state_parse: an annotation value past 64 KiB is refused",
				  -E2BIG, err);
			CHECK_MSG("oci_state_parse: long value message names the annotation", e.msg,
				  "depfence.io/deny");
			oci_state_free(&s);

			/* a foreign annotation may be as long as it likes */
			off = sprintf(buf, "{\"id\":\"x\",\"annotations\":{\"io.other/x\":\"");
			memset(buf + off, 'a', len);
			strcpy(buf + off + len, "\"}}");
			err = oci_state_parse(buf, &s, &e);
			CHECK("oci_state_parse: a long foreign annotation is ignored",
			      err == 0 && s.n_ann == 0, "got %d (%s)", err, e.msg);
			oci_state_free(&s);
			free(buf);
		}
	}
}

/* ---- annotations from the bundle's config.json ---- */

static int write_text(const char *dir, const char *name, const char *text)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "we");
	if (!f)
		return -errno;
	fputs(text, f);
	return fclose(f) ? -errno : 0;
}

static void test_config_annotations(void)
{
	char dir[] = "/tmp/depfence-unit-XXXXXX", path[4096];
	struct df_error e = { "" };
	struct oci_state s = {};
	int err;

	if (!mkdtemp(dir)) {
		CHECK("oci_config_annotations: mkdtemp", 0, "%s", strerror(errno));
		return;
	}
	err = write_text(dir, "config.json",
			 "{\"ociVersion\":\"1.0.2\",\"process\":{\"args\":[\"sh\"]},"
			 "\"annotations\":{\"depfence.io/mode\":\"enforce\",\"other\":\"x\","
			 "\"depfence.io/allow\":\"10.0.0.0/8\"}}");
	CHECK_INT("oci_config_annotations: write config.json", 0, err);

	s.id = strdup("x");
	s.bundle = strdup(dir);
	err = oci_config_annotations(&s, &e);
	CHECK("oci_config_annotations: reads the bundle", err == 0 && s.n_ann == 2,
	      "got %d (%s), %zu", err, e.msg, s.n_ann);
	if (s.n_ann == 2) {
		CHECK_STR("oci_config_annotations: first key", "depfence.io/mode", s.ann[0].key);
		CHECK_STR("oci_config_annotations: second value", "10.0.0.0/8", s.ann[1].value);
	}
	oci_state_free(&s);

	err = write_text(dir, "config.json", "{\"annotations\":{\"depfence.io/mode\":[]}}");
	CHECK_INT("oci_config_annotations: rewrite config.json", 0, err);
	s.id = strdup("x");
	s.bundle = strdup(dir);
	err = oci_config_annotations(&s, &e);
	CHECK_INT("oci_config_annotations: a mistyped annotation is refused", -EINVAL, err);
	CHECK_MSG("oci_config_annotations: mistyped message names the file", e.msg,
		  "bundle config.json");
	CHECK_MSG("oci_config_annotations: mistyped message names the key", e.msg,
		  "depfence.io/mode");
	oci_state_free(&s);

	snprintf(path, sizeof(path), "%s/config.json", dir);
	unlink(path);
	s.id = strdup("x");
	s.bundle = strdup(dir);
	err = oci_config_annotations(&s, &e);
	CHECK_INT("oci_config_annotations: no config.json", -ENOENT, err);
	CHECK_MSG("oci_config_annotations: missing file named", e.msg, "config.json");
	oci_state_free(&s);

	s.id = strdup("x");
	s.bundle = strdup("relative/bundle");
	err = oci_config_annotations(&s, &e);
	CHECK_INT("oci_config_annotations: a relative bundle is refused", -EINVAL, err);
	CHECK_MSG("oci_config_annotations: relative bundle names the key", e.msg, "\"bundle\"");
	oci_state_free(&s);

	rmdir(dir);
}

/* ---- policy from annotations ---- */

static void test_policy_good(void)
{
	const struct oci_annotation ann[] = {
		{ .key = "org.example/x", .value = "y" },
		{ .key = "depfence.io/mode", .value = "enforce" },
		{ .key = "depfence.io/default", .value = "deny" },
		{ .key = "depfence.io/deny", .value = "github.com, 140.82.112.0/20" },
		{ .key = "depfence.io/allow", .value = "10.0.0.0/8:443\n[2001:db8::/32]" },
		{ .key = "depfence.io/label", .value = "https://ci.example/job/7 \xc3\xa9" },
	};
	static const struct {
		const char *text, *source;
		int verdict;
	} want[] = {
		{ "github.com", "annotation depfence.io/deny", DF_DENY },
		{ "140.82.112.0/20", "annotation depfence.io/deny", DF_DENY },
		{ "10.0.0.0/8:443", "annotation depfence.io/allow", DF_ALLOW },
		{ "[2001:db8::/32]", "annotation depfence.io/allow", DF_ALLOW },
	};
	struct df_error e = { "" };
	struct df_policy p;
	char name[200];
	int err;

	df_policy_init(&p);
	err = oci_policy_from_annotations(ann, ARRAY_SIZE(ann), &p, &e);
	CHECK("oci_policy_from_annotations: a full policy", err == 0, "got %d (%s)", err, e.msg);
	CHECK_INT("oci_policy_from_annotations: mode", DF_MODE_ENFORCE, p.mode);
	CHECK_INT("oci_policy_from_annotations: default", DF_DENY, p.default_verdict);
	CHECK_STR("oci_policy_from_annotations: label", "https://ci.example/job/7 \xc3\xa9",
		  p.label);
	CHECK_INT("oci_policy_from_annotations: rule count", ARRAY_SIZE(want), p.n_rules);
	for (size_t i = 0; i < ARRAY_SIZE(want) && i < p.n_rules; i++) {
		snprintf(name, sizeof(name), "oci_policy_from_annotations: rule %zu", i + 1);
		CHECK(name,
		      !strcmp(p.rules[i].text, want[i].text) &&
			      !strcmp(p.rules[i].source, want[i].source) &&
			      p.rules[i].verdict == want[i].verdict,
		      "expected %s %s (%s), got %s %s (%s)", df_verdict_name(want[i].verdict),
		      want[i].text, want[i].source, df_verdict_name(p.rules[i].verdict),
		      p.rules[i].text, p.rules[i].source);
	}
	df_policy_free(&p);

	/* nothing set: the defaults stay */
	df_policy_init(&p);
	err = oci_policy_from_annotations(ann, 1, &p, &e);
	CHECK("oci_policy_from_annotations: foreign keys only leave the defaults",
	      err == 0 && p.mode == DF_MODE_AUDIT && p.default_verdict == DF_ALLOW &&
		      p.n_rules == 0 && !p.label,
	      "got %d, mode %d default %d rules %zu", err, p.mode, p.default_verdict, p.n_rules);
	df_policy_free(&p);

	/* every mode and default */
	static const struct {
		const char *key, *value;
		int mode, def;
	} words[] = {
		{ "depfence.io/mode", "observe", DF_MODE_OBSERVE, DF_ALLOW },
		{ "depfence.io/mode", "audit", DF_MODE_AUDIT, DF_ALLOW },
		{ "depfence.io/mode", "enforce", DF_MODE_ENFORCE, DF_ALLOW },
		{ "depfence.io/default", "allow", DF_MODE_AUDIT, DF_ALLOW },
		{ "depfence.io/default", "deny", DF_MODE_AUDIT, DF_DENY },
	};
	for (size_t i = 0; i < ARRAY_SIZE(words); i++) {
		struct oci_annotation a = { .key = (char *)words[i].key, .value = (char *)words[i].value };

		df_policy_init(&p);
		err = oci_policy_from_annotations(&a, 1, &p, &e);
		snprintf(name, sizeof(name), "oci_policy_from_annotations: %s=%s", words[i].key,
			 words[i].value);
		CHECK(name,
		      err == 0 && p.mode == words[i].mode && p.default_verdict == words[i].def,
		      "expected 0 mode %d default %d, got %d mode %d default %d", words[i].mode,
		      words[i].def, err, p.mode, p.default_verdict);
		df_policy_free(&p);
	}

	/* a second label replaces the first */
	{
		const struct oci_annotation two[] = { { .key = "depfence.io/label", .value = "one" },
						      { .key = "depfence.io/label", .value = "two" } };

		df_policy_init(&p);
		err = oci_policy_from_annotations(two, 2, &p, &e);
		CHECK("oci_policy_from_annotations: the last label wins",
		      err == 0 && p.label && !strcmp(p.label, "two"), "got %d label %s", err,
		      p.label ? p.label : "(null)");
		df_policy_free(&p);
	}

	/* from state JSON to policy */
	{
		struct oci_state s = {};

		err = oci_state_parse(state_cases[0].json, &s, &e);
		df_policy_init(&p);
		if (!err)
			err = oci_policy_from_annotations(s.ann, s.n_ann, &p, &e);
		CHECK("oci_state_parse + oci_policy_from_annotations: runc state",
		      err == 0 && p.mode == DF_MODE_ENFORCE && p.n_rules == 2 &&
			      !strcmp(p.rules[1].text, "**.github.com"),
		      "got %d (%s), mode %d, %zu rules", err, e.msg, p.mode, p.n_rules);
		df_policy_free(&p);
		oci_state_free(&s);
	}
}

struct ann_error {
	const char *key, *value;
	int err;
	const char *frag1, *frag2;
};

static const struct ann_error ann_errors[] = {
	{ "depfence.io/mode", "block", -EINVAL, "annotation depfence.io/mode",
	  "\"block\" is not a mode" },
	{ "depfence.io/mode", "", -EINVAL, "annotation depfence.io/mode", "is not a mode" },
	{ "depfence.io/mode", "Enforce", -EINVAL, "annotation depfence.io/mode", "\"Enforce\"" },
	{ "depfence.io/default", "maybe", -EINVAL, "annotation depfence.io/default",
	  "\"maybe\" is not a verdict" },
	{ "depfence.io/default", "block", -EINVAL, "annotation depfence.io/default",
	  "is not a verdict (allow, deny)" },
	{ "depfence.io/deny", "github.com git*hub.com", -EINVAL,
	  "annotation depfence.io/deny: ", "\"git*hub.com\"" },
	{ "depfence.io/deny", "2001:db8::1", -EINVAL, "annotation depfence.io/deny: ", "brackets" },
	{ "depfence.io/allow", "10.0.0.1/8", -EINVAL,
	  "annotation depfence.io/allow: ", "\"10.0.0.1/8\"" },
	{ "depfence.io/allow", "1.2.3.4:0", -EINVAL,
	  "annotation depfence.io/allow: ", "\"1.2.3.4:0\"" },
	{ "depfence.io/foo", "x", -EINVAL, "annotation depfence.io/foo", "unknown key" },
	{ "depfence.io/", "x", -EINVAL, "annotation depfence.io/:", "unknown key" },
	{ "depfence.io/Mode", "enforce", -EINVAL, "annotation depfence.io/Mode", "unknown key" },
	{ "depfence.io/deny/extra", "1.2.3.4", -EINVAL, "annotation depfence.io/deny/extra",
	  "unknown key" },
	{ "depfence.io/profile", "../ci", -EINVAL, "annotation depfence.io/profile",
	  "not a profile name" },
	{ "depfence.io/profile", "/etc/passwd", -EINVAL, "annotation depfence.io/profile",
	  "not a profile name" },
	{ "depfence.io/profile", "Github", -EINVAL, "annotation depfence.io/profile",
	  "not a profile name" },
	{ "depfence.io/label", "a\nb", -EINVAL, "annotation depfence.io/label",
	  "control characters" },
	{ "depfence.io/label", "\x1b[31mred", -EINVAL, "annotation depfence.io/label",
	  "control characters" },
	{ "depfence.io/label", "del\x7f", -EINVAL, "annotation depfence.io/label",
	  "control characters" },
	{ "depfence.io/label", "tab\there", -EINVAL, "annotation depfence.io/label",
	  "control characters" },
	{ "depfence.io/break-glass", "INC-42\nforged line", -EINVAL,
	  "annotation depfence.io/break-glass", "control characters" },
	{ "depfence.io/break-glass", "", -EINVAL, "annotation depfence.io/break-glass",
	  "the reason is empty" },
	{ "depfence.io/break-glass", "   ", -EINVAL, "annotation depfence.io/break-glass",
	  "the reason is empty" },
};

static void check_ann_error(const char *key, const char *value, int want, const char *frag1,
			    const char *frag2, const char *what)
{
	struct oci_annotation a = { .key = (char *)key, .value = (char *)value };
	struct df_error e = { "" };
	struct df_policy p;
	char name[300];
	int err;

	df_policy_init(&p);
	err = oci_policy_from_annotations(&a, 1, &p, &e);
	snprintf(name, sizeof(name), "oci_policy_from_annotations %s: refused", what);
	CHECK(name, err == want, "expected %d, got %d (%s)", want, err, e.msg);
	if (err) {
		snprintf(name, sizeof(name), "oci_policy_from_annotations %s: names the key", what);
		CHECK_MSG(name, e.msg, frag1);
		snprintf(name, sizeof(name), "oci_policy_from_annotations %s: says why", what);
		CHECK_MSG(name, e.msg, frag2);
	}
	df_policy_free(&p);
}

static void test_policy_errors(void)
{
	char what[200], *big;

	for (size_t i = 0; i < ARRAY_SIZE(ann_errors); i++) {
		const struct ann_error *c = &ann_errors[i];

		snprintf(what, sizeof(what), "%s=\"%.40s\"", c->key, esc(c->value));
		check_ann_error(c->key, c->value, c->err, c->frag1, c->frag2, what);
	}

	/* label length */
	big = malloc(DF_LABEL_MAX + 2);
	if (big) {
		struct oci_annotation a = { .key = "depfence.io/label", .value = big };
		struct df_error e = { "" };
		struct df_policy p;
		int err;

		memset(big, 'l', DF_LABEL_MAX);
		big[DF_LABEL_MAX] = '\0';
		df_policy_init(&p);
		err = oci_policy_from_annotations(&a, 1, &p, &e);
		CHECK("oci_policy_from_annotations: a 1024-byte label is accepted",
		      err == 0 && p.label && strlen(p.label) == DF_LABEL_MAX, "got %d (%s)", err,
		      e.msg);
		df_policy_free(&p);

		big[DF_LABEL_MAX] = 'l';
		big[DF_LABEL_MAX + 1] = '\0';
		check_ann_error("depfence.io/label", big, -E2BIG, "annotation depfence.io/label",
				"longer than 1024 bytes", "1025-byte label");
		free(big);
	}

	/* break-glass: the reason, bounded as the CLI's --reason; who asked, for the admin's check */
	big = malloc(DF_BREAKGLASS_REASON_MAX + 2);
	if (big) {
		struct oci_annotation a[2] = {
			{ .key = "depfence.io/break-glass", .value = big },
			{ .key = "depfence.io/mode", .value = "enforce" },
		};
		struct df_error e = { "" };
		struct df_policy p;
		int err;

		memset(big, 'r', DF_BREAKGLASS_REASON_MAX);
		big[DF_BREAKGLASS_REASON_MAX] = '\0';
		df_policy_init(&p);
		err = oci_policy_from_annotations(a, 2, &p, &e);
		CHECK("oci_policy_from_annotations: a 512-byte break-glass reason is accepted",
		      err == 0 && p.break_glass && strlen(p.break_glass) == DF_BREAKGLASS_REASON_MAX,
		      "got %d (%s)", err, e.msg);
		CHECK_STR("oci_policy_from_annotations: break-glass source",
			  "annotation depfence.io/break-glass", p.break_glass_source);
		CHECK_STR("oci_policy_from_annotations: mode source", "annotation depfence.io/mode",
			  p.mode_source);
		CHECK("oci_policy_from_annotations: no default source when no default annotation",
		      !p.default_source, "got %s", p.default_source);
		df_policy_free(&p);

		big[DF_BREAKGLASS_REASON_MAX] = 'r';
		big[DF_BREAKGLASS_REASON_MAX + 1] = '\0';
		check_ann_error("depfence.io/break-glass", big, -E2BIG,
				"annotation depfence.io/break-glass", "longer than 512 bytes",
				"513-byte break-glass reason");
		free(big);
	}

	/* the rule cap counts deny and allow together */
	big = malloc(DF_ANNOTATION_RULES_MAX * 12 + 16);
	if (big) {
		struct oci_annotation a[2];
		struct df_error e = { "" };
		struct df_policy p;
		size_t off = 0;
		int err;

		for (int i = 0; i < DF_ANNOTATION_RULES_MAX; i++)
			off += sprintf(big + off, "1.%d.%d.1,", i / 256, i % 256);
		a[0] = (struct oci_annotation){ .key = "depfence.io/deny", .value = big };
		df_policy_init(&p);
		err = oci_policy_from_annotations(a, 1, &p, &e);
		CHECK("oci_policy_from_annotations: 4096 rules are accepted",
		      err == 0 && p.n_rules == DF_ANNOTATION_RULES_MAX, "got %d (%s), %zu rules",
		      err, e.msg, p.n_rules);
		df_policy_free(&p);

		a[1] = (struct oci_annotation){ .key = "depfence.io/allow", .value = "9.9.9.9" };
		df_policy_init(&p);
		err = oci_policy_from_annotations(a, 2, &p, &e);
		CHECK_INT("oci_policy_from_annotations: rule 4097 is refused", -E2BIG, err);
		CHECK_MSG("oci_policy_from_annotations: the cap names the annotation", e.msg,
			  "annotation depfence.io/allow");
		CHECK_MSG("oci_policy_from_annotations: the cap says why", e.msg, "more than");
		df_policy_free(&p);

		strcpy(big + off, "2.2.2.2");
		df_policy_init(&p);
		err = oci_policy_from_annotations(a, 1, &p, &e);
		CHECK_INT("oci_policy_from_annotations: 4097 rules in one annotation are refused",
			  -E2BIG, err);
		CHECK_MSG("oci_policy_from_annotations: one-annotation cap message", e.msg,
			  "annotation depfence.io/deny: more than 4096 rules");
		df_policy_free(&p);
		free(big);
	}
}

/* ---- errors are one line, whatever the input held ---- */

static int has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

static void test_message_hygiene(void)
{
	static const struct {
		const char *key, *value;
	} anns[] = {
		{ "depfence.io/mode", "enforce\n<14>forged syslog line" },
		{ "depfence.io/default", "deny\x1b[2J" },
		{ "depfence.io/deny", "evil\x1b]0;title\x07.com" },
		{ "depfence.io/allow", "10.0.0.1/8\x0b" },
	};
	static const char *const states[] = {
		"{\"id\":\"a\\nforged line\"}",
		"{\"id\":\"a\\u001b[31m\"}",
		"{\"id\":\"x\",\"annotations\":{\"depfence.io/\\u001b[2J\":1}}",
	};
	char name[300];

	for (size_t i = 0; i < ARRAY_SIZE(anns); i++) {
		struct oci_annotation a = { .key = (char *)anns[i].key, .value = (char *)anns[i].value };
		struct df_error e = { "" };
		struct df_policy p;
		int err;

		df_policy_init(&p);
		err = oci_policy_from_annotations(&a, 1, &p, &e);
		snprintf(name, sizeof(name),
			 "oci_policy_from_annotations %s=\"%s\": refused with a one-line message",
			 anns[i].key, esc(anns[i].value));
		CHECK(name, err < 0 && e.msg[0] && !has_control(e.msg), "got %d, message \"%s\"",
		      err, esc(e.msg));
		df_policy_free(&p);
	}
	for (size_t i = 0; i < ARRAY_SIZE(states); i++) {
		struct df_error e = { "" };
		struct oci_state s = {};
		int err;

		err = oci_state_parse(states[i], &s, &e);
		snprintf(name, sizeof(name), "oci_state_parse %s: refused with a one-line message",
			 states[i]);
		CHECK(name, err < 0 && e.msg[0] && !has_control(e.msg), "got %d, message \"%s\"",
		      err, esc(e.msg));
		oci_state_free(&s);
	}
}

/* ---- safe_id ---- */

static void test_safe_id(void)
{
	static const struct {
		const char *id;
		int err;
	} cases[] = {
		{ "abc", 0 },
		{ "A", 0 },
		{ "deploy-1_x.y", 0 },
		{ PODMAN_ID, 0 },
		{ "a..b", 0 }, /* no '/': a plain file name */
		{ "runc+id", 0 }, /* runc allows '+' */
		{ "x.", 0 },
		{ "", -EINVAL },
		{ ".", -EINVAL },
		{ "..", -EINVAL },
		{ ".hidden", -EINVAL },
		{ "../x", -EINVAL },
		{ "a/b", -EINVAL },
		{ "/abs", -EINVAL },
		{ "a b", -EINVAL },
		{ "a\tb", -EINVAL },
		{ "a\nb", -EINVAL },
		{ "a:b", -EINVAL },
		{ "a\\b", -EINVAL },
		{ "caf\xc3\xa9", -EINVAL },
		{ "a*", -EINVAL },
	};
	char name[200], id[200];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		snprintf(name, sizeof(name), "safe_id \"%s\"", esc(cases[i].id));
		CHECK_INT(name, cases[i].err, safe_id(cases[i].id));
	}
	CHECK_INT("safe_id NULL", -EINVAL, safe_id(NULL));
	memset(id, 'a', 128);
	id[128] = '\0';
	CHECK_INT("safe_id of 128 bytes", 0, safe_id(id));
	id[128] = 'a';
	id[129] = '\0';
	CHECK_INT("safe_id of 129 bytes", -E2BIG, safe_id(id));
	id[127] = '/';
	CHECK("safe_id of 129 bytes with a '/' is refused", safe_id(id) < 0, "accepted");
}

/* Profile names are kept for the host to resolve among its profiles dir's entries. */
static void test_profile_names(void)
{
	struct oci_annotation a[] = { { .key = "depfence.io/profile", .value = "github-outage, ci.strict" } };
	struct df_policy p;
	struct df_error e = {};

	df_policy_init(&p);
	CHECK_INT("profile annotation: accepted", 0,
		  oci_policy_from_annotations(a, 1, &p, &e));
	CHECK_INT("profile annotation: two names", 2, p.n_profiles);
	if (p.n_profiles == 2) {
		CHECK_STR("profile annotation: first", "github-outage", p.profiles[0]);
		CHECK_STR("profile annotation: second", "ci.strict", p.profiles[1]);
	}
	df_policy_free(&p);

	/* a name again, in the same value or another source, is taken once */
	{
		struct oci_annotation b[] = { { .key = "depfence.io/profile",
						.value = "big big,ci.strict big ci.strict" } };

		df_policy_init(&p);
		CHECK_INT("profile annotation: repeated names accepted", 0,
			  oci_policy_from_annotations(b, 1, &p, &e));
		CHECK_INT("profile annotation: each name once", 2, p.n_profiles);
		CHECK_INT("profile names: one named before is not added again", 0,
			  df_policy_add_profiles(&p, "big", "--profile", &e));
		CHECK_INT("profile names: still two", 2, p.n_profiles);
		df_policy_free(&p);
	}
}

/* Kubernetes: <container-name>.depfence.io/KEY for one container wins over the pod's key. */
static void test_container_scoped(void)
{
	static const struct {
		const char *name, *json, *mode, *rules;
	} cases[] = {
		{ "CRI-O name, scoped keys win",
		  "{\"id\":\"c1\",\"annotations\":{\"io.kubernetes.container.name\":\"deploy\","
		  "\"depfence.io/mode\":\"audit\",\"depfence.io/deny\":\"a.example\","
		  "\"deploy.depfence.io/mode\":\"enforce\",\"deploy.depfence.io/deny\":\"b.example\","
		  "\"sidecar.depfence.io/deny\":\"c.example\",\"depfence.io/allow\":\"d.example\"}}",
		  "enforce", "deny b.example (annotation deploy.depfence.io/deny);"
			     "allow d.example (annotation depfence.io/allow);" },
		{ "containerd name",
		  "{\"id\":\"c2\",\"annotations\":{\"io.kubernetes.cri.container-name\":\"sidecar\","
		  "\"depfence.io/deny\":\"a.example\",\"deploy.depfence.io/deny\":\"b.example\","
		  "\"sidecar.depfence.io/deny\":\"c.example\"}}",
		  "audit", "deny c.example (annotation sidecar.depfence.io/deny);" },
		{ "no container name: scoped keys ignored",
		  "{\"id\":\"c3\",\"annotations\":{\"depfence.io/deny\":\"a.example\","
		  "\"deploy.depfence.io/deny\":\"b.example\"}}",
		  "audit", "deny a.example (annotation depfence.io/deny);" },
		{ "a name that is only a suffix does not match",
		  "{\"id\":\"c4\",\"annotations\":{\"io.kubernetes.container.name\":\"ploy\","
		  "\"deploy.depfence.io/deny\":\"b.example\",\"depfence.io/deny\":\"a.example\"}}",
		  "audit", "deny a.example (annotation depfence.io/deny);" },
	};
	char name[256];

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct oci_state st = {};
		struct df_policy p;
		struct df_error e = {};
		char got[1024] = "";
		int r;

		df_policy_init(&p);
		r = oci_state_parse(cases[i].json, &st, &e);
		if (r == 0)
			r = oci_policy_from_annotations(st.ann, st.n_ann, &p, &e);
		snprintf(name, sizeof(name), "container-scoped: %s: parses", cases[i].name);
		CHECK(name, r == 0, "error %d: %s", r, e.msg);
		for (size_t j = 0; j < p.n_rules; j++) {
			size_t l = strlen(got);

			snprintf(got + l, sizeof(got) - l, "%s %s (%s);",
				 p.rules[j].verdict == DF_DENY ? "deny" : "allow", p.rules[j].text,
				 p.rules[j].source);
		}
		snprintf(name, sizeof(name), "container-scoped: %s: mode", cases[i].name);
		CHECK_STR(name, cases[i].mode, df_mode_name(p.mode));
		snprintf(name, sizeof(name), "container-scoped: %s: rules", cases[i].name);
		CHECK_STR(name, cases[i].rules, got);
		df_policy_free(&p);
		oci_state_free(&st);
	}
	{
		const char *bad = "{\"id\":\"c5\",\"annotations\":{\"io.kubernetes.container.name\":\"deploy\","
				  "\"deploy.depfence.io/deny\":\"git*hub.com\"}}";
		struct oci_state st = {};
		struct df_policy p;
		struct df_error e = {};

		df_policy_init(&p);
		oci_state_parse(bad, &st, &e);
		CHECK("container-scoped: bad rule refused",
		      oci_policy_from_annotations(st.ann, st.n_ann, &p, &e) < 0, "accepted");
		CHECK_MSG("container-scoped: message names the key as written", e.msg,
			  "deploy.depfence.io/deny");
		df_policy_free(&p);
		oci_state_free(&st);
	}
}

int main(void)
{
	test_state_shapes();
	test_state_errors();
	test_config_annotations();
	test_policy_good();
	test_policy_errors();
	test_message_hygiene();
	test_safe_id();
	test_profile_names();
	test_container_scoped();
	return unit_done();
}
