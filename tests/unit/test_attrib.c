// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * Process attribution in the report (hook/attrib.c): argv rendering, the
 * "process" object built from hand-made images (chains, forks, reparenting,
 * missing parents, truncation), the notes about what was lost, the summary
 * line, and the state file's "attrib" object.
 */
#include <arpa/inet.h>

#include "../../hook/report.h"
#include "../../oci/json.h"
#include "unit.h"

/* ---- argv rendering: a row per case ---- */

struct args_case {
	const char *name;
	const char *args; /* NUL-separated, as the kernel keeps argv */
	size_t len;
	size_t max;
	const char *want;
};

#define A(s) s, sizeof(s) - 1

static const struct args_case args_cases[] = {
	{ "plain words", A("curl\0-fsSL\0https://github.com/acme/tool\0"), 0,
	  "curl -fsSL https://github.com/acme/tool" },
	{ "an argument with a space is quoted", A("sh\0-c\0echo hi\0"), 0, "sh -c 'echo hi'" },
	{ "a quote inside a quoted argument", A("echo\0it's\0"), 0, "echo 'it'\\''s'" },
	{ "an empty argument", A("a\0\0b\0"), 0, "a '' b" },
	{ "shell characters are quoted", A("echo\0$HOME;x\0"), 0, "echo '$HOME;x'" },
	{ "a control character becomes ?", A("a\0x\ny\0"), 0, "a 'x?y'" },
	{ "invalid UTF-8 becomes ?", A("a\0\xff\xfe\0"), 0, "a ??" },
	{ "valid UTF-8 is kept", A("echo\0h\xc3\xa9llo\0"), 0, "echo h\xc3\xa9llo" },
	{ "argv cut by the kernel mid-argument", A("curl\0https://exa"), 0, "curl https://exa" },
	{ "argv cut inside a UTF-8 sequence", A("x\0\xc3"), 0, "x ?" },
	{ "C1 controls become ?", A("x\0\xc2\x85\0"), 0, "x ?" },
	{ "a short form is marked where it is cut", A("abcdefghij\0klm\0"), 5,
	  "abcde\xe2\x80\xa6" },
	{ "a short form that fits is whole", A("ls\0-l\0"), 80, "ls -l" },
};

static void test_format_args(void)
{
	char name[256], buf[4 * DF_ARGS_MAX + 16];

	for (size_t i = 0; i < ARRAY_SIZE(args_cases); i++) {
		const struct args_case *c = &args_cases[i];
		struct df_image img = {};

		memcpy(img.args, c->args, c->len);
		img.args_len = (__u32)c->len;
		attrib_format_args(&img, c->max, buf, sizeof(buf));
		snprintf(name, sizeof(name), "format args: %s", c->name);
		CHECK_STR(name, c->want, buf);
	}

	/* a buffer too small for the whole line: cut and marked, never past the end */
	{
		struct df_image img = {};
		char small[12];
		size_t n;

		memcpy(img.args, "abcdefgh\0ijklmnop\0", 18);
		img.args_len = 18;
		n = attrib_format_args(&img, 0, small, sizeof(small));
		CHECK("format args: a small buffer is filled and marked",
		      n < sizeof(small) && strlen(small) == n &&
			      !strcmp(small + n - 3, "\xe2\x80\xa6"),
		      "got \"%s\" (%zu)", small, n);
	}
}

/* ---- the process object ---- */

static const char *jstr(yajl_val o, const char *k)
{
	const char *s;

	return json_get_string(o, k, &s, NULL) == 0 ? s : NULL;
}

static long long jint(yajl_val o, const char *k)
{
	long long n;

	return json_get_int(o, k, &n, NULL) == 0 ? n : -999;
}

static int jbool(yajl_val o, const char *k)
{
	int b;

	return json_get_bool(o, k, &b, NULL) == 0 ? b : -1;
}

static int jnull(yajl_val o, const char *k)
{
	yajl_val v = json_get(o, k);

	return v && YAJL_IS_NULL(v);
}

static void set_img(struct attrib_image *ai, __u32 tgid, __u64 id, __u32 ptgid, __u64 pid_,
		    __u32 flags, const char *comm, const char *exe, const char *args,
		    size_t args_len)
{
	memset(ai, 0, sizeof(*ai));
	ai->key.tgid = tgid;
	ai->key.id = id;
	ai->img.parent.tgid = ptgid;
	ai->img.parent.id = pid_;
	ai->img.start_ns = id;
	ai->img.flags = flags;
	ai->img.slot = 3;
	ai->img.gen = 77;
	ai->img.ppid = ptgid;
	snprintf(ai->img.comm, sizeof(ai->img.comm), "%s", comm);
	snprintf(ai->img.exe, sizeof(ai->img.exe), "%s", exe);
	memcpy(ai->img.args, args, args_len);
	ai->img.args_len = (__u32)args_len;
}

static void set_rec(struct fence_record *r, __u32 tgid, __u64 image, const char *comm)
{
	memset(r, 0, sizeof(*r));
	r->k.verdict = DF_EV_BLOCKED;
	r->k.hook = DF_HOOK_CONNECT4;
	r->k.proto = 6;
	r->k.family = 4;
	inet_pton(AF_INET, "203.0.113.10", r->k.daddr);
	r->k.dport = 443;
	r->k.tgid = tgid;
	r->k.image = image;
	r->v.count = 1;
	r->v.first_ns = 3000;
	r->v.last_ns = 3000;
	r->v.pid = tgid;
	snprintf(r->v.comm, sizeof(r->v.comm), "%s", comm);
}

static yajl_val event_of(yajl_val root, long long pid)
{
	yajl_val evs;

	if (json_get_array(root, "events", &evs, NULL) < 0)
		return NULL;
	for (size_t i = 0; i < json_array_len(evs); i++) {
		yajl_val p;

		if (json_get_object(json_array_at(evs, i), "process", &p, NULL) == 0 &&
		    jint(p, "pid") == pid)
			return p;
	}
	return NULL;
}

/* "pid:comm:cmdline:exited|..." of a process object's ancestry */
static const char *ancestry(yajl_val p, char *buf, size_t len)
{
	yajl_val a;
	size_t off = 0;

	buf[0] = '\0';
	if (json_get_array(p, "ancestry", &a, NULL) < 0)
		return "(missing)";
	for (size_t i = 0; i < json_array_len(a); i++) {
		yajl_val o = json_array_at(a, i);
		const char *c = jstr(o, "cmdline");

		off += snprintf(buf + off, len - off, "%s%lld:%s:%s:%d", i ? "|" : "", jint(o, "pid"),
				jstr(o, "comm"), c ? c : "null", jbool(o, "exited"));
		if (off >= len)
			break;
	}
	return buf;
}

#define ARROW " \xe2\x86\x92 "

static void test_process_object(void)
{
	struct attrib_image imgs[5];
	struct fence_record recs[5];
	struct fence_state st = {};
	struct fence_data d = {};
	_cleanup_free_ char *json = NULL;
	_cleanup_yajl_ yajl_val root = NULL;
	struct df_error e = {};
	char buf[2048], line[2048], longargs[DF_ARGS_MAX];
	yajl_val p, sum, notes;
	size_t len;
	int r;

	snprintf(st.id, sizeof(st.id), "job-9");
	snprintf(st.kind, sizeof(st.kind), DF_KIND_RUN);
	df_policy_init(&st.policy);
	st.policy.mode = DF_MODE_ENFORCE;

	memset(longargs, 'x', sizeof(longargs));
	memcpy(longargs, "curl\0-o\0", 8);
	/* sorted by (tgid, id), as attrib_collect leaves them */
	/* "#!/usr/bin/env bash": env exec'd bash, argv[1] is the script */
	set_img(&imgs[0], 100, 1000, 0, 0, DF_IMG_EXEC | DF_IMG_VIA_ENV, "bash", "/usr/bin/bash",
		"bash\0./deploy.sh\0", 17);
	set_img(&imgs[1], 101, 2000, 100, 1000, DF_IMG_EXEC | DF_IMG_EXITED, "servicectl", "/bin/sh",
		"/bin/sh\0/usr/local/bin/servicectl\0upgrade\0", 42);
	imgs[1].img.end_ns = 2500; /* exited before the calls below */
	set_img(&imgs[2], 102, 2600, 101, 2000, DF_IMG_FORK, "servicectl", "", "", 0);
	set_img(&imgs[3], 103, 2700, 101, 2000, DF_IMG_EXEC | DF_IMG_TRUNCATED, "curl",
		"/usr/bin/curl", longargs, sizeof(longargs));
	set_img(&imgs[4], 104, 2800, 999, 5, DF_IMG_EXEC, "wget", "/usr/bin/wget",
		"wget\0-q\0x\0", 10);
	d.attrib.available = 1;
	d.attrib.imgs = imgs;
	d.attrib.n = ARRAY_SIZE(imgs);
	d.attrib.slot.gen = 77;
	d.attrib.slot.images_max = 4096;
	d.attrib.slot.lost = 2;
	d.attrib.missing = 1;

	set_rec(&recs[0], 102, 2600, "servicectl"); /* a forked daemon */
	set_rec(&recs[1], 103, 2700, "curl"); /* argv truncated */
	set_rec(&recs[2], 104, 2800, "wget"); /* its parent was not kept */
	set_rec(&recs[3], 105, 77, "gone"); /* names an image that is not there */
	set_rec(&recs[4], 106, 0, "lost"); /* no image at all */
	d.recs = recs;
	d.n_recs = ARRAY_SIZE(recs);

	r = report_build(&st, &d, &json, &len);
	CHECK_INT("process object: report builds", 0, r);
	if (r < 0)
		goto out;
	r = json_parse(json, "report", &root, &e);
	CHECK_INT("process object: report parses", 0, r);
	if (r < 0)
		goto out;

	p = event_of(root, 102);
	CHECK("process object: forked daemon present", p != NULL, "missing");
	if (p) {
		CHECK_STR("forked daemon: cmdline is the program it was forked from",
			  "/bin/sh /usr/local/bin/servicectl upgrade", jstr(p, "cmdline"));
		CHECK_STR("forked daemon: exe too", "/bin/sh", jstr(p, "exe"));
		CHECK_INT("forked daemon: forked", 1, jbool(p, "forked"));
		CHECK_INT("forked daemon: reparented (its parent exited before the call)", 1,
			  jbool(p, "reparented"));
		CHECK_STR("forked daemon: chain (a script run through env by its name)",
			  "deploy.sh" ARROW "servicectl" ARROW "servicectl", jstr(p, "chain"));
		{
			yajl_val anc;

			json_get_array(p, "ancestry", &anc, NULL);
			CHECK_STR("forked daemon: the env-run script's name in its ancestry entry",
				  "deploy.sh", anc ? jstr(json_array_at(anc, 0), "name") : NULL);
			CHECK_STR("forked daemon: other entries are named by comm", "servicectl",
				  anc ? jstr(json_array_at(anc, 1), "name") : NULL);
		}
		CHECK_STR("forked daemon: ancestry, first process first",
			  "100:bash:bash ./deploy.sh:0|"
			  "101:servicectl:/bin/sh /usr/local/bin/servicectl upgrade:1|"
			  "102:servicectl:/bin/sh /usr/local/bin/servicectl upgrade:0",
			  ancestry(p, buf, sizeof(buf)));
		CHECK_INT("forked daemon: ancestry complete", 1, jbool(p, "ancestry_complete"));
		CHECK_INT("forked daemon: ppid", 101, jint(p, "ppid"));
	}

	p = event_of(root, 103);
	CHECK("process object: truncated one present", p != NULL, "missing");
	if (p) {
		const char *c = jstr(p, "cmdline");

		CHECK_INT("truncated: marked", 1, jbool(p, "truncated"));
		CHECK("truncated: cmdline is the kept argv", c && !strncmp(c, "curl -o xxx", 11) &&
								     strlen(c) == DF_ARGS_MAX,
		      "got \"%s\" (%zu)", c ? c : "(null)", c ? strlen(c) : 0);
		CHECK_INT("truncated: reparented too (servicectl exited before the call)", 1,
			  jbool(p, "reparented"));
		CHECK_STR("truncated: ancestor cmdlines are short",
			  "100:bash:bash ./deploy.sh:0|"
			  "101:servicectl:/bin/sh /usr/local/bin/servicectl upgrade:1|"
			  "103:curl:curl -o "
			  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			  "\xe2\x80\xa6:0",
			  ancestry(p, buf, sizeof(buf)));
	}

	p = event_of(root, 104);
	if (p) {
		CHECK_STR("missing parent: chain says the top is not known",
			  "\xe2\x80\xa6" ARROW "wget", jstr(p, "chain"));
		CHECK_INT("missing parent: ancestry incomplete", 0, jbool(p, "ancestry_complete"));
		CHECK_INT("missing parent: not reparented (not known)", 0, jbool(p, "reparented"));
		CHECK_STR("missing parent: own cmdline still there", "wget -q x", jstr(p, "cmdline"));
	} else {
		CHECK("process object: missing-parent one present", 0, "missing");
	}

	for (long long pid = 105; pid <= 106; pid++) {
		char name[128];

		p = event_of(root, pid);
		snprintf(name, sizeof(name),
			 "no image (%lld): pid and comm kept, cmdline, exe null, chain the comm", pid);
		CHECK(name,
		      p && jnull(p, "cmdline") && jnull(p, "exe") && jstr(p, "comm") &&
			      jstr(p, "chain") && !strcmp(jstr(p, "chain"), jstr(p, "comm")) &&
			      jbool(p, "ancestry_complete") == 0,
		      "got %s", p ? "a different object" : "no event");
	}

	json_get_object(root, "summary", &sum, NULL);
	CHECK_INT("summary: attribution_lost = processes not kept + images not found", 3,
		  jint(sum, "attribution_lost"));
	json_get_array(root, "notes", &notes, NULL);
	buf[0] = '\0';
	for (size_t i = 0; notes && i < json_array_len(notes); i++) {
		strncat(buf, json_string(json_array_at(notes, i)), sizeof(buf) - strlen(buf) - 2);
		strcat(buf, "|");
	}
	CHECK_MSG("notes: processes not kept are counted", buf, "2 processes of the fence were not kept");
	CHECK_MSG("notes: images not found are counted", buf, "1 events name a program");

	report_summary_line(&st, &d, "/tmp/r.json", line, sizeof(line));
	CHECK_MSG("summary line: refused calls with their chains", line,
		  "; blocked 203.0.113.10:443 by deploy.sh" ARROW "servicectl" ARROW);
	CHECK_MSG("summary line: at most three, then a count", line, " and 2 more");
	CHECK_MSG("summary line: the counters stay as they were", line, "0 dropped records; report /tmp/r.json");
out:
	d.attrib.imgs = NULL;
	d.recs = NULL;
	fence_state_free(&st);
}

static void test_unavailable(void)
{
	struct fence_record rec;
	struct fence_state st = {};
	struct fence_data d = {};
	_cleanup_free_ char *json = NULL;
	_cleanup_yajl_ yajl_val root = NULL;
	struct df_error e = {};
	yajl_val p, notes;
	size_t len;

	snprintf(st.id, sizeof(st.id), "job-10");
	snprintf(st.kind, sizeof(st.kind), DF_KIND_RUN);
	df_policy_init(&st.policy);
	snprintf(d.attrib.error, sizeof(d.attrib.error), "load attribution programs: no BTF");
	set_rec(&rec, 200, 12345, "curl");
	d.recs = &rec;
	d.n_recs = 1;
	if (report_build(&st, &d, &json, &len) < 0 || json_parse(json, "report", &root, &e) < 0) {
		CHECK("unavailable: report builds", 0, "failed");
		goto out;
	}
	p = event_of(root, 200);
	CHECK("unavailable: the event keeps pid and comm, cmdline null",
	      p && jnull(p, "cmdline") && !strcmp(jstr(p, "comm"), "curl"), "got another object");
	json_get_array(root, "notes", &notes, NULL);
	CHECK("unavailable: a note says why",
	      notes && json_array_len(notes) >= 1 &&
		      strstr(json_string(json_array_at(notes, json_array_len(notes) - 1)),
			     "process attribution unavailable (load attribution programs: no BTF)"),
	      "notes do not say why");
out:
	d.recs = NULL;
	fence_state_free(&st);
}

static void test_state_attrib(void)
{
	struct fence_state st = {}, back = {};
	_cleanup_free_ char *json = NULL;
	_cleanup_free_ char *json2 = NULL;
	struct df_error e = {};
	size_t len;
	int r;

	snprintf(st.id, sizeof(st.id), "job-11");
	snprintf(st.kind, sizeof(st.kind), DF_KIND_RUN);
	snprintf(st.cgroup, sizeof(st.cgroup), "/sys/fs/cgroup/x");
	df_policy_init(&st.policy);
	st.attrib.slot = 7;
	st.attrib.gen = 0xfedcba98;
	r = fence_state_to_json(&st, &json, &len);
	if (r == 0)
		r = fence_state_from_json(json, &back, &e);
	CHECK_INT("state: attrib round trip", 0, r);
	CHECK("state: attrib slot and gen come back", back.attrib.slot == 7 && back.attrib.gen == 0xfedcba98,
	      "got slot %u gen %u", back.attrib.slot, back.attrib.gen);
	fence_state_free(&back);

	memset(&st.attrib, 0, sizeof(st.attrib));
	snprintf(st.attrib.error, sizeof(st.attrib.error), "no BTF");
	r = fence_state_to_json(&st, &json2, &len);
	memset(&back, 0, sizeof(back));
	if (r == 0)
		r = fence_state_from_json(json2, &back, &e);
	CHECK("state: no attribution, and why, come back",
	      r == 0 && back.attrib.gen == 0 && !strcmp(back.attrib.error, "no BTF"), "got gen %u error \"%s\"",
	      back.attrib.gen, back.attrib.error);
	fence_state_free(&back);
	fence_state_free(&st);
}

int main(void)
{
	test_format_args();
	test_process_object();
	test_unavailable();
	test_state_attrib();
	return unit_done();
}
